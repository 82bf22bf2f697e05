/*
 * dhl.c - driver for DHL Shipment Tracking - Unified (skeleton: the request
 * builder is in place, the response parser follows).
 */
#include <stdio.h>
#include <string.h>

#include "carrier.h"

/* Build GET {base}/track/shipments?trackingNumber=N. */
static enum st_err dhl_build_request(const struct carrier_ctx *ctx, const char *const *numbers,
                                     size_t n, struct carrier_request *req, char *err,
                                     size_t errlen)
{
    const char *base = ctx->base_url ? ctx->base_url : "https://api-eu.dhl.com";
    int w;

    if (ctx->api_key == NULL || ctx->api_key[0] == '\0')
        return st_fail(err, errlen, ST_CONFIG, "dhl: no API key configured");
    if (n != 1)
        return st_fail(err, errlen, ST_PERMANENT, "dhl: one number per request, got %zu", n);
    req->method = CARRIER_GET;
    w = snprintf(req->url, sizeof(req->url), "%s/track/shipments?trackingNumber=%s", base,
                 numbers[0]);
    if (w < 0 || (size_t)w >= sizeof(req->url))
        return st_fail(err, errlen, ST_PERMANENT, "dhl: URL too long");
    if (carrier_request_header(req, "DHL-API-Key", ctx->api_key, err, errlen) != ST_OK)
        return ST_CONFIG;
    return carrier_request_header(req, "Accept", "application/json", err, errlen);
}

/* Not written yet: every response is refused. */
static enum st_err dhl_parse_response(const struct carrier_ctx *ctx, long http_status,
                                      const char *body, size_t len, const char *const *numbers,
                                      size_t n, struct track_result *results, char *err,
                                      size_t errlen)
{
    (void)ctx; (void)body; (void)len; (void)numbers; (void)n; (void)results;
    return st_fail(err, errlen, ST_PERMANENT, "dhl: parser not written yet (HTTP %ld)",
                   http_status);
}

static const struct carrier_ops dhl_ops = {
    .build_request = dhl_build_request,
    .parse_response = dhl_parse_response,
};

const struct carrier_def carrier_dhl = {
    .name = "dhl",
    .display_name = "DHL (Unified)",
    .ops = &dhl_ops,
    .batch_max = 1,
    .rate_per_sec = 1.0,
    .rate_per_day = 250,
    .auth = CARRIER_AUTH_API_KEY,
    .default_base_url = "https://api-eu.dhl.com",
};
