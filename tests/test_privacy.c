/*
 * test_privacy.c - `shiptrack forget` and the retention job on a real database.
 *
 * Each test seeds its own database with two recipients (one to erase, one to
 * keep), their shipments, events with a signer's name and postal codes, and
 * notifications in every state; then checks that exactly the erased person's
 * data is gone, the timeline stays, and the other recipient is untouched.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "privacy.h"
#include "testdb.h"
#include "testutil.h"

static struct testdb db;

static void setup(void)
{
    tdb_create(&db, true);
    tdb_exec(db.conn,
             "INSERT INTO recipients (email, phone, locale, time_zone) VALUES"
             " ('Ana.Souza@example.com', '+5511999374052', 'pt-BR', 'America/Sao_Paulo'),"
             " ('keep@example.com', '+4915123456789', 'de', 'Europe/Berlin');"
             "INSERT INTO preferences (recipient_id, channel) VALUES (1, 'email'), (1, 'sms'),"
             " (2, 'email');"
             "INSERT INTO shipments (carrier, tracking_number, order_ref, recipient_id, status,"
             "   status_at, next_poll_at) VALUES"
             " ('dhl', '00340434161094042557', 'ORD-1', 1, 'delivered', now() - interval '200 days',"
             "   NULL),"
             " ('ups', '1Z999AA10123456784', 'ORD-2', 1, 'in_transit', now(), now()),"
             " ('dhl', '00340434161094042564', 'ORD-3', 2, 'delivered', now() - interval '200 days',"
             "   NULL);"
             "INSERT INTO tracking_events (shipment_id, occurred_at, occurred_local, offset_kind,"
             "   status, substatus, affects_status, raw_code, raw_description, city, postal_code,"
             "   country, dedupe_key) VALUES"
             " (1, now() - interval '201 days', now(), 'carrier', 'in_transit', 'arrived_facility',"
             "   true, 'AF', 'Arrived at facility', 'Leipzig', '04435', 'DE', gen_random_uuid()),"
             " (1, now() - interval '200 days', now(), 'carrier', 'delivered', 'signed', true, 'OK',"
             "   'Delivered. Signed by: A SOUZA', 'Sao Paulo', '01310-100', 'BR',"
             "   gen_random_uuid()),"
             " (3, now() - interval '200 days', now(), 'carrier', 'delivered', 'signed', true, 'OK',"
             "   'Zugestellt. Unterschrieben von: K MUELLER', 'Berlin', '10115', 'DE',"
             "   gen_random_uuid());"
             "INSERT INTO notifications (shipment_id, milestone, channel, status, reason,"
             "   deferred_until) VALUES"
             " (1, 'delivered', 'email', 'sent', NULL, NULL),"
             " (2, 'shipped', 'email', 'deferred', 'quiet_hours', now() + interval '1 hour'),"
             " (2, 'shipped', 'sms', 'failed_temporary', 'smtp 451', now()),"
             " (2, 'customs_held', 'email', 'queued', NULL, NULL),"
             " (3, 'delivered', 'email', 'deferred', 'quiet_hours', now() + interval '1 hour');"
             "INSERT INTO outbox (topic, msg_key, payload, sent_at) VALUES"
             " ('shiptrack.events.v1', '1', '{}', now() - interval '30 days'),"
             " ('shiptrack.events.v1', '1', '{}', now() - interval '1 day'),"
             " ('shiptrack.events.v1', '2', '{}', NULL)");
}

static void teardown(void)
{
    tdb_drop(&db);
}

TestSuite(privacy, .init = setup, .fini = teardown);

/* What erasing recipient 1 must leave behind (recipient 2 untouched). */
static void expect_erased_one(void)
{
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM recipients WHERE id = 1 AND"
                                    " email IS NULL AND phone IS NULL AND time_zone = 'UTC'"
                                    " AND erased_at IS NOT NULL"), 1, "recipient 1 anonymized");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM preferences WHERE recipient_id = 1"), 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications n JOIN shipments s"
                                    " ON s.id = n.shipment_id WHERE s.recipient_id = 1 AND"
                                    " n.status IN ('queued', 'deferred', 'failed_temporary')"),
                 0, "no pending notification left for the erased recipient");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE reason = 'erased'"
                                    " AND status = 'suppressed'"), 3);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE status = 'sent'"),
                 1, "history of what was sent stays");
    /* the timeline stays, anonymized */
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events WHERE shipment_id = 1"),
                 2);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events WHERE shipment_id = 1"
                                    " AND postal_code <> ''"), 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events WHERE shipment_id = 1"
                                    " AND raw_description LIKE '%SOUZA%'"), 0, "signer's name gone");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events WHERE raw_description ="
                                    " 'Delivered. Signed by [erased]'"), 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE recipient_id = 1"), 2,
                 "shipments kept");
    /* the other recipient is untouched */
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM recipients WHERE id = 2 AND"
                                    " email = 'keep@example.com' AND erased_at IS NULL"), 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events WHERE shipment_id = 3"
                                    " AND postal_code = '10115' AND raw_description LIKE"
                                    " '%MUELLER%'"), 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE shipment_id = 3"
                                    " AND status = 'deferred'"), 1);
}

Test(privacy, forget_by_email_is_case_insensitive_and_complete)
{
    struct privacy_stats st;
    char err[256];

    cr_assert_eq(privacy_forget(db.conn, PRIVACY_EMAIL, "ana.souza@EXAMPLE.com", false, &st, err,
                                sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(st.recipients, 1);
    cr_expect_eq(st.shipments, 2);
    cr_expect_eq(st.notifications, 3);
    cr_expect_eq(st.events, 2);
    expect_erased_one();
    /* again: nothing left to erase, nothing changes */
    cr_assert_eq(privacy_forget(db.conn, PRIVACY_RECIPIENT, "1", false, &st, err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_expect_eq(st.recipients, 0);
    cr_expect_eq(st.notifications, 0);
    expect_erased_one();
}

Test(privacy, forget_by_tracking_number_phone_and_order_ref)
{
    struct privacy_stats st;
    char err[256];

    cr_assert_eq(privacy_forget(db.conn, PRIVACY_TRACKING, "1z 999 aa1 0123456784", false, &st,
                                err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(st.recipients, 1);
    expect_erased_one();
    cr_assert_eq(privacy_forget(db.conn, PRIVACY_PHONE, "+4915123456789", false, &st, err,
                                sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(st.recipients, 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM recipients WHERE erased_at IS NULL"),
                 0);
    cr_assert_eq(privacy_forget(db.conn, PRIVACY_ORDER_REF, "ORD-404", false, &st, err,
                                sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(st.recipients, 0, "an unknown order erases nobody");
}

Test(privacy, dry_run_changes_nothing_and_bad_values_are_refused)
{
    struct privacy_stats st;
    char err[256];

    cr_assert_eq(privacy_forget(db.conn, PRIVACY_EMAIL, "ana.souza@example.com", true, &st, err,
                                sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(st.recipients, 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM recipients WHERE erased_at IS NULL"),
                 2, "dry run rolled back");
    cr_expect_eq(privacy_forget(db.conn, PRIVACY_RECIPIENT, "1 OR 1=1", false, &st, err,
                                sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "whole number") != NULL, "%s", err);
    cr_expect_eq(privacy_forget(db.conn, PRIVACY_EMAIL, "", false, &st, err, sizeof(err)),
                 ST_PERMANENT);
    /* quotes in a value are data, not SQL */
    cr_assert_eq(privacy_forget(db.conn, PRIVACY_EMAIL, "x' OR '1'='1", false, &st, err,
                                sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(st.recipients, 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM recipients WHERE erased_at IS NULL"),
                 2);
}

Test(privacy, retention_purges_old_outbox_raw_words_and_personal_data)
{
    const struct retention_policy pol = { 7LL * 86400000, 180LL * 86400000, 90LL * 86400000 };
    struct privacy_stats st;
    char err[256];

    cr_assert_eq(privacy_retention(db.conn, &pol, false, &st, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(st.outbox, 1, "only the sent row older than 7 days");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox"), 2);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"), 1,
                 "unsent rows are never purged");
    cr_expect_eq(st.raw, 2, "shipments 1 and 3 finished 200 days ago");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events WHERE shipment_id IN"
                                    " (1, 3) AND raw_description <> ''"), 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events WHERE raw_code = 'OK'"),
                 2, "codes, statuses and times stay");
    /* recipient 1 still has a shipment in transit: kept; recipient 2 is past retention */
    cr_expect_eq(st.recipients, 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM recipients WHERE id = 2 AND"
                                    " erased_at IS NOT NULL AND email IS NULL"), 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM recipients WHERE id = 1 AND"
                                    " erased_at IS NULL"), 1);
    /* a second pass finds nothing new */
    cr_assert_eq(privacy_retention(db.conn, &pol, false, &st, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_expect_eq(st.outbox + st.raw + st.recipients, 0);
}

Test(privacy, retention_zero_keeps_everything_and_dry_run_reports)
{
    const struct retention_policy keep = { 0, 0, 0 };
    const struct retention_policy pol = { 7LL * 86400000, 180LL * 86400000, 90LL * 86400000 };
    struct privacy_stats st;
    char err[256];

    cr_assert_eq(privacy_retention(db.conn, &keep, false, &st, err, sizeof(err)), ST_OK);
    cr_expect_eq(st.outbox + st.raw + st.recipients, 0);
    cr_assert_eq(privacy_retention(db.conn, &pol, true, &st, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(st.outbox, 1);
    cr_expect_eq(st.raw, 2);
    cr_expect_eq(st.recipients, 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox"), 3, "dry run rolled back");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM recipients WHERE erased_at IS NULL"),
                 2);
}

Test(privacy, cli_forget_masks_the_value_in_its_log_and_exits_2_on_misuse)
{
    char bin[512], *out = NULL, *er = NULL;
    char *ok_argv[] = { bin, (char *)"forget", (char *)"--email",
                        (char *)"ana.souza@example.com", (char *)"--json", NULL };
    char *two_argv[] = { bin, (char *)"forget", (char *)"--email", (char *)"a@b.c",
                         (char *)"--phone", (char *)"+4915123456789", NULL };

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    setenv("SHIPTRACK_DATABASE_URL", db.url, 1);
    cr_assert_eq(tu_run(ok_argv, NULL, &out, &er), 0, "%s", er);
    cr_expect(strstr(out, "\"recipients\":1") != NULL, "%s", out);
    cr_expect(strstr(er, "ana.souza@example.com") == NULL, "address in the log: %s", er);
    cr_expect(strstr(er, "privacy.forget") != NULL, "%s", er);
    free(out);
    free(er);
    out = er = NULL;
    cr_expect_eq(tu_run(two_argv, NULL, &out, &er), 2);
    cr_expect(strstr(er, "exactly one") != NULL, "%s", er);
    free(out);
    free(er);
    expect_erased_one();
}
