"""/networks/*: list, inspect, create, remove, prune, connect, disconnect."""
from __future__ import annotations

from aiohttp import web

from berth.api.middleware import json_body, json_response, qbool
from berth.api.routes import add
from berth.api.serialize import networks as ser
from berth.errors import InvalidArgument
from berth.services.networks import LIST_FILTERS
from berth.types import filters as flt


def routes(app: web.Application) -> list:
    networks = app["networks"]
    sandboxes = app["sandboxes"]
    containers = app["containers"]
    r: list = []

    def names() -> dict[str, str]:
        return {c.id: c.name for c in containers.index.all()}

    async def list_networks(request: web.Request) -> web.Response:
        f = flt.parse(request.query.get("filters"), LIST_FILTERS)
        return json_response([ser.network(n, None) for n in networks.list(f)])

    async def inspect(request: web.Request) -> web.Response:
        n = networks.get(request.match_info["id"])
        members = networks.index.active_names(n.id) if n.driver == "bridge" or qbool(request, "verbose") else []
        return json_response(ser.network(n, members))

    async def create(request: web.Request) -> web.Response:
        n = await networks.create(**ser.create_args(await json_body(request)))
        return json_response({"Id": n.id, "Warning": ""}, status=201)

    async def remove(request: web.Request) -> web.Response:
        await networks.remove(request.match_info["id"], names())
        return web.Response(status=204)

    async def prune(request: web.Request) -> web.Response:
        f = flt.parse(request.query.get("filters"), {"until", "label", "label!"})
        return json_response({"NetworksDeleted": await networks.prune(f, names()) or None})

    async def connect(request: web.Request) -> web.Response:
        body = await json_body(request)
        container = body.get("Container")
        if not isinstance(container, str) or not container:
            raise InvalidArgument("a container name or ID is required")
        await sandboxes.connect(request.match_info["id"], container, ser.endpoint_config(body.get("EndpointConfig")))
        return web.Response(status=200)

    async def disconnect(request: web.Request) -> web.Response:
        body = await json_body(request)
        container = body.get("Container")
        if not isinstance(container, str) or not container:
            raise InvalidArgument("a container name or ID is required")
        await sandboxes.disconnect(request.match_info["id"], container, bool(body.get("Force")))
        return web.Response(status=200)

    add(r, "GET", "/networks", list_networks)
    add(r, "GET", "/networks/", list_networks)
    add(r, "POST", "/networks/create", create)
    add(r, "POST", "/networks/prune", prune)
    add(r, "GET", "/networks/{id}", inspect)
    add(r, "DELETE", "/networks/{id}", remove)
    add(r, "POST", "/networks/{id}/connect", connect)
    add(r, "POST", "/networks/{id}/disconnect", disconnect)
    return r
