#!/usr/bin/env bash
# lookalike on PostgreSQL: a real server from Debian's package (tests/lib/pg_server.sh) on a
# free loopback port; ingest into it, serve from it (--store and LOOKALIKE_STORE), exercise the
# API, start a second node with an empty data directory that rebuilds its indexes from the
# vectors stored in PostgreSQL, and keep serving across a server restart and an outage.
set -uo pipefail
BUILD=${BUILD:-build}
LK=$BUILD/lookalike
PRODUCTS=${DATA_DIR:-../shared/data}/products
TMP=$(mktemp -d)
PGDIR=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
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

BASE=$(tests/lib/pg_server.sh start "$PGDIR" $$) || {
    echo "cannot start PostgreSQL"
    exit 1
}
psql -q "$BASE/postgres" -c "CREATE DATABASE shop" || exit 1
# The server trusts loopback, so the password is never checked: it is here to prove that it
# never shows up in logs or /debug.
STORE="${BASE/postgres@/postgres:pg-secret-pw@}/shop"
echo "PostgreSQL at $BASE"

# ---- 12 demo photos, 3 categories ----
SUB=$TMP/photos
mkdir -p "$SUB"
head -1 "$PRODUCTS/metadata.csv" >"$SUB/metadata.csv"
for cat in dress shoes hat; do
    grep -E "^[^,]*,[^,]*,$cat," "$PRODUCTS/metadata.csv" | head -4 >>"$SUB/metadata.csv"
done
tail -n +2 "$SUB/metadata.csv" | cut -d, -f1 | while read -r p; do
    mkdir -p "$SUB/$(dirname "$p")"
    cp "$PRODUCTS/$p" "$SUB/$p"
done
SHOE=$(grep ',shoes,' "$SUB/metadata.csv" | head -1 | cut -d, -f1)
SHOE_ID=$(grep ',shoes,' "$SUB/metadata.csv" | head -1 | cut -d, -f4)

timeout 300 "$LK" ingest --data "$TMP/ingest" --store "$STORE" --metadata "$SUB/metadata.csv" "$SUB" >"$TMP/ingest.log" 2>&1
expect_eq "ingest into PostgreSQL exits 0" "$?" 0
grep -q "12 added" "$TMP/ingest.log" && ok "ingest adds 12" || fail "ingest: $(tail -3 "$TMP/ingest.log")"
expect_eq "the products are rows in PostgreSQL" \
    "$(psql -tA "$BASE/shop" -c 'SELECT count(*), count(vector), sum(length(vector)) / count(vector) FROM lookalike.products')" \
    "12|12|3072"
expect_eq "their photos are bytea rows" "$(psql -tA "$BASE/shop" -c 'SELECT count(*) FROM lookalike.images')" 12
[ ! -e "$TMP/ingest/catalog.db" ] && ok "no SQLite catalogue in the data directory" || fail "catalog.db was created"

# start_server NAME DATA [ARGS...]: sets PORT_<NAME>, LOG_<NAME>, PID_<NAME>
start_server() {
    local name=$1 data=$2
    shift 2
    local log=$TMP/server-$name-$RANDOM.log port=
    "$LK" serve --data "$data" --port 0 "$@" 2>"$log" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 600); do
        port=$(grep -o '"msg":"listening".*"port":[0-9]*' "$log" 2>/dev/null | grep -o '"port":[0-9]*' | cut -d: -f2)
        [ -n "$port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "server $name did not start:"
        cat "$log"
        exit 1
    fi
    printf -v "PORT_$name" '%s' "$port"
    printf -v "LOG_$name" '%s' "$log"
    printf -v "PID_$name" '%s' "$pid"
}
status() { "${CURL[@]}" -o "$TMP/body" -w '%{http_code}' "$@"; }

# ---- node A: --store ----
start_server A "$TMP/a" --store "$STORE"
A=http://127.0.0.1:$PORT_A
expect_eq "node A serves the catalogue from PostgreSQL" "$("${CURL[@]}" "$A/api/products?limit=1" | jq_ 'd["total"]')" 12
grep -q "12 vectors read from the catalogue, 0 photos embedded again" "$LOG_A" &&
    ok "node A rebuilt its index from stored vectors" || fail "start-up: $(grep loaded "$LOG_A")"
expect_eq "POST a product" \
    "$(status -F "image=@$SUB/$SHOE" -F 'product={"id":"pg-1","title":"Giày da bò","category":"shoes","price":990000}' "$A/api/products")" 201
SEQ1=$(jq_ 'd["seq"]' <"$TMP/body")
expect_eq "its seq is the catalogue's next" "$SEQ1" 13
expect_eq "POST of the same product again is a retry, not a conflict" \
    "$(status -F "image=@$SUB/$SHOE" -F 'product={"id":"pg-1","title":"Giày da bò","category":"shoes","price":990000}' "$A/api/products")" 201
expect_eq "the retry answers the first write's seq" "$(jq_ 'd["seq"]' <"$TMP/body")" "$SEQ1"
expect_eq "POST of another product under that id is 409" \
    "$(status -F "image=@$SUB/$SHOE" -F 'product={"id":"pg-1","title":"other"}' "$A/api/products")" 409
expect_eq "GET it" "$("${CURL[@]}" "$A/api/products/pg-1" | jq_ 'd["title"]')" "Giày da bò"
"${CURL[@]}" "$A/api/products/pg-1/image" -o "$TMP/img"
cmp -s "$TMP/img" "$SUB/$SHOE" && ok "GET image returns the bytes from PostgreSQL" || fail "image bytes differ"
expect_eq "text search, accent-insensitive" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"giay da"}' "$A/api/search" | jq_ 'd["results"][0]["id"]')" pg-1
expect_eq "image search" "$("${CURL[@]}" -F "image=@$SUB/$SHOE" -F 'query={"k":2}' "$A/api/search" | jq_ 'sorted(r["id"] for r in d["results"])')" \
    "$(python3 -c "print(sorted(['$SHOE_ID', 'pg-1']))")"
expect_eq "PUT upserts" "$(status -X PUT "${J[@]}" -d '{"title":"Giày da bò nâu","category":"shoes"}' "$A/api/products/pg-1")" 200
expect_eq "list pages" "$("${CURL[@]}" "$A/api/products?limit=5" | jq_ 'len(d["items"]), d["total"], d["next_cursor"] is not None')" "(5, 13, True)"
expect_eq "a collection" "$(status "${J[@]}" -d '{"name":"pgshop","index":"flat"}' "$A/api/collections")" 201
expect_eq "DELETE" "$(status -X DELETE "$A/api/products/$SHOE_ID")" 200
expect_eq "deleted is gone" "$(status "$A/api/products/$SHOE_ID")" 404
expect_eq "the change log in PostgreSQL has one entry per product" \
    "$(psql -tA "$BASE/shop" -c "SELECT count(*), max(seq), bool_or(deleted) FROM lookalike.changes")" "13|15|t"
"${CURL[@]}" "$A/debug" >"$TMP/debug.json"
grep -q '"store":"postgresql (host 127.0.0.1' "$TMP/debug.json" && ok "/debug names the store" || fail "/debug: $(head -c 300 "$TMP/debug.json")"
if grep -q pg-secret-pw "$TMP/debug.json" "$LOG_A" "$TMP/ingest.log"; then fail "the password leaked"; else ok "the password is in no log and not in /debug"; fi

# ---- node B: LOOKALIKE_STORE, an empty data directory ----
LOOKALIKE_STORE=$STORE start_server B "$TMP/b"
B=http://127.0.0.1:$PORT_B
expect_eq "node B sees everything node A wrote" "$("${CURL[@]}" "$B/api/products?limit=1" | jq_ 'd["total"]')" 12
grep -q "12 vectors read from the catalogue, 0 photos embedded again" "$LOG_B" &&
    ok "node B embedded nothing: the vectors came from PostgreSQL" || fail "start-up: $(grep loaded "$LOG_B")"
expect_eq "node B finds by image with the stored vectors" \
    "$("${CURL[@]}" -F "image=@$SUB/$SHOE" -F 'query={"k":1}' "$B/api/search" | jq_ 'd["results"][0]["id"]')" pg-1
expect_eq "node B has the collection" "$("${CURL[@]}" "$B/api/collections" | jq_ 'sorted(c["name"] for c in d["collections"])')" "['pgshop', 'products']"

# ---- two nodes on one store: each follows the other's writes ----
HAT=$(grep ',hat,' "$SUB/metadata.csv" | head -1 | cut -d, -f1)
status -F "image=@$SUB/$HAT" -F 'product={"id":"ryw-1","title":"Mũ len đỏ","category":"hat"}' "$A/api/products" >/dev/null
S=$(jq_ 'd["seq"]' <"$TMP/body")
expect_eq "read-your-writes across nodes: a search on B with A's seq finds it" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"mu len","min_seq":'"$S"'}' "$B/api/search" | jq_ 'd["results"][0]["id"]')" ryw-1
expect_eq "and by its photo (the vector came from PostgreSQL)" \
    "$("${CURL[@]}" -F "image=@$SUB/$HAT" -F 'query={"k":5,"min_seq":'"$S"'}' "$B/api/search" | jq_ '"ryw-1" in [r["id"] for r in d["results"]]')" True
status -X DELETE "$A/api/products/ryw-1" >/dev/null
S=$(jq_ 'd["seq"]' <"$TMP/body")
expect_eq "a delete on A is gone on B for a search with its seq" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"mu len","min_seq":'"$S"'}' "$B/api/search" | jq_ '"ryw-1" in [r["id"] for r in d["results"]]')" False
expect_eq "a write on B" "$(status -X PUT "${J[@]}" -d '{"title":"Giày da bò đen","category":"shoes"}' "$B/api/products/pg-1")" 200
S=$(jq_ 'd["seq"]' <"$TMP/body")
expect_eq "is visible on A with its seq" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"giay den","min_seq":'"$S"'}' "$A/api/search" | jq_ 'd["results"][0]["product"]["title"]')" "Giày da bò đen"
expect_eq "a min_seq no write has reached is refused" \
    "$(status "${J[@]}" -d '{"text":"giay","min_seq":999999}' "$B/api/search")" 409
# Without min_seq, the tailer (woken by NOTIFY) brings A's writes to B by itself.
status -F "image=@$SUB/$HAT" -F 'product={"id":"tail-1","title":"Mũ tự đến","category":"hat"}' "$A/api/products" >/dev/null
t0=$(date +%s.%N)
seen=0
for _ in $(seq 1 100); do
    if [ "$(status "$B/api/products/tail-1")" = 200 ]; then
        seen=1
        break
    fi
    sleep 0.05
done
t1=$(date +%s.%N)
expect_eq "node B applies A's write without being asked" "$seen" 1
echo "measure: a write acknowledged by A was readable on B after $(python3 -c "print(round($t1-$t0, 3))") s (wall clock, loaded machine)"
expect_eq "a collection created on A is usable on B" \
    "$(status "${J[@]}" -d '{"name":"later","index":"flat"}' "$A/api/collections")/$(status "$B/api/collections/later/products?limit=1")" 201/200
kill "$PID_B"
wait "$PID_B"

# ---- the server restarts under node A: no error, no restart of node A ----
tests/lib/pg_server.sh restart "$PGDIR"
expect_eq "after a PostgreSQL restart, writes go on" \
    "$(status -F "image=@$SUB/$SHOE" -F 'product={"id":"pg-2","title":"after restart"}' "$A/api/products")" 201
expect_eq "and reads" "$("${CURL[@]}" "$A/api/products/pg-2/image" | cmp -s - "$SUB/$SHOE" && echo same)" same

# ---- an outage: 503 with Retry-After, node A stays up, then recovers by itself ----
tests/lib/pg_server.sh crash "$PGDIR"
code=$("${CURL[@]}" -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' -F "image=@$SUB/$SHOE" -F 'product={"id":"pg-3","title":"during outage"}' "$A/api/products")
expect_eq "a write while PostgreSQL is down is 503" "$code" 503
expect_eq "with a JSON error that says to retry" "$(jq_ 'd["error"]["code"], "retry" in d["error"]["message"]' <"$TMP/body")" "('unavailable', True)"
grep -qi '^retry-after: 1' "$TMP/headers" && ok "and Retry-After" || fail "no Retry-After: $(cat "$TMP/headers")"
expect_eq "searches still answer from memory" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"giay"}' "$A/api/search" | jq_ 'd["results"][0]["id"]')" pg-1
expect_eq "node A is up" "$(status "$A/healthz")" 200
tests/lib/pg_server.sh restart "$PGDIR"
expect_eq "the same write succeeds once PostgreSQL is back" \
    "$(status -F "image=@$SUB/$SHOE" -F 'product={"id":"pg-3","title":"during outage"}' "$A/api/products")" 201

# ---- a store that cannot be reached is a clear start-up error ----
out=$("$LK" serve --data "$TMP/c" --port 0 --store "postgresql://u@127.0.0.1:1/x" 2>&1)
expect_eq "serve with an unreachable store exits 1" "$?" 1
grep -q "cannot reach a writable PostgreSQL server" <<<"$out" && ok "and says so" || fail "message: $out"
out=$("$LK" serve --data "$TMP/c" --port 0 --store "mysql://x" 2>&1)
grep -q "unknown store" <<<"$out" && ok "an unknown store is refused" || fail "message: $out"

kill "$PID_A"
wait "$PID_A"
expect_eq "node A stops cleanly" "$?" 0
echo "$FAILS failures"
[ "$FAILS" -eq 0 ]
