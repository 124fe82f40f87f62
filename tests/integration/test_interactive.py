"""Interactive containers end to end: ``run -it``, ``attach``, ``exec -it`` in real terminals (tmux), with both the
berth CLI and the docker CLI; piped stdin with ``run -i``; and the exec API (create, start, inspect, resize).

Each terminal is a tmux session on a tmux server of the test's own (``tmux -L <unique>``), killed at teardown.
Tests poll ``capture-pane`` (and the daemon) with ``wait_for``; nothing relies on a fixed sleep.

Needs root, runc, busybox and tmux (the ``daemon`` fixture skips without the first three). Nothing is pulled:
every container is made from busybox:latest, which the fixture makes locally.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import uuid
from urllib.parse import quote

import pytest

from tests.support.made import Made as BaseMade
from tests.support.daemon import BIN, wait_for

pytestmark = pytest.mark.root

BUSYBOX = "busybox:latest"
DOCKER = "/usr/local/bin/docker"
PROMPT = "/ #"


def uniq(prefix: str = "it") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- helpers ------------------------------------------------------------------------------------------------------

class Made(BaseMade):
    """Containers a test made; force-removed at teardown."""

    def __init__(self, daemon) -> None:
        super().__init__(daemon)
        self.refs = self.containers

    def name(self, prefix: str = "it") -> str:
        n = uniq(prefix)
        self.refs.append(n)
        return n

    def container(self, cmd: list[str], start: bool = True, **config) -> tuple[str, str]:
        """Create (and start) a busybox container; (id, name)."""
        name = self.name()
        status, r = self.daemon.api("POST", f"/containers/create?name={quote(name)}",
                                    {"Image": BUSYBOX, "Cmd": cmd, **config})
        assert status == 201, (status, r)
        if start:
            status, body = self.daemon.api("POST", f"/containers/{r['Id']}/start")
            assert status == 204, (status, body, self.daemon.tail_log())
        return r["Id"], name


class Tmux:
    """A private tmux server; each session runs one command then prints ``EXIT=<its status>``."""

    def __init__(self) -> None:
        self.sock = "bt-" + uuid.uuid4().hex[:12]

    def tmux(self, *args: str, check: bool = True) -> str:
        p = subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", *args], capture_output=True, text=True,
                           timeout=15)
        if check and p.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {p.returncode} {p.stderr}")
        return p.stdout

    def new(self, command: str, x: int = 120, y: int = 30) -> str:
        name = "s" + uuid.uuid4().hex[:8]
        # the pane stays (sleep) after the command so its EXIT= line can be read
        self.tmux("new-session", "-d", "-s", name, "-x", str(x), "-y", str(y),
                  f"{command}; echo EXIT=$?; exec sleep 600")
        return name

    def keys(self, session: str, *keys: str) -> None:
        self.tmux("send-keys", "-t", session, *keys)

    def type(self, session: str, text: str) -> None:
        """Type a line literally, then Enter."""
        self.tmux("send-keys", "-t", session, "-l", text)
        self.tmux("send-keys", "-t", session, "Enter")

    def screen(self, session: str, escapes: bool = False) -> str:
        args = ["capture-pane", "-p", "-J", "-S", "-", "-t", session]
        if escapes:
            args.insert(1, "-e")
        return self.tmux(*args)

    def lines(self, session: str) -> list[str]:
        return [ln.rstrip() for ln in self.screen(session).splitlines()]

    def wait_line(self, session: str, line: str, timeout: float = 15, count: int = 1) -> None:
        """Until ``line`` (a whole line, trailing blanks ignored) is on the pane ``count`` times.

        Gives up at once when the command has ended (its ``EXIT=`` line is there) without showing it.
        """
        def seen():
            lines = self.lines(session)
            if lines.count(line) >= count:
                return True
            if any(re.fullmatch(r".*EXIT=\d+", ln) for ln in lines):
                raise AssertionError(f"the command ended before {line!r} appeared; the terminal shows:\n"
                                     + "\n".join(ln for ln in lines if ln))
            return False
        try:
            wait_for(seen, timeout, 0.05, f"{line!r} on the terminal")
        except AssertionError as e:
            if "the command ended" in str(e):
                raise
            raise AssertionError(f"{line!r} never appeared (x{count}); the terminal shows:\n"
                                 f"{self.screen(session)}") from None

    def exit_code(self, session: str, timeout: float = 20) -> int:
        """The command's exit status (the ``EXIT=`` line), once it has ended."""
        def found():
            for ln in self.lines(session):
                m = re.fullmatch(r".*EXIT=(\d+)", ln)
                if m:
                    return m
            return None
        try:
            return int(wait_for(found, timeout, 0.05, "the command to end").group(1))
        except AssertionError:
            raise AssertionError(f"the command did not end; the terminal shows:\n{self.screen(session)}") from None

    def until_line(self, session: str, command: str, line: str, tries: int = 40) -> None:
        """Type ``command; echo <marker>`` until ``line`` is among its output (a resize, say, arrives a bit after
        the keys that ask about it: each try waits for its own marker, then looks)."""
        seen: list[list[str]] = []
        for i in range(tries):
            marker = f"mk{uuid.uuid4().hex[:6]}"
            before = len("\n".join(self.lines(session)).rstrip().splitlines())  # blank rows below don't count
            self.type(session, f"{command}; echo {marker}")
            self.wait_line(session, marker)
            lines = self.lines(session)
            out = lines[max(0, before - 1):lines.index(marker)]
            if line in out:
                return
            seen.append(out)
        raise AssertionError(f"{command!r} never printed {line!r}; the last tries printed {seen[-3:]}")

    def raw_mode(self, session: str) -> bool:
        """The pane's terminal is in raw mode (the CLI has taken it: attached)."""
        tty = self.tmux("display-message", "-p", "-t", session, "#{pane_tty}").strip()
        out = subprocess.run(["stty", "-F", tty, "-a"], capture_output=True, text=True).stdout
        return "-icanon" in out.split()

    def resize(self, session: str, x: int, y: int) -> None:
        self.tmux("resize-window", "-t", session, "-x", str(x), "-y", str(y))

    def kill(self) -> None:
        path = self.tmux("display-message", "-p", "#{socket_path}", check=False).strip()
        self.tmux("kill-server", check=False)
        if path.endswith("/" + self.sock):  # tmux leaves its socket file behind
            with contextlib.suppress(OSError):
                os.unlink(path)


@pytest.fixture
def term():
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    t = Tmux()
    yield t
    t.kill()


def cli_command(daemon, cli: str, *args: str) -> str:
    """A shell command line for the berth or the docker CLI against this daemon."""
    if cli == "berth":
        base = [str(BIN / "berth"), "-H", daemon.host]
    else:
        base = ["env", "DOCKER_CONFIG=" + os.path.join(daemon.dir, "docker-config"), DOCKER, "-H", daemon.host]
    return shlex.join(base + list(args))


def run_args(cli: str, *args: str) -> list[str]:
    return ["run", *args, *(["--pull=never"] if cli == "docker" else [])]


def inspect(daemon, ref: str) -> dict:
    status, info = daemon.api("GET", f"/containers/{quote(ref, safe='')}/json")
    assert status == 200, (status, info)
    return info


def running(daemon, ref: str) -> bool:
    return inspect(daemon, ref)["State"]["Running"]


def processes(daemon, ref: str) -> list[str]:
    """The command lines of the container's processes (GET /top)."""
    status, top = daemon.api("GET", f"/containers/{quote(ref, safe='')}/top")
    if status != 200:
        return []
    col = top["Titles"].index("CMD") if "CMD" in top["Titles"] else -1
    return [p[col] for p in top["Processes"]]


def start_tty_shell(daemon, term: Tmux, made: Made, cli: str, x: int = 120, y: int = 30) -> tuple[str, str]:
    """``run -it --name N busybox sh`` in a new terminal; (session, name) once the prompt is there."""
    name = made.name("tty")
    s = term.new(cli_command(daemon, cli, *run_args(cli, "-it", "--name", name), BUSYBOX, "sh"), x, y)
    try:
        term.wait_line(s, PROMPT)
    except AssertionError as e:
        raise AssertionError(f"{cli} run -it: no prompt. {e}\nberthd log:\n{daemon.tail_log(1500)}") from None
    return s, name


CLIS = ["berth", "docker"]


# -- run -it -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cli", CLIS)
def test_run_it_terminal(daemon, term, made, cli):
    """Prompt, typing, the window size and its changes, colour, Ctrl-C to the foreground process, exit status."""
    s, name = start_tty_shell(daemon, term, made, cli)

    term.type(s, "echo he''llo")
    term.wait_line(s, "hello")

    term.until_line(s, "stty size", "30 120")

    term.resize(s, 100, 40)
    term.until_line(s, "stty size", "40 100")

    term.type(s, "ls --color=always /")
    wait_for(lambda: re.search(r"\x1b\[[0-9;]*m(\x1b\[[0-9;]*m)*bin", term.screen(s, escapes=True)), 10, 0.05,
             "coloured ls output (ESC[...m) on the terminal")

    term.type(s, "sleep 100")
    wait_for(lambda: any("sleep 100" in p for p in processes(daemon, name)), 10, 0.05, "sleep 100 to run")
    term.keys(s, "C-c")
    wait_for(lambda: not any("sleep 100" in p for p in processes(daemon, name)), 10, 0.05,
             "Ctrl-C to end sleep 100")
    term.type(s, 'echo "rc-$?"')
    term.wait_line(s, "rc-130")  # the shell got the prompt back, the sleep died of SIGINT
    assert running(daemon, name), "Ctrl-C must not end the container's shell"

    term.type(s, "exit 5")
    assert term.exit_code(s) == 5, term.screen(s)
    wait_for(lambda: not running(daemon, name), 10, what="the container to stop")
    assert inspect(daemon, name)["State"]["ExitCode"] == 5


@pytest.mark.parametrize("cli", CLIS)
def test_run_it_detach_then_attach(daemon, term, made, cli):
    """Ctrl-P Ctrl-Q leaves the container running; ``attach`` gets it back, typing works, exit ends both."""
    s, name = start_tty_shell(daemon, term, made, cli)
    term.type(s, "echo one-$((40+2))")
    term.wait_line(s, "one-42")

    term.keys(s, "C-p", "C-q")
    assert term.exit_code(s) == 0, term.screen(s)
    assert running(daemon, name), "detaching must leave the container running"

    # a different size than the first terminal: the attach's resize reaches the shell
    a = term.new(cli_command(daemon, cli, "attach", name), 100, 40)
    wait_for(lambda: term.raw_mode(a), 15, 0.05, f"{cli} attach to take the terminal")
    term.type(a, "echo two-$((40+3))")
    term.wait_line(a, "two-43")
    term.until_line(a, "stty size", "40 100")
    term.type(a, "exit 3")
    assert term.exit_code(a) == 3, term.screen(a)
    wait_for(lambda: not running(daemon, name), 10, what="the container to stop")
    assert inspect(daemon, name)["State"]["ExitCode"] == 3


@pytest.mark.parametrize("cli", CLIS)
def test_attach_custom_detach_keys(daemon, term, made, cli):
    """``attach --detach-keys ctrl-x,y``: that sequence detaches; the container keeps running."""
    s, name = start_tty_shell(daemon, term, made, cli)
    term.keys(s, "C-p", "C-q")
    assert term.exit_code(s) == 0, term.screen(s)

    a = term.new(cli_command(daemon, cli, "attach", "--detach-keys", "ctrl-x,y", name))
    wait_for(lambda: term.raw_mode(a), 15, 0.05, f"{cli} attach to take the terminal")
    term.type(a, "echo three-$((40+4))")
    term.wait_line(a, "three-44")
    term.keys(a, "C-x", "y")
    code = term.exit_code(a)
    assert running(daemon, name), "detaching must leave the container running"
    # docker attach reports the detach as an error: "read escape sequence", status 1 (as with dockerd);
    # berth mirrors the docker CLI
    assert "read escape sequence" in term.screen(a)
    assert code == 1, f"{cli} attach: detaching should exit 1 as docker attach does, got {code}"


# -- exec -it ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cli", CLIS)
def test_exec_it(daemon, term, made, cli):
    """``exec -it NAME sh``: prompt, a command, the size, the exec's exit status; the container keeps running."""
    cid, name = made.container(["sleep", "3600"])
    s = term.new(cli_command(daemon, cli, "exec", "-it", name, "sh"), 120, 30)
    term.wait_line(s, PROMPT)
    term.type(s, "echo in-$((6*7))")
    term.wait_line(s, "in-42")
    term.until_line(s, "stty size", "30 120")
    term.type(s, "exit 4")
    assert term.exit_code(s) == 4, term.screen(s)
    assert running(daemon, name), "an exec ending must not stop the container"
    assert any("sleep 3600" in p for p in processes(daemon, name))


@pytest.mark.parametrize("cli", CLIS)
def test_exec_it_detach_keys(daemon, term, made, cli):
    """``exec -it --detach-keys ctrl-x,x``: the CLI leaves, the exec's shell and the container keep running."""
    cid, name = made.container(["sleep", "3600"])
    s = term.new(cli_command(daemon, cli, "exec", "-it", "--detach-keys", "ctrl-x,x", name, "sh", "-c",
                             "echo ready; exec sleep 3599"), 120, 30)
    term.wait_line(s, "ready")
    term.keys(s, "C-x", "x")
    code = term.exit_code(s)
    assert running(daemon, name)
    assert any("sleep 3599" in p for p in processes(daemon, name)), processes(daemon, name)
    # as docker exec does: the detach is reported as "read escape sequence" with status 1
    assert "read escape sequence" in term.screen(s)
    assert code == 1, f"{cli} exec: detaching should exit 1 as docker exec does, got {code}"


# -- run -i with a pipe --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cli", CLIS)
def test_run_i_pipe(daemon, made, cli):
    name = made.name("pipe")
    run = daemon.cli if cli == "berth" else daemon.docker
    p = run(*run_args(cli, "-i", "--rm", "--name", name), BUSYBOX, "cat", input=b"hi\n", timeout=30)
    assert p.stdout == b"hi\n", p
    # --rm: gone by the time the CLI has returned
    wait_for(lambda: daemon.api("GET", f"/containers/{name}/json")[0] == 404, 10, what="--rm to remove it")


@pytest.mark.parametrize("cli", CLIS)
def test_run_i_stdin_end_reaches_container(daemon, made, cli):
    """100 KB through stdin, then its end: ``wc -c`` only prints once it sees EOF."""
    data = os.urandom(100 * 1024)
    run = daemon.cli if cli == "berth" else daemon.docker
    p = run(*run_args(cli, "-i", "--rm", "--name", made.name("wc")), BUSYBOX, "wc", "-c", input=data, timeout=30)
    assert p.stdout.strip() == str(len(data)).encode(), p
    assert p.returncode == 0


def test_run_i_exit_status_and_stdin_content(daemon, made):
    """The bytes arrive intact (md5 inside equals ours) and the exit status is the container's."""
    import hashlib
    data = os.urandom(64 * 1024)
    p = daemon.cli("run", "-i", "--rm", "--name", made.name("md5"), BUSYBOX, "sh", "-c", "md5sum; exit 9",
                   input=data, check=False, timeout=30)
    assert p.returncode == 9, p
    assert p.stdout.split()[0].decode() == hashlib.md5(data).hexdigest()


# -- the exec API -------------------------------------------------------------------------------------------------

def hijack(daemon, path: str, body: dict | None = None, timeout: float = 20) -> tuple[socket.socket, bytes]:
    """POST ``path`` with ``Upgrade: tcp`` on a raw socket; (socket, bytes read past the 101's headers)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(daemon.socket)
    data = json.dumps(body if body is not None else {}).encode()
    s.sendall((f"POST /v1.45{path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            s.close()
            raise AssertionError(f"connection closed before the response headers: {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status + b" ":
        s.close()
        raise AssertionError(f"expected 101 for {path}, got {head!r} {rest!r}")
    return s, rest


def read_all(s: socket.socket, first: bytes = b"") -> bytes:
    out = first
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    return out


def demux(data: bytes) -> tuple[bytes, bytes]:
    out, err = b"", b""
    while len(data) >= 8:
        stream, size = struct.unpack(">BxxxI", data[:8])
        payload, data = data[8:8 + size], data[8 + size:]
        if stream == 2:
            err += payload
        else:
            out += payload
    assert not data, f"a partial frame at the end: {data!r}"
    return out, err


def exec_create(daemon, cid: str, cmd: list[str], **config) -> str:
    body = {"AttachStdout": True, "AttachStderr": True, "Cmd": cmd, **config}
    status, r = daemon.api("POST", f"/containers/{cid}/exec", body)
    assert status == 201, (status, r)
    return r["Id"]


def exec_run(daemon, cid: str, cmd: list[str], **config) -> tuple[str, bytes, bytes]:
    """Create, start hijacked and read to the end; (exec id, stdout, stderr)."""
    eid = exec_create(daemon, cid, cmd, **config)
    s, first = hijack(daemon, f"/exec/{eid}/start", {"Detach": False, "Tty": False})
    out, err = demux(read_all(s, first))
    return eid, out, err


def exec_inspect(daemon, eid: str) -> dict:
    status, info = daemon.api("GET", f"/exec/{eid}/json")
    assert status == 200, (status, info)
    return info


def test_exec_into_stopped_container_409(daemon, made):
    created, _ = made.container(["true"], start=False)
    status, body = daemon.api("POST", f"/containers/{created}/exec", {"Cmd": ["true"]})
    assert status == 409, (status, body)
    assert "is not running" in body["message"]

    exited, _ = made.container(["true"])
    wait_for(lambda: not running(daemon, exited), 10, what="the container to exit")
    status, body = daemon.api("POST", f"/containers/{exited}/exec", {"Cmd": ["true"]})
    assert status == 409, (status, body)


def test_exec_start_twice_409(daemon, made):
    cid, _ = made.container(["sleep", "3600"])
    eid = exec_create(daemon, cid, ["true"])
    status, body = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True})
    assert status == 200, (status, body)
    status, body = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True})
    assert status == 409, (status, body)
    assert "already" in body["message"], body


def test_exec_exit_code_after_hijacked_start(daemon, made):
    cid, _ = made.container(["sleep", "3600"])
    eid, out, err = exec_run(daemon, cid, ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"])
    assert (out, err) == (b"to-out\n", b"to-err\n")
    # known as soon as the stream has ended, as with dockerd
    info = exec_inspect(daemon, eid)
    assert info["ExitCode"] == 3 and info["Running"] is False, info
    assert info["ContainerID"] == cid
    assert info["ProcessConfig"]["entrypoint"] == "sh"
    assert running(daemon, cid), "an exec ending must not stop the container"


def test_exec_inspect_before_start(daemon, made):
    cid, _ = made.container(["sleep", "3600"])
    eid = exec_create(daemon, cid, ["true"])
    info = exec_inspect(daemon, eid)
    assert info["Running"] is False and info["ExitCode"] is None, info


def test_detached_exec_runs(daemon, made):
    cid, _ = made.container(["sleep", "3600"])
    marker = "/tmp/" + uuid.uuid4().hex
    eid = exec_create(daemon, cid, ["sh", "-c", f"echo made > {marker}"], AttachStdout=False, AttachStderr=False)
    status, body = daemon.api("POST", f"/exec/{eid}/start", {"Detach": True})
    assert status == 200, (status, body)
    wait_for(lambda: exec_inspect(daemon, eid)["Running"] is False and exec_inspect(daemon, eid)["ExitCode"] == 0,
             10, what="the detached exec to finish with 0")
    _, out, _ = exec_run(daemon, cid, ["cat", marker])
    assert out == b"made\n"


def test_exec_user_workdir_env(daemon, made):
    cid, _ = made.container(["sleep", "3600"], Env=["FROM_CONTAINER=c", "OVERRIDDEN=old"])
    eid, out, err = exec_run(daemon, cid, ["sh", "-c", 'id -u; id -g; pwd; echo "$FOO $FROM_CONTAINER $OVERRIDDEN"'],
                             User="1234:5678", WorkingDir="/tmp", Env=["FOO=bar", "OVERRIDDEN=new"])
    assert out.decode().split("\n") == ["1234", "5678", "/tmp", "bar c new", ""], (out, err)
    _, out, _ = exec_run(daemon, cid, ["id", "-un"], User="nobody")
    assert out == b"nobody\n"
    assert exec_inspect(daemon, eid)["ProcessConfig"]["user"] == "1234:5678"


def test_exec_exits_never_stop_the_container(daemon, made):
    cid, _ = made.container(["sleep", "3600"])
    codes = []
    for cmd in (["true"], ["false"], ["sh", "-c", "kill -9 $$"], ["sh", "-c", "exit 255"]):
        eid, _, _ = exec_run(daemon, cid, cmd)
        info = exec_inspect(daemon, eid)
        assert info["Running"] is False, info
        codes.append(info["ExitCode"])
        assert running(daemon, cid), f"the container stopped after the exec {cmd}"
    assert codes == [0, 1, 137, 255]
    assert inspect(daemon, cid)["State"]["Pid"] > 0


def test_resize_non_tty_container_400(daemon, made):
    cid, _ = made.container(["sleep", "3600"])
    status, body = daemon.api("POST", f"/containers/{cid}/resize?h=25&w=80")
    assert status == 400, (status, body)


def test_resize_stopped_tty_container_409(daemon, made):
    cid, _ = made.container(["sh"], start=False, Tty=True, OpenStdin=True)
    status, body = daemon.api("POST", f"/containers/{cid}/resize?h=25&w=80")
    assert status == 409, (status, body)


def test_resize_unknown_container_404(daemon):
    status, body = daemon.api("POST", "/containers/nope-" + uuid.uuid4().hex[:8] + "/resize?h=25&w=80")
    assert status == 404, (status, body)


def test_resize_running_tty_container(daemon, made):
    """Start a TTY container through the API, resize it, and the shell inside sees the size."""
    cid, _ = made.container(["sh", "-c", "read x; stty size"], Tty=True, OpenStdin=True, AttachStdin=True,
                            StdinOnce=True, start=False)
    s, first = hijack(daemon, f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1")
    status, body = daemon.api("POST", f"/containers/{cid}/start")
    assert status == 204, (status, body, daemon.tail_log())
    status, body = daemon.api("POST", f"/containers/{cid}/resize?h=33&w=77")
    assert status == 200, (status, body)
    s.sendall(b"go\r")
    out = read_all(s, first)
    assert b"33 77" in out, out


def test_exec_resize_tty(daemon, made):
    cid, _ = made.container(["sleep", "3600"])
    eid = exec_create(daemon, cid, ["sh", "-c", "read x; stty size"], Tty=True, AttachStdin=True)
    s, first = hijack(daemon, f"/exec/{eid}/start", {"Detach": False, "Tty": True})
    status, body = daemon.api("POST", f"/exec/{eid}/resize?h=25&w=80")
    assert status == 200, (status, body)
    s.sendall(b"go\r")  # only now does the exec look at its size
    out = read_all(s, first)
    assert b"25 80" in out, out
    info = exec_inspect(daemon, eid)
    assert info["ExitCode"] == 0 and info["Running"] is False, info


def test_exec_resize_tty_sleep_variant(daemon, made):
    """As the brief words it: resize right after the start, the exec looks 0.5 s later."""
    cid, _ = made.container(["sleep", "3600"])
    eid = exec_create(daemon, cid, ["sh", "-c", "sleep 0.5; stty size"], Tty=True)
    s, first = hijack(daemon, f"/exec/{eid}/start", {"Detach": False, "Tty": True})
    status, body = daemon.api("POST", f"/exec/{eid}/resize?h=25&w=80")
    assert status == 200, (status, body)
    assert b"25 80" in read_all(s, first)


def test_exec_console_size(daemon, made):
    """API 1.42+: ``ConsoleSize`` [h, w] (the docker CLI sends it) sizes a TTY exec from its start, no resize."""
    cid, _ = made.container(["sleep", "3600"])
    eid = exec_create(daemon, cid, ["stty", "size"], Tty=True, ConsoleSize=[27, 91])
    s, first = hijack(daemon, f"/exec/{eid}/start", {"Detach": False, "Tty": True, "ConsoleSize": [27, 91]})
    out = read_all(s, first)
    assert out == b"27 91\r\n", out


def test_container_console_size(daemon, made):
    """HostConfig.ConsoleSize (``docker run -it`` sends it) sizes a TTY container's terminal from its start."""
    cid, _ = made.container(["stty", "size"], start=False, Tty=True, HostConfig={"ConsoleSize": [26, 93]})
    s, first = hijack(daemon, f"/containers/{cid}/attach?stream=1&stdout=1&stderr=1")
    status, body = daemon.api("POST", f"/containers/{cid}/start")
    assert status == 204, (status, body, daemon.tail_log())
    out = read_all(s, first)
    assert out == b"26 93\r\n", out


def test_attach_logs_replay_then_stream(daemon, made):
    """``attach?logs=1&stream=1``: the logged output first, then the live output, then the end with the container."""
    cid, _ = made.container(["sh", "-c", "echo first; echo err1 >&2; while [ ! -f /tmp/go ]; do sleep 0.05; done; "
                                         "echo second"])
    wait_for(lambda: b"err1" in daemon.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=1", raw=True)[1],
             10, what="the first lines in the log")
    s, first = hijack(daemon, f"/containers/{cid}/attach?logs=1&stream=1&stdout=1&stderr=1")
    _, out, _ = exec_run(daemon, cid, ["touch", "/tmp/go"])
    out, err = demux(read_all(s, first))
    assert (out, err) == (b"first\nsecond\n", b"err1\n")
    status, body = daemon.api("POST", f"/containers/{cid}/wait")
    assert status == 200 and body["StatusCode"] == 0, body


def test_exec_unknown_404(daemon):
    status, body = daemon.api("GET", "/exec/nope/json")
    assert status == 404, (status, body)
    assert "No such exec instance" in body["message"], body
    status, body = daemon.api("POST", "/exec/nope/start", {"Detach": True})
    assert status == 404, (status, body)
    status, body = daemon.api("POST", "/exec/nope/resize?h=10&w=10")
    assert status == 404, (status, body)


def test_exec_bad_requests_400(daemon, made):
    cid, _ = made.container(["sleep", "3600"])
    for body in ({"Cmd": []}, {"Cmd": [1, 2]}, {"Cmd": ["true"], "DetachKeys": "ctrl-"}):
        status, r = daemon.api("POST", f"/containers/{cid}/exec", body)
        assert status == 400, (body, status, r)
    status, r = daemon.api("POST", f"/containers/nope-{uuid.uuid4().hex[:6]}/exec", {"Cmd": ["true"]})
    assert status == 404, (status, r)


def test_exec_into_paused_container_409(daemon, made):
    cid, _ = made.container(["sleep", "3600"])
    assert daemon.api("POST", f"/containers/{cid}/pause")[0] == 204
    try:
        status, body = daemon.api("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
        assert status == 409, (status, body)
        assert "paused" in body["message"]
    finally:
        daemon.api("POST", f"/containers/{cid}/unpause")


def test_exec_events(daemon, made):
    import time
    since = time.time()
    cid, _ = made.container(["sleep", "3600"])
    eid, _, _ = exec_run(daemon, cid, ["sh", "-c", "exit 2"])
    until = time.time() + 0.5
    status, raw = daemon.api("GET", f"/events?since={since:.6f}&until={until:.6f}", raw=True, timeout=15)
    assert status == 200
    evs = [json.loads(ln) for ln in raw.splitlines() if ln.strip()]
    mine = [e for e in evs if e.get("id") == cid]
    actions = [e["Action"] for e in mine]
    assert "exec_create: sh -c exit 2" in actions and "exec_start: sh -c exit 2" in actions, actions
    dies = [e for e in mine if e["Action"] == "exec_die"]
    assert dies and dies[0]["Actor"]["Attributes"].get("exitCode") == "2", dies
    assert dies[0]["Actor"]["Attributes"].get("execID") == eid


def test_exec_of_a_missing_command_ends_its_stream_with_the_error(daemon, made):
    cid, _ = made.container(["sleep", "3600"])
    eid, out, err = exec_run(daemon, cid, ["no-such-command"])
    assert b"no-such-command" in out and b"not found" in out, (out, err)  # in the stream, as dockerd writes it
    assert exec_inspect(daemon, eid)["ExitCode"] == 126
    p = daemon.cli("exec", cid, "no-such-command", check=False, timeout=30)
    assert p.returncode == 126 and b"no-such-command" in p.stdout + p.stderr, p
