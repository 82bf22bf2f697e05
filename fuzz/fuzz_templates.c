/*
 * fuzz_templates.c - the shipped templates with untrusted message data.
 *
 * Message data comes from outbox events and shipments (carrier words, order
 * references, dates): the renderer must refuse bad data with a reason or
 * produce a message whose subject holds no CR/LF. Input: byte 0 picks the
 * milestone, byte 1 the locale, byte 2 the channel; the rest is JSON data.
 * The templates are read from $SHIPTRACK_TEMPLATES_DIR (default: the
 * source tree's templates/).
 */
#include "fuzz.h" /* first: keeps assert() on in every build type */

#include <jansson.h>
#include <stdlib.h>

#include "templates.h"

#ifndef ST_SOURCE_DIR
#define ST_SOURCE_DIR "."
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = getenv("SHIPTRACK_TEMPLATES_DIR");
    struct tpl_message msg;
    char err[512];
    json_t *json;
    enum tpl_channel ch;

    if (size < 3)
        return 0;
    if (dir == NULL)
        dir = ST_SOURCE_DIR "/templates";
    json = json_loadb((const char *)data + 3, size - 3, 0, NULL);
    if (json == NULL)
        return 0;
    ch = data[2] & 1 ? TPL_SMS : TPL_EMAIL;
    memset(&msg, 0, sizeof(msg));
    if (templates_render(dir, templates_milestones[data[0] % templates_milestones_count],
                         templates_locales[data[1] % templates_locales_count], ch, json, &msg,
                         err, sizeof(err)) == ST_OK) {
        if (ch == TPL_EMAIL)
            assert(msg.subject != NULL && strpbrk(msg.subject, "\r\n") == NULL);
    } else
        assert(err[0] != '\0');
    tpl_message_free(&msg);
    json_decref(json);
    return 0;
}
