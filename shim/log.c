/*
 * log: Docker json-file logging.  Output is cut into lines (a line longer
 * than MAX_LINE is split), each written as
 *   {"log":"...","stream":"stdout","time":"...Z"}
 * with JSON escaping.  When opt.log_max_size > 0 and the next entry would
 * exceed it, the log rotates: LOG.1 .. LOG.(max_files-2) each move up by one
 * (the oldest is overwritten), LOG becomes LOG.1 and a new LOG is started;
 * with max_files 1, LOG is just truncated.  Without --log nothing is logged.
 * The two output streams themselves (s_out, s_err) live here too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "options.h"
#include "util.h"

/* Worst case JSON entry: every byte escaped as \u00XX plus the envelope. */
#define ENTRY_MAX       (MAX_LINE * 6 + 128)

struct stream s_out = { -1, STREAM_STDOUT, "stdout", 0, {0} };
struct stream s_err = { -1, STREAM_STDERR, "stderr", 0, {0} };

static int log_fd = -1;
static long long log_size;

static char entry[ENTRY_MAX];

int log_open(int trunc)
{
    struct stat st;
    int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (trunc ? O_TRUNC : 0);

    if (!opt.log)
        return 0;
    log_fd = open(opt.log, flags, 0640);
    if (log_fd < 0)
        return -1;
    log_size = (fstat(log_fd, &st) == 0) ? (long long)st.st_size : 0;
    return 0;
}

void log_close(void)
{
    if (log_fd >= 0) {
        fsync(log_fd);
        xclose(&log_fd);
    }
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
void log_output(struct stream *s, const char *buf, size_t len)
{
    if (!opt.log)
        return;
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

void log_flush_partial(struct stream *s)
{
    if (s->plen > 0) {
        log_entry(s, s->partial, s->plen);
        s->plen = 0;
    }
}
