#!/usr/bin/env bash
# profile_push.sh [IMAGE]: counts berthd's syscalls (strace -f -c) while skopeo pushes one
# cached bench image (default: huge, built by registry_bench.sh), and prints bytes per
# recvmsg. PERF=1 also records a perf profile (software cpu-clock; no HW counters needed).
# Run registry_bench.sh once first so that $IMAGES/<IMAGE> exists.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
BUILD_DIR=${BUILD_DIR:-$root/build-bench}
IMAGES=${IMAGES:-$here/out/main/images}
OUT=${OUT:-$here/out/profile}
PORT=${PORT:-5311}
img=${1:-huge}
command -v strace >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null
[[ -d $IMAGES/$img ]] || { echo "no image $IMAGES/$img: run registry_bench.sh first" >&2; exit 1; }
mkdir -p "$OUT"
data=$(mktemp -d "$OUT/data.XXXXXX")
pid="" tracer=""
cleanup() {
  [[ -n $tracer ]] && kill -INT "$tracer" 2>/dev/null || true
  [[ -n $pid ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$data"
}
trap cleanup EXIT
"$BUILD_DIR/bin/berthd" --data "$data" --listen "127.0.0.1:$PORT" --no-access-log 2>"$OUT/berthd.stderr" &
pid=$!
for ((i = 0; i < 100; i++)); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/v2/" && break; sleep 0.1; done
"$BUILD_DIR/bin/berth" --server "http://127.0.0.1:$PORT" repo create bench/img >/dev/null
if [[ ${PERF:-0} == 1 ]]; then
  perf record -F 999 -g -p "$pid" -o "$OUT/push.perf" 2>/dev/null &
else
  strace -f -c -p "$pid" -o "$OUT/strace.txt" 2>/dev/null &
fi
tracer=$!
sleep 1
bytes=$(find "$IMAGES/$img/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
t0=$(date +%s%N)
skopeo copy -q --dest-tls-verify=false "oci:$IMAGES/$img:latest" "docker://127.0.0.1:$PORT/bench/img:p"
t1=$(date +%s%N)
sleep 0.5
kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true; tracer=""
echo "pushed $bytes bytes in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1e9}')s (under the tracer)"
if [[ ${PERF:-0} == 1 ]]; then
  perf report -i "$OUT/push.perf" --no-children -g none --sort symbol 2>/dev/null | grep '%' | cut -c1-110 | head -25
else
  head -12 "$OUT/strace.txt"
  awk -v b="$bytes" '$NF == "recvmsg" || $(NF-1) == "recvmsg" {print "bytes per recvmsg: " int(b / $4)}' "$OUT/strace.txt"
fi
