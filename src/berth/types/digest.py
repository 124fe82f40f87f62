"""Content digests: ``sha256:<64 hex>`` (berth's own); references may also name sha384/sha512."""
from __future__ import annotations

import hashlib
import re

from berth.errors import InvalidArgument

# go-digest's available algorithms and their hex lengths.
ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
GRAMMAR = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_HEX = re.compile(r"[0-9a-f]+")


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def problem(digest: str, algorithms: tuple[str, ...] = ("sha256",)) -> str | None:
    """Why go-digest would refuse ``digest`` (limited to ``algorithms``), or None if it is valid."""
    algo, sep, encoded = digest.partition(":")
    if not (algo and sep and encoded):
        return "invalid checksum digest format"
    if algo not in ALGORITHMS or algo not in algorithms:
        return "unsupported digest algorithm" if GRAMMAR.fullmatch(digest) else "invalid checksum digest format"
    if len(encoded) != ALGORITHMS[algo]:
        return "invalid checksum digest length"
    return None if _HEX.fullmatch(encoded) else "invalid checksum digest format"


def validate(digest: str) -> str:
    """``digest`` if it is ``sha256:`` and 64 lowercase hex digits, else InvalidArgument."""
    if problem(digest):
        raise InvalidArgument(f"invalid digest format: {digest!r}")
    return digest


def hex_of(digest: str) -> str:
    return validate(digest).split(":", 1)[1]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain IDs: ChainID(L0)=DiffID(L0), ChainID(Ln)=sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else sha256_bytes(f"{out[-1]} {d}".encode()))
    return out
