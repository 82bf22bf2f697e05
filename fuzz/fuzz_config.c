/*
 * fuzz_config.c - the configuration parser on untrusted values.
 *
 * Input: records of one byte (which key of config_params[]) followed by the
 * value up to '\n'. Each value is put in the environment, the configuration
 * is loaded (ST_OK, or ST_CONFIG with a message naming a key), then the
 * environment is cleaned for the next input. *_FILE variants are not set:
 * the fuzzer must not read files.
 */
#include "fuzz.h" /* first: keeps assert() on in every build type */

#include <stdlib.h>

#include "config.h"

#define FUZZ_MAX_KEYS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *set[FUZZ_MAX_KEYS];
    size_t nset = 0, i = 0;
    struct st_config cfg;
    char err[512], value[1024];
    enum st_err rc;

    while (i < size && nset < FUZZ_MAX_KEYS) {
        const struct cfg_param *p = &config_params[data[i] % config_params_count];
        const uint8_t *v, *rest;
        size_t vlen, rlen;

        fuzz_split(data + i + 1, size - i - 1, '\n', &v, &vlen, &rest, &rlen);
        i = size - rlen;
        if (vlen >= sizeof(value) || memchr(v, '\0', vlen) != NULL)
            continue;
        memcpy(value, v, vlen);
        value[vlen] = '\0';
        if (setenv(p->key, value, 1) == 0)
            set[nset++] = p->key;
    }
    rc = config_load(&cfg, err, sizeof(err));
    if (rc == ST_OK)
        config_free(&cfg);
    else
        assert(rc == ST_CONFIG && strstr(err, "SHIPTRACK_") != NULL);
    for (size_t k = 0; k < nset; k++)
        unsetenv(set[k]);
    return 0;
}
