"""Sending a layer to a registry: nothing when the registry has it, a cross-repository mount when a
sibling repository has it, else gzip (deterministic, so a re-push gives the same digest) and upload."""
from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from berth.registry.client import Repository
from berth.store.content import ContentStore
from berth.store.distribution import BlobSource
from berth.types.manifest import DOCKER_LAYER, Descriptor

Report = Callable[..., None]
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PushedLayer:
    desc: Descriptor
    how: str  # "exists", "mounted" or "pushed"
    source: str = ""  # the repository it was mounted from


async def push_layer(repo: Repository, diff_id: str, known: list[BlobSource], content: ContentStore,
                     staging: str, report: Report, compress) -> PushedLayer:
    """Make ``diff_id`` present in ``repo``; ``known`` are where it is in this registry already.

    ``compress(src, dest) -> (digest, size)`` runs the gzip in a thread (the caller's choice of executor).
    """
    short = diff_id.split(":", 1)[1][:12]
    for s in known:
        if s.repository == repo.path and await repo.has_blob(s.digest):
            return PushedLayer(Descriptor(s.media_type, s.digest, s.size), "exists")
    location = None
    for s in known:
        if s.repository != repo.path:
            location = await repo.start_upload(mount=s.digest, source=s.repository)
            if location is None:
                return PushedLayer(Descriptor(s.media_type, s.digest, s.size), "mounted", s.repository)
            break
    tmp = os.path.join(staging, short + ".gz")
    try:
        digest, size = await compress(content.path(diff_id), tmp)
        if await repo.has_blob(digest):
            return PushedLayer(Descriptor(DOCKER_LAYER, digest, size), "exists")
        location = location or await repo.start_upload()
        await repo.upload(location, digest, tmp, size, lambda done: report(short, "Pushing", done, size))
        return PushedLayer(Descriptor(DOCKER_LAYER, digest, size), "pushed")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def gzip_file(src: str, dest: str) -> tuple[str, int]:
    """gzip ``src`` to ``dest`` with no name or time in the header (same input, same bytes)."""
    with open(src, "rb") as f, open(dest, "wb") as raw:
        h = _Hashing(raw)
        with gzip.GzipFile(filename="", fileobj=h, mode="wb", compresslevel=6, mtime=0) as gz:
            while chunk := f.read(_CHUNK):
                gz.write(chunk)
        raw.flush()
        return "sha256:" + h.hash.hexdigest(), h.size


class _Hashing:
    def __init__(self, out) -> None:
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()
