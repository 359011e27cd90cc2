// System calls the Swift Glibc module does not export (GNU extensions).
#ifndef CKLIQ_SYSTEM_H
#define CKLIQ_SYSTEM_H

/// Flushes every dirty file and directory of the file system holding `fd` (Linux `syncfs(2)`);
/// elsewhere, `sync(2)`. Returns 0, or -1 with `errno` set.
int ckliq_syncfs(int fd);

/// The file system type (`f_type` of `fstatfs(2)`) of the file system holding `fd`, or 0 when it
/// cannot be read.
unsigned long ckliq_fs_type(int fd);

#endif
