#!/usr/bin/env bash
# bench/cluster: the sharded cluster through Nginx against one node alone, in the same run.
#
# Brings up deploy/cluster on free loopback ports (etcd, Patroni + PostgreSQL, 3 query nodes
# holding 2 shards twice over: node1 shards 0 and 1, node2 shard 0, node3 shard 1, Nginx,
# lbcheck) with the whole demo catalogue, then for each request kind (more like this, text,
# hybrid) runs build/lookalike-load twice back to back: through Nginx (round robin over the 3
# nodes, each answering for the whole collection by asking one replica of every shard it lacks)
# and against node1 alone (it holds every shard, so it answers without asking anyone). Prints
# one JSON line per run and one "ratio" line per kind (cluster / single node, requests/s and
# p99). Everything shares this machine's cores: on 2 cores the cluster cannot add CPU, so the
# ratio shows what the fan-out and Nginx cost, not what more machines would give.
#
#   bench/cluster/cluster.sh [--seconds 15] [--connections 8] [--catalogue DIR]
set -uo pipefail
SECONDS_PER_CASE=15
CONNECTIONS=8
CAT=${DATA_DIR:-../shared/data}/products
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECONDS_PER_CASE=$2 ;;
    --connections) CONNECTIONS=$2 ;;
    --catalogue) CAT=$2 ;;
    *)
        echo "usage: bench/cluster/cluster.sh [--seconds 15] [--connections 8] [--catalogue DIR]" >&2
        exit 2
        ;;
    esac
    shift 2
done
source "$(dirname "$0")/../../tests/integration/cluster_lib.inc"
[ -x "$ROOT/$BUILD/lookalike-load" ] || {
    echo "bench/cluster: build first (make all)" >&2
    exit 2
}

BASE_PORT=$(free_base_port) || exit 1
LB_PORT=$((BASE_PORT + 65))
export BASE_PORT LB_PORT CATALOGUE=$CAT
echo "bench/cluster: deploy/cluster up with the catalogue in $CAT (minutes: it ingests the photos)" >&2
if ! timeout 900 "${CLUSTER[@]}" up >"$TMP/up.log" 2>&1; then
    cat "$TMP/up.log" >&2
    fail "deploy/cluster up"
    exit 1
fi
LB=http://127.0.0.1:$LB_PORT
NODE1=http://127.0.0.1:$((BASE_PORT + 40))
full_answers || fail "searches through Nginx are not answered by every shard"

run_case() { # KIND TARGET URL
    "$ROOT/$BUILD/lookalike-load" --url "$3" --mix "$1" --connections "$CONNECTIONS" \
        --duration "${SECONDS_PER_CASE}s" --timeout 30s --sample 2000 --json >"$TMP/$1-$2.json" 2>"$TMP/$1-$2.err" ||
        {
            cat "$TMP/$1-$2.err" >&2
            return 1
        }
    python3 - "$TMP/$1-$2.json" "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
k = r["kinds"][sys.argv[2]]
print(json.dumps({"bench": "cluster", "kind": sys.argv[2], "target": sys.argv[3],
                  "requests": r["requests"], "ok_per_s": round(r["ok_per_s"], 1),
                  "p50_ms": r["latency_ms"]["p50"], "p99_ms": r["latency_ms"]["p99"],
                  "failed": k["requests"] - k["ok"], "partial": r.get("partial", 0)}))
PY
}
for kind in similar text hybrid; do
    run_case "$kind" cluster "$LB" >"$TMP/line-c" || fail "$kind through Nginx"
    run_case "$kind" node1 "$NODE1" >"$TMP/line-1" || fail "$kind on node1"
    cat "$TMP/line-c" "$TMP/line-1"
    python3 - "$TMP/line-c" "$TMP/line-1" <<'PY'
import json, sys
c, o = (json.loads(open(p).read()) for p in sys.argv[1:3])
print(json.dumps({"bench": "cluster", "kind": c["kind"], "ratio_rps": round(c["ok_per_s"] / o["ok_per_s"], 3) if o["ok_per_s"] else None,
                  "ratio_p99": round(c["p99_ms"] / o["p99_ms"], 3) if o["p99_ms"] else None}))
PY
done
exit $((FAILS > 0))
