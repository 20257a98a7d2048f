/* SPDX-License-Identifier: MIT */
/*
 * getaddrinfo.c — compatibility row: 1,000 concurrent getaddrinfo()
 * calls from virtual threads. No network: "localhost" comes from
 * /etc/hosts through NSS (numeric hosts would not block at all, so they
 * would prove nothing).
 *
 * weft runs each call on its offload pool (64 OS threads by default) and
 * parks the caller. Every result is checked (127.0.0.1, and the port the
 * caller asked for as its service); the test reports how many calls were
 * in flight at once: virtual threads inside getaddrinfo (counted here),
 * and pool threads busy (weft_stats, sampled by an OS thread). On one P
 * with hand-offs held off, more than one caller inside at once means the
 * callers parked.
 */
#include "compat.h"

#include <netdb.h>
#include <sched.h>

enum { NCALLS = 1000, BASE_PORT = 20000 };

static atomic_int g_inside, g_inside_max, g_wrong;

struct sampler {
    atomic_int stop, samples;
    unsigned busy_max, threads_max;
    pthread_t t;
};

/* Samples weft_stats' offload pool from an OS thread until stopped. */
static void *sample(void *arg)
{
    struct sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        weft_runtime_stats st;
        if (weft_stats(&st) == 0) {
            if (st.offload_busy > s->busy_max)
                s->busy_max = st.offload_busy;
            if (st.offload_threads > s->threads_max)
                s->threads_max = st.offload_threads;
        }
        atomic_fetch_add(&s->samples, 1);
        sched_yield();
    }
    return NULL;
}

static void bump_max(atomic_int *max, int v)
{
    int m = atomic_load(max);
    while (v > m && !atomic_compare_exchange_weak(max, &m, v)) {
    }
}

static int lookup(void *arg)
{
    int i = (int)(intptr_t)arg;
    char service[16];
    snprintf(service, sizeof service, "%d", BASE_PORT + i);
    struct addrinfo hints = {.ai_family = AF_INET,
                             .ai_socktype = SOCK_STREAM}, *res = NULL;
    bump_max(&g_inside_max, atomic_fetch_add(&g_inside, 1) + 1);
    int rc = getaddrinfo("localhost", service, &hints, &res);
    atomic_fetch_sub(&g_inside, 1);
    bool ok = rc == 0 && res && res->ai_family == AF_INET;
    if (ok) {
        struct sockaddr_in *a = (struct sockaddr_in *)res->ai_addr;
        ok = a->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
             ntohs(a->sin_port) == BASE_PORT + i;
    }
    if (!ok && atomic_fetch_add(&g_wrong, 1) < 5)
        WT_CHECK_MSG(0, "lookup %d: %s", i,
                     rc ? gai_strerror(rc) : "a wrong address or port");
    if (res)
        freeaddrinfo(res);
    return 0;
}

static long g_ms;
static weft_runtime_stats g_st;

static int root(void *arg)
{
    struct sampler *s = arg;
    WT_REQUIRE_EQ(pthread_create(&s->t, NULL, sample, s), 0);
    while (!atomic_load(&s->samples))
        weft_yield();
    weft_thread **t = calloc(NCALLS, sizeof *t);
    WT_REQUIRE(t != NULL);
    int64_t t0 = weft_now();
    for (int i = 0; i < NCALLS; i++)
        t[i] = wt_go_named("lookup", lookup, (void *)(intptr_t)i);
    for (int i = 0; i < NCALLS; i++)
        WT_CHECK_EQ(wt_join(t[i]), 0);
    g_ms = wt_ms_since(t0);
    WT_CHECK_EQ(weft_stats(&g_st), 0);
    atomic_store(&s->stop, 1);
    pthread_join(s->t, NULL);
    free(t);
    return 0;
}

static void run(unsigned procs)
{
    struct sampler s = {0};
    int rc = wt_run(root, &s, .procs = procs, .hog_ms = WT_NO_HANDOFF_MS);
    cr_assert_eq(rc, 0, "weft_run returned %d", rc);
    cr_log_info("%d lookups of localhost on %u P's: %ld ms, %d wrong; at "
                "most %d virtual threads inside getaddrinfo at once, %u "
                "offload pool threads busy at once (%u in the pool), %llu "
                "hand-offs, I/O %s", NCALLS, procs, g_ms,
                atomic_load(&g_wrong), atomic_load(&g_inside_max),
                s.busy_max, s.threads_max, g_st.handoffs, g_st.io_backend);
    cr_expect_eq(atomic_load(&g_wrong), 0, "%d lookups went wrong",
                 atomic_load(&g_wrong));
    cr_expect_gt(atomic_load(&g_inside_max), 1, "the lookups never "
                 "overlapped: getaddrinfo did not park its caller");
    cr_expect_eq(g_st.handoffs, 0);
    if (!getenv("WEFT_OFFLOAD_THREADS"))
        cr_expect_leq(s.threads_max, 64, "the pool outgrew its default");
}

Test(getaddrinfo, thousand_lookups_on_one_p, .timeout = 60)
{
    run(1);
}

Test(getaddrinfo, thousand_lookups_on_two_ps, .timeout = 60)
{
    run(2);
}
