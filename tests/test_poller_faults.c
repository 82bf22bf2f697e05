/*
 * test_poller_faults.c - the poller against the real carrier simulator over
 * HTTP and a real PostgreSQL, with faults on. Each test has its own database
 * and its own simulator.
 *
 *   all six carriers   planned numbers of dhl, ups, fedex, usps, laposte and
 *                      track17: every visible journey step stored exactly once,
 *                      17TRACK numbers registered and then tracked, batches
 *                      used (FedEx 30, La Poste 10, 17TRACK 40 per request).
 *   429                Retry-After honoured: no request reaches the throttled
 *                      carrier while its pause runs; everything stored once.
 *   breaker            opens on sustained 5xx (only probes while open), closes
 *                      once the carrier recovers; everything stored after.
 *   OAuth2             tokens refreshed on 401 (used-up tokens) and before they
 *                      expire (short-lived tokens), nothing lost.
 *   daily quota        exactly the quota spent, the most urgent first, the rest
 *                      deferred to after 00:00 UTC; two poller processes
 *                      sharing one quota never exceed it.
 *   bad bodies         truncated and oversized answers fail the poll with the
 *                      reason stored and the stored data untouched.
 *
 * The simulator's GET/POST /_sim/faults shows per-carrier counters (requests,
 * answers by class, requests that ignored a Retry-After) and changes the fault
 * knobs while it runs; the assertions use both it and poller_totals.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "poller.h"
#include "testdb.h"
#include "testutil.h"

static struct testdb db;
static struct tu_sim sim;

static void setup(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    log_setup("warn", "text", stderr); /* the poller's warnings and errors only */
}

static void teardown(void)
{
    tu_sim_stop(&sim);
    tdb_drop(&db);
    curl_global_cleanup();
}

TestSuite(poller_faults, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers: environment and configuration ---- */

/* Credentials of every carrier, as the simulator accepts them by default. */
static const struct {
    const char *name;     /* carrier_def name */
    const char *env;      /* SHIPTRACK_<ENV>_... */
    const char *api_key;  /* NULL for OAuth2 carriers */
} carriers[] = {
    { "dhl", "DHL", "sim-dhl-key" },
    { "ups", "UPS", NULL },
    { "fedex", "FEDEX", NULL },
    { "usps", "USPS", NULL },
    { "laposte", "LAPOSTE", "sim-laposte-key" },
    { "track17", "TRACK17", "sim-17track-key" },
};

#define N_CARRIERS (sizeof(carriers) / sizeof(carriers[0]))

static void set_carrier_env(const char *up, const char *key, const char *value)
{
    char name[96];

    snprintf(name, sizeof(name), "SHIPTRACK_%s_%s", up, key);
    cr_assert_eq(setenv(name, value, 1), 0);
}

/* The environment every test starts from: all six carriers pointed at this
 * test's simulator, no rate limit or quota, polls of a stored shipment an
 * hour apart (pending: 2 s, the wait after an aggregator registration),
 * failed polls retried after 1 s, no jitter. Tests override what they probe.
 * Criterion runs each test in its own process, so nothing leaks. */
static void base_env(void)
{
    cr_assert_eq(setenv("SHIPTRACK_DATABASE_URL", db.url, 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_WORKER_ID", "faults", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_POLL_INTERVAL", "1h", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_POLL_INTERVALS", "pending=2s", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_POLL_IDLE", "50ms", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_POLL_RETRY_MAX", "1s", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_POLL_JITTER", "0", 1), 0);
    for (size_t i = 0; i < N_CARRIERS; i++) {
        set_carrier_env(carriers[i].env, "BASE_URL", sim.url);
        set_carrier_env(carriers[i].env, "RATE", "1000/s");
        set_carrier_env(carriers[i].env, "DAILY_QUOTA", "0");
        if (carriers[i].api_key != NULL) {
            set_carrier_env(carriers[i].env, "API_KEY", carriers[i].api_key);
        } else {
            set_carrier_env(carriers[i].env, "CLIENT_ID", "sim-client");
            set_carrier_env(carriers[i].env, "CLIENT_SECRET", "sim-secret");
        }
    }
}

/* ---- helpers: the simulator ---- */

/* Start the simulator (journeys compressed so that every step is visible). */
static void start_sim(const char *const *extra)
{
    const char *args[16] = { "--speed", "100000000" };
    size_t n = 2;

    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    tu_sim_start(&sim, args);
}

struct buf {
    char *p;
    size_t n;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    char *p;

    if (b->n + n > (1u << 20)) /* the simulator's own answers are small */
        return 0;
    p = realloc(b->p, b->n + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->n, data, n);
    b->p = p;
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

/* GET or POST (empty body) sim.url + path; the parsed JSON answer or NULL.
 * Asserts nothing, so that a helper thread may call it. */
static json_t *sim_call(const char *method, const char *path, long *status)
{
    struct buf b = { NULL, 0 };
    char url[512];
    CURL *c = curl_easy_init();
    CURLcode rc;
    json_t *j = NULL;

    *status = 0;
    if (c == NULL)
        return NULL;
    snprintf(url, sizeof(url), "%s%s", sim.url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (b.p != NULL)
            j = json_loads(b.p, 0, NULL);
    }
    curl_easy_cleanup(c);
    free(b.p);
    return j;
}

/* POST /_sim/faults?query; asserts it was accepted. */
static void set_faults(const char *query)
{
    char path[256];
    long status;
    json_t *j;

    snprintf(path, sizeof(path), "/_sim/faults?%s", query);
    j = sim_call("POST", path, &status);
    cr_assert_eq(status, 200, "POST %s: HTTP %ld", path, status);
    cr_assert_not_null(j);
    json_decref(j);
}

/* A per-carrier counter of GET /_sim/faults (requests, s2xx, s401, s429, s5xx,
 * malformed, early). */
static long sim_counter(const char *carrier, const char *key)
{
    long status, v;
    json_t *j = sim_call("GET", "/_sim/faults", &status);

    cr_assert_eq(status, 200);
    cr_assert_not_null(j);
    v = (long)json_integer_value(json_object_get(
        json_object_get(json_object_get(j, "carriers"), carrier), key));
    json_decref(j);
    return v;
}

/* Carrier requests of every carrier the simulator saw. */
static long sim_requests_total(void)
{
    long n = 0;

    for (size_t i = 0; i < N_CARRIERS; i++)
        n += sim_counter(carriers[i].name, "requests");
    return n;
}

/* ---- helpers: shipments ---- */

/* Plan `count` shipments of carrier with the simulator and append the plan
 * lines to the file fd and to list. */
static void plan(const char *carrier, int count, int fd, json_t *list)
{
    char sbin[512], n[16], *out = NULL, *err = NULL;
    char *argv[] = { sbin, "plan", "--carrier", (char *)carrier, "--count", n, NULL };
    size_t len;

    tu_binary_path(sbin, sizeof(sbin), "shiptrack-carrier-sim");
    snprintf(n, sizeof(n), "%d", count);
    cr_assert_eq(tu_run(argv, NULL, &out, &err), 0, "plan %s: %s", carrier, err);
    len = strlen(out);
    cr_assert_eq(write(fd, out, len), (ssize_t)len);
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);

        cr_assert_not_null(o, "plan line is not JSON: %s", line);
        cr_assert_eq(json_array_append_new(list, o), 0);
    }
    free(out);
    free(err);
}

/* Register the planned shipments of several carriers through the CLI
 * (`shiptrack register --batch`). counts[i] shipments of carriers[i].name;
 * returns the plan lines. */
static json_t *register_plans(const int counts[N_CARRIERS])
{
    char bin[512], planfile[] = "/tmp/st-faults-plan-XXXXXX", env_db[600], *out, *err;
    char *argv[] = { bin, "register", "--batch", planfile, NULL };
    const char *env[] = { env_db, NULL };
    json_t *list = json_array();
    size_t total = 0;
    int fd, rc;

    cr_assert_not_null(list);
    fd = mkstemp(planfile);
    cr_assert_geq(fd, 0);
    for (size_t i = 0; i < N_CARRIERS; i++)
        if (counts[i] > 0) {
            plan(carriers[i].name, counts[i], fd, list);
            total += (size_t)counts[i];
        }
    cr_assert_eq(close(fd), 0);
    tu_binary_path(bin, sizeof(bin), "shiptrack");
    snprintf(env_db, sizeof(env_db), "SHIPTRACK_DATABASE_URL=%s", db.url);
    rc = tu_run(argv, env, &out, &err);
    unlink(planfile);
    cr_assert_eq(rc, 0, "register --batch: %s%s", out, err);
    cr_expect(strstr(out, "0 rejected") != NULL, "%s", out);
    free(out);
    free(err);
    cr_assert_eq(json_array_size(list), total);
    cr_assert_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments"), (long long)total);
    return list;
}

/* Same, one carrier. */
static json_t *register_one(const char *carrier, int count)
{
    int counts[N_CARRIERS] = { 0 };

    for (size_t i = 0; i < N_CARRIERS; i++)
        if (strcmp(carriers[i].name, carrier) == 0)
            counts[i] = count;
    return register_plans(counts);
}

/* First column of the first row of a parameterized query as a number. */
static long long count_p(const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(db.conn, sql, n, NULL, params, NULL, NULL, 0);
    long long v;

    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(db.conn));
    cr_assert_eq(PQntuples(res), 1, "%s", sql);
    v = PQgetisnull(res, 0, 0) ? 0 : atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* Every visible step of the simulator's journey of (carrier, number) is
 * stored exactly once, with the status, substatus and city it maps to, and
 * nothing else is stored for the shipment. Returns the number of visible steps. */
static long long check_journey(const char *carrier, const char *number)
{
    char path[256], idtxt[24];
    const char *p[4];
    json_t *j, *steps, *step;
    long status;
    long long id, visible = 0;
    /* La Poste names no city: its events carry an empty one */
    bool by_city = strcmp(carrier, "laposte") != 0;
    size_t i;

    snprintf(path, sizeof(path), "/_sim/journey?carrier=%s&number=%s", carrier, number);
    j = sim_call("GET", path, &status);
    cr_assert_eq(status, 200, "%s", path);
    cr_assert_not_null(j);
    p[0] = carrier;
    p[1] = number;
    id = count_p("SELECT id FROM shipments WHERE carrier = $1 AND tracking_number = $2", 2, p);
    cr_assert_gt(id, 0, "%s %s is not registered", carrier, number);
    snprintf(idtxt, sizeof(idtxt), "%lld", id);
    steps = json_object_get(j, "steps");
    json_array_foreach(steps, i, step) {
        const json_t *e = json_object_get(step, "expect"), *other;
        long long same = 0, got;
        size_t k;

        if (!json_is_true(json_object_get(step, "visible")))
            continue;
        visible++;
        /* a journey may repeat a step (two delivery attempts): count the twins */
        json_array_foreach(steps, k, other) {
            const json_t *oe = json_object_get(other, "expect");

            same += json_is_true(json_object_get(other, "visible")) &&
                    json_equal(json_object_get(oe, "status"), json_object_get(e, "status")) &&
                    json_equal(json_object_get(oe, "substatus"), json_object_get(e, "substatus")) &&
                    (!by_city ||
                     json_equal(json_object_get(other, "city"), json_object_get(step, "city")));
        }
        p[0] = idtxt;
        p[1] = json_string_value(json_object_get(e, "status"));
        p[2] = json_string_value(json_object_get(e, "substatus"));
        p[3] = by_city ? json_string_value(json_object_get(step, "city")) : "";
        got = count_p("SELECT count(*) FROM tracking_events WHERE shipment_id = $1"
                      " AND status = $2 AND substatus = $3 AND city = $4", 4, p);
        cr_expect_eq(got, same, "%s %s step %zu (%s %s/%s): %lld stored, want %lld", carrier,
                     number, i, json_string_value(json_object_get(step, "kind")), p[1], p[2],
                     got, same);
    }
    p[0] = idtxt;
    cr_expect_eq(count_p("SELECT count(*) FROM tracking_events WHERE shipment_id = $1", 1, p),
                 visible, "%s %s: stored events vs %lld visible steps", carrier, number, visible);
    json_decref(j);
    return visible;
}

/* check_journey for every planned shipment; returns the visible steps. */
static long long check_all(json_t *planned)
{
    long long visible = 0;
    json_t *o;
    size_t i;

    json_array_foreach(planned, i, o)
        visible += check_journey(json_string_value(json_object_get(o, "carrier")),
                                 json_string_value(json_object_get(o, "tracking_number")));
    return visible;
}

/* ---- helpers: running the poller ---- */

static void add_totals(struct poller_totals *sum, const struct poller_totals *t)
{
    sum->polls += t->polls;
    sum->failures += t->failures;
    sum->events_new += t->events_new;
    sum->status_changes += t->status_changes;
    sum->requests += t->requests;
    sum->token_fetches += t->token_fetches;
    sum->registrations += t->registrations;
    sum->breaker_opens += t->breaker_opens;
    sum->throttled += t->throttled;
    sum->deferred += t->deferred;
}

/* One in-process poller_run until idle, with the current environment. */
static void run_once(struct poller_totals *t)
{
    struct st_config cfg;
    volatile sig_atomic_t running = 1;
    struct poller_opts o = { &running, true };
    char err[256];

    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(poller_run(&cfg, &o, t), 0);
    config_free(&cfg);
}

/* Shipments not yet polled successfully. */
#define NOT_DONE "(poll_count = 0 OR poll_error_streak > 0)"

/* Run the poller until every shipment has been polled successfully, waiting
 * between runs only until the last of those left is due again (so that they
 * are claimed together). Fails after deadline_ms. Totals are summed. */
static void run_until_done(struct poller_totals *sum, long deadline_ms)
{
    struct timespec t0, t1;
    int runs = 0;

    memset(sum, 0, sizeof(*sum));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct poller_totals t;
        long long wait_ms;
        long spent;

        run_once(&t);
        add_totals(sum, &t);
        runs++;
        if (tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE " NOT_DONE) == 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        spent = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        cr_assert_lt(spent, deadline_ms, "still not done after %d runs, %ld ms: %lld left",
                     runs, spent,
                     tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE " NOT_DONE));
        wait_ms = tdb_count(db.conn,
                            "SELECT ceil(greatest(0, extract(epoch FROM max(next_poll_at) - now())"
                            " * 1000)) FROM shipments WHERE " NOT_DONE);
        cr_assert_leq(wait_ms, 5000, "a retry was scheduled %lld ms away", wait_ms);
        usleep((useconds_t)(wait_ms + 10) * 1000);
    }
}

/* After a complete run: nothing failed is left, no lease held. */
static void expect_clean_state(void)
{
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NOT NULL"),
                 0, "leases left behind");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_error_streak > 0"
                                    " OR last_poll_error IS NOT NULL"),
                 0, "shipments left with a poll error");
}

/* ---- (1) every carrier end to end ---- */

/* Planned shipments of all six carriers are polled over HTTP: each visible
 * journey step is stored once; 17TRACK numbers are registered, then
 * tracked; requests are packed into the carriers' batches. */
Test(poller_faults, all_six_carriers_end_to_end)
{
    /* dhl ups fedex usps laposte track17: FedEx, La Poste, 17TRACK need two batches */
    static const int counts[N_CARRIERS] = { 6, 5, 35, 5, 15, 45 };
    struct poller_totals t, again;
    long long events;
    json_t *planned;

    tdb_create(&db, true);
    start_sim(NULL);
    base_env();
    planned = register_plans(counts);
    run_until_done(&t, 20000);

    cr_expect_eq(t.failures, 0, "%ld failures", t.failures);
    cr_expect_eq(t.polls, 111, "polled %ld", t.polls);
    cr_expect_eq(t.registrations, 45, "registered %ld 17TRACK numbers", t.registrations);
    cr_expect_eq(t.token_fetches, 3, "one token each for UPS, FedEx, USPS: %ld", t.token_fetches);
    events = check_all(planned);
    cr_expect_gt(events, 111 * 3);
    cr_expect_eq(t.events_new, events, "stored %ld new events, %lld visible steps",
                 t.events_new, events);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), events);
    expect_clean_state();

    /* Requests, per carrier as the simulator counted them:
     *   dhl 6, ups 1 token + 5, usps 1 + 5 (one number per request),
     *   fedex 1 token + 2 (30 + 5), laposte 2 (10 + 5),
     *   track17 2 gettrackinfo (not registered) + 2 register + 2 gettrackinfo. */
    cr_expect_eq(sim_counter("dhl", "requests"), 6);
    cr_expect_eq(sim_counter("ups", "requests"), 6);
    cr_expect_eq(sim_counter("usps", "requests"), 6);
    cr_expect_eq(sim_counter("fedex", "requests"), 3, "fedex: %ld requests",
                 sim_counter("fedex", "requests"));
    cr_expect_eq(sim_counter("laposte", "requests"), 2, "laposte: %ld requests",
                 sim_counter("laposte", "requests"));
    cr_expect_eq(sim_counter("track17", "requests"), 6, "track17: %ld requests",
                 sim_counter("track17", "requests"));
    cr_expect_eq(t.requests, 29, "poller sent %ld requests", t.requests);
    cr_expect_eq(t.requests, sim_requests_total());

    /* 17TRACK: registered before tracked; every number tracked after that */
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE carrier = 'track17'"
                                    " AND poll_count = 1"), 45);

    /* Poll everything again: nothing is stored twice. */
    tdb_exec(db.conn, "UPDATE shipments SET next_poll_at = now()");
    run_once(&again);
    cr_expect_eq(again.polls, 111);
    cr_expect_eq(again.events_new, 0);
    cr_expect_eq(again.registrations, 0, "registered numbers stay registered");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), events);
    json_decref(planned);
}

/* ---- (2) 429 and Retry-After ---- */

/* A carrier answering 429 (Retry-After: 1) to a share of requests: the
 * poller sends it nothing until the pause is over, other carriers go on,
 * failed polls are retried and everything ends up stored exactly once. */
Test(poller_faults, retry_after_is_honoured)
{
    static const int counts[N_CARRIERS] = { 10, 0, 0, 0, 12, 0 };
    struct poller_totals t;
    long long events;
    json_t *planned;

    tdb_create(&db, true);
    start_sim(NULL);
    base_env();
    /* one request at a time: any request inside a Retry-After window is the poller's fault */
    cr_assert_eq(setenv("SHIPTRACK_DHL_CONCURRENCY", "1", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_LAPOSTE_CONCURRENCY", "1", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_LAPOSTE_RATE", "2/s", 1), 0);
    planned = register_plans(counts);
    set_faults("rate_429=0.3&carrier=dhl");
    run_until_done(&t, 25000);

    cr_expect_gt(sim_counter("dhl", "s429"), 0, "the seed gave no 429 at all");
    cr_expect_eq(t.throttled, sim_counter("dhl", "s429"));
    cr_expect_eq(sim_counter("dhl", "early"), 0,
                 "%ld requests arrived while a Retry-After was running",
                 sim_counter("dhl", "early"));
    cr_expect_eq(sim_counter("laposte", "s429"), 0);
    cr_expect_eq(t.breaker_opens, 0, "throttling is not an outage");
    cr_expect_eq(t.failures, t.throttled, "only the throttled polls failed");
    cr_expect_eq(t.polls, 22);
    events = check_all(planned);
    cr_expect_eq(t.events_new, events);
    expect_clean_state();
    json_decref(planned);
}

/* ---- (3) circuit breaker ---- */

/* Flips the simulator's faults once it has answered `after` 5xx of dhl. */
struct flipper {
    pthread_t thread;
    long after;
    const char *query;
    volatile int stop;
    volatile int flipped;
};

static void *flip_main(void *arg)
{
    struct flipper *f = arg;

    while (!f->stop) {
        long status, n = 0;
        json_t *j = sim_call("GET", "/_sim/faults", &status);

        if (j != NULL)
            n = (long)json_integer_value(json_object_get(
                json_object_get(json_object_get(j, "carriers"), "dhl"), "s5xx"));
        json_decref(j);
        if (n >= f->after) {
            char path[256];

            snprintf(path, sizeof(path), "/_sim/faults?%s", f->query);
            json_decref(sim_call("POST", path, &status));
            f->flipped = status == 200;
            return NULL;
        }
        usleep(5000);
    }
    return NULL;
}

/* Sustained 5xx open DHL's breaker: while it is open only single probes go
 * out; a failed probe opens it again; once the carrier recovers the next
 * probe closes it and every shipment gets stored. La Poste, healthy, is
 * polled meanwhile. */
Test(poller_faults, breaker_opens_on_5xx_and_recovers)
{
    static const int counts[N_CARRIERS] = { 12, 0, 0, 0, 5, 0 };
    struct flipper f = { .after = 5, .query = "error_rate=0" };
    struct poller_totals t;
    long long events;
    json_t *planned;

    tdb_create(&db, true);
    start_sim(NULL);
    base_env();
    cr_assert_eq(setenv("SHIPTRACK_DHL_CONCURRENCY", "1", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_BREAKER_MIN_REQUESTS", "4", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_BREAKER_FAILURES", "50", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_BREAKER_COOLDOWN", "300ms", 1), 0);
    planned = register_plans(counts);
    set_faults("error_rate=1&carrier=dhl");
    /* 4 failures open the breaker, the first probe (after 300 ms) fails and
     * opens it again for 600 ms: then the carrier recovers */
    cr_assert_eq(pthread_create(&f.thread, NULL, flip_main, &f), 0);
    run_until_done(&t, 20000);
    f.stop = 1;
    pthread_join(f.thread, NULL);

    cr_assert(f.flipped, "the carrier never recovered");
    cr_expect_eq(sim_counter("dhl", "s5xx"), 5, "5xx answers: %ld (4 + one failed probe)",
                 sim_counter("dhl", "s5xx"));
    cr_expect_eq(t.breaker_opens, 2, "breaker opened %ld times", t.breaker_opens);
    cr_expect_eq(sim_counter("laposte", "s5xx"), 0);
    cr_expect_eq(t.polls, 17);
    events = check_all(planned);
    cr_expect_eq(t.events_new, events);
    expect_clean_state();
    json_decref(planned);
}

/* ---- (4) OAuth2 tokens ---- */

/* Tokens that answer 401 after three uses: the poller fetches a new one and
 * repeats the refused polls; nothing is lost or stored twice. */
Test(poller_faults, token_refreshed_on_401)
{
    static const int counts[N_CARRIERS] = { 0, 12, 0, 7, 0, 0 };
    const char *args[] = { "--token-max-uses", "3", NULL };
    struct poller_totals t;
    long long events;
    json_t *planned;

    tdb_create(&db, true);
    start_sim(args);
    base_env();
    planned = register_plans(counts);
    run_until_done(&t, 20000);

    cr_expect_gt(sim_counter("ups", "s401"), 0, "no token was ever used up");
    /* at least 12/3 UPS tokens and ceil(7/3) USPS tokens */
    cr_expect_geq(t.token_fetches, 4 + 3, "tokens fetched: %ld", t.token_fetches);
    cr_expect_eq(t.polls, 19);
    cr_expect_eq(t.failures, 0, "a used-up token must not fail a poll (%ld failed)", t.failures);
    events = check_all(planned);
    cr_expect_eq(t.events_new, events);
    expect_clean_state();
    json_decref(planned);
}

/* Tokens that live 2 s, and a run that lasts longer (each request takes
 * 250 ms, one at a time): the poller gets a new token before the old one
 * expires, so no request is refused. */
Test(poller_faults, token_refreshed_before_expiry)
{
    static const int counts[N_CARRIERS] = { 0, 12, 0, 0, 0, 0 };
    const char *args[] = { "--token-ttl", "2", "--latency-ms", "250", NULL };
    struct poller_totals t;
    long long events;
    json_t *planned;

    tdb_create(&db, true);
    start_sim(args);
    base_env();
    cr_assert_eq(setenv("SHIPTRACK_UPS_CONCURRENCY", "1", 1), 0);
    planned = register_plans(counts);
    run_until_done(&t, 20000);

    cr_expect_geq(t.token_fetches, 2, "the run outlived its first token: %ld fetched",
                  t.token_fetches);
    cr_expect_leq(t.token_fetches, 6, "tokens are reused while valid: %ld fetched",
                  t.token_fetches);
    cr_expect_eq(sim_counter("ups", "s401"), 0, "a request went out with an expired token");
    cr_expect_eq(t.polls, 12);
    cr_expect_eq(t.failures, 0);
    events = check_all(planned);
    cr_expect_eq(t.events_new, events);
    expect_clean_state();
    json_decref(planned);
}

/* ---- (5) daily quota ---- */

/* Start of the next UTC day, as the database sees it. */
#define NEXT_UTC_DAY \
    "((date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC')"

/* A daily quota of 5 and 12 due shipments: exactly 5 requests today, spent
 * on the shipments out for delivery and held first; the other 7 wait for
 * 00:00 UTC; carrier_quota says 5 used. */
Test(poller_faults, daily_quota_spent_on_the_most_urgent)
{
    struct poller_totals t;
    json_t *planned;

    tdb_create(&db, true);
    start_sim(NULL);
    base_env();
    cr_assert_eq(setenv("SHIPTRACK_DHL_DAILY_QUOTA", "5", 1), 0);
    planned = register_one("dhl", 12);
    /* the urgent ones are registered last, so that registration order does not pick them */
    tdb_exec(db.conn, "UPDATE shipments SET status = 'in_transit', next_poll_at = now() - interval '1 hour'");
    tdb_exec(db.conn, "UPDATE shipments SET status = 'out_for_delivery', next_poll_at = now()"
                      " WHERE id IN (SELECT id FROM shipments ORDER BY id DESC LIMIT 2)");
    tdb_exec(db.conn, "UPDATE shipments SET status = 'held', next_poll_at = now()"
                      " WHERE id IN (SELECT id FROM shipments ORDER BY id DESC OFFSET 2 LIMIT 2)");
    run_once(&t);

    cr_expect_eq(sim_counter("dhl", "requests"), 5);
    cr_expect_eq(t.requests, 5);
    cr_expect_eq(t.polls, 5);
    cr_expect_eq(t.deferred, 7);
    cr_expect_eq(tdb_count(db.conn, "SELECT used FROM carrier_quota WHERE carrier = 'dhl'"
                                    " AND day = (now() AT TIME ZONE 'UTC')::date"), 5);
    /* the four urgent ones were among the five polled */
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_count = 1"
                                    " AND id IN (SELECT id FROM shipments ORDER BY id DESC LIMIT 4)"), 4);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_count = 1"), 5);
    /* the rest wait for the next UTC day (spread over its first ten minutes) */
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_count = 0"
                                    " AND next_poll_at >= " NEXT_UTC_DAY
                                    " AND next_poll_at <= " NEXT_UTC_DAY " + interval '10 minutes'"),
                 7);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NOT NULL"), 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_error_streak > 0"), 0);

    /* a second run the same day spends nothing */
    run_once(&t);
    cr_expect_eq(t.requests, 0);
    cr_expect_eq(sim_counter("dhl", "requests"), 5);
    json_decref(planned);
}

/* Two poller processes sharing one daily quota never exceed it together. */
Test(poller_faults, two_pollers_share_one_quota)
{
    pid_t pids[2];
    long requests;
    json_t *planned;

    tdb_create(&db, true);
    start_sim(NULL);
    base_env();
    cr_assert_eq(setenv("SHIPTRACK_DHL_DAILY_QUOTA", "5", 1), 0);
    cr_assert_eq(setenv("SHIPTRACK_DHL_CONCURRENCY", "2", 1), 0);
    planned = register_one("dhl", 16);
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0) {
            /* the child: its own worker id, its own connections; no Criterion asserts */
            struct st_config cfg;
            struct poller_totals t;
            volatile sig_atomic_t running = 1;
            struct poller_opts o = { &running, true };
            char err[256];
            int rc;

            setenv("SHIPTRACK_WORKER_ID", i == 0 ? "quota-a" : "quota-b", 1);
            if (config_load(&cfg, err, sizeof(err)) != ST_OK)
                _exit(3);
            rc = poller_run(&cfg, &o, &t);
            config_free(&cfg);
            _exit(rc == 0 && t.requests <= 5 ? 0 : 4);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status;

        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "poller %d: status %d", i,
                  status);
    }
    requests = sim_counter("dhl", "requests");
    cr_expect_leq(requests, 5, "%ld requests against a quota of 5", requests);
    cr_expect_geq(requests, 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT used FROM carrier_quota WHERE carrier = 'dhl'"
                                    " AND day = (now() AT TIME ZONE 'UTC')::date"),
                 requests, "quota used vs requests sent");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_count = 1"),
                 requests);
    /* whatever was not polled waits for tomorrow; nothing is left leased */
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_count = 0"
                                    " AND next_poll_at >= " NEXT_UTC_DAY),
                 16 - requests);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NOT NULL"), 0);
    json_decref(planned);
}

/* ---- (6) malformed and oversized bodies ---- */

/* Everything the poller may not change on a failed poll, as one text. */
#define SNAPSHOT_SQL                                                                             \
    "SELECT md5(coalesce((SELECT string_agg(concat_ws('|', id, status, substatus, status_at,"    \
    " customs_state, edd_original, edd_current, last_event_at, poll_count), ',' ORDER BY id)"    \
    " FROM shipments), '') || coalesce((SELECT string_agg(concat_ws('|', id, shipment_id,"       \
    " occurred_at, status, substatus, raw_code, raw_description), ',' ORDER BY id)"              \
    " FROM tracking_events), '') || (SELECT count(*) FROM outbox)::text"                         \
    " || (SELECT count(*) FROM customs_holds)::text)"

/* Poll everything once, cleanly; then make everything due again. Returns
 * the snapshot of the stored data. */
static char *store_then_due(json_t **planned, const char *carrier, int count)
{
    struct poller_totals t;

    *planned = register_one(carrier, count);
    run_until_done(&t, 10000);
    cr_assert_eq(t.failures, 0);
    cr_assert_gt(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), count);
    tdb_exec(db.conn, "UPDATE shipments SET next_poll_at = now()");
    return tdb_scalar(db.conn, SNAPSHOT_SQL);
}

/* Truncated JSON from the carrier: every poll fails as permanent with the
 * parser's reason stored, and no stored event, status or hold changes. */
Test(poller_faults, malformed_bodies_keep_the_data)
{
    struct poller_totals t;
    char *before, *after;
    json_t *planned;

    tdb_create(&db, true);
    start_sim(NULL);
    base_env();
    before = store_then_due(&planned, "laposte", 14);
    set_faults("malformed_rate=1");
    run_once(&t);

    cr_expect_eq(t.polls, 0, "%ld polls", t.polls);
    cr_expect_eq(t.failures, 14, "%ld failures", t.failures);
    cr_expect_eq(sim_counter("laposte", "malformed"), 2, "two batches of La Poste: %ld cut",
                 sim_counter("laposte", "malformed"));
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_error_streak = 1"
                                    " AND last_poll_error LIKE 'permanent: %'"
                                    " AND next_poll_at > now()"), 14);
    after = tdb_scalar(db.conn, SNAPSHOT_SQL);
    cr_expect_str_eq(after, before, "a malformed body changed stored data");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NOT NULL"), 0);

    /* the carrier heals: the next poll clears the error and stores nothing new */
    set_faults("malformed_rate=0");
    tdb_exec(db.conn, "UPDATE shipments SET next_poll_at = now()");
    run_once(&t);
    cr_expect_eq(t.polls, 14);
    cr_expect_eq(t.events_new, 0);
    expect_clean_state();
    check_all(planned);
    free(before);
    free(after);
    json_decref(planned);
}

/* A response over SHIPTRACK_HTTP_MAX_BODY is cut off: the poll fails with
 * the limit named in the stored reason, and the stored data stays. */
Test(poller_faults, oversized_bodies_keep_the_data)
{
    struct poller_totals t;
    char *before, *after, *reason;
    json_t *planned;

    tdb_create(&db, true);
    start_sim(NULL);
    base_env();
    before = store_then_due(&planned, "fedex", 12);
    cr_assert_eq(setenv("SHIPTRACK_HTTP_MAX_BODY", "1KiB", 1), 0);
    run_once(&t);

    cr_expect_eq(t.polls, 0);
    cr_expect_eq(t.failures, 12);
    reason = tdb_scalar(db.conn, "SELECT last_poll_error FROM shipments ORDER BY id LIMIT 1");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_error_streak = 1"
                                    " AND last_poll_error LIKE '%larger than 1024 bytes%'"
                                    " AND next_poll_at > now()"),
                 12, "reason stored: %s", reason ? reason : "(none)");
    free(reason);
    after = tdb_scalar(db.conn, SNAPSHOT_SQL);
    cr_expect_str_eq(after, before, "an oversized body changed stored data");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NOT NULL"), 0);
    free(before);
    free(after);
    json_decref(planned);
}
