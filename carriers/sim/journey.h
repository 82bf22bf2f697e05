/*
 * journey.h - the carrier-neutral journey model of shiptrack-carrier-sim.
 *
 * A journey is what "really" happens to a parcel: a scenario, an origin and a
 * destination, and a list of steps, each at an offset (seconds) from the
 * journey's start, at a place, with a kind and English words. It is derived
 * from nothing but the carrier name and the tracking number, so every run of
 * the simulator, and the `plan` subcommand, agree on it. Renderers
 * (sim_<carrier>.c) turn a journey into one carrier's wire format; they never
 * change it.
 *
 * Time: the simulator starts at t0 and runs `speed` times faster than the
 * wall clock. A step at offset o is visible once (now - t0) * speed >= o. Its
 * shown instant is t0 + o at speed 1, and t0 - span + o otherwise, so that
 * compressed journeys never show times in the future.
 */
#ifndef ST_SIM_JOURNEY_H
#define ST_SIM_JOURNEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "status.h"

#define JOURNEY_MAX_STEPS   32
#define JOURNEY_NUMBER_MAX  48
/* No journey lasts longer: 8 days planned, plus one minute per step that
 * rounding may add (see scale() in journey.c). */
#define JOURNEY_SPAN_MAX    (8L * 86400 + JOURNEY_MAX_STEPS * 60)

/* What happens at a step. Names (journey_kind_name) are stable API. */
enum journey_kind {
    JK_LABEL_CREATED = 0,
    JK_PICKED_UP,
    JK_DEPARTED_FACILITY,
    JK_ARRIVED_FACILITY,
    JK_DEPARTED_ORIGIN_COUNTRY,
    JK_ARRIVED_DESTINATION_COUNTRY,
    JK_CUSTOMS_PROCESSING,
    JK_CUSTOMS_DUTIES_DUE,
    JK_CUSTOMS_DOCUMENTS_REQUIRED,
    JK_CUSTOMS_INSPECTION,
    JK_CUSTOMS_RELEASED,
    JK_OUT_FOR_DELIVERY,
    JK_ATTEMPT_FAILED,
    JK_AVAILABLE_FOR_PICKUP,
    JK_DELIVERED,
    JK_RETURN_TO_SENDER,
    JK_RETURNED,
    JK_UNMAPPED_CODE,           /* a code no driver knows: must be stored as unmapped */
    JK__COUNT
};

/* The story a tracking number tells. Names (journey_scenario_name) are stable API. */
enum journey_scenario {
    JS_DOMESTIC_DELIVERED = 0,  /* same country, straight to the door */
    JS_CUSTOMS_DELIVERED,       /* cross-border, customs processing, delivered */
    JS_CUSTOMS_DUTIES_HELD,     /* held for duties, released, delivered */
    JS_CUSTOMS_DOCUMENTS_HELD,  /* held for documents, released, delivered */
    JS_ATTEMPT_THEN_DELIVERED,  /* one failed attempt, delivered next day */
    JS_PICKUP_POINT,            /* left at a pickup point, collected later */
    JS_RETURNED,                /* two failed attempts, back to the sender */
    JS_LOST,                    /* stops moving mid-journey */
    JS_UNMAPPED_CODE,           /* an unmapped carrier code on the way, then delivered */
    JS__COUNT
};

/* A place a parcel passes through. */
struct sim_place {
    const char *city;           /* real city name, UTF-8 */
    const char *postal;         /* its postal code, in the country's format */
    const char *region;         /* state where the country has several zones, else NULL */
};

/* Customs wording in a country's language, used as carrier remarks. */
struct sim_customs_words {
    const char *processing;
    const char *duties;
    const char *documents;
    const char *inspection;
    const char *released;
};

/* A country the simulator ships to and from. */
struct sim_country {
    const char *cc;                      /* ISO 3166-1 alpha-2 */
    const char *locale;                  /* recipients' locale, e.g. "fr", "pt-BR" */
    bool eu;                             /* inside the EU customs union */
    struct sim_place hub;                /* international gateway */
    struct sim_place cities[3];          /* pickup and delivery cities */
    struct sim_customs_words customs;    /* remarks in the local language */
};

/* One step of a journey. Strings point to static data. */
struct journey_step {
    enum journey_kind kind;
    long offset;                         /* seconds from journey start, multiple of 60 */
    const struct sim_country *country;   /* where it happens */
    const struct sim_place *place;
    const char *text;                    /* English description */
    const char *remark;                  /* local-language customs wording, or NULL */
};

/* A whole journey, derived from (carrier, number). */
struct journey {
    char carrier[16];
    char number[JOURNEY_NUMBER_MAX];
    uint64_t hash;                       /* of carrier and number; seeds every choice */
    enum journey_scenario scenario;
    const struct sim_country *origin, *dest;
    const struct sim_place *from, *to;   /* sender's and recipient's cities */
    struct journey_step steps[JOURNEY_MAX_STEPS];
    size_t n_steps;
    long span;                           /* planned end (3-8 days), >= every offset */
    long edd_planned;                    /* offset of the delivery first announced */
    long edd_actual;                     /* offset of the delivery after holds and attempts */
    size_t edd_moves_at;                 /* step index from which edd_actual applies */
};

/* The simulator's clock. */
struct sim_clock {
    time_t t0;                           /* wall-clock start, whole minute */
    struct timespec mono0;               /* CLOCK_MONOTONIC at start */
    double speed;                        /* journey seconds per real second */
};

/* Start the clock now. */
void sim_clock_start(struct sim_clock *clk, double speed);
/* Journey seconds elapsed since the start. */
double sim_clock_elapsed(const struct sim_clock *clk);
/* True once the step is visible. */
bool journey_step_visible(const struct journey *j, size_t i, const struct sim_clock *clk);
/* Number of leading visible steps (offsets grow, so visibility is a prefix). */
size_t journey_visible_count(const struct journey *j, const struct sim_clock *clk);
/* The UTC instant a step shows. */
time_t journey_step_time(const struct journey *j, size_t i, const struct sim_clock *clk);
/* The estimated delivery instant to announce once `visible` steps are shown;
 * false when none applies (delivered, returning, returned). */
bool journey_edd(const struct journey *j, size_t visible, const struct sim_clock *clk,
                 time_t *out);

/* Derive the journey of (carrier, number) into *j. Returns false when the
 * simulator does not know the number (about one in twelve). The number's
 * format is the renderer's business; this accepts any string that fits. */
bool journey_build(const char *carrier, const char *number, struct journey *j);

/* Countries, for plan and tests. */
const struct sim_country *journey_countries(size_t *n);
const struct sim_country *journey_country(const char *cc);

/* IANA zone of a place in a country (the region picks it where needed). */
const char *journey_zone(const struct sim_country *c, const struct sim_place *p);

/* Convert a UTC instant to wall time in zone; *offset_min gets minutes east
 * of UTC. False when the zone is unknown. Serialized internally; it sets TZ
 * and restores it, so with threads running TZ must already be set (the
 * server sets TZ=UTC before it starts any), else environ could move under
 * another thread's getenv. */
bool sim_local_time(const char *zone, time_t utc, struct tm *out, int *offset_min);

/* Stable names. */
const char *journey_kind_name(enum journey_kind k);
const char *journey_scenario_name(enum journey_scenario s);
bool journey_scenario_parse(const char *name, enum journey_scenario *out);

/* The normalized meaning of a kind, which every driver must arrive at. */
struct journey_expect {
    enum st_status status;
    enum st_substatus substatus;
    bool affects_status;                 /* false only for JK_UNMAPPED_CODE */
    bool customs;
};
struct journey_expect journey_kind_expect(enum journey_kind k);

/* 64-bit mix used for every deterministic choice (splitmix64 finalizer). */
uint64_t sim_mix64(uint64_t x);

#endif
