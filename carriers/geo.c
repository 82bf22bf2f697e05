/*
 * geo.c - ISO 3166 countries, their zones, and wall-clock to UTC conversion.
 *
 * The country list comes from tzdata (geo_countries.inc). Countries that span
 * several zones are resolved through a region code (US state, Canadian
 * province, Australian state, Brazilian state, Mexican state, Spanish and
 * Portuguese autonomous regions); where the region does not pin a zone, or
 * none is given, geo_zone() answers NULL and the caller flags the offset as
 * unknown.
 */
#include "geo.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct country {
    const char *cc;
    const char *name;
    const char *zone; /* NULL: several zones, see regions[] */
};

static const struct country countries[] = {
#include "geo_countries.inc"
};

struct region {
    const char *cc;
    const char *region; /* state/province code as carriers send it */
    const char *zone;
};

/* Regions of multi-zone countries. States split between zones map to the
 * zone most of their population lives in. */
static const struct region regions[] = {
    /* United States */
    { "US", "AL", "America/Chicago" }, { "US", "AK", "America/Anchorage" },
    { "US", "AZ", "America/Phoenix" }, { "US", "AR", "America/Chicago" },
    { "US", "CA", "America/Los_Angeles" }, { "US", "CO", "America/Denver" },
    { "US", "CT", "America/New_York" }, { "US", "DE", "America/New_York" },
    { "US", "DC", "America/New_York" }, { "US", "FL", "America/New_York" },
    { "US", "GA", "America/New_York" }, { "US", "HI", "Pacific/Honolulu" },
    { "US", "ID", "America/Boise" }, { "US", "IL", "America/Chicago" },
    { "US", "IN", "America/Indiana/Indianapolis" }, { "US", "IA", "America/Chicago" },
    { "US", "KS", "America/Chicago" }, { "US", "KY", "America/New_York" },
    { "US", "LA", "America/Chicago" }, { "US", "ME", "America/New_York" },
    { "US", "MD", "America/New_York" }, { "US", "MA", "America/New_York" },
    { "US", "MI", "America/Detroit" }, { "US", "MN", "America/Chicago" },
    { "US", "MS", "America/Chicago" }, { "US", "MO", "America/Chicago" },
    { "US", "MT", "America/Denver" }, { "US", "NE", "America/Chicago" },
    { "US", "NV", "America/Los_Angeles" }, { "US", "NH", "America/New_York" },
    { "US", "NJ", "America/New_York" }, { "US", "NM", "America/Denver" },
    { "US", "NY", "America/New_York" }, { "US", "NC", "America/New_York" },
    { "US", "ND", "America/Chicago" }, { "US", "OH", "America/New_York" },
    { "US", "OK", "America/Chicago" }, { "US", "OR", "America/Los_Angeles" },
    { "US", "PA", "America/New_York" }, { "US", "RI", "America/New_York" },
    { "US", "SC", "America/New_York" }, { "US", "SD", "America/Chicago" },
    { "US", "TN", "America/Chicago" }, { "US", "TX", "America/Chicago" },
    { "US", "UT", "America/Denver" }, { "US", "VT", "America/New_York" },
    { "US", "VA", "America/New_York" }, { "US", "WA", "America/Los_Angeles" },
    { "US", "WV", "America/New_York" }, { "US", "WI", "America/Chicago" },
    { "US", "WY", "America/Denver" }, { "US", "PR", "America/Puerto_Rico" },
    { "US", "GU", "Pacific/Guam" }, { "US", "VI", "America/St_Thomas" },
    { "US", "TX-EP", "America/Denver" }, /* El Paso keeps mountain time */
    /* Canada */
    { "CA", "NL", "America/St_Johns" }, { "CA", "NS", "America/Halifax" },
    { "CA", "PE", "America/Halifax" }, { "CA", "NB", "America/Moncton" },
    { "CA", "QC", "America/Toronto" }, { "CA", "ON", "America/Toronto" },
    { "CA", "MB", "America/Winnipeg" }, { "CA", "SK", "America/Regina" },
    { "CA", "AB", "America/Edmonton" }, { "CA", "BC", "America/Vancouver" },
    { "CA", "YT", "America/Whitehorse" }, { "CA", "NT", "America/Inuvik" },
    { "CA", "NU", "America/Iqaluit" },
    /* Australia */
    { "AU", "NSW", "Australia/Sydney" }, { "AU", "ACT", "Australia/Sydney" },
    { "AU", "VIC", "Australia/Melbourne" }, { "AU", "QLD", "Australia/Brisbane" },
    { "AU", "SA", "Australia/Adelaide" }, { "AU", "WA", "Australia/Perth" },
    { "AU", "TAS", "Australia/Hobart" }, { "AU", "NT", "Australia/Darwin" },
    /* Brazil */
    { "BR", "SP", "America/Sao_Paulo" }, { "BR", "RJ", "America/Sao_Paulo" },
    { "BR", "MG", "America/Sao_Paulo" }, { "BR", "ES", "America/Sao_Paulo" },
    { "BR", "PR", "America/Sao_Paulo" }, { "BR", "SC", "America/Sao_Paulo" },
    { "BR", "RS", "America/Sao_Paulo" }, { "BR", "GO", "America/Sao_Paulo" },
    { "BR", "DF", "America/Sao_Paulo" }, { "BR", "BA", "America/Bahia" },
    { "BR", "PE", "America/Recife" }, { "BR", "CE", "America/Fortaleza" },
    { "BR", "PA", "America/Belem" }, { "BR", "AM", "America/Manaus" },
    { "BR", "MT", "America/Cuiaba" }, { "BR", "MS", "America/Campo_Grande" },
    { "BR", "AC", "America/Rio_Branco" }, { "BR", "RO", "America/Porto_Velho" },
    { "BR", "RR", "America/Boa_Vista" }, { "BR", "AL", "America/Maceio" },
    { "BR", "SE", "America/Maceio" }, { "BR", "TO", "America/Araguaina" },
    { "BR", "MA", "America/Fortaleza" }, { "BR", "PI", "America/Fortaleza" },
    { "BR", "RN", "America/Fortaleza" }, { "BR", "PB", "America/Fortaleza" },
    { "BR", "AP", "America/Belem" },
    /* Mexico: most states keep central time */
    { "MX", "BCN", "America/Tijuana" }, { "MX", "BC", "America/Tijuana" },
    { "MX", "SON", "America/Hermosillo" }, { "MX", "SIN", "America/Mazatlan" },
    { "MX", "BCS", "America/Mazatlan" }, { "MX", "NAY", "America/Mazatlan" },
    { "MX", "CHH", "America/Chihuahua" }, { "MX", "ROO", "America/Cancun" },
    { "MX", "CMX", "America/Mexico_City" }, { "MX", "DF", "America/Mexico_City" },
    { "MX", "JAL", "America/Mexico_City" }, { "MX", "NLE", "America/Monterrey" },
    { "MX", "MEX", "America/Mexico_City" }, { "MX", "PUE", "America/Mexico_City" },
    { "MX", "YUC", "America/Merida" }, { "MX", "VER", "America/Mexico_City" },
    /* Spain and Portugal: islands differ from the mainland */
    { "ES", "CN", "Atlantic/Canary" }, { "ES", "GC", "Atlantic/Canary" },
    { "ES", "TF", "Atlantic/Canary" }, { "PT", "20", "Atlantic/Azores" },
    { "PT", "30", "Atlantic/Madeira" },
};

static const struct country *find_country(const char *cc)
{
    if (cc == NULL || strlen(cc) != 2)
        return NULL;
    for (size_t i = 0; i < sizeof(countries) / sizeof(countries[0]); i++)
        if (countries[i].cc[0] == cc[0] && countries[i].cc[1] == cc[1])
            return &countries[i];
    return NULL;
}

bool geo_country_valid(const char *cc)
{
    return find_country(cc) != NULL;
}

const char *geo_country_name(const char *cc)
{
    const struct country *c = find_country(cc);

    return c ? c->name : NULL;
}

const char *geo_zone(const char *cc, const char *region)
{
    const struct country *c = find_country(cc);

    if (c == NULL)
        return NULL;
    if (region != NULL && region[0] != '\0') {
        /* Accept "US-CA" as well as "CA". */
        if (strncasecmp(region, cc, 2) == 0 && region[2] == '-')
            region += 3;
        for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++)
            if (strcmp(regions[i].cc, c->cc) == 0 && strcasecmp(regions[i].region, region) == 0)
                return regions[i].zone;
    }
    return c->zone;
}

/* US ZIP3 ranges -> state (inclusive). Only where the state matters for the
 * zone; military and territories beyond PR/GU/VI are left out. */
static const struct {
    unsigned short lo, hi;
    const char *state;
} us_zip3[] = {
    { 5, 5, "NY" },     { 6, 9, "PR" },     { 10, 27, "MA" },   { 28, 29, "RI" },
    { 30, 38, "NH" },   { 39, 49, "ME" },   { 50, 54, "VT" },   { 55, 55, "MA" },
    { 56, 59, "VT" },   { 60, 69, "CT" },   { 70, 89, "NJ" },   { 100, 149, "NY" },
    { 150, 196, "PA" }, { 197, 199, "DE" }, { 200, 205, "DC" }, { 206, 219, "MD" },
    { 220, 246, "VA" }, { 247, 268, "WV" }, { 270, 289, "NC" }, { 290, 299, "SC" },
    { 300, 319, "GA" }, { 320, 349, "FL" }, { 350, 369, "AL" }, { 370, 385, "TN" },
    { 386, 397, "MS" }, { 398, 399, "GA" }, { 400, 427, "KY" }, { 430, 459, "OH" },
    { 460, 479, "IN" }, { 480, 499, "MI" }, { 500, 528, "IA" }, { 530, 549, "WI" },
    { 550, 567, "MN" }, { 570, 577, "SD" }, { 580, 588, "ND" }, { 590, 599, "MT" },
    { 600, 629, "IL" }, { 630, 658, "MO" }, { 660, 679, "KS" }, { 680, 693, "NE" },
    { 700, 714, "LA" }, { 716, 729, "AR" }, { 730, 749, "OK" }, { 750, 797, "TX" },
    { 798, 799, "TX-EP" }, { 800, 816, "CO" }, { 820, 831, "WY" }, { 832, 838, "ID" },
    { 840, 847, "UT" }, { 850, 865, "AZ" }, { 870, 884, "NM" }, { 885, 885, "TX-EP" },
    { 889, 898, "NV" }, { 900, 961, "CA" }, { 967, 968, "HI" }, { 969, 969, "GU" },
    { 970, 979, "OR" }, { 980, 994, "WA" }, { 995, 999, "AK" },
};

/* Brazilian CEP: first three digits -> state, where the zone differs. */
static const struct {
    unsigned short lo, hi;
    const char *state;
} br_cep3[] = {
    { 10, 199, "SP" },  { 200, 289, "RJ" }, { 290, 299, "ES" }, { 300, 399, "MG" },
    { 400, 489, "BA" }, { 490, 499, "SE" }, { 500, 569, "PE" }, { 570, 579, "AL" },
    { 580, 589, "PB" }, { 590, 599, "RN" }, { 600, 639, "CE" }, { 640, 649, "PI" },
    { 650, 659, "MA" }, { 660, 688, "PA" }, { 689, 689, "AP" }, { 690, 692, "AM" },
    { 693, 693, "RR" }, { 694, 698, "AM" }, { 699, 699, "AC" }, { 700, 767, "DF" },
    { 768, 769, "RO" }, { 770, 779, "TO" }, { 780, 788, "MT" }, { 790, 799, "MS" },
    { 800, 879, "PR" }, { 880, 899, "SC" }, { 900, 999, "RS" },
};

const char *geo_region_from_postal(const char *cc, const char *postal)
{
    char d[4];
    size_t n = 0;
    unsigned v;

    if (cc == NULL || postal == NULL)
        return NULL;
    if (strcmp(cc, "CA") == 0) { /* first letter: the postal district */
        static const char *const by_letter[26] = {
            ['A' - 'A'] = "NL", ['B' - 'A'] = "NS", ['C' - 'A'] = "PE", ['E' - 'A'] = "NB",
            ['G' - 'A'] = "QC", ['H' - 'A'] = "QC", ['J' - 'A'] = "QC", ['K' - 'A'] = "ON",
            ['L' - 'A'] = "ON", ['M' - 'A'] = "ON", ['N' - 'A'] = "ON", ['P' - 'A'] = "ON",
            ['R' - 'A'] = "MB", ['S' - 'A'] = "SK", ['T' - 'A'] = "AB", ['V' - 'A'] = "BC",
            ['Y' - 'A'] = "YT",
        };
        int c = toupper((unsigned char)postal[0]);

        return c >= 'A' && c <= 'Z' ? by_letter[c - 'A'] : NULL;
    }
    for (const char *p = postal; *p != '\0' && n < 3; p++) {
        if (isdigit((unsigned char)*p))
            d[n++] = *p;
        else if (*p != ' ' && *p != '-')
            return NULL;
    }
    if (n < 3 && !(strcmp(cc, "AU") == 0 && n >= 1))
        return NULL;
    d[n] = '\0';
    if (strcmp(cc, "AU") == 0) { /* postcode: first digit is the state, 26xx ACT */
        if (d[0] == '0') return "NT";
        if (d[0] == '2') return "NSW";
        if (d[0] == '3') return "VIC";
        if (d[0] == '4') return "QLD";
        if (d[0] == '5') return "SA";
        if (d[0] == '6') return "WA";
        if (d[0] == '7') return "TAS";
        return NULL;
    }
    v = (unsigned)atoi(d);
    if (strcmp(cc, "US") == 0) {
        for (size_t i = 0; i < sizeof(us_zip3) / sizeof(us_zip3[0]); i++)
            if (v >= us_zip3[i].lo && v <= us_zip3[i].hi)
                return us_zip3[i].state;
    } else if (strcmp(cc, "BR") == 0) {
        for (size_t i = 0; i < sizeof(br_cep3) / sizeof(br_cep3[0]); i++)
            if (v >= br_cep3[i].lo && v <= br_cep3[i].hi)
                return br_cep3[i].state;
    }
    return NULL;
}

bool geo_zone_valid(const char *zone)
{
    const char *dir = getenv("TZDIR");
    char path[512];
    struct stat st;
    size_t n;

    if (zone == NULL || zone[0] == '\0' || zone[0] == '/' || strstr(zone, "..") != NULL)
        return false;
    n = strlen(zone);
    if (n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)zone[i];
        if (!isalnum(ch) && ch != '_' && ch != '/' && ch != '-' && ch != '+')
            return false;
    }
    if (strcmp(zone, "UTC") == 0)
        return true;
    if (snprintf(path, sizeof(path), "%s/%s", dir ? dir : "/usr/share/zoneinfo", zone) >=
        (int)sizeof(path))
        return false;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool geo_local_to_utc(const char *zone, const struct tm *local, time_t *utc, int *offset_min)
{
    char *saved = NULL;
    const char *old;
    struct tm tmp;
    time_t t;
    bool ok = true;

    if (!geo_zone_valid(zone))
        return false;
    old = getenv("TZ");
    if (old != NULL && (saved = strdup(old)) == NULL)
        return false;
    if (setenv("TZ", zone, 1) != 0) {
        free(saved);
        return false;
    }
    tzset();
    tmp = *local;
    tmp.tm_isdst = -1; /* let the zone rules decide */
    t = mktime(&tmp);
    if (t == (time_t)-1 && !(tmp.tm_year == 69 && tmp.tm_mon == 11 && tmp.tm_mday == 31))
        ok = false;
    else {
        *utc = t;
        *offset_min = (int)(tmp.tm_gmtoff / 60);
    }
    if (saved != NULL) {
        setenv("TZ", saved, 1);
        free(saved);
    } else
        unsetenv("TZ");
    tzset();
    return ok;
}
