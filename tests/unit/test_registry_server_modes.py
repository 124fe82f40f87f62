"""berth's registry server in its other modes: htpasswd auth, read-only, TLS, body limits; offline gc;
crash safety of uploads."""
from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import pytest

from berth.registry.server import auth
from tests.support.registry_server import BERTH, BerthRegistry


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def errors(body: bytes) -> list[str]:
    return [e["code"] for e in json.loads(body)["errors"]]


def wait_for(cond, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def root():
    d = tempfile.mkdtemp(prefix="bt-reg-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def push(r: BerthRegistry, name: str, tag: str, headers: dict | None = None) -> tuple[str, str, str]:
    """Push a config, a layer and a manifest; their digests (config, layer, manifest)."""
    h = headers or {}
    config, layer = json.dumps({"os": "linux", "tag": tag}).encode(), f"layer {tag}".encode() * 100
    for blob in (config, layer):
        status, _, body = r.request("POST", f"/v2/{name}/blobs/uploads/?digest={sha(blob)}", blob, h)
        assert status == 201, body
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                                 "size": len(config)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer),
                                  "size": len(layer)}]}).encode()
    status, _, body = r.request("PUT", f"/v2/{name}/manifests/{tag}", man,
                                {**h, "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 201, body
    return sha(config), sha(layer), sha(man)


def blob_files(root: str) -> set[str]:
    base = os.path.join(root, "blobs", "sha256")
    return {"sha256:" + f for f in os.listdir(base)} if os.path.isdir(base) else set()


# ---------------------------------------------------------------- auth

@pytest.fixture
def htpasswd(root):
    path = os.path.join(root, "..", os.path.basename(root) + ".htpasswd")
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=10)).decode().replace("$2b$", "$2y$", 1)
    with open(path, "w") as f:
        f.write(f"alice:{hashed}\n")
    yield path
    os.unlink(path)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ENDPOINTS = [("GET", "/"), ("GET", "/v2/"), ("GET", "/v2/_catalog"), ("GET", "/v2/a/tags/list"),
             ("GET", "/v2/a/manifests/latest"), ("HEAD", "/v2/a/manifests/latest"), ("PUT", "/v2/a/manifests/x"),
             ("DELETE", "/v2/a/manifests/x"), ("GET", f"/v2/a/blobs/{sha(b'')}"), ("DELETE", f"/v2/a/blobs/{sha(b'')}"),
             ("POST", "/v2/a/blobs/uploads/"), ("GET", f"/v2/a/referrers/{sha(b'')}"),
             ("PATCH", "/v2/a/blobs/uploads/00000000-0000-0000-0000-000000000000")]


def test_htpasswd_auth_is_required_everywhere(root, htpasswd):
    with BerthRegistry(root, htpasswd=htpasswd) as r:
        for creds in ({}, basic("alice", "wrong"), basic("bob", "s3cret"), {"Authorization": "Bearer x"}):
            for method, path in ENDPOINTS:
                status, h, body = r.request(method, path, headers=creds)
                assert status == 401, (method, path, creds)
                assert h["www-authenticate"] == 'Basic realm="berth-registry"'
                if method != "HEAD":
                    assert errors(body) == ["UNAUTHORIZED"]
        good = basic("alice", "s3cret")
        assert r.request("GET", "/v2/", headers=good)[0] == 200
        _, layer, man = push(r, "auth/repo", "v1", good)
        assert r.request("GET", "/v2/auth/repo/manifests/v1", headers=good)[0] == 200
        # a mount needs nothing more than valid credentials (htpasswd users may read every repository)
        status, _, _ = r.request("POST", f"/v2/auth/other/blobs/uploads/?mount={layer}&from=auth/repo",
                                 headers=good)
        assert status == 201
        # 50 concurrent pulls with the same credentials: all succeed
        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(lambda _: r.request("GET", f"/v2/auth/repo/blobs/{layer}", headers=good)[0],
                                     range(50)))
        assert statuses == [200] * 50


def test_successful_bcrypt_checks_are_cached(htpasswd, monkeypatch):
    calls = []
    real = auth._check

    def counting(password, hashed):
        calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(auth, "_check", counting)
    h = auth.Htpasswd(htpasswd)

    async def many():
        return await asyncio.gather(*[h.user(basic("alice", "s3cret")["Authorization"]) for _ in range(20)])

    assert asyncio.run(many()) == ["alice"] * 20
    assert asyncio.run(h.user(basic("alice", "s3cret")["Authorization"])) == "alice"
    assert len(calls) == 1
    assert asyncio.run(h.user(basic("alice", "nope")["Authorization"])) is None
    assert len(calls) == 2


# ---------------------------------------------------------------- read-only, limits

def test_read_only_refuses_writes_and_changes_nothing(root):
    with BerthRegistry(root) as r:
        config, layer, man = push(r, "ro/repo", "v1")
    before = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    with BerthRegistry(root, read_only=True) as r:
        assert r.request("GET", "/v2/ro/repo/manifests/v1")[0] == 200
        assert r.request("GET", f"/v2/ro/repo/blobs/{layer}")[0] == 200
        writes = [("POST", "/v2/ro/repo/blobs/uploads/", None), ("POST", f"/v2/ro/repo/blobs/uploads/?digest={sha(b'x')}", b"x"),
                  ("PUT", "/v2/ro/repo/manifests/v2", b"{}"), ("DELETE", f"/v2/ro/repo/manifests/{man}", None),
                  ("DELETE", "/v2/ro/repo/manifests/v1", None), ("DELETE", f"/v2/ro/repo/blobs/{layer}", None),
                  ("POST", f"/v2/ro/other/blobs/uploads/?mount={layer}&from=ro/repo", None)]
        for method, path, body in writes:
            status, _, resp = r.request(method, path, body)
            assert (status, errors(resp)) == (405, ["UNSUPPORTED"]), (method, path)
        assert r.request("GET", "/v2/ro/repo/manifests/v1")[0] == 200
    after = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
    assert after == before


def test_max_body_limits_uploads(root):
    with BerthRegistry(root, extra=("--max-body", "100")) as r:
        status, _, body = r.request("POST", f"/v2/lim/blobs/uploads/?digest={sha(b'y' * 200)}", b"y" * 200)
        assert (status, errors(body)) == (413, ["SIZE_INVALID"])
        loc = r.request("POST", "/v2/lim/blobs/uploads/")[1]["location"]
        assert r.request("PATCH", loc, b"a" * 60)[0] == 202
        status, _, body = r.request("PATCH", loc, b"b" * 60)
        assert (status, errors(body)) == (413, ["SIZE_INVALID"])
        assert r.request("GET", loc)[1]["range"] == "0-59"  # the refused chunk left nothing
        assert r.request("PUT", f"{loc}?digest={sha(b'a' * 60)}")[0] == 201
    assert blob_files(root) == {sha(b"a" * 60)}


# ---------------------------------------------------------------- TLS

def _self_signed(directory: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def test_tls(root):
    certs = tempfile.mkdtemp(prefix="bt-reg-tls-")
    try:
        tls = _self_signed(certs)
        with BerthRegistry(os.path.join(root, "data"), tls=tls) as r:
            assert r.url.startswith("https://")
            status, h, body = r.request("GET", "/v2/")  # verified against the self-signed cert
            assert (status, json.loads(body)) == (200, {})
            push(r, "tls/repo", "v1")
            assert r.request("GET", "/v2/tls/repo/tags/list")[0] == 200
            with socket.create_connection(("127.0.0.1", r.port), timeout=5) as s:  # plain HTTP is not answered
                s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
                assert not s.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        shutil.rmtree(certs, ignore_errors=True)


# ---------------------------------------------------------------- gc

def test_gc_removes_only_unreferenced_blobs(root):
    with BerthRegistry(root) as r:
        config, layer, man = push(r, "gc/kept", "v1")
        r.request("POST", f"/v2/gc/kept/blobs/uploads/?digest={sha(b'orphan')}", b"orphan")
        _, gone_layer, gone_man = push(r, "gc/dropped", "v2")
        assert r.request("DELETE", f"/v2/gc/dropped/manifests/{gone_man}")[0] == 202
    before = blob_files(root)
    sizes = {d: os.path.getsize(os.path.join(root, "blobs", "sha256", d[7:])) for d in before}
    dry = subprocess.run([BERTH, "registry", "gc", "--root", root, "--dry-run"], capture_output=True, text=True)
    assert dry.returncode == 0 and blob_files(root) == before and sha(b"orphan") in dry.stdout
    p = subprocess.run([BERTH, "registry", "gc", "--root", root], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    removed = before - blob_files(root)
    assert sha(b"orphan") in removed and gone_layer in removed and gone_man in removed
    assert {config, layer, man} <= blob_files(root)
    assert f"removed blob {sha(b'orphan')} (6 bytes)" in p.stdout
    assert f"{len(removed)} blobs, {sum(sizes[d] for d in removed)} bytes freed" in p.stdout
    with BerthRegistry(root) as r:
        assert r.request("GET", "/v2/gc/kept/manifests/v1")[0] == 200
        assert r.request("GET", f"/v2/gc/kept/blobs/{layer}")[0] == 200
        assert r.request("HEAD", f"/v2/gc/kept/blobs/{sha(b'orphan')}")[0] == 404


# ---------------------------------------------------------------- crash safety

def test_killed_upload_leaves_no_blob(root):
    data = os.urandom(1 << 20)
    r = BerthRegistry(root)
    try:
        r.start()
        before = blob_files(root)
        with socket.create_connection(("127.0.0.1", r.port), timeout=10) as s:
            s.sendall(f"POST /v2/crash/blobs/uploads/?digest={sha(data)} HTTP/1.1\r\nHost: x\r\n"
                      f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:300_000])
            uploads = os.path.join(root, "uploads")

            def partial_written() -> bool:
                return any(os.path.exists(os.path.join(uploads, u, "data"))
                           and os.path.getsize(os.path.join(uploads, u, "data")) > 0 for u in os.listdir(uploads))
            wait_for(partial_written, what="part of the upload on disk")
            r.kill()
        assert blob_files(root) == before
        # an old leftover session is removed at start; the blob stays unknown
        for u in os.listdir(os.path.join(root, "uploads")):
            os.utime(os.path.join(root, "uploads", u), (time.time() - 3 * 86400,) * 2)
        r.start()
        assert os.listdir(os.path.join(root, "uploads")) == []
        assert r.request("HEAD", f"/v2/crash/blobs/{sha(data)}")[0] == 404
    finally:
        r.close()
