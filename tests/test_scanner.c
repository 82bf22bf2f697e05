/*
 * test_scanner.c - the scanner against a real PostgreSQL with a clock the
 * tests move: dwell statistics from synthetic events (incremental, late
 * events, settle time), the lane p90 above the minimum sample and the
 * defaults below it, each rule raising one alert and one outbox message per
 * episode, clearing with a message when the cause is gone, a new episode
 * after a new stall, `shiptrack stuck` through the built binary, and the
 * plans of the scanner's queries (indexes, not sequential scans).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "kafkaread.h"
#include "relay.h"
#include "scanner.h"
#include "testdb.h"
#include "testutil.h"

#define H 3600LL
#define D (24 * H)
/* A fixed instant (2026-09-21T14:13:20Z) the tests count from. */
#define T0 1790000000LL

static struct testdb db;

static void setup(void)
{
    tdb_create(&db, true);
}

static void teardown(void)
{
    tdb_drop(&db);
}

TestSuite(scanner, .init = setup, .fini = teardown, .timeout = 120);

/* Configuration for db with the given SHIPTRACK_* overrides ("KEY=value", NULL-ended). */
static void load_config(struct st_config *cfg, const char *const *env)
{
    char err[256];

    setenv("SHIPTRACK_DATABASE_URL", db.url, 1);
    setenv("SHIPTRACK_SCAN_SETTLE", "0", 1);
    setenv("SHIPTRACK_LANE_MIN_SAMPLES", "5", 1);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        char key[128];
        const char *eq = strchr(env[i], '=');

        cr_assert_not_null(eq);
        snprintf(key, sizeof(key), "%.*s", (int)(eq - env[i]), env[i]);
        setenv(key, eq + 1, 1);
    }
    cr_assert_eq(config_load(cfg, err, sizeof(err)), ST_OK, "%s", err);
}

/* One pass at `now`; asserts success. */
static struct scanner_stats pass(const struct st_config *cfg, long long now)
{
    struct scanner_stats st;
    char err[1024];

    cr_assert_eq(scanner_pass(db.conn, cfg, (time_t)now, &st, err, sizeof(err)), ST_OK, "%s",
                 err);
    return st;
}

/* An active shipment that last moved (and entered its status) at epoch
 * `moved`, registered ten days before. */
static long long ship(const char *carrier, const char *number, const char *dest,
                      const char *status, long long moved)
{
    char sql[768], *id;
    long long v;

    snprintf(sql, sizeof(sql),
             "INSERT INTO shipments (carrier, tracking_number, destination_country, status,"
             " status_at, last_event_at, created_at, next_poll_at)"
             " VALUES ('%s', '%s', '%s', '%s', to_timestamp(%lld), to_timestamp(%lld),"
             " to_timestamp(%lld), now()) RETURNING id",
             carrier, number, dest, status, moved, moved, moved - 10 * D);
    id = tdb_scalar(db.conn, sql);
    cr_assert_not_null(id);
    v = atoll(id);
    free(id);
    return v;
}

/* A stored event of shipment sid at epoch t (recorded an hour ago unless fresh). */
static void event(long long sid, long long t, const char *status, bool affects, bool fresh)
{
    static int seq;
    char sql[1024];

    snprintf(sql, sizeof(sql),
             "INSERT INTO tracking_events (shipment_id, occurred_at, occurred_local, offset_kind,"
             " status, substatus, affects_status, dedupe_key, recorded_at)"
             " VALUES (%lld, to_timestamp(%lld), to_timestamp(%lld) AT TIME ZONE 'UTC', 'carrier',"
             " '%s', '%s', %s, md5('%lld-%lld-%d-%d')::uuid, now() - interval '%s')",
             sid, t, t, status, affects ? "none" : "unmapped", affects ? "true" : "false", sid, t,
             ++seq, (int)getpid(), fresh ? "0 s" : "1 hour");
    tdb_exec(db.conn, sql);
}

static long long count(const char *sql)
{
    return tdb_count(db.conn, sql);
}

/* n in lane_dwell for (carrier, destination, status, hours). */
static long long dwell_n(const char *carrier, const char *dest, const char *status, int hours)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT coalesce(sum(n), 0) FROM lane_dwell WHERE carrier = '%s' AND destination = '%s'"
             " AND status = '%s' AND hours = %d",
             carrier, dest, status, hours);
    return count(sql);
}

/* Alerts of shipment sid and kind: total and open. */
static long long alerts(long long sid, const char *kind, bool open_only)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM alerts WHERE shipment_id = %lld AND kind = '%s'%s", sid, kind,
             open_only ? " AND cleared_at IS NULL" : "");
    return count(sql);
}

/* The alert messages about sid, oldest first, as a JSON array. */
static json_t *messages(long long sid)
{
    char sql[256], *text;
    json_t *arr;

    snprintf(sql, sizeof(sql),
             "SELECT coalesce(jsonb_agg(payload ORDER BY id), '[]')::text FROM outbox"
             " WHERE topic = 'shiptrack.alerts.v1' AND msg_key = '%lld'",
             sid);
    text = tdb_scalar(db.conn, sql);
    arr = json_loads(text, 0, NULL);
    free(text);
    cr_assert_not_null(arr);
    return arr;
}

/* Member of message i as a string / integer. */
static const char *mstr(json_t *msgs, size_t i, const char *key)
{
    const char *v = json_string_value(json_object_get(json_array_get(msgs, i), key));

    return v ? v : "(none)";
}

static long long mint(json_t *msgs, size_t i, const char *key)
{
    return json_integer_value(json_object_get(json_array_get(msgs, i), key));
}

Test(scanner, dwell_samples_are_added_incrementally)
{
    struct st_config cfg;
    struct scanner_stats st;
    long long a = ship("dhl", "JD0001", "DE", "in_transit", T0 + 30 * H);

    load_config(&cfg, NULL);
    event(a, T0, "in_transit", true, false);
    event(a, T0 + 5 * H, "in_transit", true, false);
    event(a, T0 + 5 * H + 1800, "in_transit", false, false); /* unmapped: no sample */
    event(a, T0 + 30 * H, "out_for_delivery", true, false);
    st = pass(&cfg, T0 + 31 * H);
    cr_expect_eq(st.events, 4);
    cr_expect_eq(st.samples, 2);
    cr_expect_eq(dwell_n("dhl", "DE", "in_transit", 5), 1);
    cr_expect_eq(dwell_n("dhl", "DE", "in_transit", 25), 1);
    cr_expect_eq(count("SELECT sum(n) FROM lane_dwell"), 2);
    cr_expect_eq(count("SELECT value FROM job_watermarks WHERE name = 'lane_dwell'"),
                 count("SELECT max(id) FROM tracking_events"));
    cr_expect_eq(count("SELECT samples FROM lane_dwell_p90 WHERE carrier = 'dhl'"
                       " AND destination = 'DE' AND status = 'in_transit'"), 2);
    cr_expect_eq(count("SELECT samples FROM lane_dwell_p90 WHERE carrier = 'dhl'"
                       " AND destination = '*' AND status = 'in_transit'"), 2);

    /* nothing new: nothing read, nothing added */
    st = pass(&cfg, T0 + 32 * H);
    cr_expect_eq(st.events, 0);
    cr_expect_eq(count("SELECT sum(n) FROM lane_dwell"), 2);

    /* one new event: one new sample, the old ones are not read again */
    event(a, T0 + 31 * H + 600, "delivered", true, false);
    st = pass(&cfg, T0 + 33 * H);
    cr_expect_eq(st.events, 1);
    cr_expect_eq(st.samples, 1);
    cr_expect_eq(dwell_n("dhl", "DE", "out_for_delivery", 1), 1);

    /* a late, older event falls inside an interval already counted: no sample */
    event(a, T0 + 2 * H, "in_transit", true, false);
    st = pass(&cfg, T0 + 34 * H);
    cr_expect_eq(st.events, 1);
    cr_expect_eq(st.samples, 0);
    cr_expect_eq(count("SELECT sum(n) FROM lane_dwell"), 3);
    config_free(&cfg);
}

Test(scanner, dwell_waits_for_events_younger_than_the_settle_time)
{
    const char *env[] = { "SHIPTRACK_SCAN_SETTLE=10m", NULL };
    struct st_config cfg;
    struct scanner_stats st;
    long long a = ship("ups", "1Z0001", "FR", "in_transit", T0 + 3 * H);

    load_config(&cfg, env);
    event(a, T0, "in_transit", true, false);
    event(a, T0 + 3 * H, "in_transit", true, true); /* recorded just now */
    event(a, T0 + 4 * H, "in_transit", true, false);
    st = pass(&cfg, T0 + 5 * H);
    /* stops before the fresh one, even though a later id is old enough */
    cr_expect_eq(st.events, 1);
    cr_expect_eq(count("SELECT sum(n) FROM lane_dwell"), 0);
    tdb_exec(db.conn, "UPDATE tracking_events SET recorded_at = now() - interval '1 hour'");
    st = pass(&cfg, T0 + 6 * H);
    cr_expect_eq(st.events, 2);
    cr_expect_eq(dwell_n("ups", "FR", "in_transit", 3), 1);
    cr_expect_eq(dwell_n("ups", "FR", "in_transit", 1), 1);
    config_free(&cfg);
}

/* n finished shipments of carrier to dest that spent `hours` in in_transit. */
static void history(const char *carrier, const char *prefix, const char *dest, int n, int hours)
{
    char number[32], sql[128];

    for (int i = 0; i < n; i++) {
        long long s;

        snprintf(number, sizeof(number), "%s%04d", prefix, i);
        s = ship(carrier, number, dest, "delivered", T0 - 20 * D + hours * H);
        snprintf(sql, sizeof(sql), "UPDATE shipments SET next_poll_at = NULL WHERE id = %lld", s);
        tdb_exec(db.conn, sql);
        event(s, T0 - 20 * D, "in_transit", true, false);
        event(s, T0 - 20 * D + hours * H, "delivered", true, false);
    }
}

Test(scanner, lane_p90_above_the_minimum_sample_default_below)
{
    struct st_config cfg;
    json_t *m;
    /* dhl->FR: 10 samples of 10 h (p90 bucket 10: 11 h); ups->IT: 4 samples (too few) */
    long long fr, es, it, it_old;

    load_config(&cfg, NULL);
    history("dhl", "JDFR", "FR", 10, 10);
    history("ups", "1ZIT", "IT", 4, 2);
    fr = ship("dhl", "JDX001", "FR", "in_transit", T0);
    es = ship("dhl", "JDX002", "ES", "in_transit", T0);  /* no lane: dhl over all destinations */
    it = ship("ups", "1ZX001", "IT", "in_transit", T0);  /* lane too thin: default 5d */
    it_old = ship("ups", "1ZX002", "IT", "in_transit", T0 - 5 * D);
    pass(&cfg, T0 + 12 * H);

    cr_expect_eq(alerts(fr, "stuck", true), 1);
    m = messages(fr);
    cr_assert_eq(json_array_size(m), 1);
    cr_expect_str_eq(mstr(m, 0, "threshold_src"), "lane");
    cr_expect_eq(mint(m, 0, "threshold_s"), 11 * H);
    cr_expect_eq(mint(m, 0, "age_s"), 12 * H);
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(json_array_get(m, 0), "detail"), "lane")),
                     "destination");
    json_decref(m);

    cr_expect_eq(alerts(es, "stuck", true), 1);
    m = messages(es);
    cr_assert_eq(json_array_size(m), 1);
    cr_expect_str_eq(mstr(m, 0, "threshold_src"), "lane");
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(json_array_get(m, 0), "detail"), "lane")),
                     "carrier");
    json_decref(m);

    cr_expect_eq(alerts(it, "stuck", false), 0, "12 h is below the 5 d default");
    cr_expect_eq(alerts(it_old, "stuck", true), 1);
    m = messages(it_old);
    cr_assert_eq(json_array_size(m), 1);
    cr_expect_str_eq(mstr(m, 0, "threshold_src"), "default");
    cr_expect_eq(mint(m, 0, "threshold_s"), 5 * D);
    json_decref(m);
    config_free(&cfg);
}

Test(scanner, stuck_once_per_episode_cleared_by_movement_then_a_new_episode)
{
    const char *env[] = { "SHIPTRACK_STUCK_AFTER=in_transit=2d", NULL };
    struct st_config cfg;
    struct scanner_stats st;
    long long a, b, c;
    json_t *m;

    load_config(&cfg, env);
    a = ship("fedex", "123456789012", "US", "in_transit", T0);
    b = ship("fedex", "123456789013", "US", "in_transit", T0 + 3 * D); /* recent */
    c = ship("fedex", "123456789014", "US", "info_received", T0 - 30 * D); /* pickup rule's */
    (void)c;
    st = pass(&cfg, T0 + 3 * D);
    cr_expect_eq(alerts(a, "stuck", true), 1);
    cr_expect_eq(alerts(b, "stuck", false), 0);
    cr_expect_eq(count("SELECT count(*) FROM alerts WHERE kind = 'stuck'"), 1);
    m = messages(a);
    cr_assert_eq(json_array_size(m), 1);
    cr_expect_str_eq(mstr(m, 0, "type"), "alert_raised");
    cr_expect_str_eq(mstr(m, 0, "kind"), "stuck");
    cr_expect_str_eq(mstr(m, 0, "carrier"), "fedex");
    cr_expect_str_eq(mstr(m, 0, "tracking_number"), "123456789012");
    cr_expect_str_eq(mstr(m, 0, "destination"), "US");
    cr_expect_str_eq(mstr(m, 0, "status"), "in_transit");
    cr_expect_str_eq(mstr(m, 0, "since"), "2026-09-21T14:13:20Z");
    cr_expect_eq(mint(m, 0, "age_s"), 3 * D);
    cr_expect_eq(mint(m, 0, "threshold_s"), 2 * D);
    cr_expect_eq(mint(m, 0, "shipment_id"), a);
    cr_expect_eq(mint(m, 0, "alert_id"),
                 count("SELECT id FROM alerts WHERE kind = 'stuck' AND cleared_at IS NULL"));
    json_decref(m);

    /* later passes: still stuck, still one alert and one message */
    st = pass(&cfg, T0 + 3 * D + H);
    cr_expect_eq(st.raised, 0);
    pass(&cfg, T0 + 4 * D);
    cr_expect_eq(alerts(a, "stuck", false), 1);
    m = messages(a);
    cr_expect_eq(json_array_size(m), 1);
    json_decref(m);

    /* it moves: cleared, with a message */
    tdb_exec(db.conn, "UPDATE shipments SET last_event_at = to_timestamp(1790000000 + 4 * 86400"
                      " + 3600) WHERE tracking_number = '123456789012'");
    st = pass(&cfg, T0 + 4 * D + 2 * H);
    cr_expect_eq(st.cleared, 1);
    cr_expect_eq(alerts(a, "stuck", true), 0);
    m = messages(a);
    cr_assert_eq(json_array_size(m), 2);
    cr_expect_str_eq(mstr(m, 1, "type"), "alert_cleared");
    cr_expect_str_eq(mstr(m, 1, "reason"), "moved");
    cr_expect_eq(mint(m, 1, "alert_id"), mint(m, 0, "alert_id"));
    json_decref(m);
    st = pass(&cfg, T0 + 4 * D + 3 * H);
    cr_expect_eq(st.cleared + st.raised, 0);

    /* stalls again: a new episode, since the new movement */
    st = pass(&cfg, T0 + 7 * D);
    cr_expect_geq(st.raised, 1);
    cr_expect_eq(alerts(a, "stuck", false), 2);
    cr_expect_eq(alerts(a, "stuck", true), 1);
    m = messages(a);
    cr_assert_eq(json_array_size(m), 3);
    cr_expect_str_eq(mstr(m, 2, "type"), "alert_raised");
    cr_expect_eq(mint(m, 2, "age_s"), 3 * D - H);
    cr_expect_neq(mint(m, 2, "alert_id"), mint(m, 0, "alert_id"));
    json_decref(m);

    /* finished: cleared as such */
    tdb_exec(db.conn, "UPDATE shipments SET status = 'delivered', next_poll_at = NULL"
                      " WHERE tracking_number = '123456789012'");
    st = pass(&cfg, T0 + 7 * D + H);
    cr_expect_eq(alerts(a, "stuck", true), 0);
    m = messages(a);
    cr_assert_eq(json_array_size(m), 4);
    cr_expect_str_eq(mstr(m, 3, "reason"), "shipment_finished");
    json_decref(m);
    config_free(&cfg);
}

Test(scanner, customs_hold_long_destination_p90_or_default_cleared_when_released)
{
    struct st_config cfg;
    struct scanner_stats st;
    long long de, us, us_young;
    json_t *m;
    char sql[512];

    load_config(&cfg, NULL);
    /* DE: 10 closed holds of 24 h -> 25 h; US: 3 (too few) -> SHIPTRACK_CUSTOMS_HOLD_ALERT 5d */
    tdb_exec(db.conn, "INSERT INTO customs_hold_durations (destination, hours, n)"
                      " VALUES ('DE', 24, 9), ('DE', 2, 1), ('US', 1, 3)");
    de = ship("dhl", "JDC001", "DE", "held", T0 + 26 * H);
    us = ship("dhl", "JDC002", "US", "held", T0 + 6 * D);
    us_young = ship("dhl", "JDC003", "US", "held", T0 + 6 * D);
    snprintf(sql, sizeof(sql),
             "INSERT INTO customs_holds (shipment_id, state, reason, actor, opened_at) VALUES"
             " (%lld, 'held', 'duties_due', 'recipient', to_timestamp(%lld)),"
             " (%lld, 'held', 'documents_required', 'shipper', to_timestamp(%lld)),"
             " (%lld, 'processing', 'processing', 'nobody', to_timestamp(%lld))",
             de, T0, us, T0 - 5 * D, us_young, T0);
    tdb_exec(db.conn, sql);
    st = pass(&cfg, T0 + 26 * H);
    cr_expect_eq(alerts(de, "customs_hold_long", true), 1);
    cr_expect_eq(alerts(us, "customs_hold_long", true), 1);
    cr_expect_eq(alerts(us_young, "customs_hold_long", false), 0);
    cr_expect_eq(st.raised, 2);
    m = messages(de);
    cr_assert_eq(json_array_size(m), 1);
    cr_expect_str_eq(mstr(m, 0, "kind"), "customs_hold_long");
    cr_expect_str_eq(mstr(m, 0, "threshold_src"), "lane");
    cr_expect_eq(mint(m, 0, "threshold_s"), 25 * H);
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(json_array_get(m, 0), "detail"), "reason")),
                     "duties_due");
    json_decref(m);
    m = messages(us);
    cr_assert_eq(json_array_size(m), 1);
    cr_expect_str_eq(mstr(m, 0, "threshold_src"), "default");
    cr_expect_eq(mint(m, 0, "threshold_s"), 5 * D);
    json_decref(m);

    st = pass(&cfg, T0 + 27 * H);
    cr_expect_eq(st.raised, 0);

    /* released: cleared */
    snprintf(sql, sizeof(sql),
             "UPDATE customs_holds SET closed_at = to_timestamp(%lld), state = 'released'"
             " WHERE shipment_id = %lld", T0 + 27 * H, de);
    tdb_exec(db.conn, sql);
    st = pass(&cfg, T0 + 28 * H);
    cr_expect_eq(st.cleared, 1);
    cr_expect_eq(alerts(de, "customs_hold_long", true), 0);
    m = messages(de);
    cr_assert_eq(json_array_size(m), 2);
    cr_expect_str_eq(mstr(m, 1, "type"), "alert_cleared");
    cr_expect_str_eq(mstr(m, 1, "reason"), "hold_closed");
    json_decref(m);
    config_free(&cfg);
}

Test(scanner, not_picked_up_once_cleared_when_the_label_moves)
{
    struct st_config cfg;
    struct scanner_stats st;
    long long a, b;
    json_t *m;

    load_config(&cfg, NULL);
    a = ship("usps", "9400100000000000000001", "US", "info_received", T0);
    b = ship("usps", "9400100000000000000002", "US", "info_received", T0 + 2 * D);
    st = pass(&cfg, T0 + 4 * D);
    cr_expect_eq(alerts(a, "not_picked_up", true), 1);
    cr_expect_eq(alerts(b, "not_picked_up", false), 0);
    cr_expect_eq(alerts(a, "stuck", false), 0, "info_received is the pickup rule's");
    m = messages(a);
    cr_assert_eq(json_array_size(m), 1);
    cr_expect_str_eq(mstr(m, 0, "kind"), "not_picked_up");
    cr_expect_eq(mint(m, 0, "threshold_s"), 3 * D);
    json_decref(m);
    st = pass(&cfg, T0 + 4 * D + H);
    cr_expect_eq(st.raised, 0);

    tdb_exec(db.conn, "UPDATE shipments SET status = 'in_transit',"
                      " status_at = to_timestamp(1790000000 + 4 * 86400 + 7200),"
                      " last_event_at = to_timestamp(1790000000 + 4 * 86400 + 7200)"
                      " WHERE tracking_number = '9400100000000000000001'");
    st = pass(&cfg, T0 + 4 * D + 3 * H);
    cr_expect_eq(st.cleared, 1);
    m = messages(a);
    cr_assert_eq(json_array_size(m), 2);
    cr_expect_str_eq(mstr(m, 1, "reason"), "picked_up");
    json_decref(m);
    config_free(&cfg);
}

Test(scanner, tracking_failing_at_the_streak_bar_cleared_when_polls_succeed)
{
    const char *env[] = { "SHIPTRACK_FAILING_STREAK=5", NULL };
    struct st_config cfg;
    struct scanner_stats st;
    long long a, b;
    json_t *m;

    load_config(&cfg, env);
    a = ship("laposte", "6A00000000001", "FR", "in_transit", T0);
    b = ship("laposte", "6A00000000002", "FR", "in_transit", T0);
    tdb_exec(db.conn, "UPDATE shipments SET poll_error_streak = 5,"
                      " last_poll_error = 'retry: HTTP 503' WHERE tracking_number = '6A00000000001'");
    tdb_exec(db.conn, "UPDATE shipments SET poll_error_streak = 4"
                      " WHERE tracking_number = '6A00000000002'");
    st = pass(&cfg, T0 + H);
    cr_expect_eq(st.raised, 1);
    cr_expect_eq(alerts(a, "tracking_failing", true), 1);
    cr_expect_eq(alerts(b, "tracking_failing", false), 0);
    m = messages(a);
    cr_assert_eq(json_array_size(m), 1);
    cr_expect_eq(json_integer_value(json_object_get(
                     json_object_get(json_array_get(m, 0), "detail"), "poll_error_streak")),
                 5);
    json_decref(m);
    tdb_exec(db.conn, "UPDATE shipments SET poll_error_streak = 9"
                      " WHERE tracking_number = '6A00000000001'");
    st = pass(&cfg, T0 + 2 * H);
    cr_expect_eq(st.raised, 0);
    tdb_exec(db.conn, "UPDATE shipments SET poll_error_streak = 0"
                      " WHERE tracking_number = '6A00000000001'");
    st = pass(&cfg, T0 + 3 * H);
    cr_expect_eq(st.cleared, 1);
    m = messages(a);
    cr_assert_eq(json_array_size(m), 2);
    cr_expect_str_eq(mstr(m, 1, "reason"), "tracking_recovered");
    json_decref(m);
    config_free(&cfg);
}

Test(scanner, batches_page_through_more_candidates_than_one_batch)
{
    const char *env[] = { "SHIPTRACK_SCAN_BATCH=3", "SHIPTRACK_DWELL_BATCH=4", NULL };
    struct st_config cfg;
    struct scanner_stats st;

    load_config(&cfg, env);
    /* 10 stuck parcels, some with the same movement time (cursor ties) */
    tdb_exec(db.conn, "INSERT INTO shipments (carrier, tracking_number, destination_country,"
                      " status, last_event_at)"
                      " SELECT 'dhl', 'JDB' || lpad(i::text, 4, '0'), 'NL', 'in_transit',"
                      "        to_timestamp(1790000000 + (i / 3) * 60) FROM generate_series(1, 10) i");
    tdb_exec(db.conn, "INSERT INTO tracking_events (shipment_id, occurred_at, occurred_local,"
                      " offset_kind, status, substatus, affects_status, dedupe_key, recorded_at)"
                      " SELECT s.id, to_timestamp(1790000000 - k * 3600),"
                      "   to_timestamp(1790000000 - k * 3600) AT TIME ZONE 'UTC', 'carrier',"
                      "   'in_transit', 'none', true, md5(s.id || '-' || k)::uuid,"
                      "   now() - interval '1 hour'"
                      " FROM shipments s, generate_series(0, 1) k ORDER BY s.id, k DESC");
    st = pass(&cfg, T0 + 6 * D);
    cr_expect_eq(st.events, 20);
    cr_expect_eq(st.samples, 10);
    cr_expect_eq(st.raised, 10);
    cr_expect_eq(count("SELECT count(DISTINCT shipment_id) FROM alerts WHERE kind = 'stuck'"), 10);
    cr_expect_eq(count("SELECT count(*) FROM outbox WHERE topic = 'shiptrack.alerts.v1'"), 10);
    st = pass(&cfg, T0 + 6 * D + H);
    cr_expect_eq(st.raised, 0);
    tdb_exec(db.conn, "UPDATE shipments SET last_event_at = to_timestamp(1790000000 + 6 * 86400)");
    st = pass(&cfg, T0 + 6 * D + 2 * H);
    cr_expect_eq(st.cleared, 10);
    config_free(&cfg);
}

/* ---- shiptrack stuck, through the built binary ---- */

static int run_stuck(const char *const *args, char **out, char **err)
{
    char bin[512], url[600];
    char *argv[16];
    const char *env[] = { url, NULL };
    size_t n = 0;

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    snprintf(url, sizeof(url), "SHIPTRACK_DATABASE_URL=%s", db.url);
    argv[n++] = bin;
    argv[n++] = (char *)"stuck";
    for (size_t i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return tu_run(argv, env, out, err);
}

/* Tracking numbers of --json output lines, in order, comma-separated. */
static void json_numbers(const char *out, char *buf, size_t cap)
{
    const char *line = out;
    size_t o = 0;

    buf[0] = '\0';
    while (line != NULL && *line != '\0') {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        json_error_t je;
        json_t *obj = json_loadb(line, len, 0, &je);

        cr_assert_not_null(obj, "not a JSON line: %.*s (%s)", (int)len, line, je.text);
        cr_assert_not_null(json_object_get(obj, "alert_id"));
        cr_assert(json_is_integer(json_object_get(obj, "age_s")));
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? "," : "",
                              json_string_value(json_object_get(obj, "tracking_number")));
        json_decref(obj);
        line = nl ? nl + 1 : NULL;
    }
}

Test(scanner, stuck_command_filters_table_json_and_bad_flags)
{
    struct st_config cfg;
    long long now = (long long)time(NULL);
    char *out, *err, nums[512];

    load_config(&cfg, NULL);
    ship("dhl", "JDS001", "DE", "in_transit", now - 10 * D);
    ship("ups", "1ZS001", "FR", "in_transit", now - 6 * D);
    ship("ups", "1ZS002", "FR", "held", now - 7 * D);
    ship("dhl", "JDS002", "DE", "in_transit", now - 1 * D); /* not stuck */
    pass(&cfg, now);

    {
        const char *a[] = { "--json", NULL };

        cr_assert_eq(run_stuck(a, &out, &err), 0, "%s", err);
        json_numbers(out, nums, sizeof(nums));
        cr_expect_str_eq(nums, "JDS001,1ZS002,1ZS001", "oldest first");
        free(out);
        free(err);
    }
    {
        const char *a[] = { "--json", "--carrier", "ups", NULL };

        cr_assert_eq(run_stuck(a, &out, &err), 0, "%s", err);
        json_numbers(out, nums, sizeof(nums));
        cr_expect_str_eq(nums, "1ZS002,1ZS001");
        free(out);
        free(err);
    }
    {
        const char *a[] = { "--json", "--destination", "de", NULL };

        cr_assert_eq(run_stuck(a, &out, &err), 0, "%s", err);
        json_numbers(out, nums, sizeof(nums));
        cr_expect_str_eq(nums, "JDS001");
        free(out);
        free(err);
    }
    {
        const char *a[] = { "--json", "--status", "held", "--kind", "stuck", NULL };

        cr_assert_eq(run_stuck(a, &out, &err), 0, "%s", err);
        json_numbers(out, nums, sizeof(nums));
        cr_expect_str_eq(nums, "1ZS002");
        free(out);
        free(err);
    }
    {
        const char *a[] = { "--json", "--min-age", "8d", NULL };

        cr_assert_eq(run_stuck(a, &out, &err), 0, "%s", err);
        json_numbers(out, nums, sizeof(nums));
        cr_expect_str_eq(nums, "JDS001");
        free(out);
        free(err);
    }
    {
        const char *a[] = { "--json", "--limit", "1", NULL };

        cr_assert_eq(run_stuck(a, &out, &err), 0, "%s", err);
        json_numbers(out, nums, sizeof(nums));
        cr_expect_str_eq(nums, "JDS001");
        free(out);
        free(err);
    }
    {
        const char *a[] = { "--kind", "tracking_failing", NULL };

        cr_assert_eq(run_stuck(a, &out, &err), 0, "%s", err);
        cr_expect_str_eq(out, "no open alerts match\n");
        free(out);
        free(err);
    }
    {
        const char *a[] = { NULL };

        cr_assert_eq(run_stuck(a, &out, &err), 0, "%s", err);
        cr_expect(strstr(out, "TRACKING NUMBER") != NULL, "%s", out);
        cr_expect(strstr(out, "JDS001") != NULL && strstr(out, "1ZS002") != NULL, "%s", out);
        cr_expect(strstr(out, "10d 0h") != NULL, "age: %s", out);
        cr_expect(strstr(out, "5d 0h (default)") != NULL, "threshold: %s", out);
        cr_expect(strstr(out, "3 open alerts") != NULL, "%s", out);
        cr_expect(strstr(out, "JDS002") == NULL, "%s", out);
        free(out);
        free(err);
    }
    {
        static const char *const bad[][3] = {
            { "--carrier", "pigeon", "--carrier" },  { "--destination", "FRA", "--destination" },
            { "--destination", "1x", "--destination" }, { "--status", "flying", "--status" },
            { "--kind", "late", "--kind" },          { "--min-age", "soon", "--min-age" },
            { "--limit", "0", "--limit" },           { "--bogus", "1", "--bogus" },
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            const char *a[] = { bad[i][0], bad[i][1], NULL };

            cr_expect_eq(run_stuck(a, &out, &err), 2, "%s %s", bad[i][0], bad[i][1]);
            cr_expect(strstr(err, bad[i][2]) != NULL, "%s %s: %s", bad[i][0], bad[i][1], err);
            cr_expect_str_eq(out, "");
            free(out);
            free(err);
        }
    }
    config_free(&cfg);
}

/* ---- bounded cost: the scanner's queries read indexes ---- */

/* EXPLAIN of a scanner statement with its parameters, as one string. */
static char *explain(const char *name, int n, const char *const *params)
{
    char sql[16384];
    PGresult *res;
    size_t o = 0, cap = 65536;
    char *plan = malloc(cap);

    cr_assert_not_null(plan);
    snprintf(sql, sizeof(sql), "EXPLAIN %s", scanner_statement(name));
    res = PQexecParams(db.conn, sql, n, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", name, PQerrorMessage(db.conn));
    plan[0] = '\0';
    for (int r = 0; r < PQntuples(res); r++)
        o += (size_t)snprintf(plan + o, o < cap ? cap - o : 0, "%s\n", PQgetvalue(res, r, 0));
    PQclear(res);
    cr_assert_lt(o, cap);
    return plan;
}

static void expect_index(const char *name, int n, const char *const *params, const char *index)
{
    char *plan = explain(name, n, params);

    cr_expect(strstr(plan, index) != NULL, "%s does not use %s:\n%s", name, index, plan);
    cr_expect(strstr(plan, "Seq Scan on shipments") == NULL, "%s:\n%s", name, plan);
    cr_expect(strstr(plan, "Seq Scan on tracking_events") == NULL, "%s:\n%s", name, plan);
    cr_expect(strstr(plan, "Seq Scan on alerts") == NULL, "%s:\n%s", name, plan);
    cr_expect(strstr(plan, "Seq Scan on customs_holds") == NULL, "%s:\n%s", name, plan);
    free(plan);
}

Test(scanner, queries_read_indexes_not_whole_tables)
{
    const char *now = "1790000000", *cutoff = "1789900000", *key = "-infinity", *id = "0";
    const char *cap = "500";

    /* 20000 shipments, most finished; events and alerts; statistics gathered */
    tdb_exec(db.conn, "INSERT INTO shipments (carrier, tracking_number, destination_country,"
                      " status, last_event_at, next_poll_at, poll_error_streak)"
                      " SELECT 'dhl', 'JDP' || lpad(i::text, 6, '0'), 'DE',"
                      "   CASE WHEN i % 20 = 0 THEN 'in_transit' ELSE 'delivered' END,"
                      "   to_timestamp(1790000000 - i * 60),"
                      "   CASE WHEN i % 20 = 0 THEN now() END, CASE WHEN i % 400 = 0 THEN 9 ELSE 0 END"
                      " FROM generate_series(1, 20000) i");
    tdb_exec(db.conn, "INSERT INTO tracking_events (shipment_id, occurred_at, occurred_local,"
                      " offset_kind, status, substatus, affects_status, dedupe_key)"
                      " SELECT s.id, to_timestamp(1790000000 - s.id * 60 - k * 3600),"
                      "   to_timestamp(1790000000 - s.id * 60 - k * 3600) AT TIME ZONE 'UTC',"
                      "   'carrier', 'in_transit', 'none', true, md5(s.id || '-' || k)::uuid"
                      " FROM shipments s, generate_series(0, 2) k");
    tdb_exec(db.conn, "INSERT INTO alerts (shipment_id, kind, status, threshold_s, threshold_src,"
                      " since, opened_at, cleared_at)"
                      " SELECT id, 'stuck', 'in_transit', 1, 'default', last_event_at, now(),"
                      "   CASE WHEN id % 50 <> 0 THEN now() END FROM shipments");
    tdb_exec(db.conn, "INSERT INTO customs_holds (shipment_id, state, opened_at, closed_at)"
                      " SELECT id, 'held', last_event_at,"
                      "   CASE WHEN id % 40 <> 0 THEN last_event_at + interval '1 day' END"
                      " FROM shipments");
    tdb_exec(db.conn, "ANALYZE");
    tdb_exec(db.conn, "SET enable_seqscan = off");
    {
        const char *p[] = { "0", "5000", "60" };

        expect_index("dwell", 3, p, "pkey");
    }
    {
        const char *p[] = { now, "stuck", key, id, cap, cutoff, "20", "{\"in_transit\":432000}" };

        expect_index("stuck", 8, p, "shipments_active_moved");
    }
    {
        const char *p[] = { now, "customs_hold_long", key, id, cap, cutoff, "20", "432000" };

        /* customs_holds_open_age or customs_holds_open: both hold open holds only */
        expect_index("customs_hold_long", 8, p, "customs_holds_open");
    }
    {
        const char *p[] = { now, "not_picked_up", key, id, cap, "259200" };

        expect_index("not_picked_up", 6, p, "shipments_label_only");
    }
    {
        const char *p[] = { now, "tracking_failing", key, id, cap, "5" };

        expect_index("tracking_failing", 6, p, "shipments_failing");
    }
    {
        const char *p[] = { now, "8", key, id, cap };

        expect_index("clear", 5, p, "alerts_open_since");
    }
    {
        const char *p[] = { "dhl", NULL, NULL, "stuck", now, "100", now };

        expect_index("list", 7, p, "alerts_open_since");
    }
}

/* ---- configuration ---- */

Test(scanner, stuck_after_map_is_validated_and_falls_back_to_the_built_in_table)
{
    static const char *const bad[][2] = {
        { "info_received=2d", "not one of" },       /* the pickup rule's */
        { "delivered=2d", "not a status that is polled" },
        { "in_transit=90d", "from 1h to 60d" },
        { "in_transit", "not status=duration" },
    };
    struct st_config cfg;
    char err[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("SHIPTRACK_STUCK_AFTER", bad[i][0], 1);
        cr_expect_eq(config_load(&cfg, err, sizeof(err)), ST_CONFIG, "%s", bad[i][0]);
        cr_expect(strstr(err, "SHIPTRACK_STUCK_AFTER") != NULL && strstr(err, bad[i][1]) != NULL,
                  "%s: %s", bad[i][0], err);
    }
    setenv("SHIPTRACK_STUCK_AFTER", "in_transit=36h,held=2d", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(config_stuck_after(&cfg, "in_transit"), 36 * H * 1000);
    cr_expect_eq(config_stuck_after(&cfg, "held"), 2 * D * 1000);
    cr_expect_eq(config_stuck_after(&cfg, "out_for_delivery"), 1 * D * 1000);
    cr_expect_eq(config_stuck_after(&cfg, "info_received"), -1);
    cr_expect_eq(config_stuck_after(&cfg, "delivered"), -1);
    config_free(&cfg);
    unsetenv("SHIPTRACK_STUCK_AFTER");
}

/* ---- the role ---- */

struct role_run {
    struct st_config *cfg;
    volatile sig_atomic_t running;
    struct scanner_stats totals;
    int rc;
};

static void *role_thread(void *arg)
{
    struct role_run *r = arg;
    struct scanner_opts o = { &r->running, false };

    r->rc = scanner_run(r->cfg, &o, &r->totals);
    return NULL;
}

Test(scanner, role_passes_on_its_clock_with_the_offset_and_stops_cleanly)
{
    /* moved a day ago: stuck (in_transit 5d) only on a clock five days ahead */
    const char *env[] = { "SHIPTRACK_SCAN_INTERVAL=1s", "SHIPTRACK_CLOCK_OFFSET=5d", NULL };
    struct st_config cfg;
    struct role_run r = { &cfg, 1, { 0 }, -1 };
    long long a = ship("dhl", "JDR001", "DE", "in_transit", (long long)time(NULL) - D);
    pthread_t th;
    int waited = 0;

    load_config(&cfg, env);
    cr_assert_eq(pthread_create(&th, NULL, role_thread, &r), 0);
    while (alerts(a, "stuck", true) == 0 && waited++ < 600) { /* at most a minute */
        struct timespec ts = { 0, 100 * 1000000L };

        nanosleep(&ts, NULL);
    }
    r.running = 0;
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_expect_eq(r.rc, 0);
    cr_expect_eq(alerts(a, "stuck", true), 1);
    cr_expect_geq(r.totals.raised, 1);
    config_free(&cfg);
    unsetenv("SHIPTRACK_CLOCK_OFFSET");
    unsetenv("SHIPTRACK_SCAN_INTERVAL");
}

/* ---- through the relay to Kafka ---- */

Test(scanner, alerts_reach_the_alerts_topic_through_the_relay)
{
    struct st_config cfg;
    struct kafka_mock mock;
    volatile sig_atomic_t running = 1;
    struct relay_opts ro = { &running, true, NULL };
    struct relay_totals rt;
    char err[256], key[24];
    long long a;
    json_t *msgs, *m0, *m1;

    cr_assert_eq(kafka_mock_start(&mock, 1, 4, err, sizeof(err)), ST_OK, "%s", err);
    ro.brokers = mock.bootstraps;
    load_config(&cfg, NULL);
    a = ship("dhl", "JDK001", "PL", "in_transit", T0);
    pass(&cfg, T0 + 6 * D);
    tdb_exec(db.conn, "UPDATE shipments SET last_event_at = to_timestamp(1790000000 + 6 * 86400)");
    pass(&cfg, T0 + 6 * D + H);
    cr_assert_eq(relay_run(&cfg, &ro, &rt), 0);
    cr_expect_eq(count("SELECT count(*) FROM outbox WHERE sent_at IS NULL"), 0);

    msgs = tk_read_topic(mock.bootstraps, TOPIC_ALERTS, 4, 2, 20000);
    cr_assert_eq(json_array_size(msgs), 2);
    m0 = json_array_get(msgs, 0);
    m1 = json_array_get(msgs, 1);
    snprintf(key, sizeof(key), "%lld", a);
    cr_expect_str_eq(json_string_value(json_object_get(m0, "_key")), key);
    cr_expect_eq(json_integer_value(json_object_get(m0, "_partition")),
                 json_integer_value(json_object_get(m1, "_partition")), "one shipment, one partition");
    cr_expect_str_eq(json_string_value(json_object_get(m0, "type")), "alert_raised");
    cr_expect_str_eq(json_string_value(json_object_get(m1, "type")), "alert_cleared");
    cr_expect_not_null(json_string_value(json_object_get(m0, "event_id")));
    cr_expect_null(json_object_get(m0, "order_ref"), "no personal data in alerts");
    json_decref(msgs);
    config_free(&cfg);
    kafka_mock_stop(&mock);
}
