/*
 * smtpd.c - start and stop the suites' Python helper servers: the real SMTP
 * server (smtp_server.py) and the TLS relay (tls_proxy.py). Each prints
 * "PORT <n>" when it listens and exits when its stdin closes.
 */
#include "smtpd.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The Python that has aiosmtpd: Debian's, unless SHIPTRACK_PYTHON says otherwise. */
const char *tu_python(void)
{
    const char *p = getenv("SHIPTRACK_PYTHON");

    return p != NULL && p[0] != '\0' ? p : "/usr/bin/python3";
}

void tu_pyserver_start(struct tu_smtpd *s, const char *script, const char *const *args)
{
    char path[512], line[64] = "";
    int in[2], out[2];
    struct pollfd pfd;
    size_t n = 0;

    s->pid = 0;
    snprintf(path, sizeof(path), "%s/tests/support/%s", ST_SOURCE_DIR, script);
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    s->pid = fork();
    cr_assert_geq(s->pid, 0);
    if (s->pid == 0) {
        const char *argv[16] = { tu_python(), path };
        int a = 2;

        for (int i = 0; args != NULL && args[i] != NULL && a < 15; i++)
            argv[a++] = args[i];
        argv[a] = NULL;
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s->in_fd = in[1];
    pfd.fd = out[0];
    pfd.events = POLLIN;
    while (n + 1 < sizeof(line) && strchr(line, '\n') == NULL) {
        ssize_t r;

        cr_assert_gt(poll(&pfd, 1, 15000), 0, "%s did not start", script);
        r = read(out[0], line + n, sizeof(line) - 1 - n);
        cr_assert_gt(r, 0, "%s exited before listening (is python3-aiosmtpd installed?)", script);
        n += (size_t)r;
        line[n] = '\0';
    }
    close(out[0]);
    cr_assert_eq(sscanf(line, "PORT %d", &s->port), 1, "unexpected line: %s", line);
}

void tu_smtpd_start(struct tu_smtpd *s, const char *dir, const char *const *extra)
{
    const char *args[16] = { "--dir", dir };
    int a = 2;

    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    for (int i = 0; extra != NULL && extra[i] != NULL && a < 15; i++)
        args[a++] = extra[i];
    args[a] = NULL;
    tu_pyserver_start(s, "smtp_server.py", args);
}

void tu_smtpd_stop(struct tu_smtpd *s)
{
    int status;

    if (s->pid <= 0)
        return;
    close(s->in_fd);
    for (int i = 0; i < 100; i++) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        usleep(50000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
}

