#!/usr/bin/env bash
# tests/run.sh [unit|fuzz|integration|san ...]: run landro's test suites and
# print one closing line "N passed, N failed". With no argument: unit tests
# (build/), fuzz corpus replays, integration tests, then unit tests and fuzz
# replays again under ASan+UBSan (build/san/).
set -uo pipefail
cd "$(dirname "$0")/.."
O=${O:-build}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit fuzz integration san)

pass=0; fail=0; failed=()
log=$(mktemp -d /tmp/landro-run-XXXXXX)

# count_run NAME CMD...: run a test program whose last line is
# "...: N passed, N failed"; add its counts (a crash counts as one failure).
count_run() {
    local name=$1; shift
    local out="$log/$(echo "$name" | tr '/ ' '__').out"
    "$@" >"$out" 2>&1
    local rc=$?
    local line p f
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
    p=$(sed -nE 's/(^|.*[^0-9])([0-9]+) passed, ([0-9]+) failed.*/\2/p' <<<"$line")
    f=$(sed -nE 's/(^|.*[^0-9])([0-9]+) passed, ([0-9]+) failed.*/\3/p' <<<"$line")
    p=${p:-0}; f=${f:-0}
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$f" != 0 ]; then
        failed+=("$name")
        echo "FAIL $name (exit $rc):"
        # the checks that failed first (the tail below is mostly logs)
        grep -E '^(FAIL|not ok|  FAIL) ' "$out" | head -n 10 | sed 's/^/  > /'
        sed 's/^/    /' "$out" | tail -n 40
    else
        echo "ok   $name ($p passed)"
    fi
}

run_unit() {
    local dir=$1
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] || continue
        count_run "$(basename "$(dirname "$(dirname "$t")")")/$(basename "$t")" "$t"
    done
}

run_fuzz() {
    local dir=$1
    # Replay every committed corpus through the decoders (built with the
    # unit tests as fuzz_replay_*), so make check fuzzes without clang.
    for t in "$dir"/tests/fuzzreplay_*; do
        [ -x "$t" ] || continue
        local n=${t##*/fuzzreplay_}
        count_run "$(basename "$dir")/fuzz $n" "$t" "tests/fuzz/corpus/fuzz_$n"
    done
}

for s in "${suites[@]}"; do
    case "$s" in
    unit) run_unit "$O" ;;
    fuzz) run_fuzz "$O" ;;
    san)  run_unit build/san; run_fuzz build/san ;;
    integration)
        for t in tests/integration/test_*.sh; do
            [ -x "$t" ] || continue
            count_run "integration/$(basename "$t" .sh)" timeout 1200 "$t"
        done ;;
    *) echo "unknown suite '$s'"; exit 2 ;;
    esac
done

rm -rf "$log"
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
