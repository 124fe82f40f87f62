"""Layer tars: decompression, storage with digests, and safe extraction.

Each layer is unpacked into its own empty directory, used as one overlayfs
lower dir. Whiteouts become what overlayfs expects: a 0:0 character device
for a deleted path and ``trusted.overlay.opaque=y`` on an opaque directory.
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import zlib
from typing import BinaryIO

import zstandard

from berth.errors import InvalidArgument
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

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20
_ZSTD_FEED = 1024  # compressed bytes per decompress call: bounds output per call
_XATTR_IGNORED = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP)


class _Reader(io.RawIOBase):
    """A read-only raw stream whose subclasses implement ``read(n)``."""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)


class _Prefixed(_Reader):
    """Sniffed bytes followed by the rest of the source."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self._head, self._src = head, src

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return self.readall()
        if self._head:
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._src.read(n) or b""


class _Zstd(_Reader):
    """Multi-frame zstd decoder that reports truncation, with bounded buffers."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self._mid_frame = False
        self._in, self._in_pos = b"", 0
        self._out, self._out_pos = b"", 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return self.readall()
        while self._out_pos >= len(self._out):
            if not self._decode_some():
                return b""
        out = self._out[self._out_pos:self._out_pos + n]
        self._out_pos += len(out)
        return out

    def _decode_some(self) -> bool:
        if self._in_pos >= len(self._in):
            self._in, self._in_pos = self._src.read(1 << 16) or b"", 0
            if not self._in:
                if self._mid_frame:
                    raise InvalidArgument("invalid compressed data: truncated zstd stream")
                return False
        piece = self._in[self._in_pos:self._in_pos + _ZSTD_FEED]
        self._in_pos += len(piece)
        self._out, self._out_pos = self._d.decompress(piece), 0
        self._mid_frame = True
        if self._d.eof:
            self._in, self._in_pos = self._d.unused_data + self._in[self._in_pos:], 0
            self._d = zstandard.ZstdDecompressor().decompressobj()
            self._mid_frame = False
        return True


class _Guard(_Reader):
    """Turns decompression failures into ``InvalidArgument``."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def read(self, n: int = -1) -> bytes:
        try:
            return self._inner.read(n)
        except (gzip.BadGzipFile, EOFError, zlib.error, zstandard.ZstdError) as e:
            raise InvalidArgument(f"invalid compressed data: {e}") from None


def _read_upto(f: BinaryIO, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def open_decompressed(f: BinaryIO) -> BinaryIO:
    """Sniff gzip / zstd / plain and return a stream of the uncompressed bytes."""
    head = _read_upto(f, 4)
    src = _Prefixed(head, f)
    if head.startswith(GZIP_MAGIC):
        return _Guard(gzip.GzipFile(fileobj=src, mode="rb"))  # type: ignore[return-value]
    if head == ZSTD_MAGIC:
        return _Guard(_Zstd(src))  # type: ignore[return-value]
    return src  # type: ignore[return-value]


def store_uncompressed(src: BinaryIO, dest_path: str) -> tuple[str, int]:
    """Write ``src``, decompressed if needed, to ``dest_path`` (fsynced).

    Returns the uncompressed ``("sha256:<hex>", size)``.
    """
    stream = open_decompressed(src)
    h = hashlib.sha256()
    size = 0
    fd = os.open(dest_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    with open(fd, "wb") as out:
        while chunk := stream.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return "sha256:" + h.hexdigest(), size


def layer_diff_id(tar_path: str) -> str:
    """The sha256 digest of a file (an uncompressed layer tar's diff ID)."""
    h = hashlib.sha256()
    with open(tar_path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def apply_layer(tar_path: str, dest: str) -> int:
    """Unpack a layer tar into the empty directory ``dest``; return the unpacked size.

    Unsafe or malformed entries raise ``InvalidArgument``; nothing is ever
    written outside ``dest`` (the caller removes ``dest`` on failure).
    """
    root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    ex = _Extractor(root)
    try:
        with open(tar_path, "rb") as f:
            for tar, member in iter_tar(open_decompressed(f)):
                ex.entry(tar, member)
        ex.finish()
    finally:
        ex.close()
        os.close(root)
    return ex.size


class _Extractor:
    """State of one layer extraction: a parent-dir fd cache and dir mtimes."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.size = 0
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._dir_times: dict[tuple[str, ...], tuple[int, int]] = {}

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
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)

    def entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_path(m.name)
        if not parts:
            if not m.isdir():
                raise InvalidArgument(f"invalid tar entry {m.name!r}: root is not a directory")
            self._set_attrs(self.root, m)
            self._dir_times[()] = (mtime_ns(m, "atime"), mtime_ns(m))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT):
            self._whiteout(parts, m)
            return
        pfd = self._parent(parts[:-1], m.name)
        existing = lstat_at(pfd, base)
        if m.isdir():
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                self._remove(pfd, base, existing)
                existing = None
            if existing is None:
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                self._set_attrs(fd, m)
            finally:
                os.close(fd)
            self._dir_times[parts] = (mtime_ns(m, "atime"), mtime_ns(m))
            return
        if m.islnk():
            self._hardlink(pfd, parts, m, existing)
            return
        if m.type not in (tarfile.SYMTYPE, tarfile.FIFOTYPE) and not m.isreg():
            kind = "device node" if m.ischr() or m.isblk() else f"unsupported type {m.type!r}"
            raise InvalidArgument(f"invalid tar entry {m.name!r}: {kind} not allowed in a layer")
        if m.issym() and symlink_escapes(parts, m.linkname):
            raise InvalidArgument(f"invalid tar entry {m.name!r}: symlink target {m.linkname!r} escapes the layer root")
        if existing is not None:
            self._remove(pfd, base, existing)
        if m.isreg():
            self._regular(tar, pfd, base, m)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(base, ns=(mtime_ns(m, "atime"), mtime_ns(m)), dir_fd=pfd, follow_symlinks=False)
        else:
            os.mkfifo(base, 0o600, dir_fd=pfd)
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
            os.utime(base, ns=(mtime_ns(m, "atime"), mtime_ns(m)), dir_fd=pfd, follow_symlinks=False)

    def _regular(self, tar: tarfile.TarFile, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(base, flags, 0o600, dir_fd=pfd)
        with open(fd, "wb") as out:
            shutil.copyfileobj(read_member(tar, m), out, _CHUNK)
            out.flush()
            self._set_attrs(fd, m)
            os.utime(fd, ns=(mtime_ns(m, "atime"), mtime_ns(m)))
        self.size += m.size

    def _set_attrs(self, fd: int, m: tarfile.TarInfo) -> None:
        """Owner, then mode (chown clears setuid), then xattrs (chown clears capabilities)."""
        os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)
        for key, value in xattrs_of(m).items():
            if key.startswith("trusted.overlay."):
                continue  # only whiteouts may steer overlayfs
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
            raise InvalidArgument(
                f"invalid tar entry {m.name!r}: hardlink target {m.linkname!r} is outside the layer root") from None
        missing = InvalidArgument(f"invalid tar entry {m.name!r}: hardlink target {m.linkname!r} not found in this layer")
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
            if not (stat.S_ISREG(tst.st_mode) or stat.S_ISLNK(tst.st_mode) or stat.S_ISFIFO(tst.st_mode)):
                raise InvalidArgument(f"invalid tar entry {m.name!r}: hardlink target {m.linkname!r} is not a file")
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

    def _whiteout(self, parts: tuple[str, ...], m: tarfile.TarInfo) -> None:
        base = parts[-1]
        pfd = self._parent(parts[:-1], m.name)
        if base == OPAQUE:
            os.setxattr(pfd, "trusted.overlay.opaque", b"y")
            return
        if base.startswith(WHITEOUT + WHITEOUT):
            return  # other aufs metadata, meaningless here
        name = base[len(WHITEOUT):]
        if name in ("", ".", ".."):
            raise InvalidArgument(f"invalid tar entry {m.name!r}: bad whiteout name")
        existing = lstat_at(pfd, name)
        if existing is not None:
            self._remove(pfd, name, existing)
        os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
        os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)

    def finish(self) -> None:
        """Set directory times last, once nothing more is written inside them."""
        self.close()
        for parts, times in self._dir_times.items():
            try:
                fd = walk_dirs(self.root, parts, "/".join(parts), create=False)
            except (FileNotFoundError, InvalidArgument):
                continue  # replaced later in the layer
            try:
                os.utime(fd, ns=times)
            finally:
                os.close(fd)
