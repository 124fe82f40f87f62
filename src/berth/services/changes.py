"""A container's changes as a service: ``diff`` (the change list), ``export`` (a tar of its root) and
``commit`` (a new image of its image plus its changes, with the config merged as moby merges it)."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable

from berth.errors import BerthError, InvalidArgument, NotFound
from berth.runtime.logs import now_rfc3339
from berth.services.byte_streams import ByteStream
from berth.services.container_root import ContainerRoots
from berth.services.images import apply_change
from berth.services.tree_tar import TarOut, TreeWriter
from berth.services.upper_scan import MOUNT_DIRS, Entry, Lowers, changes_of, prune_for_layer, scan_upper, write_layer
from berth.types import reference
from berth.types.container import Container
from berth.types.image import ImageConfig
from berth.util.tar import DIR_FLAGS


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


class ChangesOps(ContainerRoots):
    """``changes``, ``export`` and ``commit``: a container's own changes, for ``FilesystemService``."""

    def _upper(self, c: Container) -> str:
        return os.path.join(self.containers.dir(c.id), "upper")

    def _scan(self, c: Container) -> list[Entry]:
        lowers = Lowers([self.containers.snapshots.path(x) for x in reversed(self.containers.index.chain_ids(c.id))])
        skip = set(MOUNT_DIRS) | {k.strip("/") for k in getattr(c.spec, "tmpfs", {}) or {}}
        fd = os.open(self._upper(c), DIR_FLAGS)
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
                root_fd = os.open(root, DIR_FLAGS)
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
            upper_fd = os.open(self._upper(c), DIR_FLAGS)
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
