/* SPDX-License-Identifier: MIT */
/*
 * dump.h — the state dump (dump.c), printed on SIGQUIT (dumpsig.c), on a
 * panic and on a deadlock.
 *
 * Invariants. The dump reads other carriers' and threads' fields without
 * their locks: it prints what it sees, and never follows a pointer it has
 * not checked (dump.c).
 */
#ifndef WEFT_SCHED_DUMP_H
#define WEFT_SCHED_DUMP_H

/* dumpsig.c */
void weft__dump_signal_start(void);
void weft__dump_signal_stop(void);
void weft__dump_signal_forked(void);

/* dump.c */
const char *weft__wait_kind_name(int kind); /* NULL: not waiting */

#endif
