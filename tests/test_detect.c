/*
 * test_detect.c - tracking-number detection against the conformance data.
 *
 * The conformance suite reads shared/conformance/tracking-numbers/
 * {ups,fedex,usps,dhl,s10}.json at test time and runs one parameterized case
 * per (file, format, test number, valid?): a valid number must come out as a
 * candidate of that format and courier (S10: the post of its country, or
 * track17), an invalid one must not produce that format. The other tests
 * cover normalization, garbage input, detect_valid_for() and the printers.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "testutil.h"

/* Most cases the loader takes; the data holds about 150. */
#define CASE_MAX 1024

/* Candidates asked for per detection: more than any number can produce. */
#define CAND_MAX 32

/* One conformance case. Fixed-size fields: the array crosses into the test
 * process through Criterion's shared arena, so it must hold no pointers. */
struct tcase {
    char file[16];     /* spec file stem: "ups", "fedex", "usps", "dhl", "s10" */
    char format[64];   /* our format name for the spec's format */
    char number[160];  /* the test number as written in the spec */
    bool valid;        /* listed under "valid" (else "invalid") */
    bool checksum;     /* the spec format has a check digit */
    char error[192];   /* non-empty: loading failed; the case reports it */
};

/* The spec files, with the carrier id their couriers map to (NULL for S10:
 * decided by the country code). */
static const struct {
    const char *stem;    /* file name without .json */
    const char *carrier; /* our carrier id */
    size_t min_cases;    /* the data held this many cases when written */
} spec_files[] = {
    { "ups", "ups", 20 },
    { "fedex", "fedex", 43 },
    { "usps", "usps", 42 },
    { "dhl", "dhl", 32 },
    { "s10", NULL, 6 },
};

#define SPEC_FILES (sizeof spec_files / sizeof spec_files[0])

/* Our display name for a spec format name (most are the same). */
static const char *our_format(const char *spec_name)
{
    if (strcmp(spec_name, "UPS") == 0)
        return "UPS 1Z";
    if (strcmp(spec_name, "S10") == 0)
        return "S10 (UPU)";
    return spec_name;
}

/* Store a case in out[*n] (when out is non-NULL) and count it. */
static void add_case(struct tcase *out, size_t *n, const char *stem, const char *format,
                     const char *number, bool valid, bool checksum, const char *error)
{
    if (out != NULL && *n < CASE_MAX) {
        struct tcase *c = &out[*n];

        memset(c, 0, sizeof *c);
        snprintf(c->file, sizeof c->file, "%s", stem);
        snprintf(c->format, sizeof c->format, "%s", format);
        snprintf(c->number, sizeof c->number, "%s", number);
        c->valid = valid;
        c->checksum = checksum;
        snprintf(c->error, sizeof c->error, "%s", error);
        if (error[0] == '\0' && (strlen(number) >= sizeof c->number ||
                                 strlen(format) >= sizeof c->format))
            snprintf(c->error, sizeof c->error, "%s: test number or format name too long", stem);
    }
    (*n)++;
}

/* Add the cases of one "valid"/"invalid" list of a format. */
static void add_list(struct tcase *out, size_t *n, const char *stem, const char *format,
                     json_t *list, bool valid, bool checksum)
{
    size_t i;
    json_t *v;

    if (!json_is_array(list)) {
        add_case(out, n, stem, format, "", valid, checksum, "test_numbers list is not an array");
        return;
    }
    json_array_foreach(list, i, v) {
        if (!json_is_string(v))
            add_case(out, n, stem, format, "", valid, checksum, "test number is not a string");
        else
            add_case(out, n, stem, format, json_string_value(v), valid, checksum, "");
    }
}

/* Load every case of every spec file into out[CASE_MAX] (or just count them
 * when out is NULL); per_file[SPEC_FILES] gets the count per file. A file
 * that cannot be loaded adds one case carrying the error. */
static size_t load_cases(struct tcase *out, size_t per_file[SPEC_FILES])
{
    size_t n = 0;

    for (size_t f = 0; f < SPEC_FILES; f++) {
        char rel[128], path[1024], msg[192];
        json_error_t jerr;
        json_t *root, *formats, *fmt;
        size_t before = n, i;

        snprintf(rel, sizeof rel, "conformance/tracking-numbers/%s.json", spec_files[f].stem);
        tu_shared_path(path, sizeof path, rel);
        root = json_load_file(path, 0, &jerr);
        formats = root != NULL ? json_object_get(root, "tracking_numbers") : NULL;
        if (!json_is_array(formats)) {
            snprintf(msg, sizeof msg, "%.60s: %.120s", rel,
                     root == NULL ? jerr.text : "no tracking_numbers array");
            add_case(out, &n, spec_files[f].stem, "", "", false, false, msg);
        } else {
            json_array_foreach(formats, i, fmt) {
                const char *name = json_string_value(json_object_get(fmt, "name"));
                json_t *tn = json_object_get(fmt, "test_numbers");
                json_t *validation = json_object_get(fmt, "validation");
                bool checksum = json_object_get(validation, "checksum") != NULL;

                if (name == NULL || !json_is_object(tn)) {
                    add_case(out, &n, spec_files[f].stem, "", "", false, false,
                             "format without name or test_numbers");
                    continue;
                }
                add_list(out, &n, spec_files[f].stem, our_format(name),
                         json_object_get(tn, "valid"), true, checksum);
                if (json_object_get(tn, "invalid") != NULL)
                    add_list(out, &n, spec_files[f].stem, our_format(name),
                             json_object_get(tn, "invalid"), false, checksum);
            }
        }
        json_decref(root);
        per_file[f] = n - before;
    }
    return n;
}

/* The carrier a valid case must map to. */
static const char *expected_carrier(const struct tcase *tc, const struct detect_candidate *c)
{
    for (size_t f = 0; f < SPEC_FILES; f++) {
        if (strcmp(spec_files[f].stem, tc->file) != 0)
            continue;
        if (spec_files[f].carrier != NULL)
            return spec_files[f].carrier;
        if (strcmp(c->country, "US") == 0)
            return "usps";
        if (strcmp(c->country, "FR") == 0)
            return "laposte";
        return "track17";
    }
    return "?";
}

/* "carrier/format, ..." of the candidates, for failure messages. */
static const char *describe(const struct detect_candidate *c, size_t n, char *buf, size_t cap)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < cap; i++) {
        int k = snprintf(buf + used, cap - used, "%s%s/%s", i > 0 ? ", " : "", c[i].carrier,
                         c[i].format);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    return n == 0 ? "none" : buf;
}

/* Free the parameter array (allocated with cr_malloc). */
static void free_cases(struct criterion_test_params *params)
{
    cr_free(params->params);
}

ParameterizedTestParameters(detect, conformance)
{
    size_t per_file[SPEC_FILES];
    struct tcase *cases = cr_malloc(sizeof *cases * CASE_MAX);
    size_t n;

    if (cases == NULL)
        return cr_make_param_array(struct tcase, NULL, 0);
    n = load_cases(cases, per_file);
    if (n > CASE_MAX)
        n = CASE_MAX; /* the count test fails in that case */
    return cr_make_param_array(struct tcase, cases, n, free_cases);
}

ParameterizedTest(struct tcase *tc, detect, conformance)
{
    struct detect_candidate c[CAND_MAX];
    char why[512], seen[1024];
    const struct detect_candidate *hit = NULL;
    size_t n;

    cr_assert_str_empty(tc->error, "loading %s: %s", tc->file, tc->error);
    n = detect_tracking_number(tc->number, c, CAND_MAX, why, sizeof why);
    for (size_t i = 0; i < n && hit == NULL; i++)
        if (!c[i].fallback || strcmp(c[i].format, "S10 (UPU)") == 0)
            if (strcmp(c[i].format, tc->format) == 0)
                hit = &c[i];
    if (!tc->valid) {
        cr_assert_null(hit, "%s: invalid %s number \"%s\" was detected as %s", tc->file,
                       tc->format, tc->number, describe(c, n, seen, sizeof seen));
        return;
    }
    cr_assert_not_null(hit, "%s: valid %s number \"%s\" not detected as %s (got: %s; why: %s)",
                       tc->file, tc->format, tc->number, tc->format,
                       describe(c, n, seen, sizeof seen), why);
    cr_assert_str_eq(hit->carrier, expected_carrier(tc, hit), "%s: \"%s\" (%s, country %s)",
                     tc->file, tc->number, tc->format, hit->country);
    cr_assert_eq(hit->check, tc->checksum ? DETECT_CHECK_VALID : DETECT_CHECK_NONE,
                 "\"%s\": check kind of %s", tc->number, tc->format);
    if (strcmp(tc->file, "s10") == 0) {
        size_t len = strlen(hit->normalized);

        cr_assert_geq(len, 2);
        cr_assert_str_eq(hit->country, hit->normalized + len - 2, "\"%s\": S10 country",
                         tc->number);
    }
    /* Every valid number is followed by 17TRACK too. */
    cr_assert_str_eq(c[n - 1].carrier, "track17", "\"%s\": last candidate", tc->number);
    cr_assert(c[n - 1].fallback);
}

Test(detect, conformance_case_count)
{
    size_t per_file[SPEC_FILES];
    size_t total = load_cases(NULL, per_file);

    for (size_t f = 0; f < SPEC_FILES; f++)
        cr_assert_geq(per_file[f], spec_files[f].min_cases, "%s.json: %zu cases, want >= %zu",
                      spec_files[f].stem, per_file[f], spec_files[f].min_cases);
    cr_assert_geq(total, 140, "only %zu conformance cases loaded", total);
    cr_assert_leq(total, CASE_MAX, "%zu cases exceed CASE_MAX", total);
}

/* Detect `number` into c[CAND_MAX]; returns the count. */
static size_t run_detect(const char *number, struct detect_candidate *c, char *why, size_t whylen)
{
    return detect_tracking_number(number, c, CAND_MAX, why, whylen);
}

Test(detect, normalizes_spaces_dashes_and_case)
{
    struct detect_candidate c[CAND_MAX];
    char why[256];
    size_t n = run_detect(" 1z5r-8939 0357-567127 ", c, why, sizeof why);

    cr_assert_geq(n, 2);
    cr_assert_str_eq(c[0].carrier, "ups");
    cr_assert_str_eq(c[0].format, "UPS 1Z");
    cr_assert_eq(c[0].check, DETECT_CHECK_VALID);
    cr_assert_str_eq(c[0].normalized, "1Z5R89390357567127");
    cr_assert_str_eq(c[0].country, "");
    cr_assert_not(c[0].fallback);
    cr_assert_str_empty(why);

    n = run_detect("rb-123-456-785-fr", c, why, sizeof why);
    cr_assert_geq(n, 1);
    cr_assert_str_eq(c[0].carrier, "laposte");
    cr_assert_str_eq(c[0].format, "S10 (UPU)");
    cr_assert_str_eq(c[0].normalized, "RB123456785FR");
    cr_assert_str_eq(c[0].country, "FR");
}

Test(detect, garbage_is_rejected_with_a_reason)
{
    struct detect_candidate c[CAND_MAX];
    char why[256], longnum[201];
    static const struct {
        const char *number; /* input */
        const char *reason; /* substring of why */
    } cases[] = {
        { "", "empty" },
        { " - -", "empty" },
        { "hello", "does not match any known" },
        { "1Z5R8939\t0357567127", "control character 0x09" },
        { "\x01", "control character 0x01" },
        { "1Z5R89390357567127\n", "control character 0x0a" },
        { "1Z5R8939.0357567127", "unexpected character '.'" },
        { "1Z5R8939\xc3\xa9" "0357567127", "non-ASCII" },
        { "123456789012345678901234567890123456789012345678", "too long" },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(run_detect(cases[i].number, c, why, sizeof why), 0, "input #%zu", i);
        cr_assert_not_null(strstr(why, cases[i].reason), "input #%zu: why = \"%s\"", i, why);
    }
    memset(longnum, '1', 200);
    longnum[200] = '\0';
    cr_assert_eq(run_detect(longnum, c, why, sizeof why), 0);
    cr_assert_not_null(strstr(why, "too long"), "why = \"%s\"", why);
    cr_assert_eq(run_detect(NULL, c, why, sizeof why), 0);
    cr_assert_str_not_empty(why);
    /* No why buffer, or a tiny one, must still be safe. */
    cr_assert_eq(detect_tracking_number("hello", c, CAND_MAX, NULL, 0), 0);
    cr_assert_eq(detect_tracking_number("hello", c, CAND_MAX, why, 1), 0);
    cr_assert_str_empty(why);
    cr_assert_eq(detect_tracking_number("hello", c, CAND_MAX, why, 5), 0);
    cr_assert_eq(strlen(why), 4);
}

Test(detect, check_digit_failure_is_explained)
{
    struct detect_candidate c[CAND_MAX];
    char why[256];

    cr_assert_eq(run_detect("1Z5R89390357567128", c, why, sizeof why), 0);
    cr_assert_str_eq(why, "matches UPS 1Z but check digit is 8, expected 7");
    cr_assert_eq(run_detect("RB123456786US", c, why, sizeof why), 0);
    cr_assert_str_eq(why, "matches S10 (UPU) but check digit is 6, expected 5");
    cr_assert_eq(run_detect("RB123456785XX", c, why, sizeof why), 0);
    cr_assert_not_null(strstr(why, "XX has no UPU postal operator"), "why = \"%s\"", why);
}

Test(detect, ordering_and_fallback)
{
    struct detect_candidate c[CAND_MAX];
    char why[256];
    size_t n;

    /* US post first, 17TRACK as the fallback. */
    n = run_detect("RB123456785US", c, why, sizeof why);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(c[0].carrier, "usps");
    cr_assert_not(c[0].fallback);
    cr_assert_str_eq(c[1].carrier, "track17");
    cr_assert_str_eq(c[1].format, "S10 (UPU)");
    cr_assert_str_eq(c[1].country, "US");
    cr_assert(c[1].fallback);

    /* Another post: 17TRACK is the S10 carrier, ahead of a shape without a
     * check digit (DHL E-Commerce also takes the CN prefix). */
    n = run_detect("CN123456785GB", c, why, sizeof why);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(c[0].carrier, "track17");
    cr_assert_str_eq(c[0].format, "S10 (UPU)");
    cr_assert_str_eq(c[0].country, "GB");
    cr_assert_eq(c[0].check, DETECT_CHECK_VALID);
    cr_assert_str_eq(c[1].carrier, "dhl");
    cr_assert_str_eq(c[1].format, "DHL E-Commerce");
    cr_assert_eq(c[1].check, DETECT_CHECK_NONE);

    /* Colissimo, no check digit. */
    n = run_detect("8D00432154798", c, why, sizeof why);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(c[0].carrier, "laposte");
    cr_assert_eq(c[0].check, DETECT_CHECK_NONE);

    /* max caps the output. */
    cr_assert_eq(detect_tracking_number("RB123456785US", c, 1, why, sizeof why), 1);
    cr_assert_str_eq(c[0].carrier, "usps");
    cr_assert_eq(detect_tracking_number("RB123456785US", NULL, 0, why, sizeof why), 0);
}

Test(detect, valid_for_named_carrier)
{
    char why[256];

    cr_assert(detect_valid_for("ups", "1Z5R89390357567127", why, sizeof why), "%s", why);
    cr_assert_str_empty(why);
    cr_assert(detect_valid_for("ups", "k 150 623 562 0", why, sizeof why), "%s", why);
    cr_assert(detect_valid_for("fedex", "986578788855", why, sizeof why), "%s", why);
    cr_assert(detect_valid_for("dhl", "3318810025", why, sizeof why), "%s", why);
    cr_assert(detect_valid_for("usps", "9400111206206406260787", why, sizeof why), "%s", why);
    cr_assert(detect_valid_for("laposte", "RB123456785FR", why, sizeof why), "%s", why);
    cr_assert(detect_valid_for("laposte", "8D00432154798", why, sizeof why), "%s", why);
    /* Destination posts track inbound S10 items. */
    cr_assert(detect_valid_for("usps", "RB123456785GB", why, sizeof why), "%s", why);
    cr_assert(detect_valid_for("laposte", "RB123456785US", why, sizeof why), "%s", why);
    /* 17TRACK: anything detected, or any plausible number. */
    cr_assert(detect_valid_for("track17", "RB123456785CV", why, sizeof why), "%s", why);
    cr_assert(detect_valid_for("track17", "1Z5R89390357567127", why, sizeof why), "%s", why);
    cr_assert(detect_valid_for("track17", "LP00123456789012", why, sizeof why), "%s", why);

    cr_assert_not(detect_valid_for("fedex", "1Z5R89390357567127", why, sizeof why));
    cr_assert_not_null(strstr(why, "not a fedex tracking number"), "why = \"%s\"", why);
    cr_assert_not(detect_valid_for("dhl", "RB123456785GB", why, sizeof why));
    cr_assert_not(detect_valid_for("ups", "1Z5R89390357567128", why, sizeof why));
    cr_assert_not_null(strstr(why, "check digit is 8, expected 7"), "why = \"%s\"", why);
    cr_assert_not(detect_valid_for("track17", "1Z5R89390357567128", why, sizeof why));
    cr_assert_not_null(strstr(why, "check digit"), "why = \"%s\"", why);
    cr_assert_not(detect_valid_for("track17", "HELLOWORLD", why, sizeof why));
    cr_assert_not(detect_valid_for("track17", "12345", why, sizeof why));
    cr_assert_not(detect_valid_for("ups", "", why, sizeof why));
    cr_assert_not_null(strstr(why, "empty"), "why = \"%s\"", why);
    cr_assert_not(detect_valid_for("bogus", "1Z5R89390357567127", why, sizeof why));
    cr_assert_not_null(strstr(why, "unknown carrier"), "why = \"%s\"", why);
    cr_assert_not(detect_valid_for(NULL, "1Z5R89390357567127", why, sizeof why));
    cr_assert_not(detect_valid_for("ups", "1Z5R89390357567127!", NULL, 0));
}

/* Run detect_print into a string (caller frees). */
static char *print_to_string(const char *number, bool json)
{
    struct detect_candidate c[CAND_MAX];
    char why[256], *buf = NULL;
    size_t len = 0, n;
    FILE *f = open_memstream(&buf, &len);

    cr_assert_not_null(f);
    n = run_detect(number, c, why, sizeof why);
    detect_print(f, number, c, n, json);
    cr_assert_eq(fclose(f), 0);
    return buf;
}

Test(detect, json_output_parses)
{
    char *out = print_to_string("rb 123456785 us", true);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr), *cands, *first;

    cr_assert_not_null(root, "%s: %s", out, jerr.text);
    cr_assert_str_eq(json_string_value(json_object_get(root, "number")), "rb 123456785 us");
    cr_assert_str_eq(json_string_value(json_object_get(root, "normalized")), "RB123456785US");
    cands = json_object_get(root, "candidates");
    cr_assert_eq(json_array_size(cands), 2, "%s", out);
    first = json_array_get(cands, 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "carrier")), "usps");
    cr_assert_str_eq(json_string_value(json_object_get(first, "format")), "S10 (UPU)");
    cr_assert_str_eq(json_string_value(json_object_get(first, "check")), "valid");
    cr_assert_str_eq(json_string_value(json_object_get(first, "country")), "US");
    cr_assert(json_is_false(json_object_get(first, "fallback")));
    cr_assert(json_is_true(json_object_get(json_array_get(cands, 1), "fallback")));
    json_decref(root);
    free(out);

    out = print_to_string("986578788855", true);
    root = json_loads(out, 0, &jerr);
    cr_assert_not_null(root, "%s: %s", out, jerr.text);
    first = json_array_get(json_object_get(root, "candidates"), 0);
    cr_assert(json_is_null(json_object_get(first, "country")), "%s", out);
    json_decref(root);
    free(out);

    /* Hostile input still gives valid JSON, with no candidates. */
    out = print_to_string("a\"b\\c\x01\xff", true);
    root = json_loads(out, 0, &jerr);
    cr_assert_not_null(root, "%s: %s", out, jerr.text);
    cr_assert_str_eq(json_string_value(json_object_get(root, "number")), "a\"b\\c\x01\xef\xbf\xbd");
    cr_assert(json_is_null(json_object_get(root, "normalized")));
    cr_assert_eq(json_array_size(json_object_get(root, "candidates")), 0);
    json_decref(root);
    free(out);
}

Test(detect, text_output)
{
    char *out = print_to_string("1Z5R89390357567127", false);

    cr_assert_not_null(strstr(out, "1Z5R89390357567127: 2 candidates\n"), "%s", out);
    cr_assert_not_null(strstr(out, "ups"), "%s", out);
    cr_assert_not_null(strstr(out, "UPS 1Z"), "%s", out);
    cr_assert_not_null(strstr(out, "track17"), "%s", out);
    cr_assert_not_null(strstr(out, "(fallback)"), "%s", out);
    free(out);

    out = print_to_string("bad\x1b[31m", false);
    cr_assert_str_eq(out, "bad?[31m: no known tracking-number format\n");
    free(out);
}
