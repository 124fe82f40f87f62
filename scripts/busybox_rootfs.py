#!/usr/bin/env python3
"""Make a small, reproducible root filesystem tar from Debian's busybox-static.

Usage: busybox_rootfs.py OUT.tar [BUSYBOX]

The tar holds /bin/busybox, a symlink for every applet, a few directories and
/etc/passwd and /etc/group for root and nobody. Nothing is downloaded; it is
what the README's demo and the tests import as their base image.
"""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile

MTIME = 1700000000
DIRS = ["bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr", "usr/bin", "usr/sbin", "sbin", "var", "var/tmp"]
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\n"


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname, ti.mtime = kind, mode, size, link, MTIME
    ti.uname = ti.gname = "root"
    return ti


def make_rootfs_tar(out: str, busybox: str = "/bin/busybox") -> str:
    applets = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    with open(busybox, "rb") as f:
        binary = f.read()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in DIRS:
            tar.addfile(_info(d, tarfile.DIRTYPE, 0o1777 if d.endswith("tmp") else 0o755))
        tar.addfile(_info("bin/busybox", tarfile.REGTYPE, 0o755, len(binary)), io.BytesIO(binary))
        for name, data in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
            tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
        for applet in sorted(set(applets)):
            if applet in ("bin/busybox",) or not applet.split("/")[0] in ("bin", "sbin", "usr"):
                continue
            tar.addfile(_info(applet, tarfile.SYMTYPE, 0o777, link="/bin/busybox"))
    return out


if __name__ == "__main__":
    make_rootfs_tar(sys.argv[1], *(sys.argv[2:3] or []))
