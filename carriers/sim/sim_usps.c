/*
 * sim_usps.c - the simulator's USPS Tracking v3 renderer.
 *
 * Routes:
 *   POST /oauth2/v3/token            OAuth2 client credentials. The body is
 *                                    JSON {client_id, client_secret,
 *                                    grant_type:"client_credentials"} (a form
 *                                    body is tolerated); answers {access_token,
 *                                    token_type:"Bearer", issued_at (ms),
 *                                    expires_in, status, scope, issuer,
 *                                    client_id}; 401 {"error":"invalid_client"}
 *                                    for wrong credentials, 400
 *                                    {"error":"unsupported_grant_type"}.
 *   GET /tracking/v3/tracking/{n}    Bearer token checked with sim_oauth_valid
 *                                    (401 in USPS's error shape when missing,
 *                                    unknown, expired or used up); 400 with
 *                                    message code 150001 (unknown number) or
 *                                    150002 (not a USPS number); 200 with the
 *                                    tracking body. ?expand=DETAIL adds
 *                                    trackingEvents[] (newest first); without
 *                                    it only the summary is sent.
 *
 * Wire facts: events carry eventType (English, as USPS writes it for every
 * destination), eventCode, eventCity, eventState (US scans only), eventZIP,
 * eventCountry ("" for US scans, the English name in capitals otherwise) and
 * eventTimestamp "YYYY-MM-DDTHH:MM:SSZ" holding the LOCAL time at the place
 * (the Z is not UTC: USPS's quirk, which drivers must undo). The body has
 * expectedDeliveryDate (local date at the destination) while one applies.
 *
 * Codes: 01, 02, 03 are USPS's documented ones; MA, 10, L1, OF, 16, 09 are
 * the modelled ones of carriers/usps.c; customs steps use IC/IH/IR with their
 * meaning in the text only ("Customs Clearance", "Held in Customs, ...",
 * "Released from Customs"); the unmapped step uses code "Z9".
 *
 * Numbers: USPS IMpb 22 digits, "94001" + "1" + 15 serial digits + the
 * mod-10 check digit, validated with detect_valid_for (any number detect.c
 * accepts for usps is served).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "detect.h"
#include "sim.h"

#define USPS_TRACK_PREFIX "/tracking/v3/tracking/"
#define USPS_TOKEN_PATH   "/oauth2/v3/token"

/* USPS's words for a journey kind: code, text at home (US), text abroad. */
struct usps_words {
    const char *code;
    const char *us;
    const char *abroad;
    const char *category;        /* statusCategory when this is the latest event */
};

static const struct usps_words usps_words[JK__COUNT] = {
    [JK_LABEL_CREATED] = { "MA", "Shipping Label Created, USPS Awaiting Item",
                           "Shipping Label Created, USPS Awaiting Item", "Pre-Shipment" },
    [JK_PICKED_UP] = { "03", "USPS picked up item", "Origin Post is Preparing Shipment",
                       "Accepted" },
    [JK_DEPARTED_FACILITY] = { "L1", "Departed USPS Regional Facility", "Departed",
                               "In Transit" },
    [JK_ARRIVED_FACILITY] = { "10", "Arrived at USPS Regional Facility",
                              "Processed Through Facility", "In Transit" },
    [JK_DEPARTED_ORIGIN_COUNTRY] = { "L1", "Departed Origin Country, International Dispatch",
                                     "Departed Origin Country, International Dispatch",
                                     "In Transit" },
    [JK_ARRIVED_DESTINATION_COUNTRY] = { "10", "Arrived in Destination Country",
                                         "Arrived in Destination Country", "In Transit" },
    [JK_CUSTOMS_PROCESSING] = { "IC", "Customs Clearance", "Customs Clearance", "In Transit" },
    [JK_CUSTOMS_DUTIES_DUE] = { "IH", "Held in Customs, Duties and Taxes Due",
                                "Held in Customs, Duties and Taxes Due", "Alert" },
    [JK_CUSTOMS_DOCUMENTS_REQUIRED] = { "IH", "Held in Customs, Documentation Required",
                                        "Held in Customs, Documentation Required", "Alert" },
    [JK_CUSTOMS_INSPECTION] = { "IH", "Held in Customs, Inspection",
                                "Held in Customs, Inspection", "Alert" },
    [JK_CUSTOMS_RELEASED] = { "IR", "Released from Customs", "Released from Customs",
                              "In Transit" },
    [JK_OUT_FOR_DELIVERY] = { "OF", "Out for Delivery", "Out for Delivery",
                              "Out for Delivery" },
    [JK_ATTEMPT_FAILED] = { "02", "Notice Left (No Authorized Recipient Available)",
                            "Notice Left (No Authorized Recipient Available)",
                            "Delivery Attempt" },
    [JK_AVAILABLE_FOR_PICKUP] = { "16", "Available for Pickup", "Available for Pickup",
                                  "Available for Pickup" },
    [JK_DELIVERED] = { "01", "Delivered, Front Door/Porch", "Delivered", "Delivered" },
    [JK_RETURN_TO_SENDER] = { "09", "Return to Sender Processed", "Return to Sender Processed",
                              "Alert" },
    [JK_RETURNED] = { "01", "Delivered, Returned to Sender", "Delivered, Returned to Sender",
                      "Delivered" },
    [JK_UNMAPPED_CODE] = { "Z9", "Shipment Data Updated by Network Partner",
                           "Shipment Data Updated by Network Partner", "In Transit" },
};

/* eventCountry of the simulator's countries: USPS's English names in capitals. */
static const struct {
    const char *cc;
    const char *name;
} usps_country_names[] = {
    { "DE", "GERMANY" }, { "FR", "FRANCE" }, { "ES", "SPAIN" }, { "IT", "ITALY" },
    { "NL", "NETHERLANDS" }, { "PL", "POLAND" }, { "SE", "SWEDEN" }, { "JP", "JAPAN" },
    { "CN", "CHINA" }, { "BR", "BRAZIL" }, { "GB", "GREAT BRITAIN AND NORTHERN IRELAND" },
};

/* eventCountry of a country: "" for the US, its name otherwise. */
static const char *country_name(const struct sim_country *c)
{
    if (strcmp(c->cc, "US") == 0)
        return "";
    for (size_t i = 0; i < sizeof(usps_country_names) / sizeof(usps_country_names[0]); i++)
        if (strcmp(usps_country_names[i].cc, c->cc) == 0)
            return usps_country_names[i].name;
    return c->cc; /* a code is better than nothing; the driver maps both */
}

/* The USPS text of step s. */
static const char *step_text(const struct journey_step *s)
{
    const struct usps_words *w = &usps_words[s->kind];

    return strcmp(s->country->cc, "US") == 0 ? w->us : w->abroad;
}

/* The token endpoint and the tracking path. */
static bool usps_route(const char *method, const char *path)
{
    size_t n = strlen(USPS_TRACK_PREFIX);

    (void)method;
    if (strcmp(path, USPS_TOKEN_PATH) == 0)
        return true;
    return strncmp(path, USPS_TRACK_PREFIX, n) == 0 && path[n] != '\0' &&
           strchr(path + n, '/') == NULL;
}

/* True for a number detect.c gives to USPS, written as letters and digits. */
static bool usps_number_valid(const char *number)
{
    size_t n = strlen(number);

    if (n == 0 || n > DETECT_NUMBER_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)number[i]))
            return false;
    return detect_valid_for("usps", number, NULL, 0);
}

/* IMpb 22: "94001" + "1" + 15 digits of serial + the check digit that passes. */
static bool usps_number_from_serial(uint64_t serial, char *out, size_t cap)
{
    char buf[24];

    if (cap < 23)
        return false;
    snprintf(buf, sizeof(buf), "940011%015llu0",
             (unsigned long long)(serial % 1000000000000000ull));
    for (char d = '0'; d <= '9'; d++) {
        buf[21] = d;
        if (detect_valid_for("usps", buf, NULL, 0)) {
            memcpy(out, buf, 23);
            return true;
        }
    }
    return false;
}

/* "YYYY-MM-DDTHH:MM:SSZ" of instant t as the LOCAL time in zone (USPS's quirk). */
static const char *format_time(time_t t, const char *zone, char buf[32])
{
    struct tm tm;
    int off = 0;

    if (zone == NULL || !sim_local_time(zone, t, &tm, &off)) {
        char z[21];

        snprintf(buf, 32, "%s", sim_iso_utc(t, z));
        return buf;
    }
    if (strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        buf[0] = '\0';
    return buf;
}

/* The USPS event of journey step i. */
static json_t *render_event(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct journey_step *s = &j->steps[i];
    bool us = strcmp(s->country->cc, "US") == 0;
    char ts[32];

    format_time(journey_step_time(j, i, env->clock), journey_zone(s->country, s->place), ts);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "eventType", step_text(s),
                     "eventTimestamp", ts, "eventCountry", country_name(s->country), "eventCity",
                     s->place->city, "eventState", us && s->place->region ? s->place->region : "",
                     "eventZIP", s->place->postal, "eventCode", usps_words[s->kind].code, "firm",
                     "", "name", "");
}

/* The whole body for a journey with `visible` steps shown. */
static json_t *render_body(const struct sim_env *env, const struct journey *j, size_t visible,
                           bool detail)
{
    const struct journey_step *last = visible > 0 ? &j->steps[visible - 1] : NULL;
    bool dest_us = strcmp(j->dest->cc, "US") == 0, orig_us = strcmp(j->origin->cc, "US") == 0;
    json_t *events = json_array(), *root;
    char summary[256];
    time_t edd;

    if (events == NULL)
        return NULL;
    for (size_t i = visible; detail && i-- > 0;) { /* newest first, as USPS lists them */
        json_t *ev = render_event(env, j, i);

        if (ev == NULL || json_array_append_new(events, ev) != 0) {
            json_decref(events);
            return NULL;
        }
    }
    if (last != NULL)
        snprintf(summary, sizeof(summary), "Your item's latest status: %s, %s.", step_text(last),
                 last->place->city);
    else
        snprintf(summary, sizeof(summary), "A status update is not yet available on your item.");
    root = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "trackingNumber",
                     j->number, "mailClass",
                     orig_us && dest_us ? "Priority Mail" : "Priority Mail International",
                     "mailType", orig_us && dest_us ? "DOMESTIC" : "INTERNATIONAL", "originCity",
                     j->from->city, "originState",
                     orig_us && j->from->region ? j->from->region : "", "originZIP",
                     j->from->postal, "destinationCity", j->to->city, "destinationState",
                     dest_us && j->to->region ? j->to->region : "", "destinationZIP",
                     j->to->postal, "status", last ? step_text(last) : "Label Created, not yet in system",
                     "statusCategory", last ? usps_words[last->kind].category : "Pre-Shipment",
                     "statusSummary", summary);
    if (root == NULL) {
        json_decref(events);
        return NULL;
    }
    if (journey_edd(j, visible, env->clock, &edd)) {
        struct tm tm;
        int off;
        char day[16];

        if (sim_local_time(journey_zone(j->dest, j->to), edd, &tm, &off) &&
            strftime(day, sizeof(day), "%Y-%m-%d", &tm) > 0)
            json_object_set_new(root, "expectedDeliveryDate", json_string(day));
    }
    if (detail)
        json_object_set_new(root, "trackingEvents", events);
    else
        json_decref(events);
    return root;
}

/* USPS's error document: {"apiVersion", "error": {code, message, errors[]}}. */
static void respond_error(struct sim_response *resp, unsigned status, const char *code,
                          const char *title, const char *detail)
{
    char st[8];

    snprintf(st, sizeof(st), "%u", status);
    sim_respond_json(resp, status, "application/json",
                     json_pack("{s:s,s:{s:s,s:s,s:[{s:s,s:s,s:s,s:s}]}}", "apiVersion",
                               "/tracking/v3", "error", "code", st, "message", title, "errors",
                               "status", st, "code", code, "title", title, "detail", detail));
}

/* POST /oauth2/v3/token. */
static void handle_token(const struct sim_env *env, const struct sim_request *req,
                         struct sim_response *resp)
{
    char id[256] = "", secret[256] = "", grant[64] = "", token[64];
    json_t *body = NULL;
    long expires_in = 0;
    struct timespec now;

    if (strcmp(req->method, "POST") != 0) {
        sim_respond_json(resp, 405, "application/json",
                         json_pack("{s:s,s:s}", "error", "invalid_request", "error_description",
                                   "Use POST."));
        sim_response_header(resp, "Allow", "POST");
        return;
    }
    body = json_loadb(req->body, req->body_len, 0, NULL);
    if (json_is_object(body)) {
        json_t *v;

        if (json_is_string(v = json_object_get(body, "client_id")))
            snprintf(id, sizeof(id), "%s", json_string_value(v));
        if (json_is_string(v = json_object_get(body, "client_secret")))
            snprintf(secret, sizeof(secret), "%s", json_string_value(v));
        if (json_is_string(v = json_object_get(body, "grant_type")))
            snprintf(grant, sizeof(grant), "%s", json_string_value(v));
    } else if (!sim_form_value(req->body, "client_id", id, sizeof(id)) ||
               !sim_form_value(req->body, "client_secret", secret, sizeof(secret)) ||
               !sim_form_value(req->body, "grant_type", grant, sizeof(grant))) {
        id[0] = secret[0] = grant[0] = '\0';
    }
    json_decref(body);
    if (strcmp(grant, "client_credentials") != 0) {
        sim_respond_json(resp, 400, "application/json",
                         json_pack("{s:s,s:s}", "error", "unsupported_grant_type",
                                   "error_description",
                                   "grant_type must be client_credentials."));
        return;
    }
    if (!sim_oauth_client_ok(env, id, secret)) {
        sim_respond_json(resp, 401, "application/json",
                         json_pack("{s:s,s:s}", "error", "invalid_client", "error_description",
                                   "Client authentication failed."));
        return;
    }
    if (!sim_oauth_issue(env, "usps", token, sizeof(token), &expires_in)) {
        sim_respond_json(resp, 503, "application/json",
                         json_pack("{s:s,s:s}", "error", "temporarily_unavailable",
                                   "error_description", "No token could be issued."));
        return;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    sim_respond_json(resp, 200, "application/json",
                     json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "access_token", token,
                               "token_type", "Bearer", "issued_at",
                               (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
                               "expires_in", (json_int_t)expires_in, "status", "approved",
                               "scope", "tracking", "issuer", "api.usps.com", "client_id", id));
}

/* Answer a USPS route. */
static void usps_handle(const struct sim_env *env, const struct sim_request *req,
                        struct sim_response *resp)
{
    const char *number, *expand;
    struct journey j;
    char detail[128];
    json_t *body;

    if (strcmp(req->path, USPS_TOKEN_PATH) == 0) {
        handle_token(env, req, resp);
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        respond_error(resp, 405, "405", "Method Not Allowed", "Use GET.");
        sim_response_header(resp, "Allow", "GET");
        return;
    }
    if (!sim_oauth_valid(env, "usps", sim_header(req, "Authorization"))) {
        respond_error(resp, 401, "401", "Unauthorized",
                      "The OAuth token is missing, invalid, expired or used up.");
        return;
    }
    number = req->path + strlen(USPS_TRACK_PREFIX);
    if (!usps_number_valid(number)) {
        snprintf(detail, sizeof(detail), "%.40s is not a valid USPS tracking number (150002).",
                 number);
        respond_error(resp, 400, "150002", "Invalid tracking number", detail);
        return;
    }
    if (!journey_build("usps", number, &j)) {
        snprintf(detail, sizeof(detail),
                 "The tracking number %.40s may be incorrect or the status update is not yet "
                 "available.", number);
        respond_error(resp, 400, "150001", "Tracking number not found", detail);
        return;
    }
    expand = sim_query(req, "expand");
    body = render_body(env, &j, journey_visible_count(&j, env->clock),
                       expand != NULL && strcasecmp(expand, "DETAIL") == 0);
    if (body == NULL) {
        respond_error(resp, 500, "500", "Internal Server Error",
                      "The simulator ran out of memory.");
        return;
    }
    sim_respond_json(resp, 200, "application/json", body);
}

/* Wire facts of step i for /_sim/journey: exactly what USPS shows for it. */
static json_t *usps_wire_step(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct journey_step *s = &j->steps[i];
    bool us = strcmp(s->country->cc, "US") == 0;
    char ts[32];

    format_time(journey_step_time(j, i, env->clock), journey_zone(s->country, s->place), ts);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "eventTimestamp", ts, "timestamp_style",
                     "local", "eventCode", usps_words[s->kind].code, "eventType", step_text(s),
                     "eventCountry", country_name(s->country), "eventState",
                     us && s->place->region ? s->place->region : "");
}

const struct sim_carrier sim_carrier_usps = {
    .name = "usps",
    .route = usps_route,
    .handle = usps_handle,
    .number_valid = usps_number_valid,
    .number_from_serial = usps_number_from_serial,
    .wire_step = usps_wire_step,
};
