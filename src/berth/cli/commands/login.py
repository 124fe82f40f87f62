"""``berth login`` and ``berth logout``: check credentials with the daemon (``POST /auth``) and keep them where the
docker CLI does (``berth.client.credentials``)."""
from __future__ import annotations

import sys

from berth.cli.common import Exit, parser
from berth.client import credentials
from berth.client.transport import Transport
from berth.errors import BerthError

HUB_HINT = ("Log in with your Docker ID or email address to push and pull images from Docker Hub. If you don't have "
            "a Docker ID, head over to https://hub.docker.com/ to create one.")
PASSWORD_FLAG_WARNING = "WARNING! Using --password via the CLI is insecure. Use --password-stdin."


def _fail(message: str) -> Exit:
    print(message, file=sys.stderr)
    return Exit(1)


def _server(arg: str | None) -> str:
    """docker's choice of address: Docker Hub's v1 URL when none (or ``docker.io``), else ``host[:port]``."""
    return credentials.registry_key(arg or "")


def _prompt_username(default: str, hub: bool) -> str:
    if hub:
        print(HUB_HINT)
    label = f"Username ({default}): " if default else "Username: "
    print(label, end="", flush=True)
    line = sys.stdin.readline()
    if not line:
        raise _fail("Error: Cannot perform an interactive login from a non TTY device")
    return line.strip() or default


def _prompt_password() -> str:
    import getpass
    try:
        return getpass.getpass("Password: ")
    except EOFError:
        return ""


def _authenticate(api: Transport, creds: credentials.Credentials) -> dict:
    body = {"username": creds.username, "password": creds.password, "serveraddress": creds.server_address}
    if creds.identity_token:
        body = {"username": creds.username, "serveraddress": creds.server_address,
                "identitytoken": creds.identity_token}
    return api.request("POST", "/auth", None, body).json() or {}


def _save(server: str, creds: credentials.Credentials, answer: dict) -> None:
    token = answer.get("IdentityToken") or ""
    if token:
        creds = credentials.Credentials(creds.username, "", token, creds.server_address)
    conf = credentials.load_config()
    helpers = conf.get("credHelpers") or {}
    if creds.password and not (conf.get("credsStore") or helpers.get(server)):
        print(f"WARNING! Your password will be stored unencrypted in {credentials.config_path()}.\n"
              "Configure a credential helper to remove this warning. See\n"
              "https://docs.docker.com/go/credential-store/\n", file=sys.stderr)
    try:
        credentials.store(server, creds)
    except OSError as e:
        raise _fail(f"Error saving credentials: {e}") from None
    except BerthError as e:  # a credential helper's error
        raise _fail(f"Error saving credentials: {e.message}") from None


def login(api: Transport, name: str, argv: list[str]) -> int:
    """``berth login [-u USER] [-p PASS | --password-stdin] [SERVER]``."""
    p = parser(name, "[OPTIONS] [SERVER]")
    p.add_argument("-u", "--username", default="")
    p.add_argument("-p", "--password", default=None)
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("server", nargs="?")
    a = p.parse_args(argv)
    server = _server(a.server)
    hub = server == credentials.INDEX_SERVER
    username, password = a.username.strip(), a.password or None
    if password is not None:
        print(PASSWORD_FLAG_WARNING, file=sys.stderr)
        if a.password_stdin:
            raise _fail("--password and --password-stdin are mutually exclusive")
    if a.password_stdin:
        if not username:
            raise _fail("Must provide --username with --password-stdin")
        password = sys.stdin.read()
        password = password[:-1] if password.endswith("\n") else password
        password = password[:-1] if password.endswith("\r") else password

    stored = None
    if not username and password is None:
        stored = credentials.get(server)
        if stored and (stored.password or stored.identity_token):
            print("Authenticating with existing credentials...")
            try:
                answer = _authenticate(api, stored)
            except BerthError as e:  # as docker: fall back to asking
                print(f"Login did not succeed, error: {e.message}", file=sys.stderr)
            else:
                _save(server, stored, answer)
                print(answer.get("Status") or "Login Succeeded")
                return 0
    if not username or password is None:
        if not sys.stdin.isatty():
            raise _fail("Error: Cannot perform an interactive login from a non TTY device")
        if not username:
            username = _prompt_username(stored.username if stored else "", hub)
        if not username:
            raise _fail("Error: Non-null Username Required")
        if password is None:
            password = _prompt_password()
    if not password:
        raise _fail("Error: Password Required")

    creds = credentials.Credentials(username=username, password=password, server_address=server)
    answer = _authenticate(api, creds)  # a daemon error propagates: printed by run_command, nothing stored
    _save(server, creds, answer)
    print(answer.get("Status") or "Login Succeeded")
    return 0


def logout(api: Transport, name: str, argv: list[str]) -> int:
    """``berth logout [SERVER]``: what docker prints, and docker's empty-handed message when not logged in."""
    p = parser(name, "[SERVER]")
    p.add_argument("server", nargs="?")
    a = p.parse_args(argv)
    server = _server(a.server)
    if not credentials.is_logged_in(server):
        print(f"Not logged in to {server}")
        return 0
    print(f"Removing login credentials for {server}")
    try:
        credentials.erase(server)
    except BerthError as e:  # a credential helper's failure is a warning, as docker
        print(f"WARNING: could not erase credentials: {server}: {e.message}", file=sys.stderr)
    return 0
