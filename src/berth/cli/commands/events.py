"""berth events: the daemon's event stream, as docker events prints it."""
from __future__ import annotations

import json

import time

from berth.cli.common import Usage, parser
from berth.client.transport import Transport


def _line(m: dict) -> str:
    """``2026-11-27T22:30:00.123456789Z container start ID (image=busybox, name=x)``."""
    ns = m.get("timeNano") or m.get("time", 0) * 1_000_000_000
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"
    attrs = ", ".join(f"{k}={v}" for k, v in sorted((m.get("Actor", {}).get("Attributes") or {}).items()))
    return f"{stamp} {m.get('Type')} {m.get('Action')} {m.get('Actor', {}).get('ID', '')}" + (f" ({attrs})" if attrs else "")


def events(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.commands.containers import _filters
    from berth.types.units import parse_timestamp
    p = parser(name, "[OPTIONS]")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    a = p.parse_args(argv)
    now = time.time()
    q = {"filters": _filters(a.filter)}
    try:
        for key in ("since", "until"):
            if getattr(a, key):
                q[key] = f"{parse_timestamp(getattr(a, key), now):.9f}"
    except ValueError as e:
        raise Usage(str(e)) from None
    resp = api.request("GET", "/events", q)
    tmpl = None
    if a.format:
        from berth.cli import output
        tmpl = output.Template("{{json .}}" if a.format == "json" else a.format)
    for raw in resp.raw:
        raw = raw.strip()
        if not raw:
            continue
        m = json.loads(raw)
        print(tmpl.render(m) if tmpl else _line(m), flush=True)
    return 0


