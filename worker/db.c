/*
 * db.c - PostgreSQL connection and statement helpers.
 */
#include "db.h"

#include <pthread.h>
#include <stdint.h>
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

/*
 * Prepared statements: which statements this process has prepared on which
 * connection. A statement's name is a hash of its text, so a name always means
 * the same SQL. An entry holds the server process it was prepared on: after a
 * reconnect (PQreset, or a new PGconn at a freed one's address) the backend
 * PID differs and the statement is prepared again. Never evicted; when the
 * table is full, statements run unprepared (correct, only slower).
 */
#define PREP_SLOTS 512

struct prepared {
    const PGconn *conn;  /* NULL: free slot */
    int backend_pid;     /* server process the statement was prepared on */
    uint64_t hash;       /* of the SQL text; also the statement's name */
};

static struct prepared prep_table[PREP_SLOTS];
static pthread_mutex_t prep_lock = PTHREAD_MUTEX_INITIALIZER;

/* FNV-1a of the SQL text. */
static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* The slot of (conn, hash): its entry, or the free slot to claim, or NULL
 * when the table is full. Call with prep_lock held. */
static struct prepared *prep_slot(const PGconn *conn, uint64_t hash)
{
    size_t start = (size_t)((hash ^ (uint64_t)(uintptr_t)conn) % PREP_SLOTS);

    for (size_t i = 0; i < PREP_SLOTS; i++) {
        struct prepared *e = &prep_table[(start + i) % PREP_SLOTS];

        if (e->conn == NULL || (e->conn == conn && e->hash == hash))
            return e;
    }
    return NULL;
}

PGresult *db_exec_prepared(PGconn *conn, const char *what, const char *sql, int nparams,
                           const char *const *params, ExecStatusType want, enum st_err *kind,
                           char *err, size_t errlen)
{
    uint64_t hash = sql_hash(sql);
    int pid = PQbackendPID(conn);
    char name[24];
    struct prepared *e;
    bool ready;
    PGresult *res;

    snprintf(name, sizeof(name), "st_%016llx", (unsigned long long)hash);
    pthread_mutex_lock(&prep_lock);
    e = prep_slot(conn, hash);
    ready = e != NULL && e->conn == conn && e->backend_pid == pid;
    pthread_mutex_unlock(&prep_lock);
    if (e == NULL || pid == 0)
        return db_exec(conn, what, sql, nparams, params, want, kind, err, errlen);
    if (!ready) {
        res = PQprepare(conn, name, sql, nparams, NULL);
        if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
            if (kind != NULL)
                *kind = db_error_kind(conn, res);
            copy_pq_message(err, errlen, what,
                            res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
            PQclear(res);
            return NULL;
        }
        PQclear(res);
        pthread_mutex_lock(&prep_lock);
        e = prep_slot(conn, hash); /* another thread may have taken the free slot */
        if (e != NULL) {
            e->conn = conn;
            e->hash = hash;
            e->backend_pid = pid;
        }
        pthread_mutex_unlock(&prep_lock);
    }
    res = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
    if (res != NULL && PQresultStatus(res) == want)
        return res;
    if (kind != NULL)
        *kind = db_error_kind(conn, res);
    copy_pq_message(err, errlen, what, res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
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
