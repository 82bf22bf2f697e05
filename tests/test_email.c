/*
 * test_email.c - the email channel: message formatting on data alone, and
 * delivery to a real SMTP server on loopback (tests/support/smtp_server.py,
 * Debian's aiosmtpd): messages arrive intact (read back by Python's MIME
 * parser, tests/support/parse_eml.py), header injection is refused, SMTP
 * 451/550 sort into retry/permanent, a refused connection is a retry, a batch
 * goes over one connection, AUTH works and a wrong password is a config
 * error, STARTTLS required without the server offering it is a config error,
 * and without a relay .eml files appear atomically.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <dirent.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.h"
#include "config.h"
#include "log.h"
#include "smtpd.h"
#include "testutil.h"

/* Criterion runs each test in its own process: setenv stays local. */
static void quiet(void)
{
    static const char *const keys[] = {
        "SHIPTRACK_SMTP_HOST", "SHIPTRACK_SMTP_PORT", "SHIPTRACK_SMTP_STARTTLS",
        "SHIPTRACK_SMTP_USERNAME", "SHIPTRACK_SMTP_PASSWORD", "SHIPTRACK_SMTP_FROM",
        "SHIPTRACK_SMTP_TIMEOUT", "SHIPTRACK_SMTP_TLS_VERIFY", "SHIPTRACK_EML_DIR",
    };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        unsetenv(keys[i]);
    log_setup("error", "text", NULL);
    /* as in main(): a relay that drops the connection must not kill us */
    signal(SIGPIPE, SIG_IGN);
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

TestSuite(email, .init = quiet, .fini = cleanup, .timeout = 60);

/* ---- helpers ---- */

/* The shared SMTP server (tests/support/smtpd.c) in a fresh temporary directory. */
static void smtpd_start(struct tu_smtpd *s, const char *const *extra)
{
    char dir[128] = "/tmp/st-smtpd-XXXXXX";

    make_tmp_dir(dir);
    tu_smtpd_start(s, dir, extra);
}

/* Number of files in dir ending with suffix. */
static int count_files(const char *dir, const char *suffix, char *first, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d, "opendir %s", dir);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);

        if (len >= sl && strcmp(e->d_name + len - sl, suffix) == 0) {
            if (n == 0 && first != NULL)
                snprintf(first, cap, "%s/%s", dir, e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Parse a message file back with Python's email package. */
static json_t *parse_eml(const char *path)
{
    char script[512], *out = NULL, *err = NULL;
    char *argv[] = { (char *)tu_python(), script, (char *)path, NULL };
    json_error_t jerr;
    json_t *j;
    int rc;

    snprintf(script, sizeof(script), "%s/tests/support/parse_eml.py", ST_SOURCE_DIR);
    rc = tu_run(argv, NULL, &out, &err);
    cr_assert_eq(rc, 0, "parse_eml.py failed: %s", err);
    j = json_loads(out, 0, &jerr);
    cr_assert_not_null(j, "parse_eml.py output: %s", jerr.text);
    free(out);
    free(err);
    return j;
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}

/* Text of the leaf part with this content type. */
static const char *part_text(json_t *eml, const char *type, const char **cte)
{
    json_t *parts = json_object_get(eml, "parts"), *p;
    size_t i;

    json_array_foreach(parts, i, p) {
        if (strcmp(jstr(p, "type"), type) == 0) {
            if (cte != NULL)
                *cte = jstr(p, "cte");
            return jstr(p, "text");
        }
    }
    return NULL;
}

/* Open the email channel from the environment. */
static struct channel *open_email(enum st_err want, char *err, size_t errlen)
{
    struct st_config cfg;
    struct channel *ch = NULL;
    enum st_err rc;

    cr_assert_eq(config_load(&cfg, err, errlen), ST_OK, "%s", err);
    rc = email_channel.ops->open(&cfg, &ch, err, errlen);
    config_free(&cfg);
    cr_assert_eq(rc, want, "open: %s (%s)", st_err_name(rc), err);
    return ch;
}

/* Point the channel at the loopback server, plain SMTP. */
static void use_relay(const struct tu_smtpd *s)
{
    char port[16];

    snprintf(port, sizeof(port), "%d", s->port);
    setenv("SHIPTRACK_SMTP_HOST", "127.0.0.1", 1);
    setenv("SHIPTRACK_SMTP_PORT", port, 1);
    setenv("SHIPTRACK_SMTP_STARTTLS", "off", 1);
    setenv("SHIPTRACK_SMTP_FROM", "Suivi Boutique <notify@shop.example>", 1);
    setenv("SHIPTRACK_SMTP_TIMEOUT", "5s", 1);
}

static const char SUBJECT_UTF8[] =
    "Votre colis est arrivé en douane à Zürich — 東京から発送されました 📦 (commande 12345)";
static const char TEXT_BODY[] =
    "Bonjour Zoë,\n\nVotre colis 1Z999AA10123456784 est retenu en douane.\n"
    ".a line that starts with a dot\nFrom here on, an mbox trap.\n"
    "trailing spaces   \n"
    "A long line: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "
    "tempor incididunt ut labore et dolore magna aliqua = equals sign. Ut enim ad minim veniam.\n"
    "Merci !\n";
static const char HTML_BODY[] =
    "<!doctype html><html lang=\"fr\"><body><p>Bonjour Zoë,</p><p>Votre colis est "
    "<strong>retenu en douane</strong>.</p><p><a href=\"https://shop.example/t/abc?x=1&amp;y=2\">"
    "Suivre</a></p></body></html>\n";

static struct email_message sample(const char *to)
{
    struct email_message m = {
        .to_name = "Zoë Dupont",
        .to_addr = to,
        .subject = SUBJECT_UTF8,
        .text = TEXT_BODY,
        .html = HTML_BODY,
        .language = "fr",
        .transactional = false,
        .unsubscribe_url = "https://shop.example/u/one-click?token=abc123",
    };

    return m;
}

/* ---- formatting, on data alone ---- */

Test(email, build_is_canonical_and_folded)
{
    struct email_message m = sample("zoe@example.com");
    struct email_built a, b;
    char err[256];
    const char *p;

    cr_assert_eq(email_build(&m, "Suivi <notify@shop.example>", &a, err, sizeof(err)), ST_OK, "%s",
                 err);
    cr_assert_eq(email_build(&m, "Suivi <notify@shop.example>", &b, err, sizeof(err)), ST_OK);
    cr_expect_str_neq(a.message_id, b.message_id, "Message-IDs must be unique");
    cr_expect(strstr(a.message_id, "@shop.example>") != NULL, "domain from From: %s", a.message_id);
    cr_expect_str_eq(a.from_addr, "notify@shop.example");
    cr_expect_str_eq(a.to_addr, "zoe@example.com");
    /* CRLF only, 7-bit, no line over 78 in the header or 76 in the body */
    for (p = a.data; *p != '\0'; p++) {
        cr_assert((unsigned char)*p < 0x80, "8-bit byte at %zu", (size_t)(p - a.data));
        if (*p == '\n')
            cr_assert(p > a.data && p[-1] == '\r', "bare LF at %zu", (size_t)(p - a.data));
    }
    {
        const char *line = a.data, *body = strstr(a.data, "\r\n\r\n");
        while (*line != '\0') {
            const char *e = strstr(line, "\r\n");
            size_t len = e ? (size_t)(e - line) : strlen(line);

            cr_expect_leq(len, line < body ? 78u : 76u, "line too long: %.*s", (int)len, line);
            line = e ? e + 2 : line + len;
        }
    }
    cr_expect(strstr(a.data, "\r\nSubject: =?UTF-8?B?") != NULL);
    cr_expect(strstr(a.data, "\r\nMIME-Version: 1.0\r\n") != NULL);
    cr_expect(strstr(a.data, "\r\nList-Unsubscribe: <https://shop.example/u/one-click?token=abc123>\r\n") != NULL);
    cr_expect(strstr(a.data, "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n") != NULL);
    cr_expect(strstr(a.data, "\r\n=2Ea line") != NULL, "leading dot not encoded");
    cr_expect(strstr(a.data, "\r\n=46rom here") != NULL, "leading From not encoded");
    email_built_free(&a);
    email_built_free(&b);
}

Test(email, transactional_has_no_list_unsubscribe)
{
    struct email_message m = sample("zoe@example.com");
    struct email_built b;
    char err[256];

    m.transactional = true;
    m.unsubscribe_url = NULL;
    cr_assert_eq(email_build(&m, "notify@shop.example", &b, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_null(strstr(b.data, "List-Unsubscribe"));
    email_built_free(&b);
    /* not transactional: the URL is required, and must be https */
    m.transactional = false;
    cr_expect_eq(email_build(&m, "notify@shop.example", &b, err, sizeof(err)), ST_PERMANENT);
    cr_expect_null(b.data);
    m.unsubscribe_url = "http://shop.example/u";
    cr_expect_eq(email_build(&m, "notify@shop.example", &b, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "https") != NULL, "%s", err);
}

Test(email, ascii_subject_stays_readable)
{
    struct email_message m = sample("zoe@example.com");
    struct email_built b;
    char err[256];

    m.subject = "Your parcel is out for delivery today";
    m.to_name = "J. Smith";
    cr_assert_eq(email_build(&m, "notify@shop.example", &b, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect(strstr(b.data, "\r\nSubject: Your parcel is out for delivery today\r\n") != NULL);
    cr_expect(strstr(b.data, "\r\nTo: \"J. Smith\" <zoe@example.com>\r\n") != NULL);
    email_built_free(&b);
    /* "=?" in plain text would read as an encoded-word: it gets encoded */
    m.subject = "literal =?UTF-8?B?SGk=?= text";
    cr_assert_eq(email_build(&m, "notify@shop.example", &b, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect(strstr(b.data, "\r\nSubject: =?UTF-8?B?") != NULL);
    email_built_free(&b);
}

/* Every header field fed from data refuses CR, LF and control characters. */
Test(email, header_injection_refused)
{
    static const struct { const char *field; const char *value; } cases[] = {
        { "subject", "Hello\r\nBcc: victim@evil.example" },
        { "subject", "Hello\nBcc: victim@evil.example" },
        { "subject", "Hello\rBcc: victim@evil.example" },
        { "subject", "bell\x07" },
        { "to_name", "Zoe\r\nBcc: victim@evil.example" },
        { "to_addr", "zoe@example.com\r\nBcc: victim@evil.example" },
        { "to_addr", "zoe@example.com>, <victim@evil.example" },
        { "to_addr", "zoe@example.com, victim@evil.example" },
        { "to_addr", "\"zoe\"@example.com" },
        { "to_addr", "zoé@example.com" },
        { "to_addr", "zoe@exa mple.com" },
        { "to_addr", "zoe" },
        { "from_name", "Shop\nX-Evil: 1" },
        { "from_addr", "notify@shop.example\r\nBcc: v@evil.example" },
        { "unsubscribe_url", "https://shop.example/u\r\nBcc: v@evil.example" },
        { "unsubscribe_url", "https://shop.example/u>, <mailto:v@evil.example" },
        { "language", "fr\r\nBcc: v@evil.example" },
        { "subject", "\xC3\x28 invalid UTF-8" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct email_message m = sample("zoe@example.com");
        struct email_built b;
        char err[256] = "";

        if (strcmp(cases[i].field, "subject") == 0) m.subject = cases[i].value;
        else if (strcmp(cases[i].field, "to_name") == 0) m.to_name = cases[i].value;
        else if (strcmp(cases[i].field, "to_addr") == 0) m.to_addr = cases[i].value;
        else if (strcmp(cases[i].field, "from_name") == 0) m.from_name = cases[i].value;
        else if (strcmp(cases[i].field, "from_addr") == 0) m.from_addr = cases[i].value;
        else if (strcmp(cases[i].field, "unsubscribe_url") == 0) m.unsubscribe_url = cases[i].value;
        else m.language = cases[i].value;
        cr_expect_eq(email_build(&m, "notify@shop.example", &b, err, sizeof(err)), ST_PERMANENT,
                     "case %zu (%s) was accepted", i, cases[i].field);
        cr_expect_null(b.data, "case %zu left a message", i);
        cr_expect_neq(err[0], '\0', "case %zu has no reason", i);
    }
}

Test(email, caps_enforced)
{
    struct email_message m = sample("zoe@example.com");
    struct email_built b;
    char err[256], *big = malloc(EMAIL_BODY_MAX + 2), subject[EMAIL_SUBJECT_MAX + 2];

    cr_assert_not_null(big);
    memset(big, 'a', EMAIL_BODY_MAX + 1);
    big[EMAIL_BODY_MAX + 1] = '\0';
    m.text = big;
    cr_expect_eq(email_build(&m, "notify@shop.example", &b, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "text") != NULL, "%s", err);
    m.text = TEXT_BODY;
    memset(subject, 'S', sizeof(subject) - 1);
    subject[sizeof(subject) - 1] = '\0';
    m.subject = subject;
    cr_expect_eq(email_build(&m, "notify@shop.example", &b, err, sizeof(err)), ST_PERMANENT);
    cr_expect(strstr(err, "Subject") != NULL, "%s", err);
    free(big);
}

Test(email, addresses)
{
    char name[300], addr[300];

    cr_expect(email_addr_valid("a.b+tag@sub.example.co.uk"));
    cr_expect(email_addr_valid("x@localhost"));
    cr_expect_not(email_addr_valid(".a@example.com"));
    cr_expect_not(email_addr_valid("a..b@example.com"));
    cr_expect_not(email_addr_valid("a@-example.com"));
    cr_expect_not(email_addr_valid("a@example..com"));
    cr_expect_not(email_addr_valid("a@b@example.com"));
    cr_expect(email_parse_mailbox("Shop <n@shop.example>", name, sizeof(name), addr, sizeof(addr)));
    cr_expect_str_eq(name, "Shop");
    cr_expect_str_eq(addr, "n@shop.example");
    cr_expect(email_parse_mailbox("\"Shop, Inc\" <n@shop.example>", name, sizeof(name), addr,
                                  sizeof(addr)));
    cr_expect_str_eq(name, "Shop, Inc");
    cr_expect(email_parse_mailbox("n@shop.example", name, sizeof(name), addr, sizeof(addr)));
    cr_expect_str_eq(name, "");
    cr_expect_not(email_parse_mailbox("Shop <n@shop.example", name, sizeof(name), addr, sizeof(addr)));
}

/* ---- delivery to a real SMTP server ---- */

Test(email, relay_message_arrives_intact)
{
    struct tu_smtpd s;
    struct channel *ch;
    struct channel_msg msg = { .shipment_id = 42 };
    struct channel_result res;
    char err[256], path[512];
    const char *cte;
    json_t *eml;

    smtpd_start(&s, NULL);
    use_relay(&s);
    ch = open_email(ST_OK, err, sizeof(err));
    msg.u.email = sample("zoe@example.com");
    cr_assert_eq(email_channel.ops->send(ch, &msg, 1, &res, err, sizeof(err)), ST_OK, "%s", err);
    cr_expect_eq(res.err, ST_OK, "%s", res.errmsg);
    cr_expect_eq(res.code, 250);
    cr_expect_str_eq(res.status, "relayed");
    email_channel.ops->close(ch);
    tu_smtpd_stop(&s);

    cr_assert_eq(count_files(s.dir, ".eml", path, sizeof(path)), 1);
    eml = parse_eml(path);
    cr_expect_str_eq(jstr(eml, "subject"), SUBJECT_UTF8);
    cr_expect_str_eq(jstr(eml, "to_addr"), "zoe@example.com");
    cr_expect_str_eq(jstr(eml, "to_name"), "Zoë Dupont");
    cr_expect(strstr(jstr(eml, "from"), "notify@shop.example") != NULL);
    cr_expect_str_eq(jstr(eml, "message_id"), res.id);
    cr_expect_str_eq(jstr(eml, "content_type"), "multipart/alternative");
    cr_expect_str_eq(jstr(eml, "mime_version"), "1.0");
    cr_expect_str_eq(jstr(eml, "list_unsubscribe"), "<https://shop.example/u/one-click?token=abc123>");
    cr_expect_str_eq(jstr(eml, "list_unsubscribe_post"), "List-Unsubscribe=One-Click");
    cr_expect_neq(jstr(eml, "date")[0], '\0');
    cr_expect_eq(json_array_size(json_object_get(eml, "defects")), 0, "MIME defects: %s",
                 json_dumps(json_object_get(eml, "defects"), 0));
    cr_expect(json_is_false(json_object_get(eml, "bare_lf")));
    cr_expect(json_is_false(json_object_get(eml, "eight_bit")));
    cr_expect_leq(json_integer_value(json_object_get(eml, "header_max_line")), 78);
    cr_expect_leq(json_integer_value(json_object_get(eml, "max_line")), 78);
    /* both parts, text first, decoded back to what was sent (CRLF as LF) */
    {
        json_t *parts = json_object_get(eml, "parts");
        const char *text = part_text(eml, "text/plain", &cte), *html;

        cr_assert_eq(json_array_size(parts), 2);
        cr_expect_str_eq(jstr(json_array_get(parts, 0), "type"), "text/plain");
        cr_expect_str_eq(jstr(json_array_get(parts, 1), "type"), "text/html");
        cr_expect_str_eq(jstr(json_array_get(parts, 0), "charset"), "utf-8");
        cr_assert_not_null(text);
        cr_expect_str_eq(text, TEXT_BODY);
        cr_expect_str_eq(cte, "quoted-printable");
        html = part_text(eml, "text/html", NULL);
        cr_assert_not_null(html);
        cr_expect_str_eq(html, HTML_BODY);
    }
    json_decref(eml);
}

Test(email, non_latin_body_goes_base64)
{
    struct tu_smtpd s;
    struct channel *ch;
    struct channel_msg msg = { .shipment_id = 7 };
    struct channel_result res;
    char err[256], path[512];
    const char *cte, *text;
    static const char ja[] = "お荷物は税関で保留されています。関税のお支払いが必要です。\n"
                             "追跡番号: 1Z999AA10123456784\n";
    json_t *eml;

    smtpd_start(&s, NULL);
    use_relay(&s);
    ch = open_email(ST_OK, err, sizeof(err));
    msg.u.email = sample("taro@example.jp");
    msg.u.email.text = ja;
    msg.u.email.subject = "お荷物が税関で保留されています";
    msg.u.email.transactional = true;
    cr_assert_eq(email_channel.ops->send(ch, &msg, 1, &res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res.err, ST_OK, "%s", res.errmsg);
    email_channel.ops->close(ch);
    tu_smtpd_stop(&s);
    cr_assert_eq(count_files(s.dir, ".eml", path, sizeof(path)), 1);
    eml = parse_eml(path);
    text = part_text(eml, "text/plain", &cte);
    cr_assert_not_null(text);
    cr_expect_str_eq(text, ja);
    cr_expect_str_eq(cte, "base64");
    cr_expect_str_eq(jstr(eml, "subject"), "お荷物が税関で保留されています");
    cr_expect(json_is_null(json_object_get(eml, "list_unsubscribe")), "transactional mail has "
              "List-Unsubscribe");
    json_decref(eml);
}

Test(email, batch_uses_one_session)
{
    struct tu_smtpd s;
    struct channel *ch;
    struct channel_msg msgs[4];
    struct channel_result res[4];
    char err[256];
    int conn = -1;

    smtpd_start(&s, NULL);
    use_relay(&s);
    ch = open_email(ST_OK, err, sizeof(err));
    for (int i = 0; i < 4; i++) {
        msgs[i].shipment_id = 100 + i;
        msgs[i].u.email = sample("zoe@example.com");
    }
    cr_assert_eq(email_channel.ops->send(ch, msgs, 4, res, err, sizeof(err)), ST_OK);
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(res[i].err, ST_OK, "message %d: %s", i, res[i].errmsg);
        for (int j = 0; j < i; j++)
            cr_expect_str_neq(res[i].id, res[j].id, "duplicate Message-ID");
    }
    email_channel.ops->close(ch);
    tu_smtpd_stop(&s);
    cr_assert_eq(count_files(s.dir, ".json", NULL, 0), 4);
    for (int i = 1; i <= 4; i++) {
        char path[512];
        json_t *meta;

        snprintf(path, sizeof(path), "%s/%04d.json", s.dir, i);
        meta = json_load_file(path, 0, NULL);
        cr_assert_not_null(meta, "%s", path);
        if (conn < 0)
            conn = (int)json_integer_value(json_object_get(meta, "conn"));
        cr_expect_eq(json_integer_value(json_object_get(meta, "conn")), conn,
                     "message %d came over another connection", i);
        json_decref(meta);
    }
}

/* One batch meets every SMTP fault; the good message still goes through. */
Test(email, smtp_replies_sorted)
{
    static const struct { const char *to; enum st_err want; int code; } cases[] = {
        { "tempfail@example.com", ST_RETRY, 451 },
        { "reject@example.com", ST_PERMANENT, 550 },
        { "zoe@example.com", ST_OK, 250 },
        { "datafail@example.com", ST_RETRY, 451 },
        { "datareject@example.com", ST_PERMANENT, 554 },
        { "bad address@example.com", ST_PERMANENT, 0 },
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    struct tu_smtpd s;
    struct channel *ch;
    struct channel_msg msgs[N];
    struct channel_result res[N];
    char err[256];

    smtpd_start(&s, NULL);
    use_relay(&s);
    ch = open_email(ST_OK, err, sizeof(err));
    for (size_t i = 0; i < N; i++) {
        msgs[i].shipment_id = (long long)i + 1;
        msgs[i].u.email = sample(cases[i].to);
    }
    cr_assert_eq(email_channel.ops->send(ch, msgs, N, res, err, sizeof(err)), ST_OK);
    for (size_t i = 0; i < N; i++) {
        cr_expect_eq(res[i].err, cases[i].want, "%s: got %s (%s)", cases[i].to,
                     st_err_name(res[i].err), res[i].errmsg);
        cr_expect_eq(res[i].code, cases[i].code, "%s: code %d", cases[i].to, res[i].code);
    }
    cr_expect_eq(res[1].flag, CHANNEL_FLAG_BAD_ADDRESS);
    cr_expect_eq(res[5].flag, CHANNEL_FLAG_BAD_ADDRESS);
    cr_expect(strstr(res[0].errmsg, "RCPT") != NULL, "%s", res[0].errmsg);
    email_channel.ops->close(ch);
    tu_smtpd_stop(&s);
    cr_expect_eq(count_files(s.dir, ".eml", NULL, 0), 1, "only the good message is delivered");
}

/* The relay vanishes after the first message of a batch: that one is sent,
 * the rest are retries (nothing lost, nothing counted twice). */
Test(email, dropped_connection_is_retry)
{
    static const char *const args[] = { "--drop-after", "1", NULL };
    struct tu_smtpd s;
    struct channel *ch;
    struct channel_msg msgs[3];
    struct channel_result res[3];
    char err[256];

    smtpd_start(&s, args);
    use_relay(&s);
    ch = open_email(ST_OK, err, sizeof(err));
    for (int i = 0; i < 3; i++) {
        msgs[i].shipment_id = 20 + i;
        msgs[i].u.email = sample("zoe@example.com");
    }
    cr_assert_eq(email_channel.ops->send(ch, msgs, 3, res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res[0].err, ST_OK, "%s", res[0].errmsg);
    for (int i = 1; i < 3; i++)
        cr_expect_eq(res[i].err, ST_RETRY, "message %d: %s (%s)", i, st_err_name(res[i].err),
                     res[i].errmsg);
    email_channel.ops->close(ch);
    tu_smtpd_stop(&s);
    cr_expect_eq(count_files(s.dir, ".eml", NULL, 0), 1);
}

Test(email, connection_refused_is_retry)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sa);
    struct channel *ch;
    struct channel_msg msgs[2];
    struct channel_result res[2];
    char err[256], port[16];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* a port that was free a moment ago: nothing listens there */
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(port, sizeof(port), "%d", ntohs(sa.sin_port));
    close(fd);
    setenv("SHIPTRACK_SMTP_HOST", "127.0.0.1", 1);
    setenv("SHIPTRACK_SMTP_PORT", port, 1);
    setenv("SHIPTRACK_SMTP_STARTTLS", "off", 1);
    setenv("SHIPTRACK_SMTP_FROM", "notify@shop.example", 1);
    ch = open_email(ST_OK, err, sizeof(err));
    for (int i = 0; i < 2; i++) {
        msgs[i].shipment_id = 1;
        msgs[i].u.email = sample("zoe@example.com");
    }
    cr_assert_eq(email_channel.ops->send(ch, msgs, 2, res, err, sizeof(err)), ST_OK);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(res[i].err, ST_RETRY, "got %s: %s", st_err_name(res[i].err), res[i].errmsg);
        cr_expect_neq(res[i].errmsg[0], '\0');
    }
    email_channel.ops->close(ch);
}

Test(email, auth_plain_login)
{
    static const char *const args[] = { "--auth", "shiptrack:s3cret pass", NULL };
    struct tu_smtpd s;
    struct channel *ch;
    struct channel_msg msg = { .shipment_id = 9 };
    struct channel_result res;
    char err[256], path[512];
    json_t *meta;

    smtpd_start(&s, args);
    use_relay(&s);
    msg.u.email = sample("zoe@example.com");

    /* wrong password: an operator must fix the configuration */
    setenv("SHIPTRACK_SMTP_USERNAME", "shiptrack", 1);
    setenv("SHIPTRACK_SMTP_PASSWORD", "wrong", 1);
    ch = open_email(ST_OK, err, sizeof(err));
    cr_assert_eq(email_channel.ops->send(ch, &msg, 1, &res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res.err, ST_CONFIG, "got %s: %s", st_err_name(res.err), res.errmsg);
    cr_expect(strstr(res.errmsg, "wrong") == NULL, "password leaked into: %s", res.errmsg);
    email_channel.ops->close(ch);

    /* right password */
    setenv("SHIPTRACK_SMTP_PASSWORD", "s3cret pass", 1);
    ch = open_email(ST_OK, err, sizeof(err));
    cr_assert_eq(email_channel.ops->send(ch, &msg, 1, &res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res.err, ST_OK, "%s", res.errmsg);
    email_channel.ops->close(ch);

    /* no credentials at all: the server requires AUTH (530 to MAIL FROM), which
     * would fail every message alike: an operator must act */
    unsetenv("SHIPTRACK_SMTP_USERNAME");
    unsetenv("SHIPTRACK_SMTP_PASSWORD");
    ch = open_email(ST_OK, err, sizeof(err));
    cr_assert_eq(email_channel.ops->send(ch, &msg, 1, &res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res.err, ST_CONFIG, "got %s: %s", st_err_name(res.err), res.errmsg);
    cr_expect_eq(res.code, 530);
    email_channel.ops->close(ch);
    tu_smtpd_stop(&s);

    cr_assert_eq(count_files(s.dir, ".json", path, sizeof(path)), 1);
    meta = json_load_file(path, 0, NULL);
    cr_assert_not_null(meta);
    cr_expect_str_eq(jstr(meta, "auth"), "shiptrack");
    json_decref(meta);
}

Test(email, starttls_required_but_not_offered)
{
    struct tu_smtpd s;
    struct channel *ch;
    struct channel_msg msg = { .shipment_id = 3 };
    struct channel_result res;
    char err[256];

    smtpd_start(&s, NULL);
    use_relay(&s);
    setenv("SHIPTRACK_SMTP_STARTTLS", "required", 1);
    ch = open_email(ST_OK, err, sizeof(err));
    msg.u.email = sample("zoe@example.com");
    cr_assert_eq(email_channel.ops->send(ch, &msg, 1, &res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res.err, ST_CONFIG, "got %s: %s", st_err_name(res.err), res.errmsg);
    cr_expect(strstr(res.errmsg, "STARTTLS") != NULL, "%s", res.errmsg);
    email_channel.ops->close(ch);

    /* optional: goes through in the clear */
    setenv("SHIPTRACK_SMTP_STARTTLS", "optional", 1);
    ch = open_email(ST_OK, err, sizeof(err));
    cr_assert_eq(email_channel.ops->send(ch, &msg, 1, &res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res.err, ST_OK, "%s", res.errmsg);
    email_channel.ops->close(ch);
    tu_smtpd_stop(&s);
    cr_expect_eq(count_files(s.dir, ".eml", NULL, 0), 1);
}

Test(email, config_errors)
{
    char err[256];

    setenv("SHIPTRACK_SMTP_HOST", "127.0.0.1", 1);
    open_email(ST_CONFIG, err, sizeof(err));
    cr_expect(strstr(err, "SHIPTRACK_SMTP_FROM") != NULL, "%s", err);
    setenv("SHIPTRACK_SMTP_FROM", "not an address", 1);
    open_email(ST_CONFIG, err, sizeof(err));
    cr_expect(strstr(err, "SHIPTRACK_SMTP_FROM") != NULL, "%s", err);
    setenv("SHIPTRACK_SMTP_FROM", "n@shop.example", 1);
    setenv("SHIPTRACK_SMTP_HOST", "[::1]", 1);
    open_email(ST_CONFIG, err, sizeof(err));
    cr_expect(strstr(err, "SHIPTRACK_SMTP_HOST") != NULL, "%s", err);
    setenv("SHIPTRACK_SMTP_HOST", "127.0.0.1", 1);
    setenv("SHIPTRACK_SMTP_USERNAME", "u", 1);
    open_email(ST_CONFIG, err, sizeof(err));
    cr_expect(strstr(err, "SHIPTRACK_SMTP_PASSWORD") != NULL, "%s", err);
}

Test(email, eml_files_without_relay)
{
    char dir[] = "/tmp/st-eml-XXXXXX", err[256], path[512];
    struct channel *ch;
    struct channel_msg msgs[3];
    struct channel_result res[3];
    json_t *eml;

    make_tmp_dir(dir);
    setenv("SHIPTRACK_EML_DIR", dir, 1);
    setenv("SHIPTRACK_SMTP_FROM", "Shop <notify@shop.example>", 1);
    ch = open_email(ST_OK, err, sizeof(err));
    for (int i = 0; i < 3; i++) {
        msgs[i].shipment_id = 5;
        msgs[i].u.email = sample("zoe@example.com");
    }
    msgs[1].u.email.subject = "evil\r\nBcc: v@evil.example";
    cr_assert_eq(email_channel.ops->send(ch, msgs, 3, res, err, sizeof(err)), ST_OK);
    cr_expect_eq(res[0].err, ST_OK, "%s", res[0].errmsg);
    cr_expect_eq(res[1].err, ST_PERMANENT);
    cr_expect_eq(res[2].err, ST_OK, "%s", res[2].errmsg);
    cr_expect_str_eq(res[0].status, "file");
    cr_expect_str_neq(res[0].where, res[2].where, "file names must be unique");
    cr_expect(strncmp(res[0].where, dir, strlen(dir)) == 0, "%s", res[0].where);
    email_channel.ops->close(ch);
    cr_expect_eq(count_files(dir, ".eml", path, sizeof(path)), 2);
    cr_expect_eq(count_files(dir, ".tmp", NULL, 0), 0);
    {
        DIR *d = opendir(dir);
        struct dirent *e;

        while ((e = readdir(d)) != NULL)
            cr_expect(e->d_name[0] != '.' || strcmp(e->d_name, ".") == 0 ||
                          strcmp(e->d_name, "..") == 0, "temporary file left: %s", e->d_name);
        closedir(d);
    }
    eml = parse_eml(res[0].where);
    cr_expect_str_eq(jstr(eml, "subject"), SUBJECT_UTF8);
    cr_expect_str_eq(jstr(eml, "message_id"), res[0].id);
    cr_expect_eq(json_array_size(json_object_get(eml, "parts")), 2);
    json_decref(eml);
}

/* ---- STARTTLS (tests/fixtures/smtp: a self-signed certificate for
 * localhost and 127.0.0.1, valid until 2126) ---- */

static const char *const tls_args[] = {
    "--tls", ST_SOURCE_DIR "/tests/fixtures/smtp/cert.pem",
    ST_SOURCE_DIR "/tests/fixtures/smtp/key.pem", NULL,
};

/* Send one message over STARTTLS. aiosmtpd 1.4 switches its transport to TLS
 * only after the "220 Ready" reply is flushed, so a fast ClientHello can be
 * lost and the handshake stalls until our timeout (a retry, as it should be):
 * a test-server race, so such a retry is tried again, up to five times. */
static void send_tls(struct channel *ch, const struct channel_msg *msg, struct channel_result *res)
{
    char err[256];

    for (int attempt = 0; attempt < 5; attempt++) {
        cr_assert_eq(email_channel.ops->send(ch, msg, 1, res, err, sizeof(err)), ST_OK);
        if (res->err != ST_RETRY)
            return;
    }
}

/* A certificate nobody vouches for is refused while verification is on,
 * and accepted (with a warning at open) when it is switched off. */
Test(email, starttls_verifies_certificate)
{
    struct tu_smtpd s;
    struct channel *ch;
    struct channel_msg msg = { .shipment_id = 4 };
    struct channel_result res;
    char err[256], path[512];
    json_t *meta;

    smtpd_start(&s, tls_args);
    use_relay(&s);
    setenv("SHIPTRACK_SMTP_STARTTLS", "required", 1);
    setenv("SHIPTRACK_SMTP_TIMEOUT", "2s", 1);
    msg.u.email = sample("zoe@example.com");

    ch = open_email(ST_OK, err, sizeof(err));
    send_tls(ch, &msg, &res);
    cr_expect_eq(res.err, ST_CONFIG, "got %s: %s", st_err_name(res.err), res.errmsg);
    cr_expect(strstr(res.errmsg, "certificate") != NULL, "%s", res.errmsg);
    email_channel.ops->close(ch);
    cr_expect_eq(count_files(s.dir, ".eml", NULL, 0), 0, "sent over an unverified channel");

    setenv("SHIPTRACK_SMTP_TLS_VERIFY", "off", 1);
    ch = open_email(ST_OK, err, sizeof(err));
    send_tls(ch, &msg, &res);
    cr_expect_eq(res.err, ST_OK, "%s", res.errmsg);
    email_channel.ops->close(ch);
    tu_smtpd_stop(&s);

    cr_assert_eq(count_files(s.dir, ".json", path, sizeof(path)), 1);
    meta = json_load_file(path, 0, NULL);
    cr_assert_not_null(meta);
    cr_expect(json_is_true(json_object_get(meta, "tls")), "message did not travel over TLS");
    json_decref(meta);
}

/* A trusted certificate (OpenSSL's SSL_CERT_FILE) and a matching host name:
 * verified STARTTLS with AUTH inside it, twice in one process (libesmtp 1.1.0
 * frees each session's SSL_CTX). */
Test(email, starttls_trusted_with_auth)
{
    static const char *const args[] = {
        "--tls", ST_SOURCE_DIR "/tests/fixtures/smtp/cert.pem",
        ST_SOURCE_DIR "/tests/fixtures/smtp/key.pem", "--auth", "shiptrack:pw", NULL,
    };
    char err[256], path[512];
    struct tu_smtpd s;
    struct channel *ch;
    struct channel_msg msg = { .shipment_id = 5 };
    struct channel_result res;
    json_t *meta;

    setenv("SSL_CERT_FILE", ST_SOURCE_DIR "/tests/fixtures/smtp/cert.pem", 1);
    smtpd_start(&s, args);
    use_relay(&s);
    /* libesmtp matches DNS names only (not IP addresses) against the certificate */
    setenv("SHIPTRACK_SMTP_HOST", "localhost", 1);
    setenv("SHIPTRACK_SMTP_STARTTLS", "required", 1);
    setenv("SHIPTRACK_SMTP_TIMEOUT", "2s", 1);
    setenv("SHIPTRACK_SMTP_USERNAME", "shiptrack", 1);
    setenv("SHIPTRACK_SMTP_PASSWORD", "pw", 1);
    msg.u.email = sample("zoe@example.com");
    ch = open_email(ST_OK, err, sizeof(err));
    for (int round = 0; round < 2; round++) {
        send_tls(ch, &msg, &res);
        cr_expect_eq(res.err, ST_OK, "round %d: %s: %s", round, st_err_name(res.err), res.errmsg);
    }
    email_channel.ops->close(ch);
    tu_smtpd_stop(&s);

    cr_assert_eq(count_files(s.dir, ".json", path, sizeof(path)), 2);
    meta = json_load_file(path, 0, NULL);
    cr_assert_not_null(meta);
    cr_expect(json_is_true(json_object_get(meta, "tls")));
    cr_expect_str_eq(jstr(meta, "auth"), "shiptrack");
    json_decref(meta);
}
