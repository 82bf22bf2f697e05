/*
 * test_store.c - the poll transaction against a real PostgreSQL: events are
 * deduplicated, a late older event never moves the status back, unmapped
 * codes never drive the status, every status change gets exactly one outbox
 * row, customs holds open and close, failures keep the data and back off.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "register.h"
#include "store.h"
#include "shipfix.h"
#include "testdb.h"

static struct testdb db;
static struct claimed ship;
static struct poll_policy policy;

static void setup(void)
{
    struct registration r;
    char err[256];
    bool existed;

    for (int i = 0; i < ST_STATUS__COUNT; i++)
        policy.interval_ms[i] = st_status_terminal((enum st_status)i) ? -1 : 3600 * 1000;
    policy.retry_max_ms = 6 * 3600 * 1000;
    policy.jitter_pct = 10;
    policy.expire_after_ms = 30LL * 86400 * 1000;
    tdb_create(&db, true);
    cr_assert_eq(registration_prepare(&r, "dhl", "3318810025", "ana@example.com", NULL, "de",
                                      NULL, "FR", "DE", "ORD-1", err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(registration_store(db.conn, &r, &ship.id, &existed, err, sizeof(err)), ST_OK,
                 "%s", err);
    snprintf(ship.carrier, sizeof(ship.carrier), "dhl");
    snprintf(ship.tracking_number, sizeof(ship.tracking_number), "3318810025");
    tdb_exec(db.conn, "UPDATE shipments SET lease_owner = 'test', lease_until = now() + interval '5 minutes'");
}

static void teardown(void)
{
    tdb_drop(&db);
}

TestSuite(store, .init = setup, .fini = teardown);

/* Append an event at ISO time `at` (with offset) to r. */
/* An event in Leipzig (DE) at ISO time `at`. */
static void add(struct track_result *r, const char *at, enum st_status st, enum st_substatus sub,
                const char *code, const char *desc)
{
    struct track_event *ev = sf_add(r, at, "DE", st, sub, code, desc);

    snprintf(ev->city, sizeof(ev->city), "Leipzig");
}

static char *status_now(void)
{
    return tdb_scalar(db.conn, "SELECT status || '/' || substatus FROM shipments");
}

static void store(const struct track_result *r, struct store_stats *st)
{
    char err[512];

    cr_assert_eq(store_poll_result(db.conn, "test", &ship, r, &policy, st, err, sizeof(err)),
                 ST_OK, "%s", err);
}

Test(store, dedupe_and_outbox)
{
    struct track_result r = { 0 };
    struct store_stats st;
    char *s;

    add(&r, "2026-11-01T10:00:00+01:00", ST_STATUS_INFO_RECEIVED, ST_SUB_LABEL_CREATED, "pre-transit", "Label created");
    add(&r, "2026-11-02T08:30:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "transit", "Picked up");
    store(&r, &st);
    cr_expect_eq(st.events_new, 2);
    cr_expect_eq(st.status_changes, 2);
    cr_expect_str_eq((s = status_now()), "in_transit/picked_up");
    free(s);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox"), 2);

    /* the same response again: nothing new, nothing announced */
    store(&r, &st);
    cr_expect_eq(st.events_new, 0);
    cr_expect_eq(st.status_changes, 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), 2);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox"), 2);

    /* outbox rows are in order and describe the change */
    s = tdb_scalar(db.conn, "SELECT string_agg(payload->'to'->>'status', ',' ORDER BY id) FROM outbox");
    cr_expect_str_eq(s, "info_received,in_transit");
    free(s);
    s = tdb_scalar(db.conn, "SELECT payload->'from'->>'status' FROM outbox ORDER BY id LIMIT 1");
    cr_expect_str_eq(s, "pending");
    free(s);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox WHERE msg_key = id::text OR msg_key <> ''"), 2);
    cr_expect_eq(tdb_count(db.conn, "SELECT poll_count FROM shipments"), 2);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NULL"
                                    " AND next_poll_at > now() + interval '50 minutes'"), 1);
    track_result_reset(&r);
}

Test(store, late_older_event_never_moves_status_back)
{
    struct track_result r = { 0 }, late = { 0 };
    struct store_stats st;
    char *s;

    add(&r, "2026-11-05T14:00:00+01:00", ST_STATUS_DELIVERED, ST_SUB_SIGNED, "delivered", "Delivered, signed by ANA");
    store(&r, &st);
    cr_expect_str_eq((s = status_now()), "delivered/signed");
    free(s);
    /* terminal: no further polls */
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE next_poll_at IS NULL"), 1);

    add(&late, "2026-11-04T09:00:00+01:00", ST_STATUS_OUT_FOR_DELIVERY, ST_SUB_OUT_FOR_DELIVERY, "transit", "Out for delivery");
    store(&late, &st);
    cr_expect_eq(st.events_new, 1, "the late event is still recorded");
    cr_expect_eq(st.status_changes, 0);
    cr_expect_str_eq((s = status_now()), "delivered/signed");
    free(s);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox"), 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), 2);
    track_result_reset(&r);
    track_result_reset(&late);
}

Test(store, newer_event_may_change_terminal_status)
{
    struct track_result r = { 0 }, later = { 0 };
    struct store_stats st;
    char *s;

    add(&r, "2026-11-05T14:00:00+01:00", ST_STATUS_DELIVERED, ST_SUB_DELIVERED, "delivered", "Delivered");
    store(&r, &st);
    add(&later, "2026-11-06T10:00:00+01:00", ST_STATUS_RETURNING, ST_SUB_RETURN_TO_SENDER, "failure", "Refused, returning to sender");
    store(&later, &st);
    cr_expect_str_eq((s = status_now()), "returning/return_to_sender");
    free(s);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE next_poll_at IS NOT NULL"), 1);
    track_result_reset(&r);
    track_result_reset(&later);
}

Test(store, unmapped_code_is_kept_but_never_drives_status)
{
    struct track_result r = { 0 };
    struct store_stats st;
    char *s;

    add(&r, "2026-11-02T08:30:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "transit", "Picked up");
    add(&r, "2026-11-03T08:30:00+01:00", ST_STATUS_EXCEPTION, ST_SUB_UNMAPPED, "XZ9", "Mysterious new scan");
    store(&r, &st);
    cr_expect_str_eq((s = status_now()), "in_transit/picked_up");
    free(s);
    s = tdb_scalar(db.conn, "SELECT raw_code || ':' || raw_description FROM tracking_events WHERE substatus = 'unmapped'");
    cr_expect_str_eq(s, "XZ9:Mysterious new scan");
    free(s);
    track_result_reset(&r);
}

Test(store, same_time_different_event_is_applied)
{
    struct track_result a = { 0 }, b = { 0 };
    struct store_stats st;
    char *s;

    add(&a, "2026-11-03T08:30:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_ARRIVED_FACILITY, "transit", "Arrived at hub");
    store(&a, &st);
    add(&b, "2026-11-03T08:30:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_ARRIVED_FACILITY, "transit", "Arrived at hub");
    add(&b, "2026-11-03T08:30:00+01:00", ST_STATUS_OUT_FOR_DELIVERY, ST_SUB_OUT_FOR_DELIVERY, "transit", "With courier");
    store(&b, &st);
    cr_expect_eq(st.events_new, 1);
    cr_expect_str_eq((s = status_now()), "out_for_delivery/out_for_delivery");
    free(s);
    track_result_reset(&a);
    track_result_reset(&b);
}

Test(store, customs_hold_opens_and_closes)
{
    struct track_result r = { 0 }, later = { 0 };
    struct store_stats st;
    char *s;

    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_PROCESSING, "transit", "Customs clearance in progress");
    add(&r, "2026-11-03T12:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE, "transit", "Import duties to be paid by the recipient");
    store(&r, &st);
    s = tdb_scalar(db.conn, "SELECT state || '/' || reason || '/' || actor FROM customs_holds WHERE closed_at IS NULL");
    cr_expect_str_eq(s, "held/duties_due/recipient");
    free(s);
    s = tdb_scalar(db.conn, "SELECT customs_state || '/' || status FROM shipments");
    cr_expect_str_eq(s, "held/held");
    free(s);

    add(&later, "2026-11-04T09:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED, "transit", "Released by customs");
    store(&later, &st);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM customs_holds WHERE closed_at IS NULL"), 0);
    s = tdb_scalar(db.conn, "SELECT state || ' ' || to_char(closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM customs_holds");
    cr_expect_str_eq(s, "released 2026-11-04 08:00");
    free(s);
    s = tdb_scalar(db.conn, "SELECT customs_state || '/' || status FROM shipments");
    cr_expect_str_eq(s, "released/in_transit");
    free(s);
    track_result_reset(&r);
    track_result_reset(&later);
}

Test(store, not_found_then_failure_keeps_data)
{
    struct track_result nf = { 0 }, ok = { 0 };
    struct store_stats st;
    char err[512], *s;

    nf.outcome = TRACK_NOT_FOUND;
    store(&nf, &st);
    cr_expect_str_eq((s = status_now()), "not_found/not_found");
    free(s);

    add(&ok, "2026-11-02T08:30:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "transit", "Picked up");
    store(&ok, &st);
    cr_expect_str_eq((s = status_now()), "in_transit/picked_up");
    free(s);

    tdb_exec(db.conn, "UPDATE shipments SET lease_owner = 'test'");
    cr_assert_eq(store_poll_failure(db.conn, "test", &ship, ST_PERMANENT,
                                    "dhl: body is not JSON", 0, &policy, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq((s = status_now()), "in_transit/picked_up");
    free(s);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), 1);
    s = tdb_scalar(db.conn, "SELECT poll_error_streak || ' ' || last_poll_error FROM shipments");
    cr_expect_str_eq(s, "1 permanent: dhl: body is not JSON");
    free(s);
    /* backoff at least 27 s (30 s minus jitter), lease released */
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NULL"
                                    " AND next_poll_at > now() + interval '25 seconds'"), 1);
    /* a Retry-After longer than the backoff wins */
    cr_assert_eq(store_poll_failure(db.conn, "test", &ship, ST_RETRY, "HTTP 429", 600000, &policy,
                                    err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments"
                                    " WHERE next_poll_at > now() + interval '590 seconds'"), 1);
    track_result_reset(&nf);
    track_result_reset(&ok);
}

Test(store, offsets_are_kept_honest)
{
    struct track_result r = { 0 };
    struct store_stats st;
    struct track_event *ev;
    char *s;

    ev = track_result_add(&r);
    cr_assert(carrier_parse_time("2026-11-02T08:30:00", "FR", NULL, ev));
    cr_expect_eq(ev->offset_kind, OFFSET_DERIVED);
    cr_expect_eq(ev->utc_offset_min, 60);
    ev->status = ST_STATUS_IN_TRANSIT;
    ev->substatus = ST_SUB_ARRIVED_FACILITY;
    ev = track_result_add(&r);
    cr_assert(carrier_parse_time("2026-11-03T08:30:00", "US", NULL, ev));
    cr_expect_eq(ev->offset_kind, OFFSET_UNKNOWN);
    ev->status = ST_STATUS_IN_TRANSIT;
    ev->substatus = ST_SUB_DEPARTED_FACILITY;
    store(&r, &st);
    s = tdb_scalar(db.conn, "SELECT string_agg(offset_kind || '@' || to_char(occurred_at AT TIME ZONE 'UTC', 'HH24:MI')"
                            " || '/' || to_char(occurred_local, 'HH24:MI'), ',' ORDER BY occurred_at) FROM tracking_events");
    cr_expect_str_eq(s, "derived@07:30/08:30,unknown@08:30/08:30");
    free(s);
    track_result_reset(&r);
}

Test(store, outbox_announces_status_and_customs_changes_only)
{
    struct track_result r = { 0 };
    struct store_stats st;
    char *s;

    add(&r, "2026-11-02T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "transit", "Picked up");
    add(&r, "2026-11-02T12:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_ARRIVED_FACILITY, "transit", "Arrived at hub");
    add(&r, "2026-11-02T18:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_DEPARTED_FACILITY, "transit", "Left hub");
    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_PROCESSING, "transit", "Customs clearance");
    add(&r, "2026-11-03T20:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED, "transit", "Cleared customs");
    add(&r, "2026-11-04T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_DEPARTED_FACILITY, "transit", "Left customs hub");
    store(&r, &st);
    s = tdb_scalar(db.conn, "SELECT string_agg(payload->'to'->>'substatus', ',' ORDER BY id) FROM outbox");
    cr_expect_str_eq(s, "picked_up,customs_processing,customs_released,departed_facility");
    free(s);
    /* the shipment's substatus follows the newest event even without an announcement */
    cr_expect_str_eq((s = status_now()), "in_transit/departed_facility");
    free(s);
    track_result_reset(&r);
}

Test(store, no_movement_for_too_long_expires)
{
    struct track_result r = { 0 };
    struct store_stats st;
    char *s;

    /* an event 40 days old and nothing since: expired, polling stops */
    tdb_exec(db.conn, "UPDATE shipments SET created_at = now() - interval '45 days'");
    add(&r, "2020-01-02T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "transit", "Picked up");
    r.events[0].occurred_at = time(NULL) - 40 * 86400;
    store(&r, &st);
    cr_expect_str_eq((s = status_now()), "expired/none");
    free(s);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE next_poll_at IS NULL"), 1);
    s = tdb_scalar(db.conn, "SELECT string_agg(payload->'to'->>'status', ',' ORDER BY id) FROM outbox");
    cr_expect_str_eq(s, "in_transit,expired");
    free(s);
    track_result_reset(&r);
}

Test(store, reschedule_keeps_streak_and_releases)
{
    char err[256];

    cr_assert_eq(store_reschedule(db.conn, "test", &ship, 5000, "registered with 17TRACK", err,
                                  sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NULL"
                                    " AND poll_error_streak = 0 AND next_poll_at < now() + interval '6 seconds'"
                                    " AND next_poll_at > now() + interval '4 seconds'"), 1);
}

/* Take what a claim would read: the stored status and poll digest. */
static void as_claimed(struct claimed *c)
{
    char *s = tdb_scalar(db.conn, "SELECT status FROM shipments");
    char *d = tdb_scalar(db.conn, "SELECT coalesce(poll_digest, '') FROM shipments");

    *c = ship;
    snprintf(c->status, sizeof(c->status), "%s", s);
    snprintf(c->digest, sizeof(c->digest), "%s", d);
    free(s);
    free(d);
    tdb_exec(db.conn, "UPDATE shipments SET lease_owner = 'test',"
                      " lease_until = now() + interval '5 minutes'");
}

static void store_claimed(const struct claimed *c, const struct track_result *r,
                          struct store_stats *st)
{
    char err[512];

    cr_assert_eq(store_poll_result(db.conn, "test", c, r, &policy, st, err, sizeof(err)), ST_OK,
                 "%s", err);
}

Test(store, unchanged_answer_only_reschedules)
{
    struct track_result r = { 0 };
    struct store_stats st;
    struct claimed c;
    char *before, *after;

    add(&r, "2026-11-01T10:00:00+01:00", ST_STATUS_INFO_RECEIVED, ST_SUB_LABEL_CREATED, "pre-transit", "Label created");
    add(&r, "2026-11-02T08:30:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "transit", "Picked up");
    r.events[1].occurred_at = time(NULL) - 3600; /* recent: nothing expires here */
    store(&r, &st);
    cr_expect_not(st.unchanged);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE length(poll_digest) = 32"), 1);

    /* the same answer: rescheduled and released in one statement, nothing else */
    as_claimed(&c);
    tdb_exec(db.conn, "UPDATE shipments SET next_poll_at = now()");
    store_claimed(&c, &r, &st);
    cr_expect(st.unchanged);
    cr_expect_eq(st.events_new, 0);
    cr_expect_eq(st.events_seen, 2);
    cr_expect_str_eq(st.status, "in_transit");
    cr_expect_eq(tdb_count(db.conn, "SELECT poll_count FROM shipments"), 2);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NULL"
                                    " AND lease_until IS NULL AND poll_error_streak = 0"
                                    " AND next_poll_at > now() + interval '50 minutes'"), 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox"), 2);

    /* a claim that saw another status (changed since) takes the full path */
    as_claimed(&c);
    snprintf(c.status, sizeof(c.status), "held");
    store_claimed(&c, &r, &st);
    cr_expect_not(st.unchanged);
    cr_expect_eq(tdb_count(db.conn, "SELECT poll_count FROM shipments"), 3);

    /* a new event changes the digest: stored in full, and the digest follows */
    before = tdb_scalar(db.conn, "SELECT poll_digest FROM shipments");
    add(&r, "2026-11-03T09:00:00+01:00", ST_STATUS_OUT_FOR_DELIVERY, ST_SUB_NONE, "delivery", "Out for delivery");
    r.events[2].occurred_at = time(NULL) - 60;
    as_claimed(&c);
    store_claimed(&c, &r, &st);
    cr_expect_not(st.unchanged);
    cr_expect_eq(st.events_new, 1);
    cr_expect_str_eq(st.status, "out_for_delivery");
    after = tdb_scalar(db.conn, "SELECT poll_digest FROM shipments");
    cr_expect_str_neq(before, after);
    free(before);
    free(after);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox"), 3);

    /* a changed estimated delivery date is news too */
    as_claimed(&c);
    snprintf(r.estimated_delivery, sizeof(r.estimated_delivery), "2026-11-05");
    store_claimed(&c, &r, &st);
    cr_expect_not(st.unchanged);
    track_result_reset(&r);
}

Test(store, unchanged_answer_still_expires)
{
    struct track_result r = { 0 };
    struct store_stats st;
    struct claimed c;
    char *s;

    /* moved 40 days ago: within a 60-day limit */
    policy.expire_after_ms = 60LL * 86400 * 1000;
    add(&r, "2020-01-02T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "transit", "Picked up");
    r.events[0].occurred_at = time(NULL) - 40 * 86400;
    store(&r, &st);
    cr_expect_str_eq((s = status_now()), "in_transit/picked_up");
    free(s);

    /* the same answer under a 30-day limit: not just rescheduled, expired */
    policy.expire_after_ms = 30LL * 86400 * 1000;
    as_claimed(&c);
    store_claimed(&c, &r, &st);
    cr_expect_not(st.unchanged);
    cr_expect_str_eq((s = status_now()), "expired/none");
    free(s);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE next_poll_at IS NULL"), 1);
    track_result_reset(&r);
}
