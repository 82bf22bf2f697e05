/*
 * sim.h - shiptrack-carrier-sim: how carrier renderers plug into the server.
 *
 * The server (server.c) owns libmicrohttpd, the clock, the fault knobs and
 * the /_sim/ endpoints. Each carrier is one file, sim_<name>.c, exporting one
 * `const struct sim_carrier sim_carrier_<name>` listed in sim_carriers[]
 * (server.c). A renderer sees a request as plain strings and fills a
 * response; it never touches libmicrohttpd, so adding UPS, FedEx, USPS,
 * La Poste or 17TRACK means one new file and one line in the list.
 */
#ifndef ST_SIM_H
#define ST_SIM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "journey.h"

/* Options shared by every renderer (set from the command line). */
struct sim_options {
    const char *listen;         /* address to bind, default 127.0.0.1 */
    unsigned port;              /* 0 = any free port */
    double speed;               /* journey seconds per real second */
    const char *dhl_api_key;    /* accepted DHL-API-Key */
    const char *laposte_api_key; /* accepted X-Okapi-Key */
    const char *track17_api_key; /* accepted 17token */
    uint64_t seed;              /* seeds the fault knobs */
    unsigned latency_ms;        /* added to every carrier request */
    double error_rate;          /* probability of a 500 */
    double rate_429;            /* probability of a 429 with Retry-After: 1 */
    double malformed_rate;      /* probability of a truncated JSON body */
    double reset_rate;          /* probability of closing the connection without an answer */
    double oversized_rate;      /* probability of a body padded past SIM_OVERSIZED_BYTES */
    unsigned slow_body_ms;      /* pause before every 512-byte chunk of a body (0 = none) */
    const char *oauth_client_id;     /* accepted OAuth2 client id (all OAuth carriers) */
    const char *oauth_client_secret; /* and its secret */
    unsigned token_ttl;              /* seconds (wall clock) an issued token lives */
    unsigned token_max_uses;         /* 0 = unlimited; else a token answers 401 after N uses */
};

/* One incoming request, as strings. The server implements the lookups. */
struct sim_request {
    const char *method;
    const char *path;           /* without the query string */
    void *conn;                 /* server-private */
    const char *body;           /* request body, NUL-terminated ("" when none) */
    size_t body_len;
};

/* Value of a query parameter or request header (case-insensitive name), or NULL. */
const char *sim_query(const struct sim_request *req, const char *key);
const char *sim_header(const struct sim_request *req, const char *name);

#define SIM_MAX_RESP_HEADERS 4

/* The answer a renderer builds; the server sends it and frees body. */
struct sim_response {
    unsigned status;                            /* HTTP status */
    const char *content_type;                   /* static string */
    char *body;                                 /* heap (malloc), owned by the response */
    size_t len;
    const char *headers[SIM_MAX_RESP_HEADERS][2]; /* extra headers, static strings */
    size_t n_headers;
    bool reset;                 /* set by the server's faults: drop the connection instead */
    unsigned slow_ms;           /* set by the server's faults: trickle the body */
};

/* What a renderer may read while answering. */
struct sim_env {
    const struct sim_options *opt;
    const struct sim_clock *clock;
};

/* A carrier the simulator speaks. */
struct sim_carrier {
    const char *name;           /* as in carrier_def.name: "dhl" */
    /* True when this carrier serves (method, path). */
    bool (*route)(const char *method, const char *path);
    /* Answer a routed request (auth, 404s, bodies). Faults are applied by the server. */
    void (*handle)(const struct sim_env *env, const struct sim_request *req,
                   struct sim_response *resp);
    /* True when number has this carrier's format (and check digit). */
    bool (*number_valid)(const char *number);
    /* Write the valid number built from a serial (for plan); false if impossible. */
    bool (*number_from_serial)(uint64_t serial, char *out, size_t cap);
    /* Carrier-specific wire facts of step i (e.g. the exact timestamp text), or NULL. */
    json_t *(*wire_step)(const struct sim_env *env, const struct journey *j, size_t i);
};

extern const struct sim_carrier *const sim_carriers[];
extern const size_t sim_carriers_count;
const struct sim_carrier *sim_carrier_find(const char *name);

/* Response helpers (server.c). json is consumed. */
void sim_respond_json(struct sim_response *resp, unsigned status, const char *content_type,
                      json_t *json);
/* An RFC 7807 problem document. */
void sim_respond_problem(struct sim_response *resp, unsigned status, const char *title,
                         const char *detail);
/* Add a static header to a response (ignored beyond SIM_MAX_RESP_HEADERS). */
void sim_response_header(struct sim_response *resp, const char *name, const char *value);

/* --- OAuth2 client-credentials tokens, shared by the OAuth carriers (oauth.c) --- */

/* True when id/secret are the configured client credentials. */
bool sim_oauth_client_ok(const struct sim_env *env, const char *id, const char *secret);
/* Issue a new token for carrier into buf (cap >= 64); *expires_in gets its
 * lifetime in seconds. Returns false when the token table is full. */
bool sim_oauth_issue(const struct sim_env *env, const char *carrier, char *buf, size_t cap,
                     long *expires_in);
/* True when `authorization` is "Bearer T" with T issued for carrier, not
 * expired, and not used up (each call counts as one use). */
bool sim_oauth_valid(const struct sim_env *env, const char *carrier, const char *authorization);
/* Decode HTTP basic credentials ("Basic base64(id:secret)") into id/secret. */
bool sim_basic_auth(const char *authorization, char *id, size_t idcap, char *secret,
                    size_t secretcap);
/* Value of key in an application/x-www-form-urlencoded body, decoded into buf. */
bool sim_form_value(const char *body, const char *key, char *buf, size_t cap);

/* "YYYY-MM-DDTHH:MM:SSZ" of t into buf[21]. */
const char *sim_iso_utc(time_t t, char buf[21]);

/* Entry points of the two modes (server.c, plan.c). */
int sim_serve(const struct sim_options *opt);
int sim_plan(const char *carrier, unsigned count, uint64_t seed);

#endif
