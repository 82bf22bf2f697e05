/*
 * db.c - PostgreSQL connection and statement helpers.
 */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"

/* Copy libpq's message into err, one line, trimmed. */
static void copy_pq_message(char *err, size_t errlen, const char *what, const char *msg)
{
    size_t n;

    snprintf(err, errlen, "%s: %s", what, msg ? msg : "unknown error");
    n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
    for (char *p = err; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

PGconn *db_connect(const char *url, char *err, size_t errlen)
{
    /* defaults first: settings in the user's URL (expanded from dbname) win */
    const char *keys[] = { "application_name", "connect_timeout", "dbname", NULL };
    const char *vals[] = { "shiptrack", "10", url, NULL };
    char masked[512];
    PGconn *conn = PQconnectdbParams(keys, vals, 1);

    if (conn == NULL) {
        snprintf(err, errlen, "database: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char what[600];

        snprintf(what, sizeof(what), "cannot connect to %s",
                 config_mask_url(url, masked, sizeof(masked)));
        copy_pq_message(err, errlen, what, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

PGconn *db_connect_retry(const char *url, long long max_backoff_ms,
                         volatile sig_atomic_t *running)
{
    long long backoff = 250;
    char err[1024];

    while (*running) {
        PGconn *conn = db_connect(url, err, sizeof(err));
        struct timespec ts;

        if (conn != NULL)
            return conn;
        /* jitter: 75%..125% of the current backoff */
        long long wait = backoff * 3 / 4 + (long long)(rand() % (int)(backoff / 2 + 1));
        log_error("db.connect", 0, NULL, "%s; retrying in %lld ms", err, wait);
        ts.tv_sec = wait / 1000;
        ts.tv_nsec = (wait % 1000) * 1000000L;
        while (*running && nanosleep(&ts, &ts) != 0)
            ;
        backoff = backoff * 2 > max_backoff_ms ? max_backoff_ms : backoff * 2;
    }
    return NULL;
}

enum st_err db_error_kind(PGconn *conn, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
        return ST_RETRY;
    if (state == NULL)
        return ST_RETRY; /* no SQLSTATE: the server never answered */
    if (strncmp(state, "08", 2) == 0 ||   /* connection exception */
        strncmp(state, "57P", 3) == 0 ||  /* admin/crash shutdown, cannot connect now */
        strcmp(state, "40001") == 0 ||    /* serialization failure */
        strcmp(state, "40P01") == 0 ||    /* deadlock detected */
        strcmp(state, "55P03") == 0 ||    /* lock not available */
        strncmp(state, "53", 2) == 0)     /* insufficient resources */
        return ST_RETRY;
    return ST_PERMANENT;
}

PGresult *db_exec(PGconn *conn, const char *what, const char *sql, int nparams,
                  const char *const *params, ExecStatusType want, enum st_err *kind,
                  char *err, size_t errlen)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

    if (res != NULL && PQresultStatus(res) == want)
        return res;
    if (kind != NULL)
        *kind = db_error_kind(conn, res);
    copy_pq_message(err, errlen, what,
                    res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    PQclear(res);
    return NULL;
}

static enum st_err simple(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    enum st_err kind = ST_OK;
    PGresult *res = db_exec(conn, sql, sql, 0, NULL, PGRES_COMMAND_OK, &kind, err, errlen);

    if (res == NULL)
        return kind;
    PQclear(res);
    return ST_OK;
}

enum st_err db_begin(PGconn *conn, char *err, size_t errlen)
{
    return simple(conn, "BEGIN", err, errlen);
}

enum st_err db_commit(PGconn *conn, char *err, size_t errlen)
{
    return simple(conn, "COMMIT", err, errlen);
}

void db_rollback(PGconn *conn)
{
    PGresult *res;

    if (PQstatus(conn) != CONNECTION_OK)
        return;
    res = PQexec(conn, "ROLLBACK");
    PQclear(res);
}

bool db_ensure(PGconn *conn)
{
    if (PQstatus(conn) == CONNECTION_OK)
        return true;
    PQreset(conn);
    return PQstatus(conn) == CONNECTION_OK;
}
