"""Container → OCI runtime spec (config.json). Pure: no I/O but what callers pass in."""
from __future__ import annotations

from dataclasses import dataclass

from berth.errors import InvalidArgument
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
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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


def capabilities(c: Container, facts: HostFacts) -> list[str]:
    """Docker's rule: the default set, or every capability the host holds when privileged."""
    def norm(name: str) -> str:
        name = name.upper()
        return name if name.startswith("CAP_") else "CAP_" + name

    if c.spec.privileged:
        caps = list(ALL_CAPS)
    else:
        caps = list(DEFAULT_CAPS)
        adds = [norm(x) for x in c.spec.cap_add]
        drops = [norm(x) for x in c.spec.cap_drop]
        if "CAP_ALL" in adds:
            caps = list(ALL_CAPS)
        else:
            caps += [a for a in adds if a not in caps]
        caps = [] if "CAP_ALL" in drops else [x for x in caps if x not in drops]
    return [x for x in caps if x in facts.bounding_caps]


def process_env(c: Container) -> list[str]:
    env = list(c.spec.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    if not any(e.startswith("HOSTNAME=") for e in env):
        env.insert(1, f"HOSTNAME={c.spec.hostname}")
    return env


def build_spec(c: Container, rootfs: str, user: ProcessUser, files: dict[str, str], facts: HostFacts,
               netns: str | None) -> dict:
    """The OCI config for ``c``: ``files`` maps in-container paths (/etc/hosts ...) to host files.

    ``netns`` None means a private network namespace (loopback only); "host" shares the host's.
    """
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
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
    ]
    for dest, src in files.items():
        mounts.append({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]})
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if netns is None:
        namespaces.append({"type": "network"})
    elif netns != "host":
        namespaces.append({"type": "network", "path": netns})
    linux: dict = {
        "namespaces": namespaces,
        "cgroupsPath": f"/berth/{c.id}",
        "resources": {"devices": [{"allow": False, "access": "rwm"}] + ([{"allow": True, "access": "rwm"}] if c.spec.privileged else [
            {"allow": True, "type": "c", "major": 1, "minor": m, "access": "rwm"} for m in (3, 5, 7, 8, 9)
        ] + [
            {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": True, "type": "c", "major": 136, "access": "rwm"},
            {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
        ])},
    }
    if not c.spec.privileged:
        linux["maskedPaths"] = MASKED_PATHS
        linux["readonlyPaths"] = READONLY_PATHS
    else:
        for m in mounts:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    if netns == "host":
        for m in mounts:
            if m["destination"] == "/sys":
                m.update(type="bind", source="/sys", options=["rbind", "ro", "nosuid", "noexec", "nodev"])
    process = {
        "terminal": c.spec.tty,
        "user": {"uid": user.uid, "gid": user.gid, **({"additionalGids": list(user.additional_gids)} if user.additional_gids else {})},
        "args": argv,
        "env": process_env(c),
        "cwd": c.spec.working_dir or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": False,
    }
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": c.spec.readonly_rootfs},
        "hostname": c.spec.hostname,
        "mounts": mounts,
        "linux": linux,
    }


def parse_user(user: str, passwd: str, group: str) -> ProcessUser:
    """Resolve ``user[:group]`` against the container's /etc/passwd and /etc/group texts."""
    name, _, grp = (user or "0").partition(":")
    uid = gid = None
    extra: list[int] = []
    pw = [line.split(":") for line in passwd.splitlines() if line.count(":") >= 6]
    gr = [line.split(":") for line in group.splitlines() if line.count(":") >= 3]
    for entry in pw:
        if entry[0] == name or (name.isdigit() and entry[2] == name):
            uid, gid = int(entry[2]), int(entry[3])
            break
    if uid is None:
        if not name.isdigit():
            raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid = int(name), 0
    if grp:
        for entry in gr:
            if entry[0] == grp or (grp.isdigit() and entry[2] == grp):
                gid = int(entry[2])
                break
        else:
            if not grp.isdigit():
                raise InvalidArgument(f"unable to find group {grp}: no matching entries in group file")
            gid = int(grp)
    else:
        uname = next((e[0] for e in pw if int(e[2]) == uid), None) if pw else None
        for entry in gr:
            members = entry[3].split(",") if len(entry) > 3 else []
            if uname and uname in members and int(entry[2]) != gid:
                extra.append(int(entry[2]))
    return ProcessUser(uid, gid if gid is not None else 0, tuple(extra))
