/*
 * test_eta.c - delivery estimates against a real PostgreSQL (one database per
 * test): the percentile on known histograms, the lane model on synthetic
 * history (below and above the minimum sample, coarser lanes, defaults),
 * the customs revision, the history rows, delay detection (one slip, the
 * same slip again, a later slip, an earlier date, finished shipments), the
 * lane statistics a delivery adds, and the notifier's `delayed` email once
 * per new date.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "eta.h"
#include "log.h"
#include "notifier.h"
#include "shipfix.h"
#include "testdb.h"

/* ---- pure parts ---- */

Test(percentile, nearest_rank_on_a_known_histogram)
{
    static const int days[] = { 3, 4, 5, 6, 9 };
    static const long long n[] = { 10, 20, 40, 20, 10 }; /* 100 samples */

    cr_expect_eq(eta_percentile(days, n, 5, 1), 3);
    cr_expect_eq(eta_percentile(days, n, 5, 10), 3);
    cr_expect_eq(eta_percentile(days, n, 5, 11), 4);
    cr_expect_eq(eta_percentile(days, n, 5, 30), 4);
    cr_expect_eq(eta_percentile(days, n, 5, 50), 5);
    cr_expect_eq(eta_percentile(days, n, 5, 70), 5);
    cr_expect_eq(eta_percentile(days, n, 5, 71), 6);
    cr_expect_eq(eta_percentile(days, n, 5, 80), 6);
    cr_expect_eq(eta_percentile(days, n, 5, 91), 9);
    cr_expect_eq(eta_percentile(days, n, 5, 100), 9);
}

Test(percentile, small_and_empty_histograms)
{
    static const int one[] = { 7 };
    static const long long n1[] = { 1 };
    static const int two[] = { 2, 8 };
    static const long long n2[] = { 1, 1 };
    static const long long zero[] = { 0, 0 };

    cr_expect_eq(eta_percentile(one, n1, 1, 80), 7);
    cr_expect_eq(eta_percentile(two, n2, 2, 50), 2);
    cr_expect_eq(eta_percentile(two, n2, 2, 51), 8);
    cr_expect_eq(eta_percentile(two, zero, 2, 50), -1);
    cr_expect_eq(eta_percentile(two, n2, 0, 50), -1);
}

Test(dates, parse_and_format)
{
    char out[ETA_DATE_MAX];
    long d;

    cr_assert(eta_parse_date("1970-01-02", &d));
    cr_expect_eq(d, 1);
    cr_assert(eta_parse_date("2026-11-30", &d));
    eta_format_date(d + 1, out);
    cr_expect_str_eq(out, "2026-12-01");
    eta_format_date(d + 90, out);
    cr_expect_str_eq(out, "2027-02-28");
    cr_expect(!eta_parse_date("2026-13-01", &d));
    cr_expect(!eta_parse_date("2026-11-3", &d));
    cr_expect(!eta_parse_date("2026-11-30T10:00", &d));
    cr_expect(!eta_parse_date("", &d));
    cr_expect(!eta_parse_date(NULL, &d));
}

/* ---- the estimate in the poll transaction ---- */

static struct shipfix fx;

static void setup(void)
{
    log_setup("error", "text", NULL);
    sf_setup(&fx, "dhl", "3318810025", "CN", "DE");
    fx.policy.eta.percentile = 80;
    fx.policy.eta.lane_min_samples = 20;
    fx.policy.eta.default_domestic_days = 2;
    fx.policy.eta.default_international_days = 8;
    fx.policy.eta.customs_hold_default_h = 30;
}

static void teardown(void)
{
    sf_teardown(&fx);
}

TestSuite(eta, .init = setup, .fini = teardown);

/* n deliveries of `days` transit days on a lane. */
static void lane(const char *origin, const char *service, int days, int n)
{
    char sql[256];

    snprintf(sql, sizeof(sql), "INSERT INTO lane_transit (carrier, origin, destination, service,"
             " days, n) VALUES ('dhl', '%s', 'DE', '%s', %d, %d)", origin, service, days, n);
    tdb_exec(fx.db.conn, sql);
}

static void expect_scalar(const char *sql, const char *want)
{
    char *s = tdb_scalar(fx.db.conn, sql);

    cr_expect_str_eq(s != NULL ? s : "(null)", want, "%s\n  got  %s\n  want %s", sql,
                     s != NULL ? s : "(null)", want);
    free(s);
}

/* One poll: a pickup on 2026-11-02 (07:00 UTC), and the carrier's date (or ""). */
static void poll_picked_up(const char *carrier_edd)
{
    struct track_result r = { 0 };

    sf_add(&r, "2026-11-02T08:00:00+01:00", "DE", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "PU",
           "Picked up");
    snprintf(r.estimated_delivery, sizeof(r.estimated_delivery), "%s", carrier_edd);
    sf_store(&fx, &r);
    track_result_reset(&r);
}

#define ESTIMATE "SELECT edd_current || '/' || edd_source || '/' || edd_original || '/'" \
                 " || edd_communicated FROM shipments"

Test(eta, below_the_minimum_sample_the_default_applies)
{
    lane("CN", "", 5, 19);
    poll_picked_up("");
    expect_scalar(ESTIMATE, "2026-11-10/default/2026-11-10/2026-11-10");
    expect_scalar("SELECT reason FROM edd_history", "default international transit: 8 days");
    expect_scalar("SELECT to_char(shipped_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
                  " FROM shipments", "2026-11-02 07:00");
}

Test(eta, at_the_minimum_sample_the_lane_percentile_applies)
{
    lane("CN", "", 3, 10);
    lane("CN", "", 4, 20);
    lane("CN", "", 5, 40);
    lane("CN", "", 6, 20);
    lane("CN", "", 9, 10);
    poll_picked_up("");
    expect_scalar(ESTIMATE, "2026-11-08/lane/2026-11-08/2026-11-08");
    expect_scalar("SELECT reason FROM edd_history", "p80 of 100 deliveries on dhl CN->DE: 6 days");
    /* the estimate is made once: more polls change nothing */
    poll_picked_up("");
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM edd_history"), 1);
}

Test(eta, a_thin_service_lane_falls_back_to_all_services)
{
    tdb_exec(fx.db.conn, "UPDATE shipments SET service = 'express'");
    lane("CN", "express", 2, 5);
    lane("CN", "economy", 7, 30);
    poll_picked_up("");
    expect_scalar(ESTIMATE, "2026-11-09/lane/2026-11-09/2026-11-09");
    expect_scalar("SELECT reason FROM edd_history",
                  "p80 of 35 deliveries on dhl CN->DE (all services): 7 days");
}

Test(eta, an_unknown_origin_falls_back_to_the_destination)
{
    tdb_exec(fx.db.conn, "UPDATE shipments SET origin_country = 'US'");
    lane("CN", "", 4, 15);
    lane("FR", "", 2, 15);
    poll_picked_up("");
    expect_scalar(ESTIMATE, "2026-11-06/lane/2026-11-06/2026-11-06");
    expect_scalar("SELECT reason FROM edd_history",
                  "p80 of 30 deliveries on dhl US->DE (all origins and services): 4 days");
}

Test(eta, domestic_and_unknown_origin_defaults)
{
    tdb_exec(fx.db.conn, "UPDATE shipments SET origin_country = 'DE'");
    poll_picked_up("");
    expect_scalar(ESTIMATE, "2026-11-04/default/2026-11-04/2026-11-04");
    expect_scalar("SELECT reason FROM edd_history", "default domestic transit: 2 days");
}

Test(eta, no_estimate_before_the_parcel_moves)
{
    struct track_result r = { 0 };

    sf_add(&r, "2026-11-01T08:00:00+01:00", "DE", ST_STATUS_INFO_RECEIVED, ST_SUB_LABEL_CREATED,
           "LC", "Label created");
    sf_store(&fx, &r);
    expect_scalar("SELECT coalesce(edd_current::text, 'none') || '/'"
                  " || coalesce(shipped_at::text, 'none') FROM shipments", "none/none");
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM edd_history"), 0);
    track_result_reset(&r);
}

Test(eta, the_carrier_date_wins_and_a_customs_hold_moves_it_by_the_median)
{
    struct track_result r = { 0 };

    /* 25 past holds for DE: median 49 hours -> 3 days */
    tdb_exec(fx.db.conn, "INSERT INTO customs_hold_durations (destination, hours, n)"
                         " VALUES ('DE', 24, 5), ('DE', 49, 10), ('DE', 100, 10)");
    lane("CN", "", 3, 50);
    poll_picked_up("2026-11-06");
    expect_scalar(ESTIMATE, "2026-11-06/carrier/2026-11-06/2026-11-06");
    sf_add(&r, "2026-11-02T08:00:00+01:00", "DE", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "PU",
           "Picked up");
    sf_add(&r, "2026-11-04T08:00:00+01:00", "DE", ST_STATUS_HELD, ST_SUB_CUSTOMS_INSPECTION,
           "IN", "Customs inspection");
    snprintf(r.estimated_delivery, sizeof(r.estimated_delivery), "2026-11-06");
    sf_store(&fx, &r);
    expect_scalar(ESTIMATE, "2026-11-09/customs/2026-11-06/2026-11-09");
    expect_scalar("SELECT string_agg(edd || '<' || coalesce(previous::text, '-') || ':' || source"
                  " || ':' || reason, ' | ' ORDER BY id) FROM edd_history",
                  "2026-11-06<-:carrier:the carrier's estimate | "
                  "2026-11-09<2026-11-06:customs:customs hold (inspection): +3 days, median of "
                  "25 holds for DE");
    /* a delay by customs is announced as such (the notifier leaves it to customs_held) */
    expect_scalar("SELECT payload->>'previous' || '>' || (payload->>'current') || ':'"
                  " || (payload->>'source') FROM outbox WHERE payload->>'type' = 'edd_changed'",
                  "2026-11-06>2026-11-09:customs");
    track_result_reset(&r);
}

Test(eta, a_hold_without_history_moves_it_by_the_default)
{
    struct track_result r = { 0 };

    tdb_exec(fx.db.conn, "INSERT INTO customs_hold_durations (destination, hours, n)"
                         " VALUES ('DE', 10, 19), ('FR', 400, 50)");
    sf_add(&r, "2026-11-02T08:00:00+01:00", "DE", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "PU",
           "Picked up");
    sf_add(&r, "2026-11-12T08:00:00+01:00", "DE", ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE,
           "DD", "Import duties due");
    sf_store(&fx, &r);
    /* default 8 days -> 11-10; the hold starts later, on 11-12: 30 h -> +2 days from then */
    expect_scalar(ESTIMATE, "2026-11-14/customs/2026-11-10/2026-11-14");
    expect_scalar("SELECT reason FROM edd_history ORDER BY id DESC LIMIT 1",
                  "customs hold (duties_due): +2 days (default)");
    track_result_reset(&r);
}

Test(eta, a_hold_already_released_in_the_same_poll_moves_nothing)
{
    struct track_result r = { 0 };

    sf_add(&r, "2026-11-02T08:00:00+01:00", "DE", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "PU",
           "Picked up");
    sf_add(&r, "2026-11-04T08:00:00+01:00", "DE", ST_STATUS_HELD, ST_SUB_CUSTOMS_INSPECTION,
           "IN", "Customs inspection");
    sf_add(&r, "2026-11-04T18:00:00+01:00", "DE", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED,
           "RL", "Released by customs");
    sf_store(&fx, &r);
    expect_scalar(ESTIMATE, "2026-11-10/default/2026-11-10/2026-11-10");
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM edd_history"), 1);
    track_result_reset(&r);
}

/* Count of edd_changed outbox messages. */
static long long delays(void)
{
    return tdb_count(fx.db.conn, "SELECT count(*) FROM outbox WHERE payload->>'type' ="
                                 " 'edd_changed'");
}

Test(eta, one_slip_one_delay_and_a_later_slip_another)
{
    poll_picked_up("2026-11-06");
    cr_expect_eq(delays(), 0, "the first estimate is no delay");
    poll_picked_up("2026-11-06");
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM edd_history"), 1);
    poll_picked_up("2026-11-08");
    cr_expect_eq(delays(), 1);
    expect_scalar("SELECT payload->>'previous' || '>' || (payload->>'current') || ':'"
                  " || (payload->>'source') || ':' || (payload->>'reason') || ':'"
                  " || (payload->>'shipment_id' = msg_key)::text FROM outbox"
                  " WHERE payload->>'type' = 'edd_changed'",
                  "2026-11-06>2026-11-08:carrier:the carrier's estimate:true");
    expect_scalar(ESTIMATE, "2026-11-08/carrier/2026-11-06/2026-11-08");
    /* the same slip again: nothing */
    poll_picked_up("2026-11-08");
    cr_expect_eq(delays(), 1);
    /* earlier is good news, not a delay; back to the told date is none either */
    poll_picked_up("2026-11-07");
    poll_picked_up("2026-11-08");
    cr_expect_eq(delays(), 1);
    expect_scalar("SELECT edd_communicated::text FROM shipments", "2026-11-08");
    /* a second, later slip */
    poll_picked_up("2026-11-10");
    cr_expect_eq(delays(), 2);
    expect_scalar("SELECT string_agg(payload->>'current', ',' ORDER BY id) FROM outbox"
                  " WHERE payload->>'type' = 'edd_changed'", "2026-11-08,2026-11-10");
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM edd_history"), 5);
}

Test(eta, a_delivery_counts_its_transit_once_and_is_never_delayed)
{
    struct track_result r = { 0 };

    poll_picked_up("2026-11-05");
    sf_add(&r, "2026-11-02T08:00:00+01:00", "DE", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "PU",
           "Picked up");
    sf_add(&r, "2026-11-06T11:00:00+01:00", "DE", ST_STATUS_DELIVERED, ST_SUB_DELIVERED, "DL",
           "Delivered");
    snprintf(r.estimated_delivery, sizeof(r.estimated_delivery), "2026-11-07");
    sf_store(&fx, &r);
    cr_expect_eq(delays(), 0, "a finished shipment is not delayed");
    expect_scalar("SELECT string_agg(carrier || ':' || origin || ':' || destination || ':'"
                  " || service || ':' || days || ':' || n, ',') FROM lane_transit",
                  "dhl:CN:DE::4:1");
    sf_store(&fx, &r);
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT sum(n) FROM lane_transit"), 1);
    track_result_reset(&r);
}

Test(eta, carrier_dates_only_when_the_model_is_off)
{
    fx.policy.eta.percentile = 0;
    poll_picked_up("");
    expect_scalar("SELECT coalesce(edd_current::text, 'none') FROM shipments", "none");
    poll_picked_up("2026-11-06");
    expect_scalar(ESTIMATE, "2026-11-06/carrier/2026-11-06/2026-11-06");
}

/* ---- the notifier: one `delayed` email per new date ---- */

static char tmp[64];

static time_t noon(void)
{
    return 1795176000; /* 2026-11-20 12:00:00 UTC */
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void notify_setup(void)
{
    char path[128];

    setup();
    snprintf(tmp, sizeof(tmp), "/tmp/st-eta-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(path, sizeof(path), "%s/mail", tmp);
    cr_assert_eq(mkdir(path, 0700), 0);
    setenv("SHIPTRACK_DATABASE_URL", fx.db.url, 1);
    setenv("SHIPTRACK_EML_DIR", path, 1);
    unsetenv("SHIPTRACK_SMTP_HOST");
    setenv("SHIPTRACK_TEMPLATES_DIR", ST_SOURCE_DIR "/templates", 1);
    setenv("SHIPTRACK_PUBLIC_URL", "https://track.shop.test", 1);
    setenv("SHIPTRACK_UNSUBSCRIBE_SECRET", "test-secret-0123456789", 1);
    setenv("SHIPTRACK_SMTP_FROM", "Shop <notify@shop.test>", 1);
    setenv("SHIPTRACK_NOTIFY_MILESTONES", "shipped,customs_held,delayed,delivered", 1);
    notifier_clock = noon;
}

static void notify_teardown(void)
{
    teardown();
    nftw(tmp, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(delayed, .init = notify_setup, .fini = notify_teardown, .timeout = 60);

/* Hand every outbox message from id `after` on to the notifier, as the
 * relay publishes them (with their event_id); returns the last id. */
static long long relay(struct notifier *n, long long after)
{
    char sql[256], err[512];
    long long last = after;
    PGresult *res;

    snprintf(sql, sizeof(sql), "SELECT id, jsonb_set(payload, '{event_id}',"
             " to_jsonb(event_id::text))::text FROM outbox WHERE id > %lld ORDER BY id", after);
    res = PQexec(fx.db.conn, sql);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(fx.db.conn));
    for (int i = 0; i < PQntuples(res); i++) {
        const char *m = PQgetvalue(res, i, 1);

        cr_assert_eq(notifier_handle(n, m, strlen(m), err, sizeof(err)), ST_OK, "%s", err);
        last = atoll(PQgetvalue(res, i, 0));
    }
    PQclear(res);
    return last;
}

/* The .eml files written so far, their text concatenated into buf
 * (quoted-printable soft breaks removed). */
static int read_emails(char *buf, size_t cap)
{
    char dir[128], path[512];
    struct dirent *e;
    size_t o = 0;
    int n = 0;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/mail", tmp);
    buf[0] = '\0';
    if ((d = opendir(dir)) == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        FILE *f;

        if (len < 4 || strcmp(e->d_name + len - 4, ".eml") != 0)
            continue;
        n++;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        o += fread(buf + o, 1, cap - 1 - o, f);
        buf[o] = '\0';
        fclose(f);
    }
    closedir(d);
    /* join quoted-printable soft line breaks so text can be searched */
    for (char *r = buf, *w = buf;; r++) {
        if (r[0] == '=' && r[1] == '\r' && r[2] == '\n')
            r += 2;
        else if (r[0] == '=' && r[1] == '\n')
            r += 1;
        else if ((*w++ = *r) == '\0')
            break;
    }
    return n;
}

Test(delayed, one_email_per_new_date)
{
    struct st_config cfg;
    struct notifier *n;
    static char mail[1 << 18];
    char err[512];
    long long seen;

    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(notifier_new(&cfg, fx.db.conn, NULL, &n, err, sizeof(err)), ST_OK, "%s", err);
    poll_picked_up("2026-11-06");
    seen = relay(n, 0);                         /* shipped */
    poll_picked_up("2026-11-09");
    seen = relay(n, seen);                      /* delayed to 11-09 */
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM notifications WHERE"
                                       " milestone = 'delayed' AND status = 'sent'"
                                       " AND episode = '2026-11-09'"), 1);
    /* the same event again (a redelivery): nothing more */
    relay(n, 0);
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM notifications WHERE"
                                       " milestone = 'delayed'"), 1);
    cr_expect_eq(notifier_get_totals(n)->duplicates, 2);
    /* a second slip is news again */
    poll_picked_up("2026-11-12");
    relay(n, seen);
    expect_scalar("SELECT string_agg(episode || ':' || status, ',' ORDER BY id) FROM"
                  " notifications WHERE milestone = 'delayed'",
                  "2026-11-09:sent,2026-11-12:sent");
    cr_expect_eq(read_emails(mail, sizeof(mail)), 3, "shipped and two delays");
    cr_expect(strstr(mail, "is delayed") != NULL, "a delay subject");
    cr_expect(strstr(mail, "Thursday 12 November 2026 instead of Monday 9 November 2026") != NULL,
              "the second delay names both dates");
    notifier_free(n);
    config_free(&cfg);
}

Test(delayed, not_for_a_delay_by_customs_nor_after_delivery)
{
    struct st_config cfg;
    struct notifier *n;
    struct track_result r = { 0 };
    static char mail[1 << 18];
    char err[512], json[512];

    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(notifier_new(&cfg, fx.db.conn, NULL, &n, err, sizeof(err)), ST_OK, "%s", err);
    poll_picked_up("2026-11-06");
    sf_add(&r, "2026-11-02T08:00:00+01:00", "DE", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "PU",
           "Picked up");
    sf_add(&r, "2026-11-04T08:00:00+01:00", "DE", ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE,
           "DD", "Import duties due");
    snprintf(r.estimated_delivery, sizeof(r.estimated_delivery), "2026-11-06");
    sf_store(&fx, &r);
    relay(n, 0);
    /* customs_held tells the revised date; the customs delay sends nothing of its own */
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM outbox WHERE"
                                       " payload->>'type' = 'edd_changed'"), 1);
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM notifications WHERE"
                                       " milestone = 'delayed'"), 0);
    expect_scalar("SELECT status FROM notifications WHERE milestone = 'customs_held'", "sent");
    /* (shipped is superseded: the parcel is at customs by the time it is read) */
    cr_expect_eq(read_emails(mail, sizeof(mail)), 1, "customs_held only");
    cr_expect(strstr(mail, "Revised delivery estimate") != NULL, "customs_held has the new date");
    cr_expect(strstr(mail, "pay the duties") != NULL, "customs_held says what to do");
    /* after delivery a late delay is superseded */
    tdb_exec(fx.db.conn, "UPDATE shipments SET status = 'delivered', substatus = 'delivered'");
    snprintf(json, sizeof(json), "{\"type\":\"edd_changed\",\"shipment_id\":%lld,"
             "\"previous\":\"2026-11-09\",\"current\":\"2026-11-11\",\"source\":\"carrier\","
             "\"reason\":\"the carrier's estimate\"}", fx.ship.id);
    cr_assert_eq(notifier_handle(n, json, strlen(json), err, sizeof(err)), ST_OK, "%s", err);
    expect_scalar("SELECT status || '/' || reason || '/' || episode FROM notifications"
                  " WHERE milestone = 'delayed'", "suppressed/superseded/2026-11-11");
    /* and a message without its dates is refused, not guessed */
    snprintf(json, sizeof(json), "{\"type\":\"edd_changed\",\"shipment_id\":%lld,"
             "\"current\":\"2026-11-11\"}", fx.ship.id);
    cr_expect_eq(notifier_handle(n, json, strlen(json), err, sizeof(err)), ST_PERMANENT);
    track_result_reset(&r);
    notifier_free(n);
    config_free(&cfg);
}
