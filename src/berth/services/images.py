"""Image use cases: resolve, list, tag, delete, import, load, save, prune."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import BinaryIO

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.image.archive import SavedImage, read_archive, write_archive
from berth.image.layers import apply_layer, store_uncompressed
from berth.runtime.logs import now_rfc3339
from berth.services.events import EventBus
from berth.store.content import ContentStore
from berth.store.db import Database
from berth.store.images import ImageIndex
from berth.store.snapshots import SnapshotStore
from berth.types import filters as flt
from berth.types import reference
from berth.types.digest import chain_ids, sha256_bytes
from berth.types.image import ImageConfig, ImageRecord, check_signal, join_workdir, port_keys


@dataclass
class DeleteResult:
    untagged: list[str]
    deleted: list[str]


class ImageService:
    def __init__(self, db: Database, index: ImageIndex, content: ContentStore, snapshots: SnapshotStore,
                 staging_root: str, events: EventBus, intermediate=lambda: set(), parent=lambda image_id: "",
                 children=lambda image_id: set(), leased=lambda: set()) -> None:
        self.leased = leased  # layer blobs that pulls in progress hold
        self.intermediate = intermediate  # images only build steps were made on: hidden unless asked for
        self.parent = parent  # the image a build step made an image on
        self.children = children  # and the other way
        self.events = events
        self.db = db
        self.index = index
        self.content = content
        self.snapshots = snapshots
        self.staging_root = staging_root
        self._lock = asyncio.Lock()

    # -- queries -------------------------------------------------------------
    def resolve(self, name: str) -> ImageRecord:
        """An image by reference, full ID or unique ID prefix; 404 "No such image"."""
        image_id = None
        if reference.looks_like_id(name):
            image_id = name if name.startswith("sha256:") else "sha256:" + name
        else:
            try:
                ref = reference.parse(name)
                if ref.digest:
                    image_id = self.index.by_repo_digest(f"{ref.repository}@{ref.digest}")
                else:
                    image_id = self.index.by_tag(str(ref.repository + (":" + ref.tag if ref.tag else "")))
            except InvalidArgument:
                ref = None
            if image_id is None:
                prefix = name[7:] if name.startswith("sha256:") else name
                if prefix and all(c in "0123456789abcdef" for c in prefix):
                    found = self.index.by_prefix(prefix)
                    if len(found) == 1:
                        image_id = found[0]
        record = self.index.get(image_id) if image_id else None
        if record is None:
            raise NotFound.image(name)
        return record

    def list(self, filters: flt.Filters, all_images: bool = False) -> list[ImageRecord]:
        out = []
        hidden = set() if all_images else self.intermediate()
        for img in self.index.all():
            if img.id in hidden and not img.tags:
                continue
            if "dangling" in filters and flt.boolean(filters["dangling"], "dangling") != (not img.tags):
                continue
            if "label" in filters and not flt.match_labels(filters["label"], img.config.labels):
                continue
            if "reference" in filters:
                img.tags = [t for t in img.tags if any(_ref_match(p, t) for p in filters["reference"])]
                if not img.tags:
                    continue
            if "before" in filters or "since" in filters:
                pivot = self.resolve((filters.get("before") or filters.get("since"))[0])
                if "before" in filters and not img.created < pivot.created:
                    continue
                if "since" in filters and not img.created > pivot.created:
                    continue
            out.append(img)
        return out

    def config_bytes(self, img: ImageRecord) -> bytes:
        return self.content.read(img.id)

    # -- tags and deletion -----------------------------------------------------
    def tag(self, name: str, repo: str, tag: str | None) -> None:
        img = self.resolve(name)
        ref = reference.parse(f"{repo}:{tag}" if tag else repo)
        if ref.digest:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        with self.db.write() as conn:
            self.index.set_tag(conn, _key(ref), img.id)
        self.events.publish("image", "tag", img.id, {"name": _familiar(_key(ref))})

    async def delete(self, name: str, force: bool, users: dict[str, list[tuple[str, bool]]]) -> DeleteResult:
        """Docker's rmi: untag a reference, delete the image when its last reference goes.

        ``users`` maps image ID → (container ID, running) for the containers made from it.
        A running container's image is never deleted; a stopped one's only with ``force``
        (the container keeps its layers).
        """
        async with self._lock:
            img = self.resolve(name)
            running = [cid for cid, up in users.get(img.id, []) if up]
            stopped = [cid for cid, up in users.get(img.id, []) if not up]
            short = img.id[7:19]
            if not reference.looks_like_id(name) and not _is_id_prefix(name, img.id):
                key = _key(reference.parse(name))
                last = len(img.tags) <= 1
                if last and not force and (running or stopped):
                    raise Conflict(f'conflict: unable to remove repository reference "{name}" (must force) - '
                                   f"container {(running + stopped)[0][:12]} is using its referenced image {short}")
                with self.db.write() as conn:
                    self.index.remove_tag(conn, key)
                if not last or running:
                    return self._announce(img.id, DeleteResult([_familiar(key)], []))  # kept, dangling
                untagged = [_familiar(key)]
            else:
                if running:
                    raise Conflict(f"conflict: unable to delete {short} (cannot be forced) - "
                                   f"image is being used by running container {running[0][:12]}")
                if not force and stopped:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                                   f"image is being used by stopped container {stopped[0][:12]}")
                if not force and len(img.tags) > 1:
                    raise Conflict(f"conflict: unable to delete {short} (must be forced) - "
                                   "image is referenced in multiple repositories")
                untagged = [_familiar(t) for t in img.tags]
            chain = self._untagged_parents(img.id, users)
            with self.db.write() as conn:
                for image_id in [img.id] + chain:
                    self.index.remove(conn, image_id)
                dead = self.index.unused_snapshots(conn)
            await asyncio.to_thread(self._drop, dead)
            for image_id in chain:
                self.events.publish("image", "delete", image_id, {"name": image_id})
            return self._announce(img.id, DeleteResult(untagged, [img.id] + chain + dead))

    def _untagged_parents(self, image_id: str, users: dict) -> list[str]:
        """The build parents that go with an image, as dockerd's rmi removes them: untagged, unused by
        containers, and made on by nothing else."""
        chain, child, p = [], image_id, self.parent(image_id)
        while p:
            parent = self.index.get(p)
            if parent is None or parent.tags or users.get(p) or self.children(p) - {child}:
                break
            chain.append(p)
            child, p = p, self.parent(p)
        return chain

    def _announce(self, image_id: str, res: DeleteResult) -> DeleteResult:
        for name in res.untagged:
            self.events.publish("image", "untag", image_id, {"name": name})
        if image_id in res.deleted:
            self.events.publish("image", "delete", image_id, {"name": image_id})
        return res

    async def collect_garbage(self) -> list[str]:
        """Remove layers and blobs nothing uses any more (after a container that kept them went)."""
        async with self._lock:
            with self.db.write() as conn:
                dead = self.index.unused_snapshots(conn)
            await asyncio.to_thread(self._drop, dead)
            return dead

    def _drop(self, snapshot_ids: list[str]) -> None:
        for cid in snapshot_ids:
            self.snapshots.remove(cid)
        used = self.index.used_blobs()
        for d in self.content.digests() - used - self.leased():
            self.content.delete(d)

    async def prune(self, filters: flt.Filters, in_use: set[str]) -> tuple[list[dict], int]:
        dangling_only = flt.boolean(filters["dangling"], "dangling") if "dangling" in filters else True
        deleted: list[dict] = []
        sizes = self.index.snapshot_sizes()
        reclaimed = 0
        for img in self.index.all():
            if img.id in in_use or (dangling_only and img.tags):
                continue
            if "label" in filters and not flt.match_labels(filters["label"], img.config.labels):
                continue
            res = await self.delete(img.id, force=True, users={})
            deleted += [{"Untagged": t} for t in res.untagged] + [{"Deleted": d} for d in res.deleted]
            reclaimed += sum(sizes.get(d, 0) for d in res.deleted[1:])  # only layers no image uses any more
        return deleted, reclaimed

    # -- making images -----------------------------------------------------------
    def _staging(self) -> str:
        path = os.path.join(self.staging_root, uuid.uuid4().hex)
        os.makedirs(path)
        return path

    def _register(self, config: bytes, layer_files: list[str], tags: list[str]) -> tuple[str, list[str]]:
        """Unpack new layers, store blobs and commit the image rows in one transaction.

        On any failure, what this call added is removed again. Returns (image ID, tags replaced).
        """
        cfg = ImageConfig.parse(config)
        if len(cfg.diff_ids) != len(layer_files):
            raise InvalidArgument("invalid image: layer count does not match rootfs.diff_ids")
        chains = chain_ids(cfg.diff_ids)
        added_snapshots: list[str] = []
        added_blobs: list[str] = []
        layers: list[tuple[str, str, int]] = []
        try:
            for diff_id, chain_id, path in zip(cfg.diff_ids, chains, layer_files):
                if not self.content.exists(diff_id):
                    shutil.copyfile(path, tmp := self.content.temp_path())
                    self.content.commit_file(tmp, diff_id)
                    added_blobs.append(diff_id)
                known = self.db.one("SELECT size FROM snapshots WHERE chain_id=?", (chain_id,))
                if known and self.snapshots.exists(chain_id):
                    layers.append((diff_id, chain_id, known[0]))
                    continue
                tmp = self.snapshots.prepare()
                try:
                    size = apply_layer(path, tmp)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                self.snapshots.commit(tmp, chain_id)
                added_snapshots.append(chain_id)
                layers.append((diff_id, chain_id, size))
            image_id = sha256_bytes(config)
            if not self.content.exists(image_id):
                added_blobs.append(image_id)
            return self.commit_image(config, cfg, layers, tags)
        except BaseException:
            for cid in added_snapshots:
                if not self.index.snapshot_exists(cid):
                    self.snapshots.remove(cid)
            for d in added_blobs:
                if d not in self.index.used_blobs():
                    self.content.delete(d)
            raise

    def layer_size(self, chain_id: str, diff_id: str) -> int | None:
        """The unpacked size of a layer this store holds whole (row, snapshot and tar), else None."""
        row = self.db.one("SELECT size FROM snapshots WHERE chain_id=?", (chain_id,))
        if row and self.snapshots.exists(chain_id) and self.content.exists(diff_id):
            return row[0]
        return None

    async def add_pulled(self, config: bytes, cfg: ImageConfig, layers: list[tuple[str, str, int]],
                         tags: list[str], repo_digest: str) -> str:
        """``commit_image`` for a pull, serialised with deletions; the image ID."""
        async with self._lock:
            image_id, _ = await asyncio.to_thread(self.commit_image, config, cfg, layers, tags, repo_digest)
        return image_id

    def set_repo_digest(self, name: str, image_id: str) -> None:
        with self.db.write() as conn:
            self.index.set_repo_digest(conn, name, image_id)

    def commit_image(self, config: bytes, cfg: ImageConfig, layers: list[tuple[str, str, int]], tags: list[str],
                     repo_digest: str = "") -> tuple[str, list[str]]:
        """Store the config blob and commit the image rows whose layers are unpacked already, in one
        transaction. Returns (image ID, images whose tags it took)."""
        image_id = self.content.write_bytes(config)
        replaced = []
        with self.db.write() as conn:
            self.index.add(conn, image_id, config.decode(), cfg.created or now_rfc3339(), sum(x[2] for x in layers),
                           layers)
            for t in tags:
                old = self.index.set_tag(conn, t, image_id)
                if old:
                    replaced.append(old)
            if repo_digest:
                self.index.set_repo_digest(conn, repo_digest, image_id)
        return image_id, replaced

    async def import_rootfs(self, body: BinaryIO, repo: str, tag: str, changes: list[str], message: str) -> str:
        """``docker import``: one layer from a root filesystem tar, config from ``changes``."""
        tags = [_key(reference.parse(f"{repo}:{tag}" if tag else repo))] if repo else []
        staging = self._staging()
        try:
            layer = os.path.join(staging, "layer.tar")
            diff_id, _ = await asyncio.to_thread(store_uncompressed, body, layer)
            now = now_rfc3339()
            cfg = ImageConfig(created=now, diff_ids=[diff_id],
                              history=[{"created": now, "comment": message or "Imported from -"}])
            for change in changes:
                apply_change(cfg, change)
            async with self._lock:
                image_id, _ = await asyncio.to_thread(self._register, cfg.to_json(), [layer], tags)
            self.events.publish("image", "import", image_id, {"name": _familiar(tags[0]) if tags else image_id})
            return image_id
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    async def load(self, body: BinaryIO) -> list[str]:
        """``docker load``: every image of a docker-archive or OCI layout; returns messages."""
        staging = self._staging()
        try:
            images = await asyncio.to_thread(read_archive, body, staging)
            if not images:
                raise InvalidArgument("invalid archive: no images found")
            out = []
            async with self._lock:
                for img in images:
                    tags = [_key(reference.parse(t)) for t in img.repo_tags]
                    image_id, _ = await asyncio.to_thread(self._register, img.config, img.layers, tags)
                    out += [f"Loaded image: {_familiar(t)}" for t in tags] or [f"Loaded image ID: {image_id}"]
                    self.events.publish("image", "load", image_id,
                                        {"name": _familiar(tags[0]) if tags else image_id})
            return out
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def save_plan(self, names: list[str]) -> list[SavedImage]:
        plan: dict[str, SavedImage] = {}
        for name in names:
            img = self.resolve(name)
            entry = plan.setdefault(img.id, SavedImage(self.config_bytes(img),
                                                       [self.content.path(d) for d in img.config.diff_ids], []))
            if not reference.looks_like_id(name) and not _is_id_prefix(name, img.id):
                ref = reference.parse(name, default_tag=None)
                keys = [_key(ref)] if ref.tag else [t for t in img.tags if t.rsplit(":", 1)[0] == ref.repository]
                entry.repo_tags += [_familiar(k) for k in keys if _familiar(k) not in entry.repo_tags]
            self.events.publish("image", "save", img.id, {"name": name})
        return list(plan.values())

    @staticmethod
    def write_save(out: BinaryIO, plan: list[SavedImage]) -> None:
        write_archive(out, plan)


def apply_change(cfg: ImageConfig, change: str) -> None:
    """One Dockerfile-style ``--change`` line (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL)."""

    instr, _, rest = change.strip().partition(" ")
    instr, rest = instr.upper(), rest.strip()

    def argv() -> list[str]:
        if rest.startswith("["):
            try:
                v = json.loads(rest)
                if isinstance(v, list) and all(isinstance(x, str) for x in v):
                    return v
            except ValueError:
                pass
        return ["/bin/sh", "-c", rest]

    def pairs() -> list[tuple[str, str]]:
        import shlex
        words = shlex.split(rest)
        if words and "=" not in words[0]:
            return [(words[0], rest.split(None, 1)[1] if len(words) > 1 else "")]
        return [tuple(w.split("=", 1)) for w in words]  # type: ignore[misc]

    if instr == "CMD":
        cfg.cmd = argv()
    elif instr == "ENTRYPOINT":
        cfg.entrypoint = argv()
    elif instr == "ENV":
        env = list(cfg.env)
        for k, v in pairs():  # an existing key is replaced where it is
            i = next((i for i, e in enumerate(env) if e.split("=", 1)[0] == k), len(env))
            env[i:i + 1] = [f"{k}={v}"]
        cfg.env = env
    elif instr == "LABEL":
        cfg.labels.update(dict(pairs()))
    elif instr == "WORKDIR":
        cfg.working_dir = join_workdir(cfg.working_dir, rest)
    elif instr == "USER":
        cfg.user = rest
    elif instr == "EXPOSE":
        for p in rest.split():
            cfg.exposed_ports.update({k: {} for k in port_keys(p)})
    elif instr == "VOLUME":
        for v in (json.loads(rest) if rest.startswith("[") else rest.split()):
            cfg.volumes[v] = {}
    elif instr == "STOPSIGNAL":
        cfg.stop_signal = check_signal(rest)
    else:
        raise InvalidArgument(f"{instr} is not a valid change command")


def _key(ref: reference.Reference) -> str:
    return ref.repository + (":" + ref.tag if ref.tag else "") + ("@" + ref.digest if ref.digest else "")


def _familiar(key: str) -> str:
    return str(reference.parse(key))


def _is_id_prefix(name: str, image_id: str) -> bool:
    n = name[7:] if name.startswith("sha256:") else name
    return len(n) >= 4 and image_id[7:].startswith(n) and all(c in "0123456789abcdef" for c in n)


def _ref_match(pattern: str, key: str) -> bool:
    import fnmatch
    fam = _familiar(key)
    repo = fam.rsplit(":", 1)[0] if ":" in fam.rsplit("/", 1)[-1] else fam
    return fnmatch.fnmatch(fam, pattern) or fnmatch.fnmatch(repo, pattern)


def familiar(key: str) -> str:
    """A stored tag key shown as Docker shows it (``busybox:latest``)."""
    return _familiar(key)
