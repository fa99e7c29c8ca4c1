#!/usr/bin/env bash
# registry_bench.sh: berthd side by side with CNCF distribution (Debian `docker-registry`).
#
# Same machine, same images, same client (skopeo for push/pull, wrk for request rates).
# Prints a markdown table of medians; raw samples go to bench/out/ (git-ignored).
#
# Usage: bench/registry_bench.sh [--quick] [--no-build] [--only push|small|wrk|rss|huge]...
# Environment knobs (defaults in brackets):
#   RUNS [3]            repetitions per measurement (the median is reported)
#   BIG_LAYERS [4]      layers in the big image;  BIG_MB [50] MB of random data per layer
#   SMALL_LAYERS [50]   layers in the small image; SMALL_KB [32] KB of random data per layer
#   HUGE_MB [1024]      size of the single-layer image used for the peak-RSS push
#   WRK_THREADS [1] WRK_CONNS [32] WRK_SECS [10]
#   ACCESS_LOG [0]      1: run berthd with its access log on (default off: --no-access-log)
#   BUILD_DIR [build-bench]  berth build dir (built with CMake Release unless --no-build)
#   OUT [bench/out]     where data dirs and raw results go; IMAGES [$OUT/images] image cache
set -euo pipefail
shopt -s inherit_errexit  # a failing skopeo inside $(push ...) must stop the run, not time 0 s

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
RUNS=${RUNS:-3}
BIG_LAYERS=${BIG_LAYERS:-4}
BIG_MB=${BIG_MB:-50}
SMALL_LAYERS=${SMALL_LAYERS:-50}
SMALL_KB=${SMALL_KB:-32}
HUGE_MB=${HUGE_MB:-1024}
WRK_THREADS=${WRK_THREADS:-1}
WRK_CONNS=${WRK_CONNS:-32}
WRK_SECS=${WRK_SECS:-10}
ACCESS_LOG=${ACCESS_LOG:-0}
BUILD_DIR=${BUILD_DIR:-$root/build-bench}
OUT=${OUT:-$here/out}
PORT_DIST=${PORT_DIST:-5301}
PORT_BERTH=${PORT_BERTH:-5302}
REPO=bench/img
do_build=1
only=()
while (($#)); do
  case $1 in
    --quick) RUNS=1 BIG_MB=10 HUGE_MB=128 WRK_SECS=3 ;;
    --no-build) do_build=0 ;;
    --only) only+=("$2"); shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
want() { ((${#only[@]} == 0)) && return 0; local o; for o in "${only[@]}"; do [[ $o == "$1" ]] && return 0; done; return 1; }

# log, image, push, pull, run_wrk, run_ab_head, median, ratio, ...
. "$here/registry_lib.sh"

# ---------------------------------------------------------------- prerequisites
ensure_pkgs docker-registry:docker-registry wrk:wrk ab:apache2-utils skopeo:skopeo umoci:umoci \
  curl:curl jq:jq
# The Debian package may start its own registry on :5000; we never use that one.

build_berth "$root" "$BUILD_DIR" "$do_build"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
RAW=$OUT/raw.tsv
: >"$RAW"
TMP=$(mktemp -d "$OUT/tmp.XXXXXX")
SERVER_PID=""
declare -A PIDS=()
# berthd authenticates every request (iam.enforce): its admin key, read after start. The
# clients send it (skopeo --creds, wrk/ab Basic auth); distribution runs without auth.
declare -A AUTH=()
SAMPLER_PID=""

cleanup() {
  [[ -n $SAMPLER_PID ]] && kill "$SAMPLER_PID" 2>/dev/null || true
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- images
IMAGES=${IMAGES:-$OUT/images}
mkdir -p "$IMAGES"
want push && image big "$BIG_LAYERS" $((BIG_MB * 1000 * 1000))
want small && image small "$SMALL_LAYERS" $((SMALL_KB * 1024)) 4
want huge && image huge 1 $((HUGE_MB * 1024 * 1024))
if want wrk || want rss; then image big "$BIG_LAYERS" $((BIG_MB * 1000 * 1000)); fi

# ---------------------------------------------------------------- servers
port_of() { [[ $1 == dist ]] && echo "$PORT_DIST" || echo "$PORT_BERTH"; }

start_server() {  # start_server dist|berth DATADIR: one retry if the server dies on start
  local try
  for try in 1 2; do
    if start_server_once "$@"; then return 0; fi
    log "WARNING: $1 died on start (try $try); see $OUT/$1.stderr"
    sleep 1
  done
  echo "$1 would not start" >&2
  exit 1
}
start_server_once() {
  local kind=$1 data=$2 port
  port=$(port_of "$kind")
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "port $port is already in use by another process; set PORT_DIST/PORT_BERTH" >&2
    exit 1
  fi
  mkdir -p "$data"
  if [[ $kind == dist ]]; then
    cat >"$data.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $data
http:
  addr: 127.0.0.1:$port
EOF
    docker-registry serve "$data.yml" 2>>"$OUT/dist.stderr" &
  else
    local extra=(--no-access-log)
    ((ACCESS_LOG)) && extra=()
    "$BERTHD" --data "$data" --listen "127.0.0.1:$port" "${extra[@]}" 2>>"$OUT/berth.stderr" &
  fi
  SERVER_PID=$!
  PIDS[$kind]=$SERVER_PID
  local i
  for ((i = 0; i < 100; i++)); do
    # Any HTTP answer will do: berthd's /v2/ answers 401 until a client authenticates.
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/") != 000 ]]; then
      break
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      unset "PIDS[$kind]"
      SERVER_PID=""
      return 1
    fi
    sleep 0.1
  done
  ((i < 100)) || { echo "$kind did not answer /v2/" >&2; exit 1; }
  if [[ $kind == berth ]]; then
    AUTH[$kind]=$(. "$data/admin.credentials" && echo "$BERTH_ACCESS_KEY_ID:$BERTH_SECRET_ACCESS_KEY")
    BERTH_ACCESS_KEY_ID=${AUTH[$kind]%%:*} BERTH_SECRET_ACCESS_KEY=${AUTH[$kind]#*:} \
      "$BERTH" --server "http://127.0.0.1:$port" repo create "$REPO" >/dev/null
  fi
}

stop_server() {  # stop_server [KIND]: the named server, else the last one started
  local pid=$SERVER_PID k
  [[ -n ${1:-} ]] && pid=${PIDS[$1]:-}
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for k in "${!PIDS[@]}"; do [[ ${PIDS[$k]} == "$pid" ]] && unset "PIDS[$k]"; done
  [[ $pid == "$SERVER_PID" ]] && SERVER_PID=""
  return 0
}
SERVERS=(dist berth)

# ---------------------------------------------------------------- 1+2: push/pull
if want push || want small; then
  for ((run = 1; run <= RUNS; run++)); do
    for kind in "${SERVERS[@]}"; do
      data=$TMP/$kind-run$run
      start_server "$kind" "$data"
      sleep 1
      record "$kind" idle_rss_kb "$(rss_kb "$SERVER_PID")"
      if want push; then
        c0=$(cpu_ms "$SERVER_PID")
        s=$(push "$kind" big big); record "$kind" big_push_s "$s"
        record "$kind" big_push_cpu_ms $(($(cpu_ms "$SERVER_PID") - c0))
        s2=$(pull "$kind" big); record "$kind" big_pull_s "$s2"
        log "$kind run $run: big push ${s}s pull ${s2}s (load $(loadavg))"
      fi
      if want small; then
        c0=$(cpu_ms "$SERVER_PID")
        s=$(push "$kind" small small); record "$kind" small_push_s "$s"
        record "$kind" small_push_cpu_ms $(($(cpu_ms "$SERVER_PID") - c0))
        s2=$(pull "$kind" small); record "$kind" small_pull_s "$s2"
        log "$kind run $run: small push ${s}s pull ${s2}s"
      fi
      stop_server
      rm -rf "$data" "$data.yml"
    done
  done
fi

# ---------------------------------------------------------------- 3: wrk
if want wrk || want rss; then
  # Both servers up at once (distinct ports) so the runs can alternate between them: the
  # machine may be shared, and alternating spreads any background load over both.
  declare -A URL_M=() URL_B=()
  first=$(jq -r '.manifests[0].digest' "$IMAGES/big/index.json")
  layer=$(jq -r '.layers[0].digest' "$IMAGES/big/blobs/sha256/${first#sha256:}")
  for kind in "${SERVERS[@]}"; do
    start_server "$kind" "$TMP/$kind-wrk"
    push "$kind" big big >/dev/null
    base="http://127.0.0.1:$(port_of "$kind")/v2/$REPO"
    URL_M[$kind]=$base/manifests/big
    URL_B[$kind]=$base/blobs/$layer
  done
  if want wrk; then
    for ((run = 1; run <= RUNS; run++)); do
      for kind in "${SERVERS[@]}"; do
        auth=()
        [[ -n ${AUTH[$kind]:-} ]] && auth=(-H "Authorization: Basic $(printf '%s' "${AUTH[$kind]}" | base64 -w0)")
        run_wrk "$kind" manifest_get "${URL_M[$kind]}" \
          -H "Accept: application/vnd.oci.image.manifest.v1+json" "${auth[@]}"
        run_ab_head "$kind" blob_head "${URL_B[$kind]}"
      done
    done
  fi
  sleep 2
  for kind in "${SERVERS[@]}"; do
    record "$kind" loaded_idle_rss_kb "$(rss_kb "${PIDS[$kind]}")"
    stop_server "$kind"
    rm -rf "$TMP/$kind-wrk" "$TMP/$kind-wrk.yml"
  done
fi

# ---------------------------------------------------------------- 4: RSS during a huge push
if want huge; then
  for ((run = 1; run <= RUNS; run++)); do
    for kind in "${SERVERS[@]}"; do
      data=$TMP/$kind-huge$run
      start_server "$kind" "$data"
      samples=$OUT/rss-$kind-huge-$run.txt
      : >"$samples"
      (
        # every 100 ms, at most 20 minutes
        for ((i = 0; i < 12000; i++)); do
          r=$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null) || break
          echo "$r" >>"$samples"
          sleep 0.1
        done
      ) &
      SAMPLER_PID=$!
      s=$(push "$kind" huge huge)
      sleep 0.3
      kill "$SAMPLER_PID" 2>/dev/null || true
      wait "$SAMPLER_PID" 2>/dev/null || true
      SAMPLER_PID=""
      record "$kind" huge_push_s "$s"
      record "$kind" huge_peak_rss_kb "$(sort -n "$samples" | tail -1)"
      record "$kind" huge_start_rss_kb "$(head -1 "$samples")"
      log "$kind run $run: ${HUGE_MB} MiB push ${s}s peak RSS $(sort -n "$samples" | tail -1) kB"
      stop_server
      rm -rf "$data" "$data.yml"
    done
  done
fi

LOAD_END=$(loadavg)
# ---------------------------------------------------------------- report
# row LABEL DIST BERTH RATIO TARGET MET DECIMALS
row() { printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$(fmt "$2" "$7")" "$(fmt "$3" "$7")" "$4" "$5" "$6"; }

{
  echo
  echo "berth vs distribution ($(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -r), runs=$RUNS, medians;"
  echo "wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECS}s --latency; ab -k -i -c$WRK_CONNS -t$WRK_SECS; berthd access log: $([[ $ACCESS_LOG == 1 ]] && echo on || echo off))"
  echo "load average at start: $LOAD_START, at end: $LOAD_END (2 cores: anything near 2 means other work shared the CPUs))"
  echo
  echo "| metric | distribution | berth | ratio (berth advantage) | target | met? |"
  echo "| --- | --- | --- | --- | --- | --- |"
  if want push; then
    mb=$(awk -v b="$(layout_bytes big)" 'BEGIN {print b / 1e6}')
    for op in push pull; do
      d=$(median dist "big_${op}_s"); b=$(median berth "big_${op}_s")
      dt=$(awk -v m="$mb" -v s="$d" 'BEGIN {if (s > 0) print m / s}')
      bt=$(awk -v m="$mb" -v s="$b" 'BEGIN {if (s > 0) print m / s}')
      r=$(ratio "$bt" "$dt")
      row "${BIG_LAYERS}x${BIG_MB} MB image $op, MB/s (${d}s vs ${b}s)" "$dt" "$bt" "$r" ">= 1.5x" "$(ge "${r%x}" 1.5)" 1
    done
    # The server's own CPU (utime + stime of its process) per pushed MB.
    d=$(median dist big_push_cpu_ms); b=$(median berth big_push_cpu_ms)
    row "${BIG_LAYERS}x${BIG_MB} MB image push, server CPU ms per MB" \
      "$(awk -v c="$d" -v m="$mb" 'BEGIN {print c / m}')" \
      "$(awk -v c="$b" -v m="$mb" 'BEGIN {print c / m}')" "$(ratio "$d" "$b")" "lower" "$(ge "$d" "$b")" 2
  fi
  if want small; then
    for op in push pull; do
      d=$(median dist "small_${op}_s"); b=$(median berth "small_${op}_s")
      r=$(ratio "$d" "$b")
      row "${SMALL_LAYERS}-layer image $op, s" "$d" "$b" "$r" ">= 2x (half the time)" "$(ge "${r%x}" 2)" 2
    done
    d=$(median dist small_push_cpu_ms); b=$(median berth small_push_cpu_ms)
    row "${SMALL_LAYERS}-layer image push, server CPU ms" "$d" "$b" "$(ratio "$d" "$b")" "lower" "$(ge "$d" "$b")" 0
  fi
  if want wrk; then
    for m in manifest_get blob_head; do
      d=$(median dist "${m}_rps"); b=$(median berth "${m}_rps")
      r=$(ratio "$b" "$d")
      tool=wrk; [[ $m == blob_head ]] && tool=ab
      row "${m/_/ } req/s ($tool)" "$d" "$b" "$r" ">= 10x" "$(ge "${r%x}" 10)" 0
      d=$(median dist "${m}_p99_ms"); b=$(median berth "${m}_p99_ms")
      row "${m/_/ } p99 latency, ms" "$d" "$b" "$(ratio "$d" "$b")" "berth < 5 ms" \
        "$(awk -v b="$b" 'BEGIN { if (b == "") print "n/a"; else print (b < 5 ? "yes" : "no") }')" 2
    done
  fi
  if want push || want small; then
    d=$(median dist idle_rss_kb); b=$(median berth idle_rss_kb)
    row "idle RSS after start, MiB" "$(awk -v v="$d" 'BEGIN {print v / 1024}')" \
      "$(awk -v v="$b" 'BEGIN {print v / 1024}')" "$(ratio "$d" "$b")" "lower" "$(ge "$d" "$b")" 1
  fi
  if want wrk || want rss; then
    d=$(median dist loaded_idle_rss_kb); b=$(median berth loaded_idle_rss_kb)
    row "idle RSS after push + wrk, MiB" "$(awk -v v="$d" 'BEGIN {print v / 1024}')" \
      "$(awk -v v="$b" 'BEGIN {print v / 1024}')" "$(ratio "$d" "$b")" "lower" "$(ge "$d" "$b")" 1
  fi
  if want huge; then
    d=$(median dist huge_peak_rss_kb); b=$(median berth huge_peak_rss_kb)
    bs=$(median berth huge_start_rss_kb)
    row "peak RSS pushing a ${HUGE_MB} MiB layer, MiB" "$(awk -v v="$d" 'BEGIN {print v / 1024}')" \
      "$(awk -v v="$b" 'BEGIN {print v / 1024}')" "$(ratio "$d" "$b")" \
      "flat (berth peak - start < 16 MiB)" "$(awk -v p="$b" -v s="$bs" 'BEGIN {print (p - s < 16384 ? "yes" : "no")}')" 1
    d=$(median dist huge_push_s); b=$(median berth huge_push_s)
    mb=$(awk -v b="$(layout_bytes huge)" 'BEGIN {print b / 1e6}')
    dt=$(awk -v m="$mb" -v s="$d" 'BEGIN {if (s > 0) print m / s}')
    bt=$(awk -v m="$mb" -v s="$b" 'BEGIN {if (s > 0) print m / s}')
    r=$(ratio "$bt" "$dt")
    row "${HUGE_MB} MiB layer push, MB/s (${d}s vs ${b}s)" "$dt" "$bt" "$r" ">= 1.5x" "$(ge "${r%x}" 1.5)" 1
  fi
} | tee "$OUT/results.md"
