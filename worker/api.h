/*
 * api.h - the api role: JSON API, agent and ops pages, unsubscribe, health
 * and metrics over HTTP (libmicrohttpd).
 *
 * Endpoints (README, "HTTP API and pages"):
 *   GET  /healthz, /readyz                     no token
 *   GET  /metrics                              ops
 *   GET  /v1/shipments?tracking_number=|order_ref=   agent
 *   GET  /v1/shipments/{id}                    agent
 *   GET  /v1/stuck?carrier=&destination=&status=&kind=&min_age=&limit=   ops
 *   POST /v1/shipments                         admin
 *   POST /v1/notifications/{id}/resend         admin
 *   GET  /agent, /ops, /login; POST /login, /logout   pages (cookie or bearer)
 *   GET, POST /unsubscribe?r=&c=&t=            signed link, no login
 *   GET  /t/{tracking_number}                  public status page, no login
 *
 * Roles: an agent token reads timelines (with personal data), an ops token
 * reads boards, stuck lists and metrics (never personal data), an admin
 * token may do all of that and register shipments and resend notifications.
 * Tokens are compared in constant time (as SHA-256 digests, so their length
 * leaks nothing either). Errors are {"error":{"code":"...","message":"..."}}.
 *
 * Threads: a fixed pool of request threads (SHIPTRACK_API_THREADS), each
 * request borrowing one database connection from a pool of the same size.
 */
#ifndef ST_API_H
#define ST_API_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"
#include "err.h"

struct api_opts {
    volatile sig_atomic_t *running; /* cleared on SIGTERM: stop serving and return */
    const char *brokers;            /* Kafka for /readyz and the consumer lag; NULL: none */
};

struct api;

/* Start serving on SHIPTRACK_API_LISTEN. cfg is borrowed and must outlive
 * the server. ST_CONFIG with err for missing or malformed tokens, a bad
 * listen address or one that cannot be bound. */
enum st_err api_start(const struct st_config *cfg, const char *brokers, struct api **out,
                      char *err, size_t errlen);
/* The port the server listens on (the real one when 0 was asked for). */
unsigned api_port(const struct api *a);
/* Stop serving (in-flight requests finish) and free everything. NULL is a no-op. */
void api_stop(struct api *a);

/* Run the role until *opts->running is cleared. 0 on a clean stop, 2 for a
 * configuration problem, 1 when it cannot start for another reason. */
int api_run(const struct st_config *cfg, const struct api_opts *opts);

#endif
