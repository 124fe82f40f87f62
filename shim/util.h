/*
 * util: small helpers shared by the shim's modules (clock, fds, paths).
 */
#ifndef BERTH_SHIM_UTIL_H
#define BERTH_SHIM_UTIL_H

#include <stddef.h>
#include <sys/types.h>

long long now_ms(void);
int set_nonblock(int fd);
ssize_t write_all(int fd, const void *buf, size_t len);
void xclose(int *fd);
int path_join(char *buf, size_t size, const char *a, const char *b);

#endif
