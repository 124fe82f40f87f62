"""Image archives: write_archive / read_archive, docker-archive and OCI layouts."""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

from berth.errors import InvalidArgument
from berth.image.archive import LoadedImage, SavedImage, read_archive, write_archive

ROOT = Path(__file__).resolve().parents[2]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_sha(path: str) -> str:
    return sha(Path(path).read_bytes())


def tar_of(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            tar.addfile(ti, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tar.addfile(ti)
    return buf.getvalue()


def config_for(layers: list[bytes], tag: str = "") -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["TAG=" + tag]},
        "rootfs": {"type": "layers", "diff_ids": [sha(layer) for layer in layers]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(len(layers))],
    }, indent=1).encode()


@pytest.fixture(scope="module")
def busybox_tar(tmp_path_factory) -> str:
    spec = importlib.util.spec_from_file_location("busybox_rootfs", ROOT / "scripts" / "busybox_rootfs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_rootfs_tar(str(tmp_path_factory.mktemp("bb") / "rootfs.tar"))


@pytest.fixture
def images(tmp_path, busybox_tar) -> list[SavedImage]:
    base = Path(busybox_tar).read_bytes()
    extra = tar_of({"etc/motd": b"hello\n"})
    extra_path = tmp_path / "extra.tar"
    extra_path.write_bytes(extra)
    return [
        SavedImage(config_for([base], "a"), [busybox_tar], ["busybox:latest", "busybox:1"]),
        SavedImage(config_for([base, extra], "b"), [busybox_tar, str(extra_path)], ["127.0.0.1:5000/x:1", "me/app:v2"]),
        SavedImage(config_for([extra], "c"), [str(extra_path)], []),
    ]


class WriteOnly:
    def __init__(self) -> None:
        self.buf = io.BytesIO()

    def write(self, data) -> int:
        return self.buf.write(data)


class OneWay:
    """Non-seekable source with short reads, like an HTTP body."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, n=-1):
        return self._f.read(min(n, 777) if n and n > 0 else n)


def save(images) -> bytes:
    out = WriteOnly()
    write_archive(out, images)
    return out.buf.getvalue()


def assert_same(loaded: list[LoadedImage], saved: list[SavedImage]) -> None:
    assert len(loaded) == len(saved)
    by_config = {img.config: img for img in loaded}
    for s in saved:
        got = by_config[s.config]
        assert [file_sha(p) for p in got.layers] == [file_sha(p) for p in s.layers]
        assert got.repo_tags == s.repo_tags


def test_round_trip(tmp_path, images):
    data = save(images)
    loaded = read_archive(OneWay(data), str(tmp_path / "staging"))
    assert_same(loaded, images)
    for img in loaded:
        assert all(p.startswith(str(tmp_path / "staging")) for p in img.layers)
    # only the layer files are left in staging
    assert len(os.listdir(tmp_path / "staging")) == 2


def test_written_layout(images):
    data = save(images)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        files = {m.name: tar.extractfile(m).read() for m in members if m.isfile()}
    names = [m.name for m in members]
    assert names[:2] == ["blobs", "blobs/sha256"]
    assert names[-4:] == ["index.json", "manifest.json", "oci-layout", "repositories"]
    blob_names = names[2:-4]
    assert blob_names == sorted(blob_names) and len(set(blob_names)) == len(blob_names)
    assert len(blob_names) == 3 + 3 + 2  # configs, manifests, shared layers once
    for m in members:
        assert (m.mtime, m.uid, m.gid) == (0, 0, 0)
        assert m.mode == (0o755 if m.isdir() else 0o644)
    for name in blob_names:
        assert sha(files[name]) == "sha256:" + name.rsplit("/", 1)[1]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    manifest = json.loads(files["manifest.json"])
    assert manifest[0]["RepoTags"] == ["busybox:latest", "busybox:1"]
    assert manifest[2]["RepoTags"] is None
    assert manifest[1]["Layers"] == ["blobs/sha256/" + d.split(":")[1]
                                     for d in json.loads(images[1].config)["rootfs"]["diff_ids"]]
    index = json.loads(files["index.json"])
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    ann = [d.get("annotations") for d in index["manifests"]]
    assert ann == [
        {"io.containerd.image.name": "docker.io/library/busybox:latest", "org.opencontainers.image.ref.name": "latest"},
        {"io.containerd.image.name": "docker.io/library/busybox:1", "org.opencontainers.image.ref.name": "1"},
        {"io.containerd.image.name": "127.0.0.1:5000/x:1", "org.opencontainers.image.ref.name": "1"},
        {"io.containerd.image.name": "docker.io/me/app:v2", "org.opencontainers.image.ref.name": "v2"},
        None,
    ]
    m = json.loads(files["blobs/sha256/" + index["manifests"][2]["digest"].split(":")[1]])
    assert m["schemaVersion"] == 2 and m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert m["config"] == {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": sha(images[1].config), "size": len(images[1].config)}
    assert [layer["mediaType"] for layer in m["layers"]] == ["application/vnd.oci.image.layer.v1.tar"] * 2
    assert [layer["size"] for layer in m["layers"]] == [os.path.getsize(p) for p in images[1].layers]
    top = json.loads(images[1].config)["rootfs"]["diff_ids"][-1].split(":")[1]
    repos = json.loads(files["repositories"])
    assert repos["127.0.0.1:5000/x"] == {"1": top} and set(repos["busybox"]) == {"latest", "1"}


def test_gzip_compressed_archive_and_oci_only(tmp_path, images):
    data = save(images)
    loaded = read_archive(io.BytesIO(gzip.compress(data)), str(tmp_path / "s1"))
    assert_same(loaded, images)
    # drop manifest.json: the OCI index alone must give the same images and tags
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    del files["manifest.json"], files["repositories"]
    loaded = read_archive(io.BytesIO(tar_of(files)), str(tmp_path / "s2"))
    assert_same(loaded, images)


def _classic_archive(busybox_tar, compress=None) -> tuple[bytes, list[SavedImage]]:
    base = Path(busybox_tar).read_bytes()
    extra = tar_of({"etc/motd": b"hi\n"})
    cfg1, cfg2 = config_for([base], "1"), config_for([base, extra], "2")
    h1, h2, h3 = "1" * 64, "2" * 64, "3" * 64
    layer_base = compress(base) if compress else base
    files = {
        f"{h1}/layer.tar": layer_base, f"{h1}/VERSION": b"1.0", f"{h1}/json": b"{}",
        f"{h3}/layer.tar": extra, f"{h3}/VERSION": b"1.0", f"{h3}/json": b"{}",
        f"{sha(cfg1)[7:]}.json": cfg1, f"{sha(cfg2)[7:]}.json": cfg2,
        "repositories": json.dumps({"busybox": {"latest": h1}}).encode(),
        "manifest.json": json.dumps([
            {"Config": f"{sha(cfg1)[7:]}.json", "RepoTags": ["busybox:latest"], "Layers": [f"{h1}/layer.tar"]},
            {"Config": f"{sha(cfg2)[7:]}.json", "RepoTags": None, "Layers": [f"./{h2}/layer.tar", f"{h3}/layer.tar"]},
        ]).encode(),
    }
    extra_path = Path(busybox_tar).with_name("classic-extra.tar")
    extra_path.write_bytes(extra)
    archive = tar_of(files, symlinks={f"{h2}/layer.tar": f"../{h1}/layer.tar"})
    return archive, [SavedImage(cfg1, [busybox_tar], ["busybox:latest"]),
                     SavedImage(cfg2, [busybox_tar, str(extra_path)], [])]


@pytest.mark.parametrize("compress", [None, gzip.compress, zstandard.ZstdCompressor().compress])
def test_classic_docker_archive(tmp_path, busybox_tar, compress):
    archive, expected = _classic_archive(busybox_tar, compress)
    loaded = read_archive(OneWay(archive), str(tmp_path / "staging"))
    assert_same(loaded, expected)
    assert loaded[0].layers[0] == loaded[1].layers[0]  # symlinked layer resolves to the same file


def _oci_archive(busybox_tar, mutate=None) -> tuple[bytes, SavedImage]:
    base = Path(busybox_tar).read_bytes()
    gz = gzip.compress(base)
    cfg = config_for([base], "oci")
    blobs = {sha(gz): gz, sha(cfg): cfg}

    def add(doc) -> dict:
        data = json.dumps(doc).encode()
        blobs[sha(data)] = data
        return {"digest": sha(data), "size": len(data)}

    manifest = add({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg), "size": len(cfg)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(gz), "size": len(gz)}]})
    other = add({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "config": {"digest": "sha256:" + "0" * 64, "size": 1}, "layers": []})
    mt = "application/vnd.oci.image.manifest.v1+json"
    nested = add({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": mt, **other, "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": mt, **manifest, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": mt, **other, "platform": {"os": "unknown", "architecture": "unknown"}},
    ]})
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", **nested,
         "annotations": {"org.opencontainers.image.ref.name": "example.com/busy:1"}},
        {"mediaType": "application/vnd.oci.image.index.v1+json", **nested,
         "annotations": {"io.containerd.image.name": "docker.io/library/busybox:oci",
                         "org.opencontainers.image.ref.name": "oci"}},
        {"mediaType": "application/vnd.oci.image.index.v1+json", **nested,
         "annotations": {"org.opencontainers.image.ref.name": "bare-tag"}},
    ]}
    files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(index).encode()}
    files.update({f"blobs/sha256/{d[7:]}": data for d, data in blobs.items()})
    if mutate:
        mutate(files, sha(gz), sha(cfg))
    return tar_of(files), SavedImage(cfg, [busybox_tar], ["example.com/busy:1", "busybox:oci"])


def test_oci_layout_nested_index(tmp_path, busybox_tar):
    archive, expected = _oci_archive(busybox_tar)
    loaded = read_archive(io.BytesIO(archive), str(tmp_path / "staging"))
    assert_same(loaded, [expected])


def _corrupt_blob(files, layer, cfg):
    files[f"blobs/sha256/{layer[7:]}"] = gzip.compress(b"not the layer")


def _missing_blob(files, layer, cfg):
    del files[f"blobs/sha256/{layer[7:]}"]


def _bad_config(files, layer, cfg):
    files[f"blobs/sha256/{cfg[7:]}"] = b"{not json"


@pytest.mark.parametrize("mutate,match", [
    (_corrupt_blob, "blob digest mismatch"),
    (_missing_blob, "missing layer"),
    (_bad_config, "blob digest mismatch"),
])
def test_oci_errors(tmp_path, busybox_tar, mutate, match):
    archive, _ = _oci_archive(busybox_tar, mutate)
    with pytest.raises(InvalidArgument, match=match):
        read_archive(io.BytesIO(archive), str(tmp_path / "staging"))


def _docker_archive_with(busybox_tar, edit) -> bytes:
    archive, _ = _classic_archive(busybox_tar)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    edit(files)
    return tar_of(files)


def _set_manifest(files, entries):
    files["manifest.json"] = json.dumps(entries).encode()


def _one_image(files, config_name, layers):
    _set_manifest(files, [{"Config": config_name, "RepoTags": [], "Layers": layers}])


H1 = "1" * 64


def test_docker_archive_errors(tmp_path, busybox_tar):
    def check(edit, match):
        data = _docker_archive_with(busybox_tar, edit)
        with pytest.raises(InvalidArgument, match=match):
            read_archive(io.BytesIO(data), str(tmp_path / f"s{check.n}"))
        check.n += 1
    check.n = 0
    cfg = config_for([b"something else"])
    check(lambda f: (f.update({"c.json": cfg}), _one_image(f, "c.json", [f"{H1}/layer.tar"])), "layer digest mismatch")
    base_cfg = config_for([Path(busybox_tar).read_bytes()])
    check(lambda f: (f.update({"c.json": base_cfg}), _one_image(f, "c.json", ["nope/layer.tar"])), "missing layer")
    check(lambda f: (f.update({"c.json": base_cfg}), _one_image(f, "c.json", [])), "1 diff_ids")
    check(lambda f: _one_image(f, "absent.json", []), "missing image config")
    check(lambda f: (f.update({"c.json": b"[]"}), _one_image(f, "c.json", [])), "rootfs.diff_ids")
    check(lambda f: f.update({"manifest.json": b"{"}), "not valid JSON")
    check(lambda f: _set_manifest(f, [{"Layers": []}]), "malformed manifest.json")
    check(lambda f: f.pop("manifest.json"), "missing manifest.json or index.json")


def test_corrupt_archives(tmp_path, busybox_tar):
    archive, _ = _classic_archive(busybox_tar)
    for i, data in enumerate([archive[: len(archive) // 2], os.urandom(5000), b"", gzip.compress(archive)[:-50],
                              tar_of({"../evil": b"x"}), tar_of({"/abs": b"x"})]):
        with pytest.raises(InvalidArgument, match="invalid"):
            read_archive(io.BytesIO(data), str(tmp_path / f"s{i}"))
    assert not (tmp_path / "evil").exists()


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
def test_skopeo_interop(tmp_path, busybox_tar):
    img = SavedImage(config_for([Path(busybox_tar).read_bytes()], "skopeo"), [busybox_tar], ["busybox:latest"])
    saved = tmp_path / "saved.tar"
    with open(saved, "wb") as f:
        write_archive(f, [img])

    def skopeo(*args):
        r = subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", *args], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr

    skopeo(f"docker-archive:{saved}", f"oci:{tmp_path / 'oci'}")
    out = tmp_path / "out.tar"
    skopeo(f"oci:{tmp_path / 'oci'}", f"docker-archive:{out}:busybox:latest")
    with open(out, "rb") as f:
        loaded = read_archive(f, str(tmp_path / "staging1"))
    # skopeo re-encodes the config when converting to OCI: same document, other bytes
    assert len(loaded) == 1 and json.loads(loaded[0].config) == json.loads(img.config)
    assert loaded[0].repo_tags == ["busybox:latest"]
    assert [file_sha(p) for p in loaded[0].layers] == [file_sha(busybox_tar)]
    # the OCI side of the same archive: an OCI-to-OCI copy keeps the config bytes
    skopeo(f"oci-archive:{saved}:latest", f"oci:{tmp_path / 'oci2'}")
    index = json.loads((tmp_path / "oci2" / "index.json").read_bytes())
    manifest = json.loads((tmp_path / "oci2/blobs/sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    assert manifest["config"]["digest"] == sha(img.config)
    # skopeo's OCI layout (gzip layers), tarred up, reads back too
    oci_tar = tmp_path / "oci.tar"
    with tarfile.open(oci_tar, "w") as tar:
        for name in sorted(os.listdir(tmp_path / "oci")):
            tar.add(tmp_path / "oci" / name, arcname=name)
    with open(oci_tar, "rb") as f:
        loaded = read_archive(f, str(tmp_path / "staging2"))
    assert [json.loads(x.config) for x in loaded] == [json.loads(img.config)]
    assert [file_sha(p) for p in loaded[0].layers] == [file_sha(busybox_tar)]


def test_same_image_twice_is_written_once(tmp_path, images):
    again = SavedImage(images[0].config, images[0].layers, ["busybox:again", "busybox:latest"])
    loaded = read_archive(io.BytesIO(save([images[0], again])), str(tmp_path / "s"))
    assert len(loaded) == 1 and loaded[0].repo_tags == ["busybox:latest", "busybox:1", "busybox:again"]


def test_write_refuses_layer_not_matching_diff_id(tmp_path, images):
    from berth.errors import SystemError_
    wrong = tmp_path / "wrong.tar"
    wrong.write_bytes(tar_of({"x": b"y"}))
    with pytest.raises(SystemError_, match="does not match"):
        save([SavedImage(images[0].config, [str(wrong)], [])])
