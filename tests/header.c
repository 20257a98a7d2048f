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

int header_select(weft_chan *c, weft_thread *t);

/* A const value to send, a place to receive into, a result to join. */
int header_select(weft_chan *c, weft_thread *t)
{
    const int value = 1;
    int into = 0, result = 0;
    weft_case cases[] = {WEFT_SEND(c, &value), WEFT_RECV(c, &into),
                         WEFT_JOIN(t, &result)};
    int i = weft_select(cases, sizeof cases / sizeof cases[0], weft_now());
    if (i < 0)
        return errno;
    weft_mutex_lock(&mutex);
    weft_cond_signal(&cond);
    weft_mutex_unlock(&mutex);
    return weft_sem_release(&sem) + cases[i].err;
}
