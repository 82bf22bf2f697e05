/*
 * detect.h - tracking-number detection and check-digit validation.
 *
 * Tells which carrier a tracking number belongs to, for `shiptrack detect
 * NUMBER` and for registration: a number given without a carrier is detected,
 * and a number no carrier could have issued is rejected with a clear reason
 * instead of being polled for 30 days.
 *
 * The format knowledge is native C (a const table of formats in detect.c, each
 * with its own matcher and check-digit function); the conformance files in
 * shared/conformance/tracking-numbers/ are only read by the tests.
 *
 * Formats: display name [normalized length] -> our carrier id.
 *   "UPS 1Z" [18], "UPS Waybill" [11]                               -> ups
 *   "FedEx Express (12)" [12], "FedEx Express (34)" [34],
 *   "FedEx ASTRA (32)" [32], "FedEx Ground" [15],
 *   "FedEx Ground (SSCC-18)" [18], "FedEx Ground 96 (22)" [22],
 *   "FedEx Ground GSN" [34]                                         -> fedex
 *   "USPS 20" [20], "USPS IMpb N" [22/26/30], "USPS IMpb C" [22/26],
 *   "USPS Legacy" [20/22]; all but USPS 20 optionally behind a "420"
 *   + ZIP or ZIP+4 routing prefix [+8/+12]                          -> usps
 *   "DHL Express" [10/11, mod 7], "DHL Express (Piece ID)" [12-14],
 *   "DHL E-Commerce" [12-41], "DHL E-Commerce (14)" [14],
 *   "DHL Paket" [12, or 20 starting 00; shape only]                -> dhl
 *   "Colissimo (13)": digit, letter, 11 digits, no check digit      -> laposte
 *   "S10 (UPU)" [13]: 2 letters, 8 digits, check digit, 2-letter country
 *     of a UPU member post (the spec's list; others are rejected)   -> usps for
 *     US, laposte for FR, track17 for any other country
 *
 * Ambiguity, and how it is settled:
 *   - Every format whose shape and check digit fit becomes a candidate; none
 *     is dropped because another one fits too. Order: formats with a valid
 *     check digit first, then formats that have none (DHL Piece ID and
 *     E-Commerce, Colissimo); within each group specific carriers before
 *     track17, then the table order of detect.c, which puts the formats with
 *     a fixed prefix ("1Z", "420"+ZIP, "91".."96", S10 letters) before the
 *     bare digit runs.
 *   - 10 and 11 digits are DHL Express only (mod 7: one random number in
 *     seven passes, so treat it as weak evidence); 12 digits are FedEx
 *     Express; 14 digits are DHL E-Commerce (no check digit, any 14 digits
 *     pass); 15 are FedEx Ground; 18 are FedEx SSCC-18.
 *   - 20 digits are USPS 20 or USPS Legacy, which differ in whether "91" is
 *     prepended for the checksum; a 20-digit number starting with 91 passes
 *     both or neither.
 *   - 34 digits starting "420" can be USPS (ZIP-prefixed IMpb/Legacy) or
 *     FedEx Express (34); when both check digits pass USPS is listed first.
 *   - S10 numbers whose service letters are also DHL E-Commerce prefixes
 *     (CN, LX, RX, UV...) list the S10 reading first (it has a check digit).
 *   - track17 (the 17TRACK aggregator) follows any post and most carriers, so
 *     whenever a number is detected and no candidate already is track17, a
 *     track17 candidate is appended last, copying the best candidate's
 *     format. Every track17 candidate (also an S10 of a post we have no
 *     driver for) has `fallback` set. track17 never makes an otherwise
 *     impossible number possible: a count of 0 still means no format fits.
 *
 * Named carriers (detect_valid_for): the carrier must own a detected
 * candidate, except that usps and laposte also accept any valid S10 number
 * (they track inbound international items issued by other posts), and track17
 * accepts any plausible number (8 to 47 letters and digits with at least one
 * digit) unless it has the shape of a known format and fails its check digit.
 *
 * All functions are reentrant: no global state, no allocation.
 */
#ifndef ST_DETECT_H
#define ST_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Longest normalized number we accept (letters and digits only). */
#define DETECT_NUMBER_MAX 47

/* Longest raw input we look at, spaces and dashes included. */
#define DETECT_INPUT_MAX 128

/* One carrier/format that fits a number. Strings point into static tables. */
struct detect_candidate {
    const char *carrier;      /* our carrier id: "ups", "fedex", "usps", "dhl", "laposte", "track17" */
    const char *format;       /* e.g. "UPS 1Z", "FedEx Express (12)", "S10 (UPU)" */
    enum detect_check {
        DETECT_CHECK_VALID,   /* the format's check digit was verified */
        DETECT_CHECK_NONE     /* format has no check digit */
    } check;
    char normalized[DETECT_NUMBER_MAX + 1]; /* upper-case, spaces/dashes removed */
    char country[3];          /* S10 country code or "" */
    bool fallback;            /* true for the track17 aggregator candidate */
};

/* Normalize `number` (strip spaces and dashes, upper-case; reject other
 * punctuation, control characters, non-ASCII and over-long input), then fill
 * up to max candidates ordered best-first (valid check digit before formats
 * without one, specific carriers before track17). Returns the count filled
 * (0 = no format matches, i.e. impossible number). Numbers that match a
 * format's shape but fail its check digit are NOT candidates, but are
 * reported via why (e.g. "matches UPS 1Z but check digit is 3, expected 7")
 * when why != NULL; why is "" when there is nothing to report, and says why
 * when 0 is returned. out may be NULL only when max is 0. */
size_t detect_tracking_number(const char *number, struct detect_candidate *out, size_t max,
                              char *why, size_t whylen);

/* True when `number` is a plausible number for `carrier` (used when the user
 * names the carrier); otherwise false with the reason in why (if non-NULL),
 * including "unknown carrier" for ids not listed above. */
bool detect_valid_for(const char *carrier, const char *number, char *why, size_t whylen);

/* Print candidates to f: text lines, or one JSON object
 * {"number", "normalized", "candidates": [{carrier, format, check, country,
 * fallback}]} followed by a newline. check is "valid" or "none"; country and
 * normalized are null when empty. number is the caller's raw input and is
 * escaped (text output replaces unprintable bytes with '?'). */
void detect_print(FILE *f, const char *number, const struct detect_candidate *c, size_t n,
                  bool json);

#endif
