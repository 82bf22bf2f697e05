/*
 * api.c - the api role: server, routing, auth and the JSON handlers (api.h).
 *
 * A request's life: MHD calls on_request once with the headers (a struct req
 * is attached), then once per chunk of body (appended up to the cap, the
 * rest is drained and answered 413), then once more to answer. Handlers
 * borrow a database connection from the pool for the answer only.
 *
 * Wording: "rights" are the role bits a request proved (RIGHT_*); a route
 * names the right it needs. No token is 401, a token without the right 403.
 */
#include "api.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_pages.h"
#include "carrier.h"
#include "db.h"
#include "html.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "register.h"
#include "status.h"
#include "timeline.h"
#include "unsubscribe.h"

#define API_TOKENS_MAX 32
#define API_TOKEN_MIN 16
#define API_TOKEN_MAX 256
#define API_POOL_MAX 64
#define API_PAGE_MAX (4u << 20)   /* largest page or JSON answer built */
#define API_STATEMENT_TIMEOUT "15s"
#define COOKIE_NAME "st_token"

enum { RIGHT_AGENT = 1u, RIGHT_OPS = 2u, RIGHT_ADMIN = 4u };

/* A configured token: its digest and what it may do. */
struct token {
    unsigned char digest[32];
    unsigned rights;
};

struct api {
    const struct st_config *cfg;
    struct MHD_Daemon *daemon;
    rd_kafka_t *rk;                 /* consumer in the notifier's group, for lag and readiness */
    struct token tokens[API_TOKENS_MAX];
    size_t n_tokens;
    unsigned port;
    /* database connections: idle ones, and how many exist */
    pthread_mutex_t lock;
    pthread_cond_t freed;
    PGconn *idle[API_POOL_MAX];
    size_t n_idle, n_open, pool_max;
};

/* One request in progress. */
struct req {
    struct hbuf body;               /* request body, capped */
    bool too_big;
};

/* ---- tokens ---- */

static bool digest(const char *s, size_t n, unsigned char out[32])
{
    unsigned int len = 0;

    return EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32;
}

/* Parse SHIPTRACK_API_TOKENS: "role:token,role:token". */
static enum st_err parse_tokens(struct api *a, const char *spec, char *err, size_t errlen)
{
    const char *p = spec;
    int item = 0;

    if (spec == NULL || *spec == '\0')
        return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_TOKENS is not set: the api role "
                       "needs at least one role:token pair (roles agent, ops, admin)");
    while (*p != '\0') {
        size_t len = strcspn(p, ","), colon = strcspn(p, ":");
        struct token *t;

        item++;
        if (colon >= len)
            return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_TOKENS: entry %d is not "
                           "role:token", item);
        if (a->n_tokens == API_TOKENS_MAX)
            return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_TOKENS: more than %d tokens",
                           API_TOKENS_MAX);
        t = &a->tokens[a->n_tokens];
        if (colon == 5 && strncmp(p, "agent", 5) == 0)
            t->rights = RIGHT_AGENT;
        else if (colon == 3 && strncmp(p, "ops", 3) == 0)
            t->rights = RIGHT_OPS;
        else if (colon == 5 && strncmp(p, "admin", 5) == 0)
            t->rights = RIGHT_AGENT | RIGHT_OPS | RIGHT_ADMIN;
        else
            return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_TOKENS: entry %d: role "
                           "\"%.*s\" is not agent, ops or admin", item,
                           (int)(colon > 16 ? 16 : colon), p);
        if (len - colon - 1 < API_TOKEN_MIN || len - colon - 1 > API_TOKEN_MAX)
            return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_TOKENS: entry %d: a token "
                           "must have %d to %d characters", item, API_TOKEN_MIN, API_TOKEN_MAX);
        for (size_t i = colon + 1; i < len; i++)
            if (!isgraph((unsigned char)p[i]) || p[i] == ';')
                return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_TOKENS: entry %d: a "
                               "token is printable ASCII without spaces or ';'", item);
        if (!digest(p + colon + 1, len - colon - 1, t->digest))
            return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_TOKENS: cannot hash tokens");
        a->n_tokens++;
        p += len;
        if (*p == ',')
            p++;
    }
    return ST_OK;
}

/* Rights of a presented token: every configured token is compared, in
 * constant time, whatever matched before. */
static unsigned token_rights(const struct api *a, const char *tok)
{
    unsigned char d[32];
    unsigned rights = 0;
    size_t n;

    if (tok == NULL || (n = strlen(tok)) < API_TOKEN_MIN || n > API_TOKEN_MAX || !digest(tok, n, d))
        return 0;
    for (size_t i = 0; i < a->n_tokens; i++)
        rights |= CRYPTO_memcmp(d, a->tokens[i].digest, sizeof(d)) == 0 ? a->tokens[i].rights : 0;
    return rights;
}

/* Rights of the request: Authorization: Bearer, else (pages) the cookie.
 * *presented tells whether any credential came at all. */
static unsigned request_rights(const struct api *a, struct MHD_Connection *c, bool cookie,
                               bool *presented)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

    *presented = false;
    if (h != NULL) {
        *presented = true;
        if (strncasecmp(h, "Bearer ", 7) != 0)
            return 0;
        return token_rights(a, h + 7);
    }
    if (cookie && (h = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE_NAME)) != NULL) {
        *presented = true;
        return token_rights(a, h);
    }
    return 0;
}

/* ---- database pool ---- */

/* Borrow a connection (waits while all are busy). NULL with err when the
 * database cannot be reached. */
static PGconn *pool_get(struct api *a, char *err, size_t errlen)
{
    PGconn *conn = NULL;
    PGresult *res;

    pthread_mutex_lock(&a->lock);
    while (a->n_idle == 0 && a->n_open >= a->pool_max)
        pthread_cond_wait(&a->freed, &a->lock);
    if (a->n_idle > 0)
        conn = a->idle[--a->n_idle];
    else
        a->n_open++;
    pthread_mutex_unlock(&a->lock);
    if (conn != NULL && db_ensure(conn))
        return conn;
    if (conn != NULL)
        PQfinish(conn);
    conn = db_connect(a->cfg->database_url, err, errlen);
    if (conn != NULL) {
        res = PQexec(conn, "SET statement_timeout = '" API_STATEMENT_TIMEOUT "'");
        PQclear(res);
        return conn;
    }
    pthread_mutex_lock(&a->lock);
    a->n_open--;
    pthread_cond_signal(&a->freed);
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* Return a borrowed connection; a broken one is closed. */
static void pool_put(struct api *a, PGconn *conn)
{
    bool keep = conn != NULL && PQstatus(conn) == CONNECTION_OK &&
                PQtransactionStatus(conn) == PQTRANS_IDLE;

    if (conn != NULL && !keep)
        PQfinish(conn);
    pthread_mutex_lock(&a->lock);
    if (keep)
        a->idle[a->n_idle++] = conn;
    else
        a->n_open--;
    pthread_cond_signal(&a->freed);
    pthread_mutex_unlock(&a->lock);
}

/* ---- answers ---- */

/* Queue body (heap, taken) with status and content type; pages get the
 * security headers. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             char *body, size_t len, bool page)
{
    struct MHD_Response *r;
    enum MHD_Result rc;

    if (body == NULL) /* out of memory building it */
        return MHD_NO;
    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (page) {
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                                "base-uri 'none'");
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"shiptrack\"");
    rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* Answer a JSON value (reference taken). */
static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *v)
{
    char *s = v != NULL ? json_dumps(v, JSON_COMPACT) : NULL;

    json_decref(v);
    if (s == NULL)
        return MHD_NO;
    return reply(c, status, "application/json", s, strlen(s), false);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *code,
                                   const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return reply_json(c, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
                                           msg));
}

/* Answer a built page (the buffer is emptied). */
static enum MHD_Result reply_page(struct MHD_Connection *c, unsigned status, struct hbuf *b)
{
    size_t len;
    char *s;

    if (b->failed) {
        hbuf_free(b);
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal",
                           "page too large or out of memory");
    }
    s = hbuf_take(b, &len);
    return s != NULL ? reply(c, status, "text/html; charset=utf-8", s, len, true) : MHD_NO;
}

/* A short page with a title and one sentence. */
static enum MHD_Result reply_message(struct MHD_Connection *c, unsigned status, const char *title,
                                     const char *text)
{
    struct hbuf b;

    hbuf_init(&b, API_PAGE_MAX);
    page_message(&b, title, text);
    return reply_page(c, status, &b);
}

/* 503 for a database that cannot be reached (details only in the log). */
static enum MHD_Result reply_db_down(struct MHD_Connection *c, const char *err)
{
    log_warn("api.db", 0, NULL, "%s", err);
    return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                       "the database cannot be reached; try again later");
}

/* ---- parameters ---- */

static const char *arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* A positive decimal id of at most 18 digits (no sign, no spaces). */
static bool parse_id(const char *s, size_t n, long long *id)
{
    long long v = 0;

    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *id = v;
    return v > 0;
}

/* True when s is 1..max bytes without control characters. */
static bool plain_text(const char *s, size_t max)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Value of key in an application/x-www-form-urlencoded body, decoded into
 * out[cap]; false when absent or too long. */
static bool form_value(const char *body, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);

    for (const char *p = body; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, "&");

        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            if (len - kl - 1 >= cap)
                return false;
            memcpy(out, p + kl + 1, len - kl - 1);
            out[len - kl - 1] = '\0';
            for (char *q = out; *q != '\0'; q++)
                if (*q == '+')
                    *q = ' ';
            MHD_http_unescape(out);
            return true;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return false;
}

/* ---- JSON handlers ---- */

/* Column i of row r as a JSON string, or null. */
static json_t *col(const PGresult *res, int r, int i)
{
    return PQgetisnull(res, r, i) ? json_null() : json_string(PQgetvalue(res, r, i));
}

#define UTC(expr) "to_char((" expr ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Shipments whose tracking number or order reference is `value` (at most
 * 50), as [{id, carrier, tracking_number, status, ...}]. */
static enum st_err find_shipments(PGconn *conn, bool by_order, const char *value, json_t **out,
                                  char *err, size_t errlen)
{
    const char *p[2] = { value, by_order ? "o" : "t" };
    enum st_err kind = ST_OK;
    PGresult *res;
    json_t *list;

    res = db_exec(conn, "find shipments",
                  "SELECT id, carrier, tracking_number, order_ref, status, substatus,"
                  " destination_country, " UTC("last_event_at")
                  " FROM shipments WHERE CASE WHEN $2 = 'o' THEN order_ref = $1"
                  " ELSE tracking_number = upper(replace(replace($1, ' ', ''), '-', '')) END"
                  " ORDER BY id DESC LIMIT 50",
                  2, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        return kind;
    list = json_array();
    for (int r = 0; list != NULL && r < PQntuples(res); r++)
        json_array_append_new(list, json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                                              (json_int_t)atoll(PQgetvalue(res, r, 0)), "carrier",
                                              col(res, r, 1), "tracking_number", col(res, r, 2),
                                              "order_ref", col(res, r, 3), "status",
                                              col(res, r, 4), "substatus", col(res, r, 5),
                                              "destination_country", col(res, r, 6),
                                              "last_event_at", col(res, r, 7)));
    PQclear(res);
    if (list == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory");
    *out = list;
    return ST_OK;
}

/* Rows of a query with one parameter id (NULL: none) as an array of
 * objects whose members names[0..n) are the columns as strings (or null). */
static json_t *rows(PGconn *conn, const char *what, const char *sql, const char *id,
                    const char *const *names, int n, enum st_err *kind, char *err, size_t errlen)
{
    const char *p[1] = { id };
    PGresult *res = db_exec(conn, what, sql, id != NULL ? 1 : 0, id != NULL ? p : NULL,
                            PGRES_TUPLES_OK, kind, err, errlen);
    json_t *list;

    if (res == NULL)
        return NULL;
    list = json_array();
    for (int r = 0; list != NULL && r < PQntuples(res); r++) {
        json_t *o = json_object();

        for (int i = 0; o != NULL && i < n; i++)
            json_object_set_new(o, names[i], col(res, r, i));
        json_array_append_new(list, o);
    }
    PQclear(res);
    if (list == NULL)
        *kind = st_fail(err, errlen, ST_RETRY, "out of memory");
    return list;
}

/* Replace the decimal string member key of o by the number. */
static void to_integer(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    if (s != NULL)
        json_object_set_new(o, key, json_integer(atoll(s)));
}

/* Everything about shipment id for agents: its timeline (timeline_load),
 * customs holds with their transitions, the estimate's history,
 * notifications, open alerts, and the recipient's addresses and consent.
 * ST_PERMANENT when there is no such shipment. */
static enum st_err shipment_detail(PGconn *conn, long long id, json_t **out, char *err,
                                   size_t errlen)
{
    static const char *const tr_names[] = { "hold_id", "from_state", "to_state", "reason",
                                            "actor", "at", "evidence_code", "evidence" };
    static const char *const edd_names[] = { "edd", "previous", "source", "reason",
                                             "recorded_at" };
    static const char *const n_names[] = { "id", "milestone", "channel", "status", "reason",
                                           "episode", "attempts", "locale", "created_at",
                                           "updated_at", "sent_at", "deferred_until" };
    static const char *const a_names[] = { "id", "kind", "status", "since", "threshold_s",
                                           "opened_at" };
    static const char *const r_names[] = { "email", "phone", "locale", "time_zone",
                                           "email_consent", "email_opted_out_at", "sms_consent",
                                           "sms_opted_out_at" };
    char ids[24], carrier[40], number[48];
    const char *p[1] = { ids };
    enum st_err kind = ST_OK;
    json_t *tl = NULL, *tr, *holds, *v;
    PGresult *res;
    size_t i;

    *out = NULL;
    snprintf(ids, sizeof(ids), "%lld", id);
    res = db_exec(conn, "find shipment", "SELECT carrier, tracking_number FROM shipments"
                  " WHERE id = $1::bigint", 1, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        return kind;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return st_fail(err, errlen, ST_PERMANENT, "no shipment %lld", id);
    }
    snprintf(carrier, sizeof(carrier), "%s", PQgetvalue(res, 0, 0));
    snprintf(number, sizeof(number), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    if ((kind = timeline_load(conn, carrier, number, &tl, err, errlen)) != ST_OK)
        return kind;

    tr = rows(conn, "customs transitions",
              "SELECT hold_id::text, from_state, to_state, reason, actor, " UTC("at") ","
              " evidence_code, evidence FROM customs_transitions WHERE shipment_id = $1::bigint"
              " ORDER BY id", ids, tr_names, 8, &kind, err, errlen);
    if (tr == NULL)
        goto fail;
    holds = json_object_get(tl, "customs_holds");
    json_array_foreach(holds, i, v) {
        json_t *list = json_array();
        json_int_t hid = json_integer_value(json_object_get(v, "id"));
        size_t j;
        json_t *t;

        json_array_foreach(tr, j, t)
            if (atoll(json_string_value(json_object_get(t, "hold_id"))) == hid)
                json_array_append(list, t);
        json_object_set_new(v, "transitions", list);
    }
    json_decref(tr);
#define ADD(key, expr)                                                                            \
    do {                                                                                          \
        json_t *x_ = (expr);                                                                      \
        if (x_ == NULL)                                                                           \
            goto fail;                                                                            \
        json_object_set_new(tl, key, x_);                                                         \
    } while (0)
    ADD("edd_history",
        rows(conn, "edd history",
             "SELECT edd::text, previous::text, source, reason, " UTC("recorded_at")
             " FROM edd_history WHERE shipment_id = $1::bigint ORDER BY id",
             ids, edd_names, 5, &kind, err, errlen));
    ADD("notifications",
        rows(conn, "notifications",
             "SELECT id::text, milestone, channel, status, reason, episode, attempts::text,"
             " locale, " UTC("created_at") ", " UTC("updated_at") ", " UTC("sent_at") ", "
             UTC("deferred_until") " FROM notifications WHERE shipment_id = $1::bigint"
             " ORDER BY created_at, id",
             ids, n_names, 12, &kind, err, errlen));
    ADD("alerts",
        rows(conn, "alerts",
             "SELECT id::text, kind, status, " UTC("since") ", threshold_s::text, "
             UTC("opened_at") " FROM alerts WHERE shipment_id = $1::bigint"
             " AND cleared_at IS NULL ORDER BY id",
             ids, a_names, 6, &kind, err, errlen));
    {
        json_t *r = rows(conn, "recipient",
                         "SELECT r.email, r.phone, r.locale, r.time_zone,"
                         " COALESCE(pe.consent, true)::text, " UTC("pe.opted_out_at") ","
                         " COALESCE(ps.consent, true)::text, " UTC("ps.opted_out_at")
                         " FROM shipments s JOIN recipients r ON r.id = s.recipient_id"
                         " LEFT JOIN preferences pe ON pe.recipient_id = r.id"
                         "   AND pe.channel = 'email'"
                         " LEFT JOIN preferences ps ON ps.recipient_id = r.id"
                         "   AND ps.channel = 'sms'"
                         " WHERE s.id = $1::bigint AND r.erased_at IS NULL",
                         ids, r_names, 8, &kind, err, errlen);

        if (r == NULL)
            goto fail;
        json_object_set(tl, "recipient", json_array_size(r) ? json_array_get(r, 0) : json_null());
        json_decref(r);
    }
#undef ADD
    /* numbers as numbers where clients compute with them */
    json_array_foreach(json_object_get(tl, "notifications"), i, v) {
        to_integer(v, "id");
        to_integer(v, "attempts");
    }
    json_array_foreach(json_object_get(tl, "alerts"), i, v) {
        to_integer(v, "id");
        to_integer(v, "threshold_s");
    }
    *out = tl;
    return ST_OK;
fail:
    json_decref(tl);
    return kind != ST_OK ? kind : st_fail(err, errlen, ST_RETRY, "out of memory");
}

/* Filters of the stuck list, validated. */
struct stuck_filter {
    const char *carrier, *destination, *status, *kind;
    char min_age_s[24], limit[24];
    bool has_min_age;
};

/* Validate the stuck-list filters from the query string; false with err. */
static bool stuck_filter_parse(struct MHD_Connection *c, struct stuck_filter *f, char *err,
                               size_t errlen)
{
    static const char *const kinds[] = { "stuck", "customs_hold_long", "not_picked_up",
                                         "tracking_failing" };
    const char *v;
    enum st_status st;
    long long ms;
    bool ok = false;

    memset(f, 0, sizeof(*f));
    snprintf(f->limit, sizeof(f->limit), "100");
    f->carrier = arg(c, "carrier");
    f->destination = arg(c, "destination");
    f->status = arg(c, "status");
    f->kind = arg(c, "kind");
    if (f->carrier != NULL && (strlen(f->carrier) < 2 || strlen(f->carrier) > 32 ||
                               strspn(f->carrier, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
                                   strlen(f->carrier))) {
        snprintf(err, errlen, "carrier: expected a carrier name such as dhl");
        return false;
    }
    if (f->destination != NULL && (strlen(f->destination) != 2 ||
                                   !isupper((unsigned char)f->destination[0]) ||
                                   !isupper((unsigned char)f->destination[1]))) {
        snprintf(err, errlen, "destination: expected an ISO 3166 country code such as FR");
        return false;
    }
    if (f->status != NULL && !st_status_parse(f->status, &st)) {
        snprintf(err, errlen, "status: not a normalized status (in_transit, held, ...)");
        return false;
    }
    if (f->kind != NULL) {
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
            ok |= strcmp(f->kind, kinds[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "kind: expected stuck, customs_hold_long, not_picked_up or "
                     "tracking_failing");
            return false;
        }
    }
    if ((v = arg(c, "min_age")) != NULL) {
        if (!config_parse_duration(v, &ms) || ms > 3650LL * 86400000) {
            snprintf(err, errlen, "min_age: expected a duration such as 36h or 2d");
            return false;
        }
        snprintf(f->min_age_s, sizeof(f->min_age_s), "%lld", ms / 1000);
        f->has_min_age = true;
    }
    if ((v = arg(c, "limit")) != NULL) {
        long long n;

        if (!parse_id(v, strlen(v), &n) || n > 500) {
            snprintf(err, errlen, "limit: expected 1 to 500");
            return false;
        }
        snprintf(f->limit, sizeof(f->limit), "%lld", n);
    }
    return true;
}

/* Open alerts matching f, oldest first, without personal data. */
static enum st_err stuck_list(PGconn *conn, const struct stuck_filter *f, json_t **out, char *err,
                              size_t errlen)
{
    const char *p[6] = { f->carrier, f->destination, f->status, f->kind,
                         f->has_min_age ? f->min_age_s : NULL, f->limit };
    enum st_err kind = ST_OK;
    PGresult *res;
    json_t *list;

    res = db_exec(conn, "stuck parcels",
                  "SELECT a.id, a.shipment_id, s.carrier, s.tracking_number,"
                  " COALESCE(s.origin_country, ''), COALESCE(s.destination_country, ''), a.kind,"
                  " s.status, " UTC("a.since") ", extract(epoch FROM now() - a.since)::bigint,"
                  " a.threshold_s, a.threshold_src, a.detail::text, " UTC("a.opened_at")
                  " FROM alerts a JOIN shipments s ON s.id = a.shipment_id"
                  " WHERE a.cleared_at IS NULL AND ($1::text IS NULL OR s.carrier = $1)"
                  "   AND ($2::text IS NULL OR s.destination_country = $2)"
                  "   AND ($3::text IS NULL OR s.status = $3)"
                  "   AND ($4::text IS NULL OR a.kind = $4)"
                  "   AND ($5::bigint IS NULL"
                  "        OR a.since <= now() - make_interval(secs => $5::bigint))"
                  " ORDER BY a.since, a.id LIMIT $6::int",
                  6, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        return kind;
    list = json_array();
    for (int r = 0; list != NULL && r < PQntuples(res); r++)
        json_array_append_new(
            list, json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:o, s:o,"
                            " s:o}",
                            "alert_id", (json_int_t)atoll(PQgetvalue(res, r, 0)), "shipment_id",
                            (json_int_t)atoll(PQgetvalue(res, r, 1)), "carrier", col(res, r, 2),
                            "tracking_number", col(res, r, 3), "origin_country", col(res, r, 4),
                            "destination_country", col(res, r, 5), "kind", col(res, r, 6),
                            "status", col(res, r, 7), "since", col(res, r, 8), "age_s",
                            (json_int_t)atoll(PQgetvalue(res, r, 9)), "threshold_s",
                            (json_int_t)atoll(PQgetvalue(res, r, 10)), "threshold_source",
                            col(res, r, 11), "detail",
                            json_loads(PQgetvalue(res, r, 12), 0, NULL), "opened_at",
                            col(res, r, 13)));
    PQclear(res);
    if (list == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory");
    *out = list;
    return ST_OK;
}

/* Long customs holds and carrier health, for the ops board. */
static enum st_err ops_board(struct api *a, PGconn *conn, json_t **out, char *err, size_t errlen)
{
    static const char *const h_names[] = { "shipment_id", "carrier", "tracking_number",
                                           "destination_country", "state", "reason", "actor",
                                           "opened_at", "age_s" };
    static const char *const c_names[] = { "carrier", "requests", "errors", "throttled",
                                           "breaker", "failing_shipments", "quota_used_today" };
    struct stuck_filter f;
    enum st_err kind = ST_OK;
    json_t *stuck = NULL, *holds, *carriers;

    memset(&f, 0, sizeof(f));
    snprintf(f.limit, sizeof(f.limit), "500");
    if ((kind = stuck_list(conn, &f, &stuck, err, errlen)) != ST_OK)
        return kind;
    holds = rows(conn, "long customs holds",
                 "SELECT h.shipment_id::text, s.carrier, s.tracking_number,"
                 " COALESCE(s.destination_country, ''), h.state, h.reason, h.actor, "
                 UTC("h.opened_at") ", extract(epoch FROM now() - h.opened_at)::bigint::text"
                 " FROM customs_holds h JOIN shipments s ON s.id = h.shipment_id"
                 " WHERE h.closed_at IS NULL"
                 "   AND h.opened_at < now() - make_interval(hours => $1::int)"
                 " ORDER BY h.opened_at LIMIT 200",
                 "24", h_names, 9, &kind, err, errlen);
    carriers = rows(conn, "carrier health",
                    "WITH c AS (SELECT carrier FROM poller_stats"
                    "   UNION SELECT carrier FROM shipments WHERE next_poll_at IS NOT NULL)"
                    " SELECT c.carrier,"
                    " (SELECT COALESCE(sum(polls_ok + polls_error + polls_throttled"
                    "   + polls_unauthorized), 0) FROM poller_stats p"
                    "   WHERE p.carrier = c.carrier)::text,"
                    " (SELECT COALESCE(sum(polls_error + polls_unauthorized), 0)"
                    "   FROM poller_stats p WHERE p.carrier = c.carrier)::text,"
                    " (SELECT COALESCE(sum(polls_throttled), 0) FROM poller_stats p"
                    "   WHERE p.carrier = c.carrier)::text,"
                    " COALESCE((SELECT CASE max(CASE breaker WHEN 'open' THEN 2 WHEN 'half-open'"
                    "   THEN 1 ELSE 0 END) WHEN 2 THEN 'open' WHEN 1 THEN 'half-open'"
                    "   WHEN 0 THEN 'closed' END FROM poller_stats p WHERE p.carrier = c.carrier"
                    "   AND p.updated_at > now() - interval '1 minute'), 'unknown'),"
                    " (SELECT count(*) FROM shipments s WHERE s.carrier = c.carrier"
                    "   AND s.next_poll_at IS NOT NULL AND s.poll_error_streak > 0)::text,"
                    " COALESCE((SELECT used FROM carrier_quota q WHERE q.carrier = c.carrier"
                    "   AND q.day = (now() AT TIME ZONE 'UTC')::date), 0)::text"
                    " FROM c ORDER BY 1",
                    NULL, c_names, 7, &kind, err, errlen);
    if (holds == NULL || carriers == NULL) {
        json_decref(stuck);
        json_decref(holds);
        json_decref(carriers);
        return kind;
    }
    {
        size_t i;
        json_t *v;

        json_array_foreach(carriers, i, v) { /* quota from configuration, as /metrics does */
            const char *name = json_string_value(json_object_get(v, "carrier"));
            const struct carrier_conf *cc = config_carrier(a->cfg, name);
            const struct carrier_def *d = carrier_find(name);
            long long quota = cc != NULL && cc->daily_quota >= 0 ? cc->daily_quota
                              : d != NULL ? (long long)d->rate_per_day : 0;
            long long used = atoll(json_string_value(json_object_get(v, "quota_used_today")));

            json_object_set_new(v, "quota_remaining",
                                quota > 0 ? json_integer(quota > used ? quota - used : 0)
                                          : json_null());
        }
    }
    *out = json_pack("{s:o, s:o, s:o}", "stuck", stuck, "long_customs_holds", holds, "carriers",
                     carriers);
    return *out != NULL ? ST_OK : st_fail(err, errlen, ST_RETRY, "out of memory");
}

/* ---- routes ---- */

/* GET /v1/shipments?tracking_number=|order_ref= */
static enum MHD_Result get_shipments(struct api *a, struct MHD_Connection *c)
{
    const char *tn = arg(c, "tracking_number"), *ref = arg(c, "order_ref");
    char err[512];
    json_t *list = NULL;
    PGconn *conn;
    enum st_err rc;

    if ((tn == NULL) == (ref == NULL))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                           "give exactly one of tracking_number and order_ref");
    if (!plain_text(tn != NULL ? tn : ref, tn != NULL ? 64 : 128))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_request", "%s: 1 to %d characters "
                           "without control characters", tn != NULL ? "tracking_number" :
                           "order_ref", tn != NULL ? 64 : 128);
    if ((conn = pool_get(a, err, sizeof(err))) == NULL)
        return reply_db_down(c, err);
    rc = find_shipments(conn, ref != NULL, tn != NULL ? tn : ref, &list, err, sizeof(err));
    pool_put(a, conn);
    if (rc != ST_OK)
        return reply_db_down(c, err);
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "shipments", list));
}

/* GET /v1/shipments/{id} */
static enum MHD_Result get_shipment(struct api *a, struct MHD_Connection *c, const char *ids)
{
    char err[512];
    json_t *d = NULL;
    long long id;
    PGconn *conn;
    enum st_err rc;

    if (!parse_id(ids, strlen(ids), &id))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                           "shipment id: expected a positive integer");
    if ((conn = pool_get(a, err, sizeof(err))) == NULL)
        return reply_db_down(c, err);
    rc = shipment_detail(conn, id, &d, err, sizeof(err));
    pool_put(a, conn);
    if (rc == ST_PERMANENT)
        return reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no shipment %lld", id);
    if (rc != ST_OK)
        return reply_db_down(c, err);
    return reply_json(c, MHD_HTTP_OK, d);
}

/* GET /v1/stuck */
static enum MHD_Result get_stuck(struct api *a, struct MHD_Connection *c)
{
    struct stuck_filter f;
    char err[512];
    json_t *list = NULL;
    PGconn *conn;
    enum st_err rc;

    if (!stuck_filter_parse(c, &f, err, sizeof(err)))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", err);
    if ((conn = pool_get(a, err, sizeof(err))) == NULL)
        return reply_db_down(c, err);
    rc = stuck_list(conn, &f, &list, err, sizeof(err));
    pool_put(a, conn);
    if (rc != ST_OK)
        return reply_db_down(c, err);
    return reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "stuck", list));
}

/* POST /v1/shipments: register through registration_prepare/store. */
static enum MHD_Result post_shipment(struct api *a, struct MHD_Connection *c, struct req *q)
{
    static const char *const fields[] = { "carrier", "tracking_number", "email", "phone",
                                          "locale", "time_zone", "origin", "destination",
                                          "order_ref" };
    const char *v[9] = { 0 };
    struct registration reg;
    json_error_t je;
    char err[512];
    const char *key;
    json_t *o, *val;
    long long id;
    bool existed;
    PGconn *conn;
    enum st_err rc;

    o = json_loadb(q->body.p != NULL ? q->body.p : "", q->body.len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                           "body: expected a JSON object (%s)", o ? "wrong type" : je.text);
    }
    json_object_foreach(o, key, val) {
        size_t i;

        for (i = 0; i < 9 && strcmp(key, fields[i]) != 0; i++)
            ;
        if (i == 9 || (!json_is_string(val) && !json_is_null(val))) {
            enum MHD_Result r = reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                                            "%.40s: %s", key, i == 9 ? "unknown field"
                                                                     : "expected a string");
            json_decref(o);
            return r;
        }
        v[i] = json_string_value(val);
    }
    rc = registration_prepare(&reg, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], err,
                              sizeof(err));
    json_decref(o);
    if (rc != ST_OK)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "%s", err);
    if ((conn = pool_get(a, err, sizeof(err))) == NULL)
        return reply_db_down(c, err);
    rc = registration_store(conn, &reg, &id, &existed, err, sizeof(err));
    pool_put(a, conn);
    if (rc == ST_PERMANENT)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid", "%s", err);
    if (rc != ST_OK)
        return reply_db_down(c, err);
    log_info("api.register", id, reg.carrier, "shipment %s",
             existed ? "already known" : "registered");
    return reply_json(c, existed ? MHD_HTTP_OK : MHD_HTTP_CREATED,
                      json_pack("{s:I, s:s, s:s, s:b}", "shipment_id", (json_int_t)id, "carrier",
                                reg.carrier, "tracking_number", reg.tracking_number, "existed",
                                existed));
}

/* POST /v1/notifications/{id}/resend: hand the row to the notifier's
 * periodic pass, which sends deferred rows whose time has come (its clock
 * has whole seconds, hence the truncation). The pass decides again as for
 * any deferred row: consent, superseded milestones and the caps apply. */
static enum MHD_Result post_resend(struct api *a, struct MHD_Connection *c, const char *ids,
                                   size_t idlen)
{
    char err[512], idbuf[24];
    const char *p[1] = { idbuf };
    enum st_err kind = ST_OK;
    PGresult *res;
    long long id;
    PGconn *conn;
    enum MHD_Result r;

    if (!parse_id(ids, idlen, &id))
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "bad_request",
                           "notification id: expected a positive integer");
    snprintf(idbuf, sizeof(idbuf), "%lld", id);
    if ((conn = pool_get(a, err, sizeof(err))) == NULL)
        return reply_db_down(c, err);
    /* one statement: the old status is read under the row lock it updates */
    res = db_exec(conn, "resend notification",
                  "WITH old AS (SELECT id, status FROM notifications WHERE id = $1::bigint"
                  "   FOR UPDATE),"
                  " upd AS (UPDATE notifications n SET status = 'deferred',"
                  "   deferred_until = date_trunc('second', now()),"
                  "   reason = 'resend requested (was ' || old.status || ')',"
                  "   updated_at = now() FROM old WHERE n.id = old.id AND old.status <> 'queued'"
                  "   RETURNING n.id)"
                  " SELECT old.status, (SELECT count(*) FROM upd) FROM old",
                  1, p, PGRES_TUPLES_OK, &kind, err, sizeof(err));
    pool_put(a, conn);
    if (res == NULL)
        return reply_db_down(c, err);
    if (PQntuples(res) == 0)
        r = reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no notification %lld", id);
    else if (atoi(PQgetvalue(res, 0, 1)) == 0)
        r = reply_error(c, MHD_HTTP_CONFLICT, "conflict",
                        "notification %lld is being sent right now", id);
    else {
        log_info("api.resend", 0, NULL, "notification=%lld was %s: deferred until now", id,
                 PQgetvalue(res, 0, 0));
        r = reply_json(c, MHD_HTTP_ACCEPTED,
                       json_pack("{s:I, s:s, s:s}", "notification_id", (json_int_t)id,
                                 "previous_status", PQgetvalue(res, 0, 0), "status", "deferred"));
    }
    PQclear(res);
    return r;
}

/* GET /readyz: a database round trip, and Kafka metadata when configured. */
static enum MHD_Result get_readyz(struct api *a, struct MHD_Connection *c)
{
    const struct rd_kafka_metadata *md = NULL;
    const char *db = "ok", *kafka = "not configured";
    char err[512];
    PGconn *conn = pool_get(a, err, sizeof(err));

    if (conn != NULL) {
        PGresult *res = db_exec(conn, "ready", "SELECT 1", 0, NULL, PGRES_TUPLES_OK, NULL, err,
                                sizeof(err));

        if (res == NULL)
            db = "failing";
        PQclear(res);
        pool_put(a, conn);
    } else
        db = "unreachable";
    if (strcmp(db, "ok") != 0)
        log_warn("api.ready", 0, NULL, "database: %s", err);
    if (a->rk != NULL) {
        rd_kafka_resp_err_t e = rd_kafka_metadata(a->rk, 0, NULL, &md, 2000);

        kafka = e == RD_KAFKA_RESP_ERR_NO_ERROR && md->broker_cnt > 0 ? "ok" : "unreachable";
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
    }
    return reply_json(c, strcmp(db, "ok") == 0 && strcmp(kafka, "unreachable") != 0
                             ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                      json_pack("{s:s, s:s}", "database", db, "kafka", kafka));
}

/* GET /metrics */
static enum MHD_Result get_metrics(struct api *a, struct MHD_Connection *c)
{
    struct hbuf b;
    char err[512];
    size_t len;
    char *s;
    PGconn *conn = pool_get(a, err, sizeof(err));

    if (conn == NULL)
        return reply_db_down(c, err);
    hbuf_init(&b, API_PAGE_MAX);
    metrics_render(conn, a->cfg, a->rk, &b);
    pool_put(a, conn);
    if (b.failed) {
        hbuf_free(&b);
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "metrics too large");
    }
    s = hbuf_take(&b, &len);
    return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", s, len, false);
}

/* ---- unsubscribe ---- */

/* The signed parameters of an unsubscribe link, from the query string or
 * the form body. 0 when valid, else the HTTP status to answer. */
static unsigned unsub_params(struct api *a, struct MHD_Connection *c, const char *body,
                             long long *rid, char channel[8], char token[72])
{
    const char *r = arg(c, "r"), *ch = arg(c, "c"), *t = arg(c, "t");
    char rb[24], cb[8], tb[72];

    if (r == NULL && body != NULL && form_value(body, "r", rb, sizeof(rb)))
        r = rb;
    if (ch == NULL && body != NULL && form_value(body, "c", cb, sizeof(cb)))
        ch = cb;
    if (t == NULL && body != NULL && form_value(body, "t", tb, sizeof(tb)))
        t = tb;
    if (r == NULL || ch == NULL || t == NULL || !parse_id(r, strlen(r), rid) ||
        (strcmp(ch, "email") != 0 && strcmp(ch, "sms") != 0) ||
        strlen(t) != UNSUBSCRIBE_TOKEN_LEN ||
        strspn(t, "0123456789abcdef") != UNSUBSCRIBE_TOKEN_LEN)
        return MHD_HTTP_BAD_REQUEST;
    snprintf(channel, 8, "%s", ch);
    snprintf(token, 72, "%s", t);
    return unsubscribe_verify(a->cfg, *rid, channel, token) ? 0 : MHD_HTTP_FORBIDDEN;
}

/* GET /unsubscribe: a confirmation page whose form POSTs (no JS; GET never
 * changes anything, so link scanners cannot unsubscribe anyone). */
static enum MHD_Result get_unsubscribe(struct api *a, struct MHD_Connection *c)
{
    char channel[8], token[72];
    long long rid;
    struct hbuf b;
    unsigned bad = unsub_params(a, c, NULL, &rid, channel, token);

    if (bad)
        return reply_message(c, bad, "Link not valid",
                             "This unsubscribe link is not valid. Please use the link from "
                             "your most recent message.");
    hbuf_init(&b, API_PAGE_MAX);
    page_unsubscribe(&b, rid, channel, token, false);
    return reply_page(c, MHD_HTTP_OK, &b);
}

/* POST /unsubscribe: RFC 8058 one-click (List-Unsubscribe=One-Click) or
 * the confirmation form. Records the opt-out; 200, never a redirect. */
static enum MHD_Result post_unsubscribe(struct api *a, struct MHD_Connection *c, struct req *q)
{
    char channel[8], token[72], oc[32], rids[24], err[512];
    const char *body = q->body.p != NULL ? q->body.p : "";
    const char *p[2] = { rids, channel };
    enum st_err kind = ST_OK;
    PGresult *res;
    PGconn *conn;
    long long rid;
    struct hbuf b;
    unsigned bad = unsub_params(a, c, body, &rid, channel, token);

    if (bad)
        return reply_message(c, bad, "Link not valid", "This unsubscribe link is not valid.");
    if (!form_value(body, "List-Unsubscribe", oc, sizeof(oc)) || strcmp(oc, "One-Click") != 0)
        return reply_message(c, MHD_HTTP_BAD_REQUEST, "Not understood",
                             "Expected List-Unsubscribe=One-Click in the request body.");
    snprintf(rids, sizeof(rids), "%lld", rid);
    if ((conn = pool_get(a, err, sizeof(err))) == NULL)
        return reply_db_down(c, err);
    res = db_exec(conn, "unsubscribe",
                  "INSERT INTO preferences (recipient_id, channel, consent, opted_out_at)"
                  " SELECT id, $2, false, now() FROM recipients WHERE id = $1::bigint"
                  " ON CONFLICT (recipient_id, channel) DO UPDATE SET consent = false,"
                  " opted_out_at = COALESCE(preferences.opted_out_at, now()), updated_at = now()",
                  2, p, PGRES_COMMAND_OK, &kind, err, sizeof(err));
    pool_put(a, conn);
    if (res == NULL)
        return reply_db_down(c, err);
    PQclear(res);
    log_info("api.unsubscribe", 0, NULL, "recipient=%lld channel=%s opted out", rid, channel);
    hbuf_init(&b, API_PAGE_MAX);
    page_unsubscribe(&b, rid, channel, token, true);
    return reply_page(c, MHD_HTTP_OK, &b);
}

/* ---- pages ---- */

/* Answer 401 (login page) or 403 for a page the request may not see;
 * MHD_YES is never returned for an allowed request (check rights first). */
static enum MHD_Result page_denied(struct MHD_Connection *c, bool presented, unsigned status)
{
    struct hbuf b;

    if (status == MHD_HTTP_FORBIDDEN)
        return reply_message(c, status, "Not allowed",
                             "Your token does not give access to this page.");
    hbuf_init(&b, API_PAGE_MAX);
    page_login(&b, presented ? "That token was not accepted." : NULL);
    return reply_page(c, MHD_HTTP_UNAUTHORIZED, &b);
}

/* GET /agent?q=TRACKING-OR-ORDER or ?id=N */
static enum MHD_Result get_agent(struct api *a, struct MHD_Connection *c)
{
    const char *qs = arg(c, "q"), *ids = arg(c, "id");
    json_t *matches = NULL, *detail = NULL;
    char err[512], msg[160] = "";
    long long id = 0;
    struct hbuf b;
    PGconn *conn;
    enum st_err rc = ST_OK;
    unsigned status = MHD_HTTP_OK;

    if (qs != NULL && *qs == '\0')
        qs = NULL;
    if ((qs != NULL && !plain_text(qs, 128)) ||
        (ids != NULL && !parse_id(ids, strlen(ids), &id))) {
        hbuf_init(&b, API_PAGE_MAX);
        page_agent(&b, qs, NULL, NULL, "Search for a tracking number or an order reference "
                   "(up to 128 characters).");
        return reply_page(c, MHD_HTTP_BAD_REQUEST, &b);
    }
    if (qs != NULL || id > 0) {
        if ((conn = pool_get(a, err, sizeof(err))) == NULL)
            return reply_db_down(c, err);
        if (id == 0) {
            rc = find_shipments(conn, false, qs, &matches, err, sizeof(err));
            if (rc == ST_OK && json_array_size(matches) == 0) {
                json_decref(matches);
                rc = find_shipments(conn, true, qs, &matches, err, sizeof(err));
            }
            if (rc == ST_OK && json_array_size(matches) == 1)
                id = json_integer_value(json_object_get(json_array_get(matches, 0), "id"));
        }
        if (rc == ST_OK && id > 0) {
            rc = shipment_detail(conn, id, &detail, err, sizeof(err));
            if (rc == ST_PERMANENT) {
                snprintf(msg, sizeof(msg), "No shipment %lld.", id);
                status = MHD_HTTP_NOT_FOUND;
                rc = ST_OK;
            }
        } else if (rc == ST_OK && json_array_size(matches) == 0) {
            snprintf(msg, sizeof(msg), "No shipment has this tracking number or order reference.");
            status = MHD_HTTP_NOT_FOUND;
        }
        pool_put(a, conn);
        if (rc != ST_OK) {
            json_decref(matches);
            return reply_db_down(c, err);
        }
    }
    hbuf_init(&b, API_PAGE_MAX);
    page_agent(&b, qs, detail, json_array_size(matches) > 1 ? matches : NULL,
               msg[0] ? msg : NULL);
    json_decref(matches);
    json_decref(detail);
    return reply_page(c, status, &b);
}

/* GET /ops */
static enum MHD_Result get_ops(struct api *a, struct MHD_Connection *c)
{
    char err[512];
    json_t *board = NULL;
    struct hbuf b;
    PGconn *conn;
    enum st_err rc;

    if ((conn = pool_get(a, err, sizeof(err))) == NULL)
        return reply_db_down(c, err);
    rc = ops_board(a, conn, &board, err, sizeof(err));
    pool_put(a, conn);
    if (rc != ST_OK)
        return reply_db_down(c, err);
    hbuf_init(&b, API_PAGE_MAX);
    page_ops(&b, board);
    json_decref(board);
    return reply_page(c, MHD_HTTP_OK, &b);
}

/* GET /t/{tracking_number}: the customers' status page (the notifier's
 * emails link here). No login, so no personal data: normalized statuses,
 * places and times, the customs hold's reason and who must act, the
 * estimate; no order reference, no carrier free text (it may name people). */
static enum MHD_Result get_public(struct api *a, struct MHD_Connection *c, const char *number)
{
    char err[512];
    json_t *tl = NULL;
    struct hbuf b;
    PGconn *conn;
    enum st_err rc;
    size_t n = strlen(number);

    if (n < 4 || n > 48 || strspn(number, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789- ") != n)
        return reply_message(c, MHD_HTTP_NOT_FOUND, "Not found",
                             "We know no parcel with this tracking number.");
    if ((conn = pool_get(a, err, sizeof(err))) == NULL)
        return reply_db_down(c, err);
    rc = timeline_load(conn, NULL, number, &tl, err, sizeof(err));
    pool_put(a, conn);
    if (rc == ST_PERMANENT)
        return reply_message(c, MHD_HTTP_NOT_FOUND, "Not found",
                             "We know no parcel with this tracking number.");
    if (rc != ST_OK)
        return reply_db_down(c, err);
    hbuf_init(&b, API_PAGE_MAX);
    page_public(&b, tl);
    json_decref(tl);
    return reply_page(c, MHD_HTTP_OK, &b);
}

/* POST /login: token=... -> HttpOnly SameSite=Strict cookie, then the page
 * the token may see. */
static enum MHD_Result post_login(struct api *a, struct MHD_Connection *c, struct req *q)
{
    char tok[API_TOKEN_MAX + 8], cookie[API_TOKEN_MAX + 128];
    struct MHD_Response *r;
    unsigned rights;
    enum MHD_Result rc;
    struct hbuf b;

    if (!form_value(q->body.p != NULL ? q->body.p : "", "token", tok, sizeof(tok)) ||
        (rights = token_rights(a, tok)) == 0) {
        OPENSSL_cleanse(tok, sizeof(tok));
        hbuf_init(&b, API_PAGE_MAX);
        page_login(&b, "That token was not accepted.");
        return reply_page(c, MHD_HTTP_UNAUTHORIZED, &b);
    }
    snprintf(cookie, sizeof(cookie), COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict%s", tok,
             strcmp(a->cfg->api_cookie_secure, "on") == 0 ? "; Secure" : "");
    OPENSSL_cleanse(tok, sizeof(tok));
    if ((r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)) == NULL) {
        OPENSSL_cleanse(cookie, sizeof(cookie));
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    OPENSSL_cleanse(cookie, sizeof(cookie));
    MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, rights & RIGHT_AGENT ? "/agent" : "/ops");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    rc = MHD_queue_response(c, MHD_HTTP_SEE_OTHER, r);
    MHD_destroy_response(r);
    return rc;
}

/* POST /logout: forget the cookie. */
static enum MHD_Result post_logout(struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE,
                            COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, "/login");
    rc = MHD_queue_response(c, MHD_HTTP_SEE_OTHER, r);
    MHD_destroy_response(r);
    return rc;
}

/* ---- dispatch ---- */

/* Route a complete request. */
static enum MHD_Result dispatch(struct api *a, struct MHD_Connection *c, const char *method,
                                const char *url, struct req *q)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0, presented;
    /* cookies only authorize reads: a POST needs the Authorization header */
    unsigned rights = request_rights(a, c, get, &presented);
    unsigned need = 0;
    bool page = false;
    size_t n;

    if (strcmp(url, "/healthz") == 0 && get)
        return reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
    if (strcmp(url, "/readyz") == 0 && get)
        return get_readyz(a, c);
    if (strcmp(url, "/style.css") == 0 && get)
        return reply(c, MHD_HTTP_OK, "text/css; charset=utf-8", strdup(api_stylesheet),
                     strlen(api_stylesheet), false);
    if (strcmp(url, "/unsubscribe") == 0 && (get || post))
        return get ? get_unsubscribe(a, c) : post_unsubscribe(a, c, q);
    if (strcmp(url, "/login") == 0 && (get || post)) {
        struct hbuf b;

        if (post)
            return post_login(a, c, q);
        hbuf_init(&b, API_PAGE_MAX);
        page_login(&b, NULL);
        return reply_page(c, MHD_HTTP_OK, &b);
    }
    if (strcmp(url, "/logout") == 0 && post)
        return post_logout(c);
    if (strncmp(url, "/t/", 3) == 0 && get)
        return get_public(a, c, url + 3);
    if (strcmp(url, "/") == 0 && get) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"",
                                                                 MHD_RESPMEM_PERSISTENT);
        enum MHD_Result rc;

        if (r == NULL)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, "/agent");
        rc = MHD_queue_response(c, MHD_HTTP_SEE_OTHER, r);
        MHD_destroy_response(r);
        return rc;
    }

    /* authenticated routes: find the route and the right it needs */
    if (strcmp(url, "/metrics") == 0 && get)
        need = RIGHT_OPS;
    else if (strcmp(url, "/agent") == 0 && get)
        need = RIGHT_AGENT, page = true;
    else if (strcmp(url, "/ops") == 0 && get)
        need = RIGHT_OPS, page = true;
    else if (strcmp(url, "/v1/shipments") == 0 && (get || post))
        need = get ? RIGHT_AGENT : RIGHT_ADMIN;
    else if (strncmp(url, "/v1/shipments/", 14) == 0 && get)
        need = RIGHT_AGENT;
    else if (strcmp(url, "/v1/stuck") == 0 && get)
        need = RIGHT_OPS;
    else if (strncmp(url, "/v1/notifications/", 18) == 0 && post &&
             (n = strlen(url)) > 25 && strcmp(url + n - 7, "/resend") == 0)
        need = RIGHT_ADMIN;
    if (need == 0) {
        bool known = strcmp(url, "/metrics") == 0 || strcmp(url, "/agent") == 0 ||
                     strcmp(url, "/ops") == 0 || strcmp(url, "/v1/shipments") == 0 ||
                     strcmp(url, "/v1/stuck") == 0 || strcmp(url, "/healthz") == 0 ||
                     strcmp(url, "/readyz") == 0 || strcmp(url, "/unsubscribe") == 0;

        if (known)
            return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
                               "%s is not allowed here",
                               get ? "GET" : post ? "POST" : "this method");
        return reply_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint");
    }
    if ((rights & need) == 0) {
        unsigned status = rights == 0 ? MHD_HTTP_UNAUTHORIZED : MHD_HTTP_FORBIDDEN;

        if (page)
            return page_denied(c, presented, status);
        if (status == MHD_HTTP_UNAUTHORIZED)
            return reply_error(c, status, "unauthorized", presented ? "token not accepted"
                               : "send Authorization: Bearer TOKEN");
        return reply_error(c, status, "forbidden", "this token's role may not do that");
    }
    if (strcmp(url, "/metrics") == 0)
        return get_metrics(a, c);
    if (strcmp(url, "/agent") == 0)
        return get_agent(a, c);
    if (strcmp(url, "/ops") == 0)
        return get_ops(a, c);
    if (strcmp(url, "/v1/shipments") == 0)
        return get ? get_shipments(a, c) : post_shipment(a, c, q);
    if (strncmp(url, "/v1/shipments/", 14) == 0)
        return get_shipment(a, c, url + 14);
    if (strcmp(url, "/v1/stuck") == 0)
        return get_stuck(a, c);
    return post_resend(a, c, url + 18, strlen(url + 18) - 7);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct api *a = cls;
    struct req *q = *con_cls;

    (void)version;
    if (q == NULL) { /* headers only: set up, and refuse a declared oversize body early */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);

        if ((q = calloc(1, sizeof(*q))) == NULL)
            return MHD_NO;
        hbuf_init(&q->body, (size_t)a->cfg->api_max_body);
        *con_cls = q;
        if (cl != NULL && strtoull(cl, NULL, 10) > (unsigned long long)a->cfg->api_max_body) {
            q->too_big = true;
            return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                               "request body larger than %lld bytes", a->cfg->api_max_body);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!q->too_big) {
            hbuf_add(&q->body, upload_data, *upload_data_size);
            q->too_big = q->body.failed;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (q->too_big)
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                           "request body larger than %lld bytes", a->cfg->api_max_body);
    return dispatch(a, c, method, url, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req *q = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (q != NULL) {
        if (q->body.p != NULL)
            OPENSSL_cleanse(q->body.p, q->body.len); /* may hold a login token */
        hbuf_free(&q->body);
        free(q);
        *con_cls = NULL;
    }
}

/* MHD's own complaints go to our log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_warn("api.http", 0, NULL, "%s", msg);
}

/* ---- lifecycle ---- */

/* Resolve SHIPTRACK_API_LISTEN ("host:port", "[v6]:port") into ss. */
static enum st_err parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sl,
                                char *err, size_t errlen)
{
    char host[128], port[8];
    struct addrinfo hints, *ai = NULL;
    const char *colon = strrchr(spec, ':');
    size_t hl;
    int e;

    if (colon == NULL || colon == spec || strlen(colon + 1) == 0 || strlen(colon + 1) > 5 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || atoi(colon + 1) > 65535)
        return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_LISTEN: \"%.64s\" is not HOST:PORT",
                       spec);
    hl = (size_t)(colon - spec);
    if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']')
        spec++, hl -= 2;
    if (hl >= sizeof(host))
        return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_LISTEN: host name too long");
    memcpy(host, spec, hl);
    host[hl] = '\0';
    snprintf(port, sizeof(port), "%s", colon + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((e = getaddrinfo(host, port, &hints, &ai)) != 0 || ai == NULL)
        return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_LISTEN: %s: %s", host,
                       gai_strerror(e));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sl = ai->ai_addrlen;
    freeaddrinfo(ai);
    return ST_OK;
}

enum st_err api_start(const struct st_config *cfg, const char *brokers, struct api **out,
                      char *err, size_t errlen)
{
    static const char *const kv[] = { "group.id", "shiptrack-notifier",
                                      "enable.auto.commit", "false", NULL };
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    const union MHD_DaemonInfo *info;
    struct api *a;
    enum st_err rc;

    *out = NULL;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory");
    a->cfg = cfg;
    a->pool_max = (size_t)cfg->api_threads > API_POOL_MAX ? API_POOL_MAX : (size_t)cfg->api_threads;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->freed, NULL);
    if ((rc = parse_tokens(a, cfg->api_tokens, err, errlen)) != ST_OK ||
        (rc = parse_listen(cfg->api_listen, &ss, &sl, err, errlen)) != ST_OK) {
        api_stop(a);
        return rc;
    }
    /* a consumer in the notifier's group that never subscribes: it only
     * reads the group's committed offsets and the cluster's metadata */
    if (brokers != NULL && (a->rk = kafka_client_new(RD_KAFKA_CONSUMER, brokers, kv, NULL,
                                                     "api.start")) == NULL) {
        api_stop(a);
        return st_fail(err, errlen, ST_CONFIG, "cannot create a Kafka client for %s", brokers);
    }
    a->daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
            (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
        0, NULL, NULL, on_request, a,
        /* the logger first, so that MHD reports problems with the options after it */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)a->pool_max,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->api_max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(cfg->api_timeout_ms / 1000),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_END);
    if (a->daemon == NULL) {
        api_stop(a);
        return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_API_LISTEN: cannot listen on %s: %s",
                       cfg->api_listen, strerror(errno));
    }
    info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info != NULL ? info->port : 0;
    *out = a;
    return ST_OK;
}

unsigned api_port(const struct api *a)
{
    return a->port;
}

void api_stop(struct api *a)
{
    if (a == NULL)
        return;
    if (a->daemon != NULL)
        MHD_stop_daemon(a->daemon);
    if (a->rk != NULL)
        rd_kafka_destroy(a->rk);
    for (size_t i = 0; i < a->n_idle; i++)
        PQfinish(a->idle[i]);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->freed);
    OPENSSL_cleanse(a->tokens, sizeof(a->tokens));
    free(a);
}

int api_run(const struct st_config *cfg, const struct api_opts *opts)
{
    struct api *a;
    char err[512];
    enum st_err rc = api_start(cfg, opts->brokers, &a, err, sizeof(err));

    if (rc != ST_OK) {
        log_error("api.start", 0, NULL, "%s", err);
        return rc == ST_CONFIG ? 2 : 1;
    }
    log_info("api.start", 0, NULL, "serving on %s (port %u), %zu tokens, %lld threads%s",
             cfg->api_listen, a->port, a->n_tokens, cfg->api_threads,
             a->rk != NULL ? ", Kafka checks on" : "");
    if (cfg->unsubscribe_secret == NULL)
        log_warn("api.start", 0, NULL, "SHIPTRACK_UNSUBSCRIBE_SECRET is not set: /unsubscribe "
                 "refuses every link (set the notifier's secret here too)");
    while (*opts->running) {
        struct timespec ts = { 0, 200 * 1000 * 1000 };

        if (a->rk != NULL)
            rd_kafka_poll(a->rk, 0); /* serve the client's event queue (errors, stats) */
        nanosleep(&ts, NULL);
    }
    api_stop(a);
    log_info("api.stop", 0, NULL, "stopped");
    return 0;
}
