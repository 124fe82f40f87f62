"""berth.client.credentials: config.json as the docker CLI reads and writes it, credential helpers, key
normalisation and the X-Registry-Auth header; no daemon, no network."""
from __future__ import annotations

import base64
import json
import os
import stat
import sys
import textwrap

import pytest

from berth.client import credentials as cr
from berth.client.credentials import Credentials
from berth.errors import BerthError, InvalidArgument

HUB = "https://index.docker.io/v1/"




def write(cfg, conf: dict) -> None:
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.json").write_text(json.dumps(conf, indent="\t"))


def read(cfg) -> dict:
    return json.loads((cfg / "config.json").read_text())


HELPER = '''#!{python}
"""A fake docker-credential-test: keeps its secrets in {store}; logs each call to {store}.log."""
import json, os, sys
path = {store!r}
action = sys.argv[1]
data = sys.stdin.read()
with open(path + ".log", "a") as log:
    log.write(json.dumps([action, data]) + "\\n")
db = json.load(open(path)) if os.path.exists(path) else {{}}
if action == "get":
    server = data.strip()
    if server not in db:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": server, **db[server]}}))
elif action == "store":
    req = json.loads(data)
    db[req["ServerURL"]] = {{"Username": req["Username"], "Secret": req["Secret"]}}
    json.dump(db, open(path, "w"))
elif action == "erase":
    server = data.strip()
    if server not in db:
        print("credentials not found in native keychain")
        sys.exit(1)
    del db[server]
    json.dump(db, open(path, "w"))
else:
    print("unknown action"); sys.exit(1)
'''


@pytest.fixture
def helper(tmp_path, monkeypatch):
    """``docker-credential-test`` on PATH; returns the path of its JSON store (a log beside it)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    store = str(tmp_path / "helper-store.json")
    script = bindir / "docker-credential-test"
    script.write_text(HELPER.format(python=sys.executable, store=store))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return store


def helper_db(store: str) -> dict:
    return json.load(open(store)) if os.path.exists(store) else {}


def helper_calls(store: str) -> list[list[str]]:
    if not os.path.exists(store + ".log"):
        return []
    return [json.loads(line) for line in open(store + ".log")]


# ---------------------------------------------------------------- keys

@pytest.mark.parametrize("given, key", [
    ("", HUB), ("docker.io", HUB), ("index.docker.io", HUB), ("registry-1.docker.io", HUB), (HUB, HUB),
    ("https://index.docker.io/v1", HUB), ("https://registry-1.docker.io/v2/", HUB), ("Docker.IO", HUB),
    ("localhost:5000", "localhost:5000"), ("http://localhost:5000", "localhost:5000"),
    ("https://127.0.0.1:5000/v2/", "127.0.0.1:5000"), ("myregistry.example.com/some/path", "myregistry.example.com"),
    ("quay.io", "quay.io"),
])
def test_registry_key(given, key):
    assert cr.registry_key(given) == key


def test_config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "x"))
    assert cr.config_dir() == str(tmp_path / "x")
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cr.config_dir() == str(tmp_path / ".docker")


# ---------------------------------------------------------------- the file store

def test_nothing_stored(cfg):
    assert cr.get("docker.io") is None and cr.auth_header("localhost:5000") is None
    assert cr.erase("localhost:5000") is False
    assert not (cfg / "config.json").exists()


def test_reads_what_docker_writes(cfg):
    # as docker 24 writes it: tab-indented, the password in "auth", an identity token beside it, a helper's {}
    write(cfg, {"auths": {HUB: {"auth": base64.b64encode(b"alice:s3cr:et").decode()},
                          "localhost:5000": {"auth": base64.b64encode(b"bob:").decode(), "identitytoken": "tok"},
                          "https://old.example.com/v1/": {"auth": base64.b64encode(b"carol:pw").decode()},
                          "helper.example.com": {}},
                "psFormat": "table {{.ID}}", "currentContext": "default"})
    assert cr.get("docker.io") == Credentials("alice", "s3cr:et", "", HUB)
    assert cr.get("registry-1.docker.io") == cr.get(HUB) == cr.get("index.docker.io")
    assert cr.get("http://localhost:5000") == Credentials("bob", "", "tok", "localhost:5000")
    assert cr.get("old.example.com") == Credentials("carol", "pw", "", "old.example.com")  # by hostname
    assert cr.get("helper.example.com") is None
    assert cr.get("other.example.com") is None


def test_writes_what_docker_writes(cfg):
    write(cfg, {"auths": {"other:5000": {"auth": "eDp5"}}, "psFormat": "table {{.ID}}",
                "proxies": {"default": {"httpProxy": "http://127.0.0.1:3128"}}})
    cr.store("docker.io", Credentials("alice", "wonderland"))
    cr.store("http://localhost:5000/", Credentials("bob", "pw"))
    cr.store("127.0.0.1:5001", Credentials("dave", "", "id-token"))
    conf = read(cfg)
    # exactly docker's shape: {"auth": base64(user:password)} under Docker Hub's v1 URL or host[:port]
    assert conf["auths"] == {
        "other:5000": {"auth": "eDp5"},
        HUB: {"auth": base64.b64encode(b"alice:wonderland").decode()},
        "localhost:5000": {"auth": base64.b64encode(b"bob:pw").decode()},
        "127.0.0.1:5001": {"auth": base64.b64encode(b"dave:").decode(), "identitytoken": "id-token"}}
    assert conf["psFormat"] == "table {{.ID}}" and conf["proxies"]["default"]["httpProxy"]  # unknown keys kept
    text = (cfg / "config.json").read_text()
    assert text.startswith('{\n\t"auths": {\n\t\t"other:5000": {\n\t\t\t"auth": "eDp5"\n\t\t},')  # docker's layout
    assert stat.S_IMODE(os.stat(cfg / "config.json").st_mode) == 0o600
    assert sorted(os.listdir(cfg)) == ["config.json"]  # no temporary file left behind
    assert cr.get("docker.io") == Credentials("alice", "wonderland", "", HUB)


def test_store_creates_the_directory_and_follows_a_symlink(cfg, tmp_path):
    cr.store("localhost:5000", Credentials("u", "p"))
    assert read(cfg) == {"auths": {"localhost:5000": {"auth": base64.b64encode(b"u:p").decode()}}}
    real = tmp_path / "real.json"
    real.write_text("{}")
    (cfg / "config.json").unlink()
    (cfg / "config.json").symlink_to(real)
    cr.store("localhost:5000", Credentials("v", "q"))
    assert (cfg / "config.json").is_symlink()
    assert json.loads(real.read_text())["auths"]["localhost:5000"]["auth"] == base64.b64encode(b"v:q").decode()


def test_erase_removes_old_spellings_too(cfg):
    write(cfg, {"auths": {"localhost:5000": {"auth": "dTpw"}, "https://localhost:5000": {"auth": "dTpw"},
                          "keep:1": {"auth": "dTpw"}}, "x": 1})
    assert cr.is_logged_in("localhost:5000")
    assert cr.erase("http://localhost:5000/v2/") is True
    assert read(cfg) == {"auths": {"keep:1": {"auth": "dTpw"}}, "x": 1}
    assert cr.erase("localhost:5000") is False and not cr.is_logged_in("localhost:5000")


def test_a_broken_config_is_an_error(cfg):
    cfg.mkdir()
    (cfg / "config.json").write_text("{nope")
    with pytest.raises(BerthError, match="loading config file"):
        cr.get("docker.io")
    write(cfg, {"auths": {HUB: {"auth": base64.b64encode(b"no-colon").decode()}}})
    with pytest.raises(BerthError, match="invalid auth configuration file"):
        cr.get("docker.io")


# ---------------------------------------------------------------- credential helpers

def test_creds_store_helper(cfg, helper):
    write(cfg, {"credsStore": "test"})
    cr.store("localhost:5000", Credentials("alice", "pw"))
    cr.store("docker.io", Credentials("bob", "", "the-token"))
    assert helper_db(helper) == {"localhost:5000": {"Username": "alice", "Secret": "pw"},
                                 HUB: {"Username": "<token>", "Secret": "the-token"}}
    # docker leaves an empty entry in config.json for what a helper keeps
    assert read(cfg) == {"credsStore": "test", "auths": {"localhost:5000": {}, HUB: {}}}
    assert cr.get("localhost:5000") == Credentials("alice", "pw", "", "localhost:5000")
    assert cr.get("index.docker.io") == Credentials("", "", "the-token", HUB)
    assert cr.get("nothing.example.com") is None
    assert cr.erase("localhost:5000") is True
    assert helper_db(helper) == {HUB: {"Username": "<token>", "Secret": "the-token"}}
    assert read(cfg)["auths"] == {HUB: {}}
    assert ["erase", "localhost:5000"] in helper_calls(helper)


def test_cred_helpers_come_before_creds_store_and_auths(cfg, helper):
    json.dump({"localhost:5000": {"Username": "from-helper", "Secret": "h"}}, open(helper, "w"))
    write(cfg, {"auths": {"localhost:5000": {"auth": base64.b64encode(b"from-file:f").decode()},
                          "other:1": {"auth": base64.b64encode(b"file-only:f").decode()}},
                "credsStore": "missing-helper", "credHelpers": {"localhost:5000": "test"}})
    assert cr.get("localhost:5000") == Credentials("from-helper", "h", "", "localhost:5000")
    # credsStore applies to every other registry, so the file's entry is not read (as docker)
    with pytest.raises(BerthError, match='exec: "docker-credential-missing-helper": executable file not found'):
        cr.get("other:1")
    write(cfg, {"auths": {"other:1": {"auth": base64.b64encode(b"file-only:f").decode()}},
                "credHelpers": {"localhost:5000": "test"}})
    assert cr.get("other:1") == Credentials("file-only", "f", "", "other:1")
    assert helper_calls(helper)[0] == ["get", "localhost:5000"]


def test_a_failing_helper_is_an_error(cfg, tmp_path, monkeypatch):
    bindir = tmp_path / "bin2"
    bindir.mkdir()
    (bindir / "docker-credential-broken").write_text("#!/bin/sh\necho 'keychain locked'\nexit 3\n")
    (bindir / "docker-credential-broken").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    write(cfg, {"credsStore": "broken"})
    with pytest.raises(BerthError) as e:
        cr.get("localhost:5000")
    assert e.value.message == "error getting credentials - err: exit status 3, out: `keychain locked`"
    with pytest.raises(BerthError, match="error storing credentials"):
        cr.store("localhost:5000", Credentials("a", "b"))
    assert read(cfg) == {"credsStore": "broken"}


# ---------------------------------------------------------------- X-Registry-Auth

def decode_go_url_base64(value: str) -> dict:
    assert len(value) % 4 == 0 and "+" not in value and "/" not in value  # Go's URLEncoding: padded, - and _
    return json.loads(base64.urlsafe_b64decode(value))


def test_auth_header(cfg):
    cr.store("localhost:5000", Credentials("alice", "p>w?&~~~"))
    value = cr.auth_header("http://localhost:5000")
    assert decode_go_url_base64(value) == {"username": "alice", "password": "p>w?&~~~",
                                           "serveraddress": "localhost:5000"}
    # Go's encoding/json: compact, fields in AuthConfig's order, HTML characters escaped
    assert base64.urlsafe_b64decode(value) == (b'{"username":"alice","password":"p\\u003ew?\\u0026~~~",'
                                               b'"serveraddress":"localhost:5000"}')
    assert cr.decode_header(value.rstrip("=")) == decode_go_url_base64(value)


def test_auth_header_with_an_identity_token(cfg):
    cr.store("docker.io", Credentials("alice", "", "tok-123"))
    assert decode_go_url_base64(cr.auth_header("docker.io")) == {
        "username": "alice", "serveraddress": HUB, "identitytoken": "tok-123"}


@pytest.mark.parametrize("image, server", [
    ("busybox", HUB), ("library/busybox:1.36", HUB), ("docker.io/alice/app@sha256:" + "a" * 64, HUB),
    ("index.docker.io/alice/app", HUB), ("localhost:5000/app:1", "localhost:5000"),
    ("127.0.0.1:5000/ns/app", "127.0.0.1:5000"), ("quay.io/x/y", "quay.io"),
])
def test_auth_header_for_image(cfg, image, server):
    user = "u-" + server.replace(":", "_").replace("/", "_")  # a user name has no colon in "auth"
    cr.store(server, Credentials(user, "p"))
    cr.store("elsewhere:1", Credentials("someone-else", "p"))
    assert decode_go_url_base64(cr.auth_header_for_image(image)) == {"username": user, "password": "p",
                                                                    "serveraddress": server}


def test_auth_header_for_image_without_credentials_and_bad_names(cfg):
    cr.store("localhost:5000", Credentials("u", "p"))
    assert cr.auth_header_for_image("localhost:5001/app") is None
    assert cr.auth_header_for_image("busybox") is None
    with pytest.raises(InvalidArgument):
        cr.auth_header_for_image("Bad Name")


def test_helper_script_is_well_formed():
    # the helper's template must stay valid Python once formatted
    compile(HELPER.format(python=sys.executable, store="/x"), "helper", "exec")
    assert textwrap.dedent(HELPER) == HELPER
