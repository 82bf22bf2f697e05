/*
 * testutil.h - helpers shared by the Criterion suites.
 *
 * Paths: fixtures live in tests/fixtures/ of the source tree; the conformance
 * data lives in ../shared beside the checkout (override with SHIPTRACK_SHARED_DIR).
 */
#ifndef ST_TESTUTIL_H
#define ST_TESTUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Read a whole file into a NUL-terminated heap buffer; *len gets its size.
 * Aborts the test (cr_assert) when the file cannot be read. */
char *tu_read_file(const char *path, size_t *len);

/* "<source>/tests/fixtures/<rel>" in buf; returns buf. */
const char *tu_fixture_path(char *buf, size_t cap, const char *rel);

/* "<shared>/<rel>" in buf, shared = $SHIPTRACK_SHARED_DIR or <source>/../shared. */
const char *tu_shared_path(char *buf, size_t cap, const char *rel);

/* Path of a built binary ("shiptrack", "shiptrack-carrier-sim") in buf. */
const char *tu_binary_path(char *buf, size_t cap, const char *name);

/* Run argv (argv[0] a path) with extra "KEY=value" env entries (NULL-terminated
 * list or NULL), stdin from /dev/null; capture stdout and stderr into heap
 * strings (caller frees; pass NULL to discard). Returns the exit status, or
 * 128+signal when killed. */
int tu_run(char *const argv[], const char *const *env_extra, char **out, char **err);

/* A running shiptrack-carrier-sim. */
struct tu_sim {
    pid_t pid;
    char url[128]; /* http://127.0.0.1:PORT */
};

/* Start the simulator with extra arguments (NULL-terminated list, may be NULL)
 * on a free port; waits for its "listening on" line. Asserts on failure. */
void tu_sim_start(struct tu_sim *sim, const char *const *args);
/* SIGTERM the simulator and wait; asserts it exited 0. */
void tu_sim_stop(struct tu_sim *sim);

/* GET url; returns the body (heap) and fills *status. Asserts on transport errors. */
char *tu_http_get(const char *url, long *status);

#endif
