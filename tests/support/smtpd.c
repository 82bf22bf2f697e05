/*
 * smtpd.c - start and stop the suites' real SMTP server (smtp_server.py).
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

/* Start the server with extra arguments; wait for its PORT line. */
void tu_smtpd_start(struct tu_smtpd *s, const char *dir, const char *const *extra)
{
    char script[512], line[64] = "";
    int in[2], out[2];
    struct pollfd pfd;
    size_t n = 0;

    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(script, sizeof(script), "%s/tests/support/smtp_server.py", ST_SOURCE_DIR);
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    s->pid = fork();
    cr_assert_geq(s->pid, 0);
    if (s->pid == 0) {
        const char *argv[16] = { tu_python(), script, "--dir", s->dir };
        int a = 4;

        for (int i = 0; extra != NULL && extra[i] != NULL && a < 15; i++)
            argv[a++] = extra[i];
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

        cr_assert_gt(poll(&pfd, 1, 15000), 0, "SMTP server did not start");
        r = read(out[0], line + n, sizeof(line) - 1 - n);
        cr_assert_gt(r, 0, "SMTP server exited before listening (is python3-aiosmtpd installed?)");
        n += (size_t)r;
        line[n] = '\0';
    }
    close(out[0]);
    cr_assert_eq(sscanf(line, "PORT %d", &s->port), 1, "unexpected line: %s", line);
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

