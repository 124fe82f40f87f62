"""The build context as docker CLI 28 sends it: a tar streamed in chunks, headers written as Go writes them,
.dockerignore applied (``berth.util.dockerignore``), the Dockerfile added when it comes from stdin or from outside."""
from __future__ import annotations

import os
import stat as st_
import sys
import time

from berth.cli.common import Exit
from berth.cli.local_tar import file_body
from berth.util.reading import read_upto

_CHUNK = 1 << 20
_BLOCK = 512


def _fail(message: str) -> Exit:
    print(message, file=sys.stderr)
    return Exit(1)



_REG, _LNK, _SYM, _CHR, _BLK, _DIR, _FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"


def _ascii(b: bytes) -> bool:
    return all(0 < c < 0x80 for c in b)


def _to_ascii(b: bytes) -> bytes:
    return bytes(c for c in b if 0 < c < 0x80)


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """Go's ``splitUSTARPath``: a long ASCII name as (prefix, name) for the USTAR fields."""
    length = len(name)
    if length <= 100 or not _ascii(name):
        return None
    if length > 156:
        length = 156
    elif name[length - 1:length] == b"/":
        length -= 1
    i = name.rfind(b"/", 0, length)
    if i <= 0 or len(name) - i - 1 > 100 or len(name) - i - 1 == 0 or i > 155:
        return None
    return name[:i], name[i + 1:]


def _put_str(blk: bytearray, off: int, size: int, s: bytes) -> None:
    """Go's ``formatter.formatString``."""
    blk[off:off + min(len(s), size)] = s[:size]
    if len(s) < size:
        blk[off + len(s)] = 0
    if len(s) > size and blk[off + size - 1] == ord("/"):
        n = len(s[:size - 1].rstrip(b"/"))
        blk[off + n] = 0


def _put_octal(blk: bytearray, off: int, size: int, x: int) -> None:
    """Go's ``formatter.formatOctal`` (0 when the value does not fit)."""
    if not 0 <= x < 8 ** (size - 1):
        x = 0
    _put_str(blk, off, size, b"%0*o" % (size - 1, x))


def _finish(blk: bytearray) -> bytes:
    blk[257:265] = b"ustar\x0000"
    blk[148:156] = b" " * 8
    blk[148:156] = b"%06o\x00 " % sum(blk)
    return bytes(blk)


def _pax_record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode() + b"=" + value + b"\n"
    n = len(body) + len(str(len(body)))
    if len(str(n)) != len(str(len(body))):
        n += 1
    return str(n).encode() + body


def tar_header(name: str, kind: bytes, mode: int, size: int, mtime: float, uid: int = 0, gid: int = 0,
               linkname: str = "", devmajor: int = 0, devminor: int = 0) -> bytes:
    """A tar header exactly as Go's archive/tar writes the docker CLI's (Format PAX, no user names):
    USTAR when the fields fit (a long name split into prefix and name), else PAX records first."""
    bname, blink, mt = os.fsencode(name), os.fsencode(linkname), int(mtime)
    pax: dict[str, bytes] = {}
    ustar = True
    if not _ascii(bname) or len(bname) > 100:
        pax["path"] = bname
        ustar = ustar and _split_ustar(bname) is not None
    if not _ascii(blink) or len(blink) > 100:
        pax["linkpath"], ustar = blink, False
    for key, value, width in (("uid", uid, 8), ("gid", gid, 8), ("size", size, 12), ("mtime", mt, 12)):
        if not 0 <= value < 8 ** (width - 1):
            pax[key], ustar = str(value).encode(), False
    blk = bytearray(_BLOCK)
    prefix = b""
    if ustar:
        split = _split_ustar(bname)
        if split:
            prefix, bname = split
    else:
        bname, blink = _to_ascii(bname), _to_ascii(blink)
    blk[156:157] = kind
    _put_str(blk, 0, 100, bname)
    _put_str(blk, 157, 100, blink)
    for off, width, value in ((100, 8, mode), (108, 8, uid), (116, 8, gid), (124, 12, size), (136, 12, mt),
                              (329, 8, devmajor), (337, 8, devminor)):
        _put_octal(blk, off, width, value)
    _put_str(blk, 265, 32, b"")
    _put_str(blk, 297, 32, b"")
    _put_str(blk, 345, 155, prefix)
    main = _finish(blk)
    if ustar:
        return main
    data = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
    real = os.fsencode(name)
    head, _, tail = real.rpartition(b"/")
    pax_name = _to_ascii(b"/".join(p for p in (head, b"PaxHeaders.0", tail) if p))[:100].rstrip(b"/")
    hblk = bytearray(_BLOCK)
    hblk[156:157] = b"x"
    _put_str(hblk, 0, 100, pax_name)
    for off, width, value in ((100, 8, 0), (108, 8, 0), (116, 8, 0), (124, 12, len(data)), (136, 12, 0)):
        _put_octal(hblk, off, width, value)
    return _finish(hblk) + data + b"\0" * (-len(data) % _BLOCK) + main


def _file_entry(name: str, data: bytes, mode: int = 0o600, mtime: float | None = None, uid: int = 0,
                gid: int = 0) -> bytes:
    header = tar_header(name, _REG, mode, len(data), time.time() if mtime is None else mtime, uid, gid)
    return header + data + b"\0" * (-len(data) % _BLOCK)


class ContextTar:
    """The tar of a context directory, in chunks: the paths ``files`` (from ``context_files``), each as
    Docker's ``addTarFile`` writes it (uid/gid 0, no user names, mtime in seconds, hard links as
    links), then ``extra`` entries. ``dockerignore`` replaces the content of ``.dockerignore``."""

    def __init__(self, root: str, files: list[str], extra: list[bytes] = (), dockerignore: bytes | None = None):
        self.root, self.files, self.extra, self.dockerignore = root, files, list(extra), dockerignore
        self.sent = 0

    def _entry(self, rel: str, links: dict, buf: bytearray):
        path = os.path.join(self.root, rel)
        try:
            st = os.lstat(path)
        except OSError:
            return  # gone since the walk: Docker logs it and goes on
        mode, perm, mtime = st.st_mode, st.st_mode & 0o7777, st.st_mtime
        if rel == ".dockerignore" and self.dockerignore is not None:
            buf += _file_entry(rel, self.dockerignore, perm, mtime)
        elif st_.S_ISDIR(mode):
            buf += tar_header(rel + "/", _DIR, perm, 0, mtime)
        elif st_.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1:
                if key in links:
                    buf += tar_header(rel, _LNK, perm, 0, mtime, linkname=links[key])
                    return
                links[key] = rel
            try:
                f = open(path, "rb")
            except OSError:
                return
            with f:
                size = os.fstat(f.fileno()).st_size
                buf += tar_header(rel, _REG, perm, size, mtime)
                yield from file_body(f, size, buf)
        elif st_.S_ISLNK(mode):
            try:
                target = os.readlink(path)
            except OSError:
                return
            buf += tar_header(rel, _SYM, perm, 0, mtime, linkname=target)
        elif st_.S_ISFIFO(mode):
            buf += tar_header(rel, _FIFO, perm, 0, mtime)
        elif st_.S_ISCHR(mode) or st_.S_ISBLK(mode):
            buf += tar_header(rel, _CHR if st_.S_ISCHR(mode) else _BLK, perm, 0, mtime,
                              devmajor=os.major(st.st_rdev), devminor=os.minor(st.st_rdev))
        # sockets: "archive/tar: sockets not supported", left out as Docker does

    def __iter__(self):
        buf = bytearray()
        links: dict = {}
        for rel in self.files:
            for chunk in self._entry(rel, links, buf):
                self.sent += len(chunk)
                yield chunk
            if len(buf) >= _CHUNK:
                self.sent += len(buf)
                yield bytes(buf)
                buf.clear()
        for entry in self.extra:
            buf += entry
        buf += b"\0" * (2 * _BLOCK)
        self.sent += len(buf)
        yield bytes(buf)


class Counted:
    """A byte stream in chunks, counting what went by."""

    def __init__(self, chunks) -> None:
        self.chunks, self.sent = chunks, 0

    def __iter__(self):
        for c in self.chunks:
            self.sent += len(c)
            yield c


def _read_chunks(head: bytes, src):
    if head:
        yield head
    while data := src.read(_CHUNK):
        yield data


def is_archive(head: bytes) -> bool:
    """docker/cli's ``IsArchive`` on the first 1024 bytes: compressed (gzip, bzip2, xz, zstd) or a
    tar whose first header is sound (its checksum)."""
    if head.startswith((b"\x1f\x8b\x08", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")):
        return True
    if len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50:
        return True  # a zstd skippable frame
    if len(head) < _BLOCK:
        return False
    block = head[:_BLOCK]
    if block == b"\0" * _BLOCK:
        return False
    raw = block[148:156].strip(b" \0")
    try:
        stored = int(raw, 8) if raw else -1
    except ValueError:
        return False
    blanked = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(blanked)
    signed = sum(b - 256 if b > 127 else b for b in blanked)
    return stored in (unsigned, signed)


def _random_dockerfile_name() -> str:
    return ".dockerfile." + os.urandom(10).hex()


def _stdin_dockerfile_tar(data: bytes):
    """A Dockerfile from stdin as docker wraps it: a tar of one file ``Dockerfile`` (from a temporary
    file: the user's ids and umask)."""
    umask = os.umask(0)
    os.umask(umask)
    entry = _file_entry("Dockerfile", data, 0o666 & ~umask, time.time(), os.getuid(), os.getgid())
    return Counted([entry + b"\0" * (2 * _BLOCK)])


def _add_dockerfile_to_tar(src, dockerfile: bytes):
    """A tar stream (any compression) with the Dockerfile added under a random name, which
    .dockerignore then names (``AddDockerfileToBuildContext``); the tar is sent uncompressed."""
    import tarfile
    name = _random_dockerfile_name()
    tail = ("\n" + name + "\n").encode()

    def chunks():
        seen_ignore = False
        try:
            with tarfile.open(fileobj=src, mode="r|*") as tar:
                for m in tar:
                    tar.members.clear()
                    data = tar.extractfile(m).read() if m.isreg() else b""
                    if m.name == ".dockerignore" and m.isreg():
                        seen_ignore, data = True, data + tail
                    entry = m.name + "/" if m.isdir() and not m.name.endswith("/") else m.name
                    yield tar_header(entry, m.type, m.mode, len(data), m.mtime, m.uid, m.gid, m.linkname,
                                     m.devmajor, m.devminor) + data + b"\0" * (-len(data) % _BLOCK)
        except tarfile.TarError as e:
            raise _fail(f"unable to prepare context: {e}") from None
        yield _file_entry(name, dockerfile)
        if not seen_ignore:
            yield _file_entry(".dockerignore", b".dockerignore" + tail)
        yield b"\0" * (2 * _BLOCK)
    return Counted(chunks()), name


class Context:
    """What goes to POST /build: the body (chunks, counting bytes) and the ``dockerfile`` parameter."""

    def __init__(self, body, dockerfile: str) -> None:
        self.body, self.dockerfile = body, dockerfile


def _go_errno(e: OSError) -> str:
    s = e.strerror or str(e)
    return s[:1].lower() + s[1:]


def _dir_context(root: str, dockerfile_flag: str | None, stdin) -> Context:
    """docker/cli's GetContextFromLocalDir, ReadDockerignore, ValidateContextDirectory,
    TrimBuildFilesFromExcludes and TarWithOptions (ChownOpts 0:0), then AddDockerfileToBuildContext for
    a Dockerfile from stdin or from outside the context."""
    from berth.util import dockerignore as ignore
    from_stdin = dockerfile_flag == "-"
    dockerfile_bytes = None
    if from_stdin:
        rel, given = "-", "-"
    else:
        given = os.path.abspath(dockerfile_flag) if dockerfile_flag else \
            os.path.join(root, ignore.default_dockerfile(root))
        try:
            real = os.path.realpath(given, strict=True)
        except OSError as e:
            raise _fail("unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                        f"lstat {e.filename or given}: {_go_errno(e)}") from None
        rel = os.path.relpath(real, root)
        if rel.startswith("../"):
            try:
                with open(dockerfile_flag or given, "rb") as f:
                    dockerfile_bytes = f.read()
            except OSError as e:
                raise _fail(f"unable to open Dockerfile: open {dockerfile_flag}: {_go_errno(e)}") from None
    ignore_path = ignore.ignore_file_for(root, "-" if from_stdin else given)
    try:
        patterns = ignore.read_ignore_file(ignore_path)
    except OSError as e:
        raise _fail(f"error reading .dockerignore: {_go_errno(e)}") from None
    try:
        ignore.Matcher(patterns)
    except ValueError as e:
        raise _fail(f"error checking context: {e}") from None

    def cant_read(path: str, err: OSError) -> None:
        if isinstance(err, PermissionError):
            raise _fail(f"error checking context: can't stat '{path}'")

    excludes = ignore.keep_build_files(patterns, rel, from_stdin)
    files = list(ignore.context_files(root, excludes, onerror=cant_read))
    for rel_path in files:
        path = os.path.join(root, rel_path)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if st_.S_ISREG(st.st_mode) and not os.access(path, os.R_OK):
            raise _fail(f"error checking context: no permission to read from '{path}'")
    if from_stdin:
        dockerfile_bytes = stdin.read()
    if dockerfile_bytes is None:
        return Context(ContextTar(root, files), rel)
    name = _random_dockerfile_name()
    tail = ("\n" + name + "\n").encode()
    extra = [_file_entry(name, dockerfile_bytes)]
    modified = None
    if ".dockerignore" in files:  # its entry gets the name appended (a file, whatever it was)
        try:
            with open(os.path.join(root, ".dockerignore"), "rb") as f:
                modified = f.read() + tail
        except OSError:
            modified = tail
    else:
        extra.append(_file_entry(".dockerignore", b".dockerignore" + tail))
    return Context(ContextTar(root, files, extra, modified), name)


def _looks_remote(ctx: str) -> bool:
    return ctx.startswith(("http://", "https://", "git://", "git@", "github.com/"))


def prepare_context(context: str, dockerfile_flag: str | None, stdin) -> Context:
    """The build context named on the command line, as docker's runBuild prepares it."""
    if dockerfile_flag == "-" and context == "-":
        raise _fail("invalid argument: can't use stdin for both build context and dockerfile")
    if context == "-":
        head = read_upto(stdin, 2 * _BLOCK)
        if is_archive(head):
            return Context(Counted(_read_chunks(head, stdin)), dockerfile_flag or "")
        if dockerfile_flag:
            raise _fail("unable to prepare context: ambiguous Dockerfile source: both stdin and flag "
                        "correspond to Dockerfiles")
        return Context(_stdin_dockerfile_tar(head + stdin.read()), "Dockerfile")
    if not os.path.exists(context):
        from berth.types.units import go_quote
        if _looks_remote(context):
            raise _fail("unable to prepare context: berth build takes a directory, a tar file or -; "
                        "download or clone a remote context first")
        raise _fail(f"unable to prepare context: path {go_quote(context)} not found")
    root = os.path.realpath(os.path.abspath(context))
    if os.path.isdir(root):
        return _dir_context(root, dockerfile_flag, stdin)
    # a tar file (plain or compressed), which berth takes as docker takes one on stdin
    try:
        src = open(root, "rb")
    except OSError as e:
        raise _fail(f"unable to prepare context: open {root}: {_go_errno(e)}") from None
    head = read_upto(src, 2 * _BLOCK)
    if not is_archive(head):
        src.close()
        raise _fail(f"unable to prepare context: context must be a directory: {root}")
    if dockerfile_flag == "-":
        src.seek(0)
        body, name = _add_dockerfile_to_tar(src, stdin.read())
        return Context(body, name)
    return Context(Counted(_read_chunks(head, src)), dockerfile_flag or "")
