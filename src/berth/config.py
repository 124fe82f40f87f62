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

    _KEYS = {"hosts": "hosts", "data-root": "data_root", "exec-root": "exec_root", "default-runtime": "runtime",
             "runtimes": "runtimes", "log-level": "log_level", "log-opts": "log_opts", "shim": "shim"}

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
            for key, value in raw.items():
                if key not in cls._KEYS:
                    raise InvalidArgument(f"{path}: unknown configuration key {key!r}")
                if key == "runtimes":
                    value = {k: (v["path"] if isinstance(v, dict) else v) for k, v in value.items()}
                setattr(cfg, cls._KEYS[key], value)
        for key, value in overrides.items():
            if value not in (None, [], {}):
                setattr(cfg, key, value)
        return cfg

    def runtime_path(self, name: str) -> str:
        table = {"runc": "runc", **self.runtimes}
        if name not in table:
            raise InvalidArgument(f"unknown or invalid runtime name: {name}")
        return table[name]

    @property
    def socket_paths(self) -> list[str]:
        return [h[len("unix://"):] for h in self.hosts if h.startswith("unix://")]
