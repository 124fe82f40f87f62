"""Shared fixtures: real berthd daemons, each with a busybox image made locally."""
from __future__ import annotations

import pytest

from tests.support.daemon import Daemon, can_run_containers, started
from tests.support.made import Made


def _daemon():
    reason = can_run_containers()
    if reason:
        pytest.skip(reason)
    yield from started(Daemon())


@pytest.fixture(scope="session")
def daemon():
    """One berthd for the whole session; tests remove what they make."""
    yield from _daemon()


@pytest.fixture
def fresh_daemon():
    """A berthd of the test's own, for crash and restart tests."""
    yield from _daemon()


@pytest.fixture
def made(daemon, request):
    """The test module's ``Made`` (a subclass of tests.support.made.Made), cleaned up at teardown."""
    m = getattr(request.module, "Made", Made)(daemon)
    yield m
    m.cleanup()
