"""What the side-by-side benchmarks (bench/build.py, bench/network.py, bench/volumes.py) share: an engine driven
through its CLI, the engines of a run (berth, and with --peers docker and podman as ../shared/peers/setup-peers.sh
starts them), timing run by run across engines, the Markdown table of results and its cells, and the command line
(--peers, --json, root). No side effects on import."""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import BIN, LAB_DOCKER, PODMAN, PODMAN_ULIMITS  # noqa: E402  (no side effects)


class Failed(Exception):
    pass


@dataclass
class Engine:
    name: str
    cli: list[str]
    image: str
    env: dict | None = None
    run_opts: list[str] = field(default_factory=list)
    made: dict[str, set] = field(default_factory=lambda: {"containers": set(), "networks": set()})

    def sh(self, *args: str, timeout: float = 60) -> str:
        cmd = self.cli + list(args)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env)
        except subprocess.TimeoutExpired:
            raise Failed(f"{self.name} {' '.join(args)}: timed out after {timeout}s") from None
        if p.returncode != 0:
            raise Failed(f"{self.name} {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
        return p.stdout.strip()

    def run(self, *args: str, timeout: float = 60) -> str:
        return self.sh("run", *self.run_opts, *args, timeout=timeout)

    def rm(self, name: str) -> None:
        self.sh("rm", "-f", name)
        self.made["containers"].discard(name)

    def cleanup(self) -> None:
        for kind, cmd in (("containers", ["rm", "-f"]), ("networks", ["network", "rm"])):
            for name in list(self.made[kind]):
                p = subprocess.run(self.cli + cmd + [name], capture_output=True, text=True, timeout=60,
                                   env=self.env)
                if p.returncode != 0 and "No such" not in p.stderr and "no such" not in p.stderr:
                    print(f"  cleanup: {self.name} {' '.join(cmd)} {name}: {p.stderr.strip()}", file=sys.stderr)
                self.made[kind].discard(name)


def engines_for(d, peers: bool, cls=Engine, run_opts: tuple[str, ...] = ()) -> list:
    """berth on the berthd ``d``; with ``peers``, docker (dockerd on LAB_DOCKER) and podman (the lab's flags) too,
    whose ``run`` gets ``run_opts`` first. Each a ``cls``; nothing is run yet."""
    engines = [cls("berth", [str(BIN / "berth"), "-H", d.host], "busybox")]
    if peers:
        if os.path.exists(LAB_DOCKER):
            engines.append(cls("docker", ["docker"], "busybox", {**os.environ, "DOCKER_HOST": "unix://" + LAB_DOCKER},
                               run_opts=list(run_opts)))
        else:
            print(f"docker: skipped, no {LAB_DOCKER} (run ../shared/peers/setup-peers.sh)", file=sys.stderr)
        if shutil.which("podman"):
            engines.append(cls("podman", PODMAN, "localhost/busybox", run_opts=[*run_opts, *PODMAN_ULIMITS]))
    return engines


def drop_broken_peers(engines: list[Engine], res: dict, key: str) -> None:
    """Give every engine its res[name] = {}; a peer whose plain ``run --rm IMG true`` fails is dropped from
    ``engines``, with the error as its ``key``."""
    for e in list(engines):
        res[e.name] = {}
        if e.name != "berth":
            try:
                e.run("--rm", e.image, "true")
            except Failed as err:
                print(f"{e.name}: skipped, a plain run fails: {err}", file=sys.stderr)
                res[e.name][key] = f"FAILED: {err}"
                engines.remove(e)


def stats(xs: list[float]) -> tuple[float, float]:
    """(median, p90)."""
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, round(0.9 * (len(xs) - 1)))]


def lockstep(engines: list[Engine], out: dict, key: str, fn, runs: int, warmup: int = 2, after=None) -> None:
    """Time fn(e, i) for every engine in turn, run by run (so drift hits all alike); after(e, i) is untimed.

    out[e.name][key] gets (median ms, p90 ms), or the error that stopped that engine.
    """
    times: dict[str, list[float]] = {e.name: [] for e in engines}
    live = list(engines)
    for i in range(runs + warmup):
        for e in list(live):
            t0 = time.perf_counter()
            try:
                try:
                    fn(e, i)
                finally:
                    dt = (time.perf_counter() - t0) * 1000
                    if after:
                        after(e, i)
            except Failed as err:
                fail(e, out, key, err)
                live.remove(e)
                continue
            if i >= warmup:
                times[e.name].append(dt)
    for e in live:
        out[e.name][key] = stats(times[e.name])


def fail(e: Engine, out: dict, key: str, err: Exception) -> None:
    out[e.name][key] = f"FAILED: {err}"
    print(f"  {e.name}: {key}: {err}", file=sys.stderr)


def render(res: dict, who: list[str], cols: list[str], rows: list[list[str]], params: str) -> str:
    """A head line (date, cpus, load, then ``params``), cols and rows as a Markdown table, then every error in
    ``res`` (a string value), for each of ``who`` in turn."""
    widths = [max(len(r[i]) for r in rows + [cols]) for i in range(len(cols))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    head = (f"{time.strftime('%Y-%m-%d %H:%M')}  {os.cpu_count()} cpus  load "
            f"{open('/proc/loadavg').read().split()[0]}  {params}")
    text = [head, line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows]
    for w in who:
        for m, v in res.get(w, {}).items():
            if isinstance(v, str):
                text.append(f"  {w}: {m}: {v}")
    return "\n".join(text)


def parse_root_args(ap: argparse.ArgumentParser, needs: str) -> argparse.Namespace:
    """Add --peers and --json to ``ap`` (after the bench's own options) and parse; exit unless root, saying what
    for (``needs``)."""
    ap.add_argument("--peers", action="store_true", help="also measure docker and podman (setup-peers.sh)")
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit(f"needs root ({needs})")
    return a


def cell(v, pair=lambda v: f"{v[0]:.0f} / {v[1]:.0f}") -> str:
    """A table cell: ``-`` for no value, FAILED for an error, a float as a ratio ``1.23x``, else (median, p90) as
    ``pair`` writes it."""
    if v is None:
        return "-"
    if isinstance(v, str):
        return "FAILED"
    if isinstance(v, float):
        return f"{v:.2f}x"
    return pair(v)


def ratio_cell(b, d) -> str:
    """berth's value over a peer's (a ratio, or the medians of two (median, p90)) as ``0.00``; ``-`` if either
    failed or is missing."""
    ok = isinstance(b, (tuple, float)) and isinstance(d, (tuple, float))
    return f"{(b if isinstance(b, float) else b[0]) / (d if isinstance(d, float) else d[0]):.2f}" if ok else "-"
