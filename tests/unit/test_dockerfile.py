"""The Dockerfile front end (berth.build.dockerfile): parsing, stages, substitution, history."""
from __future__ import annotations

import hashlib

import pytest

from berth.build.dockerfile import (
    CopySpec, Heredoc, Instruction, base_name, copy_parts, exec_or_shell, expand, instruction_vars, key_values,
    meta_args, needed_stages, parse, parse_trigger, run_mounts, run_script, stage_by_name)
from berth.build.history import created_by, go_duration, healthcheck, parse_duration, resolve_workdir, source_hash
from berth.errors import InvalidArgument


def one(text: str):
    """The only instruction of the first stage of ``FROM x`` + text."""
    df = parse("FROM x\n" + text)
    (inst,) = df.stages[0].instructions
    return inst


def err(text: str) -> str:
    with pytest.raises(InvalidArgument) as e:
        parse(text)
    return e.value.message


# ------------------------------------------------------------------ parsing

def test_stages_and_global_args():
    df = parse(
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=alpine\n"
        "ARG TAG\n"
        "FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-3} AS Builder\n"
        "RUN make\n"
        "\n"
        "# the runtime\n"
        "from scratch\n"
        "COPY --from=builder /out /\n"
    )
    assert df.syntax == "docker/dockerfile:1" and df.escape == "\\"
    assert [i.original for i in df.global_args] == ["ARG BASE=alpine", "ARG TAG"]
    b, r = df.stages
    assert (b.index, b.name, b.base, b.platform, b.line) == (0, "builder", "${BASE}:${TAG:-3}", "$BUILDPLATFORM", 4)
    assert b.original == "FROM --platform=$BUILDPLATFORM ${BASE}:${TAG:-3} AS Builder"
    assert [i.cmd for i in b.instructions] == ["run"]
    assert (r.index, r.name, r.base, r.line) == (1, "", "scratch", 8)
    assert r.instructions[0].flags == {"from": ["builder"]}


def test_continuations_comments_and_lines():
    inst = one("RUN apt-get update \\\n"
               "# a comment inside\n"
               "    && apt-get install -y \\\n"
               "\n"
               "      curl\n")
    assert inst.cmd == "run" and not inst.json
    assert inst.args == ("apt-get update     && apt-get install -y       curl",)
    assert (inst.line, inst.end_line) == (2, 6)


def test_escape_directive_backtick():
    df = parse("# escape=`\nFROM mcr/windows\nRUN dir c:\\ `\n  && echo done\nCOPY a\\b c:\\dst\\\n")
    assert df.escape == "`"
    run, copy = df.stages[0].instructions
    assert run.args == ("dir c:\\   && echo done",)
    assert copy.args == ("a\\b", "c:\\dst\\")
    assert process_path(copy, df.escape) == ("a\\b", "c:\\dst\\")


def process_path(inst, escape):
    e = expand(inst, {}, escape)
    return e.args


def test_escape_directive_after_check_directive_still_applies():
    df = parse("# check=skip=all\n# escape=`\nFROM x\nRUN a `\n  b\n")
    assert df.escape == "`"
    assert df.stages[0].instructions[0].args == ("a   b",)
    assert df.stages[0].instructions[0].line == 4


def test_directive_only_at_top():
    df = parse("FROM x\n# escape=`\nRUN a \\\n  b\n")
    assert df.escape == "\\"
    assert df.stages[0].instructions[0].args == ("a   b",)


def test_json_and_shell_forms():
    assert one('CMD ["echo", "a b"]').json is True
    assert one('CMD ["echo", "a b"]').args == ("echo", "a b")
    assert one("CMD echo 'a b'").args == ("echo 'a b'",)
    assert one("CMD [not json").json is False
    assert one('ENTRYPOINT ["/bin/app"]').args == ("/bin/app",)
    assert one('SHELL ["/bin/bash", "-o", "pipefail", "-c"]').args == ("/bin/bash", "-o", "pipefail", "-c")


def test_lowercase_instructions_and_flags():
    inst = one("copy --chown=1000:1000 --link --chmod=644 a b /dst/")
    assert inst.cmd == "copy"
    assert inst.flags == {"chown": ["1000:1000"], "link": ["true"], "chmod": ["644"]}
    assert inst.flag("chown") == "1000:1000" and inst.flag("from", "none") == "none"
    run = one("RUN --mount=type=cache,target=/root/.cache --mount=type=bind,source=x,target=/x "
              "--network=none pip install .")
    assert run.flags["mount"] == ["type=cache,target=/root/.cache", "type=bind,source=x,target=/x"]
    assert run.flag("network") == "none"
    assert run_mounts(run) == [{"type": "cache", "target": "/root/.cache"},
                               {"type": "bind", "source": "x", "target": "/x"}]
    assert run_mounts(one("RUN --mount=target=/a,ro,from=base x")) == [
        {"type": "bind", "target": "/a", "ro": "true", "from": "base"}]


def test_heredocs():
    run = one("RUN <<EOF\necho hello\necho $HOME\nEOF\n")
    assert run.args == ("<<EOF",)
    assert run.heredocs == (Heredoc("EOF", "echo hello\necho $HOME\n", False, True, 0),)
    assert run.original == "RUN <<EOF"
    chomp = one('RUN <<-"EOT" cat > /x\n\tkeep $X\n\t\tEOT\n').heredocs[0]
    # the terminator may be indented with tabs for <<-; Docker's parser matches "EOT" after trimming
    assert (chomp.name, chomp.chomp, chomp.expand) == ("EOT", True, False)
    assert chomp.content == "\tkeep $X\n" and chomp.data == "keep $X\n"
    two = one("COPY <<one.txt <<'two.txt' /dst/\n1 $A\none.txt\n2 $A\ntwo.txt\n")
    assert [(h.name, h.expand, h.content) for h in two.heredocs] == [
        ("one.txt", True, "1 $A\n"), ("two.txt", False, "2 $A\n")]
    fd = one("RUN 3<<EOF cat /proc/self/fd/3\nx\nEOF\n").heredocs[0]
    assert fd.fd == 3


def test_env_forms():
    assert key_values(one("ENV A=1 B=\"two words\" C=c\\ d")) == [("A", "1"), ("B", '"two words"'), ("C", "c\\ d")]
    assert key_values(one("ENV PATH /usr/local/bin:$PATH extra  words")) == [
        ("PATH", "/usr/local/bin:$PATH extra  words")]
    assert key_values(one('LABEL "com.example.a b"=c version="1.0"')) == [
        ('"com.example.a b"', "c"), ("version", '"1.0"')]
    assert key_values(one("ARG A=1 B C=")) == [("A", "1"), ("B", None), ("C", "")]


def test_onbuild_triggers():
    df = parse("FROM x\nONBUILD RUN echo hi\n  onbuild   COPY --from=b a /b\nONBUILD RUN <<EOF\necho $A\nEOF\n")
    exprs = [i.args[0] for i in df.stages[0].instructions]
    assert exprs == ["RUN echo hi", "COPY --from=b a /b", "RUN <<EOF\necho $A\nEOF"]
    copy = parse_trigger(exprs[1])
    assert (copy.cmd, copy.flags, copy.args) == ("copy", {"from": ["b"]}, ("a", "/b"))
    run = parse_trigger(exprs[2])
    assert exec_or_shell(run) == ["/bin/sh", "-c", "echo $A\n"]
    with pytest.raises(InvalidArgument, match="onbuild trigger should be a single expression"):
        parse_trigger("RUN a\nRUN b")


@pytest.mark.parametrize("text, msg", [
    ("", "the Dockerfile (Dockerfile) cannot be empty"),
    ("\n\n", "failed to parse Dockerfile: file with no instructions"),
    ("# just a comment\n", "failed to parse Dockerfile: file with no instructions"),
    ("FROM x\nRUN a\nFORM y\n", "dockerfile parse error on line 3: unknown instruction: FORM (did you mean FROM?)"),
    ("FROM x\nfrm y\n", "dockerfile parse error on line 2: unknown instruction: frm (did you mean from?)"),
    ("FROM x\nBOGUS y\n", "dockerfile parse error on line 2: unknown instruction: BOGUS"),
    ("FROM x AS\n", "dockerfile parse error on line 1: FROM requires either one or three arguments"),
    ("FROM x AS 1st\n", 'dockerfile parse error on line 1: invalid name for build stage: "1st", '
                        "name can't start with a number or contain symbols"),
    ("FROM x AS a\nFROM y AS A\n", "a stage name already used"),
    ("RUN echo\n", "no build stage in current context"),
    ("FROM x\nONBUILD ONBUILD RUN x\n", "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM x\nONBUILD FROM y\n", "dockerfile parse error on line 2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM x\nONBUILD maintainer me\n", "dockerfile parse error on line 2: MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM x\nRUN a\n\nENV a\n", "dockerfile parse error on line 4: ENV must have two arguments"),
    ("FROM x\nLABEL a=b c\n", 'dockerfile parse error on line 2: Syntax error - can\'t find = in "c". '
                              "Must be of the form: name=value"),
    ("FROM x\nRUN <<A\na\nA\nRUN b\nRUN <<B\nb\n", "dockerfile parse error on line 6: unterminated heredoc"),
    ("# escape=x\nFROM y\n", "dockerfile parse error on line 1: invalid escape token 'x' does not match ` or \\"),
    ("FROM x\nCOPY a\n", "dockerfile parse error on line 2: COPY requires at least two arguments, "
                         "but only one was provided. Destination could not be determined"),
    ("FROM x\nCOPY a <<EOF\nx\nEOF\n", "dockerfile parse error on line 2: COPY cannot accept a heredoc as a destination"),
    ("FROM x\nCOPY --form=a b c\n", "dockerfile parse error on line 2: unknown flag: --form (did you mean from?)"),
    ("FROM x\nCOPY --link=maybe b c\n", "dockerfile parse error on line 2: expecting boolean value for flag --link, not: maybe"),
    ("FROM x\nCOPY --from b c\n", "dockerfile parse error on line 2: missing a value on flag: --from"),
    ("FROM x\nCOPY --from=a --from=b b c\n", "dockerfile parse error on line 2: duplicate flag specified: --from"),
    ("FROM x\nENV --x=1 a=b\n", "dockerfile parse error on line 2: unknown flag: --x"),
    ("FROM x\nSHELL /bin/bash -c\n", "dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM x\nWORKDIR\n", "dockerfile parse error on line 2: WORKDIR requires exactly one argument"),
    ("FROM x\nEXPOSE\n", "dockerfile parse error on line 2: EXPOSE requires at least one argument"),
    ('FROM x\nVOLUME [" "]\n', "dockerfile parse error on line 2: VOLUME specified can not be an empty string"),
    ("FROM x\nARG =v\n", "dockerfile parse error on line 2: ARG names can not be blank"),
    ("FROM x\nRUN --network=bridge a\n", 'dockerfile parse error on line 2: invalid network mode "bridge"'),
    ("FROM x\nHEALTHCHECK --interval=5 CMD a\n", 'dockerfile parse error on line 2: time: missing unit in duration "5"'),
    ("FROM x\nHEALTHCHECK --timeout=500us CMD a\n", 'dockerfile parse error on line 2: Interval "timeout" cannot be less than 1ms'),
    ("FROM x\nHEALTHCHECK --retries=-1 CMD a\n", "dockerfile parse error on line 2: --retries cannot be negative (-1)"),
    ("FROM x\nHEALTHCHECK --retries=x CMD a\n", 'dockerfile parse error on line 2: strconv.ParseInt: parsing "x": invalid syntax'),
    ("FROM x\nHEALTHCHECK CMD\n", "dockerfile parse error on line 2: Missing command after HEALTHCHECK CMD"),
    ("FROM x\nHEALTHCHECK RUN a\n", 'dockerfile parse error on line 2: Unknown type "RUN" in HEALTHCHECK (try CMD)'),
    ("FROM x\nHEALTHCHECK NONE a\n", "dockerfile parse error on line 2: HEALTHCHECK NONE takes no arguments"),
])
def test_errors(text, msg):
    assert err(text) == msg


def test_empty_dockerfile_names_the_file():
    assert err_named("", "Dockerfile.dev") == "the Dockerfile (Dockerfile.dev) cannot be empty"


def err_named(text, name):
    with pytest.raises(InvalidArgument) as e:
        parse(text, name)
    return e.value.message


# ------------------------------------------------------------------ stages

MULTI = """\
ARG GO=1.22
FROM golang:${GO} AS base
RUN go mod download
FROM base AS build
RUN go build -o /app
FROM alpine AS tools
RUN apk add curl
FROM busybox AS unused
FROM scratch AS final
COPY --from=build /app /app
COPY --from=2 /usr/bin/curl /curl
"""


def test_stage_by_name():
    df = parse(MULTI)
    assert stage_by_name(df, "BUILD").name == "build"
    assert stage_by_name(df, "1").name == "build"
    assert stage_by_name(df, "alpine:3") is None
    assert stage_by_name(df, "final", current=2) is None  # only earlier stages count
    with pytest.raises(InvalidArgument, match="invalid from flag value 2: refers to current build stage"):
        stage_by_name(df, "2", current=2)
    with pytest.raises(InvalidArgument, match="invalid from flag value 9: index out of bounds"):
        stage_by_name(df, "9")


def test_needed_stages():
    df = parse(MULTI)
    assert [s.name for s in needed_stages(df)] == ["base", "build", "tools", "final"]
    assert [s.name for s in needed_stages(df, "build")] == ["base", "build"]
    assert [s.name for s in needed_stages(df, "Tools")] == ["tools"]
    with pytest.raises(InvalidArgument, match='target stage "nope" could not be found'):
        needed_stages(df, "nope")


def test_needed_stages_follow_from_args_and_mounts():
    df = parse("ARG SRC=one\nFROM alpine AS one\nFROM alpine AS two\n"
               "FROM ${SRC}\nRUN --mount=type=bind,from=two,target=/t ls /t\n")
    assert [s.name for s in needed_stages(df)] == ["one", "two", ""]
    assert [s.name for s in needed_stages(df, build_args={"SRC": "alpine"})] == ["two", ""]


def test_meta_args_and_base_name():
    df = parse(MULTI)
    meta = meta_args(df, {"GO": "1.23", "NOT_DECLARED": "x"})
    assert meta == {"GO": "1.23"}
    assert base_name(df, df.stages[0], meta) == "golang:1.23"
    assert base_name(df, df.stages[0], meta_args(df)) == "golang:1.22"
    df2 = parse("ARG IMG\nFROM ${IMG}\n")
    with pytest.raises(InvalidArgument, match=r"base name \(\$\{IMG\}\) should not be blank"):
        base_name(df2, df2.stages[0], meta_args(df2))


# ------------------------------------------------------------------ substitution

def test_expand_where_docker_does():
    env = {"A": "1", "D": "/dst", "U": "app", "P": "80 443", "X": "x"}
    assert key_values(expand(one('ENV B=$A C="${A} two" $A=k'), env)) == [("B", "1"), ("C", "1 two"), ("1", "k")]
    assert expand(one("ENV A=2 B=$A"), env).args == ("A", "2", "B", "1")  # one instruction sees the old A
    assert key_values(expand(one("ARG V=${A}0 W"), env)) == [("V", "10"), ("W", None)]
    assert expand(one("WORKDIR $D/sub"), env).args == ("/dst/sub",)
    assert expand(one("USER ${U}:${U}"), env).args == ("app:app",)
    assert expand(one("EXPOSE 8080 $P"), env).args == ("80", "443", "8080")
    assert expand(one("VOLUME [\"$D\", \" /v \"]"), env).args == ("/dst", "/v")
    copy = expand(one("COPY --chown=$U --from=$X a$A 'b'c $D/"), env)
    assert copy.args == ("a1", "bc", "/dst/") and copy.flags == {"chown": ["app"], "from": ["$X"]}
    assert expand(one('COPY ["a b", "$D/"]'), env).args == ("a b", "/dst/")
    with pytest.raises(InvalidArgument, match="""failed to process "'b": unexpected end"""):
        expand(one("COPY 'b c' /d/"), env)  # shell form splits on whitespace first, as Docker does
    assert expand(one("RUN echo $A"), env).args == ("echo $A",)  # left to the shell
    assert expand(one("CMD echo $A"), env).args == ("echo $A",)
    run = expand(one("RUN --mount=type=cache,target=$D,id=c$A make"), env)
    assert run.flags["mount"] == ["type=cache,target=/dst,id=c1"]


def test_expand_heredoc_contents():
    env = {"A": "1"}
    plain, quoted = expand(one("COPY <<a <<\"b\" /d/\n$A \"q\" \\$A\na\n$A\nb\n"), env).heredocs
    assert plain.content == '1 "q" $A\n'
    assert quoted.content == "$A\n"
    spec = copy_parts(expand(one("COPY <<-EOF /f\n\t$A\n\tEOF\n"), env))
    assert spec.sources == () and spec.dest == "/f" and spec.files[0].data == "1\n"


def test_instruction_vars():
    assert instruction_vars(one("ENV A=$B C=${D:-$E}")) == {"B", "D", "E"}
    assert instruction_vars(one("RUN echo $A")) == set()
    assert instruction_vars(one("COPY --chown=$U src/$F /dst/")) == {"U", "F"}
    assert instruction_vars(one("COPY <<EOF /f\n$IN\nEOF\n")) == {"IN"}
    assert instruction_vars(one("COPY <<'EOF' /f\n$IN\nEOF\n")) == set()
    assert instruction_vars(one("EXPOSE $PORTS")) == {"PORTS"}


# ------------------------------------------------------------------ helpers

def test_exec_or_shell():
    assert exec_or_shell(one("RUN echo hi")) == ["/bin/sh", "-c", "echo hi"]
    assert exec_or_shell(one('RUN ["echo", "hi"]')) == ["echo", "hi"]
    assert exec_or_shell(one("CMD echo hi"), ["bash", "-c"]) == ["bash", "-c", "echo hi"]
    assert exec_or_shell(one("ENTRYPOINT []")) == []
    assert exec_or_shell(one("RUN <<EOF\necho a\nEOF\n")) == ["/bin/sh", "-c", "echo a\n"]
    assert exec_or_shell(one("RUN <<-EOF\n\techo a\n\tEOF\n")) == ["/bin/sh", "-c", "echo a\n"]
    assert exec_or_shell(one("RUN python3 <<EOF > /out\nprint(1)\nEOF\n")) == [
        "/bin/sh", "-c", "python3 <<EOF > /out\nprint(1)\nEOF"]
    script = one("RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n")
    assert exec_or_shell(script) == ["/bin/sh", "-c", "/dev/pipes/EOF"]
    assert run_script(script) == ("EOF", "#!/usr/bin/env python3\nprint(1)\n")
    assert run_script(one("RUN <<EOF\necho\nEOF\n")) is None
    assert exec_or_shell(one("HEALTHCHECK CMD curl -f http://localhost/")) == [
        "/bin/sh", "-c", "curl -f http://localhost/"]


def test_copy_parts():
    spec = copy_parts(one("COPY --from=build --chown=1:2 --chmod=755 --link --parents --exclude=*.md "
                          "--exclude=.git a b /dst/"))
    assert spec == CopySpec(("a", "b"), "/dst/", (), "build", "1:2", "755", True, True, ("*.md", ".git"))
    add = copy_parts(one("ADD --checksum=sha256:abc --keep-git-dir=false https://x/y.tgz /"))
    assert (add.checksum, add.keep_git_dir, add.unpack, add.sources) == ("sha256:abc", False, None, ("https://x/y.tgz",))
    assert copy_parts(one('COPY ["a b", "/c d/"]')).sources == ("a b",)


def test_healthcheck():
    hc = healthcheck(one("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=1.5s "
                         "--start-interval=500ms --retries=3 CMD curl -f http://x/ || exit 1"))
    assert hc == {"Test": ["CMD-SHELL", "curl -f http://x/ || exit 1"], "Interval": 30 * 10**9,
                  "Timeout": 90 * 10**9, "StartPeriod": 1_500_000_000, "StartInterval": 500_000_000, "Retries": 3}
    assert healthcheck(one('healthcheck cmd ["/check", "-q"]')) == {"Test": ["CMD", "/check", "-q"]}
    assert healthcheck(one("HEALTHCHECK NONE")) == {"Test": ["NONE"]}
    assert healthcheck(one("HEALTHCHECK --interval=0s CMD true")) == {"Test": ["CMD-SHELL", "true"]}
    assert healthcheck(one("RUN a")) is None


@pytest.mark.parametrize("text, ns", [
    ("0", 0), ("5s", 5 * 10**9), ("1.5h", 5400 * 10**9), ("300ms", 3 * 10**8), ("1m30s", 90 * 10**9),
    ("-2us", -2000), ("1µs", 1000), (".5s", 5 * 10**8), ("1h2m3s4ms", 3723004000000),
])
def test_parse_duration(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("ns, text", [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (5 * 10**8, "500ms"), (1_500_000_000, "1.5s"),
    (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"), (3723004000000, "1h2m3.004s"), (-5 * 10**9, "-5s"),
])
def test_go_duration(ns, text):
    assert go_duration(ns) == text


def test_resolve_workdir():
    assert resolve_workdir("", "app") == "/app"
    assert resolve_workdir("/app", "sub/../x") == "/app/x"
    assert resolve_workdir("/app", "/abs//dir/") == "/abs/dir"
    assert resolve_workdir("/", "//x") == "/x"


def test_source_hash():
    assert source_hash(["file:abc"]) == "file:abc"
    assert source_hash(["file:a", "dir:b"]) == "multi:" + hashlib.sha256(b"file:a,dir:b").hexdigest()


# ------------------------------------------------------------------ history

@pytest.mark.parametrize("text, kwargs, expected", [
    ('CMD ["sh"]', {}, '/bin/sh -c #(nop)  CMD ["sh"]'),
    ("CMD echo hi", {}, '/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo hi"]'),
    ('ENTRYPOINT ["/app", "--flag=\\"x\\""]', {}, '/bin/sh -c #(nop)  ENTRYPOINT ["/app" "--flag=\\"x\\""]'),
    ("ENV A=1 B=\"2 3\"", {}, "/bin/sh -c #(nop)  ENV A=1 B=2 3"),
    ("ENV PATH /x:$PATH", {}, "/bin/sh -c #(nop)  ENV PATH=/x:/bin"),
    ("LABEL a=b \"c d\"=e", {}, "/bin/sh -c #(nop)  LABEL a=b c d=e"),
    ("ARG A=1 B", {}, "/bin/sh -c #(nop)  ARG A=1 B"),
    ("EXPOSE 8080 80/udp 443", {}, "/bin/sh -c #(nop)  EXPOSE 443 80/udp 8080"),
    ("USER 1000:1000", {}, "/bin/sh -c #(nop)  USER 1000:1000"),
    ("VOLUME /a /b", {}, "/bin/sh -c #(nop)  VOLUME [/a /b]"),
    ("STOPSIGNAL SIGTERM", {}, "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM"),
    ("MAINTAINER me <me@x>", {}, "/bin/sh -c #(nop)  MAINTAINER me <me@x>"),
    ("ONBUILD RUN make", {}, "/bin/sh -c #(nop)  ONBUILD RUN make"),
    ('SHELL ["/bin/bash", "-c"]', {}, "/bin/bash -c #(nop)  SHELL [/bin/bash -c]"),
    ("HEALTHCHECK --interval=5s CMD curl x", {},
     "/bin/sh -c #(nop)  HEALTHCHECK &{Test:[CMD-SHELL curl x] Interval:5s Timeout:0s StartPeriod:0s "
     "StartInterval:0s Retries:0}"),
    ("HEALTHCHECK NONE", {},
     "/bin/sh -c #(nop)  HEALTHCHECK &{Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}"),
    ("WORKDIR sub", {"workdir": "/app/sub"}, "/bin/sh -c #(nop) WORKDIR /app/sub"),
    ("COPY a /dst", {"source_hashes": ["file:0123"]}, "/bin/sh -c #(nop) COPY file:0123 in /dst "),
    ("ADD --chown=1:1 a b /d/", {"source_hashes": ["file:1", "file:2"]},
     "/bin/sh -c #(nop) ADD --chown=1:1 multi:" + hashlib.sha256(b"file:1,file:2").hexdigest() + " in /d/ "),
    ("RUN echo hi", {}, "/bin/sh -c echo hi"),
    ('RUN ["echo", "hi"]', {}, "echo hi"),
    ("RUN echo $V", {"run_args": ["V=1", "W=2"]}, "|2 V=1 W=2 /bin/sh -c echo $V"),
    ("RUN true", {"run_args": []}, "|0 /bin/sh -c true"),
])
def test_created_by(text, kwargs, expected):
    inst = expand(one(text), {"PATH": "/bin"})
    assert created_by(inst, **kwargs) == expected


def test_created_by_with_custom_shell():
    assert created_by(one("RUN echo hi"), ["/bin/bash", "-c"]) == "/bin/bash -c echo hi"
    assert created_by(one("USER x"), ["/bin/bash", "-c"]) == "/bin/bash -c #(nop)  USER x"
    with pytest.raises(ValueError):
        created_by(Instruction("from", ("x",)))
