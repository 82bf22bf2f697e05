/*
 * migrate.h - schema migrations compiled into the binary.
 *
 * sql/NNN_name.sql files are embedded at build time (tools/embed.c) in
 * ascending order. migrate_run applies the missing ones, each in its own
 * transaction, records them in schema_migrations, and holds an advisory lock
 * so concurrent starts are safe. A database that has a version this binary
 * does not know, or a known version whose text changed, is refused.
 */
#ifndef ST_MIGRATE_H
#define ST_MIGRATE_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct migration {
    int version;      /* NNN */
    const char *name; /* the part after NNN_ */
    const char *sql;  /* file contents */
};

extern const struct migration st_migrations[];
extern const size_t st_migrations_count;

/* Apply pending migrations; *applied gets how many ran (0 on a no-op). */
enum st_err migrate_run(PGconn *conn, int *applied, char *err, size_t errlen);

/* Check that the database is fully migrated by this binary (used by `run`). */
enum st_err migrate_check(PGconn *conn, char *err, size_t errlen);

/* Keep *conn usable and on this binary's schema: after a loss (or at first,
 * with *conn NULL) reconnect with db_connect_retry's backoff and check the
 * schema again, retrying every 5 s while it does not match. `who` names the
 * role in the log. Returns false only when *running was cleared. */
bool migrate_ensure_conn(PGconn **conn, const char *url, long long max_backoff_ms,
                         volatile sig_atomic_t *running, const char *who);

#endif
