/*
 * relay.c - publish outbox rows to Kafka.
 *
 * One pass: if this process holds the relay lock, read unsent rows after the
 * cursor (id order), hand them to the idempotent producer with the row id as
 * the message's opaque, serve delivery reports, and mark acknowledged rows
 * sent in one UPDATE. A failed delivery report (broker down past
 * message.timeout.ms, say) leaves its row unsent: the relay waits for what is
 * still in flight, rewinds the cursor to the oldest unsent row and tries
 * again after a backoff, so nothing is lost; a row may then be published
 * twice, which consumers absorb through event_id.
 */
#include "relay.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "kafka.h"
#include "log.h"
#include "migrate.h"

/* Advisory lock key of the active relay: "strelay\0" in ASCII. */
#define RELAY_LOCK_KEY "8319400191595739392"
#define RELAY_BATCH 500
#define RELAY_INFLIGHT_MAX 5000

struct relay {
    const struct st_config *cfg;
    const struct relay_opts *opts;
    struct relay_totals *totals;
    PGconn *conn;
    rd_kafka_t *rk;
    bool leader;
    long long cursor;          /* highest id handed to the producer */
    long long *done;           /* acknowledged ids not yet marked */
    size_t n_done, cap_done;
    size_t inflight;
    bool failed;               /* a delivery failed since the last rewind */
    char last_error[256];
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Delivery report: runs inside rd_kafka_poll on this thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct relay *r = opaque;
    long long id = (long long)(intptr_t)m->_private;

    (void)rk;
    r->inflight--;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        r->failed = true;
        r->totals->failed++;
        snprintf(r->last_error, sizeof(r->last_error), "%s", rd_kafka_err2str(m->err));
        return;
    }
    if (r->n_done == r->cap_done) {
        size_t cap = r->cap_done ? r->cap_done * 2 : 1024;
        long long *d = realloc(r->done, cap * sizeof(*d));

        if (d == NULL) { /* cannot remember it: it will be sent again, harmlessly */
            r->failed = true;
            return;
        }
        r->done = d;
        r->cap_done = cap;
    }
    r->done[r->n_done++] = id;
}

/* Mark acknowledged rows sent. */
static void mark_done(struct relay *r)
{
    char *list, err[512];
    size_t cap, o = 0;
    const char *p[1];
    enum st_err kind;
    PGresult *res;

    if (r->n_done == 0 || r->conn == NULL)
        return;
    cap = r->n_done * 21 + 3;
    if ((list = malloc(cap)) == NULL)
        return;
    list[o++] = '{';
    for (size_t i = 0; i < r->n_done; i++)
        o += (size_t)snprintf(list + o, cap - o, "%s%lld", i ? "," : "", r->done[i]);
    snprintf(list + o, cap - o, "}");
    p[0] = list;
    res = db_exec(r->conn, "mark outbox rows sent",
                  "UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL"
                  " WHERE id = ANY($1::bigint[]) AND sent_at IS NULL",
                  1, p, PGRES_COMMAND_OK, &kind, err, sizeof(err));
    free(list);
    if (res == NULL) {
        log_error("relay.mark", 0, NULL, "%s (the rows will be published again)", err);
        return;
    }
    r->totals->delivered += atol(PQcmdTuples(res));
    PQclear(res);
    r->n_done = 0;
}

static bool ensure_db(struct relay *r)
{
    char err[512];

    if (r->conn != NULL && PQstatus(r->conn) == CONNECTION_OK)
        return true;
    if (r->conn != NULL) {
        log_warn("db.lost", 0, NULL, "relay: database connection lost; reconnecting");
        PQfinish(r->conn);
        r->conn = NULL;
        r->leader = false;
    }
    r->conn = db_connect_retry(r->cfg->database_url, r->cfg->db_retry_max_ms, r->opts->running);
    if (r->conn == NULL)
        return false;
    if (migrate_check(r->conn, err, sizeof(err)) != ST_OK) {
        log_error("db.schema", 0, NULL, "%s", err);
        PQfinish(r->conn);
        r->conn = NULL;
        return false;
    }
    return true;
}

/* Become the active relay if nobody else is. */
static void try_lead(struct relay *r)
{
    PGresult *res;

    if (r->leader)
        return;
    res = PQexec(r->conn, "SELECT pg_try_advisory_lock(" RELAY_LOCK_KEY ")");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        r->leader = true;
        r->cursor = 0;
        log_info("relay.lead", 0, NULL, "this process is the active relay");
    }
    PQclear(res);
}

/* Hand the next unsent rows to the producer; returns how many. */
static int produce_batch(struct relay *r)
{
    char cursor[24], limit[24], err[512];
    const char *p[2];
    enum st_err kind;
    PGresult *res;
    int n, sent = 0;

    snprintf(cursor, sizeof(cursor), "%lld", r->cursor);
    snprintf(limit, sizeof(limit), "%d", RELAY_BATCH);
    p[0] = cursor;
    p[1] = limit;
    res = db_exec(r->conn, "read outbox",
                  "SELECT id, topic, msg_key, event_id::text,"
                  " jsonb_set(payload, '{event_id}', to_jsonb(event_id::text))::text"
                  " FROM outbox WHERE sent_at IS NULL AND id > $1::bigint ORDER BY id LIMIT $2::int",
                  2, p, PGRES_TUPLES_OK, &kind, err, sizeof(err));
    if (res == NULL) {
        log_error("relay.read", 0, NULL, "%s", err);
        return 0;
    }
    n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        long long id = atoll(PQgetvalue(res, i, 0));
        const char *topic = PQgetvalue(res, i, 1), *key = PQgetvalue(res, i, 2);
        const char *event_id = PQgetvalue(res, i, 3), *value = PQgetvalue(res, i, 4);
        rd_kafka_resp_err_t e;

        e = rd_kafka_producev(r->rk, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADER("event_id", event_id, (ssize_t)strlen(event_id)),
                              RD_KAFKA_V_OPAQUE((void *)(intptr_t)id), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break; /* the producer is full: later rows wait for the next pass */
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_error("relay.produce", atoll(key), NULL, "outbox row %lld: %s", id,
                      rd_kafka_err2str(e));
            break;
        }
        r->cursor = id;
        r->inflight++;
        r->totals->produced++;
        sent++;
    }
    PQclear(res);
    return sent;
}

/* True when rows wait to be published. */
static bool backlog(struct relay *r)
{
    PGresult *res = PQexec(r->conn, "SELECT EXISTS (SELECT 1 FROM outbox WHERE sent_at IS NULL)");
    bool any = PQresultStatus(res) == PGRES_TUPLES_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;

    PQclear(res);
    return any;
}

int relay_run(const struct st_config *cfg, const struct relay_opts *opts,
              struct relay_totals *totals)
{
    struct relay r;
    rd_kafka_conf_t *conf;
    char err[512], rderr[256];
    long long backoff = 1000, retry_at = 0;

    memset(&r, 0, sizeof(r));
    memset(totals, 0, sizeof(*totals));
    r.cfg = cfg;
    r.opts = opts;
    r.totals = totals;
    if ((conf = kafka_conf_new(opts->brokers, err, sizeof(err))) == NULL) {
        log_error("relay.start", 0, NULL, "%s", err);
        return 1;
    }
    if (rd_kafka_conf_set(conf, "enable.idempotence", "true", rderr, sizeof(rderr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "linger.ms", "5", rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        log_error("relay.start", 0, NULL, "kafka: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &r);
    r.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (r.rk == NULL) {
        log_error("relay.start", 0, NULL, "kafka: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    log_info("relay.start", 0, NULL, "relaying the outbox to %s", opts->brokers);

    while (*opts->running || r.inflight > 0) {
        rd_kafka_poll(r.rk, r.inflight > 0 ? 50 : 0);
        if (!ensure_db(&r))
            break;
        mark_done(&r);
        if (r.failed && r.inflight == 0) {
            /* everything in flight has reported: start again at the oldest unsent row */
            log_warn("relay.broker", 0, NULL, "delivery failed (%s): rows stay unsent, retrying "
                     "in %lld ms", r.last_error, backoff);
            r.failed = false;
            r.cursor = 0;
            retry_at = now_ms() + backoff;
            backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
        }
        if (!*opts->running)
            continue;
        try_lead(&r);
        if (r.leader && !r.failed && now_ms() >= retry_at && r.inflight < RELAY_INFLIGHT_MAX) {
            int n = produce_batch(&r);

            if (n > 0) {
                backoff = 1000;
                continue;
            }
            if (opts->until_idle && r.inflight == 0 && r.n_done == 0 && !backlog(&r))
                break;
        }
        if (r.inflight == 0) {
            struct timespec ts = { 0, 100 * 1000000L };

            nanosleep(&ts, NULL);
        }
    }
    rd_kafka_flush(r.rk, 10000);
    rd_kafka_poll(r.rk, 0);
    mark_done(&r);
    rd_kafka_destroy(r.rk);
    if (r.conn != NULL)
        PQfinish(r.conn); /* also releases the advisory lock */
    free(r.done);
    log_info("relay.stop", 0, NULL, "produced %ld, delivered %ld, failed %ld", totals->produced,
             totals->delivered, totals->failed);
    return 0;
}
