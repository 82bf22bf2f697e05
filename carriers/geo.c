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
