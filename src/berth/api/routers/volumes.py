"""/volumes/*: list, inspect, create, remove, prune."""
from __future__ import annotations

from aiohttp import web

from berth.api.middleware import json_body, json_response, qbool
from berth.api.routes import add
from berth.api.serialize import volumes as ser
from berth.services.volumes import LIST_FILTERS, PRUNE_FILTERS
from berth.types import filters as flt


def routes(app: web.Application) -> list:
    volumes = app["volumes"]
    r: list = []

    async def list_volumes(request: web.Request) -> web.Response:
        f = flt.parse(request.query.get("filters"), LIST_FILTERS)
        return json_response({"Volumes": [ser.volume(v, volumes.path(v.name)) for v in volumes.list(f)],
                              "Warnings": None})

    async def inspect(request: web.Request) -> web.Response:
        v = volumes.get(request.match_info["name"])
        return json_response(ser.volume(v, volumes.path(v.name)))

    async def create(request: web.Request) -> web.Response:
        v = volumes.create(**ser.create_args(await json_body(request)))
        return json_response(ser.volume(v, volumes.path(v.name)), status=201)

    async def remove(request: web.Request) -> web.Response:
        await volumes.remove(request.match_info["name"], qbool(request, "force"))
        return web.Response(status=204)

    async def prune(request: web.Request) -> web.Response:
        gone, space = await volumes.prune(flt.parse(request.query.get("filters"), PRUNE_FILTERS))
        return json_response({"VolumesDeleted": gone, "SpaceReclaimed": space})

    add(r, "GET", "/volumes", list_volumes)
    add(r, "POST", "/volumes/create", create)
    add(r, "POST", "/volumes/prune", prune)
    add(r, "GET", "/volumes/{name}", inspect)
    add(r, "DELETE", "/volumes/{name}", remove)
    return r
