/* common/fs.h: small file helpers shared by aigwd and aigwctl. Blocking; any thread. */
#ifndef AIGW_COMMON_FS_H
#define AIGW_COMMON_FS_H
#include <stddef.h>
#include <sys/types.h>

/* mkdir -p. 0, or -1 with errno set. */
int aigw_mkdir_p(const char *path, mode_t mode);
/* Reads a whole file (at most max bytes) into a malloc'd NUL-terminated buffer (caller frees).
 * 0, or -1 with errno set (EFBIG when larger than max). */
int aigw_read_file(const char *path, size_t max, char **out, size_t *len);
/* Writes data to path atomically: temp file in the same directory, fsync, rename.
 * 0, or -1 with errno set. */
int aigw_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode);

#endif
