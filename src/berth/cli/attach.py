"""Pumping an attached container's (or exec's) streams to the terminal: raw mode, resizes, detach keys."""
from __future__ import annotations

import contextlib
import os
import struct
import sys
import threading

from berth.types.detach import DEFAULT_DETACH, detach_sequence  # noqa: F401 - used by the commands


def pump_output(sock, tty: bool) -> None:
    """Copy the hijacked stream to stdout/stderr until the daemon closes it."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    if tty:
        while data := sock.recv(65536):
            out.write(data)
            out.flush()
        return
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
        while len(buf) >= 8:
            stream, size = struct.unpack(">BxxxI", buf[:8])
            if len(buf) < 8 + size:
                break
            target = err if stream == 2 else out
            target.write(buf[8:8 + size])
            target.flush()
            buf = buf[8 + size:]


class StdinPump:
    """Sends our stdin to the container in the background; half-closes at its end.

    With ``detach`` set, typing that sequence stops the pump and closes the connection
    (the container keeps running); ``detached`` tells the caller it happened.
    """

    def __init__(self, sock, detach: bytes = b"") -> None:
        self.sock = sock
        self.detach = detach
        self.detached = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        fd = sys.stdin.fileno()
        matched = 0
        try:
            while data := os.read(fd, 65536):
                out = bytearray()
                for b in data:
                    if self.detach and b == self.detach[matched]:
                        matched += 1
                        if matched == len(self.detach):
                            if out:
                                self.sock.sendall(bytes(out))
                            self.detached = True
                            self.sock.shutdown()
                            return
                        continue
                    if matched:
                        out += self.detach[:matched]
                        matched = 0
                    out.append(b)
                if out:
                    self.sock.sendall(bytes(out))
        except OSError:
            return
        self.sock.shutdown_write()


def pump_stdin(sock) -> StdinPump:
    return StdinPump(sock)


@contextlib.contextmanager
def raw_terminal(enabled: bool):
    """Put our terminal in raw mode (if stdin is one) for the duration."""
    if not enabled or not os.isatty(sys.stdin.fileno()):
        yield False
        return
    import termios
    import tty
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size() -> tuple[int, int] | None:
    for stream in (sys.stdout, sys.stdin, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            size = os.get_terminal_size(stream.fileno())
            return size.lines, size.columns
    return None


def follow_resizes(resize) -> None:
    """Call ``resize(rows, cols)`` now and on every SIGWINCH."""
    import signal

    def apply(*_):
        size = terminal_size()
        if size:
            with contextlib.suppress(Exception):
                resize(*size)

    apply()
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGWINCH, apply)
