/*
 * notifier.c - decide, render, send and record notifications (notifier.h).
 *
 * A notification's life (the notifications.status column):
 *   queued -> sent | deferred | suppressed | failed_temporary | failed_permanent
 *   deferred, failed_temporary -> queued again by the periodic pass when due
 * Each change is one UPDATE, so every decision is saved as it is taken.
 * Times that decisions compare (quiet hours, deferred_until, the 24 h cap,
 * retry times, sent_at) use the notifier clock, passed to SQL as epoch
 * seconds, so tests can move it.
 *
 * Delivery is at least once: a crash between an accepted send and its
 * UPDATE may send that one message again when the pass picks up the stale
 * queued row. A crash before the send loses nothing for the same reason.
 */
#include "notifier.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "channel.h"
#include "db.h"
#include "kafka.h"
#include "log.h"
#include "migrate.h"
#include "templates.h"
#include "unsubscribe.h"

#define NOTIFIER_MSG_MAX 65536      /* events larger than this are not ours */
#define NOTIFIER_PASS_BATCH 50      /* rows claimed per pass query (the LIMIT below) */
#define NOTIFIER_RETRY_MAX_S (6 * 3600)
#define NOTIFIER_RECORD_TRIES 20 /* attempts to record a send the channel accepted */

time_t (*notifier_clock)(void) = NULL;

/* Quiet hours of a channel: minutes after local midnight, or off. */
struct quiet {
    bool on;
    char start[6], end[6];          /* "HH:MM" */
};

struct notifier {
    const struct st_config *cfg;
    PGconn *conn;                   /* borrowed */
    rd_kafka_t *producer;           /* borrowed, may be NULL */
    struct channel *email, *sms;    /* owned */
    struct quiet quiet_email, quiet_sms;
    struct notifier_totals totals;
};

/* Everything one decision needs about a notification row. */
struct ctx {
    long long id, shipment_id, recipient_id;
    char milestone[32], channel[8], event_id[40];
    char status[24], substatus[40];  /* shipment's current status */
    char carrier[33], tracking[48], order_ref[132];
    char addr[256], locale[40], tz[72];
    bool consent, opted_out, erased;
    char quiet_start[16], quiet_end[16]; /* recipient's own quiet hours, "" none */
    int attempts;
};

static time_t now_s(const struct notifier *n)
{
    time_t t = notifier_clock != NULL ? notifier_clock() : time(NULL);

    return t + (time_t)(n->cfg->clock_offset_ms / 1000);
}

/* ---- milestones ---- */

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

const char *notifier_milestone(const char *from_status, const char *from_sub,
                               const char *to_status, const char *to_sub)
{
    static const char *const same[] = { "out_for_delivery", "attempt_failed",
                                        "available_for_pickup", "delivered", "exception",
                                        "returning" };

    (void)from_sub;
    if (to_status == NULL || to_sub == NULL || from_status == NULL)
        return NULL;
    if (strcmp(to_sub, "customs_processing") == 0)
        return "customs_processing";
    if (strcmp(to_status, "held") == 0 && starts_with(to_sub, "customs_") &&
        strcmp(to_sub, "customs_released") != 0)
        return "customs_held";
    if (strcmp(to_sub, "customs_released") == 0)
        return "customs_released";
    if (strcmp(to_status, "in_transit") == 0 &&
        (strcmp(from_status, "pending") == 0 || strcmp(from_status, "info_received") == 0 ||
         strcmp(from_status, "not_found") == 0))
        return "shipped";
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        if (strcmp(to_status, same[i]) == 0)
            return strcmp(from_status, to_status) == 0 ? NULL : same[i];
    return NULL; /* returned, cancelled, expired, other holds: nothing to say */
}

/* Progress rank of a milestone, and of a shipment's current status; a
 * milestone is superseded when the shipment's rank is higher. In transit
 * after customs is rank 1 again, so it never supersedes a customs message;
 * the final states supersede everything before them. */
static int milestone_rank(const char *m)
{
    if (strcmp(m, "shipped") == 0) return 1;
    if (starts_with(m, "customs_")) return 2;
    if (strcmp(m, "delivered") == 0 || strcmp(m, "returning") == 0) return 4;
    return 3; /* out_for_delivery, attempt_failed, available_for_pickup, exception */
}

static int status_rank(const char *st)
{
    if (strcmp(st, "in_transit") == 0) return 1;
    if (strcmp(st, "held") == 0) return 2;
    if (strcmp(st, "out_for_delivery") == 0 || strcmp(st, "attempt_failed") == 0 ||
        strcmp(st, "available_for_pickup") == 0 || strcmp(st, "exception") == 0)
        return 3;
    if (strcmp(st, "delivered") == 0 || strcmp(st, "returning") == 0 ||
        strcmp(st, "returned") == 0 || strcmp(st, "cancelled") == 0 ||
        strcmp(st, "expired") == 0)
        return 4;
    return 0; /* pending, info_received, not_found */
}

static bool superseded(const struct ctx *c)
{
    /* delivered after returning (or the reverse) is not progress either way */
    if (milestone_rank(c->milestone) == 4)
        return strcmp(c->status, "cancelled") == 0 || strcmp(c->status, "expired") == 0;
    return status_rank(c->status) > milestone_rank(c->milestone);
}

static bool milestone_enabled(const struct notifier *n, const char *m)
{
    const char *p = n->cfg->notify_milestones != NULL ? n->cfg->notify_milestones : "";
    size_t len = strlen(m);

    while (*p != '\0') {
        size_t l = strcspn(p, ",");

        if (l == len && strncmp(p, m, len) == 0)
            return true;
        p += l;
        if (*p == ',')
            p++;
    }
    return false;
}

/* ---- quiet hours ---- */

static bool parse_hhmm(const char *s, size_t len, char out[6])
{
    if (len != 5 || s[2] != ':' || s[0] < '0' || s[0] > '2' || s[1] < '0' || s[1] > '9' ||
        s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9' ||
        (s[0] - '0') * 10 + (s[1] - '0') > 23)
        return false;
    memcpy(out, s, 5);
    out[5] = '\0';
    return true;
}

/* "HH:MM-HH:MM" or "off"; equal ends mean off. */
static bool parse_quiet(const char *s, struct quiet *q)
{
    const char *dash;

    memset(q, 0, sizeof(*q));
    if (s == NULL || strcmp(s, "off") == 0 || s[0] == '\0')
        return true;
    dash = strchr(s, '-');
    if (dash == NULL || !parse_hhmm(s, (size_t)(dash - s), q->start) ||
        !parse_hhmm(dash + 1, strlen(dash + 1), q->end))
        return false;
    q->on = strcmp(q->start, q->end) != 0;
    return true;
}

/* Is now inside the quiet window in zone tz? *until gets the window's end.
 * An unknown zone is read as UTC. */
static enum st_err in_quiet(struct notifier *n, const char *tz, const char *start,
                            const char *end, time_t now, bool *inside, time_t *until, char *err,
                            size_t errlen)
{
    char t[24];
    const char *p[4] = { t, tz, start, end };
    enum st_err kind = ST_OK;
    PGresult *res;

    snprintf(t, sizeof(t), "%lld", (long long)now);
    res = db_exec(n->conn, "quiet hours",
                  "WITH z AS (SELECT COALESCE((SELECT name FROM pg_timezone_names"
                  "                            WHERE name = $2 LIMIT 1), 'UTC') AS tz),"
                  " l AS (SELECT (to_timestamp($1::bigint) AT TIME ZONE z.tz) AS lt, z.tz,"
                  "              $3::time AS s, $4::time AS e FROM z)"
                  " SELECT CASE WHEN s < e THEN lt::time >= s AND lt::time < e"
                  "             ELSE lt::time >= s OR lt::time < e END,"
                  "        extract(epoch FROM ((CASE WHEN lt::time < e THEN lt::date"
                  "                             ELSE lt::date + 1 END) + e) AT TIME ZONE tz)::bigint"
                  " FROM l",
                  4, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        return kind;
    *inside = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    *until = (time_t)atoll(PQgetvalue(res, 0, 1));
    PQclear(res);
    return ST_OK;
}

/* ---- records ---- */

/* Publish one outcome (no personal data). Best effort: the row is the record. */
static void publish(struct notifier *n, const struct ctx *c, const char *status,
                    const char *reason)
{
    json_t *o;
    char *text, key[24];

    if (n->producer == NULL)
        return;
    o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:o, s:o}", "notification_id", (json_int_t)c->id,
                  "shipment_id", (json_int_t)c->shipment_id, "milestone", c->milestone,
                  "channel", c->channel, "status", status, "reason",
                  reason != NULL ? json_string(reason) : json_null(), "event_id",
                  c->event_id[0] ? json_string(c->event_id) : json_null());
    if (o == NULL)
        return;
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        return;
    snprintf(key, sizeof(key), "%lld", c->shipment_id);
    if (rd_kafka_producev(n->producer, RD_KAFKA_V_TOPIC(TOPIC_NOTIFICATIONS),
                          RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(text, strlen(text)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("notify.publish", c->shipment_id, NULL, "cannot queue outcome of notification "
                 "%lld for %s", c->id, TOPIC_NOTIFICATIONS);
    rd_kafka_poll(n->producer, 0);
    free(text);
}

/* Save a decision on row c->id, log it and publish it. until: deferred_until
 * (0: NULL); attempt: count one send attempt; sent: set sent_at/provider_ref. */
static enum st_err record(struct notifier *n, const struct ctx *c, const char *status,
                          const char *reason, time_t until, bool attempt, const char *provider_ref,
                          char *err, size_t errlen)
{
    char id[24], u[24], now[24], masked[512];
    const char *p[7];
    enum st_err kind = ST_OK;
    PGresult *res;

    /* a server's reply may quote the address: personal data stays in recipients */
    if (reason != NULL)
        reason = log_mask_pii(reason, masked, sizeof(masked));
    snprintf(id, sizeof(id), "%lld", c->id);
    snprintf(u, sizeof(u), "%lld", (long long)until);
    snprintf(now, sizeof(now), "%lld", (long long)now_s(n));
    p[0] = id;
    p[1] = status;
    p[2] = reason;
    p[3] = until > 0 ? u : NULL;
    p[4] = attempt ? "1" : "0";
    p[5] = provider_ref;
    p[6] = now;
    res = db_exec(n->conn, "record notification",
                  "UPDATE notifications SET status = $2, reason = $3,"
                  " deferred_until = to_timestamp($4::bigint), attempts = attempts + $5::int,"
                  " provider_ref = COALESCE($6, provider_ref),"
                  " sent_at = CASE WHEN $2 = 'sent' THEN to_timestamp($7::bigint) END,"
                  " updated_at = now() WHERE id = $1::bigint",
                  7, p, PGRES_COMMAND_OK, &kind, err, errlen);
    if (res == NULL)
        return kind;
    PQclear(res);
    if (strcmp(status, "sent") == 0) n->totals.sent++;
    else if (strcmp(status, "deferred") == 0) n->totals.deferred++;
    else if (strcmp(status, "suppressed") == 0) n->totals.suppressed++;
    else if (strcmp(status, "failed_temporary") == 0) n->totals.failed_temporary++;
    else if (strcmp(status, "failed_permanent") == 0) n->totals.failed_permanent++;
    log_info("notify.decision", c->shipment_id, c->carrier[0] ? c->carrier : NULL,
             "notification=%lld milestone=%s channel=%s status=%s reason=%s", c->id,
             c->milestone, c->channel, status, reason != NULL ? reason : "-");
    publish(n, c, status, reason);
    return ST_OK;
}

/* Load row id and everything around it into c. ST_PERMANENT when gone. */
static enum st_err load(struct notifier *n, long long id, struct ctx *c, char *err,
                        size_t errlen)
{
    char ids[24];
    const char *p[1] = { ids };
    enum st_err kind = ST_OK;
    PGresult *res;

    snprintf(ids, sizeof(ids), "%lld", id);
    res = db_exec(n->conn, "load notification",
                  "SELECT n.milestone, n.channel, COALESCE(n.event_id::text, ''), n.attempts,"
                  " s.id, s.status, s.substatus, s.carrier, s.tracking_number,"
                  " COALESCE(s.order_ref, s.tracking_number), COALESCE(r.id, 0),"
                  " COALESCE(CASE n.channel WHEN 'email' THEN r.email ELSE r.phone END, ''),"
                  " COALESCE(r.locale, 'en'), COALESCE(r.time_zone, 'UTC'),"
                  " COALESCE(p.consent, true), p.opted_out_at IS NOT NULL,"
                  " r.erased_at IS NOT NULL, COALESCE(p.quiet_start::text, ''),"
                  " COALESCE(p.quiet_end::text, '')"
                  " FROM notifications n JOIN shipments s ON s.id = n.shipment_id"
                  " LEFT JOIN recipients r ON r.id = s.recipient_id"
                  " LEFT JOIN preferences p ON p.recipient_id = r.id AND p.channel = n.channel"
                  " WHERE n.id = $1::bigint",
                  1, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        return kind;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return st_fail(err, errlen, ST_PERMANENT, "notification %lld is gone", id);
    }
    memset(c, 0, sizeof(*c));
    c->id = id;
    snprintf(c->milestone, sizeof(c->milestone), "%s", PQgetvalue(res, 0, 0));
    snprintf(c->channel, sizeof(c->channel), "%s", PQgetvalue(res, 0, 1));
    snprintf(c->event_id, sizeof(c->event_id), "%s", PQgetvalue(res, 0, 2));
    c->attempts = atoi(PQgetvalue(res, 0, 3));
    c->shipment_id = atoll(PQgetvalue(res, 0, 4));
    snprintf(c->status, sizeof(c->status), "%s", PQgetvalue(res, 0, 5));
    snprintf(c->substatus, sizeof(c->substatus), "%s", PQgetvalue(res, 0, 6));
    snprintf(c->carrier, sizeof(c->carrier), "%s", PQgetvalue(res, 0, 7));
    snprintf(c->tracking, sizeof(c->tracking), "%s", PQgetvalue(res, 0, 8));
    snprintf(c->order_ref, sizeof(c->order_ref), "%s", PQgetvalue(res, 0, 9));
    c->recipient_id = atoll(PQgetvalue(res, 0, 10));
    snprintf(c->addr, sizeof(c->addr), "%s", PQgetvalue(res, 0, 11));
    snprintf(c->locale, sizeof(c->locale), "%s", PQgetvalue(res, 0, 12));
    snprintf(c->tz, sizeof(c->tz), "%s", PQgetvalue(res, 0, 13));
    c->consent = strcmp(PQgetvalue(res, 0, 14), "t") == 0;
    c->opted_out = strcmp(PQgetvalue(res, 0, 15), "t") == 0;
    c->erased = strcmp(PQgetvalue(res, 0, 16), "t") == 0;
    /* "21:00:00" -> "21:00" */
    snprintf(c->quiet_start, sizeof(c->quiet_start), "%.5s", PQgetvalue(res, 0, 17));
    snprintf(c->quiet_end, sizeof(c->quiet_end), "%.5s", PQgetvalue(res, 0, 18));
    PQclear(res);
    return ST_OK;
}

/* The stored event announcing this notification (outbox payload), or NULL. */
static json_t *load_event(struct notifier *n, const struct ctx *c)
{
    const char *p[1] = { c->event_id };
    char err[256];
    PGresult *res;
    json_t *ev = NULL;

    if (c->event_id[0] == '\0')
        return NULL;
    res = db_exec(n->conn, "load event", "SELECT payload::text FROM outbox WHERE event_id = $1::uuid",
                  1, p, PGRES_TUPLES_OK, NULL, err, sizeof(err));
    if (res == NULL)
        return NULL;
    if (PQntuples(res) == 1)
        ev = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    return ev;
}

/* Sent in the last 24 hours to this recipient on this channel. */
static enum st_err sent_today(struct notifier *n, const struct ctx *c, long long *count,
                              char *err, size_t errlen)
{
    char rid[24], now[24];
    const char *p[3] = { rid, c->channel, now };
    enum st_err kind = ST_OK;
    PGresult *res;

    snprintf(rid, sizeof(rid), "%lld", c->recipient_id);
    snprintf(now, sizeof(now), "%lld", (long long)now_s(n));
    res = db_exec(n->conn, "frequency cap",
                  "SELECT count(*) FROM notifications n JOIN shipments s ON s.id = n.shipment_id"
                  " WHERE s.recipient_id = $1::bigint AND n.channel = $2 AND n.status = 'sent'"
                  "   AND n.sent_at > to_timestamp($3::bigint) - interval '24 hours'",
                  3, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        return kind;
    *count = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return ST_OK;
}

/* ---- message data ---- */

static const char *customs_reason(const char *sub)
{
    if (strcmp(sub, "customs_duties_due") == 0) return "duties_due";
    if (strcmp(sub, "customs_documents_required") == 0) return "documents_required";
    if (strcmp(sub, "customs_inspection") == 0) return "inspection";
    if (strcmp(sub, "customs_prohibited") == 0) return "prohibited";
    if (strcmp(sub, "customs_delay") == 0) return "delay";
    if (strcmp(sub, "customs_processing") == 0) return "processing";
    return "unknown";
}

static const char *exception_reason(const char *sub)
{
    static const char *const known[] = { "address_issue", "damaged", "lost", "refused" };

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(sub, known[i]) == 0)
            return known[i];
    return "other";
}

/* Message data for templates_render (new object) from the row, the
 * shipment and the event (may be NULL). NULL when a URL does not fit. */
static json_t *message_data(const struct notifier *n, const struct ctx *c, json_t *ev)
{
    const struct carrier_def *def = carrier_find(c->carrier);
    json_t *e = ev != NULL ? json_object_get(ev, "event") : NULL;
    json_t *to = ev != NULL ? json_object_get(ev, "to") : NULL;
    const char *sub = json_string_value(json_object_get(to, "substatus"));
    const char *at = json_string_value(json_object_get(e, "occurred_at"));
    const char *city = json_string_value(json_object_get(json_object_get(e, "location"), "city"));
    const char *base = n->cfg->public_url;
    char url[EMAIL_URL_MAX], unsub[EMAIL_URL_MAX];
    size_t bl = strlen(base);
    json_t *d;
    int len;

    if (sub == NULL)
        sub = c->substatus;
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    len = snprintf(url, sizeof(url), "%.*s/t/%s", (int)bl, base, c->tracking);
    if (len < 0 || (size_t)len >= sizeof(url) ||
        !unsubscribe_url(n->cfg, c->recipient_id, c->channel, unsub, sizeof(unsub)))
        return NULL;
    d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "shop_name", n->cfg->shop_name,
                  "order_ref", c->order_ref, "carrier_name",
                  def != NULL && def->display_name != NULL ? def->display_name : c->carrier,
                  "tracking_number", c->tracking, "tracking_url", url, "unsubscribe_url", unsub,
                  "time_zone", c->tz);
    if (d == NULL)
        return NULL;
    if (starts_with(c->milestone, "customs_") || strcmp(c->milestone, "delayed") == 0) {
        /* the estimate the store put in the event (eta.h) */
        const char *eta = json_string_value(json_object_get(ev, strcmp(c->milestone, "delayed")
                                                                == 0 ? "current" : "eta"));
        const char *prev = json_string_value(json_object_get(ev, "previous"));

        if (eta != NULL)
            json_object_set_new(d, "eta", json_string(eta));
        if (strcmp(c->milestone, "delayed") == 0 && prev != NULL)
            json_object_set_new(d, "eta_previous", json_string(prev));
    }
    if (strcmp(c->milestone, "customs_held") == 0) {
        /* the hold as the state machine knows it (customs.h), else the substatus */
        json_t *h = json_object_get(ev, "customs");
        const char *r = json_string_value(json_object_get(h, "reason"));
        const char *actor = json_string_value(json_object_get(h, "actor"));
        const char *instr = json_string_value(json_object_get(h, "instructions"));

        if (r == NULL) {
            r = customs_reason(sub);
            actor = strcmp(r, "duties_due") == 0 || strcmp(r, "documents_required") == 0
                        ? "recipient" : NULL;
        }
        json_object_set_new(d, "customs_reason", json_string(r));
        if (actor != NULL)
            json_object_set_new(d, "customs_action_by", json_string(actor));
        if (instr != NULL && instr[0] != '\0')
            json_object_set_new(d, "customs_instructions", json_string(instr));
    } else if (strcmp(c->milestone, "available_for_pickup") == 0)
        json_object_set_new(d, "pickup_name",
                            json_string(city != NULL && city[0] ? city
                                        : def != NULL && def->display_name ? def->display_name
                                                                           : c->carrier));
    else if (strcmp(c->milestone, "attempt_failed") == 0)
        json_object_set_new(d, "attempt_at", json_string(at != NULL ? at : "1970-01-01T00:00:00Z"));
    else if (strcmp(c->milestone, "delivered") == 0 && at != NULL)
        json_object_set_new(d, "delivered_at", json_string(at));
    else if (strcmp(c->milestone, "exception") == 0)
        json_object_set_new(d, "exception_reason", json_string(exception_reason(sub)));
    return d;
}

/* ---- the decision after the row exists ---- */

/* Backoff before retry number `attempts` (1, 2, ...): base * 2^(attempts-1). */
static time_t backoff_s(const struct notifier *n, int attempts)
{
    long long s = n->cfg->notify_retry_base_ms / 1000;

    if (s < 1)
        s = 1;
    for (int i = 1; i < attempts && s < NOTIFIER_RETRY_MAX_S; i++)
        s *= 2;
    return (time_t)(s > NOTIFIER_RETRY_MAX_S ? NOTIFIER_RETRY_MAX_S : s);
}

/* Record that the provider says this address opted out / is invalid. */
static void mark_opted_out(struct notifier *n, const struct ctx *c)
{
    char rid[24], now[24], err[256];
    const char *p[3] = { rid, c->channel, now };
    PGresult *res;

    snprintf(rid, sizeof(rid), "%lld", c->recipient_id);
    snprintf(now, sizeof(now), "%lld", (long long)now_s(n));
    res = db_exec(n->conn, "record opt-out",
                  "INSERT INTO preferences (recipient_id, channel, consent, opted_out_at)"
                  " VALUES ($1::bigint, $2, false, to_timestamp($3::bigint))"
                  " ON CONFLICT (recipient_id, channel) DO UPDATE SET consent = false,"
                  "   opted_out_at = COALESCE(preferences.opted_out_at, EXCLUDED.opted_out_at),"
                  "   updated_at = now()",
                  3, p, PGRES_COMMAND_OK, NULL, err, sizeof(err));
    if (res == NULL)
        log_error("notify.optout", c->shipment_id, NULL, "%s", err);
    else
        PQclear(res);
}

static void nap(long long ms);

/* The channel accepted c's message: the "sent" record must not be lost, or the
 * pass over stale queued rows would send it a second time. Through a database
 * outage, reconnect in place and try again (about 90 s in all) before giving
 * up with the error. */
static enum st_err record_sent(struct notifier *n, const struct ctx *c, const char *ref,
                               char *err, size_t errlen)
{
    long long wait = 250;
    enum st_err rc = ST_RETRY;

    for (int i = 0; i < NOTIFIER_RECORD_TRIES; i++) {
        rc = record(n, c, "sent", NULL, 0, true, ref, err, errlen);
        if (rc != ST_RETRY)
            return rc;
        log_warn("notify.record", c->shipment_id, NULL,
                 "notification=%lld was sent but is not recorded yet (%s); retrying in %lld ms",
                 c->id, err, wait);
        nap(wait);
        if (PQstatus(n->conn) != CONNECTION_OK)
            PQreset(n->conn);
        wait = wait * 2 > 5000 ? 5000 : wait * 2;
    }
    return rc;
}

/* Render and send c; record the outcome. */
static enum st_err send_one(struct notifier *n, const struct ctx *c, json_t *ev, char *err,
                            size_t errlen)
{
    enum tpl_channel tch = strcmp(c->channel, "email") == 0 ? TPL_EMAIL : TPL_SMS;
    struct channel *ch = tch == TPL_EMAIL ? n->email : n->sms;
    struct tpl_message msg;
    struct channel_msg cm;
    struct channel_result res;
    char rerr[512], reason[300], unsub[EMAIL_URL_MAX];
    json_t *data = message_data(n, c, ev);
    enum st_err rc;

    if (data == NULL)
        return record(n, c, "failed_permanent", "render: link does not fit", 0, false, NULL, err,
                      errlen);
    memset(&msg, 0, sizeof(msg));
    rc = templates_render(n->cfg->templates_dir, c->milestone, c->locale, tch, data, &msg, rerr,
                          sizeof(rerr));
    json_decref(data);
    if (rc != ST_OK) {
        snprintf(reason, sizeof(reason), "render: %.280s", rerr);
        tpl_message_free(&msg);
        if (rc == ST_PERMANENT)
            return record(n, c, "failed_permanent", reason, 0, false, NULL, err, errlen);
        /* a template problem an operator must fix: try again later */
        return record(n, c, "failed_temporary", reason, now_s(n) + backoff_s(n, c->attempts + 1),
                      false, NULL, err, errlen);
    }
    memset(&cm, 0, sizeof(cm));
    memset(&res, 0, sizeof(res));
    cm.shipment_id = c->shipment_id;
    if (tch == TPL_EMAIL) {
        cm.u.email.to_addr = c->addr;
        cm.u.email.subject = msg.subject;
        cm.u.email.text = msg.text;
        cm.u.email.html = msg.html;
        cm.u.email.language = msg.locale;
        cm.u.email.transactional = templates_milestone_transactional(c->milestone);
        if (!cm.u.email.transactional &&
            unsubscribe_url(n->cfg, c->recipient_id, c->channel, unsub, sizeof(unsub)))
            cm.u.email.unsubscribe_url = unsub;
        cm.u.email.date = now_s(n);
    } else {
        cm.u.sms.to = c->addr;
        cm.u.sms.body = msg.sms;
    }
    rc = ch->def->ops->send(ch, &cm, 1, &res, rerr, sizeof(rerr));
    tpl_message_free(&msg);
    if (rc == ST_OK)
        rc = res.err;
    if (rc == ST_OK)
        return record_sent(n, c, res.id[0] ? res.id : NULL, err, errlen);
    snprintf(reason, sizeof(reason), "%.250s", res.errmsg[0] ? res.errmsg : rerr);
    if (rc == ST_RETRY || rc == ST_CONFIG) {
        if (c->attempts + 1 >= n->cfg->notify_max_attempts) {
            char r2[320];

            snprintf(r2, sizeof(r2), "retries exhausted: %.280s", reason);
            return record(n, c, "failed_permanent", r2, 0, true, NULL, err, errlen);
        }
        return record(n, c, "failed_temporary", reason, now_s(n) + backoff_s(n, c->attempts + 1),
                      true, NULL, err, errlen);
    }
    if (res.flag == CHANNEL_FLAG_OPTED_OUT || res.flag == CHANNEL_FLAG_INVALID_NUMBER) {
        mark_opted_out(n, c);
        snprintf(reason, sizeof(reason), "%s", channel_flag_name(res.flag));
    }
    return record(n, c, "failed_permanent", reason, 0, true, NULL, err, errlen);
}

/* Decide row id from "consent" on (the row exists and is queued). ev: the
 * event when known (borrowed), else it is read from the outbox. */
static enum st_err decide(struct notifier *n, long long id, json_t *ev, char *err, size_t errlen)
{
    const struct quiet *q;
    struct ctx c;
    json_t *own = NULL;
    enum st_err rc;
    long long count = 0;
    bool inside = false;
    time_t until = 0;

    if ((rc = load(n, id, &c, err, errlen)) != ST_OK)
        return rc == ST_PERMANENT ? ST_OK : rc;
    if (c.erased || c.addr[0] == '\0')
        return record(n, &c, "suppressed", "no_address", 0, false, NULL, err, errlen);
    if (c.opted_out || !c.consent) /* may have changed since the row was queued */
        return record(n, &c, "suppressed", c.opted_out ? "opted_out" : "no_consent", 0, false,
                      NULL, err, errlen);
    if (superseded(&c))
        return record(n, &c, "suppressed", "superseded", 0, false, NULL, err, errlen);
    q = strcmp(c.channel, "email") == 0 ? &n->quiet_email : &n->quiet_sms;
    if (c.quiet_start[0] != '\0' && c.quiet_end[0] != '\0') {
        if (strcmp(c.quiet_start, c.quiet_end) != 0)
            rc = in_quiet(n, c.tz, c.quiet_start, c.quiet_end, now_s(n), &inside, &until, err,
                          errlen);
    } else if (q->on)
        rc = in_quiet(n, c.tz, q->start, q->end, now_s(n), &inside, &until, err, errlen);
    if (rc != ST_OK)
        return rc;
    if (inside)
        return record(n, &c, "deferred", "quiet_hours", until, false, NULL, err, errlen);
    if ((rc = sent_today(n, &c, &count, err, errlen)) != ST_OK)
        return rc;
    if (count >= n->cfg->notify_max_per_day)
        return record(n, &c, "suppressed", "frequency_cap", 0, false, NULL, err, errlen);
    if (ev == NULL)
        ev = own = load_event(n, &c);
    rc = send_one(n, &c, ev, err, errlen);
    json_decref(own);
    return rc;
}

/* ---- events ---- */

enum st_err notifier_handle(struct notifier *n, const char *json, size_t len, char *err,
                            size_t errlen)
{
    static const char *const channels[2] = { "email", "sms" };
    const char *type, *eid, *fs, *fss, *ts, *tss, *milestone, *episode = "";
    char sid[24], locale[40];
    json_t *ev, *from, *to, *sh;
    json_error_t je;
    enum st_err rc = ST_OK;
    PGresult *res;
    const char *p[1];
    long long shipment_id;

    if (len > NOTIFIER_MSG_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "event larger than %d bytes", NOTIFIER_MSG_MAX);
    ev = json_loadb(json, len, 0, &je);
    if (ev == NULL || !json_is_object(ev)) {
        json_decref(ev);
        return st_fail(err, errlen, ST_PERMANENT, "event is not a JSON object");
    }
    type = json_string_value(json_object_get(ev, "type"));
    eid = json_string_value(json_object_get(ev, "event_id"));
    sh = json_object_get(ev, "shipment_id");
    from = json_object_get(ev, "from");
    to = json_object_get(ev, "to");
    if (type != NULL && strcmp(type, "edd_changed") == 0) {
        /* a delay: once per new date (the episode), so a later slip is news again */
        const char *cur = json_string_value(json_object_get(ev, "current"));
        const char *src = json_string_value(json_object_get(ev, "source"));

        n->totals.events++;
        if (!json_is_integer(sh) || json_integer_value(sh) <= 0 || cur == NULL ||
            strlen(cur) != 10 || json_string_value(json_object_get(ev, "previous")) == NULL) {
            json_decref(ev);
            return st_fail(err, errlen, ST_PERMANENT,
                           "edd_changed without shipment_id, previous or current date");
        }
        shipment_id = (long long)json_integer_value(sh);
        if (src != NULL && strcmp(src, "customs") == 0) {
            /* the customs_held message carries the revised date */
            log_debug("notify.skip", shipment_id, NULL, "delay to %s by a customs hold: told "
                      "with customs_held", cur);
            json_decref(ev);
            return ST_OK;
        }
        milestone = "delayed";
        episode = cur;
    } else if (type == NULL || strcmp(type, "status_changed") != 0) {
        json_decref(ev);
        return ST_OK; /* other event types are not ours */
    } else {
        n->totals.events++;
        fs = json_string_value(json_object_get(from, "status"));
        fss = json_string_value(json_object_get(from, "substatus"));
        ts = json_string_value(json_object_get(to, "status"));
        tss = json_string_value(json_object_get(to, "substatus"));
        if (!json_is_integer(sh) || json_integer_value(sh) <= 0 || fs == NULL || ts == NULL ||
            tss == NULL) {
            json_decref(ev);
            return st_fail(err, errlen, ST_PERMANENT,
                           "status_changed without shipment_id, from.status or to.status");
        }
        shipment_id = (long long)json_integer_value(sh);
        milestone = notifier_milestone(fs, fss != NULL ? fss : "none", ts, tss);
        if (milestone == NULL) {
            log_debug("notify.skip", shipment_id, NULL, "%s -> %s/%s: no milestone", fs, ts,
                      tss);
            json_decref(ev);
            return ST_OK;
        }
    }
    /* The recipient's addresses and consent per channel. */
    snprintf(sid, sizeof(sid), "%lld", shipment_id);
    p[0] = sid;
    res = db_exec(n->conn, "load recipient",
                  "SELECT r.email IS NOT NULL AND r.erased_at IS NULL,"
                  " r.phone IS NOT NULL AND r.erased_at IS NULL,"
                  " COALESCE(pe.consent, true), pe.opted_out_at IS NOT NULL,"
                  " COALESCE(ps.consent, true), ps.opted_out_at IS NOT NULL, r.locale"
                  " FROM shipments s JOIN recipients r ON r.id = s.recipient_id"
                  " LEFT JOIN preferences pe ON pe.recipient_id = r.id AND pe.channel = 'email'"
                  " LEFT JOIN preferences ps ON ps.recipient_id = r.id AND ps.channel = 'sms'"
                  " WHERE s.id = $1::bigint",
                  1, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL) {
        json_decref(ev);
        return rc;
    }
    if (PQntuples(res) != 1) {
        log_info("notify.skip", shipment_id, NULL, "milestone=%s: no shipment or no recipient",
                 milestone);
        PQclear(res);
        json_decref(ev);
        return ST_OK;
    }
    snprintf(locale, sizeof(locale), "%s", PQgetvalue(res, 0, 6));
    for (int i = 0; i < 2 && rc == ST_OK; i++) {
        bool has = strcmp(PQgetvalue(res, 0, i), "t") == 0;
        bool consent = strcmp(PQgetvalue(res, 0, 2 + 2 * i), "t") == 0;
        bool opted_out = strcmp(PQgetvalue(res, 0, 3 + 2 * i), "t") == 0;
        const char *status = "queued", *reason = NULL;
        const char *ip[7];
        PGresult *ins;

        if (!has)
            continue;
        if (!milestone_enabled(n, milestone)) {
            status = "suppressed";
            reason = "milestone_disabled";
        } else if (opted_out || !consent) {
            status = "suppressed";
            reason = opted_out ? "opted_out" : "no_consent";
        }
        ip[0] = sid;
        ip[1] = milestone;
        ip[2] = channels[i];
        ip[3] = status;
        ip[4] = reason;
        ip[5] = eid;
        ip[6] = episode;
        /* the unique key is the "not already sent" check */
        ins = db_exec(n->conn, "insert notification",
                      "INSERT INTO notifications (shipment_id, milestone, channel, status,"
                      " reason, event_id, locale, episode)"
                      " SELECT $1::bigint, $2, $3, $4, $5, $6::uuid, r.locale, $7"
                      " FROM shipments s JOIN recipients r ON r.id = s.recipient_id"
                      " WHERE s.id = $1::bigint"
                      " ON CONFLICT (shipment_id, milestone, channel, episode) DO NOTHING RETURNING id",
                      7, ip, PGRES_TUPLES_OK, &rc, err, errlen);
        if (ins == NULL)
            break;
        if (PQntuples(ins) == 0) {
            n->totals.duplicates++;
            log_info("notify.decision", shipment_id, NULL,
                     "milestone=%s channel=%s status=duplicate (already recorded)", milestone,
                     channels[i]);
        } else {
            long long id = atoll(PQgetvalue(ins, 0, 0));

            if (strcmp(status, "queued") == 0)
                rc = decide(n, id, ev, err, errlen);
            else {
                struct ctx c;

                memset(&c, 0, sizeof(c));
                c.id = id;
                c.shipment_id = shipment_id;
                snprintf(c.milestone, sizeof(c.milestone), "%s", milestone);
                snprintf(c.channel, sizeof(c.channel), "%s", channels[i]);
                snprintf(c.event_id, sizeof(c.event_id), "%s", eid != NULL ? eid : "");
                n->totals.suppressed++;
                log_info("notify.decision", shipment_id, NULL,
                         "notification=%lld milestone=%s channel=%s status=suppressed reason=%s",
                         id, milestone, channels[i], reason);
                publish(n, &c, status, reason);
            }
        }
        PQclear(ins);
    }
    PQclear(res);
    json_decref(ev);
    return rc;
}

enum st_err notifier_pass(struct notifier *n, int *handled, char *err, size_t errlen)
{
    char now[24], stale[24];
    const char *p[2] = { now, stale };
    enum st_err rc = ST_OK;
    PGresult *res;

    *handled = 0;
    snprintf(now, sizeof(now), "%lld", (long long)now_s(n));
    snprintf(stale, sizeof(stale), "%lld", n->cfg->notify_stale_ms);
    /* claim due rows (several notifiers may run the pass at once) */
    res = db_exec(n->conn, "claim due notifications",
                  "UPDATE notifications SET status = 'queued', deferred_until = NULL,"
                  " updated_at = now() WHERE id IN ("
                  "   SELECT id FROM notifications"
                  "   WHERE (status IN ('deferred', 'failed_temporary')"
                  "          AND deferred_until <= to_timestamp($1::bigint))"
                  "      OR (status = 'queued' AND updated_at <"
                  "          now() - make_interval(secs => $2::float8 / 1000))"
                  "   ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED)"
                  " RETURNING id",
                  2, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        rc = decide(n, atoll(PQgetvalue(res, i, 0)), NULL, err, errlen);
        if (rc != ST_OK)
            break; /* the rest stay queued and are picked up as stale */
        (*handled)++;
    }
    PQclear(res);
    return rc;
}

/* ---- lifecycle ---- */

enum st_err notifier_new(const struct st_config *cfg, PGconn *conn, rd_kafka_t *producer,
                         struct notifier **out, char *err, size_t errlen)
{
    struct notifier *n;
    enum st_err rc;

    *out = NULL;
    if (cfg->public_url == NULL || strncmp(cfg->public_url, "https://", 8) != 0)
        return st_fail(err, errlen, ST_CONFIG,
                       "SHIPTRACK_PUBLIC_URL: the notifier needs the https:// base URL of the "
                       "tracking and unsubscribe pages");
    if (cfg->unsubscribe_secret == NULL || strlen(cfg->unsubscribe_secret) < 16)
        return st_fail(err, errlen, ST_CONFIG,
                       "SHIPTRACK_UNSUBSCRIBE_SECRET: the notifier needs a secret of at least "
                       "16 characters to sign unsubscribe links");
    if ((n = calloc(1, sizeof(*n))) == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory");
    n->cfg = cfg;
    n->conn = conn;
    n->producer = producer;
    if (!parse_quiet(cfg->quiet_hours_sms, &n->quiet_sms)) {
        free(n);
        return st_fail(err, errlen, ST_CONFIG,
                       "SHIPTRACK_QUIET_HOURS_SMS: expected HH:MM-HH:MM or off");
    }
    if (!parse_quiet(cfg->quiet_hours_email, &n->quiet_email)) {
        free(n);
        return st_fail(err, errlen, ST_CONFIG,
                       "SHIPTRACK_QUIET_HOURS_EMAIL: expected HH:MM-HH:MM or off");
    }
    if ((rc = email_channel.ops->open(cfg, &n->email, err, errlen)) != ST_OK ||
        (rc = sms_channel.ops->open(cfg, &n->sms, err, errlen)) != ST_OK) {
        notifier_free(n);
        return rc;
    }
    *out = n;
    return ST_OK;
}

void notifier_free(struct notifier *n)
{
    if (n == NULL)
        return;
    if (n->email != NULL)
        n->email->def->ops->close(n->email);
    if (n->sms != NULL)
        n->sms->def->ops->close(n->sms);
    free(n);
}

void notifier_set_conn(struct notifier *n, PGconn *conn)
{
    n->conn = conn;
}

const struct notifier_totals *notifier_get_totals(const struct notifier *n)
{
    return &n->totals;
}

/* ---- the Kafka side (the pattern of intake.c) ---- */

static long long mono_ms(void)
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

/* Rebalance callback for from_beginning: every assigned partition from offset 0. */
static void rebalance_from_start(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                                 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)opaque;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
    } else
        rd_kafka_assign(rk, NULL);
}

/* Connect (again) when needed; false when stopped. */
static bool ensure_conn(const struct st_config *cfg, const struct notifier_opts *opts,
                        PGconn **conn, struct notifier *n)
{
    if (!migrate_ensure_conn(conn, cfg->database_url, cfg->db_retry_max_ms, opts->running,
                             "notifier"))
        return false;
    if (n != NULL)
        notifier_set_conn(n, *conn); /* the same one, or a new one after a loss */
    return true;
}

int notifier_run(const struct st_config *cfg, const struct notifier_opts *opts,
                 struct notifier_totals *totals)
{
    static const char *const consumer_kv[] = {
        "group.id", "shiptrack-notifier", "enable.auto.offset.store", "false",
        "auto.offset.reset", "earliest", NULL,
    };
    static const char *const producer_kv[] = { "enable.idempotence", "true", NULL };
    rd_kafka_t *rk, *prod;
    struct notifier *n = NULL;
    PGconn *conn = NULL;
    long long last_msg = mono_ms(), last_pass = 0;
    char err[512];

    memset(totals, 0, sizeof(*totals));
    rk = kafka_client_new(RD_KAFKA_CONSUMER, opts->brokers, consumer_kv,
                          opts->from_beginning ? rebalance_from_start : NULL, "notify.start");
    if (rk == NULL)
        return 1;
    if ((prod = kafka_client_new(RD_KAFKA_PRODUCER, opts->brokers, producer_kv, NULL,
                                 "notify.start")) == NULL) {
        rd_kafka_destroy(rk);
        return 1;
    }
    {
        enum st_err start = ST_RETRY;

        if (!ensure_conn(cfg, opts, &conn, NULL) ||
            (start = notifier_new(cfg, conn, prod, &n, err, sizeof(err))) != ST_OK) {
            if (n == NULL && *opts->running)
                log_error("notify.start", 0, NULL, "%s", err);
            rd_kafka_destroy(prod);
            rd_kafka_destroy(rk);
            if (conn != NULL)
                PQfinish(conn);
            return start == ST_CONFIG ? 2 : 1; /* 2: restarting will not help */
        }
    }
    if (!kafka_subscribe(rk, TOPIC_EVENTS, "notify.start")) {
        notifier_free(n);
        rd_kafka_destroy(prod);
        rd_kafka_destroy(rk);
        PQfinish(conn);
        return 1;
    }
    log_info("notify.start", 0, NULL, "consuming %s from %s", TOPIC_EVENTS, opts->brokers);

    while (*opts->running) {
        rd_kafka_message_t *m;
        long long backoff = 250;

        /* the periodic pass: deferred and failed rows that are due */
        if (mono_ms() - last_pass >= cfg->notify_pass_ms && ensure_conn(cfg, opts, &conn, n)) {
            int handled = 0, total = 0;

            /* batch after batch while full (08:00 releases a night's SMS at once) */
            do {
                if (notifier_pass(n, &handled, err, sizeof(err)) != ST_OK) {
                    log_warn("notify.pass", 0, NULL, "%s", err);
                    break;
                }
                total += handled;
            } while (handled == NOTIFIER_PASS_BATCH && *opts->running);
            if (total > 0)
                log_info("notify.pass", 0, NULL, "%d due notifications decided", total);
            last_pass = mono_ms();
        }
        rd_kafka_poll(prod, 0);
        m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) {
            if (opts->idle_exit_ms > 0 && mono_ms() - last_msg > opts->idle_exit_ms)
                break;
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("notify.kafka", 0, NULL, "%s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        last_msg = mono_ms();
        /* the same message until it is handled, or we stop */
        while (ensure_conn(cfg, opts, &conn, n)) {
            enum st_err rc = notifier_handle(n, m->payload ? m->payload : "", m->len, err,
                                             sizeof(err));

            if (rc == ST_OK || rc == ST_PERMANENT) {
                if (rc == ST_PERMANENT)
                    log_warn("notify.invalid", 0, NULL, "%s offset %lld: %s (skipped)",
                             TOPIC_EVENTS, (long long)m->offset, err);
                kafka_store_offset(rk, m);
                break;
            }
            log_warn("notify.retry", 0, NULL, "%s offset %lld: %s; retrying in %lld ms",
                     TOPIC_EVENTS, (long long)m->offset, err, backoff);
            nap(backoff);
            backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
        }
        rd_kafka_message_destroy(m);
    }
    *totals = n->totals;
    rd_kafka_consumer_close(rk); /* commits the stored offsets */
    rd_kafka_destroy(rk);
    rd_kafka_flush(prod, 5000);
    rd_kafka_destroy(prod);
    notifier_free(n);
    if (conn != NULL)
        PQfinish(conn);
    log_info("notify.stop", 0, NULL, "events %ld, sent %ld, deferred %ld, suppressed %ld, "
             "failed %ld+%ld, duplicates %ld", totals->events, totals->sent, totals->deferred,
             totals->suppressed, totals->failed_temporary, totals->failed_permanent,
             totals->duplicates);
    return 0;
}
