/*
 * hash.h - chunk names: SHA-256 from wolfCrypt (built with its x86-64
 * assembly, which uses the CPU's SHA extensions when present).
 * Pure functions, any thread.
 */
#ifndef ST_HASH_H
#define ST_HASH_H

#include <stddef.h>
#include <stdint.h>

#define ST_HASH_LEN 32
typedef struct { uint8_t b[ST_HASH_LEN]; } st_hash;

/* Hash len bytes. Cannot fail for len <= 4 GiB. */
void st_hash_compute(const void *data, size_t len, st_hash *out);
/* 1 if the bytes hash to h, else 0. */
int st_hash_verify(const void *data, size_t len, const st_hash *h);
/* 64 lowercase hex digits + NUL. Returns out. */
char *st_hash_hex(const st_hash *h, char out[2 * ST_HASH_LEN + 1]);
/* Parse 64 hex digits; -EINVAL otherwise. */
int st_hash_parse(const char *hex, st_hash *out);

#endif
