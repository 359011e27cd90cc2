#!/usr/bin/env python3
"""A FUSE file system that can simulate a power cut: the idea of LazyFS and ALICE, kept small.

    python3 powercutfs.py MOUNTPOINT

Everything lives in memory and behaves like a normal file system while mounted. Separately it keeps
what a power cut would leave, under the strictest rule POSIX allows:

- a file's bytes survive only as of its last fsync/fdatasync (a file never synced is empty);
- a directory's entries (creates, links, renames, unlinks, mkdirs) survive only as of the last
  fsync of that directory;
- syncfs(2) and sync(2) make nothing durable (FUSE does not pass them to the file system, as on
  the file systems where the project first saw acknowledged events lost).

When a file `MOUNTPOINT.cut` appears (one line: a directory), it writes the surviving tree there,
unmounts and exits 0: the state a machine would boot with after the power was cut at that moment. Files are
written with their surviving bytes; directories that no longer have a durable name are gone with
everything under them.
"""
import errno
import os
import stat
import subprocess
import sys
import threading
import time

import mfusepy as fuse


class Node:
    def __init__(self, mode):
        self.mode = mode
        self.data = bytearray()
        self.durable = b""
        self.entries = {}
        self.durable_entries = {}
        self.nlink = 2 if stat.S_ISDIR(mode) else 1
        now = time.time()
        self.times = (now, now, now)

    @property
    def is_dir(self):
        return stat.S_ISDIR(self.mode)


class PowerCutFS(fuse.Operations):
    use_ns = True

    def __init__(self):
        self.mutex = threading.RLock()
        self.root = Node(stat.S_IFDIR | 0o755)
        self.handles = {}
        self.next_handle = 1

    # Paths

    def _walk(self, path):
        node = self.root
        for part in [p for p in path.split("/") if p]:
            if not node.is_dir or part not in node.entries:
                raise fuse.FuseOSError(errno.ENOENT)
            node = node.entries[part]
        return node

    def _parent(self, path):
        head, name = os.path.split(path.rstrip("/"))
        parent = self._walk(head or "/")
        if not parent.is_dir:
            raise fuse.FuseOSError(errno.ENOTDIR)
        return parent, name

    # Metadata

    def getattr(self, path, fh=None):
        with self.mutex:
            node = self._walk(path)
            size = len(node.data) if not node.is_dir else 4096
            return {"st_mode": node.mode, "st_nlink": node.nlink, "st_size": size, "st_uid": os.getuid(), "st_gid": os.getgid(),
                    "st_atime": node.times[0], "st_mtime": node.times[1], "st_ctime": node.times[2], "st_ino": id(node) & 0xFFFFFFFF}

    def access(self, path, amode):
        with self.mutex:
            self._walk(path)
        return 0

    def chmod(self, path, mode):
        with self.mutex:
            node = self._walk(path)
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
        return 0

    def chown(self, path, uid, gid):
        return 0

    def utimens(self, path, times=None):
        with self.mutex:
            node = self._walk(path)
            now = time.time()
            atime, mtime = (times[0] / 1e9, times[1] / 1e9) if times else (now, now)
            node.times = (atime, mtime, now)
        return 0

    def statfs(self, path):
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1 << 20, "f_bfree": 1 << 19, "f_bavail": 1 << 19,
                "f_files": 1 << 20, "f_ffree": 1 << 19, "f_favail": 1 << 19, "f_namemax": 255}

    # Directories

    def readdir(self, path, fh):
        with self.mutex:
            node = self._walk(path)
            return [".", ".."] + list(node.entries)

    def mkdir(self, path, mode):
        with self.mutex:
            parent, name = self._parent(path)
            if name in parent.entries:
                raise fuse.FuseOSError(errno.EEXIST)
            parent.entries[name] = Node(stat.S_IFDIR | (mode & 0o7777))
            parent.nlink += 1
        return 0

    def rmdir(self, path):
        with self.mutex:
            parent, name = self._parent(path)
            node = parent.entries.get(name)
            if node is None:
                raise fuse.FuseOSError(errno.ENOENT)
            if node.entries:
                raise fuse.FuseOSError(errno.ENOTEMPTY)
            del parent.entries[name]
        return 0

    def opendir(self, path):
        with self.mutex:
            self._walk(path)
        return 0

    def fsyncdir(self, path, datasync, fh):
        with self.mutex:
            node = self._walk(path)
            node.durable_entries = dict(node.entries)
        return 0

    # Files

    def _open(self, node):
        handle = self.next_handle
        self.next_handle += 1
        self.handles[handle] = node
        return handle

    def create(self, path, mode, fi=None):
        with self.mutex:
            parent, name = self._parent(path)
            if name in parent.entries:
                raise fuse.FuseOSError(errno.EEXIST)
            node = Node(stat.S_IFREG | (mode & 0o7777))
            parent.entries[name] = node
            return self._open(node)

    def open(self, path, flags):
        with self.mutex:
            node = self._walk(path)
            if flags & os.O_TRUNC:
                node.data = bytearray()
            return self._open(node)

    def read(self, path, size, offset, fh):
        with self.mutex:
            node = self.handles.get(fh) or self._walk(path)
            return bytes(node.data[offset:offset + size])

    def write(self, path, data, offset, fh):
        with self.mutex:
            node = self.handles.get(fh) or self._walk(path)
            if offset > len(node.data):
                node.data.extend(b"\0" * (offset - len(node.data)))
            node.data[offset:offset + len(data)] = data
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            node = self.handles.get(fh) if fh else None
            node = node or self._walk(path)
            if length < len(node.data):
                del node.data[length:]
            else:
                node.data.extend(b"\0" * (length - len(node.data)))
        return 0

    def fsync(self, path, datasync, fh):
        with self.mutex:
            node = self.handles.get(fh) or self._walk(path)
            node.durable = bytes(node.data)
        return 0

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        with self.mutex:
            self.handles.pop(fh, None)
        return 0

    def unlink(self, path):
        with self.mutex:
            parent, name = self._parent(path)
            node = parent.entries.pop(name, None)
            if node is None:
                raise fuse.FuseOSError(errno.ENOENT)
            node.nlink -= 1
        return 0

    def link(self, target, source):
        # mfusepy: link(target = the new name, source = the existing file)
        with self.mutex:
            node = self._walk(source)
            parent, name = self._parent(target)
            if name in parent.entries:
                raise fuse.FuseOSError(errno.EEXIST)
            parent.entries[name] = node
            node.nlink += 1
        return 0

    def rename(self, old, new):
        with self.mutex:
            old_parent, old_name = self._parent(old)
            node = old_parent.entries.get(old_name)
            if node is None:
                raise fuse.FuseOSError(errno.ENOENT)
            new_parent, new_name = self._parent(new)
            existing = new_parent.entries.get(new_name)
            if existing is not None and existing.is_dir and existing.entries:
                raise fuse.FuseOSError(errno.ENOTEMPTY)
            del old_parent.entries[old_name]
            new_parent.entries[new_name] = node
        return 0

    def symlink(self, target, source):
        raise fuse.FuseOSError(errno.EPERM)

    # The power cut

    def write_surviving(self, target):
        """Writes what a power cut now would leave to `target` (created)."""
        with self.mutex:
            def copy(node, path):
                os.makedirs(path, exist_ok=True)
                for name, child in node.durable_entries.items():
                    child_path = os.path.join(path, name)
                    if child.is_dir:
                        copy(child, child_path)
                    else:
                        with open(child_path, "wb") as f:
                            f.write(child.durable)
            copy(self.root, target)


def main():
    mountpoint = sys.argv[1]
    filesystem = PowerCutFS()
    order = mountpoint.rstrip("/") + ".cut"

    def watch():
        while not os.path.exists(order):
            time.sleep(0.02)
        with open(order) as f:
            target = f.read().strip()
        filesystem.write_surviving(target)
        subprocess.run(["fusermount3", "-u", "-z", mountpoint])
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    fuse.FUSE(filesystem, mountpoint, foreground=True, nothreads=False, default_permissions=False)


if __name__ == "__main__":
    main()
