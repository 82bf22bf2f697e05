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

#define O(f) offsetof(struct st_config, f)
#define MS_S 1000LL
#define MS_MIN (60 * MS_S)
#define MS_H (60 * MS_MIN)
#define MS_D (24 * MS_H)

const struct cfg_param config_params[] = {
    { "SHIPTRACK_DATABASE_URL", CFG_URL, "postgresql:///shiptrack", 0, 0, NULL, CFG_URL_PASSWORD,
      "PostgreSQL connection URL (libpq syntax); its password is masked in output", O(database_url) },
    { "SHIPTRACK_DB_RETRY_MAX", CFG_DURATION, "30s", 1 * MS_S, 10 * MS_MIN, NULL, 0,
      "longest wait between reconnection attempts when the database is unreachable", O(db_retry_max_ms) },
    { "SHIPTRACK_LOG_LEVEL", CFG_ENUM, "info", 0, 0, "debug|info|warn|error", 0,
      "lowest level written to stderr", O(log_level) },
    { "SHIPTRACK_LOG_FORMAT", CFG_ENUM, "text", 0, 0, "text|json", 0,
      "log line format: key=value text or one JSON object per line", O(log_format) },
    { "SHIPTRACK_ROLES", CFG_LIST, "poller", 0, 0, "poller", 0,
      "roles `shiptrack run` starts (comma-separated); --roles overrides", O(roles) },
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
    { "SHIPTRACK_POLL_INTERVAL", CFG_DURATION, "3h", 1 * MS_S, 7 * MS_D, NULL, 0,
      "time between polls of a shipment that is not terminal", O(poll_interval_ms) },
    { "SHIPTRACK_POLL_RETRY_MAX", CFG_DURATION, "6h", 1 * MS_S, 7 * MS_D, NULL, 0,
      "cap of the exponential backoff after failed polls of one shipment", O(poll_retry_max_ms) },
    { "SHIPTRACK_POLL_JITTER", CFG_INT, "10", 0, 50, NULL, 0,
      "random spread, in percent, added to every poll interval and backoff", O(poll_jitter_pct) },
    { "SHIPTRACK_HTTP_CONNECT_TIMEOUT", CFG_DURATION, "10s", 100, 2 * MS_MIN, NULL, 0,
      "connect timeout for carrier requests", O(http_connect_timeout_ms) },
    { "SHIPTRACK_HTTP_TIMEOUT", CFG_DURATION, "30s", 500, 10 * MS_MIN, NULL, 0,
      "total timeout for one carrier request", O(http_timeout_ms) },
    { "SHIPTRACK_HTTP_MAX_BODY", CFG_SIZE, "4MiB", 1024, 64LL << 20, NULL, 0,
      "largest carrier response accepted; bigger ones fail the poll", O(http_max_body) },
    { "SHIPTRACK_DHL_API_KEY", CFG_STRING, NULL, 0, 0, NULL, CFG_SECRET,
      "DHL Shipment Tracking - Unified API key (header DHL-API-Key)", O(dhl_api_key) },
    { "SHIPTRACK_DHL_BASE_URL", CFG_URL, "https://api-eu.dhl.com", 0, 0, NULL, 0,
      "DHL Unified API base URL", O(dhl_base_url) },
    { "SHIPTRACK_DHL_LANGUAGE", CFG_STRING, "en", 0, 0, NULL, 0,
      "language DHL is asked to describe events in (ISO 639-1)", O(dhl_language) },
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
    }
    return "?";
}

/* Human form of a bound for messages: durations and sizes in their own units. */
static void fmt_bound(const struct cfg_param *p, long long v, char *buf, size_t cap)
{
    if (p->type == CFG_DURATION) {
        if (v % MS_D == 0) snprintf(buf, cap, "%lldd", v / MS_D);
        else if (v % MS_H == 0) snprintf(buf, cap, "%lldh", v / MS_H);
        else if (v % MS_MIN == 0) snprintf(buf, cap, "%lldm", v / MS_MIN);
        else if (v % MS_S == 0) snprintf(buf, cap, "%llds", v / MS_S);
        else snprintf(buf, cap, "%lldms", v);
    } else if (p->type == CFG_SIZE) {
        if (v % (1LL << 30) == 0) snprintf(buf, cap, "%lldGiB", v >> 30);
        else if (v % (1LL << 20) == 0) snprintf(buf, cap, "%lldMiB", v >> 20);
        else if (v % (1LL << 10) == 0) snprintf(buf, cap, "%lldKiB", v >> 10);
        else snprintf(buf, cap, "%lld", v);
    } else
        snprintf(buf, cap, "%lld", v);
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
    case CFG_DURATION:
    case CFG_SIZE: {
        bool ok = p->type == CFG_DURATION ? config_parse_duration(val, &n)
                                          : config_parse_size(val, &n);

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

    if (p->type == CFG_INT || p->type == CFG_DURATION || p->type == CFG_SIZE) {
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
        } else
            rc = ST_OK;
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

        if (p->type != CFG_INT && p->type != CFG_DURATION && p->type != CFG_SIZE) {
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

    if (p->type == CFG_INT || p->type == CFG_DURATION || p->type == CFG_SIZE) {
        long long v = *(const long long *)field;

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
        }
        if (p->type == CFG_INT || p->type == CFG_DURATION || p->type == CFG_SIZE) {
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
