#!/usr/bin/env bash
# lookalike as a sharded cluster: three `lookalike serve` nodes on one real PostgreSQL
# (tests/lib/pg_server.sh), a collection of 2 shards held twice over the 3 nodes (n1: 0,1;
# n2: 0; n3: 1). Checks that a search on any node returns exactly what one index holding
# everything returns (a collection of one shard with the same products, in the same order),
# that reads of shards a node lacks are forwarded, read-your-writes across shards, that kill -9
# of a node leaves searches complete while a replica of every shard lives and says "partial"
# when none does, and that a node restarted after thousands of writes loads its snapshot,
# replays only the changes after it, and is not ready until it has caught up.
set -uo pipefail
BUILD=${BUILD:-build}
LK=$BUILD/lookalike
BULK=$BUILD/tests/lookalike_bulk
PRODUCTS=${DATA_DIR:-../shared/data}/products
# Writes made while a node is down (sanitized builds are slower: fewer), photos per category.
BULK_N=${CLUSTER_BULK_WRITES:-$([ -n "${SAN:-}" ] && echo 3000 || echo 10000)}
PER=${CLUSTER_PHOTOS_PER_CATEGORY:-5}
TMP=$(mktemp -d)
PGDIR=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    # The nodes' logs go into this test's log when something failed.
    if [ "${FAILS:-0}" -ne 0 ]; then
        for f in "$TMP"/n*.log; do
            echo "---- $f"
            grep -v '"level":"info"' "$f" | tail -40
        done
    fi
    tests/lib/pg_server.sh stop "$PGDIR"
    rm -rf "$TMP"
}
trap cleanup EXIT
FAILS=0
fail() {
    echo "FAIL: $*"
    FAILS=$((FAILS + 1))
}
ok() { echo "ok: $*"; }
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got [$2], want [$3]"; fi
}
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
CURL=(curl -s --max-time 60)
J=(-H 'Content-Type: application/json')
status() { "${CURL[@]}" -o "$TMP/body" -w '%{http_code}' "$@"; }

BASE=$(tests/lib/pg_server.sh start "$PGDIR" $$) || {
    echo "cannot start PostgreSQL"
    exit 1
}
psql -q "$BASE/postgres" -c "CREATE DATABASE shop" || exit 1
STORE="$BASE/shop"
pgq() { psql -tA "$STORE" -c "$1"; }

# ---- 30 demo photos, 6 categories, with titles, brands and prices ----
SUB=$TMP/photos
mkdir -p "$SUB"
python3 - "$PRODUCTS" "$SUB" "$PER" <<'EOF'
import csv, os, shutil, sys
src, dst, per = sys.argv[1], sys.argv[2], int(sys.argv[3])
titles = {"dress": "Đầm hoa mùa hè", "shoes": "Giày da nam", "hat": "Mũ len ấm", "t-shirt": "Áo thun cotton",
          "pants": "Quần jean ống rộng", "shirt": "Áo sơ mi công sở"}
brands = ["Coolmate", "Canifa", "Vascara", "Biti's"]
rows, seen = [], {}
for r in csv.DictReader(open(os.path.join(src, "metadata.csv"))):
    c = r["category"]
    if c in titles and seen.get(c, 0) < per:
        n = seen[c] = seen.get(c, 0) + 1
        os.makedirs(os.path.join(dst, os.path.dirname(r["path"])), exist_ok=True)
        shutil.copy(os.path.join(src, r["path"]), os.path.join(dst, r["path"]))
        i = len(rows)
        rows.append([r["path"], "p%02d" % i, "%s %d" % (titles[c], n), c, brands[i % 4], 100000 * (i + 1)])
with open(os.path.join(dst, "metadata.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["path", "id", "title", "category", "brand", "price"])
    w.writerows(rows)
EOF
ALL=$((6 * PER))
expect_eq "$ALL photos picked" "$(($(wc -l <"$SUB/metadata.csv") - 1))" "$ALL"
photo_of() { grep ",$1," "$SUB/metadata.csv" | head -1 | cut -d, -f1; }
# The shard of a category: FNV-1a-64 of its folded bytes, modulo 2 (lookalike_shard_of).
shard_of() { python3 -c "
h = 14695981039346656037
for b in '$1'.encode(): h = ((h ^ b) * 1099511628211) % 2**64
print(h % 2)"; }

# ---- three nodes ----
read -r P1 P2 P3 < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
PEERS="n1=http://127.0.0.1:$P1,n2=http://127.0.0.1:$P2,n3=http://127.0.0.1:$P3"
declare -A PORT=([n1]=$P1 [n2]=$P2 [n3]=$P3) SHARDS=([n1]=0,1 [n2]=0 [n3]=1) PID LOG
# start_node NAME [ARGS...]: starts it in the background (log in LOG[NAME]).
start_node() {
    local name=$1
    shift
    LOG[$name]=$TMP/$name-$RANDOM.log
    "$LK" serve --data "$TMP/$name" --store "$STORE" --port "${PORT[$name]}" --node-name "$name" \
        --shards "${SHARDS[$name]}" --peers "$PEERS" --snapshot-interval "${SNAPSHOT_EVERY:-1s}" --peer-timeout 3s "$@" \
        2>"${LOG[$name]}" &
    PID[$name]=$!
    PIDS+=("${PID[$name]}")
}
# wait_listening NAME: until its log says it listens.
wait_listening() {
    for _ in $(seq 1 900); do
        grep -q '"msg":"listening"' "${LOG[$1]}" 2>/dev/null && return 0
        kill -0 "${PID[$1]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "node $1 did not start:"
    cat "${LOG[$1]}"
    exit 1
}
wait_ready() {
    for _ in $(seq 1 600); do
        [ "$(status "http://127.0.0.1:${PORT[$1]}/readyz")" = 200 ] && return 0
        sleep 0.1
    done
    fail "node $1 not ready: $(cat "$TMP/body")"
}
url() { echo "http://127.0.0.1:${PORT[$1]}"; }
for n in n1 n2 n3; do start_node $n; done
for n in n1 n2 n3; do wait_listening $n; done
for n in n1 n2 n3; do wait_ready $n; done
ok "three nodes listen and are ready"

# ---- collections: "shop" in 2 shards by category, "one" (1 shard: the single-index answer),
# "bulk" in 2 shards by id ----
N1=$(url n1)
expect_eq "create shop (2 shards by category)" \
    "$(status "${J[@]}" -d '{"name":"shop","shards":2,"shard_key":"category"}' "$N1/api/collections")" 201
expect_eq "its definition says so" "$(jq_ 'd["shards"], d["shard_key"]' <"$TMP/body")" "(2, 'category')"
expect_eq "create one (1 shard)" "$(status "${J[@]}" -d '{"name":"one"}' "$N1/api/collections")" 201
expect_eq "create bulk (2 shards by id)" \
    "$(status "${J[@]}" -d '{"name":"bulk","shards":2,"shard_key":"id","index":"flat"}' "$N1/api/collections")" 201
expect_eq "shards 0 is refused" "$(status "${J[@]}" -d '{"name":"x","shards":0}' "$N1/api/collections")" 400
expect_eq "shard key brand is refused" \
    "$(status "${J[@]}" -d '{"name":"x","shards":2,"shard_key":"brand"}' "$N1/api/collections")/$(jq_ 'd["error"]["message"]' <"$TMP/body")" \
    '400/field "shard_key": expected "category" or "id"'
expect_eq "the stored definition holds the sharding" \
    "$(pgq "SELECT index_params FROM lookalike.collections WHERE name = 'shop'")" \
    '{"index":"hnsw","shard_key":"category","shards":2}'

# One writer at a time, in metadata order, so both collections number their products alike.
for c in shop one; do
    timeout 600 "$LK" ingest --data "$TMP/ingest" --store "$STORE" --collection $c --threads 1 \
        --metadata "$SUB/metadata.csv" "$SUB" >"$TMP/ingest-$c.log" 2>&1 ||
        fail "ingest $c: $(tail -3 "$TMP/ingest-$c.log")"
done
# wait_caught_up NAME...: until each node has applied the whole change log.
wait_caught_up() {
    local want n
    want=$(pgq "SELECT value FROM lookalike.meta WHERE key = 'seq'")
    for n in "$@"; do
        for _ in $(seq 1 600); do
            [ "$("${CURL[@]}" "$(url "$n")/api/cluster?view=self" | jq_ 'd["self"]["applied_seq"]')" = "$want" ] && break
            sleep 0.1
        done
    done
}
wait_caught_up n1 n2 n3

# ---- each node holds its shards only ----
S0=0
for c in dress shoes hat t-shirt pants shirt; do [ "$(shard_of $c)" = 0 ] && S0=$((S0 + PER)); done
count_on() { "${CURL[@]}" "$(url "$1")/api/collections" | jq_ '[c["count"] for c in d["collections"] if c["name"] == "shop"][0]'; }
expect_eq "n1 holds both shards of shop" "$(count_on n1)" "$ALL"
expect_eq "n2 holds shard 0 only" "$(count_on n2)" "$S0"
expect_eq "n3 holds shard 1 only" "$(count_on n3)" "$((ALL - S0))"
[ "$S0" -gt 0 ] && [ "$S0" -lt "$ALL" ] && ok "both shards have products" || fail "one shard is empty ($S0)"

# ---- every node answers what one index holding everything answers ----
cat >"$TMP/check.py" <<'EOF'
# check.py BASELINE_URL URL... : runs each case of cases.json on BASELINE_URL/api/collections/one
# and on every URL/api/collections/shop, and compares the answers.
import json, sys, urllib.request, uuid
base, urls = sys.argv[1], sys.argv[2:]
cases = json.load(open(sys.argv[0].rsplit("/", 1)[0] + "/cases.json"))
def call(u, coll, case):
    path = "%s/api/collections/%s%s" % (u, coll, case.get("path", "/search"))
    if "get" in case:
        return json.load(urllib.request.urlopen(path, timeout=60))
    body, headers = json.dumps(case["query"]).encode(), {"Content-Type": "application/json"}
    if "image" in case:
        b = uuid.uuid4().hex
        img = open(case["image"], "rb").read()
        body = (("--%s\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\n" % b).encode() + body +
                ("\r\n--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.jpg\"\r\n"
                 "Content-Type: image/jpeg\r\n\r\n" % b).encode() + img + ("\r\n--%s--\r\n" % b).encode())
        headers = {"Content-Type": "multipart/form-data; boundary=" + b}
    req = urllib.request.Request(path, data=body, headers=headers)
    return json.load(urllib.request.urlopen(req, timeout=60))
def key(d):
    if "results" not in d:
        return {k: v for k, v in d.items() if k not in ("took_ms",)}
    return {"total": d["total"], "partial": d.get("partial", False),
            "results": [(r["id"], r["score"], r["why"]) for r in d["results"]]}
fails = 0
for case in cases:
    want, before = key(call(base, "one", case)), fails
    if not want.get("results", want.get("total")):
        print("FAIL: %s: the baseline is empty" % case["name"])
        fails += 1
    for u in urls:
        got = key(call(u, "shop", case))
        if got != want:
            print("FAIL: %s on %s:\n  got  %s\n  want %s" % (case["name"], u, got, want))
            fails += 1
    if fails == before:
        print("ok: %s: every node answers what one index holding everything answers" % case["name"])
sys.exit(min(fails, 100))
EOF
DRESS=$SUB/$(photo_of dress)
SHOE=$SUB/$(photo_of shoes)
# A product of shard 1, for "more like this" from n2, which does not hold it.
for c in dress shoes hat t-shirt pants shirt; do [ "$(shard_of $c)" = 1 ] && CAT1=$c && break; done
for c in dress shoes hat t-shirt pants shirt; do [ "$(shard_of $c)" = 0 ] && CAT0=$c && break; done
ID1=$(grep ",$CAT1," "$SUB/metadata.csv" | head -1 | cut -d, -f2)
cat >"$TMP/cases.json" <<EOF
[{"name": "text", "query": {"text": "ao thun", "k": 10}},
 {"name": "text, accents", "query": {"text": "Giày da", "k": 5}},
 {"name": "text, prefix of the last word", "query": {"text": "mu l", "k": 10}},
 {"name": "text, paged", "query": {"text": "coolmate ao", "k": 7, "offset": 3}},
 {"name": "photo", "image": "$DRESS", "query": {"k": 12}},
 {"name": "photo + words + filter (hybrid)", "image": "$SHOE",
  "query": {"text": "giay da nam", "filters": {"price_max": 2500000}, "k": 10}},
 {"name": "more like this ($ID1, shard 1)", "query": {"product_id": "$ID1", "k": 8}},
 {"name": "filters alone", "query": {"filters": {"brand": "Canifa"}, "k": 10}},
 {"name": "filters alone, two categories", "query": {"filters": {"category": ["$CAT0", "$CAT1"]}, "k": 50}},
 {"name": "weights", "image": "$DRESS", "query": {"text": "dam hoa", "weights": {"image": 0.2, "text": 2}, "k": 10}},
 {"name": "facets", "get": 1, "path": "/facets"},
 {"name": "similar", "get": 1, "path": "/products/$ID1/similar?k=6&same_category=true"}]
EOF
python3 "$TMP/check.py" "$N1" "$N1" "$(url n2)" "$(url n3)" || FAILS=$((FAILS + 1))

# ---- concurrent searches on every node, each fanning out to the others ----
# A search holds a worker while it waits for its replicas, whose answers run on a pool of their
# own; an answer that waited for the peer timeout would show as partial.
expect_eq "144 searches from 24 concurrent clients on three nodes: all whole" "$(python3 - "$N1" "$(url n2)" "$(url n3)" <<'PY'
import json, sys, threading, urllib.request
bad = []
def client(u, i):
    for j in range(6):
        q = json.dumps({"text": ["ao thun", "giay da", "mu len", "quan jean"][(i + j) % 4], "k": 10}).encode()
        r = urllib.request.Request(u + "/api/collections/shop/search", data=q,
                                   headers={"Content-Type": "application/json"})
        try:
            d = json.load(urllib.request.urlopen(r, timeout=60))
            if d.get("partial") or not d["results"]:
                bad.append(d.get("missing_shards"))
        except Exception as e:
            bad.append(str(e))
ts = [threading.Thread(target=client, args=(u, i)) for u in sys.argv[1:] for i in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
print(len(ts) * 6 - len(bad), bad[:3])
PY
)" "144 []"

# ---- reads of shards a node does not hold are forwarded ----
N2=$(url n2)
N3=$(url n3)
expect_eq "n2 finds a product of shard 1" "$(status "$N2/api/collections/shop/products/$ID1")" 200
expect_eq "the same as n3 holds" "$(jq_ 'd["title"], d["seq"]' <"$TMP/body")" \
    "$("${CURL[@]}" "$N3/api/collections/shop/products/$ID1" | jq_ 'd["title"], d["seq"]')"
"${CURL[@]}" "$N2/api/collections/shop/products/$ID1/image" -o "$TMP/img"
cmp -s "$TMP/img" "$SUB/$(grep ",$ID1," "$SUB/metadata.csv" | cut -d, -f1)" && ok "and its photo" || fail "photo differs"
expect_eq "an unknown product is 404 on a node that asked the others" \
    "$(status "$N2/api/collections/shop/products/nope")/$(jq_ 'd["error"]["code"]' <"$TMP/body")" "404/not_found"

# ---- writes anywhere, read-your-writes everywhere ----
expect_eq "n2 takes a write for shard 1, which it does not hold" \
    "$(status -F "image=@$SHOE" -F "product={\"id\":\"w1\",\"title\":\"Ủng cao su đi mưa\",\"category\":\"$CAT1\"}" "$N2/api/collections/shop/products")" 201
S=$(jq_ 'd["seq"]' <"$TMP/body")
for n in n1 n2 n3; do
    expect_eq "a search on $n with its seq finds it" \
        "$("${CURL[@]}" "${J[@]}" -d '{"text":"ung cao su","min_seq":'"$S"'}' "$(url $n)/api/collections/shop/search" | jq_ 'd["results"][0]["id"]')" w1
done
expect_eq "n2 does not keep it" "$(count_on n2)" "$S0"
expect_eq "delete on n3" "$(status -X DELETE "$N3/api/collections/shop/products/w1")" 200
S=$(jq_ 'd["seq"]' <"$TMP/body")
expect_eq "gone from a search on n2 with the delete's seq" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"ung cao su","min_seq":'"$S"'}' "$N2/api/collections/shop/search" | jq_ 'len(d["results"])')" 0
expect_eq "a min_seq no write has reached is refused by the replicas too" \
    "$(status "${J[@]}" -d '{"text":"x","min_seq":99999999}' "$N2/api/collections/shop/search")/$(jq_ 'd["error"]["code"]' <"$TMP/body")" \
    "409/seq_not_reached"
expect_eq "a bad query is refused before any fan-out" \
    "$(status "${J[@]}" -d '{"text":"x","k":0}' "$N2/api/collections/shop/search")" 400

# ---- the node's view: /api/cluster and /status ----
"${CURL[@]}" "$N2/api/cluster" >"$TMP/cluster.json"
expect_eq "n2 sees its peers up, with their shards" \
    "$(jq_ 'sorted((p["name"], p["state"], p["shards"]) for p in d["peers"])' <"$TMP/cluster.json")" \
    "[('n1', 'up', '0-1'), ('n3', 'up', '1')]"
expect_eq "and each shard's replicas" \
    "$(jq_ '[[r["node"] for r in sh] for c in d["collections"] if c["name"] == "shop" for sh in c["replicas"]]' <"$TMP/cluster.json")" \
    "[['n2', 'n1'], ['n1', 'n3']]"
expect_eq "/status is a page" "$(status "$N2/status")" 200
grep -q '<td>n3</td>' "$TMP/body" && grep -q 'shop' "$TMP/body" && ok "/status lists the nodes and collections" ||
    fail "/status: $(head -c 300 "$TMP/body")"

# ---- kill -9 a node: searches stay complete while a replica of every shard lives ----
for _ in $(seq 1 100); do
    [ "$("${CURL[@]}" "$N3/api/cluster?view=self" | jq_ 'd["self"]["snapshot_seq"] == d["self"]["applied_seq"]')" = True ] && break
    sleep 0.1
done
SNAP3=$("${CURL[@]}" "$N3/api/cluster?view=self" | jq_ 'd["self"]["snapshot_seq"]')
kill -9 "${PID[n3]}"
wait "${PID[n3]}" 2>/dev/null
python3 "$TMP/check.py" "$N1" "$N2" "$N1" || FAILS=$((FAILS + 1))
expect_eq "n2 has seen n3 go" "$("${CURL[@]}" "$N2/api/cluster" | jq_ '[p["state"] for p in d["peers"] if p["name"] == "n3"][0]')" down

# A second node down: shard 1 has no replica left. The answer says so.
kill -9 "${PID[n1]}"
wait "${PID[n1]}" 2>/dev/null
"${CURL[@]}" "${J[@]}" -d '{"text":"ao thun","k":30}' "$N2/api/collections/shop/search" >"$TMP/partial.json"
expect_eq "with no replica of shard 1, n2's answer is partial" \
    "$(jq_ 'd.get("partial"), d.get("missing_shards")' <"$TMP/partial.json")" "(True, [1])"
expect_eq "and holds shard 0's results" \
    "$(jq_ 'len(d["results"]) > 0 and all(r["product"]["category"] != "'"$CAT1"'" for r in d["results"])' <"$TMP/partial.json")" True
expect_eq "facets say partial too" "$("${CURL[@]}" "$N2/api/collections/shop/facets" | jq_ 'd.get("partial"), d["total"]')" "(True, $S0)"
expect_eq "a product of the missing shard is 503, not 404" \
    "$(status "$N2/api/collections/shop/products/$ID1")/$(jq_ 'd["error"]["code"]' <"$TMP/body")" "503/unavailable"
start_node n1
wait_listening n1
wait_ready n1
grep -q "products from the snapshot" "${LOG[n1]}" && ok "n1 came back from its snapshot" ||
    fail "n1 start-up: $(grep -E 'loaded|snapshot' "${LOG[n1]}")"
for _ in $(seq 1 50); do
    [ "$("${CURL[@]}" "$N2/api/cluster" | jq_ '[p["state"] for p in d["peers"] if p["name"] == "n1"][0]')" = up ] && break
    sleep 0.1
done
expect_eq "once n1 is back, n2's answers are whole again" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"ao thun","k":30}' "$N2/api/collections/shop/search" | jq_ '"partial" in d')" False

# ---- n3 comes back after thousands of writes: snapshot, then only the tail ----
t0=$(date +%s.%N)
LAST=$("$BULK" "$STORE" bulk "$BULK_N" b "$SHOE") || fail "bulk writes"
t1=$(date +%s.%N)
echo "measure: $BULK_N catalogue writes while n3 was down took $(python3 -c "print(round($t1-$t0, 1))") s"
# And one product in both shop and one, so they still agree.
for c in shop one; do
    status -F "image=@$DRESS" -F 'product={"id":"late","title":"Đầm dạ hội","category":"dress"}' "$N1/api/collections/$c/products" >/dev/null
done
TAIL=$(pgq "SELECT count(*) FROM lookalike.changes WHERE seq > $SNAP3")
start_node n3 --max-lag 100
# Asked from the first moment it listens (000 until then).
seen_lag=0
for _ in $(seq 1 6000); do
    code=$(status "$N3/readyz")
    grep -q "behind the change log" "$TMP/body" 2>/dev/null && seen_lag=1
    [ "$code" = 200 ] && break
    kill -0 "${PID[n3]}" 2>/dev/null || break
    sleep 0.02
done
expect_eq "n3 said it was not ready while behind the change log" "$seen_lag" 1
expect_eq "and is ready once caught up" "$code" 200
grep -q "loaded $((ALL - S0)) products from the snapshot at seq $SNAP3" "${LOG[n3]}" &&
    ok "n3 loaded its snapshot (seq $SNAP3) instead of reading the catalogue" ||
    fail "n3 start-up: $(grep -E 'loaded|snapshot' "${LOG[n3]}")"
# Ready comes once within --max-lag; the last changes may still be on their way.
for _ in $(seq 1 300); do
    line=$(grep -o "caught up from the snapshot at seq $SNAP3: [0-9]* changes applied.*" "${LOG[n3]}")
    [ -n "$line" ] && break
    sleep 0.1
done
expect_eq "n3 replayed only the changes after its snapshot" "$(grep -o 'seq [0-9]*: [0-9]*' <<<"$line" | cut -d' ' -f3)" "$TAIL"
echo "measure: n3 restarted after $BULK_N writes: $line"
expect_eq "n3 holds its half of the bulk writes" \
    "$("${CURL[@]}" "$N3/api/collections" | jq_ '[c["count"] for c in d["collections"] if c["name"] == "bulk"][0] > 0')" True
python3 "$TMP/check.py" "$N1" "$N3" "$N2" || FAILS=$((FAILS + 1))

echo "measure: $(grep -o 'loaded [0-9]* products from the snapshot.*' "${LOG[n3]}")"

# The same node without its snapshot reads every product of its shards from the catalogue.
kill "${PID[n3]}"
wait "${PID[n3]}"
expect_eq "n3 stops cleanly" "$?" 0
rm "$TMP/n3/node.snap"
t0=$(date +%s.%N)
SNAPSHOT_EVERY=0 start_node n3
wait_listening n3
wait_ready n3
t1=$(date +%s.%N)
grep -q "products from the catalogue" "${LOG[n3]}" && ok "without a snapshot n3 rebuilds from the catalogue" ||
    fail "n3 start-up: $(grep loaded "${LOG[n3]}")"
echo "measure: n3 without a snapshot: $(grep -o 'loaded [0-9]* products from the catalogue' "${LOG[n3]}"), ready $(python3 -c "print(round($t1-$t0, 2))") s after start"

# With snapshots at a clean stop only: stop, 100 writes, start: the snapshot and a short tail.
kill "${PID[n3]}"
wait "${PID[n3]}"
expect_eq "n3 stops cleanly again" "$?" 0
AT_STOP=$(pgq "SELECT value FROM lookalike.meta WHERE key = 'seq'")
grep -q "snapshot at seq $AT_STOP:" "${LOG[n3]}" && ok "n3 saved its snapshot as it stopped" ||
    fail "no snapshot at stop: $(grep snapshot "${LOG[n3]}")"
"$BULK" "$STORE" bulk 100 c "$SHOE" >/dev/null || fail "bulk writes"
t0=$(date +%s.%N)
start_node n3
wait_listening n3
wait_ready n3
t1=$(date +%s.%N)
grep -q "from the snapshot at seq $AT_STOP: 100 changes applied" "${LOG[n3]}" &&
    ok "n3 loaded that snapshot and applied the 100 changes after it" ||
    fail "n3 start-up: $(grep -E 'loaded|snapshot' "${LOG[n3]}")"
echo "measure: n3 with a snapshot: $(grep -o 'loaded [0-9]* products from the snapshot[^)]*)' "${LOG[n3]}"), $(grep -o '[0-9]* changes applied.*' "${LOG[n3]}"), ready $(python3 -c "print(round($t1-$t0, 2))") s after start"
python3 "$TMP/check.py" "$N1" "$N3" || FAILS=$((FAILS + 1))

for n in n1 n2 n3; do
    kill "${PID[$n]}"
    wait "${PID[$n]}"
    expect_eq "$n stops cleanly" "$?" 0
done
echo "$FAILS failures"
[ "$FAILS" -eq 0 ]
