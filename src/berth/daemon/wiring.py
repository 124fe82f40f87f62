"""The composition root: the only place that names concrete classes."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from berth.config import DaemonConfig
from berth.errors import InvalidArgument
from berth.runtime.runc import Runc
from berth.runtime.shim import ShimLauncher, find_shim
from berth.network.links import Links
from berth.network.rules import Rules
from berth.services.builds import Builder
from berth.services.containers import ContainerService
from berth.services.networks import HostNet, NetworkService, NetworkSettings
from berth.services.sandboxes import Sandboxes
from berth.services.volumes import VolumeService
from berth.services.events import EventBus
from berth.services.exec import ExecService
from berth.services.filesystem import FilesystemService
from berth.services.health import HealthMonitor
from berth.services.monitoring import MonitoringService
from berth.image.pull import LayerFetcher
from berth.registry.client import RegistryHTTP
from berth.registry.hosts import Hosts
from berth.services.distribution import DistributionService
from berth.services.images import ImageService
from berth.store.distribution import DistributionIndex
from berth.services.lifecycle import Lifecycle
from berth.services.notify import Notifier
from berth.services.system import SystemService
from berth.store.containers import ContainerIndex
from berth.store.content import ContentStore
from berth.store.db import Database
from berth.store.images import ImageIndex
from berth.store.networks import NetworkIndex
from berth.store.volumes import VolumeIndex
from berth.store.build_cache import BuildCacheIndex
from berth.store.snapshots import SnapshotStore


@dataclass
class Engine:
    db: Database
    images: ImageService
    containers: ContainerService
    lifecycle: Lifecycle
    system: SystemService
    events: EventBus
    tmp_dir: str
    monitoring: MonitoringService
    execs: ExecService
    health: HealthMonitor
    filesystem: FilesystemService
    networks: NetworkService
    sandboxes: Sandboxes
    volumes: VolumeService
    builder: Builder
    distribution: DistributionService

    def services(self) -> dict:
        return {"system": self.system, "images": self.images, "containers": self.containers,
                "lifecycle": self.lifecycle, "events": self.events, "tmp_dir": self.tmp_dir,
                "monitoring": self.monitoring, "execs": self.execs, "health": self.health,
                "filesystem": self.filesystem, "networks": self.networks, "sandboxes": self.sandboxes,
                "volumes": self.volumes, "builder": self.builder,
                "distribution": self.distribution}


def _binary(name: str) -> str:
    path = shutil.which(name) or (name if os.access(name, os.X_OK) else None)
    if path is None:
        raise InvalidArgument(f"runtime binary {name!r} not found")
    return path


def build(cfg: DaemonConfig) -> Engine:
    os.makedirs(cfg.data_root, mode=0o711, exist_ok=True)
    os.makedirs(cfg.exec_root, mode=0o711, exist_ok=True)
    db = Database(os.path.join(cfg.data_root, "berth.db"))
    content = ContentStore(cfg.data_root)
    snapshots = SnapshotStore(cfg.data_root)
    notifier = Notifier()
    tmp_dir = os.path.join(cfg.data_root, "tmp")
    events = EventBus()
    build_cache = BuildCacheIndex(db)
    fetcher = LayerFetcher(content, snapshots, cfg.max_concurrent_downloads)
    images = ImageService(db, ImageIndex(db), content, snapshots, os.path.join(cfg.data_root, "staging"), events,
                          build_cache.intermediate, build_cache.parent, build_cache.children, fetcher.leased)
    hosts = Hosts(cfg.insecure_registries, cfg.registry_mirrors, cfg.certs_dir)
    distribution = DistributionService(images, fetcher, DistributionIndex(db), RegistryHTTP(hosts), hosts, events,
                                       os.path.join(cfg.data_root, "staging"))
    runtime_root = os.path.join(cfg.exec_root, "runtime")
    runtimes = {"runc": cfg.runtime_path(cfg.runtime), **cfg.runtimes}
    runc_for = {name: Runc(_binary(path), runtime_root) for name, path in runtimes.items()}
    runc_for["runc"] = runc_for.get(cfg.runtime, runc_for["runc"])
    settings = NetworkSettings(cfg.bridge, cfg.bip, cfg.default_address_pools, cfg.dns, cfg.dns_search,
                               cfg.dns_opts, cfg.ip_forward)
    host_net = HostNet(Links(cfg.owner), Rules(cfg.nft_table, enabled=cfg.iptables))
    networks = NetworkService(NetworkIndex(db), host_net, settings, events)
    container_index = ContainerIndex(db)
    volumes = VolumeService(VolumeIndex(db), container_index, cfg.data_root, events)
    containers = ContainerService(container_index, images, snapshots, cfg.data_root, notifier, set(runc_for), events,
                                  networks, volumes)
    sandboxes = Sandboxes(networks, containers, cfg.exec_root)
    launcher = ShimLauncher(find_shim(cfg.shim), runtime_root)
    lifecycle = Lifecycle(containers, runc_for, launcher, cfg.exec_root, notifier, cfg.log_opts, sandboxes, volumes)
    system = SystemService(images, containers, cfg.data_root, cfg.exec_root,
                           {n: r.binary for n, r in runc_for.items()}, cfg.runtime,
                           "2" if lifecycle.facts.cgroup_v2 else "1")
    os.makedirs(tmp_dir, exist_ok=True)
    monitoring = MonitoringService(containers)
    execs = ExecService(lifecycle, cfg.exec_root)
    files = FilesystemService(containers, images, lifecycle, tmp_dir)
    builder = Builder(images, containers, lifecycle, files, build_cache, tmp_dir,
                      os.path.join(cfg.data_root, "build-mounts"), distribution.pull_base)
    return Engine(db, images, containers, lifecycle, system, events, tmp_dir, monitoring, execs,
                  HealthMonitor(lifecycle, execs), files, networks, sandboxes, volumes, builder, distribution)
