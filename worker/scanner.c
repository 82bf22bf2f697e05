/*
 * scanner.c - lane dwell statistics and the stuck-parcel rules.
 *
 * Wording: a "sample" is the time between two consecutive status-bearing
 * events of one shipment, filed under the earlier event's status; a "lane" is
 * (carrier, destination, status); an "episode" is one alert from raise to
 * clear; the "cursor" of a rule is the (order key, shipment id) of the last
 * candidate its previous batch read.
 *
 * Dwell statistics and event ids. The watermark 'lane_dwell' is the highest
 * tracking_events id turned into samples. Ids are handed out at insert but
 * become visible at commit, so a slow transaction may commit a lower id
 * after a higher one was read; a watermark past it would skip it forever.
 * The scanner therefore stops each batch before the first event recorded
 * less than SHIPTRACK_SCAN_SETTLE ago (store transactions last milliseconds;
 * one open longer than the settle time loses its samples, which a
 * percentile does not notice). Late events: an event's predecessor is the
 * latest earlier-in-time event inserted before it (lower id); an event older
 * than one inserted before it falls inside an interval already counted and
 * adds no sample. So every interval is counted once, as first seen, whatever
 * the batch boundaries. Events whose carrier code is unmapped do not carry a
 * status and are left out on both sides.
 *
 * Percentiles: a lane's p90 is the smallest hour bucket h whose cumulative
 * count reaches 90% of its samples; the threshold is the bucket's upper end,
 * (h + 1) hours, so a parcel is never stuck inside the p90 bucket.
 */
#include "scanner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "db.h"
#include "kafka.h"
#include "log.h"
#include "privacy.h"
#include "migrate.h"
#include "status.h"

#define WATERMARK "lane_dwell"
#define DWELL_BATCHES_MAX 20    /* dwell transactions per pass, so the rules run too */
#define RULE_BATCHES_MAX 1000   /* per rule and pass: a guard, not a budget */

/* ISO 8601 UTC text of a timestamptz expression, in SQL. */
#define ISO(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* ---- dwell statistics ---- */

/* One batch of new events -> samples; the touched lanes come back as three
 * parallel text arrays. $1 watermark, $2 batch cap, $3 settle seconds. */
static const char dwell_sql[] =
    "WITH head AS ("
    "  SELECT e.id, e.shipment_id, e.occurred_at, e.affects_status, e.recorded_at"
    "    FROM tracking_events e WHERE e.id > $1::bigint ORDER BY e.id LIMIT $2::int),"
    " cut AS (SELECT min(id) AS stop FROM head"
    "          WHERE recorded_at > now() - make_interval(secs => $3::float8)),"
    " batch AS (SELECT h.* FROM head h, cut WHERE cut.stop IS NULL OR h.id < cut.stop),"
    " samples AS ("
    "  SELECT s.carrier, coalesce(s.destination_country, '') AS destination, p.status,"
    "         least(720, floor(extract(epoch FROM b.occurred_at - p.occurred_at) / 3600))::smallint"
    "           AS hours"
    "    FROM batch b JOIN shipments s ON s.id = b.shipment_id"
    "    CROSS JOIN LATERAL ("
    "      SELECT pe.status, pe.occurred_at FROM tracking_events pe"
    "       WHERE pe.shipment_id = b.shipment_id AND pe.occurred_at < b.occurred_at"
    "         AND pe.id < b.id AND pe.affects_status"
    "       ORDER BY pe.occurred_at DESC LIMIT 1) p"
    "   WHERE b.affects_status"
    "     AND NOT EXISTS (SELECT 1 FROM tracking_events l"
    "                      WHERE l.shipment_id = b.shipment_id AND l.occurred_at > b.occurred_at"
    "                        AND l.id < b.id AND l.affects_status)),"
    " added AS ("
    "  INSERT INTO lane_dwell AS d (carrier, destination, status, hours, n)"
    "  SELECT carrier, destination, status, hours, count(*) FROM samples GROUP BY 1, 2, 3, 4"
    "  ON CONFLICT (carrier, destination, status, hours) DO UPDATE SET n = d.n + EXCLUDED.n"
    "  RETURNING carrier, destination, status)"
    " SELECT (SELECT count(*) FROM batch), (SELECT coalesce(max(id), $1::bigint) FROM batch),"
    "        (SELECT count(*) FROM samples), (SELECT count(*) FROM head),"
    "        (SELECT coalesce(array_agg(carrier), '{}') FROM added),"
    "        (SELECT coalesce(array_agg(destination), '{}') FROM added),"
    "        (SELECT coalesce(array_agg(status), '{}') FROM added)";

/* The p90 bucket and sample count of each touched lane and of its carrier
 * over all destinations ('*'). $1..$3 the lanes as text arrays. */
static const char p90_sql[] =
    "WITH t AS (SELECT DISTINCT c, d, st"
    "             FROM unnest($1::text[], $2::text[], $3::text[]) AS t(c, d, st)),"
    " lanes AS ("
    "  SELECT t.c, t.d, t.st, x.total, x.p90 FROM t CROSS JOIN LATERAL ("
    "    SELECT max(y.total) AS total, min(y.hours) FILTER (WHERE y.cum * 10 >= y.total * 9) AS p90"
    "      FROM (SELECT hours, sum(n) OVER (ORDER BY hours) AS cum, sum(n) OVER () AS total"
    "              FROM lane_dwell WHERE carrier = t.c AND destination = t.d AND status = t.st) y) x"
    "  UNION ALL"
    "  SELECT w.c, '*', w.st, x.total, x.p90 FROM (SELECT DISTINCT c, st FROM t) w"
    "  CROSS JOIN LATERAL ("
    "    SELECT max(y.total) AS total, min(y.hours) FILTER (WHERE y.cum * 10 >= y.total * 9) AS p90"
    "      FROM (SELECT hours, sum(sum(n)) OVER (ORDER BY hours) AS cum, sum(sum(n)) OVER () AS total"
    "              FROM lane_dwell WHERE carrier = w.c AND status = w.st GROUP BY hours) y) x)"
    " INSERT INTO lane_dwell_p90 AS p (carrier, destination, status, samples, p90_hours)"
    " SELECT c, d, st, total, p90 FROM lanes WHERE total > 0"
    " ON CONFLICT (carrier, destination, status) DO UPDATE"
    "   SET samples = EXCLUDED.samples, p90_hours = EXCLUDED.p90_hours, updated_at = now()";

/* One dwell transaction. *full is true when the batch was full (more may wait). */
static enum st_err dwell_batch(PGconn *conn, const struct st_config *cfg,
                               struct scanner_stats *stats, bool *full, char *err, size_t errlen)
{
    char cap[24], settle[32];
    const char *p[3];
    enum st_err rc = ST_OK;
    PGresult *res;
    long long read, head, samples, lanes_done = 0;
    char *wm = NULL;

    *full = false;
    if ((rc = db_begin(conn, err, errlen)) != ST_OK)
        return rc;
    /* The row lock serializes scanners: each event becomes samples once. */
    res = db_exec(conn, "create watermark",
                  "INSERT INTO job_watermarks (name) VALUES ('" WATERMARK "')"
                  " ON CONFLICT (name) DO NOTHING",
                  0, NULL, PGRES_COMMAND_OK, &rc, err, errlen);
    if (res == NULL)
        goto fail;
    PQclear(res);
    res = db_exec(conn, "lock watermark",
                  "SELECT value FROM job_watermarks WHERE name = '" WATERMARK "' FOR UPDATE",
                  0, NULL, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) != 1) {
        PQclear(res);
        rc = st_fail(err, errlen, ST_RETRY, "watermark %s vanished", WATERMARK);
        goto fail;
    }
    wm = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (wm == NULL) {
        rc = st_fail(err, errlen, ST_RETRY, "out of memory");
        goto fail;
    }
    snprintf(cap, sizeof(cap), "%lld", cfg->dwell_batch);
    snprintf(settle, sizeof(settle), "%.3f", (double)cfg->scan_settle_ms / 1000.0);
    p[0] = wm;
    p[1] = cap;
    p[2] = settle;
    res = db_exec(conn, "add dwell samples", dwell_sql, 3, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        goto fail;
    read = atoll(PQgetvalue(res, 0, 0));
    head = atoll(PQgetvalue(res, 0, 3));
    samples = atoll(PQgetvalue(res, 0, 2));
    if (read > 0) {
        const char *lanes[3] = { PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5),
                                 PQgetvalue(res, 0, 6) };
        const char *mark[1] = { PQgetvalue(res, 0, 1) };
        PGresult *r2;

        r2 = db_exec(conn, "recompute lane percentiles", p90_sql, 3, lanes, PGRES_COMMAND_OK,
                     &rc, err, errlen);
        if (r2 == NULL) {
            PQclear(res);
            goto fail;
        }
        lanes_done = atoll(PQcmdTuples(r2));
        PQclear(r2);
        r2 = db_exec(conn, "advance watermark",
                     "UPDATE job_watermarks SET value = $1::bigint, updated_at = now()"
                     " WHERE name = '" WATERMARK "'",
                     1, mark, PGRES_COMMAND_OK, &rc, err, errlen);
        if (r2 == NULL) {
            PQclear(res);
            goto fail;
        }
        PQclear(r2);
    }
    PQclear(res);
    if ((rc = db_commit(conn, err, errlen)) != ST_OK)
        goto fail;
    stats->events += (long)read;
    stats->samples += (long)samples;
    stats->lanes += (long)lanes_done;
    /* full: the batch read every row it asked for and none was too fresh */
    *full = read > 0 && read == head && head == cfg->dwell_batch;
    free(wm);
    return ST_OK;
fail:
    db_rollback(conn);
    free(wm);
    return rc;
}

/* ---- rules ---- */

/*
 * Every rule is a CTE `cand` of at most $5 candidates after the cursor
 * ($3 order key as text, $4 shipment id), with the columns the tail needs:
 * shipment_id, carrier, tracking_number, destination, status, since,
 * threshold_s, threshold_src, detail, due (raise now), kt (order key). The
 * tail opens an alert per due candidate that has none open ($2 kind, $1 now
 * in epoch seconds) and writes its message, in the same statement, then
 * returns (candidates, raised, last order key, last shipment id).
 */
#define RAISE_TAIL                                                                                \
    ", ins AS ("                                                                                  \
    "  INSERT INTO alerts (shipment_id, kind, status, threshold_s, threshold_src, since, detail,"  \
    "                      opened_at)"                                                            \
    "  SELECT shipment_id, $2::text, status, threshold_s, threshold_src, since, detail,"           \
    "         to_timestamp($1::bigint)"                                                           \
    "    FROM cand WHERE due ORDER BY kt, shipment_id"                                            \
    "  ON CONFLICT (shipment_id, kind) WHERE cleared_at IS NULL DO NOTHING"                       \
    "  RETURNING id, shipment_id),"                                                               \
    " msg AS ("                                                                                   \
    "  INSERT INTO outbox (topic, msg_key, payload)"                                              \
    "  SELECT '" TOPIC_ALERTS "', c.shipment_id::text, jsonb_build_object("                       \
    "      'type', 'alert_raised', 'alert_id', i.id, 'kind', $2::text,"                           \
    "      'shipment_id', c.shipment_id, 'carrier', c.carrier,"                                   \
    "      'tracking_number', c.tracking_number, 'destination', nullif(c.destination, ''),"       \
    "      'status', c.status, 'since', " ISO("c.since") ","                                      \
    "      'age_s', floor(extract(epoch FROM to_timestamp($1::bigint) - c.since))::bigint,"       \
    "      'threshold_s', c.threshold_s, 'threshold_src', c.threshold_src,"                       \
    "      'detail', c.detail, 'at', " ISO("to_timestamp($1::bigint)") ")"                        \
    "    FROM ins i JOIN cand c ON c.shipment_id = i.shipment_id ORDER BY i.id"                   \
    "  RETURNING 1)"                                                                              \
    " SELECT (SELECT count(*) FROM cand), (SELECT count(*) FROM msg),"                            \
    "        (SELECT kt::text FROM cand ORDER BY kt DESC, shipment_id DESC LIMIT 1),"             \
    "        (SELECT shipment_id FROM cand ORDER BY kt DESC, shipment_id DESC LIMIT 1)"

/* The shipment columns every rule reports. */
#define SHIP_COLS                                                                                 \
    " s.id AS shipment_id, s.carrier, s.tracking_number,"                                         \
    " coalesce(s.destination_country, '') AS destination, s.status"

/* No open alert of this kind yet (alerts_open index). */
#define NO_OPEN_ALERT                                                                             \
    " NOT EXISTS (SELECT 1 FROM alerts a"                                                         \
    "              WHERE a.shipment_id = s.id AND a.kind = $2::text AND a.cleared_at IS NULL)"

/* Keyset condition on order key K (index condition first). */
#define AFTER_CURSOR(K) " " K " >= $3::timestamptz AND (" K " > $3::timestamptz OR s.id > $4::bigint)"

/* stuck: $6 cutoff (epoch; nothing moved later can be stuck), $7 lane
 * minimum samples, $8 default thresholds {status: seconds}. Oldest movement
 * first (shipments_active_moved); lanes by primary key. */
#define MOVED "coalesce(s.last_event_at, s.created_at)"
static const char stuck_sql[] =
    "WITH c0 AS ("
    "  SELECT" SHIP_COLS ", " MOVED " AS since,"
    "         l.p90_hours AS lane_p90, l.samples AS lane_n, w.p90_hours AS wide_p90,"
    "         w.samples AS wide_n"
    "    FROM shipments s"
    "    LEFT JOIN lane_dwell_p90 l ON l.carrier = s.carrier"
    "         AND l.destination = coalesce(s.destination_country, '') AND l.status = s.status"
    "         AND l.samples >= $7::bigint"
    "    LEFT JOIN lane_dwell_p90 w ON w.carrier = s.carrier AND w.destination = '*'"
    "         AND w.status = s.status AND w.samples >= $7::bigint"
    "   WHERE s.next_poll_at IS NOT NULL AND " MOVED " < to_timestamp($6::bigint)"
    "     AND" AFTER_CURSOR(MOVED) " AND s.status <> 'info_received' AND" NO_OPEN_ALERT
    "   ORDER BY " MOVED ", s.id LIMIT $5::int),"
    " c1 AS ("
    "  SELECT c0.*,"
    "         coalesce((coalesce(lane_p90, wide_p90) + 1) * 3600::bigint,"
    "                  ($8::jsonb ->> status)::bigint) AS threshold_s,"
    "         CASE WHEN coalesce(lane_p90, wide_p90) IS NULL THEN 'default' ELSE 'lane' END"
    "           AS threshold_src,"
    "         jsonb_build_object('lane', CASE WHEN lane_p90 IS NOT NULL THEN 'destination'"
    "                                         WHEN wide_p90 IS NOT NULL THEN 'carrier' END,"
    "                            'samples', coalesce(lane_n, wide_n)) AS detail"
    "    FROM c0),"
    " cand AS ("
    "  SELECT c1.*, since AS kt,"
    "         threshold_s IS NOT NULL"
    "         AND to_timestamp($1::bigint) - since > make_interval(secs => threshold_s) AS due"
    "    FROM c1)" RAISE_TAIL;

/* customs_hold_long: $6 cutoff, $7 minimum closed holds, $8 default seconds.
 * Oldest open hold first (customs_holds_open_age); the destination's
 * histogram by primary key. */
static const char customs_sql[] =
    "WITH c0 AS ("
    "  SELECT" SHIP_COLS ", h.opened_at AS since, h.id AS hold_id, h.reason, h.actor"
    "    FROM customs_holds h JOIN shipments s ON s.id = h.shipment_id"
    "   WHERE h.closed_at IS NULL AND h.opened_at < to_timestamp($6::bigint)"
    "     AND s.next_poll_at IS NOT NULL AND" AFTER_CURSOR("h.opened_at") " AND" NO_OPEN_ALERT
    "   ORDER BY h.opened_at, s.id LIMIT $5::int),"
    " c1 AS ("
    "  SELECT c0.*, x.total, x.p90 FROM c0 LEFT JOIN LATERAL ("
    "    SELECT max(y.total) AS total, min(y.hours) FILTER (WHERE y.cum * 10 >= y.total * 9) AS p90"
    "      FROM (SELECT d.hours, sum(d.n) OVER (ORDER BY d.hours) AS cum, sum(d.n) OVER () AS total"
    "              FROM customs_hold_durations d WHERE d.destination = c0.destination) y) x ON true),"
    " c2 AS ("
    "  SELECT c1.*,"
    "         CASE WHEN total >= $7::bigint THEN (p90 + 1) * 3600::bigint ELSE $8::bigint END"
    "           AS threshold_s,"
    "         CASE WHEN total >= $7::bigint THEN 'lane' ELSE 'default' END AS threshold_src,"
    "         jsonb_build_object('hold_id', hold_id, 'reason', reason, 'actor', actor,"
    "                            'samples', coalesce(total, 0)) AS detail"
    "    FROM c1),"
    " cand AS ("
    "  SELECT c2.*, since AS kt,"
    "         to_timestamp($1::bigint) - since > make_interval(secs => threshold_s) AS due"
    "    FROM c2)" RAISE_TAIL;

/* not_picked_up: $6 threshold seconds. Longest in info_received first
 * (shipments_label_only). */
#define ENTERED "coalesce(s.status_at, s.created_at)"
static const char pickup_sql[] =
    "WITH cand AS ("
    "  SELECT" SHIP_COLS ", " ENTERED " AS since, " ENTERED " AS kt,"
    "         $6::bigint AS threshold_s, 'default' AS threshold_src, '{}'::jsonb AS detail,"
    "         true AS due"
    "    FROM shipments s"
    "   WHERE s.next_poll_at IS NOT NULL AND s.status = 'info_received'"
    "     AND " ENTERED " < to_timestamp($1::bigint) - make_interval(secs => $6::bigint)"
    "     AND" AFTER_CURSOR(ENTERED) " AND" NO_OPEN_ALERT
    "   ORDER BY " ENTERED ", s.id LIMIT $5::int)" RAISE_TAIL;

/* tracking_failing: $6 streak bar. By id (kt is constant) within the failing
 * shipments (shipments_failing); since = the last movement known. */
static const char failing_sql[] =
    "WITH cand AS ("
    "  SELECT" SHIP_COLS ", " MOVED " AS since, '-infinity'::timestamptz AS kt,"
    "         0::bigint AS threshold_s, 'default' AS threshold_src,"
    "         jsonb_build_object('poll_error_streak', s.poll_error_streak,"
    "                            'streak_bar', $6::int,"
    "                            'last_poll_error', left(s.last_poll_error, 200)) AS detail,"
    "         true AS due"
    "    FROM shipments s"
    "   WHERE s.next_poll_at IS NOT NULL AND s.poll_error_streak > 0"
    "     AND s.poll_error_streak >= $6::int"
    "     AND" AFTER_CURSOR("'-infinity'::timestamptz") " AND" NO_OPEN_ALERT
    "   ORDER BY s.id LIMIT $5::int)" RAISE_TAIL;

/* Run one rule batch after batch. extra: $6.. */
static enum st_err raise_rule(PGconn *conn, const struct st_config *cfg, const char *kind,
                              const char *sql, time_t now, const char *const *extra, int n_extra,
                              struct scanner_stats *stats, char *err, size_t errlen)
{
    char now_s[24], cap[24], key[64] = "-infinity", id[24] = "0";
    const char *p[8];
    enum st_err rc = ST_OK;

    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    snprintf(cap, sizeof(cap), "%lld", cfg->scan_batch);
    p[0] = now_s;
    p[1] = kind;
    p[2] = key;
    p[3] = id;
    p[4] = cap;
    for (int i = 0; i < n_extra && i < 3; i++)
        p[5 + i] = extra[i];
    for (int batch = 0; batch < RULE_BATCHES_MAX; batch++) {
        PGresult *res = db_exec(conn, kind, sql, 5 + n_extra, p, PGRES_TUPLES_OK, &rc, err,
                                errlen);
        long long seen, raised;

        if (res == NULL)
            return rc;
        seen = atoll(PQgetvalue(res, 0, 0));
        raised = atoll(PQgetvalue(res, 0, 1));
        stats->raised += (long)raised;
        if (seen > 0) {
            snprintf(key, sizeof(key), "%s", PQgetvalue(res, 0, 2));
            snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 3));
        }
        PQclear(res);
        if (raised > 0)
            log_info("scan.raised", 0, NULL, "%lld new %s alert%s", raised, kind,
                     raised == 1 ? "" : "s");
        if (seen < cfg->scan_batch)
            break;
    }
    return ST_OK;
}

/* Open alerts whose cause is gone: cleared, with their message, in one
 * statement per batch. $1 now, $2 streak bar, $3/$4 cursor (since, id), $5
 * cap. Oldest first through alerts_open_since. */
static const char clear_sql[] =
    "WITH c AS ("
    "  SELECT a.id, a.shipment_id, a.kind, a.since, a.opened_at, s.carrier, s.tracking_number,"
    "         coalesce(s.destination_country, '') AS destination, s.status,"
    "         CASE"
    "           WHEN s.next_poll_at IS NULL THEN 'shipment_finished'"
    "           WHEN a.kind = 'stuck' AND " MOVED " IS DISTINCT FROM a.since THEN 'moved'"
    "           WHEN a.kind = 'not_picked_up' AND s.status <> 'info_received' THEN 'picked_up'"
    "           WHEN a.kind = 'customs_hold_long' AND NOT EXISTS ("
    "                  SELECT 1 FROM customs_holds h WHERE h.id = (a.detail ->> 'hold_id')::bigint"
    "                     AND h.closed_at IS NULL) THEN 'hold_closed'"
    "           WHEN a.kind = 'tracking_failing' AND s.poll_error_streak < $2::int"
    "             THEN 'tracking_recovered'"
    "         END AS reason"
    "    FROM alerts a JOIN shipments s ON s.id = a.shipment_id"
    "   WHERE a.cleared_at IS NULL AND a.since >= $3::timestamptz"
    "     AND (a.since > $3::timestamptz OR a.id > $4::bigint)"
    "   ORDER BY a.since, a.id LIMIT $5::int),"
    " upd AS ("
    "  UPDATE alerts a SET cleared_at = greatest(to_timestamp($1::bigint), a.opened_at),"
    "         clear_reason = c.reason"
    "    FROM c WHERE a.id = c.id AND c.reason IS NOT NULL AND a.cleared_at IS NULL"
    "  RETURNING a.id, a.cleared_at),"
    " msg AS ("
    "  INSERT INTO outbox (topic, msg_key, payload)"
    "  SELECT '" TOPIC_ALERTS "', c.shipment_id::text, jsonb_build_object("
    "      'type', 'alert_cleared', 'alert_id', c.id, 'kind', c.kind,"
    "      'shipment_id', c.shipment_id, 'carrier', c.carrier,"
    "      'tracking_number', c.tracking_number, 'destination', nullif(c.destination, ''),"
    "      'status', c.status, 'since', " ISO("c.since") ", 'reason', c.reason,"
    "      'duration_s', floor(extract(epoch FROM u.cleared_at - c.opened_at))::bigint,"
    "      'at', " ISO("u.cleared_at") ")"
    "    FROM upd u JOIN c ON c.id = u.id ORDER BY u.id"
    "  RETURNING 1)"
    " SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM msg),"
    "        (SELECT since::text FROM c ORDER BY since DESC, id DESC LIMIT 1),"
    "        (SELECT id FROM c ORDER BY since DESC, id DESC LIMIT 1)";

static enum st_err clear_alerts(PGconn *conn, const struct st_config *cfg, time_t now,
                                struct scanner_stats *stats, char *err, size_t errlen)
{
    char now_s[24], bar[24], cap[24], key[64] = "-infinity", id[24] = "0";
    const char *p[5] = { now_s, bar, key, id, cap };
    enum st_err rc = ST_OK;

    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    snprintf(bar, sizeof(bar), "%lld", cfg->failing_streak);
    snprintf(cap, sizeof(cap), "%lld", cfg->scan_batch);
    for (int batch = 0; batch < RULE_BATCHES_MAX; batch++) {
        PGresult *res = db_exec(conn, "clear alerts", clear_sql, 5, p, PGRES_TUPLES_OK, &rc, err,
                                errlen);
        long long seen, cleared;

        if (res == NULL)
            return rc;
        seen = atoll(PQgetvalue(res, 0, 0));
        cleared = atoll(PQgetvalue(res, 0, 1));
        stats->cleared += (long)cleared;
        if (seen > 0) {
            snprintf(key, sizeof(key), "%s", PQgetvalue(res, 0, 2));
            snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 3));
        }
        PQclear(res);
        if (cleared > 0)
            log_info("scan.cleared", 0, NULL, "%lld alert%s cleared", cleared,
                     cleared == 1 ? "" : "s");
        if (seen < cfg->scan_batch)
            break;
    }
    return ST_OK;
}

/* The stuck rule's default thresholds as {"status": seconds}, and the
 * smallest threshold any watched status can have (defaults and lanes). */
static enum st_err stuck_params(PGconn *conn, const struct st_config *cfg, char *defaults,
                                size_t cap, long long *min_s, char *err, size_t errlen)
{
    char min_samples[24];
    const char *p[1] = { min_samples };
    enum st_err rc = ST_OK;
    PGresult *res;
    size_t o = 0;

    *min_s = -1;
    o += (size_t)snprintf(defaults + o, cap - o, "{");
    for (int i = 0; i < ST_STATUS__COUNT; i++) {
        const char *name = st_status_name((enum st_status)i);
        long long ms = config_stuck_after(cfg, name);

        if (ms < 0)
            continue;
        if (*min_s < 0 || ms / 1000 < *min_s)
            *min_s = ms / 1000;
        if (o < cap)
            o += (size_t)snprintf(defaults + o, cap - o, "%s\"%s\":%lld", o > 1 ? "," : "", name,
                                  ms / 1000);
    }
    if (o + 2 > cap)
        return st_fail(err, errlen, ST_PERMANENT, "stuck thresholds do not fit %zu bytes", cap);
    snprintf(defaults + o, cap - o, "}");
    snprintf(min_samples, sizeof(min_samples), "%lld", cfg->lane_min_samples);
    res = db_exec(conn, "smallest lane threshold",
                  "SELECT min(p90_hours) FROM lane_dwell_p90"
                  " WHERE samples >= $1::bigint AND status <> 'info_received'",
                  1, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    if (!PQgetisnull(res, 0, 0)) {
        long long lane = (atoll(PQgetvalue(res, 0, 0)) + 1) * 3600;

        if (*min_s < 0 || lane < *min_s)
            *min_s = lane;
    }
    PQclear(res);
    return ST_OK;
}

enum st_err scanner_pass(PGconn *conn, const struct st_config *cfg, time_t now,
                         struct scanner_stats *stats, char *err, size_t errlen)
{
    char defaults[1024], cutoff[24], min_samples[24], arg[24];
    const char *x[3];
    long long min_s, customs_s;
    enum st_err rc;
    bool full = true;

    memset(stats, 0, sizeof(*stats));
    for (int i = 0; i < DWELL_BATCHES_MAX && full; i++)
        if ((rc = dwell_batch(conn, cfg, stats, &full, err, errlen)) != ST_OK)
            return rc;
    /* clear first: a parcel that moved and stalled again is a new episode now */
    if ((rc = clear_alerts(conn, cfg, now, stats, err, errlen)) != ST_OK)
        return rc;

    if ((rc = stuck_params(conn, cfg, defaults, sizeof(defaults), &min_s, err, errlen)) != ST_OK)
        return rc;
    snprintf(min_samples, sizeof(min_samples), "%lld", cfg->lane_min_samples);
    if (min_s >= 0) {
        snprintf(cutoff, sizeof(cutoff), "%lld", (long long)now - min_s);
        x[0] = cutoff;
        x[1] = min_samples;
        x[2] = defaults;
        if ((rc = raise_rule(conn, cfg, "stuck", stuck_sql, now, x, 3, stats, err, errlen)) !=
            ST_OK)
            return rc;
    }

    /* a destination's own p90 may be as short as one hour */
    customs_s = cfg->customs_hold_alert_ms / 1000;
    snprintf(cutoff, sizeof(cutoff), "%lld", (long long)now - (customs_s < 3600 ? customs_s : 3600));
    snprintf(arg, sizeof(arg), "%lld", customs_s);
    x[0] = cutoff;
    x[1] = min_samples;
    x[2] = arg;
    if ((rc = raise_rule(conn, cfg, "customs_hold_long", customs_sql, now, x, 3, stats, err,
                         errlen)) != ST_OK)
        return rc;

    snprintf(arg, sizeof(arg), "%lld", cfg->pickup_alert_ms / 1000);
    x[0] = arg;
    if ((rc = raise_rule(conn, cfg, "not_picked_up", pickup_sql, now, x, 1, stats, err,
                         errlen)) != ST_OK)
        return rc;

    snprintf(arg, sizeof(arg), "%lld", cfg->failing_streak);
    x[0] = arg;
    return raise_rule(conn, cfg, "tracking_failing", failing_sql, now, x, 1, stats, err, errlen);
}

/* ---- the role ---- */

static void nap_ms(long long ms, volatile sig_atomic_t *running)
{
    /* in short steps, so SIGTERM (which may land between naps) is seen soon */
    while (ms > 0 && *running) {
        long long step = ms > 200 ? 200 : ms;
        struct timespec ts = { (time_t)(step / 1000), (long)(step % 1000) * 1000000L };

        nanosleep(&ts, NULL);
        ms -= step;
    }
}

#define SCANNER_RETENTION_EVERY_S 3600 /* the retention job's period */

int scanner_run(const struct st_config *cfg, const struct scanner_opts *opts,
                struct scanner_stats *totals)
{
    const struct retention_policy pol = { cfg->retention_outbox_ms, cfg->retention_raw_ms,
                                          cfg->retention_personal_ms };
    PGconn *conn = NULL;
    bool passed = false;
    time_t next_retention = 0;
    int rc = 0;

    memset(totals, 0, sizeof(*totals));
    log_info("scan.start", 0, NULL, "scanning every %lld s for stuck parcels",
             cfg->scan_interval_ms / 1000);
    while (migrate_ensure_conn(&conn, cfg->database_url, cfg->db_retry_max_ms, opts->running,
                               "scanner")) {
        struct scanner_stats st;
        time_t now = time(NULL) + (time_t)(cfg->clock_offset_ms / 1000);
        char err[1024];
        enum st_err e = scanner_pass(conn, cfg, now, &st, err, sizeof(err));

        totals->events += st.events;
        totals->samples += st.samples;
        totals->lanes += st.lanes;
        totals->raised += st.raised;
        totals->cleared += st.cleared;
        if (e != ST_OK) {
            log_error("scan.pass", 0, NULL, "%s (%s)", err, st_err_name(e));
            rc = 1;
        } else {
            log_info("scan.pass", 0, NULL, "events %ld, samples %ld, lanes %ld, raised %ld, "
                     "cleared %ld", st.events, st.samples, st.lanes, st.raised, st.cleared);
            rc = 0;
        }
        passed = true;
        /* the retention job rides along, once an hour (and on the first pass) */
        if (!opts->once && time(NULL) >= next_retention) {
            struct privacy_stats ps;

            if (privacy_retention(conn, &pol, false, &ps, err, sizeof(err)) != ST_OK)
                log_error("retention.pass", 0, NULL, "%s", err);
            next_retention = time(NULL) + SCANNER_RETENTION_EVERY_S;
        }
        if (opts->once)
            break;
        /* after a failure, try again soon (at most every 10 s), not a whole interval later */
        nap_ms(e == ST_OK || cfg->scan_interval_ms < 10000 ? cfg->scan_interval_ms : 10000,
               opts->running);
    }
    if (conn != NULL)
        PQfinish(conn);
    if (!passed)
        rc = 1; /* stopped before the first pass */
    log_info("scan.stop", 0, NULL, "events %ld, samples %ld, raised %ld, cleared %ld",
             totals->events, totals->samples, totals->raised, totals->cleared);
    return opts->once ? rc : 0;
}

/* ---- `shiptrack stuck` ---- */

static const char *const alert_kinds[] = {
    "stuck", "customs_hold_long", "not_picked_up", "tracking_failing",
};

const char *scanner_filter_check(const struct stuck_filter *f, char *buf, size_t cap)
{
    enum st_status st;
    bool kind_ok = f->kind == NULL;

    if (f->carrier != NULL && carrier_find(f->carrier) == NULL)
        snprintf(buf, cap, "--carrier: \"%.40s\" is not a supported carrier (see `shiptrack "
                 "carriers`)", f->carrier);
    else if (f->destination != NULL &&
             (strlen(f->destination) != 2 || f->destination[0] < 'A' || f->destination[0] > 'Z' ||
              f->destination[1] < 'A' || f->destination[1] > 'Z'))
        snprintf(buf, cap, "--destination: \"%.40s\" is not a two-letter country code",
                 f->destination);
    else if (f->status != NULL && !st_status_parse(f->status, &st))
        snprintf(buf, cap, "--status: \"%.40s\" is not a status (in_transit, held, ...)",
                 f->status);
    else {
        for (size_t i = 0; !kind_ok && i < sizeof(alert_kinds) / sizeof(alert_kinds[0]); i++)
            kind_ok = strcmp(f->kind, alert_kinds[i]) == 0;
        if (!kind_ok)
            snprintf(buf, cap, "--kind: \"%.40s\" is not stuck, customs_hold_long, "
                     "not_picked_up or tracking_failing", f->kind);
        else if (f->min_age_s < 0)
            snprintf(buf, cap, "--min-age: must not be negative");
        else if (f->limit < 1 || f->limit > 10000)
            snprintf(buf, cap, "--limit: must be 1 to 10000");
        else
            return NULL;
    }
    return buf;
}

/* Open alerts, oldest first (alerts_open_since). $1..$4 filters or NULL, $5
 * newest since (now - min age), $6 limit, $7 now. */
static const char list_sql[] =
    "SELECT a.id, a.shipment_id, s.carrier, s.tracking_number,"
    " s.destination_country, s.status, a.kind,"
    " " ISO("a.since") ", " ISO("a.opened_at") ","
    " greatest(0, floor(extract(epoch FROM to_timestamp($7::bigint) - a.since)))::bigint,"
    " a.threshold_s, a.threshold_src, a.detail::text"
    " FROM alerts a JOIN shipments s ON s.id = a.shipment_id"
    " WHERE a.cleared_at IS NULL AND a.since <= to_timestamp($5::bigint)"
    "   AND ($1::text IS NULL OR s.carrier = $1::text)"
    "   AND ($2::text IS NULL OR s.destination_country = $2::text)"
    "   AND ($3::text IS NULL OR s.status = $3::text)"
    "   AND ($4::text IS NULL OR a.kind = $4::text)"
    " ORDER BY a.since, a.id LIMIT $6::int";

enum st_err scanner_list(PGconn *conn, const struct stuck_filter *f, time_t now, json_t **out,
                         char *err, size_t errlen)
{
    char before[24], limit[24], now_s[24];
    const char *p[7];
    enum st_err rc = ST_OK;
    json_t *arr;
    PGresult *res;

    *out = NULL;
    snprintf(before, sizeof(before), "%lld", (long long)now - f->min_age_s);
    snprintf(limit, sizeof(limit), "%ld", f->limit);
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    p[0] = f->carrier;
    p[1] = f->destination;
    p[2] = f->status;
    p[3] = f->kind;
    p[4] = before;
    p[5] = limit;
    p[6] = now_s;
    res = db_exec(conn, "list open alerts", list_sql, 7, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    if ((arr = json_array()) == NULL) {
        PQclear(res);
        return st_fail(err, errlen, ST_RETRY, "out of memory");
    }
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *detail = json_loads(PQgetvalue(res, r, 12), 0, NULL);
        json_t *o = json_pack(
            "{s:I, s:I, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o}", "alert_id",
            (json_int_t)atoll(PQgetvalue(res, r, 0)), "shipment_id",
            (json_int_t)atoll(PQgetvalue(res, r, 1)), "carrier", PQgetvalue(res, r, 2),
            "tracking_number", PQgetvalue(res, r, 3), "destination",
            PQgetisnull(res, r, 4) ? json_null() : json_string(PQgetvalue(res, r, 4)), "status",
            PQgetvalue(res, r, 5), "kind", PQgetvalue(res, r, 6), "since", PQgetvalue(res, r, 7),
            "opened_at", PQgetvalue(res, r, 8), "age_s", (json_int_t)atoll(PQgetvalue(res, r, 9)),
            "threshold_s", (json_int_t)atoll(PQgetvalue(res, r, 10)), "threshold_src",
            PQgetvalue(res, r, 11), "detail", detail ? detail : json_object());

        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            PQclear(res);
            return st_fail(err, errlen, ST_RETRY, "out of memory");
        }
    }
    PQclear(res);
    *out = arr;
    return ST_OK;
}

const char *scanner_fmt_age(long long s, char *buf, size_t cap)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(buf, cap, "%lldd %lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, cap, "%lldh %lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, cap, "%lldm", s / 60);
    else
        snprintf(buf, cap, "%llds", s);
    return buf;
}

void scanner_print_table(FILE *f, const json_t *alerts)
{
    size_t i;
    json_t *a;

    if (json_array_size(alerts) == 0) {
        fputs("no open alerts match\n", f);
        return;
    }
    fprintf(f, "%8s  %-8s  %-24s  %-4s  %-20s  %-17s  %-8s  %s\n", "SHIPMENT", "CARRIER",
            "TRACKING NUMBER", "DEST", "STATUS", "KIND", "AGE", "THRESHOLD");
    json_array_foreach(alerts, i, a) {
        const char *dest = json_string_value(json_object_get(a, "destination"));
        const char *kind = json_string_value(json_object_get(a, "kind"));
        char age[32], thr[48], t[32];

        scanner_fmt_age(json_integer_value(json_object_get(a, "age_s")), age, sizeof(age));
        if (strcmp(kind, "tracking_failing") == 0)
            snprintf(thr, sizeof(thr), "%lld failed polls",
                     (long long)json_integer_value(json_object_get(
                         json_object_get(a, "detail"), "poll_error_streak")));
        else
            snprintf(thr, sizeof(thr), "%s (%s)",
                     scanner_fmt_age(json_integer_value(json_object_get(a, "threshold_s")), t,
                                     sizeof(t)),
                     json_string_value(json_object_get(a, "threshold_src")));
        fprintf(f, "%8lld  %-8s  %-24s  %-4s  %-20s  %-17s  %-8s  %s\n",
                (long long)json_integer_value(json_object_get(a, "shipment_id")),
                json_string_value(json_object_get(a, "carrier")),
                json_string_value(json_object_get(a, "tracking_number")), dest ? dest : "-",
                json_string_value(json_object_get(a, "status")), kind, age, thr);
    }
    fprintf(f, "%zu open alert%s\n", json_array_size(alerts),
            json_array_size(alerts) == 1 ? "" : "s");
}

const char *scanner_statement(const char *name)
{
    static const struct {
        const char *name;
        const char *sql;
    } stmts[] = {
        { "dwell", dwell_sql },         { "lane_p90", p90_sql },
        { "stuck", stuck_sql },         { "customs_hold_long", customs_sql },
        { "not_picked_up", pickup_sql }, { "tracking_failing", failing_sql },
        { "clear", clear_sql },         { "list", list_sql },
    };

    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
        if (strcmp(stmts[i].name, name) == 0)
            return stmts[i].sql;
    return NULL;
}
