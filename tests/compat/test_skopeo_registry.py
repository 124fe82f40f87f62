"""skopeo (containers/image) against ``berth registry``: push a docker-archive as Docker schema2 and as OCI,
inspect, list tags, copy back out to ``oci:`` and ``docker-archive:``, delete, push with credentials;
umoci unpacks what came out; every manifest the registry served validates against the OCI JSON schemas.

Plain HTTP on 127.0.0.1 (``--*-tls-verify=false``), ``--insecure-policy`` (no /etc/containers/policy.json).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import bcrypt
import pytest

from berth.types import manifest as mf
from tests.support.oci_schemas import oci_validator
from tests.support.registry_server import BerthRegistry

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from busybox_rootfs import make_rootfs_tar  # noqa: E402

SKOPEO, UMOCI = "/usr/bin/skopeo", "/usr/bin/umoci"
NO_TLS = ("--tls-verify=false",)

pytestmark = pytest.mark.skipif(not os.path.exists(SKOPEO), reason="skopeo is not installed")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def skopeo(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, timeout=120)
    if ok:
        assert p.returncode == 0, f"skopeo {' '.join(args)} exited {p.returncode}: {p.stderr.decode()}"
    return p


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def work():
    d = tempfile.mkdtemp(prefix="bt-skopeo-reg-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def archive(work) -> dict:
    """A docker-archive made by hand: a busybox rootfs layer, its config and manifest.json."""
    layer = make_rootfs_tar(os.path.join(work, "rootfs.tar"))
    diff_id = file_sha(layer)
    config = json.dumps({"architecture": mf.ARCH, "os": "linux", "created": "2024-01-01T00:00:00Z",
                         "config": {"Cmd": ["sh"], "Env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                         "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "busybox_rootfs.py"}]}
                        ).encode()
    path = os.path.join(work, "image.tar")
    manifest = [{"Config": f"{sha(config)[7:]}.json", "RepoTags": ["compat/busybox:latest"],
                 "Layers": [f"{diff_id[7:]}/layer.tar"]}]
    with tarfile.open(path, "w") as tar:
        for name, data in ((manifest[0]["Config"], config), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        tar.add(layer, manifest[0]["Layers"][0])
    return {"path": path, "config": config, "config_digest": sha(config), "diff_id": diff_id}


@pytest.fixture(scope="module")
def registry(work):
    with BerthRegistry(os.path.join(work, "registry")) as r:
        yield r


@pytest.fixture(scope="module")
def validator():
    """Validates a manifest or index (by its mediaType) against the image-spec's schemas, or skips."""
    return oci_validator()


def served_manifests(r: BerthRegistry, headers: dict | None = None) -> list[bytes]:
    """Every manifest of every tag of every repository, as the registry serves it."""
    out = []
    status, _, body = r.request("GET", "/v2/_catalog", headers=headers)
    assert status == 200
    for name in json.loads(body)["repositories"]:
        status, _, body = r.request("GET", f"/v2/{name}/tags/list", headers=headers)
        for tag in json.loads(body)["tags"] if status == 200 else []:
            status, h, data = r.request("GET", f"/v2/{name}/manifests/{tag}", headers={**(headers or {}),
                                                                                      "Accept": mf.ACCEPT})
            assert status == 200 and h["docker-content-digest"] == sha(data)
            out.append(data)
    return out


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("fmt, media_type", [("v2s2", mf.DOCKER_MANIFEST), ("oci", mf.OCI_MANIFEST)])
def test_push_inspect_copy_out_delete(registry, archive, work, validator, fmt, media_type):
    repo = f"{registry.addr}/compat/busybox-{fmt}"
    skopeo("copy", "--dest-tls-verify=false", "--format", fmt, f"docker-archive:{archive['path']}", f"docker://{repo}:v1")

    raw = skopeo("inspect", "--raw", *NO_TLS, f"docker://{repo}:v1").stdout
    man = json.loads(raw)
    assert man["mediaType"] == media_type
    if fmt == "v2s2":  # kept as it was; --format oci converts the config too
        assert man["config"]["digest"] == archive["config_digest"]
    status, h, body = registry.request("GET", f"/v2/compat/busybox-{fmt}/manifests/v1", headers={"Accept": mf.ACCEPT})
    assert (status, body, h["content-type"]) == (200, raw, media_type)
    digest = h["docker-content-digest"]
    assert digest == sha(raw)
    info = json.loads(skopeo("inspect", *NO_TLS, f"docker://{repo}:v1").stdout)
    assert info["Digest"] == digest and info["Layers"] == [d["digest"] for d in man["layers"]]
    assert info["Architecture"] == mf.ARCH and info["Os"] == "linux"
    config = json.loads(skopeo("inspect", "--config", "--raw", *NO_TLS, f"docker://{repo}:v1").stdout)
    assert config["rootfs"]["diff_ids"] == [archive["diff_id"]]

    # a second tag (registry to registry) and the tag list
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{repo}:v1", f"docker://{repo}:v2")
    assert json.loads(skopeo("list-tags", *NO_TLS, f"docker://{repo}").stdout)["Tags"] == ["v1", "v2"]
    # and to another repository (skopeo mounts the blobs across)
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", f"docker://{repo}:v1",
           f"docker://{registry.addr}/compat/mounted-{fmt}:v1")
    for d in man["layers"]:
        assert registry.request("HEAD", f"/v2/compat/mounted-{fmt}/blobs/{d['digest']}")[0] == 200

    # out to an OCI layout: the blobs are the registry's, byte for byte
    layout = os.path.join(work, f"oci-{fmt}")
    skopeo("copy", "--src-tls-verify=false", f"docker://{repo}:v1", f"oci:{layout}:v1")
    with open(os.path.join(layout, "index.json")) as f:
        out_digest = json.load(f)["manifests"][0]["digest"]
    # v2s2 is converted to OCI on the way (a new manifest and config); the layers are kept as they are
    if fmt == "oci":
        assert out_digest == digest  # no conversion: the very manifest berth served
    for d in ([man["config"]] if fmt == "oci" else []) + man["layers"]:
        path = os.path.join(layout, "blobs", "sha256", d["digest"][7:])
        assert file_sha(path) == d["digest"]
        assert registry.request("GET", f"/v2/compat/busybox-{fmt}/blobs/{d['digest']}")[2] == open(path, "rb").read()

    # out to a docker-archive: the same config and the same uncompressed layer as went in
    out = os.path.join(work, f"out-{fmt}.tar")
    skopeo("copy", "--src-tls-verify=false", f"docker://{repo}:v1", f"docker-archive:{out}:compat/out:v1")
    with tarfile.open(out) as tar:
        saved = json.load(tar.extractfile("manifest.json"))[0]
        if fmt == "v2s2":
            assert sha(tar.extractfile(saved["Config"]).read()) == archive["config_digest"]
        assert sha(tar.extractfile(saved["Layers"][0]).read()) == archive["diff_id"]

    # umoci unpacks the image skopeo took out of berth's registry
    if os.path.exists(UMOCI):
        bundle = os.path.join(work, f"bundle-{fmt}")
        flags = [] if os.geteuid() == 0 else ["--rootless"]
        p = subprocess.run([UMOCI, "unpack", *flags, "--image", f"{layout}:v1", bundle],
                           capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr.decode()
        assert os.path.isfile(os.path.join(bundle, "rootfs", "bin", "busybox"))
        assert os.path.islink(os.path.join(bundle, "rootfs", "bin", "sh"))

    for data in served_manifests(registry):
        validator(data)

    # delete: skopeo resolves the tag and deletes the manifest by digest, so both tags go
    skopeo("delete", *NO_TLS, f"docker://{repo}:v2")
    for tag in ("v1", "v2"):
        assert registry.request("GET", f"/v2/compat/busybox-{fmt}/manifests/{tag}")[0] == 404
    assert skopeo("inspect", *NO_TLS, f"docker://{repo}:v1", ok=False).returncode != 0
    assert registry.request("GET", f"/v2/compat/busybox-{fmt}/manifests/{digest}")[0] == 404


def test_push_with_credentials(archive, work, validator):
    htpasswd = os.path.join(work, "htpasswd")
    with open(htpasswd, "w") as f:
        f.write("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=10)).decode().replace("$2b$", "$2y$") + "\n")
    with BerthRegistry(os.path.join(work, "registry-auth"), htpasswd=htpasswd) as r:
        repo = f"docker://{r.addr}/private/busybox:v1"
        src = f"docker-archive:{archive['path']}"
        p = skopeo("copy", "--dest-tls-verify=false", src, repo, ok=False)
        assert p.returncode != 0
        p = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:wrong", src, repo, ok=False)
        assert p.returncode != 0
        skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret", "--format", "oci", src, repo)
        info = json.loads(skopeo("inspect", *NO_TLS, "--creds", "alice:s3cret", repo).stdout)
        tags = json.loads(skopeo("list-tags", *NO_TLS, "--creds", "alice:s3cret", repo.rsplit(":", 1)[0]).stdout)
        assert tags["Tags"] == ["v1"]
        import base64
        auth = {"Authorization": "Basic " + base64.b64encode(b"alice:s3cret").decode()}
        served = served_manifests(r, auth)
        assert [sha(m) for m in served] == [info["Digest"]]
        for data in served:
            validator(data)


def test_schema_validator_rejects_what_the_spec_forbids(validator):
    import jsonschema
    good = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
            "config": {"mediaType": mf.OCI_CONFIG, "digest": sha(b"{}"), "size": 2},
            "layers": [{"mediaType": mf.OCI_LAYER, "digest": sha(b"x"), "size": 1}]}
    validator(json.dumps(good).encode())
    for bad in ({**good, "layers": [{**good["layers"][0], "size": "1"}]}, {**good, "schemaVersion": 1},
                {**good, "config": {"mediaType": "not a type", "digest": sha(b"{}"), "size": 2}}):
        with pytest.raises(jsonschema.ValidationError):
            validator(json.dumps(bad).encode())
    with pytest.raises(jsonschema.ValidationError):
        validator(json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [{"digest": 1}]}).encode())
