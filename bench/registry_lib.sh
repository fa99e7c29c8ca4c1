# registry_lib.sh: helpers shared by registry_bench.sh and storage_bench.sh (sourced, not run).
#
# The sourcing script provides: IMAGES (image cache dir), OUT (raw outputs), RAW (the samples
# file), TMP (scratch), REPO (repository name), the AUTH assoc array (KIND -> "id:secret" for
# servers that need credentials), WRK_THREADS/WRK_CONNS/WRK_SECS, a `run` variable (the round
# number, used in output file names) and a function `port_of KIND`.
# shellcheck shell=bash

bench_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
now_ns() { date +%s%N; }
# cpu_ms PID: the process's CPU time so far (utime + stime), in ms.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RAW"; }  # server metric value

# ---------------------------------------------------------------- set-up
ensure_pkgs() {  # ensure_pkgs COMMAND:PACKAGE...: installs the packages whose command is missing
  local need=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
  done
  if ((${#need[@]})); then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

build_berth() {  # build_berth ROOT BUILD_DIR DO_BUILD: sets BERTHD and BERTH (Release build)
  if (($3)); then
    log "building berthd and berth (Release) in $2"
    cmake -S "$1" -B "$2" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$2" -j2 --target berthd berth >/dev/null
  fi
  BERTHD=$2/bin/berthd
  BERTH=$2/bin/berth
  [[ -x $BERTHD && -x $BERTH ]] || { echo "no berthd in $2/bin" >&2; exit 1; }
}

# ---------------------------------------------------------------- images
image() {  # image NAME LAYERS BYTES FILES: cached OCI layout $IMAGES/NAME:latest
  local name=$1 stamp="$IMAGES/$1.stamp" spec="$2 $3 ${4:-1}"
  if [[ -f $stamp && $(cat "$stamp") == "$spec" ]]; then return; fi
  log "building image $name ($2 layers x $3 bytes)"
  rm -rf "${IMAGES:?}/$name"
  "$bench_lib_dir/make_image.sh" "$IMAGES/$name" latest "$2" "$3" "${4:-1}"
  echo "$spec" >"$stamp"
}
layout_bytes() { find "$IMAGES/$1/blobs" -type f -printf '%s\n' | awk '{s+=$1} END {print s}'; }

# ---------------------------------------------------------------- push / pull (skopeo)
push() {  # push KIND IMAGE TAG -> seconds
  local port t0 t1
  port=$(port_of "$1")
  t0=$(now_ns)
  local creds=()
  [[ -n ${AUTH[$1]:-} ]] && creds=(--dest-creds "${AUTH[$1]}")
  skopeo copy -q --dest-tls-verify=false "${creds[@]}" "oci:$IMAGES/$2:latest" \
    "docker://127.0.0.1:$port/$REPO:$3" >/dev/null ||
    { echo "push of $2 to $1 failed" >&2; return 1; }
  t1=$(now_ns)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}'
}

# With PULL_CPU set to a file, pull also writes skopeo's CPU time there (user + system, s).
pull() {  # pull KIND TAG -> seconds
  local port t0 t1 dst TIMEFORMAT='%3U %3S' LC_ALL=C  # C: time's decimal point for awk
  port=$(port_of "$1")
  dst=$(mktemp -d "$TMP/pull.XXXXXX")
  t0=$(now_ns)
  local creds=()
  [[ -n ${AUTH[$1]:-} ]] && creds=(--src-creds "${AUTH[$1]}")
  { time skopeo copy -q --src-tls-verify=false "${creds[@]}" "docker://127.0.0.1:$port/$REPO:$2" \
    "oci:$dst/img:latest" >/dev/null; } 2>"$dst.time" ||
    { cat "$dst.time" >&2; rm -rf "$dst" "$dst.time"; echo "pull of $2 from $1 failed" >&2; return 1; }
  t1=$(now_ns)
  [[ -n ${PULL_CPU:-} ]] && tail -1 "$dst.time" | awk '{print $1 + $2}' >"$PULL_CPU"
  rm -rf "$dst" "$dst.time"
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}'
}

# ---------------------------------------------------------------- request rates (wrk, ab)
to_ms() {  # 1.23ms | 456.00us | 1.20s -> ms
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else { sub(/s$/, "", v); printf "%.3f", v * 1000 } }'
}
run_wrk() {  # run_wrk KIND NAME URL [wrk args]: one sample of NAME_rps, NAME_p50_ms, NAME_p99_ms
  local kind=$1 name=$2 url=$3 f
  shift 3
  f=$OUT/wrk-$kind-$name-$run.txt
  wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${WRK_SECS}s" --latency "$@" "$url" >"$f"
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$f")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$f")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$f")")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$f")
  [[ -z $non2xx ]] || log "WARNING: $kind $name: $non2xx non-2xx responses (see $f)"
  record "$kind" "${name}_rps" "$rps"
  record "$kind" "${name}_p50_ms" "$p50"
  record "$kind" "${name}_p99_ms" "$p99"
  log "$kind $name run $run: ${rps} req/s p50 ${p50}ms p99 ${p99}ms (load $(loadavg))"
}
# wrk 4.1's response parser is not told the request was HEAD, so it waits for the
# Content-Length bytes of a body that never comes and completes 0 requests. Blob HEADs are
# therefore measured with ApacheBench (ab -i: HEAD, -k: keep-alive), same concurrency and
# duration; its CSV percentiles give p99 with sub-millisecond resolution.
run_ab_head() { run_ab "$@" -i; }  # run_ab_head KIND NAME URL
run_ab() {  # run_ab KIND NAME URL [ab args]: one sample of NAME_rps, NAME_p50_ms, NAME_p99_ms
  local kind=$1 name=$2 url=$3 f
  shift 3
  f=$OUT/ab-$kind-$name-$run.txt
  local auth=()
  [[ -n ${AUTH[$kind]:-} ]] && auth=(-A "${AUTH[$kind]}")
  ab -q -k -c "$WRK_CONNS" -t "$WRK_SECS" -n 10000000 "${auth[@]}" "$@" -e "$f.csv" "$url" >"$f" 2>&1
  local rps p50 p99 failed
  rps=$(awk '/^Requests per second:/ {print $4}' "$f")
  p50=$(awk -F, '$1 == "50" {printf "%.3f", $2}' "$f.csv")
  p99=$(awk -F, '$1 == "99" {printf "%.3f", $2}' "$f.csv")
  failed=$(awk '/^(Failed requests|Non-2xx responses):/ {s += $NF} END {print s + 0}' "$f")
  ((failed == 0)) || log "WARNING: $kind $name: $failed failed/non-2xx responses (see $f)"
  record "$kind" "${name}_rps" "$rps"
  record "$kind" "${name}_p50_ms" "$p50"
  record "$kind" "${name}_p99_ms" "$p99"
  log "$kind $name run $run: ${rps} req/s p50 ${p50}ms p99 ${p99}ms (load $(loadavg))"
}

# ---------------------------------------------------------------- report helpers
median() {  # median KIND METRIC
  awk -F'\t' -v k="$1" -v m="$2" '$1 == k && $2 == m {print $3}' "$RAW" | sort -g |
    awk '{v[NR] = $1} END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
      else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { if (v == "") print "n/a"; else printf "%.*f", d, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2fx", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/) print "n/a"; else print (a + 0 >= b + 0 ? "yes" : "no") }'; }
