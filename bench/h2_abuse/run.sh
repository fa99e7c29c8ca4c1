#!/usr/bin/env bash
# Attacks on the router's HTTP/2 listener, with the figures of docs/benchmarks.md ("After the
# HTTP/2 hardening"): starts an nginx backend (127.0.0.1:47100, with stub_status), a router in
# front of it (berth_router_bench, 2 threads: plain 47101, TLS 47102), a slow backend (47110,
# /sleep/N answers after N seconds) and a second router in front of that (47111, 47112); runs
# one script from this directory with its arguments; stops everything. Each script samples the
# router's RSS, CPU and descriptors and times a normal client (curl from 127.0.0.2) meanwhile.
#
#   bench/h2_abuse/run.sh rr_probe.py 500                  # 500 HEADERS+RST_STREAM on one connection
#   bench/h2_abuse/run.sh rr_multi.py 5 20000              # rapid reset on 5 connections
#   bench/h2_abuse/run.sh h2_attacks.py zero_window 10 60  # 10 x 128 streams, window shut
#   bench/h2_abuse/run.sh h2_attacks.py stalled_body 75    # a POST that never sends its body
#   bench/h2_abuse/run.sh hb_multi.py 2                    # HPACK bombs on 2 connections
#   ZW=1 PATHT=/100k.bin DURATION=25 bench/h2_abuse/run.sh budget.py 30 128 0
#   SLOW=1 bench/h2_abuse/run.sh budget.py 130 128 40      # 130 x 128 streams of 40 s (router 2)
#
# Knobs: BUILD_DIR (default build), OUT (bench/out/h2_abuse). The ports are fixed (the scripts
# name them); the run stops at once if one is taken.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
OUT=${OUT:-$ROOT/bench/out/h2_abuse}
BIN=$BUILD_DIR/bin/berth_router_bench
[ $# -ge 1 ] || { sed -n '2,18p' "$0"; exit 2; }
[ -x "$BIN" ] || { echo "no $BIN: build it first (cmake --build build)" >&2; exit 2; }
command -v nginx >/dev/null || { echo "need nginx (scripts/setup --test)" >&2; exit 2; }
for p in 47100 47101 47102 47110 47111 47112; do
  if ss -Hltn "( sport = :$p )" | grep -q .; then echo "port $p is taken" >&2; exit 2; fi
done

rm -rf "$OUT" && mkdir -p "$OUT/www" "$OUT/backend/tmp"
head -c 1024 /dev/urandom > "$OUT/www/1k.bin"
head -c 100000 /dev/urandom > "$OUT/www/100k.bin"
truncate -s 100000000 "$OUT/www/100m.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$OUT/key.pem" \
  -out "$OUT/cert.pem" -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  2>/dev/null
cat > "$OUT/backend/nginx.conf" <<CONF
worker_processes 4;
pid $OUT/backend/nginx.pid;
error_log $OUT/backend/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $OUT/backend/tmp;
  client_max_body_size 0;
  server { listen 127.0.0.1:47100; root $OUT/www;
    location = /status { stub_status; }
    location /post { proxy_pass http://127.0.0.1:47100/1k.bin; proxy_method GET; }
  }
}
CONF

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$OUT/backend/nginx.pid" ] && kill "$(cat "$OUT/backend/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true
nginx -c "$OUT/backend/nginx.conf" -e "$OUT/backend/error.log"
python3 bench/h2_abuse/slow_backend.py 47110 > "$OUT/slow.log" 2>&1 &
PIDS+=($!)
start_router() {  # NAME PLAIN TLS UPSTREAM
  "$BIN" --listen 127.0.0.1:$2 --tls-listen 127.0.0.1:$3 --cert "$OUT/cert.pem" \
    --key "$OUT/key.pem" --upstream "$4" --threads 2 > "$OUT/$1.log" 2>&1 &
  PIDS+=($!)
  echo $! > "$OUT/$1.pid"
}
start_router router 47101 47102 127.0.0.1:47100
start_router r2 47111 47112 127.0.0.1:47110
for _ in $(seq 50); do
  curl -sfk -o /dev/null https://127.0.0.1:47102/1k.bin && break
  sleep 0.1
done

export OUT
if [ "${SLOW:-0}" = 1 ]; then
  export PLAIN_PORT=47111 TLS_PORT=47112 RPID=$OUT/r2.pid
fi
script=$1
shift
cd bench/h2_abuse
python3 "$script" "$@"
