"""Running containers: start, stop, kill, wait, attach, and following each one to its exit."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal as _signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from berth.errors import BerthError, Conflict, InvalidArgument, NotModified, SystemError_
from berth.runtime import shim as shimlib
from berth.runtime.logs import now_rfc3339, parse_time
from berth.runtime.runc import Runc
from berth.runtime.oom import oom_killed
from berth.runtime.limits import check as check_limits
from berth.runtime.spec import HostFacts, build_spec, cgroups_path, parse_user, resources
from berth.types.container import Container, ContainerState
from berth.util.fs import atomic_write, read_text, resolve_in_root
from berth.services.containers import ContainerService
from berth.services.notify import Notifier
from berth.services.restarts import RestartManager
from berth.services.sandboxes import Sandboxes
from berth.services.volumes import VolumeService


@dataclass
class AttachSession:
    """A connection to a container's output (and stdin); ``frames`` ends when the container exits."""

    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def frames(self) -> AsyncIterator[tuple[int, bytes]]:
        await self.ready.wait()
        if self.reader is None:
            return
        while (f := await shimlib.read_frame(self.reader)) is not None:
            yield f

    def send(self, data: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)

    def close_stdin(self) -> None:
        if self.writer is not None and self.writer.can_write_eof():
            try:
                self.writer.write_eof()
            except OSError:
                pass

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def host_facts() -> HostFacts:
    from berth.runtime.spec import ALL_CAPS
    bnd = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                bnd = int(line.split()[1], 16)
    caps = frozenset(name for bit, name in enumerate(_CAP_ORDER) if bnd >> bit & 1) & frozenset(ALL_CAPS)
    return HostFacts(caps, os.path.exists("/sys/fs/cgroup/cgroup.controllers"))


_CAP_ORDER = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]


def signal_number(sig: str | int | None, default: int = _signal.SIGKILL) -> int:
    """``SIGTERM``, ``TERM``, ``15`` → 15; InvalidArgument for unknown names."""
    if sig in (None, ""):
        return default
    s = str(sig).upper()
    if s.isdigit():
        n = int(s)
        if 0 < n < 65:
            return n
    else:
        name = s if s.startswith("SIG") else "SIG" + s
        if hasattr(_signal.Signals, name):
            return int(_signal.Signals[name])
    raise InvalidArgument(f"Invalid signal: {sig}")


class Lifecycle:
    def __init__(self, containers: ContainerService, runc_for: dict[str, Runc], launcher: shimlib.ShimLauncher,
                 exec_root: str, notifier: Notifier, log_defaults: dict[str, str], sandboxes: Sandboxes,
                 volumes: VolumeService) -> None:
        self.containers = containers
        self.sandboxes = sandboxes
        self.volumes = volumes
        self.runc_for = runc_for
        self.launcher = launcher
        self.exec_root = exec_root
        self.notifier = notifier
        self.log_defaults = log_defaults
        self.facts = host_facts()
        self._pending: dict[str, list[tuple[AttachSession, bytes]]] = {}
        self._monitors: dict[str, asyncio.Task] = {}
        self._exits: dict[str, int] = {}  # container → how many exits seen (for next-exit waits)
        self._locks: dict[str, asyncio.Lock] = {}
        self._restarting: dict[str, asyncio.Task] = {}
        self.restarts = RestartManager()
        self.on_exit: list = []   # async hooks(cid) after an exit was recorded
        self.on_start: list = []  # async hooks(container) after a start

    def _lock(self, cid: str) -> asyncio.Lock:
        return self._locks.setdefault(cid, asyncio.Lock())

    @property
    def runtime_root(self) -> str:
        return self.launcher.runtime_root

    def runc(self, c: Container) -> Runc:
        return self.runc_for.get(c.spec.runtime) or self.runc_for["runc"]

    def paths(self, cid: str) -> shimlib.ShimPaths:
        return shimlib.ShimPaths.of(self.exec_root, cid)

    # -- start --------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        c = self.containers.get(ref)
        async with self._lock(c.id):
            c = self.containers.refresh(c)
            if c.state.status in ("running", "paused", "restarting"):
                raise NotModified("container already started")
            if c.state.status == "removing":
                raise Conflict(f"container {c.id} is marked for removal and cannot be started")
            self.containers.index.update_state(c.id, manually_stopped=False)
            await self._start(c)

    async def start_on_boot(self, c: Container) -> None:
        """berthd starting up: bring back what the restart policy says should run."""
        if not c.state.running and self.restarts.start_on_boot(c):
            try:
                await self.start(c.id)
            except BerthError:
                pass  # recorded in the container's state

    async def _start(self, c: Container) -> None:
        paths = self.paths(c.id)
        runc = self.runc(c)
        try:
            netns, files = await self.sandboxes.setup(c)
            rootfs = await asyncio.to_thread(self._prepare_bundle, c, paths, netns, files)
        except (BerthError, OSError) as e:
            await self._failed_start(c, e, runc)
            if isinstance(e, OSError):
                raise SystemError_(f"failed to set up the container's mounts: {e}") from None
            raise
        try:
            opts = {**self.log_defaults, **c.spec.log_config.config}
            pid = await self.launcher.create(
                c.id, paths, runc.binary, self.containers.log_path(c.id), _size(opts.get("max-size", "0")),
                int(opts.get("max-file", "1")), c.spec.open_stdin, c.spec.tty)
        except SystemError_ as e:
            await self._failed_start(c, e, runc)
            raise
        watch = await shimlib.connect(paths, b"w")
        for session, mode in self._pending.pop(c.id, []):
            conn = await shimlib.connect(paths, mode)
            if conn:
                session.reader, session.writer = conn
            session.ready.set()
        try:
            await runc.start(c.id)
        except SystemError_ as e:
            await self._failed_start(c, e, runc)
            raise
        self.containers.index.update_state(c.id, status="running", pid=pid, exit_code=0, started_at=now_rfc3339(),
                                           error="", oom_killed=False)
        self._follow(c.id, watch)
        self.containers.emit(c, "start")
        for hook in self.on_start:
            await hook(c)
        await self.notifier.changed()
        del rootfs

    def _prepare_bundle(self, c: Container, paths: shimlib.ShimPaths, netns: str | None,
                        files: dict[str, str]) -> str:
        os.makedirs(paths.bundle, exist_ok=True)
        for stale in ("exit", "init.pid", "runc.log"):
            try:
                os.unlink(os.path.join(paths.bundle, stale))
            except FileNotFoundError:
                pass
        rootfs = self.containers.mount_rootfs(c)
        user = parse_user(c.spec.user, read_text(resolve_in_root(rootfs, "/etc/passwd")),
                          read_text(resolve_in_root(rootfs, "/etc/group")), c.spec.group_add)
        if c.spec.working_dir:
            wd = resolve_in_root(rootfs, c.spec.working_dir)
            if not os.path.isdir(wd):
                os.makedirs(wd, 0o755, exist_ok=True)
        spec = build_spec(c, rootfs, user, files, self.facts, netns, self.volumes.prepare(c, rootfs))
        atomic_write(os.path.join(paths.bundle, "config.json"), json.dumps(spec).encode())
        return rootfs

    async def _failed_start(self, c: Container, err: Exception, runc: Runc) -> None:
        await runc.delete(c.id)
        await asyncio.to_thread(self.containers.unmount_rootfs, c.id)
        await self.sandboxes.teardown(c.id)
        msg = str(err)
        code = 127 if "no such file" in msg or "not found" in msg else 126 if "permission denied" in msg else 128
        state = dataclasses.replace(c.state, status="created" if c.state.status == "created" else "exited",
                                    pid=0, exit_code=code, error=msg)
        self.containers.index.save_state(c.id, state)
        for session, _ in self._pending.pop(c.id, []):
            session.ready.set()
        await self.notifier.changed()
        if c.spec.auto_remove:
            await self.containers.remove(self.containers.refresh(c), volumes=True)

    # -- following a running container ----------------------------------------------
    def _follow(self, cid: str, watch) -> None:
        self._monitors[cid] = asyncio.ensure_future(self._monitor(cid, watch))

    async def _monitor(self, cid: str, watch) -> None:
        if watch is not None:
            reader, writer = watch
            try:
                await reader.read()
            except ConnectionError:
                pass
            writer.close()
        await self._handle_exit(cid)

    async def _handle_exit(self, cid: str) -> None:
        c = self.containers.index.get(cid)
        if c is None:
            return
        paths = self.paths(cid)
        code = paths.read_exit()
        error = ""
        if code is None:
            runc = self.runc(c)
            st = await runc.state(cid)
            if st and st.get("status") == "running":
                await runc.kill(cid, "KILL", all_processes=True)
            code, error = 137, "container monitor exited unexpectedly"
        oom = await asyncio.to_thread(oom_killed, cgroups_path(cid))  # before runc delete removes the cgroup
        await self.runc(c).delete(cid)
        await asyncio.to_thread(self.containers.unmount_rootfs, cid)
        await self.sandboxes.teardown(cid)
        self.volumes.release(c, {i for i, t in self._monitors.items() if i != cid})
        c = self.containers.index.get(cid) or c  # fresh: a stop may have come meanwhile
        state = dataclasses.replace(c.state, status="exited", pid=0, exit_code=code, finished_at=now_rfc3339(),
                                    error=error, oom_killed=oom)
        self.containers.index.save_state(cid, state)
        if oom:
            self.containers.emit(c, "oom")
        self.containers.emit(c, "die", exitCode=str(code))
        self._exits[cid] = self._exits.get(cid, 0) + 1
        self._monitors.pop(cid, None)
        c.state = state
        if self.restarts.should_restart(c, code):
            self._schedule_restart(c)
        await self.notifier.changed()
        if c.spec.auto_remove:
            try:
                await self.containers.remove(self.containers.refresh(c), volumes=True)
            except Exception:  # noqa: BLE001 - removed meanwhile
                pass
        for hook in self.on_exit:
            await hook(cid)

    def _schedule_restart(self, c: Container) -> None:
        ran_for = time.time() - parse_time(c.state.started_at) if c.state.started_at else 0.0
        delay = self.restarts.next_delay(c.id, ran_for)
        self.containers.index.update_state(c.id, status="restarting")
        self._restarting[c.id] = asyncio.ensure_future(self._restart_later(c.id, delay))

    async def _restart_later(self, cid: str, delay: float) -> None:
        await asyncio.sleep(delay)
        async with self._lock(cid):
            self._restarting.pop(cid, None)
            c = self.containers.index.get(cid)
            if c is None or c.state.status != "restarting":
                return
            if c.state.manually_stopped:
                self.containers.index.update_state(cid, status="exited")
                await self.notifier.changed()
                return
            c.state.restart_count += 1
            self.containers.index.update_state(cid, restart_count=c.state.restart_count)
            try:
                await self._start(c)
            except BerthError:
                pass  # _failed_start recorded why; the policy gives up here

    def _cancel_restart(self, cid: str) -> bool:
        """Stop a pending policy restart; True when there was one."""
        task = self._restarting.pop(cid, None)
        if task is None:
            return False
        task.cancel()
        self.containers.index.update_state(cid, status="exited")
        return True

    async def reattach(self, c: Container) -> None:
        """After a daemon restart: follow a container whose shim still runs, or record its exit now."""
        watch = None if self.paths(c.id).read_exit() is not None else await shimlib.connect(self.paths(c.id), b"w")
        if watch is None:
            await self._handle_exit(c.id)
        else:
            self._follow(c.id, watch)
            for hook in self.on_start:
                await hook(c)

    # -- pause / rename -------------------------------------------------------------
    async def pause(self, ref: str, pause: bool) -> None:
        """Freeze (or thaw) every process of a running container."""
        c = self.containers.get(ref)
        async with self._lock(c.id):
            c = self.containers.refresh(c)
            if not c.state.running:
                raise Conflict(f"Container {c.id} is not running")
            if pause and c.state.status == "paused":
                raise Conflict(f"Container {c.id} is already paused")
            if not pause and c.state.status != "paused":
                raise Conflict(f"Container {c.id} is not paused")
            runc = self.runc(c)
            await (runc.pause(c.id) if pause else runc.resume(c.id))
            c.state.status = "paused" if pause else "running"
            self.containers.index.save_state(c.id, c.state)
        self.containers.emit(c, "pause" if pause else "unpause")
        await self.notifier.changed()

    # -- update ----------------------------------------------------------------------
    async def update(self, ref: str, changes: dict) -> None:
        """``docker update``: resources (applied at once to a running container) and restart policy."""
        c = self.containers.get(ref)
        async with self._lock(c.id):
            c = self.containers.refresh(c)
            new = check_limits(dataclasses.replace(c.spec, **changes))
            if new.auto_remove and new.restart_policy.name not in ("", "no"):
                raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
            if c.state.running:
                path = os.path.join(self.paths(c.id).bundle, "resources.json")
                atomic_write(path, json.dumps(resources(Container(c.id, c.name, c.image_id, c.created, new,
                                                                  c.state))).encode())
                await self.runc(c).update(c.id, path)
            self.containers.index.update_spec(c.id, new)
        self.containers.emit(c, "update")

    # -- stop / kill / restart -----------------------------------------------------
    async def kill(self, ref: str, sig: str | None) -> None:
        num = signal_number(sig)
        c = self.containers.get(ref)
        await self._mark_stopped(c.id)  # from here on, an exit does not schedule a policy restart
        if self._cancel_restart(c.id):
            return
        async with self._lock(c.id):  # a policy restart in flight finishes first
            c = self.containers.refresh(c)
        if not c.state.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        exits = self._exits.get(c.id, 0)
        await self.runc(c).kill(c.id, str(num), all_processes=num == _signal.SIGKILL)
        self.containers.emit(c, "kill", signal=str(num))
        if c.state.status == "paused" and num == _signal.SIGKILL:
            await self.runc(c).resume(c.id)  # frozen processes die only once thawed
        if num == _signal.SIGKILL:  # as dockerd: a kill with SIGKILL returns once the container has stopped
            await self.notifier.wait_for(lambda: self._exits.get(c.id, 0) > exits, 10)

    async def _mark_stopped(self, cid: str) -> None:
        """Stopped by hand: restart policies leave it alone (until berthd restarts, for ``always``)."""
        self.containers.index.update_state(cid, manually_stopped=True)
        self.restarts.forget(cid)

    async def stop(self, ref: str, timeout: int | None, sig: str | None = None) -> None:
        c = self.containers.get(ref)
        await self._mark_stopped(c.id)
        if self._cancel_restart(c.id):
            self.containers.emit(c, "stop")
            await self.notifier.changed()
            return
        async with self._lock(c.id):  # a policy restart in flight finishes first
            c = self.containers.refresh(c)
        if not c.state.running:
            raise NotModified("container already stopped")
        await self._stop(c, timeout, sig)

    async def _stop(self, c: Container, timeout: int | None, sig: str | None = None) -> None:
        t = timeout if timeout is not None else (c.spec.stop_timeout if c.spec.stop_timeout is not None else 10)
        num = signal_number(sig or c.spec.stop_signal or "SIGTERM")
        exits = self._exits.get(c.id, 0)
        runc = self.runc(c)
        if c.state.status == "paused":
            await runc.resume(c.id)
        await runc.kill(c.id, str(num))
        self.containers.emit(c, "kill", signal=str(num))
        if not await self.notifier.wait_for(lambda: self._exits.get(c.id, 0) > exits, None if t < 0 else t):
            await runc.kill(c.id, "KILL", all_processes=True)
            self.containers.emit(c, "kill", signal=str(int(_signal.SIGKILL)))
            await self.notifier.wait_for(lambda: self._exits.get(c.id, 0) > exits, 30)
        self.containers.emit(c, "stop")

    async def restart(self, ref: str, timeout: int | None, sig: str | None = None) -> None:
        c = self.containers.get(ref)
        await self._mark_stopped(c.id)  # the policy must not race this restart; _start clears it
        self._cancel_restart(c.id)
        c = self.containers.refresh(c)
        if c.state.running:
            await self._stop(c, timeout, sig)
        async with self._lock(c.id):
            c = self.containers.refresh(c)
            if not c.state.running:
                self.containers.index.update_state(c.id, manually_stopped=False)
                await self._start(c)
        self.containers.emit(c, "restart")

    async def force_remove(self, ref: str, volumes: bool = False) -> None:
        c = self.containers.get(ref)
        await self._mark_stopped(c.id)
        self._cancel_restart(c.id)
        c = self.containers.refresh(c)
        if c.state.running:
            self.containers.emit(c, "kill", signal=str(int(_signal.SIGKILL)))
            exits = self._exits.get(c.id, 0)
            await self.runc(c).kill(c.id, "KILL", all_processes=True)
            await self.notifier.wait_for(lambda: self._exits.get(c.id, 0) > exits, 30)
            if self._monitors.get(c.id):
                await asyncio.wait([self._monitors[c.id]], timeout=10)
        c = self.containers.index.get(c.id)
        if c is not None:
            await self.containers.remove(c, volumes)

    # -- wait --------------------------------------------------------------------
    def wait(self, ref: str, condition: str):
        """Docker's wait conditions: not-running (default), next-exit, removed.

        Registers the wait at once (so an exit right after this call counts) and
        returns a coroutine that ends with (exit code, error).
        """
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition}")
        c = self.containers.get(ref)
        exits = self._exits.get(c.id, 0)
        last = {"c": c}

        def done() -> bool:
            fresh = self.containers.index.get(c.id)
            if fresh is not None:
                last["c"] = fresh
            if condition == "removed":
                return fresh is None
            if condition == "next-exit":
                return self._exits.get(c.id, 0) > exits or fresh is None
            return fresh is None or not fresh.state.running

        async def result() -> tuple[int, str]:
            await self.notifier.wait_for(done)
            st = last["c"].state
            ran = bool(st.started_at) and not st.started_at.startswith("0001-")
            return st.exit_code, st.error if ran else ""

        return result()

    # -- attach ------------------------------------------------------------------
    async def attach(self, ref: str, stdin: bool) -> AttachSession:
        """Output from now on (and stdin); before start, it begins with the container's first byte."""
        c = self.containers.get(ref)
        session = AttachSession()
        # With StdinOnce the container's stdin closes when this client leaves; without, it stays open.
        mode = (b"A" if c.spec.stdin_once else b"I") if stdin and c.spec.open_stdin else b"a"
        if c.state.running:
            conn = await shimlib.connect(self.paths(c.id), mode)
            if conn:
                session.reader, session.writer = conn
            session.ready.set()
        else:
            self._pending.setdefault(c.id, []).append((session, mode))
        return session

    async def resize(self, ref: str, rows: int, cols: int) -> None:
        c = self.containers.get(ref)
        if not c.spec.tty:
            raise InvalidArgument(f"cannot resize container {c.id}: it has no TTY")
        if rows <= 0 or cols <= 0:
            raise InvalidArgument("invalid resize: height and width must be positive")
        if not c.state.running:
            raise Conflict(f"Container {c.id} is not running")
        if not await shimlib.resize(self.paths(c.id), rows, cols):
            raise Conflict(f"Container {c.id} is not running")

    def detach_pending(self, cid: str, session: AttachSession) -> None:
        self._pending[cid] = [(s, m) for s, m in self._pending.get(cid, []) if s is not session]

    def is_running(self, cid: str) -> bool:
        c = self.containers.index.get(cid)
        return c is not None and c.state.running

    async def close(self) -> None:
        for t in list(self._monitors.values()):
            t.cancel()


def _size(s: str) -> int:
    s = s.strip().lower()
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    if s and s[-1] in units:
        return int(float(s[:-1]) * units[s[-1]])
    return int(s or 0)
