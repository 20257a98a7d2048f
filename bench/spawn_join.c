/* SPDX-License-Identifier: MIT */
/* B1 spawn_join: inside weft_run, opens a scope, spawns 1,000,000 detached
 * virtual threads that do nothing and closes the scope (which waits for them
 * all); prints the spawn+wait time per thread. A 10,000-thread round first
 * warms up, outside the timed region. */
#include <weft.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { N = 1000000, WARMUP = 10000 };

static int nothing(void *arg) { return 0; }

static int spawn_join(int n) {
    static const weft_attr detached = {.detached = true};
    weft_scope *s = weft_scope_open();
    if (!s) {
        fprintf(stderr, "weft_scope_open: %s\n", strerror(errno));
        return errno;
    }
    for (int i = 0; i < n; i++) {
        if (!weft_go_with(&detached, nothing, NULL)) {
            int err = errno;
            fprintf(stderr, "weft_go_with #%d: %s\n", i, strerror(err));
            weft_scope_close(s);
            return err;
        }
    }
    int err = weft_scope_close(s);
    if (err)
        fprintf(stderr, "weft_scope_close: %s\n", strerror(err));
    return err;
}

static int bench(void *arg) {
    int err = spawn_join(WARMUP);
    if (err)
        return err;
    int64_t start = weft_now();
    err = spawn_join(N);
    int64_t elapsed = weft_now() - start;
    if (!err)
        printf("spawn_join_ns %.1f ns/task\n", (double)elapsed / N);
    return err;
}

int main(void) {
    int err = weft_run(bench, NULL, NULL);
    if (err)
        fprintf(stderr, "spawn_join: %s\n", strerror(err));
    return err ? 1 : 0;
}
