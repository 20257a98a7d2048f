/* SPDX-License-Identifier: MIT */
/*
 * tls.c — compatibility row: OpenSSL's blocking TLS API (SSL_connect,
 * SSL_accept, SSL_read, SSL_write on plain sockets), client and server in
 * virtual threads of one process, with a self-signed certificate made
 * here with OpenSSL's API.
 *
 *   reads_overlap_on_one_p          COMPAT_N clients handshake, then each
 *                                   sends a line that the server echoes
 *                                   after COMPAT_WAIT_MS: libssl's read()
 *                                   must park (overlap, as in every row)
 *   error_queue_is_per_connection   many handshakes at once on two P's,
 *                                   two thirds of them failing on purpose
 *                                   (a client that trusts another CA; a
 *                                   client limited to TLS 1.2 against a
 *                                   server that requires 1.3): each
 *                                   thread, client or server side, finds
 *                                   its own failure's reason first in
 *                                   ERR_get_error(), and a thread whose
 *                                   handshake succeeded finds the queue
 *                                   empty.
 *   error_queue_survives_a_park     the same, each thread sleeping 2 ms
 *                                   (a park, from the program) between
 *                                   its handshake and its look at the
 *                                   queue: the queue must be the virtual
 *                                   thread's, not its carrier's.
 *
 * OpenSSL keeps its error queue per OS thread (a pthread key): a virtual
 * thread that parks inside SSL_connect after the error was queued (in
 * the write of the alert it sends) and resumes on another carrier, or
 * lets another thread on its carrier clear the queue, loses it. The
 * reasons expected are not written here: they are what the same failing
 * handshakes give on plain OS threads, measured first (baseline).
 */
#include "compat.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

enum kind { GOOD, WRONG_CA, OLD_VERSION, NKINDS };
static const char *const kind_name[] = {"good", "wrong CA", "TLS 1.2 only"};

/* Contexts: valid from tls_setup to tls_teardown. */
static struct {
    EVP_PKEY *key, *other_key;
    X509 *cert, *other_cert;   /* ours, and the CA a WRONG_CA client trusts */
    SSL_CTX *server[NKINDS];   /* OLD_VERSION's requires TLS 1.3 */
    SSL_CTX *client[NKINDS];   /* WRONG_CA's trusts other_cert; OLD's
                                  stops at TLS 1.2 */
} g;

/* The first error reason each side's failed handshake gives on OS
 * threads; 0 for GOOD. [kind][0]: client, [kind][1]: server. */
static unsigned long g_reason[NKINDS][2];

/* ------------------------------------------------------ certificates */

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX c;
    X509V3_set_ctx_nodb(&c);
    X509V3_set_ctx(&c, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &c, nid, value);
    cr_assert_not_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
}

/* A certificate for localhost and 127.0.0.1, signed by its own key. */
static X509 *self_signed(EVP_PKEY *key, const char *cn, long serial)
{
    X509 *x = X509_new();
    cr_assert_not_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, n);
    add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    cr_assert_gt(X509_sign(x, key, EVP_sha256()), 0);
    return x;
}

static SSL_CTX *server_ctx(int min_version)
{
    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    cr_assert_not_null(c);
    cr_assert_eq(SSL_CTX_use_certificate(c, g.cert), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey(c, g.key), 1);
    SSL_CTX_set_min_proto_version(c, min_version);
    return c;
}

static SSL_CTX *client_ctx(X509 *trusted, int max_version)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(c);
    cr_assert_eq(X509_STORE_add_cert(SSL_CTX_get_cert_store(c), trusted), 1);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_max_proto_version(c, max_version);
    return c;
}

static void tls_setup(void)
{
    /* As any TLS server must: a peer that hung up after its handshake
     * (a session ticket still being sent) is EPIPE, not a crash. */
    signal(SIGPIPE, SIG_IGN);
    g.key = EVP_EC_gen("P-256");
    g.other_key = EVP_EC_gen("P-256");
    cr_assert(g.key && g.other_key, "EVP_EC_gen failed");
    g.cert = self_signed(g.key, "localhost", 1);
    g.other_cert = self_signed(g.other_key, "another CA", 2);
    g.server[GOOD] = server_ctx(TLS1_2_VERSION);
    g.server[WRONG_CA] = server_ctx(TLS1_2_VERSION);
    g.server[OLD_VERSION] = server_ctx(TLS1_3_VERSION);
    g.client[GOOD] = client_ctx(g.cert, 0);
    g.client[WRONG_CA] = client_ctx(g.other_cert, 0);
    g.client[OLD_VERSION] = client_ctx(g.cert, TLS1_2_VERSION);
}

static void tls_teardown(void)
{
    for (int k = 0; k < NKINDS; k++) {
        SSL_CTX_free(g.server[k]);
        SSL_CTX_free(g.client[k]);
    }
    X509_free(g.cert);
    X509_free(g.other_cert);
    EVP_PKEY_free(g.key);
    EVP_PKEY_free(g.other_key);
}

/* ----------------------------------------------------- one handshake */

/* A handshake's outcome as its thread saw it, right after it. */
struct outcome {
    int ret;                /* SSL_connect's or SSL_accept's result */
    int ssl_error;          /* SSL_get_error(ret) */
    unsigned long first;    /* ERR_get_error(): the queue's oldest */
    int more;               /* errors left in the queue after it */
};

/* Runs SSL_connect (client) or SSL_accept on s, the way the docs ask:
 * the thread's queue cleared first, read right after; or, with park_us,
 * after a sleep of that long (an application that closes, backs off or
 * logs before it looks at the queue). Runs on: any thread. */
static struct outcome handshake(SSL *s, bool client, unsigned park_us)
{
    struct outcome o = {0};
    ERR_clear_error();
    o.ret = client ? SSL_connect(s) : SSL_accept(s);
    if (park_us)
        usleep(park_us); /* parks; may resume on another carrier */
    o.ssl_error = SSL_get_error(s, o.ret);
    o.first = ERR_get_error();
    while (ERR_get_error())
        o.more++;
    return o;
}

static SSL *new_ssl(enum kind k, bool client, int fd)
{
    SSL *s = SSL_new(client ? g.client[k] : g.server[k]);
    if (!s)
        return NULL;
    SSL_set_fd(s, fd);
    if (client && k == GOOD)
        SSL_set1_host(s, "localhost");
    return s;
}

static const char *reason_text(unsigned long e, char *buf, size_t n)
{
    if (!e)
        snprintf(buf, n, "(none)");
    else
        ERR_error_string_n(e, buf, n);
    return buf;
}

/* ------------------------------------------------ baseline: OS threads */

struct os_side {
    enum kind k;
    int fd;
    struct outcome o;
};

static void *os_client(void *arg)
{
    struct os_side *c = arg;
    SSL *s = new_ssl(c->k, true, c->fd);
    c->o = handshake(s, true, 0);
    SSL_free(s);
    shutdown(c->fd, SHUT_RDWR);
    return NULL;
}

/* One handshake of kind k between two OS threads over a socket pair:
 * fills g_reason[k]. Runs on: the test's main thread, before weft_run. */
static void measure_baseline(enum kind k)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct os_side c = {k, sv[0], {0}};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, os_client, &c), 0);
    SSL *s = new_ssl(k, false, sv[1]);
    struct outcome o = handshake(s, false, 0);
    SSL_free(s);
    shutdown(sv[1], SHUT_RDWR);
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
    char b1[256], b2[256];
    cr_log_info("on OS threads, %s: client %s; server %s", kind_name[k],
                reason_text(c.o.first, b1, sizeof b1),
                reason_text(o.first, b2, sizeof b2));
    if (k == GOOD) {
        cr_assert(c.o.ret == 1 && o.ret == 1 && !c.o.first && !o.first,
                  "the good handshake failed on OS threads: %s / %s", b1, b2);
    } else {
        cr_assert(c.o.ret <= 0 && o.ret <= 0 && c.o.first && o.first,
                  "the %s handshake did not fail on both sides on OS "
                  "threads", kind_name[k]);
    }
    g_reason[k][0] = c.o.first;
    g_reason[k][1] = o.first;
}

/* ------------------------------------------------- virtual threads */

/* Handshakes under weft, and those whose thread did not find its own
 * outcome in its error queue: [kind][client 0, server 1]. */
static atomic_int g_seen[NKINDS][2], g_wrong[NKINDS][2];

static bool outcome_ok(enum kind k, const struct outcome *o,
                       unsigned long want)
{
    if (k == GOOD)
        return o->ret == 1 && !o->first;
    return o->ret <= 0 && o->ssl_error == SSL_ERROR_SSL &&
           ERR_GET_REASON(o->first) == ERR_GET_REASON(want);
}

/* What every handshake under weft is checked against. */
static void expect_outcome(enum kind k, bool client, int i,
                           const struct outcome *o)
{
    const char *side = client ? "client" : "server";
    unsigned long want = g_reason[k][client ? 0 : 1];
    char got_s[256], want_s[256];
    reason_text(o->first, got_s, sizeof got_s);
    reason_text(want, want_s, sizeof want_s);
    atomic_fetch_add(&g_seen[k][!client], 1);
    if (!outcome_ok(k, o, want))
        atomic_fetch_add(&g_wrong[k][!client], 1);
    if (k == GOOD) {
        WT_CHECK_MSG(o->ret == 1, "%s %d (good): handshake failed: %s", side,
                     i, got_s);
        WT_CHECK_MSG(o->first == 0, "%s %d (good): succeeded, but its error "
                     "queue holds %s (+%d more)", side, i, got_s, o->more);
        return;
    }
    WT_CHECK_MSG(o->ret <= 0 && o->ssl_error == SSL_ERROR_SSL,
                 "%s %d (%s): ret %d, SSL_get_error %d", side, i,
                 kind_name[k], o->ret, o->ssl_error);
    WT_CHECK_MSG(ERR_GET_REASON(o->first) == ERR_GET_REASON(want),
                 "%s %d (%s): ERR_get_error gave %s, expected %s", side, i,
                 kind_name[k], got_s, want_s);
}

struct conn {
    enum kind k;
    int i, fd;
    int64_t delay;      /* server: before echoing */
    bool gate;          /* client: compat_gate between handshake and I/O */
    unsigned park_us;   /* a sleep between handshake and reading the queue */
    uint16_t port;      /* client: where the server of its kind listens */
};

static atomic_int g_serving; /* server connections not finished */

/* Server side of one connection: handshake, then echo one line. */
static int serve(void *arg)
{
    struct conn *c = arg;
    SSL *s = new_ssl(c->k, false, c->fd);
    WT_CHECK(s != NULL);
    struct outcome o = s ? handshake(s, false, c->park_us)
                         : (struct outcome){0};
    if (s)
        expect_outcome(c->k, false, c->i, &o);
    if (o.ret == 1) {
        char buf[64];
        int n = SSL_read(s, buf, sizeof buf);
        weft_sleep(c->delay);
        WT_CHECK_MSG(n > 0 && SSL_write(s, buf, n) == n,
                     "server %d: echo failed (read %d)", c->i, n);
        SSL_shutdown(s);
    }
    SSL_free(s);
    close(c->fd);
    free(c);
    atomic_fetch_sub(&g_serving, 1);
    return 0;
}

struct listener {
    enum kind k;
    int fd;
    uint16_t port;
    int64_t delay;
    unsigned park_us;
    weft_thread *t;
};

/* Accepts until cancelled; a detached thread per connection. */
static int accept_loop(void *arg)
{
    struct listener *l = arg;
    for (int i = 0;; i++) {
        int fd = accept(l->fd, NULL, NULL);
        if (fd < 0)
            return wt_errno() == ECANCELED ? 0 : wt_errno();
        struct conn *c = malloc(sizeof *c);
        WT_REQUIRE(c != NULL);
        *c = (struct conn){.k = l->k, .i = i, .fd = fd, .delay = l->delay,
                           .park_us = l->park_us};
        atomic_fetch_add(&g_serving, 1);
        weft_attr a = {.detached = true, .name = "tls-server"};
        WT_CHECK(weft_go_with(&a, serve, c) != NULL);
    }
}

static void listen_start(struct listener *l, enum kind k, int64_t delay,
                         unsigned park_us)
{
    *l = (struct listener){.k = k, .delay = delay, .park_us = park_us};
    l->fd = wt_tcp_listen(&l->port);
    WT_CHECK(l->fd >= 0);
    l->t = wt_go_named("tls-accept", accept_loop, l);
}

/* Waits for the server connections to end, then stops accepting. */
static void listen_stop(struct listener *l, int n)
{
    for (int i = 0; i < 10000 && atomic_load(&g_serving); i++)
        weft_sleep(WT_MS(1));
    WT_CHECK_EQ(atomic_load(&g_serving), 0);
    for (int i = 0; i < n; i++) {
        weft_cancel(l[i].t);
        WT_CHECK_EQ(wt_join(l[i].t), 0);
        close(l[i].fd);
    }
}

/* Client side: connect, handshake, and for a good one a line echoed. */
static int client(void *arg)
{
    struct conn *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = wt_loopback(c->port);
    bool up = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    SSL *s = up ? new_ssl(c->k, true, fd) : NULL;
    struct outcome o = s ? handshake(s, true, c->park_us)
                         : (struct outcome){0};
    if (c->gate)
        compat_gate();
    WT_CHECK_MSG(s != NULL, "client %d: connect: %s", c->i,
                 strerror(wt_errno()));
    if (s)
        expect_outcome(c->k, true, c->i, &o);
    if (o.ret == 1) {
        char line[32], back[64];
        int n = snprintf(line, sizeof line, "line %d", c->i);
        WT_CHECK_EQ(SSL_write(s, line, n), n);
        int r = SSL_read(s, back, sizeof back); /* parks: the server waits */
        WT_CHECK_MSG(r == n && !memcmp(back, line, (size_t)n),
                     "client %d: echo of '%s' came back as %d bytes", c->i,
                     line, r);
        SSL_shutdown(s);
    }
    SSL_free(s);
    if (fd >= 0)
        close(fd);
    return 0;
}

/* ---------------------------------------------------------------- tests */

/* COMPAT_N good clients; the server echoes after COMPAT_WAIT_MS. */
static int root_overlap(void *arg)
{
    struct listener l;
    listen_start(&l, GOOD, WT_MS(COMPAT_WAIT_MS), 0);
    struct conn c[COMPAT_N];
    for (int i = 0; i < COMPAT_N; i++)
        c[i] = (struct conn){.k = GOOD, .i = i, .gate = true, .port = l.port};
    compat_clients("tls-client", client, c, sizeof c[0], COMPAT_N);
    listen_stop(&l, 1);
    return 0;
}

Test(tls, reads_overlap_on_one_p, .timeout = 30)
{
    tls_setup();
    measure_baseline(GOOD);
    int rc = wt_run(root_overlap, NULL, .procs = 1, .hog_ms = WT_NO_HANDOFF_MS);
    tls_teardown();
    cr_assert_eq(rc, 0, "weft_run returned %d", rc);
    compat_expect_overlap("TLS echo", COMPAT_N, 1);
}

enum { PER_KIND = 20 };

/* PER_KIND clients of each kind at once, each against the listener of
 * its kind; every side sleeps *park_us between its handshake and its
 * look at the error queue. */
static int root_errors(void *arg)
{
    unsigned park_us = *(unsigned *)arg;
    struct listener l[NKINDS];
    for (int k = 0; k < NKINDS; k++)
        listen_start(&l[k], (enum kind)k, 0, park_us);
    struct conn c[NKINDS * PER_KIND];
    weft_thread *t[NKINDS * PER_KIND];
    for (int i = 0; i < NKINDS * PER_KIND; i++) {
        enum kind k = (enum kind)(i % NKINDS);
        c[i] = (struct conn){.k = k, .i = i, .port = l[k].port,
                             .park_us = park_us};
        t[i] = wt_go_named("tls-client", client, &c[i]);
    }
    for (int i = 0; i < NKINDS * PER_KIND; i++)
        WT_CHECK_EQ(wt_join(t[i]), 0);
    listen_stop(l, NKINDS);
    return 0;
}

static void run_errors(unsigned park_us)
{
    tls_setup();
    for (int k = 0; k < NKINDS; k++)
        measure_baseline((enum kind)k);
    int rc = wt_run_raw(root_errors, &park_us, 2);
    tls_teardown();
    for (int k = 0; k < NKINDS; k++)
        for (int side = 0; side < 2; side++)
            cr_log_info("%s %s: %d of %d handshakes did not find their own "
                        "outcome in ERR_get_error()%s", kind_name[k],
                        side ? "servers" : "clients",
                        atomic_load(&g_wrong[k][side]),
                        atomic_load(&g_seen[k][side]),
                        park_us ? " after a park" : "");
    wt_assert_clean();
    cr_assert_eq(rc, 0, "weft_run returned %d", rc);
}

Test(tls, error_queue_is_per_connection, .timeout = 30)
{
    run_errors(0);
}

/* The queue is the thread's, whatever it does before reading it: a
 * sleep that parks (and may resume on another carrier, where other
 * threads cleared and filled their own queues meanwhile). */
Test(tls, error_queue_survives_a_park, .timeout = 30)
{
    run_errors(2000);
}
