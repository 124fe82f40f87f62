/*
 * tty: the process's terminal (--tty).
 *
 * The shim listens on SOCKET.tty (beside its own socket) and passes it to the runtime as
 * --console-socket; the runtime connects and sends the pty master as
 * SCM_RIGHTS (with the pty's name as the payload).  runtime_wait() waits for
 * the runtime to exit while taking that fd, whichever happens first.  The
 * master then stands in for the container's stdio: everything read from it
 * is stdout, and 'A' clients' input is written to it.  Window sizes are set
 * with TIOCSWINSZ on the master.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "clients.h"
#include "container.h"
#include "log.h"
#include "options.h"
#include "tty.h"
#include "util.h"

/* After a successful runtime exit the master is already queued on the
 * socket; this only bounds the wait should a runtime not send it. */
#define CONSOLE_GRACE_MS 1000

int tty_fd = -1;
char console_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static int pending_size;                 /* a size asked for before the master */
static struct winsize pending_ws;

/* Beside the shim's own socket (a short path), not in the bundle: Unix socket
 * paths are limited to 107 bytes and bundle paths can be long. */
int console_path_init(void)
{
    return path_join(console_path, sizeof console_path, opt.socket, ".tty");
}

int console_listen(void)
{
    struct sockaddr_un sa;
    mode_t old;
    int fd, rc;

    if (unlink(console_path) != 0 && errno != ENOENT)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, console_path, strlen(console_path) + 1);
    old = umask(0177);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0 || listen(fd, 4) != 0) {
        int e = errno;
        close(fd);
        if (rc == 0)
            unlink(console_path);
        errno = e;
        return -1;
    }
    return fd;
}

void console_close(int *fd)
{
    if (*fd >= 0) {
        xclose(fd);
        unlink(console_path);
    }
}

/* Take the fd a console connection carries: the fd, -1 when nothing has
 * arrived yet, -2 when this connection is useless (EOF, error). */
static int recv_master(int conn)
{
    char name[256];
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(4 * sizeof(int))];
    } cm;
    struct iovec iov = { name, sizeof name };
    struct msghdr mh;
    struct cmsghdr *c;
    ssize_t n;
    int fd = -1;

    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof cm.buf;
    n = recvmsg(conn, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -1 : -2;
    for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        int fds[4];
        size_t k;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        if (k > 4)
            k = 4;
        memcpy(fds, CMSG_DATA(c), k * sizeof(int));
        for (size_t i = 0; i < k; i++) {
            if (fd < 0 && isatty(fds[i]))
                fd = fds[i];
            else
                close(fds[i]);
        }
    }
    if (fd >= 0)
        return fd;
    return n == 0 ? -2 : -1;
}

int runtime_wait(pid_t pid, int console, int *status, int *master)
{
    struct signalfd_siginfo si;
    long long deadline = 0;
    int conn = -1, exited = 0;

    *master = -1;
    for (;;) {
        struct pollfd pfd[3];
        int timeout = -1;

        if (!exited) {
            pid_t w = waitpid(pid, status, WNOHANG);
            if (w == pid) {
                exited = 1;
                deadline = now_ms() + CONSOLE_GRACE_MS;
            } else if (w < 0 && errno != EINTR) {
                xclose(&conn);
                return -1;
            }
        }
        if (exited) {
            long long left = deadline - now_ms();
            /* done: no console wanted, got it, or the runtime failed */
            if (console < 0 || *master >= 0 || !WIFEXITED(*status) ||
                WEXITSTATUS(*status) != 0 || left <= 0)
                break;
            timeout = (int)left;
        }
        pfd[0].fd = exited ? -1 : sig_fd;
        pfd[1].fd = (console >= 0 && *master < 0 && conn < 0) ? console : -1;
        pfd[2].fd = (*master < 0) ? conn : -1;
        for (int i = 0; i < 3; i++) {
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        if (poll(pfd, 3, timeout) < 0) {
            if (errno == EINTR)
                continue;
            xclose(&conn);
            return -1;
        }
        if (pfd[0].revents)
            while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si)
                ;
        if (pfd[1].revents) {
            conn = accept4(console, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (conn >= 0)
                pfd[2].revents = POLLIN;   /* the fd is usually queued already */
        }
        if (conn >= 0 && pfd[2].revents) {
            int fd = recv_master(conn);
            if (fd >= 0)
                *master = fd;
            if (fd != -1)
                xclose(&conn);
        }
    }
    xclose(&conn);
    return 0;
}

void tty_attach(int master)
{
    tty_fd = master;
    set_nonblock(tty_fd);
    if (pending_size) {
        ioctl(tty_fd, TIOCSWINSZ, &pending_ws);
        pending_size = 0;
    }
    /* separate fds for reading and writing: either may be closed early */
    s_out.fd = fcntl(tty_fd, F_DUPFD_CLOEXEC, 3);
    stdin_connect(fcntl(tty_fd, F_DUPFD_CLOEXEC, 3));
}

int tty_resize(unsigned rows, unsigned cols)
{
    struct winsize ws;

    if (!opt.tty)
        return -1;
    memset(&ws, 0, sizeof ws);
    ws.ws_row = (unsigned short)rows;
    ws.ws_col = (unsigned short)cols;
    if (tty_fd < 0) {
        pending_ws = ws;
        pending_size = 1;
        return 0;
    }
    return ioctl(tty_fd, TIOCSWINSZ, &ws) == 0 ? 0 : -1;
}
