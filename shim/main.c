/*
 * berth-shim: per-container monitor process for Berth.
 *
 * One shim runs per container (and one per exec).  It creates the container
 * with the OCI runtime (runc), holds the container's stdio (pipes, or a pty
 * with --tty), writes the container's output to a Docker json-file log,
 * fans output out to attached clients over a Unix socket, reaps the
 * container's init and records its exit code in an exit file.  It is
 * independent of berthd: the daemon may die and reconnect.
 *
 * Usage:
 *   berth-shim --id ID --bundle DIR --runtime PATH --runtime-root DIR
 *              --socket PATH --exit-file PATH [--stdin] [--tty]
 *              [--log PATH [--log-max-size BYTES] [--log-max-files N]]
 *              [--exec PROCESS_JSON]
 * Without --log nothing is logged; --log-max-size defaults to 0 (never
 * rotate), --log-max-files to 1.  Bad arguments: usage on stderr, exit 2.
 *
 * Startup: the process berthd started prints exactly one line on stdout,
 * "ok PID\n" (exit 0) or "error MESSAGE\n" (exit 1), and exits; the shim
 * proper runs on, detached (own session, stdio on /dev/null, subreaper).
 *
 * Normal mode: the shim runs
 *   RUNTIME --root ROOT --log BUNDLE/runc.log --log-format json create
 *     --bundle BUNDLE --pid-file BUNDLE/init.pid [--console-socket
 *     SOCKET.tty] ID
 * and reports "ok INIT_PID" once it succeeded, or "error runc create exited
 * with status N" (details in BUNDLE/runc.log).  berthd runs "runc start".
 *
 * Exec mode (--exec PROCESS_JSON; --bundle is only a directory for the
 * shim's own files): no create; after binding its socket the shim reports
 * "ok 0" at once.  The first client that sends 'S' makes it run
 *   RUNTIME --root ROOT --log BUNDLE/runc.log --log-format json exec
 *     --detach --process PROCESS_JSON --pid-file EXIT_FILE.pid
 *     [--console-socket SOCKET.tty] ID
 * and answers "ok PID\n" and closes that connection, or answers
 * "error runc exec exited with status N\n" (or another "error MESSAGE\n"),
 * writes 126 to the exit file, closes every client and exits.  Later 'S'
 * clients are closed without an answer; 'S' outside exec mode likewise.
 * The exec'd process is then monitored like a container's init.
 *
 * --tty: the shim listens on SOCKET.tty (unlinked first), passes it
 * as --console-socket and takes the pty master runc sends (SCM_RIGHTS)
 * while waiting for runc; the socket is then closed and removed.  All
 * output read from the master is stream 1 ("stdout" in the log); 'A'
 * input is written to the master; an 'A' client's EOF closes nothing.
 * --stdin makes no difference with --tty.
 *
 * Socket (--socket, mode 0600): a client's first byte selects its mode:
 *   'a'  attach: answered '+', then receives output frames; bytes it sends
 *        are ignored
 *   'A'  attach with stdin: as 'a'; further bytes go to the container's
 *        stdin (32 KiB buffer, flow-controlled); its EOF or departure
 *        closes the container's stdin (without a TTY)
 *   'w'  watch: answered '+'; closed after the exit file was written
 *   'r'  resize: followed by exactly 4 bytes, rows and cols (uint16 BE);
 *        sets the pty's window size (TIOCSWINSZ), answers '+' ('-' without
 *        --tty or if the ioctl failed) and closes the connection.  In exec
 *        mode before 'S' the size is kept and applied to the pty later.
 *   'S'  start the exec (exec mode, above)
 * Anything else: the connection is closed.  A frame is 1 byte stream
 * (1 stdout, 2 stderr), 4 byte big-endian payload length, payload.
 *
 * Exit: once the init (or exec'd process) is reaped, output still in the
 * pipes / pty is read until EOF (EIO for a pty), at most 2 s; then the log
 * is closed, the exit code (128+signal if killed) is written atomically to
 * the exit file, every client is closed, the socket is removed and the shim
 * exits.
 *
 * This file: startup sequence (fork, handshake), the poll() event loop,
 * draining output after the init exited, and shutdown.
 * The other modules:
 *   options.c    command line
 *   startup.c    startup handshake ("ok PID" / "error MESSAGE"), daemonizing
 *   launch.c     the process's stdio, runc create, runc exec on 'S'
 *   tty.c        console socket, pty master, window size
 *   container.c  spawning runc, pid files, reaping, exit file
 *   log.c        json-file log: encoding, partial lines, rotation
 *   clients.c    socket protocol: accept, modes, frames, stdin buffer
 *   util.c       small shared helpers
 *
 * Single-threaded, poll()-based.  Build: scripts/build-shim.sh
 * (gcc -O2 -Wall -Wextra over every .c file in shim/).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clients.h"
#include "container.h"
#include "launch.h"
#include "log.h"
#include "options.h"
#include "startup.h"
#include "tty.h"
#include "util.h"

#define READ_CHUNK      (32 * 1024)    /* bytes read from a pipe at once */
#define DRAIN_TIMEOUT_MS 2000

static char rbuf[READ_CHUNK];

/* ---- container output ------------------------------------------------- */

/* Read one chunk from a stream; returns 0 at EOF (stream closed). */
static int stream_read(struct stream *s)
{
    ssize_t n;

    if (s->fd < 0)
        return 0;
    n = read(s->fd, rbuf, sizeof rbuf);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 1;
        n = 0;   /* treat other errors as EOF */
    }
    if (n == 0) {
        log_flush_partial(s);
        xclose(&s->fd);
        return 0;
    }
    log_output(s, rbuf, (size_t)n);
    broadcast(s->id, rbuf, (size_t)n);
    return 1;
}

/* ---- event loop ------------------------------------------------------- */

static void event_loop(void)
{
    /* slots: 0 signalfd, 1 listen, 2 stdout, 3 stderr, 4 stdin, 5.. clients */
    struct pollfd pfd[5 + MAX_CLIENTS];

    reap_children();
    while (!init_exited) {
        int n, npolled = nclients;

        pfd[0].fd = sig_fd;       pfd[0].events = POLLIN;
        pfd[1].fd = listen_fd;    pfd[1].events = POLLIN;
        pfd[2].fd = s_out.fd;     pfd[2].events = POLLIN;
        pfd[3].fd = s_err.fd;     pfd[3].events = POLLIN;
        pfd[4].fd = (stdin_w >= 0 && stdin_len > 0) ? stdin_w : -1;
        pfd[4].events = POLLOUT;
        for (int i = 0; i < npolled; i++) {
            struct client *c = &clients[i];
            pfd[5 + i].fd = c->fd;
            pfd[5 + i].events = c->rd_eof ? 0 : POLLIN;
            /* stdin back-pressure: leave an 'A' client unpolled (POLLHUP
             * would otherwise be reported over and over) */
            if (c->mode == 'A' && !c->rd_eof && stdin_len > 0)
                pfd[5 + i].fd = -1;
        }
        for (int i = 0; i < 5 + npolled; i++)
            pfd[i].revents = 0;

        n = poll(pfd, (nfds_t)(5 + npolled), -1);
        if (n < 0) {
            struct timespec ts = { 0, 100 * 1000 * 1000 };
            if (errno != EINTR)
                nanosleep(&ts, NULL);   /* should not happen; avoid spinning */
            continue;
        }

        /* 1. new clients first, so that they get the output read below */
        if (pfd[1].revents & POLLIN)
            accept_clients();
        /* 2. clients that were polled (new ones were appended after them) */
        for (int i = 0; i < npolled; i++) {
            struct client *c = &clients[i];
            short re = pfd[5 + i].revents;
            if (c->fd < 0 || pfd[5 + i].fd != c->fd || re == 0)
                continue;
            if (re & (POLLERR | POLLNVAL)) {
                client_drop(c);
                continue;
            }
            if (re & POLLIN)
                client_read(c);
            /* peer gone: drop, except that an 'A' client's pending input is
             * read to its EOF first */
            if (c->fd >= 0 && (re & POLLHUP) && (c->mode != 'A' || c->rd_eof))
                client_drop(c);
        }
        /* 3. container stdin */
        if (pfd[4].fd >= 0 && pfd[4].revents)
            stdin_flush();
        /* 4. container output */
        if (pfd[2].revents)
            stream_read(&s_out);
        if (pfd[3].revents)
            stream_read(&s_err);
        clients_compact();
        /* 5. children */
        if (pfd[0].revents & POLLIN)
            reap_children();
    }
}

/* After the init exited: read what is left in the pipes (or the pty, until
 * EIO), at most 2 s. */
static void drain_output(void)
{
    long long deadline = now_ms() + DRAIN_TIMEOUT_MS;

    if (s_out.fd >= 0)
        set_nonblock(s_out.fd);
    if (s_err.fd >= 0)
        set_nonblock(s_err.fd);
    while (s_out.fd >= 0 || s_err.fd >= 0) {
        struct pollfd pfd[2];
        long long left = deadline - now_ms();
        int n;

        if (left <= 0)
            break;
        pfd[0].fd = s_out.fd; pfd[0].events = POLLIN; pfd[0].revents = 0;
        pfd[1].fd = s_err.fd; pfd[1].events = POLLIN; pfd[1].revents = 0;
        n = poll(pfd, 2, (int)left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (n == 0)
            break;
        if (pfd[0].revents)
            stream_read(&s_out);
        if (pfd[1].revents)
            stream_read(&s_err);
        clients_compact();
    }
    log_flush_partial(&s_out);
    log_flush_partial(&s_err);
    xclose(&s_out.fd);
    xclose(&s_err.fd);
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
    int ready[2], status;
    pid_t child;
    sigset_t mask;

    /* make sure fds 0-2 exist so that no pipe below lands on them */
    for (;;) {
        int fd = open("/dev/null", O_RDWR);
        if (fd < 0)
            break;
        if (fd > 2) {
            close(fd);
            break;
        }
    }

    parse_args(argc, argv);

    if (pipe2(ready, O_CLOEXEC) != 0) {
        fprintf(stderr, "berth-shim: pipe: %s\n", strerror(errno));
        printf("error pipe: %s\n", strerror(errno));
        return 1;
    }
    fflush(stdout);
    child = fork();
    if (child < 0) {
        printf("error fork: %s\n", strerror(errno));
        return 1;
    }
    if (child > 0) {
        close(ready[1]);
        return relay_readiness(ready[0]);
    }

    /* ---- the shim proper ---- */
    close(ready[0]);
    ready_fd = ready[1];
    setsid();
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        fail_startup("prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
    if (chdir("/") != 0)
        fail_startup("chdir /: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    redirect_stdio_to_null();
    close_other_fds(ready_fd);

    /* SIGCHLD via signalfd; blocked before any child exists */
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
        fail_startup("sigprocmask: %s", strerror(errno));
    sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0)
        fail_startup("signalfd: %s", strerror(errno));

    if (log_open(0) != 0)
        fail_startup("open log %s: %s", opt.log, strerror(errno));
    launch_prepare();
    setup_socket();
    if (opt.exec)
        report("ok 0");     /* runc exec waits for an 'S' client */
    else
        launch_create();

    event_loop();

    stdin_close();
    drain_output();
    log_close();
    status = write_exit_file(exit_code);

    for (int i = 0; i < nclients; i++)
        client_drop(&clients[i]);
    nclients = 0;
    xclose(&tty_fd);
    xclose(&listen_fd);
    unlink(opt.socket);
    /* reap whatever is still around (zombies would otherwise go to init) */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    return status == 0 ? 0 : 1;
}
