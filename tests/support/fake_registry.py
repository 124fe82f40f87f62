"""A small programmable registry (Registry HTTP API v2, plain HTTP on 127.0.0.1) for fault injection.

    img = build_image([layer_tar({"file": b"hi\\n"})], compression="zstd", fmt="oci")
    with FakeRegistry() as reg:
        reg.add_image("app", "v1", img)
        reg.fault(reg.blob_path("app", img.layers[0].digest), Fault(status=500))
        ... pull f"{reg.host}/app:v1" ...
        reg.count(reg.blob_path("app", img.layers[0].digest))

The aiohttp server runs on its own event loop in a background thread. Faults are keyed by request
path; ``require_auth`` turns on Basic or Bearer (with a token endpoint at ``/token``) for ``/v2/``.
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import io
import json
import platform
import secrets
import tarfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
OTHER_ARCH = "arm64" if ARCH != "arm64" else "amd64"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- building images ------------------------------------------------------------------------------------------------

def layer_tar(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    """An uncompressed layer tar holding ``files`` ({path: bytes}; parent directories are added)."""
    buf = io.BytesIO()
    dirs = sorted({"/".join(p.strip("/").split("/")[:i]) for p in files for i in range(1, p.strip("/").count("/") + 1)})
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
            tar.addfile(ti)
        for path, data in files.items():
            ti = tarfile.TarInfo(path.strip("/"))
            ti.size, ti.mode, ti.mtime = len(data), mode, 1700000000
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def compress(tar: bytes, how: str) -> bytes:
    """``tar`` as a blob: ``gzip``, ``zstd`` or ``none``."""
    if how == "gzip":
        return gzip.compress(tar, mtime=0)
    if how == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(tar)
    assert how == "none", how
    return tar


@dataclass
class Layer:
    blob: bytes          # what the registry serves (compressed or not)
    diff_id: str         # the uncompressed tar's digest
    media_type: str

    @property
    def digest(self) -> str:
        return digest_of(self.blob)

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.blob)}


@dataclass
class Image:
    config: bytes
    layers: list[Layer]
    manifest: bytes
    media_type: str
    arch: str = ARCH

    @property
    def digest(self) -> str:
        """The manifest's digest."""
        return digest_of(self.manifest)

    @property
    def id(self) -> str:
        """The config's digest: the image ID once pulled."""
        return digest_of(self.config)

    def blobs(self) -> dict[str, bytes]:
        return {digest_of(self.config): self.config, **{x.digest: x.blob for x in self.layers}}


def build_image(tars: list[bytes], compression: str | list[str] = "gzip", fmt: str = "docker", arch: str = ARCH,
                cmd: list[str] | None = None, diff_ids: list[str] | None = None, label: str = "") -> Image:
    """An image of the uncompressed layer ``tars``: ``fmt`` is ``docker`` (schema2) or ``oci``; ``diff_ids``
    replaces the config's real ones (to make a config that does not match its layers)."""
    kinds = [compression] * len(tars) if isinstance(compression, str) else list(compression)
    layers = []
    for tar, how in zip(tars, kinds):
        if fmt == "docker":
            assert how == "gzip", "Docker schema2 layers are gzip"
            mt = DOCKER_LAYER
        else:
            mt = OCI_LAYER + {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[how]
        layers.append(Layer(compress(tar, how), digest_of(tar), mt))
    config = json.dumps({
        "architecture": arch, "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": cmd or ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   **({"Labels": {"bt.fake": label}} if label else {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids or [x.diff_id for x in layers]},
        "history": [{"created": "2024-01-02T03:04:05Z", "created_by": f"layer {i}"} for i in range(len(tars))],
    }, sort_keys=True).encode()
    media = DOCKER_MANIFEST if fmt == "docker" else OCI_MANIFEST
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": media,
        "config": {"mediaType": DOCKER_CONFIG if fmt == "docker" else OCI_CONFIG, "digest": digest_of(config),
                   "size": len(config)},
        "layers": [x.descriptor() for x in layers]}, indent=2).encode()
    return Image(config, layers, manifest, media, arch)


def build_index(images: list[Image], fmt: str = "oci") -> tuple[bytes, str]:
    """(bytes, media type) of an OCI index or Docker manifest list of ``images`` (each its ``arch``)."""
    media = OCI_INDEX if fmt == "oci" else DOCKER_LIST
    doc = {"schemaVersion": 2, "mediaType": media,
           "manifests": [{"mediaType": i.media_type, "digest": i.digest, "size": len(i.manifest),
                          "platform": {"os": "linux", "architecture": i.arch}} for i in images]}
    return json.dumps(doc, indent=2).encode(), media


# -- faults ---------------------------------------------------------------------------------------------------------

@dataclass
class Fault:
    """What to do instead of answering normally (the first that applies, in this order)."""
    status: int = 0                   # answer this status (with an OCI error body)
    challenge: str | None = None      # WWW-Authenticate for a 401 (None: no challenge)
    hold: threading.Event | None = None   # wait until set (or the registry stops) before answering...
    hold_after: int = -1              # ...or after sending headers and this many body bytes
    drop_after: int = -1              # send headers and this many body bytes, then close the connection
    body: bytes | None = None         # serve these bytes instead
    headers: dict = field(default_factory=dict)  # extra or replaced response headers
    times: int = -1                   # apply this many times only (-1: always)


# -- the server -----------------------------------------------------------------------------------------------------

class FakeRegistry:
    def __init__(self) -> None:
        self.blobs: dict[str, dict[str, bytes]] = {}        # repo -> digest -> bytes
        self.manifests: dict[str, dict[str, tuple[bytes, str]]] = {}  # repo -> tag or digest -> (bytes, type)
        self.faults: dict[str, Fault] = {}
        self.requests: Counter = Counter()                   # path -> requests (any method)
        self.methods: Counter = Counter()                    # (method, path) -> requests
        self.auth: tuple[str, str, str] | None = None        # (scheme, user, password)
        self.token_life = 300
        self.tokens: dict[str, tuple[str, float]] = {}       # token -> (scope, expiry)
        self.held = threading.Event()                        # set whenever a held request starts waiting
        self.abandoned = 0                                   # held requests whose client went away
        self._uploads: dict[str, bytearray] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = threading.Event()
        self.port = 0

    # -- content -----------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_image(self, repo: str, tag: str | None, image: Image) -> Image:
        self.blobs.setdefault(repo, {}).update(image.blobs())
        refs = self.manifests.setdefault(repo, {})
        refs[image.digest] = (image.manifest, image.media_type)
        if tag:
            refs[tag] = refs[image.digest]
        return image

    def add_index(self, repo: str, tag: str, images: list[Image], fmt: str = "oci") -> str:
        """Serve ``images`` and an index of them under ``tag``; returns the index digest."""
        for img in images:
            self.add_image(repo, None, img)
        data, media = build_index(images, fmt)
        self.manifests[repo][tag] = self.manifests[repo][digest_of(data)] = (data, media)
        return digest_of(data)

    @staticmethod
    def blob_path(repo: str, digest: str) -> str:
        return f"/v2/{repo}/blobs/{digest}"

    @staticmethod
    def manifest_path(repo: str, ref: str) -> str:
        return f"/v2/{repo}/manifests/{ref}"

    def fault(self, path: str, fault: Fault) -> Fault:
        self.faults[path] = fault
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def count(self, path: str, method: str | None = None) -> int:
        with self._lock:
            return self.methods[(method, path)] if method else self.requests[path]

    def total(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def require_auth(self, scheme: str, user: str, password: str) -> None:
        """Every ``/v2/`` request needs ``basic`` credentials or a ``bearer`` token from ``/token``."""
        assert scheme in ("basic", "bearer")
        self.auth = (scheme, user, password)

    @property
    def token_requests(self) -> int:
        return self.count("/token")

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> "FakeRegistry":
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._serve())
            except BaseException as e:  # noqa: BLE001 - reported to start()
                errors.append(e)
            finally:
                ready.set()
            if not errors:
                loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-registry", daemon=True)
        self._thread.start()
        if not ready.wait(10) or errors:
            raise RuntimeError(f"fake registry did not start: {errors}")
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return
        self._stopping.set()
        for f in list(self.faults.values()):
            if f.hold is not None:
                f.hold.set()
        loop, self._loop = self._loop, None

        async def down() -> None:
            await self._runner.cleanup()  # type: ignore[union-attr]
            loop.stop()
        asyncio.run_coroutine_threadsafe(down(), loop)
        self._thread.join(10)

    def __enter__(self) -> "FakeRegistry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- requests ------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        with self._lock:
            self.requests[path] += 1
            self.methods[(request.method, path)] += 1
        if path == "/token":
            return self._token(request)
        if not path.startswith("/v2/"):
            return _error(404, "NOT_FOUND", "not found")
        parts = path[4:].split("/")
        repo = ""
        for kind in ("manifests", "blobs", "tags"):
            if kind in parts[:-1]:
                i = len(parts) - 1 - parts[::-1].index(kind)
                repo = "/".join(parts[:i])
                break
        denied = self._check_auth(request, repo)
        if denied is not None:
            return denied
        fault = self.faults.get(path)
        if fault is not None and fault.times == 0:
            fault = None
        if fault is not None:
            if fault.times > 0:
                fault.times -= 1
            answer = await self._apply(request, fault)
            if answer is not None:
                return answer
        return await self._answer(request, path, repo, fault)

    async def _apply(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.status:
            resp = _error(fault.status, "UNAUTHORIZED" if fault.status == 401 else "UNKNOWN",
                          f"injected status {fault.status}")
            if fault.challenge:
                resp.headers["WWW-Authenticate"] = fault.challenge
            return resp
        if fault.hold is not None and fault.hold_after < 0 and not await self._wait(request, fault.hold):
            return web.Response(status=499)  # nobody is listening any more
        return None

    async def _wait(self, request: web.Request, event: threading.Event) -> bool:
        """Hold until ``event`` (True), or until the client hangs up (False, counted in ``abandoned``)."""
        self.held.set()
        while not event.is_set() and not self._stopping.is_set():
            if request.transport is None or request.transport.is_closing():
                with self._lock:
                    self.abandoned += 1
                return False
            await asyncio.sleep(0.02)
        return True

    async def _answer(self, request: web.Request, path: str, repo: str, fault: Fault | None) -> web.StreamResponse:
        parts = path[len(f"/v2/{repo}/"):].split("/") if repo else []
        if path == "/v2/":
            return web.json_response({})
        if parts[:1] == ["manifests"] and len(parts) == 2:
            if request.method == "PUT":
                data = await request.read()
                self.manifests.setdefault(repo, {})[parts[1]] = (data, request.content_type)
                self.manifests[repo][digest_of(data)] = (data, request.content_type)
                return web.Response(status=201, headers={"Docker-Content-Digest": digest_of(data),
                                                         "Location": f"/v2/{repo}/manifests/{digest_of(data)}"})
            found = self.manifests.get(repo, {}).get(parts[1])
            if found is None:
                return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
            data, media = found
            headers = {"Content-Type": media, "Docker-Content-Digest": digest_of(data)}
            return await self._send(request, data, headers, fault)
        if parts[:1] == ["blobs"] and parts[1:2] == ["uploads"]:
            return await self._upload(request, repo, parts[2] if len(parts) > 2 else "")
        if parts[:1] == ["blobs"] and len(parts) == 2:
            data = self.blobs.get(repo, {}).get(parts[1])
            if data is None:
                return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
            headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": parts[1]}
            return await self._send(request, data, headers, fault)
        if parts == ["tags", "list"]:
            tags = sorted(t for t in self.manifests.get(repo, {}) if ":" not in t)
            return web.json_response({"name": repo, "tags": tags})
        return _error(404, "NAME_UNKNOWN", "repository name not known to registry")

    async def _send(self, request: web.Request, data: bytes, headers: dict, fault: Fault | None) -> web.StreamResponse:
        if fault is not None and fault.body is not None:
            data = fault.body
        headers = {**headers, **(fault.headers if fault else {})}
        if fault is not None and request.method == "GET" and (fault.drop_after >= 0 or fault.hold_after >= 0):
            resp = web.StreamResponse(headers=headers)
            resp.content_length = len(data)
            await resp.prepare(request)
            n = fault.hold_after if fault.hold_after >= 0 else fault.drop_after
            await resp.write(data[:n])
            if fault.hold_after >= 0 and not await self._wait(request, fault.hold):  # type: ignore[arg-type]
                return resp
            if fault.drop_after >= 0:
                await resp.write(data[n:max(n, fault.drop_after)])
                if request.transport is not None:
                    request.transport.close()  # mid-body: the client sees the connection drop
                return resp
            await resp.write(data[n:])
            await resp.write_eof()
            return resp
        return web.Response(body=data, headers=headers)  # aiohttp sends no body to a HEAD

    # -- auth ------------------------------------------------------------------------------------------
    def _check_auth(self, request: web.Request, repo: str) -> web.Response | None:
        if self.auth is None:
            return None
        scheme, user, password = self.auth
        got = request.headers.get("Authorization", "")
        if scheme == "basic":
            if got == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode():
                return None
            resp = _error(401, "UNAUTHORIZED", "authentication required")
            resp.headers["WWW-Authenticate"] = 'Basic realm="fake-registry"'
            return resp
        scope = f"repository:{repo}:pull" if repo else ""
        token = got.removeprefix("Bearer ") if got.startswith("Bearer ") else ""
        with self._lock:
            granted = self.tokens.get(token)
        if granted and granted[1] > time.monotonic() and (not scope or scope in granted[0].split()):
            return None
        resp = _error(401, "UNAUTHORIZED", "authentication required")
        resp.headers["WWW-Authenticate"] = (f'Bearer realm="http://{self.host}/token",service="fake-registry"'
                                            + (f',scope="{scope}"' if scope else ""))
        return resp

    def _token(self, request: web.Request) -> web.Response:
        assert self.auth is not None and self.auth[0] == "bearer"
        _, user, password = self.auth
        got = request.headers.get("Authorization", "")
        if got != "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode():
            return _error(401, "UNAUTHORIZED", "bad credentials for the token server")
        scopes = " ".join(request.query.getall("scope", []))
        token = secrets.token_hex(16)
        with self._lock:
            self.tokens[token] = (scopes, time.monotonic() + self.token_life)
        return web.json_response({"token": token, "expires_in": self.token_life})

    # -- push ------------------------------------------------------------------------------------------
    async def _upload(self, request: web.Request, repo: str, uid: str) -> web.StreamResponse:
        if request.method == "POST" and not uid:
            uid = secrets.token_hex(8)
            self._uploads[uid] = bytearray()
            return web.Response(status=202, headers={"Location": f"/v2/{repo}/blobs/uploads/{uid}",
                                                     "Range": "0-0", "Docker-Upload-UUID": uid})
        if uid not in self._uploads:
            return _error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown")
        self._uploads[uid] += await request.read()
        if request.method == "PATCH":
            return web.Response(status=202, headers={"Location": f"/v2/{repo}/blobs/uploads/{uid}",
                                                     "Range": f"0-{len(self._uploads[uid]) - 1}"})
        data, want = bytes(self._uploads.pop(uid)), request.query.get("digest", "")
        if digest_of(data) != want:
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        self.blobs.setdefault(repo, {})[want] = data
        return web.Response(status=201, headers={"Location": f"/v2/{repo}/blobs/{want}", "Docker-Content-Digest": want})


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"errors": [{"code": code, "message": message, "detail": None}]}, status=status)
