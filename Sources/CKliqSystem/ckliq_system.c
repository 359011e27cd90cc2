#define _GNU_SOURCE
#include <unistd.h>
#ifdef __linux__
#include <sys/vfs.h>
#endif
#include "ckliq_system.h"

int ckliq_syncfs(int fd) {
#ifdef __linux__
    return syncfs(fd);
#else
    (void)fd;
    sync();
    return 0;
#endif
}

unsigned long ckliq_fs_type(int fd) {
#ifdef __linux__
    struct statfs info;
    if (fstatfs(fd, &info) != 0) return 0;
    return (unsigned long)info.f_type;
#else
    (void)fd;
    return 0;
#endif
}
