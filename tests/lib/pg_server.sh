#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, run from Debian's postgresql package on a free
# loopback port, with its data, socket and log in a directory of its own.
#
#   pg_server.sh start DIR [OWNER_PID]          initdb DIR/data and start; prints the base URI
#                                               postgresql://postgres@127.0.0.1:PORT (add /db)
#   pg_server.sh standby PRIMARY_DIR DIR [OWNER_PID]
#                                               a streaming hot standby of the server in
#                                               PRIMARY_DIR (pg_basebackup -R); prints its URI
#   pg_server.sh promote DIR                    makes a standby the primary
#   pg_server.sh restart DIR                    fast shutdown and start again, same port
#   pg_server.sh stop DIR                       immediate shutdown, then DIR is removed
#   pg_server.sh crash DIR                      immediate shutdown, DIR kept (start it again
#                                               with `restart`)
#
# DIR must be new or empty. With OWNER_PID, a watcher stops the server and removes DIR once
# that process has exited, so a test that dies does not leave a server behind. Authentication
# is `trust` on loopback only: this is for tests. As root (CI), PostgreSQL, which refuses to
# run as root, runs as the `postgres` system user that the Debian package creates, and DIR is
# handed to it. If the server binaries are missing, the package is installed first.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}
shift || true

pg_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
        "$here/../../scripts/deps.sh" postgresql >&2
        d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    fi
    echo "$d"
}

# Runs a command as the user that owns the server.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

prepare_dir() {
    local dir=$1
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            echo "pg_server: $dir is not reachable by the postgres user (set TMPDIR to a world-searchable place)" >&2
            exit 1
        fi
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts the server in $1 on a free port, retrying when another process took the port first.
launch() {
    local dir=$1 bin port
    bin=$(pg_bin)
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o \
            "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c full_page_writes=off" \
            start >"$dir/pg_ctl.log" 2>&1; then
            echo "$port" >"$dir/port"
            return 0
        fi
    done
    echo "pg_server: cannot start PostgreSQL in $dir:" >&2
    tail -20 "$dir/server.log" "$dir/pg_ctl.log" >&2 2>/dev/null || true
    exit 1
}

watch_owner() {
    local dir=$1 owner=${2:-}
    [ -n "$owner" ] || return 0
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" stop "$3"' _ \
        "$owner" "$here/pg_server.sh" "$dir" </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/watcher.pid"
}

uri() {
    echo "postgresql://postgres@127.0.0.1:$(cat "$1/port")"
}

case "$cmd" in
start)
    dir=$1
    prepare_dir "$dir"
    bin=$(pg_bin)
    if ! as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1; then
        echo "pg_server: initdb failed:" >&2
        tail -20 "$dir/initdb.log" >&2
        exit 1
    fi
    launch "$dir"
    watch_owner "$dir" "${2:-}"
    uri "$dir"
    ;;
standby)
    primary=$1 dir=$2
    prepare_dir "$dir"
    bin=$(pg_bin)
    if ! as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$(cat "$primary/port")" -U postgres -D "$dir/data" -R --checkpoint=fast --no-sync \
        -X stream >"$dir/basebackup.log" 2>&1; then
        echo "pg_server: pg_basebackup failed:" >&2
        tail -20 "$dir/basebackup.log" >&2
        exit 1
    fi
    launch "$dir"
    watch_owner "$dir" "${3:-}"
    uri "$dir"
    ;;
promote)
    as_pg "$(pg_bin)/pg_ctl" -D "$1/data" -w -t 60 promote >/dev/null
    ;;
restart)
    dir=$1
    if as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null
    fi
    port=$(cat "$dir/port")
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o \
        "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c full_page_writes=off" \
        start >"$dir/pg_ctl.log" 2>&1
    ;;
crash)
    as_pg "$(pg_bin)/pg_ctl" -D "$1/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
stop)
    dir=$1
    [ -d "$dir" ] || exit 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/watcher.pid" ]; then
        watcher=$(cat "$dir/watcher.pid")
        # The watcher runs this very command when its owner exits: do not kill ourselves.
        if [ "$watcher" != "$$" ] && [ "$watcher" != "$PPID" ]; then kill "$watcher" 2>/dev/null || true; fi
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: pg_server.sh start DIR [OWNER_PID] | standby PRIMARY_DIR DIR [OWNER_PID] | promote DIR |" \
        "restart DIR | crash DIR | stop DIR" >&2
    exit 2
    ;;
esac
