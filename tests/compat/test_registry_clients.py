"""berth's registry client against registries nobody here wrote (Debian's docker-registry, with htpasswd and
with token auth) and against ``berth registry``; the docker CLI and docker-py pulling and pushing through
berthd. Every registry listens on 127.0.0.1 only. Needs root (real daemons)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from urllib.parse import quote

import bcrypt
import pytest

from tests.support.distribution import DistributionRegistry, make_image_archive, missing_tools, seed
from tests.support.oci_schemas import oci_validator
from tests.support.registry_server import BerthRegistry

pytestmark = [pytest.mark.root, pytest.mark.skipif(bool(missing_tools()), reason=missing_tools() or "")]
USER, PASSWORD = "alice", "wonderland"


@pytest.fixture
def work():
    d = tempfile.mkdtemp(prefix="bt-regcli-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["berth", "distribution"])
def registry(request, work):
    """A registry with no auth: berth's own, or docker-registry."""
    if request.param == "berth":
        r = BerthRegistry(os.path.join(work, "root"))
    else:
        r = DistributionRegistry(os.path.join(work, "dist"))
        os.makedirs(r.workdir, exist_ok=True)
    with r:
        yield r


def image_id(daemon, ref: str) -> str | None:
    status, body = daemon.api("GET", f"/images/{quote(ref, safe='')}/json")
    return body["Id"] if status == 200 else None


def manifest(addr: str, repo: str, ref: str, auth: tuple[str, str] | None = None) -> tuple[bytes, str]:
    req = urllib.request.Request(f"http://{addr}/v2/{repo}/manifests/{ref}", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    if auth:
        import base64
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read(), resp.headers["Docker-Content-Digest"]


def cfg_env(path: str) -> dict:
    return {"DOCKER_CONFIG": path}


@pytest.fixture(scope="module")
def layered(daemon):
    """busybox plus a layer of its own, so a pull into a fresh daemon downloads something."""
    ctx = tempfile.mkdtemp(prefix="bt-layered-", dir="/tmp")
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write("FROM busybox:latest\nRUN echo layered > /layered\n")
    daemon.cli("build", "-t", "layered:1", ctx)
    shutil.rmtree(ctx, ignore_errors=True)
    yield "layered:1"
    daemon.api("DELETE", "/images/layered:1?force=1")


def test_push_then_pull_into_a_fresh_root_gives_the_same_image(daemon, fresh_daemon, made, registry, layered):
    ref = made.image(f"{registry.addr}/team/app:1")
    daemon.cli("tag", layered, ref)
    out = daemon.cli("push", ref).stdout.decode()
    assert f"The push refers to repository [{registry.addr}/team/app]" in out
    assert ": Pushed" in out
    digest = out.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    data, served = manifest(registry.addr, "team/app", "1")
    assert served == digest
    oci_validator()(data)
    again = daemon.cli("push", ref).stdout.decode()
    assert "Layer already exists" in again and f"digest: {digest}" in again

    pulled = fresh_daemon.cli("pull", ref).stdout.decode()
    assert "Already exists" in pulled and "Pull complete" in pulled and f"Digest: {digest}" in pulled
    assert f"Status: Downloaded newer image for {ref}" in pulled
    assert image_id(fresh_daemon, ref) == image_id(daemon, layered)
    _, body = fresh_daemon.api("GET", f"/images/{quote(ref, safe='')}/json")
    assert body["RepoDigests"] == [f"{registry.addr}/team/app@{digest}"]
    assert fresh_daemon.cli("run", "--rm", ref, "cat", "/layered").stdout == b"layered\n"
    up = fresh_daemon.cli("pull", ref).stdout.decode()
    assert f"Status: Image is up to date for {ref}" in up and "Pull complete" not in up
    # by digest: the same image, as a digest reference
    assert image_id(fresh_daemon, f"{registry.addr}/team/app@{digest}") == image_id(daemon, layered)


def test_pull_all_tags_and_distribution_inspect(daemon, fresh_daemon, made, registry):
    for tag in ("a", "b"):
        daemon.cli("tag", "busybox:latest", made.image(f"{registry.addr}/multi/bb:{tag}"))
    daemon.cli("push", "--all-tags", f"{registry.addr}/multi/bb")
    status, info = daemon.api("GET", f"/distribution/{registry.addr}/multi/bb:a/json")
    assert status == 200, info
    assert info["Descriptor"]["digest"] == manifest(registry.addr, "multi/bb", "a")[1]
    assert info["Platforms"][0]["os"] == "linux"
    out = fresh_daemon.cli("pull", "-a", f"{registry.addr}/multi/bb").stdout.decode()
    assert "a: Pulling from multi/bb" in out and "b: Pulling from multi/bb" in out
    assert image_id(fresh_daemon, f"{registry.addr}/multi/bb:a") == image_id(fresh_daemon, f"{registry.addr}/multi/bb:b")
    missing = fresh_daemon.cli("pull", f"{registry.addr}/multi/bb:nope", check=False)
    assert missing.returncode == 1
    assert f"manifest for {registry.addr}/multi/bb:nope not found" in missing.stderr.decode()


def test_htpasswd_login_push_pull_logout(daemon, fresh_daemon, made, work):
    reg = DistributionRegistry(os.path.join(work, "auth"), auth="htpasswd")
    os.makedirs(reg.workdir, exist_ok=True)
    conf = os.path.join(work, "docker-config")
    with reg:
        ref = made.image(f"{reg.addr}/private/bb:1")
        daemon.cli("tag", "busybox:latest", ref)
        denied = daemon.cli("push", ref, check=False, env=cfg_env(conf))
        assert denied.returncode == 1 and "authentication required" in denied.stderr.decode()
        bad = daemon.cli("login", "-u", USER, "--password-stdin", reg.addr, input=b"wrong\n", check=False,
                         env=cfg_env(conf))
        assert bad.returncode == 1 and "401 Unauthorized" in bad.stderr.decode()
        assert not os.path.exists(os.path.join(conf, "config.json"))
        ok = daemon.cli("login", "-u", USER, "--password-stdin", reg.addr, input=PASSWORD.encode() + b"\n",
                        env=cfg_env(conf))
        assert b"Login Succeeded" in ok.stdout
        with open(os.path.join(conf, "config.json")) as f:
            assert reg.addr in json.load(f)["auths"]
        daemon.cli("push", ref, env=cfg_env(conf))
        anonymous = fresh_daemon.cli("pull", ref, check=False, env=cfg_env(os.path.join(work, "nobody")))
        assert anonymous.returncode == 1 and "pull access denied" in anonymous.stderr.decode()
        assert image_id(fresh_daemon, ref) is None
        fresh_daemon.cli("pull", ref, env=cfg_env(conf))
        assert image_id(fresh_daemon, ref) == image_id(daemon, "busybox:latest")
        out = daemon.cli("logout", reg.addr, env=cfg_env(conf)).stdout.decode()
        assert f"Removing login credentials for {reg.addr}" in out


def test_token_auth_as_docker_hub_plays_it(daemon, fresh_daemon, made, work):
    reg = DistributionRegistry(os.path.join(work, "token"), auth="token")
    os.makedirs(reg.workdir, exist_ok=True)
    with reg:
        archive = make_image_archive(os.path.join(work, "img.tar"))
        seed(reg, "public/bb:1", os.path.join(work, "img.tar"), creds=(USER, PASSWORD))
        public = made.image(f"{reg.addr}/public/bb:1")
        before = len(reg.token_requests)
        fresh_daemon.cli("pull", public)  # anonymous: Docker Hub's public images need no login
        assert image_id(fresh_daemon, public) == archive["id"]
        fresh_daemon.api("DELETE", f"/images/{quote(public, safe='')}")
        fresh_daemon.cli("pull", public)
        scopes = [s for s, _ in reg.token_requests[before:]]
        assert scopes.count("repository:public/bb:pull") == 1, reg.token_requests  # cached per scope
        private = made.image(f"{reg.addr}/alice/bb:1")
        daemon.cli("tag", "busybox:latest", private)
        conf = os.path.join(work, "cfg")
        refused = daemon.cli("push", private, check=False, env=cfg_env(conf))
        assert refused.returncode == 1 and reg.addr in refused.stderr.decode()
        daemon.cli("login", "-u", USER, "--password-stdin", reg.addr, input=PASSWORD.encode(), env=cfg_env(conf))
        daemon.cli("push", private, env=cfg_env(conf))
        assert ("repository:alice/bb:pull,push", USER) in reg.token_requests


def test_docker_cli_and_docker_py_pull_and_push_through_berthd(daemon, fresh_daemon, made, work):
    import docker
    with BerthRegistry(os.path.join(work, "root")) as reg:
        ref = made.image(f"{reg.addr}/dock/bb:1")
        daemon.docker("tag", "busybox:latest", ref)
        pushed = daemon.docker("push", ref).stdout.decode()
        assert "1: digest: sha256:" in pushed
        pulled = fresh_daemon.docker("pull", ref).stdout.decode()
        assert f"Status: Downloaded newer image for {ref}" in pulled
        assert image_id(fresh_daemon, ref) == image_id(daemon, "busybox:latest")
        client = docker.DockerClient(base_url=fresh_daemon.host, timeout=60)
        try:
            client.images.get(ref).tag(f"{reg.addr}/py/bb", "2")
            made.image(f"{reg.addr}/py/bb:2")
            lines = list(client.images.push(f"{reg.addr}/py/bb", tag="2", stream=True, decode=True))
            assert not [x for x in lines if "error" in x], lines
            assert any(x.get("aux", {}).get("Tag") == "2" for x in lines)
            client.images.remove(f"{reg.addr}/py/bb:2")
            img = client.images.pull(f"{reg.addr}/py/bb", tag="2")
            assert img.id == image_id(daemon, "busybox:latest")
        finally:
            client.close()


def test_build_pulls_a_base_image_it_lacks(daemon, fresh_daemon, made, work):
    with BerthRegistry(os.path.join(work, "root")) as reg:
        base = made.image(f"{reg.addr}/base/bb:1")
        daemon.cli("tag", "busybox:latest", base)
        daemon.cli("push", base)
        ctx = os.path.join(work, "ctx")
        os.makedirs(ctx)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(f"FROM {base}\nRUN echo built > /built\n")
        out = fresh_daemon.cli("build", "-t", "pulled-base:1", ctx).stdout.decode()
        assert "Pulling from base/bb" in out
        assert fresh_daemon.cli("run", "--rm", "pulled-base:1", "cat", "/built").stdout == b"built\n"
        again = fresh_daemon.cli("build", "--pull", "-t", "pulled-base:1", ctx).stdout.decode()
        assert f"Status: Image is up to date for {base}" in again  # --pull asks the registry even when local
        assert "Using cache" in again
        fresh_daemon.api("DELETE", "/images/pulled-base:1?force=1")


def test_berth_registry_with_htpasswd_and_tls(daemon, fresh_daemon, made, work):
    from tests.support.distribution import make_key_and_cert, _pem
    key, cert = make_key_and_cert("127.0.0.1", "127.0.0.1")
    key_pem, cert_pem = _pem(key, cert)
    paths = {n: os.path.join(work, n) for n in ("key.pem", "cert.pem", "htpasswd")}
    for name, data in (("key.pem", key_pem), ("cert.pem", cert_pem)):
        with open(paths[name], "wb") as f:
            f.write(data)
    with open(paths["htpasswd"], "wb") as f:
        f.write(USER.encode() + b":" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)) + b"\n")
    conf = os.path.join(work, "cfg")
    with BerthRegistry(os.path.join(work, "root"), htpasswd=paths["htpasswd"],
                       tls=(paths["cert.pem"], paths["key.pem"])) as reg:
        ref = made.image(f"{reg.addr}/tls/bb:1")
        daemon.cli("tag", "busybox:latest", ref)
        daemon.cli("login", "-u", USER, "--password-stdin", reg.addr, input=PASSWORD.encode(), env=cfg_env(conf))
        daemon.cli("push", ref, env=cfg_env(conf))
        fresh_daemon.cli("pull", ref, env=cfg_env(conf))
        assert image_id(fresh_daemon, ref) == image_id(daemon, "busybox:latest")


def test_search_and_info_registry_config(daemon, made, work):
    with BerthRegistry(os.path.join(work, "root")) as reg:
        ref = made.image(f"{reg.addr}/findme/tool:1")
        daemon.cli("tag", "busybox:latest", ref)
        daemon.cli("push", ref)
        out = daemon.cli("search", f"{reg.addr}/findme").stdout.decode()
        assert out.splitlines()[0].split()[:3] == ["NAME", "DESCRIPTION", "STARS"]
        assert "findme/tool" in out
        assert daemon.cli("search", f"{reg.addr}/nothing-like-it").stdout.decode().count("\n") == 1
        status, items = daemon.api("GET", f"/images/search?term={reg.addr}/findme&limit=1000")
        assert status == 400 and "outside the range" in items["message"]
    _, info = daemon.api("GET", "/info")
    assert "127.0.0.0/8" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
    assert info["RegistryConfig"]["IndexConfigs"]["docker.io"]["Official"] is True


def test_docker_cli_login_and_push_with_credentials_through_berthd(daemon, fresh_daemon, made, work):
    reg = DistributionRegistry(os.path.join(work, "auth"), auth="htpasswd")
    os.makedirs(reg.workdir, exist_ok=True)
    with reg:
        ref = made.image(f"{reg.addr}/dockerlogin/bb:1")
        daemon.docker("tag", "busybox:latest", ref)
        bad = daemon.docker("login", "-u", USER, "--password-stdin", reg.addr, input=b"nope\n", check=False)
        assert bad.returncode != 0 and "401 Unauthorized" in bad.stderr.decode()
        ok = daemon.docker("login", "-u", USER, "--password-stdin", reg.addr, input=PASSWORD.encode() + b"\n")
        assert b"Login Succeeded" in ok.stdout
        try:
            assert "digest: sha256:" in daemon.docker("push", ref).stdout.decode()
            conf = os.path.join(daemon.dir, "docker-config")
            fresh_daemon.cli("pull", ref, env=cfg_env(conf))  # berth reads what docker login stored
            assert image_id(fresh_daemon, ref) == image_id(daemon, "busybox:latest")
        finally:
            daemon.docker("logout", reg.addr, check=False)
