/*
 * metrics.h - Prometheus metrics: poller counters and the /metrics page.
 *
 * Pollers are separate processes, so each keeps its counters in memory
 * (struct poll_stats per carrier) and flushes them to the poller_stats table
 * (sql/006) every few seconds; the api role sums those rows and adds gauges
 * read from the database at scrape time, plus the notifier's Kafka consumer
 * lag. Series (all prefixed shiptrack_):
 *
 *   polls_total{carrier,outcome}           carrier requests by outcome (counter)
 *   poll_duration_seconds{carrier}         request latency (histogram)
 *   events_stored_total{carrier}           new tracking events stored (counter)
 *   carrier_breaker_state{carrier}         0 closed, 1 half-open, 2 open (worst poller)
 *   carrier_quota_remaining{carrier}       requests left today of the daily quota
 *   unmapped_events{carrier}               stored events whose code is not mapped yet
 *   outbox_backlog                         outbox rows not yet published
 *   kafka_consumer_lag{group,topic}        messages the notifier has not committed
 *   notifications{channel,status}          notification rows by status
 *   notifications_deferred                 rows waiting for a window or a retry
 *   customs_holds_open{reason,actor}       open customs holds
 *   stuck_parcels{kind,carrier}            open alerts of the scanner
 *   scrape_errors                          sources that failed during this scrape
 */
#ifndef ST_METRICS_H
#define ST_METRICS_H

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "config.h"
#include "err.h"
#include "html.h"

/* Upper bounds (seconds) of the latency buckets; one more bucket counts
 * the rest (+Inf). */
#define METRICS_LATENCY_BUCKETS 10
extern const double metrics_latency_le[METRICS_LATENCY_BUCKETS];

/* How one carrier request ended. */
enum poll_outcome {
    POLL_OK,            /* answered and parsed (found or not found) */
    POLL_ERROR,         /* transport error, 5xx, malformed or oversized body */
    POLL_THROTTLED,     /* 429 */
    POLL_UNAUTHORIZED,  /* 401: token or credentials refused */
    POLL__COUNT
};

/* One poller process's counters for one carrier, since it started. */
struct poll_stats {
    long long polls[POLL__COUNT];
    long long buckets[METRICS_LATENCY_BUCKETS + 1]; /* per bucket, last = +Inf */
    long long latency_sum_ms;
    long long events_new;
    bool dirty;                          /* changed since the last flush */
};

/* Count one request that took latency_ms. */
void poll_stats_observe(struct poll_stats *s, enum poll_outcome o, long long latency_ms);

/* Save s as the row of (worker_id, carrier) with the breaker's state name
 * ("closed", "half-open", "open"). */
enum st_err poll_stats_flush(PGconn *conn, const char *worker_id, const char *carrier,
                             const struct poll_stats *s, const char *breaker, char *err,
                             size_t errlen);

/* Kafka consumer lag of group on topic: sum over partitions of the high
 * watermark minus the committed offset (the low watermark when nothing is
 * committed). rk: any client of the cluster. */
enum st_err metrics_kafka_lag(rd_kafka_t *rk, const char *group, const char *topic,
                              long long *lag, char *err, size_t errlen);

/* Write the Prometheus text exposition (format 0.0.4) into out. A source
 * that fails is left out and counted in shiptrack_scrape_errors; rk may be
 * NULL (no Kafka configured: no lag series). */
void metrics_render(PGconn *conn, const struct st_config *cfg, rd_kafka_t *rk, struct hbuf *out);

#endif
