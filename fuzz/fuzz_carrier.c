/*
 * fuzz_carrier.c - every parser of one carrier driver on untrusted bytes.
 *
 * Built once per driver with -DFUZZ_CARRIER="name". Input:
 *   byte 0       selects the HTTP status the body arrives with
 *   bytes 1..    "NUMBER[,NUMBER...]\n" then the response body
 * The body goes through parse_response for those numbers and, where the
 * driver has them, through the OAuth2 token and the registration parsers.
 * Every result must be well formed: outcome in range, strings terminated,
 * events within the caps.
 */
#include "fuzz.h" /* first: keeps assert() on in every build type */

#include <stdlib.h>

#include "carrier.h"

#ifndef FUZZ_CARRIER
#error "build with -DFUZZ_CARRIER=\"name\""
#endif

static const long statuses[] = { 200, 207, 400, 401, 403, 404, 429, 500, 503 };

static void check_result(const struct track_result *r)
{
    assert(r->outcome <= TRACK_NEEDS_REGISTER);
    assert(memchr(r->errmsg, '\0', sizeof(r->errmsg)) != NULL);
    assert(memchr(r->estimated_delivery, '\0', sizeof(r->estimated_delivery)) != NULL);
    assert(r->n_events <= CARRIER_MAX_EVENTS && r->n_events <= r->cap_events);
    for (size_t i = 0; i < r->n_events; i++) {
        const struct track_event *ev = &r->events[i];

        assert(ev->status < ST_STATUS__COUNT);
        assert(memchr(ev->description, '\0', sizeof(ev->description)) != NULL);
        assert(memchr(ev->code, '\0', sizeof(ev->code)) != NULL);
        assert(memchr(ev->city, '\0', sizeof(ev->city)) != NULL);
        assert(memchr(ev->country, '\0', sizeof(ev->country)) != NULL);
        assert(ev->utc_offset_min >= -1080 && ev->utc_offset_min <= 1080);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct carrier_def *def = carrier_find(FUZZ_CARRIER);
    const struct carrier_ctx ctx = { "https://carrier.invalid", "key", "id", "secret", "token",
                                     "en" };
    char line[CARRIER_MAX_BATCH * 48], *save = NULL, *tok, err[512];
    const char *numbers[CARRIER_MAX_BATCH];
    struct track_result results[CARRIER_MAX_BATCH];
    bool registered[CARRIER_MAX_BATCH];
    const uint8_t *head, *body;
    size_t head_len, body_len, n = 0;
    long status;

    assert(def != NULL);
    if (size < 1)
        return 0;
    status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
    fuzz_split(data + 1, size - 1, '\n', &head, &head_len, &body, &body_len);
    if (head_len >= sizeof(line))
        return 0;
    memcpy(line, head, head_len);
    line[head_len] = '\0';
    for (tok = strtok_r(line, ",", &save); tok != NULL && n < def->batch_max;
         tok = strtok_r(NULL, ",", &save))
        numbers[n++] = tok;
    if (n == 0)
        numbers[n++] = "00340434161094042557";

    memset(results, 0, sizeof(results));
    (void)def->ops->parse_response(&ctx, status, (const char *)body, body_len, numbers, n, results,
                                   err, sizeof(err));
    for (size_t i = 0; i < n; i++) {
        check_result(&results[i]);
        track_result_reset(&results[i]);
    }
    if (def->ops->parse_token_response != NULL) {
        struct carrier_token *t = calloc(1, sizeof(*t));

        if (t != NULL &&
            def->ops->parse_token_response(status, (const char *)body, body_len, t, err,
                                           sizeof(err)) == ST_OK)
            assert(t->access_token[0] != '\0' && t->expires_in_s >= 0);
        free(t);
    }
    if (def->ops->parse_register_response != NULL)
        (void)def->ops->parse_register_response(&ctx, status, (const char *)body, body_len,
                                                numbers, n, registered, err, sizeof(err));
    return 0;
}
