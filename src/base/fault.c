/* SPDX-License-Identifier: MIT */
/*
 * fault.c — the counters behind weft__fault (base/fault.h). Compiled to
 * nothing unless WEFT_FAULTS is defined: only the weft_faults library,
 * which the fault tests link, carries them.
 *
 * Invariant: calls[k] counts every weft__fault(k) since k was last armed;
 * a call fails when its number equals at[k] (or, with from[k], is at
 * least at[k]); at[k] == 0 means disarmed. Each word is atomic, so calls
 * from any number of threads are counted exactly; nothing orders them
 * with the arming (relaxed), so a call made on another thread while a
 * test arms may be counted under the old setting. Tests arm before
 * weft_run, or from a virtual thread while the workload is quiet.
 */
#ifdef WEFT_FAULTS

#include <errno.h>
#include <stdatomic.h>

#include "base/fault.h"

static _Atomic unsigned calls[WEFT__FAULT_NKINDS];
static _Atomic unsigned failed[WEFT__FAULT_NKINDS];
static _Atomic unsigned at[WEFT__FAULT_NKINDS];
static _Atomic bool from[WEFT__FAULT_NKINDS];

static const int fault_errno[WEFT__FAULT_NKINDS] = {
    [WEFT__FAULT_ALLOC] = ENOMEM, [WEFT__FAULT_MMAP] = ENOMEM,
    [WEFT__FAULT_THREAD] = EAGAIN, [WEFT__FAULT_RING] = ENOMEM,
    [WEFT__FAULT_FD] = EMFILE,
};

bool weft__fault(weft__fault_kind k)
{
    unsigned n = atomic_fetch_add_explicit(&calls[k], 1,
                                           memory_order_relaxed) + 1;
    unsigned a = atomic_load_explicit(&at[k], memory_order_relaxed);
    bool all = atomic_load_explicit(&from[k], memory_order_relaxed);
    if (!a || (n != a && !(all && n > a)))
        return false;
    atomic_fetch_add_explicit(&failed[k], 1, memory_order_relaxed);
    errno = fault_errno[k];
    return true;
}

void weft__fault_arm(weft__fault_kind k, unsigned n, bool every_after)
{
    atomic_store_explicit(&at[k], 0, memory_order_relaxed);
    atomic_store_explicit(&calls[k], 0, memory_order_relaxed);
    atomic_store_explicit(&failed[k], 0, memory_order_relaxed);
    atomic_store_explicit(&from[k], every_after, memory_order_relaxed);
    atomic_store_explicit(&at[k], n, memory_order_relaxed);
}

unsigned weft__fault_calls(weft__fault_kind k)
{
    return atomic_load_explicit(&calls[k], memory_order_relaxed);
}

unsigned weft__fault_failed(weft__fault_kind k)
{
    return atomic_load_explicit(&failed[k], memory_order_relaxed);
}

#endif
