/*
 * sms.c - the SMS channel: a Twilio-compatible HTTP API, or JSON lines.
 *
 * Formatting is pure: sms_build() turns a message into the provider request
 * (POST {url}/2010-04-01/Accounts/{sid}/Messages.json, form fields To, From,
 * Body, URL-encoded) and sms_parse_response() sorts the answer: 2xx ST_OK
 * with the message sid and status; 429 and 5xx ST_RETRY; 401/403/404
 * ST_CONFIG (credentials or account); Twilio 21211 (invalid number) and 21610
 * (recipient unsubscribed) ST_PERMANENT flagged invalid_number / opted_out;
 * any other 4xx ST_PERMANENT. sms_measure_body() counts GSM-7 / UCS-2
 * segments.
 *
 * Delivery (sms_channel): with SHIPTRACK_SMS_ACCOUNT_SID set, one libcurl
 * easy handle (kept alive across messages) posts each message with HTTP
 * basic auth sid:token; TLS is verified unless SHIPTRACK_SMS_TLS_VERIFY=off.
 * Without a provider, each message is appended as one JSON line to
 * SHIPTRACK_SMS_JSONL_FILE under an exclusive flock, so several processes
 * can share the file.
 */
#include "channel.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <unistd.h>

#include <curl/curl.h>

#include "config.h"
#include "log.h"
#include "text.h"

/* ---- text measures ---- */

/* ---- validation ---- */

/* True when s starts with prefix (never reads past either string's end). */
static bool has_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);

    return strnlen(s, n) == n && memcmp(s, prefix, n) == 0;
}

/* E.164: '+', a non-zero digit, 8 to 15 digits in all. */
static bool e164_valid(const char *s)
{
    size_t n = 0;

    if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    for (const char *p = s + 1; *p != '\0'; p++, n++)
        if (!isdigit((unsigned char)*p) || n >= 15)
            return false;
    return n >= 8;
}

/* A sender: E.164, or an alphanumeric sender id (1-11 letters, digits,
 * spaces; at least one letter). */
static bool sender_valid(const char *s)
{
    size_t n = 0;
    bool letter = false;

    if (s == NULL)
        return false;
    if (s[0] == '+')
        return e164_valid(s);
    for (; s[n] != '\0'; n++) {
        if (n >= 11 || !(isalnum((unsigned char)s[n]) || s[n] == ' '))
            return false;
        if (isalpha((unsigned char)s[n]))
            letter = true;
    }
    return n > 0 && letter;
}

/* An account sid: 2 to 64 letters and digits (it becomes a path segment). */
static bool sid_valid(const char *s)
{
    size_t n = 0;

    for (; s != NULL && s[n] != '\0'; n++)
        if (n >= 64 || !isalnum((unsigned char)s[n]))
            return false;
    return n >= 2;
}

/* Check a message: E.164 recipient, a body of valid UTF-8 without NUL,
 * 1..SMS_BODY_MAX characters. */
static enum st_err check_message(const struct sms_message *m, char *err, size_t errlen)
{
    size_t chars = 0, n;
    const unsigned char *p;
    uint32_t cp;

    if (!e164_valid(m->to))
        return st_fail(err, errlen, ST_PERMANENT,
                       "sms: recipient is not an E.164 number (+ and 8 to 15 digits)");
    if (m->body == NULL || m->body[0] == '\0')
        return st_fail(err, errlen, ST_PERMANENT, "sms: body is empty");
    n = strnlen(m->body, 4 * SMS_BODY_MAX + 1);
    if (n > 4 * SMS_BODY_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "sms: body longer than %d characters",
                       SMS_BODY_MAX);
    for (p = (const unsigned char *)m->body; n > 0; chars++) {
        size_t k = utf8_decode(p, n, &cp);

        if (k == 0)
            return st_fail(err, errlen, ST_PERMANENT, "sms: body is not valid UTF-8");
        p += k;
        n -= k;
    }
    if (chars > SMS_BODY_MAX)
        return st_fail(err, errlen, ST_PERMANENT, "sms: body longer than %d characters",
                       SMS_BODY_MAX);
    return ST_OK;
}

/* Append "key=urlencoded(value)" (with a leading '&' after the first) to
 * out[*len..cap); false when it does not fit. */
static bool form_add(char *out, size_t cap, size_t *len, const char *key, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = *len;

    if (o > 0) {
        if (o + 1 >= cap)
            return false;
        out[o++] = '&';
    }
    for (const char *k = key; *k != '\0'; k++) {
        if (o + 1 >= cap)
            return false;
        out[o++] = *k;
    }
    if (o + 1 >= cap)
        return false;
    out[o++] = '=';
    for (const unsigned char *v = (const unsigned char *)value; *v != '\0'; v++) {
        if (isalnum(*v) || *v == '-' || *v == '.' || *v == '_' || *v == '~') {
            if (o + 1 >= cap)
                return false;
            out[o++] = (char)*v;
        } else {
            if (o + 3 >= cap)
                return false;
            out[o++] = '%';
            out[o++] = hex[*v >> 4];
            out[o++] = hex[*v & 15];
        }
    }
    out[o] = '\0';
    *len = o;
    return true;
}

enum st_err sms_build(const struct sms_message *m, const char *base_url, const char *account_sid,
                      const char *from, struct sms_request *req, char *err, size_t errlen)
{
    size_t blen;
    enum st_err rc;

    memset(req, 0, sizeof(*req));
    if ((rc = check_message(m, err, errlen)) != ST_OK)
        return rc;
    if (base_url == NULL ||
        (!has_prefix(base_url, "https://") && !has_prefix(base_url, "http://")) ||
        strpbrk(base_url, " \t\r\n?#") != NULL)
        return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_SMS_URL: expected an http(s):// base URL");
    if (!sid_valid(account_sid))
        return st_fail(err, errlen, ST_CONFIG,
                       "SHIPTRACK_SMS_ACCOUNT_SID: expected 2 to 64 letters and digits");
    if (!sender_valid(from))
        return st_fail(err, errlen, ST_CONFIG,
                       "SHIPTRACK_SMS_FROM: expected an E.164 number or an alphanumeric sender id");
    blen = strlen(base_url);
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    if ((size_t)snprintf(req->url, sizeof(req->url), "%.*s/2010-04-01/Accounts/%s/Messages.json",
                         (int)blen, base_url, account_sid) >= sizeof(req->url))
        return st_fail(err, errlen, ST_CONFIG, "SHIPTRACK_SMS_URL: too long");
    if (!form_add(req->body, sizeof(req->body), &req->body_len, "To", m->to) ||
        !form_add(req->body, sizeof(req->body), &req->body_len, "From", from) ||
        !form_add(req->body, sizeof(req->body), &req->body_len, "Body", m->body)) {
        memset(req, 0, sizeof(*req));
        return st_fail(err, errlen, ST_PERMANENT, "sms: encoded request exceeds %d bytes",
                       SMS_FORM_MAX);
    }
    return ST_OK;
}

/* Copy a JSON string member (printable ASCII only) into out. */
static void json_member_copy(json_t *obj, const char *key, char *out, size_t cap)
{
    const char *s = json_string_value(json_object_get(obj, key));
    size_t o = 0;

    for (; s != NULL && *s != '\0' && o + 1 < cap; s++)
        if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7F)
            out[o++] = *s;
    if (cap > 0)
        out[o] = '\0';
}

enum st_err sms_parse_response(long http_status, const char *body, size_t len,
                               struct channel_result *res)
{
    json_error_t jerr;
    json_t *root = NULL, *code;
    char message[160] = "";

    res->code = (int)http_status;
    res->provider_code = 0;
    res->flag = CHANNEL_FLAG_NONE;
    if (body != NULL && len > 0 && len <= SMS_RESPONSE_MAX)
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root != NULL && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    if (root != NULL) {
        /* errors carry "code"; message resources carry "error_code" (null when fine) */
        code = json_object_get(root, "code");
        if (!json_is_integer(code))
            code = json_object_get(root, "error_code");
        if (json_is_integer(code))
            res->provider_code = (int)json_integer_value(code);
        else if (json_is_string(code))
            res->provider_code = atoi(json_string_value(code));
        json_member_copy(root, "message", message, sizeof(message));
        if (http_status >= 200 && http_status < 300) {
            json_member_copy(root, "sid", res->id, sizeof(res->id));
            json_member_copy(root, "status", res->status, sizeof(res->status));
        }
        json_decref(root);
    }

    if (http_status >= 200 && http_status < 300) {
        if (res->id[0] == '\0')
            log_warn("sms.no_sid", 0, NULL, "provider accepted the message (HTTP %ld) without a sid",
                     http_status);
        if (res->status[0] == '\0')
            snprintf(res->status, sizeof(res->status), "accepted");
        res->errmsg[0] = '\0';
        return res->err = ST_OK;
    }
    if (res->provider_code == 21610) {
        res->flag = CHANNEL_FLAG_OPTED_OUT;
        return res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_PERMANENT,
                                  "sms: recipient unsubscribed (HTTP %ld, code 21610): %s",
                                  http_status, message);
    }
    if (res->provider_code == 21211) {
        res->flag = CHANNEL_FLAG_INVALID_NUMBER;
        return res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_PERMANENT,
                                  "sms: invalid phone number (HTTP %ld, code 21211): %s",
                                  http_status, message);
    }
    if (http_status == 429 || (http_status >= 500 && http_status < 600))
        return res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY,
                                  "sms: provider answered HTTP %ld (code %d): %s", http_status,
                                  res->provider_code, message);
    if (http_status == 401 || http_status == 403 || http_status == 404)
        return res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_CONFIG,
                                  "sms: provider refused the account (HTTP %ld, code %d): %s; check "
                                  "SHIPTRACK_SMS_URL, _ACCOUNT_SID and _AUTH_TOKEN",
                                  http_status, res->provider_code, message);
    if (http_status >= 400 && http_status < 500)
        return res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_PERMANENT,
                                  "sms: provider rejected the message (HTTP %ld, code %d): %s",
                                  http_status, res->provider_code, message);
    return res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_CONFIG,
                              "sms: unexpected HTTP %ld from the provider (check SHIPTRACK_SMS_URL)",
                              http_status);
}

/* ---- the channel ---- */

struct sms_state {
    struct channel base;         /* first */
    bool provider;               /* else JSON lines */
    char *url, *sid, *token, *from;
    char *jsonl;
    long timeout_ms;
    bool verify;
    CURL *curl;                  /* reused: keep-alive across messages */
};

/* Free a string after overwriting it (for secrets). */
static void free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void sms_close(struct channel *ch)
{
    struct sms_state *st = (struct sms_state *)ch;

    if (st == NULL)
        return;
    if (st->curl != NULL)
        curl_easy_cleanup(st->curl);
    free(st->url);
    free(st->sid);
    free_secret(st->token);
    free(st->from);
    free(st->jsonl);
    free(st);
}

/* Duplicate s (NULL stays NULL); *ok cleared on allocation failure. */
static char *dup_opt(const char *s, bool *ok)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

static enum st_err sms_open(const struct st_config *cfg, struct channel **out, char *err,
                            size_t errlen)
{
    struct sms_state *st = calloc(1, sizeof(*st));
    bool ok = true;
    enum st_err rc = ST_OK;

    *out = NULL;
    if (st == NULL)
        return st_fail(err, errlen, ST_CONFIG, "sms: out of memory");
    st->base.def = &sms_channel;
    st->provider = cfg->sms_account_sid != NULL;
    st->url = dup_opt(cfg->sms_url != NULL ? cfg->sms_url : "https://api.twilio.com", &ok);
    st->sid = dup_opt(cfg->sms_account_sid, &ok);
    st->token = dup_opt(cfg->sms_auth_token, &ok);
    st->from = dup_opt(cfg->sms_from, &ok);
    st->jsonl = dup_opt(cfg->sms_jsonl_file != NULL ? cfg->sms_jsonl_file : "shiptrack-sms.jsonl",
                        &ok);
    st->timeout_ms = cfg->sms_timeout_ms > 0 ? (long)cfg->sms_timeout_ms : 15000;
    st->verify = cfg->sms_tls_verify == NULL || strcmp(cfg->sms_tls_verify, "off") != 0;
    if (!ok)
        rc = st_fail(err, errlen, ST_CONFIG, "sms: out of memory");
    else if (st->provider && !sid_valid(st->sid))
        rc = st_fail(err, errlen, ST_CONFIG,
                     "SHIPTRACK_SMS_ACCOUNT_SID: expected 2 to 64 letters and digits");
    else if (st->provider && (st->token == NULL || st->token[0] == '\0'))
        rc = st_fail(err, errlen, ST_CONFIG,
                     "SHIPTRACK_SMS_AUTH_TOKEN: required with SHIPTRACK_SMS_ACCOUNT_SID");
    else if (st->provider && !sender_valid(st->from))
        rc = st_fail(err, errlen, ST_CONFIG,
                     "SHIPTRACK_SMS_FROM: required with a provider; an E.164 number or an "
                     "alphanumeric sender id");
    else if (st->provider && (st->curl = curl_easy_init()) == NULL)
        rc = st_fail(err, errlen, ST_CONFIG, "sms: cannot initialise libcurl");
    if (rc != ST_OK) {
        sms_close(&st->base);
        return rc;
    }
    if (!st->provider) {
        log_info("sms.open", 0, NULL, "mode=jsonl file=%s (no SMS provider configured)", st->jsonl);
    } else {
        if (has_prefix(st->url, "http://") && !has_prefix(st->url, "http://127.") &&
            !has_prefix(st->url, "http://localhost"))
            log_warn("sms.cleartext", 0, NULL,
                     "url=%s is not https: the auth token crosses the network unencrypted",
                     st->url);
        if (!st->verify)
            log_warn("sms.tls_verify_off", 0, NULL,
                     "url=%s TLS certificate verification is OFF (SHIPTRACK_SMS_TLS_VERIFY=off)",
                     st->url);
        log_info("sms.open", 0, NULL, "mode=http url=%s", st->url);
    }
    *out = &st->base;
    return ST_OK;
}

/* A capped response body. */
struct resp {
    char buf[SMS_RESPONSE_MAX + 1];
    size_t len;
    bool truncated;
    long retry_after_s;
};

/* libcurl write callback: keep up to SMS_RESPONSE_MAX bytes. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct resp *r = arg;
    size_t n = size * nmemb, room = SMS_RESPONSE_MAX - r->len;

    if (n > room) {
        r->truncated = true;
        n = room;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return size * nmemb;
}

/* libcurl header callback: pick up Retry-After (seconds form). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct resp *r = arg;
    size_t n = size * nmemb;

    if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        char tmp[32];
        size_t k = n - 12 < sizeof(tmp) - 1 ? n - 12 : sizeof(tmp) - 1;
        long v;

        memcpy(tmp, data + 12, k);
        tmp[k] = '\0';
        v = strtol(tmp, NULL, 10);
        if (v > 0 && v < 86400)
            r->retry_after_s = v;
    }
    return n;
}

/* POST one message to the provider. */
static void http_send(struct sms_state *st, const struct channel_msg *msg,
                      struct channel_result *res)
{
    struct sms_request req;
    struct resp *r;
    CURLcode cc;
    long status = 0;

    res->err = sms_build(&msg->u.sms, st->url, st->sid, st->from, &req, res->errmsg,
                         sizeof(res->errmsg));
    if (res->err != ST_OK) {
        if (res->err == ST_PERMANENT && strstr(res->errmsg, "recipient") != NULL)
            res->flag = CHANNEL_FLAG_INVALID_NUMBER;
        return;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY, "sms: out of memory");
        return;
    }
    curl_easy_reset(st->curl);
    if (curl_easy_setopt(st->curl, CURLOPT_URL, req.url) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_POSTFIELDS, req.body) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_POSTFIELDSIZE, (long)req.body_len) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_USERNAME, st->sid) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_PASSWORD, st->token) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_TIMEOUT_MS, st->timeout_ms) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_CONNECTTIMEOUT_MS,
                         st->timeout_ms < 10000 ? st->timeout_ms : 10000L) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_SSL_VERIFYPEER, st->verify ? 1L : 0L) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_SSL_VERIFYHOST, st->verify ? 2L : 0L) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_USERAGENT, "shiptrack/" SHIPTRACK_VERSION) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_WRITEDATA, r) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
        curl_easy_setopt(st->curl, CURLOPT_HEADERDATA, r) != CURLE_OK) {
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_CONFIG,
                           "sms: libcurl refused an option");
        goto out;
    }
    cc = curl_easy_perform(st->curl);
    /* the form holds the number and text: wipe our copy */
    explicit_bzero(req.body, sizeof(req.body));
    if (cc != CURLE_OK) {
        enum st_err kind = ST_RETRY;

        if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
            cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
            kind = ST_CONFIG;
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), kind, "sms: request to %s failed: %s",
                           st->url, curl_easy_strerror(cc));
        goto out;
    }
    if (curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (r->truncated)
        log_warn("sms.big_answer", msg->shipment_id, NULL, "answer over %d bytes cut",
                 SMS_RESPONSE_MAX);
    sms_parse_response(status, r->buf, r->len, res);
    res->retry_after_s = r->retry_after_s;
out:
    free(r);
}

/* Append one JSON line for msg to the fallback file, under flock. */
static void jsonl_send(struct sms_state *st, const struct channel_msg *msg,
                       struct channel_result *res)
{
    static unsigned long seq;
    struct sms_measure mm;
    char ts[32], id[64];
    time_t now = time(NULL);
    struct tm tm;
    json_t *o;
    char *line = NULL;
    size_t len;
    int fd, saved;
    unsigned char rnd[4] = { 0 };

    res->err = check_message(&msg->u.sms, res->errmsg, sizeof(res->errmsg));
    if (res->err != ST_OK) {
        if (strstr(res->errmsg, "recipient") != NULL)
            res->flag = CHANNEL_FLAG_INVALID_NUMBER;
        return;
    }
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    snprintf(id, sizeof(id), "local-%lld-%ld-%lu-%02x%02x%02x%02x", (long long)now, (long)getpid(),
             __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED), rnd[0], rnd[1], rnd[2], rnd[3]);
    if (gmtime_r(&now, &tm) == NULL || strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(ts, sizeof(ts), "%lld", (long long)now);
    if (!sms_measure_body(msg->u.sms.body, &mm))
        memset(&mm, 0, sizeof(mm));
    o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:I, s:I}", "id", id, "ts", ts, "to",
                  msg->u.sms.to, "from", st->from, "body", msg->u.sms.body, "encoding",
                  mm.ucs2 ? "ucs2" : "gsm7", "segments", (json_int_t)mm.segments, "shipment_id",
                  (json_int_t)msg->shipment_id);
    if (o != NULL)
        line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (line == NULL) {
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY, "sms: out of memory");
        return;
    }
    len = strlen(line);
    line[len] = '\n'; /* json_dumps leaves the NUL; the line is written with its length */
    fd = open(st->jsonl, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        saved = errno;
        free(line);
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY, "sms: cannot open %s: %s",
                           st->jsonl, strerror(saved));
        return;
    }
    if (flock(fd, LOCK_EX) != 0) {
        saved = errno;
        close(fd);
        free(line);
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY, "sms: cannot lock %s: %s",
                           st->jsonl, strerror(saved));
        return;
    }
    for (size_t off = 0; off < len + 1;) {
        ssize_t w = write(fd, line + off, len + 1 - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            saved = errno;
            close(fd); /* releases the lock */
            free(line);
            res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY,
                               "sms: cannot write %s: %s", st->jsonl, strerror(saved));
            return;
        }
        off += (size_t)w;
    }
    saved = fdatasync(fd) != 0 ? errno : 0;
    close(fd);
    free(line);
    if (saved != 0) {
        res->err = st_fail(res->errmsg, sizeof(res->errmsg), ST_RETRY, "sms: cannot sync %s: %s",
                           st->jsonl, strerror(saved));
        return;
    }
    res->err = ST_OK;
    snprintf(res->id, sizeof(res->id), "%s", id);
    snprintf(res->status, sizeof(res->status), "file");
    snprintf(res->where, sizeof(res->where), "%s", st->jsonl);
}

static enum st_err sms_send(struct channel *ch, const struct channel_msg *msgs, size_t n,
                            struct channel_result *results, char *err, size_t errlen)
{
    struct sms_state *st = (struct sms_state *)ch;

    if (n > sms_channel.batch_max)
        return st_fail(err, errlen, ST_PERMANENT, "sms: batch of %zu exceeds %zu", n,
                       sms_channel.batch_max);
    for (size_t i = 0; i < n; i++) {
        struct channel_result *res = &results[i];

        memset(res, 0, sizeof(*res));
        if (st->provider)
            http_send(st, &msgs[i], res);
        else
            jsonl_send(st, &msgs[i], res);
        if (res->err == ST_OK)
            log_info("sms.sent", msgs[i].shipment_id, NULL, "to=%s id=%s status=%s",
                     msgs[i].u.sms.to ? msgs[i].u.sms.to : "", res->id, res->status);
        else
            log_warn("sms.failed", msgs[i].shipment_id, NULL,
                     "to=%s kind=%s flag=%s code=%d reason=\"%s\"",
                     msgs[i].u.sms.to ? msgs[i].u.sms.to : "", st_err_name(res->err),
                     channel_flag_name(res->flag), res->provider_code, res->errmsg);
    }
    return ST_OK;
}

static const struct channel_ops sms_ops = {
    .open = sms_open,
    .send = sms_send,
    .close = sms_close,
};

const struct channel_def sms_channel = {
    .name = "sms",
    .kind = CHANNEL_SMS,
    .ops = &sms_ops,
    .batch_max = CHANNEL_BATCH_MAX,
};
