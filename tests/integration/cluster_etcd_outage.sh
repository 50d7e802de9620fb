#!/usr/bin/env bash
# etcd faults, with a writer on PostgreSQL and readers through Nginx: killing one of the three
# etcd members changes nothing (quorum holds); killing all of them for longer than Patroni's
# ttl must not stop writes either (failsafe_mode: the primary stays primary while it reaches
# the standby) and must not cause a failover; searches go on, whole: the three sharded query
# nodes find each other in etcd, and keep their last known membership while it is down (node2
# and node3 each hold one shard and need each other). lookalike-load runs searches and inserts
# through Nginx throughout. After `restart etcd` the cluster is whole again. Prints the failed
# reads, and writes acknowledged and failed during the outage.
source "$(dirname "$0")/cluster_lib.inc"

cluster_up NODES=3
PATRONI_TTL_S=$(sed -n 's/^PATRONI_TTL=//p' "$CLUSTER_DIR/etc/cluster.env")
P=$(pg_index_with /primary) || fail "no primary"
S=$(pg_index_with /sync) || fail "no synchronous standby"
timeline() { curl -s --max-time 2 "http://127.0.0.1:$((BASE_PORT + 19 + P))/patroni" | python3 -c 'import json,sys; print(json.load(sys.stdin)["timeline"])'; }
timeline_before=$(timeline)
full_answers && ok "searches through Nginx are answered by every shard" || fail "searches through Nginx are partial"
start_pg_writer
start_readers 1
start_load etcdout $((PATRONI_TTL_S + 30))
acks_since() { # TIME: acknowledgements of writes begun after TIME
    awk -v t="$1" '$2 > t' "$TMP/acks" | wc -l
}
has_acks_since() { [ "$(acks_since "$1")" -ge "$2" ]; }
wait_until 60 has_acks_since 0 5 || fail "the writer got no 5 acknowledgements in 60 s"

# ---- one member of three ----
t=$(now)
"${CLUSTER[@]}" kill etcd1
wait_until 30 has_acks_since "$t" 5 && ok "writes go on with etcd1 dead" || fail "writes stopped with etcd1 dead"
expect_eq "the two others still have a leader" \
    "$(ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$((BASE_PORT + 1)),127.0.0.1:$((BASE_PORT + 2))" endpoint health 2>&1 | grep -c 'is healthy')" 2
"${CLUSTER[@]}" restart etcd1

# ---- all of etcd, for longer than the leader key's ttl ----
ttl=$PATRONI_TTL_S
t=$(now)
"${CLUSTER[@]}" kill etcd
lost_primary=0
failsafe=0
for _ in $(seq 1 $((ttl + 6))); do
    [ "$(api "$P" /primary)" = 200 ] || lost_primary=$((lost_primary + 1))
    curl -s --max-time 2 "http://127.0.0.1:$((BASE_PORT + 19 + P))/metrics" |
        grep '^patroni_failsafe_mode_is_active{.*} 1' >/dev/null && failsafe=1
    sleep 1
done
peers_during=$(curl -s "http://127.0.0.1:$((BASE_PORT + 41))/api/cluster" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(sorted(p["name"] + ":" + p["state"] for p in d["peers"])))')
full_during=$(full_answers && echo yes || echo no)
during=$(acks_since "$t")
failed_during=$(awk -v t="$t" '$1 > t' "$TMP/write-failures" | wc -l)
"${CLUSTER[@]}" restart etcd
expect_eq "node2 kept its last known peers while etcd was down" "$peers_during" "node1:up node3:up"
expect_eq "searches through Nginx were whole while etcd was down" "$full_during" yes
expect_eq "pg$P answered /primary throughout the etcd outage (seconds it did not)" "$lost_primary" 0
expect_eq "Patroni reported failsafe mode active" "$failsafe" 1
[ "$during" -ge 5 ] && ok "writes were acknowledged while etcd was down ($during)" ||
    fail "only $during writes acknowledged while etcd was down"
healthy() { [ "$(api "$P" /primary)" = 200 ] && [ "$(api "$S" /sync)" = 200 ]; }
wait_until 60 healthy && ok "after etcd's restart: pg$P primary, pg$S synchronous standby" ||
    fail "the cluster is not whole after etcd's restart"
expect_eq "no failover happened (same timeline)" "$(timeline)" "$timeline_before"
t=$(now)
wait_until 30 has_acks_since "$t" 5 || fail "writes stalled after etcd's restart"
stop_pg_writer
stop_readers
finish_load
expect_eq "lookalike-load: no search failed or came back partial" "$LOAD_FAILED_READS" 0

awk '{print $1}' "$TMP/acks" | sort >"$TMP/acked"
sql_on "$P" "SELECT k FROM public.probe" | sort >"$TMP/stored"
expect_eq "every acknowledged write is stored (missing ones)" "$(comm -23 "$TMP/acked" <(sort -u "$TMP/stored") | wc -l)" 0
expect_eq "no write is stored twice" "$(sort "$TMP/stored" | uniq -d | wc -l)" 0
expect_eq "no read through Nginx failed" "$FAILED_READS" 0
measure etcd_outage_seconds "$((ttl + 6))" s
measure etcd_outage_writes_acknowledged "$during" writes
measure etcd_outage_write_failures "$failed_during" writes
measure etcd_outage_reads "$READS" requests
measure etcd_outage_failed_reads "$FAILED_READS" requests
finish
