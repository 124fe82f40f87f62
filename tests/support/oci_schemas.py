"""The OCI image-spec JSON schemas (Debian's golang-github-opencontainers-image-spec-dev) as a validator."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from berth.types import manifest as mf

SCHEMAS = Path("/usr/share/gocode/src/github.com/opencontainers/image-spec/schema")


def oci_validator():
    """Validates a manifest or index (by its mediaType) against the image-spec's schemas, or skips."""
    if not (SCHEMAS / "image-manifest-schema.json").exists():
        pytest.skip(f"the OCI image-spec JSON schemas are not installed at {SCHEMAS} (golang-github-opencontainers-image-spec-dev)")
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    docs = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}
    by_id = {doc["id"]: doc for doc in docs.values() if "id" in doc}

    def retrieve(uri: str) -> Resource:
        # $refs are relative file names ("defs-descriptor.json"), resolved against whichever "id" encloses them
        doc = by_id.get(uri.rstrip("#")) or docs[uri.rsplit("/", 1)[-1]]
        return Resource.from_contents(doc, default_specification=DRAFT4)

    reg = Registry(retrieve=retrieve).with_resources(
        (uri, Resource.from_contents(doc, default_specification=DRAFT4)) for uri, doc in by_id.items())
    checkers = {kind: jsonschema.Draft4Validator(docs[f"image-{kind}-schema.json"], registry=reg)
                for kind in ("manifest", "index")}

    def validate(data: bytes) -> None:
        doc = json.loads(data)
        kind = "index" if doc.get("mediaType") in mf.INDEX_TYPES or "manifests" in doc else "manifest"
        checkers[kind].validate(doc)
        for d in doc.get("manifests", []) + doc.get("layers", []) + [doc.get("config") or {}]:
            assert not d or mf.DIGEST.match(d["digest"])
    return validate
