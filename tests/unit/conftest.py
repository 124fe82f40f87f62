"""Fixtures the unit tests share."""
from __future__ import annotations

import pytest


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    """An empty DOCKER_CONFIG directory of the test's own; HOME points elsewhere so ~/.docker is never used."""
    d = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return d
