"""Requests to berthd over a Unix socket or loopback TCP; errors become berth's error taxonomy."""
from __future__ import annotations

import json
import os
import socket

from berth.client.wire import Body, Connection, ProtocolError
from berth.errors import BerthError, Conflict, InvalidArgument, NotFound, NotImplementedYet

DEFAULT_HOST = "unix:///run/berth/berth.sock"
API_PREFIX = "/v1.45"
_ERRORS = {400: InvalidArgument, 404: NotFound, 409: Conflict, 501: NotImplementedYet}


class DaemonUnreachable(Exception):
    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"Cannot connect to the berth daemon at {host}: {reason}. Is berthd running? "
                         "Start it as root with: berthd &  (or pick another daemon with -H or BERTH_HOST)")


def default_host() -> str:
    return os.environ.get("BERTH_HOST") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


class Response:
    def __init__(self, status: int, headers: dict[str, str], raw: Body, conn: Connection) -> None:
        self.status, self.headers, self.raw, self.conn = status, headers, raw, conn

    def json(self):
        data = self.raw.read()
        self.conn.close()
        return json.loads(data) if data else None

    def close(self) -> None:
        self.conn.close()


class Pending:
    """A request sent whose answer is read later (``Transport.finish``)."""

    def __init__(self, conn: Connection, method: str) -> None:
        self.conn, self.method = conn, method


class Transport:
    """One daemon address; every call opens its own connection (cheap on a Unix socket)."""

    def __init__(self, host: str | None = None) -> None:
        self.host = host or default_host()

    def _connect(self) -> Connection:
        h = self.host
        try:
            if h.startswith("unix://"):
                return Connection(socket.AF_UNIX, h[len("unix://"):])
            if h.startswith(("tcp://", "http://")):
                hostport = h.split("://", 1)[1].rstrip("/")
                host, _, port = hostport.rpartition(":")
                return Connection(socket.AF_INET, (host or "127.0.0.1", int(port or 2375)))
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as e:
            raise DaemonUnreachable(h, e.strerror or str(e)) from None
        raise DaemonUnreachable(h, "unsupported address (use unix://PATH or tcp://HOST:PORT)")

    @staticmethod
    def url(path: str, query: dict | None = None) -> str:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        return API_PREFIX + path + ("?" + urlencode(q) if q else "")

    def send(self, method: str, path: str, query: dict | None = None, body=None,
             headers: dict | None = None) -> Pending:
        conn = self._connect()
        conn.send_request(method, self.url(path, query), headers or {}, body)
        return Pending(conn, method)

    def request(self, method: str, path: str, query: dict | None = None, body=None,
                headers: dict | None = None) -> Response:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        return self.finish(self.send(method, path, query, body, hdrs))

    def finish(self, pending: Pending) -> Response:
        conn = pending.conn
        try:
            status, headers = conn.read_head()
        except ProtocolError as e:
            conn.close()
            raise BerthError(f"bad answer from the daemon: {e}") from None
        body = Body(conn, headers, status, pending.method)
        if status >= 400:
            data = body.read()
            conn.close()
            try:
                message = json.loads(data)["message"]
            except (ValueError, KeyError, TypeError):
                message = data[:500].decode(errors="replace").strip() or f"HTTP {status}"
            err = _ERRORS.get(status, BerthError)(message)
            err.status = status
            raise err
        return Response(status, headers, body, conn)

    def hijack(self, path: str, query: dict, body: dict | None = None) -> "Hijacked":
        """POST with ``Upgrade: tcp``; the raw two-way stream after the 101 answer."""
        headers = {"Upgrade": "tcp", "Connection": "Upgrade"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        pending = self.send("POST", path, query, data, headers)
        resp = self.finish(pending)
        return Hijacked(resp.conn)


class Hijacked:
    """The connection after a hijack: bytes already buffered come first."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def recv(self, n: int) -> bytes:
        if self.conn.buf:
            out, self.conn.buf = self.conn.buf[:n], self.conn.buf[n:]
            return out
        return self.conn.sock.recv(n)

    def sendall(self, data: bytes) -> None:
        self.conn.sock.sendall(data)

    def shutdown_write(self) -> None:
        try:
            self.conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def shutdown(self) -> None:
        """End both directions: a thread blocked reading wakes with EOF."""
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.conn.close()


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(s: str, safe: str = "") -> str:
    """Percent-encoding as urllib.parse.quote does it (that module costs milliseconds to import)."""
    keep = _UNRESERVED | frozenset(safe.encode())
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in str(s).encode())


def urlencode(query: dict) -> str:
    """``k=v&...``; list values repeat their key (urllib's doseq)."""
    parts = []
    for k, v in query.items():
        for item in (v if isinstance(v, (list, tuple)) else [v]):
            parts.append(f"{quote(k)}={quote(item)}")
    return "&".join(parts)


def path_quote(s: str) -> str:
    return quote(s, safe="/:@")
