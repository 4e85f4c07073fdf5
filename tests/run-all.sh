#!/usr/bin/env bash
# Runs every test suite and ends with one line CI reads: "N passed, N failed".
#   unit (cmocka), the same unit tests under ASan+UBSan, fuzz targets for a
#   bounded time, integration suites against a real server (plain and
#   ASan+UBSan builds), the Segment SDK test, the kill -9 crash test, the
#   demo shop in Chromium (tests/browser).
# Usage: tests/run-all.sh [BUILD_DIR]   (FUZZ_SECONDS=N to change fuzz time)
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
passed=0
failed=0
skipped=0
failures=()
LOG_DIR=$BUILD/test-logs
mkdir -p "$LOG_DIR"

# Adds the counts a suite printed: cmocka's "[  PASSED  ] N test(s)." and
# "[  FAILED  ] N test(s)", "[  SKIPPED ] N test(s)", or our "N passed, N failed".
count_output() {
    local log=$1 p f s
    p=$(grep -aoE '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$NF} END {print s+0}')
    f=$(grep -aoE '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$(NF-1)} END {print s+0}')
    s=$(grep -aoE '^\[  SKIPPED \] [0-9]+' "$log" | awk '{s+=$NF} END {print s+0}')
    if [ "$p" = 0 ] && [ "$f" = 0 ]; then
        local line
        line=$(grep -aE '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
        if [ -n "$line" ]; then
            p=$(echo "$line" | sed -E 's/^([A-Za-z]+: )?([0-9]+) passed.*/\2/')
            f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
            s=$(echo "$line" | grep -oE '[0-9]+ skipped' | awk '{print $1+0}')
            s=${s:-0}
        fi
    fi
    echo "$p $f $s"
}

# run_suite NAME COMMAND...: runs it, shows its output, adds its counts.
run_suite() {
    local name=$1
    shift
    local log="$LOG_DIR/$name.log"
    echo "=== $name"
    "$@" >"$log" 2>&1
    local rc=$?
    cat "$log"
    local p f s
    read -r p f s < <(count_output "$log")
    if [ "$rc" -ne 0 ] && [ "$f" = 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    if [ "$f" != 0 ]; then failures+=("$name"); fi
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run_suite "unit-$(basename "$t")" "$t"
done

for t in "$BUILD"/asan/tests/test_*; do
    [ -x "$t" ] || continue
    run_suite "asan-$(basename "$t")" env ASAN_OPTIONS=detect_leaks=1 "$t"
done

run_fuzz() {
    local bin=$1 corpus=$2
    mkdir -p "$BUILD/fuzz-corpus/$corpus"
    local seeds=()
    [ -d "tests/fuzz/corpus/$corpus" ] && seeds=("tests/fuzz/corpus/$corpus")
    if "$bin" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -print_final_stats=1 \
        "$BUILD/fuzz-corpus/$corpus" "${seeds[@]}"; then
        echo "1 passed, 0 failed"
    else
        echo "0 passed, 1 failed"
        return 1
    fi
}
for f in "$BUILD"/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    run_suite "$name" run_fuzz "$f" "${name#fuzz_}"
done

for suite in tests/integration/test_*; do
    [ -x "$suite" ] || continue
    run_suite "integration-$(basename "$suite")" "$suite" "$BUILD/bespoke"
    if [ -x "$BUILD/asan/bespoke" ]; then
        run_suite "asan-integration-$(basename "$suite")" \
            env ASAN_OPTIONS=detect_leaks=1 BESPOKE_SANITIZED=1 "$suite" "$BUILD/asan/bespoke"
    fi
done

# The demo shop walked in Chromium, and the SDK's minified size; the Chromium
# part skips, saying why, when Chromium cannot start. Screenshots are kept in
# $BUILD/test-artifacts/browser.
if [ -f tests/browser/shop_test.mjs ]; then
    run_suite browser-shop node tests/browser/shop_test.mjs "$BUILD/bespoke" "$BUILD/test-artifacts/browser"
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
    echo "failed suites: ${failures[*]} (logs in $LOG_DIR)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
