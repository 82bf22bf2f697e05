/*
 * scanner.h - the scanner role: lane statistics and stuck-parcel alerts.
 *
 * A pass (scanner_pass) first turns tracking events it has not seen yet into
 * dwell samples (lane_dwell: hours a shipment stayed in a status before its
 * next event, per carrier, destination and status) and refreshes the 90th
 * percentile of every lane it touched (lane_dwell_p90). Then four rules look
 * for parcels ops must know about:
 *
 *   stuck              no movement for longer than the lane's p90 dwell in the
 *                      current status (the carrier's over all destinations when
 *                      the lane has too few samples, else SHIPTRACK_STUCK_AFTER)
 *   customs_hold_long  an open customs hold older than the destination's p90
 *                      hold (else SHIPTRACK_CUSTOMS_HOLD_ALERT)
 *   not_picked_up      info_received (label created) for SHIPTRACK_PICKUP_ALERT
 *   tracking_failing   SHIPTRACK_FAILING_STREAK polls in a row failed
 *
 * Each finding is one alert row per episode (at most one open per shipment
 * and kind) plus an "alert_raised" message on shiptrack.alerts.v1 in the same
 * statement; an open alert whose cause is gone (movement, hold closed, label
 * picked up, polls succeed again, shipment finished) is cleared with an
 * "alert_cleared" message. A later stall is a new episode.
 *
 * Cost: every query reads an index range and at most SHIPTRACK_SCAN_BATCH
 * rows (keyset pagination); statistics are histograms updated incrementally,
 * so a pass costs the same whatever the size of the history.
 *
 * Wording: "now" is the caller's clock (the role: time(NULL) +
 * SHIPTRACK_CLOCK_OFFSET), so tests and the demo can move it.
 */
#ifndef ST_SCANNER_H
#define ST_SCANNER_H

#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "config.h"
#include "err.h"

/* What one pass (or, summed, one run) did. */
struct scanner_stats {
    long events;    /* tracking events read for the dwell statistics */
    long samples;   /* dwell samples added to lane_dwell */
    long lanes;     /* lane percentiles recomputed */
    long raised;    /* alerts opened (each with its alert_raised message) */
    long cleared;   /* alerts cleared (each with its alert_cleared message) */
};

/* One pass at time `now` on conn (borrowed). ST_RETRY for database trouble
 * (the next pass tries again; what was committed stays). */
enum st_err scanner_pass(PGconn *conn, const struct st_config *cfg, time_t now,
                         struct scanner_stats *stats, char *err, size_t errlen);

struct scanner_opts {
    volatile sig_atomic_t *running; /* cleared on SIGTERM: finish the statement, return */
    bool once;                      /* one pass, then return */
};

/* Run the role: a pass every SHIPTRACK_SCAN_INTERVAL until stopped,
 * reconnecting when the database goes away. 0 on a clean stop, 1 when a
 * --once pass failed. */
int scanner_run(const struct st_config *cfg, const struct scanner_opts *opts,
                struct scanner_stats *totals);

/* Filters of `shiptrack stuck`; NULL / 0 = any. Values must be validated
 * (scanner_filter_check) before use. */
struct stuck_filter {
    const char *carrier;
    const char *destination; /* ISO country, upper case */
    const char *status;
    const char *kind;
    long long min_age_s;
    long limit;
};

/* NULL when f is valid, else a message naming the flag and the value. */
const char *scanner_filter_check(const struct stuck_filter *f, char *buf, size_t cap);

/* The open alerts matching f, oldest first, as a JSON array of objects
 * (caller json_decref()s *out). */
enum st_err scanner_list(PGconn *conn, const struct stuck_filter *f, time_t now, json_t **out,
                         char *err, size_t errlen);

/* Print scanner_list's result as a table for people. */
void scanner_print_table(FILE *f, const json_t *alerts);

/* "3d 4h", "5h 12m", "40m", "12s" into buf. */
const char *scanner_fmt_age(long long seconds, char *buf, size_t cap);

/* The SQL of a statement the scanner sends ("dwell", "lane_p90", "stuck",
 * "customs_hold_long", "not_picked_up", "tracking_failing", "clear",
 * "list"), for EXPLAIN in tests; NULL for other names. */
const char *scanner_statement(const char *name);

#endif
