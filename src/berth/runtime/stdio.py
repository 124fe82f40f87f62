"""Docker's stream framing: an 8-byte header per frame when there is no TTY."""
from __future__ import annotations

import struct

STDIN, STDOUT, STDERR = 0, 1, 2


def frame(stream: int, data: bytes) -> bytes:
    """``[stream, 0, 0, 0, size (uint32 big-endian)] + data``."""
    return struct.pack(">BxxxI", stream, len(data)) + data


def parse_frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Split complete frames off ``buf``; return them and the remainder."""
    out = []
    while len(buf) >= 8:
        stream, size = struct.unpack(">BxxxI", buf[:8])
        if len(buf) < 8 + size:
            break
        out.append((stream, buf[8:8 + size]))
        buf = buf[8 + size:]
    return out, buf
