/* SPDX-License-Identifier: MIT */
/* Bs switch: with procs = 1, two virtual threads call weft_yield() in turns,
 * 10,000,000 calls in total; prints ns per switch (each yield hands the only
 * P over to the other thread). The root thread waits in weft_scope_close
 * meanwhile, so the two yielders are the only runnable threads. A
 * 100,000-yield round first warms up, outside the timed region. */
#include <weft.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { N = 10000000, WARMUP = 100000 };

static int yielder(void *arg) {
    intptr_t count = (intptr_t)arg;
    for (intptr_t i = 0; i < count; i++)
        weft_yield();
    return 0;
}

/* Runs two yielders doing `total` yields between them; returns 0 or an
 * error number. */
static int ping_pong(intptr_t total) {
    weft_scope *s = weft_scope_open();
    if (!s) {
        fprintf(stderr, "weft_scope_open: %s\n", strerror(errno));
        return errno;
    }
    for (int i = 0; i < 2; i++) {
        if (!weft_go(yielder, (void *)(total / 2))) {
            int err = errno;
            fprintf(stderr, "weft_go: %s\n", strerror(err));
            weft_scope_close(s);
            return err;
        }
    }
    return weft_scope_close(s);
}

static int bench(void *arg) {
    int err = ping_pong(WARMUP);
    if (err)
        return err;
    int64_t start = weft_now();
    err = ping_pong(N);
    int64_t elapsed = weft_now() - start;
    if (!err)
        printf("switch_ns %.2f ns/switch\n", (double)elapsed / N);
    return err;
}

int main(void) {
    weft_config cfg = {.procs = 1};
    int err = weft_run(bench, NULL, &cfg);
    if (err)
        fprintf(stderr, "switch: %s\n", strerror(err));
    return err ? 1 : 0;
}
