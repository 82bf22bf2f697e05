/*
 * test_relay.c - the outbox relay against librdkafka's mock cluster (real
 * Kafka protocol on loopback) and a real PostgreSQL: every row is published
 * with its event id, key = shipment id, per-shipment order kept, rows marked
 * sent only when acknowledged; with the broker down nothing is marked, and
 * once it is back everything drains, nothing lost.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "kafkaread.h"
#include "relay.h"
#include "testdb.h"
#include "testutil.h"

static struct testdb db;
static struct kafka_mock mock;

static void setup(void)
{
    char err[256];

    tdb_create(&db, true);
    cr_assert_eq(kafka_mock_start(&mock, 1, 4, err, sizeof(err)), ST_OK, "%s", err);
}

static void teardown(void)
{
    kafka_mock_stop(&mock);
    tdb_drop(&db);
}

TestSuite(relay, .init = setup, .fini = teardown, .timeout = 90);

/* n rows for `keys` shipments, round robin; payload carries a per-key sequence. */
static void fill_outbox(int n, int keys)
{
    char sql[512];

    snprintf(sql, sizeof(sql),
             "INSERT INTO outbox (topic, msg_key, payload)"
             " SELECT '" TOPIC_EVENTS "', (i %% %d)::text,"
             "        jsonb_build_object('type', 'status_changed', 'seq', i / %d)"
             " FROM generate_series(0, %d) AS i ORDER BY i",
             keys, keys, n - 1);
    tdb_exec(db.conn, sql);
}

static void load_config(struct st_config *cfg)
{
    char err[256];

    setenv("SHIPTRACK_DATABASE_URL", db.url, 1);
    cr_assert_eq(config_load(cfg, err, sizeof(err)), ST_OK, "%s", err);
}

/* Every row once, its event id inside, per-key sequence in order. */
static void check_messages(json_t *msgs, int rows, int keys)
{
    long long last_seq[64];
    size_t i;
    json_t *m;
    char sql[128];

    cr_assert_leq(keys, 64);
    for (int k = 0; k < keys; k++)
        last_seq[k] = -1;
    json_array_foreach(msgs, i, m) {
        int key = atoi(json_string_value(json_object_get(m, "_key")));
        long long seq = json_integer_value(json_object_get(m, "seq"));
        const char *eid = json_string_value(json_object_get(m, "event_id"));

        cr_assert_not_null(eid, "message without event_id");
        if (seq <= last_seq[key])
            continue; /* a re-publication after an outage: consumers drop it by event_id */
        cr_expect_eq(seq, last_seq[key] + 1, "key %d: seq %lld after %lld (order broken)", key,
                     seq, last_seq[key]);
        last_seq[key] = seq;
    }
    for (int k = 0; k < keys; k++)
        cr_expect_eq(last_seq[k], rows / keys - 1, "key %d ends at %lld", k, last_seq[k]);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL");
    cr_expect_eq(tdb_count(db.conn, sql), rows);
}

Test(relay, publishes_every_row_in_order_with_its_event_id)
{
    struct st_config cfg;
    volatile sig_atomic_t running = 1;
    struct relay_opts o = { &running, true, mock.bootstraps };
    struct relay_totals t;
    json_t *msgs;

    fill_outbox(200, 8);
    load_config(&cfg);
    cr_assert_eq(relay_run(&cfg, &o, &t), 0);
    cr_expect_eq(t.delivered, 200);
    cr_expect_eq(t.failed, 0);
    msgs = tk_read_topic(mock.bootstraps, TOPIC_EVENTS, 4, 200, 20000);
    cr_assert_eq(json_array_size(msgs), 200);
    check_messages(msgs, 200, 8);
    /* a second run has nothing to do */
    cr_assert_eq(relay_run(&cfg, &o, &t), 0);
    cr_expect_eq(t.produced, 0);
    json_decref(msgs);
    config_free(&cfg);
}

struct relay_thread {
    struct st_config cfg;
    volatile sig_atomic_t running;
    struct relay_totals totals;
    int rc;
};

static void *run_relay(void *arg)
{
    struct relay_thread *rt = arg;
    struct relay_opts o = { &rt->running, false, mock.bootstraps };

    rt->rc = relay_run(&rt->cfg, &o, &rt->totals);
    return NULL;
}

Test(relay, broker_down_holds_rows_and_drains_when_back)
{
    struct relay_thread rt;
    pthread_t th;
    json_t *msgs;
    long long sent = -1;

    fill_outbox(60, 6);
    setenv("SHIPTRACK_KAFKA_MESSAGE_TIMEOUT_MS", "1500", 1);
    memset(&rt, 0, sizeof(rt));
    load_config(&rt.cfg);
    rt.running = 1;
    cr_assert_eq(rd_kafka_mock_broker_set_down(mock.cluster, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(pthread_create(&th, NULL, run_relay, &rt), 0);
    sleep(3); /* past message.timeout.ms: deliveries fail */
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"), 0,
                 "nothing may be marked sent while the broker is down");
    cr_assert_eq(rd_kafka_mock_broker_set_up(mock.cluster, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int i = 0; i < 300 && sent != 60; i++) {
        usleep(100000);
        sent = tdb_count(db.conn, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL");
    }
    rt.running = 0;
    pthread_join(th, NULL);
    cr_expect_eq(rt.rc, 0);
    cr_expect_eq(sent, 60, "rows drained after the broker came back");
    cr_expect_gt(rt.totals.failed, 0, "the outage was seen");
    msgs = tk_read_topic(mock.bootstraps, TOPIC_EVENTS, 4, 60, 20000);
    check_messages(msgs, 60, 6);
    json_decref(msgs);
    config_free(&rt.cfg);
    unsetenv("SHIPTRACK_KAFKA_MESSAGE_TIMEOUT_MS");
}

Test(relay, bad_kafka_property_is_a_clear_error)
{
    rd_kafka_conf_t *conf;
    char err[256] = "";

    setenv("SHIPTRACK_KAFKA_NO_SUCH_PROPERTY", "1", 1);
    conf = kafka_conf_new("127.0.0.1:1", err, sizeof(err));
    cr_expect_null(conf);
    cr_expect(strstr(err, "SHIPTRACK_KAFKA_NO_SUCH_PROPERTY") != NULL, "%s", err);
    cr_expect(strstr(err, "no.such.property") != NULL, "%s", err);
    unsetenv("SHIPTRACK_KAFKA_NO_SUCH_PROPERTY");
    setenv("SHIPTRACK_KAFKA_CLIENT_ID", "shiptrack-test", 1);
    conf = kafka_conf_new("127.0.0.1:1", err, sizeof(err));
    cr_expect_not_null(conf, "%s", err);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
}

Test(relay, kafka_mock_command_prints_bootstraps)
{
    char bin[512], line[600];
    FILE *f;
    int status;

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    snprintf(line, sizeof(line), "timeout --preserve-status -s TERM 2 %s kafka-mock", bin);
    f = popen(line, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_expect(strncmp(line, "shiptrack kafka-mock: bootstrap servers 127.0.0.1:", 50) == 0, "%s",
              line);
    status = pclose(f);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit %d", status);
}
