/*
 * customs.c - open, escalate and close customs holds from events.
 */
#include "customs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

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

/* Run one statement for a hold change; params as given. */
static enum st_err exec(PGconn *conn, const char *what, const char *sql, int n,
                        const char *const *p, char *err, size_t errlen)
{
    enum st_err kind = ST_OK;
    PGresult *res = db_exec(conn, what, sql, n, p, PGRES_COMMAND_OK, &kind, err, errlen);

    if (res == NULL)
        return kind;
    PQclear(res);
    return ST_OK;
}

enum st_err customs_apply(PGconn *conn, long long shipment_id, const struct track_event *events,
                          const bool *is_new, size_t n, char *state_out, size_t state_cap,
                          char *err, size_t errlen)
{
    char id[24], at[32], open_state[16] = "";
    const char *p[5];
    enum st_err rc = ST_OK;
    bool any = false;
    PGresult *res;

    state_out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (is_new[i] && st_substatus_customs(events[i].substatus))
            any = true;
    if (!any)
        return ST_OK;

    snprintf(id, sizeof(id), "%lld", shipment_id);
    p[0] = id;
    res = db_exec(conn, "read open customs hold",
                  "SELECT state FROM customs_holds WHERE shipment_id = $1 AND closed_at IS NULL",
                  1, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL)
        return rc;
    if (PQntuples(res) == 1)
        snprintf(open_state, sizeof(open_state), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    for (size_t i = 0; i < n && rc == ST_OK; i++) {
        const struct track_event *ev = &events[i];
        const char *reason, *actor;
        struct tm tm;

        if (!is_new[i] || !st_substatus_customs(ev->substatus))
            continue;
        gmtime_r(&ev->occurred_at, &tm);
        strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
        p[1] = at;
        p[2] = ev->description;
        if (customs_hold_kind(ev->substatus, &reason, &actor)) {
            p[3] = reason;
            p[4] = actor;
            if (open_state[0] == '\0')
                rc = exec(conn, "open customs hold",
                          "INSERT INTO customs_holds (shipment_id, state, reason, actor, opened_at,"
                          " opened_evidence) VALUES ($1, 'held', $4, $5, $2, $3)",
                          5, p, err, errlen);
            else { /* processing -> held, or a held hold that learned more */
                const char *q[4] = { id, reason, actor, ev->description };

                rc = exec(conn, "escalate customs hold",
                          "UPDATE customs_holds SET state = 'held', reason = $2, actor = $3,"
                          " opened_evidence = CASE WHEN state = 'processing' THEN $4"
                          "   ELSE opened_evidence END"
                          " WHERE shipment_id = $1 AND closed_at IS NULL",
                          4, q, err, errlen);
            }
            snprintf(open_state, sizeof(open_state), "held");
        } else if (ev->substatus == ST_SUB_CUSTOMS_PROCESSING) {
            if (open_state[0] == '\0') {
                rc = exec(conn, "open customs processing",
                          "INSERT INTO customs_holds (shipment_id, state, reason, actor, opened_at,"
                          " opened_evidence) VALUES ($1, 'processing', 'processing', 'nobody', $2, $3)",
                          3, p, err, errlen);
                snprintf(open_state, sizeof(open_state), "processing");
            }
        } else if (ev->substatus == ST_SUB_CUSTOMS_RELEASED) {
            if (open_state[0] == '\0') /* released without a hold we saw: keep the record */
                rc = exec(conn, "record customs release",
                          "INSERT INTO customs_holds (shipment_id, state, reason, actor, opened_at,"
                          " closed_at, opened_evidence, closed_evidence)"
                          " VALUES ($1, 'released', 'processing', 'nobody', $2, $2, '', $3)",
                          3, p, err, errlen);
            else
                rc = exec(conn, "close customs hold",
                          "UPDATE customs_holds SET state = 'released',"
                          " closed_at = greatest($2::timestamptz, opened_at), closed_evidence = $3"
                          " WHERE shipment_id = $1 AND closed_at IS NULL",
                          3, p, err, errlen);
            open_state[0] = '\0';
            snprintf(state_out, state_cap, "released");
            continue;
        }
        snprintf(state_out, state_cap, "%s", open_state);
    }
    return rc;
}
