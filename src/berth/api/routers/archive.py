"""Files in containers: /containers/{id}/archive (HEAD, GET, PUT), /changes, /export, and /commit."""
from __future__ import annotations

import base64
import json
import logging

from aiohttp import web

from berth.api.middleware import json_response, qbool
from berth.api.routes import add
from berth.errors import InvalidArgument, NotFound

log = logging.getLogger("berthd.api")
STAT_HEADER = "X-Docker-Container-Path-Stat"


def _stat_header(info: dict) -> str:
    return base64.b64encode(json.dumps(info).encode()).decode()


async def _stream(request: web.Request, resp: web.StreamResponse, chunks) -> web.StreamResponse:
    """Send ``chunks``; a failure once the answer has begun cuts the connection, so the client sees a broken tar."""
    try:
        async for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionError:
        pass  # the client went away (docker cp does when it refuses the destination)
    except Exception:  # noqa: BLE001 - the status line is gone already
        log.exception("tar stream for %s %s failed", request.method, request.path)
        if request.transport is not None:
            request.transport.close()
    return resp


def routes(app: web.Application) -> list:
    fs = app["filesystem"]
    r: list = []

    def path_of(request: web.Request) -> str:
        path = request.query.get("path", "")
        if not path:
            raise InvalidArgument("no path specified")
        return path

    async def head(request: web.Request) -> web.Response:
        info = await fs.stat(request.match_info["id"], path_of(request))
        return web.Response(status=200, headers={STAT_HEADER: _stat_header(info), "Content-Type": "application/json"})

    async def get(request: web.Request) -> web.StreamResponse:
        async with fs.archive(request.match_info["id"], path_of(request)) as (info, chunks):
            resp = web.StreamResponse(headers={"Content-Type": "application/x-tar", STAT_HEADER: _stat_header(info)})
            await resp.prepare(request)
            return await _stream(request, resp, chunks)

    async def put(request: web.Request) -> web.Response:
        await fs.extract(request.match_info["id"], path_of(request), request.content.read,
                         qbool(request, "noOverwriteDirNonDir"), qbool(request, "copyUIDGID"))
        return web.Response(status=200)

    async def changes(request: web.Request) -> web.Response:
        return json_response(await fs.changes(request.match_info["id"]))

    async def export(request: web.Request) -> web.StreamResponse:
        async with fs.export(request.match_info["id"]) as chunks:
            resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
            await resp.prepare(request)
            return await _stream(request, resp, chunks)

    async def commit(request: web.Request) -> web.Response:
        raw = await request.read()
        config = None
        if raw.strip():
            try:
                config = json.loads(raw)
            except ValueError as e:
                raise InvalidArgument(f"invalid JSON in request body: {e}") from None
            if config is not None and not isinstance(config, dict):
                raise InvalidArgument("request body must be a JSON object")
        ref = request.query.get("container", "")
        if not ref:
            raise NotFound.container(ref)
        q = request.query
        image_id = await fs.commit(ref, q.get("repo", ""), q.get("tag", ""), q.get("comment", ""),
                                   q.get("author", ""), qbool(request, "pause", True), q.getall("changes", []),
                                   config)
        return json_response({"Id": image_id}, status=201)

    add(r, "HEAD", "/containers/{id}/archive", head)
    add(r, "GET", "/containers/{id}/archive", get)
    add(r, "PUT", "/containers/{id}/archive", put)
    add(r, "GET", "/containers/{id}/changes", changes)
    add(r, "GET", "/containers/{id}/export", export)
    add(r, "POST", "/commit", commit)
    return r
