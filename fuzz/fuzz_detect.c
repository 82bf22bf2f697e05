/*
 * fuzz_detect.c - tracking-number detection and check digits on untrusted
 * strings (what users type at registration).
 */

#include "fuzz.h" /* first: keeps assert() on in every build type */

#include "detect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct detect_candidate c[8];
    char number[128], why[256];
    size_t n;

    if (size >= sizeof(number))
        return 0;
    memcpy(number, data, size);
    number[size] = '\0';
    n = detect_tracking_number(number, c, 8, why, sizeof(why));
    assert(n <= 8);
    for (size_t i = 0; i < n; i++) {
        assert(c[i].carrier != NULL && c[i].format != NULL);
        assert(memchr(c[i].normalized, '\0', sizeof(c[i].normalized)) != NULL);
        assert(detect_valid_for(c[i].carrier, number, NULL, 0));
    }
    return 0;
}
