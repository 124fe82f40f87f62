"""/build and /build/prune: the classic builder's API, streaming Docker's JSON messages."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil

from aiohttp import web

from berth.api.middleware import json_response, qbool
from berth.api.routes import add
from berth.api.streams import json_stream, spool_body, write_json_line
from berth.api.serialize.progress import credentials
from berth.api.serialize.progress import message as progress_message
from berth.errors import BerthError, InvalidArgument
from berth.services.builds import BuildRequest

log = logging.getLogger(__name__)


def _json_param(request: web.Request, name: str) -> dict:
    raw = request.query.get(name)
    if not raw:
        return {}
    try:
        v = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid {name}: not JSON") from None
    if not isinstance(v, dict):
        raise InvalidArgument(f"invalid {name}: expected an object")
    return v


def build_auth(header: str | None) -> dict:
    """``X-Registry-Config``: base64url JSON of registry host -> AuthConfig."""
    import base64
    import binascii
    if not header:
        return {}
    try:
        doc = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidArgument("invalid X-Registry-Config header: not base64url-encoded JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid X-Registry-Config header: not a JSON object")
    return {str(k): credentials(v) for k, v in doc.items() if isinstance(v, dict)}


def build_request(request: web.Request) -> BuildRequest:
    q = request.query
    cache_from = q.get("cachefrom")
    return BuildRequest(
        dockerfile=q.get("dockerfile") or "Dockerfile", tags=q.getall("t", []),
        build_args=_json_param(request, "buildargs"), target=q.get("target", ""), no_cache=qbool(request, "nocache"),
        labels=_json_param(request, "labels"), network_mode=q.get("networkmode", ""),
        extra_hosts=[h for v in q.getall("extrahosts", []) for h in v.split(",") if h],
        cache_from=json.loads(cache_from) if cache_from else [], explain=qbool(request, "explain"),
        pull=qbool(request, "pull"), auth=build_auth(request.headers.get("X-Registry-Config")),
        force_rm=qbool(request, "forcerm"))


def routes(app: web.Application) -> list:
    builder = app["builder"]
    r: list = []

    async def build(request: web.Request) -> web.StreamResponse:
        req = build_request(request)
        for t in req.tags:
            from berth.types import reference
            reference.parse(t)  # 400 for a bad tag, before anything runs
        path = await spool_body(request, app["tmp_dir"])
        try:
            prep = await builder.prepare(req, path)  # a bad Dockerfile or context: a plain HTTP error
        finally:
            os.unlink(path)
        resp = await json_stream(request)
        quiet = qbool(request, "q")
        steps = builder.build(req, prep)

        async def run() -> None:
            try:
                async for msg in steps:
                    if not isinstance(msg, dict):  # a base image's pull progress
                        if not quiet:
                            await write_json_line(resp, progress_message(msg))
                        continue
                    if msg.get("stream") == "" or quiet and "stream" in msg:
                        continue
                    await write_json_line(resp, msg)
                    if quiet and "aux" in msg:  # -q: the image ID alone, as dockerd sends it
                        await write_json_line(resp, {"stream": msg["aux"]["ID"] + "\n"})
            except BerthError as e:
                detail = {"code": e.code, "message": e.message} if getattr(e, "code", 0) else {"message": e.message}
                with contextlib.suppress(ConnectionError):
                    await write_json_line(resp, {"errorDetail": detail, "error": e.message})
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception as e:  # noqa: BLE001 - the stream has begun: the error goes in it, not as a 500
                log.exception("build failed")
                with contextlib.suppress(ConnectionError):
                    await write_json_line(resp, {"errorDetail": {"message": str(e)}, "error": str(e)})
            finally:
                await steps.aclose()  # a step's container goes even when the client left mid-step

        task = asyncio.ensure_future(run())
        try:
            while not task.done():  # a client that leaves stops the build, even during a silent RUN
                await asyncio.wait([task], timeout=0.25)
                if request.transport is None or request.transport.is_closing():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                        await task
                    break
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
        finally:
            await asyncio.to_thread(shutil.rmtree, prep.work, True)  # when the build never began
        with contextlib.suppress(ConnectionError):
            await resp.write_eof()
        return resp

    async def prune(request: web.Request) -> web.Response:
        ids, space = await builder.prune()
        return json_response({"CachesDeleted": ids or None, "SpaceReclaimed": space})

    add(r, "POST", "/build", build)
    add(r, "POST", "/build/prune", prune)
    return r
