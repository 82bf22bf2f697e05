/*
 * test_dhl.c - the DHL Unified driver (carriers/dhl.c) on data alone.
 *
 * Fixtures live in tests/fixtures/dhl/ as pairs:
 *   NAME.response.json  the HTTP body exactly as DHL would send it (it may be
 *                       deliberately broken)
 *   NAME.expect.json    {"about", "number", "language"?, "http_status",
 *                        "err" (ok|retry|permanent|config), "outcome"
 *                        (found|not_found|error), "errmsg_contains"?,
 *                        "estimated_delivery"?, "events"?: [{occurred_at (UTC,
 *                        Z), occurred_local, offset_kind, utc_offset_min,
 *                        status, substatus, affects_status, customs, code,
 *                        description, city, postal_code, country}]}
 * One parameterized test runs every pair and compares every field; another
 * checks that no pair on disk is left out of the list. The rest covers
 * build_request.
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

extern const struct carrier_def carrier_dhl;

/* Every fixture pair, by name. */
static const char *const fixture_names[] = {
    "domestic_de",
    "customs_cn_de",
    "customs_us_fr",
    "customs_wording",
    "delivery_outcomes",
    "unordered_duplicates",
    "no_offsets",
    "unmapped",
    "not_found",
    "no_shipments",
    "rate_limited",
    "server_error",
    "unauthorized",
    "malformed",
    "bad_timestamp",
    "wrong_type",
};

#define N_FIXTURES (sizeof(fixture_names) / sizeof(fixture_names[0]))

/* Parameter of the fixture test. Held by value: Criterion may run each test in
 * a freshly started process, where pointers into our image would not hold. */
struct fixture_param {
    char name[48];
};

/* A string member of an expectation object; "" when absent or null. */
static const char *want_str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_string(v) ? json_string_value(v) : "";
}

/* "YYYY-MM-DDTHH:MM:SSZ" of t. */
static void iso_utc(time_t t, char buf[32])
{
    struct tm tm;

    cr_assert_not_null(gmtime_r(&t, &tm));
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Compare one string field and say where it differs. */
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

/* Run fixture `name` through parse_response and compare everything. */
static void run_fixture(const char *name)
{
    char path[1024], rel[256], err[256] = "";
    json_error_t jerr;
    json_t *want, *events, *v;
    struct carrier_ctx ctx = { .base_url = "https://api-eu.dhl.com", .api_key = "test-key" };
    struct track_result res;
    const char *number;
    char *body;
    size_t len;
    enum st_err rc;

    snprintf(rel, sizeof(rel), "dhl/%s.expect.json", name);
    want = json_load_file(tu_fixture_path(path, sizeof(path), rel), 0, &jerr);
    cr_assert_not_null(want, "%s: %s line %d: %s", name, rel, jerr.line, jerr.text);
    snprintf(rel, sizeof(rel), "dhl/%s.response.json", name);
    body = tu_read_file(tu_fixture_path(path, sizeof(path), rel), &len);

    number = want_str(want, "number");
    cr_assert(number[0] != '\0', "%s: expectation has no number", name);
    if (want_str(want, "language")[0] != '\0')
        ctx.language = want_str(want, "language");
    v = json_object_get(want, "http_status");
    cr_assert(json_is_integer(v), "%s: expectation has no http_status", name);

    memset(&res, 0, sizeof(res));
    rc = carrier_dhl.ops->parse_response(&ctx, (long)json_integer_value(v), body, len, &number,
                                         1, &res, err, sizeof(err));
    cr_expect_str_eq(st_err_name(rc), want_str(want, "err"), "%s: returned %s (%s), want %s",
                     name, st_err_name(rc), err, want_str(want, "err"));
    cr_expect_str_eq(track_outcome_name(res.outcome), want_str(want, "outcome"),
                     "%s: outcome %s, want %s (%s)", name, track_outcome_name(res.outcome),
                     want_str(want, "outcome"), err);
    if (want_str(want, "errmsg_contains")[0] != '\0') {
        cr_expect(strstr(err, want_str(want, "errmsg_contains")) != NULL,
                  "%s: message \"%s\" lacks \"%s\"", name, err,
                  want_str(want, "errmsg_contains"));
        cr_expect(strstr(res.errmsg, want_str(want, "errmsg_contains")) != NULL,
                  "%s: result message \"%s\" lacks \"%s\"", name, res.errmsg,
                  want_str(want, "errmsg_contains"));
        cr_expect_eq(res.err, rc, "%s: result kind %s, returned %s", name,
                     st_err_name(res.err), st_err_name(rc));
    }
    cr_expect_str_eq(res.estimated_delivery, want_str(want, "estimated_delivery"),
                     "%s: estimated_delivery \"%s\"", name, res.estimated_delivery);

    events = json_object_get(want, "events");
    if (events == NULL)
        cr_expect_eq(res.n_events, 0, "%s: %zu events, want none", name, res.n_events);
    else {
        cr_assert(json_is_array(events), "%s: expected events is not an array", name);
        cr_expect_eq(res.n_events, json_array_size(events), "%s: %zu events, want %zu", name,
                     res.n_events, json_array_size(events));
        for (size_t i = 0; i < res.n_events && i < json_array_size(events); i++)
            check_event(name, i, &res.events[i], json_array_get(events, i));
    }
    track_result_reset(&res);
    free(body);
    json_decref(want);
}

ParameterizedTestParameters(dhl, fixture)
{
    static struct fixture_param params[N_FIXTURES];

    for (size_t i = 0; i < N_FIXTURES; i++)
        snprintf(params[i].name, sizeof(params[i].name), "%s", fixture_names[i]);
    return cr_make_param_array(struct fixture_param, params, N_FIXTURES);
}

ParameterizedTest(struct fixture_param *p, dhl, fixture)
{
    run_fixture(p->name);
}

/* Every NAME.expect.json on disk has a response and is in fixture_names. */
Test(dhl, fixture_list_complete)
{
    char path[1024], rel[512];
    struct dirent *de;
    size_t seen = 0;
    DIR *d = opendir(tu_fixture_path(path, sizeof(path), "dhl"));

    cr_assert_not_null(d, "cannot open %s", path);
    while ((de = readdir(d)) != NULL) {
        const char *suffix = ".expect.json";
        size_t n = strlen(de->d_name), k = strlen(suffix);
        bool listed = false;
        FILE *f;

        if (n <= k || strcmp(de->d_name + n - k, suffix) != 0)
            continue;
        for (size_t i = 0; i < N_FIXTURES; i++)
            if (strlen(fixture_names[i]) == n - k &&
                strncmp(fixture_names[i], de->d_name, n - k) == 0)
                listed = true;
        cr_expect(listed, "fixture %s is not in fixture_names[]", de->d_name);
        snprintf(rel, sizeof(rel), "dhl/%.*s.response.json", (int)(n - k), de->d_name);
        f = fopen(tu_fixture_path(path, sizeof(path), rel), "rb");
        cr_expect_not_null(f, "fixture %s has no response file", de->d_name);
        if (f != NULL)
            fclose(f);
        seen++;
    }
    closedir(d);
    cr_expect_eq(seen, N_FIXTURES, "%zu expectation files on disk, %zu listed", seen, N_FIXTURES);
}

/* The descriptive half of the driver. */
Test(dhl, definition)
{
    cr_expect_str_eq(carrier_dhl.name, "dhl");
    cr_expect_str_eq(carrier_dhl.display_name, "DHL (Unified)");
    cr_expect_eq(carrier_dhl.batch_max, 1);
    cr_expect_eq(carrier_dhl.rate_per_sec, 1.0);
    cr_expect_eq(carrier_dhl.rate_per_day, 250);
    cr_expect_eq(carrier_dhl.auth, CARRIER_AUTH_API_KEY);
    cr_expect_str_eq(carrier_dhl.default_base_url, "https://api-eu.dhl.com");
    cr_expect_eq(carrier_find("dhl"), &carrier_dhl);
}

/* Build a request for one number; returns the kind, req and err filled. */
static enum st_err build(const char *base, const char *key, const char *lang,
                         const char *number, struct carrier_request *req, char *err,
                         size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = base, .api_key = key, .language = lang };

    memset(req, 0, sizeof(*req));
    err[0] = '\0';
    return carrier_dhl.ops->build_request(&ctx, &number, 1, req, err, errlen);
}

Test(dhl, request_plain)
{
    struct carrier_request req;
    char err[256];

    cr_assert_eq(build("https://api-eu.dhl.com", "s3cret", NULL, "JJD0001234567", &req, err,
                       sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(req.method, CARRIER_GET);
    cr_expect_str_eq(req.url, "https://api-eu.dhl.com/track/shipments?trackingNumber=JJD0001234567");
    cr_assert_eq(req.n_headers, 2);
    cr_expect_str_eq(req.headers[0], "DHL-API-Key: s3cret");
    cr_expect_str_eq(req.headers[1], "Accept: application/json");
    cr_expect_null(req.body);
    carrier_request_reset(&req);
}

Test(dhl, request_language_and_base)
{
    struct carrier_request req;
    char err[256];

    /* trailing slashes dropped; language percent-encoded */
    cr_assert_eq(build("http://127.0.0.1:8080//", "k", "pt-BR", "1234567890", &req, err,
                       sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(req.url,
                     "http://127.0.0.1:8080/track/shipments?trackingNumber=1234567890&language=pt-BR");
    carrier_request_reset(&req);
    cr_assert_eq(build("http://sim", "k", "en&x=1 ü", "12-AB-cd", &req, err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_expect_str_eq(req.url, "http://sim/track/shipments?trackingNumber=12-AB-cd"
                              "&language=en%26x%3D1%20%C3%BC");
    carrier_request_reset(&req);
    /* no base: DHL's own */
    cr_assert_eq(build(NULL, "k", "", "1234567890", &req, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(req.url, "https://api-eu.dhl.com/track/shipments?trackingNumber=1234567890");
    carrier_request_reset(&req);
}

Test(dhl, request_rejects_bad_numbers)
{
    static const char *const bad[] = {
        "", "12 34", "abc/def", "1234?x=1", "12%20", "ünicode", "12\r\n34",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    };
    struct carrier_request req;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(build("https://api-eu.dhl.com", "k", NULL, bad[i], &req, err, sizeof(err)),
                     ST_PERMANENT, "number #%zu accepted", i);
        cr_expect(strstr(err, "dhl: tracking number") != NULL, "message: %s", err);
        carrier_request_reset(&req);
    }
}

Test(dhl, request_key_problems_are_config)
{
    struct carrier_request req;
    char err[256];

    cr_expect_eq(build("https://api-eu.dhl.com", NULL, NULL, "1234567890", &req, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect(strstr(err, "no API key") != NULL, "message: %s", err);
    cr_expect_eq(build("https://api-eu.dhl.com", "", NULL, "1234567890", &req, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect_eq(build("https://api-eu.dhl.com", "abc\r\nX-Evil: 1", NULL, "1234567890", &req,
                       err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "control characters") != NULL, "message: %s", err);
    cr_expect_eq(build("https://api-eu.dhl.com", "abc\ndef", NULL, "1234567890", &req, err,
                       sizeof(err)), ST_CONFIG);
    cr_expect_eq(req.n_headers, 0, "no header may be written for a bad key");
    carrier_request_reset(&req);
}

Test(dhl, request_url_cap)
{
    struct carrier_request req;
    char err[256], base[CARRIER_URL_MAX];

    memset(base, 'a', sizeof(base) - 40);
    memcpy(base, "http://", 7);
    base[sizeof(base) - 40] = '\0';
    cr_expect_eq(build(base, "k", NULL, "1234567890", &req, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "longer than") != NULL, "message: %s", err);
    carrier_request_reset(&req);
}

Test(dhl, body_cap)
{
    size_t len = 4u * 1024u * 1024u + 1;
    char *body = malloc(len), err[256] = "";
    const char *number = "1234567890";
    struct carrier_ctx ctx = { .api_key = "k" };
    struct track_result res;

    cr_assert_not_null(body);
    memset(body, ' ', len);
    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_dhl.ops->parse_response(&ctx, 200, body, len, &number, 1, &res, err,
                                                 sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "cap") != NULL, "message: %s", err);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    track_result_reset(&res);
    free(body);
}

Test(dhl, null_error_buffer_still_fills_results)
{
    static const char body[] = "{\"shipments\": 3}";
    const char *number = "1234567890";
    struct carrier_ctx ctx = { .api_key = "k" };
    struct track_result res;

    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_dhl.ops->parse_response(&ctx, 200, body, sizeof(body) - 1, &number, 1,
                                                 &res, NULL, 0), ST_PERMANENT);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    cr_expect(strstr(res.errmsg, "shipments: expected an array") != NULL, "%s", res.errmsg);
    track_result_reset(&res);
}
