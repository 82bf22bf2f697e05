/*
 * test_ups.c - the UPS Track v1 driver (carriers/ups.c) and its simulator
 * renderer (carriers/sim/sim_ups.c).
 *
 * The fixtures (tests/fixtures/ups/) run in test_drivers.c with every other
 * carrier's. This file covers the rest on data alone (the definition, the
 * tracking and token requests, token answers, caps) and then end to end: the
 * built simulator is started (time compressed 10^8 times, so every journey has
 * played out), a token is fetched with the driver's own token request, every
 * planned number is tracked with the driver's own request, and each body must
 * parse into exactly the steps /_sim/journey shows, with their statuses,
 * customs holds, codes, places, instants and offset kinds. Auth failures
 * (no token, a bogus one, one used up or expired, bad client credentials),
 * missing UPS headers and unknown numbers are covered too.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carrier.h"
#include "geo.h"
#include "simclient.h"
#include "testutil.h"

extern const struct carrier_def carrier_ups;

/* ------------------------------------------------------------------------ */
/* Definition and requests, on data alone. */

Test(ups, definition)
{
    cr_expect_str_eq(carrier_ups.name, "ups");
    cr_expect_str_eq(carrier_ups.display_name, "UPS (Track v1)");
    cr_expect_eq(carrier_ups.batch_max, 1);
    cr_expect_eq(carrier_ups.rate_per_sec, 10.0);
    cr_expect_eq(carrier_ups.rate_per_day, 0);
    cr_expect_eq(carrier_ups.auth, CARRIER_AUTH_OAUTH2);
    cr_expect_str_eq(carrier_ups.default_base_url, "https://onlinetools.ups.com");
    cr_expect_not_null(carrier_ups.ops->build_token_request);
    cr_expect_not_null(carrier_ups.ops->parse_token_response);
    cr_expect_null(carrier_ups.ops->build_register_request);
    cr_expect_null(carrier_ups.ops->parse_register_response);
    cr_expect_eq(carrier_find("ups"), &carrier_ups);
}

/* Build a tracking request for one number. */
static enum st_err build(const char *base, const char *token, const char *number,
                         struct carrier_request *req, char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = base, .access_token = token, .language = "fr" };

    memset(req, 0, sizeof(*req));
    err[0] = '\0';
    return carrier_ups.ops->build_request(&ctx, &number, 1, req, err, errlen);
}

/* Value of header name in req ("" when absent). */
static const char *header(const struct carrier_request *req, const char *name)
{
    size_t k = strlen(name);

    for (size_t i = 0; i < req->n_headers; i++)
        if (strncmp(req->headers[i], name, k) == 0 && req->headers[i][k] == ':')
            return req->headers[i] + k + 2;
    return "";
}

Test(ups, request_plain)
{
    struct carrier_request req;
    char err[256], first[64];

    cr_assert_eq(build("https://onlinetools.ups.com", "tok-123", "1Z999AA10123456784", &req, err,
                       sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(req.method, CARRIER_GET);
    cr_expect_str_eq(req.url,
                     "https://onlinetools.ups.com/api/track/v1/details/1Z999AA10123456784"
                     "?locale=en_US");
    cr_assert_eq(req.n_headers, 4);
    cr_expect_str_eq(req.headers[0], "Authorization: Bearer tok-123");
    cr_expect_str_eq(header(&req, "transactionSrc"), "shiptrack");
    cr_expect_str_eq(header(&req, "Accept"), "application/json");
    cr_expect(strlen(header(&req, "transId")) > 0 && strlen(header(&req, "transId")) <= 32,
              "transId \"%s\"", header(&req, "transId"));
    cr_expect_null(req.body);
    snprintf(first, sizeof(first), "%s", header(&req, "transId"));
    carrier_request_reset(&req);
    /* transId is unique per request */
    cr_assert_eq(build(NULL, "tok-123", "1Z999AA10123456784", &req, err, sizeof(err)), ST_OK);
    cr_expect_str_neq(header(&req, "transId"), first);
    /* no base: UPS's production host */
    cr_expect_str_eq(req.url, "https://onlinetools.ups.com/api/track/v1/details/"
                              "1Z999AA10123456784?locale=en_US");
    carrier_request_reset(&req);
    /* trailing slashes dropped; lower case kept as given */
    cr_assert_eq(build("http://127.0.0.1:9//", "t", "1zst00606608229558", &req, err,
                       sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(req.url, "http://127.0.0.1:9/api/track/v1/details/1zst00606608229558"
                              "?locale=en_US");
    carrier_request_reset(&req);
}

Test(ups, request_rejects_bad_numbers)
{
    static const char *const bad[] = {
        "", "123456", "1Z 999AA1012345678", "1Z999AA1/012345678", "1Z999AA1?x=1", "1Z%2099AA1",
        "1Z999ÄA10123456784", "1Z999AA1012\r\n3456784", "1Z999AA10123456784-",
        "12345678901234567890123456789012345",
    };
    struct carrier_request req;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(build("https://onlinetools.ups.com", "t", bad[i], &req, err, sizeof(err)),
                     ST_PERMANENT, "number #%zu accepted", i);
        cr_expect(strstr(err, "ups: tracking number") != NULL, "message: %s", err);
        carrier_request_reset(&req);
    }
}

Test(ups, request_token_problems_are_config)
{
    struct carrier_request req;
    char err[256];

    cr_expect_eq(build(NULL, NULL, "1Z999AA10123456784", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "no OAuth2 access token") != NULL, "message: %s", err);
    cr_expect_eq(build(NULL, "", "1Z999AA10123456784", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(build(NULL, "abc\r\nX-Evil: 1", "1Z999AA10123456784", &req, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect(strstr(err, "control characters") != NULL, "message: %s", err);
    cr_expect_eq(build(NULL, "abc\ndef", "1Z999AA10123456784", &req, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect_eq(build(NULL, "abc def", "1Z999AA10123456784", &req, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect_eq(req.n_headers, 0, "no header may be written for a bad token");
    carrier_request_reset(&req);
    cr_expect_eq(build("http://sim\r\nX: 1", "t", "1Z999AA10123456784", &req, err, sizeof(err)),
                 ST_CONFIG);
    carrier_request_reset(&req);
}

Test(ups, request_url_cap)
{
    struct carrier_request req;
    char err[256], base[CARRIER_URL_MAX];

    memset(base, 'a', sizeof(base) - 40);
    memcpy(base, "http://", 7);
    base[sizeof(base) - 40] = '\0';
    cr_expect_eq(build(base, "t", "1Z999AA10123456784", &req, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "longer than") != NULL, "message: %s", err);
    carrier_request_reset(&req);
}

/* Build a token request. */
static enum st_err build_token(const char *base, const char *id, const char *secret,
                               struct carrier_request *req, char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = base, .client_id = id, .client_secret = secret };

    memset(req, 0, sizeof(*req));
    err[0] = '\0';
    return carrier_ups.ops->build_token_request(&ctx, req, err, errlen);
}

Test(ups, token_request)
{
    struct carrier_request req;
    char err[256];

    cr_assert_eq(build_token("https://wwwcie.ups.com/", "test-client", "test-secret", &req, err,
                             sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(req.method, CARRIER_POST);
    cr_expect_str_eq(req.url, "https://wwwcie.ups.com/security/v1/oauth/token");
    /* base64("test-client:test-secret") */
    cr_expect_str_eq(header(&req, "Authorization"), "Basic dGVzdC1jbGllbnQ6dGVzdC1zZWNyZXQ=");
    cr_expect_str_eq(header(&req, "Content-Type"), "application/x-www-form-urlencoded");
    cr_assert_not_null(req.body);
    cr_expect_str_eq(req.body, "grant_type=client_credentials");
    cr_expect_eq(req.body_len, strlen("grant_type=client_credentials"));
    carrier_request_reset(&req);
    /* padding of one and two characters; UTF-8 passes through base64 */
    cr_assert_eq(build_token(NULL, "ab", "c", &req, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(header(&req, "Authorization"), "Basic YWI6Yw==");
    cr_expect_str_eq(req.url, "https://onlinetools.ups.com/security/v1/oauth/token");
    carrier_request_reset(&req);
    cr_assert_eq(build_token(NULL, "a", "é", &req, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(header(&req, "Authorization"), "Basic YTrDqQ==");
    carrier_request_reset(&req);
}

Test(ups, token_request_credential_problems_are_config)
{
    struct carrier_request req;
    char err[256], longer[400];

    cr_expect_eq(build_token(NULL, NULL, "s", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "no OAuth2 client id") != NULL, "message: %s", err);
    cr_expect_eq(build_token(NULL, "id", "", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(build_token(NULL, "id", "s\r\nX: 1", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "control characters") != NULL, "message: %s", err);
    cr_expect_eq(build_token(NULL, "i:d", "s", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "':'") != NULL, "message: %s", err);
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    cr_expect_eq(build_token(NULL, "id", longer, &req, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "longer than") != NULL, "message: %s", err);
    cr_expect_null(req.body);
    carrier_request_reset(&req);
}

/* Parse a token answer. */
static enum st_err token(long status, const char *body, struct carrier_token *tok, char *err,
                         size_t errlen)
{
    err[0] = '\0';
    return carrier_ups.ops->parse_token_response(status, body, strlen(body), tok, err, errlen);
}

Test(ups, token_answers)
{
    struct carrier_token tok;
    char err[256], *big;
    size_t n;

    cr_assert_eq(token(200, "{\"token_type\":\"Bearer\",\"issued_at\":\"1700000000000\","
                            "\"client_id\":\"c\",\"access_token\":\"eyJ.abc-_~+/=\","
                            "\"scope\":\"\",\"expires_in\":\"14399\",\"refresh_count\":\"0\","
                            "\"status\":\"approved\"}", &tok, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_str_eq(tok.access_token, "eyJ.abc-_~+/=");
    cr_expect_eq(tok.expires_in_s, 14399);
    cr_expect_eq(token(200, "{\"access_token\":\"t\",\"expires_in\":60}", &tok, err,
                       sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(tok.expires_in_s, 60);
    cr_expect_eq(token(200, "{\"access_token\":\"t\"}", &tok, err, sizeof(err)), ST_OK);
    cr_expect_eq(tok.expires_in_s, 0);

    cr_expect_eq(token(200, "{\"expires_in\":\"60\"}", &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "ups: token: access_token: missing") != NULL, "%s", err);
    cr_expect_eq(token(200, "{\"access_token\":7}", &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "access_token: expected a string") != NULL, "%s", err);
    cr_expect_eq(token(200, "{\"access_token\":\"a b\"}", &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect_eq(token(200, "{\"access_token\":\"\"}", &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect_eq(token(200, "{\"access_token\":\"t\",\"expires_in\":\"soon\"}", &tok, err,
                       sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "expires_in: expected seconds, got \"soon\"") != NULL, "%s", err);
    cr_expect_eq(token(200, "{\"access_token\":\"t\",\"expires_in\":\"-5\"}", &tok, err,
                       sizeof(err)), ST_PERMANENT);
    cr_expect_eq(token(200, "{\"access_token\":\"t\",\"expires_in\":[1]}", &tok, err,
                       sizeof(err)), ST_PERMANENT);
    cr_expect_eq(token(200, "{\"access_token\":\"t\",\"token_type\":\"MAC\"}", &tok, err,
                       sizeof(err)), ST_PERMANENT);
    cr_expect_eq(token(200, "{\"access_token\":", &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "not JSON") != NULL, "%s", err);
    cr_expect_eq(token(200, "[]", &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect_eq(token(200, "", &tok, err, sizeof(err)), ST_PERMANENT);

    /* a token longer than the carrier_token buffer is refused, not cut */
    n = CARRIER_TOKEN_MAX + 64;
    big = malloc(n + 64);
    cr_assert_not_null(big);
    memcpy(big, "{\"access_token\":\"", 17);
    memset(big + 17, 'x', n);
    memcpy(big + 17 + n, "\"}", 3);
    cr_expect_eq(token(200, big, &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "longer than") != NULL, "%s", err);
    free(big);

    cr_expect_eq(token(401, "{\"response\":{\"errors\":[{\"code\":\"10401\",\"message\":"
                            "\"ClientId is Invalid\"}]}}", &tok, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "10401 ClientId is Invalid") != NULL, "%s", err);
    cr_expect_eq(token(400, "{}", &tok, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(token(403, "", &tok, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(token(429, "{}", &tok, err, sizeof(err)), ST_RETRY);
    cr_expect_eq(token(503, "<html>", &tok, err, sizeof(err)), ST_RETRY);
    cr_expect_eq(token(302, "", &tok, err, sizeof(err)), ST_PERMANENT);
}

Test(ups, body_cap)
{
    size_t len = 4u * 1024u * 1024u + 1;
    char *body = malloc(len), err[256] = "";
    const char *number = "1Z999AA10123456784";
    struct carrier_ctx ctx = { .access_token = "t" };
    struct track_result res;
    struct carrier_token tok;

    cr_assert_not_null(body);
    memset(body, ' ', len);
    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_ups.ops->parse_response(&ctx, 200, body, len, &number, 1, &res, err,
                                                 sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "cap") != NULL, "message: %s", err);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    track_result_reset(&res);
    cr_expect_eq(carrier_ups.ops->parse_token_response(200, body, len, &tok, err, sizeof(err)),
                 ST_PERMANENT);
    cr_expect(strstr(err, "cap") != NULL, "message: %s", err);
    free(body);
}

Test(ups, null_error_buffer_still_fills_results)
{
    static const char body[] = "{\"trackResponse\": {\"shipment\": 3}}";
    const char *number = "1Z999AA10123456784";
    struct carrier_ctx ctx = { .access_token = "t" };
    struct track_result res;

    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_ups.ops->parse_response(&ctx, 200, body, sizeof(body) - 1, &number, 1,
                                                 &res, NULL, 0), ST_PERMANENT);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    cr_expect(strstr(res.errmsg, "ups: trackResponse.shipment: expected an array") != NULL, "%s",
              res.errmsg);
    track_result_reset(&res);
}

Test(ups, picks_the_asked_shipment_and_package)
{
    static const char body[] =
        "{\"trackResponse\":{\"shipment\":[{\"inquiryNumber\":\"1ZAAA\",\"package\":[]},"
        "{\"inquiryNumber\":\"1ZSHIPMENT\",\"package\":["
        "{\"trackingNumber\":\"1ZOTHER\",\"activity\":[{\"status\":{\"type\":\"D\","
        "\"code\":\"KB\",\"description\":\"DELIVERED\"},\"date\":\"20260101\",\"time\":\"120000\"}]},"
        "{\"trackingNumber\":\"1ZSHIPMENT\",\"activity\":[{\"status\":{\"type\":\"M\","
        "\"code\":\"MP\",\"description\":\"Label\"},\"date\":\"20260101\",\"time\":\"100000\","
        "\"gmtDate\":\"20260101\",\"gmtTime\":\"150000\",\"gmtOffset\":\"-05:00\"}]}]}]}}";
    const char *number = "1zshipment";
    struct carrier_ctx ctx = { .access_token = "t" };
    struct track_result res;
    char err[256];

    memset(&res, 0, sizeof(res));
    cr_assert_eq(carrier_ups.ops->parse_response(&ctx, 200, body, sizeof(body) - 1, &number, 1,
                                                 &res, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(res.outcome, TRACK_FOUND);
    cr_assert_eq(res.n_events, 1);
    cr_expect_str_eq(res.events[0].code, "MP");
    cr_expect_eq(res.events[0].status, ST_STATUS_INFO_RECEIVED);
    cr_expect_eq(res.events[0].offset_kind, OFFSET_CARRIER);
    cr_expect_eq(res.events[0].utc_offset_min, -300);
    track_result_reset(&res);
}

Test(ups, one_number_per_response)
{
    const char *numbers[2] = { "1Z999AA10123456784", "1ZST00606608229558" };
    struct carrier_ctx ctx = { .access_token = "t" };
    struct track_result res[2];
    char err[256];

    memset(res, 0, sizeof(res));
    cr_expect_eq(carrier_ups.ops->parse_response(&ctx, 200, "{}", 2, numbers, 2, res, err,
                                                 sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "one number") != NULL, "%s", err);
}

/* ------------------------------------------------------------------------ */
/* End to end against shiptrack-carrier-sim. */

static struct tu_sim sim;

/* Fetch a token with the driver's request; returns the kind parse gave. */
static enum st_err fetch_token(const char *id, const char *secret, struct carrier_token *tok,
                               long *status)
{
    struct carrier_ctx ctx = { .base_url = sim.url, .client_id = id, .client_secret = secret };
    char err[256];

    return sc_fetch_token(&carrier_ups, &ctx, tok, status, err, sizeof(err));
}

/* A live token from the simulator. */
static void live_token(struct carrier_token *tok)
{
    long status;

    cr_assert_eq(fetch_token("sim-client", "sim-secret", tok, &status), ST_OK, "HTTP %ld",
                 status);
    cr_assert_eq(status, 200);
}

/* Track number with the driver: build, send, parse. Returns parse's kind. */
static enum st_err track(const char *token_value, const char *number, struct track_result *res,
                         long *status, char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = sim.url, .access_token = token_value };

    return sc_track(&carrier_ups, &ctx, &number, 1, res, status, err, errlen);
}

/* How UPS dates a step: a "gmt" timestamp carries its offset; a local one
 * takes the zone of the place (country and region), else stays local time
 * (OFFSET_UNKNOWN). */
static enum offset_kind kind_of(const char *number, size_t index, json_t *step)
{
    json_t *wire = json_object_get(step, "wire");
    const char *region = sc_str(step, "region");

    (void)number;
    (void)index;
    if (strcmp(sc_str(wire, "timestamp_style"), "gmt") == 0)
        return OFFSET_CARRIER;
    return geo_zone(sc_str(step, "country"), region[0] ? region : NULL) != NULL ? OFFSET_DERIVED
                                                                                : OFFSET_UNKNOWN;
}

/* Compare a parsed result with the journey's visible steps (the driver sorts
 * by instant, stably). */
static void compare(const char *number, json_t *j, const struct track_result *res)
{
    struct sc_want w[64];
    size_t n = sc_visible_steps(number, j, kind_of, true, w, sizeof(w) / sizeof(w[0]));

    sc_assert_found(number, j, res, n);
    cr_expect_str_eq(res->estimated_delivery, sc_str(j, "estimated_delivery"), "%s", number);
    for (size_t i = 0; i < n; i++) {
        const struct track_event *ev = &res->events[i];
        json_t *s = w[i].step, *wire = json_object_get(s, "wire");
        const char *kind = sc_str(s, "kind");

        sc_expect_when(number, i, ev, &w[i]);
        cr_expect_str_eq(ev->occurred_local, sc_str(s, "local"), "%s event %zu (%s)", number, i,
                         kind);
        if (w[i].kind != OFFSET_UNKNOWN)
            cr_expect_eq(ev->utc_offset_min,
                         json_integer_value(json_object_get(s, "utc_offset_min")),
                         "%s event %zu (%s)", number, i, kind);
        sc_expect_event(number, i, ev, s);
        cr_expect_str_eq(ev->code, sc_str(wire, "code"), "%s event %zu (%s)", number, i, kind);
        cr_expect_str_eq(ev->description, sc_str(wire, "description"));
        sc_expect_place(ev, s);
    }
}

static void start_default(void)
{
    static const char *const args[] = { "--speed", "100000000", NULL };

    sc_start(&sim, args);
}

static void stop(void)
{
    sc_stop(&sim);
}

TestSuite(ups_sim, .init = start_default, .fini = stop, .timeout = 120);

Test(ups_sim, planned_bodies_parse_into_the_journeys)
{
    json_t *plan = sc_plan("ups", "27", "3", SC_PLAN_ANY), *p;
    struct carrier_token tok;
    bool seen[9] = { false };
    static const char *const scenarios[9] = {
        "domestic_delivered", "customs_delivered", "customs_duties_held",
        "customs_documents_held", "attempt_then_delivered", "pickup_point",
        "returned_to_sender", "lost", "unmapped_code",
    };
    size_t i, events = 0, kinds[3] = { 0, 0, 0 };

    cr_assert_eq(json_array_size(plan), 27);
    live_token(&tok);
    json_array_foreach(plan, i, p) {
        const char *number = sc_str(p, "tracking_number");
        struct track_result res;
        json_t *j = sc_journey(&sim, "ups", number);
        char err[256];
        long status;

        cr_assert_not_null(j, "%s: the simulator does not know a planned number", number);
        cr_expect_str_eq(sc_str(j, "scenario"), sc_str(p, "scenario"));
        cr_expect(json_equal(json_object_get(j, "visible_steps"),
                             json_object_get(j, "total_steps")), "%s: journey not complete",
                  number);
        cr_assert_eq(track(tok.access_token, number, &res, &status, err, sizeof(err)), ST_OK,
                     "%s: HTTP %ld: %s", number, status, err);
        compare(number, j, &res);
        sc_check_scenario(number, sc_str(j, "scenario"), &res, false);
        events += res.n_events;
        for (size_t k = 0; k < res.n_events; k++)
            kinds[res.events[k].offset_kind]++;
        for (size_t k = 0; k < 9; k++)
            if (strcmp(scenarios[k], sc_str(j, "scenario")) == 0)
                seen[k] = true;
        track_result_reset(&res);
        json_decref(j);
    }
    for (size_t k = 0; k < 9; k++)
        cr_expect(seen[k], "plan gave no %s journey", scenarios[k]);
    cr_expect_gt(events, 27 * 5, "only %zu events in 27 journeys", events);
    cr_expect_gt(kinds[OFFSET_CARRIER], 0, "no timestamp with gmtOffset");
    cr_expect_gt(kinds[OFFSET_DERIVED], 0, "no timestamp without one");
    json_decref(plan);
}

Test(ups_sim, numbers_are_valid_ups_numbers)
{
    json_t *plan = sc_plan("ups", "5", "11", SC_PLAN_ANY), *p;
    size_t i;

    json_array_foreach(plan, i, p) {
        char bin[512], *out = NULL, *err = NULL;
        char *argv[] = { bin, "detect", (char *)sc_str(p, "tracking_number"), NULL };

        tu_binary_path(bin, sizeof(bin), "shiptrack");
        cr_expect_eq(tu_run(argv, NULL, &out, &err), 0, "detect %s: %s", argv[2], err);
        cr_expect(out != NULL && strstr(out, "ups") != NULL, "detect %s: %s", argv[2], out);
        cr_expect_eq(strlen(argv[2]), 18);
        cr_expect(strncmp(argv[2], "1Z", 2) == 0, "%s", argv[2]);
        free(out);
        free(err);
    }
    json_decref(plan);
}

/* A valid 1Z number built from serial (the UPS mod-10 check digit). */
static void ups_number(unsigned long serial, char out[19])
{
    unsigned total = 0;

    snprintf(out, 19, "1ZST%04lu66%07lu", serial / 10000000ul % 10000ul, serial % 10000000ul);
    for (int i = 0; i < 15; i++) {
        char c = out[2 + i];
        unsigned v = c >= '0' && c <= '9' ? (unsigned)(c - '0') : (unsigned)((c - 3) % 10);

        total += v * (i % 2 == 0 ? 1u : 2u);
    }
    out[17] = (char)('0' + (10 - total % 10) % 10);
    out[18] = '\0';
}

Test(ups_sim, unknown_numbers_are_not_found)
{
    struct carrier_token tok;
    struct track_result res;
    char number[19], err[256];
    long status;
    int unknown = 0;

    live_token(&tok);
    for (unsigned long s = 424200000; s < 424200400 && unknown < 3; s++) {
        json_t *j;

        ups_number(s, number);
        if ((j = sc_journey(&sim, "ups", number)) != NULL) {
            json_decref(j);
            continue;
        }
        unknown++;
        cr_expect_eq(track(tok.access_token, number, &res, &status, err, sizeof(err)), ST_OK,
                     "%s", err);
        cr_expect_eq(status, 404);
        cr_expect_eq(res.outcome, TRACK_NOT_FOUND, "%s: %s", number, res.errmsg);
        track_result_reset(&res);
    }
    cr_expect_eq(unknown, 3, "no numbers the simulator does not know");
    /* a wrong check digit is not a number UPS issued */
    ups_number(424200000, number);
    number[17] = number[17] == '9' ? '0' : (char)(number[17] + 1);
    cr_expect_eq(track(tok.access_token, number, &res, &status, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(res.outcome, TRACK_NOT_FOUND);
    track_result_reset(&res);
}

Test(ups_sim, bearer_is_checked)
{
    json_t *plan = sc_plan("ups", "1", "5", SC_PLAN_ANY);
    const char *number = sc_str(json_array_get(plan, 0), "tracking_number");
    struct carrier_request req;
    struct track_result res;
    struct sc_reply r;
    char err[256];
    long status;
    json_t *body;

    cr_expect_eq(track("not-a-token", number, &res, &status, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(status, 401);
    cr_expect(strstr(err, "ups: UPS rejected the access token (HTTP 401") != NULL, "%s", err);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    track_result_reset(&res);

    /* no Authorization at all: 401 in UPS's error shape */
    memset(&req, 0, sizeof(req));
    snprintf(req.url, sizeof(req.url), "%s/api/track/v1/details/%s", sim.url, number);
    cr_assert_eq(carrier_request_header(&req, "transId", "t1", err, sizeof(err)), ST_OK);
    cr_assert_eq(carrier_request_header(&req, "transactionSrc", "test", err, sizeof(err)), ST_OK);
    sc_send(&req, &r);
    cr_expect_eq(r.status, 401);
    body = json_loads(r.body, 0, NULL);
    cr_expect(json_is_string(json_object_get(
                  json_array_get(json_object_get(json_object_get(body, "response"), "errors"), 0),
                  "code")), "%s", r.body);
    json_decref(body);
    free(r.body);
    json_decref(plan);
}

Test(ups_sim, transaction_headers_are_required)
{
    json_t *plan = sc_plan("ups", "1", "5", SC_PLAN_ANY);
    const char *number = sc_str(json_array_get(plan, 0), "tracking_number");
    struct carrier_token tok;
    struct carrier_request req;
    struct sc_reply r;
    char err[256], bearer[CARRIER_TOKEN_MAX + 16];

    live_token(&tok);
    memset(&req, 0, sizeof(req));
    snprintf(req.url, sizeof(req.url), "%s/api/track/v1/details/%s", sim.url, number);
    snprintf(bearer, sizeof(bearer), "Bearer %s", tok.access_token);
    cr_assert_eq(carrier_request_header(&req, "Authorization", bearer, err, sizeof(err)), ST_OK);
    sc_send(&req, &r);
    cr_expect_eq(r.status, 400, "%s", r.body);
    cr_expect(strstr(r.body, "transId") != NULL, "%s", r.body);
    free(r.body);
    json_decref(plan);
}

Test(ups_sim, client_credentials_are_checked)
{
    struct carrier_token tok;
    struct carrier_request req;
    struct sc_reply r;
    long status;
    char err[256];

    cr_expect_eq(fetch_token("sim-client", "wrong", &tok, &status), ST_CONFIG);
    cr_expect_eq(status, 401);
    cr_expect_eq(fetch_token("someone", "sim-secret", &tok, &status), ST_CONFIG);
    cr_expect_eq(status, 401);

    /* a grant other than client_credentials */
    memset(&req, 0, sizeof(req));
    snprintf(req.url, sizeof(req.url), "%s/security/v1/oauth/token", sim.url);
    req.method = CARRIER_POST;
    cr_assert_eq(carrier_request_header(&req, "Authorization",
                                        "Basic c2ltLWNsaWVudDpzaW0tc2VjcmV0", err, sizeof(err)),
                 ST_OK);
    cr_assert_eq(carrier_request_body(&req, "grant_type=password", 19, err, sizeof(err)), ST_OK);
    sc_send(&req, &r);
    cr_expect_eq(r.status, 400, "%s", r.body);
    cr_expect_eq(carrier_ups.ops->parse_token_response(r.status, r.body, r.len, &tok, err,
                                                       sizeof(err)), ST_CONFIG);
    free(r.body);
    carrier_request_reset(&req);

    /* the token answer has UPS's shape: expires_in is a string */
    memset(&req, 0, sizeof(req));
    snprintf(req.url, sizeof(req.url), "%s/security/v1/oauth/token", sim.url);
    req.method = CARRIER_POST;
    cr_assert_eq(carrier_request_header(&req, "Authorization",
                                        "Basic c2ltLWNsaWVudDpzaW0tc2VjcmV0", err, sizeof(err)),
                 ST_OK);
    cr_assert_eq(carrier_request_body(&req, "grant_type=client_credentials", 29, err,
                                      sizeof(err)), ST_OK);
    sc_send(&req, &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    {
        json_t *o = json_loads(r.body, 0, NULL);

        cr_expect_str_eq(sc_str(o, "token_type"), "Bearer");
        cr_expect_str_eq(sc_str(o, "expires_in"), "3600");
        cr_expect(strlen(sc_str(o, "access_token")) > 0);
        json_decref(o);
    }
    free(r.body);
    carrier_request_reset(&req);
}

Test(ups_sim, tokens_are_used_up)
{
    static const char *const args[] = { "--speed", "100000000", "--token-max-uses", "2", NULL };
    json_t *plan;
    const char *number;
    struct carrier_token tok;
    struct track_result res;
    char err[256];
    long status;

    sc_restart(&sim, args);
    plan = sc_plan("ups", "1", "5", SC_PLAN_ANY);
    number = sc_str(json_array_get(plan, 0), "tracking_number");
    live_token(&tok);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(track(tok.access_token, number, &res, &status, err, sizeof(err)), ST_OK,
                     "use %d: %s", i + 1, err);
        track_result_reset(&res);
    }
    cr_expect_eq(track(tok.access_token, number, &res, &status, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(status, 401);
    track_result_reset(&res);
    /* a fresh token works again */
    live_token(&tok);
    cr_expect_eq(track(tok.access_token, number, &res, &status, err, sizeof(err)), ST_OK, "%s",
                 err);
    track_result_reset(&res);
    json_decref(plan);
}

Test(ups_sim, tokens_expire)
{
    static const char *const args[] = { "--speed", "100000000", "--token-ttl", "1", NULL };
    json_t *plan;
    const char *number;
    struct carrier_token tok;
    struct track_result res;
    char err[256];
    long status;

    sc_restart(&sim, args);
    plan = sc_plan("ups", "1", "5", SC_PLAN_ANY);
    number = sc_str(json_array_get(plan, 0), "tracking_number");
    live_token(&tok);
    cr_expect_eq(tok.expires_in_s, 1);
    sleep(2);
    cr_expect_eq(track(tok.access_token, number, &res, &status, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(status, 401);
    track_result_reset(&res);
    json_decref(plan);
}

Test(ups_sim, faults_are_retry_or_permanent)
{
    static const char *const a429[] = { "--speed", "100000000", "--rate-429", "1", NULL };
    static const char *const amal[] = { "--speed", "100000000", "--malformed-rate", "1", NULL };
    json_t *plan = sc_plan("ups", "1", "5", SC_PLAN_ANY);
    const char *number = sc_str(json_array_get(plan, 0), "tracking_number");
    struct carrier_token tok;
    struct track_result res;
    char err[256];
    long status;

    sc_restart(&sim, amal); /* every 200 is cut in half, the token endpoint's too */
    cr_expect_eq(fetch_token("sim-client", "sim-secret", &tok, &status), ST_PERMANENT);
    cr_expect_eq(status, 200);
    sc_restart(&sim, a429);
    cr_expect_eq(track("x", number, &res, &status, err, sizeof(err)), ST_RETRY, "%s", err);
    cr_expect_eq(status, 429);
    track_result_reset(&res);
    json_decref(plan);
}
