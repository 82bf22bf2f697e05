/*
 * config.c - configuration table, parsing and printing.
 *
 * Wording: a "key" is the environment variable name; a "value" its text; the
 * "source" says whether the value came from the default, the environment or
 * a *_FILE. Values are validated here, once, so the rest of the worker can
 * trust cfg without re-checking bounds.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

#define O(f) offsetof(struct st_config, f)
#define MS_S 1000LL
#define MS_MIN (60 * MS_S)
#define MS_H (60 * MS_MIN)
#define MS_D (24 * MS_H)

const char *const config_carrier_names[CONFIG_CARRIERS] = {
    "dhl", "ups", "fedex", "usps", "laposte", "track17",
};

/* Keys every carrier account has. */
#define CARRIER_COMMON(UP, I)                                                                     \
    { "SHIPTRACK_" UP "_BASE_URL", CFG_URL, NULL, 0, 0, NULL, 0,                                  \
      "API base URL (default: the carrier's production endpoint)", O(carrier[I].base_url) },     \
    { "SHIPTRACK_" UP "_RATE", CFG_RATE, NULL, 1, 3600LL * 100000, NULL, 0,                       \
      "request rate limit of this account, e.g. 5/s or 60/h (default: the carrier's documented " \
      "limit)", O(carrier[I].rate_per_hour) },                                                    \
    { "SHIPTRACK_" UP "_DAILY_QUOTA", CFG_INT, NULL, 0, 1000000000, NULL, 0,                      \
      "requests per UTC day shared by all pollers, 0 = unlimited (default: the carrier's plan)",  \
      O(carrier[I].daily_quota) },                                                                \
    { "SHIPTRACK_" UP "_CONCURRENCY", CFG_INT, "8", 1, 256, NULL, 0,                              \
      "requests in flight to this carrier per poller process", O(carrier[I].concurrency) }

/* An API-key carrier's key. */
#define CARRIER_KEY(UP, I, HELP)                                                                  \
    { "SHIPTRACK_" UP "_API_KEY", CFG_STRING, NULL, 0, 0, NULL, CFG_SECRET, HELP,                 \
      O(carrier[I].api_key) }

/* An OAuth2 carrier's client credentials. */
#define CARRIER_OAUTH(UP, I)                                                                      \
    { "SHIPTRACK_" UP "_CLIENT_ID", CFG_STRING, NULL, 0, 0, NULL, 0,                              \
      "OAuth2 client id (client-credentials grant)", O(carrier[I].client_id) },                   \
    { "SHIPTRACK_" UP "_CLIENT_SECRET", CFG_STRING, NULL, 0, 0, NULL, CFG_SECRET,                 \
      "OAuth2 client secret", O(carrier[I].client_secret) }

const struct cfg_param config_params[] = {
    { "SHIPTRACK_DATABASE_URL", CFG_URL, "postgresql:///shiptrack", 0, 0, NULL, CFG_URL_PASSWORD,
      "PostgreSQL connection URL (libpq syntax); its password is masked in output", O(database_url) },
    { "SHIPTRACK_DB_RETRY_MAX", CFG_DURATION, "30s", 1 * MS_S, 10 * MS_MIN, NULL, 0,
      "longest wait between reconnection attempts when the database is unreachable", O(db_retry_max_ms) },
    { "SHIPTRACK_LOG_LEVEL", CFG_ENUM, "info", 0, 0, "debug|info|warn|error", 0,
      "lowest level written to stderr", O(log_level) },
    { "SHIPTRACK_LOG_FORMAT", CFG_ENUM, "text", 0, 0, "text|json", 0,
      "log line format: key=value text or one JSON object per line", O(log_format) },
    { "SHIPTRACK_ROLES", CFG_LIST, "poller,relay,intake,scanner", 0, 0,
      "poller|relay|intake|notifier|scanner|api", 0,
      "roles `shiptrack run` starts (comma-separated; each runs in its own process); "
      "--roles overrides", O(roles) },
    { "SHIPTRACK_KAFKA_BROKERS", CFG_STRING, NULL, 0, 0, NULL, 0,
      "Kafka bootstrap servers; unset: an embedded, non-durable mock cluster. Any other "
      "SHIPTRACK_KAFKA_<NAME> is passed to librdkafka as <name> (e.g. SHIPTRACK_KAFKA_SECURITY_"
      "PROTOCOL=SASL_SSL)", O(kafka_brokers) },
    { "SHIPTRACK_WORKER_ID", CFG_STRING, NULL, 0, 0, NULL, 0,
      "name of this process in leases and logs (default: hostname:pid)", O(worker_id) },
    { "SHIPTRACK_POLL_BATCH", CFG_INT, "100", 1, 5000, NULL, 0,
      "shipments claimed per database round trip", O(poll_batch) },
    { "SHIPTRACK_POLL_CONCURRENCY", CFG_INT, "32", 1, 1024, NULL, 0,
      "carrier requests in flight at once per poller process", O(poll_concurrency) },
    { "SHIPTRACK_POLL_LEASE", CFG_DURATION, "5m", 10 * MS_S, 1 * MS_H, NULL, 0,
      "how long a claimed shipment stays reserved; a crashed poller's claims expire after this",
      O(poll_lease_ms) },
    { "SHIPTRACK_POLL_IDLE", CFG_DURATION, "2s", 50, 1 * MS_MIN, NULL, 0,
      "wait before looking again when no shipment is due", O(poll_idle_ms) },
    { "SHIPTRACK_POLL_INTERVAL", CFG_DURATION, NULL, 1 * MS_S, 7 * MS_D, NULL, 0,
      "one poll interval for every status that is not terminal (default: the per-status table "
      "in the README)", O(poll_interval_ms) },
    { "SHIPTRACK_POLL_RETRY_MAX", CFG_DURATION, "6h", 1 * MS_S, 7 * MS_D, NULL, 0,
      "cap of the exponential backoff after failed polls of one shipment", O(poll_retry_max_ms) },
    { "SHIPTRACK_POLL_JITTER", CFG_INT, "10", 0, 50, NULL, 0,
      "random spread, in percent, added to every poll interval and backoff", O(poll_jitter_pct) },
    { "SHIPTRACK_BREAKER_FAILURES", CFG_INT, "50", 1, 100, NULL, 0,
      "a carrier's circuit breaker opens when this percentage of its recent requests failed",
      O(breaker_failure_pct) },
    { "SHIPTRACK_BREAKER_MIN_REQUESTS", CFG_INT, "10", 1, 1000, NULL, 0,
      "recent requests (a window of twice this many) needed before the breaker may open",
      O(breaker_min_requests) },
    { "SHIPTRACK_BREAKER_COOLDOWN", CFG_DURATION, "30s", 100, 1 * MS_H, NULL, 0,
      "first wait before an open breaker lets one probe request through (doubles while probes "
      "fail, up to 10 minutes)", O(breaker_cooldown_ms) },
    { "SHIPTRACK_HTTP_CONNECT_TIMEOUT", CFG_DURATION, "10s", 100, 2 * MS_MIN, NULL, 0,
      "connect timeout for carrier requests", O(http_connect_timeout_ms) },
    { "SHIPTRACK_HTTP_TIMEOUT", CFG_DURATION, "30s", 500, 10 * MS_MIN, NULL, 0,
      "total timeout for one carrier request", O(http_timeout_ms) },
    { "SHIPTRACK_CARRIER_TLS_VERIFY", CFG_ENUM, "on", 0, 0, "on|off", 0,
      "verify carriers' TLS certificates and host names; off logs a warning (tests only)",
      O(carrier_tls_verify) },
    { "SHIPTRACK_HTTP_MAX_BODY", CFG_SIZE, "4MiB", 1024, 64LL << 20, NULL, 0,
      "largest carrier response accepted; bigger ones fail the poll", O(http_max_body) },
    { "SHIPTRACK_POLL_INTERVALS", CFG_MAP, NULL, 1 * MS_S, 7 * MS_D, NULL, 0,
      "per-status poll intervals overriding the built-in table, e.g. "
      "in_transit=4h,out_for_delivery=15m", O(poll_intervals) },
    { "SHIPTRACK_EXPIRE_AFTER", CFG_DURATION, "30d", 1 * MS_H, 365 * MS_D, NULL, 0,
      "a shipment with no carrier movement for this long becomes expired and is no longer polled",
      O(expire_after_ms) },
    { "SHIPTRACK_LANE_MIN_SAMPLES", CFG_INT, "20", 1, 1000000, NULL, 0,
      "samples a lane's statistics need before they replace a wider lane or the defaults: "
      "delivered shipments (transit times), closed holds (a destination's customs holds), "
      "dwell samples (the scanner's stuck thresholds)", O(lane_min_samples) },
    { "SHIPTRACK_EDD_PERCENTILE", CFG_INT, "80", 1, 99, NULL, 0,
      "percentile of a lane's transit days used as the delivery estimate when the carrier "
      "gives none", O(edd_percentile) },
    { "SHIPTRACK_EDD_DEFAULT_DOMESTIC", CFG_DURATION, "3d", 1 * MS_D, 60 * MS_D, NULL, 0,
      "delivery estimate after shipping (whole days) for a domestic shipment without a carrier "
      "date or lane statistics", O(edd_default_domestic_ms) },
    { "SHIPTRACK_EDD_DEFAULT_INTERNATIONAL", CFG_DURATION, "10d", 1 * MS_D, 60 * MS_D, NULL, 0,
      "same for a cross-border shipment (or one whose origin is unknown)",
      O(edd_default_international_ms) },
    { "SHIPTRACK_CUSTOMS_HOLD_DEFAULT", CFG_DURATION, "3d", 1 * MS_H, 30 * MS_D, NULL, 0,
      "how far a customs hold moves the delivery estimate when the destination has too few "
      "past holds for a median", O(customs_hold_default_ms) },
    { "SHIPTRACK_TEMPLATES_DIR", CFG_STRING, "/usr/share/shiptrack/templates", 0, 0, NULL, 0,
      "notification templates, one folder per locale (the source tree's templates/ when run "
      "from a checkout)", O(templates_dir) },
    CARRIER_KEY("DHL", 0, "DHL Shipment Tracking - Unified API key (header DHL-API-Key)"),
    CARRIER_COMMON("DHL", 0),
    { "SHIPTRACK_DHL_LANGUAGE", CFG_STRING, "en", 0, 0, NULL, 0,
      "language DHL is asked to describe events in (ISO 639-1)", O(carrier[0].language) },
    CARRIER_OAUTH("UPS", 1),
    CARRIER_COMMON("UPS", 1),
    CARRIER_OAUTH("FEDEX", 2),
    CARRIER_COMMON("FEDEX", 2),
    CARRIER_OAUTH("USPS", 3),
    CARRIER_COMMON("USPS", 3),
    CARRIER_KEY("LAPOSTE", 4, "La Poste Okapi API key (header X-Okapi-Key)"),
    CARRIER_COMMON("LAPOSTE", 4),
    { "SHIPTRACK_LAPOSTE_LANGUAGE", CFG_STRING, "fr", 0, 0, NULL, 0,
      "language La Poste is asked to describe events in (fr, en, de, es, it, nl)",
      O(carrier[4].language) },
    CARRIER_KEY("TRACK17", 5, "17TRACK API key (header 17token)"),
    CARRIER_COMMON("TRACK17", 5),
    { "SHIPTRACK_SMTP_HOST", CFG_STRING, NULL, 0, 0, NULL, 0,
      "SMTP relay host name for email notifications (unset: .eml files go to "
      "SHIPTRACK_EML_DIR)", O(smtp_host) },
    { "SHIPTRACK_SMTP_PORT", CFG_INT, "587", 1, 65535, NULL, 0,
      "SMTP relay port (587 submission, 25 relay)", O(smtp_port) },
    { "SHIPTRACK_SMTP_STARTTLS", CFG_ENUM, "required", 0, 0, "off|optional|required", 0,
      "STARTTLS to the relay: off, optional (when offered) or required (fail without it)",
      O(smtp_starttls) },
    { "SHIPTRACK_SMTP_USERNAME", CFG_STRING, NULL, 0, 0, NULL, 0,
      "SMTP AUTH user name (AUTH PLAIN or LOGIN); unset: no authentication", O(smtp_username) },
    { "SHIPTRACK_SMTP_PASSWORD", CFG_STRING, NULL, 0, 0, NULL, CFG_SECRET,
      "SMTP AUTH password", O(smtp_password) },
    { "SHIPTRACK_SMTP_FROM", CFG_STRING, NULL, 0, 0, NULL, 0,
      "sender of notification emails, `Name <addr>` or `addr`; its domain names Message-IDs "
      "(required with a relay; default for .eml files: shiptrack@localhost)", O(smtp_from) },
    { "SHIPTRACK_SMTP_TIMEOUT", CFG_DURATION, "30s", 1 * MS_S, 10 * MS_MIN, NULL, 0,
      "timeout for each SMTP protocol step (greeting, envelope, data)", O(smtp_timeout_ms) },
    { "SHIPTRACK_SMTP_TLS_VERIFY", CFG_ENUM, "on", 0, 0, "on|off", 0,
      "verify the relay's TLS certificate and host name; off logs a warning (tests only)",
      O(smtp_tls_verify) },
    { "SHIPTRACK_EML_DIR", CFG_STRING, "shiptrack-mail", 0, 0, NULL, 0,
      "directory that receives one .eml file per email when no SMTP host is set",
      O(eml_dir) },
    { "SHIPTRACK_SMS_URL", CFG_URL, "https://api.twilio.com", 0, 0, NULL, 0,
      "base URL of the Twilio-compatible SMS API", O(sms_url) },
    { "SHIPTRACK_SMS_ACCOUNT_SID", CFG_STRING, NULL, 0, 0, NULL, 0,
      "SMS provider account SID (basic-auth user); unset: SMS go to SHIPTRACK_SMS_JSONL_FILE",
      O(sms_account_sid) },
    { "SHIPTRACK_SMS_AUTH_TOKEN", CFG_STRING, NULL, 0, 0, NULL, CFG_SECRET,
      "SMS provider auth token (basic-auth password)", O(sms_auth_token) },
    { "SHIPTRACK_SMS_FROM", CFG_STRING, NULL, 0, 0, NULL, 0,
      "SMS sender: an E.164 number or an alphanumeric sender id (required with a provider)",
      O(sms_from) },
    { "SHIPTRACK_SMS_TIMEOUT", CFG_DURATION, "15s", 1 * MS_S, 5 * MS_MIN, NULL, 0,
      "total timeout for one SMS provider request", O(sms_timeout_ms) },
    { "SHIPTRACK_SMS_TLS_VERIFY", CFG_ENUM, "on", 0, 0, "on|off", 0,
      "verify the SMS provider's TLS certificate; off logs a warning (tests only)",
      O(sms_tls_verify) },
    { "SHIPTRACK_SMS_JSONL_FILE", CFG_STRING, "shiptrack-sms.jsonl", 0, 0, NULL, 0,
      "file that receives one JSON line per SMS when no provider is set", O(sms_jsonl_file) },
    /* the notifier role (worker/notifier.c) */
    { "SHIPTRACK_NOTIFY_MILESTONES", CFG_LIST,
      "shipped,customs_held,customs_released,delayed,out_for_delivery,attempt_failed,"
      "available_for_pickup,delivered,exception,returning", 0, 0,
      "shipped|customs_processing|customs_held|customs_released|delayed|out_for_delivery|"
      "attempt_failed|available_for_pickup|delivered|exception|returning", 0,
      "milestones that notify recipients (the others are recorded as suppressed)",
      O(notify_milestones) },
    { "SHIPTRACK_QUIET_HOURS_SMS", CFG_STRING, "21:00-08:00", 0, 0, NULL, 0,
      "SMS quiet hours in the recipient's time zone, HH:MM-HH:MM or off (deferred, never "
      "dropped); a recipient's own quiet hours win", O(quiet_hours_sms) },
    { "SHIPTRACK_QUIET_HOURS_EMAIL", CFG_STRING, "off", 0, 0, NULL, 0,
      "email quiet hours, as SHIPTRACK_QUIET_HOURS_SMS", O(quiet_hours_email) },
    { "SHIPTRACK_NOTIFY_MAX_PER_DAY", CFG_INT, "6", 1, 1000, NULL, 0,
      "notifications sent per recipient and channel in any 24 hours; more are suppressed",
      O(notify_max_per_day) },
    { "SHIPTRACK_NOTIFY_MAX_ATTEMPTS", CFG_INT, "8", 1, 100, NULL, 0,
      "send attempts of one notification before a temporary failure becomes permanent",
      O(notify_max_attempts) },
    { "SHIPTRACK_NOTIFY_RETRY_BASE", CFG_DURATION, "1m", 1 * MS_S, 1 * MS_H, NULL, 0,
      "first retry delay after a temporary send failure (doubles per attempt, at most 6h)",
      O(notify_retry_base_ms) },
    { "SHIPTRACK_NOTIFY_PASS_INTERVAL", CFG_DURATION, "30s", 100, 1 * MS_H, NULL, 0,
      "how often the notifier sends deferred notifications whose window opened and retries "
      "failed ones", O(notify_pass_ms) },
    { "SHIPTRACK_NOTIFY_STALE", CFG_DURATION, "2m", 10 * MS_S, 1 * MS_H, NULL, 0,
      "a notification left queued this long was orphaned by a crashed notifier and is decided "
      "again; keep it above the longest send (SMTP steps, SMS timeout)", O(notify_stale_ms) },
    { "SHIPTRACK_SHOP_NAME", CFG_STRING, "shiptrack", 0, 0, NULL, 0,
      "shop name shown in notifications", O(shop_name) },
    { "SHIPTRACK_PUBLIC_URL", CFG_URL, NULL, 0, 0, NULL, 0,
      "public https base URL of the tracking pages (/t/...) and one-click unsubscribe "
      "(/unsubscribe?...); required by the notifier", O(public_url) },
    { "SHIPTRACK_UNSUBSCRIBE_SECRET", CFG_STRING, NULL, 0, 0, NULL, CFG_SECRET,
      "key of the HMAC-SHA256 that signs unsubscribe links; required by the notifier",
      O(unsubscribe_secret) },
    { "SHIPTRACK_RETENTION_OUTBOX", CFG_DURATION, "7d", 0, 3650 * MS_D, NULL, 0,
      "delete outbox rows this long after Kafka acknowledged them; 0 keeps them",
      O(retention_outbox_ms) },
    { "SHIPTRACK_RETENTION_RAW", CFG_DURATION, "180d", 0, 3650 * MS_D, NULL, 0,
      "purge carriers' raw event text of shipments finished this long ago; 0 keeps it",
      O(retention_raw_ms) },
    { "SHIPTRACK_RETENTION_PERSONAL", CFG_DURATION, "90d", 0, 3650 * MS_D, NULL, 0,
      "erase recipients whose shipments all finished this long ago (as `shiptrack forget`); "
      "0 keeps them", O(retention_personal_ms) },
    { "SHIPTRACK_CLOCK_OFFSET", CFG_DURATION, "0", 0, 3650 * MS_D, NULL, 0,
      "added to the notifier's clock (quiet hours, deferral, caps, retries) and the scanner's "
      "(alert ages): for tests and demos only", O(clock_offset_ms) },
    /* scanner role (worker/scanner.c) */
    { "SHIPTRACK_SCAN_INTERVAL", CFG_DURATION, "5m", 1 * MS_S, 1 * MS_D, NULL, 0,
      "how often the scanner updates the lane statistics and looks for stuck parcels",
      O(scan_interval_ms) },
    { "SHIPTRACK_SCAN_BATCH", CFG_INT, "500", 1, 10000, NULL, 0,
      "rows one scanner query reads (candidates of a rule, open alerts to re-check)",
      O(scan_batch) },
    { "SHIPTRACK_DWELL_BATCH", CFG_INT, "5000", 1, 100000, NULL, 0,
      "new tracking events turned into dwell samples per transaction (at most 20 per pass)",
      O(dwell_batch) },
    { "SHIPTRACK_SCAN_SETTLE", CFG_DURATION, "1m", 0, 1 * MS_H, NULL, 0,
      "events recorded less than this long ago wait for the next pass, so that a transaction "
      "still committing a lower event id is not skipped", O(scan_settle_ms) },
    { "SHIPTRACK_STUCK_AFTER", CFG_MAP, NULL, 1 * MS_H, 60 * MS_D,
      "pending|not_found|in_transit|held|out_for_delivery|attempt_failed|"
      "available_for_pickup|exception|returning", 0,
      "per-status time without movement after which a parcel is stuck when its lane has too few "
      "samples, overriding the built-in table, e.g. in_transit=5d,out_for_delivery=1d",
      O(stuck_after) },
    { "SHIPTRACK_CUSTOMS_HOLD_ALERT", CFG_DURATION, "5d", 1 * MS_H, 60 * MS_D, NULL, 0,
      "an open customs hold older than this raises customs_hold_long when the destination has "
      "too few closed holds for its own 90th percentile", O(customs_hold_alert_ms) },
    { "SHIPTRACK_PICKUP_ALERT", CFG_DURATION, "3d", 1 * MS_H, 60 * MS_D, NULL, 0,
      "a label created this long ago without the parcel being picked up raises not_picked_up",
      O(pickup_alert_ms) },
    { "SHIPTRACK_FAILING_STREAK", CFG_INT, "8", 1, 1000, NULL, 0,
      "consecutive failed polls of one shipment that raise tracking_failing",
      O(failing_streak) },
    /* the api role (worker/api.c) */
    { "SHIPTRACK_API_LISTEN", CFG_STRING, "127.0.0.1:8080", 0, 0, NULL, 0,
      "address of the api role's HTTP server, HOST:PORT or [IPv6]:PORT (port 0: any free port)",
      O(api_listen) },
    { "SHIPTRACK_API_TOKENS", CFG_STRING, NULL, 0, 0, NULL, CFG_SECRET,
      "bearer tokens of the api, role:token pairs, comma-separated (roles agent, ops, admin; "
      "admin may do everything; tokens of 16 to 256 characters); required by the api role",
      O(api_tokens) },
    { "SHIPTRACK_API_MAX_BODY", CFG_SIZE, "64KiB", 1024, 16LL << 20, NULL, 0,
      "largest request body the api accepts; bigger ones get 413", O(api_max_body) },
    { "SHIPTRACK_API_THREADS", CFG_INT, "4", 1, 64, NULL, 0,
      "request threads of the api role, each with its own database connection", O(api_threads) },
    { "SHIPTRACK_API_MAX_CONNECTIONS", CFG_INT, "256", 1, 10000, NULL, 0,
      "open HTTP connections the api accepts at once", O(api_max_connections) },
    { "SHIPTRACK_API_TIMEOUT", CFG_DURATION, "30s", 1 * MS_S, 10 * MS_MIN, NULL, 0,
      "an api connection idle for this long is closed (slow clients included)",
      O(api_timeout_ms) },
    { "SHIPTRACK_API_COOKIE_SECURE", CFG_ENUM, "on", 0, 0, "on|off", 0,
      "mark the pages' login cookie Secure (sent over https only); off for plain-http "
      "loopback demos and tests", O(api_cookie_secure) },
};

const size_t config_params_count = sizeof(config_params) / sizeof(config_params[0]);

/* ---- value parsers ---- */

/* Parse a non-negative decimal integer with an optional unit suffix, which
 * is returned in *unit (pointing into s). */
static bool parse_number_unit(const char *s, long long *num, const char **unit)
{
    unsigned long long v = 0;
    const char *p = s;

    while (*p == ' ')
        p++;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p)) {
        if (v > (unsigned long long)(LLONG_MAX / 10 - 10))
            return false;
        v = v * 10 + (unsigned)(*p - '0');
        p++;
    }
    *num = (long long)v;
    *unit = p;
    return true;
}

static bool mul_ok(long long a, long long b, long long *out)
{
    if (a != 0 && b > LLONG_MAX / a)
        return false;
    *out = a * b;
    return true;
}

bool config_parse_duration(const char *s, long long *ms)
{
    static const struct { const char *u; long long f; } units[] = {
        { "", MS_S }, { "ms", 1 }, { "s", MS_S }, { "m", MS_MIN }, { "h", MS_H }, { "d", MS_D },
    };
    const char *unit;
    long long n;

    if (s == NULL || !parse_number_unit(s, &n, &unit))
        return false;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(unit, units[i].u) == 0)
            return mul_ok(n, units[i].f, ms);
    return false;
}

bool config_parse_size(const char *s, long long *bytes)
{
    static const struct { const char *u; long long f; } units[] = {
        { "", 1 }, { "B", 1 }, { "K", 1LL << 10 }, { "KiB", 1LL << 10 }, { "M", 1LL << 20 },
        { "MiB", 1LL << 20 }, { "G", 1LL << 30 }, { "GiB", 1LL << 30 },
    };
    const char *unit;
    long long n;

    if (s == NULL || !parse_number_unit(s, &n, &unit))
        return false;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(unit, units[i].u) == 0)
            return mul_ok(n, units[i].f, bytes);
    return false;
}

bool config_parse_rate(const char *s, long long *per_hour)
{
    static const struct { const char *u; long long mul, div; } units[] = {
        { "/s", 3600, 1 }, { "/m", 60, 1 }, { "/h", 1, 1 }, { "/d", 1, 24 },
    };
    const char *unit;
    long long n;

    if (s == NULL || !parse_number_unit(s, &n, &unit))
        return false;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(unit, units[i].u) == 0) {
            if (!mul_ok(n, units[i].mul, per_hour))
                return false;
            *per_hour = (*per_hour + units[i].div - 1) / units[i].div; /* round up: never 0 */
            return true;
        }
    return false;
}

static bool in_choices(const char *choices, const char *word, size_t n);
static void fmt_bound(const struct cfg_param *p, long long v, char *buf, size_t cap);

/* Validate a status=duration list: polled statuses (only the choices, when the
 * key has some), durations within the key's bounds; the first problem goes
 * into err. */
static bool valid_interval_map(const char *s, const struct cfg_param *p, char *err, size_t errlen)
{
    while (*s != '\0') {
        size_t len = strcspn(s, ","), eq;
        char name[32], dur[32];
        enum st_status st;
        long long ms;

        eq = strcspn(s, "=");
        if (eq >= len || eq == 0 || eq >= sizeof(name) || len - eq - 1 >= sizeof(dur) ||
            len - eq - 1 == 0) {
            snprintf(err, errlen, "\"%.*s\" is not status=duration", (int)(len > 40 ? 40 : len), s);
            return false;
        }
        memcpy(name, s, eq);
        name[eq] = '\0';
        memcpy(dur, s + eq + 1, len - eq - 1);
        dur[len - eq - 1] = '\0';
        if (!st_status_parse(name, &st) || st_status_terminal(st)) {
            snprintf(err, errlen, "\"%s\" is not a status that is polled", name);
            return false;
        }
        if (p->choices != NULL && !in_choices(p->choices, name, eq)) {
            snprintf(err, errlen, "\"%s\" is not one of %s", name, p->choices);
            return false;
        }
        if (!config_parse_duration(dur, &ms) || ms < p->min || ms > p->max) {
            char lo[32], hi[32];

            fmt_bound(p, p->min, lo, sizeof(lo));
            fmt_bound(p, p->max, hi, sizeof(hi));
            snprintf(err, errlen, "%s: \"%s\" is not a duration from %s to %s", name, dur, lo,
                     hi);
            return false;
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return true;
}

/* True when word (of length n) is one of the '|'-separated choices. */
static bool in_choices(const char *choices, const char *word, size_t n)
{
    const char *p = choices;

    while (*p != '\0') {
        const char *end = strchr(p, '|');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len == n && strncmp(p, word, n) == 0)
            return true;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return false;
}

static bool valid_url(const char *s)
{
    static const char *const schemes[] = { "http://", "https://", "postgresql://", "postgres://" };

    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strncmp(s, schemes[i], strlen(schemes[i])) == 0)
            return strpbrk(s, " \t\r\n") == NULL;
    return false;
}

static const char *type_form(const struct cfg_param *p, char *buf, size_t cap)
{
    switch (p->type) {
    case CFG_STRING: return "text";
    case CFG_URL: return p->flags & CFG_URL_PASSWORD ? "a postgresql:// URL" : "an http(s):// URL";
    case CFG_INT: snprintf(buf, cap, "an integer from %lld to %lld", p->min, p->max); return buf;
    case CFG_ENUM: snprintf(buf, cap, "one of %s", p->choices); return buf;
    case CFG_LIST: snprintf(buf, cap, "a comma-separated list of %s", p->choices); return buf;
    case CFG_DURATION: return "a duration such as 500ms, 30s, 5m, 2h or 7d";
    case CFG_SIZE: return "a size such as 65536, 64KiB or 4MiB";
    case CFG_RATE: return "a rate such as 5/s, 300/m, 60/h or 250/d";
    case CFG_MAP: return "a list such as in_transit=4h,out_for_delivery=15m";
    }
    return "?";
}

/* Human form of a bound for messages: durations and sizes in their own units. */
static void fmt_bound(const struct cfg_param *p, long long v, char *buf, size_t cap)
{
    if (p->type == CFG_DURATION || p->type == CFG_MAP) {
        if (v % MS_D == 0) snprintf(buf, cap, "%lldd", v / MS_D);
        else if (v % MS_H == 0) snprintf(buf, cap, "%lldh", v / MS_H);
        else if (v % MS_MIN == 0) snprintf(buf, cap, "%lldm", v / MS_MIN);
        else if (v % MS_S == 0) snprintf(buf, cap, "%llds", v / MS_S);
        else snprintf(buf, cap, "%lldms", v);
    } else if (p->type == CFG_RATE) {
        if (v % 3600 == 0) snprintf(buf, cap, "%lld/s", v / 3600);
        else if (v % 60 == 0) snprintf(buf, cap, "%lld/m", v / 60);
        else snprintf(buf, cap, "%lld/h", v);
    } else if (p->type == CFG_SIZE) {
        if (v % (1LL << 30) == 0) snprintf(buf, cap, "%lldGiB", v >> 30);
        else if (v % (1LL << 20) == 0) snprintf(buf, cap, "%lldMiB", v >> 20);
        else if (v % (1LL << 10) == 0) snprintf(buf, cap, "%lldKiB", v >> 10);
        else snprintf(buf, cap, "%lld", v);
    } else
        snprintf(buf, cap, "%lld", v);
}

/* True for keys stored as long long. */
static bool is_number(const struct cfg_param *p)
{
    return p->type == CFG_INT || p->type == CFG_DURATION || p->type == CFG_SIZE ||
           p->type == CFG_RATE;
}

/* Validate `val` for p and store it in cfg. */
static enum st_err set_value(struct st_config *cfg, const struct cfg_param *p, const char *val,
                             const char *from, char *err, size_t errlen)
{
    char form[160], lo[32], hi[32];
    long long n = 0;
    char *copy;

    switch (p->type) {
    case CFG_STRING:
        if (strpbrk(val, "\r\n") != NULL)
            return st_fail(err, errlen, ST_CONFIG, "%s: must be a single line", from);
        if (strlen(val) > 4096)
            return st_fail(err, errlen, ST_CONFIG, "%s: longer than 4096 bytes", from);
        break;
    case CFG_URL:
        if (!valid_url(val) || strlen(val) > 2048)
            return st_fail(err, errlen, ST_CONFIG, "%s: expected %s", from,
                           type_form(p, form, sizeof(form)));
        break;
    case CFG_ENUM:
        if (!in_choices(p->choices, val, strlen(val)))
            return st_fail(err, errlen, ST_CONFIG, "%s: \"%.64s\" is not %s", from, val,
                           type_form(p, form, sizeof(form)));
        break;
    case CFG_LIST: {
        const char *s = val;

        if (*s == '\0')
            return st_fail(err, errlen, ST_CONFIG, "%s: expected %s", from,
                           type_form(p, form, sizeof(form)));
        while (*s != '\0') {
            size_t len = strcspn(s, ",");

            if (len == 0 || !in_choices(p->choices, s, len))
                return st_fail(err, errlen, ST_CONFIG, "%s: \"%.*s\" is not in %s", from,
                               (int)(len > 64 ? 64 : len), s, p->choices);
            s += len;
            if (*s == ',')
                s++;
        }
        break;
    }
    case CFG_INT: {
        char *end;

        errno = 0;
        n = strtoll(val, &end, 10);
        if (errno != 0 || end == val || *end != '\0' || n < p->min || n > p->max)
            return st_fail(err, errlen, ST_CONFIG, "%s: \"%.64s\" is not %s", from, val,
                           type_form(p, form, sizeof(form)));
        break;
    }
    case CFG_MAP: {
        char why[160];

        if (strlen(val) > 1024 || !valid_interval_map(val, p, why, sizeof(why)))
            return st_fail(err, errlen, ST_CONFIG, "%s: %s; expected %s", from,
                           strlen(val) > 1024 ? "longer than 1024 bytes" : why,
                           type_form(p, form, sizeof(form)));
        break;
    }
    case CFG_DURATION:
    case CFG_SIZE:
    case CFG_RATE: {
        bool ok = p->type == CFG_DURATION ? config_parse_duration(val, &n)
                  : p->type == CFG_SIZE   ? config_parse_size(val, &n)
                                          : config_parse_rate(val, &n);

        if (!ok)
            return st_fail(err, errlen, ST_CONFIG, "%s: \"%.64s\" is not %s", from, val,
                           type_form(p, form, sizeof(form)));
        if (n < p->min || n > p->max) {
            fmt_bound(p, p->min, lo, sizeof(lo));
            fmt_bound(p, p->max, hi, sizeof(hi));
            return st_fail(err, errlen, ST_CONFIG, "%s: \"%.64s\" is out of range (%s to %s)",
                           from, val, lo, hi);
        }
        break;
    }
    }

    if (is_number(p)) {
        *(long long *)((char *)cfg + p->off) = n;
        return ST_OK;
    }
    copy = strdup(val);
    if (copy == NULL)
        return st_fail(err, errlen, ST_CONFIG, "%s: out of memory", p->key);
    free(*(char **)((char *)cfg + p->off));
    *(char **)((char *)cfg + p->off) = copy;
    return ST_OK;
}

/* Read a secret file: at most 64 KiB, one trailing newline stripped. */
static enum st_err read_secret_file(const char *fkey, const char *path, char **out, char *err,
                                    size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (f == NULL)
        return st_fail(err, errlen, ST_CONFIG, "%s: cannot read %s: %s", fkey, path,
                       strerror(errno));
    buf = malloc(65537);
    if (buf == NULL) {
        fclose(f);
        return st_fail(err, errlen, ST_CONFIG, "%s: out of memory", fkey);
    }
    n = fread(buf, 1, 65537, f);
    if (ferror(f) || n > 65536) {
        fclose(f);
        free(buf);
        return st_fail(err, errlen, ST_CONFIG, "%s: %s is unreadable or larger than 64 KiB", fkey,
                       path);
    }
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    *out = buf;
    return ST_OK;
}

enum st_err config_load(struct st_config *cfg, char *err, size_t errlen)
{
    char host[128], fkey[96];
    enum st_err rc;

    memset(cfg, 0, sizeof(*cfg));
    if (config_params_count > sizeof(cfg->source))
        return st_fail(err, errlen, ST_CONFIG, "internal: config table larger than source[]");
    for (size_t i = 0; i < config_params_count; i++) {
        const struct cfg_param *p = &config_params[i];
        const char *env = getenv(p->key);
        const char *fpath = NULL;
        char *fval = NULL;

        if (p->flags & (CFG_SECRET | CFG_URL_PASSWORD)) {
            snprintf(fkey, sizeof(fkey), "%s_FILE", p->key);
            fpath = getenv(fkey);
            if (fpath != NULL && fpath[0] == '\0')
                fpath = NULL;
        }
        if (env != NULL && env[0] == '\0')
            env = NULL;
        if (env != NULL && fpath != NULL) {
            config_free(cfg);
            return st_fail(err, errlen, ST_CONFIG, "%s and %s are both set; set only one", p->key,
                           fkey);
        }
        if (fpath != NULL) {
            rc = read_secret_file(fkey, fpath, &fval, err, errlen);
            if (rc == ST_OK)
                rc = set_value(cfg, p, fval, fkey, err, errlen);
            free(fval);
            cfg->source[i] = 2;
        } else if (env != NULL) {
            rc = set_value(cfg, p, env, p->key, err, errlen);
            cfg->source[i] = 1;
        } else if (p->def != NULL) {
            rc = set_value(cfg, p, p->def, p->key, err, errlen);
        } else {
            if (is_number(p)) /* unset: the built-in default of whoever reads it */
                *(long long *)((char *)cfg + p->off) = -1;
            rc = ST_OK;
        }
        if (rc != ST_OK) {
            config_free(cfg);
            return rc;
        }
    }
    if (cfg->worker_id == NULL) {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        if (asprintf(&cfg->worker_id, "%s:%ld", host, (long)getpid()) < 0) {
            cfg->worker_id = NULL;
            config_free(cfg);
            return st_fail(err, errlen, ST_CONFIG, "out of memory");
        }
    }
    return ST_OK;
}

void config_free(struct st_config *cfg)
{
    for (size_t i = 0; i < config_params_count; i++) {
        const struct cfg_param *p = &config_params[i];

        if (!is_number(p)) {
            char **s = (char **)((char *)cfg + p->off);
            free(*s);
            *s = NULL;
        }
    }
    free(cfg->worker_id);
    cfg->worker_id = NULL;
}

const char *config_mask_url(const char *url, char *buf, size_t cap)
{
    const char *scheme = strstr(url, "://");
    const char *at, *colon, *auth;

    snprintf(buf, cap, "%s", url);
    if (scheme == NULL)
        return buf;
    auth = scheme + 3;
    at = strchr(auth, '@');
    if (at == NULL)
        return buf;
    colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL)
        return buf;
    snprintf(buf, cap, "%.*s:****%s", (int)(colon - url), url, at);
    return buf;
}

/* Text of a value for display, secrets masked. */
static const char *display_value(const struct st_config *cfg, const struct cfg_param *p,
                                 char *buf, size_t cap)
{
    const void *field = (const char *)cfg + p->off;

    if (is_number(p)) {
        long long v = *(const long long *)field;

        if (v == -1 && p->def == NULL)
            return "(default)";
        if (p->type == CFG_INT)
            snprintf(buf, cap, "%lld", v);
        else
            fmt_bound(p, v, buf, cap);
        return buf;
    }
    field = *(char *const *)field;
    if (field == NULL)
        return "(unset)";
    if (p->flags & CFG_SECRET)
        return "****";
    if (p->flags & CFG_URL_PASSWORD)
        return config_mask_url(field, buf, cap);
    return field;
}

void config_print(const struct st_config *cfg, FILE *f)
{
    static const char *const src[] = { "default", "environment", "file" };
    char buf[2100];

    for (size_t i = 0; i < config_params_count; i++) {
        const struct cfg_param *p = &config_params[i];
        const char *v = display_value(cfg, p, buf, sizeof(buf));

        if (strcmp(p->key, "SHIPTRACK_WORKER_ID") == 0 && cfg->source[i] == 0)
            v = cfg->worker_id;
        fprintf(f, "%s=%s  # %s\n", p->key, v ? v : "(unset)", src[cfg->source[i] % 3]);
    }
}

void config_print_help(FILE *f)
{
    char form[160];

    fputs("Configuration (environment variables; secrets also from KEY_FILE):\n", f);
    for (size_t i = 0; i < config_params_count; i++) {
        const struct cfg_param *p = &config_params[i];

        fprintf(f, "  %-32s %s\n  %-32s   %s; default %s%s\n", p->key, p->help, "",
                type_form(p, form, sizeof(form)), p->def ? p->def : "unset",
                p->flags & (CFG_SECRET | CFG_URL_PASSWORD) ? "; _FILE allowed" : "");
    }
}

void config_print_markdown(FILE *f)
{
    char lo[32], hi[32];

    fputs("| key | type | default | bounds | description |\n", f);
    fputs("|---|---|---|---|---|\n", f);
    for (size_t i = 0; i < config_params_count; i++) {
        const struct cfg_param *p = &config_params[i];
        const char *type = "text";
        char bounds[96] = "";

        switch (p->type) {
        case CFG_STRING: type = p->flags & CFG_SECRET ? "secret" : "text"; break;
        case CFG_URL: type = "URL"; break;
        case CFG_INT: type = "integer"; break;
        case CFG_ENUM: type = "enum"; snprintf(bounds, sizeof(bounds), "`%s`", p->choices); break;
        case CFG_LIST: type = "list"; snprintf(bounds, sizeof(bounds), "`%s`", p->choices); break;
        case CFG_DURATION: type = "duration"; break;
        case CFG_SIZE: type = "size"; break;
        case CFG_RATE: type = "rate"; break;
        case CFG_MAP: type = "status=duration list"; break;
        }
        if (is_number(p)) {
            fmt_bound(p, p->min, lo, sizeof(lo));
            fmt_bound(p, p->max, hi, sizeof(hi));
            snprintf(bounds, sizeof(bounds), "%s to %s", lo, hi);
        }
        fprintf(f, "| `%s` | %s | %s | %s | %s", p->key, type, p->def ? p->def : "—", bounds,
                p->help);
        if (p->flags & (CFG_SECRET | CFG_URL_PASSWORD))
            fprintf(f, "; or read from the file named by `%s_FILE`", p->key);
        fputs(" |\n", f);
    }
}

bool config_has_role(const struct st_config *cfg, const char *role)
{
    const char *s = cfg->roles;
    size_t n = strlen(role);

    while (s != NULL && *s != '\0') {
        size_t len = strcspn(s, ",");

        if (len == n && strncmp(s, role, n) == 0)
            return true;
        s += len;
        if (*s == ',')
            s++;
    }
    return false;
}

const struct carrier_conf *config_carrier(const struct st_config *cfg, const char *name)
{
    for (size_t i = 0; name != NULL && i < CONFIG_CARRIERS; i++)
        if (strcmp(config_carrier_names[i], name) == 0)
            return &cfg->carrier[i];
    return NULL;
}

/* Built-in cadence: often when something is about to happen, rarely when
 * nothing will for days. */
static const struct {
    const char *status;
    long long ms;
} default_intervals[] = {
    { "pending", 1 * MS_H },            { "not_found", 6 * MS_H },
    { "info_received", 6 * MS_H },      { "in_transit", 3 * MS_H },
    { "held", 2 * MS_H },               { "out_for_delivery", 30 * MS_MIN },
    { "attempt_failed", 2 * MS_H },     { "available_for_pickup", 6 * MS_H },
    { "exception", 3 * MS_H },          { "returning", 6 * MS_H },
};

/* The duration a status=duration list (validated at load) gives status, or -1. */
static long long map_lookup(const char *map, const char *status)
{
    const char *s = map;
    size_t n = strlen(status);

    while (s != NULL && *s != '\0') {
        size_t len = strcspn(s, ",");
        long long ms;

        if (strncmp(s, status, n) == 0 && s[n] == '=') {
            char dur[32];

            snprintf(dur, sizeof(dur), "%.*s", (int)(len - n - 1), s + n + 1);
            if (config_parse_duration(dur, &ms))
                return ms;
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return -1;
}

long long config_poll_interval(const struct st_config *cfg, const char *status)
{
    enum st_status st;
    long long ms;

    if (!st_status_parse(status, &st) || st_status_terminal(st))
        return -1;
    if ((ms = map_lookup(cfg->poll_intervals, status)) > 0)
        return ms;
    if (cfg->poll_interval_ms > 0)
        return cfg->poll_interval_ms;
    for (size_t i = 0; i < sizeof(default_intervals) / sizeof(default_intervals[0]); i++)
        if (strcmp(default_intervals[i].status, status) == 0)
            return default_intervals[i].ms;
    return 3 * MS_H;
}

/* Built-in "stuck" thresholds: roughly twice what a slow but healthy parcel
 * spends in each status. info_received is the pickup rule's (PICKUP_ALERT). */
static const struct {
    const char *status;
    long long ms;
} default_stuck_after[] = {
    { "pending", 2 * MS_D },            { "not_found", 3 * MS_D },
    { "in_transit", 5 * MS_D },         { "held", 4 * MS_D },
    { "out_for_delivery", 1 * MS_D },   { "attempt_failed", 3 * MS_D },
    { "available_for_pickup", 7 * MS_D }, { "exception", 3 * MS_D },
    { "returning", 10 * MS_D },
};

long long config_stuck_after(const struct st_config *cfg, const char *status)
{
    long long ms = map_lookup(cfg->stuck_after, status);

    if (ms > 0)
        return ms;
    for (size_t i = 0; i < sizeof(default_stuck_after) / sizeof(default_stuck_after[0]); i++)
        if (strcmp(default_stuck_after[i].status, status) == 0)
            return default_stuck_after[i].ms;
    return -1;
}
