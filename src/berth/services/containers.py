"""Container records: create, look up, list, remove, prune."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import secrets
import socket

from berth.errors import BerthError, Conflict, InvalidArgument, NotFound
from berth.network import etc_files
from berth.runtime.logs import now_rfc3339
from berth.runtime.spec import validate_capabilities
from berth.store.containers import ContainerIndex
from berth.store.snapshots import SnapshotStore
from berth.types import filters as flt
from berth.types.container import Container, ContainerSpec, ContainerState
from berth.types.image import ImageRecord, check_signal
from berth.util import mount as mnt
from berth.util.fs import atomic_write, dir_size, read_text, remove_tree
from berth.services import names
from berth.services.images import ImageService
from berth.services.events import EventBus
from berth.services.notify import Notifier
from berth.services.networks import NetworkService
from berth.services.volumes import VolumeService
from berth.types.network import EndpointConfig
from berth.types.ports import check_port_bindings

_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
LIST_FILTERS = {"id", "name", "label", "status", "ancestor", "exited", "before", "since", "volume", "network",
                "health", "isolation", "is-task", "publish", "expose"}
STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}


class ContainerService:
    def __init__(self, index: ContainerIndex, images: ImageService, snapshots: SnapshotStore, data_root: str,
                 notifier: Notifier, runtimes: set[str], events: EventBus, networks: NetworkService,
                 volumes: VolumeService) -> None:
        self.networks = networks
        self.volumes = volumes
        self.runtimes = runtimes
        self.events = events
        self.index = index
        self.images = images
        self.snapshots = snapshots
        self.root = os.path.join(data_root, "containers")
        self.notifier = notifier
        os.makedirs(self.root, exist_ok=True)

    # -- paths ----------------------------------------------------------------
    def dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    def rootfs(self, cid: str) -> str:
        return os.path.join(self.root, cid, "rootfs")

    def log_path(self, cid: str) -> str:
        return os.path.join(self.root, cid, f"{cid}-json.log")

    # -- lookup ---------------------------------------------------------------
    def get(self, ref: str) -> Container:
        """By full ID, name (with or without ``/``) or unique ID prefix."""
        c = None
        if len(ref) == 64:
            c = self.index.get(ref)
        if c is None:
            cid = self.index.by_name(ref.lstrip("/")) if ref else None
            if cid is None and ref and re.fullmatch(r"[0-9a-f]+", ref):
                found = self.index.by_prefix(ref)
                if len(found) > 1:
                    raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
                cid = found[0] if found else None
            c = self.index.get(cid) if cid else None
        if c is None:
            raise NotFound.container(ref)
        return c

    def refresh(self, c: Container) -> Container:
        fresh = self.index.get(c.id)
        if fresh is None:
            raise NotFound.container(c.id)
        return fresh

    def list(self, all_: bool, limit: int, filters: flt.Filters) -> list[Container]:
        for s in filters.get("status", []):
            if s not in STATUSES:
                raise InvalidArgument(f"invalid filter 'status={s}'")
        show_all = all_ or limit > 0 or "status" in filters or "exited" in filters
        out = []
        for c in self.index.all():
            if not show_all and not c.state.running:
                continue
            if not _matches(c, filters, self.images, self.networks):
                continue
            out.append(c)
            if limit > 0 and len(out) >= limit:
                break
        return out

    # -- create ---------------------------------------------------------------
    async def create(self, spec: ContainerSpec, name: str | None,
                     endpoints: dict[str, EndpointConfig] | None = None) -> tuple[Container, list[str]]:
        if name is not None and name != "" and not _NAME.match(name):
            raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if spec.network_mode in ("", "default"):
            spec.network_mode = "bridge"
        if spec.network_mode.startswith("container:"):
            spec.network_mode = "container:" + self.get(spec.network_mode.split(":", 1)[1]).id
        check_port_bindings(spec.port_bindings)
        plan = self.networks.plan(spec, endpoints or {})
        for field, caps in (("CapAdd", spec.cap_add), ("CapDrop", spec.cap_drop)):
            try:
                validate_capabilities(caps)
            except InvalidArgument as e:
                raise InvalidArgument(f"invalid {field}: {e.message}") from None
        if spec.stop_signal:
            check_signal(spec.stop_signal)
        if spec.runtime not in self.runtimes:
            raise InvalidArgument(f"unknown or invalid runtime name: {spec.runtime}")
        img = self.images.resolve(spec.image)
        cid = secrets.token_hex(32)
        merged = merge_image_config(spec, img, cid)
        points = self.volumes.plan(merged, self.get)  # checked before anything is made
        name = name.lstrip("/") if name else names.generate(self.index.names())
        owner = self.index.by_name(name)
        if owner:  # Docker's 409, before volumes are made (reserve below stays the race-free check)
            raise Conflict.container_name(name, owner)
        anonymous = await asyncio.to_thread(self.volumes.materialize, points, merged.mount_requests)
        merged.mount_points = [dataclasses.asdict(m) for m in points]
        c = Container(cid, name, img.id, now_rfc3339(), merged, ContainerState())
        try:
            self.index.reserve(c, img.chain_ids)  # 409 on a name conflict, before the container is made on disk
        except BaseException:
            for v in anonymous:
                await self.volumes.remove(v)
            raise
        try:
            for n, cfg in plan:
                self.networks.index.attach(cid, n.id, cfg)
            await asyncio.to_thread(self._make_dirs, c)
            self.index.complete(cid)
        except BaseException:
            remove_tree(self.dir(cid))
            self.index.delete(cid)
            raise
        made = self.index.get(cid)
        self.emit(made, "create")
        return made, []  # type: ignore[return-value]

    def emit(self, c: Container, action: str, **extra: str) -> None:
        """A container event with Docker's attributes: image, name, labels, and ``extra``."""
        self.events.publish("container", action, c.id, {**c.spec.labels, "image": c.spec.image, "name": c.name, **extra})

    def _make_dirs(self, c: Container) -> None:
        d = self.dir(c.id)
        for sub in ("upper", "work", "rootfs"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        host_net = c.spec.network_mode == "host"
        hostname = socket.gethostname() if host_net else c.spec.hostname
        atomic_write(os.path.join(d, "hostname"), (hostname + "\n").encode())
        if host_net:
            hosts, resolv = read_text("/etc/hosts"), read_text("/etc/resolv.conf")
        else:  # bridge networks rewrite both when the container starts and has its address
            hosts = etc_files.hosts(c.spec.extra_hosts, [])
            resolv, _ = etc_files.resolv_conf(etc_files.parse_resolv(read_text("/etc/resolv.conf")), dns=c.spec.dns,
                                              search=c.spec.dns_search, options=c.spec.dns_options, mode="plain")
        atomic_write(os.path.join(d, "hosts"), hosts.encode())
        atomic_write(os.path.join(d, "resolv.conf"), resolv.encode())

    def host_files(self, cid: str) -> dict[str, str]:
        d = self.dir(cid)
        return {f"/etc/{n}": os.path.join(d, n) for n in ("hostname", "hosts", "resolv.conf")}

    async def rename(self, ref: str, new: str) -> None:
        c = self.get(ref)
        new = new.lstrip("/") if new else ""
        if not new or not _NAME.match("/" + new):
            raise InvalidArgument(f"Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        if new == c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        self.index.rename(c.id, new)
        self.emit(self.get(c.id), "rename", oldName="/" + c.name)
        await self.notifier.changed()

    # -- rootfs -----------------------------------------------------------------
    def mount_rootfs(self, c: Container) -> str:
        target = self.rootfs(c.id)
        if not os.path.ismount(target):
            m = self.snapshots.rootfs_mount(self.index.chain_ids(c.id), os.path.join(self.dir(c.id), "upper"),
                                            os.path.join(self.dir(c.id), "work"))
            mnt.mount(m.source, target, m.type, 0, m.options)
        return target

    def unmount_rootfs(self, cid: str) -> None:
        for point in mnt.mounted_under(self.rootfs(cid)):
            mnt.unmount(point)

    def size(self, c: Container) -> tuple[int, int]:
        """(SizeRw, SizeRootFs) in bytes."""
        rw = dir_size(os.path.join(self.dir(c.id), "upper"))
        img = self.images.index.get(c.image_id)
        return rw, rw + (img.size if img else 0)

    # -- remove -----------------------------------------------------------------
    async def remove(self, c: Container, volumes: bool = False) -> None:
        """Delete a stopped container and everything it had on disk; with ``volumes``, its anonymous volumes."""
        if c.state.running:
            raise Conflict(f"You cannot remove a {c.state.status} container {c.id}. "
                           "Stop the container before attempting removal or force remove")
        anonymous = self.volumes.remove_anonymous(c) if volumes else []
        await asyncio.to_thread(self._remove_files, c.id)
        self.index.delete(c.id)
        self.emit(c, "destroy")
        for name in anonymous:
            try:
                await self.volumes.remove(name)
            except BerthError:
                pass  # taken by another container meanwhile: it stays, as in Docker
        if self.images.index.get(c.image_id) is None:
            await self.images.collect_garbage()  # its image went first: its layers go now
        await self.notifier.changed()

    def _remove_files(self, cid: str) -> None:
        self.unmount_rootfs(cid)
        remove_tree(self.dir(cid))

    def users_of_images(self) -> dict[str, list[tuple[str, bool]]]:
        """Image ID → (container ID, running) of every container made from it."""
        out: dict[str, list[tuple[str, bool]]] = {}
        for c in self.index.all():
            out.setdefault(c.image_id, []).append((c.id, c.state.running))
        return out


def merge_image_config(spec: ContainerSpec, img: ImageRecord, cid: str) -> ContainerSpec:
    """Docker's merge of the image config into the container config at create time."""
    ic = img.config
    keys = {e.split("=", 1)[0] for e in spec.env}  # the container's env, then image entries it lacks
    env = list(spec.env) + [e for e in ic.env if e.split("=", 1)[0] not in keys]
    entrypoint, cmd = spec.entrypoint, spec.cmd
    if not entrypoint:  # moby merge(): a non-nil empty Entrypoint stays, the image's Cmd still applies
        cmd = cmd or ic.cmd
        entrypoint = ic.entrypoint if entrypoint is None else entrypoint
    if entrypoint == [""]:  # `--entrypoint ""` resets it
        entrypoint = None
    if not (entrypoint or cmd):
        raise InvalidArgument("no command specified")
    labels = {**ic.labels, **spec.labels}
    return ContainerSpec(**{
        **spec.__dict__,
        "env": env, "entrypoint": entrypoint, "cmd": cmd, "labels": labels,
        "working_dir": spec.working_dir or ic.working_dir,
        "user": spec.user or ic.user,
        "hostname": spec.hostname or (socket.gethostname() if spec.network_mode == "host" else cid[:12]),
        "stop_signal": spec.stop_signal or ic.stop_signal,
        "healthcheck": _merge_health(spec.healthcheck, ic.healthcheck),
        "exposed_ports": {**ic.exposed_ports, **spec.exposed_ports, **{k: {} for k in spec.port_bindings}},
        "volumes": {**ic.volumes, **spec.volumes},
    })


def _merge_health(mine: dict | None, image: dict | None) -> dict | None:
    """The container's health check fields override the image's (Docker's merge); NONE disables."""
    if not mine:
        return image
    merged = {**(image or {}), **{k: v for k, v in mine.items() if v}}
    return merged if merged.get("Test") else None


def _matches(c: Container, f: flt.Filters, images: ImageService, networks: NetworkService) -> bool:
    if "id" in f and not any(c.id.startswith(x) for x in f["id"]):
        return False
    if "name" in f:
        try:
            if not any(re.search(x, c.name) or re.search(x, "/" + c.name) for x in f["name"]):
                return False
        except re.error as e:
            raise InvalidArgument(f"invalid filter 'name': {e}") from None
    if "label" in f and not flt.match_labels(f["label"], c.spec.labels):
        return False
    if "status" in f and c.state.status not in f["status"]:
        return False
    if "exited" in f and not (c.state.status == "exited" and str(c.state.exit_code) in f["exited"]):
        return False
    if "ancestor" in f:
        ok = False
        for a in f["ancestor"]:
            try:
                ok = ok or images.resolve(a).id == c.image_id
            except (NotFound, InvalidArgument):
                ok = ok or c.spec.image == a
        if not ok:
            return False
    if "network" in f or "publish" in f:
        attached = networks.attachments(c.id)
        if "network" in f:
            mode = c.spec.network_mode
            named = {n.name for n, _ in attached} | ({mode} if mode in ("host", "none") else set())
            ids = [n.id for n, _ in attached]
            if not any(x in named or any(i.startswith(x) for i in ids) for x in f["network"]):
                return False
        if "publish" in f:
            published = {(m["host_port"], m["proto"]) for _, e in attached for m in e.ports} if c.state.running else set()
            if not any(_port_in(x, published) for x in f["publish"]):
                return False
    if "volume" in f:  # a volume's name, or a mount's destination (as moby's filter)
        seen = {m.get("source") for m in c.spec.mount_points if m.get("type") == "volume"}
        seen |= {m.get("destination") for m in c.spec.mount_points}
        if not any(x in seen for x in f["volume"]):
            return False
    if "expose" in f:
        exposed = {(int(k.split("/")[0]), (k.split("/") + ["tcp"])[1]) for k in c.spec.exposed_ports
                   if k.split("/")[0].isdigit()}
        if not any(_port_in(x, exposed) for x in f["expose"]):
            return False
    return True


def _port_in(value: str, ports: set[tuple[int, str]]) -> bool:
    """``80``, ``80/udp`` or ``8000-8080/tcp`` (tcp when no protocol is given) against (port, proto) pairs."""
    rng, _, proto = value.partition("/")
    lo, _, hi = rng.partition("-")
    try:
        first, last = int(lo), int(hi or lo)
    except ValueError:
        raise InvalidArgument(f"invalid filter: port {value!r} must be a number or a range") from None
    return any(first <= p <= last and pr == (proto or "tcp") for p, pr in ports)
