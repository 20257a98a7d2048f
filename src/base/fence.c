/* SPDX-License-Identifier: MIT */
/*
 * fence.c — the heavy side of the asymmetric fence (fence.h), and its
 * registration with the kernel.
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/fence.h"
#include "base/real.h"

bool weft__fence_asym;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static long membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0);
}

static void registration(void)
{
    long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    weft__fence_asym =
        cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

void weft__fence_init(void)
{
    weft__real(pthread_once)(&once, registration);
}

void weft__fence_heavy(void)
{
    if (!weft__fence_asym || membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED))
        atomic_thread_fence(memory_order_seq_cst);
}
