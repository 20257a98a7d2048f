/* SPDX-License-Identifier: MIT */
/*
 * postgres.c — compatibility row: libpq's blocking API (PQconnectdb,
 * PQexecParams) against a real PostgreSQL server on loopback, made by
 * initdb in a private directory and run as an unprivileged user.
 *
 * Each client connects and runs SELECT $1 * 2, pg_sleep(0.3): the server
 * answers after COMPAT_WAIT_MS. libpq waits in poll() and recv() inside
 * libpq.so: they must park.
 */
#include "compat.h"

#include <libpq-fe.h>

static struct srv g_pg;

static void start_postgres(struct srv *s)
{
    char initdb[PATH_MAX], postgres[PATH_MAX];
    srv_find("initdb", initdb, sizeof initdb);
    srv_find("postgres", postgres, sizeof postgres);
    srv_open(s, "postgres");
    const char *init[] = {initdb, "-D", "{dir}/data", "-U", "weft",
                          "--auth=trust", "--no-sync", "-E", "UTF8",
                          "--locale=C", NULL};
    srv_run(s, init, 60);
    const char *run[] = {postgres, "-D", "{dir}/data", "-p", "{port}",
                         "-k", "{dir}", "-c", "listen_addresses=127.0.0.1",
                         "-c", "fsync=off", "-c", "max_connections=50",
                         "-c", "shared_buffers=16MB", NULL};
    srv_start(s, run, 30);
}

static void conninfo(char *buf, size_t n, uint16_t port)
{
    snprintf(buf, n, "hostaddr=127.0.0.1 port=%u user=weft dbname=postgres "
             "connect_timeout=10", port);
}

/* The port accepts before the server takes queries ("the database system
 * is starting up"): waits for PQping's OK. */
static void wait_ready(uint16_t port)
{
    char ci[160];
    conninfo(ci, sizeof ci, port);
    PGPing p = PQPING_NO_RESPONSE;
    for (int i = 0; i < 1000 && (p = PQping(ci)) != PQPING_OK; i++)
        usleep(10 * 1000);
    cr_assert_eq(p, PQPING_OK, "postgres on port %u never took queries "
                 "(PQping %d)", port, p);
}

struct client {
    int i;
    uint16_t port;
};

static int client(void *arg)
{
    struct client *k = arg;
    char ci[160];
    conninfo(ci, sizeof ci, k->port);
    PGconn *c = PQconnectdb(ci);
    compat_gate();
    WT_REQUIRE(c != NULL);
    WT_CHECK_MSG(PQstatus(c) == CONNECTION_OK, "client %d: %s", k->i,
                 PQerrorMessage(c));
    char param[16];
    snprintf(param, sizeof param, "%d", k->i);
    const char *params[] = {param};
    PGresult *r = PQexecParams(c, "SELECT $1::int * 2, pg_sleep(0.3)", 1,
                               NULL, params, NULL, NULL, 0);
    WT_CHECK_MSG(PQresultStatus(r) == PGRES_TUPLES_OK, "client %d: %s", k->i,
                 PQerrorMessage(c));
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        WT_CHECK_EQ(atoi(PQgetvalue(r, 0, 0)), 2 * k->i);
    else
        WT_CHECK_MSG(0, "client %d: %d rows", k->i, PQntuples(r));
    PQclear(r);
    PQfinish(c);
    return 0;
}

/* One server for both runs: initdb and the server's start are most of
 * the row's time. */
static void run(unsigned procs)
{
    struct client k[COMPAT_N];
    for (int i = 0; i < COMPAT_N; i++)
        k[i] = (struct client){i, g_pg.port};
    compat_run_clients("libpq pg_sleep(0.3)", client, k, sizeof k[0],
                       COMPAT_N, procs);
}

Test(postgres, queries_overlap_on_one_and_two_ps, .timeout = 60)
{
    start_postgres(&g_pg);
    wait_ready(g_pg.port);
    run(1);
    run(2);
    srv_close(&g_pg);
}
