/* SPDX-License-Identifier: MIT */
/*
 * header.c — weft.h on its own, with each of its macros used, compiled
 * (never run) by every compiler and language weft supports: C11 with
 * -Wall -Wextra -Wpedantic under gcc and clang, C++17 with
 * -pedantic-errors under g++ and clang++, each with -Werror (the
 * weft.header.* tests, tests/CMakeLists.txt). The file is valid C and C++.
 */
#include <weft.h>

static weft_mutex mutex = WEFT_MUTEX_INIT;
static weft_cond cond = WEFT_COND_INIT;
static weft_sem sem = WEFT_SEM_INIT(2);
static weft_rwlock rwlock = WEFT_RWLOCK_INIT;
static const char version[] = WEFT_VERSION;
static const int version_number[] = {WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
                                     WEFT_VERSION_PATCH};

int header_uses(weft_chan *c, weft_thread *t);

/* Each macro in use: a const value to send, a place to receive into, a
 * result to join, a deadline in the time units, the static objects. */
int header_uses(weft_chan *c, weft_thread *t)
{
    const int value = 1;
    int into = 0, result = 0;
    weft_case cases[] = {WEFT_SEND(c, &value), WEFT_RECV(c, &into),
                         WEFT_JOIN(t, &result)};
    int64_t deadline = weft_now() + WEFT_SEC + WEFT_MSEC + WEFT_USEC +
                       WEFT_NSEC;
    int i = weft_select(cases, sizeof cases / sizeof cases[0], deadline);
    if (i < 0)
        return errno;
    weft_mutex_lock(&mutex);
    weft_cond_signal(&cond);
    weft_mutex_unlock(&mutex);
    weft_rwlock_rdlock(&rwlock);
    weft_rwlock_unlock(&rwlock);
    return weft_sem_release(&sem) + cases[i].err + version[0] +
           version_number[0];
}
