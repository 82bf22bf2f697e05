/*
 * test_drivers.c - every carrier driver on data alone: one parameterized test
 * over every fixture of every registered carrier.
 *
 * Fixtures live in tests/fixtures/<carrier>/ as pairs:
 *   NAME.response.json  the HTTP body exactly as the carrier would send it
 *                       (it may be deliberately broken)
 *   NAME.expect.json    what the driver must make of it:
 *     {"about": "...", "http_status": 200,
 *      "err": "ok|retry|permanent|config",       what parse_response returns
 *      "language": "fr"?,                        ctx.language while parsing
 *      one number:  "number": "N", and the result fields below at top level
 *      a batch:     "numbers": ["A", "B"], "results": [{result fields}, ...]
 *     result fields: "outcome": "found|not_found|error|needs_register",
 *       "errmsg_contains"?, "estimated_delivery"? ("YYYY-MM-DD"),
 *       "events"?: [{occurred_at (UTC, Z), occurred_local, offset_kind,
 *                    utc_offset_min, status, substatus, affects_status,
 *                    customs, code, description, city, postal_code, country}]}
 * Every pair found on disk is a parameter, so a new fixture needs no code; a
 * second test requires at least six fixtures per registered carrier.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "testutil.h"

#define MAX_PARAMS 512

/* Held by value: Criterion may run each test in a freshly started process. */
struct fixture_param {
    char carrier[16];
    char name[64];
};

/* A string member of an expectation object; "" when absent or null. */
static const char *want_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_string(v) ? json_string_value(v) : "";
}

static void iso_utc(time_t t, char buf[32])
{
    struct tm tm;

    cr_assert_not_null(gmtime_r(&t, &tm));
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void check_str(const char *fx, size_t i, const char *field, const char *got,
                      const char *want)
{
    cr_expect_str_eq(got, want, "%s: events[%zu].%s: got \"%s\", want \"%s\"", fx, i, field, got,
                     want);
}

/* Compare one normalized event with its expectation. */
static void check_event(const char *fx, size_t i, const struct track_event *ev, json_t *want)
{
    char at[32];
    json_t *v;

    cr_assert(json_is_object(want), "%s: expected events[%zu] is not an object", fx, i);
    iso_utc(ev->occurred_at, at);
    check_str(fx, i, "occurred_at", at, want_str(want, "occurred_at"));
    check_str(fx, i, "occurred_local", ev->occurred_local, want_str(want, "occurred_local"));
    check_str(fx, i, "offset_kind", offset_kind_name(ev->offset_kind),
              want_str(want, "offset_kind"));
    v = json_object_get(want, "utc_offset_min");
    cr_expect(json_is_integer(v) && json_integer_value(v) == ev->utc_offset_min,
              "%s: events[%zu].utc_offset_min: got %d", fx, i, ev->utc_offset_min);
    check_str(fx, i, "status", st_status_name(ev->status), want_str(want, "status"));
    check_str(fx, i, "substatus", st_substatus_name(ev->substatus), want_str(want, "substatus"));
    v = json_object_get(want, "affects_status");
    cr_expect(json_is_boolean(v) && json_is_true(v) == ev->affects_status,
              "%s: events[%zu].affects_status: got %d", fx, i, ev->affects_status);
    v = json_object_get(want, "customs");
    cr_expect(json_is_boolean(v) && json_is_true(v) == ev->customs,
              "%s: events[%zu].customs: got %d", fx, i, ev->customs);
    check_str(fx, i, "code", ev->code, want_str(want, "code"));
    check_str(fx, i, "description", ev->description, want_str(want, "description"));
    check_str(fx, i, "city", ev->city, want_str(want, "city"));
    check_str(fx, i, "postal_code", ev->postal_code, want_str(want, "postal_code"));
    check_str(fx, i, "country", ev->country, want_str(want, "country"));
}

/* Compare one result with its expectation object. */
static void check_result(const char *fx, const struct track_result *res, enum st_err rc,
                         const char *err, json_t *want)
{
    json_t *events = json_object_get(want, "events");

    cr_expect_str_eq(track_outcome_name(res->outcome), want_str(want, "outcome"),
                     "%s: outcome %s, want %s (%s / %s)", fx, track_outcome_name(res->outcome),
                     want_str(want, "outcome"), err, res->errmsg);
    if (want_str(want, "errmsg_contains")[0] != '\0') {
        bool in_err = strstr(err, want_str(want, "errmsg_contains")) != NULL;
        bool in_res = strstr(res->errmsg, want_str(want, "errmsg_contains")) != NULL;

        cr_expect(in_err || in_res, "%s: messages \"%s\" / \"%s\" lack \"%s\"", fx, err,
                  res->errmsg, want_str(want, "errmsg_contains"));
        if (res->outcome == TRACK_ERROR && rc != ST_OK)
            cr_expect_eq(res->err, rc, "%s: result kind %s, returned %s", fx,
                         st_err_name(res->err), st_err_name(rc));
    }
    cr_expect_str_eq(res->estimated_delivery, want_str(want, "estimated_delivery"),
                     "%s: estimated_delivery \"%s\"", fx, res->estimated_delivery);
    if (events == NULL) {
        cr_expect_eq(res->n_events, 0, "%s: %zu events, want none", fx, res->n_events);
        return;
    }
    cr_assert(json_is_array(events), "%s: expected events is not an array", fx);
    cr_expect_eq(res->n_events, json_array_size(events), "%s: %zu events, want %zu", fx,
                 res->n_events, json_array_size(events));
    for (size_t i = 0; i < res->n_events && i < json_array_size(events); i++)
        check_event(fx, i, &res->events[i], json_array_get(events, i));
}

static void run_fixture(const struct fixture_param *p)
{
    const struct carrier_def *def = carrier_find(p->carrier);
    struct carrier_ctx ctx = { .base_url = "https://carrier.test", .api_key = "test-key",
                               .client_id = "test-client", .client_secret = "test-secret",
                               .access_token = "test-token" };
    struct track_result res[CARRIER_MAX_BATCH];
    const char *numbers[CARRIER_MAX_BATCH];
    char path[1024], rel[256], err[256] = "", fx[96];
    json_error_t jerr;
    json_t *want, *list, *v;
    size_t n = 0, len;
    enum st_err rc;
    char *body;

    cr_assert_not_null(def, "no driver named %s", p->carrier);
    snprintf(fx, sizeof(fx), "%s/%s", p->carrier, p->name);
    snprintf(rel, sizeof(rel), "%s.expect.json", fx);
    want = json_load_file(tu_fixture_path(path, sizeof(path), rel), 0, &jerr);
    cr_assert_not_null(want, "%s: line %d: %s", rel, jerr.line, jerr.text);
    snprintf(rel, sizeof(rel), "%s.response.json", fx);
    body = tu_read_file(tu_fixture_path(path, sizeof(path), rel), &len);

    list = json_object_get(want, "numbers");
    if (list != NULL) {
        cr_assert(json_is_array(list) && json_array_size(list) > 0 &&
                      json_array_size(list) <= CARRIER_MAX_BATCH,
                  "%s: numbers must be a non-empty array", fx);
        for (n = 0; n < json_array_size(list); n++)
            numbers[n] = json_string_value(json_array_get(list, n));
    } else {
        numbers[0] = want_str(want, "number");
        n = 1;
    }
    for (size_t i = 0; i < n; i++)
        cr_assert(numbers[i] != NULL && numbers[i][0] != '\0', "%s: empty number", fx);
    if (want_str(want, "language")[0] != '\0')
        ctx.language = want_str(want, "language");
    v = json_object_get(want, "http_status");
    cr_assert(json_is_integer(v), "%s: expectation has no http_status", fx);

    memset(res, 0, sizeof(res));
    rc = def->ops->parse_response(&ctx, (long)json_integer_value(v), body, len, numbers, n, res,
                                  err, sizeof(err));
    cr_expect_str_eq(st_err_name(rc), want_str(want, "err"), "%s: returned %s (%s), want %s", fx,
                     st_err_name(rc), err, want_str(want, "err"));
    if (list == NULL)
        check_result(fx, &res[0], rc, err, want);
    else {
        json_t *results = json_object_get(want, "results");

        cr_assert(json_is_array(results) && json_array_size(results) == n,
                  "%s: results must have one entry per number", fx);
        for (size_t i = 0; i < n; i++) {
            char fxi[128];

            snprintf(fxi, sizeof(fxi), "%s[%s]", fx, numbers[i]);
            check_result(fxi, &res[i], rc, err, json_array_get(results, i));
        }
    }
    for (size_t i = 0; i < n; i++)
        track_result_reset(&res[i]);
    free(body);
    json_decref(want);
}

/* Append every NAME of NAME.expect.json in tests/fixtures/<carrier>/. */
static size_t scan(const char *carrier, struct fixture_param *out, size_t max)
{
    static const char suffix[] = ".expect.json";
    char path[1024];
    struct dirent *de;
    size_t n = 0;
    DIR *d = opendir(tu_fixture_path(path, sizeof(path), carrier));

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL && n < max) {
        size_t len = strlen(de->d_name), k = sizeof(suffix) - 1;

        if (len <= k || strcmp(de->d_name + len - k, suffix) != 0 ||
            len - k >= sizeof(out[n].name))
            continue;
        snprintf(out[n].carrier, sizeof(out[n].carrier), "%s", carrier);
        snprintf(out[n].name, sizeof(out[n].name), "%.*s", (int)(len - k), de->d_name);
        n++;
    }
    closedir(d);
    return n;
}

ParameterizedTestParameters(drivers, fixture)
{
    static struct fixture_param params[MAX_PARAMS];
    size_t n = 0;

    for (size_t i = 0; i < carrier_defs_count; i++)
        n += scan(carrier_defs[i]->name, params + n, MAX_PARAMS - n);
    return cr_make_param_array(struct fixture_param, params, n);
}

ParameterizedTest(struct fixture_param *p, drivers, fixture)
{
    run_fixture(p);
}

/* At least six fixtures per driver, each with its response file. */
Test(drivers, every_carrier_has_fixtures)
{
    static struct fixture_param params[MAX_PARAMS];

    for (size_t i = 0; i < carrier_defs_count; i++) {
        size_t n = scan(carrier_defs[i]->name, params, MAX_PARAMS);

        cr_expect_geq(n, 6, "%s has %zu fixtures, want at least 6", carrier_defs[i]->name, n);
        for (size_t k = 0; k < n; k++) {
            char path[1024], rel[160]; /* carrier < 16, name < 64 */
            FILE *f;

            snprintf(rel, sizeof(rel), "%.15s/%.63s.response.json", params[k].carrier,
                     params[k].name);
            f = fopen(tu_fixture_path(path, sizeof(path), rel), "rb");
            cr_expect_not_null(f, "%s has no response file", rel);
            if (f != NULL)
                fclose(f);
        }
    }
}

/* The registry: unique names, sane descriptions, ops complete for the auth kind. */
Test(drivers, registry)
{
    for (size_t i = 0; i < carrier_defs_count; i++) {
        const struct carrier_def *d = carrier_defs[i];

        cr_expect(d->name != NULL && d->display_name != NULL && d->ops != NULL);
        cr_expect(d->batch_max >= 1 && d->batch_max <= CARRIER_MAX_BATCH, "%s batch", d->name);
        cr_expect(d->rate_per_sec > 0, "%s rate", d->name);
        cr_expect(d->ops->build_request != NULL && d->ops->parse_response != NULL);
        if (d->auth == CARRIER_AUTH_OAUTH2)
            cr_expect(d->ops->build_token_request != NULL &&
                          d->ops->parse_token_response != NULL,
                      "%s: OAuth2 without token functions", d->name);
        cr_expect((d->ops->build_register_request == NULL) ==
                      (d->ops->parse_register_response == NULL),
                  "%s: register functions come in pairs", d->name);
        cr_expect_eq(carrier_find(d->name), d);
        for (size_t k = i + 1; k < carrier_defs_count; k++)
            cr_expect(strcmp(d->name, carrier_defs[k]->name) != 0, "duplicate %s", d->name);
    }
}
