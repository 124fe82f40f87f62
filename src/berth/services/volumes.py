"""Volumes (the ``local`` driver): create, list, inspect, remove, prune, and what a container mounts.

A volume's data is ``<root>/<name>/_data``. With options (``type``, ``device``, ``o``) the local driver
mounts that over the data directory while running containers use the volume, as Docker's does.
"""
from __future__ import annotations

import asyncio
import os
import posixpath
import re
from collections.abc import Callable
import secrets
import time

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.runtime.logs import parse_time
from berth.store.containers import ContainerIndex
from berth.store.volumes import VolumeIndex
from berth.types import filters as flt
from berth.types.container import Container, ContainerSpec
from berth.types.mounts import check_destination, mount_point, parse_bind, parse_volumes_from
from berth.types.units import parse_timestamp
from berth.types.volume import ANONYMOUS_LABEL, MountPoint, Volume, check_volume_name
from berth.util import mount as mnt
from berth.util.copy import copy_tree
from berth.util.fs import dir_size, remove_tree, resolve_in_root
from berth.services.events import EventBus

LIST_FILTERS = {"dangling", "name", "label", "driver"}
PRUNE_FILTERS = {"label", "label!", "all", "until"}
_LOCAL_OPTIONS = {"type", "device", "o", "size"}


class VolumeService:
    def __init__(self, index: VolumeIndex, containers: ContainerIndex, data_root: str, events: EventBus) -> None:
        self.index = index
        self.containers = containers
        self.root = os.path.join(data_root, "volumes")
        self.events = events
        os.makedirs(self.root, mode=0o701, exist_ok=True)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name, "_data")

    # -- objects ----------------------------------------------------------------------
    def create(self, name: str = "", driver: str = "", options: dict | None = None,
               labels: dict | None = None) -> Volume:
        """Make a volume; an existing name gives back the existing volume, as Docker's local driver."""
        driver = driver or "local"
        if driver != "local":
            raise NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')
        options, labels = dict(options or {}), dict(labels or {})
        for key in options:
            if key not in _LOCAL_OPTIONS:
                raise InvalidArgument(f'create {name}: invalid option: "{key}"')
        if not name:  # moby: a volume made without a name is anonymous (and pruned by default)
            name = secrets.token_hex(32)
            labels[ANONYMOUS_LABEL] = ""
        try:
            check_volume_name(name)
        except InvalidArgument as e:
            raise InvalidArgument(f"create {name}: {e.message}") from None
        existing = self.index.get(name)
        if existing is not None:
            return existing
        v = Volume(name, driver, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), labels, options)
        os.makedirs(self.path(name), mode=0o755, exist_ok=True)  # data first: a row never lacks its directory
        if not self.index.add(v):
            return self.index.get(name) or v
        self.events.publish("volume", "create", name, {"driver": driver})
        return v

    def get(self, name: str) -> Volume:
        v = self.index.get(name)
        if v is None:
            raise NotFound(f"get {name}: no such volume")
        return v

    def users(self) -> dict[str, list[str]]:
        """Volume name → IDs of the containers (running or not) that mount it."""
        out: dict[str, list[str]] = {}
        for c in self.containers.all():
            for m in c.spec.mount_points:
                if m.get("type") == "volume":
                    out.setdefault(m["source"], []).append(c.id)
        return out

    def list(self, f: flt.Filters) -> list[Volume]:
        used = self.users()
        dangling = flt.boolean(f["dangling"], "dangling") if "dangling" in f else None  # checked up front
        try:
            names = [re.compile(x) for x in f.get("name", [])]  # moby matches names as regular expressions
        except re.error as e:
            raise InvalidArgument(f"invalid filter 'name': {e}") from None
        out = []
        for v in self.index.all():
            if dangling is not None and (v.name not in used) != dangling:
                continue
            if names and not any(r.search(v.name) for r in names):
                continue
            if "driver" in f and v.driver not in f["driver"]:
                continue
            if "label" in f and not flt.match_labels(f["label"], v.labels):
                continue
            out.append(v)
        return out

    def usage(self, v: Volume, used: dict[str, list[str]]) -> dict:
        return {"Size": dir_size(self.path(v.name)), "RefCount": len(used.get(v.name, []))}

    async def remove(self, name: str, force: bool = False) -> None:
        v = self.index.get(name)
        if v is None:
            if force:
                return
            raise NotFound(f"get {name}: no such volume")
        users = self.users().get(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        await asyncio.to_thread(self._remove_data, name)
        self.index.delete(name)
        self.events.publish("volume", "destroy", name, {"driver": v.driver})

    def _remove_data(self, name: str) -> None:
        mnt.unmount(self.path(name))
        remove_tree(os.path.join(self.root, name))

    async def prune(self, f: flt.Filters) -> tuple[list[str], int]:
        """Unused volumes: anonymous ones, or all with the ``all`` filter (API 1.42+)."""
        every = "all" in f and flt.boolean(f["all"], "all")
        used = self.users()
        gone, space = [], 0
        for v in self.index.all():
            if v.name in used or (not every and not v.anonymous) or v.options:  # moby never prunes those
                continue
            if "label" in f and not flt.match_labels(f["label"], v.labels):
                continue
            if "label!" in f and flt.match_labels(f["label!"], v.labels):
                continue
            if "until" in f and parse_time(v.created) >= parse_timestamp(f["until"][0], time.time()):
                continue
            space += dir_size(self.path(v.name))
            await self.remove(v.name)
            gone.append(v.name)
        return gone, space

    def remove_anonymous(self, c: Container) -> list[str]:
        """``rm -v`` / ``--rm``: the container's anonymous volumes that no other container uses."""
        used = self.users()
        names = []
        for m in c.spec.mount_points:
            if m.get("type") == "volume":
                v = self.index.get(m["source"])
                if v is not None and v.anonymous and used.get(v.name, []) in ([], [c.id]):
                    names.append(v.name)
        return names

    def recover(self, running: set[str]) -> int:
        """At start: data directories without a volume (a crash inside create or remove) go; driver mounts
        that no running container needs are undone. Returns how many things were cleaned."""
        known = {v.name for v in self.index.all()}
        cleaned = 0
        for name in os.listdir(self.root):
            if name not in known:
                self._remove_data(name)
                cleaned += 1
        needed = {m["source"] for cid in running for c in [self.containers.get(cid)] if c
                  for m in c.spec.mount_points if m.get("type") == "volume"}
        for v in self.index.all():
            if v.mounted_by_driver and v.name not in needed and os.path.ismount(self.path(v.name)):
                mnt.unmount(self.path(v.name))
                cleaned += 1
        return cleaned

    # -- at container create ------------------------------------------------------------------
    def plan(self, spec: ContainerSpec, container_of: Callable[[str], Container]) -> list[MountPoint]:
        """A new container's mount points, checked as Docker checks them, nothing made yet: ``--volumes-from``
        first, then ``-v`` (Binds) and ``--mount`` (Mounts), then the anonymous volumes that Config.Volumes
        and the image's VOLUMEs ask for where nothing else is mounted."""
        points: dict[str, MountPoint] = {}
        for ref in spec.volumes_from:
            name, mode = parse_volumes_from(ref)
            for raw in container_of(name).spec.mount_points:
                m = MountPoint.from_dict(raw)
                if m.type != "tmpfs":  # moby: writable only if the source is and the mode says rw
                    m.rw = m.rw and "ro" not in mode.split(",")
                    m.nocopy, m.mode = True, ""  # moby copies no Mode
                    points[_clean(m.destination)] = m
        explicit: set[str] = set()
        wanted = [parse_bind(b) for b in spec.binds] + [mount_point(r) for r in spec.mount_requests]
        for m in wanted:
            dest = _clean(m.destination)
            if dest in explicit:
                raise InvalidArgument(f"Duplicate mount point: {dest}")
            explicit.add(dest)
            m.destination = dest
            if m.type == "volume" and not m.mode:
                m.mode = "z"  # what moby shows for local volumes from Binds and Mounts
            points[dest] = m
        for dest in spec.volumes:
            if not dest.startswith("/"):
                raise InvalidArgument(f"invalid mount config for type \"volume\": invalid mount path: '{dest}' "
                                      "mount path must be absolute")
            dest = _clean(dest)
            if dest not in points and dest not in spec.tmpfs:
                points[dest] = MountPoint("volume", dest)
        for m in points.values():
            check_destination(m)
            if m.type == "volume" and m.source:
                try:
                    check_volume_name(m.source)
                except InvalidArgument as e:
                    raise InvalidArgument(f"create {m.source}: {e.message}") from None
        return list(points.values())

    def materialize(self, points: list[MountPoint], requests: list[dict]) -> list[str]:
        """Make what the mount points need: volumes (anonymous ones named now) and ``-v`` host directories.
        Returns the anonymous volumes made (to remove if the create fails)."""
        made = []
        opts = {r.get("Target", "").rstrip("/") or "/": r.get("VolumeOptions") or {} for r in requests}
        for m in points:
            if m.type == "bind" and not os.path.exists(m.source):
                if m.create_source:
                    os.makedirs(m.source, mode=0o755, exist_ok=True)
                else:
                    raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not exist: '
                                          f"{m.source}")
            elif m.type == "volume":
                vo = opts.get(m.destination, {})
                driver = vo.get("DriverConfig") or {}
                v = self.create(m.source, driver.get("Name") or "", driver.get("Options") or {},
                                vo.get("Labels") or {})
                if not m.source:
                    m.source = v.name
                    made.append(v.name)
        return made

    # -- at container start and exit ---------------------------------------------------------
    def prepare(self, c: Container, rootfs: str) -> list[tuple[MountPoint, str]]:
        """Each mount point with the host path to bind: volumes are mounted by their driver when they
        need it, and an empty volume gets the image's content at its path (unless ``nocopy``)."""
        out = []
        for raw in c.spec.mount_points:
            m = MountPoint.from_dict(raw)
            if m.type == "bind":
                if not os.path.exists(m.source):
                    raise InvalidArgument(f'invalid mount config for type "bind": bind source path does not exist: '
                                          f"{m.source}")
                out.append((m, m.source))
            elif m.type == "volume":
                v = self.get(m.source)
                data = self.path(v.name)
                os.makedirs(data, mode=0o755, exist_ok=True)
                if v.mounted_by_driver and not os.path.ismount(data):
                    _driver_mount(v, data)
                if m.subpath:  # resolved inside the volume: a symlink there cannot lead out
                    inner = resolve_in_root(data, m.subpath)
                    if not os.path.isdir(inner):
                        raise InvalidArgument(f"cannot access path {inner}: no such directory in volume {v.name}")
                    out.append((m, inner))
                    continue
                if not m.nocopy and not os.listdir(data):
                    image_path = resolve_in_root(rootfs, m.destination)
                    if os.path.isdir(image_path) and os.listdir(image_path):
                        try:
                            copy_tree(image_path, data)
                        except BaseException:
                            _empty(data)  # all or nothing: a half copy would never be completed
                            raise
                out.append((m, data))
            else:
                out.append((m, ""))
        return out

    def release(self, c: Container, running: set[str]) -> None:
        """After an exit: unmount driver-mounted volumes that no running container uses any more."""
        still = {m["source"] for cid in running for mc in [self.containers.get(cid)] if mc
                 for m in mc.spec.mount_points if m.get("type") == "volume"}
        for raw in c.spec.mount_points:
            if raw.get("type") == "volume" and raw["source"] not in still:
                v = self.index.get(raw["source"])
                if v is not None and v.mounted_by_driver:
                    mnt.unmount(self.path(v.name))


def _empty(path: str) -> None:
    for name in os.listdir(path):
        remove_tree(os.path.join(path, name))


def _clean(path: str) -> str:
    return posixpath.normpath(path) if path else path


def _driver_mount(v: Volume, target: str) -> None:
    """The local driver's options: ``type=tmpfs o=size=64m``, ``type=none o=bind device=/path``, a device."""
    kind, device, opts = v.options.get("type", ""), v.options.get("device", ""), v.options.get("o", "")
    flags = 0
    data = []
    for o in filter(None, opts.split(",")):
        if o == "bind":
            flags |= 4096  # MS_BIND
        elif o == "ro":
            flags |= 1
        else:
            data.append(o)
    try:
        mnt.mount(device or kind or "none", target, "" if flags & 4096 else (kind or "none"), flags, ",".join(data))
    except OSError as e:
        raise InvalidArgument(f"error while mounting volume '{target}': {e.strerror or e}") from None
