"""Integration tests for berth-shim (the C sources in shim/) driving a real runc.

Needs root and runc; skipped otherwise.  Every container gets a unique id and
a runtime root under the test's tmp_path; teardown force-deletes containers,
waits for the shims (exec shims too) to exit and checks that no runc state is
left.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tarfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNC = shutil.which("runc") or "/usr/sbin/runc"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="berth-shim integration tests need root"),
    pytest.mark.skipif(not os.path.exists(RUNC), reason="runc is not installed"),
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static (/bin/busybox) is not installed"),
    pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build berth-shim"),
]

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def wait_for(cond, timeout=10.0, what="condition"):
    """Poll cond() until it returns a truthy value or the timeout expires."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def proc_state(pid: int) -> str | None:
    """The /proc state letter of pid, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def alive(pid: int) -> bool:
    return proc_state(pid) not in (None, "Z", "X")


def pids_with_arg(arg: str) -> list[int]:
    """Live processes that have arg among their command-line arguments."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if arg.encode() in argv and alive(int(entry)):
            found.append(int(entry))
    return found


def process_json(args: list[str], tty: bool = False) -> dict:
    """The OCI process object: the container's init, or an exec's process.json."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "terminal": tty,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "cwd": "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    }


def config_json(args: list[str], rootfs: str, tty: bool = False) -> dict:
    """A minimal OCI runtime config, modelled on `runc spec`."""
    return {
        "ociVersion": "1.0.2-dev",
        "process": process_json(args, tty),
        "root": {"path": rootfs, "readonly": True},
        "hostname": "berth-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "mount", "ipc", "uts", "network")],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shim_bin(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("shim-build") / "berth-shim"
    # run from an unrelated cwd to check that the script finds the repo itself
    res = subprocess.run(["bash", str(REPO / "scripts" / "build-shim.sh"), str(out)],
                         cwd="/", capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "warning" not in res.stderr.lower(), res.stderr
    return str(out)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory) -> str:
    """One busybox root filesystem, shared read-only by every test container."""
    base = tmp_path_factory.mktemp("rootfs")
    tar_path = base / "busybox.tar"
    subprocess.run(["python3", str(REPO / "scripts" / "busybox_rootfs.py"), str(tar_path)],
                   check=True, timeout=120)
    root = base / "rootfs"
    root.mkdir()
    with tarfile.open(tar_path) as tar:
        # the rootfs has absolute symlinks (-> /bin/busybox): use the "tar" filter
        # where this Python has extraction filters
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(root, filter="tar")
        else:
            tar.extractall(root)
    return str(root)


class Shim:
    """A shim started for one container (or an exec in it), with the paths it was given."""

    def __init__(self, env: "Env", cid: str, bundle: Path, line: str, returncode: int, stderr: str,
                 name: str | None = None):
        self.env, self.cid, self.bundle = env, cid, bundle
        self.line, self.returncode, self.stderr = line, returncode, stderr
        name = name or cid
        self.sock = str(env.dir / f"{name}.sock")
        self.log = env.dir / f"{name}.log"
        self.exit_file = env.dir / f"{name}.exit"
        self.init_pid = int(line.split()[1]) if line.startswith("ok ") else None

    @property
    def shim_pid(self) -> int:
        """The running shim: the container init's parent (the shim is a subreaper)."""
        pids = pids_with_arg(self.sock)
        assert len(pids) == 1, pids
        return pids[0]

    def connect(self, mode: bytes) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(self.sock)
        s.sendall(mode)
        if mode in (b"a", b"A", b"w"):
            assert s.recv(1) == b"+", "the shim acknowledges a registered client"
        return s

    def start(self) -> None:
        self.env.runc("start", self.cid)

    def resize(self, rows: int, cols: int) -> bytes:
        """Send mode 'r' and a window size; the answer, after which the shim closes."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(self.sock)
        s.sendall(b"r" + struct.pack(">HH", rows, cols))
        answer = s.recv(1)
        assert s.recv(1) == b"", "the shim closes a resize connection after answering"
        s.close()
        return answer

    def exec_start(self) -> bytes:
        """Send mode 'S'; the whole answer (up to the shim closing the connection)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.sock)
        s.sendall(b"S")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        s.close()
        return data

    def wait_exit(self, timeout: float = 15) -> int:
        wait_for(self.exit_file.exists, timeout, f"exit file of {self.cid}")
        return int(self.exit_file.read_text())

    def log_entries(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


class Env:
    def __init__(self, tmp_path: Path, shim_bin: str, rootfs: str):
        self.dir = tmp_path
        self.shim_bin = shim_bin
        self.rootfs = rootfs
        self.root = tmp_path / "runc-root"
        self.shims: list[Shim] = []

    def runc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([RUNC, "--root", str(self.root), *args],
                             capture_output=True, text=True, timeout=30)
        if check:
            assert res.returncode == 0, f"runc {args}: {res.stderr}"
        return res

    def bundle(self, cid: str, args: list[str], rootfs: str | None = None, tty: bool = False) -> Path:
        b = self.dir / f"bundle-{cid}"
        b.mkdir()
        (b / "config.json").write_text(json.dumps(config_json(args, rootfs or self.rootfs, tty)))
        return b

    def launch(self, cmd: list[str]) -> tuple[str, int, str]:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # The launcher prints one line and exits; the shim proper has its
        # stdio on /dev/null, so EOF arrives as soon as the launcher is gone.
        out, err = proc.communicate(timeout=30)
        return out, proc.returncode, err

    def shim(self, args: list[str], *, stdin=False, tty=False, max_size=0, max_files=1,
             rootfs: str | None = None) -> Shim:
        cid = "bt-" + uuid.uuid4().hex[:12]
        bundle = self.bundle(cid, args, rootfs, tty)
        cmd = [self.shim_bin, "--id", cid, "--bundle", str(bundle), "--runtime", RUNC,
               "--runtime-root", str(self.root), "--log", str(self.dir / f"{cid}.log"),
               "--log-max-size", str(max_size), "--log-max-files", str(max_files),
               "--socket", str(self.dir / f"{cid}.sock"),
               "--exit-file", str(self.dir / f"{cid}.exit")]
        if stdin:
            cmd.append("--stdin")
        if tty:
            cmd.append("--tty")
        shim = Shim(self, cid, bundle, *self.launch(cmd))
        self.shims.append(shim)
        return shim

    def exec_shim(self, target: Shim, args: list[str], *, stdin=False, tty=False, log=False) -> Shim:
        """An exec-mode shim for a process in target's container (it waits for 'S')."""
        name = f"{target.cid}-exec-{uuid.uuid4().hex[:8]}"
        bundle = self.dir / f"exec-{name}"
        bundle.mkdir()
        process = bundle / "process.json"
        process.write_text(json.dumps(process_json(args, tty)))
        cmd = [self.shim_bin, "--id", target.cid, "--bundle", str(bundle), "--runtime", RUNC,
               "--runtime-root", str(self.root), "--exec", str(process),
               "--socket", str(self.dir / f"{name}.sock"),
               "--exit-file", str(self.dir / f"{name}.exit")]
        if log:
            cmd += ["--log", str(self.dir / f"{name}.log")]
        if stdin:
            cmd.append("--stdin")
        if tty:
            cmd.append("--tty")
        shim = Shim(self, target.cid, bundle, *self.launch(cmd), name=name)
        self.shims.append(shim)
        return shim

    def cleanup(self) -> None:
        for s in self.shims:
            self.runc("delete", "-f", s.cid, check=False)
        for s in self.shims:
            try:
                wait_for(lambda: not pids_with_arg(s.sock), 15, f"shim of {s.cid} to exit")
            finally:
                for pid in pids_with_arg(s.sock):   # only our own shims, by pid
                    os.kill(pid, 9)
        if self.root.exists():
            assert self.env_list() == [], "runc state left behind"

    def env_list(self) -> list[str]:
        return self.runc("list", "-q").stdout.split()


@pytest.fixture
def env(tmp_path, shim_bin, rootfs):
    e = Env(tmp_path, shim_bin, rootfs)
    try:
        yield e
    finally:
        e.cleanup()


def read_frames(sock: socket.socket) -> list[tuple[int, bytes]]:
    """Read frames until the shim closes the connection."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    frames = []
    while data:
        assert len(data) >= 5, f"truncated frame header {data!r}"
        stream, length = struct.unpack(">BI", data[:5])
        assert len(data) >= 5 + length, "truncated frame payload"
        frames.append((stream, data[5:5 + length]))
        data = data[5 + length:]
    return frames


def joined(frames, stream: int) -> bytes:
    return b"".join(p for s, p in frames if s == stream)


class FrameReader:
    """Incremental frame reading from an attach connection."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buf, self.frames, self.eof = sock, b"", [], False

    def _pump(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
        self.buf += chunk
        while len(self.buf) >= 5:
            stream, length = struct.unpack(">BI", self.buf[:5])
            if len(self.buf) < 5 + length:
                break
            self.frames.append((stream, self.buf[5:5 + length]))
            self.buf = self.buf[5 + length:]

    def output(self, stream: int = 1) -> bytes:
        return joined(self.frames, stream)

    def until(self, pattern: bytes, timeout: float = 15) -> bytes:
        """Read until stream 1 matches the regex pattern; the output so far."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.output()):
            assert not self.eof, f"EOF before {pattern!r}: {self.output()!r}"
            assert time.monotonic() < deadline, f"timed out waiting for {pattern!r}: {self.output()!r}"
            self._pump()
        return self.output()

    def to_eof(self) -> bytes:
        while not self.eof:
            self._pump()
        assert self.buf == b"", f"truncated frame {self.buf!r}"
        return self.output()


# ------------------------------------------------------------------- tests


def test_output_log_exit_file_and_watcher(env):
    s = env.shim(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert re.fullmatch(r"ok \d+\n", s.line), (s.line, s.stderr)
    assert s.returncode == 0
    assert os.path.exists(s.sock)
    assert oct(os.stat(s.sock).st_mode & 0o777) == "0o600"
    assert env.env_list() == [s.cid]

    watcher = s.connect(b"w")
    s.start()
    assert watcher.recv(1) == b""          # EOF, and only once the exit file exists
    assert s.exit_file.exists()
    assert s.exit_file.read_text() == "3\n"
    watcher.close()

    entries = s.log_entries()
    by_stream = {e["stream"]: e for e in entries}
    assert len(entries) == 2
    assert by_stream["stdout"]["log"] == "out\n"
    assert by_stream["stderr"]["log"] == "err\n"
    now = datetime.now(timezone.utc)
    for e in entries:
        assert set(e) == {"log", "stream", "time"}
        assert TIME_RE.match(e["time"]), e["time"]
        ts = datetime.strptime(e["time"][:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        assert abs((now - ts).total_seconds()) < 60
    assert oct(os.stat(s.log).st_mode & 0o777) == "0o640"
    wait_for(lambda: not os.path.exists(s.sock), 5, "socket to be removed")
    assert not os.path.exists(str(s.exit_file) + ".tmp")


def test_attach_client_receives_frames(env):
    s = env.shim(["sh", "-c", "echo out; echo err >&2"])
    assert s.line.startswith("ok "), s.line
    client = s.connect(b"a")
    client.sendall(b"ignored input")
    s.start()
    frames = read_frames(client)
    client.close()
    assert joined(frames, 1) == b"out\n"
    assert joined(frames, 2) == b"err\n"
    assert {st for st, _ in frames} == {1, 2}
    assert s.wait_exit() == 0


def test_attach_with_stdin_echoes_and_closes(env):
    s = env.shim(["cat"], stdin=True)
    assert s.line.startswith("ok "), s.line
    client = s.connect(b"A")
    other = s.connect(b"a")                 # a second, output-only client
    s.start()
    client.sendall(b"hello\n")
    client.sendall(b"world\n" * 3)
    client.shutdown(socket.SHUT_WR)
    frames = read_frames(client)
    assert joined(frames, 1) == b"hello\n" + b"world\n" * 3
    assert joined(frames, 2) == b""
    assert joined(read_frames(other), 1) == b"hello\n" + b"world\n" * 3
    assert s.wait_exit() == 0
    client.close()
    other.close()
    assert [e["log"] for e in s.log_entries()] == ["hello\n"] + ["world\n"] * 3


def test_log_rotation(env):
    s = env.shim(["sh", "-c", "i=0; while [ $i -lt 60 ]; do echo line-$i; i=$((i+1)); done"],
                 max_size=200, max_files=3)
    assert s.line.startswith("ok "), s.line
    s.start()
    assert s.wait_exit() == 0
    names = sorted(p.name for p in env.dir.iterdir() if p.name.startswith(s.log.name))
    assert names == [s.log.name, s.log.name + ".1", s.log.name + ".2"]
    longest = 0
    files = [Path(str(s.log) + ".2"), Path(str(s.log) + ".1"), s.log]
    seen = []
    for f in files:
        lines = f.read_bytes().splitlines(keepends=True)
        assert lines, f
        longest = max(longest, *(len(x) for x in lines))
        seen += [json.loads(x)["log"] for x in lines]
    for f in files:
        assert f.stat().st_size <= 200 + longest, (f, f.stat().st_size)
    # the files hold the newest lines, in order, ending with the last one
    numbers = [int(x.strip().split("-")[1]) for x in seen]
    assert numbers == list(range(numbers[0], 60))
    assert numbers[0] > 0


def test_log_single_file_truncates(env):
    s = env.shim(["sh", "-c", "i=0; while [ $i -lt 30 ]; do echo line-$i; i=$((i+1)); done"],
                 max_size=200, max_files=1)
    assert s.line.startswith("ok "), s.line
    s.start()
    assert s.wait_exit() == 0
    names = sorted(p.name for p in env.dir.iterdir() if p.name.startswith(s.log.name))
    assert names == [s.log.name]
    assert 0 < s.log.stat().st_size <= 200
    assert s.log_entries()[-1]["log"] == "line-29\n"


def test_stalled_client_is_dropped(env):
    # 3 MB of output; one attach client never reads, so its sends time out
    # (SO_SNDTIMEO 2 s) and it is dropped; the log and a reading client get it all
    s = env.shim(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' y | fold -w 100"])
    assert s.line.startswith("ok "), s.line
    stalled = s.connect(b"a")
    reader = s.connect(b"a")
    s.start()
    frames = read_frames(reader)
    assert joined(frames, 1) == b"\n".join([b"y" * 100] * 30000)   # fold adds no final newline
    assert s.wait_exit() == 0
    entries = s.log_entries()
    assert len(entries) == 30000
    assert entries[-1]["log"] == "y" * 100
    stalled.close()
    reader.close()


@pytest.mark.parametrize("tty", [False, True])
def test_failing_create_reports_error(env, tty):
    s = env.shim(["true"], rootfs=str(env.dir / "no-such-rootfs"), tty=tty)
    assert s.line.startswith("error"), s.line
    assert s.line.endswith("\n") and s.line.count("\n") == 1
    assert "runc create exited with status" in s.line
    assert s.returncode == 1
    wait_for(lambda: not pids_with_arg(s.sock), 10, "failed shim to exit")
    assert not os.path.exists(s.sock)
    assert not s.exit_file.exists()
    assert (s.bundle / "runc.log").exists()     # berthd reads the reason there
    assert not Path(str(s.sock) + ".tty").exists()
    assert env.env_list() == []


def test_sigkill_exit_code(env):
    s = env.shim(["sleep", "100"])
    assert s.line.startswith("ok "), s.line
    s.start()
    env.runc("kill", s.cid, "KILL")
    assert s.wait_exit() == 137


def test_orphaned_shim_idles_small(env):
    s = env.shim(["sleep", "100"])
    assert s.line.startswith("ok "), s.line
    s.start()
    pid = s.shim_pid
    # the launcher has exited and the shim is nobody's child here
    with open(f"/proc/{pid}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    assert ppid != os.getpid()
    # the shim reaps the container: it is the init's parent (subreaper)
    with open(f"/proc/{s.init_pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == pid
    # its own session, stdio on /dev/null
    assert os.getsid(pid) == pid
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
    rss_kb = int(subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True,
                                text=True, check=True).stdout.strip())
    print(f"berth-shim idle RSS: {rss_kb} KiB")
    assert rss_kb < 2048, rss_kb
    env.runc("kill", s.cid, "KILL")
    assert s.wait_exit() == 137
    env.runc("delete", s.cid)


def test_json_escaping_partial_and_long_lines(env):
    script = (r"""printf 'q"b\\t\tc\001d\177e\033f\r\b\f\303\251\n'; """
              r"""head -c 20000 /dev/zero | tr '\0' x; echo; printf tail""")
    s = env.shim(["sh", "-c", script])
    assert s.line.startswith("ok "), s.line
    s.start()
    assert s.wait_exit() == 0
    raw = s.log.read_bytes()
    assert b'"log":"q\\"b\\\\t\\tc\\u0001d\\u007fe\\u001bf\\r\\b\\f\xc3\xa9\\n"' in raw
    logs = [e["log"] for e in s.log_entries()]
    assert logs[0] == 'q"b\\t\tc\x01d\x7fe\x1bf\r\b\f\u00e9\n'
    assert logs[1] == "x" * 16384                   # partial flushed at 16 KiB
    assert logs[2] == "x" * (20000 - 16384) + "\n"
    assert logs[3] == "tail"                        # partial flushed at EOF
    assert len(logs) == 4


def test_bad_arguments_exit_2(shim_bin, tmp_path):
    for args in ([], ["--id", "x"], ["--bogus"],
                 ["--id", "x", "--bundle", "b", "--runtime", RUNC, "--runtime-root", "r",
                  "--log", "l", "--log-max-size", "-1", "--log-max-files", "1",
                  "--socket", "s", "--exit-file", "e"],
                 ["--id", "x", "--bundle", "b", "--runtime", RUNC, "--runtime-root", "r",
                  "--log", "l", "--log-max-size", "0", "--log-max-files", "0",
                  "--socket", "s", "--exit-file", "e"]):
        res = subprocess.run([shim_bin, *args], capture_output=True, text=True, timeout=10, cwd=tmp_path)
        assert res.returncode == 2, (args, res)
        assert "usage:" in res.stderr
        assert res.stdout == ""
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ tty, resize


def test_tty_output_resize_before_start_and_log(env):
    s = env.shim(["sh", "-c", "tty; stty size; echo done"], tty=True)
    assert re.fullmatch(r"ok \d+\n", s.line), (s.line, s.stderr)
    assert not Path(str(s.sock) + ".tty").exists(), "the console socket is removed once runc sent the pty"
    assert s.resize(30, 100) == b"+"          # after create, before start
    client = s.connect(b"a")
    s.start()
    frames = read_frames(client)
    client.close()
    assert {st for st, _ in frames} == {1}, "a terminal has one output stream"
    out = joined(frames, 1)
    assert b"/dev/pts/0" in out and b"30 100" in out and b"done" in out, out
    assert s.wait_exit() == 0
    entries = s.log_entries()
    assert {e["stream"] for e in entries} == {"stdout"}
    assert [e["log"] for e in entries] == ["/dev/pts/0\r\n", "30 100\r\n", "done\r\n"]


def test_tty_interactive_shell(env):
    s = env.shim(["sh"], tty=True)
    assert s.line.startswith("ok "), (s.line, s.stderr)
    client = s.connect(b"A")
    quitter = s.connect(b"A")                 # with a TTY an 'A' client's EOF closes nothing
    reader = FrameReader(client)
    s.start()
    reader.until(rb"# ")                      # the prompt
    quitter.shutdown(socket.SHUT_WR)
    quitter.close()
    assert s.resize(40, 120) == b"+"          # while running
    client.sendall(b"stty size\n")
    reader.until(rb"(^|\n)40 120\r\n")
    client.sendall(b"echo hi\nexit 3\n")
    out = reader.to_eof()
    client.close()
    assert re.search(rb"(^|\n)hi\r\n", out), out
    assert s.wait_exit() == 3


def test_tty_output_is_drained_at_exit(env):
    # 300 KB written just before the init exits: the shim reads the pty to EIO
    s = env.shim(["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' y | fold -w 100; echo; echo end"], tty=True)
    assert s.line.startswith("ok "), (s.line, s.stderr)
    client = s.connect(b"a")
    s.start()
    out = joined(read_frames(client), 1)
    client.close()
    assert out == b"y" * 100 + b"".join([b"\r\n" + b"y" * 100] * 2999) + b"\r\nend\r\n"
    assert s.wait_exit() == 0
    logs = [e["log"] for e in s.log_entries()]
    assert len(logs) == 3001 and logs[-1] == "end\r\n"


def test_resize_without_tty_is_refused(env):
    s = env.shim(["sleep", "100"])
    assert s.line.startswith("ok "), s.line
    assert s.resize(30, 100) == b"-"
    s.start()
    assert s.resize(30, 100) == b"-"
    env.runc("kill", s.cid, "KILL")
    assert s.wait_exit() == 137


def test_idle_tty_shim_is_small(env):
    s = env.shim(["sleep", "100"], tty=True)
    assert s.line.startswith("ok "), s.line
    s.start()
    pid = s.shim_pid
    with open(f"/proc/{s.init_pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == pid
    rss_kb = int(subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True,
                                text=True, check=True).stdout.strip())
    print(f"berth-shim idle RSS with a TTY: {rss_kb} KiB")
    assert rss_kb < 2048, rss_kb
    env.runc("kill", s.cid, "KILL")
    assert s.wait_exit() == 137


# ------------------------------------------------------------------ exec


@pytest.fixture
def running(env) -> Shim:
    """A running `sleep` container made by a normal-mode shim."""
    s = env.shim(["sleep", "100"])
    assert s.line.startswith("ok "), (s.line, s.stderr)
    s.start()
    return s


def container_running(env: Env, s: Shim) -> bool:
    state = json.loads(env.runc("state", s.cid).stdout)
    return state["status"] == "running" and alive(s.init_pid)


def test_exec_output_exit_code_and_container_keeps_running(env, running):
    e = env.exec_shim(running, ["sh", "-c", "echo from exec; exit 5"])
    assert e.line == "ok 0\n", (e.line, e.stderr)
    assert e.returncode == 0
    client = e.connect(b"a")
    watcher = e.connect(b"w")
    answer = e.exec_start()
    assert re.fullmatch(rb"ok \d+\n", answer), answer
    assert int(answer.split()[1]) != running.init_pid
    frames = read_frames(client)
    client.close()
    assert joined(frames, 1) == b"from exec\n"
    assert joined(frames, 2) == b""
    assert watcher.recv(1) == b""
    watcher.close()
    assert e.exit_file.read_text() == "5\n"
    assert not e.log.exists(), "no --log, nothing logged"
    assert not Path(str(e.sock) + ".tty").exists()
    wait_for(lambda: not pids_with_arg(e.sock), 10, "exec shim to exit")
    assert not os.path.exists(e.sock)
    assert container_running(env, running)
    env.runc("kill", running.cid, "KILL")
    assert running.wait_exit() == 137


def test_exec_stdin_and_log(env, running):
    e = env.exec_shim(running, ["cat"], stdin=True, log=True)
    assert e.line == "ok 0\n", (e.line, e.stderr)
    client = e.connect(b"A")
    client.sendall(b"early\n")             # buffered in the pipe until the exec starts
    assert e.exec_start().startswith(b"ok ")
    client.sendall(b"late\n")
    client.shutdown(socket.SHUT_WR)         # closes cat's stdin
    assert joined(read_frames(client), 1) == b"early\nlate\n"
    client.close()
    assert e.wait_exit() == 0
    assert [(x["stream"], x["log"]) for x in e.log_entries()] == [("stdout", "early\n"), ("stdout", "late\n")]
    assert container_running(env, running)


def test_exec_tty_cat_echoes(env, running):
    e = env.exec_shim(running, ["sh", "-c", "cat; stty size"], tty=True)
    assert e.line == "ok 0\n", (e.line, e.stderr)
    client = e.connect(b"A")
    reader = FrameReader(client)
    answer = e.exec_start()
    assert re.fullmatch(rb"ok \d+\n", answer), answer
    assert not Path(str(e.sock) + ".tty").exists()
    assert e.exec_start() == b"", "only the first 'S' counts"
    client.sendall(b"hello\n")
    reader.until(rb"hello\r\n(.|\n)*hello\r\n")     # the terminal's echo, then cat's copy
    assert e.resize(33, 99) == b"+"
    client.sendall(b"\x04")                             # ^D: cat sees EOF
    out = reader.to_eof()
    client.close()
    assert b"33 99" in out, out
    assert e.wait_exit() == 0
    assert container_running(env, running)


def test_exec_missing_binary(env, running):
    e = env.exec_shim(running, ["/no/such/binary"])
    assert e.line == "ok 0\n", (e.line, e.stderr)
    watcher = e.connect(b"w")
    answer = e.exec_start()
    assert re.fullmatch(rb"error runc exec exited with status \d+\n", answer), answer
    assert watcher.recv(1) == b""
    watcher.close()
    assert e.exit_file.read_text() == "126\n"
    wait_for(lambda: not pids_with_arg(e.sock), 10, "exec shim to exit")
    assert not os.path.exists(e.sock)
    assert container_running(env, running)
