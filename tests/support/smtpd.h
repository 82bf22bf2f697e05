/*
 * smtpd.h - a real SMTP server for the suites: tests/support/smtp_server.py
 * (Debian's python3-aiosmtpd) on a free loopback port, saving every message
 * it accepts as a file in a directory, with fault modes chosen by arguments.
 */
#ifndef ST_SMTPD_H
#define ST_SMTPD_H

#include <sys/types.h>

struct tu_smtpd {
    pid_t pid;
    int in_fd;          /* its stdin: closing it stops the server */
    int port;
    char dir[128];      /* where it saves messages */
};

/* Start the server saving into dir (which must exist), with extra arguments
 * (NULL-terminated list or NULL); waits for its PORT line. Asserts on failure.
 * The interpreter is $SHIPTRACK_PYTHON or /usr/bin/python3. */
void tu_smtpd_start(struct tu_smtpd *s, const char *dir, const char *const *extra);

/* The Python interpreter that has aiosmtpd: $SHIPTRACK_PYTHON or /usr/bin/python3. */
const char *tu_python(void);

/* Start tests/support/SCRIPT with args (NULL-terminated, or NULL) and wait for
 * its "PORT <n>" line (s->port); s->dir is left alone. Asserts on failure.
 * Stop it with tu_smtpd_stop. */
void tu_pyserver_start(struct tu_smtpd *s, const char *script, const char *const *args);

/* Stop it (close its stdin) and wait; SIGKILL after 5 s. */
void tu_smtpd_stop(struct tu_smtpd *s);

#endif
