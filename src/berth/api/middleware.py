"""Errors as Docker's JSON, API version prefixes, and 501 for routes not implemented yet."""
from __future__ import annotations

import json
import logging

from aiohttp import web

from berth.errors import BerthError, InvalidArgument
from berth.services.system import API_VERSION, MIN_API_VERSION

log = logging.getLogger("berthd.api")


def json_response(obj, status: int = 200) -> web.Response:
    """JSON with exactly ``Content-Type: application/json``: Docker's clients compare the whole header."""
    return web.Response(body=json.dumps(obj).encode(), status=status, headers={"Content-Type": "application/json"})


def error_response(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status=status)


def _version_tuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        return (0,)


@web.middleware
async def errors(request: web.Request, handler):
    version = request.match_info.get("version")
    if version:
        v = version[1:]
        if _version_tuple(v) > _version_tuple(API_VERSION):
            return error_response(400, f"client version {v} is too new. Maximum supported API version is {API_VERSION}")
        if _version_tuple(v) < _version_tuple(MIN_API_VERSION):
            return error_response(400, f"client version {v} is too old. Minimum supported API version is "
                                       f"{MIN_API_VERSION}, please upgrade your client to a newer version")
    try:
        return await handler(request)
    except BerthError as e:
        if e.status == 304:
            return web.Response(status=304)
        return error_response(e.status, e.message)
    except web.HTTPNotFound:
        return error_response(501, f"berth does not implement {request.method} {request.path} yet")
    except web.HTTPMethodNotAllowed:
        return error_response(501, f"berth does not implement {request.method} {request.path} yet")
    except web.HTTPException:
        raise
    except (ConnectionResetError, BrokenPipeError):
        raise
    except Exception as e:  # noqa: BLE001 - the client gets a message, the log the traceback
        log.exception("internal error on %s %s", request.method, request.path)
        return error_response(500, f"internal error: {e}")


async def json_body(request: web.Request, required: bool = True) -> dict:
    """The request's JSON object; 400 for malformed JSON or a non-object."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise InvalidArgument("request body is empty: a JSON object was expected")
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"invalid JSON in request body: {e}") from None
    if not isinstance(body, dict):
        raise InvalidArgument("request body must be a JSON object")
    return body


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    return v.lower() not in ("0", "false", "")


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    v = request.query.get(name)
    if v in (None, ""):
        return default
    try:
        return int(v)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {v!r} is not an integer") from None
