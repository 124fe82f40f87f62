"""Reading Docker json-file logs (one JSON object per line: log, stream, time), rotated files included."""
from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class LogEntry:
    stream: str
    data: bytes
    time: str

    @property
    def timestamp(self) -> float:
        return parse_time(self.time)


@dataclass(frozen=True)
class LogQuery:
    stdout: bool = True
    stderr: bool = True
    since: float = 0.0
    until: float = 0.0
    tail: int = -1
    follow: bool = False


def parse_time(s: str) -> float:
    """RFC3339 with up to nanoseconds → Unix seconds."""
    if not s or s.startswith("0001-"):
        return 0.0
    main, frac, zone = s[:19], "", s[19:]
    if zone.startswith("."):
        digits = len(zone) - len(zone[1:].lstrip("0123456789"))
        frac, zone = zone[1:digits], zone[digits:]
    if zone in ("Z", "z", ""):
        tz = timezone.utc
    else:
        tz = datetime.strptime(zone.replace(":", ""), "%z").tzinfo
    try:
        base = datetime.fromisoformat(main).replace(tzinfo=tz).timestamp()
    except ValueError:
        raise ValueError(f"invalid RFC3339 time: {s!r}") from None
    return base + (float("0." + frac) if frac else 0.0)


def now_rfc3339() -> str:
    """Now in Go's RFC3339Nano, UTC: nanoseconds with trailing zeros trimmed, as Docker writes times.

    The trimming matters: tools that re-encode an image config (skopeo) print Go's form,
    and a config written otherwise would change its digest on the way through them.
    """
    ns = __import__("time").time_ns()
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    stamp = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return stamp + (f".{frac}" if frac else "") + "Z"


def log_files(path: str) -> list[str]:
    """Rotated files oldest first, then the live one."""
    rotated = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    return list(reversed(rotated)) + ([path] if os.path.exists(path) else [])


def _parse(line: bytes) -> LogEntry | None:
    try:
        raw = json.loads(line)
        return LogEntry(raw.get("stream", "stdout"), raw.get("log", "").encode("utf-8", "surrogateescape"), raw.get("time", ""))
    except (ValueError, AttributeError):
        return None


def _wanted(e: LogEntry, q: LogQuery) -> bool:
    if e.stream == "stdout" and not q.stdout or e.stream == "stderr" and not q.stderr:
        return False
    if q.since or q.until:
        t = e.timestamp
        if q.since and t < q.since or q.until and t > q.until:
            return False
    return True


def read_entries(path: str, q: LogQuery) -> Iterator[LogEntry]:
    """The entries already written: the last ``tail`` of both streams, then the stream and time filters."""
    if q.tail == 0:
        return iter(())
    out: deque | list = deque(maxlen=q.tail) if q.tail > 0 else []
    for name in log_files(path):
        with open(name, "rb") as f:
            out.extend(e for e in map(_parse, f) if e)
    return (e for e in out if _wanted(e, q))


async def follow(path: str, q: LogQuery, running: Callable[[], bool], poll: float = 0.05) -> AsyncIterator[LogEntry]:
    """Entries written after the existing ones, until the container stops and the file is drained."""
    offset = os.path.getsize(path) if os.path.exists(path) else 0
    inode = os.stat(path).st_ino if os.path.exists(path) else None
    pending = b""
    while True:
        alive = running()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and inode is not None and st.st_ino != inode:
            offset, pending = 0, b""  # rotated: the live file is new
        if st is not None:
            inode = st.st_ino
            if st.st_size > offset:
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                offset += len(chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    e = _parse(line)
                    if e and _wanted(e, q):
                        yield e
                continue
        if not alive:
            return
        await asyncio.sleep(poll)
