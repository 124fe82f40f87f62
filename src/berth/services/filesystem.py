"""Files in containers: the archive API (``docker cp``), changes (``diff``), export and commit.

Paths are resolved inside the container's root with symlinks followed
relative to that root (``resolve_in_root``). The files are then reached one
component at a time through directory fds opened with ``O_NOFOLLOW``, so a
container that swaps a directory for a symlink during a copy makes the copy
fail, never read or write outside its root.

A stopped container's root is mounted for the call and unmounted after it,
unless it was mounted already or the container was started meanwhile
(decisions taken under the container's lifecycle lock).
"""
from __future__ import annotations

import asyncio
import bz2
import contextlib
import errno
import hashlib
import json
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import BinaryIO

from berth.errors import BerthError, Forbidden, InvalidArgument, NotFound
from berth.image.layers import OPAQUE, WHITEOUT, open_decompressed
from berth.runtime.logs import now_rfc3339
from berth.runtime.spec import parse_user
from berth.services.containers import ContainerService
from berth.services.images import ImageService, apply_change
from berth.services.lifecycle import Lifecycle
from berth.types import reference
from berth.types.container import Container
from berth.types.image import ImageConfig
from berth.util.fs import resolve_in_root
from berth.util.tar import (
    clean_link_target,
    clean_path,
    iter_tar,
    lstat_at,
    mtime_ns,
    read_member,
    symlink_escapes,
    walk_dirs,
    xattrs_of,
)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO must not block the open
_CHUNK = 1 << 20
_BLOCK = 512
_XATTR_IGNORED = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP)

# Go's os.FileMode type bits, as Docker's ContainerPathStat carries them.
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20

# What the runtime makes in a root it mounts things on: Docker keeps these in an
# "init" layer, so they never show in ``diff`` or a committed image.
_PLACEHOLDER_FILES = {"etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", ".dockerenv", "dev/console"}
_MOUNT_DIRS = {"proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "sys/fs/cgroup"}
_KERNEL_DIRS = ("proc", "sys")

ADDED, MODIFIED, DELETED = 1, 0, 2


# -- Go's path rules (filepath.Split/Base/Clean and pkg/archive's helpers) --------------
def go_base(path: str) -> str:
    if path == "":
        return "."
    path = path.rstrip("/")
    if path == "":
        return "/"
    return path.rsplit("/", 1)[-1]


def go_clean(path: str) -> str:
    if path == "":
        return "."
    rooted = path.startswith("/")
    out = posixpath.normpath(path)
    if rooted:
        out = "/" + out.lstrip("/")
    return out


def specifies_current_dir(path: str) -> bool:
    return go_base(path) == "."


def preserve_trailing(cleaned: str, original: str) -> str:
    """pkg/archive PreserveTrailingDotOrSeparator."""
    if not specifies_current_dir(cleaned) and specifies_current_dir(original):
        if not cleaned.endswith("/"):
            cleaned += "/"
        cleaned += "."
    if original.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def split_dir_entry(path: str) -> tuple[str, str]:
    """pkg/archive SplitPathDirEntry: (directory, entry) with a trailing ``/.`` kept as ``.``."""
    cleaned = go_clean(path)
    if specifies_current_dir(path):
        cleaned += "/."
    return go_clean(posixpath.dirname(cleaned) or "."), go_base(cleaned)


def go_mode(st_mode: int) -> int:
    """A stat mode as Go's os.FileMode."""
    m = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    m |= {stat.S_IFDIR: MODE_DIR, stat.S_IFLNK: MODE_SYMLINK, stat.S_IFBLK: MODE_DEVICE,
          stat.S_IFCHR: MODE_DEVICE | MODE_CHAR_DEVICE, stat.S_IFIFO: MODE_NAMED_PIPE,
          stat.S_IFSOCK: MODE_SOCKET}.get(kind, 0)
    if st_mode & stat.S_ISUID:
        m |= MODE_SETUID
    if st_mode & stat.S_ISGID:
        m |= MODE_SETGID
    if st_mode & stat.S_ISVTX:
        m |= MODE_STICKY
    return m


def rfc3339_ns(ns: int) -> str:
    """A time as Go marshals it (RFC3339 with nanoseconds, trailing zeros trimmed), in UTC."""
    base = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return base + (f".{frac}" if frac else "") + "Z"


def _rel_parts(root: str, host_path: str) -> tuple[str, ...]:
    rel = os.path.relpath(host_path, root)
    return () if rel == "." else tuple(rel.split("/"))


def _resolve(root: str, path: str) -> tuple[str, ...]:
    """``path`` resolved in the container's root (symlinks followed there), as parts below the root."""
    try:
        return _rel_parts(root, resolve_in_root(root, path))
    except OSError as e:  # a symlink loop
        raise InvalidArgument(f"{path}: {e.strerror or e}") from None


def _open_dir(root_fd: int, parts: tuple[str, ...]) -> int:
    """Directory ``parts`` under ``root_fd``, never through a symlink (OSError otherwise)."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_in_root(root: str, root_fd: int, path: str, limit: int = 1 << 20) -> str:
    """A small text file of the container ("" if absent), read without following a symlink out."""
    parts = _resolve(root, path)
    if not parts:
        return ""
    try:
        pfd = _open_dir(root_fd, parts[:-1])
    except OSError:
        return ""
    try:
        fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=pfd)
    except OSError:
        return ""
    finally:
        os.close(pfd)
    try:
        return os.read(fd, limit).decode(errors="replace") if stat.S_ISREG(os.fstat(fd).st_mode) else ""
    finally:
        os.close(fd)


def _xattr(fd: int, name: str) -> bytes | None:
    try:
        return os.getxattr(fd, name)
    except OSError:
        return None


# -- writing tars --------------------------------------------------------------------------
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


def _info(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
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
                fd = os.open(host, _FILE_FLAGS)
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
                fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            except OSError:
                return  # replaced or removed while we walked
            try:
                self.tree(fd, name, rel, st)
            finally:
                os.close(fd)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                ti = _info(name, st, tarfile.LNKTYPE)
                ti.linkname = self.links[key]
                self.out.header(ti)
                return
            try:
                fd = os.open(base, _FILE_FLAGS, dir_fd=pfd)
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
            ti = _info(name, st, tarfile.SYMTYPE)
            try:
                ti.linkname = os.readlink(base, dir_fd=pfd)
            except OSError:
                return
            self.out.header(ti)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti = _info(name, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE)
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.out.header(ti)
        elif stat.S_ISFIFO(mode):
            self.out.header(_info(name, st, tarfile.FIFOTYPE))
        # sockets are left out, as Docker leaves them out

    def _regular_fd(self, fd: int, name: str, st: os.stat_result) -> None:
        ti = _info(name, st, tarfile.REGTYPE)
        ti.size = st.st_size
        cap = _xattr(fd, "security.capability")
        if cap:
            ti.pax_headers["SCHILY.xattr.security.capability"] = cap.decode("utf-8", "surrogateescape")
        self.out.header(ti)
        self.out.data(fd, st.st_size)

    def tree(self, fd: int, name: str, rel: tuple[str, ...], st: os.stat_result) -> None:
        """The open directory ``fd`` as ``name``, then its entries (sorted, as Go's Walk)."""
        self.out.header(_info(name, st, tarfile.DIRTYPE))
        self.children(fd, name.rstrip("/") + "/", rel)

    def children(self, fd: int, prefix: str, rel: tuple[str, ...]) -> None:
        for child in sorted(os.listdir(fd)):
            cst = lstat_at(fd, child)
            if cst is not None:
                self.entry(fd, child, prefix + child, rel + (child,), cst)


# -- threads and streams ---------------------------------------------------------------------
async def in_thread(fn: Callable, *args):
    """``fn(*args)`` in a thread of its own (a slow client must not hold a shared worker).

    A cancelled caller still waits for the thread, so nothing it uses (a mount) goes while it runs.
    """
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def settle(result, exc) -> None:
        if not fut.done():
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, e)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="berth-files", daemon=True).start()
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        while not fut.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(fut)
        if not fut.cancelled():
            fut.exception()  # retrieved: the cancellation is what the caller gets
        raise


class _Closed(Exception):
    pass


class ByteStream:
    """What a blocking ``produce(write)`` writes in a worker thread, as an async iterator of chunks.

    At most a few chunks wait in memory; ``aclose`` stops the producer early.
    """

    def __init__(self, produce: Callable[[Callable[[bytes], None]], None]) -> None:
        self._produce = produce
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=8)
        self._closed = False
        self._buf = bytearray()
        self._task: asyncio.Future | None = None

    def start(self) -> "ByteStream":
        self._task = asyncio.ensure_future(in_thread(self._run))
        return self

    def _put(self, item) -> None:
        if self._closed:
            raise _Closed()
        asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop).result()

    def _write(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) >= _CHUNK:
            chunk = bytes(self._buf)
            self._buf.clear()
            self._put(chunk)

    def _run(self) -> None:
        try:
            self._produce(self._write)
            if self._buf:
                self._put(bytes(self._buf))
            self._put(None)
        except _Closed:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            with contextlib.suppress(_Closed):
                self._put(e)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        self._closed = True
        while self._task is not None and not self._task.done():
            while not self._queue.empty():
                self._queue.get_nowait()
            await asyncio.wait([self._task], timeout=1)


class BlockingReader:
    """``read(n)`` for a worker thread over an async ``read(n)`` running on the event loop."""

    def __init__(self, aread: Callable[[int], Awaitable[bytes]], loop: asyncio.AbstractEventLoop) -> None:
        self._aread, self._loop = aread, loop

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = []
            while chunk := self.read(_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        if n == 0:
            return b""
        return asyncio.run_coroutine_threadsafe(self._aread(n), self._loop).result()


class _Prefixed:
    def __init__(self, head: bytes, src) -> None:
        self._head, self._src = head, src

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                out, self._head = self._head + self._src.read(), b""
                return out
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._src.read(n) or b""

    def readable(self) -> bool:
        return True


class _Guarded:
    def __init__(self, inner) -> None:
        self._inner = inner

    def read(self, n: int = -1) -> bytes:
        try:
            return self._inner.read(n)
        except (OSError, EOFError, lzma.LZMAError) as e:
            raise InvalidArgument(f"invalid compressed data: {e}") from None


def decompressed(src) -> BinaryIO:
    """A tar stream as sent: plain, gzip, bzip2, xz (or zstd)."""
    head = b""
    while len(head) < 6:
        chunk = src.read(6 - len(head))
        if not chunk:
            break
        head += chunk
    rest = _Prefixed(head, src)
    if head.startswith(b"BZh"):
        return _Guarded(bz2.BZ2File(rest))  # type: ignore[return-value, arg-type]
    if head.startswith(b"\xfd7zXZ\x00"):
        return _Guarded(lzma.LZMAFile(rest))  # type: ignore[return-value, arg-type]
    return open_decompressed(rest)  # type: ignore[arg-type]


# -- extraction into a container --------------------------------------------------------------
class Untar:
    """Extracts a tar into an existing directory of a container's root (Docker's Untar rules).

    Member names may not leave the directory, no member is written through a
    symlink (existing or extracted), relative symlink targets may not leave the
    directory, and device nodes are refused.
    """

    def __init__(self, dest: int, dest_parts: tuple[str, ...], no_overwrite_dir_non_dir: bool,
                 owner: tuple[int, int] | None, subst: dict[tuple[str, ...], str]) -> None:
        self.dest = dest
        self.dest_parts = dest_parts
        self.no_overwrite = no_overwrite_dir_non_dir
        self.owner = owner
        self.subst = subst
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._dir_times: dict[tuple[str, ...], tuple[int, int]] = {}

    def run(self, stream: BinaryIO) -> None:
        try:
            for tar, member in iter_tar(stream):
                self.entry(tar, member)
            self.finish()
        finally:
            self._drop_cache()

    def _drop_cache(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _parent(self, parts: tuple[str, ...], entry: str) -> int:
        if self._cached is not None and self._cached[0] == parts:
            return self._cached[1]
        fd = walk_dirs(self.dest, parts, entry, create=True)
        self._drop_cache()
        self._cached = (parts, fd)
        return fd

    def _ids(self, m: tarfile.TarInfo) -> tuple[int, int]:
        return self.owner if self.owner is not None else (m.uid, m.gid)

    def _remove(self, pfd: int, name: str, st: os.stat_result) -> None:
        """Remove an entry of the current parent (the cached fd stays valid: it is that parent)."""
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)

    def entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_path(m.name.lstrip("/"))
        if not parts:
            return  # the destination itself: left as it is, as Docker does for "."
        if m.ischr() or m.isblk():
            raise InvalidArgument(f"invalid tar entry {m.name!r}: device nodes cannot be copied into a container")
        if not (m.isdir() or m.isreg() or m.issym() or m.islnk() or m.isfifo()):
            raise InvalidArgument(f"invalid tar entry {m.name!r}: unsupported type {m.type!r}")
        base = parts[-1]
        pfd = self._parent(parts[:-1], m.name)
        existing = lstat_at(pfd, base)
        shown = "/" + "/".join(self.dest_parts + parts)
        if existing is not None and self.no_overwrite:
            if stat.S_ISDIR(existing.st_mode) and not m.isdir():
                raise InvalidArgument(f'cannot overwrite directory "{shown}" with non-directory "{m.name}"')
            if not stat.S_ISDIR(existing.st_mode) and m.isdir():
                raise InvalidArgument(f'cannot overwrite non-directory "{shown}" with directory "{m.name}"')
        if m.isdir():
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                self._remove(pfd, base, existing)
                existing = None
            if existing is None:
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            try:
                self._set_attrs(fd, m)
            finally:
                os.close(fd)
            self._dir_times[parts] = (mtime_ns(m, "atime"), mtime_ns(m))
            return
        if m.issym() and symlink_escapes(parts, m.linkname):
            raise InvalidArgument(f"invalid tar entry {m.name!r}: symlink target {m.linkname!r} "
                                  "points outside the extraction directory")
        host = self.subst.get(self.dest_parts + parts)
        if host is not None and m.isreg():
            self._host_file(tar, m, host)
            return
        if m.islnk():
            self._hardlink(pfd, parts, m, existing)
            return
        if existing is not None:
            self._remove(pfd, base, existing)
        uid, gid = self._ids(m)
        times = (mtime_ns(m, "atime"), mtime_ns(m))
        if m.isreg():
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
            with open(fd, "wb") as out:
                shutil.copyfileobj(read_member(tar, m), out, _CHUNK)
                out.flush()
                self._set_attrs(fd, m)
                os.utime(fd, ns=times)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=times, dir_fd=pfd, follow_symlinks=False)
        else:
            os.mkfifo(base, 0o600, dir_fd=pfd)
            fd = os.open(base, _FILE_FLAGS, dir_fd=pfd)
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, m.mode & 0o7777)
                os.utime(fd, ns=times)
            finally:
                os.close(fd)

    def _host_file(self, tar: tarfile.TarFile, m: tarfile.TarInfo, host: str) -> None:
        """A file the container has bind-mounted from the host: its content goes to the host file."""
        fd = os.open(host, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(fd, "wb") as out:
            shutil.copyfileobj(read_member(tar, m), out, _CHUNK)

    def _set_attrs(self, fd: int, m: tarfile.TarInfo) -> None:
        os.fchown(fd, *self._ids(m))
        os.fchmod(fd, m.mode & 0o7777)
        for key, value in xattrs_of(m).items():
            if key.startswith("trusted."):
                continue
            try:
                os.setxattr(fd, key, value)
            except OSError as e:
                if e.errno in _XATTR_IGNORED:
                    continue
                raise InvalidArgument(f"invalid tar entry {m.name!r}: cannot set xattr {key!r}: {e.strerror}") from None

    def _hardlink(self, pfd: int, parts: tuple[str, ...], m: tarfile.TarInfo, existing: os.stat_result | None) -> None:
        try:
            target = clean_link_target(m.linkname)
        except InvalidArgument:
            raise InvalidArgument(f"invalid tar entry {m.name!r}: hardlink target {m.linkname!r} "
                                  "is outside the extraction directory") from None
        missing = InvalidArgument(f"invalid tar entry {m.name!r}: hardlink target {m.linkname!r} not found")
        if not target:
            raise missing
        try:
            tfd = walk_dirs(self.dest, target[:-1], m.name, create=False)
        except FileNotFoundError:
            raise missing from None
        try:
            tst = lstat_at(tfd, target[-1])
            if tst is None:
                raise missing
            if stat.S_ISDIR(tst.st_mode):
                raise InvalidArgument(f"invalid tar entry {m.name!r}: hardlink target {m.linkname!r} is a directory")
            if existing is not None:
                if (existing.st_dev, existing.st_ino) == (tst.st_dev, tst.st_ino):
                    return
                self._remove(pfd, parts[-1], existing)
            os.link(target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def finish(self) -> None:
        self._drop_cache()
        for parts, times in self._dir_times.items():
            try:
                fd = walk_dirs(self.dest, parts, "/".join(parts), create=False)
            except (FileNotFoundError, InvalidArgument):
                continue
            try:
                os.utime(fd, ns=times)
            finally:
                os.close(fd)


# -- the container's own changes ----------------------------------------------------------------
@dataclass
class Entry:
    """One entry of a container's upper directory."""

    parts: tuple[str, ...]
    st: os.stat_result
    whiteout: bool = False
    lower: os.stat_result | None = None  # the same path under the image's layers
    opaque: bool = False
    children: list["Entry"] = field(default_factory=list)
    dropped_child: bool = False  # a runtime placeholder below was left out

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def path(self) -> str:
        return "/" + "/".join(self.parts)

    def unchanged_dir(self) -> bool:
        """A directory only copied up: same type, owner and mode below, and same times unless
        only runtime placeholders changed it (Docker's "same directory" rule)."""
        lo = self.lower
        if lo is None or not self.is_dir or self.opaque or not stat.S_ISDIR(lo.st_mode):
            return False
        if (self.st.st_mode, self.st.st_uid, self.st.st_gid) != (lo.st_mode, lo.st_uid, lo.st_gid):
            return False
        return self.dropped_child or (self.st.st_size == lo.st_size and _same_time(self.st, lo))


def _same_time(a: os.stat_result, b: os.stat_result) -> bool:
    if a.st_mtime_ns == b.st_mtime_ns:
        return True
    sa, na = divmod(a.st_mtime_ns, 1_000_000_000)
    sb, nb = divmod(b.st_mtime_ns, 1_000_000_000)
    return sa == sb and (na == 0 or nb == 0)


class Lowers:
    """The image's layer directories, top first, read as overlayfs merges them."""

    def __init__(self, dirs: list[str]) -> None:
        self.dirs = dirs
        self._opaque: dict[str, bool] = {}

    def _is_opaque(self, path: str) -> bool:
        v = self._opaque.get(path)
        if v is None:
            try:
                v = os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
            except OSError:
                v = False
            self._opaque[path] = v
        return v

    def stat(self, parts: tuple[str, ...]) -> os.stat_result | None:
        for top in self.dirs:
            path = top
            hidden_below = False
            for i, name in enumerate(parts):
                path = os.path.join(path, name)
                try:
                    st = os.lstat(path)  # every component before was checked to be a directory
                except (FileNotFoundError, NotADirectoryError):
                    break
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    return None  # a whiteout
                if i == len(parts) - 1:
                    return st
                if not stat.S_ISDIR(st.st_mode):
                    return None
                hidden_below = hidden_below or self._is_opaque(path)
            if hidden_below:
                return None
        return None


def scan_upper(fd: int, parts: tuple[str, ...], lowers: Lowers, hidden: bool,
               skip_dirs: set[str]) -> tuple[list[Entry], bool]:
    """The entries below the open upper directory ``fd`` (sorted, nested), and whether any were left out."""
    out: list[Entry] = []
    dropped = False
    for name in sorted(os.listdir(fd)):
        st = lstat_at(fd, name)
        if st is None:
            continue
        p = parts + (name,)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            out.append(Entry(p, st, whiteout=True))
            continue
        lower = None if hidden else lowers.stat(p)
        rel = "/".join(p)
        if stat.S_ISDIR(st.st_mode):
            try:
                cfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue
            try:
                opaque = _xattr(cfd, "trusted.overlay.opaque") == b"y"
                kids, kid_dropped = scan_upper(cfd, p, lowers, hidden or opaque, skip_dirs)
            finally:
                os.close(cfd)
            if lower is None and not kids and rel in skip_dirs:
                dropped = True
                continue
            out.append(Entry(p, st, lower=lower, opaque=opaque, children=kids, dropped_child=kid_dropped))
            continue
        if lower is None and stat.S_ISREG(st.st_mode) and st.st_size == 0 and rel in _PLACEHOLDER_FILES:
            dropped = True
            continue
        out.append(Entry(p, st, lower=lower))
    return out, dropped


def changes_of(entries: list[Entry]) -> list[dict]:
    """Docker's change list (overlay driver): pre-order, parents of additions and deletions as modified."""
    out: list[dict] = []
    changed_dirs: set[str] = set()

    def visit(items: list[Entry]) -> None:
        for e in items:
            path = e.path
            if e.whiteout:
                kind = DELETED
            elif e.is_dir and e.opaque and e.lower is not None and stat.S_ISDIR(e.lower.st_mode):
                kind = DELETED  # replaced wholesale, as Docker reports an opaque directory
            elif e.lower is None:
                kind = ADDED
            elif e.unchanged_dir():
                visit(e.children)
                continue
            else:
                kind = MODIFIED
            if e.is_dir:
                changed_dirs.add(path)
            if kind in (ADDED, DELETED):
                parent = posixpath.dirname(path)
                if parent != "/" and parent not in changed_dirs:
                    out.append({"Path": parent, "Kind": MODIFIED})
                    changed_dirs.add(parent)
            out.append({"Path": path, "Kind": kind})
            if e.is_dir:
                visit(e.children)

    visit(entries)
    return out


def prune_for_layer(entries: list[Entry]) -> list[Entry]:
    """Leave out directories that hold nothing for a layer: unchanged and empty once placeholders go."""
    out = []
    for e in entries:
        if e.is_dir and not e.whiteout:
            e.children = prune_for_layer(e.children)
            if not e.children and e.unchanged_dir() and e.dropped_child:
                continue
        out.append(e)
    return out


def write_layer(out: TarOut, upper_fd: int, entries: list[Entry]) -> None:
    """The entries of a container's upper directory as an image layer (whiteouts as ``.wh.`` files)."""
    writer = TreeWriter(out)

    def visit(fd: int, items: list[Entry]) -> None:
        for e in items:
            name = "/".join(e.parts)
            base = e.parts[-1]
            if e.whiteout:
                ti = _info(posixpath.join(posixpath.dirname(name), WHITEOUT + base), e.st, tarfile.REGTYPE)
                ti.mode = 0o600
                out.header(ti)
                continue
            mode = e.st.st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
                continue  # device nodes and sockets do not go into image layers
            if not e.is_dir:
                writer.entry(fd, base, name, e.parts)
                continue
            try:
                cfd = os.open(base, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue
            try:
                out.header(_info(name, os.fstat(cfd), tarfile.DIRTYPE))
                if e.opaque:
                    ti = _info(name + "/" + OPAQUE, e.st, tarfile.REGTYPE)
                    ti.mode = e.st.st_mode & 0o777
                    out.header(ti)
                visit(cfd, e.children)
            finally:
                os.close(cfd)

    visit(upper_fd, entries)
    out.close()


# -- commit's config --------------------------------------------------------------------------------
def merge_config(user: ImageConfig, container: ImageConfig) -> None:
    """moby's commit merge(): what the user's config leaves empty comes from the container's."""
    if not user.user:
        user.user = container.user
    if not user.exposed_ports:
        user.exposed_ports = dict(container.exposed_ports)
    else:
        for port in container.exposed_ports:
            user.exposed_ports.setdefault(port, {})
    if not user.env:
        user.env = list(container.env)
    else:
        keys = {e.split("=", 1)[0] for e in user.env}
        user.env += [e for e in container.env if e.split("=", 1)[0] not in keys]
    for k, v in container.labels.items():
        user.labels.setdefault(k, v)
    if not user.entrypoint:
        if not user.cmd:
            user.cmd = container.cmd
        if user.entrypoint is None:
            user.entrypoint = container.entrypoint
    if not user.working_dir:
        user.working_dir = container.working_dir
    if not user.volumes:
        user.volumes = dict(container.volumes)
    else:
        user.volumes.update(container.volumes)
    if not user.stop_signal:
        user.stop_signal = container.stop_signal
    if container.healthcheck:
        if not user.healthcheck:
            user.healthcheck = dict(container.healthcheck)
        else:
            for k, v in container.healthcheck.items():
                if not user.healthcheck.get(k):
                    user.healthcheck[k] = v


def _config_of(c: Container) -> ImageConfig:
    s = c.spec
    return ImageConfig(env=list(s.env), cmd=list(s.cmd) if s.cmd is not None else None,
                       entrypoint=list(s.entrypoint) if s.entrypoint is not None else None,
                       working_dir=s.working_dir, user=s.user, labels=dict(s.labels),
                       exposed_ports=dict(s.exposed_ports), volumes=dict(s.volumes), stop_signal=s.stop_signal,
                       healthcheck=dict(s.healthcheck) if s.healthcheck else None)


def _user_config(body: dict) -> ImageConfig:
    return ImageConfig.parse(json.dumps({"config": body}).encode())


# -- the service ------------------------------------------------------------------------------------
class FilesystemService:
    def __init__(self, containers: ContainerService, images: ImageService, lifecycle: Lifecycle, tmp_dir: str) -> None:
        self.containers = containers
        self.images = images
        self.lifecycle = lifecycle
        self.tmp_dir = tmp_dir
        self._users: dict[str, int] = {}
        self._mounted: set[str] = set()  # roots this service mounted (stopped containers)

    def _lock(self, cid: str) -> asyncio.Lock:
        return self.lifecycle._lock(cid)  # the lock start/restart hold: a start never races a mount decision

    def _emit(self, c: Container, action: str, **extra: str) -> None:
        emit = getattr(self.containers, "emit", None)
        if emit is not None:
            emit(c, action, **extra)

    @contextlib.asynccontextmanager
    async def _root(self, ref: str) -> AsyncIterator[tuple[Container, str]]:
        """The container and its mounted root for the duration of the block."""
        c = self.containers.get(ref)
        async with self._lock(c.id):
            c = self.containers.refresh(c)
            target = self.containers.rootfs(c.id)
            if not os.path.ismount(target):
                await asyncio.to_thread(self.containers.mount_rootfs, c)
                self._mounted.add(c.id)
            self._users[c.id] = self._users.get(c.id, 0) + 1
        try:
            yield c, target
        finally:
            async with self._lock(c.id):
                left = self._users.pop(c.id, 1) - 1
                if left > 0:
                    self._users[c.id] = left
                elif c.id in self._mounted:
                    self._mounted.discard(c.id)
                    now = self.containers.index.get(c.id)
                    if now is not None and not now.state.running:
                        await asyncio.to_thread(self.containers.unmount_rootfs, c.id)

    def _subst(self, cid: str) -> dict[tuple[str, ...], str]:
        return {tuple(k.strip("/").split("/")): v for k, v in self.containers.host_files(cid).items()
                if os.path.isfile(v)}

    # -- stat and archive -----------------------------------------------------------------
    def _locate(self, root: str, root_fd: int, path: str, ref: str, subst: dict[tuple[str, ...], str]):
        """Docker's ResolvePath + StatPath.

        Returns (stat JSON, parent parts, entry name or None for the root, lstat, the tar's top name).
        """
        if not path:
            raise InvalidArgument("no path specified")
        not_found = NotFound(f"Could not find the file {path} in container {ref}")
        abs_path = preserve_trailing(go_clean("/" + path), path)
        dir_part, base = abs_path.rsplit("/", 1)
        rel_dir = _resolve(root, dir_part + "/")
        if base in ("", "."):
            parent, name = (rel_dir[:-1], rel_dir[-1]) if rel_dir else ((), None)
        else:
            parent, name = rel_dir, base
        try:
            pfd = _open_dir(root_fd, parent)
        except OSError:
            raise not_found from None
        try:
            st = os.fstat(pfd) if name is None else lstat_at(pfd, name)
        finally:
            os.close(pfd)
        if st is None:
            raise not_found
        if base in ("", ".") and not stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"lstat {path}: not a directory")
        link = ""
        if stat.S_ISLNK(st.st_mode):
            rel = _resolve(root, abs_path)
            link = "/" + "/".join(rel)
        host = subst.get(parent + (name,)) if name is not None else None
        if host and stat.S_ISREG(st.st_mode):
            with contextlib.suppress(OSError):
                st = os.stat(host)
        info = {"name": go_base(abs_path), "size": st.st_size, "mode": go_mode(st.st_mode),
                "mtime": rfc3339_ns(st.st_mtime_ns), "linkTarget": link}
        return info, parent, name, st, split_dir_entry(abs_path)[1]

    async def stat(self, ref: str, path: str) -> dict:
        async with self._root(ref) as (c, root):
            return (await asyncio.to_thread(self._stat_sync, c, root, path, ref))[0]

    def _stat_sync(self, c: Container, root: str, path: str, ref: str):
        root_fd = os.open(root, _DIR_FLAGS)
        try:
            return self._locate(root, root_fd, path, ref, self._subst(c.id))
        finally:
            os.close(root_fd)

    @contextlib.asynccontextmanager
    async def archive(self, ref: str, path: str) -> AsyncIterator[tuple[dict, ByteStream]]:
        """The stat of ``path`` and a tar of it, streamed while the block runs."""
        async with self._root(ref) as (c, root):
            info, parent, name, st, tar_name = await asyncio.to_thread(self._stat_sync, c, root, path, ref)
            subst = self._subst(c.id)

            def produce(write: Callable[[bytes], None]) -> None:
                out = TarOut(write)
                writer = TreeWriter(out, subst)
                root_fd = os.open(root, _DIR_FLAGS)
                try:
                    if name is None:
                        writer.tree(root_fd, tar_name, (), os.fstat(root_fd))
                    else:
                        pfd = _open_dir(root_fd, parent)
                        try:
                            writer.entry(pfd, name, tar_name, parent + (name,))
                        finally:
                            os.close(pfd)
                finally:
                    os.close(root_fd)
                out.close()

            stream = ByteStream(produce).start()
            try:
                yield info, stream
            finally:
                await stream.aclose()
            self._emit(c, "archive-path")

    # -- extraction -------------------------------------------------------------------------
    async def extract(self, ref: str, path: str, aread: Callable[[int], Awaitable[bytes]],
                      no_overwrite_dir_non_dir: bool, copy_uid_gid: bool) -> None:
        """``PUT /containers/{id}/archive``: unpack a tar (maybe compressed) into directory ``path``."""
        if not path:
            raise InvalidArgument("no path specified")
        async with self._root(ref) as (c, root):
            reader = BlockingReader(aread, asyncio.get_running_loop())
            await in_thread(self._extract, c, root, path, ref, reader, no_overwrite_dir_non_dir, copy_uid_gid)
        self._emit(c, "extract-to-dir")

    def _extract(self, c: Container, root: str, path: str, ref: str, body, no_overwrite: bool, copy_ids: bool) -> None:
        parts = _resolve(root, "/" + path)
        not_found = NotFound(f"Could not find the file {path} in container {ref}")
        root_fd = os.open(root, _DIR_FLAGS)
        try:
            try:
                pfd = _open_dir(root_fd, parts[:-1])
            except OSError:
                raise not_found from None
            try:
                st = os.fstat(pfd) if not parts else lstat_at(pfd, parts[-1])
                if st is None:
                    raise not_found
                if not stat.S_ISDIR(st.st_mode):
                    raise InvalidArgument("extraction point is not a directory")
                fd = os.dup(pfd) if not parts else os.open(parts[-1], _DIR_FLAGS, dir_fd=pfd)
            finally:
                os.close(pfd)
            try:
                if parts and parts[0] in _KERNEL_DIRS:
                    raise Forbidden(f"cannot copy into {path}: /{parts[0]} is a kernel filesystem in the container")
                if c.spec.readonly_rootfs:
                    raise Forbidden("container rootfs is marked read-only")
                owner = None
                if copy_ids and c.spec.user:
                    u = parse_user(c.spec.user, _read_in_root(root, root_fd, "/etc/passwd"),
                                   _read_in_root(root, root_fd, "/etc/group"))
                    owner = (u.uid, u.gid)
                Untar(fd, parts, no_overwrite, owner, self._subst(c.id)).run(decompressed(body))
            finally:
                os.close(fd)
        finally:
            os.close(root_fd)

    # -- changes, export, commit -----------------------------------------------------------------
    def _upper(self, c: Container) -> str:
        return os.path.join(self.containers.dir(c.id), "upper")

    def _scan(self, c: Container) -> list[Entry]:
        lowers = Lowers([self.containers.snapshots.path(x) for x in reversed(self.containers.index.chain_ids(c.id))])
        skip = set(_MOUNT_DIRS) | {k.strip("/") for k in getattr(c.spec, "tmpfs", {}) or {}}
        fd = os.open(self._upper(c), _DIR_FLAGS)
        try:
            return scan_upper(fd, (), lowers, False, skip)[0]
        finally:
            os.close(fd)

    async def changes(self, ref: str) -> list[dict]:
        c = self.containers.get(ref)
        return changes_of(await asyncio.to_thread(self._scan, c))

    @contextlib.asynccontextmanager
    async def export(self, ref: str) -> AsyncIterator[ByteStream]:
        """A tar of the container's whole root filesystem, streamed while the block runs."""
        async with self._root(ref) as (c, root):
            def produce(write: Callable[[bytes], None]) -> None:
                out = TarOut(write)
                root_fd = os.open(root, _DIR_FLAGS)
                try:
                    TreeWriter(out).children(root_fd, "", ())
                finally:
                    os.close(root_fd)
                out.close()

            stream = ByteStream(produce).start()
            try:
                yield stream
            finally:
                await stream.aclose()
            self._emit(c, "export")

    def _write_layer(self, c: Container, dest: str) -> tuple[str, bool]:
        """The container's changes as a layer tar at ``dest``: (diff ID, empty)."""
        entries = prune_for_layer(self._scan(c))
        h = hashlib.sha256()
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as f:
            def write(data: bytes) -> None:
                h.update(data)
                f.write(data)
            out = TarOut(write)
            upper_fd = os.open(self._upper(c), _DIR_FLAGS)
            try:
                write_layer(out, upper_fd, entries)
            finally:
                os.close(upper_fd)
            f.flush()
            os.fsync(f.fileno())
        return "sha256:" + h.hexdigest(), out.entries == 0

    async def commit(self, ref: str, repo: str, tag: str, comment: str, author: str, pause: bool,
                     changes: list[str], config: dict | None) -> str:
        """``docker commit``: a new image of the container's image plus its changes."""
        c = self.containers.get(ref)
        tags = []
        if repo:
            r = reference.parse(f"{repo}:{tag}" if tag else repo)
            if r.digest:
                raise InvalidArgument("refusing to create a tag with a digest reference")
            tags = [r.repository + (":" + r.tag if r.tag else "")]
        img = self.images.index.get(c.image_id)
        if img is None:
            raise NotFound.image(c.image_id)
        parent = img.config
        cfg = _config_of(c)
        user = _user_config(config) if config else _config_of(c)
        for value in changes:
            for line in value.splitlines():
                if line.strip():
                    apply_change(user, line)
        merge_config(user, cfg)
        os.makedirs(self.tmp_dir, exist_ok=True)
        layer = os.path.join(self.tmp_dir, f"commit-{uuid.uuid4().hex}.tar")
        try:
            paused = False
            if pause and c.state.status == "running" and hasattr(self.lifecycle, "pause"):
                with contextlib.suppress(BerthError):
                    await self.lifecycle.pause(c.id, True)
                    paused = True
            try:
                diff_id, empty = await asyncio.to_thread(self._write_layer, c, layer)
            finally:
                if paused:
                    with contextlib.suppress(BerthError):
                        await self.lifecycle.pause(c.id, False)
            now = now_rfc3339()
            history = {"created": now, "author": author, "created_by": " ".join(c.spec.cmd or []),
                       "comment": comment}
            if empty:
                history["empty_layer"] = True
            new = ImageConfig(
                created=now, architecture=parent.architecture, os=parent.os, author=author,
                env=user.env, cmd=user.cmd, entrypoint=user.entrypoint, working_dir=user.working_dir,
                user=user.user, labels=user.labels, exposed_ports=user.exposed_ports, volumes=user.volumes,
                stop_signal=user.stop_signal, healthcheck=user.healthcheck,
                diff_ids=list(parent.diff_ids) + ([] if empty else [diff_id]),
                history=list(parent.history) + [history])
            files = [self.images.content.path(d) for d in parent.diff_ids] + ([] if empty else [layer])
            async with self.images._lock:  # as import_rootfs: one image registration at a time
                image_id, _ = await asyncio.to_thread(self.images._register, new.to_json(), files, tags)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(layer)
        self._emit(c, "commit", comment=comment, imageID=image_id,
                   imageRef=str(reference.parse(tags[0])) if tags else "")
        return image_id
