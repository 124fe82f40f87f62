"""berth's registry server over HTTP: the OCI distribution spec endpoints and their errors.

Every test talks to a real ``berth registry serve`` subprocess on 127.0.0.1 (tests/support/registry_server.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile

import pytest

from berth.types import manifest as mf
from tests.support.registry_server import BerthRegistry


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def errors(body: bytes) -> list[str]:
    return [e["code"] for e in json.loads(body)["errors"]]


@pytest.fixture(scope="module")
def reg():
    root = tempfile.mkdtemp(prefix="bt-reg-")
    with BerthRegistry(root) as r:
        yield r
    shutil.rmtree(root, ignore_errors=True)


def push_blob(r: BerthRegistry, name: str, data: bytes) -> str:
    d = sha(data)
    status, h, body = r.request("POST", f"/v2/{name}/blobs/uploads/?digest={d}", data)
    assert status == 201, body
    assert h["docker-content-digest"] == d and h["location"] == f"/v2/{name}/blobs/{d}"
    return d


def image(r: BerthRegistry, name: str, seed: str, media_type: str = mf.OCI_MANIFEST, **extra) -> tuple[bytes, str]:
    """Push a config and a layer; return the manifest bytes naming them (not pushed) and its digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = f"layer of {seed}".encode() * 10
    docker = media_type == mf.DOCKER_MANIFEST
    doc = {"schemaVersion": 2, "mediaType": media_type,
           "config": {"mediaType": mf.DOCKER_CONFIG if docker else mf.OCI_CONFIG, "digest": push_blob(r, name, config),
                      "size": len(config)},
           "layers": [{"mediaType": mf.DOCKER_LAYER if docker else mf.OCI_LAYER_GZIP,
                       "digest": push_blob(r, name, layer), "size": len(layer)}], **extra}
    data = json.dumps(doc).encode()
    return data, sha(data)


def put_manifest(r, name, ref, data, media_type=mf.OCI_MANIFEST, expect=201):
    status, h, body = r.request("PUT", f"/v2/{name}/manifests/{ref}", data, {"Content-Type": media_type})
    assert status == expect, body
    return h, body


# ---------------------------------------------------------------- base, blobs

def test_base_endpoint(reg):
    status, h, body = reg.request("GET", "/v2/")
    assert (status, json.loads(body)) == (200, {})
    assert h["docker-distribution-api-version"] == "registry/2.0"


def test_monolithic_upload_head_get_and_ranges(reg):
    data = bytes(range(256)) * 4
    d = push_blob(reg, "mono/repo", data)
    status, h, body = reg.request("HEAD", f"/v2/mono/repo/blobs/{d}")
    assert (status, body) == (200, b"")
    assert h["content-length"] == str(len(data)) and h["docker-content-digest"] == d
    assert h["content-type"] == "application/octet-stream"
    status, h, body = reg.request("GET", f"/v2/mono/repo/blobs/{d}")
    assert (status, body) == (200, data)
    status, h, body = reg.request("GET", f"/v2/mono/repo/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert (status, body) == (206, data[10:20])
    assert h["content-range"] == f"bytes 10-19/{len(data)}"
    status, h, _ = reg.request("GET", f"/v2/mono/repo/blobs/{d}", headers={"Range": "bytes=5000-6000"})
    assert status == 416
    # unknown blob, unknown repo, and a digest that is not one
    status, _, body = reg.request("GET", f"/v2/mono/repo/blobs/{sha(b'nope')}")
    assert (status, errors(body)) == (404, ["BLOB_UNKNOWN"])
    assert reg.request("HEAD", f"/v2/other/blobs/{d}")[0] == 404  # not linked into "other"
    status, _, body = reg.request("GET", "/v2/mono/repo/blobs/sha256:xyz")
    assert (status, errors(body)) == (400, ["DIGEST_INVALID"])


def test_digest_mismatch_stores_nothing(reg):
    wrong = sha(b"something else")
    status, _, body = reg.request("POST", f"/v2/bad/digest/blobs/uploads/?digest={wrong}", b"the real bytes")
    assert (status, errors(body)) == (400, ["DIGEST_INVALID"])
    assert not os.path.exists(os.path.join(reg.root, "blobs", "sha256", sha(b"the real bytes")[7:]))
    assert not os.path.exists(os.path.join(reg.root, "blobs", "sha256", wrong[7:]))
    assert reg.request("HEAD", f"/v2/bad/digest/blobs/{sha(b'the real bytes')}")[0] == 404
    # the same through a chunked session, with the session gone afterwards
    status, h, _ = reg.request("POST", "/v2/bad/digest/blobs/uploads/")
    loc = h["location"]
    assert reg.request("PATCH", loc, b"abc")[0] == 202
    status, _, body = reg.request("PUT", f"{loc}?digest={wrong}")
    assert (status, errors(body)) == (400, ["DIGEST_INVALID"])
    assert reg.request("GET", loc)[0] == 404
    assert not os.path.exists(os.path.join(reg.root, "blobs", "sha256", sha(b"abc")[7:]))


def test_chunked_upload_status_and_out_of_order(reg):
    status, h, _ = reg.request("POST", "/v2/chunked/blobs/uploads/")
    assert status == 202 and h["range"] == "0-0"
    loc, uid = h["location"], h["docker-upload-uuid"]
    assert loc == f"/v2/chunked/blobs/uploads/{uid}"
    status, h, _ = reg.request("PATCH", loc, b"0123456789", {"Content-Range": "0-9",
                                                             "Content-Type": "application/octet-stream"})
    assert (status, h["range"]) == (202, "0-9")
    status, h, _ = reg.request("PATCH", loc, b"abcde")  # streamed, no Content-Range
    assert (status, h["range"]) == (202, "0-14")
    status, h, body = reg.request("PATCH", loc, b"zzz", {"Content-Range": "20-22"})  # a gap
    assert status == 416 and h["range"] == "0-14"
    status, h, _ = reg.request("GET", loc)
    assert (status, h["range"], h["docker-upload-uuid"]) == (204, "0-14", uid)
    whole = b"0123456789abcdeFINAL"
    status, h, _ = reg.request("PUT", f"{loc}?digest={sha(whole)}", b"FINAL", {"Content-Range": "15-19"})
    assert status == 201 and h["location"] == f"/v2/chunked/blobs/{sha(whole)}"
    assert reg.request("GET", f"/v2/chunked/blobs/{sha(whole)}")[2] == whole
    assert reg.request("GET", loc)[0] == 404  # the session is over
    status, _, body = reg.request("PATCH", "/v2/chunked/blobs/uploads/not-a-uuid", b"x")
    assert (status, errors(body)) == (404, ["BLOB_UPLOAD_UNKNOWN"])


def test_put_without_digest_and_upload_of_another_repo(reg):
    loc = reg.request("POST", "/v2/one/blobs/uploads/")[1]["location"]
    status, _, body = reg.request("PUT", loc, b"x")
    assert (status, errors(body)) == (400, ["DIGEST_INVALID"])
    assert reg.request("GET", loc.replace("/v2/one/", "/v2/two/"))[0] == 404


def test_cancel_upload(reg):
    status, h, _ = reg.request("POST", "/v2/cancel/blobs/uploads/")
    loc, uid = h["location"], h["docker-upload-uuid"]
    reg.request("PATCH", loc, b"partial")
    assert reg.request("DELETE", loc)[0] == 204
    status, _, body = reg.request("GET", loc)
    assert (status, errors(body)) == (404, ["BLOB_UPLOAD_UNKNOWN"])
    assert not os.path.exists(os.path.join(reg.root, "uploads", uid))


def test_cross_repository_mount(reg):
    d = push_blob(reg, "mount/src", b"shared layer")
    assert reg.request("HEAD", f"/v2/mount/dst/blobs/{d}")[0] == 404
    status, h, _ = reg.request("POST", f"/v2/mount/dst/blobs/uploads/?mount={d}&from=mount/src")
    assert status == 201 and h["docker-content-digest"] == d and h["location"] == f"/v2/mount/dst/blobs/{d}"
    assert reg.request("GET", f"/v2/mount/dst/blobs/{d}")[2] == b"shared layer"
    # unknown blob or source: an ordinary upload session instead
    status, h, _ = reg.request("POST", f"/v2/mount/dst/blobs/uploads/?mount={sha(b'no')}&from=mount/src")
    assert status == 202 and h["location"].startswith("/v2/mount/dst/blobs/uploads/")
    status, _, _ = reg.request("POST", f"/v2/mount/dst2/blobs/uploads/?mount={d}&from=mount/elsewhere")
    assert status == 202


def test_blob_delete(reg):
    d = push_blob(reg, "del/blob", b"to be deleted")
    status, _, _ = reg.request("DELETE", f"/v2/del/blob/blobs/{d}")
    assert status == 202
    assert reg.request("HEAD", f"/v2/del/blob/blobs/{d}")[0] == 404
    status, _, body = reg.request("DELETE", f"/v2/del/blob/blobs/{d}")
    assert (status, errors(body)) == (404, ["BLOB_UNKNOWN"])


# ---------------------------------------------------------------- manifests

@pytest.mark.parametrize("media_type", [mf.OCI_MANIFEST, mf.DOCKER_MANIFEST])
def test_manifest_by_tag_and_digest(reg, media_type):
    name = "man/oci" if media_type == mf.OCI_MANIFEST else "man/docker"
    data, d = image(reg, name, "m", media_type)
    h, _ = put_manifest(reg, name, "v1", data, media_type)
    assert h["docker-content-digest"] == d and h["location"] == f"/v2/{name}/manifests/{d}"
    for ref in ("v1", d):
        status, h, body = reg.request("GET", f"/v2/{name}/manifests/{ref}", headers={"Accept": mf.ACCEPT})
        assert (status, body) == (200, data)
        assert h["content-type"] == media_type and h["docker-content-digest"] == d
        status, h, body = reg.request("HEAD", f"/v2/{name}/manifests/{ref}")
        assert (status, body, h["content-length"]) == (200, b"", str(len(data)))
    status, _, body = reg.request("GET", f"/v2/{name}/manifests/nosuchtag")
    assert (status, errors(body)) == (404, ["MANIFEST_UNKNOWN"])
    # the bytes are kept exactly: whitespace changes the digest, and the new digest is served too
    pretty = json.dumps(json.loads(data), indent=2).encode()
    h, _ = put_manifest(reg, name, sha(pretty), pretty, media_type)
    assert reg.request("GET", f"/v2/{name}/manifests/{sha(pretty)}")[2] == pretty


def test_manifest_errors(reg):
    data, d = image(reg, "man/err", "e")
    doc = json.loads(data)
    doc["layers"].append({"mediaType": mf.OCI_LAYER_GZIP, "digest": sha(b"never pushed"), "size": 12})
    _, body = put_manifest(reg, "man/err", "missing", json.dumps(doc).encode(), expect=400)
    assert errors(body) == ["MANIFEST_BLOB_UNKNOWN"]
    _, body = put_manifest(reg, "man/err", "junk", b"{not json", expect=400)
    assert errors(body) == ["MANIFEST_INVALID"]
    _, body = put_manifest(reg, "man/err", "v1", json.dumps({"schemaVersion": 1}).encode(), expect=400)
    assert errors(body) == ["MANIFEST_INVALID"]
    _, body = put_manifest(reg, "man/err", sha(b"other"), data, expect=400)
    assert errors(body) == ["DIGEST_INVALID"]
    # the blobs were pushed to man/err only: another repository must push or mount them first
    _, body = put_manifest(reg, "man/other", "v1", data, expect=400)
    assert errors(body) == ["MANIFEST_BLOB_UNKNOWN"]
    # tags: up to 128 characters from the spec's set
    put_manifest(reg, "man/err", "t" * 128, data)
    _, body = put_manifest(reg, "man/err", "t" * 129, data, expect=400)
    assert errors(body) == ["TAG_INVALID"]
    _, body = put_manifest(reg, "man/err", ".dot", data, expect=400)
    assert errors(body) == ["TAG_INVALID"]
    assert "t" * 129 not in reg.request("GET", "/v2/man/err/tags/list")[2].decode()


def test_manifest_too_large_is_refused_and_not_stored(reg):
    data, _ = image(reg, "man/big", "big", annotations={"pad": "x" * (4 << 20)})
    status, _, body = reg.request("PUT", "/v2/man/big/manifests/huge", data, {"Content-Type": mf.OCI_MANIFEST})
    assert status == 413 and errors(body) == ["SIZE_INVALID"]
    assert reg.request("GET", "/v2/man/big/manifests/huge")[0] == 404
    assert not os.path.exists(os.path.join(reg.root, "blobs", "sha256", sha(data)[7:]))


def test_index_needs_its_manifests(reg):
    child, cd = image(reg, "man/index", "child")
    index = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [
        {"mediaType": mf.OCI_MANIFEST, "digest": cd, "size": len(child),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    _, body = put_manifest(reg, "man/index", "multi", index, mf.OCI_INDEX, expect=400)
    assert errors(body) == ["MANIFEST_BLOB_UNKNOWN"]
    put_manifest(reg, "man/index", cd, child)  # by digest, untagged
    put_manifest(reg, "man/index", "multi", index, mf.OCI_INDEX)
    status, h, body = reg.request("GET", "/v2/man/index/manifests/multi")
    assert (status, h["content-type"], body) == (200, mf.OCI_INDEX, index)
    # and a Docker manifest list
    dlist = index.replace(mf.OCI_INDEX.encode(), mf.DOCKER_LIST.encode())
    put_manifest(reg, "man/index", "dlist", dlist, mf.DOCKER_LIST)
    assert reg.request("GET", "/v2/man/index/manifests/dlist")[1]["content-type"] == mf.DOCKER_LIST


def test_invalid_repository_names(reg):
    for name in ("UPPER", "a//b", "-lead", "a_-b", "x" * 256):
        status, _, body = reg.request("GET", f"/v2/{name}/tags/list")
        assert (status, errors(body)) == (400, ["NAME_INVALID"]), name
    status, _, body = reg.request("POST", "/v2/Bad/blobs/uploads/")
    assert (status, errors(body)) == (400, ["NAME_INVALID"])
    assert reg.request("GET", "/v2/a__b.c-d/x/tags/list")[0] == 404  # valid, just unknown


def test_unsupported_method(reg):
    status, h, body = reg.request("POST", "/v2/some/repo/tags/list")
    assert (status, errors(body)) == (405, ["UNSUPPORTED"])


def test_manifest_and_tag_delete(reg):
    data, d = image(reg, "del/man", "dm")
    put_manifest(reg, "del/man", "a", data)
    put_manifest(reg, "del/man", "b", data)
    assert reg.request("DELETE", "/v2/del/man/manifests/a")[0] == 202  # a tag
    assert reg.request("GET", "/v2/del/man/manifests/a")[0] == 404
    assert reg.request("GET", "/v2/del/man/manifests/b")[0] == 200
    assert reg.request("DELETE", f"/v2/del/man/manifests/{d}")[0] == 202  # the manifest and its tags
    for ref in ("b", d):
        status, _, body = reg.request("GET", f"/v2/del/man/manifests/{ref}")
        assert (status, errors(body)) == (404, ["MANIFEST_UNKNOWN"])
    assert json.loads(reg.request("GET", "/v2/del/man/tags/list")[2])["tags"] == []
    assert reg.request("DELETE", f"/v2/del/man/manifests/{d}")[0] == 404


# ---------------------------------------------------------------- listings, referrers, page

def test_tags_pagination(reg):
    data, _ = image(reg, "page/tags", "p")
    tags = ["b", "a", "c", "d", "e"]
    for t in tags:
        put_manifest(reg, "page/tags", t, data)
    status, h, body = reg.request("GET", "/v2/page/tags/tags/list")
    assert json.loads(body) == {"name": "page/tags", "tags": sorted(tags)} and "link" not in h
    status, h, body = reg.request("GET", "/v2/page/tags/tags/list?n=2")
    assert json.loads(body)["tags"] == ["a", "b"]
    assert h["link"] == '</v2/page/tags/tags/list?n=2&last=b>; rel="next"'
    got, path = [], "/v2/page/tags/tags/list?n=2"
    while path:
        _, h, body = reg.request("GET", path)
        got += json.loads(body)["tags"]
        path = h.get("link", "").split(">")[0][1:]
    assert got == sorted(tags)
    assert json.loads(reg.request("GET", "/v2/page/tags/tags/list?last=c")[2])["tags"] == ["d", "e"]
    status, _, body = reg.request("GET", "/v2/page/none/tags/list")
    assert (status, errors(body)) == (404, ["NAME_UNKNOWN"])


def test_catalog_pagination(reg):
    for n in ("cat/z", "cat/a", "cat/m"):
        push_blob(reg, n, b"catalog entry")
    status, _, body = reg.request("GET", "/v2/_catalog")
    repos = json.loads(body)["repositories"]
    assert repos == sorted(repos) and {"cat/a", "cat/m", "cat/z"} <= set(repos)
    status, h, body = reg.request("GET", "/v2/_catalog?n=1&last=cat/a")
    assert json.loads(body)["repositories"] == ["cat/m"]
    assert h["link"] == '</v2/_catalog?n=1&last=cat%2Fm>; rel="next"'


def test_referrers_with_filter(reg):
    subject, sd = image(reg, "ref/repo", "subject")
    put_manifest(reg, "ref/repo", "v1", subject)
    empty = push_blob(reg, "ref/repo", b"{}")
    refs = {}
    for art in ("application/vnd.example.sbom", "application/vnd.example.sig"):
        doc = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST, "artifactType": art,
               "config": {"mediaType": mf.OCI_EMPTY, "digest": empty, "size": 2}, "layers": [],
               "subject": {"mediaType": mf.OCI_MANIFEST, "digest": sd, "size": len(subject)},
               "annotations": {"kind": art}}
        data = json.dumps(doc).encode()
        h, _ = put_manifest(reg, "ref/repo", sha(data), data)
        assert h["oci-subject"] == sd
        refs[art] = sha(data)
    status, h, body = reg.request("GET", f"/v2/ref/repo/referrers/{sd}")
    index = json.loads(body)
    assert status == 200 and h["content-type"] == mf.OCI_INDEX and index["mediaType"] == mf.OCI_INDEX
    assert {m["digest"]: m["artifactType"] for m in index["manifests"]} == {v: k for k, v in refs.items()}
    assert all(m["annotations"]["kind"] == m["artifactType"] for m in index["manifests"])
    status, h, body = reg.request("GET", f"/v2/ref/repo/referrers/{sd}?artifactType=application/vnd.example.sig")
    assert h["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in json.loads(body)["manifests"]] == [refs["application/vnd.example.sig"]]
    # nothing refers to the layer: an empty index, not 404
    status, _, body = reg.request("GET", f"/v2/ref/repo/referrers/{sha(b'x')}")
    assert (status, json.loads(body)["manifests"]) == (200, [])
    # deleting a referrer removes it from the list
    reg.request("DELETE", f"/v2/ref/repo/manifests/{refs['application/vnd.example.sig']}")
    body = reg.request("GET", f"/v2/ref/repo/referrers/{sd}")[2]
    assert [m["digest"] for m in json.loads(body)["manifests"]] == [refs["application/vnd.example.sbom"]]


def test_web_page_lists_repositories_and_tags(reg):
    data, _ = image(reg, "web/app", "page")
    put_manifest(reg, "web/app", "v1.0", data)
    status, h, body = reg.request("GET", "/")
    page = body.decode()
    assert status == 200 and h["content-type"].startswith("text/html")
    assert "web/app" in page and "v1.0" in page
    assert f"berth pull {reg.addr}/web/app:v1.0" in page
    size = sum(d["size"] for d in [json.loads(data)["config"], *json.loads(data)["layers"]])
    assert f"{size} B" in page
    status, _, body = reg.request("GET", "/", headers={"Host": "<script>:5000"})
    assert "<script>" not in body.decode() and "&lt;script&gt;" in body.decode()
