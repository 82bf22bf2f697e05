/*
 * status.c - names of the normalized statuses and substatuses.
 */
#include "status.h"

#include <string.h>

static const char *const status_names[ST_STATUS__COUNT] = {
    [ST_STATUS_PENDING] = "pending",
    [ST_STATUS_INFO_RECEIVED] = "info_received",
    [ST_STATUS_IN_TRANSIT] = "in_transit",
    [ST_STATUS_HELD] = "held",
    [ST_STATUS_OUT_FOR_DELIVERY] = "out_for_delivery",
    [ST_STATUS_ATTEMPT_FAILED] = "attempt_failed",
    [ST_STATUS_AVAILABLE_FOR_PICKUP] = "available_for_pickup",
    [ST_STATUS_DELIVERED] = "delivered",
    [ST_STATUS_EXCEPTION] = "exception",
    [ST_STATUS_RETURNING] = "returning",
    [ST_STATUS_RETURNED] = "returned",
    [ST_STATUS_CANCELLED] = "cancelled",
    [ST_STATUS_EXPIRED] = "expired",
    [ST_STATUS_NOT_FOUND] = "not_found",
};

static const char *const substatus_names[ST_SUB__COUNT] = {
    [ST_SUB_NONE] = "none",
    [ST_SUB_LABEL_CREATED] = "label_created",
    [ST_SUB_PICKED_UP] = "picked_up",
    [ST_SUB_DEPARTED_FACILITY] = "departed_facility",
    [ST_SUB_ARRIVED_FACILITY] = "arrived_facility",
    [ST_SUB_IN_TRANSIT] = "in_transit",
    [ST_SUB_DEPARTED_ORIGIN_COUNTRY] = "departed_origin_country",
    [ST_SUB_ARRIVED_DESTINATION_COUNTRY] = "arrived_destination_country",
    [ST_SUB_CUSTOMS_PROCESSING] = "customs_processing",
    [ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED] = "customs_documents_required",
    [ST_SUB_CUSTOMS_DUTIES_DUE] = "customs_duties_due",
    [ST_SUB_CUSTOMS_INSPECTION] = "customs_inspection",
    [ST_SUB_CUSTOMS_PROHIBITED] = "customs_prohibited",
    [ST_SUB_CUSTOMS_DELAY] = "customs_delay",
    [ST_SUB_CUSTOMS_RELEASED] = "customs_released",
    [ST_SUB_OUT_FOR_DELIVERY] = "out_for_delivery",
    [ST_SUB_ADDRESS_ISSUE] = "address_issue",
    [ST_SUB_RECIPIENT_UNAVAILABLE] = "recipient_unavailable",
    [ST_SUB_REFUSED] = "refused",
    [ST_SUB_DAMAGED] = "damaged",
    [ST_SUB_LOST] = "lost",
    [ST_SUB_WEATHER_DELAY] = "weather_delay",
    [ST_SUB_CARRIER_DELAY] = "carrier_delay",
    [ST_SUB_AT_PICKUP_POINT] = "at_pickup_point",
    [ST_SUB_DELIVERED] = "delivered",
    [ST_SUB_DELIVERED_TO_NEIGHBOUR] = "delivered_to_neighbour",
    [ST_SUB_DELIVERED_TO_MAILBOX] = "delivered_to_mailbox",
    [ST_SUB_SIGNED] = "signed",
    [ST_SUB_RETURN_TO_SENDER] = "return_to_sender",
    [ST_SUB_RETURNED_TO_SENDER] = "returned_to_sender",
    [ST_SUB_NOT_FOUND] = "not_found",
    [ST_SUB_UNMAPPED] = "unmapped",
};

const char *st_status_name(enum st_status s)
{
    return (unsigned)s < ST_STATUS__COUNT ? status_names[s] : "invalid";
}

const char *st_substatus_name(enum st_substatus s)
{
    return (unsigned)s < ST_SUB__COUNT ? substatus_names[s] : "invalid";
}

bool st_status_parse(const char *name, enum st_status *out)
{
    for (int i = 0; name != NULL && i < ST_STATUS__COUNT; i++)
        if (strcmp(status_names[i], name) == 0) {
            *out = (enum st_status)i;
            return true;
        }
    return false;
}

bool st_substatus_parse(const char *name, enum st_substatus *out)
{
    for (int i = 0; name != NULL && i < ST_SUB__COUNT; i++)
        if (strcmp(substatus_names[i], name) == 0) {
            *out = (enum st_substatus)i;
            return true;
        }
    return false;
}

bool st_status_terminal(enum st_status s)
{
    return s == ST_STATUS_DELIVERED || s == ST_STATUS_RETURNED || s == ST_STATUS_CANCELLED ||
           s == ST_STATUS_EXPIRED;
}

bool st_substatus_customs(enum st_substatus s)
{
    return s >= ST_SUB_CUSTOMS_PROCESSING && s <= ST_SUB_CUSTOMS_RELEASED;
}
