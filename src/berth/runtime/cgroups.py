"""A container's resource figures from its cgroup (v1 or v2), the host's /proc, and ``ps`` for ``top``.

Containers run under ``cgroupsPath`` ``/berth/<id>`` with runc's cgroupfs driver:

- cgroup v2 (``<root>/cgroup.controllers`` exists): one directory, ``<root>/berth/<id>``;
- cgroup v1 (or hybrid): one directory per controller, ``<root>/<controller>/berth/<id>``, where the
  controller's hierarchy may be mounted alone (``cpuacct``) or co-mounted (``cpu,cpuacct``).

Reading is plain file I/O (callers move it off the event loop); the figures are raw, in the units Docker's
stats API uses (nanoseconds, bytes). Missing files read as zero, as containerd's collectors do.
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

DEFAULT_ROOT = "/sys/fs/cgroup"
MAX_UINT64 = 2**64 - 1


def detect_version(root: str = DEFAULT_ROOT) -> int:
    """2 on a unified (pure v2) hierarchy, else 1 (legacy or hybrid, where the v1 controllers hold the figures)."""
    return 2 if os.path.exists(os.path.join(root, "cgroup.controllers")) else 1


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError, ProcessLookupError, PermissionError, OSError):
        return None


def _uint(text: str | None, max_value: int = MAX_UINT64) -> int:
    """A single number file; "max" (v2) is ``max_value``; junk or absence is 0."""
    if text is None:
        return 0
    s = text.strip()
    if s == "max":
        return max_value
    try:
        return max(0, int(s))
    except ValueError:
        return 0


def parse_flat_keyed(text: str | None) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, cpuacct.stat) → {key: value}; non-numbers skipped."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def parse_blkio_v1(text: str | None) -> list[tuple[int, int, str, int]]:
    """blkio.*_recursive: ``MAJ:MIN Op value`` lines → [(major, minor, op, value)]; the ``Total`` line dropped."""
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        maj, _, mnr = parts[0].partition(":")
        try:
            out.append((int(maj), int(mnr), parts[1], int(parts[2])))
        except ValueError:
            continue
    return out


def parse_io_stat_v2(text: str | None) -> list[tuple[int, int, dict[str, int]]]:
    """io.stat: ``MAJ:MIN rbytes=.. wbytes=.. rios=.. ...`` → [(major, minor, {key: value})]."""
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        maj, _, mnr = parts[0].partition(":")
        values = {}
        for kv in parts[1:]:
            k, eq, v = kv.partition("=")
            if eq:
                try:
                    values[k] = int(v)
                except ValueError:
                    continue
        try:
            out.append((int(maj), int(mnr), values))
        except ValueError:
            continue
    return out


@dataclass
class CgroupFigures:
    """One reading of a container's cgroup, raw (ns, bytes, counts)."""

    version: int
    cpu_total: int = 0                # ns
    cpu_kernel: int = 0               # ns
    cpu_user: int = 0                 # ns
    percpu: list[int] = field(default_factory=list)  # ns per CPU (v1 only)
    throttle_periods: int = 0
    throttle_throttled: int = 0
    throttle_time: int = 0            # ns
    mem_usage: int = 0
    mem_max_usage: int = 0            # v1 only
    mem_limit: int = 0
    mem_failcnt: int = 0
    mem_stats: dict[str, int] = field(default_factory=dict)
    pids_current: int = 0
    pids_limit: int = 0               # 0: unlimited on v1, as containerd reports; MAX_UINT64 for "max" on v2
    io_service_bytes: list[tuple[int, int, str, int]] = field(default_factory=list)
    io_serviced: list[tuple[int, int, str, int]] = field(default_factory=list)


class Cgroup:
    """The cgroup at ``path`` (e.g. ``/berth/<id>``) under the hierarchy mounted at ``root``."""

    def __init__(self, path: str, root: str = DEFAULT_ROOT, version: int | None = None) -> None:
        self.path = path.strip("/")
        self.root = root
        self.version = version or detect_version(root)

    # -- where ------------------------------------------------------------------
    def controller_root(self, controller: str) -> str | None:
        """v1: the mount point of ``controller`` (``cpuacct`` or a co-mount such as ``cpu,cpuacct``)."""
        direct = os.path.join(self.root, controller)
        if os.path.isdir(direct):
            return direct
        try:
            entries = sorted(os.listdir(self.root))
        except OSError:
            return None
        for name in entries:
            if controller in name.split(",") and os.path.isdir(os.path.join(self.root, name)):
                return os.path.join(self.root, name)
        return None

    def dir(self, controller: str | None = None) -> str | None:
        """The container's directory for ``controller`` (v1) or its one directory (v2); None if unknown."""
        if self.version == 2:
            return os.path.join(self.root, self.path)
        base = self.controller_root(controller or "pids")
        return os.path.join(base, self.path) if base else None

    def exists(self) -> bool:
        if self.version == 2:
            d = self.dir()
            return d is not None and os.path.isdir(d)
        return any((d := self.dir(c)) is not None and os.path.isdir(d) for c in ("pids", "memory", "cpuacct"))

    def _file(self, controller: str, name: str) -> str | None:
        d = self.dir(controller)
        return _read(os.path.join(d, name)) if d else None

    # -- processes ----------------------------------------------------------------
    def procs(self) -> list[int]:
        """Every process in the cgroup and its descendants (cgroup.procs), sorted.

        v1 reads the pids controller, falling back to memory, cpuacct, then the systemd named hierarchy.
        """
        if self.version == 2:
            candidates = [self.dir()]
        else:
            candidates = [self.dir(c) for c in ("pids", "memory", "cpuacct", "name=systemd")]
        for d in candidates:
            if d and os.path.isdir(d):
                return sorted(_procs_under(d))
        return []

    # -- figures ----------------------------------------------------------------
    def read(self) -> CgroupFigures:
        return self._read_v2() if self.version == 2 else self._read_v1()

    def _read_v1(self) -> CgroupFigures:
        f = CgroupFigures(1)
        # cpuacct: usage in ns; cpuacct.stat in USER_HZ ticks
        f.cpu_total = _uint(self._file("cpuacct", "cpuacct.usage"))
        percpu = (self._file("cpuacct", "cpuacct.usage_percpu") or "").split()
        f.percpu = [int(x) for x in percpu if x.isdigit()]
        ticks = parse_flat_keyed(self._file("cpuacct", "cpuacct.stat"))
        ns_per_tick = 1_000_000_000 // clock_ticks()
        f.cpu_user = ticks.get("user", 0) * ns_per_tick
        f.cpu_kernel = ticks.get("system", 0) * ns_per_tick
        cpu = parse_flat_keyed(self._file("cpu", "cpu.stat"))
        f.throttle_periods = cpu.get("nr_periods", 0)
        f.throttle_throttled = cpu.get("nr_throttled", 0)
        f.throttle_time = cpu.get("throttled_time", 0)
        # memory
        f.mem_usage = _uint(self._file("memory", "memory.usage_in_bytes"))
        f.mem_max_usage = _uint(self._file("memory", "memory.max_usage_in_bytes"))
        f.mem_limit = _uint(self._file("memory", "memory.limit_in_bytes"))
        f.mem_failcnt = _uint(self._file("memory", "memory.failcnt"))
        f.mem_stats = parse_flat_keyed(self._file("memory", "memory.stat"))
        # pids: "max" is no limit, reported as 0 (containerd's v1 collector)
        f.pids_current = _uint(self._file("pids", "pids.current"))
        f.pids_limit = _uint(self._file("pids", "pids.max"), 0)
        # blkio (throttle files: present whatever the I/O scheduler)
        f.io_service_bytes = parse_blkio_v1(self._file("blkio", "blkio.throttle.io_service_bytes_recursive"))
        f.io_serviced = parse_blkio_v1(self._file("blkio", "blkio.throttle.io_serviced_recursive"))
        return f

    def _read_v2(self) -> CgroupFigures:
        f = CgroupFigures(2)
        d = self.dir() or ""
        cpu = parse_flat_keyed(_read(os.path.join(d, "cpu.stat")))
        f.cpu_total = cpu.get("usage_usec", 0) * 1000
        f.cpu_user = cpu.get("user_usec", 0) * 1000
        f.cpu_kernel = cpu.get("system_usec", 0) * 1000
        f.throttle_periods = cpu.get("nr_periods", 0)
        f.throttle_throttled = cpu.get("nr_throttled", 0)
        f.throttle_time = cpu.get("throttled_usec", 0) * 1000
        f.mem_usage = _uint(_read(os.path.join(d, "memory.current")))
        f.mem_limit = _uint(_read(os.path.join(d, "memory.max")))
        f.mem_stats = parse_flat_keyed(_read(os.path.join(d, "memory.stat")))
        f.mem_failcnt = parse_flat_keyed(_read(os.path.join(d, "memory.events"))).get("oom", 0)
        f.pids_current = _uint(_read(os.path.join(d, "pids.current")))
        f.pids_limit = _uint(_read(os.path.join(d, "pids.max")))
        for maj, mnr, values in parse_io_stat_v2(_read(os.path.join(d, "io.stat"))):
            f.io_service_bytes += [(maj, mnr, "read", values.get("rbytes", 0)),
                                   (maj, mnr, "write", values.get("wbytes", 0))]
        return f


def _procs_under(d: str) -> set[int]:
    pids: set[int] = set()
    for dirpath, _dirs, files in os.walk(d):
        if "cgroup.procs" in files:
            for line in (_read(os.path.join(dirpath, "cgroup.procs")) or "").split():
                if line.isdigit():
                    pids.add(int(line))
    return pids


# -- the host ---------------------------------------------------------------------
_CLK_TCK: int | None = None


def clock_ticks() -> int:
    global _CLK_TCK
    if _CLK_TCK is None:
        try:
            _CLK_TCK = int(os.sysconf("SC_CLK_TCK")) or 100
        except (ValueError, OSError):
            _CLK_TCK = 100
    return _CLK_TCK


def system_cpu(proc: str = "/proc") -> tuple[int, int]:
    """(host CPU time in ns, online CPUs) from /proc/stat, as dockerd computes ``system_cpu_usage``.

    The first seven fields of the ``cpu`` line (user nice system idle iowait irq softirq), in clock ticks,
    converted to ns; online CPUs are the ``cpuN`` lines.
    """
    total, online = 0, 0
    for line in (_read(os.path.join(proc, "stat")) or "").splitlines():
        if line.startswith("cpu "):
            fields = line.split()[1:8]
            total = sum(int(x) for x in fields if x.isdigit()) * (1_000_000_000 // clock_ticks())
        elif line.startswith("cpu") and line[3:4].isdigit():
            online += 1
    return total, online


def host_memory(proc: str = "/proc") -> int:
    """The host's total memory in bytes (MemTotal)."""
    for line in (_read(os.path.join(proc, "meminfo")) or "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            try:
                return int(parts[1]) * (1024 if parts[2:3] == ["kB"] else 1)
            except (ValueError, IndexError):
                return 0
    return 0


NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors",
              "tx_dropped")


def parse_net_dev(text: str | None) -> dict[str, dict[str, int]]:
    """/proc/<pid>/net/dev → {interface: {rx_bytes, rx_packets, rx_errors, rx_dropped, tx_...}}."""
    out: dict[str, dict[str, int]] = {}
    for line in (text or "").splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        v = rest.split()
        if len(v) < 16:
            continue
        try:
            n = [int(x) for x in v[:16]]
        except ValueError:
            continue
        # receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop ...
        out[name.strip()] = dict(zip(NET_FIELDS, (n[0], n[1], n[2], n[3], n[8], n[9], n[10], n[11])))
    return out


def net_dev(pid: int, proc: str = "/proc") -> dict[str, dict[str, int]]:
    """The interfaces of ``pid``'s network namespace; {} if the process is gone."""
    if pid <= 0:
        return {}
    return parse_net_dev(_read(os.path.join(proc, str(pid), "net", "dev")))


# -- ps ---------------------------------------------------------------------------
async def run_ps(args: list[str], binary: str = "ps") -> tuple[int, bytes, bytes]:
    """Run the host's ``ps`` with ``args``: (exit code, stdout, stderr); exit code 127 when ps is missing."""
    try:
        proc = await asyncio.create_subprocess_exec(
            binary, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError:
        return 127, b"", f'exec: "{binary}": executable file not found in $PATH'.encode()
    except PermissionError as e:
        return 126, b"", f"exec: {binary!r}: {e.strerror}".encode()
    out, err = await proc.communicate()
    return proc.returncode or 0, out, err
