/*
 * eta.h - the estimated delivery date (EDD) of a shipment.
 *
 * Sources, best first:
 *   carrier  the date the carrier gives (taken whenever it gives a new one)
 *   lane     a percentile (SHIPTRACK_EDD_PERCENTILE) of the transit days of
 *            delivered shipments on the lane, counted from shipped_at; used
 *            only when the lane has SHIPTRACK_LANE_MIN_SAMPLES deliveries.
 *            Lanes, finest first: carrier+origin+destination+service,
 *            carrier+origin+destination, carrier+destination.
 *   default  shipped_at + SHIPTRACK_EDD_DEFAULT_DOMESTIC or _INTERNATIONAL
 *   customs  a customs hold moves the estimate by the median hold time of
 *            the destination (customs_hold_durations, above the minimum
 *            sample), else SHIPTRACK_CUSTOMS_HOLD_DEFAULT
 *
 * Every change is a row in edd_history (edd, previous, source, reason);
 * shipments keep edd_original (the first), edd_current and edd_source.
 * shipments.edd_communicated is the estimate the customer was last told:
 * the first one, then each one announced as a delay. A delay is an estimate
 * a day or more past edd_communicated on a shipment that is not finished.
 * Delivered shipments add their transit days to lane_transit, once.
 * Everything runs inside the poll's transaction (store.c).
 */
#ifndef ST_ETA_H
#define ST_ETA_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "err.h"

#define ETA_DATE_MAX 11             /* "YYYY-MM-DD" */
#define ETA_REASON_MAX 200          /* edd_history.reason */

/* Settings (from the configuration). All zero: carrier dates only. */
struct eta_policy {
    int percentile;                 /* of a lane's transit days, 1-99; 0: no model */
    long long lane_min_samples;     /* samples a lane or a customs history needs */
    int default_domestic_days;      /* no carrier date and no lane: shipped + this */
    int default_international_days;
    long long customs_hold_default_h; /* a hold without destination history adds this */
};

/* The policy the configuration describes (SHIPTRACK_EDD_*, SHIPTRACK_LANE_MIN_SAMPLES,
 * SHIPTRACK_CUSTOMS_HOLD_DEFAULT); durations round up to whole days / hours. */
void eta_policy_from_config(const struct st_config *cfg, struct eta_policy *pol);

/* What one poll learned, for the estimate. */
struct eta_input {
    const char *carrier;
    const char *carrier_edd;        /* "YYYY-MM-DD" the carrier gave, or "" */
    time_t shipped_at;              /* first movement seen in this poll, 0 none */
    bool customs_held;              /* a customs hold moved into held */
    time_t held_at;
    const char *hold_reason;        /* "duties_due"... */
    bool delivered;                 /* this poll made the shipment delivered */
    time_t delivered_at;
    bool finished;                  /* the shipment's status is terminal now */
};

/* What eta_apply did. */
struct eta_outcome {
    int changes;                    /* rows added to edd_history */
    char current[ETA_DATE_MAX];     /* edd_current afterwards, "" none */
    char source[12];                /* its source */
    char reason[ETA_REASON_MAX];    /* why it last changed */
    bool delayed;                   /* a delay to announce (edd_changed) */
    char communicated[ETA_DATE_MAX]; /* what the customer was told before the delay */
};

/* Update the estimate of a locked shipment inside the caller's transaction. */
enum st_err eta_apply(PGconn *conn, long long shipment_id, const struct eta_policy *pol,
                      const struct eta_input *in, struct eta_outcome *out, char *err,
                      size_t errlen);

/* Nearest-rank percentile pct (1-100) of a histogram: buckets ascending,
 * counts[i] samples in bucket[i]. Returns the bucket, or -1 when empty. */
int eta_percentile(const int *bucket, const long long *counts, size_t n, int pct);

/* Days since 1970-01-01 of "YYYY-MM-DD"; false when malformed. */
bool eta_parse_date(const char *s, long *days);
/* "YYYY-MM-DD" of a day number into out[ETA_DATE_MAX]. */
void eta_format_date(long days, char out[ETA_DATE_MAX]);

#endif
