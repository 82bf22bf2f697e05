/*
 * log.c - the logger: level gate, text/json lines, PII masking.
 */
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#define LOG_LINE_MAX 4096

static enum log_level log_min = LOG_INFO;
static bool log_json;
static FILE *log_out;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_setup(const char *level, const char *format, FILE *out)
{
    for (int i = 0; level != NULL && i < 4; i++)
        if (strcmp(level, level_names[i]) == 0)
            log_min = (enum log_level)i;
    if (format != NULL && strcmp(format, "json") == 0)
        log_json = true;
    else if (format != NULL && strcmp(format, "text") == 0)
        log_json = false;
    log_out = out;
}

bool log_enabled(enum log_level lvl)
{
    return lvl >= log_min;
}

static bool is_email_char(unsigned char c)
{
    return isalnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

char *log_mask_pii(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in), o = 0, i = 0;

    if (cap == 0)
        return out;
    while (i < n && o + 1 < cap) {
        unsigned char c = (unsigned char)in[i];

        /* phone: '+' then 7..15 digits, optionally grouped by spaces or dashes */
        if (c == '+' && i + 1 < n && isdigit((unsigned char)in[i + 1]) &&
            (i == 0 || !isalnum((unsigned char)in[i - 1]))) {
            size_t j = i + 1, digits = 0;

            while (j < n && (isdigit((unsigned char)in[j]) ||
                             ((in[j] == ' ' || in[j] == '-') && j + 1 < n &&
                              isdigit((unsigned char)in[j + 1])))) {
                if (isdigit((unsigned char)in[j]))
                    digits++;
                j++;
            }
            if (digits >= 7 && digits <= 15) {
                size_t seen = 0;

                for (size_t k = i; k < j && o + 1 < cap; k++) {
                    if (!isdigit((unsigned char)in[k])) {
                        out[o++] = in[k];
                        continue;
                    }
                    seen++;
                    out[o++] = (seen <= 2 || seen > digits - 2) ? in[k] : '*';
                }
                i = j;
                continue;
            }
        }
        /* email: local@domain.tld; mask all but first char of local and domain */
        if (c == '@' && i > 0 && is_email_char((unsigned char)in[i - 1])) {
            size_t start = i, end = i + 1, dot = 0;

            while (start > 0 && is_email_char((unsigned char)in[start - 1]))
                start--;
            while (end < n && (isalnum((unsigned char)in[end]) || in[end] == '.' ||
                               in[end] == '-')) {
                if (in[end] == '.')
                    dot = end;
                end++;
            }
            if (dot > i + 1 && dot + 1 < end) {
                /* rewind the local part already copied, then write "j***@e***" */
                o = o >= i - start ? o - (i - start) : 0;
                if (o + 9 < cap) {
                    out[o++] = in[start];
                    memcpy(out + o, "***@", 4);
                    o += 4;
                    out[o++] = in[i + 1];
                    memcpy(out + o, "***", 3);
                    o += 3;
                }
                for (size_t k = dot; k < end && o + 1 < cap; k++)
                    out[o++] = in[k];
                i = end;
                continue;
            }
        }
        out[o++] = (char)c;
        i++;
    }
    out[o] = '\0';
    return out;
}

/* Append s to buf as a JSON string body (no quotes), escaping as needed. */
static size_t json_escape(char *buf, size_t o, size_t cap, const char *s)
{
    for (; *s != '\0' && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", c);
        } else
            buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return o;
}

void st_log(enum log_level lvl, const char *event, long long shipment_id, const char *carrier,
            const char *fmt, ...)
{
    char raw[LOG_LINE_MAX], msg[LOG_LINE_MAX], line[LOG_LINE_MAX * 2], ts[64];
    struct timespec now;
    struct tm tm;
    FILE *out = log_out ? log_out : stderr;
    va_list ap;
    size_t o;

    if (lvl < log_min)
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    log_mask_pii(raw, msg, sizeof(msg));
    for (char *p = msg; *p != '\0'; p++) /* one event, one line */
        if (*p == '\n' || *p == '\r')
            *p = ' ';

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(now.tv_nsec / 1000000));

    if (log_json) {
        o = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"",
                             ts, level_names[lvl]);
        o = json_escape(line, o, sizeof(line), event);
        if (shipment_id > 0)
            o += (size_t)snprintf(line + o, sizeof(line) - o, "\",\"shipment_id\":%lld",
                                  shipment_id);
        else
            o += (size_t)snprintf(line + o, sizeof(line) - o, "\"");
        if (carrier != NULL) {
            o += (size_t)snprintf(line + o, sizeof(line) - o, ",\"carrier\":\"");
            o = json_escape(line, o, sizeof(line), carrier);
            o += (size_t)snprintf(line + o, sizeof(line) - o, "\"");
        }
        o += (size_t)snprintf(line + o, sizeof(line) - o, ",\"msg\":\"");
        o = json_escape(line, o, sizeof(line), msg);
        snprintf(line + o, sizeof(line) - o, "\"}");
    } else {
        o = (size_t)snprintf(line, sizeof(line), "%s %-5s %s", ts, level_names[lvl], event);
        if (shipment_id > 0 && o < sizeof(line))
            o += (size_t)snprintf(line + o, sizeof(line) - o, " shipment=%lld", shipment_id);
        if (carrier != NULL && o < sizeof(line))
            o += (size_t)snprintf(line + o, sizeof(line) - o, " carrier=%s", carrier);
        if (o < sizeof(line))
            snprintf(line + o, sizeof(line) - o, " %s", msg);
    }
    fprintf(out, "%s\n", line);
    fflush(out);
}
