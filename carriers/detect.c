/*
 * detect.c - tracking-number formats, their matchers and check digits.
 *
 * One const table, formats[], lists every format we know: its display name,
 * the carrier that issues it, a matcher that checks the shape of a normalized
 * number and says where the serial and check digit sit, and the function that
 * computes the expected check digit from the serial (NULL when the format has
 * none). detect_tracking_number() runs every matcher, keeps the formats whose
 * check digit agrees, orders them (see detect.h) and appends the track17
 * fallback. The shapes and checksum parameters follow the conformance specs in
 * shared/conformance/tracking-numbers/{ups,fedex,usps,dhl,s10}.json; where a
 * spec regex has alternatives, the matcher tries them in the regex's order and
 * the first shape that fits is the one whose check digit is verified, as a
 * backtracking regex engine would do.
 *
 * Wording: "normalized" = upper-case letters and digits only; "serial" = the
 * characters a format's checksum covers; "shape" = lengths and character
 * classes, before any check digit.
 */
#include "detect.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

/* Outcome of a matcher. */
enum match {
    M_NO = 0, /* shape does not fit */
    M_YES,    /* shape fits; check digit (if any) still to verify */
    M_BAD     /* shape fits but a field is not allowed (parse.bad says which) */
};

/* Where a matcher found the parts of a number. */
struct parse {
    size_t serial_off;   /* first character the checksum covers */
    size_t serial_len;   /* number of characters the checksum covers */
    size_t check_off;    /* position of the check digit (formats that have one) */
    const char *carrier; /* carrier decided by the matcher (S10), or NULL */
    char country[3];     /* S10 issuing country, or "" */
    char bad[96];        /* for M_BAD: what is wrong */
};

/* One tracking-number format. */
struct format_def {
    const char *name;    /* display name, as in the candidates */
    const char *carrier; /* our carrier id; S10 picks it per country instead */
    /* Check the shape of normalized s[0..n) and fill p. */
    enum match (*match)(const char *s, size_t n, struct parse *p);
    /* Expected check digit (0-9) for serial[0..n); NULL: no check digit. */
    int (*expect)(const char *serial, size_t n);
};

/* Most formats a number can fit at once, plus the track17 fallback. */
#define MAX_HITS 32

/* Longest serial any checksum covers (USPS IMpb N: 29 digits). */
#define SERIAL_MAX 40

/* ------------------------------------------------------------------------ */
/* Character helpers (ASCII only, independent of the locale).               */

/* True for '0'..'9'. */
static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* True for 'A'..'Z'. */
static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

/* True when s[0..n) are all digits. */
static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))
            return false;
    return true;
}

/* True when s[0..n) are all upper-case letters. */
static bool all_upper(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_upper(s[i]))
            return false;
    return true;
}

/* True when s[0..n) are all letters or digits. */
static bool all_alnum(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]) && !is_upper(s[i]))
            return false;
    return true;
}

/* True when s[0..n) starts with the NUL-terminated prefix. */
static bool starts_with(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);

    return n >= k && memcmp(s, prefix, k) == 0;
}

/* Numeric value of a serial character: digits as such, letters the UPS way
 * ((ASCII - 3) mod 10, so A=2 ... H=9, I=0, J=1 ...). */
static unsigned char_value(char c)
{
    if (is_digit(c))
        return (unsigned)(c - '0');
    assert(is_upper(c));
    return (unsigned)((c - 3) % 10);
}

/* Append a formatted clause to why[whylen], separated by "; ". Truncates. */
__attribute__((format(printf, 3, 4)))
static void why_add(char *why, size_t whylen, const char *fmt, ...)
{
    size_t used;
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    used = strnlen(why, whylen);
    if (used + 1 >= whylen)
        return;
    if (used > 0) {
        int k = snprintf(why + used, whylen - used, "; ");
        if (k < 0)
            return;
        used += (size_t)k;
        if (used + 1 >= whylen)
            return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(why + used, whylen - used, fmt, ap);
    va_end(ap);
}

/* Replace why[whylen] with a formatted message. */
__attribute__((format(printf, 3, 4)))
static void why_set(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Check-digit algorithms and their parameterizations.                      */

/* Weighted mod 10: position i (0-based from the left, or from the right when
 * reverse) is multiplied by evens or odds; the check digit brings the sum to
 * a multiple of 10. */
static int mod10(const char *s, size_t n, unsigned evens, unsigned odds, bool reverse)
{
    unsigned long total = 0;

    for (size_t i = 0; i < n; i++) {
        char c = reverse ? s[n - 1 - i] : s[i];
        total += char_value(c) * (i % 2 == 0 ? evens : odds);
    }
    return (int)((10 - total % 10) % 10);
}

/* Sum of digit times weight, then mod m1, then mod m2 (FedEx Express). */
static int sum_product(const char *s, size_t n, const unsigned *w, size_t nw, unsigned m1,
                       unsigned m2)
{
    unsigned long total = 0;

    assert(n <= nw);
    for (size_t i = 0; i < n && i < nw; i++)
        total += char_value(s[i]) * w[i];
    return (int)(total % m1 % m2);
}

/* UPS: mod 10, even positions x1, odd positions x2, letters converted. */
static int ck_ups(const char *s, size_t n)
{
    return mod10(s, n, 1, 2, false);
}

/* FedEx Ground (15) and Ground 96: mod 10, x1 / x3. */
static int ck_mod10_1_3(const char *s, size_t n)
{
    return mod10(s, n, 1, 3, false);
}

/* FedEx SSCC-18, USPS 20, USPS IMpb C: mod 10, x3 / x1. */
static int ck_mod10_3_1(const char *s, size_t n)
{
    return mod10(s, n, 3, 1, false);
}

/* USPS IMpb N: mod 10, x3 / x1, counted from the right. */
static int ck_mod10_3_1_rev(const char *s, size_t n)
{
    return mod10(s, n, 3, 1, true);
}

/* USPS Legacy: mod 10, x3 / x1 over the serial with "91" prepended when it
 * does not already start with 91. */
static int ck_usps_legacy(const char *s, size_t n)
{
    char buf[SERIAL_MAX + 3];

    if (starts_with(s, n, "91"))
        return mod10(s, n, 3, 1, false);
    assert(n <= SERIAL_MAX);
    if (n > SERIAL_MAX)
        return -1;
    buf[0] = '9';
    buf[1] = '1';
    memcpy(buf + 2, s, n);
    return mod10(buf, n + 2, 3, 1, false);
}

/* FedEx Express (12) and ASTRA (32): weights 3,1,7 over 11 digits, mod 11 mod 10. */
static int ck_fedex_11(const char *s, size_t n)
{
    static const unsigned w[] = { 3, 1, 7, 3, 1, 7, 3, 1, 7, 3, 1 };

    return sum_product(s, n, w, sizeof w / sizeof w[0], 11, 10);
}

/* FedEx Express (34) and Ground GSN: weights 1,7,3 over 13 digits, mod 11 mod 10. */
static int ck_fedex_13(const char *s, size_t n)
{
    static const unsigned w[] = { 1, 7, 3, 1, 7, 3, 1, 7, 3, 1, 7, 3, 1 };

    return sum_product(s, n, w, sizeof w / sizeof w[0], 11, 10);
}

/* DHL Express: the serial read as a number, mod 7. */
static int ck_mod7(const char *s, size_t n)
{
    unsigned r = 0;

    for (size_t i = 0; i < n; i++)
        r = (r * 10 + char_value(s[i])) % 7;
    return (int)r;
}

/* UPU S10: weights 8,6,4,2,3,5,9,7 mod 11; 11 - r, with 10 -> 0 and 11 -> 5. */
static int ck_s10(const char *s, size_t n)
{
    static const unsigned w[] = { 8, 6, 4, 2, 3, 5, 9, 7 };
    unsigned long total = 0;
    unsigned r;

    assert(n == sizeof w / sizeof w[0]);
    for (size_t i = 0; i < n && i < sizeof w / sizeof w[0]; i++)
        total += char_value(s[i]) * w[i];
    r = (unsigned)(total % 11);
    if (r == 0)
        return 5;
    if (r == 1)
        return 0;
    return (int)(11 - r);
}

/* ------------------------------------------------------------------------ */
/* Matchers.                                                                */

/* Record the serial and check digit positions; always M_YES. */
static enum match found(struct parse *p, size_t serial_off, size_t serial_len, size_t check_off)
{
    p->serial_off = serial_off;
    p->serial_len = serial_len;
    p->check_off = check_off;
    return M_YES;
}

/* UPS 1Z: "1Z", shipper (6), service (2), package (7), check digit. */
static enum match m_ups_1z(const char *s, size_t n, struct parse *p)
{
    if (n != 18 || !starts_with(s, n, "1Z") || !all_alnum(s + 2, 15) || !is_digit(s[17]))
        return M_NO;
    return found(p, 2, 15, 17);
}

/* UPS Waybill: service letter A/H/J/K/T/V, 9 digits, check digit. */
static enum match m_ups_waybill(const char *s, size_t n, struct parse *p)
{
    if (n != 11 || strchr("AHJKTV", s[0]) == NULL || !all_digits(s + 1, 10))
        return M_NO;
    return found(p, 1, 9, 10);
}

/* Countries with a UPU postal operator (the S10 spec's "Courier" list). */
static const char upu_countries[][3] = {
    "AE", "AF", "AG", "AL", "AM", "AO", "AR", "AT", "AU", "AZ", "BA", "BB", "BD", "BE", "BF", "BG",
    "BH", "BI", "BJ", "BN", "BO", "BR", "BS", "BT", "BW", "BY", "BZ", "CA", "CD", "CF", "CG", "CH",
    "CI", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ",
    "EC", "EE", "EG", "ER", "ES", "ET", "FI", "FJ", "FR", "GA", "GB", "GD", "GE", "GH", "GM", "GN",
    "GQ", "GR", "GT", "GW", "GY", "HK", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IN", "IQ", "IR",
    "IS", "IT", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KZ", "LA",
    "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MG", "MK",
    "ML", "MM", "MN", "MR", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NE", "NG", "NI", "NL",
    "NO", "NP", "NR", "NZ", "OM", "PA", "PE", "PG", "PH", "PK", "PL", "PT", "PY", "QA", "RO", "RS",
    "RU", "RW", "SA", "SB", "SC", "SD", "SE", "SG", "SI", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SY", "SZ", "TD", "TG", "TH", "TJ", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TZ",
    "UA", "UG", "US", "UY", "UZ", "VA", "VC", "VE", "VN", "VU", "WS", "YE", "ZA", "ZM", "ZW",
};

/* True when the two letters at cc name a country with a UPU postal operator. */
static bool upu_country(const char *cc)
{
    size_t lo = 0, hi = sizeof upu_countries / sizeof upu_countries[0];

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(cc, upu_countries[mid], 2);

        if (cmp == 0)
            return true;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

/* S10 (UPU): service (2 letters), serial (8), check digit, country (2 letters).
 * The country picks the carrier: its own post where we have a driver, else
 * the track17 aggregator. */
static enum match m_s10(const char *s, size_t n, struct parse *p)
{
    if (n != 13 || !all_upper(s, 2) || !all_digits(s + 2, 9) || !all_upper(s + 11, 2))
        return M_NO;
    memcpy(p->country, s + 11, 2);
    p->country[2] = '\0';
    if (!upu_country(p->country)) {
        snprintf(p->bad, sizeof p->bad, "country code %s has no UPU postal operator", p->country);
        return M_BAD;
    }
    if (strcmp(p->country, "US") == 0)
        p->carrier = "usps";
    else if (strcmp(p->country, "FR") == 0)
        p->carrier = "laposte";
    else
        p->carrier = "track17";
    return found(p, 2, 8, 10);
}

/* True when s has the USPS routing prefix of length k: none (k = 0),
 * "420" + ZIP (k = 8) or "420" + ZIP+4 (k = 12), with more digits after it. */
static bool usps_routing(const char *s, size_t n, size_t k)
{
    return k == 0 || (n > k && starts_with(s, n, "420") && all_digits(s, k));
}

/* USPS IMpb N body: "94", service (3), mailer id (9 digits starting with 9,
 * or 6 starting 0-8), package id, check digit; len is the body length. */
static bool impb_n_body(const char *b, size_t len)
{
    if (len < 6 || !all_digits(b, len) || !starts_with(b, len, "94"))
        return false;
    if (b[5] == '9')
        return len == 30 || len == 26 || len == 22;
    return len == 26 || len == 22;
}

/* USPS IMpb N: [420 ZIP[+4]] 94 ... (22, 26 or 30 digits after the prefix). */
static enum match m_usps_impb_n(const char *s, size_t n, struct parse *p)
{
    static const size_t prefixes[] = { 12, 8, 0 };

    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t k = prefixes[i], body;

        if (!usps_routing(s, n, k))
            continue;
        body = n - k;
        /* The spec allows ZIP+4 only before 22 digits, ZIP before 22 or 26. */
        if ((k == 12 && body != 22) || (k == 8 && body != 22 && body != 26))
            continue;
        if (impb_n_body(s + k, body))
            return found(p, k, body - 1, n - 1);
    }
    return M_NO;
}

/* USPS IMpb C body: 92 (9-digit mailer id), 93 (6-digit) or 95 (either),
 * service (3), mailer id, package id, check digit: 22 or 26 digits. */
static bool impb_c_body(const char *b, size_t len)
{
    if (len != 22 && len != 26)
        return false;
    if (!all_digits(b, len))
        return false;
    if (starts_with(b, len, "92"))
        return b[5] == '9';
    if (starts_with(b, len, "93"))
        return b[5] != '9';
    return starts_with(b, len, "95");
}

/* USPS IMpb C: [420 ZIP[+4]] 92/93/95 ... */
static enum match m_usps_impb_c(const char *s, size_t n, struct parse *p)
{
    static const size_t prefixes[] = { 12, 8, 0 };

    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t k = prefixes[i], body;

        if (!usps_routing(s, n, k))
            continue;
        body = n - k;
        if (k == 12 && body != 22) /* ZIP+4 only before exactly 22 digits */
            continue;
        if (impb_c_body(s + k, body))
            return found(p, k, body - 1, n - 1);
    }
    return M_NO;
}

/* USPS Legacy: [420 ZIP[+4]] [91] service (2), shipper (9), package (8),
 * check digit: 20 digits, or 22 starting with 91, after the prefix. */
static enum match m_usps_legacy(const char *s, size_t n, struct parse *p)
{
    static const size_t prefixes[] = { 12, 8, 0 };

    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t k = prefixes[i], body;

        if (!usps_routing(s, n, k))
            continue;
        body = n - k;
        if (!all_digits(s + k, body))
            continue;
        if ((body == 22 && starts_with(s + k, body, "91")) || body == 20)
            return found(p, k, body - 1, n - 1);
    }
    return M_NO;
}

/* USPS 20: service (2), shipper (9), package (8), check digit. */
static enum match m_usps_20(const char *s, size_t n, struct parse *p)
{
    if (n != 20 || !all_digits(s, n))
        return M_NO;
    return found(p, 0, 19, 19);
}

/* FedEx Ground 96 (22): "96", SCNC (2), service (3), serial (14), check. */
static enum match m_fedex_96(const char *s, size_t n, struct parse *p)
{
    if (n != 22 || !all_digits(s, n) || !starts_with(s, n, "96"))
        return M_NO;
    return found(p, 7, 14, 21);
}

/* FedEx Ground GSN (34): "96", SCNC (2), 5, GSN (10), 1, serial (13), check. */
static enum match m_fedex_gsn(const char *s, size_t n, struct parse *p)
{
    if (n != 34 || !all_digits(s, n) || !starts_with(s, n, "96"))
        return M_NO;
    return found(p, 20, 13, 33);
}

/* FedEx ASTRA (32): "3", 15 digits, tracking number (11 + check), 4 digits. */
static enum match m_fedex_astra(const char *s, size_t n, struct parse *p)
{
    if (n != 32 || !all_digits(s, n) || s[0] != '3')
        return M_NO;
    return found(p, 16, 11, 27);
}

/* FedEx Express (34): 0-8, 14 digits, ZIP (5), serial (13), check. */
static enum match m_fedex_34(const char *s, size_t n, struct parse *p)
{
    if (n != 34 || !all_digits(s, n) || s[0] == '9')
        return M_NO;
    return found(p, 20, 13, 33);
}

/* FedEx Express (12): serial (11), check. */
static enum match m_fedex_12(const char *s, size_t n, struct parse *p)
{
    if (n != 12 || !all_digits(s, n))
        return M_NO;
    return found(p, 0, 11, 11);
}

/* FedEx Ground (15): serial (14), check. */
static enum match m_fedex_ground(const char *s, size_t n, struct parse *p)
{
    if (n != 15 || !all_digits(s, n))
        return M_NO;
    return found(p, 0, 14, 14);
}

/* FedEx Ground (SSCC-18): container type (2), serial (15), check. */
static enum match m_fedex_sscc18(const char *s, size_t n, struct parse *p)
{
    if (n != 18 || !all_digits(s, n))
        return M_NO;
    return found(p, 2, 15, 17);
}

/* DHL Express: serial (9 or 10 digits), check. */
static enum match m_dhl_express(const char *s, size_t n, struct parse *p)
{
    if ((n != 10 && n != 11) || !all_digits(s, n))
        return M_NO;
    return found(p, 0, n - 1, n - 1);
}

/* DHL Express piece id: "J" + 2 or 3 letters, then 9 or 10 digits; no check. */
static enum match m_dhl_piece(const char *s, size_t n, struct parse *p)
{
    size_t letters = 0;

    if (n == 0 || s[0] != 'J')
        return M_NO;
    while (1 + letters < n && is_upper(s[1 + letters]))
        letters++;
    if (letters < 2 || letters > 3)
        return M_NO;
    if (n - 1 - letters < 9 || n - 1 - letters > 10 || !all_digits(s + 1 + letters, n - 1 - letters))
        return M_NO;
    return found(p, 1 + letters, n - 1 - letters, 0);
}

/* DHL E-Commerce: a two-letter prefix, then 10 to 39 letters and digits
 * starting with a digit; no check digit. */
static enum match m_dhl_ecommerce(const char *s, size_t n, struct parse *p)
{
    static const char prefixes[][3] = { "GM", "LX", "RX", "UV", "CN", "SG", "TH", "IN", "HK", "MY" };
    bool known = false;

    if (n < 12 || n > 41)
        return M_NO;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && !known; i++)
        known = memcmp(s, prefixes[i], 2) == 0;
    if (!known || !is_digit(s[2]) || !all_alnum(s + 2, n - 2))
        return M_NO;
    return found(p, 2, n - 2, 0);
}

/* DHL E-Commerce (14): 14 digits; no check digit. */
static enum match m_dhl_ecommerce_14(const char *s, size_t n, struct parse *p)
{
    if (n != 14 || !all_digits(s, n))
        return M_NO;
    return found(p, 0, 14, 0);
}

/* DHL Paket (Germany) parcel numbers: 12 or 20 digits (20-digit ones start
 * 00, an SSCC with the extension digit); DHL publishes no check digit for
 * them, so these are shape-only matches. The Unified API tracks them. */
static enum match m_dhl_paket(const char *s, size_t n, struct parse *p)
{
    if (!((n == 12 || (n == 20 && s[0] == '0' && s[1] == '0')) && all_digits(s, n)))
        return M_NO;
    return found(p, 0, n, 0);
}

/* Colissimo / La Poste domestic (13): digit, letter, 11 digits; no check. */
static enum match m_colissimo(const char *s, size_t n, struct parse *p)
{
    if (n != 13 || !is_digit(s[0]) || !is_upper(s[1]) || !all_digits(s + 2, 11))
        return M_NO;
    return found(p, 0, 13, 0);
}

/* Every format, in priority order (see detect.h). */
static const struct format_def formats[] = {
    { "UPS 1Z",                 "ups",     m_ups_1z,           ck_ups },
    { "UPS Waybill",            "ups",     m_ups_waybill,      ck_ups },
    { "S10 (UPU)",              NULL,      m_s10,              ck_s10 },
    { "USPS IMpb N",            "usps",    m_usps_impb_n,      ck_mod10_3_1_rev },
    { "USPS IMpb C",            "usps",    m_usps_impb_c,      ck_mod10_3_1 },
    { "USPS Legacy",            "usps",    m_usps_legacy,      ck_usps_legacy },
    { "USPS 20",                "usps",    m_usps_20,          ck_mod10_3_1 },
    { "FedEx Ground 96 (22)",   "fedex",   m_fedex_96,         ck_mod10_1_3 },
    { "FedEx Ground GSN",       "fedex",   m_fedex_gsn,        ck_fedex_13 },
    { "FedEx ASTRA (32)",       "fedex",   m_fedex_astra,      ck_fedex_11 },
    { "FedEx Express (34)",     "fedex",   m_fedex_34,         ck_fedex_13 },
    { "FedEx Express (12)",     "fedex",   m_fedex_12,         ck_fedex_11 },
    { "FedEx Ground",           "fedex",   m_fedex_ground,     ck_mod10_1_3 },
    { "FedEx Ground (SSCC-18)", "fedex",   m_fedex_sscc18,     ck_mod10_3_1 },
    { "DHL Express",            "dhl",     m_dhl_express,      ck_mod7 },
    { "DHL Express (Piece ID)", "dhl",     m_dhl_piece,        NULL },
    { "DHL E-Commerce",         "dhl",     m_dhl_ecommerce,    NULL },
    { "DHL E-Commerce (14)",    "dhl",     m_dhl_ecommerce_14, NULL },
    { "DHL Paket",              "dhl",     m_dhl_paket,        NULL },
    { "Colissimo (13)",         "laposte", m_colissimo,        NULL },
};

#define FORMAT_COUNT (sizeof formats / sizeof formats[0])

_Static_assert(FORMAT_COUNT + 1 <= MAX_HITS, "MAX_HITS too small for the format table");

/* Carrier ids detect_valid_for() knows. */
static const char *const known_carriers[] = { "ups", "fedex", "usps", "dhl", "laposte", "track17" };

/* ------------------------------------------------------------------------ */
/* Normalization and candidate assembly.                                    */

/* Copy `in` into out[DETECT_NUMBER_MAX + 1] without spaces and dashes, upper
 * case; *len gets its length. False (reason in why) for NULL, empty,
 * over-long input or any other character. */
static bool normalize(const char *in, char *out, size_t *len, char *why, size_t whylen)
{
    size_t raw, n = 0;

    out[0] = '\0';
    *len = 0;
    if (in == NULL) {
        why_set(why, whylen, "no tracking number given");
        return false;
    }
    raw = strnlen(in, DETECT_INPUT_MAX + 1);
    if (raw > DETECT_INPUT_MAX) {
        why_set(why, whylen, "tracking number is too long (more than %d characters)",
                DETECT_INPUT_MAX);
        return false;
    }
    for (size_t i = 0; i < raw; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c == ' ' || c == '-')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 'a' + 'A');
        if (!is_digit((char)c) && !is_upper((char)c)) {
            if (c < 0x20 || c == 0x7f)
                why_set(why, whylen, "control character 0x%02x at position %zu in tracking number",
                        c, i + 1);
            else if (c >= 0x80)
                why_set(why, whylen, "non-ASCII byte 0x%02x at position %zu in tracking number",
                        c, i + 1);
            else
                why_set(why, whylen, "unexpected character '%c' at position %zu in tracking number"
                        " (only letters, digits, spaces and dashes)", (char)c, i + 1);
            return false;
        }
        if (n >= DETECT_NUMBER_MAX) {
            why_set(why, whylen, "tracking number is too long (more than %d letters and digits)",
                    DETECT_NUMBER_MAX);
            return false;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (n == 0) {
        why_set(why, whylen, "tracking number is empty");
        return false;
    }
    *len = n;
    return true;
}

/* One format that fits, with what its matcher found. */
struct hit {
    const struct format_def *f; /* the format */
    struct parse p;             /* where its parts are */
};

/* Carrier of a hit: the matcher's choice (S10) or the format's. */
static const char *hit_carrier(const struct hit *h)
{
    return h->p.carrier != NULL ? h->p.carrier : h->f->carrier;
}

/* Run every format over normalized s[0..n); store those whose shape and check
 * digit fit in hits[MAX_HITS] in table order and report the rest in why.
 * Returns the number of hits; *shape_failures counts shapes that failed. */
static size_t scan(const char *s, size_t n, struct hit *hits, char *why, size_t whylen,
                   size_t *shape_failures)
{
    size_t nh = 0;

    *shape_failures = 0;
    for (size_t i = 0; i < FORMAT_COUNT; i++) {
        const struct format_def *f = &formats[i];
        struct parse p;
        enum match m;

        memset(&p, 0, sizeof p);
        m = f->match(s, n, &p);
        if (m == M_NO)
            continue;
        if (m == M_BAD) {
            why_add(why, whylen, "matches %s but %s", f->name, p.bad);
            (*shape_failures)++;
            continue;
        }
        if (f->expect != NULL) {
            int want, got;

            assert(p.serial_off + p.serial_len <= n && p.check_off < n);
            assert(p.serial_len <= SERIAL_MAX);
            want = f->expect(s + p.serial_off, p.serial_len);
            got = s[p.check_off] - '0';
            if (want != got) {
                why_add(why, whylen, "matches %s but check digit is %d, expected %d",
                        f->name, got, want);
                (*shape_failures)++;
                continue;
            }
        }
        assert(nh < MAX_HITS);
        hits[nh].f = f;
        hits[nh].p = p;
        nh++;
    }
    return nh;
}

/* Fill one candidate from a hit for normalized number s. */
static void make_candidate(struct detect_candidate *c, const struct hit *h, const char *s)
{
    memset(c, 0, sizeof *c);
    c->carrier = hit_carrier(h);
    c->format = h->f->name;
    c->check = h->f->expect != NULL ? DETECT_CHECK_VALID : DETECT_CHECK_NONE;
    snprintf(c->normalized, sizeof c->normalized, "%s", s);
    snprintf(c->country, sizeof c->country, "%s", h->p.country);
    c->fallback = strcmp(c->carrier, "track17") == 0;
}

/* Order the hits best-first into cands[MAX_HITS] and append the track17
 * fallback; returns the number of candidates. */
static size_t assemble(const char *s, const struct hit *hits, size_t nh,
                       struct detect_candidate *cands)
{
    size_t nc = 0;
    bool have_track17 = false;

    /* Pass 0: valid check, specific carrier; 1: valid, track17;
     * 2: no check, specific; 3: no check, track17. Stable within a pass. */
    for (int pass = 0; pass < 4; pass++) {
        bool want_check = pass < 2, want_track17 = (pass % 2) == 1;

        for (size_t i = 0; i < nh; i++) {
            bool checked = hits[i].f->expect != NULL;
            bool track17 = strcmp(hit_carrier(&hits[i]), "track17") == 0;

            if (checked != want_check || track17 != want_track17)
                continue;
            assert(nc < MAX_HITS);
            make_candidate(&cands[nc++], &hits[i], s);
            have_track17 = have_track17 || track17;
        }
    }
    if (nc > 0 && !have_track17) {
        assert(nc < MAX_HITS);
        cands[nc] = cands[0];
        cands[nc].carrier = "track17";
        cands[nc].fallback = true;
        nc++;
    }
    return nc;
}

/* Normalize and detect into cands[MAX_HITS]; returns the candidate count, or
 * 0 with the reason in why. *normalized_ok tells the two kinds of 0 apart and
 * *shape_failures counts formats whose shape fit but check failed. */
static size_t detect_all(const char *number, struct detect_candidate *cands, char *norm,
                         size_t *normlen, bool *normalized_ok, size_t *shape_failures,
                         char *why, size_t whylen)
{
    struct hit hits[MAX_HITS];
    size_t nh, nc;

    *shape_failures = 0;
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    *normalized_ok = normalize(number, norm, normlen, why, whylen);
    if (!*normalized_ok)
        return 0;
    nh = scan(norm, *normlen, hits, why, whylen, shape_failures);
    nc = assemble(norm, hits, nh, cands);
    if (nc == 0 && *shape_failures == 0)
        why_set(why, whylen, "%s (%zu characters) does not match any known tracking-number format",
                norm, *normlen);
    return nc;
}

size_t detect_tracking_number(const char *number, struct detect_candidate *out, size_t max,
                              char *why, size_t whylen)
{
    struct detect_candidate cands[MAX_HITS];
    char norm[DETECT_NUMBER_MAX + 1];
    size_t normlen, nc, failures;
    bool ok;

    assert(out != NULL || max == 0);
    nc = detect_all(number, cands, norm, &normlen, &ok, &failures, why, whylen);
    if (nc > max)
        nc = max;
    if (nc > 0)
        memcpy(out, cands, nc * sizeof cands[0]);
    return nc;
}

/* True when carrier is one of our carrier ids. */
static bool carrier_known(const char *carrier)
{
    for (size_t i = 0; i < sizeof known_carriers / sizeof known_carriers[0]; i++)
        if (strcmp(carrier, known_carriers[i]) == 0)
            return true;
    return false;
}

/* True when one of cands[0..nc) lets `carrier` track the number: its own
 * format, or any S10 item for a destination post (usps, laposte). */
static bool carrier_owns(const char *carrier, const struct detect_candidate *cands, size_t nc)
{
    bool post = strcmp(carrier, "usps") == 0 || strcmp(carrier, "laposte") == 0;

    for (size_t i = 0; i < nc; i++) {
        if (strcmp(cands[i].carrier, carrier) == 0)
            return true;
        if (post && strcmp(cands[i].format, "S10 (UPU)") == 0)
            return true;
    }
    return false;
}

/* True when normalized s[0..n) could be some carrier's number: long enough
 * and not all letters. */
static bool plausible(const char *s, size_t n)
{
    bool has_digit = false;

    for (size_t i = 0; i < n && !has_digit; i++)
        has_digit = is_digit(s[i]);
    return n >= 8 && has_digit;
}

bool detect_valid_for(const char *carrier, const char *number, char *why, size_t whylen)
{
    struct detect_candidate cands[MAX_HITS];
    char norm[DETECT_NUMBER_MAX + 1], detail[192];
    size_t normlen, nc, failures;
    bool ok;

    if (carrier == NULL || !carrier_known(carrier)) {
        why_set(why, whylen, "unknown carrier '%.32s'", carrier != NULL ? carrier : "(null)");
        return false;
    }
    nc = detect_all(number, cands, norm, &normlen, &ok, &failures, why, whylen);
    if (!ok)
        return false;
    if (carrier_owns(carrier, cands, nc) ||
        (strcmp(carrier, "track17") == 0 && failures == 0 && plausible(norm, normlen))) {
        why_set(why, whylen, "%s", "");
        return true;
    }
    /* Not this carrier's: say what it is instead, then any failed check. */
    snprintf(detail, sizeof detail, "%s", why != NULL && whylen > 0 ? why : "");
    if (strcmp(carrier, "track17") == 0 && failures == 0)
        why_set(why, whylen, "%s is not a plausible tracking number (want 8 to %d letters and"
                " digits, at least one digit)", norm, DETECT_NUMBER_MAX);
    else if (nc > 0)
        why_set(why, whylen, "%s is not a %s tracking number (it matches %s, carrier %s)%s%s",
                norm, carrier, cands[0].format, cands[0].carrier,
                detail[0] != '\0' ? "; " : "", detail);
    else if (failures > 0)
        why_set(why, whylen, "%s is not a %s tracking number: %s", norm, carrier, detail);
    else
        why_set(why, whylen, "%s does not match any %s tracking-number format", norm, carrier);
    return false;
}

/* ------------------------------------------------------------------------ */
/* Output.                                                                  */

/* Write s as a JSON string: ASCII printable as is, '"' and '\\' escaped,
 * control characters as \u00XX, other bytes as U+FFFD; "null" for NULL/"". */
static void json_str(FILE *f, const char *s, bool empty_is_null)
{
    if (s == NULL || (empty_is_null && s[0] == '\0')) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; s[i] != '\0' && i < DETECT_INPUT_MAX * 4; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else if (c >= 0x80)
            fputs("\\ufffd", f);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Write s for a terminal, unprintable bytes as '?', at most DETECT_INPUT_MAX. */
static void text_str(FILE *f, const char *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; s[i] != '\0' && i < DETECT_INPUT_MAX; i++) {
        unsigned char c = (unsigned char)s[i];

        fputc(c >= 0x20 && c < 0x7f ? c : '?', f);
    }
}

void detect_print(FILE *f, const char *number, const struct detect_candidate *c, size_t n,
                  bool json)
{
    assert(f != NULL);
    assert(c != NULL || n == 0);
    if (json) {
        fputs("{\"number\":", f);
        json_str(f, number, false);
        fputs(",\"normalized\":", f);
        json_str(f, n > 0 ? c[0].normalized : NULL, true);
        fputs(",\"candidates\":[", f);
        for (size_t i = 0; i < n; i++) {
            fputs(i > 0 ? ",{\"carrier\":" : "{\"carrier\":", f);
            json_str(f, c[i].carrier, false);
            fputs(",\"format\":", f);
            json_str(f, c[i].format, false);
            fprintf(f, ",\"check\":\"%s\",\"country\":",
                    c[i].check == DETECT_CHECK_VALID ? "valid" : "none");
            json_str(f, c[i].country, true);
            fprintf(f, ",\"fallback\":%s}", c[i].fallback ? "true" : "false");
        }
        fputs("]}\n", f);
        return;
    }
    if (n == 0) {
        text_str(f, number);
        fputs(": no known tracking-number format\n", f);
        return;
    }
    fprintf(f, "%s: %zu candidate%s\n", c[0].normalized, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "  %-8s %-24s %s", c[i].carrier != NULL ? c[i].carrier : "?",
                c[i].format != NULL ? c[i].format : "?",
                c[i].check == DETECT_CHECK_VALID ? "check digit valid" : "no check digit");
        if (c[i].country[0] != '\0')
            fprintf(f, "  country %s", c[i].country);
        if (c[i].fallback)
            fputs("  (fallback)", f);
        fputc('\n', f);
    }
}
