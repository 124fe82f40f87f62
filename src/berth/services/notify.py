"""In-process notification of container state changes, for waiters and attachers."""
from __future__ import annotations

import asyncio
from collections.abc import Callable


class Notifier:
    """One condition for the whole engine; waiters re-check their own predicate."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()

    async def changed(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(predicate), timeout)
                return True
            except asyncio.TimeoutError:
                return False
