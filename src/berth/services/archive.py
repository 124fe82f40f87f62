"""The archive API (``docker cp``): HEAD (stat), GET (a tar of a path) and PUT (a tar unpacked into a directory)
of ``/containers/{id}/archive``, with Docker's ContainerPathStat and Untar rules."""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone

from berth.errors import Forbidden, InvalidArgument, NotFound
from berth.image.layers import decompress_stream
from berth.runtime.spec import parse_user
from berth.services.byte_streams import BlockingReader, ByteStream, in_thread
from berth.services.container_root import ContainerRoots, open_dir, read_in_root, resolve_parts
from berth.services.tree_tar import TarOut, TreeWriter
from berth.types.archive_paths import go_base, go_clean, go_mode, preserve_trailing, split_dir_entry
from berth.types.container import Container
from berth.util.tar import DIR_FLAGS, TreeExtractor, clean_path, lstat_at, read_member

_CHUNK = 1 << 20
_KERNEL_DIRS = ("proc", "sys")


def rfc3339_ns(ns: int) -> str:
    """A time as Go marshals it (RFC3339 with nanoseconds, trailing zeros trimmed), in UTC."""
    base = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return base + (f".{frac}" if frac else "") + "Z"


class Untar(TreeExtractor):
    """Extracts a tar into an existing directory of a container's root (Docker's Untar rules).

    Member names may not leave the directory, no member is written through a
    symlink (existing or extracted), relative symlink targets may not leave the
    directory, and device nodes are refused. ``dest_parts`` is where ``dest``
    is below the root; ``owner`` replaces the tar's owners (copyUIDGID);
    ``subst`` maps root-relative paths to the host files bind-mounted there,
    which receive the content of a regular file.
    """

    def __init__(self, dest: int, dest_parts: tuple[str, ...], no_overwrite_dir_non_dir: bool,
                 owner: tuple[int, int] | None, subst: dict[tuple[str, ...], str]) -> None:
        super().__init__(dest)
        self.dest_parts = dest_parts
        self.no_overwrite = no_overwrite_dir_non_dir
        self._owner = owner
        self.subst = subst

    def member_parts(self, m: tarfile.TarInfo) -> tuple[str, ...]:
        return clean_path(m.name.lstrip("/"))

    def before_parent(self, parts: tuple[str, ...], m: tarfile.TarInfo) -> bool:
        if m.ischr() or m.isblk():
            raise InvalidArgument(f"invalid tar entry {m.name!r}: device nodes cannot be copied into a container")
        if not (m.isdir() or m.isreg() or m.issym() or m.islnk() or m.isfifo()):
            raise InvalidArgument(f"invalid tar entry {m.name!r}: unsupported type {m.type!r}")
        return False

    def check_existing(self, parts: tuple[str, ...], m: tarfile.TarInfo, existing: os.stat_result | None) -> None:
        if existing is None or not self.no_overwrite:
            return
        shown = "/" + "/".join(self.dest_parts + parts)
        if stat.S_ISDIR(existing.st_mode) and not m.isdir():
            raise InvalidArgument(f'cannot overwrite directory "{shown}" with non-directory "{m.name}"')
        if not stat.S_ISDIR(existing.st_mode) and m.isdir():
            raise InvalidArgument(f'cannot overwrite non-directory "{shown}" with directory "{m.name}"')

    def before_file(self, tar: tarfile.TarFile, parts: tuple[str, ...], m: tarfile.TarInfo) -> bool:
        """A file the container has bind-mounted from the host: its content goes to the host file."""
        host = self.subst.get(self.dest_parts + parts)
        if host is None or not m.isreg():
            return False
        fd = os.open(host, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(fd, "wb") as out:
            shutil.copyfileobj(read_member(tar, m), out, _CHUNK)
        return True

    def owner(self, m: tarfile.TarInfo) -> tuple[int, int]:
        return self._owner if self._owner is not None else (m.uid, m.gid)


class ArchiveOps(ContainerRoots):
    """``stat``, ``archive`` and ``extract``: the archive API of ``FilesystemService``."""

    def _locate(self, root: str, root_fd: int, path: str, ref: str, subst: dict[tuple[str, ...], str]):
        """Docker's ResolvePath + StatPath.

        Returns (stat JSON, parent parts, entry name or None for the root, lstat, the tar's top name).
        """
        if not path:
            raise InvalidArgument("no path specified")
        not_found = NotFound(f"Could not find the file {path} in container {ref}")
        abs_path = preserve_trailing(go_clean("/" + path), path)
        dir_part, base = abs_path.rsplit("/", 1)
        rel_dir = resolve_parts(root, dir_part + "/")
        if base in ("", "."):
            parent, name = (rel_dir[:-1], rel_dir[-1]) if rel_dir else ((), None)
        else:
            parent, name = rel_dir, base
        try:
            pfd = open_dir(root_fd, parent)
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
            rel = resolve_parts(root, abs_path)
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
        root, path, mount = self._place(c, root, path)
        root_fd = os.open(root, DIR_FLAGS)
        try:
            return self._locate(root, root_fd, path, ref, {} if mount else self._subst(c.id))
        finally:
            os.close(root_fd)

    @contextlib.asynccontextmanager
    async def archive(self, ref: str, path: str) -> AsyncIterator[tuple[dict, ByteStream]]:
        """The stat of ``path`` and a tar of it, streamed while the block runs."""
        async with self._root(ref) as (c, root):
            info, parent, name, st, tar_name = await asyncio.to_thread(self._stat_sync, c, root, path, ref)
            root, _, mount = self._place(c, root, path)
            subst = {} if mount else self._subst(c.id)

            def produce(write: Callable[[bytes], None]) -> None:
                out = TarOut(write)
                writer = TreeWriter(out, subst)
                root_fd = os.open(root, DIR_FLAGS)
                try:
                    if name is None:
                        writer.tree(root_fd, tar_name, (), os.fstat(root_fd))
                    else:
                        pfd = open_dir(root_fd, parent)
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
        container_root = root
        root, inner, mount = self._place(c, root, path)
        parts = resolve_parts(root, "/" + inner)
        not_found = NotFound(f"Could not find the file {path} in container {ref}")
        root_fd = os.open(root, DIR_FLAGS)
        try:
            try:
                pfd = open_dir(root_fd, parts[:-1])
            except OSError:
                raise not_found from None
            try:
                st = os.fstat(pfd) if not parts else lstat_at(pfd, parts[-1])
                if st is None:
                    raise not_found
                if not stat.S_ISDIR(st.st_mode):
                    raise InvalidArgument("extraction point is not a directory")
                fd = os.dup(pfd) if not parts else os.open(parts[-1], DIR_FLAGS, dir_fd=pfd)
            finally:
                os.close(pfd)
            try:
                if mount is None and parts and parts[0] in _KERNEL_DIRS:
                    raise Forbidden(f"cannot copy into {path}: /{parts[0]} is a kernel filesystem in the container")
                if mount is None and c.spec.readonly_rootfs or mount is not None and not mount.get("rw", True):
                    raise Forbidden("container rootfs is marked read-only" if mount is None
                                    else f"mounted volume is marked read-only: {mount['destination']}")
                owner = None
                if copy_ids and c.spec.user:
                    croot_fd = os.open(container_root, DIR_FLAGS)
                    try:
                        u = parse_user(c.spec.user, read_in_root(container_root, croot_fd, "/etc/passwd"),
                                       read_in_root(container_root, croot_fd, "/etc/group"))
                    finally:
                        os.close(croot_fd)
                    owner = (u.uid, u.gid)
                Untar(fd, parts, no_overwrite, owner, {} if mount else self._subst(c.id)).run(decompress_stream(body))
            finally:
                os.close(fd)
        finally:
            os.close(root_fd)
