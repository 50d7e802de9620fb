#!/usr/bin/env bash
# Node membership (src/cluster) against a real etcd (Debian's etcd-server, one member on a free
# loopback port): a registered key is listed; a clean stop deletes it at once; after kill -9 it
# stays until its lease expires (ttl) and then goes; when etcd loses the lease (restarted on an
# empty data directory) the node registers again by itself; a dead endpoint before a live one
# in the list is skipped. The directory that nodes read (cluster_directory_list) lists live
# registrations only, drops a killed member, finds a new one, and answers its last list, marked
# stale, while etcd is down. Prints how long a killed node stayed listed, how long a new one
# took to be found, and how long re-registration took.
set -uo pipefail
BUILD=${BUILD:-build}
HELPER=$BUILD/tests/etcd_member
TMP=$(mktemp -d)
ETCD_PID=
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}" $ETCD_PID; do
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
FAILS=0
fail() {
    echo "FAIL: $*"
    FAILS=$((FAILS + 1))
}
ok() { echo "ok: $*"; }
measure() { echo "measure: $1 = $2 $3"; }
wait_until() { # SECONDS COMMAND...
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

used=$(ss -Htan | awk '{print $4}' | sed 's/.*://' | sort -un)
for _ in $(seq 1 50); do
    PORT=$((RANDOM % 10000 + 20000))
    grep -qx "$PORT" <<<"$used" || grep -qx $((PORT + 1)) <<<"$used" || break
done
EP=http://127.0.0.1:$PORT
start_etcd() { # DATA_DIR
    etcd --name m --data-dir "$1" --listen-client-urls "$EP" --advertise-client-urls "$EP" \
        --listen-peer-urls "http://127.0.0.1:$((PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((PORT + 1))" \
        --initial-cluster "m=http://127.0.0.1:$((PORT + 1))" --log-level warn >>"$TMP/etcd.log" 2>&1 &
    ETCD_PID=$!
    wait_until 30 curl -fs -o /dev/null "$EP/health" || {
        cat "$TMP/etcd.log"
        exit 1
    }
}
start_etcd "$TMP/etcd-1"

listed() { # KEY: the key is listed with a lease
    "$HELPER" list "$EP" /lookalike/nodes/ | grep "^$1 " >/dev/null
}
not_listed() { ! listed "$1"; }
N=0
register() { # KEY VALUE TTL [ENDPOINTS]: starts a member in the background; sets M (pid), OUT
    N=$((N + 1))
    OUT=$TMP/member-$N.out
    "$HELPER" register "${4:-$EP}" "$1" "$2" "$3" >"$OUT" 2>"$TMP/member-$N.log" &
    M=$!
    PIDS+=("$M")
    wait_until 10 grep -q '^registered' "$OUT" || fail "$1 did not register: $(cat "$TMP/member-$N.log")"
}

# ---- register, list, leave cleanly ----
register /lookalike/nodes/node1 '{"url":"http://127.0.0.1:9001"}' 3
expect=$("$HELPER" list "$EP" /lookalike/nodes/)
[ "$expect" = '/lookalike/nodes/node1 {"url":"http://127.0.0.1:9001"}' ] && ok "a registered node is listed with its value" ||
    fail "listing: [$expect]"
sleep 1.5 # past one renewal (ttl/3)
listed /lookalike/nodes/node1 && ok "still listed after a renewal" || fail "gone after a renewal"
kill -TERM "$M"
wait "$M"
grep -q '^left' "$OUT" && ok "the member left on SIGTERM" || fail "no clean leave"
not_listed /lookalike/nodes/node1 && ok "a node that leaves cleanly is unlisted at once" || fail "still listed after leaving"

# ---- kill -9: listed until the lease expires ----
register /lookalike/nodes/node2 x 3
kill -9 "$M"
killed_at=$EPOCHREALTIME
wait "$M" 2>/dev/null
listed /lookalike/nodes/node2 && ok "a killed node is still listed right after the kill" ||
    fail "a killed node vanished at once (nothing but the lease should remove it)"
if wait_until 10 not_listed /lookalike/nodes/node2; then
    gone=$(awk -v a="$killed_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    ok "a killed node drops out when its lease expires"
    measure killed_node_listed_seconds "$gone" s
    awk -v g="$gone" 'BEGIN { exit !(g <= 3 + 1.5) }' && ok "within ttl (3 s) + 1.5 s" || fail "listed for $gone s with ttl 3"
else
    fail "a killed node is still listed 10 s later"
fi

# ---- the directory (what other nodes read): who is listed, found and dropped ----
WATCH=$TMP/watch.out
"$HELPER" watch "$EP" /lookalike/dir/ >"$WATCH" 2>"$TMP/watch.log" &
PIDS+=($!)
watch_shows() { [ "$(tail -1 "$WATCH")" = "$1" ]; }
register /lookalike/dir/a '{"url":"http://127.0.0.1:9101","shards":"0,1"}' 3
register /lookalike/dir/b '{"url":"http://127.0.0.1:9102"}' 3
B=$M
ETCDCTL_API=3 etcdctl --endpoints "$EP" put /lookalike/dir/nolease '{"url":"http://127.0.0.1:9"}' >/dev/null
ETCDCTL_API=3 etcdctl --endpoints "$EP" put /lookalike/dir/junk 'not json' >/dev/null
wait_until 5 watch_shows "fresh a=http://127.0.0.1:9101 b=http://127.0.0.1:9102" &&
    ok "the directory lists both members, and neither a key without a lease nor a value without a url" ||
    fail "directory: [$(tail -1 "$WATCH")]"
kill -9 "$B"
killed_at=$EPOCHREALTIME
wait "$B" 2>/dev/null
if wait_until 10 watch_shows "fresh a=http://127.0.0.1:9101"; then
    measure directory_dead_member_dropped_seconds "$(awk -v a="$killed_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" s
    ok "a killed member drops out of the directory"
else
    fail "the killed member is still in the directory: [$(tail -1 "$WATCH")]"
fi
started_at=$EPOCHREALTIME
register /lookalike/dir/c '{"url":"http://127.0.0.1:9103"}' 3
if wait_until 5 watch_shows "fresh a=http://127.0.0.1:9101 c=http://127.0.0.1:9103"; then
    measure directory_new_member_found_seconds "$(awk -v a="$started_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" s
    ok "a new member is found"
else
    fail "the new member was not found: [$(tail -1 "$WATCH")]"
fi

# ---- etcd loses the lease: the node registers again by itself ----
register /lookalike/nodes/node3 y 3 "http://127.0.0.1:1,$EP"
ok "a dead endpoint before a live one is skipped"
kill -9 "$ETCD_PID"
wait "$ETCD_PID" 2>/dev/null
wait_until 10 grep -q '^unregistered' "$OUT" && ok "the member notices etcd is gone" || fail "the member still claims to be registered"
wait_until 5 watch_shows "stale a=http://127.0.0.1:9101 c=http://127.0.0.1:9103" &&
    ok "with etcd down the directory answers its last list, marked stale" ||
    fail "directory during the outage: [$(tail -1 "$WATCH")]"
sleep 4 # longer than the leases' ttl: the last list is kept however long the outage lasts
watch_shows "stale a=http://127.0.0.1:9101 c=http://127.0.0.1:9103" && ok "still the last list after the ttl" ||
    fail "directory after the ttl: [$(tail -1 "$WATCH")]"
restarted_at=$EPOCHREALTIME
start_etcd "$TMP/etcd-2"
if wait_until 15 listed /lookalike/nodes/node3; then
    measure reregister_after_etcd_restart_seconds "$(awk -v a="$restarted_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" s
    ok "the member registered again on the new etcd"
else
    fail "the member did not register again: $(tail -3 "$TMP/member-$N.log")"
fi
kill -0 "$M" 2>/dev/null && ok "the member process lived through etcd's outage" || fail "the member process died"
wait_until 15 watch_shows "fresh a=http://127.0.0.1:9101 c=http://127.0.0.1:9103" &&
    ok "the directory reads etcd again, with the members registered again" ||
    fail "directory after etcd's restart: [$(tail -1 "$WATCH")]"
kill -TERM "$M"
wait "$M"
not_listed /lookalike/nodes/node3 || fail "node3 still listed after leaving"

if [ "$FAILS" -gt 0 ]; then
    echo "--- etcd log"
    tail -20 "$TMP/etcd.log"
    echo "$FAILS check(s) failed"
    exit 1
fi
echo "all checks passed"
