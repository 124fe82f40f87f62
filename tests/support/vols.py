"""Volumes for the compatibility tests (the docker CLI, docker-py): what a test made, where a volume's data lives,
and the texts and names Docker uses for volumes.

These tests run on ``tests.support.nets.bridged_daemon`` (a berthd of the module's own); prunes in them are scoped
with a label of the test's own.
"""
from __future__ import annotations

import os
import re
import tempfile
from urllib.parse import quote

from tests.support.made import Made
from tests.support.nets import uniq

HEX64 = re.compile(r"^[0-9a-f]{64}$")  # the name of an anonymous volume
ANON = "com.docker.volume.anonymous"  # the label moby gives anonymous volumes
BAD_NAME = ('create {0}: "{0}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" '
            "are allowed. If you intended to pass a host directory, use absolute path")


class VolumesMade(Made):
    """Containers (removed with their anonymous volumes), then volumes, then host directories.

    A test module subclasses it with its own ``prefix`` for the names it makes (``PREFIX-…``, ``PREFIX-v-…``,
    host directories ``PREFIX-host-…``).
    """

    prefix = "vol"

    def __init__(self, daemon) -> None:
        super().__init__(daemon)
        self.volumes: list[str] = []

    def name(self, prefix: str | None = None) -> str:
        return self.container(uniq(prefix or self.prefix))

    def volume(self, prefix: str | None = None) -> str:
        return self.adopt(uniq(prefix or f"{self.prefix}-v"))

    def adopt(self, volume: str) -> str:
        """A volume the daemon named (anonymous ones), to remove at the end."""
        self.volumes.append(volume)
        return volume

    def host_dir(self) -> str:
        d = tempfile.mkdtemp(prefix=f"{self.prefix}-host-", dir=self.daemon.dir)
        self.paths.append(d)
        return d

    def cleanup(self) -> None:
        for ref in self.containers:
            self.daemon.api("DELETE", f"/containers/{quote(ref, safe='')}?force=1&v=1")
        self.containers = []
        for v in self.volumes:
            self.daemon.api("DELETE", f"/volumes/{quote(v, safe='')}?force=1")
        super().cleanup()


def mountpoint(daemon, name: str) -> str:
    """Where berthd keeps the data of volume ``name``."""
    return os.path.join(daemon.data_root, "volumes", name, "_data")


def volume_exists(daemon, name: str) -> bool:
    return daemon.api("GET", f"/volumes/{quote(name, safe='')}")[0] == 200
