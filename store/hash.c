/*
 * hash.c - SHA-256 chunk names through wolfCrypt, see hash.h.
 *
 * wolfCrypt picks its SHA-256 transform (SHA-NI, AVX2, AVX1 or C) from
 * CPUID at the first wc_InitSha256() and records it in unsynchronised
 * statics; the first init is done once under pthread_once so that threads
 * never race on that choice.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <pthread.h>

#include "hash.h"
#include "lr.h"

static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void hash_pick_transform(void)
{
    wc_Sha256 s;
    if (wc_InitSha256(&s) == 0)
        wc_Sha256Free(&s);
}

void st_hash_compute(const void *data, size_t len, st_hash *out)
{
    wc_Sha256 s;
    const uint8_t *p = data;

    pthread_once(&hash_once, hash_pick_transform);
    /* With the default build (no async, no crypto callbacks) init, update
     * and final only fail on NULL arguments, which never reach here. */
    (void)wc_InitSha256(&s);
    while (len > 0) {
        word32 n = len > 0x40000000u ? 0x40000000u : (word32)len; /* 1 GiB steps */
        (void)wc_Sha256Update(&s, p, n);
        p += n;
        len -= n;
    }
    (void)wc_Sha256Final(&s, out->b);
    wc_Sha256Free(&s);
}

int st_hash_verify(const void *data, size_t len, const st_hash *h)
{
    st_hash got;
    st_hash_compute(data, len, &got);
    /* Names are public, so a plain compare is fine. */
    return memcmp(got.b, h->b, ST_HASH_LEN) == 0;
}

char *st_hash_hex(const st_hash *h, char out[2 * ST_HASH_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < ST_HASH_LEN; i++) {
        out[2 * i] = digits[h->b[i] >> 4];
        out[2 * i + 1] = digits[h->b[i] & 15];
    }
    out[2 * ST_HASH_LEN] = '\0';
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
    st_hash h;
    if (!hex)
        return -EINVAL;
    for (int i = 0; i < ST_HASH_LEN; i++) {
        int hi = hexval(hex[2 * i]);
        if (hi < 0)
            return -EINVAL; /* also stops at a NUL before 64 digits */
        int lo = hexval(hex[2 * i + 1]);
        if (lo < 0)
            return -EINVAL;
        h.b[i] = (uint8_t)(hi << 4 | lo);
    }
    if (hex[2 * ST_HASH_LEN] != '\0')
        return -EINVAL;
    *out = h;
    return 0;
}
