"""HTTP to berthd over a Unix socket or loopback TCP, with the stdlib's http.client (fast to import)."""
from __future__ import annotations

import http.client
import json
import os
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlparse

from berth.errors import BerthError, Conflict, InvalidArgument, NotFound, NotImplementedYet

DEFAULT_HOST = "unix:///run/berth/berth.sock"
API_PREFIX = "/v1.45"


class DaemonUnreachable(Exception):
    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"Cannot connect to the berth daemon at {host}: {reason}. Is berthd running? "
                         "Start it as root with: berthd &  (or pick another daemon with -H or BERTH_HOST)")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None = None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout is not None:
            s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def default_host() -> str:
    return os.environ.get("BERTH_HOST") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    raw: http.client.HTTPResponse
    conn: http.client.HTTPConnection

    def json(self):
        data = self.raw.read()
        return json.loads(data) if data else None

    def close(self) -> None:
        self.conn.close()


_ERRORS = {400: InvalidArgument, 404: NotFound, 409: Conflict, 501: NotImplementedYet}


class Transport:
    """One daemon address; every call opens its own connection (cheap on a Unix socket)."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or default_host()

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        if self.host.startswith("unix://"):
            return _UnixConnection(self.host[len("unix://"):], timeout)
        if self.host.startswith(("tcp://", "http://")):
            u = urlparse(self.host)
            return http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 2375, timeout=timeout)
        raise DaemonUnreachable(self.host, "unsupported address (use unix://PATH or tcp://HOST:PORT)")

    @staticmethod
    def url(path: str, query: dict | None = None) -> str:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        return API_PREFIX + path + ("?" + urlencode(q, doseq=True) if q else "")

    def send(self, method: str, path: str, query: dict | None = None, body: bytes | None = None,
             headers: dict | None = None) -> http.client.HTTPConnection:
        """Send a request and return the connection without reading the answer."""
        conn = self.connection()
        try:
            conn.request(method, self.url(path, query), body=body, headers=headers or {})
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as e:
            raise DaemonUnreachable(self.host, e.strerror or str(e)) from None
        return conn

    def request(self, method: str, path: str, query: dict | None = None, body=None,
                headers: dict | None = None) -> Response:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn = self.send(method, path, query, body, hdrs)
        return self.finish(conn)

    def finish(self, conn: http.client.HTTPConnection) -> Response:
        raw = conn.getresponse()
        resp = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw, conn)
        if raw.status >= 400:
            data = raw.read()
            conn.close()
            try:
                message = json.loads(data)["message"]
            except (ValueError, KeyError, TypeError):
                message = data[:500].decode(errors="replace").strip() or f"HTTP {raw.status}"
            err = _ERRORS.get(raw.status, BerthError)(message)
            err.status = raw.status
            raise err
        return resp

    def hijack(self, path: str, query: dict) -> socket.socket:
        """POST with ``Upgrade: tcp``; return the raw socket after the 101 answer."""
        conn = self.send("POST", path, query, None, {"Upgrade": "tcp", "Connection": "Upgrade", "Content-Length": "0"})
        sock = conn.sock
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                raise BerthError("the daemon closed the connection during attach")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        if status >= 400:
            raise BerthError(head.decode(errors="replace"))
        conn.sock = None  # the socket is ours now
        return _Prefixed(sock, rest)


class _Prefixed:
    """A socket whose first bytes were already read with the HTTP head."""

    def __init__(self, sock: socket.socket, pending: bytes) -> None:
        self.sock = sock
        self.pending = pending

    def recv(self, n: int) -> bytes:
        if self.pending:
            out, self.pending = self.pending[:n], self.pending[n:]
            return out
        return self.sock.recv(n)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


def path_quote(s: str) -> str:
    return quote(s, safe="/:@")
