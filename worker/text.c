/*
 * text.c - UTF-8 decoding and GSM 03.38 / UCS-2 SMS measurement.
 */
#include "text.h"

#include <string.h>

size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c;
    size_t len;

    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) { c = s[0] & 0x1F; len = 2; }
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) { c = s[0] & 0x0F; len = 3; }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) { c = s[0] & 0x07; len = 4; }
    else return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Septets a character takes in GSM 03.38 (1 basic, 2 extension), 0 if none. */
static int gsm7_septets(uint32_t c)
{
    static const uint32_t basic_hi[] = {
        0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x00D8, 0x00F8,
        0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3,
        0x0398, 0x039E, 0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6,
        0x00D1, 0x00DC, 0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
    };

    if (c == '\n' || c == '\r' || (c >= 0x20 && c <= 0x7E && !strchr("`^{}\\[~]|", (int)c)))
        return 1;
    if (c < 0x80 && c != 0 && strchr("^{}\\[~]|\f", (int)c) != NULL)
        return 2;
    if (c == 0x20AC) /* euro sign: extension table */
        return 2;
    for (size_t i = 0; i < sizeof(basic_hi) / sizeof(basic_hi[0]); i++)
        if (basic_hi[i] == c)
            return 1;
    return 0;
}

/* The measurement; lenient: invalid bytes are UCS-2 units, else failure. */
static bool measure(const char *body, bool lenient, struct sms_measure *out)
{
    const unsigned char *p = (const unsigned char *)(body ? body : "");
    size_t n = strlen((const char *)p), septets = 0, utf16 = 0;
    bool ucs2 = false;

    memset(out, 0, sizeof(*out));
    while (n > 0) {
        uint32_t cp;
        size_t k = utf8_decode(p, n, &cp);
        int s;

        if (k == 0) {
            if (!lenient)
                return false;
            ucs2 = true;
            utf16++;
            p++;
            n--;
            continue;
        }
        s = gsm7_septets(cp);
        if (s == 0)
            ucs2 = true;
        septets += (size_t)s;
        utf16 += cp >= 0x10000 ? 2 : 1;
        p += k;
        n -= k;
    }
    out->ucs2 = ucs2;
    out->units = ucs2 ? utf16 : septets;
    if (out->units == 0)
        out->segments = 0;
    else if (ucs2)
        out->segments = out->units <= 70 ? 1 : (out->units + 66) / 67;
    else
        out->segments = out->units <= 160 ? 1 : (out->units + 152) / 153;
    return true;
}

bool sms_measure_body(const char *body, struct sms_measure *out)
{
    return measure(body, false, out);
}

void sms_measure_lenient(const char *body, struct sms_measure *out)
{
    measure(body, true, out);
}
