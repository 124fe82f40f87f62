"""Registry credentials where the docker CLI keeps them: ``$DOCKER_CONFIG/config.json`` (default ``~/.docker``),
with ``credHelpers`` (per registry) before ``credsStore`` (for all) before the file's own ``auths``; and the
``X-Registry-Auth`` header value the docker CLI sends with them."""
from __future__ import annotations

import base64
import json
import os
from typing import NamedTuple

from berth.errors import BerthError

INDEX_SERVER = "https://index.docker.io/v1/"
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
TOKEN_USERNAME = "<token>"  # what credential helpers store as Username beside an identity token
NOT_FOUND = "credentials not found in native keychain"


class Credentials(NamedTuple):  # a NamedTuple, not a dataclass: the CLI does not pay for importing dataclasses
    username: str = ""
    password: str = ""
    identity_token: str = ""
    server_address: str = ""


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def hostname(url: str) -> str:
    """docker's ConvertToHostname: drop ``http(s)://`` and anything from the first ``/``."""
    for scheme in ("http://", "https://"):
        if url.startswith(scheme):
            url = url[len(scheme):]
            break
    return url.split("/", 1)[0]


def registry_key(server_or_image_domain: str) -> str:
    """The key docker files a registry's credentials under: Docker Hub (``docker.io``, ``index.docker.io``,
    ``registry-1.docker.io``, its v1 URL, or "") is ``https://index.docker.io/v1/``, others ``host[:port]``."""
    host = hostname(server_or_image_domain.strip())
    return INDEX_SERVER if not host or host.lower() in _HUB_HOSTS else host


# ---------------------------------------------------------------- config.json

def load_config() -> dict:
    """config.json as a dict ({} when there is none); BerthError when it is not JSON."""
    path = config_path()
    try:
        with open(path, encoding="utf-8") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise BerthError(f"loading config file: {path}: {e.strerror or e}") from None
    if not data.strip():
        return {}
    try:
        conf = json.loads(data)
    except ValueError as e:
        raise BerthError(f"loading config file: {path}: {e}") from None
    if not isinstance(conf, dict):
        raise BerthError(f"loading config file: {path}: not a JSON object")
    return conf


def save_config(conf: dict) -> None:
    """Write config.json as docker does (tab-indented), atomically (temporary file + rename), mode 0600;
    a symlinked config.json is written where it points."""
    path = os.path.realpath(config_path())
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = os.path.join(directory, f".config.json.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(conf, indent="\t"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _encode_auth(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode() if username or password else ""


def _decode_auth(auth: str) -> tuple[str, str]:
    try:
        user, sep, password = base64.b64decode(auth, validate=False).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise BerthError("invalid auth configuration file") from None
    if not sep:
        raise BerthError("invalid auth configuration file")
    return user, password.strip("\x00")


def _file_entry(conf: dict, key: str) -> tuple[str, dict] | None:
    """The ``auths`` entry for ``key``: its own, else the first whose hostname matches (docker's fileStore)."""
    auths = conf.get("auths") or {}
    if isinstance(auths.get(key), dict):
        return key, auths[key]
    for name, entry in auths.items():
        if isinstance(entry, dict) and registry_key(name) == key:
            return name, entry
    return None


def _helper_for(conf: dict, key: str) -> str:
    helpers = conf.get("credHelpers") or {}
    return helpers.get(key) or helpers.get(hostname(key)) or conf.get("credsStore") or ""


# ---------------------------------------------------------------- credential helpers

def _run_helper(helper: str, action: str, data: str) -> tuple[int, str]:
    import shutil
    import subprocess
    program = f"docker-credential-{helper}"
    path = shutil.which(program)
    if path is None:
        raise BerthError(f'error {_ACTIONS[action]} credentials - err: exec: "{program}": executable file not '
                         "found in $PATH, out: ``")
    p = subprocess.run([path, action], input=data.encode(), capture_output=True, timeout=60)
    return p.returncode, (p.stdout or p.stderr).decode(errors="replace").strip()


_ACTIONS = {"get": "getting", "store": "storing", "erase": "erasing"}


def _helper_error(action: str, code: int, out: str) -> BerthError:
    return BerthError(f"error {_ACTIONS[action]} credentials - err: exit status {code}, out: `{out}`")


def _helper_get(helper: str, key: str) -> Credentials | None:
    code, out = _run_helper(helper, "get", key)
    if code != 0:
        if NOT_FOUND in out:
            return None
        raise _helper_error("get", code, out)
    try:
        data = json.loads(out)
    except ValueError:
        raise _helper_error("get", code, out) from None
    user, secret = data.get("Username", ""), data.get("Secret", "")
    if not user and not secret:
        return None
    if user == TOKEN_USERNAME:
        return Credentials(identity_token=secret, server_address=key)
    return Credentials(username=user, password=secret, server_address=key)


# ---------------------------------------------------------------- get / store / erase

def get(server: str) -> Credentials | None:
    """The credentials stored for ``server`` (a server address or an image's domain), or None."""
    key = registry_key(server)
    conf = load_config()
    helper = _helper_for(conf, key)
    if helper:
        return _helper_get(helper, key)
    found = _file_entry(conf, key)
    if found is None:
        return None
    entry = found[1]
    if entry.get("auth"):
        user, password = _decode_auth(entry["auth"])
    else:
        user, password = entry.get("username", ""), entry.get("password", "")
    token = entry.get("identitytoken", "")
    if not (user or password or token):
        return None
    return Credentials(username=user, password=password, identity_token=token, server_address=key)


def store(server: str, creds: Credentials) -> None:
    """Store ``creds`` for ``server``: through its credential helper (leaving docker's empty ``auths`` entry in
    config.json), else in config.json's ``auths`` as ``{"auth": base64(user:password)[, "identitytoken"]}``."""
    key = registry_key(server)
    conf = load_config()
    auths = conf.get("auths") if isinstance(conf.get("auths"), dict) else {}
    conf["auths"] = auths
    helper = _helper_for(conf, key)
    if helper:
        secret = creds.identity_token or creds.password
        user = TOKEN_USERNAME if creds.identity_token else creds.username
        payload = json.dumps({"ServerURL": key, "Username": user, "Secret": secret})
        code, out = _run_helper(helper, "store", payload)
        if code != 0:
            raise _helper_error("store", code, out)
        entry: dict = {}
    else:
        entry = {}
        auth = _encode_auth(creds.username, creds.password)
        if auth:
            entry["auth"] = auth
        if creds.identity_token:
            entry["identitytoken"] = creds.identity_token
    old = auths.get(key)
    if isinstance(old, dict) and old.get("email"):
        entry["email"] = old["email"]
    auths[key] = entry
    save_config(conf)


def _logout_keys(key: str) -> list[str]:
    """The keys docker's logout tries: the key, and for others than Docker Hub its old spellings too."""
    if key == INDEX_SERVER:
        return [key]
    return [key, f"http://{key}", f"https://{key}"]


def is_logged_in(server: str) -> bool:
    """Whether config.json's ``auths`` has an entry for ``server`` (what docker's logout checks)."""
    auths = load_config().get("auths") or {}
    return any(k in auths for k in _logout_keys(registry_key(server)))


def erase(server: str) -> bool:
    """Remove what is stored for ``server`` (config.json's entry, and the helper's); False when nothing was."""
    key = registry_key(server)
    conf = load_config()
    auths = conf.get("auths") if isinstance(conf.get("auths"), dict) else {}
    keys = [k for k in _logout_keys(key) if k in auths]
    helper = _helper_for(conf, key)
    erased = False
    if helper:
        for k in keys or [key]:
            code, out = _run_helper(helper, "erase", k)
            if code == 0:
                erased = True
            elif NOT_FOUND not in out:
                raise _helper_error("erase", code, out)
    for k in keys:
        del auths[k]
    if keys:
        save_config(conf)
    return erased or bool(keys)


# ---------------------------------------------------------------- X-Registry-Auth

def _go_json(obj: dict) -> str:
    """JSON as Go's encoding/json writes it: compact, UTF-8, with <, >, & and U+2028/9 escaped."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        s = s.replace(ch, esc)
    return s


def encode_header(creds: Credentials) -> str:
    """docker's EncodeAuthConfig: base64url (with padding) of the AuthConfig JSON, empty fields left out."""
    fields = {"username": creds.username, "password": creds.password, "serveraddress": creds.server_address,
              "identitytoken": creds.identity_token}
    if creds.identity_token:
        fields["password"] = ""
    return base64.urlsafe_b64encode(_go_json({k: v for k, v in fields.items() if v}).encode()).decode()


def decode_header(value: str) -> dict:
    """The JSON an ``X-Registry-Auth`` value carries (padding optional, as the daemon accepts it)."""
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def auth_header(server: str) -> str | None:
    """The ``X-Registry-Auth`` value for ``server``'s stored credentials, None when there are none."""
    creds = get(server)
    return encode_header(creds) if creds else None


def auth_header_for_image(name: str) -> str | None:
    """The ``X-Registry-Auth`` value for the registry an image reference (``name``) lives in."""
    from berth.types.reference import parse
    return auth_header(parse(name, default_tag=None).domain)


def registry_config_header() -> str:
    """``X-Registry-Config`` for a build: every stored login, keyed as in config.json ("e30=" when none)."""
    conf = load_config()
    keys = list((conf.get("auths") or {}).keys()) + list((conf.get("credHelpers") or {}).keys())
    out = {}
    for key in dict.fromkeys(keys):
        creds = get(key)
        if creds is None:
            continue
        out[key] = {k: v for k, v in {"username": creds.username, "password": creds.password,
                                      "serveraddress": creds.server_address or key,
                                      "identitytoken": creds.identity_token}.items() if v}
    return base64.urlsafe_b64encode(_go_json(out).encode()).decode() if out else "e30="
