#!/usr/bin/env bash
# A node cut off, and a node behind, in the sharded cluster (node1 holds shards 0,1, node2 0,
# node3 1; MAX_LAG=100), with lookalike-load running searches and inserts through Nginx:
#
# - partition: node3 is frozen with SIGSTOP (its sockets stay open and nothing answers, as when
#   its network is cut; `ip netns` would also cut it from PostgreSQL and etcd in the same way,
#   but SIGSTOP needs no set-up and also stops its lease renewals). lbcheck takes it out of
#   Nginx's upstream, its etcd key expires so that the other nodes drop it, and searches stay
#   whole (node1 holds shard 1). SIGCONT heals it: it registers again, is found again, and Nginx
#   sends it traffic again.
# - lag: node3 is stopped, thousands of products are written into the catalogue, and node3 is
#   started again: it says "behind the change log" on /readyz until it has applied them, lbcheck
#   keeps it out of Nginx until then (no request reaches it before), and then it serves.
#
# Prints how long each step took, the catch-up figures, and lookalike-load's failed requests,
# partial answers, downtime, and lost and duplicated inserts (which must be zero).
source "$(dirname "$0")/cluster_lib.inc"

BULK=$ROOT/$BUILD/tests/lookalike_bulk
BULK_N=${CLUSTER_BULK_WRITES:-$([ -n "${SAN:-}" ] && echo 2000 || echo 5000)}
cluster_up NODES=3 MAX_LAG=100
node_port() { echo $((BASE_PORT + 39 + $1)); }
N3=http://127.0.0.1:$(node_port 3)
ACCESS=$CLUSTER_DIR/logs/nginx-access.log
LBLOG=$CLUSTER_DIR/logs/lbcheck.log
peers_of() { # I: node I's peers and their state
    curl -s --max-time 2 "http://127.0.0.1:$(node_port "$1")/api/cluster" |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(sorted(p["name"] + ":" + p["state"] for p in d["peers"])))'
}
in_etcd() { # I
    ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$BASE_PORT" get --keys-only "/lookalike/nodes/node$1" | grep . >/dev/null
}
out_of_upstream() { grep -q ":$(node_port 3) .* down;" "$CLUSTER_DIR/etc/nginx-upstream.conf"; }
in_upstream() { ! out_of_upstream; }
node1_sees() { [ "$(peers_of 1)" = "$1" ]; }

node1_sees_all() { node1_sees "node2:up node3:up"; }
wait_until 20 node1_sees_all && ok "node1 found node2 and node3 in etcd" || fail "node1's peers: $(peers_of 1)"
full_answers && ok "searches through Nginx are answered by every shard" || fail "searches through Nginx are partial"
start_load partition 45
sleep 2

# ---- partition: node3 frozen ----
pid3=$(cat "$CLUSTER_DIR/run/node3.pid")
kill -STOP "$pid3"
cut_at=$(now)
wait_until 10 out_of_upstream && measure partition_out_of_nginx_seconds "$(elapsed "$cut_at")" s ||
    fail "lbcheck did not take the frozen node3 out of Nginx"
not_in_etcd() { ! in_etcd 3; }
wait_until 30 not_in_etcd && measure partition_expired_from_etcd_seconds "$(elapsed "$cut_at")" s ||
    fail "node3's key did not expire"
node1_lost_3() { node1_sees "node2:up"; }
wait_until 10 node1_lost_3 && ok "node1 dropped node3 from its peers once its key expired" ||
    fail "node1's peers: $(peers_of 1)"
full_answers && ok "searches stay whole with node3 cut off" || fail "searches are partial with node3 cut off"
kill -CONT "$pid3"
healed_at=$(now)
wait_until 20 in_etcd 3 && measure partition_heal_registered_seconds "$(elapsed "$healed_at")" s ||
    fail "node3 did not register again after the heal"
wait_until 20 node1_sees_all && measure partition_heal_found_seconds "$(elapsed "$healed_at")" s ||
    fail "node1 did not find node3 again: $(peers_of 1)"
wait_until 10 in_upstream && ok "lbcheck put node3 back into Nginx" || fail "node3 is still out of Nginx"
mark=$(wc -l <"$ACCESS")
served_by_node3() { tail -n +$((mark + 1)) "$ACCESS" | grep -q "upstream=127.0.0.1:$(node_port 3) ustatus=200"; }
wait_until 20 served_by_node3 && ok "node3 serves through Nginx again" || fail "Nginx sent node3 nothing after the heal"
finish_load
expect_eq "lookalike-load: no search failed or came back partial across the partition" "$LOAD_FAILED_READS" 0

# ---- lag: node3 restarted after BULK_N writes ----
"${CLUSTER[@]}" stop node3 >/dev/null
wait_until 10 out_of_upstream || fail "lbcheck did not take the stopped node3 out"
photo=$(find "$TMP/catalogue" -name '*.jpg' | head -1)
t=$(now)
"$BULK" "$(cat "$CLUSTER_DIR/etc/store.uri")" products "$BULK_N" bulk "$photo" >/dev/null || fail "bulk writes"
measure lag_bulk_writes "$BULK_N" writes
measure lag_bulk_write_seconds "$(elapsed "$t")" s
start_load lag 15
restart_at=$(now)
"${CLUSTER[@]}" restart node3 >"$TMP/restart3.log" 2>&1 &
BG_PIDS+=($!)
seen_lag=0
for _ in $(seq 1 3000); do
    code=$(curl -s -o "$TMP/ready3" -w '%{http_code}' --max-time 1 "$N3/readyz")
    grep -q "behind the change log" "$TMP/ready3" 2>/dev/null && seen_lag=1
    [ "$code" = 200 ] && break
    sleep 0.02
done
ready_at=$(now)
expect_eq "node3 said on /readyz that it was behind the change log" "$seen_lag" 1
expect_eq "and is ready once caught up" "$code" 200
wait_until 10 in_upstream && back_at=$(now) && ok "lbcheck put node3 back once it was ready" ||
    fail "node3 still out of Nginx after catching up"
in_at=$(grep 'node3 in: ready' "$LBLOG" | tail -1 | sed 's/.*(at \([0-9.]*\))$/\1/')
finish_load
sleep 1.5 # the access log is flushed every second
early=$(awk -v a="$restart_at" -v b="$in_at" -v up="upstream=127.0.0.1:$(node_port 3)" \
    'index($0, up) { t = $NF; sub("t=", "", t); if (t > a && t < b) n++ } END { print n + 0 }' "$ACCESS")
expect_eq "no request reached node3 through Nginx before lbcheck saw it ready" "$early" 0
caught=$(grep -o 'caught up from the snapshot at seq [0-9]*: [0-9]* changes applied.*' "$CLUSTER_DIR/logs/node3.log" | tail -1)
[ -n "$caught" ] && ok "node3 replayed the tail after its snapshot: $caught" ||
    fail "node3 did not catch up from its snapshot: $(grep -v '"msg":"request"' "$CLUSTER_DIR/logs/node3.log" | tail -40)"
measure lag_node_ready_seconds "$(elapsed "$restart_at" "$ready_at")" s
measure lag_back_in_nginx_seconds "$(elapsed "$restart_at" "$back_at")" s
expect_eq "lookalike-load: no search failed or came back partial while node3 caught up" "$LOAD_FAILED_READS" 0
finish
