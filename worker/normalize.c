/*
 * normalize.c - print the normalized events of a saved carrier response.
 *
 * For driver authors and support: "what does shiptrack make of this body?".
 * Output: one JSON object per line, per event: number, occurred_at (UTC with
 * Z when the offset is known, else the carrier's local time without a zone),
 * offset_known, offset_source, local_time, utc_offset_min (when known),
 * status, substatus, code,
 * description, location {city, postal_code, country}, customs, and
 * estimated_delivery when the carrier gives one. A number without events
 * prints {number, outcome[, error, message]}.
 */
#include "normalize.h"

#include <jansson.h>
#include <string.h>

#include "detect.h"

#define MAX_FOUND CARRIER_MAX_BATCH

/* Collect distinct string values of the body that are valid numbers for the
 * carrier (used when the caller names none). */
static void find_numbers(json_t *v, const char *carrier, char found[][48], size_t *n, int depth)
{
    const char *key;
    json_t *item;
    size_t i;

    if (v == NULL || depth > 32 || *n >= MAX_FOUND)
        return;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char why[8];

        if (strlen(s) < 8 || strlen(s) >= 48 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != strlen(s) ||
            !detect_valid_for(carrier, s, why, sizeof(why)))
            return;
        for (i = 0; i < *n; i++)
            if (strcmp(found[i], s) == 0)
                return;
        snprintf(found[(*n)++], 48, "%s", s);
    } else if (json_is_object(v)) {
        json_object_foreach(v, key, item)
            find_numbers(item, carrier, found, n, depth + 1);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item)
            find_numbers(item, carrier, found, n, depth + 1);
    }
}

static int print_event(FILE *out, const char *number, const struct track_event *ev,
                       const char *edd)
{
    char at[32];
    struct tm tm;
    json_t *o;
    int rc;

    if (ev->offset_kind == OFFSET_UNKNOWN)
        snprintf(at, sizeof(at), "%s", ev->occurred_local);
    else {
        gmtime_r(&ev->occurred_at, &tm);
        strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    o = json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:b}",
                  "number", number, "occurred_at", at, "offset_known",
                  ev->offset_kind != OFFSET_UNKNOWN, "offset_source",
                  offset_kind_name(ev->offset_kind), "local_time", ev->occurred_local, "status",
                  st_status_name(ev->status), "substatus", st_substatus_name(ev->substatus),
                  "code", ev->code, "description", ev->description, "location", "city",
                  ev->city, "postal_code", ev->postal_code, "country", ev->country, "customs",
                  ev->customs);
    if (o == NULL)
        return -1;
    if (ev->offset_kind != OFFSET_UNKNOWN)
        json_object_set_new(o, "utc_offset_min", json_integer(ev->utc_offset_min));
    if (!ev->affects_status)
        json_object_set_new(o, "affects_status", json_false());
    if (edd[0] != '\0')
        json_object_set_new(o, "estimated_delivery", json_string(edd));
    rc = json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', out);
    json_decref(o);
    return rc;
}

int normalize_print(FILE *out, const struct carrier_def *def, long http_status, const char *body,
                    size_t len, const char *const *numbers, size_t n)
{
    struct track_result res[CARRIER_MAX_BATCH];
    struct carrier_ctx ctx = { .base_url = def->default_base_url, .api_key = "-",
                               .client_id = "-", .client_secret = "-", .access_token = "-" };
    char found[MAX_FOUND][48], err[512] = "";
    const char *nums[CARRIER_MAX_BATCH];
    json_error_t je;
    json_t *doc = json_loadb(body, len, 0, &je);
    enum st_err rc;

    if (http_status == 0) { /* problem+json and similar carry their status */
        json_t *st = json_is_object(doc) ? json_object_get(doc, "status") : NULL;

        http_status = json_is_integer(st) ? (long)json_integer_value(st) : 200;
    }
    if (n == 0) {
        size_t k = 0;

        if (doc != NULL)
            find_numbers(doc, def->name, found, &k, 0);
        for (size_t i = 0; i < k && i < def->batch_max; i++)
            nums[n++] = found[i];
        if (n == 0) { /* no number in the body (e.g. an error): parse for one placeholder */
            nums[0] = "UNKNOWN";
            n = 1;
        }
    } else {
        if (n > def->batch_max || n > CARRIER_MAX_BATCH) {
            fprintf(stderr, "shiptrack normalize: %s takes at most %u numbers per response\n",
                    def->name, def->batch_max);
            json_decref(doc);
            return 1;
        }
        memcpy(nums, numbers, n * sizeof(*nums));
    }
    json_decref(doc);
    memset(res, 0, sizeof(res));
    rc = def->ops->parse_response(&ctx, http_status, body, len, nums, n, res, err, sizeof(err));
    if (rc != ST_OK) {
        fprintf(stderr, "shiptrack normalize: %s (%s, HTTP %ld)\n", err[0] ? err : "rejected",
                st_err_name(rc), http_status);
        for (size_t i = 0; i < n; i++)
            track_result_reset(&res[i]);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct track_result *r = &res[i];

        if (r->outcome == TRACK_FOUND && r->n_events > 0) {
            for (size_t k = 0; k < r->n_events; k++)
                print_event(out, nums[i], &r->events[k], r->estimated_delivery);
        } else {
            json_t *o = json_pack("{s:s, s:s}", "number", nums[i], "outcome",
                                  track_outcome_name(r->outcome));

            if (o != NULL && r->outcome == TRACK_ERROR) {
                json_object_set_new(o, "error", json_string(st_err_name(r->err)));
                json_object_set_new(o, "message", json_string(r->errmsg));
            }
            if (o != NULL) {
                json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER);
                fputc('\n', out);
            }
            json_decref(o);
        }
        track_result_reset(&res[i]);
    }
    return 0;
}
