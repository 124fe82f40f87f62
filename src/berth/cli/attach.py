"""Pumping an attached container's streams to the terminal."""
from __future__ import annotations

import os
import struct
import sys
import threading


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


def pump_stdin(sock) -> threading.Thread:
    """Send our stdin to the container in the background; half-close at its end."""
    def run() -> None:
        fd = sys.stdin.fileno()
        try:
            while data := os.read(fd, 65536):
                sock.sendall(data)
        except OSError:
            pass
        sock.shutdown_write()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t
