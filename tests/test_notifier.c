/*
 * test_notifier.c - the notifier's decisions against a real PostgreSQL (one
 * database per test), with email going to .eml files or to a real SMTP
 * server on loopback (tests/support/smtp_server.py) and SMS to JSON lines:
 * enabled/disabled milestones, consent, duplicates, superseded milestones,
 * quiet hours with a controllable clock, the frequency cap, SMTP 451 then
 * success, 550, and header injection through data. The end-to-end test runs
 * the simulator, the poller, the relay to the mock Kafka cluster and the
 * notifier against the SMTP server.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "intake.h"
#include "kafka.h"
#include "log.h"
#include "notifier.h"
#include "poller.h"
#include "relay.h"
#include "smtpd.h"
#include "testdb.h"
#include "testutil.h"

static struct testdb db;
static char tmp[64];            /* per-test directory: .eml files, sms.jsonl */
static time_t fake_now;         /* the notifier clock in these tests */

static time_t test_clock(void)
{
    return fake_now;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    char path[128];

    log_setup("error", "text", NULL);
    signal(SIGPIPE, SIG_IGN);
    tdb_create(&db, true);
    snprintf(tmp, sizeof(tmp), "/tmp/st-notify-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(path, sizeof(path), "%s/mail", tmp);
    cr_assert_eq(mkdir(path, 0700), 0);
    setenv("SHIPTRACK_DATABASE_URL", db.url, 1);
    setenv("SHIPTRACK_EML_DIR", path, 1);
    snprintf(path, sizeof(path), "%s/sms.jsonl", tmp);
    setenv("SHIPTRACK_SMS_JSONL_FILE", path, 1);
    setenv("SHIPTRACK_TEMPLATES_DIR", ST_SOURCE_DIR "/templates", 1);
    setenv("SHIPTRACK_PUBLIC_URL", "https://track.shop.test", 1);
    setenv("SHIPTRACK_UNSUBSCRIBE_SECRET", "test-secret-0123456789", 1);
    setenv("SHIPTRACK_SMTP_FROM", "Shop <notify@shop.test>", 1);
    unsetenv("SHIPTRACK_SMTP_HOST");
    setenv("SHIPTRACK_KAFKA_SESSION_TIMEOUT_MS", "6000", 1);
    /* 2026-11-20 12:00:00 UTC: daytime in Europe */
    fake_now = 1795176000;
    notifier_clock = test_clock;
}

static void teardown(void)
{
    tdb_drop(&db);
    nftw(tmp, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(notifier, .init = setup, .fini = teardown, .timeout = 150);

/* ---- helpers ---- */

struct fixture {
    struct st_config cfg;
    struct notifier *n;
};

static void open_notifier(struct fixture *f)
{
    char err[512];

    cr_assert_eq(config_load(&f->cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(notifier_new(&f->cfg, db.conn, NULL, &f->n, err, sizeof(err)), ST_OK, "%s",
                 err);
}

static void close_notifier(struct fixture *f)
{
    notifier_free(f->n);
    config_free(&f->cfg);
}

/* A recipient (email and/or phone may be NULL) with a shipment in status;
 * returns the shipment id. */
static long long shipment(const char *email, const char *phone, const char *locale,
                          const char *tz, const char *status, const char *substatus,
                          const char *order_ref)
{
    const char *p[8] = { email, phone, locale, tz, status, substatus, order_ref, NULL };
    PGresult *res;
    long long id;
    static int seq;
    char number[32];

    snprintf(number, sizeof(number), "JD0146000062812%05d", ++seq);
    p[7] = number;
    res = PQexecParams(db.conn,
                       "WITH r AS (INSERT INTO recipients (email, phone, locale, time_zone)"
                       "           VALUES ($1, $2, $3, $4) RETURNING id),"
                       " pr AS (INSERT INTO preferences (recipient_id, channel)"
                       "        SELECT r.id, c FROM r, unnest(ARRAY['email', 'sms']) c)"
                       " INSERT INTO shipments (carrier, tracking_number, order_ref, recipient_id,"
                       "   status, substatus) SELECT 'dhl', $8, $7, r.id, $5, $6 FROM r"
                       " RETURNING id",
                       8, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(db.conn));
    id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return id;
}

/* Another shipment of the same recipient as shipment `of`. */
static long long sibling(long long of)
{
    char sql[512];
    static int seq;

    snprintf(sql, sizeof(sql),
             "INSERT INTO shipments (carrier, tracking_number, order_ref, recipient_id, status,"
             " substatus) SELECT 'dhl', 'SIB%07d', 'ORD-S', recipient_id, 'in_transit',"
             " 'picked_up' FROM shipments WHERE id = %lld RETURNING id",
             ++seq, of);
    return tdb_count(db.conn, sql);
}

/* A status_changed event as the relay publishes it. */
static enum st_err event(struct notifier *n, long long sid, const char *from, const char *to,
                         const char *to_sub)
{
    char json[1024], err[512];
    enum st_err rc;

    snprintf(json, sizeof(json),
             "{\"type\":\"status_changed\",\"event_id\":\"%08llx-0000-4000-8000-%012lx\","
             "\"shipment_id\":%lld,\"carrier\":\"dhl\",\"tracking_number\":\"X\","
             "\"from\":{\"status\":\"%s\",\"substatus\":\"none\"},"
             "\"to\":{\"status\":\"%s\",\"substatus\":\"%s\"},"
             "\"event\":{\"occurred_at\":\"2026-11-20T10:00:00Z\",\"occurred_local\":"
             "\"2026-11-20T11:00:00\",\"offset_kind\":\"carrier\",\"customs\":false,"
             "\"code\":\"x\",\"description\":\"x\",\"location\":{\"city\":\"Leipzig\","
             "\"postal_code\":\"\",\"country\":\"DE\"}}}",
             sid, (long)random(), sid, from, to, to_sub);
    rc = notifier_handle(n, json, strlen(json), err, sizeof(err));
    cr_assert_eq(rc, ST_OK, "handle: %s", err);
    return rc;
}

/* status of the (shipment, milestone, channel) row, "" when none; reason into r. */
static char *row(long long sid, const char *milestone, const char *channel, char **reason)
{
    char sql[256];
    char *s;

    snprintf(sql, sizeof(sql),
             "SELECT status FROM notifications WHERE shipment_id = %lld AND milestone = '%s'"
             " AND channel = '%s'", sid, milestone, channel);
    s = tdb_scalar(db.conn, sql);
    if (reason != NULL) {
        snprintf(sql, sizeof(sql),
                 "SELECT reason FROM notifications WHERE shipment_id = %lld AND milestone = '%s'"
                 " AND channel = '%s'", sid, milestone, channel);
        *reason = tdb_scalar(db.conn, sql);
    }
    return s != NULL ? s : strdup("");
}

static void expect_row(long long sid, const char *milestone, const char *channel,
                       const char *status, const char *reason)
{
    char *r = NULL, *s = row(sid, milestone, channel, &r);

    cr_expect_str_eq(s, status, "%s/%s: status %s, want %s (reason %s)", milestone, channel, s,
                     status, r ? r : "-");
    if (reason != NULL)
        cr_expect(r != NULL && strstr(r, reason) != NULL, "%s/%s: reason %s, want %s",
                  milestone, channel, r ? r : "(null)", reason);
    free(s);
    free(r);
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);

        n += len > sl && strcmp(e->d_name + len - sl, suffix) == 0;
    }
    closedir(d);
    return n;
}

static int emails(void)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/mail", tmp);
    return count_files(path, ".eml");
}

static int sms_lines(void)
{
    char path[128], line[4096];
    FILE *f;
    int n = 0;

    snprintf(path, sizeof(path), "%s/sms.jsonl", tmp);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n++;
    fclose(f);
    return n;
}

/* ---- a real SMTP server ---- */

/* The shared SMTP server (tests/support/smtpd.c), saving into this test's
 * directory, and the channel settings that point at it. */
static void smtpd_start(struct tu_smtpd *s)
{
    char dir[160], port[16];

    snprintf(dir, sizeof(dir), "%s/smtpd", tmp);
    cr_assert_eq(mkdir(dir, 0700), 0);
    tu_smtpd_start(s, dir, NULL);
    snprintf(port, sizeof(port), "%d", s->port);
    setenv("SHIPTRACK_SMTP_HOST", "127.0.0.1", 1);
    setenv("SHIPTRACK_SMTP_PORT", port, 1);
    setenv("SHIPTRACK_SMTP_STARTTLS", "off", 1);
    setenv("SHIPTRACK_SMTP_TIMEOUT", "5s", 1);
}

/* ---- milestone mapping ---- */

Test(notifier, maps_status_changes_to_milestones)
{
    static const char *const cases[][5] = {
        { "info_received", "label_created", "in_transit", "picked_up", "shipped" },
        { "pending", "none", "in_transit", "departed_facility", "shipped" },
        { "in_transit", "arrived_facility", "in_transit", "departed_facility", NULL },
        { "in_transit", "arrived_destination_country", "in_transit", "customs_processing",
          "customs_processing" },
        { "in_transit", "customs_processing", "held", "customs_duties_due", "customs_held" },
        { "held", "customs_duties_due", "in_transit", "customs_released", "customs_released" },
        { "held", "address_issue", "held", "recipient_unavailable", NULL },
        { "in_transit", "none", "out_for_delivery", "out_for_delivery", "out_for_delivery" },
        { "out_for_delivery", "none", "attempt_failed", "recipient_unavailable",
          "attempt_failed" },
        { "in_transit", "none", "available_for_pickup", "at_pickup_point",
          "available_for_pickup" },
        { "out_for_delivery", "none", "delivered", "signed", "delivered" },
        { "in_transit", "none", "exception", "damaged", "exception" },
        { "exception", "none", "returning", "return_to_sender", "returning" },
        { "returning", "none", "returned", "returned_to_sender", NULL },
        { "in_transit", "none", "cancelled", "none", NULL },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *m = notifier_milestone(cases[i][0], cases[i][1], cases[i][2], cases[i][3]);

        if (cases[i][4] == NULL)
            cr_expect_null(m, "%s -> %s/%s gave %s", cases[i][0], cases[i][2], cases[i][3], m);
        else
            cr_expect(m != NULL && strcmp(m, cases[i][4]) == 0, "%s -> %s/%s gave %s, want %s",
                      cases[i][0], cases[i][2], cases[i][3], m ? m : "(none)", cases[i][4]);
    }
}

/* ---- decisions ---- */

Test(notifier, enabled_milestone_is_sent_and_disabled_one_is_recorded)
{
    struct fixture f;
    long long sid = shipment("ana@example.com", NULL, "de", "Europe/Berlin", "in_transit",
                             "customs_processing", "ORD-1");

    open_notifier(&f);
    event(f.n, sid, "pending", "in_transit", "picked_up");
    expect_row(sid, "shipped", "email", "sent", NULL);
    /* customs_processing is off by default */
    event(f.n, sid, "in_transit", "in_transit", "customs_processing");
    expect_row(sid, "customs_processing", "email", "suppressed", "milestone_disabled");
    cr_expect_eq(emails(), 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE channel = 'sms'"),
                 0, "no phone, no SMS row");
    close_notifier(&f);
    /* and turned on by configuration */
    setenv("SHIPTRACK_NOTIFY_MILESTONES", "customs_processing", 1);
    open_notifier(&f);
    sid = shipment("ana@example.com", NULL, "de", "Europe/Berlin", "in_transit",
                   "customs_processing", "ORD-2");
    event(f.n, sid, "in_transit", "in_transit", "customs_processing");
    expect_row(sid, "customs_processing", "email", "sent", NULL);
    event(f.n, sid, "pending", "in_transit", "picked_up");
    expect_row(sid, "shipped", "email", "suppressed", "milestone_disabled");
    cr_expect_eq(emails(), 2);
    close_notifier(&f);
}

Test(notifier, no_consent_or_opted_out_is_suppressed)
{
    struct fixture f;
    long long sid = shipment("ana@example.com", "+4915730123456", "en", "UTC", "in_transit",
                             "picked_up", "ORD-1");
    char sql[256];

    snprintf(sql, sizeof(sql),
             "UPDATE preferences SET consent = false WHERE channel = 'email' AND recipient_id ="
             " (SELECT recipient_id FROM shipments WHERE id = %lld)", sid);
    tdb_exec(db.conn, sql);
    snprintf(sql, sizeof(sql),
             "UPDATE preferences SET opted_out_at = now() WHERE channel = 'sms' AND recipient_id"
             " = (SELECT recipient_id FROM shipments WHERE id = %lld)", sid);
    tdb_exec(db.conn, sql);
    open_notifier(&f);
    event(f.n, sid, "pending", "in_transit", "picked_up");
    expect_row(sid, "shipped", "email", "suppressed", "no_consent");
    expect_row(sid, "shipped", "sms", "suppressed", "opted_out");
    cr_expect_eq(emails(), 0);
    cr_expect_eq(sms_lines(), 0);
    close_notifier(&f);
}

Test(notifier, duplicate_event_sends_once)
{
    struct fixture f;
    long long sid = shipment("ana@example.com", "+4915730123456", "fr", "Europe/Paris",
                             "in_transit", "picked_up", "ORD-1");

    open_notifier(&f);
    for (int i = 0; i < 3; i++)
        event(f.n, sid, "info_received", "in_transit", "picked_up");
    expect_row(sid, "shipped", "email", "sent", NULL);
    expect_row(sid, "shipped", "sms", "sent", NULL);
    cr_expect_eq(emails(), 1);
    cr_expect_eq(sms_lines(), 1);
    cr_expect_eq(notifier_get_totals(f.n)->duplicates, 4);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications"), 2);
    close_notifier(&f);
}

Test(notifier, superseded_milestone_is_suppressed)
{
    struct fixture f;
    long long sid = shipment("ana@example.com", NULL, "en", "UTC", "delivered", "signed",
                             "ORD-1");

    open_notifier(&f);
    /* the out_for_delivery event is read after the shipment was delivered */
    event(f.n, sid, "in_transit", "out_for_delivery", "out_for_delivery");
    expect_row(sid, "out_for_delivery", "email", "suppressed", "superseded");
    event(f.n, sid, "out_for_delivery", "delivered", "signed");
    expect_row(sid, "delivered", "email", "sent", NULL);
    cr_expect_eq(emails(), 1);
    close_notifier(&f);
}

Test(notifier, quiet_hours_defer_then_release)
{
    struct fixture f;
    long long sid = shipment(NULL, "+4915730123456", "de", "Europe/Berlin", "out_for_delivery",
                             "out_for_delivery", "ORD-1");
    int handled = -1;
    char err[512], *until;

    /* 2026-11-20 21:30 UTC = 22:30 in Berlin: inside 21:00-08:00 */
    fake_now = 1795210200;
    open_notifier(&f);
    event(f.n, sid, "in_transit", "out_for_delivery", "out_for_delivery");
    expect_row(sid, "out_for_delivery", "sms", "deferred", "quiet_hours");
    until = tdb_scalar(db.conn, "SELECT extract(epoch FROM deferred_until)::bigint::text"
                                " FROM notifications");
    /* 08:00 in Berlin = 07:00 UTC next day */
    cr_expect_str_eq(until, "1795244400");
    free(until);
    cr_expect_eq(sms_lines(), 0);
    /* still night: nothing */
    fake_now = 1795244400 - 60;
    cr_assert_eq(notifier_pass(f.n, &handled, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(handled, 0);
    cr_expect_eq(sms_lines(), 0);
    /* the window opened */
    fake_now = 1795244400 + 60;
    cr_assert_eq(notifier_pass(f.n, &handled, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(handled, 1);
    expect_row(sid, "out_for_delivery", "sms", "sent", NULL);
    cr_expect_eq(sms_lines(), 1);
    /* email has no quiet hours by default, and the clock offset moves the clock */
    close_notifier(&f);
}

Test(notifier, deferred_then_superseded_at_release)
{
    struct fixture f;
    long long sid = shipment(NULL, "+4915730123456", "en", "Europe/London", "out_for_delivery",
                             "out_for_delivery", "ORD-1");
    int handled;
    char err[512], sql[128];

    fake_now = 1795210200; /* 21:30 in London */
    open_notifier(&f);
    event(f.n, sid, "in_transit", "out_for_delivery", "out_for_delivery");
    expect_row(sid, "out_for_delivery", "sms", "deferred", "quiet_hours");
    snprintf(sql, sizeof(sql), "UPDATE shipments SET status = 'delivered' WHERE id = %lld", sid);
    tdb_exec(db.conn, sql);
    fake_now += 12 * 3600;
    cr_assert_eq(notifier_pass(f.n, &handled, err, sizeof(err)), ST_OK, "%s", err);
    expect_row(sid, "out_for_delivery", "sms", "suppressed", "superseded");
    cr_expect_eq(sms_lines(), 0);
    close_notifier(&f);
}

Test(notifier, frequency_cap_suppresses_with_reason)
{
    struct fixture f;
    long long a = shipment("ana@example.com", NULL, "en", "UTC", "in_transit", "picked_up",
                           "ORD-1");
    long long b = sibling(a), c = sibling(a);

    setenv("SHIPTRACK_NOTIFY_MAX_PER_DAY", "2", 1);
    open_notifier(&f);
    event(f.n, a, "pending", "in_transit", "picked_up");
    event(f.n, b, "pending", "in_transit", "picked_up");
    event(f.n, c, "pending", "in_transit", "picked_up");
    expect_row(a, "shipped", "email", "sent", NULL);
    expect_row(b, "shipped", "email", "sent", NULL);
    expect_row(c, "shipped", "email", "suppressed", "frequency_cap");
    cr_expect_eq(emails(), 2);
    close_notifier(&f);
}

Test(notifier, smtp_451_is_retried_then_sent)
{
    struct fixture f;
    struct tu_smtpd s;
    long long sid;
    int handled;
    char err[512], *attempts;

    smtpd_start(&s);
    setenv("SHIPTRACK_NOTIFY_RETRY_BASE", "60s", 1);
    sid = shipment("flaky@example.com", NULL, "en", "UTC", "in_transit", "picked_up", "ORD-1");
    open_notifier(&f);
    event(f.n, sid, "pending", "in_transit", "picked_up");
    expect_row(sid, "shipped", "email", "failed_temporary", "451");
    cr_expect_eq(count_files(s.dir, ".eml"), 0);
    /* not due yet */
    fake_now += 30;
    cr_assert_eq(notifier_pass(f.n, &handled, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(handled, 0);
    fake_now += 31;
    cr_assert_eq(notifier_pass(f.n, &handled, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(handled, 1);
    expect_row(sid, "shipped", "email", "sent", NULL);
    cr_expect_eq(count_files(s.dir, ".eml"), 1);
    attempts = tdb_scalar(db.conn, "SELECT attempts::text FROM notifications");
    cr_expect_str_eq(attempts, "2");
    free(attempts);
    close_notifier(&f);
    tu_smtpd_stop(&s);
}

Test(notifier, smtp_550_is_permanent)
{
    struct fixture f;
    struct tu_smtpd s;
    long long sid;
    int handled;
    char err[512];

    smtpd_start(&s);
    sid = shipment("reject@example.com", NULL, "en", "UTC", "in_transit", "picked_up",
                   "ORD-1");
    open_notifier(&f);
    event(f.n, sid, "pending", "in_transit", "picked_up");
    expect_row(sid, "shipped", "email", "failed_permanent", "550");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications"
                                    " WHERE reason LIKE '%reject@example.com%'"), 0,
                 "no address in notifications.reason");
    fake_now += 86400;
    cr_assert_eq(notifier_pass(f.n, &handled, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(handled, 0, "a permanent failure is never retried");
    cr_expect_eq(count_files(s.dir, ".eml"), 0);
    close_notifier(&f);
    tu_smtpd_stop(&s);
}

Test(notifier, header_injection_through_data_is_refused)
{
    struct fixture f;
    long long sid = shipment("ana@example.com", NULL, "en", "UTC", "in_transit", "picked_up",
                             "ORD-1\r\nBcc: victim@evil.example");

    open_notifier(&f);
    event(f.n, sid, "pending", "in_transit", "picked_up");
    expect_row(sid, "shipped", "email", "failed_permanent", NULL);
    cr_expect_eq(emails(), 0);
    close_notifier(&f);
}

/* A Twilio-shaped provider that answers 21610 (unsubscribed) to everything. */
static enum MHD_Result answer_21610(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls)
{
    static const char body[] = "{\"code\":21610,\"message\":\"Attempt to send to "
                               "unsubscribed recipient\",\"status\":400}";
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) { /* first call: headers only */
        *con_cls = (void *)1;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    ret = MHD_queue_response(c, 400, r);
    MHD_destroy_response(r);
    return ret;
}

Test(notifier, sms_21610_is_permanent_and_records_the_opt_out)
{
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                            answer_21610, NULL, MHD_OPTION_END);
    const union MHD_DaemonInfo *info;
    struct fixture f;
    long long sid, a;
    char url[64], sql[256];

    cr_assert_not_null(d);
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert_not_null(info);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", info->port);
    setenv("SHIPTRACK_SMS_URL", url, 1);
    setenv("SHIPTRACK_SMS_ACCOUNT_SID", "ACtest123", 1);
    setenv("SHIPTRACK_SMS_AUTH_TOKEN", "tok-secret", 1);
    setenv("SHIPTRACK_SMS_FROM", "+15005550000", 1);
    sid = shipment(NULL, "+4915730123456", "en", "UTC", "in_transit", "picked_up", "ORD-1");
    open_notifier(&f);
    event(f.n, sid, "pending", "in_transit", "picked_up");
    expect_row(sid, "shipped", "sms", "failed_permanent", "opted_out");
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM preferences WHERE channel = 'sms' AND NOT consent AND"
             " opted_out_at IS NOT NULL AND recipient_id = (SELECT recipient_id FROM shipments"
             " WHERE id = %lld)", sid);
    cr_expect_eq(tdb_count(db.conn, sql), 1, "opt-out recorded on preferences");
    /* the next milestone is not even tried */
    a = tdb_count(db.conn, "SELECT count(*) FROM notifications");
    event(f.n, sid, "in_transit", "out_for_delivery", "out_for_delivery");
    expect_row(sid, "out_for_delivery", "sms", "suppressed", "opted_out");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications"), a + 1);
    close_notifier(&f);
    MHD_stop_daemon(d);
}

Test(notifier, refuses_to_start_without_public_url_or_secret)
{
    struct st_config cfg;
    struct notifier *n = NULL;
    char err[256];

    unsetenv("SHIPTRACK_UNSUBSCRIBE_SECRET");
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(notifier_new(&cfg, db.conn, NULL, &n, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "SHIPTRACK_UNSUBSCRIBE_SECRET") != NULL, "%s", err);
    config_free(&cfg);
    setenv("SHIPTRACK_UNSUBSCRIBE_SECRET", "test-secret-0123456789", 1);
    setenv("SHIPTRACK_QUIET_HOURS_SMS", "21-8", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(notifier_new(&cfg, db.conn, NULL, &n, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "SHIPTRACK_QUIET_HOURS_SMS") != NULL, "%s", err);
    config_free(&cfg);
}

/* ---- end to end ---- */

struct role_thread {
    struct st_config cfg;
    volatile sig_atomic_t running;
    const char *brokers;
    int kind;                       /* 0 poller, 1 relay, 2 notifier, 3 intake */
    bool from_beginning;
    struct notifier_totals nt;
    int rc;
};

static void *run_role(void *arg)
{
    struct role_thread *r = arg;

    if (r->kind == 0) {
        struct poller_opts o = { &r->running, false };
        struct poller_totals t;

        r->rc = poller_run(&r->cfg, &o, &t);
    } else if (r->kind == 1) {
        struct relay_opts o = { &r->running, false, r->brokers };
        struct relay_totals t;

        r->rc = relay_run(&r->cfg, &o, &t);
    } else if (r->kind == 3) {
        struct intake_opts o = { &r->running, r->brokers, 0 };
        struct intake_totals t;

        r->rc = intake_run(&r->cfg, &o, &t);
    } else {
        struct notifier_opts o = { &r->running, r->brokers, 0, r->from_beginning };

        r->rc = notifier_run(&r->cfg, &o, &r->nt);
    }
    return NULL;
}

static void start_role(struct role_thread *r, pthread_t *th, int kind, const char *brokers,
                       bool from_beginning)
{
    char err[256];

    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->from_beginning = from_beginning;
    r->brokers = brokers;
    r->running = 1;
    cr_assert_eq(config_load(&r->cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(pthread_create(th, NULL, run_role, r), 0);
}

static void stop_role(struct role_thread *r, pthread_t th)
{
    r->running = 0;
    pthread_join(th, NULL);
    cr_expect_eq(r->rc, 0, "role %d exit", r->kind);
    config_free(&r->cfg);
}

/* Subjects of every message the SMTP server saved (decoded), in a JSON array. */
static json_t *subjects(const char *dir)
{
    json_t *out = json_array();
    DIR *d = opendir(dir);
    struct dirent *e;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[512], script[512], *o = NULL, *er = NULL;
        char *argv[] = { (char *)tu_python(), script, path, NULL };
        size_t len = strlen(e->d_name);
        json_t *j;

        if (len < 5 || strcmp(e->d_name + len - 4, ".eml") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        snprintf(script, sizeof(script), "%s/tests/support/parse_eml.py", ST_SOURCE_DIR);
        cr_assert_eq(tu_run(argv, NULL, &o, &er), 0, "parse_eml: %s", er);
        j = json_loads(o, 0, NULL);
        cr_assert_not_null(j);
        json_array_append(out, json_object_get(j, "subject"));
        json_decref(j);
        free(o);
        free(er);
    }
    closedir(d);
    return out;
}

Test(notifier, end_to_end_customs_hold_journey_one_email_per_milestone)
{
    const char *sim_args[] = { "--speed", "20000", NULL };
    struct kafka_mock mock;
    struct tu_sim sim;
    struct tu_smtpd s;
    struct role_thread poller, relay, notifier, again, intake;
    pthread_t tp, tr, tn, ta, ti;
    char err[256], sbin[512], number[64] = "", msg[512], *out = NULL, *er = NULL;
    char *plan_argv[] = { sbin, (char *)"plan", (char *)"--count", (char *)"24", NULL };
    rd_kafka_conf_t *pconf;
    rd_kafka_t *producer;
    long long sent_rows = 0, held_sent = 0;
    json_t *subj, *v;
    size_t i;
    int german = 0;

    notifier_clock = NULL; /* real time: the journey runs on the wall clock */
    smtpd_start(&s);
    setenv("SHIPTRACK_DHL_API_KEY", "sim-dhl-key", 1);
    setenv("SHIPTRACK_POLL_INTERVAL", "1s", 1);
    setenv("SHIPTRACK_POLL_IDLE", "100ms", 1);
    setenv("SHIPTRACK_DHL_RATE", "1000/s", 1);
    setenv("SHIPTRACK_DHL_DAILY_QUOTA", "0", 1);
    setenv("SHIPTRACK_NOTIFY_PASS_INTERVAL", "1s", 1);
    setenv("SHIPTRACK_QUIET_HOURS_EMAIL", "off", 1);
    cr_assert_eq(kafka_mock_start(&mock, 1, 2, err, sizeof(err)), ST_OK, "%s", err);
    /* the notifier first: the mock's first group join takes a few seconds */
    start_role(&notifier, &tn, 2, mock.bootstraps, false);
    sleep(5);

    /* a customs_duties_held journey, registered over Kafka for a German recipient */
    tu_binary_path(sbin, sizeof(sbin), "shiptrack-carrier-sim");
    cr_assert_eq(tu_run(plan_argv, NULL, &out, &er), 0, "plan: %s", er);
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line && !number[0];
         line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);

        if (o != NULL && strcmp(json_string_value(json_object_get(o, "scenario")),
                                "customs_duties_held") == 0 &&
            strcmp(json_string_value(json_object_get(o, "carrier")), "dhl") == 0)
            snprintf(number, sizeof(number), "%s",
                     json_string_value(json_object_get(o, "tracking_number")));
        json_decref(o);
    }
    free(out);
    free(er);
    cr_assert(number[0] != '\0', "no customs_duties_held journey in the plan");
    tu_sim_start(&sim, sim_args);
    setenv("SHIPTRACK_DHL_BASE_URL", sim.url, 1);
    snprintf(msg, sizeof(msg),
             "{\"type\":\"register\",\"carrier\":\"dhl\",\"tracking_number\":\"%s\","
             "\"email\":\"lena@example.com\",\"locale\":\"de\","
             "\"time_zone\":\"Europe/Berlin\",\"order_ref\":\"ORD-4711\"}", number);
    pconf = kafka_conf_new(mock.bootstraps, err, sizeof(err));
    cr_assert_not_null(pconf, "%s", err);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
    cr_assert_not_null(producer, "%s", err);
    cr_assert_eq(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(TOPIC_SHIPMENTS),
                                   RD_KAFKA_V_VALUE(msg, strlen(msg)),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(rd_kafka_flush(producer, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(producer);
    start_role(&intake, &ti, 3, mock.bootstraps, false);
    for (int t = 0; t < 300 && tdb_count(db.conn, "SELECT count(*) FROM shipments") == 0; t++)
        usleep(100000);
    cr_assert_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments"), 1,
                 "the intake registered the shipment");
    start_role(&poller, &tp, 0, NULL, false);
    start_role(&relay, &tr, 1, mock.bootstraps, false);

    /* until delivered and its notification decided */
    for (int t = 0; t < 1200; t++) {
        if (tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE milestone = 'delivered'"
                               " AND status <> 'queued'") == 1)
            break;
        usleep(100000);
    }
    sleep(2);
    stop_role(&poller, tp);
    stop_role(&relay, tr);
    stop_role(&notifier, tn);
    stop_role(&intake, ti);
    tu_sim_stop(&sim);

    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE status = 'delivered'"),
                 1);
    out = tdb_scalar(db.conn, "SELECT string_agg(milestone || '=' || status || COALESCE('/' ||"
                              " reason, ''), ' ' ORDER BY id) FROM notifications");
    cr_log_info("notifications: %s", out ? out : "(none)");
    free(out);
    held_sent = tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE milestone ="
                                   " 'customs_held' AND status = 'sent'");
    cr_expect_eq(held_sent, 1, "customs_held sent");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE milestone ="
                                    " 'delivered' AND status = 'sent'"), 1, "delivered sent");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE status NOT IN"
                                    " ('sent', 'suppressed')"), 0);
    sent_rows = tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE status = 'sent'");
    subj = subjects(s.dir);
    cr_expect_eq((long long)json_array_size(subj), sent_rows,
                 "one email per sent milestone (%zu emails, %lld rows)", json_array_size(subj),
                 sent_rows);
    json_array_foreach(subj, i, v) {
        const char *t = json_string_value(v);

        german += t != NULL && strstr(t, "Ihre Bestellung ORD-4711") != NULL;
        for (size_t k = i + 1; k < json_array_size(subj); k++)
            cr_expect_str_neq(t, json_string_value(json_array_get(subj, k)), "sent twice: %s", t);
        if (t != NULL && strstr(t, "Zoll") != NULL && strstr(t, "zurückgehalten") != NULL)
            held_sent = -1;
    }
    cr_expect_eq(german, (int)json_array_size(subj), "every subject in German");
    cr_expect_eq(held_sent, -1, "the customs hold email says Zoll ... zurückgehalten");
    json_decref(subj);

    /* a notifier re-reading the whole topic sends nothing again */
    start_role(&again, &ta, 2, mock.bootstraps, true);
    sleep(12); /* group join, then the whole topic */
    stop_role(&again, ta);
    cr_expect_gt(again.nt.duplicates, 0, "the topic was read again");
    cr_expect_eq(again.nt.sent, 0);
    cr_expect_eq(count_files(s.dir, ".eml"), (int)sent_rows, "no email twice");
    kafka_mock_stop(&mock);
    tu_smtpd_stop(&s);
}
