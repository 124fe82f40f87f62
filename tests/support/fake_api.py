"""A fake transport for the CLI's unit tests: the requests a command sends, answered from a table; no daemon."""
from __future__ import annotations

import pytest

from berth.cli.commands import containers
from berth.cli.common import Usage


class _Resp:
    def __init__(self, data=None) -> None:
        self.data = data

    def json(self):
        return self.data

    def close(self) -> None:
        pass


class FakeApi:
    """Records requests; answers from ``routes`` ((method, path) → data, or an exception to raise)."""

    def __init__(self, routes: dict | None = None) -> None:
        self.routes = routes or {}
        self.calls: list[tuple] = []

    def request(self, method, path, query=None, body=None, headers=None):
        self.calls.append((method, path, {k: v for k, v in (query or {}).items() if v is not None}, body))
        answer = self.routes.get((method, path))
        if isinstance(answer, Exception):
            raise answer
        return _Resp(answer)


def run_body(*argv: str, name: str = "run") -> dict:
    """The body ``berth NAME ARGV`` (run or create) sends to POST /containers/create."""
    return containers._body(containers._create_parser(name).parse_args(list(argv)))


def usage_error(command, name: str, argv: list[str]) -> str:
    """The text of the Usage error ``command(api, name, argv)`` raises, which must come before any request."""
    api = FakeApi()
    with pytest.raises(Usage) as e:
        command(api, name, argv)
    assert api.calls == []
    return str(e.value)
