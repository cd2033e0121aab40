/*
 * hash.c - chunk names: SHA-256 from wolfCrypt. See hash.h.
 *
 * wolfSSL is built with --enable-intelasm, so wc_Sha256Update dispatches
 * at run time to the SHA-NI (or AVX2) transform; measured in
 * docs/PERFORMANCE.md.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <string.h>

#include "hash.h"

void st_hash_compute(const void *data, size_t len, st_hash *out)
{
    wc_Sha256 s;
    wc_InitSha256(&s);
    const uint8_t *p = data;
    /* wc_Sha256Update takes a word32 length. */
    while (len > 0) {
        word32 n = len > 0x40000000u ? 0x40000000u : (word32)len;
        wc_Sha256Update(&s, p, n);
        p += n;
        len -= n;
    }
    wc_Sha256Final(&s, out->b);
    wc_Sha256Free(&s);
}

int st_hash_verify(const void *data, size_t len, const st_hash *h)
{
    st_hash got;
    st_hash_compute(data, len, &got);
    /* Not secret: a plain comparison is fine. */
    return memcmp(got.b, h->b, ST_HASH_LEN) == 0;
}

char *st_hash_hex(const st_hash *h, char out[2 * ST_HASH_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < ST_HASH_LEN; i++) {
        out[2 * i] = hx[h->b[i] >> 4];
        out[2 * i + 1] = hx[h->b[i] & 15];
    }
    out[2 * ST_HASH_LEN] = 0;
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int st_hash_parse(const char *hex, st_hash *out)
{
    if (!hex || strlen(hex) != 2 * ST_HASH_LEN)
        return -EINVAL;
    for (int i = 0; i < ST_HASH_LEN; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0)
            return -EINVAL;
        out->b[i] = (uint8_t)(a << 4 | b);
    }
    return 0;
}
