#!/usr/bin/env python3
"""Build benchmarks (issue 6), side by side with the peers, in one run (never a test).

usage: sudo .venv/bin/python bench/build.py [--runs 20] [--peers] [--json OUT]

Starts its own berthd on a temporary root and socket (tests/support/daemon.Daemon, as bench/network.py
does), imports the busybox image, and times whole `build -q` commands, for:

  berth           `berth -H SOCK build` (the berth CLI) against that berthd;
  docker>berthd   `DOCKER_BUILDKIT=0 docker -H SOCK build` (docker CLI 28's classic builder) against it;
and with --peers, as ../shared/peers/setup-peers.sh starts them (run that first; it leaves them running):
  docker legacy   `DOCKER_BUILDKIT=0 docker build` against dockerd 20.10 (/tmp/lab-docker.sock);
  docker BuildKit `DOCKER_BUILDKIT=1 /usr/bin/docker build` against the same dockerd: docker CLI 28 has no
                  buildx plugin here, so BuildKit goes through Debian's 20.10 client, which has it built in;
  podman          `podman build --pull=never` (the lab's flags).

Measures, --runs each after 2 untimed warm-ups, run by run across engines (common.lockstep), medians and p90s
(3 and 4 in one loop, alternating which goes first, after a sync):
  1. the 4-step build FROM busybox / RUN echo hi > /x / COPY f.txt /f.txt / CMD ["cat", "/f.txt"], cold:
     `build --no-cache` (the image is removed after each run, untimed);
  2. the same with the cache on but a RUN text never seen before (a Dockerfile outside the context, via -f):
     every step from RUN on misses, after the cache was searched;
  3. the 4-step build fully cached (an identical rebuild; each must give the same image ID);
  4. a 20-step Dockerfile (FROM busybox + 19 steps cycling ENV/LABEL/RUN/COPY) fully cached.
Targets (issue 6): cold <= 300 ms, cached <= 50 ms, 20-step cached <= 2x the 4-step cached.

The berth CLI runs with bytecode caching on (PYTHONPYCACHEPREFIX under the run's temp dir), as an installed
CLI would; the environment here may say PYTHONDONTWRITEBYTECODE, which would make every run compile the
modules that changed since src/'s __pycache__ was written. Each engine's first build is checked by running
the image (`cat /f.txt`). Nothing pulls: every FROM names the local busybox (--pull=never where a CLI has it),
and builds send no network traffic. Everything made is removed at
the end (peers: every image ID that was not there before); berthd is stopped; the peers are left running.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Engine, Failed, cell, fail, lockstep, parse_root_args, ratio_cell, render, stats  # noqa: E402
from engine import LAB_DOCKER, PODMAN, PODMAN_ULIMITS, Daemon  # noqa: E402  (no side effects)

TAG = f"bb{os.getpid()}"
PAYLOAD = "payload\n"
DF4 = 'FROM busybox\nRUN echo hi > /x\nCOPY f.txt /f.txt\nCMD ["cat", "/f.txt"]\n'


def df20() -> str:
    """FROM busybox and 19 steps: ENV, LABEL, RUN, COPY in turn (5, 5, 5, 4)."""
    steps = []
    for i in range(19):
        n = i // 4 + 1
        steps.append([f"ENV V{n}=value{n}", f"LABEL bench.l{n}=label{n}", f"RUN echo step{n} > /s{n}",
                      f"COPY g{n}.txt /g{n}.txt"][i % 4])
    return "FROM busybox\n" + "\n".join(steps) + "\n"


@dataclass
class Builder(Engine):
    build_opts: list[str] = field(default_factory=list)
    before: set[str] | None = None  # image IDs before the run
    ctrs: set[str] = field(default_factory=set)  # container IDs before the run (a failed RUN step leaves one)
    peer: bool = True  # cleanup removes every image made; berthd's whole root goes anyway
    tags: set[str] = field(default_factory=set)

    def build(self, tag: str, *args: str) -> str:
        """The image ID that ``build -q`` prints."""
        self.tags.add(tag)
        out = self.sh("build", *self.build_opts, "-q", "-t", tag, *args, timeout=300).split()
        if not out:
            raise Failed(f"{self.name} build: no image ID on stdout")
        return out[-1]

    def rmi(self, tag: str) -> None:
        self.sh("rmi", "-f", tag)

    def image_ids(self) -> set[str]:
        return set(self.sh("images", "-aq", "--no-trunc").split())

    def container_ids(self) -> set[str]:
        return set(self.sh("ps", "-aq", "--no-trunc").split())

    def cleanup(self) -> None:
        super().cleanup()
        if self.before is None or not self.peer:
            return
        try:
            new = self.container_ids() - self.ctrs
            if new:
                subprocess.run(self.cli + ["rm", "-f", *new], capture_output=True, env=self.env, timeout=120)
            for t in self.tags:
                subprocess.run(self.cli + ["rmi", "-f", t], capture_output=True, env=self.env, timeout=120)
            left = self.image_ids() - self.before
            for _ in range(25):  # children before parents: retry until nothing more goes
                if not left:
                    break
                subprocess.run(self.cli + ["rmi", "-f", *left], capture_output=True, env=self.env, timeout=300)
                now = self.image_ids() - self.before
                if now == left:
                    break
                left = now
            if left:
                print(f"  cleanup: {self.name}: images left: {sorted(left)}", file=sys.stderr)
        except Failed as err:
            print(f"  cleanup: {self.name}: {err}", file=sys.stderr)


def builders(d: Daemon, peers: bool, pyc: str, notes: list[str]) -> list[Builder]:
    bin_dir = Path(sys.executable).parent
    classic = {**os.environ, "DOCKER_BUILDKIT": "0"}
    # the berth CLI as installed: with bytecode (written under our temp dir by the first run, not into src/)
    py = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PYTHONPYCACHEPREFIX": pyc}
    out = [Builder("berth", [str(bin_dir / "berth"), "-H", d.host], "busybox", py, peer=False),
           Builder("docker>berthd", ["docker", "-H", d.host], "busybox", classic, ["--pull=never"], peer=False)]
    if not peers:
        return out
    if os.path.exists(LAB_DOCKER):
        lab = {"DOCKER_HOST": "unix://" + LAB_DOCKER}
        out.append(Builder("docker legacy", ["docker"], "busybox", {**classic, **lab}, ["--pull=never"]))
        if shutil.which("/usr/bin/docker"):
            out.append(Builder("docker BuildKit", ["/usr/bin/docker"], "busybox",
                               {**os.environ, **lab, "DOCKER_BUILDKIT": "1"}, ["--pull=never"]))
        else:
            notes.append("docker BuildKit: skipped, no /usr/bin/docker (20.10 client) and docker 28 has no buildx")
    else:
        notes.append(f"docker: skipped, no {LAB_DOCKER} (run ../shared/peers/setup-peers.sh)")
    if shutil.which("podman"):
        out.append(Builder("podman", PODMAN, "localhost/busybox", run_opts=list(PODMAN_ULIMITS),
                           build_opts=["--pull=never"]))
    return out


M_COLD = "4-step cold, build --no-cache (ms)"
M_FRESH = "4-step, cache on, new RUN text (ms)"
M_CACHED = "4-step fully cached rebuild (ms)"
M_20 = "20-step fully cached rebuild (ms)"
M_RATIO = "20-step / 4-step cached"
TARGETS = {M_COLD: "<= 300", M_FRESH: "", M_CACHED: "<= 50", M_20: "<= 2x 4-step", M_RATIO: "<= 2.00x"}


def measure(engines: list[Builder], ctx: str, dfs: str, runs: int, out: dict) -> None:
    live = []
    for e in engines:  # a first build of each engine, checked by running it; then the peers' image lists
        try:
            e.before, e.ctrs = e.image_ids(), e.container_ids()
            e.build(f"{TAG}-check", ctx)
            got = e.run("--rm", f"{TAG}-check")
            if got != PAYLOAD.strip():
                raise Failed(f"{e.name}: the built image printed {got!r}, not {PAYLOAD.strip()!r}")
            e.rmi(f"{TAG}-check")
            live.append(e)
        except Failed as err:
            fail(e, out, M_COLD, err)
    slug = {e.name: e.name.replace(">", "-").replace(" ", "-").lower() for e in live}
    lockstep(live, out, M_COLD, lambda e, i: e.build(f"{TAG}-cold", "--no-cache", ctx), runs,
             after=lambda e, i: e.rmi(f"{TAG}-cold"))

    def fresh(e: Builder, i: int) -> None:
        e.build(f"{TAG}-fresh", "-f", os.path.join(dfs, f"{slug[e.name]}-{i}"), ctx)
    for e in live:
        for i in range(runs + 2):
            Path(dfs, f"{slug[e.name]}-{i}").write_text(DF4.replace("echo hi", f"echo hi {TAG} {slug[e.name]} {i}"))
    lockstep(live, out, M_FRESH, fresh, runs, after=lambda e, i: e.rmi(f"{TAG}-fresh"))

    # Both cached builds in one loop, in alternating order, so that whatever the cold builds left behind
    # (writeback, the daemons' deferred work) weighs on both alike; the first warm-up round fills the cache.
    os.sync()
    pairs = [(M_CACHED, f"{TAG}-c4", [ctx]), (M_20, f"{TAG}-c20", ["-f", os.path.join(ctx, "Dockerfile.20"), ctx])]
    ms: dict[tuple, list[float]] = {(e.name, k): [] for e in live for k, _, _ in pairs}
    ids: dict[tuple, set[str]] = {(e.name, k): set() for e in live for k, _, _ in pairs}
    for i in range(runs + 2):
        for e in list(live):
            for key, tag, args in (pairs if i % 2 else pairs[::-1]):
                t0 = time.perf_counter()
                try:
                    iid = e.build(tag, *args)
                except Failed as err:
                    fail(e, out, key, err)
                    live.remove(e)
                    break
                if i >= 1:
                    ids[e.name, key].add(iid)
                if i >= 2:
                    ms[e.name, key].append((time.perf_counter() - t0) * 1000)
    for e in live:
        for key, _, _ in pairs:
            out[e.name][key] = stats(ms[e.name, key])
            if len(ids[e.name, key]) > 1:
                out[e.name][key + " note"] = f"not fully cached: {len(ids[e.name, key])} different image IDs"
    for e in live:
        c4, c20 = out[e.name].get(M_CACHED), out[e.name].get(M_20)
        if isinstance(c4, tuple) and isinstance(c20, tuple):
            out[e.name][M_RATIO] = c20[0] / c4[0]


def table(res: dict, runs: int) -> str:
    who = list(res)
    ref = "docker legacy" if "docker legacy" in res else ""
    cols = ["measure (median / p90)", "target"] + who + ([f"berth/{ref}"] if ref else [])
    rows = []
    for m in (M_COLD, M_FRESH, M_CACHED, M_20, M_RATIO):
        row = [m, TARGETS[m]] + [cell(res[w].get(m)) for w in who]
        if ref:
            row.append(ratio_cell(res["berth"].get(m), res[ref].get(m)))
        rows.append(row)
    return render(res, who, cols, rows, f"runs={runs}  (build -q; whole CLI commands)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    a = parse_root_args(ap, "berthd makes bridges, namespaces and mounts")
    res: dict[str, dict] = {}
    notes: list[str] = []
    engines: list[Builder] = []
    tmp = tempfile.mkdtemp(prefix="bench-build-")
    ctx, dfs = os.path.join(tmp, "ctx"), os.path.join(tmp, "dockerfiles")
    os.makedirs(ctx)
    os.makedirs(dfs)
    Path(ctx, "f.txt").write_text(PAYLOAD)
    Path(ctx, "Dockerfile").write_text(DF4)
    Path(ctx, "Dockerfile.20").write_text(df20())
    for n in range(1, 5):
        Path(ctx, f"g{n}.txt").write_text(f"file {n}\n")
    d = Daemon()
    try:
        d.start()
        d.import_busybox()
        engines = builders(d, a.peers, os.path.join(tmp, "pyc"), notes)
        for e in engines:
            res[e.name] = {}
        print(f"measuring {', '.join(e.name for e in engines)}, run by run ...", file=sys.stderr)
        measure(engines, ctx, dfs, a.runs, res)
        daemon = {"berth": "berthd", "docker legacy": "dockerd", "podman": "podman"}  # one engine per store
        left = []
        for e in (e for e in engines if e.name in daemon and e.before is not None):
            try:
                left.append(f"{daemon[e.name]} {len(e.image_ids() - e.before)}")
            except Failed as err:
                left.append(f"{daemon[e.name]} ? ({err})")
        notes.append("new image IDs (images -aq) left after the run, before cleanup; each cold and new-RUN image "
                     f"was rmi'd by tag, c4 and c20 are still tagged: {', '.join(left)}")
    finally:
        for e in engines:
            e.cleanup()
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(res, a.runs))
    for n in notes:
        print(f"  {n}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
