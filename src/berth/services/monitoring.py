"""Container resource usage (``docker stats``) and processes (``docker top``), as dockerd reports them."""
from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from berth.errors import Conflict, SystemError_
from berth.runtime import cgroups
from berth.runtime.logs import now_rfc3339
from berth.services.containers import ContainerService
from berth.types.container import ZERO_TIME, Container

INTERVAL = 1.0  # seconds between samples, as dockerd's stats collector

# The memory.stat keys dockerd always reports (0 when the kernel lacks one); the kernel's others come too.
_V1_MEMORY_KEYS = (
    "active_anon", "active_file", "cache", "dirty", "hierarchical_memory_limit", "hierarchical_memsw_limit",
    "inactive_anon", "inactive_file", "mapped_file", "pgfault", "pgmajfault", "pgpgin", "pgpgout", "rss",
    "rss_huge", "total_active_anon", "total_active_file", "total_cache", "total_dirty", "total_inactive_anon",
    "total_inactive_file", "total_mapped_file", "total_pgfault", "total_pgmajfault", "total_pgpgin",
    "total_pgpgout", "total_rss", "total_rss_huge", "total_unevictable", "total_writeback", "unevictable",
    "writeback",
)
_V2_MEMORY_KEYS = (
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback",
    "anon_thp", "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
    "slab_reclaimable", "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault",
    "workingset_activate", "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate",
    "pgdeactivate", "pglazyfree", "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc",
)
_BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
               "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive", "io_time_recursive",
               "sectors_recursive")


def empty_cpu_stats() -> dict:
    """Docker's zero CPUStats (what ``precpu_stats`` is before a previous sample exists)."""
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


@dataclass
class Stats:
    """One stats sample of one container: Docker's ``StatsJSON`` (API 1.45) field for field.

    ``to_dict`` gives the JSON object in dockerd's key order, with its ``omitempty`` rules.
    """

    id: str
    name: str                                   # "/NAME"
    read: str = ZERO_TIME
    preread: str = ZERO_TIME
    pids_stats: dict = field(default_factory=dict)
    blkio_stats: dict = field(default_factory=lambda: {k: None for k in _BLKIO_KEYS})
    cpu_stats: dict = field(default_factory=empty_cpu_stats)
    precpu_stats: dict = field(default_factory=empty_cpu_stats)
    memory_stats: dict = field(default_factory=dict)
    networks: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"read": self.read, "preread": self.preread, "pids_stats": self.pids_stats,
               "blkio_stats": self.blkio_stats, "num_procs": 0, "storage_stats": {},
               "cpu_stats": self.cpu_stats, "precpu_stats": self.precpu_stats, "memory_stats": self.memory_stats,
               "name": self.name, "id": self.id}
        if self.networks:  # omitempty: no interface but loopback → no "networks" key
            out["networks"] = self.networks
        return out

    def following(self, previous: "Stats | None") -> "Stats":
        """This sample with ``precpu_stats``/``preread`` taken from ``previous`` (as dockerd chains them)."""
        if previous is not None:
            self.precpu_stats = previous.cpu_stats
            self.preread = previous.read
        return self


def stats_from(c: Container, fig: cgroups.CgroupFigures, read: str, system_ns: int, online: int,
               machine_memory: int, networks: dict[str, dict]) -> Stats:
    """Raw cgroup figures → Docker's stats shape (dockerd's statsV1 / statsV2)."""
    usage: dict = {"total_usage": fig.cpu_total}
    if fig.version == 1 and fig.percpu:
        usage["percpu_usage"] = fig.percpu
    usage["usage_in_kernelmode"] = fig.cpu_kernel
    usage["usage_in_usermode"] = fig.cpu_user
    cpu: dict = {"cpu_usage": usage}
    if system_ns:
        cpu["system_cpu_usage"] = system_ns
    if online:
        cpu["online_cpus"] = online
    cpu["throttling_data"] = {"periods": fig.throttle_periods, "throttled_periods": fig.throttle_throttled,
                              "throttled_time": fig.throttle_time}

    keys = _V1_MEMORY_KEYS if fig.version == 1 else _V2_MEMORY_KEYS
    raw = {k: 0 for k in keys}
    raw.update(fig.mem_stats)
    limit = fig.mem_limit
    if machine_memory > 0 and limit > machine_memory:  # no limit set: the host's memory
        limit = machine_memory
    memory: dict = {}
    if fig.mem_usage:
        memory["usage"] = fig.mem_usage
    if fig.mem_max_usage:
        memory["max_usage"] = fig.mem_max_usage
    memory["stats"] = raw
    if fig.mem_failcnt:
        memory["failcnt"] = fig.mem_failcnt
    if limit:
        memory["limit"] = limit

    pids: dict = {}
    if fig.pids_current:
        pids["current"] = fig.pids_current
    if fig.pids_limit:
        pids["limit"] = fig.pids_limit

    def entries(rows):
        return [{"major": a, "minor": b, "op": op, "value": v} for a, b, op, v in rows] or None

    blkio = {k: None for k in _BLKIO_KEYS}
    blkio["io_service_bytes_recursive"] = entries(fig.io_service_bytes)
    if fig.version == 1:
        blkio["io_serviced_recursive"] = entries(fig.io_serviced)
    return Stats(c.id, "/" + c.name, read, pids_stats=pids, blkio_stats=blkio, cpu_stats=cpu,
                 memory_stats=memory, networks=networks)


class MonitoringService:
    def __init__(self, containers: ContainerService, cgroup_root: str = cgroups.DEFAULT_ROOT,
                 proc: str = "/proc", ps_binary: str = "ps") -> None:
        self.containers = containers
        self.cgroup_root = cgroup_root
        self.proc = proc
        self.ps_binary = ps_binary
        self.version = cgroups.detect_version(cgroup_root)
        self.machine_memory = cgroups.host_memory(proc)

    def cgroup(self, cid: str) -> cgroups.Cgroup:
        return cgroups.Cgroup(f"/berth/{cid}", self.cgroup_root, self.version)

    # -- stats ------------------------------------------------------------------
    async def stats(self, ref: str) -> Stats:
        """One sample of the container named by ``ref`` (``precpu_stats`` empty); zeroed when it is not running."""
        return await self._sample(self.containers.get(ref).id)

    async def _sample(self, cid: str) -> Stats | None:
        """None once the container is gone."""
        c = self.containers.index.get(cid)
        if c is None:
            return None
        if not c.state.running or c.state.status == "restarting":
            return Stats(c.id, "/" + c.name)
        return await asyncio.to_thread(self._read_running, c)

    def _read_running(self, c: Container) -> Stats:
        cg = self.cgroup(c.id)
        if not cg.exists():  # exited between the state check and now
            return Stats(c.id, "/" + c.name)
        fig = cg.read()
        system_ns, online = cgroups.system_cpu(self.proc)
        read = now_rfc3339()
        nets = {} if c.spec.network_mode == "host" else {
            k: v for k, v in cgroups.net_dev(c.state.pid, self.proc).items() if k != "lo"}
        return stats_from(c, fig, read, system_ns, online, self.machine_memory, nets)

    async def samples(self, ref: str, stream: bool = True, one_shot: bool = False,
                      interval: float = INTERVAL) -> AsyncIterator[Stats]:
        """dockerd's ContainerStats: what ``GET /containers/{id}/stats`` sends.

        ``stream``: a sample each ``interval`` until the container is removed (a stopped one gives zeroed
        samples, as dockerd's collector publishes); each carries the previous one's CPU figures as
        ``precpu_stats``. Not streaming: one sample; unless ``one_shot``, a first one primes
        ``precpu_stats`` and the second, ``interval`` later, is sent. A stopped container, not streaming:
        one zeroed sample at once.
        """
        c = self.containers.get(ref)
        if not stream:
            first = await self._sample(c.id)
            if first is None:
                return
            if one_shot or not first.read or first.read == ZERO_TIME:
                yield first
                return
            await asyncio.sleep(interval)
            second = await self._sample(c.id)
            if second is not None:
                yield second.following(first)
            return
        previous: Stats | None = None
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            s = await self._sample(c.id)
            if s is None:
                return
            yield s.following(previous)
            previous = s
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    # -- top --------------------------------------------------------------------
    async def top(self, ref: str, ps_args: str | None = None) -> dict:
        """dockerd's ContainerTop: the host's ``ps`` output, keeping the rows of the container's processes.

        {"Titles": [...], "Processes": [[...], ...]}; Conflict when the container does not run.
        """
        args_text = ps_args or "-ef"
        validate_ps_args(args_text)
        c = self.containers.get(ref)
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.status == "restarting":
            raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
        pids = await asyncio.to_thread(self.cgroup(c.id).procs)
        args = args_text.split()
        rc, out, err = (1, b"", b"")
        if pids:
            rc, out, err = await cgroups.run_ps(args + ["-q" + ",".join(map(str, pids))], self.ps_binary)
        if rc != 0:  # some ps options (f, BSD forms) can't be used with -q: all processes, filtered below
            rc, out, err = await cgroups.run_ps(args, self.ps_binary)
            if rc != 0:
                line = err.decode(errors="replace").split("\n", 1)[0].strip()
                raise SystemError_(f"ps: {line or f'exit status {rc}'}")
        return parse_ps_output(out.decode(errors="replace"), set(pids))


_PS_ARG = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")


def validate_ps_args(ps_args: str) -> None:
    """dockerd refuses renaming a column to PID (``-o user=PID``): the PID column must be the real one."""
    for key, value in _PS_ARG.findall(ps_args):
        if key != "pid":
            raise SystemError_(f'specifying "{key}={value}" is not allowed')


def _fields(line: str) -> list[str]:
    return [f for f in re.split(r"[\t\n\f\r ]+", line) if f]


def parse_ps_output(output: str, pids: set[int]) -> dict:
    """dockerd's parsePSOutput: titles from the first line; rows whose PID is in ``pids`` (thread rows with
    PID "-" follow their process); fields beyond the titles are joined into the last column."""
    lines = output.split("\n")
    titles = _fields(lines[0]) if lines else []
    if "PID" not in titles:
        raise SystemError_("Couldn't find PID field in ps output")
    at = titles.index("PID")
    processes: list[list[str]] = []

    def add(fields: list[str]) -> None:
        n = len(titles)
        processes.append(fields[:n - 1] + [" ".join(fields[n - 1:])])

    kept = False
    for line in lines[1:]:
        if not line:
            continue
        fields = _fields(line)
        if len(fields) <= at:
            continue
        if fields[at] == "-":
            if kept:
                add(fields)
            continue
        try:
            pid = int(fields[at])
        except ValueError:
            raise SystemError_(f"Unexpected pid '{fields[at]}'") from None
        kept = pid in pids
        if kept:
            add(fields)
    return {"Titles": titles, "Processes": processes}
