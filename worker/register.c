/*
 * register.c - shipment registration: validation and storage.
 */
#include "register.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "db.h"
#include "detect.h"
#include "geo.h"

/* Copy src into dst[cap] keeping only chars that pass keep(); transform with
 * up(). Returns false when the result does not fit. */
static bool squeeze(char *dst, size_t cap, const char *src, const char *drop, bool upper)
{
    size_t o = 0;

    for (; *src != '\0'; src++) {
        if (strchr(drop, *src) != NULL)
            continue;
        if (o + 1 >= cap)
            return false;
        dst[o++] = upper ? (char)toupper((unsigned char)*src) : *src;
    }
    dst[o] = '\0';
    return true;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

static enum st_err check_email(const char *e, char *err, size_t errlen)
{
    const char *at = strchr(e, '@');
    size_t n = strlen(e);

    if (n > 254 || has_control(e) || strpbrk(e, " ,;<>()[]\\\"") != NULL || at == NULL ||
        at == e || at - e > 64 || strchr(at + 1, '@') != NULL || strchr(at + 1, '.') == NULL ||
        at[1] == '.' || e[n - 1] == '.')
        return st_fail(err, errlen, ST_PERMANENT,
                       "email: not an address of the form name@example.com");
    return ST_OK;
}

static enum st_err check_locale(char *l, char *err, size_t errlen)
{
    size_t n = strlen(l), i = 0, seg = 0;

    /* language: 2-3 letters, lower case; subtags: 2-8 alnum, region upper-cased */
    while (i < n && isalpha((unsigned char)l[i])) {
        l[i] = (char)tolower((unsigned char)l[i]);
        i++;
    }
    if (i < 2 || i > 3)
        goto bad;
    while (i < n) {
        size_t start;

        if (l[i] != '-' && l[i] != '_')
            goto bad;
        l[i++] = '-';
        start = i;
        while (i < n && isalnum((unsigned char)l[i]))
            i++;
        if (i - start < 2 || i - start > 8)
            goto bad;
        if (i - start == 2 && isalpha((unsigned char)l[start]) && isalpha((unsigned char)l[start + 1])) {
            l[start] = (char)toupper((unsigned char)l[start]);
            l[start + 1] = (char)toupper((unsigned char)l[start + 1]);
        }
        seg++;
    }
    (void)seg;
    return ST_OK;
bad:
    return st_fail(err, errlen, ST_PERMANENT,
                   "locale: \"%.40s\" is not a language tag such as en, fr or pt-BR", l);
}

enum st_err registration_prepare(struct registration *r, const char *carrier,
                                 const char *tracking_number, const char *email,
                                 const char *phone, const char *locale, const char *time_zone,
                                 const char *origin, const char *destination,
                                 const char *order_ref, char *err, size_t errlen)
{
    const char *zone;
    enum st_err rc;

    memset(r, 0, sizeof(*r));
    if (tracking_number == NULL || tracking_number[0] == '\0')
        return st_fail(err, errlen, ST_PERMANENT, "tracking number: missing");
    if (!squeeze(r->tracking_number, sizeof(r->tracking_number), tracking_number, " -", true))
        return st_fail(err, errlen, ST_PERMANENT, "tracking number: longer than 40 characters");
    {
        size_t n = strlen(r->tracking_number);

        if (n > 40)
            return st_fail(err, errlen, ST_PERMANENT, "tracking number: longer than 40 characters");
        if (n < 4)
            return st_fail(err, errlen, ST_PERMANENT,
                           "tracking number: must be 4 to 40 letters and digits");
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)r->tracking_number[i]))
                return st_fail(err, errlen, ST_PERMANENT,
                               "tracking number: only letters and digits are allowed");
    }

    if (carrier == NULL || carrier[0] == '\0') {
        /* No carrier named: the number says whose it is, or that it is impossible. */
        struct detect_candidate c[8];
        char why[200] = "";
        size_t n = detect_tracking_number(r->tracking_number, c, 8, why, sizeof(why));

        carrier = NULL;

        if (n == 0)
            return st_fail(err, errlen, ST_PERMANENT,
                           "tracking number: no carrier issues numbers like %s%s%s",
                           r->tracking_number, why[0] ? ": " : "", why);
        for (size_t i = 0; i < n && carrier == NULL; i++)
            if (carrier_find(c[i].carrier) != NULL)
                carrier = c[i].carrier;
        if (carrier == NULL)
            return st_fail(err, errlen, ST_PERMANENT,
                           "carrier: %s looks like a %s number, which no configured driver "
                           "tracks; name the carrier", r->tracking_number, c[0].format);
    } else if (carrier_find(carrier) == NULL || strlen(carrier) >= sizeof(r->carrier)) {
        return st_fail(err, errlen, ST_PERMANENT, "carrier: \"%.32s\" is not a supported carrier",
                       carrier);
    } else {
        char why[200] = "";

        if (!detect_valid_for(carrier, r->tracking_number, why, sizeof(why)))
            return st_fail(err, errlen, ST_PERMANENT, "tracking number: %s",
                           why[0] ? why : "not a number this carrier issues");
    }
    snprintf(r->carrier, sizeof(r->carrier), "%s", carrier);

    if (email != NULL && email[0] != '\0') {
        if (strlen(email) >= sizeof(r->email))
            return st_fail(err, errlen, ST_PERMANENT, "email: longer than 254 characters");
        if ((rc = check_email(email, err, errlen)) != ST_OK)
            return rc;
        snprintf(r->email, sizeof(r->email), "%s", email);
    }
    if (phone != NULL && phone[0] != '\0') {
        size_t n;

        if (!squeeze(r->phone, sizeof(r->phone), phone, " -().", false))
            return st_fail(err, errlen, ST_PERMANENT,
                           "phone: not an international number such as +33612345678");
        n = strlen(r->phone);
        if (n < 8 || r->phone[0] != '+' || r->phone[1] == '0' ||
            strspn(r->phone + 1, "0123456789") != n - 1)
            return st_fail(err, errlen, ST_PERMANENT,
                           "phone: not an international number such as +33612345678");
    }
    if (origin != NULL && origin[0] != '\0') {
        if (!squeeze(r->origin, sizeof(r->origin), origin, "", true) ||
            !geo_country_valid(r->origin))
            return st_fail(err, errlen, ST_PERMANENT,
                           "origin: \"%.8s\" is not an ISO 3166 country code such as DE", origin);
    }
    if (destination != NULL && destination[0] != '\0') {
        if (!squeeze(r->destination, sizeof(r->destination), destination, "", true) ||
            !geo_country_valid(r->destination))
            return st_fail(err, errlen, ST_PERMANENT,
                           "destination: \"%.8s\" is not an ISO 3166 country code such as FR",
                           destination);
    }
    if (locale != NULL && locale[0] != '\0') {
        if (strlen(locale) >= sizeof(r->locale))
            return st_fail(err, errlen, ST_PERMANENT, "locale: longer than 35 characters");
        snprintf(r->locale, sizeof(r->locale), "%s", locale);
        if ((rc = check_locale(r->locale, err, errlen)) != ST_OK)
            return rc;
    } else
        snprintf(r->locale, sizeof(r->locale), "en");
    if (time_zone != NULL && time_zone[0] != '\0') {
        if (!geo_zone_valid(time_zone))
            return st_fail(err, errlen, ST_PERMANENT,
                           "time zone: \"%.64s\" is not an IANA zone such as Europe/Paris",
                           time_zone);
        snprintf(r->time_zone, sizeof(r->time_zone), "%s", time_zone);
    } else {
        /* the destination's zone when it has just one, else UTC */
        zone = r->destination[0] ? geo_zone(r->destination, NULL) : NULL;
        snprintf(r->time_zone, sizeof(r->time_zone), "%s", zone ? zone : "UTC");
    }
    if (order_ref != NULL && order_ref[0] != '\0') {
        if (strlen(order_ref) >= sizeof(r->order_ref))
            return st_fail(err, errlen, ST_PERMANENT, "order reference: longer than 128 characters");
        if (has_control(order_ref))
            return st_fail(err, errlen, ST_PERMANENT,
                           "order reference: control characters are not allowed");
        snprintf(r->order_ref, sizeof(r->order_ref), "%s", order_ref);
    }
    return ST_OK;
}

/* NULL for empty strings, so optional fields become SQL NULLs. */
static const char *opt(const char *s)
{
    return s[0] ? s : NULL;
}

enum st_err registration_store(PGconn *conn, const struct registration *r, long long *id,
                               bool *existed, char *err, size_t errlen)
{
    enum st_err kind = ST_OK;
    const char *p[9];
    PGresult *res;
    char rid[24] = "";

    *id = 0;
    *existed = false;
    if ((kind = db_begin(conn, err, errlen)) != ST_OK)
        return kind;
    p[0] = r->carrier;
    p[1] = r->tracking_number;
    res = db_exec(conn, "find shipment",
                  "SELECT id FROM shipments WHERE carrier = $1 AND tracking_number = $2", 2, p,
                  PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) == 1) {
        *id = atoll(PQgetvalue(res, 0, 0));
        *existed = true;
        PQclear(res);
        db_rollback(conn);
        return ST_OK;
    }
    PQclear(res);

    p[0] = opt(r->email);
    p[1] = opt(r->phone);
    p[2] = r->locale;
    p[3] = r->time_zone;
    res = db_exec(conn, "insert recipient",
                  "WITH rec AS (INSERT INTO recipients (email, phone, locale, time_zone)"
                  "             VALUES ($1, $2, $3, $4) RETURNING id),"
                  " prefs AS (INSERT INTO preferences (recipient_id, channel, consent)"
                  "           SELECT rec.id, c.channel, true FROM rec,"
                  "           (VALUES ('email', $1::text), ('sms', $2::text)) AS c(channel, addr)"
                  "           WHERE c.addr IS NOT NULL)"
                  " SELECT id FROM rec",
                  4, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        goto fail;
    snprintf(rid, sizeof(rid), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    p[0] = r->carrier;
    p[1] = r->tracking_number;
    p[2] = opt(r->order_ref);
    p[3] = rid;
    p[4] = opt(r->origin);
    p[5] = opt(r->destination);
    res = db_exec(conn, "insert shipment",
                  "INSERT INTO shipments (carrier, tracking_number, order_ref, recipient_id,"
                  " origin_country, destination_country) VALUES ($1, $2, $3, $4, $5, $6)"
                  " ON CONFLICT (carrier, tracking_number) DO NOTHING RETURNING id",
                  6, p, PGRES_TUPLES_OK, &kind, err, errlen);
    if (res == NULL)
        goto fail;
    if (PQntuples(res) == 0) {
        /* registered concurrently by someone else: keep theirs */
        PQclear(res);
        db_rollback(conn);
        p[0] = r->carrier;
        p[1] = r->tracking_number;
        res = db_exec(conn, "find shipment",
                      "SELECT id FROM shipments WHERE carrier = $1 AND tracking_number = $2", 2,
                      p, PGRES_TUPLES_OK, &kind, err, errlen);
        if (res == NULL)
            return kind;
        if (PQntuples(res) == 1)
            *id = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
        *existed = true;
        return ST_OK;
    }
    *id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return db_commit(conn, err, errlen);
fail:
    db_rollback(conn);
    return kind;
}
