#!/usr/bin/env python3
"""Network benchmarks (issue 4), side by side with the peers, in one run (never a test).

usage: sudo .venv/bin/python bench/network.py [--runs 20] [--requests 500] [--peers] [--json OUT]

Starts its own berthd on a temporary root and socket (tests/support/daemon.Daemon, as
bench/engine.py does), imports the busybox image, and measures, for berth and, with
--peers, for docker (dockerd on /tmp/lab-docker.sock) and podman (the lab's flags), as
../shared/peers/setup-peers.sh starts them (run that first; it leaves the peers running):

  1. `run --rm IMG true` on the default bridge, and on a user network (`--network benchnet-PID`);
  2. `network create NAME` (the `network rm` after each is not timed);
  3. from just before `run -d -p 127.0.0.1:PORT:80 IMG httpd -f -p 80 -h /etc` until the first
     HTTP 200 for GET /passwd from 127.0.0.1:PORT (polled every ~1 ms with http.client; the
     `rm -f` after each is not timed);
  4. the round trip of one small GET (a new TCP connection each, as a simple client does; busybox
     httpd closes after each answer, so there is no keep-alive to measure) through the published
     port 127.0.0.1:PORT (kernel DNAT, or docker's userland proxy) and straight to the container's
     bridge address, interleaved request by request, --requests of each, on one httpd container.

It prints medians and p90s per engine and the ratio berth/docker (and published/direct per
engine). Commands get 2 untimed warm-up runs, the round trips 20. Traffic goes only to
127.0.0.1 and to container addresses on local bridges (checked with `ip route get`).
Everything made here is removed at the end; berthd is stopped; the peers are left running.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (Engine, Failed, cell, drop_broken_peers, engines_for, fail, lockstep,  # noqa: E402
                    parse_root_args, ratio_cell, render, stats)
from engine import Daemon  # noqa: E402  (no side effects)

PATH = "/passwd"  # served from /etc by `httpd -h /etc`; present in every engine's busybox image
TAG = f"bn{os.getpid()}"


def free_port() -> int:
    """A port outside the ephemeral range that nothing on the host listens on."""
    for _ in range(100):
        port = random.randint(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise Failed("no free port in 20000-30000")


def get(host: str, port: int, timeout: float = 2.0) -> int:
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", PATH)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def wait_200(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = get("127.0.0.1", port, timeout=1.0)
            if last == 200:
                return
        except (OSError, http.client.HTTPException) as e:  # refused, reset, closed by a proxy
            last = e
        time.sleep(0.001)
    raise Failed(f"no HTTP 200 from 127.0.0.1:{port} within {timeout}s (last: {last!r})")


def default_dev() -> str:
    out = subprocess.run(["ip", "-o", "route", "show", "default"], capture_output=True, text=True).stdout.split()
    return out[out.index("dev") + 1] if "dev" in out else ""


def check_local_bridge(ip: str) -> None:
    """Refuse to send anything to an address that is not on a local bridge."""
    out = subprocess.run(["ip", "-o", "route", "get", ip], capture_output=True, text=True).stdout.split()
    dev = out[out.index("dev") + 1] if "dev" in out else ""
    if not dev or "via" in out or dev in ("lo", default_dev()):
        raise Failed(f"container address {ip} is not on a local bridge (route: {' '.join(out)})")


def container_ip(e: Engine, name: str) -> str:
    info = json.loads(e.sh("inspect", name))[0]["NetworkSettings"]
    ip = info.get("IPAddress") or next((n.get("IPAddress") for n in (info.get("Networks") or {}).values()
                                        if n.get("IPAddress")), "")
    if not ip:
        raise Failed(f"{e.name} inspect {name}: no IPAddress in NetworkSettings")
    check_local_bridge(ip)
    return ip


M_RUN = "run --rm IMG true, default bridge (ms)"
M_RUN_NET = "run --rm --network benchnet IMG true (ms)"
M_NETCREATE = "network create NAME (ms)"
M_TO200 = "run -d -p 127.0.0.1:P:80 httpd -> first 200 (ms)"
M_PUB = "GET via published 127.0.0.1:P, new conn (us)"
M_DIRECT = "GET direct to container IP:80, new conn (us)"
M_RATIO = "published / direct"
MEASURES = [M_RUN, M_RUN_NET, M_NETCREATE, M_TO200, M_PUB, M_DIRECT, M_RATIO]


def measure(engines: list[Engine], runs: int, requests: int, out: dict) -> None:
    """Fill out[engine][measure] with (median, p90), a float ratio, or an error string."""
    def setup(key: str, fn) -> list[Engine]:
        """The engines where fn(e) worked; the others get key marked failed."""
        ok = []
        for e in engines:
            try:
                fn(e)
                ok.append(e)
            except Failed as err:
                fail(e, out, key, err)
        return ok

    lockstep(engines, out, M_RUN, lambda e, i: e.run("--rm", e.image, "true"), runs)

    net = f"benchnet-{os.getpid()}"

    def make_net(e: Engine) -> None:
        e.made["networks"].add(net)
        e.sh("network", "create", net)
    lockstep(setup(M_RUN_NET, make_net), out, M_RUN_NET,
             lambda e, i: e.run("--rm", "--network", net, e.image, "true"), runs)

    def net_create(e: Engine, i: int) -> None:
        e.made["networks"].add(f"{TAG}-n{i}")
        e.sh("network", "create", f"{TAG}-n{i}")

    def net_rm(e: Engine, i: int) -> None:
        e.sh("network", "rm", f"{TAG}-n{i}")
        e.made["networks"].discard(f"{TAG}-n{i}")
    lockstep(engines, out, M_NETCREATE, net_create, runs, after=net_rm)

    def to_200(e: Engine, i: int) -> None:
        port = free_port()
        e.made["containers"].add(f"{TAG}-web{i}")
        e.run("-d", "--name", f"{TAG}-web{i}", "-p", f"127.0.0.1:{port}:80", e.image,
              "httpd", "-f", "-p", "80", "-h", "/etc")
        wait_200(port)
    lockstep(engines, out, M_TO200, to_200, runs, after=lambda e, i: e.rm(f"{TAG}-web{i}"))

    # Round trips: one httpd per engine; per request, each engine via the published port then direct.
    where: dict[str, tuple] = {}

    def server(e: Engine) -> None:
        port, name = free_port(), f"{TAG}-srv"
        e.made["containers"].add(name)
        e.run("-d", "--name", name, "-p", f"127.0.0.1:{port}:80", e.image, "httpd", "-f", "-p", "80", "-h", "/etc")
        wait_200(port)
        ip = container_ip(e, name)
        status = get(ip, 80)
        if status != 200:
            raise Failed(f"GET http://{ip}:80{PATH}: HTTP {status}")
        where[e.name] = (("127.0.0.1", port), (ip, 80))
    live = setup(M_PUB, server)
    us = {(e.name, k): [] for e in live for k in (0, 1)}
    for i in range(requests + 20):  # 20 warm-up requests each way
        for e in list(live):
            for k, (host, port) in enumerate(where[e.name]):
                t0 = time.perf_counter_ns()
                try:
                    status = get(host, port)
                    if status != 200:
                        raise Failed(f"GET http://{host}:{port}{PATH}: HTTP {status}")
                except (Failed, OSError, http.client.HTTPException) as err:
                    fail(e, out, M_PUB, Failed(f"request {i} to {host}:{port}: {err!r}"))
                    live.remove(e)
                    break
                if i >= 20:
                    us[e.name, k].append((time.perf_counter_ns() - t0) / 1000)
    for e in live:
        pub, direct = stats(us[e.name, 0]), stats(us[e.name, 1])
        out[e.name].update({M_PUB: pub, M_DIRECT: direct, M_RATIO: pub[0] / direct[0]})
    for e in engines:
        e.cleanup()


def fmt(v) -> str:
    return cell(v, lambda v: f"{v[0]:.1f} / {v[1]:.1f}" if v[0] < 1000 else f"{v[0]:.0f} / {v[1]:.0f}")


def table(res: dict[str, dict], runs: int, requests: int) -> str:
    engines = list(res)
    cols = ["measure (median / p90)"] + engines + (["berth/docker"] if "docker" in res else [])
    rows = []
    for m in MEASURES:
        row = [m] + [fmt(res[e].get(m)) for e in engines]
        if "docker" in res:
            row.append(ratio_cell(res["berth"].get(m), res["docker"].get(m)))
        rows.append(row)
    return render(res, engines, cols, rows, f"runs={runs}  requests={requests}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--requests", type=int, default=500)
    a = parse_root_args(ap, "berthd makes bridges, namespaces and nft rules")
    res: dict[str, dict] = {}
    engines: list[Engine] = []
    d = Daemon()
    try:
        d.start()
        d.import_busybox()
        engines = engines_for(d, a.peers)
        drop_broken_peers(engines, res, M_RUN)
        print(f"measuring {', '.join(e.name for e in engines)}, run by run ...", file=sys.stderr)
        measure(engines, a.runs, a.requests, res)
        if hasattr(d, "host_links"):  # leak check: what berth's links are left with only the default bridge
            d.remove_all_containers()
            left = d.host_links()
            if len(left) > 1:
                print(f"berth: host links left after removing every container and network: {left}", file=sys.stderr)
    finally:
        for e in engines:
            e.cleanup()
        d.cleanup()
    print(table(res, a.runs, a.requests))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
