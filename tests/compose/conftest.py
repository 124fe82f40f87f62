"""``berth compose`` against a real berthd: a scenario directory copied to a temporary directory and driven with
``berth -H <daemon> compose -p <unique name> ...`` from inside it, then taken down and checked for leftovers.

Needs root, runc and busybox (the session ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
BIN = Path(sys.executable).parent
LABEL_PROJECT = "com.docker.compose.project"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# What the test runner's environment must not leak into a compose project.
_SCRUB = ("DOCKER_HOST", "BERTH_HOST", "TAG", "MSG", "REQ", "PORT", "HOST_PORT", "BT_UNSET_VAR")


def clean_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k not in _SCRUB}
    env.update(extra or {})
    return env


def uniq(prefix: str = "bt") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def parse_json_objects(text: str) -> list[dict]:
    """``--format json`` output: a JSON array, or one JSON object per line (Compose >= 2.21)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Project:
    """One copy of a scenario and the compose project run in it."""

    def __init__(self, daemon, scenario: str, tmp: Path) -> None:
        self.daemon = daemon
        self.scenario = scenario
        self.name = uniq()
        self.dir = tmp / f"{scenario}-{self.name}"
        shutil.copytree(SCENARIOS / scenario, self.dir)
        self.built_images: list[str] = []

    # ------------------------------------------------------------------ running berth compose

    def run(self, *args: str, check: bool = True, timeout: float = 180, env: dict | None = None,
            project: bool = True, input: str | None = None, cwd=None) -> subprocess.CompletedProcess:
        """``berth -H HOST compose [-p NAME] ARGS`` in the scenario copy (or ``cwd``); stdout/stderr as text."""
        cmd = [str(BIN / "berth"), "-H", self.daemon.host, "compose"] + (["-p", self.name] if project else []) \
            + list(args)
        proc = subprocess.run(cmd, cwd=cwd or self.dir, capture_output=True, text=True, errors="replace", timeout=timeout,
                              env=clean_env(env), input=input, stdin=None if input is not None else subprocess.DEVNULL)
        proc.stdout, proc.stderr = ANSI.sub("", proc.stdout), ANSI.sub("", proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"berth compose {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def out(self, *args: str, **kw) -> str:
        return self.run(*args, **kw).stdout

    def both(self, *args: str, **kw) -> str:
        """stdout and stderr together (Compose prints its progress on stderr)."""
        p = self.run(*args, **kw)
        return p.stdout + p.stderr

    def exec(self, service: str, *cmd: str, check: bool = True) -> str:
        return self.out("exec", "-T", service, *cmd, check=check).strip()

    def getenv(self, service: str, var: str) -> str:
        """``$var`` in a running service container (this busybox has no printenv applet)."""
        return self.exec(service, "sh", "-c", f'echo "${var}"')

    def ps_json(self, *args: str) -> list[dict]:
        return parse_json_objects(self.out("ps", "--format", "json", *args))

    # ------------------------------------------------------------------ looking at berthd directly

    def _filters(self, *labels: str) -> str:
        return quote(json.dumps({"label": [f"{LABEL_PROJECT}={self.name}", *labels]}))

    def containers(self, *labels: str, all: bool = True) -> list[dict]:
        status, items = self.daemon.api("GET", f"/containers/json?all={int(all)}&filters={self._filters(*labels)}")
        assert status == 200, items
        return items or []

    def networks(self) -> list[dict]:
        status, items = self.daemon.api("GET", f"/networks?filters={self._filters()}")
        assert status == 200, items
        return items or []

    def volumes(self) -> list[dict]:
        status, body = self.daemon.api("GET", f"/volumes?filters={self._filters()}")
        assert status == 200, body
        return (body or {}).get("Volumes") or []

    def ids(self, all: bool = True) -> dict[str, str]:
        """container name → ID for the project's containers."""
        return {c["Names"][0].lstrip("/"): c["Id"] for c in self.containers(all=all)}

    def inspect(self, ref: str) -> dict:
        status, body = self.daemon.api("GET", f"/containers/{quote(ref, safe='')}/json")
        assert status == 200, body
        return body

    def cname(self, service: str, number: int = 1) -> str:
        return f"{self.name}-{service}-{number}"

    @property
    def default_network(self) -> str:
        return f"{self.name}_default"

    def client(self, script: str, network: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
        """A throwaway busybox on the project's network running ``sh -c SCRIPT``."""
        return self.daemon.cli("run", "--rm", "--network", network or self.default_network, "busybox:latest",
                               "sh", "-c", script, check=check, timeout=120)

    # ------------------------------------------------------------------ teardown

    def leftovers(self) -> dict:
        left = {"containers": [c["Names"] for c in self.containers()],
                "networks": [n["Name"] for n in self.networks()],
                "volumes": [v["Name"] for v in self.volumes()]}
        return {k: v for k, v in left.items() if v}

    def force_clean(self) -> None:
        """Remove by the API what ``down`` left, so one failure does not leak into other tests."""
        for c in self.containers():
            self.daemon.api("DELETE", f"/containers/{c['Id']}?force=1&v=1")
        for n in self.networks():
            self.daemon.api("DELETE", f"/networks/{n['Id']}")
        for v in self.volumes():
            self.daemon.api("DELETE", f"/volumes/{quote(v['Name'], safe='')}?force=1")

    def teardown(self) -> list[str]:
        """``down -v --remove-orphans``; the problems found (a failing down, things left behind)."""
        problems = []
        has_file = any((self.dir / f).exists() for f in ("compose.yaml", "compose.yml", "docker-compose.yaml",
                                                          "docker-compose.yml"))
        try:
            # (a scenario of bad files only has no default file to take down: then the API check below does it)
            p = self.run("down", "-v", "--remove-orphans", check=False, timeout=120)
            if p.returncode != 0 and has_file:
                problems.append(f"{self.name}: down exited {p.returncode}: {p.stderr.strip()[-2000:]}")
        except subprocess.TimeoutExpired:
            problems.append(f"{self.name}: down timed out")
        left = self.leftovers()
        if left:
            problems.append(f"{self.name}: left after down -v --remove-orphans: {left}")
            self.force_clean()
        for ref in self.built_images:
            self.daemon.api("DELETE", f"/images/{quote(ref, safe='')}?force=1")
        return problems


@pytest.fixture
def compose(daemon, tmp_path):
    """``compose("webapp")`` → a Project in a copy of tests/compose/scenarios/webapp; always taken down."""
    made: list[Project] = []

    def open_(scenario: str) -> Project:
        p = Project(daemon, scenario, tmp_path)
        made.append(p)
        return p

    yield open_
    problems = [msg for p in made for msg in p.teardown()]
    assert not problems, "\n".join(problems)

