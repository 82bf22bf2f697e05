/*
 * api_pages.c - agent timeline page, ops board, login and unsubscribe pages
 * (api_pages.h).
 *
 * Layout: one column that reads at phone width (390 px) and widens to a
 * two-column grid from 900 px; tables turn into stacked rows below 640 px,
 * so nothing scrolls sideways. Every value from the database goes through
 * hbuf_esc (or is a number formatted here).
 */
#include "api_pages.h"

#include <stdio.h>
#include <string.h>

const char api_stylesheet[] =
    ":root{--fg:#1d232a;--muted:#5b6672;--line:#d9dee3;--bg:#f6f7f9;--card:#fff;"
    "--ok:#1f7a3d;--warn:#9a5b00;--bad:#b3261e;--info:#2457a6}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:var(--fg);background:var(--bg)}\n"
    "header.top{background:#1d232a;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;"
    "gap:.5rem 1rem;align-items:center}\n"
    "header.top a{color:#fff}\n"
    "header.top form{margin-left:auto}\n"
    "main{max-width:1240px;margin:0 auto;padding:1rem}\n"
    "h1{font-size:1.35rem;margin:.2rem 0 .6rem;overflow-wrap:anywhere}\n"
    "h2{font-size:1.05rem;margin:0 0 .6rem}\n"
    ".card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem;"
    "margin:0 0 1rem;min-width:0;overflow-x:auto}\n"
    ".grid{display:grid;grid-template-columns:1fr;gap:0 1rem}\n"
    "@media(min-width:900px){.grid{grid-template-columns:minmax(0,5fr) minmax(0,6fr)}}\n"
    ".muted{color:var(--muted)}\n"
    ".search{display:flex;gap:.5rem;flex-wrap:wrap}\n"
    ".search input{flex:1 1 12rem;min-width:0;padding:.5rem;font:inherit;border:1px solid "
    "var(--line);border-radius:6px}\n"
    "button{padding:.5rem .9rem;font:inherit;border:0;border-radius:6px;background:var(--info);"
    "color:#fff;cursor:pointer}\n"
    ".badge{display:inline-block;padding:.05rem .5rem;border-radius:999px;font-size:.8rem;"
    "font-weight:600;background:#e6ebf2;color:var(--info);white-space:nowrap}\n"
    ".b-delivered,.b-sent,.b-released,.b-closed{background:#e3f3e8;color:var(--ok)}\n"
    ".b-held,.b-attempt_failed,.b-deferred,.b-half-open,.b-processing,.b-failed_temporary,"
    ".b-available_for_pickup{background:#fbefd9;color:var(--warn)}\n"
    ".b-unknown{background:#eceff3;color:var(--muted)}\n"
    ".b-exception,.b-returning,.b-returned,.b-expired,.b-failed_permanent,.b-open,.b-rejected,"
    ".b-suppressed{background:#fbe4e2;color:var(--bad)}\n"
    "dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;margin:0}\n"
    "dl.facts dt{color:var(--muted)}\n"
    "dl.facts dd{margin:0;overflow-wrap:anywhere}\n"
    ".hold{border-left:4px solid var(--warn);padding-left:.8rem}\n"
    ".hold.closed{border-color:var(--ok)}\n"
    "ol.events{list-style:none;margin:0;padding:0}\n"
    "ol.events li{border-top:1px solid var(--line);padding:.6rem 0}\n"
    "ol.events li:first-child{border-top:0}\n"
    ".when{display:flex;flex-wrap:wrap;gap:.2rem 1rem;font-size:.85rem;color:var(--muted)}\n"
    ".raw{font-style:italic;overflow-wrap:anywhere}\n"
    "table{width:100%;border-collapse:collapse;font-size:.9rem}\n"
    "th,td{text-align:left;padding:.35rem .4rem;border-top:1px solid var(--line);"
    "vertical-align:top;overflow-wrap:break-word}\n"
    "th{color:var(--muted);font-weight:600}\n"
    "td.t{white-space:nowrap}\n"
    "@media(max-width:640px){table,thead,tbody,tr,th,td{display:block}thead{display:none}"
    "tr{border-top:1px solid var(--line);padding:.4rem 0}td{border:0;padding:.1rem 0}"
    "td[data-l]::before{content:attr(data-l) ': ';color:var(--muted)}}\n"
    ".msg{padding:.6rem .8rem;border-radius:6px;background:#fbefd9}\n"
    "a{color:var(--info)}\n";

/* ---- helpers ---- */

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}

static void head(struct hbuf *b, const char *title, bool nav)
{
    hbuf_puts(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                 "<meta name=\"referrer\" content=\"no-referrer\"><title>");
    hbuf_esc(b, title);
    hbuf_puts(b, " - shiptrack</title><link rel=\"stylesheet\" href=\"/style.css\"></head><body>"
                 "<header class=\"top\"><strong>shiptrack</strong>");
    if (nav)
        hbuf_puts(b, "<a href=\"/agent\">Timelines</a><a href=\"/ops\">Ops board</a>"
                     "<form method=\"post\" action=\"/logout\"><button type=\"submit\">Log out"
                     "</button></form>");
    hbuf_puts(b, "</header><main>");
}

static void foot(struct hbuf *b)
{
    hbuf_puts(b, "</main></body></html>\n");
}

/* A status word as a badge. */
static void badge(struct hbuf *b, const char *word)
{
    hbuf_puts(b, "<span class=\"badge b-");
    hbuf_esc(b, word);
    hbuf_puts(b, "\">");
    for (const char *p = word; *p != '\0'; p++) /* in_transit -> in transit */
        hbuf_add(b, *p == '_' ? " " : p, 1);
    hbuf_puts(b, "</span>");
}

/* "2026-11-20T14:03:00+01" / "...Z" / local "...T14:03:00" -> "2026-11-20 14:03" + suffix. */
static void when(struct hbuf *b, const char *t, const char *suffix)
{
    char s[40];
    size_t n = strlen(t);

    if (n < 16) {
        hbuf_esc(b, n ? t : "-");
        return;
    }
    snprintf(s, sizeof(s), "%.10s %.5s", t, t + 11);
    hbuf_esc(b, s);
    if (n > 19 && t[19] != 'Z') { /* a UTC offset: "+01", "-0530" */
        hbuf_puts(b, " (UTC");
        hbuf_esc(b, t + 19);
        hbuf_puts(b, ")");
    }
    hbuf_puts(b, suffix);
}

/* Words for the customs vocabulary. */
static const char *words(const char *v)
{
    static const struct { const char *k, *w; } map[] = {
        { "documents_required", "Documents required" }, { "duties_due", "Duties or taxes due" },
        { "inspection", "Inspection" }, { "prohibited", "Prohibited goods" },
        { "processing", "Processing" }, { "unknown", "Not stated by the carrier" },
        { "recipient", "Recipient" }, { "shipper", "Shipper (the shop)" },
        { "broker", "Customs broker" }, { "nobody", "Nobody (customs is working)" },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].k, v) == 0)
            return map[i].w;
    return v;
}

/* A table cell (class cls, may be NULL) with its label for the stacked
 * phone layout; with spaces, '_' in text shows as a space (vocabulary words
 * such as customs_processing then wrap like words). */
static void cell(struct hbuf *b, const char *cls, const char *label, const char *text,
                 bool spaces)
{
    hbuf_puts(b, "<td");
    if (cls != NULL)
        hbuf_printf(b, " class=\"%s\"", cls);
    hbuf_puts(b, " data-l=\"");
    hbuf_esc(b, label);
    hbuf_puts(b, "\">");
    if (text == NULL || *text == '\0')
        hbuf_puts(b, "-");
    else if (spaces) {
        char w[128];

        snprintf(w, sizeof(w), "%s", text);
        for (char *p = w; *p != '\0'; p++)
            if (*p == '_')
                *p = ' ';
        hbuf_esc(b, w);
    } else
        hbuf_esc(b, text);
    hbuf_puts(b, "</td>");
}

static void td(struct hbuf *b, const char *label, const char *text)
{
    cell(b, NULL, label, text, false);
}

/* A cell holding a vocabulary word (milestone, reason, kind). */
static void td_word(struct hbuf *b, const char *label, const char *text)
{
    cell(b, NULL, label, text, true);
}

/* A cell holding a date or time, kept on one line. */
static void td_time(struct hbuf *b, const char *label, const char *text)
{
    cell(b, "t", label, text, false);
}

static void th_row(struct hbuf *b, const char *const *labels, size_t n)
{
    hbuf_puts(b, "<table><thead><tr>");
    for (size_t i = 0; i < n; i++) {
        hbuf_puts(b, "<th>");
        hbuf_esc(b, labels[i]);
        hbuf_puts(b, "</th>");
    }
    hbuf_puts(b, "</tr></thead><tbody>");
}

static void dt(struct hbuf *b, const char *term, const char *value)
{
    hbuf_puts(b, "<dt>");
    hbuf_esc(b, term);
    hbuf_puts(b, "</dt><dd>");
    hbuf_esc(b, value != NULL && *value ? value : "-");
    hbuf_puts(b, "</dd>");
}

/* ---- pages ---- */

void page_login(struct hbuf *b, const char *message)
{
    head(b, "Sign in", false);
    hbuf_puts(b, "<div class=\"card\"><h1>Sign in</h1>");
    if (message != NULL) {
        hbuf_puts(b, "<p class=\"msg\" role=\"alert\">");
        hbuf_esc(b, message);
        hbuf_puts(b, "</p>");
    }
    hbuf_puts(b, "<form method=\"post\" action=\"/login\" class=\"search\">"
                 "<input type=\"password\" name=\"token\" autocomplete=\"current-password\" "
                 "aria-label=\"Access token\" placeholder=\"Access token\" required>"
                 "<button type=\"submit\">Sign in</button></form>"
                 "<p class=\"muted\">Use the agent, ops or admin token your administrator gave "
                 "you.</p></div>");
    foot(b);
}

void page_message(struct hbuf *b, const char *title, const char *text)
{
    head(b, title, false);
    hbuf_puts(b, "<div class=\"card\"><h1>");
    hbuf_esc(b, title);
    hbuf_puts(b, "</h1><p>");
    hbuf_esc(b, text);
    hbuf_puts(b, "</p></div>");
    foot(b);
}

/* Shipment facts and the recipient. */
static void agent_summary(struct hbuf *b, const json_t *d)
{
    const json_t *s = json_object_get(d, "shipment"), *r = json_object_get(d, "recipient");
    char route[16], edd[64];

    hbuf_puts(b, "<section class=\"card\" id=\"summary\"><h1>");
    hbuf_esc(b, str(s, "tracking_number"));
    hbuf_puts(b, " <span class=\"muted\">");
    hbuf_esc(b, str(s, "carrier"));
    hbuf_puts(b, "</span></h1><p id=\"status\">");
    badge(b, str(s, "status"));
    hbuf_puts(b, " <span class=\"muted\">");
    hbuf_esc(b, str(s, "substatus"));
    hbuf_puts(b, "</span></p><dl class=\"facts\">");
    dt(b, "Order", str(s, "order_ref"));
    snprintf(route, sizeof(route), "%s → %s",
             *str(s, "origin_country") ? str(s, "origin_country") : "?",
             *str(s, "destination_country") ? str(s, "destination_country") : "?");
    dt(b, "Route", route);
    snprintf(edd, sizeof(edd), "%s%s%s%s", str(s, "estimated_delivery"),
             *str(s, "estimated_delivery_original") ? " (first estimate " : "",
             str(s, "estimated_delivery_original"),
             *str(s, "estimated_delivery_original") ? ")" : "");
    dt(b, "Estimated delivery", edd);
    dt(b, "Customs", str(s, "customs_state"));
    dt(b, "Customer's time zone", str(s, "time_zone"));
    if (json_is_object(r)) {
        char consent[96];

        dt(b, "Email", str(r, "email"));
        dt(b, "Phone", str(r, "phone"));
        dt(b, "Language", str(r, "locale"));
        snprintf(consent, sizeof(consent), "email %s, SMS %s",
                 *str(r, "email_opted_out_at") ? "opted out" :
                 strcmp(str(r, "email_consent"), "true") == 0 ? "yes" : "no",
                 *str(r, "sms_opted_out_at") ? "opted out" :
                 strcmp(str(r, "sms_consent"), "true") == 0 ? "yes" : "no");
        dt(b, "Consent", consent);
    }
    if (json_integer_value(json_object_get(s, "poll_error_streak")) > 0)
        dt(b, "Tracking problem", str(s, "last_poll_error"));
    hbuf_puts(b, "</dl></section>");
}

/* Customs holds: reason, who must act, since when, the carrier's words. */
static void agent_customs(struct hbuf *b, const json_t *d)
{
    const json_t *holds = json_object_get(d, "customs_holds"), *h;
    size_t i;

    if (json_array_size(holds) == 0)
        return;
    hbuf_puts(b, "<section class=\"card\" id=\"customs\"><h2>Customs</h2>");
    for (i = json_array_size(holds); i-- > 0;) { /* newest first */
        bool open = !*str(h = json_array_get(holds, i), "closed_at");
        const json_t *trs = json_object_get(h, "transitions"), *t;
        size_t j;

        hbuf_printf(b, "<div class=\"hold%s\">", open ? "" : " closed");
        hbuf_puts(b, "<p>");
        badge(b, str(h, "state"));
        hbuf_puts(b, open ? " <strong>Held at customs</strong>" : " <strong>Customs hold ended"
                                                                  "</strong>");
        hbuf_puts(b, "</p><dl class=\"facts\">");
        dt(b, "Reason", words(str(h, "reason")));
        dt(b, "Who must act", words(str(h, "actor")));
        hbuf_puts(b, "<dt>Since</dt><dd>");
        when(b, str(h, "opened_at"), " UTC");
        hbuf_puts(b, "</dd>");
        if (!open) {
            hbuf_puts(b, "<dt>Ended</dt><dd>");
            when(b, str(h, "closed_at"), " UTC");
            hbuf_puts(b, "</dd>");
        }
        hbuf_puts(b, "<dt>Carrier said</dt><dd class=\"raw\">&ldquo;");
        hbuf_esc(b, str(h, "evidence"));
        hbuf_puts(b, "&rdquo;</dd></dl>");
        if (json_array_size(trs) > 0) {
            static const char *const labels[] = { "When (UTC)", "Change", "Reason", "To act",
                                                  "Carrier words" };

            hbuf_puts(b, "<details><summary>How the hold moved</summary>");
            th_row(b, labels, 5);
            json_array_foreach(trs, j, t) {
                char change[48], at[40];

                snprintf(change, sizeof(change), "%s → %s",
                         *str(t, "from_state") ? str(t, "from_state") : "opened",
                         str(t, "to_state"));
                snprintf(at, sizeof(at), "%.10s %.5s", str(t, "at"),
                         strlen(str(t, "at")) > 11 ? str(t, "at") + 11 : "");
                hbuf_puts(b, "<tr>");
                td_time(b, labels[0], at);
                td(b, labels[1], change);
                td(b, labels[2], words(str(t, "reason")));
                td(b, labels[3], words(str(t, "actor")));
                td(b, labels[4], str(t, "evidence"));
                hbuf_puts(b, "</tr>");
            }
            hbuf_puts(b, "</tbody></table></details>");
        }
        hbuf_puts(b, "</div>");
    }
    hbuf_puts(b, "</section>");
}

/* The events, newest first, with both clocks and the carrier's words. */
static void agent_events(struct hbuf *b, const json_t *d)
{
    const json_t *evs = json_object_get(d, "events");
    size_t i;

    hbuf_puts(b, "<section class=\"card\" id=\"timeline\"><h2>Timeline</h2>");
    if (json_array_size(evs) == 0)
        hbuf_puts(b, "<p class=\"muted\">No carrier events yet.</p>");
    hbuf_puts(b, "<ol class=\"events\">");
    for (i = json_array_size(evs); i-- > 0;) {
        const json_t *e = json_array_get(evs, i), *l = json_object_get(e, "location");
        char loc[160];

        hbuf_puts(b, "<li class=\"event\"><div>");
        badge(b, str(e, "status"));
        hbuf_puts(b, " <span class=\"muted\">");
        hbuf_esc(b, str(e, "substatus"));
        if (!json_is_true(json_object_get(e, "affects_status")))
            hbuf_puts(b, " (informational or unmapped code: status unchanged)");
        hbuf_puts(b, "</span></div><div class=\"when\"><span class=\"local\">Local ");
        when(b, str(e, "carrier_local_time"), "");
        hbuf_puts(b, "</span><span class=\"utc\">");
        if (*str(e, "utc"))
            when(b, str(e, "utc"), " UTC");
        else
            hbuf_puts(b, "UTC unknown (the carrier gave no offset)");
        hbuf_puts(b, "</span>");
        if (*str(e, "recipient_time")) {
            hbuf_puts(b, "<span class=\"customer\">Customer ");
            when(b, str(e, "recipient_time"), "");
            hbuf_puts(b, "</span>");
        }
        hbuf_puts(b, "</div><div class=\"raw\">&ldquo;");
        hbuf_esc(b, str(e, "description"));
        hbuf_puts(b, "&rdquo; <span class=\"muted\">");
        hbuf_esc(b, str(e, "code"));
        hbuf_puts(b, "</span></div>");
        snprintf(loc, sizeof(loc), "%s %s %s", str(l, "city"), str(l, "postal_code"),
                 str(l, "country"));
        if (strspn(loc, " ") != strlen(loc)) {
            hbuf_puts(b, "<div class=\"muted\">");
            hbuf_esc(b, loc);
            hbuf_puts(b, "</div>");
        }
        hbuf_puts(b, "</li>");
    }
    hbuf_puts(b, "</ol></section>");
}

static void agent_edd(struct hbuf *b, const json_t *d)
{
    static const char *const labels[] = { "Estimate", "Before", "Source", "Why", "Recorded (UTC)" };
    const json_t *h = json_object_get(d, "edd_history"), *v;
    size_t i;

    hbuf_puts(b, "<section class=\"card\" id=\"edd\"><h2>Estimated delivery history</h2>");
    if (json_array_size(h) == 0) {
        hbuf_puts(b, "<p class=\"muted\">No estimate yet.</p></section>");
        return;
    }
    th_row(b, labels, 5);
    json_array_foreach(h, i, v) {
        char at[40];

        snprintf(at, sizeof(at), "%.10s %.5s", str(v, "recorded_at"),
                 strlen(str(v, "recorded_at")) > 11 ? str(v, "recorded_at") + 11 : "");
        hbuf_puts(b, "<tr>");
        td_time(b, labels[0], str(v, "edd"));
        td_time(b, labels[1], str(v, "previous"));
        td(b, labels[2], str(v, "source"));
        td_word(b, labels[3], str(v, "reason"));
        td_time(b, labels[4], at);
        hbuf_puts(b, "</tr>");
    }
    hbuf_puts(b, "</tbody></table></section>");
}

static void agent_notifications(struct hbuf *b, const json_t *d)
{
    static const char *const labels[] = { "Milestone", "Channel", "Status", "Why",
                                          "When (UTC)", "Tries" };
    const json_t *ns = json_object_get(d, "notifications"), *v;
    size_t i;

    hbuf_puts(b, "<section class=\"card\" id=\"notifications\"><h2>What we told the customer"
                 "</h2>");
    if (json_array_size(ns) == 0) {
        hbuf_puts(b, "<p class=\"muted\">No notifications for this shipment.</p></section>");
        return;
    }
    th_row(b, labels, 6);
    json_array_foreach(ns, i, v) {
        const char *t = *str(v, "sent_at") ? str(v, "sent_at") : str(v, "updated_at");
        char at[40], attempts[24];

        snprintf(at, sizeof(at), "%.10s %.5s", t, strlen(t) > 11 ? t + 11 : "");
        snprintf(attempts, sizeof(attempts), "%lld",
                 (long long)json_integer_value(json_object_get(v, "attempts")));
        hbuf_puts(b, "<tr>");
        td_word(b, labels[0], str(v, "milestone"));
        td(b, labels[1], str(v, "channel"));
        hbuf_puts(b, "<td data-l=\"Status\">");
        badge(b, str(v, "status"));
        hbuf_puts(b, "</td>");
        td_word(b, labels[3], str(v, "reason"));
        td_time(b, labels[4], at);
        td(b, labels[5], attempts);
        hbuf_puts(b, "</tr>");
    }
    hbuf_puts(b, "</tbody></table></section>");
}

void page_agent(struct hbuf *b, const char *query, const json_t *detail, const json_t *matches,
                const char *message)
{
    head(b, detail != NULL ? str(json_object_get(detail, "shipment"), "tracking_number")
                           : "Shipment timeline", true);
    hbuf_puts(b, "<form class=\"card search\" method=\"get\" action=\"/agent\" role=\"search\">"
                 "<input type=\"search\" name=\"q\" aria-label=\"Tracking number or order "
                 "reference\" placeholder=\"Tracking number or order reference\" value=\"");
    hbuf_esc(b, query);
    hbuf_puts(b, "\"><button type=\"submit\">Search</button></form>");
    if (message != NULL) {
        hbuf_puts(b, "<p class=\"card msg\" role=\"status\">");
        hbuf_esc(b, message);
        hbuf_puts(b, "</p>");
    }
    if (matches != NULL) {
        static const char *const labels[] = { "Tracking number", "Carrier", "Order", "Status",
                                              "Destination" };
        const json_t *m;
        size_t i;

        hbuf_puts(b, "<section class=\"card\"><h2>Several shipments match</h2>");
        th_row(b, labels, 5);
        json_array_foreach(matches, i, m) {
            hbuf_printf(b, "<tr><td data-l=\"Tracking number\"><a href=\"/agent?id=%lld\">",
                        (long long)json_integer_value(json_object_get(m, "id")));
            hbuf_esc(b, str(m, "tracking_number"));
            hbuf_puts(b, "</a></td>");
            td(b, labels[1], str(m, "carrier"));
            td(b, labels[2], str(m, "order_ref"));
            hbuf_puts(b, "<td data-l=\"Status\">");
            badge(b, str(m, "status"));
            hbuf_puts(b, "</td>");
            td(b, labels[4], str(m, "destination_country"));
            hbuf_puts(b, "</tr>");
        }
        hbuf_puts(b, "</tbody></table></section>");
    }
    if (detail != NULL) {
        agent_summary(b, detail);
        hbuf_puts(b, "<div class=\"grid\"><div>");
        agent_events(b, detail);
        hbuf_puts(b, "</div><div>");
        agent_customs(b, detail);
        agent_edd(b, detail);
        agent_notifications(b, detail);
        hbuf_puts(b, "</div></div>");
    }
    foot(b);
}

/* Age in seconds as "3d 4h" or "5h". */
static void age(char *buf, size_t cap, long long s)
{
    if (s >= 86400)
        snprintf(buf, cap, "%lldd %lldh", s / 86400, s % 86400 / 3600);
    else
        snprintf(buf, cap, "%lldh %lldm", s / 3600, s % 3600 / 60);
}

static void link_shipment(struct hbuf *b, long long id, const char *tracking)
{
    hbuf_printf(b, "<td data-l=\"Tracking number\"><a href=\"/agent?id=%lld\">", id);
    hbuf_esc(b, tracking);
    hbuf_puts(b, "</a></td>");
}

void page_ops(struct hbuf *b, const json_t *board)
{
    static const char *const s_labels[] = { "Tracking number", "Kind", "Status", "Stuck for",
                                            "Normal" };
    static const char *const h_labels[] = { "Tracking number", "Carrier", "Destination",
                                            "Reason", "To act", "Held for" };
    static const char *const c_labels[] = { "Carrier", "Requests", "Error rate", "Throttled",
                                            "Breaker", "Failing shipments", "Quota left today" };
    const json_t *stuck = json_object_get(board, "stuck"), *v;
    const json_t *holds = json_object_get(board, "long_customs_holds");
    const json_t *carriers = json_object_get(board, "carriers");
    char group[96] = "", cur[96], buf[48];
    size_t i;

    head(b, "Ops board", true);
    hbuf_puts(b, "<h1>Ops board</h1><section class=\"card\" id=\"carriers\"><h2>Carrier health"
                 "</h2>");
    th_row(b, c_labels, 7);
    json_array_foreach(carriers, i, v) {
        long long req = atoll(str(v, "requests")), errs = atoll(str(v, "errors"));
        const json_t *q = json_object_get(v, "quota_remaining");

        hbuf_puts(b, "<tr>");
        td(b, c_labels[0], str(v, "carrier"));
        td(b, c_labels[1], str(v, "requests"));
        if (req > 0)
            snprintf(buf, sizeof(buf), "%.1f%%", 100.0 * (double)errs / (double)req);
        else
            snprintf(buf, sizeof(buf), "-");
        td(b, c_labels[2], buf);
        td(b, c_labels[3], str(v, "throttled"));
        hbuf_puts(b, "<td data-l=\"Breaker\">");
        badge(b, str(v, "breaker"));
        hbuf_puts(b, "</td>");
        td(b, c_labels[5], str(v, "failing_shipments"));
        if (json_is_integer(q))
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(q));
        else
            snprintf(buf, sizeof(buf), "unlimited");
        td(b, c_labels[6], buf);
        hbuf_puts(b, "</tr>");
    }
    hbuf_puts(b, "</tbody></table></section>");

    hbuf_printf(b, "<section class=\"card\" id=\"stuck\"><h2>Stuck parcels (%zu)</h2>",
                json_array_size(stuck));
    if (json_array_size(stuck) == 0)
        hbuf_puts(b, "<p class=\"muted\">Nothing is stuck.</p>");
    /* grouped by carrier and lane: sort order of the list is by age, so
     * collect groups in order of first appearance */
    {
        json_t *seen = json_object();

        json_array_foreach(stuck, i, v) {
            size_t j;
            const json_t *w;

            snprintf(cur, sizeof(cur), "%s %s → %s", str(v, "carrier"),
                     *str(v, "origin_country") ? str(v, "origin_country") : "?",
                     *str(v, "destination_country") ? str(v, "destination_country") : "?");
            if (seen == NULL || json_object_get(seen, cur) != NULL)
                continue;
            json_object_set_new(seen, cur, json_true());
            snprintf(group, sizeof(group), "%s", cur);
            hbuf_puts(b, "<h3>");
            hbuf_esc(b, group);
            hbuf_puts(b, "</h3>");
            th_row(b, s_labels, 5);
            json_array_foreach(stuck, j, w) {
                char lane[96], a1[32], a2[32];

                snprintf(lane, sizeof(lane), "%s %s → %s", str(w, "carrier"),
                         *str(w, "origin_country") ? str(w, "origin_country") : "?",
                         *str(w, "destination_country") ? str(w, "destination_country") : "?");
                if (strcmp(lane, group) != 0)
                    continue;
                age(a1, sizeof(a1), (long long)json_integer_value(json_object_get(w, "age_s")));
                age(a2, sizeof(a2),
                    (long long)json_integer_value(json_object_get(w, "threshold_s")));
                hbuf_puts(b, "<tr>");
                link_shipment(b, (long long)json_integer_value(json_object_get(w, "shipment_id")),
                              str(w, "tracking_number"));
                td_word(b, s_labels[1], str(w, "kind"));
                hbuf_puts(b, "<td data-l=\"Status\">");
                badge(b, str(w, "status"));
                hbuf_puts(b, "</td>");
                td(b, s_labels[3], a1);
                td(b, s_labels[4], a2);
                hbuf_puts(b, "</tr>");
            }
            hbuf_puts(b, "</tbody></table>");
        }
        json_decref(seen);
    }
    hbuf_puts(b, "</section>");

    hbuf_printf(b, "<section class=\"card\" id=\"holds\"><h2>Customs holds open longer than a "
                   "day (%zu)</h2>", json_array_size(holds));
    if (json_array_size(holds) == 0)
        hbuf_puts(b, "<p class=\"muted\">None.</p>");
    else
        th_row(b, h_labels, 6);
    json_array_foreach(holds, i, v) {
        age(buf, sizeof(buf), atoll(str(v, "age_s")));
        hbuf_puts(b, "<tr>");
        link_shipment(b, atoll(str(v, "shipment_id")), str(v, "tracking_number"));
        td(b, h_labels[1], str(v, "carrier"));
        td(b, h_labels[2], str(v, "destination_country"));
        td(b, h_labels[3], words(str(v, "reason")));
        td(b, h_labels[4], words(str(v, "actor")));
        td(b, h_labels[5], buf);
        hbuf_puts(b, "</tr>");
    }
    if (json_array_size(holds) > 0)
        hbuf_puts(b, "</tbody></table>");
    hbuf_puts(b, "</section>");
    foot(b);
}

void page_public(struct hbuf *b, const json_t *tl)
{
    const json_t *s = json_object_get(tl, "shipment"), *evs = json_object_get(tl, "events");
    const json_t *holds = json_object_get(tl, "customs_holds");
    const json_t *h = json_array_get(holds, json_array_size(holds) - 1);
    size_t i;

    head(b, "Parcel status", false);
    hbuf_puts(b, "<section class=\"card\" id=\"summary\"><h1>Parcel ");
    hbuf_esc(b, str(s, "tracking_number"));
    hbuf_puts(b, "</h1><p id=\"status\">");
    badge(b, str(s, "status"));
    hbuf_puts(b, "</p><dl class=\"facts\">");
    dt(b, "Carrier", str(s, "carrier"));
    dt(b, "Estimated delivery", str(s, "estimated_delivery"));
    if (h != NULL && !*str(h, "closed_at")) {
        dt(b, "Customs", words(str(h, "reason")));
        dt(b, "Who must act", words(str(h, "actor")));
    }
    hbuf_puts(b, "</dl></section><section class=\"card\" id=\"timeline\"><h2>Journey</h2>"
                 "<ol class=\"events\">");
    for (i = json_array_size(evs); i-- > 0;) {
        const json_t *e = json_array_get(evs, i), *l = json_object_get(e, "location");
        char place[96];

        hbuf_puts(b, "<li class=\"event\"><div>");
        badge(b, str(e, "status"));
        hbuf_puts(b, " <span class=\"muted\">");
        hbuf_esc(b, str(e, "substatus"));
        hbuf_puts(b, "</span></div><div class=\"when\"><span>");
        when(b, *str(e, "recipient_time") ? str(e, "recipient_time")
                                          : str(e, "carrier_local_time"), "");
        hbuf_puts(b, "</span></div>");
        snprintf(place, sizeof(place), "%s %s", str(l, "city"), str(l, "country"));
        if (strspn(place, " ") != strlen(place)) {
            hbuf_puts(b, "<div class=\"muted\">");
            hbuf_esc(b, place);
            hbuf_puts(b, "</div>");
        }
        hbuf_puts(b, "</li>");
    }
    hbuf_puts(b, "</ol></section>");
    foot(b);
}

void page_unsubscribe(struct hbuf *b, long long recipient_id, const char *channel,
                      const char *token, bool done)
{
    const char *what = strcmp(channel, "sms") == 0 ? "text messages" : "emails";

    head(b, "Unsubscribe", false);
    hbuf_puts(b, "<div class=\"card\"><h1>");
    if (done) {
        hbuf_printf(b, "You are unsubscribed</h1><p>You will get no more shipment %s from us. "
                       "Orders you place are not affected.</p></div>", what);
        foot(b);
        return;
    }
    hbuf_printf(b, "Stop shipment %s?</h1><p>Press the button to stop shipment updates by %s."
                   "</p>", what, strcmp(channel, "sms") == 0 ? "SMS" : "email");
    /* the link's own parameters; the body says One-Click as RFC 8058 clients do */
    hbuf_printf(b, "<form method=\"post\" action=\"/unsubscribe?r=%lld&amp;c=", recipient_id);
    hbuf_esc(b, channel);
    hbuf_puts(b, "&amp;t=");
    hbuf_esc(b, token);
    hbuf_puts(b, "\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                 "<button type=\"submit\">Unsubscribe</button></form></div>");
    foot(b);
}
