/*
 * container: the container's processes (runc create, the init's pid file,
 * reaping) and the exit file.
 */
#ifndef BERTH_SHIM_CONTAINER_H
#define BERTH_SHIM_CONTAINER_H

#include <sys/types.h>

extern int sig_fd;          /* signalfd for SIGCHLD */
extern pid_t init_pid;      /* the container's init (exec mode: the exec'd
                               process), -1 until known */
extern int init_exited;     /* it exited (or, exec mode, failed to start) */
extern int exit_code;       /* its exit code once init_exited */

/* Drain sig_fd and reap every exited child, recording the init's status. */
void reap_children(void);

/* Fork and exec "RUNTIME create" for the bundle (pid file BUNDLE/init.pid)
 * with the given stdio, and --console-socket CONSOLE unless it is NULL;
 * returns the runtime's pid, or -1 (errno set). */
pid_t spawn_runtime_create(int in_fd, int out_fd, int err_fd, const char *console);

/* The same for "RUNTIME exec --detach --process opt.exec --pid-file PIDPATH". */
pid_t spawn_runtime_exec(int in_fd, int out_fd, int err_fd, const char *console,
                         const char *pidpath);

/* The positive pid in the file PATH, or -1. */
int read_pid_file(const char *path);

/* Atomically and durably write "CODE\n" to opt.exit_file; 0 or -1. */
int write_exit_file(int code);

#endif
