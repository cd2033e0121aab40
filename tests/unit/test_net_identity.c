/* test_net_identity.c - device identity files, device id text form. */
#include <ctype.h>
#include <sys/stat.h>

#include "net.h"
#include "t.h"

static void test_id_format_parse_roundtrip(void)
{
    for (int seed = 0; seed < 200; seed++) {
        net_id id, back;
        char s[NET_ID_STR_LEN];
        t_fill(id.b, sizeof(id.b), (uint64_t)seed);
        net_id_format(&id, s);
        T_EQ(strlen(s), NET_ID_STR_LEN - 1);
        T_OK(net_id_parse(s, &back));
        T_MEM(back.b, id.b, NET_ID_LEN);
    }
}

static void test_id_parse_ignores_case_and_dashes(void)
{
    net_id id, back;
    char s[NET_ID_STR_LEN], t[NET_ID_STR_LEN];
    t_fill(id.b, sizeof(id.b), 7);
    net_id_format(&id, s);
    size_t k = 0;
    for (size_t i = 0; s[i]; i++)
        if (s[i] != '-')
            t[k++] = (char)tolower((unsigned char)s[i]);
    t[k] = 0;
    T_OK(net_id_parse(t, &back));
    T_MEM(back.b, id.b, NET_ID_LEN);
}

static void test_id_parse_rejects_single_symbol_errors(void)
{
    /* Luhn mod 32 catches every single-symbol substitution. */
    net_id id, back;
    char s[NET_ID_STR_LEN];
    t_fill(id.b, sizeof(id.b), 99);
    net_id_format(&id, s);
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '-')
            continue;
        char saved = s[i];
        for (int a = 0; a < 32; a++) {
            if (alpha[a] == saved)
                continue;
            s[i] = alpha[a];
            int rc = net_id_parse(s, &back);
            if (rc != -EINVAL)
                T_FAILF("substituting '%c' at %zu was accepted", alpha[a], i);
        }
        s[i] = saved;
    }
}

static void test_id_parse_rejects_malformed(void)
{
    net_id id, back;
    char s[NET_ID_STR_LEN + 8];
    t_fill(id.b, sizeof(id.b), 3);
    net_id_format(&id, s);
    T_ERR(net_id_parse("", &back), -EINVAL);
    T_ERR(net_id_parse(NULL, &back), -EINVAL);
    T_ERR(net_id_parse("ABCD-EFGH", &back), -EINVAL);
    char u[NET_ID_STR_LEN + 16];
    snprintf(u, sizeof(u), "%sA", s);           /* one symbol too many */
    T_ERR(net_id_parse(u, &back), -EINVAL);
    snprintf(u, sizeof(u), "%s", s);
    u[3] = '1';                                   /* not base32 */
    T_ERR(net_id_parse(u, &back), -EINVAL);
    u[3] = s[3];
    /* 'B' in the last data symbol sets a padding bit: refused whatever
     * the check character says. */
    size_t n = strlen(u);
    u[n - 3] = 'B';
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    for (int a = 0; a < 32; a++) {
        u[n - 1] = alpha[a];
        T_ERR(net_id_parse(u, &back), -EINVAL);
    }
}

static void test_identity_create_load(void)
{
    char *dir = t_tmpdir();
    net_id id;
    struct net_identity ident;
    T_OK(net_identity_create(dir, &id));
    T_ERR(net_identity_create(dir, NULL), -EEXIST);
    T_OK(net_identity_load(dir, &ident));
    T_MEM(ident.id.b, id.b, NET_ID_LEN);
    net_id again;
    T_OK(net_id_from_cert(ident.cert_der, ident.cert_len, &again));
    T_MEM(again.b, id.b, NET_ID_LEN);
    net_identity_release(&ident);
    char p[4200];
    struct stat st;
    snprintf(p, sizeof(p), "%s/device.key", dir);
    T_OK(stat(p, &st));
    T_EQ(st.st_mode & 0777, 0600);
    snprintf(p, sizeof(p), "%s/device.crt", dir);
    T_OK(stat(p, &st));
    T_EQ(st.st_mode & 0777, 0600);
    t_rmrf(dir);
    free(dir);
}

static void test_identity_two_devices_differ(void)
{
    char *a = t_tmpdir(), *b = t_tmpdir();
    net_id ia, ib;
    T_OK(net_identity_create(a, &ia));
    T_OK(net_identity_create(b, &ib));
    T_TRUE(memcmp(ia.b, ib.b, NET_ID_LEN) != 0);
    t_rmrf(a);
    t_rmrf(b);
    free(a);
    free(b);
}

static void test_identity_mismatched_key_refused(void)
{
    char *a = t_tmpdir(), *b = t_tmpdir();
    struct net_identity ident;
    T_OK(net_identity_create(a, NULL));
    T_OK(net_identity_create(b, NULL));
    char cmd[9000];
    snprintf(cmd, sizeof(cmd), "cp '%s/device.key' '%s/device.key'", b, a);
    T_EQ(system(cmd), 0);
    T_ERR(net_identity_load(a, &ident), LR_ETLS);
    T_ERR(net_identity_load("/nonexistent-landro", &ident), -ENOENT);
    t_rmrf(a);
    t_rmrf(b);
    free(a);
    free(b);
}

static void test_cert_garbage_refused(void)
{
    uint8_t junk[300];
    net_id id;
    t_fill(junk, sizeof(junk), 5);
    T_ERR(net_id_from_cert(junk, sizeof(junk), &id), LR_ETLS);
}

int main(void)
{
    lr_log_set_level(LR_LOG_ERROR);
    T_RUN(test_id_format_parse_roundtrip);
    T_RUN(test_id_parse_ignores_case_and_dashes);
    T_RUN(test_id_parse_rejects_single_symbol_errors);
    T_RUN(test_id_parse_rejects_malformed);
    T_RUN(test_identity_create_load);
    T_RUN(test_identity_two_devices_differ);
    T_RUN(test_identity_mismatched_key_refused);
    T_RUN(test_cert_garbage_refused);
    return t_done();
}
