"""The Registry HTTP API v2 / OCI distribution client: manifests, blobs, uploads, tags, login.

One ``RegistryHTTP`` (an aiohttp session, the scheme choices and the token cache) serves the daemon;
a ``Repository`` is one repository on one endpoint with one set of credentials. Every failure is a
berth error whose one line names the registry and repository.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import aiohttp

from berth.errors import BerthError, Forbidden, InvalidArgument, NotFound, SystemError_, Unauthorized
from berth.registry.auth import Credentials, TokenCache, authorization, parse_challenges, repository_scope
from berth.registry.hosts import Endpoint, Hosts
from berth.types import manifest as mf

_CHUNK = 1 << 20
MONOLITHIC_MAX = 1 << 20      # blobs up to this size go in one PUT; larger ones in PATCH chunks
CHUNK_SIZE = 64 << 20
Progress = Callable[[int], None]  # bytes moved so far


class RegistryHTTP:
    """The shared HTTP side: one connection pool, TLS contexts and tokens for every registry."""

    def __init__(self, hosts: Hosts, tokens: TokenCache | None = None, user_agent: str = "berth") -> None:
        self.hosts = hosts
        self.tokens = tokens or TokenCache()
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=20, sock_read=120),
                headers={"User-Agent": self.user_agent}, auto_decompress=False,
                connector=aiohttp.TCPConnector(limit=64, force_close=False))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def fetch_token(self, realm: str, query: list[tuple[str, str]], authz: str | None,
                          form: dict[str, str] | None) -> dict:
        headers = {"Authorization": authz} if authz else {}
        method, kw = ("POST", {"data": form}) if form is not None else ("GET", {"params": query})
        try:
            async with self.session().request(method, realm, headers=headers, **kw) as resp:
                body = await resp.read()
                if resp.status in (401, 403):
                    raise Unauthorized(_error_text(body) or f"{realm}: {resp.status} {resp.reason}")
                if resp.status != 200:
                    raise SystemError_(f"token server {realm} answered {resp.status} {resp.reason}")
                return json.loads(body)
        except aiohttp.ClientError as e:
            raise SystemError_(f"token server {realm}: {e}") from None
        except ValueError:
            raise SystemError_(f"token server {realm} answered with something that is not JSON") from None

    def repository(self, endpoint: Endpoint, path: str, creds: Credentials, push: bool = False,
                   extra_scopes: tuple[str, ...] = ()) -> "Repository":
        return Repository(self, endpoint, path, creds, push, extra_scopes)


class Repository:
    """One repository on one endpoint, seen with one set of credentials."""

    def __init__(self, http: RegistryHTTP, endpoint: Endpoint, path: str, creds: Credentials, push: bool,
                 extra_scopes: tuple[str, ...] = ()) -> None:
        self.http, self.endpoint, self.path, self.creds = http, endpoint, path, creds
        self.scopes = [repository_scope(path, push), *extra_scopes] if path else []
        self._authz: str | None = None
        self._base = ""

    @property
    def name(self) -> str:
        return f"{self.endpoint.host}/{self.path}" if self.path else self.endpoint.host

    # -- requests --------------------------------------------------------------
    async def request(self, method: str, url: str, *, headers: dict | None = None,
                      body: Callable[[], Any] | None = None, params: dict | None = None) -> aiohttp.ClientResponse:
        """Send, answering a 401 challenge (again with a fresh token when a cached one was refused); the caller
        releases the response. ``url`` may be a path."""
        cached = bool(self._authz)  # whether the token being sent came from a cache (ours, or an earlier request)
        while True:
            resp = await self._send(method, url, headers, body, params)
            if resp.status != 401 or (self._authz and not cached):
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            detail = _error_text(await resp.read())
            resp.release()
            if not challenge:
                raise Unauthorized(f"{self.name}: {detail or 'unauthorized'}")
            if cached and self._authz and self._authz.startswith("Bearer "):
                self.http.tokens.drop(self._authz[len("Bearer "):])  # refused before it expired: ask anew
            hits = self.http.tokens.hits
            self._authz = await authorization(parse_challenges(challenge), self.scopes, self.creds,
                                              self.http.tokens, self.http.fetch_token, self.name)
            cached = self.http.tokens.hits > hits

    async def _send(self, method: str, url: str, headers: dict | None, body, params) -> aiohttp.ClientResponse:
        hdrs = dict(headers or {})
        if self._authz:
            hdrs["Authorization"] = self._authz
        schemes = [self._base] if self._base else self.http.hosts.schemes(self.endpoint)
        last: Exception | None = None
        for scheme in schemes:
            base = f"{scheme}://{self.endpoint.host}"
            full = urljoin(base + "/", url) if not url.startswith(("http://", "https://")) else url
            try:
                ssl = self.http.hosts.ssl_context(self.endpoint) if full.startswith("https:") else False
                resp = await self.http.session().request(method, full, headers=hdrs, params=params,
                                                         data=body() if body else None, ssl=ssl)
            except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError, aiohttp.ServerDisconnectedError,
                    aiohttp.ClientOSError) as e:
                last = e
                continue
            except aiohttp.ClientError as e:
                raise SystemError_(f"{self.name}: {e}") from None
            if not self._base:
                self._base = scheme
                self.http.hosts.worked(self.endpoint, scheme)
            return resp
        raise SystemError_(f"cannot reach registry {self.endpoint.host}: {_short(last)}")

    async def _fail(self, resp: aiohttp.ClientResponse, what: str) -> BerthError:
        text = _error_text(await resp.read()) or f"{resp.status} {resp.reason}"
        resp.release()
        if resp.status == 404:
            return NotFound(f"{what}: {text}")
        if resp.status == 401:
            return Unauthorized(f"{what}: {text}")
        if resp.status == 403:
            return Forbidden(f"{what}: {text}")
        if resp.status == 400:
            return InvalidArgument(f"{what}: {text}")
        return SystemError_(f"{what}: {text}")

    # -- reading -----------------------------------------------------------------
    async def ping(self) -> None:
        """``GET /v2/`` with the credentials: succeeds only when the registry accepts them."""
        resp = await self.request("GET", "/v2/")
        if resp.status != 200:
            raise await self._fail(resp, f"login to {self.endpoint.host} failed")
        resp.release()

    async def manifest(self, ref: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of the manifest ``ref`` (a tag or digest), verified."""
        resp = await self.request("GET", f"/v2/{self.path}/manifests/{ref}", headers={"Accept": mf.ACCEPT})
        if resp.status != 200:
            raise await self._fail(resp, f"manifest for {self.name}:{ref} not found" if resp.status == 404
                                   else f"error reading manifest {ref} of {self.name}")
        try:
            data = await _read_limited(resp, mf.MAX_MANIFEST, f"manifest {ref} of {self.name}")
        except aiohttp.ClientError as e:
            raise SystemError_(f"error reading manifest {ref} of {self.name}: {e}") from None
        finally:
            resp.release()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        expected = ref if mf.DIGEST.match(ref) else resp.headers.get("Docker-Content-Digest", "")
        if mf.DIGEST.match(expected):
            algo = expected.split(":", 1)[0]
            got = f"{algo}:{hashlib.new(algo, data).hexdigest()}"
            if got != expected:
                raise InvalidArgument(f"manifest verification failed for digest {expected} of {self.name}: "
                                      f"content is {got}")
            if algo != "sha256" and expected == ref:
                digest = expected
        return data, resp.headers.get("Content-Type", ""), digest

    async def manifest_digest(self, ref: str) -> str | None:
        resp = await self.request("HEAD", f"/v2/{self.path}/manifests/{ref}", headers={"Accept": mf.ACCEPT})
        resp.release()
        return resp.headers.get("Docker-Content-Digest") if resp.status == 200 else None

    async def download(self, digest: str, size: int, dest: str, progress: Progress | None = None,
                       what: str = "filesystem layer") -> None:
        """Stream blob ``digest`` into the new file ``dest``, verifying its digest (and size) as it comes."""
        with open(dest, "wb") as out:
            await self.stream(digest, size, out.write, progress, what)

    async def stream(self, digest: str, size: int, sink: Callable[[bytes], Any],
                     progress: Progress | None = None, what: str = "filesystem layer") -> None:
        """Hand blob ``digest`` to ``sink`` chunk by chunk (awaiting it when it returns an awaitable); raises
        after the last chunk if the bytes do not match the digest (or ``size``, when not negative)."""
        resp = await self.request("GET", f"/v2/{self.path}/blobs/{digest}")
        if resp.status != 200:
            raise await self._fail(resp, f"error pulling blob {digest[:19]} of {self.name}")
        h, done = hashlib.new(digest.split(":", 1)[0]), 0
        try:
            async for chunk in resp.content.iter_chunked(_CHUNK):
                h.update(chunk)
                done += len(chunk)
                if size >= 0 and done > size:
                    break
                waiting = sink(chunk)
                if inspect.isawaitable(waiting):
                    await waiting
                if progress:
                    progress(done)
        except (aiohttp.ClientError, TimeoutError) as e:
            raise SystemError_(f"error pulling blob {digest[:19]} of {self.name}: {_short(e)}") from None
        finally:
            resp.release()
        got = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
        if got != digest or (size >= 0 and done != size):
            raise InvalidArgument(f"{what} verification failed for digest {digest} of {self.name}"
                                  f" (got {done} bytes, {got})")

    async def tags(self) -> list[str]:
        out: list[str] = []
        url = f"/v2/{self.path}/tags/list"
        while url:
            resp = await self.request("GET", url)
            if resp.status != 200:
                raise await self._fail(resp, f"listing tags of {self.name}")
            doc = json.loads(await resp.read() or b"{}")
            resp.release()
            out += [t for t in doc.get("tags") or [] if isinstance(t, str)]
            url = _next_link(resp.headers.get("Link", ""))
        return out

    # -- writing -----------------------------------------------------------------
    async def has_blob(self, digest: str) -> bool:
        resp = await self.request("HEAD", f"/v2/{self.path}/blobs/{digest}")
        if resp.status in (200, 404):
            resp.release()
            return resp.status == 200
        raise await self._fail(resp, f"checking blob {digest[:19]} in {self.name}")

    async def start_upload(self, mount: str = "", source: str = "") -> str | None:
        """Start an upload session (its URL); ``None`` when ``mount`` was mounted from ``source`` instead."""
        params = {"mount": mount, "from": source} if mount else None
        resp = await self.request("POST", f"/v2/{self.path}/blobs/uploads/", params=params)
        if resp.status not in (201, 202) or (resp.status == 201 and not mount):
            raise await self._fail(resp, f"starting an upload to {self.name}")
        resp.release()
        if resp.status == 201:
            return None
        return urljoin(self._origin(), resp.headers.get("Location", ""))

    async def upload(self, location: str, digest: str, path: str, size: int, progress: Progress | None = None) -> None:
        """Send the file ``path`` as blob ``digest``: one PUT when small, else PATCH chunks then PUT."""
        if size <= MONOLITHIC_MAX:
            with open(path, "rb") as f:
                data = f.read()
            resp = await self.request("PUT", location, params=_with_digest(location, digest), body=lambda: data,
                                      headers={"Content-Type": "application/octet-stream"})
        else:
            offset = 0
            while offset < size:
                n = min(CHUNK_SIZE, size - offset)
                resp = await self.request("PATCH", location, body=_file_part(path, offset, n, progress),
                                          headers={"Content-Type": "application/octet-stream",
                                                   "Content-Range": f"{offset}-{offset + n - 1}",
                                                   "Content-Length": str(n)})
                if resp.status != 202:
                    raise await self._fail(resp, f"uploading blob {digest[:19]} to {self.name}")
                resp.release()
                location = urljoin(self._origin(), resp.headers.get("Location", location))
                offset += n
            resp = await self.request("PUT", location, params=_with_digest(location, digest))
        if resp.status != 201:
            raise await self._fail(resp, f"uploading blob {digest[:19]} to {self.name}")
        resp.release()
        if progress:
            progress(size)

    async def put_manifest(self, ref: str, data: bytes, media_type: str) -> str:
        resp = await self.request("PUT", f"/v2/{self.path}/manifests/{ref}", body=lambda: data,
                                  headers={"Content-Type": media_type})
        if resp.status not in (200, 201):
            raise await self._fail(resp, f"pushing manifest {ref} to {self.name}")
        resp.release()
        return resp.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(data).hexdigest()

    def _origin(self) -> str:
        return f"{self._base or 'https'}://{self.endpoint.host}/"


def _with_digest(location: str, digest: str) -> dict:
    """Query for the final PUT: ``digest``, added to the upload URL's own query by aiohttp."""
    return {"digest": digest}


def _file_part(path: str, offset: int, n: int, progress: Progress | None) -> Callable[[], Any]:
    async def gen():
        with open(path, "rb") as f:
            f.seek(offset)
            left = n
            while left > 0:
                chunk = f.read(min(_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                if progress:
                    progress(offset + n - left)
                yield chunk
    return gen


async def _read_limited(resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    data = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise InvalidArgument(f"{what} is larger than {limit} bytes")
    return bytes(data)


def _error_text(body: bytes) -> str:
    """Docker's rendering of an OCI error body: ``manifest unknown: manifest unknown``."""
    try:
        errors = json.loads(body).get("errors")
        first = errors[0]
        code = str(first.get("code", "")).lower().replace("_", " ")
        msg = str(first.get("message", ""))
        return f"{code}: {msg}" if code and msg else code or msg
    except (ValueError, AttributeError, IndexError, TypeError, KeyError):
        text = body[:200].decode(errors="replace").strip()
        return text if text and "<" not in text else ""


def _next_link(header: str) -> str:
    for part in header.split(","):
        if 'rel="next"' in part and "<" in part:
            return part[part.index("<") + 1:part.index(">")]
    return ""


def _short(e: BaseException | None) -> str:
    text = str(e) if e else "no route"
    return text.splitlines()[0] if text else type(e).__name__
