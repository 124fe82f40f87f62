"""Image archives: ``docker load`` input and ``docker save`` output.

Reads docker-archive (``manifest.json``) and OCI image layouts (``index.json``);
writes the combined layout ``docker save`` 25+ produces, which both
``docker load`` and ``skopeo`` accept.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import tarfile
from dataclasses import dataclass
from typing import Any, BinaryIO

from berth.errors import InvalidArgument, SystemError_
from berth.image.layers import GZIP_MAGIC, ZSTD_MAGIC, open_decompressed, store_uncompressed
from berth.types import reference
from berth.types.digest import hex_of, sha256_bytes
from berth.util.tar import TarWriter, clean_path, iter_tar, read_member, resolve_symlink

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ANN_IMAGE_NAME = "io.containerd.image.name"
ANN_REF_NAME = "org.opencontainers.image.ref.name"
_INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)
_BLOB_NAME = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_MAX_JSON = 64 << 20
_CHUNK = 1 << 20
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(platform.machine(), platform.machine())


@dataclass
class LoadedImage:
    config: bytes            # exact config JSON bytes (image ID = sha256 of these)
    layers: list[str]        # paths under the staging dir to uncompressed layer tars, bottom to top
    repo_tags: list[str]     # familiar names, e.g. ["busybox:latest"]; may be empty


@dataclass
class SavedImage:
    config: bytes
    layers: list[str]        # paths to uncompressed layer tars whose sha256 are the config's diff_ids
    repo_tags: list[str]     # familiar names "busybox:latest", "127.0.0.1:5000/x:1"


@dataclass
class _Member:
    path: str      # staged file
    digest: str    # sha256 of its bytes
    size: int
    head: bytes    # first bytes, to sniff compression


def _diff_ids(config: bytes) -> list[str]:
    try:
        diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    except (ValueError, TypeError, KeyError):
        diff_ids = None
    if not _strings(diff_ids):
        raise InvalidArgument("invalid archive: image config is not JSON with a rootfs.diff_ids list")
    return diff_ids


def read_archive(src: BinaryIO, staging: str) -> list[LoadedImage]:
    """Unpack an image archive (optionally compressed) into ``staging`` and verify it.

    Returns the images it holds. A layer shared by several images is the same
    path in each. Anything malformed raises ``InvalidArgument``.
    """
    os.makedirs(staging, exist_ok=True)
    reader = _ArchiveReader(staging)
    for tar, member in iter_tar(open_decompressed(src)):
        reader.add(tar, member)
    if reader.exists("manifest.json"):
        images = reader.docker_images()
    elif reader.exists("index.json"):
        images = reader.oci_images()
    else:
        raise InvalidArgument("invalid archive: missing manifest.json or index.json")
    keep = {p for img in images for p in img.layers}
    for m in reader.files.values():
        if m.path not in keep:
            os.unlink(m.path)
    return images


class _ArchiveReader:
    """Archive members staged as numbered files, plus links between names."""

    def __init__(self, staging: str) -> None:
        self.staging = staging
        self.files: dict[tuple[str, ...], _Member] = {}
        self.links: dict[tuple[str, ...], tuple[str, ...] | None] = {}
        self._count = 0
        self._uncompressed: dict[str, tuple[str, str]] = {}

    def _forget(self, parts: tuple[str, ...]) -> None:
        self.links.pop(parts, None)
        old = self.files.pop(parts, None)
        if old is not None:
            os.unlink(old.path)

    def add(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        parts = clean_path(m.name, "archive entry")
        if not parts:
            return
        if m.isreg():
            self._forget(parts)
            self._count += 1
            path = os.path.join(self.staging, f"member-{self._count}")
            h = hashlib.sha256()
            head = b""
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with open(fd, "wb") as out:
                data = read_member(tar, m)
                while chunk := data.read(_CHUNK):
                    if len(head) < 4:
                        head += chunk[: 4 - len(head)]
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            self.files[parts] = _Member(path, "sha256:" + h.hexdigest(), m.size, head)
        elif m.issym():
            self._forget(parts)
            self.links[parts] = resolve_symlink(parts, m.linkname)
        elif m.islnk():
            self._forget(parts)
            self.links[parts] = resolve_symlink((), "/" + m.linkname)

    def _lookup(self, name: str) -> _Member | None:
        try:
            todo = list(clean_path(name, "archive path"))
        except InvalidArgument:
            return None
        done: tuple[str, ...] = ()
        hops = 0
        while todo:
            cur = done + (todo.pop(0),)
            if cur in self.links:
                hops += 1
                target = self.links[cur]
                if target is None or hops > 40:
                    return None
                done, todo = (), list(target) + todo
            else:
                done = cur
        return self.files.get(done)

    def exists(self, name: str) -> bool:
        return self._lookup(name) is not None

    def member(self, name: str, what: str) -> _Member:
        m = self._lookup(name)
        if m is None:
            raise InvalidArgument(f"invalid archive: missing {what} {name!r}")
        blob = _BLOB_NAME.match("/".join(clean_path(name, "archive path")))
        if blob and m.digest != "sha256:" + blob.group(1):
            raise InvalidArgument(f"invalid archive: blob digest mismatch: {name} has content {m.digest}")
        return m

    def read_bytes(self, name: str, what: str) -> bytes:
        m = self.member(name, what)
        if m.size > _MAX_JSON:
            raise InvalidArgument(f"invalid archive: {what} {name!r} is too large")
        with open(m.path, "rb") as f:
            return f.read()

    def read_json(self, name: str, what: str) -> Any:
        try:
            return json.loads(self.read_bytes(name, what))
        except ValueError:
            raise InvalidArgument(f"invalid archive: {what} {name!r} is not valid JSON") from None

    def layer(self, name: str, diff_id: str) -> str:
        """Path of the uncompressed layer ``name``, checked against ``diff_id``."""
        m = self.member(name, "layer")
        if m.head.startswith(GZIP_MAGIC) or m.head == ZSTD_MAGIC:
            if m.path not in self._uncompressed:
                out = m.path + ".tar"
                with open(m.path, "rb") as f:
                    digest, _ = store_uncompressed(f, out)
                self._uncompressed[m.path] = (out, digest)
            path, digest = self._uncompressed[m.path]
        else:
            path, digest = m.path, m.digest
        if digest != diff_id:
            raise InvalidArgument(f"layer digest mismatch: {name}: config says {diff_id}, content is {digest}")
        return path

    def _image(self, config: bytes, layer_names: list[str], tags: list[str]) -> LoadedImage:
        diff_ids = _diff_ids(config)
        if len(diff_ids) != len(layer_names):
            raise InvalidArgument(f"invalid archive: image has {len(layer_names)} layers but {len(diff_ids)} diff_ids")
        return LoadedImage(config, [self.layer(n, d) for n, d in zip(layer_names, diff_ids)], tags)

    def docker_images(self) -> list[LoadedImage]:
        manifest = self.read_json("manifest.json", "file")
        if not isinstance(manifest, list):
            raise InvalidArgument("invalid archive: manifest.json is not a list")
        images = []
        for entry in manifest:
            entry = entry if isinstance(entry, dict) else {}
            config_name, layer_names, tags = entry.get("Config"), entry.get("Layers"), entry.get("RepoTags") or []
            if not (isinstance(config_name, str) and _strings(layer_names) and _strings(tags)):
                raise InvalidArgument("invalid archive: malformed manifest.json entry")
            config = self.read_bytes(config_name, "image config")
            images.append(self._image(config, layer_names, [_familiar_tag(t) for t in tags]))
        return images

    def blob(self, desc: Any, what: str) -> bytes:
        """The bytes of a small blob named by an OCI descriptor, verified."""
        digest = _desc_digest(desc, what)
        data = self.read_bytes(f"blobs/sha256/{hex_of(digest)}", what)
        if isinstance(desc.get("size"), int) and desc["size"] != len(data):
            raise InvalidArgument(f"invalid archive: {what} {digest} has size {len(data)}, expected {desc['size']}")
        return data

    def oci_images(self) -> list[LoadedImage]:
        if self.exists("oci-layout"):
            layout = self.read_json("oci-layout", "file")
            if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != "1.0.0":
                raise InvalidArgument("invalid archive: unsupported oci-layout version")
        index = self.read_json("index.json", "file")
        by_digest: dict[str, LoadedImage] = {}
        for desc in _manifests_of(index, "index.json"):
            manifest_desc, manifest = self._pick_manifest(desc, 0)
            digest = manifest_desc["digest"]
            if digest not in by_digest:
                by_digest[digest] = self._oci_image(manifest)
            img = by_digest[digest]
            tag = _tag_from_annotations(desc.get("annotations"))
            if tag and tag not in img.repo_tags:
                img.repo_tags.append(tag)
        return list(by_digest.values())

    def _pick_manifest(self, desc: Any, depth: int) -> tuple[dict, dict]:
        """Follow nested indexes from ``desc`` down to one image manifest."""
        if depth > 8:
            raise InvalidArgument("invalid archive: image indexes nested too deeply")
        doc = _json(self.blob(desc, "manifest"), "manifest")
        media_type = desc.get("mediaType") or doc.get("mediaType")
        if media_type not in _INDEX_TYPES and "manifests" not in doc:
            return desc, doc
        candidates = [d for d in _manifests_of(doc, "image index") if not _is_attestation(d)]
        wanted = [d for d in candidates if _dict(d.get("platform")).get("os") == "linux"
                  and _dict(d.get("platform")).get("architecture") == _ARCH]
        if wanted:
            return self._pick_manifest(wanted[0], depth + 1)
        if len(candidates) == 1:
            return self._pick_manifest(candidates[0], depth + 1)
        raise InvalidArgument(f"invalid archive: no linux/{_ARCH} image in image index {desc.get('digest')}")

    def _oci_image(self, manifest: dict) -> LoadedImage:
        config_desc, layer_descs = manifest.get("config"), manifest.get("layers")
        if not isinstance(config_desc, dict) or not isinstance(layer_descs, list):
            raise InvalidArgument("invalid archive: malformed image manifest")
        config = self.blob(config_desc, "image config")
        names = [f"blobs/sha256/{hex_of(_desc_digest(d, 'layer'))}" for d in layer_descs]
        return self._image(config, names, [])


def _json(data: bytes, what: str) -> dict:
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"invalid archive: {what} is not a JSON object")
    return doc


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def _desc_digest(desc: Any, what: str) -> str:
    digest = desc.get("digest") if isinstance(desc, dict) else None
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidArgument(f"invalid archive: {what} descriptor has no valid sha256 digest")
    return digest


def _manifests_of(doc: Any, what: str) -> list[dict]:
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(manifests, list) or not all(isinstance(d, dict) for d in manifests):
        raise InvalidArgument(f"invalid archive: {what} has no manifests list")
    return manifests


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _is_attestation(desc: dict) -> bool:
    return (_dict(desc.get("annotations")).get("vnd.docker.reference.type") == "attestation-manifest"
            or _dict(desc.get("platform")).get("os") == "unknown")


def _tag_from_annotations(ann: Any) -> str | None:
    """A familiar ``name:tag`` from an index entry's annotations, if it names one."""
    name = _dict(ann).get(ANN_IMAGE_NAME) or _dict(ann).get(ANN_REF_NAME)
    if not isinstance(name, str) or not (":" in name or "/" in name):
        return None  # a bare tag names no repository
    try:
        return _familiar_tag(name)
    except InvalidArgument:
        return None


def _familiar_tag(tag: str) -> str:
    """``docker.io/library/busybox:latest`` -> ``busybox:latest``."""
    ref = reference.parse(tag)
    if ref.digest:
        raise InvalidArgument(f"invalid archive: invalid repo tag {tag!r}")
    return str(ref)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def write_archive(out: BinaryIO, images: list[SavedImage]) -> None:
    """Stream a ``docker save``-style archive (OCI layout + manifest.json) to ``out``."""
    blobs: dict[str, bytes | tuple[str, str]] = {}  # hex -> bytes, or (layer path, diff_id)
    index_entries: list[dict] = []
    manifest_json: list[dict] = []
    repositories: dict[str, dict[str, str]] = {}
    merged: dict[bytes, SavedImage] = {}  # the same image named twice is written once
    for img in images:
        seen = merged.setdefault(img.config, SavedImage(img.config, img.layers, []))
        seen.repo_tags += [t for t in img.repo_tags if t not in seen.repo_tags]
    for img in merged.values():
        diff_ids = _diff_ids(img.config)
        if len(diff_ids) != len(img.layers):
            raise SystemError_(f"image has {len(img.layers)} layer files but {len(diff_ids)} diff_ids")
        config_digest = sha256_bytes(img.config)
        blobs[hex_of(config_digest)] = img.config
        layer_descs = []
        for path, diff_id in zip(img.layers, diff_ids):
            blobs.setdefault(hex_of(diff_id), (path, diff_id))
            layer_descs.append({"mediaType": MT_OCI_LAYER, "digest": diff_id, "size": os.stat(path).st_size})
        manifest = _dumps({
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": {"mediaType": MT_OCI_CONFIG, "digest": config_digest, "size": len(img.config)},
            "layers": layer_descs,
        })
        manifest_digest = sha256_bytes(manifest)
        blobs[hex_of(manifest_digest)] = manifest
        desc = {"mediaType": MT_OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
        tags = []
        for tag in img.repo_tags:
            ref = reference.parse(tag)
            if not ref.tag or ref.digest:
                raise InvalidArgument(f"cannot save {tag!r}: not a name:tag reference")
            tags.append(str(ref))
            index_entries.append({**desc, "annotations": {
                ANN_IMAGE_NAME: f"{ref.repository}:{ref.tag}", ANN_REF_NAME: ref.tag}})
            if diff_ids:
                repositories.setdefault(ref.familiar_repository, {})[ref.tag] = hex_of(diff_ids[-1])
        if not tags:
            index_entries.append(desc)
        manifest_json.append({
            "Config": f"blobs/sha256/{hex_of(config_digest)}",
            "RepoTags": tags or None,
            "Layers": [f"blobs/sha256/{hex_of(d)}" for d in diff_ids],
        })
    with TarWriter(out) as tar:
        tar.add_dir("blobs")
        tar.add_dir("blobs/sha256")
        for hexd in sorted(blobs):
            blob = blobs[hexd]
            if isinstance(blob, bytes):
                tar.add_bytes(f"blobs/sha256/{hexd}", blob)
            elif tar.add_file(f"blobs/sha256/{hexd}", blob[0]) != blob[1]:
                raise SystemError_(f"layer {blob[0]} does not match its diff_id {blob[1]}")
        tar.add_bytes("index.json", _dumps({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": index_entries}))
        tar.add_bytes("manifest.json", _dumps(manifest_json))
        tar.add_bytes("oci-layout", _dumps({"imageLayoutVersion": "1.0.0"}))
        if repositories:
            tar.add_bytes("repositories", _dumps(repositories))
