/*
 * channel.c - the registry of notification channels and shared names.
 *
 * Each channel file (email.c, sms.c) exports one const channel_def; this
 * file lists them in one place, the way carriers/registry.c lists drivers.
 */
#include "channel.h"

#include <string.h>

const struct channel_def *const channel_defs[] = {
    &email_channel,
    &sms_channel,
    NULL,
};

const struct channel_def *channel_find(const char *name)
{
    for (size_t i = 0; name != NULL && channel_defs[i] != NULL; i++)
        if (strcmp(channel_defs[i]->name, name) == 0)
            return channel_defs[i];
    return NULL;
}

const char *channel_flag_name(enum channel_flag f)
{
    switch (f) {
    case CHANNEL_FLAG_NONE: return "none";
    case CHANNEL_FLAG_OPTED_OUT: return "opted_out";
    case CHANNEL_FLAG_INVALID_NUMBER: return "invalid_number";
    case CHANNEL_FLAG_BAD_ADDRESS: return "bad_address";
    }
    return "invalid";
}
