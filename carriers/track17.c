/*
 * track17.c - driver for the 17TRACK API v2.2 aggregator (api.17track.net).
 *
 * 17TRACK follows parcels of 2,000+ carriers and posts, but only numbers it
 * has been told about: POST {base}/track/v2.2/register first, then POST
 * {base}/track/v2.2/gettrackinfo. Both take a JSON array of {"number"} (the
 * optional numeric "carrier" key is left out: 17TRACK detects it), at most
 * 40 per call, with the key in the `17token` header.
 *
 * Facts relied on (CARRIERS.md; "unconfirmed" ones are tolerated, not required):
 *   - answers are {code, data:{accepted[], rejected[]}}; code 0 means the call
 *     itself worked; each number is either accepted or rejected{error{code,
 *     message}}, in no promised order, so results are matched by number.
 *   - register: rejected code -18019901 means "already registered" and counts
 *     as registered (unconfirmed).
 *   - gettrackinfo: rejected -18019902 "not registered" becomes
 *     TRACK_NEEDS_REGISTER, -18019909 "no information yet" TRACK_NOT_FOUND
 *     (both unconfirmed); any other rejection code is kept in a TRACK_ERROR
 *     of kind ST_RETRY. A top-level code -18010014 (more than 40 numbers) is
 *     our bug: ST_PERMANENT; other non-zero top-level codes ST_RETRY.
 *   - accepted[].track_info: latest_status{status,sub_status},
 *     time_metrics.estimated_delivery_date{from,to}, and tracking.providers[]
 *     (one per carrier that handled the parcel, e.g. origin post and
 *     destination post), each with events[] newest first: time_iso (local
 *     time with offset), time_utc, time_raw{date,time,timezone}, description,
 *     location, stage, sub_status, address{country,state,city,postal_code}.
 *   - status NotFound with no events means 17TRACK has nothing yet:
 *     TRACK_NOT_FOUND.
 *
 * Normalization: an event's sub_status (else its stage) picks the status;
 * the words only refine the substatus inside it (e.g. InTransit_Other that
 * says "departed from the sort facility"), except customs, which 17TRACK's
 * classifier often leaves in InTransit_Other or Exception_*: customs wording
 * (wording.h) makes those customs events, holds with status "held".
 * InTransit_CustomsRequiringInformation is a hold (documents unless the words
 * say duties, inspection, prohibited), InTransit_CustomsReleased a release.
 * A sub_status this file does not know is kept with substatus "unmapped",
 * affects_status false and the raw code and words; its status field is then
 * the neutral "pending" and means nothing.
 *
 * Timestamps: time_iso when present (it carries the offset); else time_raw
 * date+time, with its timezone when that is an offset; without one the zone
 * is derived from address.country (+ state) or recorded as unknown
 * (carrier_parse_time), never guessed; time_utc only as a last resort.
 *
 * HTTP statuses: 200 is parsed; 401/403 ST_CONFIG; 429 and 5xx ST_RETRY;
 * anything else, and any malformed body, ST_PERMANENT naming the JSON path.
 *
 * Quotas: about 3 requests/s (unconfirmed). 17TRACK bills per registered
 * number, not per request, so there is no daily request quota (rate_per_day
 * 0); the plan's registration allowance is enforced by 17TRACK on register.
 *
 * No network I/O here. Bodies above T17_BODY_MAX are refused.
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

#define T17_BODY_MAX     (4u * 1024u * 1024u) /* largest body we parse */
#define T17_BATCH_MAX    40                   /* numbers per call, 17TRACK's limit */
#define T17_NUMBER_MAX   64                   /* longest tracking number accepted */
#define T17_FOLD_MAX     2048                 /* folded text scanned for keywords */
/* JSON paths in messages, sized for the deepest path at each level:
 * data.accepted[N].track_info (entry), + .tracking.providers[N] (provider),
 * + .events[N] (event), + .time_raw / .address (field); N up to 20 digits. */
#define T17_PATH_ENTRY    64
#define T17_PATH_PROVIDER 128
#define T17_PATH_EVENT    192
#define T17_PATH_FIELD    224
#define T17_QUOTE_MAX    96                   /* carrier text quoted in messages */

/* Error codes 17TRACK documents (all unconfirmed, see the header). */
#define T17_ERR_ALREADY_REGISTERED (-18019901L)
#define T17_ERR_NOT_REGISTERED     (-18019902L)
#define T17_ERR_NO_INFO_YET        (-18019909L)
#define T17_ERR_OVER_LIMIT         (-18010014L)

/* ------------------------------------------------------------------------ */
/* Normalization of one event. */

/* What a 17TRACK sub_status (or stage) means before the words are read. */
enum t17_kind {
    K_UNKNOWN = 0,
    K_INFO_RECEIVED,
    K_PICKED_UP,
    K_TRANSIT_OTHER,
    K_DEPARTURE,          /* left the origin country */
    K_ARRIVAL,            /* reached the destination country */
    K_CUSTOMS_PROCESSING,
    K_CUSTOMS_RELEASED,
    K_CUSTOMS_INFO,       /* customs requires information: a hold */
    K_PICKUP_POINT,
    K_OUT_FOR_DELIVERY,
    K_FAIL_OTHER,
    K_FAIL_NOBODY,
    K_FAIL_SECURITY,
    K_FAIL_REJECTED,
    K_FAIL_ADDRESS,
    K_DELIVERED,
    K_EXPIRED,
    K_EXC_OTHER,
    K_EXC_RETURNING,
    K_EXC_RETURNED,
    K_EXC_NOBODY,
    K_EXC_SECURITY,
    K_EXC_DAMAGE,
    K_EXC_REJECTED,
    K_EXC_DELAYED,
    K_EXC_LOST,
    K_EXC_DESTROYED,
    K_EXC_CANCEL
};

/* A sub_status or stage name and its kind. */
struct t17_code {
    const char *name;
    enum t17_kind kind;
};

/* sub_status values of API v2.2. */
static const struct t17_code sub_statuses[] = {
    { "InfoReceived", K_INFO_RECEIVED },
    { "InTransit_PickedUp", K_PICKED_UP },
    { "InTransit_Other", K_TRANSIT_OTHER },
    { "InTransit_Departure", K_DEPARTURE },
    { "InTransit_Arrival", K_ARRIVAL },
    { "InTransit_CustomsProcessing", K_CUSTOMS_PROCESSING },
    { "InTransit_CustomsReleased", K_CUSTOMS_RELEASED },
    { "InTransit_CustomsRequiringInformation", K_CUSTOMS_INFO },
    { "AvailableForPickup_Other", K_PICKUP_POINT },
    { "OutForDelivery_Other", K_OUT_FOR_DELIVERY },
    { "DeliveryFailure_Other", K_FAIL_OTHER },
    { "DeliveryFailure_NoBody", K_FAIL_NOBODY },
    { "DeliveryFailure_Security", K_FAIL_SECURITY },
    { "DeliveryFailure_Rejected", K_FAIL_REJECTED },
    { "DeliveryFailure_InvalidAddress", K_FAIL_ADDRESS },
    { "Delivered_Other", K_DELIVERED },
    { "Expired_Other", K_EXPIRED },
    { "Exception_Other", K_EXC_OTHER },
    { "Exception_Returning", K_EXC_RETURNING },
    { "Exception_Returned", K_EXC_RETURNED },
    { "Exception_NoBody", K_EXC_NOBODY },
    { "Exception_Security", K_EXC_SECURITY },
    { "Exception_Damage", K_EXC_DAMAGE },
    { "Exception_Rejected", K_EXC_REJECTED },
    { "Exception_Delayed", K_EXC_DELAYED },
    { "Exception_Lost", K_EXC_LOST },
    { "Exception_Destroyed", K_EXC_DESTROYED },
    { "Exception_Cancel", K_EXC_CANCEL },
};

/* Milestone stages, used only when an event has no sub_status. */
static const struct t17_code stages[] = {
    { "InfoReceived", K_INFO_RECEIVED },
    { "PickedUp", K_PICKED_UP },
    { "Departure", K_DEPARTURE },
    { "Arrival", K_ARRIVAL },
    { "AvailableForPickup", K_PICKUP_POINT },
    { "OutForDelivery", K_OUT_FOR_DELIVERY },
    { "Delivered", K_DELIVERED },
    { "Returning", K_EXC_RETURNING },
    { "Returned", K_EXC_RETURNED },
};

/* Kind of name in table[0..n); K_UNKNOWN when absent or unknown. */
static enum t17_kind kind_of(const char *name, const struct t17_code *table, size_t n)
{
    for (size_t i = 0; name != NULL && i < n; i++)
        if (strcmp(table[i].name, name) == 0)
            return table[i].kind;
    return K_UNKNOWN;
}

/* Set status and substatus. */
static void set(struct track_event *ev, enum st_status s, enum st_substatus sub)
{
    ev->status = s;
    ev->substatus = sub;
}

/* Apply rule set `rules` to text, keeping the result only when its status is
 * `keep` (the code's status stands; words refine the substatus only). */
static void refine(const char *text, enum wording_rules rules, enum st_status keep,
                   struct track_event *ev)
{
    struct track_event t = *ev;

    if (wording_apply(text, rules, &t) && t.status == keep)
        set(ev, t.status, t.substatus);
}

/* Customs classification under a code that already says customs: the words
 * pick the reason; `fallback` applies when they say nothing specific or
 * contradict the code (a release under "processing", say). */
static void customs_event(const char *text, enum st_status status, enum st_substatus fallback,
                          bool allow_release, struct track_event *ev)
{
    wording_classify_customs(text, ev);
    if (ev->substatus == ST_SUB_CUSTOMS_PROCESSING ||
        (ev->substatus == ST_SUB_CUSTOMS_RELEASED && !allow_release))
        set(ev, status, fallback);
}

/* Set ev's status, substatus, customs and affects_status from the kind and
 * the folded words. */
static void normalize_event(enum t17_kind k, const char *text, struct track_event *ev)
{
    bool customs = wording_has(text, W_CUSTOMS);

    ev->affects_status = true;
    ev->customs = false;
    switch (k) {
    case K_INFO_RECEIVED:
        set(ev, ST_STATUS_INFO_RECEIVED, ST_SUB_LABEL_CREATED);
        return;
    case K_PICKED_UP:
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP);
        return;
    case K_TRANSIT_OTHER:
        if (customs) {
            wording_classify_customs(text, ev);
            return;
        }
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_IN_TRANSIT);
        refine(text, WR_TRANSIT, ST_STATUS_IN_TRANSIT, ev);
        return;
    case K_DEPARTURE:
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_DEPARTED_ORIGIN_COUNTRY);
        return;
    case K_ARRIVAL:
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_ARRIVED_DESTINATION_COUNTRY);
        return;
    case K_CUSTOMS_PROCESSING:
        customs_event(text, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_PROCESSING, false, ev);
        return;
    case K_CUSTOMS_INFO:
        customs_event(text, ST_STATUS_HELD, ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED, false, ev);
        return;
    case K_CUSTOMS_RELEASED:
        ev->customs = true;
        set(ev, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED);
        return;
    case K_PICKUP_POINT:
        set(ev, ST_STATUS_AVAILABLE_FOR_PICKUP, ST_SUB_AT_PICKUP_POINT);
        return;
    case K_OUT_FOR_DELIVERY:
        set(ev, ST_STATUS_OUT_FOR_DELIVERY, ST_SUB_OUT_FOR_DELIVERY);
        return;
    case K_FAIL_OTHER:
    case K_FAIL_SECURITY:
        set(ev, ST_STATUS_ATTEMPT_FAILED, ST_SUB_NONE);
        wording_refine_attempt(text, ev);
        return;
    case K_FAIL_NOBODY:
        set(ev, ST_STATUS_ATTEMPT_FAILED, ST_SUB_RECIPIENT_UNAVAILABLE);
        return;
    case K_FAIL_REJECTED:
        set(ev, ST_STATUS_ATTEMPT_FAILED, ST_SUB_REFUSED);
        return;
    case K_FAIL_ADDRESS:
        set(ev, ST_STATUS_ATTEMPT_FAILED, ST_SUB_ADDRESS_ISSUE);
        return;
    case K_DELIVERED:
        set(ev, ST_STATUS_DELIVERED, ST_SUB_DELIVERED);
        refine(text, WR_DELIVERED, ST_STATUS_DELIVERED, ev);
        return;
    case K_EXPIRED:
        set(ev, ST_STATUS_EXPIRED, ST_SUB_NONE);
        return;
    case K_EXC_RETURNING:
        ev->customs = customs;
        set(ev, ST_STATUS_RETURNING, ST_SUB_RETURN_TO_SENDER);
        return;
    case K_EXC_RETURNED:
        ev->customs = customs;
        set(ev, ST_STATUS_RETURNED, ST_SUB_RETURNED_TO_SENDER);
        return;
    case K_EXC_CANCEL:
        set(ev, ST_STATUS_CANCELLED, ST_SUB_NONE);
        return;
    case K_EXC_OTHER:
    case K_EXC_NOBODY:
    case K_EXC_SECURITY:
    case K_EXC_DAMAGE:
    case K_EXC_REJECTED:
    case K_EXC_DELAYED:
    case K_EXC_LOST:
    case K_EXC_DESTROYED:
        if (customs) { /* held, refused or destroyed by customs */
            wording_classify_customs(text, ev);
            if (ev->substatus == ST_SUB_CUSTOMS_PROCESSING)
                set(ev, ST_STATUS_HELD, k == K_EXC_DELAYED ? ST_SUB_CUSTOMS_DELAY
                                                           : ST_SUB_CUSTOMS_INSPECTION);
            if (k == K_EXC_DESTROYED || k == K_EXC_REJECTED)
                set(ev, ST_STATUS_HELD, ST_SUB_CUSTOMS_PROHIBITED);
            return;
        }
        set(ev, ST_STATUS_EXCEPTION, k == K_EXC_NOBODY     ? ST_SUB_RECIPIENT_UNAVAILABLE
                                     : k == K_EXC_DAMAGE   ? ST_SUB_DAMAGED
                                     : k == K_EXC_REJECTED ? ST_SUB_REFUSED
                                     : k == K_EXC_LOST     ? ST_SUB_LOST
                                     : k == K_EXC_DELAYED  ? ST_SUB_CARRIER_DELAY
                                                           : ST_SUB_NONE);
        if (k == K_EXC_DELAYED && wording_has(text, W_WEATHER))
            ev->substatus = ST_SUB_WEATHER_DELAY;
        else if (k == K_EXC_OTHER)
            refine(text, WR_FAILURE, ST_STATUS_EXCEPTION, ev);
        return;
    case K_UNKNOWN:
        break;
    }
    /* Stored and counted, never drives the shipment's status. */
    set(ev, ST_STATUS_PENDING, ST_SUB_UNMAPPED);
    ev->affects_status = false;
}

/* ------------------------------------------------------------------------ */
/* Reading fields (typed JSON access with messages that say where: cjson.h). */

/* The parts of an event's address we keep. */
struct t17_address {
    const char *city;
    const char *postal;
    const char *state;          /* region for zone derivation */
    char cc[3];                 /* valid ISO 3166 code, else "" */
};

/* Read ev.address (absent parts stay empty; an unknown country is dropped
 * rather than guessed). */
static enum st_err read_address(json_t *jev, const char *where, struct t17_address *a, char *err,
                                size_t errlen)
{
    char at[T17_PATH_FIELD];
    json_t *addr;
    const char *cc;
    enum st_err rc;

    memset(a, 0, sizeof(*a));
    if ((rc = cj_opt_object(jev, "address", "track17", where, &addr, err, errlen)) != ST_OK ||
        addr == NULL)
        return rc;
    snprintf(at, sizeof(at), "%s.address", where);
    if ((rc = cj_opt_string(addr, "city", "track17", at, &a->city, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(addr, "postal_code", "track17", at,
                            &a->postal, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(addr, "state", "track17", at, &a->state, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(addr, "country", "track17", at, &cc, err, errlen)) != ST_OK)
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

/* Fill ev's time from time_iso, else time_raw, else time_utc. */
static enum st_err event_time(json_t *jev, const char *where, const struct t17_address *a,
                              struct track_event *ev, char *err, size_t errlen)
{
    const char *cc = a->cc[0] ? a->cc : NULL;
    const char *iso, *utc, *date = NULL, *tod = NULL, *tz = NULL;
    char at[T17_PATH_FIELD], q[T17_QUOTE_MAX], composed[96];
    json_t *raw;
    enum st_err rc;

    if ((rc = cj_opt_string(jev, "time_iso", "track17", where, &iso, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "time_utc", "track17", where, &utc, err, errlen)) != ST_OK ||
        (rc = cj_opt_object(jev, "time_raw", "track17", where, &raw, err, errlen)) != ST_OK)
        return rc;
    if (raw != NULL) {
        snprintf(at, sizeof(at), "%s.time_raw", where);
        if ((rc = cj_opt_string(raw, "date", "track17", at, &date, err, errlen)) != ST_OK ||
            (rc = cj_opt_string(raw, "time", "track17", at, &tod, err, errlen)) != ST_OK ||
            (rc = cj_opt_string(raw, "timezone", "track17", at, &tz, err, errlen)) != ST_OK)
            return rc;
    }
    if (iso != NULL && iso[0] != '\0') {
        if (!carrier_parse_time(iso, cc, a->state, ev))
            return st_fail(err, errlen, ST_PERMANENT,
                           "track17: %s.time_iso: not an ISO 8601 time: \"%s\"", where,
                           carrier_quote(q, sizeof(q), iso));
        return ST_OK;
    }
    if (date != NULL && date[0] != '\0') {
        if (tod == NULL || tod[0] == '\0')
            return st_fail(err, errlen, ST_PERMANENT, "track17: %s.time_raw.time: missing",
                           where);
        if (strlen(date) > 10 || strlen(tod) > 15)
            return st_fail(err, errlen, ST_PERMANENT,
                           "track17: %s.time_raw: expected YYYY-MM-DD and HH:MM[:SS]", where);
        /* An offset-shaped timezone is used; anything else ("GMT+8"?) is
         * ignored and the zone derived from the place instead. */
        if (tz != NULL && tz[0] != '\0' && strlen(tz) <= 6) {
            snprintf(composed, sizeof(composed), "%sT%s%s", date, tod, tz);
            if (carrier_parse_time(composed, cc, a->state, ev))
                return ST_OK;
        }
        snprintf(composed, sizeof(composed), "%sT%s", date, tod);
        if (!carrier_parse_time(composed, cc, a->state, ev))
            return st_fail(err, errlen, ST_PERMANENT,
                           "track17: %s.time_raw: not a date and time: \"%s\"", where,
                           carrier_quote(q, sizeof(q), composed));
        return ST_OK;
    }
    if (utc != NULL && utc[0] != '\0') {
        if (!carrier_parse_time(utc, cc, a->state, ev))
            return st_fail(err, errlen, ST_PERMANENT,
                           "track17: %s.time_utc: not an ISO 8601 time: \"%s\"", where,
                           carrier_quote(q, sizeof(q), utc));
        return ST_OK;
    }
    return st_fail(err, errlen, ST_PERMANENT, "track17: %s: no time_iso, time_raw or time_utc",
                   where);
}

/* Turn one event object into a track_event appended to res. */
static enum st_err parse_event(json_t *jev, const char *where, struct track_result *res,
                               char *err, size_t errlen)
{
    char fold[T17_FOLD_MAX];
    const char *sub, *stage, *desc, *location;
    struct t17_address addr;
    struct track_event *ev;
    enum t17_kind kind;
    size_t o = 0;
    enum st_err rc;

    if (!json_is_object(jev))
        return st_fail(err, errlen, ST_PERMANENT, "track17: %s: expected an object", where);
    if ((rc = cj_opt_string(jev, "sub_status", "track17", where, &sub, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "stage", "track17", where, &stage, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "description", "track17", where, &desc, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(jev, "location", "track17", where, &location, err, errlen)) != ST_OK ||
        (rc = read_address(jev, where, &addr, err, errlen)) != ST_OK)
        return rc;
    if (res->n_events >= CARRIER_MAX_EVENTS)
        return st_fail(err, errlen, ST_PERMANENT, "track17: more than %d events",
                       CARRIER_MAX_EVENTS);
    if ((ev = track_result_add(res)) == NULL)
        return st_fail(err, errlen, ST_RETRY, "track17: out of memory for %s", where);
    if ((rc = event_time(jev, where, &addr, ev, err, errlen)) != ST_OK)
        return rc;

    if (sub != NULL && sub[0] != '\0') {
        kind = kind_of(sub, sub_statuses, sizeof(sub_statuses) / sizeof(sub_statuses[0]));
        carrier_copy_text(ev->code, sizeof(ev->code), sub);
    } else {
        kind = kind_of(stage, stages, sizeof(stages) / sizeof(stages[0]));
        carrier_copy_text(ev->code, sizeof(ev->code), stage);
    }
    carrier_copy_text(ev->description, sizeof(ev->description), desc);
    carrier_copy_text(ev->city, sizeof(ev->city),
                      addr.city != NULL && addr.city[0] != '\0' ? addr.city : location);
    carrier_copy_text(ev->postal_code, sizeof(ev->postal_code), addr.postal);
    memcpy(ev->country, addr.cc, sizeof(ev->country));

    fold[0] = '\0';
    if (desc != NULL)
        wording_fold_append(fold, sizeof(fold), &o, desc);
    normalize_event(kind, fold, ev);
    return ST_OK;
}

/* track_info.time_metrics.estimated_delivery_date: the end of the window,
 * else its start, as a date. */
static enum st_err parse_edd(json_t *info, const char *where, struct track_result *res,
                             char *err, size_t errlen)
{
    char at[T17_PATH_PROVIDER], q[T17_QUOTE_MAX];
    json_t *metrics, *window;
    const char *from, *to, *pick;
    enum st_err rc;

    if ((rc = cj_opt_object(info, "time_metrics", "track17", where,
                            &metrics, err, errlen)) != ST_OK ||
        metrics == NULL)
        return rc;
    snprintf(at, sizeof(at), "%s.time_metrics", where);
    if ((rc = cj_opt_object(metrics, "estimated_delivery_date", "track17", at, &window, err,
                            errlen)) != ST_OK ||
        window == NULL)
        return rc;
    snprintf(at, sizeof(at), "%s.time_metrics.estimated_delivery_date", where);
    if ((rc = cj_opt_string(window, "from", "track17", at, &from, err, errlen)) != ST_OK ||
        (rc = cj_opt_string(window, "to", "track17", at, &to, err, errlen)) != ST_OK)
        return rc;
    pick = to != NULL && to[0] != '\0' ? to : from;
    if (pick == NULL || pick[0] == '\0')
        return ST_OK;
    if (!carrier_date_part(pick, CARRIER_DATE_EPOCH, res->estimated_delivery))
        return st_fail(err, errlen, ST_PERMANENT, "track17: %s.%s: not a date: \"%s\"", at,
                       pick == to ? "to" : "from", carrier_quote(q, sizeof(q), pick));
    return ST_OK;
}

/* Fill res from accepted[idx] (an object). */
static enum st_err parse_accepted(json_t *acc, size_t idx, struct track_result *res, char *err,
                                  size_t errlen)
{
    char where[T17_PATH_ENTRY], at[T17_PATH_PROVIDER];
    json_t *info, *latest, *tracking, *providers;
    const char *status = NULL;
    enum st_err rc;

    track_result_reset(res);
    res->outcome = TRACK_FOUND;
    res->err = ST_OK;
    snprintf(where, sizeof(where), "data.accepted[%zu]", idx);
    if ((rc = cj_opt_object(acc, "track_info", "track17", where, &info, err, errlen)) != ST_OK)
        return rc;
    if (info == NULL) {
        res->outcome = TRACK_NOT_FOUND;
        return ST_OK;
    }
    snprintf(where, sizeof(where), "data.accepted[%zu].track_info", idx);
    if ((rc = cj_opt_object(info, "latest_status", "track17", where,
                            &latest, err, errlen)) != ST_OK ||
        (rc = cj_opt_object(info, "tracking", "track17", where, &tracking, err, errlen)) != ST_OK ||
        (rc = parse_edd(info, where, res, err, errlen)) != ST_OK)
        return rc;
    if (latest != NULL) {
        snprintf(at, sizeof(at), "%s.latest_status", where);
        if ((rc = cj_opt_string(latest, "status", "track17", at, &status, err, errlen)) != ST_OK)
            return rc;
    }
    providers = NULL;
    if (tracking != NULL) {
        snprintf(at, sizeof(at), "%s.tracking", where);
        if ((rc = cj_opt_array(tracking, "providers", "track17", at,
                               &providers, err, errlen)) != ST_OK)
            return rc;
    }
    for (size_t p = 0; providers != NULL && p < json_array_size(providers); p++) {
        json_t *prov = json_array_get(providers, p), *events;

        snprintf(at, sizeof(at), "%s.tracking.providers[%zu]", where, p);
        if (!json_is_object(prov))
            return st_fail(err, errlen, ST_PERMANENT, "track17: %s: expected an object", at);
        if ((rc = cj_opt_array(prov, "events", "track17", at, &events, err, errlen)) != ST_OK)
            return rc;
        for (size_t e = 0; events != NULL && e < json_array_size(events); e++) {
            char evat[T17_PATH_EVENT];

            snprintf(evat, sizeof(evat), "%s.events[%zu]", at, e);
            if ((rc = parse_event(json_array_get(events, e), evat, res, err, errlen)) != ST_OK)
                return rc;
        }
    }
    if (res->n_events == 0 && status != NULL && strcmp(status, "NotFound") == 0) {
        res->outcome = TRACK_NOT_FOUND;
        res->estimated_delivery[0] = '\0';
        return ST_OK;
    }
    track_result_sort_dedupe(res);
    return ST_OK;
}

/* Read rejected[idx].error{code,message} into *code and msg[cap]. */
static enum st_err read_rejection(json_t *rej, size_t idx, long *code, char *msg, size_t cap,
                                  char *err, size_t errlen)
{
    char where[T17_PATH_ENTRY];
    json_t *e, *c;
    const char *m;
    enum st_err rc;

    snprintf(where, sizeof(where), "data.rejected[%zu]", idx);
    if ((rc = cj_opt_object(rej, "error", "track17", where, &e, err, errlen)) != ST_OK)
        return rc;
    if (e == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "track17: %s.error: missing", where);
    snprintf(where, sizeof(where), "data.rejected[%zu].error", idx);
    c = json_object_get(e, "code");
    if (!json_is_integer(c))
        return st_fail(err, errlen, ST_PERMANENT, "track17: %s.code: expected an integer",
                       where);
    if ((rc = cj_opt_string(e, "message", "track17", where, &m, err, errlen)) != ST_OK)
        return rc;
    *code = (long)json_integer_value(c);
    carrier_copy_text(msg, cap, m);
    return ST_OK;
}

/* The number member of list[idx] (list named `name`); NULL with err set when
 * the entry is not an object with a string number. */
static const char *entry_number(json_t *entry, const char *name, size_t idx, enum st_err *rc,
                                char *err, size_t errlen)
{
    json_t *num;

    if (!json_is_object(entry)) {
        *rc = st_fail(err, errlen, ST_PERMANENT, "track17: data.%s[%zu]: expected an object",
                      name, idx);
        return NULL;
    }
    num = json_object_get(entry, "number");
    if (!json_is_string(num)) {
        *rc = st_fail(err, errlen, ST_PERMANENT, "track17: data.%s[%zu].number: %s", name, idx,
                      num == NULL ? "missing" : "expected a string");
        return NULL;
    }
    return json_string_value(num);
}

/* Index in numbers[0..n) of number (case-insensitive), or n. */
static size_t find_number(const char *number, const char *const *numbers, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(numbers[i], number) == 0)
            return i;
    return n;
}

/* Check the envelope {code:0, data:{accepted:[], rejected:[]}}; fills
 * *accepted and *rejected (each possibly NULL). */
static enum st_err parse_envelope(json_t *root, json_t **accepted, json_t **rejected, char *err,
                                  size_t errlen)
{
    json_t *code, *data, *errors;
    enum st_err rc;

    *accepted = *rejected = NULL;
    if (!json_is_object(root))
        return st_fail(err, errlen, ST_PERMANENT, "track17: body: expected a JSON object");
    code = json_object_get(root, "code");
    if (code == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "track17: code: missing");
    if (!json_is_integer(code))
        return st_fail(err, errlen, ST_PERMANENT, "track17: code: expected an integer");
    if ((rc = cj_opt_object(root, "data", "track17", "body", &data, err, errlen)) != ST_OK)
        return rc;
    if (json_integer_value(code) != 0) {
        char msg[T17_QUOTE_MAX] = "";
        long c = (long)json_integer_value(code);

        errors = data != NULL ? json_object_get(data, "errors") : NULL;
        if (json_is_array(errors) && json_is_object(json_array_get(errors, 0))) {
            json_t *m = json_object_get(json_array_get(errors, 0), "message");

            if (json_is_string(m))
                carrier_copy_text(msg, sizeof(msg), json_string_value(m));
        }
        if (c == T17_ERR_OVER_LIMIT)
            return st_fail(err, errlen, ST_PERMANENT,
                           "track17: more than %d numbers in one call (code %ld%s%s)",
                           T17_BATCH_MAX, c, msg[0] ? ": " : "", msg);
        return st_fail(err, errlen, ST_RETRY, "track17: request refused with code %ld%s%s", c,
                       msg[0] ? ": " : "", msg);
    }
    if (data == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "track17: data: missing");
    if ((rc = cj_opt_array(data, "accepted", "track17", "data", accepted, err, errlen)) != ST_OK ||
        (rc = cj_opt_array(data, "rejected", "track17", "data", rejected, err, errlen)) != ST_OK)
        return rc;
    return ST_OK;
}

/* Pull the first error message out of a non-200 body into out[cap] ("" if none). */
static void body_message(const char *body, size_t len, char *out, size_t cap)
{
    json_error_t jerr;
    json_t *root, *m = NULL, *data, *errors;

    out[0] = '\0';
    if (body == NULL || len == 0 || len > T17_BODY_MAX)
        return;
    if ((root = json_loadb(body, len, 0, &jerr)) == NULL)
        return;
    if (json_is_object(root)) {
        data = json_object_get(root, "data");
        errors = json_is_object(data) ? json_object_get(data, "errors") : NULL;
        if (json_is_array(errors) && json_is_object(json_array_get(errors, 0)))
            m = json_object_get(json_array_get(errors, 0), "message");
        if (!json_is_string(m))
            m = json_object_get(root, "message");
        if (json_is_string(m))
            carrier_copy_text(out, cap, json_string_value(m));
    }
    json_decref(root);
}

/* Classify a non-200 answer into err; returns the kind. */
static enum st_err http_failure(long http_status, const char *body, size_t len, char *err,
                                size_t errlen)
{
    char detail[T17_QUOTE_MAX];
    const char *sep;

    body_message(body, len, detail, sizeof(detail));
    sep = detail[0] ? ": " : "";
    if (http_status == 401 || http_status == 403)
        return st_fail(err, errlen, ST_CONFIG, "track17: 17TRACK rejected the API key (HTTP %ld%s%s)",
                       http_status, sep, detail);
    if (http_status == 429)
        return st_fail(err, errlen, ST_RETRY, "track17: rate limited (HTTP 429%s%s)", sep,
                       detail);
    if (http_status >= 500 && http_status <= 599)
        return st_fail(err, errlen, ST_RETRY, "track17: server error (HTTP %ld%s%s)",
                       http_status, sep, detail);
    return st_fail(err, errlen, ST_PERMANENT, "track17: unexpected HTTP status %ld%s%s",
                   http_status, sep, detail);
}

/* Parse a JSON body with the common checks (cap, status, JSON); *root gets
 * the document on ST_OK. */
static enum st_err load_body(long http_status, const char *body, size_t len, json_t **root,
                             char *err, size_t errlen)
{
    enum st_err rc;

    *root = NULL;
    if ((rc = cj_body_cap("track17", len, T17_BODY_MAX, err, errlen)) != ST_OK)
        return rc;
    if (http_status != 200)
        return http_failure(http_status, body, len, err, errlen);
    return cj_load_body("track17", http_status, body, len, JSON_REJECT_DUPLICATES, root, err,
                        errlen);
}

/* Fill results from accepted[] and rejected[]. */
static enum st_err fill_results(json_t *accepted, json_t *rejected, const char *const *numbers,
                                size_t n, struct track_result *results, bool *seen, char *err,
                                size_t errlen)
{
    enum st_err rc = ST_OK;

    for (size_t k = 0; accepted != NULL && k < json_array_size(accepted); k++) {
        json_t *acc = json_array_get(accepted, k);
        const char *num = entry_number(acc, "accepted", k, &rc, err, errlen);
        size_t i;

        if (num == NULL)
            return rc;
        if ((i = find_number(num, numbers, n)) == n || seen[i])
            continue; /* not asked for, or listed twice: the first answer stands */
        if ((rc = parse_accepted(acc, k, &results[i], err, errlen)) != ST_OK)
            return rc;
        seen[i] = true;
        /* the same number asked twice gets the same answer */
        for (size_t d = i + 1; d < n; d++) {
            if (seen[d] || strcasecmp(numbers[d], numbers[i]) != 0)
                continue;
            if ((rc = parse_accepted(acc, k, &results[d], err, errlen)) != ST_OK)
                return rc;
            seen[d] = true;
        }
    }
    for (size_t k = 0; rejected != NULL && k < json_array_size(rejected); k++) {
        json_t *rej = json_array_get(rejected, k);
        const char *num = entry_number(rej, "rejected", k, &rc, err, errlen);
        char msg[T17_QUOTE_MAX];
        long code = 0;

        if (num == NULL)
            return rc;
        if ((rc = read_rejection(rej, k, &code, msg, sizeof(msg), err, errlen)) != ST_OK)
            return rc;
        for (size_t i = 0; i < n; i++) {
            if (seen[i] || strcasecmp(numbers[i], num) != 0)
                continue;
            track_result_reset(&results[i]);
            seen[i] = true;
            if (code == T17_ERR_NOT_REGISTERED)
                results[i].outcome = TRACK_NEEDS_REGISTER;
            else if (code == T17_ERR_NO_INFO_YET)
                results[i].outcome = TRACK_NOT_FOUND;
            else
                track_result_fail(&results[i], ST_RETRY, "track17: number rejected with code %ld%s%s",
                                  code, msg[0] ? ": " : "", msg);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!seen[i]) {
            track_result_reset(&results[i]);
            track_result_fail(&results[i], ST_RETRY,
                              "track17: number missing from both data.accepted and data.rejected");
        }
    return ST_OK;
}

/* carrier_ops.parse_response for gettrackinfo. */
static enum st_err t17_parse_response(const struct carrier_ctx *ctx, long http_status,
                                      const char *body, size_t len, const char *const *numbers,
                                      size_t n, struct track_result *results, char *err,
                                      size_t errlen)
{
    bool seen[T17_BATCH_MAX] = { false };
    json_t *root, *accepted, *rejected;
    char local[256];
    enum st_err rc;

    (void)ctx;
    if (err == NULL || errlen == 0) { /* keep a message for the results anyway */
        err = local;
        errlen = sizeof(local);
    }
    if (n == 0 || n > T17_BATCH_MAX) {
        rc = st_fail(err, errlen, ST_PERMANENT, "track17: 1 to %d numbers per response, got %zu",
                     T17_BATCH_MAX, n);
        if (n <= CARRIER_MAX_BATCH)
            carrier_fail_all(results, n, rc, err);
        return rc;
    }
    rc = load_body(http_status, body, len, &root, err, errlen);
    if (rc == ST_OK) {
        rc = parse_envelope(root, &accepted, &rejected, err, errlen);
        if (rc == ST_OK)
            rc = fill_results(accepted, rejected, numbers, n, results, seen, err, errlen);
        json_decref(root);
    }
    if (rc != ST_OK)
        carrier_fail_all(results, n, rc, err);
    return rc;
}

/* carrier_ops.parse_register_response: registered[i] for accepted numbers
 * and for those 17TRACK already had. */
static enum st_err t17_parse_register_response(const struct carrier_ctx *ctx, long http_status,
                                               const char *body, size_t len,
                                               const char *const *numbers, size_t n,
                                               bool *registered, char *err, size_t errlen)
{
    json_t *root, *accepted, *rejected;
    enum st_err rc;

    (void)ctx;
    for (size_t i = 0; i < n; i++)
        registered[i] = false;
    if (n == 0 || n > T17_BATCH_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "track17: 1 to %d numbers per response, got %zu",
                       T17_BATCH_MAX, n);
    if ((rc = load_body(http_status, body, len, &root, err, errlen)) != ST_OK)
        return rc;
    if ((rc = parse_envelope(root, &accepted, &rejected, err, errlen)) != ST_OK)
        goto out;
    for (size_t k = 0; accepted != NULL && k < json_array_size(accepted); k++) {
        const char *num = entry_number(json_array_get(accepted, k), "accepted", k, &rc, err,
                                       errlen);

        if (num == NULL)
            goto out;
        for (size_t i = 0; i < n; i++)
            if (strcasecmp(numbers[i], num) == 0)
                registered[i] = true;
    }
    for (size_t k = 0; rejected != NULL && k < json_array_size(rejected); k++) {
        json_t *rej = json_array_get(rejected, k);
        const char *num = entry_number(rej, "rejected", k, &rc, err, errlen);
        char msg[T17_QUOTE_MAX];
        long code = 0;

        if (num == NULL || (rc = read_rejection(rej, k, &code, msg, sizeof(msg), err, errlen)) !=
                               ST_OK)
            goto out;
        for (size_t i = 0; i < n && code == T17_ERR_ALREADY_REGISTERED; i++)
            if (strcasecmp(numbers[i], num) == 0)
                registered[i] = true;
    }
    rc = ST_OK;
out:
    json_decref(root);
    if (rc != ST_OK)
        for (size_t i = 0; i < n; i++)
            registered[i] = false;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Requests. */

/* True when a tracking number only holds [A-Za-z0-9-] and is not too long. */
static bool number_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > T17_NUMBER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

/* POST {base}{path} with 17token and a JSON array of {"number"} for numbers[0..n). */
static enum st_err build_post(const struct carrier_ctx *ctx, const char *path,
                              const char *const *numbers, size_t n, struct carrier_request *req,
                              char *err, size_t errlen)
{
    const char *base = ctx->base_url && ctx->base_url[0] ? ctx->base_url
                                                         : "https://api.17track.net";
    size_t blen = strlen(base);
    json_t *list;
    char *text, q[T17_QUOTE_MAX];
    enum st_err rc;

    memset(req, 0, sizeof(*req));
    if (ctx->api_key == NULL || ctx->api_key[0] == '\0')
        return st_fail(err, errlen, ST_CONFIG, "track17: no API key configured (17token)");
    for (const char *k = ctx->api_key; *k != '\0'; k++)
        if ((unsigned char)*k < 0x20 || *k == 0x7f)
            return st_fail(err, errlen, ST_CONFIG, "track17: API key holds control characters");
    if (n == 0 || n > T17_BATCH_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "track17: 1 to %d numbers per request, got %zu",
                       T17_BATCH_MAX, n);
    for (size_t i = 0; i < n; i++)
        if (numbers[i] == NULL || !number_ok(numbers[i]))
            return st_fail(err, errlen, ST_PERMANENT,
                           "track17: tracking number \"%s\": only letters, digits and '-' "
                           "allowed, at most %d", carrier_quote(q, sizeof(q), numbers[i]),
                           T17_NUMBER_MAX);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    if (blen + strlen(path) >= sizeof(req->url))
        return st_fail(err, errlen, ST_PERMANENT, "track17: request URL longer than %d bytes",
                       CARRIER_URL_MAX - 1);
    req->method = CARRIER_POST;
    memcpy(req->url, base, blen);
    memcpy(req->url + blen, path, strlen(path) + 1);

    if ((list = json_array()) == NULL)
        return st_fail(err, errlen, ST_RETRY, "track17: out of memory");
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(list, json_pack("{s:s}", "number", numbers[i])) != 0) {
            json_decref(list);
            return st_fail(err, errlen, ST_RETRY, "track17: out of memory");
        }
    text = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    if (text == NULL)
        return st_fail(err, errlen, ST_RETRY, "track17: out of memory");
    rc = carrier_request_body(req, text, strlen(text), err, errlen);
    free(text);
    if (rc != ST_OK ||
        (rc = carrier_request_header(req, "17token", ctx->api_key, err, errlen)) != ST_OK ||
        (rc = carrier_request_header(req, "Content-Type", "application/json", err, errlen)) !=
            ST_OK ||
        (rc = carrier_request_header(req, "Accept", "application/json", err, errlen)) != ST_OK) {
        carrier_request_reset(req);
        return rc == ST_PERMANENT ? ST_CONFIG : rc;
    }
    return ST_OK;
}

/* carrier_ops.build_request: POST {base}/track/v2.2/gettrackinfo. */
static enum st_err t17_build_request(const struct carrier_ctx *ctx, const char *const *numbers,
                                     size_t n, struct carrier_request *req, char *err,
                                     size_t errlen)
{
    return build_post(ctx, "/track/v2.2/gettrackinfo", numbers, n, req, err, errlen);
}

/* carrier_ops.build_register_request: POST {base}/track/v2.2/register. */
static enum st_err t17_build_register_request(const struct carrier_ctx *ctx,
                                              const char *const *numbers, size_t n,
                                              struct carrier_request *req, char *err,
                                              size_t errlen)
{
    return build_post(ctx, "/track/v2.2/register", numbers, n, req, err, errlen);
}

static const struct carrier_ops track17_ops = {
    .build_request = t17_build_request,
    .parse_response = t17_parse_response,
    .build_register_request = t17_build_register_request,
    .parse_register_response = t17_parse_register_response,
};

const struct carrier_def carrier_track17 = {
    .name = "track17",
    .display_name = "17TRACK (v2.2)",
    .ops = &track17_ops,
    .batch_max = T17_BATCH_MAX,
    .rate_per_sec = 3.0,
    .rate_per_day = 0, /* 17TRACK quotas count registered numbers, not requests */
    .auth = CARRIER_AUTH_API_KEY,
    .default_base_url = "https://api.17track.net",
};
