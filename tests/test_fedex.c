/*
 * test_fedex.c - the FedEx Track driver (carriers/fedex.c) and its simulator
 * renderer (carriers/sim/sim_fedex.c).
 *
 * The fixtures (tests/fixtures/fedex/) run in test_drivers.c with every other
 * carrier's. This file covers what fixtures cannot: the definition, the
 * tracking and token requests, token answers, caps, and, end to end against
 * the built simulator (journeys compressed so that every step is visible),
 * the OAuth2 flow, batches of planned numbers parsed into exactly the
 * journeys' visible steps, x-locale wording, not-found numbers, used-up
 * tokens and FedEx's error answers.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "simclient.h"
#include "testutil.h"

extern const struct carrier_def carrier_fedex;

#define PLAN_COUNT 27               /* every scenario three times, fits one batch */

/* ------------------------------------------------------------------------ */
/* Definition and requests, on data alone. */

Test(fedex, definition)
{
    cr_expect_str_eq(carrier_fedex.name, "fedex");
    cr_expect_str_eq(carrier_fedex.display_name, "FedEx (Track)");
    cr_expect_eq(carrier_fedex.batch_max, 30);
    cr_expect_eq(carrier_fedex.rate_per_sec, 140.0);
    cr_expect_eq(carrier_fedex.auth, CARRIER_AUTH_OAUTH2);
    cr_expect_str_eq(carrier_fedex.default_base_url, "https://apis.fedex.com");
    cr_expect_not_null(carrier_fedex.ops->build_token_request);
    cr_expect_not_null(carrier_fedex.ops->parse_token_response);
    cr_expect_null(carrier_fedex.ops->build_register_request);
    cr_expect_eq(carrier_find("fedex"), &carrier_fedex);
}

/* Build a tracking request; returns the kind, req and err filled. */
static enum st_err build(const char *base, const char *token, const char *lang,
                         const char *const *numbers, size_t n, struct carrier_request *req,
                         char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = base, .access_token = token, .language = lang };

    memset(req, 0, sizeof(*req));
    err[0] = '\0';
    return carrier_fedex.ops->build_request(&ctx, numbers, n, req, err, errlen);
}

/* The value of header name in req, or NULL. */
static const char *header(const struct carrier_request *req, const char *name)
{
    size_t k = strlen(name);

    for (size_t i = 0; i < req->n_headers; i++)
        if (strncasecmp(req->headers[i], name, k) == 0 && req->headers[i][k] == ':')
            return req->headers[i] + k + 2;
    return NULL;
}

Test(fedex, request_one_number)
{
    const char *numbers[] = { "794123456787" };
    struct carrier_request req;
    json_t *body, *want;
    char err[256];

    cr_assert_eq(build("https://apis.fedex.com", "tok-1", NULL, numbers, 1, &req, err,
                       sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(req.method, CARRIER_POST);
    cr_expect_str_eq(req.url, "https://apis.fedex.com/track/v1/trackingnumbers");
    cr_expect_str_eq(header(&req, "Authorization"), "Bearer tok-1");
    cr_expect_str_eq(header(&req, "Content-Type"), "application/json");
    cr_expect_null(header(&req, "X-locale"), "no language, no x-locale");
    cr_assert_not_null(req.body);
    body = json_loadb(req.body, req.body_len, 0, NULL);
    want = json_loads("{\"includeDetailedScans\":true,\"trackingInfo\":[{\"trackingNumberInfo\":"
                      "{\"trackingNumber\":\"794123456787\"}}]}", 0, NULL);
    cr_expect(json_equal(body, want), "body %.*s", (int)req.body_len, req.body);
    json_decref(body);
    json_decref(want);
    carrier_request_reset(&req);
}

Test(fedex, request_batch_of_thirty)
{
    const char *numbers[31];
    char store[31][16], err[256];
    struct carrier_request req;
    json_t *body, *infos;

    for (int i = 0; i < 31; i++) {
        snprintf(store[i], sizeof(store[i]), "7941234%05d", i);
        numbers[i] = store[i];
    }
    cr_assert_eq(build("http://sim/", "t", NULL, numbers, 30, &req, err, sizeof(err)), ST_OK,
                 "%s", err);
    cr_expect_str_eq(req.url, "http://sim/track/v1/trackingnumbers");
    body = json_loadb(req.body, req.body_len, 0, NULL);
    infos = json_object_get(body, "trackingInfo");
    cr_assert_eq(json_array_size(infos), 30);
    for (size_t i = 0; i < 30; i++)
        cr_expect_str_eq(json_string_value(json_object_get(json_object_get(json_array_get(
                             infos, i), "trackingNumberInfo"), "trackingNumber")), store[i]);
    json_decref(body);
    carrier_request_reset(&req);
    cr_expect_eq(build("http://sim", "t", NULL, numbers, 31, &req, err, sizeof(err)),
                 ST_PERMANENT);
    cr_expect(strstr(err, "31 numbers") != NULL, "%s", err);
    cr_expect_eq(build("http://sim", "t", NULL, numbers, 0, &req, err, sizeof(err)),
                 ST_PERMANENT);
}

Test(fedex, request_locale_and_base)
{
    const char *numbers[] = { "794123456787" };
    static const char *const cases[][2] = {
        { "fr", "fr_FR" }, { "pt-BR", "pt_BR" }, { "en_gb", "en_GB" }, { "ja", "ja_JP" },
        { "zh-CN", "zh_CN" }, { "xx", NULL }, { "en\r\nX-Evil: 1", NULL }, { "", NULL },
    };
    struct carrier_request req;
    char err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got;

        cr_assert_eq(build(NULL, "t", cases[i][0], numbers, 1, &req, err, sizeof(err)), ST_OK,
                     "%s", err);
        cr_expect_str_eq(req.url, "https://apis.fedex.com/track/v1/trackingnumbers");
        got = header(&req, "X-locale");
        if (cases[i][1] == NULL)
            cr_expect_null(got, "language \"%s\" gave x-locale %s", cases[i][0], got);
        else
            cr_expect(got != NULL && strcmp(got, cases[i][1]) == 0, "language %s: %s",
                      cases[i][0], got ? got : "(none)");
        carrier_request_reset(&req);
    }
}

Test(fedex, request_token_problems_are_config)
{
    const char *numbers[] = { "794123456787" };
    struct carrier_request req;
    char err[256];

    cr_expect_eq(build(NULL, NULL, NULL, numbers, 1, &req, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "no OAuth2 access token") != NULL, "%s", err);
    cr_expect_eq(build(NULL, "", NULL, numbers, 1, &req, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(build(NULL, "abc\r\nX-Evil: 1", NULL, numbers, 1, &req, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect(strstr(err, "control characters") != NULL, "%s", err);
    cr_expect_eq(req.n_headers, 0, "no header may be written for a bad token");
    cr_expect_null(req.body);
    cr_expect_eq(build("http://a\nb", "t", NULL, numbers, 1, &req, err, sizeof(err)),
                 ST_CONFIG);
}

Test(fedex, request_bad_numbers_are_permanent)
{
    static const char *const bad[] = { "", "7941 23456787", "794123456787\r\n", "79412345678\"",
                                       "12345678901234567890123456789012345678901" };
    struct carrier_request req;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *numbers[] = { "794123456787", bad[i] };

        cr_expect_eq(build(NULL, "t", NULL, numbers, 2, &req, err, sizeof(err)), ST_PERMANENT,
                     "number \"%s\"", bad[i]);
        cr_expect(strstr(err, "tracking number") != NULL, "%s", err);
        cr_expect(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL, "%s", err);
        cr_expect_null(req.body);
    }
}

Test(fedex, request_url_cap)
{
    const char *numbers[] = { "794123456787" };
    char err[256], base[CARRIER_URL_MAX];
    struct carrier_request req;

    memset(base, 'a', sizeof(base) - 10);
    memcpy(base, "http://", 7);
    base[sizeof(base) - 10] = '\0';
    cr_expect_eq(build(base, "t", NULL, numbers, 1, &req, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "longer than") != NULL, "%s", err);
}

/* Build a token request. */
static enum st_err build_token(const char *base, const char *id, const char *secret,
                               struct carrier_request *req, char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = base, .client_id = id, .client_secret = secret };

    memset(req, 0, sizeof(*req));
    err[0] = '\0';
    return carrier_fedex.ops->build_token_request(&ctx, req, err, errlen);
}

Test(fedex, token_request)
{
    struct carrier_request req;
    char err[256];

    cr_assert_eq(build_token("https://apis.fedex.com/", "my id", "s&e=c+ü", &req, err,
                             sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(req.method, CARRIER_POST);
    cr_expect_str_eq(req.url, "https://apis.fedex.com/oauth/token");
    cr_expect_str_eq(header(&req, "Content-Type"), "application/x-www-form-urlencoded");
    cr_assert_not_null(req.body);
    cr_expect_eq(req.body_len, strlen(req.body));
    cr_expect_str_eq(req.body, "grant_type=client_credentials&client_id=my%20id"
                               "&client_secret=s%26e%3Dc%2B%C3%BC");
    carrier_request_reset(&req);

    cr_expect_eq(build_token(NULL, NULL, "s", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "client id/secret") != NULL, "%s", err);
    cr_expect_eq(build_token(NULL, "id", "", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(build_token(NULL, "id\r\nX: 1", "s", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(build_token(NULL, "id", "s\n", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect_null(req.body);
}

/* Parse a token answer. */
static enum st_err token(long status, const char *body, struct carrier_token *tok, char *err,
                         size_t errlen)
{
    err[0] = '\0';
    return carrier_fedex.ops->parse_token_response(status, body, body ? strlen(body) : 0, tok,
                                                   err, errlen);
}

Test(fedex, token_response)
{
    struct carrier_token tok;
    char err[256];

    cr_assert_eq(token(200, "{\"access_token\":\"eyJ.abc-123\",\"token_type\":\"bearer\","
                       "\"expires_in\":3600,\"scope\":\"CXS\"}", &tok, err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_expect_str_eq(tok.access_token, "eyJ.abc-123");
    cr_expect_eq(tok.expires_in_s, 3600);
    cr_expect_eq(token(200, "{\"access_token\":\"a\",\"token_type\":\"Bearer\",\"expires_in\":"
                       "3599.0}", &tok, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(tok.expires_in_s, 3599);
    cr_expect_eq(token(200, "{\"access_token\":\"a\"}", &tok, err, sizeof(err)), ST_OK);
    cr_expect_eq(tok.expires_in_s, 0);

    cr_expect_eq(token(401, "{\"errors\":[{\"code\":\"NOT.AUTHORIZED.ERROR\",\"message\":"
                       "\"The given client credentials were not valid.\"}]}", &tok, err,
                       sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "NOT.AUTHORIZED.ERROR") != NULL, "%s", err);
    cr_expect_eq(token(400, "{}", &tok, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(token(403, NULL, &tok, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(token(429, "", &tok, err, sizeof(err)), ST_RETRY);
    cr_expect_eq(token(503, "<html>", &tok, err, sizeof(err)), ST_RETRY);
    cr_expect_eq(token(302, "", &tok, err, sizeof(err)), ST_PERMANENT);

    cr_expect_eq(token(200, "{\"access_token\":", &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "not JSON") != NULL, "%s", err);
    cr_expect_eq(token(200, "[]", &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect_eq(token(200, "{\"token_type\":\"bearer\"}", &tok, err, sizeof(err)),
                 ST_PERMANENT);
    cr_expect(strstr(err, "token.access_token: missing") != NULL, "%s", err);
    cr_expect_eq(token(200, "{\"access_token\":7}", &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "token.access_token: expected a string") != NULL, "%s", err);
    cr_expect_eq(token(200, "{\"access_token\":\"a\",\"expires_in\":\"3600\"}", &tok, err,
                       sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "token.expires_in: expected a number") != NULL, "%s", err);
    cr_expect_eq(token(200, "{\"access_token\":\"a\",\"expires_in\":-5}", &tok, err,
                       sizeof(err)), ST_PERMANENT);
    cr_expect_eq(token(200, "{\"access_token\":\"a\",\"token_type\":\"mac\"}", &tok, err,
                       sizeof(err)), ST_PERMANENT);
    cr_expect_eq(token(200, "{\"access_token\":\"a b\\r\\nX: 1\"}", &tok, err, sizeof(err)),
                 ST_PERMANENT);
    cr_expect_str_eq(tok.access_token, "", "no token kept from a bad answer");
}

Test(fedex, token_too_long)
{
    size_t n = CARRIER_TOKEN_MAX + 10;
    char *body = malloc(n + 64), err[256];
    struct carrier_token tok;

    cr_assert_not_null(body);
    strcpy(body, "{\"access_token\":\"");
    memset(body + strlen(body), 'a', n);
    strcpy(body + 17 + n, "\"}");
    cr_expect_eq(token(200, body, &tok, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "longer than") != NULL, "%s", err);
    free(body);
}

Test(fedex, body_cap)
{
    size_t len = 4u * 1024u * 1024u + 1;
    char *body = malloc(len), err[256] = "";
    const char *numbers[] = { "794123456787", "789000111221" };
    struct carrier_ctx ctx = { .access_token = "t" };
    struct track_result res[2];

    cr_assert_not_null(body);
    memset(body, ' ', len);
    memset(res, 0, sizeof(res));
    cr_expect_eq(carrier_fedex.ops->parse_response(&ctx, 200, body, len, numbers, 2, res, err,
                                                   sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "cap") != NULL, "%s", err);
    cr_expect_eq(res[0].outcome, TRACK_ERROR);
    cr_expect_eq(res[1].outcome, TRACK_ERROR);
    cr_expect_eq(res[1].err, ST_PERMANENT);
    track_result_reset(&res[0]);
    track_result_reset(&res[1]);
    free(body);
}

Test(fedex, null_error_buffer_still_fills_results)
{
    static const char body[] = "{\"output\": {\"completeTrackResults\": 3}}";
    const char *number = "794123456787";
    struct carrier_ctx ctx = { .access_token = "t" };
    struct track_result res;

    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_fedex.ops->parse_response(&ctx, 200, body, sizeof(body) - 1, &number,
                                                   1, &res, NULL, 0), ST_PERMANENT);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    cr_expect(strstr(res.errmsg, "output.completeTrackResults: expected an array") != NULL,
              "%s", res.errmsg);
    track_result_reset(&res);
}

/* Garbage in many shapes: never a crash, always a kind and a message. */
Test(fedex, hostile_bodies)
{
    static const char *const bodies[] = {
        "", "null", "[]", "{}", "{\"output\":null}", "{\"output\":[]}",
        "{\"output\":{\"completeTrackResults\":[1]}}",
        "{\"output\":{\"completeTrackResults\":[{}]}}",
        "{\"output\":{\"completeTrackResults\":[{\"trackingNumber\":5}]}}",
        "{\"output\":{\"completeTrackResults\":[{\"trackingNumber\":\"794123456787\"}]}}",
        "{\"output\":{\"completeTrackResults\":[{\"trackingNumber\":\"794123456787\","
        "\"trackResults\":[{\"scanEvents\":[{}]}]}]}}",
        "{\"output\":{\"completeTrackResults\":[{\"trackingNumber\":\"794123456787\","
        "\"trackResults\":[{\"scanEvents\":[{\"date\":\"2026-01-01T00:00:00Z\","
        "\"scanLocation\":\"x\"}]}]}]}}",
        "{\"output\":{\"completeTrackResults\":[{\"trackingNumber\":\"794123456787\","
        "\"trackResults\":[{\"dateAndTimes\":[{\"type\":\"ESTIMATED_DELIVERY\","
        "\"dateTime\":\"soon\"}]}]}]}}",
        "{\"output\":{\"completeTrackResults\":[{\"trackingNumber\":\"794123456787\","
        "\"trackResults\":[{\"error\":{\"code\":[]}}]}]}}",
        "{\"a\":1,\"a\":2}",
    };
    const char *number = "794123456787";
    struct carrier_ctx ctx = { .access_token = "t" };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct track_result res;
        char err[256] = "";
        enum st_err rc;

        memset(&res, 0, sizeof(res));
        rc = carrier_fedex.ops->parse_response(&ctx, 200, bodies[i], strlen(bodies[i]), &number,
                                               1, &res, err, sizeof(err));
        cr_expect(res.outcome == TRACK_ERROR || res.outcome == TRACK_FOUND, "body %zu", i);
        if (res.outcome == TRACK_ERROR) {
            cr_expect(strncmp(res.errmsg, "fedex: ", 7) == 0, "body %zu: %s", i, res.errmsg);
            cr_expect(rc == ST_OK || rc == res.err, "body %zu", i);
        }
        track_result_reset(&res);
    }
}

/* ------------------------------------------------------------------------ */
/* End to end against shiptrack-carrier-sim. */

static struct tu_sim sim;

/* Fetch a token with the driver's token functions; returns the kind. */
static enum st_err fetch_token(const char *id, const char *secret, struct carrier_token *tok,
                               char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = sim.url, .client_id = id, .client_secret = secret };

    return sc_fetch_token(&carrier_fedex, &ctx, tok, NULL, err, errlen);
}

/* Track numbers[0..n) with token and language; parses into res. Returns the
 * kind and the HTTP status in *status. */
static enum st_err track(const char *tok, const char *lang, const char *const *numbers, size_t n,
                         struct track_result *res, long *status, char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = sim.url, .access_token = tok, .language = lang };

    return sc_track(&carrier_fedex, &ctx, numbers, n, res, status, err, errlen);
}

/* A planned shipment, held by value. */
struct planned {
    char number[32];
    char scenario[32];
    char locale[8];
};

/* Run `plan --carrier fedex` (each line's carrier expected to be fedex);
 * fills out[0..count) and asserts it printed exactly count lines. */
static void run_plan(struct planned *out, size_t count, const char *seed)
{
    char cnt[16];
    json_t *list, *o;
    size_t n = 0, i;

    snprintf(cnt, sizeof(cnt), "%zu", count);
    list = sc_plan("fedex", cnt, seed, SC_PLAN_EXPECT_CARRIER);
    json_array_foreach(list, i, o) {
        cr_assert_lt(n, count);
        snprintf(out[n].number, sizeof(out[n].number), "%s", sc_str(o, "tracking_number"));
        snprintf(out[n].scenario, sizeof(out[n].scenario), "%s", sc_str(o, "scenario"));
        snprintf(out[n].locale, sizeof(out[n].locale), "%s", sc_str(o, "locale"));
        n++;
    }
    cr_assert_eq(n, count, "plan printed %zu lines", n);
    json_decref(list);
}

/* How FedEx dates a step: every timestamp carries its offset. */
static enum offset_kind kind_of(const char *number, size_t index, json_t *step)
{
    (void)number;
    (void)index;
    (void)step;
    return OFFSET_CARRIER;
}

/* Compare a parsed result with the journey's visible steps, in the journey's
 * order (not re-sorted); every FedEx timestamp carries its offset. */
static void compare(const char *number, json_t *journey, const struct track_result *res)
{
    struct sc_want w[64];
    size_t n = sc_visible_steps(number, journey, kind_of, false, w, sizeof(w) / sizeof(w[0]));

    sc_assert_found(number, journey, res, n);
    for (size_t i = 0; i < n; i++) {
        const struct track_event *ev = &res->events[i];
        json_t *s = w[i].step, *wire = json_object_get(s, "wire");
        const char *kind = sc_str(s, "kind");

        sc_expect_when(number, i, ev, &w[i]); /* at "at", OFFSET_CARRIER */
        cr_expect_str_eq(ev->occurred_local, sc_str(s, "local"), "%s event %zu (%s)", number, i,
                         kind);
        cr_expect_eq(ev->utc_offset_min, json_integer_value(json_object_get(s, "utc_offset_min")),
                     "%s event %zu (%s)", number, i, kind);
        sc_expect_event(number, i, ev, s);
        cr_expect_str_eq(ev->code, sc_str(wire, "eventType"), "%s event %zu (%s)", number, i, kind);
        sc_expect_place(ev, s);
        cr_expect(ev->description[0] != '\0', "%s event %zu: no description", number, i);
    }
    cr_expect_str_eq(res->estimated_delivery, sc_str(journey, "estimated_delivery"),
                     "%s: estimated delivery", number);
}

/* Scenario-level checks on a complete journey. */
static void check_scenario(const char *number, const char *scenario,
                           const struct track_result *res)
{
    if (strcmp(scenario, "customs_duties_held") == 0)
        cr_expect(sc_has(res, ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE) &&
                      sc_has(res, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED),
                  "%s: no duties hold and release", number);
    else if (strcmp(scenario, "customs_documents_held") == 0)
        cr_expect(sc_has(res, ST_STATUS_HELD, ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED) &&
                      sc_has(res, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED),
                  "%s: no documents hold and release", number);
    else if (strcmp(scenario, "unmapped_code") == 0)
        cr_expect(sc_has(res, ST_STATUS_PENDING, ST_SUB_UNMAPPED), "%s: no unmapped event", number);
    else if (strcmp(scenario, "returned_to_sender") == 0)
        cr_expect(sc_has(res, ST_STATUS_RETURNED, ST_SUB_RETURNED_TO_SENDER), "%s", number);
}

static void start_sim(const char *const *extra)
{
    const char *args[16] = { "--speed", "100000000" };
    size_t n = 2;

    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    sc_start(&sim, args);
}

static void start_default(void)
{
    start_sim(NULL);
}

static void stop(void)
{
    sc_stop(&sim);
}

TestSuite(fedex_sim, .init = start_default, .fini = stop, .timeout = 120);

/* One batch of planned numbers: every journey comes back, matched by number
 * although the simulator answers in another order. */
Test(fedex_sim, planned_batch_matches_journeys)
{
    struct planned plan[PLAN_COUNT];
    const char *numbers[PLAN_COUNT];
    struct track_result res[PLAN_COUNT];
    struct carrier_token tok;
    char err[256];
    long status;

    run_plan(plan, PLAN_COUNT, "11");
    for (size_t i = 0; i < PLAN_COUNT; i++)
        numbers[i] = plan[i].number;
    cr_assert_eq(fetch_token("sim-client", "sim-secret", &tok, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(tok.expires_in_s, 3600);
    cr_assert_eq(track(tok.access_token, NULL, numbers, PLAN_COUNT, res, &status, err,
                       sizeof(err)), ST_OK, "HTTP %ld: %s", status, err);
    for (size_t i = 0; i < PLAN_COUNT; i++) {
        json_t *j = sc_journey(&sim, "fedex", plan[i].number);

        cr_assert_not_null(j, "%s: planned but unknown", plan[i].number);
        cr_expect_str_eq(sc_str(j, "scenario"), plan[i].scenario);
        compare(plan[i].number, j, &res[i]);
        check_scenario(plan[i].number, plan[i].scenario, &res[i]);
        json_decref(j);
        track_result_reset(&res[i]);
    }
}

/* x-locale in the destination's language: customs steps come in that language
 * and still normalize to the same holds and releases. */
Test(fedex_sim, destination_language_wording)
{
    struct planned plan[18];
    struct carrier_token tok;
    struct track_result res;
    char err[256];
    long status;

    run_plan(plan, 18, "5");
    cr_assert_eq(fetch_token("sim-client", "sim-secret", &tok, err, sizeof(err)), ST_OK, "%s",
                 err);
    for (size_t i = 0; i < 18; i++) {
        const char *number = plan[i].number;
        json_t *j;

        cr_assert_eq(track(tok.access_token, plan[i].locale, &number, 1, &res, &status, err,
                           sizeof(err)), ST_OK, "%s: %s", number, err);
        j = sc_journey(&sim, "fedex", number);
        compare(number, j, &res);
        check_scenario(number, plan[i].scenario, &res);
        json_decref(j);
        track_result_reset(&res);
    }
}

/* Numbers the simulator does not know, and numbers with a bad check digit,
 * come back as not found inside a 200, next to known ones. */
Test(fedex_sim, not_found_numbers)
{
    static const unsigned w[3] = { 3, 1, 7 };
    char unknown[13] = "", bad[13], known[32];
    const char *numbers[3];
    struct track_result res[3];
    struct planned plan[1];
    struct carrier_token tok;
    char err[256];
    long status;

    for (unsigned long serial = 4200000000ul; unknown[0] == '\0'; serial++) {
        unsigned long sum = 0;
        char digits[12];
        json_t *j;

        snprintf(digits, sizeof(digits), "%011lu", serial);
        for (int k = 0; k < 11; k++)
            sum += (unsigned long)(digits[k] - '0') * w[k % 3];
        snprintf(bad, sizeof(bad), "%s%lu", digits, sum % 11 % 10);
        if ((j = sc_journey(&sim, "fedex", bad)) == NULL)
            memcpy(unknown, bad, sizeof(unknown));
        json_decref(j);
        cr_assert_lt(serial, 4200000200ul, "no unknown number in 200 tries");
    }
    run_plan(plan, 1, "2");
    snprintf(known, sizeof(known), "%s", plan[0].number);
    memcpy(bad, known, 13);
    bad[11] = (char)('0' + (bad[11] - '0' + 1) % 10); /* wrong check digit */
    numbers[0] = unknown;
    numbers[1] = known;
    numbers[2] = bad;
    cr_assert_eq(fetch_token("sim-client", "sim-secret", &tok, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_assert_eq(track(tok.access_token, NULL, numbers, 3, res, &status, err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_expect_eq(status, 200);
    cr_expect_eq(res[0].outcome, TRACK_NOT_FOUND, "%s: %s", unknown, res[0].errmsg);
    cr_expect_eq(res[1].outcome, TRACK_FOUND, "%s: %s", known, res[1].errmsg);
    cr_expect_eq(res[2].outcome, TRACK_NOT_FOUND, "%s: %s", bad, res[2].errmsg);
    for (int i = 0; i < 3; i++)
        track_result_reset(&res[i]);
}

/* The token endpoint and the bearer check. */
Test(fedex_sim, auth_failures)
{
    const char *number = "794123456787";
    struct carrier_token tok;
    struct track_result res;
    struct sc_reply r;
    char err[256], url[256];
    long status;

    cr_expect_eq(fetch_token("sim-client", "wrong", &tok, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "NOT.AUTHORIZED.ERROR") != NULL, "%s", err);
    cr_expect_eq(fetch_token("nobody", "sim-secret", &tok, err, sizeof(err)), ST_CONFIG);

    snprintf(url, sizeof(url), "%s/oauth/token", sim.url);
    {
        static const char *const form[] = { "Content-Type: application/x-www-form-urlencoded",
                                            NULL };
        static const char body[] = "grant_type=password&client_id=sim-client&client_secret=sim-secret";

        sc_http("POST", url, form, body, sizeof(body) - 1, &r);
        cr_expect_eq(r.status, 400, "wrong grant: HTTP %ld", r.status);
        cr_expect(strstr(r.body, "\"errors\"") != NULL, "%s", r.body);
        free(r.body);
    }

    cr_expect_eq(track("not-a-token", NULL, &number, 1, &res, &status, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect_eq(status, 401);
    cr_expect(strstr(err, "NOT.AUTHORIZED.ERROR") != NULL, "%s", err);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    cr_expect_eq(res.err, ST_CONFIG);
    track_result_reset(&res);

    /* no Authorization header at all */
    snprintf(url, sizeof(url), "%s/track/v1/trackingnumbers", sim.url);
    {
        static const char *const json[] = { "Content-Type: application/json", NULL };
        static const char body[] = "{\"includeDetailedScans\":true,\"trackingInfo\":[{"
                                   "\"trackingNumberInfo\":{\"trackingNumber\":\"794123456787\"}}]}";

        sc_http("POST", url, json, body, sizeof(body) - 1, &r);
        cr_expect_eq(r.status, 401, "no token: HTTP %ld", r.status);
        free(r.body);
        sc_http("GET", url, NULL, NULL, 0, &r);
        cr_expect_eq(r.status, 405, "GET: HTTP %ld", r.status);
        free(r.body);
    }
}

/* More than 30 numbers: FedEx's 400, which the driver reports as permanent. */
Test(fedex_sim, batch_over_thirty_is_refused)
{
    struct carrier_token tok;
    struct track_result res;
    char err[256], url[256], auth[CARRIER_TOKEN_MAX + 32];
    const char *number = "794123456787";
    json_t *body = json_pack("{s:b,s:[]}", "includeDetailedScans", 1, "trackingInfo");
    char *text;
    struct sc_reply r;
    struct carrier_ctx ctx = { .access_token = "t" };

    cr_assert_eq(fetch_token("sim-client", "sim-secret", &tok, err, sizeof(err)), ST_OK, "%s",
                 err);
    for (int i = 0; i < 31; i++)
        json_array_append_new(json_object_get(body, "trackingInfo"),
                              json_pack("{s:{s:s}}", "trackingNumberInfo", "trackingNumber",
                                        number));
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    snprintf(url, sizeof(url), "%s/track/v1/trackingnumbers", sim.url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok.access_token);
    {
        const char *headers[] = { auth, "Content-Type: application/json", NULL };

        sc_http("POST", url, headers, text, strlen(text), &r);
    }
    free(text);
    cr_expect_eq(r.status, 400, "HTTP %ld", r.status);
    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_fedex.ops->parse_response(&ctx, r.status, r.body, r.len, &number, 1,
                                                   &res, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "HTTP status 400") != NULL, "%s", err);
    track_result_reset(&res);
    free(r.body);

    /* and a body that is not JSON */
    {
        const char *headers[] = { auth, "Content-Type: application/json", NULL };

        sc_http("POST", url, headers, "{nope", 5, &r);
        cr_expect_eq(r.status, 400, "HTTP %ld", r.status);
        cr_expect(strstr(r.body, "INVALID.INPUT.EXCEPTION") != NULL, "%s", r.body);
        free(r.body);
    }
}

static void start_two_uses(void)
{
    static const char *const extra[] = { "--token-max-uses", "2", NULL };

    start_sim(extra);
}

TestSuite(fedex_sim_tokens, .init = start_two_uses, .fini = stop, .timeout = 120);

/* A token used up answers 401, which the driver reports as a config problem
 * (the poller refreshes on it); a fresh token works again. */
Test(fedex_sim_tokens, used_up_token)
{
    struct planned plan[1];
    const char *number;
    struct carrier_token tok;
    struct track_result res;
    char err[256];
    long status;

    run_plan(plan, 1, "9");
    number = plan[0].number;
    cr_assert_eq(fetch_token("sim-client", "sim-secret", &tok, err, sizeof(err)), ST_OK, "%s",
                 err);
    for (int use = 0; use < 2; use++) {
        cr_expect_eq(track(tok.access_token, NULL, &number, 1, &res, &status, err, sizeof(err)),
                     ST_OK, "use %d: %s", use, err);
        track_result_reset(&res);
    }
    cr_expect_eq(track(tok.access_token, NULL, &number, 1, &res, &status, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect_eq(status, 401);
    track_result_reset(&res);
    cr_assert_eq(fetch_token("sim-client", "sim-secret", &tok, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(track(tok.access_token, NULL, &number, 1, &res, &status, err, sizeof(err)),
                 ST_OK, "%s", err);
    track_result_reset(&res);
}
