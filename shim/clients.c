/*
 * clients: the shim's Unix socket and the clients attached to it.
 *
 * A client's first byte selects its mode:
 *   'a'  attach: receives output frames; further bytes it sends are ignored
 *   'A'  attach with stdin: receives frames; further bytes go to the
 *        container's stdin; its EOF closes the container's stdin (not with
 *        a TTY: then it closes nothing)
 *   'I'  as 'A', but its EOF or departure never closes the container's
 *        stdin (Docker's attach without StdinOnce); handled as 'A' after this
 *   'w'  watch: receives nothing more; the connection closes after the exit
 *        file has been written
 *   'r'  resize: 4 more bytes, rows and cols (uint16 BE); answered '+' or
 *        '-' (no TTY, ioctl failed), then closed
 *   'S'  exec mode only, first one only: start the exec; answered
 *        "ok PID\n" or "error MESSAGE\n" (see launch.c)
 * The shim answers 'a', 'A', 'I' and 'w' with one byte, '+', once the client is
 * registered: every byte of output after that reaches it.
 * A frame is: 1 byte stream (1 stdout, 2 stderr), 4 byte big-endian payload
 * length, payload.
 *
 * Bytes from 'A' clients pass through a bounded buffer into the
 * (non-blocking) stdin pipe or pty; while it holds data, 'A' clients are not
 * polled.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "clients.h"
#include "launch.h"
#include "options.h"
#include "startup.h"
#include "tty.h"
#include "util.h"

#define LISTEN_BACKLOG  64
#define STDIN_BUF       (32 * 1024)
#define CLIENT_SNDTIMEO_S 2

struct client clients[MAX_CLIENTS];
int nclients;

int listen_fd = -1;
int stdin_w = -1;                   /* write end of the container's stdin */
static char stdin_buf[STDIN_BUF];   /* bytes not yet accepted by the pipe */
size_t stdin_len;
int stdin_tty;
static int stdin_close_pending;     /* close stdin_w once stdin_buf drains */
static int stdin_closed;            /* closed for good */

/* ---- socket ----------------------------------------------------------- */

void setup_socket(void)
{
    struct sockaddr_un sa;
    mode_t old;

    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listen_fd < 0)
        fail_startup("socket: %s", strerror(errno));
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, opt.socket, strlen(opt.socket) + 1);
    if (unlink(opt.socket) != 0 && errno != ENOENT) {
        int e = errno;
        xclose(&listen_fd);
        fail_startup("unlink %s: %s", opt.socket, strerror(e));
    }
    old = umask(0177);
    if (bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        umask(old);
        xclose(&listen_fd);
        fail_startup("bind %s: %s", opt.socket, strerror(e));
    }
    umask(old);
    if (chmod(opt.socket, 0600) != 0)
        fail_startup("chmod %s: %s", opt.socket, strerror(errno));
    if (listen(listen_fd, LISTEN_BACKLOG) != 0)
        fail_startup("listen %s: %s", opt.socket, strerror(errno));
}

/* ---- clients ---------------------------------------------------------- */

static void stdin_eof(void);

/* Drop a client.  An 'A' client that goes away can no longer send EOF, so
 * its departure closes the container's stdin just as its EOF would. */
void client_drop(struct client *c)
{
    if (c->mode == 'A' && !c->rd_eof) {
        c->rd_eof = 1;
        if (!c->keeps_stdin)
            stdin_eof();
    }
    xclose(&c->fd);
}

void clients_compact(void)
{
    int j = 0;
    for (int i = 0; i < nclients; i++)
        if (clients[i].fd >= 0)
            clients[j++] = clients[i];
    nclients = j;
}

static int send_all(int fd, struct iovec *iov, int iovcnt)
{
    struct msghdr mh;

    while (iovcnt > 0) {
        ssize_t n;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)iovcnt;
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;   /* includes EAGAIN from SO_SNDTIMEO */
        }
        while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

void broadcast(int stream_id, const char *buf, size_t len)
{
    unsigned char hdr[5];

    hdr[0] = (unsigned char)stream_id;
    hdr[1] = (unsigned char)(len >> 24);
    hdr[2] = (unsigned char)(len >> 16);
    hdr[3] = (unsigned char)(len >> 8);
    hdr[4] = (unsigned char)len;
    for (int i = 0; i < nclients; i++) {
        struct client *c = &clients[i];
        struct iovec iov[2];
        if (c->fd < 0 || (c->mode != 'a' && c->mode != 'A'))
            continue;
        iov[0].iov_base = hdr;
        iov[0].iov_len = sizeof hdr;
        iov[1].iov_base = (void *)buf;
        iov[1].iov_len = len;
        if (send_all(c->fd, iov, 2) < 0)
            client_drop(c);
    }
}

/* ---- container stdin -------------------------------------------------- */

void stdin_close(void)
{
    xclose(&stdin_w);
    stdin_len = 0;
    stdin_close_pending = 0;
    stdin_closed = 1;
}

void stdin_connect(int fd)
{
    if (fd < 0)
        return;
    stdin_w = fd;
    set_nonblock(fd);
    stdin_flush();
}

/* Push buffered stdin bytes into the pipe without blocking. */
void stdin_flush(void)
{
    while (stdin_w >= 0 && stdin_len > 0) {
        ssize_t n = write(stdin_w, stdin_buf, stdin_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            stdin_close();   /* EPIPE etc.: nobody reads stdin any more */
            return;
        }
        memmove(stdin_buf, stdin_buf + n, stdin_len - (size_t)n);
        stdin_len -= (size_t)n;
    }
    if (stdin_w >= 0 && stdin_len == 0 && stdin_close_pending)
        stdin_close();
}

static void stdin_feed(const char *buf, size_t len)
{
    if (stdin_closed || stdin_close_pending || len == 0)
        return;
    if (stdin_w < 0 && !stdin_tty)
        return;     /* no stdin (without a pty, stdin_w exists from the start) */
    if (len > sizeof stdin_buf - stdin_len)
        len = sizeof stdin_buf - stdin_len;   /* cannot happen: reads are bounded */
    memcpy(stdin_buf + stdin_len, buf, len);
    stdin_len += len;
    stdin_flush();
}

static void stdin_eof(void)
{
    if (stdin_w < 0 || stdin_tty)
        return;
    stdin_close_pending = 1;
    stdin_flush();
}

/* ---- reading from clients --------------------------------------------- */

/* 'r': collect rows and cols, set the size, answer, close. */
static void resize_read(struct client *c)
{
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - (size_t)c->rlen, MSG_DONTWAIT);
    char answer;

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        client_drop(c);   /* gone before the size was complete */
        return;
    }
    c->rlen += (int)n;
    if (c->rlen < (int)sizeof c->rbuf)
        return;
    answer = tty_resize((unsigned)c->rbuf[0] << 8 | c->rbuf[1],
                        (unsigned)c->rbuf[2] << 8 | c->rbuf[3]) == 0 ? '+' : '-';
    send(c->fd, &answer, 1, MSG_NOSIGNAL);
    client_drop(c);
}

/* The mode byte arrived. */
static void client_mode(struct client *c, int mode)
{
    switch (mode) {
    case 'a': case 'A': case 'I': case 'w':
        c->keeps_stdin = mode == 'I';
        c->mode = mode == 'I' ? 'A' : mode;
        /* Acknowledge: from here on the client receives every byte of output,
         * so berthd may start the container once it has read this. */
        if (send(c->fd, "+", 1, MSG_NOSIGNAL) != 1)
            client_drop(c);
        return;
    case 'r':
        c->mode = mode;
        c->rlen = 0;
        resize_read(c);   /* the size usually came with the mode byte */
        return;
    case 'S':
        if (opt.exec && !exec_started) {
            c->mode = mode;
            launch_exec(c);
            return;
        }
        break;
    }
    client_drop(c);
}

/* Read what a client sent.  Pending clients read only their mode byte. */
void client_read(struct client *c)
{
    char buf[STDIN_BUF];
    size_t want;
    ssize_t n;

    if (c->mode == 'r') {
        resize_read(c);
        return;
    }
    if (c->mode == 0)
        want = 1;
    else if (c->mode == 'A')
        want = sizeof stdin_buf - stdin_len;
    else
        want = sizeof buf;
    if (want == 0)
        return;
    n = recv(c->fd, buf, want, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        client_drop(c);
        return;
    }
    if (n == 0) {
        c->rd_eof = 1;
        if (c->mode == 0)
            client_drop(c);   /* closed without choosing a mode */
        else if (c->mode == 'A' && !c->keeps_stdin)
            stdin_eof();
        return;
    }
    if (c->mode == 0) {
        client_mode(c, buf[0]);
        return;
    }
    if (c->mode == 'A')
        stdin_feed(buf, (size_t)n);
    /* 'a', 'w' and 'S': ignored */
}

void accept_clients(void)
{
    for (;;) {
        struct timeval tv = { CLIENT_SNDTIMEO_S, 0 };
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;   /* EAGAIN, or EMFILE etc.: try again on the next wakeup */
        }
        if (nclients >= MAX_CLIENTS) {
            close(fd);
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        clients[nclients].fd = fd;
        clients[nclients].mode = 0;
        clients[nclients].rd_eof = 0;
        clients[nclients].rlen = 0;
        clients[nclients].keeps_stdin = 0;
        nclients++;
        /* The mode byte is usually already queued: take it now so the client
         * sees every byte of output produced after it connected. */
        client_read(&clients[nclients - 1]);
    }
}
