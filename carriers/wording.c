/*
 * wording.c - keyword classes and rules for carriers' free text.
 *
 * The tables hold folded (lower-case) keywords per language; the rule sets
 * map the first matching class to a normalized status and substatus.
 */
#include "wording.h"

#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Keyword tables. All entries are folded (lower case). NULL ends each list. */

/* Any of these marks the event as being about customs. */
static const char *const kw_customs[] = {
    "^customs$", "custom clearance", "^clearance", "^duties$", "import charges", "import duties",
    "import duty", "import tax", "import vat",                            /* en */
    "^zoll$", "^zollamt", "^zollabfertig", "^zollbehörde", "^zollkontroll", "^zollanmeld",
    "^zollstelle", "^zollfreigabe", "^zollagent", "^zollabwickl", "^zollprüf", "^zolldokument",
    "^zollgebühr", "^zollabgabe", "^zollinhalt", "^zollverfahren", "^zollbeschau", "^zolllager",
    "^zollager", "^zollstatus", "^zollrecht", "verzoll", "einfuhrabgaben",
    "einfuhrumsatzsteuer",                                                 /* de */
    "douan",                                                               /* fr, nl */
    "^aduan",                                                              /* es, pt */
    "^dogana", "^doganal", "^sdogan",                                      /* it */
    "^inklaring", "^invoerrechten",                                        /* nl */
    "^alfândega", "^alfandega",                                            /* pt */
    "^cło$", "^cła$", "^celn",                                             /* pl */
    "^tull$", "^tullen$", "^tullverket", "^tullklarer", "förtull", "^tullhantering",
    "^tullbehandl", "^tullkontroll", "^tullavgift", "^tulldeklar", "^tullager",
    "^tullmyndighet", "^tullombud",                                        /* sv */
    "^tollklarer", "^tolletaten", "fortoll", "^tollbehandl", "^tollavgift", "^tolldeklar",
    "^tollkontroll", "^tollvesen",                                         /* no */
    "通関", "税関",                                                        /* ja */
    "海关", "清关", "海關", "清關",                                        /* zh */
    "세관", "통관",                                                        /* ko */
    "جمارك", "جمركي", "الجمرك",                                            /* ar */
    "^gümrük",                                                             /* tr */
    NULL
};

/* Customs refused the goods outright. */
static const char *const kw_prohibited[] = {
    "^prohibited", "^forbidden", "^seized", "^confiscat", "verboten", "beschlagnahm", "^interdit",
    "^saisi", "^prohibid", "^proibit", "^vietat", "^verboden", "^zakazan", "^förbjud", "禁止",
    "محظور", "ممنوع", "^yasak",
    NULL
};

/* Customs refused, seized or destroyed the goods (closes a prohibited hold). */
static const char *const kw_rejected[] = {
    "^seized", "^confiscat", "^destroyed", "^destruction", "^refused entry", "^denied entry",
    "beschlagnahm", "vernichtet", "^saisi", "^détruit", "^incautad", "^decomisad",
    "^destruid", "^sequestrat", "^distrutt",
    "^inbeslaggenomen", "^vernietigd", "^apreendid", "^confiscad", "^skonfiskow", "^zniszcz",
    "^beslagtag", "^förstörd", "^destruert", "^inndratt", "没收", "销毁", "沒收", "押収",
    "廃棄", "압수", "폐기", "مصادرة", "إتلاف", "^el konul", "^imha",
    NULL
};

/* A customs broker handles the clearance. */
static const char *const kw_broker[] = {
    "^broker", "customs agent", "clearing agent", "courtier en douane", "^transitaire",
    "^zollagent", "^verzollungsagent", "^zollmakler", "agente de aduanas", "agente aduanal",
    "^despachante", "spedizioniere doganale", "^doganalista", "^douane-expediteur",
    "^inklaringsagent", "agencja celna", "agencji celnej", "^tullombud", "^tollagent",
    "通関業者", "报关行", "報關行", "报关代理", "관세사", "مخلص جمركي", "^gümrük müşavir",
    NULL
};

/* Customs let the goods go. */
static const char *const kw_released[] = {
    "^released", "^cleared$", "clearance complete", "clearance process complete",
    "processing complete", "formalities complete", "^freigegeben", "^verzollt",
    "^abgeschlossen", "^dédouané", "^libéré", "^mainlevée", "^terminé", "^liberad",
    "^despachad", "^finalizad", "^sdoganat", "^svincolat", "^completat", "^vrijgegeven",
    "^ingeklaard", "^afgerond", "^desembaraçad", "^concluíd", "^zwolnion", "^zakończon",
    "^förtullad", "^klarerad", "^tullklarerad", "通関済", "通関完了", "輸入許可", "放行",
    "清关完成", "已清关", "통관완료", "통관 완료",
    "^fortollet", "^tollklarert", "تم الإفراج", "^tamamlandı", "serbest bırak",
    NULL
};

/* Customs waits for papers. */
static const char *const kw_documents[] = {
    "^document", "^dokument", "paperwork", "information required", "information needed",
    "^invoice", "^rechnung", "^unterlagen", "^facture", "^justificatif", "^factura", "^fattura",
    "^factuur", "^fatura", "^faktur", "書類", "文件", "资料", "서류",
    "مستندات", "وثائق", "^belge", "^evrak",
    NULL
};

/* Customs waits for money. */
static const char *const kw_duties[] = {
    "^duties", "^duty$", "import charges", "^taxes", "^tax$", "^payment", "^pay$", "^vat$",
    "abgaben", "zahlung", "steuer", "gebühr", "^droits", "^taxe", "^paiement", "^payer",
    "^tva$", "^impuesto", "^arancel", "^pago", "^pagar", "^iva$", "^dazi", "^dazio", "^tasse",
    "^pagamento", "^pagare", "^rechten", "^betaling", "^betalen", "^btw$", "^heffing",
    "^imposto", "^taxa", "^tributo", "^opłat", "^należnoś", "^podat", "^zapłat", "^avgift",
    "^moms$", "^betala", "関税", "税金", "支払", "关税", "税费", "支付", "관세", "세금", "납부",
    "^betale$", "رسوم", "ضريبة", "ضرائب", "^vergi", "^ödeme", "^harç",
    NULL
};

/* Customs opened the parcel or wants to. */
static const char *const kw_inspection[] = {
    "^inspect", "^examination", "x-ray", "kontroll", "beschau", "prüfung", "^contrôle",
    "^controle", "^inspecci", "^ispezion", "^controllo", "^inspectie", "^inspeç", "^inspeca",
    "^fiscaliza", "^kontrol", "検査", "查验", "检查", "검사",
    "تفتيش", "فحص", "^muayene",
    NULL
};

/* Something is late. */
static const char *const kw_delay[] = {
    "^delay", "verzöger", "verspät", "^retard", "^retras", "^ritard", "^vertraag",
    "^vertraging", "^atras", "^opóźni", "^försen", "遅延", "延误", "지연",
    NULL
};

/* Held, reason not stated. */
static const char *const kw_hold[] = {
    "^hold$", "^held$", "angehalten", "zurückgehalten", "^retenu", "^bloqué", "^retenid",
    "^bloquead", "^trattenut", "^bloccat", "^vastgehouden", "^geblokkeerd", "^retid",
    "^zatrzyman", "^kvarhåll", "留置", "扣留", "보류",
    "holdt tilbake", "محتجز", "^bekletil", "^alıkon",
    NULL
};

/* On its way back to the shipper. */
static const char *const kw_return[] = {
    "^return", "back to sender", "back to shipper", "^retour", "rücksend", "zurück an",
    "^devol", "^retorn", "^restituit", "^reso$", "^zwrot", "^retur", "返送", "退回", "반송",
    NULL
};

/* Recipient refused the parcel. */
static const char *const kw_refused[] = {
    "^refused", "verweigert", "^refusé", "^rechaz", "^rifiutat", "^geweigerd", "^recusad",
    "^odmow", "^vägr", "拒否", "拒收",
    NULL
};

/* Parcel damaged. */
static const char *const kw_damaged[] = {
    "^damage", "beschädig", "^endommag", "^dañad", "^danneggiat", "^beschadigd", "^danificad",
    "^uszkodz", "^skadad", "破損", "破损",
    NULL
};

/* Parcel lost. */
static const char *const kw_lost[] = {
    "^lost$", "^verloren", "^verschollen", "^perdu", "^perdid", "^smarrit", "^zoekgeraakt",
    "^extraviad", "^zaginion", "^försvunn", "紛失", "丢失",
    NULL
};

/* A delivery attempt did not work. */
static const char *const kw_attempt[] = {
    "delivery attempt", "attempted delivery", "^attempt", "could not be delivered",
    "unable to deliver", "not at home", "recipient not present", "recipient not available",
    "notification card", "notice left", "zustellversuch", "nicht angetroffen",
    "benachrichtigungskarte", "avis de passage", "^tentative", "intento de entrega",
    "^tentativo", "^bezorgpoging", "niet thuis", "^tentativa", "próba doręczenia",
    "^leveransförsök", "不在",
    NULL
};

/* The recipient was not there (refines an attempt). */
static const char *const kw_unavailable[] = {
    "not at home", "not present", "not available", "^unavailable", "^absent", "nicht angetroffen",
    "^ausente", "^assente", "niet thuis", "^nieobecn", "不在",
    NULL
};

/* The address is wrong or incomplete. */
static const char *const kw_address[] = {
    "^address", "^adres", "^direcci", "^indirizz", "^endere", "^adress", "住所", "地址", "주소",
    NULL
};

/* On the vehicle for the last mile. */
static const char *const kw_out_for_delivery[] = {
    "out for delivery", "with delivery courier", "on vehicle for delivery",
    "loaded onto the delivery vehicle", "in zustellung", "zustellfahrzeug", "zur zustellung",
    "en cours de livraison", "en reparto", "in consegna", "wordt bezorgd", "saiu para entrega",
    "em rota de entrega", "w doręczeniu", "ute för leverans", "utkörning", "配達中", "派送中",
    NULL
};

/* Waiting for the recipient at a shop, locker or counter. */
static const char *const kw_pickup_point[] = {
    "pickup point", "pick-up point", "pick up point", "parcel shop", "parcelshop", "packstation",
    "service point", "servicepoint", "parcel locker", "ready for pickup", "ready for pick up",
    "ready for pick-up", "ready for collection", "available for pickup",
    "available for collection", "awaiting collection", "awaiting pickup", "zur abholung",
    "abholbereit", "point relais", "à retirer", "disponible au retrait", "punto de recogida",
    "listo para recoger", "disponible para recoger", "punto di ritiro", "pronto per il ritiro",
    "disponibile per il ritiro", "afhaalpunt", "pakketpunt", "klaar om op te halen",
    "ponto de retirada", "disponível para retirada", "pronto para retirada", "punkt odbioru",
    "paczkomat", "do odbioru", "utlämningsställe", "^ombud", "redo att hämtas", "受取可能",
    "待取件", "自提",
    NULL
};

/* The recipient collected it (delivered, even at a pickup point). */
static const char *const kw_collected[] = {
    "picked up by", "collected by", "abgeholt", "retiré par", "recogido por", "ritirato da",
    "opgehaald door", "retirado por", "odebran", "hämtad av",
    NULL
};

/* Left the origin country. */
static const char *const kw_departed_origin[] = {
    "left the origin country", "left the country of origin", "departed the origin country",
    "departed origin country", "transported to the destination country", "^export",
    "^ausfuhr", "^exportation", "^exportación", "^esportazione", "^eksport", "^exportad",
    NULL
};

/* Reached the destination country. */
static const char *const kw_arrived_destination[] = {
    "destination country", "^zielland", "pays de destination", "país de destino",
    "paese di destinazione", "land van bestemming", "kraju przeznaczenia", "^destinationsland",
    "目的国", "目的地国",
    NULL
};

/* Picked up from the shipper. */
static const char *const kw_picked_up[] = {
    "^picked up", "posted by the sender", "handed over by the sender", "abgeholt", "eingeliefert",
    "pris en charge", "^recogid", "^ritirat", "^opgehaald", "^coletad", "^upphämtad", "集荷",
    "揽收", "已揽件",
    NULL
};

/* Left a facility. */
static const char *const kw_departed[] = {
    "^departed", "^departure", "has left", "^verlassen", "quitté", "^départ", "^salid",
    "^partit", "^vertrokken", "^saiu$", "opuściła", "^lämnat", "発送", "已发出", "离开",
    NULL
};

/* Reached a facility. */
static const char *const kw_arrived[] = {
    "^arrived", "^arrival", "received at", "eingetroffen", "angekommen", "^ankunft", "^arrivé",
    "^llegad", "^llegó", "^arrivat", "^aangekomen", "^chegou", "^chegad", "^dotarł", "^anlänt",
    "到着", "到达",
    NULL
};

/* Weather. */
static const char *const kw_weather[] = {
    "^weather", "^storm", "unwetter", "wetter", "^météo", "^intempérie", "^maltempo",
    "^meteorolog", "^pogod", "^väder", "悪天候", "天气",
    NULL
};

/* Left with a neighbour. */
static const char *const kw_neighbour[] = {
    "^neighbour", "^neighbor", "nachbar", "^voisin", "^vecin", "^vicin", "^buren$", "^buurman",
    "^buurvrouw", "^vizinh", "^sąsiad", "^granne", "隣", "邻居",
    NULL
};

/* Left in the mailbox. */
static const char *const kw_mailbox[] = {
    "mailbox", "letterbox", "letter box", "mail box", "briefkasten", "boîte aux lettres",
    "boite aux lettres", "^buzón", "cassetta postale", "brievenbus", "caixa de correio",
    "^skrzynk", "brevlåda", "postlåda", "郵便受け", "信箱",
    NULL
};

/* Someone signed for it. */
static const char *const kw_signed[] = {
    "^signed", "^signature", "unterschr", "^signé", "^firmad", "^firmat", "^getekend",
    "handtekening", "^assinad", "^assinatura", "^podpis", "^signerad", "署名", "签收",
    NULL
};

/* One step of a classification: words that trigger it and what they mean. */
struct text_rule {
    const char *const *words;     /* trigger keywords */
    enum st_status status;        /* status implied */
    enum st_substatus sub;        /* substatus implied */
};

/* Customs classification, first match wins; no match means processing. */
static const struct text_rule customs_rules[] = {
    { kw_prohibited, ST_STATUS_HELD, ST_SUB_CUSTOMS_PROHIBITED },
    { kw_released, ST_STATUS_IN_TRANSIT, ST_SUB_CUSTOMS_RELEASED },
    { kw_documents, ST_STATUS_HELD, ST_SUB_CUSTOMS_DOCUMENTS_REQUIRED },
    { kw_duties, ST_STATUS_HELD, ST_SUB_CUSTOMS_DUTIES_DUE },
    { kw_inspection, ST_STATUS_HELD, ST_SUB_CUSTOMS_INSPECTION },
    { kw_delay, ST_STATUS_HELD, ST_SUB_CUSTOMS_DELAY },
    { kw_hold, ST_STATUS_HELD, ST_SUB_CUSTOMS_DELAY },
};

/* statusCode "transit", after returns and customs; no match means plain transit. */
static const struct text_rule transit_rules[] = {
    { kw_refused, ST_STATUS_EXCEPTION, ST_SUB_REFUSED },
    { kw_damaged, ST_STATUS_EXCEPTION, ST_SUB_DAMAGED },
    { kw_lost, ST_STATUS_EXCEPTION, ST_SUB_LOST },
    { kw_attempt, ST_STATUS_ATTEMPT_FAILED, ST_SUB_NONE },
    { kw_out_for_delivery, ST_STATUS_OUT_FOR_DELIVERY, ST_SUB_OUT_FOR_DELIVERY },
    { kw_pickup_point, ST_STATUS_AVAILABLE_FOR_PICKUP, ST_SUB_AT_PICKUP_POINT },
    { kw_departed_origin, ST_STATUS_IN_TRANSIT, ST_SUB_DEPARTED_ORIGIN_COUNTRY },
    { kw_arrived_destination, ST_STATUS_IN_TRANSIT, ST_SUB_ARRIVED_DESTINATION_COUNTRY },
    { kw_picked_up, ST_STATUS_IN_TRANSIT, ST_SUB_PICKED_UP },
    { kw_departed, ST_STATUS_IN_TRANSIT, ST_SUB_DEPARTED_FACILITY },
    { kw_arrived, ST_STATUS_IN_TRANSIT, ST_SUB_ARRIVED_FACILITY },
    { kw_weather, ST_STATUS_IN_TRANSIT, ST_SUB_WEATHER_DELAY },
    { kw_delay, ST_STATUS_IN_TRANSIT, ST_SUB_CARRIER_DELAY },
};

/* statusCode "failure", after returns and customs; no match means a bare exception. */
static const struct text_rule failure_rules[] = {
    { kw_refused, ST_STATUS_EXCEPTION, ST_SUB_REFUSED },
    { kw_damaged, ST_STATUS_EXCEPTION, ST_SUB_DAMAGED },
    { kw_lost, ST_STATUS_EXCEPTION, ST_SUB_LOST },
    { kw_attempt, ST_STATUS_ATTEMPT_FAILED, ST_SUB_NONE },
    { kw_address, ST_STATUS_EXCEPTION, ST_SUB_ADDRESS_ISSUE },
    { kw_weather, ST_STATUS_EXCEPTION, ST_SUB_WEATHER_DELAY },
    { kw_delay, ST_STATUS_EXCEPTION, ST_SUB_CARRIER_DELAY },
};

/* statusCode "delivered"; no match means plain delivered. */
static const struct text_rule delivered_rules[] = {
    { kw_return, ST_STATUS_RETURNED, ST_SUB_RETURNED_TO_SENDER },
    { kw_collected, ST_STATUS_DELIVERED, ST_SUB_DELIVERED },
    { kw_pickup_point, ST_STATUS_AVAILABLE_FOR_PICKUP, ST_SUB_AT_PICKUP_POINT },
    { kw_neighbour, ST_STATUS_DELIVERED, ST_SUB_DELIVERED_TO_NEIGHBOUR },
    { kw_mailbox, ST_STATUS_DELIVERED, ST_SUB_DELIVERED_TO_MAILBOX },
    { kw_signed, ST_STATUS_DELIVERED, ST_SUB_SIGNED },
};

#define NRULES(a) (sizeof(a) / sizeof((a)[0]))

/* Keyword list of each class. */
static const char *const *const class_words[W__COUNT] = {
    [W_CUSTOMS] = kw_customs,
    [W_PROHIBITED] = kw_prohibited,
    [W_RELEASED] = kw_released,
    [W_DOCUMENTS] = kw_documents,
    [W_DUTIES] = kw_duties,
    [W_INSPECTION] = kw_inspection,
    [W_DELAY] = kw_delay,
    [W_HOLD] = kw_hold,
    [W_RETURN] = kw_return,
    [W_REFUSED] = kw_refused,
    [W_DAMAGED] = kw_damaged,
    [W_LOST] = kw_lost,
    [W_ATTEMPT] = kw_attempt,
    [W_UNAVAILABLE] = kw_unavailable,
    [W_ADDRESS] = kw_address,
    [W_OUT_FOR_DELIVERY] = kw_out_for_delivery,
    [W_PICKUP_POINT] = kw_pickup_point,
    [W_COLLECTED] = kw_collected,
    [W_DEPARTED_ORIGIN] = kw_departed_origin,
    [W_ARRIVED_DESTINATION] = kw_arrived_destination,
    [W_PICKED_UP] = kw_picked_up,
    [W_DEPARTED] = kw_departed,
    [W_ARRIVED] = kw_arrived,
    [W_WEATHER] = kw_weather,
    [W_NEIGHBOUR] = kw_neighbour,
    [W_MAILBOX] = kw_mailbox,
    [W_SIGNED] = kw_signed,
    [W_REJECTED] = kw_rejected,
    [W_BROKER] = kw_broker,
};

/* ------------------------------------------------------------------------ */
/* Text folding and keyword matching. */

/* Lower-case one code point: ASCII, Latin-1, Latin Extended-A, basic Greek
 * and Cyrillic. Scripts without case pass through unchanged. */
static uint32_t fold_cp(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c == 0x130)
        return 'i';
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
        return c | 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
        return (c & 1) ? c + 1 : c;
    if (c == 0x178)
        return 0xFF;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
        return c + 32;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    return c;
}

/* Decode one UTF-8 sequence at s (NUL-terminated); *len gets its length.
 * Returns false for an invalid or truncated sequence (*len = 1 then). */
static bool utf8_decode(const unsigned char *s, uint32_t *cp, size_t *len)
{
    uint32_t c = s[0];
    size_t n, i;

    *len = 1;
    if (c < 0x80) {
        *cp = c;
        return true;
    }
    if ((c & 0xE0) == 0xC0) { n = 2; c &= 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 3; c &= 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 4; c &= 0x07; }
    else return false;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return false;
        c = (c << 6) | (s[i] & 0x3F);
    }
    *cp = c;
    *len = n;
    return true;
}

/* Encode cp into out (room for 4 bytes); returns the length. */
static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Append the folded form of src to dst[cap] at *o; stops when full.
 * Invalid bytes become spaces. */
void wording_fold_append(char *dst, size_t cap, size_t *o, const char *src)
{
    const unsigned char *s = (const unsigned char *)src;
    char enc[4];

    while (*s != '\0') {
        uint32_t cp = ' ';
        size_t len, k;

        if (!utf8_decode(s, &cp, &len))
            cp = ' ';
        k = utf8_encode(fold_cp(cp), enc);
        if (*o + k >= cap)
            break;
        memcpy(dst + *o, enc, k);
        *o += k;
        s += len;
    }
    dst[*o] = '\0';
}

/* True for bytes that belong to a word: ASCII letters and digits, and any
 * byte of a multi-byte character (accented letters, other scripts). */
static bool word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80;
}

/* ------------------------------------------------------------------------ */
/* Addresses: "Zollstrasse 12", "Rue de la Douane", "Aduana Street" and
 * "Gümrükçü Sokak" name a street, not an event. A keyword inside such a
 * name does not count. */

/* Words that name a street when they follow the keyword's word. */
static const char *const street_after[] = {
    "street", "st", "road", "rd", "avenue", "ave", "lane", "straße", "strasse", "str", "gasse",
    "weg", "platz", "allee", "sokak", "sokağı", "sk", "caddesi", "cad", "cd", "straat", "laan",
    "gatan", "vägen", "gate", "veien", "vei", "ulica", NULL
};

/* Words that name a street when they precede the keyword (articles between
 * are skipped). */
static const char *const street_before[] = {
    "rue", "quai", "place", "avenue", "chemin", "impasse", "boulevard", "bd", "allée",
    "calle", "avenida", "plaza", "paseo", "carrer", "via", "viale", "piazza", "rua", "travessa",
    "largo", "ulica", "ul", "street", "straße", "strasse", "شارع", NULL
};

/* Articles and prepositions inside street names ("rue de la ..."). */
static const char *const street_articles[] = {
    "de", "la", "le", "les", "des", "du", "l", "d", "del", "della", "delle", "dei", "da", "do",
    "dos", "das", "al", NULL
};

/* Endings of a compound word that is a street name ("zollstrasse"). */
static const char *const street_suffix[] = {
    "strasse", "straße", "str", "gasse", "weg", "platz", "straat", "gatan", "gata", "gate",
    "vägen", "veien", "sokak", "sokağı", "caddesi", NULL
};

/* Scripts without spaces: a street word right after the keyword ("海关路"). */
static const char *const street_glued[] = {
    "路", "街", "大道", "通り", "로", "길", NULL
};

/* Is text[a, b) equal to one of the NULL-terminated words? */
static bool span_is(const char *a, const char *b, const char *const *words)
{
    size_t len = (size_t)(b - a);

    for (size_t i = 0; words[i] != NULL; i++)
        if (strlen(words[i]) == len && memcmp(a, words[i], len) == 0)
            return true;
    return false;
}

/* Is the keyword found at text[p, p + n) part of a street name? */
static bool in_street_name(const char *text, const char *p, size_t n)
{
    const char *ws = p, *we = p + n, *a, *b;

    for (size_t i = 0; street_glued[i] != NULL; i++)
        if (strncmp(we, street_glued[i], strlen(street_glued[i])) == 0)
            return true;
    while (ws > text && word_byte((unsigned char)ws[-1]))
        ws--;
    while (word_byte((unsigned char)*we))
        we++;
    for (size_t i = 0; street_suffix[i] != NULL; i++) {
        size_t l = strlen(street_suffix[i]);

        if ((size_t)(we - (p + n)) >= l && memcmp(we - l, street_suffix[i], l) == 0)
            return true;
    }
    /* the next word */
    for (a = we; *a == ' ' || *a == '-' || *a == '.'; a++)
        ;
    for (b = a; word_byte((unsigned char)*b); b++)
        ;
    if (b > a && span_is(a, b, street_after))
        return true;
    /* up to three words back, skipping articles */
    b = ws;
    for (int k = 0; k < 3; k++) {
        while (b > text && (b[-1] == ' ' || b[-1] == '\'' || b[-1] == '-'))
            b--;
        for (a = b; a > text && word_byte((unsigned char)a[-1]); a--)
            ;
        if (a == b)
            return false;
        if (span_is(a, b, street_before))
            return true;
        if (!span_is(a, b, street_articles))
            return false;
        b = a;
    }
    return false;
}

/* Does the folded text contain keyword kw (with its ^/$ boundary marks)? */
static bool text_has_word(const char *text, const char *kw)
{
    bool start = kw[0] == '^';
    char word[64];
    size_t n;
    const char *p;

    if (start)
        kw++;
    n = strlen(kw);
    if (n == 0 || n >= sizeof(word))
        return false;
    memcpy(word, kw, n + 1);
    bool end = word[n - 1] == '$';
    if (end)
        word[--n] = '\0';
    for (p = strstr(text, word); p != NULL; p = strstr(p + 1, word)) {
        if (start && p > text && word_byte((unsigned char)p[-1]))
            continue;
        if (end && word_byte((unsigned char)p[n]))
            continue;
        if (in_street_name(text, p, n))
            continue;
        return true;
    }
    return false;
}

/* Does the folded text contain any keyword of the NULL-terminated list? */
static bool text_has(const char *text, const char *const *words)
{
    for (size_t i = 0; words[i] != NULL; i++)
        if (text_has_word(text, words[i]))
            return true;
    return false;
}

/* Apply the first rule of rules[0..n) whose words occur in text. */
static bool apply_rules(const char *text, const struct text_rule *rules, size_t n,
                        struct track_event *ev)
{
    for (size_t i = 0; i < n; i++)
        if (text_has(text, rules[i].words)) {
            ev->status = rules[i].status;
            ev->substatus = rules[i].sub;
            return true;
        }
    return false;
}


/* Classify a customs event already known to be one (text has customs words). */
static void classify_customs(const char *text, struct track_event *ev)
{
    ev->customs = true;
    if (!apply_rules(text, customs_rules, NRULES(customs_rules), ev)) {
        ev->status = ST_STATUS_IN_TRANSIT;
        ev->substatus = ST_SUB_CUSTOMS_PROCESSING;
    }
}

/* Refine an attempt_failed event's substatus from its text. */
static void refine_attempt(const char *text, struct track_event *ev)
{
    if (ev->status != ST_STATUS_ATTEMPT_FAILED)
        return;
    if (text_has(text, kw_unavailable))
        ev->substatus = ST_SUB_RECIPIENT_UNAVAILABLE;
    else if (text_has(text, kw_address))
        ev->substatus = ST_SUB_ADDRESS_ISSUE;
}


bool wording_has(const char *folded, enum wording_class c)
{
    return (unsigned)c < W__COUNT && text_has(folded, class_words[c]);
}

bool wording_apply(const char *folded, enum wording_rules set, struct track_event *ev)
{
    switch (set) {
    case WR_CUSTOMS: return apply_rules(folded, customs_rules, NRULES(customs_rules), ev);
    case WR_TRANSIT: return apply_rules(folded, transit_rules, NRULES(transit_rules), ev);
    case WR_FAILURE: return apply_rules(folded, failure_rules, NRULES(failure_rules), ev);
    case WR_DELIVERED: return apply_rules(folded, delivered_rules, NRULES(delivered_rules), ev);
    }
    return false;
}

void wording_classify_customs(const char *folded, struct track_event *ev)
{
    classify_customs(folded, ev);
}

void wording_refine_attempt(const char *folded, struct track_event *ev)
{
    refine_attempt(folded, ev);
}
