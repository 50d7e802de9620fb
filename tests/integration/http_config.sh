#!/usr/bin/env bash
# Configuration: flags, environment variables, --help, bad values; CORS off by default and
# on when configured; /debug refused to non-loopback clients; header and read limits.
source "$(dirname "$0")/http_lib.inc"

# --help and bad values
help=$("$BUILD/core-example" --help)
check "--help exits 0" [ $? = 0 ]
check "--help names flags" grep -q -- '--body-limit' <<<"$help"
check "--help names env vars" grep -q 'CORE_BODY_LIMIT' <<<"$help"
msg=$("$BUILD/core-example" --port 99999 2>&1)
rc=$?
expect_eq "bad flag value exits 2" "$rc" 2
check "message names the flag and value" grep -q -- '--port (command line): "99999" is out of range' <<<"$msg"
msg=$(CORE_IDLE_TIMEOUT=soon "$BUILD/core-example" 2>&1)
rc=$?
expect_eq "bad env value exits 2" "$rc" 2
check "message names the env var" grep -q -- '--idle-timeout (CORE_IDLE_TIMEOUT): "soon" is not valid' <<<"$msg"
msg=$("$BUILD/core-example" --static-dir "$TMP/missing" --port 0 2>&1)
rc=$?
check "missing static dir stops start-up (exit $rc)" bash -c "[ $rc != 0 ] && grep -q 'static root' <<<'$msg'"

# Environment variables configure the server; CORS is off by default.
CORE_BODY_LIMIT=100 CORE_DEBUG=http start_server --header-limit 8k --read-timeout 1s
head -c 200 /dev/zero | tr '\0' a >"$TMP/200"
expect_eq "CORE_BODY_LIMIT applies" "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/200" "$BASE/api/echo")" 413
hdrs=$(curl -s -D - -o /dev/null -H 'Origin: https://shop.example' "$BASE/api/hello")
check "no CORS headers by default" bash -c "! grep -qi '^Access-Control' <<<'$hdrs'"
expect_eq "preflight without CORS is 405" "$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: https://shop.example' -H 'Access-Control-Request-Method: GET' "$BASE/api/hello")" 405

# Headers past the limit: MHD answers 431 (or 413 in older versions) and closes.
big=$(head -c 10000 /dev/zero | tr '\0' b)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$BASE/healthz")
check "oversized headers refused ($code)" bash -c "[ $code = 431 ] || [ $code = 413 ]"

# A body that trickles in slower than --read-timeout: the connection is closed.
exec 3<>/dev/tcp/127.0.0.1/$PORT
printf 'POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n' >&3
sleep 1.3
# The server may have closed already: the write then dies of SIGPIPE in its own subshell.
(printf '1\r\n}\r\n0\r\n\r\n' >&3) 2>/dev/null
out=$(timeout 5 cat <&3)
exec 3<&-
check "slow body cut off without an answer" bash -c "[ -z '$out' ]"
check "read timeout logged" grep -q 'read timeout' "$LOG"
check "CORE_DEBUG=http turns on the http debug lines" grep -q '"level":"debug","subsystem":"http"' "$LOG"

# /debug answers loopback only: reach it through a non-loopback address of this host.
addr=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9.]+$' | grep -v '^127\.' | head -1)
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
SERVER_PID=
start_server --bind 0.0.0.0 --cors-origins 'https://shop.example,https://admin.example'
expect_eq "/debug from loopback" "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/debug")" 200
check "no debug lines without CORE_DEBUG" bash -c "! grep -q '\"level\":\"debug\"' $LOG"
if [ -n "$addr" ]; then
    body=$(curl -s -w ' %{http_code}' "http://$addr:$PORT/debug")
    check "/debug from $addr is 403" grep -q '"code":"forbidden".* 403$' <<<"$body"
else
    echo "note: this host has no non-loopback IPv4 address; the /debug 403 case cannot be reached"
fi

# CORS when configured
pre=$(curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: https://shop.example' -H 'Access-Control-Request-Method: DELETE' -H 'Access-Control-Request-Headers: content-type' "$BASE/api/collections/c/products/1")
check "preflight 204" grep -q '^HTTP/1.1 204' <<<"$pre"
check "preflight allow-origin echoed" grep -qi '^Access-Control-Allow-Origin: https://shop.example' <<<"$pre"
check "preflight lists the route's methods" grep -qi '^Access-Control-Allow-Methods: GET, HEAD' <<<"$pre"
check "preflight allows requested headers" grep -qi '^Access-Control-Allow-Headers: content-type' <<<"$pre"
expect_eq "preflight from another origin" "$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: GET' "$BASE/api/hello")" 403
simple=$(curl -s -D - -o /dev/null -H 'Origin: https://admin.example' "$BASE/api/hello")
check "simple request gets allow-origin and Vary" bash -c "grep -qi '^Access-Control-Allow-Origin: https://admin.example' <<<'$simple' && grep -qi '^Vary: Origin' <<<'$simple'"
other=$(curl -s -D - -o /dev/null -H 'Origin: https://evil.example' "$BASE/api/hello")
check "other origins get no CORS headers" bash -c "! grep -qi '^Access-Control-Allow-Origin' <<<'$other'"
finish
