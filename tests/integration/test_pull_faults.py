"""Pulls from a fault-injecting registry (tests/support/fake_registry.py) into a real berthd.

Every failed pull must end with one clear error naming the image, and leave the store as it was: no
new image or tag, nothing left under ``ingest/`` or ``snapshots/tmp-*``. Interrupted pulls keep only
complete layers, so the next pull fetches just the rest. Needs root (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import os
import tarfile
import threading
import uuid
from urllib.parse import quote, urlencode

import pytest

from tests.support.daemon import _Unix, make_rootfs_tar, wait_for
from tests.support.fake_registry import (ARCH, OTHER_ARCH, Fault, FakeRegistry, build_image, digest_of,
                                         layer_tar)

pytestmark = pytest.mark.root


# -- helpers --------------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def busybox_tar() -> bytes:
    path = f"/tmp/bt-fake-busybox-{os.getpid()}.tar"
    make_rootfs_tar(path)
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def busybox_layer(mark: str) -> bytes:
    """busybox's root filesystem plus /etc/bt-mark: a base layer no other image shares."""
    buf = io.BytesIO(busybox_tar())
    with tarfile.open(fileobj=buf, mode="a") as tar:
        ti = tarfile.TarInfo("etc/bt-mark")
        ti.size, ti.mtime = len(mark), 1700000000
        tar.addfile(ti, io.BytesIO(mark.encode()))
    return buf.getvalue()


def small_image(n: int = 3, **kw):
    """``n`` layers of incompressible bytes (so a blob can be cut part-way)."""
    return build_image([layer_tar({f"l{i}/data": os.urandom(96 << 10)}) for i in range(n)], **kw)


def auth_header(user: str, password: str) -> dict:
    doc = json.dumps({"username": user, "password": password}).encode()
    return {"X-Registry-Auth": base64.urlsafe_b64encode(doc).decode()}


def pull_path(name: str, tag: str = "", platform: str = "") -> str:
    q = {"fromImage": name, **({"tag": tag} if tag else {}), **({"platform": platform} if platform else {})}
    return "/images/create?" + urlencode(q)


def pull(daemon, name: str, tag: str = "", platform: str = "", headers: dict | None = None):
    """(HTTP status, the stream's messages; or [the error body] when the daemon answered an HTTP error)."""
    status, body = daemon.api("POST", pull_path(name, tag, platform), headers=headers, raw=True, timeout=120)
    if status != 200:
        return status, [json.loads(body)]
    return status, [json.loads(line) for line in body.splitlines() if line.strip()]


def failure(status: int, msgs: list[dict]) -> str:
    """The one error of a failed pull (HTTP error body, or the stream's last line), checked to be one line."""
    if status != 200:
        text = msgs[0]["message"]
    else:
        errors = [m for m in msgs if "error" in m]
        assert len(errors) == 1 and msgs[-1] is errors[0], msgs
        assert errors[0]["errorDetail"]["message"] == errors[0]["error"]
        text = errors[0]["error"]
    assert text and "\n" not in text.strip() and "Traceback" not in text, text
    return text


def ok(status: int, msgs: list[dict]) -> list[dict]:
    assert status == 200 and not any("error" in m for m in msgs), msgs
    return msgs


def images(daemon) -> list[tuple]:
    status, items = daemon.api("GET", "/images/json?all=1&digests=1")
    assert status == 200
    return sorted((i["Id"], tuple(sorted(i.get("RepoTags") or [])), tuple(sorted(i.get("RepoDigests") or [])))
                  for i in items)


def leftovers(daemon) -> list[str]:
    ingest = os.path.join(daemon.data_root, "ingest")
    snaps = os.path.join(daemon.data_root, "snapshots")
    return ([os.path.join(ingest, n) for n in os.listdir(ingest)]
            + [os.path.join(snaps, n) for n in os.listdir(snaps) if n.startswith("tmp-")])


def assert_unchanged(daemon, before: list[tuple]) -> None:
    wait_for(lambda: not leftovers(daemon), 15, what="ingest/ and snapshots/tmp-* to be empty")
    assert images(daemon) == before


class Stream:
    """A pull whose progress is read line by line, and that can be abandoned part-way."""

    def __init__(self, daemon, path: str, headers: dict | None = None) -> None:
        self.conn = _Unix(daemon.socket, 60)
        self.conn.request("POST", path, headers=headers or {})
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, self.resp.read()
        self.seen: list[dict] = []

    def until(self, done) -> list[dict]:
        while not done(self.seen):
            line = self.resp.readline()
            if not line:
                raise AssertionError(f"the stream ended first: {self.seen}")
            if line.strip():
                self.seen.append(json.loads(line))
        return self.seen

    def close(self) -> None:
        self.resp.close()
        self.conn.close()


def completed(*layers):
    shorts = {x.digest.split(":")[1][:12] for x in layers}
    return lambda seen: shorts <= {m.get("id") for m in seen if m.get("status") == "Pull complete"}


@pytest.fixture
def reg():
    with FakeRegistry() as r:
        yield r


@pytest.fixture
def cleanup(daemon):
    """Names and IDs to remove at teardown."""
    names: list[str] = []
    yield names
    for n in reversed(names):
        daemon.api("DELETE", f"/images/{quote(n, safe='')}?force=1")


def repo_name() -> str:
    return "bt/" + uuid.uuid4().hex[:10]


# -- faults before any output: an HTTP error ------------------------------------------------------------------------

MANIFEST_FAULTS = {
    "404": (lambda img: Fault(status=404), (404,), "not found"),
    "500": (lambda img: Fault(status=500), (500,), "injected status 500"),
    "401-no-challenge": (lambda img: Fault(status=401), (401, 404), "pull access denied"),
    "401-basic": (lambda img: Fault(status=401, challenge='Basic realm="x"'), (401, 404), "authentication required"),
    "wrong-content-digest": (lambda img: Fault(headers={"Docker-Content-Digest": digest_of(b"other")}), (400, 500),
                             "manifest verification failed"),
}


@pytest.mark.parametrize("kind", sorted(MANIFEST_FAULTS))
def test_manifest_fault_is_one_http_error(daemon, reg, kind):
    make, statuses, words = MANIFEST_FAULTS[kind]
    repo = repo_name()
    img = reg.add_image(repo, "v1", small_image(1))
    reg.fault(reg.manifest_path(repo, "v1"), make(img))
    before = images(daemon)
    status, msgs = pull(daemon, f"{reg.host}/{repo}", "v1")
    text = failure(status, msgs)
    assert status in statuses, (status, text)
    assert words in text and f"{reg.host}/{repo}" in text, text
    assert reg.count(reg.blob_path(repo, img.layers[0].digest)) == 0
    assert_unchanged(daemon, before)


def test_manifest_bytes_not_matching_the_requested_digest(daemon, reg):
    repo = repo_name()
    img, other = reg.add_image(repo, "v1", small_image(1)), small_image(1)
    reg.fault(reg.manifest_path(repo, img.digest), Fault(body=other.manifest))
    before = images(daemon)
    status, msgs = pull(daemon, f"{reg.host}/{repo}@{img.digest}")
    text = failure(status, msgs)
    assert status in (400, 500) and "manifest verification failed" in text and f"{reg.host}/{repo}" in text
    assert_unchanged(daemon, before)



def test_manifest_by_sha512_digest_is_verified(daemon, reg, cleanup):
    repo = repo_name()
    img, other = reg.add_image(repo, "v1", small_image(1)), reg.add_image(repo, None, small_image(1))
    want = "sha512:" + hashlib.sha512(img.manifest).hexdigest()
    reg.manifests[repo][want] = (other.manifest, other.media_type)  # the wrong bytes under that digest
    cleanup += [other.id, img.id]
    before = images(daemon)
    status, msgs = pull(daemon, f"{reg.host}/{repo}@{want}")
    text = failure(status, msgs)
    assert "manifest verification failed" in text and f"{reg.host}/{repo}" in text, text
    assert_unchanged(daemon, before)

def test_cli_pull_fails_with_one_line(daemon, reg):
    repo = repo_name()
    before = images(daemon)
    proc = daemon.cli("pull", f"{reg.host}/{repo}:nope", check=False)
    err = proc.stderr.decode().strip()
    assert proc.returncode != 0 and len(err.splitlines()) == 1 and f"{reg.host}/{repo}" in err, err
    assert_unchanged(daemon, before)


# -- faults once the stream has begun: an error line ----------------------------------------------------------------

def _corrupt(blob: bytes) -> bytes:
    return blob[:-1] + bytes([blob[-1] ^ 0xFF])


BLOB_FAULTS = {
    "layer-404": (lambda img: (img.layers[1].digest, Fault(status=404)), "injected status 404"),
    "layer-500": (lambda img: (img.layers[1].digest, Fault(status=500)), "injected status 500"),
    "config-404": (lambda img: (img.id, Fault(status=404)), "injected status 404"),
    "layer-dropped": (lambda img: (img.layers[1].digest, Fault(drop_after=len(img.layers[1].blob) // 2)), ""),
    "layer-corrupt": (lambda img: (img.layers[1].digest, Fault(body=_corrupt(img.layers[1].blob))),
                      "verification failed"),
    "config-corrupt": (lambda img: (img.id, Fault(body=_corrupt(img.config))), "verification failed"),
}


@pytest.mark.parametrize("kind", sorted(BLOB_FAULTS))
def test_blob_fault_is_one_error_line(daemon, reg, kind):
    make, words = BLOB_FAULTS[kind]
    repo = repo_name()
    img = reg.add_image(repo, "v1", small_image(3))
    digest, fault = make(img)
    reg.fault(reg.blob_path(repo, digest), fault)
    before = images(daemon)
    status, msgs = pull(daemon, f"{reg.host}/{repo}", "v1")
    text = failure(status, msgs)
    assert status == 200 and words in text and f"{reg.host}/{repo}" in text, text
    assert_unchanged(daemon, before)


def test_layer_not_matching_its_diff_id(daemon, reg):
    repo = repo_name()
    tars = [layer_tar({"a": os.urandom(1000)}), layer_tar({"b": os.urandom(1000)})]
    img = reg.add_image(repo, "v1", build_image(tars, diff_ids=[digest_of(tars[0]), digest_of(b"not the tar")]))
    before = images(daemon)
    status, msgs = pull(daemon, f"{reg.host}/{repo}", "v1")
    text = failure(status, msgs)
    assert img.layers[1].digest in text and f"{reg.host}/{repo}" in text, text
    assert_unchanged(daemon, before)


# -- interrupted pulls ----------------------------------------------------------------------------------------------

def test_dropped_connection_then_the_retry_fetches_only_the_missing_layer(daemon, reg, cleanup):
    repo = repo_name()
    img = reg.add_image(repo, "v1", small_image(3, fmt="oci", compression="none"))
    first, second, last = img.layers
    release = threading.Event()
    cut = len(last.blob) // 3
    reg.fault(reg.blob_path(repo, last.digest), Fault(hold=release, hold_after=cut, drop_after=cut, times=1))
    before = images(daemon)
    s = Stream(daemon, pull_path(f"{reg.host}/{repo}", "v1"))
    try:
        s.until(completed(first, second))
        release.set()  # now the registry drops the connection part-way through the last layer
        msgs = s.until(lambda seen: any("error" in m for m in seen))
    finally:
        s.close()
    assert f"{reg.host}/{repo}" in failure(200, msgs)
    assert_unchanged(daemon, before)
    cleanup.append(f"{reg.host}/{repo}:v1")
    ok(*pull(daemon, f"{reg.host}/{repo}", "v1"))
    assert [reg.count(reg.blob_path(repo, x.digest), "GET") for x in img.layers] == [1, 1, 2]
    assert img.id in {i[0] for i in images(daemon)}


def test_client_disconnect_cancels_the_pull_and_keeps_complete_layers(daemon, reg, cleanup):
    repo = repo_name()
    img = reg.add_image(repo, "v1", small_image(3, fmt="oci", compression="zstd"))
    first, second, last = img.layers
    release = threading.Event()
    reg.fault(reg.blob_path(repo, last.digest), Fault(hold=release, hold_after=len(last.blob) // 2, times=1))
    before = images(daemon)
    s = Stream(daemon, pull_path(f"{reg.host}/{repo}", "v1"))
    try:
        s.until(completed(first, second))
        wait_for(reg.held.is_set, 15, what="the last layer to be held")
    finally:
        s.close()  # the client goes away while the registry holds the last layer
    try:
        wait_for(lambda: reg.abandoned, 15, what="berthd to give up the held download after its client left")
        assert_unchanged(daemon, before)
    finally:
        release.set()
    cleanup.append(f"{reg.host}/{repo}:v1")
    ok(*pull(daemon, f"{reg.host}/{repo}", "v1"))
    assert [reg.count(reg.blob_path(repo, x.digest), "GET") for x in img.layers] == [1, 1, 2]



def test_a_pull_sharing_a_layer_survives_the_other_clients_disconnect(daemon, reg, cleanup):
    repo = repo_name()
    img = reg.add_image(repo, "v1", small_image(3, fmt="oci", compression="gzip"))
    first, second, last = img.layers
    release = threading.Event()
    reg.fault(reg.blob_path(repo, last.digest), Fault(hold=release, hold_after=len(last.blob) // 2, times=1))
    cleanup.append(f"{reg.host}/{repo}:v1")
    a = Stream(daemon, pull_path(f"{reg.host}/{repo}", "v1"))
    b = None
    try:
        a.until(completed(first, second))
        wait_for(reg.held.is_set, 15, what="the last layer to be held")
        b = Stream(daemon, pull_path(f"{reg.host}/{repo}", "v1"))
        b.until(lambda seen: any(m.get("status") == "Waiting" for m in seen))  # b shares a's download
        a.close()
        release.set()
        msgs = b.until(lambda seen: any("error" in m or m.get("status", "").startswith("Status:") for m in seen))
    finally:
        release.set()
        a.close()
        if b is not None:
            b.close()
    ok(200, msgs)
    assert img.id in {i[0] for i in images(daemon)}

def test_pull_by_digest_of_a_local_image_needs_no_registry(daemon, reg, cleanup):
    repo = repo_name()
    img = reg.add_image(repo, "v1", small_image(1))
    name = f"{reg.host}/{repo}@{img.digest}"
    cleanup.append(name)
    ok(*pull(daemon, name))
    assert img.id in {i[0] for i in images(daemon)}
    seen = reg.total()
    msgs = ok(*pull(daemon, name))
    assert reg.total() == seen and any("up to date" in m.get("status", "") for m in msgs), msgs
    reg.stop()
    ok(*pull(daemon, name))


# -- manifest lists and OCI indexes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["oci", "docker"])
def test_index_picks_the_platform(daemon, reg, cleanup, fmt):
    repo = repo_name()
    comp = "gzip"
    host = build_image([layer_tar({"file": ARCH.encode()})], comp, fmt, ARCH)
    other = build_image([layer_tar({"file": OTHER_ARCH.encode()})], comp, fmt, OTHER_ARCH)
    reg.add_index(repo, "multi", [other, host], fmt)
    name = f"{reg.host}/{repo}"
    cleanup += [name + ":multi", host.id, other.id]
    before = images(daemon)
    status, msgs = pull(daemon, name, "multi", platform="linux/s390x")
    text = failure(status, msgs)
    assert status == 404 and "no matching manifest for linux/s390x" in text and name in text, text
    assert_unchanged(daemon, before)
    ok(*pull(daemon, name, "multi"))
    assert daemon.api("GET", f"/images/{quote(name + ':multi', safe='')}/json")[1]["Id"] == host.id
    assert reg.count(reg.blob_path(repo, other.layers[0].digest)) == 0
    ok(*pull(daemon, name, "multi", platform=f"linux/{OTHER_ARCH}"))
    got = daemon.api("GET", f"/images/{quote(name + ':multi', safe='')}/json")[1]
    assert got["Id"] == other.id and got["Architecture"] == OTHER_ARCH


# -- layer compressions, run -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,comp", [("docker", "gzip"), ("oci", "gzip"), ("oci", "zstd"), ("oci", "none")])
def test_compressions_pull_and_run(daemon, reg, cleanup, fmt, comp):
    repo = repo_name()
    text = f"{fmt}-{comp}-{uuid.uuid4().hex}\n".encode()
    img = reg.add_image(repo, "v1", build_image([busybox_layer(repo), layer_tar({"file": text})], comp, fmt))
    name = f"{reg.host}/{repo}:v1"
    cleanup.append(name)
    ok(*pull(daemon, f"{reg.host}/{repo}", "v1"))
    assert [reg.count(reg.blob_path(repo, x.digest), "GET") for x in img.layers] == [1, 1]
    assert daemon.cli("run", "--rm", name, "cat", "/file", "/etc/bt-mark").stdout == text + repo.encode()


# -- authentication -------------------------------------------------------------------------------------------------

def test_basic_auth(daemon, reg, cleanup):
    repo = repo_name()
    img = reg.add_image(repo, "v1", small_image(1))
    reg.require_auth("basic", "alice", "s3cret")
    name = f"{reg.host}/{repo}"
    before = images(daemon)
    for headers in (None, auth_header("alice", "wrong")):
        status, msgs = pull(daemon, name, "v1", headers=headers)
        text = failure(status, msgs)
        assert status in (401, 404) and name in text, text
        assert any(w in text.lower() for w in ("authentication", "denied", "unauthorized")), text
        assert_unchanged(daemon, before)
    cleanup.append(name + ":v1")
    ok(*pull(daemon, name, "v1", headers=auth_header("alice", "s3cret")))
    assert img.id in {i[0] for i in images(daemon)}


def test_bearer_token_is_cached_per_scope(daemon, reg, cleanup):
    repo = repo_name()
    one, two = reg.add_image(repo, "one", small_image(1)), reg.add_image(repo, "two", small_image(1))
    reg.require_auth("bearer", "bob", "pw")
    name = f"{reg.host}/{repo}"
    cleanup += [name + ":one", name + ":two"]
    status, msgs = pull(daemon, name, "one")  # anonymous: the token server refuses
    assert status in (401, 404) and name in failure(status, msgs)
    refused = reg.token_requests
    ok(*pull(daemon, name, "one", headers=auth_header("bob", "pw")))
    ok(*pull(daemon, name, "two", headers=auth_header("bob", "pw")))
    assert reg.token_requests - refused == 1
    assert {one.id, two.id} <= {i[0] for i in images(daemon)}


def test_push_to_the_fake_registry_round_trips(daemon, reg, cleanup):
    repo = repo_name()
    name = f"{reg.host}/{repo}"
    cleanup.append(name + ":v1")
    assert daemon.api("POST", f"/images/busybox:latest/tag?repo={quote(name, safe='')}&tag=v1")[0] == 201
    status, body = daemon.api("POST", f"/images/{quote(name, safe='')}/push?tag=v1", headers=auth_header("", ""),
                              raw=True, timeout=120)
    msgs = ok(status, [json.loads(line) for line in body.splitlines() if line.strip()])
    pushed = next(m["aux"]["Digest"] for m in msgs if "aux" in m)
    assert reg.manifests[repo]["v1"] == reg.manifests[repo][pushed]
    config = json.loads(reg.manifests[repo]["v1"][0])["config"]["digest"]
    assert config == daemon.api("GET", "/images/busybox:latest/json")[1]["Id"]


def test_a_daemon_killed_mid_pull_repairs_its_store_at_start(fresh_daemon, reg):
    d = fresh_daemon
    repo = repo_name()
    img = reg.add_image(repo, "v1", small_image(3, fmt="oci", compression="gzip"))
    first, second, last = img.layers
    release = threading.Event()
    reg.fault(reg.blob_path(repo, last.digest), Fault(hold=release, hold_after=len(last.blob) // 2, times=1))
    before = images(d)
    s = Stream(d, pull_path(f"{reg.host}/{repo}", "v1"))
    try:
        s.until(completed(first, second))
        wait_for(reg.held.is_set, 15, what="the last layer to be held")
        d.kill9()  # half a blob in ingest/, two unpacked layers no image holds
    finally:
        s.close()
        release.set()
    d.start()
    assert not leftovers(d)
    assert images(d) == before
    ok(*pull(d, f"{reg.host}/{repo}", "v1"))
    status, body = d.api("GET", f"/images/{reg.host}/{repo}:v1/json")
    assert status == 200 and body["Id"] == img.id and len(body["RootFS"]["Layers"]) == 3
