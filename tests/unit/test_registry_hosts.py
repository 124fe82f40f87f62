"""berth.registry.hosts: which registries may use HTTP, Docker Hub's endpoint and mirrors, TLS material."""
from __future__ import annotations

import datetime
import os
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from berth.errors import InvalidArgument
from berth.registry.hosts import HUB_AUTH_KEY, HUB_ENDPOINT, Endpoint, Hosts, auth_key


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:5000", "127.9.8.7:443",
                                  "[::1]", "[::1]:5000"])
def test_loopback_is_insecure(host):
    assert Hosts().is_secure(host) is False


@pytest.mark.parametrize("host", ["docker.io", "registry-1.docker.io", "ghcr.io", "quay.io:443",
                                  "myreg.example:5000", "10.1.2.3:5000", "[2001:db8::1]:5000", "128.0.0.1",
                                  "localhost.example.com"])
def test_public_names_are_secure(host):
    assert Hosts().is_secure(host) is True


def test_insecure_names_and_cidrs():
    hosts = Hosts(insecure=["myreg.example:5000", "http://plain.example/", "10.0.0.0/8", "192.168.1.7",
                            "2001:db8::/32"])
    assert hosts.is_secure("myreg.example:5000") is False
    assert hosts.is_secure("plain.example") is False
    assert hosts.is_secure("myreg.example") is True  # a name matches with its port only
    assert hosts.is_secure("10.200.3.4") is False
    assert hosts.is_secure("10.200.3.4:5000") is False
    assert hosts.is_secure("11.0.0.1:5000") is True
    assert hosts.is_secure("192.168.1.7:5000") is False
    assert hosts.is_secure("192.168.1.8:5000") is True
    assert hosts.is_secure("[2001:db8::5]:5000") is False
    assert hosts.is_secure("[2001:db9::5]:5000") is True


def test_docker_hub_endpoints_and_mirrors():
    hosts = Hosts(mirrors=["https://mirror.example", "http://10.0.0.5:5000/"])
    pull = hosts.endpoints("docker.io")
    assert pull == [Endpoint("mirror.example", True, mirror=True, scheme="https"),
                    Endpoint("10.0.0.5:5000", False, mirror=True, scheme="http"),
                    Endpoint(HUB_ENDPOINT, True)]
    assert hosts.endpoints("docker.io", push=True) == [Endpoint(HUB_ENDPOINT, True)]
    assert Hosts().endpoints("docker.io") == [Endpoint("registry-1.docker.io", True)]
    assert str(pull[1]) == "10.0.0.5:5000"


def test_mirror_without_scheme_is_https():
    assert Hosts(mirrors=["mirror.example:443"]).endpoints("docker.io")[0] == Endpoint(
        "mirror.example:443", True, mirror=True, scheme="https")


def test_other_domains_have_one_endpoint_and_no_mirrors():
    hosts = Hosts(mirrors=["https://mirror.example"])
    assert hosts.endpoints("ghcr.io") == [Endpoint("ghcr.io", True)]
    assert hosts.endpoints("localhost:5000") == [Endpoint("localhost:5000", False)]
    assert hosts.endpoints("localhost:5000", push=True) == [Endpoint("localhost:5000", False)]


@pytest.mark.parametrize("url", ["ftp://mirror.example", "https://", "http:///path", "unix:///run/x.sock"])
def test_invalid_mirror(url):
    with pytest.raises(InvalidArgument, match="invalid mirror"):
        Hosts(mirrors=[url])


def test_schemes_and_worked_memory():
    hosts = Hosts()
    secure, insecure = Endpoint("ghcr.io", True), Endpoint("localhost:5000", False)
    assert hosts.schemes(secure) == ["https"]
    assert hosts.schemes(insecure) == ["https", "http"]
    hosts.worked(insecure, "http")
    assert hosts.schemes(insecure) == ["http"]
    assert hosts.schemes(Endpoint("localhost:5001", False)) == ["https", "http"]
    hosts.worked(secure, "http")  # a secure endpoint never falls back to HTTP
    assert hosts.schemes(secure) == ["https"]
    assert hosts.schemes(Endpoint("10.0.0.5:5000", False, mirror=True, scheme="http")) == ["http"]
    assert Hosts().schemes(insecure) == ["https", "http"]  # memory is per Hosts


@pytest.mark.parametrize("domain, key", [("docker.io", HUB_AUTH_KEY), ("index.docker.io", HUB_AUTH_KEY),
                                         ("registry-1.docker.io", HUB_AUTH_KEY),
                                         ("ghcr.io", "ghcr.io"), ("localhost:5000", "localhost:5000")])
def test_auth_key(domain, key):
    assert auth_key(domain) == key
    assert HUB_AUTH_KEY == "https://index.docker.io/v1/"


def self_signed(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def subjects(ctx: ssl.SSLContext) -> set[str]:
    return {dict(x[0] for x in c["subject"]).get("commonName", "") for c in ctx.get_ca_certs()}


def test_ssl_context_trusts_certs_dir_crt_files(tmp_path):
    ca, _ = self_signed("Berth Test CA")
    write(str(tmp_path / "myreg.example:5000" / "ca.crt"), ca)
    hosts = Hosts(certs_dir=str(tmp_path))
    ctx = hosts.ssl_context(Endpoint("myreg.example:5000", True))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert "Berth Test CA" in subjects(ctx)
    assert hosts.ssl_context(Endpoint("myreg.example:5000", True)) is ctx  # built once
    other = hosts.ssl_context(Endpoint("other.example", True))
    assert "Berth Test CA" not in subjects(other)


def test_ssl_context_for_insecure_endpoint_does_not_verify(tmp_path):
    ctx = Hosts(certs_dir=str(tmp_path)).ssl_context(Endpoint("localhost:5000", False))
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname


def test_ssl_context_loads_client_certificate_pair(tmp_path, monkeypatch):
    cert, key = self_signed("client")
    write(str(tmp_path / "reg.example" / "client.cert"), cert)
    write(str(tmp_path / "reg.example" / "client.key"), key)
    loaded: list[tuple] = []
    real = ssl.SSLContext.load_cert_chain

    def spy(self, certfile, keyfile=None, password=None):
        loaded.append((os.path.basename(certfile), os.path.basename(keyfile)))
        return real(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    Hosts(certs_dir=str(tmp_path)).ssl_context(Endpoint("reg.example", True))
    assert loaded == [("client.cert", "client.key")]


def test_client_certificate_with_a_key_that_does_not_match_fails(tmp_path):
    cert, _ = self_signed("client")
    _, other_key = self_signed("other")
    write(str(tmp_path / "reg.example" / "client.cert"), cert)
    write(str(tmp_path / "reg.example" / "client.key"), other_key)
    with pytest.raises(ssl.SSLError):
        Hosts(certs_dir=str(tmp_path)).ssl_context(Endpoint("reg.example", True))


def test_client_certificate_without_key_is_invalid(tmp_path):
    cert, _ = self_signed("client")
    write(str(tmp_path / "reg.example" / "client.cert"), cert)
    with pytest.raises(InvalidArgument, match="missing key client.key for client certificate client.cert"):
        Hosts(certs_dir=str(tmp_path)).ssl_context(Endpoint("reg.example", True))


def test_missing_certs_dir_is_fine(tmp_path):
    ctx = Hosts(certs_dir=str(tmp_path / "absent")).ssl_context(Endpoint("reg.example", True))
    assert ctx.verify_mode == ssl.CERT_REQUIRED
