/* SPDX-License-Identifier: MIT */
/*
 * memcached.c — compatibility row: libmemcached's blocking API
 * (memcached_set, memcached_get) against a real memcached on loopback,
 * run as an unprivileged user.
 *
 * memcached answers at once and has no command that waits, so the
 * clients reach it through a proxy made of virtual threads in this
 * process, which holds the first request of each connection
 * COMPAT_WAIT_MS before passing it on. libmemcached makes its socket
 * non-blocking and waits in poll() inside libmemcached.so: it must park,
 * or on one P the proxy never runs. Afterwards the test reads every key
 * straight from memcached: the values landed on the real server.
 */
#include "compat.h"

#include <libmemcached/memcached.h>

static struct srv g_mc;

static void start_memcached(struct srv *s)
{
    char bin[PATH_MAX];
    srv_find("memcached", bin, sizeof bin);
    srv_open(s, "memcached");
    /* As root, server.c starts it as nobody already: no -u needed. */
    const char *argv[] = {bin, "-p", "{port}", "-l", "127.0.0.1", "-U", "0",
                          "-m", "16", "-t", "2", NULL};
    srv_start(s, argv, 10);
}

/* ------------------------------------------------------------- the proxy */

struct pump {
    int from, to;
    bool delay_first; /* hold the first chunk COMPAT_WAIT_MS */
};

/* Copies from -> to until end-of-file, then shuts down to's writing. */
static int pump(void *arg)
{
    struct pump *p = arg;
    char buf[4096];
    for (bool first = p->delay_first;; first = false) {
        ssize_t r = read(p->from, buf, sizeof buf);
        if (r <= 0)
            break;
        if (first)
            weft_sleep(WT_MS(COMPAT_WAIT_MS));
        if (write(p->to, buf, (size_t)r) != r)
            break;
    }
    shutdown(p->to, SHUT_WR);
    return 0;
}

struct conn {
    int client;
    uint16_t upstream;
};

static atomic_int g_conns; /* proxy connections not finished yet */

static int proxy_conn(void *arg)
{
    struct conn *c = arg;
    int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = wt_loopback(c->upstream);
    WT_CHECK_MSG(up >= 0 && connect(up, (struct sockaddr *)&a, sizeof a) == 0,
                 "proxy: connect to memcached: %s", strerror(wt_errno()));
    struct pump in = {c->client, up, true}, out = {up, c->client, false};
    weft_thread *t = wt_go_named("pump-in", pump, &in);
    pump(&out);
    wt_join(t);
    close(up);
    close(c->client);
    free(c);
    atomic_fetch_sub(&g_conns, 1);
    return 0;
}

struct proxy {
    int listener;
    uint16_t upstream;
};

/* Accepts until cancelled. */
static int proxy(void *arg)
{
    struct proxy *p = arg;
    for (;;) {
        int fd = accept(p->listener, NULL, NULL);
        if (fd < 0)
            return wt_errno() == ECANCELED ? 0 : wt_errno();
        struct conn *c = malloc(sizeof *c);
        WT_REQUIRE(c != NULL);
        *c = (struct conn){fd, p->upstream};
        atomic_fetch_add(&g_conns, 1);
        weft_attr a = {.detached = true, .name = "proxy-conn"};
        WT_CHECK(weft_go_with(&a, proxy_conn, c) != NULL);
    }
}

/* ----------------------------------------------------------- the clients */

struct client {
    int i;
    uint16_t port; /* the proxy's */
};

static memcached_st *connect_to(uint16_t port)
{
    memcached_st *m = memcached_create(NULL);
    if (!m)
        return NULL;
    memcached_server_add(m, "127.0.0.1", port);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 10000);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 10000);
    return m;
}

static int client(void *arg)
{
    struct client *k = arg;
    memcached_st *m = connect_to(k->port);
    compat_gate(); /* libmemcached connects at its first request */
    WT_REQUIRE(m != NULL);
    char key[32], val[32];
    snprintf(key, sizeof key, "key:%d", k->i);
    snprintf(val, sizeof val, "value:%d", k->i);
    memcached_return_t rc =
        memcached_set(m, key, strlen(key), val, strlen(val), 0, 0);
    WT_CHECK_MSG(rc == MEMCACHED_SUCCESS, "client %d: set: %s", k->i,
                 memcached_strerror(m, rc));
    size_t len = 0;
    uint32_t flags;
    char *got = memcached_get(m, key, strlen(key), &len, &flags, &rc);
    WT_CHECK_MSG(rc == MEMCACHED_SUCCESS && got && len == strlen(val) &&
                 !memcmp(got, val, len), "client %d: get: %s, '%.*s'", k->i,
                 memcached_strerror(m, rc), got ? (int)len : 0,
                 got ? got : "");
    free(got);
    memcached_free(m);
    return 0;
}

static int root(void *arg)
{
    uint16_t upstream = *(uint16_t *)arg, port;
    struct proxy p = {wt_tcp_listen(&port), upstream};
    WT_REQUIRE(p.listener >= 0);
    weft_thread *t = wt_go_named("proxy", proxy, &p);
    struct client k[COMPAT_N];
    for (int i = 0; i < COMPAT_N; i++)
        k[i] = (struct client){i, port};
    compat_clients("memcached", client, k, sizeof k[0], COMPAT_N);
    /* The clients hung up: the proxy's connections end by themselves. */
    for (int i = 0; i < 5000 && atomic_load(&g_conns); i++)
        weft_sleep(WT_MS(1));
    WT_CHECK_EQ(atomic_load(&g_conns), 0);
    weft_cancel(t);
    WT_CHECK_EQ(wt_join(t), 0);
    close(p.listener);
    return 0;
}

/* Every client's key is on the real server. Runs on: the main thread. */
static void expect_keys(uint16_t port)
{
    memcached_st *m = connect_to(port);
    cr_assert_not_null(m);
    for (int i = 0; i < COMPAT_N; i++) {
        char key[32], val[32];
        snprintf(key, sizeof key, "key:%d", i);
        snprintf(val, sizeof val, "value:%d", i);
        size_t len = 0;
        uint32_t flags;
        memcached_return_t rc;
        char *got = memcached_get(m, key, strlen(key), &len, &flags, &rc);
        cr_expect(got && len == strlen(val) && !memcmp(got, val, len),
                  "%s on memcached: %s", key, memcached_strerror(m, rc));
        free(got);
    }
    memcached_free(m);
}

static void run(unsigned procs)
{
    start_memcached(&g_mc);
    int rc = wt_run(root, &g_mc.port,
                    .procs = procs, .hog_ms = WT_NO_HANDOFF_MS);
    cr_assert_eq(rc, 0, "weft_run returned %d", rc);
    compat_expect_overlap("libmemcached set+get", COMPAT_N, procs);
    expect_keys(g_mc.port);
    srv_close(&g_mc);
}

Test(memcached, set_get_overlap_on_one_p, .timeout = 30)
{
    run(1);
}

Test(memcached, set_get_overlap_on_two_ps, .timeout = 30)
{
    run(2);
}
