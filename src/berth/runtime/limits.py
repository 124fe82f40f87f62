"""Resource limits and security options checked against this host, as dockerd does at create time.

``check`` turns a new container's HostConfig values into settled ones (Docker's defaults filled in) or
refuses them with Docker's messages: nothing is created for a bad value. The host facts it reads (CPUs,
cpusets, the daemon's own rlimits, device nodes, the init binary) have small functions of their own here,
which ``spec.build_spec`` also uses for what must be read when a container starts (device numbers).
"""
from __future__ import annotations

import os
import resource
import shutil
import stat

from berth.errors import InvalidArgument
from berth.runtime import seccomp
from berth.types.container import ContainerSpec

MIN_MEMORY = 6 * 1024 * 1024  # dockerd's floor ("to supply a reasonable functional container")
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
RLIM_INFINITY = 2**64 - 1  # the OCI spec's unlimited (uint64), what -1 means in Docker's API
ULIMITS = {  # Docker's --ulimit names → the OCI type
    "as": "RLIMIT_AS", "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE", "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK",
}
# Namespaced sysctls a container may set (the docker CLI's list): the IPC namespace's, POSIX message queues',
# and the network namespace's (only with a network namespace of its own).
SYSCTLS_IPC = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
               "kernel.shmmni", "kernel.shm_rmid_forced"}
SYSCTL_PREFIXES = ("net.", "fs.mqueue.")
TMPFS_FLAGS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async", "dirsync", "mand",
               "nomand", "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime", "strictatime",
               "nostrictatime", "private", "rprivate", "shared", "rshared", "slave", "rslave"}
TMPFS_DATA = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge"}
INIT_CANDIDATES = ("tini-static", "docker-init", "tini")  # static first: it runs in images without a libc
INIT_DIRS = ("/usr/bin", "/usr/local/bin", "/usr/sbin", "/usr/libexec/docker", "/sbin", "/bin")
_SKIP_DEV_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


# -- host facts -------------------------------------------------------------------------------------

def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def available(kind: str) -> str:
    """The cpuset ``cpus`` or ``mems`` containers may use, as the kernel prints it ("0-3")."""
    for path in (f"/sys/fs/cgroup/cpuset/cpuset.{kind}", f"/sys/fs/cgroup/cpuset.{kind}.effective"):
        text = _read(path)
        if text:
            return text
    if kind == "cpus":
        return _read("/sys/devices/system/cpu/online") or f"0-{cpu_count() - 1}"
    return _read("/sys/devices/system/node/online") or "0"


def parse_list(text: str) -> set[int]:
    """A cpuset list ("0-2,4") → its numbers; ValueError when malformed."""
    out: set[int] = set()
    if text == "":
        return out
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ValueError(f"invalid format: {text}")
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a:
            raise ValueError(f"invalid format: {text}")
        out.update(range(a, b + 1))
    return out


def swap_limit_supported() -> bool:
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "memory" in (_read("/sys/fs/cgroup/cgroup.controllers") or "")
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")


def host_hard_limit(name: str) -> int:
    """The daemon's own hard limit for a --ulimit name (RLIM_INFINITY when unlimited)."""
    hard = resource.getrlimit(getattr(resource, ULIMITS[name]))[1]
    return RLIM_INFINITY if hard == resource.RLIM_INFINITY else hard


def find_init() -> str | None:
    """The init binary bind-mounted as /sbin/docker-init (Debian's tini package), or None."""
    for name in INIT_CANDIDATES:
        for d in INIT_DIRS:
            path = os.path.join(d, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        found = shutil.which(name)
        if found:
            return found
    return None


def _node(path: str, dest: str, perms: str) -> tuple[dict, dict] | None:
    st = os.stat(path)
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    node = {"path": dest, "type": kind, "major": major, "minor": minor, "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}
    return node, {"allow": True, "type": kind, "major": major, "minor": minor, "access": perms}


def device_nodes(mapping: dict) -> list[tuple[dict, dict]]:
    """(linux.devices entry, device cgroup rule) for one of Docker's DeviceMappings; a directory gives every
    device under it. InvalidArgument (dockerd's wording) when the host has no such device."""
    src = mapping["PathOnHost"]
    dest = mapping.get("PathInContainer") or src
    perms = mapping.get("CgroupPermissions") or "rwm"
    try:
        if os.path.isdir(src):
            out = []
            for root, dirs, files in os.walk(src):
                for name in sorted(files):
                    path = os.path.join(root, name)
                    try:
                        found = _node(path, os.path.join(dest, os.path.relpath(path, src)), perms)
                    except OSError:
                        continue
                    if found:
                        out.append(found)
            return out
        found = _node(src, dest, perms)
    except OSError as e:
        raise InvalidArgument(f'error gathering device information while adding custom device "{src}": '
                              f"{(e.strerror or str(e)).lower()}") from None
    if found is None:
        raise InvalidArgument(f'error gathering device information while adding custom device "{src}": '
                              "not a device node")
    return [found]


def host_devices() -> list[dict]:
    """Every character and block device under the host's /dev, for a privileged container."""
    out = []
    for root, dirs, files in os.walk("/dev"):
        dirs[:] = [d for d in dirs if not (root == "/dev" and d in _SKIP_DEV_DIRS)]
        for name in sorted(files):
            path = os.path.join(root, name)
            if path == "/dev/console":
                continue
            try:
                found = _node(path, path, "rwm")
            except OSError:
                continue
            if found:
                out.append(found[0])
    return out


# -- checking a new container's values --------------------------------------------------------------

def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_ulimits(ulimits: list) -> list[dict]:
    out = []
    for u in ulimits:
        if not isinstance(u, dict) or not isinstance(u.get("Name"), str) or not _int(u.get("Soft", 0)) \
                or not _int(u.get("Hard", 0)):
            raise InvalidArgument("invalid type for HostConfig.Ulimits: expected objects of Name, Soft and Hard")
        name, soft, hard = u["Name"], u.get("Soft", 0), u.get("Hard", 0)
        if name not in ULIMITS:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        s, h = (RLIM_INFINITY if x < 0 else x for x in (soft, hard))
        if s > h:
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        host = host_hard_limit(name)
        if h > host:
            shown = "unlimited" if h == RLIM_INFINITY else h
            raise InvalidArgument(f"ulimit {name}: hard limit {shown} is above the host's hard limit of {host}: "
                                  f"a container cannot be given more than berthd has")
        out.append({"Name": name, "Soft": soft, "Hard": hard})
    return out


def rlimits(ulimits: list[dict]) -> list[dict]:
    """process.rlimits for Docker's Ulimits."""
    return [{"type": ULIMITS[u["Name"]], "soft": RLIM_INFINITY if u["Soft"] < 0 else u["Soft"],
             "hard": RLIM_INFINITY if u["Hard"] < 0 else u["Hard"]} for u in ulimits]


def check_devices(devices: list) -> list[dict]:
    out = []
    for d in devices:
        if not isinstance(d, dict) or not isinstance(d.get("PathOnHost"), str) \
                or not isinstance(d.get("PathInContainer") or "", str) \
                or not isinstance(d.get("CgroupPermissions") or "", str):
            raise InvalidArgument("invalid type for HostConfig.Devices: expected objects of PathOnHost, "
                                  "PathInContainer and CgroupPermissions")
        src = d["PathOnHost"]
        dest = d.get("PathInContainer") or src
        perms = d.get("CgroupPermissions") or "rwm"
        if not src.startswith("/"):
            raise InvalidArgument(f"bad format for path: {src}")
        if not dest.startswith("/"):
            raise InvalidArgument(f"bad format for path: {dest}")
        if not set(perms) <= set("rwm") or len(set(perms)) != len(perms):
            raise InvalidArgument(f"invalid device mode: {perms}")
        mapping = {"PathOnHost": src, "PathInContainer": dest, "CgroupPermissions": perms}
        device_nodes(mapping)  # the host must have it now
        out.append(mapping)
    return out


def check_sysctls(sysctls: dict, network_mode: str) -> dict[str, str]:
    for key, value in sysctls.items():
        if not isinstance(value, str):
            raise InvalidArgument(f"invalid type for HostConfig.Sysctls: the value of {key} must be a string")
        if key not in SYSCTLS_IPC and not key.startswith(SYSCTL_PREFIXES):
            raise InvalidArgument(f"sysctl '{key}={value}' is not allowed")
        if key.startswith("net.") and network_mode == "host":
            raise InvalidArgument(f"sysctl '{key}={value}' is not allowed in host network namespace")
    return dict(sysctls)


def tmpfs_options(options: str) -> list[str]:
    """Docker's tmpfs defaults (noexec, nosuid, nodev) merged with a mount's options: the later wins."""
    flags: dict[str, str] = {"exec": "noexec", "suid": "nosuid", "dev": "nodev"}
    data: dict[str, str] = {}
    for opt in [o for o in options.split(",") if o]:
        key, eq, _ = opt.partition("=")
        if eq:
            if key not in TMPFS_DATA:
                raise InvalidArgument(f'invalid tmpfs option "{opt}"')
            data[key] = opt
        elif opt in TMPFS_FLAGS:
            base = opt[2:] if opt.startswith("no") and opt[2:] in TMPFS_FLAGS else opt
            base = {"ro": "rw"}.get(base, base)
            flags[base] = opt
        else:
            raise InvalidArgument(f'invalid tmpfs option "{opt}"')
    return list(flags.values()) + list(data.values())


def check_tmpfs(tmpfs: dict) -> dict[str, str]:
    for dest, options in tmpfs.items():
        if not isinstance(options, str):
            raise InvalidArgument("invalid type for HostConfig.Tmpfs: expected an object of strings")
        if not dest.startswith("/"):
            raise InvalidArgument(f"invalid mount config for type \"tmpfs\": invalid mount path: '{dest}' "
                                  "mount path must be absolute")
        if os.path.normpath(dest) == "/":
            raise InvalidArgument("invalid specification: destination can't be '/'")
        tmpfs_options(options)
    return dict(tmpfs)


def check_group_add(groups: list) -> list[str]:
    for g in groups:
        if not isinstance(g, str) or not g:
            raise InvalidArgument("invalid type for HostConfig.GroupAdd: expected an array of strings")
        if g.isdigit() and int(g) > 2**31 - 1:
            raise InvalidArgument(f"Unable to find group {g}: gids must be in range 0-2147483647")
    return list(groups)


def security_options(opts: list) -> tuple[bool, str]:
    """(no-new-privileges, seccomp profile) from HostConfig.SecurityOpt, parsed as dockerd does."""
    nnp, profile = False, ""
    for opt in opts:
        if not isinstance(opt, str):
            raise InvalidArgument("invalid type for HostConfig.SecurityOpt: expected an array of strings")
        if opt == "no-new-privileges":
            nnp = True
            continue
        if "=" in opt:
            key, _, val = opt.partition("=")
        elif ":" in opt:
            key, _, val = opt.partition(":")
        else:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        if key == "no-new-privileges":
            if val not in ("true", "false", "1", "0", "t", "f", "TRUE", "FALSE", "True", "False"):
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
            nnp = val in ("true", "1", "t", "TRUE", "True")
        elif key == "seccomp":
            if val in ("unconfined", "builtin", ""):
                profile = "" if val in ("builtin", "") else "unconfined"
            else:
                seccomp.load_profile(val)
                profile = val
        elif key in ("label", "apparmor"):
            raise InvalidArgument(f'invalid --security-opt: "{opt}" is not supported yet')
        else:
            raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    return nnp, profile


def check(spec: ContainerSpec) -> ContainerSpec:
    """Refuse what dockerd refuses; fill in Docker's defaults (swap twice the memory, a 64 MiB /dev/shm)."""
    s = spec
    if s.memory < 0 or (s.memory and s.memory < MIN_MEMORY):
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if s.memory > 0 and s.memory_swap != -1 and not swap_limit_supported():
        s.memory_swap = -1
    if s.memory > 0 and s.memory_swap > 0 and s.memory_swap < s.memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    if s.memory == 0 and s.memory_swap > 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if s.memory_swap < -1:
        raise InvalidArgument(f"invalid memory swap limit: {s.memory_swap}")
    if s.memory_reservation < 0 or (s.memory_reservation and s.memory_reservation < MIN_MEMORY):
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if s.memory > 0 and s.memory_reservation > 0 and s.memory < s.memory_reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation limit, see usage")
    if s.nano_cpus > 0 and s.cpu_period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if s.nano_cpus > 0 and s.cpu_quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    n = cpu_count()
    if s.nano_cpus < 0 or s.nano_cpus > n * 10**9:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available")
    if s.cpu_shares < 0:
        raise InvalidArgument("shares: invalid argument")
    if s.cpu_period != 0 and not 1000 <= s.cpu_period <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
    if s.cpu_quota > 0 and s.cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    for kind, value in (("cpus", s.cpuset_cpus), ("mems", s.cpuset_mems)):
        if not value:
            continue
        try:
            wanted = parse_list(value)
        except ValueError as e:
            raise InvalidArgument(f"Invalid value {value} for cpuset {kind}: {e}") from None
        have = available(kind)
        if not wanted <= parse_list(have):
            what = "CPUs" if kind == "cpus" else "memory nodes"
            raise InvalidArgument(f"Requested {what} are not available - requested {value}, available: {have}")
    if s.pids_limit is not None and s.pids_limit <= 0:
        s.pids_limit = None  # 0 and any negative value mean unlimited
    if s.shm_size < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    if s.shm_size == 0:
        s.shm_size = DEFAULT_SHM_SIZE
    if not -1000 <= s.oom_score_adj <= 1000:
        raise InvalidArgument(f"Invalid value {s.oom_score_adj}, range for oom score adj is [-1000, 1000]")
    if s.memory > 0 and s.memory_swap == 0:
        s.memory_swap = 2 * s.memory
    s.ulimits = check_ulimits(s.ulimits)
    s.devices = check_devices(s.devices)
    s.sysctls = check_sysctls(s.sysctls, s.network_mode)
    s.tmpfs = check_tmpfs(s.tmpfs)
    s.group_add = check_group_add(s.group_add)
    if s.init and find_init() is None:
        raise InvalidArgument("--init: no init binary found on the host: install Debian's tini package "
                              "(/usr/bin/tini-static)")
    return s
