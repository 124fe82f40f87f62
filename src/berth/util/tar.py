"""Tar-safety helpers: strict member iteration, lexical path checks, fd walks.

Nothing here follows a symlink inside a destination tree: directories are
walked one component at a time with ``O_NOFOLLOW`` relative to a root fd.
"""
from __future__ import annotations

import base64
import errno
import hashlib
import io
import os
import stat
import tarfile
import urllib.parse
from collections.abc import Iterator
from typing import BinaryIO

from berth.errors import InvalidArgument

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


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
        tar = tarfile.open(fileobj=fileobj, mode="r|", tarinfo=_StrictInfo)
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


def walk_dirs(root_fd: int, parts: tuple[str, ...], entry: str, create: bool) -> int:
    """Open directory ``parts`` under ``root_fd`` without following symlinks.

    Missing directories are created (0755) if ``create``; otherwise
    ``FileNotFoundError`` is raised. A symlink or non-directory on the way
    raises ``InvalidArgument`` naming ``entry``. Returns a new fd.
    """
    fd = os.dup(root_fd)
    try:
        for i, part in enumerate(parts):
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENOTDIR):
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
