"""berthd does not leak through attach and exec: hundreds of hijacked connections, ended every way a client can end
them, leave its file descriptors, threads, child processes and shims where they were, and the container running.

Also what a client going away must not do: stop the container, end an exec, or (without StdinOnce) close the
container's stdin.

Each leak test has a berthd of its own (``fresh_daemon``), so that nothing else moves its figures; shims are counted
by their command line, which holds the daemon's own exec root, so other daemons on the machine do not count.

Needs root, runc and busybox (the fixtures skip otherwise). Nothing is pulled.
"""
from __future__ import annotations

import json
import os
import random
import socket
import struct
import subprocess
import time
import uuid
from urllib.parse import quote

import pytest

from tests.support.daemon import wait_for

pytestmark = pytest.mark.root

BUSYBOX = "busybox:latest"
DETACH = b"\x10\x11"  # ctrl-p ctrl-q
TOLERANCE = 5


# -- helpers ------------------------------------------------------------------------------------------------------

def create(daemon, cmd: list[str], start: bool = True, **config) -> str:
    name = f"leak-{uuid.uuid4().hex[:10]}"
    status, r = daemon.api("POST", f"/containers/create?name={quote(name)}", {"Image": BUSYBOX, "Cmd": cmd, **config})
    assert status == 201, (status, r)
    if start:
        status, body = daemon.api("POST", f"/containers/{r['Id']}/start")
        assert status == 204, (status, body, daemon.tail_log())
    return r["Id"]


def state(daemon, cid: str) -> dict:
    status, info = daemon.api("GET", f"/containers/{cid}/json")
    assert status == 200, (status, info)
    return info["State"]


def hijack(daemon, path: str, body: dict | None = None, timeout: float = 10) -> tuple[socket.socket, bytes]:
    """``POST /v1.45<path>`` with ``Upgrade: tcp`` on a raw socket; (socket, bytes past the 101's headers)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(daemon.socket)
    data = json.dumps(body).encode() if body is not None else b""
    head = (f"POST /v1.45{path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n"
            f"Content-Length: {len(data)}\r\n")
    if body is not None:
        head += "Content-Type: application/json\r\n"
    s.sendall(head.encode() + b"\r\n" + data)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            s.close()
            raise AssertionError(f"{path}: closed before the response headers: {buf!r}")
        buf += chunk
    head_b, _, rest = buf.partition(b"\r\n\r\n")
    if not head_b.startswith(b"HTTP/1.1 101"):
        s.close()
        raise AssertionError(f"{path}: expected 101, got {head_b!r} {rest!r}")
    return s, rest


def read_until(s: socket.socket, first: bytes, want: bytes) -> bytes:
    out = first
    while want not in out:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f"EOF before {want!r}; got {out!r}")
        out += chunk
    return out


def read_to_eof(s: socket.socket, first: bytes = b"") -> bytes:
    out = first
    while chunk := s.recv(65536):
        out += chunk
    return out


def abrupt_close(s: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0) where the socket type allows, else a plain close."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def demux(data: bytes) -> bytes:
    out = b""
    while len(data) >= 8:
        _, size = struct.unpack(">BxxxI", data[:8])
        out, data = out + data[8:8 + size], data[8 + size:]
    return out


class Figures:
    """berthd's open fds, threads, children and this daemon's shims."""

    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.pid = daemon.proc.pid

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def children(self) -> int:
        n = 0
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            n += int(fields[1]) == self.pid  # ppid
        return n

    def shims(self) -> int:
        # pgrep -f berth-shim, narrowed to this daemon's exec root
        p = subprocess.run(["pgrep", "-c", "-f", f"berth-shim .*{self.daemon.exec_root}/"], capture_output=True,
                           text=True)
        return int(p.stdout.strip() or 0)

    def snapshot(self) -> dict:
        return {"fds": self.fds(), "threads": self.threads(), "children": self.children(), "shims": self.shims()}

    def settled(self, base: dict, timeout: float = 10) -> dict:
        """Wait until the figures are back within the tolerance (shims and children exactly); the last figures."""
        last: dict = {}

        def ok() -> bool:
            last.update(self.snapshot())
            return (last["fds"] <= base["fds"] + TOLERANCE and last["threads"] <= base["threads"] + TOLERANCE
                    and last["children"] <= base["children"] and last["shims"] <= base["shims"])
        try:
            wait_for(ok, timeout, 0.1, "berthd's figures to settle")
        except AssertionError:
            fds = sorted(os.readlink(f"/proc/{self.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{self.pid}/fd")
                         if os.path.exists(f"/proc/{self.pid}/fd/{fd}"))
            raise AssertionError(f"berthd leaked: before {base}, after {last}\nopen fds: {fds}\n"
                                 f"berthd log:\n{self.daemon.tail_log(2000)}") from None
        return last


def exec_hijacked(daemon, cid: str, cmd: list[str], **config) -> tuple[str, bytes]:
    status, r = daemon.api("POST", f"/containers/{cid}/exec",
                           {"AttachStdout": True, "AttachStderr": True, "Cmd": cmd, **config})
    assert status == 201, (status, r)
    s, first = hijack(daemon, f"/exec/{r['Id']}/start", {"Detach": False, "Tty": bool(config.get("Tty"))})
    try:
        return r["Id"], read_to_eof(s, first)
    finally:
        s.close()


# -- leaks --------------------------------------------------------------------------------------------------------

def _attach_cycle(daemon, cid: str, i: int, how: str) -> None:
    """One attach to the TTY container ``cid`` and its end, ``how``."""
    if how == "stdout-only":
        s, first = hijack(daemon, f"/containers/{cid}/attach?stream=1&stdout=1&stderr=1")
        s.shutdown(socket.SHUT_WR)
        abrupt_close(s)
        return
    s, first = hijack(daemon, f"/containers/{cid}/attach?stream=1&stdout=1&stderr=1&stdin=1")
    try:
        if how == "abrupt":
            if i % 4 == 0:
                s.sendall(f"echo c{i}x\r".encode())
                read_until(s, first, f"\r\nc{i}x\r\n".encode())
            abrupt_close(s)
        elif how == "detach":
            # the detach keys end it on berthd's side: read to its EOF after half-closing
            s.sendall(f"echo d{i}y\r".encode())
            read_until(s, first, f"\r\nd{i}y\r\n".encode())
            s.sendall(DETACH)
            s.shutdown(socket.SHUT_WR)
            read_to_eof(s)
            s.close()
        elif how == "half-close":
            # stdin's end; the attach goes on (output still flows), then the client leaves
            s.shutdown(socket.SHUT_WR)
            s.close()
        else:
            raise ValueError(how)
    except BaseException:
        s.close()
        raise


def test_attach_and_exec_cycles_do_not_leak(fresh_daemon):
    d = fresh_daemon
    fig = Figures(d)
    tty = create(d, ["sh"], Tty=True, OpenStdin=True)
    plain = create(d, ["sleep", "3600"])
    # warm up: the thread pool and the like reach their working size first
    for i in range(6):
        _attach_cycle(d, tty, i, ("abrupt", "detach", "half-close")[i % 3])
        exec_hijacked(d, plain, ["true"])
    base = fig.settled(fig.snapshot(), 10)
    base = fig.snapshot()

    rng = random.Random(1234)
    hows = ["abrupt"] * 80 + ["detach"] * 60 + ["half-close"] * 40 + ["stdout-only"] * 20
    rng.shuffle(hows)
    for i, how in enumerate(hows):
        _attach_cycle(d, tty, i, how)
    # non-TTY attaches (no detach keys there): stdout only, ended by the client
    for i in range(20):
        s, _ = hijack(d, f"/containers/{plain}/attach?stream=1&stdout=1&stderr=1")
        if i % 2:
            s.shutdown(socket.SHUT_WR)
        abrupt_close(s)

    for i in range(50):
        kind = i % 5
        if kind == 0:  # detached
            status, r = d.api("POST", f"/containers/{plain}/exec", {"Cmd": ["sh", "-c", f"exit {i % 7}"]})
            assert d.api("POST", f"/exec/{r['Id']}/start", {"Detach": True})[0] == 200
        elif kind == 1:  # TTY, with stdin, ended by its exit
            eid, out = exec_hijacked(d, plain, ["sh", "-c", f"echo e{i}"], Tty=True, AttachStdin=True)
            assert f"e{i}".encode() in out
        elif kind == 2:  # the client leaves mid-exec
            status, r = d.api("POST", f"/containers/{plain}/exec",
                              {"AttachStdout": True, "Cmd": ["sh", "-c", "sleep 0.2; echo late"]})
            s, _ = hijack(d, f"/exec/{r['Id']}/start", {"Detach": False})
            abrupt_close(s)
        elif kind == 3:  # a failing start (no such binary)
            status, r = d.api("POST", f"/containers/{plain}/exec", {"Cmd": ["/nonexistent"]})
            st, body = d.api("POST", f"/exec/{r['Id']}/start", {"Detach": True})
            assert st in (200, 400, 404, 409, 500), (st, body)
        else:  # hijacked, read to its end
            eid, out = exec_hijacked(d, plain, ["sh", "-c", f"echo x{i}; echo y{i} >&2; exit 3"])
            assert demux(out) in (f"x{i}\ny{i}\n".encode(), f"y{i}\nx{i}\n".encode())

    after = fig.settled(base)
    print("before", base, "after", after)
    assert state(d, tty)["Running"] and state(d, plain)["Running"], "the containers must still be running"
    assert d.api("GET", "/_ping") == (200, b"OK")
    # and attach still works
    s, first = hijack(d, f"/containers/{tty}/attach?stream=1&stdout=1&stdin=1")
    s.sendall(b"echo fin$((1+1))\r")
    read_until(s, first, b"\r\nfin2\r\n")
    s.close()


@pytest.mark.parametrize("end", ["close", "half-close then close", "reset"])
def test_attach_to_silent_container_released_when_client_leaves(fresh_daemon, end):
    """A container that prints nothing: an attach whose client has gone must not hold its connections until the
    container next writes (which may be never)."""
    d = fresh_daemon
    fig = Figures(d)
    cid = create(d, ["sleep", "3600"], OpenStdin=True)
    base = fig.settled(fig.snapshot(), 10)
    base = fig.snapshot()
    for i in range(20):
        s, _ = hijack(d, f"/containers/{cid}/attach?stream=1&stdout=1&stderr=1&stdin={i % 2}")
        if end.startswith("half-close"):
            s.shutdown(socket.SHUT_WR)
        if end == "reset":
            abrupt_close(s)
        else:
            s.close()
    fig.settled(base, 10)
    assert state(d, cid)["Running"]


def test_client_leaving_mid_exec(fresh_daemon):
    """The container keeps running, the exec goes on to its own end, and nothing stays behind."""
    d = fresh_daemon
    fig = Figures(d)
    cid = create(d, ["sleep", "3600"])
    exec_hijacked(d, cid, ["true"])
    base = fig.settled(fig.snapshot(), 10)
    base = fig.snapshot()

    eids = []
    for i in range(5):
        status, r = d.api("POST", f"/containers/{cid}/exec",
                          {"AttachStdout": True, "AttachStderr": True, "AttachStdin": bool(i % 2), "Tty": i == 4,
                           "Cmd": ["sh", "-c", f"echo started; while [ ! -f /tmp/stop{i} ]; do sleep 0.05; done"]})
        assert status == 201, r
        s, first = hijack(d, f"/exec/{r['Id']}/start", {"Detach": False, "Tty": i == 4})
        read_until(s, first, b"started")
        if i % 2:
            s.shutdown(socket.SHUT_WR)
        abrupt_close(s)
        eids.append(r["Id"])

    def inspect(eid):
        return d.api("GET", f"/exec/{eid}/json")[1]

    assert state(d, cid)["Running"]
    assert all(inspect(e)["Running"] for e in eids), [inspect(e) for e in eids]
    for i in range(5):
        status, r = d.api("POST", f"/containers/{cid}/exec", {"Cmd": ["touch", f"/tmp/stop{i}"]})
        assert d.api("POST", f"/exec/{r['Id']}/start", {"Detach": True})[0] == 200
    wait_for(lambda: not any(inspect(e)["Running"] for e in eids), 10, what="the execs to end")
    assert [inspect(e)["ExitCode"] for e in eids] == [0] * 5
    assert state(d, cid)["Running"]
    fig.settled(base)


# -- stdin and attach clients -------------------------------------------------------------------------------------

def test_attach_client_leaving_keeps_stdin_open_without_stdin_once(daemon):
    """OpenStdin without StdinOnce (``docker run -d -i``): an attached client going away (or ending its stdin)
    leaves the container's stdin open, as dockerd does; ``cat`` goes on and a later attach still talks to it."""
    cid = create(daemon, ["cat"], OpenStdin=True, StdinOnce=False)
    try:
        for i, end in enumerate(("close", "half-close", "close")):
            s, first = hijack(daemon, f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1")
            s.sendall(f"ping{i}\n".encode())
            got = first
            while f"ping{i}\n".encode() not in demux(got):
                chunk = s.recv(65536)
                assert chunk, f"EOF before the echo; got {got!r}; container {state(daemon, cid)}"
                got += chunk
            if end == "half-close":
                s.shutdown(socket.SHUT_WR)
            abrupt_close(s)
            # the attach's end must not reach cat (which exits within milliseconds of its stdin's end):
            # watch it for a second
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                st = state(daemon, cid)
                assert st["Running"], f"after the {end} of attach #{i}, the container stopped: {st}"
                time.sleep(0.05)
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_attach_stdin_once_closes_stdin(daemon):
    """StdinOnce (``docker run -i``): the attached client's end of stdin is the container's."""
    cid = create(daemon, ["sh", "-c", "wc -c; exit 4"], start=False, OpenStdin=True, StdinOnce=True,
                 AttachStdin=True)
    try:
        s, first = hijack(daemon, f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1")
        assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
        s.sendall(b"x" * 1000)
        s.shutdown(socket.SHUT_WR)
        assert demux(read_to_eof(s, first)).strip() == b"1000"
        s.close()
        status, body = daemon.api("POST", f"/containers/{cid}/wait")
        assert body["StatusCode"] == 4
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_many_concurrent_attaches_then_gone(fresh_daemon):
    """50 attaches open at once all get the output; when they all vanish, berthd is back where it was."""
    d = fresh_daemon
    fig = Figures(d)
    cid = create(d, ["sh"], Tty=True, OpenStdin=True)
    s, first = hijack(d, f"/containers/{cid}/attach?stream=1&stdout=1&stdin=1")
    s.close()
    base = fig.settled(fig.snapshot(), 10)
    base = fig.snapshot()
    socks = [hijack(d, f"/containers/{cid}/attach?stream=1&stdout=1&stdin={i % 2}") for i in range(50)]
    socks[1][0].sendall(b"echo all$((2*3))\r")  # an attach with stdin (odd ones)
    for s, first in socks:
        read_until(s, first, b"\r\nall6\r\n")
    for s, _ in socks:
        abrupt_close(s)
    fig.settled(base)
    assert state(d, cid)["Running"]
    assert d.api("GET", "/_ping")[0] == 200
