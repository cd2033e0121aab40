/* stage.c - in-memory write staging for one inode. See stage.h. */
#include "stage.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lr.h"

void fs_stage_init(struct fs_stage *s)
{
    memset(s, 0, sizeof(*s));
}

void fs_stage_release(struct fs_stage *s)
{
    struct fs_sarr *a[2] = { &s->m, &s->y };
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < a[k]->n; i++)
            free(a[k]->r[i].data);
        free(a[k]->r);
    }
    free(s->spare);
    fs_stage_init(s);
}

void fs_stage_clear(struct fs_stage *s)
{
    struct fs_sarr *a[2] = { &s->m, &s->y };
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < a[k]->n; i++) {
            struct fs_srange *r = &a[k]->r[i];
            if (r->cap > s->spare_cap) {
                free(s->spare);
                s->spare = r->data;
                s->spare_cap = r->cap;
            } else {
                free(r->data);
            }
        }
        a[k]->n = 0;
    }
    s->n = 0;
    s->bytes = 0;
}

static uint64_t rend(const struct fs_srange *r) { return r->off + r->len; }

/* First index of a whose range ends at or after off (so it overlaps or
 * touches a write starting at off); a->n if none. O(log n). */
static size_t first_touching(const struct fs_sarr *a, uint64_t off)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rend(&a->r[mid]) < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* [*i, *j): the ranges of a that overlap or touch [off, end]. */
static void touching(const struct fs_sarr *a, uint64_t off, uint64_t end, size_t *i, size_t *j)
{
    *i = *j = first_touching(a, off);
    while (*j < a->n && a->r[*j].off <= end)
        (*j)++;
}

static int reserve(struct fs_sarr *a, size_t need)
{
    if (need <= a->cap)
        return 0;
    size_t cap = a->cap ? a->cap : 16;
    while (cap < need)
        cap *= 2;
    struct fs_srange *r = realloc(a->r, cap * sizeof(*r));
    if (!r)
        return -ENOMEM;
    a->r = r;
    a->cap = cap;
    return 0;
}

static int grow_to(struct fs_srange *r, size_t need)
{
    if (need <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *d = realloc(r->data, cap);
    if (!d)
        return -ENOMEM;
    r->data = d;
    r->cap = cap;
    return 0;
}

/* Move every young range into the main array (no two touch, so a plain
 * merge of two sorted arrays, done from the back in place). O(n). */
static int merge_young(struct fs_stage *s)
{
    if (s->y.n == 0)
        return 0;
    if (reserve(&s->m, s->m.n + s->y.n))
        return -ENOMEM;
    size_t i = s->m.n, j = s->y.n, k = s->m.n + s->y.n;
    while (j > 0) {
        if (i > 0 && s->m.r[i - 1].off > s->y.r[j - 1].off)
            s->m.r[--k] = s->m.r[--i];
        else
            s->m.r[--k] = s->y.r[--j];
    }
    s->m.n += s->y.n;
    s->y.n = 0;
    return 0;
}

/* Insert a new range holding buf at index i of a (touching none). */
static int insert_at(struct fs_stage *s, struct fs_sarr *a, size_t i, uint64_t off,
                     const void *buf, size_t len)
{
    if (reserve(a, a->n + 1))
        return -ENOMEM;
    struct fs_srange nr = { .off = off };
    if (s->spare) { /* reuse the buffer of the last commit */
        nr.data = s->spare;
        nr.cap = s->spare_cap;
        s->spare = NULL;
        s->spare_cap = 0;
    }
    if (grow_to(&nr, len)) {
        free(nr.data);
        return -ENOMEM;
    }
    memcpy(nr.data, buf, len);
    nr.len = len;
    memmove(&a->r[i + 1], &a->r[i], (a->n - i) * sizeof(*a->r));
    a->r[i] = nr;
    a->n++;
    s->n++;
    s->bytes += len;
    return 0;
}

/* Merge a->r[i..j) (i < j, all touching [off, off+len]) and the write
 * into a->r[i]. */
static int merge_at(struct fs_stage *s, struct fs_sarr *a, size_t i, size_t j, uint64_t off,
                    const void *buf, size_t len)
{
    struct fs_srange *r = &a->r[i];
    uint64_t noff = LR_MIN(off, r->off);
    uint64_t nend = LR_MAX(off + len, rend(&a->r[j - 1]));
    size_t nlen = (size_t)(nend - noff);
    size_t old_bytes = 0;
    for (size_t k = i; k < j; k++)
        old_bytes += a->r[k].len;
    if (noff == r->off) {
        /* Grow r in place (the sequential-append case). */
        if (grow_to(r, nlen))
            return -ENOMEM;
        for (size_t k = i + 1; k < j; k++)
            memcpy(r->data + (a->r[k].off - noff), a->r[k].data, a->r[k].len);
    } else {
        struct fs_srange nr = { .off = noff };
        if (grow_to(&nr, nlen))
            return -ENOMEM;
        for (size_t k = i; k < j; k++)
            memcpy(nr.data + (a->r[k].off - noff), a->r[k].data, a->r[k].len);
        free(r->data);
        *r = nr;
    }
    memcpy(r->data + (off - noff), buf, len);
    r->len = nlen;
    for (size_t k = i + 1; k < j; k++)
        free(a->r[k].data);
    memmove(&a->r[i + 1], &a->r[j], (a->n - j) * sizeof(*a->r));
    a->n -= j - i - 1;
    s->n -= j - i - 1;
    s->bytes = s->bytes - old_bytes + nlen;
    return 0;
}

int fs_stage_write(struct fs_stage *s, uint64_t off, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (off + len < off)
        return -EFBIG;
    uint64_t end = off + len;
    if (s->n == 0)
        s->born_ns = lr_now_mono_ns();
    size_t im, jm, iy, jy;
    touching(&s->m, off, end, &im, &jm);
    touching(&s->y, off, end, &iy, &jy);
    if (im == jm && iy == jy) { /* no neighbour: a new young range */
        if (s->y.n == FS_STAGE_YOUNG) {
            if (merge_young(s))
                return -ENOMEM;
            iy = 0;
        }
        return insert_at(s, &s->y, iy, off, buf, len);
    }
    if (im == jm)
        return merge_at(s, &s->y, iy, jy, off, buf, len);
    if (iy != jy) { /* neighbours in both arrays: bring them together */
        if (merge_young(s))
            return -ENOMEM;
        touching(&s->m, off, end, &im, &jm);
    }
    return merge_at(s, &s->m, im, jm, off, buf, len);
}

void fs_stage_sorted(const struct fs_stage *s, const struct fs_srange **out)
{
    size_t i = 0, j = 0, k = 0;
    while (i < s->m.n || j < s->y.n) {
        if (j == s->y.n || (i < s->m.n && s->m.r[i].off < s->y.r[j].off))
            out[k++] = &s->m.r[i++];
        else
            out[k++] = &s->y.r[j++];
    }
}

static int arr_overlaps(const struct fs_sarr *a, uint64_t off, size_t len)
{
    size_t i = first_touching(a, off + 1);
    return i < a->n && a->r[i].off < off + len;
}

int fs_stage_overlaps(const struct fs_stage *s, uint64_t off, size_t len)
{
    if (len == 0 || s->n == 0)
        return 0;
    return arr_overlaps(&s->m, off, len) || arr_overlaps(&s->y, off, len);
}

void fs_stage_overlay(const struct fs_stage *s, uint64_t off, size_t len, uint8_t *dst)
{
    uint64_t end = off + len;
    const struct fs_sarr *a[2] = { &s->m, &s->y };
    for (int k = 0; k < 2; k++)
        for (size_t i = first_touching(a[k], off + 1); i < a[k]->n && a[k]->r[i].off < end; i++) {
            const struct fs_srange *r = &a[k]->r[i];
            uint64_t lo = LR_MAX(off, r->off), hi = LR_MIN(end, rend(r));
            if (lo < hi)
                memcpy(dst + (lo - off), r->data + (lo - r->off), (size_t)(hi - lo));
        }
}

uint64_t fs_stage_end(const struct fs_stage *s)
{
    uint64_t e = s->m.n ? rend(&s->m.r[s->m.n - 1]) : 0;
    return s->y.n ? LR_MAX(e, rend(&s->y.r[s->y.n - 1])) : e;
}

static void arr_truncate(struct fs_stage *s, struct fs_sarr *a, uint64_t size)
{
    while (a->n > 0) {
        struct fs_srange *r = &a->r[a->n - 1];
        if (r->off >= size) {
            s->bytes -= r->len;
            free(r->data);
            a->n--;
            s->n--;
            continue;
        }
        if (rend(r) > size) {
            s->bytes -= r->len - (size_t)(size - r->off);
            r->len = (size_t)(size - r->off);
        }
        break;
    }
}

void fs_stage_truncate(struct fs_stage *s, uint64_t size)
{
    arr_truncate(s, &s->m, size);
    arr_truncate(s, &s->y, size);
    if (s->n == 0)
        fs_stage_clear(s);
}
