"""Shared fixtures: one real berthd per test session, with a busybox image made locally."""
from __future__ import annotations

import pytest

from tests.support.daemon import Daemon, can_run_containers


@pytest.fixture(scope="session")
def daemon():
    reason = can_run_containers()
    if reason:
        pytest.skip(reason)
    d = Daemon().start()
    d.import_busybox()
    yield d
    d.cleanup()


@pytest.fixture
def fresh_daemon():
    """A berthd of the test's own, for crash and restart tests."""
    reason = can_run_containers()
    if reason:
        pytest.skip(reason)
    d = Daemon().start()
    d.import_busybox()
    yield d
    d.cleanup()
