#!/usr/bin/env python3
"""Engine benchmarks, side by side with the peers, in one run (medians; never a test).

usage: sudo .venv/bin/python bench/engine.py [--runs 20] [--peers] [--idle 100]

Starts its own berthd on a temporary root, imports the busybox image, and reports
medians for: berth run --rm, berth version, berth ps -a with 50 containers,
in-process GET /containers/json?all=1 with 50 containers, berth exec (and the
docker CLI's exec against berthd, and raw runc exec), the attach round trip to a
TTY container's cat, raw runc run of the
same root filesystem (the floor), and the memory the engine spends per idle
running container (shim RSS plus the daemon's growth) for --idle containers.
With --peers, the same for docker and podman as ../shared/peers/setup-peers.sh
starts them (dockerd on /tmp/lab-docker.sock; podman with the lab's flags).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.daemon import Daemon, _Unix  # noqa: E402

BIN = Path(sys.executable).parent
LAB_DOCKER = "/tmp/lab-docker.sock"
PODMAN = ("podman --root /tmp/lab-podman/root --runroot /tmp/lab-podman/run --tmpdir /tmp/lab-podman/tmp "
          "--storage-driver overlay --cgroup-manager cgroupfs --events-backend file --runtime runc "
          "--network-config-dir /tmp/lab-podman/cni").split()
PODMAN_ULIMITS = "--ulimit nofile=20000:20000 --ulimit nproc=32768:32768".split()


def timed(cmd: list[str], runs: int, warmup: int = 2, env: dict | None = None) -> float:
    """Median wall time of a command, in ms."""
    times = []
    for i in range(runs + warmup):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def rtt(sock: str, path: str, runs: int) -> float:
    """Median in-process HTTP round trip (a new connection each time, as a CLI does), in ms."""
    times = []
    for i in range(runs + 10):
        t0 = time.perf_counter_ns()
        c = _Unix(sock)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        if i >= 10:
            times.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(times)


def attach_rtt(sock_path: str, cid: str, runs: int) -> float:
    """Median time from writing a line to a TTY container's ``cat`` until its echo comes back, in ms."""
    import socket as socketlib
    s = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(f"POST /v1.45/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n"
              "Host: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    times = []
    for i in range(runs + 10):
        t0 = time.perf_counter_ns()
        s.sendall(b"x\n")
        got = b""
        while b"x" not in got:
            got += s.recv(4096)
        if i >= 10:
            times.append((time.perf_counter_ns() - t0) / 1e6)
        # drain cat's own copy of the line before the next round
        s.settimeout(0.05)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.settimeout(None)
    s.close()
    return statistics.median(times)


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def runc_bundle(tmp: str) -> str:
    sys.path.insert(0, str(ROOT / "scripts"))
    from busybox_rootfs import make_rootfs_tar
    bundle = os.path.join(tmp, "bundle")
    os.makedirs(os.path.join(bundle, "rootfs"))
    tar = make_rootfs_tar(os.path.join(tmp, "bb.tar"))
    subprocess.run(["tar", "-C", os.path.join(bundle, "rootfs"), "-xf", tar], check=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads(Path(bundle, "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    spec["process"].pop("rlimits", None)
    Path(bundle, "config.json").write_text(json.dumps(spec))
    return bundle


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--peers", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    res: dict[str, float | str] = {}
    d = Daemon().start()
    d.import_busybox()
    berth = [str(BIN / "berth"), "-H", d.host]
    tmp = tempfile.mkdtemp(prefix="bench-")
    try:
        res["berth run --rm (ms)"] = timed(berth + ["run", "--rm", "busybox", "true"], a.runs)
        res["berth version (ms)"] = timed(berth + ["version"], a.runs)
        for i in range(50):
            d.cli("create", "--name", f"bench{i}", "busybox", "true")
        res["berth ps -a, 50 containers (ms)"] = timed(berth + ["ps", "-a"], a.runs)
        res["GET /containers/json?all=1, 50 containers, in-process (ms)"] = rtt(
            d.socket, "/v1.45/containers/json?all=1", max(a.runs, 200))
        d.remove_all_containers()
        target = d.cli("run", "-d", "--name", "exec-target", "busybox", "sleep", "100000").stdout.decode().strip()
        res["berth exec CONTAINER true (ms)"] = timed(berth + ["exec", "exec-target", "true"], a.runs)
        res["docker CLI exec against berthd (ms)"] = timed(["docker", "-H", d.host, "exec", "exec-target", "true"],
                                                           a.runs)
        res["runc exec, floor (ms)"] = timed(["runc", "--root", os.path.join(d.exec_root, "runtime"), "exec", target,
                                              "true"], a.runs)
        tty = d.cli("run", "-d", "-i", "-t", "--name", "tty-cat", "busybox", "cat").stdout.decode().strip()
        res["attach round trip, TTY cat, in-process (ms)"] = attach_rtt(d.socket, tty, max(a.runs, 200))
        d.remove_all_containers()
        bundle = runc_bundle(tmp)
        root = os.path.join(tmp, "runc-root")
        counter = iter(range(10 ** 6))
        times = []
        for i in range(a.runs + 2):
            t0 = time.perf_counter()
            subprocess.run(["runc", "--root", root, "run", "--bundle", bundle, f"b{next(counter)}"], check=True,
                           stdout=subprocess.DEVNULL)
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1000)
        res["runc run, same rootfs (ms)"] = statistics.median(times)

        # Memory per idle running container.
        daemon_before = rss_kb(d.proc.pid)
        ids = []
        for i in range(a.idle):
            out = d.cli("run", "-d", "--name", f"idle{i}", "busybox", "sleep", "100000").stdout.decode().strip()
            ids.append(out)
        shims = subprocess.run(["pgrep", "-f", f"berth-shim --id .* --runtime-root {d.exec_root}"],
                               capture_output=True, text=True).stdout.split()
        shim_kb = sum(rss_kb(int(p)) for p in shims)
        daemon_after = rss_kb(d.proc.pid)
        res["idle containers"] = a.idle
        res["shim RSS per container (KiB)"] = shim_kb / max(len(shims), 1)
        res["daemon growth per container (KiB)"] = (daemon_after - daemon_before) / a.idle
        res["engine memory per idle container (MiB)"] = (shim_kb + daemon_after - daemon_before) / a.idle / 1024
        d.remove_all_containers()

        if a.peers and os.path.exists(LAB_DOCKER):
            env = {**os.environ, "DOCKER_HOST": "unix://" + LAB_DOCKER}
            res["docker run --rm (ms)"] = timed(["docker", "run", "--rm", "busybox", "true"], a.runs, env=env)
            res["docker version (ms)"] = timed(["docker", "version"], a.runs, env=env)
            for i in range(50):
                subprocess.run(["docker", "create", "--name", f"bench{i}", "busybox", "true"], env=env, check=True,
                               capture_output=True)
            res["docker ps -a, 50 containers (ms)"] = timed(["docker", "ps", "-a"], a.runs, env=env)
            subprocess.run(["docker", "run", "-d", "--name", "bench-exec", "busybox", "sleep", "100000"], env=env,
                           check=True, capture_output=True)
            res["docker exec CONTAINER true (ms)"] = timed(["docker", "exec", "bench-exec", "true"], a.runs, env=env)
            res["dockerd GET /containers/json?all=1, 50, in-process (ms)"] = rtt(
                LAB_DOCKER, "/v1.41/containers/json?all=1", max(a.runs, 200))
            subprocess.run(["sh", "-c", "docker rm -f $(docker ps -aq)"], env=env, capture_output=True)
        if a.peers and shutil.which("podman"):
            res["podman run --rm --network none (ms)"] = timed(
                PODMAN + ["run", "--rm", "--network", "none"] + PODMAN_ULIMITS + ["localhost/busybox", "true"], a.runs)
    finally:
        d.cleanup()
        subprocess.run(["sh", "-c", f"for c in $(runc --root {tmp}/runc-root list -q 2>/dev/null); do "
                                    f"runc --root {tmp}/runc-root delete -f $c; done"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(k) for k in res)
    print(f"{time.strftime('%Y-%m-%d')}  {os.cpu_count()} cpus  load {open('/proc/loadavg').read().split()[0]}  "
          f"runs={a.runs} (medians)")
    for k, v in res.items():
        print(f"  {k:<{width}}  {v:10.2f}" if isinstance(v, float) else f"  {k:<{width}}  {v:>10}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
