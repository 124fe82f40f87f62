"""Image references (berth.types.reference) against Docker's distribution/reference rules."""
from __future__ import annotations

import pytest

from berth.errors import InvalidArgument
from berth.types.reference import Reference, looks_like_id, parse

HEX = "0123456789abcdef" * 4  # 64 lowercase hex digits


def test_hex_fixture_is_64_digits():
    assert len(HEX) == 64


# -- normalisation ------------------------------------------------------------------

@pytest.mark.parametrize("name, domain, path, tag, digest, familiar", [
    ("busybox", "docker.io", "library/busybox", "latest", None, "busybox:latest"),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "busybox:1.36"),
    ("user/app", "docker.io", "user/app", "latest", None, "user/app:latest"),
    ("user/app:v2", "docker.io", "user/app", "v2", None, "user/app:v2"),
    ("localhost:5000/x:1", "localhost:5000", "x", "1", None, "localhost:5000/x:1"),
    ("localhost/x", "localhost", "x", "latest", None, "localhost/x:latest"),
    (f"127.0.0.1:5000/a/b@sha256:{HEX}", "127.0.0.1:5000", "a/b", None, f"sha256:{HEX}",
     f"127.0.0.1:5000/a/b@sha256:{HEX}"),
    ("docker.io/library/x", "docker.io", "library/x", "latest", None, "x:latest"),
    ("docker.io/x", "docker.io", "library/x", "latest", None, "x:latest"),
    ("docker.io/user/x:t", "docker.io", "user/x", "t", None, "user/x:t"),
    ("index.docker.io/library/x", "docker.io", "library/x", "latest", None, "x:latest"),
    ("index.docker.io/x", "docker.io", "library/x", "latest", None, "x:latest"),
    ("index.docker.io/user/x:t", "docker.io", "user/x", "t", None, "user/x:t"),
    ("example.com/team/app:1.0", "example.com", "team/app", "1.0", None, "example.com/team/app:1.0"),
    ("registry:5000/app", "registry:5000", "app", "latest", None, "registry:5000/app:latest"),
    ("localhost:5000/library/x", "localhost:5000", "library/x", "latest", None,
     "localhost:5000/library/x:latest"),
    ("a.b-c_d__e/f--g.h", "a.b-c_d__e", "f--g.h", "latest", None, "a.b-c_d__e/f--g.h:latest"),
    ("my-app_1.2", "docker.io", "library/my-app_1.2", "latest", None, "my-app_1.2:latest"),
    ("[::1]:5000/x", "[::1]:5000", "x", "latest", None, "[::1]:5000/x:latest"),
])
def test_parse_normalises_like_docker(name, domain, path, tag, digest, familiar):
    ref = parse(name)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == familiar


def test_repository_is_full_name():
    assert parse("busybox").repository == "docker.io/library/busybox"
    assert parse("user/app:1").repository == "docker.io/user/app"
    assert parse("localhost:5000/x:1").repository == "localhost:5000/x"


def test_tag_and_digest_together():
    ref = parse(f"busybox:1.36@sha256:{HEX}")
    assert ref.tag == "1.36"
    assert ref.digest == f"sha256:{HEX}"
    assert str(ref) == f"busybox:1.36@sha256:{HEX}"


def test_digest_only_gets_no_default_tag():
    ref = parse(f"busybox@sha256:{HEX}")
    assert ref.tag is None
    assert str(ref) == f"busybox@sha256:{HEX}"


def test_default_tag_none_leaves_tag_unset():
    ref = parse("busybox", default_tag=None)
    assert ref.tag is None
    assert str(ref) == "busybox"
    assert parse("busybox:1", default_tag=None).tag == "1"


def test_custom_default_tag():
    assert parse("busybox", default_tag="edge").tag == "edge"


def test_port_only_name_is_a_tag_on_docker_hub():
    # Docker: a name without "/" is always a Docker Hub library image; ":5000" is its tag.
    ref = parse("localhost:5000")
    assert (ref.domain, ref.path, ref.tag) == ("docker.io", "library/localhost", "5000")


def test_uppercase_first_component_is_a_domain():
    # Docker treats an uppercase first component as a registry host name.
    ref = parse("Registry/app")
    assert (ref.domain, ref.path) == ("Registry", "app")


def test_uppercase_tag_allowed():
    assert parse("busybox:V1_X-y.z").tag == "V1_X-y.z"


def test_reference_equality():
    assert parse("busybox") == parse("docker.io/library/busybox:latest")
    assert parse("busybox") == Reference("docker.io", "library/busybox", "latest", None)


def test_with_tag():
    ref = parse(f"busybox@sha256:{HEX}").with_tag("2")
    assert ref.tag == "2" and ref.digest is None
    assert str(ref) == "busybox:2"


def test_max_tag_length():
    assert parse("busybox:" + "a" * 128).tag == "a" * 128
    with pytest.raises(InvalidArgument):
        parse("busybox:" + "a" * 129)


def test_sha512_digest_accepted():
    ref = parse("busybox@sha512:" + "ab" * 64)
    assert ref.digest == "sha512:" + "ab" * 64


def test_long_docker_hub_path_within_limit():
    # Docker limits the path (remote name) to 255 characters, not domain + path.
    name = "a" * (255 - len("library/"))
    ref = parse(name)
    assert ref.path == "library/" + name


def test_too_long_name_rejected():
    with pytest.raises(InvalidArgument):
        parse("u/" + "a" * 300)


# -- invalid references ----------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "",
    "busybox ",
    " busybox",
    "busybox\n",
    "\tbusybox",
    "a:b:c",
    "Busybox",
    "BUSYBOX:latest",
    "user/App",
    "docker.io/library/Busybox",
    "busybox:la$t",
    "busybox:-tag",
    "busybox:.tag",
    "busybox:",
    "busybox:tag with space",
    "busybox@",
    "busybox@sha256:xyz",
    "busybox@sha256:",
    ":latest",
    "/busybox",
    "busybox/",
    "user//app",
    "-busybox",
    "busybox-",
    "busy..box",
    "busy___box",
    "busy box",
    "user/app:tag:tag",
    "busybox@sha256:" + HEX + "@sha256:" + HEX,
])
def test_invalid_references(name):
    with pytest.raises(InvalidArgument):
        parse(name)


def test_uppercase_message_mentions_lowercase():
    with pytest.raises(InvalidArgument) as e:
        parse("Busybox")
    assert "must be lowercase" in e.value.message
    assert "invalid reference format" in e.value.message


def test_tag_with_non_ascii_word_character_rejected():
    # Docker's tag pattern [\w][\w.-]* is ASCII-only (Go regexp \w is [0-9A-Za-z_]).
    with pytest.raises(InvalidArgument):
        parse("busybox:t\u00e4g")


def test_non_ascii_tag_first_character_rejected():
    with pytest.raises(InvalidArgument):
        parse("busybox:\u00e9t\u00e9")


def test_embedded_newline_in_component_rejected():
    # Python's "$" also matches before a trailing newline; Docker's anchored regexps do not.
    with pytest.raises(InvalidArgument):
        parse("busy\n/box")


def test_embedded_newline_before_digest_rejected():
    with pytest.raises(InvalidArgument):
        parse(f"busybox:1\n@sha256:{HEX}")


def test_64_hex_name_is_not_a_repository():
    # Docker: "invalid repository name (...), cannot specify 64-byte hexadecimal strings".
    with pytest.raises(InvalidArgument):
        parse(HEX)


@pytest.mark.parametrize("digest", [
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha256:" + "a" * 32,
    "sha256:" + "A" * 64,
])
def test_digest_with_wrong_sha256_encoding_rejected(digest):
    # Docker validates the digest with go-digest: sha256 needs exactly 64 lowercase hex digits.
    with pytest.raises(InvalidArgument):
        parse(f"busybox@{digest}")


def test_digest_with_unknown_algorithm_rejected():
    # go-digest: "unsupported digest algorithm".
    with pytest.raises(InvalidArgument):
        parse("busybox@md5:" + "a" * 32)


@pytest.mark.parametrize("name", [
    "localhost:abc/x",        # port must be numeric
    "local_host:5000/x",      # "_" is not allowed in a host name
    "-example.com/x",         # host name components cannot start with "-"
    "example-.com/x",         # ... nor end with "-"
    "example..com/x",
    "example.com:/x",
    "busybox:a/b",            # "busybox:a" is no host:port, and a tag cannot hold "/"
])
def test_invalid_registry_domain_rejected(name):
    with pytest.raises(InvalidArgument):
        parse(name)


# -- IDs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("s, expected", [
    (HEX, True),
    ("sha256:" + HEX, True),
    (HEX[:63], False),
    (HEX + "0", False),
    (HEX.upper(), False),
    ("sha256:" + HEX.upper(), False),
    ("sha512:" + HEX, False),
    ("busybox", False),
    ("", False),
    ("sha256:", False),
    (HEX + "\n", False),
])
def test_looks_like_id(s, expected):
    assert looks_like_id(s) is expected
