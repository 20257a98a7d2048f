/* SPDX-License-Identifier: MIT */
/*
 * mariadb.c — compatibility row: the MariaDB client library's blocking
 * API (mysql_real_connect, mysql_query) against a real mariadbd on
 * loopback, its data directory made by mariadb-install-db in a private
 * directory, run as an unprivileged user.
 *
 * Each client connects and runs SELECT SLEEP(0.3), i * 2: the server
 * answers after COMPAT_WAIT_MS. libmariadb waits in poll() and recv()
 * inside libmariadb.so: they must park.
 */
#include "compat.h"

#include <mysql.h>

static struct srv g_db;

static void start_mariadb(struct srv *s)
{
    char install[PATH_MAX], server[PATH_MAX];
    srv_find("mariadb-install-db", install, sizeof install);
    srv_find("mariadbd", server, sizeof server);
    srv_open(s, "mariadb");
    /* --tmpdir: not the shared /tmp, where two installs at once clash on
     * the names of their temporary tables. */
    const char *init[] = {install, "--no-defaults", "--datadir={dir}/data",
                          "--auth-root-authentication-method=normal",
                          "--skip-test-db", "--skip-name-resolve",
                          "--tmpdir={dir}", NULL};
    srv_run(s, init, 60);
    const char *run[] = {server, "--no-defaults", "--datadir={dir}/data",
                         "--port={port}", "--bind-address=127.0.0.1",
                         "--socket={dir}/mariadb.sock",
                         "--pid-file={dir}/mariadb.pid",
                         "--skip-name-resolve", "--skip-log-bin",
                         "--innodb-buffer-pool-size=16M",
                         "--max-connections=60", "--tmpdir={dir}", NULL};
    srv_start(s, run, 30);
}

struct client {
    int i;
    uint16_t port;
};

static int client(void *arg)
{
    struct client *k = arg;
    MYSQL *m = mysql_init(NULL);
    if (!m)
        compat_gate();
    WT_REQUIRE(m != NULL);
    unsigned timeout = 10;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    bool ok = mysql_real_connect(m, "127.0.0.1", "root", "", NULL, k->port,
                                 NULL, 0) != NULL;
    compat_gate();
    if (!ok) {
        WT_CHECK_MSG(0, "client %d: connect: %s", k->i, mysql_error(m));
        mysql_close(m);
        return 0;
    }
    char q[64];
    snprintf(q, sizeof q, "SELECT SLEEP(0.3), %d * 2", k->i);
    WT_CHECK_MSG(mysql_query(m, q) == 0, "client %d: %s", k->i,
                 mysql_error(m));
    MYSQL_RES *r = mysql_store_result(m);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    WT_CHECK_MSG(row != NULL, "client %d: no row: %s", k->i, mysql_error(m));
    if (row) {
        WT_CHECK_EQ(atoi(row[0]), 0); /* SLEEP's result: not interrupted */
        WT_CHECK_EQ(atoi(row[1]), 2 * k->i);
    }
    if (r)
        mysql_free_result(r);
    mysql_close(m);
    return 0;
}

/* One server for both runs: mariadb-install-db and the server's start
 * are most of the row's time. */
static void run(unsigned procs)
{
    struct client k[COMPAT_N];
    for (int i = 0; i < COMPAT_N; i++)
        k[i] = (struct client){i, g_db.port};
    compat_run_clients("libmariadb SLEEP(0.3)", client, k, sizeof k[0],
                       COMPAT_N, procs);
}

Test(mariadb, queries_overlap_on_one_and_two_ps, .timeout = 60)
{
    start_mariadb(&g_db);
    cr_assert_eq(mysql_library_init(0, NULL, NULL), 0);
    run(1);
    run(2);
    mysql_library_end();
    srv_close(&g_db);
}
