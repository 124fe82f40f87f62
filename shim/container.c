/*
 * container: the container's processes and the exit file.  The shim runs
 * "RUNTIME create" (or, in exec mode, "RUNTIME exec --detach") with the
 * process's stdio (pipes, or /dev/null plus a console socket with --tty),
 * reads the process's pid from the runtime's pid file, reaps children as a
 * subreaper (SIGCHLD through a signalfd), and finally records the process's
 * exit code (128+signal if it was killed) in the exit file via a temporary
 * file, fsync and rename.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container.h"
#include "options.h"
#include "util.h"

int sig_fd = -1;
pid_t init_pid = -1;
int init_exited;
int exit_code = -1;

/* ---- children --------------------------------------------------------- */

void reap_children(void)
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

/* Fork and exec argv with the given stdio; the runtime's pid or -1. */
static pid_t spawn(char **argv, int in_fd, int out_fd, int err_fd)
{
    pid_t pid = fork();
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

/* "RUNTIME --root R --log BUNDLE/runc.log --log-format json" into argv;
 * returns the number of arguments. */
static int global_args(char **argv, char *logpath, size_t size)
{
    int i = 0;

    if (path_join(logpath, size, opt.bundle, "/runc.log") < 0)
        return -1;
    argv[i++] = opt.runtime;
    argv[i++] = "--root";
    argv[i++] = opt.runtime_root;
    argv[i++] = "--log";
    argv[i++] = logpath;
    argv[i++] = "--log-format";
    argv[i++] = "json";
    return i;
}

pid_t spawn_runtime_create(int in_fd, int out_fd, int err_fd, const char *console)
{
    char logpath[PATH_MAX], pidpath[PATH_MAX];
    char *argv[20];
    int i;

    i = global_args(argv, logpath, sizeof logpath);
    if (i < 0 || path_join(pidpath, sizeof pidpath, opt.bundle, "/init.pid") < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    argv[i++] = "create";
    argv[i++] = "--bundle";
    argv[i++] = opt.bundle;
    argv[i++] = "--pid-file";
    argv[i++] = pidpath;
    if (console) {
        argv[i++] = "--console-socket";
        argv[i++] = (char *)console;
    }
    argv[i++] = opt.id;
    argv[i] = NULL;
    return spawn(argv, in_fd, out_fd, err_fd);
}

pid_t spawn_runtime_exec(int in_fd, int out_fd, int err_fd, const char *console,
                         const char *pidpath)
{
    char logpath[PATH_MAX];
    char *argv[20];
    int i;

    i = global_args(argv, logpath, sizeof logpath);
    if (i < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    argv[i++] = "exec";
    argv[i++] = "--detach";
    argv[i++] = "--process";
    argv[i++] = opt.exec;
    argv[i++] = "--pid-file";
    argv[i++] = (char *)pidpath;
    if (console) {
        argv[i++] = "--console-socket";
        argv[i++] = (char *)console;
    }
    argv[i++] = opt.id;
    argv[i] = NULL;
    return spawn(argv, in_fd, out_fd, err_fd);
}

int read_pid_file(const char *path)
{
    char buf[32];
    ssize_t n;
    long v;
    char *end;
    int fd;

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

int write_exit_file(int code)
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
