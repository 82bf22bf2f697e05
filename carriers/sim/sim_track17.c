/*
 * sim_track17.c - the simulator's 17TRACK API v2.2 renderer.
 *
 * Serves POST /track/v2.2/register and POST /track/v2.2/gettrackinfo with
 * the `17token` header checked against --track17-api-key (401 otherwise).
 * Both take a JSON array of {"number", "carrier"?}, at most 40, and answer
 * {code, data:{accepted[], rejected[{number, error{code, message}}]}}:
 *
 *   register      accepted [{origin, number, carrier}]; a number registered
 *                 before is rejected with -18019901 (already registered).
 *   gettrackinfo  a number never registered in this run is rejected with
 *                 -18019902; a registered number the journeys do not know is
 *                 either rejected with -18019909 (no information yet) or
 *                 accepted with latest_status NotFound and no providers
 *                 (chosen per number); known numbers are accepted with
 *                 track_info rendered from the journey.
 *   > 40 numbers  code -18010014 with data.errors[], nothing processed.
 *   bad body      HTTP 400, code -18010003 (the simulator's choice).
 *
 * The set of registered numbers lives for the run, guarded by a mutex, capped
 * at T17_SIM_REGISTRY entries (-18019908, a simulator code, when full).
 *
 * Journeys: 17TRACK follows any post or carrier, so any number detect.c
 * accepts for track17 is served (S10 items like RR123456785FR, UPS, FedEx,
 * DHL shapes); plan numbers are S10 items of posts we have no driver for.
 * Events are split between the origin's and the destination's provider for
 * cross-border journeys, newest first, with sub_status/stage per kind;
 * facility scans are InTransit_Other with words only, and customs steps add
 * the destination's own words. Per step (from the journey hash) the time is
 * either complete (time_iso with offset, time_utc, time_raw with timezone) or
 * local only (time_raw without timezone, time_iso and time_utc null), so
 * drivers must derive or flag the zone. The unmapped step uses a sub_status
 * 17TRACK does not have ("InTransit_NetworkUpdate"). Provider keys are the
 * simulator's own, not 17TRACK's carrier list.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "detect.h"
#include "sim.h"

#define T17_SIM_BATCH      40
#define T17_SIM_REGISTRY   65536u            /* registered numbers kept per run */
#define T17_ERR_ALREADY    (-18019901)
#define T17_ERR_NOT_REG    (-18019902)
#define T17_ERR_NO_INFO    (-18019909)
#define T17_ERR_FULL       (-18019908)       /* simulator's own: registry full */
#define T17_ERR_INVALID    (-18010012)       /* simulator's choice: bad number */
#define T17_ERR_OVER       (-18010014)
#define T17_ERR_BODY       (-18010003)       /* simulator's choice: bad body */
#define T17_ERR_TOKEN      (-18010002)       /* simulator's choice: bad 17token */

/* 17TRACK's words for a journey kind. */
struct t17_words {
    const char *sub_status;
    const char *stage;           /* milestone stage, or NULL */
};

static const struct t17_words t17_words[JK__COUNT] = {
    [JK_LABEL_CREATED] = { "InfoReceived", "InfoReceived" },
    [JK_PICKED_UP] = { "InTransit_PickedUp", "PickedUp" },
    [JK_DEPARTED_FACILITY] = { "InTransit_Other", NULL },
    [JK_ARRIVED_FACILITY] = { "InTransit_Other", NULL },
    [JK_DEPARTED_ORIGIN_COUNTRY] = { "InTransit_Departure", "Departure" },
    [JK_ARRIVED_DESTINATION_COUNTRY] = { "InTransit_Arrival", "Arrival" },
    [JK_CUSTOMS_PROCESSING] = { "InTransit_CustomsProcessing", NULL },
    [JK_CUSTOMS_DUTIES_DUE] = { "InTransit_CustomsRequiringInformation", NULL },
    [JK_CUSTOMS_DOCUMENTS_REQUIRED] = { "InTransit_CustomsRequiringInformation", NULL },
    [JK_CUSTOMS_INSPECTION] = { "InTransit_CustomsProcessing", NULL },
    [JK_CUSTOMS_RELEASED] = { "InTransit_CustomsReleased", NULL },
    [JK_OUT_FOR_DELIVERY] = { "OutForDelivery_Other", "OutForDelivery" },
    [JK_ATTEMPT_FAILED] = { "DeliveryFailure_NoBody", NULL },
    [JK_AVAILABLE_FOR_PICKUP] = { "AvailableForPickup_Other", "AvailableForPickup" },
    [JK_DELIVERED] = { "Delivered_Other", "Delivered" },
    [JK_RETURN_TO_SENDER] = { "Exception_Returning", "Returning" },
    [JK_RETURNED] = { "Exception_Returned", "Returned" },
    [JK_UNMAPPED_CODE] = { "InTransit_NetworkUpdate", NULL },
};

/* How a step's time is written. */
enum t17_time_style { T17_TS_OFFSET, T17_TS_LOCAL };

/* ------------------------------------------------------------------------ */
/* Registered numbers of this run. */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static char reg_slots[T17_SIM_REGISTRY][JOURNEY_NUMBER_MAX]; /* "" = free */
static size_t reg_count;

/* Upper-cased copy of number into out[JOURNEY_NUMBER_MAX]; false if too long. */
static bool reg_key(const char *number, char out[JOURNEY_NUMBER_MAX])
{
    size_t n = strlen(number);

    if (n == 0 || n >= JOURNEY_NUMBER_MAX)
        return false;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)(number[i] >= 'a' && number[i] <= 'z' ? number[i] - 32 : number[i]);
    return true;
}

/* FNV-1a of key, mixed. */
static uint64_t key_hash(const char *key)
{
    uint64_t h = 1469598103934665603ull;

    for (const char *p = key; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return sim_mix64(h);
}

/* Slot of key: where it is, or the free slot where it would go. Lock held. */
static size_t reg_slot(const char *key)
{
    for (size_t i = (size_t)(key_hash(key) % T17_SIM_REGISTRY);; i = (i + 1) % T17_SIM_REGISTRY)
        if (reg_slots[i][0] == '\0' || strcmp(reg_slots[i], key) == 0)
            return i;
}

/* Register key: 0 newly added, 1 already there, -1 registry full. */
static int reg_add(const char *key)
{
    size_t i;
    int rc;

    pthread_mutex_lock(&reg_lock);
    i = reg_slot(key);
    if (reg_slots[i][0] != '\0')
        rc = 1;
    else if (reg_count + 1 >= T17_SIM_REGISTRY) /* one slot stays free: probes end */
        rc = -1;
    else {
        memcpy(reg_slots[i], key, strlen(key) + 1);
        reg_count++;
        rc = 0;
    }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

/* True when number was registered in this run. */
static bool reg_has(const char *key)
{
    bool found;

    pthread_mutex_lock(&reg_lock);
    found = reg_slots[reg_slot(key)][0] != '\0';
    pthread_mutex_unlock(&reg_lock);
    return found;
}

/* ------------------------------------------------------------------------ */
/* Numbers. */

/* Any number detect.c lets 17TRACK track. */
static bool t17_number_valid(const char *number)
{
    return strlen(number) < JOURNEY_NUMBER_MAX && detect_valid_for("track17", number, NULL, 0);
}

/* An S10 item (UPU): service letters, 8-digit serial, check digit, country
 * of a post we have no driver for. */
static bool t17_number_from_serial(uint64_t serial, char *out, size_t cap)
{
    static const char *const services[] = { "RR", "RB", "LX", "CP", "EE", "UA" };
    static const char *const posts[] = { "CN", "DE", "GB", "JP", "NL", "SE",
                                         "ES", "IT", "PL", "BR", "CH", "AU" };
    static const unsigned w[8] = { 8, 6, 4, 2, 3, 5, 9, 7 };
    uint64_t mix = sim_mix64(serial);
    unsigned long s = (unsigned long)(serial % 100000000ull), total = 0;
    char digits[9];
    unsigned r, check;
    int n;

    snprintf(digits, sizeof(digits), "%08lu", s);
    for (int i = 0; i < 8; i++)
        total += (unsigned long)(digits[i] - '0') * w[i];
    r = (unsigned)(total % 11);
    check = r == 0 ? 5 : r == 1 ? 0 : 11 - r;
    n = snprintf(out, cap, "%s%s%u%s", services[mix % 6], digits, check,
                 posts[(mix >> 8) % (sizeof(posts) / sizeof(posts[0]))]);
    return n == 13 && (size_t)n < cap;
}

/* ------------------------------------------------------------------------ */
/* Rendering. */

/* The time style of step i, fixed per journey and step: one in three local. */
static enum t17_time_style time_style(const struct journey *j, size_t i)
{
    return sim_mix64(j->hash ^ (0x17ull * (i + 1))) % 3 == 0 ? T17_TS_LOCAL : T17_TS_OFFSET;
}

/* Local wall time of t in zone: date[11], tod[9] and tz[7] ("+01:00");
 * false when the zone is unknown (UTC is used then). */
static bool local_parts(time_t t, const char *zone, char date[11], char tod[9], char tz[7])
{
    struct tm tm;
    int off = 0, a;
    bool ok = zone != NULL && sim_local_time(zone, t, &tm, &off);

    if (!ok && gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    if (strftime(date, 11, "%Y-%m-%d", &tm) == 0)
        date[0] = '\0';
    if (strftime(tod, 9, "%H:%M:%S", &tm) == 0)
        tod[0] = '\0';
    a = off < 0 ? -off : off;
    snprintf(tz, 7, "%c%02d:%02d", off < 0 ? '-' : '+', a / 60 % 24, a % 60);
    return ok;
}

/* The time members of step i's event: time_iso, time_utc, time_raw. */
static json_t *event_times(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct journey_step *s = &j->steps[i];
    time_t at = journey_step_time(j, i, env->clock);
    char date[11], tod[9], tz[7], iso[40], utc[21];

    local_parts(at, journey_zone(s->country, s->place), date, tod, tz);
    if (time_style(j, i) == T17_TS_LOCAL)
        return json_pack("{s:n,s:n,s:{s:s,s:s,s:n}}", "time_iso", "time_utc", "time_raw",
                         "date", date, "time", tod, "timezone");
    snprintf(iso, sizeof(iso), "%sT%s%s", date, tod, tz);
    return json_pack("{s:s,s:s,s:{s:s,s:s,s:s}}", "time_iso", iso, "time_utc",
                     sim_iso_utc(at, utc), "time_raw", "date", date, "time", tod, "timezone", tz);
}

/* The description of step i: English words, plus the local post's own words
 * for customs steps. */
static void describe(const struct journey_step *s, char *buf, size_t cap)
{
    if (s->remark != NULL)
        snprintf(buf, cap, "%s / %s", s->text, s->remark);
    else
        snprintf(buf, cap, "%s", s->text);
}

/* The 17TRACK event of journey step i. */
static json_t *render_event(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct journey_step *s = &j->steps[i];
    const struct t17_words *w = &t17_words[s->kind];
    char desc[512], location[160];
    json_t *ev = event_times(env, j, i);

    if (ev == NULL)
        return NULL;
    describe(s, desc, sizeof(desc));
    snprintf(location, sizeof(location), "%s%s%s, %s", s->place->city,
             s->place->region ? ", " : "", s->place->region ? s->place->region : "",
             s->country->cc);
    if (json_object_update_new(ev, json_pack("{s:s,s:s,s:s?,s:s,s:{s:s,s:s?,s:s,s:n,s:s}}",
                                             "description", desc, "location", location, "stage",
                                             w->stage, "sub_status", w->sub_status, "address",
                                             "country", s->country->cc, "state",
                                             s->place->region, "city", s->place->city, "street",
                                             "postal_code", s->place->postal)) != 0) {
        json_decref(ev);
        return NULL;
    }
    return ev;
}

/* A provider object for the post of country c (keys are the simulator's own). */
static json_t *provider(const struct sim_country *c, json_t *events)
{
    char name[32];

    snprintf(name, sizeof(name), "SimPost %s", c->cc);
    return json_pack("{s:{s:i,s:s,s:s,s:s},s:s,s:o}", "provider", "key",
                     900000 + (c->cc[0] - 'A') * 26 + (c->cc[1] - 'A'), "name", name, "country",
                     c->cc, "homepage", "https://post.example", "latest_sync_status", "Success",
                     "events", events);
}

/* "Status" of a sub_status ("InTransit" of "InTransit_Other"). */
static void status_of(const char *sub, char *buf, size_t cap)
{
    const char *us = strchr(sub, '_');

    snprintf(buf, cap, "%.*s", us != NULL ? (int)(us - sub) : (int)strlen(sub), sub);
}

/* track_info for a journey with `visible` steps shown; NULL when out of memory. */
static json_t *render_track_info(const struct sim_env *env, const struct journey *j,
                                 size_t visible)
{
    bool cross = j->origin != j->dest;
    json_t *orig_ev = json_array(), *dest_ev = json_array(), *providers = json_array();
    json_t *latest_event = json_null(), *edd_json;
    const char *sub = "NotFound_Other";
    char status[32], from[40], to[40], date[11], tod[9], tz[7];
    int rc = 0;
    time_t edd;

    if (orig_ev == NULL || dest_ev == NULL || providers == NULL)
        rc = -1;
    for (size_t i = visible; rc == 0 && i-- > 0;) { /* newest first */
        json_t *ev = render_event(env, j, i);
        bool at_dest = cross && j->steps[i].country == j->dest;

        if (ev != NULL && i + 1 == visible) {
            json_decref(latest_event);
            latest_event = json_deep_copy(ev);
        }
        rc = json_array_append_new(at_dest ? dest_ev : orig_ev, ev);
    }
    /* The destination's post first, as 17TRACK lists the last-mile carrier. */
    if (rc == 0 && json_array_size(dest_ev) > 0) {
        rc = json_array_append_new(providers, provider(j->dest, dest_ev)); /* steals */
        dest_ev = NULL;
    }
    if (rc == 0 && json_array_size(orig_ev) > 0) {
        rc = json_array_append_new(providers, provider(j->origin, orig_ev));
        orig_ev = NULL;
    }
    json_decref(orig_ev);
    json_decref(dest_ev);
    if (rc != 0 || latest_event == NULL) {
        json_decref(providers);
        json_decref(latest_event);
        return NULL;
    }
    if (visible > 0)
        sub = t17_words[j->steps[visible - 1].kind].sub_status;
    status_of(sub, status, sizeof(status));
    if (journey_edd(j, visible, env->clock, &edd)) {
        local_parts(edd, journey_zone(j->dest, j->to), date, tod, tz);
        snprintf(from, sizeof(from), "%sT00:00:00%s", date, tz);
        snprintf(to, sizeof(to), "%sT%s%s", date, tod, tz);
        edd_json = json_pack("{s:s,s:s,s:s}", "source", "Official", "from", from, "to", to);
    } else
        edd_json = json_pack("{s:n,s:n,s:n}", "source", "from", "to");
    /* json_pack releases the "o" arguments when it fails */
    return json_pack("{s:{s:{s:s},s:{s:s}},s:{s:s,s:s},s:o,s:{s:o},s:{s:o}}", "shipping_info",
                     "shipper_address", "country", j->origin->cc, "recipient_address", "country",
                     j->dest->cc, "latest_status", "status", status, "sub_status", sub,
                     "latest_event", latest_event, "time_metrics", "estimated_delivery_date",
                     edd_json, "tracking", "providers", providers);
}

/* ------------------------------------------------------------------------ */
/* Requests. */

/* {"code":code,"data":{"errors":[{"code":code,"message":msg}]}} with HTTP status. */
static void respond_error(struct sim_response *resp, unsigned status, int code, const char *msg)
{
    sim_respond_json(resp, status, "application/json",
                     json_pack("{s:i,s:{s:[{s:i,s:s}]}}", "code", code, "data", "errors", "code",
                               code, "message", msg));
}

/* A rejected[] entry: "The tracking number 'N' <what>". */
static json_t *rejection(const char *number, int code, const char *what)
{
    char msg[256];

    snprintf(msg, sizeof(msg), "The tracking number '%.47s' %s", number, what);
    return json_pack("{s:s,s:{s:i,s:s}}", "number", number, "error", "code", code, "message",
                     msg);
}

/* POST /track/v2.2/register and /track/v2.2/gettrackinfo. */
static bool t17_route(const char *method, const char *path)
{
    (void)method;
    return strcmp(path, "/track/v2.2/register") == 0 ||
           strcmp(path, "/track/v2.2/gettrackinfo") == 0;
}

/* Answer one number of a gettrackinfo call into accepted or rejected. */
static int track_one(const struct sim_env *env, const char *number, const char *key,
                     json_t *accepted, json_t *rejected)
{
    struct journey j;
    json_t *info;

    if (!reg_has(key))
        return json_array_append_new(
            rejected, rejection(number, T17_ERR_NOT_REG,
                                "is not registered, please register it first."));
    if (!t17_number_valid(number) || !journey_build("track17", number, &j)) {
        if (key_hash(key) % 2 == 0) /* both ways 17TRACK says "nothing yet" */
            return json_array_append_new(
                rejected, rejection(number, T17_ERR_NO_INFO,
                                    "has no tracking information yet."));
        return json_array_append_new(
            accepted, json_pack("{s:s,s:i,s:{s:{s:s,s:s},s:{s:[]}}}", "number", number,
                                "carrier", 0, "track_info", "latest_status", "status",
                                "NotFound", "sub_status", "NotFound_Other", "tracking",
                                "providers"));
    }
    info = render_track_info(env, &j, journey_visible_count(&j, env->clock));
    if (info == NULL)
        return -1;
    return json_array_append_new(
        accepted, json_pack("{s:s,s:i,s:s,s:o}", "number", number, "carrier",
                            900000 + (j.origin->cc[0] - 'A') * 26 + (j.origin->cc[1] - 'A'),
                            "tag", "", "track_info", info));
}

/* Answer one number of a register call into accepted or rejected. */
static int register_one(const char *number, const char *key, json_t *accepted, json_t *rejected)
{
    switch (reg_add(key)) {
    case 0:
        return json_array_append_new(accepted, json_pack("{s:i,s:s,s:i}", "origin", 1, "number",
                                                         number, "carrier", 0));
    case 1:
        return json_array_append_new(
            rejected, rejection(number, T17_ERR_ALREADY,
                                "has been registered already."));
    default:
        return json_array_append_new(
            rejected, rejection(number, T17_ERR_FULL,
                                "cannot be registered: the simulator's registry is full."));
    }
}

/* Answer /track/v2.2/{register,gettrackinfo}. */
static void t17_handle(const struct sim_env *env, const struct sim_request *req,
                       struct sim_response *resp)
{
    const char *token = sim_header(req, "17token");
    bool reg = strcmp(req->path, "/track/v2.2/register") == 0;
    json_t *list, *accepted, *rejected, *item;
    json_error_t jerr;
    size_t i;

    if (strcmp(req->method, "POST") != 0) {
        respond_error(resp, 405, T17_ERR_BODY, "Use POST.");
        sim_response_header(resp, "Allow", "POST");
        return;
    }
    if (token == NULL || strcmp(token, env->opt->track17_api_key) != 0) {
        respond_error(resp, 401, T17_ERR_TOKEN,
                      token == NULL ? "The 17token header is missing."
                                    : "The access token is invalid.");
        return;
    }
    list = json_loadb(req->body, req->body_len, 0, &jerr);
    if (list == NULL || !json_is_array(list)) {
        json_decref(list);
        respond_error(resp, 400, T17_ERR_BODY, "The request body must be a JSON array.");
        return;
    }
    if (json_array_size(list) > T17_SIM_BATCH) {
        json_decref(list);
        respond_error(resp, 200, T17_ERR_OVER,
                      "The submitted numbers exceed the limit of 40 per request.");
        return;
    }
    accepted = json_array();
    rejected = json_array();
    if (accepted == NULL || rejected == NULL)
        goto oom;
    json_array_foreach(list, i, item) {
        json_t *num = json_is_object(item) ? json_object_get(item, "number") : NULL;
        const char *number = json_is_string(num) ? json_string_value(num) : "";
        char key[JOURNEY_NUMBER_MAX];
        int rc;

        if (!reg_key(number, key) || !t17_number_valid(number))
            rc = json_array_append_new(
                rejected, rejection(number, T17_ERR_INVALID,
                                    "is not a valid number."));
        else if (reg)
            rc = register_one(number, key, accepted, rejected);
        else
            rc = track_one(env, number, key, accepted, rejected);
        if (rc != 0)
            goto oom;
    }
    json_decref(list);
    sim_respond_json(resp, 200, "application/json",
                     json_pack("{s:i,s:{s:o,s:o}}", "code", 0, "data", "accepted", accepted,
                               "rejected", rejected));
    return;
oom:
    json_decref(list);
    json_decref(accepted);
    json_decref(rejected);
    respond_error(resp, 500, -1, "The simulator ran out of memory.");
}

/* Wire facts of step i for /_sim/journey: exactly what 17TRACK shows for it. */
static json_t *t17_wire_step(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct journey_step *s = &j->steps[i];
    json_t *w = event_times(env, j, i);
    char desc[512];

    if (w == NULL)
        return NULL;
    describe(s, desc, sizeof(desc));
    if (json_object_update_new(w, json_pack("{s:s,s:s,s:s?,s:s}", "timestamp_style",
                                            time_style(j, i) == T17_TS_LOCAL ? "local" : "offset",
                                            "sub_status", t17_words[s->kind].sub_status, "stage",
                                            t17_words[s->kind].stage, "description", desc)) != 0) {
        json_decref(w);
        return NULL;
    }
    return w;
}

const struct sim_carrier sim_carrier_track17 = {
    .name = "track17",
    .route = t17_route,
    .handle = t17_handle,
    .number_valid = t17_number_valid,
    .number_from_serial = t17_number_from_serial,
    .wire_step = t17_wire_step,
};
