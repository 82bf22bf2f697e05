/*
 * relay.h - the relay role: outbox rows -> Kafka, marked sent only when the
 * broker acknowledged them.
 *
 * One relay is active at a time (a PostgreSQL advisory lock elects it; the
 * others wait as hot standbys), so rows go out in id order and a shipment's
 * events keep their order in its partition (key = shipment id). The producer
 * is idempotent. When brokers are down, rows simply stay unsent and the relay
 * retries with backoff; delivery is at least once, and every message carries
 * its event_id so consumers can drop duplicates.
 */
#ifndef ST_RELAY_H
#define ST_RELAY_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"

struct relay_opts {
    volatile sig_atomic_t *running; /* cleared on SIGTERM: flush, mark, return */
    bool until_idle;                /* return once nothing is unsent or in flight */
    const char *brokers;            /* bootstrap servers */
};

struct relay_totals {
    long produced;   /* messages handed to the producer */
    long delivered;  /* acknowledged by the broker and marked sent */
    long failed;     /* delivery reports with an error (rows kept unsent) */
};

/* Run the relay. 0 on a clean stop, 1 when it cannot start. */
int relay_run(const struct st_config *cfg, const struct relay_opts *opts,
              struct relay_totals *totals);

#endif
