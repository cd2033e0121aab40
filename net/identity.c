/* identity.c - device key pair, self-signed certificate, device id text
 * form (see net.h). */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/settings.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net.h"

#define DER_MAX 4096
#define PEM_MAX 8192

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static int b32_val(int c)
{
    c = toupper(c);
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

/* Luhn mod 32 over n symbol values: the check symbol that makes the
 * doubled-alternately sum a multiple of 32. */
static int luhn32(const uint8_t *v, size_t n)
{
    int factor = 2, sum = 0;
    for (size_t i = n; i-- > 0;) {
        int a = factor * v[i];
        factor = factor == 2 ? 1 : 2;
        sum += a / 32 + a % 32;
    }
    return (32 - sum % 32) % 32;
}

#define ID_SYMS 52

static void id_syms(const net_id *id, uint8_t sym[ID_SYMS])
{
    /* 256 bits -> 52 five-bit symbols, most significant first; the last
     * symbol holds the final bit followed by four zero bits. */
    for (int i = 0; i < ID_SYMS; i++) {
        int v = 0;
        for (int k = 0; k < 5; k++) {
            int bit = i * 5 + k;
            v <<= 1;
            if (bit < 256)
                v |= (id->b[bit / 8] >> (7 - bit % 8)) & 1;
        }
        sym[i] = (uint8_t)v;
    }
}

char *net_id_format(const net_id *id, char out[NET_ID_STR_LEN])
{
    uint8_t sym[ID_SYMS];
    id_syms(id, sym);
    char *p = out;
    for (int i = 0; i < ID_SYMS; i++) {
        if (i && i % 4 == 0)
            *p++ = '-';
        *p++ = b32[sym[i]];
    }
    *p++ = '-';
    *p++ = b32[luhn32(sym, ID_SYMS)];
    *p = 0;
    return out;
}

char *net_id_short(const net_id *id, char out[10])
{
    char full[NET_ID_STR_LEN];
    net_id_format(id, full);
    memcpy(out, full, 9);
    out[9] = 0;
    return out;
}

int net_id_parse(const char *s, net_id *out)
{
    uint8_t sym[ID_SYMS + 1];
    size_t n = 0;
    if (!s)
        return -EINVAL;
    for (; *s; s++) {
        if (*s == '-' || *s == ' ')
            continue;
        int v = b32_val((unsigned char)*s);
        if (v < 0 || n == ID_SYMS + 1)
            return -EINVAL;
        sym[n++] = (uint8_t)v;
    }
    if (n != ID_SYMS + 1 || luhn32(sym, ID_SYMS) != sym[ID_SYMS])
        return -EINVAL;
    if (sym[ID_SYMS - 1] & 0x0f) /* padding bits must be zero */
        return -EINVAL;
    net_id id;
    memset(&id, 0, sizeof(id));
    for (int bit = 0; bit < 256; bit++) {
        int v = (sym[bit / 5] >> (4 - bit % 5)) & 1;
        id.b[bit / 8] |= (uint8_t)(v << (7 - bit % 8));
    }
    *out = id;
    return 0;
}

int net_id_from_cert(const uint8_t *der, size_t len, net_id *out)
{
    DecodedCert *dc = malloc(sizeof(*dc));
    uint8_t spki[DER_MAX];
    word32 spki_len = sizeof(spki);
    int rc = LR_ETLS;
    if (!dc)
        return -ENOMEM;
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    if (wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL) == 0 &&
        dc->keyOID == ECDSAk &&
        wc_GetPubKeyDerFromCert(dc, spki, &spki_len) == 0 &&
        wc_Sha256Hash(spki, spki_len, out->b) == 0)
        rc = 0;
    wc_FreeDecodedCert(dc);
    free(dc);
    return rc;
}

/* Public key of key as DER SubjectPublicKeyInfo, hashed: the device id. */
static int id_from_key(ecc_key *key, net_id *out)
{
    uint8_t spki[DER_MAX];
    int n = wc_EccPublicKeyToDer(key, spki, sizeof(spki), 1);
    if (n <= 0 || wc_Sha256Hash(spki, (word32)n, out->b) != 0)
        return LR_ETLS;
    return 0;
}

static int write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int e = lr_write_all(fd, buf, len);
    if (e == 0 && (fchmod(fd, 0600) != 0 || fsync(fd) != 0))
        e = -errno;
    if (e) {
        close(fd);
        return e;
    }
    return close(fd) == 0 ? 0 : -errno;
}

static int read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = -errno;
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            close(fd);
            return -EFBIG;
        }
    }
    close(fd);
    *len = n;
    return 0;
}

int net_identity_create(const char *dir, net_id *out)
{
    char kpath[4096], cpath[4096], ktmp[4200], ctmp[4200];
    snprintf(kpath, sizeof(kpath), "%s/device.key", dir);
    snprintf(cpath, sizeof(cpath), "%s/device.crt", dir);
    snprintf(ktmp, sizeof(ktmp), "%s.tmp", kpath);
    snprintf(ctmp, sizeof(ctmp), "%s.tmp", cpath);
    if (access(kpath, F_OK) == 0)
        return -EEXIST;

    WC_RNG rng;
    ecc_key key;
    Cert *cert = malloc(sizeof(*cert));
    uint8_t *der = malloc(DER_MAX), *kder = malloc(DER_MAX), *pem = malloc(PEM_MAX);
    int rc = LR_ETLS, have_rng = 0, have_key = 0;
    net_id id, check;
    if (!cert || !der || !kder || !pem) {
        rc = -ENOMEM;
        goto out;
    }
    if (wc_InitRng(&rng) != 0)
        goto out;
    have_rng = 1;
    if (wc_ecc_init(&key) != 0)
        goto out;
    have_key = 1;
    if (wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) != 0)
        goto out;
    if ((rc = id_from_key(&key, &id)) != 0)
        goto out;
    rc = LR_ETLS;

    if (wc_InitCert(cert) != 0)
        goto out;
    char sid[10];
    net_id_short(&id, sid);
    snprintf(cert->subject.commonName, CTC_NAME_SIZE, "landro device %s", sid);
    snprintf(cert->subject.org, CTC_NAME_SIZE, "landro");
    cert->sigType = CTC_SHA256wECDSA;
    cert->keyType = ECC_KEY;
    cert->daysValid = 7300;
    cert->isCA = 0;
    cert->selfSigned = 1;
    if (wc_MakeCert(cert, der, DER_MAX, NULL, &key, &rng) < 0)
        goto out;
    int clen = wc_SignCert(cert->bodySz, cert->sigType, der, DER_MAX, NULL, &key, &rng);
    if (clen <= 0)
        goto out;
    if (net_id_from_cert(der, (size_t)clen, &check) != 0 || memcmp(&check, &id, sizeof(id)) != 0) {
        lr_error("certificate public key does not match the generated key");
        goto out;
    }
    int plen = wc_DerToPem(der, (word32)clen, pem, PEM_MAX, CERT_TYPE);
    if (plen <= 0)
        goto out;
    if ((rc = write_file(ctmp, pem, (size_t)plen)) != 0)
        goto out;
    rc = LR_ETLS;
    int klen = wc_EccPrivateKeyToDer(&key, kder, DER_MAX);
    if (klen <= 0)
        goto out;
    plen = wc_DerToPem(kder, (word32)klen, pem, PEM_MAX, ECC_PRIVATEKEY_TYPE);
    explicit_bzero(kder, DER_MAX);
    if (plen <= 0)
        goto out;
    rc = write_file(ktmp, pem, (size_t)plen);
    explicit_bzero(pem, PEM_MAX);
    if (rc != 0)
        goto out;
    if (rename(ctmp, cpath) != 0) {
        rc = -errno;
        goto out;
    }
    /* link() refuses to replace: a key that appeared meanwhile survives. */
    if (link(ktmp, kpath) != 0) {
        rc = -errno;
        goto out;
    }
    unlink(ktmp);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    if (out)
        *out = id;
    rc = 0;
out:
    if (rc != 0) {
        unlink(ktmp);
        unlink(ctmp);
        lr_error("cannot create device identity in '%s': %s", dir, lr_strerror(rc));
    }
    if (have_key)
        wc_ecc_free(&key);
    if (have_rng)
        wc_FreeRng(&rng);
    free(cert);
    free(der);
    if (kder)
        explicit_bzero(kder, DER_MAX);
    free(kder);
    free(pem);
    return rc;
}

int net_identity_load(const char *dir, struct net_identity *id)
{
    char kpath[4096], cpath[4096];
    snprintf(kpath, sizeof(kpath), "%s/device.key", dir);
    snprintf(cpath, sizeof(cpath), "%s/device.crt", dir);
    memset(id, 0, sizeof(*id));
    uint8_t *pem = malloc(PEM_MAX), *der = malloc(DER_MAX), *kder = malloc(DER_MAX);
    size_t plen = 0;
    int rc;
    ecc_key key;
    int have_key = 0;
    net_id kid;
    if (!pem || !der || !kder) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = read_file(cpath, pem, PEM_MAX, &plen)) != 0)
        goto out;
    rc = LR_ETLS;
    int clen = wc_CertPemToDer(pem, (int)plen, der, DER_MAX, CERT_TYPE);
    if (clen <= 0)
        goto out;
    if ((rc = net_id_from_cert(der, (size_t)clen, &id->id)) != 0)
        goto out;
    if ((rc = read_file(kpath, pem, PEM_MAX, &plen)) != 0)
        goto out;
    rc = LR_ETLS;
    int klen = wc_KeyPemToDer(pem, (int)plen, kder, DER_MAX, NULL);
    explicit_bzero(pem, PEM_MAX);
    if (klen <= 0)
        goto out;
    if (wc_ecc_init(&key) != 0)
        goto out;
    have_key = 1;
    word32 idx = 0;
    if (wc_EccPrivateKeyDecode(kder, &idx, &key, (word32)klen) != 0)
        goto out;
    /* The decoded private key may lack its public point: derive it. */
    if (wc_ecc_make_pub(&key, NULL) != 0)
        goto out;
    if (id_from_key(&key, &kid) != 0 || memcmp(&kid, &id->id, sizeof(kid)) != 0) {
        lr_error("key '%s' does not belong to certificate '%s'", kpath, cpath);
        goto out;
    }
    id->cert_der = malloc((size_t)clen);
    id->key_der = malloc((size_t)klen);
    if (!id->cert_der || !id->key_der) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(id->cert_der, der, (size_t)clen);
    id->cert_len = (size_t)clen;
    memcpy(id->key_der, kder, (size_t)klen);
    id->key_len = (size_t)klen;
    rc = 0;
out:
    if (have_key)
        wc_ecc_free(&key);
    if (rc != 0) {
        if (rc != -ENOENT)
            lr_error("cannot load device identity from '%s': %s", dir, lr_strerror(rc));
        net_identity_release(id);
    }
    if (pem)
        explicit_bzero(pem, PEM_MAX);
    if (kder)
        explicit_bzero(kder, DER_MAX);
    free(pem);
    free(der);
    free(kder);
    return rc;
}

void net_identity_release(struct net_identity *id)
{
    if (!id)
        return;
    if (id->key_der)
        explicit_bzero(id->key_der, id->key_len);
    free(id->key_der);
    free(id->cert_der);
    id->key_der = id->cert_der = NULL;
    id->key_len = id->cert_len = 0;
}
