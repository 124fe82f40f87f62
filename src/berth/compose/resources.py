"""The project's networks, volumes, images and config/secret files, made ready before containers are."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from berth.compose import convert
from berth.compose import model as m
from berth.compose.buildctx import chunks, context_tar
from berth.compose.engine import Engine
from berth.compose.model import Project, Service
from berth.errors import BerthError, Conflict, NotFound


class ComposeError(BerthError):
    """A step of a plan failed; ``service`` names the service it was for."""

    def __init__(self, message: str, service: str = "") -> None:
        super().__init__(message)
        self.service = service


def poll(cond: Callable[[], object], timeout: float | None, what: str, service: str = ""):
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.05
    while True:
        value = cond()
        if value:
            return value
        if deadline is not None and time.monotonic() > deadline:
            raise ComposeError(f"timed out waiting for {what}", service)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


class ProjectResources:
    """What ``Executor`` does before converging containers (a mixin: it needs project, engine, emit)."""

    project: Project
    engine: Engine
    max_workers: int

    def emit(self, kind: str, name: str, status: str) -> None:
        raise NotImplementedError

    def ensure_networks(self) -> None:
        for net in self.project.networks:
            if net.external:
                try:
                    self.engine.inspect_network(net.name)
                except NotFound:
                    raise ComposeError(f"network {net.name} declared as external, but could not be found") from None
                continue
            if any(n.get("Name") == net.name for n in self.engine.networks(name=net.name)):
                continue
            ipam = []
            for entry in net.ipam_config:
                cfg = {}
                for k, v in entry:
                    key = {"subnet": "Subnet", "gateway": "Gateway", "ip_range": "IPRange"}.get(k)
                    if key:
                        cfg[key] = v
                    elif k == "aux_addresses":
                        cfg["AuxiliaryAddresses"] = json.loads(v) if v.startswith("{") else v
                ipam.append(cfg)
            body = {"Name": net.name, "Driver": net.driver or "bridge", "Options": dict(net.driver_opts),
                    "Internal": net.internal, "Attachable": net.attachable, "EnableIPv6": net.enable_ipv6,
                    "Labels": {**dict(net.labels), m.LABEL_PROJECT: self.project.name, m.LABEL_NETWORK: net.key,
                               m.LABEL_VERSION: convert.COMPOSE_VERSION}}
            if ipam or net.ipam_driver:
                body["IPAM"] = {"Driver": net.ipam_driver or "default", "Config": ipam}
            self.emit("network", net.name, "Creating")
            try:
                self.engine.create_network(body)
            except Conflict:
                pass  # made meanwhile
            self.emit("network", net.name, "Created")

    def ensure_volumes(self) -> None:
        for vol in self.project.volumes:
            try:
                self.engine.inspect_volume(vol.name)
                continue
            except NotFound:
                if vol.external:
                    raise ComposeError(f'external volume "{vol.name}" not found') from None
            self.emit("volume", vol.name, "Creating")
            self.engine.create_volume({"Name": vol.name, "Driver": vol.driver or "local",
                                       "DriverOpts": dict(vol.driver_opts),
                                       "Labels": {**dict(vol.labels), m.LABEL_PROJECT: self.project.name,
                                                  m.LABEL_VOLUME: vol.key, m.LABEL_VERSION: convert.COMPOSE_VERSION}})
            self.emit("volume", vol.name, "Created")

    def write_files(self, services: Iterable[Service]) -> None:
        """Materialise the content/environment configs and secrets ``services`` mount (see convert.files_dir)."""
        env = {**os.environ, **dict(self.project.environment)}
        for kind, sources in (("configs", self.project.configs), ("secrets", self.project.secrets)):
            by_key = {s.key: s for s in sources}
            for svc in services:
                for ref in getattr(svc, kind):
                    src = by_key.get(ref.source)
                    if src is None or src.file or src.external:
                        continue
                    path = convert.file_source_path(self.project, kind, src)
                    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                    data = src.content if not src.environment else env.get(src.environment, "")
                    tmp = f"{path}.{os.getpid()}.tmp"
                    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                        f.write(data)
                    os.chmod(tmp, ref.mode if ref.mode is not None else 0o444)
                    if ref.uid.isdigit() or ref.gid.isdigit():
                        os.chown(tmp, int(ref.uid) if ref.uid.isdigit() else -1,
                                 int(ref.gid) if ref.gid.isdigit() else -1)
                    os.replace(tmp, path)

    def _build(self, svc: Service, tag: str) -> str:
        b = svc.build
        self.emit("image", tag, "Building")
        tar, dockerfile = context_tar(b.context, b.dockerfile)
        try:
            image_id = self.engine.build(
                chunks(tar), tag=tag, dockerfile=dockerfile, args={k: v for k, v in b.args if v is not None},
                target=b.target, labels=dict(b.labels), no_cache=b.no_cache, pull=b.pull, network=b.network,
                extra_hosts=b.extra_hosts, cache_from=b.cache_from)
        except BerthError as e:
            raise ComposeError(f"failed to build service {svc.name}: {e.message}", svc.name) from None
        finally:
            tar.close()
        self.emit("image", tag, "Built")
        return image_id

    def _pull(self, svc: Service, ref: str) -> None:
        from berth.client.credentials import auth_header_for_image
        self.emit("image", ref, "Pulling")
        try:
            self.engine.pull(ref, auth=auth_header_for_image(ref))
        except BerthError as e:
            raise ComposeError(f"failed to pull image {ref} for service {svc.name}: {e.message}", svc.name) from None
        self.emit("image", ref, "Pulled")

    def ensure_image(self, svc: Service, build: bool = False, no_build: bool = False, pull: str = "") -> str:
        """The service's image ID, building or pulling it as the options and ``pull_policy`` say."""
        ref = convert.image_name(self.project, svc)
        policy = pull or svc.pull_policy or "missing"
        if policy == "if_not_present":
            policy = "missing"
        if svc.build and not no_build and (build or policy == "build"):
            return self._build(svc, ref)
        if policy == "always" and svc.image:
            try:
                self._pull(svc, ref)
            except ComposeError:
                if not svc.build:
                    raise
        try:
            return self.engine.inspect_image(ref)["Id"]
        except NotFound:
            pass
        if svc.build and not no_build:
            return self._build(svc, ref)
        if policy == "never" or not svc.image:
            raise ComposeError(f"No such image: {ref} (service {svc.name})", svc.name)
        self._pull(svc, ref)
        return self.engine.inspect_image(ref)["Id"]

    def ensure_images(self, services: Iterable[Service], build: bool = False, no_build: bool = False,
                      pull: str = "") -> dict[str, str]:
        services = list(services)
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            futures = {s.name: pool.submit(self.ensure_image, s, build, no_build, pull) for s in services}
        return {name: f.result() for name, f in futures.items()}


def project_from_engine(name: str, engine, working_dir: str) -> m.Project:
    """A project known only by its name (``-p NAME`` with no file): its services, networks and volumes as
    the engine's labels tell them, enough to list, stop or take down what is there."""
    label = f"{m.LABEL_PROJECT}={name}"
    services = sorted({(c.get("Labels") or {}).get(m.LABEL_SERVICE, "") for c in engine.containers(label)} - {""})
    nets = [m.Network(n.get("Labels", {}).get(m.LABEL_NETWORK) or n["Name"], n["Name"])
            for n in engine.networks(label)]
    vols = [m.Volume((v.get("Labels") or {}).get(m.LABEL_VOLUME) or v["Name"], v["Name"]) for v in engine.volumes(label)]
    return m.Project(name, working_dir, (), tuple(m.Service(s) for s in services), tuple(nets), tuple(vols))
