/*
 * startup: the startup handshake with berthd and detaching from it.
 */
#ifndef BERTH_SHIM_STARTUP_H
#define BERTH_SHIM_STARTUP_H

/* Write end of the readiness pipe in the shim proper; -1 once reported. */
extern int ready_fd;

/* Send one readiness line ("ok PID" / "error MESSAGE") and close ready_fd;
 * does nothing if it was already sent. */
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Remove the socket if it is listening, report "error MESSAGE", exit 1. */
void fail_startup(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* The launcher half: copy the child's readiness line to stdout; returns the
 * launcher's exit status (0 for "ok", 1 otherwise). */
int relay_readiness(int rfd);

/* Close every fd >= 3 except keep (keep >= 3). */
void close_other_fds(int keep);

void redirect_stdio_to_null(void);

#endif
