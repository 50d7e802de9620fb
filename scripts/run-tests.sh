#!/usr/bin/env bash
# The one test runner behind `make test`: Criterion unit binaries, fuzz-corpus replays,
# integration tests and browser (e2e) tests, each with its log kept in $BUILD/test-logs/
# (printed on failure).
# Arguments narrow the run to tests whose name contains one of them.
# Ends with the line "N passed, N failed" and exits non-zero when anything failed.
set -uo pipefail

BUILD=${BUILD:-build}
TEST_TIMEOUT=${TEST_TIMEOUT:-1200}
export BUILD SAN=${SAN:-}
logs="$BUILD/test-logs"
mkdir -p "$logs"
filters=("$@")
passed=0
failed=0
failed_names=()

wanted() {
    [ ${#filters[@]} -eq 0 ] && return 0
    local f
    for f in "${filters[@]}"; do
        [[ "$1" == *"$f"* ]] && return 0
    done
    return 1
}

# run NAME CMD... : one test program; counts the Criterion synthesis when there is one.
run() {
    local name=$1
    shift
    wanted "$name" || return 0
    local log="$logs/$name.log" start=$SECONDS rc
    timeout --kill-after=10 "$TEST_TIMEOUT" "$@" >"$log" 2>&1 </dev/null
    rc=$?
    local synth n_pass=1 n_fail=0
    synth=$(grep -a 'Synthesis: Tested:' "$log" | tail -1)
    if [ -n "$synth" ]; then
        n_pass=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$synth")
        n_fail=$(($(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$synth") + $(sed -E 's/.*Crashing: ([0-9]+).*/\1/' <<<"$synth")))
    fi
    if [ $rc -ne 0 ] && [ "$n_fail" -eq 0 ]; then
        n_fail=1
        n_pass=0
    fi
    passed=$((passed + n_pass))
    failed=$((failed + n_fail))
    if [ "$n_fail" -eq 0 ]; then
        printf 'PASS %-40s %4ds  %s\n' "$name" $((SECONDS - start)) "${synth:+$n_pass tests}"
    else
        failed_names+=("$name")
        printf 'FAIL %-40s %4ds  exit %d, log %s\n' "$name" $((SECONDS - start)) "$rc" "$log"
        tail -n 60 "$log" | sed 's/^/    | /'
    fi
}

for bin in "$BUILD"/tests/unit-*; do
    [ -x "$bin" ] || continue
    run "$(basename "$bin")" "$bin" --jobs 2
done

for bin in "$BUILD"/fuzz/replay-*; do
    [ -x "$bin" ] || continue
    target=${bin##*/replay-}
    run "fuzz-$target" "$bin" fuzz/"$target"/corpus
done

for script in tests/integration/*.sh; do
    [ -f "$script" ] || continue
    run "it-$(basename "$script" .sh)" bash "$script"
done

# Browser tests of the web pages: headless chromium driven by playwright-core (tests/e2e/).
for script in tests/e2e/*.sh; do
    [ -f "$script" ] || continue
    run "e2e-$(basename "$script" .sh)" bash "$script"
done

if [ ${#failed_names[@]} -gt 0 ]; then
    echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
