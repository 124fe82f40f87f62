"""Building images (issue 6) against a real berthd: a parity suite of small Dockerfiles, one per instruction and
per tricky rule, each checked by running the built image and by reading its config and history; the build cache
(unchanged rebuilds, one changed file, one changed build arg, ``nocache``, a berthd restart, prune); and bad input
(syntax errors, unknown instructions, missing sources and stages, a failing RUN) that must tag nothing and leave no
build container behind.

Builds go through ``POST /build`` (a context tar made here, as the docker CLI sends it), and where the client side
matters (.dockerignore is applied by the client) through the docker CLI's classic builder
(``DOCKER_BUILDKIT=0 docker -H ... build``) and ``berth build``. The docker CLI and docker-py themselves are in
tests/compat/test_build_clients.py.

What Docker does was taken from two places, and a test's docstring says which when it pins a detail: moby's
classic builder as of 2026-08 (daemon/builder/dockerfile: dispatchers.go, builder.go, evaluator.go, copy.go,
internals.go; its vendored buildkit Dockerfile parser), which is what a Docker 26 daemon (API 1.45) runs, and
dockerd 20.10 on this machine (started privately with ``--bridge=none``, busybox imported as the fixtures do),
whose classic builder differs from moby's only where a docstring says so. Where berth follows BuildKit on purpose
(only the stages the target needs are built; heredocs; ``--chmod``; RUN ``--mount``), the docstring says so too.

This module has a berthd of its own (``images -a`` counts, container lists and a restart), with a default bridge
of its own. Dockerfiles start FROM ``busybox:latest``, which the fixture imports, or ``scratch``; nothing here can
pull. Needs root, runc and busybox (the fixture skips otherwise).
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support import builds
from tests.support.builds import (IGNORED_CTX, IGNORED_TREE, BuildsMade, api_build, docker_classic, exists, history_of,
                                   image, run)
from tests.support.daemon import wait_for

pytestmark = pytest.mark.root

BUSYBOX = "busybox:latest"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOP = "/bin/sh -c #(nop) "
NOP_RE = re.escape(NOP)
COPY_HASH = r"(file|dir|multi):[0-9a-f]{64}"


# -- fixtures -------------------------------------------------------------------------------------------------------

class Made(BuildsMade):
    prefix = "bld"


daemon, made, ctx = builds.daemon, builds.made, builds.ctx  # fixtures: own berthd, what the test tagged, contexts


def docker_build(d, root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The docker CLI's classic builder (it applies .dockerignore itself, and never pulls without --pull)."""
    p = docker_classic(d, "build", *args, str(root))
    if check:
        assert p.returncode == 0, (p.stdout.decode(), p.stderr.decode())
    return p


def berth_build_available(d) -> bool:
    return d.cli("build", "--help", check=False).returncode == 0


def created_by(d, ref: str) -> list[str]:
    """``GET /images/REF/history``'s CreatedBy, newest first, without the base image's entries."""
    body = history_of(d, ref)
    base = len(history_of(d, BUSYBOX))
    return [e["CreatedBy"] for e in body][: len(body) - base]


def config_history(d, ref: str) -> list[dict]:
    """The image config's ``history`` (oldest first, with ``empty_layer``), read from ``GET /images/REF/get``."""
    status, body = d.api("GET", f"/images/{quote(ref, safe='')}/get", raw=True)
    assert status == 200, body[:300]
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config = json.load(tar.extractfile(manifest[0]["Config"]))
    return config["history"]


def containers(d) -> list[str]:
    return sorted(c["Id"] for c in d.api("GET", "/containers/json?all=1")[1])


def all_images(d) -> set[str]:
    status, body = d.api("GET", "/images/json?all=1")
    assert status == 200, body
    return {i["Id"] for i in body}


def events(d, since: float, until: float, kind: str = "container") -> list[tuple[str, str]]:
    f = quote(json.dumps({"type": [kind]}))
    status, body = d.api("GET", f"/events?since={since:.9f}&until={until:.9f}&filters={f}", raw=True)
    assert status == 200, body
    return [(e["Type"], e["Action"]) for e in map(json.loads, body.splitlines())]


# -- instructions and the config they leave ------------------------------------------------------------------------

# moby 25-26 (API 1.45) writes HEALTHCHECK's created_by with Go's %q, moby since 2026-04 with %+v.
HEALTH_Q = """&{["CMD-SHELL" "wget -q -O - http://localhost/ || exit 1"] "5s" "2s" "1s" "0s" '\\x04'}"""
HEALTH_PLUS_V = ("&{Test:[CMD-SHELL wget -q -O - http://localhost/ || exit 1] Interval:5s Timeout:2s StartPeriod:1s "
                 "StartInterval:0s Retries:4}")


def test_metadata_instructions_set_the_config_and_history(daemon, made, ctx):
    """ENV (both forms), LABEL, EXPOSE, USER, VOLUME (both forms), WORKDIR (relative to the last), STOPSIGNAL,
    HEALTHCHECK, SHELL, ONBUILD and MAINTAINER end up in the config, each with a history entry written as moby's
    dispatchers write it (``#(nop)`` + two spaces, one space for WORKDIR; HEALTHCHECK as Go's ``%q`` in moby 25-26
    or ``%+v`` in moby since 2026-04; SHELL and what follows it under the new shell) and ``empty_layer`` for the
    config-only steps; WORKDIR makes its directory (a layer). dockerd 20.10 here passes all of it but
    HEALTHCHECK's text, which predates StartInterval."""
    d, tag = daemon, made.tag()
    root = ctx({"Dockerfile": """FROM busybox:latest
MAINTAINER Jane Doe <jane@example.com>
ENV GREETING=hello NAME="big world"
ENV OLD value with spaces
LABEL org.example.a=1 "org.example.b"="two words"
EXPOSE 80 53/udp
USER 1000:1000
VOLUME /data /logs
VOLUME ["/json"]
WORKDIR /app
WORKDIR sub
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=4 CMD wget -q -O - http://localhost/ || exit 1
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered > /onbuild.txt
ONBUILD COPY a /a
"""})
    api_build(d, root, t=tag).ok()

    assert run(d, tag, "sh", "-c", "pwd; id -u; id -g; echo $GREETING $NAME; echo $OLD") == \
        "/app/sub\n1000\n1000\nhello big world\nvalue with spaces\n"
    info = image(d, tag)
    cfg = info["Config"]
    assert cfg["Env"][-3:] == ["GREETING=hello", "NAME=big world", "OLD=value with spaces"]
    assert cfg["Labels"] == {"org.example.a": "1", "org.example.b": "two words"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["User"] == "1000:1000"
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}, "/json": {}}
    assert cfg["WorkingDir"] == "/app/sub"
    assert cfg["StopSignal"] == "SIGUSR1"
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q -O - http://localhost/ || exit 1"],
                                  "Interval": 5_000_000_000, "Timeout": 2_000_000_000,
                                  "StartPeriod": 1_000_000_000, "Retries": 4}
    assert cfg["Shell"] == ["/bin/sh", "-ec"]
    assert cfg["OnBuild"] == ["RUN echo triggered > /onbuild.txt", "COPY a /a"]
    assert cfg["Cmd"] == ["sh"], "CMD is inherited from the base"
    assert info["Author"] == "Jane Doe <jane@example.com>"

    hist = created_by(d, tag)
    health = hist[3]
    assert health in (NOP + " HEALTHCHECK " + HEALTH_Q, NOP + " HEALTHCHECK " + HEALTH_PLUS_V), health
    expose = hist[10]
    assert expose.startswith(NOP + " EXPOSE ") and sorted(expose.split()[4:]) == ["53/udp", "80"], expose
    assert hist[:3] + hist[4:10] + hist[11:] == [
        "/bin/sh -ec #(nop)  ONBUILD COPY a /a",
        "/bin/sh -ec #(nop)  ONBUILD RUN echo triggered > /onbuild.txt",
        "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
        # HEALTHCHECK (index 3) checked above
        NOP + " STOPSIGNAL SIGUSR1",
        NOP + "WORKDIR /app/sub",
        NOP + "WORKDIR /app",
        NOP + " VOLUME [/json]",
        NOP + " VOLUME [/data /logs]",
        NOP + " USER 1000:1000",
        # EXPOSE (index 10) checked above: moby writes the ports as given, dockerd 20.10 sorted
        NOP + " LABEL org.example.a=1 org.example.b=two words",
        NOP + " ENV OLD=value with spaces",
        NOP + " ENV GREETING=hello NAME=big world",
        NOP + " MAINTAINER Jane Doe <jane@example.com>",
    ]
    ours = config_history(d, tag)[-15:]
    layered = [h["created_by"] for h in ours if not h.get("empty_layer")]
    assert layered == [NOP + "WORKDIR /app", NOP + "WORKDIR /app/sub"], ours
    assert len(info["RootFS"]["Layers"]) == len(image(d, BUSYBOX)["RootFS"]["Layers"]) + 2


def test_built_image_gets_the_default_path_when_its_base_has_none(daemon, made, ctx):
    """moby's dispatchState.setDefaultPath (evaluator.go): a stage whose base has no PATH gets
    ``PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`` first in Env, kept in the result (dockerd
    20.10 here: the same Env for a build FROM this busybox, which is imported without an Env)."""
    d, tag = daemon, made.tag()
    assert not image(d, BUSYBOX)["Config"].get("Env")
    api_build(d, ctx({"Dockerfile": "FROM busybox:latest\nENV A=1\n"}), t=tag).ok()
    assert image(d, tag)["Config"]["Env"] == [DEFAULT_PATH, "A=1"]


def test_entrypoint_resets_an_inherited_cmd(daemon, made, ctx):
    """moby's dispatchEntrypoint: a stage that sets ENTRYPOINT without a CMD of its own drops the base's CMD;
    created_by is ``ENTRYPOINT %q`` (Go's quoted slice)."""
    d, tag = daemon, made.tag()
    api_build(d, ctx({"Dockerfile": 'FROM busybox:latest\nENTRYPOINT ["/bin/echo", "ep"]\n'}), t=tag).ok()
    cfg = image(d, tag)["Config"]
    assert cfg["Entrypoint"] == ["/bin/echo", "ep"] and not cfg.get("Cmd"), cfg
    assert run(d, tag) == "ep\n"
    assert created_by(d, tag) == [NOP + ' ENTRYPOINT ["/bin/echo" "ep"]']


def test_cmd_set_before_entrypoint_is_kept(daemon, made, ctx):
    d, tag = daemon, made.tag()
    api_build(d, ctx({"Dockerfile": 'FROM busybox:latest\nCMD ["from-cmd"]\nENTRYPOINT ["/bin/echo"]\n'}),
              t=tag).ok()
    cfg = image(d, tag)["Config"]
    assert (cfg["Entrypoint"], cfg["Cmd"]) == (["/bin/echo"], ["from-cmd"])
    assert run(d, tag) == "from-cmd\n"


def test_shell_form_cmd_and_entrypoint_go_through_the_shell(daemon, made, ctx):
    """Shell forms become ``SHELL + [text]``; the text is not expanded by the builder (``$HOME`` reaches the
    shell); created_by is ``CMD ["/bin/sh" "-c" "..."]``."""
    d, tag, tag2 = daemon, made.tag(), made.tag()
    api_build(d, ctx({"Dockerfile": "FROM busybox:latest\nCMD echo $HOME shell-cmd\n"}), t=tag).ok()
    assert image(d, tag)["Config"]["Cmd"] == ["/bin/sh", "-c", "echo $HOME shell-cmd"]
    assert run(d, tag) == "/root shell-cmd\n"
    assert created_by(d, tag) == [NOP + ' CMD ["/bin/sh" "-c" "echo $HOME shell-cmd"]']
    api_build(d, ctx({"Dockerfile": "FROM busybox:latest\nENTRYPOINT echo ep-$0\n"}, "ctx2"), t=tag2).ok()
    assert image(d, tag2)["Config"]["Entrypoint"] == ["/bin/sh", "-c", "echo ep-$0"]
    assert run(d, tag2) == "ep-/bin/sh\n"


def test_env_substitution_in_later_steps(daemon, made, ctx):
    """An instruction is expanded with the ENV in force before it, so ``ENV A=second B=$A`` gives B the old A;
    ``${X:-default}``, ``${X:+alt}`` and ``\\$`` as Docker's shell lexer does; WORKDIR, COPY and LABEL see ENV;
    RUN's shell sees the values literally."""
    d, tag = daemon, made.tag()
    root = ctx({"f.txt": "f\n", "Dockerfile": r"""FROM busybox:latest
ENV A=first DIR=/opt/app
ENV A=second B=$A C=${UNSET:-dflt} D=${A:+alt} E=\$A F="${DIR}/bin"
WORKDIR $DIR
COPY f.txt ${DIR}/data/
LABEL where=$DIR
RUN echo "$A $B $C $D $E $F" > out && pwd >> out
"""})
    api_build(d, root, t=tag).ok()
    cfg = image(d, tag)["Config"]
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert {k: env[k] for k in "ABCDEF"} == {"A": "second", "B": "first", "C": "dflt", "D": "alt", "E": "$A",
                                              "F": "/opt/app/bin"}
    assert cfg["Labels"] == {"where": "/opt/app"} and cfg["WorkingDir"] == "/opt/app"
    assert run(d, tag, "sh", "-c", "cat out data/f.txt") == "second first dflt alt $A /opt/app/bin\n/opt/app\nf\n"


def test_arg_scoping(daemon, made, ctx):
    """A global ARG (before the first FROM) is seen by FROM only, unless a stage redeclares it (then with the
    global default); ``--build-arg`` overrides a default; ENV beats an ARG of the same name (and such an ARG is
    left out of RUN's ``|N`` prefix: moby's BuildArgs.FilterAllowed); ARG values are not kept in Env; a stage
    does not see another stage's ARGs; a build arg no ARG declares draws Docker's warning (checked on
    dockerd 20.10 here)."""
    d, tag = daemon, made.tag()
    root = ctx({"Dockerfile": """ARG BASE=busybox
ARG GLOBAL=g-default
FROM ${BASE}:latest AS one
RUN echo "unseen=[$GLOBAL]" > /args
ARG GLOBAL
ARG LOCAL=l-default
ARG SHADOW=from-arg
ENV SHADOW=from-env FROM_ARG=${LOCAL}-env
RUN echo "global=[$GLOBAL] local=[$LOCAL] shadow=[$SHADOW] env=[$FROM_ARG]" >> /args
FROM one
RUN echo "second=[$LOCAL][$GLOBAL]" >> /args
"""})
    b = api_build(d, root, t=tag, buildargs={"LOCAL": "given", "UNUSED": "x"}).ok()
    assert run(d, tag, "cat", "/args") == (
        "unseen=[]\nglobal=[g-default] local=[given] shadow=[from-env] env=[given-env]\nsecond=[][]\n")
    env = image(d, tag)["Config"]["Env"]
    assert not [e for e in env if e.split("=")[0] in ("BASE", "GLOBAL", "LOCAL")], env
    assert "SHADOW=from-env" in env and "FROM_ARG=given-env" in env
    assert created_by(d, tag) == [
        '/bin/sh -c echo "second=[$LOCAL][$GLOBAL]" >> /args',
        '|2 GLOBAL=g-default LOCAL=given /bin/sh -c echo "global=[$GLOBAL] local=[$LOCAL] shadow=[$SHADOW] '
        'env=[$FROM_ARG]" >> /args',
        NOP + " ENV SHADOW=from-env FROM_ARG=given-env",
        NOP + " ARG SHADOW=from-arg",
        NOP + " ARG LOCAL=l-default",
        NOP + " ARG GLOBAL",
        '/bin/sh -c echo "unseen=[$GLOBAL]" > /args',
    ]
    assert "[Warning] One or more build-args [UNUSED] were not consumed\n" in b.stream


def test_progress_counts_global_args_and_shows_from_as_written(daemon, made, ctx):
    """moby's dispatchDockerfileWithCancellation prints every global ARG as a step (and counts it in the total),
    and FROM as written (``stage.SourceCode``, before substitution); dockerd 20.10 here prints the same."""
    d = daemon
    b = api_build(d, ctx({"Dockerfile": "ARG BASE=busybox\nFROM ${BASE}:latest AS first\nENV X=1\n"})).ok()
    assert [(s.n, s.total, s.text) for s in b.steps] == [
        (1, 3, "ARG BASE=busybox"), (2, 3, "FROM ${BASE}:latest AS first"), (3, 3, "ENV X=1")]


def test_run_shell_and_exec_forms(daemon, made, ctx):
    """RUN's output is streamed; shell form runs through SHELL (created_by ``/bin/sh -ec ...`` after SHELL),
    exec form runs as given (created_by its words joined by spaces); a RUN that changes no file adds no layer
    (``empty_layer``: moby commits with ``layer.IsEmpty``; dockerd 20.10 here: ``RUN true`` is 0 B and not in
    RootFS)."""
    d, tag = daemon, made.tag()
    marker = uuid.uuid4().hex
    root = ctx({"Dockerfile": f"""FROM busybox:latest
RUN echo shell-{marker} && echo shell > /shell.txt
RUN ["sh", "-c", "echo exec > /exec.txt"]
RUN true
SHELL ["/bin/sh", "-ec"]
RUN echo "$0" > /shell0.txt
"""})
    b = api_build(d, root, t=tag).ok()
    assert f"shell-{marker}\n" in b.stream
    assert run(d, tag, "cat", "/shell.txt", "/exec.txt", "/shell0.txt") == "shell\nexec\n/bin/sh\n"
    assert created_by(d, tag) == [
        '/bin/sh -ec echo "$0" > /shell0.txt',
        "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]",
        "/bin/sh -c true",
        "sh -c echo exec > /exec.txt",
        f"/bin/sh -c echo shell-{marker} && echo shell > /shell.txt",
    ]
    hist = {h["created_by"]: h.get("empty_layer", False) for h in config_history(d, tag)[-5:]}
    assert hist["/bin/sh -c true"] is True
    assert hist["sh -c echo exec > /exec.txt"] is False


def test_run_heredoc(daemon, made, ctx):
    """``RUN <<EOF`` (the Dockerfile 1.4 syntax, which berth's parser reads as BuildKit does): the lines run as
    one script."""
    d, tag = daemon, made.tag()
    root = ctx({"Dockerfile": """FROM busybox:latest
RUN <<EOF
echo line1 > /heredoc.txt
echo line2 >> /heredoc.txt
EOF
RUN cat /heredoc.txt
"""})
    b = api_build(d, root, t=tag).ok()
    assert run(d, tag, "cat", "/heredoc.txt") == "line1\nline2\n"
    assert "line1\nline2\n" in b.stream


def test_copy_heredoc(daemon, made, ctx):
    """``COPY <<EOT /file`` (Dockerfile 1.4, as BuildKit does it): the heredoc becomes the file."""
    d, tag = daemon, made.tag()
    root = ctx({"Dockerfile": "FROM busybox:latest\nCOPY <<EOT /inline.txt\ninline content\nEOT\n"})
    api_build(d, root, t=tag).ok()
    assert run(d, tag, "cat", "/inline.txt") == "inline content\n"


# -- COPY and ADD ---------------------------------------------------------------------------------------------------

def test_copy_destinations(daemon, made, ctx):
    """Docker's COPY rules (dockerd 20.10 here gives this exact tree): a file to ``/dst`` is a file named dst,
    to ``/dst/`` goes inside; a directory's content is copied, not the directory; globs; several sources into a
    directory; a relative destination is under WORKDIR; a destination that is an existing directory is copied
    into even without a slash; created_by is ``COPY file:HASH in DEST `` (dir: for a directory, multi: for
    several)."""
    d, tag = daemon, made.tag()
    root = ctx({"a.txt": "A\n", "b.txt": "B\n", "c.md": "C\n", "sub/s.txt": "S\n", "sub/deep/d.txt": "D\n",
                "Dockerfile": """FROM busybox:latest
COPY a.txt /dst
COPY a.txt /dstdir/
COPY sub /subc
COPY sub/ /subslash
COPY *.txt /globbed/
COPY *.md /single
COPY a.txt b.txt /multi/
COPY a.txt /etc
WORKDIR /w
COPY a.txt rel
"""})
    api_build(d, root, t=tag).ok()
    out = run(d, tag, "sh", "-c", "find /dst /dstdir /subc /subslash /globbed /single /multi /w | sort; "
                                  "test -f /dst && cat /dst /single /etc/a.txt /w/rel")
    assert out == "\n".join([
        "/dst", "/dstdir", "/dstdir/a.txt", "/globbed", "/globbed/a.txt", "/globbed/b.txt", "/multi",
        "/multi/a.txt", "/multi/b.txt", "/single", "/subc", "/subc/deep", "/subc/deep/d.txt", "/subc/s.txt",
        "/subslash", "/subslash/deep", "/subslash/deep/d.txt", "/subslash/s.txt", "/w", "/w/rel",
        "A", "C", "A", "A", ""])
    hist = created_by(d, tag)
    assert re.fullmatch(NOP_RE + r"COPY file:[0-9a-f]{64} in rel ", hist[0]), hist[0]
    assert re.fullmatch(NOP_RE + r"COPY multi:[0-9a-f]{64} in /multi/ ", hist[3]), hist[3]
    assert re.fullmatch(NOP_RE + r"COPY dir:[0-9a-f]{64} in /subc ", hist[7]), hist[7]
    assert re.fullmatch(NOP_RE + r"COPY file:[0-9a-f]{64} in /dst ", hist[9]), hist[9]
    assert re.search(COPY_HASH, hist[8]).group() == re.search(COPY_HASH, hist[9]).group(), "one file, one hash"


@pytest.mark.parametrize("sources", ["a.txt b.txt", "*.txt"])
def test_copy_several_sources_need_a_directory(daemon, made, ctx, sources):
    """Several sources (given, or matched by a glob) into a destination without a trailing slash fail with
    Docker's text (dockerd 20.10 here; moby copy.go); nothing is tagged."""
    d, tag = daemon, made.tag()
    root = ctx({"a.txt": "A", "b.txt": "B", "Dockerfile": f"FROM busybox:latest\nCOPY {sources} /notdir\n"})
    b = api_build(d, root, t=tag)
    assert b.error == ("When using COPY with more than one source file, the destination must be a directory "
                       "and end with a /"), b.stream
    assert not exists(d, tag)


def test_copy_owners_and_modes(daemon, made, ctx):
    """From the context, files belong to root whoever owned them, and keep their modes; ``--chown`` sets both ids
    (a lone user id is the group too: moby's parseChownFlag); ``--chmod`` (BuildKit's flag, which berth takes)
    sets the mode; ``COPY --from`` keeps the owners it finds unless ``--chown`` (moby's dispatchCopy sets
    preserveOwnership; dockerd 20.10 here copies a 1000:1000 tree as 1000:1000)."""
    d, tag = daemon, made.tag()
    root = ctx({"x.sh": ("#!/bin/sh\n", 0o751), "r.txt": ("r\n", 0o640), "Dockerfile": """FROM busybox:latest AS src
RUN mkdir -p /tree/sub && echo t > /tree/sub/t.txt && chown -R 1000:1000 /tree
FROM busybox:latest
COPY x.sh r.txt /plain/
COPY --chown=1234:5678 r.txt /owned.txt
COPY --chown=4321 r.txt /user-only.txt
COPY --chmod=600 x.sh /chmod.sh
COPY --from=src /tree /kept
COPY --from=src --chown=7:8 /tree /chowned
"""})
    os.chown(root / "r.txt", 4321, 4321)
    api_build(d, root, owners=True, t=tag).ok()
    out = run(d, tag, "stat", "-c", "%n %u:%g %a", "/plain/x.sh", "/plain/r.txt", "/owned.txt", "/user-only.txt",
              "/chmod.sh", "/kept/sub", "/kept/sub/t.txt", "/chowned/sub/t.txt")
    assert out.splitlines() == [
        "/plain/x.sh 0:0 751", "/plain/r.txt 0:0 640", "/owned.txt 1234:5678 640", "/user-only.txt 4321:4321 640",
        "/chmod.sh 0:0 600", "/kept/sub 1000:1000 755", "/kept/sub/t.txt 1000:1000 644",
        "/chowned/sub/t.txt 7:8 644"]


def test_copy_chown_by_name(daemon, made, ctx):
    """``--chown`` names are looked up in the image's /etc/passwd and /etc/group (a lone user names the group
    too); an unknown name fails the build with moby's text."""
    d, tag = daemon, made.tag()
    root = ctx({"r.txt": "r\n", "Dockerfile": """FROM busybox:latest
RUN echo 'app:x:1500:1600::/:/bin/sh' >> /etc/passwd && echo 'app:x:1600:' >> /etc/group && echo 'ops:x:42:' >> /etc/group
COPY --chown=app r.txt /user.txt
COPY --chown=app:ops r.txt /both.txt
COPY --chown=nobody:0 r.txt /mixed.txt
"""})
    api_build(d, root, t=tag).ok()
    out = run(d, tag, "stat", "-c", "%n %u:%g", "/user.txt", "/both.txt", "/mixed.txt")
    assert out.splitlines() == ["/user.txt 1500:1600", "/both.txt 1500:42", "/mixed.txt 65534:0"]
    bad = ctx({"r.txt": "r\n", "Dockerfile": "FROM busybox:latest\nCOPY --chown=ghost r.txt /x\n"})
    b = api_build(d, bad, t=made.tag())
    assert b.error and "no such user: ghost" in b.error, b.error


def test_add_extracts_local_archives_and_copy_does_not(daemon, made, ctx, tmp_path):
    """ADD unpacks a local tar (plain or gzip) into the destination; COPY copies the archive as a file; ADD of
    a file that is no archive copies it."""
    d, tag = daemon, made.tag()
    src = tmp_path / "tarsrc"
    (src / "inner").mkdir(parents=True)
    (src / "inner" / "t.txt").write_text("t\n")
    root = ctx({"plain.txt": "p\n", "Dockerfile": """FROM busybox:latest
ADD arch.tar.gz /gz/
ADD arch.tar /plain-tar
COPY arch.tar /copied/
ADD plain.txt /added.txt
"""})
    for name, mode in (("arch.tar.gz", "w:gz"), ("arch.tar", "w")):
        with tarfile.open(root / name, mode) as t:
            t.add(src / "inner", "inner")
    api_build(d, root, t=tag).ok()
    out = run(d, tag, "sh", "-c", "find /gz /plain-tar /copied | sort; cat /gz/inner/t.txt /added.txt")
    assert out == "/copied\n/copied/arch.tar\n/gz\n/gz/inner\n/gz/inner/t.txt\n/plain-tar\n/plain-tar/inner\n" \
                  "/plain-tar/inner/t.txt\nt\np\n"


# -- stages ---------------------------------------------------------------------------------------------------------

MULTI = """FROM busybox:latest AS broken
RUN exit 1

FROM busybox:latest AS base
RUN echo base > /base.txt && mkdir -p /out/sub && echo o > /out/sub/o.txt
ENV FROM_BASE=1

FROM base AS derived
RUN echo derived > /derived.txt

FROM busybox:latest AS final
COPY --from=base /base.txt /from-base.txt
COPY --from=base /out /copied
COPY --from=1 /base.txt /by-index.txt
COPY --from=derived /derived.txt /derived.txt
COPY --from=busybox:latest /bin/busybox /from-image
CMD ["cat", "/from-base.txt"]

FROM scratch AS after
COPY nothing-here /x
"""


def test_multi_stage_copy_from_and_target(daemon, made, ctx):
    """COPY --from a stage by name or index, an image, and a stage built FROM another stage; ``--target`` builds
    the stages the target needs and no others: the ``RUN exit 1`` stage and the stage after the target never
    run. (That is BuildKit's rule, and issue 6's; moby's classic builder builds every stage up to the target,
    so dockerd 20.10 fails this build at ``RUN exit 1``.)"""
    d, tag, base_tag = daemon, made.tag(), made.tag()
    root = ctx({"Dockerfile": MULTI})
    b = api_build(d, root, t=tag, target="final").ok()
    assert "exit 1" not in b.stream and "nothing-here" not in b.stream
    out = run(d, tag, "sh", "-c", "cat /from-base.txt /by-index.txt /derived.txt; find /copied | sort; "
                                  "cmp /from-image /bin/busybox && echo same")
    assert out == "base\nbase\nderived\n/copied\n/copied/sub\n/copied/sub/o.txt\nsame\n"
    assert image(d, tag)["Config"]["Cmd"] == ["cat", "/from-base.txt"]

    b = api_build(d, root, t=base_tag, target="base").ok()
    assert [s.text for s in b.steps if s.text.startswith("FROM")] == ["FROM busybox:latest AS base"]
    assert "FROM_BASE=1" in image(d, base_tag)["Config"]["Env"]
    assert run(d, base_tag, "cat", "/base.txt") == "base\n"


def test_unknown_target(daemon, made, ctx):
    """moby 25+ builder.go: ``target stage "nosuch" could not be found`` (dockerd 20.10: ``failed to reach build
    target nosuch in Dockerfile``), an HTTP 400 answered before anything runs."""
    d, tag = daemon, made.tag()
    b = api_build(d, ctx({"Dockerfile": MULTI}), t=tag, target="nosuch")
    assert b.error == 'target stage "nosuch" could not be found', (b.status, b.error, b.stream)
    assert not exists(d, tag)
    assert b.status == 400, "an InvalidParameter before any output: an HTTP 400"


def test_onbuild_triggers_run_when_used_as_a_base(daemon, made, ctx):
    """A child FROM an image with ONBUILD runs its triggers first (in order, with the child's context), and its
    own OnBuild is empty so a grandchild runs nothing; moby's dispatchTriggeredOnBuild announces
    ``# Executing 2 build triggers``; the trigger steps enter the child's history as ordinary steps."""
    d, parent, child, grandchild = daemon, made.tag(), made.tag(), made.tag()
    api_build(d, ctx({"Dockerfile": "FROM busybox:latest\nONBUILD RUN echo triggered >> /onbuild.txt\n"
                                    "ONBUILD COPY a /a\n"}, "parent"), t=parent).ok()
    assert image(d, parent)["Config"]["OnBuild"] == ["RUN echo triggered >> /onbuild.txt", "COPY a /a"]

    b = api_build(d, ctx({"a": "from-child-context\n", "Dockerfile": f"FROM {parent}\nRUN cat /onbuild.txt /a\n"},
                         "child"), t=child).ok()
    assert "triggered\nfrom-child-context\n" in b.stream
    assert not image(d, child)["Config"].get("OnBuild")
    hist = created_by(d, child)
    assert hist[0] == "/bin/sh -c cat /onbuild.txt /a"
    assert re.fullmatch(NOP_RE + r"COPY file:[0-9a-f]{64} in /a ", hist[1]), hist
    assert hist[2] == "/bin/sh -c echo triggered >> /onbuild.txt"

    api_build(d, ctx({"Dockerfile": f"FROM {child}\nENV G=1\n"}, "grandchild"), t=grandchild).ok()
    assert run(d, grandchild, "cat", "/onbuild.txt") == "triggered\n", "triggers run once, in the child"
    assert "# Executing 2 build triggers\n" in b.stream


# -- .dockerignore (applied by the client) -------------------------------------------------------------------------

def test_dockerignore_through_the_docker_cli(daemon, made, ctx):
    d, tag = daemon, made.tag()
    docker_build(d, ctx(IGNORED_CTX), "-t", tag)
    assert sorted(run(d, tag, "find", "/ctx").split()) == IGNORED_TREE


def test_dockerignore_through_berth_build(daemon, made, ctx):
    d, tag = daemon, made.tag()
    if not berth_build_available(d):
        pytest.skip("berth build is not there yet")
    d.cli("build", "-t", tag, str(ctx(IGNORED_CTX)))
    assert sorted(run(d, tag, "find", "/ctx").split()) == IGNORED_TREE


def test_berth_build_flags(daemon, made, ctx):
    """``berth build -t -t -f --build-arg --label --target -q``: the ID alone on stdout, both tags, the label,
    the arg and the target."""
    d, tag, tag2 = daemon, made.tag(), made.tag()
    if not berth_build_available(d):
        pytest.skip("berth build is not there yet")
    root = ctx({"docker/Other.dockerfile": "FROM busybox:latest AS first\nARG V\nRUN echo \"v=$V\" > /v\n"
                                           "FROM first AS second\nRUN exit 1\n"})
    p = d.cli("build", "-q", "-t", tag, "-t", tag2, "-f", str(root / "docker/Other.dockerfile"),
              "--build-arg", "V=given", "--label", "lab=el", "--target", "first", str(root))
    iid = p.stdout.decode().strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", iid), p.stdout
    assert image(d, tag)["Id"] == image(d, tag2)["Id"] == iid
    assert image(d, tag)["Config"]["Labels"] == {"lab": "el"}
    assert run(d, tag, "cat", "/v") == "v=given\n"


# -- the cache --------------------------------------------------------------------------------------------------------

def cache_ctx(ctx, marker: str, name: str = "ctx"):
    return ctx({"a": "a1\n", "b": "b1\n", "Dockerfile": f"""FROM busybox:latest
RUN echo {marker} > /r1
COPY a /a
COPY b /b
RUN cat /a /b > /ab
CMD ["cat", "/ab"]
"""}, name)


def test_unchanged_rebuild_uses_the_cache_and_runs_nothing(daemon, made, ctx):
    """Every step says ``Using cache`` and gives the same image; no image is added (``images -a``) and no
    container is made (no container events between the two ends of the rebuild; the first build had some)."""
    d, tag = daemon, made.tag()
    root = cache_ctx(ctx, uuid.uuid4().hex)
    wait_for(lambda: containers(d) == [], 10, what="no container (so no stray event)")
    t0 = time.time()
    first = api_build(d, root, t=tag).ok()
    t1 = time.time()
    assert ("container", "create") in events(d, t0 - 1, t1 + 0.01)
    before = all_images(d)
    t2 = time.time()
    again = api_build(d, root, t=tag).ok()
    t3 = time.time()
    assert again.image_id == first.image_id
    assert [s.cached for s in again.steps[1:]] == [True] * 5, again.stream
    assert not any(s.ran for s in again.steps)
    assert [s.image for s in again.steps] == [s.image for s in first.steps]
    assert all_images(d) == before
    assert events(d, t2, t3 + 0.01) == []


def test_a_changed_file_rebuilds_from_its_copy_on(daemon, made, ctx):
    """Changing b's content reuses the steps before ``COPY b`` and rebuilds it and every later step; the cache
    key holds content and mode but not mtimes (moby's file hash zeroes them): a touched file is still a hit, a
    chmod is a miss."""
    d = daemon
    root = cache_ctx(ctx, uuid.uuid4().hex)
    first = api_build(d, root).ok()
    (root / "b").write_text("b2\n")
    changed = api_build(d, root).ok()
    assert [(s.text, s.cached) for s in changed.steps[1:]] == [
        (first.steps[1].text, True), ("COPY a /a", True), ("COPY b /b", False), ("RUN cat /a /b > /ab", False),
        ('CMD ["cat", "/ab"]', False)], changed.stream
    assert changed.steps[4].ran
    assert run(d, changed.image_id, "cat", "/ab") == "a1\nb2\n"

    os.utime(root / "a", (1_000_000_000, 1_000_000_000))
    touched = api_build(d, root).ok()
    assert touched.image_id == changed.image_id and all(s.cached for s in touched.steps[1:]), touched.stream

    os.chmod(root / "a", 0o600)
    chmodded = api_build(d, root).ok()
    assert [s.cached for s in chmodded.steps[1:]] == [True, False, False, False, False], chmodded.stream


def test_a_changed_build_arg_rebuilds_from_the_first_step_that_uses_it(daemon, made, ctx):
    """dockerd 20.10 here, and moby's dispatchRun/dispatchArg: ARG's own step and config-only steps after it
    are keyed without the arg's value, so they stay cached; every RUN after the ARG carries the args in scope in
    its key (``|1 V=two``), so the first RUN after it is the first miss, whether or not it reads ``$V``; the same
    value again is a hit."""
    d = daemon
    root = ctx({"Dockerfile": f"""FROM busybox:latest
RUN echo {uuid.uuid4().hex} > /before
ARG V=one
LABEL fixed=yes
RUN echo unrelated > /u
RUN echo "$V" > /v
"""})
    api_build(d, root).ok()
    b = api_build(d, root, buildargs={"V": "two"}).ok()
    assert [(s.text, s.cached) for s in b.steps[1:]] == [
        (b.steps[1].text, True), ("ARG V=one", True), ("LABEL fixed=yes", True),
        ("RUN echo unrelated > /u", False), ('RUN echo "$V" > /v', False)], b.stream
    assert run(d, b.image_id, "cat", "/v") == "two\n"
    again = api_build(d, root, buildargs={"V": "two"}).ok()
    assert again.image_id == b.image_id and all(s.cached for s in again.steps[1:])


def test_nocache_rebuilds_every_step(daemon, made, ctx):
    d = daemon
    root = cache_ctx(ctx, uuid.uuid4().hex)
    first = api_build(d, root).ok()
    b = api_build(d, root, nocache=True).ok()
    assert not any(s.cached for s in b.steps), b.stream
    assert b.steps[1].ran and b.steps[4].ran
    assert b.image_id != first.image_id


def test_the_cache_survives_a_berthd_restart(daemon, made, ctx):
    d = daemon
    root = cache_ctx(ctx, uuid.uuid4().hex)
    first = api_build(d, root).ok()
    d.stop()
    d.start()
    b = api_build(d, root).ok()
    assert b.image_id == first.image_id
    assert all(s.cached for s in b.steps[1:]), b.stream


def test_build_prune_forgets_the_cache(daemon, made, ctx):
    """``POST /build/prune`` answers Docker's shape, and the next build runs its steps again. (berth's cache is
    its own table, which prune empties; dockerd's classic cache is its intermediate images, which ``builder
    prune`` leaves alone: dockerd 20.10 here still says ``Using cache`` after it.)"""
    d = daemon
    root = cache_ctx(ctx, uuid.uuid4().hex)
    api_build(d, root).ok()
    status, body = d.api("POST", "/build/prune")
    assert status == 200 and set(body) >= {"CachesDeleted", "SpaceReclaimed"}, body
    b = api_build(d, root).ok()
    assert not any(s.cached for s in b.steps) and b.steps[1].ran, b.stream


def test_intermediate_images_are_hidden_unless_all(daemon, made, ctx):
    """Each step's image is listed by ``images -a`` only; the result's Parent is the previous step's image (as
    the classic builder records it; dockerd 20.10 here)."""
    d, tag = daemon, made.tag()
    b = api_build(d, cache_ctx(ctx, uuid.uuid4().hex), t=tag).ok()
    status, listed = d.api("GET", "/images/json")
    shown = {i["Id"][7:19] for i in listed}
    everything = {i[7:19] for i in all_images(d)}
    steps = [s.image for s in b.steps[1:-1]]
    assert b.image_id[7:19] in shown
    assert not shown & set(steps), "intermediate images are hidden from images"
    assert set(steps) <= everything, "images -a lists them"
    assert image(d, tag)["Parent"][7:19] == b.steps[-2].image


def test_run_mount_cache_is_kept_between_builds(daemon, made, ctx):
    """``RUN --mount=type=cache`` (BuildKit's flag; moby's classic builder refuses it): what one build leaves in
    the cache mount, the next build's step sees; it is not part of the image."""
    d = daemon
    target = f"/cache-{uuid.uuid4().hex[:8]}"
    one = api_build(d, ctx({"Dockerfile": f"FROM busybox:latest\nRUN --mount=type=cache,target={target} "
                                          f"echo one >> {target}/log\n"}, "one")).ok()
    two = api_build(d, ctx({"Dockerfile": f"FROM busybox:latest\nRUN --mount=type=cache,target={target} "
                                          f"cat {target}/log > /seen\n"}, "two")).ok()
    assert run(d, two.image_id, "cat", "/seen") == "one\n"
    assert run(d, one.image_id, "sh", "-c", f"ls -A {target} 2>/dev/null | wc -l").strip() == "0"


def test_run_mount_binds_from_the_context_and_from_a_stage(daemon, made, ctx):
    """``RUN --mount=type=bind``: the context (default source ".") or another stage's files, read-only unless
    ``rw``; nothing of them lands in the image, and a changed bound file misses the cache."""
    d = daemon
    dockerfile = """FROM busybox:latest AS tools
RUN mkdir -p /opt/t && echo tool > /opt/t/t.txt
FROM busybox:latest
RUN --mount=type=bind,target=/ctx cat /ctx/in.txt > /from-ctx
RUN --mount=type=bind,from=tools,source=/opt/t,target=/t cat /t/t.txt > /from-stage
RUN --mount=type=bind,target=/ro sh -c 'touch /ro/new 2>/dev/null && echo writable > /w || echo read-only > /w'
"""
    b = api_build(d, ctx({"in.txt": "input\n", "Dockerfile": dockerfile}, "m1"), t=made.tag()).ok()
    out = run(d, b.image_id, "sh", "-c", "cat /from-ctx /from-stage /w; find /ctx /t -mindepth 1 | wc -l")
    assert out.splitlines() == ["input", "tool", "read-only", "0"]  # (empty mount points stay, unlike BuildKit)
    again = api_build(d, ctx({"in.txt": "changed\n", "Dockerfile": dockerfile}, "m2"), t=made.tag()).ok()
    assert run(d, again.image_id, "cat", "/from-ctx") == "changed\n"


def test_add_from_a_url(daemon, made, ctx, tmp_path):
    """``ADD http://...``: the daemon downloads the file (served here on 127.0.0.1), mode 0600, never unpacked;
    COPY refuses URLs."""
    import http.server
    import threading
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "page.txt").write_text("served\n")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "srv"))  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/page.txt"
        b = api_build(daemon, ctx({"Dockerfile": f"FROM busybox:latest\nADD {url} /dl/\nADD {url} /named.txt\n"}),
                      t=made.tag()).ok()
        out = run(daemon, b.image_id, "sh", "-c", "cat /dl/page.txt; stat -c '%a %u' /dl/page.txt /named.txt")
        assert out.splitlines() == ["served", "600 0", "600 0"]
        bad = api_build(daemon, ctx({"Dockerfile": f"FROM busybox:latest\nCOPY {url} /x\n"}, "c"), t=made.tag())
        assert bad.error == "source can't be a URL for COPY", bad.error
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_cache_from_seeds_the_cache(daemon, made, ctx):
    """``cachefrom``: after the local cache is gone (builder prune), an image built from the same Dockerfile
    stands in for every step: nothing runs, and the result is that very image."""
    d = daemon
    dockerfile = "FROM busybox:latest\nRUN echo seeded > /s\nCOPY f.txt /f.txt\nENV K=v\nCMD [\"cat\", \"/s\"]\n"
    first = api_build(d, ctx({"f.txt": "f\n", "Dockerfile": dockerfile}, "a"), t=made.tag()).ok()
    assert d.api("POST", "/build/prune")[0] == 200
    again = api_build(d, ctx({"f.txt": "f\n", "Dockerfile": dockerfile}, "b"), t=made.tag(),
                      cachefrom=json.dumps([first.image_id])).ok()
    assert "Running in" not in again.stream and again.stream.count("Using cache") == 4, again.stream
    assert again.image_id == first.image_id
    cold = api_build(d, ctx({"f.txt": "other\n", "Dockerfile": dockerfile}, "c"), t=made.tag(),
                     cachefrom=json.dumps([first.image_id])).ok()
    assert cold.stream.count("Using cache") == 1  # the RUN; the changed COPY and all after it are built


# -- bad input ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dockerfile, params, message", [
    ("FROM busybox:latest\nRUN echo ok\nCOPY\n", {},
     "dockerfile parse error on line 3: COPY requires at least two arguments, but only one was provided. "
     "Destination could not be determined"),
    ("FROM busybox:latest\nRUN echo ok\nFOO bar\n", {},
     "dockerfile parse error on line 3: unknown instruction: FOO"),
    ("FROM busybox:latest\n", {"dockerfile": "Nope"}, "Cannot locate specified Dockerfile: Nope"),
], ids=["syntax", "unknown-instruction", "no-dockerfile"])
def test_errors_found_before_any_step_are_http_errors(daemon, made, ctx, dockerfile, params, message):
    """moby's postBuild answers an error found before any output as an HTTP error (400 for a parse error, 500
    for a missing Dockerfile), not as a 200 stream (dockerd 20.10 here: the same statuses; its texts say
    ``parse error line 3``, moby's vendored buildkit ``parse error on line 3`` and adds ``(did you mean FROM?)``
    to an unknown instruction); docker-py then raises APIError instead of BuildError. Nothing is tagged."""
    d, tag = daemon, made.tag()
    b = api_build(d, ctx({"Dockerfile": dockerfile}), t=tag, **params)
    assert b.error is not None and b.error.startswith(message), (b.status, b.error)
    assert not exists(d, tag)
    assert b.status == (500 if "dockerfile" in params else 400), (b.status, b.error)


def test_copy_source_missing(daemon, made, ctx):
    d, tag = daemon, made.tag()
    b = api_build(d, ctx({"Dockerfile": "FROM busybox:latest\nCOPY nothing /x\n"}), t=tag)
    assert b.status == 200 and b.error == ("COPY failed: file not found in build context or excluded by "
                                           ".dockerignore: stat nothing: file does not exist"), b.stream
    assert not exists(d, tag)


def test_copy_from_what_does_not_exist(daemon, made, ctx):
    """``COPY --from`` a name that is neither a stage nor a local image fails with moby's prefix ``invalid from
    flag value NAME`` (the name is a 127.0.0.1 registry's, so even a builder that pulls stays on this
    machine); nothing is tagged."""
    d, tag = daemon, made.tag()
    name = "127.0.0.1:9/no-such-stage:latest"
    b = api_build(d, ctx({"Dockerfile": f"FROM busybox:latest\nCOPY --from={name} /x /x\n"}), t=tag)
    assert b.error is not None and b.error.startswith(f"invalid from flag value {name}"), (b.status, b.error)
    assert not exists(d, tag)


def test_missing_base_image(daemon, made, ctx):
    """A FROM image berthd lacks fails the build (dockerd tries to pull it: the name is a 127.0.0.1 registry's
    that nothing answers on, so even a builder that pulls stays on this machine); nothing is tagged, nothing
    runs."""
    d, tag = daemon, made.tag()
    before = containers(d)
    name = "127.0.0.1:9/nothing/here:latest"
    b = api_build(d, ctx({"Dockerfile": f"FROM {name}\nRUN true\n"}), t=tag)
    assert b.error, (b.status, b.stream)
    assert not exists(d, tag) and containers(d) == before


def test_failing_run(daemon, made, ctx):
    """A RUN exiting 3: its output, then moby's ``The command '/bin/sh -c ...' returned a non-zero code: 3``
    with ``code`` 3 in errorDetail (which the docker CLI exits with); nothing is tagged; no build container is
    left (issue 6 asks for that; moby's classic builder keeps the failed container unless ``forcerm``); the steps
    before stay cached, so the next try starts at the RUN."""
    d, tag = daemon, made.tag()
    before = containers(d)
    marker = uuid.uuid4().hex
    root = ctx({"Dockerfile": f"FROM busybox:latest\nRUN echo {marker} > /m\nRUN echo out-{marker} && exit 3\n"})
    b = api_build(d, root, t=tag)
    assert b.status == 200
    assert b.error == f"The command '/bin/sh -c echo out-{marker} && exit 3' returned a non-zero code: 3"
    assert f"out-{marker}\n" in b.stream
    assert not exists(d, tag)
    wait_for(lambda: containers(d) == before, 10, what="the build's containers to go")
    again = api_build(d, root, t=tag)
    assert again.error == b.error
    assert again.steps[1].cached and not again.steps[1].ran and again.steps[2].ran, again.stream
    assert b.error_detail == {"code": 3, "message": b.error}


def test_failing_copy_leaves_no_container(daemon, made, ctx):
    d, tag = daemon, made.tag()
    before = containers(d)
    b = api_build(d, ctx({"a": "a", "Dockerfile": "FROM busybox:latest\nCOPY a /a\nCOPY missing /m\n"}), t=tag)
    assert b.error is not None and "missing" in b.error
    assert containers(d) == before
    assert not exists(d, tag)
