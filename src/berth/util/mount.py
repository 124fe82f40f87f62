"""mount(2) and umount2(2) through libc, without spawning mount(8)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
MNT_DETACH = 2


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def unmount(target: str, lazy: bool = True) -> None:
    """Unmount ``target``; quietly succeed when nothing is mounted there."""
    if _libc.umount2(target.encode(), MNT_DETACH if lazy else 0) != 0:
        err = ctypes.get_errno()
        if err in (22, 2):  # EINVAL: not a mount point; ENOENT
            return
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def mounted_under(prefix: str) -> list[str]:
    """Mount points at or below ``prefix``, deepest first."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
                out.append(point)
    return sorted(out, key=len, reverse=True)
