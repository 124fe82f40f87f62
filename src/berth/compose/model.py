"""The resolved compose model: what a compose file means after loading, merging, interpolation and
validation. Plain immutable values; the loader makes them, the planner and executor read them.

Field names follow the Compose Specification (snake_case). Durations are seconds (float); sizes are bytes.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BuildSpec:
    context: str                          # absolute path (or a URL, kept as given)
    dockerfile: str = "Dockerfile"        # relative to context, or absolute
    args: tuple[tuple[str, str | None], ...] = ()
    target: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    cache_from: tuple[str, ...] = ()
    network: str = ""
    extra_hosts: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False


@dataclass(frozen=True)
class PortSpec:
    target: int                           # container port
    published: str = ""                   # "8080", "8000-8002", or "" (random)
    host_ip: str = ""
    protocol: str = "tcp"
    mode: str = "ingress"


@dataclass(frozen=True)
class MountSpec:
    type: str                             # volume | bind | tmpfs | npipe | cluster
    target: str
    source: str = ""                      # volume: the project-level key ("" = anonymous); bind: absolute host path
    read_only: bool = False
    consistency: str = ""
    bind_create_host_path: bool = True
    bind_propagation: str = ""
    volume_nocopy: bool = False
    tmpfs_size: int = 0
    tmpfs_mode: int = 0


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...] = ()            # ("CMD", ...), ("CMD-SHELL", "..."), ("NONE",)
    interval: float | None = None
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None
    start_interval: float | None = None
    disable: bool = False


@dataclass(frozen=True)
class DependsOn:
    service: str
    condition: str = "service_started"    # service_started | service_healthy | service_completed_successfully
    restart: bool = False
    required: bool = True


@dataclass(frozen=True)
class ServiceNetwork:
    name: str                             # the project-level network key
    aliases: tuple[str, ...] = ()
    ipv4_address: str = ""
    ipv6_address: str = ""
    priority: int = 0


@dataclass(frozen=True)
class FileRef:
    """A config or secret a service mounts (read-only)."""
    source: str                           # the project-level key
    target: str                           # absolute path in the container
    uid: str = ""
    gid: str = ""
    mode: int | None = None


@dataclass(frozen=True)
class Resources:
    cpus: float = 0.0
    memory: int = 0
    pids: int = 0


@dataclass(frozen=True)
class WatchRule:
    action: str                           # sync | rebuild | sync+restart
    path: str                             # absolute host path
    target: str = ""                      # container path (sync actions)
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class Service:
    name: str
    image: str = ""
    build: BuildSpec | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str | None], ...] = ()   # env_file entries merged in, file order, then environment
    ports: tuple[PortSpec, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[MountSpec, ...] = ()
    tmpfs: tuple[str, ...] = ()
    networks: tuple[ServiceNetwork, ...] = ()   # empty with no network_mode means the project's "default"
    network_mode: str = ""                     # host | none | bridge | service:NAME | container:NAME
    depends_on: tuple[DependsOn, ...] = ()
    healthcheck: Healthcheck | None = None
    restart: str = ""                          # no | always | on-failure[:N] | unless-stopped
    replicas: int = 1                          # deploy.replicas or scale
    limits: Resources = Resources()
    reservations: Resources = Resources()
    labels: tuple[tuple[str, str], ...] = ()
    container_name: str = ""
    hostname: str = ""
    domainname: str = ""
    user: str = ""
    working_dir: str = ""
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    init: bool | None = None
    stop_signal: str = ""
    stop_grace_period: float | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    read_only: bool = False
    ulimits: tuple[tuple[str, int, int], ...] = ()        # (name, soft, hard)
    sysctls: tuple[tuple[str, str], ...] = ()
    logging_driver: str = ""
    logging_options: tuple[tuple[str, str], ...] = ()
    profiles: tuple[str, ...] = ()
    configs: tuple[FileRef, ...] = ()
    secrets: tuple[FileRef, ...] = ()
    tty: bool = False
    stdin_open: bool = False
    pull_policy: str = ""                      # always | never | missing | build | ""
    watch: tuple[WatchRule, ...] = ()          # develop.watch
    extensions: tuple[tuple[str, str], ...] = ()   # x-* keys, as JSON text


@dataclass(frozen=True)
class Network:
    key: str                                   # the name in the file
    name: str                                  # the engine's name: PROJECT_key unless `name:` or external
    driver: str = "bridge"
    driver_opts: tuple[tuple[str, str], ...] = ()
    internal: bool = False
    attachable: bool = False
    enable_ipv6: bool = False
    external: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    ipam_driver: str = ""
    ipam_config: tuple[tuple[tuple[str, str], ...], ...] = ()  # each: (("subnet", ...), ("gateway", ...), ...)


@dataclass(frozen=True)
class Volume:
    key: str
    name: str                                  # PROJECT_key unless `name:` or external
    driver: str = "local"
    driver_opts: tuple[tuple[str, str], ...] = ()
    external: bool = False
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FileSource:
    """A top-level config or secret: a file (absolute path), an environment variable, or inline content."""
    key: str
    name: str
    file: str = ""
    environment: str = ""
    content: str = ""
    external: bool = False


@dataclass(frozen=True)
class Project:
    name: str                                  # normalised: lowercase [a-z0-9_-], starting with a letter or digit
    working_dir: str                           # where relative paths are resolved (the first file's directory)
    config_files: tuple[str, ...]              # absolute paths, in merge order
    services: tuple[Service, ...]              # only the services of active profiles (and those named on the CLI)
    networks: tuple[Network, ...] = ()         # includes "default" when any service uses it
    volumes: tuple[Volume, ...] = ()
    configs: tuple[FileSource, ...] = ()
    secrets: tuple[FileSource, ...] = ()
    disabled: tuple[Service, ...] = ()         # services whose profiles are not active
    environment: tuple[tuple[str, str], ...] = ()  # the variables interpolation saw (.env + os.environ)
    extensions: tuple[tuple[str, str], ...] = ()   # top-level x-* keys, as JSON text

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)


# Labels berth writes on what it makes, as Docker Compose does.
LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_NUMBER = "com.docker.compose.container-number"
LABEL_ONEOFF = "com.docker.compose.oneoff"
LABEL_CONFIG_HASH = "com.docker.compose.config-hash"
LABEL_WORKING_DIR = "com.docker.compose.project.working_dir"
LABEL_CONFIG_FILES = "com.docker.compose.project.config_files"
LABEL_NETWORK = "com.docker.compose.network"
LABEL_VOLUME = "com.docker.compose.volume"
LABEL_VERSION = "com.docker.compose.version"
LABEL_DEPENDS_ON = "com.docker.compose.depends_on"
LABEL_IMAGE = "com.docker.compose.image"
