/* SPDX-License-Identifier: MIT */
/*
 * shield.c — weft_scope_shield: a shielded scope waits through the
 * cancellation of what encloses it (a cancel that came before the shield,
 * one that comes while its threads are blocked, a weft_cancel of its
 * thread, an enclosing deadline), for its nested scopes and its blocking
 * I/O too; its own cancel, deadline and failing children still reach it;
 * closing it brings the enclosing cancellation back; misuse.
 *
 * Registered once per backend (WEFT_IO=uring, WEFT_IO=epoll): some
 * shielded waits are reads (tests/CMakeLists.txt).
 */
#include "wt_io.h"

#define RUN_TEST(...) WT_RUN_TEST(shield, __VA_ARGS__)

#define NAP WT_MS(60)       /* a wait that must not be cut short */
#define LONG WT_MS(10000)   /* a wait that only a cancel ends */

/* A thread that sleeps ns, recording how it ended and how long it took. */
struct napper {
    int64_t ns;
    int rc;
    int64_t slept;
};

static int napper_body(void *arg)
{
    struct napper *n = arg;
    int64_t t0 = weft_now();
    n->rc = weft_sleep(n->ns);
    n->slept = weft_now() - t0;
    return n->rc;
}

/* An OS thread that, once *ready is set, waits 10 ms more, cancels s,
 * and only then releases sem n times and writes "data" to fd (if not
 * -1): what waits for those was blocked when the cancel came. */
struct later {
    weft_scope *s;
    atomic_int *ready;
    weft_sem *sem;
    unsigned n;
    int fd;
    atomic_int done;
    pthread_t pt;
};

static void *later_main(void *arg)
{
    struct later *l = arg;
    for (int i = 0; i < 5000 && !atomic_load(l->ready); i++)
        usleep(1000);
    usleep(10000);
    weft_scope_cancel(l->s);
    for (unsigned i = 0; i < l->n; i++)
        weft_sem_release(l->sem);
    if (l->fd >= 0 && write(l->fd, "data", 4) != 4)
        wt_fail(__FILE__, __LINE__, "write: %s", strerror(errno));
    atomic_store(&l->done, 1);
    return NULL;
}

static int later_start(struct later *l)
{
    return pthread_create(&l->pt, NULL, later_main, l);
}

/* Waits for the OS thread by yielding (no cancellation point). */
static void later_join(struct later *l)
{
    WT_CHECK(wt_yield_until(&l->done, 100000000L));
    pthread_join(l->pt, NULL);
}

/* A thread that waits for a unit of sem, recording how the wait ended. */
struct taker {
    weft_sem *sem;
    atomic_int *ready; /* counts the takers about to wait */
    int rc;
};

static int taker_body(void *arg)
{
    struct taker *t = arg;
    atomic_fetch_add(t->ready, 1);
    t->rc = weft_sem_acquire(t->sem);
    return t->rc;
}

/* Opens a scope into *a, cancelled at once if `cancelled`, then a scope
 * inside it, which it shields and returns (NULL, a failure recorded, if
 * it cannot; scopes left open close as the thread ends). */
static weft_scope *open_shielded(weft_scope **a, bool cancelled)
{
    *a = weft_scope_open();
    WT_CHECK(*a != NULL);
    if (!*a)
        return NULL;
    if (cancelled)
        weft_scope_cancel(*a);
    weft_scope *s = weft_scope_open();
    WT_CHECK(s != NULL);
    if (s)
        WT_CHECK_EQ(weft_scope_shield(s), 0);
    return s;
}

/* Sleeps NAP and checks the sleep was whole. */
static void nap_whole(void)
{
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_sleep(NAP), 0);
    WT_CHECK(weft_now() - t0 >= NAP);
}

/* ----------------------------------------------- a cancel before the shield */

static int root_inherited_at_open(void *arg)
{
    weft_scope *a = weft_scope_open();
    WT_REQUIRE(a != NULL);
    weft_scope_cancel(a);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    WT_CHECK(weft_cancelled()); /* opened in a cancelled scope */
    WT_CHECK_EQ(weft_scope_shield(s), 0);
    WT_CHECK(!weft_cancelled());
    nap_whole();
    WT_CHECK_EQ(weft_scope_close(s), 0);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(shield_lifts_a_cancel_the_scope_inherited_at_open,
         root_inherited_at_open, NULL, .procs = 2, .timeout = 10)

static int root_cancel_after_open(void *arg)
{
    weft_scope *a = weft_scope_open();
    WT_REQUIRE(a != NULL);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    weft_scope_cancel(a);
    WT_CHECK(weft_cancelled());
    WT_CHECK_EQ(weft_scope_shield(s), 0);
    WT_CHECK(!weft_cancelled());
    nap_whole();
    WT_CHECK_EQ(weft_scope_close(s), 0);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(shield_lifts_a_cancel_that_came_between_open_and_shield,
         root_cancel_after_open, NULL, .procs = 2, .timeout = 10)

/* A thread spawned into s before the shield had its sleep ended by the
 * enclosing cancel; once s is shielded its next sleep is whole, and the
 * ECANCELED it returns is not a failure of s. */
struct early {
    int first, second;
    atomic_int interrupted, shielded;
};

static int early_body(void *arg)
{
    struct early *e = arg;
    e->first = weft_sleep(LONG);
    atomic_store(&e->interrupted, 1);
    wt_yield_until(&e->shielded, 100000000L);
    int64_t t0 = weft_now();
    e->second = weft_sleep(NAP);
    WT_CHECK(weft_now() - t0 >= NAP);
    return e->first;
}

static int root_child_before_shield(void *arg)
{
    struct early e = {.first = -1, .second = -1};
    weft_scope *a = weft_scope_open();
    WT_REQUIRE(a != NULL);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    WT_REQUIRE(wt_go(early_body, &e) != NULL);
    weft_sleep(WT_MS(5));
    weft_scope_cancel(a);
    WT_CHECK(wt_yield_until(&e.interrupted, 100000000L));
    WT_CHECK_EQ(weft_scope_shield(s), 0);
    atomic_store(&e.shielded, 1);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    WT_CHECK_EQ(e.first, ECANCELED);
    WT_CHECK_EQ(e.second, 0);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(shield_lifts_the_cancel_of_threads_spawned_before_it,
         root_child_before_shield, NULL, .procs = 2, .timeout = 10)

/* ------------------------------------------ a cancel while threads block */

static int root_cancel_while_blocked(void *arg)
{
    weft_sem sem = WEFT_SEM_INIT(0);
    atomic_int ready = 0;
    struct taker t[2] = {{&sem, &ready, -1}, {&sem, &ready, -1}};
    weft_scope *a, *s = open_shielded(&a, false);
    WT_REQUIRE(s != NULL);
    atomic_int both = 0;
    struct later l = {.s = a, .ready = &both, .sem = &sem, .n = 2, .fd = -1};
    WT_REQUIRE_EQ(later_start(&l), 0);
    for (int i = 0; i < 2; i++)
        WT_CHECK(wt_go(taker_body, &t[i]) != NULL);
    while (atomic_load(&ready) < 2)
        weft_yield();
    atomic_store(&both, 1);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    for (int i = 0; i < 2; i++)
        WT_CHECK_EQ(t[i].rc, 0);
    later_join(&l);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(enclosing_cancel_does_not_wake_shielded_threads,
         root_cancel_while_blocked, NULL, .procs = 2, .timeout = 10)

static int root_owner_blocked(void *arg)
{
    weft_sem sem = WEFT_SEM_INIT(0);
    atomic_int ready = 0;
    weft_scope *a, *s = open_shielded(&a, false);
    WT_REQUIRE(s != NULL);
    struct later l = {.s = a, .ready = &ready, .sem = &sem, .n = 1, .fd = -1};
    WT_REQUIRE_EQ(later_start(&l), 0);
    atomic_store(&ready, 1);
    WT_CHECK_EQ(weft_sem_acquire(&sem), 0);
    later_join(&l);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(enclosing_cancel_does_not_wake_the_shielded_owner,
         root_owner_blocked, NULL, .procs = 2, .timeout = 10)

static int root_spawn_after_cancel(void *arg)
{
    struct napper n = {.ns = NAP};
    weft_scope *a, *s = open_shielded(&a, true);
    WT_REQUIRE(s != NULL);
    WT_REQUIRE(wt_go(napper_body, &n) != NULL);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    WT_CHECK_EQ(n.rc, 0);
    WT_CHECK(n.slept >= NAP);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(thread_spawned_in_a_shield_of_a_cancelled_scope_is_not_cancelled,
         root_spawn_after_cancel, NULL, .procs = 2, .timeout = 10)

/* A thread that weft_cancel ends does its cleanup in a shielded scope. */
struct cleanup {
    int work, cleanup, close, after;
};

static int cleaning_body(void *arg)
{
    struct cleanup *c = arg;
    c->work = weft_sleep(LONG);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    WT_CHECK_EQ(weft_scope_shield(s), 0);
    int64_t t0 = weft_now();
    c->cleanup = weft_sleep(NAP);
    WT_CHECK(weft_now() - t0 >= NAP);
    c->close = weft_scope_close(s);
    c->after = weft_sleep(LONG);
    return c->after;
}

static int root_weft_cancel(void *arg)
{
    struct cleanup c = {-1, -1, -1, -1};
    weft_thread *t = wt_go(cleaning_body, &c);
    WT_REQUIRE(t != NULL);
    weft_sleep(WT_MS(5));
    WT_CHECK_EQ(weft_cancel(t), 0);
    int result = -1;
    WT_CHECK_EQ(weft_join(t, &result), 0);
    WT_CHECK_EQ(result, ECANCELED);
    WT_CHECK_EQ(c.work, ECANCELED);
    WT_CHECK_EQ(c.cleanup, 0);
    WT_CHECK_EQ(c.close, 0);
    WT_CHECK_EQ(c.after, ECANCELED);
    return 0;
}

RUN_TEST(cancelled_thread_waits_for_its_shielded_cleanup, root_weft_cancel,
         NULL, .procs = 2, .timeout = 10)

/* ------------------------------------------- nested scopes, deadlines */

static int root_nested(void *arg)
{
    struct napper n = {.ns = NAP};
    weft_scope *a, *s = open_shielded(&a, false);
    WT_REQUIRE(s != NULL);
    weft_scope *inner = weft_scope_open();
    WT_REQUIRE(inner != NULL);
    WT_REQUIRE(wt_go(napper_body, &n) != NULL);
    weft_scope_cancel(a);
    WT_CHECK(!weft_cancelled());
    nap_whole();
    WT_CHECK_EQ(weft_scope_close(inner), 0);
    WT_CHECK_EQ(n.rc, 0);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(scopes_nested_in_a_shield_are_shielded, root_nested, NULL,
         .procs = 2, .timeout = 10)

static int root_outer_deadline(void *arg)
{
    weft_scope *a, *s = open_shielded(&a, false);
    WT_REQUIRE(s != NULL);
    int64_t due = weft_now() + WT_MS(10);
    weft_scope_deadline(a, due);
    nap_whole();
    WT_CHECK(weft_now() > due);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    WT_CHECK_EQ(weft_sleep(LONG), ETIMEDOUT);
    WT_CHECK_EQ(weft_scope_close(a), ETIMEDOUT);
    return 0;
}

RUN_TEST(enclosing_deadline_does_not_reach_a_shield, root_outer_deadline,
         NULL, .procs = 2, .timeout = 10)

/* --------------------------------------------- what is s's own still is */

static int root_own_cancel(void *arg)
{
    struct napper n = {.ns = LONG};
    weft_scope *a, *s = open_shielded(&a, true);
    WT_REQUIRE(s != NULL);
    weft_scope *inner = weft_scope_open();
    WT_REQUIRE(inner != NULL);
    WT_REQUIRE(wt_go(napper_body, &n) != NULL);
    WT_CHECK_EQ(weft_sleep(WT_MS(5)), 0);
    weft_scope_cancel(s);
    WT_CHECK_EQ(weft_sleep(LONG), ECANCELED);
    WT_CHECK_EQ(weft_scope_close(inner), ECANCELED);
    WT_CHECK_EQ(n.rc, ECANCELED);
    WT_CHECK_EQ(weft_scope_close(s), ECANCELED);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(shielded_scope_own_cancel_reaches_its_nested_scopes_and_threads,
         root_own_cancel, NULL, .procs = 2, .timeout = 10)

static int root_own_deadline(void *arg)
{
    weft_scope *a, *s = open_shielded(&a, true);
    WT_REQUIRE(s != NULL);
    int64_t t0 = weft_now();
    weft_scope_deadline(s, t0 + WT_MS(20));
    WT_CHECK_EQ(weft_sleep(LONG), ETIMEDOUT);
    int64_t took = weft_now() - t0;
    WT_CHECK(took >= WT_MS(20) && took < WT_MS(5000));
    WT_CHECK_EQ(weft_scope_close(s), ETIMEDOUT);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(shielded_scope_own_deadline_still_fires, root_own_deadline, NULL,
         .procs = 2, .timeout = 10)

static int fail_eio(void *arg)
{
    weft_sleep(WT_MS(10));
    return EIO;
}

static int root_failing_child(void *arg)
{
    struct napper n = {.ns = LONG};
    weft_scope *a, *s = open_shielded(&a, true);
    WT_REQUIRE(s != NULL);
    WT_REQUIRE(wt_go(napper_body, &n) != NULL);
    WT_REQUIRE(wt_go(fail_eio, NULL) != NULL);
    WT_CHECK_EQ(weft_scope_close(s), EIO);
    WT_CHECK_EQ(n.rc, ECANCELED);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(failing_thread_of_a_shield_still_cancels_it, root_failing_child,
         NULL, .procs = 2, .timeout = 10)

/* ------------------------------------------------ closing the shield */

static int root_close_restores(void *arg)
{
    weft_scope *a, *s = open_shielded(&a, false);
    WT_REQUIRE(s != NULL);
    weft_scope_cancel(a);
    WT_CHECK_EQ(weft_sleep(WT_MS(1)), 0);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    WT_CHECK(weft_cancelled());
    WT_CHECK_EQ(weft_sleep(LONG), ECANCELED);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    return 0;
}

RUN_TEST(closing_the_shield_brings_the_enclosing_cancel_back,
         root_close_restores, NULL, .procs = 2, .timeout = 10)

/* ------------------------------------------------------------ I/O */

/* A shielded read on a socket whose data comes after the enclosing scope
 * was cancelled: it gets the data. plain: libc's read, through weft's
 * hook, instead of weft_read. */
static int root_read(void *arg)
{
    bool plain = (bool)(intptr_t)arg;
    int sv[2];
    WT_REQUIRE_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    atomic_int reading = 0;
    weft_scope *a, *s = open_shielded(&a, false);
    WT_REQUIRE(s != NULL);
    struct later l = {.s = a, .ready = &reading, .fd = sv[1]};
    WT_REQUIRE_EQ(later_start(&l), 0);
    atomic_store(&reading, 1);
    char buf[8] = {0};
    ssize_t n = plain ? read(sv[0], buf, sizeof buf)
                      : weft_read(sv[0], buf, sizeof buf);
    WT_CHECK_EQ(n, 4);
    WT_CHECK(!memcmp(buf, "data", 4));
    later_join(&l);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    WT_CHECK_EQ(weft_read(sv[0], buf, sizeof buf), -1);
    WT_CHECK_EQ(wt_errno(), ECANCELED);
    WT_CHECK_EQ(weft_scope_close(a), ECANCELED);
    wt_close_both(sv);
    return 0;
}

RUN_TEST(shielded_weft_read_waits_through_an_enclosing_cancel, root_read,
         false, .procs = 2, .timeout = 10)
RUN_TEST(shielded_libc_read_waits_through_an_enclosing_cancel, root_read,
         true, .procs = 2, .timeout = 10)

/* ------------------------------------------------------------ dump */

static int root_dump(void *arg)
{
    static char text[65536];
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    WT_CHECK_EQ(weft_scope_shield(s), 0);
    weft_scope_cancel(s);
    WT_REQUIRE(wt_dump_text(text, sizeof text) != NULL);
    WT_CHECK_EQ(weft_scope_close(s), ECANCELED);
    WT_CHECK_MSG(strstr(text, "[shielded] [cancelled]"), "dump: %.200s",
                 text);
    return 0;
}

RUN_TEST(dump_marks_a_shielded_scope, root_dump, NULL, .procs = 1,
         .timeout = 10)

/* ---------------------------------------------------------- misuse */

/* Another thread tries to shield the caller's scope. */
struct foreign_shield {
    weft_scope *s;
    int rc;
};

static int shield_parent_scope(void *arg)
{
    struct foreign_shield *f = arg;
    f->rc = weft_scope_shield(f->s);
    return 0;
}

static int root_misuse(void *arg)
{
    WT_CHECK_EQ(weft_scope_shield(NULL), EINVAL);
    weft_scope *s = weft_scope_open();
    WT_REQUIRE(s != NULL);
    weft_scope *inner = weft_scope_open();
    WT_REQUIRE(inner != NULL);
    WT_CHECK_EQ(weft_scope_shield(s), EINVAL); /* not the innermost */
    struct foreign_shield f = {inner, -1};
    weft_thread *t = wt_go(shield_parent_scope, &f);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(f.rc, EINVAL); /* another thread's scope */
    WT_CHECK_EQ(weft_scope_shield(inner), 0);
    WT_CHECK_EQ(weft_scope_shield(inner), 0); /* again: no change */
    WT_CHECK_EQ(weft_scope_close(inner), 0);
    WT_CHECK_EQ(weft_scope_close(s), 0);
    return 0;
}

RUN_TEST(shield_of_null_or_not_the_innermost_scope_is_einval, root_misuse,
         NULL, .procs = 2, .timeout = 10)

Test(shield, shield_on_an_os_thread_is_eperm, .timeout = 10)
{
    cr_assert_eq(weft_scope_shield(NULL), EPERM);
}
