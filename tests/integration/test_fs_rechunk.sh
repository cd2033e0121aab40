#!/usr/bin/env bash
# test_fs_rechunk.sh - small writes into a file's data commit as chunks of
# their own (fs.h, "Small writes") and the daemon re-chunks them later:
# after random 4 KiB writes with fsyncs the file has more extents than a
# fresh copy of the same bytes; once the writes have been quiet for a few
# seconds (the file still open) it is cut exactly as that fresh copy, with
# the same bytes and mtime; a writer that never pauses has its file
# re-chunked once its isolated writes pass the bound; writes still
# pending at an unmount are re-chunked then; every state reads right,
# survives a remount and leaves a store landro-fsck finds clean.
. "$(dirname "$0")/test_fs_lib.sh"

fs_init || { bad "landro init"; fs_finish; exit 1; }
check "mount (debug log)" fs_mount -d

# total PATH: how many extents the file has (user.landro.chunks "L/T").
total() { local v; v=$(getfattr --only-values -n user.landro.chunks "$1" 2>/dev/null) && echo "${v#*/}"; }

head -c $((24 << 20)) /dev/urandom > "$work/ref"
cp "$work/ref" "$mnt/db"
n0=$(total "$mnt/db")
check "a 24 MiB file is cut in chunks of about 64 KiB ($n0 extents)" test "${n0:-0}" -ge 200

# Random 4 KiB writes (300, an fsync after every 50), the same on the
# reference; the file stays open while we look at it.
cat > "$work/rw.py" <<'PY'
import os, random, sys, time
sys.path.insert(0, os.environ["TESTDIR"])
from scatter_write import scatter
path, ref, mode = sys.argv[1], sys.argv[2], sys.argv[3]
rnd = random.Random(7)
fd, rfd = os.open(path, os.O_RDWR), os.open(ref, os.O_RDWR)
def total():
    return int(os.getxattr(path, "user.landro.chunks").split(b"/")[1])
def rounds(n, every):
    scatter(fd, rfd, rnd, n, every)
if mode == "quiet":
    # Write, then wait with the file open until it is cut like a fresh
    # copy (want = the fresh copy's extent count, from argv).
    want = int(sys.argv[4])
    rounds(300, 50)
    print("after", total())
    sys.stdout.flush()
    mtime = os.fstat(fd).st_mtime_ns
    end = time.time() + 20
    while time.time() < end and total() != want:
        time.sleep(0.2)
    print("quiet", total(), int(os.fstat(fd).st_mtime_ns == mtime))
else:
    # Never quiet: write until the daemon says it re-chunked the file
    # because of the bound (log in argv), at most 60 s.
    log = sys.argv[4]
    start = os.path.getsize(log)
    end = time.time() + 60
    seen = False
    while time.time() < end and not seen:
        rounds(500, 500)
        with open(log) as f:
            f.seek(start)
            seen = any("re-chunked" in l for l in f)
    print("bound", int(seen))
os.close(fd)
os.close(rfd)
PY

cp "$work/ref" "$work/ref2"
# The fresh copy's count is only known after the writes: run the writes on
# a scratch copy of the reference first to learn the final bytes.
python3 - "$work/ref2" <<'PY'
import os, random, sys
rnd = random.Random(7)
fd = os.open(sys.argv[1], os.O_RDWR)
nblk = os.fstat(fd).st_size // 4096
for i in range(300):
    buf, off = rnd.randbytes(4096), rnd.randrange(nblk) * 4096
    os.pwrite(fd, buf, off)
os.close(fd)
PY
cp "$work/ref2" "$mnt/fresh"
want=$(total "$mnt/fresh")
out=$(TESTDIR="$(dirname "$0")" python3 "$work/rw.py" "$mnt/db" "$work/ref" quiet "$want")
after=$(sed -n 's/^after //p' <<<"$out")
read -r _ quiet same_mtime < <(grep '^quiet' <<<"$out")
check "right after 300 isolated writes the file has more extents ($after) than a fresh copy ($want)" \
    test "${after:-0}" -gt "$((want + 200))"
check "quiet for a few seconds (still open), it is cut as the fresh copy ($quiet = $want extents)" \
    test "${quiet:-x}" = "$want"
check "re-chunking kept the file's mtime" test "${same_mtime:-0}" = 1
check "the file's bytes are the reference's" cmp "$mnt/db" "$work/ref"
check "the fresh copy and the re-chunked file are the same bytes" cmp "$mnt/db" "$mnt/fresh"
check "the daemon logged the re-chunk" grep -qE "re-chunked [0-9]+ bytes of inode [0-9]+ after [0-9]+ small writes" "$work/daemon.log"

# A writer that never pauses: the bound (16384 isolated writes) starts a
# re-chunk while it goes on.
out=$(TESTDIR="$(dirname "$0")" python3 "$work/rw.py" "$mnt/db" "$work/ref" busy "$work/daemon.log")
check "a writer that never pauses has its file re-chunked at the bound" \
    grep -qE "re-chunked .* after (1[6-9]|[2-9][0-9])[0-9]{3} small writes" "$work/daemon.log"
check "the file's bytes are the reference's while it is written" cmp "$mnt/db" "$work/ref"

# Isolated writes still pending when the file system is unmounted (well
# within the quiet period) are re-chunked at the unmount.
cp "$work/ref2" "$work/late.ref"
cp "$work/late.ref" "$mnt/late"
python3 "$(dirname "$0")/scatter_write.py" "$mnt/late" "$work/late.ref" 11 300 50
late_before=$(total "$mnt/late")
check "unmount" fs_unmount
check "landro-fsck -n finds the store clean" "$LANDRO" fsck -n "$store"
check "remount" fs_mount
check "after a remount the file's bytes are the reference's" cmp "$mnt/db" "$work/ref"
check "the file written just before the unmount reads right" cmp "$mnt/late" "$work/late.ref"
cp "$work/late.ref" "$mnt/late.fresh"
cp "$work/ref" "$mnt/db.fresh"
late_after=$(total "$mnt/late") late_want=$(total "$mnt/late.fresh")
check "its fragments ($late_before extents) were re-chunked at the unmount ($late_after = $late_want)" \
    test "${late_after:-x}" = "$late_want" -a "${late_before:-0}" -gt "$((late_want + 200))"
check "so were the never-pausing writer's last ones ($(total "$mnt/db") = $(total "$mnt/db.fresh"))" \
    test "$(total "$mnt/db")" = "$(total "$mnt/db.fresh")"
check "unmount again" fs_unmount
fs_finish
