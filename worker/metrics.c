/*
 * metrics.c - poller counters and the Prometheus exposition (metrics.h).
 *
 * Wording: a "source" is one query (or one Kafka lookup) behind one or more
 * series; a failing source is left out of the page and counted, so one slow
 * or broken table never hides the rest.
 */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "db.h"
#include "log.h"

#define KAFKA_TIMEOUT_MS 2000
#define BREAKER_FRESH "1 minute" /* rows older than this are from stopped pollers */

const double metrics_latency_le[METRICS_LATENCY_BUCKETS] = {
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

void poll_stats_observe(struct poll_stats *s, enum poll_outcome o, long long latency_ms)
{
    size_t b = 0;

    if (latency_ms < 0)
        latency_ms = 0;
    s->polls[o]++;
    while (b < METRICS_LATENCY_BUCKETS && (double)latency_ms > metrics_latency_le[b] * 1000.0)
        b++;
    s->buckets[b]++;
    s->latency_sum_ms += latency_ms;
    s->dirty = true;
}

enum st_err poll_stats_flush(PGconn *conn, const char *worker_id, const char *carrier,
                             const struct poll_stats *s, const char *breaker, char *err,
                             size_t errlen)
{
    char n[POLL__COUNT][24], ev[24], sum[24], arr[(METRICS_LATENCY_BUCKETS + 1) * 24 + 4];
    const char *p[10];
    enum st_err kind = ST_OK;
    size_t off = 0;
    PGresult *res;

    for (int i = 0; i < POLL__COUNT; i++) {
        snprintf(n[i], sizeof(n[i]), "%lld", s->polls[i]);
        p[2 + i] = n[i];
    }
    arr[off++] = '{';
    for (size_t i = 0; i <= METRICS_LATENCY_BUCKETS; i++)
        off += (size_t)snprintf(arr + off, sizeof(arr) - off, "%s%lld", i ? "," : "",
                                s->buckets[i]);
    snprintf(arr + off, sizeof(arr) - off, "}");
    snprintf(ev, sizeof(ev), "%lld", s->events_new);
    snprintf(sum, sizeof(sum), "%lld", s->latency_sum_ms);
    p[0] = worker_id;
    p[1] = carrier;
    p[6] = ev;
    p[7] = arr;
    p[8] = sum;
    p[9] = breaker;
    res = db_exec(conn, "flush poller stats",
                  "INSERT INTO poller_stats (worker_id, carrier, polls_ok, polls_error,"
                  " polls_throttled, polls_unauthorized, events_new, latency_buckets,"
                  " latency_sum_ms, breaker, updated_at)"
                  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint[], $9, $10, now())"
                  " ON CONFLICT (worker_id, carrier) DO UPDATE SET polls_ok = EXCLUDED.polls_ok,"
                  " polls_error = EXCLUDED.polls_error, polls_throttled = EXCLUDED.polls_throttled,"
                  " polls_unauthorized = EXCLUDED.polls_unauthorized,"
                  " events_new = EXCLUDED.events_new, latency_buckets = EXCLUDED.latency_buckets,"
                  " latency_sum_ms = EXCLUDED.latency_sum_ms, breaker = EXCLUDED.breaker,"
                  " updated_at = now()",
                  10, p, PGRES_COMMAND_OK, &kind, err, errlen);
    if (res == NULL)
        return kind;
    PQclear(res);
    return ST_OK;
}

enum st_err metrics_kafka_lag(rd_kafka_t *rk, const char *group, const char *topic,
                              long long *lag, char *err, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_topic_t *t;
    rd_kafka_resp_err_t e;
    enum st_err rc = ST_OK;
    int n;

    *lag = 0;
    if ((t = rd_kafka_topic_new(rk, topic, NULL)) == NULL)
        return st_fail(err, errlen, ST_RETRY, "kafka: cannot use topic %s", topic);
    e = rd_kafka_metadata(rk, 0, t, &md, KAFKA_TIMEOUT_MS);
    rd_kafka_topic_destroy(t);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err) {
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        return st_fail(err, errlen, ST_RETRY, "kafka: metadata of %s: %s", topic,
                       rd_kafka_err2str(e));
    }
    n = md->topics[0].partition_cnt;
    parts = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id);
    rd_kafka_metadata_destroy(md);
    e = rd_kafka_committed(rk, parts, KAFKA_TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = st_fail(err, errlen, ST_RETRY, "kafka: committed offsets of group %s: %s", group,
                     rd_kafka_err2str(e));
    for (int i = 0; rc == ST_OK && i < parts->cnt; i++) {
        int64_t lo = 0, hi = 0, at = parts->elems[i].offset;

        e = rd_kafka_query_watermark_offsets(rk, topic, parts->elems[i].partition, &lo, &hi,
                                             KAFKA_TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = st_fail(err, errlen, ST_RETRY, "kafka: watermarks of %s[%d]: %s", topic,
                         (int)parts->elems[i].partition, rd_kafka_err2str(e));
            break;
        }
        if (at < 0) /* nothing committed: everything retained is still to read */
            at = lo;
        if (hi > at)
            *lag += hi - at;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

/* ---- exposition ---- */

/* Append a label value escaped as the text format wants (\\, \", \n). */
static void label_value(struct hbuf *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            hbuf_printf(out, "\\%c", *s);
        else if (*s == '\n')
            hbuf_puts(out, "\\n");
        else
            hbuf_add(out, s, 1);
    }
}

static void header(struct hbuf *out, const char *name, const char *type, const char *help)
{
    hbuf_printf(out, "# HELP shiptrack_%s %s\n# TYPE shiptrack_%s %s\n", name, help, name, type);
}

/* One sample: shiptrack_name{labels[i]="values[i]",...} value. */
static void sample(struct hbuf *out, const char *name, const char *const *labels,
                   const char *const *values, int n, const char *value)
{
    hbuf_printf(out, "shiptrack_%s", name);
    for (int i = 0; i < n; i++) {
        hbuf_printf(out, "%s%s=\"", i ? "," : "{", labels[i]);
        label_value(out, values[i]);
        hbuf_puts(out, "\"");
    }
    hbuf_printf(out, "%s %s\n", n ? "}" : "", value);
}

/* A source whose query returns label columns then one value column. */
struct source {
    const char *name, *type, *help;
    const char *labels[3];
    int nlabels;
    const char *sql;
};

static const struct source sources[] = {
    { "polls_total", "counter", "Carrier requests by outcome, summed over all pollers.",
      { "carrier", "outcome" }, 2,
      "SELECT carrier, o.outcome, sum(o.n)::text FROM poller_stats, LATERAL (VALUES"
      " ('ok', polls_ok), ('error', polls_error), ('throttled', polls_throttled),"
      " ('unauthorized', polls_unauthorized)) o(outcome, n) GROUP BY 1, 2 ORDER BY 1, 2" },
    { "events_stored_total", "counter", "New tracking events stored by the pollers.",
      { "carrier" }, 1,
      "SELECT carrier, sum(events_new)::text FROM poller_stats GROUP BY 1 ORDER BY 1" },
    { "carrier_breaker_state", "gauge",
      "Circuit breaker of a carrier: 0 closed, 1 half-open, 2 open (worst running poller).",
      { "carrier" }, 1,
      "SELECT carrier, max(CASE breaker WHEN 'open' THEN 2 WHEN 'half-open' THEN 1 ELSE 0 END)"
      "::text FROM poller_stats WHERE updated_at > now() - interval '" BREAKER_FRESH "'"
      " GROUP BY 1 ORDER BY 1" },
    { "unmapped_events", "gauge", "Stored events whose carrier code is not mapped yet.",
      { "carrier" }, 1,
      "SELECT s.carrier, count(*)::text FROM tracking_events e"
      " JOIN shipments s ON s.id = e.shipment_id WHERE e.substatus = 'unmapped'"
      " GROUP BY 1 ORDER BY 1" },
    { "outbox_backlog", "gauge", "Outbox rows not yet published to Kafka.", { NULL }, 0,
      "SELECT count(*)::text FROM outbox WHERE sent_at IS NULL" },
    { "notifications", "gauge", "Notification rows by channel and status.",
      { "channel", "status" }, 2,
      "SELECT channel, status, count(*)::text FROM notifications GROUP BY 1, 2 ORDER BY 1, 2" },
    { "notifications_deferred", "gauge",
      "Notifications waiting for a quiet-hours window or a retry.", { NULL }, 0,
      "SELECT count(*)::text FROM notifications WHERE status IN ('deferred', 'failed_temporary')" },
    { "customs_holds_open", "gauge", "Open customs holds by reason and who must act.",
      { "reason", "actor" }, 2,
      "SELECT reason, actor, count(*)::text FROM customs_holds WHERE closed_at IS NULL"
      " GROUP BY 1, 2 ORDER BY 1, 2" },
    { "stuck_parcels", "gauge", "Open scanner alerts (stuck parcels and long holds).",
      { "kind", "carrier" }, 2,
      "SELECT a.kind, s.carrier, count(*)::text FROM alerts a"
      " JOIN shipments s ON s.id = a.shipment_id WHERE a.cleared_at IS NULL"
      " GROUP BY 1, 2 ORDER BY 1, 2" },
};

/* Run one source; false when its query failed. */
static bool render_source(PGconn *conn, const struct source *src, struct hbuf *out)
{
    char err[512];
    PGresult *res = db_exec(conn, src->name, src->sql, 0, NULL, PGRES_TUPLES_OK, NULL, err,
                            sizeof(err));

    if (res == NULL) {
        log_warn("api.metrics", 0, NULL, "%s", err);
        return false;
    }
    header(out, src->name, src->type, src->help);
    for (int r = 0; r < PQntuples(res); r++) {
        const char *values[3];

        for (int i = 0; i < src->nlabels; i++)
            values[i] = PQgetvalue(res, r, i);
        sample(out, src->name, src->labels, values, src->nlabels,
               PQgetvalue(res, r, src->nlabels));
    }
    PQclear(res);
    return true;
}

/* The latency histogram: per-bucket sums turned cumulative per carrier. */
static bool render_latency(PGconn *conn, struct hbuf *out)
{
    static const char *const labels[2] = { "carrier", "le" };
    char err[512], le[32], v[32], prev[40] = "";
    long long cum = 0;
    PGresult *res;

    res = db_exec(conn, "latency histogram",
                  "SELECT p.carrier, b.i, sum(b.n), (SELECT sum(latency_sum_ms) FROM poller_stats q"
                  "   WHERE q.carrier = p.carrier)"
                  " FROM poller_stats p, unnest(p.latency_buckets) WITH ORDINALITY b(n, i)"
                  " GROUP BY 1, 2 ORDER BY 1, 2",
                  0, NULL, PGRES_TUPLES_OK, NULL, err, sizeof(err));
    if (res == NULL) {
        log_warn("api.metrics", 0, NULL, "%s", err);
        return false;
    }
    header(out, "poll_duration_seconds", "histogram", "Carrier request latency.");
    for (int r = 0; r <= PQntuples(res); r++) {
        const char *carrier = r < PQntuples(res) ? PQgetvalue(res, r, 0) : "";
        const char *values[2];

        if (prev[0] != '\0' && strcmp(carrier, prev) != 0) { /* close the previous carrier */
            values[0] = prev;
            snprintf(v, sizeof(v), "%lld", cum);
            values[1] = "+Inf";
            sample(out, "poll_duration_seconds_bucket", labels, values, 2, v);
            snprintf(v, sizeof(v), "%.3f", atoll(PQgetvalue(res, r - 1, 3)) / 1000.0);
            sample(out, "poll_duration_seconds_sum", labels, values, 1, v);
            snprintf(v, sizeof(v), "%lld", cum);
            sample(out, "poll_duration_seconds_count", labels, values, 1, v);
            cum = 0;
        }
        if (r == PQntuples(res))
            break;
        snprintf(prev, sizeof(prev), "%s", carrier);
        {
            int i = atoi(PQgetvalue(res, r, 1)); /* 1-based */

            cum += atoll(PQgetvalue(res, r, 2));
            if (i > METRICS_LATENCY_BUCKETS)
                continue; /* the +Inf bucket: written when the carrier closes */
            values[0] = carrier;
            snprintf(le, sizeof(le), "%g", metrics_latency_le[i - 1]);
            values[1] = le;
            snprintf(v, sizeof(v), "%lld", cum);
            sample(out, "poll_duration_seconds_bucket", labels, values, 2, v);
        }
    }
    PQclear(res);
    return true;
}

/* Requests left today of each carrier's daily quota (carriers with one). */
static bool render_quota(PGconn *conn, const struct st_config *cfg, struct hbuf *out)
{
    static const char *const labels[1] = { "carrier" };
    char err[512], v[32];
    PGresult *res;

    res = db_exec(conn, "quota used",
                  "SELECT carrier, used FROM carrier_quota"
                  " WHERE day = (now() AT TIME ZONE 'UTC')::date",
                  0, NULL, PGRES_TUPLES_OK, NULL, err, sizeof(err));
    if (res == NULL) {
        log_warn("api.metrics", 0, NULL, "%s", err);
        return false;
    }
    header(out, "carrier_quota_remaining", "gauge",
           "Requests left today (UTC) of the carrier account's daily quota.");
    for (size_t i = 0; i < carrier_defs_count; i++) {
        const struct carrier_def *d = carrier_defs[i];
        const struct carrier_conf *cc = config_carrier(cfg, d->name);
        long long quota = cc != NULL && cc->daily_quota >= 0 ? cc->daily_quota
                                                              : (long long)d->rate_per_day;
        long long used = 0;

        if (quota <= 0)
            continue; /* unlimited */
        for (int r = 0; r < PQntuples(res); r++)
            if (strcmp(PQgetvalue(res, r, 0), d->name) == 0)
                used = atoll(PQgetvalue(res, r, 1));
        snprintf(v, sizeof(v), "%lld", quota > used ? quota - used : 0);
        sample(out, "carrier_quota_remaining", labels, &d->name, 1, v);
    }
    PQclear(res);
    return true;
}

void metrics_render(PGconn *conn, const struct st_config *cfg, rd_kafka_t *rk, struct hbuf *out)
{
    int errors = 0;
    char v[32];

    header(out, "up", "gauge", "The api process is serving.");
    sample(out, "up", NULL, NULL, 0, "1");
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
        errors += !render_source(conn, &sources[i], out);
    errors += !render_latency(conn, out);
    errors += !render_quota(conn, cfg, out);
    if (rk != NULL) {
        static const char *const labels[2] = { "group", "topic" };
        static const char *const values[2] = { "shiptrack-notifier", "shiptrack.events.v1" };
        char err[256];
        long long lag;

        if (metrics_kafka_lag(rk, values[0], values[1], &lag, err, sizeof(err)) == ST_OK) {
            header(out, "kafka_consumer_lag", "gauge",
                   "Messages of a topic the consumer group has not committed yet.");
            snprintf(v, sizeof(v), "%lld", lag);
            sample(out, "kafka_consumer_lag", labels, values, 2, v);
        } else {
            log_warn("api.metrics", 0, NULL, "%s", err);
            errors++;
        }
    }
    header(out, "scrape_errors", "gauge", "Metric sources that failed during this scrape.");
    snprintf(v, sizeof(v), "%d", errors);
    sample(out, "scrape_errors", NULL, NULL, 0, v);
}
