"""Objects that later issues bring (networks, volumes, plugins): lookups answer 404 as Docker does for a name it lacks.

``docker inspect NAME`` probes each object type in turn and needs a 404 to move on.
"""
from __future__ import annotations

from aiohttp import web

from berth.api.routes import add
from berth.errors import NotFound


def routes(app: web.Application) -> list:
    r: list = []

    async def plugin(request: web.Request) -> web.Response:
        raise NotFound(f"plugin {request.match_info['name']} not found")

    add(r, "GET", "/plugins/{name}/json", plugin)
    return r
