"""Health checks: HEALTHCHECK probes run as execs, with Docker's states, streaks and log."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field

from berth.errors import BerthError
from berth.runtime.logs import now_rfc3339
from berth.services.exec import ExecConfig, ExecService
from berth.services.lifecycle import Lifecycle
from berth.types.container import Container

NS = 1_000_000_000
DEFAULTS = {"Interval": 30 * NS, "Timeout": 30 * NS, "StartPeriod": 0, "StartInterval": 5 * NS, "Retries": 3}
MAX_OUTPUT = 4096
MAX_LOG = 5


@dataclass
class ProbeResult:
    start: str
    end: str
    exit_code: int
    output: str


@dataclass
class Health:
    status: str = "starting"  # starting | healthy | unhealthy
    failing_streak: int = 0
    log: list[ProbeResult] = field(default_factory=list)


def probe_command(test: list[str]) -> list[str] | None:
    """``["CMD", ...]`` or ``["CMD-SHELL", "cmd"]`` → argv; None for NONE or nothing."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(test[1:])]
    return test[1:] if test[0] == "CMD" else test


class HealthMonitor:
    def __init__(self, lifecycle: Lifecycle, execs: ExecService) -> None:
        self.lifecycle = lifecycle
        self.execs = execs
        self.states: dict[str, Health] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        lifecycle.on_start.append(self.started)
        lifecycle.on_exit.append(self.stopped)

    def get(self, cid: str) -> Health | None:
        return self.states.get(cid)

    async def started(self, c: Container) -> None:
        argv = probe_command((c.spec.healthcheck or {}).get("Test") or [])
        self._cancel(c.id)
        if argv is None:
            self.states.pop(c.id, None)
            return
        self.states[c.id] = Health()
        self._tasks[c.id] = asyncio.ensure_future(self._run(c, argv))

    async def stopped(self, cid: str) -> None:
        self._cancel(cid)
        h = self.states.get(cid)
        if h is not None and self.lifecycle.containers.index.get(cid) is None:
            self.states.pop(cid, None)

    def _cancel(self, cid: str) -> None:
        task = self._tasks.pop(cid, None)
        if task is not None:
            task.cancel()

    async def _run(self, c: Container, argv: list[str]) -> None:
        cfg = {**DEFAULTS, **{k: v for k, v in (c.spec.healthcheck or {}).items() if v}}
        loop = asyncio.get_running_loop()
        started = loop.time()
        h = self.states[c.id]
        while True:
            in_start = loop.time() - started < cfg["StartPeriod"] / NS
            await asyncio.sleep((cfg["StartInterval"] if in_start and h.status == "starting" else cfg["Interval"]) / NS)
            result = await self._probe(c.id, argv, cfg["Timeout"] / NS)
            h.log = (h.log + [result])[-MAX_LOG:]
            old = h.status
            if result.exit_code == 0:
                h.failing_streak, h.status = 0, "healthy"
            elif not (loop.time() - started < cfg["StartPeriod"] / NS and h.status == "starting"):
                h.failing_streak += 1
                if h.failing_streak >= cfg["Retries"]:
                    h.status = "unhealthy"
            if h.status != old:
                fresh = self.lifecycle.containers.index.get(c.id)
                if fresh is not None:
                    self.lifecycle.containers.emit(fresh, f"health_status: {h.status}")

    async def _probe(self, cid: str, argv: list[str], timeout: float) -> ProbeResult:
        start = now_rfc3339()
        try:
            e = self.execs.create(cid, ExecConfig(cmd=argv))
            session = await self.execs.start(e.id, detach=False)
        except BerthError as err:
            return ProbeResult(start, now_rfc3339(), -1, err.message)
        out = bytearray()

        async def collect() -> int:
            async for _, data in session.frames():
                if len(out) < MAX_OUTPUT:
                    out.extend(data[:MAX_OUTPUT - len(out)])
            return await self.execs.wait(e.id)

        try:
            code = await asyncio.wait_for(collect(), timeout)
            text = out.decode(errors="replace")
        except asyncio.TimeoutError:
            with contextlib.suppress(OSError):
                os.kill(e.pid, signal.SIGKILL)
            code, text = -1, f"Health check exceeded timeout ({timeout:g}s)"
        finally:
            session.close()
            self.execs.forget(e.id)
        return ProbeResult(start, now_rfc3339(), code, text)


def health_json(h: Health | None) -> dict | None:
    if h is None:
        return None
    return {"Status": h.status, "FailingStreak": h.failing_streak,
            "Log": [{"Start": r.start, "End": r.end, "ExitCode": r.exit_code, "Output": r.output} for r in h.log]}
