"""GET /events: Docker's event stream (one JSON object per line)."""
from __future__ import annotations

import json

from aiohttp import web

from berth.api.routes import add
from berth.errors import InvalidArgument
from berth.runtime.logs import parse_time
from berth.services.events import EVENT_FILTERS
from berth.types import filters as flt
from berth.types.events import Event


def message(e: Event) -> dict:
    out = {"status": e.action, "id": e.actor_id}
    if e.type == "container" and "image" in e.attributes:
        out["from"] = e.attributes["image"]
    out.update({"Type": e.type, "Action": e.action, "Actor": {"ID": e.actor_id, "Attributes": e.attributes},
                "scope": "local", "time": e.time_nano // 1_000_000_000, "timeNano": e.time_nano})
    return out


def _when(v: str | None) -> float | None:
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        try:
            return parse_time(v)
        except ValueError:
            raise InvalidArgument(f"invalid timestamp: {v!r}") from None


def routes(app: web.Application) -> list:
    bus = app["events"]
    r: list = []

    async def events(request: web.Request) -> web.StreamResponse:
        f = flt.parse(request.query.get("filters"), EVENT_FILTERS)
        since, until = _when(request.query.get("since")), _when(request.query.get("until"))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        try:
            async for e in bus.stream(since, until, f):
                await resp.write(json.dumps(message(e)).encode() + b"\n")
        except (ConnectionResetError, ConnectionError):
            return resp
        await resp.write_eof()
        return resp

    add(r, "GET", "/events", events)
    return r
