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
 *   anything a carrier's route() accepts     that carrier's renderer
 *
 * Faults hit carrier routes only, drawn per request from a generator seeded
 * by --seed and the request's sequence number: latency first, then 429 (with
 * Retry-After: 1), then 500, then, on a 200, a body cut in half.
 *
 * Runs until SIGTERM or SIGINT, then stops the daemon and returns 0.
 */
#include <arpa/inet.h>
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

/* The running server. */
struct sim_server {
    const struct sim_options *opt;
    struct sim_clock clock;
    struct sim_env env;
    atomic_ulong requests;      /* carrier requests seen, numbers the fault draws */
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

/* Route and answer one request; faults on carrier routes. */
static void dispatch(struct sim_server *srv, const struct sim_request *req,
                     struct sim_response *resp)
{
    const struct sim_options *opt = srv->opt;
    const struct sim_carrier *car = NULL;
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
    for (size_t i = 0; i < sim_carriers_count && car == NULL; i++)
        if (sim_carriers[i]->route(req->method, req->path))
            car = sim_carriers[i];
    if (car == NULL) {
        sim_respond_problem(resp, 404, "Not Found", "No such endpoint in the simulator.");
        return;
    }
    seq = atomic_fetch_add(&srv->requests, 1);
    if (opt->latency_ms > 0) {
        struct timespec ts = { (time_t)(opt->latency_ms / 1000),
                               (long)(opt->latency_ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    if (opt->rate_429 > 0 && fault_draw(opt->seed, seq, 0) < opt->rate_429) {
        sim_respond_problem(resp, 429, "Too Many Requests", "Simulated rate limit.");
        sim_response_header(resp, "Retry-After", "1");
        return;
    }
    if (opt->error_rate > 0 && fault_draw(opt->seed, seq, 1) < opt->error_rate) {
        sim_respond_problem(resp, 500, "Internal Server Error", "Simulated failure.");
        return;
    }
    car->handle(&srv->env, req, resp);
    if (resp->status == 200 && resp->len > 1 && opt->malformed_rate > 0 &&
        fault_draw(opt->seed, seq, 2) < opt->malformed_rate)
        resp->len /= 2; /* truncated JSON */
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
    if (resp.body == NULL && resp.status == 0)
        sim_respond_problem(&resp, 500, "Internal Server Error", "No response was built.");
    r = MHD_create_response_from_buffer(resp.len, resp.body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
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
