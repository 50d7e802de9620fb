#!/usr/bin/env bash
# lookalike: products with their own vectors (API, bad inputs, more like this, upsert), and
# `lookalike export` -> `lookalike ingest` round trip (photos and vectors), plus a restart with
# the vector index gone (every vector read back from the catalogue, photos and given ones).
. "$(dirname "$0")/lookalike_lib.inc"

SUB=$TMP/photos
photo_subset "$SUB" 2
DATA=$TMP/data
timeout 300 "$LK" ingest --data "$DATA" --metadata "$SUB/metadata.csv" "$SUB" >"$TMP/ingest.log" 2>&1
grep -q "20 added" "$TMP/ingest.log" && ok "ingest of 20 photos" || fail "ingest: $(tail -2 "$TMP/ingest.log")"

start_server "$DATA"
DIM=$("${CURL[@]}" "$B/api/collections" | jq_ '[c["dim"] for c in d["collections"] if c["name"] == "products"][0]')
# vec SEED SCALE: a DIM-number JSON array near a fixed direction (SCALE: how far from it).
vec() { python3 -c "import json,random; random.seed(7); b=[random.gauss(0,1) for _ in range($DIM)]; random.seed($1); print(json.dumps([x + random.gauss(0, $2) for x in b]))"; }
post_vec() { # ID SEED SCALE [EXTRA-JSON-FIELDS]
    status -F "product={\"id\":\"$1\",\"title\":\"vector $1\",\"category\":\"synthetic\"${4:+,$4},\"vector\":$(vec "$2" "$3")}" "$B/api/products"
}
expect_eq "insert with a vector and no photo" "$(post_vec v1 1 0.1)" 201
expect_eq "insert a near vector" "$(post_vec v2 2 0.2)" 201
expect_eq "insert a far vector" "$(post_vec v3 3 3.0)" 201
SHOE=$(grep ',shoes,' "$SUB/metadata.csv" | head -1 | cut -d, -f1)
expect_eq "insert with a photo and a vector" \
    "$(status -F "image=@$SUB/$SHOE" -F "product={\"id\":\"v4\",\"title\":\"shoe with vector\",\"vector\":$(vec 4 0.3)}" "$B/api/products")" 201
"${CURL[@]}" "$B/api/products/v1/similar?k=3" >"$TMP/s.json"
expect_eq "more like this by a given vector: nearest first" "$(jq_ '[r["id"] for r in d["results"]][:2]' <"$TMP/s.json")" "['v2', 'v4']"
expect_eq "the vector is not in product JSON" "$("${CURL[@]}" "$B/api/products/v1" | jq_ '"vector" in d')" False
expect_eq "a product without a photo has no image" "$(status "$B/api/products/v1/image")" 404
expect_eq "photo and vector: the photo is kept" "$(status "$B/api/products/v4/image")" 200
expect_eq "photo and vector: colours come from the photo" "$("${CURL[@]}" "$B/api/products/v4" | jq_ 'len(d["dominant_colours"]) > 0')" True

before=$("${CURL[@]}" "$B/api/products?limit=1" | jq_ 'd["total"]')
bad() { # DESCRIPTION WANT-STATUS WANT-CODE CURL-ARGS...
    local what=$1 want=$2 code=$3 got
    shift 3
    got=$(status "$@")
    if [ "$got" = "$want" ] && [ "$(jq_ 'd["error"]["code"]' <"$TMP/body")" = "$code" ]; then ok "$what -> $want $code"; else fail "$what: got $got $(head -c 200 "$TMP/body")"; fi
}
bad "vector of the wrong length" 400 invalid -F 'product={"id":"b1","vector":[1,2,3]}' "$B/api/products"
bad "vector of zeros" 400 invalid -F "product={\"id\":\"b2\",\"vector\":$(python3 -c "print([0]*$DIM)")}" "$B/api/products"
bad "vector with a string" 400 invalid -F 'product={"id":"b3","vector":["x"]}' "$B/api/products"
bad "vector beyond float range" 400 invalid -F 'product={"id":"b4","vector":[1e39]}' "$B/api/products"
bad "empty vector" 400 invalid -F 'product={"id":"b5","vector":[]}' "$B/api/products"
bad "vector not an array" 400 invalid -F 'product={"id":"b6","vector":{"a":1}}' "$B/api/products"
bad "neither photo nor vector" 400 missing_image -F 'product={"id":"b7"}' "$B/api/products"
bad "vector too large" 413 too_large -F "product={\"id\":\"b8\",\"vector\":$(python3 -c "print([1]*5000)")}" "$B/api/products"
expect_eq "nothing stored changed" "$("${CURL[@]}" "$B/api/products?limit=1" | jq_ 'd["total"]')" "$before"

expect_eq "upsert without a vector keeps it" \
    "$(status -X PUT "${J[@]}" -d '{"title":"vector one, renamed","category":"synthetic"}' "$B/api/products/v1")" 200
expect_eq "more like this after the upsert" \
    "$("${CURL[@]}" "$B/api/products/v1/similar?k=2" | jq_ '[r["id"] for r in d["results"]]')" "['v2', 'v4']"
expect_eq "upsert with a new vector" \
    "$(status -X PUT "${J[@]}" -d "{\"title\":\"v3 moved\",\"vector\":$(vec 3 0.05)}" "$B/api/products/v3")" 200
expect_eq "more like this follows the new vector" \
    "$("${CURL[@]}" "$B/api/products/v3/similar?k=1" | jq_ '[r["id"] for r in d["results"]]')" "['v1']"
expect_eq "a text search finds vector products" \
    "$("${CURL[@]}" "${J[@]}" -d '{"text":"renamed"}' "$B/api/search" | jq_ '[r["id"] for r in d["results"]]')" "['v1']"
"${CURL[@]}" "$B/api/products/v1/similar?k=3" >"$TMP/before.json"

# ---- export (beside the running server), then ingest into a new data directory ----
"$LK" export --data "$DATA" --out "$TMP/export.jsonl" --images "$TMP/images" --vectors all 2>"$TMP/export.log"
expect_eq "export runs beside a running server" "$?" 0
"$LK" export --data "$DATA" --out "$TMP/export-auto.jsonl" 2>/dev/null
expect_eq "by default only vectors that were given without a photo are written" \
    "$(python3 -c "import json; print(sorted(d['id'] for d in map(json.loads, open('$TMP/export-auto.jsonl')) if 'vector' in d))")" \
    "['v1', 'v2', 'v3']"
TOTAL=$("${CURL[@]}" "$B/api/products?limit=1" | jq_ 'd["total"]')
expect_eq "export writes one line per product" "$(wc -l <"$TMP/export.jsonl")" "$TOTAL"
# 21 products have a photo; v4's is the same bytes as a catalogue shoe, so one file is shared.
expect_eq "export writes each photo once" "$(ls "$TMP/images" | wc -l)" 20
expect_eq "exported vectors are whole" \
    "$(python3 -c "import json; print(sorted((d['id'], len(d.get('vector', []))) for d in map(json.loads, open('$TMP/export.jsonl')) if d['id'].startswith('v')))")" \
    "[('v1', $DIM), ('v2', $DIM), ('v3', $DIM), ('v4', $DIM)]"
"$LK" export --data "$DATA" --collection nope >/dev/null 2>"$TMP/err"
expect_eq "export of an unknown collection fails" "$?" 1
stop_server

DATA2=$TMP/data2
timeout 300 "$LK" ingest --data "$DATA2" --metadata "$TMP/export.jsonl" "$TMP/images" >"$TMP/ingest2.log" 2>&1
grep -q "$TOTAL added, 0 already in, 0 failed" "$TMP/ingest2.log" && ok "re-ingest adds every product" ||
    fail "re-ingest: $(tail -3 "$TMP/ingest2.log")"
"$LK" export --data "$DATA2" --out "$TMP/export2.jsonl" --vectors all 2>/dev/null
python3 - "$TMP/export.jsonl" "$TMP/export2.jsonl" <<'PY' && ok "round trip: the same products, fields, photos and vectors" || fail "round trip differs"
import json, sys
a = {d["id"]: d for d in map(json.loads, open(sys.argv[1]))}
b = {d["id"]: d for d in map(json.loads, open(sys.argv[2]))}
for d in a.values():
    d.pop("path", None)
sys.exit(0 if a == b else 1)
PY
timeout 120 "$LK" ingest --data "$DATA2" --metadata "$TMP/export.jsonl" >"$TMP/ingest3.log" 2>&1
grep -q "0 added, $TOTAL already in, 0 failed" "$TMP/ingest3.log" &&
    ok "ingest without FOLDER resumes (everything already in)" || fail "ingest without folder: $(tail -3 "$TMP/ingest3.log")"
printf '{"id":"j1","vector":[1]}\nnot json\n{"id":"j2"}\n' >"$TMP/bad.jsonl"
timeout 120 "$LK" ingest --data "$DATA2" --metadata "$TMP/bad.jsonl" >"$TMP/ingest4.log" 2>&1
expect_eq "bad JSON lines are reported and skipped" "$?:$(grep -c skipped "$TMP/ingest4.log")" "0:3"

# ---- the vector index lost: every vector comes back from the catalogue ----
rm -rf "$DATA2/vindex"
start_server "$DATA2"
# From the node snapshot the ingest left, or from the catalogue: either way every vector is read.
grep -Eq "loaded $TOTAL products .*\($TOTAL vectors read from the catalogue, 0 photos embedded again" "$LOG" &&
    ok "every vector read back from the catalogue at start" ||
    fail "start-up: $(grep loaded "$LOG")"
"${CURL[@]}" "$B/api/products/v1/similar?k=3" >"$TMP/after.json"
expect_eq "more like this is the same after the round trip" \
    "$(jq_ '[r["id"] for r in d["results"]]' <"$TMP/after.json")" "$(jq_ '[r["id"] for r in d["results"]]' <"$TMP/before.json")"
expect_eq "image search after the round trip" \
    "$("${CURL[@]}" -F "image=@$SUB/$SHOE" "$B/api/search" | jq_ 'd["results"][0]["product"]["category"]')" shoes
stop_server

echo "$FAILS failures"
[ "$FAILS" -eq 0 ]
