#!/usr/bin/env bash
# The worker pool sheds load: with 1 worker and a queue of 1, a burst of slow requests gets
# 503 with Retry-After for everything past the two it can hold, while the HTTP threads keep
# answering other requests quickly.
source "$(dirname "$0")/http_lib.inc"
start_server --pool-threads 1 --pool-queue 1 --retry-after 7

clients=()
start_client() {
    curl -s --max-time 30 -D "$TMP/h$1" -o "$TMP/b$1" "$BASE/api/sleep?ms=3000" &
    clients+=($!)
}
# The first request must be running (taken off the queue by the one worker) before the burst,
# or the burst could find the queue still holding it.
start_client 1
for _ in $(seq 1 100); do
    curl -s "$BASE/debug" | grep -q '"in_flight":2,.*"pool_queued":0' && break
    sleep 0.05
done
for i in 2 3 4 5 6; do
    start_client $i
done
sleep 0.5
# While the pool is busy, an event-loop route still answers at once.
hz=$(curl -s --max-time 1 "$BASE/healthz")
expect_eq "healthz answers while the pool is saturated" "$hz" '{"status":"ok"}'
wait "${clients[@]}"
n200=$(cat "$TMP"/h? | grep -c '^HTTP/1.1 200')
n503=$(cat "$TMP"/h? | grep -c '^HTTP/1.1 503')
echo "200: $n200, 503: $n503"
expect_eq "two requests served (one running, one queued)" "$n200" 2
expect_eq "the rest refused with 503" "$n503" 4
check "503 carries Retry-After" grep -qi '^Retry-After: 7' $(grep -l '^HTTP/1.1 503' "$TMP"/h?)
check "503 body names the problem" grep -q '"code":"overloaded"' $(grep -l '"code"' "$TMP"/b?)
m=$(curl -s "$BASE/metrics")
check "rejections counted" grep -q '^worker_pool_rejected_total 4$' <<<"$m"
finish
