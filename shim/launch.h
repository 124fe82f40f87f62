/*
 * launch: starting the container's process: its stdio, "runc create" in
 * normal mode, "runc exec" on an 'S' client in exec mode.
 */
#ifndef BERTH_SHIM_LAUNCH_H
#define BERTH_SHIM_LAUNCH_H

struct client;

extern int exec_started;    /* exec mode: an 'S' client came */

/* Set up the process's stdio: pipes (the shim's ends become s_out, s_err and
 * stdin_w), or with --tty nothing yet (the pty comes from the runtime).
 * Also removes stale exit and pid files.  fail_startup on error. */
void launch_prepare(void);

/* Normal mode: run "runc create", report "ok PID" (fail_startup on error). */
void launch_create(void);

/* Exec mode: run "runc exec" for client c ('S') and answer it.  On failure
 * the exit code is 126 and init_exited is set; c stays open until the
 * shim shuts down. */
void launch_exec(struct client *c);

#endif
