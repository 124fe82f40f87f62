/*
 * options: command-line parsing and validation.  Every path option is made
 * absolute against the starting directory, because the shim chdirs to /.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "options.h"

struct shim_options opt;

static void usage(const char *msg) __attribute__((noreturn));

static void usage(const char *msg)
{
    if (msg)
        fprintf(stderr, "berth-shim: %s\n", msg);
    fprintf(stderr,
            "usage: berth-shim --id ID --bundle DIR --runtime PATH --runtime-root DIR\n"
            "                  --socket PATH --exit-file PATH [--stdin] [--tty]\n"
            "                  [--log PATH [--log-max-size BYTES] [--log-max-files N]]\n"
            "                  [--exec PROCESS_JSON]\n");
    exit(2);
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

void parse_args(int argc, char **argv)
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
        { "tty", no_argument, NULL, 't' },
        { "exec", required_argument, NULL, 'x' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, oom = 0;
    char *end;

    opt.log_max_files = 1;
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
        case 't': opt.tty = 1; break;
        case 'x': opt.exec = optarg; break;
        case 's':
            errno = 0;
            opt.log_max_size = strtoll(optarg, &end, 10);
            if (errno || end == optarg || *end || opt.log_max_size < 0)
                usage("--log-max-size must be an integer >= 0");
            break;
        case 'f':
            errno = 0;
            opt.log_max_files = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || opt.log_max_files < 1 ||
                opt.log_max_files > 1000000)
                usage("--log-max-files must be an integer >= 1");
            break;
        case 'h': usage(NULL); break;
        case ':': usage("option is missing its argument"); break;
        default: usage("unknown option"); break;
        }
    }
    if (optind != argc)
        usage("unexpected positional argument");
    if (!opt.id || !opt.bundle || !opt.runtime || !opt.runtime_root ||
        !opt.socket || !opt.exit_file)
        usage("missing required option");
    if (opt.id[0] == '\0' || opt.id[0] == '-' || strchr(opt.id, '/'))
        usage("invalid --id");
    if (opt.runtime[0] == '\0')
        usage("empty --runtime");

    opt.bundle = absolutize(opt.bundle, "--bundle");
    opt.runtime_root = absolutize(opt.runtime_root, "--runtime-root");
    if (opt.log && !(opt.log = absolutize(opt.log, "--log")))
        oom = 1;
    if (opt.exec && !(opt.exec = absolutize(opt.exec, "--exec")))
        oom = 1;
    opt.socket = absolutize(opt.socket, "--socket");
    opt.exit_file = absolutize(opt.exit_file, "--exit-file");
    if (strchr(opt.runtime, '/'))
        opt.runtime = absolutize(opt.runtime, "--runtime");
    if (!opt.bundle || !opt.runtime_root || !opt.socket || !opt.exit_file ||
        !opt.runtime || oom) {
        fprintf(stderr, "berth-shim: out of memory\n");
        exit(2);
    }
    if (strlen(opt.socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        usage("--socket path is too long for a Unix socket");
}
