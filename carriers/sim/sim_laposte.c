/*
 * sim_laposte.c - the simulator's La Poste Suivi v2 renderer.
 *
 * Serves GET /suivi/v2/idships/{id[,id...]}?lang=L as La Poste documents it
 * (CARRIERS.md): the X-Okapi-Key header must hold --laposte-api-key (else 401
 * {"code":"UNAUTHORIZED","message":...}); 1 to 10 comma-separated ids (else
 * 400 {"returnCode":400,...}); lang one of fr_FR (default), en_GB, de_DE,
 * es_ES, it_IT, nl_NL (else 400). Labels are written in French for fr_FR and
 * in English for every other language (the simulator carries no more).
 *
 * One id: HTTP 200 with {returnCode:200, lang, scope, shipment{idShip,
 * holder, product, isFinal, entryDate, estimDate?, deliveryDate?, event[]
 * newest first, contextData{originCountry, arrivalCountry}}}, 404 with
 * returnCode 104 for a number the journeys do not know, 400 with returnCode
 * 400 for an id that is no La Poste number. Several ids: HTTP 207 with an
 * array of such objects, in the order asked (drivers must match by idShip);
 * the not-found and bad items name their id in a top-level idShip.
 *
 * Event dates are French time with the offset, as La Poste writes them
 * (+01:00 in winter, +02:00 in summer), whatever country the event happened
 * in; estimDate is the planned delivery day at the destination, YYYY-MM-DD.
 *
 * Numbers: a Colissimo number (digit, letter, 11 digits, no check digit) for
 * even serials and an S10 number of La Poste (LA, 8 digits, UPU check digit,
 * FR) for odd ones; any number detect_valid_for() gives to laposte is served.
 */
#include <stdio.h>
#include <string.h>

#include "detect.h"
#include "sim.h"

#define LP_PATH        "/suivi/v2/idships/"
#define LP_MAX_IDS     10
#define LP_ID_MAX      40   /* longer ids get a 400 for the whole request */
#define LP_ZONE        "Europe/Paris"

/* La Poste's code and labels for a journey kind. */
struct lp_words {
    const char *code;
    const char *fr;
    const char *en;
};

static const struct lp_words lp_words[JK__COUNT] = {
    [JK_LABEL_CREATED] = { "DR1",
        "Votre colis est prêt à être expédié, il va être remis à La Poste.",
        "Your parcel is ready to be shipped; it will be handed over to La Poste." },
    [JK_PICKED_UP] = { "PC1", "Votre colis a été pris en charge par La Poste.",
        "Your parcel has been taken over by La Poste." },
    [JK_DEPARTED_FACILITY] = { "ET1", "Votre colis a quitté son site de traitement.",
        "Your parcel has departed its processing site." },
    [JK_ARRIVED_FACILITY] = { "ET1", "Votre colis est arrivé sur son site de traitement.",
        "Your parcel has arrived at its processing site." },
    [JK_DEPARTED_ORIGIN_COUNTRY] = { "ET2",
        "Exportation : votre colis a quitté le pays d'expédition.",
        "Export: your parcel has left the origin country." },
    [JK_ARRIVED_DESTINATION_COUNTRY] = { "ET3",
        "Votre colis est arrivé dans le pays de destination.",
        "Your parcel has arrived in the destination country." },
    [JK_CUSTOMS_PROCESSING] = { "DO1", "Votre colis est en cours de dédouanement.",
        "Your parcel is going through customs clearance." },
    [JK_CUSTOMS_DUTIES_DUE] = { "DO3",
        "Votre colis est retenu en douane : des droits et taxes sont à régler par le "
        "destinataire.",
        "Your parcel is held at customs: duties and taxes must be paid by the recipient." },
    [JK_CUSTOMS_DOCUMENTS_REQUIRED] = { "DO3",
        "Votre colis est retenu en douane : des documents sont attendus du destinataire.",
        "Your parcel is held at customs: documents are required from the recipient." },
    [JK_CUSTOMS_INSPECTION] = { "DO3", "Votre colis est retenu en douane pour un contrôle.",
        "Your parcel is held at customs for inspection." },
    [JK_CUSTOMS_RELEASED] = { "DO2", "Votre colis a été dédouané.",
        "Your parcel has been released by customs." },
    [JK_OUT_FOR_DELIVERY] = { "MD2", "Votre colis est en cours de livraison.",
        "Your parcel is out for delivery." },
    [JK_ATTEMPT_FAILED] = { "ND1",
        "Votre colis n'a pas pu être distribué : destinataire absent, un avis de passage a été "
        "déposé.",
        "Your parcel could not be delivered: recipient absent, a delivery notice was left." },
    [JK_AVAILABLE_FOR_PICKUP] = { "AG1", "Votre colis vous attend dans votre bureau de poste.",
        "Your parcel is awaiting collection at your post office." },
    [JK_DELIVERED] = { "DI1", "Votre colis a été livré.", "Your parcel has been delivered." },
    [JK_RETURN_TO_SENDER] = { "RE1", "Votre colis est retourné à l'expéditeur.",
        "Your parcel is being returned to the sender." },
    [JK_RETURNED] = { "DI2", "Votre colis a été distribué à l'expéditeur.",
        "Your parcel has been delivered back to the sender." },
    [JK_UNMAPPED_CODE] = { "XZ9", "Informations de suivi mises à jour par un partenaire.",
        "Tracking information updated by a partner." },
};

/* The delivery after a wait at the post office: collected, not brought. */
static const struct lp_words lp_collected = { "DI1",
    "Votre colis a été retiré par le destinataire au bureau de poste.",
    "Your parcel has been collected by the recipient at the post office." };

/* The languages La Poste offers. */
static const char *const lp_langs[] = { "fr_FR", "en_GB", "de_DE", "es_ES", "it_IT", "nl_NL" };

/* Any method on /suivi/v2/idships/... (non-GET answered 405). */
static bool lp_route(const char *method, const char *path)
{
    (void)method;
    return strncmp(path, LP_PATH, sizeof(LP_PATH) - 1) == 0;
}

/* Only [A-Z0-9], and a number detect gives to laposte (Colissimo or S10). */
static bool lp_number_valid(const char *number)
{
    size_t n = strlen(number);

    if (n == 0 || n > LP_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((number[i] >= 'A' && number[i] <= 'Z') || (number[i] >= '0' && number[i] <= '9')))
            return false;
    return detect_valid_for("laposte", number, NULL, 0);
}

/* UPU S10 check digit of eight serial digits. */
static int s10_check(const char *d)
{
    static const int w[8] = { 8, 6, 4, 2, 3, 5, 9, 7 };
    int sum = 0, r;

    for (int i = 0; i < 8; i++)
        sum += (d[i] - '0') * w[i];
    r = 11 - sum % 11;
    return r == 10 ? 0 : r == 11 ? 5 : r;
}

/* Colissimo "6A" + 11 digits for even serials, S10 "LA........FR" for odd. */
static bool lp_number_from_serial(uint64_t serial, char *out, size_t cap)
{
    int n;

    if (serial % 2 == 0)
        n = snprintf(out, cap, "6A%011llu", (unsigned long long)(serial / 2 % 100000000000ull));
    else {
        char d[9];

        snprintf(d, sizeof(d), "%08llu", (unsigned long long)(serial / 2 % 100000000ull));
        n = snprintf(out, cap, "LA%s%dFR", d, s10_check(d));
    }
    return n == 13 && (size_t)n < cap;
}

/* The words of step i (the collected wording for a pickup point's delivery). */
static const struct lp_words *words_of(const struct journey *j, size_t i)
{
    if (j->steps[i].kind == JK_DELIVERED && j->scenario == JS_PICKUP_POINT)
        return &lp_collected;
    return &lp_words[j->steps[i].kind];
}

/* Instant t as French time with its offset into buf[32]. */
static const char *french_time(time_t t, char buf[32])
{
    struct tm tm;
    int off = 0, a;
    size_t n;

    if (!sim_local_time(LP_ZONE, t, &tm, &off)) {
        char z[21];

        snprintf(buf, 32, "%s", sim_iso_utc(t, z));
        return buf;
    }
    if ((n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm)) == 0)
        buf[0] = '\0';
    a = off < 0 ? -off : off;
    snprintf(buf + n, 32 - n, "%c%02d:%02d", off < 0 ? '-' : '+', a / 60 % 100, a % 60);
    return buf;
}

/* The La Poste event of journey step i. */
static json_t *render_event(const struct sim_env *env, const struct journey *j, size_t i,
                            bool french)
{
    const struct lp_words *w = words_of(j, i);
    char ts[32];

    french_time(journey_step_time(j, i, env->clock), ts);
    return json_pack("{s:s,s:s,s:s}", "date", ts, "code", w->code, "label",
                     french ? w->fr : w->en);
}

/* The shipment object of a journey with `visible` steps shown. */
static json_t *render_shipment(const struct sim_env *env, const struct journey *j,
                               size_t visible, bool french)
{
    json_t *events = json_array(), *shp;
    bool final = false;
    char entry[32], ts[32];
    time_t edd;

    if (events == NULL)
        return NULL;
    for (size_t i = visible; i-- > 0;) { /* newest first, as La Poste lists them */
        json_t *ev = render_event(env, j, i, french);

        if (ev == NULL || json_array_append_new(events, ev) != 0) {
            json_decref(events);
            return NULL;
        }
    }
    for (size_t i = 0; i < visible; i++)
        if (j->steps[i].kind == JK_DELIVERED || j->steps[i].kind == JK_RETURNED)
            final = true;
    french_time(journey_step_time(j, 0, env->clock), entry);
    shp = json_pack("{s:s,s:i,s:s,s:b,s:s,s:o,s:{s:s,s:s}}", "idShip", j->number, "holder", 4,
                    "product", j->origin == j->dest ? "Colissimo" : "Colissimo International",
                    "isFinal", final, "entryDate", entry, "event", events, "contextData",
                    "originCountry", j->origin->cc, "arrivalCountry", j->dest->cc);
    if (shp == NULL)
        return NULL;
    if (journey_edd(j, visible, env->clock, &edd)) {
        struct tm tm;
        int off;
        char day[16];

        if (sim_local_time(journey_zone(j->dest, j->to), edd, &tm, &off) &&
            strftime(day, sizeof(day), "%Y-%m-%d", &tm) > 0)
            json_object_set_new(shp, "estimDate", json_string(day));
    }
    for (size_t i = visible; i-- > 0;)
        if (j->steps[i].kind == JK_DELIVERED) {
            json_object_set_new(shp, "deliveryDate",
                                json_string(french_time(journey_step_time(j, i, env->clock), ts)));
            break;
        }
    return shp;
}

/* One answer item for id; *code gets its returnCode. NULL when out of memory. */
static json_t *render_item(const struct sim_env *env, const char *id, const char *lang,
                           int *code)
{
    bool french = strcmp(lang, "fr_FR") == 0;
    struct journey j;
    json_t *shp;

    if (!lp_number_valid(id)) {
        char shown[LP_ID_MAX + 1];
        size_t k;

        /* echoed with anything but printable ASCII as '?', so it is valid JSON text */
        for (k = 0; id[k] != '\0' && k < LP_ID_MAX; k++)
            shown[k] = id[k] > 0x20 && id[k] < 0x7f ? id[k] : '?';
        shown[k] = '\0';
        *code = 400;
        return json_pack("{s:i,s:s,s:s,s:s}", "returnCode", 400, "returnMessage",
                         french ? "Numéro d'envoi invalide" : "Invalid shipment number", "lang",
                         lang, "idShip", shown);
    }
    if (!journey_build("laposte", id, &j)) {
        *code = 104;
        return json_pack("{s:i,s:s,s:s,s:s,s:s}", "returnCode", 104, "returnMessage",
                         french ? "Numéro d'envoi introuvable" : "Shipment number not found",
                         "lang", lang, "scope", "open", "idShip", id);
    }
    *code = 200;
    shp = render_shipment(env, &j, journey_visible_count(&j, env->clock), french);
    if (shp == NULL)
        return NULL;
    return json_pack("{s:i,s:s,s:s,s:o}", "returnCode", 200, "lang", lang, "scope", "open",
                     "shipment", shp);
}

/* An error answer in La Poste's shape. */
static void respond_error(struct sim_response *resp, unsigned status, const char *message)
{
    sim_respond_json(resp, status, "application/json",
                     json_pack("{s:i,s:s}", "returnCode", (int)status, "returnMessage", message));
}

/* Answer /suivi/v2/idships/{ids}. */
static void lp_handle(const struct sim_env *env, const struct sim_request *req,
                      struct sim_response *resp)
{
    const char *key = sim_header(req, "X-Okapi-Key"), *lang = sim_query(req, "lang");
    const char *ids = req->path + sizeof(LP_PATH) - 1;
    char list[LP_MAX_IDS][LP_ID_MAX + 1];
    size_t n = 0;
    bool lang_ok = false;
    json_t *items;
    int code = 0;

    if (strcmp(req->method, "GET") != 0) {
        respond_error(resp, 405, "Method Not Allowed: use GET.");
        sim_response_header(resp, "Allow", "GET");
        return;
    }
    if (key == NULL || strcmp(key, env->opt->laposte_api_key) != 0) {
        sim_respond_json(resp, 401, "application/json",
                         json_pack("{s:s,s:s}", "code", "UNAUTHORIZED", "message",
                                   key == NULL ? "Missing X-Okapi-Key header."
                                               : "Invalid credentials."));
        return;
    }
    if (lang == NULL || lang[0] == '\0')
        lang = "fr_FR";
    for (size_t i = 0; i < sizeof(lp_langs) / sizeof(lp_langs[0]); i++)
        lang_ok = lang_ok || strcmp(lang, lp_langs[i]) == 0;
    if (!lang_ok) {
        respond_error(resp, 400, "Bad Request: lang must be fr_FR, en_GB, de_DE, es_ES, it_IT "
                                 "or nl_NL.");
        return;
    }
    for (const char *p = ids;;) {
        size_t len = strcspn(p, ",");

        if (len == 0 || len > LP_ID_MAX || n == LP_MAX_IDS) {
            respond_error(resp, 400, "Bad Request: give 1 to 10 comma-separated ids of at most "
                                     "40 characters.");
            return;
        }
        memcpy(list[n], p, len);
        list[n++][len] = '\0';
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    if (n == 1) {
        json_t *item = render_item(env, list[0], lang, &code);

        if (item == NULL) {
            respond_error(resp, 500, "Internal Server Error: out of memory.");
            return;
        }
        sim_respond_json(resp, code == 200 ? 200 : code == 104 ? 404 : 400, "application/json",
                         item);
        return;
    }
    if ((items = json_array()) == NULL) {
        respond_error(resp, 500, "Internal Server Error: out of memory.");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(items, render_item(env, list[i], lang, &code)) != 0) {
            json_decref(items);
            respond_error(resp, 500, "Internal Server Error: out of memory.");
            return;
        }
    sim_respond_json(resp, 207, "application/json", items);
}

/* Wire facts of step i for /_sim/journey: exactly what La Poste shows for it. */
static json_t *lp_wire_step(const struct sim_env *env, const struct journey *j, size_t i)
{
    const struct lp_words *w = words_of(j, i);
    char ts[32];

    french_time(journey_step_time(j, i, env->clock), ts);
    return json_pack("{s:s,s:s,s:s,s:s,s:s}", "timestamp", ts, "timestamp_style", "offset",
                     "code", w->code, "label_fr", w->fr, "label_en", w->en);
}

const struct sim_carrier sim_carrier_laposte = {
    .name = "laposte",
    .route = lp_route,
    .handle = lp_handle,
    .number_valid = lp_number_valid,
    .number_from_serial = lp_number_from_serial,
    .wire_step = lp_wire_step,
};
