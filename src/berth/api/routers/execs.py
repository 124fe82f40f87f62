"""/containers/{id}/exec and /exec/{id}/*: create, start (detached or hijacked), inspect, resize."""
from __future__ import annotations

from aiohttp import web

from berth.api.attach import MUX, RAW, detach_sequence, finish, pump
from berth.api.hijack import hijack
from berth.api.middleware import json_body, json_response, qint
from berth.api.routes import add
from berth.api.serialize.containers import console_size
from berth.errors import BerthError, InvalidArgument
from berth.runtime.stdio import STDERR, STDOUT, frame
from berth.services.exec import ExecConfig


def _config(body: dict) -> ExecConfig:
    cmd = body.get("Cmd")
    if isinstance(cmd, str):
        cmd = [cmd]
    if not isinstance(cmd, list) or not all(isinstance(x, str) for x in cmd):
        raise InvalidArgument("invalid type for Cmd: expected an array of strings")
    env = body.get("Env") or []
    if not isinstance(env, list) or not all(isinstance(x, str) for x in env):
        raise InvalidArgument("invalid type for Env: expected an array of strings")
    for key in ("User", "WorkingDir", "DetachKeys"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise InvalidArgument(f"invalid type for {key}: expected string")
    if body.get("DetachKeys"):
        detach_sequence(body["DetachKeys"])
    return ExecConfig(cmd=cmd, env=env, user=body.get("User") or "", working_dir=body.get("WorkingDir") or "",
                      tty=bool(body.get("Tty")), attach_stdin=bool(body.get("AttachStdin")),
                      attach_stdout=body.get("AttachStdout", True) is not False,
                      attach_stderr=body.get("AttachStderr", True) is not False,
                      privileged=bool(body.get("Privileged")), detach_keys=body.get("DetachKeys") or "")


def routes(app: web.Application) -> list:
    execs = app["execs"]
    r: list = []

    async def create(request: web.Request) -> web.Response:
        e = execs.create(request.match_info["id"], _config(await json_body(request)))
        return json_response({"Id": e.id}, status=201)

    async def start(request: web.Request) -> web.StreamResponse:
        body = await json_body(request, required=False)
        e = execs.get(request.match_info["id"])
        tty = body.get("Tty")
        detach = bool(body.get("Detach"))
        hijacked: dict = {}

        async def answer(session) -> None:
            if session is not None:
                hijacked["resp"], hijacked["inp"] = await hijack(request, RAW if e.config.tty else MUX)

        try:
            session = await execs.start(e.id, detach, None if tty is None else bool(tty), answer,
                                        console_size(body.get("ConsoleSize")))
        except BerthError as err:
            if "resp" not in hijacked:
                raise
            # The stream has begun: the error goes into it, as dockerd writes it, and the stream ends.
            text = (err.message + "\r\n").encode()
            await hijacked["resp"].write(text if e.config.tty else frame(STDOUT, text))
            await finish(hijacked["resp"])
            return hijacked["resp"]
        if session is None:
            return web.Response(status=200)
        cfg = e.config
        resp, inp = hijacked["resp"], hijacked["inp"]
        want = {STDOUT: cfg.attach_stdout, STDERR: cfg.attach_stderr}
        keys = detach_sequence(cfg.detach_keys) if cfg.tty else b""  # binary stdin passes untouched
        if not await pump(resp, inp, session, cfg.tty, want, cfg.attach_stdin, keys):
            await execs.wait(e.id)  # the exit code is known before the client sees the end
        await finish(resp)
        return resp

    async def inspect(request: web.Request) -> web.Response:
        e = execs.get(request.match_info["id"])
        cfg = e.config
        return json_response({
            "ID": e.id, "Running": e.running, "ExitCode": e.exit_code, "CanRemove": False,
            "ContainerID": e.container_id, "DetachKeys": cfg.detach_keys, "OpenStdin": cfg.attach_stdin,
            "OpenStdout": cfg.attach_stdout, "OpenStderr": cfg.attach_stderr, "Pid": e.pid,
            "ProcessConfig": {"tty": cfg.tty, "entrypoint": cfg.cmd[0], "arguments": cfg.cmd[1:],
                              "privileged": cfg.privileged, "user": cfg.user},
        })

    async def resize(request: web.Request) -> web.Response:
        await execs.resize(request.match_info["id"], qint(request, "h", 0) or 0, qint(request, "w", 0) or 0)
        return web.Response(status=200)

    add(r, "POST", "/containers/{id}/exec", create)
    add(r, "POST", "/exec/{id}/start", start)
    add(r, "GET", "/exec/{id}/json", inspect)
    add(r, "POST", "/exec/{id}/resize", resize)
    return r
