"""berth.api.serialize.progress: Docker's JSON progress lines and X-Registry-Auth decoding."""
from __future__ import annotations

import base64
import json
import re

import pytest

from berth.api.serialize import progress as pm
from berth.errors import InvalidArgument
from berth.registry.auth import Credentials
from berth.types.progress import Progress


@pytest.mark.parametrize("n, text", [(0, "0B"), (1, "1B"), (999, "999B"), (1000, "1kB"), (1500, "1.5kB"),
                                     (1_230_000, "1.23MB"), (27_100_000, "27.1MB"), (1_000_000_000, "1GB"),
                                     (5 * 10**12, "5TB"), (3 * 10**15, "3PB")])
def test_human_size(n, text):
    assert pm.human_size(n) == text


BAR = re.compile(r"^\[([=> ]{50})\] +\S+/\S+$")


@pytest.mark.parametrize("current, total, inside", [
    (0, 100, " " * 50),
    (1, 100, " " * 50),
    (2, 100, ">" + " " * 49),
    (50, 100, "=" * 24 + ">" + " " * 25),
    (99, 100, "=" * 48 + ">" + " "),
    (100, 100, "=" * 50),
    (250, 100, "=" * 50),
])
def test_bar_shape(current, total, inside):
    text = pm.bar(current, total)
    m = BAR.match(text)
    assert m, text
    assert m.group(1) == inside
    assert text.endswith(f"{pm.human_size(current):>8}/{pm.human_size(total)}")


def test_bar_numbers():
    assert pm.bar(1_230_000, 2_000_000).endswith("]   1.23MB/2MB")
    assert len(pm.bar(5, 10)) == len("[") + 50 + len("] ") + 8 + len("/10B")


@pytest.mark.parametrize("total", [None, 0, -1])
def test_bar_without_total_is_the_size(total):
    assert pm.bar(1_500_000, total) == "1.5MB"


def test_message_status_only():
    assert pm.message(Progress("Pulling from library/busybox")) == {"status": "Pulling from library/busybox"}


def test_message_with_id_and_no_numbers():
    assert pm.message(Progress("Pulling fs layer", id="a3ed95caeb02")) == {
        "status": "Pulling fs layer", "progressDetail": {}, "id": "a3ed95caeb02"}


def test_message_with_current_and_total():
    msg = pm.message(Progress("Downloading", id="a3ed95caeb02", current=500, total=1000))
    assert msg["status"] == "Downloading" and msg["id"] == "a3ed95caeb02"
    assert msg["progressDetail"] == {"current": 500, "total": 1000}
    assert msg["progress"] == pm.bar(500, 1000)
    assert msg["progress"].startswith("[" + "=" * 24 + ">")
    json.dumps(msg)


def test_message_with_current_only():
    msg = pm.message(Progress("Pushing", id="x", current=2000))
    assert msg["progressDetail"] == {"current": 2000}
    assert msg["progress"] == "2kB"


def test_message_aux():
    aux = {"Tag": "latest", "Digest": "sha256:" + "a" * 64, "Size": 527}
    assert pm.message(Progress("ignored", id="x", aux=aux)) == {"progressDetail": {}, "aux": aux}


def test_error():
    assert pm.error("manifest unknown") == {"errorDetail": {"message": "manifest unknown"},
                                            "error": "manifest unknown"}


def encode(doc: dict, padded: bool = True) -> str:
    text = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    return text if padded else text.rstrip("=")


AUTH = {"username": "alice", "password": "pa?>ss~~", "serveraddress": "https://index.docker.io/v1"}


@pytest.mark.parametrize("padded", [True, False])
def test_registry_auth_base64url(padded):
    header = encode(AUTH, padded)
    assert ("-" in header or "_" in header)  # the URL-safe alphabet is really exercised
    assert padded == header.endswith("=")
    assert pm.registry_auth(header) == Credentials("alice", "pa?>ss~~")


@pytest.mark.parametrize("header", [None, "", "  ", "e30=", "e30", encode({})])
def test_registry_auth_anonymous(header):
    creds = pm.registry_auth(header)
    assert creds == Credentials() and not creds


def test_registry_auth_auth_field_and_tokens():
    auth = base64.b64encode(b"bob:se:cret").decode()
    assert pm.registry_auth(encode({"auth": auth})) == Credentials("bob", "se:cret")
    assert pm.registry_auth(encode({"username": "carol", "password": "p", "auth": auth})) == Credentials("carol", "p")
    assert pm.registry_auth(encode({"identitytoken": "refresh"})) == Credentials(identity_token="refresh")
    assert pm.registry_auth(encode({"registrytoken": "bearer"})) == Credentials(registry_token="bearer")


@pytest.mark.parametrize("header", ["!!!not base64!!!", base64.urlsafe_b64encode(b"not json").decode(),
                                    base64.urlsafe_b64encode(b"\xff\xfe").decode(), "a"])
def test_registry_auth_invalid(header):
    with pytest.raises(InvalidArgument, match="invalid X-Registry-Auth header"):
        pm.registry_auth(header)


@pytest.mark.parametrize("doc", [[1], "user", 3])
def test_registry_auth_not_an_object(doc):
    header = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    with pytest.raises(InvalidArgument, match="not a JSON object"):
        pm.registry_auth(header)


def test_credentials():
    assert pm.credentials({"username": "u", "password": "p", "email": "x@y", "serveraddress": "r"}) == \
        Credentials("u", "p")
    assert pm.credentials({}) == Credentials()
    assert pm.credentials({"username": None, "password": None}) == Credentials()
    with pytest.raises(InvalidArgument, match="bad auth field"):
        pm.credentials({"auth": "a"})
    with pytest.raises(InvalidArgument, match="bad auth field"):
        pm.credentials({"auth": base64.b64encode(b"\xff:\xfe").decode()})
    with pytest.raises(InvalidArgument, match="not a JSON object"):
        pm.credentials(None)


@pytest.mark.parametrize("n, text", [(1_234_567, "1.235MB"), (999_500, "999.5kB")])
def test_human_size_has_four_digits_like_go_units(n, text):
    assert pm.human_size(n) == text
