/*
 * timeline.c - load and print a shipment's timeline.
 */
#include "timeline.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"

/* Column i of row r as a JSON string, or null. */
static json_t *col(const PGresult *res, int r, int i)
{
    return PQgetisnull(res, r, i) ? json_null() : json_string(PQgetvalue(res, r, i));
}

enum st_err timeline_load(PGconn *conn, const char *carrier, const char *tracking_number,
                          json_t **out, char *err, size_t errlen)
{
    const char *p[2];
    enum st_err kind = ST_OK;
    PGresult *res;
    json_t *tl = NULL, *ship, *events, *holds;
    char id[24], zone[72];

    *out = NULL;
    p[0] = tracking_number;
    p[1] = carrier;
    res = db_exec(conn, "find shipment",
                  "SELECT s.id, s.carrier, s.tracking_number, s.order_ref, s.status, s.substatus,"
                  " s.origin_country, s.destination_country, s.customs_state,"
                  " s.edd_original::text, s.edd_current::text, coalesce(r.time_zone, 'UTC'),"
                  " to_char(s.last_event_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                  " to_char(s.next_poll_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                  " s.poll_error_streak, s.last_poll_error, r.locale"
                  " FROM shipments s LEFT JOIN recipients r ON r.id = s.recipient_id"
                  " WHERE s.tracking_number = upper(replace(replace($1, ' ', ''), '-', ''))"
                  "   AND ($2::text IS NULL OR s.carrier = $2) ORDER BY s.id",
                  2, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        return kind;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return st_fail(err, errlen, ST_PERMANENT, "no shipment with tracking number %.48s%s%s",
                       tracking_number, carrier ? " for carrier " : "", carrier ? carrier : "");
    }
    if (PQntuples(res) > 1) {
        PQclear(res);
        return st_fail(err, errlen, ST_PERMANENT,
                       "tracking number %.48s is registered with several carriers: add --carrier",
                       tracking_number);
    }
    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
    snprintf(zone, sizeof(zone), "%s", PQgetvalue(res, 0, 11));
    ship = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:o}",
                     "id", (json_int_t)atoll(id), "carrier", col(res, 0, 1), "tracking_number",
                     col(res, 0, 2), "order_ref", col(res, 0, 3), "status", col(res, 0, 4),
                     "substatus", col(res, 0, 5), "origin_country", col(res, 0, 6),
                     "destination_country", col(res, 0, 7), "customs_state", col(res, 0, 8),
                     "estimated_delivery_original", col(res, 0, 9), "estimated_delivery",
                     col(res, 0, 10), "time_zone", col(res, 0, 11), "last_event_at",
                     col(res, 0, 12), "next_poll_at", col(res, 0, 13), "poll_error_streak",
                     atoi(PQgetvalue(res, 0, 14)), "last_poll_error", col(res, 0, 15), "locale",
                     col(res, 0, 16));
    PQclear(res);
    if (ship == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory");

    /* Render times in the recipient's zone: the session zone drives to_char's OF. */
    p[0] = zone;
    res = db_exec(conn, "set time zone", "SELECT set_config('TimeZone', $1, false)", 1, p,
                  PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL) {
        json_decref(ship);
        return kind;
    }
    PQclear(res);
    p[0] = id;
    res = db_exec(conn, "load events",
                  "SELECT CASE WHEN offset_kind = 'unknown' THEN NULL ELSE"
                  "   to_char(occurred_at, 'YYYY-MM-DD\"T\"HH24:MI:SSOF') END,"
                  " CASE WHEN offset_kind = 'unknown' THEN NULL ELSE"
                  "   to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END,"
                  " to_char(occurred_local, 'YYYY-MM-DD\"T\"HH24:MI:SS'), offset_kind,"
                  " status, substatus, affects_status, customs, raw_code, raw_description,"
                  " city, postal_code, country"
                  " FROM tracking_events WHERE shipment_id = $1 ORDER BY occurred_at, id",
                  1, p, PGRES_TUPLES_OK, &kind, err, errlen);
    PQclear(PQexec(conn, "RESET TimeZone"));
    if (res == NULL) {
        json_decref(ship);
        return kind;
    }
    events = json_array();
    for (int r = 0; events != NULL && r < PQntuples(res); r++) {
        json_t *ev = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:b, s:o, s:o, s:{s:o, s:o, s:o}}",
                               "recipient_time", col(res, r, 0), "utc", col(res, r, 1),
                               "carrier_local_time", col(res, r, 2), "offset", col(res, r, 3),
                               "status", col(res, r, 4), "substatus", col(res, r, 5),
                               "affects_status", PQgetvalue(res, r, 6)[0] == 't', "customs",
                               PQgetvalue(res, r, 7)[0] == 't', "code", col(res, r, 8),
                               "description", col(res, r, 9), "location", "city",
                               col(res, r, 10), "postal_code", col(res, r, 11), "country",
                               col(res, r, 12));
        if (ev == NULL || json_array_append_new(events, ev) != 0) {
            json_decref(events);
            events = NULL;
        }
    }
    PQclear(res);

    p[0] = id;
    res = db_exec(conn, "load customs holds",
                  "SELECT state, reason, actor,"
                  " to_char(opened_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                  " to_char(closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
                  " opened_evidence, closed_evidence, id"
                  " FROM customs_holds WHERE shipment_id = $1 ORDER BY opened_at, id",
                  1, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL) {
        json_decref(ship);
        json_decref(events);
        return kind;
    }
    holds = json_array();
    for (int r = 0; holds != NULL && r < PQntuples(res); r++) {
        json_t *h = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                              (json_int_t)atoll(PQgetvalue(res, r, 7)), "state", col(res, r, 0),
                              "reason", col(res, r, 1), "actor", col(res, r, 2), "opened_at",
                              col(res, r, 3), "closed_at", col(res, r, 4), "evidence",
                              col(res, r, 5), "release_evidence", col(res, r, 6));
        if (h == NULL || json_array_append_new(holds, h) != 0) {
            json_decref(holds);
            holds = NULL;
        }
    }
    PQclear(res);
    if (events == NULL || holds == NULL ||
        (tl = json_pack("{s:o, s:o, s:o}", "shipment", ship, "events", events, "customs_holds",
                        holds)) == NULL) {
        json_decref(ship);
        json_decref(events);
        json_decref(holds);
        return st_fail(err, errlen, ST_RETRY, "out of memory");
    }
    *out = tl;
    return ST_OK;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

void timeline_print_text(FILE *f, const json_t *tl)
{
    const json_t *s = json_object_get(tl, "shipment");
    const json_t *events = json_object_get(tl, "events");
    const json_t *holds = json_object_get(tl, "customs_holds");
    const char *zone = str(s, "time_zone");
    size_t i;
    json_t *v;

    fprintf(f, "Shipment %lld  %s %s", (long long)json_integer_value(json_object_get(s, "id")),
            str(s, "carrier"), str(s, "tracking_number"));
    if (*str(s, "order_ref"))
        fprintf(f, "  order %s", str(s, "order_ref"));
    fprintf(f, "\n%s -> %s  status %s (%s)  customs %s", *str(s, "origin_country") ? str(s, "origin_country") : "?",
            *str(s, "destination_country") ? str(s, "destination_country") : "?",
            str(s, "status"), str(s, "substatus"), str(s, "customs_state"));
    if (*str(s, "estimated_delivery"))
        fprintf(f, "  estimated delivery %s", str(s, "estimated_delivery"));
    fprintf(f, "\nTimes: recipient's zone (%s) and UTC. Carrier's own words in quotes.\n\n", zone);
    fprintf(f, "  %-22s %-20s %-45s %-28s %s\n", "recipient time", "UTC", "status / substatus",
            "location", "carrier words");
    json_array_foreach(events, i, v) {
        char when[32], utc[32], st[64], loc[128];
        const json_t *l = json_object_get(v, "location");

        if (json_is_null(json_object_get(v, "utc"))) {
            const char *lt = str(v, "carrier_local_time");

            snprintf(when, sizeof(when), "%.10s %.5s (local)", lt, lt + (strlen(lt) > 11 ? 11 : 0));
            snprintf(utc, sizeof(utc), "offset unknown");
        } else {
            /* "YYYY-MM-DDTHH:MM:SS+HH" -> "YYYY-MM-DD HH:MM +HH" */
            const char *rt = str(v, "recipient_time");

            snprintf(when, sizeof(when), "%.10s %.5s %s", rt, rt + (strlen(rt) > 11 ? 11 : 0),
                     strlen(rt) > 19 ? rt + 19 : "");
            snprintf(utc, sizeof(utc), "%s", str(v, "utc"));
        }
        snprintf(st, sizeof(st), "%s / %s%s", str(v, "status"), str(v, "substatus"),
                 json_is_true(json_object_get(v, "affects_status")) ? "" : " *");
        snprintf(loc, sizeof(loc), "%s %s %s", str(l, "city"), str(l, "postal_code"),
                 str(l, "country"));
        fprintf(f, "  %-22s %-20s %-45s %-28s \"%s\"\n", when, utc, st, loc,
                str(v, "description"));
    }
    if (json_array_size(events) == 0)
        fputs("  (no carrier events yet)\n", f);
    if (json_array_size(holds) > 0) {
        fputs("\nCustoms holds:\n", f);
        json_array_foreach(holds, i, v)
            fprintf(f, "  %-10s reason %-19s to act: %-9s opened %s%s%s  \"%s\"\n",
                    str(v, "state"), str(v, "reason"), str(v, "actor"), str(v, "opened_at"),
                    *str(v, "closed_at") ? "  closed " : "", str(v, "closed_at"),
                    str(v, "evidence"));
    }
    fputs("\n(* = informational or not yet mapped carrier code: kept, but it does not change the status)\n", f);
}
