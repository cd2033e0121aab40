#!/usr/bin/env bash
# test_sync_netns.sh - two mounted landro daemons in two network namespaces
# whose only path to each other is an impaired one: every UDP datagram is
# held 20 ms and lost with probability 1 %, in each direction. On that
# path: small files, a directory tree and a 128 MiB file written on A
# appear on B; B reads them on demand with equal sha256; a rename and a
# delete on A reach B; a change made on B reaches A.
#
# How the path is impaired: this kernel has no sch_netem (and no sch_fq or
# sch_etf either, so a tc BPF program setting skb->tstamp for an earliest
# departure time would not delay anything; only loss could be done in the
# kernel). So the impairment is a userspace relay, tools/impair/
# (landro-impair), in a third "router" namespace:
#
#   ns A  10.201.1.1 --veth-- 10.201.1.2  ns R  10.201.2.2 --veth-- 10.201.2.1  ns B
#                             [landro-impair --delay 20 --loss 1]
#
# R does not forward IP; A and B have no route to each other, only to R.
# A's peer address for B is 10.201.1.2:7402, which the relay forwards to
# 10.201.2.1:7402 (B's --listen); B's for A is 10.201.2.2:7401 ->
# 10.201.1.1:7401. Daemons and transport are the production code paths
# (no test seams). The daemons run under `nsenter --net` (network
# namespace only), so their FUSE mounts are in this shell's mount
# namespace and the reads and writes below are ordinary ones.
#
# Knobs (environment): LOSS_PCT (default 1), DELAY_MS (20), BIG_MIB (128),
# BIG_READ_S (the big file's read bound, 100 s), RATE_KBPS (the path into
# each namespace carries at most that many kB/s; default no limit);
# test_sync_netns_lossy.sh runs this with 3 % loss and 256 MiB,
# test_sync_netns_slow.sh on a 300 kB/s path.
#
# Needs root, /dev/fuse, iproute2, nsenter. Bounded by a watchdog
# (WATCHDOG seconds, default 170); namespaces, mounts, daemons and the
# relay are removed by the trap even on failure or timeout.
# Prints "ok"/"FAIL" lines and "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
L=$PWD/${O:-build}/bin/landro
IMPAIR=$PWD/${O:-build}/bin/landro-impair
NA=landro-sn-a-$$
NB=landro-sn-b-$$
NR=landro-sn-r-$$
BIG_MIB=${BIG_MIB:-128}
DELAY_MS=${DELAY_MS:-20} LOSS_PCT=${LOSS_PCT:-1}   # each way
RATE_KBPS=${RATE_KBPS:-}
T=$(mktemp -d /tmp/landro-sync-netns-XXXXXX)
pass=0 fail=0
pid_a= pid_b= pid_r= pid_w=

cleanup() {
    trap - EXIT TERM INT
    if [ -n "$pid_w" ]; then   # the watchdog subshell and its sleep
        pkill -P "$pid_w" 2>/dev/null
        kill "$pid_w" 2>/dev/null
    fi
    # (not `mountpoint -q`: it says no when the daemon is hung or dead)
    for m in "$T/mnt-a" "$T/mnt-b"; do
        grep -q " $m fuse" /proc/self/mounts && fusermount3 -u -z "$m" 2>/dev/null
    done
    for p in $pid_a $pid_b $pid_r; do kill -9 "$p" 2>/dev/null; done
    # anything else left in the three namespaces was started by this test
    for ns in "$NA" "$NB" "$NR"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    done
    sleep 0.2
    for ns in "$NA" "$NB" "$NR"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "FAIL interrupted or timed out (watchdog)"; fail=$((fail + 1)); echo "$pass passed, $fail failed"; exit 143' TERM INT

WAIT_STEP=0.2
. "$PWD/tests/integration/check_lib.sh"
. "$PWD/tools/impair/netns.sh"
finish() {
    if [ "$fail" != 0 ]; then
        for x in a b; do echo "--- log $x"; tail -n 20 "$T/log-$x" 2>/dev/null; done
        echo "--- relay"; tail -n 20 "$T/relay.err" 2>/dev/null
    fi
    echo "$pass passed, $fail failed"
    [ "$fail" = 0 ]
    exit
}
now_ms() { date +%s%3N; }
# Bounded file operations: a FUSE call stuck on the network must not hang
# the test past its watchdog.
tsum() { timeout -k 5 "$1" sha256sum "$2" | cut -d" " -f1; }

# The watchdog. Bash runs the TERM trap only once the foreground command
# returns, and a read stuck in FUSE returns only when its daemon answers
# or dies; so the watchdog first kills the processes listed in $T/pids
# (the daemons and the relay), which fails any pending FUSE call at once,
# then sends TERM, whose trap cleans up.
( sleep "${WATCHDOG:-170}"
  xargs -r kill -9 < "$T/pids" 2>/dev/null
  kill -TERM $$ ) 2>/dev/null &
pid_w=$!
disown "$pid_w"

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null || ! command -v nsenter >/dev/null ||
   [ ! -c /dev/fuse ]; then
    bad "environment: needs root, iproute2, nsenter and /dev/fuse"
    finish
fi
if [ ! -x "$L" ] || [ ! -x "$IMPAIR" ]; then
    bad "binaries: $L and $IMPAIR must be built (make)"
    finish
fi

# ---- the three namespaces ---------------------------------------------------
if ! impair_netns "$NA" "$NR" "$NB" 10.201 2>"$T/ip.err"; then
    bad "namespaces and veth pairs created: $(head -c 300 "$T/ip.err")"
    finish
fi
ok "namespaces A, R, B joined by two veth pairs (A <-> R <-> B)"
# The relay must be the only path: A has no route to B's address.
check "A cannot reach B except through the relay" \
    sh -c "! ip netns exec '$NA' ping -c1 -W1 10.201.2.1 >/dev/null 2>&1"

# ---- the relay --------------------------------------------------------------
nsenter --net="/run/netns/$NR" "$IMPAIR" --delay $DELAY_MS --loss $LOSS_PCT --seed 5 ${RATE_KBPS:+--rate $RATE_KBPS} \
    --map 10.201.1.2:7402=10.201.2.1:7402 --map 10.201.2.2:7401=10.201.1.1:7401 \
    >"$T/relay.out" 2>"$T/relay.err" &
pid_r=$!
disown "$pid_r"    # tracked by pid; no job-control notices
echo "$pid_r" >> "$T/pids"
if ! wait_for 10 sh -c "[ \$(grep -c '^listening' '$T/relay.out') = 2 ]"; then
    bad "relay listens on both sides: $(cat "$T/relay.err")"
    finish
fi
ok "relay up: $DELAY_MS ms and $LOSS_PCT % loss each way${RATE_KBPS:+, $RATE_KBPS kB/s into each side} ($(tr '\n' ';' <"$T/relay.out"))"

# ---- two stores in one volume, each trusting the other through the relay ---
if ! { "$L" init --store "$T/a" >/dev/null &&
       "$L" init --store "$T/b" --volume "$("$L" volume --store "$T/a")" >/dev/null &&
       "$L" peer add --store "$T/a" "$("$L" id --store "$T/b")" 10.201.1.2:7402 &&
       "$L" peer add --store "$T/b" "$("$L" id --store "$T/a")" 10.201.2.2:7401; } >"$T/init.out" 2>&1; then
    bad "stores initialised: $(tail -3 "$T/init.out")"
    finish
fi
mkdir -p "$T/mnt-a" "$T/mnt-b"
nsenter --net="/run/netns/$NA" "$L" mount -f --store "$T/a" --listen 10.201.1.1:7401 "$T/mnt-a" 2>"$T/log-a" &
pid_a=$!
nsenter --net="/run/netns/$NB" "$L" mount -f --store "$T/b" --listen 10.201.2.1:7402 "$T/mnt-b" 2>"$T/log-b" &
pid_b=$!
disown "$pid_a" "$pid_b"
echo "$pid_a $pid_b" >> "$T/pids"
if ! wait_for 20 mountpoint -q "$T/mnt-a" || ! wait_for 20 mountpoint -q "$T/mnt-b"; then
    bad "both daemons mounted (visible in the test's mount namespace)"
    finish
fi
ok "daemons mounted inside namespaces A and B, mounts visible here"

# ---- 1. small files, a tree and a big file written on A ----------------------
for i in 1 2 3 4 5; do echo "small file $i written on A" > "$T/mnt-a/small-$i.txt"; done
mkdir -p "$T/mnt-a/tree/deep/er"
cp -a store net "$T/mnt-a/tree/"
cp -a docs "$T/mnt-a/tree/deep/er/"
head -c $((BIG_MIB << 20)) /dev/urandom > "$T/big.src"
sum_src=$(sha256sum < "$T/big.src" | cut -d' ' -f1)
t0=$(now_ms)
cp "$T/big.src" "$T/mnt-a/big.bin"
rm -f "$T/big.src"
check "big file written on A reads back on A" test "$(tsum 60 "$T/mnt-a/big.bin")" = "$sum_src"

# ---- 2. metadata reaches B; B reads on demand over the impaired path --------
if wait_for 60 same_size "$T/mnt-a/big.bin" "$T/mnt-b/big.bin" &&
   wait_for 30 same_size "$T/mnt-a/small-5.txt" "$T/mnt-b/small-5.txt"; then
    ok "metadata reaches B ($(( $(now_ms) - t0 )) ms after the copy began)"
else
    bad "metadata reaches B within 60 s (nothing after this can pass)"
    finish
fi
t1=$(now_ms)
sum_b=$(tsum "${BIG_READ_S:-100}" "$T/mnt-b/big.bin")
t2=$(now_ms)
ms=$((t2 - t1)); [ $ms -gt 0 ] || ms=1
rate=$(awk -v b=$((BIG_MIB << 20)) -v ms=$ms 'BEGIN { printf "%.1f", b / ms / 1000 }')
if [ "$sum_b" = "$sum_src" ]; then
    ok "$BIG_MIB MiB file reads on B with the same sha256, fetched from A in $ms ms = $rate MB/s"
else
    bad "$BIG_MIB MiB file on B: sha256 '$sum_b', expected '$sum_src' (after $ms ms)"
fi
smalls_equal() {
    local i
    for i in 1 2 3 4 5; do
        [ "$(timeout 30 cat "$T/mnt-b/small-$i.txt")" = "small file $i written on A" ] || return 1
    done
}
check "small files read on B with the contents written on A" smalls_equal
wait_for 30 same_size "$T/mnt-a/tree/deep/er/docs/ARCHITECTURE.md" "$T/mnt-b/tree/deep/er/docs/ARCHITECTURE.md"
check "tree written on A is identical on B (diff -r)" \
    timeout -k 5 60 diff -r "$T/mnt-a/tree" "$T/mnt-b/tree"

# ---- 3. a rename and a delete on A reach B ---------------------------------
# (each "gone on B" counts only if B had it before)
had_old=no had_file=no had_dir=no
[ -f "$T/mnt-b/big.bin" ] && had_old=yes
[ -f "$T/mnt-b/small-3.txt" ] && had_file=yes
[ -d "$T/mnt-b/tree/net" ] && had_dir=yes
mv "$T/mnt-a/big.bin" "$T/mnt-a/tree/deep/big-renamed.bin"
rm "$T/mnt-a/small-3.txt"
rm -r "$T/mnt-a/tree/net"
check "rename reaches B" wait_for 30 test -f "$T/mnt-b/tree/deep/big-renamed.bin"
gone_on_b() { [ "$1" = yes ] && wait_for 30 sh -c "! test -e '$2'"; }   # HAD PATH
check "old name is gone on B" gone_on_b $had_old "$T/mnt-b/big.bin"
check "file delete reaches B" gone_on_b $had_file "$T/mnt-b/small-3.txt"
check "directory delete reaches B" gone_on_b $had_dir "$T/mnt-b/tree/net"
check "renamed file still reads on B" test "$(tsum 60 "$T/mnt-b/tree/deep/big-renamed.bin")" = "$sum_src"

# ---- 4. changes made on B reach A ------------------------------------------
echo "edited on B" > "$T/mnt-b/small-1.txt"
mkdir "$T/mnt-b/from-b"
head -c $((3 << 20)) /dev/urandom > "$T/mnt-b/from-b/data.bin"
sum_fb=$(tsum 30 "$T/mnt-b/from-b/data.bin")
check "an edit on B reaches A" wait_for 30 sh -c "grep -q 'edited on B' '$T/mnt-a/small-1.txt'"
if wait_for 30 same_size "$T/mnt-b/from-b/data.bin" "$T/mnt-a/from-b/data.bin" &&
   [ "$(tsum 60 "$T/mnt-a/from-b/data.bin")" = "$sum_fb" ]; then
    ok "a file made on B reads on A with the same sha256"
else
    bad "a file made on B reads on A with the same sha256"
fi
check "listings are identical on A and B" sh -c \
    "[ \"\$(cd '$T/mnt-a' && find . -printf '%y %m %s %p\n' | sort)\" = \"\$(cd '$T/mnt-b' && find . -printf '%y %m %s %p\n' | sort)\" ]"

# ---- 5. the path really was impaired ----------------------------------------
timeout 10 "$L" status "$T/mnt-b" >"$T/status-b" 2>&1
grep -E 'address|rtt|received' "$T/status-b" | sed "s/^ */     B status: /"
rtt=$(sed -nE 's/.* rtt ([0-9.]+) ms.*/\1/p' "$T/status-b" | head -n1)
check "B's QUIC connections measure the relay's round trip (rtt ${rtt:-?} ms >= 39 ms)" \
    awk -v r="${rtt:-0}" 'BEGIN { exit !(r >= 39) }'
kill -USR1 "$pid_r"    # it prints its counts so far
wait_for 5 sh -c "[ \$(grep -c ' replies:' '$T/relay.err') -ge 2 ]"
counts=$(grep -E ' (to target|replies):' "$T/relay.err" | tail -4)   # per map and direction
sed 's/^landro-impair: /     relay: /' <<<"$counts"
# The relay's own counts: every direction that carried traffic held its
# datagrams >= 19.5 ms on average, every one that carried > 1000 lost some.
verdict=$(awk '
    {
        n++
        for (i = 1; i <= NF; i++) {
            if ($(i + 1) == "in,") inn = $i
            if ($(i + 1) == "lost") lost = $i
            if ($i == "mean") mean = $(i + 1)
        }
        if (inn > 1000 && lost == 0) bad = 1
        if (inn > 0 && mean + 0 < 19.5) bad = 1
        tot += inn; totlost += lost
    }
    END { printf "%s %d %d %.2f\n", (n == 4 && !bad && totlost > 0) ? "good" : "bad",
                 totlost, tot, tot ? 100 * totlost / tot : 0 }' <<<"$counts")
read -r verdict lost total pct <<<"$verdict"
check "relay lost $lost of $total datagrams ($pct %) and held the rest >= 19.5 ms on average, each way" \
    test "$verdict" = good
# What crossed into B is what B read, plus transport overhead and the
# resends of lost datagrams: no chunk was sent twice wholesale (on a slow
# link read-ahead fetches gave up, and their bytes, mostly sent anyway,
# were thrown away and asked for again: 2.9 times the bytes read).
into_b=$(awk '
    /7402=10.201.2.1:7402 to target:|7401=10.201.1.1:7401 replies:/ {
        for (i = 1; i < NF; i++) if ($i == "sent") { v = $(i + 1); gsub(/[(]/, "", v); s += v }
    }
    END { printf "%d\n", s }' <<<"$counts")
read_b=$(( (BIG_MIB << 20) + $(du -sb store net docs | awk '{ s += $1 } END { print s }') ))
check "the relay carried $into_b bytes into B for the $read_b bytes B read (at most 1.5 times)" \
    awk -v i="$into_b" -v r="$read_b" 'BEGIN { exit !(i > 0 && i <= 1.5 * r) }'

# ---- 6. clean unmount ------------------------------------------------------
timeout 30 "$L" unmount "$T/mnt-b" >/dev/null 2>&1
timeout 30 "$L" unmount "$T/mnt-a" >/dev/null 2>&1
check "both daemons exit after unmount" wait_for 20 sh -c "! kill -0 $pid_a 2>/dev/null && ! kill -0 $pid_b 2>/dev/null"
finish
