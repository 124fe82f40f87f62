"""``berth registry serve`` as a subprocess on a free 127.0.0.1 port, for tests.

    with BerthRegistry(root) as reg:       # or reg.start() ... reg.stop()
        urlopen(reg.url + "/v2/")
"""
from __future__ import annotations

import http.client
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.nets import free_port

BERTH = Path(sys.executable).parent / "berth"


class Loopback:
    """A server of the tests' on 127.0.0.1 (``port`` set by its start)."""

    port: int
    tls: object

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.addr}"


class BerthRegistry(Loopback):
    def __init__(self, root: str, htpasswd: str | None = None, tls: tuple[str, str] | None = None,
                 read_only: bool = False, extra: tuple[str, ...] = ()) -> None:
        self.root, self.htpasswd, self.tls, self.read_only, self.extra = root, htpasswd, tls, read_only, extra
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._log = tempfile.NamedTemporaryFile(prefix="bt-registry-", suffix=".log", delete=False)

    def log(self) -> str:
        with open(self._log.name, errors="replace") as f:
            return f.read()

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            ctx.check_hostname = False
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request; (status, headers with lower-case names, body)."""
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def _answers(self) -> bool:
        conn = self.connection(timeout=2)
        try:
            conn.request("GET", "/v2/")
            return conn.getresponse().status in (200, 401)
        except OSError:
            return False
        finally:
            conn.close()

    def start(self, timeout: float = 20.0) -> "BerthRegistry":
        for _ in range(3):  # another process may take the free port first
            self.port = free_port()
            cmd = [str(BERTH), "registry", "serve", "--addr", self.addr, "--root", self.root]
            if self.htpasswd:
                cmd += ["--htpasswd", self.htpasswd]
            if self.tls:
                cmd += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
            if self.read_only:
                cmd.append("--read-only")
            cmd += list(self.extra)
            self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._answers():
                    return self
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.stop()
                raise AssertionError(f"berth registry did not answer within {timeout}s:\n{self.log()}")
        raise AssertionError(f"berth registry exited {self.proc.returncode}:\n{self.log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: a crash, for crash-safety tests."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._log.close()
        try:
            os.unlink(self._log.name)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "BerthRegistry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
