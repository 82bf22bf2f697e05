/*
 * plan.c - `shiptrack-carrier-sim plan`: shipments the demo can register.
 *
 * Prints one JSON object per line: a valid tracking number whose journey (as
 * journey_build derives it from the number alone) has the printed scenario,
 * origin and destination, plus a fake recipient living at the destination
 * (locale, IANA zone, email under example.com, phone in E.164). Line i asks
 * for scenario i mod 9 and destination i mod 12 (rotated by the seed) and
 * walks serial numbers from a seed-derived start until a journey fits, so
 * 24 lines cover every scenario and every destination. `--carrier all`
 * rotates through every simulated carrier, line by line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define PLAN_MAX_TRIES 5000000UL /* per line, before relaxing the destination */

/* Fake recipients of one destination country. */
struct plan_people {
    const char *cc;
    const char *email_local[3];   /* ASCII local parts, first.last */
    const char *phone_prefix;     /* E.164 prefix; digits are appended */
    int phone_digits;             /* how many */
};

/* Names are invented; phone prefixes use fiction ranges where a country has one. */
static const struct plan_people people[] = {
    { "DE", { "jonas.becker", "lena.hoffmann", "felix.schaefer" }, "+4915730", 6 },
    { "FR", { "amelie.dubois", "julien.moreau", "camille.lefevre" }, "+3363998", 4 },
    { "ES", { "lucia.garcia", "javier.martin", "carmen.ruiz" }, "+346000", 5 },
    { "IT", { "giulia.romano", "marco.colombo", "chiara.ricci" }, "+393000", 6 },
    { "NL", { "sanne.devries", "daan.bakker", "lotte.visser" }, "+31612", 6 },
    { "PL", { "zofia.kowalska", "jakub.nowak", "anna.wisniewska" }, "+48500", 6 },
    { "SE", { "elsa.lindqvist", "oskar.berg", "maja.nilsson" }, "+467017406", 2 },
    { "JP", { "haruto.sato", "yui.tanaka", "ren.suzuki" }, "+8190", 8 },
    { "CN", { "wei.li", "fang.wang", "min.zhang" }, "+86138", 8 },
    { "US", { "emily.carter", "michael.johnson", "sarah.davis" }, "+120255501", 2 },
    { "BR", { "ana.souza", "pedro.oliveira", "beatriz.lima" }, "+55119", 8 },
    { "GB", { "oliver.wright", "amelia.clarke", "harry.evans" }, "+447700900", 3 },
};

/* The people entry of a country, or NULL. */
static const struct plan_people *people_of(const char *cc)
{
    for (size_t i = 0; i < sizeof(people) / sizeof(people[0]); i++)
        if (strcmp(people[i].cc, cc) == 0)
            return &people[i];
    return NULL;
}

/* Print one plan line for journey j; false on output failure. */
static bool print_line(const struct journey *j)
{
    const struct plan_people *p = people_of(j->dest->cc);
    uint64_t h = sim_mix64(j->hash ^ 0x706C616EULL);
    char email[96], phone[32], order[24];
    const char *zone = journey_zone(j->dest, j->to);
    json_t *o;
    char *text;
    int n;

    if (p == NULL || zone == NULL)
        return false;
    snprintf(email, sizeof(email), "%s@%c%c.example.com", p->email_local[h % 3],
             j->dest->cc[0] | 0x20, j->dest->cc[1] | 0x20);
    n = snprintf(phone, sizeof(phone), "%s", p->phone_prefix);
    for (int i = 0; i < p->phone_digits && n > 0 && (size_t)n + 1 < sizeof(phone); i++)
        phone[n++] = (char)('0' + (h >> (8 + 4 * i)) % 10);
    phone[n] = '\0';
    snprintf(order, sizeof(order), "ORD-%06u", (unsigned)((h >> 20) % 1000000));
    o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "carrier", j->carrier,
                  "tracking_number", j->number, "scenario", journey_scenario_name(j->scenario),
                  "origin", j->origin->cc, "destination", j->dest->cc, "locale", j->dest->locale,
                  "time_zone", zone, "email", email, "phone", phone, "order_ref", order);
    if (o == NULL)
        return false;
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        return false;
    n = printf("%s\n", text);
    free(text);
    return n > 0;
}

int sim_plan(const char *carrier, unsigned count, uint64_t seed)
{
    bool all = strcmp(carrier, "all") == 0; /* rotate through every carrier */
    const struct sim_carrier *car = all ? sim_carriers[0] : sim_carrier_find(carrier);
    size_t n_countries;
    const struct sim_country *countries = journey_countries(&n_countries);
    uint64_t serial = sim_mix64(seed) % 900000000ULL + 100000000ULL;
    size_t rot = (size_t)(sim_mix64(seed ^ 0x5EEDULL) % n_countries);

    if (car == NULL || car->number_from_serial == NULL) {
        fprintf(stderr, "shiptrack-carrier-sim plan: unknown carrier \"%s\"\n", carrier);
        return 2;
    }
    for (unsigned i = 0; i < count; i++) {
        enum journey_scenario want = (enum journey_scenario)(i % JS__COUNT);

        if (all)
            car = sim_carriers[i % sim_carriers_count];
        const struct sim_country *dest = &countries[(i + rot) % n_countries];
        bool found = false;

        for (unsigned long tries = 0; !found && tries < 2 * PLAN_MAX_TRIES; tries++) {
            char number[JOURNEY_NUMBER_MAX];
            struct journey j;

            serial++;
            if (!car->number_from_serial(serial, number, sizeof(number)) ||
                !car->number_valid(number) || !journey_build(car->name, number, &j))
                continue;
            if (j.scenario != want || (tries < PLAN_MAX_TRIES && j.dest != dest))
                continue;
            if (!print_line(&j)) {
                fprintf(stderr, "shiptrack-carrier-sim plan: cannot write output\n");
                return 1;
            }
            found = true;
        }
        if (!found) {
            fprintf(stderr, "shiptrack-carrier-sim plan: no number found for scenario %s\n",
                    journey_scenario_name(want));
            return 1;
        }
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
