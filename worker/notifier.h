/*
 * notifier.h - the notifier role: status changes -> email and SMS, once.
 *
 * Consumes shiptrack.events.v1 in the consumer group "shiptrack-notifier",
 * maps each status_changed event to a milestone (DESIGN.md, Notifications)
 * and each edd_changed event to `delayed` (except delays caused by a customs
 * hold: the customs_held message carries the revised date), and decides, per
 * channel the recipient has an address for, in this order:
 *
 *   enabled     SHIPTRACK_NOTIFY_MILESTONES        else suppressed/milestone_disabled
 *   consent     preferences.consent, opted_out_at  else suppressed/no_consent|opted_out
 *   once        INSERT into notifications; the UNIQUE (shipment, milestone,
 *               channel, episode) key makes a redelivered event send nothing
 *               (episode: '' for most milestones, the new date for `delayed`,
 *               so a second, later delay notifies again)
 *   current     the shipment has moved past it     else suppressed/superseded
 *   quiet hours recipient's zone                   else deferred until the window ends
 *   cap         SHIPTRACK_NOTIFY_MAX_PER_DAY       else suppressed/frequency_cap
 *   render, send, record: sent | failed_temporary (retried with backoff) |
 *               failed_permanent (SMS 21610/21211 also mark the preference opted out)
 *
 * Every decision is a row in notifications and a message on
 * shiptrack.notifications.v1 ({notification_id, shipment_id, milestone,
 * channel, status, reason}; no personal data). A periodic pass in the same
 * role sends deferred rows whose window opened, retries failed_temporary
 * rows that are due and picks up rows left queued by a crash.
 *
 * Wording: "now" is the notifier clock: notifier_clock() when a test set it,
 * else the system time, plus SHIPTRACK_CLOCK_OFFSET.
 */
#ifndef ST_NOTIFIER_H
#define ST_NOTIFIER_H

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "err.h"

struct notifier_opts {
    volatile sig_atomic_t *running; /* cleared on SIGTERM */
    const char *brokers;
    long long idle_exit_ms;         /* > 0: return after this long without a message */
    bool from_beginning;            /* tests: ignore committed offsets, read the topic again */
};

/* Decisions taken (one per notification row touched). */
struct notifier_totals {
    long events;      /* status_changed and edd_changed events read */
    long sent, deferred, suppressed, failed_temporary, failed_permanent;
    long duplicates;  /* rows that already existed: nothing done */
};

/* Test hook: when set, the notifier reads the time from it (before
 * SHIPTRACK_CLOCK_OFFSET is added). NULL: time(NULL). */
extern time_t (*notifier_clock)(void);

/* One notifier: configuration (borrowed, must outlive it), a database
 * connection (borrowed), open channels, and an optional producer for
 * outcomes (borrowed; NULL: outcomes are only recorded). */
struct notifier;

/* ST_OK, or ST_CONFIG with err naming the key (public URL, secret, quiet
 * hours, channel settings). */
enum st_err notifier_new(const struct st_config *cfg, PGconn *conn, rd_kafka_t *producer,
                         struct notifier **out, char *err, size_t errlen);
void notifier_free(struct notifier *n);
/* Replace the borrowed connection (after a reconnect). */
void notifier_set_conn(struct notifier *n, PGconn *conn);
const struct notifier_totals *notifier_get_totals(const struct notifier *n);

/* The milestone a change from (from_status, from_sub) to (to_status,
 * to_sub) announces, or NULL for none. */
const char *notifier_milestone(const char *from_status, const char *from_sub,
                               const char *to_status, const char *to_sub);

/* Handle one events-topic message (JSON). ST_OK when done (including
 * ignored messages); ST_RETRY for database trouble (handle it again);
 * ST_PERMANENT for a message that is not an event (skip it). */
enum st_err notifier_handle(struct notifier *n, const char *json, size_t len, char *err,
                            size_t errlen);

/* One periodic pass: deferred rows due, failed_temporary rows due, stale
 * queued rows. *handled gets the number of rows decided. */
enum st_err notifier_pass(struct notifier *n, int *handled, char *err, size_t errlen);

/* Run the role until *opts->running is cleared. 0 on a clean stop, 1 when
 * it cannot start. */
int notifier_run(const struct st_config *cfg, const struct notifier_opts *opts,
                 struct notifier_totals *totals);

#endif
