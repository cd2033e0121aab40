/*
 * problem.c - the problem table (e2fsck's model: every defect a named code
 * with its message and its fix) and the decision to fix: -n never, -y
 * always, -p only what is marked safe for preening, interactive asks.
 */
#include "fsck.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define P PR_PREEN_OK
static const struct fsck_problem problems[PR_COUNT] = {
    /* pass 1 */
    { PR_META_FORMAT, "META_FORMAT", "meta \"format\" is missing or not 4 bytes",
      "Write the current format version", 0 },
    { PR_META_VOLUME, "META_VOLUME", "meta \"volume\" (the volume id) is missing or not 16 bytes",
      "Give the volume a new random id (peers must be paired again)", 0 },
    { PR_META_DEVICE, "META_DEVICE", "meta \"device\" (this device's id) is missing or not 32 bytes",
      "Reset it to unset (zero)", 0 },
    { PR_META_CDC, "META_CDC", "meta \"cdc\" (chunker parameters) is missing or invalid",
      "Reset it to the defaults 16/64/256 KiB (existing data stays readable)", 0 },
    { PR_META_COUNTER, "META_COUNTER", "meta \"%s\" is missing or not 8 bytes",
      "Set it to %llu", P },
    { PR_META_COUNTER_LOW, "META_COUNTER_LOW", "meta \"%s\" is %llu but %llu is already in use",
      "Set it to %llu", P },
    /* pass 2 */
    { PR_CHUNK_BAD_KEY, "CHUNK_BAD_KEY", "chunk record with a %zu-byte key %s",
      "Remove it", P },
    { PR_CHUNK_HASH, "CHUNK_HASH", "chunk %s (%zu bytes) does not hash to its name",
      "Remove the bytes and mark the chunk not local (a read fetches it from a peer)", P },
    { PR_CHUNKREF_BAD_KEY, "CHUNKREF_BAD_KEY", "chunkref record with a %zu-byte key %s",
      "Remove it", P },
    { PR_CHUNKREF_LEN, "CHUNKREF_LEN", "chunkref %s says %u bytes, the chunk holds %u",
      "Set the length to %u", P },
    { PR_CHUNKREF_NOT_HERE, "CHUNKREF_NOT_HERE", "chunk %s is marked local but its bytes are not here",
      "Mark it not local", P },
    { PR_CHUNKREF_HERE, "CHUNKREF_HERE", "chunk %s has its bytes here but is marked not local",
      "Mark it local", P },
    /* pass 3 */
    { PR_EXTENT_BAD, "EXTENT_BAD", "extent record %s does not decode",
      "Remove it (the file keeps a hole)", P },
    { PR_EXTENT_NO_INODE, "EXTENT_NO_INODE", "extent of inode %llu at offset %llu: no such inode",
      "Remove it", P },
    { PR_EXTENT_NOT_FILE, "EXTENT_NOT_FILE", "extent of inode %llu at offset %llu: the inode is not a regular file or symlink",
      "Remove it", P },
    { PR_EXTENT_DANGLING, "EXTENT_DANGLING", "extent of inode %llu at offset %llu names unknown chunk %s",
      "Remove it (the file keeps a hole)", P },
    { PR_EXTENT_PAST_CHUNK, "EXTENT_PAST_CHUNK", "extent of inode %llu at offset %llu: bytes %u..%u lie outside chunk %s (%u bytes)",
      "Remove it (the file keeps a hole)", P },
    { PR_EXTENT_OVERLAP, "EXTENT_OVERLAP", "extent of inode %llu at offset %llu overlaps the one at offset %llu",
      "Remove it", 0 },
    { PR_EXTENT_PAST_SIZE, "EXTENT_PAST_SIZE", "extent of inode %llu at offset %llu lies past the file size %llu",
      "Remove it", P },
    { PR_EXTENT_STRADDLES_SIZE, "EXTENT_STRADDLES_SIZE", "extent of inode %llu at offset %llu (%u bytes) reaches past the file size %llu",
      "Trim it to %llu bytes", P },
    { PR_VERSION_BAD, "VERSION_BAD", "kept version %llu of inode %llu does not decode",
      "Remove it (its chunks are recounted by pass 4)", P },
    { PR_VERSION_NO_INODE, "VERSION_NO_INODE", "kept version %llu of inode %llu: no such inode",
      "Remove it (its chunks are recounted by pass 4)", P },
    { PR_VERSION_DANGLING, "VERSION_DANGLING", "kept version %llu of inode %llu names unknown chunk %s",
      "Remove the version (the current file is not affected)", P },
    /* pass 4 */
    { PR_CHUNKREF_BAD, "CHUNKREF_BAD", "chunkref %s does not decode",
      "Rebuild it from the chunk's bytes and the extents naming it", P },
    { PR_CHUNKREF_BAD_UNUSED, "CHUNKREF_BAD_UNUSED", "chunkref %s does not decode and no extent names it",
      "Remove it and the chunk's bytes", P },
    { PR_CHUNK_ORPHAN, "CHUNK_ORPHAN", "chunk %s (%u bytes, refcount %llu) is named by no extent",
      "Reclaim it", P },
    { PR_REFCOUNT, "REFCOUNT", "chunk %s has refcount %llu, extents naming it: %llu",
      "Set the refcount to %llu", P },
    { PR_CHUNKREF_MISSING, "CHUNKREF_MISSING", "chunk %s has bytes and %llu extents naming it but no chunkref",
      "Recreate the chunkref", P },
    { PR_CHUNK_NO_REF, "CHUNK_NO_REF", "chunk %s has bytes but no chunkref and no extent names it",
      "Remove the bytes", P },
    { PR_HOLDER_KEY, "HOLDER_KEY", "holder record %s is damaged (%zu-byte key, %zu-byte value, version %u)",
      "Remove it", P },
    { PR_HOLDER_ORPHAN, "HOLDER_ORPHAN", "peer %s is recorded as holding chunk %s, which has no chunkref",
      "Remove the record", P },
    { PR_CHUNK_PEERS, "CHUNK_PEERS", "chunkref %s counts %u peers holding the chunk, holder records: %u",
      "Set the count to %u", P },
    /* pass 5 */
    { PR_INODE_BAD_KEY, "INODE_BAD_KEY", "inode record with a bad key %s",
      "Remove it", P },
    { PR_INODE_BAD, "INODE_BAD", "inode %llu does not decode (%zu bytes)",
      "Delete the inode (its data and names go)", 0 },
    { PR_ROOT_BAD, "ROOT_BAD", "the root directory (inode 1) is missing or not a directory",
      "Create a new root directory (entries naming it as their directory stay)", 0 },
    { PR_DIRENT_BAD, "DIRENT_BAD", "directory entry record %s does not decode",
      "Remove it", P },
    { PR_DIRENT_BAD_PARENT, "DIRENT_BAD_PARENT", "entry '%s' in inode %llu: no such directory",
      "Remove the entry", P },
    { PR_DIRENT_DANGLING, "DIRENT_DANGLING", "entry '%s' in directory %llu names missing inode %llu",
      "Remove the entry", P },
    { PR_DIRENT_TYPE, "DIRENT_TYPE", "entry '%s' in directory %llu has type %u, inode %llu is of type %u",
      "Set the type to %u", P },
    { PR_DIR_EXTRA_NAME, "DIR_EXTRA_NAME", "directory %llu has a second name '%s' in directory %llu",
      "Remove that name", 0 },
    { PR_DIR_UNREACHABLE, "DIR_UNREACHABLE", "directory %llu is not reachable from the root",
      "Reconnect it to /lost+found", P },
    { PR_INODE_UNLINKED, "INODE_UNLINKED", "inode %llu has no name and link count 0 (unlinked while in use, then a crash)",
      "Delete it", P | PR_NOTE },
    { PR_INODE_ORPHAN, "INODE_ORPHAN", "inode %llu (mode %o, %llu bytes, link count %u) has no name",
      "Reconnect it to /lost+found", P },
    { PR_LOSTFOUND_CREATE, "LOSTFOUND_CREATE", "/lost+found is missing",
      "Create it", P },
    { PR_INODE_NLINK, "INODE_NLINK", "inode %llu has link count %u, counted %u",
      "Set it to %u", P },
    { PR_FID_BAD, "FID_BAD", "file id index record %s does not decode",
      "Remove it", P },
    { PR_FID_STALE, "FID_STALE", "file id %s is indexed to inode %llu, which does not hold it",
      "Remove the index record", P },
    { PR_FID_MISSING, "FID_MISSING", "file id %s of inode %llu is not in the index",
      "Add it", P },
    { PR_FID_DUPLICATE, "FID_DUPLICATE", "inode %llu has the file id %s of inode %llu",
      "Give inode %llu a new file id", 0 },
    { PR_BACKREF_BAD, "BACKREF_BAD", "name index record %s does not decode",
      "Remove it", P },
    { PR_BACKREF_STALE, "BACKREF_STALE", "name index says inode %llu is '%s' in %llu, no such entry",
      "Remove the index record", P },
    { PR_BACKREF_MISSING, "BACKREF_MISSING", "entry '%s' in %llu (inode %llu) is not in the name index",
      "Add it", P },
    { PR_XATTR_ORPHAN, "XATTR_ORPHAN", "extended attribute record %s belongs to no inode",
      "Remove it", P },
    /* pass 6 */
    { PR_LOG_BAD_KEY, "LOG_BAD_KEY", "change log record with a bad key %s",
      "Remove it", P },
    { PR_LOG_BAD_RECORD, "LOG_BAD_RECORD", "change log record %llu is damaged (%zu bytes, version %u)",
      "Remove it (peers that lack it will not receive that change)", 0 },
    { PR_LOG_SEQ, "LOG_SEQ", "change log holds sequence %llu but the next sequence number is %llu",
      "Set the next sequence number to %llu", P },
    { PR_PEER_BAD, "PEER_BAD", "peer record %s is damaged",
      "Remove it (add the peer again with 'landro peer add')", 0 },
};
#undef P

volatile sig_atomic_t fsck_interrupted;

const struct fsck_problem *fsck_problem_info(int code)
{
    if (code < 0 || code >= PR_COUNT)
        return NULL;
    return &problems[code];
}

/* Count the printf conversions of a format (no %% or * in our table). */
static int count_convs(const char *fmt)
{
    int n = 0;
    for (const char *p = fmt; *p; p++)
        if (*p == '%' && p[1] != '%')
            n++;
    return n;
}

/* Format both the message and the fix from one argument list: the message
 * uses the first arguments, the fix the ones after them. Arguments are of
 * mixed types, so they are passed through vsnprintf on a copy and skipped
 * by type for the fix. */
static void skip_args(const char *fmt, va_list *ap)
{
    for (const char *p = fmt; *p; p++) {
        if (*p != '%')
            continue;
        p++;
        int l = 0, z = 0;
        while (*p == 'l') { l++; p++; }
        if (*p == 'z') { z = 1; p++; }
        switch (*p) {
        case 's': (void)va_arg(*ap, const char *); break;
        case 'u': case 'd': case 'o': case 'x':
            if (z) (void)va_arg(*ap, size_t);
            else if (l >= 2) (void)va_arg(*ap, unsigned long long);
            else if (l == 1) (void)va_arg(*ap, unsigned long);
            else (void)va_arg(*ap, unsigned);
            break;
        default: break;
        }
    }
}

static int ask_tty(struct fsck *f)
{
    char line[64];
    for (;;) {
        printf(" [y/n/a(ll)] ");
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin)) {
            if (fsck_interrupted)
                return -1;
            printf("\n");
            return 0; /* end of input: no */
        }
        if (line[0] == 'y' || line[0] == 'Y')
            return 1;
        if (line[0] == 'n' || line[0] == 'N')
            return 0;
        if (line[0] == 'a' || line[0] == 'A') {
            f->yes_all = 1;
            return 1;
        }
    }
}

int fsck_problem(struct fsck *f, int code, ...)
{
    const struct fsck_problem *p = &problems[code];
    char msg[512], fix[256];
    va_list ap, ap2;
    va_start(ap, code);
    va_copy(ap2, ap);
    vsnprintf(msg, sizeof(msg), p->msg, ap);
    skip_args(p->msg, &ap2);
    if (count_convs(p->fix))
        vsnprintf(fix, sizeof(fix), p->fix, ap2);
    else
        snprintf(fix, sizeof(fix), "%s", p->fix);
    va_end(ap2);
    va_end(ap);

    fsck_progress_done(f);
    printf("%s: %s.\n", p->name, msg);
    int doit = 0;
    const char *why = NULL;
    if (p->flags & PR_NOFIX)
        why = "cannot be fixed";
    else if (f->mode == FSCK_NO)
        why = NULL;
    else if (f->mode == FSCK_YES)
        doit = 1;
    else if (f->mode == FSCK_PREEN) {
        doit = (p->flags & PR_PREEN_OK) != 0;
        if (!doit)
            why = "UNEXPECTED INCONSISTENCY: run landro-fsck -y";
    }
    if (f->mode == FSCK_ASK && !(p->flags & PR_NOFIX)) {
        if (f->yes_all) {
            doit = 1;
            printf("  %s? yes\n", fix);
        } else {
            printf("  %s?", fix);
            int a = ask_tty(f);
            if (a < 0) {
                a = 0;
            }
            doit = a;
        }
    } else if (why) {
        printf("  %s? no (%s)\n", fix, why);
    } else {
        printf("  %s? %s\n", fix, doit ? "yes" : "no");
    }
    if (doit)
        f->fixed++;
    else if (p->flags & PR_NOTE)
        f->notes++;
    else
        f->unfixed++;
    return doit;
}

/* ---- transactions, progress, hex --------------------------------------- */

int fsck_txn_begin(struct fsck *f, st_txn **txn)
{
    return st_txn_begin(f->st, f->mode == FSCK_NO ? ST_TXN_READ : ST_TXN_WRITE, txn);
}

int fsck_txn_end(struct fsck *f, st_txn *txn)
{
    if (f->mode == FSCK_NO) {
        st_txn_abort(txn);
        return 0;
    }
    int rc = st_txn_commit(txn);
    if (rc == 0)
        rc = st_sync(f->st);
    return rc;
}

void fsck_progress(struct fsck *f, const char *what, uint64_t done, uint64_t total)
{
    if (!f->progress || total == 0)
        return;
    /* Redraw at most every 1/256th of the way. */
    if (done != total && (done & 255) != 0 && done * 256 / total == (done - 1) * 256 / total)
        return;
    int width = 40, fill = (int)(done * (uint64_t)width / total);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : ' ';
    bar[width] = 0;
    fprintf(stderr, "\r%s [%s] %3d%%", what, bar, (int)(done * 100 / total));
    fflush(stderr);
    f->progress_shown = 1;
}

void fsck_progress_done(struct fsck *f)
{
    if (f->progress_shown)
        fprintf(stderr, "\r%*s\r", 75, "");
    f->progress_shown = 0;
}

const char *fsck_hex(const st_hash *h)
{
    static char ring[8][17];
    static unsigned i;
    char *b = ring[i++ % 8];
    for (int j = 0; j < 8; j++)
        sprintf(b + 2 * j, "%02x", h->b[j]);
    return b;
}

const char *fsck_bytes_hex(const void *p, size_t n)
{
    static char ring[4][96];
    static unsigned i;
    char *b = ring[i++ % 4];
    const uint8_t *s = p;
    size_t show = n > 40 ? 40 : n, o = 0;
    for (size_t j = 0; j < show; j++)
        o += (size_t)sprintf(b + o, "%02x", s[j]);
    if (n > show)
        sprintf(b + o, "..");
    if (n == 0)
        sprintf(b, "(empty)");
    return b;
}

/* ---- chunk table -------------------------------------------------------- */

static int ck_cmp(const void *a, const void *b)
{
    return memcmp(((const struct fsck_chunk *)a)->h.b, ((const struct fsck_chunk *)b)->h.b, ST_HASH_LEN);
}

void fsck_chunk_sort(struct fsck *f)
{
    if (!f->ck_sorted)
        qsort(f->ck, f->nck, sizeof(*f->ck), ck_cmp);
    f->ck_sorted = 1;
}

struct fsck_chunk *fsck_chunk_find(struct fsck *f, const st_hash *h)
{
    fsck_chunk_sort(f);
    struct fsck_chunk key;
    key.h = *h;
    return bsearch(&key, f->ck, f->nck, sizeof(*f->ck), ck_cmp);
}

struct fsck_chunk *fsck_chunk_add(struct fsck *f, const st_hash *h)
{
    if (f->nck == f->capck) {
        size_t cap = f->capck ? 2 * f->capck : 1024;
        struct fsck_chunk *n = realloc(f->ck, cap * sizeof(*n));
        if (!n)
            return NULL;
        f->ck = n;
        f->capck = cap;
    }
    /* Still sorted if appended in order (walks go in key order). */
    if (f->nck && memcmp(f->ck[f->nck - 1].h.b, h->b, ST_HASH_LEN) >= 0)
        f->ck_sorted = 0;
    struct fsck_chunk *c = &f->ck[f->nck++];
    memset(c, 0, sizeof(*c));
    c->h = *h;
    return c;
}

/* ---- key lists ----------------------------------------------------------- */

int fsck_keys_add(struct fsck_keys *ks, const void *k, size_t len)
{
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? 2 * ks->cap : 64;
        uint8_t **nk = realloc(ks->k, cap * sizeof(*nk));
        if (!nk)
            return -ENOMEM;
        ks->k = nk;
        size_t *nl = realloc(ks->len, cap * sizeof(*nl));
        if (!nl)
            return -ENOMEM;
        ks->len = nl;
        ks->cap = cap;
    }
    uint8_t *c = malloc(len ? len : 1);
    if (!c)
        return -ENOMEM;
    memcpy(c, k, len);
    ks->k[ks->n] = c;
    ks->len[ks->n++] = len;
    return 0;
}

void fsck_keys_release(struct fsck_keys *ks)
{
    for (size_t i = 0; i < ks->n; i++)
        free(ks->k[i]);
    free(ks->k);
    free(ks->len);
    memset(ks, 0, sizeof(*ks));
}

/* ---- pass header and statistics ----------------------------------------- */

void fsck_pass_begin(struct fsck *f, int n, const char *title, uint64_t *t0)
{
    printf("Pass %d: %s\n", n, title);
    fflush(stdout);
    *t0 = lr_now_mono_ns();
}

void fsck_pass_end(struct fsck *f, int n, uint64_t t0, const char *fmt, ...)
{
    if (!f->verbose)
        return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    double s = (double)(lr_now_mono_ns() - t0) / 1e9;
    printf("Pass %d: %s in %.3f s\n", n, buf, s);
}
