/*
 * test_templates.c - Criterion suite for notification templates (templates/)
 * and their renderer (worker/templates.c), and `shiptrack render`.
 *
 * Completeness: every locale has every milestone's four files and the
 * partials en has; each file uses exactly the names its en counterpart uses
 * (no missing variable, no extra one) and only names from
 * templates_variables[]. Rendering: every locale x milestone x channel
 * renders the built-in sample data; every variable that is visible with
 * that data (all enclosing sections true, inverted ones false) shows its
 * value in the output; every SMS fits in two segments. Also: sms_segments()
 * limits, the locale fallback chain, HTML escaping of hostile data in HTML
 * only, right-to-left Arabic HTML, locale dates in a given zone (an instant
 * near midnight falls on different days in Paris and New York), message
 * data validation, and the render command's exit codes.
 */
#include "mustache.h"
#include "templates.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The four files of a milestone. */
static const char *const parts[] = { "subject.txt", "text.txt", "html", "sms.txt" };
#define N_PARTS (sizeof(parts) / sizeof(parts[0]))

/* The partials every locale must have (those en has). */
static const char *const partials[] = { "greeting.txt", "footer.txt", "header.html",
                                        "footer.html" };
#define N_PARTIALS (sizeof(partials) / sizeof(partials[0]))

/* "<source>/templates" in buf. */
static const char *tpl_dir(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/templates", ST_SOURCE_DIR);
    return buf;
}

/* Read a template file or return NULL when missing. */
static char *read_opt(const char *dir, const char *locale, const char *name)
{
    char path[4096];

    snprintf(path, sizeof(path), "%.2000s/%.64s/%.256s", dir, locale, name);
    if (access(path, R_OK) != 0)
        return NULL;
    return tu_read_file(path, NULL);
}

/* A set of names, small and fixed. */
struct names {
    char name[64][48];
    size_t n;
};

/* Add a name once. */
static void names_add(struct names *s, const char *name, size_t len)
{
    if (len >= sizeof(s->name[0]))
        len = sizeof(s->name[0]) - 1;
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->name[i]) == len && strncmp(s->name[i], name, len) == 0)
            return;
    cr_assert_lt(s->n, 64, "too many names in one template");
    memcpy(s->name[s->n], name, len);
    s->name[s->n][len] = '\0';
    s->n++;
}

/* True when s holds name. */
static bool names_has(const struct names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0)
            return true;
    return false;
}

/* One mustache tag: sigil ('\0' for a variable) and name. */
struct tag {
    char sigil;
    char name[64];
};

/* Find the next tag at *p (default delimiters; the templates never change
 * them); false at the end. */
static bool next_tag(const char **p, struct tag *t)
{
    const char *open = strstr(*p, "{{"), *close, *s;
    size_t len;

    if (open == NULL)
        return false;
    s = open + 2;
    if (*s == '{') {
        close = strstr(s, "}}}");
        cr_assert_not_null(close, "unclosed triple mustache");
        t->sigil = '&';
        s++;
        *p = close + 3;
    } else {
        close = strstr(s, "}}");
        cr_assert_not_null(close, "unclosed tag");
        t->sigil = strchr("#^/&>!=", *s) != NULL ? *s++ : '\0';
        *p = close + 2;
    }
    while (*s == ' ')
        s++;
    len = (size_t)(close - s);
    while (len > 0 && s[len - 1] == ' ')
        len--;
    cr_assert_lt(len, sizeof(t->name), "tag name too long");
    memcpy(t->name, s, len);
    t->name[len] = '\0';
    return true;
}

/* Names a template uses (variables and sections; not partials). */
static void template_names(const char *tmpl, struct names *vars, struct names *parts_used)
{
    const char *p = tmpl;
    struct tag t;

    while (next_tag(&p, &t)) {
        cr_assert_neq(t.sigil, '=', "templates must keep the default delimiters");
        if (t.sigil == '!' || t.sigil == '/')
            continue;
        if (t.sigil == '>')
            names_add(parts_used, t.name, strlen(t.name));
        else
            names_add(vars, t.name, strlen(t.name));
    }
}

/* True when name is in templates_variables[]. */
static bool known_variable(const char *name)
{
    for (const char *const *v = templates_variables; *v != NULL; v++)
        if (strcmp(*v, name) == 0)
            return true;
    return false;
}

Test(templates, every_locale_has_every_file_and_the_same_variables_as_en)
{
    char dir[4096];
    size_t checked = 0;

    tpl_dir(dir, sizeof(dir));
    for (size_t l = 0; l < templates_locales_count; l++) {
        const char *loc = templates_locales[l];

        for (size_t m = 0; m <= templates_milestones_count; m++) {
            size_t count = m < templates_milestones_count ? N_PARTS : N_PARTIALS;

            for (size_t k = 0; k < count; k++) {
                char name[128], merr[256] = "";
                struct names ev = { .n = 0 }, ep = { .n = 0 }, lv = { .n = 0 }, lp = { .n = 0 };
                char *en, *lt;

                if (m < templates_milestones_count)
                    snprintf(name, sizeof(name), "%s.%s", templates_milestones[m], parts[k]);
                else
                    snprintf(name, sizeof(name), "partials/%s", partials[k]);
                en = read_opt(dir, "en", name);
                lt = read_opt(dir, loc, name);
                cr_assert_not_null(en, "en/%s is missing", name);
                cr_expect_not_null(lt, "%s/%s is missing", loc, name);
                if (lt == NULL) {
                    free(en);
                    continue;
                }
                cr_expect_eq(mustache_check(lt, merr, sizeof(merr)), 0, "%s/%s does not parse: %s",
                             loc, name, merr);
                template_names(en, &ev, &ep);
                template_names(lt, &lv, &lp);
                for (size_t i = 0; i < ev.n; i++)
                    cr_expect(names_has(&lv, ev.name[i]), "%s/%s does not use {{%s}} (en does)",
                              loc, name, ev.name[i]);
                for (size_t i = 0; i < lv.n; i++) {
                    cr_expect(known_variable(lv.name[i]), "%s/%s uses unknown name {{%s}}", loc,
                              name, lv.name[i]);
                    cr_expect(names_has(&ev, lv.name[i]),
                              "%s/%s uses {{%s}}, which en/%s does not", loc, name, lv.name[i],
                              name);
                }
                for (size_t i = 0; i < ep.n; i++)
                    cr_expect(names_has(&lp, ep.name[i]), "%s/%s does not include partial %s",
                              loc, name, ep.name[i]);
                for (size_t i = 0; i < lp.n; i++) {
                    char *pt;
                    char pname[128];

                    snprintf(pname, sizeof(pname), "partials/%s", lp.name[i]);
                    pt = read_opt(dir, loc, pname);
                    cr_expect_not_null(pt, "%s/%s includes missing partial %s", loc, name,
                                       lp.name[i]);
                    free(pt);
                }
                free(en);
                free(lt);
                checked++;
            }
        }
    }
    cr_expect_eq(checked, templates_locales_count * (templates_milestones_count * N_PARTS +
                                                     N_PARTIALS));
}

/* ---- rendering with the sample data ---- */

/* True when view[name] is truthy in mustache's sense. */
static bool truthy(json_t *view, const char *name)
{
    json_t *v = json_object_get(view, name);

    if (v == NULL || json_is_null(v) || json_is_false(v))
        return false;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    return true;
}

/* HTML-escape s like the renderer does, into a heap string. */
static char *html_escaped(const char *s)
{
    size_t cap = strlen(s) * 6 + 1, n = 0;
    char *out = malloc(cap);

    cr_assert_not_null(out);
    for (; *s != '\0'; s++) {
        const char *r = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                      : *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;

        if (r != NULL) {
            memcpy(out + n, r, strlen(r));
            n += strlen(r);
        } else
            out[n++] = *s;
    }
    out[n] = '\0';
    return out;
}

/* Check that every variable visible with this view shows its value in out.
 * Partials are followed. depth guards against partial loops. */
static void check_visible(const char *dir, const char *loc, const char *file, const char *tmpl,
                          json_t *view, bool html, const char *out, int depth)
{
    const char *p = tmpl;
    struct tag t, stack[32];
    size_t sp = 0;

    cr_assert_lt(depth, 4, "partials nest too deep in %s/%s", loc, file);
    while (next_tag(&p, &t)) {
        bool visible = true;

        for (size_t i = 0; i < sp; i++)
            if ((stack[i].sigil == '#') != truthy(view, stack[i].name))
                visible = false;
        if (t.sigil == '#' || t.sigil == '^') {
            cr_assert_lt(sp, 32);
            stack[sp++] = t;
        } else if (t.sigil == '/') {
            cr_assert_gt(sp, 0, "%s/%s: unbalanced {{/%s}}", loc, file, t.name);
            sp--;
        } else if (t.sigil == '>' && visible) {
            char pname[128];
            char *pt;

            snprintf(pname, sizeof(pname), "partials/%s", t.name);
            pt = read_opt(dir, loc, pname);
            cr_assert_not_null(pt, "%s/%s: partial %s missing", loc, file, t.name);
            check_visible(dir, loc, pname, pt, view, html, out, depth + 1);
            free(pt);
        } else if ((t.sigil == '\0' || t.sigil == '&') && visible) {
            const char *val = json_string_value(json_object_get(view, t.name));

            if (val != NULL && val[0] != '\0') {
                char *want = html && t.sigil == '\0' ? html_escaped(val) : strdup(val);

                cr_expect_not_null(strstr(out, want),
                                   "%s/%s: {{%s}} = \"%s\" is provided but does not appear",
                                   loc, file, t.name, val);
                free(want);
            }
        }
    }
    cr_expect_eq(sp, 0, "%s/%s: unclosed section", loc, file);
}

/* Render and check one locale x milestone x channel with the sample data;
 * returns the SMS segments (0 for email). */
static unsigned render_and_check(const char *dir, const char *loc, const char *milestone,
                                 enum tpl_channel ch, size_t *units_out, bool *ucs2_out)
{
    struct tpl_message msg;
    json_t *data = templates_sample_data(milestone), *view;
    char err[1024] = "";
    enum st_err rc;
    unsigned segs = 0;

    cr_assert_not_null(data);
    rc = templates_render(dir, milestone, loc, ch, data, &msg, err, sizeof(err));
    cr_assert_eq(rc, ST_OK, "%s %s %s: %s", loc, milestone, ch == TPL_SMS ? "sms" : "email",
                 err);
    cr_expect_str_eq(msg.locale, loc, "%s resolved to %s", loc, msg.locale);
    view = templates_view(data, loc, milestone, err, sizeof(err));
    cr_assert_not_null(view, "%s", err);
    for (size_t k = 0; k < N_PARTS; k++) {
        char name[128];
        char *tmpl;
        const char *out = k == 0 ? msg.subject : k == 1 ? msg.text : k == 2 ? msg.html : msg.sms;

        if ((ch == TPL_SMS) != (k == 3))
            continue;
        cr_assert_not_null(out, "%s %s: part %s not rendered", loc, milestone, parts[k]);
        cr_expect_gt(strlen(out), 0, "%s %s: part %s is empty", loc, milestone, parts[k]);
        cr_expect_null(strstr(out, "{{"), "%s %s: %s has a stray {{", loc, milestone, parts[k]);
        cr_expect_null(strchr(out, '\\'), "%s %s: %s has a stray backslash", loc, milestone,
                       parts[k]);
        cr_expect_null(strstr(out, "**"), "%s %s: %s has stray markup", loc, milestone, parts[k]);
        snprintf(name, sizeof(name), "%s.%s", milestone, parts[k]);
        tmpl = read_opt(dir, loc, name);
        cr_assert_not_null(tmpl);
        check_visible(dir, loc, name, tmpl, view, k == 2, out, 0);
        free(tmpl);
    }
    if (ch == TPL_EMAIL) {
        cr_expect_null(strpbrk(msg.subject, "\r\n"), "%s %s: subject has a line break", loc,
                       milestone);
        cr_expect_not_null(strstr(msg.html, "<html lang=\""), "%s %s: no <html lang>", loc,
                           milestone);
        if (templates_milestone_transactional(milestone))
            cr_expect_null(strstr(msg.text, "/u/8KQ3ZP"), "%s %s: transactional message with "
                           "an unsubscribe link", loc, milestone);
        else
            cr_expect_not_null(strstr(msg.html, "https://nordlicht.example/u/8KQ3ZP?s=f41c9e"),
                               "%s %s: no unsubscribe link", loc, milestone);
    } else {
        enum sms_encoding enc;

        segs = sms_segments(msg.sms, &enc, units_out);
        *ucs2_out = enc == SMS_UCS2;
    }
    json_decref(view);
    json_decref(data);
    tpl_message_free(&msg);
    return segs;
}

Test(templates, every_locale_milestone_and_channel_renders_the_sample_data)
{
    char dir[4096];

    tpl_dir(dir, sizeof(dir));
    for (size_t l = 0; l < templates_locales_count; l++)
        for (size_t m = 0; m < templates_milestones_count; m++) {
            size_t units;
            bool ucs2;

            render_and_check(dir, templates_locales[l], templates_milestones[m], TPL_EMAIL,
                             &units, &ucs2);
        }
}

Test(templates, every_sms_fits_in_two_segments)
{
    char dir[4096];

    tpl_dir(dir, sizeof(dir));
    for (size_t l = 0; l < templates_locales_count; l++) {
        size_t max_units = 0;
        const char *max_m = "";
        bool max_ucs2 = false;

        for (size_t m = 0; m < templates_milestones_count; m++) {
            size_t units = 0;
            bool ucs2 = false;
            unsigned segs = render_and_check(dir, templates_locales[l], templates_milestones[m],
                                             TPL_SMS, &units, &ucs2);

            cr_expect_leq(segs, 2, "%s %s: SMS takes %u segments (%zu %s)", templates_locales[l],
                          templates_milestones[m], segs, units, ucs2 ? "UCS-2 units" : "septets");
            cr_expect_geq(segs, 1);
            /* compare by share of the two-segment budget (306 septets / 134 units) */
            if (units * (ucs2 ? 306 : 134) >= max_units * (max_ucs2 ? 306 : 134)) {
                max_units = units;
                max_ucs2 = ucs2;
                max_m = templates_milestones[m];
            }
        }
        cr_log_info("sms %-5s longest: %s, %zu %s of %d", templates_locales[l], max_m, max_units,
                    max_ucs2 ? "UCS-2 units" : "GSM-7 septets", max_ucs2 ? 134 : 306);
    }
}

/* ---- sms_segments ---- */

/* n copies of s. */
static char *repeat(const char *s, size_t n, const char *prefix)
{
    size_t len = strlen(s), plen = strlen(prefix);
    char *out = malloc(plen + len * n + 1);

    cr_assert_not_null(out);
    memcpy(out, prefix, plen);
    for (size_t i = 0; i < n; i++)
        memcpy(out + plen + i * len, s, len);
    out[plen + len * n] = '\0';
    return out;
}

/* Segments, encoding and units of repeat(s, n, prefix). */
static unsigned segs_of(const char *s, size_t n, const char *prefix, enum sms_encoding *enc,
                        size_t *units)
{
    char *t = repeat(s, n, prefix);
    unsigned r = sms_segments(t, enc, units);

    free(t);
    return r;
}

Test(sms, gsm7_limits)
{
    enum sms_encoding enc;
    size_t units;

    cr_expect_eq(sms_segments("", &enc, &units), 0);
    cr_expect_eq(segs_of("a", 160, "", &enc, &units), 1);
    cr_expect_eq(enc, SMS_GSM7);
    cr_expect_eq(units, 160);
    cr_expect_eq(segs_of("a", 161, "", &enc, &units), 2);
    cr_expect_eq(segs_of("a", 306, "", &enc, &units), 2);
    cr_expect_eq(segs_of("a", 307, "", &enc, &units), 3);
    cr_expect_eq(units, 307);
    /* the basic table's accented letters and symbols are one septet */
    cr_expect_eq(segs_of("é", 160, "", &enc, &units), 1);
    cr_expect_eq(enc, SMS_GSM7);
    cr_expect_eq(sms_segments("£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà@\n",
                              &enc, &units), 1);
    cr_expect_eq(enc, SMS_GSM7);
}

Test(sms, extension_characters_count_two)
{
    enum sms_encoding enc;
    size_t units;

    cr_expect_eq(segs_of("€", 80, "", &enc, &units), 1);
    cr_expect_eq(enc, SMS_GSM7);
    cr_expect_eq(units, 160);
    cr_expect_eq(segs_of("€", 81, "", &enc, &units), 2);
    cr_expect_eq(units, 162);
    cr_expect_eq(segs_of("a", 159, "[", &enc, &units), 2);
    cr_expect_eq(units, 161);
    cr_expect_eq(sms_segments("^{}\\[~]|€", &enc, &units), 1);
    cr_expect_eq(units, 18);
    cr_expect_eq(enc, SMS_GSM7);
}

Test(sms, one_non_gsm_character_makes_it_ucs2)
{
    enum sms_encoding enc;
    size_t units;

    /* an emoji is two UTF-16 units */
    cr_expect_eq(segs_of("a", 68, "😀", &enc, &units), 1);
    cr_expect_eq(enc, SMS_UCS2);
    cr_expect_eq(units, 70);
    cr_expect_eq(segs_of("a", 69, "😀", &enc, &units), 2);
    cr_expect_eq(units, 71);
    /* an Arabic letter */
    cr_expect_eq(segs_of("a", 69, "ع", &enc, &units), 1);
    cr_expect_eq(enc, SMS_UCS2);
    cr_expect_eq(segs_of("a", 70, "ع", &enc, &units), 2);
    cr_expect_eq(segs_of("a", 133, "ع", &enc, &units), 2);
    cr_expect_eq(units, 134);
    cr_expect_eq(segs_of("a", 134, "ع", &enc, &units), 3);
    /* ç (only Ç is GSM), a backtick, CJK */
    cr_expect_eq(sms_segments("reçu", &enc, &units), 1);
    cr_expect_eq(enc, SMS_UCS2);
    cr_expect_eq(units, 4);
    sms_segments("`", &enc, &units);
    cr_expect_eq(enc, SMS_UCS2);
    cr_expect_eq(segs_of("包", 67, "", &enc, &units), 1);
    cr_expect_eq(segs_of("包", 71, "", &enc, &units), 2);
    /* invalid UTF-8 is not GSM */
    sms_segments("a\xff", &enc, &units);
    cr_expect_eq(enc, SMS_UCS2);
}

/* ---- locale fallback ---- */

/* Resolve loc in dir and compare. */
static void expect_resolves(const char *dir, const char *loc, const char *want)
{
    char got[64], err[256] = "";

    cr_assert_eq(templates_resolve_locale(dir, loc, got, sizeof(got), err, sizeof(err)), ST_OK,
                 "%s: %s", loc, err);
    cr_expect_str_eq(got, want, "%s resolved to %s, want %s", loc, got, want);
}

Test(templates, locale_fallback_chain)
{
    char dir[4096], tmp[] = "/tmp/st-tpl-XXXXXX", link[4200], target[4200], got[64], err[256];

    tpl_dir(dir, sizeof(dir));
    expect_resolves(dir, "pt-BR", "pt-BR");
    expect_resolves(dir, "pt_br", "pt-BR");
    expect_resolves(dir, "pt-PT", "pt-BR"); /* no pt folder: the same language's region */
    expect_resolves(dir, "pt", "pt-BR");
    expect_resolves(dir, "zh-TW", "zh-CN");
    expect_resolves(dir, "de-AT", "de");
    expect_resolves(dir, "es-419", "es");
    expect_resolves(dir, "en-US", "en");
    expect_resolves(dir, "ko", "en");
    expect_resolves(dir, "AR", "ar");
    cr_expect_eq(templates_resolve_locale(dir, "../etc", got, sizeof(got), err, sizeof(err)),
                 ST_PERMANENT);
    cr_expect_eq(templates_resolve_locale(dir, "", got, sizeof(got), err, sizeof(err)),
                 ST_PERMANENT);

    /* pt-BR -> pt -> en with a pt folder and no pt-BR one */
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(link, sizeof(link), "%s/pt", tmp);
    snprintf(target, sizeof(target), "%s/pt-BR", dir);
    cr_assert_eq(symlink(target, link), 0);
    expect_resolves(tmp, "pt-BR", "pt");
    cr_expect_eq(templates_resolve_locale(tmp, "fr", got, sizeof(got), err, sizeof(err)),
                 ST_CONFIG, "no en folder must be a configuration error");
    snprintf(link, sizeof(link), "%s/en", tmp);
    snprintf(target, sizeof(target), "%s/en", dir);
    cr_assert_eq(symlink(target, link), 0);
    expect_resolves(tmp, "fr", "en");
    unlink(link);
    snprintf(link, sizeof(link), "%s/pt", tmp);
    unlink(link);
    rmdir(tmp);
}

Test(templates, fallback_renders_the_fallback_language)
{
    char dir[4096], err[512] = "";
    struct tpl_message msg;
    json_t *data = templates_sample_data("shipped");

    tpl_dir(dir, sizeof(dir));
    cr_assert_eq(templates_render(dir, "shipped", "pt-PT", TPL_EMAIL, data, &msg, err,
                                  sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(msg.locale, "pt-BR");
    cr_expect_not_null(strstr(msg.subject, "a caminho"), "%s", msg.subject);
    tpl_message_free(&msg);
    cr_assert_eq(templates_render(dir, "shipped", "ko-KR", TPL_SMS, data, &msg, err,
                                  sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(msg.locale, "en");
    cr_expect_not_null(strstr(msg.sms, "on its way"), "%s", msg.sms);
    tpl_message_free(&msg);
    json_decref(data);
}

/* ---- escaping, direction ---- */

Test(templates, hostile_data_is_escaped_in_html_only)
{
    char dir[4096], err[512] = "";
    struct tpl_message msg;
    json_t *data = templates_sample_data("customs_held");

    tpl_dir(dir, sizeof(dir));
    json_object_set_new(data, "shop_name", json_string("<script>alert(1)</script> & \"Co\""));
    json_object_set_new(data, "first_name", json_string("<img src=x onerror=alert(2)>"));
    json_object_set_new(data, "customs_instructions",
                        json_string("Pay at <a href=\"javascript:evil()\">here</a>\nthen wait"));
    cr_assert_eq(templates_render(dir, "customs_held", "en", TPL_EMAIL, data, &msg, err,
                                  sizeof(err)), ST_OK, "%s", err);
    cr_expect_null(strstr(msg.html, "<script>"), "raw <script> in HTML");
    cr_expect_null(strstr(msg.html, "<img"), "raw <img> in HTML");
    cr_expect_null(strstr(msg.html, "<a href=\"javascript"), "raw link from data in HTML");
    cr_expect_not_null(strstr(msg.html, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"));
    cr_expect_not_null(strstr(msg.html, "&lt;img src=x onerror=alert(2)&gt;"));
    cr_expect_not_null(strstr(msg.text, "<script>alert(1)</script> & \"Co\""),
                       "text part must not be escaped");
    cr_expect_not_null(strstr(msg.text, "<img src=x onerror=alert(2)>"));
    cr_expect_not_null(strstr(msg.subject, "held at customs"));
    tpl_message_free(&msg);
    cr_assert_eq(templates_render(dir, "customs_held", "en", TPL_SMS, data, &msg, err,
                                  sizeof(err)), ST_OK, "%s", err);
    cr_expect_not_null(strstr(msg.sms, "<script>alert(1)</script> & \"Co\""),
                       "SMS must not be escaped: %s", msg.sms);
    tpl_message_free(&msg);
    json_decref(data);
}

Test(templates, arabic_html_is_right_to_left)
{
    char dir[4096], err[512] = "";
    struct tpl_message msg;
    json_t *data = templates_sample_data("delivered");

    tpl_dir(dir, sizeof(dir));
    for (size_t m = 0; m < templates_milestones_count; m++) {
        json_t *d = templates_sample_data(templates_milestones[m]);

        cr_assert_eq(templates_render(dir, templates_milestones[m], "ar", TPL_EMAIL, d, &msg, err,
                                      sizeof(err)), ST_OK, "%s", err);
        cr_expect_not_null(strstr(msg.html, "<html lang=\"ar\" dir=\"rtl\">"), "%s",
                           templates_milestones[m]);
        tpl_message_free(&msg);
        json_decref(d);
    }
    cr_assert_eq(templates_render(dir, "delivered", "de", TPL_EMAIL, data, &msg, err,
                                  sizeof(err)), ST_OK, "%s", err);
    cr_expect_not_null(strstr(msg.html, "<html lang=\"de\" dir=\"ltr\">"));
    tpl_message_free(&msg);
    json_decref(data);
}

/* ---- dates ---- */

Test(dates, long_dates_per_locale_in_a_zone)
{
    static const struct {
        const char *locale, *want;
    } cases[] = {
        { "en", "Saturday 21 November 2026" },
        { "de", "Samstag, 21. November 2026" },
        { "fr", "samedi 21 novembre 2026" },
        { "es", "sábado, 21 de noviembre de 2026" },
        { "it", "sabato 21 novembre 2026" },
        { "nl", "zaterdag 21 november 2026" },
        { "pt-BR", "sábado, 21 de novembro de 2026" },
        { "pl", "sobota, 21 listopada 2026" },
        { "sv", "lördag 21 november 2026" },
        { "ja", "2026年11月21日(土)" },
        { "zh-CN", "2026年11月21日 星期六" },
        { "ar", "السبت، 21 نوفمبر 2026" },
    };
    time_t t;
    char buf[128];

    /* 2026-11-21 12:00 UTC is the 21st everywhere from UTC-11 to UTC+11 */
    cr_assert(templates_parse_instant("2026-11-21T12:00:00Z", &t));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert(templates_format_date(cases[i].locale, t, "Europe/Paris", buf, sizeof(buf)));
        cr_expect_str_eq(buf, cases[i].want, "%s", cases[i].locale);
    }
}

Test(dates, near_midnight_the_zone_decides_the_day)
{
    time_t t;
    char buf[128];

    /* 04:30 UTC: 05:30 Saturday in Paris, 23:30 Friday in New York, 13:30 in Tokyo */
    cr_assert(templates_parse_instant("2026-11-21T04:30:00Z", &t));
    cr_assert(templates_format_date("en", t, "Europe/Paris", buf, sizeof(buf)));
    cr_expect_str_eq(buf, "Saturday 21 November 2026");
    cr_assert(templates_format_time("en", t, "Europe/Paris", buf, sizeof(buf)));
    cr_expect_str_eq(buf, "05:30");
    cr_assert(templates_format_date("en", t, "America/New_York", buf, sizeof(buf)));
    cr_expect_str_eq(buf, "Friday 20 November 2026");
    cr_assert(templates_format_time("en", t, "America/New_York", buf, sizeof(buf)));
    cr_expect_str_eq(buf, "23:30");
    cr_assert(templates_format_date("fr", t, "America/New_York", buf, sizeof(buf)));
    cr_expect_str_eq(buf, "vendredi 20 novembre 2026");
    cr_assert(templates_format_date("ja", t, "Asia/Tokyo", buf, sizeof(buf)));
    cr_expect_str_eq(buf, "2026年11月21日(土)");
    /* an offset in the input is honoured: 23:30-05:00 is 04:30 UTC the next day */
    cr_assert(templates_parse_instant("2026-11-20T23:30:00-05:00", &t));
    cr_assert(templates_format_date("de", t, "Europe/Berlin", buf, sizeof(buf)));
    cr_expect_str_eq(buf, "Samstag, 21. November 2026");
    /* summer time: 2026-07-01 22:30 UTC is 00:30 on 2 July in Paris (UTC+2) */
    cr_assert(templates_parse_instant("2026-07-01T22:30:00Z", &t));
    cr_assert(templates_format_date("nl", t, "Europe/Paris", buf, sizeof(buf)));
    cr_expect_str_eq(buf, "donderdag 2 juli 2026");
    cr_assert(templates_format_time("nl", t, "Europe/Paris", buf, sizeof(buf)));
    cr_expect_str_eq(buf, "00:30");
    /* TZ is left as it was */
    cr_expect_null(getenv("TZ"));
}

Test(dates, first_of_the_month_short_forms_and_bad_input)
{
    char buf[64];
    time_t t;

    cr_assert(templates_format_day("fr", 2026, 12, 1, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "mardi 1er décembre 2026");
    cr_assert(templates_format_day("pt-BR", 2026, 12, 1, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "terça-feira, 1º de dezembro de 2026");
    cr_assert(templates_format_day("zh-CN", 2026, 12, 1, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "2026年12月1日 星期二");
    cr_assert(templates_format_day_short("en", 2026, 11, 24, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "Tue 24 Nov");
    cr_assert(templates_format_day_short("de", 2026, 11, 24, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "Di., 24.11.");
    cr_assert(templates_format_day_short("ja", 2026, 11, 24, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "11月24日(火)");
    cr_assert(templates_format_day_short("es", 2026, 11, 24, buf, sizeof(buf)));
    cr_expect_str_eq(buf, "24/11");
    cr_expect(templates_format_day("en", 2028, 2, 29, buf, sizeof(buf)));
    cr_expect(!templates_format_day("en", 2026, 2, 29, buf, sizeof(buf)));
    cr_expect(!templates_format_day("en", 2026, 13, 1, buf, sizeof(buf)));
    cr_expect(!templates_format_day("de", 2026, 11, 21, buf, 8), "too small a buffer");
    cr_expect_str_eq(buf, "");
    cr_expect(!templates_parse_instant("2026-11-21T12:00:00", &t), "no offset");
    cr_expect(!templates_parse_instant("2026-11-21", &t));
    cr_expect(!templates_parse_instant("2026-11-31T12:00:00Z", &t));
    cr_expect(!templates_parse_instant("2026-11-21T24:00:00Z", &t));
    cr_expect(templates_parse_instant("2026-11-21T12:00:00.250+01:00", &t));
    cr_expect_eq((long long)t, 1795258800LL);
    cr_expect(!templates_format_date("en", t, "Mars/Olympus_Mons", buf, sizeof(buf)));
    cr_expect(!templates_format_date("en", t, "../../etc/passwd", buf, sizeof(buf)));
    cr_expect(!templates_format_date("en", t, "/etc/localtime", buf, sizeof(buf)));
    cr_expect(templates_zone_valid("America/Argentina/Buenos_Aires"));
}

/* ---- message data ---- */

/* Expect templates_view to refuse data, naming what. */
static void expect_refused(json_t *data, const char *milestone, const char *what)
{
    char err[512] = "";
    json_t *v = templates_view(data, "en", milestone, err, sizeof(err));

    cr_expect_null(v, "accepted data that should fail with \"%s\"", what);
    cr_expect_not_null(strstr(err, what), "error \"%s\" does not mention \"%s\"", err, what);
    json_decref(v);
}

Test(templates, message_data_is_validated)
{
    json_t *d;

    d = templates_sample_data("shipped");
    json_object_set_new(d, "shop_nmae", json_string("typo"));
    expect_refused(d, "shipped", "shop_nmae");
    json_decref(d);
    d = templates_sample_data("shipped");
    json_object_del(d, "tracking_url");
    expect_refused(d, "shipped", "tracking_url is required");
    json_decref(d);
    d = templates_sample_data("delayed");
    json_object_del(d, "eta");
    expect_refused(d, "delayed", "eta is required for delayed");
    json_decref(d);
    d = templates_sample_data("shipped");
    json_object_set_new(d, "time_zone", json_string("Europe/Atlantis"));
    expect_refused(d, "shipped", "Europe/Atlantis");
    json_decref(d);
    d = templates_sample_data("delivered");
    json_object_set_new(d, "delivered_at", json_string("2026-11-24T10:47:00"));
    expect_refused(d, "delivered", "delivered_at");
    json_decref(d);
    d = templates_sample_data("delivered");
    json_object_del(d, "time_zone");
    expect_refused(d, "delivered", "time_zone");
    json_decref(d);
    d = templates_sample_data("shipped");
    json_object_set_new(d, "shop_name", json_string("Evil\r\nBcc: x@example.com"));
    expect_refused(d, "shipped", "shop_name");
    json_decref(d);
    d = templates_sample_data("shipped");
    json_object_set_new(d, "tracking_url", json_string("javascript:alert(1)"));
    expect_refused(d, "shipped", "tracking_url");
    json_decref(d);
    d = templates_sample_data("customs_held");
    json_object_del(d, "customs_currency");
    expect_refused(d, "customs_held", "customs_currency");
    json_decref(d);
    d = templates_sample_data("customs_held");
    json_object_set_new(d, "customs_reason", json_string("bribe"));
    expect_refused(d, "customs_held", "duties_due");
    json_decref(d);
    d = templates_sample_data("shipped");
    json_object_set_new(d, "order_ref", json_integer(42));
    expect_refused(d, "shipped", "order_ref must be a string");
    json_decref(d);
    d = json_array();
    expect_refused(d, "shipped", "JSON object");
    json_decref(d);
}

Test(templates, view_derives_dates_amounts_and_flags)
{
    char err[512] = "";
    json_t *d = templates_sample_data("customs_held"), *v;

    v = templates_view(d, "de", "customs_held", err, sizeof(err));
    cr_assert_not_null(v, "%s", err);
    cr_expect_str_eq(json_string_value(json_object_get(v, "customs_amount_due")), "23,40 €");
    cr_expect_str_eq(json_string_value(json_object_get(v, "eta_date")),
                     "Donnerstag, 26. November 2026");
    cr_expect(json_is_true(json_object_get(v, "customs_duties_due")));
    cr_expect(json_is_true(json_object_get(v, "action_recipient")));
    cr_expect_null(json_object_get(v, "unsubscribe_url"), "customs_held is transactional");
    cr_expect_str_eq(json_string_value(json_object_get(v, "dir")), "ltr");
    json_decref(v);
    v = templates_view(d, "en", "customs_held", err, sizeof(err));
    cr_assert_not_null(v, "%s", err);
    cr_expect_str_eq(json_string_value(json_object_get(v, "customs_amount_due")), "€23.40");
    json_decref(v);
    json_decref(d);
    d = templates_sample_data("attempt_failed");
    v = templates_view(d, "en", "attempt_failed", err, sizeof(err));
    cr_assert_not_null(v, "%s", err);
    /* 13:32 UTC is 14:32 in Paris */
    cr_expect_str_eq(json_string_value(json_object_get(v, "attempt_time")), "14:32");
    cr_expect_str_eq(json_string_value(json_object_get(v, "attempt_date")),
                     "Saturday 21 November 2026");
    cr_expect_str_eq(json_string_value(json_object_get(v, "next_attempt_short")), "Mon 23 Nov");
    json_decref(v);
    json_object_set_new(d, "time_zone", json_string("America/New_York"));
    v = templates_view(d, "en", "attempt_failed", err, sizeof(err));
    cr_assert_not_null(v, "%s", err);
    cr_expect_str_eq(json_string_value(json_object_get(v, "attempt_time")), "08:32");
    json_decref(v);
    v = templates_view(d, "ar", "attempt_failed", err, sizeof(err));
    cr_assert_not_null(v, "%s", err);
    cr_expect_str_eq(json_string_value(json_object_get(v, "dir")), "rtl");
    json_decref(v);
    json_decref(d);
}

/* ---- template problems ---- */

/* Write text to dir/rel. */
static void write_file(const char *dir, const char *rel, const char *text)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

Test(templates, template_problems_name_locale_milestone_and_file)
{
    char tmp[] = "/tmp/st-tpl-XXXXXX", path[4200], err[512] = "";
    struct tpl_message msg;
    json_t *data = templates_sample_data("shipped");

    cr_assert_not_null(mkdtemp(tmp));
    snprintf(path, sizeof(path), "%s/en", tmp);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/en/partials", tmp);
    cr_assert_eq(mkdir(path, 0700), 0);
    /* missing file */
    cr_expect_eq(templates_render(tmp, "shipped", "en", TPL_SMS, data, &msg, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect_not_null(strstr(err, "en/shipped.sms.txt"), "%s", err);
    /* broken mustache */
    write_file(tmp, "en/shipped.sms.txt", "{{#shop_name}}unclosed");
    cr_expect_eq(templates_render(tmp, "shipped", "en", TPL_SMS, data, &msg, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect_not_null(strstr(err, "milestone shipped"), "%s", err);
    /* a partial that does not exist */
    write_file(tmp, "en/shipped.sms.txt", "{{> nothere.txt}}x");
    cr_expect_eq(templates_render(tmp, "shipped", "en", TPL_SMS, data, &msg, err, sizeof(err)),
                 ST_CONFIG);
    cr_expect_not_null(strstr(err, "nothere.txt"), "%s", err);
    /* a partial name that tries to leave the folder */
    write_file(tmp, "en/shipped.sms.txt", "{{> ../../../etc/passwd}}x");
    cr_expect_eq(templates_render(tmp, "shipped", "en", TPL_SMS, data, &msg, err, sizeof(err)),
                 ST_CONFIG);
    /* output over the SMS cap */
    write_file(tmp, "en/shipped.sms.txt",
               "{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}"
               "{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}"
               "{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}"
               "{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}"
               "{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}"
               "{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}"
               "{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}"
               "{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}"
               "{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}"
               "{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}{{tracking_url}}");
    cr_expect_eq(templates_render(tmp, "shipped", "en", TPL_SMS, data, &msg, err, sizeof(err)),
                 ST_CONFIG);
    /* fine again */
    write_file(tmp, "en/shipped.sms.txt", "{{shop_name}} {{tracking_url}}\n\n");
    cr_assert_eq(templates_render(tmp, "shipped", "en", TPL_SMS, data, &msg, err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_expect_str_eq(msg.sms, "Nordlicht Outdoor https://nordlicht.example/t/8KQ3ZP");
    tpl_message_free(&msg);
    cr_expect_eq(templates_render(tmp, "teleported", "en", TPL_SMS, data, &msg, err, sizeof(err)),
                 ST_PERMANENT);
    snprintf(path, sizeof(path), "%s/en/shipped.sms.txt", tmp);
    unlink(path);
    snprintf(path, sizeof(path), "%s/en/partials", tmp);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/en", tmp);
    rmdir(path);
    rmdir(tmp);
    json_decref(data);
}

/* ---- the render command ---- */

/* Run `shiptrack render ARGS...` with the source templates (or dir). */
static int run_render(const char *dir, const char *const *args, char **out, char **err)
{
    char bin[4096], env_dir[4200], srcdir[4096];
    char *argv[16];
    const char *env[] = { env_dir, NULL };
    size_t n = 0;

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    snprintf(env_dir, sizeof(env_dir), "SHIPTRACK_TEMPLATES_DIR=%s",
             dir ? dir : tpl_dir(srcdir, sizeof(srcdir)));
    argv[n++] = bin;
    argv[n++] = "render";
    for (; *args != NULL && n < 15; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    return tu_run(argv, env, out, err);
}

Test(render_cmd, prints_email_and_sms)
{
    const char *email[] = { "--milestone", "customs_held", "--locale", "fr", "--channel",
                            "email", NULL };
    const char *sms[] = { "--milestone", "delayed", "--locale", "ja", "--channel", "sms", NULL };
    char *out = NULL, *err = NULL;

    cr_assert_eq(run_render(NULL, email, &out, &err), 0, "%s", err);
    cr_expect_not_null(strstr(out, "Subject: Action requise"), "%s", out);
    cr_expect_not_null(strstr(out, "----- text/plain -----"));
    cr_expect_not_null(strstr(out, "----- text/html -----"));
    cr_expect_not_null(strstr(out, "Ce que vous devez faire"));
    cr_expect_not_null(strstr(out, "23,40 €"));
    cr_expect_not_null(strstr(out, "jeudi 26 novembre 2026"));
    free(out);
    free(err);
    cr_assert_eq(run_render(NULL, sms, &out, &err), 0, "%s", err);
    cr_expect_not_null(strstr(out, "11月26日(木)"), "%s", out);
    cr_expect_not_null(strstr(out, "UCS-2"), "%s", out);
    free(out);
    free(err);
}

Test(render_cmd, data_file)
{
    const char *args[] = { "--milestone", "shipped", "--locale", "de", "--channel", "sms",
                           "--data", NULL, NULL };
    char path[] = "/tmp/st-data-XXXXXX";
    char *out = NULL, *err = NULL;
    int fd = mkstemp(path);
    const char *json = "{\"shop_name\":\"Kaffeerösterei Süd\",\"order_ref\":\"KS-77\","
                       "\"carrier_name\":\"DPD\",\"tracking_number\":\"01234567890123\","
                       "\"tracking_url\":\"https://ks.example/t/77\"}";

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    args[7] = path;
    cr_assert_eq(run_render(NULL, args, &out, &err), 0, "%s", err);
    cr_expect_not_null(strstr(out, "Kaffeerösterei Süd: Ihre Bestellung KS-77 ist mit DPD "
                                   "unterwegs. https://ks.example/t/77"), "%s", out);
    free(out);
    free(err);
    /* bad data: exit 2 naming the field */
    json = "{\"shop_name\":\"x\",\"colour\":\"red\"}";
    fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    cr_expect_eq(run_render(NULL, args, &out, &err), 2);
    cr_expect_not_null(strstr(err, "colour"), "%s", err);
    free(out);
    free(err);
    /* not JSON */
    fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "{nope", 5), 5);
    close(fd);
    cr_expect_eq(run_render(NULL, args, &out, &err), 2);
    free(out);
    free(err);
    unlink(path);
    args[7] = "/nonexistent/data.json";
    cr_expect_eq(run_render(NULL, args, &out, &err), 2);
    cr_expect_not_null(strstr(err, "/nonexistent/data.json"), "%s", err);
    free(out);
    free(err);
}

Test(render_cmd, exit_codes)
{
    static const struct {
        const char *args[9];
        int rc;
        const char *says;
    } cases[] = {
        { { "--milestone", "teleported", "--locale", "en", "--channel", "sms" }, 2, "teleported" },
        { { "--milestone", "shipped", "--locale", "en", "--channel", "fax" }, 2, "fax" },
        { { "--milestone", "shipped", "--locale", "e", "--channel", "sms" }, 2, "\"e\"" },
        { { "--milestone", "shipped", "--channel", "sms" }, 2, "required" },
        { { "--milestone", "shipped", "--locale", "en", "--channel", "sms", "--bogus" }, 2,
          "--bogus" },
        { { "--milestone", "shipped", "--locale", "ko", "--channel", "sms" }, 0, "using en" },
    };
    char *out = NULL, *err = NULL;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_eq(run_render(NULL, cases[i].args, &out, &err), cases[i].rc, "case %zu: %s", i,
                     err);
        cr_expect_not_null(strstr(err, cases[i].says), "case %zu: stderr \"%s\" lacks \"%s\"", i,
                           err, cases[i].says);
        free(out);
        free(err);
    }
}

Test(render_cmd, template_problems_exit_1)
{
    const char *args[] = { "--milestone", "shipped", "--locale", "en", "--channel", "email",
                           NULL };
    char *out = NULL, *err = NULL;

    cr_expect_eq(run_render("/nonexistent/templates", args, &out, &err), 1);
    cr_expect_not_null(strstr(err, "/nonexistent/templates"), "%s", err);
    free(out);
    free(err);
}

/* Render data for milestone in every locale: no error, every visible variable
 * shows, SMS within two segments. */
static void check_variant(json_t *data, const char *milestone, const char *what)
{
    char dir[4096], err[1024] = "";

    tpl_dir(dir, sizeof(dir));
    for (size_t l = 0; l < templates_locales_count; l++) {
        const char *loc = templates_locales[l];
        struct tpl_message em, sm;
        json_t *view;
        char *tmpl;
        char name[128];

        cr_assert_eq(templates_render(dir, milestone, loc, TPL_EMAIL, data, &em, err,
                                      sizeof(err)), ST_OK, "%s %s (%s): %s", loc, milestone, what,
                     err);
        cr_assert_eq(templates_render(dir, milestone, loc, TPL_SMS, data, &sm, err, sizeof(err)),
                     ST_OK, "%s %s (%s): %s", loc, milestone, what, err);
        cr_expect_leq(sms_segments(sm.sms, NULL, NULL), 2, "%s %s (%s): SMS too long: %s", loc,
                      milestone, what, sm.sms);
        view = templates_view(data, loc, milestone, err, sizeof(err));
        cr_assert_not_null(view, "%s", err);
        snprintf(name, sizeof(name), "%s.text.txt", milestone);
        tmpl = read_opt(dir, loc, name);
        cr_assert_not_null(tmpl);
        check_visible(dir, loc, name, tmpl, view, false, em.text, 0);
        free(tmpl);
        snprintf(name, sizeof(name), "%s.sms.txt", milestone);
        tmpl = read_opt(dir, loc, name);
        cr_assert_not_null(tmpl);
        check_visible(dir, loc, name, tmpl, view, false, sm.sms, 0);
        free(tmpl);
        cr_expect_null(strstr(em.text, "\n\n\n"), "%s %s (%s): empty paragraph in text", loc,
                       milestone, what);
        json_decref(view);
        tpl_message_free(&em);
        tpl_message_free(&sm);
    }
}

Test(templates, every_customs_hold_and_exception_variant_renders)
{
    static const char *const reasons[] = { "processing", "documents_required", "duties_due",
                                           "inspection", "prohibited", "delay", "unknown" };
    static const char *const actors[] = { "recipient", "shipper", "broker", "nobody", NULL };
    static const char *const problems[] = { "address_issue", "damaged", "lost", "refused",
                                            "other", NULL };

    for (size_t r = 0; r < sizeof(reasons) / sizeof(reasons[0]); r++)
        for (size_t a = 0; a < sizeof(actors) / sizeof(actors[0]); a++) {
            json_t *d = templates_sample_data("customs_held");
            char what[96];

            json_object_set_new(d, "customs_reason", json_string(reasons[r]));
            if (actors[a] != NULL)
                json_object_set_new(d, "customs_action_by", json_string(actors[a]));
            else
                json_object_del(d, "customs_action_by");
            if (strcmp(reasons[r], "duties_due") != 0) {
                json_object_del(d, "customs_amount");
                json_object_del(d, "customs_currency");
                json_object_del(d, "customs_pay_url");
            }
            snprintf(what, sizeof(what), "%s, %s", reasons[r], actors[a] ? actors[a] : "unset");
            check_variant(d, "customs_held", what);
            json_decref(d);
        }
    for (size_t p = 0; p < sizeof(problems) / sizeof(problems[0]); p++) {
        json_t *d = templates_sample_data("exception");

        if (problems[p] != NULL)
            json_object_set_new(d, "exception_reason", json_string(problems[p]));
        else
            json_object_del(d, "exception_reason");
        check_variant(d, "exception", problems[p] ? problems[p] : "unset");
        json_decref(d);
    }
}

Test(templates, minimal_data_renders_everywhere)
{
    /* only the required fields: optional sections disappear without leaving holes */
    for (size_t m = 0; m < templates_milestones_count; m++) {
        const char *ms = templates_milestones[m];
        json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s}", "shop_name", "Kiosk", "order_ref",
                              "K-1", "carrier_name", "DPD", "tracking_number", "0123456789",
                              "tracking_url", "https://k.example/t/1");

        cr_assert_not_null(d);
        if (strcmp(ms, "delayed") == 0)
            json_object_set_new(d, "eta", json_string("2026-12-01"));
        if (strcmp(ms, "customs_held") == 0)
            json_object_set_new(d, "customs_reason", json_string("unknown"));
        if (strcmp(ms, "available_for_pickup") == 0)
            json_object_set_new(d, "pickup_name", json_string("Kiosk am Markt"));
        if (strcmp(ms, "attempt_failed") == 0) {
            json_object_set_new(d, "attempt_at", json_string("2026-11-30T09:15:00+01:00"));
            json_object_set_new(d, "time_zone", json_string("Europe/Berlin"));
        }
        check_variant(d, ms, "minimal");
        json_decref(d);
    }
}
