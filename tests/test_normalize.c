/*
 * test_normalize.c - `shiptrack normalize`: saved responses in, JSON lines
 * out, for every carrier; not-found and error bodies print their outcome; a
 * malformed body is a clear error with exit status 1.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Run normalize on a fixture; returns the exit status, out/err filled. */
static int normalize(const char *carrier, const char *fixture, const char *extra, char **out,
                     char **err)
{
    char bin[512], path[512], rel[256];
    char *argv[8] = { bin, "normalize", "--carrier", (char *)carrier, path, NULL, NULL, NULL };

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    snprintf(rel, sizeof(rel), "%s/%s.response.json", carrier, fixture);
    tu_fixture_path(path, sizeof(path), rel);
    if (extra != NULL) {
        argv[5] = "--http-status";
        argv[6] = (char *)extra;
    }
    return tu_run(argv, NULL, out, err);
}

Test(normalize, journeys_print_json_lines_with_every_field)
{
    static const char *const cases[][2] = {
        { "dhl", "customs_cn_de" }, { "ups", "domestic_us" },   { "fedex", "customs_cn_de" },
        { "usps", "domestic" },     { "laposte", "domestic_fr" }, { "track17", "customs_cn_fr" },
    };

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char *out, *err, *save = NULL;
        int lines = 0;

        cr_assert_eq(normalize(cases[c][0], cases[c][1], NULL, &out, &err), 0, "%s/%s: %s",
                     cases[c][0], cases[c][1], err);
        for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            json_t *o = json_loads(l, 0, NULL), *loc;

            cr_assert_not_null(o, "%s: not JSON: %s", cases[c][0], l);
            loc = json_object_get(o, "location");
            cr_expect(json_is_string(json_object_get(o, "occurred_at")), "%s", l);
            cr_expect(json_is_boolean(json_object_get(o, "offset_known")), "%s", l);
            cr_expect(json_is_string(json_object_get(o, "status")), "%s", l);
            cr_expect(json_is_string(json_object_get(o, "substatus")), "%s", l);
            cr_expect(json_is_string(json_object_get(o, "code")), "%s", l);
            cr_expect(json_is_string(json_object_get(o, "description")), "%s", l);
            cr_expect(json_is_object(loc) && json_is_string(json_object_get(loc, "country")), "%s", l);
            cr_expect(json_is_boolean(json_object_get(o, "customs")), "%s", l);
            json_decref(o);
            lines++;
        }
        cr_expect_gt(lines, 3, "%s/%s printed %d events", cases[c][0], cases[c][1], lines);
        free(out);
        free(err);
    }
}

Test(normalize, customs_are_flagged)
{
    char *out, *err;

    cr_assert_eq(normalize("dhl", "customs_cn_de", NULL, &out, &err), 0, "%s", err);
    cr_expect(strstr(out, "\"substatus\":\"customs_duties_due\"") != NULL, "%s", out);
    cr_expect(strstr(out, "\"customs\":true") != NULL, "%s", out);
    free(out);
    free(err);
}

Test(normalize, not_found_prints_the_outcome)
{
    char *out, *err;

    cr_assert_eq(normalize("dhl", "not_found", NULL, &out, &err), 0, "%s", err);
    cr_expect(strstr(out, "\"outcome\":\"not_found\"") != NULL, "%s", out);
    free(out);
    free(err);
    cr_assert_eq(normalize("fedex", "not_found", NULL, &out, &err), 0, "%s", err);
    cr_expect(strstr(out, "\"outcome\":\"not_found\"") != NULL, "%s", out);
    free(out);
    free(err);
}

Test(normalize, malformed_and_error_bodies_exit_1_with_a_reason)
{
    char *out, *err;

    cr_expect_eq(normalize("dhl", "malformed", NULL, &out, &err), 1);
    cr_expect(strstr(err, "dhl: body is not JSON") != NULL, "%s", err);
    free(out);
    free(err);
    cr_expect_eq(normalize("dhl", "rate_limited", "429", &out, &err), 1);
    cr_expect(strstr(err, "retry") != NULL, "%s", err);
    free(out);
    free(err);
}

Test(normalize, usage_errors_exit_2)
{
    char bin[512], *out, *err;
    char *argv1[] = { bin, "normalize", "--carrier", "pigeon", "/dev/null", NULL };
    char *argv2[] = { bin, "normalize", "--carrier", "dhl", NULL };

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    cr_expect_eq(tu_run(argv1, NULL, &out, &err), 2);
    cr_expect(strstr(err, "--carrier must name a supported carrier") != NULL, "%s", err);
    free(out);
    free(err);
    cr_expect_eq(tu_run(argv2, NULL, &out, &err), 2);
    free(out);
    free(err);
}
