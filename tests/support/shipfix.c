/*
 * shipfix.c - a registered shipment and synthetic poll results (shipfix.h).
 */
#include "shipfix.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

void sf_setup(struct shipfix *f, const char *carrier, const char *number, const char *origin,
              const char *destination)
{
    const char *p[4] = { carrier, number, origin, destination };
    PGresult *res;

    memset(f, 0, sizeof(*f));
    for (int i = 0; i < ST_STATUS__COUNT; i++)
        f->policy.interval_ms[i] = st_status_terminal((enum st_status)i) ? -1 : 3600 * 1000;
    f->policy.retry_max_ms = 6 * 3600 * 1000;
    f->policy.jitter_pct = 10;
    f->policy.expire_after_ms = 3650LL * 86400 * 1000; /* fixtures are from any year */
    tdb_create(&f->db, true);
    /* straight into the table: fixture numbers need not pass the check digits */
    res = PQexecParams(f->db.conn,
                       "WITH r AS (INSERT INTO recipients (email, locale)"
                       "           VALUES ('ana@example.com', 'en') RETURNING id)"
                       " INSERT INTO shipments (carrier, tracking_number, origin_country,"
                       "   destination_country, order_ref, recipient_id, lease_owner, lease_until)"
                       " SELECT $1, $2, $3, $4, 'ORD-1', r.id, 'test',"
                       "   now() + interval '5 minutes' FROM r RETURNING id",
                       4, NULL, p, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(f->db.conn));
    f->ship.id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    snprintf(f->ship.carrier, sizeof(f->ship.carrier), "%s", carrier);
    snprintf(f->ship.tracking_number, sizeof(f->ship.tracking_number), "%s", number);
}

void sf_teardown(struct shipfix *f)
{
    tdb_drop(&f->db);
}

struct track_event *sf_add(struct track_result *r, const char *at, const char *country,
                           enum st_status st, enum st_substatus sub, const char *code,
                           const char *desc)
{
    struct track_event *ev = track_result_add(r);

    cr_assert_not_null(ev);
    cr_assert(carrier_parse_time(at, country, NULL, ev), "bad time %s", at);
    ev->status = st;
    ev->substatus = sub;
    ev->affects_status = sub != ST_SUB_UNMAPPED;
    ev->customs = st_substatus_customs(sub);
    snprintf(ev->code, sizeof(ev->code), "%s", code);
    snprintf(ev->description, sizeof(ev->description), "%s", desc);
    snprintf(ev->country, sizeof(ev->country), "%s", country);
    return ev;
}

void sf_store(struct shipfix *f, const struct track_result *r)
{
    struct store_stats st;
    char err[512];

    cr_assert_eq(store_poll_result(f->db.conn, "test", &f->ship, r, &f->policy, &st, err,
                                   sizeof(err)),
                 ST_OK, "%s", err);
}

void sf_parse_fixture(const char *carrier, const char *name, struct track_result *res,
                      char *number, size_t cap)
{
    const struct carrier_def *def = carrier_find(carrier);
    struct carrier_ctx ctx = { .base_url = "https://carrier.test", .api_key = "test-key",
                               .client_id = "id", .client_secret = "secret",
                               .access_token = "token", .language = "en" };
    char path[512], rel[160], err[512];
    const char *numbers[1];
    json_t *want, *nums;
    json_error_t je;
    size_t len;
    char *body;

    cr_assert_not_null(def, "no carrier %s", carrier);
    snprintf(rel, sizeof(rel), "%s/%s.expect.json", carrier, name);
    tu_fixture_path(path, sizeof(path), rel);
    want = json_load_file(path, 0, &je);
    cr_assert_not_null(want, "%s: %s", path, je.text);
    nums = json_object_get(want, "numbers");
    snprintf(number, cap, "%s", json_string_value(nums != NULL ? json_array_get(nums, 0)
                                                               : json_object_get(want, "number")));
    json_decref(want);
    snprintf(rel, sizeof(rel), "%s/%s.response.json", carrier, name);
    tu_fixture_path(path, sizeof(path), rel);
    body = tu_read_file(path, &len);
    cr_assert_not_null(body, "%s", path);
    numbers[0] = number;
    memset(res, 0, sizeof(*res));
    cr_assert_eq(def->ops->parse_response(&ctx, 200, body, len, numbers, 1, res, err,
                                          sizeof(err)),
                 ST_OK, "%s/%s: %s", carrier, name, err);
    cr_assert_eq(res->outcome, TRACK_FOUND, "%s/%s: %s", carrier, name, res->errmsg);
    free(body);
}
