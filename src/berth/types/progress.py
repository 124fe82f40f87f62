"""Progress of a long operation (pull, push), as services report it; the API renders Docker's JSON lines."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    status: str
    id: str = ""
    current: int | None = None
    total: int | None = None
    aux: dict | None = None


Emit = Callable[[Progress], None]
