/*
 * fuzz_http.c - the api role's HTTP request handling on untrusted bytes.
 *
 * The real server (api_start: libmicrohttpd, routing, token and cookie
 * checks, query and form parsing, body caps, JSON bodies) listens on a
 * loopback port for the whole run; each input is written raw to a fresh TCP
 * connection, the write side is closed, and the answer is read. The database
 * URL points at a closed port, so handlers that get that far answer 503: what
 * is fuzzed is everything before the first query. A crash or sanitizer
 * report in any server thread ends the run. Answers must be HTTP.
 *
 * Seeds (fuzz/corpus/fuzz_http) hold real requests with the tokens below;
 * fuzz/fuzz_http.dict gives the fuzzer the paths, headers and tokens.
 */
#include "fuzz.h" /* first: keeps assert() on in every build type */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "log.h"

static struct st_config cfg;
static struct api *server;
static unsigned port;

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];

    (void)argc;
    (void)argv;
    setenv("SHIPTRACK_DATABASE_URL", "postgresql://fuzz@127.0.0.1:1/none?connect_timeout=1", 1);
    setenv("SHIPTRACK_API_LISTEN", "127.0.0.1:0", 1);
    setenv("SHIPTRACK_API_TOKENS",
           "agent:fuzz-agent-token-0001,ops:fuzz-ops-token-00001,admin:fuzz-admin-token-001", 1);
    setenv("SHIPTRACK_UNSUBSCRIBE_SECRET", "fuzz-unsubscribe-secret", 1);
    setenv("SHIPTRACK_API_MAX_BODY", "4KiB", 1);
    setenv("SHIPTRACK_API_TIMEOUT", "1s", 1); /* the shortest: incomplete requests wait for it */
    setenv("SHIPTRACK_API_THREADS", "2", 1);
    if (config_load(&cfg, err, sizeof(err)) != ST_OK) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    log_setup("error", "text", stderr);
    if (api_start(&cfg, NULL, &server, err, sizeof(err)) != ST_OK) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    port = api_port(server);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in sa;
    struct timeval tv = { 3, 0 };
    char answer[16384];
    size_t got = 0, off = 0;
    int fd;

    if (size > 16384)
        return 0;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    assert(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0); /* the server is up */
    while (off < size) {
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);

        if (w <= 0)
            break; /* the server may close early on a bad request: fine */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t r = recv(fd, answer + got, sizeof(answer) - 1 - got, 0);

        if (r <= 0)
            break;
        if (got == 0) { /* answered: a kept-alive connection will not close, so wait briefly */
            struct timeval brief = { 0, 30000 };

            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &brief, sizeof(brief));
        }
        got += (size_t)r;
        if (got == sizeof(answer) - 1)
            got = 0; /* keep reading to the end; only the start is checked */
    }
    close(fd);
    answer[got] = '\0';
    /* whatever came back is HTTP (the server may also close without a word) */
    assert(got == 0 || strncmp(answer, "HTTP/1.", 7) == 0 || got < 7);
    return 0;
}
