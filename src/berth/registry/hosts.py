"""Where a registry domain is reached: scheme, TLS trust and Docker Hub's endpoint and mirrors.

As dockerd: ``docker.io`` is served by ``registry-1.docker.io`` (after any ``registry-mirrors``);
``localhost``, ``127.0.0.0/8`` and the ``insecure-registries`` hosts or CIDRs may use plain HTTP
(TLS without verification is tried first, then HTTP, and the scheme that worked is remembered).
TLS trusts the system CAs plus ``<certs_dir>/<host:port>/*.crt``; ``*.cert`` + ``*.key`` pairs
there are client certificates.
"""
from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from urllib.parse import urlparse

from berth.errors import InvalidArgument
from berth.types.reference import DEFAULT_DOMAIN

HUB_ENDPOINT = "registry-1.docker.io"
HUB_AUTH_KEY = "https://index.docker.io/v1/"  # Docker Hub's key in ~/.docker/config.json
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True)
class Endpoint:
    host: str          # host[:port] as requests address it
    secure: bool       # TLS must verify; when False, TLS is tried unverified and then plain HTTP
    mirror: bool = False
    scheme: str = ""   # fixed by a mirror URL; else chosen by Hosts

    def __str__(self) -> str:
        return self.host


def auth_key(domain: str) -> str:
    """The key under which credentials for ``domain`` are stored (Docker Hub's is a URL)."""
    return HUB_AUTH_KEY if domain in (DEFAULT_DOMAIN, "index.docker.io", HUB_ENDPOINT) else domain


class Hosts:
    def __init__(self, insecure: list[str] | None = None, mirrors: list[str] | None = None,
                 certs_dir: str = "/etc/berth/certs.d") -> None:
        self.certs_dir = certs_dir
        self._nets, self._names = [], set()
        for entry in insecure or []:
            try:
                self._nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self._names.add(entry.removeprefix("http://").removeprefix("https://").rstrip("/"))
        self._mirrors = [_mirror(m) for m in mirrors or []]
        self._schemes: dict[str, str] = {}
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}

    @property
    def insecure_cidrs(self) -> list[str]:
        return ["127.0.0.0/8", *(str(n) for n in self._nets)]

    @property
    def insecure_names(self) -> list[str]:
        return sorted(self._names)

    @property
    def mirror_urls(self) -> list[str]:
        return [f"{m.scheme}://{m.host}/" for m in self._mirrors]

    def is_secure(self, host: str) -> bool:
        if host in self._names:
            return False
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]")
        if name == "localhost":
            return False
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return True
        return not (ip in _LOOPBACK or ip == ipaddress.ip_address("::1") or any(ip in n for n in self._nets))

    def endpoints(self, domain: str, push: bool = False) -> list[Endpoint]:
        """Where to reach ``domain``, in the order to try (mirrors serve pulls from Docker Hub only)."""
        if domain == DEFAULT_DOMAIN:
            hub = Endpoint(HUB_ENDPOINT, True)
            return [hub] if push else [*self._mirrors, hub]
        return [Endpoint(domain, self.is_secure(domain))]

    def schemes(self, ep: Endpoint) -> list[str]:
        """The URL schemes to try for ``ep``, the one that worked before first."""
        if ep.scheme:
            return [ep.scheme]
        if ep.secure:
            return ["https"]
        known = self._schemes.get(ep.host)
        return [known] if known else ["https", "http"]

    def worked(self, ep: Endpoint, scheme: str) -> None:
        self._schemes[ep.host] = scheme

    def ssl_context(self, ep: Endpoint) -> ssl.SSLContext:
        key = (ep.host, ep.secure)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = self._make_context(ep)
        return ctx

    def _make_context(self, ep: Endpoint) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not ep.secure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        folder = os.path.join(self.certs_dir, ep.host)
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if name.endswith(".crt"):
                    ctx.load_verify_locations(cafile=path)
                elif name.endswith(".cert"):
                    key = path[:-len(".cert")] + ".key"
                    if not os.path.exists(key):
                        raise InvalidArgument(f"missing key {os.path.basename(key)} for client certificate {name}")
                    ctx.load_cert_chain(path, key)
        return ctx


def _mirror(url: str) -> Endpoint:
    u = urlparse(url if "://" in url else "https://" + url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise InvalidArgument(f"invalid mirror: {url!r} is not a http(s) URL")
    return Endpoint(u.netloc, u.scheme == "https", mirror=True, scheme=u.scheme)
