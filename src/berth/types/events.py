"""Engine events, as plain data (Docker's /events messages are made from these at the wire)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    type: str                     # container | image | daemon
    action: str                   # create, start, die, ... / tag, untag, delete, import, load, save
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_nano: int = 0

    @property
    def time(self) -> float:
        return self.time_nano / 1e9
