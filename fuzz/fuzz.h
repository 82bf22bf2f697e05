/*
 * fuzz.h - shared bits of the libFuzzer harnesses in fuzz/.
 *
 * Each harness is one LLVMFuzzerTestOneInput over one parser that reads
 * untrusted bytes. Inputs that need more than one piece (numbers and a body,
 * a template and its data) are split at the first separator byte given here,
 * so that the committed seeds stay readable files.
 */
#ifndef ST_FUZZ_H
#define ST_FUZZ_H

/* Harness assertions are the point of the harness: never compile them out. */
#undef NDEBUG
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Split data at the first sep: head (head_len bytes) before it, tail (tail_len)
 * after it (empty when there is no sep). */
static inline void fuzz_split(const uint8_t *data, size_t size, uint8_t sep,
                              const uint8_t **head, size_t *head_len, const uint8_t **tail,
                              size_t *tail_len)
{
    const uint8_t *p = size > 0 ? memchr(data, sep, size) : NULL;

    *head = data;
    *head_len = p != NULL ? (size_t)(p - data) : size;
    *tail = p != NULL ? p + 1 : data + size;
    *tail_len = p != NULL ? size - *head_len - 1 : 0;
}

#endif
