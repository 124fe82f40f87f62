"""Tars written from a container's tree: a tar stream (``TarOut``) and what walks the files into it
(``TreeWriter``), reaching every file through fds opened without following a symlink."""
from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable

from berth.util.tar import DIR_FLAGS, FILE_FLAGS, lstat_at

_CHUNK = 1 << 20
_BLOCK = 512


def get_xattr(fd: int, name: str) -> bytes | None:
    try:
        return os.getxattr(fd, name)
    except OSError:
        return None


class TarOut:
    """A tar stream to ``write``: PAX headers, data padded to blocks, the two-block end marker."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self.entries = 0

    def header(self, ti: tarfile.TarInfo) -> None:
        self._write(ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        self.entries += 1

    def data(self, fd: int, size: int) -> None:
        """Exactly ``size`` bytes of ``fd``: zero-filled if the file shrank meanwhile."""
        left = size
        while left > 0:
            chunk = os.read(fd, min(_CHUNK, left))
            if not chunk:
                break
            self._write(chunk)
            left -= len(chunk)
        while left > 0:
            pad = min(_CHUNK, left)
            self._write(b"\0" * pad)
            left -= pad
        if size % _BLOCK:
            self._write(b"\0" * (_BLOCK - size % _BLOCK))

    def close(self) -> None:
        self._write(b"\0" * (2 * _BLOCK))


def tar_info(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = st.st_mode & 0o7777
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)  # whole seconds, as Docker's archives
    return ti


class TreeWriter:
    """Adds files to a ``TarOut`` through fds; directories with everything below them.

    ``subst`` maps root-relative paths to host files shown in their place (the
    files a running container has bind-mounted: /etc/hosts, hostname, resolv.conf).
    """

    def __init__(self, out: TarOut, subst: dict[tuple[str, ...], str] | None = None) -> None:
        self.out = out
        self.subst = subst or {}
        self.links: dict[tuple[int, int], str] = {}

    def entry(self, pfd: int, base: str, name: str, rel: tuple[str, ...], st: os.stat_result | None = None) -> None:
        if st is None:
            st = lstat_at(pfd, base)
            if st is None:
                return
        host = self.subst.get(rel)
        if host is not None and stat.S_ISREG(st.st_mode):
            try:
                fd = os.open(host, FILE_FLAGS)
            except OSError:
                fd = None
            if fd is not None:
                try:
                    self._regular_fd(fd, name, os.fstat(fd))
                finally:
                    os.close(fd)
                return
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            try:
                fd = os.open(base, DIR_FLAGS, dir_fd=pfd)
            except OSError:
                return  # replaced or removed while we walked
            try:
                self.tree(fd, name, rel, st)
            finally:
                os.close(fd)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                ti = tar_info(name, st, tarfile.LNKTYPE)
                ti.linkname = self.links[key]
                self.out.header(ti)
                return
            try:
                fd = os.open(base, FILE_FLAGS, dir_fd=pfd)
            except OSError:
                return
            try:
                fst = os.fstat(fd)
                if not stat.S_ISREG(fst.st_mode):
                    return
                self._regular_fd(fd, name, fst)
            finally:
                os.close(fd)
            if st.st_nlink > 1:
                self.links[key] = name
        elif stat.S_ISLNK(mode):
            ti = tar_info(name, st, tarfile.SYMTYPE)
            try:
                ti.linkname = os.readlink(base, dir_fd=pfd)
            except OSError:
                return
            self.out.header(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti = tar_info(name, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE)
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.out.header(ti)
        elif stat.S_ISFIFO(mode):
            self.out.header(tar_info(name, st, tarfile.FIFOTYPE))
        # sockets are left out, as Docker leaves them out

    def _regular_fd(self, fd: int, name: str, st: os.stat_result) -> None:
        ti = tar_info(name, st, tarfile.REGTYPE)
        ti.size = st.st_size
        cap = get_xattr(fd, "security.capability")
        if cap:
            ti.pax_headers["SCHILY.xattr.security.capability"] = cap.decode("utf-8", "surrogateescape")
        self.out.header(ti)
        self.out.data(fd, st.st_size)

    def tree(self, fd: int, name: str, rel: tuple[str, ...], st: os.stat_result) -> None:
        """The open directory ``fd`` as ``name``, then its entries (sorted, as Go's Walk)."""
        self.out.header(tar_info(name, st, tarfile.DIRTYPE))
        self.children(fd, name.rstrip("/") + "/", rel)

    def children(self, fd: int, prefix: str, rel: tuple[str, ...]) -> None:
        for child in sorted(os.listdir(fd)):
            cst = lstat_at(fd, child)
            if cst is not None:
                self.entry(fd, child, prefix + child, rel + (child,), cst)
