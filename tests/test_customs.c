/*
 * test_customs.c - customs detection and the customs state machine.
 *
 * detect: a table of carrier words in 15 languages -> is it customs, and
 *         which customs substatus; and false friends that must not be
 *         customs (customer, customized, streets named after customs).
 * machine: synthetic poll results through store_poll_result against a real
 *         PostgreSQL (one database per test): every move is a
 *         customs_transitions row with its evidence; holds open, escalate,
 *         learn, close, reopen; durations are counted.
 * carriers: customs fixtures of every driver (codes and words) parsed and
 *         stored end to end: the transitions they must produce.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "log.h"
#include "shipfix.h"
#include "store.h"
#include "testdb.h"
#include "wording.h"

/* ---- detection ---- */

/* One text and what it must mean. Held by value (Criterion may copy it
 * into a fresh process). */
struct detect_case {
    char lang[8];
    char text[200];
    bool customs;                   /* the W_CUSTOMS class matches */
    enum st_substatus sub;          /* customs substatus when customs */
};

static const struct detect_case detect_cases[] = {
    /* en */
    { "en", "Shipment on hold at customs: import duties and taxes are due", true,
      ST_SUB_CUSTOMS_DUTIES_DUE },
    { "en", "Clearance event - commercial invoice required", true,
      ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED },
    { "en", "Package held by customs for inspection", true, ST_SUB_CUSTOMS_INSPECTION },
    { "en", "Customs clearance processing complete", true, ST_SUB_CUSTOMS_RELEASED },
    { "en", "Arrived at customs", true, ST_SUB_CUSTOMS_PROCESSING },
    /* de */
    { "de", "Einfuhrabgaben sind vom Empfänger zu zahlen", true, ST_SUB_CUSTOMS_DUTIES_DUE },
    { "de", "Zollkontrolle der Sendung", true, ST_SUB_CUSTOMS_INSPECTION },
    { "de", "Die Sendung wurde verzollt und freigegeben", true, ST_SUB_CUSTOMS_RELEASED },
    { "de", "Die Sendung befindet sich in der Zollabfertigung", true,
      ST_SUB_CUSTOMS_PROCESSING },
    /* fr */
    { "fr", "Colis retenu en douane : facture commerciale requise", true,
      ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED },
    { "fr", "Douane : droits et taxes à payer", true, ST_SUB_CUSTOMS_DUTIES_DUE },
    { "fr", "Dédouanement terminé", true, ST_SUB_CUSTOMS_RELEASED },
    /* es */
    { "es", "Envío retenido en aduana: pago de impuestos pendiente", true,
      ST_SUB_CUSTOMS_DUTIES_DUE },
    { "es", "Liberado por la aduana", true, ST_SUB_CUSTOMS_RELEASED },
    /* it */
    { "it", "Spedizione in dogana: in attesa del pagamento dei dazi", true,
      ST_SUB_CUSTOMS_DUTIES_DUE },
    { "it", "Sdoganamento completato", true, ST_SUB_CUSTOMS_RELEASED },
    /* nl */
    { "nl", "Zending bij de douane: invoerrechten te betalen", true, ST_SUB_CUSTOMS_DUTIES_DUE },
    { "nl", "Inklaring afgerond", true, ST_SUB_CUSTOMS_RELEASED },
    /* pt */
    { "pt", "Objeto retido na alfândega: pagamento de imposto", true,
      ST_SUB_CUSTOMS_DUTIES_DUE },
    { "pt", "Objeto desembaraçado pela alfândega", true, ST_SUB_CUSTOMS_RELEASED },
    /* pl */
    { "pl", "Przesyłka zatrzymana przez urząd celny", true, ST_SUB_CUSTOMS_DELAY },
    { "pl", "Odprawa celna zakończona", true, ST_SUB_CUSTOMS_RELEASED },
    /* sv */
    { "sv", "Försändelsen hålls av Tullverket: avgift att betala", true,
      ST_SUB_CUSTOMS_DUTIES_DUE },
    { "sv", "Försändelsen är förtullad", true, ST_SUB_CUSTOMS_RELEASED },
    /* no */
    { "no", "Sendingen venter på tollklarering", true, ST_SUB_CUSTOMS_PROCESSING },
    { "no", "Sendingen er fortollet", true, ST_SUB_CUSTOMS_RELEASED },
    /* ja */
    { "ja", "税関検査中", true, ST_SUB_CUSTOMS_INSPECTION },
    { "ja", "通関手続き中", true, ST_SUB_CUSTOMS_PROCESSING },
    { "ja", "税関で輸入許可", true, ST_SUB_CUSTOMS_RELEASED },
    /* zh */
    { "zh", "海关查验", true, ST_SUB_CUSTOMS_INSPECTION },
    { "zh", "清关完成", true, ST_SUB_CUSTOMS_RELEASED },
    { "zh", "海关：等待支付关税", true, ST_SUB_CUSTOMS_DUTIES_DUE },
    /* ko */
    { "ko", "세관 검사 중", true, ST_SUB_CUSTOMS_INSPECTION },
    { "ko", "통관 완료", true, ST_SUB_CUSTOMS_RELEASED },
    /* ar */
    { "ar", "الشحنة محتجزة لدى الجمارك", true, ST_SUB_CUSTOMS_DELAY },
    { "ar", "الجمارك: رسوم مستحقة الدفع", true, ST_SUB_CUSTOMS_DUTIES_DUE },
    { "ar", "تخليص جمركي", true, ST_SUB_CUSTOMS_PROCESSING },
    /* tr */
    { "tr", "Gönderi gümrükte bekletiliyor: vergi ödemesi gerekli", true,
      ST_SUB_CUSTOMS_DUTIES_DUE },
    { "tr", "Gümrük işlemleri tamamlandı", true, ST_SUB_CUSTOMS_RELEASED },
    { "tr", "GÜMRÜK MUAYENESİ", true, ST_SUB_CUSTOMS_INSPECTION },
    /* false friends: not customs */
    { "en", "Customer Service Center", false, ST_SUB_NONE },
    { "en", "Customer not available, notice left", false, ST_SUB_NONE },
    { "en", "Customized packaging applied", false, ST_SUB_NONE },
    { "en", "Departed facility in Clearwater, FL", false, ST_SUB_NONE },
    { "en", "Arrived at Aduana Street 4, Manila", false, ST_SUB_NONE },
    { "en", "Arrived at depot, Customs Street, Auckland", false, ST_SUB_NONE },
    { "en", "Delivered to Tullamore post office", false, ST_SUB_NONE },
    { "en", "Handed over to Toll IPEC", false, ST_SUB_NONE },
    { "de", "Zugestellt: Zollstrasse 12, Zürich", false, ST_SUB_NONE },
    { "de", "Ankunft im Paketzentrum Zollikon", false, ST_SUB_NONE },
    { "de", "Abgeholt in der Zollikerstrasse 5", false, ST_SUB_NONE },
    { "fr", "Livré au 3 Rue de la Douane, Strasbourg", false, ST_SUB_NONE },
    { "fr", "Arrivé quai de la Douane, Brest", false, ST_SUB_NONE },
    { "nl", "Afgeleverd Douanestraat 10, Antwerpen", false, ST_SUB_NONE },
    { "es", "Entregado en Calle de la Aduana 7, Madrid", false, ST_SUB_NONE },
    { "it", "Consegnato in Via Dogana 3, Milano", false, ST_SUB_NONE },
    { "sv", "Levererad till Tullgatan 3, Malmö", false, ST_SUB_NONE },
    { "tr", "Gümrükçü Sokak No:5, İstanbul adresine teslim edildi", false, ST_SUB_NONE },
    { "zh", "已送达海关路88号", false, ST_SUB_NONE },
    { "ar", "تم التسليم في شارع الجمارك", false, ST_SUB_NONE },
};

ParameterizedTestParameters(detect, customs_words)
{
    return cr_make_param_array(struct detect_case, (void *)detect_cases,
                               sizeof(detect_cases) / sizeof(detect_cases[0]));
}

ParameterizedTest(struct detect_case *c, detect, customs_words)
{
    char folded[1024];
    struct track_event ev;
    size_t o = 0;
    bool customs;

    wording_fold_append(folded, sizeof(folded), &o, c->text);
    customs = wording_has(folded, W_CUSTOMS);
    cr_expect_eq(customs, c->customs, "[%s] \"%s\": customs %d, want %d", c->lang, c->text,
                 customs, c->customs);
    if (!customs || !c->customs)
        return;
    memset(&ev, 0, sizeof(ev));
    wording_classify_customs(folded, &ev);
    cr_expect(ev.customs, "[%s] \"%s\": not marked customs", c->lang, c->text);
    cr_expect_eq(ev.substatus, c->sub, "[%s] \"%s\": %s, want %s", c->lang, c->text,
                 st_substatus_name(ev.substatus), st_substatus_name(c->sub));
}

Test(detect, rejection_and_broker_words)
{
    static const char *const rejected[] = {
        "Goods seized by customs", "Ware durch den Zoll beschlagnahmt", "Colis saisi par la douane",
        "Mercancía decomisada por la aduana", "海关没收", "Destroyed by customs",
    };
    static const char *const broker[] = {
        "Package at broker", "Pris en charge par le courtier en douane",
        "Übergabe an den Zollagent", "En manos del agente de aduanas", "通関業者に引渡し",
    };
    char folded[512];
    size_t o;

    for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++) {
        o = 0;
        wording_fold_append(folded, sizeof(folded), &o, rejected[i]);
        cr_expect(wording_has(folded, W_REJECTED), "\"%s\" is a rejection", rejected[i]);
        cr_expect(!wording_has(folded, W_BROKER), "\"%s\" names no broker", rejected[i]);
    }
    for (size_t i = 0; i < sizeof(broker) / sizeof(broker[0]); i++) {
        o = 0;
        wording_fold_append(folded, sizeof(folded), &o, broker[i]);
        cr_expect(wording_has(folded, W_BROKER), "\"%s\" names a broker", broker[i]);
        cr_expect(!wording_has(folded, W_REJECTED), "\"%s\" is no rejection", broker[i]);
    }
}

/* ---- the state machine ---- */

static struct shipfix fx;

static void machine_setup(void)
{
    log_setup("error", "text", NULL);
    sf_setup(&fx, "dhl", "3318810025", "CN", "DE");
}

static void machine_teardown(void)
{
    sf_teardown(&fx);
}

TestSuite(machine, .init = machine_setup, .fini = machine_teardown);

/* The shipment's transitions, "from>to:reason:actor:code" joined by ','. */
static char *transitions(void)
{
    char *s = tdb_scalar(fx.db.conn,
                         "SELECT string_agg(coalesce(from_state, '-') || '>' || to_state || ':'"
                         " || reason || ':' || actor || ':' || evidence_code, ',' ORDER BY id)"
                         " FROM customs_transitions");

    return s != NULL ? s : strdup("");
}

static void expect_transitions(const char *want)
{
    char *s = transitions();

    cr_expect_str_eq(s, want, "transitions\n  got  %s\n  want %s", s, want);
    free(s);
}

static void expect_scalar(const char *sql, const char *want)
{
    char *s = tdb_scalar(fx.db.conn, sql);

    cr_expect_str_eq(s != NULL ? s : "(null)", want, "%s\n  got  %s\n  want %s", sql,
                     s != NULL ? s : "(null)", want);
    free(s);
}

static void add(struct track_result *r, const char *at, enum st_status st,
                enum st_substatus sub, const char *code, const char *desc)
{
    sf_add(r, at, "DE", st, sub, code, desc);
}

Test(machine, processing_held_released_with_evidence_and_duration)
{
    struct track_result r = { 0 }, later = { 0 };
    struct track_event *ev;

    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_PROCESSING, "CP",
        "Customs clearance in progress");
    ev = sf_add(&r, "2026-11-03T10:00:00+01:00", "DE", ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE,
                "OH", "On hold at customs: import duties due");
    snprintf(ev->instructions, sizeof(ev->instructions), "Pay online at https://dhl.test/pay");
    sf_store(&fx, &r);
    expect_scalar("SELECT state || '/' || reason || '/' || actor || '/' || instructions"
                  " || '/' || opened_evidence FROM customs_holds WHERE closed_at IS NULL",
                  "held/duties_due/recipient/Pay online at https://dhl.test/pay/"
                  "On hold at customs: import duties due");
    expect_scalar("SELECT customs_state FROM shipments", "held");
    expect_transitions("->processing:processing:nobody:CP,"
                       "processing>held:duties_due:recipient:OH");
    expect_scalar("SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' ' || evidence"
                  " FROM customs_transitions ORDER BY id DESC LIMIT 1",
                  "2026-11-03 09:00 On hold at customs: import duties due");
    /* released 50 hours after the hold began */
    add(&later, "2026-11-05T12:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED, "RL",
        "Released by customs");
    sf_store(&fx, &later);
    expect_scalar("SELECT state || ' ' || to_char(opened_at AT TIME ZONE 'UTC', 'DD HH24:MI')"
                  " || ' ' || to_char(closed_at AT TIME ZONE 'UTC', 'DD HH24:MI') || ' '"
                  " || closed_evidence FROM customs_holds",
                  "released 03 07:00 05 11:00 Released by customs");
    expect_scalar("SELECT customs_state FROM shipments", "released");
    expect_scalar("SELECT string_agg(destination || ':' || hours || ':' || n, ',')"
                  " FROM customs_hold_durations", "DE:50:1");
    expect_transitions("->processing:processing:nobody:CP,"
                       "processing>held:duties_due:recipient:OH,"
                       "held>released:duties_due:recipient:RL");
    /* the same answer again: nothing new */
    sf_store(&fx, &later);
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM customs_transitions"), 3);
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT sum(n) FROM customs_hold_durations"), 1);
    track_result_reset(&r);
    track_result_reset(&later);
}

Test(machine, held_learns_a_precise_reason_but_never_a_vaguer_one)
{
    struct track_result r = { 0 };

    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_DELAY, "CD",
        "Clearance delay");
    add(&r, "2026-11-03T12:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED,
        "CI", "Clearance information required");
    add(&r, "2026-11-04T08:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_DELAY, "CD",
        "Clearance delay");
    sf_store(&fx, &r);
    expect_transitions("->held:unknown:nobody:CD,"
                       "held>held:documents_required:recipient:CI");
    expect_scalar("SELECT state || '/' || reason || '/' || actor FROM customs_holds",
                  "held/documents_required/recipient");
    track_result_reset(&r);
}

Test(machine, a_link_in_the_carrier_words_is_an_instruction)
{
    struct track_result r = { 0 };

    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE, "CD",
        "Import charges due. Pay online at https://ups.test/pay to release your package");
    add(&r, "2026-11-03T09:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE, "CD",
        "Import charges due");
    sf_store(&fx, &r);
    expect_scalar("SELECT instructions FROM customs_holds",
                  "Import charges due. Pay online at https://ups.test/pay to release your package");
    track_result_reset(&r);
}

Test(machine, moving_on_releases_implicitly)
{
    struct track_result r = { 0 };

    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_PROCESSING, "CP",
        "Customs clearance in progress");
    add(&r, "2026-11-04T08:00:00+01:00", ST_STATUS_OUT_FOR_DELIVERY, ST_SUB_OUT_FOR_DELIVERY,
        "OFD", "Out for delivery");
    sf_store(&fx, &r);
    expect_transitions("->processing:processing:nobody:CP,"
                       "processing>released:processing:nobody:OFD");
    expect_scalar("SELECT state || ' ' || closed_evidence FROM customs_holds",
                  "released Out for delivery");
    /* a processing hold was no hold: nothing counted */
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM customs_hold_durations"), 0);
    track_result_reset(&r);
}

Test(machine, prohibited_goods_sent_back_are_rejected)
{
    struct track_result r = { 0 };

    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_PROHIBITED, "HP",
        "Commodity prohibited by destination customs");
    add(&r, "2026-11-05T08:00:00+01:00", ST_STATUS_RETURNING, ST_SUB_RETURN_TO_SENDER, "RT",
        "Returned to shipper");
    sf_store(&fx, &r);
    expect_transitions("->held:prohibited:shipper:HP,held>rejected:prohibited:shipper:RT");
    expect_scalar("SELECT customs_state FROM shipments", "rejected");
    track_result_reset(&r);
}

Test(machine, seized_goods_are_rejected_at_once)
{
    struct track_result r = { 0 };

    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_PROCESSING, "CP",
        "Customs clearance in progress");
    add(&r, "2026-11-04T08:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_PROHIBITED, "SZ",
        "Goods seized by customs");
    sf_store(&fx, &r);
    expect_transitions("->processing:processing:nobody:CP,"
                       "processing>held:prohibited:shipper:SZ,"
                       "held>rejected:prohibited:shipper:SZ");
    expect_scalar("SELECT state FROM customs_holds", "rejected");
    track_result_reset(&r);
}

Test(machine, unpaid_duties_sent_back_are_returned)
{
    struct track_result r = { 0 };

    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE, "DD",
        "Import duties due");
    add(&r, "2026-11-20T08:00:00+01:00", ST_STATUS_RETURNING, ST_SUB_RETURN_TO_SENDER, "RT",
        "Returned to shipper: duties not paid");
    sf_store(&fx, &r);
    expect_transitions("->held:duties_due:recipient:DD,held>returned:duties_due:recipient:RT");
    expect_scalar("SELECT customs_state FROM shipments", "returned");
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM customs_hold_durations"), 0);
    track_result_reset(&r);
}

Test(machine, a_second_hold_after_a_release_is_a_new_row)
{
    struct track_result r = { 0 }, later = { 0 };

    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_INSPECTION, "IN",
        "Customs inspection");
    add(&r, "2026-11-03T20:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED, "RL",
        "Released by customs");
    sf_store(&fx, &r);
    add(&later, "2026-11-06T08:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE, "DD",
        "Import duties due");
    sf_store(&fx, &later);
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM customs_holds"), 2);
    expect_scalar("SELECT string_agg(state || '/' || reason, ',' ORDER BY id) FROM customs_holds",
                  "released/inspection,held/duties_due");
    expect_scalar("SELECT customs_state FROM shipments", "held");
    expect_scalar("SELECT count(DISTINCT hold_id)::text FROM customs_transitions", "2");
    expect_scalar("SELECT string_agg(destination || ':' || hours || ':' || n, ',')"
                  " FROM customs_hold_durations", "DE:12:1");
    track_result_reset(&r);
    track_result_reset(&later);
}

Test(machine, a_broker_on_the_case_is_the_actor)
{
    struct track_result r = { 0 };
    struct track_event *ev;

    ev = sf_add(&r, "2026-11-03T08:00:00+01:00", "DE", ST_STATUS_HELD, ST_SUB_CUSTOMS_DELAY,
                "CD", "Clearance delay");
    ev->customs_broker = true;
    add(&r, "2026-11-03T09:00:00+01:00", ST_STATUS_HELD, ST_SUB_CUSTOMS_INSPECTION, "IN",
        "Inspection requested, handled by the courtier en douane");
    sf_store(&fx, &r);
    expect_transitions("->held:unknown:broker:CD,held>held:inspection:broker:IN");
    track_result_reset(&r);
}

Test(machine, a_release_nobody_saw_coming_is_recorded_closed)
{
    struct track_result r = { 0 };

    add(&r, "2026-11-03T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED, "CC",
        "Export customs clearance completed");
    sf_store(&fx, &r);
    expect_transitions("->released:processing:nobody:CC");
    cr_expect_eq(tdb_count(fx.db.conn, "SELECT count(*) FROM customs_holds WHERE"
                                       " closed_at = opened_at AND state = 'released'"), 1);
    track_result_reset(&r);
}

Test(machine, customs_messages_carry_the_hold_and_the_estimate)
{
    struct track_result r = { 0 };
    struct track_event *ev;

    add(&r, "2026-11-02T08:00:00+01:00", ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP, "PU",
        "Picked up");
    ev = sf_add(&r, "2026-11-03T10:00:00+01:00", "DE", ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE,
                "OH", "On hold at customs: import duties due");
    snprintf(ev->instructions, sizeof(ev->instructions), "Pay online at https://dhl.test/pay");
    snprintf(r.estimated_delivery, sizeof(r.estimated_delivery), "2026-11-06");
    fx.policy.eta.percentile = 80;
    fx.policy.eta.lane_min_samples = 20;
    fx.policy.eta.default_domestic_days = 2;
    fx.policy.eta.default_international_days = 8;
    fx.policy.eta.customs_hold_default_h = 72;
    sf_store(&fx, &r);
    /* the carrier's date, moved by the default hold of three days */
    expect_scalar("SELECT edd_current || '/' || edd_source || '/' || edd_original"
                  " FROM shipments", "2026-11-09/customs/2026-11-06");
    expect_scalar("SELECT payload->'customs'->>'reason' || '/' || (payload->'customs'->>'actor')"
                  " || '/' || (payload->'customs'->>'instructions') || '/' || (payload->>'eta')"
                  " FROM outbox WHERE payload->'to'->>'substatus' = 'customs_duties_due'",
                  "duties_due/recipient/Pay online at https://dhl.test/pay/2026-11-09");
    track_result_reset(&r);
}

/* ---- carriers end to end: codes and words of every driver ---- */

struct carrier_case {
    char carrier[16];
    char fixture[40];
    char state[16];                 /* shipments.customs_state afterwards */
    char transitions[400];          /* "from>to:reason:actor" joined by ',' */
};

static const struct carrier_case carrier_cases[] = {
    { "dhl", "customs_cn_de", "released",
      "->processing:processing:nobody,processing>held:duties_due:recipient,"
      "held>released:duties_due:recipient" },
    { "dhl", "customs_us_fr", "released",
      "->processing:processing:nobody,processing>held:documents_required:recipient,"
      "held>released:documents_required:recipient" },
    { "ups", "customs_de_us", "released",
      "->processing:processing:nobody,processing>held:documents_required:recipient,"
      "held>held:duties_due:recipient,held>released:duties_due:recipient" },
    { "fedex", "customs_cn_de", "released",
      "->processing:processing:broker,processing>held:documents_required:recipient,"
      "held>released:documents_required:recipient" },
    { "fedex", "customs_signals", "held",
      "->processing:processing:broker,processing>held:unknown:nobody,"
      "held>held:duties_due:recipient,held>held:inspection:broker,"
      "held>held:prohibited:shipper" },
    { "laposte", "customs_cn_fr", "released",
      "->processing:processing:nobody,processing>held:duties_due:recipient,"
      "held>released:duties_due:recipient" },
    { "track17", "customs_cn_fr", "released",
      "->released:processing:nobody,->processing:processing:nobody,"
      "processing>held:duties_due:recipient,held>released:duties_due:recipient" },
    { "usps", "customs_holds", "rejected",
      "->held:inspection:nobody,held>held:documents_required:recipient,"
      "held>held:duties_due:recipient,held>rejected:prohibited:shipper" },
};

ParameterizedTestParameters(carriers, customs_fixtures)
{
    return cr_make_param_array(struct carrier_case, (void *)carrier_cases,
                               sizeof(carrier_cases) / sizeof(carrier_cases[0]));
}

ParameterizedTest(struct carrier_case *c, carriers, customs_fixtures, .timeout = 60)
{
    struct shipfix f;
    struct track_result res;
    char number[64], *s;

    log_setup("error", "text", NULL);
    sf_parse_fixture(c->carrier, c->fixture, &res, number, sizeof(number));
    sf_setup(&f, c->carrier, number, NULL, NULL);
    sf_store(&f, &res);
    s = tdb_scalar(f.db.conn, "SELECT string_agg(coalesce(from_state, '-') || '>' || to_state"
                              " || ':' || reason || ':' || actor, ',' ORDER BY id)"
                              " FROM customs_transitions");
    cr_expect_str_eq(s != NULL ? s : "", c->transitions, "%s/%s\n  got  %s\n  want %s",
                     c->carrier, c->fixture, s, c->transitions);
    free(s);
    s = tdb_scalar(f.db.conn, "SELECT customs_state FROM shipments");
    cr_expect_str_eq(s, c->state, "%s/%s: customs_state %s", c->carrier, c->fixture, s);
    free(s);
    track_result_reset(&res);
    sf_teardown(&f);
}

Test(carriers, dhl_remark_becomes_the_instructions)
{
    struct shipfix f;
    struct track_result res;
    char number[64], *s;

    log_setup("error", "text", NULL);
    sf_parse_fixture("dhl", "customs_cn_de", &res, number, sizeof(number));
    sf_setup(&f, "dhl", number, "CN", "DE");
    sf_store(&f, &res);
    s = tdb_scalar(f.db.conn, "SELECT reason || ': ' || instructions FROM customs_holds");
    cr_expect_str_eq(s != NULL ? s : "(null)",
                     "duties_due: Einfuhrabgaben sind vom Empfänger zu zahlen");
    free(s);
    track_result_reset(&res);
    sf_teardown(&f);
}
