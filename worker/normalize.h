/*
 * normalize.h - `shiptrack normalize --carrier NAME FILE`: what a saved
 * carrier response becomes, as JSON lines, without a database or network.
 */
#ifndef ST_NORMALIZE_H
#define ST_NORMALIZE_H

#include <stddef.h>
#include <stdio.h>

#include "carrier.h"

/* Parse body (len bytes) with def's driver as an answer with HTTP status
 * `http_status` (0: read "status" from a problem+json body, else 200) for
 * numbers[0..n) (n == 0: the numbers the body names that fit the carrier).
 * Prints one JSON line per event, or one outcome line per number that has
 * none. Returns 0, or 1 with a message on stderr when the body is malformed
 * or the driver rejects it as a whole. */
int normalize_print(FILE *out, const struct carrier_def *def, long http_status, const char *body,
                    size_t len, const char *const *numbers, size_t n);

#endif
