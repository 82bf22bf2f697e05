/*
 * unsubscribe.c - sign and verify one-click unsubscribe links (unsubscribe.h).
 */
#include "unsubscribe.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

/* Hex HMAC-SHA256 of "recipient_id.channel" into hex[UNSUBSCRIBE_TOKEN_LEN + 1]. */
static bool sign(const char *key, long long recipient_id, const char *channel, char *hex)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char msg[64];
    int len;

    if (key == NULL || channel == NULL)
        return false;
    len = snprintf(msg, sizeof(msg), "%lld.%s", recipient_id, channel);
    if (len < 0 || (size_t)len >= sizeof(msg))
        return false;
    if (HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg, (size_t)len, mac,
             &maclen) == NULL || maclen * 2 != UNSUBSCRIBE_TOKEN_LEN)
        return false;
    for (unsigned int i = 0; i < maclen; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    hex[2 * maclen] = '\0';
    return true;
}

bool unsubscribe_url(const struct st_config *cfg, long long recipient_id, const char *channel,
                     char *buf, size_t cap)
{
    char hex[UNSUBSCRIBE_TOKEN_LEN + 1];
    const char *base = cfg->public_url;
    size_t bl;
    int len;

    if (base == NULL || !sign(cfg->unsubscribe_secret, recipient_id, channel, hex))
        return false;
    bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    len = snprintf(buf, cap, "%.*s/unsubscribe?r=%lld&c=%s&t=%s", (int)bl, base, recipient_id,
                   channel, hex);
    return len > 0 && (size_t)len < cap;
}

bool unsubscribe_verify(const struct st_config *cfg, long long recipient_id, const char *channel,
                        const char *token)
{
    char hex[UNSUBSCRIBE_TOKEN_LEN + 1];

    if (token == NULL || strlen(token) != UNSUBSCRIBE_TOKEN_LEN || recipient_id <= 0 ||
        !sign(cfg->unsubscribe_secret, recipient_id, channel, hex))
        return false;
    return CRYPTO_memcmp(hex, token, UNSUBSCRIBE_TOKEN_LEN) == 0;
}
