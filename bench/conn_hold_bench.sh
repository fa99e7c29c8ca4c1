#!/usr/bin/env bash
# berthd while clients hold as many idle connections to its router as they can (issue 10's
# attack: ~21 000 connections from two ordinary processes, no credentials).
#
#   bench/conn_hold_bench.sh                 # uses build/bin/berthd (run `make build` first)
#   HOLD=21000 SPREAD=1 bench/conn_hold_bench.sh
#
# berthd starts as `make run` starts it (relative ./var in a fresh working directory). Two
# holder processes open HOLD/2 connections each to the router, from 127.0.0.1 (SPREAD=0) or
# spread over 127.0.0.1-127.0.0.250 (SPREAD=1, which gets past the per-address cap and fills
# the total cap), and keep them open. Meanwhile a third client, from 127.0.1.1, makes N
# fresh-connection requests to GET /v2/ and to the router, one at a time.
# Prints: connections the holders kept, latency p50/p99/max of both, berthd's CPU use and
# log growth during the hold, and its RSS before and during.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BERTHD=${BERTHD:-$ROOT/build/bin/berthd}
HOLD=${HOLD:-21000}
SPREAD=${SPREAD:-0}
N=${N:-300}
OUT=${OUT:-$ROOT/bench/out/conn_hold}

rm -rf "$OUT" && mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
API=$(free_port); ROUTER=$(free_port)
cd "$OUT"
"$BERTHD" --data ./var --listen 127.0.0.1:$API --router-listen 127.0.0.1:$ROUTER \
  > berthd.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:$API/healthz >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2/1024}' /proc/$PID/status; }
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
RSS0=$(rss)

cat > holder.py <<'PY'
import socket, sys, time
port, n, spread, idx = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
socks = []
for i in range(n):
    s = socket.socket()
    if spread:
        s.bind(("127.0.0.%d" % (1 + (i * 2 + idx) % 250), 0))
    try:
        s.connect(("127.0.0.1", port))
        socks.append(s)
    except OSError:
        s.close()
time.sleep(1.0)
alive = 0
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            continue
    except BlockingIOError:
        alive += 1
        continue
    except OSError:
        continue
print(alive, flush=True)
time.sleep(float(sys.argv[5]))
PY

cat > probe.py <<'PY'
import socket, sys, time
port, host, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
lat = []
fails = 0
for i in range(n):
    t = time.perf_counter()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.1.1", 0))
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (sys.argv[4], host)).encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        if not data.startswith(b"HTTP/1.1 "):
            fails += 1
    except OSError:
        fails += 1
    lat.append((time.perf_counter() - t) * 1000)
    time.sleep(0.01)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print("p50=%.2fms p99=%.2fms max=%.2fms failed=%d/%d" % (q(0.5), q(0.99), lat[-1], fails, n))
PY

HOLD_SECS=$(( N / 30 + 20 ))
LOG0=$(stat -c %s berthd.log)
python3 holder.py $ROUTER $((HOLD / 2)) $SPREAD 0 $HOLD_SECS > held0.txt &
python3 holder.py $ROUTER $((HOLD - HOLD / 2)) $SPREAD 1 $HOLD_SECS > held1.txt &
for _ in $(seq 600); do [ -s held0.txt ] && [ -s held1.txt ] && break; sleep 0.1; done
CPU0=$(cpu); T0=$(date +%s.%N); LOG1=$(stat -c %s berthd.log)
REG=$(python3 probe.py $API 127.0.0.1 $N /v2/)
RT=$(python3 probe.py $ROUTER nosuch.localhost $N /)
CPU1=$(cpu); T1=$(date +%s.%N); LOG2=$(stat -c %s berthd.log)
RSS1=$(rss)
HZ=$(getconf CLK_TCK)
echo "berthd hold=$HOLD spread=$SPREAD kept=$(( $(cat held0.txt) + $(cat held1.txt) ))"
echo "  GET /v2/ (fresh connection each): $REG"
echo "  router 404 (fresh connection each): $RT"
awk -v c0=$CPU0 -v c1=$CPU1 -v t0=$T0 -v t1=$T1 -v hz=$HZ -v l0=$LOG1 -v l2=$LOG2 -v lo=$LOG0 \
  'BEGIN { printf "  berthd CPU during the probes: %.1f%% of a core; log grew %d bytes while connecting, %.0f bytes/s during the probes\n", 100*(c1-c0)/hz/(t1-t0), l0-lo, (l2-l0)/(t1-t0) }'
echo "  RSS: ${RSS0} MiB idle, ${RSS1} MiB holding"
grep -c "connection refused" berthd.log | sed 's/^/  "connection refused" log lines: /'
grep -m1 "connection caps" berthd.log | sed 's/^/  /'
