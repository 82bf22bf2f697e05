/*
 * test_sim.c - shiptrack-carrier-sim end to end, over real HTTP on loopback.
 *
 * Each test starts the built simulator (--port 0, time compressed 100000x),
 * talks to it with libcurl and checks: the DHL key check (401), unknown
 * numbers (404 problem+json, which the driver reads as not found), that every
 * planned number's body parses with carrier_dhl into exactly the journey's
 * visible steps (count, order, statuses, customs holds), determinism, the
 * plan subcommand's coverage and agreement with the journeys, the fault
 * knobs, and the command line. The simulator is stopped with SIGTERM in the
 * fixture's teardown, which asserts exit status 0.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "carrier.h"
#include "geo.h"
#include "simclient.h"
#include "testutil.h"

extern const struct carrier_def carrier_dhl;

#define SIM_KEY       "sim-dhl-key"
#define N_SCENARIOS   9

/* Scenario names the simulator documents (carriers/sim/journey.h). */
static const char *const scenarios[N_SCENARIOS] = {
    "domestic_delivered", "customs_delivered", "customs_duties_held", "customs_documents_held",
    "attempt_then_delivered", "pickup_point", "returned_to_sender", "lost", "unmapped_code",
};

static struct tu_sim sim;

/* GET sim.url + path, with the DHL key header when key is non-NULL. */
static void get(const char *path, const char *key, struct sc_reply *r)
{
    char hdr[256] = "";
    const char *headers[] = { hdr, NULL };

    if (key != NULL)
        snprintf(hdr, sizeof(hdr), "DHL-API-Key: %s", key);
    sc_get(&sim, path, key != NULL ? headers : NULL, r);
}

/* GET the DHL tracking endpoint for number. */
static void get_dhl(const char *number, const char *key, struct sc_reply *r)
{
    char path[128];

    snprintf(path, sizeof(path), "/track/shipments?trackingNumber=%s", number);
    get(path, key, r);
}

static void start_default(void)
{
    static const char *const args[] = { "--speed", "100000", NULL };

    sc_start(&sim, args);
}

static void stop(void)
{
    sc_stop(&sim);
}

/* How DHL dates a step: a timestamp with an offset is the carrier's; a local
 * one takes the zone the country and postal code give, else stays local time. */
static enum offset_kind kind_of(const char *number, size_t index, json_t *step)
{
    json_t *wire = json_object_get(step, "wire");
    const char *cc = sc_str(step, "country");

    (void)number;
    (void)index;
    if (strcmp(sc_str(wire, "timestamp_style"), "local") != 0)
        return OFFSET_CARRIER;
    return geo_zone(cc, geo_region_from_postal(cc, sc_str(step, "postal_code"))) != NULL
               ? OFFSET_DERIVED
               : OFFSET_UNKNOWN;
}

/* Compare a parsed result with the journey's visible steps (the driver sorts
 * by instant, stably). */
static void compare(const char *number, json_t *journey, const struct track_result *res)
{
    struct sc_want w[64];
    size_t n = sc_visible_steps(number, journey, kind_of, true, w, sizeof(w) / sizeof(w[0]));

    sc_assert_found(number, journey, res, n);
    for (size_t i = 0; i < n; i++) {
        const struct track_event *ev = &res->events[i];
        json_t *s = w[i].step, *wire = json_object_get(s, "wire");

        sc_expect_when(number, i, ev, &w[i]);
        /* the local text for local timestamps; the offset where it was derived */
        if (w[i].kind != OFFSET_CARRIER)
            cr_expect_str_eq(ev->occurred_local, sc_str(s, "local"));
        if (w[i].kind == OFFSET_DERIVED)
            cr_expect_eq(ev->utc_offset_min,
                         json_integer_value(json_object_get(s, "utc_offset_min")));
        sc_expect_event(number, i, ev, s);
        cr_expect_str_eq(ev->code, sc_str(wire, "statusDetailed"));
        sc_expect_place(ev, s);
        cr_expect(strncmp(ev->description, sc_str(s, "text"), strlen(sc_str(s, "text"))) == 0,
                  "%s event %zu: description %s", number, i, ev->description);
    }
}

/* Parse a served DHL body with the driver. */
static enum st_err parse(const char *number, const struct sc_reply *r, struct track_result *res,
                         char *err, size_t errlen)
{
    struct carrier_ctx ctx = { .base_url = sim.url, .api_key = SIM_KEY };

    memset(res, 0, sizeof(*res));
    return carrier_dhl.ops->parse_response(&ctx, r->status, r->body, r->len, &number, 1, res,
                                           err, errlen);
}

/* Fetch a consistent (journey, body) pair: the journey's visible steps did not
 * change while the body was fetched. Parses the body into res. */
static json_t *snapshot(const char *number, struct track_result *res)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        json_t *a = sc_journey(&sim, "dhl", number), *b;
        struct sc_reply r;
        char err[256];
        enum st_err rc;

        cr_assert_not_null(a, "%s: the simulator does not know a planned number", number);
        get_dhl(number, SIM_KEY, &r);
        b = sc_journey(&sim, "dhl", number);
        cr_assert_eq(r.status, 200, "%s: HTTP %ld %s", number, r.status, r.body);
        if (json_equal(json_object_get(a, "visible_steps"), json_object_get(b, "visible_steps"))) {
            rc = parse(number, &r, res, err, sizeof(err));
            cr_assert_eq(rc, ST_OK, "%s: %s", number, err);
            free(r.body);
            json_decref(b);
            return a;
        }
        free(r.body);
        json_decref(a);
        json_decref(b);
    }
    cr_assert_fail("%s: no consistent snapshot in 20 tries", number);
    return NULL;
}

/* Wait until every step of number's journey is visible (at most 30 s). */
static void wait_complete(const char *number)
{
    for (int i = 0; i < 300; i++) {
        json_t *j = sc_journey(&sim, "dhl", number);
        bool done = json_equal(json_object_get(j, "visible_steps"),
                               json_object_get(j, "total_steps"));

        json_decref(j);
        if (done)
            return;
        usleep(100 * 1000);
    }
    cr_assert_fail("%s: journey not complete after 30 s", number);
}

TestSuite(sim, .init = start_default, .fini = stop, .timeout = 120);

Test(sim, health)
{
    struct sc_reply r;

    get("/_sim/health", NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, "\"ok\"") != NULL, "%s", r.body);
    free(r.body);
    get("/no/such/path", NULL, &r);
    cr_expect_eq(r.status, 404);
    free(r.body);
}

Test(sim, api_key_is_checked)
{
    json_t *plan = sc_plan(NULL, "1", "3", SC_PLAN_ANY);
    const char *number = sc_str(json_array_get(plan, 0), "tracking_number");
    struct track_result res;
    struct sc_reply r;
    char err[256];

    get_dhl(number, NULL, &r);
    cr_expect_eq(r.status, 401, "no key: HTTP %ld", r.status);
    cr_expect_str_eq(r.content_type, "application/problem+json");
    cr_expect_eq(parse(number, &r, &res, err, sizeof(err)), ST_CONFIG, "%s", err);
    cr_expect(strstr(err, "DHL rejected the API key") != NULL, "%s", err);
    track_result_reset(&res);
    free(r.body);
    get_dhl(number, "not-the-key", &r);
    cr_expect_eq(r.status, 401, "wrong key: HTTP %ld", r.status);
    free(r.body);
    get_dhl(number, SIM_KEY, &r);
    cr_expect_eq(r.status, 200, "right key: HTTP %ld", r.status);
    free(r.body);
    json_decref(plan);
}

Test(sim, unknown_numbers_are_404)
{
    char number[16] = "";
    struct track_result res;
    struct sc_reply r;
    char err[256];

    /* a bad check digit */
    get_dhl("1234567890", SIM_KEY, &r); /* 123456789 mod 7 = 1, not 0 */
    cr_expect_eq(r.status, 404);
    free(r.body);
    /* a well-formed number the simulator has never seen */
    for (unsigned long s = 200000000; s < 200001000 && number[0] == '\0'; s++) {
        char cand[16];
        json_t *j;

        snprintf(cand, sizeof(cand), "%09lu%lu", s, s % 7);
        if ((j = sc_journey(&sim, "dhl", cand)) == NULL)
            snprintf(number, sizeof(number), "%s", cand);
        json_decref(j);
    }
    cr_assert(number[0] != '\0', "every number is known");
    get_dhl(number, SIM_KEY, &r);
    cr_expect_eq(r.status, 404);
    cr_expect_str_eq(r.content_type, "application/problem+json");
    cr_expect_eq(parse(number, &r, &res, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(res.outcome, TRACK_NOT_FOUND);
    track_result_reset(&res);
    free(r.body);
}

Test(sim, planned_bodies_parse_into_the_journeys)
{
    json_t *plan = sc_plan(NULL, "24", "1", SC_PLAN_ANY), *p;
    size_t i;

    cr_assert_eq(json_array_size(plan), 24);
    /* early: journeys partly visible */
    json_array_foreach(plan, i, p) {
        const char *number = sc_str(p, "tracking_number");
        struct track_result res;
        json_t *j = snapshot(number, &res);

        compare(number, j, &res);
        track_result_reset(&res);
        json_decref(j);
    }
    /* complete: every step visible, every scenario's signature present */
    json_array_foreach(plan, i, p) {
        const char *number = sc_str(p, "tracking_number");
        struct track_result res;
        json_t *j;

        wait_complete(number);
        j = snapshot(number, &res);
        cr_expect_str_eq(sc_str(j, "scenario"), sc_str(p, "scenario"));
        compare(number, j, &res);
        sc_check_scenario(number, sc_str(p, "scenario"), &res, true);
        track_result_reset(&res);
        json_decref(j);
    }
    json_decref(plan);
}

Test(sim, deterministic)
{
    json_t *plan = sc_plan(NULL, "9", "5", SC_PLAN_ANY), *p;
    size_t i;

    json_array_foreach(plan, i, p) {
        const char *number = sc_str(p, "tracking_number");
        struct sc_reply a, b;
        json_t *ja, *jb;

        wait_complete(number);
        get_dhl(number, SIM_KEY, &a);
        get_dhl(number, SIM_KEY, &b);
        cr_expect_eq(a.status, 200);
        cr_expect_eq(a.len, b.len);
        cr_expect_str_eq(a.body, b.body, "%s: two fetches differ", number);
        ja = sc_journey(&sim, "dhl", number);
        jb = sc_journey(&sim, "dhl", number);
        cr_expect(json_equal(json_object_get(ja, "steps"), json_object_get(jb, "steps")),
                  "%s: journey changed", number);
        free(a.body);
        free(b.body);
        json_decref(ja);
        json_decref(jb);
    }
    json_decref(plan);
}

/* The same number tells the same story in another simulator process. */
Test(sim, deterministic_across_runs)
{
    static const char *const args[] = { "--speed", "7", NULL };
    json_t *plan = sc_plan(NULL, "9", "11", SC_PLAN_ANY), *first = json_array(), *p;
    struct tu_sim other;
    size_t i;

    json_array_foreach(plan, i, p)
        json_array_append_new(first, sc_journey(&sim, "dhl", sc_str(p, "tracking_number")));
    other = sim;
    tu_sim_start(&sim, args);
    json_array_foreach(plan, i, p) {
        json_t *a = json_array_get(first, i);
        json_t *b = sc_journey(&sim, "dhl", sc_str(p, "tracking_number"));
        json_t *sa = json_object_get(a, "steps"), *sb = json_object_get(b, "steps");
        size_t k;

        cr_expect(json_equal(json_object_get(a, "scenario"), json_object_get(b, "scenario")));
        cr_expect(json_equal(json_object_get(a, "origin"), json_object_get(b, "origin")));
        cr_expect(json_equal(json_object_get(a, "destination"), json_object_get(b, "destination")));
        cr_assert_eq(json_array_size(sa), json_array_size(sb));
        for (k = 0; k < json_array_size(sa); k++) {
            json_t *x = json_array_get(sa, k), *y = json_array_get(sb, k);

            cr_expect(json_equal(json_object_get(x, "kind"), json_object_get(y, "kind")));
            cr_expect(json_equal(json_object_get(x, "offset_seconds"),
                                 json_object_get(y, "offset_seconds")));
            cr_expect(json_equal(json_object_get(x, "city"), json_object_get(y, "city")));
            cr_expect(json_equal(json_object_get(x, "text"), json_object_get(y, "text")));
        }
        json_decref(b);
    }
    tu_sim_stop(&sim);
    sim = other;
    json_decref(first);
    json_decref(plan);
}

Test(sim, plan_covers_scenarios_and_destinations)
{
    json_t *plan = sc_plan(NULL, "24", "42", SC_PLAN_ANY), *p;
    char dests[32][3];
    size_t n_dest = 0, i;
    bool seen[N_SCENARIOS] = { false };

    cr_assert_eq(json_array_size(plan), 24);
    json_array_foreach(plan, i, p) {
        const char *number = sc_str(p, "tracking_number"), *dest = sc_str(p, "destination");
        json_t *j = sc_journey(&sim, "dhl", number);
        unsigned long serial;
        bool known = false;

        cr_expect_str_eq(sc_str(p, "carrier"), "dhl");
        cr_assert_eq(strlen(number), 10, "%s", number);
        cr_assert_eq(sscanf(number, "%9lu", &serial), 1);
        cr_expect_eq((unsigned long)(number[9] - '0'), serial % 7, "%s: check digit", number);
        cr_expect(geo_country_valid(sc_str(p, "origin")));
        cr_expect(geo_country_valid(dest));
        cr_expect(geo_zone_valid(sc_str(p, "time_zone")), "%s", sc_str(p, "time_zone"));
        cr_expect(strlen(sc_str(p, "locale")) >= 2);
        cr_expect(strchr(sc_str(p, "email"), '@') != NULL);
        cr_expect(sc_str(p, "phone")[0] == '+');
        cr_expect(strncmp(sc_str(p, "order_ref"), "ORD-", 4) == 0);
        /* the journey agrees with the plan */
        cr_assert_not_null(j, "%s: planned but unknown", number);
        cr_expect_str_eq(sc_str(j, "scenario"), sc_str(p, "scenario"));
        cr_expect_str_eq(sc_str(json_object_get(j, "origin"), "country"), sc_str(p, "origin"));
        cr_expect_str_eq(sc_str(json_object_get(j, "destination"), "country"), dest);
        cr_expect_str_eq(sc_str(json_object_get(j, "destination"), "zone"), sc_str(p, "time_zone"));
        json_decref(j);
        for (size_t s = 0; s < N_SCENARIOS; s++)
            if (strcmp(scenarios[s], sc_str(p, "scenario")) == 0)
                seen[s] = true;
        for (size_t d = 0; d < n_dest; d++)
            if (strcmp(dests[d], dest) == 0)
                known = true;
        if (!known && n_dest < 32)
            snprintf(dests[n_dest++], 3, "%s", dest);
    }
    for (size_t s = 0; s < N_SCENARIOS; s++)
        cr_expect(seen[s], "scenario %s not planned", scenarios[s]);
    cr_expect_geq(n_dest, 8, "only %zu destinations", n_dest);
    json_decref(plan);
}

Test(sim, fault_429_and_500)
{
    static const char *const a429[] = { "--rate-429", "1", NULL };
    static const char *const a500[] = { "--error-rate", "1", NULL };
    json_t *plan = sc_plan(NULL, "1", "2", SC_PLAN_ANY);
    const char *number = sc_str(json_array_get(plan, 0), "tracking_number");
    struct track_result res;
    struct sc_reply r;
    char err[256];

    sc_restart(&sim, a429);
    get_dhl(number, SIM_KEY, &r);
    cr_expect_eq(r.status, 429);
    cr_expect_str_eq(r.retry_after, "1");
    cr_expect_eq(parse(number, &r, &res, err, sizeof(err)), ST_RETRY, "%s", err);
    track_result_reset(&res);
    free(r.body);
    get("/_sim/health", NULL, &r); /* the simulator's own endpoints are never faulted */
    cr_expect_eq(r.status, 200);
    free(r.body);

    sc_restart(&sim, a500);
    get_dhl(number, SIM_KEY, &r);
    cr_expect_eq(r.status, 500);
    cr_expect_eq(parse(number, &r, &res, err, sizeof(err)), ST_RETRY, "%s", err);
    track_result_reset(&res);
    free(r.body);
    json_decref(plan);
}

Test(sim, fault_malformed_and_latency)
{
    static const char *const amal[] = { "--malformed-rate", "1", NULL };
    static const char *const alat[] = { "--latency-ms", "300", NULL };
    json_t *plan = sc_plan(NULL, "1", "2", SC_PLAN_ANY);
    const char *number = sc_str(json_array_get(plan, 0), "tracking_number");
    struct track_result res;
    struct sc_reply r;
    char err[256];

    sc_restart(&sim, amal);
    get_dhl(number, SIM_KEY, &r);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(parse(number, &r, &res, err, sizeof(err)), ST_PERMANENT, "%s", err);
    cr_expect(strstr(err, "not JSON") != NULL, "%s", err);
    track_result_reset(&res);
    free(r.body);

    sc_restart(&sim, alat);
    get_dhl(number, SIM_KEY, &r);
    cr_expect_eq(r.status, 200);
    cr_expect_geq(r.seconds, 0.29, "took %.3f s", r.seconds);
    free(r.body);
    json_decref(plan);
}

/* Status codes of n carrier requests. */
static void statuses(const char *number, long *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct sc_reply r;

        get_dhl(number, SIM_KEY, &r);
        out[i] = r.status;
        free(r.body);
    }
}

Test(sim, faults_follow_the_seed)
{
    static const char *const args[] = { "--error-rate", "0.5", "--rate-429", "0.2", "--seed",
                                        "7", NULL };
    json_t *plan = sc_plan(NULL, "1", "2", SC_PLAN_ANY);
    const char *number = sc_str(json_array_get(plan, 0), "tracking_number");
    long a[40], b[40];
    int faults = 0;

    sc_restart(&sim, args);
    statuses(number, a, 40);
    sc_restart(&sim, args);
    statuses(number, b, 40);
    for (size_t i = 0; i < 40; i++) {
        cr_expect_eq(a[i], b[i], "request %zu: %ld then %ld", i, a[i], b[i]);
        cr_expect(a[i] == 200 || a[i] == 429 || a[i] == 500, "request %zu: %ld", i, a[i]);
        faults += a[i] != 200;
    }
    cr_expect(faults > 5 && faults < 40, "%d faults in 40", faults);
    json_decref(plan);
}

/* Run the simulator binary with argv[1..]; returns the exit status. */
static int run_sim(char **argv, char **out, char **err)
{
    char bin[512];

    tu_binary_path(bin, sizeof(bin), "shiptrack-carrier-sim");
    argv[0] = bin;
    return tu_run(argv, NULL, out, err);
}

Test(sim, command_line)
{
    char *argv_bad[] = { NULL, "--bogus", NULL };
    char *argv_speed[] = { NULL, "--speed", "0", NULL };
    char *argv_rate[] = { NULL, "--error-rate", "1.5", NULL };
    char *argv_help[] = { NULL, "--help", NULL };
    char *argv_plan[] = { NULL, "plan", "--carrier", "nope", NULL };
    char *out, *err;

    cr_expect_eq(run_sim(argv_bad, &out, &err), 2);
    cr_expect_str_eq(out, "");
    cr_expect(strstr(err, "usage:") != NULL, "%s", err);
    free(out);
    free(err);
    cr_expect_eq(run_sim(argv_speed, NULL, NULL), 2);
    cr_expect_eq(run_sim(argv_rate, NULL, NULL), 2);
    cr_expect_eq(run_sim(argv_plan, NULL, NULL), 2);
    cr_expect_eq(run_sim(argv_help, &out, &err), 0);
    cr_expect(strstr(out, "--dhl-api-key") != NULL);
    free(out);
    free(err);
}

Test(sim, sigint_exits_zero)
{
    int status;

    cr_assert_eq(kill(sim.pid, SIGINT), 0);
    cr_assert_eq(waitpid(sim.pid, &status, 0), sim.pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    sim.pid = 0; /* already reaped: teardown has nothing to stop */
}
