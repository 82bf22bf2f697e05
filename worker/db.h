/*
 * db.h - libpq helpers: connecting (with retry), transactions, and sorting
 * PostgreSQL failures into the st_err kinds.
 *
 * All SQL in shiptrack is sent with PQexecParams/PQexecPrepared; values never
 * become part of the SQL text.
 */
#ifndef ST_DB_H
#define ST_DB_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>

#include "err.h"

/* Connect once. Returns NULL with err filled (password masked) on failure. */
PGconn *db_connect(const char *url, char *err, size_t errlen);

/* Connect, retrying with capped exponential backoff (and a log line per
 * failure) while *running is non-zero. Returns NULL only when stopped. */
PGconn *db_connect_retry(const char *url, long long max_backoff_ms,
                         volatile sig_atomic_t *running);

/* Kind of a failed result or connection: connection loss, admin shutdown,
 * serialization failures and deadlocks are ST_RETRY; the rest ST_PERMANENT. */
enum st_err db_error_kind(PGconn *conn, const PGresult *res);

/* Execute a parameterized statement expecting `want` (PGRES_COMMAND_OK or
 * PGRES_TUPLES_OK). Returns the result (caller PQclear()s) or NULL with err
 * set and *kind (if non-NULL) filled. `what` names the statement in err. */
PGresult *db_exec(PGconn *conn, const char *what, const char *sql, int nparams,
                  const char *const *params, ExecStatusType want, enum st_err *kind,
                  char *err, size_t errlen);

/* db_exec for a statement run over and over (the poller's hot path): parsed
 * and planned once per connection (a named prepared statement), then only
 * executed. Same contract as db_exec; sql must be one statement. Needs a
 * session that keeps prepared statements (direct, or pgbouncer in session
 * mode or with max_prepared_statements set). */
PGresult *db_exec_prepared(PGconn *conn, const char *what, const char *sql, int nparams,
                           const char *const *params, ExecStatusType want, enum st_err *kind,
                           char *err, size_t errlen);

/* BEGIN / COMMIT / ROLLBACK. rollback never fails loudly. */
enum st_err db_begin(PGconn *conn, char *err, size_t errlen);
enum st_err db_commit(PGconn *conn, char *err, size_t errlen);
void db_rollback(PGconn *conn);

/* True when the connection is usable; tries one PQreset otherwise. */
bool db_ensure(PGconn *conn);

#endif
