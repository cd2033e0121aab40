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
    for (size_t i = 0; i < s->n; i++) {
        if (s->r[i].len == 0)
            return "empty range";
        if (i > 0 && s->r[i - 1].off + s->r[i - 1].len >= s->r[i].off)
            return "ranges overlap or touch";
        if (s->r[i].len > s->r[i].cap)
            return "len beyond capacity";
        bytes += s->r[i].len;
        if (memcmp(s->r[i].data, ref + s->r[i].off, s->r[i].len) != 0)
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
    T_EQ(s.n, 1);
    T_EQ(s.r[0].off, 0);
    T_EQ(s.r[0].len, 24);
    T_MEM(s.r[0].data, "aaXXXXXXXXXXXXXXXXXXcccc", 24);
    T_OK(fs_stage_write(&s, 30, "d", 1));
    T_OK(fs_stage_write(&s, 29, "e", 1)); /* adjacent on the left */
    T_EQ(s.n, 2);
    T_EQ(s.r[1].off, 29);
    T_MEM(s.r[1].data, "ed", 2);
    T_EQ(s.bytes, 26);
    T_ERR(fs_stage_write(&s, UINT64_MAX - 1, "zz", 2), -EFBIG);
    fs_stage_release(&s);
}

int main(void)
{
    T_RUN(test_sequential_appends_make_one_range);
    T_RUN(test_random_writes_match_reference);
    T_RUN(test_write_bridging_ranges_merges_them);
    return t_done();
}
