#!/usr/bin/env bash
# lookalike-load against a real `lookalike serve`: every request kind, the report (text and
# JSON), a server killed (-9) and restarted under load (reconnects, downtime, no acknowledged
# insert lost), no server at all, bad usage; and kill -9 during `lookalike ingest` followed by
# a restart that keeps every product ingest acknowledged.
. "$(dirname "$0")/lookalike_lib.inc"
LOAD=$BUILD/lookalike-load

SUB=$TMP/photos
photo_subset "$SUB" 3
DATA=$TMP/data
timeout 300 "$LK" ingest --data "$DATA" --metadata "$SUB/metadata.csv" "$SUB" >"$TMP/ingest.log" 2>&1
grep -q "30 added" "$TMP/ingest.log" && ok "ingest of 30 photos" || fail "ingest: $(tail -2 "$TMP/ingest.log")"
PORT_FIXED=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
start_server "$DATA" --port "$PORT_FIXED"
U=(--url "$B")

# ---- every kind, by count, JSON report ----
"$LOAD" "${U[@]}" --mix similar=3,text=2,filter=1,hybrid=1,image=1,insert=1 --photos "$SUB" --requests 300 \
    --connections 8 --json --id-prefix mix >"$TMP/mix.json" 2>"$TMP/mix.err"
expect_eq "a clean run exits 0" "$?" 0
python3 - "$TMP/mix.json" <<'PY' && ok "the report counts 300 requests, all ok, every kind, percentiles in order" || fail "report: $(head -c 600 "$TMP/mix.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["requests"] == 300 and d["ok"] == 300, d
assert sum(d["errors"].values()) == 0
kinds = d["kinds"]
assert sorted(kinds) == ["filter", "hybrid", "image", "insert", "similar", "text"], kinds
assert all(k["ok"] > 0 and k["ok"] == k["requests"] for k in kinds.values()), kinds
assert sum(k["requests"] for k in kinds.values()) == 300
for k in list(kinds.values()) + [d]:
    l = k["latency_ms"]
    assert 0 < l["p50"] <= l["p90"] <= l["p99"] <= l["max"], l
assert d["downtime_s"] < d["duration_s"] and d["connects"] == 8 and d["gaps_s"] == []
PY
INSERTED=$(jq_ 'd["kinds"]["insert"]["ok"]' <"$TMP/mix.json")
expect_eq "every acknowledged insert is in the catalogue" \
    "$("${CURL[@]}" "$B/api/products?limit=1" | jq_ 'd["total"]')" $((30 + INSERTED))
expect_eq "inserted products are searchable" \
    "$("${CURL[@]}" "${J[@]}" -d '{"product_id":"mix-1","k":1}' "$B/api/search" | jq_ 'len(d["results"])')" 1
"$LOAD" "${U[@]}" --mix similar,text --duration 1s --connections 4 >"$TMP/text.out" 2>&1
grep -q "^similar .* 0$" "$TMP/text.out" && grep -q "^downtime: longest" "$TMP/text.out" && grep -q "^errors: connect 0" "$TMP/text.out" &&
    ok "text report by duration" || fail "text report: $(cat "$TMP/text.out")"

# ---- kill -9 and restart under load: reconnects, downtime measured, no acknowledged insert lost ----
"$LOAD" "${U[@]}" --mix similar=2,text=1,insert=1 --photos "$SUB" --duration 8s --connections 6 --json \
    --id-prefix kill --insert-log "$TMP/acked" --gap 500ms >"$TMP/restart.json" 2>"$TMP/restart.err" &
LOAD_PID=$!
BG_PIDS+=("$LOAD_PID")
sleep 2
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=
KILLED_AT=$(date +%s.%N)
sleep 1.5
start_server "$DATA" --port "$PORT_FIXED"
wait "$LOAD_PID"
expect_eq "a run with failures exits 3" "$?" 3
python3 - "$TMP/restart.json" <<'PY' && ok "through the restart: connect errors, one downtime stretch over 1.5 s, successes after it" || fail "restart report: $(head -c 800 "$TMP/restart.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["errors"]["connect"] > 0, d["errors"]
assert d["ok"] > 0 and d["requests"] == d["ok"] + sum(d["errors"].values())
assert 1.5 <= d["downtime_s"] < d["duration_s"], d["downtime_s"]
start, end = d["downtime_at_s"]
assert start > 0.5 and end < d["duration_s"], (start, end)
assert len(d["gaps_s"]) == 1 and d["gaps_s"][0] == [start, end], d["gaps_s"]
assert d["last_ok_s"] > end and d["connects"] > 6
PY
ACKED=$(wc -l <"$TMP/acked")
lost=$(python3 - "$B" "$TMP/acked" <<'PY'
import sys, urllib.request
lost = 0
for line in open(sys.argv[2]):
    try:
        urllib.request.urlopen(f"{sys.argv[1]}/api/products/{line.strip()}", timeout=30)
    except Exception:
        lost += 1
print(lost)
PY
)
[ "$ACKED" -gt 0 ] && ok "$ACKED inserts acknowledged around the kill" || fail "no insert was acknowledged"
expect_eq "kill -9 under load: no acknowledged insert lost" "$lost" 0

# ---- no server: every request is a connect error and the whole run is downtime ----
stop_server
"$LOAD" "${U[@]}" --mix text --duration 1s --connections 2 --json --sample 1 >"$TMP/down.json" 2>"$TMP/down.err"
rc=$?
expect_eq "a server that is not there cannot be sampled: exit 1 with a message" \
    "$rc:$(grep -c 'cannot connect' "$TMP/down.err")" "1:1"

# ---- bad usage ----
start_server "$DATA" --port "$PORT_FIXED"
"$LOAD" "${U[@]}" --mix bogus=1 --requests 1 2>"$TMP/e1"
expect_eq "unknown kind: exit 2" "$?:$(grep -c 'unknown kind' "$TMP/e1")" "2:1"
"$LOAD" "${U[@]}" --mix image --requests 1 2>"$TMP/e2"
expect_eq "image searches without photos: exit 1" "$?:$(grep -c 'need --photos' "$TMP/e2")" "1:1"
"$LOAD" "${U[@]}" --collection nope --requests 1 2>"$TMP/e3"
expect_eq "unknown collection: exit 1" "$?:$(grep -c 'no collection' "$TMP/e3")" "1:1"
"$LOAD" --url ftp://x --requests 1 2>"$TMP/e4"
expect_eq "bad URL: exit 2" "$?" 2
LOOKALIKE_LOAD_MIX=text LOOKALIKE_LOAD_REQUESTS=5 "$LOAD" "${U[@]}" --json >"$TMP/env.json"
expect_eq "flags come from the environment too" "$(jq_ '(d["requests"], list(d["kinds"]))' <"$TMP/env.json")" "(5, ['text'])"
"$LOAD" --help | grep -q -- "--insert-log" && ok "--help lists the flags" || fail "--help"
stop_server

# ---- kill -9 during ingest: every id ingest acknowledged survives ----
DATA3=$TMP/data3
"$LK" ingest --data "$DATA3" --metadata "$SUB/metadata.csv" --print-ids "$SUB" >"$TMP/ingest-ids" 2>"$TMP/ingest3.log" &
INGEST_PID=$!
BG_PIDS+=("$INGEST_PID")
for _ in $(seq 1 600); do
    [ "$(wc -l <"$TMP/ingest-ids")" -ge 5 ] && break
    kill -0 "$INGEST_PID" 2>/dev/null || break
    sleep 0.05
done
kill -9 "$INGEST_PID"
wait "$INGEST_PID" 2>/dev/null
N_IDS=$(wc -l <"$TMP/ingest-ids")
start_server "$DATA3"
missing=0
while read -r id; do
    n=$("${CURL[@]}" "${J[@]}" -d '{"product_id":"'"$id"'","k":1}' "$B/api/search" | jq_ 'len(d.get("results", []))' 2>/dev/null)
    [ "$n" = 1 ] || missing=$((missing + 1))
done <"$TMP/ingest-ids"
[ "$N_IDS" -ge 5 ] && ok "ingest acknowledged $N_IDS products before kill -9" || fail "ingest printed $N_IDS ids"
expect_eq "kill -9 during ingest: every acknowledged product is there and searchable" "$missing" 0
stop_server

echo "$FAILS failures"
[ "$FAILS" -eq 0 ]
