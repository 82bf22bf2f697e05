/*
 * cjson.h - JSON access for carrier drivers, with messages that say where.
 *
 * Every driver reads optional members of a known type out of a carrier's
 * JSON body and, when a member has the wrong type, fails with
 * "<carrier>: <where>.<key>: expected a string" (or "an object", "an array").
 * These helpers are that one place; the wording is checked by the carrier
 * test suites and fixtures, so keep it stable.
 *
 * Ownership: values handed out are borrowed from obj (jansson's borrowed
 * references) and live as long as the document does.
 */
#ifndef ST_CJSON_H
#define ST_CJSON_H

#include <jansson.h>
#include <stddef.h>

#include "err.h"

/* Fetch optional string member key of obj into *out (NULL when absent or
 * JSON null). Fails (ST_PERMANENT) when it has another type, naming the place
 * as "carrier: where.key", or "carrier: key" when where is NULL. */
enum st_err cj_opt_string(json_t *obj, const char *key, const char *carrier, const char *where,
                          const char **out, char *err, size_t errlen);

/* As cj_opt_string, for an object member. */
enum st_err cj_opt_object(json_t *obj, const char *key, const char *carrier, const char *where,
                          json_t **out, char *err, size_t errlen);

/* As cj_opt_string, for an array member. */
enum st_err cj_opt_array(json_t *obj, const char *key, const char *carrier, const char *where,
                         json_t **out, char *err, size_t errlen);

#endif
