/*
 * test_mustache.c - Criterion suite for the mustache renderer (worker/mustache.c).
 *
 * Two parts. The spec suite runs every case of the mustache spec files in
 * shared/conformance/mustache-spec/ (comments, delimiters, interpolation,
 * inverted, partials, sections) as one parameter each, named
 * "<file>: <case name>" so that a failure says which case broke; a count test
 * per file makes sure that an empty or unreadable file cannot pass. The spec
 * expects HTML escaping, so it runs with html_escape = true.
 *
 * The rest are our own cases: error messages and their locations, the output,
 * depth and work caps, text mode, missing data, and byte transparency.
 */
#include "mustache.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The spec files the suite runs, without ".json". */
static const char *const spec_files[] = {"comments", "delimiters", "interpolation",
                                         "inverted", "partials", "sections"};
#define N_SPEC_FILES (sizeof(spec_files) / sizeof(spec_files[0]))

/* One spec case, identified by file and index (no pointers: parameters cross a fork). */
struct spec_case {
    char file[32];  /* spec file name without ".json" */
    size_t index;   /* position in the file's "tests" array */
    char name[192]; /* "<file>: <case name>", for messages */
};

/* Load a spec file's JSON or return NULL (usable outside a test: no asserts). */
static json_t *load_spec_quiet(const char *file)
{
    char rel[128], path[4096];

    snprintf(rel, sizeof(rel), "conformance/mustache-spec/%s.json", file);
    tu_shared_path(path, sizeof(path), rel);
    return json_load_file(path, 0, NULL);
}

/* Load a spec file's "tests" array inside a test (asserts it is there); the
 * caller owns the returned root and gets the array in *tests. */
static json_t *load_spec(const char *file, json_t **tests)
{
    char rel[128], path[4096];
    json_error_t jerr;
    json_t *root;
    char *text;
    size_t len;

    snprintf(rel, sizeof(rel), "conformance/mustache-spec/%s.json", file);
    text = tu_read_file(tu_shared_path(path, sizeof(path), rel), &len);
    root = json_loadb(text, len, 0, &jerr);
    free(text);
    cr_assert_not_null(root, "%s: bad JSON: %s (line %d)", path, jerr.text, jerr.line);
    *tests = json_object_get(root, "tests");
    cr_assert(json_is_array(*tests), "%s: no \"tests\" array", path);
    return root;
}

/* Free the parameter array handed to Criterion. */
static void free_cases(struct criterion_test_params *params)
{
    cr_free(params->params);
}

ParameterizedTestParameters(mustache_spec, case)
{
    json_t *roots[N_SPEC_FILES];
    struct spec_case *cases;
    size_t total = 0, at = 0, f, i;

    for (f = 0; f < N_SPEC_FILES; f++) {
        roots[f] = load_spec_quiet(spec_files[f]);
        total += json_array_size(json_object_get(roots[f], "tests"));
    }
    cases = total > 0 ? cr_malloc(total * sizeof(*cases)) : NULL;
    for (f = 0; f < N_SPEC_FILES && cases != NULL; f++) {
        json_t *tests = json_object_get(roots[f], "tests");

        for (i = 0; i < json_array_size(tests); i++, at++) {
            const char *name = json_string_value(json_object_get(json_array_get(tests, i), "name"));

            memset(&cases[at], 0, sizeof(cases[at]));
            snprintf(cases[at].file, sizeof(cases[at].file), "%s", spec_files[f]);
            cases[at].index = i;
            snprintf(cases[at].name, sizeof(cases[at].name), "%s: %s", spec_files[f],
                     name != NULL ? name : "(unnamed)");
        }
    }
    for (f = 0; f < N_SPEC_FILES; f++)
        json_decref(roots[f]);
    return cr_make_param_array(struct spec_case, cases, cases != NULL ? total : 0, free_cases);
}

/* Partial loader over a JSON object of name -> template. */
static char *json_partials(void *ud, const char *name)
{
    const char *s = json_string_value(json_object_get(ud, name));

    return s != NULL ? strdup(s) : NULL;
}

ParameterizedTest(struct spec_case *sc, mustache_spec, case)
{
    struct mustache_opts opts = {.html_escape = true, .partial = json_partials};
    json_t *tests, *root = load_spec(sc->file, &tests);
    json_t *tc = json_array_get(tests, sc->index);
    const char *tmpl = json_string_value(json_object_get(tc, "template"));
    const char *want = json_string_value(json_object_get(tc, "expected"));
    char err[256], *out = NULL;
    int rc;

    cr_assert_not_null(tmpl, "%s: no template", sc->name);
    cr_assert_not_null(want, "%s: no expected", sc->name);
    opts.partial_ud = json_object_get(tc, "partials");
    rc = mustache_render(tmpl, json_object_get(tc, "data"), &opts, &out, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s: render failed: %s", sc->name, err);
    cr_assert_str_eq(out, want, "%s:\n--- got\n%s\n--- want\n%s\n---", sc->name, out, want);
    free(out);
    json_decref(root);
}

/* Assert that the spec file has at least one case (an empty load must not pass). */
static void assert_has_cases(const char *file)
{
    json_t *tests, *root = load_spec(file, &tests);

    cr_assert_gt(json_array_size(tests), 0, "%s.json has no cases", file);
    json_decref(root);
}

Test(mustache_spec, comments_has_cases) { assert_has_cases("comments"); }
Test(mustache_spec, delimiters_has_cases) { assert_has_cases("delimiters"); }
Test(mustache_spec, interpolation_has_cases) { assert_has_cases("interpolation"); }
Test(mustache_spec, inverted_has_cases) { assert_has_cases("inverted"); }
Test(mustache_spec, partials_has_cases) { assert_has_cases("partials"); }
Test(mustache_spec, sections_has_cases) { assert_has_cases("sections"); }

/* ---- own cases ---------------------------------------------------------- */

/* Partial loader over a NULL-terminated array of {name, template} pairs. */
struct partial_table {
    const char *const (*pairs)[2]; /* {name, template} rows, ended by a NULL name */
    int calls;                     /* times the loader was called */
};

/* mustache_partial_fn over a struct partial_table. */
static char *table_partials(void *ud, const char *name)
{
    struct partial_table *pt = ud;
    size_t i;

    pt->calls++;
    for (i = 0; pt->pairs[i][0] != NULL; i++)
        if (strcmp(pt->pairs[i][0], name) == 0)
            return strdup(pt->pairs[i][1]);
    return NULL;
}

/* Render tmpl with data given as JSON text (NULL = no data); asserts success
 * and compares with want. */
static void expect_render(const char *tmpl, const char *data_json, bool html, const char *want)
{
    struct mustache_opts opts = {.html_escape = html};
    json_t *data = NULL;
    char err[256], *out = NULL;

    if (data_json != NULL) {
        data = json_loads(data_json, JSON_DECODE_ANY, NULL);
        cr_assert_not_null(data, "bad test data: %s", data_json);
    }
    cr_assert_eq(mustache_render(tmpl, data, &opts, &out, err, sizeof(err)), 0, "%s: %s", tmpl, err);
    cr_assert_str_eq(out, want, "%s: got \"%s\" want \"%s\"", tmpl, out, want);
    free(out);
    json_decref(data);
}

/* Render tmpl with data and opts; asserts failure and that err equals want
 * exactly (or, when prefix is set, starts with want). */
static void expect_error(const char *tmpl, json_t *data, const struct mustache_opts *opts,
                         const char *want, bool prefix)
{
    char err[256], *out = (char *)"untouched";

    cr_assert_eq(mustache_render(tmpl, data, opts, &out, err, sizeof(err)), -1,
                 "%s: rendered when it should fail", tmpl);
    cr_assert_null(out, "%s: *out not NULL on error", tmpl);
    if (prefix)
        cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s: got \"%s\" want \"%s...\"", tmpl,
                     err, want);
    else
        cr_assert_str_eq(err, want, "%s: got \"%s\" want \"%s\"", tmpl, err, want);
}

/* mustache_check must fail with exactly want. */
static void expect_check_error(const char *tmpl, const char *want)
{
    char err[256];

    cr_assert_eq(mustache_check(tmpl, err, sizeof(err)), -1, "%s: check passed", tmpl);
    cr_assert_str_eq(err, want, "%s: got \"%s\" want \"%s\"", tmpl, err, want);
}

Test(mustache_errors, unclosed_section_has_line_and_col)
{
    expect_error("Hello\n  {{#items}}x\n", NULL, NULL, "line 2 col 3: unclosed section {{#items}}",
                 false);
    expect_check_error("a {{^none}}\n", "line 1 col 3: unclosed section {{^none}}");
    /* The innermost open section is the one named. */
    expect_check_error("{{#a}}\n{{#b}}\n{{/b}}\n", "line 1 col 1: unclosed section {{#a}}");
}

Test(mustache_errors, mismatched_close)
{
    expect_error("{{#a}}\n x {{/b}}", NULL, NULL, "line 2 col 4: expected {{/a}} got {{/b}}", false);
    expect_check_error("{{#a}}{{#b}}{{/a}}{{/b}}", "line 1 col 13: expected {{/b}} got {{/a}}");
    expect_check_error("x{{/a}}", "line 1 col 2: unexpected {{/a}}: no section is open");
}

Test(mustache_errors, unclosed_tag)
{
    expect_check_error("ok\nHi {{name", "line 2 col 4: unclosed tag (no }} after {{)");
    expect_check_error("{{{name}}", "line 1 col 1: unclosed tag (no }}} after {{)");
    expect_check_error("{{=<% %>=}}\n<%name", "line 2 col 1: unclosed tag (no %> after <%)");
}

Test(mustache_errors, bad_delimiter_change)
{
    char err[256];

    expect_check_error("x\n{{=<%=}}", "line 2 col 1: bad delimiter change (want {{=<open> <close>=}}, "
                                      "at most 16 bytes each, no whitespace or '=')");
    cr_assert_eq(mustache_check("{{=a b c=}}", err, sizeof(err)), -1);
    cr_assert_eq(mustache_check("{{= =}}", err, sizeof(err)), -1);
    cr_assert_eq(mustache_check("{{=<% %>}}", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "line 1 col 1: bad delimiter change (no =}} closes it)");
    cr_assert_eq(mustache_check("{{=aaaaaaaaaaaaaaaaa b=}}", err, sizeof(err)), -1);
    /* Re-setting the current delimiters is fine. */
    cr_assert_eq(mustache_check("{{={{ }}=}}{{x}}", err, sizeof(err)), 0, "%s", err);
}

Test(mustache_errors, bad_names)
{
    expect_check_error("{{ }}", "line 1 col 1: empty tag name");
    expect_check_error("{{#}}{{/}}", "line 1 col 1: empty tag name");
    expect_check_error("{{a b}}", "line 1 col 1: invalid tag name (contains whitespace)");
    expect_check_error("{{a..b}}", "line 1 col 1: invalid tag name");
    expect_check_error("{{<parent}}{{/parent}}",
                       "line 1 col 1: unsupported tag '<' (template inheritance is not supported)");
}

Test(mustache_errors, check_accepts_valid_templates)
{
    char err[64] = "stale";

    cr_assert_eq(mustache_check("Hi {{name}}{{#a}}{{.}}{{/a}}{{! c }}{{>p}}", err, sizeof(err)), 0);
    cr_assert_str_eq(err, "", "err is cleared on success");
    cr_assert_eq(mustache_check("", err, sizeof(err)), 0);
}

Test(mustache_errors, small_or_missing_error_buffer)
{
    char small[8], *out = NULL;

    cr_assert_eq(mustache_render("{{#a}}", NULL, NULL, &out, small, sizeof(small)), -1);
    cr_assert_str_eq(small, "line 1 ");
    cr_assert_eq(mustache_render("{{#a}}", NULL, NULL, &out, NULL, 0), -1);
    cr_assert_eq(mustache_check("{{#a}}", NULL, 0), -1);
    cr_assert_eq(mustache_render(NULL, NULL, NULL, &out, small, sizeof(small)), -1);
    cr_assert_eq(mustache_render("x", NULL, NULL, NULL, NULL, 0), -1);
}

Test(mustache_caps, output_cap)
{
    struct mustache_opts opts = {.max_output = 10};
    json_t *data = json_pack("{s:s}", "x", "0123456789");
    char err[256], *out = NULL;

    cr_assert_not_null(data);
    /* Exactly at the cap is fine. */
    cr_assert_eq(mustache_render("{{x}}", data, &opts, &out, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(out, "0123456789");
    free(out);
    expect_error("ab\n{{x}}", data, &opts, "line 2 col 1: output over cap (10 bytes)", false);
    /* Escaping counts: 5 quotes become 30 bytes. */
    json_object_set_new(data, "q", json_string("\"\"\"\"\""));
    opts.html_escape = true;
    expect_error("{{q}}", data, &opts, "line 1 col 1: output over cap (10 bytes)", false);
    json_decref(data);
}

Test(mustache_caps, huge_data_hits_default_cap)
{
    size_t n = MUSTACHE_DEFAULT_MAX_OUTPUT / 1000 + 10, i;
    json_t *list = json_array();
    char item[1001];

    memset(item, 'x', 1000);
    item[1000] = '\0';
    for (i = 0; i < n; i++)
        cr_assert_eq(json_array_append_new(list, json_string(item)), 0);
    json_t *data = json_pack("{s:o}", "list", list);
    cr_assert_not_null(data);
    expect_error("{{#list}}{{.}}{{/list}}", data, NULL, "line 1 col 10: output over cap (1048576 bytes)",
                 false);
    json_decref(data);
}

Test(mustache_caps, self_recursive_partial_hits_depth_cap)
{
    static const char *const pairs[][2] = {{"loop", "x{{>loop}}"}, {NULL, NULL}};
    struct partial_table pt = {.pairs = pairs};
    struct mustache_opts opts = {.partial = table_partials, .partial_ud = &pt};

    expect_error("{{>loop}}", NULL, &opts,
                 "line 1 col 2 in partial \"loop\": nesting too deep (limit 64)", false);
    cr_assert_eq(pt.calls, 1, "partial loaded once and cached, got %d loads", pt.calls);
    opts.max_depth = 3;
    expect_error("{{>loop}}", NULL, &opts,
                 "line 1 col 2 in partial \"loop\": nesting too deep (limit 3)", false);
}

/* A tree {name, kids:[...]} nested levels deep; the leaf has no kids. */
static json_t *build_chain(int levels)
{
    json_t *root = NULL;
    int i;

    for (i = levels - 1; i >= 0; i--) {
        json_t *kids = root != NULL ? json_pack("[o]", root) : json_array();

        cr_assert_not_null(kids);
        root = json_pack("{s:o,s:o}", "name", json_sprintf("n%d", i), "kids", kids);
        cr_assert_not_null(root);
    }
    return root;
}

Test(mustache_caps, deep_data_through_recursive_partial)
{
    static const char *const pairs[][2] = {{"node", "{{name}}({{#kids}}{{>node}}{{/kids}})"},
                                          {NULL, NULL}};
    struct partial_table pt = {.pairs = pairs};
    struct mustache_opts opts = {.partial = table_partials, .partial_ud = &pt, .max_depth = 10};
    json_t *data = build_chain(3);
    char err[256], *out = NULL;

    /* 3 levels use 5 nesting levels (partial, section, partial, section, partial). */
    cr_assert_eq(mustache_render("{{>node}}", data, &opts, &out, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(out, "n0(n1(n2()))");
    free(out);
    json_decref(data);
    /* Untrusted data nested 1000 deep ends in an error, not a crash. */
    data = build_chain(1000);
    expect_error("{{>node}}", data, &opts,
                 "line 1 col 19 in partial \"node\": nesting too deep (limit 10)", false);
    json_decref(data);
}

Test(mustache_caps, nesting_in_template_is_capped_at_parse)
{
    char tmpl[65 * 10 + 1] = "", err[256];
    size_t i;

    for (i = 0; i < 65; i++)
        strcat(tmpl, "{{#a}}");
    cr_assert_eq(mustache_check(tmpl, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "line 1 col 385: nesting too deep (limit 64)");
}

Test(mustache_caps, nested_loops_without_output_hit_work_cap)
{
    json_t *list = json_array(), *data;
    char err[256], *out = NULL;
    size_t i;

    for (i = 0; i < 2000; i++)
        json_array_append_new(list, json_integer((json_int_t)i));
    data = json_pack("{s:o,s:b}", "l", list, "f", 0);
    cr_assert_not_null(data);
    /* 2000^3 iterations would produce nothing and run for minutes. */
    cr_assert_eq(mustache_render("{{#l}}{{#l}}{{#l}}{{#f}}x{{/f}}{{/l}}{{/l}}{{/l}}", data, NULL,
                                 &out, err, sizeof(err)),
                 -1);
    cr_assert_null(out);
    cr_assert_not_null(strstr(err, ": too much work (over 67108864 steps)"), "got \"%s\"", err);
    json_decref(data);
}

Test(mustache_partials, errors_inside_partials_name_the_partial)
{
    static const char *const pairs[][2] = {{"bad", "ok\n {{#a}}"}, {NULL, NULL}};
    struct partial_table pt = {.pairs = pairs};
    struct mustache_opts opts = {.partial = table_partials, .partial_ud = &pt};

    expect_error("x {{>bad}}", NULL, &opts,
                 "line 2 col 2 in partial \"bad\": unclosed section {{#a}}", false);
    /* Columns are those of the partial's own text, not of its indented copy. */
    expect_error("x\n    {{>bad}}\n", NULL, &opts,
                 "line 2 col 2 in partial \"bad\": unclosed section {{#a}}", false);
}

Test(mustache_partials, unknown_and_no_loader_render_empty)
{
    static const char *const pairs[][2] = {{NULL, NULL}};
    struct partial_table pt = {.pairs = pairs};
    struct mustache_opts opts = {.partial = table_partials, .partial_ud = &pt};
    char err[256], *out = NULL;

    cr_assert_eq(mustache_render("[{{>nope}}][{{>nope}}]", NULL, &opts, &out, err, sizeof(err)), 0);
    cr_assert_str_eq(out, "[][]");
    cr_assert_eq(pt.calls, 1, "a missing partial is remembered too");
    free(out);
    expect_render("[{{>nope}}]", NULL, false, "[]");
}

Test(mustache_text, text_mode_does_not_escape)
{
    const char *data = "{\"b\":\"<b>Tom & \\\"Jerry's\\\"</b>\"}";

    expect_render("{{b}}", data, false, "<b>Tom & \"Jerry's\"</b>");
    expect_render("{{b}}", data, true, "&lt;b&gt;Tom &amp; &quot;Jerry&#39;s&quot;&lt;/b&gt;");
    expect_render("{{{b}}}|{{&b}}", data, true, "<b>Tom & \"Jerry's\"</b>|<b>Tom & \"Jerry's\"</b>");
    /* Template text is never escaped. */
    expect_render("<p>&amp;</p>", NULL, true, "<p>&amp;</p>");
}

Test(mustache_text, null_and_absent_data)
{
    struct mustache_opts opts = {0};
    char err[256], *out = NULL;

    cr_assert_eq(mustache_render("Hi {{name}}!{{^name}} nobody{{/name}}{{#a.b}}x{{/a.b}}{{.}}", NULL,
                                 &opts, &out, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_str_eq(out, "Hi ! nobody");
    free(out);
    cr_assert_eq(mustache_render("", NULL, NULL, &out, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(out, "");
    free(out);
    expect_render("Hi {{name}}!", "null", false, "Hi !");
    expect_render("Hi {{name}}!", "{}", false, "Hi !");
    expect_render("Hi {{name}}!", "[1,2]", false, "Hi !");
    expect_render("Hi {{name.first}}!", "{\"name\":\"Ann\"}", false, "Hi !");
}

Test(mustache_text, values_and_truthiness)
{
    expect_render("{{i}} {{n}} {{r}} {{w}} {{t}} {{f}} [{{o}}] [{{a}}] [{{z}}]",
                  "{\"i\":0,\"n\":-42,\"r\":0.1,\"w\":3.0,\"t\":true,\"f\":false,"
                  "\"o\":{\"k\":1},\"a\":[1],\"z\":null}",
                  false, "0 -42 0.1 3 true false [] [] []");
    expect_render("{{big}} {{tiny}}", "{\"big\":9007199254740993,\"tiny\":1e-300}", false,
                  "9007199254740993 1e-300");
    /* "" and [] are falsey; 0 and {} are truthy. */
    expect_render("{{#s}}S{{/s}}{{^s}}s{{/s}}{{#l}}L{{/l}}{{^l}}l{{/l}}"
                  "{{#z}}Z{{/z}}{{^z}}z{{/z}}{{#o}}O{{/o}}{{^o}}o{{/o}}",
                  "{\"s\":\"\",\"l\":[],\"z\":0,\"o\":{}}", false, "slZO");
}

Test(mustache_text, bytes_pass_through_unchanged)
{
    json_t *data = json_object();
    char err[256], *out = NULL;
    static const char bad[] = "a\xff\xfe\xc3(z";
    struct mustache_opts opts = {.html_escape = true};

    cr_assert_not_null(data);
    cr_assert_eq(json_object_set_new_nocheck(data, "v", json_stringn_nocheck(bad, sizeof(bad) - 1)), 0);
    cr_assert_eq(mustache_render("[{{v}}|{{{v}}}|\xe2\x82\xac]", data, &opts, &out, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_str_eq(out, "[a\xff\xfe\xc3(z|a\xff\xfe\xc3(z|\xe2\x82\xac]");
    free(out);
    json_decref(data);
}

Test(mustache_text, notification_shaped_template)
{
    expect_render("Hi {{customer.first_name}},\n"
                  "\n"
                  "Your parcel {{tracking_number}} is {{status}}.\n"
                  "{{#events}}\n"
                  "  - {{at}} {{where}}\n"
                  "{{/events}}\n"
                  "{{^events}}\n"
                  "No scans yet.\n"
                  "{{/events}}\n",
                  "{\"customer\":{\"first_name\":\"Ann\"},\"tracking_number\":\"1Z999\","
                  "\"status\":\"in transit\",\"events\":[{\"at\":\"09:00\",\"where\":\"Lyon\"},"
                  "{\"at\":\"13:10\",\"where\":\"Paris\"}]}",
                  false,
                  "Hi Ann,\n\nYour parcel 1Z999 is in transit.\n  - 09:00 Lyon\n  - 13:10 Paris\n");
}
