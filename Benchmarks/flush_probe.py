#!/usr/bin/env python3
"""What a durable write costs on this disk, by method: the measurement behind the file store's group
commit (BENCHMARKS.md, "What changed for 0.5.0"). ~2 KB records, in a scratch folder under DIR.

usage: flush_probe.py [DIR=.]
"""
import os, shutil, sys, tempfile, time

root = tempfile.mkdtemp(prefix="flush-probe-", dir=sys.argv[1] if len(sys.argv) > 1 else ".")
body = os.urandom(2100)


def per_file(n):  # write + fsync, rename into place, fsync the directory: every record on its own
    os.mkdir(f"{root}/a"); d = os.open(f"{root}/a", os.O_RDONLY); t = time.time()
    for i in range(n):
        fd = os.open(f"{root}/a/{i}.tmp", os.O_CREAT | os.O_WRONLY, 0o600); os.write(fd, body); os.fsync(fd); os.close(fd)
        os.rename(f"{root}/a/{i}.tmp", f"{root}/a/{i}"); os.fsync(d)
    return n / (time.time() - t)


def syncfs_batches(n, b):  # write a batch of files, then one flush of the file system
    os.mkdir(f"{root}/b{b}"); d = os.open(f"{root}/b{b}", os.O_RDONLY); t = time.time()
    for s in range(0, n, b):
        for i in range(s, s + b):
            fd = os.open(f"{root}/b{b}/{i}", os.O_CREAT | os.O_WRONLY, 0o600); os.write(fd, body); os.close(fd)
        os.sync() if not hasattr(os, "syncfs") else os.syncfs(d)
    return n / (time.time() - t)


def journal_batches(n, b):  # append a batch of records to one file, then one fdatasync
    fd = os.open(f"{root}/journal{b}", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600); t = time.time()
    for _ in range(0, n, b):
        os.write(fd, body * b); os.fdatasync(fd)
    return n / (time.time() - t)


try:
    print(f"per-file fsync + rename + directory fsync      {per_file(500):>9,.0f} records/s")
    for b in (16, 64):
        print(f"{b} files, then one syncfs                     {syncfs_batches(2000, b):>9,.0f} records/s")
    for b in (1, 16, 64):
        print(f"{b:>2} records appended, then one fdatasync       {journal_batches(4000 if b > 1 else 500, b):>9,.0f} records/s")
finally:
    shutil.rmtree(root)
