/*
 * mustache.c - mustache template parser and renderer (see mustache.h).
 *
 * Two phases. parse() turns a template into a flat array of nodes: text,
 * variables, partial calls, and sections whose bodies are the nodes that
 * follow them up to their `end` index. Comments and delimiter changes leave no
 * node, and standalone lines are trimmed while parsing, so rendering never
 * looks at whitespace rules. render_range() then walks the nodes with a
 * context stack that lives on the C stack (one frame per section level, so its
 * height is bounded by the depth cap).
 *
 * Partials are loaded and parsed on first use and cached for the rest of the
 * render, keyed by name and indentation: a standalone partial is indented
 * textually (every line of its source gets the caller's indentation before
 * parsing), which is how the spec defines it.
 *
 * Wording:
 *   tag       everything from an opening delimiter to its closing delimiter
 *   sigil     the byte right after the opening delimiter (# ^ / ! > = { &)
 *   standalone a section, inverted, close, comment, partial or delimiter tag
 *             alone on its line apart from spaces and tabs; the line vanishes
 *   step      one node visit or one list iteration; steps are capped so that
 *             hostile data cannot make rendering run for ever without output
 */
#include "mustache.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"

#define DELIM_MAX 16      /* longest accepted delimiter, in bytes */
#define WORK_PER_BYTE 64u /* steps allowed per byte of output cap (at least 1 MiB's worth) */
#define NAME_SHOW_MAX 64  /* longest tag name quoted in an error message */

/* What a parsed node is. */
enum node_kind {
    N_TEXT,     /* literal bytes copied to the output */
    N_VAR,      /* {{x}}, {{{x}}} or {{&x}} */
    N_SECTION,  /* {{#x}} ... {{/x}} */
    N_INVERTED, /* {{^x}} ... {{/x}} */
    N_PARTIAL   /* {{>x}} */
};

/* One element of a parsed template. */
struct node {
    enum node_kind kind; /* what this node is */
    bool escape;         /* N_VAR: the {{x}} form, HTML-escaped when the options ask */
    size_t off;          /* byte offset in the source where the node starts (for errors) */
    const char *s;       /* N_TEXT: the bytes; otherwise the tag name (not NUL-terminated) */
    size_t n;            /* length of s */
    const char *ind;     /* N_PARTIAL: indentation of a standalone call, NULL otherwise */
    size_t ind_n;        /* length of ind */
    size_t end;          /* N_SECTION/N_INVERTED: index of the first node after the body */
};

/* A parsed template: the node array and the source it points into. */
struct tpl {
    const char *src;    /* source text the nodes point into (not owned) */
    size_t len;         /* length of src */
    struct node *nodes; /* node array (owned) */
    size_t n;           /* nodes in use */
    size_t cap;         /* nodes allocated */
    const char *pname;  /* partial name for error messages; NULL for the top template */
    size_t shift;       /* columns the partial indentation added to every line */
};

/* State of one parse() call. */
struct parser {
    struct tpl *t;             /* template being built */
    unsigned max_depth;        /* most sections allowed open at once */
    size_t *open;              /* indices of the open sections, innermost last */
    size_t nopen;              /* entries used in open */
    char otag[DELIM_MAX + 1];  /* current opening delimiter */
    size_t olen;               /* its length */
    char ctag[DELIM_MAX + 1];  /* current closing delimiter */
    size_t clen;               /* its length */
    char *err;                 /* caller's message buffer (may be NULL) */
    size_t errlen;             /* its size */
};

/* Output buffer with a hard size limit. */
struct buf {
    char *p;      /* bytes, NUL-terminated once finished (owned) */
    size_t len;   /* bytes written */
    size_t alloc; /* bytes allocated (always > len once allocated) */
    size_t limit; /* most bytes the output may hold */
};

/* A loaded partial, cached for the rest of one render. */
struct pentry {
    struct pentry *next; /* next cache entry */
    char *name;          /* partial name, NUL-terminated (owned) */
    char *ind;           /* indentation the entry was built with (owned; NULL if none) */
    size_t ind_n;        /* length of ind */
    char *src;           /* loaded, indented source (owned); NULL when the loader had none */
    struct tpl t;        /* src parsed; t.n == 0 when src is NULL */
};

/* One level of the context stack. */
struct ctx {
    json_t *v;            /* the value pushed by a section (or the root data) */
    const struct ctx *up; /* enclosing level; NULL at the root */
};

/* State of one mustache_render() call. */
struct render {
    bool escape;                 /* HTML-escape {{x}} */
    unsigned max_depth;          /* cap on section/partial nesting */
    mustache_partial_fn partial; /* partial loader (may be NULL) */
    void *partial_ud;            /* its user data */
    struct buf out;              /* rendered output */
    size_t steps;                /* steps taken so far */
    size_t max_steps;            /* cap on steps */
    struct pentry *cache;        /* partials loaded so far */
    char *err;                   /* caller's message buffer (may be NULL) */
    size_t errlen;               /* its size */
};

/* Write a message with no location into err (if any). */
static void plain_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void plain_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(err, errlen, fmt, ap) < 0)
        err[0] = '\0';
    va_end(ap);
}

/* Write "line L col C[ in partial "p"]: <message>" for byte off of t into err. */
static void fail_at(char *err, size_t errlen, const struct tpl *t, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void fail_at(char *err, size_t errlen, const struct tpl *t, size_t off, const char *fmt, ...)
{
    size_t line = 1, col = 1, i;
    va_list ap;
    int k;

    if (err == NULL || errlen == 0)
        return;
    assert(off <= t->len);
    for (i = 0; i < off; i++) {
        if (t->src[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    col = col > t->shift ? col - t->shift : 1;
    if (t->pname != NULL)
        k = snprintf(err, errlen, "line %zu col %zu in partial \"%.*s\": ", line, col,
                     NAME_SHOW_MAX, t->pname);
    else
        k = snprintf(err, errlen, "line %zu col %zu: ", line, col);
    if (k < 0) {
        err[0] = '\0';
        return;
    }
    if ((size_t)k >= errlen)
        return;
    va_start(ap, fmt);
    if (vsnprintf(err + k, errlen - (size_t)k, fmt, ap) < 0)
        err[k] = '\0';
    va_end(ap);
}

/* Length of a tag name as shown in messages (long names are cut). */
static int show_n(size_t n)
{
    return n > NAME_SHOW_MAX ? NAME_SHOW_MAX : (int)n;
}

/* True for the bytes that may pad a tag name. */
static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* First occurrence of needle[nn] in hay[hn], or NULL. */
static const char *find(const char *hay, size_t hn, const char *needle, size_t nn)
{
    const char *p = hay, *last;

    if (nn == 0 || nn > hn)
        return NULL;
    last = hay + (hn - nn);
    while (p <= last) {
        p = memchr(p, (unsigned char)needle[0], (size_t)(last - p) + 1);
        if (p == NULL)
            return NULL;
        if (memcmp(p, needle, nn) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* Append a zeroed node to t; returns it, or NULL when out of memory. */
static struct node *add_node(struct tpl *t, enum node_kind kind, size_t off)
{
    struct node *nd;

    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        struct node *grown;

        if (ncap > SIZE_MAX / sizeof(*grown))
            return NULL;
        grown = realloc(t->nodes, ncap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        t->nodes = grown;
        t->cap = ncap;
    }
    nd = &t->nodes[t->n++];
    memset(nd, 0, sizeof(*nd));
    nd->kind = kind;
    nd->off = off;
    return nd;
}

/* Trim padding from src[*b, *e) in place. */
static void trim(const char *src, size_t *b, size_t *e)
{
    while (*b < *e && is_ws(src[*b]))
        (*b)++;
    while (*e > *b && is_ws(src[*e - 1]))
        (*e)--;
}

/* Check the tag name src[b, e) (after trimming); on success set *name, *n and
 * return NULL, else return what is wrong with it. */
static const char *get_name(const char *src, size_t b, size_t e, const char **name, size_t *n)
{
    size_t i;

    trim(src, &b, &e);
    if (b == e)
        return "empty tag name";
    *name = src + b;
    *n = e - b;
    if (*n == 1 && src[b] == '.')
        return NULL;
    if (src[b] == '.' || src[e - 1] == '.')
        return "invalid tag name";
    for (i = b; i < e; i++) {
        if (is_ws(src[i]))
            return "invalid tag name (contains whitespace)";
        if (src[i] == '.' && i + 1 < e && src[i + 1] == '.')
            return "invalid tag name";
    }
    return NULL;
}

/* Apply a delimiter change whose content (between the two '=') is s[b, e);
 * returns false when it is not two delimiters separated by whitespace. */
static bool set_delims(struct parser *ps, const char *s, size_t b, size_t e)
{
    size_t o_b, o_e, c_b, c_e, i;

    trim(s, &b, &e);
    o_b = b;
    for (o_e = o_b; o_e < e && !is_ws(s[o_e]); o_e++)
        ;
    for (c_b = o_e; c_b < e && is_ws(s[c_b]); c_b++)
        ;
    c_e = e;
    if (o_e == o_b || c_e == c_b || o_e == c_b)
        return false;
    if (o_e - o_b > DELIM_MAX || c_e - c_b > DELIM_MAX)
        return false;
    for (i = c_b; i < c_e; i++)
        if (is_ws(s[i]))
            return false;
    if (memchr(s + o_b, '=', o_e - o_b) != NULL || memchr(s + c_b, '=', c_e - c_b) != NULL)
        return false;
    memcpy(ps->otag, s + o_b, o_e - o_b);
    ps->olen = o_e - o_b;
    ps->otag[ps->olen] = '\0';
    memcpy(ps->ctag, s + c_b, c_e - c_b);
    ps->clen = c_e - c_b;
    ps->ctag[ps->clen] = '\0';
    return true;
}

/* Is the tag starting at start preceded on its line only by spaces and tabs,
 * with no other tag on that line? pos is where unparsed text begins. On true
 * *ls is the start of the line. */
static bool blank_before(const char *src, size_t pos, size_t start, size_t *ls)
{
    size_t i = start;

    while (i > pos && (src[i - 1] == ' ' || src[i - 1] == '\t'))
        i--;
    if (i > pos) {
        if (src[i - 1] != '\n')
            return false;
    } else if (pos > 0 && src[pos - 1] != '\n') {
        return false; /* an earlier tag ended on this line */
    }
    *ls = i;
    return true;
}

/* Is the tag ending at tag_end followed only by spaces and tabs up to the end
 * of its line? On true *next is where the next line begins. */
static bool blank_after(const char *src, size_t len, size_t tag_end, size_t *next)
{
    size_t i = tag_end;

    while (i < len && (src[i] == ' ' || src[i] == '\t'))
        i++;
    if (i == len)
        *next = len;
    else if (src[i] == '\n')
        *next = i + 1;
    else if (src[i] == '\r' && i + 1 < len && src[i + 1] == '\n')
        *next = i + 2;
    else
        return false;
    return true;
}

/* Handle one tag whose sigil is sigil and whose content (after the sigil) is
 * src[cb, ce); start is the tag's offset, ls the start of its line when it
 * is standalone (else SIZE_MAX). Returns 0 or -1 with err written. */
static int parse_tag(struct parser *ps, char sigil, size_t start, size_t cb, size_t ce, size_t ls)
{
    struct tpl *t = ps->t;
    const char *name = NULL, *why;
    struct node *nd;
    size_t n = 0;

    switch (sigil) {
    case '!':
        return 0;
    case '=':
        if (!set_delims(ps, t->src, cb, ce)) {
            fail_at(ps->err, ps->errlen, t, start,
                    "bad delimiter change (want {{=<open> <close>=}}, at most %d bytes each, "
                    "no whitespace or '=')",
                    DELIM_MAX);
            return -1;
        }
        return 0;
    case '<':
    case '$':
        fail_at(ps->err, ps->errlen, t, start,
                "unsupported tag '%c' (template inheritance is not supported)", sigil);
        return -1;
    default:
        break;
    }
    why = get_name(t->src, cb, ce, &name, &n);
    if (why != NULL) {
        fail_at(ps->err, ps->errlen, t, start, "%s", why);
        return -1;
    }
    if (sigil == '/') {
        const struct node *top;

        if (ps->nopen == 0) {
            fail_at(ps->err, ps->errlen, t, start, "unexpected {{/%.*s}}: no section is open",
                    show_n(n), name);
            return -1;
        }
        top = &t->nodes[ps->open[ps->nopen - 1]];
        if (top->n != n || memcmp(top->s, name, n) != 0) {
            fail_at(ps->err, ps->errlen, t, start, "expected {{/%.*s}} got {{/%.*s}}",
                    show_n(top->n), top->s, show_n(n), name);
            return -1;
        }
        t->nodes[ps->open[--ps->nopen]].end = t->n;
        return 0;
    }
    if ((sigil == '#' || sigil == '^') && ps->nopen >= ps->max_depth) {
        fail_at(ps->err, ps->errlen, t, start, "nesting too deep (limit %u)", ps->max_depth);
        return -1;
    }
    switch (sigil) {
    case '#':
        nd = add_node(t, N_SECTION, start);
        break;
    case '^':
        nd = add_node(t, N_INVERTED, start);
        break;
    case '>':
        nd = add_node(t, N_PARTIAL, start);
        break;
    default:
        nd = add_node(t, N_VAR, start);
        break;
    }
    if (nd == NULL) {
        plain_fail(ps->err, ps->errlen, "out of memory");
        return -1;
    }
    nd->s = name;
    nd->n = n;
    nd->escape = sigil != '{' && sigil != '&';
    if (sigil == '#' || sigil == '^')
        ps->open[ps->nopen++] = t->n - 1;
    if (sigil == '>' && ls != SIZE_MAX && ls < start) {
        nd->ind = t->src + ls;
        nd->ind_n = start - ls;
    }
    return 0;
}

/* Add a text node for src[b, e) when it is not empty. Returns 0 or -1. */
static int add_text(struct parser *ps, size_t b, size_t e)
{
    struct node *nd;

    if (b >= e)
        return 0;
    nd = add_node(ps->t, N_TEXT, b);
    if (nd == NULL) {
        plain_fail(ps->err, ps->errlen, "out of memory");
        return -1;
    }
    nd->s = ps->t->src + b;
    nd->n = e - b;
    return 0;
}

/* Parse t->src into t->nodes with at most max_depth sections open at once.
 * Returns 0, or -1 with err written (t->nodes may hold a partial result, which
 * the caller frees either way). */
static int parse(struct tpl *t, unsigned max_depth, char *err, size_t errlen)
{
    const char *src = t->src;
    size_t len = t->len, pos = 0;
    struct parser ps;
    int rc = -1;

    memset(&ps, 0, sizeof(ps));
    ps.t = t;
    ps.max_depth = max_depth;
    ps.err = err;
    ps.errlen = errlen;
    memcpy(ps.otag, "{{", 3);
    ps.olen = 2;
    memcpy(ps.ctag, "}}", 3);
    ps.clen = 2;
    ps.open = calloc(max_depth, sizeof(*ps.open));
    if (ps.open == NULL) {
        plain_fail(err, errlen, "out of memory");
        return -1;
    }
    while (pos < len) {
        const char *o = find(src + pos, len - pos, ps.otag, ps.olen), *c;
        size_t start, inner, cb, ce, tag_end, ls = SIZE_MAX, next = 0;
        char sigil, close[DELIM_MAX + 2];
        size_t close_n = ps.clen;
        bool standalone = false;

        if (o == NULL) {
            if (add_text(&ps, pos, len) != 0)
                goto out;
            break;
        }
        start = (size_t)(o - src);
        inner = start + ps.olen;
        sigil = inner < len ? src[inner] : '\0';
        memcpy(close, ps.ctag, ps.clen);
        if (sigil == '{' || sigil == '=') { /* {{{x}}} and {{=a b=}} close with }}} and =}} */
            close[0] = sigil == '{' ? '}' : '=';
            memcpy(close + 1, ps.ctag, ps.clen);
            close_n = ps.clen + 1;
        }
        cb = (sigil != '\0' && strchr("#^/!>={&<$", sigil) != NULL) ? inner + 1 : inner;
        c = cb <= len ? find(src + cb, len - cb, close, close_n) : NULL;
        if (c == NULL && sigil == '=') {
            fail_at(err, errlen, t, start, "bad delimiter change (no %.*s closes it)",
                    (int)close_n, close);
            goto out;
        }
        if (c == NULL) {
            fail_at(err, errlen, t, start, "unclosed tag (no %.*s after %.*s)", (int)close_n,
                    close, (int)ps.olen, ps.otag);
            goto out;
        }
        ce = (size_t)(c - src);
        tag_end = ce + close_n;
        if (sigil != '\0' && strchr("#^/!>=", sigil) != NULL &&
            blank_before(src, pos, start, &ls) && blank_after(src, len, tag_end, &next))
            standalone = true;
        else
            ls = SIZE_MAX;
        if (add_text(&ps, pos, standalone ? ls : start) != 0)
            goto out;
        if (parse_tag(&ps, sigil, start, cb, ce, ls) != 0)
            goto out;
        pos = standalone ? next : tag_end;
    }
    if (ps.nopen > 0) {
        const struct node *top = &t->nodes[ps.open[ps.nopen - 1]];

        fail_at(err, errlen, t, top->off, "unclosed section {{%c%.*s}}",
                top->kind == N_SECTION ? '#' : '^', show_n(top->n), top->s);
        goto out;
    }
    rc = 0;
out:
    free(ps.open);
    return rc;
}

/* Append s[n] to b. Returns 0, -1 when over the limit, -2 when out of memory. */
static int buf_add(struct buf *b, const char *s, size_t n)
{
    if (n > b->limit - b->len)
        return -1;
    if (b->len + n + 1 > b->alloc) {
        size_t want = b->alloc ? b->alloc : 256;
        char *grown;

        while (want < b->len + n + 1 && want <= b->limit)
            want *= 2;
        if (want > b->limit + 1)
            want = b->limit + 1;
        grown = realloc(b->p, want);
        if (grown == NULL)
            return -2;
        b->p = grown;
        b->alloc = want;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

/* Append s[n] to the output, HTML-escaped when escape is set; on failure
 * write an error located at node nd of t. Returns 0 or -1. */
static int put(struct render *r, const struct tpl *t, const struct node *nd, const char *s,
               size_t n, bool escape)
{
    size_t i, from = 0;
    int rc = 0;

    if (!escape)
        from = n; /* the whole string is one unescaped run */
    for (i = from; i < n && rc == 0; i++) {
        const char *ent = html_entity(s[i]);

        if (ent == NULL)
            continue;
        rc = buf_add(&r->out, s + from, i - from);
        if (rc == 0)
            rc = buf_add(&r->out, ent, strlen(ent));
        from = i + 1;
    }
    if (rc == 0 && !escape)
        rc = buf_add(&r->out, s, n);
    else if (rc == 0)
        rc = buf_add(&r->out, s + from, n - from);
    if (rc == -1)
        fail_at(r->err, r->errlen, t, nd->off, "output over cap (%zu bytes)", r->out.limit);
    else if (rc == -2)
        plain_fail(r->err, r->errlen, "out of memory");
    return rc == 0 ? 0 : -1;
}

/* Format a real in the shortest form that reads back as the same double. */
static void fmt_real(double d, char *buf, size_t cap)
{
    int prec;

    for (prec = 15; prec <= 17; prec++) {
        if (snprintf(buf, cap, "%.*g", prec, d) < 0) {
            buf[0] = '\0';
            return;
        }
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* Resolve a (possibly dotted) name against the context stack: the first part
 * is looked up from the innermost level outwards, the rest only inside what
 * the first part found. Returns NULL when missing. */
static json_t *lookup(const struct ctx *c, const char *name, size_t n)
{
    const char *dot;
    json_t *v = NULL;
    size_t i, k;

    if (n == 1 && name[0] == '.')
        return c != NULL ? c->v : NULL;
    dot = memchr(name, '.', n);
    k = dot != NULL ? (size_t)(dot - name) : n;
    for (; c != NULL; c = c->up) {
        if (json_is_object(c->v) && (v = json_object_getn(c->v, name, k)) != NULL)
            break;
    }
    for (i = k; v != NULL && i < n; i += k) {
        i++; /* skip the '.' */
        dot = memchr(name + i, '.', n - i);
        k = dot != NULL ? (size_t)(dot - (name + i)) : n - i;
        v = json_is_object(v) ? json_object_getn(v, name + i, k) : NULL;
    }
    return v;
}

/* Does v make a section render (and an inverted section not)? */
static bool truthy(const json_t *v)
{
    if (v == NULL)
        return false;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    default:
        return true;
    }
}

/* Write the value of variable node nd (v may be NULL) to the output. */
static int emit_value(struct render *r, const struct tpl *t, const struct node *nd, const json_t *v)
{
    char num[64];
    const char *s;
    size_t n;

    if (v == NULL)
        return 0;
    switch (json_typeof(v)) {
    case JSON_STRING:
        s = json_string_value(v);
        n = json_string_length(v);
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
        n = strlen(num);
        break;
    case JSON_REAL:
        fmt_real(json_real_value(v), num, sizeof(num));
        s = num;
        n = strlen(num);
        break;
    case JSON_TRUE:
        s = "true";
        n = 4;
        break;
    case JSON_FALSE:
        s = "false";
        n = 5;
        break;
    default:
        return 0; /* null, objects and arrays render as nothing */
    }
    return put(r, t, nd, s, n, nd->escape && r->escape);
}

/* Copy src[n] into a new NUL-terminated string; NULL when out of memory. */
static char *dup_n(const char *src, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        memcpy(s, src, n);
        s[n] = '\0';
    }
    return s;
}

/* Return a copy of src with ind[ind_n] at the start of every line (a final
 * line ending gets none); NULL when out of memory or too large. */
static char *indent_source(const char *src, const char *ind, size_t ind_n)
{
    size_t len = strlen(src), lines = 1, i, o = 0, total;
    char *dst;

    for (i = 0; i + 1 < len; i++)
        if (src[i] == '\n')
            lines++;
    if (lines > (SIZE_MAX - len - 1) / ind_n)
        return NULL;
    total = len + lines * ind_n + 1;
    dst = malloc(total);
    if (dst == NULL)
        return NULL;
    memcpy(dst, ind, ind_n);
    o = ind_n;
    for (i = 0; i < len; i++) {
        dst[o++] = src[i];
        if (src[i] == '\n' && i + 1 < len) {
            memcpy(dst + o, ind, ind_n);
            o += ind_n;
        }
    }
    assert(o + 1 == total);
    dst[o] = '\0';
    return dst;
}

/* Find or load the partial called by node nd (in t). On success returns 0
 * and *out is the parsed partial, or NULL when the loader knows none. */
static int get_partial(struct render *r, const struct tpl *t, const struct node *nd,
                       const struct tpl **out)
{
    struct pentry *e;
    char *raw;

    *out = NULL;
    for (e = r->cache; e != NULL; e = e->next) {
        if (strlen(e->name) == nd->n && memcmp(e->name, nd->s, nd->n) == 0 &&
            e->ind_n == nd->ind_n && (nd->ind_n == 0 || memcmp(e->ind, nd->ind, nd->ind_n) == 0)) {
            *out = e->src != NULL ? &e->t : NULL;
            return 0;
        }
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        goto oom;
    e->next = r->cache;
    r->cache = e; /* owned by the cache from here on, whatever happens next */
    e->name = dup_n(nd->s, nd->n);
    if (e->name == NULL)
        goto oom;
    if (nd->ind_n > 0) {
        e->ind = dup_n(nd->ind, nd->ind_n);
        if (e->ind == NULL)
            goto oom;
        e->ind_n = nd->ind_n;
    }
    raw = r->partial != NULL ? r->partial(r->partial_ud, e->name) : NULL;
    if (raw == NULL)
        return 0; /* unknown partial: renders as empty */
    if (e->ind_n > 0) {
        e->src = indent_source(raw, e->ind, e->ind_n);
        free(raw);
        if (e->src == NULL)
            goto oom;
    } else {
        e->src = raw;
    }
    e->t.src = e->src;
    e->t.len = strlen(e->src);
    e->t.pname = e->name;
    e->t.shift = e->ind_n;
    if (parse(&e->t, r->max_depth, r->err, r->errlen) != 0)
        return -1;
    *out = &e->t;
    return 0;
oom:
    fail_at(r->err, r->errlen, t, nd->off, "out of memory loading a partial");
    return -1;
}

/* Free every cached partial. */
static void free_cache(struct pentry *e)
{
    while (e != NULL) {
        struct pentry *next = e->next;

        free(e->t.nodes);
        free(e->src);
        free(e->ind);
        free(e->name);
        free(e);
        e = next;
    }
}

/* Count one step; false (with err written) once the work cap is passed. */
static bool step(struct render *r, const struct tpl *t, const struct node *nd)
{
    if (++r->steps <= r->max_steps)
        return true;
    fail_at(r->err, r->errlen, t, nd->off, "too much work (over %zu steps)", r->max_steps);
    return false;
}

/* Check that entering one more level from depth is allowed. */
static bool deeper(struct render *r, const struct tpl *t, const struct node *nd, unsigned depth)
{
    if (depth < r->max_depth)
        return true;
    fail_at(r->err, r->errlen, t, nd->off, "nesting too deep (limit %u)", r->max_depth);
    return false;
}

/* Render nodes [from, to) of t in context c, at nesting depth depth.
 * Returns 0 or -1 with r->err written. */
static int render_range(struct render *r, const struct tpl *t, size_t from, size_t to,
                        const struct ctx *c, unsigned depth)
{
    size_t i = from;

    while (i < to) {
        const struct node *nd = &t->nodes[i];
        const struct tpl *pt;
        struct ctx sub;
        json_t *v, *item;
        size_t k;

        if (!step(r, t, nd))
            return -1;
        switch (nd->kind) {
        case N_TEXT:
            if (put(r, t, nd, nd->s, nd->n, false) != 0)
                return -1;
            i++;
            break;
        case N_VAR:
            if (emit_value(r, t, nd, lookup(c, nd->s, nd->n)) != 0)
                return -1;
            i++;
            break;
        case N_SECTION:
            v = lookup(c, nd->s, nd->n);
            if (truthy(v)) {
                if (!deeper(r, t, nd, depth))
                    return -1;
                sub.up = c;
                if (json_is_array(v)) {
                    json_array_foreach(v, k, item) {
                        if (!step(r, t, nd))
                            return -1;
                        sub.v = item;
                        if (render_range(r, t, i + 1, nd->end, &sub, depth + 1) != 0)
                            return -1;
                    }
                } else {
                    sub.v = v;
                    if (render_range(r, t, i + 1, nd->end, &sub, depth + 1) != 0)
                        return -1;
                }
            }
            i = nd->end;
            break;
        case N_INVERTED:
            if (!truthy(lookup(c, nd->s, nd->n))) {
                if (!deeper(r, t, nd, depth))
                    return -1;
                if (render_range(r, t, i + 1, nd->end, c, depth + 1) != 0)
                    return -1;
            }
            i = nd->end;
            break;
        case N_PARTIAL:
            if (get_partial(r, t, nd, &pt) != 0)
                return -1;
            if (pt != NULL && pt->n > 0) {
                if (!deeper(r, t, nd, depth))
                    return -1;
                if (render_range(r, pt, 0, pt->n, c, depth + 1) != 0)
                    return -1;
            }
            i++;
            break;
        }
    }
    return 0;
}

/* max_depth as given, defaulted and clamped. */
static unsigned effective_depth(unsigned max_depth)
{
    if (max_depth == 0)
        return MUSTACHE_DEFAULT_MAX_DEPTH;
    return max_depth > MUSTACHE_HARD_MAX_DEPTH ? MUSTACHE_HARD_MAX_DEPTH : max_depth;
}

int mustache_render(const char *tmpl, json_t *data, const struct mustache_opts *opts, char **out,
                    char *err, size_t errlen)
{
    struct mustache_opts o;
    struct tpl top;
    struct render r;
    struct ctx root;
    size_t budget;
    int rc = -1;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || tmpl == NULL) {
        plain_fail(err, errlen, "mustache_render: %s is NULL", out == NULL ? "out" : "tmpl");
        return -1;
    }
    *out = NULL;
    memset(&o, 0, sizeof(o));
    if (opts != NULL)
        o = *opts;
    memset(&top, 0, sizeof(top));
    memset(&r, 0, sizeof(r));
    top.src = tmpl;
    top.len = strlen(tmpl);
    r.escape = o.html_escape;
    r.max_depth = effective_depth(o.max_depth);
    r.partial = o.partial;
    r.partial_ud = o.partial_ud;
    r.err = err;
    r.errlen = errlen;
    r.out.limit = o.max_output != 0 ? o.max_output : MUSTACHE_DEFAULT_MAX_OUTPUT;
    if (r.out.limit > SIZE_MAX / 4)
        r.out.limit = SIZE_MAX / 4;
    budget = r.out.limit > MUSTACHE_DEFAULT_MAX_OUTPUT ? r.out.limit : MUSTACHE_DEFAULT_MAX_OUTPUT;
    r.max_steps = budget > SIZE_MAX / WORK_PER_BYTE ? SIZE_MAX : budget * WORK_PER_BYTE;

    if (parse(&top, r.max_depth, err, errlen) != 0)
        goto done;
    root.v = data;
    root.up = NULL;
    if (render_range(&r, &top, 0, top.n, &root, 0) != 0)
        goto done;
    if (r.out.p == NULL) {
        r.out.p = malloc(1);
        if (r.out.p == NULL) {
            plain_fail(err, errlen, "out of memory");
            goto done;
        }
    }
    r.out.p[r.out.len] = '\0';
    *out = r.out.p;
    r.out.p = NULL; /* handed to the caller */
    rc = 0;
done:
    free(r.out.p);
    free_cache(r.cache);
    free(top.nodes);
    return rc;
}

int mustache_check(const char *tmpl, char *err, size_t errlen)
{
    struct tpl t;
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (tmpl == NULL) {
        plain_fail(err, errlen, "mustache_check: tmpl is NULL");
        return -1;
    }
    memset(&t, 0, sizeof(t));
    t.src = tmpl;
    t.len = strlen(tmpl);
    rc = parse(&t, MUSTACHE_DEFAULT_MAX_DEPTH, err, errlen);
    free(t.nodes);
    return rc;
}
