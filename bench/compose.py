#!/usr/bin/env python3
"""Compose benchmarks (issue 8), side by side with docker-compose, in one run (never a test).

usage: sudo .venv/bin/python bench/compose.py [--runs 10] [--peers] [--json OUT]

Starts its own berthd (tests/support/daemon.Daemon) with busybox imported, writes a 5-service application
(web, api, worker, cache, db: busybox processes that exit on SIGTERM, on the project network, one named
volume, db with a healthcheck that api waits for; every image local, so nothing is pulled or built) and
times whole commands, run by run across tools (common.lockstep), medians and p90s:
  1. `compose up -d` from nothing (the network, the volume and 5 containers made and started);
  2. `compose up -d` again with nothing changed (labels and config hashes compared, nothing touched);
  3. `compose down -v` (after each cold up; the next cold up starts from nothing).
Tools: `berth compose` against that berthd; Debian's docker-compose 1.29 against the same berthd
(DOCKER_HOST); and with --peers docker-compose 1.29 against dockerd 20.10 (../shared/peers/setup-peers.sh).
Target (issue 8): the no-change `up` under 300 ms. Everything made is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Engine, Failed, cell, lockstep, parse_root_args, ratio_cell, render  # noqa: E402
from engine import LAB_DOCKER, Daemon  # noqa: E402

LOOP = "trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"
APP = f"""
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "touch /tmp/ready; {LOOP}"]
    volumes: [data:/data]
    healthcheck: {{test: ["CMD-SHELL", "test -e /tmp/ready"], interval: 1s}}
  cache:
    image: busybox:latest
    command: ["sh", "-c", "{LOOP}"]
  api:
    image: busybox:latest
    command: ["sh", "-c", "{LOOP}"]
    environment: {{DB: db, CACHE: cache}}
    depends_on: {{db: {{condition: service_healthy}}, cache: {{condition: service_started}}}}
  worker:
    image: busybox:latest
    command: ["sh", "-c", "{LOOP}"]
    depends_on: [api]
  web:
    image: busybox:latest
    command: ["sh", "-c", "{LOOP}"]
    depends_on: [api]
volumes:
  data:
"""


def tools(d: Daemon, peers: bool, work: str) -> list[Engine]:
    py = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    berth = str(Path(sys.executable).parent / "berth")
    out = [Engine("berth compose", [berth, "-H", d.host, "compose", "-p", "bench"], "", py)]
    dc = shutil.which("docker-compose")
    if dc:
        out.append(Engine("docker-compose>berthd", [dc, "-p", "benchdc"], "",
                          {**os.environ, "DOCKER_HOST": d.host}))
        if peers and os.path.exists(LAB_DOCKER):
            out.append(Engine("docker-compose>dockerd", [dc, "-p", "benchlab"], "",
                              {**os.environ, "DOCKER_HOST": "unix://" + LAB_DOCKER}))
    else:
        print("docker-compose: skipped, not installed (apt-get install docker-compose)", file=sys.stderr)
    for e in out:
        e.sh_cwd = work  # type: ignore[attr-defined]
    return out


def sh(e: Engine, *args: str) -> str:
    p = subprocess.run(e.cli + list(args), capture_output=True, text=True, timeout=300, env=e.env, cwd=e.sh_cwd)
    if p.returncode != 0:
        raise Failed(f"{e.name} {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()[-300:]}")
    return p.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    a = parse_root_args(ap, "berthd needs root")
    work = tempfile.mkdtemp(prefix="bt-bench-compose-", dir="/tmp")
    with open(os.path.join(work, "compose.yaml"), "w") as f:
        f.write(APP)
    d = Daemon()
    res: dict = {}
    es: list[Engine] = []
    try:
        d.start()
        d.import_busybox()
        es = tools(d, a.peers, work)
        for e in es:
            res[e.name] = {}
            sh(e, "down", "-v")
        lockstep(es, res, "up -d, cold", lambda e, i: sh(e, "up", "-d"), a.runs,
                 after=lambda e, i: sh(e, "down", "-v"))
        for e in es:
            sh(e, "up", "-d")
        lockstep(es, res, "up -d, no change", lambda e, i: sh(e, "up", "-d"), a.runs)
        lockstep(es, res, "down -v", lambda e, i: sh(e, "down", "-v"), a.runs, after=lambda e, i: sh(e, "up", "-d"))
    except Failed as err:
        print(f"failed: {err}", file=sys.stderr)
        res["error"] = str(err)
    finally:
        for e in es:
            try:
                sh(e, "down", "-v")
            except Failed as err:
                print(f"  cleanup: {err}", file=sys.stderr)
        d.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    who = [e.name for e in es]
    cols = ["measure (ms, median / p90)"] + who
    rows = [[m] + [cell(res.get(w, {}).get(m)) for w in who] for m in ("up -d, cold", "up -d, no change", "down -v")]
    if "docker-compose>dockerd" in who:
        cols.append("berth / docker")
        for r, m in zip(rows, ("up -d, cold", "up -d, no change", "down -v")):
            r.append(ratio_cell(res["berth compose"].get(m), res["docker-compose>dockerd"].get(m)))
    print(render(res, who, cols, rows, f"runs {a.runs}, 5 services"))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=str)


if __name__ == "__main__":
    main()
