#!/usr/bin/env python3
"""scatter_write.py FILE REF SEED N EVERY - N random 4 KiB writes at
4 KiB-aligned offsets of FILE (a file on a mount), the same bytes at the
same offsets of REF (its reference copy), with an fsync of FILE after
every EVERY writes; random.Random(SEED) picks bytes and offsets, so a
run can be repeated. Used by the re-chunk tests, which also import
scatter() to write while they hold the file open."""
import os
import random
import sys


def scatter(fd, rfd, rnd, n, every):
    """n writes to the open fd and rfd (see above), drawn from rnd."""
    nblk = os.fstat(fd).st_size // 4096
    for i in range(n):
        buf, off = rnd.randbytes(4096), rnd.randrange(nblk) * 4096
        os.pwrite(fd, buf, off)
        os.pwrite(rfd, buf, off)
        if (i + 1) % every == 0:
            os.fsync(fd)


if __name__ == "__main__":
    path, ref = sys.argv[1], sys.argv[2]
    seed, n, every = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    fd, rfd = os.open(path, os.O_RDWR), os.open(ref, os.O_RDWR)
    scatter(fd, rfd, random.Random(seed), n, every)
    os.close(fd)
    os.close(rfd)
