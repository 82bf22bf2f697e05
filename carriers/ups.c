/*
 * ups.c - driver for the UPS Track API v1 (onlinetools.ups.com), OAuth2.
 *
 * Facts relied on (CARRIERS.md, ups-tracking-openapi.yaml, ups-oauth-openapi.yaml,
 * ups-trackalert-openapi.yaml):
 *   - One number per call: GET {base}/api/track/v1/details/{inquiryNumber}
 *     ?locale=en_US with "Authorization: Bearer T", "transId" (unique per
 *     request) and "transactionSrc". Inquiry numbers are 7 to 34 characters.
 *   - Tokens: POST {base}/security/v1/oauth/token, HTTP basic client_id:secret,
 *     form grant_type=client_credentials; the answer holds access_token and
 *     expires_in as a string of seconds (about 14399).
 *   - 200 body: trackResponse.shipment[].package[].activity[], newest first.
 *     Activity: date YYYYMMDD and time HHMMSS in local time, gmtDate, gmtTime
 *     (the spec's own example drops the leading zero: "74700") and gmtOffset
 *     "-05:00"; location.address{city,stateProvince,postalCode,countryCode};
 *     status{type,code,statusCode,description}. package.deliveryDate[]{date,
 *     type}: SDD scheduled, RDD rescheduled, DEL delivered.
 *   - Errors: {"response":{"errors":[{"code","message"}]}}; 404 with that body
 *     means UPS does not know the number. A 200 whose shipment carries
 *     warnings and no package says the same.
 *
 * Status types and what they become:
 *   M   manifest: info_received / label_created
 *   MV  manifest void: cancelled
 *   P   pickup: in_transit / picked_up
 *   I   in progress: a few codes are specific (AR arrived, DP departed, EP
 *       export scan, IP import scan, OT out for delivery); otherwise returns,
 *       customs and the transit wording of wording.c decide, else in_transit
 *   X   exception: SR is a customs release; customs wording ("Clearance
 *       Information Required") is classified as customs; returns; otherwise
 *       the failure wording (attempts, refusals, damage...), else exception
 *   D   delivery: out for delivery (code OT or wording), else the delivered
 *       wording (returned, collected, access point, signed...), else delivered
 *   U   updated delivery date: in_transit, refined by the transit wording
 *   Any other type (or none) is kept with substatus "unmapped", affects_status
 *   false and the neutral status "pending", unless its words name customs.
 *
 * Timestamps: gmtDate+gmtTime give the instant and gmtOffset the offset
 * (OFFSET_CARRIER); local date+time stay the wall time. Without GMT fields the
 * local time is placed in the zone of the activity's country and state
 * (OFFSET_DERIVED), or kept as local wall time with OFFSET_UNKNOWN.
 *
 * The estimated delivery is the RDD date, else the SDD date, of the package.
 *
 * HTTP statuses: 200 is parsed; 404 with a UPS errors body is TRACK_NOT_FOUND
 * (ST_OK), a bare 404 points at a wrong base URL (ST_PERMANENT); 401/403 are
 * ST_CONFIG; 429 and 5xx ST_RETRY; anything else, and any malformed body,
 * ST_PERMANENT with the JSON path named. Bodies above UPS_BODY_MAX are refused.
 *
 * Descriptions are always requested in en_US: the codes carry the meaning and
 * the English words are what the shared wording tables know best.
 *
 * No network I/O here.
 */
#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "carrier.h"
#include "cjson.h"
#include "geo.h"
#include "wording.h"

#define UPS_BODY_MAX      (4u * 1024u * 1024u) /* largest body we parse */
#define UPS_NUMBER_MIN    7                    /* inquiry number length, per the spec */
#define UPS_NUMBER_MAX    34
#define UPS_FOLD_MAX      2048                 /* folded text scanned for keywords */
#define UPS_DETAIL_MAX    160                  /* error message quoted in messages */
#define UPS_CRED_MAX      256                  /* longest client id or secret */
#define UPS_DEFAULT_BASE  "https://onlinetools.ups.com"
#define UPS_TRANS_SRC     "shiptrack"

/* ------------------------------------------------------------------------ */
/* Normalization of one activity. */

/* The activity status types UPS documents. */
enum ups_type { UPS_M, UPS_MV, UPS_P, UPS_I, UPS_X, UPS_D, UPS_U, UPS_UNKNOWN };

/* Map status.type (NULL when absent) to enum ups_type. */
static enum ups_type ups_type_of(const char *s)
{
    static const struct { const char *name; enum ups_type t; } types[] = {
        { "M", UPS_M }, { "MV", UPS_MV }, { "P", UPS_P }, { "I", UPS_I },
        { "X", UPS_X }, { "D", UPS_D },   { "U", UPS_U },
    };

    for (size_t i = 0; s != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(s, types[i].name) == 0)
            return types[i].t;
    return UPS_UNKNOWN;
}

/* Set status and substatus. */
static void set(struct track_event *ev, enum st_status s, enum st_substatus sub)
{
    ev->status = s;
    ev->substatus = sub;
}

/* True when code equals c (code may be NULL). */
static bool code_is(const char *code, const char *c)
{
    return code != NULL && strcmp(code, c) == 0;
}

/* Type I activities: the codes whose meaning is fixed, then the wording. */
static void normalize_in_progress(const char *code, const char *text, struct track_event *ev)
{
    if (code_is(code, "AR"))
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_ARRIVED_FACILITY);
    else if (code_is(code, "DP"))
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_DEPARTED_FACILITY);
    else if (code_is(code, "EP"))
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_DEPARTED_ORIGIN_COUNTRY);
    else if (code_is(code, "IP"))
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_ARRIVED_DESTINATION_COUNTRY);
    else if (code_is(code, "OT"))
        set(ev, ST_STATUS_OUT_FOR_DELIVERY, ST_SUB_OUT_FOR_DELIVERY);
    else if (wording_has(text, W_RETURN))
        set(ev, ST_STATUS_RETURNING, ST_SUB_RETURN_TO_SENDER);
    else if (wording_has(text, W_CUSTOMS))
        wording_classify_customs(text, ev);
    else if (!wording_apply(text, WR_TRANSIT, ev))
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_IN_TRANSIT);
    wording_refine_attempt(text, ev);
}

/* Type X activities: customs release, customs, returns, then failures. */
static void normalize_exception(const char *code, const char *text, struct track_event *ev)
{
    if (code_is(code, "SR")) { /* "released by the customs agency" */
        ev->customs = true;
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED);
        return;
    }
    if (wording_has(text, W_CUSTOMS)) {
        wording_classify_customs(text, ev);
        return;
    }
    if (wording_has(text, W_RETURN)) {
        set(ev, ST_STATUS_RETURNING, ST_SUB_RETURN_TO_SENDER);
        return;
    }
    if (!wording_apply(text, WR_FAILURE, ev))
        set(ev, ST_STATUS_EXCEPTION, ST_SUB_NONE);
    wording_refine_attempt(text, ev);
}

/* Set ev's status, substatus, affects_status and customs from the UPS
 * status type and code and the folded words. */
static void normalize_event(enum ups_type type, const char *code, const char *text,
                            struct track_event *ev)
{
    ev->affects_status = true;
    ev->customs = false;
    switch (type) {
    case UPS_M:
        set(ev, ST_STATUS_INFO_RECEIVED, ST_SUB_LABEL_CREATED);
        return;
    case UPS_MV:
        set(ev, ST_STATUS_CANCELLED, ST_SUB_NONE);
        return;
    case UPS_P:
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP);
        return;
    case UPS_I:
        normalize_in_progress(code, text, ev);
        return;
    case UPS_X:
        normalize_exception(code, text, ev);
        return;
    case UPS_D:
        if (code_is(code, "OT") || wording_has(text, W_OUT_FOR_DELIVERY))
            set(ev, ST_STATUS_OUT_FOR_DELIVERY, ST_SUB_OUT_FOR_DELIVERY);
        else if (!wording_apply(text, WR_DELIVERED, ev))
            set(ev, ST_STATUS_DELIVERED, ST_SUB_DELIVERED);
        return;
    case UPS_U:
        /* "delivery date updated": news about the estimate, not about where the
         * parcel is; kept in the timeline, never moves the status (a U after
         * "out for delivery" must not put the parcel back in transit). */
        if (!wording_apply(text, WR_TRANSIT, ev))
            set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_IN_TRANSIT);
        ev->affects_status = false;
        return;
    case UPS_UNKNOWN:
        break;
    }
    if (wording_has(text, W_CUSTOMS)) {
        wording_classify_customs(text, ev);
        return;
    }
    /* Stored and counted, never drives the shipment's status. */
    set(ev, ST_STATUS_PENDING, ST_SUB_UNMAPPED);
    ev->affects_status = false;
}

/* ------------------------------------------------------------------------ */
/* Reading fields (typed JSON access with messages that say where: cjson.h). */

/* True when s is exactly n ASCII digits. */
static bool all_digits(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* "YYYYMMDD" into "YYYY-MM-DD" (out[11]); false when not 8 digits. Ranges
 * are checked by carrier_parse_time or date_valid. */
static bool ups_date(const char *s, char out[11])
{
    if (!all_digits(s, 8))
        return false;
    snprintf(out, 11, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
    return true;
}

/* "HHMMSS" (or "HMMSS", as gmtTime is sometimes written) into "HH:MM:SS" (out[9]). */
static bool ups_time(const char *s, char out[9])
{
    char six[7];

    if (all_digits(s, 6))
        memcpy(six, s, 7);
    else if (all_digits(s, 5)) {
        six[0] = '0';
        memcpy(six + 1, s, 6);
    } else
        return false;
    snprintf(out, 9, "%.2s:%.2s:%.2s", six, six + 2, six + 4);
    return true;
}

/* "+HH:MM" / "-HH:MM" (colon optional) into minutes east of UTC. */
static bool ups_offset(const char *s, int *min)
{
    int sign, h, m;

    if ((s[0] != '+' && s[0] != '-') || strlen(s) < 5)
        return false;
    sign = s[0] == '-' ? -1 : 1;
    if (!(s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'))
        return false;
    h = (s[1] - '0') * 10 + (s[2] - '0');
    s += 3;
    if (*s == ':')
        s++;
    if (!all_digits(s, 2))
        return false;
    m = (s[0] - '0') * 10 + (s[1] - '0');
    if (h > 18 || m > 59)
        return false;
    *min = sign * (h * 60 + m);
    return true;
}

/* A real calendar date "YYYY-MM-DD"? (checked through the timestamp parser). */
static bool date_valid(const char *iso)
{
    char ts[32];
    struct track_event tmp;

    memset(&tmp, 0, sizeof(tmp));
    snprintf(ts, sizeof(ts), "%.10sT00:00:00Z", iso);
    return carrier_parse_time(ts, NULL, NULL, &tmp);
}

/* The parts of location.address we keep. */
struct ups_address {
    const char *city;
    const char *postal;
    const char *state;             /* stateProvince: picks the zone in multi-zone countries */
    char cc[3];                    /* countryCode when it is a valid ISO code, else "" */
};

/* Read location.address (loc may be NULL); a country code that is no ISO
 * 3166 country is dropped rather than guessed. */
static enum st_err read_address(json_t *loc, const char *where, struct ups_address *a,
                                char *err, size_t errlen)
{
    char at[224];
    json_t *addr;
    const char *cc;
    enum st_err rc;

    memset(a, 0, sizeof(*a));
    if (loc == NULL)
        return ST_OK;
    if ((rc = cj_opt_object(loc, "address", "ups", where,
                            &addr, err, errlen)) != ST_OK || addr == NULL)
        return rc;
    snprintf(at, sizeof(at), "%s.address", where);
    if ((rc = cj_opt_string(addr, "city", "ups", at, &a->city, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(addr, "postalCode", "ups", at, &a->postal, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(addr, "stateProvince", "ups", at, &a->state, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(addr, "countryCode", "ups", at, &cc, err, errlen)) != ST_OK)
        return rc;
    if (cc == NULL && (rc = cj_opt_string(addr, "country", "ups", at, &cc, err, errlen)) != ST_OK)
        return rc;
    if (cc != NULL && strlen(cc) == 2) {
        a->cc[0] = (char)(cc[0] >= 'a' && cc[0] <= 'z' ? cc[0] - 32 : cc[0]);
        a->cc[1] = (char)(cc[1] >= 'a' && cc[1] <= 'z' ? cc[1] - 32 : cc[1]);
        a->cc[2] = '\0';
        if (!geo_country_valid(a->cc))
            a->cc[0] = '\0';
    }
    if (a->state != NULL && a->state[0] == '\0')
        a->state = NULL;
    return ST_OK;
}

/* The time fields of one activity. */
struct ups_when {
    const char *date, *time;             /* local */
    const char *gmt_date, *gmt_time, *gmt_offset;
};

/* Fill ev's time from w; where names the activity. */
static enum st_err parse_when(const struct ups_when *w, const struct ups_address *a,
                              const char *where, struct track_event *ev, char *err,
                              size_t errlen)
{
    char d[11], t[9], gd[11], gt[9], ts[40], q[40];
    struct track_event gmt;
    int off = 0;
    bool has_off = false, has_gmt = false;

    if (w->date == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "ups: %s.date: missing", where);
    if (!ups_date(w->date, d))
        return st_fail(err, errlen, ST_PERMANENT, "ups: %s.date: expected YYYYMMDD, got \"%s\"",
                       where, carrier_quote(q, sizeof(q), w->date));
    if (w->time == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "ups: %s.time: missing", where);
    if (!ups_time(w->time, t))
        return st_fail(err, errlen, ST_PERMANENT, "ups: %s.time: expected HHMMSS, got \"%s\"",
                       where, carrier_quote(q, sizeof(q), w->time));
    if (w->gmt_offset != NULL && w->gmt_offset[0] != '\0') {
        if (!ups_offset(w->gmt_offset, &off))
            return st_fail(err, errlen, ST_PERMANENT,
                           "ups: %s.gmtOffset: expected +HH:MM, got \"%s\"", where,
                           carrier_quote(q, sizeof(q), w->gmt_offset));
        has_off = true;
    }
    if (w->gmt_date != NULL || w->gmt_time != NULL) {
        if (w->gmt_date == NULL || !ups_date(w->gmt_date, gd))
            return st_fail(err, errlen, ST_PERMANENT, "ups: %s.gmtDate: expected YYYYMMDD, "
                           "got \"%s\"", where, carrier_quote(q, sizeof(q), w->gmt_date));
        if (w->gmt_time == NULL || !ups_time(w->gmt_time, gt))
            return st_fail(err, errlen, ST_PERMANENT, "ups: %s.gmtTime: expected HHMMSS, "
                           "got \"%s\"", where, carrier_quote(q, sizeof(q), w->gmt_time));
        memset(&gmt, 0, sizeof(gmt));
        snprintf(ts, sizeof(ts), "%sT%sZ", gd, gt);
        if (!carrier_parse_time(ts, NULL, NULL, &gmt))
            return st_fail(err, errlen, ST_PERMANENT, "ups: %s.gmtDate/gmtTime: not a real "
                           "time: \"%s\"", where, carrier_quote(q, sizeof(q), ts));
        has_gmt = true;
    }

    /* Local wall time, with the carrier's offset when there is one. */
    if (has_off)
        snprintf(ts, sizeof(ts), "%sT%s%c%02d:%02d", d, t, off < 0 ? '-' : '+',
                 (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
    else
        snprintf(ts, sizeof(ts), "%sT%s", d, t);
    if (!carrier_parse_time(ts, a->cc[0] ? a->cc : NULL, a->state, ev))
        return st_fail(err, errlen, ST_PERMANENT, "ups: %s.date/time: not a real time: \"%s\"",
                       where, carrier_quote(q, sizeof(q), ts));
    if (!has_gmt)
        return ST_OK;
    if (!has_off) { /* the offset is what separates local from GMT time */
        struct track_event wall;
        long diff;

        memset(&wall, 0, sizeof(wall));
        snprintf(ts, sizeof(ts), "%sT%sZ", d, t);
        if (!carrier_parse_time(ts, NULL, NULL, &wall))
            return st_fail(err, errlen, ST_PERMANENT, "ups: %s.date/time: not a real time",
                           where);
        diff = (long)(wall.occurred_at - gmt.occurred_at);
        if (diff % 60 != 0 || diff > 18L * 3600 || diff < -18L * 3600)
            return st_fail(err, errlen, ST_PERMANENT, "ups: %s: local and GMT times are %ld s "
                           "apart", where, diff);
        ev->utc_offset_min = (int)(diff / 60);
    }
    ev->occurred_at = gmt.occurred_at; /* the instant UPS states */
    ev->offset_kind = OFFSET_CARRIER;
    return ST_OK;
}

/* Turn activity[i] of package `where` into an event appended to res. */
static enum st_err parse_activity(json_t *act, const char *pkg_where, size_t i,
                                  struct track_result *res, char *err, size_t errlen)
{
    char where[192], at[208], fold[UPS_FOLD_MAX];
    const char *type, *code, *status_code, *desc;
    json_t *loc, *status;
    struct ups_address addr;
    struct ups_when w;
    struct track_event *ev;
    enum st_err rc;
    size_t o = 0;

    snprintf(where, sizeof(where), "%s.activity[%zu]", pkg_where, i);
    if (!json_is_object(act))
        return st_fail(err, errlen, ST_PERMANENT, "ups: %s: expected an object", where);
    if ((rc = cj_opt_string(act, "date", "ups", where, &w.date, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(act, "time", "ups", where, &w.time, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(act, "gmtDate", "ups", where, &w.gmt_date, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(act, "gmtTime", "ups", where, &w.gmt_time, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(act, "gmtOffset", "ups", where, &w.gmt_offset, err, errlen)) != ST_OK ||
        (rc = cj_opt_object(act, "location", "ups", where, &loc, err, errlen)) != ST_OK ||
        (rc = cj_opt_object(act, "status", "ups", where, &status, err, errlen)) != ST_OK)
        return rc;
    type = code = status_code = desc = NULL;
    if (status != NULL) {
        snprintf(at, sizeof(at), "%s.status", where);
        if ((rc = cj_opt_string(status, "type", "ups", at, &type, err, errlen)) != ST_OK ||
            (rc = cj_opt_string(status, "code", "ups", at, &code, err, errlen)) != ST_OK ||
            (rc = cj_opt_string(status, "statusCode", "ups", at,
                                &status_code, err, errlen)) != ST_OK ||
            (rc = cj_opt_string(status, "description", "ups", at, &desc, err, errlen)) != ST_OK)
            return rc;
    }
    snprintf(at, sizeof(at), "%s.location", where);
    if ((rc = read_address(loc, at, &addr, err, errlen)) != ST_OK)
        return rc;

    if (res->n_events >= CARRIER_MAX_EVENTS)
        return st_fail(err, errlen, ST_PERMANENT, "ups: more than %d activities",
                       CARRIER_MAX_EVENTS);
    if ((ev = track_result_add(res)) == NULL)
        return st_fail(err, errlen, ST_RETRY, "ups: out of memory for %s", where);
    if ((rc = parse_when(&w, &addr, where, ev, err, errlen)) != ST_OK)
        return rc;

    /* Raw code: the 2-character status code, else the detail code, else the type. */
    carrier_copy_text(ev->code, sizeof(ev->code),
                      code != NULL && code[0] ? code
                      : status_code != NULL && status_code[0] ? status_code : type);
    carrier_copy_text(ev->description, sizeof(ev->description), desc);
    carrier_copy_text(ev->city, sizeof(ev->city), addr.city);
    carrier_copy_text(ev->postal_code, sizeof(ev->postal_code), addr.postal);
    memcpy(ev->country, addr.cc, sizeof(ev->country));

    fold[0] = '\0';
    if (desc != NULL)
        wording_fold_append(fold, sizeof(fold), &o, desc);
    normalize_event(ups_type_of(type), code, fold, ev);
    return ST_OK;
}

/* Read package.deliveryDate[] into res->estimated_delivery: RDD, else SDD. */
static enum st_err parse_delivery_dates(json_t *pkg, const char *where,
                                        struct track_result *res, char *err, size_t errlen)
{
    char at[224], q[40], sdd[11] = "", rdd[11] = "";
    json_t *dates;
    enum st_err rc;

    if ((rc = cj_opt_array(pkg, "deliveryDate", "ups", where, &dates, err, errlen)) != ST_OK ||
        dates == NULL)
        return rc;
    for (size_t i = 0; i < json_array_size(dates); i++) {
        json_t *dd = json_array_get(dates, i);
        const char *date, *type;
        char iso[11];

        snprintf(at, sizeof(at), "%s.deliveryDate[%zu]", where, i);
        if (!json_is_object(dd))
            return st_fail(err, errlen, ST_PERMANENT, "ups: %s: expected an object", at);
        if ((rc = cj_opt_string(dd, "date", "ups", at, &date, err, errlen)) != ST_OK ||
            (rc = cj_opt_string(dd, "type", "ups", at, &type, err, errlen)) != ST_OK)
            return rc;
        if (date == NULL || date[0] == '\0')
            continue;
        if (!ups_date(date, iso) || !date_valid(iso))
            return st_fail(err, errlen, ST_PERMANENT, "ups: %s.date: expected YYYYMMDD, "
                           "got \"%s\"", at, carrier_quote(q, sizeof(q), date));
        if (type != NULL && strcmp(type, "RDD") == 0)
            memcpy(rdd, iso, sizeof(rdd));
        else if (type != NULL && strcmp(type, "SDD") == 0)
            memcpy(sdd, iso, sizeof(sdd));
    }
    memcpy(res->estimated_delivery, rdd[0] ? rdd : sdd, sizeof(res->estimated_delivery));
    return ST_OK;
}

/* Fill res from shipment[si].package[pi]. */
static enum st_err parse_package(json_t *pkg, size_t si, size_t pi, struct track_result *res,
                                 char *err, size_t errlen)
{
    char where[96];
    json_t *acts;
    enum st_err rc;

    snprintf(where, sizeof(where), "trackResponse.shipment[%zu].package[%zu]", si, pi);
    res->outcome = TRACK_FOUND;
    res->err = ST_OK;
    if ((rc = parse_delivery_dates(pkg, where, res, err, errlen)) != ST_OK ||
        (rc = cj_opt_array(pkg, "activity", "ups", where, &acts, err, errlen)) != ST_OK)
        return rc;
    for (size_t i = 0; acts != NULL && i < json_array_size(acts); i++)
        if ((rc = parse_activity(json_array_get(acts, i), where, i, res, err, errlen)) != ST_OK)
            return rc;
    track_result_sort_dedupe(res);
    return ST_OK;
}

/* Pick the package of `number` in shipment[si] (else its first) and parse it;
 * a shipment without packages is a number UPS does not know. */
static enum st_err parse_shipment(json_t *shp, size_t si, const char *number,
                                  struct track_result *res, char *err, size_t errlen)
{
    char where[64];
    json_t *pkgs;
    size_t pick = 0;
    enum st_err rc;

    snprintf(where, sizeof(where), "trackResponse.shipment[%zu]", si);
    if ((rc = cj_opt_array(shp, "package", "ups", where, &pkgs, err, errlen)) != ST_OK)
        return rc;
    if (pkgs == NULL || json_array_size(pkgs) == 0) {
        res->outcome = TRACK_NOT_FOUND; /* warnings: "Tracking Information Not Found" */
        return ST_OK;
    }
    for (size_t i = 0; i < json_array_size(pkgs); i++) {
        json_t *p = json_array_get(pkgs, i);
        const char *tn;
        char at[96];

        snprintf(at, sizeof(at), "%s.package[%zu]", where, i);
        if (!json_is_object(p))
            return st_fail(err, errlen, ST_PERMANENT, "ups: %s: expected an object", at);
        if ((rc = cj_opt_string(p, "trackingNumber", "ups", at, &tn, err, errlen)) != ST_OK)
            return rc;
        if (tn != NULL && strcasecmp(tn, number) == 0) {
            pick = i;
            break;
        }
    }
    return parse_package(json_array_get(pkgs, pick), si, pick, res, err, errlen);
}

/* Parse a 200 body: find the shipment of `number` and fill res. */
static enum st_err parse_found(json_t *root, const char *number, struct track_result *res,
                               char *err, size_t errlen)
{
    json_t *tr, *shipments;
    size_t pick = 0;
    enum st_err rc;

    if ((tr = json_object_get(root, "trackResponse")) == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "ups: trackResponse: missing");
    if (!json_is_object(tr))
        return st_fail(err, errlen, ST_PERMANENT, "ups: trackResponse: expected an object");
    if ((shipments = json_object_get(tr, "shipment")) == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "ups: trackResponse.shipment: missing");
    if (!json_is_array(shipments))
        return st_fail(err, errlen, ST_PERMANENT,
                       "ups: trackResponse.shipment: expected an array");
    if (json_array_size(shipments) == 0) {
        res->outcome = TRACK_NOT_FOUND;
        return ST_OK;
    }
    for (size_t i = 0; i < json_array_size(shipments); i++) {
        json_t *s = json_array_get(shipments, i);
        const char *inq;
        char at[64];

        snprintf(at, sizeof(at), "trackResponse.shipment[%zu]", i);
        if (!json_is_object(s))
            return st_fail(err, errlen, ST_PERMANENT, "ups: %s: expected an object", at);
        if ((rc = cj_opt_string(s, "inquiryNumber", "ups", at, &inq, err, errlen)) != ST_OK)
            return rc;
        if (inq != NULL && strcasecmp(inq, number) == 0) {
            pick = i;
            break;
        }
    }
    return parse_shipment(json_array_get(shipments, pick), pick, number, res, err, errlen);
}

/* From a UPS error body {"response":{"errors":[{code,message}]}}, write
 * "CODE message" of the first error into out[cap]. True when the body has
 * that shape. */
static bool ups_error(const char *body, size_t len, char *out, size_t cap)
{
    json_error_t jerr;
    json_t *root, *resp, *errors, *e0, *code, *msg;
    bool ok = false;

    out[0] = '\0';
    if (body == NULL || len == 0 || (root = json_loadb(body, len, 0, &jerr)) == NULL)
        return false;
    resp = json_object_get(root, "response");
    errors = json_is_object(resp) ? json_object_get(resp, "errors") : NULL;
    if (json_is_array(errors)) {
        ok = true;
        e0 = json_array_get(errors, 0);
        if (json_is_object(e0)) {
            char c[32], m[UPS_DETAIL_MAX - 33]; /* "CODE message" fits out[UPS_DETAIL_MAX] */

            code = json_object_get(e0, "code");
            msg = json_object_get(e0, "message");
            carrier_copy_text(c, sizeof(c), json_is_string(code) ? json_string_value(code) : "");
            carrier_copy_text(m, sizeof(m), json_is_string(msg) ? json_string_value(msg) : "");
            snprintf(out, cap, "%s%s%s", c, c[0] && m[0] ? " " : "", m);
        }
    }
    json_decref(root);
    return ok;
}

/* Kind and message of a non-200 answer (shared by tracking and tokens);
 * rejected says what a 401/403 means. */
static enum st_err http_failure(long http_status, const char *rejected, const char *detail,
                                char *err, size_t errlen)
{
    const char *sep = detail[0] ? ": " : "";

    if (http_status == 401 || http_status == 403)
        return st_fail(err, errlen, ST_CONFIG, "ups: %s (HTTP %ld%s%s)", rejected, http_status,
                       sep, detail);
    if (http_status == 429)
        return st_fail(err, errlen, ST_RETRY, "ups: rate limited (HTTP 429%s%s)", sep, detail);
    if (http_status >= 500 && http_status <= 599)
        return st_fail(err, errlen, ST_RETRY, "ups: server error (HTTP %ld%s%s)", http_status,
                       sep, detail);
    return st_fail(err, errlen, ST_PERMANENT, "ups: unexpected HTTP status %ld%s%s",
                   http_status, sep, detail);
}

/* Handle every non-200 tracking answer; returns the kind to report. */
static enum st_err parse_status(long http_status, const char *body, size_t len,
                                struct track_result *results, size_t n, char *err, size_t errlen)
{
    char detail[UPS_DETAIL_MAX];
    bool shaped = ups_error(body, len, detail, sizeof(detail));
    enum st_err kind;

    if (http_status == 404 && shaped) {
        for (size_t i = 0; i < n; i++) {
            track_result_reset(&results[i]);
            results[i].outcome = TRACK_NOT_FOUND;
        }
        return ST_OK;
    }
    if (http_status == 404)
        kind = st_fail(err, errlen, ST_PERMANENT,
                       "ups: HTTP 404 without a UPS errors body (wrong base URL?)");
    else
        kind = http_failure(http_status, "UPS rejected the access token", detail, err, errlen);
    carrier_fail_all(results, n, kind, err);
    return kind;
}

/* carrier_ops.parse_response for UPS. */
static enum st_err ups_parse_response(const struct carrier_ctx *ctx, long http_status,
                                      const char *body, size_t len, const char *const *numbers,
                                      size_t n, struct track_result *results, char *err,
                                      size_t errlen)
{
    (void)ctx;
    return cj_parse_single("ups", UPS_BODY_MAX, http_status, body, len, numbers, n, results,
                           err, errlen, parse_status, parse_found);
}

/* ------------------------------------------------------------------------ */
/* OAuth2 token. */

/* carrier_ops.parse_token_response for UPS: access_token and expires_in (a
 * string of seconds; a number is accepted too). */
static enum st_err ups_parse_token_response(long http_status, const char *body, size_t len,
                                            struct carrier_token *tok, char *err, size_t errlen)
{
    char detail[UPS_DETAIL_MAX], q[40];
    json_t *root, *at, *exp, *type;
    const char *s;
    enum st_err rc = ST_OK;
    long secs = 0;

    memset(tok, 0, sizeof(*tok));
    if (len > UPS_BODY_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "ups: token body of %zu bytes exceeds the "
                       "%u byte cap", len, UPS_BODY_MAX);
    if (http_status != 200) {
        ups_error(body, len, detail, sizeof(detail));
        if (http_status == 400) /* bad client id or grant: an operator must act */
            return st_fail(err, errlen, ST_CONFIG, "ups: token request refused (HTTP 400%s%s)",
                           detail[0] ? ": " : "", detail);
        return http_failure(http_status, "the token endpoint rejected the client id or secret",
                            detail, err, errlen);
    }
    if ((rc = cj_load_body("ups: token", http_status, body, len, JSON_REJECT_DUPLICATES, &root,
                           err, errlen)) != ST_OK)
        return rc;
    if (!json_is_object(root)) {
        rc = st_fail(err, errlen, ST_PERMANENT, "ups: token: body: expected a JSON object");
        goto out;
    }
    at = json_object_get(root, "access_token");
    exp = json_object_get(root, "expires_in");
    type = json_object_get(root, "token_type");
    if (at == NULL) {
        rc = st_fail(err, errlen, ST_PERMANENT, "ups: token: access_token: missing");
        goto out;
    }
    if (!json_is_string(at)) {
        rc = st_fail(err, errlen, ST_PERMANENT, "ups: token: access_token: expected a string");
        goto out;
    }
    s = json_string_value(at);
    if (s[0] == '\0' || strlen(s) >= sizeof(tok->access_token)) {
        rc = st_fail(err, errlen, ST_PERMANENT, "ups: token: access_token: empty or longer "
                     "than %zu bytes", sizeof(tok->access_token) - 1);
        goto out;
    }
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            rc = st_fail(err, errlen, ST_PERMANENT,
                         "ups: token: access_token: holds spaces or control characters");
            goto out;
        }
    if (type != NULL && !(json_is_string(type) && strcasecmp(json_string_value(type),
                                                             "Bearer") == 0)) {
        rc = st_fail(err, errlen, ST_PERMANENT, "ups: token: token_type: expected \"Bearer\"");
        goto out;
    }
    if (json_is_string(exp)) {
        const char *e = json_string_value(exp);
        char *end;

        secs = strtol(e, &end, 10);
        if (e[0] < '0' || e[0] > '9' || *end != '\0' || secs < 0 || secs > 10L * 365 * 86400) {
            rc = st_fail(err, errlen, ST_PERMANENT, "ups: token: expires_in: expected seconds, "
                         "got \"%s\"", carrier_quote(q, sizeof(q), e));
            goto out;
        }
    } else if (json_is_integer(exp)) {
        json_int_t v = json_integer_value(exp);

        if (v < 0 || v > 10LL * 365 * 86400) {
            rc = st_fail(err, errlen, ST_PERMANENT, "ups: token: expires_in: out of range");
            goto out;
        }
        secs = (long)v;
    } else if (exp != NULL && !json_is_null(exp)) {
        rc = st_fail(err, errlen, ST_PERMANENT, "ups: token: expires_in: expected a string "
                     "of seconds");
        goto out;
    }
    memcpy(tok->access_token, s, strlen(s) + 1);
    tok->expires_in_s = secs;
out:
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Requests. */

/* True when s has a control character (or DEL). */
static bool has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* Start req: method and "{base}{path}" without a trailing slash on base. */
static enum st_err start_request(const struct carrier_ctx *ctx, int method, const char *path,
                                 struct carrier_request *req, size_t *o, char *err,
                                 size_t errlen)
{
    const char *base = ctx->base_url && ctx->base_url[0] ? ctx->base_url : UPS_DEFAULT_BASE;
    size_t blen = strlen(base);

    if (has_control(base))
        return st_fail(err, errlen, ST_CONFIG, "ups: base URL holds control characters");
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    if (blen + 1 >= sizeof(req->url))
        return st_fail(err, errlen, ST_CONFIG, "ups: base URL too long");
    memset(req, 0, sizeof(*req));
    req->method = method == CARRIER_POST ? CARRIER_POST : CARRIER_GET;
    memcpy(req->url, base, blen);
    req->url[blen] = '\0';
    *o = blen;
    if (!carrier_url_append(req->url, sizeof(req->url), o, path))
        return st_fail(err, errlen, ST_PERMANENT, "ups: request URL longer than %d bytes",
                       CARRIER_URL_MAX - 1);
    return ST_OK;
}

/* True when a tracking number holds 7..34 letters and digits. */
static bool number_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < UPS_NUMBER_MIN || n > UPS_NUMBER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/* A transId unique per request: time, process and a counter (<= 32 chars). */
static void trans_id(char out[40])
{
    static atomic_ulong seq;
    unsigned long k = atomic_fetch_add(&seq, 1) + 1;

    snprintf(out, 40, "st%08lx%06lx%08lx", (unsigned long)time(NULL) & 0xFFFFFFFFUL,
             (unsigned long)getpid() & 0xFFFFFFUL, k & 0xFFFFFFFFUL);
}

/* carrier_ops.build_request for UPS: GET {base}/api/track/v1/details/N?locale=en_US
 * with the bearer token, transId, transactionSrc and Accept headers. */
static enum st_err ups_build_request(const struct carrier_ctx *ctx, const char *const *numbers,
                                     size_t n, struct carrier_request *req, char *err,
                                     size_t errlen)
{
    char q[80], bearer[CARRIER_HEADER_MAX], tid[40];
    size_t o;
    enum st_err rc;

    if (ctx->access_token == NULL || ctx->access_token[0] == '\0')
        return st_fail(err, errlen, ST_CONFIG, "ups: no OAuth2 access token (fetch one first)");
    if (has_control(ctx->access_token) || strchr(ctx->access_token, ' ') != NULL)
        return st_fail(err, errlen, ST_CONFIG, "ups: access token holds spaces or control "
                       "characters");
    if (strlen(ctx->access_token) + 8 >= sizeof(bearer))
        return st_fail(err, errlen, ST_CONFIG, "ups: access token longer than %zu bytes",
                       sizeof(bearer) - 9);
    if (n != 1)
        return st_fail(err, errlen, ST_PERMANENT, "ups: one number per request, got %zu", n);
    if (!number_ok(numbers[0]))
        return st_fail(err, errlen, ST_PERMANENT,
                       "ups: tracking number \"%s\": %d to %d letters and digits expected",
                       carrier_quote(q, sizeof(q), numbers[0]), UPS_NUMBER_MIN, UPS_NUMBER_MAX);
    if ((rc = start_request(ctx, CARRIER_GET, "/api/track/v1/details/", req, &o, err,
                            errlen)) != ST_OK)
        return rc;
    if (!carrier_url_encode(req->url, sizeof(req->url), &o, numbers[0]) ||
        !carrier_url_append(req->url, sizeof(req->url), &o, "?locale=en_US"))
        return st_fail(err, errlen, ST_PERMANENT, "ups: request URL longer than %d bytes",
                       CARRIER_URL_MAX - 1);
    snprintf(bearer, sizeof(bearer), "Bearer %s", ctx->access_token);
    trans_id(tid);
    if ((rc = carrier_request_header(req, "Authorization", bearer, err, errlen)) != ST_OK)
        return ST_CONFIG;
    if ((rc = carrier_request_header(req, "transId", tid, err, errlen)) != ST_OK ||
        (rc = carrier_request_header(req, "transactionSrc", UPS_TRANS_SRC, err, errlen)) !=
            ST_OK)
        return rc;
    return carrier_request_header(req, "Accept", "application/json", err, errlen);
}

/* Base64 (RFC 4648, padded) of src[0..n) into out[cap]; false when it does not fit. */
static bool base64(const unsigned char *src, size_t n, char *out, size_t cap)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;

    if ((n + 2) / 3 * 4 >= cap)
        return false;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16;

        if (i + 1 < n)
            v |= (uint32_t)src[i + 1] << 8;
        if (i + 2 < n)
            v |= src[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return true;
}

/* carrier_ops.build_token_request for UPS: POST {base}/security/v1/oauth/token,
 * HTTP basic client_id:client_secret, form grant_type=client_credentials. */
static enum st_err ups_build_token_request(const struct carrier_ctx *ctx,
                                           struct carrier_request *req, char *err,
                                           size_t errlen)
{
    static const char form[] = "grant_type=client_credentials";
    char pair[2 * UPS_CRED_MAX + 2], b64[(sizeof(pair) + 2) / 3 * 4 + 1];
    char basic[sizeof(b64) + 8];
    size_t o, idlen, seclen;
    enum st_err rc;

    if (ctx->client_id == NULL || ctx->client_id[0] == '\0' || ctx->client_secret == NULL ||
        ctx->client_secret[0] == '\0')
        return st_fail(err, errlen, ST_CONFIG, "ups: no OAuth2 client id and secret configured");
    idlen = strlen(ctx->client_id);
    seclen = strlen(ctx->client_secret);
    if (has_control(ctx->client_id) || has_control(ctx->client_secret))
        return st_fail(err, errlen, ST_CONFIG, "ups: client id or secret holds control "
                       "characters");
    if (strchr(ctx->client_id, ':') != NULL) /* RFC 7617: the user-id has no colon */
        return st_fail(err, errlen, ST_CONFIG, "ups: client id holds a ':'");
    if (idlen > UPS_CRED_MAX || seclen > UPS_CRED_MAX)
        return st_fail(err, errlen, ST_CONFIG, "ups: client id or secret longer than %d bytes",
                       UPS_CRED_MAX);
    memcpy(pair, ctx->client_id, idlen);
    pair[idlen] = ':';
    memcpy(pair + idlen + 1, ctx->client_secret, seclen + 1);
    if (!base64((const unsigned char *)pair, idlen + 1 + seclen, b64, sizeof(b64)))
        return st_fail(err, errlen, ST_CONFIG, "ups: client credentials too long");
    snprintf(basic, sizeof(basic), "Basic %s", b64);
    /* do not leave the secret on the stack; req->headers keeps the one copy */
    explicit_bzero(pair, sizeof(pair));
    explicit_bzero(b64, sizeof(b64));
    rc = start_request(ctx, CARRIER_POST, "/security/v1/oauth/token", req, &o, err, errlen);
    if (rc == ST_OK && carrier_request_header(req, "Authorization", basic, err, errlen) != ST_OK)
        rc = ST_CONFIG;
    explicit_bzero(basic, sizeof(basic));
    if (rc != ST_OK)
        return rc;
    if ((rc = carrier_request_header(req, "Content-Type", "application/x-www-form-urlencoded",
                                     err, errlen)) != ST_OK ||
        (rc = carrier_request_header(req, "Accept", "application/json", err, errlen)) != ST_OK)
        return rc;
    return carrier_request_body(req, form, sizeof(form) - 1, err, errlen);
}

static const struct carrier_ops ups_ops = {
    .build_request = ups_build_request,
    .parse_response = ups_parse_response,
    .build_token_request = ups_build_token_request,
    .parse_token_response = ups_parse_token_response,
};

const struct carrier_def carrier_ups = {
    .name = "ups",
    .display_name = "UPS (Track v1)",
    .ops = &ups_ops,
    .batch_max = 1,
    .rate_per_sec = 10.0,
    .rate_per_day = 0, /* UPS documents no daily quota; 429 says when one is hit */
    .auth = CARRIER_AUTH_OAUTH2,
    .default_base_url = UPS_DEFAULT_BASE,
};
