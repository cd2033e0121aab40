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
    for (size_t i = 0; i < s->n; i++)
        free(s->r[i].data);
    free(s->r);
    free(s->spare);
    fs_stage_init(s);
}

void fs_stage_clear(struct fs_stage *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct fs_srange *r = &s->r[i];
        if (r->cap > s->spare_cap) {
            free(s->spare);
            s->spare = r->data;
            s->spare_cap = r->cap;
        } else {
            free(r->data);
        }
    }
    s->n = 0;
    s->bytes = 0;
}

static uint64_t rend(const struct fs_srange *r) { return r->off + r->len; }

/* First index whose range ends at or after off (so it overlaps or touches
 * a write starting at off); s->n if none. O(log n). */
static size_t first_touching(const struct fs_stage *s, uint64_t off)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rend(&s->r[mid]) < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
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

int fs_stage_write(struct fs_stage *s, uint64_t off, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (off + len < off)
        return -EFBIG;
    uint64_t end = off + len;
    size_t i = first_touching(s, off);
    size_t j = i; /* one past the last range touching [off, end] */
    while (j < s->n && s->r[j].off <= end)
        j++;
    if (s->n == 0)
        s->born_ns = lr_now_mono_ns();

    if (i == j) { /* no neighbour: insert a new range at i */
        if (s->n == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 16;
            struct fs_srange *r = realloc(s->r, cap * sizeof(*r));
            if (!r)
                return -ENOMEM;
            s->r = r;
            s->cap = cap;
        }
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
        memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
        s->r[i] = nr;
        s->n++;
        s->bytes += len;
        return 0;
    }

    /* Merge r[i..j) and the write into r[i]. */
    struct fs_srange *a = &s->r[i];
    uint64_t noff = LR_MIN(off, a->off);
    uint64_t nend = LR_MAX(end, rend(&s->r[j - 1]));
    size_t nlen = (size_t)(nend - noff);
    size_t old_bytes = 0;
    for (size_t k = i; k < j; k++)
        old_bytes += s->r[k].len;
    if (noff == a->off) {
        /* Grow a in place (the sequential-append case). */
        if (grow_to(a, nlen))
            return -ENOMEM;
        for (size_t k = i + 1; k < j; k++)
            memcpy(a->data + (s->r[k].off - noff), s->r[k].data, s->r[k].len);
    } else {
        struct fs_srange nr = { .off = noff };
        if (grow_to(&nr, nlen))
            return -ENOMEM;
        for (size_t k = i; k < j; k++)
            memcpy(nr.data + (s->r[k].off - noff), s->r[k].data, s->r[k].len);
        free(a->data);
        *a = nr;
    }
    memcpy(a->data + (off - noff), buf, len);
    a->len = nlen;
    for (size_t k = i + 1; k < j; k++)
        free(s->r[k].data);
    memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(*s->r));
    s->n -= j - i - 1;
    s->bytes = s->bytes - old_bytes + nlen;
    return 0;
}

int fs_stage_overlaps(const struct fs_stage *s, uint64_t off, size_t len)
{
    if (len == 0 || s->n == 0)
        return 0;
    size_t i = first_touching(s, off + 1);
    return i < s->n && s->r[i].off < off + len;
}

void fs_stage_overlay(const struct fs_stage *s, uint64_t off, size_t len, uint8_t *dst)
{
    uint64_t end = off + len;
    for (size_t i = first_touching(s, off + 1); i < s->n && s->r[i].off < end; i++) {
        const struct fs_srange *r = &s->r[i];
        uint64_t lo = LR_MAX(off, r->off), hi = LR_MIN(end, rend(r));
        if (lo < hi)
            memcpy(dst + (lo - off), r->data + (lo - r->off), (size_t)(hi - lo));
    }
}

uint64_t fs_stage_end(const struct fs_stage *s)
{
    return s->n ? rend(&s->r[s->n - 1]) : 0;
}

void fs_stage_truncate(struct fs_stage *s, uint64_t size)
{
    while (s->n > 0) {
        struct fs_srange *r = &s->r[s->n - 1];
        if (r->off >= size) {
            s->bytes -= r->len;
            free(r->data);
            s->n--;
            continue;
        }
        if (rend(r) > size) {
            s->bytes -= r->len - (size_t)(size - r->off);
            r->len = (size_t)(size - r->off);
        }
        break;
    }
    if (s->n == 0)
        fs_stage_clear(s);
}
