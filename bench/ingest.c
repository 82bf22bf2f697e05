/*
 * ingest.c - bench/ingest's driver: normalized events stored per second through
 * the poller's own storage path (store_poll_result), against COPY of the same
 * rows into the same table, in one process on one connection each.
 *
 * usage: shiptrack-bench-ingest DATABASE_URL SHIPMENTS EVENTS_PER_POLL
 *
 * The database must be migrated. The driver inserts 2 x SHIPMENTS shipments
 * (carrier "dhl", numbers BENCH...), then:
 *   ours  one store_poll_result per shipment of the first half, each bringing
 *         EVENTS_PER_POLL new events (the status moves, so outbox rows and the
 *         estimate are written too, as in a real poll);
 *   copy  one COPY of the same number of tracking_events rows, same columns,
 *         for the second half.
 * It prints one line per run, "ours EVENTS SECONDS" and "copy ROWS SECONDS",
 * and exits 0, or 1 with a message on stderr.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carrier.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "poller.h"
#include "status.h"
#include "store.h"

#define COPY_BUF (256 * 1024)

/* Seconds on the monotonic clock. */
static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what, const char *msg)
{
    fprintf(stderr, "shiptrack-bench-ingest: %s: %s\n", what, msg);
    return 1;
}

/* Run one statement without parameters; false (and a message) on failure. */
static int run(PGconn *conn, const char *what, const char *sql)
{
    char err[512];
    PGresult *res = db_exec(conn, what, sql, 0, NULL, PGRES_TUPLES_OK, NULL, err, sizeof(err));

    if (res == NULL)
        return die(what, err);
    PQclear(res);
    return 0;
}

/* Event j of a shipment's journey: a label, scans in transit, out for delivery. */
static void make_event(struct track_event *ev, time_t base, int j, int n)
{
    struct tm tm;
    time_t at = base + (time_t)j * 3600;

    memset(ev, 0, sizeof(*ev));
    ev->occurred_at = at;
    gmtime_r(&at, &tm);
    strftime(ev->occurred_local, sizeof(ev->occurred_local), "%Y-%m-%dT%H:%M:%S", &tm);
    ev->offset_kind = OFFSET_CARRIER;
    ev->affects_status = true;
    if (j == 0) {
        ev->status = ST_STATUS_INFO_RECEIVED;
        ev->substatus = ST_SUB_NONE;
        snprintf(ev->code, sizeof(ev->code), "pre-transit");
        snprintf(ev->description, sizeof(ev->description), "Shipment information received");
    } else if (j == n - 1 && n > 2) {
        ev->status = ST_STATUS_OUT_FOR_DELIVERY;
        ev->substatus = ST_SUB_NONE;
        snprintf(ev->code, sizeof(ev->code), "out-for-delivery");
        snprintf(ev->description, sizeof(ev->description), "The shipment is out for delivery");
    } else {
        ev->status = ST_STATUS_IN_TRANSIT;
        ev->substatus = j % 2 ? ST_SUB_ARRIVED_FACILITY : ST_SUB_DEPARTED_FACILITY;
        snprintf(ev->code, sizeof(ev->code), "transit");
        snprintf(ev->description, sizeof(ev->description),
                 j % 2 ? "Arrived at the sort facility" : "Departed from the sort facility");
    }
    snprintf(ev->city, sizeof(ev->city), "Leipzig %d", j);
    snprintf(ev->postal_code, sizeof(ev->postal_code), "04%03d", j % 1000);
    snprintf(ev->country, sizeof(ev->country), "DE");
}

/* One COPY text row of tracking_events for event ev of shipment sid. */
static int copy_row(char *buf, size_t cap, long long sid, const struct track_event *ev,
                    long long seq)
{
    char at[32];
    struct tm tm;

    gmtime_r(&ev->occurred_at, &tm);
    strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S+00", &tm);
    return snprintf(buf, cap,
                    "%lld\t%s\t%s\tcarrier\t0\t%s\t%s\tt\tf\t%s\t%s\t%s\t%s\t%s\t"
                    "00000000-0000-4000-8000-%012llx\n",
                    sid, at, ev->occurred_local, st_status_name(ev->status),
                    st_substatus_name(ev->substatus), ev->code, ev->description, ev->city,
                    ev->postal_code, ev->country, seq);
}

int main(int argc, char **argv)
{
    struct st_config cfg;
    struct poll_policy pp;
    struct track_result r;
    char err[512], *buf;
    long n, k;
    long long first_id, events = 0;
    time_t base = time(NULL) - 40 * 3600;
    double t0, t_ours, t_copy;
    PGconn *conn;
    PGresult *res;
    size_t used = 0;

    if (argc != 4 || (n = atol(argv[2])) <= 0 || (k = atol(argv[3])) <= 0 || k > 40) {
        fprintf(stderr, "usage: shiptrack-bench-ingest DATABASE_URL SHIPMENTS EVENTS_PER_POLL"
                        " (1..40)\n");
        return 2;
    }
    if (config_load(&cfg, err, sizeof(err)) != ST_OK)
        return die("config", err);
    log_setup(cfg.log_level, cfg.log_format, stderr);
    poller_policy(&cfg, &pp);
    pp.jitter_pct = 0;
    if ((conn = db_connect(argv[1], err, sizeof(err))) == NULL)
        return die("connect", err);
    if (run(conn, "partitions", "SELECT st_ensure_event_partitions(now()::date - 31,"
                                " (now() + interval '3 months')::date)"))
        return 1;
    {
        char cnt[24];
        const char *p[1] = { cnt };

        snprintf(cnt, sizeof(cnt), "%ld", 2 * n);
        res = db_exec(conn, "shipments",
                      "WITH ins AS (INSERT INTO shipments (carrier, tracking_number,"
                      " destination_country, origin_country)"
                      " SELECT 'dhl', 'BENCH' || lpad(g::text, 9, '0'), 'DE', 'FR'"
                      " FROM generate_series(1, $1::int) g RETURNING id) SELECT min(id) FROM ins",
                      1, p, PGRES_TUPLES_OK, NULL, err, sizeof(err));
        if (res == NULL)
            return die("shipments", err);
        first_id = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
    }

    /* ours: the poller's store, one poll per shipment */
    memset(&r, 0, sizeof(r));
    r.outcome = TRACK_FOUND;
    r.events = calloc((size_t)k, sizeof(*r.events));
    r.n_events = r.cap_events = (size_t)k;
    if (r.events == NULL)
        return die("events", "out of memory");
    for (long j = 0; j < k; j++)
        make_event(&r.events[j], base, (int)j, (int)k);
    t0 = now_s();
    for (long i = 0; i < n; i++) {
        struct claimed c;
        struct store_stats st;

        memset(&c, 0, sizeof(c));
        c.id = first_id + i;
        snprintf(c.carrier, sizeof(c.carrier), "dhl");
        snprintf(c.tracking_number, sizeof(c.tracking_number), "BENCH%09ld", i + 1);
        if (store_poll_result(conn, cfg.worker_id, &c, &r, &pp, &st, err, sizeof(err)) != ST_OK)
            return die("store_poll_result", err);
        if (st.events_new != k)
            return die("store_poll_result", "not every event was new");
        events += st.events_new;
    }
    t_ours = now_s() - t0;
    printf("ours %lld %.3f\n", events, t_ours);

    /* reference: COPY of as many rows, the same columns, into the same table */
    buf = malloc(COPY_BUF);
    if (buf == NULL)
        return die("copy", "out of memory");
    t0 = now_s();
    res = PQexec(conn, "COPY tracking_events (shipment_id, occurred_at, occurred_local,"
                       " offset_kind, utc_offset_min, status, substatus, affects_status, customs,"
                       " raw_code, raw_description, city, postal_code, country, dedupe_key)"
                       " FROM STDIN");
    if (PQresultStatus(res) != PGRES_COPY_IN)
        return die("copy", PQerrorMessage(conn));
    PQclear(res);
    for (long i = 0; i < n; i++)
        for (long j = 0; j < k; j++) {
            if (COPY_BUF - used < 2048) {
                if (PQputCopyData(conn, buf, (int)used) != 1)
                    return die("copy", PQerrorMessage(conn));
                used = 0;
            }
            used += (size_t)copy_row(buf + used, COPY_BUF - used, first_id + n + i, &r.events[j],
                                     (long long)i * k + j);
        }
    if ((used > 0 && PQputCopyData(conn, buf, (int)used) != 1) || PQputCopyEnd(conn, NULL) != 1)
        return die("copy", PQerrorMessage(conn));
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return die("copy", PQerrorMessage(conn));
    PQclear(res);
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
    t_copy = now_s() - t0;
    printf("copy %lld %.3f\n", (long long)n * k, t_copy);

    free(buf);
    track_result_reset(&r);
    PQfinish(conn);
    config_free(&cfg);
    return 0;
}
