/*
 * chunker.c - FastCDC content-defined chunking, see chunker.h.
 *
 * The rolling hash is the gear hash of FastCDC: h = (h << 1) + G[byte]
 * (mod 2^64). Each step shifts the oldest byte's influence one bit further
 * up, so bit k of h depends on the last k + 1 bytes only and the top bits
 * see a 64-byte window. A cut is therefore tested on the TOP bits: with a
 * mask of b bits the test "top b bits of h are zero" is the single compare
 * h < 2^(64 - b), and it fires with probability 2^-b per byte on random
 * data.
 *
 * Definition of a boundary, for a chunk starting at buf[0]:
 *   - bytes [0, min) are skipped (cut-point skipping): no chunk is shorter
 *     than min + 1 bytes unless it is the last one of the input;
 *   - h starts at 0 and takes bytes buf[min], buf[min + 1], ...;
 *   - after taking buf[i], the chunk ends at i + 1 if h < thr(i), where
 *     thr(i) = 2^(64 - (log2(avg) + 2)) for i < avg   (normalized chunking,
 *                                                      level 2: stricter)
 *     thr(i) = 2^(64 - (log2(avg) - 2)) for i >= avg  (looser);
 *   - a chunk that found no cut ends at max.
 * Boundaries depend only on the bytes since the previous boundary.
 *
 * Speed: the hash is a serial dependency, so the loop takes several bytes
 * per step (a wider form of FastCDC 2020's "rolling two bytes"), see
 * gear_scan(). The tests are almost never taken, so the branches cost next
 * to nothing.
 *
 * The gear table: 256 outputs of splitmix64 (Steele, Lea, Flood 2014) seeded
 * with 0x6c616e64726f4344 ("landroCD" in ASCII): state += 0x9e3779b97f4a7c15;
 * z = state; z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
 * z = (z ^ (z >> 27)) * 0x94d049bb133111eb; G[i] = z ^ (z >> 31).
 * It is written out below because every store's boundaries depend on it
 * (tests/unit/test_st_chunker.c regenerates it and compares).
 */
#include "chunker.h"

#include "lr.h"

/* Exported (not in chunker.h) only so the unit test can check the table
 * against its generator. */
extern const uint64_t st_cdc_gear[256];
const uint64_t st_cdc_gear[256] = {
    0xa0dd5720d321ea8eull, 0xf90d7e986c984f0aull, 0x3767934d7808ec65ull,
    0x8f3eb6d51e4aad28ull, 0x730034979cde4e68ull, 0x5a416a98a4ef03b6ull,
    0x4ee276950bbda220ull, 0x6be6faf4ffd9b570ull, 0xa9146a2597e9231dull,
    0x5fe766f1c5e54547ull, 0xb037c9e4c79fd58dull, 0xc2328593f9dad5c7ull,
    0x47da43631ab1bf2eull, 0x9d7fb4dfb8bfb96dull, 0x9a3cb0e56fe498baull,
    0xad28e664fccdfb4dull, 0x2f293b65628c0c00ull, 0x8160c088d91bf13bull,
    0x103a46a865dc7353ull, 0x6e28d54a06145175ull, 0x1885d3314c7ff0bdull,
    0x83267819f1f35350ull, 0xece7762edb29c033ull, 0x657fa4b3dd61d836ull,
    0x035d0a78fd5ef158ull, 0x07cdcc6b73f1620aull, 0x0f66680678de6e2eull,
    0xc6a50c3e4430c73dull, 0x5e2bb167f06e3851ull, 0x005625ad7b917919ull,
    0xe7fc07e4b13f0555ull, 0x0775c936b5084a75ull, 0x10144a7953ef6b6cull,
    0x6940ba8f6d3b948cull, 0xfd2282999404a5f9ull, 0xe39af41c9b1a7ef2ull,
    0x511ad31a624cc7cdull, 0x80b76c8a8c41e741ull, 0xc0d1cf4b7ec06c99ull,
    0xb57d90e4cf9c0bcdull, 0x545bba6b4b403291ull, 0xcbde431bc0904e78ull,
    0x32934fd163854c4cull, 0x56213ea1c0ffe97bull, 0x1d2697e98cc90e78ull,
    0x219b02f107a410ebull, 0x2dd5fbf935f026e4ull, 0x539dae0351f9ee4bull,
    0x7b16e944c779cb37ull, 0x00747b3a4e6c7b37ull, 0xbaf1a4ffc561bf0bull,
    0xf5d3b3ea81956606ull, 0x80fd4c8f01087b1dull, 0x3120911b9ac80beaull,
    0xe758ea3dfb8a3c3aull, 0xeefa73a0e3883ef8ull, 0x430278232708d03full,
    0x7bdd59819ddd025bull, 0xeac3c85e584fa043ull, 0x883bda99e109ed16ull,
    0xcf9ad49352a61a51ull, 0x1b161e2153f9c79full, 0xd8b77281348a4bfdull,
    0x906ca643929349f7ull, 0x55d132ad5d51389dull, 0x60a94f3eabe1d50full,
    0x745c547730cbba95ull, 0x7ea7e59bdfb4305eull, 0x235067fb6537237dull,
    0x7f5341da87e605acull, 0x06d681f784a45171ull, 0xf1fe43215db47c85ull,
    0xbc860fafa1f012a3ull, 0x8942fada9a8c37eaull, 0xe57cb1b27d8a7a2bull,
    0xcb099434bf06a6aeull, 0xcf6604a4a75aed4bull, 0xd42ef37c6bbe79fcull,
    0x18870049eac5550cull, 0x9cfaf2affec03aaaull, 0x3460c4d5ce32af4full,
    0xd36355285ba655a4ull, 0x673b859c92736584ull, 0x2c644b9ff1d325bdull,
    0xe3a17c462292c5a6ull, 0x4cbb55da5f926f55ull, 0x58330a3104726061ull,
    0x6b9957249d75ed0dull, 0xd9c46b2e19f64f74ull, 0xab8e14e59f3e2a81ull,
    0x825eabad7ae2d3aeull, 0x0d92008dccd96047ull, 0xf8516907f3b99dcaull,
    0xe86c7d9a2693c86dull, 0x8f65ea488c9b00caull, 0xf8dff796111c45f5ull,
    0xeeaff0988c95e226ull, 0xd76ce7df8eb0fcacull, 0x671b5cf17d41fe4aull,
    0x177a1f3da4f8d1a3ull, 0x869fd4cf794c66ebull, 0x9514e801cf35ae3cull,
    0xf8a229965036fecaull, 0x4ff375d5526d9f02ull, 0x5f134d09c9f9ce82ull,
    0xbae08b8bf888a3f4ull, 0x11241954e3d333c0ull, 0xf79a7491394fdd16ull,
    0x38c14e2253a40cf2ull, 0x96707b26927533f1ull, 0x7caf16dc31530abfull,
    0x613a923a034afd3cull, 0x9095638a05db2d47ull, 0x2cec789d8a25b3f5ull,
    0x9003ef36dd05039eull, 0xb1cccf37780dfb39ull, 0xfdddeab85e0949dbull,
    0xe9ee87726c9794e1ull, 0x902be51f6f41f810ull, 0x7a6cd0cb2285d559ull,
    0x11ceeba096ea545eull, 0xd17a6bec44d8ea61ull, 0x3eb665b0e6709aadull,
    0xf99b11d4a299c507ull, 0x3640cab85390038eull, 0xcd2676b09e2596a0ull,
    0xa233d31a032099f4ull, 0xd52b41d4462298edull, 0x8ccc859492a544ccull,
    0x432e7aaab8caece6ull, 0xa6fb8899a91bed98ull, 0xf86f749a28d227f2ull,
    0x1ba68a76cf5f6d1dull, 0xd818795eb93c576bull, 0xe3bc78701182d8efull,
    0x5d1468874f81f130ull, 0xa19d597c00556ecfull, 0x24ff2c56e2c62afaull,
    0x9f44f30eed37ddd7ull, 0xcdfbf679a47148d4ull, 0xdb15e6669a3d5abfull,
    0xbf03b6f38640848bull, 0x6082605150b05c5full, 0x14c1fbf52fc3cda0ull,
    0x6c6f1d36ee090cabull, 0x4607890580e7fd16ull, 0x684249bc4063a6feull,
    0x94e0b21bbf773c12ull, 0x2441e0a588b5fcc2ull, 0x88eb820036ded8caull,
    0x3910612754a77240ull, 0x290959a098314e23ull, 0xe750c03fd48b1d4eull,
    0x3304d7dcdf99fe0full, 0xc3910f86441d4535ull, 0x373fc0fbb00a4a7dull,
    0xaf2a835083aeb31aull, 0xd2594b7f945efa5cull, 0x6748a05738cfde7dull,
    0xcb5df791c9e51cacull, 0x46e15f782004f09aull, 0x57a50c2f521d0f9eull,
    0xe2ab4444006f3d0full, 0x5c5952dbe3280e75ull, 0x587dc4be70cc20a7ull,
    0x3254e635b69777c9ull, 0xaf44f8f54acecd43ull, 0x60610e08fd5fb7aaull,
    0xcf6bfac03da80246ull, 0xd790c9b125295a49ull, 0x045897a4ef6ee583ull,
    0xe1efc797e378c8f1ull, 0x8f2d99a0fd3307a0ull, 0x436dbba1d0ad778aull,
    0xc4462eb1dd93d9dbull, 0xd8e8b54fd7fd9afeull, 0x22a657715828b57aull,
    0xef99860690a408e7ull, 0x2dc73d75abc8eb49ull, 0xc5e416dc6a495928ull,
    0xd55a975bc25e9fc5ull, 0x954b293774ab2bf2ull, 0xee2401023ceb6147ull,
    0x713f7e90290ec967ull, 0x58e13774c699159cull, 0xd7251231a725d430ull,
    0x819a7274d2a53000ull, 0x1c8ac5f6ec6e7c53ull, 0x5be5716984b382b6ull,
    0x068f2eace78d5629ull, 0x399e78380a9544e9ull, 0x8299c7d81df14a40ull,
    0xa0589fd980f1a823ull, 0x35320e80f15665d2ull, 0x4b4971d9009aadb2ull,
    0xc64ea00154206145ull, 0xb738b8dbf34130fbull, 0x5f9cc1abbfa24995ull,
    0x7fd3398500d33ec3ull, 0xa56fd745d18f47d1ull, 0xa990426355ff4ad4ull,
    0xb9c3c195a1d42d07ull, 0xc94c48493c2008aaull, 0x23d0b750d51ff8a2ull,
    0x98f28547c6c459c0ull, 0x46d37f07b7972dc5ull, 0xa8d5525043e52a69ull,
    0xda1034b85aa8812full, 0x1aae313a4873d9a3ull, 0xeee8e498868874dcull,
    0x4a04052fd8434512ull, 0x14c99c39c31ad826ull, 0xfb1439f54d72fb0cull,
    0xb9d1f949b152423eull, 0xe492ef11fec8cdf3ull, 0xb17d0aa686eea90dull,
    0x871158ff8887e814ull, 0x27e05c92334315edull, 0x9c85c1eb20ed719dull,
    0x5e2df25d1c821cb5ull, 0xdc78b0ef107bc4abull, 0x88e8fbd3c9326c5full,
    0x6133a555d4068c15ull, 0x784c693672be4517ull, 0xba698d8cf1d1ea90ull,
    0x082b38b06e4a1ff3ull, 0x015f0ef9134a633eull, 0x8067688b5607a5bdull,
    0x528cc6ba1b94bc6bull, 0x012645ae0def509full, 0x89f530ceec4dafdeull,
    0x6da679411f320c47ull, 0xfeda87c5a62edd1full, 0x8fcd068906a1a944ull,
    0xc8b6284cb389c63eull, 0xe5893f98c7b74801ull, 0x2769608366df4dc0ull,
    0xb8a67ad7339c7b8bull, 0x8b997c345f53b7baull, 0x85adbff757cfe2e0ull,
    0x929d62ced729a7ffull, 0x999fe45c2d4f7286ull, 0x83370484258b2aceull,
    0x3d9af9e8cedb1c70ull, 0xb3f48fb3cc42cde2ull, 0x2fc3d0c1c04d5adcull,
    0x992a895181af3273ull, 0x3e0dbab158993430ull, 0x03c81fea4ef202c3ull,
    0x6436fc617c90fb4full, 0xb98dd13fb722c3ffull, 0xbd0e1b95a7a23c19ull,
    0xf9ea42a799f835deull, 0xbba650cbd16695d3ull, 0xf6793118b3c6c417ull,
    0xf89b5f58ae91663dull,
};

int st_cdc_check(const struct st_cdc_params *p)
{
    if (!p || p->min < 64 || p->min >= p->avg || p->avg >= p->max ||
        p->max > ST_CDC_MAX_LIMIT || (p->avg & (p->avg - 1)) != 0)
        return LR_EPARAMS;
    return 0;
}

void st_cdc_defaults(struct st_cdc_params *p)
{
    p->min = ST_CDC_MIN_DEFAULT;
    p->avg = ST_CDC_AVG_DEFAULT;
    p->max = ST_CDC_MAX_DEFAULT;
}

static unsigned log2u(uint32_t v)
{
    unsigned n = 0;
    while (v >>= 1)
        n++;
    return n;
}

/* Take bytes p[i], i in [from, to), into *h; return the chunk length
 * i + 1 at the first byte after which *h < thr, or 0 if there is none.
 * *h is left as after p[to - 1] when no cut was found.
 *
 * Four bytes per step: with g_k = G[p[i + k]],
 *   h1 = 2h + g0, h2 = 4h + (2g0 + g1), h3 = 8h + (4g0 + 2g1 + g2),
 *   h4 = 16h + (8g0 + 4g1 + 2g2 + g3);
 * the brackets do not depend on h, so the serial chain is one shift and
 * one add per four bytes and the rest runs in parallel. The empty asm
 * keeps the compiler from re-associating the last bracket back into the
 * chain. */
static inline size_t gear_scan(const uint8_t *p, size_t from, size_t to,
                               uint64_t *hp, uint64_t thr)
{
    const uint64_t *G = st_cdc_gear;
    uint64_t h = *hp;
    size_t i = from;
    while (i + 4 <= to) {
        uint64_t g0 = G[p[i]], g1 = G[p[i + 1]], g2 = G[p[i + 2]], g3 = G[p[i + 3]];
        uint64_t p2 = (g0 << 1) + g1;
        uint64_t p3 = (p2 << 1) + g2;
        uint64_t p4 = (p3 << 1) + g3;
        __asm__("" : "+r"(p4));
        uint64_t h1 = (h << 1) + g0;
        uint64_t h2 = (h << 2) + p2;
        uint64_t h3 = (h << 3) + p3;
        h = (h << 4) + p4;
        if (__builtin_expect(h1 < thr, 0))
            return i + 1;
        if (__builtin_expect(h2 < thr, 0))
            return i + 2;
        if (__builtin_expect(h3 < thr, 0))
            return i + 3;
        if (__builtin_expect(h < thr, 0))
            return i + 4;
        i += 4;
    }
    for (; i < to; i++) {
        h = (h << 1) + G[p[i]];
        if (h < thr)
            return i + 1;
    }
    *hp = h;
    return 0;
}

size_t st_cdc_cut(const struct st_cdc_params *p, const uint8_t *buf, size_t len, int eof)
{
    return st_cdc_cut_after(p, buf, len, eof, 0);
}

size_t st_cdc_cut_after(const struct st_cdc_params *p, const uint8_t *buf, size_t len, int eof,
                        size_t known)
{
    size_t end = len < p->max ? len : p->max;
    if (end <= p->min)
        return len >= p->max ? p->max : (eof ? len : 0);

    unsigned bits = log2u(p->avg);
    uint64_t thr_small = 1ull << (64 - (bits + 2));
    uint64_t thr_large = 1ull << (64 - (bits - 2));
    uint64_t h = 0;
    size_t mid = end < p->avg ? end : p->avg;
    /* Lengths up to known are not cuts: take the 64 bytes before the
     * first length tested into h without testing (h then equals that of
     * a scan from min, as h sees only the last 64 bytes). A threshold of
     * 0 never fires. */
    size_t from = p->min;
    if (known > p->min) {
        from = known < end ? known : end;
        gear_scan(buf, from - 64 > p->min ? from - 64 : p->min, from, &h, 0);
    }
    size_t cut = from < mid ? gear_scan(buf, from, mid, &h, thr_small) : 0;
    if (!cut && mid < end)
        cut = gear_scan(buf, from > mid ? from : mid, end, &h, thr_large);
    if (cut)
        return cut;
    if (len >= p->max)
        return p->max;
    return eof ? len : 0;
}
