"""Reading a stream to a length (no imports: the CLI uses it on its start-up path)."""
from __future__ import annotations


def read_upto(f, n: int) -> bytes:
    """Up to ``n`` bytes from ``f``, fewer only at its end (``read`` may return short counts on pipes)."""
    out = b""
    while len(out) < n:
        data = f.read(n - len(out))
        if not data:
            break
        out += data
    return out
