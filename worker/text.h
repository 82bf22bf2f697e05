/*
 * text.h - UTF-8 decoding and SMS length measurement, shared by the
 * templates (which check that every SMS fits) and the channels (which send
 * and count what they sent).
 */
#ifndef ST_TEXT_H
#define ST_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode the UTF-8 character at s (n bytes available) into *cp; returns its
 * length, or 0 when invalid (overlong forms, surrogates and code points above
 * U+10FFFF included) or cut short. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* What an SMS body costs. */
struct sms_measure {
    bool ucs2;                   /* one non-GSM character makes all of it UCS-2 */
    size_t units;                /* septets (GSM-7, extension chars count 2) or UTF-16 units */
    size_t segments;             /* 1 if it fits one message (160/70), else parts of 153/67 */
};

/* Measure body; false for invalid UTF-8 (nothing can send it as written). */
bool sms_measure_body(const char *body, struct sms_measure *out);

/* Same, but an invalid byte counts as one UCS-2 unit instead of failing
 * (for measuring template output, which may carry untrusted data). */
void sms_measure_lenient(const char *body, struct sms_measure *out);

#endif
