#!/usr/bin/env bash
# berth's authoritative DNS vs NSD 4.6 (Debian's nsd) on the same zone, same machine, one after
# the other, with dnsperf 2.10.
#
#   bench/dns_bench.sh                       # builds build-bench/ (Release); 3 rounds x 20 s
#   ROUNDS=1 SECS=5 BUILD_DIR=build-nsd bench/dns_bench.sh --no-build
#
# Zone: example.com with NAMES hosts (default 10 000; each an A, every 4th an AAAA, every 10th
# a TXT, every 20th an MX) plus 500 CNAMEs and a wildcard; berth gets it through
# `berth dns zone import --replace`, NSD as a primary zone file (same records, berth's serial).
# Queries (QUERIES lines, shuffled): 60 % hits (A, AAAA, TXT, MX, CNAME, wildcard), 20 %
# NXDOMAIN, 20 % NODATA, all with EDNS (dnsperf -e).
# Servers: berthd --dns-listen 127.0.0.1:PORT --no-access-log (dns.udp_threads = cores, one
# SO_REUSEPORT socket each); nsd -d with server-count = cores (one process per core) and
# rrl-ratelimit: 0 (Debian builds NSD with response rate limiting on, 200 q/s per client), both
# verbosity/logging low. Both run throughout; each round measures berth then NSD (NSD first on
# even rounds).
#   throughput: dnsperf -c CLIENTS -T DNSPERF_THREADS -q OUTSTANDING -l SECS (no rate limit);
#   latency:    dnsperf -Q RATE -l LAT_SECS -v (a fixed offered load; the per-query latencies
#               of -v give p50/p99/p99.9, which dnsperf 2.10 does not print itself);
#   change:     while dnsperf runs against berth, BATCHES POSTs to .../changes (2 s apart) with
#               BATCH UPSERTs each; each API call's wall time, berthd's own zone work, and the
#               qps of the seconds before/during/after (dnsperf -S 1). ROUNDS=0 runs only this.
# Prints a markdown table (medians over the rounds) and keeps raw output in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-20}
LAT_SECS=${LAT_SECS:-10}
RATE=${RATE:-20000}
NAMES=${NAMES:-10000}
QUERIES=${QUERIES:-50000}
CLIENTS=${CLIENTS:-16}
OUTSTANDING=${OUTSTANDING:-200}
DNSPERF_THREADS=${DNSPERF_THREADS:-1}
BATCH=${BATCH:-1000}
BATCHES=${BATCHES:-5}
NSD_REUSEPORT=${NSD_REUSEPORT:-no}  # NSD's default: its server processes share one socket
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
OUT=${OUT:-$ROOT/bench/out/dns}
BUILD=1
for a in "$@"; do
  case $a in
    --no-build) BUILD=0 ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done
need() { command -v "$1" >/dev/null 2>&1; }
die() { echo "dns_bench: $*" >&2; exit 1; }
need dnsperf || apt-get install -y dnsperf >/dev/null
need nsd || [ -x /usr/sbin/nsd ] || apt-get install -y nsd >/dev/null
NSD=$(command -v nsd || echo /usr/sbin/nsd)
if [ "$BUILD" = 1 ]; then
  [ -f "$BUILD_DIR/build.ninja" ] || cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$BUILD_DIR" berthd berth >/dev/null
fi
BERTHD=$BUILD_DIR/bin/berthd
BERTH=$BUILD_DIR/bin/berth
[[ -x $BERTHD && -x $BERTH ]] || die "no berthd/berth in $BUILD_DIR/bin"

rm -rf "$OUT" && mkdir -p "$OUT/data" "$OUT/nsd/zones" "$OUT/raw"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port); ROUTER_PORT=$(free_port); BDNS=$(free_port); NDNS=$(free_port)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# ---- zone and queries ------------------------------------------------------------------------
python3 - "$NAMES" "$QUERIES" "$OUT" <<'PY'
import random, sys
names, queries, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rnd = random.Random(42)
z = ["$ORIGIN example.com.", "$TTL 300",
     "@ 3600 IN SOA ns1.example.com. hostmaster.example.com. SERIAL 3600 900 1209600 300",
     "@ 3600 IN NS ns1.example.com.", "ns1 IN A 127.0.0.1", "@ IN A 127.0.0.10",
     "@ IN MX 10 mail.example.com.", "mail IN A 127.0.0.25", "*.wild IN A 127.0.0.99"]
for i in range(names):
    h = "host%05d" % i
    z.append("%s IN A 10.%d.%d.%d" % (h, i >> 16, (i >> 8) & 255, i & 255))
    if i % 4 == 0: z.append("%s IN AAAA 2001:db8::%x" % (h, i))
    if i % 10 == 0: z.append('%s IN TXT "v=host%d"' % (h, i))
    if i % 20 == 0: z.append("%s IN MX 10 mail.example.com." % h)
for i in range(500):
    z.append("c%03d IN CNAME host%05d" % (i, rnd.randrange(names)))
open(out + "/zone.template", "w").write("\n".join(z) + "\n")
q = []
for _ in range(queries):
    r = rnd.random(); i = rnd.randrange(names); h = "host%05d.example.com" % i
    if r < 0.40: q.append(h + " A")
    elif r < 0.45: q.append("host%05d.example.com AAAA" % (i - i % 4))
    elif r < 0.50: q.append("host%05d.example.com TXT" % (i - i % 10))
    elif r < 0.53: q.append("host%05d.example.com MX" % (i - i % 20))
    elif r < 0.57: q.append("c%03d.example.com A" % rnd.randrange(500))
    elif r < 0.60: q.append("x%d.wild.example.com A" % i)
    elif r < 0.80: q.append("nx%d.example.com A" % i)           # NXDOMAIN
    else: q.append(h + (" SRV" if r < 0.9 else " CAA"))          # NODATA
open(out + "/queries.txt", "w").write("\n".join(q) + "\n")
PY

# ---- berthd ----------------------------------------------------------------------------------
"$BERTHD" --data "$OUT/data" --listen "127.0.0.1:$API_PORT" --router-listen "127.0.0.1:$ROUTER_PORT" \
  --dns-listen "127.0.0.1:$BDNS" --no-access-log >"$OUT/berthd.log" 2>&1 &
BERTHD_PID=$!; PIDS+=("$BERTHD_PID")
for ((i = 0; i < 100; i++)); do [ -s "$OUT/data/admin.credentials" ] && curl -sf "http://127.0.0.1:$API_PORT/healthz" >/dev/null && break; sleep 0.1; done
export $(grep -E '^BERTH_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)=' "$OUT/data/admin.credentials" | xargs)
B() { "$BERTH" --server "http://127.0.0.1:$API_PORT" "$@"; }
B dns zone create example.com >/dev/null
sed 's/SERIAL/1/' "$OUT/zone.template" >"$OUT/berth.zone"
B dns zone import example.com --file "$OUT/berth.zone" --replace >/dev/null
SERIAL=$(B dns zone show example.com --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serial"])')

# ---- nsd -------------------------------------------------------------------------------------
sed "s/SERIAL/$SERIAL/" "$OUT/zone.template" >"$OUT/nsd/zones/example.com.zone"
cat >"$OUT/nsd/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1
  port: $NDNS
  username: ""
  chroot: ""
  zonesdir: "$OUT/nsd/zones"
  pidfile: "$OUT/nsd/nsd.pid"
  xfrdfile: "$OUT/nsd/xfrd.state"
  zonelistfile: "$OUT/nsd/zone.list"
  xfrdir: "$OUT/nsd"
  database: ""
  server-count: $(nproc)
  verbosity: 0
  rrl-ratelimit: 0
  reuseport: $NSD_REUSEPORT
remote-control:
  control-enable: no
zone:
  name: example.com
  zonefile: example.com.zone
CONF
"$NSD" -d -c "$OUT/nsd/nsd.conf" >"$OUT/nsd/log" 2>&1 &
PIDS+=("$!")
for ((i = 0; i < 100; i++)); do dig +time=1 +tries=1 @127.0.0.1 -p "$NDNS" example.com SOA >/dev/null 2>&1 && break; sleep 0.1; done
for p in "$BDNS" "$NDNS"; do
  dig +short @127.0.0.1 -p "$p" host00042.example.com A | grep -q 10.0.0.42 || die "no answer on $p"
done

# ---- rounds ----------------------------------------------------------------------------------
field() { sed -n "s/^ *$1 *\([0-9.]*\).*/\1/p" "$2" | head -1; }
throughput() {  # name port round
  dnsperf -s 127.0.0.1 -p "$2" -d "$OUT/queries.txt" -e -l "$SECS" -c "$CLIENTS" -T "$DNSPERF_THREADS" \
    -q "$OUTSTANDING" >"$OUT/raw/tp-$1-$3.txt" 2>&1
  local f=$OUT/raw/tp-$1-$3.txt
  echo -e "$1\t$3\t$(field 'Queries per second:' "$f")\t$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$f")\t$(field 'Average Latency (s):' "$f")\t$(sed -n 's/.*max \([0-9.]*\)).*/\1/p' "$f")\t$(field 'Latency StdDev (s):' "$f")" >>"$OUT/tp.tsv"
}
latency() {  # name port round
  dnsperf -s 127.0.0.1 -p "$2" -d "$OUT/queries.txt" -e -l "$LAT_SECS" -Q "$RATE" -c 4 -v \
    >"$OUT/raw/lat-$1-$3.txt" 2>&1
  local sorted=$OUT/raw/lat-$1-$3.sorted n
  grep '^> ' "$OUT/raw/lat-$1-$3.txt" | awk '{print $NF}' | sort -g >"$sorted"
  n=$(wc -l <"$sorted")
  pct() { sed -n "$(( (n * $1 + 999) / 1000 ))p" "$sorted"; }
  echo -e "$1\t$3\t$(field 'Queries per second:' "$OUT/raw/lat-$1-$3.txt")\t$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$OUT/raw/lat-$1-$3.txt")\t$(pct 500)\t$(pct 990)\t$(pct 999)\t$(tail -1 "$sorted")" >>"$OUT/lat.tsv"
}
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then order="berth nsd"; else order="nsd berth"; fi
  for s in $order; do
    port=$BDNS; [ "$s" = nsd ] && port=$NDNS
    throughput "$s" "$port" "$r"
    latency "$s" "$port" "$r"
  done
done

# ---- change batches while dnsperf runs ------------------------------------------------------
# BATCHES batches, 2 s apart (each a real change: the TTL differs), during one dnsperf run.
for ((k = 0; k < BATCHES; k++)); do
  python3 - "$BATCH" "$k" >"$OUT/batch$k.json" <<'PY'
import json, sys
n, k = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps({"Comment": "bench", "Changes": [
    {"Action": "UPSERT", "ResourceRecordSet": {"Name": "batch%05d.example.com." % i, "Type": "A",
     "TTL": 60 + k, "ResourceRecords": [{"Value": "10.200.%d.%d" % (i >> 8, i & 255)}]}}
    for i in range(n)]}))
PY
done
CURL_AUTH="$BERTH_ACCESS_KEY_ID:$BERTH_SECRET_ACCESS_KEY"
dnsperf -s 127.0.0.1 -p "$BDNS" -d "$OUT/queries.txt" -e -l $((7 + 2 * BATCHES)) -c "$CLIENTS" \
  -T "$DNSPERF_THREADS" -q "$OUTSTANDING" -S 1 >"$OUT/raw/change-dnsperf.txt" 2>&1 &
DP=$!
sleep 5
CHANGE_S=""
SPANS=""
for ((k = 0; k < BATCHES; k++)); do
  # curl's own clock: the request's time from connect to the last byte of the answer (the
  # time to start curl itself, which a loaded machine stretches, is not the API's).
  read -r CODE T0 SECS_TAKEN < <(curl -s -o "$OUT/raw/change-reply.json" \
    -w '%{http_code} %{time_total}\n' -u "$CURL_AUTH" \
    -H 'Content-Type: application/json' --data-binary @"$OUT/batch$k.json" \
    "http://127.0.0.1:$API_PORT/api/v1/dns/zones/example.com/changes" |
    awk -v now="$(date +%s.%N)" '{ print $1, now, $2 }')
  T1=$(python3 -c "print($T0 + $SECS_TAKEN)")
  [ "$CODE" = 200 ] || die "change batch answered $CODE: $(head -c 300 "$OUT/raw/change-reply.json")"
  CHANGE_S="$CHANGE_S $(python3 -c "print('%.3f' % $SECS_TAKEN)")"
  SPANS="$SPANS $T0,$T1"
  sleep 2
done
wait "$DP"
dig +short @127.0.0.1 -p "$BDNS" batch00999.example.com A | grep -q . || die "batch not served"
# dnsperf -S 1 prints "<unix time>: <qps of that second>"; * marks a second a batch ran in.
PER_SEC=$(awk -v spans="$SPANS" 'BEGIN { n = split(spans, sp, " ") }
  /^[0-9]+\.[0-9]+: [0-9.]+$/ { t = $1 + 0; tag = "";
    for (i = 1; i <= n; i++) { split(sp[i], ab, ","); if (t > ab[1] && t - 1 <= ab[2]) tag = "*" }
    printf "%d%s ", $2, tag }' "$OUT/raw/change-dnsperf.txt")
grep -o 'zone changed.*sets_removed=[0-9]*' "$OUT/berthd.log" | tail -n "$BATCHES" \
  >"$OUT/raw/change-zone-work.txt" || true

# ---- report ----------------------------------------------------------------------------------
python3 - "$OUT" "$CHANGE_S" "$PER_SEC" "$BATCH" <<'PY'
import statistics as st, sys
out, change_s, per_sec, batch = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
def rows(f):
    d = {}
    for line in open(f):
        p = line.rstrip("\n").split("\t")
        d.setdefault(p[0], []).append([float(x) if x else float("nan") for x in p[2:]])
    return d
import os
if os.path.exists(out + "/tp.tsv"):  # ROUNDS=0: the change batches only
    tp, lat = rows(out + "/tp.tsv"), rows(out + "/lat.tsv")
    med = lambda d, s, i: st.median(r[i] for r in d[s])
    print("| metric | NSD 4.6 | berth | berth/NSD |\n| --- | --- | --- | --- |")
    def line(name, d, i, scale=1, fmt="%.0f"):
        n, b = med(d, "nsd", i) * scale, med(d, "berth", i) * scale
        print("| %s | %s | %s | %.2f |" % (name, fmt % n, fmt % b, b / n if n else float("nan")))
    line("queries/s, unlimited (median of rounds)", tp, 0)
    line("queries lost (median)", tp, 1)
    line("avg latency ms, unlimited", tp, 2, 1000, "%.3f")
    line("latency stddev ms, unlimited", tp, 4, 1000, "%.3f")
    line("max latency ms, unlimited", tp, 3, 1000, "%.3f")
    line("p50 ms at fixed rate", lat, 2, 1000, "%.3f")
    line("p99 ms at fixed rate", lat, 3, 1000, "%.3f")
    line("p99.9 ms at fixed rate", lat, 4, 1000, "%.3f")
    line("queries lost at fixed rate", lat, 1)
    print()
    print("rounds (queries/s): " + "; ".join("%s %s" % (s, " ".join("%.0f" % r[0] for r in tp[s]))
                                              for s in ("berth", "nsd")))
calls = [float(c) for c in change_s]
print("change batches of %s UPSERTs during dnsperf on berth: API call median %.3f s, max %.3f s"
      " (%s); qps per second (* = a second a call was running): %s"
      % (batch, st.median(calls), max(calls), " ".join(change_s), " ".join(per_sec)))
print("berthd's zone work per batch:")
for line in open(out + "/raw/change-zone-work.txt"):
    print("  " + line.split("ms=", 1)[-1].strip())
PY
echo "raw output in $OUT"
