/* SPDX-License-Identifier: MIT */
/*
 * weft.h — virtual threads for C.
 *
 * The only public header of libweft. Every public name starts with weft_ or
 * WEFT_; every handle is opaque.
 *
 * Error convention: runtime calls return 0 or a positive error number (the
 * pthread convention). Functions that return a handle return NULL and set
 * errno. Each function lists every error it can return.
 *
 * Where a call may be made:
 *   "virtual thread"  only from inside weft_run (a virtual thread);
 *                     elsewhere it fails with EPERM.
 *   "any thread"      from virtual threads and plain OS threads alike; on an
 *                     OS thread a blocking call blocks the OS thread.
 *
 * fork(2). The child of a fork made while weft_run is under way (from a
 * virtual thread or from any OS thread) has no runtime: its one thread,
 * the one that forked, is a plain OS thread of a single-threaded process.
 * weft_self() is NULL there; the libc hooks and the "any thread" calls
 * behave as on an OS thread (read blocks the thread, weft_sleep sleeps,
 * channels and semaphores wait on the thread); the calls that need a
 * virtual thread or the runtime fail with ECHILD instead of EPERM, and
 * so do weft_run and a weft_join of a thread not finished at the fork.
 * Waking a virtual thread of the parent, through an object the child
 * shares with it, does nothing: it never runs in the child. When the
 * virtual thread that forked returns, the child exits (exit(3)) with its
 * result as the status, as from main (a non-zero result whose low byte is
 * 0 exits with 1). The child never uses the parent's io_uring rings or
 * epoll instance. Objects other threads were using at the moment of the
 * fork may be left locked in the child, as pthread mutexes are. exec,
 * system and popen are unaffected.
 */
#ifndef WEFT_H
#define WEFT_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* The version of this header: MAJOR.MINOR.PATCH. CMakeLists.txt's
 * project() VERSION is the one source: configuring refuses a header whose
 * macros differ from it. weft_version() says which library is linked. */
#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 2
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION "0.2.0"

typedef struct weft_thread weft_thread;
typedef struct weft_scope weft_scope;
typedef struct weft_local weft_local;

/* A virtual thread's body: returns 0 on success, else an error number. */
typedef int (*weft_fn)(void *arg);

/* ---------------------------------------------------------------- runtime */

/* Runtime configuration. Zero in any field means "the default"; each default
 * can be overridden by the environment variable named beside it. */
typedef struct weft_config {
    unsigned procs;       /* P slots. Default: online CPUs.     WEFT_PROCS */
    size_t stack_size;    /* default stack address space, bytes,
                             2 KiB .. 1 GiB. Default 256 KiB.   WEFT_STACK
                             Below 16 KiB: compact mode, for
                             millions of tiny threads: stacks
                             share pages, have no guard page
                             of their own (an overflow is
                             reported when it faults below
                             the stack, or by a canary at the
                             next switch) and every switch goes
                             through the scheduler. The root
                             thread keeps a 256 KiB stack.
                             Code in compact threads should be
                             linked with -Wl,-z,now: a lazily
                             bound call needs KiBs of stack. */
    unsigned hog_ms;      /* a thread that holds its carrier
                             this long without a switch (a
                             loop with no calls, a blocking
                             call weft cannot park) gets the
                             rest of its P's threads moved to
                             a spare carrier. Time the kernel
                             kept the carrier off the CPU (other
                             processes busy) does not count: a
                             running thread is stuck once it has
                             also had hog_ms/4 of CPU time.
                             1 .. 60000. Default 10.           WEFT_HOG_MS */
    unsigned max_carriers;/* carrier OS threads at most, spares
                             included; >= procs, <= 4096.
                             Default 256 (or procs if larger). */
    unsigned io;          /* I/O backend: WEFT_IO_AUTO (io_uring
                             where the kernel allows it, else
                             epoll), WEFT_IO_URING, WEFT_IO_EPOLL.
                                        WEFT_IO=auto|uring|epoll */
} weft_config;

enum { WEFT_IO_AUTO = 0, WEFT_IO_URING = 1, WEFT_IO_EPOLL = 2 };

/* Runs fn(arg) as the root virtual thread on a fresh runtime and returns when
 * it and every descendant have finished. Virtual threads run on carrier OS
 * threads the runtime starts; the calling thread meanwhile runs the
 * runtime's monitor. Runs on: any OS thread that is not already a carrier.
 * Returns fn's result, or, when fn returned 0, the first failure of one of
 * its children (ECANCELED if the root was cancelled before that child
 * failed: see weft_scope_close), or:
 *   EINVAL  fn is NULL or a cfg field is out of range
 *   EBUSY   a runtime is already running in this process
 *   ECHILD  called in the child of a fork made while a runtime ran
 *   ENOMEM  the runtime could not be set up
 *   EAGAIN  a carrier OS thread could not be created
 *   EMFILE / ENFILE  no file descriptor for the I/O poller
 *   EDEADLK every virtual thread was blocked for ever (none runnable, no
 *           timer, I/O or offloaded call pending, no OS thread that could
 *           wake one): a dump of every thread went to stderr and the run
 *           ended
 *   (the kernel's error, e.g. ENOSYS, EPERM)  WEFT_IO=uring was asked for
 *           and io_uring cannot be set up */
WEFT_API int weft_run(weft_fn fn, void *arg, const weft_config *cfg);

/* The version of the library the program runs with, "MAJOR.MINOR.PATCH"
 * (WEFT_VERSION is the version of the header it was compiled against).
 * A static string. Runs on: any thread. Never fails. */
WEFT_API const char *weft_version(void);

/* ------------------------------------------------------------------ errno */

/* The address of the calling OS thread's errno, computed afresh at every
 * call: a virtual thread may resume on another carrier OS thread after any
 * call that parks, and each OS thread has its own errno. weft saves and
 * restores errno's value per virtual thread at every switch, but glibc
 * declares __errno_location const, so at -O2 a function that writes errno,
 * parks and then reads errno may reuse the first carrier's address. This
 * function is neither const nor pure, and weft.h defines errno through it
 * (after including <errno.h>), so code that includes weft.h reads the
 * right errno after a park.
 *
 * To keep glibc's errno instead (a translation unit that never keeps errno
 * across a call that may park, and wants the cheaper access), define
 * WEFT_NO_ERRNO_ACCESSOR before including weft.h; then read errno right
 * after the call that set it, never across a call that may park.
 * Runs on: any thread. */
#if defined(__GNUC__)
WEFT_API int *weft_errno_location(void) __attribute__((nothrow));
#else
WEFT_API int *weft_errno_location(void);
#endif

#if !defined(WEFT_NO_ERRNO_ACCESSOR)
#undef errno
#define errno (*weft_errno_location())
#endif

/* ---------------------------------------------------------------- threads */

/* Spawn attributes. Zero-initialise, then set what you need. */
typedef struct weft_attr {
    const char *name;     /* copied (first 31 bytes); NULL: "fn@address" */
    size_t stack_size;    /* bytes of address space; 0: the runtime default */
    bool detached;        /* no handle to join: reclaimed when it finishes */
    bool pinned;          /* runs only on the carrier it first runs on, as
                             after weft_pin (weft_unpin releases it) */
} weft_attr;

/* Thread handles. A weft_thread * is a handle, not an address: it names a
 * thread record and that record's incarnation (records are reused by later
 * spawns). A handle goes stale when its thread is joined (weft_join, or a
 * join case of weft_select), when its scope closes (reaping it unjoined),
 * or, for a detached thread, when the thread ends. Every call that takes a
 * handle refuses a stale one with ESRCH (weft_name: NULL, errno ESRCH),
 * even if its record now runs another thread, which it never touches; so
 * does a handle kept from an earlier weft_run. A stale handle is caught
 * unless its record was reused 2^31 times since. A value that was never a
 * handle is not dereferenced: it is refused unless it happens to equal a
 * current handle. Handles may be compared: one thread's are all equal. */

/* Spawns fn(arg) as a child of the calling virtual thread, in its innermost
 * open scope. The child runs concurrently. Its stack is reserved by the
 * spawn (address space; its pages are touched as the child grows into
 * them), so a spawn that cannot have one fails here, as pthread_create
 * fails with EAGAIN, and the scope and the siblings are untouched: the
 * caller decides (a server closes that connection and goes on). If the
 * caller's run queue is full (256 threads), the caller first yields to
 * them: back pressure on spawn storms. A joinable child's handle is
 * current until weft_join or until its scope closes, whichever comes
 * first; a detached child's until it ends.
 * Runs on: virtual thread. Returns the handle, or NULL with errno:
 *   EPERM   not called from a virtual thread
 *   ECHILD  called in a forked child (see fork(2) above)
 *   EINVAL  fn is NULL, or the stack size is below 16 KiB or above 1 GiB
 *   ENOMEM  no memory for the thread record or its stack (the address-space
 *           limit RLIMIT_AS, or the kernel's overcommit policy; the first
 *           such failure of a burst prints why on stderr) */
WEFT_API weft_thread *weft_go(weft_fn fn, void *arg);
WEFT_API weft_thread *weft_go_with(const weft_attr *attr, weft_fn fn,
                                   void *arg);

/* Waits for t to finish and stores its result in *result if result is not
 * NULL; then t's handle is stale. t's result is fn's return value or,
 * when fn returned 0, its first child failure as weft_scope_close reports
 * it: ECANCELED or ETIMEDOUT if t was cancelled (weft_cancel, or its scope
 * was cancelled or timed out) before that child failed, else the child's
 * result. A cancellation point. Runs on: any thread.
 *   0          t finished
 *   EINVAL     t is NULL, the root thread, detached (still running), or
 *              being joined by another thread
 *   ESRCH      t is stale: already joined, its scope closed, or detached
 *              and ended
 *   EDEADLK    t is the calling thread
 *   ECHILD     in a forked child, t had not finished at the fork
 *   ECANCELED  the caller was cancelled (t stays joinable). A failing
 *              child cancels its scope, hence its parent: a parent that
 *              was already waiting in weft_join gets the child's result;
 *              one that joins only later gets ECANCELED, and learns the
 *              failure from weft_scope_close or its own result.
 *   ETIMEDOUT  the caller's scope deadline passed (t stays joinable) */
WEFT_API int weft_join(weft_thread *t, int *result);

/* Marks t detached: it is reclaimed as soon as it finishes (its handle
 * then goes stale). Its scope still waits for it. Runs on: any thread.
 *   0       done
 *   EINVAL  t is NULL, the root thread, already detached or being joined
 *   ESRCH   t is stale: joined, its scope closed, or detached and ended */
WEFT_API int weft_detach(weft_thread *t);

/* Cancels t and all its descendants: each of their blocking calls, now and
 * later, fails with ECANCELED, except inside shielded scopes
 * (weft_scope_shield). A thread that returns ECANCELED because it was
 * cancelled does not count as a failure of its scope. Runs on: any thread.
 *   0       cancellation requested (idempotent; also when t has finished
 *           but is still joinable)
 *   EINVAL  t is NULL
 *   ESRCH   t is stale: joined, its scope closed, or detached and ended;
 *           no thread is cancelled */
WEFT_API int weft_cancel(weft_thread *t);

/* Lets other runnable virtual threads run. Runs on: any thread (an OS thread
 * calls sched_yield). Returns 0. */
WEFT_API int weft_yield(void);

/* True when the calling virtual thread's innermost scope is cancelled: for
 * loops that compute without blocking. False on an OS thread. */
WEFT_API bool weft_cancelled(void);

/* Pins the calling virtual thread to the carrier OS thread it runs on, for
 * thread-affine handles (an OpenGL context, a library's per-OS-thread
 * state): it still parks when it blocks, and from then on resumes only on
 * that carrier. Nestable: each weft_pin needs one weft_unpin. A carrier
 * with pinned threads never ends; if it is stuck (a hog, a call weft cannot
 * park) longer than hog_ms while a pinned thread is runnable, the thread
 * resumes elsewhere instead and weft_stats counts it (unbound_resumes).
 * weft_attr.pinned starts a thread pinned. Runs on: virtual thread.
 *   0          pinned (or unpinned)
 *   EPERM      not called from a virtual thread (ECHILD in a forked child)
 *   EINVAL     weft_unpin without a matching weft_pin
 *   EOVERFLOW  weft_pin nested 2^32 - 1 deep */
WEFT_API int weft_pin(void);
WEFT_API int weft_unpin(void);

/* The calling virtual thread's handle, or NULL on an OS thread. */
WEFT_API weft_thread *weft_self(void);

/* The thread's name, valid while the handle is current. Runs on: any
 * thread. NULL with errno EINVAL if t is NULL, ESRCH if t is stale. */
WEFT_API const char *weft_name(const weft_thread *t);

/* ----------------------------------------------------------------- scopes */

/* Opens a scope nested in the caller's innermost scope. Threads spawned while
 * it is open belong to it. Runs on: virtual thread. Returns the scope, or
 * NULL with errno:
 *   EPERM   not called from a virtual thread (ECHILD in a forked child)
 *   ENOMEM  no memory */
WEFT_API weft_scope *weft_scope_open(void);

/* Waits until every thread of s (and of scopes nested in it) has finished,
 * reclaims them and closes s, which must be the caller's innermost scope.
 * Not a cancellation point: it always waits.
 *
 * Attribution: a child that fails (finishes with a non-zero result other
 * than its cancellation's reason) cancels s. If it failed before s was
 * cancelled, its failure caused the cancellation, and close reports it.
 * If it failed after, close reports the cancellation's reason instead: a
 * library that is cancelled usually turns ECANCELED into an error of its
 * own (libcurl's "bad argument", a child's EIO), which would otherwise
 * hide that s was cancelled or timed out. Returns:
 *   0          every child succeeded and s was not cancelled
 *   (error)    the first failure of a child, which came before s was
 *              cancelled (its result)
 *   ECANCELED  s was cancelled (weft_scope_cancel, or an enclosing scope or
 *              thread was cancelled, unless s is shielded) and no child
 *              failed first; children that failed after it do not change
 *              this
 *   ETIMEDOUT  s's deadline passed (or an enclosing scope's, unless s is
 *              shielded) and no child failed first (likewise)
 *   EINVAL     s is NULL or not the caller's innermost open scope
 *   EPERM      not called from the virtual thread that opened s
 *              (ECHILD from a forked child) */
WEFT_API int weft_scope_close(weft_scope *s);

/* Cancels s: its threads, the scopes nested in it and the owner's blocking
 * calls inside s fail with ECANCELED until s closes, except inside the
 * shielded scopes among them (weft_scope_shield). Idempotent.
 * Runs on: any thread (s must be open). */
WEFT_API void weft_scope_cancel(weft_scope *s);

/* Sets s's deadline (absolute, weft_now() clock): when it passes, s is
 * cancelled with ETIMEDOUT. A later call replaces an earlier deadline that
 * has not fired; a negative deadline removes it. With no memory for its
 * timer, s is cancelled with ETIMEDOUT at once: a deadline that cannot be
 * kept is not dropped. Runs on: any thread. */
WEFT_API void weft_scope_deadline(weft_scope *s, int64_t deadline_ns);

/* Shields s, the caller's innermost open scope, from the cancellations of
 * what encloses it, for cleanup that must wait (a flush, a goodbye, a
 * rollback) in a thread that is or may be cancelled: Trio's shielded
 * cancel scope. Until s closes, a cancel of an enclosing scope or of a
 * thread it is nested in (weft_scope_cancel, weft_cancel, a failing
 * child, a deadline passing) no longer reaches s's threads, the scopes
 * nested in s, or the caller's blocking calls inside s. What is s's own
 * still cancels it: weft_scope_cancel(s), s's deadline, a failing thread
 * of s; and so do the cancels of the scopes and threads nested in s.
 *
 * A cancellation of an enclosing scope already in force in s (s inherits
 * one when it is opened in a cancelled scope, or it came since) is lifted:
 * the next blocking calls in s wait. A call it already ended keeps its
 * error; a thread that returns that error does not count as failing.
 * weft_scope_close(s) reports only what is s's own. Once s is closed, the
 * enclosing cancellation is in force again: the caller's next blocking
 * call fails with ECANCELED (or ETIMEDOUT), and weft_cancelled() is true.
 * Runs on: virtual thread (the one that opened s).
 *   0       s is shielded (also when it already was)
 *   EINVAL  s is NULL, or not the caller's innermost open scope (another
 *           thread's, or one with a scope open inside it)
 *   EPERM   not called from a virtual thread (ECHILD in a forked child) */
WEFT_API int weft_scope_shield(weft_scope *s);

/* ------------------------------------------------------------------- time */

/* Durations, in nanoseconds (the unit of every time in this API), as
 * int64_t constants: 3 * WEFT_SEC does not overflow an int, and
 * weft_now() + 150 * WEFT_MSEC is a deadline. Usable in constant
 * expressions (_Static_assert, case labels), not in #if: each is a cast. */
#define WEFT_NSEC ((int64_t)1)
#define WEFT_USEC ((int64_t)1000)
#define WEFT_MSEC ((int64_t)1000000)
#define WEFT_SEC ((int64_t)1000000000)

/* Monotonic clock, nanoseconds. Runs on: any thread. */
WEFT_API int64_t weft_now(void);

/* Sleeps ns nanoseconds (<= 0: returns at once, after a cancellation check).
 * A cancellation point. Runs on: any thread.
 *   0          slept
 *   ECANCELED  cancelled
 *   ETIMEDOUT  the scope's deadline passed first
 *   ENOMEM     no memory for its timer (it did not sleep)
 * Every wait with a deadline (weft_select, the timed waits, I/O with a
 * deadline) fails the same way, with ENOMEM, when its timer cannot be had. */
WEFT_API int weft_sleep(int64_t ns);

/* --------------------------------------------------------------- channels */

typedef struct weft_chan weft_chan;

/* A bounded multi-producer multi-consumer channel of elements of elem_size
 * bytes, copied in and out. capacity 0 makes it a rendezvous: a send
 * completes only when a receiver takes the value. Usable from virtual and
 * OS threads alike (on an OS thread a blocking call blocks the OS thread).
 * Returns the channel, or NULL with errno:
 *   EINVAL  elem_size is 0 or above 65536, or capacity above 2^30
 *   ENOMEM  no memory */
WEFT_API weft_chan *weft_chan_make(size_t elem_size, size_t capacity);

/* Sends *elem: hands it to a waiting receiver, or buffers it, or waits for
 * one of the two. A cancellation point (and the scope's deadline applies).
 *   0          sent (taken by a receiver or buffered)
 *   EPIPE      the channel is closed (nothing was stored)
 *   ECANCELED  cancelled before it was sent (nothing was stored)
 *   ETIMEDOUT  the scope's deadline passed first (nothing was stored)
 *   EINVAL     c or elem is NULL */
WEFT_API int weft_chan_send(weft_chan *c, const void *elem);

/* Receives into *elem: from the buffer, from a waiting sender, or waits.
 * A closed channel still yields what it buffered, then EPIPE.
 *   0 / EPIPE (closed and drained) / ECANCELED / ETIMEDOUT / EINVAL */
WEFT_API int weft_chan_recv(weft_chan *c, void *elem);

/* Never wait: EAGAIN instead of blocking. Otherwise as above (not
 * cancellation points). */
WEFT_API int weft_chan_try_send(weft_chan *c, const void *elem);
WEFT_API int weft_chan_try_recv(weft_chan *c, void *elem);

/* Closes c: later sends fail with EPIPE; every waiting sender is woken with
 * EPIPE and every waiting receiver gets EPIPE once the buffer is drained.
 *   0 / EPIPE (already closed) / EINVAL (c is NULL) */
WEFT_API int weft_chan_close(weft_chan *c);

/* Frees c. Refuses while a thread is blocked on it (in send, recv or
 * select): the channel is then left intact.
 *   0 / EBUSY (threads wait on it) / EINVAL (c is NULL) */
WEFT_API int weft_chan_free(weft_chan *c);

/* Elements buffered now (a snapshot), and the capacity. */
WEFT_API size_t weft_chan_len(weft_chan *c);
WEFT_API size_t weft_chan_cap(weft_chan *c);

/* ----------------------------------------------------------------- select */

enum { WEFT_CASE_SEND = 1, WEFT_CASE_RECV = 2, WEFT_CASE_JOIN = 3 };

/* One case of weft_select. Build with the macros below (in C++ too, which
 * lists these fields in this order: keep the two in step); err is set on the
 * case that completed: 0, or EPIPE (a send or receive on a closed channel:
 * nothing was sent / nothing received). The opaque space holds the case's
 * waiter while the select waits: a select allocates nothing. */
typedef struct weft_case {
    int kind;
    int err;               /* out */
    weft_chan *chan;
    void *elem;            /* send: the value; receive: the destination */
    weft_thread *thread;   /* join */
    int *result;           /* join: the thread's result (may be NULL) */
    uint64_t opaque_[8];
} weft_case;

/* A case that sends *p on ch, receives into *p from ch, or joins t (its
 * result into *r). Each is a weft_case value; the other fields zero. */
#ifndef __cplusplus
#define WEFT_SEND(ch, p) \
    ((weft_case){.kind = WEFT_CASE_SEND, .chan = (ch), .elem = (void *)(p)})
#define WEFT_RECV(ch, p) \
    ((weft_case){.kind = WEFT_CASE_RECV, .chan = (ch), .elem = (p)})
#define WEFT_JOIN(t, r) \
    ((weft_case){.kind = WEFT_CASE_JOIN, .thread = (t), .result = (r)})
#else
/* ISO C++ has no compound literals, and designated initialisers only
 * from C++20: there the same values are list-initialised, every field in
 * the order of the struct (prvalues, where C's are lvalues). */
#define WEFT_SEND(ch, p)                                                    \
    (weft_case{WEFT_CASE_SEND, 0, (ch),                                     \
               const_cast<void *>(static_cast<const void *>(p)), nullptr,   \
               nullptr, {0}})
#define WEFT_RECV(ch, p)                                                    \
    (weft_case{WEFT_CASE_RECV, 0, (ch), (p), nullptr, nullptr, {0}})
#define WEFT_JOIN(t, r)                                                     \
    (weft_case{WEFT_CASE_JOIN, 0, nullptr, nullptr, (t), (r), {0}})
#endif

/* Completes exactly one of the n cases, chosen at random among those ready
 * (so no case starves), waiting until one is if none is; the others are
 * left untouched (a join not chosen can still be joined). A join case that
 * completes joins the thread: its handle is then stale. deadline_ns:
 * negative none, 0 poll, else absolute (weft_now clock). A cancellation point.
 * Returns the index of the completed case, or -1 with errno:
 *   ETIMEDOUT  the deadline (or the scope's deadline) passed
 *   ECANCELED  cancelled
 *   ENOMEM     no memory for the deadline's timer
 *   EINVAL     cases is NULL, n is 0 or above 1024, a case is malformed, or
 *              a join case's thread is the root, detached (still running)
 *              or being joined elsewhere
 *   ESRCH      a join case's handle is stale (weft_join); nothing is taken
 *              through the other cases, even ready ones
 *   EDEADLK    a join case names the calling thread (as weft_join) */
WEFT_API int weft_select(weft_case *cases, size_t n, int64_t deadline_ns);

/* ------------------------------------------------------ synchronisation */

/* Fixed-size opaque objects that may be static or on the stack. All-zero is
 * the initial state (WEFT_*_INIT). They work from virtual threads and OS
 * threads alike, and may be shared between the two. */
typedef struct weft_mutex { uint64_t opaque_[4]; } weft_mutex;
typedef struct weft_cond { uint64_t opaque_[4]; } weft_cond;
typedef struct weft_sem { uint64_t opaque_[4]; } weft_sem;

#define WEFT_MUTEX_INIT {{0, 0, 0, 0}}
#define WEFT_COND_INIT {{0, 0, 0, 0}}
#define WEFT_SEM_INIT(n) {{(uint64_t)(n), 0, 0, 0}}

/* A mutex has an owner: the virtual thread that locked it, or the OS
 * thread, for a lock taken outside any virtual thread. Only the owner may
 * unlock it or wait on a condition with it (a virtual thread that moved
 * to another carrier is still the owner).
 * Locks m (not a cancellation point: a lock is always acquired).
 *   0 / EINVAL (m is NULL) / EDEADLK (the caller already holds m) */
WEFT_API int weft_mutex_lock(weft_mutex *m);
/*   0 / EBUSY (held, by the caller too) / EINVAL */
WEFT_API int weft_mutex_trylock(weft_mutex *m);
/*   0 / EINVAL (m is NULL) / EPERM (m is not locked, or another thread
 *   holds it: m is left as it was) */
WEFT_API int weft_mutex_unlock(weft_mutex *m);

/* Atomically unlocks m and waits for a signal; re-locks m before returning,
 * whatever the result (but EPERM). A cancellation point. deadline_ns:
 * absolute (weft_now clock), or negative for none.
 *   0          signalled (or a spurious wake-up: re-check your predicate)
 *   ETIMEDOUT  the deadline (or the scope's deadline) passed
 *   ECANCELED  cancelled
 *   ENOMEM     (weft_cond_timedwait) no memory for the deadline's timer
 *   EINVAL     c or m is NULL
 *   EPERM      the caller does not hold m: nothing is waited for, and m
 *              is left as it was (not unlocked, not locked) */
WEFT_API int weft_cond_wait(weft_cond *c, weft_mutex *m);
WEFT_API int weft_cond_timedwait(weft_cond *c, weft_mutex *m,
                                 int64_t deadline_ns);
/*   0 / EINVAL */
WEFT_API int weft_cond_signal(weft_cond *c);
WEFT_API int weft_cond_broadcast(weft_cond *c);

/* Counting semaphore. weft_sem_init may be used instead of WEFT_SEM_INIT.
 *   0 / EINVAL (s is NULL or n > INT32_MAX) */
WEFT_API int weft_sem_init(weft_sem *s, unsigned n);
/* Takes one unit, waiting for it if none is free. A cancellation point.
 *   0 / ECANCELED / ETIMEDOUT / EINVAL */
WEFT_API int weft_sem_acquire(weft_sem *s);
/* As weft_sem_acquire, giving up at deadline_ns (absolute; negative: none;
 * 0: poll).
 *   0 / ECANCELED / EINVAL
 *   ETIMEDOUT  deadline_ns (with 0: no unit was free), or the scope's
 *              deadline, passed
 *   ENOMEM     no memory for the deadline's timer */
WEFT_API int weft_sem_timedacquire(weft_sem *s, int64_t deadline_ns);
/* Gives one unit back, directly to the longest waiter if there is one.
 *   0 / EINVAL / EOVERFLOW (the count would pass INT32_MAX) */
WEFT_API int weft_sem_release(weft_sem *s);

/* Readers-writer lock: any number of readers at once, or one writer.
 * Static with WEFT_RWLOCK_INIT (all zero). Writers first, in turns: a
 * reader does not enter while a writer holds it or waits for it, so
 * readers cannot starve a writer; a writer that leaves lets in every
 * reader that was waiting, all at once, before the next writer, so
 * writers cannot starve readers. Waiting writers enter one at a time, in
 * the order they came (a writer that comes as the last reader leaves may
 * pass them). Not a cancellation point (as weft_mutex): a lock is always
 * acquired. Runs on: any thread.
 *
 * The writer has an owner, as a mutex does (a virtual thread, or an OS
 * thread); readers are not recorded. So a thread that holds a read lock
 * must not take it again, to read or to write: behind a waiting writer
 * it would wait for itself. */
typedef struct weft_rwlock { uint64_t opaque_[6]; } weft_rwlock;

#define WEFT_RWLOCK_INIT {{0, 0, 0, 0, 0, 0}}

/* Takes rl to read, waiting while a writer holds it or waits for it.
 *   0
 *   EINVAL   rl is NULL
 *   EDEADLK  the caller holds rl to write
 *   EAGAIN   2^29 - 1 read locks are held already */
WEFT_API int weft_rwlock_rdlock(weft_rwlock *rl);
/* Takes rl to write, waiting until no one holds it.
 *   0 / EINVAL (rl is NULL) / EDEADLK (the caller holds rl to write) */
WEFT_API int weft_rwlock_wrlock(weft_rwlock *rl);
/* As weft_rwlock_rdlock, never waiting.
 *   0 / EBUSY (a writer holds rl or waits for it: the caller too) /
 *   EINVAL / EAGAIN */
WEFT_API int weft_rwlock_tryrdlock(weft_rwlock *rl);
/* As weft_rwlock_wrlock, never waiting.
 *   0 / EBUSY (held, by the caller too) / EINVAL */
WEFT_API int weft_rwlock_trywrlock(weft_rwlock *rl);
/* Releases the caller's hold of rl: its write lock if it holds it to
 * write, else one read lock.
 *   0
 *   EINVAL  rl is NULL
 *   EPERM   rl is not held, or another thread holds it to write: rl is
 *           left as it was. (An unlock by a thread that holds no read
 *           lock while others read is not detected: it releases one of
 *           theirs.) */
WEFT_API int weft_rwlock_unlock(weft_rwlock *rl);

/* ---------------------------------------------------------- context locals */

/* A context-local key. A child sees its parent's values as they were when it
 * was spawned; setting a value never changes what the parent (or an already
 * spawned child) sees. dtor, if not NULL, is called once for each non-NULL
 * value a thread set, when that thread finishes (after its children).
 * Returns the key, or NULL with errno ENOMEM. Keys live until exit. */
WEFT_API weft_local *weft_local_new(void (*dtor)(void *value));
/* The caller's value for k; NULL if unset, k is NULL or on an OS thread. */
WEFT_API void *weft_local_get(weft_local *k);
/*   0 / EINVAL (k is NULL) / EPERM (not a virtual thread; ECHILD in a
 *   forked child) / ENOMEM */
WEFT_API int weft_local_set(weft_local *k, void *value);

/* ----------------------------------------------------------- pthread keys */

/* libweft defines pthread_key_create, pthread_key_delete,
 * pthread_getspecific and pthread_setspecific (and C11's tss_create,
 * tss_delete, tss_get, tss_set): on a virtual thread a key's value is the
 * virtual thread's own, whichever carrier it runs on, and its destructor
 * runs when the virtual thread's function has returned, on its stack (POSIX
 * rounds, at most PTHREAD_DESTRUCTOR_ITERATIONS). On OS threads keys are
 * glibc's, unchanged. WEFT_KEYS=carrier in the environment when a key is
 * created (or WEFT_HOOKS=0) makes that key the carrier's.
 *
 * weft_key_per_carrier makes one key the carrier's, as on an OS thread:
 * for libraries that use a key as a per-OS-thread cache rather than as
 * per-thread state. Call it right after creating the key: from then on,
 * a virtual thread reads and writes its carrier's value, and values
 * virtual threads set before are no longer seen (their destructors still
 * run at those threads' ends). Any thread; idempotent.
 *   0
 *   EINVAL  key is not a live key made with pthread_key_create or
 *           tss_create (never made, deleted, or made by code that reached
 *           glibc without libweft's definitions) */
WEFT_API int weft_key_per_carrier(pthread_key_t key);

/* ---------------------------------------------------------------- offload */

/* Runs fn(arg) on a pool OS thread and parks the calling virtual thread
 * until it returns: for blocking functions weft cannot park in (a library
 * call that blocks, a slow computation that never yields). Returns fn's
 * result, or:
 *   ECANCELED / ETIMEDOUT  the caller was cancelled (or its scope's
 *                          deadline passed) first. The caller returns at
 *                          once; fn, if a pool thread already runs it,
 *                          runs to its end and its result is dropped; if
 *                          none had picked it up yet, it never runs. So
 *                          arg must stay valid until fn returns: give it
 *                          storage fn owns (or frees), not the caller's
 *                          stack, when the call may be cancelled.
 *   EAGAIN  no pool thread could be started and none is free
 *   ENOMEM
 *   EINVAL  fn is NULL
 * The pool grows on demand to WEFT_OFFLOAD_THREADS threads (default 64);
 * further calls queue. WEFT_OFFLOAD_THREADS=0 runs fn on the caller's own
 * carrier instead, marked as blocking: the monitor moves the carrier's
 * other threads to a spare after about 1 ms.
 * Runs on: any thread; on an OS thread fn simply runs there. */
WEFT_API int weft_offload(weft_fn fn, void *arg);

/* -------------------------------------------------------------------- I/O */

/* Blocking I/O that parks only the calling virtual thread. Each function has
 * the contract of its libc twin (return value, errno, short counts), with
 * these additions on a virtual thread:
 *   - while the fd has no data (or no room), the thread parks and its
 *     carrier runs other threads; the fd's file status flags are unchanged
 *     as the program sees them (weft makes it non-blocking underneath and
 *     hides that, see weft_fcntl). An fd the program itself made
 *     O_NONBLOCK keeps EAGAIN.
 *   - cancellation and scope deadlines end the wait: -1 with errno
 *     ECANCELED / ETIMEDOUT when nothing was transferred, else the short
 *     count of what was (no data already moved is lost). The fd stays
 *     usable.
 *   - SO_RCVTIMEO / SO_SNDTIMEO are honoured (EAGAIN when they pass).
 *   - -1 with errno ENOMEM when weft cannot get what it needs to wait for
 *     the fd (memory, or the carrier's io_uring ring and its eventfd).
 *   - on a regular file, under epoll (the offload pool): -1 with errno
 *     EAGAIN (no pool thread could be started and none is free), ENOMEM
 *     or EMFILE (no fd for the copy of fd the pool works on); rarely,
 *     under io_uring, EAGAIN (the carrier's submission queue was full).
 *   - weft_write, weft_send and friends on a stream write everything, as a
 *     blocking libc call does, unless cancelled or an error occurs midway.
 * On an OS thread (or with WEFT_HOOKS=0 for the interposed libc names) each
 * is the plain libc call. Regular files, and fds the poller cannot watch,
 * go through io_uring, or, under epoll, the offload pool (weft_offload).
 * Standard input, output and error are never made non-blocking (their
 * flags are shared with other processes): reads and writes on them run as
 * marked blocking calls, and the monitor moves the carrier's other threads
 * away while they block. */
WEFT_API ssize_t weft_read(int fd, void *buf, size_t n);
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t n);
WEFT_API ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt);
WEFT_API ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt);
WEFT_API ssize_t weft_pread(int fd, void *buf, size_t n, off_t off);
WEFT_API ssize_t weft_pwrite(int fd, const void *buf, size_t n, off_t off);
WEFT_API int weft_fsync(int fd);
WEFT_API ssize_t weft_recv(int fd, void *buf, size_t n, int flags);
WEFT_API ssize_t weft_send(int fd, const void *buf, size_t n, int flags);
WEFT_API ssize_t weft_recvfrom(int fd, void *buf, size_t n, int flags,
                               struct sockaddr *from, socklen_t *fromlen);
WEFT_API ssize_t weft_sendto(int fd, const void *buf, size_t n, int flags,
                             const struct sockaddr *to, socklen_t tolen);
WEFT_API ssize_t weft_recvmsg(int fd, struct msghdr *msg, int flags);
WEFT_API ssize_t weft_sendmsg(int fd, const struct msghdr *msg, int flags);
WEFT_API int weft_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
WEFT_API int weft_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen,
                          int flags);
WEFT_API int weft_connect(int fd, const struct sockaddr *addr,
                          socklen_t addrlen);
/* poll(2): timeout_ms -1 waits for ever, 0 polls. A virtual thread parks
 * until an fd is ready, the time-out passes (0), or it is cancelled (-1,
 * ECANCELED / ETIMEDOUT). */
WEFT_API int weft_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms);
/* Closes fd, first waking every virtual thread waiting on it (their calls
 * fail with EBADF). Use it, or close(2) while interposition is on, for fds
 * weft has waited on: the poller must forget an fd before its number is
 * reused. */
WEFT_API int weft_close(int fd);
/* fcntl(2) for the commands that take an int (or nothing), with
 * O_NONBLOCK in F_GETFL / F_SETFL as the program set it, not as weft set
 * it underneath. */
WEFT_API int weft_fcntl(int fd, int cmd, ...);

/* Parks the caller until fd is ready for events (POLLIN, POLLOUT, or
 * both), deadline_ns (weft_now() clock; -1 none) passes, or the caller is
 * cancelled. Error conditions and hang-up count as ready. Returns:
 *   0 / ETIMEDOUT (deadline_ns, or the scope's deadline) / ECANCELED /
 *   EBADF (fd is negative or not open, or was closed with weft_close
 *   meanwhile; checked before any wait, deadline 0 included) /
 *   EINVAL (no event asked for) /
 *   ENOMEM (no memory for the fd's record or the deadline's timer, or no
 *   io_uring ring for the carrier) /
 *   another error of poll(2) or of watching fd in the poller (ENOSPC
 *   from epoll_ctl, say)
 * Runs on: any thread (an OS thread blocks in poll(2)). */
WEFT_API int weft_wait_fd(int fd, short events, int64_t deadline_ns);

/* ----------------------------------------------------------- observability */

/* A snapshot of the scheduler and the monitor (weft_stats). */
typedef struct weft_runtime_stats {
    unsigned procs;              /* P slots (weft_config.procs) */
    unsigned carriers;           /* carrier OS threads, spares included */
    unsigned carriers_idle;      /* ... of which parked, without a P */
    unsigned carriers_running;   /* ... holding a P (stuck ones included) */
    unsigned stuck;              /* carriers the monitor found stuck and
                                    that have not come back yet */
    unsigned long long handoffs; /* hand-offs since weft_run began */
    unsigned long long handoffs_blocking; /* ... of which the carrier was
                                    inside a call marked blocking (a file
                                    read, a pthread lock wait) past 1 ms;
                                    the rest are hogs and unhooked
                                    blocking calls */
    unsigned long long longest_hog_ns; /* the longest a thread held its
                                    carrier without a switch, among those
                                    handed off (0: none yet) ... */
    unsigned long long longest_hog_id;   /* ... that thread's id ... */
    char longest_hog_name[32];   /* ... and name */
    unsigned offload_threads;    /* weft_offload pool threads */
    unsigned offload_busy;       /* ... of which running a call */
    char io_backend[8];          /* "uring" or "epoll" */
    unsigned io_waiting;         /* virtual threads waiting on an fd */
    unsigned long long io_batched; /* socket and pipe transfers submitted
                                    in batches (io_uring; 0 under epoll) */
    unsigned long long io_batch_submits; /* ... and the system calls that
                                    submitted them */
    unsigned bound;              /* threads bound to their carrier: pinned,
                                    or parked inside a call from foreign
                                    code (see README, "Foreign code") */
    unsigned long long unbound_resumes; /* bound threads that resumed on
                                    another carrier because theirs was
                                    stuck longer than hog_ms */
    unsigned lock_pinned;        /* threads holding a pthread lock: their
                                    waits block their carrier */
} weft_runtime_stats;

/* Fills *out. Runs on: any thread, while weft_run runs.
 *   0 / EINVAL (out is NULL) / ESRCH (no runtime is running) */
WEFT_API int weft_stats(weft_runtime_stats *out);

/* Writes every virtual thread as a tree (thread -> scopes -> children) with
 * its id, name, state and what it waits on, and the carriers and P's, to fd.
 * Safe to call while threads run, from any thread. While weft_run runs,
 * SIGQUIT writes the same dump to stderr and the program goes on
 * (WEFT_DUMP_SIGNAL=<n> picks another signal, 0 turns it off). */
WEFT_API void weft_dump(int fd);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
