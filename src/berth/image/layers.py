"""Layer tars: decompression, storage with digests, and safe extraction.

Each layer is unpacked into its own empty directory, used as one overlayfs
lower dir. Whiteouts become what overlayfs expects: a 0:0 character device
for a deleted path and ``trusted.overlay.opaque=y`` on an opaque directory.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile
import zlib
from typing import BinaryIO

import zstandard

from berth.errors import InvalidArgument
from berth.util.reading import read_upto
from berth.util.tar import DIR_FLAGS, TreeExtractor, lstat_at, member_times

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20
_ZSTD_FEED = 1024  # compressed bytes per decompress call: bounds output per call
_GZIP_ZSTD_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, zstandard.ZstdError)
_BZIP2_XZ_ERRORS = (OSError, EOFError, lzma.LZMAError)


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


class _Decoder(_Reader):
    """A decompressor's output, served from the buffer ``_decode_some`` refills (False at the end)."""

    _out: bytes
    _out_pos: int

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
        raise NotImplementedError


class _Zstd(_Decoder):
    """Multi-frame zstd decoder that reports truncation, with bounded buffers."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self._mid_frame = False
        self._in, self._in_pos = b"", 0
        self._out, self._out_pos = b"", 0

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


class _Gzip(_Decoder):
    """Multi-member gzip decoder reading 1 MiB at a time (GzipFile's 8 KiB reads cost more than inflating)."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._d = zlib.decompressobj(31)
        self._pending = b""
        self._out, self._out_pos = b"", 0
        self._mid_member = False

    def _decode_some(self) -> bool:
        data, self._pending = self._pending or self._src.read(_CHUNK) or b"", b""
        if not data:
            if self._mid_member:
                raise InvalidArgument("invalid compressed data: truncated gzip stream")
            return False
        self._mid_member = True
        self._out, self._out_pos = self._d.decompress(data, 4 * _CHUNK), 0
        self._pending = self._d.unconsumed_tail
        if not self._d.eof and not self._pending:
            self._pending = self._src.read(_CHUNK) or b""  # truncation shows now, as GzipFile shows it
            if not self._pending:
                raise InvalidArgument("invalid compressed data: truncated gzip stream")
        if self._d.eof:
            rest = self._d.unused_data + self._pending
            self._mid_member = False
            self._d = zlib.decompressobj(31)
            if rest.startswith(GZIP_MAGIC):
                self._pending = rest
            elif rest.strip(b"\0") or read_upto(self._src, 1).strip(b"\0"):
                raise InvalidArgument("invalid compressed data: trailing garbage after the gzip stream")
            else:
                self._pending = b""
        return True


class _Guard(_Reader):
    """Turns decompression failures (``errors``) into ``InvalidArgument``."""

    def __init__(self, inner, errors: tuple[type[BaseException], ...] = _GZIP_ZSTD_ERRORS) -> None:
        self._inner, self._errors = inner, errors

    def read(self, n: int = -1) -> bytes:
        try:
            return self._inner.read(n)
        except self._errors as e:
            raise InvalidArgument(f"invalid compressed data: {e}") from None




def open_decompressed(f: BinaryIO) -> BinaryIO:
    """Sniff gzip / zstd / plain and return a stream of the uncompressed bytes."""
    head = read_upto(f, 4)
    src = _Prefixed(head, f)
    if head.startswith(GZIP_MAGIC):
        return _Guard(_Gzip(src))  # type: ignore[return-value]
    if head == ZSTD_MAGIC:
        return _Guard(_Zstd(src))  # type: ignore[return-value]
    return src  # type: ignore[return-value]


def decompress_stream(f: BinaryIO) -> BinaryIO:
    """As ``open_decompressed``, and bzip2 and xz too: a tar as a client may send it (pkg/archive
    DecompressStream, for ``PUT /containers/{id}/archive``)."""
    head = read_upto(f, 6)
    src = _Prefixed(head, f)
    if head.startswith(BZIP2_MAGIC):
        return _Guard(bz2.BZ2File(src), _BZIP2_XZ_ERRORS)  # type: ignore[return-value]
    if head.startswith(XZ_MAGIC):
        return _Guard(lzma.LZMAFile(src), _BZIP2_XZ_ERRORS)  # type: ignore[return-value]
    return open_decompressed(src)


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
    with open(tar_path, "rb") as f:
        return apply_layer_stream(open_decompressed(f), dest)


def apply_layer_stream(stream: BinaryIO, dest: str) -> int:
    """As ``apply_layer``, from an uncompressed tar stream (read to its end)."""
    root = os.open(dest, DIR_FLAGS)
    ex = _LayerExtractor(root)
    try:
        ex.run(stream)
    finally:
        os.close(root)
    while stream.read(_CHUNK):  # the padding after the end-of-archive blocks is part of the diff ID
        pass
    return ex.size


class HashingTee(_Reader):
    """Reads ``src``, hashing (sha256) and copying every byte to ``out`` on the way."""

    def __init__(self, src: BinaryIO, out: BinaryIO) -> None:
        self._src, self._out = src, out
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return self.readall()
        data = self._src.read(n)
        if data:
            self.hash.update(data)
            self._out.write(data)
            self.size += len(data)
        return data

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class _LayerExtractor(TreeExtractor):
    """A layer's rules: names relative, the root's own entry applied, whiteouts made for overlayfs,
    only regular files, directories, symlinks, hardlinks and FIFOs."""

    XATTR_SKIP = "trusted.overlay."  # only whiteouts may steer overlayfs
    SYMLINK_ESCAPES = "escapes the layer root"
    LINK_OUTSIDE = "is outside the layer root"
    LINK_MISSING = "not found in this layer"

    def top(self, m: tarfile.TarInfo) -> None:
        if not m.isdir():
            raise InvalidArgument(f"invalid tar entry {m.name!r}: root is not a directory")
        self.set_attrs(self.root, m)
        self._dir_times[()] = member_times(m)

    def before_parent(self, parts: tuple[str, ...], m: tarfile.TarInfo) -> bool:
        if not parts[-1].startswith(WHITEOUT):
            return False
        self._whiteout(parts, m)
        return True

    def before_file(self, tar: tarfile.TarFile, parts: tuple[str, ...], m: tarfile.TarInfo) -> bool:
        if m.type not in (tarfile.SYMTYPE, tarfile.FIFOTYPE) and not m.isreg():
            kind = "device node" if m.ischr() or m.isblk() else f"unsupported type {m.type!r}"
            raise InvalidArgument(f"invalid tar entry {m.name!r}: {kind} not allowed in a layer")
        return False

    def link_target_refused(self, st: os.stat_result) -> str:
        ok = stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) or stat.S_ISFIFO(st.st_mode)
        return "" if ok else "is not a file"

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
