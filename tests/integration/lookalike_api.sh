#!/usr/bin/env bash
# lookalike end to end: ingest 40 demo photos, serve on a free port, exercise every API route,
# every bad input (4xx with a JSON body, server up, nothing stored changes), restart, and
# kill -9 during writes and during ingest (no acknowledged product lost).
set -uo pipefail
BUILD=${BUILD:-build}
LK=$BUILD/lookalike
PRODUCTS=${DATA_DIR:-../shared/data}/products
TMP=$(mktemp -d)
SERVER_PID=
BG_PID=
cleanup() {
    for p in $SERVER_PID $BG_PID; do
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
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

# ---- a 40-photo subset: 4 per category, with its metadata rows ----
SUB=$TMP/photos
mkdir -p "$SUB"
head -1 "$PRODUCTS/metadata.csv" >"$SUB/metadata.csv"
for cat in $(tail -n +2 "$PRODUCTS/metadata.csv" | cut -d, -f3 | sort -u); do
    grep -E "^[^,]*,[^,]*,$cat," "$PRODUCTS/metadata.csv" | head -4 >>"$SUB/metadata.csv"
done
tail -n +2 "$SUB/metadata.csv" | cut -d, -f1 | while read -r p; do
    mkdir -p "$SUB/$(dirname "$p")"
    cp "$PRODUCTS/$p" "$SUB/$p"
done
N=$(($(wc -l <"$SUB/metadata.csv") - 1))
expect_eq "subset has 40 photos" "$N" 40
echo "not a photo" >"$SUB/broken.jpg"

DATA=$TMP/data
start=$(date +%s.%N)
timeout 300 "$LK" ingest --data "$DATA" --metadata "$SUB/metadata.csv" "$SUB" >"$TMP/ingest.log" 2>&1
rc=$?
end=$(date +%s.%N)
expect_eq "ingest exits 0 with a bad file among the photos" "$rc" 0
grep -q "40 added, 0 already in, 1 failed" "$TMP/ingest.log" && ok "ingest adds 40, reports the bad file" ||
    fail "ingest summary: $(tail -3 "$TMP/ingest.log")"
grep -q "skipped broken.jpg" "$TMP/ingest.log" && ok "the bad file is named" || fail "bad file not named"
echo "measure: ingest of 40 photos took $(python3 -c "print(round($end-$start,2))") s"
timeout 120 "$LK" ingest --data "$DATA" --metadata "$SUB/metadata.csv" "$SUB" >"$TMP/ingest2.log" 2>&1
grep -q "0 added, 40 already in" "$TMP/ingest2.log" && ok "ingest is resumable" || fail "re-ingest: $(tail -2 "$TMP/ingest2.log")"

# ---- the shell subcommands, on the data directory (no server holds it) ----
expect_eq "stats counts the ingested products" \
    "$("$LK" stats --data "$DATA" | jq_ '[(c["name"], c["count"], c["index"]) for c in d["collections"]]')" "[('products', 40, 'hnsw')]"
expect_eq "search from the shell by photo" \
    "$("$LK" search --data "$DATA" --k 3 --image "$SUB/$(grep ',hat,' "$SUB/metadata.csv" | head -1 | cut -d, -f1)" |
        jq_ 'd["results"][0]["product"]["category"]')" hat
expect_eq "search from the shell by text and filters" \
    "$("$LK" search --data "$DATA" --text dress --filters '{"category":"dress"}' | jq_ 'len(d["results"])')" 4
"$LK" search --data "$DATA" >/dev/null 2>&1
expect_eq "search without a query fails" "$?" 1
expect_eq "create-collection from the shell" \
    "$("$LK" create-collection --data "$DATA" --name cli1 --index flat | jq_ 'd["name"], d["index"]')" "('cli1', 'flat')"
"$LK" create-collection --data "$DATA" --name cli1 >/dev/null 2>&1
expect_eq "create-collection of an existing name fails" "$?" 1

STARTS=0
start_server() { # ARGS...
    # A fresh log per start: the background shell may not have truncated an old one yet.
    STARTS=$((STARTS + 1))
    LOG=$TMP/server-$STARTS.log
    "$LK" serve --data "$DATA" --port 0 "$@" 2>"$LOG" &
    SERVER_PID=$!
    PORT=
    for _ in $(seq 1 600); do
        PORT=$(grep -o '"msg":"listening".*"port":[0-9]*' "$LOG" 2>/dev/null | grep -o '"port":[0-9]*' | cut -d: -f2)
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$PORT" ]; then
        echo "server did not start:"
        cat "$LOG"
        exit 1
    fi
    B=http://127.0.0.1:$PORT
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID"
    local rc=$?
    SERVER_PID=
    if [ $rc -ne 0 ]; then
        fail "server exited with $rc on SIGTERM"
        tail -20 "$LOG"
    fi
}
count() { "${CURL[@]}" "$B/api/products?limit=1" | jq_ 'd["total"]'; }
status() { "${CURL[@]}" -o "$TMP/body" -w '%{http_code}' "$@"; }
is_json_error() { python3 -c "import json; d=json.load(open('$TMP/body')); assert d['error']['code'] and d['error']['message']" 2>/dev/null; }

start_server
expect_eq "serve loads the ingested products" "$(count)" 40
expect_eq "healthz" "$(status "$B/healthz")" 200
expect_eq "GET /api/collections lists them all" \
    "$("${CURL[@]}" "$B/api/collections" | jq_ '[c["name"] for c in d["collections"]]')" "['cli1', 'products']"

# ---- products ----
TEE=$(grep ',t-shirt,' "$SUB/metadata.csv" | head -1 | cut -d, -f1)
SHOE=$(grep ',shoes,' "$SUB/metadata.csv" | head -1 | cut -d, -f1)
SHOE_ID=$(grep ',shoes,' "$SUB/metadata.csv" | head -1 | cut -d, -f4)
code=$(status -F "image=@$SUB/$TEE" -F 'product={"id":"vn-1","title":"Áo thun cổ tròn","category":"t-shirt","brand":"Việt Tiến","sizes":["M","L"],"price":150000,"currency":"VND","attributes":{"material":"cotton"}}' "$B/api/products")
expect_eq "POST /api/products answers 201" "$code" 201
expect_eq "201 body holds id and seq" "$(jq_ 'd["id"], d["seq"] > 0' <"$TMP/body")" "('vn-1', True)"
expect_eq "GET the product" "$("${CURL[@]}" "$B/api/products/vn-1" | jq_ 'd["title"], d["price"]')" "('Áo thun cổ tròn', 150000.0)"
expect_eq "the product has dominant colours" \
    "$("${CURL[@]}" "$B/api/products/vn-1" | jq_ 'len(d["dominant_colours"]) > 0')" True
"${CURL[@]}" "$B/api/products/vn-1/image" -o "$TMP/img"
cmp -s "$TMP/img" "$SUB/$TEE" && ok "GET image returns the uploaded bytes" || fail "image bytes differ"
expect_eq "POST under /api/collections/products too" \
    "$(status -F "image=@$SUB/$TEE" -F 'product={"id":"vn-2","title":"Quần jean","category":"pants"}' "$B/api/collections/products/products")" 201
expect_eq "POST of an existing id is 409" \
    "$(status -F "image=@$SUB/$TEE" -F 'product={"id":"vn-2"}' "$B/api/products")" 409
expect_eq "PUT upserts (JSON body, photo kept)" \
    "$(status -X PUT -H 'Content-Type: application/json' -d '{"title":"Quần jean xanh","category":"pants"}' "$B/api/products/vn-2")" 200
expect_eq "the upsert is visible" "$("${CURL[@]}" "$B/api/products/vn-2" | jq_ 'd["title"], len(d["image_sha256"])')" "('Quần jean xanh', 64)"
expect_eq "list pages with a cursor" \
    "$("${CURL[@]}" "$B/api/products?limit=10" | jq_ 'len(d["items"]), d["total"], d["next_cursor"] is not None')" "(10, 42, True)"
C1=$("${CURL[@]}" "$B/api/products?limit=10" | jq_ 'd["next_cursor"]')
expect_eq "second page follows" "$("${CURL[@]}" "$B/api/products?limit=10&cursor=$C1" | jq_ 'len(d["items"])')" 10

# ---- search ----
J=(-H 'Content-Type: application/json')
expect_eq "text search, accent-insensitive (ao thun -> Áo thun)" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"ao thun"}' "$B/api/search" | jq_ 'd["results"][0]["id"]')" vn-1
expect_eq "text search with prefix of the last word (quan je)" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"quan je"}' "$B/api/search" | jq_ 'd["results"][0]["id"]')" vn-2
expect_eq "why carries the text signal" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"ao thun"}' "$B/api/search" | jq_ 'sorted(d["results"][0]["why"].keys())')" "['text']"
"${CURL[@]}" -F "image=@$SUB/$SHOE" "$B/api/search" >"$TMP/s.json"
expect_eq "image search: the uploaded catalogue photo ranks first" "$(jq_ 'd["results"][0]["id"]' <"$TMP/s.json")" "$SHOE_ID"
expect_eq "image search: the next result is the same category" \
    "$(jq_ 'd["results"][1]["product"]["category"]' <"$TMP/s.json")" shoes
expect_eq "image search answers took_ms" "$(jq_ '"took_ms" in d and len(d["results"]) == 10' <"$TMP/s.json")" True
"${CURL[@]}" "$B/api/products/$SHOE_ID/similar?k=5&same_category=true" >"$TMP/s.json"
expect_eq "more like this, same category, never itself" \
    "$(jq_ 'sorted(set(r["product"]["category"] for r in d["results"])), len(d["results"]), "'"$SHOE_ID"'" in [r["id"] for r in d["results"]]' <"$TMP/s.json")" \
    "(['shoes'], 3, False)"
"${CURL[@]}" "$B/api/products/$SHOE_ID/similar?k=5" >"$TMP/s.json"
expect_eq "more like this: first neighbour is the same category" "$(jq_ 'd["results"][0]["product"]["category"]' <"$TMP/s.json")" shoes
expect_eq "filters inside the vector search (product + category dress)" \
    "$("${CURL[@]}" "${J[@]}" -d '{"product_id":"'"$SHOE_ID"'","k":20,"filters":{"category":"dress"}}' "$B/api/search" |
        jq_ 'sorted(set(r["product"]["category"] for r in d["results"])), len(d["results"])')" "(['dress'], 4)"
expect_eq "filters alone: brand, size, price, attribute" \
    "$("${CURL[@]}" "${J[@]}" -d '{"filters":{"brand":"viet tien","size":"m","price_min":100000,"price_max":200000,"attributes":{"material":"Cotton"}}}' "$B/api/search" | jq_ '[r["id"] for r in d["results"]]')" "['vn-1']"
expect_eq "price filter excludes" \
    "$("${CURL[@]}" "${J[@]}" -d '{"filters":{"price_max":1000}}' "$B/api/search" | jq_ 'len(d["results"])')" 0
COL=$("${CURL[@]}" "$B/api/products/vn-1" | jq_ 'd["dominant_colours"][0]')
expect_eq "colour filter uses the extracted colours" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"ao thun","filters":{"colour":"'"$COL"'"}}' "$B/api/search" | jq_ 'd["results"][0]["id"]')" vn-1
"${CURL[@]}" -F "image=@$SUB/$TEE" -F 'query={"text":"ao thun","k":5,"weights":{"image":1,"text":2}}' "$B/api/search" >"$TMP/s.json"
expect_eq "hybrid image + text fuses both signals" \
    "$(jq_ 'd["results"][0]["id"], sorted(d["results"][0]["why"].keys())' <"$TMP/s.json")" "('vn-1', ['image', 'text'])"
expect_eq "paging with offset" \
    "$("${CURL[@]}" "${J[@]}" -d '{"product_id":"vn-1","k":3,"offset":3}' "$B/api/search" | jq_ 'len(d["results"])')" 3
"${CURL[@]}" "$B/api/facets" >"$TMP/f.json"
expect_eq "facets count categories and colours" \
    "$(jq_ 'd["total"], d["category"]["shoes"], d["category"]["t-shirt"], sum(d["colour"].values()) > 0' <"$TMP/f.json")" "(42, 4, 5, True)"

# ---- bad inputs: 4xx, JSON error body, nothing changes, server stays up ----
before=$(count)
bad() { # DESCRIPTION WANT CURL-ARGS...
    local what=$1 want=$2
    shift 2
    local got
    got=$(status "$@")
    if [ "$got" = "$want" ] && is_json_error; then ok "$what -> $want"; else fail "$what: got $got ($(head -c 200 "$TMP/body"))"; fi
}
bad "bad JSON in product part" 400 -F "image=@$SUB/$TEE" -F 'product={"title":' "$B/api/products"
bad "unknown product field" 400 -F "image=@$SUB/$TEE" -F 'product={"colour_name":"red"}' "$B/api/products"
bad "wrong type" 400 -F "image=@$SUB/$TEE" -F 'product={"title":5}' "$B/api/products"
bad "server field on input" 400 -F "image=@$SUB/$TEE" -F 'product={"seq":5}' "$B/api/products"
bad "missing image" 400 -F 'product={"title":"x"}' "$B/api/products"
bad "not an image" 400 -F "image=@$SUB/broken.jpg" -F 'product={"title":"x"}' "$B/api/products"
head -c $((33 * 1024 * 1024)) /dev/zero >"$TMP/big.jpg"
bad "oversize image" 413 -F "image=@$TMP/big.jpg" -F 'product={"title":"x"}' "$B/api/products"
bad "not multipart" 415 -H 'Content-Type: application/json' -d '{}' "$B/api/products"
bad "unknown part" 400 -F "image=@$SUB/$TEE" -F 'extra=1' "$B/api/products"
bad "bad product id" 400 -F "image=@$SUB/$TEE" -F 'product={"id":"a b"}' "$B/api/products"
bad "search: bad JSON" 400 "${J[@]}" -d '{"text":' "$B/api/search"
bad "search: unknown field" 400 "${J[@]}" -d '{"txt":"x"}' "$B/api/search"
bad "search: wrong type" 400 "${J[@]}" -d '{"text":5}' "$B/api/search"
bad "search: k out of range" 400 "${J[@]}" -d '{"text":"x","k":0}' "$B/api/search"
bad "search: unknown filter" 400 "${J[@]}" -d '{"filters":{"material":"x"}}' "$B/api/search"
bad "search: unknown colour" 400 "${J[@]}" -d '{"filters":{"colour":"octarine"}}' "$B/api/search"
bad "search: empty query" 400 "${J[@]}" -d '{}' "$B/api/search"
bad "search: not an image" 400 -F "image=@$SUB/broken.jpg" "$B/api/search"
bad "search: unknown product" 404 "${J[@]}" -d '{"product_id":"nope"}' "$B/api/search"
bad "search: text too large" 413 "${J[@]}" -d "{\"text\":\"$(head -c 5000 /dev/zero | tr '\0' a)\"}" "$B/api/search"
bad "unknown product" 404 "$B/api/products/nope"
bad "unknown collection" 404 "$B/api/collections/nope/products/x"
bad "similar: bad k" 400 "$B/api/products/vn-1/similar?k=abc"
bad "list: bad limit" 400 "$B/api/products?limit=0"
bad "collection: bad name" 400 "${J[@]}" -d '{"name":"a b"}' "$B/api/collections"
bad "collection: unknown field" 400 "${J[@]}" -d '{"name":"x","replicas":3}' "$B/api/collections"
bad "collection: duplicate" 409 "${J[@]}" -d '{"name":"products"}' "$B/api/collections"
expect_eq "server up after bad inputs" "$(status "$B/healthz")" 200
expect_eq "nothing stored changed" "$(count)" "$before"

# ---- collections ----
expect_eq "POST /api/collections creates" \
    "$(status "${J[@]}" -d '{"name":"shop2","metric":"cosine","index":"flat"}' "$B/api/collections")" 201
expect_eq "insert into the new collection" \
    "$(status -F "image=@$SUB/$SHOE" -F 'product={"id":"x1","title":"Giày da"}' "$B/api/collections/shop2/products")" 201
expect_eq "search in the new collection" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"giay"}' "$B/api/collections/shop2/search" | jq_ '[r["id"] for r in d["results"]]')" "['x1']"
expect_eq "DELETE a product" "$(status -X DELETE "$B/api/products/vn-2")" 200
expect_eq "deleted product is gone" "$(status "$B/api/products/vn-2")" 404
expect_eq "deleted product is not searchable" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"quan jean"}' "$B/api/search" | jq_ '"vn-2" in [r["id"] for r in d["results"]]')" False
expect_eq "/metrics answers" "$(status "$B/metrics")" 200
"${CURL[@]}" "$B/api/openapi.json" >"$TMP/openapi.json"
expect_eq "every GET route in /api/openapi.json exists" "$(python3 - "$TMP/openapi.json" "$B" <<'PY'
import json, sys, urllib.request
spec = json.load(open(sys.argv[1]))
bad = []
for path, ops in spec["paths"].items():
    if "get" not in ops:
        continue
    url = sys.argv[2] + path.replace("{c}", "products").replace("{id}", "vn-1")
    try:
        urllib.request.urlopen(url, timeout=30)
    except Exception as e:
        bad.append(f"{path}: {e}")
print(len(spec["paths"]), bad)
PY
)" "16 []"

# ---- restart keeps everything; API key ----
before=$(count)
stop_server
start_server --api-key s3cret
expect_eq "restart keeps every product" "$(count)" "$before"
expect_eq "restart keeps the new collection" "$("${CURL[@]}" "$B/api/collections/shop2/products/x1" | jq_ 'd["title"]')" "Giày da"
expect_eq "restart keeps vectors (image search)" \
    "$("${CURL[@]}" -F "image=@$SUB/$SHOE" "$B/api/search" | jq_ 'd["results"][0]["id"]')" "$SHOE_ID"
bad "write without the API key" 401 -F "image=@$SUB/$TEE" -F 'product={"id":"k1"}' "$B/api/products"
expect_eq "write with the API key" "$(status -H 'X-API-Key: s3cret' -F "image=@$SUB/$TEE" -F 'product={"id":"k1"}' "$B/api/products")" 201
expect_eq "read-your-writes: searchable at once" \
    "$("${CURL[@]}" "${J[@]}" -d '{"product_id":"k1","k":1}' "$B/api/search" | jq_ 'len(d["results"])')" 1

# ---- kill -9 during writes: every acknowledged product survives ----
: >"$TMP/acked"
(
    i=0
    for p in $(tail -n +2 "$SUB/metadata.csv" | cut -d, -f1); do
        i=$((i + 1))
        code=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -H 'X-API-Key: s3cret' -F "image=@$SUB/$p" \
            -F "product={\"id\":\"kill-$i\",\"title\":\"kill $i\"}" "$B/api/products")
        [ "$code" = 201 ] && echo "kill-$i" >>"$TMP/acked"
    done
) &
BG_PID=$!
for _ in $(seq 1 300); do
    [ "$(wc -l <"$TMP/acked")" -ge 5 ] && break
    sleep 0.1
done
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=
wait "$BG_PID" 2>/dev/null
BG_PID=
acked=$(wc -l <"$TMP/acked")
echo "measure: $acked writes acknowledged before kill -9"
start_server
lost=0
for id in $(cat "$TMP/acked"); do
    n=$("${CURL[@]}" "${J[@]}" -d '{"product_id":"'"$id"'","k":1}' "$B/api/search" | jq_ 'len(d.get("results", []))' 2>/dev/null)
    [ "$n" = 1 ] || lost=$((lost + 1))
done
expect_eq "kill -9 during writes: no acknowledged product lost ($acked acked)" "$lost" 0
stop_server

# ---- kill -9 during ingest, then resume ----
DATA=$TMP/data2
"$LK" ingest --data "$DATA" --metadata "$SUB/metadata.csv" "$SUB" >"$TMP/ingest3.log" 2>&1 &
BG_PID=$!
# Kill it once a few products are committed (read from the catalogue while it writes).
for _ in $(seq 1 600); do
    n=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$DATA/catalog.db?mode=ro', uri=True).execute('select count(*) from products').fetchone()[0])" 2>/dev/null)
    [ "${n:-0}" -ge 5 ] && break
    sleep 0.1
done
kill -9 "$BG_PID"
wait "$BG_PID" 2>/dev/null
BG_PID=
timeout 300 "$LK" ingest --data "$DATA" --metadata "$SUB/metadata.csv" "$SUB" >"$TMP/ingest4.log" 2>&1
echo "measure: resumed ingest after kill -9: $(grep -E "added" "$TMP/ingest4.log" | tail -1)"
start_server
expect_eq "after kill -9 and resume every photo is in" "$(count)" 40
expect_eq "and searchable by image" "$("${CURL[@]}" -F "image=@$SUB/$SHOE" "$B/api/search" | jq_ 'd["results"][0]["id"]')" "$SHOE_ID"
stop_server

echo "$FAILS failures"
[ "$FAILS" -eq 0 ]
