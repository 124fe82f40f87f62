"""Fetching an image's layers: downloads at once (3 by default, as dockerd), each verified while it
streams and, as its bytes arrive, decompressed, hashed against its diff ID and unpacked into its snapshot.

A layer is complete when its snapshot is renamed into place; a pull that stops part-way leaves the
complete layers for the next try and nothing else (a layer's tar is written under the content store's
ingest/, its snapshot under snapshots/tmp-*, until both check out).
"""
from __future__ import annotations

import asyncio
import os
import queue
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass

from berth.errors import InvalidArgument
from berth.image.layers import HashingTee, _Reader, apply_layer_stream, open_decompressed
from berth.registry.client import Repository
from berth.store.content import ContentStore
from berth.store.snapshots import SnapshotStore
from berth.types.manifest import Descriptor

_CHUNK = 1 << 20
Report = Callable[..., None]  # report(layer id, status, current=None, total=None)


@dataclass(frozen=True)
class LayerJob:
    desc: Descriptor     # the blob in the registry (compressed or not)
    diff_id: str         # its uncompressed digest, from the image config
    chain_id: str

    @property
    def short(self) -> str:
        return self.desc.digest.split(":", 1)[1][:12]


class LayerFetcher:
    """Downloads and unpacks layers; remembers layers finished by pulls that did not finish."""

    def __init__(self, content: ContentStore, snapshots: SnapshotStore, downloads: int = 3) -> None:
        self.content, self.snapshots = content, snapshots
        self._downloads = asyncio.Semaphore(downloads)
        self._inflight: dict[str, asyncio.Future] = {}
        self.finished: dict[str, int] = {}  # chain ID -> unpacked size, for layers no image holds yet
        self._diff_ids: dict[str, str] = {}  # chain ID -> diff ID of layers fetching or finished

    def leased(self) -> set[str]:
        """Layer blobs (diff IDs) that pulls hold: garbage collection must leave them."""
        return set(self._diff_ids.values())

    async def fetch(self, repo: Repository, jobs: list[LayerJob], report: Report,
                    have: Callable[[LayerJob], int | None]) -> list[int]:
        """Each job's unpacked size, fetching those ``have`` does not know; raises on the first failure."""
        sizes: list[int | None] = []
        for j in jobs:
            known = have(j)
            sizes.append(known if known is not None else self.finished.get(j.chain_id))
        for j, s in zip(jobs, sizes):
            report(j.short, "Already exists" if s is not None else "Pulling fs layer")
        tasks = {i: asyncio.ensure_future(self._one(repo, j, report))
                 for i, (j, s) in enumerate(zip(jobs, sizes)) if s is None}
        try:
            for i, t in tasks.items():
                sizes[i] = await t
        finally:
            for t in tasks.values():
                t.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        return [s or 0 for s in sizes]

    async def _one(self, repo: Repository, job: LayerJob, report: Report) -> int:
        while (running := self._inflight.get(job.chain_id)) is not None:
            report(job.short, "Waiting")  # another pull is fetching the same layer
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise
                # that pull's client went away: this pull fetches the layer itself
        fut = asyncio.get_running_loop().create_future()
        self._inflight[job.chain_id] = fut
        self._diff_ids[job.chain_id] = job.diff_id
        try:
            size = await self._fetch_one(repo, job, report)
            self.finished[job.chain_id] = size
            fut.set_result(size)
            return size
        except BaseException as e:
            if not fut.done():
                if isinstance(e, Exception):
                    fut.set_exception(e)
                    fut.exception()  # retrieved: no "never retrieved" warning when nobody waits
                else:
                    fut.cancel()
            raise
        finally:
            self._inflight.pop(job.chain_id, None)
            if job.chain_id not in self.finished:
                self._diff_ids.pop(job.chain_id, None)

    async def _fetch_one(self, repo: Repository, job: LayerJob, report: Report) -> int:
        """Download and unpack at once: the bytes go through a bounded pipe to a thread that decompresses,
        hashes, keeps the tar and extracts; it commits only after the download's digest checked out."""
        total = job.desc.size
        if self._downloads.locked():
            report(job.short, "Waiting")
        loop = asyncio.get_running_loop()

        def extracting(done: int) -> None:
            loop.call_soon_threadsafe(report, job.short, "Extracting", done, total)
        async with self._downloads:
            pipe = Pipe(loop)
            unpacking = asyncio.ensure_future(
                asyncio.to_thread(unpack, pipe, job, self.content, self.snapshots, extracting))
            try:
                await repo.stream(job.desc.digest, total, pipe.feed,
                                  lambda done: report(job.short, "Downloading", done, total))
            except BaseException as e:
                pipe.fail(e if isinstance(e, Exception) else InvalidArgument("the pull was cancelled"))
                await asyncio.gather(unpacking, return_exceptions=True)
                raise
            pipe.close()
            report(job.short, "Verifying Checksum")
            report(job.short, "Download complete")
            try:
                size = await asyncio.shield(unpacking)
            except InvalidArgument as e:
                raise InvalidArgument(f"{repo.name}: {e.message}") from None
            except asyncio.CancelledError:
                await asyncio.gather(unpacking, return_exceptions=True)
                raise
        report(job.short, "Pull complete")
        return size

    def forget(self, chain_ids: list[str]) -> None:
        """Layers an image now holds: no longer the fetcher's to keep."""
        for c in chain_ids:
            self.finished.pop(c, None)
            self._diff_ids.pop(c, None)


class _Counting(_Reader):
    def __init__(self, src, report: Callable[[int], None]) -> None:
        self._src, self._report, self.done, self._last = src, report, 0, 0

    def read(self, n: int = -1) -> bytes:
        data = self._src.read(n)
        self.done += len(data)
        if self.done - self._last >= _CHUNK or (not data and self.done != self._last):
            self._last = self.done
            self._report(self.done)
        return data


def unpack(src, job: LayerJob, content: ContentStore, snapshots: SnapshotStore,
           progress: Callable[[int], None]) -> int:
    """Decompress ``src`` (a blob's bytes), keep the uncompressed tar under its diff ID and unpack the snapshot,
    in one read."""
    tar_tmp = content.temp_path()
    snap = snapshots.prepare()
    try:
        with open(tar_tmp, "wb") as out:
            tee = HashingTee(open_decompressed(_Counting(src, progress)), out)
            size = apply_layer_stream(tee, snap)
            while src.read(_CHUNK):  # the blob's end (and the download's verdict) before anything is kept
                pass
            out.flush()
            os.fsync(out.fileno())
        if tee.digest != job.diff_id:
            raise InvalidArgument(f"layer {job.desc.digest} does not match the image config: "
                                  f"diff ID {tee.digest}, expected {job.diff_id}")
        content.commit_file(tar_tmp, job.diff_id)
        snapshots.commit(snap, job.chain_id)
        return size
    except BaseException:
        if os.path.exists(tar_tmp):
            os.unlink(tar_tmp)
        shutil.rmtree(snap, ignore_errors=True)
        raise


class Pipe(_Reader):
    """Bytes from the event loop to a reading thread, at most ``limit`` of them in between (``feed`` waits
    when full); ``close`` ends the stream, ``fail`` makes the reader raise."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int = 8 << 20) -> None:
        self._loop, self._limit = loop, limit
        self._chunks: queue.Queue = queue.Queue()
        self._held = 0
        self._lock = threading.Lock()
        self._room = asyncio.Event()
        self._room.set()
        self._buf, self._pos, self._end = b"", 0, False

    async def feed(self, chunk: bytes) -> None:
        with self._lock:
            self._held += len(chunk)
            full = self._held > self._limit
            if full:
                self._room.clear()
        self._chunks.put(chunk)
        if full:
            await self._room.wait()

    def close(self) -> None:
        self._chunks.put(None)

    def fail(self, error: Exception) -> None:
        self._chunks.put(error)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return self.readall()
        while self._pos >= len(self._buf):
            if self._end:
                return b""
            item = self._chunks.get()
            if item is None:
                self._end = True
                return b""
            if isinstance(item, Exception):
                self._end = True
                raise item
            self._buf, self._pos = item, 0
            with self._lock:
                self._held -= len(item)
                if self._held <= self._limit // 2 and not self._room.is_set():
                    self._loop.call_soon_threadsafe(self._room.set)
        out = self._buf[self._pos:self._pos + n]
        self._pos += len(out)
        return out
