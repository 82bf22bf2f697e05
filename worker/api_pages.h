/*
 * api_pages.h - the api role's server-rendered HTML pages.
 *
 * Each builder appends one whole document to a capped buffer (html.h). All
 * data is HTML-escaped; pages load only /style.css from the same origin and
 * run no script, so they work under "Content-Security-Policy: default-src
 * 'self'". The input JSON is what the JSON API returns for the same thing.
 */
#ifndef ST_API_PAGES_H
#define ST_API_PAGES_H

#include <jansson.h>
#include <stdbool.h>

#include "html.h"

/* The stylesheet served at /style.css. */
extern const char api_stylesheet[];

/* Login form (a token field); message (may be NULL) says why it is shown. */
void page_login(struct hbuf *out, const char *message);
/* A title and one sentence (errors, denials). */
void page_message(struct hbuf *out, const char *title, const char *text);
/* Agent page: the search box (query pre-filled, may be NULL), then either
 * one shipment's detail (GET /v1/shipments/{id} JSON), a list of matches
 * (GET /v1/shipments list) or message. Any of them may be NULL. */
void page_agent(struct hbuf *out, const char *query, const json_t *detail, const json_t *matches,
                const char *message);
/* Ops board: {stuck[], long_customs_holds[], carriers[]}. */
void page_ops(struct hbuf *out, const json_t *board);
/* The public status page of a timeline (timeline_load JSON): statuses,
 * places, times, customs reason and who must act, the estimate; nothing
 * personal and no carrier free text. */
void page_public(struct hbuf *out, const json_t *timeline);
/* Unsubscribe: the confirmation form (done false) or the result (done true). */
void page_unsubscribe(struct hbuf *out, long long recipient_id, const char *channel,
                      const char *token, bool done);

#endif
