"""Network namespaces kept alive by a bind mount on a file (as ``ip netns`` and Docker do).

Namespaces are made and entered by the calling thread alone (unshare/setns of CLONE_NEWNET
affect one thread), which always returns to the namespace it started in.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import socket
from collections.abc import Iterator

from berth.util.mount import mount, mounted_under, unmount

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
_SELF = "/proc/thread-self/ns/net"


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def create(path: str) -> None:
    """A new, empty network namespace (loopback down) pinned at ``path``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w"):
        pass
    home = os.open(_SELF, os.O_RDONLY)
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        try:
            mount(_SELF, path, "none", MS_BIND)
        finally:
            _check(_libc.setns(home, CLONE_NEWNET), "setns back")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    finally:
        os.close(home)


def destroy(path: str) -> None:
    """Unpin the namespace; the kernel frees it (and the veths inside) once nothing else holds it."""
    unmount(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def entered(path: str) -> Iterator[None]:
    """Run the body in the namespace at ``path`` (this thread only)."""
    home = os.open(_SELF, os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        _check(_libc.setns(target, CLONE_NEWNET), f"setns {path}")
        try:
            yield
        finally:
            _check(_libc.setns(home, CLONE_NEWNET), "setns back")
    finally:
        os.close(target)
        os.close(home)


def listeners(path: str, addr: str, port: int) -> tuple[socket.socket, socket.socket]:
    """A UDP socket and a listening TCP socket on ``addr:port`` inside the namespace at ``path``."""
    with entered(path):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        for s in (udp, tcp):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            s.setblocking(False)
        tcp.listen(64)
    except OSError:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


def pinned(directory: str) -> list[str]:
    """Namespace files under ``directory`` (mounted or left behind by a crash)."""
    found = set(mounted_under(directory)) - {directory}
    with contextlib.suppress(FileNotFoundError):
        found |= {os.path.join(directory, n) for n in os.listdir(directory)}
    return sorted(found)
