/*
 * customs.h - customs holds of a shipment, driven by its customs events.
 *
 * States: processing -> held (reason, who must act) -> released | rejected |
 * returned. At most one hold is open per shipment (a unique index makes sure).
 * Each change keeps the carrier words that caused it as evidence.
 */
#ifndef ST_CUSTOMS_H
#define ST_CUSTOMS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "carrier.h"
#include "err.h"

/* Apply the new customs events (is_new[i] true) of one shipment, oldest
 * first, inside the caller's transaction. state_out gets the shipment's
 * customs state afterwards ("" when no customs event was seen). */
enum st_err customs_apply(PGconn *conn, long long shipment_id, const struct track_event *events,
                          const bool *is_new, size_t n, char *state_out, size_t state_cap,
                          char *err, size_t errlen);

/* Reason and actor for a customs substatus ("duties_due", "recipient"...).
 * Returns false for substatuses that are not holds. */
bool customs_hold_kind(enum st_substatus sub, const char **reason, const char **actor);

#endif
