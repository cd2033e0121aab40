/*
 * store.c - the LMDB environment: open/create, meta, transactions, error
 * translation. See store.h for the contract and the on-disk layout.
 */
#include "store_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int st__mdb_err(int rc)
{
    switch (rc) {
    case 0: return 0;
    case MDB_NOTFOUND: return -ENOENT;
    case MDB_KEYEXIST: return -EEXIST;
    case MDB_MAP_FULL: return -ENOSPC;
    case MDB_TXN_FULL: return -ENOSPC;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID: return LR_ECORRUPT;
    case MDB_VERSION_MISMATCH: return LR_EVERSION;
    case MDB_READERS_FULL: return -EAGAIN;
    case MDB_MAP_RESIZED: return -EAGAIN;
    case MDB_BAD_TXN: return -EINVAL;
    case MDB_BAD_VALSIZE: return -EINVAL;
    case MDB_BAD_DBI: return -EINVAL;
    case MDB_DBS_FULL: return -ENOSPC;
    case MDB_PAGE_FULL:
    case MDB_CURSOR_FULL: return LR_ECORRUPT;
    case MDB_INCOMPATIBLE: return LR_ECORRUPT;
    case MDB_TLS_FULL: return -EAGAIN;
    default: return rc > 0 ? -rc : -EIO;
    }
}

static int st__soft(int rc)
{
    return rc == -ENOENT || rc == -ENODATA || rc == -EEXIST || rc == -ENOTEMPTY ||
           rc == -EINVAL || rc == -ENAMETOOLONG || rc == LR_EMISSING || rc == -EROFS;
}

int st__fail(st_txn *t, int rc, const char *what)
{
    if (rc == 0 || st__soft(rc))
        return rc;
    if (!t->err) {
        t->err = rc;
        lr_error("store '%s': %s: %s", t->st->dir, what, lr_strerror(rc));
    }
    return rc;
}

int st__corrupt(st_txn *t, const char *db, const char *what)
{
    lr_error("store '%s': corrupt record in %s: %s", t->st->dir, db, what);
    return LR_ECORRUPT;
}

int st__get(st_txn *t, MDB_dbi db, const void *k, size_t klen, MDB_val *v)
{
    MDB_val key = { klen, (void *)k };
    int rc = mdb_get(t->txn, db, &key, v);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    return st__fail(t, st__mdb_err(rc), "read");
}

int st__put(st_txn *t, MDB_dbi db, const void *k, size_t klen, const void *v, size_t vlen, unsigned flags)
{
    MDB_val key = { klen, (void *)k }, val = { vlen, (void *)v };
    int rc = st__room(t, db, vlen);
    if (rc)
        return st__fail(t, rc, "write");
    rc = mdb_put(t->txn, db, &key, &val, flags);
    if (rc == MDB_KEYEXIST)
        return -EEXIST;
    return st__fail(t, st__mdb_err(rc), "write");
}

int st__del(st_txn *t, MDB_dbi db, const void *k, size_t klen)
{
    MDB_val key = { klen, (void *)k };
    int rc = st__room(t, db, 0);
    if (rc)
        return st__fail(t, rc, "delete");
    rc = mdb_del(t->txn, db, &key, NULL);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    return st__fail(t, st__mdb_err(rc), "delete");
}

int st__walk(st_txn *t, MDB_dbi db, const void *start, size_t slen, size_t plen,
             int (*each)(st_txn *, const MDB_val *, const MDB_val *, void *), void *arg, const char *what)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, db, &c);
    if (rc)
        return st__fail(t, st__mdb_err(rc), "cursor");
    MDB_val k = { slen, (void *)start }, v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, start ? MDB_SET_RANGE : MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, start, plen)))
            break;
        if ((ret = each(t, &k, &v, arg)))
            break;
    }
    mdb_cursor_close(c);
    if (ret)
        return ret;
    return (rc == 0 || rc == MDB_NOTFOUND) ? 0 : st__fail(t, st__mdb_err(rc), what);
}

int st__del_prefix(st_txn *t, MDB_dbi db, const uint8_t *prefix, size_t plen,
                   int (*each)(st_txn *, const MDB_val *, const MDB_val *, void *), void *arg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, db, &c);
    if (rc)
        return st__fail(t, st__mdb_err(rc), "cursor");
    MDB_val k = { plen, (void *)prefix }, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, prefix, plen) == 0) {
        if (each) {
            int e = each(t, &k, &v, arg);
            if (e) {
                mdb_cursor_close(c);
                return st__fail(t, e, "delete");
            }
        }
        int e = st__room(t, db, 0);
        if (e) {
            mdb_cursor_close(c);
            return st__fail(t, e, "delete");
        }
        rc = mdb_cursor_del(c, 0);
        if (rc)
            break;
        rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL) /* cursor past the last item after the delete */
            rc = MDB_NOTFOUND;
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND)
        return 0;
    return st__fail(t, st__mdb_err(rc), "delete range");
}

/* ---- meta ------------------------------------------------------------ */

static int meta_get_u64(st_txn *t, const char *key, uint64_t *out)
{
    MDB_val v;
    int rc = st__get(t, t->st->db_meta, key, strlen(key), &v);
    if (rc)
        return rc;
    if (v.mv_size != 8)
        return st__corrupt(t, "meta", key);
    *out = lr_get_le64(v.mv_data);
    return 0;
}

static int meta_put_u64(st_txn *t, const char *key, uint64_t val)
{
    uint8_t b[8];
    lr_put_le64(b, val);
    return st__put(t, t->st->db_meta, key, strlen(key), b, 8, 0);
}

int st_meta_next(st_txn *t, const char *key, uint64_t *out)
{
    ST_CHECK_WRITE(t);
    uint64_t v;
    int rc = meta_get_u64(t, key, &v);
    if (rc == -ENOENT)
        return st__fail(t, st__corrupt(t, "meta", key), "counter");
    if (rc)
        return rc;
    if ((rc = meta_put_u64(t, key, v + 1)))
        return rc;
    *out = v;
    return 0;
}

int st_meta_set_device(st_txn *t, const uint8_t device[ST_DEVICE_ID_LEN])
{
    ST_CHECK_WRITE(t);
    int rc = st__put(t, t->st->db_meta, "device", 6, device, ST_DEVICE_ID_LEN, 0);
    if (rc)
        return rc;
    pthread_mutex_lock(&t->st->meta_lock);
    memcpy(t->st->meta.device, device, ST_DEVICE_ID_LEN);
    pthread_mutex_unlock(&t->st->meta_lock);
    return 0;
}

int st_meta_set_volume(st_txn *t, const uint8_t volume[ST_VOLUME_ID_LEN])
{
    ST_CHECK_WRITE(t);
    int rc = st__put(t, t->st->db_meta, "volume", 6, volume, ST_VOLUME_ID_LEN, 0);
    if (rc)
        return rc;
    pthread_mutex_lock(&t->st->meta_lock);
    memcpy(t->st->meta.volume, volume, ST_VOLUME_ID_LEN);
    pthread_mutex_unlock(&t->st->meta_lock);
    return 0;
}

void st_meta(const st_store *st, struct st_meta *out)
{
    pthread_mutex_lock((pthread_mutex_t *)&st->meta_lock);
    *out = st->meta;
    pthread_mutex_unlock((pthread_mutex_t *)&st->meta_lock);
}

const char *st_dir(const st_store *st) { return st->dir; }

/* A new volume: meta records and the root directory. */
static int st_format(st_txn *t)
{
    st_store *st = t->st;
    uint8_t b[12];
    int rc;
    lr_put_le32(b, ST_FORMAT_VERSION);
    if ((rc = st__put(t, st->db_meta, "format", 6, b, 4, 0)))
        return rc;
    uint8_t vol[ST_VOLUME_ID_LEN];
    if (getrandom(vol, sizeof(vol), 0) != (ssize_t)sizeof(vol))
        return st__fail(t, -errno, "random volume id");
    if ((rc = st__put(t, st->db_meta, "volume", 6, vol, sizeof(vol), 0)))
        return rc;
    uint8_t dev[ST_DEVICE_ID_LEN] = { 0 };
    if ((rc = st__put(t, st->db_meta, "device", 6, dev, sizeof(dev), 0)))
        return rc;
    struct st_cdc_params p;
    st_cdc_defaults(&p);
    lr_put_le32(b, p.min);
    lr_put_le32(b + 4, p.avg);
    lr_put_le32(b + 8, p.max);
    if ((rc = st__put(t, st->db_meta, "cdc", 3, b, 12, 0)))
        return rc;
    if ((rc = meta_put_u64(t, "next_ino", ST_ROOT_INO + 1)) ||
        (rc = meta_put_u64(t, "next_fid", 2)) ||
        (rc = meta_put_u64(t, "seq", 1)))
        return rc;

    struct st_inode root;
    memset(&root, 0, sizeof(root));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    root.ino = ST_ROOT_INO;
    root.mode = S_IFDIR | 0755;
    root.uid = getuid();
    root.gid = getgid();
    root.nlink = 2;
    root.atime = root.mtime = root.ctime = root.btime = now;
    root.parent = ST_ROOT_INO;
    /* The root's file id is the same on every device: (zero device, 1). */
    lr_put_be64(root.fid + 8, 1);
    return st_inode_put(t, &root);
}

static int st_load_meta(st_txn *t)
{
    st_store *st = t->st;
    MDB_val v;
    int rc = st__get(t, st->db_meta, "format", 6, &v);
    if (rc == -ENOENT) {
        lr_error("store '%s': no format record: not a landro store or damaged", st->dir);
        return LR_ECORRUPT;
    }
    if (rc)
        return rc;
    if (v.mv_size != 4)
        return st__corrupt(t, "meta", "format");
    st->meta.format = lr_get_le32(v.mv_data);
    if (st->meta.format != ST_FORMAT_VERSION) {
        lr_error("store '%s': format version %u, this landro reads %u", st->dir,
                 st->meta.format, ST_FORMAT_VERSION);
        return LR_EVERSION;
    }
    if ((rc = st__get(t, st->db_meta, "volume", 6, &v)))
        return rc == -ENOENT ? st__corrupt(t, "meta", "volume missing") : rc;
    if (v.mv_size != ST_VOLUME_ID_LEN)
        return st__corrupt(t, "meta", "volume");
    memcpy(st->meta.volume, v.mv_data, ST_VOLUME_ID_LEN);
    if ((rc = st__get(t, st->db_meta, "device", 6, &v)))
        return rc == -ENOENT ? st__corrupt(t, "meta", "device missing") : rc;
    if (v.mv_size != ST_DEVICE_ID_LEN)
        return st__corrupt(t, "meta", "device");
    memcpy(st->meta.device, v.mv_data, ST_DEVICE_ID_LEN);
    if ((rc = st__get(t, st->db_meta, "cdc", 3, &v)))
        return rc == -ENOENT ? st__corrupt(t, "meta", "cdc missing") : rc;
    if (v.mv_size != 12)
        return st__corrupt(t, "meta", "cdc");
    st->meta.cdc.min = lr_get_le32(v.mv_data);
    st->meta.cdc.avg = lr_get_le32((uint8_t *)v.mv_data + 4);
    st->meta.cdc.max = lr_get_le32((uint8_t *)v.mv_data + 8);
    if (st_cdc_check(&st->meta.cdc)) {
        lr_error("store '%s': invalid chunker parameters %u/%u/%u", st->dir,
                 st->meta.cdc.min, st->meta.cdc.avg, st->meta.cdc.max);
        return LR_EPARAMS;
    }
    uint64_t u;
    static const char *const counters[] = { "next_ino", "next_fid", "seq" };
    for (size_t i = 0; i < LR_ARRAY_SIZE(counters); i++) {
        rc = meta_get_u64(t, counters[i], &u);
        if (rc == -ENOENT)
            return st__corrupt(t, "meta", counters[i]);
        if (rc)
            return rc;
    }
    return 0;
}

const struct st__db st__dbs[] = {
    { "meta", offsetof(st_store, db_meta) },
    { "chunk", offsetof(st_store, db_chunk) },
    { "chunkref", offsetof(st_store, db_chunkref) },
    { "inode", offsetof(st_store, db_inode) },
    { "dirent", offsetof(st_store, db_dirent) },
    { "extent", offsetof(st_store, db_extent) },
    { "xattr", offsetof(st_store, db_xattr) },
    { "log", offsetof(st_store, db_log) },
    { "peer", offsetof(st_store, db_peer) },
    { "fid", offsetof(st_store, db_fid) },
    { "backref", offsetof(st_store, db_backref) },
    { "tomb", offsetof(st_store, db_tomb) },
    { "version", offsetof(st_store, db_version) },
    { "holder", offsetof(st_store, db_holder) },
};
const size_t st__ndbs = LR_ARRAY_SIZE(st__dbs);

int st__open_dbs(st_store *st, MDB_txn *txn, unsigned create)
{
    for (size_t i = 0; i < st__ndbs; i++) {
        int rc = mdb_dbi_open(txn, st__dbs[i].name, create, (MDB_dbi *)((char *)st + st__dbs[i].off));
        if (rc == MDB_NOTFOUND) {
            lr_error("store '%s': database '%s' missing: not a landro store or damaged",
                     st->dir, st__dbs[i].name);
            return LR_ECORRUPT;
        }
        if (rc) {
            lr_error("store '%s': cannot open database '%s': %s", st->dir, st__dbs[i].name,
                     mdb_strerror(rc));
            return st__mdb_err(rc);
        }
    }
    return 0;
}

static int mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0700) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, 0700) && errno != EEXIST)
        return -errno;
    return 0;
}

int st_open(const char *dir, unsigned flags, st_store **out)
{
    int rc;
    char path[4096];
    st_store *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->lockfd = -1;
    st->gatefd = -1;
    st->flags = flags;
    pthread_mutex_init(&st->meta_lock, NULL);
    pthread_mutex_init(&st->hook_lock, NULL);
    pthread_rwlock_init(&st->swap_lock, NULL);
    if (!(st->dir = strdup(dir))) {
        rc = -ENOMEM;
        goto fail;
    }
    if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >= (int)sizeof(path)) {
        rc = -ENAMETOOLONG;
        goto fail;
    }
    struct stat sb;
    int exists = stat(path, &sb) == 0;
    if (!exists) {
        if (!(flags & ST_OPEN_CREATE) || (flags & ST_OPEN_RDONLY)) {
            rc = -ENOENT;
            lr_error("cannot open store '%s': no store there (run 'landro init')", dir);
            goto fail;
        }
        if ((rc = mkdir_p(dir))) {
            lr_error("cannot create store directory '%s': %s", dir, lr_strerror(rc));
            goto fail;
        }
    }
    if (flags & ST_OPEN_EXCL) {
        snprintf(path, sizeof(path), "%s/%s", dir, ST_LOCKFILE);
        st->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (st->lockfd < 0) {
            rc = -errno;
            lr_error("cannot open store lock '%s': %s", path, strerror(errno));
            goto fail;
        }
        if (flock(st->lockfd, LOCK_EX | LOCK_NB)) {
            /* LR_ELOCKED is the caller's to report (or to wait out:
             * landro mount, while the last daemon exits) */
            rc = errno == EWOULDBLOCK ? LR_ELOCKED : -errno;
            if (rc != LR_ELOCKED)
                lr_error("cannot lock store '%s': %s", dir, strerror(-rc));
            goto fail;
        }
    }
    int mrc = st__env_open(st, dir, flags);
    if (mrc) {
        rc = st__mdb_err(mrc);
        lr_error("cannot open store '%s': %s", dir,
                 mrc == MDB_INVALID ? "the LMDB file is damaged or not an LMDB file" : mdb_strerror(mrc));
        goto fail;
    }

    MDB_txn *txn;
    if ((mrc = mdb_txn_begin(st->env, NULL, (flags & ST_OPEN_RDONLY) ? MDB_RDONLY : 0, &txn))) {
        rc = st__mdb_err(mrc);
        lr_error("cannot open store '%s': %s", dir, mdb_strerror(mrc));
        goto fail;
    }
    st_txn t = { .st = st, .txn = txn, .write = !(flags & ST_OPEN_RDONLY) };
    /* Only ST_OPEN_CREATE creates databases (a store that has data.mdb but
     * not all of them is damaged, or its creation never committed), and
     * that writes the main database's records. */
    unsigned create = t.write && (flags & ST_OPEN_CREATE) ? MDB_CREATE : 0;
    rc = t.write ? st__room_begin(&t) : 0;
    if (!rc && create)
        rc = st__room_pages(&t, 8 * st__ndbs);
    if (!rc)
        rc = st__open_dbs(st, txn, create);
    if (!rc) {
        MDB_val v;
        int has = st__get(&t, st->db_meta, "format", 6, &v);
        if (has == -ENOENT && (flags & ST_OPEN_CREATE) && !(flags & ST_OPEN_RDONLY))
            rc = st_format(&t);
        else if (has && has != -ENOENT)
            rc = has;
    }
    if (!rc)
        rc = st_load_meta(&t);
    if (rc) {
        mdb_txn_abort(txn);
        goto fail;
    }
    if ((mrc = mdb_txn_commit(txn))) {
        rc = st__mdb_err(mrc);
        lr_error("cannot open store '%s': %s", dir, mdb_strerror(mrc));
        goto fail;
    }
    if (!exists && (rc = st_sync(st)))
        goto fail;
    *out = st;
    return 0;
fail:
    st_close(st);
    return rc;
}

void st_close(st_store *st)
{
    if (!st)
        return;
    if (st->env) {
        if (!(st->flags & ST_OPEN_RDONLY))
            mdb_env_sync(st->env, 1);
        mdb_env_close(st->env);
    }
    if (st->gatefd >= 0)
        close(st->gatefd);
    if (st->lockfd >= 0)
        close(st->lockfd);
    pthread_mutex_destroy(&st->meta_lock);
    pthread_mutex_destroy(&st->hook_lock);
    pthread_rwlock_destroy(&st->swap_lock);
    free(st->dir);
    free(st);
}

int st_sync(st_store *st)
{
    if (st->flags & ST_OPEN_RDONLY)
        return 0;
    pthread_rwlock_rdlock(&st->swap_lock);
    int rc = st->env ? mdb_env_sync(st->env, 1) : EIO;
    pthread_rwlock_unlock(&st->swap_lock);
    if (rc) {
        lr_error("store '%s': sync failed: %s", st->dir, mdb_strerror(rc));
        return st__mdb_err(rc);
    }
    return 0;
}

int st_usage(st_store *st, struct st_usage *out)
{
    st_txn *t;
    int rc = st_txn_begin(st, ST_TXN_READ, &t);
    if (rc)
        return rc;
    MDB_txn *txn = t->txn;
    MDB_stat s;
    memset(out, 0, sizeof(*out));
    if (!mdb_stat(txn, st->db_inode, &s))
        out->inodes = s.ms_entries;
    if (!mdb_stat(txn, st->db_chunkref, &s))
        out->chunks = s.ms_entries;
    if (!mdb_stat(txn, st->db_chunk, &s)) {
        out->local_chunks = s.ms_entries;
        out->local_bytes = (s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages) * (uint64_t)s.ms_psize;
    }
    st__used_bytes(st, &out->map_bytes); /* left 0 (above) if LMDB cannot tell */
    st_txn_abort(t);
    return 0;
}

/* ---- transactions ---------------------------------------------------- */

int st_txn_begin(st_store *st, int mode, st_txn **out)
{
    if (mode == ST_TXN_WRITE && (st->flags & ST_OPEN_RDONLY))
        return -EROFS;
    st_txn *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->st = st;
    t->write = mode == ST_TXN_WRITE;
    /* Shared while the transaction lives: st_compact_open swaps st->env
     * only when no transaction is open (mapspace.c). */
    pthread_rwlock_rdlock(&st->swap_lock);
    int rc = st->env ? mdb_txn_begin(st->env, NULL, t->write ? 0 : MDB_RDONLY, &t->txn) : EIO;
    if (rc) {
        pthread_rwlock_unlock(&st->swap_lock);
        free(t);
        lr_error("store '%s': cannot begin transaction: %s", st->dir,
                 st->env ? mdb_strerror(rc) : "the store could not be reopened after compaction");
        return st__mdb_err(rc);
    }
    if (t->write && (rc = st__room_begin(t))) {
        lr_error("store '%s': cannot begin transaction: %s", st->dir, lr_strerror(rc));
        st_txn_abort(t);
        return rc;
    }
    *out = t;
    return 0;
}

int st_txn_commit(st_txn *t)
{
    int rc = t->err;
    st_store *st = t->st;
    if (rc) {
        mdb_txn_abort(t->txn);
        pthread_rwlock_unlock(&st->swap_lock);
    } else {
        int mrc = mdb_txn_commit(t->txn);
        if (!mrc && t->write)
            __atomic_add_fetch(&st->commits, 1, __ATOMIC_RELAXED);
        pthread_rwlock_unlock(&st->swap_lock);
        if (mrc) {
            rc = st__mdb_err(mrc);
            /* LMDB reports a short write as EIO; on a full disk that is
             * ENOSPC, which is what a writer must see. */
            struct statvfs vfs;
            if (mrc == EIO && statvfs(t->st->dir, &vfs) == 0 &&
                (uint64_t)vfs.f_bavail * vfs.f_frsize < (16u << 20))
                rc = -ENOSPC;
            lr_error("store '%s': commit failed: %s", t->st->dir, lr_strerror(rc));
        } else if (t->logged && __atomic_load_n(&t->st->log_hook, __ATOMIC_ACQUIRE)) {
            pthread_mutex_lock(&t->st->hook_lock);
            if (t->st->log_hook)
                t->st->log_hook(t->st->log_hook_ctx);
            pthread_mutex_unlock(&t->st->hook_lock);
        }
    }
    free(t);
    return rc;
}

void st_set_log_hook(st_store *st, void (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&st->hook_lock);
    st->log_hook_ctx = ctx;
    __atomic_store_n(&st->log_hook, fn, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&st->hook_lock);
}

void st_txn_abort(st_txn *t)
{
    if (!t)
        return;
    mdb_txn_abort(t->txn);
    pthread_rwlock_unlock(&t->st->swap_lock);
    free(t);
}

int st_txn_end(st_txn *t, int rc)
{
    if (rc) {
        st_txn_abort(t);
        return rc;
    }
    return st_txn_commit(t);
}

int st_txn_error(const st_txn *t) { return t->err; }
st_store *st_txn_store(const st_txn *t) { return t->st; }
