/*
 * simclient.h - talking to shiptrack-carrier-sim from the carrier suites.
 *
 * The per-carrier end-to-end suites (test_ups.c, test_usps.c, test_fedex.c,
 * test_laposte.c, test_track17.c, test_sim.c) all send requests to the built
 * simulator, read its /_sim/journey and /_sim/clock endpoints, run its `plan`
 * subcommand and read the JSON it answers. These helpers do that once.
 *
 * Every helper asserts (cr_assert) on transport and allocation failures, so a
 * caller only ever sees complete answers. Call sc_start before any of them in
 * a test process (it initialises libcurl) and sc_stop at the end.
 */
#ifndef ST_SIMCLIENT_H
#define ST_SIMCLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "carrier.h"
#include "testutil.h"

/* Largest body a reply collects; a longer one fails the transfer (and the test). */
#define SC_BODY_CAP (8u * 1024u * 1024u)

/* One HTTP answer. */
struct sc_reply {
    long status;
    char *body;                 /* heap, NUL-terminated, never NULL; caller frees */
    size_t len;
    char retry_after[16];       /* Retry-After header value, "" when absent */
    char content_type[64];      /* Content-Type, "" when absent */
    double seconds;             /* total time of the transfer */
};

/* Initialise libcurl, then start the simulator with args (NULL-terminated,
 * may be NULL; see tu_sim_start). */
void sc_start(struct tu_sim *sim, const char *const *args);
/* Stop the simulator (asserting it exits 0), then release libcurl. */
void sc_stop(struct tu_sim *sim);
/* Stop the simulator and start it again with other args; libcurl stays up. */
void sc_restart(struct tu_sim *sim, const char *const *args);

/* Send method ("GET", "POST"...) to url with headers ("Name: value",
 * NULL-terminated list, or NULL) and a body (NULL: none; body_len bytes
 * otherwise). Fills *r; 30 s timeout. */
void sc_http(const char *method, const char *url, const char *const *headers, const char *body,
             size_t body_len, struct sc_reply *r);
/* Send a driver-built request as it is: its method, URL and headers; a POST
 * carries its body ("" when it has none). */
void sc_send(const struct carrier_request *req, struct sc_reply *r);
/* GET sim->url + path with headers (NULL-terminated list, or NULL). */
void sc_get(const struct tu_sim *sim, const char *path, const char *const *headers,
            struct sc_reply *r);

/* Fetch an OAuth2 token from the simulator with def's own token request:
 * build it with ctx (asserted to succeed), send it, parse the answer into
 * *tok. *status (may be NULL) gets the HTTP status, err the parse message.
 * Returns parse_token_response's kind. */
enum st_err sc_fetch_token(const struct carrier_def *def, const struct carrier_ctx *ctx,
                           struct carrier_token *tok, long *status, char *err, size_t errlen);

/* Send req (built by the caller) and parse the answer as def's tracking
 * response for numbers[0..n) into res[0..n), zeroed first. *status (may be
 * NULL) gets the HTTP status, err the parse message ("" when none). Returns
 * parse_response's kind. */
enum st_err sc_exchange(const struct carrier_def *def, const struct carrier_ctx *ctx,
                        const struct carrier_request *req, const char *const *numbers, size_t n,
                        struct track_result *res, long *status, char *err, size_t errlen);

/* Track numbers[0..n) with def's own request: build it with ctx (asserted to
 * succeed), then sc_exchange. */
enum st_err sc_track(const struct carrier_def *def, const struct carrier_ctx *ctx,
                     const char *const *numbers, size_t n, struct track_result *res,
                     long *status, char *err, size_t errlen);

/* /_sim/journey of carrier's number, parsed; NULL when the simulator does not
 * know it (HTTP 404 with "known": false). Asserts on any other status. */
json_t *sc_journey(const struct tu_sim *sim, const char *carrier, const char *number);

/* Poll /_sim/clock until "all_complete" is true: up to tries times, interval_ms
 * apart; fails the test with what when it never is. */
void sc_wait_all_complete(const struct tu_sim *sim, int tries, long interval_ms,
                          const char *what);

/* What sc_plan checks of each line's "carrier" member (nothing when no
 * carrier was asked for). */
enum sc_plan_check {
    SC_PLAN_ANY,                /* nothing */
    SC_PLAN_EXPECT_CARRIER,     /* cr_expect it equals the carrier asked for */
    SC_PLAN_ASSERT_CARRIER,     /* cr_assert it equals the carrier asked for */
};

/* Run `shiptrack-carrier-sim plan [--carrier carrier] --count count --seed seed`
 * (carrier NULL: no --carrier) and return its lines as a JSON array (caller
 * decrefs). Asserts the command exits 0 and every line is JSON. */
json_t *sc_plan(const char *carrier, const char *count, const char *seed,
                enum sc_plan_check check);

/* String member key of object o, or "" when absent or not a string. */
const char *sc_str(json_t *o, const char *key);

/* Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS" (anything after the
 * seconds, such as Z or an offset, is ignored), read as UTC. Asserts the form. */
time_t sc_utc_of(const char *s);

/* True when res has an event with this status and substatus. */
bool sc_has(const struct track_result *res, enum st_status s, enum st_substatus sub);

/* Scenario-level signatures of a complete journey of the simulator's nine
 * scenarios (holds and releases, pickup, failed attempt, unmapped code,
 * delivered unless lost or returned). strict adds two negative checks: no
 * duties hold in customs_delivered, never out for delivery when lost. */
void sc_check_scenario(const char *number, const char *scenario, const struct track_result *res,
                       bool strict);

/*
 * Comparing a parsed result with /_sim/journey. Each suite keeps what is
 * particular to its carrier (how a step is dated, which wire members hold the
 * code and description); these helpers hold the rest.
 */

/* A visible journey step and what the driver must make of its time. */
struct sc_want {
    json_t *step;               /* borrowed from the journey */
    time_t at;                  /* expected occurred_at */
    enum offset_kind kind;      /* expected offset kind */
};

/* A carrier's dating rule: the offset kind its driver must give step, the
 * step at index of the journey's "steps" (for messages). May check the
 * step's wire form too (cr_expect). */
typedef enum offset_kind (*sc_kind_fn)(const char *number, size_t index, json_t *step);

/* Collect the journey's visible steps into w[0..cap), each with the kind
 * kind_of gives and the instant that implies: the step's "at", or for
 * OFFSET_UNKNOWN its "local" wall time read as UTC. When sorted, order them
 * stably by that instant, as the drivers that sort do; otherwise keep the
 * journey's order. Asserts they fit; returns how many. */
size_t sc_visible_steps(const char *number, json_t *journey, sc_kind_fn kind_of, bool sorted,
                        struct sc_want *w, size_t cap);

/* Assert res was found and has exactly n events (n visible steps). */
void sc_assert_found(const char *number, json_t *journey, const struct track_result *res,
                     size_t n);

/* Expect event i of number to carry step's "expect" block: status, substatus,
 * affects_status and customs. */
void sc_expect_event(const char *number, size_t i, const struct track_event *ev, json_t *step);

/* Expect event i of number at w->at with offset kind w->kind. */
void sc_expect_when(const char *number, size_t i, const struct track_event *ev,
                    const struct sc_want *w);

/* Expect ev's city, postal code and country to be step's. */
void sc_expect_place(const struct track_event *ev, json_t *step);

#endif
