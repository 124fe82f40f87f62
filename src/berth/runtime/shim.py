"""Starting and talking to berth-shim, the per-container monitor.

The shim runs ``runc create``, holds the container's stdio, writes the
json-file log and the exit file, and outlives berthd. Its socket takes one
mode byte: ``a`` attach, ``A`` attach with stdin, ``w`` watch until exit;
it answers ``+`` once the connection is registered.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import struct
import sys
from dataclasses import dataclass

from berth.errors import SystemError_
from berth.runtime.runc import last_error


@dataclass(frozen=True)
class ShimPaths:
    """Where one container's runtime files live under the exec root."""

    bundle: str
    socket: str
    exit_file: str

    @classmethod
    def of(cls, exec_root: str, cid: str) -> "ShimPaths":
        return cls(os.path.join(exec_root, "containers", cid), os.path.join(exec_root, "shims", cid[:20] + ".sock"),
                   os.path.join(exec_root, "containers", cid, "exit"))

    @classmethod
    def of_exec(cls, exec_root: str, exec_id: str) -> "ShimPaths":
        bundle = os.path.join(exec_root, "execs", exec_id)
        return cls(bundle, os.path.join(exec_root, "shims", "x" + exec_id[:19] + ".sock"), os.path.join(bundle, "exit"))

    def runtime_error(self) -> str:
        """The runtime's last error message from its log in the bundle, or ""."""
        try:
            with open(os.path.join(self.bundle, "runc.log")) as f:
                return last_error(f.read())
        except OSError:
            return ""

    def read_exit(self) -> int | None:
        try:
            with open(self.exit_file) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None


def find_shim(configured: str = "") -> str:
    for candidate in (configured, os.path.join(os.path.dirname(sys.executable), "berth-shim"), shutil.which("berth-shim")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemError_("berth-shim not found: run scripts/build-shim.sh (the install does it)")


class ShimLauncher:
    def __init__(self, shim: str, runtime_root: str) -> None:
        self.shim = shim
        self.runtime_root = runtime_root

    async def create(self, cid: str, paths: ShimPaths, runtime: str, log_path: str,
                     log_max_size: int, log_max_files: int, stdin: bool, tty: bool = False) -> int:
        """Start the shim (which runs ``runtime create``); return the container's init pid."""
        return await self._spawn(cid, paths, runtime, stdin, tty, ["--log", log_path, "--log-max-size",
                                 str(log_max_size), "--log-max-files", str(log_max_files)])

    async def exec(self, cid: str, paths: ShimPaths, runtime: str, process_json: str, stdin: bool,
                   tty: bool) -> None:
        """Start an exec shim; the process runs when a client sends ``S`` (``start_exec``)."""
        await self._spawn(cid, paths, runtime, stdin, tty, ["--exec", process_json])

    async def _spawn(self, cid: str, paths: ShimPaths, runtime: str, stdin: bool, tty: bool,
                     extra: list[str]) -> int:
        os.makedirs(os.path.dirname(paths.socket), exist_ok=True)
        args = [self.shim, "--id", cid, "--bundle", paths.bundle, "--runtime", runtime,
                "--runtime-root", self.runtime_root, "--socket", paths.socket, "--exit-file", paths.exit_file,
                *extra] + (["--stdin"] if stdin else []) + (["--tty"] if tty else [])
        proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        line = out.decode(errors="replace").strip()
        if proc.returncode == 0 and line.startswith("ok "):
            return int(line.split()[1])
        detail = paths.runtime_error()
        raise SystemError_(f"failed to create task for container: {detail or line or err.decode(errors='replace').strip()}")


async def connect(paths: ShimPaths, mode: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """Open a connection to a container's shim; None when the shim has gone."""
    try:
        reader, writer = await asyncio.open_unix_connection(paths.socket)
    except (FileNotFoundError, ConnectionRefusedError):
        return None
    writer.write(mode)
    await writer.drain()
    try:
        ack = await reader.readexactly(1)  # registered: all output from here on reaches us
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
        return None
    if ack != b"+":
        writer.close()
        return None
    return reader, writer


async def resize(paths: ShimPaths, rows: int, cols: int) -> bool:
    """Set the terminal size; False when there is no TTY (or no shim)."""
    try:
        reader, writer = await asyncio.open_unix_connection(paths.socket)
    except (FileNotFoundError, ConnectionRefusedError):
        return False
    try:
        writer.write(b"r" + struct.pack(">HH", rows, cols))
        await writer.drain()
        return await reader.read(1) == b"+"
    except ConnectionError:
        return False
    finally:
        writer.close()


async def start_exec(paths: ShimPaths) -> int:
    """Run an exec shim's process; its pid, or SystemError_ with the runtime's message."""
    try:
        reader, writer = await asyncio.open_unix_connection(paths.socket)
    except (FileNotFoundError, ConnectionRefusedError):
        raise SystemError_("exec shim is gone") from None
    try:
        writer.write(b"S")
        await writer.drain()
        line = (await reader.readline()).decode(errors="replace").strip()
    except ConnectionError:
        line = ""
    finally:
        writer.close()
    if line.startswith("ok "):
        return int(line.split()[1])
    detail = paths.runtime_error()
    raise SystemError_(detail if detail.startswith("exec failed") else
                       f"exec failed: {detail or line or 'the exec shim exited'}")


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """One shim output frame (stream id, payload); None at the end."""
    try:
        head = await reader.readexactly(5)
        stream, size = struct.unpack(">BI", head)
        return stream, await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
