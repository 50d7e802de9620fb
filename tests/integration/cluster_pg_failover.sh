#!/usr/bin/env bash
# PostgreSQL failover under Patroni: the cluster elects a leader through etcd and the standby
# streams synchronously; while a client writes numbered rows through a multi-host libpq URI
# (target_session_attrs=read-write, one connection per write, as a client that reconnects),
# `deploy/cluster kill primary` kills -9 the leader's postmaster. Patroni must promote the
# standby, writes must resume, and the old primary must come back as the synchronous standby.
# Then `kill primary-host` kills Patroni too, as when the machine dies: the standby takes over
# when the leader key expires, and `restart` brings the old primary back. Every acknowledged
# write (before, during and after each failover) must be there exactly once, on both servers.
# Meanwhile lookalike-load runs searches and inserts through Nginx and two query nodes: no
# search may fail, inserts resume after each failover (the time is printed), and every insert it
# saw acknowledged is in the catalogue once.
# Prints, per fault, the write outage, the promotion and rejoin times, and the failed attempts.
source "$(dirname "$0")/cluster_lib.inc"

cluster_up NODES=2
URI=$(cat "$CLUSTER_DIR/etc/store.uri")
ETCD="127.0.0.1:$BASE_PORT"
# ---- leader election and synchronous streaming ----
leader=$(ETCDCTL_API=3 etcdctl --endpoints "$ETCD" get /lookalike/lookalike/leader --print-value-only)
case $leader in pg1) P=1 S=2 ;; pg2) P=2 S=1 ;; *) fail "the leader key in etcd names [$leader]" && finish ;; esac
ok "etcd's leader key names $leader"
expect_eq "the leader answers /primary" "$(api $P /primary)" 200
expect_eq "the other member answers /sync (synchronous standby)" "$(api $S /sync)" 200
expect_eq "the primary streams to pg$S synchronously" \
    "$(sql_on $P "SELECT application_name, state, sync_state FROM pg_stat_replication")" "pg$S|streaming|sync"
expect_eq "synchronous_commit is on" "$(sql_on $P "SHOW synchronous_commit")" on
expect_eq "a write through the read-write URI lands on the primary" \
    "$(psql -X "$URI" -qAt -c "SELECT inet_server_port()")" $((BASE_PORT + 29 + P))

start_pg_writer
wait_until 60 acks_at_least 10 || fail "the writer got no 10 acknowledgements in 60 s"
start_load pgfail 75
inserted() { wc -l <"$TMP/inserted-pgfail"; }
inserted_at_least() { [ "$(inserted)" -ge "$1" ]; }

# failover FAULT NAME: inject `deploy/cluster kill FAULT` on the primary P; the standby S must
# be promoted and writes resume; then the old primary must come back as synchronous standby
# (by itself after a postmaster crash; after `restart` when its "machine" died). Swaps P and S.
KILLS=()
failover() {
    local fault=$1 name=$2 killed_at promoted_at rejoined_at resumed_at n
    # Timed from when the kill is done: resolving "primary" takes a moment, during which
    # writes may still commit on the old primary.
    "${CLUSTER[@]}" kill "$fault"
    killed_at=$(now)
    KILLS+=("$killed_at")
    local inserted_at_kill
    inserted_at_kill=$(inserted)
    new_primary() { [ "$(api $S /primary)" = 200 ]; }
    wait_until 60 new_primary && ok "$name: Patroni promoted pg$S" || fail "$name: pg$S was not promoted within 60 s"
    promoted_at=$(now)
    wait_until 60 acks_after "$killed_at" 5 || fail "$name: writes did not resume within 60 s"
    # Through Nginx and the nodes: the 10th insert acknowledged after the kill (the first few may
    # have been committed before it).
    if wait_until 60 inserted_at_least $((inserted_at_kill + 10)); then
        measure "${name}_inserts_through_nginx_resumed_seconds" "$(elapsed "$killed_at")" s
    else
        fail "$name: inserts through Nginx did not resume within 60 s"
    fi
    [ "$fault" = primary-host ] && "${CLUSTER[@]}" restart "pg$P"
    old_rejoined() { [ "$(api $P /sync)" = 200 ]; }
    wait_until 120 old_rejoined && ok "$name: pg$P came back as the synchronous standby" ||
        fail "$name: pg$P did not rejoin as synchronous standby within 120 s"
    rejoined_at=$(now)
    n=$(wc -l <"$TMP/acks")
    wait_until 60 acks_at_least $((n + 10)) || fail "$name: writes stalled after pg$P rejoined"
    # Writes resumed with the first acknowledgement of a write begun after the kill (an earlier
    # one may be a commit that beat the kill); the outage a client sees is the longest time
    # without any acknowledgement, from the last one before the kill on.
    resumed_at=$(awk -v t="$killed_at" '$2 > t { print $3; exit }' "$TMP/acks")
    measure "${name}_promoted_seconds" "$(elapsed "$killed_at" "$promoted_at")" s
    measure "${name}_write_outage_seconds" "$(awk -v t="$killed_at" -v r="$resumed_at" \
        '$3 > t && $3 <= r && $3 - prev > g { g = $3 - prev } { prev = $3 } END { printf "%.2f", g }' "$TMP/acks")" s
    measure "${name}_first_new_write_seconds" "$(elapsed "$killed_at" "$resumed_at")" s
    measure "${name}_failed_attempts" "$(awk -v a="$killed_at" -v b="$rejoined_at" '$1 > a && $1 <= b' "$TMP/write-failures" | wc -l)" writes
    measure "${name}_old_primary_rejoin_seconds" "$(elapsed "$killed_at" "$rejoined_at")" s
    local t=$P
    P=$S S=$t
}
# A crashed postmaster: Patroni on that machine notices within loop_wait and hands over.
failover primary pg_postmaster_kill
# A dead machine (Patroni too): the standby waits for the leader key to expire (ttl).
failover primary-host pg_host_kill
stop_pg_writer
finish_load
expect_eq "lookalike-load: no search through Nginx failed during the failovers" "$LOAD_FAILED_READS" 0

# ---- every acknowledged write is there, once, on both servers ----
awk '{print $1}' "$TMP/acks" | sort >"$TMP/acked"
sql_on $P "SELECT k FROM public.probe ORDER BY k" >"$TMP/stored"
missing=$(comm -23 "$TMP/acked" <(sort -u "$TMP/stored") | wc -l)
dups=$(sql_on $P "SELECT count(*) FROM (SELECT k FROM public.probe GROUP BY k HAVING count(*) > 1) d")
strays=$(awk -v max="$(cat "$TMP/attempted")" '$1 > max || $1 < 1' "$TMP/stored" | wc -l)
# Before the first kill, across a failover (attempted before it, acknowledged after), the rest.
before=$(awk -v t="${KILLS[0]}" '$3 <= t' "$TMP/acks" | wc -l)
across=$(awk -v k1="${KILLS[0]}" -v k2="${KILLS[1]}" '($2 <= k1 && $3 > k1) || ($2 <= k2 && $3 > k2)' "$TMP/acks" | wc -l)
echo "acknowledged writes: $(wc -l <"$TMP/acks") ($before before the first kill, $across attempted before a kill and acknowledged after it)"
expect_eq "every acknowledged write is stored (missing ones)" "$missing" 0
expect_eq "no write is stored twice" "$dups" 0
expect_eq "nothing stored that was never written" "$strays" 0
[ "$across" -ge 1 ] && ok "writes were in flight across the failovers" ||
    fail "no write was in flight across a failover (the test did not exercise it)"
# Synchronous replication: what the primary acknowledged, the standby has (replayed shortly after).
on_standby() { [ "$(sql_on $S "SELECT count(*) FROM public.probe")" = "$(wc -l <"$TMP/stored")" ]; }
wait_until 10 on_standby && ok "the standby holds every row" ||
    fail "standby rows $(sql_on $S "SELECT count(*) FROM public.probe"), primary $(wc -l <"$TMP/stored")"
expect_eq "the primary streams synchronously to the standby" \
    "$(sql_on $P "SELECT application_name, sync_state FROM pg_stat_replication")" "pg$S|sync"
measure pg_failover_acknowledged_writes "$(wc -l <"$TMP/acks")" writes
measure pg_failover_lost_writes "$missing" writes
measure pg_failover_duplicated_writes "$dups" writes
finish
