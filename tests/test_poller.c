/*
 * test_poller.c - the first vertical slice, end to end with real parts:
 * shipments registered through the CLI, polled from the carrier simulator
 * over HTTP, stored in a real PostgreSQL, read back as a timeline. Also: a
 * second poll stores nothing twice, SIGTERM drains and exits 0, an
 * unreachable database is retried rather than crash-looped, and a carrier
 * answering garbage leaves the stored data intact.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "poller.h"
#include "testdb.h"
#include "testutil.h"

static struct testdb db;
static struct tu_sim sim;

static void teardown(void)
{
    tu_sim_stop(&sim);
    tdb_drop(&db);
}

TestSuite(poller, .fini = teardown, .timeout = 120);

/* Point the worker's configuration at this test's database and simulator. */
static void configure(struct st_config *cfg)
{
    char err[256];

    setenv("SHIPTRACK_DATABASE_URL", db.url, 1);
    setenv("SHIPTRACK_DHL_API_KEY", "sim-dhl-key", 1);
    setenv("SHIPTRACK_DHL_BASE_URL", sim.url, 1);
    setenv("SHIPTRACK_POLL_INTERVAL", "1s", 1);
    setenv("SHIPTRACK_POLL_IDLE", "100ms", 1);
    setenv("SHIPTRACK_WORKER_ID", "test-poller", 1);
    setenv("SHIPTRACK_DHL_RATE", "1000/s", 1); /* the simulator has no quota */
    setenv("SHIPTRACK_DHL_DAILY_QUOTA", "0", 1);
    cr_assert_eq(config_load(cfg, err, sizeof(err)), ST_OK, "%s", err);
}

/* Register the simulator's planned shipments through the CLI. */
static json_t *register_plan(int count)
{
    char bin[512], sbin[512], n[16], planfile[] = "/tmp/st-plan-XXXXXX", *out, *err;
    char *plan_argv[] = { sbin, "plan", "--count", n, NULL };
    char *reg_argv[] = { bin, "register", "--batch", planfile, NULL };
    char env_db[600];
    const char *env[] = { env_db, NULL };
    json_t *list = json_array();
    int fd, rc;

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    tu_binary_path(sbin, sizeof(sbin), "shiptrack-carrier-sim");
    snprintf(n, sizeof(n), "%d", count);
    cr_assert_eq(tu_run(plan_argv, NULL, &out, &err), 0, "plan: %s", err);
    fd = mkstemp(planfile);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, out, strlen(out)), (ssize_t)strlen(out));
    close(fd);
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *o = json_loads(line, 0, NULL);

        cr_assert_not_null(o, "plan line is not JSON: %s", line);
        json_array_append_new(list, o);
    }
    free(out);
    free(err);
    snprintf(env_db, sizeof(env_db), "SHIPTRACK_DATABASE_URL=%s", db.url);
    rc = tu_run(reg_argv, env, &out, &err);
    cr_assert_eq(rc, 0, "register --batch: %s%s", out, err);
    cr_expect(strstr(out, "0 rejected") != NULL, "%s", out);
    free(out);
    free(err);
    unlink(planfile);
    cr_assert_eq(json_array_size(list), (size_t)count);
    return list;
}

static void run_until_idle(struct poller_totals *t)
{
    struct st_config cfg;
    volatile sig_atomic_t running = 1;
    struct poller_opts o = { &running, true };

    configure(&cfg);
    cr_assert_eq(poller_run(&cfg, &o, t), 0);
    config_free(&cfg);
}

/* Every visible step of the simulator's journey is stored exactly once with
 * the status and substatus it should map to. */
static void check_against_journey(const char *number, const char *scenario)
{
    char url[256], sql[512], *body;
    json_t *j, *steps, *step;
    long status;
    size_t i, visible = 0;
    long long id;

    snprintf(url, sizeof(url), "%s/_sim/journey?carrier=dhl&number=%s", sim.url, number);
    body = tu_http_get(url, &status);
    cr_assert_eq(status, 200, "%s", body);
    j = json_loads(body, 0, NULL);
    free(body);
    cr_assert_not_null(j);
    snprintf(sql, sizeof(sql), "SELECT id FROM shipments WHERE tracking_number = '%s'", number);
    id = tdb_count(db.conn, sql);
    steps = json_object_get(j, "steps");
    json_array_foreach(steps, i, step) {
        const json_t *e = json_object_get(step, "expect"), *other;
        long long same = 0;
        size_t k;

        if (!json_is_true(json_object_get(step, "visible")))
            continue;
        visible++;
        /* steps may repeat (two delivery attempts): count the twins */
        json_array_foreach(steps, k, other) {
            const json_t *oe = json_object_get(other, "expect");

            same += json_is_true(json_object_get(other, "visible")) &&
                    json_equal(json_object_get(oe, "status"), json_object_get(e, "status")) &&
                    json_equal(json_object_get(oe, "substatus"), json_object_get(e, "substatus")) &&
                    json_equal(json_object_get(other, "city"), json_object_get(step, "city"));
        }
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM tracking_events WHERE shipment_id = %lld"
                 " AND status = '%s' AND substatus = '%s' AND city = $$%s$$",
                 id, json_string_value(json_object_get(e, "status")),
                 json_string_value(json_object_get(e, "substatus")),
                 json_string_value(json_object_get(step, "city")));
        cr_expect_eq(tdb_count(db.conn, sql), same, "%s (%s) step %zu %s: %s", number, scenario, i,
                     json_string_value(json_object_get(step, "kind")), sql);
    }
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM tracking_events WHERE shipment_id = %lld", id);
    cr_expect_eq(tdb_count(db.conn, sql), (long long)visible, "%s (%s): stored events", number,
                 scenario);
    if (strstr(scenario, "held") != NULL) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM customs_holds WHERE shipment_id = %lld"
                 " AND state = 'released' AND reason IN ('duties_due', 'documents_required')", id);
        cr_expect_eq(tdb_count(db.conn, sql), 1, "%s (%s): customs hold", number, scenario);
    }
    json_decref(j);
}

Test(poller, registers_polls_and_stores_the_journeys)
{
    const char *args[] = { "--speed", "100000000", NULL };
    struct poller_totals t1, t2;
    json_t *plan, *p;
    size_t i;
    long long events, outbox;

    tdb_create(&db, true);
    tu_sim_start(&sim, args);
    plan = register_plan(24);
    run_until_idle(&t1);
    cr_expect_eq(t1.polls, 24, "polled %ld", t1.polls);
    cr_expect_eq(t1.failures, 0);
    cr_expect_gt(t1.events_new, 24 * 4);

    json_array_foreach(plan, i, p)
        check_against_journey(json_string_value(json_object_get(p, "tracking_number")),
                              json_string_value(json_object_get(p, "scenario")));
    cr_expect_geq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE status = 'delivered'"), 10);
    cr_expect_geq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events WHERE substatus = 'unmapped'"), 1);
    /* one outbox row per status change, never more than events */
    events = tdb_count(db.conn, "SELECT count(*) FROM tracking_events");
    outbox = tdb_count(db.conn, "SELECT count(*) FROM outbox");
    cr_expect_gt(outbox, 24);
    cr_expect_leq(outbox, events);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NOT NULL"), 0);
    /* the counters /metrics reads: flushed when the poller stops */
    cr_expect_eq(tdb_count(db.conn, "SELECT sum(events_new) FROM poller_stats"), t1.events_new);
    cr_expect_gt(tdb_count(db.conn, "SELECT sum(polls_ok) FROM poller_stats"), 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT sum(polls_error + polls_throttled) FROM poller_stats"), 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT sum(b) FROM poller_stats, unnest(latency_buckets) b"),
                 tdb_count(db.conn, "SELECT sum(polls_ok + polls_unauthorized) FROM poller_stats"),
                 "every request in one latency bucket");

    /* poll everything again: nothing new is stored or announced */
    tdb_exec(db.conn, "UPDATE shipments SET next_poll_at = now()");
    run_until_idle(&t2);
    cr_expect_eq(t2.polls, 24);
    cr_expect_eq(t2.events_new, 0);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), events);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM outbox"), outbox);
    json_decref(plan);
}

Test(poller, timeline_cli_shows_the_stored_story)
{
    const char *args[] = { "--speed", "100000000", NULL };
    char bin[512], env_db[600], *out, *err, number[64];
    char *argv_json[] = { bin, "timeline", number, "--json", NULL };
    char *argv_text[] = { bin, "timeline", number, NULL };
    const char *env[] = { env_db, NULL };
    struct poller_totals t;
    json_t *plan, *p, *tl;
    size_t i;
    char *s;

    tdb_create(&db, true);
    tu_sim_start(&sim, args);
    plan = register_plan(12);
    run_until_idle(&t);
    number[0] = '\0';
    json_array_foreach(plan, i, p)
        if (strcmp(json_string_value(json_object_get(p, "scenario")), "customs_duties_held") == 0)
            snprintf(number, sizeof(number), "%s", json_string_value(json_object_get(p, "tracking_number")));
    cr_assert(number[0] != '\0', "plan has no customs_duties_held shipment");
    tu_binary_path(bin, sizeof(bin), "shiptrack");
    snprintf(env_db, sizeof(env_db), "SHIPTRACK_DATABASE_URL=%s", db.url);

    cr_assert_eq(tu_run(argv_json, env, &out, &err), 0, "%s", err);
    tl = json_loads(out, 0, NULL);
    cr_assert_not_null(tl, "not JSON: %s", out);
    s = tdb_scalar(db.conn, "SELECT count(*) FROM tracking_events e JOIN shipments s ON s.id = e.shipment_id"
                            " WHERE s.status = 'delivered' AND s.customs_state = 'released' LIMIT 1");
    free(s);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(tl, "shipment"), "tracking_number")), number);
    cr_expect_gt(json_array_size(json_object_get(tl, "events")), 5);
    cr_expect_eq(json_array_size(json_object_get(tl, "customs_holds")), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(tl, "customs_holds"), 0), "reason")),
                     "duties_due");
    /* every event with a known offset carries the recipient's time and UTC */
    json_array_foreach(json_object_get(tl, "events"), i, p) {
        if (strcmp(json_string_value(json_object_get(p, "offset")), "unknown") != 0) {
            cr_expect(json_is_string(json_object_get(p, "recipient_time")));
            cr_expect(json_is_string(json_object_get(p, "utc")));
        }
        cr_expect(json_is_string(json_object_get(p, "description")));
    }
    json_decref(tl);
    free(out);
    free(err);

    cr_assert_eq(tu_run(argv_text, env, &out, &err), 0, "%s", err);
    cr_expect(strstr(out, number) != NULL);
    cr_expect(strstr(out, "Customs holds:") != NULL, "%s", out);
    cr_expect(strstr(out, "duties_due") != NULL, "%s", out);
    free(out);
    free(err);
    json_decref(plan);
}

Test(poller, garbage_from_the_carrier_keeps_data_and_retries)
{
    const char *good[] = { "--speed", "100000000", NULL };
    const char *bad[] = { "--speed", "100000000", "--malformed-rate", "1", NULL };
    struct poller_totals t;
    long long events;

    tdb_create(&db, true);
    tu_sim_start(&sim, good);
    json_decref(register_plan(6));
    run_until_idle(&t);
    events = tdb_count(db.conn, "SELECT count(*) FROM tracking_events");
    cr_assert_gt(events, 0);
    tu_sim_stop(&sim);

    tu_sim_start(&sim, bad);
    tdb_exec(db.conn, "UPDATE shipments SET next_poll_at = now(), status = status");
    run_until_idle(&t);
    cr_expect_eq(t.failures, tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_error_streak = 1"));
    cr_expect_gt(t.failures, 0);
    cr_expect_gt(tdb_count(db.conn, "SELECT sum(polls_error) FROM poller_stats"), 0,
                 "failed requests counted for /metrics");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM tracking_events"), events);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_error_streak = 1"
                                    " AND last_poll_error LIKE 'permanent: %'"
                                    " AND next_poll_at > now() + interval '20 seconds'"), t.failures);
}

/* Spawn `shiptrack run` with env; returns its pid, stderr goes to errfile. */
static pid_t spawn_run(const char *const *env, const char *errfile)
{
    char bin[512];
    pid_t pid;

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        FILE *f = freopen(errfile, "w", stderr);

        (void)f;
        for (int i = 0; env[i] != NULL; i++)
            putenv((char *)env[i]);
        execl(bin, bin, "run", "--roles", "poller", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid, int seconds)
{
    int status;

    for (int i = 0; i < seconds * 20; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

Test(poller, sigterm_drains_in_flight_work_and_exits_0)
{
    const char *args[] = { "--speed", "100000000", "--latency-ms", "700", NULL };
    char env_db[600], env_url[300], errfile[] = "/tmp/st-run-XXXXXX", *log;
    const char *env[] = { env_db, env_url, "SHIPTRACK_DHL_API_KEY=sim-dhl-key",
                          "SHIPTRACK_POLL_CONCURRENCY=4", "SHIPTRACK_POLL_BATCH=50",
                          "SHIPTRACK_DHL_RATE=1000/s", "SHIPTRACK_DHL_DAILY_QUOTA=0",
                          "SHIPTRACK_WORKER_ID=drainer", NULL };
    pid_t pid;
    int fd, rc;

    tdb_create(&db, true);
    tu_sim_start(&sim, args);
    json_decref(register_plan(16));
    snprintf(env_db, sizeof(env_db), "SHIPTRACK_DATABASE_URL=%s", db.url);
    snprintf(env_url, sizeof(env_url), "SHIPTRACK_DHL_BASE_URL=%s", sim.url);
    fd = mkstemp(errfile);
    close(fd);
    pid = spawn_run(env, errfile);
    /* wait until requests are in flight: four shipments leased to us and more queued */
    for (int i = 0; i < 100 && tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner = 'drainer'") == 0; i++)
        usleep(50000);
    usleep(200000);
    kill(pid, SIGTERM);
    rc = wait_exit(pid, 10);
    log = tu_read_file(errfile, NULL);
    cr_expect_eq(rc, 0, "exit %d; log:\n%s", rc, log);
    cr_expect(strstr(log, "poller.stop") != NULL, "%s", log);
    /* in-flight polls were stored, the rest released: no lease is left behind */
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE lease_owner IS NOT NULL"), 0);
    cr_expect_geq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_count = 1"), 4);
    cr_expect_gt(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE poll_count = 0"), 0);
    free(log);
    unlink(errfile);
}

Test(poller, unreachable_database_is_retried_not_crash_looped)
{
    char errfile[] = "/tmp/st-run-XXXXXX", *log;
    const char *env[] = { "SHIPTRACK_DATABASE_URL=postgresql://nobody@127.0.0.1:1/none",
                          "SHIPTRACK_DHL_API_KEY=k", "SHIPTRACK_DB_RETRY_MAX=1s", NULL };
    pid_t pid;
    int fd, rc;

    fd = mkstemp(errfile);
    close(fd);
    pid = spawn_run(env, errfile);
    sleep(2);
    cr_expect_eq(waitpid(pid, NULL, WNOHANG), 0, "worker exited while the database was down");
    kill(pid, SIGTERM);
    rc = wait_exit(pid, 10);
    log = tu_read_file(errfile, NULL);
    cr_expect_eq(rc, 0, "exit %d; log:\n%s", rc, log);
    cr_expect(strstr(log, "db.connect") != NULL && strstr(log, "retrying in") != NULL, "%s", log);
    cr_expect(strstr(log, "127.0.0.1") != NULL, "the error says where: %s", log);
    free(log);
    unlink(errfile);
}

Test(poller, supervisor_does_not_restart_a_misconfigured_role)
{
    char env_db[600], errfile[] = "/tmp/st-run-XXXXXX", *log;
    const char *env[] = { env_db, NULL }; /* no carrier credentials at all */
    char bin[512];
    pid_t pid;
    int fd, rc;

    tdb_create(&db, true);
    snprintf(env_db, sizeof(env_db), "SHIPTRACK_DATABASE_URL=%s", db.url);
    fd = mkstemp(errfile);
    close(fd);
    tu_binary_path(bin, sizeof(bin), "shiptrack");
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        FILE *f = freopen(errfile, "w", stderr);

        (void)f;
        putenv((char *)env[0]);
        unsetenv("SHIPTRACK_DHL_API_KEY");
        execl(bin, bin, "run", "--roles", "poller,relay", (char *)NULL);
        _exit(127);
    }
    sleep(3);
    cr_expect_eq(waitpid(pid, NULL, WNOHANG), 0, "the relay keeps the worker running");
    kill(pid, SIGTERM);
    rc = wait_exit(pid, 15);
    log = tu_read_file(errfile, NULL);
    cr_expect_eq(rc, 2, "exit %d; log:\n%s", rc, log);
    cr_expect(strstr(log, "no carrier has credentials") != NULL, "%s", log);
    cr_expect(strstr(log, "role poller cannot run with this configuration; not restarting") != NULL,
              "%s", log);
    cr_expect(strstr(log, "restarting in") == NULL, "a crash loop:\n%s", log);
    free(log);
    unlink(errfile);
}
