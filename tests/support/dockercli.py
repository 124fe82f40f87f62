"""The real docker CLI against a berthd, for the compatibility tests: its output as text, ``docker run`` that never
pulls, and runs the daemon or the CLI must refuse."""
from __future__ import annotations

import subprocess


def out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode()


def err(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.decode()


def run(daemon, *args: str, check: bool = False, timeout: float = 30):
    """``docker run --pull=never ARGS``: never a pull, whatever the image."""
    return daemon.docker("run", "--pull=never", *args, check=check, timeout=timeout)


def refused(daemon, made, *args: str) -> str:
    """stderr of ``docker run --name NAME ARGS busybox true``, which must exit 125 and leave no container NAME."""
    name = made.name()
    p = run(daemon, "--name", name, *args, "busybox", "true")
    assert p.returncode == 125, (args, out(p), err(p))
    assert daemon.api("GET", f"/containers/{name}/json")[0] == 404, args
    return err(p)
