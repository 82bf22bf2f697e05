/*
 * unsubscribe.h - signed one-click unsubscribe links (RFC 8058).
 *
 * The notifier puts PUBLIC_URL/unsubscribe?r=RECIPIENT&c=CHANNEL&t=TOKEN into
 * every non-transactional message; the api role's /unsubscribe checks the
 * token before it records the opt-out. TOKEN is the lower-case hex
 * HMAC-SHA256 of "RECIPIENT.CHANNEL" under SHIPTRACK_UNSUBSCRIBE_SECRET, so
 * a link names one recipient's one channel and cannot be forged or moved to
 * another recipient without the key. Links do not expire: an old email must
 * still be able to unsubscribe.
 */
#ifndef ST_UNSUBSCRIBE_H
#define ST_UNSUBSCRIBE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Length of a token: hex of a SHA-256. */
#define UNSUBSCRIBE_TOKEN_LEN 64

/* The signed one-click unsubscribe URL of a recipient's channel into buf
 * (PUBLIC_URL/unsubscribe?r=ID&c=CHANNEL&t=HMAC-SHA256 hex). false when the
 * public URL or the secret is unset, or the URL does not fit. */
bool unsubscribe_url(const struct st_config *cfg, long long recipient_id, const char *channel,
                     char *buf, size_t cap);

/* True when token is the signature of (recipient_id, channel) under the
 * configured secret. Compared in constant time; false for any malformed
 * input and when no secret is configured. */
bool unsubscribe_verify(const struct st_config *cfg, long long recipient_id, const char *channel,
                        const char *token);

#endif
