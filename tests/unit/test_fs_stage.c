/*
 * test_fs_stage.c - write staging (fs/stage.c): merging of overlapping and
 * adjacent writes, sequential appends growing one range, overlay of staged
 * bytes over a read buffer, truncation, all against a reference buffer with
 * the stage's invariants checked after every step.
 */
#include "stage.h"
#include "lr.h"
#include "t.h"

#define REFLEN (1 << 20)
static uint8_t ref[REFLEN], mask[REFLEN];

/* Ranges sorted, disjoint, not touching; bytes adds up; content and
 * coverage equal the reference. Returns a message or NULL. */
static const char *invariants(const struct fs_stage *s)
{
    size_t bytes = 0;
    if (s->n != s->m.n + s->y.n)
        return "range count wrong";
    if (s->y.n > FS_STAGE_YOUNG)
        return "young array past its bound";
    static const struct fs_srange *r[REFLEN];
    fs_stage_sorted(s, r);
    for (size_t i = 0; i < s->n; i++) {
        if (r[i]->len == 0)
            return "empty range";
        if (i > 0 && r[i - 1]->off + r[i - 1]->len >= r[i]->off)
            return "ranges overlap or touch";
        if (r[i]->len > r[i]->cap)
            return "len beyond capacity";
        bytes += r[i]->len;
        if (memcmp(r[i]->data, ref + r[i]->off, r[i]->len) != 0)
            return "staged bytes differ from the reference";
    }
    if (bytes != s->bytes)
        return "bytes counter wrong";
    size_t covered = 0;
    for (size_t i = 0; i < REFLEN; i++)
        covered += mask[i];
    if (covered != bytes)
        return "coverage differs from the reference";
    return NULL;
}

static void test_sequential_appends_make_one_range(void)
{
    struct fs_stage s;
    fs_stage_init(&s);
    uint8_t buf[4096];
    for (int i = 0; i < 256; i++) {
        t_fill(buf, sizeof(buf), (uint64_t)i);
        T_OK(fs_stage_write(&s, (uint64_t)i * 4096, buf, sizeof(buf)));
    }
    T_EQ(s.n, 1);
    T_EQ(s.bytes, 256 * 4096);
    T_EQ(fs_stage_end(&s), 256 * 4096);
    fs_stage_release(&s);
    T_EQ(s.n, 0);
    T_EQ(s.bytes, 0);
}

static void test_random_writes_match_reference(void)
{
    struct fs_stage s;
    fs_stage_init(&s);
    memset(ref, 0, sizeof(ref));
    memset(mask, 0, sizeof(mask));
    static uint8_t buf[65536], got[65536];
    uint64_t x = 42;
    for (int step = 0; step < 3000; step++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t len = (size_t)(x % 3000) + 1;
        if (step % 50 == 0)
            len = (size_t)(x % sizeof(buf)) + 1;
        size_t off = (size_t)((x >> 20) % (REFLEN - len));
        t_fill(buf, len, x);
        T_OK(fs_stage_write(&s, off, buf, len));
        memcpy(ref + off, buf, len);
        memset(mask + off, 1, len);
        if (step % 100 == 0) {
            const char *err = invariants(&s);
            if (err)
                T_FAILF("step %d: %s", step, err);
        }
        /* Overlay a random window over a sentinel buffer. */
        size_t woff = (size_t)((x >> 7) % (REFLEN - sizeof(got))), wlen = (size_t)(x % sizeof(got)) + 1;
        memset(got, 0xee, wlen);
        fs_stage_overlay(&s, woff, wlen, got);
        int any = 0;
        for (size_t i = 0; i < wlen; i++) {
            uint8_t want = mask[woff + i] ? ref[woff + i] : 0xee;
            any |= mask[woff + i];
            if (got[i] != want)
                T_FAILF("step %d: overlay byte %zu: got %u, expected %u", step, woff + i, got[i], want);
        }
        T_EQ(fs_stage_overlaps(&s, woff, wlen), any);
    }
    const char *err = invariants(&s);
    if (err)
        T_FAILF("end: %s", err);

    /* Truncate in the middle of a range and between ranges. */
    size_t cut = REFLEN / 3;
    fs_stage_truncate(&s, cut);
    memset(mask + cut, 0, REFLEN - cut);
    T_TRUE(fs_stage_end(&s) <= cut);
    err = invariants(&s);
    if (err)
        T_FAILF("after truncate: %s", err);
    fs_stage_truncate(&s, 0);
    T_EQ(s.n, 0);
    T_EQ(s.bytes, 0);
    fs_stage_release(&s);
}

static void test_write_bridging_ranges_merges_them(void)
{
    struct fs_stage s;
    fs_stage_init(&s);
    T_OK(fs_stage_write(&s, 0, "aaaa", 4));
    T_OK(fs_stage_write(&s, 10, "bbbb", 4));
    T_OK(fs_stage_write(&s, 20, "cccc", 4));
    T_EQ(s.n, 3);
    T_OK(fs_stage_write(&s, 2, "XXXXXXXXXXXXXXXXXX", 18)); /* [2, 20): touches the third */
    const struct fs_srange *r[2];
    T_EQ(s.n, 1);
    fs_stage_sorted(&s, r);
    T_EQ(r[0]->off, 0);
    T_EQ(r[0]->len, 24);
    T_MEM(r[0]->data, "aaXXXXXXXXXXXXXXXXXXcccc", 24);
    T_OK(fs_stage_write(&s, 30, "d", 1));
    T_OK(fs_stage_write(&s, 29, "e", 1)); /* adjacent on the left */
    T_EQ(s.n, 2);
    fs_stage_sorted(&s, r);
    T_EQ(r[1]->off, 29);
    T_MEM(r[1]->data, "ed", 2);
    T_EQ(s.bytes, 26);
    T_ERR(fs_stage_write(&s, UINT64_MAX - 1, "zz", 2), -EFBIG);
    fs_stage_release(&s);
}

/* More isolated writes than the young array holds, in random order, then
 * writes bridging neighbours that may sit in either array. */
static void test_scattered_writes_past_the_young_bound(void)
{
    enum { SLOTS = 5000, GAP = 200, LEN = 100 };
    struct fs_stage s;
    fs_stage_init(&s);
    memset(ref, 0, sizeof(ref));
    memset(mask, 0, sizeof(mask));
    static uint32_t order[SLOTS];
    for (uint32_t i = 0; i < SLOTS; i++)
        order[i] = i;
    uint64_t x = 7;
    for (uint32_t i = SLOTS - 1; i > 0; i--) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uint32_t j = (uint32_t)(x % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    uint8_t buf[GAP];
    for (size_t k = 0; k < SLOTS; k++) {
        size_t off = (size_t)order[k] * GAP;
        t_fill(buf, LEN, k);
        T_OK(fs_stage_write(&s, off, buf, LEN));
        memcpy(ref + off, buf, LEN);
        memset(mask + off, 1, LEN);
        T_EQ(s.n, k + 1);
        if (k % 700 == 0 || k == SLOTS - 1) {
            const char *err = invariants(&s);
            if (err)
                T_FAILF("write %zu: %s", k, err);
        }
    }
    T_EQ(s.bytes, (size_t)SLOTS * LEN);
    /* [slot*GAP + 50, (slot+1)*GAP): joins slot and slot + 1. */
    size_t n = s.n;
    for (size_t k = 0; k < 400; k++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        size_t off = (size_t)(x % (SLOTS - 1)) * GAP + 50, len = GAP - 50;
        t_fill(buf, len, x);
        T_OK(fs_stage_write(&s, off, buf, len));
        memcpy(ref + off, buf, len);
        memset(mask + off, 1, len);
        T_TRUE(s.n <= n);
        n = s.n;
        const char *err = k % 50 ? NULL : invariants(&s);
        if (err)
            T_FAILF("bridge %zu: %s", k, err);
        uint8_t got[3 * GAP];
        size_t woff = off - GAP < off ? off - GAP : 0;
        memset(got, 0xee, sizeof(got));
        fs_stage_overlay(&s, woff, sizeof(got), got);
        for (size_t i = 0; i < sizeof(got); i++)
            if (got[i] != (mask[woff + i] ? ref[woff + i] : 0xee))
                T_FAILF("bridge %zu: overlay byte %zu wrong", k, woff + i);
    }
    const char *err = invariants(&s);
    if (err)
        T_FAILF("end: %s", err);
    T_EQ(fs_stage_end(&s), (uint64_t)(SLOTS - 1) * GAP + LEN);
    fs_stage_truncate(&s, (SLOTS / 2) * GAP + 10);
    memset(mask + (SLOTS / 2) * GAP + 10, 0, REFLEN - (SLOTS / 2) * GAP - 10);
    if ((err = invariants(&s)))
        T_FAILF("after truncate: %s", err);
    fs_stage_release(&s);
}

int main(void)
{
    T_RUN(test_sequential_appends_make_one_range);
    T_RUN(test_random_writes_match_reference);
    T_RUN(test_write_bridging_ranges_merges_them);
    T_RUN(test_scattered_writes_past_the_young_bound);
    return t_done();
}
