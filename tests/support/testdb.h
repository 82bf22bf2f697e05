/*
 * testdb.h - one fresh, migrated database per test.
 *
 * Criterion runs each test in its own process; tdb_create makes a database
 * named after that process in the throwaway cluster whose URL scripts/test
 * exports as SHIPTRACK_TEST_PG_URL, so tests never share mutable state.
 */
#ifndef ST_TESTDB_H
#define ST_TESTDB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct testdb {
    char name[64];
    char url[512];
    PGconn *conn;
};

/* Create (and, when migrate is true, migrate) a fresh database; asserts on failure. */
void tdb_create(struct testdb *db, bool migrate);
/* Close the connection and drop the database. */
void tdb_drop(struct testdb *db);

/* Run a query and return the first column of the first row as a heap string
 * (NULL for SQL NULL or no rows). Asserts the query succeeds. */
char *tdb_scalar(PGconn *conn, const char *sql);
/* Same, as a long long (0 for NULL). */
long long tdb_count(PGconn *conn, const char *sql);
/* Run a statement; asserts success. */
void tdb_exec(PGconn *conn, const char *sql);

#endif
