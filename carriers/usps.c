/*
 * usps.c - driver for the USPS Tracking v3 API (apis.usps.com).
 *
 * OAuth2 client credentials: POST {base}/oauth2/v3/token with the JSON body
 * {client_id, client_secret, grant_type:"client_credentials"}; the answer
 * holds access_token, token_type "Bearer" and expires_in (seconds, sent as a
 * number or as a numeric string: both are accepted). One number per call:
 * GET {base}/tracking/v3/tracking/{n}?expand=DETAIL with "Authorization:
 * Bearer T".
 *
 * The body holds trackingNumber, status, statusCategory, statusSummary,
 * expectedDeliveryDate (or expectedDeliveryTimeStamp) and trackingEvents[],
 * newest first, each with eventType (English text), eventTimestamp,
 * eventCity, eventState, eventZIP, eventCountry and eventCode.
 *
 * Timestamps: USPS writes them as "YYYY-MM-DDTHH:MM:SSZ", but the Z is not
 * UTC: it is the local wall time at the event's place. The Z is dropped and
 * the zone derived from the place (US state, else the country) and marked
 * derived; when no zone can be told the offset is recorded as unknown. A
 * timestamp that carries a real +HH:MM offset keeps it.
 *
 * Places: eventCountry is empty for US scans and an English name in capitals
 * ("FRANCE", "GREAT BRITAIN AND NORTHERN IRELAND") for foreign ones; names
 * and two-letter codes are mapped to ISO 3166-1 alpha-2 (a table of the
 * spellings USPS uses, then tzdata's names), an empty country with a US state
 * or a ZIP code means the United States (or the territory the state code
 * names), and anything else is left empty rather than guessed.
 *
 * Codes: USPS documents 01 delivered, 02 notice left (attempt failed) and 03
 * accepted/picked up. The others below are modelled from public integrator
 * write-ups and are unconfirmed: MA label created, GX label cancelled,
 * OA accepted at the origin facility, 10 processed/arrived at a facility,
 * L1 departed a facility, NT in transit to the next facility, OF out for
 * delivery, 04 refused, 05/21/22 address problems, 09 return to sender,
 * 14/16 available for pickup, 17/43 picked up at a postal facility.
 * The transit codes (10, L1, NT) are refined by their text (departed origin
 * country, arrived destination country...), 01 by its text (mailbox,
 * returned to sender...). Customs has no documented code: any event whose
 * eventType names customs ("Customs Clearance", "Held in Customs", "Released
 * from Customs") is classified through wording.h whatever its code, except
 * label and delivery scans. A delivery scan that follows a return-to-sender
 * scan is the return reaching the sender: status "returned". Any other code
 * is kept with substatus "unmapped" and affects_status false (status
 * "pending", meaningless).
 *
 * HTTP statuses: 200 is parsed; 400 whose error codes (or message) name one
 * of the message codes 150001-150013 means USPS does not know the number
 * (TRACK_NOT_FOUND, ST_OK); 401/403 are ST_CONFIG; 429 (the hourly quota)
 * and 5xx ST_RETRY; anything else, and any malformed body, ST_PERMANENT with
 * the JSON path named.
 *
 * Rate: the public quota is about 60 calls per hour per application; the
 * defaults (1/s, 1440/day) assume a raised quota and let the poller's 429
 * handling do the rest.
 *
 * No network I/O here. Bodies above USPS_BODY_MAX are refused.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "carrier.h"
#include "cjson.h"
#include "geo.h"
#include "wording.h"

#define USPS_BODY_MAX   (4u * 1024u * 1024u) /* largest body we parse */
#define USPS_NUMBER_MAX 64                    /* longest tracking number accepted */
#define USPS_FOLD_MAX   1024                  /* folded text scanned for keywords */
#define USPS_DETAIL_MAX 160                   /* error detail quoted in messages */
#define USPS_CRED_MAX   1024                  /* longest client id / secret accepted */

/* ------------------------------------------------------------------------ */
/* Codes. */

/* How an event code's meaning is completed by its text. */
enum usps_refine {
    R_FIXED,      /* the code says it all */
    R_TRANSIT,    /* a transit scan: departed/arrived/origin/destination from the text */
    R_DELIVERED,  /* a delivery scan: mailbox, returned to sender... from the text */
    R_ATTEMPT     /* an attempt: recipient unavailable unless the text says address */
};

/* One eventCode we know. */
struct usps_code {
    const char *code;
    enum st_status status;
    enum st_substatus sub;
    enum usps_refine refine;
    bool customs_ok;   /* customs wording may override (not for label/delivery scans) */
};

static const struct usps_code usps_codes[] = {
    { "01", ST_STATUS_DELIVERED, ST_SUB_DELIVERED, R_DELIVERED, false },
    { "02", ST_STATUS_ATTEMPT_FAILED, ST_SUB_RECIPIENT_UNAVAILABLE, R_ATTEMPT, false },
    { "03", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, R_FIXED, true },
    { "04", ST_STATUS_EXCEPTION, ST_SUB_REFUSED, R_FIXED, false },
    { "05", ST_STATUS_EXCEPTION, ST_SUB_ADDRESS_ISSUE, R_FIXED, false },
    { "09", ST_STATUS_RETURNING, ST_SUB_RETURN_TO_SENDER, R_FIXED, false },
    { "10", ST_STATUS_IN_TRANSIT, ST_SUB_ARRIVED_FACILITY, R_TRANSIT, true },
    { "14", ST_STATUS_AVAILABLE_FOR_PICKUP, ST_SUB_AT_PICKUP_POINT, R_FIXED, false },
    { "16", ST_STATUS_AVAILABLE_FOR_PICKUP, ST_SUB_AT_PICKUP_POINT, R_FIXED, false },
    { "17", ST_STATUS_DELIVERED, ST_SUB_DELIVERED, R_FIXED, false },
    { "21", ST_STATUS_EXCEPTION, ST_SUB_ADDRESS_ISSUE, R_FIXED, false },
    { "22", ST_STATUS_EXCEPTION, ST_SUB_ADDRESS_ISSUE, R_FIXED, false },
    { "43", ST_STATUS_DELIVERED, ST_SUB_DELIVERED, R_FIXED, false },
    { "GX", ST_STATUS_CANCELLED, ST_SUB_NONE, R_FIXED, false },
    { "L1", ST_STATUS_IN_TRANSIT, ST_SUB_DEPARTED_FACILITY, R_TRANSIT, true },
    { "MA", ST_STATUS_INFO_RECEIVED, ST_SUB_LABEL_CREATED, R_FIXED, false },
    { "NT", ST_STATUS_IN_TRANSIT, ST_SUB_IN_TRANSIT, R_TRANSIT, true },
    { "OA", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, R_FIXED, true },
    { "OF", ST_STATUS_OUT_FOR_DELIVERY, ST_SUB_OUT_FOR_DELIVERY, R_FIXED, false },
};

/* The table entry of an eventCode (case-insensitive), or NULL. */
static const struct usps_code *code_find(const char *code)
{
    if (code == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(usps_codes) / sizeof(usps_codes[0]); i++)
        if (strcasecmp(usps_codes[i].code, code) == 0)
            return &usps_codes[i];
    return NULL;
}

/* Set ev's status, substatus, affects_status and customs from its code and
 * the folded eventType text. */
static void normalize_event(const char *code, const char *text, struct track_event *ev)
{
    const struct usps_code *c = code_find(code);

    ev->affects_status = true;
    ev->customs = false;
    if ((c == NULL || c->customs_ok) && wording_has(text, W_CUSTOMS)) {
        wording_classify_customs(text, ev);
        return;
    }
    if (c == NULL) { /* stored and counted, never drives the shipment's status */
        ev->status = ST_STATUS_PENDING;
        ev->substatus = ST_SUB_UNMAPPED;
        ev->affects_status = false;
        return;
    }
    ev->status = c->status;
    ev->substatus = c->sub;
    switch (c->refine) {
    case R_FIXED:
        break;
    case R_TRANSIT:
        if (wording_has(text, W_RETURN)) {
            ev->status = ST_STATUS_RETURNING;
            ev->substatus = ST_SUB_RETURN_TO_SENDER;
        } else if (wording_apply(text, WR_TRANSIT, ev))
            wording_refine_attempt(text, ev);
        break;
    case R_DELIVERED:
        wording_apply(text, WR_DELIVERED, ev);
        break;
    case R_ATTEMPT: /* "notice left": nobody took it, unless the text blames the address */
        wording_refine_attempt(text, ev);
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Places. */

/* Country names as USPS spells them (upper case) that tzdata names otherwise. */
static const struct {
    const char *name;
    const char *cc;
} usps_countries[] = {
    { "UNITED STATES", "US" },
    { "UNITED STATES OF AMERICA", "US" },
    { "USA", "US" },
    { "GREAT BRITAIN AND NORTHERN IRELAND", "GB" },
    { "GREAT BRITAIN", "GB" },
    { "UNITED KINGDOM", "GB" },
    { "ENGLAND", "GB" },
    { "SCOTLAND", "GB" },
    { "WALES", "GB" },
    { "NORTHERN IRELAND", "GB" },
    { "KOREA, REPUBLIC OF (SOUTH KOREA)", "KR" },
    { "KOREA, REPUBLIC OF", "KR" },
    { "SOUTH KOREA", "KR" },
    { "CHINA", "CN" },
    { "CHINA, PEOPLE'S REPUBLIC OF", "CN" },
    { "HONG KONG", "HK" },
    { "TAIWAN", "TW" },
    { "RUSSIA", "RU" },
    { "RUSSIAN FEDERATION", "RU" },
    { "VIETNAM", "VN" },
    { "VIET NAM", "VN" },
    { "CZECH REPUBLIC", "CZ" },
    { "CZECHIA", "CZ" },
    { "NETHERLANDS", "NL" },
    { "NETHERLANDS, THE", "NL" },
    { "BOSNIA-HERZEGOVINA", "BA" },
    { "TRINIDAD AND TOBAGO", "TT" },
    { "IVORY COAST", "CI" },
    { "COTE D'IVOIRE", "CI" },
};

/* US state codes that are ISO countries of their own. */
static const char *const territories[] = { "PR", "GU", "VI", "AS", "MP", NULL };

/* Country names match exactly, ignoring ASCII case. */
static bool name_eq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Map an eventCountry value (name or code) to ISO alpha-2 in cc[3]; "" when
 * it cannot be told. cache/cache_cc remember the last name looked up. */
static void country_of(const char *name, char cc[3], char *cache, size_t cachecap,
                       char cache_cc[3])
{
    char code[3];

    cc[0] = '\0';
    if (name == NULL || name[0] == '\0' || strlen(name) >= cachecap)
        return;
    if (cache[0] != '\0' && strcmp(cache, name) == 0) {
        memcpy(cc, cache_cc, 3);
        return;
    }
    if (strlen(name) == 2) {
        code[0] = (char)(name[0] >= 'a' && name[0] <= 'z' ? name[0] - 32 : name[0]);
        code[1] = (char)(name[1] >= 'a' && name[1] <= 'z' ? name[1] - 32 : name[1]);
        code[2] = '\0';
        if (geo_country_valid(code))
            memcpy(cc, code, 3);
    }
    for (size_t i = 0; cc[0] == '\0' && i < sizeof(usps_countries) / sizeof(usps_countries[0]);
         i++)
        if (name_eq(name, usps_countries[i].name))
            memcpy(cc, usps_countries[i].cc, 3);
    for (char a = 'A'; cc[0] == '\0' && a <= 'Z'; a++)
        for (char b = 'A'; cc[0] == '\0' && b <= 'Z'; b++) {
            const char *n;

            code[0] = a;
            code[1] = b;
            code[2] = '\0';
            if ((n = geo_country_name(code)) != NULL && name_eq(name, n))
                memcpy(cc, code, 3);
        }
    snprintf(cache, cachecap, "%s", name);
    memcpy(cache_cc, cc, 3);
}

/* True when s is a US ZIP code (5 digits, optionally -4 or 4 more digits). */
static bool is_zip(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n != 5 && n != 9 && n != 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (n == 10 && i == 5) {
            if (s[i] != '-')
                return false;
        } else if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* The country of a scan with no eventCountry: the US (or its territory)
 * when a state or ZIP says so, else "". */
static void domestic_country(const char *state, const char *zip, char cc[3])
{
    cc[0] = '\0';
    if (state != NULL && strlen(state) == 2) {
        for (size_t i = 0; territories[i] != NULL; i++)
            if (strcasecmp(state, territories[i]) == 0) {
                cc[0] = territories[i][0];
                cc[1] = territories[i][1];
                cc[2] = '\0';
                return;
            }
        if (geo_zone("US", state) != NULL) {
            memcpy(cc, "US", 3);
            return;
        }
    }
    if (is_zip(zip))
        memcpy(cc, "US", 3);
}

/* ------------------------------------------------------------------------ */
/* Reading fields (typed JSON access with messages that say where: cjson.h). */

/* Parse eventTimestamp into ev: a trailing Z means local time at the place. */
static bool parse_time(const char *ts, const char *cc, const char *state, struct track_event *ev)
{
    char local[40];
    size_t n = strlen(ts);

    if (n == 0 || n >= sizeof(local))
        return false;
    memcpy(local, ts, n + 1);
    if (local[n - 1] == 'Z' || local[n - 1] == 'z')
        local[n - 1] = '\0';
    return carrier_parse_time(local, cc[0] ? cc : NULL, state != NULL && state[0] ? state : NULL,
                              ev);
}

/* Per-response state of the country-name cache. */
struct usps_cache {
    char name[96];
    char cc[3];
};

/* Turn trackingEvents[i] into a track_event appended to res. */
static enum st_err parse_event(json_t *jev, size_t i, struct usps_cache *cache,
                               struct track_result *res, char *err, size_t errlen)
{
    char where[48], q[96], fold[USPS_FOLD_MAX], cc[3];
    const char *type, *ts, *city, *state, *zip, *country, *code;
    struct track_event *ev;
    size_t o = 0;
    enum st_err rc;

    snprintf(where, sizeof(where), "trackingEvents[%zu]", i);
    if (!json_is_object(jev))
        return st_fail(err, errlen, ST_PERMANENT, "usps: %s: expected an object", where);
    if ((rc = cj_opt_string(jev, "eventType", "usps", where, &type, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "eventTimestamp", "usps", where, &ts, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "eventCity", "usps", where, &city, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "eventState", "usps", where, &state, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "eventZIP", "usps", where, &zip, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "eventCountry", "usps", where, &country, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "eventCode", "usps", where, &code, err, errlen)) != ST_OK)
        return rc;
    if (ts == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "usps: %s.eventTimestamp: missing", where);

    if (country != NULL && country[0] != '\0')
        country_of(country, cc, cache->name, sizeof(cache->name), cache->cc);
    else
        domestic_country(state, zip, cc);

    if (res->n_events >= CARRIER_MAX_EVENTS)
        return st_fail(err, errlen, ST_PERMANENT, "usps: more than %d events",
                       CARRIER_MAX_EVENTS);
    if ((ev = track_result_add(res)) == NULL)
        return st_fail(err, errlen, ST_RETRY, "usps: out of memory for %s", where);
    if (!parse_time(ts, cc, state, ev))
        return st_fail(err, errlen, ST_PERMANENT,
                       "usps: %s.eventTimestamp: expected YYYY-MM-DDTHH:MM:SS[Z]: \"%s\"", where,
                       carrier_quote(q, sizeof(q), ts));

    carrier_copy_text(ev->code, sizeof(ev->code), code);
    carrier_copy_text(ev->description, sizeof(ev->description), type);
    carrier_copy_text(ev->city, sizeof(ev->city), city);
    carrier_copy_text(ev->postal_code, sizeof(ev->postal_code), zip);
    memcpy(ev->country, cc, sizeof(ev->country));

    fold[0] = '\0';
    if (type != NULL)
        wording_fold_append(fold, sizeof(fold), &o, type);
    normalize_event(code, fold, ev);
    return ST_OK;
}

/* A delivery scan after a return-to-sender scan is the return reaching the
 * sender (USPS writes "Delivered, To Original Sender"): mark it returned.
 * res is sorted oldest first. */
static void mark_returns(struct track_result *res)
{
    bool returning = false;

    for (size_t i = 0; i < res->n_events; i++) {
        struct track_event *ev = &res->events[i];

        if (!ev->affects_status)
            continue;
        if (ev->status == ST_STATUS_RETURNING)
            returning = true;
        else if (returning && ev->status == ST_STATUS_DELIVERED) {
            ev->status = ST_STATUS_RETURNED;
            ev->substatus = ST_SUB_RETURNED_TO_SENDER;
        }
    }
}

/* Fill res from a 200 body's root object. */
static enum st_err parse_found(json_t *root, const char *number, struct track_result *res,
                               char *err, size_t errlen)
{
    (void)number; /* USPS answers for exactly the number in the URL */
    static const char *const edd_keys[] = { "expectedDeliveryDate", "expectedDeliveryTimeStamp" };
    struct usps_cache cache = { "", "" };
    const char *s;
    json_t *events;
    char q[64];
    enum st_err rc;

    if ((rc = cj_opt_string(root, "trackingNumber", "usps", NULL, &s, err, errlen)) != ST_OK)
        return rc;
    res->outcome = TRACK_FOUND;
    res->err = ST_OK;
    for (size_t k = 0; k < 2 && res->estimated_delivery[0] == '\0'; k++) {
        if ((rc = cj_opt_string(root, edd_keys[k], "usps", NULL, &s, err, errlen)) != ST_OK)
            return rc;
        if (s != NULL && s[0] != '\0' &&
            !carrier_date_part(s, CARRIER_DATE_ANY, res->estimated_delivery))
            return st_fail(err, errlen, ST_PERMANENT, "usps: %s: expected YYYY-MM-DD: \"%s\"",
                           edd_keys[k], carrier_quote(q, sizeof(q), s));
    }
    events = json_object_get(root, "trackingEvents");
    if (events == NULL || json_is_null(events))
        return ST_OK; /* known, nothing scanned yet */
    if (!json_is_array(events))
        return st_fail(err, errlen, ST_PERMANENT, "usps: trackingEvents: expected an array");
    for (size_t i = 0; i < json_array_size(events); i++)
        if ((rc = parse_event(json_array_get(events, i), i, &cache, res, err, errlen)) != ST_OK)
            return rc;
    track_result_sort_dedupe(res);
    mark_returns(res);
    return ST_OK;
}

/* ------------------------------------------------------------------------ */
/* Errors. */

/* True when s is one of the not-found message codes 150001..150013. */
static bool not_found_code(const char *s)
{
    int v = 0;

    if (s == NULL || strlen(s) != 6 || strncmp(s, "1500", 4) != 0)
        return false;
    if (s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9')
        return false;
    v = (s[4] - '0') * 10 + (s[5] - '0');
    return v >= 1 && v <= 13;
}

/* True when free text quotes a not-found message code as a word. */
static bool text_has_not_found_code(const char *s)
{
    for (const char *p = s ? strstr(s, "1500") : NULL; p != NULL; p = strstr(p + 1, "1500")) {
        char w[7];

        if (p != s && p[-1] >= '0' && p[-1] <= '9')
            continue;
        if (strlen(p) < 6 || (p[6] >= '0' && p[6] <= '9'))
            continue;
        memcpy(w, p, 6);
        w[6] = '\0';
        if (not_found_code(w))
            return true;
    }
    return false;
}

/* Look at one error object {code, message|title|detail}: record the first
 * message into detail and whether a not-found code appears. */
static void scan_error(json_t *e, char *detail, size_t cap, bool *nf)
{
    static const char *const texts[] = { "message", "detail", "title" };
    json_t *v;

    if (!json_is_object(e))
        return;
    v = json_object_get(e, "code");
    if (json_is_string(v) && not_found_code(json_string_value(v)))
        *nf = true;
    else if (json_is_integer(v) && json_integer_value(v) >= 150001 &&
             json_integer_value(v) <= 150013)
        *nf = true;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        v = json_object_get(e, texts[i]);
        if (!json_is_string(v))
            continue;
        if (text_has_not_found_code(json_string_value(v)))
            *nf = true;
        if (detail[0] == '\0')
            carrier_copy_text(detail, cap, json_string_value(v));
    }
}

/* Read a USPS error body {"error":{code,message,errors:[{code,title,detail}]}}
 * (or an OAuth {"error":"...","error_description":"..."}) into detail[cap];
 * returns true when it names a not-found message code. */
static bool error_body(const char *body, size_t len, char *detail, size_t cap)
{
    json_error_t jerr;
    json_t *root, *e, *list;
    bool nf = false;

    detail[0] = '\0';
    if (body == NULL || len == 0 || (root = json_loadb(body, len, 0, &jerr)) == NULL)
        return false;
    if (json_is_object(root)) {
        e = json_object_get(root, "error");
        if (json_is_object(e)) {
            list = json_object_get(e, "errors");
            for (size_t i = 0; json_is_array(list) && i < json_array_size(list); i++)
                scan_error(json_array_get(list, i), detail, cap, &nf);
            scan_error(e, detail, cap, &nf);
        } else if (json_is_string(e)) {
            json_t *d = json_object_get(root, "error_description");

            carrier_copy_text(detail, cap, json_string_value(json_is_string(d) ? d : e));
        }
    }
    json_decref(root);
    return nf;
}

/* Handle every non-200 answer; returns the kind to report. */
static enum st_err parse_status(long http_status, const char *body, size_t len,
                                struct track_result *results, size_t n, char *err, size_t errlen)
{
    char detail[USPS_DETAIL_MAX];
    bool nf = error_body(body, len, detail, sizeof(detail));
    const char *sep = detail[0] ? ": " : "";
    enum st_err kind;

    if ((http_status == 400 || http_status == 404) && nf) {
        for (size_t i = 0; i < n; i++) {
            track_result_reset(&results[i]);
            results[i].outcome = TRACK_NOT_FOUND;
        }
        return ST_OK;
    }
    if (http_status == 401 || http_status == 403)
        kind = st_fail(err, errlen, ST_CONFIG,
                       "usps: USPS rejected the access token (HTTP %ld%s%s)", http_status, sep,
                       detail);
    else if (http_status == 429)
        kind = st_fail(err, errlen, ST_RETRY, "usps: rate limited, hourly quota (HTTP 429%s%s)",
                       sep, detail);
    else if (http_status >= 500 && http_status <= 599)
        kind = st_fail(err, errlen, ST_RETRY, "usps: server error (HTTP %ld%s%s)", http_status,
                       sep, detail);
    else
        kind = st_fail(err, errlen, ST_PERMANENT, "usps: unexpected HTTP status %ld%s%s",
                       http_status, sep, detail);
    carrier_fail_all(results, n, kind, err);
    return kind;
}

/* carrier_ops.parse_response for USPS. */
static enum st_err usps_parse_response(const struct carrier_ctx *ctx, long http_status,
                                       const char *body, size_t len, const char *const *numbers,
                                       size_t n, struct track_result *results, char *err,
                                       size_t errlen)
{
    (void)ctx;
    return cj_parse_single("usps", USPS_BODY_MAX, http_status, body, len, numbers, n, results,
                           err, errlen, parse_status, parse_found);
}

/* ------------------------------------------------------------------------ */
/* OAuth2 token. */

/* The base URL without trailing slashes: *len gets its length. */
static const char *base_of(const struct carrier_ctx *ctx, size_t *len)
{
    const char *base = ctx->base_url && ctx->base_url[0] ? ctx->base_url
                                                         : "https://apis.usps.com";
    size_t n = strlen(base);

    while (n > 0 && base[n - 1] == '/')
        n--;
    *len = n;
    return base;
}

/* True when s holds a control character. */
static bool has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* carrier_ops.build_token_request: POST {base}/oauth2/v3/token with a JSON body. */
static enum st_err usps_build_token_request(const struct carrier_ctx *ctx,
                                            struct carrier_request *req, char *err,
                                            size_t errlen)
{
    size_t blen;
    const char *base = base_of(ctx, &blen);
    json_t *o;
    char *text;
    enum st_err rc;
    int w;

    if (ctx->client_id == NULL || ctx->client_id[0] == '\0' || ctx->client_secret == NULL ||
        ctx->client_secret[0] == '\0')
        return st_fail(err, errlen, ST_CONFIG, "usps: no OAuth2 client id and secret configured");
    if (has_control(ctx->client_id) || has_control(ctx->client_secret))
        return st_fail(err, errlen, ST_CONFIG,
                       "usps: OAuth2 client id or secret holds control characters");
    if (strlen(ctx->client_id) > USPS_CRED_MAX || strlen(ctx->client_secret) > USPS_CRED_MAX)
        return st_fail(err, errlen, ST_CONFIG, "usps: OAuth2 client id or secret longer than %d",
                       USPS_CRED_MAX);
    memset(req, 0, sizeof(*req));
    req->method = CARRIER_POST;
    w = snprintf(req->url, sizeof(req->url), "%.*s/oauth2/v3/token", (int)blen, base);
    if (w < 0 || (size_t)w >= sizeof(req->url))
        return st_fail(err, errlen, ST_CONFIG, "usps: token URL longer than %d bytes",
                       CARRIER_URL_MAX - 1);
    if ((rc = carrier_request_header(req, "Content-Type", "application/json", err, errlen)) !=
            ST_OK ||
        (rc = carrier_request_header(req, "Accept", "application/json", err, errlen)) != ST_OK)
        return rc;
    o = json_pack("{s:s,s:s,s:s}", "client_id", ctx->client_id, "client_secret",
                  ctx->client_secret, "grant_type", "client_credentials");
    text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL)
        return st_fail(err, errlen, ST_RETRY, "usps: out of memory for the token request");
    rc = carrier_request_body(req, text, strlen(text), err, errlen);
    free(text);
    return rc;
}

/* expires_in as a number or a numeric string; false when it is neither. */
static bool expires_of(json_t *v, long *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);

        if (i < 0 || i > 10L * 365 * 86400)
            return false;
        *out = (long)i;
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        long acc = 0;

        if (s[0] == '\0' || strlen(s) > 9)
            return false;
        for (; *s != '\0'; s++) {
            if (*s < '0' || *s > '9')
                return false;
            acc = acc * 10 + (*s - '0');
        }
        *out = acc;
        return true;
    }
    return false;
}

/* carrier_ops.parse_token_response for USPS. */
static enum st_err usps_parse_token_response(long http_status, const char *body, size_t len,
                                             struct carrier_token *tok, char *err, size_t errlen)
{
    char detail[USPS_DETAIL_MAX];
    const char *sep;
    json_error_t jerr;
    json_t *root, *v;
    enum st_err rc = ST_OK;
    const char *t;

    memset(tok, 0, sizeof(*tok));
    if (len > USPS_BODY_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "usps: token body of %zu bytes exceeds the cap",
                       len);
    if (http_status != 200) {
        error_body(body, len, detail, sizeof(detail));
        sep = detail[0] ? ": " : "";
        if (http_status == 400 || http_status == 401 || http_status == 403)
            return st_fail(err, errlen, ST_CONFIG,
                           "usps: USPS rejected the OAuth2 client credentials (HTTP %ld%s%s)",
                           http_status, sep, detail);
        if (http_status == 429 || (http_status >= 500 && http_status <= 599))
            return st_fail(err, errlen, ST_RETRY, "usps: token endpoint answered HTTP %ld%s%s",
                           http_status, sep, detail);
        return st_fail(err, errlen, ST_PERMANENT, "usps: token endpoint answered HTTP %ld%s%s",
                       http_status, sep, detail);
    }
    if (body == NULL || len == 0)
        return st_fail(err, errlen, ST_PERMANENT, "usps: token response is empty");
    if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        return st_fail(err, errlen, ST_PERMANENT,
                       "usps: token response is not JSON (line %d, column %d: %s)", jerr.line,
                       jerr.column, jerr.text);
    if (!json_is_object(root)) {
        rc = st_fail(err, errlen, ST_PERMANENT, "usps: token response: expected a JSON object");
        goto out;
    }
    v = json_object_get(root, "access_token");
    if (!json_is_string(v) || (t = json_string_value(v))[0] == '\0') {
        rc = st_fail(err, errlen, ST_PERMANENT,
                     "usps: access_token: expected a non-empty string");
        goto out;
    }
    if (strlen(t) >= sizeof(tok->access_token) || has_control(t)) {
        rc = st_fail(err, errlen, ST_PERMANENT,
                     "usps: access_token: too long or holds control characters");
        goto out;
    }
    v = json_object_get(root, "token_type");
    if (v != NULL && !json_is_null(v) &&
        (!json_is_string(v) || strcasecmp(json_string_value(v), "Bearer") != 0)) {
        rc = st_fail(err, errlen, ST_PERMANENT, "usps: token_type: expected \"Bearer\"");
        goto out;
    }
    v = json_object_get(root, "expires_in");
    if (v != NULL && !json_is_null(v) && !expires_of(v, &tok->expires_in_s)) {
        rc = st_fail(err, errlen, ST_PERMANENT,
                     "usps: expires_in: expected a number of seconds");
        goto out;
    }
    memcpy(tok->access_token, t, strlen(t) + 1);
out:
    json_decref(root);
    if (rc != ST_OK)
        memset(tok, 0, sizeof(*tok));
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Request. */

/* True when a tracking number only holds letters and digits and is not too long. */
static bool number_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > USPS_NUMBER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/* carrier_ops.build_request for USPS: GET {base}/tracking/v3/tracking/{n}?expand=DETAIL
 * with the bearer token. */
static enum st_err usps_build_request(const struct carrier_ctx *ctx, const char *const *numbers,
                                      size_t n, struct carrier_request *req, char *err,
                                      size_t errlen)
{
    char auth[CARRIER_HEADER_MAX], q[80];
    size_t blen;
    const char *base = base_of(ctx, &blen);
    int w;

    if (ctx->access_token == NULL || ctx->access_token[0] == '\0')
        return st_fail(err, errlen, ST_CONFIG, "usps: no OAuth2 access token (fetch one first)");
    if (has_control(ctx->access_token))
        return st_fail(err, errlen, ST_CONFIG, "usps: access token holds control characters");
    if (n != 1)
        return st_fail(err, errlen, ST_PERMANENT, "usps: one number per request, got %zu", n);
    if (!number_ok(numbers[0]))
        return st_fail(err, errlen, ST_PERMANENT,
                       "usps: tracking number \"%s\": only letters and digits allowed, at most %d",
                       carrier_quote(q, sizeof(q), numbers[0]), USPS_NUMBER_MAX);
    w = snprintf(auth, sizeof(auth), "Bearer %s", ctx->access_token);
    if (w < 0 || (size_t)w >= sizeof(auth))
        return st_fail(err, errlen, ST_CONFIG, "usps: access token too long for a header");
    memset(req, 0, sizeof(*req));
    req->method = CARRIER_GET;
    w = snprintf(req->url, sizeof(req->url), "%.*s/tracking/v3/tracking/%s?expand=DETAIL",
                 (int)blen, base, numbers[0]);
    if (w < 0 || (size_t)w >= sizeof(req->url))
        return st_fail(err, errlen, ST_PERMANENT, "usps: request URL longer than %d bytes",
                       CARRIER_URL_MAX - 1);
    if (carrier_request_header(req, "Authorization", auth, err, errlen) != ST_OK)
        return ST_CONFIG;
    return carrier_request_header(req, "Accept", "application/json", err, errlen);
}

static const struct carrier_ops usps_ops = {
    .build_request = usps_build_request,
    .parse_response = usps_parse_response,
    .build_token_request = usps_build_token_request,
    .parse_token_response = usps_parse_token_response,
};

const struct carrier_def carrier_usps = {
    .name = "usps",
    .display_name = "USPS (Tracking v3)",
    .ops = &usps_ops,
    .batch_max = 1,
    .rate_per_sec = 1.0,
    .rate_per_day = 1440,
    .auth = CARRIER_AUTH_OAUTH2,
    .default_base_url = "https://apis.usps.com",
};
