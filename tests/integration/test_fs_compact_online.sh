#!/usr/bin/env bash
# test_fs_compact_online.sh - a mounted store gives a large delete's space
# back (fs.c, compact_tick; store.h, st_compact_open): after a 128 MiB
# file is deleted, data.mdb shrinks while the mount goes on serving, with
# a writer creating and reading back files the whole time; every file
# written before, during and after reads back whole, the store is clean
# for landro-fsck, and a remount keeps everything. While another process
# holds the store open, the daemon leaves it alone and tries again.
. "$(dirname "$0")/test_fs_lib.sh"

fs_init || { bad "landro init"; fs_finish; exit 1; }
check "mount (debug log)" fs_mount -d

len() { stat -c %s "$store/data.mdb"; }
mkdir -p "$work/ref"
for i in $(seq 20); do head -c $((RANDOM * 8 + 1)) /dev/urandom > "$work/ref/before$i"; done
cp "$work/ref"/before* "$mnt/"
head -c $((128 << 20)) /dev/urandom > "$mnt/big"
sync "$mnt/big"
grown=$(len)
check "a 128 MiB file makes data.mdb at least that long ($grown bytes)" test "$grown" -ge $((128 << 20))

# Another process with the store open (a read-only open holds the gate
# shared): the daemon must not compact under it.
"$PY" - "$store" "$work/holding" <<'PY' &
# Hold landro.lock's first byte shared, as every landro opener does.
import fcntl, os, sys, time
fd = os.open(os.path.join(sys.argv[1], "landro.lock"), os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 0, os.SEEK_SET)
open(sys.argv[2], "w").close()
time.sleep(10)
PY
holder=$!
wait_until 5 test -e "$work/holding"
rm "$mnt/big"
sleep 9
check "no compaction while another process has the store open" test "$(len)" -ge $((128 << 20))
check "the daemon said it put the compaction off" grep -q "another process has the store open" "$work/daemon.log"
free_mib() { "$LANDRO" status --json "$mnt" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["cache"]["free_bytes"] >> 20)'; }
before_free=$(free_mib)
check "status counts the deleted file's pages free (${before_free:-?} MiB)" test "${before_free:-0}" -ge 100
wait "$holder"

# A writer that keeps creating, checking and deleting files meanwhile,
# pausing for 0.3 s every 20 files (a copy that a commit overlaps is
# dropped, so a writer that never pauses puts compaction off).
cat > "$work/churn.py" <<'PY'
import hashlib, os, sys, time
d, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(d, exist_ok=True)
n = bad = 0
while not os.path.exists(stop):
    data = os.urandom(1000 + n % 7000)
    p = os.path.join(d, "f%06d" % n)
    with open(p, "wb") as f:
        f.write(data)
    with open(p, "rb") as f:
        bad += f.read() != data
    if n % 3 == 0:
        os.unlink(p)
    n += 1
    time.sleep(0.3 if n % 20 == 0 else 0.002)
open(out, "w").write("%d %d\n" % (n, bad))
PY
"$PY" "$work/churn.py" "$mnt/churn" "$work/stop" "$work/churned" &
churn=$!
shrunk() { [ "$(len)" -lt $((32 << 20)) ]; }
wait_until 60 shrunk
check "data.mdb shrinks while the mount serves a writer ($grown -> $(len) bytes)" shrunk
check "the daemon logged the compaction" wait_until 5 grep -q "store compacted" "$work/daemon.log"
after_free=$(free_mib)
check "after it status counts little free (${after_free:-?} MiB)" test "${after_free:-999}" -lt 16
sleep 1
touch "$work/stop"
wait "$churn"
read -r made wrong < "$work/churned"
check "the writer wrote $made files during it, each read back whole" test "${wrong:-1}" = 0 -a "${made:-0}" -gt 20

for i in $(seq 20); do head -c $((RANDOM * 8 + 1)) /dev/urandom > "$work/ref/after$i"; done
cp "$work/ref"/after* "$mnt/"
same() { local f; for f in "$work/ref"/*; do cmp -s "$f" "$mnt/${f##*/}" || return 1; done; }
check "files from before and after the compaction read back" same
check "unmount" fs_unmount
check "landro-fsck -n finds the store clean" "$LANDRO" fsck -n "$store"
check "mount again" fs_mount
check "after a remount every file reads back" same
churned=$(find "$mnt/churn" -type f | wc -l)
check "the writer's kept files are all there ($churned)" test "$churned" -eq $(( made - (made + 2) / 3 ))
check "unmount again" fs_unmount
fs_finish
