# Per-thread HTTP/2 stream budget: CONNS h2 connections each open STREAMS GET /sleep/SLEEP streams
# (slow_backend behind router r2, TLS 47112). Probes new h2/h1/plain clients every 5 s (curl, max 150 s),
# samples router fds/RSS, and reports when every attacker stream completed.
#   python3 budget.py CONNS STREAMS SLEEP [reset_last K] [abort_last K] [abort_early K]
#   reset_last K: the last K connections RST all their streams 3 s after opening them (they wait for a slot)
#   abort_last K: the last K connections close TCP abruptly 3 s after opening their streams
import sys, threading, os
from common import *
PORT = TLSP
conns, nstreams, sleep_s = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
opts = dict(zip(sys.argv[4::2], map(int, sys.argv[5::2])))
reset_last, abort_last = opts.get("reset_last", 0), opts.get("abort_last", 0)
pid = router_pid()
T0 = time.time()
done_times = {}   # conn -> list of completion times
status = {}
lock = threading.Lock()
def attacker(k, t):
    r = FrameReader(t)
    mode = "normal"
    if k >= conns - reset_last: mode = "reset"
    if k >= conns - abort_last: mode = "abort"
    times = []
    t.settimeout(1)
    opened = time.time()
    acted = False
    while len(times) < nstreams:
        if mode != "normal" and not acted and time.time() - opened > 3:
            acted = True
            if mode == "abort":
                t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                t.close(); return
            t.sendall(b"".join(frame(RST, 0, 1 + 2*i, struct.pack(">I", 8)) for i in range(nstreams)))
            status.setdefault("reset_sent", 0); status["reset_sent"] += 1
        if time.time() - T0 > float(os.environ.get("DURATION", 400)): break
        try:
            f = r.next()
        except socket.timeout:
            continue
        except OSError as e:
            with lock: status[k] = f"error {e}"; break
        if f is None:
            with lock: status[k] = "EOF"; break
        ty, fl, sid, p = f
        if (ty in (HEADERS, DATA) and fl & END_STREAM) or ty == RST:
            times.append(time.time() - T0)
            if ty == RST:
                with lock: status.setdefault("rst_codes", {}).setdefault(int.from_bytes(p, 'big'), 0); status["rst_codes"][int.from_bytes(p, 'big')] += 1
        if ty == GOAWAY:
            with lock: status[k] = f"GOAWAY {p[4:8].hex()}"
    with lock: done_times[k] = times
socks = []
for k in range(conns):
    t = h2conn(src=f"127.0.4.{k % 250 + 1}", timeout=10, init_settings=settings(INITIAL_WINDOW_SIZE=0) if os.environ.get("ZW") == "1" else None)
    t.sendall(frame(SETTINGS, ACK, 0) + frame(WINUP, 0, 0, struct.pack(">I", 16 << 20)))
    t.sendall(b"".join(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2*i, request_block(os.environ.get("PATHT", "/sleep/{s}/{k}/{i}").format(s=sleep_s, k=k, i=i))) for i in range(nstreams)))
    socks.append(t)
print(f"t={time.time()-T0:.1f}s opened {conns} connections x {nstreams} streams of /sleep/{sleep_s}", flush=True)
ths = [threading.Thread(target=attacker, args=(k, t), daemon=True) for k, t in enumerate(socks)]
[th.start() for th in ths]
probes = []
def probe(kind):
    ts = time.time() - T0
    c, d = victim(kind, timeout=150)
    with lock: probes.append((ts, kind, c, d))
stop = False
def sampler():
    while not stop:
        try:
            s = proc_stats(pid)
        except FileNotFoundError:
            print("ROUTER GONE", flush=True); return
        up = int(subprocess.run("ss -Htn state established '( dport = :47110 )' | wc -l", shell=True, capture_output=True, text=True).stdout)
        with lock: ndone = sum(len(v) for v in done_times.values()) 
        print(f"t={time.time()-T0:6.1f}s rss={s['rss_mb']:.0f}MB fds={s['fds']} router->backend={up} finished_conns={len(done_times)}", flush=True)
        for kind in ("h2", "h1", "plain"):
            threading.Thread(target=probe, args=(kind,), daemon=True).start()
        time.sleep(5)
threading.Thread(target=sampler, daemon=True).start()
DUR = float(os.environ.get("DURATION", 400))
for th in ths: th.join(timeout=max(1, DUR - (time.time() - T0)))
stop = True
time.sleep(1)
alltimes = sorted(x for v in done_times.values() for x in v)
print(f"t={time.time()-T0:.1f}s attacker streams completed: {len(alltimes)} of {(conns-abort_last)*nstreams} expected "
      f"(first {alltimes[0] if alltimes else 0:.1f}s, median {alltimes[len(alltimes)//2] if alltimes else 0:.1f}s, last {alltimes[-1] if alltimes else 0:.1f}s)")
incomplete = {k: len(v) for k, v in done_times.items() if len(v) < nstreams}
print("connections not complete:", {k: (incomplete.get(k), status.get(k)) for k in list(incomplete)[:20]},
      "unfinished threads:", sum(th.is_alive() for th in ths))
print("status:", {k: v for k, v in status.items() if not isinstance(k, int)})
for p in sorted(probes): print(f"  probe started t={p[0]:6.1f}s {p[1]:5s} -> {p[2]} in {p[3]:.2f}s")
