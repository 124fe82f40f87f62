"""The real docker-compose 1.29 (Debian's ``/usr/bin/docker-compose``, docker-py underneath, API version
negotiation) driving berthd through ``DOCKER_HOST=unix://<socket>``: ``up -d`` with a build, a named volume and a
user network, ``ps``, ``logs``, ``exec``, ``run --rm``, a second ``up -d`` that changes nothing, and ``down -v``.

Skips when docker-compose is not installed (``apt-get install -y --no-install-recommends docker-compose``).
Needs root, runc and busybox.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.compose.conftest import Project, clean_env
from tests.support.daemon import wait_for

pytestmark = pytest.mark.root

DOCKER_COMPOSE = "/usr/bin/docker-compose"
# docker-compose 1.29 runs ``run``/``exec`` through the ``docker`` CLI when there is one; without it
# (COMPOSE_INTERACTIVE_NO_CLI) it starts a one-off before attaching, so a short one-off's output can be lost
# (with dockerd too).
USES_DOCKER_CLI = shutil.which("docker") is not None


class V1Project(Project):
    """The scenario run by docker-compose v1 (names joined with ``_``: PROJECT_SERVICE_1)."""

    def dc(self, *args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
        env = clean_env({"DOCKER_HOST": self.daemon.host, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0",
                         "DOCKER_CONFIG": str(self.dir.parent / "docker-config")})
        if not USES_DOCKER_CLI:
            env["COMPOSE_INTERACTIVE_NO_CLI"] = "1"
        proc = subprocess.run([DOCKER_COMPOSE, "--ansi", "never", "-p", self.name, *args], cwd=self.dir,
                              capture_output=True, text=True, errors="replace", timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\n"
                                 f"stderr: {proc.stderr}\nberthd log tail: {self.daemon.tail_log(2000)}")
        return proc

    def cname(self, service: str, number: int = 1) -> str:
        return f"{self.name}_{service}_{number}"


@pytest.fixture
def v1(daemon, tmp_path):
    if not os.path.exists(DOCKER_COMPOSE):
        pytest.skip(f"{DOCKER_COMPOSE} is not installed (apt-get install docker-compose)")
    proj = V1Project(daemon, "v1app", tmp_path)
    proj.built_images.append(f"{proj.name}_app")
    yield proj
    problems = []
    p = proj.dc("down", "-v", "--remove-orphans", check=False, timeout=120)
    if p.returncode != 0:
        problems.append(f"docker-compose down -v exited {p.returncode}: {p.stderr[-2000:]}")
    left = proj.leftovers()
    if left:
        problems.append(f"left after docker-compose down -v: {left}")
        proj.force_clean()
    for ref in proj.built_images:
        daemon.api("DELETE", f"/images/{ref}?force=1")
    assert not problems, "\n".join(problems)


def test_docker_compose_v1_up_ps_logs_down(v1):
    version = subprocess.run([DOCKER_COMPOSE, "version"], capture_output=True, text=True,
                             env=clean_env({"DOCKER_HOST": v1.daemon.host}))
    assert version.returncode == 0, version.stderr

    v1.dc("up", "-d")
    app, peer = v1.cname("app"), v1.cname("peer")
    names = {c["Names"][0].lstrip("/"): c for c in v1.containers()}
    assert set(names) == {app, peer}, names
    assert all(c["State"] == "running" for c in names.values()), names
    assert {n["Name"] for n in v1.networks()} == {f"{v1.name}_appnet"}
    assert {v["Name"] for v in v1.volumes()} == {f"{v1.name}_data"}
    # docker-compose's own labels, which berthd must keep and filter on
    labels = names[app]["Labels"]
    assert labels["com.docker.compose.service"] == "app" and labels["com.docker.compose.container-number"] == "1"

    ps = v1.dc("ps").stdout
    for name in (app, peer):
        assert re.search(rf"^{name}\s.*\bUp\b", ps, re.M), ps
    assert set(v1.dc("ps", "-q").stdout.split()) == {c["Id"] for c in names.values()}
    assert set(v1.dc("ps", "--services").stdout.split()) == {"app", "peer"}

    def logged():
        out = v1.dc("logs", "--no-color").stdout
        return out if "app-started" in out and "peer-started" in out else None
    out = wait_for(logged, 30, 0.3, "both services' first lines in docker-compose logs")
    # docker-compose 1.29 prefixes each line with the container's name less the project's ("app_1   | ")
    assert re.search(r"^(?:\S+_)?app_1\s+\| app-started$", out, re.M), out
    assert re.search(r"^(?:\S+_)?peer_1\s+\| peer-started$", out, re.M), out
    stamped = v1.dc("logs", "--no-color", "-t", "--tail", "1", "app").stdout
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", stamped) and "peer" not in stamped, stamped

    # exec into the built service: its named volume, and the other service by name on the user network
    assert wait_for(lambda: v1.dc("exec", "-T", "app", "cat", "/data/f", check=False).stdout.strip() == "stored",
                    20, 0.3, "app to write /data/f")
    peer_host = v1.inspect(peer)["Config"]["Hostname"]
    fetch = lambda: v1.dc("exec", "-T", "app", "wget", "-q", "-O", "-", "http://peer/hostname", check=False)
    assert wait_for(lambda: fetch().stdout.strip() == peer_host, 20, 0.3, "app to fetch peer's /hostname")

    # a one-off run, removed afterwards
    r = v1.dc("run", "--rm", "-T", "app", "sh", "-c", "echo one-off > /data/oneoff; echo one-off-hi")
    if USES_DOCKER_CLI:
        assert "one-off-hi" in r.stdout, r.stdout
    assert v1.dc("exec", "-T", "app", "cat", "/data/oneoff").stdout.strip() == "one-off"
    assert set(c["Names"][0].lstrip("/") for c in v1.containers()) == {app, peer}

    # a second up changes nothing
    before = {c["Id"] for c in v1.containers()}
    again = v1.dc("up", "-d")
    assert {c["Id"] for c in v1.containers()} == before
    assert "up-to-date" in again.stdout + again.stderr, again.stderr

    v1.dc("stop")
    assert all(c["State"] == "exited" for c in v1.containers()), v1.containers()
    v1.dc("down", "-v")
    assert not v1.leftovers(), v1.leftovers()
