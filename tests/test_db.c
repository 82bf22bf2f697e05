/*
 * test_db.c - db_exec_prepared against a real PostgreSQL: a statement is
 * prepared once per server session and then only executed, prepared again
 * after a reconnect, kept apart from other statements, and its failures are
 * sorted and named like db_exec's.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "testdb.h"

static struct testdb db;

static void setup(void)
{
    tdb_create(&db, false);
}

static void teardown(void)
{
    tdb_drop(&db);
}

TestSuite(db, .init = setup, .fini = teardown);

/* Run sql with one parameter through db_exec_prepared; the first value, heap. */
static char *run(PGconn *conn, const char *sql, const char *param)
{
    const char *p[1] = { param };
    char err[256];
    enum st_err kind = ST_OK;
    PGresult *res = db_exec_prepared(conn, "test statement", sql, 1, p, PGRES_TUPLES_OK, &kind,
                                     err, sizeof(err));
    char *v;

    cr_assert_not_null(res, "%s", err);
    v = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* Prepared statements of this session whose text is sql. */
static long long prepared(const char *sql)
{
    const char *p[1] = { sql };
    PGresult *res = PQexecParams(db.conn, "SELECT count(*) FROM pg_prepared_statements"
                                          " WHERE statement = $1",
                                 1, NULL, p, NULL, NULL, 0);
    long long n;

    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(db.conn));
    n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

Test(db, prepared_once_then_executed)
{
    static const char sql[] = "SELECT $1::int + 1";
    char *v;

    for (int i = 0; i < 3; i++) {
        v = run(db.conn, sql, "41");
        cr_expect_str_eq(v, "42");
        free(v);
    }
    cr_expect_eq(prepared(sql), 1);
    /* another statement gets its own */
    v = run(db.conn, "SELECT $1::text || '!'", "hi");
    cr_expect_str_eq(v, "hi!");
    free(v);
    cr_expect_eq(prepared(sql), 1);
    cr_expect_eq(prepared("SELECT $1::text || '!'"), 1);
}

Test(db, prepared_again_after_a_reconnect)
{
    static const char sql[] = "SELECT $1::int * 2";
    int before;
    char *v;

    v = run(db.conn, sql, "21");
    cr_expect_str_eq(v, "42");
    free(v);
    before = PQbackendPID(db.conn);
    PQreset(db.conn); /* a new server session: its prepared statements are gone */
    cr_assert_eq(PQstatus(db.conn), CONNECTION_OK);
    cr_assert_neq(PQbackendPID(db.conn), before);
    cr_expect_eq(prepared(sql), 0);
    v = run(db.conn, sql, "4");
    cr_expect_str_eq(v, "8");
    free(v);
    cr_expect_eq(prepared(sql), 1);
}

Test(db, failures_are_sorted_and_named)
{
    const char *p[1] = { "x" };
    char err[256];
    enum st_err kind = ST_OK;
    PGresult *res;

    /* does not parse: never prepared, a permanent failure naming the statement */
    res = db_exec_prepared(db.conn, "broken statement", "SELEC $1", 1, p, PGRES_TUPLES_OK, &kind,
                           err, sizeof(err));
    cr_expect_null(res);
    cr_expect_eq(kind, ST_PERMANENT);
    cr_expect(strstr(err, "broken statement: ") == err, "%s", err);
    cr_expect(strstr(err, "syntax error") != NULL, "%s", err);
    /* prepared, then fails when executed with this value */
    res = db_exec_prepared(db.conn, "cast", "SELECT $1::int", 1, p, PGRES_TUPLES_OK, &kind, err,
                           sizeof(err));
    cr_expect_null(res);
    cr_expect_eq(kind, ST_PERMANENT);
    cr_expect(strstr(err, "cast: ") == err, "%s", err);
    /* the session is still usable, and the statement too */
    p[0] = "7";
    res = db_exec_prepared(db.conn, "cast", "SELECT $1::int", 1, p, PGRES_TUPLES_OK, &kind, err,
                           sizeof(err));
    cr_assert_not_null(res, "%s", err);
    cr_expect_str_eq(PQgetvalue(res, 0, 0), "7");
    PQclear(res);
}
