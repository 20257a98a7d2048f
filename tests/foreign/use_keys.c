/* SPDX-License-Identifier: MIT */
/*
 * use_keys.c — a shared library for tests/keys.c that uses pthread keys the
 * way OpenSSL keeps its error queue: its references are glibc's versioned
 * names (pthread_getspecific@GLIBC_2.34), which libweft's unversioned
 * definitions must satisfy.
 */
#include <pthread.h>

void *wt_keylib_get(pthread_key_t k)
{
    return pthread_getspecific(k);
}

int wt_keylib_set(pthread_key_t k, void *v)
{
    return pthread_setspecific(k, v);
}
