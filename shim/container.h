/*
 * container: the container's processes (runc create, the init's pid file,
 * reaping) and the exit file.
 */
#ifndef BERTH_SHIM_CONTAINER_H
#define BERTH_SHIM_CONTAINER_H

#include <sys/types.h>

extern int sig_fd;          /* signalfd for SIGCHLD */
extern pid_t init_pid;      /* the container's init, -1 until known */
extern int init_exited;
extern int exit_code;       /* the init's exit code once init_exited */

/* Drain sig_fd and reap every exited child, recording the init's status. */
void reap_children(void);

/* Fork and exec "RUNTIME create" for the bundle with the given stdio;
 * returns the runtime's pid, or -1 (errno set). */
pid_t spawn_runtime_create(int in_fd, int out_fd, int err_fd);

/* The init's pid from BUNDLE/init.pid, or -1. */
int read_pid_file(void);

/* Atomically and durably write "CODE\n" to opt.exit_file; 0 or -1. */
int write_exit_file(int code);

#endif
