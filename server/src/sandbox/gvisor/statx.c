/* Flint's statx shim for gVisor sandboxes, preloaded through /etc/ld.so.preload.
 *
 * Debian bookworm's runsc (20221219) answers statx(2) with EINVAL when the flags hold
 * AT_NO_AUTOMOUNT, which coreutils 9 always passes: `ls -l`, `stat`, `cp -a` fail on every
 * path. gVisor has no automounts, so the flag means nothing there: this drops it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
    return (int)syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}
