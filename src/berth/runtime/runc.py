"""The OCI runtime's command line (runc or a compatible one)."""
from __future__ import annotations

import asyncio
import json
import os

from berth.errors import SystemError_


class Runc:
    """Calls one runtime binary with berth's own state root."""

    def __init__(self, binary: str, root: str) -> None:
        self.binary = binary
        self.root = root
        os.makedirs(root, exist_ok=True)

    async def _run(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            self.binary, "--root", self.root, *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        text = err.decode(errors="replace").strip()
        if check and proc.returncode != 0:
            raise SystemError_(f"{os.path.basename(self.binary)} {args[0]} failed: {last_error(text)}")
        return proc.returncode or 0, out.decode(errors="replace"), text

    async def start(self, cid: str) -> None:
        await self._run("start", cid)

    async def kill(self, cid: str, signal: str, all_processes: bool = False) -> None:
        args = ["kill"] + (["--all"] if all_processes else []) + [cid, signal]
        rc, _, err = await self._run(*args, check=False)
        if rc != 0 and "not running" not in err and "does not exist" not in err and "process already finished" not in err:
            raise SystemError_(f"cannot kill container: {last_error(err)}")

    async def delete(self, cid: str) -> None:
        await self._run("delete", "--force", cid, check=False)

    async def state(self, cid: str) -> dict | None:
        rc, out, _ = await self._run("state", cid, check=False)
        if rc != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    async def update(self, cid: str, resources_file: str) -> None:
        """Apply linux.resources (an OCI JSON file) to a running container."""
        rc, _, err = await self._run("update", "--resources", resources_file, cid, check=False)
        if rc != 0:
            from berth.errors import InvalidArgument
            raise InvalidArgument(f"Cannot update container {cid}: {last_error(err)}")

    async def pause(self, cid: str) -> None:
        await self._run("pause", cid)

    async def resume(self, cid: str) -> None:
        await self._run("resume", cid)


def last_error(text: str) -> str:
    """The message of the runtime's last error line (plain or logrus JSON)."""
    lines = [line for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
                return str(entry.get("msg", line))
        except ValueError:
            if "level=error" in line and 'msg="' in line:
                return line.split('msg="', 1)[1].rstrip('"')
            return line
    return text or "unknown error"
