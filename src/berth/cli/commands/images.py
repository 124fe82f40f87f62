"""Image commands: images, rmi, tag, import, load, save, history, prune, inspect."""
from __future__ import annotations

import json
import os
import sys
import time

from berth.cli import output
from berth.cli.common import Usage, parser
from berth.client.transport import Transport, path_quote

IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
                  "CreatedAt": "CREATED AT", "Size": "SIZE", "Digest": "DIGEST", "Containers": "CONTAINERS"}


def images(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.commands.containers import _filters
    from berth.types.units import human_duration, human_size
    p = parser(name, "[OPTIONS] [REPOSITORY[:TAG]]")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("repository", nargs="?")
    a = p.parse_args(argv)
    filters = list(a.filter) + ([f"reference={a.repository}"] if a.repository else [])
    items = api.request("GET", "/images/json", {"all": int(a.all) or None, "filters": _filters(filters)}).json()
    now = time.time()
    rows = []
    for img in items:
        short = img["Id"] if a.no_trunc else img["Id"][7:19]
        digests = {d.split("@", 1)[0]: d.split("@", 1)[1] for d in img.get("RepoDigests") or []}
        for tag in img["RepoTags"] or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            rows.append({"Repository": repo, "Tag": t, "ID": short, "Digest": digests.get(repo, "<none>"),
                         "CreatedSince": human_duration(now - img["Created"]) + " ago",
                         "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(img["Created"])),
                         "Size": human_size(img["Size"], 3), "Containers": str(img.get("Containers", 0))})
    if a.quiet:
        seen = []
        for r in rows:
            if r["ID"] not in seen:
                seen.append(r["ID"])
        print("\n".join(seen)) if seen else None
        return 0
    table = IMAGES_TABLE.replace("{{.Tag}}\t", "{{.Tag}}\t{{.Digest}}\t") if a.digests else IMAGES_TABLE
    text = output.format_rows(rows, a.format, table, IMAGES_HEADERS)
    if text:
        print(text)
    return 0


def rmi(api: Transport, name: str, argv: list[str]) -> int:
    from berth.errors import BerthError
    p = parser(name, "[OPTIONS] IMAGE [IMAGE...]")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--no-prune", action="store_true")
    p.add_argument("images", nargs="+")
    a = p.parse_args(argv)
    code = 0
    for ref in a.images:
        try:
            res = api.request("DELETE", f"/images/{path_quote(ref)}",
                              {"force": int(a.force), "noprune": int(a.no_prune)}).json()
        except BerthError as e:
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            code = 1
            continue
        for item in res:
            for k, v in item.items():
                print(f"{k}: {v}")
    return code


def tag(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]")
    p.add_argument("source")
    p.add_argument("target")
    a = p.parse_args(argv)
    repo, tag_ = a.target, None
    if ":" in a.target.rsplit("/", 1)[-1]:
        repo, tag_ = a.target.rsplit(":", 1)
    api.request("POST", f"/images/{path_quote(a.source)}/tag", {"repo": repo, "tag": tag_}).close()
    return 0


def _print_stream(resp) -> int:
    code = 0
    for line in resp.raw:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        if msg.get("error"):
            print(msg["error"], file=sys.stderr)
            code = 1
        elif msg.get("stream"):
            print(msg["stream"], end="")
        elif msg.get("status"):
            print(msg["status"])
    return code


def _open_input(path: str | None):
    if path in (None, "-"):
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as e:
        raise Usage(f"open {path}: {e.strerror}") from None


def _upload(api: Transport, path: str, query: dict, src) -> object:
    """Stream a file or stdin as a chunked request body."""
    def chunks():
        while data := src.read(1 << 20):
            yield data
    return api.request("POST", path, query, chunks(), {"Content-Type": "application/x-tar"})


def import_(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    p.add_argument("--platform")
    p.add_argument("file")
    p.add_argument("reference", nargs="?")
    a = p.parse_args(argv)
    if a.file.startswith(("http://", "https://")):
        raise Usage("berth import: importing from a URL is not supported; download the file first")
    repo, tag_ = a.reference, None
    if repo and ":" in repo.rsplit("/", 1)[-1]:
        repo, tag_ = repo.rsplit(":", 1)
    src = _open_input(a.file)
    resp = _upload(api, "/images/create", {"fromSrc": "-", "repo": repo, "tag": tag_, "changes": a.change,
                                           "message": a.message or None}, src)
    return _print_stream(resp)


def load(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS]")
    p.add_argument("-i", "--input")
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    src = _open_input(a.input)
    if src is sys.stdin.buffer and sys.stdin.isatty():
        raise Usage("requested load from stdin, but stdin is empty")
    return _print_stream(_upload(api, "/images/load", {"quiet": int(a.quiet)}, src))


def save(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] IMAGE [IMAGE...]")
    p.add_argument("-o", "--output")
    p.add_argument("images", nargs="+")
    a = p.parse_args(argv)
    if not a.output and sys.stdout.isatty():
        raise Usage("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = api.request("GET", "/images/get", {"names": a.images})
    tmp = None
    if a.output:
        tmp = a.output + ".tmp"
        out = open(tmp, "wb")
    else:
        out = sys.stdout.buffer
    try:
        while data := resp.raw.read(1 << 20):
            out.write(data)
    finally:
        if a.output:
            out.close()
    if tmp:
        os.replace(tmp, a.output)
    return 0


def history(api: Transport, name: str, argv: list[str]) -> int:
    from berth.types.units import human_duration, human_size
    p = parser(name, "[OPTIONS] IMAGE")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.add_argument("-H", "--human", default="true")
    p.add_argument("image")
    a = p.parse_args(argv)
    items = api.request("GET", f"/images/{path_quote(a.image)}/history").json()
    now = time.time()
    rows = [{"ID": h["Id"] if a.no_trunc or h["Id"] == "<missing>" else h["Id"][7:19],
             "CreatedSince": human_duration(now - h["Created"]) + " ago",
             "CreatedBy": h["CreatedBy"] if a.no_trunc or len(h["CreatedBy"]) <= 45 else h["CreatedBy"][:44] + "…",
             "Size": human_size(h["Size"], 3), "Comment": h["Comment"]} for h in items]
    if a.quiet:
        print("\n".join(r["ID"] for r in rows))
        return 0
    print(output.format_rows(rows, a.format, "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
                             {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedBy": "CREATED BY", "Size": "SIZE",
                              "Comment": "COMMENT"}))
    return 0


def prune(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.commands.containers import _filters
    from berth.types.units import human_size
    from berth.cli.common import confirmed, prune_parser
    a = prune_parser(name, all_flag=True).parse_args(argv)
    what = "all images without at least one container associated to them" if a.all else "all dangling images"
    if not (a.force or confirmed(what)):
        return 0
    filters = list(a.filter) + (["dangling=false"] if a.all else [])
    res = api.request("POST", "/images/prune", {"filters": _filters(filters)}).json()
    if res.get("ImagesDeleted"):
        print("Deleted Images:")
        for item in res["ImagesDeleted"]:
            for k, v in item.items():
                print(f"{k.lower()}: {v}")
        print()
    print(f"Total reclaimed space: {human_size(res.get('SpaceReclaimed', 0))}")
    return 0


def inspect_image(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.commands.inspect import inspect_kind
    return inspect_kind(api, name, argv, "image")
