"""berth.types.manifest: parsing and checking manifests and indexes, platforms, new manifests."""
from __future__ import annotations

import hashlib
import json

import pytest

from berth.errors import InvalidArgument
from berth.types import manifest as mf
from berth.types.manifest import Descriptor, Index, Manifest, Platform


def dig(data: bytes | str) -> str:
    return "sha256:" + hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


CFG = {"mediaType": mf.DOCKER_CONFIG, "digest": dig("config"), "size": 1469}
LAYER = {"mediaType": mf.DOCKER_LAYER, "digest": dig("layer"), "size": 2591575}


def entry(arch: str, variant: str = "", **extra) -> dict:
    plat = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    return {"mediaType": mf.OCI_MANIFEST, "digest": dig(arch + variant), "size": 610, "platform": plat, **extra}


def body(doc: dict) -> bytes:
    return json.dumps(doc).encode()


def docker_manifest(**changes) -> dict:
    doc = {"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST, "config": dict(CFG), "layers": [dict(LAYER)]}
    doc.update(changes)
    return doc


def test_docker_schema2_manifest():
    m = mf.parse(body(docker_manifest()))
    assert isinstance(m, Manifest)
    assert m.media_type == mf.DOCKER_MANIFEST
    assert m.config == Descriptor(mf.DOCKER_CONFIG, dig("config"), 1469)
    assert [(d.media_type, d.digest, d.size) for d in m.layers] == [(mf.DOCKER_LAYER, dig("layer"), 2591575)]
    assert m.blobs() == [m.config, *m.layers]
    assert m.subject is None and m.annotations == {} and m.artifact_type == ""


def test_oci_manifest_with_subject_annotations_and_artifact_type():
    doc = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST, "artifactType": "application/vnd.example+type",
           "config": {"mediaType": mf.OCI_EMPTY, "digest": dig("{}"), "size": 2},
           "layers": [{"mediaType": "text/plain", "digest": dig("x"), "size": 1,
                       "annotations": {"org.opencontainers.image.title": "x.txt"}}],
           "subject": {"mediaType": mf.OCI_MANIFEST, "digest": dig("subject"), "size": 7},
           "annotations": {"a": "b"}}
    m = mf.parse(body(doc))
    assert isinstance(m, Manifest) and m.media_type == mf.OCI_MANIFEST
    assert m.artifact_type == "application/vnd.example+type"
    assert m.subject == Descriptor(mf.OCI_MANIFEST, dig("subject"), 7)
    assert m.annotations == {"a": "b"}
    assert m.layers[0].annotations == {"org.opencontainers.image.title": "x.txt"}


def test_oci_index_and_docker_list():
    idx = mf.parse(body({"schemaVersion": 2, "mediaType": mf.OCI_INDEX,
                         "manifests": [entry("amd64"), entry("arm64", "v8")]}))
    assert isinstance(idx, Index) and idx.media_type == mf.OCI_INDEX
    assert [d.platform for d in idx.manifests] == [Platform("linux", "amd64"), Platform("linux", "arm64", "v8")]
    lst = mf.parse(body({"schemaVersion": 2, "mediaType": mf.DOCKER_LIST, "manifests": [entry("amd64")]}))
    assert isinstance(lst, Index) and lst.media_type == mf.DOCKER_LIST


def test_media_type_from_content_type_when_body_has_none():
    doc = docker_manifest()
    del doc["mediaType"]
    m = mf.parse(body(doc), f"{mf.DOCKER_MANIFEST}; charset=utf-8")
    assert isinstance(m, Manifest) and m.media_type == mf.DOCKER_MANIFEST
    idx = mf.parse(body({"schemaVersion": 2, "manifests": []}), mf.DOCKER_LIST)
    assert isinstance(idx, Index) and idx.media_type == mf.DOCKER_LIST


def test_body_media_type_wins_over_content_type():
    m = mf.parse(body(docker_manifest()), mf.OCI_INDEX)
    assert isinstance(m, Manifest) and m.media_type == mf.DOCKER_MANIFEST


def test_missing_media_type_is_guessed_from_the_shape():
    doc = docker_manifest()
    del doc["mediaType"]
    m = mf.parse(body(doc))
    assert isinstance(m, Manifest) and m.media_type == mf.OCI_MANIFEST
    idx = mf.parse(body({"schemaVersion": 2, "manifests": [entry("amd64")]}))
    assert isinstance(idx, Index) and idx.media_type == mf.OCI_INDEX


def bad_layer(**changes) -> bytes:
    return body(docker_manifest(layers=[{**LAYER, **changes}]))


@pytest.mark.parametrize("data, content_type, text", [
    (b"{not json", "", "not valid JSON"),
    (b"", "", "not valid JSON"),
    (b"[1, 2]", "", "not a JSON object"),
    (b'"manifest"', "", "not a JSON object"),
    (body({**docker_manifest(), "schemaVersion": 1}), "", "schemaVersion"),
    (body({k: v for k, v in docker_manifest().items() if k != "schemaVersion"}), "", "schemaVersion"),
    (body({**docker_manifest(), "schemaVersion": "2"}), "", "schemaVersion"),
    (bad_layer(digest="sha256:abc"), "", "valid digest"),
    (bad_layer(digest="md5:" + "0" * 32), "", "valid digest"),
    (bad_layer(digest=dig("x").upper()), "", "valid digest"),
    (bad_layer(size=-1), "", "valid size"),
    (bad_layer(size=True), "", "valid size"),
    (bad_layer(size="12"), "", "valid size"),
    (bad_layer(size=1.5), "", "valid size"),
    (bad_layer(mediaType="not a media type"), "", "valid mediaType"),
    (bad_layer(mediaType=""), "", "valid mediaType"),
    (bad_layer(mediaType=7), "", "valid mediaType"),
    (body(docker_manifest(layers=["sha256:x"])), "", "layer is not an object"),
    (body(docker_manifest(config=None)), "", "config is not an object"),
    (body({k: v for k, v in docker_manifest().items() if k != "layers"}), "", "no layers"),
    (body(docker_manifest(layers={})), "", "no layers"),
    (body({"schemaVersion": 2, "mediaType": mf.OCI_INDEX}), "", "no manifests"),
    (body({"schemaVersion": 2, "mediaType": mf.DOCKER_LIST, "manifests": {}}), "", "no manifests"),
    (body({"schemaVersion": 2, "layers": []}), mf.OCI_INDEX, "no manifests"),
    (body(docker_manifest(mediaType="application/json")), "", "unsupported manifest media type"),
    (body({"schemaVersion": 2, "manifests": [{**entry("amd64"), "platform": {"os": "linux"}}]}), "",
     "platform needs os and architecture"),
    (body(docker_manifest(annotations=["a"])), "", "annotations must be an object"),
    (bad_layer(annotations={"a": 1}), "", "annotations must be strings"),
    (body(docker_manifest(subject={"digest": dig("s"), "size": 1})), "", "subject has no valid mediaType"),
])
def test_invalid_manifests(data, content_type, text):
    with pytest.raises(InvalidArgument) as e:
        mf.parse(data, content_type)
    assert e.value.message.startswith("manifest invalid: ")
    assert text in e.value.message


def test_too_large_is_refused_before_parsing():
    big = body(docker_manifest(annotations={"pad": "x" * mf.MAX_MANIFEST}))
    with pytest.raises(InvalidArgument, match="too large"):
        mf.parse(big)
    exact = body(docker_manifest(annotations={"p": ""}))
    padded = exact[:-1] + b" " * (mf.MAX_MANIFEST - len(exact)) + b"}"
    assert len(padded) == mf.MAX_MANIFEST
    assert isinstance(mf.parse(padded), Manifest)


def test_sha512_digest_is_accepted():
    d = "sha512:" + hashlib.sha512(b"x").hexdigest()
    assert mf.parse(bad_layer(digest=d)).layers[0].digest == d


def index(*entries: dict) -> Index:
    idx = mf.parse(body({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": list(entries)}))
    assert isinstance(idx, Index)
    return idx


def test_pick_matches_os_architecture_and_variant():
    idx = index(entry("amd64"), entry("arm", "v6"), entry("arm", "v7"), entry("arm64", "v8"))
    assert idx.pick(Platform("linux", "amd64")).digest == dig("amd64")
    assert idx.pick(Platform("linux", "arm", "v7")).digest == dig("armv7")
    assert idx.pick(Platform("linux", "arm")).digest == dig("armv6")  # no variant wanted: the first arm
    assert idx.pick(Platform("linux", "arm64")).digest == dig("arm64v8")
    assert idx.pick(Platform("linux", "arm", "v5")) is None
    assert idx.pick(Platform("windows", "amd64")) is None
    assert idx.pick(Platform("linux", "s390x")) is None


def test_pick_skips_attestations_and_entries_without_platform():
    att = {**entry("amd64"), "digest": dig("att"),
           "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                           "vnd.docker.reference.digest": dig("amd64")}}
    no_platform = {k: v for k, v in entry("amd64").items() if k != "platform"}
    idx = index(no_platform, att, entry("amd64"))
    assert idx.pick(Platform("linux", "amd64")).digest == dig("amd64")
    assert index(no_platform, att).pick(Platform("linux", "amd64")) is None
    assert index().pick(Platform("linux", "amd64")) is None


@pytest.mark.parametrize("text, want", [
    ("linux/amd64", Platform("linux", "amd64")),
    ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
    ("linux/x86_64", Platform("linux", "amd64")),
    ("linux/aarch64", Platform("linux", "arm64")),
    (" Linux/AMD64 ", Platform("linux", "amd64")),
    ("linux/arm/v7", Platform("linux", "arm", "v7")),
])
def test_parse_platform(text, want):
    assert mf.parse_platform(text) == want


@pytest.mark.parametrize("text", ["linux", "", "linux/", "/amd64", "linux//v8", "linux/arm/v7/extra"])
def test_parse_platform_invalid(text):
    with pytest.raises(InvalidArgument, match="unknown operating system or architecture"):
        mf.parse_platform(text)


def test_platform_str():
    assert str(Platform("linux", "arm64", "v8")) == "linux/arm64/v8"
    assert str(Platform("linux", "amd64")) == "linux/amd64"


def test_descriptor_to_dict():
    d = Descriptor(mf.OCI_MANIFEST, dig("m"), 10, Platform("linux", "arm", "v7"), {"k": "v"}, "app/x")
    assert d.to_dict() == {"mediaType": mf.OCI_MANIFEST, "digest": dig("m"), "size": 10,
                           "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
                           "annotations": {"k": "v"}, "artifactType": "app/x"}
    plain = Descriptor(mf.OCI_LAYER_GZIP, dig("l"), 0)
    assert plain.to_dict() == {"mediaType": mf.OCI_LAYER_GZIP, "digest": dig("l"), "size": 0}
    assert Descriptor(mf.OCI_MANIFEST, dig("m"), 1, Platform("linux", "amd64")).to_dict()["platform"] == {
        "architecture": "amd64", "os": "linux"}
    assert mf.descriptor(d.to_dict()) == d


@pytest.mark.parametrize("docker", [False, True])
def test_image_manifest_round_trips_and_is_deterministic(docker):
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layers = [Descriptor(mf.DOCKER_LAYER if docker else mf.OCI_LAYER_GZIP, dig(f"l{i}"), 100 + i)
              for i in range(3)]
    data = mf.image_manifest(config, dig(config), layers, docker=docker)
    assert data == mf.image_manifest(config, dig(config), list(layers), docker=docker)
    m = mf.parse(data)
    assert isinstance(m, Manifest)
    assert m.media_type == (mf.DOCKER_MANIFEST if docker else mf.OCI_MANIFEST)
    assert m.config == Descriptor(mf.DOCKER_CONFIG if docker else mf.OCI_CONFIG, dig(config), len(config))
    assert m.layers == layers
    doc = json.loads(data)
    assert list(doc) == ["schemaVersion", "mediaType", "config", "layers"]
    assert doc["schemaVersion"] == 2


def test_accept_lists_every_type():
    assert [t.strip() for t in mf.ACCEPT.split(",")] == list(mf.ALL_TYPES)
    assert set(mf.ALL_TYPES) == {mf.OCI_MANIFEST, mf.DOCKER_MANIFEST, mf.OCI_INDEX, mf.DOCKER_LIST}
