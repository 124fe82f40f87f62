"""``berth build`` and ``berth builder prune``, as docker CLI 28's classic builder does them.

The context (a directory, ``-`` for stdin, or a tar file) is sent as a tar streamed in chunks, with
.dockerignore applied here (``berth.util.dockerignore``); the daemon's JSON messages are rendered as
``jsonmessage.DisplayJSONMessagesStream`` does. What docker sends was recorded from the real CLI
(see tests/unit/test_cli_build.py).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys

from berth.cli.common import Exit, Usage, parser
from berth.client.transport import Transport
from berth.cli.build_context import prepare_context

_CHUNK = 1 << 20
_BLOCK = 512
_BOOL_FLAGS = {"--rm": "rm", "--force-rm": "force_rm", "--no-cache": "no_cache", "--pull": "pull",
               "--quiet": "quiet", "-q": "quiet", "--explain": "explain"}
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _fail(message: str) -> Exit:
    print(message, file=sys.stderr)
    return Exit(1)


def _bad_flag(name: str, value: str, flag: str, why: str) -> Usage:
    return Usage(f'berth {name}: invalid argument "{value}" for "{flag}" flag: {why}\n'
                 f"See 'berth {name} --help'.")


# ---------------------------------------------------------------- flags

def _normalize_bools(name: str, argv: list[str]) -> list[str]:
    """Go's ``--flag=false`` for boolean flags, which argparse does not know."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        flag, eq, value = arg.partition("=")
        if eq and flag in _BOOL_FLAGS:
            if value in _GO_TRUE:
                out.append(flag)
                continue
            if value in _GO_FALSE:
                out.append(f"--{_BOOL_FLAGS[flag].replace('_', '-')}:off")
                continue
            raise _bad_flag(name, value, flag, f'strconv.ParseBool: parsing "{value}": invalid syntax')
        out.append(arg)
    return out


def _build_parser(name: str):
    p = parser(name, "[OPTIONS] PATH | -")
    p.add_argument("-t", "--tag", action="append", default=[])
    p.add_argument("-f", "--file")
    p.add_argument("--build-arg", action="append", default=[])
    p.add_argument("--target", default="")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--network", default="default")
    p.add_argument("--add-host", action="append", default=[])
    p.add_argument("--iidfile", default="")
    p.add_argument("--cache-from", action="append", default=[])
    p.add_argument("--platform", default=os.environ.get("DOCKER_DEFAULT_PLATFORM", ""))
    for flag, dest in _BOOL_FLAGS.items():
        if flag == "-q":
            continue
        names = ["-q", "--quiet"] if dest == "quiet" else [flag]
        p.add_argument(*names, dest=dest, action="store_const", const=True, default=dest == "rm")
        p.add_argument(f"--{dest.replace('_', '-')}:off", dest=dest, action="store_const", const=False,
                       help=argparse.SUPPRESS)
    p.add_argument("context")
    return p


def _split_csv(values: list[str]) -> list[str]:
    """pflag's StringSlice: each value is a CSV record."""
    import csv
    out: list[str] = []
    for v in values:
        out += next(csv.reader([v])) if v else []
    return out


def _validate(name: str, a) -> None:
    """The checks the docker CLI's flag types make, with its messages (exit 125)."""
    import re
    plain = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
                       r"(?::\w[\w.-]{0,127})?")
    for t in a.tag:
        if len(t) < 200 and plain.fullmatch(t):
            continue  # the common case, without importing the full reference grammar (20 ms)
        from berth.errors import InvalidArgument
        from berth.types import reference
        try:
            reference.parse(t)
        except InvalidArgument as e:
            raise _bad_flag(name, t, "-t, --tag", e.message) from None
    args = []
    for v in a.build_arg:
        k, eq, _ = v.partition("=")
        if not k:
            raise _bad_flag(name, v, "--build-arg", f"invalid environment variable: {v}")
        if not eq and k in os.environ:
            v = f"{k}={os.environ[k]}"
        args.append(v)
    a.build_arg = args
    ws = " \t"  # opts.whiteSpaces
    for v in a.label:
        k = v.partition("=")[0].lstrip(ws)
        if not k:
            raise _bad_flag(name, v, "--label", f"invalid label '{v}': empty name")
        if any(c in ws for c in k):
            raise _bad_flag(name, v, "--label", f"label '{k}' contains whitespaces")
    hosts = []
    for v in a.add_host:
        k, sep, ip = v.partition("=")
        if not sep:
            k, sep, ip = v.partition(":")
        if not sep or not k or ":" in k:
            raise _bad_flag(name, v, "--add-host", f'bad format for add-host: "{v}"')
        if ip != "host-gateway":
            if len(ip) > 2 and ip[0] == "[" and ip[-1] == "]":
                ip = ip[1:-1]
            import ipaddress
            try:
                ipaddress.ip_address(ip.strip())
            except ValueError:
                raise _bad_flag(name, v, "--add-host", f'invalid IP address in add-host: "{ip}"') from None
        hosts.append(f"{k}:{ip}")
    a.add_host = hosts


def go_json(value) -> str:
    """Go's json.Marshal: maps with sorted keys, compact, HTML-safe."""
    from berth.types.units import to_json
    if isinstance(value, dict):
        value = dict(sorted(value.items()))
    return to_json(value)


def build_query(a, dockerfile: str) -> dict:
    """The query docker CLI 28's classic builder sends (url.Values: keys sorted), plus ``explain``."""
    q: dict = {}
    if a.build_arg:
        q["buildargs"] = go_json({k: (v if eq else None) for k, eq, v in (s.partition("=") for s in a.build_arg)})
    if a.cache_from:
        q["cachefrom"] = go_json(_split_csv(a.cache_from))
    if dockerfile:
        q["dockerfile"] = dockerfile
    if a.explain:
        q["explain"] = "1"
    if a.add_host:
        q["extrahosts"] = list(a.add_host)
    if a.force_rm:
        q["forcerm"] = "1"
    if a.label:
        q["labels"] = go_json({k: v for k, _, v in (s.partition("=") for s in a.label)})
    if a.network and a.network != "default":
        q["networkmode"] = a.network
    if a.no_cache:
        q["nocache"] = "1"
    if a.platform:
        q["platform"] = a.platform.lower()
    if a.pull:
        q["pull"] = "1"
    if a.quiet:
        q["q"] = "1"
    if not a.rm:
        q["rm"] = "0"
    if a.tag:
        q["t"] = list(a.tag)
    if a.target:
        q["target"] = a.target
    q["version"] = "1"
    return q


# ---------------------------------------------------------------- the answer

class Renderer:
    """jsonmessage's DisplayJSONMessagesStream as ``docker build`` runs it: never in terminal mode (the
    classic builder wraps its output stream, which hides the terminal), so progress bars are left out.
    An error message ends the stream (``error``: its text and exit code)."""

    def __init__(self, out) -> None:
        self.out = out
        self.image_id = ""
        self.error: tuple[str, int] | None = None

    def message(self, jm) -> bool:
        """Render one message; False once an error ended the build."""
        if not isinstance(jm, dict):
            return True
        if jm.get("aux") is not None:
            aux = jm["aux"]
            if isinstance(aux, dict):
                for k, v in aux.items():
                    if k.lower() == "id" and isinstance(v, str):
                        self.image_id = v
            else:
                print(f"Failed to parse aux message: cannot unmarshal {type(aux).__name__}", end="",
                      file=sys.stderr)
            return True
        detail = jm.get("errorDetail")
        if isinstance(detail, dict):
            self.error = (str(detail.get("message") or ""), int(detail.get("code") or 0) or 1)
            return False
        progress = jm.get("progressDetail")
        if isinstance(progress, dict) and (int(progress.get("current") or 0) > 0 or
                                           int(progress.get("total") or 0) > 0):
            return True  # a progress bar: not shown
        w = self.out.write
        if jm.get("id"):
            w(f"{jm['id']}: ")
        if jm.get("from"):
            w(f"(from {jm['from']}) ")
        status = jm.get("status") or ""
        if jm.get("progress"):
            w(f"{status} {jm['progress']}")
        elif jm.get("stream"):
            w(jm["stream"])
        else:
            w(f"{status}\n")
        self.out.flush()
        return True


def json_messages(raw):
    """The JSON values in a streamed body, as they come (Go's json.Decoder: any whitespace between)."""
    import codecs
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    while True:
        data = raw.read1(65536)
        pending += text.decode(data, final=not data)
        while True:
            pending = pending.lstrip(" \t\r\n")
            if not pending:
                break
            try:
                value, end = decoder.raw_decode(pending)
            except ValueError:
                if not data:
                    raise
                break
            pending = pending[end:]
            yield value
        if not data:
            return


def _post(api: Transport, query: dict, body) -> object:
    """POST /build with the context as a chunked body. A daemon that answers before taking the
    whole context (a bad parameter) closes the connection: its answer is still read."""
    from berth.client.transport import Pending
    from berth.client.credentials import registry_config_header
    headers = {"Content-Type": "application/x-tar", "X-Registry-Config": registry_config_header()}
    conn = api._connect()
    try:
        conn.send_request("POST", api.url("/build", query), headers, body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return api.finish(Pending(conn, "POST"))


def _sending_line(size: int) -> str:
    from berth.types.units import human_size
    return f"Sending build context to Docker daemon {human_size(size):>8}\r\r\n"


def build(api: Transport, name: str, argv: list[str]) -> int:
    a = _build_parser(name).parse_args(_normalize_bools(name, argv))
    _validate(name, a)
    if a.iidfile:
        try:
            os.remove(a.iidfile)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise _fail(f"Removing image ID file: {e}") from None
    out = sys.stdout
    prog = build_out = out
    if a.quiet:
        prog, build_out = io.StringIO(), io.StringIO()
    ctx = prepare_context(a.context, a.file, sys.stdin.buffer)
    query = build_query(a, ctx.dockerfile)

    def body():
        yield from ctx.body
        prog.write(_sending_line(ctx.body.sent))
        prog.flush()

    resp = _post(api, query, body())
    r = Renderer(build_out)
    try:
        for jm in json_messages(resp.raw):
            if not r.message(jm):
                break
    except ValueError as e:
        raise _fail(f"invalid answer from the daemon: {e}") from None
    finally:
        resp.close()
    if r.error is not None:
        message, code = r.error
        if a.quiet:
            sys.stderr.write(prog.getvalue() + build_out.getvalue())
        print(message, file=sys.stderr)
        raise Exit(code)
    image_id = r.image_id
    if a.quiet:
        # docker prints what the daemon streamed (the ID and a newline) and writes that to --iidfile
        shown = build_out.getvalue() or (image_id + "\n" if image_id else "")
        out.write(shown)
        out.flush()
        image_id = shown
    if a.iidfile:
        if not image_id:
            raise _fail(f"Server did not provide an image ID. Cannot write {a.iidfile}")
        with open(a.iidfile, "w") as f:
            f.write(image_id)
    return 0


# ---------------------------------------------------------------- builder prune

def _prune_filters(name: str, values: list[str]) -> str:
    out: dict[str, dict[str, bool]] = {}
    for v in values:
        k, eq, val = v.partition("=")
        if not eq:
            raise _bad_flag(name, v, "--filter", "bad format of filter (expected name=value)")
        out.setdefault(k, {})[val] = True
    return go_json({k: dict(sorted(v.items())) for k, v in out.items()}) if out else ""


def builder_prune(api: Transport, name: str, argv: list[str]) -> int:
    from berth.types.units import human_size, parse_size
    p = parser(name, "[OPTIONS]")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.add_argument("--keep-storage", default="")
    a = p.parse_args(argv)
    filters = _prune_filters(name, a.filter)
    keep = 0
    if a.keep_storage:
        try:
            keep = parse_size(a.keep_storage)
        except ValueError as e:
            raise _bad_flag(name, a.keep_storage, "--keep-storage", str(e)) from None
    if not a.force:
        what = "all build cache" if a.all else "all dangling build cache"
        print(f"WARNING! This will remove {what}. Are you sure you want to continue? [y/N] ", end="", flush=True)
        if sys.stdin.readline().strip().lower() != "y":
            return 0
    query = {"all": "1" if a.all else None, "filters": filters, "keep-storage": str(keep) if keep else None}
    report = api.request("POST", "/build/prune", query).json() or {}
    deleted = report.get("CachesDeleted") or []
    if deleted:
        print("Deleted build cache objects:\n" + "".join(f"{i}\n" for i in deleted))
    print(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}")
    return 0
