"""Reading a container's cgroup (berth.runtime.cgroups) from fake v1 and v2 trees, and turning the figures into
Docker's stats shape and ``top`` rows (berth.services.monitoring)."""
from __future__ import annotations

import asyncio
import os

import pytest

from berth.runtime import cgroups
from berth.services import monitoring as mon
from berth.types.container import Container, ContainerSpec, ContainerState

CID = "c0ffee" * 10 + "abcd"
NS_PER_TICK = 1_000_000_000 // cgroups.clock_ticks()


def write(path, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def v1(tmp_path):
    """A hybrid-style v1 tree: separate cpu and cpuacct mounts, a unified mount beside them."""
    root = tmp_path / "cgroup"
    d = lambda ctl: root / ctl / "berth" / CID  # noqa: E731
    write(d("cpuacct") / "cpuacct.usage", "5000000000\n")
    write(d("cpuacct") / "cpuacct.usage_percpu", "3000000000 2000000000 \n")
    write(d("cpuacct") / "cpuacct.stat", "user 300\nsystem 150\n")
    write(d("cpu") / "cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 12345\n")
    write(d("memory") / "memory.usage_in_bytes", "10485760\n")
    write(d("memory") / "memory.max_usage_in_bytes", "20971520\n")
    write(d("memory") / "memory.limit_in_bytes", "9223372036854771712\n")
    write(d("memory") / "memory.failcnt", "0\n")
    write(d("memory") / "memory.stat", "cache 4096000\nrss 2048000\ntotal_inactive_file 1048576\n"
                                       "total_cache 4096000\nhierarchical_memory_limit 9223372036854771712\n")
    write(d("pids") / "pids.current", "3\n")
    write(d("pids") / "pids.max", "max\n")
    write(d("pids") / "cgroup.procs", "101\n105\n")
    write(d("pids") / "sub" / "cgroup.procs", "230\n")
    write(d("blkio") / "blkio.throttle.io_service_bytes_recursive",
          "8:0 Read 4096\n8:0 Write 20971520\n8:0 Sync 20975616\n8:0 Async 0\n8:0 Discard 0\n"
          "8:0 Total 20975616\nTotal 20975616\n")
    write(d("blkio") / "blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 20\nTotal 21\n")
    (root / "unified" / "berth" / CID).mkdir(parents=True)
    return str(root)


@pytest.fixture
def v2(tmp_path):
    root = tmp_path / "cgroup2"
    write(root / "cgroup.controllers", "cpuset cpu io memory pids\n")
    d = root / "berth" / CID
    write(d / "cpu.stat", "usage_usec 7000\nuser_usec 5000\nsystem_usec 2000\nnr_periods 4\nnr_throttled 1\n"
                          "throttled_usec 300\n")
    write(d / "memory.current", "8388608\n")
    write(d / "memory.max", "max\n")
    write(d / "memory.stat", "anon 4194304\nfile 2097152\ninactive_file 1048576\nactive_file 1048576\n")
    write(d / "memory.events", "low 0\nhigh 0\nmax 0\noom 2\noom_kill 1\n")
    write(d / "pids.current", "2\n")
    write(d / "pids.max", "max\n")
    write(d / "cgroup.procs", "4242\n4243\n")
    write(d / "io.stat", "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n"
                         "253:1 rbytes=10 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n")
    return str(root)


def container(running: bool = True, network_mode: str = "none") -> Container:
    state = ContainerState("running" if running else "exited", 4242 if running else 0)
    return Container(CID, "web", "sha256:" + "0" * 64, "2024-01-01T00:00:00Z",
                     ContainerSpec("busybox", cmd=["sh"], network_mode=network_mode), state)


# -- detection and paths -----------------------------------------------------------------------
def test_detect_version(v1, v2):
    assert cgroups.detect_version(v1) == 1
    assert cgroups.detect_version(v2) == 2


def test_v1_directories_per_controller(v1):
    cg = cgroups.Cgroup(f"/berth/{CID}", v1)
    assert cg.version == 1
    assert cg.dir("memory") == os.path.join(v1, "memory", "berth", CID)
    assert cg.exists()
    assert not cgroups.Cgroup("/berth/" + "0" * 64, v1).exists()


def test_v1_comounted_controllers(tmp_path):
    root = tmp_path / "cg"
    write(root / "cpu,cpuacct" / "berth" / CID / "cpuacct.usage", "42\n")
    write(root / "cpu,cpuacct" / "berth" / CID / "cpu.stat", "nr_periods 1\nnr_throttled 0\nthrottled_time 0\n")
    cg = cgroups.Cgroup(f"/berth/{CID}", str(root))
    assert cg.dir("cpuacct") == str(root / "cpu,cpuacct" / "berth" / CID)
    f = cg.read()
    assert f.cpu_total == 42 and f.throttle_periods == 1
    assert f.mem_usage == 0 and f.pids_current == 0  # missing controllers read as zero


def test_v2_directory(v2):
    cg = cgroups.Cgroup(f"/berth/{CID}", v2)
    assert cg.version == 2
    assert cg.dir() == os.path.join(v2, "berth", CID)
    assert cg.exists()


# -- figures -----------------------------------------------------------------------------------
def test_v1_figures(v1):
    f = cgroups.Cgroup(f"/berth/{CID}", v1).read()
    assert f.version == 1
    assert f.cpu_total == 5_000_000_000
    assert f.percpu == [3_000_000_000, 2_000_000_000]
    assert f.cpu_user == 300 * NS_PER_TICK and f.cpu_kernel == 150 * NS_PER_TICK
    assert (f.throttle_periods, f.throttle_throttled, f.throttle_time) == (10, 2, 12345)
    assert f.mem_usage == 10485760 and f.mem_max_usage == 20971520
    assert f.mem_limit == 9223372036854771712
    assert f.mem_stats["cache"] == 4096000 and f.mem_stats["total_inactive_file"] == 1048576
    assert f.pids_current == 3 and f.pids_limit == 0  # v1 "max" → 0, as containerd
    assert (8, 0, "Read", 4096) in f.io_service_bytes and (8, 0, "Write", 20971520) in f.io_service_bytes
    assert all(op != "Total" or maj == 8 for maj, _, op, _ in f.io_service_bytes)
    assert len(f.io_service_bytes) == 6  # the bare "Total" line is dropped
    assert f.io_serviced == [(8, 0, "Read", 1), (8, 0, "Write", 20)]


def test_v2_figures(v2):
    f = cgroups.Cgroup(f"/berth/{CID}", v2).read()
    assert f.version == 2
    assert (f.cpu_total, f.cpu_user, f.cpu_kernel) == (7_000_000, 5_000_000, 2_000_000)
    assert (f.throttle_periods, f.throttle_throttled, f.throttle_time) == (4, 1, 300_000)
    assert f.percpu == [] and f.mem_max_usage == 0
    assert f.mem_usage == 8388608 and f.mem_limit == cgroups.MAX_UINT64
    assert f.mem_stats["inactive_file"] == 1048576 and f.mem_failcnt == 2
    assert f.pids_current == 2 and f.pids_limit == cgroups.MAX_UINT64
    assert f.io_service_bytes == [(8, 0, "read", 1024), (8, 0, "write", 2048),
                                  (253, 1, "read", 10), (253, 1, "write", 20)]


def test_procs_v1_recursive_and_v2(v1, v2):
    assert cgroups.Cgroup(f"/berth/{CID}", v1).procs() == [101, 105, 230]
    assert cgroups.Cgroup(f"/berth/{CID}", v2).procs() == [4242, 4243]
    assert cgroups.Cgroup("/berth/gone", v2).procs() == []


def test_v1_procs_fall_back_to_memory(tmp_path):
    root = tmp_path / "cg"
    write(root / "memory" / "berth" / CID / "cgroup.procs", "7\n")
    assert cgroups.Cgroup(f"/berth/{CID}", str(root)).procs() == [7]


def test_missing_cgroup_reads_zero(v1, v2):
    for root in (v1, v2):
        f = cgroups.Cgroup("/berth/nothere", root).read()
        assert f.cpu_total == 0 and f.mem_usage == 0 and f.io_service_bytes == []


# -- the host ----------------------------------------------------------------------------------
def test_system_cpu_and_memory(tmp_path):
    write(tmp_path / "stat", "cpu  100 5 50 1000 10 1 2 7 0 0\ncpu0 50 2 25 500 5 0 1 3 0 0\n"
                             "cpu1 50 3 25 500 5 1 1 4 0 0\nintr 1 2 3\n")
    write(tmp_path / "meminfo", "MemTotal:       24684096 kB\nMemFree:        24143032 kB\n")
    total, online = cgroups.system_cpu(str(tmp_path))
    assert total == (100 + 5 + 50 + 1000 + 10 + 1 + 2) * NS_PER_TICK  # steal and guests excluded
    assert online == 2
    assert cgroups.host_memory(str(tmp_path)) == 24684096 * 1024


def test_real_proc():
    total, online = cgroups.system_cpu()
    assert total > 0 and online >= 1
    assert cgroups.host_memory() > 0


NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0
  eth0: 1296       16    1    2    0     0          0         0     1048      12    3    4    0     0       0          0
"""


def test_net_dev(tmp_path):
    nets = cgroups.parse_net_dev(NET_DEV)
    assert nets["eth0"] == {"rx_bytes": 1296, "rx_packets": 16, "rx_errors": 1, "rx_dropped": 2,
                            "tx_bytes": 1048, "tx_packets": 12, "tx_errors": 3, "tx_dropped": 4}
    assert list(nets) == ["lo", "eth0"]
    write(tmp_path / "77" / "net" / "dev", NET_DEV)
    assert cgroups.net_dev(77, str(tmp_path)) == nets
    assert cgroups.net_dev(78, str(tmp_path)) == {}
    assert cgroups.net_dev(0, str(tmp_path)) == {}


# -- Docker's shape ---------------------------------------------------------------------------
def test_stats_shape_v1(v1):
    fig = cgroups.Cgroup(f"/berth/{CID}", v1).read()
    nets = {"eth0": dict.fromkeys(cgroups.NET_FIELDS, 1)}
    s = mon.stats_from(container(), fig, "2024-01-01T00:00:01.000000000Z", 10**12, 2, 24 * 2**30, nets).to_dict()
    assert list(s) == ["read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats",
                       "precpu_stats", "memory_stats", "name", "id", "networks"]
    assert s["name"] == "/web" and s["id"] == CID and s["preread"] == "0001-01-01T00:00:00Z"
    assert s["pids_stats"] == {"current": 3}
    assert s["num_procs"] == 0 and s["storage_stats"] == {}
    cpu = s["cpu_stats"]
    assert list(cpu["cpu_usage"]) == ["total_usage", "percpu_usage", "usage_in_kernelmode", "usage_in_usermode"]
    assert cpu["cpu_usage"]["percpu_usage"] == [3_000_000_000, 2_000_000_000]
    assert cpu["system_cpu_usage"] == 10**12 and cpu["online_cpus"] == 2
    assert cpu["throttling_data"] == {"periods": 10, "throttled_periods": 2, "throttled_time": 12345}
    assert s["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    mem = s["memory_stats"]
    assert mem["usage"] == 10485760 and mem["max_usage"] == 20971520
    assert mem["limit"] == 24 * 2**30  # unlimited → the host's memory
    assert "failcnt" not in mem
    assert mem["stats"]["total_inactive_file"] == 1048576 and mem["stats"]["rss"] == 2048000
    assert mem["stats"]["total_rss"] == 0  # dockerd's keys are always there
    ios = s["blkio_stats"]["io_service_bytes_recursive"]
    assert {"major": 8, "minor": 0, "op": "Write", "value": 20971520} in ios
    assert s["blkio_stats"]["io_queue_recursive"] is None
    assert s["networks"] == nets


def test_stats_shape_v2(v2):
    fig = cgroups.Cgroup(f"/berth/{CID}", v2).read()
    s = mon.stats_from(container(), fig, "2024-01-01T00:00:01Z", 10**12, 4, 2**30, {}).to_dict()
    assert "networks" not in s  # dockerd's omitempty: loopback only
    assert "percpu_usage" not in s["cpu_stats"]["cpu_usage"]
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] == 7_000_000
    mem = s["memory_stats"]
    assert "max_usage" not in mem and mem["failcnt"] == 2 and mem["limit"] == 2**30
    assert mem["stats"]["inactive_file"] == 1048576 and mem["stats"]["anon"] == 4194304
    assert s["pids_stats"] == {"current": 2, "limit": cgroups.MAX_UINT64}
    assert s["blkio_stats"]["io_service_bytes_recursive"][:2] == [
        {"major": 8, "minor": 0, "op": "read", "value": 1024}, {"major": 8, "minor": 0, "op": "write", "value": 2048}]
    assert s["blkio_stats"]["io_serviced_recursive"] is None


def test_zeroed_stats_and_chaining():
    z = mon.Stats(CID, "/web").to_dict()
    assert z["read"] == z["preread"] == "0001-01-01T00:00:00Z"
    assert z["memory_stats"] == {} and z["pids_stats"] == {} and "networks" not in z
    assert z["cpu_stats"] == mon.empty_cpu_stats()
    assert all(v is None for v in z["blkio_stats"].values()) and len(z["blkio_stats"]) == 8
    a = mon.Stats(CID, "/web", read="t1", cpu_stats={"cpu_usage": {"total_usage": 5}})
    b = mon.Stats(CID, "/web", read="t2").following(a)
    assert b.preread == "t1" and b.precpu_stats["cpu_usage"]["total_usage"] == 5


class _Index:
    def __init__(self, c):
        self.c = c

    def get(self, cid):
        return self.c if self.c and cid == self.c.id else None


class _Containers:
    def __init__(self, c):
        self.index = _Index(c)

    def get(self, ref):
        from berth.errors import NotFound
        if self.index.c is None or ref not in (CID, "web"):
            raise NotFound.container(ref)
        return self.index.c


def test_service_samples_v1(v1, tmp_path):
    write(tmp_path / "proc" / "stat", "cpu  100 0 0 0 0 0 0\ncpu0 100 0 0 0 0 0 0\n")
    write(tmp_path / "proc" / "meminfo", "MemTotal: 1024 kB\n")
    svc = mon.MonitoringService(_Containers(container()), v1, str(tmp_path / "proc"))
    s = asyncio.run(svc.stats("web")).to_dict()
    assert s["memory_stats"]["limit"] == 1024 * 1024 and s["cpu_stats"]["online_cpus"] == 1

    async def collect(**kw):
        return [x.to_dict() async for x in svc.samples("web", interval=0.01, **kw)]

    two = asyncio.run(collect(stream=False))
    assert len(two) == 1 and two[0]["preread"] != "0001-01-01T00:00:00Z"
    assert two[0]["precpu_stats"]["cpu_usage"]["total_usage"] == 5_000_000_000
    one = asyncio.run(collect(stream=False, one_shot=True))
    assert len(one) == 1 and one[0]["preread"] == "0001-01-01T00:00:00Z"


def test_service_stopped_is_zeroed(v1):
    svc = mon.MonitoringService(_Containers(container(running=False)), v1)
    s = asyncio.run(svc.stats(CID)).to_dict()
    assert s["read"] == "0001-01-01T00:00:00Z" and s["memory_stats"] == {} and s["name"] == "/web"


def test_service_top_not_running(v1):
    from berth.errors import Conflict
    svc = mon.MonitoringService(_Containers(container(running=False)), v1)
    with pytest.raises(Conflict, match=f"Container {CID} is not running"):
        asyncio.run(svc.top("web"))


# -- top ---------------------------------------------------------------------------------------
PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         101       1  0 10:01 ?        00:00:00 sleep 1000
root         105     101  0 10:01 pts/0    00:00:00 sh -c while true; do :; done
root         230       1  0 10:02 ?        00:00:00 /usr/bin/python3 -m thing
"""


def test_parse_ps_output_keeps_container_rows():
    out = mon.parse_ps_output(PS_EF, {101, 105})
    assert out["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert out["Processes"] == [
        ["root", "101", "1", "0", "10:01", "?", "00:00:00", "sleep 1000"],
        ["root", "105", "101", "0", "10:01", "pts/0", "00:00:00", "sh -c while true; do :; done"],
    ]


def test_parse_ps_output_threads_and_errors():
    text = "  PID TTY      STAT   TIME COMMAND\n  101 ?        Ss     0:00 sleep\n    - -        Ss     0:00 -\n" \
           "  102 ?        S      0:00 other\n    - -        S      0:00 -\n"
    rows = mon.parse_ps_output(text, {101})["Processes"]
    assert rows == [["101", "?", "Ss", "0:00", "sleep"], ["-", "-", "Ss", "0:00", "-"]]
    from berth.errors import SystemError_
    with pytest.raises(SystemError_, match="Couldn't find PID field"):
        mon.parse_ps_output("USER CMD\nroot x\n", set())
    with pytest.raises(SystemError_, match="Unexpected pid"):
        mon.parse_ps_output("PID CMD\nabc x\n", set())


def test_validate_ps_args():
    mon.validate_ps_args("-ef")
    mon.validate_ps_args("-o pid=PID,comm")
    from berth.errors import SystemError_
    with pytest.raises(SystemError_, match='specifying "user=PID" is not allowed'):
        mon.validate_ps_args("-o user=PID")


def test_run_ps_missing_binary():
    rc, _, err = asyncio.run(cgroups.run_ps(["-ef"], "/nonexistent/ps"))
    assert rc == 127 and b"executable file not found" in err


# -- the CLI's formulas ------------------------------------------------------------------------
def test_cli_formulas():
    from berth.cli.commands import monitoring as cli
    s = {"id": CID, "name": "/web",
         "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
         "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
         "memory_stats": {"usage": 10 * 2**20, "limit": 100 * 2**20, "stats": {"total_inactive_file": 2**20}},
         "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 2_000_000}},
         "blkio_stats": {"io_service_bytes_recursive": [
             {"op": "Read", "value": 4096}, {"op": "write", "value": 20_971_520}, {"op": "Total", "value": 1}]},
         "pids_stats": {"current": 3}}
    row = cli.stats_row(s, "web")
    assert row == {"Container": "web", "ID": CID[:12], "Name": "web", "CPUPerc": "40.00%",
                   "MemUsage": "9MiB / 100MiB", "MemPerc": "9.00%", "NetIO": "1.5kB / 2MB",
                   "BlockIO": "4.1kB / 21MB", "PIDs": "3"}
    assert cli.memory_usage({"usage": 100, "stats": {"inactive_file": 30}}) == 70  # cgroup v2
    assert cli.memory_usage({"usage": 100, "stats": {"total_inactive_file": 300}}) == 100
    zero = cli.stats_row(mon.Stats(CID, "/web").to_dict(), "web", no_trunc=True)
    assert zero["ID"] == CID and zero["CPUPerc"] == "0.00%" and zero["MemUsage"] == "0B / 0B"
    assert zero["NetIO"] == "0B / 0B" and zero["PIDs"] == "0"
    assert cli.stats_row(None, "web", invalid=True)["MemUsage"] == "-- / --"
