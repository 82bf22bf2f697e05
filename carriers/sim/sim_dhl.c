/*
 * sim_dhl.c - the simulator's DHL Shipment Tracking - Unified renderer.
 *
 * Serves GET /track/shipments?trackingNumber=N in DHL Unified's documented
 * shape: shipments[] with origin/destination addresses, the latest status,
 * estimatedTimeOfDelivery, returnFlag and events[] newest first. Checks the
 * DHL-API-Key header (401 problem+json otherwise) and answers 404
 * problem+json for numbers it does not know. Numbers are DHL Express style:
 * nine digits of serial and a check digit equal to serial mod 7.
 *
 * Timestamps are deliberately mixed, as DHL's are: per step (chosen from the
 * journey hash) local time with an offset, UTC with Z, or bare local time
 * without any offset, so that drivers must derive or flag the zone.
 */
#include <stdio.h>
#include <string.h>

#include "sim.h"

/* How a step's timestamp is written. */
enum dhl_time_style { DHL_TS_OFFSET, DHL_TS_UTC, DHL_TS_LOCAL };

/* DHL's words for a journey kind. */
struct dhl_words {
    const char *status_code;     /* statusCode: pre-transit|transit|delivered|failure|unknown */
    const char *status;          /* short title */
    const char *detailed;        /* statusDetailed */
};

static const struct dhl_words dhl_words[JK__COUNT] = {
    [JK_LABEL_CREATED] = { "pre-transit", "Shipment information received", "pre-transit" },
    [JK_PICKED_UP] = { "transit", "Picked up", "picked-up" },
    [JK_DEPARTED_FACILITY] = { "transit", "Departed facility", "departed-facility" },
    [JK_ARRIVED_FACILITY] = { "transit", "Arrived at facility", "arrived-at-facility" },
    [JK_DEPARTED_ORIGIN_COUNTRY] = { "transit", "Left origin country", "export-departed" },
    [JK_ARRIVED_DESTINATION_COUNTRY] = { "transit", "Arrived in destination country",
                                         "import-arrived" },
    [JK_CUSTOMS_PROCESSING] = { "transit", "Customs clearance", "customs-clearance" },
    [JK_CUSTOMS_DUTIES_DUE] = { "transit", "Held at customs", "customs-hold" },
    [JK_CUSTOMS_DOCUMENTS_REQUIRED] = { "transit", "Held at customs", "customs-hold" },
    [JK_CUSTOMS_INSPECTION] = { "transit", "Held at customs", "customs-hold" },
    [JK_CUSTOMS_RELEASED] = { "transit", "Customs cleared", "customs-released" },
    [JK_OUT_FOR_DELIVERY] = { "transit", "Out for delivery", "out-for-delivery" },
    [JK_ATTEMPT_FAILED] = { "failure", "Delivery attempted", "delivery-attempted" },
    [JK_AVAILABLE_FOR_PICKUP] = { "transit", "Ready for pickup", "ready-for-pickup" },
    [JK_DELIVERED] = { "delivered", "Delivered", "delivered" },
    [JK_RETURN_TO_SENDER] = { "transit", "Returning to sender", "returning" },
    [JK_RETURNED] = { "delivered", "Returned to sender", "returned" },
    [JK_UNMAPPED_CODE] = { "unknown", "Status update", "SIM-X17" },
};

/* GET (any method, answered 405) on /track/shipments. */
static bool dhl_route(const char *method, const char *path)
{
    (void)method;
    return strcmp(path, "/track/shipments") == 0;
}

/* Nine digits of serial and a mod-7 check digit. */
static bool dhl_number_valid(const char *number)
{
    unsigned long serial = 0;

    if (strlen(number) != 10)
        return false;
    for (int i = 0; i < 10; i++)
        if (number[i] < '0' || number[i] > '9')
            return false;
    for (int i = 0; i < 9; i++)
        serial = serial * 10 + (unsigned long)(number[i] - '0');
    return (unsigned long)(number[9] - '0') == serial % 7;
}

/* The valid number of a serial (taken mod 10^9). */
static bool dhl_number_from_serial(uint64_t serial, char *out, size_t cap)
{
    unsigned long s = (unsigned long)(serial % 1000000000ull);
    int n = snprintf(out, cap, "%09lu%lu", s, s % 7);

    return n == 10 && (size_t)n < cap;
}

/* The timestamp style of step i, fixed per journey and step. */
static enum dhl_time_style time_style(const struct journey *j, size_t i)
{
    return (enum dhl_time_style)(sim_mix64(j->hash ^ (0xD41ull * (i + 1))) % 3);
}

/* Write instant t in zone with style into buf[32]. */
static const char *format_time(time_t t, const char *zone, enum dhl_time_style style,
                               char buf[32])
{
    struct tm tm;
    int off = 0;

    if (style == DHL_TS_UTC || !sim_local_time(zone, t, &tm, &off)) {
        char z[21];
        snprintf(buf, 32, "%s", sim_iso_utc(t, z));
        return buf;
    }
    if (strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        buf[0] = '\0';
    if (style == DHL_TS_OFFSET) {
        int a = off < 0 ? -off : off;
        size_t n = strlen(buf);

        snprintf(buf + n, 32 - n, "%c%02d:%02d", off < 0 ? '-' : '+', a / 60 % 100, a % 60);
    }
    return buf;
}

/* {"address":{countryCode,postalCode,addressLocality}} of a place. */
static json_t *address(const struct sim_country *c, const struct sim_place *p)
{
    return json_pack("{s:{s:s,s:s,s:s}}", "address", "countryCode", c->cc, "postalCode",
                     p->postal, "addressLocality", p->city);
}

/* The DHL event of journey step i. */
static json_t *render_event(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct journey_step *s = &j->steps[i];
    const struct dhl_words *w = &dhl_words[s->kind];
    char ts[32];
    json_t *ev;

    format_time(journey_step_time(j, i, env->clock), journey_zone(s->country, s->place),
                time_style(j, i), ts);
    ev = json_pack("{s:s,s:o,s:s,s:s,s:s,s:s}", "timestamp", ts, "location",
                   address(s->country, s->place), "statusCode", w->status_code, "status",
                   w->status, "statusDetailed", w->detailed, "description", s->text);
    if (ev != NULL && s->remark != NULL)
        json_object_set_new(ev, "remark", json_string(s->remark));
    return ev;
}

/* The whole body for a journey with `visible` steps shown. */
static json_t *render_body(const struct sim_env *env, const struct journey *j, size_t visible)
{
    json_t *events = json_array(), *shp, *latest = NULL;
    bool returning = false;
    time_t edd;

    if (events == NULL)
        return NULL;
    for (size_t i = visible; i-- > 0;) { /* newest first, as DHL lists them */
        json_t *ev = render_event(env, j, i);

        if (ev == NULL || json_array_append_new(events, ev) != 0) {
            json_decref(events);
            return NULL;
        }
        if (j->steps[i].kind == JK_RETURN_TO_SENDER || j->steps[i].kind == JK_RETURNED)
            returning = true;
    }
    if (json_array_size(events) > 0)
        latest = json_deep_copy(json_array_get(events, 0));
    shp = json_pack("{s:s,s:s,s:o,s:o,s:b,s:{s:{s:s}},s:o}", "id", j->number, "service",
                    "express", "origin", address(j->origin, j->from), "destination",
                    address(j->dest, j->to), "returnFlag", returning, "details", "product",
                    "productName", "DHL Express Worldwide", "events", events);
    if (shp == NULL) {
        json_decref(latest);
        return NULL;
    }
    if (latest != NULL)
        json_object_set_new(shp, "status", latest);
    if (journey_edd(j, visible, env->clock, &edd)) {
        char ts[32];

        format_time(edd, journey_zone(j->dest, j->to), DHL_TS_OFFSET, ts);
        json_object_set_new(shp, "estimatedTimeOfDelivery", json_string(ts));
    }
    return json_pack("{s:[o],s:[]}", "shipments", shp, "possibleAdditionalShipmentsUrl");
}

/* Answer /track/shipments. */
static void dhl_handle(const struct sim_env *env, const struct sim_request *req,
                       struct sim_response *resp)
{
    const char *key = sim_header(req, "DHL-API-Key");
    const char *number = sim_query(req, "trackingNumber");
    struct journey j;
    char detail[128];
    json_t *body;

    if (strcmp(req->method, "GET") != 0) {
        sim_respond_problem(resp, 405, "Method Not Allowed", "Use GET.");
        sim_response_header(resp, "Allow", "GET");
        return;
    }
    if (key == NULL || strcmp(key, env->opt->dhl_api_key) != 0) {
        sim_respond_problem(resp, 401, "Unauthorized",
                            key == NULL ? "The DHL-API-Key header is missing."
                                        : "The API key is not valid for this resource.");
        return;
    }
    if (number == NULL || number[0] == '\0') {
        sim_respond_problem(resp, 400, "Bad Request", "The trackingNumber parameter is required.");
        return;
    }
    if (!dhl_number_valid(number) || !journey_build("dhl", number, &j)) {
        snprintf(detail, sizeof(detail), "No shipment with tracking number %.40s was found.",
                 number);
        sim_respond_problem(resp, 404, "No result found", detail);
        return;
    }
    body = render_body(env, &j, journey_visible_count(&j, env->clock));
    if (body == NULL) {
        sim_respond_problem(resp, 500, "Internal Server Error", "The simulator ran out of memory.");
        return;
    }
    sim_respond_json(resp, 200, "application/json", body);
}

/* Wire facts of step i for /_sim/journey: exactly what DHL shows for it. */
static json_t *dhl_wire_step(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct journey_step *s = &j->steps[i];
    static const char *const styles[] = { "offset", "utc", "local" };
    enum dhl_time_style st = time_style(j, i);
    char ts[32];

    format_time(journey_step_time(j, i, env->clock), journey_zone(s->country, s->place), st, ts);
    return json_pack("{s:s,s:s,s:s,s:s}", "timestamp", ts, "timestamp_style", styles[st],
                     "statusCode", dhl_words[s->kind].status_code, "statusDetailed",
                     dhl_words[s->kind].detailed);
}

const struct sim_carrier sim_carrier_dhl = {
    .name = "dhl",
    .route = dhl_route,
    .handle = dhl_handle,
    .number_valid = dhl_number_valid,
    .number_from_serial = dhl_number_from_serial,
    .wire_step = dhl_wire_step,
};
