/* SPDX-License-Identifier: MIT */
/*
 * curl.c — compatibility row: libcurl's blocking easy API
 * (curl_easy_perform) against an HTTP server in virtual threads of the
 * same process, which answers each request after COMPAT_WAIT_MS.
 *
 * libcurl waits in poll() (its own calls, inside libcurl.so) and reads
 * and writes its socket: they must park. On one P the server runs only
 * if they do.
 */
#include "compat.h"

#include <curl/curl.h>

/* ------------------------------------------------------------ the server */

/* Reads one request, waits COMPAT_WAIT_MS, answers "body <path>". */
static int http_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[2048];
    size_t got = 0;
    while (got < sizeof req - 1 && !memmem(req, got, "\r\n\r\n", 4)) {
        ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    req[got] = 0;
    char path[64] = "?";
    sscanf(req, "GET %63s ", path);
    weft_sleep(WT_MS(COMPAT_WAIT_MS));
    char body[96], resp[256];
    int blen = snprintf(body, sizeof body, "body %s", path);
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s", blen, body);
    WT_CHECK_EQ(send(fd, resp, (size_t)n, 0), n);
    close(fd);
    return 0;
}

/* Accepts until cancelled. */
static int http_server(void *arg)
{
    int l = *(int *)arg;
    for (;;) {
        int fd = accept(l, NULL, NULL);
        if (fd < 0)
            return wt_errno() == ECANCELED ? 0 : wt_errno();
        weft_attr a = {.detached = true, .name = "http-conn"};
        WT_CHECK(weft_go_with(&a, http_conn, (void *)(intptr_t)fd) != NULL);
    }
}

/* ----------------------------------------------------------- the clients */

struct fetch {
    uint16_t port;
    int i;
    CURLcode rc;
    long status;
    char body[128];
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct fetch *f = arg;
    size_t len = size * n;
    size_t room = sizeof f->body - 1 - f->len;
    memcpy(f->body + f->len, data, len < room ? len : room);
    f->len += len < room ? len : room;
    f->body[f->len] = 0;
    return len;
}

static int client(void *arg)
{
    struct fetch *f = arg;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/%d", f->port, f->i);
    CURL *h = curl_easy_init();
    compat_gate(); /* libcurl connects inside curl_easy_perform */
    WT_REQUIRE(h != NULL);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
    f->rc = curl_easy_perform(h); /* blocking: parks in its poll() */
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &f->status);
    curl_easy_cleanup(h);
    char want[32];
    snprintf(want, sizeof want, "body /%d", f->i);
    WT_CHECK_MSG(f->rc == CURLE_OK, "client %d: %s", f->i,
                 curl_easy_strerror(f->rc));
    WT_CHECK_EQ(f->status, 200);
    WT_CHECK_MSG(!strcmp(f->body, want), "client %d got '%s'", f->i, f->body);
    return 0;
}

static int root(void *arg)
{
    uint16_t port;
    int l = wt_tcp_listen(&port);
    WT_REQUIRE(l >= 0);
    weft_thread *srv = wt_go_named("http-server", http_server, &l);
    struct fetch f[COMPAT_N];
    for (int i = 0; i < COMPAT_N; i++)
        f[i] = (struct fetch){.port = port, .i = i, .rc = CURLE_FAILED_INIT};
    compat_clients("curl", client, f, sizeof f[0], COMPAT_N);
    weft_cancel(srv);
    WT_CHECK_EQ(wt_join(srv), 0);
    close(l);
    return 0;
}

static void run(unsigned procs)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    int rc = wt_run(root, NULL, .procs = procs, .hog_ms = WT_NO_HANDOFF_MS);
    curl_global_cleanup();
    cr_assert_eq(rc, 0, "weft_run returned %d", rc);
    compat_expect_overlap("curl_easy_perform", COMPAT_N, procs);
}

Test(curl, easy_perform_overlaps_on_one_p, .timeout = 30)
{
    run(1);
}

Test(curl, easy_perform_overlaps_on_two_ps, .timeout = 30)
{
    run(2);
}
