#!/usr/bin/env bash
# Group commit: writes made together share a catalogue transaction, and every write that was
# acknowledged survives kill -9. `lookalike ingest` of vector products (batches of 32) is killed
# mid-run: every id it printed is there after a restart, and a resumed ingest completes the
# catalogue without a duplicate or a failure. Then 16 connections insert at once through the API
# while the server is killed: every acknowledged insert is there, and searchable, after a restart.
. "$(dirname "$0")/lookalike_lib.inc"
LOAD=$BUILD/lookalike-load
N=3000

# present URL IDS_FILE: how many of the ids are not a product of the server (prints the count).
missing() {
    python3 - "$1" "$2" <<'PY'
import sys, urllib.request
lost = 0
for line in open(sys.argv[2]):
    try:
        urllib.request.urlopen(f"{sys.argv[1]}/api/products/{line.strip()}", timeout=30)
    except Exception:
        lost += 1
print(lost)
PY
}

# ---- kill -9 during a vector ingest ----
"$BUILD/lookalike-synth" --count $N --dim 768 >"$TMP/synth.jsonl"
DATA=$TMP/data
"$LK" ingest --data "$DATA" --metadata "$TMP/synth.jsonl" --print-ids >"$TMP/ids" 2>"$TMP/ingest1.log" &
INGEST_PID=$!
BG_PIDS+=("$INGEST_PID")
for _ in $(seq 1 1200); do
    [ "$(wc -l <"$TMP/ids")" -ge 200 ] && break
    kill -0 "$INGEST_PID" 2>/dev/null || break
    sleep 0.02
done
kill -9 "$INGEST_PID"
wait "$INGEST_PID" 2>/dev/null
ACKED=$(wc -l <"$TMP/ids")
[ "$ACKED" -ge 200 ] && [ "$ACKED" -lt $N ] && ok "ingest acknowledged $ACKED of $N products before kill -9" ||
    fail "ingest printed $ACKED ids (want 200..$((N - 1)): kill it mid-run)"
start_server "$DATA"
expect_eq "kill -9 during ingest: every acknowledged product is there" "$(missing "$B" "$TMP/ids")" 0
TOTAL=$("${CURL[@]}" "$B/api/products?limit=1" | jq_ 'd["total"]')
[ "$TOTAL" -ge "$ACKED" ] && ok "the catalogue holds $TOTAL products" || fail "total $TOTAL < acknowledged $ACKED"
stop_server
"$LK" ingest --data "$DATA" --metadata "$TMP/synth.jsonl" >"$TMP/ingest2.log" 2>&1
grep -q "$((N - TOTAL)) added, $TOTAL already in, 0 failed" "$TMP/ingest2.log" &&
    ok "the resumed ingest adds the rest ($((N - TOTAL))) and skips the $TOTAL already in" ||
    fail "resume: $(tail -1 "$TMP/ingest2.log")"

# ---- kill -9 under 16 concurrent inserters ----
start_server "$DATA"
PORT_FIXED=$PORT
"$LOAD" --url "$B" --mix insert --duration 6s --connections 16 --json --id-prefix gc \
    --insert-log "$TMP/acked" >"$TMP/insert.json" 2>"$TMP/insert.err" &
LOAD_PID=$!
BG_PIDS+=("$LOAD_PID")
for _ in $(seq 1 300); do
    [ -s "$TMP/acked" ] && [ "$(wc -l <"$TMP/acked")" -ge 100 ] && break
    sleep 0.02
done
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=
wait "$LOAD_PID"
INSERTS=$(wc -l <"$TMP/acked")
[ "$INSERTS" -ge 100 ] && ok "$INSERTS concurrent inserts acknowledged before kill -9" ||
    fail "only $INSERTS inserts acknowledged: $(tail -3 "$TMP/insert.err")"
start_server "$DATA" --port "$PORT_FIXED"
expect_eq "kill -9 under concurrent inserts: every acknowledged insert is there" "$(missing "$B" "$TMP/acked")" 0
last=$(tail -1 "$TMP/acked")
expect_eq "the last acknowledged insert is searchable" \
    "$("${CURL[@]}" "${J[@]}" -d '{"product_id":"'"$last"'","k":1}' "$B/api/search" | jq_ 'len(d["results"])')" 1
stop_server

echo "$FAILS failures"
[ "$FAILS" -eq 0 ]
