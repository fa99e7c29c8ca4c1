#!/usr/bin/env bash
# berth's router vs nginx, side by side on this machine, on the same certificate (an ECDSA
# P-256 leaf made here) and the same backend:
#   0. plain HTTP requests/s over keep-alive     wrk -c$CONNS http://...
#   1. HTTPS requests/s over keep-alive          wrk -c$CONNS https://...
#   2. new TLS handshakes/s (one request each)    wrk -c$CONNS -H 'Connection: close'
#   3. HTTP/2 requests/s                          h2load -c$CONNS -m$STREAMS
#   4. HTTP/2 requests/s to an HTTP/2 (h2c) backend, as gRPC runs: h2load as in 3; nginx
#      proxies with grpc_pass (keepalive 64), berth with a route of protocol h2c
# each with its p99 (wrk's --latency; for h2load, from its per-request --log-file).
#
#   bench/router_tls_bench.sh                       # builds build-bench/ (Release)
#   BUILD_DIR=build ROUNDS=1 SECS=5 bench/router_tls_bench.sh --no-build
#
# Backend: nginx (2 workers) serving a 1 KiB file with keep-alive (over h2c on a second port). Proxies: nginx with
# worker_processes = THREADS (berth's I/O threads, default nproc), TLS 1.2/1.3, session
# tickets on, http2 on the TLS listener, `upstream { keepalive 64; }`, access log off; berth's
# router (bench/router_bench_main.cc --tls-listen) with THREADS I/O threads, access log off.
# Every server binds its own free loopback port and writes its pid/logs under $OUT; all are
# stopped on exit. Prints medians and the ratios berth/nginx. Knobs: ROUNDS SECS CONNS
# STREAMS WRK_THREADS THREADS BUILD_DIR OUT NGINX_SAME_SUITES HS_REQUESTS TESTS (a subset of
# "plain keepalive handshake hs_h2load h2 h2c"; hs_h2load is the handshake test with h2load
# --h1 as the client, which waits in epoll where wrk spins; it is not in the default set).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
CONNS=${CONNS:-64}
STREAMS=${STREAMS:-10}
WRK_THREADS=${WRK_THREADS:-2}
HS_REQUESTS=${HS_REQUESTS:-20000}
THREADS=${THREADS:-$(nproc)}
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
OUT=${OUT:-$ROOT/bench/out/router_tls}
BUILD=1
for a in "$@"; do
  case $a in
    --no-build) BUILD=0 ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done

for t in nginx wrk h2load openssl curl; do
  command -v $t >/dev/null 2>&1 || { echo "need $t (scripts/setup --test)" >&2; exit 2; }
done
NGINX=$(command -v nginx)

if [ "$BUILD" = 1 ]; then
  [ -f "$BUILD_DIR/build.ninja" ] || cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD_DIR" berth_router_bench >/dev/null
fi
BENCH_BIN=$BUILD_DIR/bin/berth_router_bench

rm -rf "$OUT" && mkdir -p "$OUT/www" "$OUT/backend" "$OUT/proxy"
head -c 1024 /dev/urandom > "$OUT/www/1k.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$OUT/key.pem" \
  -out "$OUT/cert.pem" -days 2 -subj /CN=bench -addext subjectAltName=DNS:bench,IP:127.0.0.1 \
  2>/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BACK=$(free_port); NGX=$(free_port); NGX_PLAIN=$(free_port); BERTH=$(free_port); BERTH_TLS=$(free_port)
BACK_H2C=$(free_port); NGX_H2C=$(free_port); BERTH_H2C=$(free_port); BERTH_H2C_TLS=$(free_port)

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
  server { listen 127.0.0.1:$BACK_H2C reuseport http2; root $OUT/www; }
}
CONF
# NGINX_SAME_SUITES=1 gives nginx berth's cipher order, chosen by the server as berth does
# (nginx's default follows the client's order: AES-256-GCM with SHA-384 for wrk and curl).
NGX_SUITES=""
if [ "${NGINX_SAME_SUITES:-0}" = 1 ]; then
  NGX_SUITES="ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;"
fi
cat > "$OUT/proxy/nginx.conf" <<CONF
worker_processes $THREADS;
pid $OUT/proxy/nginx.pid;
error_log $OUT/proxy/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  client_body_temp_path $OUT/proxy/tmp;
  proxy_temp_path $OUT/proxy/ptmp;
  upstream backend { server 127.0.0.1:$BACK; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGX ssl http2;
    listen 127.0.0.1:$NGX_PLAIN;
    ssl_certificate $OUT/cert.pem;
    ssl_certificate_key $OUT/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    $NGX_SUITES
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
  upstream backend_h2c { server 127.0.0.1:$BACK_H2C; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGX_H2C ssl http2;
    ssl_certificate $OUT/cert.pem;
    ssl_certificate_key $OUT/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    $NGX_SUITES
    location / {
      grpc_pass grpc://backend_h2c;
      grpc_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      grpc_set_header X-Forwarded-Proto https;
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
setsid "$BENCH_BIN" --listen 127.0.0.1:$BERTH --tls-listen 127.0.0.1:$BERTH_TLS --cert "$OUT/cert.pem" \
  --key "$OUT/key.pem" --upstream 127.0.0.1:$BACK --threads "$THREADS" > "$OUT/berth.log" 2>&1 &
PIDS+=($!)
setsid "$BENCH_BIN" --listen 127.0.0.1:$BERTH_H2C --tls-listen 127.0.0.1:$BERTH_H2C_TLS \
  --cert "$OUT/cert.pem" --key "$OUT/key.pem" --upstream 127.0.0.1:$BACK_H2C --protocol h2c \
  --threads "$THREADS" > "$OUT/berth-h2c.log" 2>&1 &
PIDS+=($!)

wait_up() {
  for _ in $(seq 100); do
    curl -sfk -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "nothing answers at $1" >&2; exit 1
}
wait_up "http://127.0.0.1:$BACK/1k.bin"
wait_up "https://127.0.0.1:$NGX/1k.bin"
wait_up "http://127.0.0.1:$NGX_PLAIN/1k.bin"
wait_up "http://127.0.0.1:$BERTH/1k.bin"
wait_up "https://127.0.0.1:$BERTH_TLS/1k.bin"
wait_up "https://127.0.0.1:$NGX_H2C/1k.bin"
wait_up "https://127.0.0.1:$BERTH_H2C_TLS/1k.bin"

# wrk prints "99%  1.23ms"; convert to microseconds.
p99_us() { awk '$1=="99%"{v=$2; u=v; gsub(/[0-9.]/,"",u); gsub(/[a-z]/,"",v);
  m=(u=="us")?1:(u=="ms")?1000:(u=="s")?1000000:1; printf "%d\n", v*m}' "$1"; }
rps() { awk '/^Requests\/sec/{printf "%d\n", $2}' "$1"; }
# h2load: "finished in 5.00s, 12345.67 req/s, ..."; its --log-file has one line per request,
# the third column the time in microseconds.
h2_rps() { awk '/^finished in/{gsub(",","",$4); printf "%d\n", $4}' "$1"; }
h2_p99() { sort -n -k3 "$1" | awk '{a[NR]=$3} END{i=int(NR*0.99); if(i<1)i=1; print a[i]}'; }
median() { sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:int((a[NR/2]+a[NR/2+1])/2)}'; }

# CPU time (utime + stime, in clock ticks) of the proxy under test: nginx's workers, or berth.
proxy_pids() {  # who test
  if [ "$1" = berth ]; then
    if [ "$2" = h2c ]; then echo "${PIDS[1]}"; else echo "${PIDS[0]}"; fi
  else
    pgrep -P "$(cat "$OUT/proxy/nginx.pid")"
  fi
}
cpu_ticks() { local t=0; for p in $(proxy_pids "$1" "$2"); do
  t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# Minor page faults of the same processes: memory the allocator gave back and touched again.
minflt() { local t=0; for p in $(proxy_pids "$1" "$2"); do
  t=$((t + $(awk '{print $10}' "/proc/$p/stat"))); done; echo $t; }

# Prints "req/s p99_us cpu_us_per_request faults_per_100_requests". CPU per request is the figure a shared machine
# disturbs least: it does not depend on how much of the cores the proxy was given.
run_one() {  # who test round
  local who=$1 test=$2 r=$3 port=$NGX
  [ "$who" = berth ] && port=$BERTH_TLS
  if [ "$test" = h2c ]; then
    port=$NGX_H2C
    [ "$who" = berth ] && port=$BERTH_H2C_TLS
  fi
  local f="$OUT/$test-$who-$r" before after n fbefore fafter
  before=$(cpu_ticks "$who" "$test")
  fbefore=$(minflt "$who" "$test")
  local scheme=https
  if [ "$test" = plain ]; then
    scheme=http port=$NGX_PLAIN
    [ "$who" = berth ] && port=$BERTH
  fi
  case $test in
    plain | keepalive | handshake)
      local close=()
      [ "$test" = handshake ] && close=(-H 'Connection: close')
      wrk -t"$WRK_THREADS" -c"$CONNS" -d"${SECS}s" --latency "${close[@]}" \
        "$scheme://127.0.0.1:$port/1k.bin" > "$f.txt"
      after=$(cpu_ticks "$who" "$test")
      fafter=$(minflt "$who" "$test")
      n=$(awk '/requests in/{print $1}' "$f.txt")
      echo "$(rps "$f.txt") $(p99_us "$f.txt") $(( (after - before) * TICK_US / (n > 0 ? n : 1) ))" \
        "$(( (fafter - fbefore) * 100 / (n > 0 ? n : 1) ))" ;;
    h2 | h2c | hs_h2load)
      # h2load's timed mode (-D) does not end when the server closes each connection, so
      # the handshake test gives it a count instead (HS_REQUESTS).
      local h2opts=(-m"$STREAMS" -D"$SECS" --warm-up-time=1)
      [ "$test" = hs_h2load ] && h2opts=(--h1 -H 'Connection: close' -n"$HS_REQUESTS")
      timeout $((SECS * 10 + 30)) h2load -t"$WRK_THREADS" -c"$CONNS" "${h2opts[@]}" \
        --log-file="$f.log" "https://127.0.0.1:$port/1k.bin" > "$f.txt" 2>&1
      after=$(cpu_ticks "$who" "$test")
      fafter=$(minflt "$who" "$test")
      [ "$test" = hs_h2load ] || grep -q "Application protocol: h2" "$f.txt" ||
        echo "warning: $f.txt: not h2" >&2
      # Requests in the log: the ones measured (the warm-up's are not logged, but its CPU
      # counts, so this slightly overstates CPU per request for both sides alike).
      n=$(wc -l < "$f.log")
      echo "$(h2_rps "$f.txt") $(h2_p99 "$f.log") $(( (after - before) * TICK_US / (n > 0 ? n : 1) ))" \
        "$(( (fafter - fbefore) * 100 / (n > 0 ? n : 1) ))" ;;
  esac
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $CONNS connections," \
  "${SECS}s per run, $ROUNDS rounds; berth threads=$THREADS; nginx workers=$THREADS"
echo
echo "| test | nginx req/s | berth req/s | ratio | nginx p99 | berth p99 | p99 ratio | nginx CPU/req | berth CPU/req | nginx faults/100 req | berth faults/100 req |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for test in ${TESTS:-plain keepalive handshake h2 h2c}; do
  for r in $(seq "$ROUNDS"); do
    order="nginx berth"; [ $((r % 2)) = 0 ] && order="berth nginx"
    for who in $order; do
      run_one "$who" "$test" "$r" > "$OUT/$test-$who-$r.res"
    done
  done
  N_RPS=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f1 "$OUT/$test-nginx-$r.res"; done | median)
  B_RPS=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f1 "$OUT/$test-berth-$r.res"; done | median)
  N_P99=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f2 "$OUT/$test-nginx-$r.res"; done | median)
  B_P99=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f2 "$OUT/$test-berth-$r.res"; done | median)
  N_CPU=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f3 "$OUT/$test-nginx-$r.res"; done | median)
  B_CPU=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f3 "$OUT/$test-berth-$r.res"; done | median)
  N_FLT=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f4 "$OUT/$test-nginx-$r.res"; done | median)
  B_FLT=$(for r in $(seq "$ROUNDS"); do cut -d' ' -f4 "$OUT/$test-berth-$r.res"; done | median)
  awk -v t="$test" -v n="$N_RPS" -v b="$B_RPS" -v np="$N_P99" -v bp="$B_P99" -v nc="$N_CPU" \
    -v bc="$B_CPU" -v nf="$N_FLT" -v bf="$B_FLT" \
    'BEGIN{printf "| %s | %d | %d | %.2fx | %d us | %d us | %.2fx | %d us | %d us | %d | %d |\n",
      t, n, b, b/n, np, bp, bp/np, nc, bc, nf, bf}'
done
