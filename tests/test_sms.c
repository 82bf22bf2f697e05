/*
 * test_sms.c - the SMS channel: request building, answer sorting and segment
 * counting on data alone; delivery against an in-process libmicrohttpd server
 * that answers like Twilio (201, 429 with Retry-After, 500, 400 with 21211 and
 * 21610, 401 for bad credentials); and the JSON-lines fallback, including
 * several processes appending at once.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.h"
#include "config.h"
#include "log.h"
#include "testutil.h"

static void quiet(void)
{
    static const char *const keys[] = {
        "SHIPTRACK_SMS_URL", "SHIPTRACK_SMS_ACCOUNT_SID", "SHIPTRACK_SMS_AUTH_TOKEN",
        "SHIPTRACK_SMS_FROM", "SHIPTRACK_SMS_TIMEOUT", "SHIPTRACK_SMS_TLS_VERIFY",
        "SHIPTRACK_SMS_JSONL_FILE",
    };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        unsetenv(keys[i]);
    log_setup("error", "text", NULL);
}

/* Temporary directories made by this test (each test is its own process);
 * removed by the suite's fini. */
static char tmp_dirs[8][64];
static int n_tmp_dirs;

/* mkdtemp() on tmpl and remember it for cleanup; returns tmpl. */
static char *make_tmp_dir(char *tmpl)
{
    cr_assert_not_null(mkdtemp(tmpl), "mkdtemp %s", tmpl);
    if (n_tmp_dirs < 8)
        snprintf(tmp_dirs[n_tmp_dirs++], sizeof(tmp_dirs[0]), "%s", tmpl);
    return tmpl;
}

/* nftw callback: remove one entry (children first). */
static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove the test's temporary directories. */
static void cleanup(void)
{
    for (int i = 0; i < n_tmp_dirs; i++)
        nftw(tmp_dirs[i], remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(sms, .init = quiet, .fini = cleanup, .timeout = 60);

/* ---- on data alone ---- */

Test(sms, build_request)
{
    struct sms_message m = { .to = "+33612345678", .body = "Colis arrivé & dédouané: 100% ok" };
    struct sms_request req;
    char err[256];

    cr_assert_eq(sms_build(&m, "https://api.twilio.com/", "AC0123456789abcdef", "+15005550000",
                           &req, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_str_eq(req.url,
                     "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef/Messages.json");
    cr_expect_str_eq(req.body, "To=%2B33612345678&From=%2B15005550000&Body=Colis%20arriv%C3%A9"
                               "%20%26%20d%C3%A9douan%C3%A9%3A%20100%25%20ok");
    cr_expect_eq(req.body_len, strlen(req.body));
}

Test(sms, build_refuses_bad_input)
{
    struct sms_request req;
    char err[256], big[4 * SMS_BODY_MAX];
    struct sms_message m = { .to = "0612345678", .body = "hi" };

    cr_expect_eq(sms_build(&m, "https://api.twilio.com", "AC1", "+15005550000", &req, err,
                           sizeof(err)), ST_PERMANENT);
    m.to = "+3361234567&Body=x";
    cr_expect_eq(sms_build(&m, "https://api.twilio.com", "AC1", "+15005550000", &req, err,
                           sizeof(err)), ST_PERMANENT);
    m.to = "+33612345678";
    m.body = "";
    cr_expect_eq(sms_build(&m, "https://api.twilio.com", "AC1", "+15005550000", &req, err,
                           sizeof(err)), ST_PERMANENT);
    m.body = "\xC3\x28";
    cr_expect_eq(sms_build(&m, "https://api.twilio.com", "AC1", "+15005550000", &req, err,
                           sizeof(err)), ST_PERMANENT);
    memset(big, 'x', SMS_BODY_MAX + 1);
    big[SMS_BODY_MAX + 1] = '\0';
    m.body = big;
    cr_expect_eq(sms_build(&m, "https://api.twilio.com", "AC1", "+15005550000", &req, err,
                           sizeof(err)), ST_PERMANENT);
    m.body = "hi";
    cr_expect_eq(sms_build(&m, "https://api.twilio.com", "AC/../x", "+15005550000", &req, err,
                           sizeof(err)), ST_CONFIG);
    cr_expect_eq(sms_build(&m, "https://api.twilio.com", "AC1", "Too Long Sender", &req, err,
                           sizeof(err)), ST_CONFIG);
    cr_expect_eq(sms_build(&m, "ftp://x", "AC1", "+15005550000", &req, err, sizeof(err)), ST_CONFIG);
    cr_expect_eq(sms_build(&m, "https://api.twilio.com", "AC1", "ShopName", &req, err, sizeof(err)),
                 ST_OK, "%s", err);
}

Test(sms, parse_answers)
{
    static const struct {
        long status;
        const char *body;
        enum st_err want;
        enum channel_flag flag;
        int code;
    } cases[] = {
        { 201, "{\"sid\":\"SM0123456789abcdef0123456789abcdef\",\"status\":\"queued\","
               "\"error_code\":null}", ST_OK, CHANNEL_FLAG_NONE, 0 },
        { 429, "{\"code\":20429,\"message\":\"Too Many Requests\",\"status\":429}", ST_RETRY,
          CHANNEL_FLAG_NONE, 20429 },
        { 500, "<html>oops</html>", ST_RETRY, CHANNEL_FLAG_NONE, 0 },
        { 503, "", ST_RETRY, CHANNEL_FLAG_NONE, 0 },
        { 400, "{\"code\":21211,\"message\":\"The 'To' number is not a valid phone number.\","
               "\"status\":400}", ST_PERMANENT, CHANNEL_FLAG_INVALID_NUMBER, 21211 },
        { 400, "{\"code\":21610,\"message\":\"Attempt to send to unsubscribed recipient\","
               "\"status\":400}", ST_PERMANENT, CHANNEL_FLAG_OPTED_OUT, 21610 },
        { 400, "{\"code\":21602,\"message\":\"Message body is required.\"}", ST_PERMANENT,
          CHANNEL_FLAG_NONE, 21602 },
        { 401, "{\"code\":20003,\"message\":\"Authenticate\"}", ST_CONFIG, CHANNEL_FLAG_NONE,
          20003 },
        { 404, "{\"code\":20404,\"message\":\"Not found\"}", ST_CONFIG, CHANNEL_FLAG_NONE, 20404 },
        { 400, "not json", ST_PERMANENT, CHANNEL_FLAG_NONE, 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct channel_result res;

        memset(&res, 0, sizeof(res));
        cr_expect_eq(sms_parse_response(cases[i].status, cases[i].body, strlen(cases[i].body), &res),
                     cases[i].want, "case %zu", i);
        cr_expect_eq(res.err, cases[i].want, "case %zu", i);
        cr_expect_eq(res.flag, cases[i].flag, "case %zu flag %s", i, channel_flag_name(res.flag));
        cr_expect_eq(res.provider_code, cases[i].code, "case %zu code %d", i, res.provider_code);
        cr_expect_eq(res.code, (int)cases[i].status);
        if (cases[i].want == ST_OK) {
            cr_expect_str_eq(res.id, "SM0123456789abcdef0123456789abcdef");
            cr_expect_str_eq(res.status, "queued");
        } else {
            cr_expect_neq(res.errmsg[0], '\0', "case %zu has no reason", i);
        }
    }
}

Test(sms, measure_segments)
{
    struct sms_measure m;
    char s[400];

    cr_assert(sms_measure_body("Hello @ £ é", &m));
    cr_expect_not(m.ucs2);
    cr_expect_eq(m.units, 11);
    cr_expect_eq(m.segments, 1);
    cr_assert(sms_measure_body("Price: 5€ [ok]", &m)); /* €, [ and ] take two septets */
    cr_expect_not(m.ucs2);
    cr_expect_eq(m.units, 17);
    memset(s, 'a', 160);
    s[160] = '\0';
    cr_assert(sms_measure_body(s, &m));
    cr_expect_eq(m.segments, 1);
    s[160] = 'a';
    s[161] = '\0';
    cr_assert(sms_measure_body(s, &m));
    cr_expect_eq(m.segments, 2);
    cr_assert(sms_measure_body("Przesyłka", &m)); /* ł is not GSM-7 */
    cr_expect(m.ucs2);
    cr_expect_eq(m.units, 9);
    cr_assert(sms_measure_body("📦", &m)); /* outside the BMP: a surrogate pair */
    cr_expect_eq(m.units, 2);
    cr_expect_not(sms_measure_body("\xC3\x28", &m));
}

/* ---- a Twilio-shaped server in this process ---- */

struct fake {
    struct MHD_Daemon *d;
    int port;
    int requests;
    int connections;
    char path[256];
    char method[16];
    char auth[256];
    char ctype[128];
    char body[4096];
};

struct upload {
    char buf[4096];
    size_t len;
};

/* Count TCP connections (keep-alive check). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct fake *f = cls;

    (void)c;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        __atomic_add_fetch(&f->connections, 1, __ATOMIC_SEQ_CST);
}

/* Queue a JSON answer. */
static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *json,
                              const char *retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(json), (void *)json,
                                                             MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after != NULL)
        MHD_add_response_header(r, "Retry-After", retry_after);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    struct fake *f = cls;
    struct upload *u = *con_cls;
    const char *h;

    (void)version;
    if (u == NULL) {
        u = calloc(1, sizeof(*u));
        if (u == NULL)
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        if (n > sizeof(u->buf) - 1 - u->len)
            n = sizeof(u->buf) - 1 - u->len;
        memcpy(u->buf + u->len, upload_data, n);
        u->len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    f->requests++;
    snprintf(f->path, sizeof(f->path), "%s", url);
    snprintf(f->method, sizeof(f->method), "%s", method);
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    snprintf(f->auth, sizeof(f->auth), "%s", h ? h : "");
    h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    snprintf(f->ctype, sizeof(f->ctype), "%s", h ? h : "");
    snprintf(f->body, sizeof(f->body), "%s", u->buf);
    free(u);
    *con_cls = NULL;

    /* "ACtest123:tok-secret" */
    if (strcmp(f->auth, "Basic QUN0ZXN0MTIzOnRvay1zZWNyZXQ=") != 0)
        return answer(c, 401, "{\"code\":20003,\"message\":\"Authenticate\",\"status\":401}", NULL);
    if (strstr(f->body, "To=%2B15005550429"))
        return answer(c, 429, "{\"code\":20429,\"message\":\"Too Many Requests\",\"status\":429}",
                      "7");
    if (strstr(f->body, "To=%2B15005550500"))
        return answer(c, 500, "{\"code\":20500,\"message\":\"Internal Server Error\"}", NULL);
    if (strstr(f->body, "To=%2B15005551211"))
        return answer(c, 400,
                      "{\"code\":21211,\"message\":\"The 'To' number +15005551211 is not a valid "
                      "phone number.\",\"more_info\":\"https://www.twilio.com/docs/errors/21211\","
                      "\"status\":400}", NULL);
    if (strstr(f->body, "To=%2B15005551610"))
        return answer(c, 400,
                      "{\"code\":21610,\"message\":\"Attempt to send to unsubscribed recipient\","
                      "\"more_info\":\"https://www.twilio.com/docs/errors/21610\",\"status\":400}",
                      NULL);
    return answer(c, 201,
                  "{\"sid\":\"SM00000000000000000000000000000001\",\"status\":\"queued\","
                  "\"error_code\":null,\"error_message\":null,\"num_segments\":\"1\"}", NULL);
}

static void fake_start(struct fake *f)
{
    const union MHD_DaemonInfo *info;

    memset(f, 0, sizeof(*f));
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, f,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, f,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    cr_assert_not_null(f->d);
    info = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert_not_null(info);
    f->port = info->port;
}

/* Open the SMS channel against the fake provider. */
static struct channel *open_provider(const struct fake *f, enum st_err want)
{
    struct st_config cfg;
    struct channel *ch = NULL;
    char err[256], url[64];
    enum st_err rc;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->port);
    setenv("SHIPTRACK_SMS_URL", url, 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    rc = sms_channel.ops->open(&cfg, &ch, err, sizeof(err));
    config_free(&cfg);
    cr_assert_eq(rc, want, "open: %s", err);
    return ch;
}

Test(sms, provider_answers_sorted)
{
    static const struct {
        const char *to;
        enum st_err want;
        enum channel_flag flag;
        int http;
    } cases[] = {
        { "+15005550006", ST_OK, CHANNEL_FLAG_NONE, 201 },
        { "+15005550429", ST_RETRY, CHANNEL_FLAG_NONE, 429 },
        { "+15005550500", ST_RETRY, CHANNEL_FLAG_NONE, 500 },
        { "+15005551211", ST_PERMANENT, CHANNEL_FLAG_INVALID_NUMBER, 400 },
        { "+15005551610", ST_PERMANENT, CHANNEL_FLAG_OPTED_OUT, 400 },
        { "not-a-number", ST_PERMANENT, CHANNEL_FLAG_INVALID_NUMBER, 0 },
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    struct fake f;
    struct channel *ch;
    struct channel_msg msgs[N];
    struct channel_result res[N];
    char err[256];

    fake_start(&f);
    setenv("SHIPTRACK_SMS_ACCOUNT_SID", "ACtest123", 1);
    setenv("SHIPTRACK_SMS_AUTH_TOKEN", "tok-secret", 1);
    setenv("SHIPTRACK_SMS_FROM", "+15005550000", 1);
    ch = open_provider(&f, ST_OK);
    for (size_t i = 0; i < N; i++) {
        msgs[i].shipment_id = (long long)i + 1;
        msgs[i].u.sms.to = cases[i].to;
        msgs[i].u.sms.body = "Votre colis est en cours de livraison aujourd'hui. Suivi: https://s.example/t/1";
    }
    cr_assert_eq(sms_channel.ops->send(ch, msgs, N, res, err, sizeof(err)), ST_OK);
    for (size_t i = 0; i < N; i++) {
        cr_expect_eq(res[i].err, cases[i].want, "%s: %s (%s)", cases[i].to, st_err_name(res[i].err),
                     res[i].errmsg);
        cr_expect_eq(res[i].flag, cases[i].flag, "%s: flag %s", cases[i].to,
                     channel_flag_name(res[i].flag));
        cr_expect_eq(res[i].code, cases[i].http, "%s: HTTP %d", cases[i].to, res[i].code);
    }
    cr_expect_str_eq(res[0].id, "SM00000000000000000000000000000001");
    cr_expect_str_eq(res[0].status, "queued");
    cr_expect_eq(res[1].retry_after_s, 7);
    cr_expect(strstr(res[0].errmsg, "tok-secret") == NULL);
    /* the last request as the server saw it */
    cr_expect_eq(f.requests, 5, "the malformed number must not reach the provider");
    cr_expect_str_eq(f.method, "POST");
    cr_expect_str_eq(f.path, "/2010-04-01/Accounts/ACtest123/Messages.json");
    cr_expect(strncmp(f.ctype, "application/x-www-form-urlencoded", 33) == 0, "%s", f.ctype);
    cr_expect(strstr(f.body, "From=%2B15005550000") != NULL, "%s", f.body);
    cr_expect(strstr(f.body, "Body=Votre%20colis") != NULL, "%s", f.body);
    cr_expect_eq(f.connections, 1, "requests should share one keep-alive connection (%d)",
                 f.connections);
    sms_channel.ops->close(ch);
    MHD_stop_daemon(f.d);
}

Test(sms, bad_credentials_are_config)
{
    struct fake f;
    struct channel *ch;
    struct channel_msg msg = { .shipment_id = 1, .u.sms = { "+15005550006", "hi" } };
    struct channel_result res;
    char err[256];

    fake_start(&f);
    setenv("SHIPTRACK_SMS_ACCOUNT_SID", "ACtest123", 1);
    setenv("SHIPTRACK_SMS_AUTH_TOKEN", "wrong", 1);
    setenv("SHIPTRACK_SMS_FROM", "+15005550000", 1);
    ch = open_provider(&f, ST_OK);
    cr_assert_eq(sms_channel.ops->send(ch, &msg, 1, &res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res.err, ST_CONFIG, "%s", res.errmsg);
    cr_expect(strstr(res.errmsg, "wrong") == NULL, "token leaked: %s", res.errmsg);
    sms_channel.ops->close(ch);
    MHD_stop_daemon(f.d);
}

Test(sms, connection_refused_is_retry)
{
    struct fake f;
    struct channel *ch;
    struct channel_msg msg = { .shipment_id = 1, .u.sms = { "+15005550006", "hi" } };
    struct channel_result res;
    char err[256];

    fake_start(&f);
    setenv("SHIPTRACK_SMS_ACCOUNT_SID", "ACtest123", 1);
    setenv("SHIPTRACK_SMS_AUTH_TOKEN", "tok-secret", 1);
    setenv("SHIPTRACK_SMS_FROM", "+15005550000", 1);
    ch = open_provider(&f, ST_OK);
    MHD_stop_daemon(f.d); /* nothing listens any more */
    cr_assert_eq(sms_channel.ops->send(ch, &msg, 1, &res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res.err, ST_RETRY, "%s: %s", st_err_name(res.err), res.errmsg);
    sms_channel.ops->close(ch);
}

Test(sms, provider_config_errors)
{
    struct st_config cfg;
    struct channel *ch;
    char err[256];

    setenv("SHIPTRACK_SMS_ACCOUNT_SID", "ACtest123", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK);
    cr_expect_eq(sms_channel.ops->open(&cfg, &ch, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "SHIPTRACK_SMS_AUTH_TOKEN") != NULL, "%s", err);
    config_free(&cfg);
    setenv("SHIPTRACK_SMS_AUTH_TOKEN", "t", 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK);
    cr_expect_eq(sms_channel.ops->open(&cfg, &ch, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "SHIPTRACK_SMS_FROM") != NULL, "%s", err);
    config_free(&cfg);
}

/* ---- JSON lines without a provider ---- */

/* Open the channel in JSON-lines mode writing to path. */
static struct channel *open_jsonl(const char *path)
{
    struct st_config cfg;
    struct channel *ch = NULL;
    char err[256];

    setenv("SHIPTRACK_SMS_JSONL_FILE", path, 1);
    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(sms_channel.ops->open(&cfg, &ch, err, sizeof(err)), ST_OK, "%s", err);
    config_free(&cfg);
    return ch;
}

Test(sms, jsonl_fallback)
{
    char dir[] = "/tmp/st-sms-XXXXXX", path[256], line[8192];
    struct channel *ch;
    struct channel_msg msgs[3] = {
        { .shipment_id = 11, .u.sms = { "+33612345678", "Votre colis est arrivé. Suivi: https://s.example/t/1" } },
        { .shipment_id = 12, .u.sms = { "+33612345678\n", "injected" } },
        { .shipment_id = 13, .u.sms = { "+4915112345678", "Przesyłka \"dotarła\"\nline two" } },
    };
    struct channel_result res[3];
    char err[256];
    FILE *f;
    int lines = 0;

    make_tmp_dir(dir);
    snprintf(path, sizeof(path), "%s/sms.jsonl", dir);
    ch = open_jsonl(path);
    cr_assert_eq(sms_channel.ops->send(ch, msgs, 3, res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res[0].err, ST_OK, "%s", res[0].errmsg);
    cr_expect_eq(res[1].err, ST_PERMANENT);
    cr_expect_eq(res[1].flag, CHANNEL_FLAG_INVALID_NUMBER);
    cr_expect_eq(res[2].err, ST_OK, "%s", res[2].errmsg);
    cr_expect_str_neq(res[0].id, res[2].id);
    cr_expect_str_eq(res[0].where, path);
    sms_channel.ops->close(ch);

    f = fopen(path, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);

        cr_assert_not_null(o, "line %d is not JSON: %s", lines, jerr.text);
        if (lines == 1) {
            cr_expect_str_eq(json_string_value(json_object_get(o, "to")), "+4915112345678");
            cr_expect_str_eq(json_string_value(json_object_get(o, "body")),
                             "Przesyłka \"dotarła\"\nline two");
            cr_expect_str_eq(json_string_value(json_object_get(o, "encoding")), "ucs2");
            cr_expect_eq(json_integer_value(json_object_get(o, "segments")), 1);
            cr_expect_eq(json_integer_value(json_object_get(o, "shipment_id")), 13);
            cr_expect_str_eq(json_string_value(json_object_get(o, "id")), res[2].id);
        }
        json_decref(o);
        lines++;
    }
    fclose(f);
    cr_expect_eq(lines, 2);
}

/* Four processes appending 50 lines each: 200 whole lines, none torn. */
Test(sms, jsonl_concurrent_writers)
{
    char dir[] = "/tmp/st-sms-XXXXXX", path[256], line[8192];
    pid_t pids[4];
    FILE *f;
    int lines = 0, status;

    make_tmp_dir(dir);
    snprintf(path, sizeof(path), "%s/sms.jsonl", dir);
    for (int p = 0; p < 4; p++) {
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0) {
            struct st_config cfg;
            struct channel *ch = NULL;
            char err[256], body[1200];
            struct channel_msg msg = { .shipment_id = p, .u.sms = { "+33612345678", body } };
            struct channel_result res;
            int bad = 0;

            memset(body, 'a' + p, sizeof(body) - 1);
            body[sizeof(body) - 1] = '\0';
            setenv("SHIPTRACK_SMS_JSONL_FILE", path, 1);
            if (config_load(&cfg, err, sizeof(err)) != ST_OK ||
                sms_channel.ops->open(&cfg, &ch, err, sizeof(err)) != ST_OK)
                _exit(2);
            config_free(&cfg);
            for (int i = 0; i < 50; i++)
                if (sms_channel.ops->send(ch, &msg, 1, &res, err, sizeof(err)) != ST_OK ||
                    res.err != ST_OK)
                    bad++;
            sms_channel.ops->close(ch);
            _exit(bad ? 1 : 0);
        }
    }
    for (int p = 0; p < 4; p++) {
        cr_assert_eq(waitpid(pids[p], &status, 0), pids[p]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed", p);
    }
    f = fopen(path, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        json_t *o = json_loads(line, 0, NULL);

        cr_assert_not_null(o, "torn line %d", lines);
        cr_expect_eq(strlen(json_string_value(json_object_get(o, "body"))), 1199);
        json_decref(o);
        lines++;
    }
    fclose(f);
    cr_expect_eq(lines, 200);
}

/* The registry lists both channels once, each with its ops. */
Test(sms, channel_registry)
{
    size_t n = 0;

    cr_expect_eq(channel_find("email"), &email_channel);
    cr_expect_eq(channel_find("sms"), &sms_channel);
    cr_expect_null(channel_find("fax"));
    cr_expect_null(channel_find(NULL));
    for (; channel_defs[n] != NULL; n++) {
        cr_expect_not_null(channel_defs[n]->ops->open);
        cr_expect_not_null(channel_defs[n]->ops->send);
        cr_expect_not_null(channel_defs[n]->ops->close);
        cr_expect_gt(channel_defs[n]->batch_max, 0);
    }
    cr_expect_eq(n, 2);
    cr_expect_str_eq(channel_flag_name(CHANNEL_FLAG_OPTED_OUT), "opted_out");
    cr_expect_str_eq(channel_flag_name(CHANNEL_FLAG_INVALID_NUMBER), "invalid_number");
}
