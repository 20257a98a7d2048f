/* SPDX-License-Identifier: MIT */
/*
 * foreign.h — the interposition layer's entry points for the runtime.
 *
 * foreign/ defines the C library's and pthread's blocking calls (read,
 * pthread_mutex_lock, pthread_getspecific, fork ...) so that code libweft
 * never compiled parks a virtual thread instead of blocking its carrier.
 * It sits on top of everything: it calls the scheduler, sync/ and io/;
 * nothing below calls it, except through what it registers.
 */
#ifndef WEFT_FOREIGN_H
#define WEFT_FOREIGN_H

/* Called by weft_run so that a program linked with libweft.a always gets
 * the libc hooks (libc.c), the lock hooks (locks.c) and the key hooks
 * (keys.c): see libc.c. */
void weft__io_hooks_linked(void);
void weft__locks_linked(void);
void weft__keys_linked(void);

/* In a forked child (fork.c): no thread parked on a pthread lock. */
void weft__locks_forked(void);

/* fork.c: registers the pthread_atfork handlers, once per process. */
void weft__fork_handlers_install(void);

#endif
