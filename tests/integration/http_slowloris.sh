#!/usr/bin/env bash
# Slowloris-style clients: a connection that sends part of a request and then goes quiet is
# closed after the idle timeout, and such clients do not stop others from being served.
source "$(dirname "$0")/http_lib.inc"
start_server --idle-timeout 1s

for i in 1 2 3 4 5; do
    exec {fd}<>/dev/tcp/127.0.0.1/$PORT
    printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' >&$fd
    eval "fd$i=$fd"
done
# Served while the slow ones hang.
expect_eq "others still served" "$(curl -s --max-time 2 "$BASE/healthz")" '{"status":"ok"}'
start=$SECONDS
closed=0
for i in 1 2 3 4 5; do
    eval "fd=\$fd$i"
    # cat ends when the server closes the connection; bounded by timeout.
    if timeout 6 cat <&$fd >/dev/null; then closed=$((closed + 1)); fi
    exec {fd}<&-
done
echo "closed $closed of 5 idle connections within $((SECONDS - start)) s"
expect_eq "idle half-requests cut off" "$closed" 5

# An idle keep-alive connection (complete request, then silence) is closed too.
exec 3<>/dev/tcp/127.0.0.1/$PORT
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&3
out=$(timeout 6 cat <&3)
rc=$?
exec 3<&-
check "idle keep-alive connection closed after its answer" bash -c "[ $rc = 0 ] && grep -q '^HTTP/1.1 200' <<<'$out'"
finish
