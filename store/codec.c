/*
 * codec.c - encoders and bounds-checked decoders of the store's values
 * (layouts in store.h). Decoders reject anything out of range with
 * -LR_ECORRUPT and never read past the given length; they are fuzzed by
 * tests/fuzz/fuzz_st_*.c.
 */
#include "store_int.h"

#include <dirent.h>
#include <sys/stat.h>

void st__put_ts(uint8_t *p, struct timespec ts)
{
    lr_put_le64(p, (uint64_t)ts.tv_sec);
    lr_put_le32(p + 8, (uint32_t)ts.tv_nsec);
}

int st__get_ts(const uint8_t *p, struct timespec *ts)
{
    ts->tv_sec = (time_t)(int64_t)lr_get_le64(p);
    uint32_t ns = lr_get_le32(p + 8);
    if (ns >= 1000000000u)
        return LR_ECORRUPT;
    ts->tv_nsec = (long)ns;
    return 0;
}

size_t st_inode_encode(const struct st_inode *in, uint8_t *b, size_t cap)
{
    size_t need = ST_INODE_LEN + (size_t)in->nvv * 16;
    if (in->nvv > ST_VV_MAX || cap < need)
        return 0;
    memset(b, 0, ST_INODE_LEN);
    b[0] = 1;
    lr_put_le16(b + 2, in->nvv);
    lr_put_le32(b + 4, in->mode);
    lr_put_le32(b + 8, in->uid);
    lr_put_le32(b + 12, in->gid);
    lr_put_le32(b + 16, in->nlink);
    lr_put_le32(b + 20, in->flags);
    lr_put_le64(b + 24, in->size);
    lr_put_le64(b + 32, in->rdev);
    memcpy(b + 40, in->fid, 16);
    st__put_ts(b + 56, in->atime);
    st__put_ts(b + 68, in->mtime);
    st__put_ts(b + 80, in->ctime);
    st__put_ts(b + 92, in->btime);
    lr_put_le64(b + 104, in->parent);
    memcpy(b + 112, in->writer, 8);
    for (uint16_t i = 0; i < in->nvv; i++) {
        memcpy(b + ST_INODE_LEN + 16 * i, in->vv[i].dev, 8);
        lr_put_le64(b + ST_INODE_LEN + 16 * i + 8, in->vv[i].ctr);
    }
    return need;
}

int st_inode_decode(const void *buf, size_t len, struct st_inode *out)
{
    const uint8_t *b = buf;
    if (len < ST_INODE_LEN || b[0] != 1)
        return LR_ECORRUPT;
    uint16_t nvv = lr_get_le16(b + 2);
    if (nvv > ST_VV_MAX || len != ST_INODE_LEN + (size_t)nvv * 16)
        return LR_ECORRUPT;
    uint64_t ino = out->ino;
    memset(out, 0, sizeof(*out));
    out->ino = ino;
    out->nvv = nvv;
    out->mode = lr_get_le32(b + 4);
    switch (out->mode & S_IFMT) {
    case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO:
    case S_IFCHR: case S_IFBLK: case S_IFSOCK:
        break;
    default:
        return LR_ECORRUPT;
    }
    if (out->mode & ~(uint32_t)(S_IFMT | 07777))
        return LR_ECORRUPT;
    out->uid = lr_get_le32(b + 8);
    out->gid = lr_get_le32(b + 12);
    out->nlink = lr_get_le32(b + 16);
    out->flags = lr_get_le32(b + 20);
    out->size = lr_get_le64(b + 24);
    if (out->size > (uint64_t)INT64_MAX)
        return LR_ECORRUPT;
    out->rdev = lr_get_le64(b + 32);
    memcpy(out->fid, b + 40, 16);
    if (st__get_ts(b + 56, &out->atime) || st__get_ts(b + 68, &out->mtime) ||
        st__get_ts(b + 80, &out->ctime) || st__get_ts(b + 92, &out->btime))
        return LR_ECORRUPT;
    out->parent = lr_get_le64(b + 104);
    memcpy(out->writer, b + 112, 8);
    for (uint16_t i = 0; i < nvv; i++) {
        memcpy(out->vv[i].dev, b + ST_INODE_LEN + 16 * i, 8);
        out->vv[i].ctr = lr_get_le64(b + ST_INODE_LEN + 16 * i + 8);
    }
    return 0;
}

void st_chunkref_encode(const struct st_chunkref *in, uint8_t b[ST_CHUNKREF_LEN])
{
    memset(b, 0, ST_CHUNKREF_LEN);
    b[0] = 1;
    b[1] = in->flags;
    lr_put_le32(b + 4, in->len);
    lr_put_le64(b + 8, in->refcount);
    lr_put_le64(b + 16, in->last_use);
    lr_put_le32(b + 24, in->peers);
}

int st_chunkref_decode(const void *buf, size_t len, struct st_chunkref *out)
{
    const uint8_t *b = buf;
    if (len != ST_CHUNKREF_LEN || b[0] != 1)
        return LR_ECORRUPT;
    if (b[1] & ~(ST_CHUNK_LOCAL | ST_CHUNK_PINNED))
        return LR_ECORRUPT;
    out->flags = b[1];
    out->len = lr_get_le32(b + 4);
    if (out->len == 0 || out->len > ST_CDC_MAX_LIMIT)
        return LR_ECORRUPT;
    out->refcount = lr_get_le64(b + 8);
    out->last_use = lr_get_le64(b + 16);
    out->peers = lr_get_le32(b + 24);
    return 0;
}

int st_extent_decode(const void *key, size_t klen, const void *val, size_t vlen,
                     uint64_t *ino, struct st_extent *out)
{
    const uint8_t *k = key, *v = val;
    if (klen != 16 || vlen != ST_EXTENT_LEN || v[0] != 1)
        return LR_ECORRUPT;
    *ino = lr_get_be64(k);
    out->off = lr_get_be64(k + 8);
    out->len = lr_get_le32(v + 4);
    out->chunk_off = lr_get_le32(v + 8);
    if (out->len == 0 || out->len > ST_CDC_MAX_LIMIT ||
        out->chunk_off >= ST_CDC_MAX_LIMIT ||
        (uint64_t)out->chunk_off + out->len > ST_CDC_MAX_LIMIT ||
        out->off > (uint64_t)INT64_MAX - out->len)
        return LR_ECORRUPT;
    memcpy(out->hash.b, v + 12, ST_HASH_LEN);
    return 0;
}

void st__extent_encode(const struct st_extent *e, uint8_t v[ST_EXTENT_LEN])
{
    memset(v, 0, ST_EXTENT_LEN);
    v[0] = 1;
    lr_put_le32(v + 4, e->len);
    lr_put_le32(v + 8, e->chunk_off);
    memcpy(v + 12, e->hash.b, ST_HASH_LEN);
}

int st_dirent_decode(const void *key, size_t klen, const void *val, size_t vlen, struct st_dirent *out)
{
    const uint8_t *k = key, *v = val;
    if (klen < 9 || klen > 8 + ST_NAME_MAX || vlen != ST_DIRENT_LEN || v[0] != 1)
        return LR_ECORRUPT;
    size_t n = klen - 8;
    if (memchr(k + 8, '/', n) || memchr(k + 8, 0, n))
        return LR_ECORRUPT;
    out->parent = lr_get_be64(k);
    out->namelen = (uint16_t)n;
    memcpy(out->name, k + 8, n);
    out->name[n] = 0;
    out->type = v[1];
    out->child = lr_get_le64(v + 8);
    if (out->child == 0)
        return LR_ECORRUPT;
    return 0;
}

/* ---- version vectors ---------------------------------------------------- */

static uint64_t vv_get(const struct st_vv_entry *v, uint16_t n, const uint8_t dev[8])
{
    for (uint16_t i = 0; i < n; i++)
        if (!memcmp(v[i].dev, dev, 8))
            return v[i].ctr;
    return 0;
}

int st_vv_compare(const struct st_vv_entry *a, uint16_t na, const struct st_vv_entry *b, uint16_t nb)
{
    int a_more = 0, b_more = 0;
    for (uint16_t i = 0; i < na; i++) {
        uint64_t o = vv_get(b, nb, a[i].dev);
        if (a[i].ctr > o) a_more = 1;
        if (a[i].ctr < o) b_more = 1;
    }
    for (uint16_t i = 0; i < nb; i++)
        if (b[i].ctr > vv_get(a, na, b[i].dev))
            b_more = 1;
    if (a_more && b_more) return ST_VV_CONCURRENT;
    if (a_more) return ST_VV_GREATER;
    if (b_more) return ST_VV_LESS;
    return ST_VV_EQUAL;
}

/* Set dev's counter to at least ctr; when the vector is full, the entry
 * with the smallest counter gives way (volumes have far fewer devices). */
static void vv_raise(struct st_vv_entry *a, uint16_t *na, const uint8_t dev[8], uint64_t ctr)
{
    for (uint16_t i = 0; i < *na; i++)
        if (!memcmp(a[i].dev, dev, 8)) {
            if (a[i].ctr < ctr)
                a[i].ctr = ctr;
            return;
        }
    uint16_t slot = *na;
    if (*na < ST_VV_MAX) {
        (*na)++;
    } else {
        slot = 0;
        for (uint16_t i = 1; i < ST_VV_MAX; i++)
            if (a[i].ctr < a[slot].ctr)
                slot = i;
    }
    memcpy(a[slot].dev, dev, 8);
    a[slot].ctr = ctr;
}

void st_vv_merge(struct st_vv_entry *a, uint16_t *na, const struct st_vv_entry *b, uint16_t nb)
{
    for (uint16_t i = 0; i < nb; i++)
        vv_raise(a, na, b[i].dev, b[i].ctr);
}

void st_vv_bump(struct st_inode *in, const uint8_t dev[8])
{
    vv_raise(in->vv, &in->nvv, dev, vv_get(in->vv, in->nvv, dev) + 1);
    memcpy(in->writer, dev, 8);
}

uint8_t st_mode_dtype(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return DT_DIR;
    case S_IFLNK: return DT_LNK;
    case S_IFIFO: return DT_FIFO;
    case S_IFSOCK: return DT_SOCK;
    case S_IFCHR: return DT_CHR;
    case S_IFBLK: return DT_BLK;
    default: return DT_REG;
    }
}
