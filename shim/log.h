/*
 * log: the container's Docker json-file log (one JSON object per line of
 * output, partial lines held back, size-based rotation).
 */
#ifndef BERTH_SHIM_LOG_H
#define BERTH_SHIM_LOG_H

#include <stddef.h>

#define MAX_LINE        (16 * 1024)    /* partial line flush threshold */

enum { STREAM_STDOUT = 1, STREAM_STDERR = 2 };

/* One container output stream and the line it has not finished yet. */
struct stream {
    int fd;                 /* read end of the container pipe, -1 at EOF */
    int id;                 /* STREAM_STDOUT / STREAM_STDERR */
    const char *name;       /* "stdout" / "stderr" */
    size_t plen;            /* bytes in partial */
    char partial[MAX_LINE];
};

/* The container's output: with a TTY everything arrives on s_out. */
extern struct stream s_out, s_err;

/* Open opt.log for appending (no-op without --log) (truncate it if trunc); 0 or -1 (errno set). */
int log_open(int trunc);

/* Split a chunk of output into lines and log them. */
void log_output(struct stream *s, const char *buf, size_t len);

/* Log the stream's unfinished line, if any, as an entry of its own. */
void log_flush_partial(struct stream *s);

/* fsync and close the log if it is open. */
void log_close(void);

#endif
