/*
 * templates.h - notification templates: locate, load and render one milestone.
 *
 * Templates are mustache files under a directory (SHIPTRACK_TEMPLATES_DIR),
 * one folder per locale; templates/README.md documents the layout and every
 * variable. This module turns a "message data" JSON object (raw facts:
 * names, URLs, ISO dates and instants, enum codes) into the template view
 * (the same facts with dates formatted for the locale in the recipient's time
 * zone, amounts formatted, codes turned into booleans), picks the locale
 * folder through the fallback chain and renders the parts of one channel:
 * email = subject + text + HTML, sms = one body. HTML escaping applies to the
 * HTML part only. SMS bodies are measured in GSM-7 / UCS-2 segments.
 *
 * Wording:
 *   milestone  one of templates_milestones[] (DESIGN.md, Notifications)
 *   locale     a BCP 47-like tag, "pt-BR"; the folder actually used is the
 *              "resolved" locale
 *   chain      exact folder -> language folder ("pt") -> the first folder of
 *              the same language in sorted order ("zh-TW" -> "zh-CN") -> "en"
 *   transactional  a milestone asking the recipient to act or telling of a
 *              problem; such messages carry no unsubscribe link
 *
 * Errors: ST_PERMANENT for bad message data (the input will never render),
 * ST_CONFIG for template problems (missing file, mustache error, missing
 * partial, size cap) - the message names the locale, milestone and file.
 * Renders may run on several threads: the time zone is switched through TZ
 * under a process-wide mutex (see templates.c), so nothing else in the
 * process should rely on the local zone meanwhile.
 */
#ifndef ST_TEMPLATES_H
#define ST_TEMPLATES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"

/* Default templates directory of an installed shiptrack. */
#define TEMPLATES_DEFAULT_DIR "/usr/share/shiptrack/templates"
/* Caps: one template file, rendered subject, rendered text/HTML part, rendered SMS. */
#define TEMPLATES_MAX_FILE ((size_t)64 << 10)
#define TEMPLATES_MAX_SUBJECT ((size_t)512)
#define TEMPLATES_MAX_PART ((size_t)256 << 10)
#define TEMPLATES_MAX_SMS ((size_t)1600)
/* Longest string accepted in message data (instructions, addresses). */
#define TEMPLATES_MAX_FIELD ((size_t)1024)

enum tpl_channel { TPL_EMAIL, TPL_SMS };

/* The milestones, in DESIGN.md order. */
extern const char *const templates_milestones[];
extern const size_t templates_milestones_count;
/* The locales shipped in templates/ (each complete for every milestone and channel). */
extern const char *const templates_locales[];
extern const size_t templates_locales_count;
/* Every name a template may use (variables, sections, layout), NULL-terminated. */
extern const char *const templates_variables[];

/* A rendered message. Email: subject, text, html set, sms NULL; SMS: only sms. */
struct tpl_message {
    char locale[32];  /* the locale folder used */
    char *subject;    /* one line, no CR/LF */
    char *text;       /* text/plain part */
    char *html;       /* text/html part */
    char *sms;        /* SMS body */
};

/* Free the parts of m (m itself is the caller's) and zero it. */
void tpl_message_free(struct tpl_message *m);

/* True when name is a known milestone. */
bool templates_milestone_known(const char *name);
/* True when the milestone needs no unsubscribe link (action or problem). */
bool templates_milestone_transactional(const char *milestone);
/* Parse "email" / "sms". */
bool templates_channel_parse(const char *s, enum tpl_channel *ch);

/* True when tag looks like a locale: 2-3 letters, optional -/_ and 2-4
 * letters or 3 digits ("en", "pt-BR", "zh_TW", "es-419"). */
bool templates_locale_valid(const char *tag);

/* Resolve a locale to the folder of dir that will be used (see "chain"),
 * written to out[cap]. Returns ST_OK, ST_PERMANENT for a malformed tag, or
 * ST_CONFIG when not even "en" exists in dir. */
enum st_err templates_resolve_locale(const char *dir, const char *locale, char *out, size_t cap,
                                     char *err, size_t errlen);

/* Build the template view from message data (borrowed) for a locale and
 * milestone: a new object (caller decrefs) or NULL with ST_PERMANENT and err
 * naming the field. Unknown fields are rejected, so typos surface. */
json_t *templates_view(json_t *data, const char *locale, const char *milestone, char *err,
                       size_t errlen);

/* Render milestone for channel in locale from message data (borrowed) with the
 * templates of dir. On ST_OK *out is filled (free with tpl_message_free). */
enum st_err templates_render(const char *dir, const char *milestone, const char *locale,
                             enum tpl_channel ch, json_t *data, struct tpl_message *out,
                             char *err, size_t errlen);

/* Realistic sample message data for a milestone (new object, caller
 * decrefs), as used by `shiptrack render` without --data and by the tests. */
json_t *templates_sample_data(const char *milestone);

/* Format an instant as a long date / 24 h time for locale in IANA zone tz.
 * Return false (buf "") when tz is unknown or the buffer is too small. */
bool templates_format_date(const char *locale, time_t t, const char *tz, char *buf, size_t cap);
bool templates_format_time(const char *locale, time_t t, const char *tz, char *buf, size_t cap);
/* Format a calendar day (no zone involved), long ("Tuesday 24 November
 * 2026") or short for SMS ("Tue 24 Nov", "Di., 24.11."). */
bool templates_format_day(const char *locale, int year, int month, int day, char *buf,
                          size_t cap);
bool templates_format_day_short(const char *locale, int year, int month, int day, char *buf,
                                size_t cap);

/* Parse an RFC 3339 instant with its offset ("2026-11-21T23:30:00+01:00",
 * "...Z"); a missing offset is an error, never guessed. */
bool templates_parse_instant(const char *s, time_t *t);

/* True when tz names a zone in the system tz database (TZDIR or
 * /usr/share/zoneinfo); the rules of geo_zone_valid(). */
bool templates_zone_valid(const char *tz);

/* SMS encodings. */
enum sms_encoding { SMS_GSM7, SMS_UCS2 };

/* Measure an SMS body (UTF-8): *enc is GSM-7 when every character is in the
 * GSM 03.38 basic or extension table (extension characters count 2 septets),
 * else UCS-2 (UTF-16 code units: 2 for characters beyond the BMP). *units
 * gets septets or code units. Returns the number of segments: 0 for an empty
 * body, 1 up to 160 / 70, else ceil(units / 153) / ceil(units / 67).
 * Invalid UTF-8 counts as UCS-2, one unit per byte. */
unsigned sms_segments(const char *text, enum sms_encoding *enc, size_t *units);

#endif
