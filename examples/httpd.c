/* SPDX-License-Identifier: MIT */
/*
 * httpd — an HTTP/1.1 server written as plain blocking code, one virtual
 * thread per connection.
 *
 *   httpd [--port N] [--addr A] [--procs N] [--max-conns N] [--root DIR]
 *         [--idle-ms N] [--max-header N]
 *
 * GET or HEAD of / or /hello answers "hello\n"; with --root, /files/<path>
 * serves the regular files below DIR (http_files.c keeps requests inside
 * it). Keep-alive (HTTP/1.1 by default, 1.0 when asked), pipelining, and
 * request bodies read and dropped (up to 1 MiB, else 413). Requests are
 * parsed by http_parse.c. It prints "listening on PORT" once it accepts
 * connections, serves at most --max-conns (10000) at once (a client beyond
 * them is answered 503 with Connection: close at once, not left waiting),
 * and stops on SIGINT or SIGTERM (server.c).
 *
 * A connection is a loop: read once → answer every complete request in
 * the input buffer, appending the responses to one output buffer → write
 * it once → read again.
 *
 * Memory follows use. Both buffers start small, inside the connection's
 * record on its thread's stack, whose pages cost memory only once
 * touched and go back to the system with the stack when the connection
 * ends (weft trims idle stacks): a request allocates nothing. A head
 * longer than IN_SMALL moves the input to the heap, doubling up to
 * --max-header + IN_SLACK; a file, or responses piling up past
 * OUT_SMALL, move the output to a heap buffer of OUT_CAP. Each goes back
 * to its small buffer (the heap one freed) when the connection waits for
 * its next request with what is left fitting there. So an idle
 * keep-alive connection holds a page or three of stack and no heap.
 *
 * Out of memory: a connection that gets no thread is answered 503 from
 * the accept loop (BUSY_REPLY), as far as that can be done without
 * waiting, and closed; one whose buffer cannot grow is dropped.
 *
 * Deadlines: each connection owns one scope. Its deadline is set to
 * now + --idle-ms (10 s) when the connection starts waiting for a request,
 * and moved on only when a request has been answered or a chunk of a file
 * written (and then only if it was last set 1/16 of the idle time ago or
 * more, at most 100 ms): a client that sends a request a byte at a time
 * still loses it when the deadline passes. Then the pending read or write
 * fails with ETIMEDOUT; a half-received request gets a 408.
 *
 * Closing: after an error response (which always closes), Connection:
 * close, HTTP/1.0 without keep-alive, or a time-out, the server writes
 * what it has, shuts its side down and reads until the client closes (for
 * LINGER_NS at most, in a scope of its own): closing a socket that still
 * holds unread input sends a reset, which can destroy the response before
 * the client has read it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "http_files.h"
#include "http_parse.h"
#include "server.h"

#define OUT_CAP 16384            /* output buffer; also a file chunk */
#define OUT_SMALL 2048           /* output buffer in the record */
#define IN_SMALL 2048            /* input buffer in the record */
#define IN_SLACK 8192            /* input buffer beyond --max-header */
#define MAX_BODY (1 << 20)       /* request bodies above: 413 */
#define HEAD_MAX 256             /* response head without extra fields */
#define LINGER_NS WEFT_SEC       /* reading after our side is shut down */
#define LINGER_BYTES (1 << 20)   /* ... and how much */
/* The answer to a connection turned away (beyond --max-conns, or no
 * memory for its thread), sent by server.c. */
#define BUSY_REPLY                                                         \
    "HTTP/1.1 503 Service Unavailable\r\nServer: weft-httpd\r\n"          \
    "Content-Type: text/plain\r\nContent-Length: 24\r\n"                  \
    "Retry-After: 1\r\nConnection: close\r\n\r\n"                         \
    "503 Service Unavailable\n"

typedef struct httpd_conf {
    server_opts server;
    const char *root;            /* --root, or NULL */
    int root_fd;                 /* that directory, open; or -1 */
    int64_t idle_ns;             /* --idle-ms */
    http_limits limits;          /* --max-header, MAX_BODY */
} httpd_conf;

typedef enum conn_state {
    CONN_OPEN,                   /* serving requests */
    CONN_CLOSING,                /* write what is in out, then linger */
    CONN_DEAD,                   /* the client left or I/O failed */
} conn_state;

typedef struct conn {
    int fd;
    const httpd_conf *conf;
    weft_scope *scope;           /* its deadline bounds a request's I/O */
    int64_t rearmed_at;          /* when the deadline was last set */
    conn_state state;
    char *in;                    /* received; [in_off, in_len) unparsed;
                                    in_small or malloc'd */
    size_t in_off, in_len, in_cap;
    char *out;                   /* responses not written yet; out_small
                                    or malloc'd (OUT_CAP) */
    size_t out_len, out_cap;
    time_t date_sec;             /* the second date[] shows */
    char date[32];               /* IMF-fixdate for the Date field */
    char in_small[IN_SMALL];
    char out_small[OUT_SMALL];
} conn;

/* What to answer to a GET or HEAD, decided before its body is read. */
typedef struct reply {
    int status;
    int fd;                      /* a file to send (status 200), or -1 */
    uint64_t length;             /* the file's */
    const char *type;            /* the file's Content-Type */
} reply;

/* ---------------------------------------------------------------- buffers */

/* Only the header fields are written: the small buffers' pages are left
 * untouched until data lands there. */
static void conn_init(conn *c, int fd, const httpd_conf *conf)
{
    c->fd = fd;
    c->conf = conf;
    c->scope = NULL;
    c->rearmed_at = 0;
    c->state = CONN_OPEN;
    c->in = c->in_small;
    c->in_off = c->in_len = 0;
    c->in_cap = IN_SMALL;
    c->out = c->out_small;
    c->out_len = 0;
    c->out_cap = OUT_SMALL;
    c->date_sec = 0;
}

static void conn_free(conn *c)
{
    if (c->in != c->in_small)
        free(c->in);
    if (c->out != c->out_small)
        free(c->out);
}

/* Moves the input to a heap buffer twice as large (up to --max-header +
 * IN_SLACK). False when it is that large already or memory is out. */
static bool grow_in(conn *c)
{
    size_t max = c->conf->limits.max_head + IN_SLACK;
    if (c->in_cap >= max)
        return false;
    size_t cap = 2 * c->in_cap < max ? 2 * c->in_cap : max;
    char *in = c->in == c->in_small ? malloc(cap) : realloc(c->in, cap);
    if (!in)
        return false;
    if (c->in == c->in_small)
        memcpy(in, c->in_small, c->in_len);
    c->in = in;
    c->in_cap = cap;
    return true;
}

/* Moves the output to a heap buffer of OUT_CAP. False if memory is out
 * (the small buffer is still there). */
static bool grow_out(conn *c)
{
    if (c->out != c->out_small)
        return true;
    char *out = malloc(OUT_CAP);
    if (!out)
        return false;
    memcpy(out, c->out_small, c->out_len);
    c->out = out;
    c->out_cap = OUT_CAP;
    return true;
}

/* Before waiting for a request: back to the small buffers when what they
 * hold fits there, the heap ones freed. Input compacted. */
static void shrink(conn *c)
{
    if (c->in != c->in_small && c->in_len <= IN_SMALL) {
        memcpy(c->in_small, c->in, c->in_len);
        free(c->in);
        c->in = c->in_small;
        c->in_cap = IN_SMALL;
    }
    if (c->out != c->out_small && c->out_len == 0) {
        free(c->out);
        c->out = c->out_small;
        c->out_cap = OUT_SMALL;
    }
}

/* Moves the unparsed input to the front of the buffer. */
static void compact(conn *c)
{
    if (c->in_off == 0)
        return;
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
}

/* The deadline for what the connection waits for next: now + idle, or up
 * to 1/16 of idle (100 ms at most) earlier. Moving it at every request of
 * a busy connection would cost a lock and a timer update each time. */
static void rearm(conn *c)
{
    int64_t now = weft_now(), slack = c->conf->idle_ns / 16;
    if (slack > 100 * WEFT_MSEC)
        slack = 100 * WEFT_MSEC;
    if (c->rearmed_at && now - c->rearmed_at < slack)
        return;
    c->rearmed_at = now;
    weft_scope_deadline(c->scope, now + c->conf->idle_ns);
}

static void refresh_date(conn *c)
{
    time_t now = time(NULL);
    if (now == c->date_sec)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(c->date, sizeof c->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    c->date_sec = now;
}

/* --------------------------------------------------------------------- I/O */

static void respond_error(conn *c, int status);

/* Writes all of out. False (the connection is dead) if it could not. */
static bool flush(conn *c)
{
    size_t done = 0;
    while (done < c->out_len) {
        ssize_t n = weft_write(c->fd, c->out + done, c->out_len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            c->state = CONN_DEAD;
            return false;
        }
        done += (size_t)n;
    }
    c->out_len = 0;
    return true;
}

/* Makes room for n more bytes of output, growing the buffer or writing
 * what is there if need be (n <= OUT_SMALL). */
static bool out_room(conn *c, size_t n)
{
    return c->out_cap - c->out_len >= n || (grow_out(c) &&
           c->out_cap - c->out_len >= n) || flush(c);
}

/* Reads once more into in. False when the connection is to end: the
 * client closed or an error (dead), or the deadline passed (closing,
 * with a 408 when a request was under way). */
static bool receive(conn *c, bool in_request)
{
    compact(c);
    shrink(c);
    if (c->in_len == c->in_cap && !grow_in(c)) {
        c->state = CONN_DEAD; /* the parser refuses heads before this */
        return false;
    }
    ssize_t n;
    do
        n = weft_read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->in_len += (size_t)n;
        return true;
    }
    if (n < 0 && errno == ETIMEDOUT) {
        c->state = CONN_CLOSING;
        if (in_request)
            respond_error(c, 408);
    } else {
        c->state = CONN_DEAD;
    }
    return false;
}

/* Consumes a request body of n bytes, buffered or still to come; the
 * responses before it are written first, not held while it arrives. */
static bool discard_body(conn *c, uint64_t n)
{
    for (;;) {
        size_t have = c->in_len - c->in_off;
        size_t take = n < have ? (size_t)n : have;
        c->in_off += take;
        n -= take;
        if (n == 0)
            return true;
        if (!flush(c) || !receive(c, true))
            return false;
    }
}

/* ---------------------------------------------------------------- replies */

static void put(conn *c, const char *p, size_t n)
{
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void put_str(conn *c, const char *s)
{
    put(c, s, strlen(s));
}

static void put_u64(conn *c, uint64_t v)
{
    char digits[20];
    size_t i = sizeof digits;
    do
        digits[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put(c, digits + i, sizeof digits - i);
}

/* A response head; extra holds further fields, each ending in CR LF.
 * Whether the connection goes on is read from c->state. */
static bool put_head(conn *c, int minor, int status, const char *type,
                     uint64_t length, const char *extra)
{
    if (!out_room(c, HEAD_MAX + strlen(extra)))
        return false;
    refresh_date(c);
    put_str(c, "HTTP/1.1 ");
    put_u64(c, (uint64_t)status);
    put_str(c, " ");
    put_str(c, http_reason(status));
    put_str(c, "\r\nServer: weft-httpd\r\nDate: ");
    put_str(c, c->date);
    put_str(c, "\r\nContent-Type: ");
    put_str(c, type);
    put_str(c, "\r\nContent-Length: ");
    put_u64(c, length);
    if (c->state != CONN_OPEN)
        put_str(c, "\r\nConnection: close");
    else if (minor == 0)
        put_str(c, "\r\nConnection: keep-alive");
    put_str(c, "\r\n");
    put_str(c, extra);
    put_str(c, "\r\n");
    return true;
}

/* A response with a short body (omitted for HEAD). */
static void respond(conn *c, int minor, bool head, int status,
                    const char *extra, const char *body, size_t n)
{
    if (put_head(c, minor, status, "text/plain", n, extra) && !head &&
        out_room(c, n))
        put(c, body, n);
}

/* A response whose body says the status ("404 Not Found\n"). */
static void respond_status(conn *c, int minor, bool head, int status)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, http_reason(status));
    respond(c, minor, head, status,
            status == 405 ? "Allow: GET, HEAD\r\n" : "", body, (size_t)n);
}

/* An error that ends the connection once answered. */
static void respond_error(conn *c, int status)
{
    if (c->state == CONN_OPEN)
        c->state = CONN_CLOSING;
    respond_status(c, 1, false, status);
}

/* Appends the file's bytes to out, a buffer at a time. */
static bool send_file(conn *c, int fd, uint64_t size)
{
    grow_out(c); /* else chunks of the small buffer */
    for (uint64_t off = 0; off < size;) {
        if (c->out_len == c->out_cap) {
            if (!flush(c))
                return false;
            rearm(c);
        }
        size_t room = c->out_cap - c->out_len;
        size_t want = size - off < room ? (size_t)(size - off) : room;
        ssize_t n = weft_pread(fd, c->out + c->out_len, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) { /* the file shrank: the length sent is wrong */
            c->state = CONN_DEAD;
            return false;
        }
        c->out_len += (size_t)n;
        off += (uint64_t)n;
    }
    return true;
}

/* ---------------------------------------------------------------- routing */

static bool path_is(const http_request *req, const char *path)
{
    return req->path_len == strlen(path) &&
           memcmp(req->path, path, req->path_len) == 0;
}

static reply file_reply(const conn *c, const char *rel, size_t n)
{
    reply r = {.fd = -1};
    struct stat st;
    r.status = http_open_file(c->conf->root_fd, rel, n, &r.fd, &st);
    if (r.status == 200) {
        r.length = (uint64_t)st.st_size;
        r.type = http_content_type(rel, n);
    }
    return r;
}

/* What a GET or HEAD of req's path gets. Uses the path, which lives in
 * the input buffer: call it before reading the body. */
static reply route(const conn *c, const http_request *req)
{
    static const char files[] = "/files/";
    size_t nf = sizeof files - 1;
    if (path_is(req, "/") || path_is(req, "/hello"))
        return (reply){.status = 200, .fd = -1};
    if (c->conf->root_fd >= 0 && req->path_len > nf &&
        memcmp(req->path, files, nf) == 0)
        return file_reply(c, req->path + nf, req->path_len - nf);
    return (reply){.status = 404, .fd = -1};
}

static void send_reply(conn *c, const http_request *req, const reply *r)
{
    bool head = req->method == HTTP_HEAD;
    if (r->fd < 0 && r->status == 200)
        respond(c, req->minor, head, 200, "", "hello\n", 6);
    else if (r->fd < 0)
        respond_status(c, req->minor, head, r->status);
    else if (put_head(c, req->minor, 200, r->type, r->length, "") && !head)
        send_file(c, r->fd, r->length);
}

/* "HTTP/1.1 100 Continue" when the client waits for it before sending a
 * body that has not arrived yet. */
static bool send_continue(conn *c, const http_request *req)
{
    if (!req->expect_continue || req->minor == 0 ||
        req->content_length <= c->in_len - c->in_off)
        return true;
    if (!out_room(c, 32))
        return false;
    put_str(c, "HTTP/1.1 100 Continue\r\n\r\n");
    return flush(c);
}

/* Answers one parsed request whose head has been consumed. */
static void answer(conn *c, const http_request *req)
{
    if (!req->keep_alive)
        c->state = CONN_CLOSING;
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        respond_error(c, req->method == HTTP_OTHER ? 501 : 405);
        return;
    }
    reply r = route(c, req);
    if (send_continue(c, req) && discard_body(c, req->content_length))
        send_reply(c, req, &r);
    if (r.fd >= 0)
        weft_close(r.fd);
}

/* Answers every complete request in the input, in order, into out.
 * Returns how many; stops at an incomplete one or when the connection is
 * to end. */
static int answer_pending(conn *c)
{
    int answered = 0;
    while (c->state == CONN_OPEN) {
        http_request req;
        switch (http_parse_request(c->in + c->in_off, c->in_len - c->in_off,
                                   &c->conf->limits, &req)) {
        case HTTP_PARSE_NEED_MORE:
            return answered;
        case HTTP_PARSE_ERROR:
            respond_error(c, req.status);
            return answered;
        case HTTP_PARSE_OK:
            c->in_off += req.head_len;
            answer(c, &req);
            answered++;
        }
    }
    return answered;
}

/* ------------------------------------------------------------- connection */

/* Serves requests until the connection is to end. Runs in c->scope. */
static void serve_requests(conn *c)
{
    rearm(c);
    while (c->state == CONN_OPEN) {
        if (answer_pending(c) > 0)
            rearm(c);
        if (!flush(c) || c->state != CONN_OPEN)
            return;
        receive(c, c->in_len > c->in_off);
    }
}

/* Writes what is left, shuts our side down and reads until the client
 * closes, all within LINGER_NS (or the idle time if shorter). */
static void finish(conn *c)
{
    if (c->state == CONN_DEAD)
        return;
    weft_scope *s = weft_scope_open();
    if (!s)
        return;
    int64_t linger = c->conf->idle_ns < LINGER_NS ? c->conf->idle_ns : LINGER_NS;
    weft_scope_deadline(s, weft_now() + linger);
    if (flush(c) && shutdown(c->fd, SHUT_WR) == 0) {
        for (size_t drained = 0; drained < LINGER_BYTES;) {
            ssize_t n = weft_read(c->fd, c->in, c->in_cap);
            if (n <= 0 && !(n < 0 && errno == EINTR))
                break;
            drained += n > 0 ? (size_t)n : 0;
        }
    }
    weft_scope_close(s);
}

/* One connection (server_conn_fn). Runs on: its own virtual thread. */
static void serve_http(int fd, void *ctx)
{
    conn c;
    conn_init(&c, fd, ctx);
    if ((c.scope = weft_scope_open())) {
        serve_requests(&c);
        weft_scope_close(c.scope);
        finish(&c);
    }
    conn_free(&c);
}

/* ------------------------------------------------------------------- main */

#define USAGE                                                              \
    "usage: %s " SERVER_USAGE "\n"                                         \
    "       [--root DIR] [--idle-ms N] [--max-header N]\n"

/* Applies one option. False (a message was printed) if it is bad. */
static bool httpd_option(httpd_conf *conf, int code, const char *arg)
{
    long v;
    switch (code) {
    case 'r':
        conf->root = arg;
        return true;
    case 'i':
        if (!server_number("idle-ms", arg, 1, 86400000, &v))
            return false;
        conf->idle_ns = v * WEFT_MSEC;
        return true;
    case 'H':
        if (!server_number("max-header", arg, 64, 1 << 20, &v))
            return false;
        conf->limits.max_head = (size_t)v;
        return true;
    default:
        return server_option(&conf->server, code, arg) == 1;
    }
}

static bool parse_args(int argc, char **argv, httpd_conf *conf)
{
    static const struct option longopts[] = {
        SERVER_LONG_OPTIONS,
        {"root", required_argument, NULL, 'r'},
        {"idle-ms", required_argument, NULL, 'i'},
        {"max-header", required_argument, NULL, 'H'},
        {0},
    };
    int code;
    bool ok = true;
    while ((code = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        ok &= httpd_option(conf, code, optarg);
    if (!ok || optind < argc)
        fprintf(stderr, USAGE, argv[0]);
    return ok && optind == argc;
}

int main(int argc, char **argv)
{
    httpd_conf conf = {
        .server = {.addr = "127.0.0.1", .max_conns = 10000,
                   .busy_reply = BUSY_REPLY},
        .root_fd = -1,
        .idle_ns = 10 * WEFT_SEC,
        .limits = {.max_head = 8192, .max_body = MAX_BODY},
    };
    if (!parse_args(argc, argv, &conf))
        return 2;
    if (conf.root) {
        conf.root_fd = open(conf.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (conf.root_fd < 0) {
            fprintf(stderr, "--root %s: %s\n", conf.root, strerror(errno));
            return 2;
        }
    }
    int status = server_run(&conf.server, serve_http, &conf);
    if (conf.root_fd >= 0)
        close(conf.root_fd);
    return status;
}
