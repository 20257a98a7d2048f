/* SPDX-License-Identifier: MIT */
/*
 * httpd.c — the HTTP example (examples/httpd.c) run as a child process and
 * driven over loopback: keep-alive, pipelining, HEAD, request bodies, file
 * serving and traversal, each error status, idle deadlines against silent
 * and dribbling clients, the connection bound (503 beyond it), many
 * connections at once, a burst beyond the memory there is, and a clean
 * exit on SIGTERM (every test ends with one). Registered once per I/O
 * backend (WEFT_IO=uring, WEFT_IO=epoll).
 */
#include "wt_server.h"

#include <sys/resource.h>
#include <sys/stat.h>

#ifndef WT_HTTPD_PROG
#error "WT_HTTPD_PROG: the path of the built examples/httpd"
#endif

#define GET_HELLO "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"

/* A connection with the bytes received and not yet taken. */
typedef struct client {
    int fd;
    size_t len;
    char buf[65536];
} client;

typedef struct response {
    int status;
    long length;         /* Content-Length; -1 if absent */
    bool close;          /* Connection: close */
    char head[4096];
    char *body;          /* length bytes, NUL-ended (malloc); NULL for HEAD */
} response;

static void start(wt_server *s, char *const args[])
{
    wt_server_start(s, WT_HTTPD_PROG, args);
}

static void start_default(wt_server *s)
{
    char *args[] = {"httpd", NULL};
    start(s, args);
}

static client *client_open(int port)
{
    client *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->fd = wt_connect(port);
    return c;
}

static void client_close(client *c)
{
    close(c->fd);
    free(c);
}

/* A server with the default options, and a connection to it. */
static client *session_open(wt_server *s)
{
    start_default(s);
    return client_open(s->port);
}

/* Closes the connection, then stops the server (asserting a clean exit). */
static void session_close(wt_server *s, client *c)
{
    client_close(c);
    wt_server_stop(s);
}

static void fill(client *c)
{
    cr_assert_lt(c->len, sizeof c->buf, "response head too long");
    ssize_t r;
    do
        r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    while (r < 0 && errno == EINTR);
    cr_assert_gt(r, 0, "recv: %s", r < 0 ? strerror(errno) : "EOF");
    c->len += (size_t)r;
}

static void take(client *c, void *dst, size_t n)
{
    memcpy(dst, c->buf, n);
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* The value of field name in a response head, as a number; -1 if absent. */
static long field_number(const char *head, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *p = strcasestr(head, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void read_body(client *c, response *r)
{
    r->body = malloc((size_t)r->length + 1);
    cr_assert_not_null(r->body);
    size_t have = c->len < (size_t)r->length ? c->len : (size_t)r->length;
    take(c, r->body, have);
    wt_recv_exact(c->fd, r->body + have, (size_t)r->length - have);
    r->body[r->length] = '\0';
}

/* Reads one response; a response to HEAD has no body. */
static void read_response(client *c, bool head, response *r)
{
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        fill(c);
    size_t n = (size_t)(end - c->buf) + 4;
    cr_assert_lt(n, sizeof r->head);
    take(c, r->head, n);
    r->head[n] = '\0';
    cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1,
                 "not a response: %s", r->head);
    r->length = field_number(r->head, "Content-Length");
    r->close = strcasestr(r->head, "\r\nConnection: close\r\n") != NULL;
    r->body = NULL;
    if (!head && r->length >= 0)
        read_body(c, r);
}

static void expect_hello(client *c)
{
    response r;
    read_response(c, false, &r);
    cr_assert_eq(r.status, 200, "%s", r.head);
    cr_assert_eq(r.length, 6);
    cr_assert(strcmp(r.body, "hello\n") == 0);
    cr_assert(!r.close);
    cr_assert_not_null(strcasestr(r.head, "\r\nContent-Type: text/plain\r\n"));
    free(r.body);
}

/* Reads a response; asserts it is status, that it says Connection: close,
 * and that the server then closes. */
static void expect_closing(client *c, int status)
{
    response r;
    read_response(c, false, &r);
    cr_assert_eq(r.status, status, "%d expected: %s", status, r.head);
    cr_assert(r.close, "no Connection: close after %d", status);
    cr_assert(wt_wait_eof(c->fd, WT_IO_TIMEOUT_MS), "still open after %d",
              status);
    free(r.body);
}

/* Sends req on a new connection; asserts the answer is status, and that
 * the server closes the connection after it. */
static void expect_error(int port, const char *req, int status)
{
    client *c = client_open(port);
    wt_send_str(c->fd, req);
    expect_closing(c, status);
    client_close(c);
}

/* ------------------------------------------------------------- keep-alive */

Test(httpd, hello_keep_alive, .timeout = 60)
{
    wt_server s;
    client *c = session_open(&s);
    for (int i = 0; i < 5; i++) {
        wt_send_str(c->fd, GET_HELLO);
        expect_hello(c);
    }
    wt_send_str(c->fd, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_hello(c);
    session_close(&s, c);
}

Test(httpd, pipelined_requests_answered_in_order, .timeout = 60)
{
    wt_server s;
    client *c = session_open(&s);
    static const char nope[] = "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n";
    size_t one = strlen(GET_HELLO), n = 0;
    char batch[64 * sizeof GET_HELLO + sizeof nope];
    for (int i = 0; i < 64; i++, n += one)
        memcpy(batch + n, GET_HELLO, one);
    memcpy(batch + n, nope, strlen(nope));
    wt_send_all(c->fd, batch, n + strlen(nope));
    for (int i = 0; i < 64; i++)
        expect_hello(c);
    response r;
    read_response(c, false, &r);
    cr_assert_eq(r.status, 404);
    free(r.body);
    session_close(&s, c);
}

Test(httpd, head_has_length_but_no_body, .timeout = 60)
{
    wt_server s;
    client *c = session_open(&s);
    wt_send_str(c->fd, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n" GET_HELLO);
    response r;
    read_response(c, true, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.length, 6);
    expect_hello(c); /* the next bytes are the next response */
    session_close(&s, c);
}

Test(httpd, http_1_0_closes_unless_keep_alive, .timeout = 60)
{
    wt_server s;
    client *c = session_open(&s);
    wt_send_str(c->fd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    response r;
    read_response(c, false, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strcasestr(r.head, "\r\nConnection: keep-alive\r\n"));
    free(r.body);
    wt_send_str(c->fd, "GET /hello HTTP/1.0\r\n\r\n");
    expect_closing(c, 200);
    session_close(&s, c);
}

Test(httpd, connection_close_is_honoured, .timeout = 60)
{
    wt_server s;
    client *c = session_open(&s);
    wt_send_str(c->fd, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close"
                       "\r\n\r\n" GET_HELLO);
    expect_closing(c, 200); /* and the second request gets nothing */
    session_close(&s, c);
}

Test(httpd, request_bodies_are_read_and_dropped, .timeout = 60)
{
    wt_server s;
    client *c = session_open(&s);
    wt_send_str(c->fd, "GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5"
                       "\r\n\r\nabcde" GET_HELLO);
    expect_hello(c);
    expect_hello(c);
    /* A body the client sends only after 100 Continue. */
    wt_send_str(c->fd, "GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 3"
                       "\r\nExpect: 100-continue\r\n\r\n");
    char cont[25];
    wt_recv_exact(c->fd, cont, sizeof cont);
    cr_assert(memcmp(cont, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    wt_send_str(c->fd, "xyz");
    expect_hello(c);
    session_close(&s, c);
}

/* ------------------------------------------------------------------ files */

typedef struct tree {
    char base[64];       /* base/secret, base/root/... */
    char root[96];
} tree;

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* base/secret, base/root/{big.bin, empty.txt, sub/, link -> ../secret} */
static void make_tree(tree *t, const unsigned char *big, size_t n)
{
    char p[160];
    strcpy(t->base, "/tmp/wt-httpd-XXXXXX");
    cr_assert_not_null(mkdtemp(t->base));
    path_in(t->root, sizeof t->root, t->base, "root");
    cr_assert_eq(mkdir(t->root, 0700), 0);
    path_in(p, sizeof p, t->base, "secret");
    write_file(p, "secret\n", 7);
    path_in(p, sizeof p, t->root, "big.bin");
    write_file(p, big, n);
    path_in(p, sizeof p, t->root, "empty.txt");
    write_file(p, "", 0);
    path_in(p, sizeof p, t->root, "sub");
    cr_assert_eq(mkdir(p, 0700), 0);
    path_in(p, sizeof p, t->root, "link");
    cr_assert_eq(symlink("../secret", p), 0);
}

static void remove_tree(const tree *t)
{
    static const char *const names[] = {"root/big.bin", "root/empty.txt",
                                        "root/link", "root/sub", "root",
                                        "secret"};
    char p[160];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_in(p, sizeof p, t->base, names[i]);
        remove(p);
    }
    rmdir(t->base);
}

static void start_with_root(wt_server *s, tree *t)
{
    char *args[] = {"httpd", "--root", t->root, NULL};
    start(s, args);
}

Test(httpd, files_served_with_exact_length, .timeout = 60)
{
    size_t n = 300001;
    unsigned char *big = malloc(n);
    cr_assert_not_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 7 + i / 251);
    tree t;
    make_tree(&t, big, n);
    wt_server s;
    start_with_root(&s, &t);
    client *c = client_open(s.port);
    wt_send_str(c->fd, "GET /files/big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                       "HEAD /files/big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /files/empty.txt?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    response r;
    read_response(c, false, &r);
    cr_assert_eq(r.status, 200, "%s", r.head);
    cr_assert_eq(r.length, (long)n);
    cr_assert(memcmp(r.body, big, n) == 0, "file bytes differ");
    free(r.body);
    read_response(c, true, &r);
    cr_assert_eq(r.length, (long)n);
    read_response(c, false, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.length, 0);
    free(r.body);
    wt_send_str(c->fd, GET_HELLO);
    expect_hello(c);
    client_close(c);
    wt_server_stop(&s);
    remove_tree(&t);
    free(big);
}

/* GET path on c: asserts the status and that the secret never shows. */
static void expect_refused(client *c, const char *path, int status)
{
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    wt_send_str(c->fd, req);
    response r;
    read_response(c, false, &r);
    cr_assert_eq(r.status, status, "%s answered %s", path, r.head);
    cr_assert_null(strstr(r.body, "secret"));
    free(r.body);
}

typedef struct refusal {
    const char *path;
    int status;
} refusal;

/* Serves a tree and asserts that each path gets its status. */
static void expect_refusals(const refusal *list, size_t n)
{
    tree t;
    make_tree(&t, (const unsigned char *)"x", 1);
    wt_server s;
    start_with_root(&s, &t);
    client *c = client_open(s.port);
    for (size_t i = 0; i < n; i++)
        expect_refused(c, list[i].path, list[i].status);
    client_close(c);
    wt_server_stop(&s);
    remove_tree(&t);
}

Test(httpd, missing_files_and_directories_are_404, .timeout = 60)
{
    static const refusal list[] = {
        {"/files/nope", 404}, {"/files/sub", 404},
        {"/files/sub/", 404}, {"/files/", 404},
        {"/nothing/here", 404}, {"/files/%2fetc%2fpasswd", 404},
    };
    expect_refusals(list, sizeof list / sizeof list[0]);
}

Test(httpd, traversal_is_refused, .timeout = 60)
{
    static const refusal list[] = {
        {"/files/../secret", 403},       {"/files/%2e%2e/secret", 403},
        {"/files/%2E%2E%2Fsecret", 403}, {"/files/sub/../../secret", 403},
        {"/files/link", 403},            {"/files/a%00b", 400},
        {"/files/sub/../sub/../../secret", 403},
        {"/files/sub/..%2F..%2Fsecret", 403},
        {"/files/./sub/./../.././secret", 403},
    };
    expect_refusals(list, sizeof list / sizeof list[0]);
}

/* "." and ".." segments are resolved by name, as nginx does: a ".." that
 * stays inside the root is served. */
Test(httpd, dot_segments_inside_the_root_are_resolved, .timeout = 60)
{
    static const refusal list[] = {
        {"/files/./sub/../big.bin", 200},   {"/files/sub/../big.bin", 200},
        {"/files/sub/%2e%2e/big.bin", 200}, {"/files/sub/./../empty.txt", 200},
        {"/files//sub/..//big.bin", 200},   {"/files/big.bin/..", 404},
        {"/files/sub/../nope", 404},
    };
    expect_refusals(list, sizeof list / sizeof list[0]);
}

/* ------------------------------------------------------------- statuses */

Test(httpd, malformed_requests_are_400, .timeout = 60)
{
    static const char *const bad[] = {
        "GET /\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nX : y\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
        "Content-Length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n",
    };
    wt_server s;
    start_default(&s);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(s.port, bad[i], 400);
    wt_server_stop(&s);
}

Test(httpd, each_error_status, .timeout = 60)
{
    wt_server s;
    start_default(&s);
    expect_error(s.port, "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n", 405);
    expect_error(s.port, "BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", 501);
    expect_error(s.port, "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
    expect_error(s.port, "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                         "chunked\r\n\r\n", 501);
    expect_error(s.port, "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: "
                         "2000000\r\n\r\n", 413);
    wt_server_stop(&s);
}

/* A request whose head is n bytes of fields. */
static char *big_request(size_t n)
{
    char *req = malloc(n + 64);
    cr_assert_not_null(req);
    int h = sprintf(req, "GET / HTTP/1.1\r\nHost: t\r\nX: ");
    memset(req + h, 'a', n);
    strcpy(req + h + n, "\r\n\r\n");
    return req;
}

Test(httpd, oversized_headers_are_431, .timeout = 60)
{
    wt_server s;
    start_default(&s);
    char *req = big_request(10000);
    expect_error(s.port, req, 431);
    free(req);
    req = big_request(200000); /* the server drains what it does not read */
    expect_error(s.port, req, 431);
    free(req);
    req = big_request(8000); /* under 8192 */
    client *c = client_open(s.port);
    wt_send_str(c->fd, req);
    expect_hello(c);
    client_close(c);
    free(req);
    wt_server_stop(&s);
}

/* A request line longer than --max-header is 414, not 431; the server
 * drains the rest of it. */
Test(httpd, a_long_request_uri_is_414, .timeout = 60)
{
    wt_server s;
    start_default(&s);
    size_t n = 20000;
    char *req = malloc(n + 64);
    cr_assert_not_null(req);
    strcpy(req, "GET /");
    memset(req + 5, 'a', n);
    strcpy(req + 5 + n, " HTTP/1.1\r\nHost: t\r\n\r\n");
    expect_error(s.port, req, 414);
    free(req);
    wt_server_stop(&s);
}

/* ------------------------------------------------------------- deadlines */

static void start_idle_300(wt_server *s)
{
    char *args[] = {"httpd", "--idle-ms", "300", NULL};
    start(s, args);
}

Test(httpd, idle_deadline_closes_a_silent_connection, .timeout = 60)
{
    wt_server s;
    start_idle_300(&s);
    client *c = client_open(s.port);
    wt_send_str(c->fd, GET_HELLO);
    expect_hello(c);
    int64_t t0 = wt_server_now_ms();
    cr_assert(wt_wait_eof(c->fd, WT_IO_TIMEOUT_MS));
    int64_t dt = wt_server_now_ms() - t0;
    cr_assert_geq(dt, 250, "closed after %lld ms", (long long)dt);
    cr_assert_lt(dt, WT_IO_TIMEOUT_MS / 2, "closed after %lld ms",
                 (long long)dt);
    session_close(&s, c);
}

Test(httpd, idle_deadline_cuts_off_a_dribbling_client, .timeout = 60)
{
    wt_server s;
    start_idle_300(&s);
    client *c = client_open(s.port);
    const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Padding: "
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    int64_t t0 = wt_server_now_ms();
    size_t sent = 0;
    while (sent < strlen(req) && !wt_readable(c->fd, 40)) {
        if (send(c->fd, req + sent, 1, MSG_NOSIGNAL) != 1)
            break;
        sent++;
    }
    int64_t dt = wt_server_now_ms() - t0;
    cr_assert_lt(sent, strlen(req), "the whole request went through");
    cr_assert_lt(dt, 2000, "cut off only after %lld ms", (long long)dt);
    expect_closing(c, 408);
    session_close(&s, c);
}

/* ---------------------------------------------------------- connections */

/* A client that got "hello" once: retried while the server answers 503
 * (a slot is given back only once the connection's thread has ended). */
static client *served_client(int port)
{
    int64_t end = wt_server_now_ms() + WT_IO_TIMEOUT_MS;
    for (;;) {
        client *c = client_open(port);
        wt_send_str(c->fd, GET_HELLO);
        response r;
        read_response(c, false, &r);
        free(r.body);
        if (r.status == 200)
            return c;
        cr_assert_eq(r.status, 503, "%s", r.head);
        cr_assert_lt(wt_server_now_ms(), end, "no slot came free");
        client_close(c);
        usleep(10000);
    }
}

Test(httpd, connection_bound_holds, .timeout = 60)
{
    char *args[] = {"httpd", "--max-conns", "2", NULL};
    wt_server s;
    start(&s, args);
    client *a = client_open(s.port), *b = client_open(s.port);
    wt_send_str(a->fd, GET_HELLO);
    wt_send_str(b->fd, GET_HELLO);
    expect_hello(a);
    expect_hello(b);
    client *third = client_open(s.port);
    wt_send_str(third->fd, GET_HELLO);
    cr_assert(wt_readable(third->fd, WT_IO_TIMEOUT_MS),
              "a third connection was left waiting unanswered");
    expect_closing(third, 503); /* turned away at once */
    client_close(third);
    client_close(a);
    client *fourth = served_client(s.port); /* a's slot is free again */
    wt_send_str(b->fd, GET_HELLO); /* b is still served */
    expect_hello(b);
    client_close(b);
    client_close(fourth);
    wt_server_stop(&s);
}

Test(httpd, many_concurrent_connections, .timeout = 120)
{
    enum { N = 200 };
    wt_server s;
    start_default(&s);
    client *c[N];
    for (int i = 0; i < N; i++)
        c[i] = client_open(s.port);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++)
            wt_send_str(c[i]->fd, GET_HELLO);
        for (int i = 0; i < N; i++)
            expect_hello(c[i]);
    }
    wt_server_stop(&s); /* with all of them open */
    for (int i = 0; i < N; i++)
        client_close(c[i]);
}

/* ---------------------------------------------------------- out of memory */

/* Room for about 250 stacks, less whatever spare carriers (8 MiB of
 * pthread stack each) a loaded machine makes the monitor start: some of
 * the burst is served, the rest turned away. */
#define OOM_CONNS 600
#define OOM_HEADROOM (64l << 20)

/* The address space pid maps now (VmSize), in bytes; -1 if unknown. */
static long vm_size(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

typedef enum { GOT_200, GOT_503, GOT_NOTHING } outcome;

/* What a connection that sent GET_HELLO got: a 200, a 503, or nothing
 * (closed or reset unanswered: refused too). */
static outcome first_answer(int fd)
{
    char buf[512];
    size_t n = 0;
    while (n < 12) {
        ssize_t r = recv(fd, buf + n, sizeof buf - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return GOT_NOTHING;
        n += (size_t)r;
    }
    if (memcmp(buf, "HTTP/1.1 200", 12) == 0)
        return GOT_200;
    cr_assert(memcmp(buf, "HTTP/1.1 503", 12) == 0, "%.*s", (int)n, buf);
    return GOT_503;
}

/* A fresh request is answered 200 within ms (retried while refused). */
static bool served_again(int port, int ms)
{
    int64_t end = wt_server_now_ms() + ms;
    do {
        int fd = wt_connect(port);
        wt_send_str(fd, GET_HELLO);
        outcome o = first_answer(fd);
        close(fd);
        if (o == GOT_200)
            return true;
        usleep(50000);
    } while (wt_server_now_ms() < end);
    return false;
}

/* Under an address-space limit a few dozen stacks above what it maps at
 * start, httpd answers what it can of a burst of keep-alive connections,
 * turns the rest away (503 or closed), stays up, and serves a fresh
 * request once the burst has left. (Skipped in sanitizer builds, which
 * cannot run with RLIMIT_AS lowered.) */
Test(httpd, survives_running_out_of_memory, .timeout = 120)
{
    if (WT_SANITIZED)
        cr_skip_test("sanitizers cannot run with RLIMIT_AS lowered");
    wt_skip_if_emulated("qemu maps the guest's memory apart from "
                        "RLIMIT_AS");
    /* One malloc arena: a carrier's first malloc would otherwise reserve
     * a 64 MiB arena of address space, all the headroom at once. */
    setenv("MALLOC_ARENA_MAX", "1", 1);
    wt_server s;
    start_default(&s);
    long vm = vm_size(s.pid);
    cr_assert_gt(vm, 0);
    struct rlimit rl = {.rlim_cur = (rlim_t)(vm + OOM_HEADROOM),
                        .rlim_max = RLIM_INFINITY};
    cr_assert_eq(prlimit(s.pid, RLIMIT_AS, &rl, NULL), 0, "prlimit: %s",
                 strerror(errno));
    static int fds[OOM_CONNS];
    for (int i = 0; i < OOM_CONNS; i++)
        fds[i] = wt_connect(s.port);
    for (int i = 0; i < OOM_CONNS; i++)
        send(fds[i], GET_HELLO, strlen(GET_HELLO), MSG_NOSIGNAL);
    int got[3] = {0};
    for (int i = 0; i < OOM_CONNS; i++)
        got[first_answer(fds[i])]++;
    cr_log_info("200: %d, 503: %d, refused: %d", got[GOT_200], got[GOT_503],
                got[GOT_NOTHING]);
    cr_assert_gt(got[GOT_200], 0, "nothing was served");
    cr_assert_gt(got[GOT_503] + got[GOT_NOTHING], 0, "nothing was refused");
    for (int i = 0; i < OOM_CONNS; i++)
        close(fds[i]);
    cr_assert(served_again(s.port, WT_IO_TIMEOUT_MS),
              "no fresh request served after the burst");
    cr_assert_eq(waitpid(s.pid, NULL, WNOHANG), 0, "httpd has exited");
    wt_server_stop(&s);
}
