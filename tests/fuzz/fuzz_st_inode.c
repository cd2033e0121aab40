/* fuzz_st_inode.c - libFuzzer target for inode values (layout in store.h):
 * st_inode_decode never crashes or reads past len; when it accepts, the
 * decoded fields re-encode to the input bytes (the reserved byte 1 read as
 * zero) and decode again to the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_inode(const struct st_inode *a, const struct st_inode *b)
{
    if (a->mode != b->mode || a->uid != b->uid || a->gid != b->gid || a->nlink != b->nlink ||
        a->flags != b->flags || a->size != b->size || a->rdev != b->rdev ||
        a->parent != b->parent || a->nvv != b->nvv || memcmp(a->fid, b->fid, 16) ||
        memcmp(a->writer, b->writer, 8))
        return 0;
    const struct timespec *ta[] = { &a->atime, &a->mtime, &a->ctime, &a->btime };
    const struct timespec *tb[] = { &b->atime, &b->mtime, &b->ctime, &b->btime };
    for (int i = 0; i < 4; i++)
        if (ta[i]->tv_sec != tb[i]->tv_sec || ta[i]->tv_nsec != tb[i]->tv_nsec)
            return 0;
    for (uint16_t i = 0; i < a->nvv; i++)
        if (memcmp(a->vv[i].dev, b->vv[i].dev, 8) || a->vv[i].ctr != b->vv[i].ctr)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so an over-read is caught by ASan. */
    uint8_t *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    static struct st_inode a, b;
    memset(&a, 0, sizeof(a));
    a.ino = 42;
    if (st_inode_decode(in, size, &a) != 0) {
        free(in);
        return 0;
    }
    if (a.ino != 42 || a.nvv > ST_VV_MAX)
        abort(); /* decode must keep ino (the key's business) */
    size_t cap = ST_INODE_LEN + 16 * ST_VV_MAX;
    uint8_t *out = malloc(cap);
    size_t n = st_inode_encode(&a, out, cap);
    if (n != size)
        abort();
    in[1] = 0; /* reserved */
    if (memcmp(out, in, size))
        abort();
    memset(&b, 0xa5, sizeof(b));
    b.ino = 42;
    if (st_inode_decode(out, n, &b) != 0 || !same_inode(&a, &b))
        abort();
    /* a smaller buffer than needed is refused, not overrun */
    if (n > 0 && st_inode_encode(&a, out, n - 1) != 0)
        abort();
    free(out);
    free(in);
    return 0;
}
