"""Container configuration (written once) and state (changing), as plain data."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass
class RestartPolicy:
    name: str = "no"
    maximum_retry_count: int = 0


@dataclass
class LogConfig:
    type: str = "json-file"
    config: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerSpec:
    """What the client asked for at create time (Docker's Config + HostConfig subset)."""

    image: str
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    hostname: str = ""
    domainname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    stop_signal: str = ""
    stop_timeout: int | None = None
    exposed_ports: dict[str, dict] = field(default_factory=dict)
    volumes: dict[str, dict] = field(default_factory=dict)
    auto_remove: bool = False
    network_mode: str = "bridge"  # bridge, a network's name, host, none or container:<id>
    port_bindings: dict[str, list[dict]] = field(default_factory=dict)  # {"80/tcp": [{"HostIp", "HostPort"}]}
    publish_all_ports: bool = False
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    binds: list[str] = field(default_factory=list)  # HostConfig.Binds as sent
    mount_requests: list[dict] = field(default_factory=list)  # HostConfig.Mounts as sent
    volumes_from: list[str] = field(default_factory=list)
    mount_points: list[dict] = field(default_factory=list)  # MountPoint fields, resolved at create
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    log_config: LogConfig = field(default_factory=LogConfig)
    privileged: bool = False
    readonly_rootfs: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    init: bool = False
    runtime: str = "runc"
    no_new_privileges: bool = False
    # Resources and security (HostConfig): 0 / "" / None / empty mean "not set", as in Docker's JSON.
    memory: int = 0
    memory_swap: int = 0  # memory + swap; -1 unlimited
    memory_reservation: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int | None = None
    ulimits: list[dict] = field(default_factory=list)  # [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    shm_size: int = 0  # bytes; 0 means Docker's default, 64 MiB
    oom_kill_disable: bool = False
    oom_score_adj: int = 0
    devices: list[dict] = field(default_factory=list)  # [{"PathOnHost", "PathInContainer", "CgroupPermissions"}]
    sysctls: dict[str, str] = field(default_factory=dict)
    group_add: list[str] = field(default_factory=list)
    tmpfs: dict[str, str] = field(default_factory=dict)  # {"/run": "size=64m,mode=1777"}
    security_opt: list[str] = field(default_factory=list)  # as the client sent them (shown by inspect)
    seccomp_profile: str = ""
    healthcheck: dict | None = None  # Docker's HealthConfig: Test, Interval, Timeout, StartPeriod, Retries
    console_size: list[int] = field(default_factory=list)  # [height, width] of the TTY at start  # "" the default profile, "unconfined", or a profile's JSON text

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ContainerSpec":
        raw = json.loads(text)
        raw["restart_policy"] = RestartPolicy(**raw.get("restart_policy", {}))
        raw["log_config"] = LogConfig(**raw.get("log_config", {}))
        known = _SPEC_FIELDS or _SPEC_FIELDS.update(f.name for f in dataclasses.fields(cls)) or _SPEC_FIELDS
        return cls(**{k: v for k, v in raw.items() if k in known})


_SPEC_FIELDS: set[str] = set()  # ContainerSpec's field names, filled on first use (lists decode many)


@dataclass
class ContainerState:
    status: str = "created"
    pid: int = 0
    exit_code: int = 0
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    error: str = ""
    restart_count: int = 0
    oom_killed: bool = False
    manually_stopped: bool = False

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")


@dataclass
class Container:
    id: str
    name: str
    image_id: str
    created: str
    spec: ContainerSpec
    state: ContainerState

    @property
    def argv(self) -> list[str]:
        """The process to run: entrypoint + cmd, merged with the image's at create time."""
        return list(self.spec.entrypoint or []) + list(self.spec.cmd or [])

    @property
    def short_id(self) -> str:
        return self.id[:12]
