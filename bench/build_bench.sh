#!/usr/bin/env bash
# build_bench.sh: berth's Dockerfile builder side by side with `docker build` (legacy builder,
# Debian docker.io, a private dockerd) and buildah (Debian), on the same machine, same
# context, alternating which tool goes first in each round.
#
# The Dockerfile is the issue's: FROM scratch, COPY busybox, RUN busybox --install, CMD httpd
# (plus COPY www). Measured:
#   1. cold build: docker build --no-cache; buildah build --no-cache (default isolation, overlay
#      storage); berth with its layer cache emptied (DATA/build/cache) before the build.
#      For berth two figures: the BUILD phase alone (what docker and buildah do), and the whole
#      build (git fetch of the commit + BUILD + PUSH into its registry), from phase_ms.
#   2. unchanged rebuild: docker build (cache); buildah build --layers (cache); berth build of the
#      same commit again (every layer from the cache), whole build (SOURCE+BUILD+PUSH).
#   3. webhook to running new version: a service with --auto-deploy serves web/app:latest; each
#      round commits a new www/index.html, POSTs a signed GitHub push event, and polls the router
#      (curl every ~10 ms) until the new page is served. berth only, end to end.
# Wall clock for docker and buildah is the CLI's (/usr/bin/time-like, date +%s%N around it).
#
# Prints a markdown table (medians, ratios against docker); raw samples go to $OUT.
# Exits non-zero if the harness fails, not if a target is missed. Needs root (runc, dockerd).
#
# Usage: bench/build_bench.sh [--quick] [--no-build]
# Environment knobs (defaults in brackets):
#   ROUNDS [7]               measured rounds per tool and case
#   BUILD_DIR [build-bench]  berth build dir (built with CMake Release unless --no-build)
#   OUT [bench/out]          raw results (build-raw.tsv, build-berthd.log)
set -euo pipefail
shopt -s inherit_errexit

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
ROUNDS=${ROUNDS:-7}
BUILD_DIR=${BUILD_DIR:-$root/build-bench}
OUT=${OUT:-$here/out}
do_build=1
while (($#)); do
  case $1 in
    --quick) ROUNDS=3 ;;
    --no-build) do_build=0 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[build-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "build_bench: $*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites
((EUID == 0)) || die "needs root (runc, overlayfs, dockerd)"
for t in runc git curl jq dockerd docker buildah ss openssl; do
  command -v "$t" >/dev/null ||
    die "$t is not installed (apt-get install runc git curl jq docker.io buildah iproute2)"
done
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX && $(ldd "$BUSYBOX" 2>&1 || true) == *"not a dynamic"* ]] ||
  die "$BUSYBOX is not static (apt-get install busybox-static)"

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
RAW=$OUT/build-raw.tsv
BLOG=$OUT/build-berthd.log
: >"$RAW"
TMP=$(mktemp -d "$OUT/build-tmp.XXXXXX")
BERTHD_PID=""
DOCKERD_PID=""

cleanup() {
  local rc=$?
  if [[ -n $BERTHD_PID ]]; then
    kill "$BERTHD_PID" 2>/dev/null || true
    wait "$BERTHD_PID" 2>/dev/null || true
  fi
  if [[ -n $DOCKERD_PID ]]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  buildah --root "$TMP/buildah/root" --runroot "$TMP/buildah/run" rm --all >/dev/null 2>&1 || true
  umount -R "$TMP/buildah/root/overlay" 2>/dev/null || true
  grep -o " $TMP[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT INT TERM

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    ss -ltn "sport = :$p" | grep -q LISTEN || { echo "$p"; return; }
  done
}
now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }

# ---------------------------------------------------------------- the context, as a git repo
SRC=$TMP/src
mkdir -p "$SRC/www"
cp "$BUSYBOX" "$SRC/busybox"
echo "hello from the build bench" >"$SRC/www/index.html"
cat >"$SRC/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
CMD /bin/busybox httpd -f -p $PORT -h /www
EOF
git -C "$SRC" -c init.defaultBranch=main init -q
git -C "$SRC" add -A
git -C "$SRC" -c user.name=bench -c user.email=bench@example.com commit -q -m bench
COMMIT=$(git -C "$SRC" rev-parse HEAD)

# ---------------------------------------------------------------- dockerd (private)
DK=$TMP/docker
mkdir -p "$DK"
log "starting a private dockerd"
dockerd --iptables=false --bridge=none --data-root "$DK/root" --exec-root "$DK/exec" \
  --pidfile "$DK/dockerd.pid" -H "unix://$DK/docker.sock" >"$OUT/build-dockerd.log" 2>&1 &
DOCKERD_PID=$!
DOCKER="docker -H unix://$DK/docker.sock"
for _ in $(seq 1 150); do $DOCKER info >/dev/null 2>&1 && break; sleep 0.2; done
$DOCKER info >/dev/null 2>&1 || die "dockerd did not start (see $OUT/build-dockerd.log)"
export DOCKER_BUILDKIT=0

BUILDAH="buildah --root $TMP/buildah/root --runroot $TMP/buildah/run --storage-driver overlay"

# ---------------------------------------------------------------- berthd
DATA=$TMP/data
mkdir -p "$DATA"
PORT=$(free_port)
RPORT=$(free_port)
printf 'build:\n  allow_file_remotes: true\n' >"$TMP/berthd.yaml"
log "starting berthd on 127.0.0.1:$PORT"
"$BERTHD" --config "$TMP/berthd.yaml" --data "$DATA" --listen "127.0.0.1:$PORT" \
  --router-listen "127.0.0.1:$RPORT" --no-access-log >"$BLOG" 2>&1 &
BERTHD_PID=$!
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || die "berthd did not start (see $BLOG)"
KEY_ID=$(sed -n 's/^BERTH_ACCESS_KEY_ID=//p' "$DATA/admin.credentials")
SECRET=$(sed -n 's/^BERTH_SECRET_ACCESS_KEY=//p' "$DATA/admin.credentials")
[[ -n $KEY_ID && -n $SECRET ]] || die "no admin credentials in $DATA/admin.credentials"
export BERTH_ACCESS_KEY_ID=$KEY_ID BERTH_SECRET_ACCESS_KEY=$SECRET
export HOME=$TMP/home
mkdir -p "$HOME"
BERTH="$BERTH --server http://127.0.0.1:$PORT"
$BERTH repo create web/app >/dev/null
HOOK_SECRET=$($BERTH build project create bench --git "file://$SRC" --branch main --repo web/app \
  --json | jq -r .webhook_secret)

# Runs one berth build of COMMIT to its end; prints "BUILD_MS TOTAL_MS WALL_MS CACHED".
berth_build() {
  local t0 id json status
  t0=$(now_ns)
  id=$($BERTH build start bench --commit "$COMMIT" --no-wait --json | jq -r .id)
  while :; do
    json=$($BERTH build show "$id" --json)
    status=$(jq -r .status <<<"$json")
    case $status in
      SUCCEEDED) break ;;
      FAILED | STOPPED) die "berth build $id $status: $(jq -r .reason <<<"$json")" ;;
    esac
    sleep 0.01
  done
  local wall
  wall=$(ms_since "$t0")
  jq -r --arg wall "$wall" \
    '"\(.phase_ms.BUILD) \(.phase_ms.SOURCE + .phase_ms.BUILD + .phase_ms.PUSH) \($wall) \([.steps[] | select(.cached)] | length)"' \
    <<<"$json"
}
timed() {
  local t0
  t0=$(now_ns)
  "$@" >/dev/null 2>&1 || die "failed: $*"
  ms_since "$t0"
}

# Warm-up: one of each (page cache, binaries), not recorded.
log "warm-up"
timed $DOCKER build -q --no-cache -t bench:warm "$SRC" >/dev/null
timed $BUILDAH build -q --no-cache -t bench-warm "$SRC" >/dev/null
berth_build >/dev/null

printf 'round\tcase\ttool\tms\textra\n' >>"$RAW"
for r in $(seq 1 "$ROUNDS"); do
  log "round $r/$ROUNDS"
  order=(docker buildah berth)
  ((r % 2 == 0)) && order=(berth buildah docker)
  for tool in "${order[@]}"; do
    case $tool in
      docker) printf '%s\tcold\tdocker\t%s\t\n' "$r" "$(timed $DOCKER build -q --no-cache -t "bench:$r" "$SRC")" >>"$RAW" ;;
      buildah) printf '%s\tcold\tbuildah\t%s\t\n' "$r" "$(timed $BUILDAH build -q --no-cache -t "bench-$r" "$SRC")" >>"$RAW" ;;
      berth)
        rm -rf "$DATA/build/cache"
        read -r b t w c <<<"$(berth_build)"
        printf '%s\tcold\tberth-build\t%s\tcached=%s\n' "$r" "$b" "$c" >>"$RAW"
        printf '%s\tcold\tberth-total\t%s\twall=%s\n' "$r" "$t" "$w" >>"$RAW"
        ;;
    esac
  done
  # Unchanged rebuilds (the cache is warm from the cold build just before).
  for tool in "${order[@]}"; do
    case $tool in
      docker) printf '%s\tcached\tdocker\t%s\t\n' "$r" "$(timed $DOCKER build -q -t bench:c "$SRC")" >>"$RAW" ;;
      buildah) printf '%s\tcached\tbuildah\t%s\t\n' "$r" "$(timed $BUILDAH build -q --layers -t bench-c "$SRC")" >>"$RAW" ;;
      berth)
        read -r b t w c <<<"$(berth_build)"
        printf '%s\tcached\tberth-build\t%s\tcached=%s\n' "$r" "$b" "$c" >>"$RAW"
        printf '%s\tcached\tberth-total\t%s\twall=%s\n' "$r" "$t" "$w" >>"$RAW"
        ;;
    esac
  done
done

# ---------------------------------------------------------------- webhook -> new version served
log "webhook to running new version ($ROUNDS rounds)"
$BERTH service create web --image web/app:latest --port 8080 --auto-deploy >/dev/null
serves() { [[ $(curl -s -m 2 -H 'Host: web.localhost' "http://127.0.0.1:$RPORT/") == "$1" ]]; }
for r in $(seq 1 "$ROUNDS"); do
  echo "version $r" >"$SRC/www/index.html"
  git -C "$SRC" -c user.name=bench -c user.email=bench@example.com commit -q -am "v$r"
  c=$(git -C "$SRC" rev-parse HEAD)
  payload="{\"ref\":\"refs/heads/main\",\"after\":\"$c\",\"repository\":{\"full_name\":\"bench/app\",\"clone_url\":\"file://$SRC\"}}"
  sig=$(printf '%s' "$payload" | openssl dgst -sha256 -hmac "$HOOK_SECRET" -r | cut -d' ' -f1)
  t0=$(now_ns)
  code=$(curl -s -o "$TMP/hook.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: push' -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$payload" \
    "http://127.0.0.1:$PORT/hooks/github/bench")
  hook_ms=$(ms_since "$t0")
  [[ $code == 202 ]] || die "webhook answered $code: $(cat "$TMP/hook.out")"
  for _ in $(seq 1 3000); do serves "version $r" && break; sleep 0.01; done
  serves "version $r" || die "version $r was not served within 30 s"
  printf '%s\twebhook\tberth-served\t%s\thook_reply=%s\n' "$r" "$(ms_since "$t0")" "$hook_ms" >>"$RAW"
  printf '%s\twebhook\tberth-hook-reply\t%s\t\n' "$r" "$hook_ms" >>"$RAW"
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
med() { awk -F'\t' -v c="$1" -v t="$2" '$2==c && $3==t {print $4}' "$RAW" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

echo
echo "| case | docker build | buildah | berth BUILD phase | berth whole build (fetch+build+push) | berth/docker (BUILD) |"
echo "|---|---|---|---|---|---|"
for c in cold cached; do
  d=$(med "$c" docker)
  b=$(med "$c" buildah)
  bb=$(med "$c" berth-build)
  bt=$(med "$c" berth-total)
  echo "| $c | $d ms | $b ms | $bb ms | $bt ms | $(ratio "$bb" "$d") |"
done
echo
echo "Webhook to new version served (berth end to end: reply, fetch, build, push, deploy, route):"
echo "median $(med webhook berth-served) ms, max $(awk -F'\t' '$2=="webhook" && $3=="berth-served" {print $4}' "$RAW" | sort -n | tail -1) ms; webhook reply median $(med webhook berth-hook-reply) ms"
echo
echo "Rounds: $ROUNDS; medians. Raw samples: $RAW"
