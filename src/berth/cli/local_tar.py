"""Tars on this machine, for ``cp`` and ``export``: a local file or directory as docker cp uploads it
(``tar_local``), a tar from a container extracted into a local directory (``extract_local``), a tar
answer written out as it comes (``copy_body``, ``body_to_stdout``).

Extraction never writes through a symlink and never leaves the destination directory: the lexical
path checks and the directory walk are ``berth.util.tar``'s; the rules are Docker's Untar with
NoOverwriteDirNonDir, as the docker CLI applies it. Heavy modules load when used.
"""
from __future__ import annotations

import os
import sys

from berth.types.archive_paths import rebase, split_dir_entry

_CHUNK = 1 << 20
_BLOCK = 512


class CopyError(Exception):
    """A copy that cannot be done; the message is for the user."""


def copy_body(resp, out) -> None:
    """The body of ``resp`` to the binary file ``out``, as it comes."""
    while data := resp.raw.read1(_CHUNK):
        out.write(data)


def body_to_stdout(resp) -> None:
    out = sys.stdout.buffer
    copy_body(resp, out)
    out.flush()
    resp.close()


def file_body(f, size: int, buf: bytearray):
    """A tar member's data: ``size`` bytes of ``f`` (zeros if it shrank meanwhile) and the block padding,
    appended to ``buf``; full chunks are yielded (and ``buf`` emptied) as they fill."""
    left = size
    while left > 0:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            break
        buf += chunk
        left -= len(chunk)
        if len(buf) >= _CHUNK:
            yield bytes(buf)
            buf.clear()
    buf += b"\0" * (left + (-size % _BLOCK))


def _header(ti) -> bytes:
    import tarfile
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_local(src_path: str, rebase_to: str, renames: list[tuple[str, str]], keep_ids: bool):
    """A tar of the local file or directory ``src_path`` as docker cp uploads it, in chunks.

    ``rebase_to`` names the top entry in the tar instead of the path's own name ("" to keep it).
    """
    import stat as st_
    import tarfile
    source_dir, source_base = split_dir_entry(src_path)
    if rebase_to:
        renames = [(source_base, rebase_to)] + renames
    links: dict[tuple[int, int], str] = {}
    buf = bytearray()

    def info(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(rebase(name, renames))
        ti.type, ti.mode, ti.mtime = kind, st.st_mode & 0o7777, int(st.st_mtime)
        ti.uid, ti.gid = (st.st_uid, st.st_gid) if keep_ids else (0, 0)
        ti.uname = ti.gname = ""
        return ti

    def walk(path: str, name: str):
        nonlocal buf
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        mode = st.st_mode
        if st_.S_ISDIR(mode):
            buf += _header(info(name, st, tarfile.DIRTYPE))
            for child in sorted(os.listdir(path)):
                yield from walk(os.path.join(path, child), name.rstrip("/") + "/" + child)
        elif st_.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in links:
                ti = info(name, st, tarfile.LNKTYPE)
                ti.linkname = rebase(links[key], renames)
                buf += _header(ti)
                return
            if st.st_nlink > 1:
                links[key] = name
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                ti = info(name, st, tarfile.REGTYPE)
                ti.size = size
                buf += _header(ti)
                yield from file_body(f, size, buf)
        elif st_.S_ISLNK(mode):
            ti = info(name, st, tarfile.SYMTYPE)
            ti.linkname = os.readlink(path)
            buf += _header(ti)
        elif st_.S_ISFIFO(mode):
            buf += _header(info(name, st, tarfile.FIFOTYPE))
        elif st_.S_ISCHR(mode) or st_.S_ISBLK(mode):
            ti = info(name, st, tarfile.CHRTYPE if st_.S_ISCHR(mode) else tarfile.BLKTYPE)
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            buf += _header(ti)
        if len(buf) >= _CHUNK:
            yield bytes(buf)
            buf = bytearray()

    def chunks():
        nonlocal buf
        yield from walk(os.path.join(source_dir, source_base), source_base)
        buf += b"\0" * (2 * _BLOCK)
        yield bytes(buf)

    return chunks()


def _clean_parts(name: str) -> tuple[str, ...]:
    from berth.errors import InvalidArgument
    from berth.util.tar import clean_link_target
    try:
        return clean_link_target(name)
    except InvalidArgument:
        raise CopyError(f"invalid tar entry {name!r}: it would be outside the destination directory") from None


def _open_parent(dest: int, parts: tuple[str, ...], name: str) -> int:
    """Directory ``parts`` under ``dest`` (created 0755 if missing), never through a symlink."""
    from berth.errors import InvalidArgument
    from berth.util.tar import walk_dirs
    try:
        return walk_dirs(dest, parts, name, create=True)
    except InvalidArgument as e:
        raise CopyError(str(e)) from None


def extract_local(stream, dest_dir: str, renames: list[tuple[str, str]], keep_ids: bool) -> None:
    """Extract a tar from a container into ``dest_dir`` (Docker's Untar with NoOverwriteDirNonDir)."""
    import shutil
    import stat as st_
    import tarfile

    from berth.util.tar import DIR_FLAGS, symlink_escapes
    dest = os.open(dest_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    dir_times: list[tuple[tuple[str, ...], float]] = []
    chown = keep_ids and os.geteuid() == 0
    try:
        try:
            tar = tarfile.open(fileobj=stream, mode="r|")
        except tarfile.TarError as e:
            raise CopyError(f"invalid tar from the daemon: {e}") from None
        with tar:
            for m in tar:
                tar.members.clear()
                name = rebase(m.name, renames)
                parts = _clean_parts(name.lstrip("/"))
                if not parts:
                    continue
                if m.ischr() or m.isblk():
                    continue  # device nodes are not made on this machine
                pfd = _open_parent(dest, parts[:-1], m.name)
                try:
                    base = parts[-1]
                    shown = os.path.join(dest_dir, *parts)
                    try:
                        existing = os.lstat(base, dir_fd=pfd)
                    except FileNotFoundError:
                        existing = None
                    if existing is not None:
                        if st_.S_ISDIR(existing.st_mode) and not m.isdir():
                            raise CopyError(f'cannot overwrite directory "{shown}" with non-directory "{m.name}"')
                        if not st_.S_ISDIR(existing.st_mode) and m.isdir():
                            raise CopyError(f'cannot overwrite non-directory "{shown}" with directory "{m.name}"')
                        if not m.isdir():
                            os.unlink(base, dir_fd=pfd)
                    if m.isdir():
                        if existing is None:
                            os.mkdir(base, 0o700, dir_fd=pfd)
                        fd = os.open(base, DIR_FLAGS, dir_fd=pfd)
                        try:
                            if chown:
                                os.fchown(fd, m.uid, m.gid)
                            os.fchmod(fd, m.mode & 0o7777)
                        finally:
                            os.close(fd)
                        dir_times.append((parts, m.mtime))
                    elif m.isreg():
                        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                                     dir_fd=pfd)
                        with open(fd, "wb") as out:
                            src = tar.extractfile(m)
                            if src is not None:
                                shutil.copyfileobj(src, out, _CHUNK)
                            out.flush()
                            if chown:
                                os.fchown(fd, m.uid, m.gid)
                            os.fchmod(fd, m.mode & 0o7777)
                            os.utime(fd, (m.mtime, m.mtime))
                    elif m.issym():
                        target = m.linkname
                        if symlink_escapes(parts, target):
                            raise CopyError(f"invalid symlink {shown!r} -> {target!r}: it points outside "
                                            "the destination directory")
                        os.symlink(target, base, dir_fd=pfd)
                        if chown:
                            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
                        os.utime(base, (m.mtime, m.mtime), dir_fd=pfd, follow_symlinks=False)
                    elif m.islnk():
                        target = _clean_parts(rebase(m.linkname, renames).lstrip("/"))
                        if not target:
                            raise CopyError(f"invalid hardlink {m.name!r} -> {m.linkname!r}")
                        tfd = _open_parent(dest, target[:-1], m.name)
                        try:
                            os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
                        finally:
                            os.close(tfd)
                    elif m.isfifo():
                        os.mkfifo(base, m.mode & 0o7777, dir_fd=pfd)
                finally:
                    os.close(pfd)
        for parts, mtime in reversed(dir_times):
            try:
                fd = _open_parent(dest, parts, "/".join(parts))
            except CopyError:
                continue
            try:
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)
    except tarfile.TarError as e:
        raise CopyError(f"invalid tar from the daemon: {e}") from None
    finally:
        os.close(dest)
