/*
 * html.h - HTML escaping and a growable output buffer with a hard cap.
 *
 * Used by the api role's pages and /metrics; the mustache renderer shares
 * the escaping table (html_entity). A buffer that would grow past its limit,
 * or cannot allocate, stops accepting text and remembers that it failed, so
 * builders append freely and check once at the end.
 */
#ifndef ST_HTML_H
#define ST_HTML_H

#include <stdbool.h>
#include <stddef.h>

/* Entity that replaces c in HTML text and attribute values ("&amp;" for
 * '&', also < > " '), or NULL when c stands for itself. */
const char *html_entity(char c);

/* Output under construction. */
struct hbuf {
    char *p;      /* bytes, always NUL-terminated once anything was added (owned) */
    size_t len;   /* bytes written */
    size_t alloc; /* bytes allocated */
    size_t limit; /* most bytes the buffer may hold */
    bool failed;  /* over limit or out of memory: the content is incomplete */
};

/* An empty buffer that will hold at most limit bytes. */
void hbuf_init(struct hbuf *b, size_t limit);
/* Release the bytes; the buffer is empty (and usable) again. */
void hbuf_free(struct hbuf *b);
/* Take the bytes (caller frees; "" when empty); the buffer is empty again. */
char *hbuf_take(struct hbuf *b, size_t *len);

/* Append raw bytes / a string / printf output. */
void hbuf_add(struct hbuf *b, const char *s, size_t n);
void hbuf_puts(struct hbuf *b, const char *s);
void hbuf_printf(struct hbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s (NULL: nothing) HTML-escaped. */
void hbuf_esc(struct hbuf *b, const char *s);

#endif
