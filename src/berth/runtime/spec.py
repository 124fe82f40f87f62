"""Container → OCI runtime spec (config.json).

Pure but for what dockerd also reads when a container starts: the device nodes it is given (their numbers),
the host's /dev for a privileged one, the init binary's path for ``--init``, and the seccomp profile file
shipped beside this module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from berth.errors import InvalidArgument
from berth.runtime import limits, seccomp
from berth.types.volume import MountPoint
from berth.types.container import Container

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_PATH = "/sbin/docker-init"  # where --init's binary appears in the container, as with Docker
DEFAULT_DEVICE_RULES = [
    {"allow": True, "type": "c", "major": 1, "minor": m, "access": "rwm"} for m in (3, 5, 7, 8, 9)
] + [
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]


def cgroups_path(cid: str) -> str:
    """The container's ``linux.cgroupsPath`` (runc's cgroupfs driver: ``/berth/<id>`` in each hierarchy)."""
    return f"/berth/{cid}"


@dataclass(frozen=True)
class HostFacts:
    """What the host contributes: its capability bounding set and cgroup layout."""

    bounding_caps: frozenset[str]
    cgroup_v2: bool


@dataclass(frozen=True)
class ProcessUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()


def validate_capabilities(names: list[str]) -> list[str]:
    """moby's NormalizeLegacyCapabilities: upper-case, ``CAP_`` prefixed; "ALL" kept; unknown → InvalidArgument."""
    out = []
    for name in names:
        name = name.upper()
        if name != "ALL" and not name.startswith("CAP_"):
            name = "CAP_" + name
        if name != "ALL" and name not in ALL_CAPS:
            raise InvalidArgument(f'unknown capability: "{name}"')
        out.append(name)
    return out


def capabilities(c: Container, facts: HostFacts) -> list[str]:
    """moby's TweakCapabilities, then limited to what the host's bounding set holds."""
    if c.spec.privileged:
        caps = list(ALL_CAPS)
    else:
        adds, drops = validate_capabilities(c.spec.cap_add), validate_capabilities(c.spec.cap_drop)
        if "ALL" in adds:
            caps = [x for x in ALL_CAPS if x not in drops]
        elif "ALL" in drops:
            caps = adds
        else:
            caps = [x for x in DEFAULT_CAPS if x not in drops] + adds
    return [x for x in dict.fromkeys(caps) if x in facts.bounding_caps]


def process_env(c: Container) -> list[str]:
    """moby's CreateDaemonEnvironment: PATH, HOSTNAME (TERM with a TTY), replaced or extended by the container's."""
    env = [DEFAULT_PATH, f"HOSTNAME={c.spec.hostname}"] + (["TERM=xterm"] if c.spec.tty else [])
    index = {e.split("=", 1)[0]: i for i, e in enumerate(env)}
    for e in c.spec.env:
        key, eq, _ = e.partition("=")
        if key in index:
            env[index[key]] = e if eq else ""  # "KEY" without "=" unsets a default
        elif eq:
            env.append(e)
    return [e for e in env if e]


def build_spec(c: Container, rootfs: str, user: ProcessUser, files: dict[str, str], facts: HostFacts,
               netns: str | None, volumes: list[tuple[MountPoint, str]] = ()) -> dict:
    """The OCI config for ``c``: ``files`` maps in-container paths (/etc/hosts ...) to host files;
    ``volumes`` are the container's mount points with the host path each binds (volumes, binds, tmpfs).

    ``netns`` None means a private network namespace (loopback only); "host" shares the host's.
    """
    s = c.spec
    argv = c.argv
    if not argv:
        raise InvalidArgument("no command specified")
    caps = capabilities(c, facts)
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={s.shm_size or limits.DEFAULT_SHM_SIZE}"]},
    ]
    mine = {m.destination.rstrip("/") or "/" for m, _ in volumes}
    mounts = [m for m in mounts if m["destination"] not in mine]
    extra = [{"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}
             for dest, src in files.items() if dest not in mine]  # a user's mount over /etc/hosts (...) wins
    for m, host_path in volumes:
        if m.type == "tmpfs":
            extra.append({"destination": m.destination, "type": "tmpfs", "source": "tmpfs",
                          "options": limits.tmpfs_options(m.tmpfs_options) + ([] if m.rw else ["ro"])})
        else:
            extra.append({"destination": m.destination, "type": "bind", "source": host_path,
                          "options": ["rbind", m.propagation or "rprivate", "rw" if m.rw else "ro"]})
    # Parents before children (Docker sorts by depth): /etc/hosts stays visible over a volume on /etc.
    mounts += sorted(extra, key=lambda m: m["destination"].rstrip("/").count("/"))
    for dest, options in s.tmpfs.items():  # a --tmpfs replaces a default mount at the same place
        mounts = [m for m in mounts if m["destination"].rstrip("/") != dest.rstrip("/")]
        mounts.append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                       "options": limits.tmpfs_options(options)})
    if s.init:
        init = limits.find_init()
        if init is None:
            raise InvalidArgument("--init: no init binary found on the host: install Debian's tini package")
        mounts.append({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "ro"]})
        argv = [INIT_PATH, "--", *argv]
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if netns is None:
        namespaces.append({"type": "network"})
    elif netns != "host":
        namespaces.append({"type": "network", "path": netns})
    devices: dict[str, dict] = {}
    rules = [{"allow": False, "access": "rwm"}]
    if s.privileged:
        devices.update((d["path"], d) for d in limits.host_devices())
        rules.append({"allow": True, "access": "rwm"})
    else:
        rules += DEFAULT_DEVICE_RULES
    for mapping in s.devices:
        for node, rule in limits.device_nodes(mapping):
            devices[node["path"]] = node
            if not s.privileged:
                rules.append(rule)
    linux: dict = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path(c.id),
        "resources": {"devices": rules, **resources(c)},
    }
    if devices:
        linux["devices"] = list(devices.values())
    if s.sysctls:
        linux["sysctl"] = dict(s.sysctls)
    if not s.privileged:
        linux["maskedPaths"] = MASKED_PATHS
        linux["readonlyPaths"] = READONLY_PATHS
        if s.seccomp_profile != "unconfined":
            profile = (seccomp.load_profile(s.seccomp_profile) if s.seccomp_profile
                       else seccomp.default_profile())
            rules_ = seccomp.to_oci(profile, caps)
            if rules_ is not None:
                linux["seccomp"] = rules_
    else:
        for m in mounts:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    if netns == "host":
        for m in mounts:
            if m["destination"] == "/sys":
                m.update(type="bind", source="/sys", options=["rbind", "ro", "nosuid", "noexec", "nodev"])
    gids = list(dict.fromkeys([user.gid, *user.additional_gids, *(int(g) for g in s.group_add if g.isdigit())]))
    process = {
        "terminal": s.tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": gids},
        "args": argv,
        "env": process_env(c),
        "cwd": s.working_dir or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": s.no_new_privileges,
    }
    if s.tty and s.console_size:  # runc sizes the terminal before the process starts
        process["consoleSize"] = {"height": s.console_size[0], "width": s.console_size[1]}
    if s.ulimits:
        process["rlimits"] = limits.rlimits(s.ulimits)
    if s.oom_score_adj:
        process["oomScoreAdj"] = s.oom_score_adj
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": s.readonly_rootfs},
        "hostname": s.hostname,
        "mounts": mounts,
        "linux": linux,
    }


def resources(c: Container) -> dict:
    """linux.resources' memory, cpu and pids for Docker's HostConfig values (what dockerd sets)."""
    s = c.spec
    out: dict = {}
    memory: dict = {}
    if s.memory > 0:
        memory["limit"] = s.memory
    if s.memory_reservation > 0:
        memory["reservation"] = s.memory_reservation
    if s.memory_swap > 0:
        memory["swap"] = s.memory_swap
    if s.oom_kill_disable:
        memory["disableOOMKiller"] = True
    if memory:
        out["memory"] = memory
    cpu: dict = {}
    if s.cpu_shares > 0:
        cpu["shares"] = s.cpu_shares
    if s.nano_cpus > 0:
        cpu["period"] = 100000  # 100 ms, in microseconds
        cpu["quota"] = s.nano_cpus * 100000 // 10**9
    if s.cpu_period:
        cpu["period"] = s.cpu_period
    if s.cpu_quota:
        cpu["quota"] = s.cpu_quota
    if s.cpuset_cpus:
        cpu["cpus"] = s.cpuset_cpus
    if s.cpuset_mems:
        cpu["mems"] = s.cpuset_mems
    if cpu:
        out["cpu"] = cpu
    if s.pids_limit is not None and s.pids_limit > 0:
        out["pids"] = {"limit": s.pids_limit}
    return out


def _number(s: str) -> int | None:
    """Go's strconv.Atoi, range-checked as moby/sys/user does for IDs."""
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        return None
    n = int(s)
    if not 0 <= n <= 2**31 - 1:
        raise InvalidArgument("uids and gids must be in range 0-2147483647")
    return n


def _entries(text: str, width: int, ids: int) -> list[list[str]]:
    """The ``name:x:id...`` lines of a passwd (2 ids) or group (1 id) file, padded to ``width`` fields."""
    out = []
    for line in text.splitlines():
        parts = (line.strip().split(":") + [""] * width)[:width]
        if parts[0] and not parts[0].startswith("#") and all(re.fullmatch(r"[0-9]+", p) for p in parts[2:2 + ids]):
            out.append(parts)
    return out


def parse_user(user: str, passwd: str, group: str, extra_groups: list[str] | tuple[str, ...] = ()) -> ProcessUser:
    """Resolve ``user[:group]`` against the container's /etc/passwd and /etc/group (moby/sys/user GetExecUser).

    ``extra_groups`` are HostConfig.GroupAdd's names or numbers, added to the supplementary groups.
    """
    name, grp = (user.split(":") + [""])[:2]
    uid_arg = _number(name or "0")  # a numeric user is always a UID
    match = next((e for e in _entries(passwd, 7, 2) if (int(e[2]) == uid_arg if uid_arg is not None else e[0] == name)),
                 None)
    if match:
        uid, gid, uname = int(match[2]), int(match[3]), match[0]
    elif uid_arg is None:
        raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
    else:
        uid, gid, uname = uid_arg, 0, ""
    groups = _entries(group, 4, 1)
    added = _added_groups(extra_groups, groups)
    if grp:  # explicit group: no supplementary groups from /etc/group
        gid_arg = _number(grp)
        if gid_arg is None:
            found = next((e for e in groups if e[0] == grp), None)
            if found is None:
                raise InvalidArgument(f"unable to find group {grp}: no matching entries in group file")
            gid_arg = int(found[2])
        return ProcessUser(uid, gid_arg, added)
    # Supplementary groups: those listing the matched user's name.
    member = tuple(int(e[2]) for e in groups if uname and uname in e[3].split(","))
    return ProcessUser(uid, gid, tuple(dict.fromkeys(member + added)))


def _added_groups(names: list[str] | tuple[str, ...], groups: list[list[str]]) -> tuple[int, ...]:
    """GroupAdd entries → GIDs: a group of that name (or number) in /etc/group, else a number as it is."""
    out = []
    for g in names:
        found = next((e for e in groups if e[0] == g or e[2] == g), None)
        if found is not None:
            out.append(int(found[2]))
            continue
        n = _number(g)
        if n is None:
            raise InvalidArgument(f"Unable to find group {g}: no matching entries in group file")
        out.append(n)
    return tuple(out)
