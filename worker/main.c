/*
 * main.c - `shiptrack`: the worker and its subcommands.
 *
 * Exit status: 0 success, 1 runtime failure (database, carrier, not found),
 * 2 usage or configuration error.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "carrier.h"
#include "config.h"
#include "db.h"
#include "detect.h"
#include "log.h"
#include "migrate.h"
#include "normalize.h"
#include "poller.h"
#include "privacy.h"
#include "relay.h"
#include "intake.h"
#include "notifier.h"
#include "kafka.h"
#include "register.h"
#include "scanner.h"
#include "templates.h"
#include "timeline.h"

#define EXIT_USAGE 2

static volatile sig_atomic_t running = 1;

static void on_signal(int sig)
{
    (void)sig;
    running = 0;
}

static const struct {
    const char *name;
    const char *args;
    const char *help;
} commands[] = {
    { "run", "[--roles LIST] [--until-idle]",
      "run worker roles until SIGTERM (roles: poller, relay, intake, notifier, scanner, api; all)" },
    { "kafka-mock", "[--brokers N] [--control]",
      "run a mock Kafka cluster for tests; prints its bootstrap servers; --control reads\n"
      "              fault commands from stdin: down ID, up ID, rtt ID MS, errors API_KEY COUNT CODE" },
    { "migrate", "", "apply database migrations (safe to run concurrently and repeatedly)" },
    { "register", "--carrier C --tracking N [--email E] [--phone P] [--locale L]\n"
                  "              [--time-zone Z] [--origin CC] [--destination CC] [--order-ref R] [--json]\n"
                  "            | --batch FILE|- (JSON lines with the same fields)",
      "register a shipment and its recipient" },
    { "timeline", "TRACKING [--carrier C] [--json]", "print a shipment's timeline" },
    { "normalize", "--carrier C FILE [--number N]... [--http-status S]",
      "print the normalized events of a saved carrier response as JSON lines" },
    { "detect", "NUMBER [--json]", "which carriers and formats a tracking number fits" },
    { "render", "--milestone M --locale L --channel email|sms [--data FILE]",
      "print a rendered notification (built-in sample data without --data)" },
    { "stuck", "[--carrier C] [--destination CC] [--status S] [--kind K] [--min-age DURATION]\n"
               "              [--limit N] [--json]",
      "list open stuck-parcel alerts, oldest first (JSON lines with --json)" },
    { "scan", "--once", "run one scanner pass (lane statistics, raise and clear alerts)" },
    { "carriers", "[--json]", "list supported carriers and whether credentials are set" },
    { "config", "[--markdown]", "print the configuration in effect (secrets masked)" },
    { "forget", "--email E | --phone P | --tracking N | --order-ref R | --recipient ID\n"
      "              [--dry-run] [--json]",
      "erase a recipient's personal data and pending notifications (timeline kept, anonymized)" },
    { "retention", "[--dry-run] [--json]",
      "one pass of the retention job (SHIPTRACK_RETENTION_*); the scanner role runs it hourly" },
    { "version", "", "print the version" },
    { "help", "", "print this help" },
};

static void usage_commands(FILE *f)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-9s %s\n  %-9s   %s\n", commands[i].name, commands[i].args, "",
                commands[i].help);
}

static void usage(FILE *f)
{
    fputs("usage: shiptrack COMMAND [OPTIONS]\n\n"
          "shiptrack polls carrier APIs, keeps one timeline per shipment in PostgreSQL and\n"
          "notifies recipients.\n\nCommands:\n", f);
    usage_commands(f);
    fputc('\n', f);
    config_print_help(f);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "shiptrack: ");
    fprintf(stderr, fmt, arg);
    fputs("\nusage: shiptrack COMMAND [OPTIONS]\n", stderr);
    usage_commands(stderr);
    fputs("Run `shiptrack help` for the configuration keys.\n", stderr);
    return EXIT_USAGE;
}

/* Parse options; any unknown option or stray argument is a usage error.
 * Returns -1 when parsing succeeded. */
static int parse_opts(int argc, char **argv, const struct option *opts, const char **vals,
                      int max_positional, const char **positional, int *n_positional)
{
    int c, idx;

    optind = 1;
    opterr = 0;
    *n_positional = 0;
    while ((c = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
        if (c == '?' || c == ':')
            return usage_error("%s: unknown option or missing value", argv[optind - 1]);
        vals[idx] = optarg ? optarg : "1";
    }
    for (int i = optind; i < argc; i++) {
        if (*n_positional >= max_positional)
            return usage_error("unexpected argument \"%s\"", argv[i]);
        positional[(*n_positional)++] = argv[i];
    }
    return -1;
}

static PGconn *connect_or_report(const struct st_config *cfg)
{
    char err[1024];
    PGconn *conn = db_connect(cfg->database_url, err, sizeof(err));

    if (conn == NULL)
        fprintf(stderr, "shiptrack: %s\n", err);
    return conn;
}

static int cmd_migrate(const struct st_config *cfg)
{
    char err[1024];
    PGconn *conn = connect_or_report(cfg);
    int applied = 0;
    enum st_err rc;

    if (conn == NULL)
        return 1;
    rc = migrate_run(conn, &applied, err, sizeof(err));
    PQfinish(conn);
    if (rc != ST_OK) {
        fprintf(stderr, "shiptrack migrate: %s\n", err);
        return rc == ST_CONFIG ? EXIT_USAGE : 1;
    }
    printf("migrations: %d applied, schema at version %03d\n", applied,
           st_migrations_count ? st_migrations[st_migrations_count - 1].version : 0);
    return 0;
}

/* JSON string member or NULL. */
static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* `register --batch FILE`: one JSON object per line; every line is reported,
 * bad lines do not stop the rest. Exit 1 when any line failed. */
static int register_batch(const struct st_config *cfg, const char *path)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char *line = NULL, err[512];
    size_t cap = 0;
    long lineno = 0, added = 0, existed_n = 0, failed = 0;
    ssize_t len;
    PGconn *conn;

    if (in == NULL) {
        fprintf(stderr, "shiptrack register: %s: %s\n", path, strerror(errno));
        return 1;
    }
    if ((conn = connect_or_report(cfg)) == NULL) {
        if (in != stdin)
            fclose(in);
        return 1;
    }
    while ((len = getline(&line, &cap, in)) >= 0) {
        struct registration reg;
        json_error_t je;
        json_t *o;
        long long id;
        bool existed;

        lineno++;
        if (len > 65536) {
            fprintf(stderr, "%s:%ld: line longer than 64 KiB\n", path, lineno);
            failed++;
            continue;
        }
        if (strspn(line, " \t\r\n") == (size_t)len)
            continue;
        o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
        if (o == NULL || !json_is_object(o)) {
            fprintf(stderr, "%s:%ld: not a JSON object: %s\n", path, lineno,
                    o ? "wrong type" : je.text);
            json_decref(o);
            failed++;
            continue;
        }
        if (registration_prepare(&reg, jstr(o, "carrier"), jstr(o, "tracking_number"),
                                 jstr(o, "email"), jstr(o, "phone"), jstr(o, "locale"),
                                 jstr(o, "time_zone"), jstr(o, "origin"), jstr(o, "destination"),
                                 jstr(o, "order_ref"), err, sizeof(err)) != ST_OK ||
            registration_store(conn, &reg, &id, &existed, err, sizeof(err)) != ST_OK) {
            fprintf(stderr, "%s:%ld: %s\n", path, lineno, err);
            failed++;
        } else if (existed)
            existed_n++;
        else
            added++;
        json_decref(o);
    }
    free(line);
    if (in != stdin)
        fclose(in);
    PQfinish(conn);
    printf("registered %ld shipments (%ld already known, %ld rejected)\n", added, existed_n,
           failed);
    return failed ? 1 : 0;
}

static int cmd_register(const struct st_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "carrier", required_argument, NULL, 0 },     { "tracking", required_argument, NULL, 0 },
        { "email", required_argument, NULL, 0 },       { "phone", required_argument, NULL, 0 },
        { "locale", required_argument, NULL, 0 },      { "time-zone", required_argument, NULL, 0 },
        { "origin", required_argument, NULL, 0 },      { "destination", required_argument, NULL, 0 },
        { "order-ref", required_argument, NULL, 0 },   { "json", no_argument, NULL, 0 },
        { "batch", required_argument, NULL, 0 },       { NULL, 0, NULL, 0 },
    };
    const char *v[11] = { 0 }, *pos[1];
    struct registration reg;
    char err[512];
    long long id;
    bool existed;
    PGconn *conn;
    int n, rc;

    if ((rc = parse_opts(argc, argv, opts, v, 0, pos, &n)) >= 0)
        return rc;
    if (v[10] != NULL)
        return register_batch(cfg, v[10]);
    if (registration_prepare(&reg, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], err,
                             sizeof(err)) != ST_OK) {
        fprintf(stderr, "shiptrack register: %s\n", err);
        return EXIT_USAGE;
    }
    if ((conn = connect_or_report(cfg)) == NULL)
        return 1;
    if (registration_store(conn, &reg, &id, &existed, err, sizeof(err)) != ST_OK) {
        fprintf(stderr, "shiptrack register: %s\n", err);
        PQfinish(conn);
        return 1;
    }
    PQfinish(conn);
    if (v[9] != NULL)
        printf("{\"shipment_id\":%lld,\"carrier\":\"%s\",\"tracking_number\":\"%s\",\"existed\":%s}\n",
               id, reg.carrier, reg.tracking_number, existed ? "true" : "false");
    else if (existed)
        printf("already registered: shipment %lld (%s %s), nothing changed\n", id, reg.carrier,
               reg.tracking_number);
    else
        printf("registered shipment %lld (%s %s)\n", id, reg.carrier, reg.tracking_number);
    return 0;
}

static int cmd_timeline(const struct st_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "carrier", required_argument, NULL, 0 },
        { "json", no_argument, NULL, 0 },
        { NULL, 0, NULL, 0 },
    };
    const char *v[2] = { 0 }, *pos[1];
    char err[512];
    json_t *tl;
    PGconn *conn;
    int n, rc;

    if ((rc = parse_opts(argc, argv, opts, v, 1, pos, &n)) >= 0)
        return rc;
    if (n != 1)
        return usage_error("%s", "timeline: which tracking number?");
    if ((conn = connect_or_report(cfg)) == NULL)
        return 1;
    if (timeline_load(conn, v[0], pos[0], &tl, err, sizeof(err)) != ST_OK) {
        fprintf(stderr, "shiptrack timeline: %s\n", err);
        PQfinish(conn);
        return 1;
    }
    PQfinish(conn);
    if (v[1] != NULL) {
        json_dumpf(tl, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII * 0);
        fputc('\n', stdout);
    } else
        timeline_print_text(stdout, tl);
    json_decref(tl);
    return 0;
}

/* Print what an erasure or a retention pass did (JSON with json). */
static void print_privacy(const struct privacy_stats *st, bool dry_run, bool json)
{
    if (json) {
        printf("{\"dry_run\":%s,\"recipients\":%ld,\"shipments\":%ld,\"notifications\":%ld,"
               "\"events\":%ld,\"outbox\":%ld,\"raw\":%ld}\n",
               dry_run ? "true" : "false", st->recipients, st->shipments, st->notifications,
               st->events, st->outbox, st->raw);
        return;
    }
    printf("%s%ld recipient%s erased (%ld shipment%s kept, anonymized); %ld pending "
           "notification%s suppressed; %ld event%s scrubbed",
           dry_run ? "dry run, nothing changed: " : "", st->recipients,
           st->recipients == 1 ? "" : "s", st->shipments, st->shipments == 1 ? "" : "s",
           st->notifications, st->notifications == 1 ? "" : "s", st->events,
           st->events == 1 ? "" : "s");
    if (st->outbox || st->raw)
        printf("; %ld sent outbox row%s deleted; carrier words of %ld finished shipment%s purged",
               st->outbox, st->outbox == 1 ? "" : "s", st->raw, st->raw == 1 ? "" : "s");
    putchar('\n');
}

/* `shiptrack forget`: erase a recipient's personal data. */
static int cmd_forget(const struct st_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "email", required_argument, NULL, 0 },    { "phone", required_argument, NULL, 0 },
        { "tracking", required_argument, NULL, 0 }, { "order-ref", required_argument, NULL, 0 },
        { "recipient", required_argument, NULL, 0 }, { "dry-run", no_argument, NULL, 0 },
        { "json", no_argument, NULL, 0 },           { NULL, 0, NULL, 0 },
    };
    static const enum privacy_key keys[] = { PRIVACY_EMAIL, PRIVACY_PHONE, PRIVACY_TRACKING,
                                             PRIVACY_ORDER_REF, PRIVACY_RECIPIENT };
    const char *v[7] = { 0 }, *pos[1];
    struct privacy_stats st;
    char err[512], masked[300];
    PGconn *conn;
    int n, rc, which = -1;

    if ((rc = parse_opts(argc, argv, opts, v, 0, pos, &n)) >= 0)
        return rc;
    for (int i = 0; i < 5; i++) {
        if (v[i] == NULL)
            continue;
        if (which >= 0)
            return usage_error("%s", "forget: give exactly one of --email, --phone, --tracking,"
                                     " --order-ref, --recipient");
        which = i;
    }
    if (which < 0)
        return usage_error("%s", "forget: whom? --email E | --phone P | --tracking N |"
                                 " --order-ref R | --recipient ID");
    if ((conn = connect_or_report(cfg)) == NULL)
        return 1;
    rc = privacy_forget(conn, keys[which], v[which], v[5] != NULL, &st, err, sizeof(err));
    PQfinish(conn);
    if (rc != ST_OK) {
        fprintf(stderr, "shiptrack forget: %s\n", err);
        return rc == ST_PERMANENT ? EXIT_USAGE : 1;
    }
    log_info("privacy.forget", 0, NULL, "%s %s: %ld recipients erased, %ld notifications "
             "suppressed%s", opts[which].name, log_mask_pii(v[which], masked, sizeof(masked)),
             st.recipients, st.notifications, v[5] != NULL ? " (dry run)" : "");
    print_privacy(&st, v[5] != NULL, v[6] != NULL);
    return 0;
}

/* `shiptrack retention`: one pass of the retention job. */
static int cmd_retention(const struct st_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dry-run", no_argument, NULL, 0 },
        { "json", no_argument, NULL, 0 },
        { NULL, 0, NULL, 0 },
    };
    const struct retention_policy pol = { cfg->retention_outbox_ms, cfg->retention_raw_ms,
                                          cfg->retention_personal_ms };
    const char *v[2] = { 0 }, *pos[1];
    struct privacy_stats st;
    char err[512];
    PGconn *conn;
    int n, rc;

    if ((rc = parse_opts(argc, argv, opts, v, 0, pos, &n)) >= 0)
        return rc;
    if ((conn = connect_or_report(cfg)) == NULL)
        return 1;
    rc = privacy_retention(conn, &pol, v[0] != NULL, &st, err, sizeof(err));
    PQfinish(conn);
    if (rc != ST_OK) {
        fprintf(stderr, "shiptrack retention: %s\n", err);
        return 1;
    }
    print_privacy(&st, v[0] != NULL, v[1] != NULL);
    return 0;
}

static int cmd_normalize(int argc, char **argv)
{
    static const struct option opts[] = {
        { "carrier", required_argument, NULL, 0 },
        { "number", required_argument, NULL, 0 },
        { "http-status", required_argument, NULL, 0 },
        { NULL, 0, NULL, 0 },
    };
    const char *numbers[CARRIER_MAX_BATCH], *carrier = NULL;
    const struct carrier_def *def;
    size_t n_numbers = 0, len;
    long status = 0;
    char *body = NULL;
    FILE *f;
    int c, idx, rc;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
        if (c != 0)
            return usage_error("%s: unknown option or missing value", argv[optind - 1]);
        if (idx == 0)
            carrier = optarg;
        else if (idx == 1) {
            if (n_numbers == CARRIER_MAX_BATCH)
                return usage_error("%s", "normalize: too many --number options");
            numbers[n_numbers++] = optarg;
        } else {
            char *end;

            status = strtol(optarg, &end, 10);
            if (*end != '\0' || status < 100 || status > 599)
                return usage_error("--http-status: \"%s\" is not an HTTP status", optarg);
        }
    }
    if (optind != argc - 1)
        return usage_error("%s", "normalize: which file? (`-` reads standard input)");
    if ((def = carrier_find(carrier)) == NULL)
        return usage_error("%s", "normalize: --carrier must name a supported carrier "
                                 "(see `shiptrack carriers`)");
    f = strcmp(argv[optind], "-") == 0 ? stdin : fopen(argv[optind], "rb");
    if (f == NULL) {
        fprintf(stderr, "shiptrack normalize: %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }
    /* carriers' bodies are capped at 4 MiB; read one byte more to tell */
    body = malloc((4u << 20) + 1);
    if (body == NULL) {
        if (f != stdin)
            fclose(f);
        return 1;
    }
    len = fread(body, 1, (4u << 20) + 1, f);
    if (ferror(f) || len > (4u << 20)) {
        fprintf(stderr, "shiptrack normalize: %s: %s\n", argv[optind],
                ferror(f) ? "read error" : "larger than 4 MiB");
        free(body);
        if (f != stdin)
            fclose(f);
        return 1;
    }
    if (f != stdin)
        fclose(f);
    body[len] = '\0';
    rc = normalize_print(stdout, def, status, body, len, numbers, n_numbers);
    free(body);
    return rc;
}

static int cmd_detect(int argc, char **argv)
{
    static const struct option opts[] = { { "json", no_argument, NULL, 0 }, { NULL, 0, NULL, 0 } };
    const char *v[1] = { 0 }, *pos[1];
    struct detect_candidate c[8];
    char why[256] = "";
    size_t found;
    int n, rc;

    if ((rc = parse_opts(argc, argv, opts, v, 1, pos, &n)) >= 0)
        return rc;
    if (n != 1)
        return usage_error("%s", "detect: which tracking number?");
    found = detect_tracking_number(pos[0], c, sizeof(c) / sizeof(c[0]), why, sizeof(why));
    detect_print(stdout, pos[0], c, found, v[0] != NULL);
    if (found == 0 && v[0] == NULL)
        fprintf(stderr, "shiptrack detect: no carrier issues numbers like this%s%s\n",
                why[0] ? ": " : "", why);
    return found > 0 ? 0 : 1;
}

static int cmd_carriers(const struct st_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = { { "json", no_argument, NULL, 0 }, { NULL, 0, NULL, 0 } };
    const char *v[1] = { 0 }, *pos[1];
    int n, rc;

    if ((rc = parse_opts(argc, argv, opts, v, 0, pos, &n)) >= 0)
        return rc;
    for (size_t i = 0; i < carrier_defs_count; i++) {
        const struct carrier_def *d = carrier_defs[i];
        bool configured = poller_carrier_configured(cfg, d);

        if (v[0] != NULL)
            printf("{\"name\":\"%s\",\"display_name\":\"%s\",\"batch_max\":%u,\"rate_per_sec\":%g,"
                   "\"rate_per_day\":%u,\"auth\":\"%s\",\"configured\":%s}\n",
                   d->name, d->display_name, d->batch_max, d->rate_per_sec, d->rate_per_day,
                   d->auth == CARRIER_AUTH_OAUTH2 ? "oauth2" : "api_key",
                   configured ? "true" : "false");
        else
            printf("%-8s %-24s batch %-3u %5g/s %6u/day  %-7s %s\n", d->name, d->display_name,
                   d->batch_max, d->rate_per_sec, d->rate_per_day,
                   d->auth == CARRIER_AUTH_OAUTH2 ? "oauth2" : "api-key",
                   configured ? "configured" : "no credentials");
    }
    return 0;
}

/* `render`: print one milestone's message for template authors. Exit 2 for
 * bad arguments or data, 1 for template problems. */
static int cmd_render(const struct st_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "milestone", required_argument, NULL, 0 }, { "locale", required_argument, NULL, 0 },
        { "channel", required_argument, NULL, 0 },   { "data", required_argument, NULL, 0 },
        { NULL, 0, NULL, 0 },
    };
    const char *v[4] = { 0 }, *pos[1];
    struct tpl_message msg;
    enum tpl_channel ch;
    json_error_t je;
    json_t *data;
    char err[1024];
    enum st_err e;
    int n, rc;

    if ((rc = parse_opts(argc, argv, opts, v, 0, pos, &n)) >= 0)
        return rc;
    if (v[0] == NULL || v[1] == NULL || v[2] == NULL)
        return usage_error("%s", "render: --milestone, --locale and --channel are required");
    if (!templates_milestone_known(v[0]))
        return usage_error("render: unknown milestone \"%s\" (shipped, customs_processing, "
                           "customs_held, customs_released, delayed, out_for_delivery, "
                           "attempt_failed, available_for_pickup, delivered, exception, returning)",
                           v[0]);
    if (!templates_locale_valid(v[1]))
        return usage_error("render: --locale \"%s\" is not a language tag like en, de or pt-BR",
                           v[1]);
    if (!templates_channel_parse(v[2], &ch))
        return usage_error("render: --channel \"%s\" is not email or sms", v[2]);
    if (v[3] != NULL)
        data = json_load_file(v[3], JSON_REJECT_DUPLICATES, &je);
    else
        data = templates_sample_data(v[0]);
    if (data == NULL) {
        fprintf(stderr, "shiptrack render: %s: %s\n", v[3] ? v[3] : "sample data",
                v[3] ? je.text : "out of memory");
        return EXIT_USAGE;
    }
    e = templates_render(cfg->templates_dir, v[0], v[1], ch, data, &msg, err, sizeof(err));
    json_decref(data);
    if (e != ST_OK) {
        fprintf(stderr, "shiptrack render: %s%s%s\n", v[3] && e == ST_PERMANENT ? v[3] : "",
                v[3] && e == ST_PERMANENT ? ": " : "", err);
        return e == ST_PERMANENT ? EXIT_USAGE : 1;
    }
    for (n = 0; v[1][n] != '\0' && (v[1][n] == '_' ? '-' : tolower((unsigned char)v[1][n])) ==
                                      tolower((unsigned char)msg.locale[n]);
         n++)
        ;
    if (v[1][n] != '\0' || msg.locale[n] != '\0')
        fprintf(stderr, "shiptrack render: no templates for %s; using %s\n", v[1], msg.locale);
    if (ch == TPL_SMS) {
        enum sms_encoding enc;
        size_t units;
        unsigned segs = sms_segments(msg.sms, &enc, &units);

        printf("%s\n----- %s, %zu %s, %u segment%s -----\n", msg.sms,
               enc == SMS_GSM7 ? "GSM-7" : "UCS-2", units,
               enc == SMS_GSM7 ? "septets" : "UTF-16 units", segs, segs == 1 ? "" : "s");
    } else
        printf("Subject: %s\n\n----- text/plain -----\n%s\n----- text/html -----\n%s", msg.subject,
               msg.text, msg.html);
    tpl_message_free(&msg);
    return 0;
}

/* `stuck`: open alerts, filtered, oldest first. Bad filters exit 2. */
static int cmd_stuck(const struct st_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "carrier", required_argument, NULL, 0 }, { "destination", required_argument, NULL, 0 },
        { "status", required_argument, NULL, 0 },  { "kind", required_argument, NULL, 0 },
        { "min-age", required_argument, NULL, 0 }, { "json", no_argument, NULL, 0 },
        { "limit", required_argument, NULL, 0 },   { NULL, 0, NULL, 0 },
    };
    const char *v[7] = { 0 }, *pos[1];
    struct stuck_filter f = { 0 };
    char dest[3] = "", why[160], err[512];
    json_t *alerts;
    PGconn *conn;
    int n, rc;

    if ((rc = parse_opts(argc, argv, opts, v, 0, pos, &n)) >= 0)
        return rc;
    f.carrier = v[0];
    if (v[1] != NULL) {
        if (strlen(v[1]) != 2)
            return usage_error("--destination: \"%s\" is not a two-letter country code", v[1]);
        dest[0] = (char)toupper((unsigned char)v[1][0]);
        dest[1] = (char)toupper((unsigned char)v[1][1]);
        f.destination = dest;
    }
    f.status = v[2];
    f.kind = v[3];
    if (v[4] != NULL) {
        long long ms;

        if (!config_parse_duration(v[4], &ms))
            return usage_error("--min-age: \"%s\" is not a duration such as 90m, 12h or 3d",
                               v[4]);
        f.min_age_s = ms / 1000;
    }
    f.limit = 100;
    if (v[6] != NULL) {
        char *end;

        errno = 0;
        f.limit = strtol(v[6], &end, 10);
        if (errno != 0 || end == v[6] || *end != '\0' || f.limit < 1 || f.limit > 10000)
            return usage_error("--limit: \"%s\" is not a number from 1 to 10000", v[6]);
    }
    if (scanner_filter_check(&f, why, sizeof(why)) != NULL)
        return usage_error("%s", why);
    if ((conn = connect_or_report(cfg)) == NULL)
        return 1;
    if (scanner_list(conn, &f, time(NULL) + (time_t)(cfg->clock_offset_ms / 1000), &alerts, err,
                     sizeof(err)) != ST_OK) {
        fprintf(stderr, "shiptrack stuck: %s\n", err);
        PQfinish(conn);
        return 1;
    }
    PQfinish(conn);
    if (v[5] != NULL) {
        size_t i;
        json_t *a;

        json_array_foreach(alerts, i, a) {
            json_dumpf(a, stdout, JSON_COMPACT);
            fputc('\n', stdout);
        }
    } else
        scanner_print_table(stdout, alerts);
    json_decref(alerts);
    return 0;
}

/* `scan --once`: one scanner pass from the command line, at the scanner's
 * clock (SHIPTRACK_CLOCK_OFFSET applies). */
static int cmd_scan(const struct st_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = { { "once", no_argument, NULL, 0 }, { NULL, 0, NULL, 0 } };
    const char *v[1] = { 0 }, *pos[1];
    struct scanner_stats t;
    char err[1024];
    PGconn *conn;
    int n, rc;

    if ((rc = parse_opts(argc, argv, opts, v, 0, pos, &n)) >= 0)
        return rc;
    if (v[0] == NULL)
        return usage_error("%s", "scan: only --once is supported here; the periodic scanner is "
                                 "`shiptrack run --roles scanner`");
    if ((conn = connect_or_report(cfg)) == NULL)
        return 1;
    if (migrate_check(conn, err, sizeof(err)) != ST_OK ||
        scanner_pass(conn, cfg, time(NULL) + (time_t)(cfg->clock_offset_ms / 1000), &t, err,
                     sizeof(err)) != ST_OK) {
        fprintf(stderr, "shiptrack scan: %s\n", err);
        PQfinish(conn);
        return 1;
    }
    PQfinish(conn);
    printf("scan: %ld events read, %ld dwell samples, %ld lanes updated, %ld alerts raised, "
           "%ld cleared\n", t.events, t.samples, t.lanes, t.raised, t.cleared);
    return 0;
}

/* The roles `run` knows, each a function that runs until SIGTERM. */
static int role_poller(struct st_config *cfg, const char *brokers, bool until_idle)
{
    struct poller_opts o = { &running, until_idle };
    struct poller_totals t;

    (void)brokers;
    return poller_run(cfg, &o, &t);
}

static int role_relay(struct st_config *cfg, const char *brokers, bool until_idle)
{
    struct relay_opts o = { &running, until_idle, brokers };
    struct relay_totals t;

    return relay_run(cfg, &o, &t);
}

static int role_intake(struct st_config *cfg, const char *brokers, bool until_idle)
{
    struct intake_opts o = { &running, brokers, until_idle ? 5000 : 0 };
    struct intake_totals t;

    return intake_run(cfg, &o, &t);
}

static int role_notifier(struct st_config *cfg, const char *brokers, bool until_idle)
{
    struct notifier_opts o = { &running, brokers, until_idle ? 5000 : 0, false };
    struct notifier_totals t;

    return notifier_run(cfg, &o, &t);
}

static int role_scanner(struct st_config *cfg, const char *brokers, bool until_idle)
{
    struct scanner_opts o = { &running, until_idle };
    struct scanner_stats t;

    (void)brokers;
    return scanner_run(cfg, &o, &t);
}

/* The api serves until SIGTERM, --until-idle or not (a server is never idle). */
static int role_api(struct st_config *cfg, const char *brokers, bool until_idle)
{
    struct api_opts o = { &running, brokers };

    (void)until_idle;
    return api_run(cfg, &o);
}

static const struct {
    const char *name;
    int (*run)(struct st_config *cfg, const char *brokers, bool until_idle);
    bool kafka; /* needs brokers */
} roles[] = {
    { "poller", role_poller, false },
    { "relay", role_relay, true },
    { "intake", role_intake, true },
    { "notifier", role_notifier, true },
    { "scanner", role_scanner, false },
    { "api", role_api, false }, /* uses brokers when there are: lag and readiness */
};

#define N_ROLES (sizeof(roles) / sizeof(roles[0]))

/* Supervise one child process per role: forward SIGTERM, restart a role that
 * dies (with backoff), return 0 when all stopped cleanly after a stop. */
#define SUPERVISE_HEALTHY_S 60 /* a role that ran this long has its restart backoff reset */
#define SUPERVISE_TICK_MS 100  /* how often a waiting supervisor looks at the run flag */

/* Wait for a role process to end (waitpid's result). A stop (SIGTERM, SIGINT)
 * is forwarded to every role once, also one that came while roles were being
 * started, before a blocking wait could have been interrupted by it: the wait
 * looks at the run flag every SUPERVISE_TICK_MS, so no stop is lost between
 * the look and the wait (`docker stop` right after a start drains the roles). */
static pid_t wait_role(const pid_t *pids, bool *forwarded, int *status)
{
    const struct timespec tick = { 0, SUPERVISE_TICK_MS * 1000000L };
    pid_t pid;

    for (;;) {
        if (!running && !*forwarded) {
            for (size_t i = 0; i < N_ROLES; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGTERM);
            *forwarded = true;
        }
        pid = waitpid(-1, status, WNOHANG);
        if (pid != 0)
            return pid;
        nanosleep(&tick, NULL); /* a signal ends it early */
    }
}

static int supervise(struct st_config *cfg, bool *want, const char *brokers, bool until_idle)
{
    pid_t pids[N_ROLES] = { 0 };
    long long backoff[N_ROLES];
    time_t started[N_ROLES] = { 0 };
    int rc = 0, alive = 0;
    bool forwarded = false; /* the stop was passed on to the roles */

    for (size_t i = 0; i < N_ROLES; i++)
        backoff[i] = 1;
    for (;;) {
        for (size_t i = 0; i < N_ROLES && running; i++) {
            if (!want[i] || pids[i] != 0)
                continue;
            pids[i] = fork();
            if (pids[i] < 0) {
                log_error("worker.fork", 0, NULL, "cannot start role %s: %s", roles[i].name,
                          strerror(errno));
                pids[i] = 0;
                continue;
            }
            if (pids[i] == 0)
                _exit(roles[i].run(cfg, brokers, until_idle));
            started[i] = time(NULL);
            alive++;
            log_info("worker.role", 0, NULL, "role %s started (pid %ld)", roles[i].name,
                     (long)pids[i]);
        }
        if (alive == 0)
            break;
        {
            int status;
            pid_t pid = wait_role(pids, &forwarded, &status);

            if (pid < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            for (size_t i = 0; i < N_ROLES; i++) {
                bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;

                if (pids[i] != pid)
                    continue;
                pids[i] = 0;
                alive--;
                if (!running || (clean && until_idle)) { /* done: not started again */
                    if (!clean)
                        rc = 1;
                    want[i] = false;
                    break;
                }
                if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
                    /* a configuration problem (logged by the role): restarts cannot fix it */
                    log_error("worker.role", 0, NULL, "role %s cannot run with this "
                              "configuration; not restarting it", roles[i].name);
                    want[i] = false;
                    rc = 2;
                    break;
                }
                /* died while it should run: restart it, a little later each time
                 * it dies young; one that ran a while starts over at 1 s */
                if (time(NULL) - started[i] >= SUPERVISE_HEALTHY_S)
                    backoff[i] = 1;
                log_error("worker.role", 0, NULL, "role %s exited (%s %d); restarting in %lld s",
                          roles[i].name, WIFEXITED(status) ? "status" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                          backoff[i]);
                sleep((unsigned)backoff[i]);
                backoff[i] = backoff[i] * 2 > 30 ? 30 : backoff[i] * 2;
                break;
            }
        }
    }
    return rc;
}

static int cmd_run(struct st_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "roles", required_argument, NULL, 0 },
        { "until-idle", no_argument, NULL, 0 },
        { NULL, 0, NULL, 0 },
    };
    const char *v[2] = { 0 }, *pos[1], *list, *brokers = cfg->kafka_brokers;
    bool want[N_ROLES] = { false }, kafka = false;
    struct kafka_mock mock;
    struct sigaction sa;
    size_t count = 0;
    char err[512];
    int n, rc;

    if ((rc = parse_opts(argc, argv, opts, v, 0, pos, &n)) >= 0)
        return rc;
    list = v[0] != NULL ? v[0] : cfg->roles;
    if (strcmp(list, "all") == 0) {
        for (size_t i = 0; i < N_ROLES; i++)
            want[i] = true;
    } else {
        for (const char *p = list; *p != '\0';) {
            size_t len = strcspn(p, ","), i;

            for (i = 0; i < N_ROLES; i++)
                if (strlen(roles[i].name) == len && strncmp(roles[i].name, p, len) == 0)
                    break;
            if (i == N_ROLES)
                return usage_error("--roles: \"%s\" is not a role (known: poller, relay, intake, notifier, "
                                   "scanner, api, all)",
                                   list);
            want[i] = true;
            p += len;
            if (*p == ',')
                p++;
        }
    }
    for (size_t i = 0; i < N_ROLES; i++) {
        count += want[i];
        kafka |= want[i] && roles[i].kafka;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        perror("shiptrack: sigaction");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    log_info("worker.start", 0, NULL, "shiptrack %s starting roles %s", SHIPTRACK_VERSION, list);
    memset(&mock, 0, sizeof(mock));
    if (kafka && brokers == NULL) {
        if (kafka_mock_start(&mock, 1, 4, err, sizeof(err)) != ST_OK) {
            log_error("kafka.mock", 0, NULL, "%s", err);
            return 1;
        }
        brokers = mock.bootstraps;
        log_warn("kafka.mock", 0, NULL, "no SHIPTRACK_KAFKA_BROKERS: using an embedded mock Kafka "
                 "cluster at %s, which is NOT durable (messages vanish when this process stops)",
                 brokers);
    }
    if (count == 1) { /* one role: run it here */
        for (size_t i = 0; i < N_ROLES; i++)
            if (want[i])
                rc = roles[i].run(cfg, brokers, v[1] != NULL);
    } else
        rc = supervise(cfg, want, brokers, v[1] != NULL);
    kafka_mock_stop(&mock);
    log_info("worker.stop", 0, NULL, "stopped%s", running ? " (idle)" : " on signal");
    return rc;
}

/* `shiptrack kafka-mock`: a standalone mock cluster for tests and the demo.
 * With --control, fault commands (kafka_mock_command) are read from stdin,
 * one per line, each answered "ok" or "error: ..." on stdout; end of input
 * stops the cluster. */
static int cmd_kafka_mock(int argc, char **argv)
{
    static const struct option opts[] = {
        { "brokers", required_argument, NULL, 'b' },
        { "control", no_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    struct kafka_mock mock;
    struct sigaction sa;
    char err[512], line[512];
    int brokers = 1, c;
    bool control = false;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'b') {
            brokers = atoi(optarg);
            if (brokers < 1 || brokers > 9)
                return usage_error("--brokers: \"%s\" is not 1 to 9", optarg);
        } else if (c == 'c')
            control = true;
        else
            return usage_error("%s", "kafka-mock: usage: shiptrack kafka-mock [--brokers N]"
                                     " [--control]");
    }
    if (optind != argc)
        return usage_error("kafka-mock: unexpected argument \"%s\"", argv[optind]);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (kafka_mock_start(&mock, brokers, 4, err, sizeof(err)) != ST_OK) {
        fprintf(stderr, "shiptrack kafka-mock: %s\n", err);
        return 1;
    }
    printf("shiptrack kafka-mock: bootstrap servers %s\n", mock.bootstraps);
    fflush(stdout);
    while (running) {
        if (!control) {
            pause();
            continue;
        }
        if (fgets(line, sizeof(line), stdin) == NULL) {
            if (ferror(stdin) && errno == EINTR) {
                clearerr(stdin);
                continue;
            }
            break; /* end of input: the controller is gone */
        }
        if (kafka_mock_command(&mock, line, err, sizeof(err)) == ST_OK)
            printf("ok\n");
        else
            printf("error: %s\n", err);
        fflush(stdout);
    }
    kafka_mock_stop(&mock);
    return 0;
}

int main(int argc, char **argv)
{
    struct st_config cfg;
    char err[512];
    const char *cmd;
    int rc;

    if (argc < 2)
        return usage(stderr), EXIT_USAGE;
    cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("shiptrack %s\n", SHIPTRACK_VERSION);
        return 0;
    }
    if (config_load(&cfg, err, sizeof(err)) != ST_OK) {
        fprintf(stderr, "shiptrack: configuration: %s\n", err);
        return EXIT_USAGE;
    }
    log_setup(cfg.log_level, cfg.log_format, stderr);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "shiptrack: curl_global_init failed\n");
        config_free(&cfg);
        return 1;
    }
    /* subcommands see their own argv: argv[0] is the command name */
    if (strcmp(cmd, "config") == 0) {
        if (argc == 3 && strcmp(argv[2], "--markdown") == 0)
            config_print_markdown(stdout), rc = 0;
        else if (argc == 2)
            config_print(&cfg, stdout), rc = 0;
        else
            rc = usage_error("config: unexpected argument \"%s\"", argv[2]);
    } else if (strcmp(cmd, "migrate") == 0)
        rc = argc == 2 ? cmd_migrate(&cfg) : usage_error("migrate: unexpected argument \"%s\"", argv[2]);
    else if (strcmp(cmd, "register") == 0)
        rc = cmd_register(&cfg, argc - 1, argv + 1);
    else if (strcmp(cmd, "timeline") == 0)
        rc = cmd_timeline(&cfg, argc - 1, argv + 1);
    else if (strcmp(cmd, "forget") == 0)
        rc = cmd_forget(&cfg, argc - 1, argv + 1);
    else if (strcmp(cmd, "retention") == 0)
        rc = cmd_retention(&cfg, argc - 1, argv + 1);
    else if (strcmp(cmd, "normalize") == 0)
        rc = cmd_normalize(argc - 1, argv + 1);
    else if (strcmp(cmd, "detect") == 0)
        rc = cmd_detect(argc - 1, argv + 1);
    else if (strcmp(cmd, "render") == 0)
        rc = cmd_render(&cfg, argc - 1, argv + 1);
    else if (strcmp(cmd, "carriers") == 0)
        rc = cmd_carriers(&cfg, argc - 1, argv + 1);
    else if (strcmp(cmd, "stuck") == 0)
        rc = cmd_stuck(&cfg, argc - 1, argv + 1);
    else if (strcmp(cmd, "scan") == 0)
        rc = cmd_scan(&cfg, argc - 1, argv + 1);
    else if (strcmp(cmd, "kafka-mock") == 0)
        rc = cmd_kafka_mock(argc - 1, argv + 1);
    else if (strcmp(cmd, "run") == 0)
        rc = cmd_run(&cfg, argc - 1, argv + 1);
    else
        rc = usage_error("unknown command \"%s\"", cmd);
    config_free(&cfg);
    curl_global_cleanup();
    return rc;
}
