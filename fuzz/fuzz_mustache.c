/*
 * fuzz_mustache.c - the mustache renderer on an untrusted template and data.
 *
 * Input: template bytes, a NUL, then JSON data (an object). The template is
 * rendered HTML-escaped and plain, with a partial loader that serves the
 * template itself (so recursion caps are exercised) and a small output cap.
 */
#include "fuzz.h" /* first: keeps assert() on in every build type */

#include <jansson.h>
#include <stdlib.h>

#include "mustache.h"

static char *self_partial(void *ud, const char *name)
{
    (void)name;
    return strdup((const char *)ud);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *t, *d;
    size_t tlen, dlen;
    char *tmpl, *out = NULL, err[256];
    json_t *json;

    fuzz_split(data, size, '\0', &t, &tlen, &d, &dlen);
    if (tlen > 16384)
        return 0;
    tmpl = malloc(tlen + 1);
    if (tmpl == NULL)
        return 0;
    memcpy(tmpl, t, tlen);
    tmpl[tlen] = '\0';
    json = json_loadb((const char *)d, dlen, JSON_DECODE_ANY, NULL);
    for (int html = 0; html < 2; html++) {
        struct mustache_opts o = { html == 1, 65536, 16, self_partial, tmpl };

        if (mustache_render(tmpl, json, &o, &out, err, sizeof(err)) == 0) {
            assert(out != NULL);
            free(out);
        } else
            assert(out == NULL && err[0] != '\0');
    }
    (void)mustache_check(tmpl, err, sizeof(err));
    json_decref(json);
    free(tmpl);
    return 0;
}
