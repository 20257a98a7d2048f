/* SPDX-License-Identifier: MIT */
/*
 * redis.c — compatibility row: hiredis's blocking API against a real
 * redis-server on loopback.
 *
 * Each client connects, stores its own key, waits in BLPOP on an empty
 * list of its own for COMPAT_WAIT_MS (the server answers nil at the
 * time-out), reads its key back and bumps a shared counter. hiredis
 * blocks in read()/write()/connect() of its own socket: they must park.
 */
#include "compat.h"

#include <hiredis/hiredis.h>

static struct srv g_redis;

static void start_redis(struct srv *s)
{
    char bin[PATH_MAX];
    srv_find("redis-server", bin, sizeof bin);
    srv_open(s, "redis");
    const char *argv[] = {bin, "--port", "{port}", "--bind", "127.0.0.1",
                          "--dir", "{dir}", "--save", "", "--appendonly",
                          "no", "--protected-mode", "no", "--daemonize", "no",
                          NULL};
    srv_start(s, argv, 10);
}

struct client {
    int i;
    uint16_t port;
};

/* Sends one command; checks the reply's type and returns it (or NULL). */
static redisReply *command(redisContext *c, int type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    WT_CHECK_MSG(r != NULL, "'%s': %s", fmt, c->errstr);
    if (r)
        WT_CHECK_MSG(r->type == type, "'%s': reply type %d, expected %d (%s)",
                     fmt, r->type, type, r->type == REDIS_REPLY_ERROR ?
                     r->str : "");
    return r && r->type == type ? r : NULL;
}

static int client(void *arg)
{
    struct client *k = arg;
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", k->port, tv);
    compat_gate();
    WT_REQUIRE(c != NULL);
    WT_CHECK_MSG(!c->err, "client %d: connect: %s", k->i, c->errstr);
    if (c->err) {
        redisFree(c);
        return 0;
    }
    freeReplyObject(command(c, REDIS_REPLY_STATUS, "SET key:%d value:%d",
                            k->i, k->i));
    /* The server holds the reply COMPAT_WAIT_MS, then answers nil. */
    freeReplyObject(command(c, REDIS_REPLY_NIL, "BLPOP list:%d %.3f", k->i,
                            COMPAT_WAIT_MS / 1000.0));
    redisReply *r = command(c, REDIS_REPLY_STRING, "GET key:%d", k->i);
    char want[32];
    snprintf(want, sizeof want, "value:%d", k->i);
    if (r)
        WT_CHECK_MSG(!strcmp(r->str, want), "client %d read '%s'", k->i,
                     r->str);
    freeReplyObject(r);
    freeReplyObject(command(c, REDIS_REPLY_INTEGER, "INCR counter"));
    redisFree(c);
    return 0;
}

/* After the batch: the counter saw every client once. */
static void expect_counter(uint16_t port, long long want)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    cr_assert(c && !c->err, "connect: %s", c ? c->errstr : "no memory");
    redisReply *r = redisCommand(c, "GET counter");
    cr_assert(r && r->type == REDIS_REPLY_STRING, "GET counter failed");
    cr_expect_eq(atoll(r->str), want, "counter %s, expected %lld", r->str,
                 want);
    freeReplyObject(r);
    redisFree(c);
}

static void run(unsigned procs)
{
    start_redis(&g_redis);
    struct client k[COMPAT_N];
    for (int i = 0; i < COMPAT_N; i++)
        k[i] = (struct client){i, g_redis.port};
    compat_run_clients("hiredis BLPOP", client, k, sizeof k[0], COMPAT_N,
                       procs);
    expect_counter(g_redis.port, COMPAT_N);
    srv_close(&g_redis);
}

Test(redis, blocking_commands_overlap_on_one_p, .timeout = 30)
{
    run(1);
}

Test(redis, blocking_commands_overlap_on_two_ps, .timeout = 30)
{
    run(2);
}
