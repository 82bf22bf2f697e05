/*
 * status.h - the normalized vocabulary every carrier is mapped onto.
 *
 * Statuses describe where a shipment is in its life; substatuses say why or how.
 * Names are the stable strings stored in the database and printed in JSON; the
 * lists here and the CHECK constraints in sql/001_init.sql must agree (a test
 * compares them).
 */
#ifndef ST_STATUS_H
#define ST_STATUS_H

#include <stdbool.h>

enum st_status {
    ST_STATUS_PENDING = 0,      /* registered, no carrier data yet */
    ST_STATUS_INFO_RECEIVED,    /* label created, carrier has the data */
    ST_STATUS_IN_TRANSIT,
    ST_STATUS_HELD,             /* customs or other hold */
    ST_STATUS_OUT_FOR_DELIVERY,
    ST_STATUS_ATTEMPT_FAILED,
    ST_STATUS_AVAILABLE_FOR_PICKUP,
    ST_STATUS_DELIVERED,
    ST_STATUS_EXCEPTION,
    ST_STATUS_RETURNING,
    ST_STATUS_RETURNED,
    ST_STATUS_CANCELLED,
    ST_STATUS_EXPIRED,          /* no movement for the configured maximum */
    ST_STATUS_NOT_FOUND,        /* carrier does not know the number (yet) */
    ST_STATUS__COUNT
};

enum st_substatus {
    ST_SUB_NONE = 0,
    ST_SUB_LABEL_CREATED,
    ST_SUB_PICKED_UP,
    ST_SUB_DEPARTED_FACILITY,
    ST_SUB_ARRIVED_FACILITY,
    ST_SUB_IN_TRANSIT,
    ST_SUB_DEPARTED_ORIGIN_COUNTRY,
    ST_SUB_ARRIVED_DESTINATION_COUNTRY,
    ST_SUB_CUSTOMS_PROCESSING,
    ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED,
    ST_SUB_CUSTOMS_DUTIES_DUE,
    ST_SUB_CUSTOMS_INSPECTION,
    ST_SUB_CUSTOMS_PROHIBITED,
    ST_SUB_CUSTOMS_DELAY,
    ST_SUB_CUSTOMS_RELEASED,
    ST_SUB_OUT_FOR_DELIVERY,
    ST_SUB_ADDRESS_ISSUE,
    ST_SUB_RECIPIENT_UNAVAILABLE,
    ST_SUB_REFUSED,
    ST_SUB_DAMAGED,
    ST_SUB_LOST,
    ST_SUB_WEATHER_DELAY,
    ST_SUB_CARRIER_DELAY,
    ST_SUB_AT_PICKUP_POINT,
    ST_SUB_DELIVERED,
    ST_SUB_DELIVERED_TO_NEIGHBOUR,
    ST_SUB_DELIVERED_TO_MAILBOX,
    ST_SUB_SIGNED,
    ST_SUB_RETURN_TO_SENDER,
    ST_SUB_RETURNED_TO_SENDER,
    ST_SUB_NOT_FOUND,
    ST_SUB_UNMAPPED,            /* code new to us: stored, counted, never drives status */
    ST_SUB__COUNT
};

const char *st_status_name(enum st_status s);
const char *st_substatus_name(enum st_substatus s);

/* Parse a status/substatus name; returns false when the name is unknown. */
bool st_status_parse(const char *name, enum st_status *out);
bool st_substatus_parse(const char *name, enum st_substatus *out);

/* Terminal statuses stop polling: delivered, returned, cancelled, expired. */
bool st_status_terminal(enum st_status s);

/* True for the customs_* substatuses. */
bool st_substatus_customs(enum st_substatus s);

#endif
