"""Whether the kernel's OOM killer struck inside a container's memory cgroup (Docker's State.OOMKilled).

The kernel counts OOM kills per memory cgroup: ``oom_kill`` in ``memory.oom_control`` (cgroup v1, kernels
from 4.13 on) or in ``memory.events`` (cgroup v2, counting the cgroup and its children). The count lives only
as long as the cgroup, and ``runc delete`` removes it: read it when the container's init has exited and
before that delete.
"""
from __future__ import annotations

import os

CGROUP_ROOT = "/sys/fs/cgroup"


def _v1_memory_root(root: str) -> str | None:
    """Where the v1 memory controller is mounted (alone at <root>/memory, or co-mounted elsewhere)."""
    plain = os.path.join(root, "memory")
    if os.path.isdir(plain):
        return plain
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                fields, extra = pre.split(), post.split()
                if len(extra) >= 3 and extra[0] == "cgroup" and "memory" in extra[2].split(","):
                    return fields[4]
    except OSError:
        pass
    return None


def _counter(path: str, key: str) -> int | None:
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
    except (OSError, ValueError):
        return None
    return None


def memory_cgroup_dir(cgroups_path: str, root: str = CGROUP_ROOT) -> str | None:
    """The directory of ``cgroups_path`` (the OCI spec's ``linux.cgroupsPath``, ``/berth/<id>``) holding its
    memory files, or None when the host has no memory controller."""
    rel = cgroups_path.lstrip("/")
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return os.path.join(root, rel)
    base = _v1_memory_root(root)
    return os.path.join(base, rel) if base else None


def oom_kills(cgroups_path: str, root: str = CGROUP_ROOT) -> int:
    """How many processes the OOM killer has killed in the cgroup so far (0 when unknown)."""
    d = memory_cgroup_dir(cgroups_path, root)
    if d is None:
        return 0
    for name in ("memory.events", "memory.oom_control"):
        n = _counter(os.path.join(d, name), "oom_kill")
        if n is not None:
            return n
    return 0


def oom_killed(cgroups_path: str, root: str = CGROUP_ROOT) -> bool:
    """True when the OOM killer killed any process of the container (call before ``runc delete``)."""
    return oom_kills(cgroups_path, root) > 0
