/* Flint's preload shim for gVisor sandboxes, loaded into every process through a read-only
 * /etc/ld.so.preload. It mends two gaps of gVisor's kernel that every terminal user meets;
 * both keep Linux's own behaviour wherever the kernel already has it.
 *
 * statx: bookworm's runsc (20221219) answers statx(2) with EINVAL when the flags hold
 * AT_NO_AUTOMOUNT, which coreutils 9 always passes (`ls -l`, `stat`, `cp -a`). gVisor has no
 * automounts, so the flag means nothing there: it is dropped.
 *
 * /dev/tty: runsc up to at least 20240729 registers /dev/tty but every open of it fails with
 * EIO, so what talks to "the terminal" rather than to its standard streams breaks: Python's
 * getpass, ssh and git's password prompts, less reading keys under a pager. When opening
 * /dev/tty fails with EIO, the shim opens the calling process's controlling terminal
 * instead: the first of its standard descriptors that is that terminal (TIOCGPGRP succeeds
 * only on the caller's controlling terminal), opened anew through /proc/self/fd. A process
 * without a controlling terminal gets ENXIO, as on Linux. Only the exact path "/dev/tty" is
 * looked at; statically linked programs do not load the shim. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
    return (int)syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}

static int is_dev_tty(const char *path) {
    return path != NULL && strcmp(path, "/dev/tty") == 0;
}

/* The caller's controlling terminal opened anew with `flags`, or -1 with errno ENXIO. */
static int open_controlling_tty(int flags) {
    for (int fd = 0; fd <= 2; fd++) {
        pid_t foreground;
        if (ioctl(fd, TIOCGPGRP, &foreground) != 0) {
            continue;
        }
        char link[32];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        return (int)syscall(SYS_openat, AT_FDCWD, link, flags & ~(O_CREAT | O_EXCL), 0);
    }
    errno = ENXIO;
    return -1;
}

/* Opens /dev/tty (relative to `dirfd`, as openat does): the kernel's answer unless it is
 * gVisor's EIO. */
static int open_tty(int dirfd, const char *path, int flags, mode_t mode) {
    int fd = (int)syscall(SYS_openat, dirfd, path, flags, mode);
    if (fd >= 0 || errno != EIO) {
        return fd;
    }
    return open_controlling_tty(flags);
}

/* The mode argument is there only when the flags ask for a new file: `mode` gets it, or 0. */
#define READ_MODE(mode, flags)                                                            \
    mode_t mode = 0;                                                                      \
    if (((flags) & O_CREAT) != 0 || ((flags) & __O_TMPFILE) == __O_TMPFILE) {             \
        va_list args;                                                                     \
        va_start(args, flags);                                                            \
        mode = va_arg(args, mode_t);                                                      \
        va_end(args);                                                                     \
    }

#define OPEN(name)                                                                        \
    int name(const char *path, int flags, ...) {                                          \
        READ_MODE(mode, flags);                                                           \
        if (is_dev_tty(path)) {                                                           \
            return open_tty(AT_FDCWD, path, flags, mode);                                 \
        }                                                                                 \
        static int (*next)(const char *, int, ...);                                       \
        if (next == NULL) {                                                               \
            next = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name);              \
        }                                                                                 \
        return next(path, flags, mode);                                                   \
    }

#define OPENAT(name)                                                                      \
    int name(int dirfd, const char *path, int flags, ...) {                               \
        READ_MODE(mode, flags);                                                           \
        if (is_dev_tty(path)) {                                                           \
            return open_tty(dirfd, path, flags, mode);                                    \
        }                                                                                 \
        static int (*next)(int, const char *, int, ...);                                  \
        if (next == NULL) {                                                               \
            next = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, #name);         \
        }                                                                                 \
        return next(dirfd, path, flags, mode);                                            \
    }

/* _FORTIFY_SOURCE builds call these instead of open and openat. */
#define OPEN_2(name)                                                               \
    int name(const char *path, int flags) {                                               \
        if (is_dev_tty(path)) {                                                           \
            return open_tty(AT_FDCWD, path, flags, 0);                                    \
        }                                                                                 \
        static int (*next)(const char *, int);                                            \
        if (next == NULL) {                                                               \
            next = (int (*)(const char *, int))dlsym(RTLD_NEXT, #name);                   \
        }                                                                                 \
        return next(path, flags);                                                         \
    }

#define OPENAT_2(name)                                                                    \
    int name(int dirfd, const char *path, int flags) {                                    \
        if (is_dev_tty(path)) {                                                           \
            return open_tty(dirfd, path, flags, 0);                                       \
        }                                                                                 \
        static int (*next)(int, const char *, int);                                       \
        if (next == NULL) {                                                               \
            next = (int (*)(int, const char *, int))dlsym(RTLD_NEXT, #name);              \
        }                                                                                 \
        return next(dirfd, path, flags);                                                  \
    }

OPEN(open)
OPEN(open64)
OPENAT(openat)
OPENAT(openat64)
OPEN_2(__open_2)
OPEN_2(__open64_2)
OPENAT_2(__openat_2)
OPENAT_2(__openat64_2)

/* fopen's own open inside glibc is not interposable: /dev/tty (git's prompts) is opened
 * here and wrapped. */
static int fopen_flags(const char *mode) {
    int flags = mode[0] == 'r' ? 0 : O_CREAT | (mode[0] == 'a' ? O_APPEND : O_TRUNC);
    int read_write = strchr(mode, '+') != NULL;
    flags |= read_write ? O_RDWR : (mode[0] == 'r' ? O_RDONLY : O_WRONLY);
    if (strchr(mode, 'e') != NULL) {
        flags |= O_CLOEXEC;
    }
    return flags;
}

#define FOPEN(name)                                                                       \
    FILE *name(const char *path, const char *mode) {                                      \
        if (is_dev_tty(path) && mode != NULL) {                                           \
            int fd = open_tty(AT_FDCWD, path, fopen_flags(mode), 0666);                   \
            if (fd < 0) {                                                                 \
                return NULL;                                                              \
            }                                                                             \
            FILE *file = fdopen(fd, mode);                                                \
            if (file == NULL) {                                                           \
                int saved = errno;                                                        \
                close(fd);                                                                \
                errno = saved;                                                            \
            }                                                                             \
            return file;                                                                  \
        }                                                                                 \
        static FILE *(*next)(const char *, const char *);                                 \
        if (next == NULL) {                                                               \
            next = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, #name);      \
        }                                                                                 \
        return next(path, mode);                                                          \
    }

FOPEN(fopen)
FOPEN(fopen64)
