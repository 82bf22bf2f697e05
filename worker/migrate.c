/*
 * migrate.c - apply the embedded migrations under an advisory lock.
 */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"

/* Advisory lock key: "shiptrak" in ASCII, shared by every shiptrack version. */
#define MIGRATE_LOCK_KEY "8316012643650527595"

static const struct migration *find_migration(int version)
{
    for (size_t i = 0; i < st_migrations_count; i++)
        if (st_migrations[i].version == version)
            return &st_migrations[i];
    return NULL;
}

/* md5 of a migration's text, computed by the server so both sides agree. */
static enum st_err checksum(PGconn *conn, const struct migration *m, char out[33], char *err,
                            size_t errlen)
{
    const char *params[] = { m->sql };
    enum st_err kind = ST_OK;
    PGresult *res = db_exec(conn, "checksum", "SELECT md5($1)", 1, params, PGRES_TUPLES_OK,
                            &kind, err, errlen);

    if (res == NULL)
        return kind;
    snprintf(out, 33, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return ST_OK;
}

static int last_known_version(void)
{
    return st_migrations_count ? st_migrations[st_migrations_count - 1].version : 0;
}

/* Compare schema_migrations with the embedded list. Fills applied[] (indexed
 * like st_migrations) and returns ST_CONFIG for unknown or altered versions. */
static enum st_err compare(PGconn *conn, bool *applied, char *err, size_t errlen)
{
    enum st_err kind = ST_OK;
    PGresult *res = db_exec(conn, "read schema_migrations",
                            "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
                            0, NULL, PGRES_TUPLES_OK, &kind, err, errlen);
    enum st_err rc = ST_OK;

    if (res == NULL)
        return kind;
    for (int r = 0; r < PQntuples(res) && rc == ST_OK; r++) {
        int version = atoi(PQgetvalue(res, r, 0));
        const struct migration *m = find_migration(version);
        char sum[33];

        if (m == NULL) {
            rc = st_fail(err, errlen, ST_CONFIG,
                         "database has migration %03d_%s, which this shiptrack does not know "
                         "(it knows up to %03d): run a newer shiptrack against this database",
                         version, PQgetvalue(res, r, 1), last_known_version());
            break;
        }
        rc = checksum(conn, m, sum, err, errlen);
        if (rc == ST_OK && strcmp(sum, PQgetvalue(res, r, 2)) != 0)
            rc = st_fail(err, errlen, ST_CONFIG,
                         "migration %03d_%s in the database differs from this binary's "
                         "(checksum %s, expected %s): applied migrations must never be edited",
                         version, m->name, PQgetvalue(res, r, 2), sum);
        applied[m - st_migrations] = true;
    }
    PQclear(res);
    return rc;
}

static enum st_err apply_one(PGconn *conn, const struct migration *m, char *err, size_t errlen)
{
    char version[16], sum[33];
    const char *params[3];
    enum st_err kind;
    PGresult *res;

    if ((kind = checksum(conn, m, sum, err, errlen)) != ST_OK)
        return kind;
    if ((kind = db_begin(conn, err, errlen)) != ST_OK)
        return kind;
    res = PQexec(conn, m->sql); /* embedded, trusted text: several statements */
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        kind = db_error_kind(conn, res);
        snprintf(err, errlen, "migration %03d_%s failed: %s", m->version, m->name,
                 PQresultErrorMessage(res));
        err[strcspn(err, "\n")] = '\0';
        PQclear(res);
        db_rollback(conn);
        return kind;
    }
    PQclear(res);
    snprintf(version, sizeof(version), "%d", m->version);
    params[0] = version;
    params[1] = m->name;
    params[2] = sum;
    res = db_exec(conn, "record migration",
                  "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", 3,
                  params, PGRES_COMMAND_OK, &kind, err, errlen);
    if (res == NULL) {
        db_rollback(conn);
        return kind;
    }
    PQclear(res);
    return db_commit(conn, err, errlen);
}

static enum st_err ensure_table(PGconn *conn, char *err, size_t errlen)
{
    enum st_err kind = ST_OK;
    PGresult *res = db_exec(conn, "create schema_migrations",
                            "CREATE TABLE IF NOT EXISTS schema_migrations ("
                            " version integer PRIMARY KEY,"
                            " name text NOT NULL,"
                            " checksum text NOT NULL,"
                            " applied_at timestamptz NOT NULL DEFAULT now())",
                            0, NULL, PGRES_COMMAND_OK, &kind, err, errlen);

    if (res == NULL)
        return kind;
    PQclear(res);
    return ST_OK;
}

static enum st_err lock(PGconn *conn, bool take, char *err, size_t errlen)
{
    enum st_err kind = ST_OK;
    PGresult *res = db_exec(conn, take ? "take migration lock" : "release migration lock",
                            take ? "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")"
                                 : "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")",
                            0, NULL, PGRES_TUPLES_OK, &kind, err, errlen);

    if (res == NULL)
        return kind;
    PQclear(res);
    return ST_OK;
}

enum st_err migrate_run(PGconn *conn, int *applied_count, char *err, size_t errlen)
{
    bool *applied;
    enum st_err rc;
    char ignore[256];

    *applied_count = 0;
    applied = calloc(st_migrations_count + 1, sizeof(*applied));
    if (applied == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory");
    /* Silence NOTICEs such as "relation already exists, skipping". */
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    rc = lock(conn, true, err, errlen);
    if (rc != ST_OK) {
        free(applied);
        return rc;
    }
    rc = ensure_table(conn, err, errlen);
    if (rc == ST_OK)
        rc = compare(conn, applied, err, errlen);
    for (size_t i = 0; rc == ST_OK && i < st_migrations_count; i++) {
        if (applied[i])
            continue;
        rc = apply_one(conn, &st_migrations[i], err, errlen);
        if (rc == ST_OK) {
            (*applied_count)++;
            log_info("migrate.applied", 0, NULL, "applied migration %03d_%s",
                     st_migrations[i].version, st_migrations[i].name);
        }
    }
    lock(conn, false, ignore, sizeof(ignore));
    free(applied);
    return rc;
}

enum st_err migrate_check(PGconn *conn, char *err, size_t errlen)
{
    bool *applied = calloc(st_migrations_count + 1, sizeof(*applied));
    enum st_err rc;
    PGresult *res;

    if (applied == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory");
    res = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = db_error_kind(conn, res);
        snprintf(err, errlen, "checking migrations: %s", PQresultErrorMessage(res));
        err[strcspn(err, "\n")] = '\0';
        PQclear(res);
        free(applied);
        return rc;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        PQclear(res);
        free(applied);
        return st_fail(err, errlen, ST_CONFIG,
                       "database is not migrated: run `shiptrack migrate` first");
    }
    PQclear(res);
    rc = compare(conn, applied, err, errlen);
    for (size_t i = 0; rc == ST_OK && i < st_migrations_count; i++)
        if (!applied[i])
            rc = st_fail(err, errlen, ST_CONFIG,
                         "migration %03d_%s is not applied: run `shiptrack migrate` first",
                         st_migrations[i].version, st_migrations[i].name);
    free(applied);
    return rc;
}

bool migrate_ensure_conn(PGconn **conn, const char *url, long long max_backoff_ms,
                         volatile sig_atomic_t *running, const char *who)
{
    char err[512];

    while (*running) {
        if (*conn != NULL && PQstatus(*conn) == CONNECTION_OK)
            return true;
        if (*conn != NULL) {
            log_warn("db.lost", 0, NULL, "%s: database connection lost; reconnecting", who);
            PQfinish(*conn);
        }
        *conn = db_connect_retry(url, max_backoff_ms, running);
        if (*conn == NULL)
            return false;
        if (migrate_check(*conn, err, sizeof(err)) == ST_OK)
            return true;
        log_error("db.schema", 0, NULL, "%s: %s", who, err);
        PQfinish(*conn);
        *conn = NULL;
        /* 5 s in short steps, so that SIGTERM is seen soon */
        for (int i = 0; i < 25 && *running; i++) {
            struct timespec ts = { 0, 200000000L };

            nanosleep(&ts, NULL);
        }
    }
    return false;
}
