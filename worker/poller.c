/*
 * poller.c - the poller loop.
 *
 * One pass of the loop: for each carrier that has room, claim due shipments
 * (most urgent first) into its queue; start requests while the carrier's
 * limits allow; let curl move bytes; finish every completed request (parse
 * with the driver, store in one transaction per shipment). On stop: no more
 * claims, leases of queued-but-unstarted shipments are released, in-flight
 * requests finish and are stored, unspent quota is given back, then the loop
 * returns.
 *
 * Wording:
 *   job      one HTTP request: a poll of 1..batch_max shipments of one carrier,
 *            an OAuth2 token request, or an aggregator registration.
 *   queue    a carrier's claimed shipments not yet in a job.
 *   limits   per carrier: requests per second (token bucket, one second of
 *            burst), requests in flight, a daily quota reserved from the
 *            database in chunks, a pause after 429 (Retry-After), and the
 *            circuit breaker.
 *   breaker  closed: requests flow. Opens when, over the last 2*min_requests
 *            requests (at least min_requests of them), the failure share
 *            reaches the threshold; open: nothing is claimed or sent; after
 *            the cooldown, half-open: one probe request; its success closes
 *            the breaker, its failure opens it again with a doubled cooldown.
 *            Failures are transport errors, 5xx and unparseable bodies; 429
 *            is throttling, handled by the pause, not an outage.
 */
#include "poller.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "store.h"

#define MAX_SLOTS 16
#define WINDOW_MAX 256          /* breaker window cap (2 * min_requests) */
#define TOKEN_SAFETY_MS 60000   /* refresh a token this long before it expires (at most a
                                   quarter of its lifetime, so short-lived tokens get used) */
#define QUOTA_CHUNK_MAX 20      /* requests reserved per database round trip */
#define STATS_FLUSH_MS 5000     /* how often counters go to poller_stats (for /metrics) */
#define AUTH_RETRIES_MAX 5      /* re-queues of one shipment after 401s, each time with a
                                   newer token; one more 401 fails it as a credentials problem */

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

static const char *const breaker_names[] = { "closed", "open", "half-open" };

/* A carrier as this process uses it: driver, credentials, limits, state. */
struct carrier_slot {
    const struct carrier_def *def;
    struct carrier_ctx ctx;
    bool enabled;                   /* credentials configured */
    struct claimed *queue;          /* claimed, not started */
    size_t queued, queue_cap;
    struct claimed *to_register;    /* waiting for an aggregator registration */
    size_t n_register, register_cap;
    unsigned inflight, concurrency;
    /* rate: token bucket */
    double rate_per_sec, tokens;
    long long refill_ms;
    /* daily quota (0 = unlimited), reserved from carrier_quota in chunks */
    long long daily_quota;
    long long quota_left;           /* reserved and not yet spent */
    long quota_day;                 /* UTC day number of the reservation */
    bool quota_exhausted;           /* nothing more to reserve today */
    long long pause_until;          /* ms clock: 429 Retry-After */
    /* OAuth2 */
    char token[CARRIER_TOKEN_MAX];
    long long token_expires_ms;     /* ms clock; 0 = no token */
    long long token_margin_ms;      /* refresh this long before token_expires_ms */
    long long token_obtained_ms;    /* ms clock of the current token */
    bool token_fetching;
    long long token_retry_ms;       /* no new token request before this */
    /* breaker */
    enum breaker_state breaker;
    long long breaker_until;
    long long cooldown_ms;
    bool probe_inflight;
    unsigned char window[WINDOW_MAX]; /* 1 = failure */
    size_t window_n, window_pos;
    long long next_claim_ms;
    struct poll_stats stats;        /* for /metrics, flushed to poller_stats */
};

enum job_kind { JOB_POLL, JOB_TOKEN, JOB_REGISTER };

struct job {
    enum job_kind kind;
    struct carrier_slot *slot;
    struct claimed items[CARRIER_MAX_BATCH];
    size_t n;
    struct carrier_request req;
    struct curl_slist *headers;
    CURL *easy;
    char *body;                     /* response body, capped at max_body */
    size_t len, cap, max_body;
    bool too_big;
    bool probe;                     /* the half-open breaker's probe */
    long retry_after_s;             /* from a Retry-After header, -1 if none */
    long long started_ms;
};

struct poller {
    const struct st_config *cfg;
    const struct poller_opts *opts;
    struct poller_totals *totals;
    PGconn *conn;
    CURLM *multi;
    struct carrier_slot slots[MAX_SLOTS];
    size_t n_slots;
    size_t inflight;
    struct poll_policy policy;
    long long next_partitions_ms;
    bool tls_verify;             /* SHIPTRACK_CARRIER_TLS_VERIFY */
    long long next_stats_ms;        /* next flush of the slots' poll_stats */
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* UTC day number, for quota days. */
static long utc_day(void)
{
    return (long)(time(NULL) / 86400);
}

bool poller_carrier_configured(const struct st_config *cfg, const struct carrier_def *def)
{
    const struct carrier_conf *cc = config_carrier(cfg, def->name);

    if (cc == NULL)
        return false;
    if (def->auth == CARRIER_AUTH_OAUTH2)
        return cc->client_id != NULL && cc->client_secret != NULL;
    return cc->api_key != NULL;
}

/* Credentials, endpoints and limits of each carrier, from the configuration. */
static void setup_slots(struct poller *p)
{
    const struct st_config *cfg = p->cfg;

    for (size_t i = 0; i < carrier_defs_count && p->n_slots < MAX_SLOTS; i++) {
        const struct carrier_def *def = carrier_defs[i];
        const struct carrier_conf *cc = config_carrier(cfg, def->name);
        struct carrier_slot *s = &p->slots[p->n_slots++];

        memset(s, 0, sizeof(*s));
        s->def = def;
        s->enabled = poller_carrier_configured(cfg, def);
        if (cc != NULL) {
            s->ctx.base_url = cc->base_url ? cc->base_url : def->default_base_url;
            s->ctx.api_key = cc->api_key;
            s->ctx.client_id = cc->client_id;
            s->ctx.client_secret = cc->client_secret;
            s->ctx.language = cc->language;
            s->rate_per_sec = cc->rate_per_hour > 0 ? (double)cc->rate_per_hour / 3600.0
                                                    : def->rate_per_sec;
            s->daily_quota = cc->daily_quota >= 0 ? cc->daily_quota : (long long)def->rate_per_day;
            s->concurrency = (unsigned)(cc->concurrency > 0 ? cc->concurrency : 8);
        } else {
            s->ctx.base_url = def->default_base_url;
            s->rate_per_sec = def->rate_per_sec;
            s->daily_quota = def->rate_per_day;
            s->concurrency = 8;
        }
        if (s->rate_per_sec <= 0)
            s->rate_per_sec = 1;
        s->tokens = s->rate_per_sec < 1 ? 1 : s->rate_per_sec;
        s->refill_ms = now_ms();
        s->cooldown_ms = cfg->breaker_cooldown_ms;
        if (s->enabled)
            log_info("poller.carrier", 0, def->name,
                     "polling %s: %.3g requests/s, daily quota %lld (0 = none), %u in flight, "
                     "batch %u", s->ctx.base_url, s->rate_per_sec, s->daily_quota,
                     s->concurrency, def->batch_max);
        else
            log_info("poller.carrier", 0, def->name,
                     "no credentials configured; shipments of this carrier are not polled");
    }
}

static bool ensure_db(struct poller *p)
{
    char err[512];

    if (p->conn != NULL && PQstatus(p->conn) == CONNECTION_OK)
        return true;
    if (p->conn != NULL) {
        log_warn("db.lost", 0, NULL, "database connection lost; reconnecting");
        PQfinish(p->conn);
        p->conn = NULL;
    }
    p->conn = db_connect_retry(p->cfg->database_url, p->cfg->db_retry_max_ms, p->opts->running);
    if (p->conn == NULL)
        return false;
    if (migrate_check(p->conn, err, sizeof(err)) != ST_OK) {
        log_error("db.schema", 0, NULL, "%s", err);
        PQfinish(p->conn);
        p->conn = NULL;
        return false;
    }
    log_info("db.connected", 0, NULL, "connected to the database");
    return true;
}

/* Keep monthly event partitions ahead of time (cheap when they exist). */
static void ensure_partitions(struct poller *p)
{
    char err[512];
    enum st_err kind;
    PGresult *res;

    if (now_ms() < p->next_partitions_ms)
        return;
    res = db_exec(p->conn, "ensure partitions",
                  "SELECT st_ensure_event_partitions(now()::date - 31,"
                  " (now() + interval '3 months')::date)",
                  0, NULL, PGRES_TUPLES_OK, &kind, err, sizeof(err));
    if (res == NULL) {
        log_warn("db.partitions", 0, NULL, "%s", err);
        p->next_partitions_ms = now_ms() + 60 * 1000;
        return;
    }
    PQclear(res);
    p->next_partitions_ms = now_ms() + 3600 * 1000;
}

/* ---- limits ---- */

/* Refill the token bucket; true when one request may start now. */
static bool rate_ok(struct carrier_slot *s)
{
    long long now = now_ms();
    double cap = s->rate_per_sec < 1 ? 1 : s->rate_per_sec;

    s->tokens += (double)(now - s->refill_ms) * s->rate_per_sec / 1000.0;
    if (s->tokens > cap)
        s->tokens = cap;
    s->refill_ms = now;
    return s->tokens >= 1.0;
}

/* Reserve up to `want` more requests of today's quota for this process;
 * marks the quota exhausted when nothing is left to reserve. */
static void reserve_quota(struct poller *p, struct carrier_slot *s, long long want)
{
    char want_s[24], limit_s[24], err[512];
    const char *params[3];
    enum st_err kind;
    PGresult *res;

    snprintf(want_s, sizeof(want_s), "%lld", want);
    snprintf(limit_s, sizeof(limit_s), "%lld", s->daily_quota);
    params[0] = s->def->name;
    params[1] = want_s;
    params[2] = limit_s;
    res = db_exec(p->conn, "create quota row",
                  "INSERT INTO carrier_quota (carrier, day)"
                  " VALUES ($1, (now() AT TIME ZONE 'UTC')::date) ON CONFLICT DO NOTHING",
                  1, params, PGRES_COMMAND_OK, &kind, err, sizeof(err));
    if (res == NULL) {
        log_warn("quota.reserve", 0, s->def->name, "%s", err);
        return;
    }
    PQclear(res);
    /* The row lock serializes pollers; each takes what is left, up to want. */
    res = db_exec_prepared(p->conn, "reserve quota",
                  "WITH old AS (SELECT used FROM carrier_quota WHERE carrier = $1"
                  "             AND day = (now() AT TIME ZONE 'UTC')::date FOR UPDATE)"
                  " UPDATE carrier_quota q SET used = q.used + least($2::int, $3::int - old.used)"
                  " FROM old WHERE q.carrier = $1 AND q.day = (now() AT TIME ZONE 'UTC')::date"
                  "   AND old.used < $3::int"
                  " RETURNING least($2::int, $3::int - old.used)",
                  3, params, PGRES_TUPLES_OK, &kind, err, sizeof(err));
    if (res == NULL) {
        log_warn("quota.reserve", 0, s->def->name, "%s", err);
        return;
    }
    if (PQntuples(res) == 1)
        s->quota_left += atoll(PQgetvalue(res, 0, 0));
    else {
        s->quota_exhausted = true;
        log_warn("quota.exhausted", 0, s->def->name,
                 "daily quota of %lld requests used up; polling resumes after 00:00 UTC",
                 s->daily_quota);
    }
    PQclear(res);
}

/* Give back reserved and unspent requests (shutdown). */
static void return_quota(struct poller *p, struct carrier_slot *s)
{
    char n[24], err[512];
    const char *params[2];
    enum st_err kind;
    PGresult *res;

    if (s->daily_quota == 0 || s->quota_left <= 0 || s->quota_day != utc_day() || p->conn == NULL)
        return;
    snprintf(n, sizeof(n), "%lld", s->quota_left);
    params[0] = s->def->name;
    params[1] = n;
    res = db_exec_prepared(p->conn, "return quota",
                  "UPDATE carrier_quota SET used = greatest(0, used - $2::int)"
                  " WHERE carrier = $1 AND day = (now() AT TIME ZONE 'UTC')::date",
                  2, params, PGRES_COMMAND_OK, &kind, err, sizeof(err));
    if (res != NULL)
        PQclear(res);
    s->quota_left = 0;
}

/* Requests this carrier may still make today, up to want (reserving more
 * from the shared quota when this process's reservation runs low). */
static long long quota_available(struct poller *p, struct carrier_slot *s, long long want)
{
    long long chunk;

    if (s->daily_quota == 0)
        return want;
    if (s->quota_day != utc_day()) { /* a new UTC day: a new quota */
        s->quota_day = utc_day();
        s->quota_left = 0;
        s->quota_exhausted = false;
    }
    if (s->quota_left < want && !s->quota_exhausted) {
        chunk = s->daily_quota / 50; /* small chunks keep pollers fair to each other */
        if (chunk < 1)
            chunk = 1;
        if (chunk > QUOTA_CHUNK_MAX)
            chunk = QUOTA_CHUNK_MAX;
        if (chunk < want)
            chunk = want;
        reserve_quota(p, s, chunk - s->quota_left);
    }
    return s->quota_left < want ? s->quota_left : want;
}

/* ---- the circuit breaker ---- */

static void breaker_set(struct poller *p, struct carrier_slot *s, enum breaker_state to,
                        const char *why)
{
    if (s->breaker == to)
        return;
    if (to == BREAKER_OPEN)
        p->totals->breaker_opens++;
    log_warn("carrier.breaker", 0, s->def->name, "circuit breaker %s -> %s: %s",
             breaker_names[s->breaker], breaker_names[to], why);
    s->breaker = to;
    s->stats.dirty = true; /* /metrics shows the new state at the next flush */
}

/* Record one request outcome and move the breaker. */
static void breaker_record(struct poller *p, struct carrier_slot *s, bool failed, bool probe)
{
    size_t window = (size_t)p->cfg->breaker_min_requests * 2, fails = 0;
    char why[160];

    if (window > WINDOW_MAX)
        window = WINDOW_MAX;
    if (probe) {
        s->probe_inflight = false;
        if (failed) {
            s->cooldown_ms = s->cooldown_ms * 2 > 600000 ? 600000 : s->cooldown_ms * 2;
            s->breaker_until = now_ms() + s->cooldown_ms;
            snprintf(why, sizeof(why), "probe failed; next probe in %lld ms", s->cooldown_ms);
            breaker_set(p, s, BREAKER_OPEN, why);
        } else {
            s->cooldown_ms = p->cfg->breaker_cooldown_ms;
            s->window_n = s->window_pos = 0;
            breaker_set(p, s, BREAKER_CLOSED, "probe succeeded");
        }
        return;
    }
    if (s->breaker != BREAKER_CLOSED)
        return; /* answers to requests sent before it opened */
    s->window[s->window_pos] = failed;
    s->window_pos = (s->window_pos + 1) % window;
    if (s->window_n < window)
        s->window_n++;
    for (size_t i = 0; i < s->window_n; i++)
        fails += s->window[i];
    if (s->window_n >= (size_t)p->cfg->breaker_min_requests &&
        (long long)fails * 100 >= p->cfg->breaker_failure_pct * (long long)s->window_n) {
        s->breaker_until = now_ms() + s->cooldown_ms;
        snprintf(why, sizeof(why), "%zu of the last %zu requests failed; probing in %lld ms",
                 fails, s->window_n, s->cooldown_ms);
        breaker_set(p, s, BREAKER_OPEN, why);
    }
}

/* True when the breaker lets a request (or the probe) through now. */
static bool breaker_allows(struct poller *p, struct carrier_slot *s, bool *probe)
{
    *probe = false;
    if (s->breaker == BREAKER_CLOSED)
        return true;
    if (s->breaker == BREAKER_OPEN && now_ms() >= s->breaker_until)
        breaker_set(p, s, BREAKER_HALF_OPEN, "cooldown over; sending one probe");
    if (s->breaker == BREAKER_HALF_OPEN && !s->probe_inflight) {
        *probe = true;
        return true;
    }
    return false;
}

/* ---- queues ---- */

static bool push(struct claimed **q, size_t *n, size_t *cap, const struct claimed *c)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct claimed *nq = realloc(*q, ncap * sizeof(*nq));

        if (nq == NULL)
            return false;
        *q = nq;
        *cap = ncap;
    }
    (*q)[(*n)++] = *c;
    return true;
}

/* Claim due shipments of one carrier, most urgent first, into its queue. */
static void claim(struct poller *p, struct carrier_slot *s, long long limit)
{
    char lease[32], lim[24], err[512];
    const char *params[4];
    enum st_err kind = ST_OK;
    PGresult *res;
    int n;

    snprintf(lease, sizeof(lease), "%lld", p->cfg->poll_lease_ms);
    snprintf(lim, sizeof(lim), "%lld", limit);
    params[0] = p->cfg->worker_id;
    params[1] = lease;
    params[2] = s->def->name;
    params[3] = lim;
    /* Urgency (sql/008_claim_priority.sql, poll_priority): about to be
     * delivered, held, waiting for the recipient, due per the estimate; then
     * the rest; within each, by how overdue. One short index range scan per
     * priority, so a claim costs the same at 10,000 or 1,000,000 due. */
    res = db_exec_prepared(p->conn, "claim due shipments",
                  "UPDATE shipments s SET lease_owner = $1,"
                  " lease_until = now() + make_interval(secs => $2::float8 / 1000)"
                  " FROM (SELECT d.id FROM generate_series(0, 4) AS p(prio),"
                  "       LATERAL (SELECT id, next_poll_at FROM shipments"
                  "         WHERE carrier = $3 AND poll_priority = p.prio AND next_poll_at <= now()"
                  "           AND (lease_until IS NULL OR lease_until < now())"
                  "         ORDER BY next_poll_at LIMIT $4::int FOR UPDATE SKIP LOCKED) d"
                  "       ORDER BY p.prio, d.next_poll_at LIMIT $4::int) due"
                  " WHERE s.id = due.id"
                  " RETURNING s.id, s.tracking_number, s.status, coalesce(s.poll_digest, '')",
                  4, params, PGRES_TUPLES_OK, &kind, err, sizeof(err));
    if (res == NULL) {
        log_error("poll.claim", 0, s->def->name, "%s", err);
        s->next_claim_ms = now_ms() + p->cfg->poll_idle_ms;
        return;
    }
    n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        struct claimed c;

        memset(&c, 0, sizeof(c));
        c.id = atoll(PQgetvalue(res, i, 0));
        snprintf(c.carrier, sizeof(c.carrier), "%s", s->def->name);
        snprintf(c.tracking_number, sizeof(c.tracking_number), "%s", PQgetvalue(res, i, 1));
        snprintf(c.status, sizeof(c.status), "%s", PQgetvalue(res, i, 2));
        snprintf(c.digest, sizeof(c.digest), "%s", PQgetvalue(res, i, 3));
        if (!push(&s->queue, &s->queued, &s->queue_cap, &c)) {
            log_error("poll.claim", c.id, s->def->name, "out of memory; the lease will expire");
            break;
        }
    }
    PQclear(res);
    if (n == 0)
        s->next_claim_ms = now_ms() + p->cfg->poll_idle_ms;
    else
        log_debug("poll.claim", 0, s->def->name, "claimed %d due shipments", n);
}

/* The quota ran out: push the rest of today's due shipments of this carrier
 * to just after midnight UTC (spread over ten minutes), and say so. */
static void defer_for_quota(struct poller *p, struct carrier_slot *s)
{
    const char *params[1] = { s->def->name };
    char err[512];
    enum st_err kind;
    PGresult *res;

    res = db_exec(p->conn, "defer for quota",
                  "UPDATE shipments SET next_poll_at = date_trunc('day', now() AT TIME ZONE 'UTC')"
                  "   AT TIME ZONE 'UTC' + interval '1 day' + random() * interval '10 minutes'"
                  " WHERE carrier = $1 AND next_poll_at <= now()"
                  "   AND (lease_until IS NULL OR lease_until < now())",
                  1, params, PGRES_COMMAND_OK, &kind, err, sizeof(err));
    if (res == NULL) {
        log_warn("quota.defer", 0, s->def->name, "%s", err);
        return;
    }
    if (atol(PQcmdTuples(res)) > 0) {
        p->totals->deferred += atol(PQcmdTuples(res));
        log_warn("quota.defer", 0, s->def->name,
                 "daily quota used up: deferred %s due shipments to 00:00 UTC "
                 "(the most urgent were polled first)", PQcmdTuples(res));
    }
    PQclear(res);
}

/* ---- HTTP ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct job *j = ud;
    size_t n = size * nmemb;

    if (j->len + n > j->max_body) {
        j->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 16384;
        char *b;

        while (cap < j->len + n + 1)
            cap *= 2;
        if (cap > j->max_body + 1)
            cap = j->max_body + 1;
        b = realloc(j->body, cap);
        if (b == NULL)
            return 0;
        j->body = b;
        j->cap = cap;
    }
    memcpy(j->body + j->len, data, n);
    j->len += n;
    j->body[j->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct job *j = ud;
    size_t n = size * nmemb;
    char line[256];

    if (n > 12 && n < sizeof(line) && strncasecmp(data, "Retry-After:", 12) == 0) {
        char *v;
        long secs;

        memcpy(line, data, n);
        line[n] = '\0';
        v = line + 12;
        while (*v == ' ')
            v++;
        v[strcspn(v, "\r\n")] = '\0';
        if (*v >= '0' && *v <= '9') {
            secs = strtol(v, NULL, 10);
        } else {
            time_t when = curl_getdate(v, NULL);

            secs = when > 0 ? (long)(when - time(NULL)) : -1;
        }
        if (secs >= 0)
            j->retry_after_s = secs > 86400 ? 86400 : secs;
    }
    return n;
}

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    curl_slist_free_all(j->headers);
    if (j->easy != NULL)
        curl_easy_cleanup(j->easy);
    carrier_request_reset(&j->req);
    free(j->body);
    free(j);
}

/* Hand a built request to curl. Takes ownership of j (freed on failure). */
static bool submit(struct poller *p, struct job *j)
{
    CURLMcode mc;

    j->retry_after_s = -1;
    j->max_body = (size_t)p->cfg->http_max_body;
    j->easy = curl_easy_init();
    if (j->easy == NULL)
        goto fail;
    for (size_t i = 0; i < j->req.n_headers; i++) {
        struct curl_slist *h = curl_slist_append(j->headers, j->req.headers[i]);

        if (h == NULL)
            goto fail;
        j->headers = h;
    }
    /* every option is checked: a libcurl without one of them must not poll silently
     * with a weaker setup (e.g. without TLS verification) */
    if (curl_easy_setopt(j->easy, CURLOPT_URL, j->req.url) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->headers) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_HEADERDATA, j) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)p->cfg->http_connect_timeout_ms) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_TIMEOUT_MS, (long)p->cfg->http_timeout_ms) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_MAXFILESIZE_LARGE,
                         (curl_off_t)p->cfg->http_max_body) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_ACCEPT_ENCODING, "") != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_USERAGENT, "shiptrack/" SHIPTRACK_VERSION) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_SSL_VERIFYPEER, p->tls_verify ? 1L : 0L) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_SSL_VERIFYHOST, p->tls_verify ? 2L : 0L) != CURLE_OK ||
        curl_easy_setopt(j->easy, CURLOPT_PIPEWAIT, 1L) != CURLE_OK ||
        (j->req.method == CARRIER_POST &&
         (curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->req.body ? j->req.body : "") !=
              CURLE_OK ||
          curl_easy_setopt(j->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->req.body_len) !=
              CURLE_OK))) {
        log_error("http.start", 0, j->slot->def->name, "curl: an option was refused");
        goto fail;
    }
    /* HTTP/2 where the carrier offers it; a libcurl without it speaks HTTP/1.1 */
    (void)curl_easy_setopt(j->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    mc = curl_multi_add_handle(p->multi, j->easy);
    if (mc != CURLM_OK) {
        log_error("http.start", 0, j->slot->def->name, "curl: %s", curl_multi_strerror(mc));
        goto fail;
    }
    j->started_ms = now_ms();
    j->slot->inflight++;
    p->inflight++;
    p->totals->requests++;
    if (j->slot->tokens >= 1.0)
        j->slot->tokens -= 1.0;
    return true;
fail:
    job_free(j);
    return false;
}

/* Record one failure for every shipment of a job. */
static void fail_items(struct poller *p, struct carrier_slot *s, const struct claimed *items,
                       size_t n, enum st_err kind, const char *reason, long long min_delay_ms)
{
    char err[512];

    for (size_t i = 0; i < n; i++) {
        log_warn("poll.failed", items[i].id, s->def->name, "%s: %s", st_err_name(kind), reason);
        p->totals->failures++;
        if (store_poll_failure(p->conn, p->cfg->worker_id, &items[i], kind, reason, min_delay_ms,
                               &p->policy, err, sizeof(err)) != ST_OK)
            log_error("poll.store", items[i].id, s->def->name, "%s", err);
    }
}

/* Ask for a fresh OAuth2 token. */
static void start_token(struct poller *p, struct carrier_slot *s)
{
    struct job *j;
    char err[512];
    enum st_err rc;

    if (s->token_fetching || now_ms() < s->token_retry_ms || !rate_ok(s))
        return;
    if ((j = calloc(1, sizeof(*j))) == NULL)
        return;
    j->kind = JOB_TOKEN;
    j->slot = s;
    rc = s->def->ops->build_token_request(&s->ctx, &j->req, err, sizeof(err));
    if (rc != ST_OK) {
        log_error("carrier.token", 0, s->def->name, "%s", err);
        s->token_retry_ms = now_ms() + 60000;
        job_free(j);
        return;
    }
    if (submit(p, j))
        s->token_fetching = true;
}

/* Register queued numbers with an aggregator (17TRACK). */
static void start_register(struct poller *p, struct carrier_slot *s)
{
    const char *numbers[CARRIER_MAX_BATCH];
    char err[512];
    struct job *j;
    size_t n = s->n_register;
    enum st_err rc;

    if (n > s->def->batch_max)
        n = s->def->batch_max;
    if (n > CARRIER_MAX_BATCH)
        n = CARRIER_MAX_BATCH;
    if ((j = calloc(1, sizeof(*j))) == NULL)
        return;
    j->kind = JOB_REGISTER;
    j->slot = s;
    j->n = n;
    memcpy(j->items, s->to_register, n * sizeof(*j->items));
    for (size_t i = 0; i < n; i++)
        numbers[i] = j->items[i].tracking_number;
    memmove(s->to_register, s->to_register + n, (s->n_register - n) * sizeof(*s->to_register));
    s->n_register -= n;
    rc = s->def->ops->build_register_request(&s->ctx, numbers, n, &j->req, err, sizeof(err));
    if (rc != ST_OK) {
        fail_items(p, s, j->items, j->n, rc, err, 0);
        job_free(j);
        return;
    }
    submit(p, j);
}

/* Start the next poll request of a carrier from its queue. */
static void start_poll(struct poller *p, struct carrier_slot *s, bool probe)
{
    const char *numbers[CARRIER_MAX_BATCH];
    char err[512];
    struct job *j;
    size_t n = s->queued, max = s->def->batch_max;
    enum st_err rc;

    if (max > CARRIER_MAX_BATCH)
        max = CARRIER_MAX_BATCH;
    if (n > max)
        n = max;
    if (probe)
        n = 1;
    if ((j = calloc(1, sizeof(*j))) == NULL)
        return;
    j->kind = JOB_POLL;
    j->slot = s;
    j->probe = probe;
    j->n = n;
    memcpy(j->items, s->queue, n * sizeof(*j->items));
    memmove(s->queue, s->queue + n, (s->queued - n) * sizeof(*s->queue));
    s->queued -= n;
    for (size_t i = 0; i < n; i++)
        numbers[i] = j->items[i].tracking_number;
    s->ctx.access_token = s->def->auth == CARRIER_AUTH_OAUTH2 ? s->token : NULL;
    rc = s->def->ops->build_request(&s->ctx, numbers, n, &j->req, err, sizeof(err));
    if (rc != ST_OK) {
        fail_items(p, s, j->items, j->n, rc, err, 0);
        job_free(j);
        return;
    }
    if (s->daily_quota > 0)
        s->quota_left--;
    if (probe)
        s->probe_inflight = true;
    if (!submit(p, j) && probe)
        s->probe_inflight = false;
}

/* Start whatever each carrier's limits allow. */
static void start_jobs(struct poller *p)
{
    for (size_t i = 0; i < p->n_slots; i++) {
        struct carrier_slot *s = &p->slots[i];
        bool probe;

        if (!s->enabled)
            continue;
        while (p->inflight < (size_t)p->cfg->poll_concurrency && s->inflight < s->concurrency &&
               now_ms() >= s->pause_until && rate_ok(s)) {
            if (s->def->auth == CARRIER_AUTH_OAUTH2 &&
                (s->queued > 0 || s->n_register > 0) &&
                now_ms() + s->token_margin_ms >= s->token_expires_ms) {
                start_token(p, s);
                break; /* requests wait for the token */
            }
            if (s->n_register > 0) {
                start_register(p, s);
                continue;
            }
            if (s->queued == 0 || !breaker_allows(p, s, &probe))
                break;
            if (s->daily_quota > 0 && quota_available(p, s, 1) < 1)
                break;
            start_poll(p, s, probe);
            if (probe)
                break;
        }
    }
}

/* ---- finishing ---- */

static void finish_token(struct poller *p, struct job *j, CURLcode cc, long status)
{
    struct carrier_slot *s = j->slot;
    struct carrier_token tok;
    char err[512];
    enum st_err rc;

    s->token_fetching = false;
    if (cc != CURLE_OK) {
        log_warn("carrier.token", 0, s->def->name, "token request failed: %s",
                 curl_easy_strerror(cc));
        s->token_retry_ms = now_ms() + 5000;
        breaker_record(p, s, true, false);
        return;
    }
    memset(&tok, 0, sizeof(tok));
    rc = s->def->ops->parse_token_response(status, j->body ? j->body : "", j->len, &tok, err,
                                           sizeof(err));
    if (rc != ST_OK) {
        /* Wrong credentials will not fix themselves: fail what waits, loudly. */
        log_error("carrier.token", 0, s->def->name, "%s", err);
        s->token_retry_ms = now_ms() + (rc == ST_CONFIG ? 60000 : 5000);
        if (rc == ST_CONFIG) {
            fail_items(p, s, s->queue, s->queued, rc, err, 0);
            s->queued = 0;
            fail_items(p, s, s->to_register, s->n_register, rc, err, 0);
            s->n_register = 0;
        }
        return;
    }
    snprintf(s->token, sizeof(s->token), "%s", tok.access_token);
    s->token_obtained_ms = now_ms();
    s->token_expires_ms = now_ms() + (tok.expires_in_s > 0 ? tok.expires_in_s : 3600) * 1000LL;
    /* A fixed margin would make a token living less than it look expired on
     * arrival (and be fetched again forever): at most a quarter of its life. */
    s->token_margin_ms = (s->token_expires_ms - s->token_obtained_ms) / 4;
    if (s->token_margin_ms > TOKEN_SAFETY_MS)
        s->token_margin_ms = TOKEN_SAFETY_MS;
    p->totals->token_fetches++;
    log_info("carrier.token", 0, s->def->name, "new access token, valid %ld s",
             tok.expires_in_s > 0 ? tok.expires_in_s : 3600);
}

static void finish_register(struct poller *p, struct job *j, CURLcode cc, long status)
{
    struct carrier_slot *s = j->slot;
    const char *numbers[CARRIER_MAX_BATCH];
    bool registered[CARRIER_MAX_BATCH];
    long long delay = p->policy.interval_ms[ST_STATUS_PENDING];
    char err[512];
    enum st_err rc;

    if (cc != CURLE_OK) {
        snprintf(err, sizeof(err), "registration: %s", curl_easy_strerror(cc));
        fail_items(p, s, j->items, j->n, ST_RETRY, err, 0);
        return;
    }
    memset(registered, 0, sizeof(registered));
    for (size_t i = 0; i < j->n; i++)
        numbers[i] = j->items[i].tracking_number;
    rc = s->def->ops->parse_register_response(&s->ctx, status, j->body ? j->body : "", j->len,
                                              numbers, j->n, registered, err, sizeof(err));
    if (rc != ST_OK) {
        fail_items(p, s, j->items, j->n, rc, err, 0);
        return;
    }
    for (size_t i = 0; i < j->n; i++) {
        if (!registered[i]) {
            fail_items(p, s, &j->items[i], 1, ST_PERMANENT,
                       "the aggregator refused to register this number", 0);
            continue;
        }
        p->totals->registrations++;
        log_info("poll.registered", j->items[i].id, s->def->name,
                 "registered with the aggregator; first poll in %lld ms", delay);
        if (store_reschedule(p->conn, p->cfg->worker_id, &j->items[i], delay < 0 ? 60000 : delay,
                             "registered with the aggregator", err, sizeof(err)) != ST_OK)
            log_error("poll.store", j->items[i].id, s->def->name, "%s", err);
    }
}

/* Store the per-number results of a successful poll. */
static void store_results(struct poller *p, struct job *j, struct track_result *results)
{
    struct carrier_slot *s = j->slot;
    const char *name = s->def->name;
    char err[512];

    for (size_t i = 0; i < j->n; i++) {
        struct track_result *r = &results[i];
        struct claimed *c = &j->items[i];
        struct store_stats st;
        enum st_err rc;

        if (r->outcome == TRACK_NEEDS_REGISTER && s->def->ops->build_register_request != NULL) {
            if (!push(&s->to_register, &s->n_register, &s->register_cap, c))
                log_error("poll.register", c->id, name, "out of memory; the lease will expire");
            continue;
        }
        if (r->outcome == TRACK_ERROR || r->outcome == TRACK_NEEDS_REGISTER) {
            fail_items(p, s, c, 1, r->outcome == TRACK_ERROR ? r->err : ST_PERMANENT,
                       r->outcome == TRACK_ERROR ? r->errmsg : "carrier wants a registration",
                       0);
            continue;
        }
        rc = store_poll_result(p->conn, p->cfg->worker_id, c, r, &p->policy, &st, err,
                               sizeof(err));
        if (rc != ST_OK) {
            p->totals->failures++;
            log_error("poll.store", c->id, name, "%s", err);
            continue; /* the lease expires and the poll is repeated: nothing is lost */
        }
        p->totals->polls++;
        p->totals->events_new += st.events_new;
        s->stats.events_new += st.events_new;
        s->stats.dirty = true;
        p->totals->status_changes += st.status_changes;
        log_info("poll.done", c->id, name, "events=%d new=%d status=%s%s", st.events_seen,
                 st.events_new, st.status, r->outcome == TRACK_NOT_FOUND ? " (not found)" : "");
    }
}

/* Save every slot's changed counters (at most every STATS_FLUSH_MS unless
 * forced); a failure is logged and retried at the next flush. */
static void flush_stats(struct poller *p, bool force)
{
    char err[512];

    if (p->conn == NULL || (!force && now_ms() < p->next_stats_ms))
        return;
    p->next_stats_ms = now_ms() + STATS_FLUSH_MS;
    for (size_t i = 0; i < p->n_slots; i++) {
        struct carrier_slot *s = &p->slots[i];

        if (!s->stats.dirty)
            continue;
        if (poll_stats_flush(p->conn, p->cfg->worker_id, s->def->name, &s->stats,
                             breaker_names[s->breaker], err, sizeof(err)) != ST_OK) {
            log_warn("poller.stats", 0, s->def->name, "%s", err);
            return;
        }
        s->stats.dirty = false;
    }
}

/* Count a finished tracking request in its carrier's metrics. */
static void observe(struct job *j, enum poll_outcome o)
{
    poll_stats_observe(&j->slot->stats, o, now_ms() - j->started_ms);
}

static void finish_poll(struct poller *p, struct job *j, CURLcode cc, long status)
{
    struct track_result results[CARRIER_MAX_BATCH];
    const char *numbers[CARRIER_MAX_BATCH];
    struct carrier_slot *s = j->slot;
    const char *name = s->def->name;
    char err[512];
    enum st_err rc;

    if (cc != CURLE_OK) {
        if (j->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
            snprintf(err, sizeof(err), "response larger than %lld bytes", p->cfg->http_max_body);
            fail_items(p, s, j->items, j->n, ST_PERMANENT, err, 0);
        } else {
            snprintf(err, sizeof(err), "%.*s: %s", (int)strcspn(j->req.url, "?"), j->req.url,
                     curl_easy_strerror(cc));
            fail_items(p, s, j->items, j->n, ST_RETRY, err, 0);
        }
        observe(j, POLL_ERROR);
        breaker_record(p, s, true, j->probe);
        return;
    }
    if (status == 401 && s->def->auth == CARRIER_AUTH_OAUTH2) {
        /* The token expired, was used up or revoked: get a new one and try
         * again. Tokens wear out under concurrent use too (requests in
         * flight when a token is replaced, per-token use limits), so one
         * refusal of a fresh token proves nothing; a shipment refused again
         * and again is a credentials (scope) problem, bounded per shipment.
         * Wrong client credentials fail at the token endpoint. */
        bool requeued = false;

        observe(j, POLL_UNAUTHORIZED);
        if (s->token_obtained_ms <= j->started_ms) /* not already replaced */
            s->token_expires_ms = 0;
        for (size_t i = 0; i < j->n; i++) {
            if (j->items[i].auth_retries >= AUTH_RETRIES_MAX) {
                fail_items(p, s, &j->items[i], 1, ST_CONFIG,
                           "carrier refused every access token this shipment was polled with "
                           "(HTTP 401)", 0);
                continue;
            }
            j->items[i].auth_retries++;
            requeued |= push(&s->queue, &s->queued, &s->queue_cap, &j->items[i]);
        }
        if (requeued)
            log_info("carrier.token", 0, name, "HTTP 401: access token refused; refreshing");
        if (j->probe)
            s->probe_inflight = false;
        return;
    }
    memset(results, 0, sizeof(results));
    for (size_t i = 0; i < j->n; i++)
        numbers[i] = j->items[i].tracking_number;
    rc = s->def->ops->parse_response(&s->ctx, status, j->body ? j->body : "", j->len, numbers,
                                     j->n, results, err, sizeof(err));
    if (rc != ST_OK) {
        long long min_delay = 0;

        observe(j, status == 429 ? POLL_THROTTLED : rc == ST_CONFIG ? POLL_UNAUTHORIZED
                                                                    : POLL_ERROR);
        if (status == 429) {
            long secs = j->retry_after_s >= 0 ? j->retry_after_s : 1;

            min_delay = secs * 1000LL;
            s->pause_until = now_ms() + min_delay;
            p->totals->throttled++;
            log_warn("carrier.throttled", 0, name, "HTTP 429: pausing requests for %ld s", secs);
        }
        if (rc == ST_CONFIG)
            log_error("carrier.credentials", 0, name, "%s", err);
        fail_items(p, s, j->items, j->n, rc, err, min_delay);
        if (status != 429)
            breaker_record(p, s, rc != ST_CONFIG, j->probe);
        else if (j->probe)
            s->probe_inflight = false;
    } else {
        observe(j, POLL_OK);
        breaker_record(p, s, false, j->probe);
        store_results(p, j, results);
    }
    for (size_t i = 0; i < j->n; i++)
        track_result_reset(&results[i]);
}

static void drain_messages(struct poller *p)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
        struct job *j = NULL;
        long status = 0;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(p->multi, msg->easy_handle);
        if (j == NULL)
            continue;
        p->inflight--;
        j->slot->inflight--;
        if (ensure_db(p)) {
            switch (j->kind) {
            case JOB_TOKEN: finish_token(p, j, msg->data.result, status); break;
            case JOB_REGISTER: finish_register(p, j, msg->data.result, status); break;
            case JOB_POLL: finish_poll(p, j, msg->data.result, status); break;
            }
        }
        job_free(j);
    }
}

/* Release the leases of everything claimed and not started (shutdown). */
static void release_queues(struct poller *p)
{
    char err[512];

    for (size_t k = 0; k < p->n_slots; k++) {
        struct carrier_slot *s = &p->slots[k];
        size_t n = s->queued + s->n_register;
        long long *ids;

        if (n == 0 || p->conn == NULL)
            continue;
        ids = malloc(n * sizeof(*ids));
        if (ids != NULL) {
            for (size_t i = 0; i < s->queued; i++)
                ids[i] = s->queue[i].id;
            for (size_t i = 0; i < s->n_register; i++)
                ids[s->queued + i] = s->to_register[i].id;
            if (store_release(p->conn, p->cfg->worker_id, ids, n, err, sizeof(err)) != ST_OK)
                log_warn("poll.release", 0, s->def->name, "%s (the leases will expire)", err);
            else
                log_info("poll.release", 0, s->def->name, "released %zu claimed shipments", n);
            free(ids);
        }
        s->queued = s->n_register = 0;
    }
}

/* Claim for every carrier that has room and is allowed to send. */
static bool claim_all(struct poller *p)
{
    bool any = false;

    for (size_t i = 0; i < p->n_slots; i++) {
        struct carrier_slot *s = &p->slots[i];
        long long room, batch = p->cfg->poll_batch;
        bool probe;

        if (!s->enabled || s->queued > 0 || now_ms() < s->next_claim_ms ||
            now_ms() < s->pause_until)
            continue;
        if (s->breaker != BREAKER_CLOSED && !breaker_allows(p, s, &probe))
            continue;
        room = (long long)(s->concurrency - (s->inflight < s->concurrency ? s->inflight : 0)) *
               s->def->batch_max;
        if (room > batch)
            room = batch;
        if (room <= 0)
            continue;
        if (s->daily_quota > 0) {
            long long ok = quota_available(p, s, (room + s->def->batch_max - 1) /
                                                     s->def->batch_max);

            if (ok == 0) {
                defer_for_quota(p, s);
                s->next_claim_ms = now_ms() + 60000;
                continue;
            }
            if (ok * s->def->batch_max < room)
                room = ok * s->def->batch_max;
        }
        claim(p, s, room);
        any |= s->queued > 0;
    }
    return any;
}

static bool idle(struct poller *p)
{
    if (p->inflight > 0)
        return false;
    for (size_t i = 0; i < p->n_slots; i++)
        if (p->slots[i].queued > 0 || p->slots[i].n_register > 0)
            return false;
    return true;
}

void poller_policy(const struct st_config *cfg, struct poll_policy *pp)
{
    memset(pp, 0, sizeof(*pp));
    for (int i = 0; i < ST_STATUS__COUNT; i++)
        pp->interval_ms[i] = config_poll_interval(cfg, st_status_name((enum st_status)i));
    pp->retry_max_ms = cfg->poll_retry_max_ms;
    pp->jitter_pct = (int)cfg->poll_jitter_pct;
    pp->expire_after_ms = cfg->expire_after_ms;
    eta_policy_from_config(cfg, &pp->eta);
}

int poller_run(const struct st_config *cfg, const struct poller_opts *opts,
               struct poller_totals *totals)
{
    struct poller p;
    bool any = false;
    int still;

    memset(&p, 0, sizeof(p));
    memset(totals, 0, sizeof(*totals));
    p.cfg = cfg;
    p.opts = opts;
    p.totals = totals;
    poller_policy(cfg, &p.policy);
    setup_slots(&p);
    for (size_t i = 0; i < p.n_slots; i++)
        any |= p.slots[i].enabled;
    if (!any) {
        log_error("poller.start", 0, NULL,
                  "no carrier has credentials configured (e.g. SHIPTRACK_DHL_API_KEY); "
                  "nothing to poll");
        return 2; /* a configuration problem: restarting will not help */
    }
    p.multi = curl_multi_init();
    if (p.multi == NULL) {
        log_error("poller.start", 0, NULL, "curl_multi_init failed");
        return 1;
    }
    (void)curl_multi_setopt(p.multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX); /* best effort */
    p.tls_verify = cfg->carrier_tls_verify == NULL || strcmp(cfg->carrier_tls_verify, "off") != 0;
    if (!p.tls_verify)
        log_warn("poller.tls_verify_off", 0, NULL,
                 "TLS certificate verification of carrier APIs is OFF "
                 "(SHIPTRACK_CARRIER_TLS_VERIFY=off): use only against test servers");
    log_info("poller.start", 0, NULL, "worker %s polling (concurrency %lld, batch %lld)",
             cfg->worker_id, cfg->poll_concurrency, cfg->poll_batch);

    while (*opts->running || p.inflight > 0) {
        if (*opts->running) {
            if (!ensure_db(&p))
                break; /* only when stopped while reconnecting */
            ensure_partitions(&p);
            claim_all(&p);
            if (opts->until_idle && idle(&p)) {
                bool due = false;

                /* idle means: nothing claimable right now, nothing paused that is due */
                for (size_t i = 0; i < p.n_slots; i++)
                    due |= p.slots[i].enabled &&
                           (now_ms() < p.slots[i].pause_until ||
                            p.slots[i].breaker != BREAKER_CLOSED);
                if (!due)
                    break;
            }
        } else
            release_queues(&p);
        start_jobs(&p);
        curl_multi_perform(p.multi, &still);
        drain_messages(&p);
        flush_stats(&p, false);
        if (opts->until_idle && idle(&p)) {
            for (size_t i = 0; i < p.n_slots; i++)
                p.slots[i].next_claim_ms = 0; /* look again at once */
            if (!*opts->running)
                continue;
        }
        /* short naps while work is pending (limits may free up), longer when idle */
        curl_multi_poll(p.multi, NULL, 0, idle(&p) ? (cfg->poll_idle_ms < 200 ? (int)cfg->poll_idle_ms : 200) : 20,
                        NULL);
    }
    release_queues(&p);
    flush_stats(&p, true);
    for (size_t i = 0; i < p.n_slots; i++) {
        return_quota(&p, &p.slots[i]);
        free(p.slots[i].queue);
        free(p.slots[i].to_register);
    }
    curl_multi_cleanup(p.multi);
    if (p.conn != NULL)
        PQfinish(p.conn);
    log_info("poller.stop", 0, NULL, "polled %ld shipments (%ld failed), %ld new events, %ld "
             "status changes, %ld requests", totals->polls, totals->failures, totals->events_new,
             totals->status_changes, totals->requests);
    return 0;
}
