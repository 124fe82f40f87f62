"""Content digests and OCI chain IDs (berth.types.digest)."""
from __future__ import annotations

import hashlib

import pytest

from berth.errors import InvalidArgument
from berth.types.digest import chain_ids, hex_of, sha256_bytes, validate

EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_sha256_bytes_known_values():
    assert sha256_bytes(b"") == EMPTY
    assert sha256_bytes(b"abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_sha256_bytes_matches_hashlib():
    data = bytes(range(256)) * 10
    assert sha256_bytes(data) == "sha256:" + hashlib.sha256(data).hexdigest()


def test_validate_returns_digest():
    assert validate(EMPTY) == EMPTY


@pytest.mark.parametrize("bad", [
    "",
    "sha256:",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha256:" + "A" * 64,
    "sha256:" + "g" * 64,
    "SHA256:" + "a" * 64,
    "sha512:" + "a" * 64,
    "md5:" + "a" * 32,
    " sha256:" + "a" * 64,
    "sha256:" + "a" * 64 + " ",
    "sha256:" + "a" * 64 + "\n",
    "sha256 " + "a" * 64,
])
def test_validate_rejects_malformed(bad):
    with pytest.raises(InvalidArgument):
        validate(bad)


def test_hex_of():
    assert hex_of(EMPTY) == EMPTY[len("sha256:"):]


def test_hex_of_rejects_malformed():
    with pytest.raises(InvalidArgument):
        hex_of("sha256:xyz")


def _sha(s: str) -> str:
    return "sha256:" + hashlib.sha256(s.encode()).hexdigest()


def test_chain_ids_empty():
    assert chain_ids([]) == []


def test_chain_id_of_first_layer_is_its_diff_id():
    d0 = sha256_bytes(b"layer0")
    assert chain_ids([d0]) == [d0]


def test_chain_ids_follow_oci_definition():
    d = [sha256_bytes(f"layer{i}".encode()) for i in range(4)]
    c0 = d[0]
    c1 = _sha(f"{c0} {d[1]}")
    c2 = _sha(f"{c1} {d[2]}")
    c3 = _sha(f"{c2} {d[3]}")
    assert chain_ids(d) == [c0, c1, c2, c3]


def test_chain_ids_known_vector():
    # ChainID(L1) = sha256("<ChainID(L0)> <DiffID(L1)>"), computed by hand.
    a = "sha256:" + "a" * 64
    b = "sha256:" + "b" * 64
    expected = "sha256:" + hashlib.sha256(("sha256:" + "a" * 64 + " sha256:" + "b" * 64).encode()).hexdigest()
    assert chain_ids([a, b]) == [a, expected]


def test_chain_ids_depend_on_order():
    a, b = sha256_bytes(b"a"), sha256_bytes(b"b")
    assert chain_ids([a, b])[1] != chain_ids([b, a])[1]


def test_same_layer_twice_gets_distinct_chain_ids():
    a = sha256_bytes(b"a")
    c = chain_ids([a, a])
    assert c[0] == a and c[1] != a
