/*
 * html.c - HTML escaping and the capped output buffer (html.h).
 */
#include "html.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *html_entity(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    default: return NULL;
    }
}

void hbuf_init(struct hbuf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

void hbuf_free(struct hbuf *b)
{
    free(b->p);
    hbuf_init(b, b->limit);
}

char *hbuf_take(struct hbuf *b, size_t *len)
{
    char *p = b->p != NULL ? b->p : strdup("");

    if (len != NULL)
        *len = b->p != NULL ? b->len : 0;
    b->p = NULL;
    hbuf_free(b);
    return p;
}

void hbuf_add(struct hbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > b->limit - b->len) {
        b->failed = true;
        return;
    }
    if (b->len + n + 1 > b->alloc) {
        size_t want = b->alloc ? b->alloc : 1024;
        char *grown;

        while (want < b->len + n + 1)
            want *= 2;
        if (want > b->limit + 1)
            want = b->limit + 1;
        if ((grown = realloc(b->p, want)) == NULL) {
            b->failed = true;
            return;
        }
        b->p = grown;
        b->alloc = want;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void hbuf_puts(struct hbuf *b, const char *s)
{
    hbuf_add(b, s, strlen(s));
}

void hbuf_printf(struct hbuf *b, const char *fmt, ...)
{
    char small[512], *big = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        hbuf_add(b, small, (size_t)n);
        return;
    }
    va_start(ap, fmt);
    n = vasprintf(&big, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    hbuf_add(b, big, (size_t)n);
    free(big);
}

void hbuf_esc(struct hbuf *b, const char *s)
{
    size_t from = 0, i;

    if (s == NULL)
        return;
    for (i = 0; s[i] != '\0'; i++) {
        const char *ent = html_entity(s[i]);

        if (ent == NULL)
            continue;
        hbuf_add(b, s + from, i - from);
        hbuf_puts(b, ent);
        from = i + 1;
    }
    hbuf_add(b, s + from, i - from);
}
