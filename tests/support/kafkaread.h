/*
 * kafkaread.h - read a topic of a (mock) Kafka cluster from the beginning,
 * for suites that check what shiptrack published.
 */
#ifndef ST_KAFKAREAD_H
#define ST_KAFKAREAD_H

#include <jansson.h>

/* Every message of partitions 0..partitions-1 of topic, from the beginning,
 * until `expect` were read or timeout_ms passed without reaching it. Each is
 * parsed as JSON (asserted) and gets "_key" (string) and "_partition"
 * (integer) members. Returns a JSON array (caller json_decref()s). */
json_t *tk_read_topic(const char *bootstraps, const char *topic, int partitions, int expect,
                      int timeout_ms);

#endif
