/*
 * launch: starting the process the shim monitors.
 *
 * Without --tty the shim makes the process's stdio pipes up front and keeps
 * the read ends of stdout/stderr (and the write end of stdin with --stdin;
 * otherwise stdin is /dev/null); the runtime gets the other ends.  With
 * --tty the runtime gets /dev/null and --console-socket, and sends back the
 * pty master (tty.c), which then carries all input and output.
 *
 * Normal mode runs "runc create" before the readiness line.  Exec mode
 * reports "ok 0" at once and runs "runc exec --detach" when the first 'S'
 * client arrives, answering it "ok PID\n" (then closing it) or
 * "error MESSAGE\n" (then exiting with exit code 126).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients.h"
#include "container.h"
#include "launch.h"
#include "log.h"
#include "options.h"
#include "startup.h"
#include "tty.h"
#include "util.h"

#define EXEC_FAILED_CODE 126

int exec_started;

/* the process's ends of the stdio pipes, until the runtime has them */
static int child_in = -1, child_out = -1, child_err = -1;

static char pid_path[PATH_MAX + 8];   /* the runtime's --pid-file */

static void close_child_ends(void)
{
    xclose(&child_in);
    xclose(&child_out);
    xclose(&child_err);
}

void launch_prepare(void)
{
    char tmp[PATH_MAX + 8];
    int p_out[2], p_err[2], p_in[2];

    if (opt.exec ? path_join(pid_path, sizeof pid_path, opt.exit_file, ".pid")
                 : path_join(pid_path, sizeof pid_path, opt.bundle, "/init.pid"))
        fail_startup("pid file path too long");
    /* a stale exit file from an earlier run must not be mistaken for ours */
    if (unlink(opt.exit_file) != 0 && errno != ENOENT)
        fail_startup("unlink %s: %s", opt.exit_file, strerror(errno));
    if (path_join(tmp, sizeof tmp, opt.exit_file, ".tmp") == 0)
        unlink(tmp);
    if (opt.exec && unlink(pid_path) != 0 && errno != ENOENT)
        fail_startup("unlink %s: %s", pid_path, strerror(errno));

    if (opt.tty) {
        stdin_tty = 1;
        if (console_path_init() < 0)
            fail_startup("console socket path %s.tty is too long", opt.socket);
        return;
    }
    if (pipe2(p_out, O_CLOEXEC) != 0 || pipe2(p_err, O_CLOEXEC) != 0)
        fail_startup("pipe: %s", strerror(errno));
    s_out.fd = p_out[0];
    child_out = p_out[1];
    s_err.fd = p_err[0];
    child_err = p_err[1];
    if (opt.use_stdin) {
        if (pipe2(p_in, O_CLOEXEC) != 0)
            fail_startup("pipe: %s", strerror(errno));
        child_in = p_in[0];
        stdin_connect(p_in[1]);
    } else {
        child_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (child_in < 0)
            fail_startup("open /dev/null: %s", strerror(errno));
    }
}

/* Run "runc create" or "runc exec" to its end, taking the pty master with
 * --tty.  0 when it succeeded, else -1 with a message in msg. */
static int run_runtime(const char *what, char *msg, size_t size)
{
    int console = -1, master = -1, devnull = -1, status = 0;
    int in = child_in, out = child_out, err = child_err;
    const char *csock = NULL;
    pid_t pid;

    if (opt.tty) {
        console = console_listen();
        if (console < 0) {
            snprintf(msg, size, "console socket %s: %s", console_path, strerror(errno));
            return -1;
        }
        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0) {
            snprintf(msg, size, "open /dev/null: %s", strerror(errno));
            console_close(&console);
            return -1;
        }
        in = out = err = devnull;
        csock = console_path;
    }
    if (opt.exec)
        pid = spawn_runtime_exec(in, out, err, csock, pid_path);
    else
        pid = spawn_runtime_create(in, out, err, csock);
    if (pid < 0)
        snprintf(msg, size, "starting %s: %s", opt.runtime, strerror(errno));
    xclose(&devnull);
    close_child_ends();
    if (pid < 0) {
        console_close(&console);
        return -1;
    }
    if (runtime_wait(pid, console, &status, &master) < 0) {
        snprintf(msg, size, "waitpid runtime: %s", strerror(errno));
        console_close(&console);
        xclose(&master);
        return -1;
    }
    console_close(&console);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        int code = WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        snprintf(msg, size, "runc %s exited with status %d", what, code);
        xclose(&master);
        return -1;
    }
    if (opt.tty) {
        if (master < 0) {
            snprintf(msg, size, "runc %s sent no terminal over %s", what, console_path);
            return -1;
        }
        tty_attach(master);
    }
    return 0;
}

void launch_create(void)
{
    char msg[900];
    int pid;

    if (run_runtime("create", msg, sizeof msg) < 0) {
        xclose(&s_out.fd);
        xclose(&s_err.fd);
        xclose(&stdin_w);
        fail_startup("%s", msg);
    }
    pid = read_pid_file(pid_path);
    if (pid <= 0)
        fail_startup("cannot read pid file %.800s", pid_path);
    init_pid = pid;
    report("ok %d", pid);
}

void launch_exec(struct client *c)
{
    char msg[900], line[1000];
    int pid = -1, n;

    exec_started = 1;
    if (run_runtime("exec", msg, sizeof msg) == 0) {
        pid = read_pid_file(pid_path);
        if (pid <= 0)
            snprintf(msg, sizeof msg, "cannot read pid file %.800s", pid_path);
    }
    if (pid > 0) {
        init_pid = pid;
        n = snprintf(line, sizeof line, "ok %d\n", pid);
        send(c->fd, line, (size_t)n, MSG_NOSIGNAL);
        client_drop(c);
        /* SIGCHLDs were consumed while waiting for the runtime, and the
         * process may be gone already */
        reap_children();
        return;
    }
    n = snprintf(line, sizeof line, "error %s\n", msg);   /* fits: msg is smaller */
    send(c->fd, line, (size_t)n, MSG_NOSIGNAL);
    exit_code = EXEC_FAILED_CODE;
    init_exited = 1;
}
