/*
 * clients: the attach socket and its clients, output frames, and the
 * buffer in front of the container's stdin.
 */
#ifndef BERTH_SHIM_CLIENTS_H
#define BERTH_SHIM_CLIENTS_H

#include <stddef.h>

#define MAX_CLIENTS     64

struct client {
    int fd;
    int mode;      /* 0 until the mode byte arrived, then 'a', 'A', 'w',
                      'r' (resize) or 'S' (exec start) */
    int rd_eof;    /* peer shut down its sending side */
    int keeps_stdin; /* 'I' (an 'A' without StdinOnce): leaving does not close stdin */
    int rlen;      /* 'r': bytes of the window size received so far */
    unsigned char rbuf[4];
};

extern struct client clients[MAX_CLIENTS];
extern int nclients;

extern int listen_fd;       /* the listening socket, -1 when closed */
extern int stdin_w;         /* write end of the container's stdin (or pty) */
extern size_t stdin_len;    /* buffered bytes not yet accepted by the pipe */
extern int stdin_tty;       /* stdin is the pty: an 'A' client's EOF closes
                               nothing, input before the pty arrives is kept */

/* Create, bind (mode 0600) and listen on opt.socket; fail_startup on error. */
void setup_socket(void);

/* Take every pending connection and read its mode byte if it is queued. */
void accept_clients(void);

/* Read what a client sent.  Pending clients read only their mode byte. */
void client_read(struct client *c);

/* Close a client (an 'A' client's departure closes the container's stdin,
 * unless it is a pty);
 * its slot stays until clients_compact(). */
void client_drop(struct client *c);

/* Remove dropped clients from clients[]. */
void clients_compact(void);

/* Send one frame of output to every attached ('a'/'A') client. */
void broadcast(int stream_id, const char *buf, size_t len);

/* Push buffered stdin bytes into the pipe without blocking. */
void stdin_flush(void);

/* Make fd (made non-blocking) the container's stdin and flush into it. */
void stdin_connect(int fd);

/* Close the container's stdin now, dropping buffered bytes. */
void stdin_close(void);

#endif
