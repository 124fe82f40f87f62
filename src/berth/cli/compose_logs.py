"""Compose's interleaved logs: each line prefixed with its container's service and number (``web-1  | ``)."""
from __future__ import annotations

import sys
import threading

from berth.compose import model as m

_COLORS = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94]


def _label(c: dict) -> str:
    labels = c.get("Labels") or {}
    if labels.get(m.LABEL_ONEOFF) == "True":
        return c["Names"][0].lstrip("/")
    return f"{labels.get(m.LABEL_SERVICE, '')}-{labels.get(m.LABEL_NUMBER, '1')}"


class Printer:
    """Writes whole lines from many containers, one at a time."""

    def __init__(self, containers: list[dict], prefix: bool, color: bool) -> None:
        self.lock = threading.Lock()
        width = max((len(_label(c)) for c in containers), default=0)
        self.prefixes = {}
        for i, c in enumerate(containers):
            text = f"{_label(c).ljust(width)}  | "
            self.prefixes[c["Id"]] = (f"\x1b[{_COLORS[i % len(_COLORS)]}m{text}\x1b[0m" if color else text) \
                if prefix else ""

    def line(self, cid: str, text: str) -> None:
        with self.lock:
            sys.stdout.write(self.prefixes.get(cid, "") + text + "\n")
            sys.stdout.flush()


def _pump(ex, c: dict, printer: Printer, follow: bool, tail: str, timestamps: bool, since, until) -> None:
    from berth.compose.engine import Engine
    engine = Engine(ex.engine.api.host)  # one connection per thread
    pending = b""
    try:
        for _, data in engine.logs(c["Id"], follow=follow, tail=tail, timestamps=timestamps, since=since,
                                   until=until):
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                printer.line(c["Id"], line.decode(errors="replace").rstrip("\r"))
    except Exception:  # noqa: BLE001 - a container that went away ends its stream
        pass
    if pending:
        printer.line(c["Id"], pending.decode(errors="replace"))


def show_logs(ex, containers: list[dict], follow: bool, tail: str, timestamps: bool, prefix: bool, color: bool,
              since=None, until=None) -> None:
    printer = Printer(containers, prefix, color)
    threads = [threading.Thread(target=_pump, args=(ex, c, printer, follow, tail, timestamps, since, until),
                                daemon=True) for c in containers]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)


def follow_until_exit(ex, services: list[str], prefix: bool, abort: bool, exit_code_from: str,
                      timeout: float | None) -> int:
    """``up`` without -d: every container's output until they all exit (or one does, with ``abort``);
    Ctrl-C stops the project's containers, as Compose does."""
    containers = ex.containers(services)
    printer = Printer(containers, prefix, sys.stdout.isatty())
    done = threading.Event()

    def pump(c: dict) -> None:
        _pump(ex, c, printer, True, "all", False, None, None)
        try:
            code = (ex.engine.inspect_container(c["Id"]).get("State") or {}).get("ExitCode", 0)
            printer.line("", f"{_label(c)} exited with code {code}")
        except Exception:  # noqa: BLE001 - removed meanwhile
            pass
        done.set()
    threads = [threading.Thread(target=pump, args=(c,), daemon=True) for c in containers]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            done.wait(0.2)
            if abort and done.is_set():
                print("Aborting on container exit...", file=sys.stderr, flush=True)
                ex.stop(services, timeout)
                break
            done.clear()
    except KeyboardInterrupt:
        print("Gracefully stopping... (press Ctrl+C again to force)", file=sys.stderr, flush=True)
        ex.stop(services, timeout)
        return 130
    if exit_code_from or abort:
        target = [c for c in ex.containers(services) if not exit_code_from
                  or (c.get("Labels") or {}).get(m.LABEL_SERVICE) == exit_code_from]
        for c in target:
            info = ex.engine.inspect_container(c["Id"])
            code = (info.get("State") or {}).get("ExitCode", 0)
            if exit_code_from or code:
                return int(code)
    return 0
