"""Container → OCI runtime spec (config.json). Pure: no I/O but what callers pass in."""
from __future__ import annotations

import re
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
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
    "/sys/devices/virtual/powercap",
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
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": [user.gid, *user.additional_gids]},
        "args": argv,
        "env": process_env(c),
        "cwd": c.spec.working_dir or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": c.spec.no_new_privileges,
    }
    return {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": c.spec.readonly_rootfs},
        "hostname": c.spec.hostname,
        "mounts": mounts,
        "linux": linux,
    }


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


def parse_user(user: str, passwd: str, group: str) -> ProcessUser:
    """Resolve ``user[:group]`` against the container's /etc/passwd and /etc/group (moby/sys/user GetExecUser)."""
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
    if grp:  # explicit group: no supplementary groups
        gid_arg = _number(grp)
        if gid_arg is None:
            found = next((e for e in groups if e[0] == grp), None)
            if found is None:
                raise InvalidArgument(f"unable to find group {grp}: no matching entries in group file")
            gid_arg = int(found[2])
        return ProcessUser(uid, gid_arg)
    # Supplementary groups: those listing the matched user's name.
    return ProcessUser(uid, gid, tuple(int(e[2]) for e in groups if uname and uname in e[3].split(",")))
