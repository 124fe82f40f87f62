"""Monitoring commands: stats and top, with the docker CLI's table formats and formulas."""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from berth.cli.common import Usage, parser
from berth.client.transport import Transport, path_quote
from berth.errors import BerthError

STATS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
STATS_HEADERS = {"ID": "CONTAINER ID", "Name": "NAME", "Container": "CONTAINER", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
                 "PIDs": "PIDS"}
CLEAR = "\033[2J\033[H"


# -- the docker CLI's formulas (cli/command/container/stats_helpers.go) ---------------------------
def cpu_percent(s: dict) -> float:
    """(container CPU delta / host CPU delta) × online CPUs × 100, from ``cpu_stats`` and ``precpu_stats``."""
    cur, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    cpu_delta = float((cur.get("cpu_usage") or {}).get("total_usage", 0)) - \
        float((pre.get("cpu_usage") or {}).get("total_usage", 0))
    system_delta = float(cur.get("system_cpu_usage", 0)) - float(pre.get("system_cpu_usage", 0))
    online = float(cur.get("online_cpus", 0)) or float(len((cur.get("cpu_usage") or {}).get("percpu_usage") or []))
    if system_delta > 0.0 and cpu_delta > 0.0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def memory_usage(mem: dict) -> float:
    """Usage without the page cache that could be reclaimed: cgroup v1 ``total_inactive_file``, v2 ``inactive_file``."""
    usage = mem.get("usage", 0) or 0
    stats = mem.get("stats") or {}
    if "total_inactive_file" in stats and stats["total_inactive_file"] < usage:
        return float(usage - stats["total_inactive_file"])
    if stats.get("inactive_file", 0) < usage:
        return float(usage - stats.get("inactive_file", 0))
    return float(usage)


def block_io(blkio: dict) -> tuple[int, int]:
    read = write = 0
    for e in (blkio or {}).get("io_service_bytes_recursive") or []:
        op = e.get("op") or ""
        if op[:1] in ("r", "R"):
            read += e.get("value", 0)
        elif op[:1] in ("w", "W"):
            write += e.get("value", 0)
    return read, write


def network_io(networks: dict | None) -> tuple[int, int]:
    rx = tx = 0
    for n in (networks or {}).values():
        rx += n.get("rx_bytes", 0)
        tx += n.get("tx_bytes", 0)
    return rx, tx


def stats_row(s: dict | None, container: str, no_trunc: bool = False, invalid: bool = False) -> dict:
    """One row of ``docker stats`` (the fields of its --format templates) for one stats object."""
    from berth.types.units import bytes_size, human_size
    s = s or {}
    cid = s.get("id") or container
    name = s.get("name") or ""
    row = {"Container": container, "ID": cid if no_trunc else cid[:12], "Name": name[1:] if len(name) > 1 else "--"}
    if invalid:
        return {**row, "CPUPerc": "--", "MemUsage": "-- / --", "MemPerc": "--", "NetIO": "--", "BlockIO": "--",
                "PIDs": "--"}
    mem = s.get("memory_stats") or {}
    used = memory_usage(mem)
    limit = float(mem.get("limit", 0) or 0)
    rx, tx = network_io(s.get("networks"))
    rd, wr = block_io(s.get("blkio_stats") or {})
    return {**row,
            "CPUPerc": f"{cpu_percent(s):.2f}%",
            "MemUsage": f"{bytes_size(used)} / {bytes_size(limit)}",
            "MemPerc": f"{(used / limit * 100.0 if limit else 0.0):.2f}%",
            "NetIO": f"{human_size(rx, 3)} / {human_size(tx, 3)}",
            "BlockIO": f"{human_size(rd, 3)} / {human_size(wr, 3)}",
            "PIDs": str((s.get("pids_stats") or {}).get("current", 0))}


# -- stats ------------------------------------------------------------------------------------------
class _Watch(threading.Thread):
    """Follows one container's stats stream; ``latest`` holds the newest object."""

    def __init__(self, api: Transport, ref: str, label: str) -> None:
        super().__init__(daemon=True)
        self.api, self.ref, self.label = api, ref, label
        self.latest: dict | None = None
        self.error: str | None = None
        self.resp = None

    def run(self) -> None:
        try:
            self.resp = self.api.request("GET", f"/containers/{path_quote(self.ref)}/stats", {"stream": 1})
            for line in self.resp.raw:
                if line.strip():
                    self.latest = json.loads(line)
            self.error = "stream ended"
        except (BerthError, OSError, ValueError) as e:
            self.error = getattr(e, "message", None) or str(e)

    def stop(self) -> None:
        if self.resp is not None:
            try:
                self.resp.close()
            except OSError:
                pass

    def row(self, no_trunc: bool) -> dict:
        return stats_row(self.latest, self.label, no_trunc, invalid=self.latest is None and self.error is not None)


def _one(api: Transport, ref: str) -> tuple[dict | None, str | None]:
    try:
        return api.request("GET", f"/containers/{path_quote(ref)}/stats", {"stream": 0}).json(), None
    except BerthError as e:
        return None, e.message
    except (OSError, ValueError) as e:
        return None, str(e)


def _listed(api: Transport, all_: bool) -> list[str]:
    items = api.request("GET", "/containers/json", {"all": int(all_) or None}).json() or []
    return [c["Id"] for c in items]


def stats(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli import output
    p = parser(name, "[OPTIONS] [CONTAINER...]")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.add_argument("containers", nargs="*")
    a = p.parse_args(argv)
    explicit = bool(a.containers)
    if explicit:  # as the docker CLI: an unknown container is an error before anything is shown
        for ref in a.containers:
            api.request("GET", f"/containers/{path_quote(ref)}/json").close()
        refs = [(ref, ref) for ref in a.containers]
    else:
        refs = [(cid, cid[:12]) for cid in _listed(api, a.all)]

    def render(rows: list[dict]) -> str:
        try:
            return output.format_rows(rows, a.format, STATS_TABLE, STATS_HEADERS)
        except output.TemplateError as e:
            raise Usage(str(e)) from None

    if a.no_stream:
        results: dict[str, tuple[dict | None, str | None]] = {}

        def fetch(ref: str) -> None:
            results[ref] = _one(api, ref)

        threads = [threading.Thread(target=fetch, args=(ref,), daemon=True) for ref, _ in refs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = [stats_row(results[ref][0], label, a.no_trunc, invalid=results[ref][0] is None)
                for ref, label in refs]
        text = render(rows)
        if text:
            print(text)
        return 0

    watches: dict[str, _Watch] = {}

    def watch(ref: str, label: str) -> None:
        if ref not in watches:
            w = _Watch(api, ref, label)
            watches[ref] = w
            w.start()

    for ref, label in refs:
        watch(ref, label)
    try:
        while True:
            if not explicit:
                current = _listed(api, a.all)
                for cid in current:
                    watch(cid, cid[:12])
                for gone in set(watches) - set(current):
                    watches.pop(gone).stop()
            text = render([w.row(a.no_trunc) for w in watches.values()])
            sys.stdout.write(CLEAR + text + "\n")
            sys.stdout.flush()
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        for w in watches.values():
            w.stop()


# -- top --------------------------------------------------------------------------------------------
def top(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.output import tabwrite
    p = parser(name, "CONTAINER [ps OPTIONS]")
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    body = api.request("GET", f"/containers/{path_quote(a.container)}/top",
                       {"ps_args": " ".join(a.ps_args) or None}).json() or {}
    lines = ["\t".join(body.get("Titles") or [])] + ["\t".join(proc) for proc in body.get("Processes") or []]
    print(tabwrite("\n".join(lines), padding=3, minwidth=20))
    return 0
