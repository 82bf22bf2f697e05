/*
 * channel.h - the notification channel family (email, SMS).
 *
 * A channel delivers rendered notifications to one kind of recipient address.
 * Like the carrier drivers (carriers/carrier.h), a channel is a const table of
 * functions (struct channel_ops) kept apart from its descriptive data
 * (struct channel_def); each channel file exports one def and keeps the rest
 * static. channel_defs[] in channel.c lists them.
 *
 * Formatting is separate from I/O: email_build() and sms_build() /
 * sms_parse_response() turn data into wire bytes and wire bytes into results
 * without touching the network, so they are tested on data alone. The ops'
 * send() does the I/O (libesmtp, libcurl) or, when no relay/provider is
 * configured, writes local files (.eml files, JSON lines).
 *
 * Wording: a "batch" is what one send() call delivers; for email it is one
 * SMTP connection (one libesmtp session) carrying every message of the batch.
 *
 * A relay or provider may drop the connection mid-write: the process must
 * ignore SIGPIPE (worker/main.c does).
 *
 * Ownership: messages and results are caller-owned; a channel keeps no
 * pointer into them after send() returns. Secrets (SMTP password, SMS auth
 * token) live only in the channel state and are never logged.
 */
#ifndef ST_CHANNEL_H
#define ST_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"
#include "text.h" /* struct sms_measure, sms_measure_body */

struct st_config;

/* Caps on what data may put into a message. Bigger input is ST_PERMANENT. */
#define EMAIL_ADDR_MAX      254        /* RFC 5321 path limit */
#define EMAIL_NAME_MAX      256        /* display names, bytes */
#define EMAIL_SUBJECT_MAX   512        /* bytes of UTF-8 */
#define EMAIL_URL_MAX       900        /* List-Unsubscribe URL (fits a 998-octet line) */
#define EMAIL_BODY_MAX      (1u << 20) /* each of text and HTML */
#define EMAIL_MESSAGE_MAX   (4u << 20) /* the whole encoded message */
#define EMAIL_MSGID_MAX     256        /* "<...@domain>" */
#define SMS_BODY_MAX        1600       /* characters (Twilio's limit) */
#define SMS_NUMBER_MAX      16         /* "+" and up to 15 digits */
#define SMS_FORM_MAX        16384      /* URL-encoded form body */
#define SMS_URL_MAX         2048
#define SMS_RESPONSE_MAX    65536      /* provider answer bytes kept */
#define CHANNEL_BATCH_MAX   100        /* messages per send() */

enum channel_kind { CHANNEL_EMAIL, CHANNEL_SMS };

/* One email notification, as rendered. Strings are UTF-8; NULL = absent. */
struct email_message {
    const char *from_name;       /* display name; NULL: the configured From's */
    const char *from_addr;       /* NULL: SHIPTRACK_SMTP_FROM */
    const char *to_name;         /* recipient display name, may be NULL */
    const char *to_addr;         /* recipient address, required */
    const char *subject;         /* required, one line */
    const char *text;            /* text/plain part, required */
    const char *html;            /* text/html part, required */
    const char *language;        /* Content-Language (BCP 47), may be NULL */
    bool transactional;          /* purely transactional: no List-Unsubscribe */
    const char *unsubscribe_url; /* https:// one-click URL; required unless transactional */
    time_t date;                 /* Date header; 0 = now */
};

/* One SMS notification. */
struct sms_message {
    const char *to;              /* E.164, "+" then 8 to 15 digits */
    const char *body;            /* UTF-8 text, 1 to SMS_BODY_MAX characters */
};

/* What send() is given: one message of the channel's kind. */
struct channel_msg {
    long long shipment_id;       /* for log lines; <= 0 when none */
    union {
        struct email_message email;
        struct sms_message sms;
    } u;
};

/* Why a permanent failure will never succeed for this address. */
enum channel_flag {
    CHANNEL_FLAG_NONE = 0,
    CHANNEL_FLAG_OPTED_OUT,      /* recipient unsubscribed (Twilio 21610) */
    CHANNEL_FLAG_INVALID_NUMBER, /* not a valid phone number (Twilio 21211) */
    CHANNEL_FLAG_BAD_ADDRESS     /* address rejected by us or by the server (5.1.x) */
};

/* "none", "opted_out", "invalid_number", "bad_address". */
const char *channel_flag_name(enum channel_flag f);

/* Outcome of one message. */
struct channel_result {
    enum st_err err;             /* ST_OK: accepted by the relay/provider/file */
    enum channel_flag flag;      /* for ST_PERMANENT: why */
    int code;                    /* SMTP reply code or HTTP status; 0 = none */
    int provider_code;           /* Twilio error code; 0 = none */
    long retry_after_s;          /* provider's Retry-After, 0 = none */
    char id[EMAIL_MSGID_MAX];    /* Message-ID, or the provider's message sid */
    char status[32];             /* provider status ("queued"), "relayed", "file" */
    char where[512];             /* .eml path or JSON lines file, else "" */
    char errmsg[256];            /* what failed and where; "" on success */
};

/* An open channel. Each channel's state embeds this first. */
struct channel {
    const struct channel_def *def;
};

struct channel_ops {
    /* Open the channel from configuration: a relay/provider when one is
     * configured, else the local file fallback. Returns ST_CONFIG with err
     * naming the key when settings are missing or inconsistent. */
    enum st_err (*open)(const struct st_config *cfg, struct channel **out, char *err,
                        size_t errlen);
    /* Deliver msgs[0..n) (n <= def->batch_max), filling results[i] for each.
     * Returns ST_OK when every message got its own result (each may itself
     * have failed), else the kind of a failure that hit the whole batch
     * (results are filled with it too). */
    enum st_err (*send)(struct channel *ch, const struct channel_msg *msgs, size_t n,
                        struct channel_result *results, char *err, size_t errlen);
    /* Release the channel (NULL is fine); secrets are wiped. */
    void (*close)(struct channel *ch);
};

struct channel_def {
    const char *name;            /* "email", "sms" */
    enum channel_kind kind;
    const struct channel_ops *ops;
    size_t batch_max;            /* messages per send() (one SMTP session for email) */
};

extern const struct channel_def email_channel;
extern const struct channel_def sms_channel;

/* Every channel, NULL-terminated. */
extern const struct channel_def *const channel_defs[];

/* The channel called name, or NULL. */
const struct channel_def *channel_find(const char *name);

/* ---- email formatting (email.c), no I/O ---- */

/* A built message: CRLF line endings, every line <= 998 octets (headers
 * folded to <= 78), 7-bit only. */
struct email_built {
    char *data;                  /* heap, NUL-terminated; email_built_free() */
    size_t len;
    char message_id[EMAIL_MSGID_MAX]; /* "<...@domain>" as in the header */
    char from_addr[EMAIL_ADDR_MAX + 1]; /* envelope sender */
    char to_addr[EMAIL_ADDR_MAX + 1];   /* envelope recipient */
};

/* Build a complete RFC 5322 / MIME message from m. default_from is
 * "Name <addr>" or "addr" (SHIPTRACK_SMTP_FROM) used when m has no from_addr.
 * Any header value with CR, LF, NUL or other control characters, invalid
 * UTF-8, a malformed address or an oversized field fails with ST_PERMANENT
 * and a reason naming the field; out is then left empty. */
enum st_err email_build(const struct email_message *m, const char *default_from,
                        struct email_built *out, char *err, size_t errlen);
void email_built_free(struct email_built *b);

/* True for a plain ASCII addr-spec we accept: dot-atom local part (<= 64),
 * a domain of LDH labels, <= EMAIL_ADDR_MAX in all. */
bool email_addr_valid(const char *addr);

/* Parse "Name <addr>" or "addr" into name (may come back "") and addr.
 * Returns false on anything else. */
bool email_parse_mailbox(const char *s, char *name, size_t namecap, char *addr, size_t addrcap);

/* ---- SMS formatting (sms.c), no I/O ---- */

/* An HTTP request for the provider. */
struct sms_request {
    char url[SMS_URL_MAX];       /* {base}/2010-04-01/Accounts/{sid}/Messages.json */
    char body[SMS_FORM_MAX];     /* To=...&From=...&Body=... (URL-encoded) */
    size_t body_len;
};

/* Build the provider request for m from base URL, account sid and sender.
 * ST_PERMANENT for a bad number or body, ST_CONFIG for a bad sid/sender/URL. */
enum st_err sms_build(const struct sms_message *m, const char *base_url, const char *account_sid,
                      const char *from, struct sms_request *req, char *err, size_t errlen);

/* Sort a provider answer into res (and return res->err): 2xx with a sid is
 * ST_OK; 429 and 5xx ST_RETRY; 401/403 ST_CONFIG; 21211 and 21610 (and any
 * other 4xx) ST_PERMANENT with res->flag set for the first two. */
enum st_err sms_parse_response(long http_status, const char *body, size_t len,
                               struct channel_result *res);

#endif
