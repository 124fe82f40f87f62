"""Reading Docker json-file logs (one JSON object per line: log, stream, time), rotated files included."""
from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import BinaryIO
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


def open_live(path: str) -> BinaryIO | None:
    """The live log file, held open: its data stays readable after the container (and file) is removed."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def read_entries(path: str, q: LogQuery, live: BinaryIO | None = None) -> Iterator[LogEntry]:
    """The entries already written: the last ``tail`` of both streams, then the stream and time filters.

    With ``live`` (from ``open_live``), the live file is read through it and left positioned after its
    last complete line, where ``follow`` goes on.
    """
    if q.tail == 0:
        if live is not None:
            live.seek(0, os.SEEK_END)
        return iter(())
    out: deque | list = deque(maxlen=q.tail) if q.tail > 0 else []
    for name in log_files(path):
        if live is not None and name == path:
            live.seek(0)
            data = live.read()
            complete = data.rfind(b"\n") + 1
            live.seek(complete)
            out.extend(e for e in map(_parse, data[:complete].split(b"\n")) if e)
            continue
        with open(name, "rb") as f:
            out.extend(e for e in map(_parse, f) if e)
    return (e for e in out if _wanted(e, q))


async def follow(path: str, q: LogQuery, running: Callable[[], bool], poll: float = 0.05,
                 live: BinaryIO | None = None) -> AsyncIterator[LogEntry]:
    """Entries written after the existing ones, until the container stops and the file is drained.

    ``live`` (positioned by ``read_entries``) is read to its end even when the file was removed or
    rotated meanwhile; then the current file at ``path`` is followed.
    """
    f = live or open_live(path)
    if f is not None and live is None:
        f.seek(0, os.SEEK_END)
    pending = b""
    try:
        while True:
            alive = running()
            chunk = f.read() if f is not None else b""
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    e = _parse(line)
                    if e and _wanted(e, q):
                        yield e
                continue
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current is not None and (f is None or os.fstat(f.fileno()).st_ino != current):
                if f is not None:
                    f.close()
                f, pending = open_live(path), b""  # rotated (or created): the live file is new
                continue
            if not alive:
                return
            await asyncio.sleep(poll)
    finally:
        if f is not None:
            f.close()
