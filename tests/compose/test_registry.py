"""``compose build``, ``push`` and ``pull`` against a ``berth registry`` on 127.0.0.1, and ``up --abort-on-container-exit``.
Needs root (real berthd)."""
from __future__ import annotations

import os

from tests.support.registry_server import BerthRegistry


def test_build_push_pull_and_up(compose, daemon, tmp_path):
    with BerthRegistry(str(tmp_path / "registry")) as reg:
        proj = compose("registry")
        (proj.dir / ".env").write_text(f"REG={reg.addr}\n")  # teardown's down reads it too
        env: dict = {}
        ref = f"{reg.addr}/team/app:1"
        proj.built_images.append(ref)
        proj.run("build", env=env)
        pushed = proj.both("push", env=env)
        assert "digest: sha256:" in pushed, pushed
        daemon.api("DELETE", f"/images/{ref.replace('/', '%2F')}?force=1")
        proj.run("pull", env=env)
        status, img = daemon.api("GET", f"/images/{ref.replace('/', '%2F')}/json")
        assert status == 200 and img["RepoDigests"], img
        out = proj.run("up", "--abort-on-container-exit", "--no-build", env=env)
        assert "built-for-registry" in out.stdout and "app-1 exited with code 0" in out.stdout, out.stdout
        assert os.path.isdir(str(tmp_path / "registry"))
