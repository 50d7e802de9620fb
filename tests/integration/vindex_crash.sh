#!/usr/bin/env bash
# Crash safety of vindex data directories: a child process changes an index (adds, batches,
# deletes, checkpoints) and prints each change after the call returns; it is killed with SIGKILL
# at a random moment, then the directory must reopen and hold every acknowledged change.
# Four directories take turns: flat with SYNC, ivf_flat+sq8 with SYNC, hnsw with SYNC (its
# snapshots carry the graph), flat with BATCH (whose records reach the OS before the call
# returns, so a process kill loses nothing either).
set -euo pipefail

BUILD=${BUILD:-build}
ROUNDS=${VINDEX_CRASH_ROUNDS:-40}
bin="$BUILD/tests/vindex_crash"
tmp=$(mktemp -d)
child=
cleanup() {
    [ -n "$child" ] && kill -9 "$child" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

configs=("flat sync" "ivf sync" "hnsw sync" "flat batch")
RANDOM=42
for ((round = 0; round < ROUNDS; round++)); do
    cfg=${configs[round % 4]}
    read -r kind mode <<<"$cfg"
    dir="$tmp/$kind-$mode"
    acks="$tmp/$kind-$mode.acks"
    touch "$acks"
    # Ids never repeat across rounds: an insert cut off before its ack may still be in the index.
    "$bin" run "$dir" "$kind" "$mode" $((round * 1000000 + 1)) $((round + 7)) >>"$acks" 2>"$tmp/child.err" &
    child=$!
    sleep "0.$((RANDOM % 25 + 5))"
    kill -9 "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
    child=
    if [ -s "$tmp/child.err" ]; then
        echo "round $round ($cfg): the child failed before it was killed:" >&2
        cat "$tmp/child.err" >&2
        exit 1
    fi
    if ! out=$(timeout 60 "$bin" check "$dir" "$acks"); then
        echo "round $round ($cfg): $out" >&2
        exit 1
    fi
    echo "round $round $kind $mode $out"
done
echo "{\"crash_rounds\":$ROUNDS,\"result\":\"every acknowledged change survived\"}"
