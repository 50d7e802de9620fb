#!/usr/bin/env bash
# Query nodes behind Nginx, sharded (2 shards of the catalogue by category, 2 replicas each:
# node1 holds 0,1, node2 0, node3 1), finding each other in etcd: while two clients read through
# Nginx without pause (similar products, text search, listing) and lookalike-load runs a mix of
# searches and inserts through it, `deploy/cluster kill node2` kills -9 a node twice in a row.
# No read may fail (Nginx retries it on another node) and every answer must be whole (node1
# still holds shard 0), the supervisor must restart the node each time (the second time after a
# longer backoff), and Nginx must send it traffic again; every insert acknowledged must be stored
# once. Then, with node3 stopped and the readiness loop (lbcheck) stopped too, each request class
# must be handled as nginx.conf says: a read is retried elsewhere, a POST write is passed on only
# because it never reached node3, and a DELETE is tried once (502); with lbcheck back, node3 is
# taken out of the upstream and nothing is sent to it. Every node keeps its key in etcd while it
# runs and deletes it on a clean stop. Prints the restart times, failed reads and writes, and
# lookalike-load's downtime.
source "$(dirname "$0")/cluster_lib.inc"

cluster_up NODES=3
node_port() { echo $((BASE_PORT + 39 + $1)); }
ready() { # I: node I answers /readyz
    curl -fs --max-time 2 -o /dev/null "http://127.0.0.1:$(node_port "$1")/readyz"
}
restarts() { # I
    cat "$CLUSTER_DIR/run/node$1.restarts"
}
ACCESS=$CLUSTER_DIR/logs/nginx-access.log
in_etcd() { # I: node I's membership key exists in etcd
    ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$BASE_PORT" get --keys-only "/lookalike/nodes/node$1" | grep . >/dev/null
}
in_etcd_all() { in_etcd 1 && in_etcd 2 && in_etcd 3; }
wait_until 30 in_etcd_all && ok "every node registered itself in etcd" || fail "not every node is in etcd"
expect_eq "the shards each node holds (node1 node2 node3)" \
    "$(for i in 1 2 3; do curl -s "http://127.0.0.1:$(node_port "$i")/api/cluster?view=self" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["self"]["shards"], end=" ")'; done)" "0-1 0 1 "
count_on() { # I: the products node I holds
    curl -s "http://127.0.0.1:$(node_port "$1")/api/collections" | python3 -c 'import json,sys; c=json.load(sys.stdin)["collections"][0]; print(c["shards"], c["count"])'
}
read -r nshards c1 <<<"$(count_on 1)"
read -r _ c2 <<<"$(count_on 2)"
read -r _ c3 <<<"$(count_on 3)"
expect_eq "products has 2 shards; node1 holds all 20, node2 and node3 a part each" \
    "$nshards $c1 $((c2 + c3)) $([ "$c2" -gt 0 ] && [ "$c3" -gt 0 ] && echo split)" "2 20 20 split"
peers_of() { # I: node I's peers, as it found them in etcd
    curl -s "http://127.0.0.1:$(node_port "$1")/api/cluster" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["membership"], " ".join(sorted(p["name"] + ":" + p["state"] for p in d["peers"])))'
}
node2_sees_all() { [ "$(peers_of 2)" = "etcd node1:up node3:up" ]; }
wait_until 20 node2_sees_all && ok "node2 found its peers in etcd" || fail "node2's peers: $(peers_of 2)"
full_answers && ok "searches through Nginx are answered by every shard" || fail "searches through Nginx are partial"

start_readers 2
expect_eq "the catalogue is served through Nginx" "${#IDS[@]}" 20
start_load nodekill 20
sleep 2

# ---- kill -9 node2, twice ----
for round in 1 2; do
    old_pid=$(cat "$CLUSTER_DIR/run/node2.pid")
    killed_at=$(now)
    "${CLUSTER[@]}" kill node2
    back() { [ "$(restarts 2)" -ge "$round" ] && ready 2; }
    if wait_until 60 back; then
        measure "node_restart_seconds_round$round" "$(elapsed "$killed_at")" s
        [ "$(cat "$CLUSTER_DIR/run/node2.pid")" != "$old_pid" ] && ok "node2 runs again under a new pid" ||
            fail "node2's pid did not change"
    else
        fail "node2 was not restarted within 60 s (round $round)"
    fi
done
grep -q "restart 1 in 100ms" "$CLUSTER_DIR/logs/node2.log" && ok "first restart after 100 ms" ||
    fail "first restart backoff: $(grep restart "$CLUSTER_DIR/logs/node2.log")"
grep -q "restart 2 in 200ms" "$CLUSTER_DIR/logs/node2.log" && ok "a second crash within 10 s doubles the backoff" ||
    fail "second restart backoff: $(grep restart "$CLUSTER_DIR/logs/node2.log")"

# Nginx sends node2 traffic again once it is back (after fail_timeout at the latest).
mark=$(wc -l <"$ACCESS")
served_by_node2() {
    tail -n +$((mark + 1)) "$ACCESS" | grep "upstream=127.0.0.1:$(node_port 2) ustatus=200" >/dev/null
}
wait_until 30 served_by_node2 && ok "node2 serves reads through Nginx again" || fail "Nginx sent node2 nothing after its restart"
stop_readers
total=$READS failed=$FAILED_READS
echo "reads through Nginx: $total, failed: $failed (of which partial: $PARTIAL_READS)"
finish_load
expect_eq "lookalike-load: no search failed or came back partial while node2 was killed and restarted" \
    "$LOAD_FAILED_READS" 0
sleep 1.5 # the access log is flushed every second
expect_eq "no read failed or came back partial while node2 was killed and restarted" "$failed" 0
measure node_kill_reads_total "$total" requests
measure node_kill_failed_reads "$failed" requests
measure node_kill_reads_retried_by_nginx "$(grep 'route=read' "$ACCESS" | grep -c 'upstream=[^ ]*, ')" requests
[ "$(grep -c 'route=read' "$ACCESS")" -ge "$total" ] || fail "reads missing from Nginx's access log"

wait_until 30 in_etcd 2 && ok "node2 is in etcd after its restarts" || fail "node2 is not in etcd after its restarts"

# ---- request classes with node3 down, Nginx on its own (its passive checks) ----
"${CLUSTER[@]}" stop lbcheck >/dev/null
"${CLUSTER[@]}" stop node3 >/dev/null
not_in_etcd() { ! in_etcd "$1"; }
wait_until 3 not_in_etcd 3 && ok "node3 left etcd on a clean stop (its lease revoked, not expired)" ||
    fail "node3 is still in etcd 3 s after a clean stop"
down=127.0.0.1:$(node_port 3)
mark=$(wc -l <"$ACCESS")
photo=$(find "$TMP/catalogue" -name '*.jpg' | head -1)
for i in 1 2 3; do
    curl -s -o /dev/null -X DELETE "$LB/api/products/no-such-product-$i"
done
for i in 1 2 3; do
    curl -s -o "$TMP/post-$i" -F "image=@$photo" -F "product={\"id\":\"it-post-$i\",\"category\":\"hat\"}" "$LB/api/products"
done
for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null "$LB/api/products/${IDS[$i]}"
done
sleep 1.5 # the access log is flushed every second
tail -n +$((mark + 1)) "$ACCESS" >"$TMP/classes.log"
cat "$TMP/classes.log"
expect_eq "the DELETE routed to the stopped node was tried once and got 502" \
    "$(grep -c "\"DELETE .* 502 .*upstream=$down ustatus=502 .*route=write_once" "$TMP/classes.log")" 1
expect_eq "the other DELETEs reached a live node (404: no such product)" "$(grep -c '"DELETE .* 404 ' "$TMP/classes.log")" 2
expect_eq "every POST write succeeded" "$(grep -c '"POST /api/products HTTP/1.1" 201 ' "$TMP/classes.log")" 3
expect_eq "the POST sent to the stopped node was passed on (never sent, so safe)" \
    "$(grep -c "\"POST .* 201 .*upstream=$down, [0-9.:]* ustatus=502, 201 .*route=write" "$TMP/classes.log")" 1
expect_eq "every read succeeded" "$(grep -c '"GET .* 200 ' "$TMP/classes.log")" 6

# ---- and with the readiness loop: node3 is out of the upstream, nothing is sent to it ----
"${CLUSTER[@]}" restart lbcheck >/dev/null 2>&1
out_of_upstream() { grep -q ":$(node_port 3) .* down;" "$CLUSTER_DIR/etc/nginx-upstream.conf"; }
wait_until 10 out_of_upstream && ok "lbcheck marked the stopped node3 down in Nginx's upstream" ||
    fail "upstream: $(cat "$CLUSTER_DIR/etc/nginx-upstream.conf")"
sleep 0.5 # the reload
mark=$(wc -l <"$ACCESS")
for i in 1 2 3; do
    curl -s -o /dev/null -X DELETE "$LB/api/products/no-such-product-$i"
done
sleep 1.5
expect_eq "with node3 out of the upstream, every DELETE reached a live node (404)" \
    "$(tail -n +$((mark + 1)) "$ACCESS" | grep '"DELETE ' | grep -v "$down" | grep -c ' 404 ')" 3
"${CLUSTER[@]}" restart node3 >/dev/null 2>&1 && ready 3 && ok "node3 restarts" || fail "node3 did not restart"
in_upstream() { ! out_of_upstream; }
wait_until 10 in_upstream && ok "lbcheck put node3 back once ready" || fail "node3 still out of the upstream"
wait_until 30 in_etcd 3 && ok "node3 registered again" || fail "node3 did not register again"
finish
