#!/usr/bin/env bash
# deploy_bench.sh: berth services, push to serving. One berthd (registry + router + runc
# runtime) on free loopback ports; a busybox httpd app image (port 8080, serves its version
# string) built with umoci from Debian's busybox-static and pushed with skopeo.
#
#   1. push-to-serving latency: from the end of `skopeo copy` (its exit) to the first router
#      answer with the new version (curl through the router every ~10 ms); no load.
#   2. instance start: per deployment, from berthd's log (ms timestamps): deployment started ->
#      layer unpacked -> runtime "instance started" (runc run returned) -> "switched to
#      revision R in X ms" (first health probe passed, route published).
#   3. rolling deploys under load: wrk against the router during LOAD_DEPLOYS consecutive
#      auto-deploys; total requests, non-2xx (counted by a Lua script), socket errors.
#
# Prints a markdown table; raw samples and berthd's log go to $OUT (bench/out/, git-ignored).
# Exits non-zero if the harness fails, not if a target is missed. Needs root (runc).
#
# Usage: bench/deploy_bench.sh [--quick] [--no-build]
# Environment knobs (defaults in brackets):
#   DEPLOYS [7]        pushes measured without load (v2, v3, ...)
#   LOAD_DEPLOYS [5]   consecutive pushes under load
#   WRK_THREADS [1] WRK_CONNS [8]
#   BUILD_DIR [build-bench]  berth build dir (built with CMake Release unless --no-build)
#   SRC_REV [git HEAD]  what the table says was built (when BUILD_DIR is from another tree)
#   OUT [bench/out]    raw results (deploy-raw.tsv, deploy-berthd.log, deploy-wrk.txt)
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
DEPLOYS=${DEPLOYS:-7}
LOAD_DEPLOYS=${LOAD_DEPLOYS:-5}
WRK_THREADS=${WRK_THREADS:-1}
WRK_CONNS=${WRK_CONNS:-8}
BUILD_DIR=${BUILD_DIR:-$root/build-bench}
OUT=${OUT:-$here/out}
do_build=1
while (($#)); do
  case $1 in
    --quick) DEPLOYS=3 LOAD_DEPLOYS=2 ;;
    --no-build) do_build=0 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[deploy-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "deploy_bench: $*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites
((EUID == 0)) || die "needs root (runc, overlayfs, namespaces)"
for t in runc skopeo umoci curl jq wrk ss; do
  command -v "$t" >/dev/null || die "$t is not installed (apt-get install runc skopeo umoci curl jq wrk iproute2)"
done
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX && $(ldd "$BUSYBOX" 2>&1 || true) == *"not a dynamic"* ]] || die "$BUSYBOX is not static (apt-get install busybox-static)"

if ((do_build)); then
  log "building berthd and berth (Release) in $BUILD_DIR"
  cmake -S "$root" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target berthd berth >/dev/null
fi
BERTHD=$BUILD_DIR/bin/berthd
BERTH=$BUILD_DIR/bin/berth
[[ -x $BERTHD && -x $BERTH ]] || die "no berthd/berth in $BUILD_DIR/bin"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RAW=$OUT/deploy-raw.tsv
BLOG=$OUT/deploy-berthd.log
: >"$RAW"
TMP=$(mktemp -d "$OUT/deploy-tmp.XXXXXX")
BERTHD_PID=""
WRK_PID=""

cleanup() {
  local rc=$?
  [[ -n $WRK_PID ]] && { kill "$WRK_PID" 2>/dev/null || true; wait "$WRK_PID" 2>/dev/null || true; }
  if [[ -n $BERTHD_PID ]]; then
    # SIGTERM: berthd stops its instances (runc) before it exits.
    kill "$BERTHD_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 300; i++)); do kill -0 "$BERTHD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$BERTHD_PID" 2>/dev/null || true
    wait "$BERTHD_PID" 2>/dev/null || true
    if [[ -d $TMP/data/runtime/runc ]]; then  # anything left behind (should be nothing)
      local id
      for id in $(runc --root "$TMP/data/runtime/runc" list -q 2>/dev/null); do
        log "WARNING: instance $id outlived berthd; deleting it"
        runc --root "$TMP/data/runtime/runc" delete -f "$id" >/dev/null 2>&1 || true
      done
    fi
  fi
  [[ -f $TMP/berthd.log ]] && cp "$TMP/berthd.log" "$BLOG"
  # overlay mounts of instances are gone with them; umount anything left before rm -rf.
  grep -F " $TMP/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" || true; done || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }  # no fork: bash 5 $EPOCHREALTIME
ms_sleep() { read -r -t "$1" -u "$SLEEP_FD" || true; }           # sleep without forking
exec {SLEEP_FD}<> <(:)

# ---------------------------------------------------------------- berthd
free_port() {  # a free TCP port on 127.0.0.1, not in the skip list
  local p
  for ((p = $1; p < $1 + 1000; p++)); do
    [[ " ${*:2} " == *" $p "* ]] && continue
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
  die "no free port from $1"
}
API_PORT=$(free_port 5321)
ROUTER_PORT=$(free_port 5331 "$API_PORT")
API=http://127.0.0.1:$API_PORT
ROUTER=http://127.0.0.1:$ROUTER_PORT
HOSTNAME_HDR="Host: web.localhost"
mkdir -p "$TMP/data"
log "starting berthd: registry/API $API, router $ROUTER, data $TMP/data"
"$BERTHD" --data "$TMP/data" --listen "127.0.0.1:$API_PORT" --router-listen "127.0.0.1:$ROUTER_PORT" \
  --no-access-log >"$TMP/berthd.log" 2>&1 &
BERTHD_PID=$!
for ((i = 0; i < 100; i++)); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$API/v2/") != 000 ]] && break
  kill -0 "$BERTHD_PID" 2>/dev/null || { cat "$TMP/berthd.log" >&2; BERTHD_PID=""; die "berthd died on start"; }
  sleep 0.1
done
((i < 100)) || die "berthd did not answer $API/v2/"
KEY_ID=$(sed -n 's/^BERTH_ACCESS_KEY_ID=//p' "$TMP/data/admin.credentials")
SECRET=$(sed -n 's/^BERTH_SECRET_ACCESS_KEY=//p' "$TMP/data/admin.credentials")
[[ -n $KEY_ID && -n $SECRET ]] || die "no admin credentials in $TMP/data/admin.credentials"
CREDS=$KEY_ID:$SECRET
bcli() { BERTH_ACCESS_KEY_ID=$KEY_ID BERTH_SECRET_ACCESS_KEY=$SECRET HOME=$TMP "$BERTH" --server "$API" "$@"; }
bcli repo create web/app >/dev/null

# ---------------------------------------------------------------- images
# A base image with busybox (one layer), then one image per version: base + a small layer with
# /www/index.html. Every push after the first uploads only that layer, the config and the
# manifest, as a typical app push does; the busybox layer is already in the registry and in
# the runtime's layer cache.
LAYOUT=$TMP/layout
APP='exec /bin/busybox httpd -f -p $PORT -h /www'
NVER=$((1 + DEPLOYS + LOAD_DEPLOYS))
log "building $NVER image versions with umoci"
{
  umoci init --layout "$LAYOUT"
  umoci new --image "$LAYOUT:base"
  umoci unpack --rootless --image "$LAYOUT:base" "$TMP/bundle"
  mkdir -p "$TMP/bundle/rootfs/bin" "$TMP/bundle/rootfs/www"
  cp "$BUSYBOX" "$TMP/bundle/rootfs/bin/busybox"
  umoci repack --image "$LAYOUT:base" "$TMP/bundle"
  umoci config --image "$LAYOUT:base" --os linux --architecture amd64 \
    --config.cmd /bin/busybox --config.cmd sh --config.cmd -c --config.cmd "$APP"
  rm -rf "$TMP/bundle"
  for ((v = 1; v <= NVER; v++)); do
    umoci unpack --rootless --image "$LAYOUT:base" "$TMP/bundle"
    echo "v$v" >"$TMP/bundle/rootfs/www/index.html"
    umoci repack --image "$LAYOUT:v$v" "$TMP/bundle"
    rm -rf "$TMP/bundle"
  done
} >"$TMP/umoci.log" 2>&1 || { cat "$TMP/umoci.log" >&2; die "building images failed"; }

push() {  # push VERSION: pushes layout tag vN as web/app:latest; digest to $TMP/digest-vN
  skopeo copy -q --dest-tls-verify=false --dest-creds "$CREDS" --digestfile "$TMP/digest-v$1" \
    "oci:$LAYOUT:v$1" "docker://127.0.0.1:$API_PORT/web/app:latest" >/dev/null ||
    die "push of v$1 failed"
}
body() { curl -s -m 2 -H "$HOSTNAME_HDR" "$ROUTER/" 2>/dev/null || true; }
settle() {  # waits until no deployment is queued or in progress; prints the newest status
  local n s
  for ((n = 0; n < 600; n++)); do
    s=$(bcli service deployments web --json)
    if [[ $(jq '[.[] | select(.status == "QUEUED" or .status == "IN_PROGRESS")] | length' <<<"$s") == 0 ]]; then
      jq -r 'max_by(.id) | .status' <<<"$s"
      return
    fi
    sleep 0.1
  done
  die "deployments still in progress after 60 s"
}
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RAW"; }  # phase version/metric value

push 1
log "creating service web (web/app:latest, port 8080, --auto-deploy)"
bcli service create web --image web/app:latest --port 8080 --auto-deploy >"$TMP/create.txt" 2>&1 ||
  { cat "$TMP/create.txt" >&2; die "service create failed"; }
[[ $(body) == v1 ]] || die "router does not serve v1 after create (got '$(body)')"
settle >/dev/null

# ---------------------------------------------------------------- 1: push to serving
wait_version() {  # wait_version vN: polls the router every ~10 ms; prints the ms it saw it at
  local want=$1 n
  for ((n = 0; n < 3000; n++)); do
    if [[ $(body) == "$want" ]]; then now_ms; return; fi
    ms_sleep 0.01
  done
  die "router never served $want (30 s)"
}
declare -A PUSH_END=() SEEN=() PHASE_OF=()
deploy_one() {  # deploy_one N PHASE
  local v=$1 t0 t1 t2 st
  t0=$(now_ms)
  push "$v"
  t1=$(now_ms)
  t2=$(wait_version "v$v")
  PUSH_END[$v]=$t1 SEEN[$v]=$t2 PHASE_OF[$v]=$2
  record "$2" "v$v" "push_ms=$((t1 - t0)) push_to_serving_ms=$((t2 - t1))"
  st=$(settle)
  [[ $st == SUCCEEDED ]] || die "deployment of v$v ended $st"
  log "$2 v$v: push $((t1 - t0)) ms, push end -> serving $((t2 - t1)) ms (load $(cut -d' ' -f1 /proc/loadavg))"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
v=1
for ((k = 0; k < DEPLOYS; k++)); do
  v=$((v + 1))
  deploy_one "$v" idle
  sleep 0.5
done

# ---------------------------------------------------------------- 3: rolling deploys under load
cat >"$TMP/count.lua" <<'EOF'
-- counts responses by status per thread; done() sums them over threads
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; bad = 0; codes = "" end
function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1
  else
    bad = bad + 1
    if bad <= 5 then codes = codes .. " " .. status end
  end
end
function done(summary, latency, requests)
  local o, b, c = 0, 0, ""
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("bad"); c = c .. t:get("codes") end
  io.write(string.format("LUA ok=%d non2xx=%d first_codes=%s\n", o, b, c))
end
EOF
log "rolling deploys under load: wrk -t$WRK_THREADS -c$WRK_CONNS against the router"
wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d600s --latency -s "$TMP/count.lua" -H "$HOSTNAME_HDR" \
  "$ROUTER/" >"$TMP/wrk.txt" 2>&1 &
WRK_PID=$!
sleep 2  # steady state before the first push
for ((k = 0; k < LOAD_DEPLOYS; k++)); do
  v=$((v + 1))
  deploy_one "$v" load
  sleep 1
done
kill -INT "$WRK_PID"
wait "$WRK_PID" || die "wrk failed: $(cat "$TMP/wrk.txt")"
WRK_PID=""
cp "$TMP/wrk.txt" "$OUT/deploy-wrk.txt"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- 2: the berthd log
# Timestamps (UTC, ms) of the controller's and the runtime's lines, per deployment.
cp "$TMP/berthd.log" "$BLOG"
ts_ms() { date -u -d "$1" +%s%3N; }
line_ts() { grep -F -- "$1" "$BLOG" | head -1 | cut -d' ' -f1; }  # first line containing $1
for ((x = 2; x <= v; x++)); do
  digest=$(cat "$TMP/digest-v$x")
  ev=$(grep -F "pushed ($digest); deploying it" "$BLOG" | head -1 | cut -d' ' -f1)
  [[ -n $ev ]] || die "no push event for v$x ($digest) in the berthd log"
  # The deployment that the event started: the first "deployment N of revision R started"
  # after the event line.
  start_line=$(awk -v d="pushed ($digest)" 'index($0, d) {f = 1; next} f && /deployment [0-9]+ of revision [0-9]+ started/ {print; exit}' "$BLOG")
  dep=$(sed -E 's/.*deployment ([0-9]+) of revision ([0-9]+) started.*/\1/' <<<"$start_line")
  rev=$(sed -E 's/.*deployment ([0-9]+) of revision ([0-9]+) started.*/\2/' <<<"$start_line")
  t_start=$(cut -d' ' -f1 <<<"$start_line")
  inst_line=$(grep -E "service web instance web-$rev-[0-9a-f]+ started \(revision $rev," "$BLOG" | head -1)
  inst=$(sed -E 's/.*instance (web-[0-9]+-[0-9a-f]+) started.*/\1/' <<<"$inst_line")
  t_rt=$(line_ts "instance started id=$inst ")
  t_unpack=$(awk -v s="$t_start" -v r="$t_rt" '$1 >= s && $1 <= r && /layer unpacked/ {print $1; exit}' "$BLOG")
  sw_line=$(grep -F "deployment $dep switched to revision $rev in " "$BLOG" | head -1)
  sw_ms=$(sed -E 's/.* in ([0-9]+) ms.*/\1/' <<<"$sw_line")
  t_sw=$(cut -d' ' -f1 <<<"$sw_line")
  # the instance of the previous revision, stopped after draining
  prev=$(grep -E "service web instance web-$((rev - 1))-[0-9a-f]+ started" "$BLOG" | tail -1 |
    sed -E 's/.*instance (web-[0-9]+-[0-9a-f]+) started.*/\1/')
  t_stop=$(line_ts "instance stopped id=$prev")
  [[ -n $t_start && -n $t_rt && -n $t_sw && -n $sw_ms ]] || die "incomplete berthd log for v$x (deployment $dep)"
  e=$(ts_ms "$ev"); s=$(ts_ms "$t_start"); r=$(ts_ms "$t_rt"); w=$(ts_ms "$t_sw")
  u=""; [[ -n $t_unpack ]] && u=$(ts_ms "$t_unpack")
  p=""; [[ -n $t_stop ]] && p=$(ts_ms "$t_stop")
  ph=${PHASE_OF[$x]}
  {
    record "$ph" event_after_push_end_ms $((e - PUSH_END[$x]))
    record "$ph" event_to_deploy_start_ms $((s - e))
    [[ -n $u ]] && record "$ph" deploy_start_to_unpacked_ms $((u - s))
    [[ -n $u ]] && record "$ph" unpacked_to_runc_started_ms $((r - u))
    record "$ph" deploy_start_to_runc_started_ms $((r - s))
    record "$ph" runc_started_to_switched_ms $((w - r))
    record "$ph" switched_in_ms "$sw_ms"
    record "$ph" switched_to_seen_ms $((SEEN[$x] - w))
    record "$ph" push_to_serving_ms $((SEEN[$x] - PUSH_END[$x]))
    record "$ph" event_to_seen_ms $((SEEN[$x] - e))
    [[ -n $p ]] && record "$ph" switched_to_old_stopped_ms $((p - w))
    record "$ph" push_end_to_done_ms $((${p:-$w} - PUSH_END[$x]))
  }
done
grep -E 'push_ms=' "$RAW" | sed -E 's/.*push_ms=([0-9]+).*/\1/' | while read -r m; do record all push_ms "$m"; done

# ---------------------------------------------------------------- report
vals() { awk -F'\t' -v p="$1" -v m="$2" '($1 == p || p == "all") && $2 == m {print $3}' "$RAW" | sort -g; }
median() { vals "$1" "$2" | awk '{v[NR] = $1} END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxv() { vals "$1" "$2" | tail -1; }
minv() { vals "$1" "$2" | head -1; }
list() { vals "$1" "$2" | paste -sd' ' -; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^-?[0-9.]+$/) print "n/a"; else print (a + 0 < b + 0 ? "yes" : "no") }'; }

requests=$(awk '/requests in/ {print $1}' "$OUT/deploy-wrk.txt")
duration=$(awk '/requests in/ {print $4}' "$OUT/deploy-wrk.txt" | tr -d ,)
lua_ok=$(sed -nE 's/^LUA ok=([0-9]+).*/\1/p' "$OUT/deploy-wrk.txt")
lua_bad=$(sed -nE 's/^LUA .*non2xx=([0-9]+).*/\1/p' "$OUT/deploy-wrk.txt")
wrk_non2xx=$(awk '/Non-2xx/ {print $NF}' "$OUT/deploy-wrk.txt"); wrk_non2xx=${wrk_non2xx:-0}
sock=$(sed -nE 's/.*Socket errors: (.*)/\1/p' "$OUT/deploy-wrk.txt")
sock_total=$(awk -v s="$sock" 'BEGIN { n = split(s, a, /[, ]+/); t = 0; for (i = 1; i <= n; i++) if (a[i] ~ /^[0-9]+$/) t += a[i]; print t }')
rps=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/deploy-wrk.txt")
p99=$(awk '$1 == "99%" {print $2}' "$OUT/deploy-wrk.txt")
maxlat=$(awk '$1 == "Latency" {print $4}' "$OUT/deploy-wrk.txt")
failed=$((lua_bad + sock_total))

{
  echo
  src_rev=${SRC_REV:-}
  if [[ -z $src_rev ]]; then
    src_rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')
    [[ -n $(git -C "$root" status --porcelain --untracked-files=no -- src 2>/dev/null) ]] && src_rev="$src_rev + uncommitted changes under src/"
  fi
  echo "berth services: push to serving ($(nproc) cores, $(uname -r), source $src_rev, built in $BUILD_DIR, $(date -u +%Y-%m-%d))"
  echo "images: busybox-static httpd; each push = 1 new small layer + config + manifest (skopeo copy); load average at start: $LOAD_START, at end: $LOAD_END"
  echo
  echo "| metric | median | max | samples (ms) | target | met? |"
  echo "| --- | --- | --- | --- | --- | --- |"
  m=$(median idle push_to_serving_ms); x=$(maxv idle push_to_serving_ms)
  echo "| push end -> router serves new version, no load, ms ($DEPLOYS deploys) | $m | $x | $(list idle push_to_serving_ms) | < 1000 | $(lt "$x" 1000) (max) |"
  m=$(median load push_to_serving_ms); x=$(maxv load push_to_serving_ms)
  echo "| push end -> router serves new version, under wrk load, ms ($LOAD_DEPLOYS deploys) | $m | $x | $(list load push_to_serving_ms) | < 1000 | $(lt "$x" 1000) (max) |"
  m=$(median idle switched_in_ms)
  echo "| deploy start -> healthy + routed (\"switched ... in X ms\"), no load, ms | $m | $(maxv idle switched_in_ms) | $(list idle switched_in_ms) | < 150 | $(lt "$m" 150) |"
  m=$(median load switched_in_ms)
  echo "| deploy start -> healthy + routed, under load, ms | $m | $(maxv load switched_in_ms) | $(list load switched_in_ms) | < 150 | $(lt "$m" 150) |"
  echo "| requests during $LOAD_DEPLOYS rolling deploys (wrk -t$WRK_THREADS -c$WRK_CONNS, ${duration:-?}, ${rps:-?} req/s) | ${requests:-?} | | 2xx: ${lua_ok:-?} | | |"
  echo "| non-2xx responses (Lua count / wrk's own) | ${lua_bad:-?} / $wrk_non2xx | | | 0 | $( ((lua_bad == 0 && wrk_non2xx == 0)) && echo yes || echo no) |"
  echo "| socket errors (connect, read, write, timeout) | $sock_total | | ${sock:-none reported} | 0 | $( ((sock_total == 0)) && echo yes || echo no) |"
  echo "| request latency under load, p99 / max | $p99 / $maxlat | | | | |"
  echo
  echo "Where the time goes (all $((v - 1)) deploys; berthd log timestamps have 1 ms resolution):"
  echo
  echo "| step | median ms | min | max |"
  echo "| --- | --- | --- | --- |"
  for pair in "push_ms:skopeo copy (the push itself, not counted above)" \
    "event_after_push_end_ms:push end -> berthd logs the push event (negative: before skopeo exited)" \
    "event_to_deploy_start_ms:push event -> deployment started" \
    "deploy_start_to_unpacked_ms:deployment started -> new layer unpacked" \
    "unpacked_to_runc_started_ms:layer unpacked -> runc run returned (instance started)" \
    "deploy_start_to_runc_started_ms:deployment started -> instance started (prepare + runc)" \
    "runc_started_to_switched_ms:instance started -> healthy and routed (health probes)" \
    "switched_to_seen_ms:routed -> curl poller sees the new version" \
    "event_to_seen_ms:push event (manifest stored) -> curl poller sees the new version" \
    "switched_to_old_stopped_ms:routed -> old instance drained and stopped" \
    "push_end_to_done_ms:push end -> deployment finished (old instance stopped)"; do
    k=${pair%%:*}
    echo "| ${pair#*:} | $(median all "$k") | $(minv all "$k") | $(maxv all "$k") |"
  done
} | tee "$OUT/deploy-results.md"

((lua_ok + lua_bad > 0)) || die "wrk completed no requests: $(cat "$OUT/deploy-wrk.txt")"
log "raw samples: $RAW; berthd log: $BLOG; wrk output: $OUT/deploy-wrk.txt"
