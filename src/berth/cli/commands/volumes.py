"""Volumes: ``berth volume create|ls|inspect|rm|prune``, and the volume flags of ``berth run/create``
(``-v``, ``--mount``, ``--volumes-from``, ``--volume-driver``), as docker CLI 28 sends them."""
from __future__ import annotations

import argparse
import json
import sys

from berth.cli.common import Exit, Usage, parser
from berth.client.transport import Transport, path_quote
from berth.errors import BerthError

LS_TABLE = "table {{.Driver}}\t{{.Name}}"
HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
           "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP", "Availability": "AVAILABILITY",
           "Status": "STATUS"}
DF_TABLE = "table {{.Name}}\t{{.Links}}\t{{.Size}}"


# ---------------------------------------------------------------- run / create flags

def add_run_flags(p: argparse.ArgumentParser) -> None:
    """The volume flags of ``run``/``create`` (``--tmpfs`` and ``--read-only`` stay with the others)."""
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("--mount", action="append", default=[])
    p.add_argument("--volumes-from", action="append", default=[])
    p.add_argument("--volume-driver", default="")


def apply_run_flags(body: dict, a: argparse.Namespace) -> None:
    """Put the volume flags into a create body as docker CLI 28 does: ``-v SRC:DST[:MODE]`` to
    HostConfig.Binds (a ``./rel`` source made absolute), ``-v DST`` to Config.Volumes (``{}`` when none),
    ``--mount`` to HostConfig.Mounts (left out when none), ``--volumes-from`` to HostConfig.VolumesFrom."""
    host = body.setdefault("HostConfig", {})
    mounts = [_mount(v) for v in a.mount]  # flag values first, as pflag checks them while parsing
    try:
        binds, volumes = split_volume_flags(a.volume, _cwd() if a.volume else "")
    except ValueError as e:
        cmd = getattr(a, "net_command", "run")
        raise Usage(f"berth: {e}\n\nRun 'berth {cmd} --help' for more information") from None
    body["Volumes"] = {**body.get("Volumes", {}), **volumes}
    host.update({"Binds": binds or None, "VolumesFrom": list(a.volumes_from) or None,
                 "VolumeDriver": a.volume_driver})
    if mounts:
        host["Mounts"] = mounts


def _cwd() -> str:
    import os
    return os.getcwd()


def _mount(value: str) -> dict:
    from berth.types.mounts import parse_mount_flag
    from berth.types.units import go_quote
    try:
        return parse_mount_flag(value, _cwd())
    except ValueError as e:
        raise Usage(f'invalid argument {go_quote(value)} for "--mount" flag: {e}') from None


def _volume_spec(spec: str) -> tuple[str, str]:
    """docker CLI's ParseVolume (its compose loader's), reduced to (type, source); ValueError with its texts."""
    if not spec:
        raise ValueError("invalid empty volume spec")
    if len(spec) <= 2:
        return "volume", ""
    source = target = buf = ""
    for ch in spec + "\0":
        if ch == ":" and len(buf) == 1 and buf.isalpha():  # a Windows drive letter
            buf += ch
        elif ch in (":", "\0"):
            if not buf:
                raise ValueError(f"invalid spec: {spec}: empty section between colons")
            if not source and ch == "\0":
                target = buf
            elif not source:
                source = buf
            elif not target:
                target = buf
            elif ch == ":":
                raise ValueError(f"invalid spec: {spec}: too many colons")
            buf = ""  # (the options section: ignored here; the daemon checks it)
        else:
            buf += ch
    if not source:
        return "volume", ""
    windows = len(source) > 1 and (source.startswith("\\\\") or (source[0].isalpha() and source[1] == ":"))
    return ("bind" if source[0] in "./~" or windows else "volume"), source


def split_volume_flags(specs: list[str], cwd: str = "") -> tuple[list[str], dict[str, dict]]:
    """``-v`` values → (HostConfig.Binds, Config.Volumes): a spec with a source goes to Binds (a host path
    starting with ``.`` made absolute against ``cwd``), a lone target to Volumes; each spec once."""
    binds, volumes = [], {}
    for spec in dict.fromkeys(specs):
        from berth.types.mounts import absolute_source
        kind, source = _volume_spec(spec)
        if not source:
            volumes[spec] = {}
            continue
        host, colon, rest = spec.partition(":")
        binds.append(absolute_source(host, cwd) + colon + rest if kind == "bind" and colon else spec)
    return binds, volumes


# ---------------------------------------------------------------- berth volume ...

def _filters(values: list[str], extra: dict[str, list[str]] | None = None, flag: str = "-f, --filter") -> str | None:
    """``-f k=v`` flags as the API's filters JSON ({"k": {"v": true}}), keys sorted as Go marshals a map."""
    out: dict[str, dict[str, bool]] = {}
    for v in values:
        k, eq, val = v.partition("=")
        if not eq:
            raise Usage(f'invalid argument "{v}" for "{flag}" flag: bad format of filter (expected name=value)')
        out.setdefault(k.strip().lower(), {})[val.strip()] = True
    for k, vals in (extra or {}).items():
        out.setdefault(k, {}).update(dict.fromkeys(vals, True))
    return json.dumps(out, sort_keys=True, separators=(",", ":")) if out else None


def _kv(values: list[str]) -> dict[str, str]:
    """MapOpts / ConvertKVStringsToMap: ``k=v``; ``k`` alone is ``k=""``."""
    return {k: v for k, _, v in (x.partition("=") for x in values)}


def create_body(argv: list[str], name: str = "volume create") -> dict:
    """The POST /volumes/create body docker CLI 28 sends (empty fields left out)."""
    p = parser(name, "[OPTIONS] [VOLUME]")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("--name", default="")
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("volume", nargs="?")
    a = p.parse_args(argv)
    for label in a.label:
        key = label.partition("=")[0].lstrip(" \t\n\r\f\v")
        if not key:
            raise Usage(f'invalid argument "{label}" for "--label" flag: invalid label \'{label}\': empty name')
        if any(c in key for c in " \t\n\r\f\v"):
            raise Usage(f'invalid argument "{label}" for "--label" flag: label \'{key}\' contains whitespaces')
    if a.volume is not None and a.name:
        print("conflicting options: cannot specify a volume-name through both --name and as a positional arg",
              file=sys.stderr)
        raise Exit(1)
    body = {"Driver": a.driver, "DriverOpts": _kv(a.opt), "Labels": _kv(a.label), "Name": a.volume or a.name}
    return {k: v for k, v in body.items() if v}


def create(api: Transport, name: str, argv: list[str]) -> int:
    resp = api.request("POST", "/volumes/create", None, create_body(argv, name)).json() or {}
    print(resp.get("Name", ""))
    return 0


def _row(v: dict) -> dict:
    usage = v.get("UsageData")
    labels = v.get("Labels") or {}
    return {"Name": v.get("Name", ""), "Driver": v.get("Driver", ""), "Scope": v.get("Scope", ""),
            "Mountpoint": v.get("Mountpoint", ""), "Labels": ",".join(f"{k}={labels[k]}" for k in sorted(labels)),
            "Links": "N/A" if usage is None else str(usage.get("RefCount", 0)),
            "Size": "N/A" if usage is None else _human(usage.get("Size", 0)),
            "Group": "N/A", "Availability": "N/A", "Status": "N/A"}


def _human(n: int) -> str:
    from berth.types.units import human_size
    return human_size(n)


def ls(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli import output
    from berth.types.ports import natural_key
    p = parser(name, "[OPTIONS]")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    a = p.parse_args(argv)
    resp = api.request("GET", "/volumes", {"filters": _filters(a.filter)}).json() or {}
    for w in resp.get("Warnings") or []:
        print(w, file=sys.stderr)
    items = sorted(resp.get("Volumes") or [], key=lambda v: natural_key(v.get("Name", "")))
    fmt = a.format
    if a.quiet and (not fmt or fmt == "table"):
        fmt = "{{.Name}}"
    text = output.format_rows([_row(v) for v in items], fmt, LS_TABLE, HEADERS)
    if text:
        print(text)
    return 0


def inspect(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli import output
    p = parser(name, "[OPTIONS] VOLUME [VOLUME...]")
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+")
    a = p.parse_args(argv)
    return output.print_inspect(lambda n: api.request("GET", f"/volumes/{path_quote(n)}").json(), a.names, a.format)


def rm(api: Transport, name: str, argv: list[str]) -> int:
    """Each volume in turn: its name when removed, the daemon's error otherwise (``-f`` included)."""
    p = parser(name, "[OPTIONS] VOLUME [VOLUME...]")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("volumes", nargs="+")
    a = p.parse_args(argv)
    status = 0
    for v in a.volumes:
        try:
            api.request("DELETE", f"/volumes/{path_quote(v)}", {"force": 1 if a.force else None}).close()
        except BerthError as e:
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            status = 1
            continue
        print(v)
    return status


def prune(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.common import confirmed, prune_parser
    a = prune_parser(name, all_flag=True).parse_args(argv)
    extra = None
    if a.all:
        if any(f.partition("=")[0].strip().lower() == "all" for f in a.filter):
            print("conflicting options: cannot specify both --all and --filter all=1", file=sys.stderr)
            return 1
        extra = {"all": ["true"]}
    filters = _filters(a.filter, extra, "--filter")
    what = "all local volumes" if a.all else "anonymous local volumes"
    if not (a.force or confirmed(f"{what} not used by at least one container")):
        return 0
    res = api.request("POST", "/volumes/prune", {"filters": filters}).json() or {}
    reclaimed = 0
    if res.get("VolumesDeleted"):
        print("Deleted Volumes:")
        for v in res["VolumesDeleted"]:
            print(v)
        print()
        reclaimed = res.get("SpaceReclaimed") or 0
    print(f"Total reclaimed space: {_human(reclaimed)}")
    return 0


# ---------------------------------------------------------------- system df

def df_summary(volumes: list[dict]) -> dict:
    """The "Local Volumes" row of ``system df`` (sizes of -1, not computed, left out)."""
    usage = [v.get("UsageData") or {"Size": -1, "RefCount": -1} for v in volumes]
    sized = [u for u in usage if u.get("Size", -1) != -1]
    total = sum(u["Size"] for u in sized)
    reclaimable = sum(u["Size"] for u in sized if u.get("RefCount") == 0)
    return {"Type": "Local Volumes", "TotalCount": str(len(volumes)),
            "Active": str(sum(1 for u in usage if u.get("RefCount", 0) > 0)), "Size": _human(total),
            "Reclaimable": f"{_human(reclaimable)} ({reclaimable * 100 // total}%)" if total > 0
            else _human(reclaimable)}


def df_rows(volumes: list[dict]) -> list[dict]:
    """The rows of ``system df -v``'s volume section (and of its JSON ``Volumes``)."""
    return [_row(v) for v in volumes]


def df_section(volumes: list[dict]) -> str:
    """``system df -v``'s "Local Volumes space usage:" section, as docker CLI 28 prints it."""
    from berth.cli import output
    return "Local Volumes space usage:\n\n" + output.format_rows(df_rows(volumes), DF_TABLE, DF_TABLE, HEADERS)
