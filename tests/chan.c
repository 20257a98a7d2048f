/* SPDX-License-Identifier: MIT */
/*
 * chan.c — weft_chan: creation limits, buffered FIFO order and capacity,
 * rendezvous, close (sends fail, receives drain then fail, waiters woken),
 * free while in use, cancellation and scope deadlines, plain OS threads on
 * either side, element sizes, back pressure.
 */
#include "wt.h"

#include <unistd.h>

#if WT_SANITIZED
#define SLACK_MS 200
#else
#define SLACK_MS 50
#endif

/* How long a spawned thread is given to block after it said it was about
 * to (the window is a few instructions; this is generous). */
#define SETTLE_MS 20

/* One blocking operation run by a thread of its own. */
struct op {
    weft_chan *c;
    int val;            /* send: the value; recv: where it lands */
    int rc;             /* -1 until the call returned */
    atomic_int started; /* set just before the call */
    atomic_int done;    /* set just after the call */
    int64_t t_done;
};

static void op_init(struct op *o, weft_chan *c, int val)
{
    o->c = c;
    o->val = val;
    o->rc = -1;
    atomic_store(&o->started, 0);
    atomic_store(&o->done, 0);
    o->t_done = 0;
}

static int op_send(void *arg)
{
    struct op *o = arg;
    atomic_store(&o->started, 1);
    o->rc = weft_chan_send(o->c, &o->val);
    o->t_done = weft_now();
    atomic_store(&o->done, 1);
    return 0;
}

static int op_recv(void *arg)
{
    struct op *o = arg;
    atomic_store(&o->started, 1);
    o->rc = weft_chan_recv(o->c, &o->val);
    o->t_done = weft_now();
    atomic_store(&o->done, 1);
    return 0;
}

/* As op_send / op_recv, but return the call's result (for cancellation:
 * a thread returning ECANCELED because it was cancelled is no failure). */
static int op_send_rc(void *arg)
{
    op_send(arg);
    return ((struct op *)arg)->rc;
}

static int op_recv_rc(void *arg)
{
    op_recv(arg);
    return ((struct op *)arg)->rc;
}

/* Waits until o's thread is about to block, then lets it block. */
static int op_settle(struct op *o)
{
    if (!wt_yield_until(&o->started, 100000000L))
        return 0;
    return weft_sleep(WT_MS(SETTLE_MS)) == 0;
}

/* Starts fn (op_send, op_recv, ...) on o = (c, val) in a thread of its
 * own and waits until it blocks. NULL if the spawn failed. */
static weft_thread *op_start(struct op *o, weft_chan *c, int val, weft_fn fn)
{
    op_init(o, c, val);
    weft_thread *t = wt_go(fn, o);
    if (t)
        WT_CHECK(op_settle(o));
    return t;
}

/* ------------------------------------------------------------ creation */

Test(chan, make_rejects_bad_sizes, .timeout = 10)
{
    errno = 0;
    cr_assert_null(weft_chan_make(0, 4));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(weft_chan_make(65537, 1));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(weft_chan_make(SIZE_MAX, 1));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(weft_chan_make(4, ((size_t)1 << 30) + 1));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(weft_chan_make(4, SIZE_MAX));
    cr_assert_eq(errno, EINVAL);

    /* the limits themselves are accepted */
    weft_chan *c = weft_chan_make(65536, 1);
    cr_assert_not_null(c);
    cr_assert_eq(weft_chan_cap(c), 1);
    cr_assert_eq(weft_chan_len(c), 0);
    cr_assert_eq(weft_chan_free(c), 0);
    c = weft_chan_make(1, 0);
    cr_assert_not_null(c);
    cr_assert_eq(weft_chan_cap(c), 0);
    cr_assert_eq(weft_chan_free(c), 0);
}

Test(chan, null_arguments_are_einval, .timeout = 10)
{
    int v = 1;
    weft_chan *c = weft_chan_make(sizeof(int), 2);
    cr_assert_not_null(c);
    cr_assert_eq(weft_chan_free(NULL), EINVAL);
    cr_assert_eq(weft_chan_close(NULL), EINVAL);
    cr_assert_eq(weft_chan_send(NULL, &v), EINVAL);
    cr_assert_eq(weft_chan_recv(NULL, &v), EINVAL);
    cr_assert_eq(weft_chan_try_send(NULL, &v), EINVAL);
    cr_assert_eq(weft_chan_try_recv(NULL, &v), EINVAL);
    cr_assert_eq(weft_chan_send(c, NULL), EINVAL);
    cr_assert_eq(weft_chan_try_send(c, NULL), EINVAL);
    cr_assert_eq(weft_chan_len(c), 0, "a NULL element was stored");
    cr_assert_eq(weft_chan_try_send(c, &v), 0);
    cr_assert_eq(weft_chan_recv(c, NULL), EINVAL);
    cr_assert_eq(weft_chan_try_recv(c, NULL), EINVAL);
    cr_assert_eq(weft_chan_len(c), 1, "a receive into NULL took the value");
    cr_assert_eq(weft_chan_free(c), 0);
}

/* A buffered channel needs no runtime: a plain OS thread can use it. */
Test(chan, buffered_channel_works_on_os_thread_without_runtime,
     .timeout = 10)
{
    weft_chan *c = weft_chan_make(sizeof(int), 3);
    cr_assert_not_null(c);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_chan_send(c, &i), 0);
    int v = -1;
    cr_assert_eq(weft_chan_try_send(c, &v), EAGAIN);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(weft_chan_recv(c, &v), 0);
        cr_assert_eq(v, i);
    }
    cr_assert_eq(weft_chan_try_recv(c, &v), EAGAIN);
    cr_assert_eq(weft_chan_close(c), 0);
    cr_assert_eq(weft_chan_recv(c, &v), EPIPE);
    cr_assert_eq(weft_chan_free(c), 0);
}

/* ------------------------------------------------------- buffered order */

static int root_fifo(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 8);
    WT_REQUIRE(c != NULL);
    WT_CHECK_EQ(weft_chan_cap(c), 8);
    for (int i = 0; i < 8; i++) {
        WT_CHECK_EQ(weft_chan_send(c, &i), 0);
        WT_CHECK_EQ(weft_chan_len(c), i + 1);
    }
    for (int i = 0; i < 8; i++) {
        int v = -1;
        WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
        WT_CHECK_EQ(v, i);
    }
    WT_CHECK_EQ(weft_chan_len(c), 0);
    /* Wrap around the ring many times at varying fill levels. */
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 3000; round++) {
        int fill = (round * 7) % 9; /* 0..8 */
        while ((int)weft_chan_len(c) < fill) {
            WT_REQUIRE_EQ(weft_chan_send(c, &next_in), 0);
            next_in++;
        }
        while ((int)weft_chan_len(c) > fill / 2) {
            int v = -1;
            WT_REQUIRE_EQ(weft_chan_recv(c, &v), 0);
            WT_REQUIRE_EQ(v, next_out);
            next_out++;
        }
    }
    WT_CHECK_EQ(weft_chan_len(c), next_in - next_out);
    WT_CHECK_EQ(weft_chan_free(c), 0); /* a channel may be freed non-empty */
    return 0;
}

Test(chan, buffered_channel_is_fifo, .timeout = 10)
{
    WT_RUN(root_fifo, NULL, .procs = 1);
}

static int root_capacity(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 4);
    WT_REQUIRE(c != NULL);
    int v;
    WT_CHECK_EQ(weft_chan_try_recv(c, &v), EAGAIN);
    for (int i = 0; i < 4; i++)
        WT_CHECK_EQ(weft_chan_try_send(c, &i), 0);
    v = 99;
    WT_CHECK_EQ(weft_chan_try_send(c, &v), EAGAIN);
    WT_CHECK_EQ(weft_chan_try_send(c, &v), EAGAIN);
    WT_CHECK_EQ(weft_chan_len(c), 4);
    for (int i = 0; i < 4; i++) {
        v = -1;
        WT_CHECK_EQ(weft_chan_try_recv(c, &v), 0);
        WT_CHECK_EQ(v, i); /* the refused 99 was not stored */
    }
    v = -7;
    WT_CHECK_EQ(weft_chan_try_recv(c, &v), EAGAIN);
    WT_CHECK_EQ(v, -7); /* a failed receive writes nothing */
    WT_CHECK_EQ(weft_chan_len(c), 0);

    /* A full channel makes a blocking sender wait. */
    for (int i = 0; i < 4; i++)
        WT_CHECK_EQ(weft_chan_send(c, &i), 0);
    static struct op o;
    weft_thread *t = op_start(&o, c, 4, op_send);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(atomic_load(&o.done), 0);
    WT_CHECK_EQ(weft_chan_len(c), 4);
    for (int i = 0; i <= 4; i++) {
        v = -1;
        WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
        WT_CHECK_EQ(v, i);
    }
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(o.rc, 0);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, capacity_is_respected, .timeout = 10)
{
    WT_RUN(root_capacity, NULL, .procs = 2);
}

/* ------------------------------------------------------------ rendezvous */

static int root_rendezvous_send(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(c != NULL);
    int v = -1;
    WT_CHECK_EQ(weft_chan_try_send(c, &v), EAGAIN); /* nobody receives */
    WT_CHECK_EQ(weft_chan_try_recv(c, &v), EAGAIN); /* nobody sends */
    static struct op o;
    weft_thread *t = op_start(&o, c, 1234, op_send);
    WT_REQUIRE(t != NULL);
    /* no receiver yet: the send has not completed and nothing is buffered */
    WT_CHECK_EQ(atomic_load(&o.done), 0);
    WT_CHECK_EQ(weft_chan_len(c), 0);
    WT_CHECK_EQ(weft_sleep(WT_MS(SETTLE_MS)), 0);
    WT_CHECK_EQ(atomic_load(&o.done), 0);
    int64_t t_recv = weft_now();
    WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
    WT_CHECK_EQ(v, 1234);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(o.rc, 0);
    WT_CHECK(o.t_done >= t_recv);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, rendezvous_send_waits_for_receiver, .timeout = 10)
{
    WT_RUN(root_rendezvous_send, NULL, .procs = 2);
}

Test(chan, rendezvous_send_waits_for_receiver_one_proc, .timeout = 10)
{
    WT_RUN(root_rendezvous_send, NULL, .procs = 1);
}

static int root_rendezvous_recv(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(c != NULL);
    static struct op o;
    weft_thread *t = op_start(&o, c, -1, op_recv);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(atomic_load(&o.done), 0);
    int v = 77;
    WT_CHECK_EQ(weft_chan_send(c, &v), 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(o.rc, 0);
    WT_CHECK_EQ(o.val, 77);
    WT_CHECK_EQ(weft_chan_len(c), 0);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, rendezvous_recv_waits_for_sender, .timeout = 10)
{
    WT_RUN(root_rendezvous_recv, NULL, .procs = 2);
}

/* try_send / try_recv complete a rendezvous with a thread already waiting. */
static int root_rendezvous_try(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(c != NULL);
    static struct op r, s;
    weft_thread *t = op_start(&r, c, -1, op_recv);
    WT_REQUIRE(t != NULL);
    int v = 5;
    int rc = WT_POLL(weft_chan_try_send(c, &v), EAGAIN);
    WT_CHECK_EQ(rc, 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(r.val, 5);

    t = op_start(&s, c, 6, op_send);
    WT_REQUIRE(t != NULL);
    v = -1;
    rc = WT_POLL(weft_chan_try_recv(c, &v), EAGAIN);
    WT_CHECK_EQ(rc, 0);
    WT_CHECK_EQ(v, 6);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(s.rc, 0);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, try_ops_complete_rendezvous_with_waiting_thread, .timeout = 20)
{
    WT_RUN(root_rendezvous_try, NULL, .procs = 2);
}

/* ----------------------------------------------------------------- close */

static int root_send_closed(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 4);
    WT_REQUIRE(c != NULL);
    int v = 1;
    WT_CHECK_EQ(weft_chan_send(c, &v), 0);
    WT_CHECK_EQ(weft_chan_close(c), 0);
    v = 2;
    WT_CHECK_EQ(weft_chan_send(c, &v), EPIPE);
    WT_CHECK_EQ(weft_chan_try_send(c, &v), EPIPE);
    WT_CHECK_EQ(weft_chan_len(c), 1);
    v = -1;
    WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
    WT_CHECK_EQ(v, 1);
    WT_CHECK_EQ(weft_chan_recv(c, &v), EPIPE); /* 2 was not stored */
    WT_CHECK_EQ(weft_chan_free(c), 0);

    c = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(c != NULL);
    WT_CHECK_EQ(weft_chan_close(c), 0);
    WT_CHECK_EQ(weft_chan_send(c, &v), EPIPE);
    WT_CHECK_EQ(weft_chan_try_send(c, &v), EPIPE);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, send_on_closed_channel_is_epipe_and_stores_nothing, .timeout = 10)
{
    WT_RUN(root_send_closed, NULL, .procs = 1);
}

static int root_recv_closed(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 4);
    WT_REQUIRE(c != NULL);
    for (int i = 10; i < 13; i++)
        WT_CHECK_EQ(weft_chan_send(c, &i), 0);
    WT_CHECK_EQ(weft_chan_close(c), 0);
    WT_CHECK_EQ(weft_chan_len(c), 3);
    int v = -1;
    WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
    WT_CHECK_EQ(v, 10);
    WT_CHECK_EQ(weft_chan_try_recv(c, &v), 0);
    WT_CHECK_EQ(v, 11);
    WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
    WT_CHECK_EQ(v, 12);
    v = -1;
    WT_CHECK_EQ(weft_chan_recv(c, &v), EPIPE);
    WT_CHECK_EQ(weft_chan_try_recv(c, &v), EPIPE);
    WT_CHECK_EQ(weft_chan_recv(c, &v), EPIPE); /* and stays so */
    WT_CHECK_EQ(v, -1);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, recv_on_closed_channel_drains_buffer_then_epipe, .timeout = 10)
{
    WT_RUN(root_recv_closed, NULL, .procs = 1);
}

#define NWAIT 4

static int root_close_wakes(void *arg)
{
    /* receivers blocked on an empty rendezvous channel */
    weft_chan *r = weft_chan_make(sizeof(int), 0);
    /* senders blocked on a full buffered channel */
    weft_chan *s = weft_chan_make(sizeof(int), 1);
    WT_REQUIRE(r != NULL && s != NULL);
    int v = 100;
    WT_CHECK_EQ(weft_chan_send(s, &v), 0);
    static struct op ro[NWAIT], so[NWAIT];
    weft_thread *rt[NWAIT], *st[NWAIT];
    for (int i = 0; i < NWAIT; i++) {
        op_init(&ro[i], r, -1);
        op_init(&so[i], s, 200 + i);
        WT_REQUIRE((rt[i] = wt_go(op_recv, &ro[i])) != NULL);
        WT_REQUIRE((st[i] = wt_go(op_send, &so[i])) != NULL);
    }
    for (int i = 0; i < NWAIT; i++) {
        WT_CHECK(op_settle(&ro[i]));
        WT_CHECK(op_settle(&so[i]));
    }
    for (int i = 0; i < NWAIT; i++) {
        WT_CHECK_EQ(atomic_load(&ro[i].done), 0);
        WT_CHECK_EQ(atomic_load(&so[i].done), 0);
    }
    int64_t t0 = weft_now();
    WT_CHECK_EQ(weft_chan_close(r), 0);
    WT_CHECK_EQ(weft_chan_close(s), 0);
    for (int i = 0; i < NWAIT; i++) {
        WT_CHECK_EQ(weft_join(rt[i], NULL), 0);
        WT_CHECK_EQ(weft_join(st[i], NULL), 0);
        WT_CHECK_EQ(ro[i].rc, EPIPE);
        WT_CHECK_EQ(ro[i].val, -1);
        WT_CHECK_EQ(so[i].rc, EPIPE);
        WT_CHECK_MSG(ro[i].t_done - t0 < WT_MS(SLACK_MS) &&
                         so[i].t_done - t0 < WT_MS(SLACK_MS),
                     "woken %lld / %lld us after close",
                     (long long)(ro[i].t_done - t0) / 1000,
                     (long long)(so[i].t_done - t0) / 1000);
    }
    /* none of the woken senders stored anything; the buffer is intact */
    WT_CHECK_EQ(weft_chan_len(s), 1);
    v = -1;
    WT_CHECK_EQ(weft_chan_recv(s, &v), 0);
    WT_CHECK_EQ(v, 100);
    WT_CHECK_EQ(weft_chan_recv(s, &v), EPIPE);
    WT_CHECK_EQ(weft_chan_free(r), 0);
    WT_CHECK_EQ(weft_chan_free(s), 0);
    return 0;
}

Test(chan, close_wakes_every_blocked_sender_and_receiver, .timeout = 10)
{
    WT_RUN(root_close_wakes, NULL, .procs = 2);
}

Test(chan, close_wakes_every_blocked_sender_and_receiver_one_proc,
     .timeout = 10)
{
    WT_RUN(root_close_wakes, NULL, .procs = 1);
}

static int root_close_twice(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 2);
    WT_REQUIRE(c != NULL);
    WT_CHECK_EQ(weft_chan_close(c), 0);
    WT_CHECK_EQ(weft_chan_close(c), EPIPE);
    WT_CHECK_EQ(weft_chan_close(c), EPIPE);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, close_twice_is_epipe, .timeout = 10)
{
    WT_RUN(root_close_twice, NULL, .procs = 1);
}

/* ------------------------------------------------------------------ free */

static int root_free_busy(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(c != NULL);
    static struct op o;

    /* a blocked receiver */
    weft_thread *t = op_start(&o, c, -1, op_recv);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_chan_free(c), EBUSY);
    WT_CHECK_EQ(weft_chan_free(c), EBUSY);
    int v = 31;
    WT_CHECK_EQ(weft_chan_send(c, &v), 0); /* still works */
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(o.rc, 0);
    WT_CHECK_EQ(o.val, 31);

    /* a blocked sender */
    t = op_start(&o, c, 32, op_send);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_chan_free(c), EBUSY);
    v = -1;
    WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
    WT_CHECK_EQ(v, 32);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(o.rc, 0);

    /* a blocked receiver, then close: free still refused until it left */
    t = op_start(&o, c, -1, op_recv);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_chan_free(c), EBUSY);
    WT_CHECK_EQ(weft_chan_close(c), 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(o.rc, EPIPE);

    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, free_with_blocked_waiter_is_ebusy_and_channel_survives,
     .timeout = 10)
{
    WT_RUN(root_free_busy, NULL, .procs = 2);
}

struct sel_waiter {
    weft_chan *a, *b;
    int va, vb;
    int idx;
    atomic_int started;
};

static int select_two(void *arg)
{
    struct sel_waiter *w = arg;
    weft_case cs[2] = {WEFT_RECV(w->a, &w->va), WEFT_RECV(w->b, &w->vb)};
    atomic_store(&w->started, 1);
    w->idx = weft_select(cs, 2, -1);
    return 0;
}

static int root_free_busy_select(void *arg)
{
    static struct sel_waiter w;
    w.a = weft_chan_make(sizeof(int), 1);
    w.b = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(w.a != NULL && w.b != NULL);
    w.va = w.vb = -1;
    w.idx = -2;
    weft_thread *t = wt_go(select_two, &w);
    WT_REQUIRE(t != NULL);
    WT_CHECK(wt_yield_until(&w.started, 100000000L));
    WT_CHECK_EQ(weft_sleep(WT_MS(SETTLE_MS)), 0);
    WT_CHECK_EQ(weft_chan_free(w.a), EBUSY);
    WT_CHECK_EQ(weft_chan_free(w.b), EBUSY);
    int v = 9;
    WT_CHECK_EQ(weft_chan_send(w.b, &v), 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(w.idx, 1);
    WT_CHECK_EQ(w.vb, 9);
    WT_CHECK_EQ(w.va, -1);
    /* the select left neither channel */
    WT_CHECK_EQ(weft_chan_free(w.a), 0);
    WT_CHECK_EQ(weft_chan_free(w.b), 0);
    return 0;
}

Test(chan, free_with_thread_blocked_in_select_is_ebusy, .timeout = 10)
{
    WT_RUN(root_free_busy_select, NULL, .procs = 2);
}

/* ---------------------------------------------------------- cancellation */

static int root_cancel_recv(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 2);
    WT_REQUIRE(c != NULL);
    static struct op o;
    weft_thread *t = op_start(&o, c, -1, op_recv_rc);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(atomic_load(&o.done), 0);
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK(wt_own_since(t0) < WT_MS(SLACK_MS));
    WT_CHECK_EQ(o.rc, ECANCELED);
    WT_CHECK_EQ(o.val, -1);
    WT_CHECK_EQ(r, ECANCELED);
    /* the cancelled receiver left: a value sent now stays buffered */
    int v = 3;
    WT_CHECK_EQ(weft_chan_send(c, &v), 0);
    WT_CHECK_EQ(weft_chan_len(c), 1);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, recv_is_cancellation_point, .timeout = 10)
{
    WT_RUN(root_cancel_recv, NULL, .procs = 2);
}

static int root_cancel_send(void *arg)
{
    /* a sender blocked on a full buffered channel */
    weft_chan *c = weft_chan_make(sizeof(int), 1);
    WT_REQUIRE(c != NULL);
    int v = 1;
    WT_CHECK_EQ(weft_chan_send(c, &v), 0);
    static struct op o;
    weft_thread *t = op_start(&o, c, 2, op_send_rc);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(o.rc, ECANCELED);
    WT_CHECK_EQ(r, ECANCELED);
    WT_CHECK_EQ(weft_chan_len(c), 1);
    v = -1;
    WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
    WT_CHECK_EQ(v, 1);
    WT_CHECK_EQ(weft_chan_try_recv(c, &v), EAGAIN); /* 2 was not stored */
    WT_CHECK_EQ(weft_chan_free(c), 0);

    /* a sender blocked on a rendezvous channel */
    c = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(c != NULL);
    t = op_start(&o, c, 3, op_send_rc);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_cancel(t), 0);
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(o.rc, ECANCELED);
    v = -1;
    WT_CHECK_EQ(weft_chan_try_recv(c, &v), EAGAIN); /* no sender left */
    WT_CHECK_EQ(v, -1);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, cancelled_sender_stores_nothing, .timeout = 10)
{
    WT_RUN(root_cancel_send, NULL, .procs = 2);
}

static int root_cancel_scope(void *arg)
{
    /* receivers wait on an empty channel, senders on a full one */
    weft_chan *e = weft_chan_make(sizeof(int), 0);
    weft_chan *f = weft_chan_make(sizeof(int), 1);
    weft_chan *own = weft_chan_make(sizeof(int), 0);
    WT_REQUIRE(e != NULL && f != NULL && own != NULL);
    int v = 50;
    WT_CHECK_EQ(weft_chan_send(f, &v), 0);
    static struct op o[4];
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < 4; i++) {
        op_init(&o[i], i < 2 ? e : f, i < 2 ? -1 : 60 + i);
        WT_REQUIRE(wt_go(i < 2 ? op_recv : op_send, &o[i]) != NULL);
    }
    for (int i = 0; i < 4; i++)
        WT_CHECK(wt_yield_until(&o[i].started, 100000000L));
    WT_CHECK_EQ(weft_sleep(WT_MS(SETTLE_MS)), 0);
    weft_scope_cancel(sc);
    WT_CHECK_EQ(weft_chan_recv(own, &v), ECANCELED); /* the owner, too */
    WT_CHECK_EQ(weft_chan_send(own, &v), ECANCELED);
    WT_CHECK_EQ(weft_scope_close(sc), ECANCELED);
    for (int i = 0; i < 4; i++)
        WT_CHECK_EQ(o[i].rc, ECANCELED);
    WT_CHECK_EQ(o[0].val, -1);
    WT_CHECK_EQ(o[1].val, -1);
    v = -1;
    WT_CHECK_EQ(weft_chan_try_recv(f, &v), 0);
    WT_CHECK_EQ(v, 50);
    WT_CHECK_EQ(weft_chan_try_recv(f, &v), EAGAIN);
    WT_CHECK_EQ(weft_chan_try_send(e, &v), EAGAIN); /* no receiver left */
    WT_CHECK_EQ(weft_chan_free(e), 0);
    WT_CHECK_EQ(weft_chan_free(f), 0);
    WT_CHECK_EQ(weft_chan_free(own), 0);
    return 0;
}

Test(chan, scope_cancel_fails_channel_calls_in_scope, .timeout = 10)
{
    WT_RUN(root_cancel_scope, NULL, .procs = 2);
}

/* ------------------------------------------------------------ deadlines */

static int root_deadline_recv(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 1);
    WT_REQUIRE(c != NULL);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    int64_t t0 = wt_mark_now();
    weft_scope_deadline(sc, t0 + WT_MS(20));
    int v = -1;
    WT_CHECK_EQ(weft_chan_recv(c, &v), ETIMEDOUT);
    int64_t dt = weft_now() - t0;
    WT_CHECK_MSG(dt >= WT_MS(20) && wt_own_since(t0) < WT_MS(20 + SLACK_MS),
                 "recv timed out after %lld us", (long long)dt / 1000);
    WT_CHECK_EQ(v, -1);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    /* outside the scope the channel works and no waiter was left behind */
    v = 8;
    WT_CHECK_EQ(weft_chan_send(c, &v), 0);
    WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
    WT_CHECK_EQ(v, 8);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, scope_deadline_ends_blocked_recv, .timeout = 10)
{
    WT_RUN(root_deadline_recv, NULL, .procs = 1);
}

static int root_deadline_send(void *arg)
{
    weft_chan *c = weft_chan_make(sizeof(int), 1);
    WT_REQUIRE(c != NULL);
    int v = 1;
    WT_CHECK_EQ(weft_chan_send(c, &v), 0);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    int64_t t0 = wt_mark_now();
    weft_scope_deadline(sc, t0 + WT_MS(20));
    v = 2;
    WT_CHECK_EQ(weft_chan_send(c, &v), ETIMEDOUT);
    int64_t dt = weft_now() - t0;
    WT_CHECK_MSG(dt >= WT_MS(20) && wt_own_since(t0) < WT_MS(20 + SLACK_MS),
                 "send timed out after %lld us", (long long)dt / 1000);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    WT_CHECK_EQ(weft_chan_len(c), 1);
    WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
    WT_CHECK_EQ(v, 1);
    WT_CHECK_EQ(weft_chan_try_recv(c, &v), EAGAIN);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(chan, scope_deadline_ends_blocked_send_storing_nothing, .timeout = 10)
{
    WT_RUN(root_deadline_send, NULL, .procs = 1);
}

/* ------------------------------------------- plain OS threads, either side */

#define NPROD 3
#define NCONS 3
#if WT_SANITIZED
#define NITEMS 1500
#else
#define NITEMS 5000
#endif

struct item {
    int prod;
    int seq;
};

struct pc {
    weft_chan *c;
    weft_sem done;            /* released by each OS thread at its end */
    atomic_int seen[NPROD][NITEMS];
    atomic_int total;
    atomic_int next_id;
};

static struct pc g_pc;

static void pc_reset(size_t cap)
{
    memset(&g_pc, 0, sizeof g_pc);
    weft_sem_init(&g_pc.done, 0);
    g_pc.c = weft_chan_make(sizeof(struct item), cap);
}

static void produce(int id)
{
    for (int s = 0; s < NITEMS; s++) {
        struct item it = {id, s};
        int rc = weft_chan_send(g_pc.c, &it);
        if (rc != 0) {
            WT_CHECK_MSG(0, "producer %d item %d: send returned %d", id, s,
                         rc);
            return;
        }
    }
}

/* Receives until the channel is closed and drained; checks each
 * producer's items arrive in order. */
static void consume(void)
{
    int last[NPROD];
    for (int p = 0; p < NPROD; p++)
        last[p] = -1;
    struct item it;
    int rc;
    while ((rc = weft_chan_recv(g_pc.c, &it)) == 0) {
        if (it.prod < 0 || it.prod >= NPROD || it.seq < 0 ||
            it.seq >= NITEMS) {
            WT_CHECK_MSG(0, "received garbage (%d, %d)", it.prod, it.seq);
            continue;
        }
        WT_CHECK_MSG(it.seq > last[it.prod],
                     "producer %d: item %d received after item %d", it.prod,
                     it.seq, last[it.prod]);
        last[it.prod] = it.seq;
        atomic_fetch_add(&g_pc.seen[it.prod][it.seq], 1);
        atomic_fetch_add(&g_pc.total, 1);
    }
    WT_CHECK_EQ(rc, EPIPE);
}

static void pc_verify(void)
{
    WT_CHECK_EQ(atomic_load(&g_pc.total), NPROD * NITEMS);
    int bad = 0;
    for (int p = 0; p < NPROD; p++)
        for (int s = 0; s < NITEMS && bad < 5; s++)
            if (atomic_load(&g_pc.seen[p][s]) != 1) {
                WT_CHECK_MSG(0, "item (%d, %d) received %d times", p, s,
                             atomic_load(&g_pc.seen[p][s]));
                bad++;
            }
}

static void *os_producer(void *arg)
{
    produce(atomic_fetch_add(&g_pc.next_id, 1));
    weft_sem_release(&g_pc.done);
    return NULL;
}

static int vt_consumer(void *arg)
{
    consume();
    return 0;
}

static int root_os_producers(void *arg)
{
    pc_reset(8);
    WT_REQUIRE(g_pc.c != NULL);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < NCONS; i++)
        WT_REQUIRE(wt_go(vt_consumer, NULL) != NULL);
    pthread_t pt[NPROD];
    for (int i = 0; i < NPROD; i++)
        WT_REQUIRE_EQ(pthread_create(&pt[i], NULL, os_producer, NULL), 0);
    for (int i = 0; i < NPROD; i++)
        WT_CHECK_EQ(weft_sem_acquire(&g_pc.done), 0);
    for (int i = 0; i < NPROD; i++)
        pthread_join(pt[i], NULL);
    WT_CHECK_EQ(weft_chan_close(g_pc.c), 0);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    pc_verify();
    WT_CHECK_EQ(weft_chan_free(g_pc.c), 0);
    return 0;
}

Test(chan, os_thread_producers_feed_virtual_consumers, .timeout = 60)
{
    WT_RUN(root_os_producers, NULL, .procs = 2);
}

Test(chan, os_thread_producers_feed_virtual_consumers_one_proc,
     .timeout = 60)
{
    WT_RUN(root_os_producers, NULL, .procs = 1);
}

static void *os_consumer(void *arg)
{
    consume();
    weft_sem_release(&g_pc.done);
    return NULL;
}

static int vt_producer(void *arg)
{
    produce(atomic_fetch_add(&g_pc.next_id, 1));
    return 0;
}

static int root_os_consumers(void *arg)
{
    pc_reset((size_t)(uintptr_t)arg);
    WT_REQUIRE(g_pc.c != NULL);
    pthread_t pt[NCONS];
    for (int i = 0; i < NCONS; i++)
        WT_REQUIRE_EQ(pthread_create(&pt[i], NULL, os_consumer, NULL), 0);
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < NPROD; i++)
        WT_REQUIRE(wt_go(vt_producer, NULL) != NULL);
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    WT_CHECK_EQ(weft_chan_close(g_pc.c), 0);
    for (int i = 0; i < NCONS; i++)
        WT_CHECK_EQ(weft_sem_acquire(&g_pc.done), 0);
    for (int i = 0; i < NCONS; i++)
        pthread_join(pt[i], NULL);
    pc_verify();
    WT_CHECK_EQ(weft_chan_free(g_pc.c), 0);
    return 0;
}

Test(chan, virtual_producers_feed_os_thread_consumers, .timeout = 60)
{
    WT_RUN(root_os_consumers, (void *)(uintptr_t)8, .procs = 2);
}

Test(chan, virtual_producers_feed_os_thread_consumers_one_proc,
     .timeout = 60)
{
    WT_RUN(root_os_consumers, (void *)(uintptr_t)8, .procs = 1);
}

Test(chan, virtual_producers_feed_os_thread_consumers_rendezvous,
     .timeout = 60)
{
    WT_RUN(root_os_consumers, (void *)(uintptr_t)0, .procs = 2);
}

/* --------------------------------------------------------- element sizes */

static void fill_pattern(unsigned char *p, size_t n, int k)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 7 + (size_t)k * 31 + 1);
}

static bool check_pattern(const unsigned char *p, size_t n, int k)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 7 + (size_t)k * 31 + 1))
            return false;
    return true;
}

#define GUARD 32

static bool guard_intact(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < GUARD; i++)
        if (p[n + i] != 0xA5)
            return false;
    return true;
}

struct sized_send {
    weft_chan *c;
    unsigned char *buf;
    int rc;
};

static int send_sized(void *arg)
{
    struct sized_send *s = arg;
    s->rc = weft_chan_send(s->c, s->buf);
    return 0;
}

static int root_sizes(void *arg)
{
    static const size_t sizes[] = {1, 3, 100, 4096, 65536};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        unsigned char *in = malloc(n);
        unsigned char *out = malloc(n + GUARD);
        WT_REQUIRE(in != NULL && out != NULL);

        /* buffered: three elements in, three out */
        weft_chan *c = weft_chan_make(n, 3);
        WT_REQUIRE(c != NULL);
        for (int k = 0; k < 3; k++) {
            fill_pattern(in, n, k);
            WT_CHECK_EQ(weft_chan_send(c, in), 0);
        }
        memset(in, 0, n); /* the channel holds copies */
        for (int k = 0; k < 3; k++) {
            memset(out, 0xA5, n + GUARD);
            WT_CHECK_EQ(weft_chan_recv(c, out), 0);
            WT_CHECK_MSG(check_pattern(out, n, k),
                         "size %zu element %d corrupted", n, k);
            WT_CHECK_MSG(guard_intact(out, n),
                         "size %zu: receive wrote past the element", n);
        }
        WT_CHECK_EQ(weft_chan_free(c), 0);

        /* rendezvous: straight from the sender's buffer */
        c = weft_chan_make(n, 0);
        WT_REQUIRE(c != NULL);
        fill_pattern(in, n, 5);
        struct sized_send s = {c, in, -1};
        weft_thread *t = wt_go(send_sized, &s);
        WT_REQUIRE(t != NULL);
        memset(out, 0xA5, n + GUARD);
        WT_CHECK_EQ(weft_chan_recv(c, out), 0);
        WT_CHECK_EQ(weft_join(t, NULL), 0);
        WT_CHECK_EQ(s.rc, 0);
        WT_CHECK_MSG(check_pattern(out, n, 5),
                     "size %zu rendezvous element corrupted", n);
        WT_CHECK_MSG(guard_intact(out, n),
                     "size %zu: rendezvous receive wrote past the element", n);
        WT_CHECK_EQ(weft_chan_free(c), 0);
        free(in);
        free(out);
    }
    return 0;
}

Test(chan, elements_of_odd_sizes_are_copied_exactly, .timeout = 10)
{
    WT_RUN(root_sizes, NULL, .procs = 2);
}

/* --------------------------------------------------------- back pressure */

#define BP_CAP 16
#define BP_ITEMS 200
#define BP_ELEM 16384   /* 150 leaked copies would show as 2.4 MiB */

struct bp {
    weft_chan *c;
    atomic_int produced;
    atomic_int consumed;
    int max_ahead;
    long rss_50, rss_200;
    unsigned char pbuf[BP_ELEM];
    unsigned char cbuf[BP_ELEM];
};

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size = 0, resident = -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static int bp_producer(void *arg)
{
    struct bp *b = arg;
    for (int i = 0; i < BP_ITEMS; i++) {
        memset(b->pbuf, i & 0xff, BP_ELEM);
        memcpy(b->pbuf, &i, sizeof i);
        WT_REQUIRE_EQ(weft_chan_send(b->c, b->pbuf), 0);
        int ahead = atomic_fetch_add(&b->produced, 1) + 1 -
                    atomic_load(&b->consumed);
        if (ahead > b->max_ahead)
            b->max_ahead = ahead;
        WT_CHECK_MSG(ahead <= BP_CAP + 1,
                     "after item %d the producer is %d items ahead", i,
                     ahead);
        if (i + 1 == 50)
            b->rss_50 = rss_bytes();
    }
    b->rss_200 = rss_bytes();
    return 0;
}

static int bp_consumer(void *arg)
{
    struct bp *b = arg;
    for (int i = 0; i < BP_ITEMS; i++) {
        WT_REQUIRE_EQ(weft_chan_recv(b->c, b->cbuf), 0);
        int got;
        memcpy(&got, b->cbuf, sizeof got);
        WT_CHECK_EQ(got, i);
        WT_CHECK_EQ(b->cbuf[BP_ELEM - 1], i & 0xff);
        atomic_fetch_add(&b->consumed, 1);
        WT_REQUIRE_EQ(weft_sleep(WT_MS(1)), 0);
    }
    return 0;
}

static int root_back_pressure(void *arg)
{
    struct bp *b = calloc(1, sizeof *b);
    WT_REQUIRE(b != NULL);
    b->c = weft_chan_make(BP_ELEM, BP_CAP);
    WT_REQUIRE(b->c != NULL);
    weft_thread *c = wt_go(bp_consumer, b);
    weft_thread *p = wt_go(bp_producer, b);
    WT_REQUIRE(c != NULL && p != NULL);
    WT_CHECK_EQ(weft_join(p, NULL), 0);
    WT_CHECK_EQ(weft_join(c, NULL), 0);
    WT_CHECK_EQ(atomic_load(&b->consumed), BP_ITEMS);
    /* the buffer was used: the slow consumer let the producer get ahead */
    WT_CHECK_MSG(b->max_ahead >= BP_CAP - 1,
                 "the producer was at most %d items ahead", b->max_ahead);
    WT_CHECK(b->rss_50 > 0 && b->rss_200 > 0);
#if !defined(__SANITIZE_THREAD__) /* TSan's shadow memory grows as it runs */
    WT_CHECK_MSG(b->rss_200 - b->rss_50 < 1024 * 1024,
                 "RSS grew by %ld KiB between item 50 and item 200",
                 (b->rss_200 - b->rss_50) / 1024);
#endif
    WT_CHECK_EQ(weft_chan_free(b->c), 0);
    free(b);
    return 0;
}

Test(chan, slow_consumer_holds_back_producer, .timeout = 20)
{
    WT_RUN(root_back_pressure, NULL, .procs = 2);
}

Test(chan, slow_consumer_holds_back_producer_one_proc, .timeout = 20)
{
    WT_RUN(root_back_pressure, NULL, .procs = 1);
}
