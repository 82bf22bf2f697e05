/*
 * mustache.h - the mustache renderer behind notification templates.
 *
 * Renders a mustache template (email text, email HTML, SMS) against jansson
 * data. Supports the core of the mustache spec: variables, sections, inverted
 * sections, comments, partials (with standalone indentation) and set
 * delimiters. Lambdas and the optional "~" modules (inheritance, dynamic
 * names) are not supported.
 *
 * Trust model: the template is trusted, the data is not. Output size, section
 * and partial nesting, and total rendering work (node visits plus list
 * iterations: 64 per byte of max_output, and never fewer than 64 Mi) are
 * capped, so hostile data ends in an error message, never a crash or a hang.
 * The renderer works on bytes: invalid UTF-8 in data passes through unchanged.
 * There is no global state; concurrent renders are safe.
 *
 * Wording:
 *   falsey   missing, null, false, "" and [] (numbers, including 0, and all
 *            objects are truthy)
 *   value    strings as-is; integers in decimal; reals in the shortest form
 *            that reads back exactly ("1.21", "3"); true/false as "true" and
 *            "false"; null, objects and arrays render as nothing
 *   escaping with html_escape, {{x}} turns & < > " ' into &amp; &lt; &gt;
 *            &quot; &#39;; {{{x}}} and {{&x}} are never escaped
 *
 * Errors are written as "line L col C: what is wrong"; inside a partial the
 * location is in that partial and the message says so
 * ("line L col C in partial \"name\": ...").
 */
#ifndef ST_MUSTACHE_H
#define ST_MUSTACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Default cap on the rendered size (1 MiB). */
#define MUSTACHE_DEFAULT_MAX_OUTPUT ((size_t)1 << 20)
/* Default cap on section/partial nesting. */
#define MUSTACHE_DEFAULT_MAX_DEPTH 64u
/* Hard ceiling on max_depth (larger requests are clamped), to bound C stack use. */
#define MUSTACHE_HARD_MAX_DEPTH 1024u

/* Loads a partial by name; returns a heap copy (caller frees) or NULL when
 * unknown (renders as empty). Called at most once per name and indentation
 * during one render. */
typedef char *(*mustache_partial_fn)(void *ud, const char *name);

/* Rendering options; a zeroed struct gives text mode with default caps. */
struct mustache_opts {
    bool html_escape;            /* {{x}} HTML-escaped (true for HTML parts, false for text/SMS) */
    size_t max_output;           /* cap on the rendered size in bytes; 0 = 1 MiB default */
    unsigned max_depth;          /* cap on section/partial nesting; 0 = 64, clamped to 1024 */
    mustache_partial_fn partial; /* partial loader; NULL = every partial renders as empty */
    void *partial_ud;            /* passed to partial unchanged */
};

/* Render tmpl with data (borrowed; NULL renders every name as missing) using
 * opts (NULL = all defaults). On success *out is a heap NUL-terminated string
 * (caller frees) and 0 is returned. On error returns -1, *out is NULL and
 * err[errlen] (may be NULL) gets "line L col C: what is wrong": unclosed
 * section, mismatched close tag ("expected {{/a}} got {{/b}}"), unclosed tag,
 * bad delimiter change, output over cap, nesting too deep, too much work. */
int mustache_render(const char *tmpl, json_t *data, const struct mustache_opts *opts, char **out,
                    char *err, size_t errlen);

/* Parse-only check used by the template linter (default depth cap; partials
 * are not loaded): returns 0, or -1 with err as for mustache_render. */
int mustache_check(const char *tmpl, char *err, size_t errlen);

#endif
