/* SPDX-License-Identifier: MIT */
/*
 * overflow_deep.h — overflow.c's "deep" frame, in a file of its own
 * (overflow_deep.c) because it is built without stack-clash protection,
 * and the rest of the program with it: GCC can turn the protection off
 * for one function (optimize("no-stack-clash-protection")), clang only
 * for a whole file.
 */
#ifndef OVERFLOW_DEEP_H
#define OVERFLOW_DEEP_H

#include <stddef.h>

/* A frame of `bytes`, far bigger than a guard page, with no probes: its
 * first store lands at its low end, past the guard page and whatever else
 * lies below the stack, in the first unmapped page (where it faults). */
int deep_frame(size_t bytes);

#endif
