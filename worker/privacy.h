/*
 * privacy.h - erasing a recipient's personal data (`shiptrack forget`) and
 * the retention job that purges old payloads and personal data.
 *
 * Personal data lives only in recipients and preferences (DESIGN.md), plus
 * what carriers write into event text (a signer's name, a street-level postal
 * code). Erasure keeps the shipment and its timeline -- statuses, times,
 * cities -- so statistics and support history stay whole, anonymized.
 */
#ifndef ST_PRIVACY_H
#define ST_PRIVACY_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "err.h"

/* How `forget` finds the recipient(s) to erase. */
enum privacy_key {
    PRIVACY_EMAIL,        /* recipients.email, case-insensitive */
    PRIVACY_PHONE,        /* recipients.phone, E.164 as stored */
    PRIVACY_TRACKING,     /* the recipient of a shipment by tracking number */
    PRIVACY_ORDER_REF,    /* the recipients of the shipments of an order */
    PRIVACY_RECIPIENT     /* recipients.id */
};

/* What an erasure or a retention pass did (or would do, on a dry run). */
struct privacy_stats {
    long recipients;      /* recipients erased */
    long shipments;       /* their shipments (kept, anonymized) */
    long notifications;   /* pending notifications suppressed ("erased") */
    long events;          /* events whose postal code or signer text was scrubbed */
    long outbox;          /* sent outbox rows deleted */
    long raw;             /* finished shipments whose carrier words were purged */
};

/* Erase the recipients `value` names (key says how), in one transaction:
 * email, phone and time zone cleared and erased_at set, preferences deleted,
 * their pending notifications suppressed with reason "erased", postal codes
 * and "signed by ..." text scrubbed from their shipments' events. Erasing an
 * erased recipient again changes nothing. With dry_run the transaction is
 * rolled back and st says what would have changed. ST_PERMANENT when value is
 * malformed, ST_RETRY on database trouble. */
enum st_err privacy_forget(PGconn *conn, enum privacy_key key, const char *value, bool dry_run,
                           struct privacy_stats *st, char *err, size_t errlen);

/* Retention periods in ms; 0 keeps that data for ever. */
struct retention_policy {
    long long outbox_ms;    /* sent outbox rows older than this are deleted */
    long long raw_ms;       /* carrier words of shipments finished longer ago are purged */
    long long personal_ms;  /* recipients whose shipments all finished longer ago are erased */
};

/* Rows touched per statement in one pass; a pass that hit it should be run
 * again (the role does so on its next tick). */
#define RETENTION_BATCH 5000

/* One retention pass (bounded by RETENTION_BATCH per kind), each kind in its
 * own transaction. dry_run rolls back and reports. */
enum st_err privacy_retention(PGconn *conn, const struct retention_policy *p, bool dry_run,
                              struct privacy_stats *st, char *err, size_t errlen);

#endif
