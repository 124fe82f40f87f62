"""Moving request and response bodies between aiohttp and the blocking image code."""
from __future__ import annotations

import asyncio
import json
import os
import tempfile

from aiohttp import web


async def spool_body(request: web.Request, directory: str) -> str:
    """Copy the request body to a temporary file (the caller removes it)."""
    os.makedirs(directory, exist_ok=True)
    fd, path = tempfile.mkstemp(dir=directory, prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            while chunk := await request.content.read(1 << 20):
                await asyncio.to_thread(f.write, chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path


async def send_file(request: web.Request, path: str, content_type: str) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    await resp.prepare(request)
    with open(path, "rb") as f:
        while chunk := await asyncio.to_thread(f.read, 1 << 20):
            await resp.write(chunk)
    await resp.write_eof()
    return resp


async def json_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    return resp


async def write_json_line(resp: web.StreamResponse, obj: dict) -> None:
    await resp.write(json.dumps(obj).encode() + b"\r\n")
