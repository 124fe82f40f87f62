"""Blocking file work in threads of its own, bridged to the event loop: ``in_thread``, a producer's
bytes as an async iterator (``ByteStream``) and an async reader read from a thread (``BlockingReader``)."""
from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

_CHUNK = 1 << 20


async def in_thread(fn: Callable, *args):
    """``fn(*args)`` in a thread of its own (a slow client must not hold a shared worker).

    A cancelled caller still waits for the thread, so nothing it uses (a mount) goes while it runs.
    """
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def settle(result, exc) -> None:
        if not fut.done():
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, e)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="berth-files", daemon=True).start()
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        while not fut.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(fut)
        if not fut.cancelled():
            fut.exception()  # retrieved: the cancellation is what the caller gets
        raise


class _Closed(Exception):
    pass


class ByteStream:
    """What a blocking ``produce(write)`` writes in a worker thread, as an async iterator of chunks.

    At most a few chunks wait in memory; ``aclose`` stops the producer early.
    """

    def __init__(self, produce: Callable[[Callable[[bytes], None]], None]) -> None:
        self._produce = produce
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=8)
        self._closed = False
        self._buf = bytearray()
        self._task: asyncio.Future | None = None

    def start(self) -> "ByteStream":
        self._task = asyncio.ensure_future(in_thread(self._run))
        return self

    def _put(self, item) -> None:
        if self._closed:
            raise _Closed()
        asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop).result()

    def _write(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) >= _CHUNK:
            chunk = bytes(self._buf)
            self._buf.clear()
            self._put(chunk)

    def _run(self) -> None:
        try:
            self._produce(self._write)
            if self._buf:
                self._put(bytes(self._buf))
            self._put(None)
        except _Closed:
            pass
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            with contextlib.suppress(_Closed):
                self._put(e)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        self._closed = True
        while self._task is not None and not self._task.done():
            while not self._queue.empty():
                self._queue.get_nowait()
            await asyncio.wait([self._task], timeout=1)


class BlockingReader:
    """``read(n)`` for a worker thread over an async ``read(n)`` running on the event loop."""

    def __init__(self, aread: Callable[[int], Awaitable[bytes]], loop: asyncio.AbstractEventLoop) -> None:
        self._aread, self._loop = aread, loop

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = []
            while chunk := self.read(_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        if n == 0:
            return b""
        return asyncio.run_coroutine_threadsafe(self._aread(n), self._loop).result()
