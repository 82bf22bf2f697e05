/*
 * test_geo.c - countries, zones and the honest handling of carrier times:
 * an offset given is kept, a missing one is derived from the country, state
 * or postal code (DST included), and an impossible one is flagged unknown.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "carrier.h"
#include "geo.h"

Test(geo, countries)
{
    cr_expect(geo_country_valid("FR"));
    cr_expect(geo_country_valid("JP"));
    cr_expect(!geo_country_valid("XX"));
    cr_expect(!geo_country_valid("fr"));
    cr_expect(!geo_country_valid("FRA"));
    cr_expect_str_eq(geo_zone("FR", NULL), "Europe/Paris");
    cr_expect_null(geo_zone("US", NULL), "several zones: no guess");
    cr_expect_str_eq(geo_zone("US", "CA"), "America/Los_Angeles");
    cr_expect_str_eq(geo_zone("US", "US-NY"), "America/New_York");
    cr_expect_str_eq(geo_zone("ES", "CN"), "Atlantic/Canary");
}

Test(geo, regions_from_postal_codes)
{
    cr_expect_str_eq(geo_region_from_postal("US", "60601"), "IL");
    cr_expect_str_eq(geo_region_from_postal("US", "94105-1804"), "CA");
    cr_expect_str_eq(geo_zone("US", geo_region_from_postal("US", "79901")), "America/Denver",
                     "El Paso keeps mountain time");
    cr_expect_str_eq(geo_region_from_postal("CA", "M5V 3L9"), "ON");
    cr_expect_str_eq(geo_region_from_postal("CA", "V6B 1A1"), "BC");
    cr_expect_str_eq(geo_region_from_postal("AU", "2000"), "NSW");
    cr_expect_str_eq(geo_region_from_postal("AU", "6000"), "WA");
    cr_expect_str_eq(geo_region_from_postal("BR", "01310-100"), "SP");
    cr_expect_str_eq(geo_zone("BR", geo_region_from_postal("BR", "69005-000")), "America/Manaus");
    cr_expect_null(geo_region_from_postal("US", "ABCDE"));
    cr_expect_null(geo_region_from_postal("RU", "101000"));
    cr_expect_null(geo_region_from_postal("US", ""));
}

Test(geo, zone_names_are_checked)
{
    cr_expect(geo_zone_valid("Europe/Paris"));
    cr_expect(geo_zone_valid("UTC"));
    cr_expect(!geo_zone_valid("Mars/Olympus"));
    cr_expect(!geo_zone_valid("../../etc/passwd"));
    cr_expect(!geo_zone_valid("/etc/localtime"));
    cr_expect(!geo_zone_valid(""));
}

Test(geo, carrier_times_are_never_shifted_silently)
{
    struct track_event ev;

    memset(&ev, 0, sizeof(ev));
    cr_assert(carrier_parse_time("2026-07-01T10:00:00+09:00", "FR", NULL, &ev));
    cr_expect_eq(ev.offset_kind, OFFSET_CARRIER, "a given offset wins over the country");
    cr_expect_eq(ev.utc_offset_min, 540);
    cr_expect_str_eq(ev.occurred_local, "2026-07-01T10:00:00");

    cr_assert(carrier_parse_time("2026-07-01T10:00:00", "FR", NULL, &ev));
    cr_expect_eq(ev.offset_kind, OFFSET_DERIVED);
    cr_expect_eq(ev.utc_offset_min, 120, "summer time in Paris");
    cr_assert(carrier_parse_time("2026-01-15T10:00:00", "FR", NULL, &ev));
    cr_expect_eq(ev.utc_offset_min, 60, "winter time in Paris");

    cr_assert(carrier_parse_time("2026-07-01T10:00:00", "US", NULL, &ev));
    cr_expect_eq(ev.offset_kind, OFFSET_UNKNOWN);
    cr_expect_eq(ev.occurred_at, 1782900000, "local wall time read as UTC, flagged");
    cr_assert(carrier_parse_time("2026-07-01T10:00:00", "US", "AZ", &ev));
    cr_expect_eq(ev.offset_kind, OFFSET_DERIVED);
    cr_expect_eq(ev.utc_offset_min, -420, "Arizona keeps standard time");

    cr_assert(carrier_parse_time("2026-07-01 10:00", "", NULL, &ev), "space and no seconds");
    cr_expect_eq(ev.offset_kind, OFFSET_UNKNOWN);
    cr_expect(!carrier_parse_time("2026-02-30T10:00:00Z", "FR", NULL, &ev));
    cr_expect(!carrier_parse_time("2026-07-01T25:00:00Z", "FR", NULL, &ev));
    cr_expect(!carrier_parse_time("yesterday", "FR", NULL, &ev));
    cr_expect(!carrier_parse_time("2026-07-01T10:00:00+25:00", "FR", NULL, &ev));
}

Test(geo, postal_codes_place_bare_local_times)
{
    struct track_result r;
    struct track_event *ev;

    memset(&r, 0, sizeof(r));
    ev = track_result_add(&r);
    cr_assert_not_null(ev);
    cr_assert(carrier_parse_time("2026-03-30T13:20:00", "US", NULL, ev));
    snprintf(ev->country, sizeof(ev->country), "US");
    snprintf(ev->postal_code, sizeof(ev->postal_code), "60601");
    cr_expect_eq(ev->offset_kind, OFFSET_UNKNOWN);
    track_result_sort_dedupe(&r);
    cr_expect_eq(r.events[0].offset_kind, OFFSET_DERIVED);
    cr_expect_eq(r.events[0].utc_offset_min, -300, "Chicago, daylight time");
    track_result_reset(&r);
}
