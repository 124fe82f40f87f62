"""Real build clients against berthd (issue 6): the docker CLI's classic builder (``DOCKER_BUILDKIT=0 docker -H ...
build`` with ``-t``, ``-f``, ``-f -``, ``--build-arg``, ``--label``, ``--target``, ``-q``, ``--no-cache``,
``.dockerignore``, a Dockerfile on stdin) and docker-py 7.2's ``client.images.build`` (``path=``, ``fileobj=``,
``custom_context=`` with gzip, ``tag``, ``buildargs``, ``labels``, ``target``, ``dockerfile``, ``rm``) and
``client.api.prune_builds``; what they print, return and raise.

Expected behaviour was taken from moby's classic builder (daemon/builder/dockerfile and the build router, as of
2026-08, and v26 where they differ) and checked against dockerd 20.10 on this machine (started privately with
``--bridge=none``, busybox imported as the fixtures do); a docstring says where the two differ. The parity
suite for the Dockerfile itself is tests/integration/test_build.py.

Neither client pulls here: the docker CLI's ``build`` pulls only with ``--pull``, docker-py's ``images.build`` only
with ``pull=True``, and every Dockerfile starts FROM ``busybox:latest``, which the fixture imports. Nothing here
sends network traffic. Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
import uuid

import docker
import pytest

from tests.support import builds
from tests.support.builds import (IGNORED_CTX, IGNORED_TREE, BuildsMade, docker_classic, exists, history_of,
                                   image, run)

pytestmark = pytest.mark.root

BUSYBOX = "busybox:latest"
IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")

OTHER_DOCKERFILE = """FROM busybox:latest AS first
ARG V
RUN echo "v=$V" > /v
LABEL from.file=yes
FROM first AS second
RUN exit 1
"""


class Made(BuildsMade):
    prefix = "cbld"


daemon, made, ctx = builds.daemon, builds.made, builds.ctx  # fixtures: own berthd, what the test tagged, contexts
docker_cli = docker_classic


def ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, (p.returncode, p.stdout.decode(), p.stderr.decode())
    return p.stdout.decode()


def created_by(d, ref: str) -> list[str]:
    return [e["CreatedBy"] for e in history_of(d, ref)]


# -- the docker CLI's classic builder ---------------------------------------------------------------------------------

def test_docker_cli_build_with_tags_file_args_label_and_target(daemon, made, ctx):
    """``-t`` twice, ``-f`` outside the context root, ``--build-arg``, ``--label``, ``--target`` (the stage after
    it, which fails, is not built). moby's buildLabelOptions adds one ``LABEL k=v`` step per ``--label`` to the
    last stage built, counted and printed like any step (dockerd 20.10 here: ``Step 5/5 : LABEL lab=el`` and a
    history entry ``LABEL lab=el``)."""
    d, tag, tag2 = daemon, made.tag(), made.tag()
    root = ctx({"docker/Other.dockerfile": OTHER_DOCKERFILE, "unused.txt": "u"})
    out = ok(docker_cli(d, "build", "-t", tag, "-t", tag2, "-f", str(root / "docker/Other.dockerfile"),
                    "--build-arg", "V=given", "--label", "lab=el", "--target", "first", str(root)))
    iid = image(d, tag)["Id"]
    assert image(d, tag2)["Id"] == iid
    assert f"Successfully built {iid[7:19]}\n" in out
    assert f"Successfully tagged {tag}\n" in out and f"Successfully tagged {tag2}\n" in out
    assert "exit 1" not in out
    assert image(d, tag)["Config"]["Labels"] == {"from.file": "yes", "lab": "el"}
    assert run(d, tag, "cat", "/v") == "v=given\n"
    assert "/bin/sh -c #(nop)  LABEL lab=el" == created_by(d, tag)[0]
    assert re.search(r"^Step (\d+)/\1 : LABEL lab=el$", out, re.M), out


def test_docker_cli_quiet_prints_the_id_alone(daemon, made, ctx):
    d, tag = daemon, made.tag()
    p = docker_cli(d, "build", "-q", "-t", tag, str(ctx({"Dockerfile": "FROM busybox:latest\nRUN echo quiet\n"})))
    out = ok(p)
    assert IMAGE_ID.match(out.strip()) and out.endswith("\n") and out.count("\n") == 1, out
    assert image(d, tag)["Id"] == out.strip()
    assert "quiet" not in out


def test_docker_cli_cache_and_no_cache(daemon, made, ctx):
    d, tag = daemon, made.tag()
    root = ctx({"a": "a", "Dockerfile": f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex} > /r\nCOPY a /a\n"})
    first = ok(docker_cli(d, "build", "-t", tag, str(root)))
    assert "Using cache" not in first and " ---> Running in " in first
    cached = ok(docker_cli(d, "build", "-t", tag, str(root)))
    assert cached.count(" ---> Using cache\n") == 2 and " ---> Running in " not in cached, cached
    fresh = ok(docker_cli(d, "build", "--no-cache", "-t", tag, str(root)))
    assert "Using cache" not in fresh and " ---> Running in " in fresh


def test_docker_cli_applies_dockerignore(daemon, made, ctx):
    d, tag = daemon, made.tag()
    ok(docker_cli(d, "build", "-t", tag, str(ctx(IGNORED_CTX))))
    assert sorted(run(d, tag, "find", "/ctx").split()) == IGNORED_TREE


def test_docker_cli_dockerfile_from_stdin(daemon, made, ctx):
    """``docker build -t T - < Dockerfile`` (no context: the CLI wraps the text in a tar) and
    ``docker build -f - DIR`` (the Dockerfile from stdin, the context from DIR)."""
    d, tag, tag2 = daemon, made.tag(), made.tag()
    ok(docker_cli(d, "build", "-t", tag, "-", input=b"FROM busybox:latest\nRUN echo stdin > /s\n"))
    assert run(d, tag, "cat", "/s") == "stdin\n"
    root = ctx({"f.txt": "from-dir\n"})
    ok(docker_cli(d, "build", "-t", tag2, "-f", "-", str(root), input=b"FROM busybox:latest\nCOPY f.txt /f\n"))
    assert run(d, tag2, "cat", "/f") == "from-dir\n"


def test_docker_cli_failed_run(daemon, made, ctx):
    """The RUN's output, then the error; nothing tagged. The docker CLI exits with ``errorDetail.code``, which
    moby sets to the command's exit status (dockerd 20.10 here: ``docker build`` exits 3)."""
    d, tag = daemon, made.tag()
    p = docker_cli(d, "build", "-t", tag, str(ctx({"Dockerfile": "FROM busybox:latest\nRUN echo out && exit 3\n"})))
    assert p.returncode != 0
    assert "\nout\n" in p.stdout.decode()
    assert "The command '/bin/sh -c echo out && exit 3' returned a non-zero code: 3" in p.stderr.decode()
    assert not exists(d, tag)
    assert p.returncode == 3, p.stderr.decode()


def test_docker_cli_parse_error(daemon, made, ctx):
    """dockerd answers a parse error as an HTTP 400 before any step, which the CLI prints as ``Error response from
    daemon: ...``."""
    d, tag = daemon, made.tag()
    p = docker_cli(d, "build", "-t", tag, str(ctx({"Dockerfile": "FROM busybox:latest\nFOO bar\n"})))
    err = p.stderr.decode()
    assert p.returncode == 1 and "dockerfile parse error on line 2: unknown instruction: FOO" in err, err
    assert not exists(d, tag)
    assert "Error response from daemon: dockerfile parse error on line 2" in err, err


# -- docker-py ------------------------------------------------------------------------------------------------------

def test_docker_py_build_from_a_path(daemon, made, ctx, client):
    """``images.build(path, tag, buildargs, labels, target, dockerfile, rm)`` returns (Image, logs): the image has
    the tag and labels, the logs are Docker's JSON chunks (``stream`` steps, ``aux`` with the ID)."""
    d, tag = daemon, made.tag()
    root = ctx({"docker/Other.dockerfile": OTHER_DOCKERFILE})
    img, logs = client.images.build(path=str(root), tag=tag, buildargs={"V": "py"}, labels={"lab": "py"},
                                    target="first", dockerfile="docker/Other.dockerfile", rm=True)
    logs = list(logs)
    assert isinstance(img, docker.models.images.Image) and tag in img.tags
    assert img.labels == {"from.file": "yes", "lab": "py"}
    assert {"aux": {"ID": img.id}} in logs
    streamed = "".join(c.get("stream", "") for c in logs)
    assert "Step 1/" in streamed and f"Successfully tagged {tag}\n" in streamed
    assert run(d, tag, "cat", "/v") == "v=py\n"


def test_docker_py_build_from_a_fileobj(daemon, made, client):
    """``fileobj=`` a Dockerfile (docker-py wraps it in a tar)."""
    d, tag = daemon, made.tag()
    img, _ = client.images.build(fileobj=io.BytesIO(b'FROM busybox:latest\nRUN echo fileobj > /f\n'
                                                    b'CMD ["cat", "/f"]\n'), tag=tag, rm=True)
    assert img.tags == [tag] and img.attrs["Config"]["Cmd"] == ["cat", "/f"]
    assert run(d, tag) == "fileobj\n"


def test_docker_py_build_from_a_gzip_context(daemon, made, client):
    """``custom_context=True, encoding="gzip"``: the body is a gzipped tar."""
    d, tag = daemon, made.tag()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (("Dockerfile", b"FROM busybox:latest\nCOPY g.txt /g\n"), ("g.txt", b"gzip\n")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    buf.seek(0)
    img, _ = client.images.build(fileobj=buf, custom_context=True, encoding="gzip", tag=tag, rm=True)
    assert tag in img.tags
    assert run(d, tag, "cat", "/g") == "gzip\n"


def test_docker_py_applies_dockerignore(daemon, made, ctx, client):
    d, tag = daemon, made.tag()
    client.images.build(path=str(ctx(IGNORED_CTX)), tag=tag, rm=True)
    assert sorted(run(d, tag, "find", "/ctx").split()) == IGNORED_TREE


def test_docker_py_failed_build_raises_build_error(daemon, made, ctx, client):
    d, tag = daemon, made.tag()
    root = ctx({"Dockerfile": "FROM busybox:latest\nRUN echo py-out && exit 3\n"})
    with pytest.raises(docker.errors.BuildError) as e:
        client.images.build(path=str(root), tag=tag, rm=True)
    assert e.value.msg == "The command '/bin/sh -c echo py-out && exit 3' returned a non-zero code: 3"
    assert "py-out\n" in "".join(c.get("stream", "") for c in e.value.build_log)
    assert not exists(d, tag)


def test_docker_py_parse_error_raises_api_error(daemon, made, ctx, client):
    """dockerd answers a parse error with HTTP 400 before streaming, so docker-py raises APIError (not
    BuildError) with the parser's text (dockerd 20.10 here: APIError 400)."""
    d, tag = daemon, made.tag()
    root = ctx({"Dockerfile": "FROM busybox:latest\nFOO bar\n"})
    with pytest.raises(docker.errors.DockerException) as e:
        client.images.build(path=str(root), tag=tag, rm=True)
    assert "unknown instruction: FOO" in str(e.value)
    assert not exists(d, tag)
    assert isinstance(e.value, docker.errors.APIError) and e.value.status_code == 400, repr(e.value)


def test_docker_py_prune_builds(daemon, made, ctx, client):
    """``client.api.prune_builds()`` gets Docker's answer: ``CachesDeleted`` and ``SpaceReclaimed``."""
    client.images.build(path=str(ctx({"Dockerfile": f"FROM busybox:latest\nRUN echo {uuid.uuid4().hex}\n"})),
                        rm=True)
    answer = client.api.prune_builds()
    assert set(answer) >= {"CachesDeleted", "SpaceReclaimed"} and isinstance(answer["SpaceReclaimed"], int), answer
    assert json.dumps(answer)
