#!/usr/bin/env bash
# How long one change batch takes on a big zone, with nothing else running (the under-load
# figure is dns_bench.sh's): a zone of NAMES hosts (~1.45 record sets each) imported, then
# RUNS batches of BATCH UPSERTs through the API. Prints each call's wall time and berthd's own
# "zone changed ... ms=" line (apply, rows, compile, store; sets written and removed).
#
#   BUILD_DIR=$PWD/build bench/dns_batch.sh        # NAMES=10000 BATCH=1000 RUNS=6
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
NAMES=${NAMES:-10000}
BATCH=${BATCH:-1000}
RUNS=${RUNS:-6}
B=$BUILD_DIR/bin
OUT=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$OUT"' EXIT
python3 - "$NAMES" "$BATCH" "$RUNS" "$OUT" <<'PY'
import json, sys
names, batch, runs, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
z = ["$ORIGIN example.com.", "$TTL 300",
     "@ 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 3600 900 1209600 300",
     "@ 3600 IN NS ns1.example.com.", "ns1 IN A 127.0.0.1"]
for i in range(names):
    h = "host%05d" % i
    z.append("%s IN A 10.%d.%d.%d" % (h, i >> 16, (i >> 8) & 255, i & 255))
    if i % 4 == 0: z.append("%s IN AAAA 2001:db8::%x" % (h, i))
    if i % 10 == 0: z.append('%s IN TXT "v=host%d"' % (h, i))
open(out + "/zone", "w").write("\n".join(z) + "\n")
for r in range(runs):
    json.dump({"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": "batch%05d.example.com." % i, "Type": "A", "TTL": 60 + r,
        "ResourceRecords": [{"Value": "10.200.%d.%d" % (i >> 8, i & 255)}]}}
        for i in range(batch)]}, open("%s/batch%d.json" % (out, r), "w"))
PY
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(free_port)
"$B/berthd" --data "$OUT/data" --listen "127.0.0.1:$P" --router-listen 127.0.0.1:0 \
  --dns-listen 127.0.0.1:0 --no-access-log >"$OUT/log" 2>&1 &
PID=$!
for ((i = 0; i < 100; i++)); do curl -sf "http://127.0.0.1:$P/healthz" >/dev/null && break; sleep 0.1; done
set -a; . "$OUT/data/admin.credentials"; set +a
export BERTH_SERVER=http://127.0.0.1:$P
"$B/berth" dns zone create example.com >/dev/null
"$B/berth" dns zone import example.com --file "$OUT/zone" --replace >/dev/null
for ((r = 0; r < RUNS; r++)); do
  curl -s -o /dev/null -w "batch $r: %{time_total} s (HTTP %{http_code})\n" \
    -u "$BERTH_ACCESS_KEY_ID:$BERTH_SECRET_ACCESS_KEY" --data-binary @"$OUT/batch$r.json" \
    "http://127.0.0.1:$P/api/v1/dns/zones/example.com/changes"
done
grep -o 'zone changed.*' "$OUT/log" | tail -n "$RUNS"
