/* SPDX-License-Identifier: MIT */
/*
 * holder.c — the thread-local byte whose address names an OS thread as a
 * lock's holder (holder.h).
 */
#include "sync/holder.h"

__thread char weft__holder_os_self __attribute__((tls_model("initial-exec")));
