"""Volumes and a container's mount points as berth keeps them (Docker's JSON is made in api/serialize/)."""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field

ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def check_volume_name(name: str) -> None:
    """The local driver's rule for names, with Docker's text."""
    from berth.errors import InvalidArgument
    if not _NAME.match(name):
        raise InvalidArgument(f'"{name}" includes invalid characters for a local volume name, only '
                              '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
                              "use absolute path")


@dataclass
class Volume:
    name: str
    driver: str = "local"
    created: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)  # the local driver's type, device, o

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    @property
    def mounted_by_driver(self) -> bool:
        """Options make the local driver mount something (tmpfs, a device, a bind) over the data directory."""
        return bool(self.options.get("type") or self.options.get("device"))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Volume":
        return cls(**json.loads(text))


@dataclass
class MountPoint:
    """One mount of a container, resolved at create time (what inspect's ``Mounts`` shows)."""

    type: str  # bind | volume | tmpfs
    destination: str
    source: str = ""  # bind: the host path; volume: the volume's name
    rw: bool = True
    mode: str = ""  # as given after the second colon of -v (z, Z, nocopy ...)
    propagation: str = ""  # bind: rprivate unless asked
    nocopy: bool = False
    tmpfs_options: str = ""  # "size=...,mode=..." for tmpfs mounts
    create_source: bool = False  # -v makes a missing host directory; --mount refuses it
    subpath: str = ""  # a volume mount of a directory inside the volume (VolumeOptions.Subpath)

    @classmethod
    def from_dict(cls, raw: dict) -> "MountPoint":
        return cls(**{k: v for k, v in raw.items() if k in _MP_FIELDS})


_MP_FIELDS = {f.name for f in dataclasses.fields(MountPoint)}
