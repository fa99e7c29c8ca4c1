#!/usr/bin/env bash
# berth's router vs nginx as a reverse proxy, side by side on this machine.
#
#   bench/router_bench.sh                # builds build-bench/ (Release), 3 rounds of wrk -c64 -t2 -d10s
#   ROUNDS=1 SECS=3 bench/router_bench.sh --no-build
#
# Backend: nginx itself (Debian package) serving a 1 KiB file with 2 workers, access log off
# and keep-alive on: it answers far faster than either proxy can forward, so it is not the
# bottleneck (busybox httpd closes every connection, which would measure connect() instead).
# Proxies: nginx with ONE worker, `upstream { keepalive 64; }`, proxy_http_version 1.1,
# access log off; berth's router (bench/router_bench_main.cc) with THREADS I/O threads
# (default: nproc), access log off. Each round runs wrk against both, alternating which goes
# first.
# Prints medians of req/s and p99 and the ratio berth/nginx. Knobs: ROUNDS SECS CONNS
# WRK_THREADS THREADS BUILD_DIR OUT ACCESS_LOG=1 (both proxies log every request).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-2}
THREADS=${THREADS:-$(nproc)}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
OUT=${OUT:-$ROOT/bench/out/router}
ACCESS_LOG=${ACCESS_LOG:-0}
BUILD=1
for a in "$@"; do
  case $a in
    --no-build) BUILD=0 ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx; then apt-get install -y nginx-light >/dev/null 2>&1 || apt-get install -y nginx >/dev/null; fi
if ! need wrk; then apt-get install -y wrk >/dev/null; fi
NGINX=$(command -v nginx)

if [ "$BUILD" = 1 ]; then
  [ -f "$BUILD_DIR/build.ninja" ] || cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD_DIR" berth_router_bench >/dev/null
fi
BENCH_BIN=$BUILD_DIR/bin/berth_router_bench

rm -rf "$OUT" && mkdir -p "$OUT/www" "$OUT/backend" "$OUT/proxy"
head -c 1024 /dev/urandom > "$OUT/www/1k.bin"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BACK=$(free_port); NGX=$(free_port); BERTH=$(free_port)

if [ "$ACCESS_LOG" = 1 ]; then NGX_LOG="access_log $OUT/proxy/access.log;"; BERTH_LOG=--access-log
else NGX_LOG="access_log off;"; BERTH_LOG=; fi

cat > "$OUT/backend/nginx.conf" <<CONF
worker_processes 2;
pid $OUT/backend/nginx.pid;
error_log $OUT/backend/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $OUT/backend/tmp;
  server { listen 127.0.0.1:$BACK reuseport; root $OUT/www; }
}
CONF
cat > "$OUT/proxy/nginx.conf" <<CONF
worker_processes 1;
pid $OUT/proxy/nginx.pid;
error_log $OUT/proxy/error.log warn;
events { worker_connections 4096; }
http {
  $NGX_LOG
  keepalive_requests 1000000;
  client_body_temp_path $OUT/proxy/tmp;
  proxy_temp_path $OUT/proxy/ptmp;
  upstream backend { server 127.0.0.1:$BACK; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGX;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$OUT/backend/nginx.pid" "$OUT/proxy/nginx.pid"; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
}
trap cleanup EXIT

"$NGINX" -c "$OUT/backend/nginx.conf" -e "$OUT/backend/error.log"
"$NGINX" -c "$OUT/proxy/nginx.conf" -e "$OUT/proxy/error.log"
# berth in a session of its own, as nginx is (it daemonizes, and so calls setsid): the kernel
# shares CPU between sessions first (sched_autogroup), so a berth left in this script's session
# would split one share with wrk's threads while nginx had a share to itself. (As services,
# each would be in its own cgroup.)
setsid "$BENCH_BIN" --listen 127.0.0.1:$BERTH --upstream 127.0.0.1:$BACK --threads "$THREADS" $BERTH_LOG \
  > "$OUT/berth.log" 2>&1 &
PIDS+=($!)

wait_up() {
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$1/1k.bin" && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1" >&2; exit 1
}
wait_up $BACK; wait_up $NGX; wait_up $BERTH

# wrk prints "99%  1.23ms"; convert to microseconds.
p99_us() { awk '$1=="99%"{v=$2; u=v; gsub(/[0-9.]/,"",u); gsub(/[a-z]/,"",v);
  m=(u=="us")?1:(u=="ms")?1000:(u=="s")?1000000:1; printf "%d\n", v*m}' "$1"; }
rps() { awk '/^Requests\/sec/{printf "%d\n", $2}' "$1"; }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:int((a[NR/2]+a[NR/2+1])/2)}'; }

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); wrk -t$WRK_THREADS -c$CONNS -d${SECS}s; berth threads=$THREADS; nginx proxy 1 worker"
for r in $(seq "$ROUNDS"); do
  # Alternate who goes first, so neither always runs on the cooler (or hotter) half of a round.
  order="nginx berth"; [ $((r % 2)) = 0 ] && order="berth nginx"
  for who in $order; do
    port=$NGX; [ $who = berth ] && port=$BERTH
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECS}s" --latency "http://127.0.0.1:$port/1k.bin" > "$OUT/wrk-$who-$r.txt"
    if grep -q "Non-2xx\|Socket errors" "$OUT/wrk-$who-$r.txt"; then
      echo "warning: errors in $OUT/wrk-$who-$r.txt" >&2
    fi
    printf "round %s %-6s %8s req/s  p99 %6s us\n" "$r" "$who" "$(rps "$OUT/wrk-$who-$r.txt")" "$(p99_us "$OUT/wrk-$who-$r.txt")"
  done
done

N_RPS=$(for r in $(seq "$ROUNDS"); do rps "$OUT/wrk-nginx-$r.txt"; done | median)
B_RPS=$(for r in $(seq "$ROUNDS"); do rps "$OUT/wrk-berth-$r.txt"; done | median)
N_P99=$(for r in $(seq "$ROUNDS"); do p99_us "$OUT/wrk-nginx-$r.txt"; done | median)
B_P99=$(for r in $(seq "$ROUNDS"); do p99_us "$OUT/wrk-berth-$r.txt"; done | median)
echo
echo "| proxy | req/s (median) | p99 (median) |"
echo "| --- | --- | --- |"
echo "| nginx $($NGINX -v 2>&1 | sed 's/.*nginx\///'), 1 worker | $N_RPS | ${N_P99} us |"
echo "| berth router, $THREADS threads | $B_RPS | ${B_P99} us |"
awk -v b="$B_RPS" -v n="$N_RPS" -v bp="$B_P99" -v np="$N_P99" \
  'BEGIN{printf "\nberth/nginx: throughput %.2fx, p99 %.2fx (lower is better)\n", b/n, bp/np}'
