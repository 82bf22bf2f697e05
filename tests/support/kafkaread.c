/*
 * kafkaread.c - a test consumer that reads a whole topic as JSON.
 */
#include "kafkaread.h"

#include <criterion/criterion.h>

#include "kafka.h"

json_t *tk_read_topic(const char *bootstraps, const char *topic, int partitions, int expect,
                      int timeout_ms)
{
    rd_kafka_conf_t *conf = kafka_conf_new(bootstraps, NULL, 0);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    json_t *out = json_array();
    char err[256];
    rd_kafka_t *rk;

    cr_assert_not_null(conf);
    cr_assert_eq(rd_kafka_conf_set(conf, "group.id", "test-reader", err, sizeof(err)),
                 RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    cr_assert_not_null(rk, "%s", err);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert_eq(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int waited = 0; (int)json_array_size(out) < expect && waited < timeout_ms;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

        if (m == NULL) {
            waited += 100;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            json_t *v = json_loadb(m->payload, m->len, 0, NULL);

            cr_assert_not_null(v, "%s: message is not JSON", topic);
            json_object_set_new(v, "_key", json_stringn(m->key, m->key_len));
            json_object_set_new(v, "_partition", json_integer(m->partition));
            json_array_append_new(out, v);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return out;
}
