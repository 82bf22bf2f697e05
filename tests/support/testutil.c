/*
 * testutil.c - file and path helpers for the test suites.
 */
#include "testutil.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <time.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "short read on %s", path);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

const char *tu_fixture_path(char *buf, size_t cap, const char *rel)
{
    snprintf(buf, cap, "%s/tests/fixtures/%s", ST_SOURCE_DIR, rel);
    return buf;
}

const char *tu_shared_path(char *buf, size_t cap, const char *rel)
{
    const char *dir = getenv("SHIPTRACK_SHARED_DIR");

    if (dir != NULL && dir[0] != '\0')
        snprintf(buf, cap, "%s/%s", dir, rel);
    else
        snprintf(buf, cap, "%s/../shared/%s", ST_SOURCE_DIR, rel);
    return buf;
}

const char *tu_binary_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", ST_BINARY_DIR, name);
    return buf;
}

/* Read a whole temporary file back, then close it. */
static char *slurp_fd(int fd)
{
    off_t n = lseek(fd, 0, SEEK_END);
    char *buf;

    cr_assert_geq(n, 0);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(pread(fd, buf, (size_t)n, 0), n);
    buf[n] = '\0';
    close(fd);
    return buf;
}

int tu_run(char *const argv[], const char *const *env_extra, char **out, char **err)
{
    char o_tmpl[] = "/tmp/st-out-XXXXXX", e_tmpl[] = "/tmp/st-err-XXXXXX";
    int ofd = mkstemp(o_tmpl), efd = mkstemp(e_tmpl), status;
    posix_spawn_file_actions_t fa;
    size_t n_env = 0, n_extra = 0;
    char **envp;
    pid_t pid;

    cr_assert(ofd >= 0 && efd >= 0);
    unlink(o_tmpl);
    unlink(e_tmpl);
    while (environ[n_env] != NULL)
        n_env++;
    while (env_extra != NULL && env_extra[n_extra] != NULL)
        n_extra++;
    envp = calloc(n_env + n_extra + 1, sizeof(*envp));
    cr_assert_not_null(envp);
    /* extras first so they win over inherited values of the same name */
    for (size_t i = 0; i < n_extra; i++)
        envp[i] = (char *)env_extra[i];
    for (size_t i = 0; i < n_env; i++)
        envp[n_extra + i] = environ[i];
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, ofd, 1);
    posix_spawn_file_actions_adddup2(&fa, efd, 2);
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, envp), 0, "spawn %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    if (out != NULL)
        *out = slurp_fd(ofd);
    else
        close(ofd);
    if (err != NULL)
        *err = slurp_fd(efd);
    else
        close(efd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void tu_sim_start(struct tu_sim *sim, const char *const *args)
{
    char bin[512], *argv[32], line[256];
    int fds[2], n = 0;
    posix_spawn_file_actions_t fa;
    FILE *f;

    memset(sim, 0, sizeof(*sim));
    tu_binary_path(bin, sizeof(bin), "shiptrack-carrier-sim");
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = "0";
    for (int i = 0; args != NULL && args[i] != NULL && n < 30; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    cr_assert_eq(pipe(fds), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    cr_assert_eq(posix_spawn(&sim->pid, bin, &fa, NULL, argv, environ), 0, "spawn %s", bin);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    f = fdopen(fds[0], "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof(line), f), "simulator printed nothing");
    fclose(f); /* the simulator writes nothing else to stdout */
    cr_assert(sscanf(line, "shiptrack-carrier-sim listening on %127s", sim->url) == 1,
              "unexpected first line: %s", line);
}

void tu_sim_stop(struct tu_sim *sim)
{
    int status;

    if (sim->pid <= 0)
        return;
    kill(sim->pid, SIGTERM);
    cr_assert_eq(waitpid(sim->pid, &status, 0), sim->pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "simulator exit status %d", status);
    sim->pid = 0;
}

struct tu_buf {
    char *p;
    size_t n;
};

static size_t tu_collect(char *data, size_t size, size_t nmemb, void *ud)
{
    struct tu_buf *b = ud;
    size_t n = size * nmemb;
    char *p = realloc(b->p, b->n + n + 1);

    if (p == NULL)
        return 0;
    memcpy(p + b->n, data, n);
    b->p = p;
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

char *tu_http_get(const char *url, long *status)
{
    struct tu_buf b = { calloc(1, 1), 0 };
    CURL *c = curl_easy_init();
    CURLcode rc;

    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "GET %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    return b.p;
}
