/*
 * shipfix.h - one registered shipment in a fresh database, and synthetic
 * poll results to feed store_poll_result (the customs and estimate suites).
 */
#ifndef ST_SHIPFIX_H
#define ST_SHIPFIX_H

#include "carrier.h"
#include "store.h"
#include "testdb.h"

struct shipfix {
    struct testdb db;
    struct claimed ship;            /* leased by worker "test" */
    struct poll_policy policy;      /* hourly polls, 30 d expiry, estimates off */
};

/* Create the database and register carrier/number from origin to
 * destination (countries or NULL) for ana@example.com; asserts on failure. */
void sf_setup(struct shipfix *f, const char *carrier, const char *number, const char *origin,
              const char *destination);
void sf_teardown(struct shipfix *f);

/* Append an event at ISO time `at` (with offset) to r, located in country. */
struct track_event *sf_add(struct track_result *r, const char *at, const char *country,
                           enum st_status st, enum st_substatus sub, const char *code,
                           const char *desc);

/* store_poll_result for f's shipment; asserts ST_OK. */
void sf_store(struct shipfix *f, const struct track_result *r);

/* Parse tests/fixtures/<carrier>/<name>.response.json with the carrier's
 * driver into res (the first number of the expectation); asserts success. */
void sf_parse_fixture(const char *carrier, const char *name, struct track_result *res,
                      char *number, size_t cap);

#endif
