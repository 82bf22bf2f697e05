/*
 * wording.h - what carriers' free text says, in many languages.
 *
 * Several carriers (DHL Unified above all) put the facts that matter in
 * words rather than codes: customs holds, returns, pickup points. This module
 * folds text to lower case (ASCII, Latin, Greek, Cyrillic) and looks for
 * keyword classes with word-boundary marks, so drivers share one vocabulary
 * and false friends ("customer", "Customs Street") are handled in one place.
 * Keywords: a leading '^' must start a word, a trailing '$' must end one.
 */
#ifndef ST_WORDING_H
#define ST_WORDING_H

#include <stdbool.h>
#include <stddef.h>

#include "carrier.h"

/* Keyword classes (see the tables in wording.c). */
enum wording_class {
    W_CUSTOMS,
    W_PROHIBITED,
    W_RELEASED,
    W_DOCUMENTS,
    W_DUTIES,
    W_INSPECTION,
    W_DELAY,
    W_HOLD,
    W_RETURN,
    W_REFUSED,
    W_DAMAGED,
    W_LOST,
    W_ATTEMPT,
    W_UNAVAILABLE,
    W_ADDRESS,
    W_OUT_FOR_DELIVERY,
    W_PICKUP_POINT,
    W_COLLECTED,
    W_DEPARTED_ORIGIN,
    W_ARRIVED_DESTINATION,
    W_PICKED_UP,
    W_DEPARTED,
    W_ARRIVED,
    W_WEATHER,
    W_NEIGHBOUR,
    W_MAILBOX,
    W_SIGNED,
    W_REJECTED,     /* customs seized, destroyed or refused the goods */
    W_BROKER,       /* a customs broker handles the clearance */
    W__COUNT
};

/* Rule sets: first matching class wins and sets status and substatus. */
enum wording_rules {
    WR_CUSTOMS,   /* customs text: prohibited, released, documents, duties, inspection, delay */
    WR_TRANSIT,   /* an in-transit scan: refused, damaged, lost, attempt, out for delivery, ... */
    WR_FAILURE,   /* an exception scan: refused, damaged, lost, attempt, address, weather, delay */
    WR_DELIVERED  /* a delivery scan: returned, collected, pickup point, neighbour, mailbox, signed */
};

/* Append the folded (lower-cased) form of UTF-8 src to dst[cap] at *o;
 * stops when full; invalid bytes become spaces. */
void wording_fold_append(char *dst, size_t cap, size_t *o, const char *src);

/* Does folded text contain a keyword of class c? */
bool wording_has(const char *folded, enum wording_class c);

/* Apply the first rule of the set whose class occurs in folded text to ev
 * (status and substatus). False when none matched; ev is then unchanged. */
bool wording_apply(const char *folded, enum wording_rules set, struct track_event *ev);

/* Classify text already known to be about customs: sets ev->customs and the
 * customs status/substatus (processing when nothing more specific is said). */
void wording_classify_customs(const char *folded, struct track_event *ev);

/* Refine an attempt_failed event's substatus (recipient unavailable,
 * address issue) from its text. */
void wording_refine_attempt(const char *folded, struct track_event *ev);

#endif
