"""docker-py, pointed at the session's berthd."""
from __future__ import annotations

import pytest


@pytest.fixture
def client(daemon):
    import docker
    c = docker.DockerClient(base_url=daemon.host, timeout=30)
    yield c
    c.close()
