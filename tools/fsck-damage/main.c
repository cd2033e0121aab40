/*
 * landro-fsck-damage - builds a populated test store and damages it in one
 * precise way, for the landro-fsck test cases (tests/fsck/<case>/damage).
 * A test tool: it writes through store/raw.h, bypassing every invariant.
 *
 *   landro-fsck-damage populate STORE
 *   landro-fsck-damage SUBCOMMAND STORE ARGS...   (see usage())
 *
 * PATH arguments are paths inside the volume ("/docs/big"); IDX is the
 * index of an extent of that file in offset order (0 = first).
 * Exit 0 on success, 1 on failure (with a message), 2 on usage errors.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ns.h"
#include "peerrec.h"
#include "raw.h"
#include "store.h"

static const char *prog = "landro-fsck-damage";

static int die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s: %s\n", prog, what, lr_strerror(rc));
    return 1;
}

/* ---- populate --------------------------------------------------------- */

static uint64_t rng = 42;
static uint64_t rnd64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint8_t rnd8(void)
{
    return (uint8_t)(rnd64() >> 24);
}

static int mk(st_txn *t, uint64_t parent, const char *name, uint32_t mode, const char *target,
              uint64_t *ino)
{
    struct st_inode in;
    int rc = st_ns_create(t, parent, name, strlen(name), mode, 0, 0, 0, target,
                          target ? strlen(target) : 0, &in);
    if (rc == 0 && ino)
        *ino = in.ino;
    return rc;
}

static int wr(st_txn *t, uint64_t ino, const void *data, size_t len)
{
    struct st_wrange r = { 0, len, data };
    struct timespec ts = { 1700000000, 0 };
    return st_ns_write(t, ino, &r, 1, len, &ts, 0, NULL, NULL);
}

static int populate(const char *dir)
{
    st_store *st;
    int rc = st_open(dir, ST_OPEN_CREATE | ST_OPEN_EXCL, &st);
    if (rc)
        return die("cannot create store", rc);
    st_txn *t;
    if ((rc = st_txn_begin(st, ST_TXN_WRITE, &t)))
        goto out;
    uint8_t dev[ST_DEVICE_ID_LEN];
    memset(dev, 0x5a, sizeof(dev));
    uint64_t docs, sub, src, big, small, copy, code, empty;
    size_t bigl = 700 * 1024, copyl = 300 * 1024;
    uint8_t *data = malloc(bigl);
    if (!data) {
        rc = -ENOMEM;
        goto abort;
    }
    for (size_t i = 0; i < bigl; i++)
        data[i] = rnd8();
    char text[3000];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (i % 61 == 60) ? '\n' : (char)('a' + i % 26);
    const char hello[] = "hello, landro\n";
    struct st_inode lin;
    struct st_peerrec pr = { 0, 3, 1, { "192.0.2.7:7400" }, 0 };
    uint8_t prb[ST_PEERREC_MAX], pid[ST_DEVICE_ID_LEN];
    memset(pid, 0x77, sizeof(pid));
    int prl;
    if ((rc = st_meta_set_device(t, dev)) ||
        (rc = mk(t, ST_ROOT_INO, "docs", S_IFDIR | 0755, NULL, &docs)) ||
        (rc = mk(t, docs, "sub", S_IFDIR | 0750, NULL, &sub)) ||
        (rc = mk(t, ST_ROOT_INO, "src", S_IFDIR | 0755, NULL, &src)) ||
        (rc = mk(t, docs, "big", S_IFREG | 0644, NULL, &big)) ||
        (rc = wr(t, big, data, bigl)) ||
        (rc = mk(t, sub, "copy", S_IFREG | 0644, NULL, &copy)) ||
        (rc = wr(t, copy, data, copyl)) ||
        (rc = mk(t, docs, "small", S_IFREG | 0600, NULL, &small)) ||
        (rc = wr(t, small, hello, sizeof(hello) - 1)) ||
        (rc = st_ns_setxattr(t, small, "user.comment", "checked", 7, 0)) ||
        (rc = mk(t, src, "main.c", S_IFREG | 0644, NULL, &code)) ||
        (rc = wr(t, code, text, sizeof(text))) ||
        (rc = mk(t, src, "empty", S_IFREG | 0644, NULL, &empty)) ||
        (rc = st_ns_link(t, small, src, "link-to-small", 13, &lin)) ||
        (rc = mk(t, docs, "latest", S_IFLNK | 0777, "big", NULL)))
        goto abort;
    if ((prl = st_peerrec_encode(&pr, prb)) < 0 || (rc = st_peer_put(t, pid, prb, (size_t)prl))) {
        rc = prl < 0 ? prl : rc;
        goto abort;
    }
    free(data);
    data = NULL;
    rc = st_txn_commit(t);
    goto out;
abort:
    free(data);
    st_txn_abort(t);
out:
    st_close(st);
    if (rc)
        return die("cannot populate store", rc);
    return 0;
}

/* fill STORE MIB NFILES: a store holding MIB MiB of random data in NFILES
 * files (1000 per directory), written through the namespace API, for
 * tools/bench-fsck.sh. */
static int fill(const char *dir, const char *mib_s, const char *nfiles_s)
{
    uint64_t total = strtoull(mib_s, NULL, 10) << 20, nfiles = strtoull(nfiles_s, NULL, 10);
    if (!total || !nfiles)
        return 2;
    size_t per = (size_t)(total / nfiles);
    if (per == 0)
        per = 1;
    st_store *st;
    int rc = st_open(dir, ST_OPEN_CREATE | ST_OPEN_EXCL, &st);
    if (rc)
        return die("cannot create store", rc);
    uint8_t *buf = malloc(per);
    if (!buf) {
        st_close(st);
        return die("fill", -ENOMEM);
    }
    uint64_t dirino = 0;
    st_txn *t = NULL;
    for (uint64_t i = 0; i < nfiles && !rc; i++) {
        if (!t && (rc = st_txn_begin(st, ST_TXN_WRITE, &t)))
            break;
        char name[32];
        if (i % 1000 == 0) {
            snprintf(name, sizeof(name), "d%llu", (unsigned long long)(i / 1000));
            if ((rc = mk(t, ST_ROOT_INO, name, S_IFDIR | 0755, NULL, &dirino)))
                break;
        }
        /* Fresh pseudo-random bytes per file: no dedup. */
        uint64_t *w = (uint64_t *)(void *)buf;
        for (size_t j = 0; j < per / 8; j++)
            w[j] = rnd64();
        uint64_t ino;
        snprintf(name, sizeof(name), "f%llu", (unsigned long long)i);
        if ((rc = mk(t, dirino, name, S_IFREG | 0644, NULL, &ino)) || (rc = wr(t, ino, buf, per)))
            break;
        if (i % 64 == 63 || i + 1 == nfiles) {
            rc = st_txn_commit(t);
            t = NULL;
        }
    }
    if (t)
        st_txn_abort(t);
    free(buf);
    if (!rc)
        rc = st_sync(st);
    st_close(st);
    return rc ? die("fill", rc) : 0;
}

/* ---- helpers for the damage commands ---------------------------------- */

/* What a path names: the inode, the directory holding its last name, and
 * that name (the rest of the path from its last component on). */
struct name {
    uint64_t ino, parent;
    const char *last;
    size_t len;
};

static int resolve(st_txn *t, const char *path, struct name *nm)
{
    uint64_t cur = ST_ROOT_INO, par = ST_ROOT_INO;
    const char *p = path, *lastp = "";
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        struct st_dirent d;
        int rc = st_dirent_get(t, cur, p, n, &d);
        if (rc) {
            fprintf(stderr, "%s: no '%s' in the store\n", prog, path);
            return rc;
        }
        par = cur;
        cur = d.child;
        lastp = p;
        p += n;
    }
    nm->ino = cur;
    nm->parent = par;
    nm->last = lastp;
    nm->len = strlen(lastp);
    return 0;
}

/* k gets the inode-database key of the inode that path names. */
static int inode_key_of(st_txn *t, const char *path, uint8_t k[8])
{
    struct name nm;
    int rc = resolve(t, path, &nm);
    if (rc == 0)
        lr_put_be64(k, nm.ino);
    return rc;
}

/* *in gets the inode that path names. */
static int inode_of(st_txn *t, const char *path, struct st_inode *in)
{
    struct name nm;
    int rc = resolve(t, path, &nm);
    return rc ? rc : st_inode_get(t, nm.ino, in);
}

struct nth { size_t want, i; int found; struct st_extent e; };
static int nth_cb(uint64_t ino, const struct st_extent *e, void *arg)
{
    struct nth *n = arg;
    if (n->i++ == n->want) {
        n->e = *e;
        n->found = 1;
        return 1;
    }
    return 0;
}

/* Extent number idx (in offset order) of the file at path. */
struct ext {
    uint64_t ino;
    struct st_extent e;
};

static int extent_of(st_txn *t, const char *path, const char *idx, struct ext *x)
{
    struct name nm;
    int rc = resolve(t, path, &nm);
    if (rc)
        return rc;
    x->ino = nm.ino;
    struct nth n = { (size_t)strtoul(idx, NULL, 10), 0, 0, { 0 } };
    rc = st_extent_foreach(t, x->ino, 0, nth_cb, &n);
    if (rc < 0)
        return rc;
    if (!n.found) {
        fprintf(stderr, "%s: '%s' has no extent %s\n", prog, path, idx);
        return -ENOENT;
    }
    x->e = n.e;
    return 0;
}

static int unhex(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    size_t l = strlen(s);
    if (l % 2 || l / 2 > cap)
        return -EINVAL;
    for (size_t i = 0; i < l / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        out[i] = (uint8_t)v;
    }
    *n = l / 2;
    return 0;
}

static void ext_key(uint8_t k[16], uint64_t ino, uint64_t off)
{
    lr_put_be64(k, ino);
    lr_put_be64(k + 8, off);
}

static int extent_raw_del(st_txn *t, uint64_t ino, uint64_t off)
{
    uint8_t k[16];
    ext_key(k, ino, off);
    return st_raw_del(t, "extent", k, 16);
}

static void ext_val(uint8_t v[ST_EXTENT_LEN], const struct st_extent *e)
{
    memset(v, 0, ST_EXTENT_LEN);
    v[0] = 1;
    lr_put_le32(v + 4, e->len);
    lr_put_le32(v + 8, e->chunk_off);
    memcpy(v + 12, e->hash.b, ST_HASH_LEN);
}

static int inode_raw_put(st_txn *t, const struct st_inode *in)
{
    uint8_t k[8], v[ST_INODE_LEN + ST_VV_MAX * 16];
    size_t n = st_inode_encode(in, v, sizeof(v));
    lr_put_be64(k, in->ino);
    return st_raw_put(t, "inode", k, 8, v, n);
}

/* The dirent key of name/n in directory parent; returns its length. */
static size_t dirent_key(uint8_t k[8 + ST_NAME_MAX], uint64_t parent, const char *name, size_t n)
{
    lr_put_be64(k, parent);
    memcpy(k + 8, name, n);
    return 8 + n;
}

/* A raw directory entry: no backref, no check of child or type. */
static int dirent_raw_put(st_txn *t, uint64_t parent, const char *name, size_t n, uint64_t child,
                          uint8_t type)
{
    uint8_t k[8 + ST_NAME_MAX], v[ST_DIRENT_LEN] = { 1, type };
    size_t kl = dirent_key(k, parent, name, n);
    lr_put_le64(v + 8, child);
    return st_raw_put(t, "dirent", k, kl, v, sizeof(v));
}

/* A chunk of n bytes i * mul + add that no file holds; *h gets its hash. */
static void pattern_chunk(uint8_t *buf, size_t n, unsigned mul, unsigned add, st_hash *h)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(i * mul + add);
    st_hash_compute(buf, n, h);
}

/* ---- damage commands ------------------------------------------------- */

static int d_chunk_flip(st_txn *t, char **a)
{
    struct ext x;
    int rc = extent_of(t, a[0], a[1], &x);
    if (rc)
        return rc;
    const void *v;
    size_t vl;
    if ((rc = st_raw_get(t, "chunk", x.e.hash.b, ST_HASH_LEN, &v, &vl)))
        return rc;
    uint8_t *c = malloc(vl);
    if (!c)
        return -ENOMEM;
    memcpy(c, v, vl);
    c[vl / 2] ^= 0x40;
    rc = st_raw_put(t, "chunk", x.e.hash.b, ST_HASH_LEN, c, vl);
    free(c);
    return rc;
}

static int d_chunk_del(st_txn *t, char **a)
{
    struct ext x;
    int rc = extent_of(t, a[0], a[1], &x);
    return rc ? rc : st_raw_del(t, "chunk", x.e.hash.b, ST_HASH_LEN);
}

static int d_chunkref_del(st_txn *t, char **a)
{
    struct ext x;
    int rc = extent_of(t, a[0], a[1], &x);
    if (rc || (rc = st_raw_del(t, "chunkref", x.e.hash.b, ST_HASH_LEN)))
        return rc;
    return strcmp(a[2], "keep-bytes") ? st_raw_del(t, "chunk", x.e.hash.b, ST_HASH_LEN) : 0;
}

static int d_chunkref_set(st_txn *t, char **a)
{
    struct ext x;
    struct st_chunkref r;
    int rc = extent_of(t, a[0], a[1], &x);
    if (rc || (rc = st_chunk_info(t, &x.e.hash, &r)))
        return rc;
    uint64_t val = strtoull(a[3], NULL, 0);
    if (!strcmp(a[2], "refcount"))
        r.refcount = val;
    else if (!strcmp(a[2], "len"))
        r.len = (uint32_t)val;
    else if (!strcmp(a[2], "flags"))
        r.flags = (uint8_t)val;
    else if (!strcmp(a[2], "peers"))
        r.peers = (uint32_t)val;
    else
        return -EINVAL;
    uint8_t v[ST_CHUNKREF_LEN];
    st_chunkref_encode(&r, v);
    return st_raw_put(t, "chunkref", x.e.hash.b, ST_HASH_LEN, v, sizeof(v));
}

static int d_chunkref_raw(st_txn *t, char **a)
{
    struct ext x;
    uint8_t v[512];
    size_t n;
    int rc = extent_of(t, a[0], a[1], &x);
    if (rc || (rc = unhex(a[2], v, sizeof(v), &n)))
        return rc;
    return st_raw_put(t, "chunkref", x.e.hash.b, ST_HASH_LEN, v, n);
}

static int d_chunk_orphan(st_txn *t, char **a)
{
    uint8_t buf[5000];
    st_hash h;
    pattern_chunk(buf, sizeof(buf), 7, 3, &h);
    return st_chunk_put(t, &h, buf, sizeof(buf));
}

static int d_chunk_noref(st_txn *t, char **a)
{
    uint8_t buf[3000];
    st_hash h;
    pattern_chunk(buf, sizeof(buf), 13, 1, &h);
    return st_raw_put(t, "chunk", h.b, ST_HASH_LEN, buf, sizeof(buf));
}

/* The holder db's key (chunk hash ‖ peer id, id = 32 x byte). */
static void holder_key(uint8_t k[ST_HASH_LEN + ST_DEVICE_ID_LEN], const st_hash *h, const char *byte)
{
    memcpy(k, h->b, ST_HASH_LEN);
    memset(k + ST_HASH_LEN, (int)strtoul(byte, NULL, 0), ST_DEVICE_ID_LEN);
}

/* A well-formed holder value (version 1, learned at a fixed time). */
static int holder_raw_put(st_txn *t, const st_hash *h, const char *byte)
{
    uint8_t k[ST_HASH_LEN + ST_DEVICE_ID_LEN], v[16] = { 1 };
    holder_key(k, h, byte);
    lr_put_le64(v + 8, 1700000000);
    return st_raw_put(t, "holder", k, sizeof(k), v, sizeof(v));
}

static int d_holder_add(st_txn *t, char **a)
{
    struct ext x;
    uint8_t dev[ST_DEVICE_ID_LEN];
    int rc = extent_of(t, a[0], a[1], &x);
    if (rc)
        return rc;
    memset(dev, (int)strtoul(a[2], NULL, 0), sizeof(dev));
    return st_holder_set(t, &x.e.hash, dev, 1, NULL);
}

static int d_holder_raw(st_txn *t, char **a)
{
    struct ext x;
    uint8_t k[ST_HASH_LEN + ST_DEVICE_ID_LEN], v[512];
    size_t n;
    int rc = extent_of(t, a[0], a[1], &x);
    if (rc || (rc = unhex(a[3], v, sizeof(v), &n)))
        return rc;
    holder_key(k, &x.e.hash, a[2]);
    return st_raw_put(t, "holder", k, sizeof(k), v, n);
}

static int d_holder_orphan(st_txn *t, char **a)
{
    uint8_t buf[4000];
    st_hash h;
    pattern_chunk(buf, sizeof(buf), 11, 5, &h);
    return holder_raw_put(t, &h, a[0]);
}

static int d_chunk_orphan_held(st_txn *t, char **a)
{
    uint8_t buf[5000], dev[ST_DEVICE_ID_LEN];
    st_hash h;
    pattern_chunk(buf, sizeof(buf), 7, 3, &h);
    memset(dev, (int)strtoul(a[0], NULL, 0), sizeof(dev));
    int rc = st_chunk_put(t, &h, buf, sizeof(buf));
    return rc ? rc : st_holder_set(t, &h, dev, 1, NULL);
}

static int d_extent_del(st_txn *t, char **a)
{
    struct ext x;
    int rc = extent_of(t, a[0], a[1], &x);
    return rc ? rc : extent_raw_del(t, x.ino, x.e.off);
}

static int d_extent_set(st_txn *t, char **a)
{
    struct ext x;
    uint8_t k[16], v[ST_EXTENT_LEN];
    int rc = extent_of(t, a[0], a[1], &x);
    if (rc)
        return rc;
    uint64_t val = strtoull(a[3], NULL, 0);
    if (!strcmp(a[2], "off") && !strcmp(a[3], "overlap")) {
        /* Start one byte before the end of the previous extent. */
        struct ext prev;
        char idx[24];
        if (strtoul(a[1], NULL, 10) == 0)
            return -EINVAL;
        snprintf(idx, sizeof(idx), "%lu", strtoul(a[1], NULL, 10) - 1);
        if ((rc = extent_of(t, a[0], idx, &prev)))
            return rc;
        val = prev.e.off + prev.e.len - 1;
    }
    if (!strcmp(a[2], "off")) {
        if ((rc = extent_raw_del(t, x.ino, x.e.off)))
            return rc;
        x.e.off = val;
    } else if (!strcmp(a[2], "len")) {
        x.e.len = (uint32_t)val;
    } else if (!strcmp(a[2], "chunk_off")) {
        x.e.chunk_off = (uint32_t)val;
    } else if (!strcmp(a[2], "ino")) {
        if ((rc = extent_raw_del(t, x.ino, x.e.off)))
            return rc;
        x.ino = val;
    } else {
        return -EINVAL;
    }
    ext_key(k, x.ino, x.e.off);
    ext_val(v, &x.e);
    return st_raw_put(t, "extent", k, 16, v, sizeof(v));
}

static int d_extent_raw(st_txn *t, char **a)
{
    struct ext x;
    uint8_t k[16], v[512];
    size_t n;
    int rc = extent_of(t, a[0], a[1], &x);
    if (rc || (rc = unhex(a[2], v, sizeof(v), &n)))
        return rc;
    ext_key(k, x.ino, x.e.off);
    return st_raw_put(t, "extent", k, 16, v, n);
}

static int d_inode_set(st_txn *t, char **a)
{
    struct st_inode in;
    int rc = inode_of(t, a[0], &in);
    if (rc)
        return rc;
    uint64_t val = strtoull(a[2], NULL, 0);
    if (!strcmp(a[1], "nlink"))
        in.nlink = (uint32_t)val;
    else if (!strcmp(a[1], "size"))
        in.size = val;
    else if (!strcmp(a[1], "mode"))
        in.mode = (uint32_t)val;
    else
        return -EINVAL;
    return inode_raw_put(t, &in);
}

static int d_inode_truncate(st_txn *t, char **a)
{
    uint8_t k[8], buf[1024];
    const void *v;
    size_t vl, n = strtoul(a[1], NULL, 10);
    int rc = inode_key_of(t, a[0], k);
    if (rc || (rc = st_raw_get(t, "inode", k, 8, &v, &vl)))
        return rc;
    if (n > vl || n > sizeof(buf))
        return -EINVAL;
    memcpy(buf, v, n);
    return st_raw_put(t, "inode", k, 8, buf, n);
}

static int d_inode_del(st_txn *t, char **a)
{
    uint8_t k[8];
    int rc = inode_key_of(t, a[0], k);
    return rc ? rc : st_raw_del(t, "inode", k, 8);
}

static int d_name_del(st_txn *t, char **a)
{
    struct name nm;
    int rc = resolve(t, a[0], &nm);
    return rc ? rc : st_dirent_del(t, nm.parent, nm.last, nm.len);
}

static int d_dirent_raw_del(st_txn *t, char **a)
{
    struct name nm;
    uint8_t k[8 + ST_NAME_MAX];
    int rc = resolve(t, a[0], &nm);
    return rc ? rc : st_raw_del(t, "dirent", k, dirent_key(k, nm.parent, nm.last, nm.len));
}

static int d_dirent_type(st_txn *t, char **a)
{
    struct name nm;
    int rc = resolve(t, a[0], &nm);
    if (rc)
        return rc;
    return dirent_raw_put(t, nm.parent, nm.last, nm.len, nm.ino, (uint8_t)strtoul(a[1], NULL, 0));
}

static int d_dirent_add(st_txn *t, char **a)
{
    /* dirent-add STORE DIRPATH NAME CHILD-INO TYPE: a raw entry (no backref). */
    struct name dir;
    int rc = resolve(t, a[0], &dir);
    if (rc)
        return rc;
    size_t n = strlen(a[1]);
    if (n == 0 || n > ST_NAME_MAX)
        return -EINVAL;
    return dirent_raw_put(t, dir.ino, a[1], n, strtoull(a[2], NULL, 0),
                          (uint8_t)strtoul(a[3], NULL, 0));
}

static int d_link_dir(st_txn *t, char **a)
{
    /* link-dir STORE DIRPATH NEWPARENT NAME: a second name for a directory. */
    struct name dir, np;
    int rc = resolve(t, a[0], &dir);
    if (rc || (rc = resolve(t, a[1], &np)))
        return rc;
    return st_dirent_put(t, np.ino, a[2], strlen(a[2]), dir.ino, DT_DIR);
}

static int d_unlink_open(st_txn *t, char **a)
{
    /* What a crash leaves of a file unlinked while open: no name, nlink 0. */
    struct name nm;
    struct st_inode in;
    int rc = resolve(t, a[0], &nm);
    if (rc || (rc = st_dirent_del(t, nm.parent, nm.last, nm.len)) ||
        (rc = st_inode_get(t, nm.ino, &in)))
        return rc;
    in.nlink = 0;
    return st_inode_put(t, &in);
}

static int d_backref_del(st_txn *t, char **a)
{
    struct name nm;
    int rc = resolve(t, a[0], &nm);
    if (rc)
        return rc;
    uint8_t k[16 + ST_NAME_MAX];
    lr_put_be64(k, nm.ino);
    lr_put_be64(k + 8, nm.parent);
    memcpy(k + 16, nm.last, nm.len);
    return st_raw_del(t, "backref", k, 16 + nm.len);
}

static int d_fid_del(st_txn *t, char **a)
{
    struct st_inode in;
    int rc = inode_of(t, a[0], &in);
    return rc ? rc : st_raw_del(t, "fid", in.fid, 16);
}

static int d_xattr_orphan(st_txn *t, char **a)
{
    uint8_t k[8 + 9];
    lr_put_be64(k, strtoull(a[0], NULL, 0));
    memcpy(k + 8, "user.lost", 9);
    return st_raw_put(t, "xattr", k, sizeof(k), "x", 1);
}

static int d_meta_u64(st_txn *t, char **a)
{
    uint8_t b[8];
    lr_put_le64(b, strtoull(a[1], NULL, 0));
    return st_raw_put(t, "meta", a[0], strlen(a[0]), b, 8);
}

static int d_meta_raw(st_txn *t, char **a)
{
    uint8_t v[512];
    size_t n;
    int rc = unhex(a[1], v, sizeof(v), &n);
    return rc ? rc : st_raw_put(t, "meta", a[0], strlen(a[0]), v, n);
}

static int d_meta_del(st_txn *t, char **a)
{
    return st_raw_del(t, "meta", a[0], strlen(a[0]));
}

static int d_log_raw(st_txn *t, char **a)
{
    uint8_t k[8], v[512];
    size_t n;
    int rc = unhex(a[1], v, sizeof(v), &n);
    if (rc)
        return rc;
    lr_put_be64(k, strtoull(a[0], NULL, 0));
    return st_raw_put(t, "log", k, 8, v, n);
}

static int d_peer_raw(st_txn *t, char **a)
{
    uint8_t k[ST_DEVICE_ID_LEN], v[512];
    size_t n;
    memset(k, (int)strtoul(a[0], NULL, 0), sizeof(k));
    int rc = unhex(a[1], v, sizeof(v), &n);
    return rc ? rc : st_raw_put(t, "peer", k, sizeof(k), v, n);
}

static int d_raw_put(st_txn *t, char **a)
{
    uint8_t k[512], v[512];
    size_t kn, vn;
    int rc;
    if ((rc = unhex(a[1], k, sizeof(k), &kn)) || (rc = unhex(a[2], v, sizeof(v), &vn)))
        return rc;
    return st_raw_put(t, a[0], k, kn, v, vn);
}

static int d_inode_fid(st_txn *t, char **a)
{
    /* inode-fid PATH OTHER: PATH gets OTHER's file id (raw: no index). */
    struct name p, o;
    struct st_inode in, oin;
    int rc = resolve(t, a[0], &p);
    if (rc || (rc = resolve(t, a[1], &o)) || (rc = st_inode_get(t, p.ino, &in)) ||
        (rc = st_inode_get(t, o.ino, &oin)))
        return rc;
    memcpy(in.fid, oin.fid, 16);
    return inode_raw_put(t, &in);
}

static const struct cmd {
    const char *name;
    int nargs;
    int (*fn)(st_txn *, char **);
    const char *help;
} cmds[] = {
    { "chunk-flip", 2, d_chunk_flip, "PATH IDX: flip a bit in the chunk under extent IDX" },
    { "chunk-del", 2, d_chunk_del, "PATH IDX: delete that chunk's bytes, keep its chunkref" },
    { "chunkref-del", 3, d_chunkref_del, "PATH IDX keep-bytes|drop-bytes: delete its chunkref" },
    { "chunkref-set", 4, d_chunkref_set, "PATH IDX refcount|len|flags|peers VALUE" },
    { "chunkref-raw", 3, d_chunkref_raw, "PATH IDX HEX: replace the chunkref value" },
    { "chunk-orphan", 0, d_chunk_orphan, ": store a chunk no extent names" },
    { "chunk-noref", 0, d_chunk_noref, ": store chunk bytes without a chunkref" },
    { "chunk-orphan-held", 1, d_chunk_orphan_held, "BYTE: chunk-orphan's chunk, peer 32 x BYTE holding it" },
    { "holder-add", 3, d_holder_add, "PATH IDX BYTE: peer 32 x BYTE holds that chunk (store API: counted)" },
    { "holder-raw", 4, d_holder_raw, "PATH IDX BYTE HEX: raw holder record of that chunk and peer (not counted)" },
    { "holder-orphan", 1, d_holder_orphan, "BYTE: peer 32 x BYTE holds a chunk the store does not know (raw)" },
    { "extent-del", 2, d_extent_del, "PATH IDX: remove an extent (refcount untouched)" },
    { "extent-set", 4, d_extent_set, "PATH IDX off|len|chunk_off|ino VALUE (off overlap: 1 byte into IDX-1)" },
    { "extent-raw", 3, d_extent_raw, "PATH IDX HEX: replace the extent value" },
    { "inode-set", 3, d_inode_set, "PATH nlink|size|mode VALUE" },
    { "inode-truncate", 2, d_inode_truncate, "PATH NBYTES: truncate the inode value" },
    { "inode-del", 1, d_inode_del, "PATH: remove the inode record only" },
    { "name-del", 1, d_name_del, "PATH: remove the name (dirent and backref), keep the inode" },
    { "dirent-raw-del", 1, d_dirent_raw_del, "PATH: remove the dirent only" },
    { "dirent-type", 2, d_dirent_type, "PATH TYPE: set the dirent's type byte" },
    { "dirent-add", 4, d_dirent_add, "DIRPATH NAME INO TYPE: add a raw entry" },
    { "link-dir", 3, d_link_dir, "DIRPATH NEWPARENT NAME: a second name for a directory" },
    { "unlink-open", 1, d_unlink_open, "PATH: no name and nlink 0 (crash while open)" },
    { "backref-del", 1, d_backref_del, "PATH: remove the name's backref" },
    { "fid-del", 1, d_fid_del, "PATH: remove the inode's fid index record" },
    { "xattr-orphan", 1, d_xattr_orphan, "INO: an xattr of inode INO" },
    { "raw-put", 3, d_raw_put, "DB KEYHEX VALHEX: put any raw record" },
    { "inode-fid", 2, d_inode_fid, "PATH OTHER: give PATH the file id of OTHER" },
    { "meta-u64", 2, d_meta_u64, "KEY VALUE" },
    { "meta-raw", 2, d_meta_raw, "KEY HEX" },
    { "meta-del", 1, d_meta_del, "KEY" },
    { "log-raw", 2, d_log_raw, "SEQ HEX: put a raw change-log record" },
    { "peer-raw", 2, d_peer_raw, "BYTE HEX: put a raw peer record (id = 32 x BYTE)" },
};

static int garbage(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    int fd = open(path, O_WRONLY);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    uint8_t buf[8192];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = rnd8();
    ssize_t w = pwrite(fd, buf, sizeof(buf), 0);
    close(fd);
    return w == (ssize_t)sizeof(buf) ? 0 : 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: %s populate STORE\n       %s fill STORE MIB NFILES\n       %s garbage STORE\n",
            prog, prog, prog);
    for (size_t i = 0; i < LR_ARRAY_SIZE(cmds); i++)
        fprintf(out, "       %s %s STORE %s\n", prog, cmds[i].name, cmds[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "populate"))
        return argc == 3 ? populate(argv[2]) : 2;
    if (!strcmp(argv[1], "fill"))
        return argc == 5 ? fill(argv[2], argv[3], argv[4]) : 2;
    if (!strcmp(argv[1], "garbage"))
        return argc == 3 ? garbage(argv[2]) : 2;
    for (size_t i = 0; i < LR_ARRAY_SIZE(cmds); i++) {
        if (strcmp(argv[1], cmds[i].name))
            continue;
        if (argc != 3 + cmds[i].nargs) {
            usage(stderr);
            return 2;
        }
        st_store *st;
        int rc = st_raw_open(argv[2], ST_OPEN_EXCL, &st, NULL);
        if (rc)
            return die("cannot open store", rc);
        st_txn *t;
        if ((rc = st_txn_begin(st, ST_TXN_WRITE, &t)) == 0) {
            rc = cmds[i].fn(t, argv + 3);
            if (rc)
                st_txn_abort(t);
            else
                rc = st_txn_commit(t);
        }
        st_close(st);
        return rc ? die(argv[1], rc) : 0;
    }
    usage(stderr);
    return 2;
}
