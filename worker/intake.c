/*
 * intake.c - apply shipment messages from Kafka; dead-letter what is invalid.
 *
 * Message shapes (JSON objects, at most 64 KiB):
 *   {"type":"register", "tracking_number":..., "carrier"?, "email"?, "phone"?,
 *    "locale"?, "time_zone"?, "origin"?, "destination"?, "order_ref"?}
 *   {"type":"update", "tracking_number":..., "carrier"?, and any of email,
 *    phone, locale, time_zone, order_ref (only the keys present change)}
 *   {"type":"cancel", "tracking_number":..., "carrier"?}
 * A transient database failure retries the same message (its offset is not
 * stored); anything else wrong with a message sends it to the DLQ with a
 * reason naming what and where.
 */
#include "intake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "kafka.h"
#include "log.h"
#include "migrate.h"
#include "register.h"


/* The string member key of o, NULL when absent or null; *bad set when present
 * with another type. */
static const char *member(json_t *o, const char *key, const char **bad)
{
    json_t *v = json_object_get(o, key);

    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = key;
        return NULL;
    }
    return json_string_value(v);
}

/* Find the shipment a message names; ST_PERMANENT when none or ambiguous. */
static enum st_err find_shipment(PGconn *conn, const char *carrier, const char *number,
                                 char id[24], char *err, size_t errlen)
{
    const char *p[2] = { number, carrier };
    enum st_err kind = ST_OK;
    PGresult *res = db_exec(conn, "find shipment",
                            "SELECT id FROM shipments WHERE tracking_number ="
                            " upper(replace(replace($1, ' ', ''), '-', ''))"
                            " AND ($2::text IS NULL OR carrier = $2) FOR UPDATE",
                            2, p, PGRES_TUPLES_OK, &kind, err, errlen);

    if (res == NULL)
        return kind;
    if (PQntuples(res) != 1) {
        kind = st_fail(err, errlen, ST_PERMANENT,
                       PQntuples(res) == 0 ? "no shipment with tracking_number %.48s"
                                           : "tracking_number %.48s is registered with several "
                                             "carriers: add \"carrier\"",
                       number);
        PQclear(res);
        return kind;
    }
    snprintf(id, 24, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return ST_OK;
}

static enum st_err apply_update(PGconn *conn, const struct intake_msg *m, char *err,
                                size_t errlen)
{
    const struct registration *r = &m->r;
    const char *p[7];
    char id[24], flags[INTAKE_FIELDS + 1];
    enum st_err rc;
    PGresult *res;

    for (int i = 0; i < INTAKE_FIELDS; i++)
        flags[i] = m->changes[i] ? 't' : 'f';
    flags[INTAKE_FIELDS] = '\0';
    if ((rc = db_begin(conn, err, errlen)) != ST_OK)
        return rc;
    if ((rc = find_shipment(conn, m->carrier[0] ? m->carrier : NULL, m->number, id, err,
                            errlen)) != ST_OK)
        goto fail;
    p[0] = id;
    p[1] = flags;
    p[2] = r->email[0] ? r->email : NULL;
    p[3] = r->phone[0] ? r->phone : NULL;
    p[4] = r->locale;
    p[5] = r->time_zone;
    p[6] = r->order_ref[0] ? r->order_ref : NULL;
    res = db_exec(conn, "update recipient",
                  "WITH s AS (UPDATE shipments SET order_ref = CASE WHEN substr($2, 5, 1) = 't'"
                  "             THEN $7 ELSE order_ref END, updated_at = now()"
                  "           WHERE id = $1::bigint RETURNING recipient_id),"
                  " r AS (UPDATE recipients SET"
                  "   email = CASE WHEN substr($2, 1, 1) = 't' THEN $3 ELSE email END,"
                  "   phone = CASE WHEN substr($2, 2, 1) = 't' THEN $4 ELSE phone END,"
                  "   locale = CASE WHEN substr($2, 3, 1) = 't' THEN $5 ELSE locale END,"
                  "   time_zone = CASE WHEN substr($2, 4, 1) = 't' THEN $6 ELSE time_zone END"
                  "   WHERE id = (SELECT recipient_id FROM s) RETURNING id, email, phone)"
                  " INSERT INTO preferences (recipient_id, channel, consent)"
                  " SELECT r.id, c.channel, true FROM r,"
                  "   LATERAL (VALUES ('email', r.email), ('sms', r.phone)) AS c(channel, addr)"
                  " WHERE c.addr IS NOT NULL ON CONFLICT DO NOTHING",
                  7, p, PGRES_COMMAND_OK, &rc, err, errlen);
    if (res == NULL)
        goto fail;
    PQclear(res);
    return db_commit(conn, err, errlen);
fail:
    db_rollback(conn);
    return rc;
}

static enum st_err apply_cancel(PGconn *conn, const struct intake_msg *m, const char **what,
                                char *err, size_t errlen)
{
    const char *p[1];
    char id[24];
    enum st_err rc;
    PGresult *res;

    if ((rc = db_begin(conn, err, errlen)) != ST_OK)
        return rc;
    if ((rc = find_shipment(conn, m->carrier[0] ? m->carrier : NULL, m->number, id, err,
                            errlen)) != ST_OK)
        goto fail;
    p[0] = id;
    /* the status change and its announcement, together */
    res = db_exec(conn, "cancel shipment",
                  "WITH old AS (SELECT id, status, substatus, carrier, tracking_number, order_ref"
                  "             FROM shipments WHERE id = $1::bigint"
                  "               AND status NOT IN (SELECT name FROM statuses WHERE terminal)),"
                  " upd AS (UPDATE shipments s SET status = 'cancelled', substatus = 'none',"
                  "           status_at = now(), next_poll_at = NULL, lease_owner = NULL,"
                  "           lease_until = NULL, updated_at = now()"
                  "         FROM old WHERE s.id = old.id RETURNING s.id)"
                  " INSERT INTO outbox (topic, msg_key, payload)"
                  " SELECT '" TOPIC_EVENTS "', old.id::text, jsonb_build_object("
                  "   'type', 'status_changed', 'shipment_id', old.id, 'carrier', old.carrier,"
                  "   'tracking_number', old.tracking_number, 'order_ref', old.order_ref,"
                  "   'from', jsonb_build_object('status', old.status, 'substatus', old.substatus),"
                  "   'to', jsonb_build_object('status', 'cancelled', 'substatus', 'none'),"
                  "   'event', NULL)"
                  " FROM old JOIN upd ON upd.id = old.id",
                  1, p, PGRES_COMMAND_OK, &rc, err, errlen);
    if (res == NULL)
        goto fail;
    *what = atol(PQcmdTuples(res)) == 1 ? "cancelled" : "already_final";
    PQclear(res);
    return db_commit(conn, err, errlen);
fail:
    db_rollback(conn);
    return rc;
}

/* Copy a message's string member into dst[cap]; false (err filled) when it
 * does not fit. */
static bool copy_member(char *dst, size_t cap, const char *key, const char *v, char *err,
                        size_t errlen)
{
    if (v == NULL)
        return true;
    if (strlen(v) >= cap) {
        st_fail(err, errlen, ST_PERMANENT, "%s: longer than %zu bytes", key, cap - 1);
        return false;
    }
    memcpy(dst, v, strlen(v) + 1);
    return true;
}

enum st_err intake_parse(const char *json, size_t len, struct intake_msg *m, char *err,
                         size_t errlen)
{
    static const char *const keys[INTAKE_FIELDS] = { "email", "phone", "locale", "time_zone",
                                                     "order_ref" };
    const char *type, *carrier, *number, *bad = NULL, *f[INTAKE_FIELDS], *origin, *dest;
    json_error_t je;
    json_t *o;
    enum st_err rc = ST_OK;

    memset(m, 0, sizeof(*m));
    if (len > INTAKE_MSG_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "message larger than %d bytes", INTAKE_MSG_MAX);
    o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL)
        return st_fail(err, errlen, ST_PERMANENT, "not JSON: %s (line %d, column %d)", je.text,
                       je.line, je.column);
    if (!json_is_object(o)) {
        json_decref(o);
        return st_fail(err, errlen, ST_PERMANENT, "not a JSON object");
    }
    type = member(o, "type", &bad);
    carrier = member(o, "carrier", &bad);
    number = member(o, "tracking_number", &bad);
    for (int i = 0; i < INTAKE_FIELDS; i++) {
        f[i] = member(o, keys[i], &bad);
        m->changes[i] = json_object_get(o, keys[i]) != NULL;
    }
    origin = member(o, "origin", &bad);
    dest = member(o, "destination", &bad);
    if (bad != NULL)
        rc = st_fail(err, errlen, ST_PERMANENT, "%s: expected a string", bad);
    else if (type == NULL)
        rc = st_fail(err, errlen, ST_PERMANENT, "type: missing (register, update or cancel)");
    else if (number == NULL)
        rc = st_fail(err, errlen, ST_PERMANENT, "tracking_number: missing");
    else if (!copy_member(m->number, sizeof(m->number), "tracking_number", number, err, errlen) ||
             !copy_member(m->carrier, sizeof(m->carrier), "carrier", carrier, err, errlen))
        rc = ST_PERMANENT;
    else if (strcmp(type, "register") == 0) {
        m->kind = INTAKE_REGISTER;
        rc = registration_prepare(&m->r, carrier, number, f[0], f[1], f[2], f[3], origin, dest,
                                  f[4], err, errlen);
    } else if (strcmp(type, "update") == 0) {
        bool any = false;

        m->kind = INTAKE_UPDATE;
        for (int i = 0; i < INTAKE_FIELDS; i++)
            any |= m->changes[i];
        if (!any)
            rc = st_fail(err, errlen, ST_PERMANENT,
                         "update: nothing to change (email, phone, locale, time_zone, order_ref)");
        else /* same validation and normalization as a registration */
            rc = registration_prepare(&m->r, carrier, number, f[0], f[1], f[2], f[3], NULL, NULL,
                                      f[4], err, errlen);
    } else if (strcmp(type, "cancel") == 0)
        m->kind = INTAKE_CANCEL;
    else
        rc = st_fail(err, errlen, ST_PERMANENT,
                     "type: \"%.32s\" is not register, update or cancel", type);
    json_decref(o);
    return rc;
}

enum st_err intake_apply(PGconn *conn, const char *json, size_t len, const char **what,
                         char *err, size_t errlen)
{
    struct intake_msg m;
    long long id;
    bool existed;
    enum st_err rc;

    *what = "";
    if ((rc = intake_parse(json, len, &m, err, errlen)) != ST_OK)
        return rc;
    switch (m.kind) {
    case INTAKE_REGISTER:
        if ((rc = registration_store(conn, &m.r, &id, &existed, err, errlen)) == ST_OK)
            *what = existed ? "already_registered" : "registered";
        return rc;
    case INTAKE_UPDATE:
        if ((rc = apply_update(conn, &m, err, errlen)) == ST_OK)
            *what = "updated";
        return rc;
    case INTAKE_CANCEL:
        return apply_cancel(conn, &m, what, err, errlen);
    }
    return st_fail(err, errlen, ST_PERMANENT, "unknown message kind");
}

/* ---- the Kafka side ---- */

/* Copy a message to the DLQ with its reason; true once the broker has it. */
static bool dead_letter(rd_kafka_t *dlq, const rd_kafka_message_t *m, const char *reason)
{
    char partition[16], offset[24];
    rd_kafka_resp_err_t e;

    snprintf(partition, sizeof(partition), "%d", m->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)m->offset);
    e = rd_kafka_producev(dlq, RD_KAFKA_V_TOPIC(TOPIC_DLQ),
                          RD_KAFKA_V_KEY(m->key, m->key_len),
                          RD_KAFKA_V_VALUE(m->payload, m->len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_HEADER("reason", reason, (ssize_t)strlen(reason)),
                          RD_KAFKA_V_HEADER("source_topic", rd_kafka_topic_name(m->rkt), -1),
                          RD_KAFKA_V_HEADER("source_partition", partition, -1),
                          RD_KAFKA_V_HEADER("source_offset", offset, -1), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    /* the offset moves on only when the dead letter is safe */
    return rd_kafka_flush(dlq, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(long long ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

int intake_run(const struct st_config *cfg, const struct intake_opts *opts,
               struct intake_totals *totals)
{
    static const char *const consumer_kv[] = {
        "group.id", "shiptrack-intake", "enable.auto.offset.store", "false",
        "auto.offset.reset", "earliest", NULL,
    };
    static const char *const producer_kv[] = { "enable.idempotence", "true", NULL };
    rd_kafka_t *rk, *dlq;
    PGconn *conn = NULL;
    long long last_msg = now_ms();
    char err[512];

    memset(totals, 0, sizeof(*totals));
    if ((rk = kafka_client_new(RD_KAFKA_CONSUMER, opts->brokers, consumer_kv, NULL,
                               "intake.start")) == NULL)
        return 1;
    if ((dlq = kafka_client_new(RD_KAFKA_PRODUCER, opts->brokers, producer_kv, NULL,
                                "intake.start")) == NULL) {
        rd_kafka_destroy(rk);
        return 1;
    }
    if (!kafka_subscribe(rk, TOPIC_SHIPMENTS, "intake.start")) {
        rd_kafka_destroy(dlq);
        rd_kafka_destroy(rk);
        return 1;
    }
    log_info("intake.start", 0, NULL, "consuming %s from %s", TOPIC_SHIPMENTS, opts->brokers);

    while (*opts->running) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        long long backoff = 250;

        if (m == NULL) {
            if (opts->idle_exit_ms > 0 && now_ms() - last_msg > opts->idle_exit_ms)
                break;
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("intake.kafka", 0, NULL, "%s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        last_msg = now_ms();
        /* the same message until it is applied or dead-lettered, or we stop */
        while (*opts->running) {
            const char *what;
            enum st_err rc;

            if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
                if (conn != NULL)
                    PQfinish(conn);
                conn = db_connect_retry(cfg->database_url, cfg->db_retry_max_ms, opts->running);
                if (conn == NULL)
                    break;
                if (migrate_check(conn, err, sizeof(err)) != ST_OK) {
                    log_error("db.schema", 0, NULL, "%s", err);
                    PQfinish(conn);
                    conn = NULL;
                    nap(5000);
                    continue;
                }
            }
            rc = intake_apply(conn, m->payload ? m->payload : "", m->len, &what, err,
                              sizeof(err));
            if (rc == ST_OK) {
                if (strcmp(what, "registered") == 0) totals->registered++;
                else if (strcmp(what, "updated") == 0) totals->updated++;
                else if (strcmp(what, "cancelled") == 0) totals->cancelled++;
                else totals->duplicates++;
                log_info("intake.applied", 0, NULL, "%s offset %lld: %s", TOPIC_SHIPMENTS,
                         (long long)m->offset, what);
                kafka_store_offset(rk, m);
                break;
            }
            if (rc == ST_PERMANENT || rc == ST_CONFIG) {
                log_warn("intake.invalid", 0, NULL, "%s offset %lld: %s -> %s",
                         TOPIC_SHIPMENTS, (long long)m->offset, err, TOPIC_DLQ);
                if (dead_letter(dlq, m, err)) {
                    totals->dead_lettered++;
                    kafka_store_offset(rk, m);
                    break;
                }
                log_error("intake.dlq", 0, NULL, "cannot write to %s; retrying", TOPIC_DLQ);
            } else
                log_warn("intake.retry", 0, NULL, "%s offset %lld: %s; retrying in %lld ms",
                         TOPIC_SHIPMENTS, (long long)m->offset, err, backoff);
            totals->retried++;
            nap(backoff);
            backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk); /* commits the stored offsets */
    rd_kafka_destroy(rk);
    rd_kafka_flush(dlq, 5000);
    rd_kafka_destroy(dlq);
    if (conn != NULL)
        PQfinish(conn);
    log_info("intake.stop", 0, NULL, "registered %ld, updated %ld, cancelled %ld, duplicates "
             "%ld, dead-lettered %ld", totals->registered, totals->updated, totals->cancelled,
             totals->duplicates, totals->dead_lettered);
    return 0;
}
