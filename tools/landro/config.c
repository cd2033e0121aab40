/* config.c - STORE/landro.conf (see config.h). */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "peerrec.h"

struct parse {
    struct cmd_config *c;
    char err[256];   /* first problem found by the handler */
};

int cmd_addr_valid(const char *a, int allow_port0)
{
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a || strlen(a) > ST_PEER_ADDR_MAX)
        return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < (allow_port0 ? 0 : 1) || port > 65535)
        return 0;
    if (a[0] == '[' && colon[-1] != ']')
        return 0;
    return 1;
}

int cmd_parse_size(const char *s, uint64_t *out)
{
    if (!strcmp(s, "none")) {
        *out = 0;
        return 0;
    }
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    default: return -1;
    }
    if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int cmd_parse_duration(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    int64_t unit = 86400;
    if (*end) {
        switch (*end) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: return -1;
        }
        if (end[1])
            return -1;
    }
    if (errno || v > 36500ull * 86400 / (uint64_t)unit)
        return -1;
    *out = (int64_t)v * unit;
    return 0;
}

int cmd_parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!s[0] || *end || errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

static int fail(struct parse *p, const char *fmt, const char *a, const char *b)
{
    snprintf(p->err, sizeof(p->err), fmt, a, b);
    return 0;
}

/* peer = DEVICE-ID ADDR:PORT[, ADDR:PORT...] */
static int parse_peer(struct parse *p, const char *value)
{
    struct cmd_config *c = p->c;
    char *v = strdup(value), *save = NULL;
    if (!v)
        return fail(p, "out of memory%s%s", "", "");
    struct cmd_config_peer e;
    memset(&e, 0, sizeof(e));
    char *id = strtok_r(v, " \t,", &save);
    int ok = 0;
    if (!id || net_id_parse(id, &e.id)) {
        fail(p, "malformed peer '%s' (expected DEVICE-ID ADDR:PORT, the id as 'landro id' prints it)%s", value, "");
        goto out;
    }
    for (char *t = strtok_r(NULL, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
        if (!cmd_addr_valid(t, 0)) {
            fail(p, "malformed peer address '%s' (expected HOST:PORT)%s", t, "");
            goto out;
        }
        if (e.rec.naddrs == ST_PEER_MAX_ADDRS) {
            fail(p, "too many addresses for peer '%s'%s", id, "");
            goto out;
        }
        snprintf(e.rec.addrs[e.rec.naddrs++], sizeof(e.rec.addrs[0]), "%s", t);
    }
    if (!e.rec.naddrs) {
        fail(p, "peer '%s' has no address (expected DEVICE-ID ADDR:PORT)%s", id, "");
        goto out;
    }
    if (c->npeers == CMD_CONFIG_MAX_PEERS) {
        fail(p, "too many peer lines%s%s", "", "");
        goto out;
    }
    struct cmd_config_peer *n = realloc(c->peers, (c->npeers + 1) * sizeof(*n));
    if (!n) {
        fail(p, "out of memory%s%s", "", "");
        goto out;
    }
    c->peers = n;
    c->peers[c->npeers++] = e;
    ok = 1;
out:
    free(v);
    return ok;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    struct cmd_config *c = p->c;
    if (section[0])
        return fail(p, "unknown section '[%s]' (the keys go at the top, outside any section)%s", section, "");
    if (!strcmp(name, "listen")) {
        char *v = strdup(value), *save = NULL;
        if (!v)
            return fail(p, "out of memory%s%s", "", "");
        for (char *t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            t = trim(t);
            if (!*t)
                continue;
            if (!cmd_addr_valid(t, 1)) {
                fail(p, "malformed listen address '%s' (expected HOST:PORT, e.g. 0.0.0.0:7400)%s", t, "");
                free(v);
                return 0;
            }
            if (c->nlisten == NET_MAX_LISTEN) {
                char max[16];
                snprintf(max, sizeof(max), "%d", NET_MAX_LISTEN);
                fail(p, "too many listen addresses (at most %s)%s", max, "");
                free(v);
                return 0;
            }
            if (!(c->listen[c->nlisten] = strdup(t))) {
                free(v);
                return fail(p, "out of memory%s%s", "", "");
            }
            c->nlisten++;
        }
        free(v);
        return 1;
    }
    long v;
    if (!strcmp(name, "fetch_timeout_ms")) {
        if (cmd_parse_int(value, 1, 600000, &v))
            return fail(p, "bad fetch_timeout_ms '%s' (expected milliseconds, 1 to 600000)%s", value, "");
        c->fetch_timeout_ms = (unsigned)v;
        return 1;
    }
    if (!strcmp(name, "log_level")) {
        static const struct { const char *n; enum lr_level l; } levels[] = {
            { "error", LR_LOG_ERROR }, { "warn", LR_LOG_WARN }, { "info", LR_LOG_INFO }, { "debug", LR_LOG_DEBUG },
        };
        for (size_t i = 0; i < LR_ARRAY_SIZE(levels); i++)
            if (!strcmp(value, levels[i].n)) {
                c->has_log_level = 1;
                c->log_level = levels[i].l;
                return 1;
            }
        return fail(p, "bad log_level '%s' (expected error, warn, info or debug)%s", value, "");
    }
    if (!strcmp(name, "replicate")) {
        if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
            c->replicate = 1;
        else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
            c->replicate = 0;
        else
            return fail(p, "bad replicate '%s' (expected yes or no)%s", value, "");
        return 1;
    }
    if (!strcmp(name, "cache_quota")) {
        if (cmd_parse_size(value, &c->cache_quota))
            return fail(p, "bad cache_quota '%s' (expected a size such as 512M, 20G or none)%s", value, "");
        c->has_cache_quota = 1;
        return 1;
    }
    if (!strcmp(name, "copies")) {
        if (cmd_parse_int(value, 0, 16, &v))
            return fail(p, "bad copies '%s' (expected 0 to 16)%s", value, "");
        c->copies = (int)v;
        return 1;
    }
    if (!strcmp(name, "push_after")) {
        if (cmd_parse_int(value, 0, 86400, &v))
            return fail(p, "bad push_after '%s' (expected seconds, 0 to 86400)%s", value, "");
        c->push_after = (int)v;
        return 1;
    }
    if (!strcmp(name, "max_pending")) {
        if (cmd_parse_int(value, 16, 10000000, &v))
            return fail(p, "bad max_pending '%s' (expected records, 16 to 10000000)%s", value, "");
        c->max_pending = (unsigned)v;
        return 1;
    }
    if (!strcmp(name, "forget_deleted_after")) {
        if (!strcmp(value, "never"))
            c->forget_deleted_s = 0;
        else if (cmd_parse_duration(value, &c->forget_deleted_s) || c->forget_deleted_s == 0)
            return fail(p, "bad forget_deleted_after '%s' (expected a duration such as 90d, 12h, 30m "
                           "or 45s, 1s to 36500d, or never)%s", value, "");
        return 1;
    }
    if (!strcmp(name, "peer"))
        return parse_peer(p, value);
    return fail(p, "unknown key '%s' (known: listen, peer, fetch_timeout_ms, log_level, replicate, "
                   "cache_quota, copies, push_after, max_pending, forget_deleted_after)%s", name, "");
}

int cmd_config_parse(const char *path, struct cmd_config *c)
{
    memset(c, 0, sizeof(*c));
    c->copies = -1;
    c->push_after = -1;
    c->forget_deleted_s = -1;
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "landro: cannot read config file '%s': %s\n", path, strerror(errno));
        return -1;
    }
    struct parse p = { .c = c };
    ini_stop_on_first_error = true;
    ini_allow_multiline = false;
    int rc = ini_parse_file(f, on_pair, &p);
    int rerr = ferror(f);
    fclose(f);
    if (rc > 0) {
        fprintf(stderr, "landro: %s:%d: %s\n", path, rc,
                p.err[0] ? p.err : "syntax error (expected KEY = VALUE, [section] or a # comment)");
        cmd_config_release(c);
        return -1;
    }
    if (rc < 0 || rerr) {
        fprintf(stderr, "landro: cannot read config file '%s'%s\n", path,
                rc == -2 ? ": out of memory" : "");
        cmd_config_release(c);
        return -1;
    }
    return 0;
}

int cmd_config_load(const char *dir, struct cmd_config *c)
{
    char *path;
    if (asprintf(&path, "%s/%s", dir, CMD_CONFIG_FILE) < 0) {
        memset(c, 0, sizeof(*c));
        fprintf(stderr, "landro: out of memory\n");
        return -1;
    }
    int rc = cmd_config_parse(path, c);
    free(path);
    return rc;
}

void cmd_config_release(struct cmd_config *c)
{
    for (unsigned i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    free(c->peers);
    memset(c, 0, sizeof(*c));
}
