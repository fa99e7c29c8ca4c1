#!/usr/bin/env bash
# pull_through_bench.sh: the pull-through cache against pulling straight from the upstream.
#
# The upstream is CNCF distribution (Debian `docker-registry`) on loopback; the client is skopeo
# (copy to an OCI layout on the same disk). For each image, each run:
#   direct   skopeo copy from distribution
#   cold     skopeo copy through a berthd with an empty cache (a fresh data dir each run)
#   cached   the same copy again (everything served by berth)
#   local    skopeo copy of the same image pushed to berth as an ordinary repository
# Goals (issue 13): cold <= 1.1x direct; cached ~= local. Prints min/median/max per column, the
# ratios of the medians, and berthd's CPU time per cold pull.
#
# LINK_RATE (a tc rate such as 1gbit; needs root): distribution runs in a network namespace of
# the bench's own, behind a veth pair whose both ends a token bucket (tc tbf) holds to that
# rate, as an upstream across a network is (Docker Hub is never on loopback). Both the direct
# pull and berth's fetches cross that link. Unset: everything on loopback, where the pull is
# CPU-bound and berth's work (receive, write, hash, send again) adds to the time instead of
# overlapping the transfer. LINK_RTT_MS (needs LINK_RATE): the direct pull and berth's fetches
# also go through bench/delay_proxy.py, which adds that round-trip time (tc's netem, the usual
# way, is not in this kernel).
#
# Usage: bench/pull_through_bench.sh [--quick] [--no-build]
#   RUNS [5]  BIG_LAYERS [4] BIG_MB [50]  SMALL_LAYERS [50] SMALL_KB [32]  LINK_RATE []  LINK_RTT_MS []
#   BUILD_DIR [build-bench]  OUT [bench/out]  IMAGES [$OUT/images]
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
RUNS=${RUNS:-5}
BIG_LAYERS=${BIG_LAYERS:-4}
BIG_MB=${BIG_MB:-50}
SMALL_LAYERS=${SMALL_LAYERS:-50}
SMALL_KB=${SMALL_KB:-32}
BUILD_DIR=${BUILD_DIR:-$root/build-bench}
OUT=${OUT:-$here/out}
PORT_DIST=${PORT_DIST:-5321}
PORT_BERTH=${PORT_BERTH:-5322}
LINK_RATE=${LINK_RATE:-}
LINK_RTT_MS=${LINK_RTT_MS:-}
PORT_PROXY=${PORT_PROXY:-5323}
do_build=1
while (($#)); do
  case $1 in
    --quick) RUNS=2 BIG_MB=10 ;;
    --no-build) do_build=0 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

for t in docker-registry skopeo umoci curl jq; do
  command -v "$t" >/dev/null || { echo "$t is missing: scripts/setup --test installs it" >&2; exit 1; }
done
if [[ -n $LINK_RATE ]]; then
  for t in ip tc; do
    command -v "$t" >/dev/null || { echo "LINK_RATE needs $t (Debian's iproute2)" >&2; exit 1; }
  done
  ((EUID == 0)) || { echo "LINK_RATE needs root (a network namespace, tc)" >&2; exit 1; }
fi
if [[ -n $LINK_RTT_MS && -z $LINK_RATE ]]; then
  echo "LINK_RTT_MS needs LINK_RATE" >&2
  exit 2
fi
if ((do_build)); then
  log "building berthd and berth (Release) in $BUILD_DIR"
  cmake -S "$root" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j2 --target berthd berth >/dev/null
fi
BERTHD=$BUILD_DIR/bin/berthd
BERTH=$BUILD_DIR/bin/berth
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
IMAGES=${IMAGES:-$OUT/images}
TMP=$(mktemp -d "$OUT/pt.XXXXXX")
DIST_PID="" BERTH_PID="" PROXY_PID=""
stop() {
  if [[ -n $1 ]]; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
NETNS=berth-bench-up.$$
VETH=bbu$$
cleanup() {
  stop "$BERTH_PID"
  stop "$DIST_PID"
  stop "$PROXY_PID"
  if [[ -n $LINK_RATE ]]; then
    ip netns del "$NETNS" 2>/dev/null || true
    ip link del "$VETH" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
wait_http() { for ((i = 0; i < 100; i++)); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }
now() { date +%s%N; }
# The process's CPU time so far (utime + stime), in ms: berthd's cost per cold pull, a figure
# a shared machine disturbs less than the wall clock.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{print int(($14 + $15) * 1000 / hz)}' "/proc/$1/stat"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b - a) / 1e9}'; }

mkdir -p "$IMAGES"
[[ -d $IMAGES/big ]] || { log "making big ($BIG_LAYERS x $BIG_MB MB)"; "$here/make_image.sh" "$IMAGES/big" latest "$BIG_LAYERS" $((BIG_MB * 1000000)) >/dev/null; }
[[ -d $IMAGES/small ]] || { log "making small ($SMALL_LAYERS x $SMALL_KB KB)"; "$here/make_image.sh" "$IMAGES/small" latest "$SMALL_LAYERS" $((SMALL_KB * 1000)) >/dev/null; }

DIST_HOST=127.0.0.1
run_dist=()
if [[ -n $LINK_RATE ]]; then
  # 10.203.0.0/30: only this namespace and its veth use it.
  DIST_HOST=10.203.0.2
  ip netns add "$NETNS"
  ip link add "$VETH" type veth peer name eth0 netns "$NETNS"
  ip addr add 10.203.0.1/30 dev "$VETH"
  ip link set "$VETH" up
  ip -n "$NETNS" addr add "$DIST_HOST/30" dev eth0
  ip -n "$NETNS" link set eth0 up
  ip -n "$NETNS" link set lo up
  # veth offloads make 64 KB segments: the bucket must hold a few of them.
  tc qdisc add dev "$VETH" root tbf rate "$LINK_RATE" burst 256kb latency 50ms
  tc -n "$NETNS" qdisc add dev eth0 root tbf rate "$LINK_RATE" burst 256kb latency 50ms
  run_dist=(ip netns exec "$NETNS")
  log "distribution at $DIST_HOST behind a $LINK_RATE link"
fi
cat >"$TMP/dist.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $TMP/dist}}
http: {addr: $DIST_HOST:$PORT_DIST}
EOF
${run_dist[@]+"${run_dist[@]}"} docker-registry serve "$TMP/dist.yml" 2>"$TMP/dist.log" &
DIST_PID=$!
wait_http "http://$DIST_HOST:$PORT_DIST/v2/"
for img in big small; do
  skopeo copy -q --dest-tls-verify=false "oci:$IMAGES/$img:latest" "docker://$DIST_HOST:$PORT_DIST/bench/$img:latest"
done
# Where clients reach the upstream: distribution itself, or the delaying proxy in front of it.
UP=$DIST_HOST:$PORT_DIST
if [[ -n $LINK_RTT_MS ]]; then
  python3 "$here/delay_proxy.py" "$PORT_PROXY" "$DIST_HOST" "$PORT_DIST" "$LINK_RTT_MS" &
  PROXY_PID=$!
  UP=127.0.0.1:$PORT_PROXY
  wait_http "http://$UP/v2/"
  log "the upstream is at $UP, $LINK_RTT_MS ms away"
fi

# A berthd on a fresh data dir with the upstream "up" under prefix up.local and both images
# pushed as local repositories too.
start_berth() {
  stop "$BERTH_PID"
  rm -rf "$TMP/var"
  "$BERTHD" --data "$TMP/var" --listen "127.0.0.1:$PORT_BERTH" --no-access-log \
    --router-listen 127.0.0.1:0 --router-tls-listen off --dns-listen off 2>"$TMP/berthd.log" &
  BERTH_PID=$!
  wait_http "http://127.0.0.1:$PORT_BERTH/healthz"
  export BERTH_ACCESS_KEY_ID BERTH_SECRET_ACCESS_KEY
  BERTH_ACCESS_KEY_ID=$(sed -n 's/^BERTH_ACCESS_KEY_ID=//p' "$TMP/var/admin.credentials")
  BERTH_SECRET_ACCESS_KEY=$(sed -n 's/^BERTH_SECRET_ACCESS_KEY=//p' "$TMP/var/admin.credentials")
  "$BERTH" --server "http://127.0.0.1:$PORT_BERTH" registry upstream create up \
    --url "http://$UP" --prefix up.local >/dev/null
}
export BERTH_SERVER="http://127.0.0.1:$PORT_BERTH"
creds() { echo "$BERTH_ACCESS_KEY_ID:$BERTH_SECRET_ACCESS_KEY"; }
pull() {  # pull SOURCE_REF [creds]: seconds
  rm -rf "$TMP/dest"
  local t0 t1
  t0=$(now)
  skopeo copy -q --src-tls-verify=false ${2:+--src-creds "$2"} "docker://$1" "oci:$TMP/dest:x"
  t1=$(now)
  secs "$t0" "$t1"
}

declare -A samples
for ((run = 1; run <= RUNS; run++)); do
  for img in big small; do
    start_berth
    c=$(creds)
    "$BERTH" repo create "local/$img" >/dev/null
    skopeo copy -q --dest-tls-verify=false --dest-creds "$c" "oci:$IMAGES/$img:latest" \
      "docker://127.0.0.1:$PORT_BERTH/local/$img:latest"
    samples[$img.direct]+="$(pull "$UP/bench/$img:latest") "
    # The local pushes put the blobs in berth: remove them from the cold run's reach by using
    # a second fresh berthd for it.
    samples[$img.local]+="$(pull "127.0.0.1:$PORT_BERTH/local/$img:latest" "$c") "
    start_berth
    c=$(creds)
    cpu0=$(cpu_ms "$BERTH_PID")
    samples[$img.cold]+="$(pull "127.0.0.1:$PORT_BERTH/up.local/bench/$img:latest" "$c") "
    samples[$img.coldcpu]+="$(($(cpu_ms "$BERTH_PID") - cpu0)) "
    samples[$img.cached]+="$(pull "127.0.0.1:$PORT_BERTH/up.local/bench/$img:latest" "$c") "
    log "run $run $img done"
  done
done

stats() {  # min median max of a list of numbers
  tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR] = $1} END {printf "%s %s %s", a[1], a[int((NR + 1) / 2)], a[NR]}'
}
echo
echo "| image | direct (min/med/max s) | cold through berth | cached in berth | local in berth | cold/direct | cached/local |"
echo "|---|---|---|---|---|---|---|"
for img in big small; do
  read -r dmin dmed dmax <<<"$(stats "${samples[$img.direct]}")"
  read -r cmin cmed cmax <<<"$(stats "${samples[$img.cold]}")"
  read -r hmin hmed hmax <<<"$(stats "${samples[$img.cached]}")"
  read -r lmin lmed lmax <<<"$(stats "${samples[$img.local]}")"
  printf '| %s | %s/%s/%s | %s/%s/%s | %s/%s/%s | %s/%s/%s | %.2f | %.2f |\n' "$img" \
    "$dmin" "$dmed" "$dmax" "$cmin" "$cmed" "$cmax" "$hmin" "$hmed" "$hmax" "$lmin" "$lmed" "$lmax" \
    "$(awk -v a="$cmed" -v b="$dmed" 'BEGIN {print a / b}')" \
    "$(awk -v a="$hmed" -v b="$lmed" 'BEGIN {print a / b}')"
done
echo
for img in big small; do
  read -r umin umed umax <<<"$(stats "${samples[$img.coldcpu]}")"
  echo "berthd CPU per cold pull of $img: $umin/$umed/$umax ms (min/median/max)"
done
echo "runs=$RUNS link=${LINK_RATE:-loopback}${LINK_RTT_MS:+,rtt=${LINK_RTT_MS}ms} big=${BIG_LAYERS}x${BIG_MB}MB small=${SMALL_LAYERS}x${SMALL_KB}KB load=$(cut -d' ' -f1-3 /proc/loadavg)"
