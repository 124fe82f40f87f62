"""Docker's ``Upgrade: tcp`` hijack on aiohttp: a raw, two-way stream over the HTTP connection.

After the 101 (or 200 for clients that don't ask to upgrade) response, bytes from
the client are handed to a ``HijackedInput`` instead of aiohttp's HTTP parser.
"""
from __future__ import annotations

import asyncio
import select

from aiohttp import web


class HijackedInput:
    """Receives the client's bytes (stdin) after the hijack; aiohttp calls feed_data/feed_eof."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = asyncio.Event()  # the client sent EOF (it may still read)
        self.gone = asyncio.Event()    # the client is gone: nothing more can reach it

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(None)
        self.closed.set()

    async def read(self) -> bytes | None:
        """The next chunk from the client; None at its EOF."""
        return await self.queue.get()


async def hijack(request: web.Request, content_type: str) -> tuple[web.StreamResponse, HijackedInput]:
    """Answer with 101 UPGRADED (or 200 without an Upgrade header) and take over the connection."""
    upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
    if upgrade:
        resp = web.StreamResponse(status=101, reason="UPGRADED", headers={
            "Connection": "Upgrade", "Upgrade": "tcp", "Content-Type": content_type})
    else:
        resp = web.StreamResponse(status=200, headers={"Content-Type": content_type})
    resp.force_close()
    await resp.prepare(request)
    inp = HijackedInput()
    proto = request.protocol
    proto.set_parser(inp)  # type: ignore[union-attr]
    if request.transport is not None:
        request.transport.set_protocol(_HalfClose(proto, inp, request.transport))
    return resp, inp


class _HalfClose(asyncio.Protocol):
    """Delegates to aiohttp's protocol, but keeps our half open when the client closes its own.

    aiohttp's handler lets the transport close on EOF; a client that is done
    sending stdin (the docker CLI without -i closes at once) still reads output.
    """

    def __init__(self, inner, inp: HijackedInput, transport: asyncio.Transport) -> None:
        self.inner = inner
        self.inp = inp
        self.transport = transport
        self.watch: asyncio.Task | None = None

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool:
        self.inp.feed_eof()
        self.watch = asyncio.ensure_future(self._watch_hangup())
        return True

    async def _watch_hangup(self) -> None:
        """After EOF, a half-close and a full close look alike until we write: poll for the
        hang-up (Unix sockets report it), so a silent container does not hold a gone client."""
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLHUP | select.POLLERR)
        while not self.inp.gone.is_set():
            try:
                if poller.poll(0):
                    self.inp.gone.set()
                    return
            except (OSError, ValueError):
                return
            await asyncio.sleep(0.5)

    def connection_lost(self, exc: Exception | None) -> None:
        self.inp.gone.set()
        if self.watch is not None:
            self.watch.cancel()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()
