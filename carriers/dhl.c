/*
 * dhl.c - driver for DHL Shipment Tracking - Unified (api-eu.dhl.com/track).
 *
 * One tracking number per call: GET {base}/track/shipments?trackingNumber=N
 * with the key in the DHL-API-Key header. The answer is shipments[] whose
 * events[] carry a coarse statusCode (pre-transit, transit, delivered,
 * failure, unknown) plus free text; this file turns both into the normalized
 * vocabulary of status.h.
 *
 * Wording:
 *   folded text  status + description + remark of one event, lower-cased
 *                (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic), that the
 *                keyword classes of wording.c are matched against.
 *   keyword      a folded word or phrase; a leading '^' means it must start a
 *                word, a trailing '$' that it must end one ("^cleared$" does
 *                not match "uncleared", "^lost$" not "lostock").
 *
 * Customs never has a code of its own at DHL: it is recognised from wording
 * in several languages (see CARRIERS.md), then classified by the first rule
 * that matches (prohibited, released, documents, duties, inspection, delay,
 * other hold, else plain processing). Holds get status "held". Customs is
 * not looked for in pre-transit and delivered events, whose code already
 * says where the parcel is, and a return outranks it in the others.
 *
 * Timestamps come with Z, with an offset, or as bare local time; bare ones
 * take the zone of the event's country when it has exactly one, otherwise the
 * offset is recorded as unknown (carrier_parse_time), never guessed.
 *
 * HTTP statuses: 200 is parsed; 404 with a problem+json body means DHL does
 * not know the number (TRACK_NOT_FOUND, ST_OK), a 404 without one points at a
 * wrong base URL (ST_PERMANENT); 401/403 are ST_CONFIG; 429 and 5xx ST_RETRY;
 * anything else, and any malformed body, ST_PERMANENT with the field named.
 *
 * An event whose statusCode is "unknown" (or missing, or a value DHL has not
 * documented) and whose text names no customs step is kept with substatus
 * "unmapped" and affects_status false; its status field is then the neutral
 * "pending" and means nothing.
 *
 * No network I/O here. Bodies above DHL_BODY_MAX are refused.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "carrier.h"
#include "cjson.h"
#include "geo.h"
#include "wording.h"

#define DHL_BODY_MAX   (4u * 1024u * 1024u) /* largest body we parse */
#define DHL_NUMBER_MAX 64                    /* longest tracking number accepted */
#define DHL_FOLD_MAX   2048                  /* folded text scanned for keywords */
#define DHL_DETAIL_MAX 160                   /* problem detail quoted in messages */

/* ------------------------------------------------------------------------ */
/* Normalization of one event. */

/* The statusCode values DHL documents. */
enum dhl_code { DHL_PRE_TRANSIT, DHL_TRANSIT, DHL_DELIVERED, DHL_FAILURE, DHL_UNKNOWN };

/* Map a statusCode string (NULL when absent) to enum dhl_code. */
static enum dhl_code dhl_code_of(const char *s)
{
    if (s == NULL)
        return DHL_UNKNOWN;
    if (strcmp(s, "pre-transit") == 0)
        return DHL_PRE_TRANSIT;
    if (strcmp(s, "transit") == 0)
        return DHL_TRANSIT;
    if (strcmp(s, "delivered") == 0)
        return DHL_DELIVERED;
    if (strcmp(s, "failure") == 0)
        return DHL_FAILURE;
    return DHL_UNKNOWN; /* "unknown" and values DHL may add later */
}

/* Set ev->status/substatus/affects_status/customs from DHL's statusCode and
 * the folded free text. */
static void normalize_event(enum dhl_code code, const char *text, struct track_event *ev)
{
    bool customs = wording_has(text, W_CUSTOMS);

    ev->affects_status = true;
    ev->customs = false;
    switch (code) {
    case DHL_PRE_TRANSIT:
        ev->status = ST_STATUS_INFO_RECEIVED;
        ev->substatus = ST_SUB_LABEL_CREATED;
        return;
    case DHL_DELIVERED:
        if (!wording_apply(text, WR_DELIVERED, ev)) {
            ev->status = ST_STATUS_DELIVERED;
            ev->substatus = ST_SUB_DELIVERED;
        }
        return;
    case DHL_TRANSIT:
    case DHL_FAILURE:
        if (wording_has(text, W_RETURN)) {
            ev->status = ST_STATUS_RETURNING;
            ev->substatus = ST_SUB_RETURN_TO_SENDER;
            ev->customs = customs;
            return;
        }
        if (customs) {
            wording_classify_customs(text, ev);
            return;
        }
        if (code == DHL_TRANSIT) {
            if (!wording_apply(text, WR_TRANSIT, ev)) {
                ev->status = ST_STATUS_IN_TRANSIT;
                ev->substatus = ST_SUB_IN_TRANSIT;
            }
        } else if (!wording_apply(text, WR_FAILURE, ev)) {
            ev->status = ST_STATUS_EXCEPTION;
            ev->substatus = ST_SUB_NONE;
        }
        wording_refine_attempt(text, ev);
        return;
    case DHL_UNKNOWN:
        break;
    }
    if (customs) {
        wording_classify_customs(text, ev);
        return;
    }
    /* Stored and counted, never drives the shipment's status. */
    ev->status = ST_STATUS_PENDING;
    ev->substatus = ST_SUB_UNMAPPED;
    ev->affects_status = false;
}

/* ------------------------------------------------------------------------ */
/* Reading fields (typed JSON access with messages that say where: cjson.h). */

/* The parts of a DHL address{countryCode,postalCode,addressLocality} we keep. */
struct dhl_address {
    const char *locality;          /* addressLocality */
    const char *postal;            /* postalCode */
    char cc[3];                    /* countryCode when it is a valid ISO code, else "" */
};

/* Read place.address (place may be NULL); absent parts stay empty, and a
 * country code that is no ISO 3166 country is dropped rather than guessed. */
static enum st_err read_address(json_t *place, const char *where, struct dhl_address *a,
                                char *err, size_t errlen)
{
    char at[128];
    json_t *addr;
    const char *cc;
    enum st_err rc;

    memset(a, 0, sizeof(*a));
    if (place == NULL)
        return ST_OK;
    if ((rc = cj_opt_object(place, "address", "dhl", where,
                            &addr, err, errlen)) != ST_OK || addr == NULL)
        return rc;
    snprintf(at, sizeof(at), "%s.address", where);
    if ((rc = cj_opt_string(addr, "addressLocality", "dhl", at,
                            &a->locality, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(addr, "postalCode", "dhl", at, &a->postal, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(addr, "countryCode", "dhl", at, &cc, err, errlen)) != ST_OK)
        return rc;
    if (cc != NULL && strlen(cc) == 2) {
        a->cc[0] = (char)(cc[0] >= 'a' && cc[0] <= 'z' ? cc[0] - 32 : cc[0]);
        a->cc[1] = (char)(cc[1] >= 'a' && cc[1] <= 'z' ? cc[1] - 32 : cc[1]);
        a->cc[2] = '\0';
        if (!geo_country_valid(a->cc))
            a->cc[0] = '\0'; /* not a country we know: keep none rather than guess */
    }
    return ST_OK;
}

/* Turn events[i] into a track_event appended to res. */
static enum st_err parse_event(json_t *jev, size_t i, struct track_result *res, char *err,
                               size_t errlen)
{
    char where[80], q[96], fold[DHL_FOLD_MAX];
    const char *ts, *code, *status, *detailed, *desc, *remark;
    json_t *loc;
    struct dhl_address addr;
    struct track_event *ev;
    size_t o = 0;
    enum st_err rc;

    snprintf(where, sizeof(where), "events[%zu]", i);
    if (!json_is_object(jev))
        return st_fail(err, errlen, ST_PERMANENT, "dhl: %s: expected an object", where);
    if ((rc = cj_opt_string(jev, "timestamp", "dhl", where, &ts, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "statusCode", "dhl", where, &code, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "status", "dhl", where, &status, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "statusDetailed", "dhl", where,
                            &detailed, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "description", "dhl", where, &desc, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "remark", "dhl", where, &remark, err, errlen)) != ST_OK ||
        (rc = cj_opt_object(jev, "location", "dhl", where, &loc, err, errlen)) != ST_OK)
        return rc;
    if (ts == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "dhl: %s.timestamp: missing", where);
    snprintf(where, sizeof(where), "events[%zu].location", i);
    if ((rc = read_address(loc, where, &addr, err, errlen)) != ST_OK)
        return rc;

    if (res->n_events >= CARRIER_MAX_EVENTS)
        return st_fail(err, errlen, ST_PERMANENT, "dhl: more than %d events",
                       CARRIER_MAX_EVENTS);
    if ((ev = track_result_add(res)) == NULL)
        return st_fail(err, errlen, ST_RETRY, "dhl: out of memory for events[%zu]", i);
    if (!carrier_parse_time(ts, addr.cc[0] ? addr.cc : NULL, NULL, ev))
        return st_fail(err, errlen, ST_PERMANENT, "dhl: events[%zu].timestamp: not an ISO 8601 "
                       "time: \"%s\"", i, carrier_quote(q, sizeof(q), ts));

    /* Raw words: description (or status), plus remark when it adds something. */
    if (desc == NULL || desc[0] == '\0')
        desc = status;
    if (desc != NULL && remark != NULL && remark[0] != '\0' && strcmp(remark, desc) != 0) {
        char joined[EV_DESC_MAX * 2];

        snprintf(joined, sizeof(joined), "%s \xE2\x80\x94 %s", desc, remark);
        carrier_copy_text(ev->description, sizeof(ev->description), joined);
    } else
        carrier_copy_text(ev->description, sizeof(ev->description), desc ? desc : remark);
    carrier_copy_text(ev->code, sizeof(ev->code),
                      detailed != NULL && detailed[0] != '\0' ? detailed : code);
    carrier_copy_text(ev->city, sizeof(ev->city), addr.locality);
    carrier_copy_text(ev->postal_code, sizeof(ev->postal_code), addr.postal);
    memcpy(ev->country, addr.cc, sizeof(ev->country));

    fold[0] = '\0';
    if (status != NULL)
        wording_fold_append(fold, sizeof(fold), &o, status);
    wording_fold_append(fold, sizeof(fold), &o, " | ");
    if (desc != NULL)
        wording_fold_append(fold, sizeof(fold), &o, desc);
    wording_fold_append(fold, sizeof(fold), &o, " | ");
    if (remark != NULL)
        wording_fold_append(fold, sizeof(fold), &o, remark);
    normalize_event(dhl_code_of(code), fold, ev);
    /* On a customs event, DHL's remark is what the recipient is told to do. */
    if (ev->customs && remark != NULL && (desc == NULL || strcmp(remark, desc) != 0))
        carrier_copy_text(ev->instructions, sizeof(ev->instructions), remark);
    return ST_OK;
}

/* Fill res from the chosen shipment object. */
static enum st_err parse_shipment(json_t *shp, size_t idx, struct track_result *res, char *err,
                                  size_t errlen)
{
    char where[80], q[64];
    const char *edd;
    json_t *events, *frame;
    enum st_err rc;

    snprintf(where, sizeof(where), "shipments[%zu]", idx);
    res->outcome = TRACK_FOUND;
    res->err = ST_OK;
    if ((rc = cj_opt_string(shp, "estimatedTimeOfDelivery", "dhl", where,
                            &edd, err, errlen)) != ST_OK)
        return rc;
    if (edd == NULL) { /* fall back to the end of the announced window */
        if ((rc = cj_opt_object(shp, "estimatedDeliveryTimeFrame", "dhl", where, &frame, err,
                                errlen)) != ST_OK)
            return rc;
        if (frame != NULL) {
            snprintf(where, sizeof(where), "shipments[%zu].estimatedDeliveryTimeFrame", idx);
            if ((rc = cj_opt_string(frame, "estimatedThrough", "dhl", where,
                                    &edd, err, errlen)) != ST_OK)
                return rc;
        }
    }
    if (edd != NULL && !carrier_date_part(edd, CARRIER_DATE_EPOCH, res->estimated_delivery))
        return st_fail(err, errlen, ST_PERMANENT,
                       "dhl: shipments[%zu]: estimated delivery is not a date: \"%s\"", idx,
                       carrier_quote(q, sizeof(q), edd));

    events = json_object_get(shp, "events");
    if (events == NULL || json_is_null(events))
        return ST_OK; /* known, nothing scanned yet */
    if (!json_is_array(events))
        return st_fail(err, errlen, ST_PERMANENT, "dhl: shipments[%zu].events: expected an array",
                       idx);
    for (size_t i = 0; i < json_array_size(events); i++)
        if ((rc = parse_event(json_array_get(events, i), i, res, err, errlen)) != ST_OK)
            return rc;
    track_result_sort_dedupe(res);
    return ST_OK;
}

/* Parse a 200 body: find the shipment for `number` and fill res. */
static enum st_err parse_found(json_t *root, const char *number, struct track_result *res,
                               char *err, size_t errlen)
{
    json_t *shipments = json_object_get(root, "shipments");
    size_t pick = 0;

    if (shipments == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "dhl: shipments: missing");
    if (!json_is_array(shipments))
        return st_fail(err, errlen, ST_PERMANENT, "dhl: shipments: expected an array");
    if (json_array_size(shipments) == 0) {
        res->outcome = TRACK_NOT_FOUND;
        return ST_OK;
    }
    for (size_t i = 0; i < json_array_size(shipments); i++) {
        json_t *s = json_array_get(shipments, i), *id;

        if (!json_is_object(s))
            return st_fail(err, errlen, ST_PERMANENT, "dhl: shipments[%zu]: expected an object",
                           i);
        id = json_object_get(s, "id");
        if (id != NULL && !json_is_string(id))
            return st_fail(err, errlen, ST_PERMANENT, "dhl: shipments[%zu].id: expected a string",
                           i);
        if (id != NULL && strcmp(json_string_value(id), number) == 0) {
            pick = i;
            break;
        }
    }
    return parse_shipment(json_array_get(shipments, pick), pick, res, err, errlen);
}

/* Pull "detail" (else "title") out of a problem+json body into out[cap];
 * "" when the body is not one. Returns true when the body is a JSON object. */
static bool problem_detail(const char *body, size_t len, char *out, size_t cap)
{
    json_error_t jerr;
    json_t *root, *d;
    bool is_obj;

    out[0] = '\0';
    if (body == NULL || len == 0)
        return false;
    root = json_loadb(body, len, 0, &jerr);
    if (root == NULL)
        return false;
    is_obj = json_is_object(root);
    if (is_obj) {
        d = json_object_get(root, "detail");
        if (!json_is_string(d))
            d = json_object_get(root, "title");
        if (json_is_string(d))
            carrier_copy_text(out, cap, json_string_value(d));
    }
    json_decref(root);
    return is_obj;
}

/* Handle every non-200 answer; returns the kind to report. */
static enum st_err parse_status(long http_status, const char *body, size_t len,
                                struct track_result *results, size_t n, char *err, size_t errlen)
{
    char detail[DHL_DETAIL_MAX];
    bool problem = problem_detail(body, len, detail, sizeof(detail));
    const char *sep = detail[0] ? ": " : "";
    enum st_err kind;

    if (http_status == 404 && problem) {
        for (size_t i = 0; i < n; i++) {
            track_result_reset(&results[i]);
            results[i].outcome = TRACK_NOT_FOUND;
        }
        return ST_OK;
    }
    if (http_status == 401 || http_status == 403)
        kind = st_fail(err, errlen, ST_CONFIG, "dhl: DHL rejected the API key (HTTP %ld%s%s)",
                       http_status, sep, detail);
    else if (http_status == 429)
        kind = st_fail(err, errlen, ST_RETRY, "dhl: rate limited (HTTP 429%s%s)", sep, detail);
    else if (http_status >= 500 && http_status <= 599)
        kind = st_fail(err, errlen, ST_RETRY, "dhl: server error (HTTP %ld%s%s)", http_status,
                       sep, detail);
    else if (http_status == 404)
        kind = st_fail(err, errlen, ST_PERMANENT,
                       "dhl: HTTP 404 without a problem+json body (wrong base URL?)");
    else
        kind = st_fail(err, errlen, ST_PERMANENT, "dhl: unexpected HTTP status %ld%s%s",
                       http_status, sep, detail);
    carrier_fail_all(results, n, kind, err);
    return kind;
}

/* carrier_ops.parse_response for DHL. results[0] must be zeroed or reset. */
static enum st_err dhl_parse_response(const struct carrier_ctx *ctx, long http_status,
                                      const char *body, size_t len, const char *const *numbers,
                                      size_t n, struct track_result *results, char *err,
                                      size_t errlen)
{
    (void)ctx;
    return cj_parse_single("dhl", DHL_BODY_MAX, http_status, body, len, numbers, n, results,
                           err, errlen, parse_status, parse_found);
}

/* ------------------------------------------------------------------------ */
/* Request. */

/* True when a tracking number only holds [A-Za-z0-9-] and is not too long. */
static bool number_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > DHL_NUMBER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

/* carrier_ops.build_request for DHL: GET {base}/track/shipments?trackingNumber=N
 * [&language=L] with DHL-API-Key and Accept headers. */
static enum st_err dhl_build_request(const struct carrier_ctx *ctx, const char *const *numbers,
                                     size_t n, struct carrier_request *req, char *err,
                                     size_t errlen)
{
    const char *base = ctx->base_url && ctx->base_url[0] ? ctx->base_url
                                                         : "https://api-eu.dhl.com";
    size_t blen = strlen(base), o = 0;
    char q[80];

    if (ctx->api_key == NULL || ctx->api_key[0] == '\0')
        return st_fail(err, errlen, ST_CONFIG, "dhl: no API key configured (DHL-API-Key)");
    for (const char *k = ctx->api_key; *k != '\0'; k++)
        if ((unsigned char)*k < 0x20 || *k == 0x7f)
            return st_fail(err, errlen, ST_CONFIG, "dhl: API key holds control characters");
    if (n != 1)
        return st_fail(err, errlen, ST_PERMANENT, "dhl: one number per request, got %zu", n);
    if (!number_ok(numbers[0]))
        return st_fail(err, errlen, ST_PERMANENT,
                       "dhl: tracking number \"%s\": only letters, digits and '-' allowed, "
                       "at most %d", carrier_quote(q, sizeof(q), numbers[0]), DHL_NUMBER_MAX);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    if (blen + 1 >= sizeof(req->url))
        return st_fail(err, errlen, ST_CONFIG, "dhl: base URL too long");

    memset(req, 0, sizeof(*req));
    req->method = CARRIER_GET;
    memcpy(req->url, base, blen);
    o = blen;
    req->url[o] = '\0';
    if (!carrier_url_append(req->url, sizeof(req->url), &o, "/track/shipments?trackingNumber=") ||
        !carrier_url_encode(req->url, sizeof(req->url), &o, numbers[0]) ||
        (ctx->language != NULL && ctx->language[0] != '\0' &&
         (!carrier_url_append(req->url, sizeof(req->url), &o, "&language=") ||
          !carrier_url_encode(req->url, sizeof(req->url), &o, ctx->language))))
        return st_fail(err, errlen, ST_PERMANENT, "dhl: request URL longer than %d bytes",
                       CARRIER_URL_MAX - 1);
    if (carrier_request_header(req, "DHL-API-Key", ctx->api_key, err, errlen) != ST_OK)
        return ST_CONFIG;
    return carrier_request_header(req, "Accept", "application/json", err, errlen);
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
