"""Image references, normalised as Docker does.

``busybox`` is ``docker.io/library/busybox:latest``; familiar names drop the
``docker.io/library/`` prefix again when shown.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from berth.errors import InvalidArgument
from berth.types.digest import ALGORITHMS, GRAMMAR, problem

DEFAULT_DOMAIN = "docker.io"
MAX_PATH = 255
# distribution/reference's grammar; Go's \w is ASCII-only, hence the explicit classes.
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN = re.compile(rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[A-Fa-f0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_HEX64 = re.compile(r"[a-f0-9]{64}")
_ID = re.compile(r"(?:sha256:)?[0-9a-f]{64}")


class Reference(NamedTuple):  # a NamedTuple, not a dataclass: the CLI does not pay for importing dataclasses
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
    return bool(_ID.fullmatch(s))


def _invalid(detail: str = "") -> InvalidArgument:
    return InvalidArgument("invalid reference format" + (f": {detail}" if detail else ""))


def parse(name: str, default_tag: str | None = "latest") -> Reference:
    """Parse and normalise ``name``; ``InvalidArgument`` if Docker would refuse it."""
    if not name or name != name.strip():
        raise _invalid()
    if _HEX64.fullmatch(name):
        raise InvalidArgument(f"invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")
    rest, digest, tag = name, None, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not GRAMMAR.fullmatch(digest):
            raise _invalid()
        why = problem(digest, tuple(ALGORITHMS))
        if why:
            raise InvalidArgument(why)
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise _invalid()
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, remainder
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = "library/" + path
    if path != path.lower():
        raise _invalid(f"repository name ({path}) must be lowercase")
    # A first part that is no host name but a valid path component makes the whole name a path.
    if _DOMAIN.fullmatch(domain):
        whole = len(path)
    elif _COMPONENT.fullmatch(domain):
        whole = len(domain) + 1 + len(path)
    else:
        raise _invalid()
    if not all(_COMPONENT.fullmatch(c) for c in path.split("/")):
        raise _invalid()
    if whole > MAX_PATH:
        raise _invalid(f"repository name must not be more than {MAX_PATH} characters")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(domain, path, tag, digest)


def split_name(image: str) -> tuple[str, str]:
    """``name[:tag][@digest]`` → (name, tag or digest) as the API's fromImage/tag take them; ``latest`` when
    neither is given (a registry's port is not a tag)."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, digest
    slash, colon = image.rfind("/"), image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1:]
    return image, "latest"
