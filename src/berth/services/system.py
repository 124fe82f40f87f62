"""System use cases: version, info, disk usage."""
from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass

from berth import __version__
from berth.services.containers import ContainerService
from berth.services.images import ImageService

API_VERSION = "1.45"
MIN_API_VERSION = "1.24"


@dataclass
class SystemService:
    images: ImageService
    containers: ContainerService
    data_root: str
    exec_root: str
    runtimes: dict[str, str]
    default_runtime: str
    cgroup_version: str

    def version(self) -> dict:
        uname = platform.uname()
        return {"version": __version__, "api": API_VERSION, "min_api": MIN_API_VERSION, "os": "linux",
                "arch": _arch(uname.machine), "kernel": uname.release}

    def counts(self) -> dict:
        cs = self.containers.index.all()
        return {
            "containers": len(cs),
            "running": sum(c.state.status == "running" for c in cs),
            "paused": sum(c.state.status == "paused" for c in cs),
            "stopped": sum(not c.state.running for c in cs),
            "images": len(self.images.index.all()),
        }

    def host(self) -> dict:
        mem = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
        return {"name": socket.gethostname(), "ncpu": os.cpu_count() or 1, "mem": mem,
                "kernel": platform.release(), "os": _os_name(), "arch": platform.machine()}


def _arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"
