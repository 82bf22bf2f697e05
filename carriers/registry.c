/*
 * registry.c - the one list of carrier drivers.
 *
 * Adding a carrier: write carriers/<name>.c exporting `const struct carrier_def
 * carrier_<name>`, declare it here and add it to carrier_defs[]. Names must be
 * unique; tests/test_drivers.c checks that.
 */
#include <string.h>

#include "carrier.h"

extern const struct carrier_def carrier_dhl;
extern const struct carrier_def carrier_ups;
extern const struct carrier_def carrier_fedex;
extern const struct carrier_def carrier_usps;
extern const struct carrier_def carrier_laposte;
extern const struct carrier_def carrier_track17;

/* Same order as config_carrier_names[] (worker/config.c). */
const struct carrier_def *const carrier_defs[] = {
    &carrier_dhl, &carrier_ups, &carrier_fedex, &carrier_usps, &carrier_laposte, &carrier_track17,
};

const size_t carrier_defs_count = sizeof(carrier_defs) / sizeof(carrier_defs[0]);

const struct carrier_def *carrier_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < carrier_defs_count; i++)
        if (strcmp(carrier_defs[i]->name, name) == 0)
            return carrier_defs[i];
    return NULL;
}
