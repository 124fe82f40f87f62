"""A minimal HTTP/1.1 client connection over a Unix or TCP socket.

The stdlib's http.client pulls in email, ssl and more (about 30 ms of a
command's start); the CLI needs only requests with a body or a chunked
stream, and responses with a length, chunks, or a close.
"""
from __future__ import annotations

import socket


class ProtocolError(Exception):
    pass


class Connection:
    def __init__(self, family: int, address, timeout: float | None = None) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if timeout is not None:
            self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buf = b""

    def send_request(self, method: str, target: str, headers: dict[str, str], body=None) -> None:
        head = [f"{method} {target} HTTP/1.1", "Host: localhost", "User-Agent: berth-cli"]
        chunked = body is not None and not isinstance(body, (bytes, bytearray))
        if chunked:
            head.append("Transfer-Encoding: chunked")
        elif body is not None:
            head.append(f"Content-Length: {len(body)}")
        elif method in ("POST", "PUT"):
            head.append("Content-Length: 0")
        head += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("content-length", "transfer-encoding")]
        data = ("\r\n".join(head) + "\r\n\r\n").encode()
        if not chunked:
            self.sock.sendall(data + (body or b""))
            return
        self.sock.sendall(data)
        for chunk in body:
            if chunk:
                self.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.sock.sendall(b"0\r\n\r\n")

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ProtocolError("connection closed before the response head")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ProtocolError(f"malformed status line: {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return int(parts[1]), headers

    def close(self) -> None:
        self.sock.close()


class Body:
    """A response body: ``read()``, ``read1(n)`` and line iteration, whatever its framing."""

    def __init__(self, conn: Connection, headers: dict[str, str], status: int, method: str) -> None:
        self.conn = conn
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        no_body = status in (101, 204, 304) or method == "HEAD"
        self.remaining = 0 if no_body else (int(length) if length is not None and not self.chunked else -1)
        self.done = self.remaining == 0
        self.chunk_left = 0

    def _take(self, n: int) -> bytes:
        c = self.conn
        if not c.buf and not c._fill():
            self.done = True
            return b""
        out, c.buf = c.buf[:n], c.buf[n:]
        return out

    def read1(self, n: int = 65536) -> bytes:
        if self.done:
            return b""
        c = self.conn
        if self.chunked:
            if self.chunk_left == 0:
                while b"\r\n" not in c.buf:
                    if not c._fill():
                        raise ProtocolError("connection closed inside a chunked body")
                line, c.buf = c.buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.done = True
                    return b""
                self.chunk_left = size
            data = self._take(min(n, self.chunk_left))
            self.chunk_left -= len(data)
            if self.chunk_left == 0:
                while len(c.buf) < 2:
                    if not c._fill():
                        break
                c.buf = c.buf[2:]
            return data
        if self.remaining < 0:
            return self._take(n)
        data = self._take(min(n, self.remaining))
        self.remaining -= len(data)
        if self.remaining == 0:
            self.done = True
        return data

    recv = read1

    def read(self, n: int = -1) -> bytes:
        out = []
        total = 0
        while n < 0 or total < n:
            data = self.read1(65536 if n < 0 else min(65536, n - total))
            if not data:
                break
            out.append(data)
            total += len(data)
        return b"".join(out)

    def __iter__(self):
        pending = b""
        while data := self.read1():
            pending += data
            *lines, pending = pending.split(b"\n")
            yield from (line + b"\n" for line in lines)
        if pending:
            yield pending
