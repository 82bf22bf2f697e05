/*
 * test_track17.c - the 17TRACK v2.2 driver (carriers/track17.c) and its
 * simulator renderer (carriers/sim/sim_track17.c).
 *
 * The fixtures (tests/fixtures/track17/) run in test_drivers.c; this file
 * covers the rest on data alone (definition, both request builders, the
 * register answer, caps), then runs the real simulator binary (time
 * compressed 10^8 times, so every journey has played out) and drives it with
 * the driver's own requests: the 17token check, gettrackinfo before
 * registration (needs_register), register and register again, every planned
 * journey parsed into exactly its steps' expected statuses and customs holds,
 * numbers the simulator does not know (not found), the 40-number limit, and
 * numbers of other carriers' shapes.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "detect.h"
#include "geo.h"
#include "simclient.h"
#include "testutil.h"

extern const struct carrier_def carrier_track17;

#define SIM_KEY   "sim-t17-key"

/* ------------------------------------------------------------------------ */
/* Definition and requests. */

Test(track17, definition)
{
    cr_expect_str_eq(carrier_track17.name, "track17");
    cr_expect_str_eq(carrier_track17.display_name, "17TRACK (v2.2)");
    cr_expect_eq(carrier_track17.batch_max, 40);
    cr_expect_eq(carrier_track17.rate_per_sec, 3.0);
    cr_expect_eq(carrier_track17.rate_per_day, 0);
    cr_expect_eq(carrier_track17.auth, CARRIER_AUTH_API_KEY);
    cr_expect_str_eq(carrier_track17.default_base_url, "https://api.17track.net");
    cr_expect_not_null(carrier_track17.ops->build_register_request);
    cr_expect_not_null(carrier_track17.ops->parse_register_response);
    cr_expect_null(carrier_track17.ops->build_token_request);
    cr_expect_eq(carrier_find("track17"), &carrier_track17);
}

/* Build a gettrackinfo (or register) request; returns the kind. */
static enum st_err build(bool reg, const char *base, const char *key, const char *const *numbers,
                         size_t n, struct carrier_request *req, char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = base, .api_key = key };

    memset(req, 0, sizeof(*req));
    err[0] = '\0';
    return reg ? carrier_track17.ops->build_register_request(&ctx, numbers, n, req, err, errlen)
               : carrier_track17.ops->build_request(&ctx, numbers, n, req, err, errlen);
}

Test(track17, request_gettrackinfo)
{
    static const char *const numbers[] = { "RR123456785FR", "1Z5R89390357567127", "ab-12cd34" };
    struct carrier_request req;
    char err[256];

    cr_assert_eq(build(false, "https://api.17track.net", "s3cret", numbers, 3, &req, err,
                       sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(req.method, CARRIER_POST);
    cr_expect_str_eq(req.url, "https://api.17track.net/track/v2.2/gettrackinfo");
    cr_assert_eq(req.n_headers, 3);
    cr_expect_str_eq(req.headers[0], "17token: s3cret");
    cr_expect_str_eq(req.headers[1], "Content-Type: application/json");
    cr_expect_str_eq(req.headers[2], "Accept: application/json");
    cr_assert_not_null(req.body);
    cr_expect_eq(req.body_len, strlen(req.body));
    cr_expect_str_eq(req.body, "[{\"number\":\"RR123456785FR\"},{\"number\":\"1Z5R89390357567127\"},"
                               "{\"number\":\"ab-12cd34\"}]");
    carrier_request_reset(&req);
}

Test(track17, request_register_and_base)
{
    static const char *const numbers[] = { "RR123456785FR" };
    struct carrier_request req;
    char err[256];

    cr_assert_eq(build(true, "http://127.0.0.1:8080//", "k", numbers, 1, &req, err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_expect_eq(req.method, CARRIER_POST);
    cr_expect_str_eq(req.url, "http://127.0.0.1:8080/track/v2.2/register");
    cr_expect_str_eq(req.body, "[{\"number\":\"RR123456785FR\"}]");
    cr_expect_str_eq(req.headers[0], "17token: k");
    carrier_request_reset(&req);
    cr_assert_eq(build(false, NULL, "k", numbers, 1, &req, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(req.url, "https://api.17track.net/track/v2.2/gettrackinfo");
    carrier_request_reset(&req);
}

Test(track17, request_batch_limit)
{
    static char store[41][16];
    const char *numbers[41];
    struct carrier_request req;
    json_t *body;
    char err[256];

    for (int i = 0; i < 41; i++) {
        snprintf(store[i], sizeof(store[i]), "NUM%08d", i);
        numbers[i] = store[i];
    }
    cr_assert_eq(build(false, NULL, "k", numbers, 40, &req, err, sizeof(err)), ST_OK, "%s", err);
    body = json_loads(req.body, 0, NULL);
    cr_assert(json_is_array(body) && json_array_size(body) == 40, "%s", req.body);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(body, 39), "number")),
                     "NUM00000039");
    json_decref(body);
    carrier_request_reset(&req);
    cr_expect_eq(build(false, NULL, "k", numbers, 41, &req, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "1 to 40 numbers") != NULL, "%s", err);
    cr_expect_eq(build(true, NULL, "k", numbers, 41, &req, err, sizeof(err)), ST_PERMANENT);
    cr_expect_eq(build(true, NULL, "k", numbers, 0, &req, err, sizeof(err)), ST_PERMANENT);
    cr_expect_null(req.body);
}

Test(track17, request_rejects_bad_numbers)
{
    static const char *const bad[] = {
        "", "12 34", "RR\"1\"FR", "a\\b", "ünicode", "12\r\n34", "12\n34", "x/y",
        "01234567890123456789012345678901234567890123456789012345678901234",
    };
    struct carrier_request req;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *numbers[] = { "RR123456785FR", bad[i] };

        cr_expect_eq(build(false, NULL, "k", numbers, 2, &req, err, sizeof(err)), ST_PERMANENT,
                     "number #%zu accepted", i);
        cr_expect(strstr(err, "track17: tracking number") != NULL, "message: %s", err);
        cr_expect_null(req.body, "no body may be left for a refused request");
        carrier_request_reset(&req);
    }
}

Test(track17, request_key_problems_are_config)
{
    static const char *const numbers[] = { "RR123456785FR" };
    struct carrier_request req;
    char err[256];

    for (int reg = 0; reg < 2; reg++) {
        cr_expect_eq(build(reg, NULL, NULL, numbers, 1, &req, err, sizeof(err)), ST_CONFIG);
        cr_expect(strstr(err, "no API key") != NULL, "message: %s", err);
        cr_expect_eq(build(reg, NULL, "", numbers, 1, &req, err, sizeof(err)), ST_CONFIG);
        cr_expect_eq(build(reg, NULL, "abc\r\nX-Evil: 1", numbers, 1, &req, err, sizeof(err)),
                     ST_CONFIG);
        cr_expect(strstr(err, "control characters") != NULL, "message: %s", err);
        cr_expect_eq(build(reg, NULL, "abc\ndef", numbers, 1, &req, err, sizeof(err)),
                     ST_CONFIG);
        cr_expect_eq(req.n_headers, 0, "no header may be written for a bad key");
        cr_expect_null(req.body);
        carrier_request_reset(&req);
    }
}

Test(track17, request_url_cap)
{
    static const char *const numbers[] = { "RR123456785FR" };
    struct carrier_request req;
    char err[256], base[CARRIER_URL_MAX];

    memset(base, 'a', sizeof(base) - 10);
    memcpy(base, "http://", 7);
    base[sizeof(base) - 10] = '\0';
    cr_expect_eq(build(false, base, "k", numbers, 1, &req, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "longer than") != NULL, "message: %s", err);
    carrier_request_reset(&req);
}

/* ------------------------------------------------------------------------ */
/* Parsing on data alone. */

/* parse_register_response on a literal body. */
static enum st_err parse_reg(long status, const char *body, const char *const *numbers, size_t n,
                             bool *registered, char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .api_key = "k" };

    err[0] = '\0';
    return carrier_track17.ops->parse_register_response(&ctx, status, body, strlen(body),
                                                        numbers, n, registered, err, errlen);
}

Test(track17, register_answer)
{
    static const char body[] =
        "{\"code\":0,\"data\":{\"accepted\":[{\"origin\":1,\"number\":\"RR123456785FR\","
        "\"carrier\":6051}],\"rejected\":[{\"number\":\"CP118730465IT\",\"error\":{\"code\":"
        "-18019901,\"message\":\"already registered\"}},{\"number\":\"XX1\",\"error\":{\"code\":"
        "-18010012,\"message\":\"invalid\"}}]}}";
    static const char *const numbers[] = { "rr123456785fr", "CP118730465IT", "XX1", "ZZ9" };
    bool reg[4] = { true, false, true, true };
    char err[256];

    cr_assert_eq(parse_reg(200, body, numbers, 4, reg, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect(reg[0], "accepted (case-insensitive match)");
    cr_expect(reg[1], "already registered counts as registered");
    cr_expect(!reg[2], "rejected as invalid");
    cr_expect(!reg[3], "not in the answer");
}

Test(track17, register_failures)
{
    static const char *const numbers[] = { "RR123456785FR" };
    static const struct {
        long status;
        const char *body;
        enum st_err want;
        const char *msg;
    } cases[] = {
        { 401, "{\"code\":-18010002,\"data\":{\"errors\":[{\"code\":-18010002,\"message\":\"bad "
               "token\"}]}}", ST_CONFIG, "HTTP 401: bad token" },
        { 403, "", ST_CONFIG, "rejected the API key" },
        { 429, "{}", ST_RETRY, "rate limited" },
        { 502, "<html>", ST_RETRY, "server error (HTTP 502)" },
        { 404, "not here", ST_PERMANENT, "unexpected HTTP status 404" },
        { 200, "{\"code\":0,\"data\":{\"accepted\":[{\"number\":7}]}}", ST_PERMANENT,
          "data.accepted[0].number: expected a string" },
        { 200, "{\"code\":0,\"data\":{\"rejected\":[{\"number\":\"A\",\"error\":{\"code\":\"x\"}}]}}",
          ST_PERMANENT, "data.rejected[0].error.code: expected an integer" },
        { 200, "{\"code\":0}", ST_PERMANENT, "data: missing" },
        { 200, "{\"code\":\"0\",\"data\":{}}", ST_PERMANENT, "code: expected an integer" },
        { 200, "[1,2]", ST_PERMANENT, "expected a JSON object" },
        { 200, "{\"code\":0,\"data\":", ST_PERMANENT, "not JSON" },
        { 200, "{\"code\":-18010014,\"data\":{\"errors\":[{\"code\":-18010014,\"message\":\"over "
               "40\"}]}}", ST_PERMANENT, "more than 40 numbers" },
        { 200, "{\"code\":-18010099,\"data\":{}}", ST_RETRY, "code -18010099" },
        { 200, "", ST_PERMANENT, "empty body" },
    };
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool reg = true;

        cr_expect_eq(parse_reg(cases[i].status, cases[i].body, numbers, 1, &reg, err,
                               sizeof(err)), cases[i].want, "case %zu: %s", i, err);
        cr_expect(strstr(err, cases[i].msg) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, err,
                  cases[i].msg);
        cr_expect(strncmp(err, "track17: ", 9) == 0, "case %zu: %s", i, err);
        cr_expect(!reg, "case %zu: nothing registered on failure", i);
    }
}

Test(track17, body_cap)
{
    size_t len = 4u * 1024u * 1024u + 1;
    char *body = malloc(len), err[256] = "";
    const char *number = "RR123456785FR";
    struct carrier_ctx ctx = { .api_key = "k" };
    struct track_result res;
    bool reg = true;

    cr_assert_not_null(body);
    memset(body, ' ', len);
    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_track17.ops->parse_response(&ctx, 200, body, len, &number, 1, &res, err,
                                                     sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "cap") != NULL, "message: %s", err);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    cr_expect_eq(res.err, ST_PERMANENT);
    track_result_reset(&res);
    cr_expect_eq(carrier_track17.ops->parse_register_response(&ctx, 200, body, len, &number, 1,
                                                              &reg, err, sizeof(err)),
                 ST_PERMANENT);
    cr_expect(!reg);
    free(body);
}

Test(track17, null_error_buffer_still_fills_results)
{
    static const char body[] = "{\"code\":0,\"data\":{\"accepted\":[{\"number\":\"A1234567\","
                               "\"track_info\":{\"tracking\":{\"providers\":{}}}}]}}";
    const char *number = "A1234567";
    struct carrier_ctx ctx = { .api_key = "k" };
    struct track_result res;

    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_track17.ops->parse_response(&ctx, 200, body, sizeof(body) - 1, &number,
                                                     1, &res, NULL, 0), ST_PERMANENT);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    cr_expect(strstr(res.errmsg, "data.accepted[0].track_info.tracking.providers: expected an "
                                 "array") != NULL, "%s", res.errmsg);
    track_result_reset(&res);
}

/* Unknown rejection codes are retried, per number, with the code quoted. */
Test(track17, unknown_rejection_is_retry)
{
    static const char body[] = "{\"code\":0,\"data\":{\"accepted\":[],\"rejected\":[{\"number\":"
                               "\"A1234567\",\"error\":{\"code\":-18019955,\"message\":"
                               "\"busy\"}}]}}";
    const char *number = "A1234567";
    struct carrier_ctx ctx = { .api_key = "k" };
    struct track_result res;
    char err[256] = "";

    memset(&res, 0, sizeof(res));
    cr_assert_eq(carrier_track17.ops->parse_response(&ctx, 200, body, sizeof(body) - 1, &number,
                                                     1, &res, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    cr_expect_eq(res.err, ST_RETRY);
    cr_expect(strstr(res.errmsg, "-18019955: busy") != NULL, "%s", res.errmsg);
    track_result_reset(&res);
}

/* ------------------------------------------------------------------------ */
/* End to end against shiptrack-carrier-sim. */

static struct tu_sim sim;

/* Build with the driver and send a request for numbers[0..n) with key. */
static void call(bool reg, const char *key, const char *const *numbers, size_t n,
                 struct sc_reply *r)
{
    struct carrier_request req;
    char err[256];

    cr_assert_eq(build(reg, sim.url, key, numbers, n, &req, err, sizeof(err)), ST_OK, "%s", err);
    sc_send(&req, r);
    carrier_request_reset(&req);
}

/* gettrackinfo for numbers, parsed into results[0..n); returns the kind. */
static enum st_err track(const char *key, const char *const *numbers, size_t n,
                         struct track_result *results, char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = sim.url, .api_key = key };

    return sc_track(&carrier_track17, &ctx, numbers, n, results, NULL, err, errlen);
}

/* register for numbers; returns the kind, registered[] filled. */
static enum st_err enroll(const char *key, const char *const *numbers, size_t n, bool *registered,
                          char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = sim.url, .api_key = key };
    struct sc_reply r;
    enum st_err rc;

    call(true, key, numbers, n, &r);
    err[0] = '\0';
    rc = carrier_track17.ops->parse_register_response(&ctx, r.status, r.body, r.len, numbers, n,
                                                      registered, err, errlen);
    free(r.body);
    return rc;
}

/* How 17TRACK dates a step: a timestamp with an offset is the carrier's; a
 * local one takes the zone of the place (country and region), else stays
 * local time. */
static enum offset_kind kind_of(const char *number, size_t index, json_t *step)
{
    json_t *wire = json_object_get(step, "wire");
    const char *region = sc_str(step, "region");

    (void)number;
    (void)index;
    if (strcmp(sc_str(wire, "timestamp_style"), "local") != 0)
        return OFFSET_CARRIER;
    return geo_zone(sc_str(step, "country"), region[0] ? region : NULL) != NULL ? OFFSET_DERIVED
                                                                                : OFFSET_UNKNOWN;
}

/* Compare a parsed result with the journey's visible steps, one by one (the
 * driver sorts by instant, stably). */
static void compare(const char *number, json_t *journey, const struct track_result *res)
{
    struct sc_want w[64];
    size_t n = sc_visible_steps(number, journey, kind_of, true, w, sizeof(w) / sizeof(w[0]));

    sc_assert_found(number, journey, res, n);
    cr_expect_str_eq(res->estimated_delivery, sc_str(journey, "estimated_delivery"), "%s", number);
    for (size_t i = 0; i < n; i++) {
        const struct track_event *ev = &res->events[i];
        json_t *s = w[i].step, *wire = json_object_get(s, "wire");
        const char *kind = sc_str(s, "kind");

        cr_expect_str_eq(ev->occurred_local, sc_str(s, "local"), "%s event %zu", number, i);
        sc_expect_when(number, i, ev, &w[i]);
        if (w[i].kind != OFFSET_UNKNOWN)
            cr_expect_eq(ev->utc_offset_min,
                         json_integer_value(json_object_get(s, "utc_offset_min")),
                         "%s event %zu (%s)", number, i, kind);
        sc_expect_event(number, i, ev, s);
        cr_expect_str_eq(ev->code, sc_str(wire, "sub_status"), "%s event %zu", number, i);
        cr_expect_str_eq(ev->description, sc_str(wire, "description"), "%s event %zu", number, i);
        sc_expect_place(ev, s);
    }
}

/* A valid S10 number (UPU check digit) of serial and country into out[14]. */
static void s10(unsigned long serial, const char *cc, char out[14])
{
    static const unsigned w[8] = { 8, 6, 4, 2, 3, 5, 9, 7 };
    char digits[16];
    unsigned long total = 0;
    unsigned r;

    snprintf(digits, sizeof(digits), "%08lu", serial % 100000000ul);
    for (int i = 0; i < 8; i++)
        total += (unsigned long)(digits[i] - '0') * w[i];
    r = (unsigned)(total % 11);
    snprintf(out, 14, "RR%.8s%u%.2s", digits, r == 0 ? 5 : r == 1 ? 0 : 11 - r, cc);
}

/* Start the simulator and wait until every journey has played out (a few
 * milliseconds at 10^8), so that bodies and journeys cannot drift apart. */
static void start_sim(void)
{
    static const char *const args[] = { "--speed", "100000000", "--track17-api-key", SIM_KEY,
                                        NULL };

    sc_start(&sim, args);
    sc_wait_all_complete(&sim, 200, 10, "simulator journeys not complete after 2 s");
}

static void stop_sim(void)
{
    sc_stop(&sim);
}

TestSuite(track17_sim, .init = start_sim, .fini = stop_sim, .timeout = 120);

Test(track17_sim, token_is_checked)
{
    json_t *plan = sc_plan("track17", "1", "3", SC_PLAN_ASSERT_CARRIER);
    const char *number = sc_str(json_array_get(plan, 0), "tracking_number");
    struct track_result res;
    bool reg = true;
    char err[256];

    cr_expect_eq(track("not-the-key", &number, 1, &res, err, sizeof(err)), ST_CONFIG, "%s", err);
    cr_expect(strstr(err, "17TRACK rejected the API key (HTTP 401") != NULL, "%s", err);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    cr_expect_eq(res.err, ST_CONFIG);
    track_result_reset(&res);
    cr_expect_eq(enroll("not-the-key", &number, 1, &reg, err, sizeof(err)), ST_CONFIG, "%s", err);
    cr_expect(!reg);
    /* a missing header too: send a request without any */
    {
        struct carrier_request req;
        struct sc_reply r;

        cr_assert_eq(build(false, sim.url, "x", &number, 1, &req, err, sizeof(err)), ST_OK);
        req.n_headers = 0;
        sc_send(&req, &r);
        cr_expect_eq(r.status, 401, "no 17token: HTTP %ld", r.status);
        cr_expect(strstr(r.body, "\"code\":-18010002") != NULL, "%s", r.body);
        free(r.body);
        carrier_request_reset(&req);
    }
    cr_expect_eq(track(SIM_KEY, &number, 1, &res, err, sizeof(err)), ST_OK, "%s", err);
    track_result_reset(&res);
    json_decref(plan);
}

/* Register, then every planned journey in one batch matches its steps. */
Test(track17_sim, register_then_track_every_journey)
{
    json_t *plan = sc_plan("track17", "27", "17", SC_PLAN_ASSERT_CARRIER);
    size_t n = json_array_size(plan);
    const char *numbers[40];
    struct track_result res[40];
    bool reg[40];
    char err[256];

    cr_assert(n == 27);
    for (size_t i = 0; i < n; i++)
        numbers[i] = sc_str(json_array_get(plan, i), "tracking_number");

    /* before registration 17TRACK knows none of them */
    cr_assert_eq(track(SIM_KEY, numbers, n, res, err, sizeof(err)), ST_OK, "%s", err);
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(res[i].outcome, TRACK_NEEDS_REGISTER, "%s: %s", numbers[i],
                     track_outcome_name(res[i].outcome));
        track_result_reset(&res[i]);
    }
    cr_assert_eq(enroll(SIM_KEY, numbers, n, reg, err, sizeof(err)), ST_OK, "%s", err);
    for (size_t i = 0; i < n; i++)
        cr_expect(reg[i], "%s not registered", numbers[i]);
    /* registering again is harmless: already registered counts */
    memset(reg, 0, sizeof(reg));
    cr_assert_eq(enroll(SIM_KEY, numbers, n, reg, err, sizeof(err)), ST_OK, "%s", err);
    for (size_t i = 0; i < n; i++)
        cr_expect(reg[i], "%s: second registration not counted", numbers[i]);

    cr_assert_eq(track(SIM_KEY, numbers, n, res, err, sizeof(err)), ST_OK, "%s", err);
    for (size_t i = 0; i < n; i++) {
        json_t *j = sc_journey(&sim, "track17", numbers[i]);
        const char *scenario;

        cr_assert_not_null(j, "%s: the simulator does not know a planned number", numbers[i]);
        cr_expect(json_equal(json_object_get(j, "visible_steps"), json_object_get(j, "total_steps")),
                  "%s: journey not complete at 10^8 speed", numbers[i]);
        compare(numbers[i], j, &res[i]);
        scenario = sc_str(j, "scenario");
        cr_expect_str_eq(scenario, sc_str(json_array_get(plan, i), "scenario"));
        if (strcmp(scenario, "customs_duties_held") == 0)
            cr_expect(sc_has(&res[i], ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE) &&
                          sc_has(&res[i], ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED),
                      "%s: no duties hold and release", numbers[i]);
        else if (strcmp(scenario, "customs_documents_held") == 0)
            cr_expect(sc_has(&res[i], ST_STATUS_HELD, ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED) &&
                          sc_has(&res[i], ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED),
                      "%s: no documents hold and release", numbers[i]);
        else if (strcmp(scenario, "customs_delivered") == 0)
            cr_expect(sc_has(&res[i], ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_PROCESSING), "%s",
                      numbers[i]);
        else if (strcmp(scenario, "unmapped_code") == 0)
            cr_expect(sc_has(&res[i], ST_STATUS_PENDING, ST_SUB_UNMAPPED), "%s", numbers[i]);
        else if (strcmp(scenario, "returned_to_sender") == 0)
            cr_expect(sc_has(&res[i], ST_STATUS_RETURNED, ST_SUB_RETURNED_TO_SENDER), "%s",
                      numbers[i]);
        json_decref(j);
        track_result_reset(&res[i]);
    }
    json_decref(plan);
}

/* Valid numbers the journeys do not know: registered, then not found. */
Test(track17_sim, unknown_numbers_are_not_found)
{
    char store[8][14];
    const char *numbers[8];
    struct track_result res[8];
    bool reg[8];
    size_t n = 0;
    char err[256];

    for (unsigned long serial = 31000000; n < 8 && serial < 31002000; serial++) {
        json_t *j;

        s10(serial, "CH", store[n]);
        cr_assert(detect_valid_for("track17", store[n], NULL, 0), "%s", store[n]);
        if ((j = sc_journey(&sim, "track17", store[n])) != NULL) {
            json_decref(j);
            continue;
        }
        numbers[n] = store[n];
        n++;
    }
    cr_assert_eq(n, 8, "found only %zu unknown numbers", n);
    cr_assert_eq(enroll(SIM_KEY, numbers, n, reg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(track(SIM_KEY, numbers, n, res, err, sizeof(err)), ST_OK, "%s", err);
    for (size_t i = 0; i < n; i++) {
        cr_expect(reg[i], "%s", numbers[i]);
        cr_expect_eq(res[i].outcome, TRACK_NOT_FOUND, "%s: %s (%s)", numbers[i],
                     track_outcome_name(res[i].outcome), res[i].errmsg);
        cr_expect_eq(res[i].n_events, 0);
        track_result_reset(&res[i]);
    }
}

/* 17TRACK follows other carriers' numbers too: UPS, FedEx, DHL shapes. */
Test(track17_sim, other_carriers_numbers)
{
    static const char *const numbers[] = { "1Z5R89390357567127", "1Z879E930346834440",
                                           "1Z410E7W0392751591", "RR123456785FR" };
    struct track_result res[4];
    bool reg[4];
    char err[256];

    cr_assert_eq(enroll(SIM_KEY, numbers, 4, reg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(track(SIM_KEY, numbers, 4, res, err, sizeof(err)), ST_OK, "%s", err);
    for (size_t i = 0; i < 4; i++) {
        json_t *j = sc_journey(&sim, "track17", numbers[i]);

        cr_expect(reg[i], "%s", numbers[i]);
        if (j != NULL)
            compare(numbers[i], j, &res[i]);
        else
            cr_expect_eq(res[i].outcome, TRACK_NOT_FOUND, "%s", numbers[i]);
        json_decref(j);
        track_result_reset(&res[i]);
    }
}

/* More than 40 numbers: refused as a whole with -18010014. */
Test(track17_sim, forty_is_the_limit)
{
    static char store[41][14];
    const char *numbers[41];
    struct carrier_request req;
    struct track_result res[40];
    struct sc_reply r;
    json_t *list = json_array();
    struct carrier_ctx ctx = { .base_url = sim.url, .api_key = SIM_KEY };
    char err[256], *text;

    for (int i = 0; i < 41; i++) {
        s10(52000000ul + (unsigned long)i, "JP", store[i]);
        numbers[i] = store[i];
        json_array_append_new(list, json_pack("{s:s}", "number", store[i]));
    }
    /* the driver never sends 41; build the 40 and add one by hand */
    cr_assert_eq(build(false, sim.url, SIM_KEY, numbers, 40, &req, err, sizeof(err)), ST_OK);
    text = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    cr_assert_not_null(text);
    cr_assert_eq(carrier_request_body(&req, text, strlen(text), err, sizeof(err)), ST_OK);
    free(text);
    sc_send(&req, &r);
    carrier_request_reset(&req);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, "\"code\":-18010014") != NULL, "%s", r.body);
    memset(res, 0, sizeof(res));
    cr_expect_eq(carrier_track17.ops->parse_response(&ctx, r.status, r.body, r.len, numbers, 40,
                                                     res, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "more than 40 numbers") != NULL, "%s", err);
    for (size_t i = 0; i < 40; i++) {
        cr_expect_eq(res[i].outcome, TRACK_ERROR);
        track_result_reset(&res[i]);
    }
    free(r.body);
}

/* A body that is not an array of numbers: HTTP 400, permanent for the driver. */
Test(track17_sim, bad_request_body)
{
    static const char *const number = "RR123456785FR";
    struct carrier_ctx ctx = { .base_url = sim.url, .api_key = SIM_KEY };
    struct carrier_request req;
    struct track_result res;
    struct sc_reply r;
    char err[256];

    cr_assert_eq(build(false, sim.url, SIM_KEY, &number, 1, &req, err, sizeof(err)), ST_OK);
    cr_assert_eq(carrier_request_body(&req, "{\"number\":1}", 12, err, sizeof(err)), ST_OK);
    sc_send(&req, &r);
    carrier_request_reset(&req);
    cr_expect_eq(r.status, 400, "%s", r.body);
    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_track17.ops->parse_response(&ctx, r.status, r.body, r.len, &number, 1,
                                                     &res, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "HTTP status 400") != NULL, "%s", err);
    track_result_reset(&res);
    free(r.body);
}
