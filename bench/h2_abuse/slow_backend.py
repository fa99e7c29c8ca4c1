# Tiny HTTP/1.1 keep-alive backend: /sleep/SECS[/...] sleeps then answers 1 KiB; /big/N answers N bytes;
# anything else answers 1 KiB at once. Reads Content-Length bodies. Prints accepted/active counts to stdout every 5 s.
#   python3 slow_backend.py PORT
import asyncio, sys, time
port = int(sys.argv[1])
stats = {"accepted": 0, "active": 0, "requests": 0, "done": 0}
async def handle(r, w):
    stats["accepted"] += 1; stats["active"] += 1
    try:
        while True:
            head = await r.readuntil(b"\r\n\r\n")
            stats["requests"] += 1
            lines = head.decode(errors="replace").split("\r\n")
            path = lines[0].split(" ")[1]
            cl = 0
            for l in lines[1:]:
                if l.lower().startswith("content-length:"):
                    cl = int(l.split(":")[1])
            if cl:
                await r.readexactly(cl)
            body = b"x" * 1024
            if path.startswith("/sleep/"):
                await asyncio.sleep(float(path.split("/")[2]))
            elif path.startswith("/big/"):
                body = b"y" * int(path.split("/")[2])
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            w.write(body)
            await w.drain()
            stats["done"] += 1
    except Exception:
        pass
    finally:
        stats["active"] -= 1
        w.close()
async def report():
    while True:
        await asyncio.sleep(5)
        print(time.strftime("%H:%M:%S"), stats, flush=True)
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    asyncio.create_task(report())
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
