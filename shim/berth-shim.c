/*
 * berth-shim: per-container monitor process for Berth.
 *
 * One shim runs per container.  It creates the container with the OCI
 * runtime (runc), holds the container's stdio pipes, writes the container's
 * output to a Docker json-file log, fans output out to attached clients over
 * a Unix socket, reaps the container's init and records its exit code in an
 * exit file.  It is independent of berthd: the daemon may die and reconnect.
 *
 * Usage:
 *   berth-shim --id ID --bundle DIR --runtime PATH --runtime-root DIR
 *              --log PATH --log-max-size BYTES --log-max-files N
 *              --socket PATH --exit-file PATH [--stdin]
 *
 * Startup handshake: the process started by berthd forks; the child becomes
 * the shim proper and reports "ok PID\n" or "error MESSAGE\n" over an
 * internal pipe; the original process copies that line to its stdout and
 * exits 0 ("ok") or 1 (anything else).
 *
 * Socket protocol: a client's first byte selects its mode:
 *   'a'  attach: receives output frames; further bytes it sends are ignored
 *   'A'  attach with stdin: receives frames; further bytes go to the
 *        container's stdin; its EOF closes the container's stdin
 *   'w'  watch: receives nothing more; the connection closes after the exit
 *        file has been written
 * The shim answers the mode byte with one byte, '+', once the client is
 * registered: every byte of output after that reaches it.
 * A frame is: 1 byte stream (1 stdout, 2 stderr), 4 byte big-endian payload
 * length, payload.
 *
 * Single-threaded, poll()-based.  Build: gcc -O2 -Wall -Wextra.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK      (32 * 1024)    /* bytes read from a pipe at once */
#define MAX_LINE        (16 * 1024)    /* partial line flush threshold */
#define MAX_CLIENTS     64
#define LISTEN_BACKLOG  64
#define STDIN_BUF       (32 * 1024)
#define DRAIN_TIMEOUT_MS 2000
#define CLIENT_SNDTIMEO_S 2
/* Worst case JSON entry: every byte escaped as \u00XX plus the envelope. */
#define ENTRY_MAX       (MAX_LINE * 6 + 128)

enum { STREAM_STDOUT = 1, STREAM_STDERR = 2 };

/* ---- options ---------------------------------------------------------- */

static struct {
    char *id;
    char *bundle;
    char *runtime;
    char *runtime_root;
    char *log;
    char *socket;
    char *exit_file;
    long long log_max_size;
    long log_max_files;
    int use_stdin;
} opt;

/* ---- state ------------------------------------------------------------ */

struct client {
    int fd;
    int mode;      /* 0 until the mode byte arrived, then 'a', 'A' or 'w' */
    int rd_eof;    /* peer shut down its sending side */
};

struct stream {
    int fd;                 /* read end of the container pipe, -1 at EOF */
    int id;                 /* STREAM_STDOUT / STREAM_STDERR */
    const char *name;       /* "stdout" / "stderr" */
    size_t plen;            /* bytes in partial */
    char partial[MAX_LINE];
};

static struct client clients[MAX_CLIENTS];
static int nclients;

static struct stream s_out = { -1, STREAM_STDOUT, "stdout", 0, {0} };
static struct stream s_err = { -1, STREAM_STDERR, "stderr", 0, {0} };

static int listen_fd = -1;
static int sig_fd = -1;
static int stdin_w = -1;            /* write end of the container's stdin */
static char stdin_buf[STDIN_BUF];   /* bytes not yet accepted by the pipe */
static size_t stdin_len;
static int stdin_close_pending;     /* close stdin_w once stdin_buf drains */

static int log_fd = -1;
static long long log_size;

static pid_t init_pid = -1;
static int init_exited;
static int exit_code = -1;

static char rbuf[READ_CHUNK];
static char entry[ENTRY_MAX];

/* ---- small helpers ---------------------------------------------------- */

static void usage(const char *msg)
{
    if (msg)
        fprintf(stderr, "berth-shim: %s\n", msg);
    fprintf(stderr,
            "usage: berth-shim --id ID --bundle DIR --runtime PATH --runtime-root DIR\n"
            "                  --log PATH --log-max-size BYTES --log-max-files N\n"
            "                  --socket PATH --exit-file PATH [--stdin]\n");
    exit(2);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static ssize_t write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static void xclose(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Make a path absolute against the starting directory (the shim chdirs to /). */
static char *absolutize(const char *path, const char *what)
{
    char cwd[PATH_MAX];
    char *out;
    size_t len;

    if (path[0] == '\0') {
        fprintf(stderr, "berth-shim: empty %s\n", what);
        usage(NULL);
    }
    if (path[0] == '/')
        return strdup(path);
    if (!getcwd(cwd, sizeof cwd)) {
        fprintf(stderr, "berth-shim: getcwd: %s\n", strerror(errno));
        exit(2);
    }
    len = strlen(cwd) + 1 + strlen(path) + 1;
    out = malloc(len);
    if (!out) {
        fprintf(stderr, "berth-shim: out of memory\n");
        exit(2);
    }
    snprintf(out, len, "%s/%s", cwd, path);
    return out;
}

/* Format "<a><b>" into buf, failing on truncation. */
static int path_join(char *buf, size_t size, const char *a, const char *b)
{
    int n = snprintf(buf, size, "%s%s", a, b);
    return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

/* ---- readiness reporting ---------------------------------------------- */

static int ready_fd = -1;

static void report(const char *fmt, ...)
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

static void fail_startup(const char *fmt, ...)
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

/* ---- option parsing --------------------------------------------------- */

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "id", required_argument, NULL, 'i' },
        { "bundle", required_argument, NULL, 'b' },
        { "runtime", required_argument, NULL, 'r' },
        { "runtime-root", required_argument, NULL, 'R' },
        { "log", required_argument, NULL, 'l' },
        { "log-max-size", required_argument, NULL, 's' },
        { "log-max-files", required_argument, NULL, 'f' },
        { "socket", required_argument, NULL, 'S' },
        { "exit-file", required_argument, NULL, 'e' },
        { "stdin", no_argument, NULL, 'I' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int have_size = 0, have_files = 0;
    int c;
    char *end;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': opt.id = optarg; break;
        case 'b': opt.bundle = optarg; break;
        case 'r': opt.runtime = optarg; break;
        case 'R': opt.runtime_root = optarg; break;
        case 'l': opt.log = optarg; break;
        case 'S': opt.socket = optarg; break;
        case 'e': opt.exit_file = optarg; break;
        case 'I': opt.use_stdin = 1; break;
        case 's':
            errno = 0;
            opt.log_max_size = strtoll(optarg, &end, 10);
            if (errno || end == optarg || *end || opt.log_max_size < 0)
                usage("--log-max-size must be an integer >= 0");
            have_size = 1;
            break;
        case 'f':
            errno = 0;
            opt.log_max_files = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || opt.log_max_files < 1 ||
                opt.log_max_files > 1000000)
                usage("--log-max-files must be an integer >= 1");
            have_files = 1;
            break;
        case 'h': usage(NULL); break;
        case ':': usage("option is missing its argument"); break;
        default: usage("unknown option"); break;
        }
    }
    if (optind != argc)
        usage("unexpected positional argument");
    if (!opt.id || !opt.bundle || !opt.runtime || !opt.runtime_root ||
        !opt.log || !opt.socket || !opt.exit_file || !have_size || !have_files)
        usage("missing required option");
    if (opt.id[0] == '\0' || opt.id[0] == '-' || strchr(opt.id, '/'))
        usage("invalid --id");
    if (opt.runtime[0] == '\0')
        usage("empty --runtime");

    opt.bundle = absolutize(opt.bundle, "--bundle");
    opt.runtime_root = absolutize(opt.runtime_root, "--runtime-root");
    opt.log = absolutize(opt.log, "--log");
    opt.socket = absolutize(opt.socket, "--socket");
    opt.exit_file = absolutize(opt.exit_file, "--exit-file");
    if (strchr(opt.runtime, '/'))
        opt.runtime = absolutize(opt.runtime, "--runtime");
    if (!opt.bundle || !opt.runtime_root || !opt.log || !opt.socket ||
        !opt.exit_file || !opt.runtime) {
        fprintf(stderr, "berth-shim: out of memory\n");
        exit(2);
    }
    if (strlen(opt.socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        usage("--socket path is too long for a Unix socket");
}

/* ---- daemonizing ------------------------------------------------------ */

/* Close every fd >= 3 except keep (keep >= 3). */
static void close_other_fds(int keep)
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

static void redirect_stdio_to_null(void)
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

/* The launcher half: relay the child's readiness line. */
static int relay_readiness(int rfd)
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

/* ---- json-file log ---------------------------------------------------- */

static int log_open(int trunc)
{
    struct stat st;
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (trunc ? O_TRUNC : 0);

    log_fd = open(opt.log, flags, 0640);
    if (log_fd < 0)
        return -1;
    log_size = (fstat(log_fd, &st) == 0) ? (long long)st.st_size : 0;
    return 0;
}

static void log_rotate(void)
{
    char from[PATH_MAX + 32], to[PATH_MAX + 32];

    if (log_fd >= 0)
        xclose(&log_fd);
    if (opt.log_max_files > 1) {
        for (long k = opt.log_max_files - 2; k >= 1; k--) {
            snprintf(from, sizeof from, "%s.%ld", opt.log, k);
            snprintf(to, sizeof to, "%s.%ld", opt.log, k + 1);
            if (rename(from, to) != 0 && errno != ENOENT) {
                /* nothing sensible to do; the older file is kept in place */
            }
        }
        snprintf(to, sizeof to, "%s.1", opt.log);
        if (rename(opt.log, to) != 0 && errno != ENOENT) {
            /* could not rotate: fall back to truncating */
            log_open(1);
            return;
        }
        log_open(1);
    } else {
        log_open(1);
    }
}

static size_t json_escape(char *out, const char *in, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        switch (c) {
        case '"':  *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\b': *o++ = '\\'; *o++ = 'b'; break;
        case '\f': *o++ = '\\'; *o++ = 'f'; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                *o++ = '\\'; *o++ = 'u'; *o++ = '0'; *o++ = '0';
                *o++ = hex[c >> 4]; *o++ = hex[c & 0xf];
            } else {
                *o++ = (char)c;
            }
        }
    }
    return (size_t)(o - out);
}

static size_t format_time(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(out + n, size - n, ".%09ldZ", (long)ts.tv_nsec);
    return n;
}

/* Write one log entry (len <= MAX_LINE bytes of text). */
static void log_entry(const struct stream *s, const char *text, size_t len)
{
    static const char head[] = "{\"log\":\"";
    char ts[64];
    size_t n = 0, tl;
    ssize_t w;

    memcpy(entry, head, sizeof head - 1);
    n += sizeof head - 1;
    n += json_escape(entry + n, text, len);
    tl = format_time(ts, sizeof ts);
    n += (size_t)snprintf(entry + n, ENTRY_MAX - n, "\",\"stream\":\"%s\",\"time\":\"%.*s\"}\n",
                          s->name, (int)tl, ts);

    if (log_fd < 0 && log_open(0) < 0)
        return;     /* log unavailable: the entry is lost, output still goes to clients */
    if (opt.log_max_size > 0 && log_size > 0 && log_size + (long long)n > opt.log_max_size) {
        log_rotate();
        if (log_fd < 0)
            return;
    }
    do {
        w = write(log_fd, entry, n);
    } while (w < 0 && errno == EINTR);
    if (w > 0)
        log_size += w;
}

/* Split a chunk of output into lines and log them. */
static void log_output(struct stream *s, const char *buf, size_t len)
{
    while (len > 0) {
        size_t space = MAX_LINE - s->plen;
        size_t take = len < space ? len : space;
        const char *nl = memchr(buf, '\n', take);

        if (nl)
            take = (size_t)(nl - buf) + 1;
        memcpy(s->partial + s->plen, buf, take);
        s->plen += take;
        buf += take;
        len -= take;
        if (nl || s->plen == MAX_LINE) {
            log_entry(s, s->partial, s->plen);
            s->plen = 0;
        }
    }
}

static void log_flush_partial(struct stream *s)
{
    if (s->plen > 0) {
        log_entry(s, s->partial, s->plen);
        s->plen = 0;
    }
}

/* ---- clients ---------------------------------------------------------- */

static void stdin_eof(void);

/* Drop a client.  An 'A' client that goes away can no longer send EOF, so
 * its departure closes the container's stdin just as its EOF would. */
static void client_drop(struct client *c)
{
    if (c->mode == 'A' && !c->rd_eof) {
        c->rd_eof = 1;
        stdin_eof();
    }
    xclose(&c->fd);
}

static void clients_compact(void)
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

static void broadcast(int stream_id, const char *buf, size_t len)
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

static void stdin_close(void)
{
    xclose(&stdin_w);
    stdin_len = 0;
    stdin_close_pending = 0;
}

/* Push buffered stdin bytes into the pipe without blocking. */
static void stdin_flush(void)
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
    if (stdin_w < 0 || stdin_close_pending || len == 0)
        return;
    if (len > sizeof stdin_buf - stdin_len)
        len = sizeof stdin_buf - stdin_len;   /* cannot happen: reads are bounded */
    memcpy(stdin_buf + stdin_len, buf, len);
    stdin_len += len;
    stdin_flush();
}

static void stdin_eof(void)
{
    if (stdin_w < 0)
        return;
    stdin_close_pending = 1;
    stdin_flush();
}

/* Read what a client sent.  Pending clients read only their mode byte. */
static void client_read(struct client *c)
{
    char buf[STDIN_BUF];
    size_t want;
    ssize_t n;

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
        else if (c->mode == 'A')
            stdin_eof();
        return;
    }
    if (c->mode == 0) {
        if (buf[0] != 'a' && buf[0] != 'A' && buf[0] != 'w') {
            client_drop(c);
            return;
        }
        c->mode = buf[0];
        /* Acknowledge: from here on the client receives every byte of output,
         * so berthd may start the container once it has read this. */
        if (send(c->fd, "+", 1, MSG_NOSIGNAL) != 1)
            client_drop(c);
        return;
    }
    if (c->mode == 'A')
        stdin_feed(buf, (size_t)n);
    /* 'a' and 'w': ignored */
}

static void accept_clients(void)
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
        nclients++;
        /* The mode byte is usually already queued: take it now so the client
         * sees every byte of output produced after it connected. */
        client_read(&clients[nclients - 1]);
    }
}

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

/* ---- children --------------------------------------------------------- */

static void reap_children(void)
{
    struct signalfd_siginfo si;
    int status;
    pid_t pid;

    while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si)
        ;
    for (;;) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            break;
        if (pid == init_pid && !init_exited) {
            init_exited = 1;
            if (WIFEXITED(status))
                exit_code = WEXITSTATUS(status);
            else if (WIFSIGNALED(status))
                exit_code = 128 + WTERMSIG(status);
            else
                exit_code = 255;
        }
    }
}

static pid_t spawn_runtime_create(int in_fd, int out_fd, int err_fd)
{
    char logpath[PATH_MAX], pidpath[PATH_MAX];
    char *argv[16];
    int i = 0;
    pid_t pid;

    if (path_join(logpath, sizeof logpath, opt.bundle, "/runc.log") < 0 ||
        path_join(pidpath, sizeof pidpath, opt.bundle, "/init.pid") < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    argv[i++] = opt.runtime;
    argv[i++] = "--root";
    argv[i++] = opt.runtime_root;
    argv[i++] = "--log";
    argv[i++] = logpath;
    argv[i++] = "--log-format";
    argv[i++] = "json";
    argv[i++] = "create";
    argv[i++] = "--bundle";
    argv[i++] = opt.bundle;
    argv[i++] = "--pid-file";
    argv[i++] = pidpath;
    argv[i++] = opt.id;
    argv[i] = NULL;

    pid = fork();
    if (pid != 0)
        return pid;

    /* child: restore default signal handling so the container does not
     * inherit ignored signals or a blocked mask */
    {
        sigset_t all;
        int sigs[] = { SIGPIPE, SIGINT, SIGHUP, SIGTERM, SIGCHLD };
        for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
            signal(sigs[k], SIG_DFL);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
    }
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        _exit(127);
    execvp(argv[0], argv);
    _exit(127);
}

static int read_pid_file(void)
{
    char path[PATH_MAX], buf[32];
    ssize_t n;
    long v;
    char *end;
    int fd;

    if (path_join(path, sizeof path, opt.bundle, "/init.pid") < 0)
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno || end == buf || v <= 0 || v > INT_MAX)
        return -1;
    return (int)v;
}

/* ---- exit file -------------------------------------------------------- */

static int write_exit_file(int code)
{
    char tmp[PATH_MAX + 8], line[16], dir[PATH_MAX];
    char *slash;
    int fd, n, rc = 0;

    if (path_join(tmp, sizeof tmp, opt.exit_file, ".tmp") < 0)
        return -1;
    n = snprintf(line, sizeof line, "%d\n", code);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (write_all(fd, line, (size_t)n) < 0)
        rc = -1;
    if (fsync(fd) != 0)
        rc = -1;
    if (close(fd) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, opt.exit_file) != 0)
        rc = -1;
    if (rc != 0) {
        unlink(tmp);
        return -1;
    }
    /* make the rename durable too */
    snprintf(dir, sizeof dir, "%s", opt.exit_file);
    slash = strrchr(dir, '/');
    if (slash) {
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    return 0;
}

/* ---- main ------------------------------------------------------------- */

static void setup_socket(void)
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

/* After the init exited: read what is left in the pipes, at most 2 s. */
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

int main(int argc, char **argv)
{
    int ready[2], p_out[2], p_err[2], p_in[2] = { -1, -1 };
    int cin, status, pid;
    pid_t child, runc_pid;
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

    /* container stdio pipes: the shim keeps the read ends (and stdin's
     * write end); the runtime gets the others */
    if (pipe2(p_out, O_CLOEXEC) != 0 || pipe2(p_err, O_CLOEXEC) != 0)
        fail_startup("pipe: %s", strerror(errno));
    if (opt.use_stdin) {
        if (pipe2(p_in, O_CLOEXEC) != 0)
            fail_startup("pipe: %s", strerror(errno));
        cin = p_in[0];
    } else {
        cin = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (cin < 0)
            fail_startup("open /dev/null: %s", strerror(errno));
    }

    if (log_open(0) != 0)
        fail_startup("open log %s: %s", opt.log, strerror(errno));

    /* a stale exit file from an earlier run must not be mistaken for ours */
    {
        char tmp[PATH_MAX + 8];
        if (unlink(opt.exit_file) != 0 && errno != ENOENT)
            fail_startup("unlink %s: %s", opt.exit_file, strerror(errno));
        if (path_join(tmp, sizeof tmp, opt.exit_file, ".tmp") == 0)
            unlink(tmp);
    }

    setup_socket();

    runc_pid = spawn_runtime_create(cin, p_out[1], p_err[1]);
    if (runc_pid < 0)
        fail_startup("starting %s: %s", opt.runtime, strerror(errno));
    close(cin);
    close(p_out[1]);
    close(p_err[1]);
    s_out.fd = p_out[0];
    s_err.fd = p_err[0];
    if (opt.use_stdin) {
        stdin_w = p_in[1];
        set_nonblock(stdin_w);
    }

    while (waitpid(runc_pid, &status, 0) < 0) {
        if (errno != EINTR)
            fail_startup("waitpid runtime: %s", strerror(errno));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        int code = WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        xclose(&s_out.fd);
        xclose(&s_err.fd);
        xclose(&stdin_w);
        fail_startup("runc create exited with status %d", code);
    }
    pid = read_pid_file();
    if (pid <= 0)
        fail_startup("cannot read pid file %s/init.pid", opt.bundle);
    init_pid = pid;
    report("ok %d", pid);

    event_loop();

    stdin_close();
    drain_output();
    if (log_fd >= 0) {
        fsync(log_fd);
        xclose(&log_fd);
    }
    status = write_exit_file(exit_code);

    for (int i = 0; i < nclients; i++)
        client_drop(&clients[i]);
    nclients = 0;
    xclose(&listen_fd);
    unlink(opt.socket);
    /* reap whatever is still around (zombies would otherwise go to init) */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    return status == 0 ? 0 : 1;
}
