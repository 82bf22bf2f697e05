/*
 * laposte.c - driver for La Poste's Suivi v2 API (Colissimo, Chronopost,
 * lettre suivie) at api.laposte.fr.
 *
 * Facts relied on (shared/reference/carriers/CARRIERS.md; codes unconfirmed):
 *   - GET {base}/suivi/v2/idships/{id[,id...]}?lang=fr_FR, 1 to 10 ids,
 *     header X-Okapi-Key with the API key, Accept: application/json.
 *     lang is one of fr_FR (default), en_GB, de_DE, es_ES, it_IT, nl_NL.
 *   - One id: HTTP 200 with one object {returnCode, returnMessage?, lang,
 *     scope, shipment{idShip, isFinal, estimDate?, event[], contextData
 *     {originCountry, arrivalCountry}}}. Several ids: HTTP 207 with an array
 *     of such objects, each with its own returnCode (200 found, 104/105 not
 *     found, 400 bad id). Answers are matched to numbers by idShip (the
 *     shipment's, else the item's own), never by position; an id missing
 *     from the answer is TRACK_ERROR with ST_RETRY.
 *   - Not found (one id): HTTP 404 with returnCode 104 (or 105). 401/403:
 *     the key was refused (ST_CONFIG). 429 and 5xx: ST_RETRY.
 *   - event[] is newest first: {date (ISO 8601 with an offset), code, label}.
 *     Events carry no place; labels are in the requested language.
 *
 * Codes (the event code decides the status; the label only refines it):
 *   DR1 label created; PC1/PC2 picked up; ET1..ET4 and EP1 processing (ET2
 *   in the sending country, ET3 in the destination country; the label tells
 *   arrived/departed/left the origin/reached the destination); DO1 customs
 *   processing; DO2 customs released; DO3 held at customs (the reason comes
 *   from the label via wording.h: duties, documents, inspection, prohibited,
 *   else customs_delay); PB1 problem (exception, refined from the label);
 *   PB2 problem solved; MD2 out for delivery; ND1 undeliverable (attempt
 *   failed, refined: recipient unavailable, address issue; refused or
 *   damaged are exceptions); AG1 awaiting pickup at the counter; RE1 sent
 *   back to the sender (returning: the parcel is on its way back); DI1
 *   delivered; DI2 delivered to the sender (returned). Any other code is kept
 *   with substatus "unmapped", affects_status false and the neutral status
 *   "pending", which means nothing.
 *
 * Places: La Poste gives none per event. An event's country is filled only
 * where it is certain: every event of a domestic shipment (originCountry ==
 * arrivalCountry), and, across borders, codes bound to one side (DR1, PC1,
 * PC2, ET2, DI2 at the origin; ET3, MD2, ND1, AG1, DI1 at the destination).
 * A timestamp without an offset takes that country's zone (derived); with no
 * country, or a country with several zones, it is recorded as unknown.
 *
 * No network I/O here. Bodies above LP_BODY_MAX are refused.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "carrier.h"
#include "cjson.h"
#include "geo.h"
#include "wording.h"

#define LP_BODY_MAX    (4u * 1024u * 1024u) /* largest body we parse */
#define LP_BATCH_MAX   10                    /* ids per request, La Poste's limit */
#define LP_NUMBER_MAX  32                    /* longest id accepted (La Poste: 11 to 15) */
#define LP_FOLD_MAX    2048                  /* folded label scanned for keywords */
#define LP_DETAIL_MAX  160                   /* carrier message quoted in errors */
#define LP_WHERE_MAX   96                    /* JSON path prefix in messages */

/* ------------------------------------------------------------------------ */
/* Codes and their meaning. */

/* What a code says happened. */
enum lp_kind {
    LP_LABEL,           /* DR1 */
    LP_PICKED_UP,       /* PC1, PC2 */
    LP_PROCESSING,      /* ET1..ET4, EP1 */
    LP_PROBLEM_SOLVED,  /* PB2 */
    LP_CUSTOMS_IN,      /* DO1 */
    LP_CUSTOMS_OUT,     /* DO2 */
    LP_CUSTOMS_HELD,    /* DO3 */
    LP_PROBLEM,         /* PB1 */
    LP_OUT_FOR_DELIVERY,/* MD2 */
    LP_UNDELIVERABLE,   /* ND1 */
    LP_AT_COUNTER,      /* AG1 */
    LP_RETURNING,       /* RE1 */
    LP_DELIVERED,       /* DI1 */
    LP_RETURNED         /* DI2 */
};

/* Which country a code's event certainly happens in. */
enum lp_side { SIDE_ANY, SIDE_ORIGIN, SIDE_DEST };

/* One known code. */
struct lp_code {
    const char *code;
    enum lp_kind kind;
    enum lp_side side;
};

static const struct lp_code lp_codes[] = {
    { "DR1", LP_LABEL, SIDE_ORIGIN },
    { "PC1", LP_PICKED_UP, SIDE_ORIGIN },
    { "PC2", LP_PICKED_UP, SIDE_ORIGIN },
    { "ET1", LP_PROCESSING, SIDE_ANY },
    { "ET2", LP_PROCESSING, SIDE_ORIGIN },
    { "ET3", LP_PROCESSING, SIDE_DEST },
    { "ET4", LP_PROCESSING, SIDE_ANY },
    { "EP1", LP_PROCESSING, SIDE_ANY },
    { "DO1", LP_CUSTOMS_IN, SIDE_ANY },
    { "DO2", LP_CUSTOMS_OUT, SIDE_ANY },
    { "DO3", LP_CUSTOMS_HELD, SIDE_ANY },
    { "PB1", LP_PROBLEM, SIDE_ANY },
    { "PB2", LP_PROBLEM_SOLVED, SIDE_ANY },
    { "MD2", LP_OUT_FOR_DELIVERY, SIDE_DEST },
    { "ND1", LP_UNDELIVERABLE, SIDE_DEST },
    { "AG1", LP_AT_COUNTER, SIDE_DEST },
    { "RE1", LP_RETURNING, SIDE_ANY },
    { "DI1", LP_DELIVERED, SIDE_DEST },
    { "DI2", LP_RETURNED, SIDE_ORIGIN },
};

/* The known code named s, or NULL. */
static const struct lp_code *lp_code_of(const char *s)
{
    for (size_t i = 0; i < sizeof(lp_codes) / sizeof(lp_codes[0]); i++)
        if (strcmp(lp_codes[i].code, s) == 0)
            return &lp_codes[i];
    return NULL;
}

/* Transit refinements a processing label may carry, first match wins. */
static const struct {
    enum wording_class cls;
    enum st_substatus sub;
} transit_refine[] = {
    { W_DEPARTED_ORIGIN, ST_SUB_DEPARTED_ORIGIN_COUNTRY },
    { W_ARRIVED_DESTINATION, ST_SUB_ARRIVED_DESTINATION_COUNTRY },
    { W_DEPARTED, ST_SUB_DEPARTED_FACILITY },
    { W_ARRIVED, ST_SUB_ARRIVED_FACILITY },
    { W_WEATHER, ST_SUB_WEATHER_DELAY },
    { W_DELAY, ST_SUB_CARRIER_DELAY },
};

/* Delivery refinements of a DI1 label, first match wins. */
static const struct {
    enum wording_class cls;
    enum st_substatus sub;
} delivered_refine[] = {
    { W_NEIGHBOUR, ST_SUB_DELIVERED_TO_NEIGHBOUR },
    { W_MAILBOX, ST_SUB_DELIVERED_TO_MAILBOX },
    { W_SIGNED, ST_SUB_SIGNED },
};

/* Set status, substatus, affects_status and customs of ev from its code
 * (NULL when unknown) and its folded label. */
static void normalize_event(const struct lp_code *c, const char *text, struct track_event *ev)
{
    ev->affects_status = true;
    ev->customs = false;
    if (c == NULL) { /* stored and counted, never drives the shipment's status */
        ev->status = ST_STATUS_PENDING;
        ev->substatus = ST_SUB_UNMAPPED;
        ev->affects_status = false;
        return;
    }
    switch (c->kind) {
    case LP_LABEL:
        ev->status = ST_STATUS_INFO_RECEIVED;
        ev->substatus = ST_SUB_LABEL_CREATED;
        return;
    case LP_PICKED_UP:
        ev->status = ST_STATUS_IN_TRANSIT;
        ev->substatus = ST_SUB_PICKED_UP;
        return;
    case LP_PROCESSING:
    case LP_PROBLEM_SOLVED:
        ev->status = ST_STATUS_IN_TRANSIT;
        ev->substatus = ST_SUB_IN_TRANSIT;
        for (size_t i = 0; i < sizeof(transit_refine) / sizeof(transit_refine[0]); i++)
            if (wording_has(text, transit_refine[i].cls)) {
                ev->substatus = transit_refine[i].sub;
                break;
            }
        return;
    case LP_CUSTOMS_IN:
        ev->status = ST_STATUS_IN_TRANSIT;
        ev->substatus = ST_SUB_CUSTOMS_PROCESSING;
        ev->customs = true;
        return;
    case LP_CUSTOMS_OUT:
        ev->status = ST_STATUS_IN_TRANSIT;
        ev->substatus = ST_SUB_CUSTOMS_RELEASED;
        ev->customs = true;
        return;
    case LP_CUSTOMS_HELD:
        /* The code says held; the label may say why. */
        wording_classify_customs(text, ev);
        if (ev->status != ST_STATUS_HELD) {
            ev->status = ST_STATUS_HELD;
            ev->substatus = ST_SUB_CUSTOMS_DELAY;
        }
        ev->customs = true;
        return;
    case LP_PROBLEM:
        if (wording_has(text, W_RETURN)) {
            ev->status = ST_STATUS_RETURNING;
            ev->substatus = ST_SUB_RETURN_TO_SENDER;
        } else if (wording_has(text, W_CUSTOMS))
            wording_classify_customs(text, ev);
        else if (!wording_apply(text, WR_FAILURE, ev)) {
            ev->status = ST_STATUS_EXCEPTION;
            ev->substatus = ST_SUB_NONE;
        }
        wording_refine_attempt(text, ev);
        return;
    case LP_OUT_FOR_DELIVERY:
        ev->status = ST_STATUS_OUT_FOR_DELIVERY;
        ev->substatus = ST_SUB_OUT_FOR_DELIVERY;
        return;
    case LP_UNDELIVERABLE:
        if (wording_has(text, W_REFUSED)) {
            ev->status = ST_STATUS_EXCEPTION;
            ev->substatus = ST_SUB_REFUSED;
        } else if (wording_has(text, W_DAMAGED)) {
            ev->status = ST_STATUS_EXCEPTION;
            ev->substatus = ST_SUB_DAMAGED;
        } else {
            ev->status = ST_STATUS_ATTEMPT_FAILED;
            ev->substatus = ST_SUB_NONE;
            wording_refine_attempt(text, ev);
        }
        return;
    case LP_AT_COUNTER:
        ev->status = ST_STATUS_AVAILABLE_FOR_PICKUP;
        ev->substatus = ST_SUB_AT_PICKUP_POINT;
        return;
    case LP_RETURNING:
        ev->status = ST_STATUS_RETURNING;
        ev->substatus = ST_SUB_RETURN_TO_SENDER;
        return;
    case LP_DELIVERED:
        ev->status = ST_STATUS_DELIVERED;
        ev->substatus = ST_SUB_DELIVERED;
        for (size_t i = 0; i < sizeof(delivered_refine) / sizeof(delivered_refine[0]); i++)
            if (wording_has(text, delivered_refine[i].cls)) {
                ev->substatus = delivered_refine[i].sub;
                break;
            }
        return;
    case LP_RETURNED:
        ev->status = ST_STATUS_RETURNED;
        ev->substatus = ST_SUB_RETURNED_TO_SENDER;
        return;
    }
}

/* ------------------------------------------------------------------------ */
/* Reading fields (typed JSON access with messages that say where: cjson.h). */

/* An ISO country code from contextData into cc[3]: upper-cased, and "" when
 * absent or no country we know (kept empty rather than guessed). */
static void country_of(const char *s, char cc[3])
{
    cc[0] = '\0';
    if (s == NULL || strlen(s) != 2)
        return;
    cc[0] = (char)(s[0] >= 'a' && s[0] <= 'z' ? s[0] - 32 : s[0]);
    cc[1] = (char)(s[1] >= 'a' && s[1] <= 'z' ? s[1] - 32 : s[1]);
    cc[2] = '\0';
    if (!geo_country_valid(cc))
        cc[0] = '\0';
}

/* ------------------------------------------------------------------------ */
/* One shipment. */

/* The countries of a shipment's contextData. */
struct lp_context {
    char origin[3];
    char dest[3];
};

/* The country an event with code c certainly happened in, or NULL. */
static const char *event_country(const struct lp_context *cx, const struct lp_code *c)
{
    if (cx->origin[0] != '\0' && strcmp(cx->origin, cx->dest) == 0)
        return cx->origin; /* domestic: everything happens there */
    if (c == NULL)
        return NULL;
    if (c->side == SIDE_ORIGIN && cx->origin[0] != '\0')
        return cx->origin;
    if (c->side == SIDE_DEST && cx->dest[0] != '\0')
        return cx->dest;
    return NULL;
}

/* Turn {where}.event[i] into a track_event appended to res. */
static enum st_err parse_event(json_t *jev, const char *where, size_t i,
                               const struct lp_context *cx, struct track_result *res, char *err,
                               size_t errlen)
{
    char at[LP_WHERE_MAX + 32], q[96], fold[LP_FOLD_MAX];
    const char *date, *code, *label, *cc;
    const struct lp_code *c;
    struct track_event *ev;
    size_t o = 0;
    enum st_err rc;

    snprintf(at, sizeof(at), "%s.event[%zu]", where, i);
    if (!json_is_object(jev))
        return st_fail(err, errlen, ST_PERMANENT, "laposte: %s: expected an object", at);
    if ((rc = cj_opt_string(jev, "date", "laposte", at, &date, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "code", "laposte", at, &code, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "label", "laposte", at, &label, err, errlen)) != ST_OK)
        return rc;
    if (date == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "laposte: %s.date: missing", at);
    if (code == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "laposte: %s.code: missing", at);
    if (res->n_events >= CARRIER_MAX_EVENTS)
        return st_fail(err, errlen, ST_PERMANENT, "laposte: %s: more than %d events", where,
                       CARRIER_MAX_EVENTS);
    if ((ev = track_result_add(res)) == NULL)
        return st_fail(err, errlen, ST_RETRY, "laposte: out of memory for %s", at);

    c = lp_code_of(code);
    cc = event_country(cx, c);
    if (!carrier_parse_time(date, cc, NULL, ev))
        return st_fail(err, errlen, ST_PERMANENT,
                       "laposte: %s.date: expected an ISO 8601 time, got \"%s\"", at,
                       carrier_quote(q, sizeof(q), date));
    carrier_copy_text(ev->code, sizeof(ev->code), code);
    carrier_copy_text(ev->description, sizeof(ev->description), label);
    if (cc != NULL)
        memcpy(ev->country, cc, sizeof(ev->country));
    fold[0] = '\0';
    if (label != NULL)
        wording_fold_append(fold, sizeof(fold), &o, label);
    normalize_event(c, fold, ev);
    return ST_OK;
}

/* Fill res from {where}.shipment (an object). */
static enum st_err parse_shipment(json_t *shp, const char *where, struct track_result *res,
                                  char *err, size_t errlen)
{
    char at[LP_WHERE_MAX + 32], q[64];
    const char *edd, *origin, *dest;
    json_t *ctxd, *events, *fin;
    struct lp_context cx = { "", "" };
    enum st_err rc;

    res->outcome = TRACK_FOUND;
    res->err = ST_OK;
    fin = json_object_get(shp, "isFinal");
    if (fin != NULL && !json_is_null(fin) && !json_is_boolean(fin))
        return st_fail(err, errlen, ST_PERMANENT, "laposte: %s.isFinal: expected a boolean",
                       where);
    if ((rc = cj_opt_string(shp, "estimDate", "laposte", where, &edd, err, errlen)) != ST_OK ||
        (rc = cj_opt_object(shp, "contextData", "laposte", where, &ctxd, err, errlen)) != ST_OK)
        return rc;
    if (edd != NULL && edd[0] != '\0' &&
        !carrier_date_part(edd, CARRIER_DATE_EPOCH, res->estimated_delivery))
        return st_fail(err, errlen, ST_PERMANENT,
                       "laposte: %s.estimDate: expected YYYY-MM-DD, got \"%s\"", where,
                       carrier_quote(q, sizeof(q), edd));
    if (ctxd != NULL) {
        snprintf(at, sizeof(at), "%s.contextData", where);
        if ((rc = cj_opt_string(ctxd, "originCountry", "laposte", at,
                                &origin, err, errlen)) != ST_OK ||
            (rc = cj_opt_string(ctxd, "arrivalCountry", "laposte", at,
                                &dest, err, errlen)) != ST_OK)
            return rc;
        country_of(origin, cx.origin);
        country_of(dest, cx.dest);
    }

    events = json_object_get(shp, "event");
    if (events == NULL || json_is_null(events))
        return ST_OK; /* known, nothing scanned yet */
    if (!json_is_array(events))
        return st_fail(err, errlen, ST_PERMANENT, "laposte: %s.event: expected an array", where);
    for (size_t i = 0; i < json_array_size(events); i++)
        if ((rc = parse_event(json_array_get(events, i), where, i, &cx, res, err, errlen)) !=
            ST_OK)
            return rc;
    track_result_sort_dedupe(res);
    return ST_OK;
}

/* ------------------------------------------------------------------------ */
/* Items of an answer and their return codes. */

/* The id an item answers for: shipment.idShip, else the item's own idShip.
 * *id is NULL when it names none. prefix is "" or "[i]". */
static enum st_err item_id(json_t *item, const char *prefix, const char **id, char *err,
                           size_t errlen)
{
    char at[LP_WHERE_MAX];
    json_t *shp;
    enum st_err rc;

    *id = NULL;
    snprintf(at, sizeof(at), "%s", prefix[0] ? prefix : "body");
    if (!json_is_object(item))
        return st_fail(err, errlen, ST_PERMANENT, "laposte: %s: expected an object", at);
    if ((rc = cj_opt_object(item, "shipment", "laposte", at, &shp, err, errlen)) != ST_OK)
        return rc;
    if (shp != NULL) {
        snprintf(at, sizeof(at), "%s%sshipment", prefix, prefix[0] ? "." : "");
        if ((rc = cj_opt_string(shp, "idShip", "laposte", at, id, err, errlen)) != ST_OK)
            return rc;
    }
    if (*id == NULL && (rc = cj_opt_string(item, "idShip", "laposte",
                                           prefix[0] ? prefix : "body", id, err, errlen)) != ST_OK)
        return rc;
    if (*id == NULL || (*id)[0] == '\0')
        return st_fail(err, errlen, ST_PERMANENT,
                       "laposte: %s: names no idShip (shipment.idShip or idShip)", at);
    return ST_OK;
}

/* The returnCode of an item into *code; fails when missing or not an integer. */
static enum st_err return_code(json_t *item, const char *prefix, long *code, char *err,
                               size_t errlen)
{
    json_t *v = json_object_get(item, "returnCode");
    const char *at = prefix[0] ? prefix : "body";

    if (v == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "laposte: %s.returnCode: missing", at);
    if (!json_is_integer(v))
        return st_fail(err, errlen, ST_PERMANENT, "laposte: %s.returnCode: expected an integer",
                       at);
    *code = (long)json_integer_value(v);
    return ST_OK;
}

/* The carrier's own words in an object (returnMessage, else message) into out[cap]. */
static void item_message(json_t *obj, char *out, size_t cap)
{
    json_t *m = json_object_get(obj, "returnMessage");

    out[0] = '\0';
    if (!json_is_string(m))
        m = json_object_get(obj, "message");
    if (json_is_string(m))
        carrier_copy_text(out, cap, json_string_value(m));
}

/* Fill res from one item (an object) whose id matched. prefix is "" or "[i]". */
static enum st_err parse_item(json_t *item, const char *prefix, struct track_result *res,
                              char *err, size_t errlen)
{
    char where[LP_WHERE_MAX], msg[LP_DETAIL_MAX];
    const char *sep;
    json_t *shp;
    long code = 0;
    enum st_err rc;

    if ((rc = return_code(item, prefix, &code, err, errlen)) != ST_OK)
        return rc;
    item_message(item, msg, sizeof(msg));
    sep = msg[0] ? ": " : "";
    if (code == 104 || code == 105) {
        res->outcome = TRACK_NOT_FOUND;
        return ST_OK;
    }
    if (code == 200) {
        snprintf(where, sizeof(where), "%s%sshipment", prefix, prefix[0] ? "." : "");
        if ((rc = cj_opt_object(item, "shipment", "laposte", prefix[0] ? prefix : "body",
                                &shp, err, errlen)) != ST_OK)
            return rc;
        if (shp == NULL)
            return st_fail(err, errlen, ST_PERMANENT, "laposte: %s: missing", where);
        return parse_shipment(shp, where, res, err, errlen);
    }
    if (code == 401 || code == 403)
        return st_fail(err, errlen, ST_CONFIG,
                       "laposte: La Poste rejected the API key (returnCode %ld%s%s)", code, sep,
                       msg);
    if (code == 429 || (code >= 500 && code <= 599))
        return st_fail(err, errlen, ST_RETRY, "laposte: %s: returnCode %ld%s%s",
                       prefix[0] ? prefix : "body", code, sep, msg);
    if (code == 400)
        return st_fail(err, errlen, ST_PERMANENT,
                       "laposte: %s: La Poste rejected the id (returnCode 400%s%s)",
                       prefix[0] ? prefix : "body", sep, msg);
    return st_fail(err, errlen, ST_PERMANENT, "laposte: %s.returnCode: unexpected value %ld%s%s",
                   prefix[0] ? prefix : "body", code, sep, msg);
}

/* The path prefix of item k: "[k]" in an array answer, "" for a lone object. */
static void item_prefix(json_t *root, size_t k, char *out, size_t cap)
{
    if (json_is_array(root))
        snprintf(out, cap, "[%zu]", k);
    else
        out[0] = '\0';
}

/* Parse a 200/207 answer (an object, or an array of them) into results[0..n):
 * items matched by idShip. Returns ST_OK unless the body as a whole is bad
 * (every result then fails alike), or every result failed on its own (then
 * the first failure's kind and message). */
static enum st_err parse_items(json_t *root, const char *const *numbers, size_t n,
                               struct track_result *results, char *err, size_t errlen)
{
    size_t n_items = json_is_array(root) ? json_array_size(root) : 1;
    enum st_err rc, first = ST_OK;
    char prefix[32];
    const char *id;

    if (!json_is_array(root) && !json_is_object(root)) {
        rc = st_fail(err, errlen, ST_PERMANENT,
                     "laposte: body: expected an object or an array of objects");
        carrier_fail_all(results, n, rc, err);
        return rc;
    }
    /* Every item must say which id it answers for, else nothing can be trusted. */
    for (size_t k = 0; k < n_items; k++) {
        json_t *item = json_is_array(root) ? json_array_get(root, k) : root;

        item_prefix(root, k, prefix, sizeof(prefix));
        if ((rc = item_id(item, prefix, &id, err, errlen)) != ST_OK) {
            carrier_fail_all(results, n, rc, err);
            return rc;
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_t *item = NULL;
        char ierr[256];

        track_result_reset(&results[i]);
        for (size_t k = 0; k < n_items && item == NULL; k++) {
            json_t *cand = json_is_array(root) ? json_array_get(root, k) : root;

            item_prefix(root, k, prefix, sizeof(prefix));
            if (item_id(cand, prefix, &id, ierr, sizeof(ierr)) == ST_OK &&
                strcasecmp(id, numbers[i]) == 0)
                item = cand;
        }
        if (item == NULL) {
            rc = st_fail(ierr, sizeof(ierr), ST_RETRY,
                         "laposte: %.*s: missing from La Poste's answer", LP_NUMBER_MAX,
                         numbers[i]);
        } else {
            ierr[0] = '\0';
            rc = parse_item(item, prefix, &results[i], ierr, sizeof(ierr));
        }
        if (rc != ST_OK) {
            track_result_reset(&results[i]);
            track_result_fail(&results[i], rc, "%s", ierr);
            if (first == ST_OK) {
                first = rc;
                st_fail(err, errlen, rc, "%s", ierr);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (results[i].outcome != TRACK_ERROR)
            return ST_OK;
    return first;
}

/* Handle every answer but 200/207; returns the kind to report. */
static enum st_err parse_status(long http_status, const char *body, size_t len,
                                struct track_result *results, size_t n, char *err, size_t errlen)
{
    char msg[LP_DETAIL_MAX] = "";
    json_error_t jerr;
    json_t *root = NULL, *rcode = NULL;
    const char *sep;
    enum st_err kind;

    if (body != NULL && len > 0)
        root = json_loadb(body, len, 0, &jerr);
    if (json_is_object(root)) {
        item_message(root, msg, sizeof(msg));
        rcode = json_object_get(root, "returnCode");
    }
    sep = msg[0] ? ": " : "";
    if (http_status == 404 && json_is_integer(rcode) &&
        (json_integer_value(rcode) == 104 || json_integer_value(rcode) == 105)) {
        json_decref(root);
        for (size_t i = 0; i < n; i++) {
            track_result_reset(&results[i]);
            results[i].outcome = TRACK_NOT_FOUND;
        }
        return ST_OK;
    }
    if (http_status == 401 || http_status == 403)
        kind = st_fail(err, errlen, ST_CONFIG,
                       "laposte: La Poste rejected the API key (HTTP %ld%s%s)", http_status, sep,
                       msg);
    else if (http_status == 429)
        kind = st_fail(err, errlen, ST_RETRY, "laposte: rate limited (HTTP 429%s%s)", sep, msg);
    else if (http_status >= 500 && http_status <= 599)
        kind = st_fail(err, errlen, ST_RETRY, "laposte: server error (HTTP %ld%s%s)",
                       http_status, sep, msg);
    else if (http_status == 404 && rcode == NULL)
        kind = st_fail(err, errlen, ST_PERMANENT,
                       "laposte: HTTP 404 without a returnCode (wrong base URL?)");
    else if (http_status == 400)
        kind = st_fail(err, errlen, ST_PERMANENT,
                       "laposte: La Poste rejected the request (HTTP 400%s%s)", sep, msg);
    else
        kind = st_fail(err, errlen, ST_PERMANENT, "laposte: unexpected HTTP status %ld%s%s",
                       http_status, sep, msg);
    json_decref(root);
    carrier_fail_all(results, n, kind, err);
    return kind;
}

/* carrier_ops.parse_response for La Poste: results[i] for numbers[i]. */
static enum st_err lp_parse_response(const struct carrier_ctx *ctx, long http_status,
                                     const char *body, size_t len, const char *const *numbers,
                                     size_t n, struct track_result *results, char *err,
                                     size_t errlen)
{
    json_t *root;
    enum st_err rc;
    char local[256];

    (void)ctx;
    if (err == NULL || errlen == 0) { /* keep a message for the results anyway */
        err = local;
        errlen = sizeof(local);
    }
    if (n == 0 || n > LP_BATCH_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "laposte: 1 to %d numbers per response, got %zu",
                       LP_BATCH_MAX, n);
    if ((rc = cj_body_cap("laposte", len, LP_BODY_MAX, err, errlen)) != ST_OK) {
        carrier_fail_all(results, n, rc, err);
        return rc;
    }
    if (http_status != 200 && http_status != 207)
        return parse_status(http_status, body, len, results, n, err, errlen);
    /* Any top-level value loads (JSON_DECODE_ANY); parse_items names a wrong one. */
    if ((rc = cj_load_body("laposte", http_status, body, len,
                           JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &root, err, errlen)) !=
        ST_OK) {
        carrier_fail_all(results, n, rc, err);
        return rc;
    }
    rc = parse_items(root, numbers, n, results, err, errlen);
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Request. */

/* True when an id only holds [A-Za-z0-9] (a comma would split the batch)
 * and is not too long. */
static bool number_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > LP_NUMBER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/* La Poste's lang value for a language tag ("en", "en-US", "de_DE"...);
 * fr_FR for anything it does not offer. */
static const char *lp_lang(const char *tag)
{
    static const char *const langs[][2] = {
        { "fr", "fr_FR" }, { "en", "en_GB" }, { "de", "de_DE" },
        { "es", "es_ES" }, { "it", "it_IT" }, { "nl", "nl_NL" },
    };
    char primary[3];

    if (tag == NULL || strlen(tag) < 2 || (tag[2] != '\0' && tag[2] != '-' && tag[2] != '_'))
        return "fr_FR";
    primary[0] = (char)(tag[0] >= 'A' && tag[0] <= 'Z' ? tag[0] + 32 : tag[0]);
    primary[1] = (char)(tag[1] >= 'A' && tag[1] <= 'Z' ? tag[1] + 32 : tag[1]);
    primary[2] = '\0';
    for (size_t i = 0; i < sizeof(langs) / sizeof(langs[0]); i++)
        if (strcmp(primary, langs[i][0]) == 0)
            return langs[i][1];
    return "fr_FR";
}

/* carrier_ops.build_request for La Poste: GET {base}/suivi/v2/idships/A,B?lang=L
 * with X-Okapi-Key and Accept headers. */
static enum st_err lp_build_request(const struct carrier_ctx *ctx, const char *const *numbers,
                                    size_t n, struct carrier_request *req, char *err,
                                    size_t errlen)
{
    const char *base = ctx->base_url && ctx->base_url[0] ? ctx->base_url
                                                         : "https://api.laposte.fr";
    size_t blen = strlen(base), o = 0;
    char q[80];

    memset(req, 0, sizeof(*req));
    if (ctx->api_key == NULL || ctx->api_key[0] == '\0')
        return st_fail(err, errlen, ST_CONFIG, "laposte: no API key configured (X-Okapi-Key)");
    for (const char *k = ctx->api_key; *k != '\0'; k++)
        if ((unsigned char)*k < 0x20 || *k == 0x7f)
            return st_fail(err, errlen, ST_CONFIG, "laposte: API key holds control characters");
    if (n == 0 || n > LP_BATCH_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "laposte: 1 to %d numbers per request, got %zu",
                       LP_BATCH_MAX, n);
    for (size_t i = 0; i < n; i++)
        if (numbers[i] == NULL || !number_ok(numbers[i]))
            return st_fail(err, errlen, ST_PERMANENT,
                           "laposte: tracking number \"%s\": only letters and digits allowed, "
                           "at most %d", carrier_quote(q, sizeof(q), numbers[i]), LP_NUMBER_MAX);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    if (blen + 1 >= sizeof(req->url))
        return st_fail(err, errlen, ST_PERMANENT, "laposte: request URL longer than %d bytes",
                       CARRIER_URL_MAX - 1);

    req->method = CARRIER_GET;
    memcpy(req->url, base, blen);
    o = blen;
    req->url[o] = '\0';
    if (!carrier_url_append(req->url, sizeof(req->url), &o, "/suivi/v2/idships/"))
        goto too_long;
    for (size_t i = 0; i < n; i++)
        if ((i > 0 && !carrier_url_append(req->url, sizeof(req->url), &o, ",")) ||
            !carrier_url_encode(req->url, sizeof(req->url), &o, numbers[i]))
            goto too_long;
    if (!carrier_url_append(req->url, sizeof(req->url), &o, "?lang=") ||
        !carrier_url_append(req->url, sizeof(req->url), &o, lp_lang(ctx->language)))
        goto too_long;
    if (carrier_request_header(req, "X-Okapi-Key", ctx->api_key, err, errlen) != ST_OK)
        return ST_CONFIG;
    return carrier_request_header(req, "Accept", "application/json", err, errlen);

too_long:
    req->url[0] = '\0';
    return st_fail(err, errlen, ST_PERMANENT, "laposte: request URL longer than %d bytes",
                   CARRIER_URL_MAX - 1);
}

static const struct carrier_ops lp_ops = {
    .build_request = lp_build_request,
    .parse_response = lp_parse_response,
};

const struct carrier_def carrier_laposte = {
    .name = "laposte",
    .display_name = "La Poste (Suivi v2)",
    .ops = &lp_ops,
    .batch_max = LP_BATCH_MAX,
    .rate_per_sec = 10.0,
    .rate_per_day = 0,
    .auth = CARRIER_AUTH_API_KEY,
    .default_base_url = "https://api.laposte.fr",
};
