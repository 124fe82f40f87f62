"""Image references, normalised as Docker does.

``busybox`` is ``docker.io/library/busybox:latest``; familiar names drop the
``docker.io/library/`` prefix again when shown.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from berth.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_ID = re.compile(r"^(sha256:)?[0-9a-f]{64}$")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """The full repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            return self.path[len("library/"):] if self.path.startswith("library/") else self.path
        return self.repository

    def __str__(self) -> str:
        s = self.familiar_repository
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.domain, self.path, tag, None)


def looks_like_id(s: str) -> bool:
    return bool(_ID.match(s))


def parse(name: str, default_tag: str | None = "latest") -> Reference:
    """Parse and normalise ``name``; ``InvalidArgument`` if Docker would refuse it."""
    if not name or name != name.strip():
        raise InvalidArgument(f"invalid reference format: {name!r}")
    rest, digest = name, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidArgument("invalid reference format")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidArgument("invalid reference format")
    if rest != rest.lower() and "/" not in rest:
        raise InvalidArgument("invalid reference format: repository name must be lowercase")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, remainder
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    if not path or not all(_COMPONENT.match(c) for c in path.split("/")):
        if path != path.lower():
            raise InvalidArgument("invalid reference format: repository name must be lowercase")
        raise InvalidArgument("invalid reference format")
    if len(domain) + len(path) + 1 > 255:
        raise InvalidArgument("invalid reference format: repository name must not be more than 255 characters")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(domain, path, tag, digest)
