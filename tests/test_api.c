/*
 * test_api.c - the api role against a real PostgreSQL (one database per
 * test, seeded from tests/fixtures/api/seed.sql) over real HTTP (libcurl to
 * the libmicrohttpd server on an ephemeral loopback port): lookups and the
 * shipment detail, stuck filters, registration, resend through the real
 * notifier pass, tokens and roles (401/403), bad parameters (400), unknown
 * paths (404), oversized bodies (413), injection attempts, HTML escaping
 * in pages, one-click unsubscribe with good and bad tokens, the Prometheus
 * page and readiness with the database down.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <ftw.h>
#include <jansson.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "notifier.h"
#include "testdb.h"
#include "testutil.h"
#include "unsubscribe.h"

#define AGENT "agent-token-0123456789abcdef"
#define OPS "ops-token-0123456789abcdef"
#define ADMIN "admin-token-0123456789abcdef"

static struct testdb db;
static struct st_config cfg;
static struct api *api;
static char base[64];

/* One HTTP answer. */
struct resp {
    long status;
    char *body;            /* heap, NUL-terminated */
    size_t len;
    char headers[8192];    /* raw response headers, capped */
    size_t hlen;
};

static size_t on_body(char *d, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t add = size * n;
    char *p = realloc(r->body, r->len + add + 1);

    cr_assert_not_null(p);
    memcpy(p + r->len, d, add);
    r->len += add;
    p[r->len] = '\0';
    r->body = p;
    return add;
}

static size_t on_header(char *d, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t add = size * n, room = sizeof(r->headers) - 1 - r->hlen;

    memcpy(r->headers + r->hlen, d, add < room ? add : room);
    r->hlen += add < room ? add : room;
    r->headers[r->hlen] = '\0';
    return add;
}

/* method path (relative to the server) with an optional bearer token, extra
 * header lines (NULL-terminated, may be NULL) and body (NULL: none). */
static void http(const char *method, const char *path, const char *token,
                 const char *const *extra, const char *body, struct resp *r)
{
    struct curl_slist *h = NULL;
    char url[4096], auth[512];
    CURL *c = curl_easy_init();
    CURLcode cc;

    cr_assert_not_null(c);
    memset(r, 0, sizeof(*r));
    r->body = calloc(1, 1);
    snprintf(url, sizeof(url), "%s%s", base, path);
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    for (int i = 0; extra != NULL && extra[i] != NULL; i++)
        h = curl_slist_append(h, extra[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    cc = curl_easy_perform(c);
    cr_assert_eq(cc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* The "error.code" of a JSON error body, "" when it is not one. */
static const char *error_code(const struct resp *r, char *buf, size_t cap)
{
    json_t *j = json_loads(r->body, 0, NULL);
    const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));

    snprintf(buf, cap, "%s", code != NULL ? code : "");
    if (json_string_value(json_object_get(json_object_get(j, "error"), "message")) == NULL)
        buf[0] = '\0'; /* every error carries a message too */
    json_decref(j);
    return buf;
}

/* Expect status and, for errors, a JSON error with that code. */
static void expect_error(const char *method, const char *path, const char *token,
                         const char *body, long status, const char *code)
{
    struct resp r;
    char got[64];

    http(method, path, token, NULL, body, &r);
    cr_expect_eq(r.status, status, "%s %s: status %ld, want %ld (%s)", method, path, r.status,
                 status, r.body);
    cr_expect_str_eq(error_code(&r, got, sizeof(got)), code, "%s %s: %s", method, path, r.body);
    resp_free(&r);
}

static void start_api(void)
{
    char err[512];

    cr_assert_eq(config_load(&cfg, err, sizeof(err)), ST_OK, "%s", err);
    cr_assert_eq(api_start(&cfg, NULL, &api, err, sizeof(err)), ST_OK, "%s", err);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", api_port(api));
}

static void setup(void)
{
    char path[512];
    char *seed;

    log_setup("error", "text", NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tdb_create(&db, true);
    seed = tu_read_file(tu_fixture_path(path, sizeof(path), "api/seed.sql"), NULL);
    tdb_exec(db.conn, seed);
    free(seed);
    setenv("SHIPTRACK_DATABASE_URL", db.url, 1);
    setenv("SHIPTRACK_API_LISTEN", "127.0.0.1:0", 1);
    setenv("SHIPTRACK_API_TOKENS", "agent:" AGENT ",ops:" OPS ",admin:" ADMIN, 1);
    setenv("SHIPTRACK_API_MAX_BODY", "2KiB", 1);
    setenv("SHIPTRACK_API_THREADS", "2", 1);
    setenv("SHIPTRACK_PUBLIC_URL", "https://track.shop.test", 1);
    setenv("SHIPTRACK_UNSUBSCRIBE_SECRET", "test-secret-0123456789", 1);
    setenv("SHIPTRACK_TEMPLATES_DIR", ST_SOURCE_DIR "/templates", 1);
    setenv("SHIPTRACK_SMTP_FROM", "Shop <notify@shop.test>", 1);
    unsetenv("SHIPTRACK_SMTP_HOST");
    start_api();
}

static void teardown(void)
{
    api_stop(api);
    api = NULL;
    config_free(&cfg);
    tdb_drop(&db);
    curl_global_cleanup();
}

TestSuite(api, .init = setup, .fini = teardown, .timeout = 60);

Test(api, health_and_readiness)
{
    struct resp r;

    http("GET", "/healthz", NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, "\"ok\"") != NULL, "%s", r.body);
    resp_free(&r);
    http("GET", "/readyz", NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.body, "\"database\":\"ok\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "\"kafka\":\"not configured\"") != NULL, "%s", r.body);
    resp_free(&r);
}

Test(api, readiness_fails_while_the_database_is_unreachable)
{
    struct resp r;

    api_stop(api);
    config_free(&cfg);
    /* a port nothing listens on: same server, wrong address */
    setenv("SHIPTRACK_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere", 1);
    start_api();
    http("GET", "/readyz", NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 503, "%s", r.body);
    cr_expect(strstr(r.body, "\"database\":\"unreachable\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "127.0.0.1:1") == NULL, "no connection details leak: %s", r.body);
    resp_free(&r);
    http("GET", "/healthz", NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 200, "the process is up all the same");
    resp_free(&r);
    expect_error("GET", "/v1/shipments/1", AGENT, NULL, 503, "unavailable");
}

Test(api, tokens_and_roles)
{
    struct resp r;

    http("GET", "/v1/shipments/1", NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 401);
    cr_expect(strstr(r.headers, "WWW-Authenticate: Bearer") != NULL, "%s", r.headers);
    resp_free(&r);
    expect_error("GET", "/v1/shipments/1", "agent-token-0123456789abcdeX", NULL, 401,
                 "unauthorized");
    expect_error("GET", "/v1/shipments/1", AGENT "x", NULL, 401, "unauthorized");
    expect_error("GET", "/v1/stuck", AGENT, NULL, 403, "forbidden");
    expect_error("GET", "/metrics", AGENT, NULL, 403, "forbidden");
    expect_error("GET", "/v1/shipments/1", OPS, NULL, 403, "forbidden");
    expect_error("POST", "/v1/shipments", AGENT, "{}", 403, "forbidden");
    expect_error("POST", "/v1/shipments", OPS, "{}", 403, "forbidden");
    expect_error("POST", "/v1/notifications/1/resend", OPS, "", 403, "forbidden");
    {
        const char *basic[] = { "Authorization: Basic YWdlbnQ6eA==", NULL };

        http("GET", "/v1/shipments/1", NULL, basic, NULL, &r);
        cr_expect_eq(r.status, 401, "only bearer tokens count");
        resp_free(&r);
    }
    /* admin may read everything */
    http("GET", "/v1/shipments/1", ADMIN, NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    resp_free(&r);
    http("GET", "/v1/stuck", ADMIN, NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    resp_free(&r);
    http("GET", "/metrics", OPS, NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    resp_free(&r);
}

Test(api, refuses_to_start_without_good_tokens)
{
    static const char *const bad[] = { "", "agent", "boss:0123456789abcdef0", "agent:short",
                                       "ops:0123456789abcdef0,agent:has space 0123456789" };
    struct st_config c2;
    struct api *a = NULL;
    char err[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (bad[i][0] == '\0')
            unsetenv("SHIPTRACK_API_TOKENS");
        else
            setenv("SHIPTRACK_API_TOKENS", bad[i], 1);
        cr_assert_eq(config_load(&c2, err, sizeof(err)), ST_OK, "%s", err);
        cr_expect_eq(api_start(&c2, NULL, &a, err, sizeof(err)), ST_CONFIG, "%s accepted", bad[i]);
        cr_expect(strstr(err, "SHIPTRACK_API_TOKENS") != NULL, "%s", err);
        cr_expect(strstr(err, "0123456789") == NULL, "the token is never echoed: %s", err);
        cr_expect_null(a);
        config_free(&c2);
    }
    setenv("SHIPTRACK_API_TOKENS", "agent:" AGENT, 1);
    setenv("SHIPTRACK_API_LISTEN", "127.0.0.1", 1);
    cr_assert_eq(config_load(&c2, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(api_start(&c2, NULL, &a, err, sizeof(err)), ST_CONFIG);
    cr_expect(strstr(err, "SHIPTRACK_API_LISTEN") != NULL, "%s", err);
    config_free(&c2);
}

Test(api, looks_shipments_up)
{
    struct resp r;
    json_t *j, *s;

    http("GET", "/v1/shipments?tracking_number=3318-810%20025", AGENT, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    j = json_loads(r.body, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(j, "shipments")), 1, "%s", r.body);
    s = json_array_get(json_object_get(j, "shipments"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(s, "carrier")), "dhl");
    cr_expect_str_eq(json_string_value(json_object_get(s, "status")), "held");
    json_decref(j);
    resp_free(&r);
    http("GET", "/v1/shipments?order_ref=ORD-2002", AGENT, NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, "1Z999AA10123456784") != NULL, "%s", r.body);
    resp_free(&r);
    http("GET", "/v1/shipments?order_ref=ORD-404", AGENT, NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "{\"shipments\":[]}");
    resp_free(&r);
    expect_error("GET", "/v1/shipments", AGENT, NULL, 400, "bad_request");
    expect_error("GET", "/v1/shipments?tracking_number=1&order_ref=2", AGENT, NULL, 400,
                 "bad_request");
    expect_error("GET", "/v1/shipments?tracking_number=", AGENT, NULL, 400, "bad_request");
    expect_error("GET", "/v1/shipments?order_ref=a%0Ab", AGENT, NULL, 400, "bad_request");
}

Test(api, shipment_detail_has_the_whole_story)
{
    struct resp r;
    json_t *j, *hold, *n;

    http("GET", "/v1/shipments/1", AGENT, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.headers, "Content-Type: application/json") != NULL, "%s", r.headers);
    j = json_loads(r.body, 0, NULL);
    cr_assert_not_null(j);
    cr_expect_eq(json_array_size(json_object_get(j, "events")), 3);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j, "events"),
                                                                      2), "code")), "CD");
    hold = json_array_get(json_object_get(j, "customs_holds"), 0);
    cr_assert_not_null(hold, "%s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(hold, "reason")), "documents_required");
    cr_expect_str_eq(json_string_value(json_object_get(hold, "actor")), "recipient");
    cr_expect_eq(json_array_size(json_object_get(hold, "transitions")), 1);
    cr_expect_eq(json_array_size(json_object_get(j, "edd_history")), 2);
    cr_expect_eq(json_array_size(json_object_get(j, "notifications")), 3);
    n = json_array_get(json_object_get(j, "notifications"), 2);
    cr_expect_str_eq(json_string_value(json_object_get(n, "status")), "deferred");
    cr_expect_str_eq(json_string_value(json_object_get(n, "reason")), "quiet_hours");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "recipient"), "email")),
                     "lena.berger@example.com");
    cr_expect_eq(json_array_size(json_object_get(j, "alerts")), 1);
    json_decref(j);
    resp_free(&r);
    expect_error("GET", "/v1/shipments/999", AGENT, NULL, 404, "not_found");
    expect_error("GET", "/v1/shipments/abc", AGENT, NULL, 400, "bad_request");
    expect_error("GET", "/v1/shipments/0", AGENT, NULL, 400, "bad_request");
    expect_error("GET", "/v1/shipments/1%3BDROP%20TABLE%20shipments", AGENT, NULL, 400,
                 "bad_request");
    expect_error("GET", "/v1/shipments/99999999999999999999", AGENT, NULL, 400, "bad_request");
}

Test(api, injection_attempts_change_nothing)
{
    static const char *const paths[] = {
        "/v1/shipments?tracking_number=%27%20OR%201%3D1%20--",
        "/v1/shipments?order_ref=x%27%3B%20DROP%20TABLE%20shipments%3B--",
        "/v1/shipments?order_ref=%25",
    };
    struct resp r;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        http("GET", paths[i], AGENT, NULL, NULL, &r);
        cr_expect_eq(r.status, 200, "%s: %s", paths[i], r.body);
        cr_expect_str_eq(r.body, "{\"shipments\":[]}", "%s", paths[i]);
        resp_free(&r);
    }
    expect_error("GET", "/v1/stuck?carrier=dhl%27%20OR%20%271%27%3D%271", OPS, NULL, 400,
                 "bad_request");
    expect_error("GET", "/v1/stuck?status=held%3B--", OPS, NULL, 400, "bad_request");
    expect_error("GET", "/v1/stuck?destination=FR%27--", OPS, NULL, 400, "bad_request");
    expect_error("GET", "/v1/stuck?kind=stuck%20OR%201%3D1", OPS, NULL, 400, "bad_request");
    expect_error("GET", "/v1/stuck?min_age=1d%3Bselect", OPS, NULL, 400, "bad_request");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments"), 2);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM alerts"), 2);
}

Test(api, stuck_list_filters_and_has_no_personal_data)
{
    static const struct {
        const char *query;
        size_t want;
    } cases[] = {
        { "", 2 }, { "?kind=stuck", 1 }, { "?carrier=dhl", 1 }, { "?destination=FR", 1 },
        { "?status=held", 1 }, { "?min_age=5d", 1 }, { "?min_age=7d", 0 },
        { "?carrier=ups&kind=customs_hold_long", 0 }, { "?limit=1", 1 },
    };
    char path[128];
    struct resp r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j;

        snprintf(path, sizeof(path), "/v1/stuck%s", cases[i].query);
        http("GET", path, OPS, NULL, NULL, &r);
        cr_assert_eq(r.status, 200, "%s: %s", path, r.body);
        j = json_loads(r.body, 0, NULL);
        cr_expect_eq(json_array_size(json_object_get(j, "stuck")), cases[i].want, "%s: %s", path,
                     r.body);
        cr_expect(strchr(r.body, '@') == NULL && strstr(r.body, "+49") == NULL,
                  "no personal data: %s", r.body);
        json_decref(j);
        resp_free(&r);
    }
    http("GET", "/v1/stuck?kind=stuck", OPS, NULL, NULL, &r);
    cr_expect(strstr(r.body, "\"tracking_number\":\"1Z999AA10123456784\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "\"age_s\":") != NULL, "%s", r.body);
    resp_free(&r);
    expect_error("GET", "/v1/stuck?limit=0", OPS, NULL, 400, "bad_request");
    expect_error("GET", "/v1/stuck?limit=501", OPS, NULL, 400, "bad_request");
    expect_error("GET", "/v1/stuck?min_age=soon", OPS, NULL, 400, "bad_request");
}

Test(api, registers_shipments)
{
    struct resp r;

    http("POST", "/v1/shipments", ADMIN, NULL,
         "{\"tracking_number\":\"RR123456785FR\",\"email\":\"new@example.org\",\"locale\":\"fr\","
         "\"time_zone\":\"Europe/Paris\",\"destination\":\"FR\",\"order_ref\":\"ORD-3\"}", &r);
    cr_expect_eq(r.status, 201, "%s", r.body);
    cr_expect(strstr(r.body, "\"carrier\":\"laposte\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "\"existed\":false") != NULL, "%s", r.body);
    resp_free(&r);
    http("POST", "/v1/shipments", ADMIN, NULL, "{\"tracking_number\":\"RR123456785FR\"}", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.body, "\"existed\":true") != NULL, "%s", r.body);
    resp_free(&r);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments WHERE order_ref = 'ORD-3'"),
                 1);
    http("POST", "/v1/shipments", ADMIN, NULL, "{\"tracking_number\":\"3318810010\"}", &r);
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(r.body, "check digit") != NULL, "the registration's own message: %s",
              r.body);
    resp_free(&r);
    expect_error("POST", "/v1/shipments", ADMIN, "{\"tracking_number\":\"RR1'; DROP TABLE x\"}",
                 400, "invalid");
    expect_error("POST", "/v1/shipments", ADMIN, "{not json", 400, "bad_request");
    expect_error("POST", "/v1/shipments", ADMIN, "[1]", 400, "bad_request");
    expect_error("POST", "/v1/shipments", ADMIN, "{\"tracking_number\":5}", 400, "bad_request");
    expect_error("POST", "/v1/shipments", ADMIN, "{\"colour\":\"red\"}", 400, "bad_request");
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments"), 3);
}

Test(api, oversized_bodies_get_413)
{
    char *big = malloc(4096);
    const char *chunked[] = { "Transfer-Encoding: chunked", NULL };
    struct resp r;

    cr_assert_not_null(big);
    memset(big, 'a', 4095);
    big[4095] = '\0';
    memcpy(big, "{\"order_ref\":\"", 14);
    expect_error("POST", "/v1/shipments", ADMIN, big, 413, "too_large");
    http("POST", "/v1/shipments", ADMIN, chunked, big, &r); /* no Content-Length to go by */
    cr_expect_eq(r.status, 413, "%s", r.body);
    resp_free(&r);
    free(big);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM shipments"), 2);
}

Test(api, unknown_paths_and_methods)
{
    expect_error("GET", "/v2/shipments", ADMIN, NULL, 404, "not_found");
    expect_error("GET", "/v1/notifications/1/resend", ADMIN, NULL, 404, "not_found");
    expect_error("GET", "/etc/passwd", NULL, NULL, 404, "not_found");
    expect_error("DELETE", "/v1/shipments", ADMIN, NULL, 405, "method_not_allowed");
    expect_error("POST", "/v1/notifications/x/resend", ADMIN, "", 400, "bad_request");
}

Test(api, resend_goes_through_the_notifier_pass)
{
    struct notifier *n = NULL;
    char err[512], tmp[] = "/tmp/st-api-eml.XXXXXX";
    struct st_config ncfg;
    struct resp r;
    int handled = 0;

    http("POST", "/v1/notifications/2/resend", ADMIN, NULL, "", &r);
    cr_expect_eq(r.status, 202, "%s", r.body);
    cr_expect(strstr(r.body, "\"previous_status\":\"sent\"") != NULL, "%s", r.body);
    resp_free(&r);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE id = 2 AND"
                                    " status = 'deferred' AND deferred_until <= now()"
                                    " AND reason LIKE 'resend requested%'"), 1);
    expect_error("POST", "/v1/notifications/404/resend", ADMIN, "", 404, "not_found");
    tdb_exec(db.conn, "UPDATE notifications SET status = 'queued' WHERE id = 1");
    expect_error("POST", "/v1/notifications/1/resend", ADMIN, "", 409, "conflict");

    /* the notifier's own periodic pass sends it again, unchanged code */
    cr_assert_not_null(mkdtemp(tmp));
    setenv("SHIPTRACK_EML_DIR", tmp, 1);
    cr_assert_eq(config_load(&ncfg, err, sizeof(err)), ST_OK, "%s", err);
    tdb_exec(db.conn, "UPDATE notifications SET status = 'sent' WHERE id = 1");
    cr_assert_eq(notifier_new(&ncfg, db.conn, NULL, &n, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(notifier_pass(n, &handled, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(handled, 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM notifications WHERE id = 2 AND"
                                    " status = 'sent' AND sent_at > now() - interval '1 minute'"),
                 1, "%s", tdb_scalar(db.conn, "SELECT status || ' ' || COALESCE(reason, '')"
                                              " FROM notifications WHERE id = 2"));
    notifier_free(n);
    config_free(&ncfg);
    {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
        cr_expect_eq(system(cmd), 0);
    }
}

Test(api, unsubscribe_url_is_signed_and_verified)
{
    char a[512], b[512];

    cr_assert(unsubscribe_url(&cfg, 42, "email", a, sizeof(a)));
    cr_expect(strncmp(a, "https://track.shop.test/unsubscribe?r=42&c=email&t=", 51) == 0, "%s",
              a);
    cr_expect_eq(strlen(a), 51 + 64);
    cr_assert(unsubscribe_url(&cfg, 43, "email", b, sizeof(b)));
    cr_expect_str_neq(a + 51, b + 51);
    cr_expect(unsubscribe_verify(&cfg, 42, "email", a + 51));
    cr_expect(!unsubscribe_verify(&cfg, 43, "email", a + 51), "another recipient");
    cr_expect(!unsubscribe_verify(&cfg, 42, "sms", a + 51), "another channel");
    cr_expect(!unsubscribe_verify(&cfg, 42, "email", "00"), "short");
    cr_expect(!unsubscribe_verify(&cfg, 42, "email", NULL));
}

Test(api, one_click_unsubscribe)
{
    static const char *const form[] = { "Content-Type: application/x-www-form-urlencoded",
                                        NULL };
    char url[512], path[512], bad[512];
    struct resp r;

    cr_assert(unsubscribe_url(&cfg, 1, "email", url, sizeof(url)));
    snprintf(path, sizeof(path), "%s", strstr(url, "/unsubscribe"));
    /* the link in the body: a page with a POST form, nothing changed yet */
    http("GET", path, NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.body, "<form method=\"post\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "One-Click") != NULL, "%s", r.body);
    resp_free(&r);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM preferences"), 0);
    /* a forged or altered token, and a token for another recipient */
    snprintf(bad, sizeof(bad), "%s", path);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
    http("POST", bad, NULL, form, "List-Unsubscribe=One-Click", &r);
    cr_expect_eq(r.status, 403, "%s", r.body);
    cr_expect(strstr(r.body, "lena") == NULL);
    resp_free(&r);
    snprintf(bad, sizeof(bad), "/unsubscribe?r=2&c=email&t=%s", strstr(path, "t=") + 2);
    http("POST", bad, NULL, form, "List-Unsubscribe=One-Click", &r);
    cr_expect_eq(r.status, 403);
    resp_free(&r);
    http("POST", "/unsubscribe?r=1&c=fax&t=abc", NULL, form, "List-Unsubscribe=One-Click", &r);
    cr_expect_eq(r.status, 400);
    resp_free(&r);
    http("POST", path, NULL, form, "List-Unsubscribe=Later", &r);
    cr_expect_eq(r.status, 400);
    resp_free(&r);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM preferences"), 0);
    /* RFC 8058 one-click: 200, no redirect, the opt-out recorded */
    http("POST", path, NULL, form, "List-Unsubscribe=One-Click", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.headers, "Location:") == NULL, "%s", r.headers);
    cr_expect(strstr(r.body, "unsubscribed") != NULL, "%s", r.body);
    resp_free(&r);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM preferences WHERE recipient_id = 1"
                                    " AND channel = 'email' AND NOT consent"
                                    " AND opted_out_at IS NOT NULL"), 1);
    cr_expect_eq(tdb_count(db.conn, "SELECT count(*) FROM preferences"), 1, "only that channel");
    /* again: still 200, the first opt-out time kept */
    http("POST", path, NULL, form, "List-Unsubscribe=One-Click", &r);
    cr_expect_eq(r.status, 200);
    resp_free(&r);
}

Test(api, metrics_are_prometheus_text)
{
    struct poll_stats st;
    char err[512], *line, *save = NULL;
    regex_t re;
    struct resp r;

    memset(&st, 0, sizeof(st));
    poll_stats_observe(&st, POLL_OK, 40);     /* <= 0.05 s */
    poll_stats_observe(&st, POLL_OK, 300);    /* <= 0.5 s */
    poll_stats_observe(&st, POLL_THROTTLED, 90000); /* > 60 s: +Inf only */
    st.events_new = 7;
    cr_assert_eq(poll_stats_flush(db.conn, "host-a:1", "dhl", &st, "open", err, sizeof(err)),
                 ST_OK, "%s", err);
    cr_assert_eq(poll_stats_flush(db.conn, "host-b:2", "dhl", &st, "closed", err, sizeof(err)),
                 ST_OK, "%s", err);
    http("GET", "/metrics", OPS, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.headers, "Content-Type: text/plain; version=0.0.4") != NULL, "%s",
              r.headers);
    cr_assert_eq(regcomp(&re, "^shiptrack_[a-z_]+(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? "
                              "[0-9]+(\\.[0-9]+)?$", REG_EXTENDED | REG_NOSUB), 0);
    for (line = strtok_r(r.body, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
        if (strncmp(line, "# HELP ", 7) != 0 && strncmp(line, "# TYPE ", 7) != 0)
            cr_expect_eq(regexec(&re, line, 0, NULL, 0), 0, "not exposition format: %s", line);
    regfree(&re);
    resp_free(&r);
    http("GET", "/metrics", OPS, NULL, NULL, &r);
    {
        static const char *const want[] = {
            "shiptrack_polls_total{carrier=\"dhl\",outcome=\"ok\"} 4\n",
            "shiptrack_polls_total{carrier=\"dhl\",outcome=\"throttled\"} 2\n",
            "shiptrack_events_stored_total{carrier=\"dhl\"} 14\n",
            "shiptrack_carrier_breaker_state{carrier=\"dhl\"} 2\n",
            "shiptrack_poll_duration_seconds_bucket{carrier=\"dhl\",le=\"0.05\"} 2\n",
            "shiptrack_poll_duration_seconds_bucket{carrier=\"dhl\",le=\"0.5\"} 4\n",
            "shiptrack_poll_duration_seconds_bucket{carrier=\"dhl\",le=\"60\"} 4\n",
            "shiptrack_poll_duration_seconds_bucket{carrier=\"dhl\",le=\"+Inf\"} 6\n",
            "shiptrack_poll_duration_seconds_sum{carrier=\"dhl\"} 180.680\n",
            "shiptrack_poll_duration_seconds_count{carrier=\"dhl\"} 6\n",
            "shiptrack_customs_holds_open{reason=\"documents_required\",actor=\"recipient\"} 1\n",
            "shiptrack_stuck_parcels{kind=\"stuck\",carrier=\"ups\"} 1\n",
            "shiptrack_notifications{channel=\"sms\",status=\"deferred\"} 1\n",
            "shiptrack_notifications{channel=\"email\",status=\"sent\"} 2\n",
            "shiptrack_notifications_deferred 1\n",
            "shiptrack_outbox_backlog 0\n",
            "shiptrack_unmapped_events",
            "shiptrack_carrier_quota_remaining{carrier=\"dhl\"} 250\n",
            "# TYPE shiptrack_poll_duration_seconds histogram\n",
            "shiptrack_scrape_errors 0\n",
        };

        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
            cr_expect(strstr(r.body, want[i]) != NULL, "missing %s in\n%s", want[i], r.body);
        cr_expect(strchr(r.body, '@') == NULL, "no personal data");
    }
    resp_free(&r);
}

Test(api, pages_escape_data_and_keep_personal_data_to_agents)
{
    static const char *const cookie_agent[] = { "Cookie: st_token=" AGENT, NULL };
    static const char *const cookie_ops[] = { "Cookie: st_token=" OPS, NULL };
    static const char *const form[] = { "Content-Type: application/x-www-form-urlencoded",
                                        NULL };
    struct resp r;

    http("GET", "/agent?q=3318810025", NULL, cookie_agent, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.headers, "Content-Security-Policy: default-src 'self'") != NULL, "%s",
              r.headers);
    cr_expect(strstr(r.body, "<script") == NULL, "stored markup is never live: %s", r.body);
    cr_expect(strstr(r.body, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") != NULL,
              "escaped carrier text shown");
    cr_expect(strstr(r.body, "&lt;b&gt;Leipzig&lt;/b&gt;") != NULL);
    cr_expect(strstr(r.body, "Documents required") != NULL);
    cr_expect(strstr(r.body, "lena.berger@example.com") != NULL, "agents see the recipient");
    resp_free(&r);
    /* a search string with markup comes back escaped */
    http("GET", "/agent?q=%22%3E%3Cscript%3Ex%3C%2Fscript%3E", AGENT, NULL, NULL, &r);
    cr_expect_eq(r.status, 404);
    cr_expect(strstr(r.body, "<script>x") == NULL);
    cr_expect(strstr(r.body, "&quot;&gt;&lt;script&gt;x") != NULL, "%s", r.body);
    resp_free(&r);
    /* the ops board: no personal data, links to timelines */
    http("GET", "/ops", NULL, cookie_ops, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.body, "1Z999AA10123456784") != NULL);
    cr_expect(strstr(r.body, "href=\"/agent?id=2\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "@") == NULL && strstr(r.body, "+4915") == NULL,
              "no personal data on the ops board");
    resp_free(&r);
    /* the wrong role, no token: 403 and the login page (401) */
    http("GET", "/agent", NULL, cookie_ops, NULL, &r);
    cr_expect_eq(r.status, 403);
    resp_free(&r);
    http("GET", "/ops", NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 401);
    cr_expect(strstr(r.body, "name=\"token\"") != NULL, "the login form: %s", r.body);
    resp_free(&r);
    /* cookies authorize reads, never writes */
    {
        static const char *const cookie_admin[] = { "Cookie: st_token=" ADMIN, NULL };

        http("POST", "/v1/shipments", NULL, cookie_admin, "{\"tracking_number\":\"RR123456785FR\"}",
             &r);
        cr_expect_eq(r.status, 401);
        resp_free(&r);
    }
    /* login sets an HttpOnly SameSite=Strict cookie */
    http("POST", "/login", NULL, form, "token=" AGENT, &r);
    cr_expect_eq(r.status, 303, "%s", r.body);
    cr_expect(strstr(r.headers, "Set-Cookie: st_token=" AGENT "; Path=/; HttpOnly; "
                                "SameSite=Strict; Secure") != NULL, "%s", r.headers);
    cr_expect(strstr(r.headers, "Location: /agent") != NULL, "%s", r.headers);
    resp_free(&r);
    http("POST", "/login", NULL, form, "token=wrong-token-0123456789", &r);
    cr_expect_eq(r.status, 401);
    cr_expect(strstr(r.headers, "Set-Cookie") == NULL);
    resp_free(&r);
    http("GET", "/style.css", NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.headers, "text/css") != NULL);
    resp_free(&r);
}

Test(api, kafka_readiness_and_consumer_lag)
{
    static const char *const group_kv[] = { "group.id", "shiptrack-notifier", NULL };
    static const char *const no_kv[] = { NULL };
    rd_kafka_topic_partition_list_t *offsets;
    struct kafka_mock mock;
    rd_kafka_t *prod, *cons;
    struct resp r;
    char err[512];

    cr_assert_eq(kafka_mock_start(&mock, 1, 4, err, sizeof(err)), ST_OK, "%s", err);
    api_stop(api);
    cr_assert_eq(api_start(&cfg, mock.bootstraps, &api, err, sizeof(err)), ST_OK, "%s", err);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", api_port(api));
    http("GET", "/readyz", NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.body, "\"kafka\":\"ok\"") != NULL, "%s", r.body);
    resp_free(&r);

    /* five events on partition 0, the notifier's group has committed two */
    prod = kafka_client_new(RD_KAFKA_PRODUCER, mock.bootstraps, no_kv, NULL, "test");
    cr_assert_not_null(prod);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(TOPIC_EVENTS),
                                       RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE("{}", 2),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(prod);
    cons = kafka_client_new(RD_KAFKA_CONSUMER, mock.bootstraps, group_kv, NULL, "test");
    cr_assert_not_null(cons);
    offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offsets, TOPIC_EVENTS, 0)->offset = 2;
    cr_assert_eq(rd_kafka_commit(cons, offsets, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(offsets);
    rd_kafka_destroy(cons);

    http("GET", "/metrics", OPS, NULL, NULL, &r);
    cr_expect(strstr(r.body, "shiptrack_kafka_consumer_lag{group=\"shiptrack-notifier\","
                             "topic=\"shiptrack.events.v1\"} 3\n") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "shiptrack_scrape_errors 0\n") != NULL, "%s", r.body);
    resp_free(&r);
    api_stop(api);
    api = NULL;
    kafka_mock_stop(&mock);
}

Test(api, public_status_page_has_no_personal_data)
{
    struct resp r;

    http("GET", "/t/3318810025", NULL, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.body, "Documents required") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "Leipzig DE") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "lena") == NULL && strstr(r.body, "+4915") == NULL &&
              strstr(r.body, "ORD-1001") == NULL, "no personal data or order reference");
    cr_expect(strstr(r.body, "commercial invoice") == NULL && strstr(r.body, "script") == NULL,
              "no carrier free text");
    resp_free(&r);
    http("GET", "/t/0000000000", NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 404);
    resp_free(&r);
    http("GET", "/t/%27%20OR%201%3D1--", NULL, NULL, NULL, &r);
    cr_expect_eq(r.status, 404);
    resp_free(&r);
}

Test(api, role_without_tokens_exits_2_with_a_clear_message)
{
    char bin[512], env_db[600], *out = NULL, *err = NULL;
    const char *env[] = { env_db, "SHIPTRACK_API_TOKENS=", "SHIPTRACK_API_LISTEN=127.0.0.1:0",
                          NULL };
    char *const argv[] = { bin, "run", "--roles", "api", NULL };
    int rc;

    tu_binary_path(bin, sizeof(bin), "shiptrack");
    snprintf(env_db, sizeof(env_db), "SHIPTRACK_DATABASE_URL=%s", db.url);
    rc = tu_run(argv, env, &out, &err);
    cr_expect_eq(rc, 2, "exit %d: %s", rc, err);
    cr_expect(strstr(err, "SHIPTRACK_API_TOKENS is not set") != NULL, "%s", err);
    free(out);
    free(err);
}

/* Discard a body. */
static size_t discard(char *d, size_t size, size_t n, void *ud)
{
    (void)d;
    (void)ud;
    return size * n;
}

Test(api, concurrent_requests_share_the_connection_pool)
{
    enum { N = 40 };
    CURL *easy[N];
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " AGENT);
    CURLM *m = curl_multi_init();
    char url[128];
    int running = 0, ok = 0;

    cr_assert_not_null(m);
    for (int i = 0; i < N; i++) {
        /* detail, lookups and pages mixed: 2 threads, 2 database connections */
        snprintf(url, sizeof(url), "%s%s", base,
                 i % 3 == 0 ? "/v1/shipments/1" : i % 3 == 1 ? "/v1/shipments?order_ref=ORD-2002"
                                                             : "/agent?q=3318810025");
        easy[i] = curl_easy_init();
        cr_assert_not_null(easy[i]);
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT, 60L);
        curl_multi_add_handle(m, easy[i]);
    }
    do {
        cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);
        if (running)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    } while (running);
    for (int i = 0; i < N; i++) {
        long status = 0;

        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &status);
        ok += status == 200;
        curl_multi_remove_handle(m, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    curl_multi_cleanup(m);
    curl_slist_free_all(h);
    cr_expect_eq(ok, N, "%d of %d requests answered 200", ok, N);
}
