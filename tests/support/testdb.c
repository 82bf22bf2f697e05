/*
 * testdb.c - per-test databases in the throwaway cluster.
 */
#include "testdb.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"

static const char *admin_url(void)
{
    const char *url = getenv("SHIPTRACK_TEST_PG_URL");

    cr_assert(url != NULL && url[0] != '\0',
              "SHIPTRACK_TEST_PG_URL is not set: run the suites through scripts/test, or start "
              "a cluster with scripts/pg-start and export the URL it prints");
    return url;
}

void tdb_create(struct testdb *db, bool migrate)
{
    const char *admin = admin_url();
    char sql[160], err[1024];
    const char *slash;
    PGconn *a;
    PGresult *res;
    int applied;
    struct timespec ts;

    memset(db, 0, sizeof(*db));
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(db->name, sizeof(db->name), "st_test_%ld_%ld", (long)getpid(),
             (long)(ts.tv_nsec / 1000));
    a = PQconnectdb(admin);
    cr_assert_eq(PQstatus(a), CONNECTION_OK, "admin connection: %s", PQerrorMessage(a));
    /* database names cannot be parameters; this one is ours, digits and letters only */
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0", db->name);
    res = PQexec(a, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(a));
    PQclear(res);
    PQfinish(a);

    /* same server, our database: replace the path of the admin URL */
    slash = strrchr(admin, '/');
    cr_assert_not_null(slash);
    snprintf(db->url, sizeof(db->url), "%.*s/%s", (int)(slash - admin), admin, db->name);
    db->conn = PQconnectdb(db->url);
    cr_assert_eq(PQstatus(db->conn), CONNECTION_OK, "%s: %s", db->url,
                 PQerrorMessage(db->conn));
    PQclear(PQexec(db->conn, "SET client_min_messages = warning"));
    if (migrate)
        cr_assert_eq(migrate_run(db->conn, &applied, err, sizeof(err)), ST_OK, "migrate: %s", err);
}

void tdb_drop(struct testdb *db)
{
    char sql[160];
    PGconn *a;

    if (db->conn != NULL)
        PQfinish(db->conn);
    db->conn = NULL;
    if (db->name[0] == '\0')
        return;
    a = PQconnectdb(admin_url());
    if (PQstatus(a) == CONNECTION_OK) {
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
        PQclear(PQexec(a, sql));
    }
    PQfinish(a);
}

char *tdb_scalar(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    char *out = NULL;

    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        out = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

long long tdb_count(PGconn *conn, const char *sql)
{
    char *s = tdb_scalar(conn, sql);
    long long v = s ? atoll(s) : 0;

    free(s);
    return v;
}

void tdb_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);

    cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
}
