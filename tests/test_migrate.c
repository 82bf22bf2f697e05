/*
 * test_migrate.c - migrations against a real PostgreSQL: applied once,
 * a no-op the second time, safe when started concurrently, refusing
 * databases with unknown or altered versions; and the schema's vocabulary
 * matches the C lists.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migrate.h"
#include "status.h"
#include "testdb.h"

Test(migrate, twice_is_a_noop)
{
    struct testdb db;
    char err[512];
    int applied = -1;

    tdb_create(&db, false);
    cr_assert_eq(migrate_run(db.conn, &applied, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(applied, (int)st_migrations_count);
    cr_assert_eq(migrate_run(db.conn, &applied, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(applied, 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM schema_migrations"),
                 (long long)st_migrations_count);
    cr_expect_eq(migrate_check(db.conn, err, sizeof(err)), ST_OK, "%s", err);
    tdb_drop(&db);
}

Test(migrate, concurrent_starts)
{
    enum { N = 6 };
    struct testdb db;
    pid_t pids[N];

    tdb_create(&db, false);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0) {
            PGconn *c = PQconnectdb(db.url);
            char err[512];
            int applied;

            if (PQstatus(c) != CONNECTION_OK)
                _exit(3);
            _exit(migrate_run(c, &applied, err, sizeof(err)) == ST_OK ? 0 : 4);
        }
    }
    for (int i = 0; i < N; i++) {
        int status;

        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "migrator %d failed (%d)", i,
                  WEXITSTATUS(status));
    }
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM schema_migrations"),
                 (long long)st_migrations_count);
    tdb_drop(&db);
}

Test(migrate, refuses_unknown_version)
{
    struct testdb db;
    char err[512];
    int applied;

    tdb_create(&db, true);
    tdb_exec(db.conn, "INSERT INTO schema_migrations (version, name, checksum)"
                      " VALUES (999, 'from_the_future', 'x')");
    cr_assert_eq(migrate_run(db.conn, &applied, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "999_from_the_future") != NULL, "%s", err);
    cr_expect(strstr(err, "does not know") != NULL, "%s", err);
    cr_assert_eq(migrate_check(db.conn, err, sizeof(err)), ST_CONFIG);
    tdb_drop(&db);
}

Test(migrate, refuses_altered_migration)
{
    struct testdb db;
    char err[512];
    int applied;

    tdb_create(&db, true);
    tdb_exec(db.conn, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1");
    cr_assert_eq(migrate_run(db.conn, &applied, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "differs") != NULL, "%s", err);
    tdb_drop(&db);
}

Test(migrate, check_on_empty_database)
{
    struct testdb db;
    char err[512];

    tdb_create(&db, false);
    cr_assert_eq(migrate_check(db.conn, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "shiptrack migrate") != NULL, "%s", err);
    tdb_drop(&db);
}

Test(migrate, vocabulary_matches_c_lists)
{
    struct testdb db;
    char sql[200];

    tdb_create(&db, true);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM statuses"), ST_STATUS__COUNT);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM substatuses"), ST_SUB__COUNT);
    for (int i = 0; i < ST_STATUS__COUNT; i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM statuses WHERE name = '%s'"
                 " AND terminal = %s", st_status_name((enum st_status)i),
                 st_status_terminal((enum st_status)i) ? "true" : "false");
        cr_expect_eq(tdb_count(db.conn, sql), 1, "status %s", st_status_name((enum st_status)i));
    }
    for (int i = 0; i < ST_SUB__COUNT; i++) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM substatuses WHERE name = '%s'",
                 st_substatus_name((enum st_substatus)i));
        cr_expect_eq(tdb_count(db.conn, sql), 1, "substatus %s",
                     st_substatus_name((enum st_substatus)i));
    }
    /* monthly partitions exist around now */
    cr_expect_geq(tdb_count(db.conn, "SELECT count(*) FROM pg_inherits"
                                     " WHERE inhparent = 'tracking_events'::regclass"), 14);
    tdb_drop(&db);
}
