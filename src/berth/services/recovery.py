"""Start-up repair: what a crash (kill -9 at any point) left behind is cleaned or followed again."""
from __future__ import annotations

import os
from dataclasses import dataclass

from berth.services.containers import ContainerService
from berth.services.images import ImageService
from berth.services.lifecycle import Lifecycle
from berth.util.fs import remove_tree


@dataclass
class RecoveryReport:
    partial_blobs: int = 0
    partial_snapshots: int = 0
    orphan_snapshots: int = 0
    incomplete_containers: int = 0
    reattached: int = 0
    exited_meanwhile: int = 0
    half_started: int = 0
    network_leftovers: int = 0
    volume_leftovers: int = 0


async def recover(images: ImageService, containers: ContainerService, lifecycle: Lifecycle) -> RecoveryReport:
    r = RecoveryReport()
    r.partial_blobs = len(os.listdir(images.content.ingest))
    images.content.clean_ingest()
    r.partial_snapshots = images.snapshots.clean_partial()
    known = images.index.snapshot_ids()
    for cid in images.snapshots.on_disk() - known:
        images.snapshots.remove(cid)
        r.orphan_snapshots += 1
    used = images.index.used_blobs()
    for d in images.content.digests() - used:
        images.content.delete(d)
    remove_tree(images.staging_root)
    os.makedirs(images.staging_root, exist_ok=True)
    for cid in containers.index.incomplete():
        containers._remove_files(cid)
        containers.index.delete(cid)
        r.incomplete_containers += 1
    listed = {c.id for c in containers.index.all()}
    for name in os.listdir(containers.root):
        if len(name) == 64 and name not in listed:
            containers._remove_files(name)
    sandboxes = lifecycle.sandboxes
    await sandboxes.networks.ensure_predefined()
    for c in containers.index.all():
        if c.state.status == "restarting":  # a policy restart was pending when berthd went
            c.state.status = "exited"
            containers.index.save_state(c.id, c.state)
        if c.state.running:
            if lifecycle.paths(c.id).read_exit() is None and os.path.exists(lifecycle.paths(c.id).socket):
                r.reattached += 1
            else:
                r.exited_meanwhile += 1
            await lifecycle.reattach(c)
        elif c.state.status == "removing":
            await containers.remove(c)
        else:
            # A crash between `runc create` and `runc start` leaves a created runtime
            # container (and its shim) behind: remove it, so a start begins afresh.
            if os.path.exists(os.path.join(lifecycle.runtime_root, c.id)):
                await lifecycle.runc(c).delete(c.id)
                r.half_started += 1
            containers.unmount_rootfs(c.id)
    running = {c.id: c for c in containers.index.all() if c.state.running}
    r.network_leftovers = sum((await sandboxes.reconcile(running)).values())
    r.volume_leftovers = lifecycle.volumes.recover(set(running))
    for c in containers.index.all():
        await lifecycle.start_on_boot(c)
    return r
