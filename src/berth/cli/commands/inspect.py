"""berth inspect: containers and images, as JSON or through a Go template."""
from __future__ import annotations

import sys

from berth.cli import output
from berth.cli.common import parser
from berth.client.transport import Transport, path_quote
from berth.errors import NotFound

_PATHS = {"container": "/containers/{}/json", "image": "/images/{}/json"}


def inspect_kind(api: Transport, name: str, argv: list[str], kind: str | None) -> int:
    p = parser(name, "[OPTIONS] NAME|ID [NAME|ID...]")
    p.add_argument("-f", "--format")
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("--type", choices=["container", "image"])
    p.add_argument("names", nargs="+")
    a = p.parse_args(argv)
    kinds = [kind or a.type] if (kind or a.type) else ["container", "image"]
    found, code = [], 0
    for n in a.names:
        for k in kinds:
            try:
                q = {"size": 1} if a.size and k == "container" else None
                found.append(api.request("GET", _PATHS[k].format(path_quote(n)), q).json())
                break
            except NotFound:
                continue
        else:
            print(f"Error: No such object: {n}" if len(kinds) > 1 else f"Error: No such {kinds[0]}: {n}", file=sys.stderr)
            code = 1
    try:
        text = output.format_inspect(found, a.format)
    except output.TemplateError as e:
        print(f"template parsing error: {e}", file=sys.stderr)
        return 1
    if found or not a.format:
        print(text)
    return code


def inspect(api: Transport, name: str, argv: list[str]) -> int:
    return inspect_kind(api, name, argv, None)
