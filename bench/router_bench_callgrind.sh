#!/usr/bin/env bash
# Instructions per proxied request of berth's router, under callgrind: repeatable where wall
# clock figures are not (a shared 2-core VM moves req/s by 2x between runs).
#
#   bench/router_bench_callgrind.sh                      # uses build-bench/ (see router_bench.sh)
#   BUILD_DIR=$PWD/build-router2 N=20000 bench/router_bench_callgrind.sh
#
# The router runs on one I/O thread in front of the same nginx backend as router_bench.sh;
# `ab -k -c64 -nN` drives it. Prints total user-space instructions / N (start-up included,
# ~1% at N=20000) and the libc recv/sendmsg/epoll_wait calls per request.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
OUT=${OUT:-$ROOT/bench/out/router-callgrind}
N=${N:-20000}
command -v valgrind >/dev/null && command -v ab >/dev/null && command -v nginx >/dev/null || {
  echo "needs valgrind, ab (apache2-utils) and nginx" >&2; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT/www" "$OUT/backend"
head -c 1024 /dev/urandom > "$OUT/www/1k.bin"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BACK=$(free_port); PROXY=$(free_port)
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
nginx -c "$OUT/backend/nginx.conf" -e "$OUT/backend/error.log"
trap 'kill "$(cat "$OUT/backend/nginx.pid")" 2>/dev/null || true' EXIT
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
  "$BUILD_DIR/bin/berth_router_bench" --listen 127.0.0.1:$PROXY --upstream 127.0.0.1:$BACK \
  --threads 1 > "$OUT/valgrind.log" 2>&1 &
VG=$!
for _ in $(seq 150); do curl -sf -o /dev/null "http://127.0.0.1:$PROXY/1k.bin" && break; sleep 0.2; done
ab -q -k -n "$N" -c 64 "http://127.0.0.1:$PROXY/1k.bin" > "$OUT/ab.txt"
kill -INT $VG; wait $VG || true
grep -E "^(Complete|Failed) requests" "$OUT/ab.txt"
TOTAL=$(callgrind_annotate "$OUT/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "instructions per request: $((TOTAL / N))"
callgrind_annotate --tree=calling "$OUT/callgrind.out" 2>/dev/null |
  grep -E "> .*(linux/recv.c:recv|sendmsg.c:sendmsg|epoll_wait.c:epoll_wait) \(" |
  sed -E 's/.*linux\/([a-z_]+)\.c:[a-z_]+ \(([0-9,]+)x\).*/\1 \2/' | tr -d , |
  awk -v n="$N" '{c[$1]+=$2} END{for (k in c) printf "%s per request: %.2f\n", k, c[k]/n}'
