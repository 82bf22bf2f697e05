/*
 * test_register.c - registration: every field validated with a message that
 * names it, normalization, sensible defaults, and idempotent storage.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "register.h"
#include "testdb.h"
#include "testutil.h"

struct bad_case {
    char field[16], value[64], want[128]; /* arrays: Criterion copies params across processes */
};

static struct bad_case bad_cases[] = {
    { "carrier", "pigeon", "carrier: \"pigeon\" is not a supported carrier" },
    { "tracking", "3318810010", "tracking number: 3318810010 is not a dhl tracking number: matches DHL Express but check digit" },
    { "tracking", "", "tracking number: missing" },
    { "tracking", "AB", "tracking number: must be 4 to 40" },
    { "tracking", "3318810025'; DROP TABLE shipments;--", "tracking number: only letters and digits" },
    { "tracking", "12345678901234567890123456789012345678901", "tracking number: longer than 40" },
    { "email", "not-an-address", "email: not an address" },
    { "email", "a@b.c\r\nBcc: evil@example.com", "email: not an address" },
    { "email", "two@@example.com", "email: not an address" },
    { "phone", "0612345678", "phone: not an international number" },
    { "phone", "+33 6 12 34 56 78 99 99 99", "phone: not an international number" },
    { "phone", "+33abc", "phone: not an international number" },
    { "locale", "french", "locale: \"french\" is not a language tag" },
    { "locale", "e", "locale:" },
    { "tz", "Mars/Olympus_Mons", "time zone: \"Mars/Olympus_Mons\" is not an IANA zone" },
    { "tz", "../../etc/passwd", "time zone:" },
    { "origin", "XX", "origin: \"XX\" is not an ISO 3166 country code" },
    { "destination", "FRA", "destination: \"FRA\" is not an ISO 3166" },
    { "order", "ORD\n1", "order reference: control characters" },
};

ParameterizedTestParameters(register, rejects)
{
    return cr_make_param_array(struct bad_case, bad_cases, sizeof(bad_cases) / sizeof(bad_cases[0]));
}

ParameterizedTest(struct bad_case *c, register, rejects)
{
    struct registration r;
    char err[256] = "";
    const char *v[9] = { "dhl", "3318810025", "ana@example.com", "+33612345678", "fr",
                         "Europe/Paris", "DE", "FR", "ORD-1" };
    static const char *const fields[] = { "carrier", "tracking", "email", "phone", "locale", "tz",
                                          "origin", "destination", "order" };

    for (int i = 0; i < 9; i++)
        if (strcmp(fields[i], c->field) == 0)
            v[i] = c->value;
    cr_assert_eq(registration_prepare(&r, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8],
                                      err, sizeof(err)), ST_PERMANENT, "%s=%s accepted", c->field,
                 c->value);
    cr_expect(strstr(err, c->want) != NULL, "%s: got \"%s\", want \"%s\"", c->field, err, c->want);
}

Test(register, detects_the_carrier_or_rejects_impossible_numbers)
{
    struct registration r;
    char err[256];

    cr_assert_eq(registration_prepare(&r, NULL, "1Z999AA10123456784", NULL, NULL, NULL, NULL,
                                      NULL, NULL, NULL, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(r.carrier, "ups");
    cr_assert_eq(registration_prepare(&r, "", "3318810025", NULL, NULL, NULL, NULL, NULL, NULL,
                                      NULL, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(r.carrier, "dhl");
    cr_assert_eq(registration_prepare(&r, NULL, "RR123456785FR", NULL, NULL, NULL, NULL, NULL,
                                      NULL, NULL, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(r.carrier, "laposte");
    cr_assert_eq(registration_prepare(&r, NULL, "HELLO", NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                      err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "no carrier issues numbers like HELLO") != NULL, "%s", err);
    cr_assert_eq(registration_prepare(&r, NULL, "1Z999AA10123456783", NULL, NULL, NULL, NULL,
                                      NULL, NULL, NULL, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "check digit") != NULL, "%s", err);
}

Test(register, normalizes_and_defaults)
{
    struct registration r;
    char err[256];

    cr_assert_eq(registration_prepare(&r, "dhl", " 331 881-0025 ", NULL, "+33 6 12-34-56-78",
                                      "pt_br", NULL, "de", "br", NULL, err, sizeof(err)), ST_OK,
                 "%s", err);
    cr_expect_str_eq(r.tracking_number, "3318810025");
    cr_expect_str_eq(r.phone, "+33612345678");
    cr_expect_str_eq(r.locale, "pt-BR");
    cr_expect_str_eq(r.origin, "DE");
    cr_expect_str_eq(r.destination, "BR");
    cr_expect_str_eq(r.time_zone, "UTC", "Brazil has several zones: no guess");

    cr_assert_eq(registration_prepare(&r, "dhl", "3318810025", NULL, NULL, NULL, NULL, NULL, "FR",
                                      NULL, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(r.time_zone, "Europe/Paris");
    cr_expect_str_eq(r.locale, "en");
}

Test(register, store_is_idempotent)
{
    struct testdb db;
    struct registration r;
    char err[256], *s;
    long long id1, id2;
    bool existed;

    tdb_create(&db, true);
    cr_assert_eq(registration_prepare(&r, "dhl", "3318810025", "ana@example.com", "+33612345678",
                                      "fr", "Europe/Paris", "DE", "FR", "ORD-7", err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_assert_eq(registration_store(db.conn, &r, &id1, &existed, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect(!existed);
    cr_assert_eq(registration_store(db.conn, &r, &id2, &existed, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect(existed);
    cr_expect_eq(id1, id2);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments"), 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM recipients"), 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM preferences WHERE consent"), 2);
    s = tdb_scalar(db.conn, "SELECT status || ' ' || destination_country || ' ' || order_ref FROM shipments");
    cr_expect_str_eq(s, "pending FR ORD-7");
    free(s);
    tdb_drop(&db);
}

Test(register, cli_reports_field_and_exit_2)
{
    char bin[512], *out, *err;
    char *argv[] = { bin, "register", "--carrier", "dhl", "--tracking", "3318810025",
                     "--email", "nobody", NULL };

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    cr_expect_eq(tu_run(argv, NULL, &out, &err), 2);
    cr_expect(strstr(err, "email: not an address") != NULL, "%s", err);
    free(out);
    free(err);
}
