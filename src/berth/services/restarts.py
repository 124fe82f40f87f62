"""Restart policies: whether an exited container comes back, and after how long (Docker's back-off)."""
from __future__ import annotations

from berth.types.container import Container

FIRST_DELAY = 0.1    # seconds; doubles on each restart in a row
MAX_DELAY = 60.0
RESET_AFTER = 10.0   # a container that ran this long starts the back-off afresh


class RestartManager:
    def __init__(self) -> None:
        self._delay: dict[str, float] = {}

    @staticmethod
    def should_restart(c: Container, exit_code: int) -> bool:
        """Docker's rules for a container that just exited on its own."""
        p = c.spec.restart_policy
        if c.state.manually_stopped or c.spec.auto_remove:
            return False
        if p.name in ("always", "unless-stopped"):
            return True
        if p.name == "on-failure":
            return exit_code != 0 and (p.maximum_retry_count <= 0 or c.state.restart_count < p.maximum_retry_count)
        return False

    @staticmethod
    def start_on_boot(c: Container) -> bool:
        """Whether berthd starting up starts this (stopped) container again."""
        p = c.spec.restart_policy.name
        return p == "always" or (p == "unless-stopped" and not c.state.manually_stopped)

    def next_delay(self, cid: str, ran_for: float) -> float:
        last = 0.0 if ran_for >= RESET_AFTER else self._delay.get(cid, 0.0)
        delay = FIRST_DELAY if last == 0 else min(last * 2, MAX_DELAY)
        self._delay[cid] = delay
        return delay

    def forget(self, cid: str) -> None:
        self._delay.pop(cid, None)
