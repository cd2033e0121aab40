/* test_st_hash.c - SHA-256 against FIPS 180-4 test vectors; hex round trip. */
#include "hash.h"
#include "lr.h"
#include "t.h"

static void check(const void *msg, size_t len, const char *want)
{
    st_hash h, w;
    char hex[65];
    st_hash_compute(msg, len, &h);
    if (st_hash_parse(want, &w) != 0 || memcmp(h.b, w.b, 32))
        T_FAILF("sha256 of %zu bytes: expected %s, got %s", len, want, st_hash_hex(&h, hex));
    T_TRUE(st_hash_verify(msg, len, &w));
}

static void test_fips_180_vectors(void)
{
    check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    check(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

static void test_verify_rejects_one_flipped_bit(void)
{
    uint8_t buf[65536];
    t_fill(buf, sizeof(buf), 1);
    st_hash h;
    st_hash_compute(buf, sizeof(buf), &h);
    T_TRUE(st_hash_verify(buf, sizeof(buf), &h));
    buf[40000] ^= 4;
    T_TRUE(!st_hash_verify(buf, sizeof(buf), &h));
}

static void test_hex_round_trip_and_bad_input(void)
{
    st_hash h, g;
    char hex[65];
    t_fill(h.b, 32, 9);
    T_OK(st_hash_parse(st_hash_hex(&h, hex), &g));
    T_MEM(h.b, g.b, 32);
    T_ERR(st_hash_parse("abc", &g), -EINVAL);
    hex[10] = 'x';
    T_ERR(st_hash_parse(hex, &g), -EINVAL);
    T_ERR(st_hash_parse(NULL, &g), -EINVAL);
}

static void test_parse_length_case_and_untouched_output(void)
{
    st_hash h, g, keep;
    char hex[80];
    t_fill(h.b, 32, 10);
    st_hash_hex(&h, hex);
    for (int i = 0; i < 64; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            T_FAILF("st_hash_hex wrote '%c' at %d, expected lowercase hex", hex[i], i);
    /* upper case parses to the same bytes */
    char up[65];
    for (int i = 0; i < 65; i++)
        up[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
    T_OK(st_hash_parse(up, &g));
    T_MEM(g.b, h.b, 32);
    /* 63 digits, 65 digits, a bad last digit, a space, an empty string */
    memset(keep.b, 0x5a, 32);
    g = keep;
    char bad[80];
    memcpy(bad, hex, 65);
    bad[63] = 0;
    T_ERR(st_hash_parse(bad, &g), -EINVAL);
    memcpy(bad, hex, 64);
    bad[64] = '0'; bad[65] = 0;
    T_ERR(st_hash_parse(bad, &g), -EINVAL);
    memcpy(bad, hex, 65);
    bad[63] = 'g';
    T_ERR(st_hash_parse(bad, &g), -EINVAL);
    memcpy(bad, hex, 65);
    bad[0] = ' ';
    T_ERR(st_hash_parse(bad, &g), -EINVAL);
    T_ERR(st_hash_parse("", &g), -EINVAL);
    T_MEM(g.b, keep.b, 32); /* a failed parse leaves *out alone */
}

/* The name does not depend on the alignment of the bytes (the assembly
 * transforms load unaligned data). */
static void test_large_and_unaligned_inputs(void)
{
    size_t n = 1u << 20;
    uint8_t *buf = malloc(n + 1);
    st_hash a, b;
    t_fill(buf, n + 1, 12);
    st_hash_compute(buf + 1, n, &a);      /* unaligned start */
    memmove(buf, buf + 1, n);
    st_hash_compute(buf, n, &b);
    free(buf);
    T_MEM(a.b, b.b, 32);
}

int main(void)
{
    T_RUN(test_fips_180_vectors);
    T_RUN(test_verify_rejects_one_flipped_bit);
    T_RUN(test_hex_round_trip_and_bad_input);
    T_RUN(test_parse_length_case_and_untouched_output);
    T_RUN(test_large_and_unaligned_inputs);
    return t_done();
}
