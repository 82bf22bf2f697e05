/*
 * register.h - validating and storing a new shipment with its recipient.
 *
 * Used by `shiptrack register` (and later by the Kafka intake and the HTTP
 * API): one validation, one storage path. Registering the same carrier and
 * tracking number twice is harmless: the second call reports the existing
 * shipment and changes nothing.
 */
#ifndef ST_REGISTER_H
#define ST_REGISTER_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "err.h"

struct registration {
    char carrier[33];
    char tracking_number[48];
    char email[255];
    char phone[17];          /* E.164 */
    char locale[36];
    char time_zone[65];
    char origin[3];
    char destination[3];
    char order_ref[129];
};

/* Fill r from raw user input (any field may be NULL), normalizing case and
 * separators, and validate everything. Returns ST_OK, or ST_PERMANENT with err
 * naming the field and the expected form. */
enum st_err registration_prepare(struct registration *r, const char *carrier,
                                 const char *tracking_number, const char *email,
                                 const char *phone, const char *locale, const char *time_zone,
                                 const char *origin, const char *destination,
                                 const char *order_ref, char *err, size_t errlen);

/* Store a prepared registration. *id gets the shipment id; *existed is true
 * when the shipment was already registered (nothing was changed). */
enum st_err registration_store(PGconn *conn, const struct registration *r, long long *id,
                               bool *existed, char *err, size_t errlen);

#endif
