"""A real berthd on a temporary socket and data root, for integration and compatibility tests."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from busybox_rootfs import make_rootfs_tar  # noqa: E402

BIN = Path(sys.executable).parent


def can_run_containers() -> str | None:
    """None when this machine can run the real thing, else the reason to skip."""
    if os.geteuid() != 0:
        return "needs root (runc, overlayfs, namespaces)"
    for tool in ("runc", "busybox"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not (BIN / "berth-shim").exists():
        return "berth-shim is not built (scripts/install.sh builds it)"
    return None


def wait_for(cond, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


TEST_DNS = "127.0.0.153"


class Daemon:
    """Starts, kills and restarts one berthd; ``api`` and ``cli`` talk to it."""

    def __init__(self, *extra_args: str) -> None:
        # Containers' DNS goes to a loopback address nothing answers on (unless a test serves it),
        # so no test ever sends a query beyond this machine.
        # Its own default bridge (and so its own nft table, berth_<bridge>): daemons never share host links.
        self.bridge = "bt" + secrets.token_hex(4)
        self.extra_args = ["--dns", TEST_DNS, "--bridge", self.bridge, *extra_args]
        self.dir = tempfile.mkdtemp(prefix="bt-", dir="/tmp")
        self.socket = os.path.join(self.dir, "s.sock")
        self.host = "unix://" + self.socket
        self.data_root = os.path.join(self.dir, "data")
        self.exec_root = os.path.join(self.dir, "exec")
        self.log = os.path.join(self.dir, "berthd.log")
        self.proc: subprocess.Popen | None = None

    def start(self, host_flag: bool = True) -> "Daemon":
        """Start berthd; without ``host_flag`` its addresses come from daemon.json alone."""
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self.launcher() + [str(BIN / "berthd")] + (["-H", self.host] if host_flag else []) + [
             "--data-root", self.data_root, "--exec-root", self.exec_root,
             "--config-file", os.path.join(self.dir, "daemon.json"), *self.extra_args],
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        wait_for(self._pings, 20, what="berthd to answer /_ping")
        return self

    def launcher(self) -> list[str]:
        """What berthd's command line starts with before berthd itself (a subclass may run it inside something)."""
        return []

    def _pings(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise AssertionError(f"berthd exited with {self.proc.returncode}: {self.tail_log()}")
        try:
            return self.api("GET", "/_ping")[0] == 200
        except OSError:
            return False

    def tail_log(self, n: int = 3000) -> str:
        with open(self.log, "rb") as f:
            return f.read()[-n:].decode(errors="replace")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def api(self, method: str, path: str, body=None, headers: dict | None = None, raw: bool = False,
            timeout: float = 30):
        """(status, parsed JSON or bytes) for one request."""
        conn = _Unix(self.socket, timeout)
        hdrs = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if raw:
            return resp.status, data
        try:
            return resp.status, json.loads(data) if data else None
        except ValueError:
            return resp.status, data

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = True,
            env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(BIN / "berth"), "-H", self.host, *args], input=input, capture_output=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"berth {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60, check: bool = True):
        proc = subprocess.run(["/usr/local/bin/docker", "-H", self.host, *args], input=input, capture_output=True,
                              timeout=timeout, env={**os.environ, "DOCKER_CONFIG": os.path.join(self.dir, "docker-config")})
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc

    def import_busybox(self, name: str = "busybox:latest") -> str:
        tar = os.path.join(self.dir, "busybox.tar")
        if not os.path.exists(tar):
            make_rootfs_tar(tar)
        repo, tag = name.rsplit(":", 1)
        with open(tar, "rb") as f:
            status, body = self.api("POST", f"/images/create?fromSrc=-&repo={repo}&tag={tag}&changes=CMD%20%5B%22sh%22%5D",
                                    f.read(), {"Content-Type": "application/x-tar"}, raw=True)
        assert status == 200, body
        return json.loads(body.splitlines()[0])["status"]

    def remove_all_containers(self) -> None:
        status, items = self.api("GET", "/containers/json?all=1")
        for c in items or []:
            self.api("DELETE", f"/containers/{c['Id']}?force=1")

    def cleanup(self) -> None:
        """Stop berthd, and remove every container, mount and file it made."""
        if self.proc and self.proc.poll() is None:
            try:
                self.remove_all_containers()
            except OSError:
                pass
        self.stop()
        runtime_root = os.path.join(self.exec_root, "runtime")
        if os.path.isdir(runtime_root):
            for cid in os.listdir(runtime_root):
                subprocess.run(["runc", "--root", runtime_root, "delete", "--force", cid], capture_output=True)
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f if self.dir in line]
        for p in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", p], capture_output=True)
        self.remove_host_network()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def owner(self) -> str:
        """The ifalias berthd puts on the host links it makes (see DaemonConfig.owner)."""
        return "berth:" + hashlib.sha256(os.path.abspath(self.data_root).encode()).hexdigest()[:12]

    def host_links(self) -> list[str]:
        """Names of the host links (bridges, veth host ends) this daemon made and that still exist."""
        from pyroute2 import IPRoute
        with IPRoute() as ipr:
            return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                    if link.get_attr("IFLA_IFALIAS") == self.owner]

    def remove_host_network(self) -> None:
        """What berthd leaves on the host when it stops (as dockerd leaves docker0): its links and nft table."""
        from pyroute2 import IPRoute
        with IPRoute() as ipr:
            for name in self.host_links():
                for idx in ipr.link_lookup(ifname=name):
                    try:
                        ipr.link("del", index=idx)
                    except Exception:  # noqa: BLE001 - gone meanwhile
                        pass
        subprocess.run(["nft", "delete", "table", "ip", "berth_" + self.bridge], capture_output=True)


def started(d: Daemon, ready=None):
    """``d`` started, with busybox:latest and then ``ready(d)`` done (for a fixture to ``yield from``); cleaned up
    afterwards, and also when any of that fails."""
    try:
        d.start()
        d.import_busybox()
        if ready is not None:
            ready(d)
    except BaseException:
        d.cleanup()  # a berthd that failed to start leaves nothing behind either
        raise
    yield d
    d.cleanup()
