/*
 * cjson.h - JSON access for carrier drivers, with messages that say where.
 *
 * Every driver caps a carrier's body, refuses an empty one, loads it with
 * jansson, then reads optional members of a known type out of it, failing
 * with "<carrier>: <where>.<key>: expected a string" (or "an object", "an
 * array") when a member has the wrong type. These helpers are that one place;
 * the wording is checked by the carrier test suites and fixtures, so keep it
 * stable.
 *
 * Ownership: cj_load_body hands the caller a document to json_decref; the
 * cj_opt_* values are borrowed from obj and live as long as the document.
 */
#ifndef ST_CJSON_H
#define ST_CJSON_H

#include <jansson.h>
#include <stddef.h>

#include "carrier.h"
#include "err.h"

/* Refuse a body longer than max bytes (ST_PERMANENT): "<who>: body of N bytes
 * exceeds the M byte cap". who is the message prefix: "dhl", "fedex: token". */
enum st_err cj_body_cap(const char *who, size_t len, size_t max, char *err, size_t errlen);

/* Load body[0..len) with jansson `flags` into *root (a new reference the
 * caller releases; NULL on failure). Fails (ST_PERMANENT) with "<who>: HTTP
 * <http_status> with an empty body" or "<who>: body is not JSON (line L,
 * column C: text)". */
enum st_err cj_load_body(const char *who, long http_status, const char *body, size_t len,
                         size_t flags, json_t **root, char *err, size_t errlen);

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

/* Answers to anything but HTTP 200 (not found, errors): fill results[0..n). */
typedef enum st_err (*cj_status_fn)(long http_status, const char *body, size_t len,
                                    struct track_result *results, size_t n, char *err,
                                    size_t errlen);
/* A 200 body's JSON object, for the one number asked about. */
typedef enum st_err (*cj_found_fn)(json_t *root, const char *number, struct track_result *res,
                                   char *err, size_t errlen);

/* parse_response of a carrier that answers one number per request (DHL,
 * UPS, USPS): refuse n != 1 and bodies over body_max, hand non-200 answers to
 * on_status, load the body as a JSON object for on_found; every failure also
 * fails the result, and err is filled even when the caller passed none. */
enum st_err cj_parse_single(const char *carrier, size_t body_max, long http_status,
                            const char *body, size_t len, const char *const *numbers, size_t n,
                            struct track_result *results, char *err, size_t errlen,
                            cj_status_fn on_status, cj_found_fn on_found);

#endif
