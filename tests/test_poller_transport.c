/*
 * test_poller_transport.c - carriers failing below HTTP: connections reset
 * with no answer, bodies too big to accept, bodies so slow the request times
 * out. Each poll fails with its reason stored, is retried later, and the
 * stored data stays intact; when the carrier heals, everything is stored once.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "poller.h"
#include "smtpd.h"
#include "testdb.h"
#include "testutil.h"

static struct testdb db;
static struct tu_sim sim;

static void teardown(void)
{
    tu_sim_stop(&sim);
    tdb_drop(&db);
}

TestSuite(transport, .fini = teardown, .timeout = 120);

/* Register n planned DHL shipments through the CLI. */
static void register_dhl(int n)
{
    char bin[512], sbin[512], count[16], plan[] = "/tmp/st-tplan-XXXXXX", env_db[600];
    char *plan_argv[] = { sbin, "plan", "--carrier", "dhl", "--count", count, NULL };
    char *reg_argv[] = { bin, "register", "--batch", plan, NULL };
    const char *env[] = { env_db, NULL };
    char *out, *err;
    int fd;

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    tu_binary_path(sbin, sizeof(sbin), "shiptrack-carrier-sim");
    snprintf(count, sizeof(count), "%d", n);
    cr_assert_eq(tu_run(plan_argv, NULL, &out, &err), 0, "%s", err);
    fd = mkstemp(plan);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, out, strlen(out)), (ssize_t)strlen(out));
    close(fd);
    free(out);
    free(err);
    snprintf(env_db, sizeof(env_db), "SHIPTRACK_DATABASE_URL=%s", db.url);
    cr_assert_eq(tu_run(reg_argv, env, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    unlink(plan);
}

/* One poller pass over every due shipment, DHL pointed at base (the simulator
 * when NULL). */
static void poll_via(const char *base, struct poller_totals *t)
{
    struct st_config cfg;
    volatile sig_atomic_t running = 1;
    struct poller_opts o = { &running, true };
    char err[256];

    setenv("SHIPTRACK_DATABASE_URL", db.url, 1);
    setenv("SHIPTRACK_DHL_API_KEY", "sim-dhl-key", 1);
    setenv("SHIPTRACK_DHL_BASE_URL", base != NULL ? base : sim.url, 1);
    setenv("SHIPTRACK_DHL_RATE", "1000/s", 1);
    setenv("SHIPTRACK_DHL_DAILY_QUOTA", "0", 1);
    setenv("SHIPTRACK_HTTP_TIMEOUT", "700ms", 1);
    setenv("SHIPTRACK_BREAKER_MIN_REQUESTS", "1000", 1); /* this suite is not about the breaker */
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(poller_run(&cfg, &o, t), 0);
    config_free(&cfg);
}

static void poll_once(struct poller_totals *t)
{
    poll_via(NULL, t);
}

/* curl write callback that drops the body. */
static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* POST form data to url; returns the HTTP status. */
static long post_form(const char *url, const char *form)
{
    CURL *c = curl_easy_init();
    long status = 0;

    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

/* Heal the simulator and poll again: everything arrives, once. */
static void heal_and_check(int n)
{
    char url[256];
    struct poller_totals t;
    long long events;

    snprintf(url, sizeof(url), "%s/_sim/faults?reset_rate=0&oversized_rate=0&slow_body_ms=0",
             sim.url);
    cr_assert_eq(post_form(url, ""), 200);
    tdb_exec(db.conn, "UPDATE shipments SET next_poll_at = now()");
    poll_once(&t);
    cr_expect_eq(t.polls, n);
    cr_expect_eq(t.failures, 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_error_streak > 0"), 0);
    events = tdb_count(db.conn, "SELECT count(*) FROM tracking_events");
    cr_expect_gt(events, n * 4);
    tdb_exec(db.conn, "UPDATE shipments SET next_poll_at = now() WHERE next_poll_at IS NOT NULL");
    poll_once(&t);
    cr_expect_eq(t.events_new, 0, "nothing stored twice");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), events);
}

/* Every shipment failed once with a reason containing `why`, nothing stored. */
static void check_failed(const struct poller_totals *t, int n, const char *why)
{
    char sql[512];

    cr_expect_eq(t->failures, n);
    cr_expect_eq(t->events_new, 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), 0);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM shipments WHERE poll_error_streak = 1 AND status = 'pending'"
             " AND last_poll_error LIKE '%%%s%%' AND lease_owner IS NULL"
             " AND next_poll_at > now() + interval '20 seconds'", why);
    cr_expect_eq(tdb_count(db.conn, sql), n, "%s", sql);
}

Test(transport, connection_resets_are_retried)
{
    const char *args[] = { "--speed", "100000000", "--reset-rate", "1", NULL };
    struct poller_totals t;

    tdb_create(&db, true);
    tu_sim_start(&sim, args);
    register_dhl(6);
    poll_once(&t);
    check_failed(&t, 6, "retry: ");
    heal_and_check(6);
}

Test(transport, oversized_bodies_are_refused)
{
    const char *args[] = { "--speed", "100000000", "--oversized-rate", "1", NULL };
    struct poller_totals t;

    tdb_create(&db, true);
    tu_sim_start(&sim, args);
    register_dhl(4);
    poll_once(&t);
    check_failed(&t, 4, "response larger than 4194304 bytes");
    heal_and_check(4);
}

Test(transport, slow_bodies_time_out)
{
    const char *args[] = { "--speed", "100000000", "--slow-body-ms", "300", NULL };
    struct poller_totals t;

    tdb_create(&db, true);
    tu_sim_start(&sim, args);
    register_dhl(4);
    poll_once(&t);
    check_failed(&t, 4, "Timeout");
    heal_and_check(4);
}

/* A carrier behind TLS with a certificate nobody vouches for: refused by
 * default (the poll fails with the reason, nothing stored), accepted only
 * when SHIPTRACK_CARRIER_TLS_VERIFY=off says so. */
Test(transport, carrier_tls_is_verified_unless_turned_off)
{
    const char *args[] = { "--speed", "100000000", NULL };
    char cert[512], key[512], port[16], base[64];
    const char *proxy_args[5] = { cert, key, "127.0.0.1", port, NULL };
    struct tu_smtpd proxy;
    struct poller_totals t;

    tdb_create(&db, true);
    tu_sim_start(&sim, args);
    snprintf(cert, sizeof(cert), "%s/tests/fixtures/smtp/cert.pem", ST_SOURCE_DIR);
    snprintf(key, sizeof(key), "%s/tests/fixtures/smtp/key.pem", ST_SOURCE_DIR);
    cr_assert_eq(sscanf(strrchr(sim.url, ':') + 1, "%15s", port), 1);
    tu_pyserver_start(&proxy, "tls_proxy.py", proxy_args);
    snprintf(base, sizeof(base), "https://127.0.0.1:%d", proxy.port);
    register_dhl(3);

    unsetenv("SHIPTRACK_CARRIER_TLS_VERIFY");
    poll_via(base, &t);
    check_failed(&t, 3, "certificate");

    setenv("SHIPTRACK_CARRIER_TLS_VERIFY", "off", 1);
    tdb_exec(db.conn, "UPDATE shipments SET next_poll_at = now()");
    poll_via(base, &t);
    unsetenv("SHIPTRACK_CARRIER_TLS_VERIFY");
    tu_smtpd_stop(&proxy);
    cr_expect_eq(t.failures, 0);
    cr_expect_eq(t.polls, 3);
    cr_expect_gt(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), 3 * 4);
}
