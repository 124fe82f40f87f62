"""Listening sites: Unix sockets (mode 0660, group berth) and loopback TCP."""
from __future__ import annotations

import grp
import os
from urllib.parse import urlparse

from aiohttp import web

from berth.errors import InvalidArgument


async def listen(runner: web.AppRunner, hosts: list[str]) -> list[web.BaseSite]:
    sites: list[web.BaseSite] = []
    for host in hosts:
        if host.startswith("unix://"):
            path = host[len("unix://"):]
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            if os.path.exists(path):
                os.unlink(path)
            site: web.BaseSite = web.UnixSite(runner, path)
            await site.start()
            os.chmod(path, 0o660)
            try:
                os.chown(path, 0, grp.getgrnam("berth").gr_gid)
            except KeyError:
                pass
        elif host.startswith("tcp://"):
            u = urlparse(host)
            if u.hostname not in ("127.0.0.1", "localhost", "::1"):
                raise InvalidArgument(f"refusing to listen on {host}: TCP without TLS is allowed on loopback only")
            site = web.TCPSite(runner, u.hostname, u.port or 2375)
            await site.start()
        else:
            raise InvalidArgument(f"invalid host {host!r}: use unix://PATH or tcp://127.0.0.1:PORT")
        sites.append(site)
    return sites
