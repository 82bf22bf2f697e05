/*
 * cjson.c - loading carrier bodies and typed access to optional JSON members
 * for carrier drivers, with messages that say where (see cjson.h).
 */
#include "cjson.h"

/* Fetch member key of obj into *out when it passes is_type (NULL when absent
 * or JSON null); otherwise fail saying it was expected to be `what`. */
static enum st_err opt_member(json_t *obj, const char *key, const char *carrier,
                              const char *where, int (*is_type)(const json_t *), const char *what,
                              json_t **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return ST_OK;
    if (!is_type(v))
        return st_fail(err, errlen, ST_PERMANENT, "%s: %s%s%s: expected %s", carrier,
                       where != NULL ? where : "", where != NULL ? "." : "", key, what);
    *out = v;
    return ST_OK;
}

/* json_is_string as a function. */
static int is_string(const json_t *v)
{
    return json_is_string(v);
}

/* json_is_object as a function. */
static int is_object(const json_t *v)
{
    return json_is_object(v);
}

/* json_is_array as a function. */
static int is_array(const json_t *v)
{
    return json_is_array(v);
}

enum st_err cj_opt_string(json_t *obj, const char *key, const char *carrier, const char *where,
                          const char **out, char *err, size_t errlen)
{
    json_t *v;
    enum st_err rc = opt_member(obj, key, carrier, where, is_string, "a string", &v, err, errlen);

    *out = v != NULL ? json_string_value(v) : NULL;
    return rc;
}

enum st_err cj_opt_object(json_t *obj, const char *key, const char *carrier, const char *where,
                          json_t **out, char *err, size_t errlen)
{
    return opt_member(obj, key, carrier, where, is_object, "an object", out, err, errlen);
}

enum st_err cj_opt_array(json_t *obj, const char *key, const char *carrier, const char *where,
                         json_t **out, char *err, size_t errlen)
{
    return opt_member(obj, key, carrier, where, is_array, "an array", out, err, errlen);
}

enum st_err cj_body_cap(const char *who, size_t len, size_t max, char *err, size_t errlen)
{
    if (len > max)
        return st_fail(err, errlen, ST_PERMANENT, "%s: body of %zu bytes exceeds the %zu byte cap",
                       who, len, max);
    return ST_OK;
}

enum st_err cj_load_body(const char *who, long http_status, const char *body, size_t len,
                         size_t flags, json_t **root, char *err, size_t errlen)
{
    json_error_t jerr;

    *root = NULL;
    if (body == NULL || len == 0)
        return st_fail(err, errlen, ST_PERMANENT, "%s: HTTP %ld with an empty body", who,
                       http_status);
    *root = json_loadb(body, len, flags, &jerr);
    if (*root == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "%s: body is not JSON (line %d, column %d: %s)",
                       who, jerr.line, jerr.column, jerr.text);
    return ST_OK;
}
