"""Image records and the OCI image config, as plain data."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from berth.errors import InvalidArgument


@dataclass
class ImageConfig:
    """The parts of an OCI image config that berth reads (``config`` + rootfs + history)."""

    created: str = ""
    architecture: str = "amd64"
    os: str = "linux"
    author: str = ""
    env: list[str] = field(default_factory=list)
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    working_dir: str = ""
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: dict[str, dict] = field(default_factory=dict)
    volumes: dict[str, dict] = field(default_factory=dict)
    stop_signal: str = ""
    diff_ids: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> "ImageConfig":
        try:
            raw = json.loads(data)
            c = raw.get("config") or {}
            rootfs = raw.get("rootfs") or {}
            diff_ids = list(rootfs.get("diff_ids") or [])
            if not all(isinstance(d, str) for d in diff_ids):
                raise ValueError("diff_ids")
            return cls(
                created=raw.get("created") or "",
                architecture=raw.get("architecture") or "amd64",
                os=raw.get("os") or "linux",
                author=raw.get("author") or "",
                env=list(c.get("Env") or []),
                cmd=c.get("Cmd"),
                entrypoint=c.get("Entrypoint"),
                working_dir=c.get("WorkingDir") or "",
                user=c.get("User") or "",
                labels=dict(c.get("Labels") or {}),
                exposed_ports=dict(c.get("ExposedPorts") or {}),
                volumes=dict(c.get("Volumes") or {}),
                stop_signal=c.get("StopSignal") or "",
                diff_ids=diff_ids,
                history=list(raw.get("history") or []),
            )
        except (ValueError, AttributeError, TypeError) as e:
            raise InvalidArgument(f"invalid image config: {e}") from None

    def to_json(self) -> bytes:
        """Canonical OCI config bytes (the image ID is their digest)."""
        config: dict = {}
        if self.env:
            config["Env"] = self.env
        if self.cmd is not None:
            config["Cmd"] = self.cmd
        if self.entrypoint is not None:
            config["Entrypoint"] = self.entrypoint
        if self.working_dir:
            config["WorkingDir"] = self.working_dir
        if self.user:
            config["User"] = self.user
        if self.labels:
            config["Labels"] = self.labels
        if self.exposed_ports:
            config["ExposedPorts"] = self.exposed_ports
        if self.volumes:
            config["Volumes"] = self.volumes
        if self.stop_signal:
            config["StopSignal"] = self.stop_signal
        raw = {
            "architecture": self.architecture,
            "config": config,
            "created": self.created,
            "history": self.history,
            "os": self.os,
            "rootfs": {"type": "layers", "diff_ids": self.diff_ids},
        }
        if self.author:
            raw["author"] = self.author
        return json.dumps(raw, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class ImageRecord:
    id: str
    config: ImageConfig
    created: str
    size: int
    tags: list[str] = field(default_factory=list)
    chain_ids: list[str] = field(default_factory=list)
    containers: int = 0
