/*
 * kafka.c - librdkafka configuration pass-through and the mock cluster.
 */
#include "kafka.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

extern char **environ;

#define PREFIX "SHIPTRACK_KAFKA_"

/* Variables of ours that are not librdkafka properties. */
static const char *const reserved[] = { "BROKERS", "GROUP", NULL };

/* Read a secret file (at most 64 KiB, trailing newline dropped) into buf. */
static bool read_value_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL)
        return false;
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    if (n == cap - 1)
        return false;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return true;
}

/* librdkafka's own log lines go through ours (one format, one stream). */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    st_log(level <= 3 ? LOG_ERROR : level <= 5 ? LOG_WARN : LOG_DEBUG, "kafka.client", 0, NULL,
           "%s: %s", fac, buf);
}

rd_kafka_conf_t *kafka_conf_new(const char *brokers, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char rderr[256];

    if (conf == NULL) {
        if (err != NULL)
            snprintf(err, errlen, "kafka: out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    if (brokers != NULL &&
        rd_kafka_conf_set(conf, "bootstrap.servers", brokers, rderr, sizeof(rderr)) !=
            RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "SHIPTRACK_KAFKA_BROKERS: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (char **e = environ; *e != NULL; e++) {
        const char *eq = strchr(*e, '='), *name = *e + strlen(PREFIX);
        char prop[128], value[65536 / 4];
        size_t n;
        bool from_file = false, skip = false;

        if (strncmp(*e, PREFIX, strlen(PREFIX)) != 0 || eq == NULL)
            continue;
        n = (size_t)(eq - name);
        for (int i = 0; reserved[i] != NULL; i++)
            if (n == strlen(reserved[i]) && strncmp(name, reserved[i], n) == 0)
                skip = true;
        if (skip || n == 0)
            continue;
        if (n > 5 && strncmp(name + n - 5, "_FILE", 5) == 0) {
            from_file = true;
            n -= 5;
        }
        if (n >= sizeof(prop)) {
            snprintf(err, errlen, "%.*s: name too long", (int)(eq - *e), *e);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
        for (size_t i = 0; i < n; i++)
            prop[i] = name[i] == '_' ? '.' : (char)tolower((unsigned char)name[i]);
        prop[n] = '\0';
        if (from_file) {
            if (!read_value_file(eq + 1, value, sizeof(value))) {
                snprintf(err, errlen, "%.*s: cannot read %s", (int)(eq - *e), *e, eq + 1);
                rd_kafka_conf_destroy(conf);
                return NULL;
            }
        } else
            snprintf(value, sizeof(value), "%s", eq + 1);
        if (rd_kafka_conf_set(conf, prop, value, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
            /* librdkafka's message names the property, never the value */
            snprintf(err, errlen, "%.*s (librdkafka property %s): %s", (int)(eq - *e), *e, prop,
                     rderr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

rd_kafka_t *kafka_client_new(rd_kafka_type_t type, const char *brokers, const char *const *kv,
                             void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                                               rd_kafka_topic_partition_list_t *, void *),
                             const char *event)
{
    char err[512], rderr[256];
    rd_kafka_conf_t *conf = kafka_conf_new(brokers, err, sizeof(err));
    rd_kafka_t *rk;

    if (conf == NULL) {
        log_error(event, 0, NULL, "%s", err);
        return NULL;
    }
    for (int i = 0; kv[i] != NULL; i += 2)
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
            log_error(event, 0, NULL, "kafka %s: %s", kv[i], rderr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    if (rebalance != NULL)
        rd_kafka_conf_set_rebalance_cb(conf, rebalance);
    rk = rd_kafka_new(type, conf, rderr, sizeof(rderr));
    if (rk == NULL) {
        log_error(event, 0, NULL, "kafka: %s", rderr);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new only owns it on success */
    }
    return rk;
}

bool kafka_subscribe(rd_kafka_t *rk, const char *topic, const char *event)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t e;

    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_error(event, 0, NULL, "cannot subscribe to %s: %s", topic, rd_kafka_err2str(e));
        return false;
    }
    return true;
}

bool kafka_store_offset(rd_kafka_t *rk, const rd_kafka_message_t *m)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t e;

    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        m->offset + 1;
    e = rd_kafka_offsets_store(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR;
}

enum st_err kafka_mock_start(struct kafka_mock *m, int brokers, int partitions, char *err,
                             size_t errlen)
{
    static const char *const topics[] = { TOPIC_SHIPMENTS, TOPIC_EVENTS, TOPIC_NOTIFICATIONS,
                                          TOPIC_ALERTS, TOPIC_DLQ };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char rderr[256];
    const char *bs;

    memset(m, 0, sizeof(*m));
    if (conf == NULL)
        return st_fail(err, errlen, ST_CONFIG, "kafka mock: out of memory");
    rd_kafka_conf_set(conf, "log_level", "3", rderr, sizeof(rderr));
    rd_kafka_conf_set_log_cb(conf, on_log);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (m->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return st_fail(err, errlen, ST_CONFIG, "kafka mock: %s", rderr);
    }
    m->cluster = rd_kafka_mock_cluster_new(m->rk, brokers);
    if (m->cluster == NULL) {
        rd_kafka_destroy(m->rk);
        m->rk = NULL;
        return st_fail(err, errlen, ST_CONFIG, "kafka mock: cannot create the cluster");
    }
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
        if (rd_kafka_mock_topic_create(m->cluster, topics[i], partitions,
                                       brokers < 3 ? brokers : 3) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            kafka_mock_stop(m);
            return st_fail(err, errlen, ST_CONFIG, "kafka mock: cannot create %s", topics[i]);
        }
    bs = rd_kafka_mock_cluster_bootstraps(m->cluster);
    snprintf(m->bootstraps, sizeof(m->bootstraps), "%s", bs ? bs : "");
    return ST_OK;
}

void kafka_mock_stop(struct kafka_mock *m)
{
    if (m->cluster != NULL)
        rd_kafka_mock_cluster_destroy(m->cluster);
    if (m->rk != NULL)
        rd_kafka_destroy(m->rk);
    memset(m, 0, sizeof(*m));
}

/* A whole number in [lo, hi] from s; false otherwise. */
static bool parse_num(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

enum st_err kafka_mock_command(struct kafka_mock *m, const char *line, char *err, size_t errlen)
{
    char buf[256], *save = NULL, *verb, *a1, *a2, *a3;
    long id, v, cnt;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (strlen(line) >= sizeof(buf))
        return st_fail(err, errlen, ST_PERMANENT, "command longer than %zu bytes",
                       sizeof(buf) - 1);
    memcpy(buf, line, strlen(line) + 1);
    verb = strtok_r(buf, " \t\r\n", &save);
    a1 = strtok_r(NULL, " \t\r\n", &save);
    a2 = strtok_r(NULL, " \t\r\n", &save);
    a3 = strtok_r(NULL, " \t\r\n", &save);
    if (verb == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "empty command");
    if (strcmp(verb, "down") == 0 || strcmp(verb, "up") == 0) {
        if (!parse_num(a1, 1, 9, &id) || a2 != NULL)
            return st_fail(err, errlen, ST_PERMANENT, "usage: %s BROKER_ID (1-9)", verb);
        e = verb[0] == 'd' ? rd_kafka_mock_broker_set_down(m->cluster, (int32_t)id)
                           : rd_kafka_mock_broker_set_up(m->cluster, (int32_t)id);
    } else if (strcmp(verb, "rtt") == 0) {
        if (!parse_num(a1, 1, 9, &id) || !parse_num(a2, 0, 60000, &v) || a3 != NULL)
            return st_fail(err, errlen, ST_PERMANENT, "usage: rtt BROKER_ID MILLISECONDS");
        e = rd_kafka_mock_broker_set_rtt(m->cluster, (int32_t)id, (int)v);
    } else if (strcmp(verb, "errors") == 0) {
        /* the next COUNT requests of API key KEY (0 Produce, 1 Fetch, 8 OffsetCommit,
         * ...) fail with Kafka error code CODE (e.g. 6 NOT_LEADER, 7 REQUEST_TIMED_OUT) */
        rd_kafka_resp_err_t codes[100];

        if (!parse_num(a1, 0, 100, &v) || !parse_num(a2, 1, 100, &cnt) ||
            !parse_num(a3, 1, 200, &id))
            return st_fail(err, errlen, ST_PERMANENT, "usage: errors API_KEY COUNT ERROR_CODE");
        for (long i = 0; i < cnt; i++)
            codes[i] = (rd_kafka_resp_err_t)id;
        rd_kafka_mock_push_request_errors_array(m->cluster, (int16_t)v, (size_t)cnt, codes);
    } else
        return st_fail(err, errlen, ST_PERMANENT,
                       "unknown command \"%.32s\" (down, up, rtt, errors)", verb);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return st_fail(err, errlen, ST_PERMANENT, "%s: %s", verb, rd_kafka_err2str(e));
    return ST_OK;
}
