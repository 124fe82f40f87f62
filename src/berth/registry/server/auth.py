"""HTTP Basic authentication against an Apache/Docker htpasswd file of bcrypt entries.

Successful checks are cached in memory (keyed by a SHA-256 of user and password, never the password
itself) so concurrent pulls do not each pay bcrypt's cost; concurrent first checks of the same
credentials share one bcrypt run. The file is reread, and the cache dropped, when its mtime changes.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os

import bcrypt

REALM = "berth-registry"
CHALLENGE = f'Basic realm="{REALM}"'


def load(path: str) -> dict[str, bytes]:
    """``user:$2y$...`` lines → {user: hash}; other hash kinds are skipped (distribution accepts bcrypt only)."""
    users: dict[str, bytes] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or ":" not in line:
                continue
            user, _, hashed = line.partition(":")
            if hashed.startswith(("$2y$", "$2b$", "$2a$")):
                users[user] = hashed.encode()
    return users


def _check(password: bytes, hashed: bytes) -> bool:
    # bcrypt (the C library) knows $2b$; $2y$ is the same algorithm under PHP's name.
    if hashed.startswith(b"$2y$"):
        hashed = b"$2b$" + hashed[4:]
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False


def credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class Htpasswd:
    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime = -1.0
        self._users: dict[str, bytes] = {}
        self._ok: set[bytes] = set()
        self._pending: dict[bytes, asyncio.Future] = {}
        self._reload()

    def _reload(self) -> None:
        mtime = os.stat(self.path).st_mtime
        if mtime != self._mtime:
            self._users, self._mtime = load(self.path), mtime
            self._ok.clear()

    async def user(self, header: str) -> str | None:
        """The user a request's ``Authorization`` header proves, or None."""
        creds = credentials(header) if header else None
        if creds is None:
            return None
        try:
            self._reload()
        except FileNotFoundError:
            return None
        user, password = creds
        hashed = self._users.get(user)
        if hashed is None:
            return None
        key = hashlib.sha256(b"%s\0%s\0%s" % (user.encode(), password.encode(), hashed)).digest()
        if key in self._ok:
            return user
        fut = self._pending.get(key)
        if fut is None:
            fut = asyncio.ensure_future(asyncio.to_thread(_check, password.encode(), hashed))
            self._pending[key] = fut
            fut.add_done_callback(lambda _f: self._pending.pop(key, None))
        if await asyncio.shield(fut):
            self._ok.add(key)
            return user
        return None
