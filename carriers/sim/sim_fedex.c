/*
 * sim_fedex.c - the simulator's FedEx Track API renderer.
 *
 * Serves FedEx's two endpoints:
 *   POST /oauth/token                form grant_type=client_credentials&
 *                                    client_id=..&client_secret=..; answers
 *                                    {access_token, token_type "bearer",
 *                                    expires_in (a number), scope} from the
 *                                    shared token table (oauth.c).
 *   POST /track/v1/trackingnumbers   JSON {includeDetailedScans, trackingInfo[
 *                                    {trackingNumberInfo{trackingNumber}}]},
 *                                    1 to 30 numbers, bearer token required.
 * Errors use FedEx's shape {transactionId, errors[{code, message}]}: 401
 * NOT.AUTHORIZED.ERROR for a missing, unknown, expired or used-up token (or
 * bad client credentials), 400 for a malformed body, no numbers or more than
 * 30, 405 for other methods.
 *
 * A 200 answer is output.completeTrackResults[], one per number asked for,
 * deliberately not in request order (rotated by one) because FedEx does not
 * promise an order. Numbers with a bad check digit or that journey_build
 * does not know get a trackResult whose error.code is
 * TRACKING.TRACKINGNUMBER.NOTFOUND, inside a 200, as FedEx answers.
 *
 * Each journey step becomes a scanEvent (newest first) with FedEx's event
 * codes (OC, PU, DP, AR, IT, CP, CD, CC, OD, DE, HL, DL, RS; "ZX" for the
 * journey's unmapped step), English descriptions, locationType
 * (CUSTOMS_BROKER for customs, PORT_OF_ENTRY on arrival in the destination
 * country), delayDetail CLEARANCE on customs holds, scanLocation, and a date
 * in local time with its UTC offset, the only style FedEx documents. FedEx
 * translates descriptions by the x-locale header: when it names the
 * destination's language, customs steps carry the destination-language
 * wording. dateAndTimes[] holds ESTIMATED_DELIVERY (local date at the
 * destination), ACTUAL_PICKUP and ACTUAL_DELIVERY as they apply.
 *
 * Numbers: 12-digit FedEx Express (11 serial digits and a mod-11 check
 * digit, weights 3,1,7); any number detect.c accepts for FedEx is served.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "detect.h"
#include "sim.h"

#define FX_BATCH_MAX 30              /* numbers per request, as FedEx */
#define FX_NUMBER_MAX 40             /* longest number we render */

/* FedEx's words for a journey kind. */
struct fx_words {
    const char *type;            /* eventType */
    const char *derived;         /* derivedStatusCode */
    const char *derived_text;    /* derivedStatus */
    const char *desc;            /* eventDescription (English) */
    const char *location_type;   /* locationType */
    bool hold;                   /* customs hold: CLEARANCE delay, text as exception */
};

static const struct fx_words fx_words[JK__COUNT] = {
    [JK_LABEL_CREATED] = { "OC", "IN", "Label created", "Shipment information sent to FedEx",
                           "CUSTOMER", false },
    [JK_PICKED_UP] = { "PU", "PU", "Picked up", "Picked up", "PICKUP_LOCATION", false },
    [JK_DEPARTED_FACILITY] = { "DP", "IT", "In transit", "Departed FedEx location",
                               "FEDEX_FACILITY", false },
    [JK_ARRIVED_FACILITY] = { "AR", "IT", "In transit", "Arrived at FedEx location",
                              "FEDEX_FACILITY", false },
    [JK_DEPARTED_ORIGIN_COUNTRY] = { "IT", "IT", "In transit",
                                     "International shipment release - Export",
                                     "ORIGIN_AIRPORT", false },
    [JK_ARRIVED_DESTINATION_COUNTRY] = { "AR", "IT", "In transit",
                                         "Arrived in the destination country",
                                         "PORT_OF_ENTRY", false },
    [JK_CUSTOMS_PROCESSING] = { "CP", "IT", "In transit", "Clearance in progress",
                                "CUSTOMS_BROKER", false },
    [JK_CUSTOMS_DUTIES_DUE] = { "CD", "DE", "Delivery exception", "Clearance delay",
                                "CUSTOMS_BROKER", true },
    [JK_CUSTOMS_DOCUMENTS_REQUIRED] = { "CD", "DE", "Delivery exception", "Clearance delay",
                                        "CUSTOMS_BROKER", true },
    [JK_CUSTOMS_INSPECTION] = { "CD", "DE", "Delivery exception", "Clearance delay",
                                "CUSTOMS_BROKER", true },
    [JK_CUSTOMS_RELEASED] = { "CC", "IT", "In transit", "International shipment release - Import",
                              "CUSTOMS_BROKER", false },
    [JK_OUT_FOR_DELIVERY] = { "OD", "OD", "Out for delivery", "On FedEx vehicle for delivery",
                              "VEHICLE", false },
    [JK_ATTEMPT_FAILED] = { "DE", "DE", "Delivery exception", "Delivery exception",
                            "DELIVERY_LOCATION", false },
    [JK_AVAILABLE_FOR_PICKUP] = { "HL", "HL", "Ready for pickup",
                                  "Ready for recipient pickup at FedEx location",
                                  "FEDEX_OFFICE_LOCATION", false },
    [JK_DELIVERED] = { "DL", "DL", "Delivered", "Delivered", "DELIVERY_LOCATION", false },
    [JK_RETURN_TO_SENDER] = { "RS", "RS", "Return to shipper", "Returning package to shipper",
                              "FEDEX_FACILITY", false },
    [JK_RETURNED] = { "DL", "DL", "Delivered", "Delivered: returned to the shipper",
                      "DELIVERY_LOCATION", false },
    [JK_UNMAPPED_CODE] = { "ZX", "ZX", "In transit", "Shipment data updated by network partner",
                           "FEDEX_FACILITY", false },
};

/* Exception words of a failed attempt, as FedEx phrases it. */
static const char attempt_exception[] = "Customer not available or business closed";
/* Delivery words after collection at a FedEx location. */
static const char collected_text[] = "Picked up by the recipient at the FedEx location";

/* The two FedEx paths. */
static bool fx_route(const char *method, const char *path)
{
    (void)method;
    return strcmp(path, "/oauth/token") == 0 || strcmp(path, "/track/v1/trackingnumbers") == 0;
}

/* Check digit of an 11-digit FedEx Express serial: weights 3,1,7, mod 11 mod 10. */
static int express_check(const char *serial)
{
    static const unsigned w[3] = { 3, 1, 7 };
    unsigned long sum = 0;

    for (int i = 0; i < 11; i++)
        sum += (unsigned long)(serial[i] - '0') * w[i % 3];
    return (int)(sum % 11 % 10);
}

/* Digits only, of a FedEx length, with a check digit detect.c accepts. */
static bool fx_number_valid(const char *number)
{
    size_t n = strlen(number);

    if (n != 12 && n != 15 && n != 20 && n != 22 && n != 34)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)number[i]))
            return false;
    return detect_valid_for("fedex", number, NULL, 0);
}

/* The FedEx Express (12) number of a serial (taken mod 10^11). */
static bool fx_number_from_serial(uint64_t serial, char *out, size_t cap)
{
    char digits[16];
    int n = snprintf(digits, sizeof(digits), "%011llu",
                     (unsigned long long)(serial % 100000000000ull));

    if (n != 11 || cap < 13)
        return false;
    memcpy(out, digits, 11);
    out[11] = (char)('0' + express_check(digits));
    out[12] = '\0';
    return true;
}

/* Instant t as local time in zone with its offset ("...T10:02:00-05:00")
 * into buf[32]; UTC with +00:00 when the zone is unknown. */
static const char *format_time(time_t t, const char *zone, char buf[32])
{
    struct tm tm;
    int off = 0, a;
    size_t n;

    if (!sim_local_time(zone, t, &tm, &off) && gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, 32, "1970-01-01T00:00:00+00:00");
        return buf;
    }
    if (strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        buf[0] = '\0';
    a = off < 0 ? -off : off;
    n = strlen(buf);
    snprintf(buf + n, 32 - n, "%c%02d:%02d", off < 0 ? '-' : '+', a / 60 % 100, a % 60);
    return buf;
}

/* Local-language customs wording of step s, or NULL. */
static const char *local_words(const struct journey_step *s)
{
    return s->remark;
}

/* True when the x-locale header (e.g. "fr_FR") names country c's language. */
static bool locale_matches(const char *xlocale, const struct sim_country *c)
{
    return xlocale != NULL && strlen(xlocale) >= 2 && strncasecmp(xlocale, c->locale, 2) == 0;
}

/* scanLocation-style address of a place. */
static json_t *address(const struct sim_country *c, const struct sim_place *p)
{
    json_t *a = json_pack("{s:[s],s:s,s:s,s:s,s:b}", "streetLines", "", "city", p->city,
                          "postalCode", p->postal, "countryCode", c->cc, "residential", 0);

    if (a != NULL && p->region != NULL)
        json_object_set_new(a, "stateOrProvinceCode", json_string(p->region));
    return a;
}

/* The scanEvent of journey step i. */
static json_t *render_event(const struct sim_env *env, const struct journey *j, size_t i,
                            const char *xlocale)
{
    const struct journey_step *s = &j->steps[i];
    const struct fx_words *w = &fx_words[s->kind];
    const char *desc = w->desc, *xdesc = "";
    bool local = locale_matches(xlocale, j->dest) && local_words(s) != NULL;
    char ts[32];
    json_t *ev;

    format_time(journey_step_time(j, i, env->clock), journey_zone(s->country, s->place), ts);
    if (w->hold)
        xdesc = local ? local_words(s) : s->text;
    else if (local)
        desc = local_words(s);
    else if (s->kind == JK_ATTEMPT_FAILED)
        xdesc = attempt_exception;
    else if (s->kind == JK_DELIVERED && j->scenario == JS_PICKUP_POINT)
        desc = collected_text;
    ev = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s}", "date", ts, "eventType", w->type,
                   "eventDescription", desc, "exceptionCode", w->hold ? "A25" : "",
                   "exceptionDescription", xdesc, "locationId", "SIM", "scanLocation",
                   address(s->country, s->place), "locationType", w->location_type,
                   "derivedStatusCode", w->derived, "derivedStatus", w->derived_text);
    if (ev != NULL && w->hold)
        json_object_set_new(ev, "delayDetail",
                            json_pack("{s:s,s:s}", "type", "CLEARANCE", "status", "DELAYED"));
    return ev;
}

/* {type, dateTime} of instant t in zone. */
static json_t *date_entry(const char *type, time_t t, const char *zone)
{
    char ts[32];

    return json_pack("{s:s,s:s}", "type", type, "dateTime", format_time(t, zone, ts));
}

/* The trackResult of a known journey with `visible` steps shown. */
static json_t *render_found(const struct sim_env *env, const struct journey *j, size_t visible,
                            const char *xlocale)
{
    json_t *events = json_array(), *dates = json_array(), *tr, *latest;
    const struct journey_step *last;
    char uid[80];
    time_t edd;

    if (events == NULL || dates == NULL) {
        json_decref(events);
        json_decref(dates);
        return NULL;
    }
    for (size_t i = visible; i-- > 0;) /* newest first, as FedEx lists them */
        if (json_array_append_new(events, render_event(env, j, i, xlocale)) != 0) {
            json_decref(events);
            json_decref(dates);
            return NULL;
        }
    for (size_t i = 0; i < visible; i++) {
        const struct journey_step *s = &j->steps[i];
        const char *type = s->kind == JK_PICKED_UP ? "ACTUAL_PICKUP"
                         : s->kind == JK_DELIVERED ? "ACTUAL_DELIVERY" : NULL;

        if (type != NULL)
            json_array_append_new(dates, date_entry(type, journey_step_time(j, i, env->clock),
                                                    journey_zone(s->country, s->place)));
    }
    if (journey_edd(j, visible, env->clock, &edd))
        json_array_append_new(dates, date_entry("ESTIMATED_DELIVERY", edd,
                                                journey_zone(j->dest, j->to)));
    last = &j->steps[visible > 0 ? visible - 1 : 0];
    latest = json_pack("{s:s,s:s,s:s,s:s,s:o}", "code", fx_words[last->kind].type,
                       "derivedCode", fx_words[last->kind].derived, "statusByLocale",
                       fx_words[last->kind].derived_text, "description",
                       fx_words[last->kind].derived_text, "scanLocation",
                       address(last->country, last->place));
    if (latest != NULL && fx_words[last->kind].hold)
        json_object_set_new(latest, "delayDetail",
                            json_pack("{s:s,s:s}", "type", "CLEARANCE", "status", "DELAYED"));
    snprintf(uid, sizeof(uid), "12026~%s~FDEG", j->number);
    tr = json_pack("{s:{s:s,s:s,s:s},s:{s:o},s:{s:o},s:o,s:o,s:o,s:{s:s,s:s}}",
                   "trackingNumberInfo", "trackingNumber", j->number, "carrierCode", "FDXE",
                   "trackingNumberUniqueId", uid, "shipperInformation", "address",
                   address(j->origin, j->from), "recipientInformation", "address",
                   address(j->dest, j->to), "latestStatusDetail", latest, "dateAndTimes", dates,
                   "scanEvents", events, "serviceDetail", "type",
                   j->origin != j->dest ? "INTERNATIONAL_PRIORITY" : "STANDARD_OVERNIGHT",
                   "description",
                   j->origin != j->dest ? "FedEx International Priority" : "FedEx Standard Overnight");
    return tr;
}

/* The trackResult of a number FedEx does not know. */
static json_t *render_not_found(const char *number)
{
    return json_pack("{s:{s:s,s:s,s:s},s:{s:s,s:s}}", "trackingNumberInfo", "trackingNumber",
                     number, "carrierCode", "", "trackingNumberUniqueId", "", "error", "code",
                     "TRACKING.TRACKINGNUMBER.NOTFOUND", "message",
                     "Tracking number cannot be found. Please correct the tracking number and "
                     "try again.");
}

/* completeTrackResults entry for one number. */
static json_t *render_number(const struct sim_env *env, const char *number, const char *xlocale)
{
    struct journey j;
    json_t *tr;

    if (!fx_number_valid(number) || !journey_build("fedex", number, &j))
        tr = render_not_found(number);
    else
        tr = render_found(env, &j, journey_visible_count(&j, env->clock), xlocale);
    return json_pack("{s:s,s:[o]}", "trackingNumber", number, "trackResults", tr);
}

/* A transaction id derived from the request body (FNV-1a, mixed). */
static const char *transaction_id(const char *body, char buf[40])
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (const char *p = body; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    h = sim_mix64(h);
    snprintf(buf, 40, "%08llx-%04llx-4%03llx-a%03llx-%012llx",
             (unsigned long long)(h >> 32), (unsigned long long)((h >> 16) & 0xFFFF),
             (unsigned long long)(h & 0xFFF), (unsigned long long)((h >> 12) & 0xFFF),
             (unsigned long long)(sim_mix64(h) & 0xFFFFFFFFFFFFull));
    return buf;
}

/* Answer with FedEx's error shape. */
static void respond_error(struct sim_response *resp, unsigned status, const char *body,
                          const char *code, const char *message)
{
    char tid[40];

    sim_respond_json(resp, status, "application/json",
                     json_pack("{s:s,s:[{s:s,s:s}]}", "transactionId",
                               transaction_id(body, tid), "errors", "code", code, "message",
                               message));
}

/* POST /oauth/token. */
static void handle_token(const struct sim_env *env, const struct sim_request *req,
                         struct sim_response *resp)
{
    char grant[64], id[256], secret[256], token[64];
    long expires_in;

    if (!sim_form_value(req->body, "grant_type", grant, sizeof(grant)) ||
        strcmp(grant, "client_credentials") != 0 ||
        !sim_form_value(req->body, "client_id", id, sizeof(id)) ||
        !sim_form_value(req->body, "client_secret", secret, sizeof(secret))) {
        respond_error(resp, 400, req->body, "BAD.REQUEST.ERROR",
                      "Missing or duplicate parameters. Please modify your request and try "
                      "again.");
        return;
    }
    if (!sim_oauth_client_ok(env, id, secret)) {
        respond_error(resp, 401, req->body, "NOT.AUTHORIZED.ERROR",
                      "The given client credentials were not valid. Please modify your request "
                      "and try again.");
        return;
    }
    if (!sim_oauth_issue(env, "fedex", token, sizeof(token), &expires_in)) {
        respond_error(resp, 503, req->body, "SERVICE.UNAVAILABLE.ERROR",
                      "The token service is currently unavailable.");
        return;
    }
    sim_respond_json(resp, 200, "application/json",
                     json_pack("{s:s,s:s,s:I,s:s}", "access_token", token, "token_type",
                               "bearer", "expires_in", (json_int_t)expires_in, "scope", "CXS"));
}

/* POST /track/v1/trackingnumbers. */
static void handle_track(const struct sim_env *env, const struct sim_request *req,
                         struct sim_response *resp)
{
    const char *numbers[FX_BATCH_MAX];
    json_t *root, *infos, *results, *body;
    json_error_t jerr;
    size_t n;
    char tid[40];

    if (!sim_oauth_valid(env, "fedex", sim_header(req, "Authorization"))) {
        respond_error(resp, 401, req->body, "NOT.AUTHORIZED.ERROR",
                      "Access token expired. Please modify your request and try again.");
        return;
    }
    root = json_loadb(req->body, req->body_len, 0, &jerr);
    infos = json_object_get(root, "trackingInfo");
    if (root == NULL || !json_is_object(root) || (infos != NULL && !json_is_array(infos))) {
        json_decref(root);
        respond_error(resp, 400, req->body, "INVALID.INPUT.EXCEPTION",
                      "Invalid field value in the input");
        return;
    }
    n = json_array_size(infos);
    if (n == 0) {
        json_decref(root);
        respond_error(resp, 400, req->body, "TRACKING.TRACKINGNUMBER.EMPTY",
                      "Please provide tracking number.");
        return;
    }
    if (n > FX_BATCH_MAX) {
        json_decref(root);
        /* the code is the simulator's: FedEx documents the limit, not its error */
        respond_error(resp, 400, req->body, "TRACKING.TRACKINGINFO.LIMITEXCEEDED",
                      "At most 30 tracking numbers may be requested at a time.");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *num = json_object_get(json_object_get(json_array_get(infos, i),
                                                      "trackingNumberInfo"), "trackingNumber");

        numbers[i] = json_string_value(num);
        if (numbers[i] == NULL || numbers[i][0] == '\0' || strlen(numbers[i]) > FX_NUMBER_MAX) {
            json_decref(root);
            respond_error(resp, 400, req->body, "TRACKING.TRACKINGNUMBER.EMPTY",
                          "Please provide tracking number.");
            return;
        }
    }
    if ((results = json_array()) == NULL) {
        json_decref(root);
        respond_error(resp, 500, req->body, "INTERNAL.SERVER.ERROR", "Out of memory.");
        return;
    }
    for (size_t k = 0; k < n; k++) /* rotated by one: FedEx promises no order */
        if (json_array_append_new(results, render_number(env, numbers[(k + 1) % n],
                                                         sim_header(req, "x-locale"))) != 0) {
            json_decref(results);
            json_decref(root);
            respond_error(resp, 500, req->body, "INTERNAL.SERVER.ERROR", "Out of memory.");
            return;
        }
    body = json_pack("{s:s,s:{s:o}}", "transactionId", transaction_id(req->body, tid), "output",
                     "completeTrackResults", results);
    json_decref(root);
    if (body == NULL) {
        respond_error(resp, 500, req->body, "INTERNAL.SERVER.ERROR", "Out of memory.");
        return;
    }
    sim_respond_json(resp, 200, "application/json", body);
}

/* Answer a routed request. */
static void fx_handle(const struct sim_env *env, const struct sim_request *req,
                      struct sim_response *resp)
{
    if (strcmp(req->method, "POST") != 0) {
        respond_error(resp, 405, req->body, "METHOD.NOT.ALLOWED", "Use POST.");
        sim_response_header(resp, "Allow", "POST");
        return;
    }
    if (strcmp(req->path, "/oauth/token") == 0)
        handle_token(env, req, resp);
    else
        handle_track(env, req, resp);
}

/* Wire facts of step i for /_sim/journey: exactly what FedEx shows for it. */
static json_t *fx_wire_step(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct journey_step *s = &j->steps[i];
    const struct fx_words *w = &fx_words[s->kind];
    char ts[32];

    format_time(journey_step_time(j, i, env->clock), journey_zone(s->country, s->place), ts);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:b}", "date", ts, "timestamp_style", "offset",
                     "eventType", w->type, "derivedStatusCode", w->derived, "locationType",
                     w->location_type, "clearance_delay", w->hold);
}

const struct sim_carrier sim_carrier_fedex = {
    .name = "fedex",
    .route = fx_route,
    .handle = fx_handle,
    .number_valid = fx_number_valid,
    .number_from_serial = fx_number_from_serial,
    .wire_step = fx_wire_step,
};
