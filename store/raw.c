/*
 * raw.c - raw access to the store's databases for fsck and tests; bypasses
 * every invariant. See raw.h.
 */
#include "raw.h"

#include "store_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int raw_dbi(st_store *st, const char *db, MDB_dbi *out)
{
    for (size_t i = 0; i < st__ndbs; i++)
        if (!strcmp(st__dbs[i].name, db)) {
            *out = *(MDB_dbi *)((char *)st + st__dbs[i].off);
            return 0;
        }
    return -EINVAL;
}

/* Lenient meta load: fill what decodes; 1 if all of it is valid. */
static int raw_load_meta(st_store *st, MDB_txn *txn)
{
    struct st_meta m;
    memset(&m, 0, sizeof(m));
    int ok = 1;
    MDB_val k, v;
    k.mv_data = "format"; k.mv_size = 6;
    if (mdb_get(txn, st->db_meta, &k, &v) == 0 && v.mv_size == 4)
        m.format = lr_get_le32(v.mv_data);
    if (m.format != ST_FORMAT_VERSION)
        ok = 0;
    k.mv_data = "volume"; k.mv_size = 6;
    if (mdb_get(txn, st->db_meta, &k, &v) == 0 && v.mv_size == ST_VOLUME_ID_LEN)
        memcpy(m.volume, v.mv_data, ST_VOLUME_ID_LEN);
    else
        ok = 0;
    k.mv_data = "device"; k.mv_size = 6;
    if (mdb_get(txn, st->db_meta, &k, &v) == 0 && v.mv_size == ST_DEVICE_ID_LEN)
        memcpy(m.device, v.mv_data, ST_DEVICE_ID_LEN);
    else
        ok = 0;
    k.mv_data = "cdc"; k.mv_size = 3;
    if (mdb_get(txn, st->db_meta, &k, &v) == 0 && v.mv_size == 12) {
        m.cdc.min = lr_get_le32(v.mv_data);
        m.cdc.avg = lr_get_le32((uint8_t *)v.mv_data + 4);
        m.cdc.max = lr_get_le32((uint8_t *)v.mv_data + 8);
    }
    if (st_cdc_check(&m.cdc)) {
        st_cdc_defaults(&m.cdc);
        ok = 0;
    }
    static const char *const counters[] = { "next_ino", "next_fid", "seq" };
    for (size_t i = 0; i < LR_ARRAY_SIZE(counters); i++) {
        k.mv_data = (void *)counters[i];
        k.mv_size = strlen(counters[i]);
        if (mdb_get(txn, st->db_meta, &k, &v) || v.mv_size != 8)
            ok = 0;
    }
    pthread_mutex_lock(&st->meta_lock);
    st->meta = m;
    pthread_mutex_unlock(&st->meta_lock);
    return ok;
}

int st_raw_open(const char *dir, unsigned flags, st_store **out, int *meta_ok)
{
    int rc, mrc;
    char path[4096];
    st_store *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    st->lockfd = -1;
    st->gatefd = -1;
    st->flags = flags & (ST_OPEN_RDONLY | ST_OPEN_EXCL);
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
    if (stat(path, &sb) != 0) {
        rc = -errno;
        goto fail;
    }
    if (flags & ST_OPEN_EXCL) {
        snprintf(path, sizeof(path), "%s/%s", dir, ST_LOCKFILE);
        st->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (st->lockfd < 0) {
            rc = -errno;
            goto fail;
        }
        if (flock(st->lockfd, LOCK_EX | LOCK_NB)) {
            rc = errno == EWOULDBLOCK ? LR_ELOCKED : -errno;
            goto fail;
        }
    }
    if ((mrc = st__env_open(st, dir, flags))) {
        rc = st__mdb_err(mrc);
        goto fail;
    }
    MDB_txn *txn;
    if ((mrc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn))) {
        rc = st__mdb_err(mrc);
        goto fail;
    }
    for (size_t i = 0; i < st__ndbs; i++) {
        mrc = mdb_dbi_open(txn, st__dbs[i].name, 0, (MDB_dbi *)((char *)st + st__dbs[i].off));
        if (mrc) {
            mdb_txn_abort(txn);
            rc = mrc == MDB_NOTFOUND ? LR_ECORRUPT : st__mdb_err(mrc);
            goto fail;
        }
    }
    int ok = raw_load_meta(st, txn);
    /* Commit (not abort) so the dbi handles stay open for the env. */
    if ((mrc = mdb_txn_commit(txn))) {
        rc = st__mdb_err(mrc);
        goto fail;
    }
    if (meta_ok)
        *meta_ok = ok;
    *out = st;
    return 0;
fail:
    if (st->env) {
        mdb_env_close(st->env);
        st->env = NULL;
    }
    st_close(st);
    return rc;
}

int st_raw_reload_meta(st_store *st)
{
    MDB_txn *txn;
    int mrc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
    if (mrc)
        return st__mdb_err(mrc);
    int ok = raw_load_meta(st, txn);
    mdb_txn_abort(txn);
    return ok;
}

int st_raw_foreach_prefix(st_txn *t, const char *db, const void *prefix, size_t plen,
                          st_raw_cb cb, void *arg)
{
    ST_CHECK_TXN(t);
    MDB_dbi dbi;
    if (raw_dbi(t->st, db, &dbi))
        return -EINVAL;
    MDB_cursor *c;
    int rc = mdb_cursor_open(t->txn, dbi, &c);
    if (rc)
        return st__fail(t, st__mdb_err(rc), "cursor");
    MDB_val k = { plen, (void *)prefix }, v;
    int ret = 0;
    rc = plen ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen)))
            break;
        if ((ret = cb(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg)))
            break;
    }
    mdb_cursor_close(c);
    if (ret)
        return ret;
    return (rc == 0 || rc == MDB_NOTFOUND) ? 0 : st__fail(t, st__mdb_err(rc), "raw walk");
}

int st_raw_foreach(st_txn *t, const char *db, st_raw_cb cb, void *arg)
{
    return st_raw_foreach_prefix(t, db, NULL, 0, cb, arg);
}

int st_raw_get(st_txn *t, const char *db, const void *key, size_t klen,
               const void **val, size_t *vlen)
{
    ST_CHECK_TXN(t);
    MDB_dbi dbi;
    if (raw_dbi(t->st, db, &dbi) || klen == 0 || klen > 511)
        return -EINVAL;
    MDB_val v;
    int rc = st__get(t, dbi, key, klen, &v);
    if (rc)
        return rc;
    *val = v.mv_data;
    *vlen = v.mv_size;
    return 0;
}

int st_raw_put(st_txn *t, const char *db, const void *key, size_t klen,
               const void *val, size_t vlen)
{
    ST_CHECK_WRITE(t);
    MDB_dbi dbi;
    if (raw_dbi(t->st, db, &dbi) || klen == 0 || klen > 511)
        return -EINVAL;
    return st__put(t, dbi, key, klen, vlen ? val : "", vlen, 0);
}

int st_raw_del(st_txn *t, const char *db, const void *key, size_t klen)
{
    ST_CHECK_WRITE(t);
    MDB_dbi dbi;
    if (raw_dbi(t->st, db, &dbi) || klen == 0 || klen > 511)
        return -EINVAL;
    return st__del(t, dbi, key, klen);
}

int st_raw_count(st_txn *t, const char *db, uint64_t *n)
{
    ST_CHECK_TXN(t);
    MDB_dbi dbi;
    if (raw_dbi(t->st, db, &dbi))
        return -EINVAL;
    MDB_stat s;
    int rc = mdb_stat(t->txn, dbi, &s);
    if (rc)
        return st__fail(t, st__mdb_err(rc), "stat");
    *n = s.ms_entries;
    return 0;
}
