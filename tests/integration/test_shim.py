"""Integration tests for berth-shim (the C sources in shim/) driving a real runc.

Needs root and runc; skipped otherwise.  Every container gets a unique id and
a runtime root under the test's tmp_path; teardown force-deletes containers,
waits for the shims to exit and checks that no runc state is left.
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


def config_json(args: list[str], rootfs: str) -> dict:
    """A minimal OCI runtime config, modelled on `runc spec`, without a terminal."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
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
    """A shim started for one container, with the paths it was given."""

    def __init__(self, env: "Env", cid: str, bundle: Path, line: str, returncode: int, stderr: str):
        self.env, self.cid, self.bundle = env, cid, bundle
        self.line, self.returncode, self.stderr = line, returncode, stderr
        self.sock = str(env.dir / f"{cid}.sock")
        self.log = env.dir / f"{cid}.log"
        self.exit_file = env.dir / f"{cid}.exit"
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

    def bundle(self, cid: str, args: list[str], rootfs: str | None = None) -> Path:
        b = self.dir / f"bundle-{cid}"
        b.mkdir()
        (b / "config.json").write_text(json.dumps(config_json(args, rootfs or self.rootfs)))
        return b

    def shim(self, args: list[str], *, stdin=False, max_size=0, max_files=1,
             rootfs: str | None = None) -> Shim:
        cid = "bt-" + uuid.uuid4().hex[:12]
        bundle = self.bundle(cid, args, rootfs)
        cmd = [self.shim_bin, "--id", cid, "--bundle", str(bundle), "--runtime", RUNC,
               "--runtime-root", str(self.root), "--log", str(self.dir / f"{cid}.log"),
               "--log-max-size", str(max_size), "--log-max-files", str(max_files),
               "--socket", str(self.dir / f"{cid}.sock"),
               "--exit-file", str(self.dir / f"{cid}.exit")]
        if stdin:
            cmd.append("--stdin")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # The launcher prints one line and exits; the shim proper has its
        # stdio on /dev/null, so EOF arrives as soon as the launcher is gone.
        out, err = proc.communicate(timeout=30)
        shim = Shim(self, cid, bundle, out, proc.returncode, err)
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


def test_failing_create_reports_error(env):
    s = env.shim(["true"], rootfs=str(env.dir / "no-such-rootfs"))
    assert s.line.startswith("error"), s.line
    assert s.line.endswith("\n") and s.line.count("\n") == 1
    assert "runc create exited with status" in s.line
    assert s.returncode == 1
    wait_for(lambda: not pids_with_arg(s.sock), 10, "failed shim to exit")
    assert not os.path.exists(s.sock)
    assert not s.exit_file.exists()
    assert (s.bundle / "runc.log").exists()     # berthd reads the reason there
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
