"""Image manifests and indexes (OCI image-spec v1.1 and Docker schema2), parsed and checked; no I/O."""
from __future__ import annotations

import json
import platform as _platform
import re
from dataclasses import dataclass, field
from typing import Any

from berth.errors import InvalidArgument

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ALL_TYPES = MANIFEST_TYPES + INDEX_TYPES
# What a client asks for: every manifest kind berth can use, best first.
ACCEPT = ", ".join(ALL_TYPES)
IMAGE_LAYER_TYPES = (DOCKER_LAYER, DOCKER_FOREIGN, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
                     "application/vnd.oci.image.layer.nondistributable.v1.tar",
                     "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                     "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")
MAX_MANIFEST = 4 << 20  # distribution's default limit on a manifest body
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(
    _platform.machine(), _platform.machine())


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


HOST = Platform("linux", ARCH)


def parse_platform(text: str) -> Platform:
    """``linux/amd64`` or ``linux/arm64/v8``; ``InvalidArgument`` otherwise."""
    parts = text.strip().lower().split("/")
    if not (2 <= len(parts) <= 3) or not all(parts):
        raise InvalidArgument(f'"{text}": unknown operating system or architecture: invalid argument')
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(parts[1], parts[1])
    return Platform(parts[0], arch, parts[2] if len(parts) == 3 else "")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    artifact_type: str = ""

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            d["platform"] = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                d["platform"]["variant"] = self.platform.variant
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        return d


@dataclass
class Manifest:
    """An image manifest: one config and its layers (or an artifact's blobs)."""
    media_type: str
    config: Descriptor
    layers: list[Descriptor]
    subject: Descriptor | None = None
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    def blobs(self) -> list[Descriptor]:
        return [self.config, *self.layers]


@dataclass
class Index:
    """A manifest list / image index: one manifest per platform."""
    media_type: str
    manifests: list[Descriptor]
    subject: Descriptor | None = None
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    def pick(self, want: Platform) -> Descriptor | None:
        """The entry for ``want`` (a missing variant matches any), attestations skipped."""
        fits = [d for d in self.manifests if d.platform and d.platform.os == want.os
                and d.platform.architecture == want.architecture
                and (not want.variant or d.platform.variant == want.variant)
                and d.annotations.get("vnd.docker.reference.type") != "attestation-manifest"]
        return fits[0] if fits else None


def _invalid(what: str) -> InvalidArgument:
    return InvalidArgument(f"manifest invalid: {what}")


def descriptor(obj: Any, what: str = "descriptor") -> Descriptor:
    """One descriptor from its JSON object, checked as the image-spec requires."""
    if not isinstance(obj, dict):
        raise _invalid(f"{what} is not an object")
    mt, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(mt, str) or not _MEDIA_TYPE.match(mt):
        raise _invalid(f"{what} has no valid mediaType")
    if not isinstance(digest, str) or not DIGEST.match(digest):
        raise _invalid(f"{what} has no valid digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{what} has no valid size")
    plat = None
    if isinstance(obj.get("platform"), dict):
        p = obj["platform"]
        if not isinstance(p.get("os"), str) or not isinstance(p.get("architecture"), str):
            raise _invalid(f"{what} platform needs os and architecture")
        plat = Platform(p["os"], p["architecture"], p.get("variant") or "")
    ann = obj.get("annotations") or {}
    if not isinstance(ann, dict) or not all(isinstance(v, str) for v in ann.values()):
        raise _invalid(f"{what} annotations must be strings")
    art = obj.get("artifactType") or ""
    return Descriptor(mt, digest, size, plat, ann, art if isinstance(art, str) else "")


def parse(data: bytes, content_type: str = "") -> Manifest | Index:
    """A manifest or index from its bytes; the media type from the body, else ``content_type``."""
    if len(data) > MAX_MANIFEST:
        raise _invalid("manifest too large")
    try:
        doc = json.loads(data)
    except ValueError:
        raise _invalid("not valid JSON") from None
    if not isinstance(doc, dict):
        raise _invalid("not a JSON object")
    if doc.get("schemaVersion") != 2:
        raise _invalid("unsupported schemaVersion (schema1 manifests are not supported)")
    mt = doc.get("mediaType") or content_type.split(";")[0].strip()
    if not mt:
        mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    subject = descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    ann = doc.get("annotations") or {}
    if not isinstance(ann, dict):
        raise _invalid("annotations must be an object")
    art = doc.get("artifactType") or ""
    if mt in INDEX_TYPES:
        items = doc.get("manifests")
        if not isinstance(items, list):
            raise _invalid("index has no manifests list")
        return Index(mt, [descriptor(d, "manifests entry") for d in items], subject, art, ann)
    if mt in MANIFEST_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise _invalid("manifest has no layers list")
        return Manifest(mt, descriptor(doc.get("config"), "config"), [descriptor(d, "layer") for d in layers],
                        subject, art, ann)
    raise _invalid(f"unsupported manifest media type {mt!r}")


def image_manifest(config: bytes, config_digest: str, layers: list[Descriptor], docker: bool = False) -> bytes:
    """The bytes of a new image manifest (Docker schema2 or OCI) for ``layers``."""
    doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
           "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": config_digest,
                      "size": len(config)},
           "layers": [d.to_dict() for d in layers]}
    return json.dumps(doc, indent=3).encode()
