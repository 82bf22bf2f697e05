/*
 * customs.h - the customs state machine of a shipment.
 *
 * A hold is one customs episode of a shipment (a row in customs_holds):
 *
 *   (no open hold) -> processing | held | released (a release nobody saw coming)
 *   processing     -> held | released | returned | rejected (via held)
 *   held           -> held (reason or actor learned) | released | rejected | returned
 *
 * released, rejected and returned close the hold; a later customs event opens
 * a new one. At most one hold is open per shipment (a unique index makes
 * sure). Every move is a row in customs_transitions with the carrier event's
 * time, code and words as evidence; shipments.customs_state follows the
 * newest hold. Closing a held hold as released adds its duration to
 * customs_hold_durations, which the delivery estimate reads (eta.h).
 */
#ifndef ST_CUSTOMS_H
#define ST_CUSTOMS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <time.h>

#include "carrier.h"
#include "err.h"

/* What one customs_apply call did. */
struct customs_outcome {
    char state[16];                 /* shipments.customs_state afterwards; "" untouched */
    bool held;                      /* a hold moved into held and still is (EDD revision) */
    time_t held_at;                 /* the carrier's time of that move */
    char reason[24];                /* the newest hold's reason ("duties_due"...), or "" */
    char actor[12];                 /* who must act: recipient, shipper, broker, nobody */
    char instructions[EV_INSTR_MAX]; /* the carrier's instructions for the hold, or "" */
    int transitions;                /* rows written to customs_transitions */
};

/* Apply the events that move the shipment (applies[i] true), oldest first,
 * inside the caller's transaction. destination: the shipment's destination
 * country ("" unknown), the key of the hold-duration statistics. */
enum st_err customs_apply(PGconn *conn, long long shipment_id, const char *destination,
                          const struct track_event *events, const bool *applies, size_t n,
                          struct customs_outcome *out, char *err, size_t errlen);

/* Reason and default actor for a customs substatus ("duties_due",
 * "recipient"...). Returns false for substatuses that are not holds. */
bool customs_hold_kind(enum st_substatus sub, const char **reason, const char **actor);

#endif
