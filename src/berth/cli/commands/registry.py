"""``berth registry serve|gc``: berth's own registry server (berth.registry.server, loaded lazily)."""
from __future__ import annotations

import os

from berth.cli.common import Usage, parser

DEFAULT_ROOT = "/var/lib/berth-registry"


def serve(api, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS]")
    p.add_argument("--addr", default="127.0.0.1:5000", help="HOST:PORT to listen on")
    p.add_argument("--root", default=DEFAULT_ROOT, help="storage directory")
    p.add_argument("--htpasswd", default=None, help="htpasswd file of bcrypt entries; turns on Basic auth")
    p.add_argument("--tls-cert", default=None)
    p.add_argument("--tls-key", default=None)
    p.add_argument("--read-only", action="store_true", help="refuse every write with 405 UNSUPPORTED")
    p.add_argument("--max-body", type=int, default=0, help="largest blob upload in bytes (0: no limit)")
    a = p.parse_args(argv)
    if bool(a.tls_cert) != bool(a.tls_key):
        raise Usage(f"berth {name}: --tls-cert and --tls-key go together")
    for path in (a.htpasswd, a.tls_cert, a.tls_key):
        if path and not os.path.isfile(path):
            raise Usage(f"berth {name}: {path}: no such file")
    from berth.registry.server.app import Config
    from berth.registry.server.main import serve as run, split_addr
    try:
        split_addr(a.addr)
    except ValueError as e:
        raise Usage(f"berth {name}: {e}") from None
    config = Config(root=a.root, htpasswd=a.htpasswd, read_only=a.read_only, max_body=a.max_body)
    return run(a.addr, config, (a.tls_cert, a.tls_key) if a.tls_cert else None)


def gc(api, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS]")
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--dry-run", action="store_true", help="only print what would be removed")
    a = p.parse_args(argv)
    if not os.path.isdir(a.root):
        raise Usage(f"berth {name}: {a.root}: no such directory")
    from berth.registry.server.main import gc as run
    return run(a.root, a.dry_run)
