"""Running the registry (``berth registry serve``) and collecting its garbage (``berth registry gc``)."""
from __future__ import annotations

import ssl
import sys
from typing import TextIO

from berth.registry.server.app import Config, Registry



def split_addr(addr: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``[V6]:PORT`` → (host, port); ValueError otherwise."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"invalid address {addr!r}: want HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def serve(addr: str, config: Config, tls: tuple[str, str] | None = None, out: TextIO = sys.stdout) -> int:
    """Serve until SIGINT/SIGTERM. Upload sessions idle for a day are removed first."""
    from aiohttp import web
    host, port = split_addr(addr)
    ctx = tls_context(*tls) if tls else None
    registry = Registry(config)
    for uid in registry.store.purge_uploads():
        print(f"removed stale upload {uid}", file=out)
    scheme = "https" if ctx else "http"
    mode = ", read-only" if config.read_only else ""
    auth = ", htpasswd auth" if config.htpasswd else ""

    def ready(_msg: str) -> None:
        print(f"berth registry listening on {scheme}://{host}:{port} (root {config.root}{auth}{mode})",
              file=out, flush=True)

    web.run_app(registry.app(), host=host, port=port, ssl_context=ctx, print=ready, access_log=None,
                backlog=1024, shutdown_timeout=5)
    return 0


def gc(root: str, dry_run: bool = False, out: TextIO = sys.stdout) -> int:
    """Remove unreferenced blobs under ``root``; print each and the bytes freed."""
    from berth.registry.server import gc as _gc
    from berth.registry.server.storage import Storage
    report = _gc.collect(Storage(root), dry_run)
    verb = "would remove" if dry_run else "removed"
    for digest, size in report.removed:
        print(f"{verb} blob {digest} ({size} bytes)", file=out)
    for name, digest in report.unlinked:
        print(f"{verb} link {name}@{digest}", file=out)
    print(f"{len(report.removed)} blobs, {report.freed} bytes {'would be ' if dry_run else ''}freed", file=out)
    return 0
