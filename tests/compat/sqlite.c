/* SPDX-License-Identifier: MIT */
/*
 * sqlite.c — compatibility row: SQLite in WAL mode, CONNS connections to
 * one database file (SQLite's default serialized threading mode: each
 * connection has its own pthread mutex, and SQLite's global mutexes are
 * pthread mutexes too), a busy time-out set, and concurrent write
 * transactions from virtual threads on two P's. Every commit must land
 * (the rows are counted afterwards, per writer) and nothing may hang.
 *
 * SQLite holds its pthread mutexes across its file I/O (pread, pwrite,
 * fsync: parks under weft) and sleeps in its busy handler (usleep:
 * parks too) while it holds a connection's mutex. A virtual thread that
 * parks holding a pthread mutex, and another one on the same carrier
 * that then takes it, is what weft's pthread-lock pinning is for. A run
 * that makes no progress for WATCHDOG_S fails with the count of commits
 * that landed and a dump of the virtual threads, instead of hanging.
 */
#include "compat.h"

#include <sqlite3.h>

enum { CONNS = 8, TXNS = 50, WATCHDOG_S = 10 };

static struct srv g_dir; /* the database's private directory */
static char g_path[400];
static atomic_int g_commits, g_errors, g_done;

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK && atomic_fetch_add(&g_errors, 1) < 5)
        WT_CHECK_MSG(0, "'%s': %s (%d)", sql, msg ? msg : "?", rc);
    sqlite3_free(msg);
    return rc;
}

static int writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(g_path, &db, SQLITE_OPEN_READWRITE, NULL);
    WT_CHECK_MSG(rc == SQLITE_OK, "writer %d: open: %s", id,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    if (rc == SQLITE_OK) {
        /* Long: beside busy processes a writer may wait for the lock
         * for many commits' fsyncs. A hang is the watchdog's to catch. */
        sqlite3_busy_timeout(db, 45000);
        for (int k = 0; k < TXNS; k++) {
            char sql[128];
            snprintf(sql, sizeof sql, "INSERT INTO t(writer, seq) "
                     "VALUES (%d, %d)", id, k);
            if (exec(db, "BEGIN IMMEDIATE") == SQLITE_OK &&
                exec(db, sql) == SQLITE_OK && exec(db, "COMMIT") == SQLITE_OK)
                atomic_fetch_add(&g_commits, 1);
        }
    }
    sqlite3_close(db);
    return 0;
}

static weft_runtime_stats g_st;

static int root(void *arg)
{
    weft_thread *t[CONNS];
    for (int i = 0; i < CONNS; i++)
        t[i] = wt_go_named("sqlite-writer", writer, (void *)(intptr_t)i);
    for (int i = 0; i < CONNS; i++)
        WT_CHECK_EQ(wt_join(t[i]), 0);
    WT_CHECK_EQ(weft_stats(&g_st), 0);
    atomic_store(&g_done, 1);
    return 0;
}

/* Fails the test if no commit lands for WATCHDOG_S (a hang), however
 * long the whole run takes: beside other busy processes, 400 commits with
 * their fsyncs may take longer than that. Runs on: an OS thread of its
 * own. */
static void *watchdog(void *arg)
{
    int seen = -1;
    for (int i = 0; i < WATCHDOG_S * 100 && !atomic_load(&g_done); i++) {
        if (atomic_load(&g_commits) != seen) {
            seen = atomic_load(&g_commits);
            i = 0;
        }
        usleep(10 * 1000);
    }
    if (atomic_load(&g_done))
        return NULL;
    fprintf(stderr, "sqlite: no commit for %d s: %d of %d commits landed; "
            "the virtual threads:\n", WATCHDOG_S, atomic_load(&g_commits),
            CONNS * TXNS);
    weft_dump(2);
    fflush(NULL);
    _exit(1);
}

static void create_db(void)
{
    snprintf(g_path, sizeof g_path, "%s/test.db", g_dir.dir);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(g_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL,
                              NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, "
                              "writer INT, seq INT)", NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
}

/* Each writer's TXNS rows are in the file. */
static void expect_rows(void)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    cr_assert_eq(sqlite3_open(g_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT writer, count(*), "
                                    "count(DISTINCT seq) FROM t GROUP BY "
                                    "writer", -1, &q, NULL), SQLITE_OK);
    int writers = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        writers++;
        cr_expect(sqlite3_column_int(q, 1) == TXNS &&
                  sqlite3_column_int(q, 2) == TXNS,
                  "writer %d has %d rows (%d distinct), expected %d",
                  sqlite3_column_int(q, 0), sqlite3_column_int(q, 1),
                  sqlite3_column_int(q, 2), TXNS);
    }
    cr_expect_eq(writers, CONNS, "%d writers have rows", writers);
    sqlite3_finalize(q);
    sqlite3_close(db);
}

Test(sqlite, wal_commits_from_many_connections_all_land, .timeout = 60)
{
    cr_assert(sqlite3_threadsafe(), "SQLite built without threads");
    srv_open(&g_dir, "sqlite");
    create_db();
    pthread_t w;
    cr_assert_eq(pthread_create(&w, NULL, watchdog, NULL), 0);
    int64_t t0 = wt_clock_ns();
    int rc = wt_run_raw(root, NULL, 2);
    long ms = (long)((wt_clock_ns() - t0) / 1000000);
    pthread_join(w, NULL);
    cr_log_info("%d connections, %d commits of %d in %ld ms; %d errors; "
                "%llu hand-offs, %u carriers, I/O %s", CONNS,
                atomic_load(&g_commits), CONNS * TXNS, ms,
                atomic_load(&g_errors), g_st.handoffs, g_st.carriers,
                g_st.io_backend);
    wt_assert_clean();
    cr_assert_eq(rc, 0, "weft_run returned %d", rc);
    cr_expect_eq(atomic_load(&g_commits), CONNS * TXNS);
    expect_rows();
    srv_close(&g_dir);
}
