/*
 * templates.c - notification templates: locale chain, message view, rendering,
 * locale date formatting and SMS measurement.
 *
 * Flow of one render: templates_resolve_locale() picks the folder,
 * templates_view() validates the message data and derives what templates
 * print (formatted dates, amounts, booleans for codes), then each part of the
 * channel is read from <dir>/<locale>/<milestone>.<part> (capped) and handed
 * to mustache_render() with a partial loader confined to
 * <dir>/<locale>/partials/. A partial that does not exist is an error here,
 * not the empty string mustache would print.
 *
 * Dates: calendar days ("2026-11-24") are printed as given; instants are
 * converted to the recipient's IANA zone with localtime_r() under TZ (as
 * carriers/geo.c does). TZ is process-global, so the switch is serialized by
 * tz_lock and TZ is restored afterwards; other threads must not depend on
 * the local zone while a render runs (the worker logs and stores UTC). Names of weekdays and months come from the tables
 * below (no dependency on installed C locales).
 */
#include "templates.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "geo.h"
#include "mustache.h"
#include "text.h"

const char *const templates_milestones[] = {
    "shipped",          "customs_processing", "customs_held",         "customs_released",
    "delayed",          "out_for_delivery",   "attempt_failed",       "available_for_pickup",
    "delivered",        "exception",          "returning",
};
const size_t templates_milestones_count =
    sizeof(templates_milestones) / sizeof(templates_milestones[0]);

const char *const templates_locales[] = {
    "en", "de", "fr", "es", "it", "nl", "pt-BR", "pl", "sv", "ja", "zh-CN", "ar",
};
const size_t templates_locales_count = sizeof(templates_locales) / sizeof(templates_locales[0]);

const char *const templates_variables[] = {
    /* layout */
    "lang", "dir",
    /* every message */
    "first_name", "shop_name", "order_ref", "carrier_name", "tracking_number", "tracking_url",
    "unsubscribe_url", "eta_date", "eta_short",
    /* delayed */
    "eta_previous_date", "eta_previous_short",
    /* customs */
    "customs_duties_due", "customs_documents_required", "customs_inspection",
    "customs_prohibited", "customs_other", "action_recipient", "action_shipper",
    "action_broker", "customs_instructions", "customs_amount_due", "customs_pay_url",
    /* pickup */
    "pickup_name", "pickup_address", "pickup_hours", "pickup_deadline_date",
    "pickup_deadline_short",
    /* attempt and delivery */
    "attempt_date", "attempt_short", "attempt_time", "next_attempt_date", "next_attempt_short",
    "delivered_date", "delivered_short", "delivered_time",
    /* exception */
    "exception_address_issue", "exception_damaged", "exception_lost", "exception_other",
    NULL,
};

/* Milestones that ask the recipient to act or report a problem. */
static const char *const transactional[] = {
    "customs_held", "attempt_failed", "available_for_pickup", "exception", "returning",
};

/* ---- locale date tables ---- */

/* How one locale writes dates and amounts (pattern tokens: format_pattern). */
struct locale_fmt {
    const char *lang;          /* language subtag */
    const char *pattern;       /* long date */
    const char *short_pattern; /* short date for SMS */
    const char *weekdays_short[7]; /* Sunday first */
    const char *first_day;     /* how day 1 is written with O ("1er"), NULL = "1" */
    const char *weekdays[7];   /* Sunday first */
    const char *months[12];    /* as used inside a date (genitive where the language needs it) */
    char decimal;              /* decimal separator */
    bool symbol_first;         /* "€23.40" rather than "23,40 €" */
};

static const struct locale_fmt locale_fmts[] = {
    { "en", "%W %D %M %Y", "%w %D %b",
      { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" },
      NULL,
      { "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" },
      { "January", "February", "March", "April", "May", "June", "July", "August", "September",
        "October", "November", "December" }, '.', true },
    { "de", "%W, %D. %M %Y", "%w, %d.%n.",
      { "So.", "Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa." },
      NULL,
      { "Sonntag", "Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag" },
      { "Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
        "Oktober", "November", "Dezember" }, ',', false },
    { "fr", "%W %O %M %Y", "%w %d/%n",
      { "dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam." },
      "1er",
      { "dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi" },
      { "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
        "octobre", "novembre", "décembre" }, ',', false },
    { "es", "%W, %D de %M de %Y", "%d/%n",
      { "dom.", "lun.", "mar.", "mié.", "jue.", "vie.", "sáb." },
      NULL,
      { "domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado" },
      { "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
        "octubre", "noviembre", "diciembre" }, ',', false },
    { "it", "%W %O %M %Y", "%w %d/%n",
      { "dom", "lun", "mar", "mer", "gio", "ven", "sab" },
      "1º",
      { "domenica", "lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato" },
      { "gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
        "settembre", "ottobre", "novembre", "dicembre" }, ',', false },
    { "nl", "%W %D %M %Y", "%w %d-%n",
      { "zo", "ma", "di", "wo", "do", "vr", "za" },
      NULL,
      { "zondag", "maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag" },
      { "januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september",
        "oktober", "november", "december" }, ',', true },
    { "pt", "%W, %O de %M de %Y", "%d/%n",
      { "dom.", "seg.", "ter.", "qua.", "qui.", "sex.", "sáb." },
      "1º",
      { "domingo", "segunda-feira", "terça-feira", "quarta-feira", "quinta-feira",
        "sexta-feira", "sábado" },
      { "janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto",
        "setembro", "outubro", "novembro", "dezembro" }, ',', true },
    { "pl", "%W, %D %M %Y", "%d.%n",
      { "niedz.", "pon.", "wt.", "śr.", "czw.", "pt.", "sob." },
      NULL,
      { "niedziela", "poniedziałek", "wtorek", "środa", "czwartek", "piątek", "sobota" },
      { "stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia",
        "września", "października", "listopada", "grudnia" }, ',', false },
    { "sv", "%W %D %M %Y", "%w %D/%N",
      { "sön", "mån", "tis", "ons", "tors", "fre", "lör" },
      NULL,
      { "söndag", "måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag" },
      { "januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september",
        "oktober", "november", "december" }, ',', false },
    { "ja", "%Y年%N月%D日(%W)", "%N月%D日(%w)",
      { "日", "月", "火", "水", "木", "金", "土" },
      NULL,
      { "日", "月", "火", "水", "木", "金", "土" },
      { "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12" }, '.', true },
    { "zh", "%Y年%N月%D日 %W", "%N月%D日(%w)",
      { "周日", "周一", "周二", "周三", "周四", "周五", "周六" },
      NULL,
      { "星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六" },
      { "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12" }, '.', true },
    { "ar", "%W، %D %M %Y", "%D/%N",
      { "الأحد", "الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت" },
      NULL,
      { "الأحد", "الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت" },
      { "يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر",
        "أكتوبر", "نوفمبر", "ديسمبر" }, '.', false },
};

/* The table entry for a locale's language; English when unknown. */
static const struct locale_fmt *fmt_for(const char *locale)
{
    size_t n = strcspn(locale ? locale : "", "-_");

    for (size_t i = 0; i < sizeof(locale_fmts) / sizeof(locale_fmts[0]); i++)
        if (strlen(locale_fmts[i].lang) == n && strncasecmp(locale_fmts[i].lang, locale, n) == 0)
            return &locale_fmts[i];
    return &locale_fmts[0];
}

/* Append s to buf[cap] at *len; false when it does not fit. */
static bool append(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = strlen(s);

    if (*len + n + 1 > cap)
        return false;
    memcpy(buf + *len, s, n + 1);
    *len += n;
    return true;
}

/* Day of the week (0 = Sunday) of a proleptic Gregorian date. */
static int weekday_of(int y, int m, int d)
{
    static const int t[] = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 };

    if (m < 3)
        y -= 1;
    return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

/* Days in a month. */
static int month_days(int y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* English short month names (the only short pattern that names months). */
static const char *const months_short_en[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Expand a date pattern of f: %W/%w long/short weekday, %D/%d day (d: 2 digits),
 * %O day with the first-day ordinal, %M month name, %b short English month,
 * %N/%n month number (n: 2 digits), %Y year; other bytes are copied. */
static bool format_pattern(const struct locale_fmt *f, const char *pattern, int year, int month,
                           int day, char *buf, size_t cap)
{
    size_t len = 0;
    char num[16];
    int wd;

    if (cap == 0)
        return false;
    buf[0] = '\0';
    if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 ||
        day > month_days(year, month))
        return false;
    wd = weekday_of(year, month, day);
    for (const char *p = pattern; *p != '\0'; p++) {
        const char *piece = num;

        if (*p != '%' || p[1] == '\0') {
            if (len + 2 > cap) {
                buf[0] = '\0';
                return false;
            }
            buf[len++] = *p;
            buf[len] = '\0';
            continue;
        }
        switch (*++p) {
        case 'W': piece = f->weekdays[wd]; break;
        case 'w': piece = f->weekdays_short[wd]; break;
        case 'M': piece = f->months[month - 1]; break;
        case 'b': piece = months_short_en[month - 1]; break;
        case 'N': snprintf(num, sizeof(num), "%d", month); break;
        case 'n': snprintf(num, sizeof(num), "%02d", month); break;
        case 'Y': snprintf(num, sizeof(num), "%d", year); break;
        case 'd': snprintf(num, sizeof(num), "%02d", day); break;
        case 'O':
            if (day == 1 && f->first_day != NULL) {
                piece = f->first_day;
                break;
            }
            /* fall through */
        case 'D': snprintf(num, sizeof(num), "%d", day); break;
        default: piece = ""; break;
        }
        if (!append(buf, cap, &len, piece)) {
            buf[0] = '\0';
            return false;
        }
    }
    return true;
}

bool templates_format_day(const char *locale, int year, int month, int day, char *buf, size_t cap)
{
    const struct locale_fmt *f = fmt_for(locale);

    return format_pattern(f, f->pattern, year, month, day, buf, cap);
}

bool templates_format_day_short(const char *locale, int year, int month, int day, char *buf,
                                size_t cap)
{
    const struct locale_fmt *f = fmt_for(locale);

    return format_pattern(f, f->short_pattern, year, month, day, buf, cap);
}

/* ---- time zones ---- */

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

bool templates_zone_valid(const char *tz)
{
    return geo_zone_valid(tz);
}

/* Broken-down local time of t in zone tz (validated). */
static bool local_tm(time_t t, const char *tz, struct tm *out)
{
    char *saved = NULL;
    const char *old;
    bool ok;

    if (!templates_zone_valid(tz))
        return false;
    if (pthread_mutex_lock(&tz_lock) != 0)
        return false;
    old = getenv("TZ");
    if (old != NULL && (saved = strdup(old)) == NULL) {
        pthread_mutex_unlock(&tz_lock);
        return false;
    }
    ok = setenv("TZ", tz, 1) == 0;
    if (ok) {
        tzset();
        ok = localtime_r(&t, out) != NULL;
    }
    if (saved != NULL)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    pthread_mutex_unlock(&tz_lock);
    free(saved);
    return ok;
}

bool templates_format_date(const char *locale, time_t t, const char *tz, char *buf, size_t cap)
{
    struct tm tm;

    if (cap > 0)
        buf[0] = '\0';
    if (!local_tm(t, tz, &tm))
        return false;
    return templates_format_day(locale, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, buf, cap);
}

bool templates_format_time(const char *locale, time_t t, const char *tz, char *buf, size_t cap)
{
    struct tm tm;

    (void)locale; /* every shipped locale writes 24 h "14:05" */
    if (cap > 0)
        buf[0] = '\0';
    if (!local_tm(t, tz, &tm))
        return false;
    return (size_t)snprintf(buf, cap, "%02d:%02d", tm.tm_hour, tm.tm_min) < cap;
}

/* Parse exactly n digits at *s into *v and advance. */
static bool digits(const char **s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i]))
            return false;
        *v = *v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    return true;
}

/* Parse "YYYY-MM-DD" at *s and advance. */
static bool parse_day(const char **s, int *y, int *m, int *d)
{
    const char *p = *s;

    if (!digits(&p, 4, y) || *p++ != '-' || !digits(&p, 2, m) || *p++ != '-' ||
        !digits(&p, 2, d))
        return false;
    if (*y < 1 || *m < 1 || *m > 12 || *d < 1 || *d > month_days(*y, *m))
        return false;
    *s = p;
    return true;
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static long long days_from_civil(int y, int m, int d)
{
    long long yy = y - (m <= 2);
    long long era = (yy >= 0 ? yy : yy - 399) / 400;
    long long yoe = yy - era * 400;
    long long doy = (153LL * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

bool templates_parse_instant(const char *s, time_t *t)
{
    int y, mo, d, h, mi, sec = 0, oh = 0, om = 0, sign = 0;
    const char *p = s;

    if (s == NULL || !parse_day(&p, &y, &mo, &d) || (*p != 'T' && *p != 't' && *p != ' '))
        return false;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
        return false;
    if (*p == ':') {
        p++;
        if (!digits(&p, 2, &sec))
            return false;
        if (*p == '.') {
            p++;
            if (!isdigit((unsigned char)*p))
                return false;
            while (isdigit((unsigned char)*p))
                p++;
        }
    }
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om))
            return false;
    } else
        return false; /* no offset: never guessed */
    if (*p != '\0' || h > 23 || mi > 59 || sec > 60 || oh > 23 || om > 59)
        return false;
    *t = (time_t)(days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec -
                  sign * (oh * 3600LL + om * 60LL));
    return true;
}

/* ---- locales ---- */

bool templates_locale_valid(const char *tag)
{
    size_t n, r;

    if (tag == NULL)
        return false;
    n = strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (n < 2 || n > 3)
        return false;
    if (tag[n] == '\0')
        return true;
    if (tag[n] != '-' && tag[n] != '_')
        return false;
    r = strspn(tag + n + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (r >= 2 && r <= 4 && tag[n + 1 + r] == '\0')
        return true;
    r = strspn(tag + n + 1, "0123456789");
    return r == 3 && tag[n + 1 + r] == '\0';
}

/* Canonical form: language lower case, region upper case, script title case, '-'. */
static void canonical_locale(const char *tag, char *out, size_t cap)
{
    size_t n = strcspn(tag, "-_"), i, j = 0;

    for (i = 0; tag[i] != '\0' && j + 1 < cap; i++, j++) {
        char c = tag[i];

        if (c == '_')
            c = '-';
        else if (i < n)
            c = (char)tolower((unsigned char)c);
        else if (strlen(tag + n + 1) == 4) /* script: Hant */
            c = (char)(i == n + 1 ? toupper((unsigned char)c) : tolower((unsigned char)c));
        else
            c = (char)toupper((unsigned char)c);
        out[j] = c;
    }
    out[j] = '\0';
}

/* True when dir/name is a directory. */
static bool is_dir(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return false;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

enum st_err templates_resolve_locale(const char *dir, const char *locale, char *out, size_t cap,
                                     char *err, size_t errlen)
{
    char canon[32], lang[8], best[64] = "";
    size_t n;
    DIR *d;
    struct dirent *e;

    if (!templates_locale_valid(locale))
        return st_fail(err, errlen, ST_PERMANENT,
                       "locale \"%.40s\" is not a language tag like en, de or pt-BR",
                       locale ? locale : "(none)");
    canonical_locale(locale, canon, sizeof(canon));
    n = strcspn(canon, "-");
    snprintf(lang, sizeof(lang), "%.*s", (int)n, canon);
    if (is_dir(dir, canon)) {
        snprintf(out, cap, "%s", canon);
        return ST_OK;
    }
    if (is_dir(dir, lang)) {
        snprintf(out, cap, "%s", lang);
        return ST_OK;
    }
    /* a sibling of the same language: zh-TW -> zh-CN, pt-PT -> pt-BR */
    if ((d = opendir(dir)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, lang, n) == 0 && e->d_name[n] == '-' &&
                templates_locale_valid(e->d_name) && strlen(e->d_name) < sizeof(best) &&
                (best[0] == '\0' || strcmp(e->d_name, best) < 0) && is_dir(dir, e->d_name))
                memcpy(best, e->d_name, strlen(e->d_name) + 1);
        }
        closedir(d);
    }
    if (best[0] != '\0') {
        snprintf(out, cap, "%s", best);
        return ST_OK;
    }
    if (is_dir(dir, "en")) {
        snprintf(out, cap, "en");
        return ST_OK;
    }
    return st_fail(err, errlen, ST_CONFIG,
                   "templates directory %s has no folder for locale %s nor the default \"en\"",
                   dir, canon);
}

/* ---- messages ---- */

bool templates_milestone_known(const char *name)
{
    for (size_t i = 0; name != NULL && i < templates_milestones_count; i++)
        if (strcmp(templates_milestones[i], name) == 0)
            return true;
    return false;
}

bool templates_milestone_transactional(const char *milestone)
{
    for (size_t i = 0; i < sizeof(transactional) / sizeof(transactional[0]); i++)
        if (strcmp(transactional[i], milestone) == 0)
            return true;
    return false;
}

bool templates_channel_parse(const char *s, enum tpl_channel *ch)
{
    if (s != NULL && strcmp(s, "email") == 0)
        *ch = TPL_EMAIL;
    else if (s != NULL && strcmp(s, "sms") == 0)
        *ch = TPL_SMS;
    else
        return false;
    return true;
}

void tpl_message_free(struct tpl_message *m)
{
    free(m->subject);
    free(m->text);
    free(m->html);
    free(m->sms);
    memset(m, 0, sizeof(*m));
}

/* ---- the view ---- */

/* Kinds of message data fields. */
enum field_kind {
    F_LINE,    /* one line of text */
    F_LINES,   /* text that may hold line breaks */
    F_URL,     /* http(s) URL */
    F_ZONE,    /* IANA zone */
    F_DAY,     /* calendar day or instant -> <out> long date */
    F_INSTANT, /* instant -> <out>_date and <out>_time */
    F_ENUM,    /* code -> one boolean of the choices */
    F_AMOUNT,  /* decimal amount, formatted with customs_currency */
    F_CURRENCY /* ISO 4217 code */
};

/* One accepted message data field. */
struct field {
    const char *name;    /* key in message data */
    enum field_kind kind;
    const char *out;     /* view name (F_DAY, F_INSTANT); NULL = same name */
    const char *choices; /* F_ENUM: "code=view_name|..." (view_name "" = none) */
};

static const struct field fields[] = {
    { "first_name", F_LINE, NULL, NULL },
    { "shop_name", F_LINE, NULL, NULL },
    { "order_ref", F_LINE, NULL, NULL },
    { "carrier_name", F_LINE, NULL, NULL },
    { "tracking_number", F_LINE, NULL, NULL },
    { "tracking_url", F_URL, NULL, NULL },
    { "unsubscribe_url", F_URL, NULL, NULL },
    { "time_zone", F_ZONE, NULL, NULL },
    { "eta", F_DAY, "eta_date", NULL },
    { "eta_previous", F_DAY, "eta_previous_date", NULL },
    { "customs_reason", F_ENUM, NULL,
      "duties_due=customs_duties_due|documents_required=customs_documents_required|"
      "inspection=customs_inspection|prohibited=customs_prohibited|processing=customs_other|"
      "delay=customs_other|unknown=customs_other" },
    { "customs_action_by", F_ENUM, NULL,
      "recipient=action_recipient|shipper=action_shipper|broker=action_broker|nobody=" },
    { "customs_instructions", F_LINES, NULL, NULL },
    { "customs_amount", F_AMOUNT, NULL, NULL },
    { "customs_currency", F_CURRENCY, NULL, NULL },
    { "customs_pay_url", F_URL, NULL, NULL },
    { "pickup_name", F_LINE, NULL, NULL },
    { "pickup_address", F_LINES, NULL, NULL },
    { "pickup_hours", F_LINES, NULL, NULL },
    { "pickup_deadline", F_DAY, "pickup_deadline_date", NULL },
    { "attempt_at", F_INSTANT, "attempt", NULL },
    { "next_attempt", F_DAY, "next_attempt_date", NULL },
    { "delivered_at", F_INSTANT, "delivered", NULL },
    { "exception_reason", F_ENUM, NULL,
      "address_issue=exception_address_issue|damaged=exception_damaged|lost=exception_lost|"
      "refused=exception_other|other=exception_other" },
};
#define N_FIELDS (sizeof(fields) / sizeof(fields[0]))

/* Fields every message needs, and what single milestones need on top. */
static const char *const required_all[] = {
    "shop_name", "order_ref", "carrier_name", "tracking_number", "tracking_url",
};
static const struct {
    const char *milestone;
    const char *field;
} required_for[] = {
    { "delayed", "eta" },
    { "customs_held", "customs_reason" },
    { "available_for_pickup", "pickup_name" },
    { "attempt_failed", "attempt_at" },
};

/* The field description for a key, or NULL. */
static const struct field *field_for(const char *name)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

/* Check text: no control characters but (when allowed) line breaks and tabs. */
static bool clean_text(const char *s, bool multiline)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\t') {
            if (!multiline)
                return false;
        } else if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

/* Check an http(s) URL: scheme, a host, no spaces or controls. */
static bool clean_url(const char *s)
{
    size_t skip = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;

    if (skip == 0 || s[skip] == '\0' || s[skip] == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
            return false;
    return true;
}

/* Format "23.40" in currency cur for the locale into buf. */
static bool format_amount(const char *locale, const char *amount, const char *cur, char *buf,
                          size_t cap)
{
    static const struct { const char *code, *sym; } syms[] = {
        { "EUR", "€" }, { "GBP", "£" }, { "USD", "US$" }, { "JPY", "¥" }, { "CNY", "CN¥" },
        { "BRL", "R$" }, { "PLN", "zł" }, { "SEK", "kr" }, { "CHF", "CHF" },
    };
    const struct locale_fmt *f = fmt_for(locale);
    const char *sym = cur, *dot = strchr(amount, '.');
    char num[48];
    size_t ilen = dot ? (size_t)(dot - amount) : strlen(amount);

    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++)
        if (strcmp(syms[i].code, cur) == 0)
            sym = syms[i].sym;
    if (dot != NULL)
        snprintf(num, sizeof(num), "%.*s%c%s", (int)ilen, amount, f->decimal, dot + 1);
    else
        snprintf(num, sizeof(num), "%s", amount);
    if (f->symbol_first) /* "€23.40", "US$ 23.40"; Dutch and Portuguese: "€ 23,40" */
        return (size_t)snprintf(buf, cap, "%s%s%s", sym,
                                isalpha((unsigned char)sym[0]) || strcmp(f->lang, "nl") == 0 ||
                                        strcmp(f->lang, "pt") == 0
                                    ? " "
                                    : "",
                                num) < cap;
    return (size_t)snprintf(buf, cap, "%s %s", num, sym) < cap;
}

/* A decimal amount: 1-9 digits, optionally '.' and 1-2 digits. */
static bool clean_amount(const char *s)
{
    size_t i = strspn(s, "0123456789"), f;

    if (i == 0 || i > 9)
        return false;
    if (s[i] == '\0')
        return true;
    if (s[i] != '.')
        return false;
    f = strspn(s + i + 1, "0123456789");
    return f >= 1 && f <= 2 && s[i + 1 + f] == '\0';
}

/* Set view[name] to a string; false on allocation failure. */
static bool put(json_t *view, const char *name, const char *value)
{
    return json_object_set_new(view, name, json_string(value)) == 0;
}

/* Set view[<base><suffix>] to value; base is out without a trailing "_date". */
static bool put_named(json_t *view, const char *out, const char *suffix, const char *value)
{
    char name[64];
    size_t n = strlen(out);

    if (n > 5 && strcmp(out + n - 5, "_date") == 0)
        n -= 5;
    if ((size_t)snprintf(name, sizeof(name), "%.*s%s", (int)n, out, suffix) >= sizeof(name))
        return false;
    return put(view, name, value);
}

/* Fill view from one F_DAY / F_INSTANT field: <x>_date (long), <x>_short
 * (SMS) and, for instants, <x>_time. */
static enum st_err put_when(json_t *view, const struct field *fd, const char *v,
                            const char *locale, const char *tz, char *err, size_t errlen)
{
    char day[128], shortday[64], tbuf[16];
    const char *p = v;
    int y, m, d;
    bool instant = false;
    struct tm tm;
    time_t t;

    if (fd->kind == F_DAY && parse_day(&p, &y, &m, &d) && *p == '\0') {
        /* a calendar day: printed as given, no zone involved */
    } else if (!templates_parse_instant(v, &t)) {
        return st_fail(err, errlen, ST_PERMANENT, "message data: %s: \"%.40s\" is not %s",
                       fd->name, v,
                       fd->kind == F_DAY ? "a date (2026-11-24) or an instant with an offset "
                                           "(2026-11-24T09:30:00+01:00)"
                                         : "an instant with an offset (2026-11-21T14:05:00Z)");
    } else if (tz == NULL) {
        return st_fail(err, errlen, ST_PERMANENT,
                       "message data: %s is an instant: time_zone (IANA, e.g. Europe/Paris) is "
                       "required", fd->name);
    } else if (!local_tm(t, tz, &tm)) {
        return st_fail(err, errlen, ST_PERMANENT, "message data: %s: cannot convert \"%.40s\" "
                       "to %s", fd->name, v, tz);
    } else {
        y = tm.tm_year + 1900;
        m = tm.tm_mon + 1;
        d = tm.tm_mday;
        instant = true;
        snprintf(tbuf, sizeof(tbuf), "%02d:%02d", tm.tm_hour, tm.tm_min);
    }
    if (!templates_format_day(locale, y, m, d, day, sizeof(day)) ||
        !templates_format_day_short(locale, y, m, d, shortday, sizeof(shortday)))
        return st_fail(err, errlen, ST_PERMANENT, "message data: %s: cannot format \"%.40s\"",
                       fd->name, v);
    if (!put_named(view, fd->out, "_date", day) || !put_named(view, fd->out, "_short", shortday) ||
        (fd->kind == F_INSTANT && !put_named(view, fd->out, "_time", instant ? tbuf : "")))
        return st_fail(err, errlen, ST_PERMANENT, "out of memory");
    return ST_OK;
}

/* Fill view from one F_ENUM field: set the boolean its code maps to. */
static enum st_err put_enum(json_t *view, const struct field *fd, const char *v, char *err,
                            size_t errlen)
{
    size_t vlen = strlen(v);
    char codes[256] = "";
    size_t clen = 0;

    for (const char *c = fd->choices; *c != '\0';) {
        size_t len = strcspn(c, "|"), klen = strcspn(c, "=");

        if (klen == vlen && strncmp(c, v, vlen) == 0) {
            char name[64];

            snprintf(name, sizeof(name), "%.*s", (int)(len - klen - 1), c + klen + 1);
            if (name[0] != '\0' && json_object_set_new(view, name, json_true()) != 0)
                return st_fail(err, errlen, ST_PERMANENT, "out of memory");
            return ST_OK;
        }
        if (clen + klen + 2 < sizeof(codes))
            clen += (size_t)snprintf(codes + clen, sizeof(codes) - clen, "%s%.*s",
                                     clen ? ", " : "", (int)klen, c);
        c += len;
        if (*c == '|')
            c++;
    }
    return st_fail(err, errlen, ST_PERMANENT, "%s: \"%.40s\" is not one of %s", fd->name, v,
                   codes);
}

json_t *templates_view(json_t *data, const char *locale, const char *milestone, char *err,
                       size_t errlen)
{
    const char *tz, *key, *amount, *currency;
    char buf[128];
    json_t *view, *val;
    enum st_err rc = ST_OK;

    if (!json_is_object(data)) {
        st_fail(err, errlen, ST_PERMANENT, "message data must be a JSON object");
        return NULL;
    }
    json_object_foreach(data, key, val) {
        const struct field *fd = field_for(key);
        const char *s = json_string_value(val);

        if (fd == NULL) {
            st_fail(err, errlen, ST_PERMANENT, "message data: unknown field \"%.64s\"", key);
            return NULL;
        }
        if (s == NULL && !json_is_null(val) && !(fd->kind == F_AMOUNT && json_is_number(val))) {
            st_fail(err, errlen, ST_PERMANENT, "message data: %s must be a string", key);
            return NULL;
        }
        if (s != NULL && strlen(s) > TEMPLATES_MAX_FIELD) {
            st_fail(err, errlen, ST_PERMANENT, "message data: %s is longer than %zu bytes", key,
                    TEMPLATES_MAX_FIELD);
            return NULL;
        }
    }
    for (size_t i = 0; i < sizeof(required_all) / sizeof(required_all[0]); i++) {
        const char *s = json_string_value(json_object_get(data, required_all[i]));

        if (s == NULL || s[0] == '\0') {
            st_fail(err, errlen, ST_PERMANENT, "message data: %s is required", required_all[i]);
            return NULL;
        }
    }
    for (size_t i = 0; i < sizeof(required_for) / sizeof(required_for[0]); i++) {
        const char *s = json_string_value(json_object_get(data, required_for[i].field));

        if (strcmp(required_for[i].milestone, milestone) == 0 && (s == NULL || s[0] == '\0')) {
            st_fail(err, errlen, ST_PERMANENT, "message data: %s is required for %s",
                    required_for[i].field, milestone);
            return NULL;
        }
    }
    tz = json_string_value(json_object_get(data, "time_zone"));
    if (tz != NULL && tz[0] == '\0')
        tz = NULL;
    if (tz != NULL && !templates_zone_valid(tz)) {
        st_fail(err, errlen, ST_PERMANENT,
                "message data: time_zone \"%.64s\" is not an IANA zone of this system's tz "
                "database", tz);
        return NULL;
    }
    if ((view = json_object()) == NULL) {
        st_fail(err, errlen, ST_PERMANENT, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < N_FIELDS && rc == ST_OK; i++) {
        const struct field *fd = &fields[i];
        json_t *jv = json_object_get(data, fd->name);
        const char *s = json_string_value(jv);

        if (s == NULL || s[0] == '\0')
            continue;
        switch (fd->kind) {
        case F_LINE:
        case F_LINES:
            if (!clean_text(s, fd->kind == F_LINES))
                rc = st_fail(err, errlen, ST_PERMANENT, "message data: %s holds control "
                             "characters%s", fd->name, fd->kind == F_LINE ? " or line breaks" : "");
            else if (!put(view, fd->name, s))
                rc = st_fail(err, errlen, ST_PERMANENT, "out of memory");
            break;
        case F_URL:
            if (!clean_url(s))
                rc = st_fail(err, errlen, ST_PERMANENT,
                             "message data: %s is not an http(s) URL without spaces", fd->name);
            else if (!(strcmp(fd->name, "unsubscribe_url") == 0 &&
                       templates_milestone_transactional(milestone)) &&
                     !put(view, fd->name, s))
                rc = st_fail(err, errlen, ST_PERMANENT, "out of memory");
            break;
        case F_DAY:
        case F_INSTANT:
            rc = put_when(view, fd, s, locale, tz, err, errlen);
            break;
        case F_ENUM:
            rc = put_enum(view, fd, s, err, errlen);
            break;
        case F_ZONE:
        case F_AMOUNT:
        case F_CURRENCY:
            break;
        }
    }
    /* amount due: number or decimal string, plus a currency */
    val = json_object_get(data, "customs_amount");
    amount = json_string_value(val);
    if (json_is_number(val)) {
        snprintf(buf, sizeof(buf), "%.2f", json_number_value(val));
        amount = json_number_value(val) >= 0 && json_number_value(val) < 1e9 ? buf : "-";
    }
    currency = json_string_value(json_object_get(data, "customs_currency"));
    if (rc == ST_OK && amount != NULL && amount[0] != '\0') {
        char tmp[64], out[96];

        snprintf(tmp, sizeof(tmp), "%.63s", amount);
        if (strlen(amount) >= sizeof(tmp) || !clean_amount(tmp))
            rc = st_fail(err, errlen, ST_PERMANENT,
                         "message data: customs_amount \"%.20s\" is not a decimal like 23.40",
                         tmp);
        else if (currency == NULL || strlen(currency) != 3 ||
                 strspn(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
            rc = st_fail(err, errlen, ST_PERMANENT,
                         "message data: customs_amount needs customs_currency (ISO 4217, e.g. "
                         "EUR)");
        else if (!format_amount(locale, tmp, currency, out, sizeof(out)) ||
                 !put(view, "customs_amount_due", out))
            rc = st_fail(err, errlen, ST_PERMANENT, "out of memory");
    }
    if (rc == ST_OK) {
        size_t n = strcspn(locale, "-");
        bool rtl = (n == 2 && (strncmp(locale, "ar", 2) == 0 || strncmp(locale, "he", 2) == 0 ||
                               strncmp(locale, "fa", 2) == 0 || strncmp(locale, "ur", 2) == 0));

        if (!put(view, "lang", locale) || !put(view, "dir", rtl ? "rtl" : "ltr"))
            rc = st_fail(err, errlen, ST_PERMANENT, "out of memory");
    }
    if (rc != ST_OK) {
        json_decref(view);
        return NULL;
    }
    return view;
}

/* ---- loading and rendering ---- */

/* Read path into a heap string capped at TEMPLATES_MAX_FILE; NULL with errno set. */
static char *read_capped(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL)
        return NULL;
    buf = malloc(TEMPLATES_MAX_FILE + 1);
    if (buf == NULL) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    n = fread(buf, 1, TEMPLATES_MAX_FILE + 1, f);
    if (ferror(f) || n > TEMPLATES_MAX_FILE) {
        int e = ferror(f) ? EIO : EFBIG;

        fclose(f);
        free(buf);
        errno = e;
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (memchr(buf, '\0', n) != NULL) {
        free(buf);
        errno = EINVAL;
        return NULL;
    }
    return buf;
}

/* State of the partial loader during one part. */
struct partial_ctx {
    const char *dir;     /* templates directory */
    const char *locale;  /* resolved locale */
    char missing[96];    /* first partial that could not be loaded */
    int missing_errno;   /* why */
};

/* Load partials/<name> of the locale; names are [a-z0-9_.-] without "..". */
static char *load_partial(void *ud, const char *name)
{
    struct partial_ctx *pc = ud;
    char path[4096];
    char *s;
    bool ok = name[0] != '\0' && name[0] != '.' && strlen(name) < 64 && strstr(name, "..") == NULL;

    for (const char *p = name; ok && *p != '\0'; p++)
        ok = islower((unsigned char)*p) || isdigit((unsigned char)*p) || strchr("_.-", *p);
    if (ok && (size_t)snprintf(path, sizeof(path), "%s/%s/partials/%s", pc->dir, pc->locale,
                               name) < sizeof(path) &&
        (s = read_capped(path)) != NULL)
        return s;
    if (pc->missing[0] == '\0') {
        snprintf(pc->missing, sizeof(pc->missing), "%s", name);
        pc->missing_errno = ok ? errno : EINVAL;
    }
    return NULL;
}

/* Render one part (<milestone>.<suffix>) into *out. */
static enum st_err render_part(const char *dir, const char *locale, const char *milestone,
                               const char *suffix, bool html, size_t cap, json_t *view,
                               char **out, char *err, size_t errlen)
{
    struct partial_ctx pc = { dir, locale, "", 0 };
    struct mustache_opts opts = { html, cap, 0, load_partial, &pc };
    char path[4096], merr[256];
    char *tmpl;
    int rc;

    *out = NULL;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s.%s", dir, locale, milestone, suffix) >=
        sizeof(path))
        return st_fail(err, errlen, ST_CONFIG, "template path too long");
    if ((tmpl = read_capped(path)) == NULL)
        return st_fail(err, errlen, ST_CONFIG, "template %s/%s.%s (locale %s, milestone %s): %s",
                       locale, milestone, suffix, locale, milestone,
                       errno == EFBIG ? "larger than 64 KiB" : strerror(errno));
    rc = mustache_render(tmpl, view, &opts, out, merr, sizeof(merr));
    free(tmpl);
    if (rc != 0)
        return st_fail(err, errlen, ST_CONFIG, "template %s/%s.%s (locale %s, milestone %s): %s",
                       locale, milestone, suffix, locale, milestone, merr);
    if (pc.missing[0] != '\0') {
        free(*out);
        *out = NULL;
        return st_fail(err, errlen, ST_CONFIG,
                       "template %s/%s.%s (locale %s, milestone %s): partial \"%s\" "
                       "(%s/partials/%s): %s",
                       locale, milestone, suffix, locale, milestone, pc.missing, locale,
                       pc.missing, strerror(pc.missing_errno));
    }
    return ST_OK;
}

/* Subject: one line, whitespace runs (including CR/LF from anywhere) become
 * one space, trimmed. */
static void one_line(char *s)
{
    char *w = s;
    bool space = true; /* drop leading spaces */

    for (char *r = s; *r != '\0'; r++) {
        if (*r == '\r' || *r == '\n' || *r == '\t' || *r == ' ') {
            if (!space)
                *w++ = ' ';
            space = true;
        } else {
            *w++ = *r;
            space = false;
        }
    }
    while (w > s && w[-1] == ' ')
        w--;
    *w = '\0';
}

/* Drop trailing whitespace (SMS: every character costs). */
static void trim_end(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL)
        s[--n] = '\0';
}

enum st_err templates_render(const char *dir, const char *milestone, const char *locale,
                             enum tpl_channel ch, json_t *data, struct tpl_message *out,
                             char *err, size_t errlen)
{
    char resolved[sizeof(out->locale)];
    enum st_err rc;
    json_t *view;

    memset(out, 0, sizeof(*out));
    if (!templates_milestone_known(milestone))
        return st_fail(err, errlen, ST_PERMANENT, "unknown milestone \"%.40s\"",
                       milestone ? milestone : "(none)");
    if ((rc = templates_resolve_locale(dir, locale, resolved, sizeof(resolved), err, errlen)) !=
        ST_OK)
        return rc;
    if ((view = templates_view(data, resolved, milestone, err, errlen)) == NULL)
        return ST_PERMANENT;
    snprintf(out->locale, sizeof(out->locale), "%s", resolved);
    if (ch == TPL_SMS) {
        rc = render_part(dir, resolved, milestone, "sms.txt", false, TEMPLATES_MAX_SMS, view,
                         &out->sms, err, errlen);
        if (rc == ST_OK)
            trim_end(out->sms);
    } else {
        rc = render_part(dir, resolved, milestone, "subject.txt", false, TEMPLATES_MAX_SUBJECT,
                         view, &out->subject, err, errlen);
        if (rc == ST_OK)
            rc = render_part(dir, resolved, milestone, "text.txt", false, TEMPLATES_MAX_PART,
                             view, &out->text, err, errlen);
        if (rc == ST_OK)
            rc = render_part(dir, resolved, milestone, "html", true, TEMPLATES_MAX_PART, view,
                             &out->html, err, errlen);
        if (rc == ST_OK) {
            one_line(out->subject);
            if (out->subject[0] == '\0')
                rc = st_fail(err, errlen, ST_CONFIG,
                             "template %s/%s.subject.txt (locale %s, milestone %s): empty subject",
                             resolved, milestone, resolved, milestone);
        }
    }
    json_decref(view);
    if (rc != ST_OK)
        tpl_message_free(out);
    return rc;
}

/* ---- sample data ---- */

json_t *templates_sample_data(const char *milestone)
{
    json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                          "first_name", "Charlotte", "shop_name", "Nordlicht Outdoor",
                          "order_ref", "NO-2026-481327", "carrier_name", "DHL Express",
                          "tracking_number", "JD014600006281230594",
                          "tracking_url", "https://nordlicht.example/t/8KQ3ZP",
                          "unsubscribe_url", "https://nordlicht.example/u/8KQ3ZP?s=f41c9e",
                          "time_zone", "Europe/Paris", "eta", "2026-11-24");
    int rc = 0;

    if (d == NULL || milestone == NULL)
        return d;
    if (strcmp(milestone, "delayed") == 0)
        rc = json_object_set_new(d, "eta", json_string("2026-11-26")) ||
             json_object_set_new(d, "eta_previous", json_string("2026-11-24"));
    else if (strcmp(milestone, "customs_held") == 0) {
        json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                                             "customs_reason", "duties_due",
                                             "customs_action_by", "recipient",
                                             "customs_instructions",
                                             "Pay import VAT and duties online at dhl.com/pay "
                                             "or to the courier on delivery.",
                                             "customs_amount", "23.40", "customs_currency", "EUR",
                                             "customs_pay_url",
                                             "https://dhl.example/pay/JD014600006281230594",
                                             "eta", "2026-11-26");

        rc = c == NULL || json_object_update(d, c) != 0;
        json_decref(c);
    } else if (strcmp(milestone, "available_for_pickup") == 0 ||
             strcmp(milestone, "attempt_failed") == 0) {
        rc = json_object_set_new(d, "pickup_name", json_string("DHL Paketshop Tabac du Marché")) ||
             json_object_set_new(d, "pickup_address",
                                 json_string("12 rue de la Roquette, 75011 Paris")) ||
             json_object_set_new(d, "pickup_hours", json_string("Mon-Sat 08:00-19:30")) ||
             json_object_set_new(d, "pickup_deadline", json_string("2026-11-28"));
        if (strcmp(milestone, "attempt_failed") == 0)
            rc = rc || json_object_set_new(d, "attempt_at", json_string("2026-11-21T13:32:00Z")) ||
                 json_object_set_new(d, "next_attempt", json_string("2026-11-23"));
    } else if (strcmp(milestone, "delivered") == 0)
        rc = json_object_set_new(d, "delivered_at", json_string("2026-11-24T10:47:00Z"));
    else if (strcmp(milestone, "exception") == 0)
        rc = json_object_set_new(d, "exception_reason", json_string("address_issue"));
    if (rc != 0) {
        json_decref(d);
        return NULL;
    }
    return d;
}

/* ---- SMS ---- */

unsigned sms_segments(const char *text, enum sms_encoding *enc, size_t *units)
{
    struct sms_measure m;

    sms_measure_lenient(text, &m);
    if (enc != NULL)
        *enc = m.ucs2 ? SMS_UCS2 : SMS_GSM7;
    if (units != NULL)
        *units = m.units;
    return (unsigned)m.segments;
}
