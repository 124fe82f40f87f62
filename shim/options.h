/*
 * options: the shim's command line, parsed once at startup into `opt`.
 */
#ifndef BERTH_SHIM_OPTIONS_H
#define BERTH_SHIM_OPTIONS_H

struct shim_options {
    char *id;
    char *bundle;
    char *runtime;
    char *runtime_root;
    char *log;
    char *socket;
    char *exit_file;
    long long log_max_size;
    long log_max_files;
    int use_stdin;
    int tty;            /* --tty: the process gets a pty (console socket) */
    char *exec;         /* --exec PROCESS_JSON: exec mode, NULL otherwise */
};

extern struct shim_options opt;

/* Parse and validate argv into opt; paths are made absolute (the shim later
 * chdirs to /).  opt.log is NULL without --log (nothing is logged);
 * --log-max-size defaults to 0 (no rotation), --log-max-files to 1.
 * Prints usage and exits 2 on any error. */
void parse_args(int argc, char **argv);

#endif
