/*
 * test_log.c - log lines: level gate, text and JSON shapes, shipment id and
 * carrier on the line, e-mail addresses and phone numbers masked.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static char *capture(const char *level, const char *format, void (*emit)(void))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    cr_assert_not_null(f);
    log_setup(level, format, f);
    emit();
    fclose(f);
    log_setup("info", "text", NULL);
    return buf;
}

static void emit_mix(void)
{
    log_debug("test.debug", 0, NULL, "hidden at info");
    log_info("poll.done", 42, "dhl", "notified ana.maria@example.com and +33 6 12 34 56 78");
    log_error("db.connect", 0, NULL, "line one\nline two");
}

Test(log, text_lines_gate_and_mask)
{
    char *out = capture("info", "text", emit_mix);

    cr_expect(strstr(out, "hidden at info") == NULL, "%s", out);
    cr_expect(strstr(out, "info  poll.done shipment=42 carrier=dhl") != NULL, "%s", out);
    cr_expect(strstr(out, "ana.maria@example.com") == NULL, "email leaked: %s", out);
    cr_expect(strstr(out, "a***@e***.com") != NULL, "%s", out);
    cr_expect(strstr(out, "12 34 56") == NULL, "phone leaked: %s", out);
    cr_expect(strstr(out, "+33 * ** ** ** 78") != NULL, "%s", out);
    cr_expect(strstr(out, "line one line two") != NULL, "newline kept: %s", out);
    free(out);
}

Test(log, json_lines_parse)
{
    char *out = capture("debug", "json", emit_mix), *line, *save = NULL;
    int n = 0;

    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);

        cr_assert_not_null(o, "not JSON: %s (%s)", line, e.text);
        cr_expect_not_null(json_object_get(o, "ts"));
        cr_expect_not_null(json_object_get(o, "level"));
        cr_expect_not_null(json_object_get(o, "event"));
        if (strcmp(json_string_value(json_object_get(o, "event")), "poll.done") == 0) {
            cr_expect_eq(json_integer_value(json_object_get(o, "shipment_id")), 42);
            cr_expect_str_eq(json_string_value(json_object_get(o, "carrier")), "dhl");
        }
        json_decref(o);
        n++;
    }
    cr_expect_eq(n, 3);
    free(out);
}

Test(log, mask_leaves_tracking_numbers_alone)
{
    char out[256];

    /* tracking numbers are long digit runs, but not phone numbers */
    log_mask_pii("polled 3318810025 and JJD0099999999", out, sizeof(out));
    cr_expect_str_eq(out, "polled 3318810025 and JJD0099999999");
    log_mask_pii("mail x@y", out, sizeof(out)); /* no dot: not an address */
    cr_expect_str_eq(out, "mail x@y");
    log_mask_pii("to <bob@mail.example.org>", out, sizeof(out));
    cr_expect_str_eq(out, "to <b***@m***.org>");
}
