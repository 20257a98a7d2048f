/* SPDX-License-Identifier: MIT */
// cxx_select.cc — weft_select from C++17 through WEFT_SEND, WEFT_RECV and
// WEFT_JOIN: each case completes as it does from C, and a deadline with
// no case ready ends the select with ETIMEDOUT. Built with
// -pedantic-errors (tests/CMakeLists.txt). Each check runs in a child
// process of its own with a time-out; the program exits 0 when every
// check passed.
#include <weft.h>

#include "wt_check.hh"

#include <cerrno>
#include <cstdio>
#include <type_traits>
#include <sys/wait.h>
#include <unistd.h>

// The macros are weft_case values in C++ as in C.
static_assert(std::is_same_v<decltype(WEFT_SEND(nullptr, nullptr)),
                             weft_case>);
static_assert(std::is_same_v<decltype(WEFT_JOIN(nullptr, nullptr)),
                             weft_case>);

constexpr int64_t ms = 1000000;

// A send on a channel with room completes at once, the value copied in;
// the case records no error, the other fields as WEFT_SEND set them.
static int send_completes(void *)
{
    weft_chan *c = weft_chan_make(sizeof(int), 1);
    const int value = 42;
    weft_case cases[] = {WEFT_SEND(c, &value)};
    CHECK(cases[0].kind == WEFT_CASE_SEND && cases[0].chan == c);
    CHECK(cases[0].thread == nullptr && cases[0].result == nullptr);
    CHECK(weft_select(cases, 1, -1) == 0);
    CHECK(cases[0].err == 0);
    int got = 0;
    CHECK(weft_chan_recv(c, &got) == 0 && got == 42);
    CHECK(weft_chan_free(c) == 0);
    return 0;
}

static int send_later(void *arg)
{
    weft_sleep(10 * ms);
    const int value = 7;
    return weft_chan_send(static_cast<weft_chan *>(arg), &value);
}

// A receive waits for a sender; the join beside it, whose thread is
// still sleeping, is left untouched.
static int recv_completes(void *)
{
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    weft_thread *sender = weft_go(send_later, c);
    weft_thread *sleeper = weft_go(
        [](void *) { return weft_sleep(200 * ms); }, nullptr);
    int got = 0, result = -1;
    weft_case cases[] = {WEFT_JOIN(sleeper, &result), WEFT_RECV(c, &got)};
    CHECK(weft_select(cases, 2, -1) == 1);
    CHECK(got == 7 && cases[1].err == 0 && result == -1);
    CHECK(weft_join(sender, &result) == 0 && result == 0);
    CHECK(weft_join(sleeper, &result) == 0 && result == 0);
    CHECK(weft_chan_free(c) == 0);
    return 0;
}

// A join case waits for the thread and takes its result (0: a non-zero
// one would be a failure, which cancels the scope).
static int join_completes(void *)
{
    weft_thread *t = weft_go([](void *) { return weft_sleep(10 * ms); },
                             nullptr);
    int result = -1;
    weft_case cases[] = {WEFT_JOIN(t, &result)};
    CHECK(weft_select(cases, 1, -1) == 0);
    CHECK(result == 0 && cases[0].err == 0);
    CHECK(weft_join(t, nullptr) == ESRCH); // the select joined it
    return 0;
}

// Nothing ready by the deadline: -1, ETIMEDOUT, no earlier than asked.
static int deadline_expires(void *)
{
    weft_chan *c = weft_chan_make(sizeof(int), 0);
    int got = 0;
    weft_case cases[] = {WEFT_RECV(c, &got)};
    int64_t deadline = weft_now() + 20 * ms;
    errno = 0;
    CHECK(weft_select(cases, 1, deadline) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(weft_now() >= deadline);
    CHECK(weft_chan_free(c) == 0);
    return 0;
}

// Runs fn as the root of a runtime in a child process that dies after 10
// seconds; true when it exited 0 with every check passed.
static bool passes(const char *name, weft_fn fn)
{
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        weft_config cfg = {};
        cfg.procs = 2;
        int rc = weft_run(fn, nullptr, &cfg);
        CHECK(rc == 0);
        _exit(failures ? 1 : 0);
    }
    int status = 0;
    bool ok = pid > 0 && waitpid(pid, &status, 0) == pid &&
              WIFEXITED(status) && WEXITSTATUS(status) == 0;
    std::fprintf(stderr, "[%s] %s\n", ok ? "PASS" : "FAIL", name);
    return ok;
}

int main()
{
    struct { const char *name; weft_fn fn; } checks[] = {
        {"send_completes", send_completes},
        {"recv_completes", recv_completes},
        {"join_completes", join_completes},
        {"deadline_expires", deadline_expires},
    };
    int failed = 0;
    for (auto &[name, fn] : checks)
        failed += !passes(name, fn);
    return failed ? 1 : 0;
}
