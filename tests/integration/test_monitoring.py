"""Container stats and top against a real berthd and runc: the API's shape and figures, streaming, the berth
CLI, docker-py and the docker CLI.

Needs root, runc and busybox (the ``daemon`` fixture skips otherwise). Nothing is pulled: every container is
made from busybox:latest, which the fixture makes locally.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from urllib.parse import quote

import pytest

from tests.support.made import Made as BaseMade
from tests.support.daemon import _Unix, wait_for

pytestmark = pytest.mark.root

BUSYBOX = "busybox:latest"
DOCKER = "/usr/local/bin/docker"
ZERO = "0001-01-01T00:00:00Z"
MiB = 1 << 20


def uniq(prefix: str = "mon") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Made(BaseMade):
    """Containers a test made; force-removed at teardown."""

    def __init__(self, daemon) -> None:
        super().__init__(daemon)
        self.refs = self.containers

    def name(self) -> str:
        n = uniq()
        self.refs.append(n)
        return n

    def create(self, cmd: list[str], name: str | None = None) -> tuple[str, str]:
        name = name or self.name()
        if name not in self.refs:
            self.refs.append(name)
        status, r = self.daemon.api("POST", f"/containers/create?name={quote(name)}", {"Image": BUSYBOX, "Cmd": cmd})
        assert status == 201, (status, r)
        return r["Id"], name

    def run(self, cmd: list[str], name: str | None = None) -> tuple[str, str]:
        cid, name = self.create(cmd, name)
        status, body = self.daemon.api("POST", f"/containers/{cid}/start")
        assert status == 204, (status, body, self.daemon.tail_log())
        wait_for(lambda: inspect(self.daemon, cid)["State"]["Running"], 10, what="the container to run")
        return cid, name


def inspect(daemon, ref: str) -> dict:
    status, body = daemon.api("GET", f"/containers/{quote(ref)}/json")
    assert status == 200, body
    return body


def stats(daemon, ref: str, query: str = "stream=0&one-shot=1") -> dict:
    status, body = daemon.api("GET", f"/containers/{quote(ref)}/stats?{query}")
    assert status == 200, (status, body)
    return body


def cpu_total(s: dict) -> int:
    return s["cpu_stats"]["cpu_usage"]["total_usage"]


def cgroup_procs(cid: str) -> set[int]:
    """The container's processes, read the way the brief says: the pids (v1) or unified (v2) cgroup.procs."""
    for d in (f"/sys/fs/cgroup/pids/berth/{cid}", f"/sys/fs/cgroup/berth/{cid}"):
        if os.path.isfile(os.path.join(d, "cgroup.procs")):
            out: set[int] = set()
            for dirpath, _, files in os.walk(d):
                if "cgroup.procs" in files:
                    with open(os.path.join(dirpath, "cgroup.procs")) as f:
                        out |= {int(x) for x in f.read().split()}
            return out
    raise AssertionError(f"no cgroup found for {cid}")


# -- stats: the API --------------------------------------------------------------------------------
def test_stats_shape_and_figures_of_a_running_container(daemon, made):
    cid, name = made.run(["sleep", "1000"])
    s = stats(daemon, cid)
    assert list(s)[:11] == ["read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats",
                            "cpu_stats", "precpu_stats", "memory_stats", "name", "id"]
    assert s["name"] == "/" + name and s["id"] == cid
    assert s["read"] != ZERO and s["preread"] == ZERO  # one-shot: no previous sample
    assert s["pids_stats"]["current"] >= 1
    assert s["num_procs"] == 0 and s["storage_stats"] == {}
    assert isinstance(s["blkio_stats"]["io_service_bytes_recursive"], (list, type(None)))
    cpu = s["cpu_stats"]
    assert cpu["system_cpu_usage"] > 0 and cpu["online_cpus"] == os.cpu_count()
    assert set(cpu["cpu_usage"]) >= {"total_usage", "usage_in_kernelmode", "usage_in_usermode"}
    assert set(cpu["throttling_data"]) == {"periods", "throttled_periods", "throttled_time"}
    mem = s["memory_stats"]
    assert mem["usage"] > 0
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) * 1024
    assert mem["limit"] == total  # no limit set: the host's memory
    assert "inactive_file" in mem["stats"] or "total_inactive_file" in mem["stats"]
    eth0 = s["networks"]["eth0"]  # the default bridge's interface; loopback is left out, as dockerd does
    assert set(s["networks"]) == {"eth0"}
    assert {"rx_bytes", "rx_packets", "tx_bytes", "tx_packets", "rx_errors", "tx_dropped"} <= set(eth0)


def test_stats_cpu_grows_for_a_busy_container(daemon, made):
    cid, _ = made.run(["sh", "-c", "while true; do :; done"])
    first = stats(daemon, cid)
    wait_for(lambda: cpu_total(stats(daemon, cid)) > cpu_total(first) + 10_000_000, 10,
             what="CPU usage to grow by 10ms")
    # stream=0 without one-shot: two samples a second apart, the first as precpu_stats
    s = stats(daemon, cid, "stream=0")
    assert s["preread"] != ZERO and s["preread"] < s["read"]
    assert cpu_total(s) > s["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert s["cpu_stats"]["system_cpu_usage"] > s["precpu_stats"]["system_cpu_usage"]
    delta = cpu_total(s) - s["precpu_stats"]["cpu_usage"]["total_usage"]
    assert delta > 300_000_000  # a busy loop uses most of a CPU for that second


def test_stats_memory_moves_when_a_container_writes_a_file(daemon, made):
    cid, _ = made.run(["sh", "-c", "while [ ! -e /go ]; do sleep 0.05; done; "
                                   "dd if=/dev/zero of=/tmp/f bs=1M count=20; touch /done; sleep 1000"])
    before = stats(daemon, cid)["memory_stats"]["usage"]
    rootfs = os.path.join(daemon.data_root, "containers", cid, "rootfs")
    assert os.path.ismount(rootfs)
    with open(os.path.join(rootfs, "go"), "w"):
        pass
    wait_for(lambda: os.path.exists(os.path.join(rootfs, "done")), 20, what="dd to finish")
    after = wait_for(lambda: (m := stats(daemon, cid)["memory_stats"])["usage"] >= before + 15 * MiB and m, 10,
                     what="memory usage to grow by the file's page cache")
    file_pages = after["stats"].get("total_cache", after["stats"].get("file", 0))
    assert file_pages >= 15 * MiB


def test_stats_of_a_stopped_container_are_zeroed(daemon, made):
    cid, name = made.create(["true"])
    for query in ("stream=0", "stream=0&one-shot=1"):
        t0 = time.monotonic()
        s = stats(daemon, name, query)
        assert time.monotonic() - t0 < 0.9  # no second sample is waited for
        assert s["name"] == "/" + name and s["id"] == cid
        assert s["read"] == ZERO and s["preread"] == ZERO
        assert s["memory_stats"] == {} and s["pids_stats"] == {}
        assert cpu_total(s) == 0 and s["cpu_stats"]["throttling_data"]["periods"] == 0
        assert s["blkio_stats"]["io_service_bytes_recursive"] is None


def test_stats_errors(daemon, made):
    status, body = daemon.api("GET", "/containers/no-such-thing/stats?stream=0")
    assert status == 404 and body["message"] == "No such container: no-such-thing"
    cid, _ = made.create(["true"])
    status, body = daemon.api("GET", f"/containers/{cid}/stats?stream=1&one-shot=1")
    assert status == 400 and "one-shot" in body["message"]


def _open_stream(daemon, cid: str) -> tuple[_Unix, object]:
    conn = _Unix(daemon.socket, timeout=15)
    conn.request("GET", f"/v1.45/containers/{cid}/stats?stream=1")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    return conn, resp


def test_stats_stream_then_client_disconnect(daemon, made):
    cid, name = made.run(["sh", "-c", "while true; do :; done"])
    conn, resp = _open_stream(daemon, cid)
    first = json.loads(resp.readline())
    second = json.loads(resp.readline())
    assert first["preread"] == ZERO and first["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert second["preread"] == first["read"] and second["read"] > first["read"]
    assert second["precpu_stats"] == first["cpu_stats"]
    assert cpu_total(second) > cpu_total(first)
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    # the daemon stays healthy: it answers, and serves stats again
    assert daemon.api("GET", "/_ping")[0] == 200
    assert stats(daemon, cid)["name"] == "/" + name
    assert daemon.proc.poll() is None


def test_stats_stream_ends_when_the_container_is_removed(daemon, made):
    cid, _ = made.run(["sleep", "1000"])
    conn, resp = _open_stream(daemon, cid)
    assert json.loads(resp.readline())["id"] == cid
    assert daemon.api("DELETE", f"/containers/{cid}?force=1")[0] == 204
    rest = resp.read()  # dockerd ends the stream once the container is gone
    conn.close()
    for line in rest.splitlines():
        assert json.loads(line)["id"] == cid


# -- top: the API --------------------------------------------------------------------------------
def test_top_lists_the_containers_processes_only(daemon, made):
    cid, _ = made.run(["sh", "-c", "sleep 1001 & sleep 1002; echo done"])
    wait_for(lambda: len(cgroup_procs(cid)) == 3, 10, what="three processes in the container")
    status, top = daemon.api("GET", f"/containers/{cid}/top")
    assert status == 200, top
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    pids = {int(p[1]) for p in top["Processes"]}
    assert pids == cgroup_procs(cid)
    cmds = [p[-1] for p in top["Processes"]]
    assert "sleep 1001" in cmds and "sleep 1002" in cmds
    assert os.getpid() not in pids and 1 not in pids and daemon.proc.pid not in pids
    assert inspect(daemon, cid)["State"]["Pid"] in pids


def test_top_with_ps_args(daemon, made):
    cid, _ = made.run(["sleep", "1000"])
    status, top = daemon.api("GET", f"/containers/{cid}/top?ps_args={quote('-o pid,comm')}")
    assert status == 200, top
    assert top["Titles"] == ["PID", "COMMAND"]
    assert top["Processes"] == [[str(inspect(daemon, cid)["State"]["Pid"]), "sleep"]]
    status, top = daemon.api("GET", f"/containers/{cid}/top?ps_args=aux")  # BSD form: filtered after the fact
    assert status == 200, top
    assert "PID" in top["Titles"] and len(top["Processes"]) == 1 and "sleep 1000" in top["Processes"][0][-1]


def test_top_errors(daemon, made):
    cid, _ = made.create(["true"])
    status, body = daemon.api("GET", f"/containers/{cid}/top")
    assert status == 409 and body["message"] == f"Container {cid} is not running"
    assert daemon.api("GET", "/containers/no-such-thing/top")[0] == 404
    running, _ = made.run(["sleep", "1000"])
    status, body = daemon.api("GET", f"/containers/{running}/top?ps_args={quote('--no-such-option')}")
    assert status == 500 and body["message"].startswith("ps: "), body
    status, body = daemon.api("GET", f"/containers/{running}/top?ps_args={quote('-o user=PID')}")
    assert status == 500 and body["message"] == 'specifying "user=PID" is not allowed'


# -- the berth CLI ---------------------------------------------------------------------------------
def test_cli_stats_no_stream(daemon, made):
    cid, name = made.run(["sleep", "1000"])
    stopped, stopped_name = made.create(["true"])
    out = daemon.cli("stats", "--no-stream", name).stdout.decode().splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                              "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    assert len(out) == 2
    row = out[1].split()
    assert row[0] == cid[:12] and row[1] == name and row[2].endswith("%")
    assert row[4] == "/" and row[5].endswith("iB") and row[-1] == "1"

    listed = daemon.cli("stats", "--no-stream").stdout.decode()
    assert name in listed and stopped_name not in listed
    assert stopped_name in daemon.cli("stats", "--no-stream", "-a").stdout.decode()

    js = [json.loads(line) for line in
          daemon.cli("container", "stats", "--no-stream", "--format", "json", name, stopped_name).stdout.splitlines()]
    assert [j["Name"] for j in js] == [name, stopped_name]
    assert set(js[0]) == {"BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"}
    assert js[1]["MemUsage"] == "0B / 0B" and js[1]["PIDs"] == "0" and js[1]["CPUPerc"] == "0.00%"
    full = daemon.cli("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}} {{.Container}}", name).stdout
    assert full.decode().split() == [cid, name]

    bad = daemon.cli("stats", "--no-stream", "no-such-thing", check=False)
    assert bad.returncode == 1 and b"No such container: no-such-thing" in bad.stderr


def test_cli_stats_live_redraws(daemon, made):
    import subprocess
    from tests.support.daemon import BIN
    _, name = made.run(["sleep", "1000"])
    import signal
    # SIGINT as a terminal gives it: a run started in the background (`... &`) inherits SIGINT ignored.
    proc = subprocess.Popen([str(BIN / "berth"), "-H", daemon.host, "stats", name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        seen = b""
        while seen.count(b"\033[2J") < 2 or seen.count(name.encode()) < 2:
            chunk = proc.stdout.read1(4096)
            assert chunk, proc.stderr.read()
            seen += chunk
    finally:
        proc.send_signal(2)
        try:  # drain both pipes while it exits: a full pipe would block its last writes
            rest, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, err = proc.communicate()
            raise AssertionError(f"berth stats did not end on SIGINT; stderr: {err.decode()[-2000:]}") from None
    assert proc.returncode == 0, err
    assert b"CONTAINER ID" in seen + rest


def test_cli_top(daemon, made):
    cid, name = made.run(["sleep", "1000"])
    out = daemon.cli("top", name).stdout.decode().splitlines()
    assert out[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert len(out) == 2 and out[1].split()[-2:] == ["sleep", "1000"]
    assert out[0].index("PID") == 20  # docker's tabwriter: columns at least 20 wide
    out = daemon.cli("container", "top", name, "-o", "pid,comm").stdout.decode().splitlines()
    assert out[0].split() == ["PID", "COMMAND"]
    assert out[1].split() == [str(inspect(daemon, cid)["State"]["Pid"]), "sleep"]
    stopped, _ = made.create(["true"])
    bad = daemon.cli("top", stopped, check=False)
    assert bad.returncode == 1 and f"Container {stopped} is not running".encode() in bad.stderr


# -- docker-py and the docker CLI ----------------------------------------------------------------------
def test_docker_py_stats_and_top(daemon, made):
    docker = pytest.importorskip("docker")
    cid, name = made.run(["sleep", "1000"])
    client = docker.DockerClient(base_url=daemon.host, timeout=30)
    try:
        c = client.containers.get(name)
        s = c.stats(stream=False)
        assert s["id"] == cid and s["memory_stats"]["usage"] > 0 and s["pids_stats"]["current"] == 1
        assert s["precpu_stats"]["cpu_usage"]["total_usage"] > 0
        one = c.stats(stream=False, one_shot=True)
        assert one["preread"] == ZERO
        stream = c.stats(stream=True, decode=True)
        a, b = next(stream), next(stream)
        assert b["preread"] == a["read"]
        stream.close()
        top = c.top()
        assert top["Titles"][1] == "PID" and [p[-1] for p in top["Processes"]] == ["sleep 1000"]
        assert c.top(ps_args="-o pid,args")["Processes"] == [[str(c.attrs["State"]["Pid"]), "sleep 1000"]]
    finally:
        client.close()


@pytest.mark.skipif(not os.path.exists(DOCKER), reason="the docker CLI is not installed")
def test_docker_cli_stats_and_top(daemon, made):
    assert daemon.api("GET", f"/images/{quote(BUSYBOX, safe='')}/json")[0] == 200  # so --pull=never suffices
    name = made.name()
    cid = daemon.docker("run", "-d", "--pull=never", "--name", name, BUSYBOX, "sleep", "1000").stdout.decode().strip()
    wait_for(lambda: inspect(daemon, cid)["State"]["Running"], 10, what="the container to run")
    out = daemon.docker("stats", "--no-stream", name).stdout.decode().splitlines()
    assert out[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and len(out) == 2
    row = out[1].split()
    assert row[0] == cid[:12] and row[1] == name and row[-1] == "1"
    assert row[3] != "0B"  # memory usage is shown
    fmt = daemon.docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", name).stdout
    assert fmt.decode().split()[:2] == [name, "1"]
    top = daemon.docker("top", name).stdout.decode().splitlines()
    assert top[0].split()[:2] == ["UID", "PID"] and len(top) == 2 and top[1].endswith("sleep 1000")
    assert daemon.docker("top", name, "-o", "pid,comm").stdout.decode().split() == [
        "PID", "COMMAND", str(inspect(daemon, cid)["State"]["Pid"]), "sleep"]
    daemon.docker("rm", "-f", name)
