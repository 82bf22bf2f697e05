/*
 * timeline.h - a shipment's story: `shiptrack timeline TRACKING [--json]`.
 *
 * Times are shown in the recipient's zone and in UTC; events whose offset is
 * unknown show the carrier's local wall time and say so instead of guessing.
 */
#ifndef ST_TIMELINE_H
#define ST_TIMELINE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

#include "err.h"

/* Load the timeline of the shipment with this tracking number (and carrier,
 * when non-NULL) as JSON: {shipment{...}, events[...], customs_holds[...]}.
 * ST_PERMANENT with err when there is no such shipment or the number is
 * ambiguous across carriers. */
enum st_err timeline_load(PGconn *conn, const char *carrier, const char *tracking_number,
                          json_t **out, char *err, size_t errlen);

/* Print a loaded timeline for people. */
void timeline_print_text(FILE *f, const json_t *tl);

#endif
