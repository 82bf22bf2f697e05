/*
 * test_dhl.c - the DHL Unified driver (carriers/dhl.c) on data alone.
 *
 * The fixtures (tests/fixtures/dhl/) run in test_drivers.c with every other
 * carrier's; this file covers what fixtures cannot: the definition and
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
