/* SPDX-License-Identifier: MIT */
/*
 * chan_stress.c — randomized channel traffic checked against a model.
 *
 * Each run, from one seed: a few channels (capacities 0..8), sender
 * threads, receiver threads and selecting threads (weft_select over
 * several send and receive cases with random deadlines), plus sometimes a
 * plain OS-thread sender and receiver. Some virtual threads work inside
 * scopes with short deadlines. While traffic flows the root cancels a few
 * threads, and usually a canceller thread spawns short-lived senders and
 * receivers and cancels each after a random moment (cancel racing a
 * hand-over). Near the end the root closes some channels, sometimes
 * cancels every receiver (so senders are left waiting on full channels),
 * then closes all channels, joins everything and drains what is left in
 * the buffers.
 *
 * Every value is (sender id, seqno, channel, checksum); each sender's
 * seqnos increase. Every outcome is written into the model before or as
 * it happens (a cancel or a close is recorded before it is performed).
 * Invariants checked:
 *   - every value whose send returned 0 (or whose select case completed
 *     with err 0) is received exactly once, by a thread or by the final
 *     drain; a value whose send failed or whose case was not chosen is
 *     never received; no value is corrupted or arrives on another channel;
 *   - each receiver sees each sender's values on a channel in order;
 *   - EPIPE only from a channel the model closed, ECANCELED only for a
 *     thread the model cancelled, ETIMEDOUT only after a deadline passed,
 *     EAGAIN only from try_send / try_recv; select's unchosen receive
 *     buffers are untouched;
 *   - a send begun after its channel's close returned never succeeds;
 *   - weft_chan_len never exceeds the capacity;
 *   - every thread ran exactly once and finished; weft_run returns.
 *
 * A variant adds actors that spin for a few ms without switching, with a
 * hog limit of 1 ms, so that the monitor's hand-offs race all of the above.
 *
 * The seed is printed on stderr; WEFT_SEED=<n> replays run n first.
 */
#include "wt_stress.h"

#include <inttypes.h>
#include <limits.h>
#include <unistd.h>

#if WT_SANITIZED
#define SCALE 4
#else
#define SCALE 1
#endif

#define MAX_CHANS 6
#define MAX_SIDS 160
#define MAX_SEQ 8192
#define MAX_ACTORS 160

enum role { SENDER, RECEIVER, SELECTOR, OS_SENDER, OS_RECEIVER, CANCELLER };
static const char *const role_name[] = {"sender",    "receiver",
                                        "selector",  "os-sender",
                                        "os-receiver", "canceller"};

enum { ST_NONE, ST_OK, ST_FAILED };

struct elem {
    uint32_t sid, seq, chan, check;
};

struct actor {
    int id;
    enum role role;
    int sid;                 /* sender identity, -1 if it never sends */
    uint64_t rs;             /* its own PRNG */
    int ops_left;            /* INT_MAX: until every channel is done */
    bool counts;             /* its ops count towards the progress */
    bool timed;              /* works in scopes with deadlines */
    int64_t scope_dl;        /* deadline of the current scope, 0: none */
    bool stop;
    weft_thread *h;          /* virtual threads */
    pthread_t pt;            /* OS threads */
    atomic_bool cancelled;   /* set before weft_cancel */
    atomic_int started, finished;
    bool sclosed[MAX_CHANS]; /* a send on it returned EPIPE */
    bool dead[MAX_CHANS];    /* a receive on it returned EPIPE */
    int last[MAX_CHANS][MAX_SIDS];
    int next_seq;
    /* statistics */
    int nsent, nrecv, nepipe, ncancel, ntimeout, nagain, nselect;
};

static struct {
    uint64_t seed;
    int nchan;
    weft_chan *ch[MAX_CHANS];
    int cap[MAX_CHANS];
    atomic_bool closed[MAX_CHANS]; /* set before weft_chan_close */
    atomic_bool closed_done[MAX_CHANS]; /* set after it returned */
    int nactors;
    int ninitial;                  /* actors the root made */
    int nsids;
    atomic_bool stop_churn;
    atomic_int nvictims;
    struct actor actors[MAX_ACTORS];
    struct actor drain;            /* the final drain, as a receiver */
    atomic_int ops_done;
    int ops_total;
    weft_sem os_done;
    atomic_int ncancels;
    unsigned long long handoffs; /* the monitor's, at the end of the run */
    int ncloses;
} g;

static uint8_t g_status[MAX_SIDS][MAX_SEQ];     /* written by the sender */
static atomic_uchar g_recvd[MAX_SIDS][MAX_SEQ];

static const char *actor_label(const struct actor *a, char *buf, size_t n)
{
    if (!a)
        return "root";
    snprintf(buf, n, "%s %d", role_name[a->role], a->id);
    return buf;
}

#define VIOLATION(a, ...)                                                  \
    do {                                                                   \
        char vbuf_[200], lbuf_[32];                                        \
        snprintf(vbuf_, sizeof vbuf_, __VA_ARGS__);                        \
        wt_fail(__FILE__, __LINE__, "seed %" PRIu64 " %s: %s", g.seed,     \
                actor_label((a), lbuf_, sizeof lbuf_), vbuf_);             \
    } while (0)

/* ---------------------------------------------------------------- values */

static uint32_t checksum(uint32_t sid, uint32_t seq, uint32_t chan)
{
    uint64_t s = g.seed ^ ((uint64_t)sid << 40) ^ ((uint64_t)seq << 8) ^ chan;
    return (uint32_t)wt_splitmix(&s);
}

static struct elem make_elem(struct actor *a, int ch)
{
    struct elem e;
    e.sid = (uint32_t)a->sid;
    e.seq = (uint32_t)a->next_seq++;
    e.chan = (uint32_t)ch;
    e.check = checksum(e.sid, e.seq, e.chan);
    return e;
}

/* A value was received by a from channel ch. */
static void got(struct actor *a, int ch, const struct elem *e)
{
    if (e->sid >= MAX_SIDS || e->seq >= MAX_SEQ ||
        e->check != checksum(e->sid, e->seq, e->chan)) {
        VIOLATION(a, "corrupted value (%u, %u, %u, %08x) from channel %d",
                  e->sid, e->seq, e->chan, e->check, ch);
        return;
    }
    if (e->chan != (uint32_t)ch)
        VIOLATION(a, "value (%u, %u) sent on channel %u received from %d",
                  e->sid, e->seq, e->chan, ch);
    if ((int)e->seq <= a->last[ch][e->sid])
        VIOLATION(a, "channel %d: sender %u's value %u received after %d",
                  ch, e->sid, e->seq, a->last[ch][e->sid]);
    a->last[ch][e->sid] = (int)e->seq;
    if (atomic_fetch_add(&g_recvd[e->sid][e->seq], 1) != 0)
        VIOLATION(a, "value (%u, %u) received twice", e->sid, e->seq);
    a->nrecv++;
}

/* ------------------------------------------------------ result checking */

static bool is_os(struct actor *a)
{
    return a->role == OS_SENDER || a->role == OS_RECEIVER;
}

/* A call on channel ch (or a select, ch < 0) failed with rc; deadline is
 * the select's own (-1 none). Returns true if the actor should stop. */
static bool check_error(struct actor *a, const char *what, int ch, int rc,
                        bool may_again, int64_t deadline)
{
    switch (rc) {
    case EAGAIN:
        if (!may_again)
            VIOLATION(a, "%s returned EAGAIN", what);
        a->nagain++;
        return false;
    case EPIPE:
        if (ch < 0 || !atomic_load(&g.closed[ch]))
            VIOLATION(a, "%s on open channel %d returned EPIPE", what, ch);
        a->nepipe++;
        return false;
    case ECANCELED:
        if (!atomic_load(&a->cancelled))
            VIOLATION(a, "%s returned ECANCELED, nothing cancelled it",
                      what);
        a->ncancel++;
        a->stop = true;
        return true;
    case ETIMEDOUT: {
        int64_t now = weft_now();
        bool own = deadline >= 0 && now >= deadline;
        bool scope = a->scope_dl > 0 && now >= a->scope_dl;
        if (!own && !scope)
            VIOLATION(a, "%s returned ETIMEDOUT before any deadline", what);
        a->ntimeout++;
        return scope; /* a scope deadline ends the round */
    }
    default:
        VIOLATION(a, "%s returned %d", what, rc);
        a->stop = true;
        return true;
    }
}

/* ---------------------------------------------------------------- actions */

/* A random channel among those for which avoid[] is false; with a small
 * probability (or when every channel is avoided) any channel. -1 if all
 * are avoided and `only_live`. */
static int pick_chan(struct actor *a, const bool *avoid, bool only_live)
{
    int live[MAX_CHANS], n = 0;
    for (int c = 0; c < g.nchan; c++)
        if (!avoid[c])
            live[n++] = c;
    if (n == 0)
        return only_live ? -1 : wt_rnd(&a->rs, g.nchan);
    if (!only_live && wt_rnd(&a->rs, 20) == 0)
        return wt_rnd(&a->rs, g.nchan);
    return live[wt_rnd(&a->rs, n)];
}

/* One send. Returns true if the actor should stop (or end its round). */
static bool do_send(struct actor *a)
{
    int ch = pick_chan(a, a->sclosed, false);
    bool known_closed = a->sclosed[ch];
    bool try = is_os(a) ? wt_rnd(&a->rs, 5) == 0 : wt_rnd(&a->rs, 4) == 0;
    struct elem e = make_elem(a, ch);
    bool after_close = atomic_load(&g.closed_done[ch]);
    int rc = try ? weft_chan_try_send(g.ch[ch], &e)
                 : weft_chan_send(g.ch[ch], &e);
    g_status[e.sid][e.seq] = rc == 0 ? ST_OK : ST_FAILED;
    if (after_close && rc == 0)
        VIOLATION(a, "send on channel %d, begun after it was closed, "
                     "returned 0", ch);
    if (known_closed && rc != EPIPE &&
        !(!try && (rc == ECANCELED || rc == ETIMEDOUT)))
        VIOLATION(a, "send on closed channel %d returned %d", ch, rc);
    if (rc == 0) {
        a->nsent++;
        return false;
    }
    if (rc == EPIPE)
        a->sclosed[ch] = true;
    return check_error(a, try ? "try_send" : "send", ch, rc, try, -1);
}

/* One receive. */
static bool do_recv(struct actor *a)
{
    int ch = pick_chan(a, a->dead, false);
    bool known_dead = a->dead[ch];
    bool try = wt_rnd(&a->rs, 4) == 0;
    struct elem e;
    int rc = try ? weft_chan_try_recv(g.ch[ch], &e)
                 : weft_chan_recv(g.ch[ch], &e);
    if (known_dead && rc != EPIPE &&
        !(!try && (rc == ECANCELED || rc == ETIMEDOUT)))
        VIOLATION(a, "receive on drained closed channel %d returned %d", ch,
                  rc);
    if ((int)weft_chan_len(g.ch[ch]) > g.cap[ch])
        VIOLATION(a, "channel %d holds %zu, capacity %d", ch,
                  weft_chan_len(g.ch[ch]), g.cap[ch]);
    if (rc == 0) {
        got(a, ch, &e);
        return false;
    }
    if (rc == EPIPE)
        a->dead[ch] = true;
    if (rc == EAGAIN && wt_rnd(&a->rs, 2))
        weft_yield();
    return check_error(a, try ? "try_recv" : "recv", ch, rc, try, -1);
}

#define SENTINEL 0xFFFFFFFFu

/* One select over 1..3 cases on distinct channels. */
static bool do_select(struct actor *a)
{
    int useful[MAX_CHANS], nu = 0;
    for (int c = 0; c < g.nchan; c++)
        if (!a->dead[c] || (a->sid >= 0 && !a->sclosed[c]))
            useful[nu++] = c;
    if (nu == 0) {
        a->stop = true;
        return true;
    }
    for (int i = nu - 1; i > 0; i--) { /* shuffle */
        int j = wt_rnd(&a->rs, i + 1), t = useful[i];
        useful[i] = useful[j];
        useful[j] = t;
    }
    int n = 1 + wt_rnd(&a->rs, 3);
    if (n > nu)
        n = nu;
    weft_case cs[3];
    struct elem buf[3];
    int chs[3];
    for (int i = 0; i < n; i++) {
        int c = chs[i] = useful[i];
        bool can_send = a->sid >= 0 && !a->sclosed[c];
        bool can_recv = !a->dead[c];
        bool send = can_send && (!can_recv || wt_rnd(&a->rs, 2));
        if (send) {
            buf[i] = make_elem(a, c);
            cs[i] = WEFT_SEND(g.ch[c], &buf[i]);
        } else {
            buf[i] = (struct elem){SENTINEL, SENTINEL, SENTINEL, SENTINEL};
            cs[i] = WEFT_RECV(g.ch[c], &buf[i]);
        }
        cs[i].err = -1;
    }
    int64_t dl;
    int k = wt_rnd(&a->rs, 10);
    if (k < 3)
        dl = -1;
    else if (k < 5)
        dl = 0;
    else
        dl = weft_now() + WT_US(wt_rnd(&a->rs, 3000));
    a->nselect++;
    bool after_close[3];
    for (int i = 0; i < n; i++)
        after_close[i] = atomic_load(&g.closed_done[chs[i]]);
    int r = weft_select(cs, (size_t)n, dl);
    int err = r < 0 ? wt_errno() : 0;
    if (r < -1 || r >= n) {
        VIOLATION(a, "select returned %d for %d cases", r, n);
        a->stop = true;
        return true;
    }
    for (int i = 0; i < n; i++) {
        if (cs[i].kind == WEFT_CASE_SEND) {
            if (i != r) {
                g_status[buf[i].sid][buf[i].seq] = ST_FAILED;
                continue;
            }
            if (cs[i].err == 0) {
                g_status[buf[i].sid][buf[i].seq] = ST_OK;
                a->nsent++;
                if (after_close[i])
                    VIOLATION(a, "select sent on channel %d, closed before "
                                 "the select began", chs[i]);
            } else {
                g_status[buf[i].sid][buf[i].seq] = ST_FAILED;
                if (cs[i].err == EPIPE)
                    a->sclosed[chs[i]] = true;
                else
                    VIOLATION(a, "select send case err %d", cs[i].err);
                check_error(a, "select send case", chs[i], cs[i].err, false,
                            -1);
            }
        } else if (i != r) {
            if (buf[i].sid != SENTINEL || buf[i].seq != SENTINEL ||
                buf[i].chan != SENTINEL || buf[i].check != SENTINEL)
                VIOLATION(a, "select wrote into an unchosen receive case");
        } else if (cs[i].err == 0) {
            got(a, chs[i], &buf[i]);
        } else {
            if (cs[i].err == EPIPE)
                a->dead[chs[i]] = true;
            else
                VIOLATION(a, "select receive case err %d", cs[i].err);
            check_error(a, "select receive case", chs[i], cs[i].err, false,
                        -1);
        }
    }
    if (r >= 0)
        return false;
    if (err == ETIMEDOUT || err == ECANCELED)
        return check_error(a, "select", -1, err, false, dl);
    VIOLATION(a, "select returned -1 with errno %d", err);
    a->stop = true;
    return true;
}

/* Has a nothing left to do: every channel it would use is done for it? */
static bool all_done(struct actor *a)
{
    for (int c = 0; c < g.nchan; c++) {
        bool send_done = a->sid < 0 || a->sclosed[c];
        bool recv_done = a->role == SENDER || a->role == OS_SENDER ||
                         a->dead[c];
        if (!send_done || !recv_done)
            return false;
    }
    return true;
}

/* Runs ops until the budget is spent, the actor must stop, or (true is
 * returned by an action) its scope's deadline passed. */
static void run_ops(struct actor *a)
{
    while (!a->stop && a->ops_left > 0 && a->next_seq < MAX_SEQ - 4) {
        if (all_done(a)) {
            a->stop = true;
            break;
        }
        if (a->ops_left != INT_MAX)
            a->ops_left--;
        if (a->counts)
            atomic_fetch_add(&g.ops_done, 1);
        bool end;
        switch (a->role) {
        case SENDER:
        case OS_SENDER:
            end = do_send(a);
            break;
        case RECEIVER:
        case OS_RECEIVER:
            end = do_recv(a);
            break;
        default:
            end = do_select(a);
            break;
        }
        if (end)
            return;
        if (!is_os(a)) {
            int w = wt_rnd(&a->rs, 40);
            if (w == 0)
                weft_yield();
            else if (w == 2)
                wt_hog(&a->rs);
            else if (w == 1 && weft_sleep(WT_US(wt_rnd(&a->rs, 300))) != 0) {
                if (!atomic_load(&a->cancelled) &&
                    !(a->scope_dl > 0 && weft_now() >= a->scope_dl))
                    VIOLATION(a, "sleep failed, nothing cancelled it");
                if (atomic_load(&a->cancelled))
                    a->stop = true;
                return;
            }
        }
    }
    a->stop = true; /* budget spent, or told to stop */
}

static int actor_body(void *arg)
{
    struct actor *a = arg;
    if (atomic_fetch_add(&a->started, 1) != 0)
        VIOLATION(a, "started twice");
    if (a->timed) {
        while (!a->stop) {
            weft_scope *s = weft_scope_open();
            if (!s) {
                VIOLATION(a, "weft_scope_open failed");
                break;
            }
            a->scope_dl = weft_now() + WT_US(500 + wt_rnd(&a->rs, 10000));
            weft_scope_deadline(s, a->scope_dl);
            run_ops(a);
            int r = weft_scope_close(s);
            if (r != 0 && r != ETIMEDOUT && r != ECANCELED)
                VIOLATION(a, "scope close returned %d", r);
            if (r == ECANCELED && !atomic_load(&a->cancelled))
                VIOLATION(a, "scope close returned ECANCELED");
            a->scope_dl = 0;
        }
    } else {
        run_ops(a);
    }
    atomic_fetch_add(&a->finished, 1);
    return 0;
}

static void *os_actor_main(void *arg)
{
    actor_body(arg);
    weft_sem_release(&g.os_done);
    return NULL;
}

/* ------------------------------------------------------------------- root */

#define RUN_MAX_NS WT_MS(1000 * (1 + WT_SANITIZED))
#define END_MAX_NS WT_MS(200 * SCALE)
#define STALL_NS WT_MS(20)

static struct actor *add_actor(enum role role, uint64_t *rs, bool victim)
{
    struct actor *a = &g.actors[g.nactors];
    a->id = g.nactors++;
    a->role = role;
    a->rs = wt_splitmix(rs);
    a->sid = (role == SENDER || role == SELECTOR || role == OS_SENDER)
                 ? g.nsids++
                 : -1;
    for (int c = 0; c < MAX_CHANS; c++)
        for (int s = 0; s < MAX_SIDS; s++)
            a->last[c][s] = -1;
    int budget = (200 + wt_rnd(rs, 1000)) / SCALE;
    if (victim) {
        a->ops_left = 1 + wt_rnd(rs, 30);
    } else if (role == RECEIVER || role == OS_RECEIVER) {
        a->ops_left = wt_rnd(rs, 2) ? INT_MAX : budget;
    } else if (role != CANCELLER) {
        a->ops_left = budget;
        a->counts = true;
        g.ops_total += budget;
    }
    a->timed = !victim && role != CANCELLER && !is_os(a) && wt_rnd(rs, 10) < 2;
    return a;
}

static void cancel_actor(struct actor *a)
{
    if (is_os(a) || a->role == CANCELLER ||
        atomic_exchange(&a->cancelled, true))
        return;
    atomic_fetch_add(&g.ncancels, 1);
    int r = weft_cancel(a->h);
    if (r != 0)
        VIOLATION(NULL, "weft_cancel returned %d", r);
}

static void cancel_receivers(void)
{
    for (int i = 0; i < g.ninitial; i++)
        if (g.actors[i].role == RECEIVER)
            cancel_actor(&g.actors[i]);
}

/* Spawns short-lived senders and receivers and cancels each after a
 * random moment (often while it waits, sometimes as a partner arrives):
 * a cancelled send must have stored nothing, a cancelled receive must
 * have taken nothing. */
static int churn_body(void *arg)
{
    struct actor *c = arg;
    if (atomic_fetch_add(&c->started, 1) != 0)
        VIOLATION(c, "started twice");
    while (!atomic_load(&g.stop_churn) && g.nactors < MAX_ACTORS &&
           g.nsids < MAX_SIDS) {
        struct actor *v =
            add_actor(wt_rnd(&c->rs, 2) ? SENDER : RECEIVER, &c->rs, true);
        atomic_fetch_add(&g.nvictims, 1);
        v->h = weft_go(actor_body, v);
        if (!v->h) {
            VIOLATION(c, "weft_go failed: errno %d", wt_errno());
            break;
        }
        int w = wt_rnd(&c->rs, 4);
        if (w == 1)
            weft_yield();
        else if (w > 1)
            weft_sleep(WT_US(wt_rnd(&c->rs, 400)));
        cancel_actor(v);
        int r = -1;
        int rc = weft_join(v->h, &r);
        if (rc != 0 || r != 0)
            VIOLATION(v, "join returned %d, result %d", rc, r);
    }
    atomic_fetch_add(&c->finished, 1);
    return 0;
}

/* Waits until the counted ops reach `target`, traffic stalls, or the run
 * has gone on too long. Performs the due cancellations meanwhile. */
static void wait_progress(int target, int64_t t_end, uint64_t *rs,
                          int *cancel_at, int ncancel, int *next_cancel)
{
    int last = -1;
    int64_t last_change = weft_now();
    for (;;) {
        int done = atomic_load(&g.ops_done);
        while (*next_cancel < ncancel && done >= cancel_at[*next_cancel]) {
            (*next_cancel)++;
            int tries = 0;
            struct actor *a;
            do {
                a = &g.actors[wt_rnd(rs, g.ninitial)];
            } while ((is_os(a) || a->role == CANCELLER ||
                      atomic_load(&a->cancelled)) &&
                     ++tries < 50);
            cancel_actor(a);
        }
        int64_t now = weft_now();
        if (done >= target || now > t_end)
            return;
        if (done != last) {
            last = done;
            last_change = now;
        } else if (now - last_change > STALL_NS) {
            return;
        }
        weft_sleep(WT_US(500));
    }
}

static void close_chan(int c)
{
    bool was = atomic_exchange(&g.closed[c], true);
    int r = weft_chan_close(g.ch[c]);
    if (r != (was ? EPIPE : 0))
        VIOLATION(NULL, "close of channel %d returned %d", c, r);
    if (!was)
        g.ncloses++;
    atomic_store(&g.closed_done[c], true);
}

static int root(void *arg)
{
    uint64_t rs = g.seed;
    g.nchan = 2 + wt_rnd(&rs, MAX_CHANS - 1);
    for (int c = 0; c < g.nchan; c++) {
        g.cap[c] = wt_rnd(&rs, 9);
        g.ch[c] = weft_chan_make(sizeof(struct elem), (size_t)g.cap[c]);
        WT_REQUIRE(g.ch[c] != NULL);
        WT_CHECK_EQ(weft_chan_cap(g.ch[c]), g.cap[c]);
    }
    int nsend = 6 + wt_rnd(&rs, 11), nrecv = 3 + wt_rnd(&rs, 8);
    int nsel = 2 + wt_rnd(&rs, 7);
    for (int i = 0; i < nsend; i++)
        add_actor(SENDER, &rs, false);
    for (int i = 0; i < nrecv; i++)
        add_actor(RECEIVER, &rs, false);
    for (int i = 0; i < nsel; i++)
        add_actor(SELECTOR, &rs, false);
    struct actor *churn = wt_rnd(&rs, 4) ? add_actor(CANCELLER, &rs, false)
                                      : NULL;
    int nvirt = g.nactors;
    if (wt_rnd(&rs, 2))
        add_actor(OS_SENDER, &rs, false);
    if (wt_rnd(&rs, 2))
        add_actor(OS_RECEIVER, &rs, false);
    g.ninitial = g.nactors;

    int ncancel = wt_rnd(&rs, 4);
    int cancel_at[4];
    for (int i = 0; i < ncancel; i++)
        cancel_at[i] = g.ops_total * (10 + wt_rnd(&rs, 65)) / 100;
    for (int i = 1; i < ncancel; i++) /* sort */
        for (int j = i; j > 0 && cancel_at[j] < cancel_at[j - 1]; j--) {
            int t = cancel_at[j];
            cancel_at[j] = cancel_at[j - 1];
            cancel_at[j - 1] = t;
        }

    weft_scope *sc = weft_scope_open();
    WT_REQUIRE(sc != NULL);
    for (int i = 0; i < nvirt; i++) {
        struct actor *a = &g.actors[i];
        char name[32];
        snprintf(name, sizeof name, "%s-%d", role_name[a->role], a->id);
        weft_attr at = {0};
        at.name = name;
        a->h = weft_go_with(&at, a->role == CANCELLER ? churn_body
                                                      : actor_body, a);
        WT_REQUIRE(a->h != NULL);
    }
    int nos = 0;
    for (int i = nvirt; i < g.ninitial; i++, nos++)
        WT_REQUIRE_EQ(pthread_create(&g.actors[i].pt, NULL, os_actor_main,
                                     &g.actors[i]), 0);

    int64_t t_start = weft_now();
    int next_cancel = 0;
    wait_progress(g.ops_total * 8 / 10, t_start + RUN_MAX_NS, &rs, cancel_at,
                  ncancel, &next_cancel);
    atomic_store(&g.stop_churn, true);
    if (churn) {
        int r = -1;
        int rc = weft_join(churn->h, &r);
        if (rc != 0 || r != 0)
            VIOLATION(churn, "join returned %d, result %d", rc, r);
        churn->h = NULL;
    }

    /* near the end: close some channels, while traffic still flows */
    int nclose = 1 + wt_rnd(&rs, g.nchan - 1);
    for (int i = 0; i < nclose; i++) {
        close_chan(wt_rnd(&rs, g.nchan));
        if (wt_rnd(&rs, 2))
            weft_sleep(WT_US(wt_rnd(&rs, 2000)));
    }
    /* sometimes the receivers stop first: senders then wait on full
     * channels until the final close fails them */
    if (wt_rnd(&rs, 3) == 0)
        cancel_receivers();
    wait_progress(g.ops_total * 95 / 100, weft_now() + END_MAX_NS, &rs,
                  cancel_at, ncancel, &next_cancel);
    for (int c = 0; c < g.nchan; c++)
        close_chan(c);

    for (int i = 0; i < nvirt; i++) {
        if (!g.actors[i].h)
            continue; /* the canceller, joined already */
        int r = -1;
        int rc = weft_join(g.actors[i].h, &r);
        if (rc != 0 || r != 0)
            VIOLATION(&g.actors[i], "join returned %d, result %d", rc, r);
    }
    WT_CHECK_EQ(weft_scope_close(sc), 0);
    for (int i = 0; i < nos; i++)
        WT_CHECK_EQ(weft_sem_acquire(&g.os_done), 0);
    for (int i = nvirt; i < g.ninitial; i++)
        pthread_join(g.actors[i].pt, NULL);

    /* drain what the receivers left */
    struct actor *d = &g.drain;
    d->role = RECEIVER;
    d->id = -1;
    d->sid = -1;
    for (int c = 0; c < MAX_CHANS; c++)
        for (int s = 0; s < MAX_SIDS; s++)
            d->last[c][s] = -1;
    for (int c = 0; c < g.nchan; c++) {
        struct elem e;
        int r;
        while ((r = weft_chan_try_recv(g.ch[c], &e)) == 0)
            got(d, c, &e);
        if (r != EPIPE)
            VIOLATION(NULL, "drain of channel %d ended with %d", c, r);
        WT_CHECK_EQ(weft_chan_len(g.ch[c]), 0);
        WT_CHECK_EQ(weft_chan_free(g.ch[c]), 0);
    }
    weft_runtime_stats st;
    WT_CHECK_EQ(weft_stats(&st), 0);
    g.handoffs = st.handoffs;
    return 0;
}

/* ------------------------------------------------------------------ runs */

static void reset_model(uint64_t seed)
{
    memset(&g, 0, sizeof g);
    memset(g_status, 0, sizeof g_status);
    for (int s = 0; s < MAX_SIDS; s++)
        for (int q = 0; q < MAX_SEQ; q++)
            atomic_store(&g_recvd[s][q], 0);
    g.seed = seed;
    weft_sem_init(&g.os_done, 0);
}

/* After the run: every value sent is received exactly once, every value
 * not sent never. Returns the number of violations reported. */
static int verify_values(uint64_t seed, long *nok)
{
    int bad = 0;
    *nok = 0;
    for (int s = 0; s < g.nsids; s++) {
        for (int q = 0; q < MAX_SEQ; q++) {
            int st = g_status[s][q];
            int n = atomic_load(&g_recvd[s][q]);
            if (st == ST_OK)
                (*nok)++;
            int want = st == ST_OK ? 1 : 0;
            if (n != want && bad < 8) {
                cr_expect(0, "seed %" PRIu64 ": value (%d, %d) %s was "
                             "received %d times",
                          seed, s, q,
                          st == ST_OK ? "sent" : st == ST_FAILED
                                                      ? "not sent (failed)"
                                                      : "never sent",
                          n);
                bad++;
            }
        }
    }
    return bad;
}

/* A run taking longer than this is a hang (wt_stress.h). */
#define HANG_NS WT_MS(15000 * (1 + 2 * WT_SANITIZED))

/* Checks one seed's run: weft_run returned rc after took ns. */
static void check_run(uint64_t seed, int rc, int64_t took)
{
    int bad = 0;
    for (int id = 0; id < g.nactors; id++) {
        struct actor *a = &g.actors[id];
        if ((atomic_load(&a->started) != 1 ||
             atomic_load(&a->finished) != 1) && bad < 5) {
            cr_expect(0, "seed %" PRIu64 ": %s %d started %d times, "
                         "finished %d times", seed, role_name[a->role],
                      id, atomic_load(&a->started),
                      atomic_load(&a->finished));
            bad++;
        }
    }
    long nok = 0;
    bad += verify_values(seed, &nok);
    long nrecv = 0, nepipe = 0, ncancel = 0, ntimeout = 0, nsel = 0;
    for (int id = 0; id < g.nactors; id++) {
        nrecv += g.actors[id].nrecv;
        nepipe += g.actors[id].nepipe;
        ncancel += g.actors[id].ncancel;
        ntimeout += g.actors[id].ntimeout;
        nsel += g.actors[id].nselect;
    }
    cr_log_info("seed %" PRIu64 ": %d chans, %d threads, %ld sent, "
                "%ld received + %d drained, %ld selects, %ld EPIPE, "
                "%ld ECANCELED, %ld ETIMEDOUT, %d cancels (%d victims), "
                "%lld ms",
                seed, g.nchan, g.nactors, nok, nrecv, g.drain.nrecv,
                nsel, nepipe, ncancel, ntimeout,
                atomic_load(&g.ncancels), atomic_load(&g.nvictims),
                (long long)took / 1000000);
    cr_expect_eq(rc, 0, "seed %" PRIu64 ": weft_run returned %d", seed,
                 rc);
    cr_expect_gt(nok, 100, "seed %" PRIu64 ": only %ld values sent",
                 seed, nok);
    if (wt_hogs) {
        cr_log_info("seed %" PRIu64 ": %llu hand-offs", seed, g.handoffs);
        cr_expect_gt(g.handoffs, 0, "seed %" PRIu64 ": no hand-off", seed);
    }
    wt_assert_clean();
    cr_assert_eq(bad, 0, "seed %" PRIu64 " (replay: WEFT_SEED=%" PRIu64
                         ")", seed, seed);
    cr_assert_eq(rc, 0);
}

static void stress_runs(unsigned procs, int runs)
{
    wt_stress_runs("chan_stress", procs, runs, HANG_NS, reset_model, root,
                   NULL, check_run);
}

Test(chan_stress, random_traffic_one_proc, .timeout = 120)
{
    stress_runs(1, 12);
}

Test(chan_stress, random_traffic_two_procs, .timeout = 120)
{
    stress_runs(2, 12);
}

/* The same with actors that hold their carrier for up to 3 ms now and
 * then, and a hog limit of 1 ms: hand-offs, spares, retired P's and
 * carriers coming back race the traffic, the cancels and the closes. */
Test(chan_stress, random_traffic_with_hand_offs, .timeout = 120)
{
    wt_hogs_on();
    stress_runs(2, 8);
}

/* Without the right to undo a demotion, every carrier that comes back
 * from being stuck ends and its record is reused (as root, the test gives
 * its privileges up first). */
Test(chan_stress, random_traffic_with_hand_offs_unprivileged, .timeout = 120)
{
    wt_drop_privileges();
    wt_hogs_on();
    stress_runs(2, 6);
}
