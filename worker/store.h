/*
 * store.h - the one transaction that records what a poll learned.
 *
 * For one shipment: insert the normalized events (deduplicated by key),
 * move the shipment's status forward (never backwards on a late, older
 * event), update customs holds and the estimated delivery date, write one
 * outbox row per status change, schedule the next poll and release the lease
 * -- all or nothing.
 */
#ifndef ST_STORE_H
#define ST_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "carrier.h"
#include "err.h"
#include "eta.h"

/* Hex characters of a poll digest (store_poll_digest). */
#define STORE_DIGEST_LEN 32

/* A shipment as the poller claimed it. */
struct claimed {
    long long id;
    char carrier[33];
    char tracking_number[48];
    unsigned char auth_retries; /* times re-queued after an expired OAuth2 token */
    char status[32];         /* status when claimed ("" unknown) */
    char digest[STORE_DIGEST_LEN + 1]; /* poll_digest when claimed ("" none) */
};

/* Scheduling knobs (from the configuration). */
struct poll_policy {
    long long interval_ms[ST_STATUS__COUNT]; /* next poll after a success, by new status; -1 none */
    long long retry_max_ms;  /* cap of the failure backoff */
    int jitter_pct;          /* +- spread in percent */
    long long expire_after_ms; /* no movement for this long: expired */
    struct eta_policy eta;   /* delivery estimates (all zero: carrier dates only) */
};

/* What one store call did, for logs and tests. */
struct store_stats {
    int events_seen;
    int events_new;
    int status_changes;
    int unmapped_new;        /* new events whose carrier code is not mapped */
    bool unchanged;          /* same answer as the last stored one: only rescheduled */
    char status[32];         /* status after the call */
};

/* Record a successful poll (TRACK_FOUND or TRACK_NOT_FOUND). When s->digest
 * equals the answer's digest (the carrier said exactly what was stored last
 * time), the shipment is only rescheduled, in one statement, unless it has
 * to expire or changed since the claim; otherwise the full transaction runs
 * and stores the new digest. */
enum st_err store_poll_result(PGconn *conn, const char *worker_id, const struct claimed *s,
                              const struct track_result *r, const struct poll_policy *pp,
                              struct store_stats *stats, char *err, size_t errlen);

/* Record a failed poll: keep the shipment's data, bump its error streak,
 * schedule a retry with capped exponential backoff, release the lease. */
enum st_err store_poll_failure(PGconn *conn, const char *worker_id, const struct claimed *s,
                               enum st_err kind, const char *reason, long long min_delay_ms,
                               const struct poll_policy *pp, char *err, size_t errlen);

/* Poll a shipment again after delay_ms without counting a failure (e.g. just
 * registered with an aggregator), and release the lease. */
enum st_err store_reschedule(PGconn *conn, const char *worker_id, const struct claimed *s,
                             long long delay_ms, const char *note, char *err, size_t errlen);

/* Release leases this worker holds on shipments it did not poll (shutdown). */
enum st_err store_release(PGconn *conn, const char *worker_id, const long long *ids, size_t n,
                          char *err, size_t errlen);

/* Digest of a poll's answer (outcome, estimated delivery, every field of every
 * event) as STORE_DIGEST_LEN hex characters; false when hashing failed. */
bool store_poll_digest(const struct claimed *s, const struct track_result *r,
                       char out[STORE_DIGEST_LEN + 1]);

/* Deterministic dedupe text of an event (hashed by the database). */
void store_dedupe_text(const char *carrier, const char *number, const struct track_event *ev,
                       char *buf, size_t cap);

#endif
