"""A container's root filesystem, reached safely by the file services.

Paths are resolved inside the container's root with symlinks followed
relative to that root (``resolve_parts``). The files are then reached one
component at a time through directory fds opened with ``O_NOFOLLOW``
(``open_dir``), so a container that swaps a directory for a symlink during a
copy makes the copy fail, never read or write outside its root.

A stopped container's root is mounted for the call and unmounted after it,
unless it was mounted already or the container was started meanwhile
(decisions taken under the container's lifecycle lock): ``ContainerRoots``.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import stat
from collections.abc import AsyncIterator

from berth.errors import InvalidArgument
from berth.services.containers import ContainerService
from berth.services.images import ImageService
from berth.services.lifecycle import Lifecycle
from berth.types.container import Container
from berth.util.fs import resolve_in_root
from berth.util.tar import FILE_FLAGS, walk_dirs


def _rel_parts(root: str, host_path: str) -> tuple[str, ...]:
    rel = os.path.relpath(host_path, root)
    return () if rel == "." else tuple(rel.split("/"))


def resolve_parts(root: str, path: str) -> tuple[str, ...]:
    """``path`` resolved in the container's root (symlinks followed there), as parts below the root."""
    try:
        return _rel_parts(root, resolve_in_root(root, path))
    except OSError as e:  # a symlink loop
        raise InvalidArgument(f"{path}: {e.strerror or e}") from None


def open_dir(root_fd: int, parts: tuple[str, ...]) -> int:
    """Directory ``parts`` under ``root_fd``, never through a symlink (OSError otherwise)."""
    return walk_dirs(root_fd, parts, None, create=False)


def read_in_root(root: str, root_fd: int, path: str, limit: int = 1 << 20) -> str:
    """A small text file of the container ("" if absent), read without following a symlink out."""
    parts = resolve_parts(root, path)
    if not parts:
        return ""
    try:
        pfd = open_dir(root_fd, parts[:-1])
    except OSError:
        return ""
    try:
        fd = os.open(parts[-1], FILE_FLAGS, dir_fd=pfd)
    except OSError:
        return ""
    finally:
        os.close(pfd)
    try:
        return os.read(fd, limit).decode(errors="replace") if stat.S_ISREG(os.fstat(fd).st_mode) else ""
    finally:
        os.close(fd)


class ContainerRoots:
    """What the file services share: the services they use and the mounts they hold."""

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

    def _place(self, c: Container, root: str, path: str) -> tuple[str, str, dict | None]:
        """Where ``path`` lives on the host: (directory, path below it, the mount point or None).

        A path at or below a volume's or bind's destination is reached in that mount's host directory
        (the container's root on the host does not show its mounts)."""
        norm = posixpath.normpath("/" + path.lstrip("/"))
        best = None
        for m in c.spec.mount_points:
            d = m.get("destination", "")
            if m.get("type") != "tmpfs" and (norm == d or norm.startswith(d.rstrip("/") + "/")):
                if best is None or len(d) > len(best["destination"]):
                    best = m
        if best is None:
            return root, path, None
        host = best["source"] if best["type"] == "bind" else self.containers.volumes.path(best["source"])
        if best.get("subpath"):
            host = resolve_in_root(host, best["subpath"])
        rest = norm[len(best["destination"].rstrip("/")):] or "/"
        return host, rest + ("/" if path.endswith("/") and rest != "/" else ""), best

    def _subst(self, cid: str) -> dict[tuple[str, ...], str]:
        """The files a running container has bind-mounted from the host (/etc/hosts ...), by path below its root."""
        return {tuple(k.strip("/").split("/")): v for k, v in self.containers.host_files(cid).items()
                if os.path.isfile(v)}
