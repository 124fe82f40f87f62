"""The HTTP side: one aiohttp application answering the OCI distribution spec v1.1 endpoints.

Content negotiation: a manifest is always served as the bytes that were pushed, with the media type
they were pushed as, whatever ``Accept`` says (clients check the type they get; berth never converts).
With htpasswd auth every endpoint, ``/`` and ``/v2/`` included, needs valid Basic credentials, and every
authenticated user may read and write every repository (so a cross-repository mount needs nothing more).
Read-only mode answers every write with 405 UNSUPPORTED, as distribution does in maintenance mode
(it does not register the write handlers at all).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote

from aiohttp import web

from berth.errors import InvalidArgument
from berth.registry.server import storage as st
from berth.registry.server.auth import CHALLENGE, Htpasswd
from berth.registry.server.errors import RegistryError
from berth.types import manifest as mf

WRITES = ("POST", "PUT", "PATCH", "DELETE")
CHUNK = 1 << 16
CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?")
UNCHECKED = ("foreign", "nondistributable")  # layers a manifest may name without pushing them
ROUTES = [
    (re.compile(r"(?P<name>.+)/tags/list"), "tags"),
    (re.compile(r"(?P<name>.+)/manifests/(?P<ref>[^/]+)"), "manifest"),
    (re.compile(r"(?P<name>.+)/blobs/uploads/?"), "uploads"),
    (re.compile(r"(?P<name>.+)/blobs/uploads/(?P<uid>[^/]+)"), "upload"),
    (re.compile(r"(?P<name>.+)/blobs/(?P<digest>[^/]+)"), "blob"),
    (re.compile(r"(?P<name>.+)/referrers/(?P<digest>[^/]+)"), "referrers"),
]


@dataclass
class Config:
    root: str
    htpasswd: str | None = None
    read_only: bool = False
    max_body: int = 0  # largest blob upload (per request and in total), 0 for no limit
    max_manifest: int = mf.MAX_MANIFEST


def _json(doc: object, status: int = 200, headers: dict[str, str] | None = None,
          content_type: str = "application/json") -> web.Response:
    return web.Response(status=status, body=json.dumps(doc).encode(), headers={
        "Content-Type": content_type, **(headers or {})})


def _check_digest(digest: str | None) -> str:
    if not digest:
        raise RegistryError("DIGEST_INVALID", "digest missing")
    why = st.digest_problem(digest)
    if why:
        raise RegistryError("DIGEST_INVALID", why, {"digest": digest})
    return digest


def _check_ref(ref: str) -> bool:
    """True for a digest reference, False for a tag; the spec's error if it is neither."""
    if ":" in ref:
        _check_digest(ref)
        return True
    if not st.TAG.fullmatch(ref):
        raise RegistryError("TAG_INVALID", "invalid tag", {"tag": ref})
    return False


class Registry:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = st.Storage(config.root)
        self.auth = Htpasswd(config.htpasswd) if config.htpasswd else None
        self._cache: OrderedDict[str, bytes] = OrderedDict()  # manifest bytes by digest (immutable)
        get = {"GET": self.blob_get, "HEAD": self.blob_get}
        self.tables = {
            "tags": {"GET": self.tags_list},
            "manifest": {"GET": self.manifest_get, "HEAD": self.manifest_get, "PUT": self.manifest_put,
                         "DELETE": self.manifest_delete},
            "uploads": {"POST": self.upload_start},
            "upload": {"GET": self.upload_status, "PATCH": self.upload_patch, "PUT": self.upload_put,
                       "DELETE": self.upload_cancel},
            "blob": {**get, "DELETE": self.blob_delete},
            "referrers": {"GET": self.referrers},
        }

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=self.config.max_manifest + 1)
        app.router.add_route("*", "/v2", self.dispatch)
        app.router.add_route("*", "/v2/{tail:.*}", self.dispatch)
        app.router.add_get("/", self.page)
        app.router.add_get("/v1/search", self.search)
        return app

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            if self.auth and not await self.auth.user(request.headers.get("Authorization", "")):
                raise RegistryError("UNAUTHORIZED", headers={"WWW-Authenticate": CHALLENGE})
            resp = await handler(request)
        except RegistryError as e:
            resp = web.Response(status=e.status, body=e.body(), headers={
                "Content-Type": "application/json", **e.headers})
        resp.headers["Docker-Distribution-API-Version"] = "registry/2.0"
        return resp

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        if tail in ("", "_catalog"):
            table, params = {"GET": self.base if not tail else self.catalog}, {}
            table["HEAD"] = table["GET"]
        else:
            for rx, kind in ROUTES:
                m = rx.fullmatch(tail)
                if m:
                    break
            else:
                raise RegistryError("NAME_UNKNOWN", "no such endpoint", {"path": request.path}, status=404)
            params = m.groupdict()
            if not st.valid_name(params["name"]):
                raise RegistryError("NAME_INVALID", detail={"name": params["name"]})
            table = self.tables[kind]
        methods = ", ".join(m for m in table if not (self.config.read_only and m in WRITES))
        allow = {"Allow": methods} if methods else {}
        if request.method not in table:
            raise RegistryError("UNSUPPORTED", headers=allow)
        if self.config.read_only and request.method in WRITES:
            raise RegistryError("UNSUPPORTED", "the registry is read-only", headers=allow)
        return await table[request.method](request, **params)

    async def base(self, request: web.Request) -> web.Response:
        return _json({})

    async def page(self, request: web.Request) -> web.Response:
        from berth.registry.server.page import render
        return web.Response(text=render(self.store, request.host), content_type="text/html")

    # ------------------------------------------------------------------ blobs
    async def blob_get(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        _check_digest(digest)
        size = self.store.linked_size(name, digest)
        if size is None:
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
        headers = {"Docker-Content-Digest": digest, "Content-Type": "application/octet-stream",
                   "Accept-Ranges": "bytes", "Cache-Control": "max-age=31536000"}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(size)})
        return web.FileResponse(self.store.blob_path(digest), chunk_size=1 << 18, headers=headers)

    async def blob_delete(self, request: web.Request, name: str, digest: str) -> web.Response:
        _check_digest(digest)
        if not self.store.unlink(name, digest):
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
        return web.Response(status=202, headers={"Docker-Content-Digest": digest, "Content-Length": "0"})

    # ------------------------------------------------------------------ uploads
    def _upload_headers(self, name: str, uid: str, size: int) -> dict[str, str]:
        return {"Location": f"/v2/{name}/blobs/uploads/{uid}", "Range": f"0-{max(size - 1, 0)}",
                "Docker-Upload-UUID": uid, "Content-Length": "0"}

    def _session(self, name: str, uid: str) -> int:
        size = self.store.upload_size(name, uid)
        if size is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": uid})
        return size

    async def _receive(self, request: web.Request, name: str, uid: str, size: int) -> int:
        """Append the request body to the upload; checks Content-Range and the size limit. New size."""
        cr, length = request.headers.get("Content-Range"), request.content_length
        if cr:
            m = CONTENT_RANGE.fullmatch(cr.strip())
            start, end = (int(m[1]), int(m[2])) if m else (-1, -1)
            if start != size or end < start or (length is not None and length != end - start + 1):
                raise RegistryError("RANGE_INVALID", f"content range {cr!r} does not continue at {size}",
                                    headers=self._upload_headers(name, uid, size))
        limit = self.config.max_body
        if limit and length is not None and size + length > limit:
            raise RegistryError("SIZE_INVALID", f"upload larger than {limit} bytes", status=413)
        offset = size
        try:
            with self.store.open_append(uid) as f:
                async for chunk in request.content.iter_chunked(CHUNK):
                    if limit and offset + len(chunk) > limit:
                        raise RegistryError("SIZE_INVALID", f"upload larger than {limit} bytes", status=413)
                    f.write(chunk)
                    self.store.hashed(uid, chunk, offset)
                    offset += len(chunk)
        except BaseException:
            self.store.truncate(uid, size)
            raise
        if length is not None and offset - size != length:
            self.store.truncate(uid, size)
            raise RegistryError("SIZE_INVALID", detail={"expected": length, "received": offset - size})
        return offset

    async def _finish(self, name: str, uid: str, digest: str) -> web.Response:
        try:
            await asyncio.to_thread(self.store.finish, name, uid, digest)
        except st.DigestMismatch as e:
            raise RegistryError("DIGEST_INVALID", detail={"expected": digest, "actual": str(e)}) from None
        return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{digest}",
                                                 "Docker-Content-Digest": digest, "Content-Length": "0"})

    async def upload_start(self, request: web.Request, name: str) -> web.Response:
        q = request.query
        mount, source = q.get("mount"), q.get("from", "")
        if mount and not st.digest_problem(mount) and st.valid_name(source) \
                and self.store.linked_size(source, mount) is not None:
            await asyncio.to_thread(self.store.link, name, mount)
            return web.Response(status=201, headers={"Location": f"/v2/{name}/blobs/{mount}",
                                                     "Docker-Content-Digest": mount, "Content-Length": "0"})
        if "digest" in q:
            digest = _check_digest(q["digest"])
            uid = self.store.new_upload(name)
            try:
                await self._receive(request, name, uid, 0)
            except BaseException:
                self.store.cancel(uid)
                raise
            return await self._finish(name, uid, digest)
        uid = self.store.new_upload(name)
        return web.Response(status=202, headers=self._upload_headers(name, uid, 0))

    async def upload_status(self, request: web.Request, name: str, uid: str) -> web.Response:
        return web.Response(status=204, headers=self._upload_headers(name, uid, self._session(name, uid)))

    async def upload_patch(self, request: web.Request, name: str, uid: str) -> web.Response:
        size = await self._receive(request, name, uid, self._session(name, uid))
        return web.Response(status=202, headers=self._upload_headers(name, uid, size))

    async def upload_put(self, request: web.Request, name: str, uid: str) -> web.Response:
        size = self._session(name, uid)
        digest = _check_digest(request.query.get("digest"))
        await self._receive(request, name, uid, size)
        return await self._finish(name, uid, digest)

    async def upload_cancel(self, request: web.Request, name: str, uid: str) -> web.Response:
        self._session(name, uid)
        self.store.cancel(uid)
        return web.Response(status=204, headers={"Content-Length": "0"})

    # ------------------------------------------------------------------ manifests
    def _bytes(self, rev: st.Revision) -> bytes:
        data = self._cache.get(rev.digest)
        if data is None:
            data = self.store.manifest_bytes(rev)
            if data is None:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": rev.digest})
            self._cache[rev.digest] = data
            while len(self._cache) > 512:
                self._cache.popitem(last=False)
        return data

    async def manifest_get(self, request: web.Request, name: str, ref: str) -> web.Response:
        is_digest = _check_ref(ref)
        rev = self.store.resolve(name, ref)
        if rev is None:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"digest" if is_digest else "tag": ref})
        data = self._bytes(rev)
        headers = {"Content-Type": rev.media_type, "Docker-Content-Digest": rev.digest, "ETag": f'"{rev.digest}"'}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(data))})
        return web.Response(body=data, headers=headers)

    async def _read_manifest(self, request: web.Request) -> bytes:
        limit = self.config.max_manifest
        too_big = RegistryError("SIZE_INVALID", f"manifest larger than {limit} bytes", status=413)
        if request.content_length is not None and request.content_length > limit:
            raise too_big
        buf = bytearray()
        async for chunk in request.content.iter_chunked(CHUNK):
            buf += chunk
            if len(buf) > limit:
                raise too_big
        return bytes(buf)

    def _missing(self, name: str, m: mf.Manifest | mf.Index) -> list[str]:
        if isinstance(m, mf.Index):
            return [d.digest for d in m.manifests if self.store.revision(name, d.digest) is None]
        return [d.digest for d in m.blobs() if not any(u in d.media_type for u in UNCHECKED)
                and self.store.linked_size(name, d.digest) is None]

    async def manifest_put(self, request: web.Request, name: str, ref: str) -> web.Response:
        is_digest = _check_ref(ref)
        data = await self._read_manifest(request)
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            m = mf.parse(data, ctype)
        except InvalidArgument as e:
            raise RegistryError("MANIFEST_INVALID", detail=e.message) from None
        if ctype in mf.ALL_TYPES and ctype != m.media_type:
            raise RegistryError("MANIFEST_INVALID", detail=f"Content-Type {ctype} but mediaType {m.media_type}")
        algo = ref.split(":", 1)[0] if is_digest else "sha256"
        digest = f"{algo}:{hashlib.new(algo, data).hexdigest()}"
        if is_digest and digest != ref:
            raise RegistryError("DIGEST_INVALID", detail={"expected": ref, "actual": digest})
        missing = self._missing(name, m)
        if missing:
            raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": missing[0], "missing": missing})
        artifact = m.artifact_type or (m.config.media_type if isinstance(m, mf.Manifest) else "")
        subject = m.subject.digest if m.subject else ""
        rev = st.Revision(digest, m.media_type, len(data), subject, artifact)
        referrer = mf.Descriptor(m.media_type, digest, len(data), None, m.annotations, artifact).to_dict()
        await asyncio.to_thread(self.store.put_manifest, name, data, rev, "" if is_digest else ref, referrer)
        headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest,
                   "Content-Length": "0"}
        if subject:
            headers["OCI-Subject"] = subject
        return web.Response(status=201, headers=headers)

    async def manifest_delete(self, request: web.Request, name: str, ref: str) -> web.Response:
        is_digest = _check_ref(ref)
        done = self.store.delete_manifest(name, ref) if is_digest else self.store.delete_tag(name, ref)
        if not done:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"digest" if is_digest else "tag": ref})
        return web.Response(status=202, headers={"Content-Length": "0"})

    # ------------------------------------------------------------------ listings
    def _page(self, request: web.Request, items: list[str], path: str) -> tuple[list[str], dict[str, str]]:
        """The ``n``/``last`` page of sorted ``items`` and its Link header (when more follow)."""
        q = request.query
        if q.get("last"):
            items = [i for i in items if i > q["last"]]
        if "n" not in q:
            return items, {}
        try:
            n = int(q["n"])
            if n < 0:
                raise ValueError
        except ValueError:
            raise RegistryError("UNSUPPORTED", f"invalid n: {q['n']!r}", status=400) from None
        page = items[:n]
        if page and len(items) > n:
            return page, {"Link": f'<{path}?n={n}&last={quote(page[-1], safe="")}>; rel="next"'}
        return page, {}

    async def tags_list(self, request: web.Request, name: str) -> web.Response:
        if not self.store.repo_exists(name):
            raise RegistryError("NAME_UNKNOWN", detail={"name": name})
        tags, headers = self._page(request, self.store.tags(name), f"/v2/{name}/tags/list")
        return _json({"name": name, "tags": tags}, headers=headers)

    async def catalog(self, request: web.Request) -> web.Response:
        repos, headers = self._page(request, self.store.repositories(), "/v2/_catalog")
        return _json({"repositories": repos}, headers=headers)

    async def search(self, request: web.Request) -> web.Response:
        """Docker Hub's v1 search API over the repository names (what ``docker search HOST/TERM`` asks)."""
        query = request.query.get("q", "").lower()
        try:
            n = max(1, min(100, int(request.query.get("n") or 25)))
        except ValueError:
            raise RegistryError("PAGINATION_NUMBER_INVALID", detail={"n": request.query.get("n")}) from None
        found = [r for r in self.store.repositories() if query in r]
        results = [{"name": r, "description": "", "star_count": 0, "is_official": False, "is_automated": False}
                   for r in found[:n]]
        return _json({"num_results": len(found), "num_pages": 1, "page": 1, "page_size": n, "query": query,
                      "results": results})

    async def referrers(self, request: web.Request, name: str, digest: str) -> web.Response:
        _check_digest(digest)
        items = self.store.referrers(name, digest)
        headers = {}
        want = request.query.get("artifactType")
        if want:
            items = [i for i in items if i.get("artifactType") == want]
            headers["OCI-Filters-Applied"] = "artifactType"
        return _json({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": items},
                     headers=headers, content_type=mf.OCI_INDEX)


def make_app(config: Config) -> web.Application:
    return Registry(config).app()
