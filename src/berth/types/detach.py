"""Docker's detach keys: the byte sequence that ends an attach and leaves the container running."""
from __future__ import annotations

from berth.errors import InvalidArgument

DEFAULT_DETACH = b"\x10\x11"  # ctrl-p ctrl-q


def detach_sequence(spec: str | None) -> bytes:
    """``--detach-keys``: comma-separated ``ctrl-X`` (X in a-z, @, [, \\, ], ^, _) or single characters."""
    if not spec:
        return DEFAULT_DETACH
    out = bytearray()
    for key in spec.split(","):
        key = key.strip().lower()
        if len(key) == 1:
            out.append(ord(key))
        elif key.startswith("ctrl-") and len(key) == 6 and ("a" <= key[5] <= "z" or key[5] in "@[\\]^_"):
            out.append(ord(key[5].upper()) & 0x1F)
        else:
            raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
    return bytes(out)
