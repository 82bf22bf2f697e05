/*
 * journey.c - deterministic, carrier-neutral parcel journeys for the simulator.
 *
 * Everything here follows from a 64-bit hash of "carrier:number": whether the
 * number is known, the scenario, the lane (origin, destination, cities), the
 * gaps between steps and the total span. Renderers (sim_<carrier>.c) only
 * read the result. See journey.h for the time model.
 */
#include "journey.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"

#define HOUR 3600L
#define DAY  (24L * HOUR)

/* Twelve countries, four continents. Hubs are real gateway airports' towns. */
static const struct sim_country countries[] = {
    { "DE", "de", true, { "Leipzig", "04435", NULL },
      { { "Berlin", "10115", NULL }, { "München", "80331", NULL }, { "Hamburg", "20095", NULL } },
      { "Zollabfertigung läuft", "Einfuhrabgaben sind vom Empfänger zu zahlen",
        "Zoll: Rechnung und Unterlagen erforderlich", "Zollkontrolle der Sendung",
        "Vom Zoll freigegeben" } },
    { "FR", "fr", true, { "Roissy-en-France", "95700", NULL },
      { { "Paris", "75011", NULL }, { "Lyon", "69002", NULL }, { "Bordeaux", "33000", NULL } },
      { "Dédouanement en cours", "Droits et taxes à payer par le destinataire",
        "Douane : documents requis", "Contrôle douanier du colis", "Colis dédouané" } },
    { "ES", "es", true, { "Madrid", "28042", NULL },
      { { "Barcelona", "08001", NULL }, { "Valencia", "46001", NULL }, { "Sevilla", "41001", NULL } },
      { "Despacho de aduana en curso", "Impuestos de importación pendientes de pago",
        "Aduana: se requiere documentación", "Inspección de aduana del envío",
        "Liberado por la aduana" } },
    { "IT", "it", true, { "Orio al Serio", "24050", NULL },
      { { "Milano", "20121", NULL }, { "Roma", "00184", NULL }, { "Torino", "10121", NULL } },
      { "Sdoganamento in corso", "Dazi doganali da pagare", "Dogana: documenti richiesti",
        "Ispezione doganale della spedizione", "Spedizione sdoganata" } },
    { "NL", "nl", true, { "Schiphol", "1118 CP", NULL },
      { { "Amsterdam", "1012 AB", NULL }, { "Rotterdam", "3011 AD", NULL },
        { "Utrecht", "3511 AX", NULL } },
      { "Inklaring bij de douane", "Invoerrechten te betalen", "Douane: documenten vereist",
        "Inspectie door de douane", "Vrijgegeven door de douane" } },
    { "PL", "pl", true, { "Warszawa", "02-146", NULL },
      { { "Kraków", "31-042", NULL }, { "Gdańsk", "80-831", NULL }, { "Wrocław", "50-116", NULL } },
      { "Odprawa celna w toku", "Należności celne do zapłaty", "Urząd celny: wymagane dokumenty",
        "Kontrola celna przesyłki", "Przesyłka zwolniona przez urząd celny" } },
    { "SE", "sv", true, { "Stockholm-Arlanda", "190 45", NULL },
      { { "Stockholm", "111 52", NULL }, { "Göteborg", "411 04", NULL }, { "Malmö", "211 20", NULL } },
      { "Tullhantering pågår", "Tull och moms att betala", "Tullen: dokument krävs",
        "Tullkontroll av försändelsen", "Förtullad" } },
    { "JP", "ja", false, { "Narita", "282-0004", NULL },
      { { "Tokyo", "100-0005", NULL }, { "Osaka", "530-0001", NULL }, { "Yokohama", "220-0012", NULL } },
      { "通関手続き中", "関税の支払いが必要です", "税関: 書類が必要です", "税関検査中", "通関完了" } },
    { "CN", "zh-CN", false, { "Shanghai", "201202", NULL },
      { { "Shenzhen", "518000", NULL }, { "Beijing", "100000", NULL }, { "Guangzhou", "510000", NULL } },
      { "清关中", "需缴纳关税", "海关：需要补充文件", "海关查验中", "已清关放行" } },
    { "US", "en-US", false, { "Hebron", "41048", "KY" },
      { { "New York", "10001", "NY" }, { "Chicago", "60601", "IL" },
        { "Los Angeles", "90012", "CA" } },
      { "Customs clearance in progress", "Import duties and taxes due",
        "Customs: commercial invoice required", "Customs inspection", "Released by customs" } },
    { "BR", "pt-BR", false, { "Campinas", "13052-970", "SP" },
      { { "São Paulo", "01310-100", "SP" }, { "Rio de Janeiro", "20040-020", "RJ" },
        { "Curitiba", "80010-000", "PR" } },
      { "Em processo de desembaraço aduaneiro", "Impostos de importação a pagar",
        "Alfândega: documentos necessários", "Fiscalização aduaneira", "Liberado pela alfândega" } },
    { "GB", "en-GB", false, { "Castle Donington", "DE74 2SA", NULL },
      { { "London", "EC1A 1BB", NULL }, { "Manchester", "M1 1AE", NULL },
        { "Edinburgh", "EH1 1YZ", NULL } },
      { "Customs clearance in progress", "Import VAT and duty to pay",
        "Customs: documents required", "Customs inspection", "Released by customs" } },
};

#define N_COUNTRIES (sizeof(countries) / sizeof(countries[0]))

static const char *const kind_names[JK__COUNT] = {
    [JK_LABEL_CREATED] = "label_created",
    [JK_PICKED_UP] = "picked_up",
    [JK_DEPARTED_FACILITY] = "departed_facility",
    [JK_ARRIVED_FACILITY] = "arrived_facility",
    [JK_DEPARTED_ORIGIN_COUNTRY] = "departed_origin_country",
    [JK_ARRIVED_DESTINATION_COUNTRY] = "arrived_destination_country",
    [JK_CUSTOMS_PROCESSING] = "customs_processing",
    [JK_CUSTOMS_DUTIES_DUE] = "customs_duties_due",
    [JK_CUSTOMS_DOCUMENTS_REQUIRED] = "customs_documents_required",
    [JK_CUSTOMS_INSPECTION] = "customs_inspection",
    [JK_CUSTOMS_RELEASED] = "customs_released",
    [JK_OUT_FOR_DELIVERY] = "out_for_delivery",
    [JK_ATTEMPT_FAILED] = "attempt_failed",
    [JK_AVAILABLE_FOR_PICKUP] = "available_for_pickup",
    [JK_DELIVERED] = "delivered",
    [JK_RETURN_TO_SENDER] = "return_to_sender",
    [JK_RETURNED] = "returned",
    [JK_UNMAPPED_CODE] = "unmapped_code",
};

static const char *const scenario_names[JS__COUNT] = {
    [JS_DOMESTIC_DELIVERED] = "domestic_delivered",
    [JS_CUSTOMS_DELIVERED] = "customs_delivered",
    [JS_CUSTOMS_DUTIES_HELD] = "customs_duties_held",
    [JS_CUSTOMS_DOCUMENTS_HELD] = "customs_documents_held",
    [JS_ATTEMPT_THEN_DELIVERED] = "attempt_then_delivered",
    [JS_PICKUP_POINT] = "pickup_point",
    [JS_RETURNED] = "returned_to_sender",
    [JS_LOST] = "lost",
    [JS_UNMAPPED_CODE] = "unmapped_code",
};

/* English words per kind; a few kinds have a second wording chosen by context. */
static const char *const kind_text[JK__COUNT] = {
    [JK_LABEL_CREATED] = "The shipment data has been transmitted to the carrier electronically",
    [JK_PICKED_UP] = "Shipment picked up from the sender",
    [JK_DEPARTED_FACILITY] = "Departed from the sort facility",
    [JK_ARRIVED_FACILITY] = "Arrived at the sort facility",
    [JK_DEPARTED_ORIGIN_COUNTRY] = "The shipment has left the origin country",
    [JK_ARRIVED_DESTINATION_COUNTRY] = "The shipment has arrived in the destination country",
    [JK_CUSTOMS_PROCESSING] = "Customs clearance in progress",
    [JK_CUSTOMS_DUTIES_DUE] = "Held at customs: import duties and taxes must be paid by the recipient",
    [JK_CUSTOMS_DOCUMENTS_REQUIRED] = "Held at customs: documents required from the recipient",
    [JK_CUSTOMS_INSPECTION] = "Held at customs for inspection",
    [JK_CUSTOMS_RELEASED] = "Released by customs",
    [JK_OUT_FOR_DELIVERY] = "Out for delivery",
    [JK_ATTEMPT_FAILED] = "Delivery attempt failed: recipient not at home, notification card left",
    [JK_AVAILABLE_FOR_PICKUP] = "Ready for pickup at the service point",
    [JK_DELIVERED] = "The shipment has been delivered",
    [JK_RETURN_TO_SENDER] = "The shipment is being returned to the sender",
    [JK_RETURNED] = "The shipment has been returned to the sender",
    [JK_UNMAPPED_CODE] = "Shipment data updated by network partner",
};

/* Delivered after collection at a pickup point. */
static const char text_collected[] =
    "The shipment has been collected by the recipient at the service point";

const char *journey_kind_name(enum journey_kind k)
{
    return (unsigned)k < JK__COUNT ? kind_names[k] : "invalid";
}

const char *journey_scenario_name(enum journey_scenario s)
{
    return (unsigned)s < JS__COUNT ? scenario_names[s] : "invalid";
}

bool journey_scenario_parse(const char *name, enum journey_scenario *out)
{
    for (int i = 0; name != NULL && i < JS__COUNT; i++)
        if (strcmp(scenario_names[i], name) == 0) {
            *out = (enum journey_scenario)i;
            return true;
        }
    return false;
}

struct journey_expect journey_kind_expect(enum journey_kind k)
{
    struct journey_expect e = { ST_STATUS_IN_TRANSIT, ST_SUB_IN_TRANSIT, true, false };

    switch (k) {
    case JK_LABEL_CREATED: e.status = ST_STATUS_INFO_RECEIVED; e.substatus = ST_SUB_LABEL_CREATED; break;
    case JK_PICKED_UP: e.substatus = ST_SUB_PICKED_UP; break;
    case JK_DEPARTED_FACILITY: e.substatus = ST_SUB_DEPARTED_FACILITY; break;
    case JK_ARRIVED_FACILITY: e.substatus = ST_SUB_ARRIVED_FACILITY; break;
    case JK_DEPARTED_ORIGIN_COUNTRY: e.substatus = ST_SUB_DEPARTED_ORIGIN_COUNTRY; break;
    case JK_ARRIVED_DESTINATION_COUNTRY: e.substatus = ST_SUB_ARRIVED_DESTINATION_COUNTRY; break;
    case JK_CUSTOMS_PROCESSING: e.substatus = ST_SUB_CUSTOMS_PROCESSING; e.customs = true; break;
    case JK_CUSTOMS_DUTIES_DUE:
        e.status = ST_STATUS_HELD; e.substatus = ST_SUB_CUSTOMS_DUTIES_DUE; e.customs = true; break;
    case JK_CUSTOMS_DOCUMENTS_REQUIRED:
        e.status = ST_STATUS_HELD; e.substatus = ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED;
        e.customs = true; break;
    case JK_CUSTOMS_INSPECTION:
        e.status = ST_STATUS_HELD; e.substatus = ST_SUB_CUSTOMS_INSPECTION; e.customs = true; break;
    case JK_CUSTOMS_RELEASED: e.substatus = ST_SUB_CUSTOMS_RELEASED; e.customs = true; break;
    case JK_OUT_FOR_DELIVERY:
        e.status = ST_STATUS_OUT_FOR_DELIVERY; e.substatus = ST_SUB_OUT_FOR_DELIVERY; break;
    case JK_ATTEMPT_FAILED:
        e.status = ST_STATUS_ATTEMPT_FAILED; e.substatus = ST_SUB_RECIPIENT_UNAVAILABLE; break;
    case JK_AVAILABLE_FOR_PICKUP:
        e.status = ST_STATUS_AVAILABLE_FOR_PICKUP; e.substatus = ST_SUB_AT_PICKUP_POINT; break;
    case JK_DELIVERED: e.status = ST_STATUS_DELIVERED; e.substatus = ST_SUB_DELIVERED; break;
    case JK_RETURN_TO_SENDER:
        e.status = ST_STATUS_RETURNING; e.substatus = ST_SUB_RETURN_TO_SENDER; break;
    case JK_RETURNED: e.status = ST_STATUS_RETURNED; e.substatus = ST_SUB_RETURNED_TO_SENDER; break;
    case JK_UNMAPPED_CODE:
        e.status = ST_STATUS_PENDING; e.substatus = ST_SUB_UNMAPPED; e.affects_status = false; break;
    case JK__COUNT: break;
    }
    return e;
}

uint64_t sim_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* A small deterministic generator seeded from the journey hash. */
struct rng {
    uint64_t state;
};

/* Next 64 random bits. */
static uint64_t rng_next(struct rng *r)
{
    r->state += 0x9E3779B97F4A7C15ull;
    return sim_mix64(r->state);
}

/* Uniform integer in [0, n), n > 0. */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

const struct sim_country *journey_countries(size_t *n)
{
    *n = N_COUNTRIES;
    return countries;
}

const struct sim_country *journey_country(const char *cc)
{
    for (size_t i = 0; cc != NULL && i < N_COUNTRIES; i++)
        if (strcmp(countries[i].cc, cc) == 0)
            return &countries[i];
    return NULL;
}

const char *journey_zone(const struct sim_country *c, const struct sim_place *p)
{
    return geo_zone(c->cc, p != NULL ? p->region : NULL);
}

/* Serializes TZ juggling in sim_local_time. */
static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

bool sim_local_time(const char *zone, time_t utc, struct tm *out, int *offset_min)
{
    char *saved = NULL;
    const char *old;
    bool ok;

    if (zone == NULL || pthread_mutex_lock(&tz_lock) != 0)
        return false;
    /* Everything that reads or writes the environment stays under the lock:
     * geo_zone_valid reads TZDIR, localtime_r reads TZ. */
    ok = geo_zone_valid(zone);
    old = getenv("TZ");
    if (ok && old != NULL && (saved = strdup(old)) == NULL)
        ok = false;
    if (ok && setenv("TZ", zone, 1) == 0) {
        tzset();
        ok = localtime_r(&utc, out) != NULL;
        if (ok)
            *offset_min = (int)(out->tm_gmtoff / 60);
        if (saved != NULL)
            setenv("TZ", saved, 1); /* replaces the entry in place: environ is not moved */
        else
            unsetenv("TZ");
        tzset();
    } else
        ok = false;
    free(saved);
    pthread_mutex_unlock(&tz_lock);
    return ok;
}

void sim_clock_start(struct sim_clock *clk, double speed)
{
    time_t now = time(NULL);

    clk->t0 = now - now % 60;
    clock_gettime(CLOCK_MONOTONIC, &clk->mono0);
    clk->speed = speed;
}

double sim_clock_elapsed(const struct sim_clock *clk)
{
    struct timespec now;
    double real;

    clock_gettime(CLOCK_MONOTONIC, &now);
    real = (double)(now.tv_sec - clk->mono0.tv_sec) +
           (double)(now.tv_nsec - clk->mono0.tv_nsec) / 1e9;
    return real * clk->speed;
}

bool journey_step_visible(const struct journey *j, size_t i, const struct sim_clock *clk)
{
    return i < j->n_steps && sim_clock_elapsed(clk) >= (double)j->steps[i].offset;
}

size_t journey_visible_count(const struct journey *j, const struct sim_clock *clk)
{
    double e = sim_clock_elapsed(clk);
    size_t n = 0;

    while (n < j->n_steps && e >= (double)j->steps[n].offset)
        n++;
    return n;
}

/* Shown instant of a journey offset. */
static time_t shown_time(const struct journey *j, long offset, const struct sim_clock *clk)
{
    if (clk->speed == 1.0)
        return clk->t0 + offset;
    return clk->t0 - j->span + offset;
}

time_t journey_step_time(const struct journey *j, size_t i, const struct sim_clock *clk)
{
    return shown_time(j, j->steps[i].offset, clk);
}

bool journey_edd(const struct journey *j, size_t visible, const struct sim_clock *clk,
                 time_t *out)
{
    bool moved = false;

    if (j->scenario == JS_LOST && visible == j->n_steps) {
        *out = shown_time(j, j->edd_planned, clk); /* it never came */
        return true;
    }
    for (size_t i = 0; i < visible && i < j->n_steps; i++) {
        enum journey_kind k = j->steps[i].kind;

        if (k == JK_DELIVERED || k == JK_RETURN_TO_SENDER || k == JK_RETURNED)
            return false;
        if (i >= j->edd_moves_at)
            moved = true;
    }
    *out = shown_time(j, moved ? j->edd_actual : j->edd_planned, clk);
    return true;
}

/* Builder state: the journey, its random source and the running clock. */
struct builder {
    struct journey *j;
    struct rng rng;
    long at;                 /* offset of the last step, raw (before scaling) */
    long delay;              /* raw seconds added by holds and failed attempts */
};

/* Append a step min_h..max_h hours after the previous one (0 for the first). */
static void add_step(struct builder *b, enum journey_kind kind, const struct sim_country *c,
                     const struct sim_place *p, int min_h, int max_h)
{
    struct journey *j = b->j;
    struct journey_step *s;

    if (j->n_steps >= JOURNEY_MAX_STEPS)
        return; /* cannot happen with the scenarios below; keep the cap anyway */
    if (j->n_steps > 0)
        b->at += min_h * HOUR + (long)rng_below(&b->rng, (uint64_t)(max_h - min_h) * HOUR + 1);
    s = &j->steps[j->n_steps++];
    s->kind = kind;
    s->offset = b->at;
    s->country = c;
    s->place = p;
    s->text = kind_text[kind];
    s->remark = NULL;
}

/* Same as add_step, and count the gap as delay (holds, failed attempts). */
static void add_delayed(struct builder *b, enum journey_kind kind, const struct sim_country *c,
                        const struct sim_place *p, int min_h, int max_h)
{
    long before = b->at;

    add_step(b, kind, c, p, min_h, max_h);
    b->delay += b->at - before;
}

/* Local-language customs remark of a customs kind at the destination. */
static const char *customs_remark(const struct sim_country *c, enum journey_kind k)
{
    switch (k) {
    case JK_CUSTOMS_PROCESSING: return c->customs.processing;
    case JK_CUSTOMS_DUTIES_DUE: return c->customs.duties;
    case JK_CUSTOMS_DOCUMENTS_REQUIRED: return c->customs.documents;
    case JK_CUSTOMS_INSPECTION: return c->customs.inspection;
    case JK_CUSTOMS_RELEASED: return c->customs.released;
    default: return NULL;
    }
}

/* True when goods between a and b clear customs. */
static bool needs_customs(const struct sim_country *a, const struct sim_country *b)
{
    return a != b && !(a->eu && b->eu);
}

/* Pick origin and destination for the scenario. */
static void pick_lane(struct journey *j, struct rng *r)
{
    const struct sim_country *dest = &countries[rng_below(r, N_COUNTRIES)];
    const struct sim_country *cand[N_COUNTRIES];
    size_t n = 0;
    bool customs = j->scenario == JS_CUSTOMS_DELIVERED || j->scenario == JS_CUSTOMS_DUTIES_HELD ||
                   j->scenario == JS_CUSTOMS_DOCUMENTS_HELD;

    j->dest = dest;
    if (j->scenario == JS_DOMESTIC_DELIVERED) {
        j->origin = dest;
    } else {
        for (size_t i = 0; i < N_COUNTRIES; i++)
            if (&countries[i] != dest && (!customs || needs_customs(&countries[i], dest)))
                cand[n++] = &countries[i];
        j->origin = cand[rng_below(r, n)];
    }
    j->from = &j->origin->cities[rng_below(r, 3)];
    j->to = &j->dest->cities[rng_below(r, 3)];
    if (j->from == j->to) /* domestic: deliver to another city */
        j->to = &j->dest->cities[(size_t)(j->to - j->dest->cities + 1) % 3];
}

/* Rescale raw offsets so the planned end falls 3 to 8 days after the start. */
static void scale(struct builder *b, long raw_end)
{
    struct journey *j = b->j;
    long target = 3 * DAY + (long)rng_below(&b->rng, 5 * DAY + 1);
    double f = (double)target / (double)(raw_end > 0 ? raw_end : 1);
    long prev = -60;

    for (size_t i = 0; i < j->n_steps; i++) {
        long o = (long)llround((double)j->steps[i].offset * f / 60.0) * 60;

        if (o <= prev)
            o = prev + 60;
        j->steps[i].offset = o;
        prev = o;
    }
    j->edd_planned = (long)llround((double)j->edd_planned * f / 60.0) * 60;
    j->edd_actual = (long)llround((double)j->edd_actual * f / 60.0) * 60;
    j->span = target;
    if (j->span < prev)
        j->span = prev;
    if (j->edd_actual > j->span)
        j->edd_actual = j->span;
}

/* 64-bit FNV-1a of "carrier:number", mixed. */
static uint64_t journey_hash(const char *carrier, const char *number)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (const char *p = carrier; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    h = (h ^ ':') * 0x100000001b3ull;
    for (const char *p = number; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return sim_mix64(h);
}

bool journey_build(const char *carrier, const char *number, struct journey *j)
{
    struct builder b;
    const struct sim_country *o, *d;
    const struct sim_place *hub_o, *hub_d;
    bool cross, customs;
    size_t cut = 0;
    long raw_end, edd_actual = -1;

    memset(j, 0, sizeof(*j));
    if (carrier == NULL || number == NULL || strlen(carrier) >= sizeof(j->carrier) ||
        strlen(number) >= sizeof(j->number) || number[0] == '\0')
        return false;
    snprintf(j->carrier, sizeof(j->carrier), "%s", carrier);
    snprintf(j->number, sizeof(j->number), "%s", number);
    j->hash = journey_hash(carrier, number);
    if (j->hash % 12 == 0)
        return false; /* numbers the carrier has never seen */

    b.j = j;
    b.rng.state = j->hash;
    b.at = 0;
    b.delay = 0;
    j->scenario = (enum journey_scenario)rng_below(&b.rng, JS__COUNT);
    pick_lane(j, &b.rng);
    o = j->origin;
    d = j->dest;
    hub_o = &o->hub;
    hub_d = &d->hub;
    cross = o != d;
    customs = needs_customs(o, d);
    j->edd_moves_at = JOURNEY_MAX_STEPS;

    add_step(&b, JK_LABEL_CREATED, o, j->from, 0, 0);
    add_step(&b, JK_PICKED_UP, o, j->from, 4, 20);
    add_step(&b, JK_ARRIVED_FACILITY, o, hub_o, 2, 6);
    if (j->scenario == JS_UNMAPPED_CODE)
        add_step(&b, JK_UNMAPPED_CODE, o, hub_o, 1, 2);
    add_step(&b, JK_DEPARTED_FACILITY, o, hub_o, 2, 8);
    if (cross) {
        add_step(&b, JK_DEPARTED_ORIGIN_COUNTRY, o, hub_o, 1, 4);
        if (j->scenario == JS_LOST && (j->hash >> 8) % 2 == 0)
            cut = j->n_steps;
        add_step(&b, JK_ARRIVED_DESTINATION_COUNTRY, d, hub_d, 8, 30);
        if (customs) {
            add_step(&b, JK_CUSTOMS_PROCESSING, d, hub_d, 1, 4);
            if (j->scenario == JS_CUSTOMS_DUTIES_HELD || j->scenario == JS_CUSTOMS_DOCUMENTS_HELD) {
                add_step(&b, j->scenario == JS_CUSTOMS_DUTIES_HELD ? JK_CUSTOMS_DUTIES_DUE
                                                                   : JK_CUSTOMS_DOCUMENTS_REQUIRED,
                         d, hub_d, 2, 6);
                j->edd_moves_at = j->n_steps - 1;
                add_delayed(&b, JK_CUSTOMS_RELEASED, d, hub_d, 24, 84);
            } else
                add_step(&b, JK_CUSTOMS_RELEASED, d, hub_d, 3, 18);
            for (size_t i = 0; i < j->n_steps; i++)
                if (j->steps[i].kind >= JK_CUSTOMS_PROCESSING &&
                    j->steps[i].kind <= JK_CUSTOMS_RELEASED)
                    j->steps[i].remark = customs_remark(d, j->steps[i].kind);
        }
        add_step(&b, JK_DEPARTED_FACILITY, d, hub_d, 2, 8);
    }
    add_step(&b, JK_ARRIVED_FACILITY, d, j->to, 4, 16);
    if (j->scenario == JS_LOST && cut == 0)
        cut = j->n_steps;

    switch (j->scenario) {
    case JS_PICKUP_POINT:
        add_step(&b, JK_AVAILABLE_FOR_PICKUP, d, j->to, 4, 12);
        j->edd_planned = b.at;
        add_step(&b, JK_DELIVERED, d, j->to, 12, 60);
        j->steps[j->n_steps - 1].text = text_collected;
        break;
    case JS_ATTEMPT_THEN_DELIVERED:
    case JS_RETURNED:
        add_step(&b, JK_OUT_FOR_DELIVERY, d, j->to, 8, 16);
        add_step(&b, JK_ATTEMPT_FAILED, d, j->to, 1, 6);
        j->edd_planned = b.at - b.delay;
        j->edd_moves_at = j->n_steps - 1;
        add_delayed(&b, JK_OUT_FOR_DELIVERY, d, j->to, 18, 28);
        if (j->scenario == JS_ATTEMPT_THEN_DELIVERED) {
            add_delayed(&b, JK_DELIVERED, d, j->to, 1, 6);
            break;
        }
        add_delayed(&b, JK_ATTEMPT_FAILED, d, j->to, 1, 6);
        edd_actual = b.at; /* the second attempt was the announced delivery */
        add_step(&b, JK_RETURN_TO_SENDER, d, j->to, 20, 48);
        add_step(&b, JK_RETURNED, o, j->from, 48, 96);
        break;
    default:
        add_step(&b, JK_OUT_FOR_DELIVERY, d, j->to, 8, 16);
        add_step(&b, JK_DELIVERED, d, j->to, 1, 6);
        break;
    }
    raw_end = b.at;
    if (j->edd_planned == 0)
        j->edd_planned = raw_end - b.delay;
    j->edd_actual = edd_actual >= 0 ? edd_actual : raw_end;
    scale(&b, raw_end);
    if (cut > 0)
        j->n_steps = cut; /* lost: nothing after this, ever */
    return true;
}
