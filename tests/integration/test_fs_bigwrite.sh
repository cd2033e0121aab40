#!/usr/bin/env bash
# test_fs_bigwrite.sh - writes far past FS_STAGE_MAX_BYTES (32 MiB), where
# full stages are committed by the background committer while the writer
# goes on: every byte written so far reads back right through a second
# handle at any moment (committed, being committed, or staged), fstat shows
# the size written so far, a truncate and an overwrite in the middle of
# the stream land in order, and after fsync and a remount the file is
# exactly what was written. Then three files written at random places at
# once, each far past FS_STAGE_MAX_RANGES (4096) ranges and the young
# array of fs/stage.c, so their stages commit at the range bound while
# writes go on: the same checks.
. "$(dirname "$0")/test_fs_lib.sh"

fs_init || { bad "landro init"; fs_finish; exit 1; }
check "mount" fs_mount

cat > "$work/stream.py" <<'PY'
import os, random, sys
path, ref = sys.argv[1], sys.argv[2]
MB = 1 << 20
rng = random.Random(5)
def block(i):
    return rng.randbytes(MB) if i % 3 else bytes([i & 0xff]) * MB
w = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
r = os.open(path, os.O_RDONLY)
data = bytearray()
errors = []
for i in range(160):                      # 160 MiB: five stages or more
    b = block(i)
    os.pwrite(w, b, len(data))
    data += b
    if i == 70:                           # a truncate in the middle of the stream
        cut = len(data) - 3 * MB - 12345
        os.ftruncate(w, cut)
        del data[cut:]
    if i == 100:                          # an overwrite reaching back over staged bytes
        at = len(data) - 40 * MB + 777
        patch = rng.randbytes(5 * MB)
        os.pwrite(w, patch, at)
        data[at:at + len(patch)] = patch
    st = os.fstat(r)
    if st.st_size != len(data):
        errors.append("after write %d: size %d, expected %d" % (i, st.st_size, len(data)))
    for _ in range(3):
        off = rng.randrange(0, len(data))
        n = rng.randrange(1, 300000)
        got = os.pread(r, n, off)
        if got != bytes(data[off:off + n]):
            errors.append("after write %d: %d bytes at %d differ" % (i, n, off))
os.fsync(w)
os.close(w)
os.close(r)
open(ref, "wb").write(data)
for e in errors[:10]:
    print(e)
sys.exit(1 if errors else 0)
PY

check "160 MiB stream: reads and sizes right at every step" timeout 300 $PY "$work/stream.py" "$mnt/big" "$work/ref"
check "whole file right after close" cmp "$work/ref" "$mnt/big"
check "unmount" fs_unmount
check "remount" fs_mount
check "whole file right after remount" cmp "$work/ref" "$mnt/big"
cat > "$work/scatter.py" <<'PY'
import os, random, sys
d, refdir = sys.argv[1], sys.argv[2]
SIZE, NW = 80 << 20, 20000
rng = random.Random(9)
names = ["s%d" % k for k in range(3)]
data = [bytearray(rng.randbytes(SIZE)) for _ in names]
w, r = [], []
for k, n in enumerate(names):
    fd = os.open(os.path.join(d, n), os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    os.write(fd, data[k])
    os.fsync(fd)
    w.append(fd)
    r.append(os.open(os.path.join(d, n), os.O_RDONLY))
errors = []
for i in range(NW):
    for k in range(3):
        if i % 10 == 9:                   # unaligned, any length
            n = rng.randrange(1, 9000)
            off = rng.randrange(0, SIZE - n)
        else:
            n = 4096
            off = rng.randrange(0, SIZE // 4096) * 4096
        b = rng.randbytes(n)
        os.pwrite(w[k], b, off)
        data[k][off:off + n] = b
    if i % 2000 == 1999:
        for k in range(3):
            for _ in range(20):
                off = rng.randrange(0, SIZE)
                n = rng.randrange(1, 100000)
                if os.pread(r[k], n, off) != bytes(data[k][off:off + n]):
                    errors.append("file %d after %d writes: %d bytes at %d differ" % (k, i + 1, n, off))
for k, n in enumerate(names):
    os.fsync(w[k])
    os.close(w[k])
    os.close(r[k])
    open(os.path.join(refdir, n), "wb").write(data[k])
for e in errors[:10]:
    print(e)
sys.exit(1 if errors else 0)
PY

check "three files, 20000 scattered writes each at once: reads right" timeout 600 \
    $PY "$work/scatter.py" "$mnt" "$work"
for k in 0 1 2; do
    check "scattered file $k right after close" cmp "$work/s$k" "$mnt/s$k"
done
check "unmount after the scattered writes" fs_unmount
check "remount after the scattered writes" fs_mount
for k in 0 1 2; do
    check "scattered file $k right after remount" cmp "$work/s$k" "$mnt/s$k"
done
check "unmount at the end" fs_unmount
fs_finish
