"""Builds for the build tests (tests/integration/test_build.py, tests/compat/test_build_clients.py): what a test
tagged, build contexts written from a dict, ``POST /build`` with a context tar and its answer parsed into steps,
the docker CLI's classic builder, and reading the images a build made.

The ``daemon`` (module-scoped: one berthd per module), ``made`` and ``ctx`` fixtures here are taken up by the test
modules; ``made`` builds the module's ``Made``.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from tests.support.made import Made
from tests.support.nets import bridged_daemon, uniq

STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
SHORT_ID = re.compile(r"^ ---> ([0-9a-f]{12})$")

# A context with a .dockerignore (which the client applies), and what its Dockerfile's COPY puts in /ctx.
IGNORED_CTX = {
    ".dockerignore": "logs\n!logs/important.log\n**/*.tmp\nsecret*\nDockerfile*\n",
    "keep/k.txt": "k", "keep/deeper/x.tmp": "tmp", "logs/a.log": "l", "logs/important.log": "imp",
    "secret.txt": "s", "readme.md": "r", "top.tmp": "tmp",
    "Dockerfile": "FROM busybox:latest\nCOPY . /ctx/\n",
}
# What dockerd 20.10 here puts in /ctx for IGNORED_CTX sent by the docker CLI 28: the Dockerfile, which the CLI
# sends although ignored, is removed by the daemon (moby remotecontext/detect.go removeDockerfile), and
# .dockerignore stays because no pattern matches it.
IGNORED_TREE = ["/ctx", "/ctx/.dockerignore", "/ctx/keep", "/ctx/keep/deeper", "/ctx/keep/k.txt", "/ctx/logs",
                "/ctx/logs/important.log", "/ctx/readme.md"]


# -- fixtures -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def daemon():
    """The module's own berthd, with a default bridge and a /24 of its own (``bridged_daemon``); ``made``, ``ctx``
    and ``client`` use it."""
    yield from bridged_daemon()


class BuildsMade(Made):
    """Images a test tagged; a module subclasses it with its own ``prefix`` for the names (``PREFIX-…:t``)."""

    prefix = "bld"

    def tag(self) -> str:
        """A fresh ``NAME:TAG`` for a build to tag, removed at teardown."""
        return self.image(f"{uniq(self.prefix)}:t")


@pytest.fixture
def made(daemon, request):
    """What the test tagged, removed at teardown; then berthd must hold no container (a build leaves none)."""
    m = getattr(request.module, "Made", BuildsMade)(daemon)
    yield m
    m.cleanup()
    left = [c["Names"] for c in daemon.api("GET", "/containers/json?all=1")[1]]
    daemon.remove_all_containers()
    assert left == [], f"containers left behind: {left}"


def write_context(root: Path, files: dict) -> Path:
    """Write {relative path: text or bytes, or (that, mode)} under ``root``; returns ``root``."""
    root.mkdir(exist_ok=True)
    for rel, content in files.items():
        text, mode = content if isinstance(content, tuple) else (content, None)
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        if mode is not None:
            os.chmod(p, mode)
    return root


@pytest.fixture
def ctx(tmp_path):
    """``ctx(files, name="ctx")`` writes a build context (``write_context``) under tmp_path; returns its directory."""
    def make(files: dict, name: str = "ctx") -> Path:
        return write_context(tmp_path / name, files)
    return make


# -- builds -----------------------------------------------------------------------------------------------------------

@dataclass
class Step:
    n: int
    total: int
    text: str
    lines: list[str] = field(default_factory=list)

    @property
    def cached(self) -> bool:
        return " ---> Using cache" in self.lines

    @property
    def ran(self) -> bool:
        return any(line.startswith(" ---> Running in ") for line in self.lines)

    @property
    def image(self) -> str | None:
        ids = [m.group(1) for m in map(SHORT_ID.match, self.lines) if m]
        return ids[-1] if ids else None


@dataclass
class Build:
    status: int
    messages: list[dict]
    http_error: str | None = None  # the message of an HTTP error answered before any streaming

    @property
    def stream(self) -> str:
        return "".join(m.get("stream", "") for m in self.messages)

    @property
    def error(self) -> str | None:
        if self.http_error is not None:
            return self.http_error
        errs = [m for m in self.messages if "error" in m or "errorDetail" in m]
        return (errs[-1].get("errorDetail") or {}).get("message", errs[-1].get("error")) if errs else None

    @property
    def error_detail(self) -> dict | None:
        errs = [m["errorDetail"] for m in self.messages if "errorDetail" in m]
        return errs[-1] if errs else None

    @property
    def image_id(self) -> str | None:
        ids = [m["aux"]["ID"] for m in self.messages if isinstance(m.get("aux"), dict) and "ID" in m["aux"]]
        return ids[-1] if ids else None

    @property
    def steps(self) -> list[Step]:
        out: list[Step] = []
        for line in self.stream.splitlines():
            m = STEP.match(line)
            if m:
                out.append(Step(int(m.group(1)), int(m.group(2)), m.group(3)))
            elif out:
                out[-1].lines.append(line)
        return out

    def ok(self) -> "Build":
        assert self.status == 200 and self.error is None and self.image_id, (self.status, self.error, self.stream)
        return self


def context_tar(root: Path, owners: bool = False) -> bytes:
    """The directory as the docker CLI sends it: relative names, owner 0:0 (or the files' own with ``owners``),
    modes and mtimes kept."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(dirpath, name)
                info = tar.gettarinfo(path, os.path.relpath(path, root))
                if not owners:
                    info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isreg():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return buf.getvalue()


def api_build(d, root: Path, owners: bool = False, **params) -> Build:
    """``POST /build`` with the directory's tar; ``params`` are Docker's query parameters (dicts sent as JSON)."""
    query = {k: (json.dumps(v) if isinstance(v, dict) else ("1" if v is True else v)) for k, v in params.items()}
    status, body = d.api("POST", "/build?" + urlencode(query, doseq=True), context_tar(root, owners),
                         {"Content-Type": "application/x-tar"}, raw=True, timeout=120)
    if status != 200:
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            message = body.decode(errors="replace")
        return Build(status, [], message)
    return Build(status, [json.loads(line) for line in body.splitlines() if line.strip()])


def docker_classic(d, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    """The docker CLI on berthd ``d`` with its classic builder (``DOCKER_BUILDKIT=0``)."""
    env = {**os.environ, "DOCKER_CONFIG": os.path.join(d.dir, "docker-config"), "DOCKER_BUILDKIT": "0"}
    return subprocess.run(["/usr/local/bin/docker", "-H", d.host, *args], input=input, capture_output=True,
                          timeout=90, env=env)


# -- images -------------------------------------------------------------------------------------------------------

def image(d, ref: str) -> dict:
    status, body = d.api("GET", f"/images/{quote(ref, safe='')}/json")
    assert status == 200, (ref, status, body)
    return body


def exists(d, ref: str) -> bool:
    return d.api("GET", f"/images/{quote(ref, safe='')}/json")[0] == 200


def history_of(d, ref: str) -> list[dict]:
    status, body = d.api("GET", f"/images/{quote(ref, safe='')}/history")
    assert status == 200, body
    return body


def run(d, img: str, *cmd: str) -> str:
    """``berth run --rm IMG CMD...``'s stdout."""
    return d.cli("run", "--rm", img, *cmd, timeout=60).stdout.decode()
