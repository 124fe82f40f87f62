"""File commands: diff, export, commit (``cp`` is in ``cp``)."""
from __future__ import annotations

import os
import sys

from berth.cli.common import Usage, parser
from berth.cli.local_tar import body_to_stdout, copy_body
from berth.client.transport import Transport, path_quote


def diff(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "CONTAINER")
    p.add_argument("container")
    a = p.parse_args(argv)
    items = api.request("GET", f"/containers/{path_quote(a.container)}/changes").json() or []
    kinds = {0: "C", 1: "A", 2: "D"}
    for item in items:
        print(f"{kinds.get(item.get('Kind'), '?')} {item.get('Path')}")
    return 0


def export(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] CONTAINER")
    p.add_argument("-o", "--output")
    p.add_argument("container")
    a = p.parse_args(argv)
    if not a.output and sys.stdout.isatty():
        raise Usage("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = api.request("GET", f"/containers/{path_quote(a.container)}/export")
    if not a.output:
        body_to_stdout(resp)
        return 0
    tmp = f"{a.output}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as out:
            copy_body(resp, out)
        os.replace(tmp, a.output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        resp.close()
    return 0


def commit(api: Transport, name: str, argv: list[str]) -> int:
    pause = True
    rest = []
    for arg in argv:  # -p/--pause is a boolean flag that also takes "=false"
        flag, eq, value = arg.partition("=")
        if flag in ("-p", "--pause"):
            pause = value.lower() not in ("false", "0") if eq else True
        else:
            rest.append(arg)
    p = parser(name, "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    p.add_argument("container")
    p.add_argument("reference", nargs="?")
    a = p.parse_args(rest)
    repo, tag = a.reference, None
    if repo and ":" in repo.rsplit("/", 1)[-1]:
        repo, tag = repo.rsplit(":", 1)
    res = api.request("POST", "/commit", {"container": a.container, "repo": repo, "tag": tag,
                                          "comment": a.message or None, "author": a.author or None,
                                          "pause": "1" if pause else "0", "changes": a.change or None}).json()
    print(res["Id"])
    return 0
