/*
 * store.c - record a poll's outcome in one transaction.
 *
 * Wording: an event is "new" when this call inserted it (its dedupe key was
 * not stored yet); an event "applies" when it is new, may drive the status
 * (not unmapped) and is not older than the event that set the current status.
 * Each applying event that changes the status, or moves into, within or out
 * of customs, is a "transition" and gets an outbox row; the shipment's
 * substatus always follows the newest applying event. Applying events also
 * drive the customs state machine (customs.h); the estimate (eta.h) follows
 * the carrier's date, the first movement ("shipped_at"), customs holds and
 * the delivery, and a delay gets an edd_changed outbox row.
 */
#include "store.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "customs.h"
#include "db.h"
#include "eta.h"
#include "log.h"

#define EVENTS_TOPIC "shiptrack.events.v1"

static void iso_utc(time_t t, char *buf, size_t cap)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void store_dedupe_text(const char *carrier, const char *number, const struct track_event *ev,
                       char *buf, size_t cap)
{
    char off[16];

    if (ev->offset_kind == OFFSET_UNKNOWN)
        snprintf(off, sizeof(off), "u");
    else
        snprintf(off, sizeof(off), "%d", ev->utc_offset_min);
    snprintf(buf, cap, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", carrier, number,
             ev->occurred_local, off, ev->code, ev->city, ev->postal_code, ev->country,
             ev->description);
}

/* Feed one field and a separator (0x1e) to the digest. */
static bool digest_add(EVP_MD_CTX *md, const char *field)
{
    return EVP_DigestUpdate(md, field, strlen(field)) == 1 && EVP_DigestUpdate(md, "\x1e", 1) == 1;
}

bool store_poll_digest(const struct claimed *s, const struct track_result *r,
                       char out[STORE_DIGEST_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char num[64], dedupe[EV_DESC_MAX + 512];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok;

    out[0] = '\0';
    if (md == NULL)
        return false;
    snprintf(num, sizeof(num), "%d/%zu", (int)r->outcome, r->n_events);
    ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && digest_add(md, num) &&
         digest_add(md, r->estimated_delivery);
    for (size_t i = 0; ok && i < r->n_events; i++) {
        const struct track_event *ev = &r->events[i];

        store_dedupe_text(s->carrier, s->tracking_number, ev, dedupe, sizeof(dedupe));
        snprintf(num, sizeof(num), "%lld/%d/%d/%d/%d/%d/%d", (long long)ev->occurred_at,
                 (int)ev->status, (int)ev->substatus, ev->affects_status, ev->customs,
                 ev->customs_broker, (int)ev->offset_kind);
        ok = digest_add(md, dedupe) && digest_add(md, num) && digest_add(md, ev->instructions);
    }
    ok = ok && EVP_DigestFinal_ex(md, sum, &len) == 1 && len * 2 >= STORE_DIGEST_LEN;
    EVP_MD_CTX_free(md);
    if (!ok)
        return false;
    for (size_t i = 0; i < STORE_DIGEST_LEN / 2; i++) {
        out[2 * i] = hex[sum[i] >> 4];
        out[2 * i + 1] = hex[sum[i] & 0xf];
    }
    out[STORE_DIGEST_LEN] = '\0';
    return true;
}

/* Random factor in [1 - pct/100, 1 + pct/100]. */
static double jitter(int pct)
{
    if (pct <= 0)
        return 1.0;
    return 1.0 + ((double)(rand() % (2 * pct * 100 + 1)) - pct * 100) / 10000.0;
}

/* JSON array of the events for jsonb_to_recordset. */
static json_t *events_json(const struct claimed *s, const struct track_result *r)
{
    json_t *arr = json_array();
    char at[32], dedupe[EV_DESC_MAX + 512];

    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < r->n_events; i++) {
        const struct track_event *ev = &r->events[i];
        json_t *o;

        iso_utc(ev->occurred_at, at, sizeof(at));
        store_dedupe_text(s->carrier, s->tracking_number, ev, dedupe, sizeof(dedupe));
        o = json_pack("{s:i, s:s, s:s, s:s, s:o, s:s, s:s, s:b, s:b, s:s, s:s, s:s, s:s, s:s, s:s}",
                      "ord", (int)i, "occurred_at", at, "occurred_local", ev->occurred_local,
                      "offset_kind", offset_kind_name(ev->offset_kind), "utc_offset_min",
                      ev->offset_kind == OFFSET_UNKNOWN ? json_null()
                                                        : json_integer(ev->utc_offset_min),
                      "status", st_status_name(ev->status), "substatus",
                      st_substatus_name(ev->substatus), "affects_status", ev->affects_status,
                      "customs", ev->customs, "raw_code", ev->code, "raw_description",
                      ev->description, "city", ev->city, "postal_code", ev->postal_code,
                      "country", ev->country, "dedupe", dedupe);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Insert events; new_flags[i] becomes true for each event inserted now. */
static enum st_err insert_events(PGconn *conn, const struct claimed *s,
                                 const struct track_result *r, bool *new_flags, int *n_new,
                                 char *err, size_t errlen)
{
    static const char sql[] =
        "WITH src AS ("
        "  SELECT e.*, md5(e.dedupe)::uuid AS dedupe_key"
        "  FROM jsonb_to_recordset($2::jsonb) AS e(ord int, occurred_at timestamptz,"
        "       occurred_local timestamp, offset_kind text, utc_offset_min smallint,"
        "       status text, substatus text, affects_status boolean, customs boolean,"
        "       raw_code text, raw_description text, city text, postal_code text,"
        "       country text, dedupe text)),"
        " ins AS ("
        "  INSERT INTO tracking_events (shipment_id, occurred_at, occurred_local, offset_kind,"
        "       utc_offset_min, status, substatus, affects_status, customs, raw_code,"
        "       raw_description, city, postal_code, country, dedupe_key)"
        "  SELECT $1, occurred_at, occurred_local, offset_kind, utc_offset_min, status,"
        "       substatus, affects_status, customs, raw_code, raw_description, city,"
        "       postal_code, country, dedupe_key FROM src ORDER BY ord"
        "  ON CONFLICT (dedupe_key, occurred_at) DO NOTHING"
        "  RETURNING dedupe_key, occurred_at)"
        " SELECT DISTINCT ON (src.dedupe_key) src.ord FROM src"
        "  JOIN ins ON ins.dedupe_key = src.dedupe_key AND ins.occurred_at = src.occurred_at"
        "  ORDER BY src.dedupe_key, src.ord";
    char id[24];
    const char *p[2];
    json_t *arr = events_json(s, r);
    char *text;
    enum st_err kind = ST_OK;
    PGresult *res;

    *n_new = 0;
    if (arr == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory building events");
    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (text == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory building events");
    snprintf(id, sizeof(id), "%lld", s->id);
    p[0] = id;
    p[1] = text;
    res = db_exec_prepared(conn, "insert events", sql, 2, p, PGRES_TUPLES_OK, &kind, err, errlen);
    free(text);
    if (res == NULL)
        return kind;
    for (int i = 0; i < PQntuples(res); i++) {
        int ord = atoi(PQgetvalue(res, i, 0));

        if (ord >= 0 && (size_t)ord < r->n_events) {
            new_flags[ord] = true;
            (*n_new)++;
        }
    }
    PQclear(res);
    return ST_OK;
}

/* The shipment row as it is now, locked for this transaction. */
struct current {
    enum st_status status;
    enum st_substatus substatus;
    bool has_status_at;
    time_t status_at;
    time_t last_event_at;    /* 0 when no event yet */
    time_t created_at;
    time_t now;              /* the database's clock */
    char order_ref[130];
    char destination[3];     /* destination country, "" unknown */
};

static enum st_err lock_shipment(PGconn *conn, const struct claimed *s, struct current *cur,
                                 char *err, size_t errlen)
{
    char id[24];
    const char *p[1] = { id };
    enum st_err kind = ST_OK;
    PGresult *res;

    snprintf(id, sizeof(id), "%lld", s->id);
    res = db_exec_prepared(conn, "lock shipment",
                  "SELECT status, substatus, extract(epoch FROM status_at)::bigint,"
                  " coalesce(order_ref, ''), extract(epoch FROM last_event_at)::bigint,"
                  " extract(epoch FROM created_at)::bigint, extract(epoch FROM now())::bigint,"
                  " coalesce(destination_country, '')"
                  " FROM shipments WHERE id = $1 FOR UPDATE",
                  1, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        return kind;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return st_fail(err, errlen, ST_PERMANENT, "shipment %lld no longer exists", s->id);
    }
    if (!st_status_parse(PQgetvalue(res, 0, 0), &cur->status) ||
        !st_substatus_parse(PQgetvalue(res, 0, 1), &cur->substatus)) {
        PQclear(res);
        return st_fail(err, errlen, ST_PERMANENT, "shipment %lld has an unknown status", s->id);
    }
    cur->has_status_at = !PQgetisnull(res, 0, 2);
    cur->status_at = cur->has_status_at ? (time_t)atoll(PQgetvalue(res, 0, 2)) : 0;
    snprintf(cur->order_ref, sizeof(cur->order_ref), "%s", PQgetvalue(res, 0, 3));
    cur->last_event_at = PQgetisnull(res, 0, 4) ? 0 : (time_t)atoll(PQgetvalue(res, 0, 4));
    cur->created_at = (time_t)atoll(PQgetvalue(res, 0, 5));
    cur->now = (time_t)atoll(PQgetvalue(res, 0, 6));
    snprintf(cur->destination, sizeof(cur->destination), "%s", PQgetvalue(res, 0, 7));
    PQclear(res);
    return ST_OK;
}

/* Outbox message announcing a change from (from, from_sub) to ev's status. */
static json_t *transition_json(const struct claimed *s, const struct current *cur,
                               enum st_status from, enum st_substatus from_sub,
                               enum st_status to, enum st_substatus to_sub,
                               const struct track_event *ev)
{
    char at[32];

    if (ev != NULL)
        iso_utc(ev->occurred_at, at, sizeof(at));
    return json_pack("{s:s, s:I, s:s, s:s, s:o, s:{s:s, s:s}, s:{s:s, s:s}, s:o}",
                     "type", "status_changed", "shipment_id", (json_int_t)s->id, "carrier",
                     s->carrier, "tracking_number", s->tracking_number, "order_ref",
                     cur->order_ref[0] ? json_string(cur->order_ref) : json_null(), "from",
                     "status", st_status_name(from), "substatus", st_substatus_name(from_sub),
                     "to", "status", st_status_name(to), "substatus", st_substatus_name(to_sub),
                     "event",
                     ev == NULL ? json_null()
                                : json_pack("{s:s, s:s, s:s, s:b, s:s, s:s, s:{s:s, s:s, s:s}}",
                                            "occurred_at", at, "occurred_local",
                                            ev->occurred_local, "offset_kind",
                                            offset_kind_name(ev->offset_kind), "customs",
                                            ev->customs, "code", ev->code, "description",
                                            ev->description, "location", "city", ev->city,
                                            "postal_code", ev->postal_code, "country",
                                            ev->country));
}

static enum st_err insert_outbox(PGconn *conn, const struct claimed *s, json_t *msgs, char *err,
                                 size_t errlen)
{
    char key[24];
    const char *p[2];
    char *text;
    enum st_err kind = ST_OK;
    PGresult *res;

    if (json_array_size(msgs) == 0)
        return ST_OK;
    text = json_dumps(msgs, JSON_COMPACT);
    if (text == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory building outbox rows");
    snprintf(key, sizeof(key), "%lld", s->id);
    p[0] = key;
    p[1] = text;
    res = db_exec_prepared(conn, "insert outbox",
                  "INSERT INTO outbox (topic, msg_key, payload)"
                  " SELECT '" EVENTS_TOPIC "', $1, m.x"
                  " FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS m(x, n) ORDER BY m.n",
                  2, p, PGRES_COMMAND_OK, &kind, err, errlen);
    free(text);
    if (res == NULL)
        return kind;
    PQclear(res);
    return ST_OK;
}

/* Customs messages say what the hold is about and when the parcel should
 * now arrive: add "customs" (state, reason, actor, instructions of the
 * newest hold) and "eta" to every status_changed message into or within
 * customs. */
static bool decorate_customs(json_t *msgs, const struct customs_outcome *co,
                             const struct eta_outcome *eo)
{
    size_t i;
    json_t *m;

    json_array_foreach(msgs, i, m) {
        const char *sub = json_string_value(json_object_get(json_object_get(m, "to"),
                                                            "substatus"));
        json_t *c;

        if (sub == NULL || strncmp(sub, "customs_", 8) != 0)
            continue;
        c = co->reason[0] == '\0' ? json_null()
            : json_pack("{s:s, s:s, s:s, s:o}", "state", co->state[0] ? co->state : "held",
                        "reason", co->reason, "actor", co->actor, "instructions",
                        co->instructions[0] ? json_string(co->instructions) : json_null());
        if (c == NULL || json_object_set_new(m, "customs", c) != 0 ||
            json_object_set_new(m, "eta", eo->current[0] ? json_string(eo->current)
                                                         : json_null()) != 0)
            return false;
    }
    return true;
}

/* Outbox message announcing a delay: the estimate moved a day or more past
 * what the customer was told. */
static json_t *edd_changed_json(const struct claimed *s, const struct current *cur,
                                const struct eta_outcome *eo)
{
    return json_pack("{s:s, s:I, s:s, s:s, s:o, s:s, s:s, s:s, s:s}", "type", "edd_changed",
                     "shipment_id", (json_int_t)s->id, "carrier", s->carrier,
                     "tracking_number", s->tracking_number, "order_ref",
                     cur->order_ref[0] ? json_string(cur->order_ref) : json_null(), "previous",
                     eo->communicated, "current", eo->current, "source", eo->source, "reason",
                     eo->reason);
}

/* Does status st mean the parcel is on its way (transit started, not over)?
 * A shipment first seen delivered has no known start: no transit time. */
static bool moving_status(enum st_status st)
{
    return st != ST_STATUS_PENDING && st != ST_STATUS_INFO_RECEIVED &&
           st != ST_STATUS_NOT_FOUND && !st_status_terminal(st);
}

/* The answer is the one stored last time: schedule the next poll and release
 * the lease in one statement, provided the shipment is still as claimed (same
 * digest and status, still polled) and need not expire now. Sets
 * stats->unchanged when it did; otherwise the caller runs the full store. */
static enum st_err reschedule_unchanged(PGconn *conn, const char *worker_id,
                                        const struct claimed *s, const char *digest,
                                        const struct poll_policy *pp, struct store_stats *stats,
                                        char *err, size_t errlen)
{
    enum st_status status;
    char id[24], next_ms[32], expire_ms[32];
    const char *p[6];
    enum st_err rc = ST_OK;
    PGresult *res;

    if (!st_status_parse(s->status, &status) || pp->interval_ms[status] < 0)
        return ST_OK;
    snprintf(id, sizeof(id), "%lld", s->id);
    snprintf(next_ms, sizeof(next_ms), "%.0f",
             (double)pp->interval_ms[status] * jitter(pp->jitter_pct));
    snprintf(expire_ms, sizeof(expire_ms), "%lld", pp->expire_after_ms);
    p[0] = id;
    p[1] = next_ms;
    p[2] = worker_id;
    p[3] = digest;
    p[4] = s->status;
    p[5] = pp->expire_after_ms > 0 ? expire_ms : NULL;
    res = db_exec_prepared(conn, "reschedule unchanged",
                  "UPDATE shipments SET"
                  " next_poll_at = now() + make_interval(secs => $2::float8 / 1000),"
                  " lease_owner = CASE WHEN lease_owner = $3 THEN NULL ELSE lease_owner END,"
                  " lease_until = CASE WHEN lease_owner = $3 THEN NULL ELSE lease_until END,"
                  " poll_count = poll_count + 1, poll_error_streak = 0, last_poll_at = now(),"
                  " last_poll_error = NULL, updated_at = now()"
                  " WHERE id = $1 AND poll_digest = $4 AND status = $5 AND next_poll_at IS NOT NULL"
                  "   AND ($6::float8 IS NULL OR coalesce(last_event_at, created_at)"
                  "        >= now() - make_interval(secs => $6::float8 / 1000))",
                  6, p, PGRES_COMMAND_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    if (strcmp(PQcmdTuples(res), "1") == 0) {
        stats->unchanged = true;
        snprintf(stats->status, sizeof(stats->status), "%s", s->status);
    }
    PQclear(res);
    return ST_OK;
}

enum st_err store_poll_result(PGconn *conn, const char *worker_id, const struct claimed *s,
                              const struct track_result *r, const struct poll_policy *pp,
                              struct store_stats *stats, char *err, size_t errlen)
{
    struct current cur;
    enum st_status status;
    enum st_substatus sub;
    time_t status_at, last_event = 0, shipped = 0;
    bool changed_at = false;
    bool *new_flags = NULL, *applies = NULL;
    json_t *msgs = NULL;
    struct customs_outcome co;
    struct eta_input ei;
    struct eta_outcome eo;
    char id[24], st_at[32] = "", last_at[32] = "", next_ms[32];
    char digest[STORE_DIGEST_LEN + 1];
    const char *p[9];
    enum st_err rc;
    PGresult *res;

    memset(stats, 0, sizeof(*stats));
    stats->events_seen = (int)r->n_events;
    if (!store_poll_digest(s, r, digest))
        digest[0] = '\0'; /* no digest: the next poll runs in full too */
    if (digest[0] != '\0' && strcmp(digest, s->digest) == 0) {
        if ((rc = reschedule_unchanged(conn, worker_id, s, digest, pp, stats, err, errlen)) !=
            ST_OK || stats->unchanged)
            return rc;
    }
    if ((rc = db_begin(conn, err, errlen)) != ST_OK)
        return rc;
    if ((rc = lock_shipment(conn, s, &cur, err, errlen)) != ST_OK)
        goto fail;
    new_flags = calloc(r->n_events + 1, sizeof(*new_flags));
    applies = calloc(r->n_events + 1, sizeof(*applies));
    msgs = json_array();
    if (new_flags == NULL || applies == NULL || msgs == NULL) {
        rc = st_fail(err, errlen, ST_RETRY, "out of memory");
        goto fail;
    }
    if (r->outcome == TRACK_FOUND && r->n_events > 0 &&
        (rc = insert_events(conn, s, r, new_flags, &stats->events_new, err, errlen)) != ST_OK)
        goto fail;

    /* Walk events oldest first (the driver sorted them). */
    status = cur.status;
    sub = cur.substatus;
    status_at = cur.status_at;
    for (size_t i = 0; i < r->n_events; i++) {
        const struct track_event *ev = &r->events[i];

        if (ev->occurred_at > last_event)
            last_event = ev->occurred_at;
        if (new_flags[i] && ev->substatus == ST_SUB_UNMAPPED) {
            /* stored and counted; said once, when first seen, for driver authors */
            stats->unmapped_new++;
            log_warn("carrier.unmapped", s->id, s->carrier,
                     "carrier code \"%s\" is not mapped yet (stored, status unchanged): %s",
                     ev->code, ev->description);
        }
        if (!new_flags[i] || !ev->affects_status)
            continue;
        if (moving_status(ev->status) && (shipped == 0 || ev->occurred_at < shipped))
            shipped = ev->occurred_at;
        if ((cur.has_status_at || changed_at) && ev->occurred_at < status_at)
            continue; /* late and older: recorded, but never moves the status back */
        applies[i] = true;
        /* Announce status changes, and customs steps within a status (processing ->
         * duties due -> released are milestones); a new facility scan is not news. */
        if (ev->status != status ||
            (ev->substatus != sub &&
             (st_substatus_customs(ev->substatus) || st_substatus_customs(sub)))) {
            json_t *m = transition_json(s, &cur, status, sub, ev->status, ev->substatus, ev);

            if (m == NULL || json_array_append_new(msgs, m) != 0) {
                rc = st_fail(err, errlen, ST_RETRY, "out of memory");
                goto fail;
            }
            if (ev->status != status)
                stats->status_changes++;
        }
        status = ev->status;
        sub = ev->substatus;
        status_at = ev->occurred_at;
        changed_at = true;
    }
    /* A number the carrier does not know yet: pending becomes not_found. */
    if (r->outcome == TRACK_NOT_FOUND && status == ST_STATUS_PENDING) {
        json_t *m = transition_json(s, &cur, status, sub, ST_STATUS_NOT_FOUND, ST_SUB_NOT_FOUND,
                                    NULL);

        if (m == NULL || json_array_append_new(msgs, m) != 0) {
            rc = st_fail(err, errlen, ST_RETRY, "out of memory");
            goto fail;
        }
        status = ST_STATUS_NOT_FOUND;
        sub = ST_SUB_NOT_FOUND;
        stats->status_changes++;
    }
    /* No movement for SHIPTRACK_EXPIRE_AFTER (since the newest event, or since
     * registration when there is none): stop polling, say so. */
    {
        time_t moved = cur.last_event_at > last_event ? cur.last_event_at : last_event;

        if (moved == 0)
            moved = cur.created_at;
        if (!st_status_terminal(status) && pp->expire_after_ms > 0 &&
            (long long)(cur.now - moved) * 1000 > pp->expire_after_ms) {
            json_t *m = transition_json(s, &cur, status, sub, ST_STATUS_EXPIRED, ST_SUB_NONE,
                                        NULL);

            if (m == NULL || json_array_append_new(msgs, m) != 0) {
                rc = st_fail(err, errlen, ST_RETRY, "out of memory");
                goto fail;
            }
            status = ST_STATUS_EXPIRED;
            sub = ST_SUB_NONE;
            stats->status_changes++;
        }
    }
    if ((rc = customs_apply(conn, s->id, cur.destination, r->events, applies, r->n_events, &co,
                            err, errlen)) != ST_OK)
        goto fail;
    memset(&ei, 0, sizeof(ei));
    ei.carrier = s->carrier;
    ei.carrier_edd = r->outcome == TRACK_FOUND ? r->estimated_delivery : "";
    ei.shipped_at = shipped;
    ei.customs_held = co.held;
    ei.held_at = co.held_at;
    ei.hold_reason = co.reason;
    ei.delivered = status == ST_STATUS_DELIVERED && cur.status != ST_STATUS_DELIVERED;
    ei.delivered_at = status_at;
    ei.finished = st_status_terminal(status);
    memset(&eo, 0, sizeof(eo));
    /* a poll that brought nothing new and no carrier date cannot move the estimate */
    if ((ei.carrier_edd[0] != '\0' || ei.shipped_at > 0 || ei.customs_held || ei.delivered) &&
        (rc = eta_apply(conn, s->id, &pp->eta, &ei, &eo, err, errlen)) != ST_OK)
        goto fail;
    if (!decorate_customs(msgs, &co, &eo)) {
        rc = st_fail(err, errlen, ST_RETRY, "out of memory");
        goto fail;
    }
    if (eo.delayed) {
        json_t *m = edd_changed_json(s, &cur, &eo);

        if (m == NULL || json_array_append_new(msgs, m) != 0) {
            rc = st_fail(err, errlen, ST_RETRY, "out of memory");
            goto fail;
        }
    }
    if ((rc = insert_outbox(conn, s, msgs, err, errlen)) != ST_OK)
        goto fail;

    snprintf(id, sizeof(id), "%lld", s->id);
    if (changed_at)
        iso_utc(status_at, st_at, sizeof(st_at));
    if (last_event > 0)
        iso_utc(last_event, last_at, sizeof(last_at));
    snprintf(next_ms, sizeof(next_ms), "%.0f",
             (double)pp->interval_ms[status] * jitter(pp->jitter_pct));
    p[0] = id;
    p[1] = st_status_name(status);
    p[2] = st_substatus_name(sub);
    p[3] = st_at[0] ? st_at : NULL;
    p[4] = last_at[0] ? last_at : NULL;
    p[5] = co.state[0] ? co.state : NULL;
    p[6] = pp->interval_ms[status] < 0 ? NULL : next_ms;
    p[7] = worker_id;
    p[8] = digest[0] ? digest : NULL;
    res = db_exec_prepared(conn, "update shipment",
                  "UPDATE shipments SET status = $2, substatus = $3,"
                  " status_at = coalesce($4::timestamptz, status_at),"
                  " last_event_at = greatest(last_event_at, $5::timestamptz),"
                  " customs_state = coalesce($6, customs_state),"
                  " next_poll_at = CASE WHEN $7::text IS NULL THEN NULL"
                  "   ELSE now() + make_interval(secs => $7::float8 / 1000) END,"
                  " lease_owner = CASE WHEN lease_owner = $8 THEN NULL ELSE lease_owner END,"
                  " lease_until = CASE WHEN lease_owner = $8 THEN NULL ELSE lease_until END,"
                  " poll_count = poll_count + 1, poll_error_streak = 0, last_poll_at = now(),"
                  " last_poll_error = NULL, updated_at = now(), poll_digest = $9"
                  " WHERE id = $1",
                  9, p, PGRES_COMMAND_OK, &rc, err, errlen);
    if (res == NULL)
        goto fail;
    PQclear(res);
    if ((rc = db_commit(conn, err, errlen)) != ST_OK)
        goto fail;
    snprintf(stats->status, sizeof(stats->status), "%s", st_status_name(status));
    free(new_flags);
    free(applies);
    json_decref(msgs);
    return ST_OK;
fail:
    db_rollback(conn);
    free(new_flags);
    free(applies);
    json_decref(msgs);
    return rc;
}

enum st_err store_poll_failure(PGconn *conn, const char *worker_id, const struct claimed *s,
                               enum st_err kind, const char *reason, long long min_delay_ms,
                               const struct poll_policy *pp, char *err, size_t errlen)
{
    char id[24], maxs[32], mins[32], jit[32], msg[300];
    const char *p[6];
    enum st_err rc = ST_OK;
    PGresult *res;

    snprintf(id, sizeof(id), "%lld", s->id);
    snprintf(msg, sizeof(msg), "%s: %s", st_err_name(kind), reason);
    snprintf(maxs, sizeof(maxs), "%.3f", (double)pp->retry_max_ms / 1000.0);
    snprintf(mins, sizeof(mins), "%.3f", (double)min_delay_ms / 1000.0);
    snprintf(jit, sizeof(jit), "%.4f", jitter(pp->jitter_pct));
    p[0] = id;
    p[1] = msg;
    p[2] = maxs;
    p[3] = jit;
    p[4] = mins;
    p[5] = worker_id;
    /* Backoff: 30 s doubling per consecutive failure, capped, jittered. */
    res = db_exec_prepared(conn, "record poll failure",
                  "UPDATE shipments SET poll_error_streak = poll_error_streak + 1,"
                  " last_poll_error = $2, last_poll_at = now(), updated_at = now(),"
                  " next_poll_at = CASE WHEN next_poll_at IS NULL THEN NULL ELSE now() +"
                  "   make_interval(secs => greatest($5::float8, least($3::float8,"
                  "   30 * power(2, least(poll_error_streak, 20))) * $4::float8)) END,"
                  " lease_owner = CASE WHEN lease_owner = $6 THEN NULL ELSE lease_owner END,"
                  " lease_until = CASE WHEN lease_owner = $6 THEN NULL ELSE lease_until END"
                  " WHERE id = $1",
                  6, p, PGRES_COMMAND_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    PQclear(res);
    return ST_OK;
}

enum st_err store_reschedule(PGconn *conn, const char *worker_id, const struct claimed *s,
                             long long delay_ms, const char *note, char *err, size_t errlen)
{
    char id[24], secs[32];
    const char *p[4];
    enum st_err rc = ST_OK;
    PGresult *res;

    snprintf(id, sizeof(id), "%lld", s->id);
    snprintf(secs, sizeof(secs), "%.3f", (double)delay_ms / 1000.0);
    p[0] = id;
    p[1] = secs;
    p[2] = note;
    p[3] = worker_id;
    res = db_exec_prepared(conn, "reschedule",
                  "UPDATE shipments SET next_poll_at = now() + make_interval(secs => $2::float8),"
                  " last_poll_at = now(), last_poll_error = $3, updated_at = now(),"
                  " lease_owner = CASE WHEN lease_owner = $4 THEN NULL ELSE lease_owner END,"
                  " lease_until = CASE WHEN lease_owner = $4 THEN NULL ELSE lease_until END"
                  " WHERE id = $1 AND next_poll_at IS NOT NULL",
                  4, p, PGRES_COMMAND_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    PQclear(res);
    return ST_OK;
}

enum st_err store_release(PGconn *conn, const char *worker_id, const long long *ids, size_t n,
                          char *err, size_t errlen)
{
    char *list;
    size_t cap = n * 22 + 3, o = 0;
    const char *p[2];
    enum st_err rc = ST_OK;
    PGresult *res;

    if (n == 0)
        return ST_OK;
    list = malloc(cap);
    if (list == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory");
    list[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(list + o, cap - o, "%s%lld", i ? "," : "", ids[i]);
    snprintf(list + o, cap - o, "}");
    p[0] = list;
    p[1] = worker_id;
    res = db_exec_prepared(conn, "release leases",
                  "UPDATE shipments SET lease_owner = NULL, lease_until = NULL"
                  " WHERE id = ANY($1::bigint[]) AND lease_owner = $2",
                  2, p, PGRES_COMMAND_OK, &rc, err, errlen);
    free(list);
    if (res == NULL)
        return rc;
    PQclear(res);
    return ST_OK;
}
