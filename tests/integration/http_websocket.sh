#!/usr/bin/env bash
# WebSocket rooms over real sockets against core-example: handshake refusals (curl), then a
# C client on Debian's wslay (http_websocket.c) for relay and HTTP broadcast between clients
# in a room, ping/pong, server pings and the drop of a client that never answers, fragmented
# messages, the size cap, masking, the close handshake, and graceful shutdown (SIGTERM with
# sockets open: close 1001 to every client, exit 0). WebSockets outnumber --connection-limit:
# once the hub has a socket, MHD no longer holds it. A full hub answers the handshake, then
# closes with 1013.
source "$(dirname "$0")/http_lib.inc"
start_server --ws-max-message 1k --ws-ping-interval 1s --ws-pong-timeout 2s --idle-timeout 1s --connection-limit 8 --threads 2

C="curl -s --max-time 10"
WS=(-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13')
KEY=(-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==')

body=$($C -w ' %{http_code}' "${WS[@]}" "$BASE/ws/lobby")
check "handshake without Sec-WebSocket-Key is 400 naming it" bash -c "grep -q '\"bad_handshake\".*Sec-WebSocket-Key.* 400$' <<<'$body'"
hdrs=$($C -D - -o /dev/null -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 8' "${KEY[@]}" "$BASE/ws/lobby")
check "wrong version is 426 with Sec-WebSocket-Version: 13" bash -c "grep -q '^HTTP/1.1 426' <<<'$hdrs' && grep -qi '^Sec-WebSocket-Version: 13' <<<'$hdrs'"
body=$($C -w ' %{http_code}' "${WS[@]}" "${KEY[@]}" "$BASE/ws/a%20b")
check "bad room name is 400" bash -c "grep -q '\"bad_room\".* 400$' <<<'$body'"
body=$($C -w ' %{http_code}' "$BASE/ws/lobby")
check "plain GET on a WebSocket route is 400" bash -c "grep -q '\"bad_handshake\".* 400$' <<<'$body'"
code=$(printf '\xff\xfe' | $C -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary @- "$BASE/api/rooms/lobby/broadcast")
expect_eq "a text broadcast that is not UTF-8 is 400" "$code" 400
expect_eq "broadcast to an empty room is fine" "$($C -o /dev/null -w '%{http_code}' -d hi "$BASE/api/rooms/nobody/broadcast")" 202

"$BUILD/tests/http_websocket" "$PORT" "$SERVER_PID"
rc=$?
check "WebSocket client checks (exit $rc)" [ "$rc" = 0 ]

wait "$SERVER_PID"
rc=$?
SERVER_PID=
expect_eq "server exits 0 after SIGTERM with WebSockets open" "$rc" 0
check "upgraded connections logged with status 101" grep -q '"route":"/ws/{room}","status":101' "$LOG"
check "shutdown logged" grep -q '"msg":"stopped"' "$LOG"

# A full hub: the handshake completes, then close 1013.
start_server --ws-max-connections 1
"$BUILD/tests/http_websocket" "$PORT" "$SERVER_PID" hub-full
rc=$?
check "full-hub checks (exit $rc)" [ "$rc" = 0 ]
check "the refusal is logged" grep -q 'hub full' "$LOG"
finish
