/*
 * tty: the process's terminal with --tty: the console socket the runtime
 * sends the pty master over, waiting for the runtime, and window sizes.
 */
#ifndef BERTH_SHIM_TTY_H
#define BERTH_SHIM_TTY_H

#include <sys/types.h>

extern int tty_fd;                  /* the pty master, -1 until received */
extern char console_path[];         /* SOCKET.tty (beside the shim socket) */

/* Compute console_path; -1 if it does not fit a Unix socket address. */
int console_path_init(void);

/* Listen on console_path (unlinked first); the fd, or -1 (errno set). */
int console_listen(void);

/* Close the console socket and remove its path. */
void console_close(int *fd);

/* Wait for the runtime process pid to exit (its wait status in *status);
 * meanwhile, when console >= 0, receive the pty master over it into
 * *master (-1 if none arrived).  0, or -1 if waitpid failed (errno set). */
int runtime_wait(pid_t pid, int console, int *status, int *master);

/* Adopt the pty master: its output is read as s_out, 'A' input is written
 * to it, and a size asked for before it arrived is applied. */
void tty_attach(int master);

/* Set the terminal's window size: 0, or -1 without --tty or if the ioctl
 * failed.  Before the master arrived (exec mode, before 'S') the size is
 * kept and applied when it arrives. */
int tty_resize(unsigned rows, unsigned cols);

#endif
