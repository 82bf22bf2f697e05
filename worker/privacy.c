/*
 * privacy.c - erasure (`shiptrack forget`) and the retention job.
 *
 * Both end in erase_recipients(): one statement that anonymizes a set of
 * recipients and everything that points at them, so the two paths cannot
 * drift apart. Every statement is parameterized; the set of ids travels as
 * one bigint[] parameter.
 */
#include "privacy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

/* Carrier wording that puts a person's name after it ("Signed by: J SMITH"). */
#define SIGNER_RE                                                                              \
    "(signed for by|signed by|received by|sign[eé] par|re[cç]u par|unterschrieben von|"         \
    "empfangen von|firmado por|recibido por|firmato da|ricevuto da|assinado por|recebido por|"  \
    "getekend door|ontvangen door|podpisa[lł]|mottaget av)[[:space:]]*:?.*$"

/* Anonymize the recipients whose ids are in $1 (a bigint[] literal). */
static const char erase_sql[] =
    "WITH r AS (SELECT id FROM recipients WHERE id = ANY($1::bigint[])),"
    " s AS (SELECT s.id FROM shipments s JOIN r ON s.recipient_id = r.id),"
    " n AS (UPDATE notifications SET status = 'suppressed', reason = 'erased',"
    "         deferred_until = NULL, updated_at = now()"
    "       WHERE shipment_id IN (SELECT id FROM s)"
    "         AND status IN ('queued', 'deferred', 'failed_temporary') RETURNING 1),"
    " e AS (UPDATE tracking_events SET postal_code = '',"
    "         raw_description = regexp_replace(raw_description, '" SIGNER_RE "', '\\1 [erased]', 'i')"
    "       WHERE shipment_id IN (SELECT id FROM s)"
    "         AND (postal_code <> '' OR raw_description ~* '" SIGNER_RE "') RETURNING 1),"
    " p AS (DELETE FROM preferences WHERE recipient_id IN (SELECT id FROM r) RETURNING 1),"
    " u AS (UPDATE recipients SET email = NULL, phone = NULL, time_zone = 'UTC',"
    "         erased_at = coalesce(erased_at, now())"
    "       WHERE id IN (SELECT id FROM r)"
    "         AND (erased_at IS NULL OR email IS NOT NULL OR phone IS NOT NULL) RETURNING 1)"
    " SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM s), (SELECT count(*) FROM n),"
    "        (SELECT count(*) FROM e)";

static enum st_err erase_recipients(PGconn *conn, const char *ids, struct privacy_stats *st,
                                    char *err, size_t errlen)
{
    const char *p[1] = { ids };
    enum st_err kind = ST_OK;
    PGresult *res = db_exec(conn, "erase recipients", erase_sql, 1, p, PGRES_TUPLES_OK, &kind,
                            err, errlen);

    if (res == NULL)
        return kind;
    st->recipients += atol(PQgetvalue(res, 0, 0));
    st->shipments += atol(PQgetvalue(res, 0, 1));
    st->notifications += atol(PQgetvalue(res, 0, 2));
    st->events += atol(PQgetvalue(res, 0, 3));
    PQclear(res);
    return ST_OK;
}

/* End a transaction: commit, or roll back on a dry run. */
static enum st_err finish(PGconn *conn, bool dry_run, char *err, size_t errlen)
{
    if (dry_run) {
        db_rollback(conn);
        return ST_OK;
    }
    return db_commit(conn, err, errlen);
}

enum st_err privacy_forget(PGconn *conn, enum privacy_key key, const char *value, bool dry_run,
                           struct privacy_stats *st, char *err, size_t errlen)
{
    /* each finds the recipient ids as one array; lookups are index-backed */
    static const char *const find[] = {
        [PRIVACY_EMAIL] = "SELECT coalesce(array_agg(id), '{}') FROM recipients"
                          " WHERE lower(email) = lower($1)",
        [PRIVACY_PHONE] = "SELECT coalesce(array_agg(id), '{}') FROM recipients WHERE phone = $1",
        [PRIVACY_TRACKING] = "SELECT coalesce(array_agg(DISTINCT recipient_id), '{}')"
                             " FROM shipments WHERE tracking_number ="
                             " upper(replace(replace($1, ' ', ''), '-', ''))"
                             " AND recipient_id IS NOT NULL",
        [PRIVACY_ORDER_REF] = "SELECT coalesce(array_agg(DISTINCT recipient_id), '{}')"
                              " FROM shipments WHERE order_ref = $1 AND recipient_id IS NOT NULL",
        [PRIVACY_RECIPIENT] = "SELECT coalesce(array_agg(id), '{}') FROM recipients"
                              " WHERE id = $1::bigint",
    };
    const char *p[1] = { value };
    enum st_err rc;
    PGresult *res;
    char ids[4096];

    memset(st, 0, sizeof(*st));
    if (value == NULL || value[0] == '\0' || strlen(value) > 254)
        return st_fail(err, errlen, ST_PERMANENT, "the value must be 1 to 254 bytes");
    if (key == PRIVACY_RECIPIENT && strspn(value, "0123456789") != strlen(value))
        return st_fail(err, errlen, ST_PERMANENT, "a recipient id is a whole number");
    if ((rc = db_begin(conn, err, errlen)) != ST_OK)
        return rc;
    res = db_exec(conn, "find recipients to erase", find[key], 1, p, PGRES_TUPLES_OK, &rc, err,
                  errlen);
    if (res == NULL)
        goto fail;
    if (PQgetlength(res, 0, 0) >= (int)sizeof(ids)) {
        PQclear(res);
        rc = st_fail(err, errlen, ST_PERMANENT,
                     "the value matches too many recipients; erase them by id");
        goto fail;
    }
    snprintf(ids, sizeof(ids), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if ((rc = erase_recipients(conn, ids, st, err, errlen)) != ST_OK)
        goto fail;
    return finish(conn, dry_run, err, errlen);
fail:
    db_rollback(conn);
    return rc;
}

/* Run one counted statement of the retention pass in its own transaction. */
static enum st_err retention_step(PGconn *conn, const char *what, const char *sql,
                                  const char *cutoff_ms, bool dry_run, long *count, char *err,
                                  size_t errlen)
{
    const char *p[2];
    char batch[16];
    enum st_err rc;
    PGresult *res;

    snprintf(batch, sizeof(batch), "%d", RETENTION_BATCH);
    p[0] = cutoff_ms;
    p[1] = batch;
    if ((rc = db_begin(conn, err, errlen)) != ST_OK)
        return rc;
    res = db_exec(conn, what, sql, 2, p, PGRES_TUPLES_OK, &rc, err, errlen);
    if (res == NULL) {
        db_rollback(conn);
        return rc;
    }
    *count += atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return finish(conn, dry_run, err, errlen);
}

enum st_err privacy_retention(PGconn *conn, const struct retention_policy *pol, bool dry_run,
                              struct privacy_stats *st, char *err, size_t errlen)
{
    char ms[32];
    enum st_err rc;

    memset(st, 0, sizeof(*st));
    if (pol->outbox_ms > 0) {
        snprintf(ms, sizeof(ms), "%lld", pol->outbox_ms);
        rc = retention_step(conn, "purge sent outbox rows",
                            "WITH d AS (DELETE FROM outbox WHERE id IN ("
                            "   SELECT id FROM outbox WHERE sent_at IS NOT NULL AND sent_at <"
                            "   now() - make_interval(secs => $1::float8 / 1000) LIMIT $2)"
                            "   RETURNING 1) SELECT count(*) FROM d",
                            ms, dry_run, &st->outbox, err, errlen);
        if (rc != ST_OK)
            return rc;
    }
    if (pol->raw_ms > 0) {
        snprintf(ms, sizeof(ms), "%lld", pol->raw_ms);
        rc = retention_step(conn, "purge carrier words of finished shipments",
                            "WITH s AS (SELECT id FROM shipments"
                            "   WHERE next_poll_at IS NULL AND raw_purged_at IS NULL"
                            "   AND coalesce(status_at, updated_at) <"
                            "       now() - make_interval(secs => $1::float8 / 1000)"
                            "   ORDER BY coalesce(status_at, updated_at) LIMIT $2),"
                            " e AS (UPDATE tracking_events SET raw_description = ''"
                            "   WHERE shipment_id IN (SELECT id FROM s) AND raw_description <> ''"
                            "   RETURNING 1),"
                            " m AS (UPDATE shipments SET raw_purged_at = now()"
                            "   WHERE id IN (SELECT id FROM s) RETURNING 1)"
                            " SELECT count(*) FROM m", /* e runs to completion all the same */
                            ms, dry_run, &st->raw, err, errlen);
        if (rc != ST_OK)
            return rc;
    }
    if (pol->personal_ms > 0) {
        const char *p[2];
        char batch[16], ids[RETENTION_BATCH * 21 + 3];
        PGresult *res;

        snprintf(ms, sizeof(ms), "%lld", pol->personal_ms);
        snprintf(batch, sizeof(batch), "%d", RETENTION_BATCH);
        p[0] = ms;
        p[1] = batch;
        if ((rc = db_begin(conn, err, errlen)) != ST_OK)
            return rc;
        /* recipients with shipments, every one of them finished before the cutoff */
        res = db_exec(conn, "find recipients past retention",
                      "SELECT coalesce(array_agg(id), '{}') FROM ("
                      " SELECT r.id FROM recipients r WHERE r.erased_at IS NULL"
                      "  AND EXISTS (SELECT 1 FROM shipments s WHERE s.recipient_id = r.id)"
                      "  AND NOT EXISTS (SELECT 1 FROM shipments s WHERE s.recipient_id = r.id"
                      "    AND (s.next_poll_at IS NOT NULL OR coalesce(s.status_at, s.updated_at)"
                      "         >= now() - make_interval(secs => $1::float8 / 1000)))"
                      "  ORDER BY r.id LIMIT $2) x",
                      2, p, PGRES_TUPLES_OK, &rc, err, errlen);
        if (res == NULL) {
            db_rollback(conn);
            return rc;
        }
        snprintf(ids, sizeof(ids), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if ((rc = erase_recipients(conn, ids, st, err, errlen)) != ST_OK) {
            db_rollback(conn);
            return rc;
        }
        if ((rc = finish(conn, dry_run, err, errlen)) != ST_OK)
            return rc;
    }
    if (!dry_run && (st->outbox || st->raw || st->recipients))
        log_info("retention.pass", 0, NULL,
                 "deleted %ld sent outbox rows, purged carrier words of %ld shipments, "
                 "erased %ld recipients", st->outbox, st->raw, st->recipients);
    return ST_OK;
}
