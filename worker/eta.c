/*
 * eta.c - estimated delivery dates from carriers, lanes and customs (eta.h).
 *
 * Wording: a "lane" is (carrier, origin, destination, service); its
 * histogram counts delivered shipments per whole day of transit. A "level"
 * is how much of the lane key a lookup uses (0 all of it, 1 without the
 * service, 2 carrier and destination only). Dates are day numbers (days
 * since 1970-01-01, UTC) inside this file and "YYYY-MM-DD" outside it.
 */
#include "eta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

#define ETA_LEVELS 3
#define ETA_MAX_DAYS 60             /* lane_transit.days holds 0..60 */
#define ETA_MAX_HOURS 720           /* customs_hold_durations.hours holds 0..720 */
#define DAY_S 86400L

void eta_policy_from_config(const struct st_config *cfg, struct eta_policy *pol)
{
    const long long day_ms = DAY_S * 1000, hour_ms = 3600 * 1000;

    memset(pol, 0, sizeof(*pol));
    pol->percentile = (int)cfg->edd_percentile;
    pol->lane_min_samples = cfg->lane_min_samples;
    pol->default_domestic_days = (int)((cfg->edd_default_domestic_ms + day_ms - 1) / day_ms);
    pol->default_international_days =
        (int)((cfg->edd_default_international_ms + day_ms - 1) / day_ms);
    pol->customs_hold_default_h = (cfg->customs_hold_default_ms + hour_ms - 1) / hour_ms;
}

int eta_percentile(const int *bucket, const long long *counts, size_t n, int pct)
{
    long long total = 0, rank, seen = 0;

    for (size_t i = 0; i < n; i++)
        total += counts[i] > 0 ? counts[i] : 0;
    if (total == 0)
        return -1;
    if (pct < 1)
        pct = 1;
    if (pct > 100)
        pct = 100;
    rank = (total * pct + 99) / 100; /* ceil(total * pct / 100) */
    for (size_t i = 0; i < n; i++) {
        seen += counts[i] > 0 ? counts[i] : 0;
        if (seen >= rank)
            return bucket[i];
    }
    return bucket[n - 1];
}

bool eta_parse_date(const char *s, long *days)
{
    struct tm tm;
    int y, m, d;
    char tail;

    if (s == NULL || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 ||
        s[4] != '-' || s[7] != '-' || m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    *days = (long)(timegm(&tm) / DAY_S);
    return true;
}

void eta_format_date(long days, char out[ETA_DATE_MAX])
{
    time_t t = (time_t)days * DAY_S;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, ETA_DATE_MAX, "%Y-%m-%d", &tm);
}

/* The shipment as the estimate needs it. */
struct eta_row {
    char origin[3], destination[3], service[65];
    time_t shipped_at;              /* 0: not yet */
    char original[ETA_DATE_MAX];    /* the first estimate, "" none yet */
    char current[ETA_DATE_MAX], source[12], communicated[ETA_DATE_MAX];
    char last_carrier[ETA_DATE_MAX]; /* the newest carrier date in the history */
};

static enum st_err load_row(PGconn *conn, const char *sid, struct eta_row *row, char *err,
                            size_t errlen)
{
    const char *p[1] = { sid };
    enum st_err rc = ST_OK;
    PGresult *res;

    res = db_exec_prepared(conn, "read estimate",
                  "SELECT coalesce(origin_country, ''), coalesce(destination_country, ''),"
                  " service, coalesce(extract(epoch FROM shipped_at)::bigint, 0),"
                  " coalesce(edd_current::text, ''), coalesce(edd_source, ''),"
                  " coalesce(edd_communicated::text, ''), coalesce(edd_original::text, ''),"
                  " coalesce((SELECT edd::text FROM edd_history h WHERE h.shipment_id = s.id"
                  "   AND h.source = 'carrier' ORDER BY h.id DESC LIMIT 1), '')"
                  " FROM shipments s WHERE id = $1",
                  1, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return st_fail(err, errlen, ST_PERMANENT, "shipment %s no longer exists", sid);
    }
    snprintf(row->origin, sizeof(row->origin), "%s", PQgetvalue(res, 0, 0));
    snprintf(row->destination, sizeof(row->destination), "%s", PQgetvalue(res, 0, 1));
    snprintf(row->service, sizeof(row->service), "%s", PQgetvalue(res, 0, 2));
    row->shipped_at = (time_t)atoll(PQgetvalue(res, 0, 3));
    snprintf(row->current, sizeof(row->current), "%s", PQgetvalue(res, 0, 4));
    snprintf(row->source, sizeof(row->source), "%s", PQgetvalue(res, 0, 5));
    snprintf(row->communicated, sizeof(row->communicated), "%s", PQgetvalue(res, 0, 6));
    snprintf(row->original, sizeof(row->original), "%s", PQgetvalue(res, 0, 7));
    snprintf(row->last_carrier, sizeof(row->last_carrier), "%s", PQgetvalue(res, 0, 8));
    PQclear(res);
    return ST_OK;
}

/* Transit days from the finest lane with enough samples: *days, *samples
 * and *level, or *days = -1 when no lane qualifies. */
static enum st_err lane_days(PGconn *conn, const char *carrier, const struct eta_row *row,
                             const struct eta_policy *pol, int *days, long long *samples,
                             int *level, char *err, size_t errlen)
{
    const char *p[4] = { carrier, row->origin, row->destination, row->service };
    int bucket[ETA_LEVELS][ETA_MAX_DAYS + 1];
    long long counts[ETA_LEVELS][ETA_MAX_DAYS + 1], total[ETA_LEVELS] = { 0 };
    size_t used[ETA_LEVELS] = { 0 };
    enum st_err rc = ST_OK;
    PGresult *res;

    *days = -1;
    /* each level reads a prefix of lane_transit's primary key (level 2 scans
     * the carrier's origins; the histograms are small by design) */
    res = db_exec_prepared(conn, "read lane statistics",
                  "SELECT 0, days, sum(n) FROM lane_transit WHERE carrier = $1 AND origin = $2"
                  "   AND destination = $3 AND service = $4 GROUP BY days"
                  " UNION ALL SELECT 1, days, sum(n) FROM lane_transit WHERE carrier = $1"
                  "   AND origin = $2 AND destination = $3 GROUP BY days"
                  " UNION ALL SELECT 2, days, sum(n) FROM lane_transit WHERE carrier = $1"
                  "   AND destination = $3 GROUP BY days"
                  " ORDER BY 1, 2",
                  4, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        int lv = atoi(PQgetvalue(res, i, 0)), d = atoi(PQgetvalue(res, i, 1));
        long long c = atoll(PQgetvalue(res, i, 2));

        if (lv < 0 || lv >= ETA_LEVELS || used[lv] > ETA_MAX_DAYS || d < 0 || c <= 0)
            continue;
        bucket[lv][used[lv]] = d;
        counts[lv][used[lv]++] = c;
        total[lv] += c;
    }
    PQclear(res);
    for (int lv = 0; lv < ETA_LEVELS; lv++)
        if (total[lv] > 0 && total[lv] >= pol->lane_min_samples) {
            *days = eta_percentile(bucket[lv], counts[lv], used[lv], pol->percentile);
            *samples = total[lv];
            *level = lv;
            return ST_OK;
        }
    return ST_OK;
}

/* Median hold time (hours) of the destination when it has enough holds:
 * *hours and *samples, else *hours = -1. */
static enum st_err hold_hours(PGconn *conn, const char *destination,
                              const struct eta_policy *pol, int *hours, long long *samples,
                              char *err, size_t errlen)
{
    const char *p[1] = { destination };
    int *bucket;
    long long *counts, total = 0;
    size_t used = 0;
    enum st_err rc = ST_OK;
    PGresult *res;

    *hours = -1;
    res = db_exec_prepared(conn, "read customs hold statistics",
                  "SELECT hours, n FROM customs_hold_durations WHERE destination = $1"
                  " AND n > 0 ORDER BY hours",
                  1, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    bucket = calloc((size_t)PQntuples(res) + 1, sizeof(*bucket));
    counts = calloc((size_t)PQntuples(res) + 1, sizeof(*counts));
    if (bucket == NULL || counts == NULL) {
        free(bucket);
        free(counts);
        PQclear(res);
        return st_fail(err, errlen, ST_RETRY, "out of memory reading customs hold statistics");
    }
    for (int i = 0; i < PQntuples(res) && used <= ETA_MAX_HOURS; i++) {
        bucket[used] = atoi(PQgetvalue(res, i, 0));
        counts[used] = atoll(PQgetvalue(res, i, 1));
        total += counts[used++];
    }
    PQclear(res);
    if (total > 0 && total >= pol->lane_min_samples) {
        *hours = eta_percentile(bucket, counts, used, 50);
        *samples = total;
    }
    free(bucket);
    free(counts);
    return ST_OK;
}

/* Record a new estimate: one edd_history row; row->current follows. */
static enum st_err change(PGconn *conn, const char *sid, struct eta_row *row, long day,
                          const char *source, const char *reason, struct eta_outcome *out,
                          char *err, size_t errlen)
{
    char edd[ETA_DATE_MAX];
    const char *p[5];
    enum st_err rc = ST_OK;
    PGresult *res;

    eta_format_date(day, edd);
    if (strcmp(edd, row->current) == 0 && strcmp(source, row->source) == 0)
        return ST_OK;
    p[0] = sid;
    p[1] = edd;
    p[2] = row->current[0] ? row->current : NULL;
    p[3] = source;
    p[4] = reason;
    res = db_exec_prepared(conn, "record estimate",
                  "INSERT INTO edd_history (shipment_id, edd, previous, source, reason)"
                  " VALUES ($1, $2, $3, $4, left($5, 200))",
                  5, p, PGRES_COMMAND_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    PQclear(res);
    log_info("eta.change", atoll(sid), NULL, "edd %s -> %s source=%s reason=\"%s\"",
             row->current[0] ? row->current : "-", edd, source, reason);
    snprintf(row->current, sizeof(row->current), "%s", edd);
    snprintf(row->source, sizeof(row->source), "%s", source);
    if (row->original[0] == '\0')
        snprintf(row->original, sizeof(row->original), "%s", edd);
    snprintf(out->reason, sizeof(out->reason), "%s", reason);
    out->changes++;
    return ST_OK;
}

/* A first estimate from the lane model or the defaults. */
static enum st_err model_estimate(PGconn *conn, const char *sid, const struct eta_input *in,
                                  const struct eta_policy *pol, struct eta_row *row,
                                  struct eta_outcome *out, char *err, size_t errlen)
{
    static const char *const level_names[ETA_LEVELS] = {
        "", " (all services)", " (all origins and services)"
    };
    char reason[ETA_REASON_MAX];
    long long samples = 0;
    int days = -1, level = 0;
    bool domestic;
    enum st_err rc;

    if ((rc = lane_days(conn, in->carrier, row, pol, &days, &samples, &level, err,
                        errlen)) != ST_OK)
        return rc;
    if (days >= 0) {
        bool service = level == 0 && row->service[0] != '\0';

        snprintf(reason, sizeof(reason), "p%d of %lld deliveries on %s %s->%s%s%s%s: %d days",
                 pol->percentile, samples, in->carrier, row->origin[0] ? row->origin : "?",
                 row->destination[0] ? row->destination : "?", service ? " " : "",
                 service ? row->service : "", level_names[level], days);
        return change(conn, sid, row, row->shipped_at / DAY_S + days, "lane", reason, out, err,
                      errlen);
    }
    domestic = row->origin[0] != '\0' && strcmp(row->origin, row->destination) == 0;
    days = domestic ? pol->default_domestic_days : pol->default_international_days;
    snprintf(reason, sizeof(reason), "default %s transit: %d days",
             domestic ? "domestic" : "international", days);
    return change(conn, sid, row, row->shipped_at / DAY_S + days, "default", reason, out, err,
                  errlen);
}

/* A customs hold moves the estimate by the destination's typical hold. */
static enum st_err customs_revision(PGconn *conn, const char *sid, const struct eta_input *in,
                                    const struct eta_policy *pol, struct eta_row *row,
                                    struct eta_outcome *out, char *err, size_t errlen)
{
    char reason[ETA_REASON_MAX];
    long long samples = 0, h;
    long base = in->held_at / DAY_S, cur;
    int hours = -1, days;
    enum st_err rc;

    if ((rc = hold_hours(conn, row->destination, pol, &hours, &samples, err, errlen)) != ST_OK)
        return rc;
    h = hours >= 0 ? hours : pol->customs_hold_default_h;
    days = (int)((h + 23) / 24);
    if (days < 1)
        days = 1;
    if (row->current[0] != '\0' && eta_parse_date(row->current, &cur) && cur > base)
        base = cur;
    if (hours >= 0)
        snprintf(reason, sizeof(reason), "customs hold (%s): +%d days, median of %lld holds "
                 "for %s", in->hold_reason, days, samples, row->destination);
    else
        snprintf(reason, sizeof(reason), "customs hold (%s): +%d days (default)",
                 in->hold_reason, days);
    return change(conn, sid, row, base + days, "customs", reason, out, err, errlen);
}

/* Count the delivered shipment's transit days on its lane. */
static enum st_err count_transit(PGconn *conn, const struct eta_input *in,
                                 const struct eta_row *row, char *err, size_t errlen)
{
    char days[8];
    const char *p[5] = { in->carrier, row->origin, row->destination, row->service, days };
    long d = (long)((in->delivered_at - row->shipped_at) / DAY_S);
    enum st_err rc = ST_OK;
    PGresult *res;

    snprintf(days, sizeof(days), "%ld", d < 0 ? 0 : d > ETA_MAX_DAYS ? ETA_MAX_DAYS : d);
    res = db_exec_prepared(conn, "count lane transit",
                  "INSERT INTO lane_transit (carrier, origin, destination, service, days, n)"
                  " VALUES ($1, $2, $3, $4, $5, 1)"
                  " ON CONFLICT (carrier, origin, destination, service, days)"
                  " DO UPDATE SET n = lane_transit.n + 1",
                  5, p, PGRES_COMMAND_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    PQclear(res);
    return ST_OK;
}

enum st_err eta_apply(PGconn *conn, long long shipment_id, const struct eta_policy *pol,
                      const struct eta_input *in, struct eta_outcome *out, char *err,
                      size_t errlen)
{
    struct eta_row row;
    char sid[24], shipped[24];
    const char *p[6];
    long day, told;
    bool set_shipped;
    enum st_err rc;
    PGresult *res;

    memset(out, 0, sizeof(*out));
    snprintf(sid, sizeof(sid), "%lld", shipment_id);
    if ((rc = load_row(conn, sid, &row, err, errlen)) != ST_OK)
        return rc;
    set_shipped = row.shipped_at == 0 && in->shipped_at > 0;
    if (set_shipped)
        row.shipped_at = in->shipped_at;

    /* the carrier's date, whenever it says something new */
    if (in->carrier_edd[0] != '\0' && strcmp(in->carrier_edd, row.last_carrier) != 0 &&
        eta_parse_date(in->carrier_edd, &day) &&
        (rc = change(conn, sid, &row, day, "carrier", "the carrier's estimate", out, err,
                     errlen)) != ST_OK)
        return rc;
    /* else a first estimate from the model once the parcel moves */
    if (row.current[0] == '\0' && !in->finished && pol->percentile > 0 && row.shipped_at > 0 &&
        (rc = model_estimate(conn, sid, in, pol, &row, out, err, errlen)) != ST_OK)
        return rc;
    if (in->customs_held && !in->finished && pol->percentile > 0 &&
        (rc = customs_revision(conn, sid, in, pol, &row, out, err, errlen)) != ST_OK)
        return rc;
    if (in->delivered && row.shipped_at > 0 &&
        (rc = count_transit(conn, in, &row, err, errlen)) != ST_OK)
        return rc;

    snprintf(out->current, sizeof(out->current), "%s", row.current);
    snprintf(out->source, sizeof(out->source), "%s", row.source);
    if (out->changes == 0 && !set_shipped)
        return ST_OK;
    /* the first estimate counts as told; a day or more later is a delay */
    if (row.communicated[0] == '\0')
        snprintf(row.communicated, sizeof(row.communicated), "%s", row.original);
    if (out->changes > 0 && !in->finished && eta_parse_date(row.current, &day) &&
        eta_parse_date(row.communicated, &told) && day >= told + 1) {
        out->delayed = true;
        snprintf(out->communicated, sizeof(out->communicated), "%s", row.communicated);
        snprintf(row.communicated, sizeof(row.communicated), "%s", row.current);
    }
    snprintf(shipped, sizeof(shipped), "%lld", (long long)row.shipped_at);
    p[0] = sid;
    p[1] = row.current[0] ? row.current : NULL;
    p[2] = row.source[0] ? row.source : NULL;
    p[3] = row.communicated[0] ? row.communicated : NULL;
    p[4] = row.shipped_at > 0 ? shipped : NULL;
    p[5] = row.original[0] ? row.original : NULL;
    res = db_exec_prepared(conn, "update estimate",
                  "UPDATE shipments SET edd_current = $2::date, edd_source = $3,"
                  " edd_original = $6::date, edd_communicated = $4::date,"
                  " shipped_at = coalesce(shipped_at, to_timestamp($5::bigint))"
                  " WHERE id = $1",
                  6, p, PGRES_COMMAND_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    PQclear(res);
    return ST_OK;
}
