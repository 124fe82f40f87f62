/*
 * startup: the startup handshake and daemonizing.
 *
 * The process started by berthd forks; the child becomes the shim proper and
 * reports "ok PID\n" or "error MESSAGE\n" over an internal pipe (report,
 * fail_startup); the original process copies that line to its stdout and
 * exits 0 ("ok") or 1 (anything else) (relay_readiness).  The shim proper
 * drops the fds and stdio it inherited (close_other_fds,
 * redirect_stdio_to_null).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clients.h"
#include "options.h"
#include "startup.h"
#include "util.h"

/* ---- readiness reporting ---------------------------------------------- */

int ready_fd = -1;

void report(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    if (ready_fd < 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    /* keep it a single line */
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    write_all(ready_fd, line, (size_t)n);
    xclose(&ready_fd);
}

void fail_startup(const char *fmt, ...)
{
    char msg[900];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (listen_fd >= 0) {
        xclose(&listen_fd);
        unlink(opt.socket);
    }
    report("error %s", msg);
    exit(1);
}

/* The launcher half: relay the child's readiness line. */
int relay_readiness(int rfd)
{
    char line[1100];
    size_t len = 0;
    int status;

    while (len < sizeof line - 1) {
        ssize_t n = read(rfd, line + len, sizeof line - 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (memchr(line, '\n', len))
            break;
    }
    if (len == 0 || !memchr(line, '\n', len)) {
        static const char msg[] = "error shim exited before it was ready\n";
        write_all(STDOUT_FILENO, msg, sizeof msg - 1);
        return 1;
    }
    len = (size_t)((char *)memchr(line, '\n', len) - line) + 1;
    status = (len >= 3 && memcmp(line, "ok ", 3) == 0) ? 0 : 1;
    if (write_all(STDOUT_FILENO, line, len) < 0)
        return 1;
    return status;
}

/* ---- daemonizing ------------------------------------------------------ */

/* Close every fd >= 3 except keep (keep >= 3). */
void close_other_fds(int keep)
{
    DIR *d;
    struct dirent *de;
    int fds[256];
    int n, more = 1;

#ifdef SYS_close_range
    {
        int ok = 1;
        if (keep > 3)
            ok = syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U) == 0;
        if (ok)
            ok = syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0;
        if (ok)
            return;
    }
#endif
    /* Fallback: list /proc/self/fd in batches (closing while reading the
     * directory would disturb the iteration). */
    while (more) {
        more = 0;
        n = 0;
        d = opendir("/proc/self/fd");
        if (!d)
            return;
        while ((de = readdir(d)) != NULL) {
            int fd;
            if (de->d_name[0] < '0' || de->d_name[0] > '9')
                continue;
            fd = atoi(de->d_name);
            if (fd < 3 || fd == keep || fd == dirfd(d))
                continue;
            if (n == (int)(sizeof fds / sizeof fds[0])) {
                more = 1;
                break;
            }
            fds[n++] = fd;
        }
        closedir(d);
        for (int i = 0; i < n; i++)
            close(fds[i]);
    }
}

void redirect_stdio_to_null(void)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0)
        return;
    for (int i = 0; i < 3; i++)
        if (fd != i)
            dup2(fd, i);
    if (fd > 2)
        close(fd);
}
