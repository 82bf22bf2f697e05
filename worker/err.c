/*
 * err.c - error kinds and the message helper.
 */
#include "err.h"

#include <stdio.h>

const char *st_err_name(enum st_err e)
{
    switch (e) {
    case ST_OK: return "ok";
    case ST_RETRY: return "retry";
    case ST_PERMANENT: return "permanent";
    case ST_CONFIG: return "config";
    }
    return "invalid";
}

enum st_err st_fail(char *err, size_t errlen, enum st_err kind, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return kind;
}
