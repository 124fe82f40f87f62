"""Registry commands: pull, push, search."""
from __future__ import annotations

import sys

from berth.cli.common import Usage, parser
from berth.cli.progress import StreamError, render
from berth.client.transport import Transport, path_quote
from berth.types.reference import split_name


def _auth(image: str) -> dict:
    from berth.client import credentials
    header = credentials.auth_header_for_image(image)
    return {"X-Registry-Auth": header} if header else {}


def pull_image(api: Transport, image: str, platform: str = "", quiet: bool = False, out=None,
               all_tags: bool = False) -> None:
    """Pull ``image``, rendering progress to ``out`` (stdout by default); StreamError on failure."""
    name, tag = split_name(image)
    if all_tags:
        tag = ""
    query = {"fromImage": name, "tag": tag or None, "platform": platform or None}
    resp = api.request("POST", "/images/create", query, headers=_auth(image))
    render(resp.raw, out, quiet)


def pull(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] NAME[:TAG|@DIGEST]")
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--platform", default="")
    p.add_argument("--disable-content-trust", action="store_true")
    p.add_argument("image")
    a = p.parse_args(argv)
    if a.all_tags and (":" in a.image.rsplit("/", 1)[-1] or "@" in a.image):
        raise Usage("tag can't be used with --all-tags/-a")
    if not a.all_tags and ":" not in a.image.rsplit("/", 1)[-1] and "@" not in a.image and not a.quiet:
        print("Using default tag: latest")
    try:
        pull_image(api, a.image, a.platform, a.quiet, all_tags=a.all_tags)
    except StreamError as e:
        print(str(e), file=sys.stderr)
        return 1
    if a.quiet:
        print(a.image if (":" in a.image.rsplit("/", 1)[-1] or "@" in a.image or a.all_tags) else a.image + ":latest")
    return 0


def push(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] NAME[:TAG]")
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--disable-content-trust", action="store_true")
    p.add_argument("image")
    a = p.parse_args(argv)
    image, tag = split_name(a.image)
    if "@" in a.image:
        raise Usage("cannot push a digest reference")
    if a.all_tags:
        if ":" in a.image.rsplit("/", 1)[-1]:
            raise Usage("tag can't be used with --all-tags/-a")
        tag = ""
    elif ":" not in a.image.rsplit("/", 1)[-1] and not a.quiet:
        print("Using default tag: latest")
    resp = api.request("POST", f"/images/{path_quote(image)}/push", {"tag": tag or None}, headers=_auth(a.image))
    try:
        render(resp.raw, None, a.quiet)
    except StreamError as e:
        print(str(e), file=sys.stderr)
        return 1
    if a.quiet:
        print(a.image)
    return 0


def search(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli import output
    p = parser(name, "[OPTIONS] TERM")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("term")
    a = p.parse_args(argv)
    first, _, rest = a.term.partition("/")
    host = first if rest and ("." in first or ":" in first or first == "localhost") else "docker.io"
    from berth.client import credentials
    header = credentials.auth_header(host)
    items = api.request("GET", "/images/search", {"term": a.term, "limit": a.limit},
                        headers={"X-Registry-Auth": header} if header else {}).json()
    rows = [{"Name": i["name"], "Description": i["description"] if a.no_trunc or len(i["description"]) <= 45
             else i["description"][:42] + "...", "StarCount": str(i["star_count"]),
             "IsOfficial": "[OK]" if i["is_official"] else "", "IsAutomated": "[OK]" if i["is_automated"] else ""}
            for i in items]
    text = output.format_rows(rows, a.format, "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
                              {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
                               "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"})
    if text:
        print(text)
    return 0
