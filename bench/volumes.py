#!/usr/bin/env python3
"""Volume benchmarks (issue 5), side by side with the host and the peers, in one run (never a test).

usage: sudo .venv/bin/python bench/volumes.py [--mb 1024] [--io-runs 3] [--runs 20] [--peers] [--json OUT]

Starts its own berthd on a temporary root and socket (tests/support/daemon.Daemon, as bench/network.py
does), imports the busybox image, and measures, for berth and, with --peers, for docker (dockerd on
/tmp/lab-docker.sock) and podman (the lab's flags) as ../shared/peers/setup-peers.sh starts them:

  1. I/O through a named volume: inside `run --rm -v NAME:/data IMG`, busybox
     `dd if=/dev/zero of=/data/f bs=1M count=MB conv=fsync` (write, fsync'd), then after
     `sync; echo 3 > /proc/sys/vm/drop_caches` on the host `dd if=/data/f of=/dev/null bs=1M` (read,
     uncached), then the same read again (cached); and the very same busybox dd, timed the same way, on
     a host directory next to berthd's data root (the filesystem every engine's volumes live on here:
     checked by st_dev). Timed inside the container (adjtimex's microsecond clock around dd), so
     container start-up is not in the figure. One untimed warm-up round, then --io-runs rounds with
     host and engines in rotating order; page cache dropped before each write and each first read.
     Reported: median and best MiB/s, and against the host: the median over rounds of engine/host in
     the same round, and best against best (this VM's disk is noisy, and interference only slows).
     The file is deleted after each turn; at most one file of --mb MiB exists at a time.
  2. `run --rm IMG true`, `run --rm -v NAME:/data IMG true` (the volume exists), `run --rm -v
     HOSTDIR:/data IMG true` (bind) and `run --rm -v /data IMG true` (an anonymous volume made and
     removed each time), --runs each after 2 warm-ups, run by run across engines (common.lockstep);
     medians and p90s. The anonymous volumes an engine leaves behind are counted.

Nothing here sends network traffic. Everything made is removed at the end; berthd is stopped; the peers are
left running.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (Engine, Failed, drop_broken_peers, engines_for, fail, lockstep,  # noqa: E402
                    parse_root_args, render)
from engine import Daemon  # noqa: E402  (no side effects)

TAG = f"bv{os.getpid()}"
# A microsecond clock inside busybox: adjtimex(2) read-only (allowed by the peers' default seccomp profiles).
CLOCK = ("t() { adjtimex | awk '/tv_sec/{s=$2} /tv_usec/{u=$2} END{printf \"%d%06d\\n\", s, u}'; }; ")


def timed_sh(cmd: str) -> str:
    """A busybox sh script that runs cmd and prints ``TIMING <start us> <end us>``."""
    return CLOCK + f"a=$(t); {cmd} || exit 9; b=$(t); echo TIMING $a $b"


def parse_timing(out: str, what: str) -> float:
    for line in out.splitlines():
        if line.startswith("TIMING "):
            a, b = line.split()[1:3]
            return (int(b) - int(a)) / 1e6
    raise Failed(f"{what}: no TIMING line in {out!r}")


@dataclass
class VolEngine(Engine):
    def __post_init__(self) -> None:
        self.made.setdefault("volumes", set())

    def volume(self, name: str) -> str:
        self.made["volumes"].add(name)
        self.sh("volume", "create", name)
        return name

    def mountpoint(self, name: str) -> str:
        return json.loads(self.sh("volume", "inspect", name))[0]["Mountpoint"]

    def volume_names(self) -> set[str]:
        return set(self.sh("volume", "ls", "-q").split())

    def cleanup(self) -> None:
        super().cleanup()
        for name in list(self.made["volumes"]):
            p = subprocess.run(self.cli + ["volume", "rm", "-f", name], capture_output=True, text=True, timeout=60,
                               env=self.env)
            if p.returncode != 0:
                print(f"  cleanup: {self.name} volume rm {name}: {p.stderr.strip()}", file=sys.stderr)
            self.made["volumes"].discard(name)


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def sh_host(script: str) -> str:
    p = subprocess.run(["busybox", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise Failed(f"host: busybox sh exit {p.returncode}: {p.stderr.strip()[-300:]}")
    return p.stdout


M_WRITE = "write {mb} MiB, conv=fsync (MiB/s)"
M_READ_COLD = "read {mb} MiB, caches dropped (MiB/s)"
M_READ_WARM = "read {mb} MiB, cached (MiB/s)"
IO = [M_WRITE, M_READ_COLD, M_READ_WARM]


def measure_io(engines: list[VolEngine], host_dir: str, mb: int, rounds: int, out: dict, warmup: int = 1) -> None:
    """out[who][measure] = MiB/s per round, for who in host + engines (an engine that fails gets the error);
    ``warmup`` untimed rounds first (the first writes into a fresh area of this VM's disk are slow)."""
    # the same busybox dd everywhere (on the host, busybox's sh might otherwise find coreutils' dd)
    write = f"{{dd}} if=/dev/zero of={{d}}/f bs=1M count={mb} conv=fsync 2>/dev/null"
    read = "{dd} if={d}/f of=/dev/null bs=1M 2>/dev/null"
    where: dict[str, str] = {"host": host_dir}  # who -> host path of the data directory
    live: list = ["host"]
    dev = os.stat(host_dir).st_dev
    for e in engines:
        try:
            vol = e.volume(f"{TAG}-io")
            where[e.name] = e.mountpoint(vol)
        except Failed as err:
            fail(e, out, M_WRITE.format(mb=mb), err)
            continue
        if os.stat(where[e.name]).st_dev != dev:
            print(f"  note: {e.name}'s volume {where[e.name]} is on another filesystem than {host_dir}",
                  file=sys.stderr)
        live.append(e)
    secs = {(w if w == "host" else w.name): {m: [] for m in IO} for w in live}

    def step(who, script_of) -> float:
        if who == "host":
            return parse_timing(sh_host(timed_sh(script_of(host_dir, "busybox dd"))), "host")
        return parse_timing(who.run("--rm", "-v", f"{TAG}-io:/data", who.image, "sh", "-c",
                                    timed_sh(script_of("/data", "dd")), timeout=600), who.name)

    for r in range(-warmup, rounds):
        order = live[r % len(live):] + live[:r % len(live)]
        for who in order:
            name = who if who == "host" else who.name
            f = os.path.join(where[name], "f")
            try:
                drop_caches()
                got = {M_WRITE: step(who, lambda d, dd: write.format(d=d, dd=dd))}
                drop_caches()
                got[M_READ_COLD] = step(who, lambda d, dd: read.format(d=d, dd=dd))
                got[M_READ_WARM] = step(who, lambda d, dd: read.format(d=d, dd=dd))
                if r >= 0:
                    for m, x in got.items():
                        secs[name][m].append(x)
            except Failed as err:
                if who == "host":
                    raise
                fail(who, out, M_WRITE.format(mb=mb), err)
                live.remove(who)
            finally:
                if os.path.exists(f):
                    os.unlink(f)
            print(f"  io round {r + 1}/{rounds}{' (warm-up)' if r < 0 else ''}: {name} done", file=sys.stderr)
    for name, by in secs.items():
        for m, xs in by.items():
            key = m.format(mb=mb)
            if xs and not isinstance(out.get(name, {}).get(key), str):
                out.setdefault(name, {})[key] = [mb / x for x in xs]  # MiB/s per round


M_PLAIN = "run --rm IMG true (ms)"
M_NAMED = "run --rm -v NAME:/data IMG true (ms)"
M_BIND = "run --rm -v HOSTDIR:/data IMG true (ms)"
M_ANON = "run --rm -v /data IMG true (ms)"
M_LEFT = "anonymous volumes left by --rm"
RUNS = [M_PLAIN, M_NAMED, M_BIND, M_ANON]


def measure_runs(engines: list[VolEngine], host_dir: str, runs: int, out: dict) -> None:
    lockstep(engines, out, M_PLAIN, lambda e, i: e.run("--rm", e.image, "true"), runs)
    named = []
    for e in engines:
        try:
            e.volume(f"{TAG}-run")
            named.append(e)
        except Failed as err:
            fail(e, out, M_NAMED, err)
    lockstep(named, out, M_NAMED, lambda e, i: e.run("--rm", "-v", f"{TAG}-run:/data", e.image, "true"), runs)
    lockstep(engines, out, M_BIND, lambda e, i: e.run("--rm", "-v", f"{host_dir}:/data", e.image, "true"), runs)
    before = {}
    for e in engines:
        try:
            before[e.name] = e.volume_names()
        except Failed as err:
            fail(e, out, M_ANON, err)
    lockstep([e for e in engines if e.name in before], out, M_ANON,
             lambda e, i: e.run("--rm", "-v", "/data", e.image, "true"), runs)
    for e in engines:
        if e.name in before:
            left = e.volume_names() - before[e.name]
            out[e.name][M_LEFT] = len(left)
            e.made["volumes"].update(left)


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def table(res: dict, who: list[str], mb: int, io_runs: int, runs: int) -> str:
    rows: list[list[str]] = []
    cols = ["measure"] + who + (["berth/docker"] if "docker" in who else [])
    for m in (m.format(mb=mb) for m in IO):
        row, vs = [m.replace("(MiB/s)", "MiB/s median / best")], ["  vs host: paired median / best to best"]
        host = res.get("host", {}).get(m)
        for w in who:
            v = res.get(w, {}).get(m)
            if isinstance(v, list):
                row.append(f"{med(v):.0f} / {max(v):.0f}")
                if w != "host" and isinstance(host, list) and len(host) == len(v):
                    # paired: this engine against the host in the same round, then the median of those;
                    # best: interference only ever slows a run down, so the best runs are the least disturbed
                    vs.append(f"{med([x / h for x, h in zip(v, host)]):.1%} / {max(v) / max(host):.1%}")
                else:
                    vs.append("")
            else:
                row.append("FAILED" if isinstance(v, str) else "-")
                vs.append("")
        if "docker" in who:
            b, d = res.get("berth", {}).get(m), res.get("docker", {}).get(m)
            row.append(f"{med(b) / med(d):.2f}" if isinstance(b, list) and isinstance(d, list) else "-")
            vs.append("")
        rows += [row, vs]
    for m in RUNS + [M_LEFT]:
        row = [m]
        for w in who:
            v = res.get(w, {}).get(m)
            if w == "host":
                row.append("")
            elif isinstance(v, tuple):
                row.append(f"{v[0]:.0f} / {v[1]:.0f}")
            elif isinstance(v, int):
                row.append(str(v))
            else:
                row.append("FAILED" if isinstance(v, str) else "-")
        if "docker" in who:
            b, d = res.get("berth", {}).get(m), res.get("docker", {}).get(m)
            row.append(f"{b[0] / d[0]:.2f}" if isinstance(b, tuple) and isinstance(d, tuple) else "")
        rows.append(row)
    row = ["-v NAME minus plain, median (ms)"]
    for w in who:
        p, n = res.get(w, {}).get(M_PLAIN), res.get(w, {}).get(M_NAMED)
        row.append(f"{n[0] - p[0]:+.0f}" if isinstance(p, tuple) and isinstance(n, tuple) else "")
    rows.append(row + ([""] if "docker" in who else []))
    return render(res, who, cols, rows, f"io rounds={io_runs}  runs={runs} (ms: median / p90)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=1024, help="size of the dd file in MiB (at most 1024)")
    ap.add_argument("--io-runs", type=int, default=7)
    ap.add_argument("--runs", type=int, default=20)
    a = parse_root_args(ap, "berthd, and dropping the page cache")
    if not 1 <= a.mb <= 1024:
        sys.exit("--mb: 1 to 1024")
    res: dict[str, dict] = {}
    engines: list[VolEngine] = []
    d = Daemon()
    host_dir = os.path.join(d.dir, "hostdir")
    try:
        d.start()
        d.import_busybox()
        os.makedirs(host_dir)
        free = shutil.disk_usage(host_dir).free
        print(subprocess.run(["df", "-h", host_dir], capture_output=True, text=True).stdout.strip(), file=sys.stderr)
        if free < 3 * a.mb * 2 ** 20:
            raise SystemExit(f"only {free / 2 ** 30:.1f} GiB free under {host_dir}; need 3 x {a.mb} MiB")
        engines = engines_for(d, a.peers, VolEngine, run_opts=("--pull=never",))
        drop_broken_peers(engines, res, M_PLAIN)
        print(f"measuring host, {', '.join(e.name for e in engines)}: I/O ...", file=sys.stderr)
        measure_io(engines, host_dir, a.mb, a.io_runs, res)
        print("run --rm with and without volumes, run by run ...", file=sys.stderr)
        measure_runs(engines, host_dir, a.runs, res)
    finally:
        for e in engines:
            e.cleanup()
        d.cleanup()
    who = ["host"] + [n for n in res if n != "host"]
    print(table(res, who, a.mb, a.io_runs, a.runs))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
