"""The aiohttp application: middleware plus one route table per module."""
from __future__ import annotations

from aiohttp import web

from berth.api import middleware
from berth.api.routers import (archive, builds, containers, distribution, events, execs, images, monitoring, networks,
                               stubs, system, volumes)


def make_app(services: dict) -> web.Application:
    """``services`` holds: system, images, containers, lifecycle, events, tmp_dir."""
    app = web.Application(middlewares=[middleware.errors], client_max_size=0)
    for key, value in services.items():
        app[key] = value
    for module in (system, builds, distribution, images, containers, execs, events, monitoring, archive, networks, volumes, stubs):
        app.router.add_routes(module.routes(app))
    return app
