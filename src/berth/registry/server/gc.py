"""Offline garbage collection: remove blobs that no manifest of any repository references.

Marked: every manifest revision of every repository (tagged or not: like distribution's gc without
``--delete-untagged``, untagged manifests are kept, since they may be pulled by digest or be part of
an index) and the config and layers each one names. Swept: every other blob, and the repositories'
links to the blobs removed. Run it while no server writes to the same root.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from berth.errors import InvalidArgument
from berth.registry.server.storage import Storage
from berth.types import manifest as mf


@dataclass
class Report:
    removed: list[tuple[str, int]] = field(default_factory=list)
    unlinked: list[tuple[str, str]] = field(default_factory=list)

    @property
    def freed(self) -> int:
        return sum(size for _, size in self.removed)


def marked(store: Storage) -> set[str]:
    keep: set[str] = set()
    for name in store.repositories():
        for digest in store.revisions(name):
            rev = store.revision(name, digest)
            data = store.manifest_bytes(rev) if rev else None
            if data is None:
                continue
            keep.add(digest)
            try:
                m = mf.parse(data, rev.media_type)
            except InvalidArgument:
                continue
            if isinstance(m, mf.Manifest):
                keep.update(d.digest for d in m.blobs())
    return keep


def collect(store: Storage, dry_run: bool = False) -> Report:
    keep, report = marked(store), Report()
    for digest in store.all_blobs():
        if digest in keep:
            continue
        path = store.blob_path(digest)
        size = os.stat(path).st_size
        if not dry_run:
            os.unlink(path)
        report.removed.append((digest, size))
    gone = {d for d, _ in report.removed}
    for name in store.repositories():
        for digest in store.layer_links(name):
            if digest in gone:
                if not dry_run:
                    store.unlink(name, digest)
                report.unlinked.append((name, digest))
    return report
