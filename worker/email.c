/*
 * email.c - the email channel: RFC 5322 / MIME formatting and SMTP delivery.
 *
 * Formatting (email_build) is pure: data in, a complete 7-bit message out.
 * Every header value that comes from data is checked first: CR, LF, NUL or
 * any other control character, invalid UTF-8, a malformed address or an
 * oversized field fails the message with ST_PERMANENT and names the field,
 * so nothing from data can start a new header line. Non-ASCII text goes into
 * RFC 2047 encoded-words (UTF-8, B encoding); bodies are multipart/alternative
 * (text/plain, then text/html) in quoted-printable or base64, lines <= 76.
 *
 * Delivery (email_channel): with SHIPTRACK_SMTP_HOST set, a batch of messages
 * goes over one libesmtp session (one connection, one EHLO/STARTTLS/AUTH);
 * each message's MAIL, RCPT and DATA replies are read back: 2xx ST_OK, 4xx
 * ST_RETRY, 5xx ST_PERMANENT, no reply (connection refused or dropped)
 * ST_RETRY; a rejected AUTH, a 5xx to MAIL FROM other than 552 (the relay
 * refuses our sender, e.g. 530 authentication required), a missing required
 * STARTTLS or a certificate that fails verification is ST_CONFIG. Without a relay, each message becomes an
 * .eml file in SHIPTRACK_EML_DIR, written to a temporary name and renamed.
 *
 * Notes on libesmtp 1.1.0: smtp_set_timeout() takes milliseconds, whatever its
 * documentation says; and destroying a session frees the process-wide SSL_CTX
 * libesmtp creates for itself, so a second STARTTLS session in the same
 * process would use freed memory (seen under ASan). Each session therefore
 * gets an SSL_CTX of ours (TLS 1.2+, the system CA store, or SSL_CERT_FILE /
 * SSL_CERT_DIR), which libesmtp leaves to us: it is freed after the session
 * (test_email's STARTTLS tests check both under ASan/LSan). Certificate and
 * host-name checks are libesmtp's, enforced in event_cb() unless
 * SHIPTRACK_SMTP_TLS_VERIFY=off.
 */
#include "channel.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* openssl/ssl.h and auth-client.h first: they make libesmtp.h declare
 * smtp_starttls_set_ctx() and smtp_auth_set_context(). */
#include <openssl/ssl.h>
#include <auth-client.h>
#include <libesmtp.h>

#include "config.h"
#include "log.h"
#include "text.h"

#define HDR_FOLD     78   /* fold header lines beyond this many octets */
#define EW_BYTES     42   /* UTF-8 bytes per encoded-word: 12 + 56 = 68 octets */
#define BODY_LINE    76   /* transfer-encoded body line limit */

/* ---- a capped growable buffer ---- */

struct sbuf {
    char *p;
    size_t len, cap, max;
    bool failed;          /* out of memory or over max */
};

/* Append n bytes; on failure mark the buffer failed and drop the data. */
static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > b->max || b->len + n > b->max) {
        b->failed = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Append a NUL-terminated string. */
static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* ---- validation ---- */

/* True when s[0..n) is valid UTF-8. */
static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;

    while (n > 0) {
        size_t k = utf8_decode(p, n, &cp);

        if (k == 0)
            return false;
        p += k;
        n -= k;
    }
    return true;
}

/* Check a header value from data: present (unless optional), at most max
 * bytes, valid UTF-8, no CR, LF or other control character (C0, DEL, C1). */
static enum st_err check_header_value(const char *field, const char *v, size_t max, bool optional,
                                      char *err, size_t errlen)
{
    size_t n;
    const unsigned char *p;
    uint32_t cp;

    if (v == NULL || v[0] == '\0') {
        if (optional)
            return ST_OK;
        return st_fail(err, errlen, ST_PERMANENT, "email: %s is missing", field);
    }
    n = strnlen(v, max + 1);
    if (n > max)
        return st_fail(err, errlen, ST_PERMANENT, "email: %s is longer than %zu bytes", field,
                       max);
    for (p = (const unsigned char *)v; *p != '\0';) {
        size_t k = utf8_decode(p, n - (size_t)(p - (const unsigned char *)v), &cp);

        if (k == 0)
            return st_fail(err, errlen, ST_PERMANENT, "email: %s is not valid UTF-8", field);
        if (cp == '\r' || cp == '\n')
            return st_fail(err, errlen, ST_PERMANENT,
                           "email: %s contains a line break (CR/LF); header injection refused",
                           field);
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
            return st_fail(err, errlen, ST_PERMANENT,
                           "email: %s contains control character U+%04X", field, (unsigned)cp);
        p += k;
    }
    return ST_OK;
}

/* RFC 5322 atext (letters, digits and !#$%&'*+-/=?^_`{|}~). */
static bool is_atext(int c)
{
    return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

bool email_addr_valid(const char *addr)
{
    const char *at, *p, *label;
    size_t n;

    if (addr == NULL)
        return false;
    n = strnlen(addr, EMAIL_ADDR_MAX + 1);
    if (n == 0 || n > EMAIL_ADDR_MAX)
        return false;
    at = strrchr(addr, '@');
    if (at == NULL || at == addr || at - addr > 64 || at[1] == '\0')
        return false;
    /* local part: dot-atom, no leading, trailing or double dot */
    for (p = addr; p < at; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '.') {
            if (p == addr || p + 1 == at || p[1] == '.')
                return false;
        } else if (c >= 0x80 || !is_atext(c)) {
            return false;
        }
    }
    /* domain: LDH labels of 1..63, no leading/trailing hyphen */
    label = at + 1;
    for (p = at + 1;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t len = (size_t)(p - label);

            if (len == 0 || len > 63 || label[0] == '-' || p[-1] == '-')
                return false;
            if (*p == '\0')
                break;
            label = p + 1;
        } else if (!isalnum((unsigned char)*p) && *p != '-') {
            return false;
        }
    }
    return strlen(at + 1) <= 253;
}

bool email_parse_mailbox(const char *s, char *name, size_t namecap, char *addr, size_t addrcap)
{
    const char *lt, *gt, *end;
    size_t nlen, alen;

    if (s == NULL || namecap == 0 || addrcap == 0 || strpbrk(s, "\r\n") != NULL)
        return false;
    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    lt = memchr(s, '<', (size_t)(end - s));
    if (lt == NULL) {
        alen = (size_t)(end - s);
        if (alen >= addrcap)
            return false;
        memcpy(addr, s, alen);
        addr[alen] = '\0';
        name[0] = '\0';
        return email_addr_valid(addr);
    }
    gt = end - 1;
    if (gt <= lt || *gt != '>')
        return false;
    alen = (size_t)(gt - lt - 1);
    if (alen >= addrcap)
        return false;
    memcpy(addr, lt + 1, alen);
    addr[alen] = '\0';
    /* the name: what precedes '<', trimmed and unquoted */
    end = lt;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end - s >= 2 && s[0] == '"' && end[-1] == '"') {
        s++;
        end--;
    }
    nlen = (size_t)(end - s);
    if (nlen >= namecap || memchr(s, '"', nlen) != NULL)
        return false;
    memcpy(name, s, nlen);
    name[nlen] = '\0';
    return email_addr_valid(addr);
}

/* ---- header writing with folding ---- */

struct hdr {
    struct sbuf *b;
    size_t col;           /* octets on the current line */
    size_t name_len;      /* "Name:" octets: no fold before the first token */
};

/* Start a header line "Name:". */
static void hdr_begin(struct hdr *h, struct sbuf *b, const char *name)
{
    h->b = b;
    sb_str(b, name);
    sb_add(b, ":", 1);
    h->col = strlen(name) + 1;
    h->name_len = h->col;
}

/* Add one token, preceded by a space, folding first when the line would
 * pass HDR_FOLD octets (never right after the header name). */
static void hdr_token(struct hdr *h, const char *tok, size_t n)
{
    if (h->col + 1 + n > HDR_FOLD && h->col > h->name_len) {
        sb_add(h->b, "\r\n ", 3);
        h->col = 1;
    } else {
        sb_add(h->b, " ", 1);
        h->col++;
    }
    sb_add(h->b, tok, n);
    h->col += n;
}

static void hdr_end(struct hdr *h)
{
    sb_add(h->b, "\r\n", 2);
    h->col = 0;
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of in[0..n) into out (4 * ceil(n / 3) + 1 bytes); returns length. */
static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        out[o++] = b64chars[v >> 18];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = b64chars[(v >> 6) & 63];
        out[o++] = b64chars[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

        out[o++] = b64chars[v >> 18];
        out[o++] = b64chars[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* Write s (valid UTF-8) as RFC 2047 B encoded-words, each holding whole
 * characters, EW_BYTES bytes at most, one token each. */
static void hdr_encoded_words(struct hdr *h, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s);
    char word[12 + 4 * ((EW_BYTES + 2) / 3) + 1];
    uint32_t cp;

    while (left > 0) {
        size_t take = 0, k;

        while (take < left && (k = utf8_decode(p + take, left - take, &cp)) > 0 &&
               take + k <= EW_BYTES)
            take += k;
        if (take == 0) /* cannot happen on validated input; avoid a loop */
            return;
        memcpy(word, "=?UTF-8?B?", 10);
        k = 10 + b64_encode(p, take, word + 10);
        memcpy(word + k, "?=", 3);
        hdr_token(h, word, k + 2);
        p += take;
        left -= take;
    }
}

/* True when s is printable ASCII only. */
static bool is_ascii_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7E)
            return false;
    return true;
}

/* Write unstructured text (Subject): plain words when it is short-worded
 * printable ASCII without "=?", else encoded-words. Whitespace runs become
 * single spaces. */
static void hdr_text(struct hdr *h, const char *s)
{
    const char *p = s;
    bool plain = is_ascii_printable(s) && strstr(s, "=?") == NULL;

    for (p = s; plain && *p != '\0';) {
        size_t n = strcspn(p, " \t");

        if (n > HDR_FOLD - 12)
            plain = false;
        p += n;
        p += strspn(p, " \t");
    }
    if (!plain) {
        hdr_encoded_words(h, s);
        return;
    }
    for (p = s; *p != '\0';) {
        size_t n;

        p += strspn(p, " \t");
        n = strcspn(p, " \t");
        if (n > 0)
            hdr_token(h, p, n);
        p += n;
    }
}

/* Write a display name as a phrase: atoms, a quoted-string, or encoded-words. */
static void hdr_phrase(struct hdr *h, const char *name)
{
    const char *p;
    bool atoms = true;

    if (!is_ascii_printable(name) || strstr(name, "=?") != NULL) {
        hdr_encoded_words(h, name);
        return;
    }
    for (p = name; *p != '\0'; p++)
        if (*p != ' ' && !is_atext((unsigned char)*p))
            atoms = false;
    if (atoms) {
        hdr_text(h, name);
        return;
    }
    /* quoted-string, one token: name is <= EMAIL_NAME_MAX so the line stays short of 998 */
    {
        char q[2 * EMAIL_NAME_MAX + 3];
        size_t n = 0;

        q[n++] = '"';
        for (p = name; *p != '\0' && n < sizeof(q) - 3; p++) {
            if (*p == '"' || *p == '\\')
                q[n++] = '\\';
            q[n++] = *p;
        }
        q[n++] = '"';
        hdr_token(h, q, n);
    }
}

/* Write "Name: [phrase] <addr>" or "Name: addr". */
static void hdr_mailbox(struct sbuf *b, const char *field, const char *name, const char *addr)
{
    struct hdr h;
    char angle[EMAIL_ADDR_MAX + 3];
    int n;

    hdr_begin(&h, b, field);
    if (name != NULL && name[0] != '\0') {
        hdr_phrase(&h, name);
        n = snprintf(angle, sizeof(angle), "<%s>", addr);
        hdr_token(&h, angle, (size_t)n);
    } else {
        hdr_token(&h, addr, strlen(addr));
    }
    hdr_end(&h);
}

/* RFC 5322 date-time in UTC, with English names whatever the locale. */
static void format_date(time_t t, char *buf, size_t cap)
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, cap, "Thu, 01 Jan 1970 00:00:00 +0000");
        return;
    }
    snprintf(buf, cap, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
             mons[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Hex of n random bytes into out (2n + 1); falls back to a time/counter mix. */
static void random_hex(char *out, size_t n)
{
    unsigned char r[32];
    static unsigned long fallback;

    if (n > sizeof(r))
        n = sizeof(r);
    if (getrandom(r, n, 0) != (ssize_t)n) {
        unsigned long long x = (unsigned long long)time(NULL) ^
                               ((unsigned long long)getpid() << 32) ^
                               __atomic_add_fetch(&fallback, 0x9E3779B97F4A7C15ULL, __ATOMIC_RELAXED);

        for (size_t i = 0; i < n; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            r[i] = (unsigned char)x;
        }
    }
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* ---- body encodings ---- */

static const char hexd[] = "0123456789ABCDEF";

/* True when the byte at s[i] would be dangerous at the start of a line: a
 * lone '.' (SMTP end of data) or "From " (mbox). */
static bool risky_line_start(const char *s, size_t i, size_t n)
{
    return s[i] == '.' || (s[i] == 'F' && n - i >= 5 && memcmp(s + i, "From ", 5) == 0);
}

/* Quoted-printable of text (any line ending becomes CRLF), lines <= 76. A
 * '.' or "From " at the start of a line is encoded too, so no transport
 * mangles it. */
static void qp_encode(struct sbuf *b, const char *s, size_t n)
{
    size_t col = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tok[3];
        bool eol_next, literal;
        size_t limit;

        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
                i++;
            sb_add(b, "\r\n", 2);
            col = 0;
            continue;
        }
        eol_next = i + 1 >= n || s[i + 1] == '\r' || s[i + 1] == '\n';
        literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !eol_next);
        /* keep room for a soft break '=' unless this is the line's last character */
        limit = eol_next ? BODY_LINE : BODY_LINE - 1;
        if (col + (literal ? 1 : 3) > limit) {
            sb_add(b, "=\r\n", 3);
            col = 0;
        }
        if (literal && col == 0 && risky_line_start(s, i, n))
            literal = false;
        if (literal) {
            tok[0] = (char)c;
            sb_add(b, tok, 1);
            col++;
        } else {
            tok[0] = '=';
            tok[1] = hexd[c >> 4];
            tok[2] = hexd[c & 15];
            sb_add(b, tok, 3);
            col += 3;
        }
    }
    /* the CRLF before the next boundary belongs to the delimiter, not the text */
    sb_add(b, "\r\n", 2);
}

/* Base64 of data in lines of 76. */
static void b64_body(struct sbuf *b, const char *s, size_t n)
{
    char line[BODY_LINE + 1];

    for (size_t i = 0; i < n; i += 57) {
        size_t k = n - i < 57 ? n - i : 57;
        size_t len = b64_encode((const unsigned char *)s + i, k, line);

        sb_add(b, line, len);
        sb_add(b, "\r\n", 2);
    }
}

/* One MIME part: headers, then the body in the lighter encoding (base64 once
 * more than a fifth of it is non-ASCII, else quoted-printable). */
static void mime_part(struct sbuf *b, const char *boundary, const char *type, const char *body)
{
    size_t n = strlen(body), high = 0;

    for (size_t i = 0; i < n; i++)
        if ((unsigned char)body[i] >= 0x80)
            high++;
    sb_str(b, "--");
    sb_str(b, boundary);
    sb_str(b, "\r\nContent-Type: ");
    sb_str(b, type);
    sb_str(b, "; charset=UTF-8\r\nContent-Transfer-Encoding: ");
    if (high * 5 > n) {
        sb_str(b, "base64\r\n\r\n");
        b64_body(b, body, n);
    } else {
        sb_str(b, "quoted-printable\r\n\r\n");
        qp_encode(b, body, n);
    }
}

/* Check a body: present, capped, valid UTF-8. */
static enum st_err check_body(const char *field, const char *s, char *err, size_t errlen)
{
    size_t n;

    if (s == NULL || s[0] == '\0')
        return st_fail(err, errlen, ST_PERMANENT, "email: %s part is missing", field);
    n = strnlen(s, EMAIL_BODY_MAX + 1);
    if (n > EMAIL_BODY_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "email: %s part is larger than %u bytes", field,
                       EMAIL_BODY_MAX);
    if (!utf8_valid(s, n))
        return st_fail(err, errlen, ST_PERMANENT, "email: %s part is not valid UTF-8", field);
    return ST_OK;
}

/* Check the one-click unsubscribe URL: https, printable, no '<', '>', ',' or
 * quotes (RFC 2369 angle-bracket list syntax). */
static enum st_err check_unsub_url(const char *url, char *err, size_t errlen)
{
    enum st_err rc = check_header_value("unsubscribe URL", url, EMAIL_URL_MAX, false, err, errlen);

    if (rc != ST_OK)
        return rc;
    if (strlen(url) <= 8 || strncasecmp(url, "https://", 8) != 0)
        return st_fail(err, errlen, ST_PERMANENT, "email: unsubscribe URL must be https://");
    for (const char *p = url; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F || strchr("<>,\"'\\", *p))
            return st_fail(err, errlen, ST_PERMANENT,
                           "email: unsubscribe URL contains '%c' or a non-ASCII byte; "
                           "percent-encode it", (unsigned char)*p < 0x7F ? *p : '?');
    return ST_OK;
}

/* Check a BCP 47 language tag (letters, digits, '-'; <= 35). */
static bool language_valid(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if (n >= 35 || !(isalnum((unsigned char)s[n]) || s[n] == '-'))
            return false;
    return n > 0;
}

void email_built_free(struct email_built *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

enum st_err email_build(const struct email_message *m, const char *default_from,
                        struct email_built *out, char *err, size_t errlen)
{
    static unsigned long seq;
    char from_name[EMAIL_NAME_MAX + 1] = "", from_addr[EMAIL_ADDR_MAX + 1];
    char date[64], rnd[33], boundary[48];
    const char *fname, *domain;
    struct sbuf b = { .max = EMAIL_MESSAGE_MAX };
    struct hdr h;
    enum st_err rc;

    memset(out, 0, sizeof(*out));
    /* sender: the message's, else the configured one */
    if (m->from_addr != NULL && m->from_addr[0] != '\0') {
        rc = check_header_value("From address", m->from_addr, EMAIL_ADDR_MAX, false, err, errlen);
        if (rc != ST_OK)
            return rc;
        if (!email_addr_valid(m->from_addr))
            return st_fail(err, errlen, ST_PERMANENT, "email: From address is not a valid address");
        snprintf(from_addr, sizeof(from_addr), "%s", m->from_addr);
    } else if (default_from == NULL ||
               !email_parse_mailbox(default_from, from_name, sizeof(from_name), from_addr,
                                    sizeof(from_addr))) {
        return st_fail(err, errlen, ST_CONFIG,
                       "email: no valid sender (set SHIPTRACK_SMTP_FROM to `Name <addr>`)");
    }
    fname = m->from_name != NULL ? m->from_name : from_name;
    if ((rc = check_header_value("From name", fname, EMAIL_NAME_MAX, true, err, errlen)) != ST_OK)
        return rc;
    /* recipient */
    rc = check_header_value("To address", m->to_addr, EMAIL_ADDR_MAX, false, err, errlen);
    if (rc != ST_OK)
        return rc;
    if (!email_addr_valid(m->to_addr))
        return st_fail(err, errlen, ST_PERMANENT,
                       "email: To address is not a valid ASCII addr-spec (local@domain)");
    if ((rc = check_header_value("To name", m->to_name, EMAIL_NAME_MAX, true, err, errlen)) != ST_OK)
        return rc;
    if ((rc = check_header_value("Subject", m->subject, EMAIL_SUBJECT_MAX, false, err, errlen)) !=
        ST_OK)
        return rc;
    if (m->language != NULL && m->language[0] != '\0' && !language_valid(m->language))
        return st_fail(err, errlen, ST_PERMANENT, "email: language is not a BCP 47 tag");
    if (!m->transactional && (rc = check_unsub_url(m->unsubscribe_url, err, errlen)) != ST_OK)
        return rc;
    if ((rc = check_body("text", m->text, err, errlen)) != ST_OK ||
        (rc = check_body("HTML", m->html, err, errlen)) != ST_OK)
        return rc;

    domain = strrchr(from_addr, '@') + 1;
    random_hex(rnd, 12);
    snprintf(out->message_id, sizeof(out->message_id), "<%lld.%ld.%lu.%s@%s>",
             (long long)time(NULL), (long)getpid(),
             __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED), rnd, domain);
    for (char *p = out->message_id; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    random_hex(rnd, 12);
    snprintf(boundary, sizeof(boundary), "=_st_%s", rnd);
    format_date(m->date != 0 ? m->date : time(NULL), date, sizeof(date));

    hdr_mailbox(&b, "From", fname, from_addr);
    hdr_mailbox(&b, "To", m->to_name, m->to_addr);
    hdr_begin(&h, &b, "Subject");
    hdr_text(&h, m->subject);
    hdr_end(&h);
    sb_str(&b, "Date: ");
    sb_str(&b, date);
    sb_str(&b, "\r\nMessage-ID: ");
    sb_str(&b, out->message_id);
    sb_str(&b, "\r\nMIME-Version: 1.0\r\n");
    if (m->language != NULL && m->language[0] != '\0') {
        sb_str(&b, "Content-Language: ");
        sb_str(&b, m->language);
        sb_str(&b, "\r\n");
    }
    sb_str(&b, "Auto-Submitted: auto-generated\r\n");
    if (!m->transactional) {
        char url[EMAIL_URL_MAX + 3];
        int n = snprintf(url, sizeof(url), "<%s>", m->unsubscribe_url);

        hdr_begin(&h, &b, "List-Unsubscribe");
        hdr_token(&h, url, (size_t)n);
        hdr_end(&h);
        sb_str(&b, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    }
    sb_str(&b, "Content-Type: multipart/alternative;\r\n boundary=\"");
    sb_str(&b, boundary);
    sb_str(&b, "\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n");
    mime_part(&b, boundary, "text/plain", m->text);
    mime_part(&b, boundary, "text/html", m->html);
    sb_str(&b, "--");
    sb_str(&b, boundary);
    sb_str(&b, "--\r\n");
    if (b.failed) {
        free(b.p);
        memset(out, 0, sizeof(*out));
        return st_fail(err, errlen, ST_PERMANENT, "email: encoded message exceeds %u bytes",
                       EMAIL_MESSAGE_MAX);
    }
    out->data = b.p;
    out->len = b.len;
    snprintf(out->from_addr, sizeof(out->from_addr), "%s", from_addr);
    snprintf(out->to_addr, sizeof(out->to_addr), "%s", m->to_addr);
    return ST_OK;
}

/* ---- the channel ---- */

struct email_state {
    struct channel base;         /* first */
    char *host;                  /* NULL: .eml files */
    char hostport[300];          /* "host:port" for smtp_set_server */
    enum starttls_option starttls;
    bool verify;                 /* verify the relay's certificate */
    char *username;
    char *password;              /* secret: never logged */
    char *from;                  /* "Name <addr>" or "addr" */
    long timeout_ms;
    char *eml_dir;
};

/* Duplicate s (NULL stays NULL); *ok cleared on allocation failure. */
static char *dup_opt(const char *s, bool *ok)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

/* Free a string after overwriting it (for secrets). */
static void free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void email_close(struct channel *ch)
{
    struct email_state *st = (struct email_state *)ch;

    if (st == NULL)
        return;
    free(st->host);
    free(st->username);
    free_secret(st->password);
    free(st->from);
    free(st->eml_dir);
    free(st);
}

static pthread_once_t auth_once = PTHREAD_ONCE_INIT;

/* Load libesmtp's SASL plugins once per process. */
static void auth_init_once(void)
{
    auth_client_init();
}

static enum st_err email_open(const struct st_config *cfg, struct channel **out, char *err,
                              size_t errlen)
{
    struct email_state *st;
    char name[EMAIL_NAME_MAX + 1], addr[EMAIL_ADDR_MAX + 1];
    bool ok = true;

    *out = NULL;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return st_fail(err, errlen, ST_CONFIG, "email: out of memory");
    st->base.def = &email_channel;
    st->host = dup_opt(cfg->smtp_host, &ok);
    st->username = dup_opt(cfg->smtp_username, &ok);
    st->password = dup_opt(cfg->smtp_password, &ok);
    st->from = dup_opt(cfg->smtp_from, &ok);
    st->eml_dir = dup_opt(cfg->eml_dir != NULL ? cfg->eml_dir : "shiptrack-mail", &ok);
    st->timeout_ms = cfg->smtp_timeout_ms > 0 ? (long)cfg->smtp_timeout_ms : 30000;
    st->verify = cfg->smtp_tls_verify == NULL || strcmp(cfg->smtp_tls_verify, "off") != 0;
    st->starttls = cfg->smtp_starttls == NULL                     ? Starttls_REQUIRED
                   : strcmp(cfg->smtp_starttls, "off") == 0      ? Starttls_DISABLED
                   : strcmp(cfg->smtp_starttls, "optional") == 0 ? Starttls_ENABLED
                                                                  : Starttls_REQUIRED;
    if (!ok) {
        email_close(&st->base);
        return st_fail(err, errlen, ST_CONFIG, "email: out of memory");
    }
    if (st->from != NULL && !email_parse_mailbox(st->from, name, sizeof(name), addr, sizeof(addr))) {
        email_close(&st->base);
        return st_fail(err, errlen, ST_CONFIG,
                       "SHIPTRACK_SMTP_FROM: expected `Name <local@domain>` or `local@domain`");
    }
    if (st->host == NULL) {
        /* .eml fallback: the directory must exist (created 0700) and be writable */
        if (mkdir(st->eml_dir, 0700) != 0 && errno != EEXIST) {
            enum st_err rc = st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_EML_DIR: cannot create %s: %s",
                                     st->eml_dir, strerror(errno));
            email_close(&st->base);
            return rc;
        }
        if (access(st->eml_dir, W_OK | X_OK) != 0) {
            enum st_err rc = st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_EML_DIR: %s is not writable: %s",
                                     st->eml_dir, strerror(errno));
            email_close(&st->base);
            return rc;
        }
        if (st->from == NULL && (st->from = strdup("shiptrack@localhost")) == NULL) {
            email_close(&st->base);
            return st_fail(err, errlen, ST_CONFIG, "email: out of memory");
        }
        log_info("email.open", 0, NULL, "mode=eml dir=%s (no SMTP relay configured)", st->eml_dir);
        *out = &st->base;
        return ST_OK;
    }
    if (st->from == NULL) {
        email_close(&st->base);
        return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_SMTP_FROM: required with SHIPTRACK_SMTP_HOST");
    }
    if (strpbrk(st->host, " \t/@:[]") != NULL || strlen(st->host) > 253) {
        email_close(&st->base);
        return st_fail(err, errlen, ST_CONFIG,
                       "SHIPTRACK_SMTP_HOST: expected a host name or IPv4 address (no port, no "
                       "IPv6 literal; the port is SHIPTRACK_SMTP_PORT)");
    }
    if ((st->username == NULL) != (st->password == NULL)) {
        email_close(&st->base);
        return st_fail(err, errlen, ST_CONFIG,
                       "SHIPTRACK_SMTP_USERNAME and SHIPTRACK_SMTP_PASSWORD: set both or neither");
    }
    snprintf(st->hostport, sizeof(st->hostport), "%s:%lld", st->host,
             cfg->smtp_port > 0 ? cfg->smtp_port : 587);
    if (st->username != NULL && pthread_once(&auth_once, auth_init_once) != 0) {
        email_close(&st->base);
        return st_fail(err, errlen, ST_CONFIG, "email: cannot initialise SMTP AUTH");
    }
    if (!st->verify)
        log_warn("email.tls_verify_off", 0, NULL,
                 "relay=%s TLS certificate verification is OFF (SHIPTRACK_SMTP_TLS_VERIFY=off)",
                 st->hostport);
    if (st->username != NULL && st->starttls == Starttls_DISABLED)
        log_warn("email.auth_cleartext", 0, NULL,
                 "relay=%s SMTP AUTH credentials will cross the network unencrypted "
                 "(SHIPTRACK_SMTP_STARTTLS=off)", st->hostport);
    log_info("email.open", 0, NULL, "mode=smtp relay=%s starttls=%s auth=%s", st->hostport,
             cfg->smtp_starttls ? cfg->smtp_starttls : "required",
             st->username != NULL ? "yes" : "no");
    *out = &st->base;
    return ST_OK;
}

/* ---- .eml fallback ---- */

/* Write all n bytes to fd. */
static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Write one message as DIR/<time>-<pid>-<seq>-<random>.eml: a hidden .tmp
 * file, fsync, rename, fsync of the directory. */
static void eml_write(struct email_state *st, const struct email_built *b,
                      struct channel_result *res)
{
    static unsigned long seq;
    char name[128], rnd[17], tmp[sizeof(res->where)], path[sizeof(res->where)], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    int fd, dfd, saved;

    random_hex(rnd, 8);
    if (gmtime_r(&now, &tm) == NULL || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
        snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
    snprintf(name, sizeof(name), "%s-%ld-%lu-%s.eml", stamp, (long)getpid(),
             __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED), rnd);
    /* hidden and not *.eml while incomplete, so readers never see half a message */
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", st->eml_dir, name) >= sizeof(tmp) ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", st->eml_dir, name) >= sizeof(path)) {
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_CONFIG,
                           "SHIPTRACK_EML_DIR: path too long");
        return;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY, "email: cannot create %s: %s",
                           tmp, strerror(errno));
        return;
    }
    if (!write_all(fd, b->data, b->len) || fsync(fd) != 0) {
        saved = errno;
        close(fd);
        unlink(tmp);
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY, "email: cannot write %s: %s",
                           tmp, strerror(saved));
        return;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY,
                           "email: cannot move %s into place: %s", tmp, strerror(saved));
        return;
    }
    dfd = open(st->eml_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            log_warn("email.eml_fsync", 0, NULL, "dir=%s fsync failed: %s", st->eml_dir,
                     strerror(errno));
        close(dfd);
    }
    res->err = ST_OK;
    snprintf(res->status, sizeof(res->status), "file");
    snprintf(res->where, sizeof(res->where), "%s", path);
}

/* ---- SMTP ---- */

/* What the session callbacks saw. */
struct session_events {
    bool verify;                 /* certificate checks enforced */
    int relay_port;              /* the relay's TCP port (TCP_NODELAY on connect) */
    bool starttls_missing;       /* required STARTTLS not offered */
    bool cert_rejected;          /* verification failed and was enforced */
    bool auth_rejected;          /* 534/535/538 to AUTH */
    char auth_reply[96];
    char cert_reason[96];
};

/*
 * libesmtp writes a message in 2 KiB pieces and has no socket options. With
 * Nagle's algorithm on, each piece after the first waits for the relay's ACK
 * of the previous one, which a relay reading a DATA body delays (about 40 ms
 * on Linux): every message over 2 KiB stalled that long (bench/notify: 22
 * emails/s). On connect, set TCP_NODELAY on this process's TCP sockets to the
 * relay's port: the new session's is among them, and the option is harmless
 * on any other (libpq and librdkafka set it on theirs).
 */
static void relay_nodelay(int port)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;

    if (d == NULL)
        return; /* no /proc: messages are only slower */
    while ((de = readdir(d)) != NULL) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer), tlen;
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        int type = 0, one = 1, peer_port = -1;

        tlen = sizeof(type);
        if (*end != '\0' || end == de->d_name || fd < 0 || fd > INT32_MAX || fd == dirfd(d) ||
            getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM ||
            getpeername((int)fd, (struct sockaddr *)&peer, &len) != 0)
            continue;
        if (peer.ss_family == AF_INET)
            peer_port = ntohs(((const struct sockaddr_in *)&peer)->sin_port);
        else if (peer.ss_family == AF_INET6)
            peer_port = ntohs(((const struct sockaddr_in6 *)&peer)->sin6_port);
        if (peer_port == port)
            (void)setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    closedir(d);
}

/* libesmtp's event callback: enforce or waive certificate checks; no Nagle
 * delays on the relay's connection. */
static void event_cb(smtp_session_t session, int event_no, void *arg, ...)
{
    struct session_events *ev = arg;
    va_list ap;
    int *ok;

    (void)session;
    va_start(ap, arg);
    switch (event_no) {
    case SMTP_EV_CONNECT:
        relay_nodelay(ev->relay_port);
        break;
    case SMTP_EV_EXTNA_STARTTLS:
        ev->starttls_missing = true;
        break;
    case SMTP_EV_INVALID_PEER_CERTIFICATE: {
        long result = va_arg(ap, long);

        ok = va_arg(ap, int *);
        if (ok != NULL)
            *ok = !ev->verify;
        if (ev->verify) {
            ev->cert_rejected = true;
            snprintf(ev->cert_reason, sizeof(ev->cert_reason), "certificate invalid (X509 error %ld)",
                     result);
        }
        break;
    }
    case SMTP_EV_NO_PEER_CERTIFICATE:
    case SMTP_EV_WRONG_PEER_CERTIFICATE:
        ok = va_arg(ap, int *);
        if (ok != NULL)
            *ok = !ev->verify;
        if (ev->verify) {
            ev->cert_rejected = true;
            snprintf(ev->cert_reason, sizeof(ev->cert_reason), "%s",
                     event_no == SMTP_EV_NO_PEER_CERTIFICATE ? "no certificate presented"
                                                             : "certificate does not match the host name");
        }
        break;
    case SMTP_EV_WEAK_CIPHER:
        (void)va_arg(ap, int);
        ok = va_arg(ap, int *);
        if (ok != NULL)
            *ok = 0;
        break;
    default:
        break;
    }
    va_end(ap);
}

/* Copy printable ASCII of s (at most n bytes) into out. */
static void printable(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; s != NULL && i < n && s[i] != '\0' && o + 1 < cap; i++)
        if ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7F)
            out[o++] = s[i];
    if (cap > 0)
        out[o] = '\0';
}

/* Monitor callback: notice a rejected AUTH. Only server replies are looked
 * at; what we write (credentials included) is ignored. */
static void monitor_cb(const char *buf, int buflen, int writing, void *arg)
{
    struct session_events *ev = arg;

    if (writing != SMTP_CB_READING || buflen < 4)
        return;
    if (memcmp(buf, "535", 3) == 0 || memcmp(buf, "534", 3) == 0 || memcmp(buf, "538", 3) == 0) {
        ev->auth_rejected = true;
        printable(buf, (size_t)buflen, ev->auth_reply, sizeof(ev->auth_reply));
    }
}

/* Answer libesmtp's SASL questions from the configured credentials. */
static int auth_interact(auth_client_request_t request, char **result, int fields, void *arg)
{
    struct email_state *st = arg;

    for (int i = 0; i < fields; i++) {
        if (request[i].flags & AUTH_USER)
            result[i] = st->username;
        else if (request[i].flags & AUTH_PASS)
            result[i] = st->password;
        else if (request[i].flags & AUTH_REALM)
            result[i] = (char *)"";
        else
            return 0;
    }
    return 1;
}

/* A message handed to libesmtp: the bytes and the read position. */
struct outgoing {
    struct email_built built;
    size_t pos;
    smtp_message_t msg;
    smtp_recipient_t rcpt;
    size_t index;                /* into msgs[] / results[] */
};

/* libesmtp's message reader: len == NULL rewinds; *len = 0 ends. */
static const char *message_cb(void **ctx, int *len, void *arg)
{
    struct outgoing *o = arg;
    size_t chunk;
    const char *p;

    (void)ctx; /* position kept in o; libesmtp frees *ctx, which stays NULL */
    if (len == NULL) {
        o->pos = 0;
        return NULL;
    }
    chunk = o->built.len - o->pos;
    if (chunk > 65536)
        chunk = 65536;
    p = o->built.data + o->pos;
    o->pos += chunk;
    *len = (int)chunk;
    return chunk > 0 ? p : NULL;
}

/* Sort one SMTP status into res; returns true when it decided (a failure). */
static bool smtp_failed(const smtp_status_t *s, const char *step, struct channel_result *res)
{
    char text[160];

    if (s == NULL || s->code == 0 || s->code / 100 == 2 || s->code / 100 == 3)
        return false;
    printable(s->text, 200, text, sizeof(text));
    res->code = s->code;
    res->err = s->code / 100 == 4 ? ST_RETRY : ST_PERMANENT;
    snprintf(res->errmsg, sizeof(res->errmsg), "SMTP %d %d.%d.%d at %s: %s", s->code, s->enh_class,
             s->enh_subject, s->enh_detail, step, text);
    return true;
}

/* Give session a fresh SSL_CTX in *out; the caller frees it after
 * smtp_destroy_session(). */
static bool set_tls_context(smtp_session_t session, SSL_CTX **out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return false;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_default_verify_paths(ctx) != 1 || !smtp_starttls_set_ctx(session, ctx)) {
        SSL_CTX_free(ctx);
        return false;
    }
    *out = ctx;
    return true;
}

/* Set one libesmtp timeout in milliseconds (libesmtp 1.1 reads ms). */
static bool set_timeout(smtp_session_t s, int which, long ms)
{
    return smtp_set_timeout(s, which | Timeout_OVERRIDE_RFC2822_MINIMUM, ms) > 0;
}

/* Send the prepared messages out[0..n) over one SMTP session. */
static void smtp_send_batch(struct email_state *st, struct outgoing *out, size_t n,
                            const struct channel_msg *msgs, struct channel_result *results)
{
    const char *colon = strrchr(st->hostport, ':');
    struct session_events ev = { .verify = st->verify,
                                 .relay_port = colon != NULL ? atoi(colon + 1) : -1 };
    smtp_session_t session;
    auth_context_t auth = NULL;
    SSL_CTX *tls = NULL;
    char why[200] = "";
    int started;
    size_t i;

    session = smtp_create_session();
    if (session == NULL) {
        for (i = 0; i < n; i++)
            results[out[i].index].err = st_fail(results[out[i].index].errmsg, sizeof(results[0].errmsg),
                                                ST_RETRY, "email: cannot create SMTP session");
        return;
    }
    if (!smtp_set_server(session, st->hostport) || !smtp_starttls_enable(session, st->starttls) ||
        !smtp_set_eventcb(session, event_cb, &ev) || !smtp_set_monitorcb(session, monitor_cb, &ev, 0) ||
        !set_timeout(session, Timeout_GREETING, st->timeout_ms) ||
        !set_timeout(session, Timeout_ENVELOPE, st->timeout_ms) ||
        !set_timeout(session, Timeout_DATA, st->timeout_ms) ||
        !set_timeout(session, Timeout_TRANSFER, st->timeout_ms) ||
        !set_timeout(session, Timeout_DATA2, st->timeout_ms) ||
        (st->starttls != Starttls_DISABLED && !set_tls_context(session, &tls))) {
        snprintf(why, sizeof(why), "email: cannot set up SMTP session for %.150s", st->hostport);
        goto fail_all;
    }
    if (st->username != NULL) {
        auth = auth_create_context();
        if (auth == NULL || !auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0) ||
            !auth_set_interact_cb(auth, auth_interact, st) || !smtp_auth_set_context(session, auth)) {
            snprintf(why, sizeof(why), "email: cannot set up SMTP AUTH");
            goto fail_all;
        }
    }
    for (i = 0; i < n; i++) {
        out[i].msg = smtp_add_message(session);
        if (out[i].msg == NULL || !smtp_set_reverse_path(out[i].msg, out[i].built.from_addr) ||
            (out[i].rcpt = smtp_add_recipient(out[i].msg, out[i].built.to_addr)) == NULL ||
            !smtp_set_messagecb(out[i].msg, message_cb, &out[i]) ||
            !smtp_size_set_estimate(out[i].msg, out[i].built.len)) {
            snprintf(why, sizeof(why), "email: cannot queue message in SMTP session");
            goto fail_all;
        }
    }

    started = smtp_start_session(session);
    if (!started) {
        char ebuf[128];
        const char *e = smtp_strerror(smtp_errno(), ebuf, sizeof(ebuf));

        snprintf(why, sizeof(why), "%s", e != NULL ? e : "unknown error");
    }
    for (i = 0; i < n; i++) {
        struct channel_result *res = &results[out[i].index];
        const smtp_status_t *ms = smtp_message_transfer_status(out[i].msg);

        if (ms != NULL && ms->code / 100 == 2 &&
            smtp_recipient_status(out[i].rcpt) != NULL &&
            smtp_recipient_status(out[i].rcpt)->code / 100 == 2) {
            /* accepted, whatever else went wrong in the session: never resend */
            res->err = ST_OK;
            res->code = ms->code;
            snprintf(res->status, sizeof(res->status), "relayed");
        } else if (ev.auth_rejected) {
            res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_CONFIG,
                               "email: relay %s rejected SMTP AUTH: %s (check "
                               "SHIPTRACK_SMTP_USERNAME/PASSWORD)", st->hostport, ev.auth_reply);
        } else if (ev.starttls_missing) {
            res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_CONFIG,
                               "email: relay %s does not offer STARTTLS "
                               "(SHIPTRACK_SMTP_STARTTLS=required)", st->hostport);
        } else if (ev.cert_rejected) {
            res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_CONFIG,
                               "email: relay %s TLS %s", st->hostport, ev.cert_reason);
        } else if (smtp_failed(smtp_reverse_path_status(out[i].msg), "MAIL FROM", res)) {
            /* A refused sender is never the recipient's fault and would fail
             * every message alike (530 AUTH required, 5.7.x relay denied):
             * an operator must act. Only a size refusal (552) is this message's. */
            if (res->err == ST_PERMANENT && res->code != 552) {
                size_t len = strlen(res->errmsg);

                res->err = ST_CONFIG;
                snprintf(res->errmsg + len, sizeof(res->errmsg) - len,
                         " (relay refuses the sender: check SHIPTRACK_SMTP_FROM and AUTH)");
            }
        } else if (smtp_failed(smtp_recipient_status(out[i].rcpt), "RCPT TO", res)) {
            if (res->err == ST_PERMANENT)
                res->flag = CHANNEL_FLAG_BAD_ADDRESS;
        } else if (smtp_failed(ms, "DATA", res)) {
            /* sorted */
        } else {
            res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY,
                               "email: no answer from relay %s: %s", st->hostport,
                               why[0] ? why : "session ended early");
        }
        if (res->err == ST_OK)
            log_info("email.sent", msgs[out[i].index].shipment_id, NULL,
                     "message_id=%s relay=%s code=%d", res->id, st->hostport, res->code);
        else
            log_warn("email.failed", msgs[out[i].index].shipment_id, NULL,
                     "message_id=%s relay=%s kind=%s reason=\"%s\"", res->id, st->hostport,
                     st_err_name(res->err), res->errmsg);
    }
    smtp_destroy_session(session);
    SSL_CTX_free(tls);
    if (auth != NULL)
        auth_destroy_context(auth);
    return;

fail_all:
    for (i = 0; i < n; i++)
        results[out[i].index].err =
            st_fail(results[out[i].index].errmsg, sizeof(results[0].errmsg), ST_RETRY, "%s", why);
    smtp_destroy_session(session);
    SSL_CTX_free(tls);
    if (auth != NULL)
        auth_destroy_context(auth);
}

static enum st_err email_send(struct channel *ch, const struct channel_msg *msgs, size_t n,
                              struct channel_result *results, char *err, size_t errlen)
{
    struct email_state *st = (struct email_state *)ch;
    struct outgoing *out;
    size_t built = 0;

    if (n > email_channel.batch_max)
        return st_fail(err, errlen, ST_PERMANENT, "email: batch of %zu exceeds %zu", n,
                       email_channel.batch_max);
    for (size_t i = 0; i < n; i++)
        memset(&results[i], 0, sizeof(results[i]));
    if (n == 0)
        return ST_OK;
    out = calloc(n, sizeof(*out));
    if (out == NULL) {
        for (size_t i = 0; i < n; i++)
            results[i].err = st_fail(results[i].errmsg, sizeof(results[i].errmsg), ST_RETRY,
                                     "email: out of memory");
        return st_fail(err, errlen, ST_RETRY, "email: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        struct channel_result *res = &results[i];

        res->err = email_build(&msgs[i].u.email, st->from, &out[built].built, res->errmsg,
                               sizeof(res->errmsg));
        if (res->err != ST_OK) {
            if (res->err == ST_PERMANENT && msgs[i].u.email.to_addr != NULL &&
                strstr(res->errmsg, "To address") != NULL)
                res->flag = CHANNEL_FLAG_BAD_ADDRESS;
            log_warn("email.rejected", msgs[i].shipment_id, NULL, "kind=%s reason=\"%s\"",
                     st_err_name(res->err), res->errmsg);
            continue;
        }
        snprintf(res->id, sizeof(res->id), "%s", out[built].built.message_id);
        out[built].index = i;
        built++;
    }
    if (st->host == NULL) {
        for (size_t k = 0; k < built; k++) {
            struct channel_result *res = &results[out[k].index];

            eml_write(st, &out[k].built, res);
            if (res->err == ST_OK)
                log_info("email.written", msgs[out[k].index].shipment_id, NULL,
                         "message_id=%s file=%s", res->id, res->where);
            else
                log_warn("email.failed", msgs[out[k].index].shipment_id, NULL,
                         "message_id=%s kind=%s reason=\"%s\"", res->id, st_err_name(res->err),
                         res->errmsg);
        }
    } else if (built > 0) {
        smtp_send_batch(st, out, built, msgs, results);
    }
    for (size_t k = 0; k < built; k++)
        email_built_free(&out[k].built);
    free(out);
    return ST_OK;
}

static const struct channel_ops email_ops = {
    .open = email_open,
    .send = email_send,
    .close = email_close,
};

const struct channel_def email_channel = {
    .name = "email",
    .kind = CHANNEL_EMAIL,
    .ops = &email_ops,
    .batch_max = CHANNEL_BATCH_MAX,
};
