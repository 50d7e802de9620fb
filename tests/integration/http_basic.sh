#!/usr/bin/env bash
# Routing, JSON, multipart, static files, request ids, keep-alive, pipelining, 413, 400,
# metrics, /debug and the upgrade hook, over real sockets against core-example.
source "$(dirname "$0")/http_lib.inc"

mkdir -p "$TMP/www/sub" "$TMP/outside"
printf 'hello static\n' >"$TMP/www/hello.txt"
printf '<p>index</p>\n' >"$TMP/www/sub/index.html"
printf 'secret\n' >"$TMP/outside/secret.txt"
ln -s "$TMP/outside/secret.txt" "$TMP/www/escape.txt"
ln -s hello.txt "$TMP/www/inside.txt"
start_server --static-dir "$TMP/www" --body-limit 4k

C="curl -s --max-time 10"

# request id: taken from the client, or generated, and echoed
check "request id echoed" bash -c "$C -D - -o /dev/null -H 'X-Request-Id: abc-123' $BASE/healthz | grep -qi '^X-Request-Id: abc-123'"
check "request id generated" bash -c "$C -D - -o /dev/null $BASE/healthz | grep -Eqi '^X-Request-Id: [0-9a-f]{16}'"
check "request id in access log" grep -q '"request_id":"abc-123"' "$LOG"

# routing
check "path params decoded" bash -c "[ \"\$($C $BASE/api/collections/a%2Fb/products/42)\" = '{\"collection\":\"a/b\",\"id\":\"42\"}' ]"
body=$($C -w ' %{http_code}' $BASE/no/such/route)
check "404 is JSON" bash -c "[ '$body' = '{\"error\":{\"code\":\"not_found\",\"message\":\"no route for this path\"}} 404' ]"
hdrs=$($C -D - -o /dev/null -X DELETE $BASE/api/hello)
check "405 with Allow" bash -c "grep -q '^HTTP/1.1 405' <<<'$hdrs' && grep -qi '^Allow: GET, HEAD' <<<'$hdrs'"
check "dot segments refused" bash -c "[ \"\$($C -o /dev/null -w '%{http_code}' --path-as-is $BASE/api/../healthz)\" = 400 ]"

# JSON helpers
check "JSON echo" bash -c "[ \"\$($C -H 'Content-Type: application/json' -d '{\"a\":[1,2]}' $BASE/api/echo)\" = '{\"echo\":{\"a\":[1,2]}}' ]"
bad=$($C -w ' %{http_code}' -H 'Content-Type: application/json' -d '{"a":1,}' $BASE/api/echo)
check "bad JSON is 400 naming the spot" bash -c "grep -q 'bad_json' <<<'$bad' && grep -q 'column 8' <<<'$bad' && grep -q ' 400$' <<<'$bad'"
check "wrong Content-Type is 415" bash -c "[ \"\$($C -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' -d '{}' $BASE/api/echo)\" = 415 ]"

# body limits: Content-Length past the limit, and a chunked body that grows past it
head -c 5000 /dev/zero | tr '\0' 'x' >"$TMP/big"
check "413 from Content-Length" bash -c "[ \"\$($C -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @$TMP/big $BASE/api/echo)\" = 413 ]"
check "413 while streaming chunked" bash -c "[ \"\$($C -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary @$TMP/big $BASE/api/echo)\" = 413 ]"
check "server alive after 413" bash -c "[ \"\$($C $BASE/healthz)\" = '{\"status\":\"ok\"}' ]"

# multipart
printf 'file body\n' >"$TMP/up.txt"
up=$($C -F title=Shoes -F "img=@$TMP/up.txt;type=text/plain" $BASE/api/upload)
expect_eq "multipart echo" "$up" '{"parts":[{"name":"title","content_type":"text/plain","size":5,"text":"Shoes"},{"name":"img","content_type":"text/plain","size":10,"filename":"up.txt","text":"file body\n"}]}'
check "multipart without boundary is 400" bash -c "[ \"\$($C -o /dev/null -w '%{http_code}' -H 'Content-Type: multipart/form-data' -d x $BASE/api/upload)\" = 400 ]"

# static files
hdrs=$($C -D - -o "$TMP/got" $BASE/static/hello.txt)
etag=$(grep -i '^ETag:' <<<"$hdrs" | cut -d' ' -f2 | tr -d '\r')
check "static 200 with type, ETag, Cache-Control" bash -c "grep -q '^HTTP/1.1 200' <<<'$hdrs' && grep -qi '^Content-Type: text/plain' <<<'$hdrs' && [ -n '$etag' ] && grep -qi '^Cache-Control: public' <<<'$hdrs' && cmp -s $TMP/got $TMP/www/hello.txt"
check "If-None-Match gives 304" bash -c "[ \"\$($C -o /dev/null -w '%{http_code}' -H 'If-None-Match: $etag' $BASE/static/hello.txt)\" = 304 ]"
check "stale ETag gives 200" bash -c "[ \"\$($C -o /dev/null -w '%{http_code}' -H 'If-None-Match: \"nope\"' $BASE/static/hello.txt)\" = 200 ]"
check "directory serves index.html" bash -c "[ \"\$($C $BASE/static/sub)\" = '<p>index</p>' ]"
check "symlink inside root served" bash -c "[ \"\$($C $BASE/static/inside.txt)\" = 'hello static' ]"
for p in '../outside/secret.txt' '%2e%2e/outside/secret.txt' '..%2Foutside%2Fsecret.txt' 'escape.txt' 'sub/..%2F..%2Foutside/secret.txt'; do
    code=$($C -o "$TMP/t" -w '%{http_code}' --path-as-is "$BASE/static/$p")
    check "traversal refused: $p ($code)" bash -c "[ '$code' = 400 ] || [ '$code' = 404 ]; ! grep -q secret $TMP/t"
done

# keep-alive: curl reuses one connection for two URLs
ka=$(curl -sv --max-time 10 -o /dev/null -o /dev/null $BASE/healthz $BASE/api/hello 2>&1)
check "keep-alive reuses the connection" grep -q 'Re-using existing connection' <<<"$ka"

# pipelining: three requests in one write, three answers in order
exec 3<>/dev/tcp/127.0.0.1/$PORT
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /api/collections/c/products/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /api/collections/c/products/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
pipelined=$(timeout 5 cat <&3)
exec 3<&-
expect_eq "pipelined requests all answered" "$(grep -o 'HTTP/1.1 200' <<<"$pipelined" | wc -l)" 3
expect_eq "pipelined answers in order" "$(grep -o '"id":"[0-9]"' <<<"$pipelined" | tr -d '\n')" '"id":"1""id":"2"'

# malformed request line
exec 3<>/dev/tcp/127.0.0.1/$PORT
printf 'THIS IS NOT HTTP\r\n\r\n' >&3
resp=$(timeout 5 cat <&3)
exec 3<&-
check "malformed request line gets 400" grep -q '^HTTP/1.1 400' <<<"$resp"

# the upgrade hook: raw echo after 101
exec 3<>/dev/tcp/127.0.0.1/$PORT
printf 'GET /api/upgrade-echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-echo\r\n\r\nearly-bytes|' >&3
sleep 0.3
printf 'ping-pong' >&3
echoed=$(timeout 2 cat <&3)
exec 3<&-
check "upgrade answers 101" grep -q '^HTTP/1.1 101' <<<"$echoed"
check "upgraded socket echoes bytes sent with and after the headers" grep -q 'early-bytes|ping-pong' <<<"$echoed"
check "upgrade without the header is 426" bash -c "[ \"\$($C -o /dev/null -w '%{http_code}' $BASE/api/upgrade-echo)\" = 426 ]"

# metrics and debug
m=$($C $BASE/metrics)
check "metrics: per-route counts by status" grep -q 'http_requests_total{route="/api/collections/{c}/products/{id}",method="GET",status="200"} [0-9]' <<<"$m"
check "metrics: 404s counted as unmatched" grep -q 'http_requests_total{route="unmatched",method="GET",status="404"}' <<<"$m"
check "metrics: latency histogram" grep -q 'http_request_duration_seconds_bucket{route="/healthz",le="+Inf"}' <<<"$m"
check "metrics: process figures" bash -c "grep -q '^process_resident_memory_bytes [1-9]' <<<'$m' && grep -q '^process_heap_bytes [0-9]' <<<'$m' && grep -q '^process_open_fds [1-9]' <<<'$m' && grep -q '^process_threads [1-9]' <<<'$m' && grep -q '^process_uptime_seconds' <<<'$m'"
dbg=$($C $BASE/debug)
check "/debug has config, build, latency" bash -c "grep -q '\"config\":{' <<<'$dbg' && grep -q '\"libmicrohttpd\":\"0.9' <<<'$dbg' && grep -q '\"p99_ms\"' <<<'$dbg'"
expect_eq "/readyz ready" "$($C $BASE/readyz)" '{"status":"ready","checks":{"static_dir":"ok"}}'
mv "$TMP/www" "$TMP/www-gone"
expect_eq "/readyz 503 naming the failing check" "$($C -w ' %{http_code}' $BASE/readyz)" "{\"status\":\"not ready\",\"checks\":{\"static_dir\":\"static directory $TMP/www: No such file or directory\"}} 503"
mv "$TMP/www-gone" "$TMP/www"
check "access log is JSON lines" bash -c "grep '\"msg\":\"request\"' $LOG | head -50 | while read -r l; do echo \"\$l\" | /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert {\"time\",\"level\",\"request_id\",\"method\",\"route\",\"status\",\"duration_ms\",\"bytes\"} <= d.keys()' || exit 1; done"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
rc=$?
SERVER_PID=
check "SIGTERM exits 0 (got $rc)" [ "$rc" = 0 ]
finish
