/*
 * test_intake.c - shipments arriving over Kafka (librdkafka's mock cluster)
 * into a real PostgreSQL: register, update and cancel are applied; a
 * malformed or invalid message lands in the DLQ with its reason and original
 * bytes and the next good one is still processed; registering twice is
 * harmless; offsets are stored only after the database commit.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "intake.h"
#include "kafka.h"
#include "testdb.h"

static struct testdb db;
static struct kafka_mock mock;

static void setup(void)
{
    char err[256];

    tdb_create(&db, true);
    cr_assert_eq(kafka_mock_start(&mock, 1, 2, err, sizeof(err)), ST_OK, "%s", err);
    /* the mock's first group join is slow; keep sessions short */
    setenv("SHIPTRACK_KAFKA_SESSION_TIMEOUT_MS", "6000", 1);
}

static void teardown(void)
{
    kafka_mock_stop(&mock);
    tdb_drop(&db);
}

TestSuite(intake, .init = setup, .fini = teardown, .timeout = 90);

static void produce(const char *const *values, size_t n)
{
    char err[256];
    rd_kafka_conf_t *conf = kafka_conf_new(mock.bootstraps, err, sizeof(err));
    rd_kafka_t *rk;

    cr_assert_not_null(conf, "%s", err);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    cr_assert_not_null(rk, "%s", err);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC_SHIPMENTS),
                                       RD_KAFKA_V_KEY("k", 1),
                                       RD_KAFKA_V_VALUE((void *)values[i], strlen(values[i])),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

static void run_intake(struct intake_totals *t)
{
    struct st_config cfg;
    volatile sig_atomic_t running = 1;
    struct intake_opts o = { &running, mock.bootstraps, 4000 };
    char err[256];

    setenv("SHIPTRACK_DATABASE_URL", db.url, 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(intake_run(&cfg, &o, t), 0);
    config_free(&cfg);
}

/* Read the DLQ: count messages, and check the first one's reason and bytes. */
static int read_dlq(const char *want_value, const char *want_reason)
{
    char err[256];
    rd_kafka_conf_t *conf = kafka_conf_new(mock.bootstraps, err, sizeof(err));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(2);
    rd_kafka_t *rk;
    int n = 0, idle = 0;
    bool seen = false;

    cr_assert_not_null(conf);
    rd_kafka_conf_set(conf, "group.id", "dlq-reader", err, sizeof(err));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    cr_assert_not_null(rk, "%s", err);
    for (int p = 0; p < 2; p++)
        rd_kafka_topic_partition_list_add(parts, TOPIC_DLQ, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    while (idle < 30) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        rd_kafka_headers_t *h;
        const void *reason;
        size_t rlen;

        if (m == NULL) {
            idle++;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            n++;
            if (m->len == strlen(want_value) && memcmp(m->payload, want_value, m->len) == 0 &&
                rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                rd_kafka_header_get_last(h, "reason", &reason, &rlen) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR &&
                memmem(reason, rlen, want_reason, strlen(want_reason)) != NULL)
                seen = true;
        }
        rd_kafka_message_destroy(m);
    }
    cr_expect(seen, "no DLQ message with the original bytes \"%s\" and reason \"%s\"",
              want_value, want_reason);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

Test(intake, register_update_cancel_and_dead_letters)
{
    static const char garbage[] = "{\"type\":\"register\", \"tracking_number\": ";
    const char *msgs[] = {
        "{\"type\":\"register\",\"carrier\":\"dhl\",\"tracking_number\":\"3318810025\","
        "\"email\":\"ana@example.com\",\"locale\":\"de\",\"destination\":\"DE\","
        "\"order_ref\":\"ORD-1\"}",
        garbage,
        "{\"type\":\"register\",\"tracking_number\":\"3318810036\",\"email\":\"not-an-address\"}",
        "{\"type\":\"register\",\"tracking_number\":\"1Z999AA10123456784\",\"phone\":\"+33612345678\"}",
        "{\"type\":\"register\",\"carrier\":\"dhl\",\"tracking_number\":\"3318810025\"}",
        "{\"type\":\"update\",\"tracking_number\":\"3318810025\",\"locale\":\"fr\","
        "\"time_zone\":\"Europe/Paris\"}",
        "{\"type\":\"cancel\",\"tracking_number\":\"1Z999AA10123456784\"}",
        "{\"type\":\"teleport\",\"tracking_number\":\"3318810025\"}",
    };
    struct intake_totals t;
    char *s;

    produce(msgs, sizeof(msgs) / sizeof(msgs[0]));
    run_intake(&t);
    cr_expect_eq(t.registered, 2);
    cr_expect_eq(t.duplicates, 1, "registering twice is harmless");
    cr_expect_eq(t.updated, 1);
    cr_expect_eq(t.cancelled, 1);
    cr_expect_eq(t.dead_lettered, 3);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments"), 2);
    s = tdb_scalar(db.conn, "SELECT r.locale || ' ' || r.time_zone || ' ' || s.order_ref"
                            " FROM shipments s JOIN recipients r ON r.id = s.recipient_id"
                            " WHERE s.tracking_number = '3318810025'");
    cr_expect_str_eq(s, "fr Europe/Paris ORD-1");
    free(s);
    s = tdb_scalar(db.conn, "SELECT carrier || ' ' || status FROM shipments"
                            " WHERE tracking_number = '1Z999AA10123456784'");
    cr_expect_str_eq(s, "ups cancelled", "carrier detected, then cancelled");
    free(s);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox"
                                    " WHERE payload->'to'->>'status' = 'cancelled'"), 1);
    cr_expect_eq(read_dlq(garbage, "not JSON"), 3);

    /* offsets were committed: a second run finds nothing to do */
    run_intake(&t);
    cr_expect_eq(t.registered + t.duplicates + t.updated + t.cancelled + t.dead_lettered, 0);
}

/* intake_apply on a C string. */
static enum st_err apply(const char *json, const char **what, char *err, size_t errlen)
{
    return intake_apply(db.conn, json, strlen(json), what, err, errlen);
}

Test(intake, apply_reports_what_and_where)
{
    const char *what;
    char err[256];

    cr_expect_eq(apply("[1,2]", &what, err, sizeof(err)), ST_PERMANENT);
    cr_expect_str_eq(err, "not a JSON object");
    cr_expect_eq(apply("{\"type\":\"register\",\"tracking_number\":42}",
                              &what, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "tracking_number: expected a string") != NULL, "%s", err);
    cr_expect_eq(apply("{\"type\":\"update\",\"tracking_number\":\"3318810025\"}", &what, err,
                       sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "nothing to change") != NULL, "%s", err);
    cr_expect_eq(apply("{\"type\":\"cancel\",\"tracking_number\":\"3318810025\"}",
                       &what, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "no shipment with tracking_number 3318810025") != NULL, "%s", err);
}
