/* SPDX-License-Identifier: MIT */
/*
 * mutex.h — what other synchronisation objects need from weft_mutex.
 */
#ifndef WEFT_SYNC_MUTEX_H
#define WEFT_SYNC_MUTEX_H

#include <stdbool.h>

#include "weft.h"

/* Whether the caller holds m (m not NULL). Runs on: any thread. */
bool weft__mutex_held(weft_mutex *m);

#endif
