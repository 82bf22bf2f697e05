/*
 * fedex.c - driver for the FedEx Track API (apis.fedex.com, track/v1).
 *
 * Facts relied on (shared/reference/carriers/CARRIERS.md and FedEx's Track
 * OpenAPI file):
 *   - POST {base}/track/v1/trackingnumbers with a JSON body
 *     {"includeDetailedScans":true,"trackingInfo":[{"trackingNumberInfo":
 *     {"trackingNumber":N}}, ...]}, at most 30 numbers, a bearer token, and
 *     content-type application/json; x-locale (e.g. en_US) is optional.
 *   - OAuth2 client credentials: POST {base}/oauth/token with the form
 *     grant_type=client_credentials&client_id=..&client_secret=..; the answer
 *     is {access_token, token_type, expires_in (3600, a number), scope}.
 *   - 200 answers: output.completeTrackResults[] {trackingNumber,
 *     trackResults[]}, in an order FedEx does not promise, so results are
 *     matched to the numbers asked for by tracking number. A number missing
 *     from the answer is TRACK_ERROR/ST_RETRY. A trackResult with
 *     error.code "TRACKING.TRACKINGNUMBER.NOTFOUND" means FedEx does not know
 *     the number (TRACK_NOT_FOUND); other per-number error codes are
 *     TRACK_ERROR/ST_PERMANENT. Several trackResults for one number are
 *     distinct shipments that reused it: the one with the newest scan wins.
 *   - trackResults[]: dateAndTimes[]{type,dateTime} (ESTIMATED_DELIVERY gives
 *     the estimated delivery date, else estimatedDeliveryTimeWindow.window.ends),
 *     scanEvents[]{date (ISO 8601 with offset), eventType, eventDescription,
 *     derivedStatusCode, exceptionCode, exceptionDescription, locationType,
 *     scanLocation{city,stateOrProvinceCode,postalCode,countryCode},
 *     delayDetail{type}}.
 *   - Errors: {transactionId, errors[{code,message}]}; 401/403 are
 *     ST_CONFIG, 429 and 5xx ST_RETRY, anything else ST_PERMANENT.
 *
 * Event codes (eventType, else derivedStatusCode when eventType is one we do
 * not know): OC label created, PU picked up, DP departed, AR arrived, IT in
 * transit, OD on vehicle for delivery, DL delivered, DE delivery exception,
 * HL held at a FedEx location for pickup, and (unconfirmed) CP clearance in
 * progress, CD clearance delay, CC cleared customs, RS return to shipper.
 * Because the last four are unconfirmed, customs is also recognised from
 * locationType CUSTOMS_BROKER, delayDetail.type CLEARANCE and customs wording
 * (wording.c) on any transit-like or unknown code; label, pickup, delivery,
 * pickup-point and return codes keep their meaning. Customs with nothing
 * more specific said is a hold (customs_delay) on CD, on a CLEARANCE delay
 * and on a delivery exception, else processing. Free text refines the
 * transit codes (export = left the origin country, destination country,
 * recipient not available...) through wording.c only.
 *
 * A code we do not know and whose event carries no customs signal is kept
 * with substatus "unmapped", affects_status false and the neutral status
 * "pending" (meaningless), raw code and words intact.
 *
 * Timestamps normally carry an offset (OFFSET_CARRIER); a bare one takes the
 * zone of scanLocation's country and state (OFFSET_DERIVED) or stays local
 * with OFFSET_UNKNOWN (carrier_parse_time), never guessed.
 *
 * A malformed body or envelope fails every number (ST_PERMANENT); a
 * malformed entry of one number fails that number only (TRACK_ERROR,
 * ST_PERMANENT) and the others are still reported. Messages name the JSON
 * path. Bodies above FEDEX_BODY_MAX are refused. No network I/O here.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "carrier.h"
#include "cjson.h"
#include "geo.h"
#include "wording.h"

#define FEDEX_BODY_MAX   (4u * 1024u * 1024u) /* largest body we parse */
#define FEDEX_BATCH_MAX  30                   /* numbers per request (FedEx's limit) */
#define FEDEX_NUMBER_MAX 40                   /* longest tracking number accepted */
#define FEDEX_FOLD_MAX   2048                 /* folded text scanned for keywords */
#define FEDEX_DETAIL_MAX 160                  /* FedEx error text quoted in messages */
/* JSON paths in messages, sized per depth for the longest path plus a %zu. */
#define PATH_ENTRY  64   /* output.completeTrackResults[k] */
#define PATH_RESULT 128  /* ... .trackResults[i] */
#define PATH_EVENT  176  /* ... .scanEvents[i], .dateAndTimes[i] */
#define PATH_LEAF   192  /* ... .scanLocation, .delayDetail */
#define FEDEX_NOT_FOUND  "TRACKING.TRACKINGNUMBER.NOTFOUND"

/* ------------------------------------------------------------------------ */
/* Normalization of one scan event. */

/* The event codes we know. */
enum fx_code {
    FX_UNKNOWN = 0,
    FX_OC, FX_PU, FX_DP, FX_AR, FX_IT, FX_OD, FX_DL, FX_DE, FX_HL,
    FX_CP, FX_CD, FX_CC, FX_RS
};

static const struct {
    const char *name;
    enum fx_code code;
} fx_codes[] = {
    { "OC", FX_OC }, { "PU", FX_PU }, { "DP", FX_DP }, { "AR", FX_AR }, { "IT", FX_IT },
    { "OD", FX_OD }, { "DL", FX_DL }, { "DE", FX_DE }, { "HL", FX_HL }, { "CP", FX_CP },
    { "CD", FX_CD }, { "CC", FX_CC }, { "RS", FX_RS },
};

/* Map a code string (NULL when absent) to enum fx_code. */
static enum fx_code fx_code_of(const char *s)
{
    for (size_t i = 0; s != NULL && i < sizeof(fx_codes) / sizeof(fx_codes[0]); i++)
        if (strcmp(s, fx_codes[i].name) == 0)
            return fx_codes[i].code;
    return FX_UNKNOWN;
}

/* What one scan event says besides its code. */
struct fx_signals {
    const char *text;            /* folded eventDescription | exceptionDescription */
    bool customs_place;          /* locationType CUSTOMS_BROKER */
    bool port_of_entry;          /* locationType PORT_OF_ENTRY */
    bool clearance_delay;        /* delayDetail.type CLEARANCE */
};

/* Customs with nothing more specific said: a delay is a hold, else processing. */
static void customs_default(const struct fx_signals *sig, bool delay, struct track_event *ev)
{
    ev->customs = true;
    if (wording_apply(sig->text, WR_CUSTOMS, ev))
        return;
    ev->status = delay ? ST_STATUS_HELD : ST_STATUS_IN_TRANSIT;
    ev->substatus = delay ? ST_SUB_CUSTOMS_DELAY : ST_SUB_CUSTOMS_PROCESSING;
}

/* Set ev->status/substatus/affects_status/customs from the code and signals. */
static void normalize_event(enum fx_code code, const struct fx_signals *sig,
                            struct track_event *ev)
{
    bool customs = sig->customs_place || sig->clearance_delay || wording_has(sig->text, W_CUSTOMS);

    ev->affects_status = true;
    ev->customs = false;
    switch (code) {
    case FX_OC:
        ev->status = ST_STATUS_INFO_RECEIVED;
        ev->substatus = ST_SUB_LABEL_CREATED;
        return;
    case FX_PU:
        ev->status = ST_STATUS_IN_TRANSIT;
        ev->substatus = ST_SUB_PICKED_UP;
        return;
    case FX_OD:
        ev->status = ST_STATUS_OUT_FOR_DELIVERY;
        ev->substatus = ST_SUB_OUT_FOR_DELIVERY;
        return;
    case FX_HL:
        ev->status = ST_STATUS_AVAILABLE_FOR_PICKUP;
        ev->substatus = ST_SUB_AT_PICKUP_POINT;
        return;
    case FX_RS:
        ev->status = ST_STATUS_RETURNING;
        ev->substatus = ST_SUB_RETURN_TO_SENDER;
        return;
    case FX_DL:
        if (!wording_apply(sig->text, WR_DELIVERED, ev)) {
            ev->status = ST_STATUS_DELIVERED;
            ev->substatus = ST_SUB_DELIVERED;
        }
        return;
    case FX_CC:
        ev->customs = true;
        ev->status = ST_STATUS_IN_TRANSIT;
        ev->substatus = ST_SUB_CUSTOMS_RELEASED;
        return;
    case FX_CP:
        customs_default(sig, false, ev);
        return;
    case FX_CD:
        customs_default(sig, true, ev);
        return;
    case FX_DE:
        if (wording_has(sig->text, W_RETURN)) {
            ev->status = ST_STATUS_RETURNING;
            ev->substatus = ST_SUB_RETURN_TO_SENDER;
            return;
        }
        if (customs) { /* an exception at customs is a hold */
            customs_default(sig, true, ev);
            return;
        }
        /* A delivery exception is a failed attempt unless the words say worse. */
        if (!wording_apply(sig->text, WR_FAILURE, ev)) {
            ev->status = ST_STATUS_ATTEMPT_FAILED;
            ev->substatus = ST_SUB_NONE;
        }
        wording_refine_attempt(sig->text, ev);
        return;
    case FX_DP:
    case FX_AR:
    case FX_IT:
        if (customs) {
            customs_default(sig, sig->clearance_delay, ev);
            return;
        }
        if (code == FX_AR && sig->port_of_entry) {
            ev->status = ST_STATUS_IN_TRANSIT;
            ev->substatus = ST_SUB_ARRIVED_DESTINATION_COUNTRY;
            return;
        }
        if (wording_apply(sig->text, WR_TRANSIT, ev) &&
            (ev->substatus == ST_SUB_DEPARTED_ORIGIN_COUNTRY ||
             ev->substatus == ST_SUB_ARRIVED_DESTINATION_COUNTRY ||
             ev->substatus == ST_SUB_WEATHER_DELAY || ev->substatus == ST_SUB_CARRIER_DELAY))
            return; /* the words name the step more precisely than the code */
        ev->status = ST_STATUS_IN_TRANSIT;
        ev->substatus = code == FX_DP ? ST_SUB_DEPARTED_FACILITY
                      : code == FX_AR ? ST_SUB_ARRIVED_FACILITY
                                      : ST_SUB_IN_TRANSIT;
        return;
    case FX_UNKNOWN:
        break;
    }
    if (customs) {
        customs_default(sig, sig->clearance_delay, ev);
        return;
    }
    /* Stored and counted, never drives the shipment's status. */
    ev->status = ST_STATUS_PENDING;
    ev->substatus = ST_SUB_UNMAPPED;
    ev->affects_status = false;
}

/* ------------------------------------------------------------------------ */
/* One trackResult. */

/* The parts of scanLocation we keep. */
struct fx_place {
    const char *city, *region, *postal;
    char cc[3];                  /* valid ISO 3166 code, else "" */
};

/* Read scanLocation (loc may be NULL); a country code that is no ISO 3166
 * country is dropped rather than guessed. */
static enum st_err read_place(json_t *loc, const char *where, struct fx_place *p, char *err,
                              size_t errlen)
{
    const char *cc;
    enum st_err rc;

    memset(p, 0, sizeof(*p));
    if (loc == NULL)
        return ST_OK;
    if ((rc = cj_opt_string(loc, "city", "fedex", where, &p->city, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(loc, "stateOrProvinceCode", "fedex", where,
                            &p->region, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(loc, "postalCode", "fedex", where, &p->postal, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(loc, "countryCode", "fedex", where, &cc, err, errlen)) != ST_OK)
        return rc;
    if (cc != NULL && strlen(cc) == 2) {
        p->cc[0] = (char)toupper((unsigned char)cc[0]);
        p->cc[1] = (char)toupper((unsigned char)cc[1]);
        p->cc[2] = '\0';
        if (!geo_country_valid(p->cc))
            p->cc[0] = '\0';
    }
    if (p->region != NULL && p->region[0] == '\0')
        p->region = NULL;
    return ST_OK;
}

/* Turn scanEvents[i] (path `at`) into a track_event appended to res. */
static enum st_err parse_event(json_t *jev, const char *at, struct track_result *res, char *err,
                               size_t errlen)
{
    char where[PATH_LEAF], q[96], fold[FEDEX_FOLD_MAX];
    const char *date, *type, *desc, *derived, *xcode, *xdesc, *ltype, *dtype = NULL;
    json_t *loc, *delay;
    struct fx_place place;
    struct fx_signals sig;
    struct track_event *ev;
    enum fx_code code;
    size_t o = 0;
    enum st_err rc;

    if (!json_is_object(jev))
        return st_fail(err, errlen, ST_PERMANENT, "fedex: %s: expected an object", at);
    if ((rc = cj_opt_string(jev, "date", "fedex", at, &date, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "eventType", "fedex", at, &type, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "eventDescription", "fedex", at, &desc, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "derivedStatusCode", "fedex", at,
                            &derived, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "exceptionCode", "fedex", at, &xcode, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "exceptionDescription", "fedex", at,
                            &xdesc, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "locationType", "fedex", at, &ltype, err, errlen)) != ST_OK ||
        (rc = cj_opt_object(jev, "scanLocation", "fedex", at, &loc, err, errlen)) != ST_OK ||
        (rc = cj_opt_object(jev, "delayDetail", "fedex", at, &delay, err, errlen)) != ST_OK)
        return rc;
    if (date == NULL || date[0] == '\0')
        return st_fail(err, errlen, ST_PERMANENT, "fedex: %s.date: missing", at);
    snprintf(where, sizeof(where), "%s.scanLocation", at);
    if ((rc = read_place(loc, where, &place, err, errlen)) != ST_OK)
        return rc;
    if (delay != NULL) {
        snprintf(where, sizeof(where), "%s.delayDetail", at);
        if ((rc = cj_opt_string(delay, "type", "fedex", where, &dtype, err, errlen)) != ST_OK)
            return rc;
    }

    if (res->n_events >= CARRIER_MAX_EVENTS)
        return st_fail(err, errlen, ST_PERMANENT, "fedex: %s: more than %d events", at,
                       CARRIER_MAX_EVENTS);
    if ((ev = track_result_add(res)) == NULL)
        return st_fail(err, errlen, ST_RETRY, "fedex: %s: out of memory", at);
    if (!carrier_parse_time(date, place.cc[0] ? place.cc : NULL, place.region, ev))
        return st_fail(err, errlen, ST_PERMANENT,
                       "fedex: %s.date: expected an ISO 8601 time, got \"%s\"", at,
                       carrier_quote(q, sizeof(q), date));

    /* Raw words: the description, plus the exception's when it adds something. */
    if (desc == NULL || desc[0] == '\0') {
        desc = xdesc;
        xdesc = NULL;
    }
    if (desc != NULL && xdesc != NULL && xdesc[0] != '\0' && strcmp(xdesc, desc) != 0) {
        char joined[EV_DESC_MAX * 2];

        snprintf(joined, sizeof(joined), "%s \xE2\x80\x94 %s", desc, xdesc);
        carrier_copy_text(ev->description, sizeof(ev->description), joined);
    } else
        carrier_copy_text(ev->description, sizeof(ev->description), desc);
    code = fx_code_of(type);
    if (code == FX_UNKNOWN)
        code = fx_code_of(derived);
    carrier_copy_text(ev->code, sizeof(ev->code), type != NULL && type[0] ? type : derived);
    carrier_copy_text(ev->city, sizeof(ev->city), place.city);
    carrier_copy_text(ev->postal_code, sizeof(ev->postal_code), place.postal);
    memcpy(ev->country, place.cc, sizeof(ev->country));

    fold[0] = '\0';
    if (desc != NULL)
        wording_fold_append(fold, sizeof(fold), &o, desc);
    wording_fold_append(fold, sizeof(fold), &o, " | ");
    if (xdesc != NULL)
        wording_fold_append(fold, sizeof(fold), &o, xdesc);
    sig.text = fold;
    sig.customs_place = ltype != NULL && strcmp(ltype, "CUSTOMS_BROKER") == 0;
    sig.port_of_entry = ltype != NULL && strcmp(ltype, "PORT_OF_ENTRY") == 0;
    sig.clearance_delay = dtype != NULL && strcmp(dtype, "CLEARANCE") == 0;
    normalize_event(code, &sig, ev);
    ev->customs_broker = ev->customs && sig.customs_place;
    return ST_OK;
}

/* Fill res->estimated_delivery from dateAndTimes[] (ESTIMATED_DELIVERY), else
 * from estimatedDeliveryTimeWindow.window.ends. */
static enum st_err parse_edd(json_t *tr, const char *at, struct track_result *res, char *err,
                             size_t errlen)
{
    char where[PATH_EVENT], q[64];
    const char *edd = NULL, *type, *dt;
    json_t *dates, *win, *range;
    enum st_err rc;

    if ((rc = cj_opt_array(tr, "dateAndTimes", "fedex", at, &dates, err, errlen)) != ST_OK)
        return rc;
    for (size_t i = 0; dates != NULL && i < json_array_size(dates); i++) {
        json_t *d = json_array_get(dates, i);

        snprintf(where, sizeof(where), "%s.dateAndTimes[%zu]", at, i);
        if (!json_is_object(d))
            return st_fail(err, errlen, ST_PERMANENT, "fedex: %s: expected an object", where);
        if ((rc = cj_opt_string(d, "type", "fedex", where, &type, err, errlen)) != ST_OK ||
            (rc = cj_opt_string(d, "dateTime", "fedex", where, &dt, err, errlen)) != ST_OK)
            return rc;
        if (type != NULL && strcmp(type, "ESTIMATED_DELIVERY") == 0 && dt != NULL && dt[0]) {
            if (!carrier_date_part(dt, CARRIER_DATE_ANY, res->estimated_delivery))
                return st_fail(err, errlen, ST_PERMANENT,
                               "fedex: %s.dateTime: expected YYYY-MM-DD, got \"%s\"", where,
                               carrier_quote(q, sizeof(q), dt));
            return ST_OK;
        }
    }
    if ((rc = cj_opt_object(tr, "estimatedDeliveryTimeWindow", "fedex", at,
                            &win, err, errlen)) != ST_OK ||
        win == NULL)
        return rc;
    snprintf(where, sizeof(where), "%s.estimatedDeliveryTimeWindow", at);
    if ((rc = cj_opt_object(win, "window", "fedex", where,
                            &range, err, errlen)) != ST_OK || range == NULL)
        return rc;
    snprintf(where, sizeof(where), "%s.estimatedDeliveryTimeWindow.window", at);
    if ((rc = cj_opt_string(range, "ends", "fedex", where,
                            &edd, err, errlen)) != ST_OK || edd == NULL ||
        edd[0] == '\0')
        return rc;
    if (!carrier_date_part(edd, CARRIER_DATE_ANY, res->estimated_delivery))
        return st_fail(err, errlen, ST_PERMANENT,
                       "fedex: %s.ends: expected YYYY-MM-DD, got \"%s\"", where,
                       carrier_quote(q, sizeof(q), edd));
    return ST_OK;
}

/* Fill res from one trackResult without an error member. */
static enum st_err parse_found(json_t *tr, const char *at, struct track_result *res, char *err,
                               size_t errlen)
{
    char where[PATH_EVENT];
    json_t *events;
    enum st_err rc;

    res->outcome = TRACK_FOUND;
    res->err = ST_OK;
    if ((rc = parse_edd(tr, at, res, err, errlen)) != ST_OK ||
        (rc = cj_opt_array(tr, "scanEvents", "fedex", at, &events, err, errlen)) != ST_OK)
        return rc;
    for (size_t i = 0; events != NULL && i < json_array_size(events); i++) {
        snprintf(where, sizeof(where), "%s.scanEvents[%zu]", at, i);
        if ((rc = parse_event(json_array_get(events, i), where, res, err, errlen)) != ST_OK)
            return rc;
    }
    track_result_sort_dedupe(res);
    return ST_OK;
}

/* Newest event time of res, or the smallest time_t when it has none. */
static time_t newest(const struct track_result *res)
{
    time_t t = (time_t)INT64_MIN;

    for (size_t i = 0; i < res->n_events; i++)
        if (res->events[i].occurred_at > t)
            t = res->events[i].occurred_at;
    return t;
}

/* Fill res from completeTrackResults[k] (path `at`) for number. */
static enum st_err parse_complete(json_t *ctr, const char *at, const char *number,
                                  struct track_result *res, char *err, size_t errlen)
{
    char where[PATH_RESULT], q[FEDEX_DETAIL_MAX], qn[64];
    json_t *list;
    const char *ecode = NULL, *emsg = NULL;
    bool found = false, not_found = false;
    enum st_err rc;

    if ((rc = cj_opt_array(ctr, "trackResults", "fedex", at, &list, err, errlen)) != ST_OK)
        return rc;
    if (list == NULL || json_array_size(list) == 0)
        return st_fail(err, errlen, ST_PERMANENT, "fedex: %s.trackResults: missing or empty",
                       at);
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *tr = json_array_get(list, i), *e;
        struct track_result cand;

        snprintf(where, sizeof(where), "%s.trackResults[%zu]", at, i);
        if (!json_is_object(tr))
            return st_fail(err, errlen, ST_PERMANENT, "fedex: %s: expected an object", where);
        if ((rc = cj_opt_object(tr, "error", "fedex", where, &e, err, errlen)) != ST_OK)
            return rc;
        if (e != NULL) {
            char ew[PATH_RESULT + 8];

            snprintf(ew, sizeof(ew), "%s.error", where);
            if ((rc = cj_opt_string(e, "code", "fedex", ew, &ecode, err, errlen)) != ST_OK ||
                (rc = cj_opt_string(e, "message", "fedex", ew, &emsg, err, errlen)) != ST_OK)
                return rc;
            if (ecode != NULL && strcmp(ecode, FEDEX_NOT_FOUND) == 0)
                not_found = true;
            else if (!found && !not_found)
                track_result_fail(res, ST_PERMANENT, "fedex: %s: %s%s%s",
                                  carrier_quote(qn, sizeof(qn), number),
                                  ecode ? ecode : "error without a code", emsg ? ": " : "",
                                  emsg ? carrier_quote(q, sizeof(q), emsg) : "");
            continue;
        }
        memset(&cand, 0, sizeof(cand));
        if ((rc = parse_found(tr, where, &cand, err, errlen)) != ST_OK) {
            track_result_reset(&cand);
            return rc;
        }
        if (!found || newest(&cand) > newest(res)) { /* a reused number: newest wins */
            track_result_reset(res);
            *res = cand;
        } else
            track_result_reset(&cand);
        found = true;
    }
    if (!found && not_found) {
        track_result_reset(res);
        res->outcome = TRACK_NOT_FOUND;
    }
    return ST_OK;
}

/* The tracking number a completeTrackResults entry is about: its
 * trackingNumber, else its first trackResult's trackingNumberInfo. */
static enum st_err entry_number(json_t *ctr, const char *at, const char **out, char *err,
                                size_t errlen)
{
    char where[PATH_RESULT];
    json_t *list, *info;
    enum st_err rc;

    if ((rc = cj_opt_string(ctr, "trackingNumber", "fedex", at,
                            out, err, errlen)) != ST_OK || *out != NULL)
        return rc;
    list = json_object_get(ctr, "trackResults");
    if (json_is_array(list) && json_is_object(json_array_get(list, 0))) {
        snprintf(where, sizeof(where), "%s.trackResults[0]", at);
        if ((rc = cj_opt_object(json_array_get(list, 0), "trackingNumberInfo", "fedex", where,
                                &info, err, errlen)) != ST_OK)
            return rc;
        if (info != NULL) {
            snprintf(where, sizeof(where), "%s.trackResults[0].trackingNumberInfo", at);
            if ((rc = cj_opt_string(info, "trackingNumber", "fedex", where,
                                    out, err, errlen)) != ST_OK)
                return rc;
        }
    }
    if (*out == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "fedex: %s.trackingNumber: missing", at);
    return ST_OK;
}

/* Parse a 200 body into results[0..n). Envelope errors are returned (and
 * fail every number); per-number errors stay in that number's result. */
static enum st_err parse_ok(json_t *root, const char *const *numbers, size_t n,
                            struct track_result *results, char *err, size_t errlen)
{
    char where[PATH_ENTRY], q[64], perr[256];
    json_t *output, *list;
    bool seen[FEDEX_BATCH_MAX] = { false };
    enum st_err rc;

    if (!json_is_object(root))
        return st_fail(err, errlen, ST_PERMANENT, "fedex: body: expected a JSON object");
    if ((rc = cj_opt_object(root, "output", "fedex", "body", &output, err, errlen)) != ST_OK)
        return rc;
    if (output == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "fedex: output: missing");
    if ((rc = cj_opt_array(output, "completeTrackResults", "fedex", "output",
                           &list, err, errlen)) != ST_OK)
        return rc;
    if (list == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "fedex: output.completeTrackResults: missing");

    for (size_t k = 0; k < json_array_size(list); k++) {
        json_t *ctr = json_array_get(list, k);
        const char *num;
        size_t i;

        snprintf(where, sizeof(where), "output.completeTrackResults[%zu]", k);
        if (!json_is_object(ctr))
            return st_fail(err, errlen, ST_PERMANENT, "fedex: %s: expected an object", where);
        if ((rc = entry_number(ctr, where, &num, err, errlen)) != ST_OK)
            return rc;
        for (i = 0; i < n; i++)
            if (!seen[i] && strcasecmp(numbers[i], num) == 0)
                break;
        if (i == n)
            continue; /* not asked for (or answered twice): ignored */
        seen[i] = true;
        perr[0] = '\0';
        if ((rc = parse_complete(ctr, where, numbers[i], &results[i], perr, sizeof(perr))) !=
            ST_OK) {
            track_result_reset(&results[i]);
            track_result_fail(&results[i], rc, "%s", perr);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!seen[i]) {
            track_result_reset(&results[i]);
            track_result_fail(&results[i], ST_RETRY,
                              "fedex: %s: missing from output.completeTrackResults",
                              carrier_quote(q, sizeof(q), numbers[i]));
        }
    return ST_OK;
}

/* Pull "code: message" of errors[0] of a FedEx error body into out[cap]
 * ("" when the body is not one). */
static void error_detail(const char *body, size_t len, char *out, size_t cap)
{
    json_error_t jerr;
    json_t *root, *e0, *code, *msg;

    out[0] = '\0';
    if (body == NULL || len == 0 || (root = json_loadb(body, len, 0, &jerr)) == NULL)
        return;
    e0 = json_array_get(json_object_get(root, "errors"), 0);
    code = json_object_get(e0, "code");
    msg = json_object_get(e0, "message");
    if (json_is_string(code) || json_is_string(msg)) {
        char buf[FEDEX_DETAIL_MAX * 2];

        snprintf(buf, sizeof(buf), "%s%s%s", json_is_string(code) ? json_string_value(code) : "",
                 json_is_string(code) && json_is_string(msg) ? ": " : "",
                 json_is_string(msg) ? json_string_value(msg) : "");
        carrier_copy_text(out, cap, buf);
    }
    json_decref(root);
}

/* Kind and message of a non-200 answer (shared by tracking and token calls). */
static enum st_err status_error(long http_status, const char *body, size_t len, const char *what,
                                char *err, size_t errlen)
{
    char detail[FEDEX_DETAIL_MAX];
    const char *sep;

    error_detail(body, len, detail, sizeof(detail));
    sep = detail[0] ? ": " : "";
    if (http_status == 401 || http_status == 403)
        return st_fail(err, errlen, ST_CONFIG, "fedex: %s: FedEx rejected the credentials "
                       "(HTTP %ld%s%s)", what, http_status, sep, detail);
    if (http_status == 429)
        return st_fail(err, errlen, ST_RETRY, "fedex: %s: rate limited (HTTP 429%s%s)", what,
                       sep, detail);
    if (http_status >= 500 && http_status <= 599)
        return st_fail(err, errlen, ST_RETRY, "fedex: %s: server error (HTTP %ld%s%s)", what,
                       http_status, sep, detail);
    return st_fail(err, errlen, ST_PERMANENT, "fedex: %s: unexpected HTTP status %ld%s%s", what,
                   http_status, sep, detail);
}

/* carrier_ops.parse_response for FedEx. */
static enum st_err fedex_parse_response(const struct carrier_ctx *ctx, long http_status,
                                        const char *body, size_t len,
                                        const char *const *numbers, size_t n,
                                        struct track_result *results, char *err, size_t errlen)
{
    json_t *root;
    enum st_err rc;
    char local[256];

    (void)ctx;
    if (err == NULL || errlen == 0) { /* keep a message for the results anyway */
        err = local;
        errlen = sizeof(local);
    }
    err[0] = '\0';
    if (n == 0 || n > FEDEX_BATCH_MAX) {
        rc = st_fail(err, errlen, ST_PERMANENT, "fedex: %zu numbers in one response, want 1 "
                     "to %d", n, FEDEX_BATCH_MAX);
        if (n <= FEDEX_BATCH_MAX)
            return rc;
        carrier_fail_all(results, n, rc, err);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        track_result_reset(&results[i]);
    if ((rc = cj_body_cap("fedex", len, FEDEX_BODY_MAX, err, errlen)) != ST_OK)
        ; /* fail_all below */
    else if (http_status != 200)
        rc = status_error(http_status, body, len, "track", err, errlen);
    else if ((rc = cj_load_body("fedex", http_status, body, len, JSON_REJECT_DUPLICATES, &root,
                                err, errlen)) == ST_OK) {
        rc = parse_ok(root, numbers, n, results, err, errlen);
        json_decref(root);
    }
    if (rc != ST_OK)
        carrier_fail_all(results, n, rc, err);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Token. */

/* carrier_ops.parse_token_response for FedEx: {access_token, token_type,
 * expires_in, scope}. */
static enum st_err fedex_parse_token_response(long http_status, const char *body, size_t len,
                                              struct carrier_token *tok, char *err, size_t errlen)
{
    json_t *root, *v;
    const char *type, *access;
    enum st_err rc = ST_OK;

    memset(tok, 0, sizeof(*tok));
    if ((rc = cj_body_cap("fedex: token", len, FEDEX_BODY_MAX, err, errlen)) != ST_OK)
        return rc;
    if (http_status == 400) /* FedEx answers bad client credentials with 400 or 401 */
        return st_fail(err, errlen, ST_CONFIG, "fedex: token: FedEx refused the request "
                       "(HTTP 400): check client id and secret");
    if (http_status != 200)
        return status_error(http_status, body, len, "token", err, errlen);
    if ((rc = cj_load_body("fedex: token", http_status, body, len, 0, &root, err, errlen)) !=
        ST_OK)
        return rc;
    if (!json_is_object(root)) {
        json_decref(root);
        return st_fail(err, errlen, ST_PERMANENT, "fedex: token: body: expected a JSON object");
    }
    if ((rc = cj_opt_string(root, "access_token", "fedex", "token",
                            &access, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(root, "token_type", "fedex", "token", &type, err, errlen)) != ST_OK)
        goto out;
    if (access == NULL || access[0] == '\0') {
        rc = st_fail(err, errlen, ST_PERMANENT, "fedex: token.access_token: missing");
        goto out;
    }
    if (strlen(access) >= sizeof(tok->access_token)) {
        rc = st_fail(err, errlen, ST_PERMANENT, "fedex: token.access_token: longer than %d "
                     "bytes", CARRIER_TOKEN_MAX - 1);
        goto out;
    }
    for (const char *p = access; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            rc = st_fail(err, errlen, ST_PERMANENT, "fedex: token.access_token: holds spaces "
                         "or control characters");
            goto out;
        }
    if (type != NULL && strcasecmp(type, "bearer") != 0) {
        char q[32];

        rc = st_fail(err, errlen, ST_PERMANENT, "fedex: token.token_type: expected bearer, got "
                     "\"%s\"", carrier_quote(q, sizeof(q), type));
        goto out;
    }
    v = json_object_get(root, "expires_in");
    if (v != NULL && !json_is_null(v)) {
        double s;

        if (!json_is_number(v)) {
            rc = st_fail(err, errlen, ST_PERMANENT, "fedex: token.expires_in: expected a "
                         "number");
            goto out;
        }
        s = json_number_value(v);
        if (!(s >= 0 && s <= 31536000.0)) {
            rc = st_fail(err, errlen, ST_PERMANENT, "fedex: token.expires_in: %g is out of "
                         "range", s);
            goto out;
        }
        tok->expires_in_s = (long)s;
    }
    memcpy(tok->access_token, access, strlen(access) + 1);
out:
    if (rc != ST_OK)
        memset(tok, 0, sizeof(*tok));
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Requests. */

/* True when s holds no control characters (CR, LF, ...). */
static bool clean(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Write {base}{path} into req->url; base without trailing slashes. */
static enum st_err set_url(const struct carrier_ctx *ctx, const char *path,
                           struct carrier_request *req, char *err, size_t errlen)
{
    const char *base = ctx->base_url && ctx->base_url[0] ? ctx->base_url
                                                         : "https://apis.fedex.com";
    size_t blen = strlen(base), plen = strlen(path);

    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    if (!clean(base))
        return st_fail(err, errlen, ST_CONFIG, "fedex: base URL holds control characters");
    if (blen + plen >= sizeof(req->url))
        return st_fail(err, errlen, ST_CONFIG, "fedex: request URL longer than %d bytes",
                       CARRIER_URL_MAX - 1);
    memcpy(req->url, base, blen);
    memcpy(req->url + blen, path, plen + 1);
    return ST_OK;
}

/* True when a tracking number only holds letters and digits and is not too long. */
static bool number_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > FEDEX_NUMBER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return false;
    return true;
}

/* x-locale for a language ("fr", "pt-BR", "en_US") into out[8]; false when
 * we cannot name one (no header is sent then). */
static bool locale_of(const char *lang, char out[8])
{
    static const char *const bare[][2] = {
        { "en", "en_US" }, { "de", "de_DE" }, { "fr", "fr_FR" }, { "es", "es_ES" },
        { "it", "it_IT" }, { "nl", "nl_NL" }, { "pl", "pl_PL" }, { "sv", "sv_SE" },
        { "ja", "ja_JP" }, { "zh", "zh_CN" }, { "ko", "ko_KR" }, { "pt", "pt_BR" },
        { "tr", "tr_TR" }, { "ar", "ar_AE" }, { "da", "da_DK" }, { "cs", "cs_CZ" },
    };
    size_t n = lang != NULL ? strlen(lang) : 0;

    if (n == 5 && isalpha((unsigned char)lang[0]) && isalpha((unsigned char)lang[1]) &&
        (lang[2] == '-' || lang[2] == '_') && isalpha((unsigned char)lang[3]) &&
        isalpha((unsigned char)lang[4])) {
        out[0] = (char)tolower((unsigned char)lang[0]);
        out[1] = (char)tolower((unsigned char)lang[1]);
        out[2] = '_';
        out[3] = (char)toupper((unsigned char)lang[3]);
        out[4] = (char)toupper((unsigned char)lang[4]);
        out[5] = '\0';
        return true;
    }
    for (size_t i = 0; n == 2 && i < sizeof(bare) / sizeof(bare[0]); i++)
        if (strncasecmp(lang, bare[i][0], 2) == 0) {
            memcpy(out, bare[i][1], 6);
            return true;
        }
    return false;
}

/* carrier_ops.build_request for FedEx: POST {base}/track/v1/trackingnumbers. */
static enum st_err fedex_build_request(const struct carrier_ctx *ctx, const char *const *numbers,
                                       size_t n, struct carrier_request *req, char *err,
                                       size_t errlen)
{
    char auth[CARRIER_HEADER_MAX], q[64], loc[8];
    json_t *root, *infos;
    char *text;
    enum st_err rc;

    memset(req, 0, sizeof(*req));
    if (ctx->access_token == NULL || ctx->access_token[0] == '\0')
        return st_fail(err, errlen, ST_CONFIG, "fedex: no OAuth2 access token (fetch one with "
                       "the client credentials first)");
    if (!clean(ctx->access_token))
        return st_fail(err, errlen, ST_CONFIG, "fedex: access token holds control characters");
    if (n == 0 || n > FEDEX_BATCH_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "fedex: %zu numbers in one request, want 1 "
                       "to %d", n, FEDEX_BATCH_MAX);
    for (size_t i = 0; i < n; i++)
        if (!number_ok(numbers[i]))
            return st_fail(err, errlen, ST_PERMANENT, "fedex: tracking number \"%s\": only "
                           "letters and digits allowed, at most %d",
                           carrier_quote(q, sizeof(q), numbers[i] ? numbers[i] : ""),
                           FEDEX_NUMBER_MAX);
    if (snprintf(auth, sizeof(auth), "Bearer %s", ctx->access_token) >= (int)sizeof(auth))
        return st_fail(err, errlen, ST_CONFIG, "fedex: access token longer than %d bytes",
                       CARRIER_HEADER_MAX - 32);
    if ((rc = set_url(ctx, "/track/v1/trackingnumbers", req, err, errlen)) != ST_OK)
        return rc;
    req->method = CARRIER_POST;

    root = json_pack("{s:b,s:[]}", "includeDetailedScans", 1, "trackingInfo");
    infos = root != NULL ? json_object_get(root, "trackingInfo") : NULL;
    for (size_t i = 0; infos != NULL && i < n; i++)
        if (json_array_append_new(infos, json_pack("{s:{s:s}}", "trackingNumberInfo",
                                                   "trackingNumber", numbers[i])) != 0)
            infos = NULL;
    text = infos != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text == NULL)
        return st_fail(err, errlen, ST_RETRY, "fedex: out of memory building the request body");
    rc = carrier_request_body(req, text, strlen(text), err, errlen);
    free(text);
    if (rc == ST_OK &&
        ((rc = carrier_request_header(req, "Authorization", auth, err, errlen)) != ST_OK ||
         (rc = carrier_request_header(req, "Content-Type", "application/json", err, errlen)) !=
             ST_OK ||
         (rc = carrier_request_header(req, "Accept", "application/json", err, errlen)) != ST_OK ||
         (locale_of(ctx->language, loc) &&
          (rc = carrier_request_header(req, "X-locale", loc, err, errlen)) != ST_OK)))
        rc = ST_CONFIG;
    if (rc != ST_OK)
        carrier_request_reset(req);
    return rc;
}

/* carrier_ops.build_token_request for FedEx: POST {base}/oauth/token, form
 * grant_type=client_credentials&client_id=..&client_secret=.. */
static enum st_err fedex_build_token_request(const struct carrier_ctx *ctx,
                                             struct carrier_request *req, char *err,
                                             size_t errlen)
{
    static const char grant[] = "grant_type=client_credentials&client_id=";
    char body[2048];
    size_t o = sizeof(grant) - 1;
    enum st_err rc;

    memset(req, 0, sizeof(*req));
    if (ctx->client_id == NULL || ctx->client_id[0] == '\0' || ctx->client_secret == NULL ||
        ctx->client_secret[0] == '\0')
        return st_fail(err, errlen, ST_CONFIG, "fedex: no OAuth2 client id/secret configured");
    if (!clean(ctx->client_id) || !clean(ctx->client_secret))
        return st_fail(err, errlen, ST_CONFIG, "fedex: client id or secret holds control "
                       "characters");
    memcpy(body, grant, sizeof(grant));
    if (!carrier_url_encode(body, sizeof(body), &o, ctx->client_id) ||
        o + sizeof("&client_secret=") >= sizeof(body))
        return st_fail(err, errlen, ST_CONFIG, "fedex: client credentials too long");
    memcpy(body + o, "&client_secret=", sizeof("&client_secret="));
    o += sizeof("&client_secret=") - 1;
    if (!carrier_url_encode(body, sizeof(body), &o, ctx->client_secret))
        return st_fail(err, errlen, ST_CONFIG, "fedex: client credentials too long");
    if ((rc = set_url(ctx, "/oauth/token", req, err, errlen)) != ST_OK)
        return rc;
    req->method = CARRIER_POST;
    if ((rc = carrier_request_body(req, body, o, err, errlen)) != ST_OK ||
        (rc = carrier_request_header(req, "Content-Type", "application/x-www-form-urlencoded",
                                     err, errlen)) != ST_OK ||
        (rc = carrier_request_header(req, "Accept", "application/json", err, errlen)) != ST_OK)
        carrier_request_reset(req);
    return rc;
}

static const struct carrier_ops fedex_ops = {
    .build_request = fedex_build_request,
    .parse_response = fedex_parse_response,
    .build_token_request = fedex_build_token_request,
    .parse_token_response = fedex_parse_token_response,
};

const struct carrier_def carrier_fedex = {
    .name = "fedex",
    .display_name = "FedEx (Track)",
    .ops = &fedex_ops,
    .batch_max = FEDEX_BATCH_MAX,
    .rate_per_sec = 140.0, /* 1,400 requests per 10 s per project */
    .rate_per_day = 0,     /* a daily quota exists but FedEx does not publish one figure */
    .auth = CARRIER_AUTH_OAUTH2,
    .default_base_url = "https://apis.fedex.com",
};
