"""DaemonConfig: roots, sockets and runtimes, from daemon.json and flags."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from berth.errors import InvalidArgument

DEFAULT_SOCKET = "unix:///run/berth/berth.sock"


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_SOCKET])
    data_root: str = "/var/lib/berth"
    exec_root: str = "/run/berth"
    runtime: str = "runc"
    runtimes: dict[str, str] = field(default_factory=dict)
    shim: str = ""
    log_level: str = "info"
    log_opts: dict[str, str] = field(default_factory=dict)
    bridge: str = "berth0"  # the default bridge network's host link
    bip: str = ""  # the default bridge's gateway address and prefix, e.g. 172.17.0.1/16
    default_address_pools: list[dict] = field(default_factory=list)  # [{"base": "172.17.0.0/16", "size": 16}]
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opts: list[str] = field(default_factory=list)
    iptables: bool = True  # berth's own packet rules (NAT, published ports, isolation)
    ip_forward: bool = True
    insecure_registries: list[str] = field(default_factory=list)  # hosts or CIDRs that may use plain HTTP
    registry_mirrors: list[str] = field(default_factory=list)  # URLs tried before Docker Hub for its pulls
    certs_dir: str = "/etc/berth/certs.d"  # <host:port>/ca.crt, client.cert, client.key
    max_concurrent_downloads: int = 3

    _KEYS = {"hosts": "hosts", "data-root": "data_root", "exec-root": "exec_root", "default-runtime": "runtime",
             "runtimes": "runtimes", "log-level": "log_level", "log-opts": "log_opts", "shim": "shim",
             "bridge": "bridge", "bip": "bip", "default-address-pools": "default_address_pools", "dns": "dns",
             "dns-search": "dns_search", "dns-opts": "dns_opts", "iptables": "iptables", "ip-forward": "ip_forward",
             "insecure-registries": "insecure_registries", "registry-mirrors": "registry_mirrors",
             "max-concurrent-downloads": "max_concurrent_downloads"}

    @classmethod
    def load(cls, path: str | None, overrides: dict) -> "DaemonConfig":
        """Read daemon.json (when present), then apply flag values that were given."""
        cfg = cls()
        if path and os.path.exists(path):
            try:
                with open(path) as f:
                    raw = json.load(f)
            except ValueError as e:
                raise InvalidArgument(f"unable to parse {path}: {e}") from None
            if not isinstance(raw, (dict, type(None))):
                raise InvalidArgument(f"unable to configure the daemon with file {path}: "
                                      f"the top level must be a JSON object, not {type(raw).__name__}")
            for key, value in (raw or {}).items():
                if key not in cls._KEYS:
                    raise InvalidArgument(f"{path}: unknown configuration key {key!r}")
                if value is None:  # JSON null leaves the default, as in dockerd
                    continue
                _check_type(path, key, value)
                if key == "runtimes":
                    value = {name: _runtime_path(name, rt) for name, rt in value.items()}
                setattr(cfg, cls._KEYS[key], value)
        for key, value in overrides.items():
            if value not in (None, [], {}):
                setattr(cfg, key, value)
        cfg._validate()
        return cfg

    def _validate(self) -> None:
        for host in self.hosts:  # before any work: a daemon that cannot listen sets nothing up
            check_host(host)
        if "runc" in self.runtimes:
            raise InvalidArgument("runtime name 'runc' is reserved")
        for name, binary in self.runtimes.items():
            if not binary:
                raise InvalidArgument(f"runtime {name}: either a runtimeType or a path must be configured")
        if not (0 < len(self.bridge) <= 15) or not all(ch.isalnum() or ch in "_.-" for ch in self.bridge):
            raise InvalidArgument(f"invalid bridge name {self.bridge!r}: at most 15 of [a-zA-Z0-9_.-]")
        if self.runtime != "runc" and self.runtime not in self.runtimes and "/" not in self.runtime:
            raise InvalidArgument(f"specified default runtime '{self.runtime}' does not exist")

    @property
    def owner(self) -> str:
        """The mark on every host link this daemon makes (one daemon never touches another's)."""
        import hashlib
        return "berth:" + hashlib.sha256(os.path.abspath(self.data_root).encode()).hexdigest()[:12]

    @property
    def nft_table(self) -> str:
        return "berth" if self.bridge == "berth0" else "berth_" + self.bridge

    def runtime_path(self, name: str) -> str:
        """The binary of runtime ``name``; a name holding "/" is a path already (daemon --runtime)."""
        table = {"runc": "runc", **self.runtimes}
        if name in table:
            return table[name]
        if "/" in name:
            return name
        raise InvalidArgument(f"unknown or invalid runtime name: {name}")

    @property
    def socket_paths(self) -> list[str]:
        return [h[len("unix://"):] for h in self.hosts if h.startswith("unix://")]


def check_host(host: str) -> None:
    """A listening address berthd accepts: unix://PATH, or TCP on loopback (no TLS yet)."""
    if host.startswith("unix://"):
        return
    if host.startswith("tcp://"):
        from urllib.parse import urlparse
        if urlparse(host).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise InvalidArgument(f"refusing to listen on {host}: TCP without TLS is allowed on loopback only")
        return
    raise InvalidArgument(f"invalid host {host!r}: use unix://PATH or tcp://127.0.0.1:PORT")


def _is_strs(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


_TYPES = {  # daemon.json key -> (check, what dockerd's Go type expects)
    "hosts": (_is_strs, "a list of strings"),
    "log-opts": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
                 "an object of strings"),
    "runtimes": (lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()),
                 "an object of runtime objects"),
    "default-address-pools": (lambda v: isinstance(v, list) and all(
        isinstance(x, dict) and isinstance(x.get("base"), str) and isinstance(x.get("size"), int) for x in v),
        "a list of {\"base\": CIDR, \"size\": int} objects"),
    "dns": (_is_strs, "a list of strings"),
    "dns-search": (_is_strs, "a list of strings"),
    "dns-opts": (_is_strs, "a list of strings"),
    "iptables": (lambda v: isinstance(v, bool), "a boolean"),
    "ip-forward": (lambda v: isinstance(v, bool), "a boolean"),
    "insecure-registries": (_is_strs, "a list of strings"),
    "registry-mirrors": (_is_strs, "a list of strings"),
    "max-concurrent-downloads": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
                                 "a positive integer"),
}


def _check_type(path: str, key: str, value: object) -> None:
    check, what = _TYPES.get(key, (lambda v: isinstance(v, str), "a string"))
    if not check(value):
        raise InvalidArgument(f"unable to configure the daemon with file {path}: {key} must be {what}")


def _runtime_path(name: str, rt: dict) -> str:
    """The ``path`` of one ``runtimes`` entry (berth runs OCI runtime binaries, not containerd shims)."""
    binary, args = rt.get("path"), rt.get("runtimeArgs")
    if not isinstance(binary, (str, type(None))) or not (args is None or _is_strs(args)):
        raise InvalidArgument(f"runtime {name}: path must be a string and runtimeArgs a list of strings")
    if rt.get("runtimeType"):
        raise InvalidArgument(f"runtime {name}: runtimeType is not supported, configure a path")
    if not binary:
        raise InvalidArgument(f"runtime {name}: either a runtimeType or a path must be configured")
    return binary
