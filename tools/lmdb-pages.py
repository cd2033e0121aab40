#!/usr/bin/env python3
# tools/lmdb-pages.py DATA.MDB OFFSET... - which tree of a landro store each
# written page belongs to: walks the LMDB file from its newest meta page
# (free list, main db, every named db and their overflow pages) and counts
# the given byte offsets by owner ("meta" for the two meta pages, "?" for
# pages no tree holds now). The offsets are those of a commit's pwrite64 /
# writev calls, e.g. from `strace -f -e trace=pwrite64,writev,lseek -p PID`
# around one operation; copy data.mdb right after it, before the next
# commit. docs/PERFORMANCE.md ("Unlink") used it to count an unlink's pages.
# Assumes 4 KiB pages and a 64-bit LMDB file (what landro makes here).
import collections, struct, sys
if len(sys.argv) < 2:
    sys.exit('usage: tools/lmdb-pages.py DATA.MDB OFFSET...')
f = open(sys.argv[1], 'rb').read(); PS = 4096
def page(n): return f[n*PS:(n+1)*PS]
metas = []
for i in (0, 1):
    p = page(i); o = 16
    dbs = [struct.unpack_from('<IHHQQQQQ', p, o + 24 + 48*k) for k in (0, 1)]
    last, txn = struct.unpack_from('<QQ', p, o + 24 + 96)
    metas.append((txn, dbs))
txn, dbs = max(metas)
owner = {}
def walk(root, name):
    if root == 0xffffffffffffffff: return
    stack = [root]
    while stack:
        n = stack.pop(); p = page(n)
        flags, lower, upper = struct.unpack_from('<HHH', p, 10)
        owner[n] = name
        nk = (lower - 16) // 2
        for i in range(nk):
            ptr = struct.unpack_from('<H', p, 16 + 2*i)[0]
            lo, hi, fl, ks = struct.unpack_from('<HHHH', p, ptr)
            if flags & 1:
                stack.append(lo | hi << 16 | fl << 32)
            elif flags & 2:
                key = p[ptr+8:ptr+8+ks]
                if fl & 2 and name == 'main':
                    d = struct.unpack_from('<IHHQQQQQ', p, ptr+8+ks)
                    walk(d[7], key.decode(errors='replace'))
                elif fl & 1:
                    ov = struct.unpack_from('<Q', p, ptr+8+ks)[0]
                    npg = struct.unpack_from('<I', page(ov), 12)[0]
                    for k in range(npg): owner[ov+k] = name + '(ovf)'
walk(dbs[0][7], 'free'); walk(dbs[1][7], 'main')
offs = [int(x) for x in sys.argv[2:]]
print(collections.Counter(owner.get(o // PS, 'meta' if o < 2*PS else '?') for o in offs))
