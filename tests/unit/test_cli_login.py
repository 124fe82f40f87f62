"""``berth login`` / ``berth logout`` against a fake daemon (POST /auth answered from a table): what they send,
print and store in $DOCKER_CONFIG/config.json, as the docker CLI does."""
from __future__ import annotations

import base64
import io
import json

import pytest

from berth.cli import common
from berth.cli.commands import login as login_cmd
from berth.cli.main import _resolve, main
from berth.client import credentials as cr
from berth.errors import BerthError
from tests.support.fake_api import FakeApi

HUB = "https://index.docker.io/v1/"
OK = {"Status": "Login Succeeded", "IdentityToken": ""}
DENIED = "login attempt to http://127.0.0.1:5000/v2/ failed with status: 401 Unauthorized"




class Stdin(io.StringIO):
    def __init__(self, text: str = "", tty: bool = False) -> None:
        super().__init__(text)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def stdin(monkeypatch):
    def set_(text: str = "", tty: bool = False) -> Stdin:
        s = Stdin(text, tty)
        monkeypatch.setattr("sys.stdin", s)
        return s
    set_()
    return set_


def berth(monkeypatch, api: FakeApi, *argv: str) -> int:
    """``berth ARGV`` through main() and run_command, its transport replaced by ``api``."""
    monkeypatch.setattr(common, "Transport", lambda host=None: api)
    return main(list(argv))


def auth_entry(cfg, key: str) -> dict | None:
    path = cfg / "config.json"
    return json.loads(path.read_text()).get("auths", {}).get(key) if path.exists() else None


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_commands_are_routed():
    assert _resolve(["login", "-u", "x"]) == (("login", "login"), ["-u", "x"], "login")
    assert _resolve(["logout"]) == (("login", "logout"), [], "logout")


def test_login_success_stores_credentials(cfg, stdin, capsys, monkeypatch):
    api = FakeApi({("POST", "/auth"): OK})
    assert berth(monkeypatch, api, "login", "-u", "alice", "-p", "wonderland", "http://localhost:5000/") == 0
    assert api.calls == [("POST", "/auth", {}, {"username": "alice", "password": "wonderland",
                                                 "serveraddress": "localhost:5000"})]
    out = capsys.readouterr()
    assert out.out == "Login Succeeded\n"
    assert out.err.startswith("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n"
                              f"WARNING! Your password will be stored unencrypted in {cfg}/config.json.\n")
    # exactly what docker writes
    assert json.loads((cfg / "config.json").read_text()) == {"auths": {"localhost:5000": {"auth": b64("alice:wonderland")}}}
    assert cr.get("localhost:5000") == cr.Credentials("alice", "wonderland", "", "localhost:5000")


def test_login_defaults_to_docker_hub(cfg, stdin, capsys, monkeypatch):
    api = FakeApi({("POST", "/auth"): OK})
    assert berth(monkeypatch, api, "login", "-u", "alice", "-p", "pw") == 0
    assert api.calls[0][3]["serveraddress"] == HUB
    assert berth(monkeypatch, api, "login", "-u", "bob", "-p", "pw2", "docker.io") == 0
    assert api.calls[1][3]["serveraddress"] == HUB
    assert json.loads((cfg / "config.json").read_text()) == {"auths": {HUB: {"auth": b64("bob:pw2")}}}


def test_login_failure_stores_nothing_and_exits_1(cfg, stdin, capsys, monkeypatch):
    api = FakeApi({("POST", "/auth"): BerthError(DENIED)})
    assert berth(monkeypatch, api, "login", "-u", "alice", "-p", "wrong", "127.0.0.1:5000") == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.endswith(f"Error response from daemon: {DENIED}\n")
    assert not (cfg / "config.json").exists()
    # and an earlier login's credentials stay as they were
    cr.store("127.0.0.1:5000", cr.Credentials("alice", "old"))
    assert berth(monkeypatch, api, "login", "-u", "alice", "-p", "wrong", "127.0.0.1:5000") == 1
    assert auth_entry(cfg, "127.0.0.1:5000") == {"auth": b64("alice:old")}


def test_password_stdin(cfg, stdin, capsys, monkeypatch):
    api = FakeApi({("POST", "/auth"): OK})
    stdin("s3cret with spaces \r\n")
    assert berth(monkeypatch, api, "login", "-u", " alice ", "--password-stdin", "localhost:5000") == 0
    assert api.calls[0][3] == {"username": "alice", "password": "s3cret with spaces ",
                               "serveraddress": "localhost:5000"}
    out = capsys.readouterr()
    assert out.out == "Login Succeeded\n" and "--password via the CLI" not in out.err
    stdin("two\nlines\n\n")
    assert berth(monkeypatch, api, "login", "-u", "alice", "--password-stdin", "localhost:5000") == 0
    assert api.calls[1][3]["password"] == "two\nlines\n"  # only one trailing newline goes


@pytest.mark.parametrize("argv, message", [
    (["-u", "a", "-p", "x", "--password-stdin"], "--password and --password-stdin are mutually exclusive"),
    (["--password-stdin"], "Must provide --username with --password-stdin"),
    (["-u", "a"], "Error: Cannot perform an interactive login from a non TTY device"),
    (["-u", "a", "--password-stdin"], "Error: Password Required"),
])
def test_flag_errors_send_nothing(cfg, stdin, capsys, monkeypatch, argv, message):
    api = FakeApi({("POST", "/auth"): OK})
    assert berth(monkeypatch, api, "login", *argv) == 1
    assert api.calls == []
    assert capsys.readouterr().err.splitlines()[-1] == message
    assert not (cfg / "config.json").exists()


def test_prompts_on_a_tty(cfg, stdin, capsys, monkeypatch):
    api = FakeApi({("POST", "/auth"): OK})
    stdin("alice\n", tty=True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed-pw" if prompt == "Password: " else "?")
    assert berth(monkeypatch, api, "login") == 0
    assert api.calls[0][3] == {"username": "alice", "password": "typed-pw", "serveraddress": HUB}
    out = capsys.readouterr().out
    assert "Docker Hub" in out and "Username: " in out and out.endswith("Login Succeeded\n")


def test_identity_token_is_stored_instead_of_the_password(cfg, stdin, capsys, monkeypatch):
    api = FakeApi({("POST", "/auth"): {"Status": "Login Succeeded", "IdentityToken": "id-tok"}})
    assert berth(monkeypatch, api, "login", "-u", "alice", "-p", "pw", "localhost:5000") == 0
    assert auth_entry(cfg, "localhost:5000") == {"auth": b64("alice:"), "identitytoken": "id-tok"}
    assert capsys.readouterr().out == "Login Succeeded\n"


def test_login_with_stored_credentials(cfg, stdin, capsys, monkeypatch):
    cr.store("localhost:5000", cr.Credentials("alice", "pw"))
    api = FakeApi({("POST", "/auth"): OK})
    assert berth(monkeypatch, api, "login", "localhost:5000") == 0
    assert api.calls[0][3] == {"username": "alice", "password": "pw", "serveraddress": "localhost:5000"}
    assert capsys.readouterr().out == "Authenticating with existing credentials...\nLogin Succeeded\n"


def test_logout(cfg, stdin, capsys, monkeypatch):
    api = FakeApi()
    cr.store("localhost:5000", cr.Credentials("alice", "pw"))
    cr.store("docker.io", cr.Credentials("bob", "pw"))
    assert berth(monkeypatch, api, "logout", "http://localhost:5000") == 0
    assert capsys.readouterr().out == "Removing login credentials for localhost:5000\n"
    assert auth_entry(cfg, "localhost:5000") is None and auth_entry(cfg, HUB)
    assert berth(monkeypatch, api, "logout", "localhost:5000") == 0
    assert capsys.readouterr().out == "Not logged in to localhost:5000\n"
    assert berth(monkeypatch, api, "logout") == 0
    assert capsys.readouterr().out == f"Removing login credentials for {HUB}\n"
    assert json.loads((cfg / "config.json").read_text()) == {"auths": {}}
    assert api.calls == []  # logout never talks to the daemon


def test_docker_written_config_round_trip(cfg, stdin, capsys, monkeypatch):
    """A config.json as docker writes it is read, kept (unknown keys too) and extended in docker's shape."""
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({
        "auths": {HUB: {"auth": b64("alice:hub-pw")}}, "currentContext": "default",
        "plugins": {"x": {"y": "z"}}}, indent="\t"))
    api = FakeApi({("POST", "/auth"): OK})
    assert berth(monkeypatch, api, "login", "-u", "bob", "-p", "pw", "localhost:5000") == 0
    conf = json.loads((cfg / "config.json").read_text())
    assert conf == {"auths": {HUB: {"auth": b64("alice:hub-pw")}, "localhost:5000": {"auth": b64("bob:pw")}},
                    "currentContext": "default", "plugins": {"x": {"y": "z"}}}
    header = json.loads(base64.urlsafe_b64decode(cr.auth_header_for_image("busybox")))
    assert header == {"username": "alice", "password": "hub-pw", "serveraddress": HUB}


def test_login_direct_call_propagates_daemon_errors(cfg, stdin):
    api = FakeApi({("POST", "/auth"): BerthError(DENIED)})
    with pytest.raises(BerthError, match="401 Unauthorized"):
        login_cmd.login(api, "login", ["-u", "a", "-p", "b", "localhost:5000"])
