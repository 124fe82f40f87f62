"""/containers/{id}/stats and /containers/{id}/top."""
from __future__ import annotations

import contextlib
import json

from aiohttp import web

from berth.api.middleware import json_response, qbool
from berth.api.routes import add
from berth.errors import InvalidArgument


def routes(app: web.Application) -> list:
    monitoring = app["monitoring"]
    containers = app["containers"]
    r: list = []

    async def stats(request: web.Request) -> web.StreamResponse:
        ref = request.match_info["id"]
        containers.get(ref)  # 404 before any byte goes out
        stream = qbool(request, "stream", True)
        one_shot = qbool(request, "one-shot")
        if stream and one_shot:
            raise InvalidArgument("cannot have stream=true and one-shot=true")
        samples = monitoring.samples(ref, stream=stream, one_shot=one_shot)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            await resp.prepare(request)
            async for s in samples:
                await resp.write(json.dumps(s.to_dict()).encode() + b"\n")
            await resp.write_eof()
        except ConnectionError:  # the client went away: stop sampling
            pass
        finally:
            with contextlib.suppress(Exception):
                await samples.aclose()
        return resp

    async def top(request: web.Request) -> web.Response:
        return json_response(await monitoring.top(request.match_info["id"], request.query.get("ps_args")))

    add(r, "GET", "/containers/{id}/stats", stats)
    add(r, "GET", "/containers/{id}/top", top)
    return r
