/*
 * test_usps.c - the USPS Tracking v3 driver (carriers/usps.c) and its
 * simulator renderer (carriers/sim/sim_usps.c).
 *
 * The fixtures (tests/fixtures/usps/) run in test_drivers.c with every other
 * carrier's; this file covers what fixtures cannot: the definition, the
 * tracking and token requests, token answers, caps, and an end-to-end block
 * against the built simulator (time compressed 10^8 times, so every journey
 * is complete): tokens from /oauth2/v3/token, every planned number's body
 * parsed into exactly the journey's visible steps, auth failures, token
 * expiry by use count, and unknown numbers.
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

extern const struct carrier_def carrier_usps;

#define NUMBER   "9400111899562537866151"

/* ------------------------------------------------------------------------ */
/* Definition and requests. */

Test(usps, definition)
{
    cr_expect_str_eq(carrier_usps.name, "usps");
    cr_expect_str_eq(carrier_usps.display_name, "USPS (Tracking v3)");
    cr_expect_eq(carrier_usps.batch_max, 1);
    cr_expect_eq(carrier_usps.rate_per_sec, 1.0);
    cr_expect_eq(carrier_usps.rate_per_day, 1440);
    cr_expect_eq(carrier_usps.auth, CARRIER_AUTH_OAUTH2);
    cr_expect_str_eq(carrier_usps.default_base_url, "https://apis.usps.com");
    cr_expect_not_null(carrier_usps.ops->build_token_request);
    cr_expect_not_null(carrier_usps.ops->parse_token_response);
    cr_expect_null(carrier_usps.ops->build_register_request);
    cr_expect_null(carrier_usps.ops->parse_register_response);
    cr_expect_eq(carrier_find("usps"), &carrier_usps);
}

/* Build a tracking request for one number. */
static enum st_err build(const char *base, const char *token, const char *number,
                         struct carrier_request *req, char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = base, .access_token = token };

    memset(req, 0, sizeof(*req));
    err[0] = '\0';
    return carrier_usps.ops->build_request(&ctx, &number, 1, req, err, errlen);
}

Test(usps, request_plain)
{
    struct carrier_request req;
    char err[256];

    cr_assert_eq(build("https://apis.usps.com", "tok-123", NUMBER, &req, err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_expect_eq(req.method, CARRIER_GET);
    cr_expect_str_eq(req.url,
                     "https://apis.usps.com/tracking/v3/tracking/" NUMBER "?expand=DETAIL");
    cr_assert_eq(req.n_headers, 2);
    cr_expect_str_eq(req.headers[0], "Authorization: Bearer tok-123");
    cr_expect_str_eq(req.headers[1], "Accept: application/json");
    cr_expect_null(req.body);
    carrier_request_reset(&req);

    /* trailing slashes dropped; no base means USPS's own; S10 numbers pass */
    cr_assert_eq(build("http://127.0.0.1:9//", "t", "EC123456785US", &req, err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_expect_str_eq(req.url, "http://127.0.0.1:9/tracking/v3/tracking/EC123456785US?expand=DETAIL");
    carrier_request_reset(&req);
    cr_assert_eq(build(NULL, "t", NUMBER, &req, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(req.url,
                     "https://apis.usps.com/tracking/v3/tracking/" NUMBER "?expand=DETAIL");
    carrier_request_reset(&req);
}

Test(usps, request_rejects_bad_numbers)
{
    static const char *const bad[] = {
        "", "9400 1118", "94/../x", "9400?expand=SUMMARY", "94%2F", "ünicode", "9400\r\n1",
        "9400-1118",
        "01234567890123456789012345678901234567890123456789012345678901234",
    };
    struct carrier_request req;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(build("https://apis.usps.com", "t", bad[i], &req, err, sizeof(err)),
                     ST_PERMANENT, "number #%zu accepted", i);
        cr_expect(strstr(err, "usps: tracking number") != NULL, "message: %s", err);
        carrier_request_reset(&req);
    }
}

Test(usps, request_token_problems_are_config)
{
    struct carrier_request req;
    char err[256];

    cr_expect_eq(build("https://apis.usps.com", NULL, NUMBER, &req, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "no OAuth2 access token") != NULL, "message: %s", err);
    cr_expect_eq(build("https://apis.usps.com", "", NUMBER, &req, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(build("https://apis.usps.com", "abc\r\nX-Evil: 1", NUMBER, &req, err,
                       sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "control characters") != NULL, "message: %s", err);
    cr_expect_eq(req.n_headers, 0, "no header may be written for a bad token");
    cr_expect_eq(build("https://apis.usps.com", "abc\ndef", NUMBER, &req, err, sizeof(err)),
                 ST_CONFIG);
    carrier_request_reset(&req);
}

Test(usps, request_caps)
{
    char err[256], base[CARRIER_URL_MAX], token[CARRIER_HEADER_MAX];
    struct carrier_request req;
    struct carrier_ctx ctx = { .access_token = "t" };
    const char *two[] = { NUMBER, NUMBER };

    memset(base, 'a', sizeof(base) - 40);
    memcpy(base, "http://", 7);
    base[sizeof(base) - 40] = '\0';
    cr_expect_eq(build(base, "t", NUMBER, &req, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "longer than") != NULL, "message: %s", err);
    carrier_request_reset(&req);
    memset(token, 'x', sizeof(token) - 1);
    token[sizeof(token) - 1] = '\0';
    cr_expect_eq(build("http://sim", token, NUMBER, &req, err, sizeof(err)), ST_CONFIG);
    carrier_request_reset(&req);
    memset(&req, 0, sizeof(req));
    cr_expect_eq(carrier_usps.ops->build_request(&ctx, two, 2, &req, err, sizeof(err)),
                 ST_PERMANENT);
    cr_expect(strstr(err, "one number per request") != NULL, "message: %s", err);
    carrier_request_reset(&req);
}

/* ------------------------------------------------------------------------ */
/* Token request and answer. */

Test(usps, token_request)
{
    struct carrier_ctx ctx = { .base_url = "https://apis.usps.com/", .client_id = "id \"1\"",
                               .client_secret = "s3c/ret\\" };
    struct carrier_request req;
    char err[256] = "";
    json_t *body, *v;

    memset(&req, 0, sizeof(req));
    cr_assert_eq(carrier_usps.ops->build_token_request(&ctx, &req, err, sizeof(err)), ST_OK,
                 "%s", err);
    cr_expect_eq(req.method, CARRIER_POST);
    cr_expect_str_eq(req.url, "https://apis.usps.com/oauth2/v3/token");
    cr_assert_eq(req.n_headers, 2);
    cr_expect_str_eq(req.headers[0], "Content-Type: application/json");
    cr_expect_str_eq(req.headers[1], "Accept: application/json");
    cr_assert_not_null(req.body);
    body = json_loadb(req.body, req.body_len, JSON_REJECT_DUPLICATES, NULL);
    cr_assert(json_is_object(body), "body is not a JSON object: %.*s", (int)req.body_len,
              req.body);
    cr_expect_eq(json_object_size(body), 3);
    v = json_object_get(body, "client_id");
    cr_expect(json_is_string(v) && strcmp(json_string_value(v), "id \"1\"") == 0);
    v = json_object_get(body, "client_secret");
    cr_expect(json_is_string(v) && strcmp(json_string_value(v), "s3c/ret\\") == 0);
    v = json_object_get(body, "grant_type");
    cr_expect(json_is_string(v) && strcmp(json_string_value(v), "client_credentials") == 0);
    json_decref(body);
    carrier_request_reset(&req);
}

Test(usps, token_request_credentials_problems_are_config)
{
    static const struct {
        const char *id, *secret, *msg;
    } bad[] = {
        { NULL, "s", "no OAuth2 client id" }, { "i", NULL, "no OAuth2 client id" },
        { "", "s", "no OAuth2 client id" },  { "i", "", "no OAuth2 client id" },
        { "i\r\n", "s", "control characters" }, { "i", "s\nx", "control characters" },
    };
    struct carrier_request req;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct carrier_ctx ctx = { .client_id = bad[i].id, .client_secret = bad[i].secret };

        memset(&req, 0, sizeof(req));
        cr_expect_eq(carrier_usps.ops->build_token_request(&ctx, &req, err, sizeof(err)),
                     ST_CONFIG, "case %zu", i);
        cr_expect(strstr(err, bad[i].msg) != NULL, "case %zu: %s", i, err);
        cr_expect_null(req.body);
        carrier_request_reset(&req);
    }
}

/* Parse a token answer. */
static enum st_err token(long status, const char *body, struct carrier_token *tok, char *err,
                         size_t errlen)
{
    err[0] = '\0';
    return carrier_usps.ops->parse_token_response(status, body, strlen(body), tok, err, errlen);
}

Test(usps, token_response)
{
    struct carrier_token tok;
    char err[256];

    cr_assert_eq(token(200, "{\"access_token\":\"eyJ.abc\",\"token_type\":\"Bearer\","
                            "\"issued_at\":1795000000000,\"expires_in\":28799,"
                            "\"status\":\"approved\",\"scope\":\"tracking\"}",
                       &tok, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(tok.access_token, "eyJ.abc");
    cr_expect_eq(tok.expires_in_s, 28799);
    /* expires_in as a numeric string; token_type in another case */
    cr_assert_eq(token(200, "{\"access_token\":\"t2\",\"token_type\":\"bearer\","
                            "\"expires_in\":\"3599\"}", &tok, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(tok.access_token, "t2");
    cr_expect_eq(tok.expires_in_s, 3599);
    /* no expires_in: 0, the poller picks its own lifetime */
    cr_assert_eq(token(200, "{\"access_token\":\"t3\"}", &tok, err, sizeof(err)), ST_OK);
    cr_expect_eq(tok.expires_in_s, 0);
}

Test(usps, token_response_failures)
{
    static const struct {
        long status;
        const char *body;
        enum st_err want;
        const char *msg;
    } cases[] = {
        { 401, "{\"error\":\"invalid_client\",\"error_description\":\"Client authentication "
               "failed.\"}", ST_CONFIG, "rejected the OAuth2 client credentials (HTTP 401: "
                                        "Client authentication failed.)" },
        { 400, "{\"error\":\"unsupported_grant_type\"}", ST_CONFIG, "HTTP 400" },
        { 403, "", ST_CONFIG, "HTTP 403" },
        { 429, "{}", ST_RETRY, "HTTP 429" },
        { 503, "<html>", ST_RETRY, "HTTP 503" },
        { 302, "", ST_PERMANENT, "HTTP 302" },
        { 200, "", ST_PERMANENT, "empty" },
        { 200, "{\"access_token\":", ST_PERMANENT, "not JSON" },
        { 200, "[]", ST_PERMANENT, "expected a JSON object" },
        { 200, "{\"token_type\":\"Bearer\"}", ST_PERMANENT, "access_token: expected" },
        { 200, "{\"access_token\":42}", ST_PERMANENT, "access_token: expected" },
        { 200, "{\"access_token\":\"\"}", ST_PERMANENT, "access_token: expected" },
        { 200, "{\"access_token\":\"a\\r\\nb\"}", ST_PERMANENT, "control characters" },
        { 200, "{\"access_token\":\"a\",\"token_type\":\"MAC\"}", ST_PERMANENT, "token_type" },
        { 200, "{\"access_token\":\"a\",\"expires_in\":\"soon\"}", ST_PERMANENT, "expires_in" },
        { 200, "{\"access_token\":\"a\",\"expires_in\":-5}", ST_PERMANENT, "expires_in" },
        { 200, "{\"access_token\":\"a\",\"expires_in\":1.5}", ST_PERMANENT, "expires_in" },
        { 200, "{\"access_token\":\"a\",\"access_token\":\"b\"}", ST_PERMANENT, "not JSON" },
    };
    struct carrier_token tok;
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_eq(token(cases[i].status, cases[i].body, &tok, err, sizeof(err)), cases[i].want,
                     "case %zu: %s", i, err);
        cr_expect(strstr(err, cases[i].msg) != NULL, "case %zu: %s", i, err);
        cr_expect(strncmp(err, "usps: ", 6) == 0, "case %zu: %s", i, err);
        cr_expect_str_eq(tok.access_token, "", "case %zu leaves a token", i);
    }
}

Test(usps, token_too_long)
{
    size_t n = CARRIER_TOKEN_MAX + 64;
    char *body = malloc(n + 32), err[256];
    struct carrier_token tok;

    cr_assert_not_null(body);
    strcpy(body, "{\"access_token\":\"");
    memset(body + 17, 'a', n);
    strcpy(body + 17 + n, "\"}");
    cr_expect_eq(token(200, body, &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "too long") != NULL, "%s", err);
    free(body);
}

/* ------------------------------------------------------------------------ */
/* Parsing edges the fixtures do not reach. */

Test(usps, body_cap)
{
    size_t len = 4u * 1024u * 1024u + 1;
    char *body = malloc(len), err[256] = "";
    const char *number = NUMBER;
    struct carrier_ctx ctx = { .access_token = "t" };
    struct track_result res;

    cr_assert_not_null(body);
    memset(body, ' ', len);
    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_usps.ops->parse_response(&ctx, 200, body, len, &number, 1, &res, err,
                                                  sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "cap") != NULL, "message: %s", err);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    track_result_reset(&res);
    free(body);
}

Test(usps, null_error_buffer_still_fills_results)
{
    static const char body[] = "{\"trackingEvents\": 3}";
    const char *number = NUMBER;
    struct carrier_ctx ctx = { .access_token = "t" };
    struct track_result res;

    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_usps.ops->parse_response(&ctx, 200, body, sizeof(body) - 1, &number, 1,
                                                  &res, NULL, 0), ST_PERMANENT);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    cr_expect(strstr(res.errmsg, "trackingEvents: expected an array") != NULL, "%s", res.errmsg);
    track_result_reset(&res);
}

Test(usps, too_many_events)
{
    size_t cap = (CARRIER_MAX_EVENTS + 1) * 200 + 64, o = 0;
    char *body = malloc(cap), err[256] = "";
    const char *number = NUMBER;
    struct carrier_ctx ctx = { .access_token = "t" };
    struct track_result res;

    cr_assert_not_null(body);
    o += (size_t)snprintf(body + o, cap - o, "{\"trackingEvents\":[");
    for (int i = 0; i <= CARRIER_MAX_EVENTS; i++)
        o += (size_t)snprintf(body + o, cap - o,
                              "%s{\"eventType\":\"Processed\",\"eventCode\":\"10\","
                              "\"eventTimestamp\":\"2026-01-01T%02d:%02d:00Z\"}",
                              i ? "," : "", i / 60 % 24, i % 60);
    o += (size_t)snprintf(body + o, cap - o, "]}");
    cr_assert_lt(o, cap);
    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_usps.ops->parse_response(&ctx, 200, body, o, &number, 1, &res, err,
                                                  sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "more than") != NULL, "message: %s", err);
    track_result_reset(&res);
    free(body);
}

/* ------------------------------------------------------------------------ */
/* End to end against the simulator. */

static struct tu_sim sim;

/* Fetch a token with the given credentials; returns parse_token_response's kind. */
static enum st_err fetch_token(const char *id, const char *secret, struct carrier_token *tok,
                               char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = sim.url, .client_id = id, .client_secret = secret };

    return sc_fetch_token(&carrier_usps, &ctx, tok, NULL, err, errlen);
}

/* Track number with token (may be NULL: no Authorization header); parses into res. */
static enum st_err track(const char *number, const char *tok, struct track_result *res,
                         long *http_status, char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = sim.url, .access_token = tok ? tok : "x" };
    struct carrier_request req;
    enum st_err rc;

    memset(&req, 0, sizeof(req));
    cr_assert_eq(carrier_usps.ops->build_request(&ctx, &number, 1, &req, err, errlen), ST_OK,
                 "%s", err);
    if (tok == NULL) { /* drop the Authorization header */
        memmove(req.headers[0], req.headers[1], sizeof(req.headers[0]));
        req.n_headers--;
    }
    rc = sc_exchange(&carrier_usps, &ctx, &req, &number, 1, res, http_status, err, errlen);
    carrier_request_reset(&req);
    return rc;
}

/* How USPS dates a step: every timestamp is local wall time (its Z is no
 * UTC marker); the zone comes from the state, else from the postal code (ZIP,
 * CEP...), else the time stays local. Checks the step's wire form too. */
static enum offset_kind kind_of(const char *number, size_t index, json_t *step)
{
    json_t *wire = json_object_get(step, "wire");
    const char *state = sc_str(wire, "eventState");

    cr_expect_str_eq(sc_str(wire, "timestamp_style"), "local");
    /* USPS's Z is local time: the wire text is the local wall time */
    cr_expect(strncmp(sc_str(wire, "eventTimestamp"), sc_str(step, "local"), 19) == 0,
              "%s step %zu: %s vs local %s", number, index, sc_str(wire, "eventTimestamp"),
              sc_str(step, "local"));
    return geo_zone(sc_str(step, "country"),
                    state[0] ? state
                             : geo_region_from_postal(sc_str(step, "country"),
                                                      sc_str(step, "postal_code"))) == NULL
               ? OFFSET_UNKNOWN
               : OFFSET_DERIVED;
}

/* Compare a parsed result with the journey's visible steps (the driver sorts
 * by instant, stably). */
static void compare(const char *number, json_t *journey, const struct track_result *res)
{
    struct sc_want w[64];
    size_t n = sc_visible_steps(number, journey, kind_of, true, w, sizeof(w) / sizeof(w[0]));

    sc_assert_found(number, journey, res, n);
    cr_expect_str_eq(res->estimated_delivery, sc_str(journey, "estimated_delivery"), "%s EDD",
                     number);
    for (size_t i = 0; i < n; i++) {
        const struct track_event *ev = &res->events[i];
        json_t *s = w[i].step, *wire = json_object_get(s, "wire");

        cr_expect_str_eq(ev->occurred_local, sc_str(s, "local"), "%s event %zu", number, i);
        /* OFFSET_UNKNOWN without a zone, OFFSET_DERIVED with one */
        sc_expect_when(number, i, ev, &w[i]);
        if (w[i].kind != OFFSET_UNKNOWN)
            cr_expect_eq(ev->utc_offset_min,
                         json_integer_value(json_object_get(s, "utc_offset_min")));
        sc_expect_event(number, i, ev, s);
        cr_expect_str_eq(ev->code, sc_str(wire, "eventCode"));
        cr_expect_str_eq(ev->description, sc_str(wire, "eventType"));
        sc_expect_place(ev, s);
    }
}

static void start_default(void)
{
    static const char *const args[] = { "--speed", "100000000", NULL };

    sc_start(&sim, args);
}

static void start_two_uses(void)
{
    static const char *const args[] = { "--speed", "100000000", "--token-max-uses", "2",
                                        "--oauth-client-id", "usps-app", "--oauth-client-secret",
                                        "usps-pw", NULL };

    sc_start(&sim, args);
}

static void stop(void)
{
    sc_stop(&sim);
}

TestSuite(usps_sim, .timeout = 120);

Test(usps_sim, planned_bodies_parse_into_the_journeys, .init = start_default, .fini = stop)
{
    json_t *plan = sc_plan("usps", "27", "7", SC_PLAN_ANY), *p;
    struct carrier_token tok;
    char err[256];
    bool customs_hold = false, returned = false, unmapped = false, brazil_derived = false;
    size_t i;

    cr_assert_eq(json_array_size(plan), 27);
    cr_assert_eq(fetch_token("sim-client", "sim-secret", &tok, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(tok.expires_in_s, 3600);
    json_array_foreach(plan, i, p) {
        const char *number = sc_str(p, "tracking_number");
        const char *scenario = sc_str(p, "scenario");
        struct track_result res;
        long status;
        json_t *j;

        cr_expect_str_eq(sc_str(p, "carrier"), "usps");
        cr_expect(detect_valid_for("usps", number, NULL, 0), "%s is no USPS number", number);
        cr_assert_eq(track(number, tok.access_token, &res, &status, err, sizeof(err)), ST_OK,
                     "%s: HTTP %ld: %s", number, status, err);
        cr_expect_eq(status, 200);
        j = sc_journey(&sim, "usps", number);
        cr_assert_not_null(j, "%s: the simulator does not know a planned number", number);
        cr_expect_str_eq(sc_str(j, "scenario"), scenario);
        cr_expect_eq(json_integer_value(json_object_get(j, "visible_steps")),
                     json_integer_value(json_object_get(j, "total_steps")), "%s incomplete",
                     number);
        compare(number, j, &res);
        if (strcmp(scenario, "customs_duties_held") == 0) {
            cr_expect(sc_has(&res, ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE), "%s", number);
            cr_expect(sc_has(&res, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED), "%s", number);
            customs_hold = true;
        } else if (strcmp(scenario, "customs_documents_held") == 0) {
            cr_expect(sc_has(&res, ST_STATUS_HELD, ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED), "%s",
                      number);
            cr_expect(sc_has(&res, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED), "%s", number);
        } else if (strcmp(scenario, "customs_delivered") == 0) {
            cr_expect(sc_has(&res, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_PROCESSING), "%s", number);
        } else if (strcmp(scenario, "returned_to_sender") == 0) {
            cr_expect(sc_has(&res, ST_STATUS_RETURNED, ST_SUB_RETURNED_TO_SENDER), "%s", number);
            cr_expect(!sc_has(&res, ST_STATUS_DELIVERED, ST_SUB_DELIVERED), "%s", number);
            returned = true;
        } else if (strcmp(scenario, "unmapped_code") == 0) {
            cr_expect(sc_has(&res, ST_STATUS_PENDING, ST_SUB_UNMAPPED), "%s", number);
            unmapped = true;
        } else if (strcmp(scenario, "attempt_then_delivered") == 0) {
            cr_expect(sc_has(&res, ST_STATUS_ATTEMPT_FAILED, ST_SUB_RECIPIENT_UNAVAILABLE), "%s",
                      number);
        } else if (strcmp(scenario, "pickup_point") == 0) {
            cr_expect(sc_has(&res, ST_STATUS_AVAILABLE_FOR_PICKUP, ST_SUB_AT_PICKUP_POINT), "%s",
                      number);
        }
        for (size_t k = 0; k < res.n_events; k++)
            if (res.events[k].offset_kind == OFFSET_DERIVED &&
                strcmp(res.events[k].country, "BR") == 0)
                brazil_derived = true;
        track_result_reset(&res);
        json_decref(j);
    }
    cr_expect(customs_hold && returned && unmapped, "the plan misses scenarios");
    cr_expect(brazil_derived, "no Brazilian scan placed by its CEP in 27 journeys");
    json_decref(plan);
}

Test(usps_sim, auth_failures, .init = start_default, .fini = stop)
{
    json_t *plan = sc_plan("usps", "1", "3", SC_PLAN_ANY);
    const char *number = sc_str(json_array_get(plan, 0), "tracking_number");
    struct carrier_token tok;
    struct track_result res;
    char err[256];
    long status;

    /* wrong client credentials: the token endpoint refuses */
    cr_expect_eq(fetch_token("sim-client", "wrong", &tok, err, sizeof(err)), ST_CONFIG, "%s", err);
    cr_expect(strstr(err, "rejected the OAuth2 client credentials (HTTP 401") != NULL, "%s", err);
    cr_expect_eq(fetch_token("nobody", "sim-secret", &tok, err, sizeof(err)), ST_CONFIG, "%s",
                 err);
    /* no token, a made-up token */
    cr_expect_eq(track(number, NULL, &res, &status, err, sizeof(err)), ST_CONFIG, "%s", err);
    cr_expect_eq(status, 401);
    cr_expect(strstr(err, "USPS rejected the access token (HTTP 401") != NULL, "%s", err);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    track_result_reset(&res);
    cr_expect_eq(track(number, "sim-usps-1-0000000000000000", &res, &status, err, sizeof(err)),
                 ST_CONFIG, "%s", err);
    cr_expect_eq(status, 401);
    track_result_reset(&res);
    /* a real token works */
    cr_assert_eq(fetch_token("sim-client", "sim-secret", &tok, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(track(number, tok.access_token, &res, &status, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(status, 200);
    cr_expect_eq(res.outcome, TRACK_FOUND);
    track_result_reset(&res);
    json_decref(plan);
}

Test(usps_sim, tokens_wear_out, .init = start_two_uses, .fini = stop)
{
    json_t *plan = sc_plan("usps", "1", "5", SC_PLAN_ANY);
    const char *number = sc_str(json_array_get(plan, 0), "tracking_number");
    struct carrier_token tok, tok2;
    struct track_result res;
    char err[256];
    long status;

    cr_expect_eq(fetch_token("sim-client", "sim-secret", &tok, err, sizeof(err)), ST_CONFIG,
                 "default credentials must not work here");
    cr_assert_eq(fetch_token("usps-app", "usps-pw", &tok, err, sizeof(err)), ST_OK, "%s", err);
    for (int use = 1; use <= 3; use++) {
        enum st_err rc = track(number, tok.access_token, &res, &status, err, sizeof(err));

        if (use <= 2)
            cr_expect_eq(rc, ST_OK, "use %d: %s", use, err);
        else {
            cr_expect_eq(rc, ST_CONFIG, "use %d", use);
            cr_expect_eq(status, 401);
        }
        track_result_reset(&res);
    }
    /* a fresh token starts over */
    cr_assert_eq(fetch_token("usps-app", "usps-pw", &tok2, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_neq(tok2.access_token, tok.access_token);
    cr_expect_eq(track(number, tok2.access_token, &res, &status, err, sizeof(err)), ST_OK, "%s",
                 err);
    track_result_reset(&res);
    json_decref(plan);
}

/* A valid IMpb number built like the simulator's, from a serial outside the plan's range. */
static bool valid_number(unsigned long long serial, char out[32])
{
    snprintf(out, 32, "940011%015llu0", serial);
    for (char d = '0'; d <= '9'; d++) {
        out[21] = d;
        if (detect_valid_for("usps", out, NULL, 0))
            return true;
    }
    return false;
}

Test(usps_sim, unknown_numbers_are_not_found, .init = start_default, .fini = stop)
{
    struct carrier_token tok;
    struct track_result res;
    char err[256], number[32] = "";
    long status;

    cr_assert_eq(fetch_token("sim-client", "sim-secret", &tok, err, sizeof(err)), ST_OK, "%s",
                 err);
    /* not a USPS number at all (400, 150002) */
    cr_expect_eq(track("123456", tok.access_token, &res, &status, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(status, 400);
    cr_expect_eq(res.outcome, TRACK_NOT_FOUND);
    track_result_reset(&res);
    /* a well-formed number the simulator has never seen (400, 150001) */
    for (unsigned long long s = 777000000000ull; s < 777000002000ull && number[0] == '\0'; s++) {
        char cand[32];
        json_t *j;

        cr_assert(valid_number(s, cand));
        if ((j = sc_journey(&sim, "usps", cand)) == NULL)
            snprintf(number, sizeof(number), "%s", cand);
        json_decref(j);
    }
    cr_assert(number[0] != '\0', "every number is known");
    cr_expect_eq(track(number, tok.access_token, &res, &status, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(status, 400);
    cr_expect_eq(res.outcome, TRACK_NOT_FOUND);
    cr_expect_eq(res.n_events, 0);
    track_result_reset(&res);
}
