/*
 * poller.c - the poller loop.
 *
 * One pass of the loop: claim due shipments when the queue is empty, start
 * requests while fewer than SHIPTRACK_POLL_CONCURRENCY are in flight, let curl
 * move bytes, and finish every completed request (parse with the driver,
 * store in one transaction per shipment). On stop: no more claims, leases of
 * queued-but-unstarted shipments are released, in-flight requests finish and
 * are stored, then the loop returns.
 *
 * Wording: a "job" is one HTTP request for 1..batch_max shipments of one
 * carrier; the "queue" holds claimed shipments not yet in a job.
 */
#include "poller.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carrier.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "store.h"

/* A carrier as this process uses it: driver, credentials, back-pressure. */
struct carrier_slot {
    const struct carrier_def *def;
    struct carrier_ctx ctx;
    bool enabled;          /* credentials configured */
    long long pause_until; /* ms clock: no new requests before (429 Retry-After) */
};

struct job {
    struct carrier_slot *slot;
    struct claimed items[CARRIER_MAX_BATCH];
    size_t n;
    struct carrier_request req;
    struct curl_slist *headers;
    CURL *easy;
    char *body;            /* response body, capped at max_body */
    size_t len, cap, max_body;
    bool too_big;
    long retry_after_s;    /* from a Retry-After header, -1 if none */
    long long started_ms;
};

struct poller {
    const struct st_config *cfg;
    const struct poller_opts *opts;
    struct poller_totals *totals;
    PGconn *conn;
    CURLM *multi;
    struct carrier_slot slots[16];
    size_t n_slots;
    struct claimed *queue;  /* claimed, not started */
    size_t queued, queue_cap;
    size_t inflight;
    struct poll_policy policy;
    long long next_claim_ms;
    long long next_partitions_ms;
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Credentials and endpoints of each carrier, from the configuration. */
static void setup_slots(struct poller *p)
{
    const struct st_config *cfg = p->cfg;

    for (size_t i = 0; i < carrier_defs_count && p->n_slots < 16; i++) {
        const struct carrier_def *def = carrier_defs[i];
        struct carrier_slot *s = &p->slots[p->n_slots++];

        memset(s, 0, sizeof(*s));
        s->def = def;
        if (strcmp(def->name, "dhl") == 0) {
            s->ctx.base_url = cfg->dhl_base_url;
            s->ctx.api_key = cfg->dhl_api_key;
            s->ctx.language = cfg->dhl_language;
            s->enabled = cfg->dhl_api_key != NULL;
        }
        if (!s->enabled)
            log_info("poller.carrier", 0, def->name,
                     "no credentials configured; shipments of this carrier are not polled");
    }
}

static struct carrier_slot *find_slot(struct poller *p, const char *name)
{
    for (size_t i = 0; i < p->n_slots; i++)
        if (strcmp(p->slots[i].def->name, name) == 0)
            return &p->slots[i];
    return NULL;
}

/* Text array literal of enabled carriers for the claim query: {dhl,ups}. */
static void enabled_carriers(struct poller *p, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "{");

    for (size_t i = 0; i < p->n_slots && o < cap; i++)
        if (p->slots[i].enabled)
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", o > 1 ? "," : "",
                                  p->slots[i].def->name);
    if (o < cap)
        snprintf(buf + o, cap - o, "}");
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

/* Claim up to poll_batch due shipments into the queue. */
static void claim(struct poller *p)
{
    char carriers[512], lease[32], limit[24], err[512];
    const char *params[4];
    enum st_err kind = ST_OK;
    PGresult *res;
    int n;

    enabled_carriers(p, carriers, sizeof(carriers));
    snprintf(lease, sizeof(lease), "%lld", p->cfg->poll_lease_ms);
    snprintf(limit, sizeof(limit), "%lld", p->cfg->poll_batch);
    params[0] = p->cfg->worker_id;
    params[1] = lease;
    params[2] = carriers;
    params[3] = limit;
    res = db_exec(p->conn, "claim due shipments",
                  "UPDATE shipments s SET lease_owner = $1,"
                  " lease_until = now() + make_interval(secs => $2::float8 / 1000)"
                  " FROM (SELECT id FROM shipments"
                  "       WHERE next_poll_at <= now()"
                  "         AND (lease_until IS NULL OR lease_until < now())"
                  "         AND carrier = ANY($3::text[])"
                  "       ORDER BY next_poll_at LIMIT $4::int"
                  "       FOR UPDATE SKIP LOCKED) due"
                  " WHERE s.id = due.id"
                  " RETURNING s.id, s.carrier, s.tracking_number",
                  4, params, PGRES_TUPLES_OK, &kind, err, sizeof(err));
    if (res == NULL) {
        log_error("poll.claim", 0, NULL, "%s", err);
        p->next_claim_ms = now_ms() + p->cfg->poll_idle_ms;
        return;
    }
    n = PQntuples(res);
    if ((size_t)n > p->queue_cap - p->queued) {
        size_t cap = p->queued + (size_t)n;
        struct claimed *q = realloc(p->queue, cap * sizeof(*q));

        if (q == NULL) {
            log_error("poll.claim", 0, NULL, "out of memory queueing %d shipments", n);
            PQclear(res);
            return; /* the leases expire and someone polls them later */
        }
        p->queue = q;
        p->queue_cap = cap;
    }
    for (int i = 0; i < n; i++) {
        struct claimed *c = &p->queue[p->queued++];

        c->id = atoll(PQgetvalue(res, i, 0));
        snprintf(c->carrier, sizeof(c->carrier), "%s", PQgetvalue(res, i, 1));
        snprintf(c->tracking_number, sizeof(c->tracking_number), "%s", PQgetvalue(res, i, 2));
    }
    PQclear(res);
    if (n == 0)
        p->next_claim_ms = now_ms() + p->cfg->poll_idle_ms;
    else
        log_debug("poll.claim", 0, NULL, "claimed %d due shipments", n);
}

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

/* Record one failure for every shipment of a job. */
static void fail_job(struct poller *p, struct job *j, enum st_err kind, const char *reason,
                     long long min_delay_ms)
{
    char err[512];

    for (size_t i = 0; i < j->n; i++) {
        log_warn("poll.failed", j->items[i].id, j->slot->def->name, "%s: %s", st_err_name(kind),
                 reason);
        p->totals->failures++;
        if (store_poll_failure(p->conn, p->cfg->worker_id, &j->items[i], kind, reason,
                               min_delay_ms, &p->policy, err, sizeof(err)) != ST_OK)
            log_error("poll.store", j->items[i].id, j->slot->def->name, "%s", err);
    }
}

/* Turn queued shipments of one carrier into a job and start it. */
static bool start_job(struct poller *p, struct carrier_slot *slot, struct claimed *items,
                      size_t n)
{
    const char *numbers[CARRIER_MAX_BATCH];
    char err[512];
    struct job *j = calloc(1, sizeof(*j));
    enum st_err rc;
    CURLMcode mc;

    if (j == NULL)
        return false;
    j->slot = slot;
    j->n = n;
    j->retry_after_s = -1;
    j->max_body = (size_t)p->cfg->http_max_body;
    memcpy(j->items, items, n * sizeof(*items));
    for (size_t i = 0; i < n; i++)
        numbers[i] = j->items[i].tracking_number;
    rc = slot->def->ops->build_request(&slot->ctx, numbers, n, &j->req, err, sizeof(err));
    if (rc != ST_OK) {
        fail_job(p, j, rc, err, 0);
        job_free(j);
        return true;
    }
    j->easy = curl_easy_init();
    if (j->easy == NULL) {
        job_free(j);
        return false;
    }
    for (size_t i = 0; i < j->req.n_headers; i++) {
        struct curl_slist *h = curl_slist_append(j->headers, j->req.headers[i]);

        if (h == NULL) {
            job_free(j);
            return false;
        }
        j->headers = h;
    }
    curl_easy_setopt(j->easy, CURLOPT_URL, j->req.url);
    curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
    curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(j->easy, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)p->cfg->http_connect_timeout_ms);
    curl_easy_setopt(j->easy, CURLOPT_TIMEOUT_MS, (long)p->cfg->http_timeout_ms);
    curl_easy_setopt(j->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)p->cfg->http_max_body);
    curl_easy_setopt(j->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(j->easy, CURLOPT_USERAGENT, "shiptrack/" SHIPTRACK_VERSION);
    curl_easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(j->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(j->easy, CURLOPT_PIPEWAIT, 1L);
    if (j->req.method == CARRIER_POST) {
        curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->req.body ? j->req.body : "");
        curl_easy_setopt(j->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->req.body_len);
    }
    mc = curl_multi_add_handle(p->multi, j->easy);
    if (mc != CURLM_OK) {
        log_error("poll.start", 0, slot->def->name, "curl: %s", curl_multi_strerror(mc));
        job_free(j);
        return false;
    }
    j->started_ms = now_ms();
    p->inflight++;
    return true;
}

/* Start jobs from the queue while there is room. */
static void start_jobs(struct poller *p)
{
    size_t i = 0;

    while (i < p->queued && p->inflight < (size_t)p->cfg->poll_concurrency) {
        struct carrier_slot *slot = find_slot(p, p->queue[i].carrier);
        struct claimed batch[CARRIER_MAX_BATCH];
        size_t n = 0, max;

        if (slot == NULL || !slot->enabled) { /* claimed by name: cannot happen, but be safe */
            i++;
            continue;
        }
        if (slot->pause_until > now_ms()) {
            i++;
            continue;
        }
        max = slot->def->batch_max < CARRIER_MAX_BATCH ? slot->def->batch_max : CARRIER_MAX_BATCH;
        /* pack queued shipments of this carrier into one batch, keep the rest in order */
        for (size_t k = i; k < p->queued && n < max;) {
            if (strcmp(p->queue[k].carrier, slot->def->name) == 0) {
                batch[n++] = p->queue[k];
                memmove(&p->queue[k], &p->queue[k + 1], (p->queued - k - 1) * sizeof(*p->queue));
                p->queued--;
            } else
                k++;
        }
        if (!start_job(p, slot, batch, n)) {
            log_error("poll.start", 0, slot->def->name, "cannot start a request (out of memory)");
            break; /* leases expire; the shipments are polled later */
        }
    }
}

/* A transfer finished: parse and store. */
static void finish_job(struct poller *p, struct job *j, CURLcode cc)
{
    struct track_result results[CARRIER_MAX_BATCH];
    const char *numbers[CARRIER_MAX_BATCH];
    const char *name = j->slot->def->name;
    char err[512];
    long status = 0;
    enum st_err rc;

    p->inflight--;
    if (cc != CURLE_OK) {
        if (j->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
            snprintf(err, sizeof(err), "response larger than %lld bytes", p->cfg->http_max_body);
            fail_job(p, j, ST_PERMANENT, err, 0);
        } else {
            snprintf(err, sizeof(err), "%.*s: %s", (int)strcspn(j->req.url, "?"), j->req.url, curl_easy_strerror(cc));
            fail_job(p, j, ST_RETRY, err, 0);
        }
        return;
    }
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    memset(results, 0, sizeof(results));
    for (size_t i = 0; i < j->n; i++)
        numbers[i] = j->items[i].tracking_number;
    rc = j->slot->def->ops->parse_response(&j->slot->ctx, status, j->body ? j->body : "", j->len,
                                           numbers, j->n, results, err, sizeof(err));
    if (rc != ST_OK) {
        long long min_delay = 0;

        if (status == 429) {
            long secs = j->retry_after_s >= 0 ? j->retry_after_s : 1;

            min_delay = secs * 1000LL;
            j->slot->pause_until = now_ms() + min_delay;
            log_warn("carrier.throttled", 0, name, "HTTP 429: pausing requests for %ld s", secs);
        }
        if (rc == ST_CONFIG)
            log_error("carrier.credentials", 0, name, "%s", err);
        fail_job(p, j, rc, err, min_delay);
    } else {
        for (size_t i = 0; i < j->n; i++) {
            struct track_result *r = &results[i];
            struct claimed *c = &j->items[i];
            struct store_stats st;

            if (r->outcome == TRACK_ERROR) {
                p->totals->failures++;
                log_warn("poll.failed", c->id, name, "%s: %s", st_err_name(r->err), r->errmsg);
                if (store_poll_failure(p->conn, p->cfg->worker_id, c, r->err, r->errmsg, 0,
                                       &p->policy, err, sizeof(err)) != ST_OK)
                    log_error("poll.store", c->id, name, "%s", err);
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
            p->totals->status_changes += st.status_changes;
            log_info("poll.done", c->id, name, "events=%d new=%d status=%s%s", st.events_seen,
                     st.events_new, st.status, r->outcome == TRACK_NOT_FOUND ? " (not found)" : "");
        }
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

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        curl_multi_remove_handle(p->multi, msg->easy_handle);
        if (j != NULL) {
            if (ensure_db(p))
                finish_job(p, j, msg->data.result);
            else
                p->inflight--;
            job_free(j);
        }
    }
}

static void release_queue(struct poller *p)
{
    long long *ids;
    char err[512];

    if (p->queued == 0 || p->conn == NULL)
        return;
    ids = malloc(p->queued * sizeof(*ids));
    if (ids != NULL) {
        for (size_t i = 0; i < p->queued; i++)
            ids[i] = p->queue[i].id;
        if (store_release(p->conn, p->cfg->worker_id, ids, p->queued, err, sizeof(err)) != ST_OK)
            log_warn("poll.release", 0, NULL, "%s (the leases will expire)", err);
        else
            log_info("poll.release", 0, NULL, "released %zu claimed shipments", p->queued);
        free(ids);
    }
    p->queued = 0;
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
    p.policy.interval_ms = cfg->poll_interval_ms;
    p.policy.retry_max_ms = cfg->poll_retry_max_ms;
    p.policy.jitter_pct = (int)cfg->poll_jitter_pct;
    setup_slots(&p);
    for (size_t i = 0; i < p.n_slots; i++)
        any |= p.slots[i].enabled;
    if (!any) {
        log_error("poller.start", 0, NULL,
                  "no carrier has credentials configured (e.g. SHIPTRACK_DHL_API_KEY); "
                  "nothing to poll");
        return 1;
    }
    p.multi = curl_multi_init();
    if (p.multi == NULL) {
        log_error("poller.start", 0, NULL, "curl_multi_init failed");
        return 1;
    }
    curl_multi_setopt(p.multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    log_info("poller.start", 0, NULL, "worker %s polling (concurrency %lld, batch %lld)",
             cfg->worker_id, cfg->poll_concurrency, cfg->poll_batch);

    while (*opts->running || p.inflight > 0) {
        long long now = now_ms();
        long timeout;

        if (*opts->running && p.queued == 0 && p.inflight < (size_t)cfg->poll_concurrency &&
            now >= p.next_claim_ms) {
            if (!ensure_db(&p))
                break; /* only when stopped while reconnecting */
            ensure_partitions(&p);
            claim(&p);
            if (opts->until_idle && p.queued == 0 && p.inflight == 0)
                break;
        }
        if (!*opts->running)
            release_queue(&p);
        start_jobs(&p);
        curl_multi_perform(p.multi, &still);
        drain_messages(&p);
        if (opts->until_idle && p.queued == 0 && p.inflight == 0)
            continue; /* claim again at once */
        timeout = p.queued > 0 || p.inflight > 0 ? 100 : (long)(p.next_claim_ms - now_ms());
        if (timeout > 200)
            timeout = 200;
        if (timeout > 0)
            curl_multi_poll(p.multi, NULL, 0, (int)timeout, NULL);
    }
    release_queue(&p);
    curl_multi_cleanup(p.multi);
    if (p.conn != NULL)
        PQfinish(p.conn);
    free(p.queue);
    log_info("poller.stop", 0, NULL, "polled %ld shipments (%ld failed), %ld new events, %ld "
             "status changes", totals->polls, totals->failures, totals->events_new,
             totals->status_changes);
    return 0;
}
