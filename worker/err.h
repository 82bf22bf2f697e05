/*
 * err.h - the kinds every fallible shiptrack call returns.
 *
 * Callers decide what to do from the kind alone: ST_RETRY means "the same call
 * may succeed later" (timeouts, 429, 5xx, SMTP 4xx, a database restart);
 * ST_PERMANENT means "this input will never succeed" (malformed body, 4xx,
 * SMTP 5xx); ST_CONFIG means "an operator must change something" (bad key,
 * missing credential). The human-readable reason goes into a caller-supplied
 * buffer and names what failed and where.
 */
#ifndef ST_ERR_H
#define ST_ERR_H

#include <stdarg.h>
#include <stddef.h>

enum st_err {
    ST_OK = 0,
    ST_RETRY,     /* transient: try again later */
    ST_PERMANENT, /* this input will never work */
    ST_CONFIG     /* configuration or credentials are wrong */
};

/* Name of an error kind, for logs ("ok", "retry", "permanent", "config"). */
const char *st_err_name(enum st_err e);

/* Format a message into err[errlen] (if err is non-NULL) and return kind.
 * Lets callers write `return st_fail(err, errlen, ST_PERMANENT, "...", ...)`. */
enum st_err st_fail(char *err, size_t errlen, enum st_err kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
