/*
 * geo.h - countries, their time zones, and local-time conversion.
 *
 * Used to validate ISO 3166-1 alpha-2 codes at registration and to derive the
 * UTC offset of a carrier timestamp that came without one. A country with one
 * zone maps directly; a country with several needs a region (state/province
 * code) and otherwise yields no zone, so the caller must flag the offset as
 * unknown instead of guessing.
 */
#ifndef ST_GEO_H
#define ST_GEO_H

#include <stdbool.h>
#include <time.h>

/* True when cc is an assigned ISO 3166-1 alpha-2 code (upper case). */
bool geo_country_valid(const char *cc);

/* English name of a country, or NULL. */
const char *geo_country_name(const char *cc);

/* IANA zone for a country, or for (country, region) where the country spans
 * several zones. NULL when it cannot be told. */
const char *geo_zone(const char *cc, const char *region);

/* State/province code that a postal code places itself in, for the
 * countries with several zones (US ZIP, Canadian postal code, Australian
 * postcode, Brazilian CEP); NULL when it cannot tell. */
const char *geo_region_from_postal(const char *cc, const char *postal);

/* Convert a wall-clock time in `zone` to UTC. Returns false when the zone is
 * unknown to the system's tz database. *offset_min gets minutes east of UTC.
 * Not thread-safe (uses TZ); call from one thread or under a lock. */
bool geo_local_to_utc(const char *zone, const struct tm *local, time_t *utc, int *offset_min);

/* True when the system's tz database has `zone` (e.g. "Europe/Paris").
 * Rejects names with "..", leading '/', or characters outside [A-Za-z0-9_+/-]. */
bool geo_zone_valid(const char *zone);

#endif
