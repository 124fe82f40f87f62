"""Exec: more processes in a running container's namespaces and cgroup, each held by an exec shim."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
from dataclasses import dataclass, field

from berth.errors import Conflict, InvalidArgument, NotFound
from berth.runtime import shim as shimlib
from berth.runtime.spec import parse_user
from berth.services.lifecycle import AttachSession, Lifecycle
from berth.util.fs import atomic_write, read_text, remove_tree, resolve_in_root


@dataclass
class ExecConfig:
    cmd: list[str]
    env: list[str] = field(default_factory=list)
    user: str = ""
    working_dir: str = ""
    tty: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    privileged: bool = False
    detach_keys: str = ""


@dataclass
class ExecInstance:
    id: str
    container_id: str
    config: ExecConfig
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0


class ExecService:
    def __init__(self, lifecycle: Lifecycle, exec_root: str) -> None:
        self.lifecycle = lifecycle
        self.containers = lifecycle.containers
        self.exec_root = exec_root
        self._execs: dict[str, ExecInstance] = {}
        self._tasks: set[asyncio.Task] = set()
        lifecycle.on_exit.append(self.forget_container)

    def create(self, ref: str, cfg: ExecConfig) -> ExecInstance:
        if not cfg.cmd:
            raise InvalidArgument("No exec command specified")
        c = self.containers.get(ref)
        if c.state.status == "paused":
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if c.state.status != "running":
            raise Conflict(f"Container {c.id} is not running")
        e = ExecInstance(secrets.token_hex(32), c.id, cfg)
        self._execs[e.id] = e
        self.containers.emit(c, "exec_create: " + " ".join(cfg.cmd), execID=e.id)
        return e

    def get(self, exec_id: str) -> ExecInstance:
        e = self._execs.get(exec_id)
        if e is None:
            raise NotFound.exec_instance(exec_id)
        return e

    def paths(self, exec_id: str) -> shimlib.ShimPaths:
        return shimlib.ShimPaths.of_exec(self.exec_root, exec_id)

    async def start(self, exec_id: str, detach: bool, tty: bool | None = None,
                    before_run=None, console_size: list[int] | None = None) -> AttachSession | None:
        """Run the exec; unless ``detach``, the returned session carries its output (and stdin).

        ``before_run(session)`` is awaited once everything is ready but the process has not
        started: the API answers the client's hijack there, so no output can overtake the
        101 answer (docker-py drops bytes that arrive with the response head).
        """
        e = self.get(exec_id)
        if e.started:
            raise Conflict(f"Error: Exec command {exec_id} has already run")
        c = self.containers.get(e.container_id)
        if c.state.status != "running":
            raise Conflict(f"Container {c.id} is not running")
        if tty is not None:
            e.config.tty = tty
        e.started = True
        paths = self.paths(e.id)
        process = await asyncio.to_thread(self._process_json, c, e, paths, console_size)
        runc = self.lifecycle.runc(c)
        await self.lifecycle.launcher.exec(c.id, paths, runc.binary, process, e.config.attach_stdin, e.config.tty)
        session = None
        if not detach:
            conn = await shimlib.connect(paths, b"A" if e.config.attach_stdin else b"a")
            session = AttachSession()
            if conn:
                session.reader, session.writer = conn
            session.ready.set()
        watch = await shimlib.connect(paths, b"w")
        try:
            if before_run is not None:
                await before_run(session)
            e.pid = await shimlib.start_exec(paths)
        except Exception:
            e.exit_code = 126
            if session:
                session.close()
            if watch:
                watch[1].close()
            await asyncio.to_thread(remove_tree, paths.bundle)
            raise
        e.running = True
        self.containers.emit(c, "exec_start: " + " ".join(e.config.cmd), execID=e.id)
        task = asyncio.ensure_future(self._follow(e, watch, c))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return session

    def _process_json(self, c, e: ExecInstance, paths: shimlib.ShimPaths, console_size: list[int] | None) -> str:
        """The container's own process settings (from its bundle) with the exec's overrides."""
        os.makedirs(paths.bundle, exist_ok=True)
        with open(os.path.join(self.lifecycle.paths(c.id).bundle, "config.json")) as f:
            base = json.load(f)
        process = dict(base["process"])
        rootfs = self.containers.rootfs(c.id)
        user_spec = e.config.user or c.spec.user
        user = parse_user(user_spec, read_text(resolve_in_root(rootfs, "/etc/passwd")),
                          read_text(resolve_in_root(rootfs, "/etc/group")))
        env = list(process.get("env", []))
        for item in e.config.env:
            key = item.split("=", 1)[0]
            env = [x for x in env if x.split("=", 1)[0] != key] + [item]
        if e.config.tty and not any(x.startswith("TERM=") for x in env):
            env.append("TERM=xterm")
        process.update(args=e.config.cmd, env=env, terminal=e.config.tty, cwd=e.config.working_dir or process["cwd"],
                       user={"uid": user.uid, "gid": user.gid,
                             "additionalGids": list(dict.fromkeys([user.gid, *user.additional_gids]))})
        process.pop("consoleSize", None)
        if e.config.tty and console_size:  # runc sizes the terminal before the process starts
            process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
        if e.config.privileged:
            caps = sorted(self.lifecycle.facts.bounding_caps)
            process["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
        path = os.path.join(paths.bundle, "process.json")
        atomic_write(path, json.dumps(process).encode())
        return path

    async def _follow(self, e: ExecInstance, watch, c) -> None:
        if watch is not None:
            try:
                await watch[0].read()
            except ConnectionError:
                pass
            watch[1].close()
        paths = self.paths(e.id)
        code = paths.read_exit()
        e.exit_code = 137 if code is None else code
        e.running = False
        self.containers.emit(c, "exec_die", execID=e.id, exitCode=str(e.exit_code))
        await asyncio.to_thread(remove_tree, paths.bundle)
        await self.lifecycle.notifier.changed()

    async def wait(self, exec_id: str) -> int:
        e = self.get(exec_id)
        await self.lifecycle.notifier.wait_for(lambda: e.started and not e.running)
        return e.exit_code if e.exit_code is not None else 0

    async def resize(self, exec_id: str, rows: int, cols: int) -> None:
        e = self.get(exec_id)
        if not e.config.tty:
            raise InvalidArgument(f"exec {exec_id} has no TTY to resize")
        if not await shimlib.resize(self.paths(e.id), rows, cols):
            raise Conflict(f"exec {exec_id} is not running")

    def forget(self, exec_id: str) -> None:
        self._execs.pop(exec_id, None)

    async def forget_container(self, cid: str) -> None:
        """An exited container's execs are gone with it (as Docker drops them)."""
        for key in [k for k, e in self._execs.items() if e.container_id == cid]:
            del self._execs[key]
