/*
 * verify.c - SHA-256 verification of fetched chunks off the network thread.
 *
 * CONTRACT
 *
 * When a chunk response is complete, the network thread hands its
 * reassembly buffer (ownership and all) and its fetch to this pool of
 * verifier threads, unless NET_VERIFY_MAX chunks are already waiting or
 * being verified, in which case it verifies inline (memory stays bounded:
 * at most NET_VERIFY_MAX buffers per node). A handed-over fetch is off
 * every network-thread list. The verifier hashes the bytes:
 *  - they match: it calls the fetch's callback itself, with the bytes,
 *    then frees the buffer and the fetch; no callback ever sees bytes
 *    that did not hash to the name asked for;
 *  - they do not: the callback is not called, the fetch goes back to the
 *    network thread for its next attempt.
 * Either way the outcome goes back to the network thread (n->vdone, one
 * eventfd wake-up when that list was empty), which counts it in the
 * peer's health and statistics (net_verify_drain).
 * Chunk buffers come from a small per-node pool (net_buf_get/put, at most
 * NET_BUF_KEEP free ones per size class).
 * net_verify_stop (after the network thread has exited) lets the
 * verifiers finish what they hold, joins them, and cancels the fetches of
 * failed verifications nobody took back.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_int.h"

struct net_vjob {
    struct net_vjob *next;
    struct net_fetch *f;    /* NULL once delivered (success) */
    net_id from;
    uint8_t *buf;
    size_t len;
    int ok;
};

static __thread int on_verifier;

int net_on_verifier_thread(void)
{
    return on_verifier;
}

static void post_done(struct net_node *n, struct net_vjob *j)
{
    pthread_mutex_lock(&n->lock);
    int was_empty = n->vdone == NULL;
    j->next = n->vdone;
    n->vdone = j;
    pthread_mutex_unlock(&n->lock);
    uint64_t one = 1;
    if (was_empty && write(n->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        lr_warn("cannot wake network thread: %s", strerror(errno));
}

/* The buffer the running fetch callback may take over (net_chunk_keep). */
static __thread uint8_t **keep_slot;

int net_chunk_keep(const uint8_t *data)
{
    if (!keep_slot || *keep_slot != data)
        return 0;
    *keep_slot = NULL;
    return 1;
}

void net_chunk_release(struct net_node *n, const uint8_t *data, size_t len)
{
    net_buf_put(n, (uint8_t *)data, len);
}

static void *verifier_main(void *arg)
{
    struct net_node *n = arg;
    on_verifier = 1;
    pthread_setname_np(pthread_self(), "landro-verify");
    pthread_mutex_lock(&n->vlock);
    for (;;) {
        struct net_vjob *j = n->vhead;
        if (!j) {
            if (n->vstop)
                break;
            pthread_cond_wait(&n->vcv, &n->vlock);
            continue;
        }
        n->vhead = j->next;
        if (!n->vhead)
            n->vtail = NULL;
        pthread_mutex_unlock(&n->vlock);

        j->ok = st_hash_verify(j->buf, j->len, &j->f->h);
        if (j->ok) {
            struct net_fetch *f = j->f;
            keep_slot = &j->buf;
            f->cb(f->ctx, 0, &f->h, j->buf, j->len, &j->from);
            keep_slot = NULL;
            free(f->peers);
            free(f->tried);
            free(f);
            j->f = NULL;
        }
        net_buf_put(n, j->buf, j->len);
        j->buf = NULL;
        pthread_mutex_lock(&n->vlock);
        n->vbusy--;
        pthread_mutex_unlock(&n->vlock);
        post_done(n, j);
        pthread_mutex_lock(&n->vlock);
    }
    pthread_mutex_unlock(&n->vlock);
    return NULL;
}

int net_verify_start(struct net_node *n)
{
    unsigned k = n->cfg.verify_threads;
    if (k == 0) {
        long np = sysconf(_SC_NPROCESSORS_ONLN);
        /* four verify 5 GB/s of chunks, more than the network thread decrypts */
        k = np > 2 ? (unsigned)(np - 1) : 1;
        if (k > 4)
            k = 4;
    }
    if (k > NET_VERIFY_THREADS_MAX)
        k = NET_VERIFY_THREADS_MAX;
    n->vstop = 0;
    for (unsigned i = 0; i < k; i++) {
        int rc = pthread_create(&n->vthreads[i], NULL, verifier_main, n);
        if (rc != 0) {
            if (i == 0)
                return -rc;
            lr_warn("net: %u chunk verifier threads instead of %u: %s", i, k, strerror(rc));
            break;
        }
        n->nverifiers++;
    }
    return 0;
}

int net_verify_room(struct net_node *n)
{
    if (!n->nverifiers)
        return 0;
    pthread_mutex_lock(&n->vlock);
    int room = n->vbusy < NET_VERIFY_MAX && !n->vstop;
    pthread_mutex_unlock(&n->vlock);
    return room;
}

int net_verify_submit(struct net_node *n, struct net_fetch *f, const net_id *from, uint8_t *buf,
                      size_t len)
{
    struct net_vjob *j = malloc(sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->next = NULL;
    j->f = f;
    j->from = *from;
    j->buf = buf;
    j->len = len;
    j->ok = 0;
    net_fetch_unlink(n, f); /* the verifier owns f from here */
    pthread_mutex_lock(&n->vlock);
    if (n->vtail)
        n->vtail->next = j;
    else
        n->vhead = j;
    n->vtail = j;
    n->vbusy++;
    pthread_cond_signal(&n->vcv);
    pthread_mutex_unlock(&n->vlock);
    return 0;
}

/* The verifiers' finished jobs, all of them, leaving none behind. */
static struct net_vjob *take_done(struct net_node *n)
{
    pthread_mutex_lock(&n->lock);
    struct net_vjob *j = n->vdone;
    n->vdone = NULL;
    pthread_mutex_unlock(&n->lock);
    return j;
}

/* Network thread: take the verifiers' outcomes. */
void net_verify_drain(struct net_node *n)
{
    struct net_vjob *j = take_done(n);
    while (j) {
        struct net_vjob *next = j->next;
        struct net_peer *p = net_node_find_peer(n, &j->from);
        if (j->ok) {
            if (p) {
                p->chunks_ok++;
                p->bytes_rx += j->len;
                p->consec_fail = 0;
                p->win_ok[0]++;
            }
        } else {
            struct net_fetch *f = j->f;
            char hex[65], id[10];
            lr_warn("peer %s sent %zu bytes that do not hash to chunk %s", net_id_short(&j->from, id),
                    j->len, st_hash_hex(&f->h, hex));
            net_fetch_mark_tried_id(f, &j->from);
            if (p)
                net_peer_fail(p, 0);
            f->nhash++;
            net_fetch_add(n, f); /* next attempt, or the end of the fetch */
        }
        free(j);
        j = next;
    }
}

void net_verify_stop(struct net_node *n)
{
    pthread_mutex_lock(&n->vlock);
    n->vstop = 1;
    pthread_cond_broadcast(&n->vcv);
    pthread_mutex_unlock(&n->vlock);
    for (unsigned i = 0; i < n->nverifiers; i++)
        pthread_join(n->vthreads[i], NULL);
    n->nverifiers = 0;
    /* Outcomes the network thread did not take: cancel the fetches that
     * were waiting for another attempt. */
    struct net_vjob *j = take_done(n);
    while (j) {
        struct net_vjob *next = j->next;
        if (j->f) {
            struct net_fetch *f = j->f;
            f->cb(f->ctx, -ECANCELED, &f->h, NULL, 0, NULL);
            free(f->peers);
            free(f->tried);
            free(f);
        }
        net_buf_put(n, j->buf, j->len);
        free(j);
        j = next;
    }
}

/* ---- chunk buffers ------------------------------------------------------ */

static unsigned buf_class(size_t len)
{
    return len ? (unsigned)((len - 1) / NET_BUF_CLASS) : 0;
}

uint8_t *net_buf_get(struct net_node *n, size_t len)
{
    unsigned k = buf_class(len);
    if (k >= NET_BUF_CLASSES)
        return malloc(len);
    uint8_t *b = NULL;
    pthread_mutex_lock(&n->vlock);
    if (n->nbufs[k])
        b = n->bufs[k][--n->nbufs[k]];
    pthread_mutex_unlock(&n->vlock);
    return b ? b : malloc((size_t)(k + 1) * NET_BUF_CLASS);
}

void net_buf_put(struct net_node *n, uint8_t *buf, size_t len)
{
    unsigned k = buf_class(len);
    if (!buf)
        return;
    if (k < NET_BUF_CLASSES) {
        pthread_mutex_lock(&n->vlock);
        if (n->nbufs[k] < NET_BUF_KEEP) {
            n->bufs[k][n->nbufs[k]++] = buf;
            buf = NULL;
        }
        pthread_mutex_unlock(&n->vlock);
    }
    free(buf);
}

void net_buf_release_all(struct net_node *n)
{
    for (unsigned k = 0; k < NET_BUF_CLASSES; k++)
        while (n->nbufs[k])
            free(n->bufs[k][--n->nbufs[k]]);
}
