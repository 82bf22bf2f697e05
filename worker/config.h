/*
 * config.h - the one table of configuration keys.
 *
 * Every setting is an environment variable SHIPTRACK_*; secrets may instead be
 * read from a file named by SHIPTRACK_*_FILE (Docker/Kubernetes secrets). The
 * table in config.c drives parsing and validation, `shiptrack --help`,
 * `shiptrack config` (current values, secrets masked) and the README's
 * configuration section (`shiptrack config --markdown`; a test keeps the README
 * in sync).
 */
#ifndef ST_CONFIG_H
#define ST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

enum cfg_type {
    CFG_STRING,   /* free text */
    CFG_URL,      /* http(s):// or postgres(ql):// URL */
    CFG_INT,      /* integer within [min, max] */
    CFG_ENUM,     /* one of the '|'-separated choices */
    CFG_LIST,     /* comma-separated subset of the choices */
    CFG_DURATION, /* 500ms, 30s, 5m, 2h, 7d (bare number = seconds); stored in ms */
    CFG_SIZE,     /* 512, 64KiB, 4MiB, 1GiB; stored in bytes */
    CFG_RATE,     /* N/s, N/m, N/h or N/d; stored in requests per hour */
    CFG_MAP       /* name=duration pairs, comma-separated (validated by config.c) */
};

#define CFG_SECRET 0x1u   /* masked in output; also readable from KEY_FILE */
#define CFG_URL_PASSWORD 0x2u /* a URL whose password part is masked; KEY_FILE allowed */

struct cfg_param {
    const char *key;      /* SHIPTRACK_... */
    enum cfg_type type;
    const char *def;      /* default as text; NULL = unset */
    long long min, max;   /* bounds for INT (value), DURATION (ms), SIZE (bytes) */
    const char *choices;  /* ENUM/LIST: "a|b|c" */
    unsigned flags;       /* CFG_SECRET, CFG_URL_PASSWORD */
    const char *help;     /* one line for --help and the README */
    size_t off;           /* offsetof(struct st_config, field) */
};

/* The carriers configuration knows, in carrier_defs order of their names. */
#define CONFIG_CARRIERS 6
extern const char *const config_carrier_names[CONFIG_CARRIERS];

/* One carrier account's settings. Numbers read -1 when unset: the carrier's
 * own default (carriers/<name>.c) applies. */
struct carrier_conf {
    char *base_url;           /* NULL: the carrier's production URL */
    char *api_key;            /* API-key carriers */
    char *client_id;          /* OAuth2 carriers */
    char *client_secret;
    char *language;           /* description language asked for, where supported */
    long long rate_per_hour;  /* request rate limit */
    long long daily_quota;    /* requests per UTC day, 0 = unlimited */
    long long concurrency;    /* requests in flight per poller process */
};

/* Parsed configuration. Strings are heap-owned (config_free); ints,
 * durations (ms), sizes (bytes) and rates (per hour) are long long; numbers
 * without a default read -1 when unset. */
struct st_config {
    char *database_url;
    char *log_level;
    char *log_format;
    char *roles;
    char *kafka_brokers;
    char *worker_id;
    long long db_retry_max_ms;
    long long poll_batch;
    long long poll_concurrency;
    long long poll_lease_ms;
    long long poll_idle_ms;
    long long poll_interval_ms;
    long long poll_retry_max_ms;
    long long poll_jitter_pct;
    long long breaker_failure_pct;
    long long breaker_min_requests;
    long long breaker_cooldown_ms;
    long long http_connect_timeout_ms;
    long long http_timeout_ms;
    long long http_max_body;
    char *poll_intervals;           /* status=duration overrides (SHIPTRACK_POLL_INTERVALS) */
    long long expire_after_ms;      /* no movement for this long: status expired */
    /* delivery estimates and customs (worker/eta.c, worker/customs.c) */
    long long lane_min_samples;     /* deliveries a lane needs before its statistics are used */
    long long edd_percentile;       /* percentile of a lane's transit days used as the estimate */
    long long edd_default_domestic_ms;      /* no carrier date, no lane: domestic transit */
    long long edd_default_international_ms; /* same, cross-border */
    long long customs_hold_default_ms;      /* a customs hold's delay without history */
    char *templates_dir;            /* notification templates (SHIPTRACK_TEMPLATES_DIR) */
    struct carrier_conf carrier[CONFIG_CARRIERS];
    /* email channel (worker/email.c) */
    char *smtp_host;                /* relay; NULL: .eml files in eml_dir */
    long long smtp_port;
    char *smtp_starttls;            /* off|optional|required */
    char *smtp_username;            /* AUTH PLAIN/LOGIN when set */
    char *smtp_password;            /* secret */
    char *smtp_from;                /* "Name <addr>" or "addr" */
    long long smtp_timeout_ms;
    char *smtp_tls_verify;          /* on|off */
    char *carrier_tls_verify;       /* on|off */
    char *eml_dir;
    /* SMS channel (worker/sms.c) */
    char *sms_url;                  /* Twilio-compatible API base */
    char *sms_account_sid;          /* set: send through the provider */
    char *sms_auth_token;           /* secret */
    char *sms_from;
    long long sms_timeout_ms;
    char *sms_tls_verify;           /* on|off */
    char *sms_jsonl_file;           /* JSON lines when no provider */
    /* notifier role (worker/notifier.c) */
    char *notify_milestones;        /* enabled milestones, comma-separated */
    char *quiet_hours_sms;          /* "HH:MM-HH:MM" or "off" */
    char *quiet_hours_email;
    long long notify_max_per_day;   /* per recipient and channel, rolling 24 h */
    long long notify_max_attempts;  /* send attempts before failed_permanent */
    long long notify_retry_base_ms; /* first retry delay, doubled per attempt */
    long long notify_pass_ms;       /* deferred/retry pass interval */
    long long notify_stale_ms;      /* a queued row this old is orphaned */
    char *shop_name;
    char *public_url;               /* https base of tracking and unsubscribe links */
    char *unsubscribe_secret;       /* secret: HMAC key of unsubscribe tokens */
    long long retention_outbox_ms;  /* 0: keep */
    long long retention_raw_ms;
    long long retention_personal_ms;
    long long clock_offset_ms;      /* added to the notifier's and scanner's clock (tests, demo) */
    /* scanner role (worker/scanner.c) */
    long long scan_interval_ms;     /* between passes */
    long long scan_batch;           /* rows per candidate / open-alert query */
    long long dwell_batch;          /* events per dwell-statistics transaction */
    long long scan_settle_ms;       /* events younger than this wait for the next pass */
    char *stuck_after;              /* status=duration overrides (SHIPTRACK_STUCK_AFTER) */
    long long customs_hold_alert_ms; /* open hold age alerted without destination statistics */
    long long pickup_alert_ms;      /* label created, not picked up, for this long */
    long long failing_streak;       /* consecutive failed polls that raise tracking_failing */
    /* api role (worker/api.c) */
    char *api_listen;               /* HOST:PORT */
    char *api_tokens;               /* secret: role:token,... */
    long long api_max_body;         /* request body cap, bytes */
    long long api_threads;          /* request threads = database connections */
    long long api_max_connections;
    long long api_timeout_ms;       /* idle connection timeout */
    char *api_cookie_secure;        /* on|off: Secure attribute of the login cookie */
    /* where each value came from, parallel to config_params[]: 0 default, 1 env, 2 file */
    unsigned char source[192];
};

extern const struct cfg_param config_params[];
extern const size_t config_params_count;

/* Load every key from the environment into cfg (zeroed first). Returns ST_OK
 * or ST_CONFIG with err naming the key and the expected form. On error cfg is
 * freed. */
enum st_err config_load(struct st_config *cfg, char *err, size_t errlen);
void config_free(struct st_config *cfg);

/* Print `KEY=value  (source)` lines, secrets masked. */
void config_print(const struct st_config *cfg, FILE *f);
/* Print the key list for --help. */
void config_print_help(FILE *f);
/* Print the README's configuration table (Markdown). */
void config_print_markdown(FILE *f);

/* Parsers, exposed for tests. Return false on a malformed value. */
bool config_parse_duration(const char *s, long long *ms);
bool config_parse_size(const char *s, long long *bytes);

/* Mask the password of a URL ("postgresql://u:****@h/db") into buf. */
const char *config_mask_url(const char *url, char *buf, size_t cap);

/* Settings of a carrier by name, or NULL when configuration knows none. */
const struct carrier_conf *config_carrier(const struct st_config *cfg, const char *name);

/* Poll interval (ms) for a status name: SHIPTRACK_POLL_INTERVALS entry, else
 * the built-in default for that status, else SHIPTRACK_POLL_INTERVAL; -1 for
 * statuses that are never polled again (terminal). */
long long config_poll_interval(const struct st_config *cfg, const char *status);

/* Default "stuck" threshold (ms) for a status: SHIPTRACK_STUCK_AFTER entry,
 * else the built-in table; -1 for statuses the stuck rule does not watch
 * (terminal ones, and info_received, which the pickup rule watches). */
long long config_stuck_after(const struct st_config *cfg, const char *status);

bool config_parse_rate(const char *s, long long *per_hour);

/* True when role appears in cfg->roles. */
bool config_has_role(const struct st_config *cfg, const char *role);

#endif
