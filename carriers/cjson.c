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

enum st_err cj_parse_single(const char *carrier, size_t body_max, long http_status,
                            const char *body, size_t len, const char *const *numbers, size_t n,
                            struct track_result *results, char *err, size_t errlen,
                            cj_status_fn on_status, cj_found_fn on_found)
{
    json_t *root;
    enum st_err rc;
    char local[256];

    if (err == NULL || errlen == 0) { /* keep a message for the results anyway */
        err = local;
        errlen = sizeof(local);
    }
    if (n != 1)
        return st_fail(err, errlen, ST_PERMANENT, "%s: one number per response, got %zu",
                       carrier, n);
    if ((rc = cj_body_cap(carrier, len, body_max, err, errlen)) != ST_OK) {
        carrier_fail_all(results, n, rc, err);
        return rc;
    }
    if (http_status != 200)
        return on_status(http_status, body, len, results, n, err, errlen);
    if ((rc = cj_load_body(carrier, http_status, body, len, JSON_REJECT_DUPLICATES, &root, err,
                           errlen)) != ST_OK) {
        carrier_fail_all(results, n, rc, err);
        return rc;
    }
    if (!json_is_object(root))
        rc = st_fail(err, errlen, ST_PERMANENT, "%s: body: expected a JSON object", carrier);
    else {
        track_result_reset(&results[0]);
        rc = on_found(root, numbers[0], &results[0], err, errlen);
    }
    json_decref(root);
    if (rc != ST_OK)
        carrier_fail_all(results, n, rc, err);
    return rc;
}
