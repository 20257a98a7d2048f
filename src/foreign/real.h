/*
 * real.h — glibc's pthread lock and key calls, for libweft's own use.
 *
 * libweft defines pthread_mutex_lock and friends (foreign/locks.c) so
 * that code it never compiled pins or parks virtual threads. The
 * runtime's own locks (the offload pool's, its once-initialisers) must not
 * count as the program's: they call glibc through these, never the hooks.
 */
#ifndef WEFT_FOREIGN_REAL_H
#define WEFT_FOREIGN_REAL_H

#include <pthread.h>
#include <time.h>

int weft__real_mutex_lock(pthread_mutex_t *mx);
int weft__real_mutex_unlock(pthread_mutex_t *mx);
int weft__real_cond_signal(pthread_cond_t *c);
int weft__real_cond_broadcast(pthread_cond_t *c);
int weft__real_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *mx,
                              const struct timespec *abs);
int weft__real_once(pthread_once_t *once, void (*fn)(void));
/* glibc's pthread keys (foreign/keys.c): a key libweft makes for itself is
 * per OS thread, never per virtual thread. */
int weft__real_key_create(pthread_key_t *key, void (*dtor)(void *));
int weft__real_setspecific(pthread_key_t key, const void *value);

#endif
