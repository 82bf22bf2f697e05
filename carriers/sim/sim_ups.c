/*
 * sim_ups.c - the simulator's UPS Track API v1 renderer, with UPS's OAuth2.
 *
 * Routes:
 *   POST /security/v1/oauth/token      HTTP basic client id:secret (the
 *        --oauth-client-id/--oauth-client-secret pair), form
 *        grant_type=client_credentials; answers UPS's token shape with
 *        expires_in as a string of seconds (--token-ttl). 401 for bad client
 *        credentials, 400 for a missing or other grant type.
 *   GET  /api/track/v1/details/{inquiryNumber}   needs "Authorization: Bearer T"
 *        with a live token from the endpoint above (401 otherwise, also once
 *        --token-max-uses is used up), and the transId and transactionSrc
 *        headers (400 without). Unknown numbers, and numbers without a visible
 *        activity yet, get 404 with UPS's {"response":{"errors":[...]}} shape.
 *
 * Bodies follow ups-tracking-openapi.yaml: trackResponse.shipment[].package[]
 * with activity[] newest first, each with local date (YYYYMMDD) and time
 * (HHMMSS), location.address, and status{type,code,statusCode,description};
 * deliveryDate[] carries SDD while a delivery is announced and DEL once
 * delivered. Descriptions are US English, as for locale=en_US.
 *
 * Timestamps, per step (from the journey hash): two in three carry gmtDate,
 * gmtTime (written without a leading zero, like the spec's "74700") and
 * gmtOffset; one in three has the local date and time only, so drivers must
 * derive the zone from country and stateProvince.
 *
 * Numbers are UPS 1Z: "1Z", shipper "ST" + four serial digits, service "66",
 * seven serial digits, and the UPS mod-10 check digit (detect.c).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "detect.h"
#include "sim.h"

#define UPS_TRACK_PREFIX "/api/track/v1/details/"
#define UPS_TOKEN_PATH   "/security/v1/oauth/token"

/* How a step's time is written. */
enum ups_time_style { UPS_TS_GMT, UPS_TS_GMT2, UPS_TS_LOCAL };

/* UPS's words for a journey kind: status.type, status.code, statusCode, description. */
struct ups_words {
    const char *type;
    const char *code;
    const char *status_code;
    const char *description;
};

static const struct ups_words ups_words[JK__COUNT] = {
    [JK_LABEL_CREATED] = { "M", "MP", "003",
                           "Shipper created a label, UPS has not received the package yet." },
    [JK_PICKED_UP] = { "P", "PU", "019", "Pickup Scan" },
    [JK_DEPARTED_FACILITY] = { "I", "DP", "005", "Departed from Facility" },
    [JK_ARRIVED_FACILITY] = { "I", "AR", "005", "Arrived at Facility" },
    [JK_DEPARTED_ORIGIN_COUNTRY] = { "I", "EP", "005", "Export Scan" },
    [JK_ARRIVED_DESTINATION_COUNTRY] = { "I", "IP", "005", "Import Scan" },
    [JK_CUSTOMS_PROCESSING] = { "I", "CP", "005",
                                "Your package is being processed by the customs agency." },
    [JK_CUSTOMS_DUTIES_DUE] = { "X", "CD", "007",
                                "Held by customs until the receiver pays import duties and "
                                "taxes." },
    [JK_CUSTOMS_DOCUMENTS_REQUIRED] = { "X", "CI", "007",
                                        "Clearance Information Required: the customs agency "
                                        "needs papers from the receiver." },
    [JK_CUSTOMS_INSPECTION] = { "X", "CN", "007",
                                "Held by the customs agency for inspection." },
    [JK_CUSTOMS_RELEASED] = { "X", "SR", "003", "The customs agency released your package." },
    [JK_OUT_FOR_DELIVERY] = { "I", "OT", "021", "Out For Delivery Today" },
    [JK_ATTEMPT_FAILED] = { "X", "NA", "007",
                            "The receiver was not available at the delivery attempt. We will "
                            "try again the next business day." },
    [JK_AVAILABLE_FOR_PICKUP] = { "I", "ZP", "005",
                                  "Ready for pickup at the UPS Access Point\xE2\x84\xA2 "
                                  "location." },
    [JK_DELIVERED] = { "D", "KB", "011", "DELIVERED" },
    [JK_RETURN_TO_SENDER] = { "X", "RS", "007",
                              "Returning to the sender after the delivery attempts." },
    [JK_RETURNED] = { "D", "RD", "011", "Returned to the sender." },
    [JK_UNMAPPED_CODE] = { "N", "9N", "099", "Tracking details revised by a partner network." },
};

/* The words of a delivery that follows a stay at an access point. */
static const struct ups_words ups_collected = {
    "D", "KM", "011", "Picked up by the receiver at the UPS Access Point\xE2\x84\xA2 location."
};

/* The carrier's routes: the token endpoint and the tracking details. */
static bool ups_route(const char *method, const char *path)
{
    (void)method;
    return strcmp(path, UPS_TOKEN_PATH) == 0 ||
           strncmp(path, UPS_TRACK_PREFIX, sizeof(UPS_TRACK_PREFIX) - 1) == 0;
}

/* UPS mod-10 check digit of the 15 characters after "1Z": letters count
 * (ASCII - 3) mod 10, odd positions (0-based) doubled. */
static int check_digit(const char *s15)
{
    unsigned total = 0;

    for (int i = 0; i < 15; i++) {
        char c = s15[i];
        unsigned v = c >= '0' && c <= '9' ? (unsigned)(c - '0') : (unsigned)((c - 3) % 10);

        total += v * (i % 2 == 0 ? 1u : 2u);
    }
    return (int)((10 - total % 10) % 10);
}

/* Upper-case letters and digits only, with a valid UPS format and check digit. */
static bool ups_number_valid(const char *number)
{
    size_t n = strlen(number);

    if (n < 11 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((number[i] >= '0' && number[i] <= '9') || (number[i] >= 'A' && number[i] <= 'Z')))
            return false;
    return detect_valid_for("ups", number, NULL, 0);
}

/* "1ZST" + 4 digits + "66" + 7 digits + check digit, from a serial (mod 10^11). */
static bool ups_number_from_serial(uint64_t serial, char *out, size_t cap)
{
    char buf[24];
    unsigned long hi = (unsigned long)(serial / 10000000ull % 10000ull);
    unsigned long lo = (unsigned long)(serial % 10000000ull);
    int n = snprintf(buf, sizeof(buf), "1ZST%04lu66%07lu", hi, lo);

    if (n != 17 || cap < 19)
        return false;
    buf[17] = (char)('0' + check_digit(buf + 2));
    buf[18] = '\0';
    memcpy(out, buf, 19);
    return ups_number_valid(out);
}

/* The time style of step i, fixed per journey and step. */
static enum ups_time_style time_style(const struct journey *j, size_t i)
{
    return (enum ups_time_style)(sim_mix64(j->hash ^ (0x0B5ull * (i + 1))) % 3);
}

/* The words of step i. */
static const struct ups_words *words_of(const struct journey *j, size_t i)
{
    if (j->steps[i].kind == JK_DELIVERED)
        for (size_t k = 0; k < i; k++)
            if (j->steps[k].kind == JK_AVAILABLE_FOR_PICKUP)
                return &ups_collected;
    return &ups_words[j->steps[i].kind];
}

/* An activity's time fields. */
struct ups_stamp {
    char date[16], time[16];             /* local YYYYMMDD, HHMMSS */
    char gmt_date[16], gmt_time[16];     /* GMT; gmtTime without a leading zero */
    char gmt_offset[16];                 /* "+HH:MM" */
    bool gmt;                            /* the gmt* fields are shown */
};

/* Fill st for instant t at zone with style. */
static void stamp(time_t t, const char *zone, enum ups_time_style style, struct ups_stamp *st)
{
    struct tm lt, gt;
    int off = 0, a;

    memset(st, 0, sizeof(*st));
    if (gmtime_r(&t, &gt) == NULL)
        memset(&gt, 0, sizeof(gt));
    if (zone == NULL || !sim_local_time(zone, t, &lt, &off)) {
        lt = gt;
        off = 0;
    }
    strftime(st->date, sizeof(st->date), "%Y%m%d", &lt);
    strftime(st->time, sizeof(st->time), "%H%M%S", &lt);
    strftime(st->gmt_date, sizeof(st->gmt_date), "%Y%m%d", &gt);
    snprintf(st->gmt_time, sizeof(st->gmt_time), "%d%02d%02d", gt.tm_hour % 24, gt.tm_min % 60,
             gt.tm_sec % 61);
    a = off < 0 ? -off : off;
    snprintf(st->gmt_offset, sizeof(st->gmt_offset), "%c%02d:%02d", off < 0 ? '-' : '+',
             a / 60 % 24, a % 60);
    st->gmt = style != UPS_TS_LOCAL;
}

/* The stamp of step i. */
static void step_stamp(const struct sim_env *env, const struct journey *j, size_t i,
                       struct ups_stamp *st)
{
    const struct journey_step *s = &j->steps[i];

    stamp(journey_step_time(j, i, env->clock), journey_zone(s->country, s->place),
          time_style(j, i), st);
}

/* {city,stateProvince?,postalCode,countryCode,country} of a place. */
static json_t *address(const struct sim_country *c, const struct sim_place *p)
{
    return json_pack("{s:s,s:s*,s:s,s:s,s:s}", "city", p->city, "stateProvince", p->region,
                     "postalCode", p->postal, "countryCode", c->cc, "country", c->cc);
}

/* The UPS activity of journey step i. */
static json_t *render_activity(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct journey_step *s = &j->steps[i];
    const struct ups_words *w = words_of(j, i);
    struct ups_stamp st;
    json_t *act;

    step_stamp(env, j, i, &st);
    act = json_pack("{s:{s:o},s:{s:s,s:s,s:s,s:s},s:s,s:s}", "location", "address",
                    address(s->country, s->place), "status", "type", w->type, "description",
                    w->description, "code", w->code, "statusCode", w->status_code, "date",
                    st.date, "time", st.time);
    if (act != NULL && st.gmt &&
        (json_object_set_new(act, "gmtDate", json_string(st.gmt_date)) != 0 ||
         json_object_set_new(act, "gmtTime", json_string(st.gmt_time)) != 0 ||
         json_object_set_new(act, "gmtOffset", json_string(st.gmt_offset)) != 0)) {
        json_decref(act);
        return NULL;
    }
    return act;
}

/* "YYYYMMDD" of instant t in the destination's zone into buf[16]. */
static const char *dest_date(const struct journey *j, time_t t, char buf[16])
{
    struct tm tm;
    int off;

    if (!sim_local_time(journey_zone(j->dest, j->to), t, &tm, &off) &&
        gmtime_r(&t, &tm) == NULL)
        return NULL;
    if (strftime(buf, 16, "%Y%m%d", &tm) == 0)
        return NULL;
    return buf;
}

/* The whole body for a journey with `visible` (> 0) steps shown. */
static json_t *render_body(const struct sim_env *env, const struct journey *j, size_t visible)
{
    json_t *acts = json_array(), *dates = json_array(), *pkg, *latest;
    const struct ups_words *lw = words_of(j, visible - 1);
    char buf[16];
    time_t edd;

    if (acts == NULL || dates == NULL)
        goto fail;
    for (size_t i = visible; i-- > 0;) { /* newest first, as UPS lists them */
        json_t *a = render_activity(env, j, i);

        if (a == NULL || json_array_append_new(acts, a) != 0)
            goto fail;
    }
    if (journey_edd(j, visible, env->clock, &edd)) {
        if (dest_date(j, edd, buf) == NULL ||
            json_array_append_new(dates, json_pack("{s:s,s:s}", "type", "SDD", "date", buf)) != 0)
            goto fail;
    } else if (j->steps[visible - 1].kind == JK_DELIVERED) {
        if (dest_date(j, journey_step_time(j, visible - 1, env->clock), buf) == NULL ||
            json_array_append_new(dates, json_pack("{s:s,s:s}", "type", "DEL", "date", buf)) != 0)
            goto fail;
    }
    latest = json_pack("{s:s,s:s,s:s}", "type", lw->type, "code", lw->code, "description",
                       lw->description);
    pkg = json_pack("{s:s,s:o,s:o,s:o,s:[{s:s,s:o},{s:s,s:o}],s:{s:s,s:s},s:i}",
                    "trackingNumber", j->number, "currentStatus", latest, "deliveryDate", dates,
                    "activity", acts, "packageAddress", "type", "ORIGIN", "address",
                    address(j->origin, j->from), "type", "DESTINATION", "address",
                    address(j->dest, j->to), "service", "code",
                    "066", "description", "UPS Worldwide Express", "packageCount", 1);
    if (pkg == NULL)
        return NULL; /* json_pack consumed acts, dates and latest */
    return json_pack("{s:{s:[{s:s,s:[o]}]}}", "trackResponse", "shipment", "inquiryNumber",
                     j->number, "package", pkg);
fail:
    json_decref(acts);
    json_decref(dates);
    return NULL;
}

/* A UPS error document {"response":{"errors":[{code,message}]}}. */
static void respond_error(struct sim_response *resp, unsigned status, const char *code,
                          const char *message)
{
    sim_respond_json(resp, status, "application/json",
                     json_pack("{s:{s:[{s:s,s:s}]}}", "response", "errors", "code", code,
                               "message", message));
}

/* POST /security/v1/oauth/token */
static void handle_token(const struct sim_env *env, const struct sim_request *req,
                         struct sim_response *resp)
{
    char id[256], secret[256], grant[64], token[64], exp[24], issued[24];
    long expires_in;

    if (strcmp(req->method, "POST") != 0) {
        respond_error(resp, 405, "10405", "Use POST.");
        sim_response_header(resp, "Allow", "POST");
        return;
    }
    if (!sim_basic_auth(sim_header(req, "Authorization"), id, sizeof(id), secret,
                        sizeof(secret)) ||
        !sim_oauth_client_ok(env, id, secret)) {
        respond_error(resp, 401, "10401", "The client id or secret is not valid.");
        return;
    }
    if (!sim_form_value(req->body, "grant_type", grant, sizeof(grant)) ||
        strcmp(grant, "client_credentials") != 0) {
        respond_error(resp, 400, "10400", "grant_type must be client_credentials.");
        return;
    }
    if (!sim_oauth_issue(env, "ups", token, sizeof(token), &expires_in)) {
        respond_error(resp, 503, "10503", "No token could be issued.");
        return;
    }
    snprintf(exp, sizeof(exp), "%ld", expires_in);
    snprintf(issued, sizeof(issued), "%lld", (long long)time(NULL) * 1000);
    sim_respond_json(resp, 200, "application/json",
                     json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "token_type", "Bearer",
                               "issued_at", issued, "client_id", id, "access_token", token,
                               "scope", "", "expires_in", exp, "refresh_count", "0", "status",
                               "approved"));
}

/* GET /api/track/v1/details/{inquiryNumber} */
static void handle_track(const struct sim_env *env, const struct sim_request *req,
                         struct sim_response *resp)
{
    const char *number = req->path + sizeof(UPS_TRACK_PREFIX) - 1;
    const char *tid = sim_header(req, "transId"), *src = sim_header(req, "transactionSrc");
    struct journey j;
    size_t visible;
    json_t *body;

    if (strcmp(req->method, "GET") != 0) {
        respond_error(resp, 405, "TV0405", "Use GET.");
        sim_response_header(resp, "Allow", "GET");
        return;
    }
    if (!sim_oauth_valid(env, "ups", sim_header(req, "Authorization"))) {
        respond_error(resp, 401, "250002", "Invalid Authentication Information.");
        return;
    }
    if (tid == NULL || tid[0] == '\0' || src == NULL || src[0] == '\0') {
        respond_error(resp, 400, "TV0001", "The transId and transactionSrc headers are "
                                           "required.");
        return;
    }
    if (number[0] == '\0' || strchr(number, '/') != NULL || strlen(number) < 7 ||
        strlen(number) > 34) {
        respond_error(resp, 400, "TV0002", "The inquiry number must be 7 to 34 characters.");
        return;
    }
    if (!ups_number_valid(number) || !journey_build("ups", number, &j) ||
        (visible = journey_visible_count(&j, env->clock)) == 0) {
        respond_error(resp, 404, "TW0001", "Tracking Information Not Found");
        return;
    }
    if ((body = render_body(env, &j, visible)) == NULL) {
        respond_error(resp, 500, "TV0500", "The simulator ran out of memory.");
        return;
    }
    sim_respond_json(resp, 200, "application/json", body);
}

/* Answer the token endpoint or the tracking details. */
static void ups_handle(const struct sim_env *env, const struct sim_request *req,
                       struct sim_response *resp)
{
    if (strcmp(req->path, UPS_TOKEN_PATH) == 0)
        handle_token(env, req, resp);
    else
        handle_track(env, req, resp);
}

/* Wire facts of step i for /_sim/journey: exactly what UPS shows for it. */
static json_t *ups_wire_step(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct ups_words *w = words_of(j, i);
    struct ups_stamp st;

    step_stamp(env, j, i, &st);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s*,s:s*,s:s*}", "timestamp_style",
                     st.gmt ? "gmt" : "local", "type", w->type, "code", w->code, "description",
                     w->description, "date", st.date, "time", st.time, "gmtDate",
                     st.gmt ? st.gmt_date : NULL, "gmtTime", st.gmt ? st.gmt_time : NULL,
                     "gmtOffset", st.gmt ? st.gmt_offset : NULL);
}

const struct sim_carrier sim_carrier_ups = {
    .name = "ups",
    .route = ups_route,
    .handle = ups_handle,
    .number_valid = ups_number_valid,
    .number_from_serial = ups_number_from_serial,
    .wire_step = ups_wire_step,
};
