/*
 * main.c - command line of shiptrack-carrier-sim, the carrier API simulator.
 *
 *   shiptrack-carrier-sim [--listen ADDR] [--port N] [--speed X] [--seed N]
 *                         [--dhl-api-key KEY] [--latency-ms N] [--error-rate P]
 *                         [--rate-429 P] [--malformed-rate P] [--reset-rate P]
 *                         [--oversized-rate P] [--slow-body-ms N] [--laposte-api-key KEY]
 *                         [--track17-api-key KEY] [--oauth-client-id ID]
 *                         [--oauth-client-secret S] [--token-ttl SECONDS] [--token-max-uses N]
 *   shiptrack-carrier-sim plan [--carrier NAME|all] [--count N] [--seed N]
 *
 * The fault knobs (--latency-ms, --error-rate, --rate-429, --malformed-rate)
 * may be changed while serving with POST /_sim/faults (see server.c).
 *
 * Serving prints exactly one line, "shiptrack-carrier-sim listening on
 * http://ADDR:PORT", and runs until SIGTERM or SIGINT (exit 0). A bad flag
 * prints the usage on stderr and exits 2.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Print the usage to f. */
static void usage(FILE *f)
{
    fputs("usage: shiptrack-carrier-sim [options]\n"
          "       shiptrack-carrier-sim plan [--carrier NAME] [--count N] [--seed N]\n"
          "\n"
          "Serves carrier tracking APIs on loopback with deterministic journeys.\n"
          "\n"
          "options:\n"
          "  --listen ADDR        address to bind (default 127.0.0.1)\n"
          "  --port N             port, 0 = any free port (default 0)\n"
          "  --speed X            journey seconds per real second, > 0 (default 1)\n"
          "  --seed N             seed of the fault knobs (default 1)\n"
          "  --dhl-api-key KEY    accepted DHL-API-Key (default sim-dhl-key)\n"
          "  --latency-ms N       delay added to every carrier request (default 0)\n"
          "  --error-rate P       probability of HTTP 500, 0..1 (default 0)\n"
          "  --rate-429 P         probability of HTTP 429 + Retry-After: 1, 0..1 (default 0)\n"
          "  --malformed-rate P   probability of a truncated JSON body, 0..1 (default 0)\n"
          "  --reset-rate P       probability of closing the connection unanswered (default 0)\n"
          "  --oversized-rate P   probability of a body padded past 6 MiB (default 0)\n"
          "  --slow-body-ms N     pause before every 512-byte chunk of a body (default 0)\n"
          "  --laposte-api-key KEY  accepted X-Okapi-Key (default sim-laposte-key)\n"
          "  --track17-api-key KEY  accepted 17token (default sim-17track-key)\n"
          "  --oauth-client-id ID   OAuth2 client id of UPS, FedEx, USPS (default sim-client)\n"
          "  --oauth-client-secret S  its secret (default sim-secret)\n"
          "  --token-ttl SECONDS  lifetime of issued OAuth2 tokens (default 3600)\n"
          "  --token-max-uses N   a token answers 401 after N uses, 0 = never (default 0)\n"
          "  --help               this text\n"
          "\n"
          "While serving, GET /_sim/faults shows the fault knobs and per-carrier counters and\n"
          "POST /_sim/faults?error_rate=P&rate_429=P&malformed_rate=P&latency_ms=N&carrier=C\n"
          "changes the knobs at once (omitted ones are kept; carrier=C limits faults to C).\n"
          "\n"
          "plan prints N JSON lines (default 24), one trackable shipment each:\n"
          "carrier, tracking_number, scenario, origin, destination, locale, time_zone,\n"
          "email, phone, order_ref. Carriers: dhl, ups, fedex, usps, laposte, track17,\n"
          "or all (one carrier after the other).\n",
          f);
}

/* Parse an unsigned integer in [lo, hi]. */
static bool parse_ulong(const char *s, unsigned long long lo, unsigned long long hi,
                        unsigned long long *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s == '\0' || *s == '-')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Parse a finite double in [lo, hi] (lo exclusive when open). */
static bool parse_double(const char *s, double lo, double hi, bool open, double *out)
{
    char *end;
    double v;

    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v > hi || v < lo || (open && v == lo))
        return false;
    *out = v;
    return true;
}

/* Split "--name=value" or "--name value"; advances *i past a separate value.
 * Returns the value or NULL when missing. */
static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

/* True when argv[i] is flag `name`, alone or as name=value. */
static bool is_flag(const char *a, const char *name)
{
    size_t n = strlen(name);

    return strncmp(a, name, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

/* Complain about argv[i] and return exit code 2. */
static int bad(const char *what, const char *arg)
{
    fprintf(stderr, "shiptrack-carrier-sim: %s: %s\n", what, arg);
    usage(stderr);
    return 2;
}

/* `plan` subcommand. */
static int main_plan(int argc, char **argv)
{
    const char *carrier = "dhl";
    unsigned long long count = 24, seed = 1;

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v;

        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (is_flag(a, "--carrier")) {
            if ((v = flag_value(argc, argv, &i, "--carrier")) == NULL || *v == '\0')
                return bad("--carrier needs a name", a);
            carrier = v;
        } else if (is_flag(a, "--count")) {
            if (!parse_ulong(flag_value(argc, argv, &i, "--count"), 1, 100000, &count))
                return bad("--count must be 1..100000", a);
        } else if (is_flag(a, "--seed")) {
            if (!parse_ulong(flag_value(argc, argv, &i, "--seed"), 0, UINT64_MAX, &seed))
                return bad("--seed must be an unsigned integer", a);
        } else
            return bad("unknown option", a);
    }
    if (strcmp(carrier, "all") != 0 && sim_carrier_find(carrier) == NULL)
        return bad("unknown carrier", carrier);
    return sim_plan(carrier, (unsigned)count, (uint64_t)seed);
}

int main(int argc, char **argv)
{
    struct sim_options opt = {
        .listen = "127.0.0.1",
        .port = 0,
        .speed = 1.0,
        .dhl_api_key = "sim-dhl-key",
        .laposte_api_key = "sim-laposte-key",
        .track17_api_key = "sim-17track-key",
        .oauth_client_id = "sim-client",
        .oauth_client_secret = "sim-secret",
        .token_ttl = 3600,
        .seed = 1,
    };
    unsigned long long u;

    if (argc > 1 && strcmp(argv[1], "plan") == 0)
        return main_plan(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (is_flag(a, "--listen")) {
            if ((v = flag_value(argc, argv, &i, "--listen")) == NULL || *v == '\0')
                return bad("--listen needs an address", a);
            opt.listen = v;
        } else if (is_flag(a, "--port")) {
            if (!parse_ulong(flag_value(argc, argv, &i, "--port"), 0, 65535, &u))
                return bad("--port must be 0..65535", a);
            opt.port = (unsigned)u;
        } else if (is_flag(a, "--speed")) {
            if (!parse_double(flag_value(argc, argv, &i, "--speed"), 0, 1e9, true, &opt.speed))
                return bad("--speed must be a number > 0", a);
        } else if (is_flag(a, "--seed")) {
            if (!parse_ulong(flag_value(argc, argv, &i, "--seed"), 0, UINT64_MAX, &u))
                return bad("--seed must be an unsigned integer", a);
            opt.seed = (uint64_t)u;
        } else if (is_flag(a, "--dhl-api-key")) {
            if ((v = flag_value(argc, argv, &i, "--dhl-api-key")) == NULL || *v == '\0')
                return bad("--dhl-api-key needs a key", a);
            opt.dhl_api_key = v;
        } else if (is_flag(a, "--latency-ms")) {
            if (!parse_ulong(flag_value(argc, argv, &i, "--latency-ms"), 0, 600000, &u))
                return bad("--latency-ms must be 0..600000", a);
            opt.latency_ms = (unsigned)u;
        } else if (is_flag(a, "--error-rate")) {
            if (!parse_double(flag_value(argc, argv, &i, "--error-rate"), 0, 1, false,
                              &opt.error_rate))
                return bad("--error-rate must be 0..1", a);
        } else if (is_flag(a, "--rate-429")) {
            if (!parse_double(flag_value(argc, argv, &i, "--rate-429"), 0, 1, false,
                              &opt.rate_429))
                return bad("--rate-429 must be 0..1", a);
        } else if (is_flag(a, "--malformed-rate")) {
            if (!parse_double(flag_value(argc, argv, &i, "--malformed-rate"), 0, 1, false,
                              &opt.malformed_rate))
                return bad("--malformed-rate must be 0..1", a);
        } else if (is_flag(a, "--reset-rate")) {
            if (!parse_double(flag_value(argc, argv, &i, "--reset-rate"), 0, 1, false,
                              &opt.reset_rate))
                return bad("--reset-rate must be 0..1", a);
        } else if (is_flag(a, "--oversized-rate")) {
            if (!parse_double(flag_value(argc, argv, &i, "--oversized-rate"), 0, 1, false,
                              &opt.oversized_rate))
                return bad("--oversized-rate must be 0..1", a);
        } else if (is_flag(a, "--slow-body-ms")) {
            if (!parse_ulong(flag_value(argc, argv, &i, "--slow-body-ms"), 0, 60000, &u))
                return bad("--slow-body-ms must be 0..60000", a);
            opt.slow_body_ms = (unsigned)u;
        } else if (is_flag(a, "--laposte-api-key")) {
            if ((v = flag_value(argc, argv, &i, "--laposte-api-key")) == NULL || *v == '\0')
                return bad("--laposte-api-key needs a key", a);
            opt.laposte_api_key = v;
        } else if (is_flag(a, "--track17-api-key")) {
            if ((v = flag_value(argc, argv, &i, "--track17-api-key")) == NULL || *v == '\0')
                return bad("--track17-api-key needs a key", a);
            opt.track17_api_key = v;
        } else if (is_flag(a, "--oauth-client-id")) {
            if ((v = flag_value(argc, argv, &i, "--oauth-client-id")) == NULL || *v == '\0')
                return bad("--oauth-client-id needs an id", a);
            opt.oauth_client_id = v;
        } else if (is_flag(a, "--oauth-client-secret")) {
            if ((v = flag_value(argc, argv, &i, "--oauth-client-secret")) == NULL || *v == '\0')
                return bad("--oauth-client-secret needs a secret", a);
            opt.oauth_client_secret = v;
        } else if (is_flag(a, "--token-ttl")) {
            if (!parse_ulong(flag_value(argc, argv, &i, "--token-ttl"), 1, 86400, &u))
                return bad("--token-ttl must be 1..86400 seconds", a);
            opt.token_ttl = (unsigned)u;
        } else if (is_flag(a, "--token-max-uses")) {
            if (!parse_ulong(flag_value(argc, argv, &i, "--token-max-uses"), 0, 1000000, &u))
                return bad("--token-max-uses must be 0..1000000", a);
            opt.token_max_uses = (unsigned)u;
        } else
            return bad("unknown option", a);
    }
    return sim_serve(&opt);
}
