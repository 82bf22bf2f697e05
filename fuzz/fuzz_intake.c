/*
 * fuzz_intake.c - the Kafka intake message parser (intake_parse) on
 * untrusted bytes: whatever arrives on shiptrack.shipments.v1.
 */

#include "fuzz.h" /* first: keeps assert() on in every build type */

#include "intake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct intake_msg m;
    char err[512];

    if (intake_parse((const char *)data, size, &m, err, sizeof(err)) == ST_OK) {
        /* what passed validation is safe to store */
        assert(m.kind == INTAKE_REGISTER || m.kind == INTAKE_UPDATE || m.kind == INTAKE_CANCEL);
        assert(memchr(m.number, '\0', sizeof(m.number)) != NULL);
        if (m.kind != INTAKE_CANCEL) {
            assert(strlen(m.r.tracking_number) >= 4 && strlen(m.r.tracking_number) <= 40);
            assert(strpbrk(m.r.email, "\r\n") == NULL);
            assert(strpbrk(m.r.order_ref, "\r\n") == NULL);
        }
    } else
        assert(err[0] != '\0'); /* a refusal always says why */
    return 0;
}
