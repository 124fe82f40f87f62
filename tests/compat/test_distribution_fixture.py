"""The distribution (docker-registry 2.8) fixtures of tests/support/distribution.py, proved with skopeo alone (no
berth): a plain registry, htpasswd auth and token auth with the test token issuer, over 127.0.0.1 only."""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request

import pytest

from tests.support.distribution import (DistributionRegistry, inspect_raw, make_image_archive, missing_tools,
                                        seed)

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))

ALICE = ("alice", "wonderland")
V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="bt-dist-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def small_image(workdir):
    path = os.path.join(workdir, "small.tar")
    info = make_image_archive(path, [{"etc/hello.txt": b"hello\n"}, {"srv/data/x": b"x" * 1000}])
    return path, info


def _manifest(registry, ref, creds=None) -> dict:
    p = inspect_raw(registry, ref, creds)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_archive_is_what_it_says(small_image):
    path, info = small_image
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config_bytes = tar.extractfile(manifest[0]["Config"]).read()
        raws = [gzip.decompress(tar.extractfile(layer).read()) for layer in manifest[0]["Layers"]]
    assert "sha256:" + hashlib.sha256(config_bytes).hexdigest() == info["id"] == info["config_digest"]
    assert ["sha256:" + hashlib.sha256(r).hexdigest() for r in raws] == info["diff_ids"]
    assert json.loads(config_bytes)["rootfs"]["diff_ids"] == info["diff_ids"]
    with tarfile.open(fileobj=io.BytesIO(raws[0])) as layer:
        assert layer.extractfile("etc/hello.txt").read() == b"hello\n"


@pytest.mark.parametrize("fmt, media_type", [("v2s2", V2S2), ("oci", OCI)])
def test_plain_registry_push_and_inspect(workdir, fmt, media_type):
    archive = os.path.join(workdir, "busybox.tar")
    info = make_image_archive(archive, compress="none")  # the default layer: busybox's rootfs
    with DistributionRegistry(os.path.join(workdir, "reg")) as reg:
        assert reg.addr.startswith("127.0.0.1:") and reg.url == f"http://{reg.addr}"
        with urllib.request.urlopen(reg.url + "/v2/", timeout=5) as resp:
            assert resp.status == 200
        seed(reg, "library/busybox:latest", archive, fmt=fmt)
        manifest = _manifest(reg, "library/busybox:latest")
        assert manifest.get("mediaType", OCI) == media_type
        assert len(manifest["layers"]) == 1
        p = inspect_raw(reg, "library/busybox:latest", config=True)
        assert p.returncode == 0, p.stderr
        assert "sha256:" + hashlib.sha256(p.stdout.encode()).hexdigest() == manifest["config"]["digest"]
        # v2s2 keeps the config byte for byte (the image ID); OCI rewrites it into an OCI config
        assert (manifest["config"]["digest"] == info["id"]) == (fmt == "v2s2")
        assert json.loads(p.stdout)["rootfs"]["diff_ids"] == info["diff_ids"]
        # the registry stores the blobs under its workdir, and deletes are enabled
        assert os.path.isdir(os.path.join(reg.workdir, "storage", "docker", "registry", "v2", "repositories",
                                          "library", "busybox"))
        proc = reg.proc
    assert reg.proc is None and proc.poll() is not None


def test_missing_tag_fails(workdir):
    with DistributionRegistry(os.path.join(workdir, "reg")) as reg:
        p = inspect_raw(reg, "nothing/here:latest")
        assert p.returncode != 0 and "manifest unknown" in p.stderr


def test_tls_registry(workdir, small_image):
    archive, info = small_image
    with DistributionRegistry(os.path.join(workdir, "reg"), tls=True) as reg:
        assert reg.url == f"https://{reg.addr}"
        seed(reg, "tls/img:1", archive)
        assert _manifest(reg, "tls/img:1")["config"]["digest"] == info["id"]


def test_htpasswd_push_needs_credentials(workdir, small_image):
    archive, info = small_image
    with DistributionRegistry(os.path.join(workdir, "reg"), auth="htpasswd") as reg:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(reg.url + "/v2/", timeout=5)
        assert e.value.code == 401 and "Basic" in e.value.headers["WWW-Authenticate"]
        basic = base64.b64encode(b"alice:wonderland").decode()
        req = urllib.request.Request(reg.url + "/v2/", headers={"Authorization": f"Basic {basic}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200

        seed(reg, "private/img:1", archive, creds=ALICE)
        assert _manifest(reg, "private/img:1", ALICE)["config"]["digest"] == info["id"]
        with pytest.raises(AssertionError, match="unauthorized|authentication required"):
            seed(reg, "private/img:2", archive)
        with pytest.raises(AssertionError, match="unauthorized|authentication required"):
            seed(reg, "private/img:3", archive, creds=("alice", "wrong"))
        assert inspect_raw(reg, "private/img:1").returncode != 0


def test_htpasswd_custom_users(workdir, small_image):
    archive, _ = small_image
    with DistributionRegistry(os.path.join(workdir, "reg"), auth="htpasswd", users={"bob": "b0b"}) as reg:
        seed(reg, "bob/img:1", archive, creds=("bob", "b0b"))
        with pytest.raises(AssertionError):
            seed(reg, "bob/img:2", archive, creds=ALICE)


@pytest.mark.parametrize("key_header", ["x5c", "kid"])
def test_token_auth_behaves_like_docker_hub(workdir, small_image, key_header):
    archive, info = small_image
    with DistributionRegistry(os.path.join(workdir, "reg"), auth="token", key_header=key_header) as reg:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(reg.url + "/v2/", timeout=5)
        challenge = e.value.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ") and reg.token.realm in challenge

        seed(reg, "public/img:1", archive, creds=ALICE)
        seed(reg, "private/img:1", archive, creds=ALICE)
        assert ("repository:public/img:pull,push", "alice") in reg.token_requests
        # anonymous pull of a public repository works; of a private one it does not
        assert _manifest(reg, "public/img:1")["config"]["digest"] == info["id"]
        assert ("repository:public/img:pull", "") in reg.token_requests
        p = inspect_raw(reg, "private/img:1")
        assert p.returncode != 0 and ("unauthorized" in p.stderr or "authentication required" in p.stderr)
        assert _manifest(reg, "private/img:1", ALICE)["config"]["digest"] == info["id"]
        # anonymous push fails, even to a public repository
        with pytest.raises(AssertionError, match="unauthorized|authentication required|denied"):
            seed(reg, "public/img:2", archive)
        # bad credentials: the token issuer answers 401
        with pytest.raises(AssertionError):
            seed(reg, "public/img:3", archive, creds=("alice", "wrong"))
        assert reg.token.refused
    assert reg.proc is None and ("repository:public/img:pull", "") in reg.token_requests  # kept after stop()


def test_restart_keeps_the_images(workdir, small_image):
    archive, info = small_image
    reg = DistributionRegistry(os.path.join(workdir, "reg"), auth="token")
    with reg:
        seed(reg, "public/img:1", archive, creds=ALICE)
    with reg:
        assert reg.proc is not None and reg.token.realm in open(reg.config_path).read()
        assert _manifest(reg, "public/img:1")["config"]["digest"] == info["id"]


def test_token_endpoint_directly(workdir):
    with DistributionRegistry(os.path.join(workdir, "reg"), auth="token") as reg:
        realm, service = reg.token.realm, reg.token.service

        def token(scope, user=None):
            req = urllib.request.Request(f"{realm}?service={service}&scope={scope}")
            if user:
                req.add_header("Authorization", "Basic " + base64.b64encode(":".join(user).encode()).decode())
            with urllib.request.urlopen(req, timeout=5) as resp:
                body = json.load(resp)
            assert body["token"] == body["access_token"] and body["expires_in"] == 300 and body["issued_at"]
            header, claims, _ = body["token"].split(".")
            pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
            return json.loads(base64.urlsafe_b64decode(pad(header))), json.loads(base64.urlsafe_b64decode(pad(claims)))

        header, claims = token("repository:public/a:pull,push")
        assert header["alg"] == "RS256" and header["x5c"]
        assert claims["access"] == [{"type": "repository", "name": "public/a", "actions": ["pull"]}]
        assert claims["aud"] == service and claims["iss"] == reg.token.issuer and claims["exp"] > claims["iat"]
        assert token("repository:private/a:pull")[1]["access"] == []
        assert token("repository:private/a:pull,push", ALICE)[1]["access"] == [
            {"type": "repository", "name": "private/a", "actions": ["pull", "push"]}]
        with pytest.raises(urllib.error.HTTPError) as e:
            token("repository:public/a:pull", ("alice", "nope"))
        assert e.value.code == 401
        assert reg.token_requests[-1] == ("repository:public/a:pull", "?")
