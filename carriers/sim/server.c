/*
 * server.c - the HTTP side of shiptrack-carrier-sim (libmicrohttpd).
 *
 * Owns the daemon (one thread per connection behind an internal listening
 * thread), the clock, the fault knobs and the simulator's own endpoints:
 *
 *   GET /_sim/health                         200 {"status":"ok"}
 *   GET /_sim/journey?carrier=C&number=N     the whole journey, for tests
 *   GET /_sim/clock                          journey time elapsed; all_complete once
 *                                            every possible journey has played out
 *   GET /_sim/faults                         the fault knobs in force and, per carrier,
 *                                            counters: requests, answers by class
 *                                            (2xx, 401, 429, 5xx, other), bodies cut,
 *                                            and "early": requests that arrived while a
 *                                            Retry-After this carrier was given still ran
 *   POST /_sim/faults?error_rate=P&rate_429=P&malformed_rate=P&reset_rate=P&oversized_rate=P
 *                    &slow_body_ms=N&latency_ms=N&carrier=C
 *                                            change the knobs at run time; parameters
 *                                            left out keep their value; carrier=C
 *                                            limits faults to C's routes (carrier= or
 *                                            carrier=all: every carrier). All values
 *                                            are checked first, then applied at once
 *                                            (a request sees the old set or the new,
 *                                            never a mix); a bad value is a 400 and
 *                                            changes nothing. Answers like the GET.
 *   anything a carrier's route() accepts     that carrier's renderer
 *
 * Faults hit carrier routes only, drawn per request from a generator seeded
 * by --seed and the request's sequence number: latency first, then 429 (with
 * Retry-After: 1), then 500, then, on a 2xx (La Poste answers 207), a body
 * cut in half. They start
 * as the command line set them and /_sim/faults may change them later.
 *
 * Runs until SIGTERM or SIGINT, then stops the daemon and returns 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "sim.h"

#define SIM_UPLOAD_MAX (1024 * 1024) /* request bodies above this get 413 */

extern const struct sim_carrier sim_carrier_dhl;
extern const struct sim_carrier sim_carrier_laposte;
extern const struct sim_carrier sim_carrier_track17;
extern const struct sim_carrier sim_carrier_ups;
extern const struct sim_carrier sim_carrier_usps;
extern const struct sim_carrier sim_carrier_fedex;

/* Every carrier the simulator speaks; add one line per new sim_<name>.c. */
const struct sim_carrier *const sim_carriers[] = {
    &sim_carrier_dhl,
    &sim_carrier_laposte,
    &sim_carrier_track17,
    &sim_carrier_ups,
    &sim_carrier_usps,
    &sim_carrier_fedex,
};

const size_t sim_carriers_count = sizeof(sim_carriers) / sizeof(sim_carriers[0]);

const struct sim_carrier *sim_carrier_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sim_carriers_count; i++)
        if (strcmp(sim_carriers[i]->name, name) == 0)
            return sim_carriers[i];
    return NULL;
}

#define SIM_RETRY_AFTER_S 1      /* the Retry-After sent with every simulated 429 */
#define SIM_OVERSIZED_BYTES (6u << 20) /* an oversized body: past shiptrack's 4 MiB default */
#define SIM_SLOW_CHUNK 512        /* bytes per chunk of a slow body */
#define SIM_CARRIERS_MAX 16       /* counters kept per carrier (>= sim_carriers_count) */

/* The fault knobs in force; replaced as a whole under fault_lock. */
struct sim_faults {
    unsigned latency_ms;
    double error_rate;
    double rate_429;
    double malformed_rate;
    double reset_rate;
    double oversized_rate;
    unsigned slow_body_ms;
    int only;                   /* index in sim_carriers of the one carrier hit, -1 = all */
};

/* What one carrier was asked and answered (under fault_lock). */
struct sim_counters {
    unsigned long requests;
    unsigned long s2xx, s401, s429, s5xx, other;
    unsigned long malformed;    /* 2xx bodies cut in half */
    unsigned long early;        /* requests inside a Retry-After window we gave */
    long long pause_until_ms;   /* monotonic ms: end of the last Retry-After given */
};

/* The running server. */
struct sim_server {
    const struct sim_options *opt;
    struct sim_clock clock;
    struct sim_env env;
    atomic_ulong requests;      /* carrier requests seen, numbers the fault draws */
    pthread_mutex_t fault_lock; /* guards faults and counters */
    struct sim_faults faults;
    struct sim_counters counters[SIM_CARRIERS_MAX];
};

/* Per-request state kept across libmicrohttpd callbacks. */
struct conn_state {
    char *body;                 /* uploaded body, NUL-terminated, or NULL */
    size_t len;
    bool too_large;
};

const char *sim_query(const struct sim_request *req, const char *key)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn,
                                       MHD_GET_ARGUMENT_KIND, key);
}

const char *sim_header(const struct sim_request *req, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND,
                                       name);
}

const char *sim_iso_utc(time_t t, char buf[21])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL)
        snprintf(buf, 21, "1970-01-01T00:00:00Z");
    else
        strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void sim_response_header(struct sim_response *resp, const char *name, const char *value)
{
    if (resp->n_headers >= SIM_MAX_RESP_HEADERS)
        return;
    resp->headers[resp->n_headers][0] = name;
    resp->headers[resp->n_headers][1] = value;
    resp->n_headers++;
}

void sim_respond_json(struct sim_response *resp, unsigned status, const char *content_type,
                      json_t *json)
{
    char *text = json != NULL ? json_dumps(json, JSON_COMPACT) : NULL;

    json_decref(json);
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
    if (text == NULL) {
        static const char oom[] = "{\"title\":\"Internal Server Error\",\"status\":500}";

        resp->status = 500;
        resp->content_type = "application/problem+json";
        resp->body = strdup(oom);
        resp->len = resp->body != NULL ? strlen(oom) : 0;
        return;
    }
    resp->status = status;
    resp->content_type = content_type;
    resp->body = text;
    resp->len = strlen(text);
}

void sim_respond_problem(struct sim_response *resp, unsigned status, const char *title,
                         const char *detail)
{
    sim_respond_json(resp, status, "application/problem+json",
                     json_pack("{s:s,s:I,s:s}", "title", title, "status", (json_int_t)status,
                               "detail", detail));
}

/* {"country","city","postal_code","region","zone"} of a place. */
static json_t *place_json(const struct sim_country *c, const struct sim_place *p)
{
    const char *zone = journey_zone(c, p);

    return json_pack("{s:s,s:s,s:s,s:s?,s:s?}", "country", c->cc, "city", p->city,
                     "postal_code", p->postal, "region", p->region, "zone", zone);
}

/* One step for /_sim/journey. */
static json_t *step_json(const struct sim_env *env, const struct sim_carrier *car,
                         const struct journey *j, size_t i, bool visible)
{
    const struct journey_step *s = &j->steps[i];
    struct journey_expect e = journey_kind_expect(s->kind);
    const char *zone = journey_zone(s->country, s->place);
    time_t at = journey_step_time(j, i, env->clock);
    char utc[21], local[24];
    struct tm tm;
    int off = 0;
    json_t *o;

    if (zone != NULL && sim_local_time(zone, at, &tm, &off))
        strftime(local, sizeof(local), "%Y-%m-%dT%H:%M:%S", &tm);
    else
        snprintf(local, sizeof(local), "%.19s", sim_iso_utc(at, utc));
    o = json_pack("{s:I,s:s,s:I,s:b,s:s,s:s,s:i,s:s?,s:s,s:s,s:s,s:s?,s:s,s:s?,"
                  "s:{s:s,s:s,s:b,s:b}}",
                  "index", (json_int_t)i, "kind", journey_kind_name(s->kind), "offset_seconds",
                  (json_int_t)s->offset, "visible", visible, "at", sim_iso_utc(at, utc), "local",
                  local, "utc_offset_min", off, "zone", zone, "country", s->country->cc, "city",
                  s->place->city, "postal_code", s->place->postal, "region", s->place->region,
                  "text", s->text, "remark", s->remark, "expect", "status",
                  st_status_name(e.status), "substatus", st_substatus_name(e.substatus),
                  "affects_status", e.affects_status, "customs", e.customs);
    if (o != NULL && car->wire_step != NULL) {
        json_t *w = car->wire_step(env, j, i);

        if (w != NULL)
            json_object_set_new(o, "wire", w);
    }
    return o;
}

/* GET /_sim/journey?carrier=C&number=N */
static void handle_journey(const struct sim_env *env, const struct sim_request *req,
                           struct sim_response *resp)
{
    const char *cname = sim_query(req, "carrier"), *number = sim_query(req, "number");
    const struct sim_carrier *car = sim_carrier_find(cname != NULL ? cname : "dhl");
    struct journey j;
    size_t visible;
    json_t *steps, *root;
    char start[21], eddbuf[16];
    time_t edd;

    if (car == NULL) {
        sim_respond_problem(resp, 400, "Bad Request", "Unknown carrier.");
        return;
    }
    if (number == NULL || !car->number_valid(number) || !journey_build(car->name, number, &j)) {
        sim_respond_json(resp, 404, "application/json",
                         json_pack("{s:s,s:s?,s:b}", "carrier", car->name, "tracking_number",
                                   number, "known", 0));
        return;
    }
    visible = journey_visible_count(&j, env->clock);
    if ((steps = json_array()) == NULL) {
        sim_respond_problem(resp, 500, "Internal Server Error", "Out of memory.");
        return;
    }
    for (size_t i = 0; i < j.n_steps; i++)
        if (json_array_append_new(steps, step_json(env, car, &j, i, i < visible)) != 0) {
            json_decref(steps);
            sim_respond_problem(resp, 500, "Internal Server Error", "Out of memory.");
            return;
        }
    eddbuf[0] = '\0';
    if (journey_edd(&j, visible, env->clock, &edd)) {
        struct tm tm;
        int off;

        if (sim_local_time(journey_zone(j.dest, j.to), edd, &tm, &off))
            strftime(eddbuf, sizeof(eddbuf), "%Y-%m-%d", &tm);
    }
    root = json_pack("{s:s,s:s,s:b,s:s,s:o,s:o,s:s,s:I,s:f,s:f,s:I,s:I,s:s?,s:o}", "carrier",
                     car->name, "tracking_number", j.number, "known", 1, "scenario",
                     journey_scenario_name(j.scenario), "origin", place_json(j.origin, j.from),
                     "destination", place_json(j.dest, j.to), "start",
                     sim_iso_utc(journey_step_time(&j, 0, env->clock), start), "span_seconds",
                     (json_int_t)j.span, "speed", env->clock->speed, "elapsed_seconds",
                     sim_clock_elapsed(env->clock), "visible_steps", (json_int_t)visible,
                     "total_steps", (json_int_t)j.n_steps, "estimated_delivery",
                     eddbuf[0] ? eddbuf : NULL, "steps", steps);
    sim_respond_json(resp, 200, "application/json", root);
}

/* Uniform draw in [0,1) number k of request seq. */
static double fault_draw(uint64_t seed, unsigned long seq, unsigned k)
{
    uint64_t x = sim_mix64(seed ^ sim_mix64((uint64_t)seq * 4 + k));

    return (double)(x >> 11) / 9007199254740992.0; /* 2^53 */
}

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The knobs and per-carrier counters as JSON (takes fault_lock). */
static json_t *faults_json(struct sim_server *srv)
{
    json_t *root, *per;

    if ((per = json_object()) == NULL)
        return NULL;
    pthread_mutex_lock(&srv->fault_lock);
    for (size_t i = 0; i < sim_carriers_count && i < SIM_CARRIERS_MAX; i++) {
        const struct sim_counters *c = &srv->counters[i];

        json_object_set_new(per, sim_carriers[i]->name,
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "requests",
                                      (json_int_t)c->requests, "s2xx", (json_int_t)c->s2xx,
                                      "s401", (json_int_t)c->s401, "s429", (json_int_t)c->s429,
                                      "s5xx", (json_int_t)c->s5xx, "other", (json_int_t)c->other,
                                      "malformed", (json_int_t)c->malformed, "early",
                                      (json_int_t)c->early));
    }
    root = json_pack("{s:f,s:f,s:f,s:f,s:f,s:I,s:I,s:s,s:o}", "error_rate",
                     srv->faults.error_rate, "rate_429", srv->faults.rate_429, "malformed_rate",
                     srv->faults.malformed_rate, "reset_rate", srv->faults.reset_rate,
                     "oversized_rate", srv->faults.oversized_rate, "slow_body_ms",
                     (json_int_t)srv->faults.slow_body_ms, "latency_ms",
                     (json_int_t)srv->faults.latency_ms,
                     "carrier", srv->faults.only >= 0 ? sim_carriers[srv->faults.only]->name : "all",
                     "carriers", per);
    pthread_mutex_unlock(&srv->fault_lock);
    return root;
}

/* Parse a probability in [0, 1]; false when malformed. */
static bool parse_rate(const char *s, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (*s == '\0' || errno != 0 || *end != '\0' || !isfinite(v) || v < 0 || v > 1)
        return false;
    *out = v;
    return true;
}

/* GET or POST /_sim/faults. */
static void handle_faults(struct sim_server *srv, const struct sim_request *req,
                          struct sim_response *resp)
{
    static const char *const rates[] = { "error_rate", "rate_429", "malformed_rate", "reset_rate",
                                         "oversized_rate" };
    struct sim_faults f;
    const char *v;

    if (strcmp(req->method, "POST") == 0) {
        pthread_mutex_lock(&srv->fault_lock);
        f = srv->faults;
        pthread_mutex_unlock(&srv->fault_lock);
        for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
            double *dsts[] = { &f.error_rate, &f.rate_429, &f.malformed_rate, &f.reset_rate,
                               &f.oversized_rate };

            if ((v = sim_query(req, rates[i])) != NULL && !parse_rate(v, dsts[i])) {
                sim_respond_problem(resp, 400, "Bad Request",
                                    "error_rate, rate_429, malformed_rate, reset_rate and "
                                    "oversized_rate must be 0..1.");
                return;
            }
        }
        if ((v = sim_query(req, "latency_ms")) != NULL) {
            char *end;
            unsigned long ms;

            errno = 0;
            ms = strtoul(v, &end, 10);
            if (*v < '0' || *v > '9' || errno != 0 || *end != '\0' || ms > 600000) {
                sim_respond_problem(resp, 400, "Bad Request", "latency_ms must be 0..600000.");
                return;
            }
            f.latency_ms = (unsigned)ms;
        }
        if ((v = sim_query(req, "slow_body_ms")) != NULL) {
            char *end;
            unsigned long ms;

            errno = 0;
            ms = strtoul(v, &end, 10);
            if (*v < '0' || *v > '9' || errno != 0 || *end != '\0' || ms > 60000) {
                sim_respond_problem(resp, 400, "Bad Request", "slow_body_ms must be 0..60000.");
                return;
            }
            f.slow_body_ms = (unsigned)ms;
        }
        if ((v = sim_query(req, "carrier")) != NULL) {
            const struct sim_carrier *c = sim_carrier_find(v);

            if (c == NULL && v[0] != '\0' && strcmp(v, "all") != 0) {
                sim_respond_problem(resp, 400, "Bad Request", "Unknown carrier.");
                return;
            }
            f.only = -1;
            for (size_t i = 0; c != NULL && i < sim_carriers_count; i++)
                if (sim_carriers[i] == c)
                    f.only = (int)i;
        }
        pthread_mutex_lock(&srv->fault_lock);
        srv->faults = f;
        pthread_mutex_unlock(&srv->fault_lock);
    } else if (strcmp(req->method, "GET") != 0) {
        sim_respond_problem(resp, 405, "Method Not Allowed", "Use GET or POST.");
        return;
    }
    sim_respond_json(resp, 200, "application/json", faults_json(srv));
}

/* Count one answered carrier request (takes fault_lock). */
static void count_answer(struct sim_server *srv, size_t ci, const struct sim_response *resp,
                         bool cut)
{
    struct sim_counters *c;

    if (ci >= SIM_CARRIERS_MAX)
        return;
    pthread_mutex_lock(&srv->fault_lock);
    c = &srv->counters[ci];
    if (resp->status >= 200 && resp->status < 300)
        c->s2xx++;
    else if (resp->status == 401)
        c->s401++;
    else if (resp->status == 429) {
        c->s429++;
        c->pause_until_ms = mono_ms() + SIM_RETRY_AFTER_S * 1000;
    } else if (resp->status >= 500)
        c->s5xx++;
    else
        c->other++;
    c->malformed += cut;
    pthread_mutex_unlock(&srv->fault_lock);
}

/* Route and answer one request; faults on carrier routes. */
static void dispatch(struct sim_server *srv, const struct sim_request *req,
                     struct sim_response *resp)
{
    const struct sim_options *opt = srv->opt;
    const struct sim_carrier *car = NULL;
    struct sim_faults f;
    size_t ci = 0;
    bool hit, cut = false;
    unsigned long seq;

    if (strcmp(req->path, "/_sim/health") == 0) {
        sim_respond_json(resp, 200, "application/json", json_pack("{s:s}", "status", "ok"));
        return;
    }
    if (strcmp(req->path, "/_sim/journey") == 0) {
        handle_journey(&srv->env, req, resp);
        return;
    }
    if (strcmp(req->path, "/_sim/clock") == 0) {
        double elapsed = sim_clock_elapsed(srv->env.clock);

        sim_respond_json(resp, 200, "application/json",
                         json_pack("{s:f,s:f,s:I,s:b}", "elapsed_seconds", elapsed, "speed",
                                   srv->env.clock->speed, "max_span_seconds",
                                   (json_int_t)JOURNEY_SPAN_MAX, "all_complete",
                                   elapsed >= (double)JOURNEY_SPAN_MAX));
        return;
    }
    if (strcmp(req->path, "/_sim/faults") == 0) {
        handle_faults(srv, req, resp);
        return;
    }
    for (size_t i = 0; i < sim_carriers_count && car == NULL; i++)
        if (sim_carriers[i]->route(req->method, req->path)) {
            car = sim_carriers[i];
            ci = i;
        }
    if (car == NULL) {
        sim_respond_problem(resp, 404, "Not Found", "No such endpoint in the simulator.");
        return;
    }
    seq = atomic_fetch_add(&srv->requests, 1);
    /* one consistent set of knobs per request; count it, and note an early one */
    pthread_mutex_lock(&srv->fault_lock);
    f = srv->faults;
    if (ci < SIM_CARRIERS_MAX) {
        srv->counters[ci].requests++;
        if (mono_ms() < srv->counters[ci].pause_until_ms)
            srv->counters[ci].early++;
    }
    pthread_mutex_unlock(&srv->fault_lock);
    hit = f.only < 0 || (size_t)f.only == ci;
    if (hit && f.latency_ms > 0) {
        struct timespec ts = { (time_t)(f.latency_ms / 1000),
                               (long)(f.latency_ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    if (hit && f.reset_rate > 0 && fault_draw(opt->seed, seq, 3) < f.reset_rate) {
        resp->reset = true; /* the connection closes with no answer at all */
        resp->status = 599;
        count_answer(srv, ci, resp, false);
        return;
    }
    if (hit && f.rate_429 > 0 && fault_draw(opt->seed, seq, 0) < f.rate_429) {
        sim_respond_problem(resp, 429, "Too Many Requests", "Simulated rate limit.");
        sim_response_header(resp, "Retry-After", "1"); /* SIM_RETRY_AFTER_S */
    } else if (hit && f.error_rate > 0 && fault_draw(opt->seed, seq, 1) < f.error_rate) {
        sim_respond_problem(resp, 500, "Internal Server Error", "Simulated failure.");
    } else {
        car->handle(&srv->env, req, resp);
        if (hit && resp->status >= 200 && resp->status < 300 && resp->len > 1 &&
            f.malformed_rate > 0 &&
            fault_draw(opt->seed, seq, 2) < f.malformed_rate) {
            resp->len /= 2; /* truncated JSON */
            cut = true;
        } else if (hit && resp->status >= 200 && resp->status < 300 && f.oversized_rate > 0 &&
                   fault_draw(opt->seed, seq, 4) < f.oversized_rate) {
            /* valid JSON followed by megabytes of whitespace: too big, not malformed */
            char *big = realloc(resp->body, resp->len + SIM_OVERSIZED_BYTES);

            if (big != NULL) {
                memset(big + resp->len, ' ', SIM_OVERSIZED_BYTES);
                resp->body = big;
                resp->len += SIM_OVERSIZED_BYTES;
            }
        }
    }
    if (hit)
        resp->slow_ms = f.slow_body_ms;
    count_answer(srv, ci, resp, cut);
}

/* A body handed out a chunk at a time, with a pause before each (slow bodies). */
struct slow_body {
    char *data;
    size_t len;
    unsigned pause_ms;
};

/* libmicrohttpd content reader of a slow body (runs on the connection's thread). */
static ssize_t slow_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct slow_body *sb = cls;
    struct timespec ts = { (time_t)(sb->pause_ms / 1000), (long)(sb->pause_ms % 1000) * 1000000L };
    size_t n;

    if (pos >= sb->len)
        return MHD_CONTENT_READER_END_OF_STREAM;
    while (nanosleep(&ts, &ts) != 0)
        ;
    n = sb->len - (size_t)pos;
    if (n > max)
        n = max;
    if (n > SIM_SLOW_CHUNK)
        n = SIM_SLOW_CHUNK;
    memcpy(buf, sb->data + pos, n);
    return (ssize_t)n;
}

static void slow_free(void *cls)
{
    struct slow_body *sb = cls;

    free(sb->data);
    free(sb);
}

/* libmicrohttpd request callback. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct sim_server *srv = cls;
    struct conn_state *st = *req_cls;
    struct sim_request req = { method, url, conn, "", 0 };
    struct sim_response resp = { 0 };
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)version;
    if (st == NULL) { /* first call: headers only */
        if ((st = calloc(1, sizeof(*st))) == NULL)
            return MHD_NO;
        *req_cls = st;
        return MHD_YES;
    }
    if (*upload_data_size > 0) { /* keep the body for renderers that need one */
        if (st->too_large || st->len + *upload_data_size > SIM_UPLOAD_MAX) {
            st->too_large = true;
        } else {
            char *p = realloc(st->body, st->len + *upload_data_size + 1);

            if (p == NULL)
                return MHD_NO;
            memcpy(p + st->len, upload_data, *upload_data_size);
            st->len += *upload_data_size;
            p[st->len] = '\0';
            st->body = p;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st->body != NULL) {
        req.body = st->body;
        req.body_len = st->len;
    }
    if (st->too_large)
        sim_respond_problem(&resp, 413, "Payload Too Large", "Request body over 1 MiB.");
    else
        dispatch(srv, &req, &resp);
    if (resp.reset) { /* refusing the request makes libmicrohttpd drop the connection */
        free(resp.body);
        return MHD_NO;
    }
    if (resp.body == NULL && resp.status == 0)
        sim_respond_problem(&resp, 500, "Internal Server Error", "No response was built.");
    if (resp.slow_ms > 0) {
        struct slow_body *sb = malloc(sizeof(*sb));

        if (sb == NULL) {
            free(resp.body);
            return MHD_NO;
        }
        sb->data = resp.body;
        sb->len = resp.len;
        sb->pause_ms = resp.slow_ms;
        r = MHD_create_response_from_callback(resp.len, SIM_SLOW_CHUNK, slow_read, sb,
                                              slow_free);
        if (r == NULL)
            slow_free(sb);
    } else
        r = MHD_create_response_from_buffer(resp.len, resp.body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        if (resp.slow_ms == 0)
            free(resp.body);
        return MHD_NO;
    }
    if (resp.content_type != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp.content_type);
    for (size_t i = 0; i < resp.n_headers; i++)
        MHD_add_response_header(r, resp.headers[i][0], resp.headers[i][1]);
    ret = MHD_queue_response(conn, resp.status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Free per-request state when libmicrohttpd is done with a request. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_state *st = *req_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (st != NULL) {
        free(st->body);
        free(st);
        *req_cls = NULL;
    }
}

int sim_serve(const struct sim_options *opt)
{
    static struct sim_server srv; /* lives as long as the daemon */
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    const struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;
    struct MHD_Daemon *d;
    sigset_t set;
    bool v6 = false;
    int sig = 0;

    memset(&a4, 0, sizeof(a4));
    memset(&a6, 0, sizeof(a6));
    if (inet_pton(AF_INET, opt->listen, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)opt->port);
        sa = (const struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, opt->listen, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)opt->port);
        sa = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
        v6 = true;
    } else {
        fprintf(stderr, "shiptrack-carrier-sim: --listen %s: not an IPv4 or IPv6 address\n",
                opt->listen);
        return 2;
    }

    /* Block the stop signals in every thread; main collects them with sigwait. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        fprintf(stderr, "shiptrack-carrier-sim: cannot block signals\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Still one thread: give TZ a value now so that sim_local_time only ever
     * replaces it in place (see journey.h). All times we print are explicit. */
    if (setenv("TZ", "UTC", 1) != 0) {
        fprintf(stderr, "shiptrack-carrier-sim: cannot set TZ\n");
        return 1;
    }
    tzset();

    srv.opt = opt;
    sim_clock_start(&srv.clock, opt->speed);
    srv.env.opt = opt;
    srv.env.clock = &srv.clock;
    atomic_init(&srv.requests, 0);
    if (pthread_mutex_init(&srv.fault_lock, NULL) != 0) {
        fprintf(stderr, "shiptrack-carrier-sim: cannot create a mutex\n");
        return 1;
    }
    srv.faults.latency_ms = opt->latency_ms;
    srv.faults.error_rate = opt->error_rate;
    srv.faults.rate_429 = opt->rate_429;
    srv.faults.malformed_rate = opt->malformed_rate;
    srv.faults.reset_rate = opt->reset_rate;
    srv.faults.oversized_rate = opt->oversized_rate;
    srv.faults.slow_body_ms = opt->slow_body_ms;
    srv.faults.only = -1;
    if (sim_carriers_count > SIM_CARRIERS_MAX) {
        fprintf(stderr, "shiptrack-carrier-sim: more carriers than SIM_CARRIERS_MAX\n");
        return 1;
    }
    d = MHD_start_daemon(flags, (uint16_t)opt->port, NULL, NULL, on_request, &srv,
                         MHD_OPTION_SOCK_ADDR, sa,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
                         MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "shiptrack-carrier-sim: cannot listen on %s port %u\n", opt->listen,
                opt->port);
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        fprintf(stderr, "shiptrack-carrier-sim: cannot tell the bound port\n");
        MHD_stop_daemon(d);
        return 1;
    }
    printf("shiptrack-carrier-sim listening on http://%s%s%s:%u\n", v6 ? "[" : "", opt->listen,
           v6 ? "]" : "", (unsigned)info->port);
    fflush(stdout);

    while (sigwait(&set, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    MHD_stop_daemon(d);
    return 0;
}
