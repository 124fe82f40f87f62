"""Pull and push (streamed progress), /auth, /distribution/{name}/json and /images/search."""
from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from berth.api.middleware import json_body, json_response
from berth.api.routes import add
from berth.api.serialize import progress as ser
from berth.api.streams import json_stream, write_json_line
from berth.errors import BerthError, InvalidArgument, SystemError_


async def stream_progress(request: web.Request, work) -> web.StreamResponse:
    """Run ``work(emit)``, streaming what it emits; a failure before any output is an HTTP error.

    A client that goes away cancels the work.
    """
    queue: asyncio.Queue = asyncio.Queue()
    task = asyncio.ensure_future(work(queue.put_nowait))
    task.add_done_callback(lambda _: queue.put_nowait(None))
    resp = None
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), 0.25)
            except asyncio.TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    break  # the client went away: the work stops (below)
                continue
            if item is None:
                break
            if resp is None:
                resp = await json_stream(request)
            await write_json_line(resp, ser.message(item))
        if not task.done():
            return resp or web.Response(status=499)
        err = task.exception() if not task.cancelled() else SystemError_("the operation was cancelled")
        if err is not None:
            if resp is None:
                raise err
            text = err.message if isinstance(err, BerthError) else f"internal error: {err}"
            await write_json_line(resp, ser.error(text))
        if resp is None:
            resp = await json_stream(request)
        await resp.write_eof()
        return resp
    except ConnectionError:
        return resp or web.Response(status=499)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def pull(request: web.Request) -> web.StreamResponse:
    dist = request.app["distribution"]
    creds = ser.registry_auth(request.headers.get("X-Registry-Auth"))
    q = request.query
    return await stream_progress(request, lambda emit: dist.pull(q["fromImage"], q.get("tag", ""), creds, emit,
                                                                 q.get("platform", "")))


def routes(app: web.Application) -> list:
    dist = app["distribution"]
    r: list = []

    async def push(request: web.Request) -> web.StreamResponse:
        creds = ser.registry_auth(request.headers.get("X-Registry-Auth"))
        name, tag = request.match_info["name"], request.query.get("tag", "")
        return await stream_progress(request, lambda emit: dist.push(name, tag, creds, emit))

    async def auth(request: web.Request) -> web.Response:
        body = await json_body(request)
        creds = ser.credentials(body)
        status = await dist.login(str(body.get("serveraddress") or ""), creds)
        return json_response({"Status": status, "IdentityToken": ""})

    async def inspect(request: web.Request) -> web.Response:
        creds = ser.registry_auth(request.headers.get("X-Registry-Auth"))
        return json_response(await dist.inspect(request.match_info["name"], creds))

    async def search(request: web.Request) -> web.Response:
        term = request.query.get("term", "")
        if not term:
            raise InvalidArgument("term is required")
        try:
            limit = int(request.query.get("limit") or 25)
        except ValueError:
            raise InvalidArgument("invalid limit") from None
        if not 1 <= limit <= 100:
            raise InvalidArgument(f"limit {limit} is outside the range of [1, 100]")
        creds = ser.registry_auth(request.headers.get("X-Registry-Auth"))
        return json_response(await dist.search(term, limit, creds))

    add(r, "POST", "/auth", auth)
    add(r, "GET", "/images/search", search)
    add(r, "POST", "/images/{name:.+}/push", push)
    add(r, "GET", "/distribution/{name:.+}/json", inspect)
    return r



