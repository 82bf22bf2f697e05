/*
 * carrier.h - the carrier driver family.
 *
 * A driver turns tracking numbers into an HTTP request and an HTTP response
 * into normalized events. Drivers do no network I/O: the poller (worker/poller.c)
 * owns libcurl, tokens, rate limits, retries and circuit breakers, so a driver
 * can be tested on canned bodies alone (tests/fixtures/<carrier>/).
 *
 * Each driver file exports exactly one `const struct carrier_def`; everything
 * else in it is static. carriers/registry.c lists them all in carrier_defs[].
 *
 * Ownership: a carrier_request and a track_result are caller-owned; drivers
 * fill them through the helpers below, which enforce the caps. Release with
 * carrier_request_reset() / track_result_reset().
 */
#ifndef ST_CARRIER_H
#define ST_CARRIER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"
#include "status.h"

/* Caps for everything a carrier can send us. Longer text is cut on a UTF-8
 * boundary; more events than CARRIER_MAX_EVENTS fail the parse (ST_PERMANENT). */
#define CARRIER_MAX_EVENTS       500
#define CARRIER_MAX_BATCH        64
#define CARRIER_MAX_HEADERS      8
#define CARRIER_URL_MAX          2048
#define CARRIER_HEADER_MAX       512
#define EV_CODE_MAX              64
#define EV_DESC_MAX              512
#define EV_CITY_MAX              96
#define EV_POSTAL_MAX            24
#define EV_LOCAL_MAX             20   /* "YYYY-MM-DDTHH:MM:SS" */
#define EV_INSTR_MAX             256  /* customs instructions the carrier gives */

enum carrier_auth {
    CARRIER_AUTH_API_KEY,   /* a static key in a header */
    CARRIER_AUTH_OAUTH2     /* client credentials; token cached by the poller */
};

/* How we know the UTC offset of an event's timestamp. */
enum offset_kind {
    OFFSET_CARRIER = 0, /* the carrier gave it */
    OFFSET_DERIVED,     /* derived from the event's location (country/state) */
    OFFSET_UNKNOWN      /* no offset: occurred_at holds the local wall time read as UTC */
};

const char *offset_kind_name(enum offset_kind k);

/* One normalized tracking event. Strings are NUL-terminated, capped, UTF-8. */
struct track_event {
    time_t occurred_at;               /* UTC instant (see offset_kind) */
    char occurred_local[EV_LOCAL_MAX]; /* wall time at the event's location */
    enum offset_kind offset_kind;
    int utc_offset_min;               /* minutes east of UTC; 0 when unknown */
    enum st_status status;            /* status this event implies */
    enum st_substatus substatus;
    bool affects_status;              /* false for unmapped codes */
    bool customs;                     /* the event is about customs */
    char code[EV_CODE_MAX];           /* carrier's raw code */
    char description[EV_DESC_MAX];    /* carrier's raw words */
    char city[EV_CITY_MAX];
    char postal_code[EV_POSTAL_MAX];
    char country[3];                  /* ISO 3166-1 alpha-2 or "" */
    bool customs_broker;              /* a customs broker handles it (e.g. FedEx CUSTOMS_BROKER) */
    char instructions[EV_INSTR_MAX];  /* what the recipient is told to do (DHL remark), or "" */
};

/* What one tracking number's part of a response turned into. */
enum track_outcome {
    TRACK_FOUND = 0,    /* events[] holds what the carrier knows */
    TRACK_NOT_FOUND,    /* carrier does not know the number (yet) */
    TRACK_ERROR,        /* see err / errmsg */
    TRACK_NEEDS_REGISTER /* aggregator (17TRACK): register the number, then poll again */
};

/* "found", "not_found", "error", "needs_register". */
const char *track_outcome_name(enum track_outcome o);

struct track_result {
    enum track_outcome outcome;
    enum st_err err;                  /* for TRACK_ERROR */
    char errmsg[256];
    struct track_event *events;       /* heap, n_events used, cap allocated */
    size_t n_events, cap_events;
    char estimated_delivery[11];      /* "YYYY-MM-DD" or "" */
};

struct carrier_request {
    enum { CARRIER_GET, CARRIER_POST } method;
    char url[CARRIER_URL_MAX];
    char headers[CARRIER_MAX_HEADERS][CARRIER_HEADER_MAX]; /* "Name: value" */
    size_t n_headers;
    char *body;                       /* heap or NULL */
    size_t body_len;
};

/* What a driver may read while building or parsing; set up by the caller. */
struct carrier_ctx {
    const char *base_url;             /* e.g. https://api-eu.dhl.com (no trailing /) */
    const char *api_key;              /* API-key carriers */
    const char *client_id;            /* OAuth2 client credentials */
    const char *client_secret;
    const char *access_token;         /* OAuth2 carriers, when the poller has one */
    const char *language;             /* preferred description language, e.g. "en" */
};

/* An OAuth2 access token as a token endpoint returned it. */
#define CARRIER_TOKEN_MAX 4096
struct carrier_token {
    char access_token[CARRIER_TOKEN_MAX];
    long expires_in_s;                /* lifetime the carrier announced; 0 if none */
};

struct carrier_ops {
    /* Build the request for numbers[0..n) (n <= def->batch_max).
     * Returns ST_OK or ST_CONFIG (e.g. no API key) with err filled in. */
    enum st_err (*build_request)(const struct carrier_ctx *ctx, const char *const *numbers,
                                 size_t n, struct carrier_request *req, char *err, size_t errlen);
    /* Parse a response: fill results[i] for numbers[i], i < n. Returns ST_OK
     * when per-number results were produced (each may itself be NOT_FOUND or
     * ERROR), ST_RETRY for 429/5xx, ST_PERMANENT for a malformed body or an
     * unexpected status, ST_CONFIG for rejected credentials. */
    enum st_err (*parse_response)(const struct carrier_ctx *ctx, long http_status,
                                  const char *body, size_t len, const char *const *numbers,
                                  size_t n, struct track_result *results, char *err,
                                  size_t errlen);

    /* OAuth2 carriers only (NULL otherwise): the client-credentials token
     * request from ctx->client_id/client_secret, and its answer. parse returns
     * ST_CONFIG when the credentials are rejected (400/401/403), ST_RETRY for
     * 429/5xx, ST_PERMANENT for a malformed body. */
    enum st_err (*build_token_request)(const struct carrier_ctx *ctx, struct carrier_request *req,
                                       char *err, size_t errlen);
    enum st_err (*parse_token_response)(long http_status, const char *body, size_t len,
                                        struct carrier_token *tok, char *err, size_t errlen);

    /* Carriers that must be told about a number before they track it (17TRACK;
     * NULL otherwise). parse_response reports TRACK_NEEDS_REGISTER for such
     * numbers; the poller then sends this request for them (up to batch_max)
     * and polls them again later. registered[i] is set for numbers[i] the
     * carrier accepted (or already had). */
    enum st_err (*build_register_request)(const struct carrier_ctx *ctx,
                                          const char *const *numbers, size_t n,
                                          struct carrier_request *req, char *err, size_t errlen);
    enum st_err (*parse_register_response)(const struct carrier_ctx *ctx, long http_status,
                                           const char *body, size_t len,
                                           const char *const *numbers, size_t n,
                                           bool *registered, char *err, size_t errlen);
};

struct carrier_def {
    const char *name;                 /* stable id: "dhl", "ups", ... */
    const char *display_name;         /* "DHL (Unified)" */
    const struct carrier_ops *ops;
    unsigned batch_max;               /* numbers per request */
    double rate_per_sec;              /* default request rate limit */
    unsigned rate_per_day;            /* default daily quota (0 = none) */
    enum carrier_auth auth;
    const char *default_base_url;
};

/* The registry (carriers/registry.c). */
extern const struct carrier_def *const carrier_defs[];
extern const size_t carrier_defs_count;
const struct carrier_def *carrier_find(const char *name);

/* --- helpers for drivers (carriers/carrier.c) --- */

/* Set req's body to a heap copy of body[0..len) (caller's bytes untouched).
 * ST_RETRY when memory runs out. */
enum st_err carrier_request_body(struct carrier_request *req, const char *body, size_t len,
                                 char *err, size_t errlen);

/* Append a header "name: value"; fails (ST_PERMANENT) when the value holds CR/LF
 * or the header does not fit. */
enum st_err carrier_request_header(struct carrier_request *req, const char *name,
                                   const char *value, char *err, size_t errlen);
void carrier_request_reset(struct carrier_request *req);

/* Append a zeroed event to res (status ST_STATUS_PENDING, affects_status true);
 * NULL when CARRIER_MAX_EVENTS is reached or memory runs out. */
struct track_event *track_result_add(struct track_result *res);
void track_result_reset(struct track_result *res);
/* Mark res as an error of the given kind with a formatted message. */
void track_result_fail(struct track_result *res, enum st_err kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset every results[0..n) and mark it failed with kind and msg. */
void carrier_fail_all(struct track_result *results, size_t n, enum st_err kind, const char *msg);

/* Copy s into q[cap] for quoting in a message (capped, control-free); returns q. */
const char *carrier_quote(char *q, size_t cap, const char *s);

/* Append s percent-encoded (RFC 3986 unreserved kept) to out[cap] at *o,
 * keeping out NUL-terminated. Returns false when it does not fit. */
bool carrier_url_encode(char *out, size_t cap, size_t *o, const char *s);
/* Append literal s to out[cap] at *o; false when it does not fit. */
bool carrier_url_append(char *out, size_t cap, size_t *o, const char *s);

/* Accept "YYYY-MM-DD" optionally followed by 'T' or ' ' and more, with
 * year >= min_year, month 1-12 and day 1-31; copy the date part into out[11].
 * Drivers differ on the oldest year they take: see CARRIER_DATE_*. */
#define CARRIER_DATE_EPOCH 1970 /* nothing before the Unix epoch */
#define CARRIER_DATE_ANY   1000 /* any four-digit year not starting with 0 */
bool carrier_date_part(const char *s, int min_year, char out[11]);

/* Copy src into dst[cap], cutting on a UTF-8 boundary, dropping control chars
 * (CR, LF and TAB become spaces). NULL src gives "". */
void carrier_copy_text(char *dst, size_t cap, const char *src);

/* Parse an ISO 8601 timestamp "YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM|+HHMM]".
 * On success fills ev->occurred_local, and, when an offset is present,
 * ev->occurred_at/utc_offset_min with offset_kind OFFSET_CARRIER. Without an
 * offset, the zone is derived from `country` (and `region`, a state/province
 * code, where a country has several zones) via geo.h: OFFSET_DERIVED; if that
 * is impossible, OFFSET_UNKNOWN with occurred_at = local time read as UTC.
 * Returns false for a malformed timestamp. */
bool carrier_parse_time(const char *s, const char *country, const char *region,
                        struct track_event *ev);

/* Finish a result: events whose offset is still unknown but whose postal
 * code pins a zone (US ZIP, CA, AU, BR) get it, marked derived; then sort
 * oldest first (stable on equal times) and drop exact duplicates (same time,
 * code, description, location). Every driver calls this last. */
void track_result_sort_dedupe(struct track_result *res);

#endif
