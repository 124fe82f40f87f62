"""Unpacked layers (snapshots) keyed by chain ID, and container filesystems.

A snapshot is a directory ``snapshots/<hex>/`` holding one layer's files with
overlayfs whiteouts. It is unpacked under ``snapshots/tmp-*`` and renamed into
place when complete. A container's root is an overlay of its image's snapshots
plus its own upper directory; this module *returns* that mount, it does not mount.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from berth.types.digest import hex_of
from berth.util.fs import fsync_dir, remove_tree


@dataclass(frozen=True)
class Mount:
    type: str
    source: str
    options: str


class SnapshotStore:
    def __init__(self, root: str) -> None:
        self.root = os.path.join(root, "snapshots")
        os.makedirs(self.root, exist_ok=True)

    def path(self, chain_id: str) -> str:
        return os.path.join(self.root, hex_of(chain_id))

    def exists(self, chain_id: str) -> bool:
        return os.path.isdir(self.path(chain_id))

    def prepare(self) -> str:
        """An empty directory to unpack a layer into."""
        path = os.path.join(self.root, "tmp-" + uuid.uuid4().hex)
        os.mkdir(path, 0o755)
        return path

    def commit(self, tmp: str, chain_id: str) -> None:
        target = self.path(chain_id)
        if os.path.exists(target):
            remove_tree(tmp)
            return
        os.rename(tmp, target)
        fsync_dir(self.root)

    def remove(self, chain_id: str) -> None:
        remove_tree(self.path(chain_id))

    def on_disk(self) -> set[str]:
        return {"sha256:" + n for n in os.listdir(self.root) if len(n) == 64}

    def clean_partial(self) -> int:
        """Remove unpacks that a crash interrupted."""
        names = [n for n in os.listdir(self.root) if n.startswith("tmp-")]
        for n in names:
            remove_tree(os.path.join(self.root, n))
        return len(names)

    def rootfs_mount(self, chain_ids: list[str], upper: str, work: str) -> Mount:
        """The overlay for a container: ``chain_ids`` bottom first."""
        lowers = [self.path(c) for c in reversed(chain_ids)]
        if not lowers:
            empty = os.path.join(self.root, "empty")
            os.makedirs(empty, exist_ok=True)
            lowers = [empty]
        opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
        return Mount("overlay", "overlay", opts)
