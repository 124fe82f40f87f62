"""/containers/*: create, list, inspect, start, stop, kill, restart, wait, remove, logs, attach, prune."""
from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from berth.api.attach import MUX, RAW, detach_sequence, finish, pump
from berth.api.hijack import hijack
from berth.api.middleware import json_body, json_response, qbool, qint
from berth.api.routes import add
from berth.api.serialize import containers as ser
from berth.api.serialize import networks as net_ser
from berth.errors import InvalidArgument
from berth.runtime import logs as logfile
from berth.runtime.stdio import STDERR, STDOUT, frame
from berth.services.containers import LIST_FILTERS
from berth.services.health import health_json
from berth.services.images import familiar
from berth.types import filters as flt
from berth.types.container import Container



def routes(app: web.Application) -> list:
    containers = app["containers"]
    lifecycle = app["lifecycle"]
    health = app["health"]
    networks = app["networks"]
    sandboxes = app["sandboxes"]
    r: list = []

    def paths(c: Container) -> dict[str, str]:
        d = containers.dir(c.id)
        return {"resolv": f"{d}/resolv.conf", "hostname": f"{d}/hostname", "hosts": f"{d}/hosts",
                "log": containers.log_path(c.id), "rootfs": containers.rootfs(c.id), "upper": f"{d}/upper",
                "work": f"{d}/work", "sandbox": sandboxes.ns_path(c.id), "volumes": app["volumes"].root}

    def image_name(c: Container) -> str:
        return c.spec.image

    async def create(request: web.Request) -> web.Response:
        body = await json_body(request)
        spec = ser.spec_from_create(body)
        c, warnings = await containers.create(spec, request.query.get("name"), net_ser.endpoints_from_create(body))
        return json_response({"Id": c.id, "Warnings": warnings}, status=201)

    async def list_containers(request: web.Request) -> web.Response:
        f = flt.parse(request.query.get("filters"), LIST_FILTERS)
        size = qbool(request, "size")
        found = containers.list(qbool(request, "all"), qint(request, "limit", -1) or -1, f)
        return json_response([ser.list_item(c, image_name(c), containers.size(c) if size else None,
                                            health=health_json(health.get(c.id)),
                                            attached=networks.attachments(c.id),
                                            volumes_root=app["volumes"].root) for c in found])

    async def inspect(request: web.Request) -> web.Response:
        c = containers.get(request.match_info["id"])
        size = containers.size(c) if qbool(request, "size") else None
        return json_response(ser.inspect(c, paths(c), size, health_json(health.get(c.id)),
                                         networks.attachments(c.id)))

    async def start(request: web.Request) -> web.Response:
        await lifecycle.start(request.match_info["id"])
        return web.Response(status=204)

    async def stop(request: web.Request) -> web.Response:
        await lifecycle.stop(request.match_info["id"], qint(request, "t"), request.query.get("signal"))
        return web.Response(status=204)

    async def kill(request: web.Request) -> web.Response:
        await lifecycle.kill(request.match_info["id"], request.query.get("signal") or "KILL")
        return web.Response(status=204)

    async def restart(request: web.Request) -> web.Response:
        await lifecycle.restart(request.match_info["id"], qint(request, "t"), request.query.get("signal"))
        return web.Response(status=204)

    async def pause(request: web.Request) -> web.Response:
        await lifecycle.pause(request.match_info["id"], True)
        return web.Response(status=204)

    async def unpause(request: web.Request) -> web.Response:
        await lifecycle.pause(request.match_info["id"], False)
        return web.Response(status=204)

    async def rename(request: web.Request) -> web.Response:
        await containers.rename(request.match_info["id"], request.query.get("name", ""))
        return web.Response(status=204)

    async def resize(request: web.Request) -> web.Response:
        await lifecycle.resize(request.match_info["id"], qint(request, "h", 0) or 0, qint(request, "w", 0) or 0)
        return web.Response(status=200)

    async def update(request: web.Request) -> web.Response:
        await lifecycle.update(request.match_info["id"], ser.update_changes(await json_body(request)))
        return json_response({"Warnings": []})

    async def wait(request: web.Request) -> web.StreamResponse:
        waiting = lifecycle.wait(request.match_info["id"], request.query.get("condition", ""))
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            await resp.prepare(request)  # registered before the headers go out
        except BaseException:
            waiting.close()
            raise
        code, error = await waiting
        with contextlib.suppress(ConnectionError):  # the client may have gone meanwhile
            await resp.write(ser_json({"StatusCode": code, "Error": {"Message": error} if error else None}))
            await resp.write_eof()
        return resp

    async def remove(request: web.Request) -> web.Response:
        ref = request.match_info["id"]
        volumes = qbool(request, "v")
        if qbool(request, "force"):
            await lifecycle.force_remove(ref, volumes)
        else:
            await containers.remove(containers.get(ref), volumes)
        return web.Response(status=204)

    async def prune(request: web.Request) -> web.Response:
        f = flt.parse(request.query.get("filters"), {"label", "until"})
        deleted, reclaimed = [], 0
        for c in containers.list(True, -1, {"label": f["label"]} if "label" in f else {}):
            if c.state.running:
                continue
            reclaimed += containers.size(c)[0]
            await containers.remove(c)
            deleted.append(c.id)
        return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    async def logs(request: web.Request) -> web.StreamResponse:
        c = containers.get(request.match_info["id"])
        q = logfile.LogQuery(
            stdout=qbool(request, "stdout"), stderr=qbool(request, "stderr"),
            since=_float(request.query.get("since")), until=_float(request.query.get("until")),
            tail=_tail(request.query.get("tail")), follow=qbool(request, "follow"))
        if not (q.stdout or q.stderr):
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        stamps = qbool(request, "timestamps")
        resp = web.StreamResponse(headers={"Content-Type": RAW if c.spec.tty else MUX})
        await resp.prepare(request)
        path = containers.log_path(c.id)

        async def emit(e: logfile.LogEntry) -> None:
            data = (e.time.encode() + b" " + e.data) if stamps else e.data
            await resp.write(data if c.spec.tty else frame(STDERR if e.stream == "stderr" else STDOUT, data))

        live = logfile.open_live(path)  # held: a removal meanwhile loses nothing of what was written
        try:
            for e in logfile.read_entries(path, q, live):
                await emit(e)
            if q.follow and c.state.running:
                async for e in logfile.follow(path, q, lambda: lifecycle.is_running(c.id), live=live):
                    await emit(e)
            await resp.write_eof()
        except ConnectionError:
            pass  # the client stopped reading (logs -f interrupted): nothing to report
        finally:
            if live is not None:
                live.close()
        return resp

    async def attach(request: web.Request) -> web.StreamResponse:
        ref = request.match_info["id"]
        c = containers.get(ref)
        want = {STDOUT: qbool(request, "stdout"), STDERR: qbool(request, "stderr")}
        use_stdin = qbool(request, "stdin")
        detach = detach_sequence(request.query.get("detachKeys"))
        session = await lifecycle.attach(ref, use_stdin) if qbool(request, "stream") else None
        resp, inp = await hijack(request, RAW if c.spec.tty else MUX)

        def pack(stream: int, data: bytes) -> bytes:
            return data if c.spec.tty else frame(stream, data)

        if qbool(request, "logs"):
            for e in logfile.read_entries(containers.log_path(c.id), logfile.LogQuery()):
                s = STDERR if e.stream == "stderr" else STDOUT
                if want[s]:
                    await resp.write(pack(s, e.data))
        if session is None:
            return resp
        try:
            await pump(resp, inp, session, c.spec.tty, want, use_stdin, detach if c.spec.tty else b"")
        finally:
            lifecycle.detach_pending(c.id, session)
        await finish(resp)
        return resp

    async def attach_ws(request: web.Request) -> web.WebSocketResponse:
        """Attach over a websocket: output as binary messages (no framing), messages in go to stdin."""
        ref = request.match_info["id"]
        c = containers.get(ref)
        use_stdin = qbool(request, "stdin")
        want = {STDOUT: qbool(request, "stdout"), STDERR: qbool(request, "stderr")}
        session = await lifecycle.attach(ref, use_stdin)
        ws = web.WebSocketResponse()
        await ws.prepare(request)

        async def stdin() -> None:
            await session.ready.wait()
            async for msg in ws:
                if use_stdin and msg.type in (web.WSMsgType.BINARY, web.WSMsgType.TEXT):
                    session.send(msg.data if isinstance(msg.data, bytes) else msg.data.encode())
            if use_stdin:
                session.close_stdin()

        task = asyncio.ensure_future(stdin())
        try:
            async for stream, data in session.frames():
                if want.get(stream):
                    await ws.send_bytes(data)
        except ConnectionError:
            pass
        finally:
            task.cancel()
            session.close()
            lifecycle.detach_pending(c.id, session)
        await ws.close()
        return ws

    add(r, "GET", "/containers/{id}/attach/ws", attach_ws)
    add(r, "POST", "/containers/create", create)
    add(r, "GET", "/containers/json", list_containers)
    add(r, "POST", "/containers/prune", prune)
    add(r, "GET", "/containers/{id}/json", inspect)
    add(r, "POST", "/containers/{id}/start", start)
    add(r, "POST", "/containers/{id}/stop", stop)
    add(r, "POST", "/containers/{id}/kill", kill)
    add(r, "POST", "/containers/{id}/restart", restart)
    add(r, "POST", "/containers/{id}/wait", wait)
    add(r, "POST", "/containers/{id}/resize", resize)
    add(r, "POST", "/containers/{id}/update", update)
    add(r, "POST", "/containers/{id}/pause", pause)
    add(r, "POST", "/containers/{id}/unpause", unpause)
    add(r, "POST", "/containers/{id}/rename", rename)
    add(r, "GET", "/containers/{id}/logs", logs)
    add(r, "POST", "/containers/{id}/attach", attach)
    add(r, "DELETE", "/containers/{id}", remove)
    return r


def ser_json(obj) -> bytes:
    import json
    return json.dumps(obj).encode() + b"\n"


def _float(v: str | None) -> float:
    if not v:
        return 0.0
    try:
        return float(v)
    except ValueError:
        raise InvalidArgument(f"invalid timestamp: {v!r}") from None


def _tail(v: str | None) -> int:
    if v in (None, "", "all"):
        return -1
    try:
        return int(v)
    except ValueError:
        raise InvalidArgument(f"invalid value for tail: {v!r}") from None


def familiar_name(key: str) -> str:
    return familiar(key)
