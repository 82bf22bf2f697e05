/*
 * customs.c - the customs state machine (customs.h).
 *
 * Wording: an "input" is what one carrier event means for customs
 * (customs_input); the "machine" table says, for the open hold's state and
 * an input, what to do and which state follows. Guards that depend on the
 * hold's reason (a prohibited hold that is sent back is rejected, not
 * returned; a vaguer reason never replaces a precise one) sit in step().
 */
#include "customs.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "wording.h"

/* State of the open hold; CS_NONE when there is none. */
enum cs_state { CS_NONE, CS_PROCESSING, CS_HELD, CS_RELEASED, CS_REJECTED, CS_RETURNED };

/* What an event means for customs. */
enum cs_input {
    CI_NOTHING,     /* not about customs, and no implicit move */
    CI_PROCESSING,  /* customs are looking at it */
    CI_HOLD,        /* customs hold it (a reason, someone must act) */
    CI_RELEASE,     /* customs released it */
    CI_MOVED_ON,    /* out for delivery, at a pickup point, delivered: released implicitly */
    CI_RETURN,      /* on its way back to the shipper */
    CI_REJECT,      /* customs seized, destroyed or refused the goods */
    CI__COUNT
};

enum cs_action {
    CA_IGNORE,      /* nothing changes */
    CA_OPEN,        /* open a hold in state `to` */
    CA_MOVE,        /* the open hold moves to `to` */
    CA_REFINE,      /* held -> held when the reason or actor got more precise */
    CA_CLOSE,       /* close the open hold in state `to` */
    CA_RECORD       /* open and close at once (a release without a hold we saw) */
};

struct cs_rule {
    enum cs_action action;
    enum cs_state to;
    bool again;     /* feed the same input once more from the new state */
};

/* The machine: rows are the open hold's state (none, processing, held). */
static const struct cs_rule machine[3][CI__COUNT] = {
    [CS_NONE] = {
        [CI_PROCESSING] = { CA_OPEN, CS_PROCESSING, false },
        [CI_HOLD] = { CA_OPEN, CS_HELD, false },
        [CI_RELEASE] = { CA_RECORD, CS_RELEASED, false },
        [CI_REJECT] = { CA_OPEN, CS_HELD, true },
    },
    [CS_PROCESSING] = {
        [CI_HOLD] = { CA_MOVE, CS_HELD, false },
        [CI_RELEASE] = { CA_CLOSE, CS_RELEASED, false },
        [CI_MOVED_ON] = { CA_CLOSE, CS_RELEASED, false },
        [CI_RETURN] = { CA_CLOSE, CS_RETURNED, false },
        [CI_REJECT] = { CA_MOVE, CS_HELD, true },
    },
    [CS_HELD] = {
        [CI_HOLD] = { CA_REFINE, CS_HELD, false },
        [CI_RELEASE] = { CA_CLOSE, CS_RELEASED, false },
        [CI_MOVED_ON] = { CA_CLOSE, CS_RELEASED, false },
        [CI_RETURN] = { CA_CLOSE, CS_RETURNED, false },
        [CI_REJECT] = { CA_CLOSE, CS_REJECTED, false },
    },
};

static const char *const state_names[] = {
    [CS_NONE] = "none", [CS_PROCESSING] = "processing", [CS_HELD] = "held",
    [CS_RELEASED] = "released", [CS_REJECTED] = "rejected", [CS_RETURNED] = "returned",
};

/* The open hold as this call knows it. */
struct hold {
    long long id;
    enum cs_state state;            /* CS_NONE: no open hold */
    char reason[24], actor[12];
    char instructions[EV_INSTR_MAX];
};

/* One event, read for customs. */
struct reading {
    enum cs_input input;
    const char *reason, *actor;     /* for CI_HOLD / CI_REJECT */
    const char *instructions;       /* what the carrier tells the recipient to do, or NULL */
};

bool customs_hold_kind(enum st_substatus sub, const char **reason, const char **actor)
{
    switch (sub) {
    case ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED: *reason = "documents_required"; *actor = "recipient"; return true;
    case ST_SUB_CUSTOMS_DUTIES_DUE: *reason = "duties_due"; *actor = "recipient"; return true;
    case ST_SUB_CUSTOMS_INSPECTION: *reason = "inspection"; *actor = "nobody"; return true;
    case ST_SUB_CUSTOMS_PROHIBITED: *reason = "prohibited"; *actor = "shipper"; return true;
    case ST_SUB_CUSTOMS_DELAY: *reason = "unknown"; *actor = "nobody"; return true;
    default: return false;
    }
}

/* What ev means for customs. */
static struct reading customs_input(const struct track_event *ev)
{
    struct reading r = { CI_NOTHING, "processing", "nobody", NULL };
    char folded[EV_DESC_MAX * 2];
    size_t o = 0;
    bool rejected;

    folded[0] = '\0';
    wording_fold_append(folded, sizeof(folded), &o, ev->description);
    rejected = (ev->customs || st_substatus_customs(ev->substatus)) &&
               wording_has(folded, W_REJECTED);
    if (ev->status == ST_STATUS_RETURNING || ev->status == ST_STATUS_RETURNED) {
        r.input = rejected ? CI_REJECT : CI_RETURN;
    } else if (rejected) {
        r.input = CI_REJECT;
    } else if (customs_hold_kind(ev->substatus, &r.reason, &r.actor)) {
        r.input = CI_HOLD;
    } else if (ev->substatus == ST_SUB_CUSTOMS_PROCESSING) {
        r.input = CI_PROCESSING;
    } else if (ev->substatus == ST_SUB_CUSTOMS_RELEASED) {
        r.input = CI_RELEASE;
    } else if (ev->status == ST_STATUS_OUT_FOR_DELIVERY || ev->status == ST_STATUS_DELIVERED ||
               ev->status == ST_STATUS_AVAILABLE_FOR_PICKUP) {
        r.input = CI_MOVED_ON;
    }
    if (r.input == CI_REJECT) {
        r.reason = "prohibited";
        r.actor = "shipper";
    }
    /* instructions: the driver's (DHL remark), else words that point somewhere to act */
    if (r.input == CI_HOLD || r.input == CI_REJECT) {
        if (ev->instructions[0] != '\0')
            r.instructions = ev->instructions;
        else if (strstr(folded, "http://") != NULL || strstr(folded, "https://") != NULL ||
                 strstr(folded, "www.") != NULL)
            r.instructions = ev->description;
    }
    /* a broker on the case: nobody else has to act for a hold without a task */
    if ((r.input == CI_HOLD || r.input == CI_PROCESSING) && strcmp(r.actor, "nobody") == 0 &&
        (ev->customs_broker || wording_has(folded, W_BROKER)))
        r.actor = "broker";
    return r;
}

/* Run one statement; ST_OK or the failure kind. */
static enum st_err exec(PGconn *conn, const char *what, const char *sql, int n,
                        const char *const *p, char *err, size_t errlen)
{
    enum st_err kind = ST_OK;
    PGresult *res = db_exec_prepared(conn, what, sql, n, p, PGRES_COMMAND_OK, &kind, err, errlen);

    if (res == NULL)
        return kind;
    PQclear(res);
    return ST_OK;
}

/* ISO 8601 UTC text of t. */
static void iso_utc(time_t t, char *buf, size_t cap)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Record a move of hold h (from -> to) caused by ev. */
static enum st_err transition(PGconn *conn, long long shipment_id, const struct hold *h,
                              enum cs_state from, enum cs_state to, const struct track_event *ev,
                              char *err, size_t errlen)
{
    char hid[24], sid[24], at[32];
    const char *p[9];

    snprintf(hid, sizeof(hid), "%lld", h->id);
    snprintf(sid, sizeof(sid), "%lld", shipment_id);
    iso_utc(ev->occurred_at, at, sizeof(at));
    p[0] = hid;
    p[1] = sid;
    p[2] = from == CS_NONE ? NULL : state_names[from];
    p[3] = state_names[to];
    p[4] = h->reason;
    p[5] = h->actor;
    p[6] = at;
    p[7] = ev->code;
    p[8] = ev->description;
    return exec(conn, "record customs transition",
                "INSERT INTO customs_transitions (hold_id, shipment_id, from_state, to_state,"
                " reason, actor, at, evidence_code, evidence)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                9, p, err, errlen);
}

/* Open a hold in state `to` from ev; h gets its id. close: closed at once. */
static enum st_err open_hold(PGconn *conn, long long shipment_id, struct hold *h,
                             enum cs_state to, bool close, const struct track_event *ev,
                             char *err, size_t errlen)
{
    char sid[24], at[32];
    const char *p[8];
    enum st_err rc = ST_OK;
    PGresult *res;

    snprintf(sid, sizeof(sid), "%lld", shipment_id);
    iso_utc(ev->occurred_at, at, sizeof(at));
    p[0] = sid;
    p[1] = state_names[to];
    p[2] = h->reason;
    p[3] = h->actor;
    p[4] = at;
    p[5] = ev->description;
    p[6] = h->instructions[0] ? h->instructions : NULL;
    p[7] = close ? "t" : "f";
    res = db_exec_prepared(conn, "open customs hold",
                  "INSERT INTO customs_holds (shipment_id, state, reason, actor, opened_at,"
                  " opened_evidence, instructions, closed_at, closed_evidence)"
                  " VALUES ($1, $2, $3, $4, $5, CASE WHEN $8::boolean THEN '' ELSE $6 END, $7,"
                  "  CASE WHEN $8::boolean THEN $5::timestamptz END,"
                  "  CASE WHEN $8::boolean THEN $6 END)"
                  " RETURNING id",
                  8, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    h->id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return ST_OK;
}

/* The open hold moves to `to` (processing -> held, held -> held). */
static enum st_err move_hold(PGconn *conn, const struct hold *h, enum cs_state to,
                             const struct track_event *ev, char *err, size_t errlen)
{
    char hid[24];
    const char *p[6];

    snprintf(hid, sizeof(hid), "%lld", h->id);
    p[0] = hid;
    p[1] = state_names[to];
    p[2] = h->reason;
    p[3] = h->actor;
    p[4] = h->instructions[0] ? h->instructions : NULL;
    p[5] = ev->description;
    return exec(conn, "move customs hold",
                "UPDATE customs_holds SET reason = $3, actor = $4,"
                " instructions = coalesce($5, instructions),"
                " opened_evidence = CASE WHEN state = 'processing' AND $2 = 'held' THEN $6"
                "   ELSE opened_evidence END, state = $2"
                " WHERE id = $1",
                6, p, err, errlen);
}

/* Close the open hold in state `to`; a held hold released adds its held
 * time (first move into held -> close) to the destination's statistics. */
static enum st_err close_hold(PGconn *conn, const struct hold *h, enum cs_state to,
                              const char *destination, const struct track_event *ev, char *err,
                              size_t errlen)
{
    char hid[24], at[32];
    const char *p[6];
    enum st_err rc;

    snprintf(hid, sizeof(hid), "%lld", h->id);
    iso_utc(ev->occurred_at, at, sizeof(at));
    p[0] = hid;
    p[1] = state_names[to];
    p[2] = at;
    p[3] = ev->description;
    p[4] = h->reason;
    p[5] = h->actor;
    rc = exec(conn, "close customs hold",
              "UPDATE customs_holds SET state = $2, reason = $5, actor = $6,"
              " closed_at = greatest($3::timestamptz, opened_at), closed_evidence = $4"
              " WHERE id = $1",
              6, p, err, errlen);
    if (rc != ST_OK || h->state != CS_HELD || to != CS_RELEASED)
        return rc;
    p[1] = destination;
    return exec(conn, "count customs hold duration",
                "INSERT INTO customs_hold_durations (destination, hours, n)"
                " SELECT $2, least(720, greatest(0, floor(extract(epoch FROM"
                "   h.closed_at - t.held_at) / 3600)))::smallint, 1"
                " FROM customs_holds h, LATERAL (SELECT min(at) AS held_at"
                "   FROM customs_transitions WHERE hold_id = h.id AND to_state = 'held') t"
                " WHERE h.id = $1 AND t.held_at IS NOT NULL"
                " ON CONFLICT (destination, hours) DO UPDATE SET n = customs_hold_durations.n + 1",
                2, p, err, errlen);
}

/* A hold reason other than "unknown" and "processing" says what is wrong. */
static bool precise(const char *reason)
{
    return strcmp(reason, "unknown") != 0 && strcmp(reason, "processing") != 0;
}

/* Feed one reading of ev to the machine for hold h. */
static enum st_err step(PGconn *conn, long long shipment_id, const char *destination,
                        struct hold *h, const struct reading *r, const struct track_event *ev,
                        struct customs_outcome *out, char *err, size_t errlen)
{
    for (int round = 0; round < 2; round++) {
        struct cs_rule rule;
        enum cs_state from = h->state;
        char reason[24], actor[12];
        enum st_err rc = ST_OK;

        assert(h->state <= CS_HELD && r->input < CI__COUNT); /* closed holds are CS_NONE */
        rule = machine[h->state][r->input];

        /* keep what we knew unless the event says more */
        snprintf(reason, sizeof(reason), "%s", h->state == CS_NONE ? "processing" : h->reason);
        snprintf(actor, sizeof(actor), "%s", h->state == CS_NONE ? "nobody" : h->actor);
        if (r->input == CI_HOLD || r->input == CI_REJECT || r->input == CI_PROCESSING) {
            if (h->state == CS_NONE || precise(r->reason) || !precise(reason)) {
                snprintf(reason, sizeof(reason), "%s", r->reason);
                snprintf(actor, sizeof(actor), "%s", r->actor);
            } else if (strcmp(r->actor, "broker") == 0 && strcmp(actor, "nobody") == 0) {
                snprintf(actor, sizeof(actor), "broker");
            }
        }
        /* a prohibited hold that goes back to the shipper was rejected */
        if (rule.action == CA_CLOSE && rule.to == CS_RETURNED && strcmp(reason, "prohibited") == 0)
            rule.to = CS_REJECTED;
        if (r->instructions != NULL)
            snprintf(h->instructions, sizeof(h->instructions), "%s", r->instructions);

        switch (rule.action) {
        case CA_IGNORE:
            return ST_OK;
        case CA_REFINE:
            if (strcmp(reason, h->reason) == 0 && strcmp(actor, h->actor) == 0) {
                /* nothing new to record, but the carrier may have said what to do */
                if (r->instructions != NULL)
                    return move_hold(conn, h, CS_HELD, ev, err, errlen);
                return ST_OK;
            }
            /* fall through */
        case CA_MOVE:
            snprintf(h->reason, sizeof(h->reason), "%s", reason);
            snprintf(h->actor, sizeof(h->actor), "%s", actor);
            rc = move_hold(conn, h, rule.to, ev, err, errlen);
            break;
        case CA_OPEN:
        case CA_RECORD:
            snprintf(h->reason, sizeof(h->reason), "%s", reason);
            snprintf(h->actor, sizeof(h->actor), "%s", actor);
            rc = open_hold(conn, shipment_id, h, rule.to, rule.action == CA_RECORD, ev, err,
                           errlen);
            break;
        case CA_CLOSE:
            snprintf(h->reason, sizeof(h->reason), "%s", reason);
            snprintf(h->actor, sizeof(h->actor), "%s", actor);
            rc = close_hold(conn, h, rule.to, destination, ev, err, errlen);
            break;
        }
        if (rc == ST_OK)
            rc = transition(conn, shipment_id, h, from, rule.to, ev, err, errlen);
        if (rc != ST_OK)
            return rc;
        out->transitions++;
        log_info("customs.transition", shipment_id, NULL, "hold=%lld %s -> %s reason=%s actor=%s"
                 " code=\"%.64s\"", h->id, state_names[from], state_names[rule.to], h->reason,
                 h->actor, ev->code);
        snprintf(out->state, sizeof(out->state), "%s", state_names[rule.to]);
        snprintf(out->reason, sizeof(out->reason), "%s", h->reason);
        snprintf(out->actor, sizeof(out->actor), "%s", h->actor);
        snprintf(out->instructions, sizeof(out->instructions), "%s", h->instructions);
        if (rule.to == CS_HELD && from != CS_HELD) {
            out->held = true;
            out->held_at = ev->occurred_at;
        }
        h->state = rule.to;
        if (rule.action == CA_CLOSE || rule.action == CA_RECORD) {
            h->state = CS_NONE;
            h->id = 0;
            h->instructions[0] = '\0';
        }
        if (!rule.again)
            return ST_OK;
    }
    return ST_OK;
}

/* The open hold of the shipment, if any, into h. */
static enum st_err load_open(PGconn *conn, long long shipment_id, struct hold *h, char *err,
                             size_t errlen)
{
    char sid[24];
    const char *p[1] = { sid };
    enum st_err rc = ST_OK;
    PGresult *res;

    memset(h, 0, sizeof(*h));
    snprintf(sid, sizeof(sid), "%lld", shipment_id);
    res = db_exec_prepared(conn, "read open customs hold",
                  "SELECT id, state, reason, actor, coalesce(instructions, '')"
                  " FROM customs_holds WHERE shipment_id = $1 AND closed_at IS NULL",
                  1, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    if (PQntuples(res) == 1) {
        const char *st = PQgetvalue(res, 0, 1);

        h->id = atoll(PQgetvalue(res, 0, 0));
        h->state = strcmp(st, "held") == 0 ? CS_HELD : CS_PROCESSING;
        snprintf(h->reason, sizeof(h->reason), "%s", PQgetvalue(res, 0, 2));
        snprintf(h->actor, sizeof(h->actor), "%s", PQgetvalue(res, 0, 3));
        snprintf(h->instructions, sizeof(h->instructions), "%s", PQgetvalue(res, 0, 4));
    }
    PQclear(res);
    return ST_OK;
}

enum st_err customs_apply(PGconn *conn, long long shipment_id, const char *destination,
                          const struct track_event *events, const bool *applies, size_t n,
                          struct customs_outcome *out, char *err, size_t errlen)
{
    struct reading *rd;
    struct hold h;
    bool any = false;
    enum st_err rc = ST_OK;

    memset(out, 0, sizeof(*out));
    if (n == 0)
        return ST_OK;
    rd = calloc(n, sizeof(*rd));
    if (rd == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory reading customs events");
    for (size_t i = 0; i < n; i++)
        if (applies[i]) {
            rd[i] = customs_input(&events[i]);
            any = any || rd[i].input != CI_NOTHING;
        }
    /* most polls say nothing about customs: no query then */
    if (any && (rc = load_open(conn, shipment_id, &h, err, errlen)) == ST_OK) {
        for (size_t i = 0; i < n && rc == ST_OK; i++)
            if (applies[i] && rd[i].input != CI_NOTHING)
                rc = step(conn, shipment_id, destination, &h, &rd[i], &events[i], out, err,
                          errlen);
        /* the estimate is revised for a parcel still held, not one already let go */
        if (h.state != CS_HELD)
            out->held = false;
        /* an open hold is the newest: its reason, actor and instructions */
        if (rc == ST_OK && h.state != CS_NONE) {
            snprintf(out->reason, sizeof(out->reason), "%s", h.reason);
            snprintf(out->actor, sizeof(out->actor), "%s", h.actor);
            snprintf(out->instructions, sizeof(out->instructions), "%s", h.instructions);
        }
    }
    free(rd);
    return rc;
}
