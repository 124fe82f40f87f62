"""Content digests: ``sha256:<64 hex>``."""
from __future__ import annotations

import hashlib
import re

from berth.errors import InvalidArgument

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def validate(digest: str) -> str:
    if not _DIGEST.match(digest):
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
