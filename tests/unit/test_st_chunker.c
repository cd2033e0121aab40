/*
 * test_st_chunker.c - FastCDC chunker: parameter checks, the gear table
 * against its generator, agreement with a byte-at-a-time reference of the
 * definition in chunker.c, min/max bounds, average size, resynchronisation
 * after an insert and a delete, streaming and eof semantics, and golden cut
 * points for 8 MiB of t_fill() data (tests/data/cdc_golden.txt;
 * LANDRO_REGEN=1 rewrites the file).
 */
#include "chunker.h"
#include "hash.h"
#include "lr.h"
#include "t.h"

extern const uint64_t st_cdc_gear[256];

#define GOLDEN_PATH "tests/data/cdc_golden.txt"
#define GOLDEN_SEED 0x4c414e44524f31ull /* "LANDRO1" */
#define GOLDEN_LEN (8u << 20)

static struct st_cdc_params defaults(void)
{
    struct st_cdc_params p;
    st_cdc_defaults(&p);
    return p;
}

/* Split buf into chunks; lens[] gets up to max lengths. Returns the count. */
static size_t chunk_all(const struct st_cdc_params *p, const uint8_t *buf, size_t len,
                        size_t *lens, size_t max)
{
    size_t n = 0, off = 0;
    while (off < len && n < max) {
        size_t c = st_cdc_cut(p, buf + off, len - off, 1);
        if (c == 0)
            return n; /* cannot happen with eof; the caller's checks catch it */
        lens[n++] = c;
        off += c;
    }
    return n;
}

/* The definition, one byte at a time (see chunker.c). */
static size_t ref_cut(const struct st_cdc_params *p, const uint8_t *buf, size_t len, int eof)
{
    unsigned bits = 0;
    while ((1u << bits) < p->avg)
        bits++;
    uint64_t h = 0;
    size_t end = len < p->max ? len : p->max;
    for (size_t i = p->min; i < end; i++) {
        h = (h << 1) + st_cdc_gear[buf[i]];
        unsigned b = i < p->avg ? bits + 2 : bits - 2;
        if ((h >> (64 - b)) == 0)
            return i + 1;
    }
    if (len >= p->max)
        return p->max;
    return eof ? len : 0;
}

static void test_check_rejects_bad_params(void)
{
    struct st_cdc_params p = defaults();
    T_OK(st_cdc_check(&p));
    T_EQ(p.min, 16384);
    T_EQ(p.avg, 65536);
    T_EQ(p.max, 262144);
    struct st_cdc_params bad[] = {
        { 63, 128, 256 },                   /* min below 64 */
        { 0, 128, 256 },
        { 128, 128, 256 },                  /* min == avg */
        { 256, 128, 512 },                  /* min > avg */
        { 64, 256, 256 },                   /* avg == max */
        { 64, 512, 256 },                   /* avg > max */
        { 64, 96, 256 },                    /* avg not a power of two */
        { 16384, 65536, ST_CDC_MAX_LIMIT + 1 },
        { 16384, 65535, 262144 },
    };
    for (size_t i = 0; i < LR_ARRAY_SIZE(bad); i++)
        if (st_cdc_check(&bad[i]) != LR_EPARAMS)
            T_FAILF("params %u/%u/%u: expected LR_EPARAMS, got %d", bad[i].min, bad[i].avg,
                    bad[i].max, st_cdc_check(&bad[i]));
    struct st_cdc_params edge = { 64, 128, ST_CDC_MAX_LIMIT };
    T_OK(st_cdc_check(&edge));
    T_ERR(st_cdc_check(NULL), LR_EPARAMS);
}

static void test_gear_table_is_splitmix64_of_landrocd(void)
{
    uint64_t s = 0x6c616e64726f4344ull;
    for (int i = 0; i < 256; i++) {
        s += 0x9e3779b97f4a7c15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        if (st_cdc_gear[i] != z)
            T_FAILF("gear[%d]: expected %016" PRIx64 ", got %016" PRIx64, i, z, st_cdc_gear[i]);
    }
}

/* The unrolled loop agrees with the reference at every cut, for odd and
 * even parameter alignments and buffer lengths, with and without eof. */
static void test_matches_reference_definition(void)
{
    struct st_cdc_params ps[] = {
        { 16384, 65536, 262144 }, { 64, 128, 256 }, { 65, 256, 1021 },
        { 1027, 4096, 16383 }, { 2000, 8192, 70001 },
    };
    size_t len = 1u << 20;
    uint8_t *buf = malloc(len);
    t_fill(buf, len, 77);
    for (size_t k = 0; k < LR_ARRAY_SIZE(ps); k++) {
        const struct st_cdc_params *p = &ps[k];
        size_t off = 0, n = 0;
        while (off < len) {
            size_t rest = len - off;
            for (int eof = 0; eof < 2; eof++) {
                /* a few truncated views of the same position too */
                size_t views[] = { rest, rest > 5 ? rest - 3 : rest, p->min + 1, p->avg + 3 };
                for (size_t v = 0; v < LR_ARRAY_SIZE(views); v++) {
                    size_t l = views[v] < rest ? views[v] : rest;
                    size_t a = st_cdc_cut(p, buf + off, l, eof), b = ref_cut(p, buf + off, l, eof);
                    if (a != b) {
                        free(buf);
                        T_FAILF("params %u/%u/%u at %zu len %zu eof %d: reference cut %zu, got %zu",
                                p->min, p->avg, p->max, off, l, eof, b, a);
                    }
                }
            }
            off += st_cdc_cut(p, buf + off, rest, 1);
            n++;
        }
        if (n < 3) {
            free(buf);
            T_FAILF("params %u/%u/%u: only %zu chunks in 1 MiB", p->min, p->avg, p->max, n);
        }
    }
    free(buf);
}

/* What a rewrite relies on: for a chunk c found by a full scan, the scan
 * from any known below c (the first known bytes unchanged, anything after
 * them changed) finds the same cut as a full scan of the changed bytes. */
static void test_cut_after_known_prefix_equals_a_full_scan(void)
{
    struct st_cdc_params ps[] = { { 16384, 65536, 262144 }, { 64, 128, 256 }, { 1027, 4096, 16383 } };
    size_t len = 1u << 20;
    uint8_t *buf = malloc(len), *mod = malloc(len);
    t_fill(buf, len, 78);
    uint64_t rng = 3;
    for (size_t k = 0; k < LR_ARRAY_SIZE(ps); k++) {
        const struct st_cdc_params *p = &ps[k];
        for (size_t off = 0; off + p->max < len;) {
            size_t c = st_cdc_cut(p, buf + off, len - off, 1);
            for (int trial = 0; trial < 8; trial++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                size_t known = (size_t)((rng >> 20) % c); /* 0 .. c - 1 */
                memcpy(mod, buf + off, p->max);
                for (size_t i = known + 1; i < p->max; i += 1 + (size_t)(rng >> 50) % 97)
                    mod[i] ^= (uint8_t)(rng >> 8) | 1; /* bytes after known change */
                for (int eof = 0; eof < 2; eof++) {
                    size_t l = p->max - (size_t)(rng >> 40) % 7;
                    size_t want = ref_cut(p, mod, l, eof);
                    size_t got = st_cdc_cut_after(p, mod, l, eof, known);
                    if (got != want) {
                        free(buf);
                        free(mod);
                        T_FAILF("params %u/%u/%u at %zu, chunk %zu, known %zu, eof %d: want %zu, got %zu",
                                p->min, p->avg, p->max, off, c, known, eof, want, got);
                    }
                }
            }
            off += c;
        }
    }
    free(buf);
    free(mod);
}

static void test_chunks_respect_min_and_max(void)
{
    struct st_cdc_params ps[] = { defaults(), { 256, 1024, 4096 } };
    size_t len = 16u << 20;
    uint8_t *buf = malloc(len);
    size_t *lens = malloc(sizeof(size_t) * 100000);
    t_fill(buf, len, 3);
    /* some long runs of one byte, where no cut ever fires */
    memset(buf + (1u << 20), 0, 1u << 20);
    memset(buf + (5u << 20), 0xff, 600000);
    for (size_t k = 0; k < LR_ARRAY_SIZE(ps); k++) {
        size_t n = chunk_all(&ps[k], buf, len, lens, 100000), sum = 0, nmax = 0;
        for (size_t i = 0; i < n; i++) {
            sum += lens[i];
            nmax += lens[i] == ps[k].max;
            if (lens[i] > ps[k].max || (i + 1 < n && lens[i] <= ps[k].min)) {
                size_t bad = lens[i];
                free(buf); free(lens);
                T_FAILF("chunk %zu of %zu: length %zu outside (%u, %u]", i, n, bad,
                        ps[k].min, ps[k].max);
            }
        }
        if (sum != len || nmax == 0) {
            free(buf); free(lens);
            T_FAILF("params %u: chunks cover %zu of %zu bytes, %zu at max (expected > 0: zero runs)",
                    ps[k].avg, sum, len, nmax);
        }
    }
    free(buf);
    free(lens);
}

static void test_average_near_avg_on_random_data(void)
{
    struct st_cdc_params ps[] = { defaults(), { 1024, 4096, 16384 } };
    size_t len = 32u << 20;
    uint8_t *buf = malloc(len);
    size_t *lens = malloc(sizeof(size_t) * 100000);
    t_fill(buf, len, 11);
    for (size_t k = 0; k < LR_ARRAY_SIZE(ps); k++) {
        size_t n = chunk_all(&ps[k], buf, len, lens, 100000);
        double mean = (double)len / (double)n;
        printf("  params %u/%u/%u: %zu chunks, mean %.0f bytes\n", ps[k].min, ps[k].avg,
               ps[k].max, n, mean);
        if (mean < 0.75 * ps[k].avg || mean > 1.5 * ps[k].avg) {
            free(buf); free(lens);
            T_FAILF("mean chunk %.0f outside [0.75, 1.5] x avg %u", mean, ps[k].avg);
        }
    }
    free(buf);
    free(lens);
}

struct chunk_list { size_t n; size_t off[1024]; size_t len[1024]; st_hash h[1024]; };

static void list_chunks(const uint8_t *buf, size_t len, struct chunk_list *cl)
{
    struct st_cdc_params p = defaults();
    size_t off = 0;
    cl->n = 0;
    while (off < len && cl->n < 1024) {
        size_t c = st_cdc_cut(&p, buf + off, len - off, 1);
        cl->off[cl->n] = off;
        cl->len[cl->n] = c;
        st_hash_compute(buf + off, c, &cl->h[cl->n]);
        cl->n++;
        off += c;
    }
}

/* Compare two chunkings: the chunks before the edit are equal, then at most
 * `slack` chunks differ, then the rest are equal again (same hashes, same
 * count to the end). */
static int resync_ok(const struct chunk_list *a, const struct chunk_list *b, size_t edit_off,
                     size_t slack, char *why, size_t whylen)
{
    size_t i = 0;
    while (i < a->n && i < b->n && !memcmp(&a->h[i], &b->h[i], sizeof(st_hash)))
        i++;
    if (i == a->n || a->off[i] + a->len[i] <= edit_off) {
        snprintf(why, whylen, "first difference at chunk %zu, before the edit at %zu", i, edit_off);
        return 0;
    }
    size_t ta = a->n, tb = b->n;
    while (ta > i && tb > i && !memcmp(&a->h[ta - 1], &b->h[tb - 1], sizeof(st_hash)))
        ta--, tb--;
    if (ta - i > slack || tb - i > slack) {
        snprintf(why, whylen, "%zu old and %zu new chunks differ around the edit (of %zu), slack %zu",
                 ta - i, tb - i, a->n, slack);
        return 0;
    }
    if (a->n - ta < a->n / 3) {
        snprintf(why, whylen, "only %zu of %zu chunks equal after the edit", a->n - ta, a->n);
        return 0;
    }
    return 1;
}

static void test_insert_and_delete_resynchronise(void)
{
    size_t len = 8u << 20, mid = len / 2 + 12345;
    uint8_t *a = malloc(len), *b = malloc(len + 100);
    struct chunk_list *ca = malloc(sizeof(*ca)), *cb = malloc(sizeof(*cb));
    char why[200];
    t_fill(a, len, 5);
    list_chunks(a, len, ca);

    /* insert 100 bytes in the middle */
    memcpy(b, a, mid);
    t_fill(b + mid, 100, 6);
    memcpy(b + mid + 100, a + mid, len - mid);
    list_chunks(b, len + 100, cb);
    int ok = resync_ok(ca, cb, mid, 3, why, sizeof(why));
    /* delete 1 byte */
    if (ok) {
        memcpy(b, a, mid);
        memcpy(b + mid, a + mid + 1, len - mid - 1);
        list_chunks(b, len - 1, cb);
        ok = resync_ok(ca, cb, mid, 3, why, sizeof(why));
    }
    /* overwrite one byte */
    if (ok) {
        memcpy(b, a, len);
        b[mid] ^= 0x40;
        list_chunks(b, len, cb);
        ok = resync_ok(ca, cb, mid, 3, why, sizeof(why));
    }
    free(a); free(b); free(ca); free(cb);
    if (!ok)
        T_FAILF("%s", why);
}

static void test_deterministic_and_streaming_equals_whole(void)
{
    struct st_cdc_params p = defaults();
    size_t len = 4u << 20;
    uint8_t *buf = malloc(len);
    t_fill(buf, len, 21);
    /* Streaming: offer the chunker a growing window (as a reader filling a
     * buffer would) and cut only when it says so; boundaries must equal the
     * whole-buffer ones, and two whole-buffer runs must agree. */
    size_t off = 0, avail = 0, step = 10007;
    size_t woff = 0;
    while (off < len) {
        size_t c = st_cdc_cut(&p, buf + off, avail - off, avail == len);
        if (c == 0) {
            avail = avail + step > len ? len : avail + step;
            continue;
        }
        size_t w1 = st_cdc_cut(&p, buf + woff, len - woff, 1);
        size_t w2 = st_cdc_cut(&p, buf + woff, len - woff, 1);
        if (woff != off || w1 != c || w2 != w1) {
            free(buf);
            T_FAILF("at %zu: streaming cut %zu, whole-buffer cuts %zu and %zu at %zu", off, c,
                    w1, w2, woff);
        }
        off += c;
        woff += w1;
    }
    free(buf);
}

static void test_eof_semantics(void)
{
    struct st_cdc_params p = defaults();
    size_t len = p.max * 2;
    uint8_t *zeros = calloc(1, len);
    /* no cut ever fires in zeros: */
    T_EQ(st_cdc_cut(&p, zeros, 0, 1), 0);
    T_EQ(st_cdc_cut(&p, zeros, 0, 0), 0);
    T_EQ(st_cdc_cut(&p, zeros, 100, 0), 0);          /* short, more may come */
    T_EQ(st_cdc_cut(&p, zeros, 100, 1), 100);        /* short final chunk */
    T_EQ(st_cdc_cut(&p, zeros, p.min, 1), p.min);
    T_EQ(st_cdc_cut(&p, zeros, p.max - 1, 0), 0);
    T_EQ(st_cdc_cut(&p, zeros, p.max - 1, 1), p.max - 1);
    T_EQ(st_cdc_cut(&p, zeros, p.max, 0), p.max);    /* full window: max */
    T_EQ(st_cdc_cut(&p, zeros, p.max, 1), p.max);
    T_EQ(st_cdc_cut(&p, zeros, len, 0), p.max);
    free(zeros);

    /* a cut inside a short buffer is returned without eof */
    uint8_t *r = malloc(len);
    t_fill(r, len, 8);
    size_t c = st_cdc_cut(&p, r, len, 1);
    T_TRUE(c > p.min && c < p.max);
    T_EQ(st_cdc_cut(&p, r, c, 0), c);
    T_EQ(st_cdc_cut(&p, r, c - 1, 0), 0);
    T_EQ(st_cdc_cut(&p, r, c - 1, 1), c - 1);
    free(r);
}

static void golden_line(char *line, size_t n, size_t off, size_t len, const uint8_t *buf)
{
    st_hash h;
    char hex[65];
    st_hash_compute(buf + off, len, &h);
    snprintf(line, n, "%zu %zu %s\n", off, len, st_hash_hex(&h, hex));
}

static void test_golden_cut_points(void)
{
    struct st_cdc_params p = defaults();
    uint8_t *buf = malloc(GOLDEN_LEN);
    char line[200], want[200];
    t_fill(buf, GOLDEN_LEN, GOLDEN_SEED);

    const char *regen = getenv("LANDRO_REGEN");
    if (regen && !strcmp(regen, "1")) {
        FILE *f = fopen(GOLDEN_PATH, "w");
        if (!f) {
            free(buf);
            T_FAILF("cannot write '%s': %s", GOLDEN_PATH, strerror(errno));
        }
        fprintf(f, "# FastCDC cut points (min 16384, avg 65536, max 262144) of 8 MiB of\n"
                   "# t_fill(seed 0x%" PRIx64 "): offset length sha256. Written by\n"
                   "# LANDRO_REGEN=1 build/tests/test_st_chunker; see test_st_chunker.c.\n",
                (uint64_t)GOLDEN_SEED);
        for (size_t off = 0; off < GOLDEN_LEN;) {
            size_t c = st_cdc_cut(&p, buf + off, GOLDEN_LEN - off, 1);
            golden_line(line, sizeof(line), off, c, buf);
            fputs(line, f);
            off += c;
        }
        fclose(f);
        printf("  wrote %s\n", GOLDEN_PATH);
    }

    FILE *f = fopen(GOLDEN_PATH, "r");
    if (!f) {
        free(buf);
        T_FAILF("cannot open '%s' (run from the top of the tree): %s", GOLDEN_PATH, strerror(errno));
    }
    size_t off = 0, n = 0;
    while (fgets(want, sizeof(want), f)) {
        if (want[0] == '#')
            continue;
        if (off >= GOLDEN_LEN) {
            fclose(f); free(buf);
            T_FAILF("golden file has more chunks than the %zu produced", n);
        }
        size_t c = st_cdc_cut(&p, buf + off, GOLDEN_LEN - off, 1);
        golden_line(line, sizeof(line), off, c, buf);
        if (strcmp(line, want)) {
            fclose(f); free(buf);
            T_FAILF("chunk %zu: expected \"%.*s\", got \"%.*s\"", n, (int)strcspn(want, "\n"),
                    want, (int)strcspn(line, "\n"), line);
        }
        off += c;
        n++;
    }
    fclose(f);
    free(buf);
    if (off != GOLDEN_LEN || n < 50)
        T_FAILF("golden file covers %zu of %u bytes in %zu chunks", off, GOLDEN_LEN, n);
}

int main(void)
{
    T_RUN(test_check_rejects_bad_params);
    T_RUN(test_gear_table_is_splitmix64_of_landrocd);
    T_RUN(test_matches_reference_definition);
    T_RUN(test_cut_after_known_prefix_equals_a_full_scan);
    T_RUN(test_chunks_respect_min_and_max);
    T_RUN(test_average_near_avg_on_random_data);
    T_RUN(test_insert_and_delete_resynchronise);
    T_RUN(test_deterministic_and_streaming_equals_whole);
    T_RUN(test_eof_semantics);
    T_RUN(test_golden_cut_points);
    return t_done();
}
