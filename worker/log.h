/*
 * log.h - level-gated, one-line-per-event logging with personal data masked.
 *
 * Every line carries a timestamp, level, an event name (e.g. "poll.done"),
 * and, where they apply, the shipment id and carrier. Text format is
 * `key=value`; json format is one object per line. Email addresses and phone
 * numbers in the message are masked before the line is written, so callers
 * cannot leak them by accident. Secrets must never be passed in at all.
 */
#ifndef ST_LOG_H
#define ST_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Configure the logger; out NULL means stderr. Level names: debug|info|warn|error;
 * format names: text|json. Unknown names keep the current setting. */
void log_setup(const char *level, const char *format, FILE *out);

bool log_enabled(enum log_level lvl);

/* Write one line. shipment_id <= 0 and carrier NULL are left out. */
void st_log(enum log_level lvl, const char *event, long long shipment_id, const char *carrier,
            const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_debug(ev, sid, car, ...) \
    do { if (log_enabled(LOG_DEBUG)) st_log(LOG_DEBUG, ev, sid, car, __VA_ARGS__); } while (0)
#define log_info(ev, sid, car, ...) st_log(LOG_INFO, ev, sid, car, __VA_ARGS__)
#define log_warn(ev, sid, car, ...) st_log(LOG_WARN, ev, sid, car, __VA_ARGS__)
#define log_error(ev, sid, car, ...) st_log(LOG_ERROR, ev, sid, car, __VA_ARGS__)

/* Copy in to out[cap] with e-mail addresses ("j***@e***.com") and E.164-like
 * phone numbers ("+33******78") masked. Returns out. */
char *log_mask_pii(const char *in, char *out, size_t cap);

#endif
