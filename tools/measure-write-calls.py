#!/usr/bin/env python3
# tools/measure-write-calls.py [DIR] - how the size of each write call
# changes the cost of filling new page-cache pages (docs/PERFORMANCE.md,
# "Sequential write", session 5). Writes 1 GiB into a new file in DIR
# (default /tmp) with pwritev of N iovecs of 68 KiB taken in turn from a
# 64 MiB buffer, for N = 14, 28 and 64 (about 1, 2 and 4.35 MiB per call,
# 64 being LMDB's pattern), PAUSE seconds (default 6) of idle before each,
# ROUNDS times (default 3); prints the seconds of the writes (before the
# fdatasync). Not part of make bench.
import os, sys, time
d = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
pause = float(os.environ.get("PAUSE", "6"))
rounds = int(os.environ.get("ROUNDS", "3"))
buf = bytearray(os.urandom(1 << 20)) * 64
view = memoryview(buf)
IOL, TOTAL = 68 << 10, 1 << 30
for r in range(rounds):
    for n in (14, 28, 64):
        time.sleep(pause)
        path = os.path.join(d, "landro-write-calls.%d" % os.getpid())
        fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        done = pos = 0
        t = time.monotonic()
        while done < TOTAL:
            iov = []
            for _ in range(n):
                if pos + IOL > len(buf):
                    pos = 0
                iov.append(view[pos:pos + IOL])
                pos += IOL
            done += os.pwritev(fd, iov, done)
        w = time.monotonic() - t
        os.fdatasync(fd)
        os.close(fd)
        os.unlink(path)
        print("round %d: %2d x 68 KiB per call (%.2f MiB): %.2f s" % (r + 1, n, n * IOL / 2**20, w))
