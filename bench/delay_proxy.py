#!/usr/bin/env python3
"""A TCP proxy on loopback that adds a round-trip time, as a path across a network has.

    delay_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT RTT_MS

Each new connection waits one RTT before anything flows (the TCP handshake a real path
costs), and every piece of data is held RTT/2 in its direction, in order, so a request and
its answer gain one RTT. It does not limit bandwidth: put the target behind a rate-limited
link for that (pull_through_bench.sh's LINK_RATE). Bench helper only; it runs until killed.
"""
import asyncio
import sys

PIECE = 256 * 1024


async def pipe(reader, writer, one_way):
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(PIECE)
            if not data:
                break
            # call_later keeps the order of pieces given the same delay.
            loop.call_later(one_way, writer.write, data)
            # Backpressure: do not read far ahead of what the other side takes.
            if writer.transport.get_write_buffer_size() > 4 * PIECE:
                await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    loop.call_later(one_way, close_write, writer)


def close_write(writer):
    try:
        if writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except (ConnectionError, OSError, RuntimeError):
        pass


async def serve(client_r, client_w, host, port, rtt):
    await asyncio.sleep(rtt)  # the connection's handshake
    try:
        up_r, up_w = await asyncio.open_connection(host, port)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(pipe(client_r, up_w, rtt / 2), pipe(up_r, client_w, rtt / 2))
    await asyncio.sleep(rtt)
    for w in (client_w, up_w):
        w.close()


async def main():
    listen_port, host, port, rtt_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    rtt = float(rtt_ms) / 1000.0
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, host, port, rtt), "127.0.0.1", int(listen_port))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
