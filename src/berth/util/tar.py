"""Tar safety: strict member iteration, lexical path checks, fd walks, safe extraction.

Nothing here follows a symlink inside a destination tree: directories are
walked one component at a time with ``O_NOFOLLOW`` relative to a root fd.
"""
from __future__ import annotations

import base64
import errno
import hashlib
import io
import os
import shutil
import stat
import tarfile
import urllib.parse
from collections.abc import Iterator
from typing import BinaryIO

from berth.errors import InvalidArgument

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # reading; a FIFO must not block the open
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTR_IGNORED = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP)
_CHUNK = 1 << 20


def clean_path(name: str, what: str = "tar entry") -> tuple[str, ...]:
    """Split a member name into components, resolving ``.``/``..`` lexically.

    Absolute names and names escaping the root raise ``InvalidArgument``.
    An empty tuple means the root itself.
    """
    if name.startswith("/"):
        raise InvalidArgument(f"invalid {what} {name!r}: absolute path")
    return _resolve((), name, what, name)


def clean_link_target(name: str, what: str = "hardlink target") -> tuple[str, ...]:
    """Like ``clean_path`` for a hardlink target; a leading ``/`` means the root."""
    return _resolve((), name.lstrip("/"), what, name)


def _resolve(base: tuple[str, ...], rel: str, what: str, shown: str) -> tuple[str, ...]:
    out = list(base)
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                raise InvalidArgument(f"invalid {what} {shown!r}: path escapes the root")
            out.pop()
        else:
            out.append(part)
    return tuple(out)


def symlink_escapes(parts: tuple[str, ...], target: str) -> bool:
    """True if relative ``target`` of a symlink at ``parts`` lexically leaves the root.

    Absolute targets are resolved by the container against its own root and
    are never followed during extraction, so they do not escape.
    """
    if target.startswith("/"):
        return False
    try:
        _resolve(parts[:-1], target, "symlink", target)
    except InvalidArgument:
        return True
    return False


def resolve_symlink(parts: tuple[str, ...], target: str) -> tuple[str, ...] | None:
    """Where a symlink at ``parts`` points, within the root; None if it escapes."""
    try:
        if target.startswith("/"):
            return _resolve((), target, "symlink", target)
        return _resolve(parts[:-1], target, "symlink", target)
    except InvalidArgument:
        return None


def xattrs_of(member: tarfile.TarInfo) -> dict[str, bytes]:
    """Extended attributes recorded in a member's PAX headers."""
    out: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            out[key[len("SCHILY.xattr."):]] = value.encode("utf-8", "surrogateescape")
        elif key.startswith("LIBARCHIVE.xattr."):
            name = urllib.parse.unquote(key[len("LIBARCHIVE.xattr."):])
            try:
                out[name] = base64.b64decode(value + "=" * (-len(value) % 4))
            except ValueError:
                raise InvalidArgument(f"invalid tar: bad xattr {name!r} on {member.name!r}") from None
    return out


def mtime_ns(member: tarfile.TarInfo, key: str = "mtime") -> int:
    """A member's mtime (or PAX ``atime``) in nanoseconds, exact for PAX values."""
    raw = member.pax_headers.get(key)
    if raw is not None:
        whole, _, frac = raw.strip().partition(".")
        try:
            sign = -1 if whole.startswith("-") else 1
            secs = int(whole or "0")
            nanos = int((frac + "000000000")[:9]) if frac else 0
            return secs * 1_000_000_000 + sign * nanos
        except ValueError:
            pass
    if key != "mtime":
        return mtime_ns(member)
    return int(member.mtime) * 1_000_000_000


class _StrictInfo(tarfile.TarInfo):
    """Records why header parsing stopped, so truncation is not mistaken for the end."""

    @classmethod
    def fromtarfile(cls, tf):  # type: ignore[override]
        try:
            return super().fromtarfile(tf)
        except tarfile.HeaderError as e:
            tf._berth_stop = e
            raise


def iter_tar(fileobj: BinaryIO) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Yield ``(tar, member)`` from a sequential tar stream, strictly.

    A member's data can be read (``read_member``) only until the next
    iteration. Corrupt headers, truncated data and a missing end-of-archive
    marker raise ``InvalidArgument`` ("invalid tar: ...").
    """
    try:
        tar = tarfile.open(fileobj=fileobj, mode="r|", tarinfo=_StrictInfo, bufsize=1 << 20)
    except tarfile.TarError as e:
        raise InvalidArgument(f"invalid tar: {e}") from None
    with tar:
        while True:
            try:
                member = tar.next()
            except tarfile.TarError as e:
                raise InvalidArgument(f"invalid tar: {e}") from None
            if member is None:
                break
            tar.members.clear()  # stream mode: do not keep every header in memory
            yield tar, member
        stop = getattr(tar, "_berth_stop", None)
        if not isinstance(stop, tarfile.EOFHeaderError):
            detail = "unexpected end of data" if isinstance(stop, (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError)) else str(stop)
            raise InvalidArgument(f"invalid tar: {detail} at offset {tar.offset}")


def read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> BinaryIO:
    """The data of a regular member; read errors become ``InvalidArgument``."""
    f = tar.extractfile(member)
    assert f is not None
    return _TarErrors(f)  # type: ignore[return-value]


class _TarErrors:
    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, n: int = -1) -> bytes:
        try:
            return self._f.read(n)
        except tarfile.TarError as e:
            raise InvalidArgument(f"invalid tar: {e}") from None


def walk_dirs(root_fd: int, parts: tuple[str, ...], entry: str | None, create: bool) -> int:
    """Open directory ``parts`` under ``root_fd`` without following symlinks.

    Missing directories are created (0755) if ``create``; otherwise
    ``FileNotFoundError`` is raised. A symlink or non-directory on the way
    raises ``InvalidArgument`` naming tar entry ``entry`` (or, with no entry,
    the ``OSError`` as it comes). Returns a new fd.
    """
    fd = os.dup(root_fd)
    try:
        for i, part in enumerate(parts):
            try:
                nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if entry is None or e.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                where = "/".join(parts[: i + 1])
                st = os.lstat(part, dir_fd=fd)
                kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
                raise InvalidArgument(f"invalid tar entry {entry!r}: parent {where!r} is {kind}") from None
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """``lstat`` of ``name`` in ``dir_fd``, or None if it does not exist."""
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None


def member_times(member: tarfile.TarInfo) -> tuple[int, int]:
    """A member's (atime, mtime) in nanoseconds, for ``os.utime(ns=...)``."""
    return mtime_ns(member, "atime"), mtime_ns(member)


class TreeExtractor:
    """Unpacks a tar stream below the directory fd ``root``, never leaving it.

    Member names are resolved lexically and may not leave the root; nothing is
    written through a symlink (directories are walked with ``O_NOFOLLOW``);
    relative symlink targets may not leave the root; a hardlink points at what
    is already there. An existing entry is replaced, a directory kept; directory
    times are set last. Errors raise ``InvalidArgument``.

    The rules that differ between callers are the hooks below and the message
    tails (``SYMLINK_ESCAPES``, ``LINK_OUTSIDE``, ``LINK_MISSING``).
    """

    XATTR_SKIP = "trusted."  # xattrs of the tar with this prefix are not set
    SYMLINK_ESCAPES = "points outside the extraction directory"
    LINK_OUTSIDE = "is outside the extraction directory"
    LINK_MISSING = "not found"

    def __init__(self, root: int) -> None:
        self.root = root
        self.size = 0  # bytes of regular files written
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._dir_times: dict[tuple[str, ...], tuple[int, int]] = {}

    def run(self, stream: BinaryIO) -> None:
        try:
            for tar, member in iter_tar(stream):
                self.entry(tar, member)
            self.finish()
        finally:
            self.close()

    # -- hooks ---------------------------------------------------------------------------------
    def member_parts(self, m: tarfile.TarInfo) -> tuple[str, ...]:
        """The member's path below the root (an absolute name is refused)."""
        return clean_path(m.name)

    def top(self, m: tarfile.TarInfo) -> None:
        """A member naming the root itself: left alone."""

    def before_parent(self, parts: tuple[str, ...], m: tarfile.TarInfo) -> bool:
        """Before the member's parent is opened: True if handled here (or raise to refuse it)."""
        return False

    def check_existing(self, parts: tuple[str, ...], m: tarfile.TarInfo, existing: os.stat_result | None) -> None:
        """Raise to refuse replacing what is at the member's path."""

    def before_file(self, tar: tarfile.TarFile, parts: tuple[str, ...], m: tarfile.TarInfo) -> bool:
        """A non-directory, not a hardlink, about to replace what is there: True if handled (or raise)."""
        return False

    def link_target_refused(self, st: os.stat_result) -> str:
        """Why a hardlink may not point at a file of this kind ("" if it may)."""
        return "is a directory" if stat.S_ISDIR(st.st_mode) else ""

    def owner(self, m: tarfile.TarInfo) -> tuple[int, int]:
        return m.uid, m.gid

    # -- the walk ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _parent(self, parts: tuple[str, ...], entry: str) -> int:
        """An fd for directory ``parts`` (created if missing); owned by the cache."""
        if self._cached is not None and self._cached[0] == parts:
            return self._cached[1]
        fd = walk_dirs(self.root, parts, entry, create=True)
        self.close()
        self._cached = (parts, fd)
        return fd

    def _remove(self, pfd: int, name: str, st: os.stat_result) -> None:
        """Remove an entry of the current parent (the cached fd stays valid: it is that parent)."""
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)

    def entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = self.member_parts(m)
        if not parts:
            self.top(m)
            return
        if self.before_parent(parts, m):
            return
        base = parts[-1]
        pfd = self._parent(parts[:-1], m.name)
        existing = lstat_at(pfd, base)
        self.check_existing(parts, m, existing)
        if m.isdir():
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                self._remove(pfd, base, existing)
                existing = None
            if existing is None:
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, DIR_FLAGS, dir_fd=pfd)
            try:
                self.set_attrs(fd, m)
            finally:
                os.close(fd)
            self._dir_times[parts] = member_times(m)
            return
        if m.islnk():
            self._hardlink(pfd, parts, m, existing)
            return
        if m.issym() and symlink_escapes(parts, m.linkname):
            raise InvalidArgument(f"invalid tar entry {m.name!r}: symlink target {m.linkname!r} {self.SYMLINK_ESCAPES}")
        if self.before_file(tar, parts, m):
            return
        if existing is not None:
            self._remove(pfd, base, existing)
        uid, gid = self.owner(m)
        times = member_times(m)
        if m.isreg():
            fd = os.open(base, _NEW_FILE_FLAGS, 0o600, dir_fd=pfd)
            with open(fd, "wb") as out:
                shutil.copyfileobj(read_member(tar, m), out, _CHUNK)
                out.flush()
                self.set_attrs(fd, m)
                os.utime(fd, ns=times)
            self.size += m.size
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            os.chown(base, uid, gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=times, dir_fd=pfd, follow_symlinks=False)
        else:
            os.mkfifo(base, 0o600, dir_fd=pfd)
            fd = os.open(base, FILE_FLAGS, dir_fd=pfd)
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, m.mode & 0o7777)
                os.utime(fd, ns=times)
            finally:
                os.close(fd)

    def set_attrs(self, fd: int, m: tarfile.TarInfo) -> None:
        """Owner, then mode (chown clears setuid), then xattrs (chown clears capabilities)."""
        os.fchown(fd, *self.owner(m))
        os.fchmod(fd, m.mode & 0o7777)
        for key, value in xattrs_of(m).items():
            if key.startswith(self.XATTR_SKIP):
                continue
            try:
                os.setxattr(fd, key, value)
            except OSError as e:
                if e.errno in _XATTR_IGNORED:
                    continue
                raise InvalidArgument(f"invalid tar entry {m.name!r}: cannot set xattr {key!r}: {e.strerror}") from None

    def _hardlink(self, pfd: int, parts: tuple[str, ...], m: tarfile.TarInfo, existing: os.stat_result | None) -> None:
        shown = f"invalid tar entry {m.name!r}: hardlink target {m.linkname!r}"
        try:
            target = clean_link_target(m.linkname)
        except InvalidArgument:
            raise InvalidArgument(f"{shown} {self.LINK_OUTSIDE}") from None
        missing = InvalidArgument(f"{shown} {self.LINK_MISSING}")
        if not target:
            raise missing
        try:
            tfd = walk_dirs(self.root, target[:-1], m.name, create=False)
        except FileNotFoundError:
            raise missing from None
        try:
            tst = lstat_at(tfd, target[-1])
            if tst is None:
                raise missing
            refused = self.link_target_refused(tst)
            if refused:
                raise InvalidArgument(f"{shown} {refused}")
            if existing is not None:
                if (existing.st_dev, existing.st_ino) == (tst.st_dev, tst.st_ino):
                    return
                self._remove(pfd, parts[-1], existing)
            try:
                os.link(target[-1], parts[-1], src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise missing from None
        finally:
            os.close(tfd)

    def finish(self) -> None:
        """Set directory times last, once nothing more is written inside them."""
        self.close()
        for parts, times in self._dir_times.items():
            try:
                fd = walk_dirs(self.root, parts, "/".join(parts), create=False)
            except (FileNotFoundError, InvalidArgument):
                continue  # replaced later in the tar
            try:
                os.utime(fd, ns=times)
            finally:
                os.close(fd)


class TarWriter:
    """Streams a deterministic tar to a sink with ``write()``: mtime 0, root-owned, 0644/0755."""

    def __init__(self, out: BinaryIO) -> None:
        self._tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)

    def __enter__(self) -> "TarWriter":
        return self

    def __exit__(self, *exc) -> None:
        self._tar.__exit__(*exc)  # writes the end-of-archive marker only on success

    @staticmethod
    def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.size, ti.mtime, ti.uid, ti.gid = kind, mode, size, 0, 0, 0
        ti.uname = ti.gname = ""
        return ti

    def add_dir(self, name: str) -> None:
        self._tar.addfile(self._info(name, tarfile.DIRTYPE, 0o755))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._tar.addfile(self._info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))

    def add_file(self, name: str, path: str) -> str:
        """Stream the file at ``path``; return the sha256 digest of what was written."""
        with open(path, "rb") as f:
            src = _Hashing(f)
            self._tar.addfile(self._info(name, tarfile.REGTYPE, 0o644, os.fstat(f.fileno()).st_size), src)  # type: ignore[arg-type]
        return "sha256:" + src.h.hexdigest()


class _Hashing:
    def __init__(self, f: BinaryIO) -> None:
        self._f, self.h = f, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.h.update(data)
        return data
