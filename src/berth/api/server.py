"""Listening sites: Unix sockets (mode 0660, group berth) and loopback TCP."""
from __future__ import annotations

import grp
import os
from urllib.parse import urlparse

from aiohttp import web

from berth.config import check_host


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
        else:
            check_host(host)
            u = urlparse(host)
            site = web.TCPSite(runner, u.hostname, u.port or 2375)
            await site.start()
        sites.append(site)
    return sites
