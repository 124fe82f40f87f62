"""Answering a registry's 401: Basic credentials, or the Bearer token flow with tokens cached per scope.

The token flow is Docker's: the challenge names a realm, a service and a scope; a GET to the realm
(with Basic credentials when there are any) returns ``token``/``access_token``; an identity token
(a refresh token from a login) is exchanged with an OAuth2 POST instead.
"""
from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from berth.errors import Unauthorized

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
MIN_TOKEN_LIFE = 60  # seconds, as Docker assumes when a token server gives less or none


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""   # an OAuth2 refresh token from a login
    registry_token: str = ""   # a bearer token handed over as is

    def __bool__(self) -> bool:
        return bool(self.username or self.identity_token or self.registry_token)

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str                 # "basic" or "bearer"
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges of one ``WWW-Authenticate`` header (RFC 7235; several may share the header)."""
    out: list[Challenge] = []
    rest = header.strip()
    while rest:
        m = re.match(r"([A-Za-z][A-Za-z0-9_-]*)\s*", rest)
        if not m:
            break
        scheme, rest = m.group(1).lower(), rest[m.end():]
        params: dict[str, str] = {}
        while (p := _PARAM.match(rest)) and p.group(0):
            # A bare word followed by a word (no "=") starts the next challenge.
            params[p.group(1).lower()] = p.group(2) if p.group(2) is not None else p.group(3)
            rest = rest[p.end():]
            if re.match(r"[A-Za-z][A-Za-z0-9_-]*\s+[A-Za-z]", rest):
                break
        out.append(Challenge(scheme, {k: re.sub(r"\\(.)", r"\1", v) for k, v in params.items()}))
        rest = rest.lstrip(", ")
    return out


class TokenFetcher(Protocol):
    """Asks a token server: GET (with optional Basic) or the OAuth2 refresh-token POST; returns JSON."""

    def __call__(self, realm: str, query: list[tuple[str, str]], authorization: str | None,
                 form: dict[str, str] | None) -> Awaitable[dict]: ...


class TokenCache:
    """Bearer tokens by (realm, service, scopes, user) until shortly before they expire."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self._clock = clock
        self.hits = 0  # tokens served from the cache (a caller can tell whether its token was one)

    def get(self, key: tuple) -> str | None:
        hit = self._tokens.get(key)
        if hit and hit[1] > self._clock():
            self.hits += 1
            return hit[0]
        self._tokens.pop(key, None)
        return None

    def drop(self, token: str) -> None:
        """Forget ``token`` (a registry refused it before it expired)."""
        for key in [k for k, (t, _) in self._tokens.items() if t == token]:
            del self._tokens[key]

    def put(self, key: tuple, token: str, expires_in: int) -> None:
        life = max(int(expires_in or 0), MIN_TOKEN_LIFE)
        self._tokens[key] = (token, self._clock() + life - 5)


async def authorization(challenges: list[Challenge], scopes: list[str], creds: Credentials,
                        cache: TokenCache, fetch: TokenFetcher, registry: str) -> str:
    """The ``Authorization`` value answering ``challenges`` for ``scopes``; Unauthorized if none can."""
    for ch in challenges:
        if ch.scheme == "bearer" and ch.params.get("realm"):
            if creds.registry_token:
                return "Bearer " + creds.registry_token
            return "Bearer " + await _token(ch.params, scopes, creds, cache, fetch)
    for ch in challenges:
        if ch.scheme == "basic":
            if not creds.username:
                raise Unauthorized(f"{registry}: authentication required")
            return creds.basic()
    raise Unauthorized(f"{registry}: unsupported authentication challenge")


async def _token(params: dict[str, str], scopes: list[str], creds: Credentials, cache: TokenCache,
                 fetch: TokenFetcher) -> str:
    realm, service = params["realm"], params.get("service", "")
    wanted = merge_scopes([*scopes, *params.get("scope", "").split()])
    key = (realm, service, tuple(wanted), creds.username, creds.identity_token)
    token = cache.get(key)
    if token:
        return token
    if creds.identity_token:
        form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "service": service,
                "client_id": "berth", "scope": " ".join(wanted)}
        doc = await fetch(realm, [], None, form)
    else:
        query = ([("service", service)] if service else []) + [("scope", s) for s in wanted]
        if creds.username:
            query.append(("account", creds.username))
        doc = await fetch(realm, query, creds.basic() if creds.username else None, None)
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise Unauthorized(f"the token server {realm} returned no token")
    expires = doc.get("expires_in") if isinstance(doc.get("expires_in"), int) else 0
    cache.put(key, token, expires)
    return token


def merge_scopes(scopes: list[str]) -> list[str]:
    """One scope per resource with the union of its actions: ``repository:a:pull`` + ``repository:a:pull,push``
    is ``repository:a:pull,push``."""
    merged: dict[str, set[str]] = {}
    for scope in scopes:
        resource, _, actions = scope.rpartition(":")
        if resource:
            merged.setdefault(resource, set()).update(a for a in actions.split(",") if a)
    order = {"pull": 0, "push": 1}
    return [f"{r}:{','.join(sorted(a, key=lambda x: (order.get(x, 2), x)))}" for r, a in sorted(merged.items())]


def repository_scope(path: str, push: bool = False) -> str:
    return f"repository:{path}:{'pull,push' if push else 'pull'}"
