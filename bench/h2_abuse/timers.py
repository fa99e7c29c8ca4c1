# Timer checks against a router (TLS_PORT env, default 47112 = r2 in front of slow_backend 47110).
#   python3 timers.py stalled|pingidle|pingnostream|early|zerowin   (or 'all' = concurrently)
import sys, threading
from common import *

def log(tag, msg, t0):
    print(f"[{tag}] t={time.time()-t0:6.1f}s {msg}", flush=True)

def frames_until(t, r, tag, t0, limit, ping_every=None):
    """Reads frames, logs the interesting ones, until EOF or limit seconds; sends PING every ping_every s."""
    t.settimeout(1)
    last_ping = time.time()
    while time.time() - t0 < limit:
        if ping_every and time.time() - last_ping >= ping_every:
            try:
                t.sendall(frame(PING, 0, 0, b"keepaliv")); last_ping = time.time()
            except OSError as e:
                log(tag, f"send PING failed: {e}", t0); return
        try:
            f = r.next()
        except socket.timeout:
            continue
        except (OSError, ssl.SSLError) as e:
            log(tag, f"connection error {e.__class__.__name__}: {e}", t0); return
        if f is None:
            log(tag, "EOF (router closed the connection)", t0); return
        ty, fl, sid, p = f
        if ty == HEADERS:
            log(tag, f"HEADERS sid={sid} flags={fl} block={p[:20].hex()}", t0)
        elif ty == RST:
            log(tag, f"RST_STREAM sid={sid} code={int.from_bytes(p,'big')}", t0)
        elif ty == GOAWAY:
            log(tag, f"GOAWAY last={int.from_bytes(p[:4],'big')} code={int.from_bytes(p[4:8],'big')}", t0)
        elif ty == DATA:
            log(tag, f"DATA sid={sid} len={len(p)} flags={fl}", t0)
    log(tag, f"still open at limit {limit}s", t0)

def stalled():
    t0 = time.time(); t = h2conn(); r = FrameReader(t)
    t.sendall(frame(SETTINGS, ACK, 0))
    t.sendall(frame(HEADERS, END_HEADERS, 1, request_block("/post", "POST", extra=[("content-length", "1000")])))
    frames_until(t, r, "stalled", t0, 130, ping_every=10)

def pingidle():
    t0 = time.time(); t = h2conn(); r = FrameReader(t)
    t.sendall(frame(SETTINGS, ACK, 0))
    t.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block("/1k")))
    frames_until(t, r, "pingidle", t0, 130, ping_every=5)

def pingnostream():
    t0 = time.time(); t = h2conn(); r = FrameReader(t)
    t.sendall(frame(SETTINGS, ACK, 0))
    frames_until(t, r, "pingnostream", t0, 130, ping_every=5)

def early():
    t0 = time.time(); t = h2conn(); r = FrameReader(t)
    t.sendall(frame(SETTINGS, ACK, 0))
    # backend (slow_backend /early... ) -- nginx answers static GETs without reading body; we use a GET with a body
    t.sendall(frame(HEADERS, END_HEADERS, 1, request_block("/1k.bin", "GET", extra=[("content-length", "100000")])))
    t.sendall(frame(DATA, 0, 1, b"z" * 100))
    frames_until(t, r, "early", t0, 15, ping_every=5)

def zerowin():
    t0 = time.time(); t = h2conn(init_settings=settings(INITIAL_WINDOW_SIZE=0)); r = FrameReader(t)
    t.sendall(frame(SETTINGS, ACK, 0))
    t.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block("/big/10000000")))
    frames_until(t, r, "zerowin", t0, 400, ping_every=20)

if __name__ == "__main__":
    names = sys.argv[1:]
    if names == ["all"]:
        names = ["stalled", "pingidle", "pingnostream", "zerowin"]
    ths = [threading.Thread(target=globals()[n]) for n in names]
    for th in ths: th.start()
    for th in ths: th.join()
