"""``berth build`` and ``berth builder prune``: the request, the context tar and the output, checked against what
docker CLI 28.2.2's classic builder (``DOCKER_BUILDKIT=0``) sent to a recording server and printed for the
same answers; no daemon (a fake transport)."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import sys
import tarfile

import pytest

from berth.cli import build_context as bc
from berth.cli.commands import build as b
from berth.cli.common import Exit, Usage
from berth.cli.main import COMMANDS, _resolve
from berth.client.transport import Transport
from berth.errors import InvalidArgument
from tests.support.fake_api import FakeApi

ID = "sha256:" + "0123456789abcdef" * 4


# ---------------------------------------------------------------- a fake daemon connection

class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read1(self, n: int = 65536) -> bytes:
        out, self.data = self.data[:7], self.data[7:]  # small pieces: messages cut anywhere
        return out


class _Resp:
    def __init__(self, data: bytes) -> None:
        self.raw = _Raw(data)
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _Conn:
    def __init__(self, broken: bool) -> None:
        self.broken = broken
        self.sent = None

    def send_request(self, method, target, headers, body):
        data = bytearray()
        for chunk in body:
            data += chunk
            if self.broken:
                raise BrokenPipeError(32, "Broken pipe")
        self.sent = (method, target, dict(headers), bytes(data))


class BuildApi:
    """The transport's calls ``berth build`` makes: a connection that takes the body, then the answer."""

    url = staticmethod(Transport.url)

    def __init__(self, answer: bytes = b"", error: Exception | None = None, broken: bool = False) -> None:
        self.answer, self.error, self.broken = answer, error, broken
        self.conn: _Conn | None = None

    def _connect(self):
        self.conn = _Conn(self.broken)
        return self.conn

    def finish(self, pending):
        assert pending.conn is self.conn and pending.method == "POST"
        if self.error:
            raise self.error
        return _Resp(self.answer)

    @property
    def target(self) -> str:
        return self.conn.sent[1]

    @property
    def body(self) -> bytes:
        return self.conn.sent[3]

    def names(self) -> list[str]:
        return [m.name for m in tarfile.open(fileobj=io.BytesIO(self.body))]


def answer(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


OK = answer('{"stream":"Step 1/1 : FROM scratch\\n"}', '{"aux":{"ID":"%s"}}' % ID,
            '{"stream":"Successfully built 0123456789ab\\n"}')


@pytest.fixture
def stdin(monkeypatch):
    def set_(data: bytes):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    set_(b"")
    return set_


def run(api, *argv: str, name: str = "build") -> int:
    try:
        return b.build(api, name, list(argv))
    except Exit as e:
        return e.code


def context(tmp_path, files: dict[str, str] | None = None) -> str:
    files = {"Dockerfile": "FROM scratch\n"} if files is None else files
    for rel, text in files.items():
        path = tmp_path / "ctx" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    os.makedirs(tmp_path / "ctx", exist_ok=True)
    return str(tmp_path / "ctx")


# ---------------------------------------------------------------- the request (recorded from docker CLI 28.2.2)

DOCKER_DEFAULT = "/v1.45/build?dockerfile=Dockerfile&t=app%3A1&version=1"
DOCKER_ALL_FLAGS = (
    "/v1.45/build?buildargs=%7B%22A%22%3A%221%22%2C%22BAR%22%3Anull%2C%22FOO%22%3A%22fromenv%22%2C%22X%22%3A%22"
    "%5Cu003c%5Cu0026%5Cu003e%22%7D&cachefrom=%5B%22img1%22%2C%22img2%22%2C%22img3%22%5D&dockerfile=Dockerfile"
    "&extrahosts=h1%3A1.2.3.4&extrahosts=h2%3A%3A%3A1&forcerm=1&labels=%7B%22l1%22%3A%22v%22%2C%22l2%22%3A%22%22%7D"
    "&networkmode=host&nocache=1&platform=linux%2Famd64&pull=1&rm=0&t=app%3A1&t=b%2Fc%3Alatest&target=st&version=1")


def test_default_request_is_dockers(tmp_path, stdin, monkeypatch):
    ctx = context(tmp_path)
    monkeypatch.chdir(ctx)
    api = BuildApi(OK)
    assert run(api, "-t", "app:1", ".") == 0
    method, target, headers, _ = api.conn.sent
    assert (method, target) == ("POST", DOCKER_DEFAULT)
    assert headers == {"Content-Type": "application/x-tar", "X-Registry-Config": "e30="}


def test_every_flag_is_sent_as_docker_sends_it(tmp_path, stdin, monkeypatch):
    ctx = context(tmp_path, {"Dockerfile": "FROM scratch\n", "sub/keep/x": "x"})
    monkeypatch.chdir(ctx)
    monkeypatch.setenv("FOO", "fromenv")
    monkeypatch.delenv("BAR", raising=False)
    api = BuildApi(OK)
    assert run(api, "-t", "app:1", "-t", "b/c:latest", "-f", "sub/keep/../../Dockerfile", "--build-arg", "A=1",
               "--build-arg", "FOO", "--build-arg", "BAR", "--build-arg", "X=<&>", "--label", "l1=v", "--label", "l2",
               "--target", "st", "--no-cache", "--pull", "--network", "host", "--add-host", "h1:1.2.3.4",
               "--add-host", "h2=::1", "--cache-from", "img1", "--cache-from", "img2,img3", "--rm=false",
               "--force-rm", "--platform", "Linux/AMD64", "--iidfile", str(tmp_path / "iid"), ".") == 0
    assert api.target == DOCKER_ALL_FLAGS


@pytest.mark.parametrize("argv, query", [
    (["-q"], "dockerfile=Dockerfile&q=1&version=1"),
    (["--explain", "--rm=true", "--no-cache=1", "--pull=false"], "dockerfile=Dockerfile&explain=1&nocache=1&version=1"),
    (["--network", "default"], "dockerfile=Dockerfile&version=1"),
    (["--network=none", "--quiet=f"], "dockerfile=Dockerfile&networkmode=none&version=1"),
    (["--add-host", "gw:host-gateway", "--add-host", "v6=[::1]"],
     "dockerfile=Dockerfile&extrahosts=gw%3Ahost-gateway&extrahosts=v6%3A%3A%3A1&version=1"),
])
def test_query_for_flags(tmp_path, stdin, argv, query):
    api = BuildApi(OK)
    run(api, *argv, context(tmp_path))
    assert api.target == "/v1.45/build?" + query


def test_platform_defaults_to_docker_default_platform(tmp_path, stdin, monkeypatch):
    monkeypatch.setenv("DOCKER_DEFAULT_PLATFORM", "linux/arm64")
    api = BuildApi(OK)
    run(api, context(tmp_path))
    assert "platform=linux%2Farm64" in api.target


@pytest.mark.parametrize("argv, message", [
    (["-t", "Bad:Tag"], 'invalid argument "Bad:Tag" for "-t, --tag" flag: invalid reference format: repository name '
                        '(library/Bad) must be lowercase'),
    (["--label", "=x"], "invalid argument \"=x\" for \"--label\" flag: invalid label '=x': empty name"),
    (["--label", "a b=1"], "invalid argument \"a b=1\" for \"--label\" flag: label 'a b' contains whitespaces"),
    (["--build-arg", "=x"], 'invalid argument "=x" for "--build-arg" flag: invalid environment variable: =x'),
    (["--add-host", "x"], 'invalid argument "x" for "--add-host" flag: bad format for add-host: "x"'),
    (["--add-host", "h:notip"], 'invalid argument "h:notip" for "--add-host" flag: invalid IP address in add-host: '
                                '"notip"'),
    (["--rm=maybe"], 'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing "maybe": invalid syntax'),
])
def test_flag_errors_are_dockers(tmp_path, stdin, argv, message):
    api = BuildApi(OK)
    with pytest.raises(Usage) as e:
        b.build(api, "build", argv + [context(tmp_path)])
    assert str(e.value) == f"berth build: {message}\nSee 'berth build --help'."
    assert api.conn is None


# ---------------------------------------------------------------- the context tar

def make_tree(root: str) -> None:
    """A context with one of everything, fixed times and modes; docker CLI 28's tar of it was recorded."""
    files = {"Dockerfile": b"FROM scratch\nCOPY . /\n",
             ".dockerignore": b"# comment\n*.log\n!keep.log\nsub\n!sub/keep\n",
             "a.txt": b"hi\n", "b.log": b"b\n", "keep.log": b"k\n", "sub/x": b"x\n", "sub/keep/k": b"kk\n",
             "h" * 60 + "/" + "i" * 70 + "/j": b"long\n", "\u00fcn\u00efc\u00f8d\u00e9": b"u\n", "empty": b""}
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
    os.chmod(os.path.join(root, "a.txt"), 0o4755)
    os.link(os.path.join(root, "a.txt"), os.path.join(root, "hard"))
    os.symlink("a.txt", os.path.join(root, "link"))
    os.mkfifo(os.path.join(root, "fifo"), 0o600)
    os.chmod(os.path.join(root, "fifo"), 0o600)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p) and os.path.isdir(p):
                os.chmod(p, 0o755)
            os.utime(p, (1700000000, 1700000000), follow_symlinks=False)


def test_context_tar_is_byte_for_byte_dockers(tmp_path, stdin, capsys):
    root = tmp_path / "ctx"
    root.mkdir()
    make_tree(str(root))
    api = BuildApi(OK)
    assert run(api, str(root)) == 0
    assert len(api.body) == 12800
    assert hashlib.sha256(api.body).hexdigest() == "271c443fe9a1b088a39c17ad72ec5f2bbe9da0e964caa826672a86c0b7a4fa30"
    assert capsys.readouterr().out.startswith("Sending build context to Docker daemon   12.8kB\r\r\n")


# (name, type, mode, size, mtime, linkname, header length, sha256 prefix) of headers in docker CLI 28's tars
HEADERS = [
    ("Dockerfile", b"0", 0o644, 13, 1795829140, "", 512, "bab4f106e7831be1"),
    ("big", b"0", 0o644, 2500000, 1795829140, "", 512, "9780960274850f5a"),
    ("bighard", b"1", 0o644, 0, 1795829140, "big", 512, "9b3714ef1a2b3cb0"),
    ("dangling", b"2", 0o777, 0, 1795829140, "/nonexistent", 512, "0e3e4967e7424e26"),
    ("d" * 60 + "/" + "e" * 70 + "/", b"5", 0o755, 0, 1795829140, "", 512, "568a5e64884ada2c"),
    ("d" * 60 + "/" + "e" * 70 + "/" + "f" * 40, b"0", 0o644, 0, 1795829140, "", 512, "9e54e204006b5a6f"),
    ("empty/", b"5", 0o755, 0, 1795829140, "", 512, "cd7b5e8fd8002ab9"),
    ("fifo", b"6", 0o644, 0, 1795829140, "", 512, "441ebfde6261d7c9"),
    ("old", b"0", 0o644, 0, 0, "", 512, "d5735f03246a69b9"),
    ("suid", b"0", 0o4755, 2, 1795829140, "", 512, "3f7dc6fdc51624aa"),
    ("ünï cødé.txt", b"0", 0o644, 2, 1795829140, "", 1536, "1585cdb7faa4e24d"),
    ("bad\udcff\udcfename", b"0", 0o644, 1, 1795829197, "", 1536, "a736a1ee3def5702"),
    ("d" * 99 + "/", b"5", 0o755, 0, 1795829197, "", 512, "b538690aa328b03d"),
    ("g" * 101, b"0", 0o644, 1, 1795829197, "", 1536, "f817e67e3dd16e7d"),
    ("h" * 150 + "/", b"5", 0o755, 0, 1795829197, "", 1536, "38715a851963ac3f"),
    ("h" * 150 + "/" + "i" * 120 + "/", b"5", 0o755, 0, 1795829197, "", 1536, "5e7fa4b343d9cfe4"),
    ("h" * 150 + "/" + "i" * 120 + "/j", b"0", 0o644, 1, 1795829197, "", 1536, "b6b555e4791825a7"),
    ("longlink", b"2", 0o777, 0, 1795829197, "t" * 150, 1536, "75dcf9b5a8a1472e"),
    ("ulink", b"2", 0o777, 0, 1795829197, "tä", 1536, "76ec0769db708917"),
    ("ü/", b"5", 0o755, 0, 1795829197, "", 1536, "e0ab34216ac664c3"),
    ("ü/sub/f", b"0", 0o644, 1, 1795829197, "", 1536, "c24e0a5b884a1f3a"),
]


@pytest.mark.parametrize("name, kind, mode, size, mtime, link, length, digest", HEADERS,
                         ids=[h[0][:20] for h in HEADERS])
def test_tar_headers_are_gos(name, kind, mode, size, mtime, link, length, digest):
    """USTAR when it fits (long names split into prefix and name), PAX records (PaxHeaders.0/NAME) otherwise."""
    h = bc.tar_header(name, kind, mode, size, mtime, linkname=link)
    assert (len(h), hashlib.sha256(h).hexdigest()[:16]) == (length, digest)


def test_dockerignore_applies_and_build_files_are_always_sent(tmp_path, stdin):
    ctx = context(tmp_path, {"Dockerfile": "FROM scratch\n", "a.txt": "a", "b.log": "b", "logs/1.log": "1",
                             "logs/2.log": "2", "sub/keep/k": "k", "sub/other": "o",
                             ".dockerignore": "# c\n*.log\n!logs/1.log\nsub\n!sub/keep\nDockerfile\n.dockerignore\n"})
    api = BuildApi(OK)
    run(api, ctx)
    # "*.log" is for the top level only: logs/2.log stays
    assert api.names() == [".dockerignore", "Dockerfile", "a.txt", "logs", "logs/1.log", "logs/2.log", "sub/keep",
                           "sub/keep/k"]
    members = tarfile.open(fileobj=io.BytesIO(api.body)).getmembers()
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}


def test_dockerfile_specific_ignore_file(tmp_path, stdin, monkeypatch):
    ctx = context(tmp_path, {"Dockerfile": "FROM scratch\n", "a": "a", "b": "b", ".dockerignore": "b\n",
                             "Dockerfile.dockerignore": "a\n", "d/App.Dockerfile": "FROM scratch\n",
                             "d/App.Dockerfile.dockerignore": "b\nd/App.Dockerfile.dockerignore\n"})
    api = BuildApi(OK)
    run(api, ctx)
    assert "a" not in api.names() and "b" in api.names()
    monkeypatch.chdir(ctx)
    api = BuildApi(OK)
    run(api, "-f", "d/App.Dockerfile", ".")
    assert "b" not in api.names() and "a" in api.names() and "d/App.Dockerfile.dockerignore" not in api.names()
    assert "dockerfile=d%2FApp.Dockerfile&" in api.target


def test_dockerfile_from_stdin_gets_a_random_name(tmp_path, stdin):
    """docker's AddDockerfileToBuildContext: ``.dockerfile.`` + 20 hex digits, named in .dockerignore; the
    context's own Dockerfile is not forced in."""
    ctx = context(tmp_path, {"Dockerfile": "FROM old\n", "a.txt": "a", ".dockerignore": "Dockerfile\n"})
    stdin(b"FROM scratch\nCOPY a.txt /\n")
    api = BuildApi(OK)
    assert run(api, "-f", "-", ctx) == 0
    name = api.target.split("dockerfile=")[1].split("&")[0]
    assert name.startswith(".dockerfile.") and len(name) == len(".dockerfile.") + 20
    tar = tarfile.open(fileobj=io.BytesIO(api.body))
    assert [m.name for m in tar] == [".dockerignore", "a.txt", name]
    assert tar.extractfile(".dockerignore").read() == f"Dockerfile\n\n{name}\n".encode()
    df = tar.getmember(name)
    assert (df.mode, tar.extractfile(df).read()) == (0o600, b"FROM scratch\nCOPY a.txt /\n")


def test_dockerfile_from_stdin_without_dockerignore_adds_one(tmp_path, stdin):
    ctx = context(tmp_path, {"a.txt": "a"})
    stdin(b"FROM scratch\n")
    api = BuildApi(OK)
    run(api, "-f", "-", ctx)
    tar = tarfile.open(fileobj=io.BytesIO(api.body))
    name = api.names()[1]
    assert api.names() == ["a.txt", name, ".dockerignore"]
    assert tar.extractfile(".dockerignore").read() == f".dockerignore\n{name}\n".encode()
    assert tar.getmember(".dockerignore").mode == 0o600


def test_dockerfile_outside_the_context_is_added_like_stdin(tmp_path, stdin):
    ctx = context(tmp_path, {"a.txt": "a"})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "Dockerfile.dev").write_text("FROM scratch\n")
    api = BuildApi(OK)
    run(api, "-f", str(tmp_path / "other" / "Dockerfile.dev"), ctx)
    name = api.names()[1]
    assert name.startswith(".dockerfile.") and f"dockerfile={name}&" in api.target
    assert tarfile.open(fileobj=io.BytesIO(api.body)).extractfile(name).read() == b"FROM scratch\n"


def test_lowercase_dockerfile(tmp_path, stdin):
    api = BuildApi(OK)
    run(api, context(tmp_path, {"dockerfile": "FROM scratch\n"}))
    assert "dockerfile=dockerfile&" in api.target


def _tar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_stdin_tar_is_sent_as_is(tmp_path, stdin, capsys):
    data = _tar({"Dockerfile": b"FROM scratch\n", "a": b"a"})
    stdin(data)
    api = BuildApi(OK)
    run(api, "-")
    assert (api.body, api.target) == (data, "/v1.45/build?version=1")
    assert capsys.readouterr().out.startswith("Sending build context to Docker daemon  10.24kB\r\r\n")
    gz = gzip.compress(data)
    stdin(gz)
    api = BuildApi(OK)
    run(api, "-f", "d/App.Dockerfile", "-")
    assert (api.body, api.target) == (gz, "/v1.45/build?dockerfile=d%2FApp.Dockerfile&version=1")


def test_stdin_dockerfile_is_wrapped_in_a_tar(tmp_path, stdin):
    stdin(b"FROM scratch\nRUN x\n")
    api = BuildApi(OK)
    run(api, "-")
    assert api.target == "/v1.45/build?dockerfile=Dockerfile&version=1"
    tar = tarfile.open(fileobj=io.BytesIO(api.body))
    assert tar.extractfile("Dockerfile").read() == b"FROM scratch\nRUN x\n"
    assert len(api.body) == 2048
    stdin(b"")  # empty stdin: an empty Dockerfile, as docker sends
    api = BuildApi(OK)
    run(api, "-")
    assert api.names() == ["Dockerfile"] and len(api.body) == 1536


def test_tar_file_context(tmp_path, stdin):
    data = _tar({"Dockerfile": b"FROM scratch\n"})
    (tmp_path / "c.tar").write_bytes(data)
    (tmp_path / "c.tgz").write_bytes(gzip.compress(data))
    api = BuildApi(OK)
    run(api, str(tmp_path / "c.tar"))
    assert (api.body, api.target) == (data, "/v1.45/build?version=1")
    stdin(b"FROM other\n")
    api = BuildApi(OK)
    run(api, "-f", "-", str(tmp_path / "c.tgz"))
    name = api.names()[1]
    assert api.names() == ["Dockerfile", name, ".dockerignore"] and f"dockerfile={name}&" in api.target


@pytest.mark.parametrize("head, archive", [
    (_tar({"a": b"a"})[:1024], True), (gzip.compress(b"x"), True), (b"BZh91AY&SY", True),
    (b"\xfd7zXZ\x00\x00", True), (b"\x28\xb5\x2f\xfd\x00", True), (b"\x50\x2a\x4d\x18rest", True),
    (b"FROM scratch\n", False), (b"", False), (b"\0" * 1024, False), (b"x" * 1024, False),
])
def test_is_archive(head, archive):
    assert bc.is_archive(head) == archive


@pytest.mark.parametrize("argv, data, message", [
    (["-f", "-", "-"], b"", "invalid argument: can't use stdin for both build context and dockerfile"),
    (["-f", "Dockerfile", "-"], b"FROM x\n", "unable to prepare context: ambiguous Dockerfile source: both stdin and "
                                             "flag correspond to Dockerfiles"),
    (["nonexist"], b"", 'unable to prepare context: path "nonexist" not found'),
])
def test_context_errors(tmp_path, stdin, capsys, monkeypatch, argv, data, message):
    monkeypatch.chdir(tmp_path)
    stdin(data)
    api = BuildApi(OK)
    assert run(api, *argv) == 1
    assert capsys.readouterr().err == message + "\n"
    assert api.conn is None


def test_missing_dockerfile_and_non_archive_file(tmp_path, stdin, capsys):
    ctx = context(tmp_path, {})
    assert run(BuildApi(OK), ctx) == 1
    assert capsys.readouterr().err == ("unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
                                       f"lstat {ctx}/Dockerfile: no such file or directory\n")
    (tmp_path / "plain").write_text("FROM x\n")
    assert run(BuildApi(OK), str(tmp_path / "plain")) == 1
    assert capsys.readouterr().err == f"unable to prepare context: context must be a directory: {tmp_path}/plain\n"


def test_bad_dockerignore_pattern(tmp_path, stdin, capsys):
    assert run(BuildApi(OK), context(tmp_path, {"Dockerfile": "FROM x\n", ".dockerignore": "!\n"})) == 1
    assert capsys.readouterr().err == 'error checking context: illegal exclusion pattern: "!"\n'


# ---------------------------------------------------------------- the output (as docker CLI 28 printed it)

SENDING = "Sending build context to Docker daemon  2.048kB\r\r\n"
PULL_THEN_FAIL = answer(
    '{"stream":"Step 1/2 : FROM busybox\\n"}', '{"status":"Pulling from library/busybox","id":"latest"}',
    '{"status":"Pulling fs layer","progressDetail":{},"id":"abc123"}',
    '{"status":"Downloading","progressDetail":{"current":10,"total":100},"progress":"[=>   ] 10B/100B","id":"abc123"}',
    '{"status":"Download complete","progressDetail":{},"id":"abc123"}', '{"status":"Digest: sha256:aaa"}',
    '{"status":"Status: Downloaded newer image for busybox:latest"}', '{"stream":" ---\\u003e 0123456789ab\\n"}',
    '{"stream":"Step 2/2 : RUN false\\n"}', '{"stream":" ---\\u003e Running in abcdef\\n"}',
    '{"errorDetail":{"code":1,"message":"The command \'/bin/sh -c false\' returned a non-zero code: 1"},'
    '"error":"The command \'/bin/sh -c false\' returned a non-zero code: 1"}')
PULL_THEN_FAIL_OUT = ("Step 1/2 : FROM busybox\nlatest: Pulling from library/busybox\nabc123: Pulling fs layer\n"
                      "abc123: Download complete\nDigest: sha256:aaa\n"
                      "Status: Downloaded newer image for busybox:latest\n"
                      " ---> 0123456789ab\nStep 2/2 : RUN false\n ---> Running in abcdef\n")
FAIL_ERR = "The command '/bin/sh -c false' returned a non-zero code: 1\n"


def test_output_of_a_failed_build(tmp_path, stdin, capsys):
    stdin(b"FROM x\n")
    assert run(BuildApi(PULL_THEN_FAIL), "-") == 1
    out = capsys.readouterr()
    assert (out.out, out.err) == (SENDING + PULL_THEN_FAIL_OUT, FAIL_ERR)


def test_quiet_failed_build_prints_everything_to_stderr(tmp_path, stdin, capsys):
    stdin(b"FROM x\n")
    assert run(BuildApi(PULL_THEN_FAIL), "-q", "-") == 1
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", SENDING + PULL_THEN_FAIL_OUT + FAIL_ERR)


def test_error_code_becomes_the_exit_code(tmp_path, stdin, capsys):
    stdin(b"FROM x\n")
    api = BuildApi(answer('{"stream":"x"}', '{"errorDetail":{"code":7,"message":"boom"},"error":"boom"}',
                          '{"stream":"never shown\\n"}'))
    assert run(api, "-") == 7
    out = capsys.readouterr()
    assert (out.out, out.err) == (SENDING + "x", "boom\n")


def test_success_and_iidfile(tmp_path, stdin, capsys):
    stdin(b"FROM x\n")
    iid = tmp_path / "iid"
    iid.write_text("stale")
    assert run(BuildApi(OK), "--iidfile", str(iid), "-") == 0
    assert capsys.readouterr().out == SENDING + "Step 1/1 : FROM scratch\nSuccessfully built 0123456789ab\n"
    assert iid.read_text() == ID


def test_quiet_prints_what_the_daemon_streamed_and_writes_it_to_iidfile(tmp_path, stdin, capsys):
    """docker -q prints the daemon's output (the ID and a newline) and writes that, newline and all, to
    --iidfile."""
    stdin(b"FROM x\n")
    iid = tmp_path / "iid"
    assert run(BuildApi(answer('{"stream":"%s\\n"}' % ID, '{"aux":{"ID":"%s"}}' % ID)), "-q", "--iidfile", str(iid),
               "-") == 0
    assert capsys.readouterr().out == ID + "\n"
    assert iid.read_text() == ID + "\n"
    # a daemon that streams nothing with q=1: the ID from aux
    stdin(b"FROM x\n")
    assert run(BuildApi(answer('{"aux":{"ID":"%s"}}' % ID)), "-q", "-") == 0
    assert capsys.readouterr().out == ID + "\n"


def test_no_image_id_with_iidfile(tmp_path, stdin, capsys):
    stdin(b"FROM x\n")
    iid = tmp_path / "iid"
    iid.write_text("stale")
    assert run(BuildApi(answer('{"stream":"x\\n"}')), "--iidfile", str(iid), "-") == 1
    assert capsys.readouterr().err == f"Server did not provide an image ID. Cannot write {iid}\n"
    assert not iid.exists()


def test_message_forms_render_as_jsonmessage(tmp_path, stdin, capsys):
    stdin(b"FROM x\n")
    api = BuildApi(answer('{"stream":"x\\n"}', '{"error":"onlyerr"}', '{"stream":"after\\n"}',
                          '{"status":"s","progress":"pm","id":"i1"}',
                          '{"status":"t","progressDetail":{"current":5},"id":"i2"}',
                          '{"status":"u","id":"i3","from":"img"}'))
    assert run(api, "-") == 0
    assert capsys.readouterr().out == SENDING + "x\n\nafter\ni1: s pmi3: (from img) u\n"


def test_messages_split_anywhere_or_run_together():
    raw = _Raw(b'{"stream":"a"}{"stream":"b"}\n\r\n  {"aux":{"ID":"x\\u00e9"}}')
    assert list(b.json_messages(raw)) == [{"stream": "a"}, {"stream": "b"}, {"aux": {"ID": "xé"}}]
    with pytest.raises(ValueError):
        list(b.json_messages(_Raw(b'{"stream":')))


def test_daemon_error_before_the_body_is_taken(tmp_path, stdin, capsys):
    """A daemon that answers 400 and closes before reading the context: its answer is what the user sees."""
    stdin(b"FROM x\n")
    err = InvalidArgument("invalid reference format")
    with pytest.raises(InvalidArgument):
        b.build(BuildApi(error=err, broken=True), "build", ["-"])


# ---------------------------------------------------------------- command table

@pytest.mark.parametrize("argv, target", [
    (["build", "."], ("build", "build")), (["image", "build", "."], ("build", "build")),
    (["builder", "build", "."], ("build", "build")), (["builder", "prune"], ("build", "builder_prune")),
])
def test_command_table(argv, target):
    assert _resolve(argv)[0] == target
    assert COMMANDS["build"] == ("build", "build")


# ---------------------------------------------------------------- builder prune

PRUNE_ALL = ("filters=%7B%22type%22%3A%7B%22regular%22%3Atrue%7D%2C%22until%22%3A%7B%2224h%22%3Atrue%7D%7D"
             "&keep-storage=1073741824")


def test_builder_prune_request_and_output(capsys):
    api = FakeApi({("POST", "/build/prune"): {"CachesDeleted": ["abc", "def"], "SpaceReclaimed": 123456789}})
    assert b.builder_prune(api, "builder prune", ["-f", "-a", "--filter", "until=24h", "--filter", "type=regular",
                                                  "--keep-storage", "1GB"]) == 0
    method, path, query, _ = api.calls[0]
    assert Transport.url(path, query) == "/v1.45/build/prune?all=1&" + PRUNE_ALL
    assert capsys.readouterr().out == "Deleted build cache objects:\nabc\ndef\n\nTotal reclaimed space: 123.5MB\n"


def test_builder_prune_prompt(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    api = FakeApi()
    assert b.builder_prune(api, "builder prune", ["-a"]) == 0
    assert api.calls == []
    assert capsys.readouterr().out == ("WARNING! This will remove all build cache. Are you sure you want to continue? "
                                       "[y/N] ")
    monkeypatch.setattr(sys, "stdin", io.StringIO("Y\n"))
    api = FakeApi({("POST", "/build/prune"): {"CachesDeleted": None, "SpaceReclaimed": 0}})
    assert b.builder_prune(api, "builder prune", []) == 0
    assert Transport.url(api.calls[0][1], api.calls[0][2]) == "/v1.45/build/prune?filters="
    assert capsys.readouterr().out == ("WARNING! This will remove all dangling build cache. Are you sure you want to "
                                       "continue? [y/N] Total reclaimed space: 0B\n")


def test_builder_prune_bad_filter():
    with pytest.raises(Usage) as e:
        b.builder_prune(FakeApi(), "builder prune", ["-f", "--filter", "bad"])
    assert str(e.value) == ('berth builder prune: invalid argument "bad" for "--filter" flag: bad format of filter '
                            "(expected name=value)\nSee 'berth builder prune --help'.")
