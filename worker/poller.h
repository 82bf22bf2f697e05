/*
 * poller.h - the poller role: claim due shipments, ask carriers, store.
 *
 * Any number of pollers on any number of hosts share the work through the
 * database: due shipments are claimed with FOR UPDATE SKIP LOCKED and a lease,
 * so a crashed poller's claims simply expire. Requests run concurrently on one
 * curl multi handle (keep-alive, HTTP/2 multiplexing where offered).
 */
#ifndef ST_POLLER_H
#define ST_POLLER_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"

struct poller_opts {
    volatile sig_atomic_t *running; /* cleared by SIGTERM/SIGINT: drain and return */
    bool until_idle;                /* return once nothing is due and nothing is in flight */
};

/* Per-run totals, for the caller's summary line and for tests. */
struct poller_totals {
    long polls;          /* shipments polled */
    long failures;       /* shipments whose poll failed */
    long events_new;     /* events stored by this run */
    long status_changes;
};

/* Run the poller until opts->running is cleared (or until idle). Returns 0 on
 * a clean stop, 1 when it could not start (e.g. no carrier configured). */
int poller_run(const struct st_config *cfg, const struct poller_opts *opts,
               struct poller_totals *totals);

#endif
