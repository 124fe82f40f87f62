"""Copying between a hijacked client connection and an attach session (containers and execs)."""
from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from berth.api.hijack import HijackedInput
from berth.types.detach import detach_sequence  # noqa: F401 - re-exported for the routers
from berth.runtime.stdio import frame

RAW = "application/vnd.docker.raw-stream"
MUX = "application/vnd.docker.multiplexed-stream"
async def pump(resp: web.StreamResponse, inp: HijackedInput, session, tty: bool, want: dict[int, bool],
               use_stdin: bool, detach: bytes) -> bool:
    """Output frames to the client until the process ends; its bytes to stdin until it leaves.

    The client typing the detach sequence ends the attach, the process keeps running:
    then this returns True. The caller ends the response (``finish``).
    """
    detached = asyncio.Event()

    async def stdin() -> None:
        await session.ready.wait()
        matched = 0
        while (data := await inp.read()) is not None:
            if not use_stdin:
                continue
            out = bytearray()
            for b in data:
                if detach and b == detach[matched]:
                    matched += 1
                    if matched == len(detach):
                        session.send(bytes(out))
                        detached.set()
                        return
                    continue
                if matched:
                    out += detach[:matched]
                    matched = 0
                out.append(b)
            session.send(bytes(out))
        if use_stdin:
            session.close_stdin()

    async def output() -> None:
        async for stream, data in session.frames():
            if want.get(stream):
                await resp.write(data if tty else frame(stream, data))

    stdin_task = asyncio.ensure_future(stdin())
    out_task = asyncio.ensure_future(output())
    stop_task = asyncio.ensure_future(detached.wait())
    gone_task = asyncio.ensure_future(inp.gone.wait())  # the client left: let go of the process
    try:
        await asyncio.wait({out_task, stop_task, gone_task}, return_when=asyncio.FIRST_COMPLETED)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        for t in (stdin_task, out_task, stop_task, gone_task):
            t.cancel()
        session.close()
    return detached.is_set()


async def finish(resp: web.StreamResponse) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await resp.write_eof()
