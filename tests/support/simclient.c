/*
 * simclient.c - HTTP, journey, plan and JSON helpers for the suites that run
 * against shiptrack-carrier-sim (see simclient.h).
 */
#include "simclient.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sc_start(struct tu_sim *sim, const char *const *args)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    tu_sim_start(sim, args);
}

void sc_stop(struct tu_sim *sim)
{
    tu_sim_stop(sim);
    curl_global_cleanup();
}

void sc_restart(struct tu_sim *sim, const char *const *args)
{
    tu_sim_stop(sim);
    tu_sim_start(sim, args);
}

/* libcurl write callback: append to the reply's body, up to SC_BODY_CAP. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct sc_reply *r = ud;
    size_t n = size * nmemb;
    char *p;

    if (r->len + n > SC_BODY_CAP)
        return 0;
    p = realloc(r->body, r->len + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + r->len, data, n);
    r->body = p;
    r->len += n;
    p[r->len] = '\0';
    return n;
}

/* libcurl header callback: keep Retry-After. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct sc_reply *r = ud;
    size_t n = size * nmemb;

    if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        size_t k = 12, o = 0;

        while (k < n && data[k] == ' ')
            k++;
        while (k < n && data[k] != '\r' && data[k] != '\n' && o + 1 < sizeof(r->retry_after))
            r->retry_after[o++] = data[k++];
        r->retry_after[o] = '\0';
    }
    return n;
}

void sc_http(const char *method, const char *url, const char *const *headers, const char *body,
             size_t body_len, struct sc_reply *r)
{
    struct curl_slist *h = NULL;
    CURL *c = curl_easy_init();
    const char *ct = NULL;
    CURLcode rc;

    memset(r, 0, sizeof(*r));
    cr_assert_not_null(c);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
        struct curl_slist *t = curl_slist_append(h, headers[i]);

        cr_assert_not_null(t);
        h = t;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->seconds);
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
        snprintf(r->content_type, sizeof(r->content_type), "%s", ct);
    if (r->body == NULL)
        r->body = calloc(1, 1);
    cr_assert_not_null(r->body);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

void sc_send(const struct carrier_request *req, struct sc_reply *r)
{
    const char *headers[CARRIER_MAX_HEADERS + 1];
    bool post = req->method == CARRIER_POST;

    cr_assert_leq(req->n_headers, (size_t)CARRIER_MAX_HEADERS);
    for (size_t i = 0; i < req->n_headers; i++)
        headers[i] = req->headers[i];
    headers[req->n_headers] = NULL;
    sc_http(post ? "POST" : "GET", req->url, headers,
            post ? (req->body != NULL ? req->body : "") : NULL, post ? req->body_len : 0, r);
}

void sc_get(const struct tu_sim *sim, const char *path, const char *const *headers,
            struct sc_reply *r)
{
    char url[2048];

    snprintf(url, sizeof(url), "%s%s", sim->url, path);
    sc_http("GET", url, headers, NULL, 0, r);
}

enum st_err sc_fetch_token(const struct carrier_def *def, const struct carrier_ctx *ctx,
                           struct carrier_token *tok, long *status, char *err, size_t errlen)
{
    struct carrier_request req;
    struct sc_reply r;
    enum st_err rc;

    memset(&req, 0, sizeof(req));
    cr_assert_eq(def->ops->build_token_request(ctx, &req, err, errlen), ST_OK, "%s", err);
    sc_send(&req, &r);
    carrier_request_reset(&req);
    if (status != NULL)
        *status = r.status;
    rc = def->ops->parse_token_response(r.status, r.body, r.len, tok, err, errlen);
    free(r.body);
    return rc;
}

enum st_err sc_exchange(const struct carrier_def *def, const struct carrier_ctx *ctx,
                        const struct carrier_request *req, const char *const *numbers, size_t n,
                        struct track_result *res, long *status, char *err, size_t errlen)
{
    struct sc_reply r;
    enum st_err rc;

    sc_send(req, &r);
    if (status != NULL)
        *status = r.status;
    memset(res, 0, n * sizeof(*res));
    if (errlen > 0)
        err[0] = '\0';
    rc = def->ops->parse_response(ctx, r.status, r.body, r.len, numbers, n, res, err, errlen);
    free(r.body);
    return rc;
}

enum st_err sc_track(const struct carrier_def *def, const struct carrier_ctx *ctx,
                     const char *const *numbers, size_t n, struct track_result *res,
                     long *status, char *err, size_t errlen)
{
    struct carrier_request req;
    enum st_err rc;

    memset(&req, 0, sizeof(req));
    cr_assert_eq(def->ops->build_request(ctx, numbers, n, &req, err, errlen), ST_OK, "%s", err);
    rc = sc_exchange(def, ctx, &req, numbers, n, res, status, err, errlen);
    carrier_request_reset(&req);
    return rc;
}

json_t *sc_journey(const struct tu_sim *sim, const char *carrier, const char *number)
{
    char path[256];
    struct sc_reply r;
    json_t *j;

    snprintf(path, sizeof(path), "/_sim/journey?carrier=%s&number=%s", carrier, number);
    sc_get(sim, path, NULL, &r);
    j = json_loads(r.body, 0, NULL);
    cr_assert_not_null(j, "journey of %s is not JSON: %s", number, r.body);
    if (r.status == 404) {
        cr_expect(json_is_false(json_object_get(j, "known")));
        json_decref(j);
        j = NULL;
    } else
        cr_assert_eq(r.status, 200, "journey of %s: HTTP %ld", number, r.status);
    free(r.body);
    return j;
}

void sc_wait_all_complete(const struct tu_sim *sim, int tries, long interval_ms,
                          const char *what)
{
    struct timespec pause = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };

    for (int i = 0; i < tries; i++) {
        struct sc_reply r;
        json_t *c;
        bool done;

        sc_get(sim, "/_sim/clock", NULL, &r);
        c = json_loads(r.body, 0, NULL);
        free(r.body);
        cr_assert_not_null(c);
        done = json_is_true(json_object_get(c, "all_complete"));
        json_decref(c);
        if (done)
            return;
        nanosleep(&pause, NULL);
    }
    cr_assert_fail("%s", what);
}

json_t *sc_plan(const char *carrier, const char *count, const char *seed,
                enum sc_plan_check check)
{
    char bin[512], *out = NULL, *err = NULL, *argv[10];
    json_t *list = json_array();
    int rc, n = 0;

    cr_assert_not_null(list);
    tu_binary_path(bin, sizeof(bin), "shiptrack-carrier-sim");
    argv[n++] = bin;
    argv[n++] = "plan";
    if (carrier != NULL) {
        argv[n++] = "--carrier";
        argv[n++] = (char *)carrier;
    }
    argv[n++] = "--count";
    argv[n++] = (char *)count;
    argv[n++] = "--seed";
    argv[n++] = (char *)seed;
    argv[n] = NULL;
    rc = tu_run(argv, NULL, &out, &err);
    cr_assert_eq(rc, 0, "plan exited %d: %s", rc, err);
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);

        cr_assert_not_null(o, "plan line is not JSON: %s", line);
        if (carrier != NULL && check == SC_PLAN_EXPECT_CARRIER)
            cr_expect_str_eq(sc_str(o, "carrier"), carrier);
        else if (carrier != NULL && check == SC_PLAN_ASSERT_CARRIER)
            cr_assert_str_eq(sc_str(o, "carrier"), carrier);
        json_array_append_new(list, o);
    }
    free(out);
    free(err);
    return list;
}

const char *sc_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : "";
}

time_t sc_utc_of(const char *s)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    cr_assert_eq(sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec), 6, "bad time %s", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

bool sc_has(const struct track_result *res, enum st_status s, enum st_substatus sub)
{
    for (size_t i = 0; i < res->n_events; i++)
        if (res->events[i].status == s && res->events[i].substatus == sub)
            return true;
    return false;
}

void sc_check_scenario(const char *number, const char *scenario, const struct track_result *res,
                       bool strict)
{
    if (strcmp(scenario, "customs_duties_held") == 0) {
        cr_expect(sc_has(res, ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE), "%s: no duties hold",
                  number);
        cr_expect(sc_has(res, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED), "%s: no release",
                  number);
    } else if (strcmp(scenario, "customs_documents_held") == 0) {
        cr_expect(sc_has(res, ST_STATUS_HELD, ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED), "%s: no hold",
                  number);
        cr_expect(sc_has(res, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED), "%s: no release",
                  number);
    } else if (strcmp(scenario, "customs_delivered") == 0) {
        cr_expect(sc_has(res, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_PROCESSING), "%s", number);
        if (strict)
            cr_expect(!sc_has(res, ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE), "%s", number);
    } else if (strcmp(scenario, "returned_to_sender") == 0) {
        cr_expect(sc_has(res, ST_STATUS_RETURNED, ST_SUB_RETURNED_TO_SENDER), "%s", number);
        cr_expect(!sc_has(res, ST_STATUS_DELIVERED, ST_SUB_DELIVERED), "%s", number);
    } else if (strcmp(scenario, "lost") == 0) {
        cr_expect(!sc_has(res, ST_STATUS_DELIVERED, ST_SUB_DELIVERED), "%s", number);
        if (strict)
            cr_expect(!sc_has(res, ST_STATUS_OUT_FOR_DELIVERY, ST_SUB_OUT_FOR_DELIVERY), "%s",
                      number);
    } else if (strcmp(scenario, "unmapped_code") == 0) {
        cr_expect(sc_has(res, ST_STATUS_PENDING, ST_SUB_UNMAPPED), "%s: no unmapped event",
                  number);
    } else if (strcmp(scenario, "pickup_point") == 0) {
        cr_expect(sc_has(res, ST_STATUS_AVAILABLE_FOR_PICKUP, ST_SUB_AT_PICKUP_POINT), "%s",
                  number);
    } else if (strcmp(scenario, "attempt_then_delivered") == 0) {
        cr_expect(sc_has(res, ST_STATUS_ATTEMPT_FAILED, ST_SUB_RECIPIENT_UNAVAILABLE), "%s",
                  number);
    }
    if (strcmp(scenario, "lost") != 0 && strcmp(scenario, "returned_to_sender") != 0)
        cr_expect(sc_has(res, ST_STATUS_DELIVERED, ST_SUB_DELIVERED), "%s: never delivered",
                  number);
}

size_t sc_visible_steps(const char *number, json_t *journey, sc_kind_fn kind_of, bool sorted,
                        struct sc_want *w, size_t cap)
{
    json_t *steps = json_object_get(journey, "steps"), *step;
    size_t n = 0, i;

    json_array_foreach(steps, i, step) {
        if (!json_is_true(json_object_get(step, "visible")))
            continue;
        cr_assert_lt(n, cap);
        w[n].step = step;
        w[n].kind = kind_of(number, i, step);
        w[n].at = sc_utc_of(sc_str(step, w[n].kind == OFFSET_UNKNOWN ? "local" : "at"));
        n++;
    }
    for (size_t a = 1; sorted && a < n; a++) /* insertion sort: stable */
        for (size_t b = a; b > 0 && w[b - 1].at > w[b].at; b--) {
            struct sc_want t = w[b];

            w[b] = w[b - 1];
            w[b - 1] = t;
        }
    return n;
}

void sc_assert_found(const char *number, json_t *journey, const struct track_result *res,
                     size_t n)
{
    cr_assert_eq(res->outcome, TRACK_FOUND, "%s: outcome %s (%s)", number,
                 track_outcome_name(res->outcome), res->errmsg);
    cr_assert_eq(res->n_events, n, "%s (%s): %zu events, %zu visible steps", number,
                 sc_str(journey, "scenario"), res->n_events, n);
}

void sc_expect_event(const char *number, size_t i, const struct track_event *ev, json_t *step)
{
    json_t *e = json_object_get(step, "expect");
    const char *kind = sc_str(step, "kind");

    cr_expect_str_eq(st_status_name(ev->status), sc_str(e, "status"), "%s event %zu (%s): %s",
                     number, i, kind, ev->description);
    cr_expect_str_eq(st_substatus_name(ev->substatus), sc_str(e, "substatus"),
                     "%s event %zu (%s): %s", number, i, kind, ev->description);
    cr_expect_eq(ev->affects_status, json_is_true(json_object_get(e, "affects_status")),
                 "%s event %zu (%s)", number, i, kind);
    cr_expect_eq(ev->customs, json_is_true(json_object_get(e, "customs")),
                 "%s event %zu (%s): %s", number, i, kind, ev->description);
}

void sc_expect_when(const char *number, size_t i, const struct track_event *ev,
                    const struct sc_want *w)
{
    const char *kind = sc_str(w->step, "kind");

    cr_expect_eq(ev->occurred_at, w->at, "%s event %zu (%s): occurred_at %ld, want %ld", number,
                 i, kind, (long)ev->occurred_at, (long)w->at);
    cr_expect_eq(ev->offset_kind, w->kind, "%s event %zu (%s): offset %s, want %s", number, i,
                 kind, offset_kind_name(ev->offset_kind), offset_kind_name(w->kind));
}

void sc_expect_place(const struct track_event *ev, json_t *step)
{
    cr_expect_str_eq(ev->city, sc_str(step, "city"));
    cr_expect_str_eq(ev->postal_code, sc_str(step, "postal_code"));
    cr_expect_str_eq(ev->country, sc_str(step, "country"));
}
