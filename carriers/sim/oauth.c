/*
 * oauth.c - OAuth2 client-credentials tokens for the simulated carriers.
 *
 * UPS, FedEx and USPS each issue bearer tokens from their own token endpoint;
 * their renderers share this table. Tokens live for --token-ttl wall-clock
 * seconds and, with --token-max-uses N, answer 401 after N uses, so the
 * poller's refresh-before-expiry and refresh-on-401 paths can be tested.
 * Requests arrive on several threads: the table is guarded by one mutex.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#define TOKENS_MAX 1024

struct token {
    char value[48];       /* "sim-<carrier>-<serial>-<hex>" */
    char carrier[16];
    long long expires_ms; /* CLOCK_MONOTONIC milliseconds (whole seconds would cut a
                             2 s token's life to anything between 1 and 2 s) */
    unsigned uses;
};

static struct token tokens[TOKENS_MAX];
static size_t n_tokens, next_slot;
static unsigned long serial;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static long long mono_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool sim_oauth_client_ok(const struct sim_env *env, const char *id, const char *secret)
{
    return id != NULL && secret != NULL && strcmp(id, env->opt->oauth_client_id) == 0 &&
           strcmp(secret, env->opt->oauth_client_secret) == 0;
}

bool sim_oauth_issue(const struct sim_env *env, const char *carrier, char *buf, size_t cap,
                     long *expires_in)
{
    struct token *t;
    unsigned long long mix;

    if (cap < 48)
        return false;
    pthread_mutex_lock(&lock);
    /* a ring: the oldest token is forgotten once the table is full */
    t = &tokens[next_slot];
    next_slot = (next_slot + 1) % TOKENS_MAX;
    if (n_tokens < TOKENS_MAX)
        n_tokens++;
    serial++;
    mix = (serial * 0x9E3779B97F4A7C15ULL) ^ env->opt->seed;
    snprintf(t->carrier, sizeof(t->carrier), "%s", carrier);
    snprintf(t->value, sizeof(t->value), "sim-%.8s-%lu-%016llx", carrier, serial, mix);
    t->expires_ms = mono_now_ms() + (long long)env->opt->token_ttl * 1000;
    t->uses = 0;
    snprintf(buf, cap, "%s", t->value);
    pthread_mutex_unlock(&lock);
    *expires_in = (long)env->opt->token_ttl;
    return true;
}

bool sim_oauth_valid(const struct sim_env *env, const char *carrier, const char *authorization)
{
    const char *tok;
    bool ok = false;

    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    tok = authorization + 7;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_tokens; i++) {
        struct token *t = &tokens[i];

        if (strcmp(t->value, tok) != 0 || strcmp(t->carrier, carrier) != 0)
            continue;
        t->uses++;
        ok = mono_now_ms() < t->expires_ms &&
             (env->opt->token_max_uses == 0 || t->uses <= env->opt->token_max_uses);
        break;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

/* Value of one base64 character, -1 if not one. */
static int b64(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool sim_basic_auth(const char *authorization, char *id, size_t idcap, char *secret,
                    size_t secretcap)
{
    char plain[512];
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    const char *p, *colon;

    if (authorization == NULL || strncasecmp(authorization, "Basic ", 6) != 0)
        return false;
    for (p = authorization + 6; *p != '\0' && *p != '='; p++) {
        int v = b64((unsigned char)*p);

        if (v < 0)
            return false;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= sizeof(plain))
                return false;
            plain[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    plain[o] = '\0';
    colon = strchr(plain, ':');
    if (colon == NULL || (size_t)(colon - plain) >= idcap || strlen(colon + 1) >= secretcap)
        return false;
    memcpy(id, plain, (size_t)(colon - plain));
    id[colon - plain] = '\0';
    strcpy(secret, colon + 1);
    return true;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool sim_form_value(const char *body, const char *key, char *buf, size_t cap)
{
    size_t klen = strlen(key);
    const char *p = body;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t o = 0;

            for (size_t i = klen + 1; i < len; i++) {
                int c = (unsigned char)p[i];

                if (c == '+')
                    c = ' ';
                else if (c == '%' && i + 2 < len && hexval(p[i + 1]) >= 0 &&
                         hexval(p[i + 2]) >= 0) {
                    c = hexval(p[i + 1]) * 16 + hexval(p[i + 2]);
                    i += 2;
                }
                if (o + 1 >= cap)
                    return false;
                buf[o++] = (char)c;
            }
            buf[o] = '\0';
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}
