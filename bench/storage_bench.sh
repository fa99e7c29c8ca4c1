#!/usr/bin/env bash
# storage_bench.sh: berthd on PostgreSQL + S3 side by side with CNCF distribution (Debian
# `docker-registry`) on its own S3 driver, both against the same Ceph RGW (issue 17).
#
# Starts by itself, all on 127.0.0.1 and free ports, and stops it all at exit:
#   - a PostgreSQL 15 cluster (initdb in a temp dir; as `nobody` when run as root)
#   - a single-node Ceph cluster: ceph-mon, ceph-osd (memstore), radosgw (beast), auth none,
#     one S3 user (radosgw-admin user create) — as tests/support/rgw.cc does
#   - berthd: store.driver postgres (a fresh database per server start), storage.driver s3
#     (a fresh bucket per start), redirect_pulls as REDIRECT says
#   - docker-registry: storage s3 (regionendpoint = the RGW, a fresh bucket per start),
#     redirect disabled unless REDIRECT=1
# then measures push/pull (skopeo) of a big and a many-small-layer image, and manifest GETs
# (wrk) and blob HEADs (ab), alternating which server goes first each round. The big image is
# pulled right after its push (berthd serves the local copies the push left), then cold, as on
# another node (berthd's local copies removed: it streams each blob to the client while it
# fetches it from S3 into a local copy, verified before it is kept), then once more, which
# berthd serves from the copies the cold pull left. The small image's pull is cold. Prints a markdown
# table of medians; raw samples go to $OUT (git-ignored).
#
# Usage: bench/storage_bench.sh [--quick] [--no-build] [--with-embedded] [--only push|small|wrk]...
#   --with-embedded  also runs bench/registry_bench.sh (fs + SQLite berthd vs fs distribution,
#                    same knobs) first and puts its medians in the table for comparison
# Environment knobs (defaults in brackets):
#   RUNS [3]            rounds per measurement (the median is reported)
#   BIG_LAYERS [4]      layers in the big image;  BIG_MB [50] MB of random data per layer
#   SMALL_LAYERS [50]   layers in the small image; SMALL_KB [32] KB of random data per layer
#   WRK_THREADS [1] WRK_CONNS [32] WRK_SECS [10]
#   REDIRECT [0]        1: berthd redirect_pulls: true and distribution's redirects on (blob
#                       GETs answered 307 to a presigned RGW URL by both)
#   RGW_NODELAY [1]     radosgw's beast tcp_nodelay (0: Nagle on, beast's default; see below)
#   COLD_PULLS [1]      cold pulls of the big image per round (berthd's local copies removed
#                       before each; distribution keeps none): more cold samples per server start
#   BASELINE_DIR []     a second berth build dir (bin/berthd): its berthd runs as a third server,
#                       "base", in every push/pull round, to compare a change with its parent
#                       under the same noise (push/pull only)
#   BUILD_DIR [build-bench]  berth build dir (built with CMake Release unless --no-build)
#   OUT [bench/out/storage]  raw results; IMAGES [bench/out/images] image cache (shared with
#                       registry_bench.sh)
set -euo pipefail
shopt -s inherit_errexit  # a failing skopeo inside $(push ...) must stop the run, not time 0 s

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
RUNS=${RUNS:-3}
BIG_LAYERS=${BIG_LAYERS:-4}
BIG_MB=${BIG_MB:-50}
SMALL_LAYERS=${SMALL_LAYERS:-50}
SMALL_KB=${SMALL_KB:-32}
WRK_THREADS=${WRK_THREADS:-1}
WRK_CONNS=${WRK_CONNS:-32}
WRK_SECS=${WRK_SECS:-10}
REDIRECT=${REDIRECT:-0}
BUILD_DIR=${BUILD_DIR:-$root/build-bench}
OUT=${OUT:-$here/out/storage}
IMAGES=${IMAGES:-$here/out/images}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
REPO=bench/img
do_build=1
with_embedded=0
quick=()
only=()
while (($#)); do
  case $1 in
    --quick) RUNS=1 BIG_MB=10 WRK_SECS=3 quick=(--quick) ;;
    --no-build) do_build=0 ;;
    --with-embedded) with_embedded=1 ;;
    --only) only+=("$2"); shift ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
want() { ((${#only[@]} == 0)) && return 0; local o; for o in "${only[@]}"; do [[ $o == "$1" ]] && return 0; done; return 1; }

# log, image, push, pull, run_wrk, run_ab_head, median, ratio, ...
. "$here/registry_lib.sh"

# ---------------------------------------------------------------- prerequisites
ensure_pkgs docker-registry:docker-registry wrk:wrk ab:apache2-utils skopeo:skopeo umoci:umoci \
  curl:curl jq:jq python3:python3 radosgw:radosgw ceph-mon:ceph-mon ceph-osd:ceph-osd \
  "$PGBIN/initdb:postgresql-15"

build_berth "$root" "$BUILD_DIR" "$do_build"
COLD_PULLS=${COLD_PULLS:-1}
declare -A BERTHD_OF=([berth]=$BERTHD)
KINDS=(berth dist)  # the push/pull rounds' servers
if [[ -n ${BASELINE_DIR:-} ]]; then
  [[ -x $BASELINE_DIR/bin/berthd ]] || { echo "no berthd in $BASELINE_DIR/bin" >&2; exit 1; }
  BERTHD_OF[base]=$BASELINE_DIR/bin/berthd
  KINDS=(berth base dist)
fi

mkdir -p "$OUT" "$IMAGES"
OUT=$(cd "$OUT" && pwd)
IMAGES=$(cd "$IMAGES" && pwd)
RAW=$OUT/raw.tsv
: >"$RAW"

# The fs + SQLite figures first (their own servers, stopped before anything here starts).
if ((with_embedded)); then
  log "embedded figures: bench/registry_bench.sh --only push --only small --only wrk"
  free_port_py='import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  RUNS=$RUNS BIG_LAYERS=$BIG_LAYERS BIG_MB=$BIG_MB SMALL_LAYERS=$SMALL_LAYERS \
    SMALL_KB=$SMALL_KB WRK_THREADS=$WRK_THREADS WRK_CONNS=$WRK_CONNS WRK_SECS=$WRK_SECS \
    BUILD_DIR=$BUILD_DIR OUT=$OUT/embedded IMAGES=$IMAGES \
    PORT_DIST=$(python3 -c "$free_port_py") PORT_BERTH=$(python3 -c "$free_port_py") \
    "$here/registry_bench.sh" --no-build "${quick[@]}" --only push --only small --only wrk \
    >"$OUT/embedded.md"
fi

LOAD_START=$(loadavg)
TMP=$(mktemp -d "$OUT/tmp.XXXXXX")
declare -A PIDS=()  # KIND -> pid of a registry server
declare -A AUTH=()  # KIND -> "id:secret" (berthd enforces IAM; distribution runs without auth)
CEPH_PIDS=()
PGDIR=""
as_pg=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  # radosgw first, the monitor last.
  for ((p = ${#CEPH_PIDS[@]} - 1; p >= 0; p--)); do
    kill "${CEPH_PIDS[p]}" 2>/dev/null || true
    wait "${CEPH_PIDS[p]}" 2>/dev/null || true
  done
  if [[ -n $PGDIR ]]; then
    "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
random_text() {  # random_text ALPHABET N
  python3 -c 'import secrets, sys; print("".join(secrets.choice(sys.argv[1]) for _ in range(int(sys.argv[2]))))' "$1" "$2"
}
wait_port() {  # wait_port PORT PID SECONDS: until something accepts on PORT
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------- images
want push && image big "$BIG_LAYERS" $((BIG_MB * 1000 * 1000))
want small && image small "$SMALL_LAYERS" $((SMALL_KB * 1024)) 4
want wrk && image big "$BIG_LAYERS" $((BIG_MB * 1000 * 1000))

# ---------------------------------------------------------------- PostgreSQL 15
# Default durability (fsync, synchronous_commit on): this is the store berth would run on.
start_postgres() {
  PGDIR=$(mktemp -d /tmp/berth-bench-pg.XXXXXX)  # nobody must reach it: not under /work
  if ((EUID == 0)); then
    chown nobody "$PGDIR"
    as_pg=(runuser -u nobody --)
  fi
  "${as_pg[@]}" "$PGBIN/initdb" -D "$PGDIR/data" -U berth -A trust -E UTF8 --locale=C \
    --no-instructions >"$OUT/pg-initdb.log" 2>&1 || { cat "$OUT/pg-initdb.log" >&2; exit 1; }
  printf "listen_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nmax_connections = 100\n" \
    "$PGDIR" >>"$PGDIR/data/postgresql.auto.conf"
  for _ in 1 2 3; do  # another process may take the free port first
    PGPORT=$(free_port)
    if "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 \
      -o "-p $PGPORT" start >/dev/null; then
      log "PostgreSQL 15 on 127.0.0.1:$PGPORT ($PGDIR)"
      return 0
    fi
  done
  tail -20 "$PGDIR/server.log" >&2
  exit 1
}
psql_do() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U berth -d postgres -c "$1"; }

# ---------------------------------------------------------------- Ceph RGW (tests/support/rgw.cc)
CEPH=$TMP/ceph
ceph_tool() { local t=$1; shift; timeout 60 "$t" -c "$CEPH/ceph.conf" "$@"; }
ceph_spawn() {  # ceph_spawn DAEMON ARGS...: in the foreground of a background job
  local d=$1; shift
  "$d" -f -c "$CEPH/ceph.conf" "$@" >>"$CEPH/log/$d.out" 2>&1 &
  CEPH_PIDS+=($!)
}
start_rgw() {
  local t0 fsid mon_addr osd_uuid i
  t0=$(now_ns)
  mkdir -p "$CEPH"/{run,log,mon/a,osd/0,crash,rgw}
  RGW_PORT=$(free_port)
  mon_addr="v2:127.0.0.1:$(free_port)"
  fsid=$(cat /proc/sys/kernel/random/uuid)
  # No cephx, so connections can only be crc (else radosgw retries its monitor handshake for
  # minutes); pool and free-space limits for one OSD on a shared disk; short paxos batching so
  # that radosgw's first start (it creates its pools) takes seconds.
  cat >"$CEPH/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = $mon_addr
public addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
ms mon client mode = crc
ms client mode = crc
auth cluster required = none
auth service required = none
auth client required = none
osd objectstore = memstore
memstore device bytes = 8589934592
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
mon data avail crit = 1
mon data avail warn = 2
paxos propose interval = 0.01
paxos min wait = 0.001
osd mon report interval = 1
run dir = $CEPH/run
admin socket = $CEPH/run/\$name.asok
pid file = $CEPH/run/\$name.pid
log file = $CEPH/log/\$name.log
mon cluster log file = $CEPH/log/\$cluster.\$channel.log
crash dir = $CEPH/crash
keyring = $CEPH/keyring
mon data = $CEPH/mon/\$id
osd data = $CEPH/osd/\$id
rgw data = $CEPH/rgw
[mon.a]
mon addr = $mon_addr
EOF
  monmaptool --create --fsid "$fsid" --addv a "[$mon_addr]" "$CEPH/monmap" >/dev/null
  ceph-mon -c "$CEPH/ceph.conf" --mkfs -i a --monmap "$CEPH/monmap" >/dev/null
  ceph_spawn ceph-mon -i a
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  [[ $(ceph_tool ceph --connect-timeout 30 osd new "$osd_uuid") == 0 ]] ||
    { echo "ceph osd new failed; see $CEPH/log" >&2; exit 1; }
  ceph_tool ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1
  ceph_spawn ceph-osd -i 0
  for ((i = 0; i < 300; i++)); do
    ceph_tool ceph --connect-timeout 10 osd stat 2>/dev/null | grep -q '1 up' && break
    sleep 0.2
  done
  ((i < 300)) || { echo "the OSD did not come up; see $CEPH/log" >&2; exit 1; }
  # tcp_nodelay: without it beast's small answers often leave as two segments, the body held
  # back by Nagle until the client's delayed ACK (~40 ms): distribution's manifest GETs (three
  # small S3 reads in a row) took ~150 ms each that way. RGW_NODELAY=0 restores the default.
  ceph_spawn radosgw -n client.rgw \
    --rgw-frontends "beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=${RGW_NODELAY:-1}"
  wait_port "$RGW_PORT" "${CEPH_PIDS[-1]}" 60 || { echo "radosgw did not listen; see $CEPH/log" >&2; exit 1; }
  S3_KEY=$(random_text ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 20)
  S3_SECRET=$(random_text abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 40)
  ceph_tool radosgw-admin user create --uid bench --display-name bench \
    --access-key "$S3_KEY" --secret-key "$S3_SECRET" >/dev/null
  printf '%s\n' "$S3_KEY" >"$TMP/s3.id"
  printf '%s\n' "$S3_SECRET" >"$TMP/s3.secret"
  chmod 600 "$TMP/s3.id" "$TMP/s3.secret"
  log "Ceph RGW on 127.0.0.1:$RGW_PORT up in $(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN {printf "%.1f", (b - a) / 1e9}') s ($CEPH)"
}
s3_curl() {  # s3_curl ARGS... : curl signed for the bench user
  curl -s --aws-sigv4 "aws:amz:us-east-1:s3" -u "$S3_KEY:$S3_SECRET" \
    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}
create_bucket() {
  [[ $(s3_curl -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$RGW_PORT/$1") == 200 ]] ||
    { echo "could not create bucket $1" >&2; exit 1; }
}
drop_bucket() {  # frees the memstore's RAM for the next round
  ceph_tool radosgw-admin bucket rm --bucket="$1" --purge-objects --bypass-gc >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- registry servers
declare -A PORT=()
port_of() { echo "${PORT[$1]}"; }
# start_server berth|dist NAME: a fresh bucket NAME (and database NAME for berth)
start_server() {
  local kind=$1 name=$2 port cfg pid i
  port=$(free_port)
  PORT[$kind]=$port
  cfg=$TMP/$name.yml
  if [[ $kind == dist ]]; then
    create_bucket "$name"
    local redirect=true
    ((REDIRECT)) && redirect=false
    cat >"$cfg" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  s3:
    accesskey: $S3_KEY
    secretkey: $S3_SECRET
    region: us-east-1
    regionendpoint: http://127.0.0.1:$RGW_PORT
    bucket: $name
    secure: false
    v4auth: true
  redirect:
    disable: $redirect
http:
  addr: 127.0.0.1:$port
EOF
    # The AWS SDK panics on an AWS_CA_BUNDLE it cannot apply to distribution's transport (and
    # the RGW is plain http): the environment's AWS settings are not the bench's.
    env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_CONFIG_FILE -u AWS_SHARED_CREDENTIALS_FILE \
      docker-registry serve "$cfg" 2>>"$OUT/dist.stderr" &
  else
    psql_do "CREATE DATABASE \"$name\"" >/dev/null
    mkdir -p "$TMP/$name"
    cat >"$cfg" <<EOF
version: 1
data: $TMP/$name
listen: 127.0.0.1:$port
store:
  driver: postgres
  postgres:
    dsn: "host=127.0.0.1 port=$PGPORT dbname=$name user=berth"
storage:
  driver: s3
  s3:
    endpoint: http://127.0.0.1:$RGW_PORT
    region: us-east-1
    bucket: $name
    access_key_id_file: $TMP/s3.id
    secret_access_key_file: $TMP/s3.secret
    path_style: true
    redirect_pulls: $( ((REDIRECT)) && echo true || echo false)
EOF
    "${BERTHD_OF[$kind]}" --config "$cfg" --no-access-log --router-listen 127.0.0.1:0 \
      --router-tls-listen off --dns-listen off 2>>"$OUT/berth.stderr" &
  fi
  pid=$!
  PIDS[$kind]=$pid
  for ((i = 0; i < 300; i++)); do
    # Any HTTP answer will do: berthd's /v2/ answers 401 until a client authenticates.
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/") != 000 ]] && break
    kill -0 "$pid" 2>/dev/null || { echo "$kind exited at start; see $OUT/$kind.stderr" >&2; exit 1; }
    sleep 0.1
  done
  ((i < 300)) || { echo "$kind did not answer /v2/" >&2; exit 1; }
  if [[ $kind != dist ]]; then
    AUTH[$kind]=$(. "$TMP/$name/admin.credentials" && echo "$BERTH_ACCESS_KEY_ID:$BERTH_SECRET_ACCESS_KEY")
    BERTH_ACCESS_KEY_ID=${AUTH[$kind]%%:*} BERTH_SECRET_ACCESS_KEY=${AUTH[$kind]#*:} \
      "$BERTH" --server "http://127.0.0.1:$port" repo create "$REPO" >/dev/null
  fi
}
stop_server() {  # stop_server KIND NAME: and drop its bucket (and database)
  local kind=$1 name=$2
  kill "${PIDS[$kind]}" 2>/dev/null || true
  wait "${PIDS[$kind]}" 2>/dev/null || true
  unset "PIDS[$kind]"
  drop_bucket "$name"
  if [[ $kind != dist ]]; then
    psql_do "DROP DATABASE \"$name\"" >/dev/null
    rm -rf "${TMP:?}/$name"
  fi
  rm -f "$TMP/$name.yml"
}
order() {  # order ROUND KIND...: the kinds rotated by the round (berth first on odd rounds of two)
  local r=$1 i
  shift
  for ((i = 0; i < $#; i++)); do
    local k=$(((i + r - 1) % $# + 1))
    echo "${!k}"
  done
}

start_postgres
start_rgw

# ---------------------------------------------------------------- push / pull
# CPU seconds (user + system, all threads) the processes PID... have used so far.
cpu_s() {
  local p t=0 hz
  hz=$(getconf CLK_TCK)
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  awk -v t="$t" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}'
}
if want push || want small; then
  for ((run = 1; run <= RUNS; run++)); do
    for kind in $(order "$run" "${KINDS[@]}"); do
      name=$kind-r$run
      start_server "$kind" "$name"
      sleep 1
      if want push; then
        s=$(push "$kind" big big); record "$kind" big_push_s "$s"
        # On the node that took the push: berthd reads the local copies its push left
        # (storage.s3.cache_pushed); distribution reads S3.
        s1=$(pull "$kind" big); record "$kind" big_pull_local_s "$s1"
        s2=""
        for ((i = 1; i <= COLD_PULLS; i++)); do
          [[ $kind != dist ]] && rm -f "$TMP/$name/cache/blobs/"*
          c0=$(cpu_s "${PIDS[$kind]}"); g0=$(cpu_s "${CEPH_PIDS[@]}")
          p=$(PULL_CPU=$TMP/skopeo.cpu pull "$kind" big); record "$kind" big_pull_s "$p"
          record "$kind" cold_cpu_registry "$(awk -v a="$c0" -v b="$(cpu_s "${PIDS[$kind]}")" 'BEGIN {print b - a}')"
          record "$kind" cold_cpu_rgw "$(awk -v a="$g0" -v b="$(cpu_s "${CEPH_PIDS[@]}")" 'BEGIN {print b - a}')"
          record "$kind" cold_cpu_skopeo "$(cat "$TMP/skopeo.cpu")"
          s2+="${s2:+ }$p"
        done
        # Again: berthd now answers from the verified local copy the first pull left in
        # DATA/cache/blobs (unless REDIRECT); distribution reads S3 again.
        s3=$(pull "$kind" big); record "$kind" big_pull2_s "$s3"
        log "$kind run $run: big push ${s}s pull on the pushing node ${s1}s cold ${s2}s again ${s3}s (load $(loadavg))"
      fi
      if want small; then
        s=$(push "$kind" small small); record "$kind" small_push_s "$s"
        [[ $kind != dist ]] && rm -f "$TMP/$name/cache/blobs/"*  # a cold pull, as for the big image
        s2=$(pull "$kind" small); record "$kind" small_pull_s "$s2"
        log "$kind run $run: small push ${s}s pull ${s2}s (load $(loadavg))"
      fi
      stop_server "$kind" "$name"
    done
  done
fi

# ---------------------------------------------------------------- manifest GET, blob HEAD
if want wrk; then
  # Both servers up at once so the rounds can alternate between them under the same noise.
  declare -A URL_M=() URL_B=()
  first=$(jq -r '.manifests[0].digest' "$IMAGES/big/index.json")
  layer=$(jq -r '.layers[0].digest' "$IMAGES/big/blobs/sha256/${first#sha256:}")
  for kind in berth dist; do
    start_server "$kind" "$kind-wrk"
    push "$kind" big big >/dev/null
    base="http://127.0.0.1:$(port_of "$kind")/v2/$REPO"
    URL_M[$kind]=$base/manifests/big
    URL_B[$kind]=$base/blobs/$layer
  done
  for ((run = 1; run <= RUNS; run++)); do
    for kind in $(order "$run" berth dist); do
      auth=()
      [[ -n ${AUTH[$kind]:-} ]] && auth=(-H "Authorization: Basic $(printf '%s' "${AUTH[$kind]}" | base64 -w0)")
      run_wrk "$kind" manifest_get "${URL_M[$kind]}" \
        -H "Accept: application/vnd.oci.image.manifest.v1+json" "${auth[@]}"
      # The same GETs from ab: on 2 shared cores the load generator shapes the tail, and
      # wrk -t1 and ab can disagree on it (docs/benchmarks.md, issue 17).
      run_ab "$kind" manifest_get_ab "${URL_M[$kind]}" -H "Accept: application/vnd.oci.image.manifest.v1+json"
      run_ab_head "$kind" blob_head "${URL_B[$kind]}"
    done
  done
  for kind in berth dist; do stop_server "$kind" "$kind-wrk"; done
fi

LOAD_END=$(loadavg)
# ---------------------------------------------------------------- report
EMB_RAW=$OUT/embedded/raw.tsv
emb() {  # emb KIND METRIC: the fs + SQLite run's median (berth / dist), or ""
  ((with_embedded)) && [[ -s $EMB_RAW ]] || return 0
  RAW=$EMB_RAW median "$@"
}
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / 1e6 / s }'; }
# row LABEL BERTH DIST RATIO TARGET MET EMB_BERTH EMB_DIST
row() {
  if ((with_embedded)); then
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$@"
  else
    printf '| %s | %s | %s | %s | %s | %s |\n' "${@:1:6}"
  fi
}
or_na() { [[ -n $1 ]] && echo "$1" || echo n/a; }
{
  echo
  echo "berth (PostgreSQL 15 + S3) vs distribution (S3), both on one Ceph RGW (memstore) on 127.0.0.1;"
  echo "$(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -r), berthd $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src || echo '+changes'), runs=$RUNS, medians;"
  echo "redirects: $( ((REDIRECT)) && echo 'on (berth redirect_pulls: true, distribution redirect on)' || echo 'off (berth redirect_pulls: false, distribution redirect.disable: true)');"
  echo "wrk -t$WRK_THREADS -c$WRK_CONNS -d${WRK_SECS}s --latency; ab -k -i -c$WRK_CONNS -t$WRK_SECS; berthd access log off"
  echo "load average at start: $LOAD_START, at end: $LOAD_END (2 cores: anything near 2 means other work shared the CPUs)"
  ((COLD_PULLS > 1)) && echo "cold pulls per round: $COLD_PULLS (medians over all of them)"
  [[ -n ${BERTHD_OF[base]:-} ]] && echo "baseline berthd (\"base\" rows): ${BERTHD_OF[base]}"
  echo
  if ((with_embedded)); then
    echo "| metric | berth pg+s3 | distribution s3 | ratio (berth advantage) | target | met? | berth fs+sqlite | distribution fs |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  else
    echo "| metric | berth pg+s3 | distribution s3 | ratio (berth advantage) | target | met? |"
    echo "| --- | --- | --- | --- | --- | --- |"
  fi
  if want push; then
    bytes=$(layout_bytes big)
    for op in push pull; do
      b=$(median berth "big_${op}_s"); d=$(median dist "big_${op}_s")
      bt=$(mbps "$bytes" "$b"); dt=$(mbps "$bytes" "$d")
      r=$(ratio "$bt" "$dt")
      row "${BIG_LAYERS}x${BIG_MB} MB image $op, MB/s (${b}s vs ${d}s)" "$(or_na "$bt")" "$(or_na "$dt")" \
        "$r" ">= 1.2x" "$(ge "${r%x}" 1.2)" \
        "$(or_na "$(mbps "$bytes" "$(emb berth "big_${op}_s")")")" "$(or_na "$(mbps "$bytes" "$(emb dist "big_${op}_s")")")"
    done
    b=$(median berth big_pull_local_s); d=$(median dist big_pull_local_s)
    bt=$(mbps "$bytes" "$b"); dt=$(mbps "$bytes" "$d")
    row "${BIG_LAYERS}x${BIG_MB} MB image pulled on the node that took the push, MB/s (${b}s vs ${d}s; berth: the push's local copies)" \
      "$(or_na "$bt")" "$(or_na "$dt")" "$(ratio "$bt" "$dt")" "" "" "" ""
    b=$(median berth big_pull2_s); d=$(median dist big_pull2_s)
    bt=$(mbps "$bytes" "$b"); dt=$(mbps "$bytes" "$d")
    again="berth: its local copy"
    ((REDIRECT)) && again="both: redirected to RGW"
    row "${BIG_LAYERS}x${BIG_MB} MB image pulled again, MB/s (${b}s vs ${d}s; $again)" \
      "$(or_na "$bt")" "$(or_na "$dt")" "$(ratio "$bt" "$dt")" "" "" "" ""
    # Where a cold pull's CPU goes. On 2 cores a CPU-bound pull takes at least (all of it) / 2,
    # and skopeo's and RGW's shares are the same work whichever registry is in the middle.
    for part in skopeo rgw registry; do
      b=$(median berth "cold_cpu_$part"); d=$(median dist "cold_cpu_$part")
      row "CPU-s per cold pull of the big image: $part" "$(fmt "$b" 2)" "$(fmt "$d" 2)" "" "" "" "" ""
    done
    if [[ -n ${BERTHD_OF[base]:-} ]]; then
      for op in push pull_local pull pull2; do
        b=$(median base "big_${op}_s"); d=$(median dist "big_${op}_s")
        bt=$(mbps "$bytes" "$b"); dt=$(mbps "$bytes" "$d")
        row "baseline berthd: image $op, MB/s (${b}s vs ${d}s; this berthd $(median berth "big_${op}_s")s)" \
          "$(or_na "$bt")" "$(or_na "$dt")" "$(ratio "$bt" "$dt")" "" "" "" ""
      done
    fi
  fi
  if want small; then
    for op in push pull; do
      b=$(median berth "small_${op}_s"); d=$(median dist "small_${op}_s")
      r=$(ratio "$d" "$b")
      row "${SMALL_LAYERS}-layer image $op, s" "$(fmt "$b" 2)" "$(fmt "$d" 2)" "$r" ">= 1.2x" \
        "$(ge "${r%x}" 1.2)" "$(fmt "$(emb berth "small_${op}_s")" 2)" "$(fmt "$(emb dist "small_${op}_s")" 2)"
    done
  fi
  if want wrk; then
    b=$(median berth manifest_get_rps); d=$(median dist manifest_get_rps)
    r=$(ratio "$b" "$d")
    row "manifest GET req/s (wrk -c$WRK_CONNS)" "$(fmt "$b" 0)" "$(fmt "$d" 0)" "$r" ">= 10x" \
      "$(ge "${r%x}" 10)" "$(fmt "$(emb berth manifest_get_rps)" 0)" "$(fmt "$(emb dist manifest_get_rps)" 0)"
    b=$(median berth manifest_get_p50_ms); d=$(median dist manifest_get_p50_ms)
    row "manifest GET p50 latency, ms" "$(fmt "$b" 2)" "$(fmt "$d" 2)" "$(ratio "$d" "$b")" "" "" \
      "$(fmt "$(emb berth manifest_get_p50_ms)" 2)" "$(fmt "$(emb dist manifest_get_p50_ms)" 2)"
    b=$(median berth manifest_get_p99_ms); d=$(median dist manifest_get_p99_ms)
    row "manifest GET p99 latency, ms" "$(fmt "$b" 2)" "$(fmt "$d" 2)" "$(ratio "$d" "$b")" "berth < 5 ms" \
      "$(awk -v b="$b" 'BEGIN { if (b == "") print "n/a"; else print (b < 5 ? "yes" : "no") }')" \
      "$(fmt "$(emb berth manifest_get_p99_ms)" 2)" "$(fmt "$(emb dist manifest_get_p99_ms)" 2)"
    b=$(median berth manifest_get_ab_rps); d=$(median dist manifest_get_ab_rps)
    r=$(ratio "$b" "$d")
    row "manifest GET req/s (ab -k -c$WRK_CONNS)" "$(fmt "$b" 0)" "$(fmt "$d" 0)" "$r" ">= 10x" \
      "$(ge "${r%x}" 10)" "" ""
    b=$(median berth manifest_get_ab_p50_ms); d=$(median dist manifest_get_ab_p50_ms)
    row "manifest GET p50 latency (ab), ms" "$(fmt "$b" 2)" "$(fmt "$d" 2)" "$(ratio "$d" "$b")" "" "" "" ""
    b=$(median berth manifest_get_ab_p99_ms); d=$(median dist manifest_get_ab_p99_ms)
    row "manifest GET p99 latency (ab), ms" "$(fmt "$b" 2)" "$(fmt "$d" 2)" "$(ratio "$d" "$b")" "berth < 5 ms" \
      "$(awk -v b="$b" 'BEGIN { if (b == "") print "n/a"; else print (b < 5 ? "yes" : "no") }')" "" ""
    b=$(median berth blob_head_rps); d=$(median dist blob_head_rps)
    row "blob HEAD req/s (ab -k -c$WRK_CONNS)" "$(fmt "$b" 0)" "$(fmt "$d" 0)" "$(ratio "$b" "$d")" "" "" \
      "$(fmt "$(emb berth blob_head_rps)" 0)" "$(fmt "$(emb dist blob_head_rps)" 0)"
    b=$(median berth blob_head_p99_ms); d=$(median dist blob_head_p99_ms)
    row "blob HEAD p99 latency, ms" "$(fmt "$b" 2)" "$(fmt "$d" 2)" "$(ratio "$d" "$b")" "" "" \
      "$(fmt "$(emb berth blob_head_p99_ms)" 2)" "$(fmt "$(emb dist blob_head_p99_ms)" 2)"
  fi
} | tee "$OUT/results.md"
