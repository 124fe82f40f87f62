"""berth.registry.client against a tiny aiohttp registry on 127.0.0.1 (one per test, in the test's loop)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web

from berth.errors import InvalidArgument, NotFound, SystemError_, Unauthorized
from berth.registry import client
from berth.registry.auth import Credentials
from berth.registry.client import RegistryHTTP
from berth.registry.hosts import Endpoint, Hosts
from berth.types import manifest as mf

MANIFEST = mf.image_manifest(b"{}", "sha256:" + "c" * 64, [])


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_error(code: str, message: str) -> str:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]})


class Registry:
    """Routes given by the test; every request recorded as (method, path, query, headers, body)."""

    def __init__(self, routes: dict[tuple[str, str], object]) -> None:
        self.routes, self.seen = routes, []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append((request.method, request.path, request.query_string, dict(request.headers), body))
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.Response(status=404, text=oci_error("NOT_FOUND", "no route"))
        return await handler(request, body)

    async def start(self) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return self.runner.addresses[0][1]


def run(routes: dict, test, creds: Credentials = Credentials(), path: str = "lib/app", known_http: bool = True):
    """Start the registry, give ``test`` a Repository on it (the registry, the repository, the port)."""
    async def main():
        reg = Registry(routes)
        port = await reg.start()
        hosts = Hosts()
        ep = Endpoint(f"127.0.0.1:{port}", hosts.is_secure(f"127.0.0.1:{port}"))
        if known_http:
            hosts.worked(ep, "http")
        http = RegistryHTTP(hosts)
        try:
            return await test(reg, http.repository(ep, path, creds), port)
        finally:
            await http.close()
            await reg.runner.cleanup()
    return asyncio.run(main())


def answer(status=200, body: bytes | str = b"", **headers):
    async def handler(request, _body):
        data = body.encode() if isinstance(body, str) else body
        return web.Response(status=status, body=data if request.method != "HEAD" else None, headers=headers)
    return handler


def manifest_route(ref: str, data: bytes = MANIFEST, **headers):
    headers.setdefault("Content-Type", mf.OCI_MANIFEST)
    return {("GET", f"/v2/lib/app/manifests/{ref}"): answer(200, data, **headers)}


def test_manifest_by_tag():
    async def t(reg, repo, port):
        assert await repo.manifest("latest") == (MANIFEST, mf.OCI_MANIFEST, sha(MANIFEST))
        assert reg.seen[0][3]["Accept"] == mf.ACCEPT
    run(manifest_route("latest", **{"Docker-Content-Digest": sha(MANIFEST)}), t)


def test_manifest_digest_verified():
    good, bad = sha(MANIFEST), "sha256:" + "0" * 64

    async def t(reg, repo, port):
        assert (await repo.manifest(good))[2] == good
        with pytest.raises(InvalidArgument, match=f"manifest verification failed for digest {bad}"):
            await repo.manifest(bad)  # by-digest reference, other content
        with pytest.raises(InvalidArgument, match=f"manifest verification failed for digest {bad}"):
            await repo.manifest("latest")  # Docker-Content-Digest header, other content
    run({**manifest_route(good), **manifest_route(bad), **manifest_route("latest", **{"Docker-Content-Digest": bad})},
        t)


def test_manifest_not_found_renders_the_oci_error():
    async def t(reg, repo, port):
        with pytest.raises(NotFound) as e:
            await repo.manifest("nope")
        assert e.value.message == f"manifest for 127.0.0.1:{port}/lib/app:nope not found: manifest unknown: manifest unknown"
    run({("GET", "/v2/lib/app/manifests/nope"): answer(404, oci_error("MANIFEST_UNKNOWN", "manifest unknown"))}, t)


def basic_protected(user: str, password: str, inner):
    want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def handler(request, body):
        if request.headers.get("Authorization") != want:
            return web.Response(status=401, text=oci_error("UNAUTHORIZED", "authentication required"),
                                headers={"WWW-Authenticate": 'Basic realm="Registry Realm"'})
        return await inner(request, body)
    return handler


def test_basic_challenge_is_answered_with_credentials():
    routes = {("GET", "/v2/lib/app/manifests/latest"): basic_protected("alice", "pw", answer(200, MANIFEST))}

    async def t(reg, repo, port):
        assert (await repo.manifest("latest"))[0] == MANIFEST
        assert [s[3].get("Authorization") for s in reg.seen] == [None, Credentials("alice", "pw").basic()]
    run(routes, t, Credentials("alice", "pw"))

    async def anonymous(reg, repo, port):
        with pytest.raises(Unauthorized, match="authentication required"):
            await repo.manifest("latest")
        assert len(reg.seen) <= 2  # one retry at most
    run(routes, anonymous)
    run(routes, anonymous, Credentials("alice", "wrong"))


def test_bearer_token_fetched_from_the_token_route():
    async def token(request, body):
        return web.json_response({"token": "tok-" + request.query["scope"].split(":")[1].replace("/", "-"),
                                  "expires_in": 300})

    async def manifest(request, body):
        if request.headers.get("Authorization") != "Bearer tok-lib-app":
            realm = f"http://{request.host}/token"
            return web.Response(status=401, text=oci_error("UNAUTHORIZED", "authentication required"), headers={
                "WWW-Authenticate": f'Bearer realm="{realm}",service="test-registry",scope="repository:lib/app:pull"'})
        return web.Response(body=MANIFEST, content_type="application/vnd.oci.image.manifest.v1+json")

    async def t(reg, repo, port):
        assert (await repo.manifest("latest"))[0] == MANIFEST
        assert [(s[0], s[1]) for s in reg.seen] == [("GET", "/v2/lib/app/manifests/latest"), ("GET", "/token"),
                                                    ("GET", "/v2/lib/app/manifests/latest")]
        assert parse_qs(reg.seen[1][2]) == {"service": ["test-registry"], "scope": ["repository:lib/app:pull"],
                                            "account": ["alice"]}
        assert reg.seen[1][3]["Authorization"] == Credentials("alice", "pw").basic()
        assert reg.seen[2][3]["Authorization"] == "Bearer tok-lib-app"
        assert (await repo.manifest("latest"))[0] == MANIFEST  # the token is kept
        assert len(reg.seen) == 4
    run({("GET", "/token"): token, ("GET", "/v2/lib/app/manifests/latest"): manifest}, t, Credentials("alice", "pw"))


def test_a_cached_token_the_registry_refuses_is_fetched_anew():
    issued = []

    async def token(request, body):
        issued.append(f"tok-{len(issued)}")
        return web.json_response({"token": issued[-1], "expires_in": 300})

    async def manifest(request, body):
        if not issued or request.headers.get("Authorization") != f"Bearer {issued[-1]}":
            return web.Response(status=401, headers={
                "WWW-Authenticate": f'Bearer realm="http://{request.host}/token",service="s"'})
        return web.Response(body=MANIFEST, content_type="application/vnd.oci.image.manifest.v1+json")

    async def t(reg, repo, port):
        assert (await repo.manifest("latest"))[0] == MANIFEST
        issued.append("tok-revoked")  # the registry now wants another token than the one cached
        other = repo.http.repository(repo.endpoint, repo.path, repo.creds)
        assert (await other.manifest("latest"))[0] == MANIFEST
        assert issued == ["tok-0", "tok-revoked", "tok-2"]  # one fresh token, not the cached one forever
    run({("GET", "/token"): token, ("GET", "/v2/lib/app/manifests/latest"): manifest}, t)


def test_token_server_refusal_is_unauthorized():
    async def manifest(request, body):
        return web.Response(status=401, headers={"WWW-Authenticate": f'Bearer realm="http://{request.host}/token"'})

    async def t(reg, repo, port):
        with pytest.raises(Unauthorized, match="unauthorized: bad password"):
            await repo.manifest("latest")
    run({("GET", "/token"): answer(401, oci_error("UNAUTHORIZED", "bad password")),
         ("GET", "/v2/lib/app/manifests/latest"): manifest}, t, Credentials("alice", "bad"))


BLOB = b"layer bytes " * 1000


def test_download_verifies_digest_and_size(tmp_path):
    other = sha(b"something else")
    routes = {("GET", f"/v2/lib/app/blobs/{sha(BLOB)}"): answer(200, BLOB),
              ("GET", f"/v2/lib/app/blobs/{other}"): answer(200, BLOB)}

    async def t(reg, repo, port):
        dest, seen = tmp_path / "ok", []
        await repo.download(sha(BLOB), len(BLOB), str(dest), seen.append)
        assert dest.read_bytes() == BLOB
        assert seen and seen[-1] == len(BLOB) and seen == sorted(seen)
        await repo.download(sha(BLOB), -1, str(tmp_path / "unknown-size"))
        assert (tmp_path / "unknown-size").read_bytes() == BLOB
        with pytest.raises(InvalidArgument, match=f"layer verification failed for digest {other}"):
            await repo.download(other, len(BLOB), str(tmp_path / "bad-digest"))
        for size in (len(BLOB) - 1, len(BLOB) + 1):
            with pytest.raises(InvalidArgument, match="verification failed"):
                await repo.download(sha(BLOB), size, str(tmp_path / "bad-size"))
        with pytest.raises(NotFound, match="blob unknown"):
            await repo.download(sha(b"absent"), 6, str(tmp_path / "absent"))
    routes[("GET", f"/v2/lib/app/blobs/{sha(b'absent')}")] = answer(404, oci_error("BLOB_UNKNOWN", "blob unknown"))
    run(routes, t)


def test_tags_follow_link_pagination():
    async def tags(request, body):
        if request.query.get("last") == "b":
            return web.json_response({"name": "lib/app", "tags": ["c"]})
        return web.json_response({"name": "lib/app", "tags": ["a", "b"]},
                                 headers={"Link": '</v2/lib/app/tags/list?n=2&last=b>; rel="next"'})

    async def t(reg, repo, port):
        assert await repo.tags() == ["a", "b", "c"]
        assert [s[2] for s in reg.seen] == ["", "n=2&last=b"]
    run({("GET", "/v2/lib/app/tags/list"): tags}, t)


def test_has_blob():
    async def t(reg, repo, port):
        assert await repo.has_blob(sha(BLOB)) is True
        assert await repo.has_blob(sha(b"absent")) is False
        assert [s[0] for s in reg.seen] == ["HEAD", "HEAD"]
    run({("HEAD", f"/v2/lib/app/blobs/{sha(BLOB)}"): answer(200, **{"Content-Length": str(len(BLOB))})}, t)


def test_start_upload_and_mount():
    async def post(request, body):
        if request.query.get("mount"):
            return web.Response(status=201, headers={"Location": f"/v2/lib/app/blobs/{request.query['mount']}"})
        return web.Response(status=202, headers={"Location": "/v2/lib/app/blobs/uploads/u1?_state=s1"})

    async def t(reg, repo, port):
        assert await repo.start_upload() == f"http://127.0.0.1:{port}/v2/lib/app/blobs/uploads/u1?_state=s1"
        assert await repo.start_upload(mount=sha(BLOB), source="lib/base") is None
        assert parse_qs(reg.seen[1][2]) == {"mount": [sha(BLOB)], "from": ["lib/base"]}
    run({("POST", "/v2/lib/app/blobs/uploads/"): post}, t)


def uploads(chunks: list):
    async def patch(request, body):
        chunks.append((request.headers.get("Content-Range"), body))
        return web.Response(status=202, headers={"Location": f"/v2/lib/app/blobs/uploads/u1?_state=s{len(chunks) + 1}",
                                                 "Range": f"0-{sum(len(b) for _, b in chunks) - 1}"})

    async def put(request, body):
        return web.Response(status=201, headers={"Docker-Content-Digest": request.query["digest"]})
    return {("PATCH", "/v2/lib/app/blobs/uploads/u1"): patch, ("PUT", "/v2/lib/app/blobs/uploads/u1"): put}


def test_upload_small_is_one_put(tmp_path):
    (tmp_path / "blob").write_bytes(BLOB)

    async def t(reg, repo, port):
        seen = []
        await repo.upload(f"http://127.0.0.1:{port}/v2/lib/app/blobs/uploads/u1?_state=s1", sha(BLOB),
                          str(tmp_path / "blob"), len(BLOB), seen.append)
        (method, path, query, headers, body), = reg.seen
        assert (method, path, body) == ("PUT", "/v2/lib/app/blobs/uploads/u1", BLOB)
        q = parse_qs(query)
        assert q["digest"] == [sha(BLOB)] and set(q["_state"]) == {"s1"}
        assert headers["Content-Type"] == "application/octet-stream"
        assert seen == [len(BLOB)]
    run(uploads([]), t)


def test_upload_large_is_patch_chunks_then_put(tmp_path, monkeypatch):
    monkeypatch.setattr(client, "MONOLITHIC_MAX", 10)
    monkeypatch.setattr(client, "CHUNK_SIZE", 4)
    data = b"0123456789A"
    (tmp_path / "blob").write_bytes(data)
    chunks: list = []

    async def t(reg, repo, port):
        await repo.upload(f"http://127.0.0.1:{port}/v2/lib/app/blobs/uploads/u1?_state=s1", sha(data),
                          str(tmp_path / "blob"), len(data))
        assert chunks == [("0-3", b"0123"), ("4-7", b"4567"), ("8-10", b"89A")]
        assert [(s[0], s[2]) for s in reg.seen[:3]] == [("PATCH", "_state=s1"), ("PATCH", "_state=s2"),
                                                        ("PATCH", "_state=s3")]
        method, _, query, _, body = reg.seen[3]
        assert (method, body) == ("PUT", b"")
        assert parse_qs(query)["digest"] == [sha(data)]
        assert "s4" in parse_qs(query)["_state"]  # the Location of the last PATCH is followed
    run(uploads(chunks), t)


def test_upload_refused():
    async def t(reg, repo, port):
        with pytest.raises(InvalidArgument, match="digest invalid: provided digest did not match"):
            await repo.upload(f"http://127.0.0.1:{port}/v2/lib/app/blobs/uploads/u1", sha(b"x"), __file__, 1)
    run({("PUT", "/v2/lib/app/blobs/uploads/u1"): answer(400, oci_error("DIGEST_INVALID",
                                                                          "provided digest did not match"))}, t)


def test_upload_put_sends_the_location_query_once(tmp_path):
    async def t(reg, repo, port):
        await repo.upload(f"http://127.0.0.1:{port}/v2/lib/app/blobs/uploads/u1?_state=s1", sha(b"x"), __file__, 0)
        assert parse_qs(reg.seen[0][2])["_state"] == ["s1"]
    run(uploads([]), t)


def test_start_upload_error_is_a_berth_error():
    async def t(reg, repo, port):
        with pytest.raises(SystemError_, match="unsupported: nope"):
            await repo.start_upload()
    run({("POST", "/v2/lib/app/blobs/uploads/"): answer(500, oci_error("UNSUPPORTED", "nope"))}, t)


def test_put_manifest_returns_the_digest():
    async def t(reg, repo, port):
        assert await repo.put_manifest("v1", MANIFEST, mf.OCI_MANIFEST) == "sha256:" + "d" * 64
        assert reg.seen[0][3]["Content-Type"] == mf.OCI_MANIFEST and reg.seen[0][4] == MANIFEST
        assert await repo.put_manifest("v2", MANIFEST, mf.OCI_MANIFEST) == sha(MANIFEST)
    run({("PUT", "/v2/lib/app/manifests/v1"): answer(201, **{"Docker-Content-Digest": "sha256:" + "d" * 64}),
         ("PUT", "/v2/lib/app/manifests/v2"): answer(201)}, t)


def test_scheme_fallback_to_http_is_remembered():
    async def t(reg, repo, port):
        ep = repo.endpoint
        assert not ep.secure and repo.http.hosts.schemes(ep) == ["https", "http"]
        await repo.ping()
        assert repo.http.hosts.schemes(ep) == ["http"]
        assert await repo.start_upload() == f"http://127.0.0.1:{port}/v2/lib/app/blobs/uploads/u1?_state=s1"
    run({("GET", "/v2/"): answer(200, "{}"),
         ("POST", "/v2/lib/app/blobs/uploads/"): answer(202, **{"Location": "/v2/lib/app/blobs/uploads/u1?_state=s1"})},
        t, known_http=False)


def test_unreachable_registry_is_a_system_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main():
        http = RegistryHTTP(Hosts())
        try:
            repo = http.repository(Endpoint(f"127.0.0.1:{port}", False), "lib/app", Credentials())
            with pytest.raises(SystemError_, match=f"cannot reach registry 127.0.0.1:{port}"):
                await repo.manifest("latest")
        finally:
            await http.close()
    asyncio.run(main())
