#!/usr/bin/env bash
# test_fsck.sh - landro-fsck against damaged stores, e2fsprogs style.
#
# Every directory tests/fsck/<case>/ holds `damage` (bash, given a freshly
# populated store: landro-fsck-damage populate), expect.1 (output and exit
# code of the first `landro-fsck -y`), expect.2 (of the second run: clean,
# exit 0), optionally expect.p (a `landro-fsck -p` run instead) and nexit
# (the exit code of -n when it is not 4). For each case: -n exits 4 (or
# nexit), changes nothing (data.mdb byte-identical) and a second -n prints
# the same; -y prints expect.1; the second -y prints expect.2. The store
# path is written as STORE in the expected files.
#
# FSCK_REGEN=1 rewrites the expect files from the current output (review
# the diff before committing). Then: a few command-line checks (lock held
# by a daemon, usage, no store, no tty).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
O=${O:-build}
FSCK=$top/$O/bin/landro-fsck
export FSCK_DAMAGE=$top/$O/bin/landro-fsck-damage
pass=0; fail=0
ok()  { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "not ok - $*"; fail=$((fail + 1)); }

if [ ! -x "$FSCK" ] || [ ! -x "$FSCK_DAMAGE" ]; then
    echo "cannot run: $FSCK or $FSCK_DAMAGE is not built"
    echo "0 passed, 1 failed"
    exit 1
fi
work=$(mktemp -d /tmp/landro-fsck-XXXXXX)
lockpid=
cleanup() {
    [ -n "$lockpid" ] && kill "$lockpid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run STORE ARGS...: landro-fsck's stdout+stderr with the store path
# normalised, then "exit N".
run() {
    local store=$1; shift
    local out rc
    out=$("$FSCK" "$@" "$store" </dev/null 2>&1); rc=$?
    printf '%s\nexit %d\n' "${out//$store/STORE}" "$rc"
}

# compare NAME EXPECTFILE ACTUAL
compare() {
    local name=$1 file=$2 got=$3
    if [ "${FSCK_REGEN:-}" = 1 ]; then
        printf '%s\n' "$got" > "$file"
        ok "$name (regenerated)"
    elif [ ! -f "$file" ]; then
        bad "$name: no $file"
    elif [ "$(cat "$file")" = "$got" ]; then
        ok "$name"
    else
        bad "$name: output differs from $file:"
        diff <(cat "$file") <(printf '%s\n' "$got") | sed 's/^/    /'
    fi
}

fresh() {  # fresh CASE STORE: populate and damage
    "$FSCK_DAMAGE" populate "$2" >/dev/null && "$top/tests/fsck/$1/damage" "$2"
}

for dir in "$top"/tests/fsck/*/; do
    c=$(basename "$dir")
    store=$work/$c/store
    if ! fresh "$c" "$store"; then
        bad "$c: damage script failed"
        continue
    fi
    want_n=4
    [ -f "$dir/nexit" ] && want_n=$(cat "$dir/nexit")
    before=$(md5sum < "$store/data.mdb")
    n1=$(run "$store" -n); n2=$(run "$store" -n)
    after=$(md5sum < "$store/data.mdb")
    got_n=$(tail -n1 <<<"$n1"); got_n=${got_n#exit }
    if [ "$got_n" = "$want_n" ]; then ok "$c: -n exits $want_n"; else bad "$c: -n exits $got_n, expected $want_n:"; sed 's/^/    /' <<<"$n1"; fi
    if [ "$before" = "$after" ]; then ok "$c: -n changes nothing"; else bad "$c: -n changed data.mdb"; fi
    if [ "$n1" = "$n2" ]; then ok "$c: second -n reports the same"; else bad "$c: second -n differs"; fi
    if [ -f "$dir/expect.p" ]; then
        pstore=$work/$c/pstore
        if fresh "$c" "$pstore"; then
            compare "$c: -p" "$dir/expect.p" "$(run "$pstore" -p)"
        else
            bad "$c: damage script failed (-p copy)"
        fi
    fi
    compare "$c: first -y" "$dir/expect.1" "$(run "$store" -y)"
    compare "$c: second -y" "$dir/expect.2" "$(run "$store" -y)"
    rm -rf "${work:?}/$c"
done

# Command line and environment.
store=$work/cli/store
"$FSCK_DAMAGE" populate "$store" >/dev/null
# A daemon holds an exclusive flock on landro.lock: -y refuses, -n runs.
# (The sleep itself holds the locked descriptor, so killing it unlocks.)
( exec 9>"$store/landro.lock"; flock -x 9; exec sleep 60 ) >/dev/null 2>&1 &
lockpid=$!
for _ in $(seq 50); do flock -n -x "$store/landro.lock" true 2>/dev/null || break; sleep 0.1; done
out=$(run "$store" -y)
if [ "$(tail -n1 <<<"$out")" = "exit 8" ] && grep -q "store 'STORE' is in use by a running daemon: unmount it first (or use -n)" <<<"$out"; then
    ok "locked store: -y refuses with exit 8"
else
    bad "locked store: -y gave: $out"
fi
out=$(run "$store" -n)
if [ "$(tail -n1 <<<"$out")" = "exit 0" ]; then ok "locked store: -n checks (exit 0)"; else bad "locked store: -n gave: $out"; fi
kill "$lockpid" 2>/dev/null; wait "$lockpid" 2>/dev/null; lockpid=
out=$(run "$store" -y)
if [ "$(tail -n1 <<<"$out")" = "exit 0" ]; then ok "unlocked store: -y clean (exit 0)"; else bad "unlocked: -y gave: $out"; fi
# No flag and no terminal: like -n.
"$FSCK_DAMAGE" inode-set "$store" /docs/big nlink 9
before=$(md5sum < "$store/data.mdb")
out=$(run "$store")
if [ "$(tail -n1 <<<"$out")" = "exit 4" ] && grep -q "as -n" <<<"$out" && [ "$before" = "$(md5sum < "$store/data.mdb")" ]; then
    ok "no flag, no tty: checks only (exit 4)"
else
    bad "no flag, no tty: $out"
fi
# Interactive (stdin a terminal, through script(1)): "n" declines the
# first fix, "y" accepts the second: exit 1|4, one problem left.
if command -v script >/dev/null; then
    "$FSCK_DAMAGE" chunk-orphan "$store"
    out=$(printf 'n\ny\n' | script -qec "'$FSCK' '$store'; echo \"exit \$?\"" /dev/null 2>&1 | tr -d '\r')
    if grep -q "^exit 5$" <<<"$out" && grep -q "1 problems fixed, 1 left" <<<"$out"; then
        ok "interactive: asks per problem (n, y: exit 5)"
    else
        bad "interactive: $out"
    fi
    "$FSCK" -y "$store" >/dev/null 2>&1
fi
# Usage errors: 16. No store: 8. --heal-from-peers on a store without a
# device identity (made by the damage helper, not landro init): 8.
"$FSCK" -n -y "$store" >/dev/null 2>&1; rc=$?
[ $rc = 16 ] && ok "-n -y: usage error 16" || bad "-n -y: exit $rc"
"$FSCK" >/dev/null 2>&1; rc=$?
[ $rc = 16 ] && ok "no store argument: usage error 16" || bad "no argument: exit $rc"
"$FSCK" -n "$work/nothing-here" >/dev/null 2>&1; rc=$?
[ $rc = 8 ] && ok "no store there: exit 8" || bad "no store there: exit $rc"
out=$("$FSCK" -y --heal-from-peers "$store" 2>&1); rc=$?
[ $rc = 8 ] && grep -q "no device identity" <<<"$out" && ok "--heal-from-peers without an identity: exit 8, says why" || bad "--heal-from-peers: exit $rc: $out"
# -v adds per-pass statistics, including the chunk verification rate.
out=$("$FSCK" -n -v "$store" 2>&1)
grep -q "^Pass 2: .* bytes verified" <<<"$out" && ok "-v prints pass statistics" || bad "-v: $out"

# Random damage anywhere in the LMDB file (64 bytes of garbage in every
# 5th page, fixed seeds): never a crash (exit < 16: a damaged page LMDB
# trusts is exit 8 with a message), and whenever -y could work (exit < 8)
# a following -n is clean.
base=$work/rand/base
"$FSCK_DAMAGE" populate "$base" >/dev/null
npages=$(( $(stat -c %s "$base/data.mdb") / 4096 ))
crashes=0; unclean=0; tried=0
for ((pg = 0; pg < npages; pg += 5)); do
    s=$work/rand/s
    rm -rf "$s"; cp -r "$base" "$s"
    python3 - "$s/data.mdb" "$pg" <<'PY'
import random, sys
path, pg = sys.argv[1], int(sys.argv[2])
random.seed(pg * 7 + 1)
with open(path, "r+b") as f:
    f.seek(pg * 4096 + random.randrange(0, 4000))
    f.write(bytes(random.getrandbits(8) for _ in range(64)))
PY
    tried=$((tried + 1))
    "$FSCK" -n "$s" >/dev/null 2>&1; rc=$?
    [ $rc -ge 16 ] && { crashes=$((crashes + 1)); echo "    page $pg: -n exited $rc"; }
    "$FSCK" -y "$s" >/dev/null 2>&1; rc=$?
    [ $rc -ge 16 ] && { crashes=$((crashes + 1)); echo "    page $pg: -y exited $rc"; }
    if [ $rc -lt 8 ]; then
        out=$("$FSCK" -n "$s" 2>&1); r2=$?
        [ $r2 = 0 ] || { unclean=$((unclean + 1)); echo "    page $pg: -n after -y exited $r2:"; grep -v '^Pass' <<<"$out" | head -5 | sed 's/^/      /'; }
    fi
done
[ $crashes = 0 ] && ok "random damage in $tried pages: no crash" || bad "random damage: $crashes crashes"
[ $unclean = 0 ] && ok "random damage in $tried pages: clean after -y" || bad "random damage: $unclean stores not clean after -y"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
