"""Registering a handler under both the bare path and the ``/v1.xx/`` prefixed one."""
from __future__ import annotations

from aiohttp import web


def add(routes: web.RouteTableDef | list, method: str, path: str, handler) -> None:
    routes.append(web.route(method, path, handler))
    routes.append(web.route(method, r"/{version:v[0-9]+\.[0-9]+}" + path, handler))
