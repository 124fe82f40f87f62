"""Controlling running containers: pause, unpause, rename, update."""
from __future__ import annotations

from berth.cli.common import parser
from berth.client.transport import Transport, path_quote


def pause(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.commands.containers import _each
    p = parser(name, "CONTAINER [CONTAINER...]")
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    verb = "unpause" if name.endswith("unpause") else "pause"
    return _each(api, a.containers, lambda c: api.request("POST", f"/containers/{path_quote(c)}/{verb}").close())


unpause = pause


def rename(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "CONTAINER NEW_NAME")
    p.add_argument("container")
    p.add_argument("new_name")
    a = p.parse_args(argv)
    api.request("POST", f"/containers/{path_quote(a.container)}/rename", {"name": a.new_name}).close()
    return 0
