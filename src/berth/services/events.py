"""The event bus: services publish, /events subscribers receive, a bounded history answers ``since``."""
from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator

from berth.types import filters as flt
from berth.types.events import Event

EVENT_FILTERS = {"type", "container", "image", "event", "label", "daemon", "network", "volume", "scope"}


class EventBus:
    def __init__(self, history: int = 1024) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[asyncio.Queue] = set()

    def publish(self, type_: str, action: str, actor_id: str, attributes: dict[str, str] | None = None) -> Event:
        e = Event(type_, action, actor_id, dict(attributes or {}), time.time_ns())
        self._history.append(e)
        for q in list(self._subscribers):
            if q.qsize() < 10000:
                q.put_nowait(e)
        return e

    async def stream(self, since: float | None, until: float | None, filters: flt.Filters,
                     names: dict[str, str] | None = None) -> AsyncIterator[Event]:
        """Past events from ``since``, then live ones until ``until`` (or forever)."""
        q: asyncio.Queue = asyncio.Queue()
        self._subscribers.add(q)
        try:
            seen = 0
            if since is not None:
                for e in list(self._history):
                    if e.time >= since and (until is None or e.time <= until) and matches(e, filters):
                        seen = max(seen, e.time_nano)
                        yield e
            while True:
                timeout = None if until is None else until - time.time()
                if timeout is not None and timeout <= 0:
                    return
                try:
                    e = await asyncio.wait_for(q.get(), timeout)
                except asyncio.TimeoutError:
                    return
                if e.time_nano <= seen or (until is not None and e.time > until):
                    continue
                if matches(e, filters):
                    yield e
        finally:
            self._subscribers.discard(q)

    @property
    def listeners(self) -> int:
        return len(self._subscribers)


def matches(e: Event, f: flt.Filters) -> bool:
    """Docker's event filters: each key present must match (values of one key are alternatives)."""
    if "type" in f and e.type not in f["type"]:
        return False
    if "event" in f and e.action not in f["event"] and e.action.split(":")[0] not in f["event"]:
        return False
    if "container" in f:
        if e.type != "container" or not any(
                e.actor_id.startswith(v) or e.attributes.get("name") == v for v in f["container"]):
            return False
    if "image" in f:
        img = e.attributes.get("image", "") if e.type == "container" else e.attributes.get("name", "")
        if not any(v in (img, e.actor_id) or img.split(":")[0] == v or e.actor_id.startswith(v)
                   for v in f["image"]):
            return False
    if "label" in f and not flt.match_labels(f["label"], e.attributes):
        return False
    return True
