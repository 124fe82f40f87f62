"""Rendering Docker's JSON progress messages: one bar per layer on a terminal (rich), plain lines elsewhere."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import IO


class StreamError(Exception):
    """An ``errorDetail`` message in the stream: the operation failed part-way."""


def messages(lines: Iterable[bytes]) -> Iterable[dict]:
    for line in lines:
        line = line.strip()
        if line:
            yield json.loads(line)


def render(lines: Iterable[bytes], out: IO[str] | None = None, quiet: bool = False) -> list[dict]:
    """Show the stream; return its ``aux`` payloads. Raises StreamError on an error message."""
    out = out or sys.stdout
    if not quiet and out.isatty():
        return _Bars(out).run(messages(lines))
    return _plain(messages(lines), None if quiet else out)


def _plain(msgs: Iterable[dict], out: IO[str] | None) -> list[dict]:
    """As the docker CLI off a terminal: no progress bars, one line per status (nothing when ``out`` is None)."""
    aux = []
    for m in msgs:
        if m.get("error"):
            raise StreamError(m["error"])
        if "aux" in m:
            aux.append(m["aux"])
        elif out is None:
            continue
        elif m.get("progress") or m.get("progressDetail", {}).get("current") is not None:
            continue
        elif m.get("id"):
            print(f"{m['id']}: {m.get('status', '')}", file=out, flush=True)
        elif m.get("status"):
            print(m["status"], file=out, flush=True)
        elif m.get("stream"):
            print(m["stream"], end="", file=out, flush=True)
    return aux


class _Bars:
    """Per-layer rows with a bar while bytes move, and status lines above them."""

    def __init__(self, out: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
        self.console = Console(file=out, highlight=False)
        self.progress = Progress(TextColumn("{task.fields[layer]}: {task.description:<18}"), BarColumn(bar_width=40),
                                 DownloadColumn(binary_units=False), console=self.console, transient=False,
                                 refresh_per_second=10)
        self.tasks: dict[str, int] = {}

    def run(self, msgs: Iterable[dict]) -> list[dict]:
        aux = []
        with self.progress:
            for m in msgs:
                if m.get("error"):
                    raise StreamError(m["error"])
                if "aux" in m:
                    aux.append(m["aux"])
                elif m.get("id") and (m.get("progressDetail") is not None or m["id"] in self.tasks):
                    self._layer(m)
                elif m.get("status"):
                    self.progress.console.print((f"{m['id']}: " if m.get("id") else "") + m["status"])
        return aux

    def _layer(self, m: dict) -> None:
        layer, status = m["id"], m.get("status", "")
        detail = m.get("progressDetail") or {}
        task = self.tasks.get(layer)
        if task is None:
            task = self.tasks[layer] = self.progress.add_task(status, layer=layer, total=None, start=False)
        kw: dict = {"description": status}
        if detail.get("current") is not None:
            self.progress.start_task(task)
            kw.update(completed=detail["current"], total=detail.get("total") or None)
        elif status in ("Pull complete", "Already exists", "Pushed", "Layer already exists", "Download complete") \
                or status.startswith("Mounted from"):
            t = self.progress.tasks[task]
            kw.update(completed=t.total or t.completed, total=t.total)
        self.progress.update(task, **kw)
