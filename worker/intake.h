/*
 * intake.h - the intake role: shipments arrive over Kafka.
 *
 * Consumes shiptrack.shipments.v1 (JSON; "type": register | update |
 * cancel, documented in the README). A message that cannot be understood or
 * fails validation goes to shiptrack.dlq.v1 with the reason and its original
 * bytes; it never stops the consumer and never vanishes. A message's offset
 * is stored only after its database transaction committed (or its DLQ copy
 * was acknowledged), so delivery is at least once; registering twice is
 * harmless.
 */
#ifndef ST_INTAKE_H
#define ST_INTAKE_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>

#include "config.h"
#include "err.h"
#include "register.h"

struct intake_opts {
    volatile sig_atomic_t *running; /* cleared on SIGTERM */
    const char *brokers;
    long long idle_exit_ms;         /* > 0: return after this long without a message */
};

struct intake_totals {
    long registered, updated, cancelled, duplicates, dead_lettered, retried;
};

int intake_run(const struct st_config *cfg, const struct intake_opts *opts,
               struct intake_totals *totals);

#define INTAKE_MSG_MAX 65536 /* bytes of one message */
#define INTAKE_FIELDS 5        /* recipient fields an update may change */

/* One intake message, parsed and validated (no database involved). */
struct intake_msg {
    enum intake_kind { INTAKE_REGISTER, INTAKE_UPDATE, INTAKE_CANCEL } kind;
    struct registration r;       /* register: all fields; update: the new values */
    bool changes[INTAKE_FIELDS]; /* update: email, phone, locale, time_zone, order_ref present */
    char number[64];             /* tracking_number as sent (lookups normalize it) */
    char carrier[33];            /* carrier as sent, "" when absent */
};

/* Parse and validate one message into m. ST_OK, or ST_PERMANENT with err
 * naming the member and what was expected. */
enum st_err intake_parse(const char *json, size_t len, struct intake_msg *m, char *err,
                         size_t errlen);

/* Apply one intake message (no Kafka involved; tests and the HTTP API use it
 * too). ST_OK with *what set to "registered", "already_registered",
 * "updated", "cancelled" or "already_final"; ST_PERMANENT with err for a
 * message that will never be valid; ST_RETRY for database trouble. */
enum st_err intake_apply(PGconn *conn, const char *json, size_t len, const char **what,
                         char *err, size_t errlen);

#endif
