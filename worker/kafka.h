/*
 * kafka.h - what every Kafka-speaking role shares: topic names, client
 * configuration, and the embedded mock cluster.
 *
 * Configuration: SHIPTRACK_KAFKA_BROKERS names the cluster; every other
 * environment variable SHIPTRACK_KAFKA_<NAME> is passed to librdkafka as the
 * property <name> (lower case, '_' -> '.'), e.g. SHIPTRACK_KAFKA_SECURITY_PROTOCOL
 * -> security.protocol, and SHIPTRACK_KAFKA_<NAME>_FILE reads the value from
 * a file (secrets such as sasl.password). Values are never logged.
 *
 * Without brokers, `shiptrack run` starts librdkafka's mock cluster in its
 * own process (real Kafka protocol on loopback, not durable) and says so once.
 */
#ifndef ST_KAFKA_H
#define ST_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define TOPIC_SHIPMENTS     "shiptrack.shipments.v1"
#define TOPIC_EVENTS        "shiptrack.events.v1"
#define TOPIC_NOTIFICATIONS "shiptrack.notifications.v1"
#define TOPIC_ALERTS        "shiptrack.alerts.v1"
#define TOPIC_DLQ           "shiptrack.dlq.v1"

/* A new client configuration for `brokers` with every SHIPTRACK_KAFKA_*
 * pass-through property applied. NULL with err naming the variable when
 * librdkafka rejects one. */
rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *err, size_t errlen);

/* A client of `type` for `brokers` with the pass-through properties, then the
 * "name", "value" pairs of kv (NULL-terminated), and an optional rebalance
 * callback. NULL on error, logged under `event` (e.g. "intake.start"). */
rd_kafka_t *kafka_client_new(rd_kafka_type_t type, const char *brokers, const char *const *kv,
                             void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                                               rd_kafka_topic_partition_list_t *, void *),
                             const char *event);

/* Subscribe a consumer to one topic (and route its events to the consumer
 * queue); false with a log line under `event` on failure. */
bool kafka_subscribe(rd_kafka_t *rk, const char *topic, const char *event);

/* Store the offset after m: "processed", for the next commit. Called only
 * once what m asked for is durable (at-least-once delivery). */
bool kafka_store_offset(rd_kafka_t *rk, const rd_kafka_message_t *m);

/* An in-process mock cluster. */
struct kafka_mock {
    rd_kafka_t *rk;                 /* the handle that owns the cluster */
    rd_kafka_mock_cluster_t *cluster;
    char bootstraps[256];           /* "127.0.0.1:PORT,..." */
};

/* Start a mock cluster of n brokers with our topics created (partitions
 * each). ST_OK, or ST_CONFIG with err. */
enum st_err kafka_mock_start(struct kafka_mock *m, int brokers, int partitions, char *err,
                             size_t errlen);
void kafka_mock_stop(struct kafka_mock *m);

/* Apply one fault-injection command to a running mock cluster:
 *   down ID | up ID            take broker ID off the network / back
 *   rtt ID MS                  add MS of round-trip latency to broker ID
 *   errors API_KEY COUNT CODE  fail the next COUNT requests of that API key
 * ST_OK, or ST_PERMANENT with err saying what is wrong with the line. */
enum st_err kafka_mock_command(struct kafka_mock *m, const char *line, char *err, size_t errlen);

#endif
