/* SPDX-License-Identifier: MIT */
/*
 * select.c — weft_select: polling and deadlines, choosing among ready
 * cases and leaving the others untouched, send / receive / join cases,
 * closed channels, fairness, cancellation, plain OS threads, argument
 * errors, the order in which the scopes of joins are locked.
 */
#include "wt.h"

#include "sched/thread.h" /* records, scopes, their locks: white-box */

#if WT_SANITIZED
#define SLACK_MS 200
#else
#define SLACK_MS 50
#endif

#define SETTLE_MS 20

static weft_chan *mk(size_t cap)
{
    weft_chan *c = weft_chan_make(sizeof(int), cap);
    WT_CHECK_MSG(c != NULL, "weft_chan_make failed: errno %d", wt_errno());
    return c;
}

/* ------------------------------------------------------ polls, deadlines */

static int root_poll(void *arg)
{
    weft_chan *a = mk(1), *b = mk(0), *full = mk(1);
    WT_REQUIRE(a && b && full);
    int x = 1;
    WT_CHECK_EQ(weft_chan_send(full, &x), 0);
    int va = -1, vb = -1, vs = 42;
    weft_case cs[3] = {WEFT_RECV(a, &va), WEFT_RECV(b, &vb),
                       WEFT_SEND(full, &vs)};
    int64_t t0 = wt_mark_now();
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(cs, 3, 0), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    WT_CHECK(wt_own_since(t0) < WT_MS(SLACK_MS));
    /* a deadline already in the past polls, too */
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(cs, 3, weft_now() - WT_MS(5)), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    WT_CHECK_EQ(va, -1);
    WT_CHECK_EQ(vb, -1);
    WT_CHECK_EQ(weft_chan_len(a), 0);
    WT_CHECK_EQ(weft_chan_len(full), 1);
    x = -1;
    WT_CHECK_EQ(weft_chan_recv(full, &x), 0);
    WT_CHECK_EQ(x, 1);
    WT_CHECK_EQ(weft_chan_try_recv(full, &x), EAGAIN); /* 42 not sent */
    WT_CHECK_EQ(weft_chan_free(a), 0);
    WT_CHECK_EQ(weft_chan_free(b), 0);
    WT_CHECK_EQ(weft_chan_free(full), 0);
    return 0;
}

Test(select, poll_with_nothing_ready_is_etimedout, .timeout = 10)
{
    WT_RUN(root_poll, NULL, .procs = 1);
}

static int root_deadline(void *arg)
{
    weft_chan *a = mk(2), *b = mk(0);
    WT_REQUIRE(a && b);
    int va = -1, vb = -1;
    weft_case cs[2] = {WEFT_RECV(a, &va), WEFT_RECV(b, &vb)};
    int64_t t0 = wt_mark_now();
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(cs, 2, t0 + WT_MS(30)), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    int64_t dt = weft_now() - t0;
    WT_CHECK_MSG(dt >= WT_MS(30) && wt_own_since(t0) < WT_MS(30 + SLACK_MS),
                 "select timed out after %lld us", (long long)dt / 1000);
    WT_CHECK_EQ(va, -1);
    WT_CHECK_EQ(vb, -1);
    /* the timed-out select left no waiter behind */
    int v = 3;
    WT_CHECK_EQ(weft_chan_try_send(b, &v), EAGAIN);
    WT_CHECK_EQ(weft_chan_try_send(a, &v), 0);
    WT_CHECK_EQ(weft_chan_len(a), 1);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    WT_CHECK_EQ(weft_chan_free(b), 0);
    return 0;
}

Test(select, deadline_with_nothing_ready_times_out_on_time, .timeout = 10)
{
    WT_RUN(root_deadline, NULL, .procs = 1);
}

static int root_scope_deadline(void *arg)
{
    weft_chan *a = mk(0);
    WT_REQUIRE(a != NULL);
    int va = -1;
    weft_case cs[1] = {WEFT_RECV(a, &va)};
    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    int64_t t0 = wt_mark_now();
    weft_scope_deadline(sc, t0 + WT_MS(20));
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(cs, 1, -1), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    int64_t dt = weft_now() - t0;
    WT_CHECK_MSG(dt >= WT_MS(20) && wt_own_since(t0) < WT_MS(20 + SLACK_MS),
                 "select timed out after %lld us", (long long)dt / 1000);
    WT_CHECK_EQ(weft_scope_close(sc), ETIMEDOUT);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    return 0;
}

Test(select, scope_deadline_ends_select, .timeout = 10)
{
    WT_RUN(root_scope_deadline, NULL, .procs = 1);
}

/* -------------------------------------------------------- ready cases */

static int root_ready_recv(void *arg)
{
    weft_chan *a = mk(2), *b = mk(2), *c = mk(0);
    WT_REQUIRE(a && b && c);
    int v = 7;
    WT_CHECK_EQ(weft_chan_send(b, &v), 0);
    int va = -1, vb = -1, vc = -1;
    weft_case cs[3] = {WEFT_RECV(a, &va), WEFT_RECV(b, &vb),
                       WEFT_RECV(c, &vc)};
    cs[0].err = cs[1].err = cs[2].err = -5;
    WT_CHECK_EQ(weft_select(cs, 3, -1), 1);
    WT_CHECK_EQ(cs[1].err, 0);
    WT_CHECK_EQ(vb, 7);
    WT_CHECK_EQ(va, -1);
    WT_CHECK_EQ(vc, -1);
    WT_CHECK_EQ(weft_chan_len(b), 0);

    /* two ready: exactly one is taken, the other stays in its channel */
    v = 11;
    WT_CHECK_EQ(weft_chan_send(a, &v), 0);
    v = 12;
    WT_CHECK_EQ(weft_chan_send(b, &v), 0);
    va = vb = -1;
    int i = weft_select(cs, 3, 0);
    WT_REQUIRE(i == 0 || i == 1);
    WT_CHECK_EQ(cs[i].err, 0);
    if (i == 0) {
        WT_CHECK_EQ(va, 11);
        WT_CHECK_EQ(vb, -1);
        WT_CHECK_EQ(weft_chan_len(a), 0);
        WT_CHECK_EQ(weft_chan_len(b), 1);
        WT_CHECK_EQ(weft_chan_recv(b, &v), 0);
        WT_CHECK_EQ(v, 12);
    } else {
        WT_CHECK_EQ(vb, 12);
        WT_CHECK_EQ(va, -1);
        WT_CHECK_EQ(weft_chan_len(b), 0);
        WT_CHECK_EQ(weft_chan_len(a), 1);
        WT_CHECK_EQ(weft_chan_recv(a, &v), 0);
        WT_CHECK_EQ(v, 11);
    }
    WT_CHECK_EQ(vc, -1);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    WT_CHECK_EQ(weft_chan_free(b), 0);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(select, chooses_ready_recv_and_leaves_others_untouched, .timeout = 10)
{
    WT_RUN(root_ready_recv, NULL, .procs = 1);
}

/* A send case and a receive case, only the send ready (room in a buffer). */
static int root_ready_send_buffered(void *arg)
{
    weft_chan *a = mk(0), *b = mk(1);
    WT_REQUIRE(a && b);
    int va = -1, vs = 21;
    weft_case cs[2] = {WEFT_RECV(a, &va), WEFT_SEND(b, &vs)};
    WT_CHECK_EQ(weft_select(cs, 2, 0), 1);
    WT_CHECK_EQ(cs[1].err, 0);
    WT_CHECK_EQ(weft_chan_len(b), 1);
    /* now b is full: nothing ready */
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(cs, 2, 0), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    int v = -1;
    WT_CHECK_EQ(weft_chan_recv(b, &v), 0);
    WT_CHECK_EQ(v, 21);
    WT_CHECK_EQ(weft_chan_try_recv(b, &v), EAGAIN);
    WT_CHECK_EQ(va, -1);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    WT_CHECK_EQ(weft_chan_free(b), 0);
    return 0;
}

Test(select, send_case_into_buffer_with_room, .timeout = 10)
{
    WT_RUN(root_ready_send_buffered, NULL, .procs = 1);
}

struct rx {
    weft_chan *c;
    int val;
    int rc;
    atomic_int started;
};

static int rx_body(void *arg)
{
    struct rx *r = arg;
    atomic_store(&r->started, 1);
    r->rc = weft_chan_recv(r->c, &r->val);
    return 0;
}

/* A select's send case hands val to a receiver on c: one already waiting
 * (receiver_first), or one that arrives while the select waits. */
static int send_case_meets_receiver(int val, bool receiver_first)
{
    weft_chan *idle = mk(0), *c = mk(0);
    WT_REQUIRE(idle && c);
    static struct rx r;
    r = (struct rx){c, -1, -1, 0};
    weft_thread *t = wt_go(rx_body, &r);
    WT_REQUIRE(t != NULL);
    int64_t deadline = -1;
    if (receiver_first) {
        WT_CHECK(wt_yield_until(&r.started, 100000000L));
        WT_CHECK_EQ(weft_sleep(WT_MS(SETTLE_MS)), 0);
        deadline = weft_now() + WT_MS(5000);
    }
    int vi = -1, vs = val;
    weft_case cs[2] = {WEFT_RECV(idle, &vi), WEFT_SEND(c, &vs)};
    WT_CHECK_EQ(weft_select(cs, 2, deadline), 1);
    WT_CHECK_EQ(cs[1].err, 0);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(r.rc, 0);
    WT_CHECK_EQ(r.val, val);
    if (receiver_first)
        WT_CHECK_EQ(vi, -1);
    WT_CHECK_EQ(weft_chan_free(idle), 0);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

static int root_send_to_waiting_receiver(void *arg)
{
    return send_case_meets_receiver(99, true);
}

Test(select, send_case_hands_value_to_waiting_receiver, .timeout = 10)
{
    WT_RUN(root_send_to_waiting_receiver, NULL, .procs = 2);
}

/* The select waits first; a receiver arrives later and takes the value. */
static int root_send_waits_for_receiver(void *arg)
{
    return send_case_meets_receiver(98, false);
}

Test(select, send_case_waits_for_receiver, .timeout = 10)
{
    WT_RUN(root_send_waits_for_receiver, NULL, .procs = 1);
}

/* A blocked select's receive case is completed by a later sender. */
struct tx {
    weft_chan *c;
    int val;
    int64_t delay_ns;
    int rc;
};

static int tx_body(void *arg)
{
    struct tx *s = arg;
    if (s->delay_ns > 0)
        weft_sleep(s->delay_ns);
    s->rc = weft_chan_send(s->c, &s->val);
    return 0;
}

static int root_recv_waits_for_sender(void *arg)
{
    weft_chan *a = mk(0), *b = mk(3);
    WT_REQUIRE(a && b);
    static struct tx s;
    s = (struct tx){b, 55, WT_MS(10), -1};
    weft_thread *t = wt_go(tx_body, &s);
    WT_REQUIRE(t != NULL);
    int va = -1, vb = -1;
    weft_case cs[2] = {WEFT_RECV(a, &va), WEFT_RECV(b, &vb)};
    WT_CHECK_EQ(weft_select(cs, 2, -1), 1);
    WT_CHECK_EQ(vb, 55);
    WT_CHECK_EQ(va, -1);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(s.rc, 0);
    WT_CHECK_EQ(weft_chan_len(b), 0);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    WT_CHECK_EQ(weft_chan_free(b), 0);
    return 0;
}

Test(select, blocked_recv_case_completed_by_later_sender, .timeout = 10)
{
    WT_RUN(root_recv_waits_for_sender, NULL, .procs = 2);
}

/* -------------------------------------------------------- closed channels */

static int root_closed(void *arg)
{
    weft_chan *open = mk(0), *closed = mk(2), *sclosed = mk(2);
    WT_REQUIRE(open && closed && sclosed);
    int v = 4;
    WT_CHECK_EQ(weft_chan_send(closed, &v), 0);
    WT_CHECK_EQ(weft_chan_close(closed), 0);
    int vo = -1, vc = -1;
    weft_case cs[2] = {WEFT_RECV(open, &vo), WEFT_RECV(closed, &vc)};
    /* a closed channel still yields what it buffered */
    cs[1].err = -5;
    WT_CHECK_EQ(weft_select(cs, 2, -1), 1);
    WT_CHECK_EQ(cs[1].err, 0);
    WT_CHECK_EQ(vc, 4);
    /* then the receive case completes at once with EPIPE */
    vc = -1;
    cs[1].err = -5;
    WT_CHECK_EQ(weft_select(cs, 2, -1), 1);
    WT_CHECK_EQ(cs[1].err, EPIPE);
    WT_CHECK_EQ(vc, -1);
    WT_CHECK_EQ(vo, -1);

    /* a send case on a closed channel: its index, EPIPE, nothing stored */
    WT_CHECK_EQ(weft_chan_close(sclosed), 0);
    int vs = 8;
    weft_case ss[2] = {WEFT_RECV(open, &vo), WEFT_SEND(sclosed, &vs)};
    ss[1].err = -5;
    WT_CHECK_EQ(weft_select(ss, 2, 0), 1);
    WT_CHECK_EQ(ss[1].err, EPIPE);
    WT_CHECK_EQ(weft_chan_len(sclosed), 0);
    WT_CHECK_EQ(weft_chan_free(open), 0);
    WT_CHECK_EQ(weft_chan_free(closed), 0);
    WT_CHECK_EQ(weft_chan_free(sclosed), 0);
    return 0;
}

Test(select, closed_channel_case_completes_with_epipe, .timeout = 10)
{
    WT_RUN(root_closed, NULL, .procs = 1);
}

struct closer {
    weft_chan *c;
    int64_t delay_ns;
};

static int close_later(void *arg)
{
    struct closer *k = arg;
    weft_sleep(k->delay_ns);
    WT_CHECK_EQ(weft_chan_close(k->c), 0);
    return 0;
}

static int root_close_wakes_select(void *arg)
{
    weft_chan *a = mk(0), *b = mk(1);
    WT_REQUIRE(a && b);
    static struct closer k;
    k = (struct closer){b, WT_MS(10)};
    weft_thread *t = wt_go(close_later, &k);
    WT_REQUIRE(t != NULL);
    int va = -1, vb = -1;
    weft_case cs[2] = {WEFT_RECV(a, &va), WEFT_RECV(b, &vb)};
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_select(cs, 2, t0 + WT_MS(5000)), 1);
    WT_CHECK_EQ(cs[1].err, EPIPE);
    WT_CHECK(wt_own_since(t0) < WT_MS(10 + SLACK_MS));
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    WT_CHECK_EQ(weft_chan_free(b), 0);
    return 0;
}

Test(select, close_wakes_blocked_select, .timeout = 10)
{
    WT_RUN(root_close_wakes_select, NULL, .procs = 2);
}

/* --------------------------------------------------------------- fairness */

#define FAIR_N 10000

static int root_fairness(void *arg)
{
    weft_chan *a = mk(1), *b = mk(1);
    WT_REQUIRE(a && b);
    int ta = 1, tb = 2;
    WT_CHECK_EQ(weft_chan_send(a, &ta), 0);
    WT_CHECK_EQ(weft_chan_send(b, &tb), 0);
    int va, vb;
    weft_case cs[2] = {WEFT_RECV(a, &va), WEFT_RECV(b, &vb)};
    int count[2] = {0, 0};
    for (int i = 0; i < FAIR_N; i++) {
        va = vb = 0;
        int k = weft_select(cs, 2, -1);
        WT_REQUIRE(k == 0 || k == 1);
        WT_REQUIRE_EQ(k == 0 ? va : vb, k + 1);
        WT_REQUIRE_EQ(k == 0 ? vb : va, 0);
        count[k]++;
        WT_REQUIRE_EQ(weft_chan_try_send(k == 0 ? a : b,
                                         k == 0 ? &ta : &tb), 0);
    }
    WT_CHECK_MSG(count[0] >= FAIR_N * 40 / 100 && count[0] <= FAIR_N * 60 / 100,
                 "case 0 chosen %d times of %d", count[0], FAIR_N);
    WT_CHECK_EQ(count[0] + count[1], FAIR_N);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    WT_CHECK_EQ(weft_chan_free(b), 0);
    return 0;
}

Test(select, chooses_among_ready_cases_fairly, .timeout = 20)
{
    WT_RUN(root_fairness, NULL, .procs = 1);
}

/* The same with a ready send case against a ready receive case. */
static int root_fairness_mixed(void *arg)
{
    weft_chan *a = mk(1), *b = mk(FAIR_N + 1);
    WT_REQUIRE(a && b);
    int t = 1, va, vs = 2;
    WT_CHECK_EQ(weft_chan_send(a, &t), 0);
    weft_case cs[2] = {WEFT_RECV(a, &va), WEFT_SEND(b, &vs)};
    int count[2] = {0, 0};
    for (int i = 0; i < FAIR_N; i++) {
        int k = weft_select(cs, 2, -1);
        WT_REQUIRE(k == 0 || k == 1);
        count[k]++;
        if (k == 0)
            WT_REQUIRE_EQ(weft_chan_try_send(a, &t), 0);
    }
    WT_CHECK_MSG(count[0] >= FAIR_N * 40 / 100 && count[0] <= FAIR_N * 60 / 100,
                 "receive case chosen %d times of %d", count[0], FAIR_N);
    WT_CHECK_EQ(weft_chan_len(b), count[1]);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    WT_CHECK_EQ(weft_chan_free(b), 0);
    return 0;
}

Test(select, chooses_between_ready_send_and_recv_fairly, .timeout = 20)
{
    WT_RUN(root_fairness_mixed, NULL, .procs = 1);
}

/* ------------------------------------------------------------------ join */

static int sleep_ms(void *arg)
{
    return weft_sleep(WT_MS((intptr_t)arg));
}

/* The sleeps are far apart (10, 300, 500 ms): on a loaded machine, under
 * a sanitizer, the three spawns alone may take tens of ms. The clock
 * starts before them, so the select is seen to wait. */
static int root_join_first(void *arg)
{
    int64_t t0 = weft_now();
    weft_thread *t_mid = wt_go(sleep_ms, (void *)300);
    weft_thread *t_first = wt_go(sleep_ms, (void *)10);
    weft_thread *t_last = wt_go(sleep_ms, (void *)500);
    WT_REQUIRE(t_mid && t_first && t_last);
    int r[3] = {-1, -1, -1};
    weft_case cs[3] = {WEFT_JOIN(t_mid, &r[0]), WEFT_JOIN(t_first, &r[1]),
                       WEFT_JOIN(t_last, &r[2])};
    cs[1].err = -5;
    WT_CHECK_EQ(weft_select(cs, 3, -1), 1);
    int64_t dt = weft_now() - t0;
    WT_CHECK_EQ(cs[1].err, 0);
    WT_CHECK_EQ(r[1], 0);
    WT_CHECK_EQ(r[0], -1);
    WT_CHECK_EQ(r[2], -1);
    WT_CHECK_MSG(dt >= WT_MS(10), "select returned after %lld us",
                 (long long)dt / 1000);
    /* the others are still joinable */
    WT_CHECK_EQ(weft_join(t_mid, &r[0]), 0);
    WT_CHECK_EQ(r[0], 0);
    WT_CHECK_EQ(weft_join(t_last, &r[2]), 0);
    WT_CHECK_EQ(r[2], 0);
    return 0;
}

Test(select, join_case_chooses_first_thread_to_finish, .timeout = 10)
{
    WT_RUN(root_join_first, NULL, .procs = 2);
}

/* A thread already finished: its join case is ready at once (a poll). */
static int root_join_finished(void *arg)
{
    weft_thread *t = wt_go(sleep_ms, (void *)0);
    WT_REQUIRE(t != NULL);
    weft_chan *a = mk(0);
    WT_REQUIRE(a != NULL);
    int va = -1, r = -1;
    weft_case cs[2] = {WEFT_RECV(a, &va), WEFT_JOIN(t, &r)};
    int k = WT_POLL(weft_select(cs, 2, 0), -1);
    WT_CHECK_EQ(k, 1);
    WT_CHECK_EQ(r, 0);
    WT_CHECK_EQ(va, -1);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    return 0;
}

Test(select, join_case_of_finished_thread_is_ready, .timeout = 10)
{
    WT_RUN(root_join_finished, NULL, .procs = 2);
}

static int root_join_not_chosen(void *arg)
{
    weft_chan *a = mk(1);
    WT_REQUIRE(a != NULL);
    weft_thread *t = wt_go(sleep_ms, (void *)30);
    WT_REQUIRE(t != NULL);
    int v = 6, va = -1, r = -1;
    WT_CHECK_EQ(weft_chan_send(a, &v), 0);
    weft_case cs[2] = {WEFT_RECV(a, &va), WEFT_JOIN(t, &r)};
    WT_CHECK_EQ(weft_select(cs, 2, -1), 0);
    WT_CHECK_EQ(va, 6);
    WT_CHECK_EQ(r, -1);
    /* a poll and a short deadline leave it alone as well */
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(cs, 2, 0), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(cs, 2, weft_now() + WT_MS(2)), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    WT_CHECK_EQ(r, -1);
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK_EQ(r, 0);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    return 0;
}

Test(select, join_case_not_chosen_leaves_thread_joinable, .timeout = 10)
{
    WT_RUN(root_join_not_chosen, NULL, .procs = 2);
}

/* A sender hands `val` over after msg_ms while a thread finishes after
 * thread_ms; a select over the receive and the join takes whichever comes
 * first and leaves the other one alone. */
static int join_or_message(int val, int msg_ms, int thread_ms)
{
    weft_chan *c = mk(0);
    WT_REQUIRE(c != NULL);
    static struct tx s;
    s = (struct tx){c, val, WT_MS(msg_ms), -1};
    weft_thread *sender = wt_go(tx_body, &s);
    weft_thread *t = wt_go(sleep_ms, (void *)(intptr_t)thread_ms);
    WT_REQUIRE(sender && t);
    int v = -1, r = -1;
    weft_case cs[2] = {WEFT_RECV(c, &v), WEFT_JOIN(t, &r)};
    if (thread_ms < msg_ms) {
        WT_CHECK_EQ(weft_select(cs, 2, -1), 1);
        WT_CHECK_EQ(r, 0);
        WT_CHECK_EQ(v, -1);
        /* the message is still to come, to a plain receive */
        WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
        WT_CHECK_EQ(v, val);
    } else {
        WT_CHECK_EQ(weft_select(cs, 2, -1), 0);
        WT_CHECK_EQ(v, val);
        WT_CHECK_EQ(r, -1);
        WT_CHECK_EQ(weft_join(t, &r), 0);
        WT_CHECK_EQ(r, 0);
    }
    WT_CHECK_EQ(weft_join(sender, NULL), 0);
    WT_CHECK_EQ(s.rc, 0);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

/* The thread finishes at 10 ms, the message arrives at 60 ms. */
static int root_join_before_message(void *arg)
{
    return join_or_message(123, 60, 10);
}

Test(select, join_case_completes_before_later_message, .timeout = 10)
{
    WT_RUN(root_join_before_message, NULL, .procs = 2);
}

/* The message arrives at 10 ms, the thread finishes at 60 ms. */
static int root_message_before_join(void *arg)
{
    return join_or_message(321, 10, 60);
}

Test(select, message_before_join_leaves_thread_joinable, .timeout = 10)
{
    WT_RUN(root_message_before_join, NULL, .procs = 2);
}

/* ----------------------------------------------------------- cancellation */

struct selc {
    weft_chan *a, *b;
    weft_thread *joinee;
    int va, vb, r;
    int idx, err;
    atomic_int started;
};

static int select_blocked(void *arg)
{
    struct selc *s = arg;
    weft_case cs[3] = {WEFT_RECV(s->a, &s->va), WEFT_RECV(s->b, &s->vb),
                       WEFT_JOIN(s->joinee, &s->r)};
    atomic_store(&s->started, 1);
    s->idx = weft_select(cs, 3, -1);
    s->err = s->idx < 0 ? wt_errno() : 0;
    return s->idx < 0 ? s->err : 0;
}

/* Blocks until something arrives on its channel. */
static int wait_quit(void *arg)
{
    int v;
    return weft_chan_recv(arg, &v) == 0 ? 0 : EPROTO;
}

static int root_cancel(void *arg)
{
    static struct selc s;
    s.a = mk(1);
    s.b = mk(0);
    weft_chan *quit = mk(1);
    WT_REQUIRE(s.a && s.b && quit);
    s.va = s.vb = s.r = -1;
    s.idx = -2;
    s.err = 0;
    atomic_store(&s.started, 0);
    s.joinee = wt_go(wait_quit, quit);
    WT_REQUIRE(s.joinee != NULL);
    weft_thread *t = wt_go(select_blocked, &s);
    WT_REQUIRE(t != NULL);
    WT_CHECK(wt_yield_until(&s.started, 100000000L));
    WT_CHECK_EQ(weft_sleep(WT_MS(SETTLE_MS)), 0);
    WT_CHECK_EQ(s.idx, -2); /* still waiting */
    int64_t t0 = wt_mark_now();
    WT_CHECK_EQ(weft_cancel(t), 0);
    int r = -1;
    WT_CHECK_EQ(weft_join(t, &r), 0);
    WT_CHECK(wt_own_since(t0) < WT_MS(SLACK_MS));
    WT_CHECK_EQ(s.idx, -1);
    WT_CHECK_EQ(s.err, ECANCELED);
    WT_CHECK_EQ(r, ECANCELED);
    WT_CHECK_EQ(s.va, -1);
    WT_CHECK_EQ(s.vb, -1);
    /* no stale waiter: nobody receives on b, a buffers, both can be freed */
    int v = 1;
    WT_CHECK_EQ(weft_chan_try_send(s.b, &v), EAGAIN);
    WT_CHECK_EQ(weft_chan_try_send(s.a, &v), 0);
    WT_CHECK_EQ(weft_chan_len(s.a), 1);
    WT_CHECK_EQ(weft_chan_free(s.a), 0);
    WT_CHECK_EQ(weft_chan_free(s.b), 0);
    /* the join case did not take the thread: it can still be joined */
    WT_CHECK_EQ(weft_chan_send(quit, &v), 0);
    r = -1;
    WT_CHECK_EQ(weft_join(s.joinee, &r), 0);
    WT_CHECK_EQ(r, 0);
    WT_CHECK_EQ(weft_chan_free(quit), 0);
    return 0;
}

Test(select, select_is_cancellation_point, .timeout = 10)
{
    WT_RUN(root_cancel, NULL, .procs = 2);
}

Test(select, select_is_cancellation_point_one_proc, .timeout = 10)
{
    WT_RUN(root_cancel, NULL, .procs = 1);
}

/* ------------------------------------------------------ plain OS threads */

#define OS_N 2000

struct os_sel {
    weft_chan *a, *b;
    int got[2];
    int errors;
    int timeout_rc, timeout_err;
    int64_t timeout_dt;
    weft_sem done;
};

static void *os_select_main(void *arg)
{
    struct os_sel *o = arg;
    int next[2] = {0, 1}; /* a carries the even values, b the odd ones */
    for (int i = 0; i < OS_N; i++) {
        int va = -1, vb = -1;
        weft_case cs[2] = {WEFT_RECV(o->a, &va), WEFT_RECV(o->b, &vb)};
        int k = weft_select(cs, 2, weft_now() + WT_MS(5000));
        if (k != 0 && k != 1) {
            o->errors++;
            break;
        }
        int v = k == 0 ? va : vb;
        if (v != next[k] || cs[k].err != 0)
            o->errors++;
        next[k] += 2;
        o->got[k]++;
    }
    /* nothing more comes: a deadline ends the wait */
    int v = -1;
    weft_case cs[1] = {WEFT_RECV(o->a, &v)};
    int64_t t0 = weft_now();
    o->timeout_rc = weft_select(cs, 1, t0 + WT_MS(20));
    o->timeout_err = errno;
    o->timeout_dt = weft_now() - t0;
    weft_sem_release(&o->done);
    return NULL;
}

static int feed(void *arg)
{
    struct os_sel *o = arg;
    for (int i = 0; i < OS_N; i++)
        WT_REQUIRE_EQ(weft_chan_send(i % 2 ? o->b : o->a, &i), 0);
    return 0;
}

static int root_os_select(void *arg)
{
    static struct os_sel o;
    memset(&o, 0, sizeof o);
    o.a = mk(0);
    o.b = mk(3);
    WT_REQUIRE(o.a && o.b);
    weft_sem_init(&o.done, 0);
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, os_select_main, &o), 0);
    WT_REQUIRE(wt_go(feed, &o) != NULL);
    WT_CHECK_EQ(weft_sem_acquire(&o.done), 0);
    pthread_join(pt, NULL);
    WT_CHECK_EQ(o.errors, 0);
    WT_CHECK_EQ(o.got[0], OS_N / 2);
    WT_CHECK_EQ(o.got[1], OS_N / 2);
    WT_CHECK_EQ(o.timeout_rc, -1);
    WT_CHECK_EQ(o.timeout_err, ETIMEDOUT);
    WT_CHECK_MSG(o.timeout_dt >= WT_MS(20) &&
                     o.timeout_dt < WT_MS(20 + SLACK_MS),
                 "timed out after %lld us", (long long)o.timeout_dt / 1000);
    WT_CHECK_EQ(weft_chan_free(o.a), 0);
    WT_CHECK_EQ(weft_chan_free(o.b), 0);
    return 0;
}

Test(select, works_on_plain_os_thread, .timeout = 30)
{
    WT_RUN(root_os_select, NULL, .procs = 2);
}

Test(select, works_on_plain_os_thread_one_proc, .timeout = 30)
{
    WT_RUN(root_os_select, NULL, .procs = 1);
}

/* ------------------------------------------------------------- arguments */

struct joiner {
    weft_thread *t;
    int rc;
    atomic_int started;
};

static int join_body(void *arg)
{
    struct joiner *j = arg;
    atomic_store(&j->started, 1);
    j->rc = weft_join(j->t, NULL);
    return 0;
}

#define MANY 1024

static int root_einval(void *arg)
{
    weft_chan *a = mk(1);
    WT_REQUIRE(a != NULL);
    int v = -1;
    weft_case ok = WEFT_RECV(a, &v);

    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(NULL, 1, 0), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(&ok, 0, 0), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(NULL, 0, -1), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);

    /* malformed cases */
    weft_case bad[2] = {ok, ok};
    bad[1].kind = 0;
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(bad, 2, 0), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    bad[1].kind = 99;
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(bad, 2, 0), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    bad[1] = WEFT_RECV(NULL, &v);
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(bad, 2, 0), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    bad[1] = WEFT_SEND(NULL, &v);
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(bad, 2, 0), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    bad[1] = WEFT_JOIN(NULL, NULL);
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(bad, 2, 0), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);

    /* EINVAL even when another case is ready: nothing was taken */
    int x = 17;
    WT_CHECK_EQ(weft_chan_send(a, &x), 0);
    bad[1].kind = 0;
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(bad, 2, 0), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    WT_CHECK_EQ(weft_chan_len(a), 1);
    WT_CHECK_EQ(v, -1);

    /* more than 1024 cases */
    weft_case *many = calloc(MANY + 1, sizeof *many);
    WT_REQUIRE(many != NULL);
    for (int i = 0; i <= MANY; i++)
        many[i] = WEFT_RECV(a, &v);
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(many, MANY + 1, 0), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    WT_CHECK_EQ(weft_chan_len(a), 1);
    free(many);

    /* a join case whose thread is being joined elsewhere */
    weft_chan *quit = mk(1);
    WT_REQUIRE(quit != NULL);
    static struct joiner j;
    j.t = wt_go(wait_quit, quit);
    j.rc = -1;
    atomic_store(&j.started, 0);
    WT_REQUIRE(j.t != NULL);
    weft_thread *jt = wt_go(join_body, &j);
    WT_REQUIRE(jt != NULL);
    WT_CHECK(wt_yield_until(&j.started, 100000000L));
    WT_CHECK_EQ(weft_sleep(WT_MS(SETTLE_MS)), 0);
    int r = -1;
    weft_case jc[1] = {WEFT_JOIN(j.t, &r)};
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(jc, 1, 0), -1);
    WT_CHECK_EQ(wt_errno(), EINVAL);
    WT_CHECK_EQ(r, -1);
    WT_CHECK_EQ(weft_chan_send(quit, &x), 0);
    WT_CHECK_EQ(weft_join(jt, NULL), 0);
    WT_CHECK_EQ(j.rc, 0);

    WT_CHECK_EQ(weft_chan_free(quit), 0);
    WT_CHECK_EQ(weft_chan_free(a), 0);
    return 0;
}

Test(select, bad_arguments_are_einval, .timeout = 10)
{
    WT_RUN(root_einval, NULL, .procs = 2);
}

/* A thread a select is waiting to join is being joined: weft_join on it
 * is EINVAL, and the select still gets it. */
struct sel_join {
    weft_thread *t;
    int r, idx;
    atomic_int started;
};

static int select_join_body(void *arg)
{
    struct sel_join *s = arg;
    weft_case cs[1] = {WEFT_JOIN(s->t, &s->r)};
    atomic_store(&s->started, 1);
    s->idx = weft_select(cs, 1, -1);
    return 0;
}

static int root_join_while_selected(void *arg)
{
    weft_chan *quit = mk(1);
    WT_REQUIRE(quit != NULL);
    static struct sel_join s;
    s.t = wt_go(wait_quit, quit);
    WT_REQUIRE(s.t != NULL);
    s.r = -1;
    s.idx = -2;
    atomic_store(&s.started, 0);
    weft_thread *st = wt_go(select_join_body, &s);
    WT_REQUIRE(st != NULL);
    WT_CHECK(wt_yield_until(&s.started, 100000000L));
    WT_CHECK_EQ(weft_sleep(WT_MS(SETTLE_MS)), 0);
    WT_CHECK_EQ(weft_join(s.t, NULL), EINVAL);
    int x = 1;
    WT_CHECK_EQ(weft_chan_send(quit, &x), 0);
    WT_CHECK_EQ(weft_join(st, NULL), 0);
    WT_CHECK_EQ(s.idx, 0);
    WT_CHECK_EQ(s.r, 0);
    WT_CHECK_EQ(weft_chan_free(quit), 0);
    return 0;
}

Test(select, join_of_thread_a_select_waits_on_is_einval, .timeout = 10)
{
    WT_RUN(root_join_while_selected, NULL, .procs = 2);
}

/* A join case naming the calling thread is EDEADLK, as weft_join is, and
 * takes nothing through the other cases, even a ready one. */
static int select_self_body(void *arg)
{
    weft_chan *c = arg;
    int v = -1, r = -1;
    weft_case cs[2] = {WEFT_RECV(c, &v), WEFT_JOIN(weft_self(), &r)};
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(cs, 2, -1), -1);
    WT_CHECK_EQ(wt_errno(), EDEADLK);
    WT_CHECK_EQ(v, -1);
    WT_CHECK_EQ(weft_chan_recv(c, &v), 0);
    WT_CHECK_EQ(v, 5);
    return 0;
}

static int root_select_self(void *arg)
{
    weft_chan *c = mk(1);
    WT_REQUIRE(c != NULL);
    int x = 5;
    WT_CHECK_EQ(weft_chan_send(c, &x), 0);
    weft_thread *t = wt_go(select_self_body, c);
    WT_REQUIRE(t != NULL);
    WT_CHECK_EQ(weft_join(t, NULL), 0);
    WT_CHECK_EQ(weft_chan_free(c), 0);
    return 0;
}

Test(select, join_case_of_the_caller_is_edeadlk, .timeout = 10)
{
    WT_RUN(root_select_self, NULL, .procs = 2);
}

/* 1024 cases are accepted: the one ready among them is found. */
static int root_max_cases(void *arg)
{
    weft_chan **ch = calloc(MANY, sizeof *ch);
    weft_case *cs = calloc(MANY, sizeof *cs);
    int *vals = calloc(MANY, sizeof *vals);
    WT_REQUIRE(ch && cs && vals);
    for (int i = 0; i < MANY; i++) {
        WT_REQUIRE((ch[i] = mk(1)) != NULL);
        vals[i] = -1;
        cs[i] = WEFT_RECV(ch[i], &vals[i]);
    }
    int x = 700;
    WT_CHECK_EQ(weft_chan_send(ch[700], &x), 0);
    WT_CHECK_EQ(weft_select(cs, MANY, -1), 700);
    WT_CHECK_EQ(vals[700], 700);
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(cs, MANY, 0), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    for (int i = 0; i < MANY; i++) {
        if (i != 700)
            WT_CHECK_EQ(vals[i], -1);
        WT_CHECK_EQ(weft_chan_free(ch[i]), 0);
    }
    free(ch);
    free(cs);
    free(vals);
    return 0;
}

Test(select, accepts_1024_cases, .timeout = 10)
{
    WT_RUN(root_max_cases, NULL, .procs = 1);
}

/* ------------------------------------------ lock order of joins' scopes */

/* A chain of threads, each spawned by the one before into its nursery,
 * each waiting for quit: t[k]'s home is t[k-1]'s root scope, one level
 * deeper in the scope tree than t[k-1]'s home. */
#define CHAIN 4

static struct {
    weft_chan *quit;
    weft_thread *t[CHAIN];
    atomic_int made;
} g_chain;

static int chain_body(void *arg)
{
    int k = (int)(intptr_t)arg;
    if (k + 1 < CHAIN &&
        !(g_chain.t[k + 1] = weft_go(chain_body, (void *)(intptr_t)(k + 1))))
        return ENOMEM;
    atomic_fetch_add(&g_chain.made, 1);
    int v;
    return weft_chan_recv(g_chain.quit, &v) == EPIPE ? 0 : EPROTO;
}

static int return_zero(void *arg)
{
    return 0;
}

/* An OS thread that holds an ancestor scope's lock while a select runs,
 * then looks whether the select took the descendant's meanwhile. */
struct scope_probe {
    weft_scope *ancestor, *descendant;
    atomic_int holding, selecting;
    int descendant_free;
};

static void *probe_main(void *arg)
{
    struct scope_probe *p = arg;
    weft__scope_lock(p->ancestor);
    atomic_store(&p->holding, 1);
    while (!atomic_load(&p->selecting))
        wt_block_ms(1);
    wt_block_ms(100); /* the select is at the ancestor's lock by now */
    p->descendant_free = weft__scope_trylock(p->descendant);
    if (p->descendant_free)
        weft__scope_unlock(p->descendant);
    weft__scope_unlock(p->ancestor);
    return NULL;
}

/* A home deeper in the chain (j) at a lower address than a shallower one
 * (i): address order alone would lock j's first. */
static bool reversed_pair(int *i, int *j)
{
    for (*i = 0; *i < CHAIN; (*i)++)
        for (*j = *i + 1; *j < CHAIN; (*j)++)
            if ((uintptr_t)weft__handle_record(g_chain.t[*j])->home <
                (uintptr_t)weft__handle_record(g_chain.t[*i])->home)
                return true;
    return false;
}

static int root_join_scope_order(void *arg)
{
    /* Records a join frees go back on the P's cache, last in first out:
     * the chain's threads get these, the later ones older records. */
    weft_thread *warm[CHAIN];
    for (int k = 0; k < CHAIN; k++)
        WT_REQUIRE((warm[k] = wt_go(return_zero, NULL)) != NULL);
    for (int k = 0; k < CHAIN; k++)
        WT_REQUIRE_EQ(weft_join(warm[k], NULL), 0);
    g_chain.quit = mk(0);
    WT_REQUIRE(g_chain.quit != NULL);
    atomic_store(&g_chain.made, 0);
    WT_REQUIRE((g_chain.t[0] = wt_go(chain_body, (void *)(intptr_t)0)));
    for (int k = 0; k < 1000 && atomic_load(&g_chain.made) < CHAIN; k++)
        WT_REQUIRE_EQ(weft_sleep(WT_MS(1)), 0);
    WT_REQUIRE_EQ(atomic_load(&g_chain.made), CHAIN);
    int i, j;
    bool set_up = reversed_pair(&i, &j);
    WT_CHECK_MSG(set_up, "no home deeper in the chain at a lower address: "
                 "the case cannot be set up");
    if (!set_up)
        return WT_EFAIL;
    static struct scope_probe p;
    p.ancestor = weft__handle_record(g_chain.t[i])->home;
    p.descendant = weft__handle_record(g_chain.t[j])->home;
    pthread_t pt;
    WT_REQUIRE_EQ(pthread_create(&pt, NULL, probe_main, &p), 0);
    WT_CHECK(wt_yield_until(&p.holding, 100000000L));
    weft_case cs[2] = {WEFT_JOIN(g_chain.t[j], NULL),
                       WEFT_JOIN(g_chain.t[i], NULL)};
    atomic_store(&p.selecting, 1);
    wt_set_errno(0);
    WT_CHECK_EQ(weft_select(cs, 2, 0), -1);
    WT_CHECK_EQ(wt_errno(), ETIMEDOUT);
    pthread_join(pt, NULL);
    WT_CHECK_MSG(p.descendant_free, "the select held the deeper scope's "
                 "lock while it waited for its ancestor's");
    WT_CHECK_EQ(weft_chan_close(g_chain.quit), 0);
    WT_CHECK_EQ(weft_join(g_chain.t[0], NULL), 0);
    WT_CHECK_EQ(weft_chan_free(g_chain.quit), 0);
    return 0;
}

/* A cancel locks a scope, then its descendants' (sched/sched.h); a select
 * joining threads of nested scopes must take them in the same order, or
 * the two can deadlock: the select holding the descendant's lock and
 * waiting for the ancestor's, which the cancel holds while it waits for
 * the descendant's. An OS thread stands in for the cancel. */
Test(select, join_scopes_locked_ancestor_first, .timeout = 10)
{
    WT_RUN(root_join_scope_order, NULL, .procs = 1);
}
