/*
 * poller.h - the poller role: claim due shipments, ask carriers, store.
 *
 * Any number of pollers on any number of hosts share the work through the
 * database: due shipments are claimed with FOR UPDATE SKIP LOCKED and a lease,
 * so a crashed poller's claims simply expire. Requests run concurrently on one
 * curl multi handle (keep-alive, HTTP/2 multiplexing where offered), within
 * each carrier's limits: requests per second, a daily quota shared by all
 * pollers through the database, requests in flight, and a circuit breaker.
 * OAuth2 tokens are cached per carrier and refreshed before they expire and
 * when a carrier answers 401.
 */
#ifndef ST_POLLER_H
#define ST_POLLER_H

#include <signal.h>
#include <stdbool.h>

#include "carrier.h"
#include "config.h"
#include "store.h"

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
    long requests;       /* HTTP requests sent, tokens and registrations included */
    long token_fetches;  /* OAuth2 tokens obtained */
    long registrations;  /* numbers registered with an aggregator */
    long breaker_opens;  /* times a carrier's circuit breaker opened */
    long throttled;      /* 429 answers */
    long deferred;       /* shipments deferred for lack of daily quota */
};

/* Run the poller until opts->running is cleared (or until idle). Returns 0 on
 * a clean stop, 2 when no carrier is configured, 1 when it could not start
 * for another reason. */
int poller_run(const struct st_config *cfg, const struct poller_opts *opts,
               struct poller_totals *totals);

/* The scheduling policy the poller stores with, from the configuration
 * (also used by bench/ingest to drive store_poll_result the same way). */
void poller_policy(const struct st_config *cfg, struct poll_policy *pp);

/* True when the configuration holds the credentials the carrier needs. */
bool poller_carrier_configured(const struct st_config *cfg, const struct carrier_def *def);

#endif
