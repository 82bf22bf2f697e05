/*
 * test_config.c - the configuration table: defaults, validation errors that
 * name the key, *_FILE secrets, masking, the CLI's exit status 2, and the
 * README's configuration section staying in sync with the table.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

/* Criterion runs each test in a fresh process, so setenv stays local. */
static void clear_env(void)
{
    for (size_t i = 0; i < config_params_count; i++) {
        char fkey[128];

        unsetenv(config_params[i].key);
        snprintf(fkey, sizeof(fkey), "%s_FILE", config_params[i].key);
        unsetenv(fkey);
    }
}

TestSuite(config, .init = clear_env);

Test(config, defaults_load)
{
    struct st_config cfg;
    char err[256];

    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(cfg.log_level, "info");
    cr_expect_str_eq(cfg.log_format, "text");
    cr_expect_eq(cfg.poll_lease_ms, 5 * 60 * 1000);
    cr_expect_eq(cfg.http_max_body, 4 << 20);
    cr_expect_null(cfg.carrier[0].api_key);
    cr_expect_eq(cfg.carrier[1].rate_per_hour, -1);
    cr_expect_eq(cfg.poll_interval_ms, -1);
    cr_expect_not_null(cfg.worker_id);
    config_free(&cfg);
}

/* Each bad value must fail naming the key and the expected form. */
static void expect_bad(const char *key, const char *value, const char *want)
{
    struct st_config cfg;
    char err[256] = "";

    setenv(key, value, 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_CONFIG, "%s=%s was accepted", key, value);
    cr_expect(strstr(err, key) != NULL, "error does not name %s: %s", key, err);
    cr_expect(strstr(err, want) != NULL, "error for %s=%s lacks \"%s\": %s", key, value, want, err);
    unsetenv(key);
}

Test(config, bad_values_name_key_and_form)
{
    expect_bad("SHIPTRACK_POLL_BATCH", "lots", "an integer from 1 to 5000");
    expect_bad("SHIPTRACK_POLL_BATCH", "0", "an integer from 1 to 5000");
    expect_bad("SHIPTRACK_POLL_BATCH", "12abc", "an integer");
    expect_bad("SHIPTRACK_LOG_FORMAT", "xml", "one of text|json");
    expect_bad("SHIPTRACK_LOG_LEVEL", "loud", "one of debug|info|warn|error");
    expect_bad("SHIPTRACK_POLL_LEASE", "5 minutes", "a duration");
    expect_bad("SHIPTRACK_POLL_LEASE", "1s", "out of range (10s to 1h)");
    expect_bad("SHIPTRACK_HTTP_MAX_BODY", "4TB", "a size");
    expect_bad("SHIPTRACK_HTTP_MAX_BODY", "1GiB", "out of range");
    expect_bad("SHIPTRACK_DHL_BASE_URL", "ftp://x", "an http(s):// URL");
    expect_bad("SHIPTRACK_DATABASE_URL", "mysql://x", "a postgresql:// URL");
    expect_bad("SHIPTRACK_ROLES", "poller,dancer", "\"dancer\" is not in");
    expect_bad("SHIPTRACK_DHL_LANGUAGE", "en\nX-Injected: 1", "single line");
}

Test(config, units)
{
    long long v;

    cr_assert(config_parse_duration("250ms", &v) && v == 250);
    cr_assert(config_parse_duration("30", &v) && v == 30000);
    cr_assert(config_parse_duration("2h", &v) && v == 7200000);
    cr_assert(config_parse_duration("7d", &v) && v == 7LL * 86400000);
    cr_assert(!config_parse_duration("-1s", &v));
    cr_assert(!config_parse_duration("1.5s", &v));
    cr_assert(!config_parse_duration("99999999999999999999d", &v));
    cr_assert(config_parse_size("64KiB", &v) && v == 65536);
    cr_assert(config_parse_size("4M", &v) && v == 4 << 20);
    cr_assert(!config_parse_size("4MB", &v));
}

Test(config, secret_from_file_and_conflict)
{
    char path[] = "/tmp/st-secret-XXXXXX";
    int fd = mkstemp(path);
    struct st_config cfg;
    char err[256];

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "file-key-123\n", 13), 13);
    close(fd);
    setenv("SHIPTRACK_DHL_API_KEY_FILE", path, 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(cfg.carrier[0].api_key, "file-key-123");
    config_free(&cfg);

    setenv("SHIPTRACK_DHL_API_KEY", "env-key", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "SHIPTRACK_DHL_API_KEY_FILE") != NULL, "%s", err);
    unsetenv("SHIPTRACK_DHL_API_KEY");

    setenv("SHIPTRACK_DHL_API_KEY_FILE", "/nonexistent/secret", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "/nonexistent/secret") != NULL, "%s", err);
    unlink(path);
}

Test(config, print_masks_secrets)
{
    struct st_config cfg;
    char err[256], *buf = NULL;
    size_t len = 0;
    FILE *f;

    setenv("SHIPTRACK_DHL_API_KEY", "super-secret-dhl-key", 1);
    setenv("SHIPTRACK_DATABASE_URL", "postgresql://app:hunter2@db.internal:5432/st", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    f = open_memstream(&buf, &len);
    config_print(&cfg, f);
    fclose(f);
    cr_expect(strstr(buf, "super-secret-dhl-key") == NULL, "secret printed:\n%s", buf);
    cr_expect(strstr(buf, "hunter2") == NULL, "password printed:\n%s", buf);
    cr_expect(strstr(buf, "SHIPTRACK_DHL_API_KEY=****") != NULL, "%s", buf);
    cr_expect(strstr(buf, "postgresql://app:****@db.internal:5432/st") != NULL, "%s", buf);
    free(buf);
    config_free(&cfg);
}

Test(config, cli_bad_value_exits_2)
{
    char bin[512], *out, *err;
    char *argv[] = { bin, "config", NULL };
    const char *env[] = { "SHIPTRACK_POLL_CONCURRENCY=many", NULL };
    int rc;

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    rc = tu_run(argv, env, &out, &err);
    cr_expect_eq(rc, 2, "exit %d, stderr: %s", rc, err);
    cr_expect(strstr(err, "SHIPTRACK_POLL_CONCURRENCY") != NULL, "%s", err);
    cr_expect(strstr(err, "an integer from 1 to 1024") != NULL, "%s", err);
    free(out);
    free(err);
}

Test(config, cli_unknown_command_and_flag_exit_2)
{
    char bin[512], *out, *err;
    char *argv1[] = { bin, "frobnicate", NULL };
    char *argv2[] = { bin, "timeline", "--colour", "X", NULL };
    char *argv3[] = { bin, "help", NULL };

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    cr_expect_eq(tu_run(argv1, NULL, &out, &err), 2);
    cr_expect(strstr(err, "unknown command") != NULL, "%s", err);
    free(out);
    free(err);
    cr_expect_eq(tu_run(argv2, NULL, &out, &err), 2);
    cr_expect(strstr(err, "--colour") != NULL, "%s", err);
    free(out);
    free(err);
    /* --help lists every key of the table */
    cr_expect_eq(tu_run(argv3, NULL, &out, &err), 0);
    for (size_t i = 0; i < config_params_count; i++)
        cr_expect(strstr(out, config_params[i].key) != NULL, "help lacks %s", config_params[i].key);
    free(out);
    free(err);
}

/* The README's configuration table is generated by `shiptrack config
 * --markdown`; this keeps it true (regenerate with scripts/readme-config). */
Test(config, readme_in_sync)
{
    char path[512], *readme, *table = NULL;
    const char *begin, *end;
    size_t len = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/README.md", ST_SOURCE_DIR);
    readme = tu_read_file(path, NULL);
    begin = strstr(readme, "<!-- config:begin -->\n");
    end = strstr(readme, "<!-- config:end -->");
    cr_assert(begin != NULL && end != NULL && end > begin, "README lacks config markers");
    begin += strlen("<!-- config:begin -->\n");
    f = open_memstream(&table, &len);
    config_print_markdown(f);
    fclose(f);
    cr_expect(strlen(table) == (size_t)(end - begin) && memcmp(table, begin, len) == 0,
              "README configuration table is stale; run scripts/readme-config\n--- want:\n%s",
              table);
    free(table);
    free(readme);
}

Test(config, rates_and_carrier_accounts)
{
    struct st_config cfg;
    char err[256];
    long long v;

    cr_assert(config_parse_rate("5/s", &v) && v == 18000);
    cr_assert(config_parse_rate("60/h", &v) && v == 60);
    cr_assert(config_parse_rate("1/d", &v) && v == 1, "rounds up, never 0");
    cr_assert(!config_parse_rate("5", &v));
    cr_assert(!config_parse_rate("5/week", &v));
    setenv("SHIPTRACK_UPS_CLIENT_ID", "ups-id", 1);
    setenv("SHIPTRACK_UPS_RATE", "300/m", 1);
    setenv("SHIPTRACK_LAPOSTE_DAILY_QUOTA", "0", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(config_carrier(&cfg, "ups")->client_id, "ups-id");
    cr_expect_eq(config_carrier(&cfg, "ups")->rate_per_hour, 18000);
    cr_expect_eq(config_carrier(&cfg, "laposte")->daily_quota, 0);
    cr_expect_eq(config_carrier(&cfg, "fedex")->daily_quota, -1, "unset: the carrier's default");
    cr_expect_eq(config_carrier(&cfg, "fedex")->concurrency, 8);
    cr_expect_null(config_carrier(&cfg, "pigeon"));
    config_free(&cfg);
    expect_bad("SHIPTRACK_FEDEX_RATE", "fast", "a rate such as 5/s");
}

Test(config, poll_intervals_by_status)
{
    struct st_config cfg;
    char err[256];

    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(config_poll_interval(&cfg, "out_for_delivery"), 30 * 60 * 1000);
    cr_expect_eq(config_poll_interval(&cfg, "in_transit"), 3 * 3600 * 1000);
    cr_expect_eq(config_poll_interval(&cfg, "delivered"), -1);
    cr_expect_eq(config_poll_interval(&cfg, "expired"), -1);
    config_free(&cfg);

    setenv("SHIPTRACK_POLL_INTERVAL", "2s", 1);
    setenv("SHIPTRACK_POLL_INTERVALS", "held=15m,out_for_delivery=5m", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(config_poll_interval(&cfg, "out_for_delivery"), 5 * 60 * 1000);
    cr_expect_eq(config_poll_interval(&cfg, "held"), 15 * 60 * 1000);
    cr_expect_eq(config_poll_interval(&cfg, "in_transit"), 2000, "one interval for the rest");
    cr_expect_eq(config_poll_interval(&cfg, "returned"), -1);
    config_free(&cfg);
    unsetenv("SHIPTRACK_POLL_INTERVAL");

    expect_bad("SHIPTRACK_POLL_INTERVALS", "in_transit", "is not status=duration");
    expect_bad("SHIPTRACK_POLL_INTERVALS", "flying=1h", "\"flying\" is not a status that is polled");
    expect_bad("SHIPTRACK_POLL_INTERVALS", "delivered=1h", "is not a status that is polled");
    expect_bad("SHIPTRACK_POLL_INTERVALS", "held=forever", "held: \"forever\" is not a duration");
}
