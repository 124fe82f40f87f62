"""Test fixtures for Debian's docker-registry (CNCF distribution 2.8): a private registry on 127.0.0.1 with no
auth, htpasswd auth or token auth (with a small token issuer playing Docker Hub's), plus helpers that write a
docker-archive and push it with skopeo. Nothing here talks to anything but 127.0.0.1."""
from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import ipaddress
import json
import os
import platform
import signal
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from busybox_rootfs import make_rootfs_tar  # noqa: E402

from tests.support.registry_server import Loopback, free_port  # noqa: E402

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"
DEFAULT_USERS = {"alice": "wonderland"}
SERVICE = "berth-test-registry"
ISSUER = "berth-test-token-issuer"


def missing_tools() -> str | None:
    """None when docker-registry and skopeo are installed, else the reason to skip."""
    for tool in (REGISTRY_BIN, SKOPEO):
        if not os.path.exists(tool):
            return f"{tool} is not installed"
    return None


def _yaml(value, indent: int = 0) -> str:
    """A minimal YAML writer for nested dicts of scalars and lists (what config.yml needs)."""
    pad, out = " " * indent, []
    for k, v in value.items():
        if isinstance(v, dict):
            out.append(f"{pad}{k}:\n{_yaml(v, indent + 2)}" if v else f"{pad}{k}: {{}}\n")
        elif isinstance(v, list):
            out.append(f"{pad}{k}: [{', '.join(json.dumps(x) for x in v)}]\n")
        elif isinstance(v, bool):
            out.append(f"{pad}{k}: {'true' if v else 'false'}\n")
        else:
            out.append(f"{pad}{k}: {json.dumps(v) if isinstance(v, str) else v}\n")
    return "".join(out)


# ---------------------------------------------------------------- keys, certificates and JWTs

def make_key_and_cert(common_name: str, ip: str | None = None):
    """An RSA key and a self-signed certificate (CA and leaf at once), valid for a day either side of now."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return key, builder.sign(key, hashes.SHA256())


def _pem(key, cert) -> tuple[bytes, bytes]:
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_key) -> str:
    """libtrust's key ID: SHA-256 of the DER SubjectPublicKeyInfo, 240 bits, base32, in 12 groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, 48, 4))


def sign_jwt(key, cert, claims: dict, key_header: str = "x5c") -> str:
    """An RS256 JWT as distribution's token auth accepts it; the key named by ``x5c`` (the cert) or ``kid``."""
    header: dict = {"typ": "JWT", "alg": "RS256"}
    if key_header == "x5c":
        header["x5c"] = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
    else:
        header["kid"] = libtrust_key_id(key.public_key())
    signing_input = _b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + _b64url(
        json.dumps(claims, separators=(",", ":")).encode())
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64url(sig)


# ---------------------------------------------------------------- the token issuer

class TokenIssuer:
    """Docker's token protocol on its own 127.0.0.1 port, as Docker Hub answers it: anonymous requests get pull
    on public repositories (names starting with one of ``public_prefixes``) and nothing else, bad credentials get
    401, good ones get the actions asked for. ``token_requests`` records (scope, user) for each request
    (several scopes joined by a space; user "" when anonymous, "?" when refused for bad credentials)."""

    def __init__(self, workdir: str, users: dict[str, str], public_prefixes: tuple[str, ...] = ("public/",),
                 service: str = SERVICE, issuer: str = ISSUER, key_header: str = "x5c", expires_in: int = 300):
        self.users, self.public_prefixes = dict(users), tuple(public_prefixes)
        self.service, self.issuer, self.key_header, self.expires_in = service, issuer, key_header, expires_in
        self.key, self.cert = make_key_and_cert("berth test token issuer")
        self.cert_path = os.path.join(workdir, "token-cert.pem")
        Path(self.cert_path).write_bytes(_pem(self.key, self.cert)[1])
        self.token_requests: list[tuple[str, str]] = []
        self.refused: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        assert self._server, "the token issuer is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def start(self) -> "TokenIssuer":
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                issuer._handle(self)

            def log_message(self, fmt, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="token-issuer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def grant(self, scope: str, user: str) -> list[dict]:
        """The access entries one scope (``repository:NAME:pull,push``) gets for ``user`` ("" = anonymous)."""
        parts = scope.split(":")
        if len(parts) < 3:
            return []
        kind, name, actions = parts[0], ":".join(parts[1:-1]), [a for a in parts[-1].split(",") if a]
        if kind != "repository":
            return []
        if not user:
            actions = ["pull"] if "pull" in actions and name.startswith(self.public_prefixes) else []
        return [{"type": kind, "name": name, "actions": actions}] if actions else []

    def _user(self, handler: BaseHTTPRequestHandler) -> str | None:
        """The authenticated user, "" when anonymous, None when the credentials are wrong."""
        header = handler.headers.get("Authorization", "")
        if not header:
            return ""
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user if user in self.users and self.users[user] == password else None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = parse_qs(url.query)
        scopes = query.get("scope", [])
        user = self._user(handler)
        self.token_requests.append((" ".join(scopes), user if user is not None else "?"))
        if url.path != "/token":
            return self._send(handler, 404, {"details": "not found"})
        if user is None:
            self.refused.append(" ".join(scopes))
            return self._send(handler, 401, {"details": "incorrect username or password"},
                              {"WWW-Authenticate": 'Basic realm="berth test token issuer"'})
        service = query.get("service", [self.service])[0]
        access = [entry for scope in scopes for s in scope.split(" ") if s for entry in self.grant(s, user)]
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user, "aud": service, "exp": now + self.expires_in, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        token = sign_jwt(self.key, self.cert, claims, self.key_header)
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._send(handler, 200, {"token": token, "access_token": token, "expires_in": self.expires_in,
                                  "issued_at": issued})

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)


# ---------------------------------------------------------------- the registry

class DistributionRegistry(Loopback):
    """One docker-registry process on 127.0.0.1 with its storage, config and log under ``workdir``."""

    def __init__(self, workdir: str, auth: str | None = None, users: dict[str, str] | None = None,
                 tls: bool = False, public_prefixes: tuple[str, ...] = ("public/",), key_header: str = "x5c"):
        if auth not in (None, "htpasswd", "token"):
            raise ValueError(f"auth must be None, 'htpasswd' or 'token', not {auth!r}")
        self.workdir, self.auth, self.tls = workdir, auth, tls
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.public_prefixes, self.key_header = public_prefixes, key_header
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.token: TokenIssuer | None = None
        self.config_path = os.path.join(workdir, "config.yml")
        self.log_path = os.path.join(workdir, "registry.log")
        self.storage = os.path.join(workdir, "storage")
        self.cert_path = self.key_path = ""

    @property
    def token_requests(self) -> list[tuple[str, str]]:
        return self.token.token_requests if self.token else []

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _config(self) -> dict:
        conf: dict = {
            "version": "0.1",
            "log": {"level": "warn", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": self.storage}, "delete": {"enabled": True},
                        "cache": {"blobdescriptor": "inmemory"}, "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": self.addr, "secret": uuid.uuid4().hex, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if self.tls:
            conf["http"]["tls"] = {"certificate": self.cert_path, "key": self.key_path}
        if self.auth == "htpasswd":
            conf["auth"] = {"htpasswd": {"realm": "berth-test-realm", "path": os.path.join(self.workdir, "htpasswd")}}
        elif self.auth == "token":
            conf["auth"] = {"token": {"realm": self.token.realm, "service": self.token.service,
                                      "issuer": self.token.issuer, "rootcertbundle": self.token.cert_path}}
        return conf

    def _prepare(self) -> None:
        os.makedirs(self.storage, exist_ok=True)
        if self.tls and not self.cert_path:
            key, cert = make_key_and_cert("127.0.0.1", ip="127.0.0.1")
            key_pem, cert_pem = _pem(key, cert)
            self.key_path, self.cert_path = (os.path.join(self.workdir, n) for n in ("tls-key.pem", "tls-cert.pem"))
            Path(self.key_path).write_bytes(key_pem)
            os.chmod(self.key_path, 0o600)
            Path(self.cert_path).write_bytes(cert_pem)
        if self.auth == "htpasswd":
            import bcrypt
            lines = [f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
                     for u, p in self.users.items()]
            Path(self.workdir, "htpasswd").write_text("".join(lines))
        elif self.auth == "token":
            if self.token is None:
                self.token = TokenIssuer(self.workdir, self.users, self.public_prefixes, key_header=self.key_header)
            if self.token._server is None:
                self.token.start()

    def _probe(self) -> int | None:
        ctx = ssl._create_unverified_context() if self.tls else None
        try:
            with urllib.request.urlopen(self.url + "/v2/", timeout=2, context=ctx) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code
        except (OSError, ValueError):
            return None

    def start(self, timeout: float = 20.0) -> "DistributionRegistry":
        """Pick a free port, write config.yml, start the registry and wait until ``GET /v2/`` answers 200/401."""
        os.makedirs(self.workdir, exist_ok=True)
        self._prepare()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        for _attempt in range(5):
            self.port = free_port()
            Path(self.config_path).write_text(_yaml(self._config()))
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config_path], stdin=subprocess.DEVNULL,
                                             stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._probe() in (200, 401):
                    return self
                time.sleep(0.02)
            else:
                self.stop()
                raise RuntimeError(f"docker-registry did not answer on {self.addr} within {timeout}s:\n{self.log()}")
            if "address already in use" not in self.log():
                break
        code = self.proc.returncode if self.proc else None
        self.stop()
        raise RuntimeError(f"docker-registry exited with {code}:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None
        if self.token is not None:
            self.token.stop()  # kept, with its token_requests, for asserts after stop() and for a restart

    def __enter__(self) -> "DistributionRegistry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---------------------------------------------------------------- images in, with skopeo

def skopeo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run skopeo with --insecure-policy (there is no /etc/containers/policy.json) and an empty auth file (no
    credentials of this machine's leak in); never raises on failure."""
    with tempfile.TemporaryDirectory(prefix="bt-skopeo-auth-") as tmp:
        authfile = os.path.join(tmp, "auth.json")
        Path(authfile).write_text('{"auths": {}}')
        env = {**os.environ, "REGISTRY_AUTH_FILE": authfile}
        return subprocess.run([SKOPEO, "--insecure-policy", *args], capture_output=True, text=True,
                              timeout=timeout, env=env)


def inspect_raw(registry: DistributionRegistry, ref: str, creds: tuple[str, str] | None = None,
                config: bool = False) -> subprocess.CompletedProcess:
    """``skopeo inspect --raw`` (the manifest, or with ``config`` the image config) of ``ref`` in ``registry``."""
    args = ["inspect", "--tls-verify=false", "--raw", *(["--config"] if config else [])]
    if creds:
        args += ["--creds", f"{creds[0]}:{creds[1]}"]
    return skopeo(*args, f"docker://{registry.addr}/{ref}")


def seed(registry: DistributionRegistry, ref: str, archive_path: str, creds: tuple[str, str] | None = None,
         fmt: str = "v2s2") -> None:
    """Copy a docker-archive into ``registry`` as ``ref`` (``REPO:TAG``); AssertionError with skopeo's output
    when it fails."""
    args = ["copy", "--dest-tls-verify=false", "--format", fmt]
    if creds:
        args += ["--dest-creds", f"{creds[0]}:{creds[1]}"]
    p = skopeo(*args, f"docker-archive:{archive_path}", f"docker://{registry.addr}/{ref}")
    if p.returncode != 0:
        raise AssertionError(f"skopeo copy to {registry.addr}/{ref} exited {p.returncode}: {p.stderr}")


def _go_arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None) -> None:
    """A file (or, with ``data`` None, a directory) with fixed owner, mode and mtime."""
    ti = tarfile.TarInfo(name)
    ti.mtime, ti.mode = 1700000000, 0o755 if data is None else 0o644
    if data is None:
        ti.type = tarfile.DIRTYPE
        tar.addfile(ti)
    else:
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))


def layer_tar(files: dict[str, bytes]) -> bytes:
    """A reproducible layer tar from ``{path: content}`` (parent directories added)."""
    buf, seen = io.BytesIO(), set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) not in seen:
                    seen.add("/".join(parts[:i]))
                    _add(tar, "/".join(parts[:i]))
            _add(tar, "/".join(parts), files[path])
    return buf.getvalue()


def make_image_archive(path: str, layers: list[dict[str, bytes]] | None = None, compress: str = "gzip",
                       tag: str | None = None) -> dict:
    """Write a docker-archive at ``path``: one layer tar per ``{path: content}`` dict (default: busybox's rootfs
    from scripts/busybox_rootfs.py), stored gzip-compressed (``compress="gzip"``) or as is (``"none"``).
    Returns ``{"id", "config_digest", "diff_ids", "layer_digests", "config"}`` (id = config digest; layer digests
    are of the stored, possibly compressed, files)."""
    if compress not in ("gzip", "none", None):
        raise ValueError(f"compress must be 'gzip' or 'none', not {compress!r}")
    if layers is None:
        with tempfile.TemporaryDirectory(prefix="bt-rootfs-") as tmp:
            raws = [Path(make_rootfs_tar(os.path.join(tmp, "rootfs.tar"))).read_bytes()]
    else:
        raws = [layer_tar(files) for files in layers]
    diff_ids = ["sha256:" + hashlib.sha256(raw).hexdigest() for raw in raws]
    blobs = [gzip.compress(raw, compresslevel=6, mtime=0) if compress == "gzip" else raw for raw in raws]
    layer_digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
    created = "2023-11-14T22:13:20Z"
    config = {
        "architecture": _go_arch(), "os": "linux", "created": created,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": f"berth test layer {i}"} for i in range(len(raws))],
    }
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    members: list[tuple[str, bytes]] = [(f"{config_hex}.json", config_bytes)]
    layer_paths = []
    for digest, blob in zip(layer_digests, blobs):
        layer_paths.append(f"{digest[7:]}/layer.tar")
        members.append((layer_paths[-1], blob))
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": [tag] if tag else None, "Layers": layer_paths}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            if "/" in name:
                _add(tar, name.split("/")[0])
            _add(tar, name, data)
    return {"id": "sha256:" + config_hex, "config_digest": "sha256:" + config_hex, "diff_ids": diff_ids,
            "layer_digests": layer_digests, "config": config}
