/*
 * carrier.c - helpers shared by every carrier driver: capped text, events,
 * requests, URL encoding, dates and timestamp parsing. No network I/O here
 * either. Typed JSON access lives in cjson.c.
 */
#include "carrier.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"

const char *offset_kind_name(enum offset_kind k)
{
    switch (k) {
    case OFFSET_CARRIER: return "carrier";
    case OFFSET_DERIVED: return "derived";
    case OFFSET_UNKNOWN: return "unknown";
    }
    return "invalid";
}

const char *track_outcome_name(enum track_outcome o)
{
    switch (o) {
    case TRACK_FOUND: return "found";
    case TRACK_NOT_FOUND: return "not_found";
    case TRACK_ERROR: return "error";
    case TRACK_NEEDS_REGISTER: return "needs_register";
    }
    return "invalid";
}

enum st_err carrier_request_header(struct carrier_request *req, const char *name,
                                   const char *value, char *err, size_t errlen)
{
    int n;

    if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
        return st_fail(err, errlen, ST_PERMANENT, "header %s: value holds CR or LF", name);
    if (req->n_headers >= CARRIER_MAX_HEADERS)
        return st_fail(err, errlen, ST_PERMANENT, "header %s: more than %d headers", name,
                       CARRIER_MAX_HEADERS);
    n = snprintf(req->headers[req->n_headers], CARRIER_HEADER_MAX, "%s: %s", name, value);
    if (n < 0 || n >= CARRIER_HEADER_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "header %s: longer than %d bytes", name,
                       CARRIER_HEADER_MAX - 1);
    req->n_headers++;
    return ST_OK;
}

enum st_err carrier_request_body(struct carrier_request *req, const char *body, size_t len,
                                 char *err, size_t errlen)
{
    char *copy = malloc(len + 1);

    if (copy == NULL)
        return st_fail(err, errlen, ST_RETRY, "out of memory for a %zu-byte request body", len);
    memcpy(copy, body, len);
    copy[len] = '\0';
    free(req->body);
    req->body = copy;
    req->body_len = len;
    return ST_OK;
}

void carrier_request_reset(struct carrier_request *req)
{
    free(req->body);
    memset(req, 0, sizeof(*req));
}

struct track_event *track_result_add(struct track_result *res)
{
    struct track_event *ev;

    if (res->n_events >= CARRIER_MAX_EVENTS)
        return NULL;
    if (res->n_events == res->cap_events) {
        size_t cap = res->cap_events ? res->cap_events * 2 : 16;
        struct track_event *p;

        if (cap > CARRIER_MAX_EVENTS)
            cap = CARRIER_MAX_EVENTS;
        p = realloc(res->events, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        res->events = p;
        res->cap_events = cap;
    }
    ev = &res->events[res->n_events++];
    memset(ev, 0, sizeof(*ev));
    ev->status = ST_STATUS_PENDING;
    ev->affects_status = true;
    return ev;
}

void track_result_reset(struct track_result *res)
{
    free(res->events);
    memset(res, 0, sizeof(*res));
}

void track_result_fail(struct track_result *res, enum st_err kind, const char *fmt, ...)
{
    va_list ap;

    res->outcome = TRACK_ERROR;
    res->err = kind;
    va_start(ap, fmt);
    vsnprintf(res->errmsg, sizeof(res->errmsg), fmt, ap);
    va_end(ap);
}

/* Length of the UTF-8 sequence starting with byte c, 0 if c cannot start one. */
static size_t utf8_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 0;
}

void carrier_copy_text(char *dst, size_t cap, const char *src)
{
    size_t o = 0;

    if (cap == 0)
        return;
    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    while (*src != '\0') {
        unsigned char c = (unsigned char)*src;
        size_t n = utf8_len(c), k;

        if (n == 0) { /* stray continuation or invalid byte: skip it */
            src++;
            continue;
        }
        for (k = 1; k < n; k++)
            if (((unsigned char)src[k] & 0xC0) != 0x80)
                break;
        if (k < n) { /* truncated sequence */
            src += k;
            continue;
        }
        if (o + n >= cap)
            break;
        if (n == 1 && (c < 0x20 || c == 0x7f))
            dst[o++] = (c == '\r' || c == '\n' || c == '\t') ? ' ' : '?';
        else {
            memcpy(dst + o, src, n);
            o += n;
        }
        src += n;
    }
    /* trim trailing spaces left by CR/LF */
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

/* Read exactly n digits into *out. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

bool carrier_parse_time(const char *s, const char *country, const char *region,
                        struct track_event *ev)
{
    int y, mo, d, h, mi, sec = 0, oh, om, sign;
    const char *p = s;
    struct tm tm;
    time_t local_as_utc;
    const char *zone;

    if (s == NULL)
        return false;
    while (*p == ' ')
        p++;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d) || (*p != 'T' && *p != ' '))
        return false;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
        return false;
    if (*p == ':') {
        p++;
        if (!digits(&p, 2, &sec))
            return false;
        if (*p == '.' || *p == ',') { /* fractional seconds: dropped */
            p++;
            if (!isdigit((unsigned char)*p))
                return false;
            while (isdigit((unsigned char)*p))
                p++;
        }
    }
    if (y < 1970 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
        h > 23 || mi > 59 || sec > 60)
        return false;
    if (sec == 60)
        sec = 59; /* leap second: keep it inside the minute */
    local_as_utc = (time_t)(days_from_civil(y, mo, d) * 86400L + h * 3600L + mi * 60L + sec);
    {
        char tmp[64]; /* ranges are checked above: the text is exactly 19 bytes */

        snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, h, mi, sec);
        memcpy(ev->occurred_local, tmp, EV_LOCAL_MAX - 1);
        ev->occurred_local[EV_LOCAL_MAX - 1] = '\0';
    }

    if (*p == 'Z' || *p == 'z') {
        p++;
        ev->offset_kind = OFFSET_CARRIER;
        ev->utc_offset_min = 0;
        ev->occurred_at = local_as_utc;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!digits(&p, 2, &oh))
            return false;
        if (*p == ':')
            p++;
        if (!digits(&p, 2, &om) || oh > 18 || om > 59)
            return false;
        ev->offset_kind = OFFSET_CARRIER;
        ev->utc_offset_min = sign * (oh * 60 + om);
        ev->occurred_at = local_as_utc - (time_t)ev->utc_offset_min * 60;
    } else {
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        zone = geo_zone(country, region);
        if (zone != NULL && geo_local_to_utc(zone, &tm, &ev->occurred_at, &ev->utc_offset_min)) {
            ev->offset_kind = OFFSET_DERIVED;
        } else {
            ev->offset_kind = OFFSET_UNKNOWN;
            ev->utc_offset_min = 0;
            ev->occurred_at = local_as_utc;
        }
    }
    while (*p == ' ')
        p++;
    return *p == '\0';
}

static int event_cmp(const void *a, const void *b)
{
    const struct track_event *x = a, *y = b;

    if (x->occurred_at != y->occurred_at)
        return x->occurred_at < y->occurred_at ? -1 : 1;
    return 0;
}

static bool event_same(const struct track_event *x, const struct track_event *y)
{
    return x->occurred_at == y->occurred_at && x->offset_kind == y->offset_kind &&
           strcmp(x->occurred_local, y->occurred_local) == 0 && strcmp(x->code, y->code) == 0 &&
           strcmp(x->description, y->description) == 0 && strcmp(x->city, y->city) == 0 &&
           strcmp(x->postal_code, y->postal_code) == 0 && strcmp(x->country, y->country) == 0;
}

/* An event whose offset is unknown for want of a state may still be placed
 * by its postal code (US ZIP, CA, AU, BR): then its zone is derived. */
static void derive_from_postal(struct track_event *ev)
{
    const char *region, *zone;
    struct tm tm;
    int y, mo, d, h, mi, s;

    if (ev->offset_kind != OFFSET_UNKNOWN || ev->country[0] == '\0' || ev->postal_code[0] == '\0')
        return;
    region = geo_region_from_postal(ev->country, ev->postal_code);
    zone = region != NULL ? geo_zone(ev->country, region) : NULL;
    if (zone == NULL ||
        sscanf(ev->occurred_local, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &s) != 6)
        return;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    if (geo_local_to_utc(zone, &tm, &ev->occurred_at, &ev->utc_offset_min))
        ev->offset_kind = OFFSET_DERIVED;
}

void track_result_sort_dedupe(struct track_result *res)
{
    size_t n = res->n_events, out = 0;

    for (size_t i = 0; i < n; i++)
        derive_from_postal(&res->events[i]);
    if (n < 2)
        return;
    /* Insertion sort keeps equal times in carrier order (stable); n <= 500. */
    for (size_t i = 1; i < n; i++) {
        struct track_event tmp = res->events[i];
        size_t j = i;

        while (j > 0 && event_cmp(&res->events[j - 1], &tmp) > 0) {
            res->events[j] = res->events[j - 1];
            j--;
        }
        res->events[j] = tmp;
    }
    for (size_t i = 0; i < n; i++) {
        bool dup = false;

        for (size_t j = out; j > 0; j--) {
            if (res->events[j - 1].occurred_at != res->events[i].occurred_at)
                break;
            if (event_same(&res->events[j - 1], &res->events[i])) {
                dup = true;
                break;
            }
        }
        if (!dup) {
            if (out != i)
                res->events[out] = res->events[i];
            out++;
        }
    }
    res->n_events = out;
}

void carrier_fail_all(struct track_result *results, size_t n, enum st_err kind, const char *msg)
{
    for (size_t i = 0; i < n; i++) {
        track_result_reset(&results[i]);
        track_result_fail(&results[i], kind, "%s", msg);
    }
}

const char *carrier_quote(char *q, size_t cap, const char *s)
{
    carrier_copy_text(q, cap, s);
    return q;
}

bool carrier_url_encode(char *out, size_t cap, size_t *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        size_t need = plain ? 1 : 3;

        if (*o + need >= cap)
            return false;
        if (plain)
            out[(*o)++] = (char)*p;
        else {
            out[(*o)++] = '%';
            out[(*o)++] = hex[*p >> 4];
            out[(*o)++] = hex[*p & 0x0F];
        }
    }
    out[*o] = '\0';
    return true;
}

bool carrier_url_append(char *out, size_t cap, size_t *o, const char *s)
{
    size_t n = strlen(s);

    if (*o + n >= cap)
        return false;
    memcpy(out + *o, s, n + 1);
    *o += n;
    return true;
}

bool carrier_date_part(const char *s, int min_year, char out[11])
{
    int y, m, d;

    if (strlen(s) < 10)
        return false;
    for (int i = 0; i < 10; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return false;
    }
    if (s[10] != '\0' && s[10] != 'T' && s[10] != ' ')
        return false;
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < min_year || m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    memcpy(out, s, 10);
    out[10] = '\0';
    return true;
}
