"""Docker's JSON progress messages (jsonmessage) from Progress values, and X-Registry-Auth decoding."""
from __future__ import annotations

import base64
import binascii
import json

from berth.errors import InvalidArgument
from berth.registry.auth import Credentials
from berth.types.progress import Progress
from berth.types.units import human_size

_BAR = 50


def bar(current: int, total: int | None) -> str:
    if not total or total <= 0:
        return human_size(current)
    filled = min(_BAR, int(_BAR * current / total))
    arrow = "=" * max(filled - 1, 0) + (">" if filled < _BAR and filled else "=" if filled else "")
    return f"[{arrow}{' ' * (_BAR - len(arrow))}] {human_size(current):>8}/{human_size(total)}"


def message(p: Progress) -> dict:
    if p.aux is not None:
        return {"progressDetail": {}, "aux": p.aux}
    out: dict = {"status": p.status}
    if p.current is not None:
        out["progressDetail"] = {"current": p.current, **({"total": p.total} if p.total else {})}
        out["progress"] = bar(p.current, p.total)
    elif p.id:
        out["progressDetail"] = {}
    if p.id:
        out["id"] = p.id
    return out


def error(msg: str) -> dict:
    return {"errorDetail": {"message": msg}, "error": msg}


def registry_auth(header: str | None) -> Credentials:
    """Credentials from an ``X-Registry-Auth`` header (base64url JSON; padding optional; empty = anonymous)."""
    if not header or header.strip() in ("", "e30=", "e30"):
        return Credentials()
    raw = header.strip()
    try:
        doc = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        raise InvalidArgument("invalid X-Registry-Auth header: not base64url-encoded JSON") from None
    return credentials(doc)


def credentials(doc: object) -> Credentials:
    """Credentials from an AuthConfig JSON object (``/auth`` body or the decoded header)."""
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid auth configuration: not a JSON object")
    user, password = str(doc.get("username") or ""), str(doc.get("password") or "")
    if not user and doc.get("auth"):
        try:
            user, _, password = base64.b64decode(str(doc["auth"]), validate=True).decode().partition(":")
        except (ValueError, binascii.Error):
            raise InvalidArgument("invalid auth configuration: bad auth field") from None
    return Credentials(user, password, str(doc.get("identitytoken") or ""), str(doc.get("registrytoken") or ""))
