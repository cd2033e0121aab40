/*
 * lmdb_io.c - LMDB's commit writes, cut into pieces of at most
 * ST_WRITE_PIECE bytes.
 *
 * LMDB (without MDB_WRITEMAP, see store.c) writes a commit's dirty pages
 * with writev(), up to 64 contiguous runs per call; a chunk is one run of
 * overflow pages, so a commit of file data writes about 4 MiB per call.
 * Since Linux 6.16 ext4 gives a file large page-cache folios sized by the
 * write in progress: a call of 2 MiB or more fills 2 MiB folios, and these
 * can only come from whole free 2 MiB blocks. In a virtual machine with
 * free page reporting (virtio-balloon, page_reporting_order 9) those are
 * exactly the blocks the guest has handed back to the host, so every page
 * of them is faulted in again on first touch, inside the kernel's copy.
 * On the development VM that made a 1 GiB sequential write take 2.0-2.2 s
 * of the committer's system time instead of 0.4 s (docs/PERFORMANCE.md,
 * "Sequential write"). Pieces of 1 MiB get smaller folios, which come from
 * the free pages the guest still holds.
 *
 * How calls get here: the link wraps writev (-Wl,--wrap=writev in the
 * Makefile) and links LMDB statically, so every writev() made by an object
 * in the link - LMDB's, and nothing else in landro calls writev - comes to
 * __wrap_writev; shared libraries keep libc's (libfuse's replies on
 * /dev/fuse must stay one write each).
 *
 * Semantics are writev(2)'s for a regular file: the byte count written,
 * short only when a piece came back short or failed after others were
 * written; -1 with errno when the first piece fails. No state; any thread.
 */
#include "store_int.h"

#include <sys/uio.h>

ssize_t __wrap_writev(int fd, const struct iovec *iov, int iovcnt)
{
    ssize_t done = 0;
    int i = 0;
    while (i < iovcnt) {
        /* One piece: the iovecs from i that fit in ST_WRITE_PIECE (at
         * least one, whatever its size). */
        int j = i;
        size_t len = 0;
        while (j < iovcnt && (j == i || len + iov[j].iov_len <= ST_WRITE_PIECE))
            len += iov[j++].iov_len;
        ssize_t n = __real_writev(fd, iov + i, j - i);
        if (n < 0)
            return done ? done : -1;
        done += n;
        if ((size_t)n < len)
            return done;
        i = j;
    }
    return done;
}
