"""/images/*: list, inspect, history, tag, delete, import, load, save, prune."""
from __future__ import annotations

import asyncio
import os
import tempfile

from aiohttp import web

from berth.api.middleware import json_response, qbool
from berth.api.routes import add
from berth.api.serialize import images as ser
from berth.api.streams import json_stream, send_file, spool_body, write_json_line
from berth.api.routers.distribution import pull
from berth.errors import InvalidArgument
from berth.services.images import familiar
from berth.types import filters as flt

LIST_FILTERS = {"dangling", "label", "reference", "before", "since", "until"}


def routes(app: web.Application) -> list:
    images = app["images"]
    containers = app["containers"]
    tmp = app["tmp_dir"]
    r: list = []

    async def list_images(request: web.Request) -> web.Response:
        f = flt.parse(request.query.get("filters"), LIST_FILTERS)
        return json_response([ser.list_item(i, familiar) for i in images.list(f, qbool(request, "all"))])

    async def inspect(request: web.Request) -> web.Response:
        img = images.resolve(request.match_info["name"])
        return json_response(ser.inspect(img, familiar, images.parent(img.id)))

    async def history(request: web.Request) -> web.Response:
        return json_response(ser.history(images.resolve(request.match_info["name"]), familiar))

    async def tag(request: web.Request) -> web.Response:
        repo = request.query.get("repo")
        if not repo:
            raise InvalidArgument("repository name is required")
        images.tag(request.match_info["name"], repo, request.query.get("tag"))
        return web.Response(status=201)

    async def delete(request: web.Request) -> web.Response:
        res = await images.delete(request.match_info["name"], qbool(request, "force"), containers.users_of_images())
        return json_response([{"Untagged": t} for t in res.untagged] + [{"Deleted": d} for d in res.deleted])

    async def create(request: web.Request) -> web.StreamResponse:
        if request.query.get("fromImage"):
            return await pull(request)
        if request.query.get("fromSrc") != "-":
            raise InvalidArgument("fromSrc or fromImage is required")
        path = await spool_body(request, tmp)
        try:
            changes = request.query.getall("changes", [])
            with open(path, "rb") as body:
                image_id = await images.import_rootfs(body, request.query.get("repo", ""), request.query.get("tag", ""),
                                                      changes, request.query.get("message", ""))
        finally:
            os.unlink(path)
        resp = await json_stream(request)
        await write_json_line(resp, {"status": image_id})
        await resp.write_eof()
        return resp

    async def load(request: web.Request) -> web.StreamResponse:
        path = await spool_body(request, tmp)
        try:
            with open(path, "rb") as body:
                messages = await images.load(body)
        finally:
            os.unlink(path)
        resp = await json_stream(request)
        for m in messages:
            await write_json_line(resp, {"stream": m + "\n"})
        await resp.write_eof()
        return resp

    async def save(request: web.Request) -> web.StreamResponse:
        names = request.query.getall("names", []) if "name" not in request.match_info else [request.match_info["name"]]
        if not names:
            raise InvalidArgument("no image names given")
        plan = images.save_plan(names)
        fd, path = tempfile.mkstemp(dir=tmp, prefix="save-")
        try:
            with os.fdopen(fd, "wb") as out:
                await asyncio.to_thread(images.write_save, out, plan)
            return await send_file(request, path, "application/x-tar")
        finally:
            os.unlink(path)

    async def prune(request: web.Request) -> web.Response:
        f = flt.parse(request.query.get("filters"), {"dangling", "label", "until"})
        in_use = set(containers.users_of_images())
        deleted, reclaimed = await images.prune(f, in_use)
        return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    add(r, "GET", "/images/json", list_images)
    add(r, "POST", "/images/create", create)
    add(r, "POST", "/images/load", load)
    add(r, "GET", "/images/get", save)
    add(r, "POST", "/images/prune", prune)
    add(r, "GET", "/images/{name:.+}/json", inspect)
    add(r, "GET", "/images/{name:.+}/history", history)
    add(r, "GET", "/images/{name:.+}/get", save)
    add(r, "POST", "/images/{name:.+}/tag", tag)
    add(r, "DELETE", "/images/{name:.+}", delete)
    return r
