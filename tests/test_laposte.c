/*
 * test_laposte.c - the La Poste Suivi v2 driver (carriers/laposte.c) and its
 * simulator renderer (carriers/sim/sim_laposte.c).
 *
 * The fixtures (tests/fixtures/laposte/) run in test_drivers.c with every
 * other carrier's; this file covers what fixtures cannot: the definition,
 * build_request (URL, batching, lang, headers, rejected input), the caps, and
 * an end-to-end block against the built simulator: requests built by the
 * driver are sent with libcurl, and every body must parse into exactly the
 * visible steps of /_sim/journey?carrier=laposte (statuses, substatuses,
 * customs flags, codes, labels in the asked language, instants and offsets,
 * the estimated delivery), single (200/404/400) and batched (207) alike,
 * with the key checked (401) and unknown numbers not found.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "simclient.h"
#include "testutil.h"

extern const struct carrier_def carrier_laposte;

#define SIM_KEY   "sim-laposte-key"

/* ------------------------------------------------------------------------ */
/* Definition and requests. */

Test(laposte, definition)
{
    cr_expect_str_eq(carrier_laposte.name, "laposte");
    cr_expect_str_eq(carrier_laposte.display_name, "La Poste (Suivi v2)");
    cr_expect_eq(carrier_laposte.batch_max, 10);
    cr_expect_eq(carrier_laposte.rate_per_sec, 10.0);
    cr_expect_eq(carrier_laposte.rate_per_day, 0);
    cr_expect_eq(carrier_laposte.auth, CARRIER_AUTH_API_KEY);
    cr_expect_str_eq(carrier_laposte.default_base_url, "https://api.laposte.fr");
    cr_expect_null(carrier_laposte.ops->build_token_request);
    cr_expect_null(carrier_laposte.ops->build_register_request);
    cr_expect_eq(carrier_find("laposte"), &carrier_laposte);
}

/* Build a request for numbers[0..n); returns the kind, req and err filled. */
static enum st_err build(const char *base, const char *key, const char *lang,
                         const char *const *numbers, size_t n, struct carrier_request *req,
                         char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = base, .api_key = key, .language = lang };

    memset(req, 0, sizeof(*req));
    err[0] = '\0';
    return carrier_laposte.ops->build_request(&ctx, numbers, n, req, err, errlen);
}

/* Build for one number. */
static enum st_err build1(const char *base, const char *key, const char *lang,
                          const char *number, struct carrier_request *req, char *err,
                          size_t errlen)
{
    return build(base, key, lang, &number, 1, req, err, errlen);
}

Test(laposte, request_one)
{
    struct carrier_request req;
    char err[256];

    cr_assert_eq(build1("https://api.laposte.fr", "s3cret", NULL, "6A18234567890", &req, err,
                        sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(req.method, CARRIER_GET);
    cr_expect_str_eq(req.url, "https://api.laposte.fr/suivi/v2/idships/6A18234567890?lang=fr_FR");
    cr_assert_eq(req.n_headers, 2);
    cr_expect_str_eq(req.headers[0], "X-Okapi-Key: s3cret");
    cr_expect_str_eq(req.headers[1], "Accept: application/json");
    cr_expect_null(req.body);
    carrier_request_reset(&req);
}

Test(laposte, request_batch_of_ten)
{
    static const char *const nums[11] = {
        "6A00000000001", "6A00000000002", "6A00000000003", "6A00000000004", "6A00000000005",
        "6A00000000006", "6A00000000007", "6A00000000008", "LA123456785FR", "la123456785fr",
        "6A00000000011",
    };
    struct carrier_request req;
    char err[256];

    cr_assert_eq(build("http://127.0.0.1:9//", "k", "en", nums, 10, &req, err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_expect_str_eq(req.url, "http://127.0.0.1:9/suivi/v2/idships/6A00000000001,6A00000000002,"
                              "6A00000000003,6A00000000004,6A00000000005,6A00000000006,"
                              "6A00000000007,6A00000000008,LA123456785FR,la123456785fr"
                              "?lang=en_GB");
    carrier_request_reset(&req);
    cr_expect_eq(build("http://sim", "k", NULL, nums, 11, &req, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "1 to 10 numbers") != NULL, "message: %s", err);
    cr_expect_eq(build("http://sim", "k", NULL, nums, 0, &req, err, sizeof(err)), ST_PERMANENT);
    carrier_request_reset(&req);
}

Test(laposte, request_languages)
{
    static const char *const map[][2] = {
        { NULL, "fr_FR" },  { "", "fr_FR" },     { "fr", "fr_FR" },    { "en", "en_GB" },
        { "en-US", "en_GB" }, { "EN_us", "en_GB" }, { "de-AT", "de_DE" }, { "es", "es_ES" },
        { "it", "it_IT" },  { "nl-BE", "nl_NL" }, { "pt-BR", "fr_FR" }, { "e", "fr_FR" },
        { "english", "fr_FR" }, { "en&x=1", "fr_FR" },
    };
    struct carrier_request req;
    char err[256], want[128];

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        cr_assert_eq(build1(NULL, "k", map[i][0], "6A18234567890", &req, err, sizeof(err)),
                     ST_OK, "%s", err);
        snprintf(want, sizeof(want),
                 "https://api.laposte.fr/suivi/v2/idships/6A18234567890?lang=%s", map[i][1]);
        cr_expect_str_eq(req.url, want, "language \"%s\"", map[i][0] ? map[i][0] : "(null)");
        carrier_request_reset(&req);
    }
}

Test(laposte, request_rejects_bad_numbers)
{
    static const char *const bad[] = {
        "", "12 34", "6A1,6A2", "abc/def", "1234?x=1", "12%20", "ünicode", "12\r\n34", "AB-12",
        "012345678901234567890123456789012", /* 33 */
    };
    struct carrier_request req;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *batch[2] = { "6A18234567890", bad[i] };

        cr_expect_eq(build1("https://api.laposte.fr", "k", NULL, bad[i], &req, err, sizeof(err)),
                     ST_PERMANENT, "number #%zu accepted", i);
        cr_expect(strstr(err, "laposte: tracking number") != NULL, "message: %s", err);
        cr_expect(strchr(err, '\r') == NULL && strchr(err, '\n') == NULL, "message: %s", err);
        carrier_request_reset(&req);
        cr_expect_eq(build("https://api.laposte.fr", "k", NULL, batch, 2, &req, err, sizeof(err)),
                     ST_PERMANENT, "number #%zu accepted in a batch", i);
        carrier_request_reset(&req);
    }
    cr_expect_eq(build1("https://api.laposte.fr", "k", NULL, "01234567890123456789012345678901",
                        &req, err, sizeof(err)), ST_OK, "32 characters: %s", err);
    carrier_request_reset(&req);
}

Test(laposte, request_key_problems_are_config)
{
    static const char *const keys[] = { NULL, "", "abc\r\nX-Evil: 1", "abc\ndef", "a\tb" };
    struct carrier_request req;
    char err[256];

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        cr_expect_eq(build1("https://api.laposte.fr", keys[i], NULL, "6A18234567890", &req, err,
                            sizeof(err)), ST_CONFIG, "key #%zu", i);
        cr_expect(strstr(err, i < 2 ? "no API key" : "control characters") != NULL,
                  "message: %s", err);
        cr_expect_eq(req.n_headers, 0, "no header may be written for a bad key");
        carrier_request_reset(&req);
    }
}

Test(laposte, request_url_cap)
{
    struct carrier_request req;
    char err[256], base[CARRIER_URL_MAX];
    static const char *const nums[10] = {
        "01234567890123456789012345678901", "01234567890123456789012345678902",
        "01234567890123456789012345678903", "01234567890123456789012345678904",
        "01234567890123456789012345678905", "01234567890123456789012345678906",
        "01234567890123456789012345678907", "01234567890123456789012345678908",
        "01234567890123456789012345678909", "01234567890123456789012345678910",
    };

    memset(base, 'a', sizeof(base) - 40);
    memcpy(base, "http://", 7);
    base[sizeof(base) - 40] = '\0';
    cr_expect_eq(build1(base, "k", NULL, "6A18234567890", &req, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "longer than") != NULL, "message: %s", err);
    carrier_request_reset(&req);
    base[sizeof(base) - 300] = '\0';
    cr_expect_eq(build(base, "k", NULL, nums, 10, &req, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "longer than") != NULL, "message: %s", err);
    carrier_request_reset(&req);
}

/* ------------------------------------------------------------------------ */
/* Parsing edges the fixtures do not reach. */

Test(laposte, body_cap)
{
    size_t len = 4u * 1024u * 1024u + 1;
    char *body = malloc(len), err[256] = "";
    const char *numbers[2] = { "6A18234567890", "6A18234567891" };
    struct carrier_ctx ctx = { .api_key = "k" };
    struct track_result res[2];

    cr_assert_not_null(body);
    memset(body, ' ', len);
    memset(res, 0, sizeof(res));
    cr_expect_eq(carrier_laposte.ops->parse_response(&ctx, 207, body, len, numbers, 2, res, err,
                                                     sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "cap") != NULL, "message: %s", err);
    cr_expect_eq(res[0].outcome, TRACK_ERROR);
    cr_expect_eq(res[1].outcome, TRACK_ERROR);
    track_result_reset(&res[0]);
    track_result_reset(&res[1]);
    free(body);
}

Test(laposte, null_error_buffer_still_fills_results)
{
    static const char body[] = "{\"returnCode\": \"200\", \"idShip\": \"6A18234567890\"}";
    const char *number = "6A18234567890";
    struct carrier_ctx ctx = { .api_key = "k" };
    struct track_result res;

    memset(&res, 0, sizeof(res));
    cr_expect_eq(carrier_laposte.ops->parse_response(&ctx, 200, body, sizeof(body) - 1, &number,
                                                     1, &res, NULL, 0), ST_PERMANENT);
    cr_expect_eq(res.outcome, TRACK_ERROR);
    cr_expect(strstr(res.errmsg, "laposte: body.returnCode: expected an integer") != NULL, "%s",
              res.errmsg);
    track_result_reset(&res);
}

Test(laposte, odd_bodies_are_permanent)
{
    static const char *const bodies[][2] = {
        { "42", "body: expected an object or an array" },
        { "[42]", "[0]: expected an object" },
        { "{\"returnCode\":200,\"shipment\":[]}", "body.shipment: expected an object" },
        { "{\"returnCode\":200,\"idShip\":\"6A18234567890\"}", "shipment: missing" },
        { "{\"returnCode\":200,\"shipment\":{\"idShip\":\"6A18234567890\",\"event\":{}}}",
          "shipment.event: expected an array" },
        { "{\"returnCode\":200,\"shipment\":{\"idShip\":\"6A18234567890\",\"isFinal\":\"yes\"}}",
          "shipment.isFinal: expected a boolean" },
        { "{\"returnCode\":200,\"shipment\":{\"idShip\":\"6A18234567890\",\"estimDate\":\"soon\"}}",
          "shipment.estimDate: expected YYYY-MM-DD" },
        { "{\"returnCode\":200,\"shipment\":{\"idShip\":\"6A18234567890\",\"contextData\":"
          "{\"originCountry\":250}}}", "shipment.contextData.originCountry: expected a string" },
        { "{\"returnCode\":200,\"shipment\":{\"idShip\":\"6A18234567890\",\"event\":[{\"code\":"
          "\"DI1\"}]}}", "shipment.event[0].date: missing" },
        { "{\"returnCode\":200,\"shipment\":{\"idShip\":\"6A18234567890\",\"event\":[7]}}",
          "shipment.event[0]: expected an object" },
        { "{\"returnCode\":302,\"idShip\":\"6A18234567890\"}", "unexpected value 302" },
        { "{\"returnCode\":200,\"returnCode\":200}", "not JSON" },
        { "", "empty body" },
    };
    const char *number = "6A18234567890";
    struct carrier_ctx ctx = { .api_key = "k" };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct track_result res;
        char err[256] = "";

        memset(&res, 0, sizeof(res));
        cr_expect_eq(carrier_laposte.ops->parse_response(&ctx, 200, bodies[i][0],
                                                         strlen(bodies[i][0]), &number, 1, &res,
                                                         err, sizeof(err)), ST_PERMANENT,
                     "body #%zu: %s", i, err);
        cr_expect(strstr(err, bodies[i][1]) != NULL, "body #%zu: %s", i, err);
        cr_expect_eq(res.outcome, TRACK_ERROR, "body #%zu", i);
        cr_expect(strncmp(res.errmsg, "laposte: ", 9) == 0, "body #%zu: %s", i, res.errmsg);
        track_result_reset(&res);
    }
}

Test(laposte, more_than_ten_numbers_refused)
{
    const char *numbers[11];
    struct track_result res[11];
    struct carrier_ctx ctx = { .api_key = "k" };
    char err[256] = "";

    for (size_t i = 0; i < 11; i++)
        numbers[i] = "6A18234567890";
    memset(res, 0, sizeof(res));
    cr_expect_eq(carrier_laposte.ops->parse_response(&ctx, 207, "[]", 2, numbers, 11, res, err,
                                                     sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "1 to 10") != NULL, "%s", err);
}

/* Every prefix of every fixture body, as 200 and 207, one and two numbers:
 * never a crash, always a result per number, errors always say "laposte: ". */
Test(laposte, truncated_fixtures_never_crash)
{
    static const char *const names[] = {
        "domestic_fr", "customs_cn_fr", "customs_holds", "batch_207", "no_offsets",
        "delivery_outcomes", "unordered_duplicates",
    };
    const char *numbers[2] = { "6A18234567890", "LA123456785FR" };
    struct carrier_ctx ctx = { .api_key = "k" };

    for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
        char rel[128], path[1024];
        size_t len;
        char *body;

        snprintf(rel, sizeof(rel), "laposte/%s.response.json", names[f]);
        body = tu_read_file(tu_fixture_path(path, sizeof(path), rel), &len);
        for (size_t cut = 0; cut <= len; cut += 1 + cut / 64) {
            for (size_t n = 1; n <= 2; n++) {
                struct track_result res[2];
                char err[256] = "";
                enum st_err rc;

                memset(res, 0, sizeof(res));
                rc = carrier_laposte.ops->parse_response(&ctx, n == 1 ? 200 : 207, body, cut,
                                                         numbers, n, res, err, sizeof(err));
                for (size_t i = 0; i < n; i++) {
                    if (res[i].outcome == TRACK_ERROR)
                        cr_expect(strncmp(res[i].errmsg, "laposte: ", 9) == 0,
                                  "%s cut %zu: %s", names[f], cut, res[i].errmsg);
                    track_result_reset(&res[i]);
                }
                if (rc != ST_OK)
                    cr_expect(strncmp(err, "laposte: ", 9) == 0, "%s cut %zu: %s", names[f],
                              cut, err);
            }
        }
        free(body);
    }
}

/* ------------------------------------------------------------------------ */
/* End to end against shiptrack-carrier-sim. */

static struct tu_sim sim;

/* Build the driver's request for numbers with key and lang against the
 * simulator, send it, parse the answer into res[0..n). Returns parse's kind. */
static enum st_err track(const char *const *numbers, size_t n, const char *key,
                         const char *lang, struct track_result *res, long *status)
{
    struct carrier_ctx ctx = { .base_url = sim.url, .api_key = key, .language = lang };
    char err[256] = "";

    return sc_track(&carrier_laposte, &ctx, numbers, n, res, status, err, sizeof(err));
}

/* Minutes east of UTC of a "...+HH:MM" timestamp. */
static int offset_of(const char *ts)
{
    size_t n = strlen(ts);
    int h = 0, m = 0;

    cr_assert(n > 6 && (ts[n - 6] == '+' || ts[n - 6] == '-'), "no offset in %s", ts);
    cr_assert_eq(sscanf(ts + n - 5, "%d:%d", &h, &m), 2, "bad offset in %s", ts);
    return (ts[n - 6] == '-' ? -1 : 1) * (h * 60 + m);
}

/* Compare a parsed result with the journey's visible steps. */
static void compare(const char *number, json_t *journey, const struct track_result *res,
                    bool french)
{
    json_t *steps = json_object_get(journey, "steps"), *step;
    bool used[64] = { false };
    size_t n_visible = 0, i;

    json_array_foreach(steps, i, step)
        n_visible += json_is_true(json_object_get(step, "visible"));
    sc_assert_found(number, journey, res, n_visible);
    cr_assert_lt(json_array_size(steps), sizeof(used) / sizeof(used[0]));
    for (size_t k = 0; k < res->n_events; k++) {
        const struct track_event *ev = &res->events[k];
        json_t *s = NULL, *wire;
        const char *kind;

        if (k > 0)
            cr_expect_geq(ev->occurred_at, res->events[k - 1].occurred_at, "%s: not sorted",
                          number);
        json_array_foreach(steps, i, step) {
            json_t *w = json_object_get(step, "wire");

            if (!used[i] && json_is_true(json_object_get(step, "visible")) &&
                sc_utc_of(sc_str(step, "at")) == ev->occurred_at &&
                strcmp(sc_str(w, "code"), ev->code) == 0) {
                used[i] = true;
                s = step;
                break;
            }
        }
        cr_assert_not_null(s, "%s event %zu (%s %s): no visible step at that instant", number, k,
                           ev->code, ev->description);
        wire = json_object_get(s, "wire");
        kind = sc_str(s, "kind");
        cr_expect_eq(ev->offset_kind, OFFSET_CARRIER, "%s event %zu (%s)", number, k, kind);
        cr_expect_eq(ev->utc_offset_min, offset_of(sc_str(wire, "timestamp")), "%s event %zu (%s)",
                     number, k, kind);
        cr_expect(ev->utc_offset_min == 60 || ev->utc_offset_min == 120, "%s: French offsets",
                  number);
        sc_expect_event(number, k, ev, s);
        cr_expect_str_eq(ev->description, sc_str(wire, french ? "label_fr" : "label_en"),
                         "%s event %zu (%s)", number, k, kind);
        if (ev->country[0] != '\0') /* filled only where La Poste's code makes it certain */
            cr_expect_str_eq(ev->country, sc_str(s, "country"), "%s event %zu (%s)", number, k,
                             kind);
        cr_expect_str_eq(ev->city, "");
    }
    cr_expect_str_eq(res->estimated_delivery, sc_str(journey, "estimated_delivery"), "%s: EDD",
                     number);
}

static void start(void)
{
    static const char *const args[] = { "--speed", "100000000", NULL };

    sc_start(&sim, args);
    sc_wait_all_complete(&sim, 300, 100, "journeys not complete after 30 s");
}

static void stop(void)
{
    sc_stop(&sim);
}

/* Track every planned number in batches of `batch`, in lang, and compare. */
static void track_plan(const char *count, const char *seed, size_t batch, const char *lang,
                       bool french)
{
    json_t *plan = sc_plan("laposte", count, seed, SC_PLAN_ANY);
    size_t total = json_array_size(plan);

    cr_assert_gt(total, 0);
    for (size_t at = 0; at < total; at += batch) {
        const char *numbers[10];
        struct track_result res[10];
        size_t n = total - at < batch ? total - at : batch;
        long status = 0;
        enum st_err rc;

        for (size_t i = 0; i < n; i++)
            numbers[i] = sc_str(json_array_get(plan, at + i), "tracking_number");
        rc = track(numbers, n, SIM_KEY, lang, res, &status);
        cr_assert_eq(rc, ST_OK, "batch at %zu: %s", at, res[0].errmsg);
        cr_expect_eq(status, n == 1 ? 200 : 207, "batch of %zu: HTTP %ld", n, status);
        for (size_t i = 0; i < n; i++) {
            json_t *p = json_array_get(plan, at + i), *j = sc_journey(&sim, "laposte", numbers[i]);
            const char *sc = sc_str(p, "scenario");

            cr_assert_not_null(j, "%s: the simulator does not know a planned number", numbers[i]);
            cr_expect_str_eq(sc_str(j, "scenario"), sc);
            cr_expect(json_equal(json_object_get(j, "visible_steps"),
                                 json_object_get(j, "total_steps")), "%s: incomplete", numbers[i]);
            compare(numbers[i], j, &res[i], french);
            if (strcmp(sc, "customs_duties_held") == 0)
                cr_expect(sc_has(&res[i], ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE), "%s",
                          numbers[i]);
            else if (strcmp(sc, "customs_documents_held") == 0)
                cr_expect(sc_has(&res[i], ST_STATUS_HELD, ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED), "%s",
                          numbers[i]);
            else if (strcmp(sc, "unmapped_code") == 0)
                cr_expect(sc_has(&res[i], ST_STATUS_PENDING, ST_SUB_UNMAPPED), "%s", numbers[i]);
            else if (strcmp(sc, "returned_to_sender") == 0)
                cr_expect(sc_has(&res[i], ST_STATUS_RETURNED, ST_SUB_RETURNED_TO_SENDER), "%s",
                          numbers[i]);
            json_decref(j);
            track_result_reset(&res[i]);
        }
    }
    json_decref(plan);
}

TestSuite(laposte_sim, .init = start, .fini = stop, .timeout = 120);

Test(laposte_sim, batches_of_ten_in_french)
{
    track_plan("27", "1", 10, NULL, true);
}

Test(laposte_sim, one_by_one_in_english)
{
    track_plan("18", "7", 1, "en", false);
}

Test(laposte_sim, key_is_checked)
{
    json_t *plan = sc_plan("laposte", "2", "3", SC_PLAN_ANY);
    const char *numbers[2] = { sc_str(json_array_get(plan, 0), "tracking_number"),
                               sc_str(json_array_get(plan, 1), "tracking_number") };
    char url[256];
    struct track_result res[2];
    struct sc_reply r;
    long status = 0;

    cr_expect_eq(track(numbers, 2, "not-the-key", NULL, res, &status), ST_CONFIG);
    cr_expect_eq(status, 401);
    cr_expect_eq(res[0].outcome, TRACK_ERROR);
    cr_expect_eq(res[1].err, ST_CONFIG);
    cr_expect(strstr(res[0].errmsg, "La Poste rejected the API key (HTTP 401") != NULL, "%s",
              res[0].errmsg);
    track_result_reset(&res[0]);
    track_result_reset(&res[1]);
    /* no key at all */
    snprintf(url, sizeof(url), "/suivi/v2/idships/%s", numbers[0]);
    sc_get(&sim, url, NULL, &r);
    cr_expect_eq(r.status, 401, "no key: HTTP %ld", r.status);
    cr_expect(strstr(r.body, "UNAUTHORIZED") != NULL, "%s", r.body);
    free(r.body);
    cr_expect_eq(track(numbers, 1, SIM_KEY, NULL, res, &status), ST_OK);
    cr_expect_eq(status, 200);
    track_result_reset(&res[0]);
    json_decref(plan);
}

/* A Colissimo-shaped number the simulator does not know. */
static void unknown_number(char out[16])
{
    out[0] = '\0';
    for (unsigned long s = 10000000000ul; s < 10000000400ul && out[0] == '\0'; s++) {
        char cand[16];
        json_t *j;

        snprintf(cand, sizeof(cand), "6A%011lu", s);
        if ((j = sc_journey(&sim, "laposte", cand)) == NULL)
            snprintf(out, 16, "%s", cand);
        json_decref(j);
    }
    cr_assert(out[0] != '\0', "every number is known");
}

Test(laposte_sim, unknown_and_bad_numbers)
{
    json_t *plan = sc_plan("laposte", "1", "5", SC_PLAN_ANY);
    char unknown[16];
    const char *one[1], *mixed[4];
    struct track_result res[4];
    long status = 0;

    unknown_number(unknown);
    /* one unknown id: 404 with returnCode 104 */
    one[0] = unknown;
    cr_expect_eq(track(one, 1, SIM_KEY, NULL, res, &status), ST_OK);
    cr_expect_eq(status, 404);
    cr_expect_eq(res[0].outcome, TRACK_NOT_FOUND);
    track_result_reset(&res[0]);
    /* one id that is no La Poste number: 400, permanent */
    one[0] = "ABC123";
    cr_expect_eq(track(one, 1, SIM_KEY, NULL, res, &status), ST_PERMANENT);
    cr_expect_eq(status, 400);
    cr_expect_eq(res[0].outcome, TRACK_ERROR);
    track_result_reset(&res[0]);
    /* a mixed batch: 207, each id on its own */
    mixed[0] = "ABC123";
    mixed[1] = sc_str(json_array_get(plan, 0), "tracking_number");
    mixed[2] = unknown;
    mixed[3] = "LA123456784FR"; /* bad S10 check digit (5 is right) */
    cr_expect_eq(track(mixed, 4, SIM_KEY, NULL, res, &status), ST_OK);
    cr_expect_eq(status, 207);
    cr_expect_eq(res[0].outcome, TRACK_ERROR);
    cr_expect_eq(res[0].err, ST_PERMANENT);
    cr_expect_eq(res[1].outcome, TRACK_FOUND, "%s", res[1].errmsg);
    cr_expect_gt(res[1].n_events, 0);
    cr_expect_eq(res[2].outcome, TRACK_NOT_FOUND);
    cr_expect_eq(res[3].outcome, TRACK_ERROR);
    for (size_t i = 0; i < 4; i++)
        track_result_reset(&res[i]);
    json_decref(plan);
}

Test(laposte_sim, request_limits)
{
    struct sc_reply r;
    char path[512] = "/suivi/v2/idships/";
    static const char *const hdr[] = { "X-Okapi-Key: " SIM_KEY, NULL };
    char url[1024];

    for (int i = 0; i < 11; i++)
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s6A%011d", i ? "," : "",
                 i + 1);
    snprintf(url, sizeof(url), "%s%s", sim.url, path);
    sc_http("GET", url, hdr, NULL, 0, &r);
    cr_expect_eq(r.status, 400, "11 ids: HTTP %ld", r.status);
    cr_expect(strstr(r.body, "\"returnCode\":400") != NULL, "%s", r.body);
    free(r.body);
    snprintf(url, sizeof(url), "%s/suivi/v2/idships/6A00000000001?lang=xx_XX", sim.url);
    sc_http("GET", url, hdr, NULL, 0, &r);
    cr_expect_eq(r.status, 400, "bad lang: HTTP %ld", r.status);
    free(r.body);
    snprintf(url, sizeof(url), "%s/suivi/v2/idships/6A00000000001,,6A00000000002", sim.url);
    sc_http("GET", url, hdr, NULL, 0, &r);
    cr_expect_eq(r.status, 400, "empty id: HTTP %ld", r.status);
    free(r.body);
}

Test(laposte_sim, plan_numbers_are_laposte_numbers)
{
    json_t *plan = sc_plan("laposte", "18", "9", SC_PLAN_ANY), *p;
    size_t i;
    bool colissimo = false, s10 = false;

    json_array_foreach(plan, i, p) {
        const char *n = sc_str(p, "tracking_number");

        cr_expect_eq(strlen(n), 13, "%s", n);
        if (n[0] >= '0' && n[0] <= '9')
            colissimo = true;
        else if (strncmp(n, "LA", 2) == 0 && strcmp(n + 11, "FR") == 0)
            s10 = true;
        else
            cr_expect_fail("%s is neither Colissimo nor La Poste S10", n);
    }
    cr_expect(colissimo && s10, "plan should give both formats");
    json_decref(plan);
}
