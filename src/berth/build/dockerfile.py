"""The Dockerfile front end: parse to stages of instructions, and pure helpers for the executor.

Lines are split by Docker's own parser (the ``dockerfile`` package wraps BuildKit's Go
parser); this module adds what BuildKit's ``instructions`` package and moby's classic
builder check and compute: instruction and flag validation with Docker's messages, stages,
variable substitution sites, command lines. HEALTHCHECK configs and history ``created_by`` are in
``berth.build.history``.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Callable

import dockerfile as _gofile

from berth.build.words import BuildArgs, process, process_word, process_words, used_vars
from berth.errors import InvalidArgument
from berth.types.units import go_quote

DEFAULT_SHELL = ("/bin/sh", "-c")
COMMANDS = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
            "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir")
# flag kinds: s = string (once), S = strings (repeatable), b = bool
_FLAGS = {
    "from": {"platform": "s"},
    "add": {"chown": "s", "chmod": "s", "link": "b", "keep-git-dir": "b", "checksum": "s",
            "unpack": "b", "exclude": "S"},
    "copy": {"chown": "s", "from": "s", "chmod": "s", "link": "b", "exclude": "S", "parents": "b"},
    "run": {"mount": "S", "network": "s", "security": "s", "device": "S"},
    "healthcheck": {"interval": "s", "timeout": "s", "start-period": "s", "start-interval": "s",
                    "retries": "s"},
}
_HEREDOC_RE = re.compile(r"(\d*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_STAGE_NAME_RE = re.compile(r"[a-z][a-z0-9-_.]*\Z")
_DIRECTIVE_RE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*\Z")


@dataclass(frozen=True)
class Heredoc:
    """A here-document: ``content`` as written; ``data`` with leading tabs removed for ``<<-``."""

    name: str
    content: str
    chomp: bool = False
    expand: bool = True  # False when the delimiter is quoted: <<"EOF", <<'EOF'
    fd: int = 0

    @property
    def data(self) -> str:
        return re.sub(r"(?m)^\t+", "", self.content) if self.chomp else self.content


@dataclass(frozen=True)
class Instruction:
    """One instruction; ``args`` are the parser's values before substitution.

    ENV/LABEL: key, value, key, value ...; ARG: ``NAME[=default]`` words; RUN/CMD/ENTRYPOINT/
    SHELL: the exec-form list, or the shell-form command line as one string; HEALTHCHECK:
    ``("CMD", ...)`` or ``("NONE",)``; ONBUILD: the trigger expression (see parse_trigger).
    ``flags`` maps names to values (bool flags: ["true"] or ["false"]).
    """

    cmd: str
    args: tuple[str, ...]
    flags: dict[str, list[str]] = field(default_factory=dict)
    json: bool = False
    heredocs: tuple[Heredoc, ...] = ()
    original: str = ""
    line: int = 0
    end_line: int = 0

    def flag(self, name: str, default: str = "") -> str:
        """The last value of a flag, or ``default``."""
        values = self.flags.get(name)
        return values[-1] if values else default


@dataclass
class Stage:
    index: int
    name: str  # lowercased AS name, or ""
    base: str  # FROM's image word before ARG substitution
    platform: str = ""
    instructions: list[Instruction] = field(default_factory=list)
    original: str = ""  # the FROM line, for "Step 1/4 : FROM busybox"
    line: int = 0


@dataclass
class Dockerfile:
    escape: str
    syntax: str
    global_args: list[Instruction]
    stages: list[Stage]


class _Fail(InvalidArgument):
    """An instruction-level error; parse() adds the line."""


def _fail_at(line: int, msg: str) -> InvalidArgument:
    return InvalidArgument(f"dockerfile parse error on line {line}: {msg}")


# ------------------------------------------------------------------ parsing

def parse(text: str, filename: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile; errors are InvalidArgument with Docker's texts and the line."""
    if text == "":
        raise InvalidArgument(f"the Dockerfile ({filename}) cannot be empty")
    escape, syntax, text = _directives(text)
    commands = _go_parse(text, filename)
    lines = text.split("\n")
    df = Dockerfile(escape, syntax, [], [])
    names: set[str] = set()
    for c in commands:
        inst = _convert(c, lines, escape)
        if inst.cmd == "from":
            stage = _stage(inst, len(df.stages))
            if stage.name in names:
                raise InvalidArgument(f"{stage.name} stage name already used")
            names.add(stage.name)
            df.stages.append(stage)
        elif df.stages:
            df.stages[-1].instructions.append(inst)
        elif inst.cmd == "arg":
            df.global_args.append(inst)
        else:
            raise InvalidArgument("no build stage in current context")
    return df


def parse_trigger(expression: str) -> Instruction:
    """Parse an ONBUILD trigger (from an image's OnBuild) as the classic builder does."""
    commands = _go_parse(expression, "Dockerfile")
    if len(commands) != 1:
        raise InvalidArgument("onbuild trigger should be a single expression")
    inst = _convert(commands[0], expression.split("\n"), "\\")
    if inst.cmd == "from":
        raise InvalidArgument("*instructions.Stage is not a command type")
    return inst


def _directives(text: str) -> tuple[str, str, str]:
    """Read ``# escape=`` / ``# syntax=`` from the top; put escape first for the Go parser."""
    lines = text.split("\n")
    escape, syntax, at = "\\", "", -1
    for i, raw in enumerate(lines):
        line = (raw[1:] if i == 0 and raw.startswith("\ufeff") else raw).rstrip("\r").lstrip()
        m = _DIRECTIVE_RE.match(line)
        key = m.group(1).lower() if m else ""
        if key not in ("escape", "syntax", "check"):
            break
        if key == "escape" and at < 0:
            escape, at = m.group(2), i
        elif key == "syntax":
            syntax = m.group(2)
    if at > 0:  # the wrapped parser stops at directives it does not know (check)
        bom = "\ufeff" if lines[0].startswith("\ufeff") else ""
        lines[0], lines[at] = bom + lines[at], lines[0][len(bom):]
        text = "\n".join(lines)
    return escape, syntax, text


def _go_parse(text: str, filename: str) -> tuple:
    try:
        return _gofile.parse_string(text)
    except _gofile.GoParseError as e:
        msg = str(e)
    if msg == "file with no instructions":
        raise InvalidArgument(f"failed to parse {filename}: {msg}")
    raise _fail_at(_error_line(text, msg), msg)


def _error_line(text: str, msg: str) -> int:
    """The Go parser's error has no line: find it by parsing prefixes of the text."""
    lines = text.split("\n")

    def fails_with(n: int, what: str) -> bool:
        try:
            _gofile.parse_string("\n".join(lines[:n]) + "\n")
        except _gofile.GoParseError as e:
            return str(e) == what
        return False

    if msg == "unterminated heredoc":  # the start of the last heredoc, which runs to the end
        n = len(lines)
        while n > 0 and fails_with(n - 1, msg):
            n -= 1
        return max(n, 1)
    lo, hi = 1, len(lines)
    while lo < hi:
        mid = (lo + hi) // 2
        if fails_with(mid, msg):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _convert(c, lines: list[str], escape: str) -> Instruction:
    cmd = c.cmd.lower()
    original = c.original.split("\n", 1)[0].strip()
    base = Instruction(cmd, tuple(c.value), {}, bool(c.json), (), original, c.start_line, c.end_line)
    if cmd not in COMMANDS:
        raise _fail_at(c.start_line, f"unknown instruction: {c.cmd}{_suggest(c.cmd, COMMANDS, False)}")
    try:
        if cmd == "onbuild":
            return _onbuild(c, base, lines, escape)
        none = cmd == "healthcheck" and bool(c.value) and c.value[0].upper() == "NONE"
        flags = {} if cmd == "stopsignal" or none else _parse_flags(c.flags, _FLAGS.get(cmd, {}))
        inst = replace(base, flags=flags, heredocs=_heredocs(original, c.heredocs))
        _validate(inst)
    except _Fail as e:
        raise _fail_at(c.start_line, str(e)) from None
    return inst


def _onbuild(c, base: Instruction, lines: list[str], escape: str) -> Instruction:
    sub = (c.sub_cmd or "").upper()
    if not sub:
        raise _Fail("ONBUILD requires at least one argument")
    if sub == "ONBUILD":
        raise _Fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if sub in ("MAINTAINER", "FROM"):
        raise _Fail(f"{sub} isn't allowed as an ONBUILD trigger")
    expr = re.sub(r"(?i)^\s*ONBUILD\s*", "", c.original.split("\n", 1)[0])
    if c.end_line > c.start_line and "<<" in expr:  # the wrapper drops a trigger's heredocs
        body = lines[c.start_line - 1:c.end_line]
        body[0] = re.sub(r"(?i)^\s*ONBUILD\s*", "", body[0])
        prefix = "" if escape == "\\" else f"# escape={escape}\n"
        try:
            docs = _gofile.parse_string(prefix + "\n".join(body) + "\n")[0].heredocs
        except _gofile.GoParseError:
            docs = ()
        expr += "".join(f"\n{h.content}{h.name}" for h in docs)
    return replace(base, args=(expr,), flags={})


def _parse_flags(raw: Sequence[str], spec: Mapping[str, str]) -> dict[str, list[str]]:
    """BuildKit's BFlags.Parse: ``--name=value`` / ``--bool``, with its error texts."""
    out: dict[str, list[str]] = {}
    for a in raw:
        if a == "--":
            break
        if not a.startswith("--"):
            raise _Fail(f"arg should start with -- : {a}")
        flag, eq, value = a.partition("=")
        name = flag[2:]
        kind = spec.get(name)
        if kind is None:
            raise _Fail(f"unknown flag: {flag}{_suggest(name, tuple(spec), True)}")
        if name in out and kind != "S":
            raise _Fail(f"duplicate flag specified: {flag}")
        if kind == "b":
            if eq and value == "":
                raise _Fail(f"missing a value on flag: {flag}")
            if value.lower() not in ("true", "false", ""):
                raise _Fail(f"expecting boolean value for flag {flag}, not: {value}")
            out[name] = ["false" if value.lower() == "false" else "true"]
        elif not eq:
            raise _Fail(f"missing a value on flag: {flag}")
        elif kind == "S":
            out.setdefault(name, []).append(value)
        else:
            out[name] = [value]
    return out


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _suggest(value: str, options: Sequence[str], case_sensitive: bool) -> str:
    """BuildKit's suggest.WrapError: `` (did you mean X?)`` for a near miss (distance < 3)."""
    val = value if case_sensitive else value.lower()
    match, best = "", 3
    for opt in sorted(options):
        opt = opt if case_sensitive else opt.lower()
        if val == opt:
            return ""
        d = _levenshtein(val, opt)
        if d < best:
            match, best = opt, d
    if not match:
        return ""
    if not case_sensitive:
        match = match.upper() if value == value.upper() else match
    return f" (did you mean {match}?)"


def _parse_heredoc(word: str) -> tuple[str, bool, bool, int] | None:
    """parser.ParseHeredoc: (name, chomp, expand, fd) for a ``<<[-]WORD`` word, else None."""
    m = _HEREDOC_RE.match(word)
    if not m or not m.group(3):
        return None
    try:
        words = process(m.group(3), {}, "\\", skip_unset=True).words
        raw = process(m.group(3), {}, "\\", raw_quotes=True, skip_unset=True).words
    except InvalidArgument:
        return None
    if len(words) != 1 or len(raw) != 1:
        return None
    quotes = sum(words[0].count(q) for q in "'\"") == sum(raw[0].count(q) for q in "'\"")
    return words[0], m.group(2) == "-", quotes, int(m.group(1) or 0)


def _heredocs(line: str, docs: Sequence) -> tuple[Heredoc, ...]:
    if not docs:
        return ()
    try:
        words = process(line, {}, "\\", raw_quotes=True, raw_escapes=True, skip_unset=True).words
    except InvalidArgument:
        words = []
    found = [h for h in map(_parse_heredoc, words) if h]
    out = []
    for i, d in enumerate(docs):
        name, chomp, expand, fd = found[i] if i < len(found) else (d.name, False, True, d.file_descriptor)
        out.append(Heredoc(d.name, d.content, chomp, expand, fd))
    return tuple(out)


def _validate(inst: Instruction) -> None:  # noqa: C901 - one rule per instruction
    cmd, args, up = inst.cmd, inst.args, inst.cmd.upper()
    if cmd in ("env", "label", "arg", "expose", "volume") and not args:
        raise _Fail(f"{up} requires at least one argument")
    if cmd in ("maintainer", "workdir", "user", "stopsignal") and len(args) != 1:
        raise _Fail(f"{up} requires exactly one argument")
    if cmd in ("env", "label") and any(k == "" for k in args[0::2]):
        raise _Fail(f"{up} names can not be blank")
    if cmd == "arg" and any(a.startswith("=") for a in args):
        raise _Fail("ARG names can not be blank")
    if cmd in ("add", "copy"):
        if len(args) < 2:
            raise _Fail(f"{up} requires at least two arguments, but only one was provided. "
                        "Destination could not be determined")
        if _parse_heredoc(args[-1]):
            raise _Fail(f"{up} cannot accept a heredoc as a destination")
    if cmd == "from":
        _stage(inst, 0)
    if cmd == "volume" and any(not a.strip() for a in args):
        raise _Fail("VOLUME specified can not be an empty string")
    if cmd == "shell":
        if not args:
            raise _Fail("SHELL requires at least one argument")
        if not inst.json:
            raise _Fail("SHELL requires the arguments to be in JSON form")
    if cmd == "healthcheck":
        from berth.build.history import check_healthcheck
        check_healthcheck(inst)
    if cmd == "run":
        if inst.flag("network", "default") not in ("default", "none", "host"):
            raise _Fail(f"invalid network mode {go_quote(inst.flag('network'))}")
        if inst.flag("security", "sandbox") not in ("sandbox", "insecure"):
            raise _Fail(f"security {go_quote(inst.flag('security'))} is not valid")


def _stage(inst: Instruction, index: int) -> Stage:
    args = inst.args
    name = ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME_RE.match(name):
            raise _Fail(f"invalid name for build stage: {go_quote(args[2])}, "
                        "name can't start with a number or contain symbols")
    elif len(args) != 1:
        raise _Fail("FROM requires either one or three arguments")
    return Stage(index, name, args[0], inst.flag("platform"), [], inst.original, inst.line)


# ------------------------------------------------------------------ stages

def stage_by_name(df: Dockerfile, name_or_index: str, current: int | None = None) -> Stage | None:
    """The stage a ``COPY --from``/``--mount from=`` value names (case-insensitive name, or
    index), or None when it names an image. With ``current`` (the index of the stage that
    refers), only earlier stages count, as in the classic builder."""
    known = df.stages if current is None else df.stages[:current]
    for s in known:
        if s.name and s.name == name_or_index.lower():
            return s
    if not re.fullmatch(r"[+-]?\d+", name_or_index):
        return None
    ix = int(name_or_index)
    if ix == len(known) and current is not None:
        raise InvalidArgument(f"invalid from flag value {name_or_index}: refers to current build stage")
    if ix < 0 or ix >= len(known):
        raise InvalidArgument(f"invalid from flag value {name_or_index}: index out of bounds")
    return known[ix]


def meta_args(df: Dockerfile, build_args: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The args FROM lines see: global ARGs (with --build-arg overrides) and given proxy args."""
    ba = BuildArgs(dict(build_args or {}))
    for inst in df.global_args:
        ba.process_meta_arg(key_values(inst), df.escape)
    return ba.all_meta()


def base_name(df: Dockerfile, stage: Stage, meta: Mapping[str, str]) -> str:
    """FROM's image (or earlier stage name) after substitution with ``meta_args``."""
    name = process_word(stage.base, meta, df.escape)
    if name == "":
        raise InvalidArgument(f"base name ({stage.base}) should not be blank")
    return name


def needed_stages(df: Dockerfile, target: str | None = None,
                  build_args: Mapping[str, str | None] | None = None) -> list[Stage]:
    """The stages ``target`` (a stage name; default the last stage) needs, in file order,
    through ``FROM <stage>``, ``COPY --from=<stage>`` and ``RUN --mount=from=<stage>``."""
    if not df.stages:
        raise InvalidArgument("No image was generated. Is your Dockerfile empty?")
    last = df.stages[-1]
    if target:
        found = [s for s in df.stages if s.name == target.lower()]
        if not found:
            raise InvalidArgument(f"target stage {go_quote(target)} could not be found")
        last = found[0]
    meta = meta_args(df, build_args)
    need: dict[int, Stage] = {}
    todo = [last]
    while todo:
        s = todo.pop()
        if s.index in need:
            continue
        need[s.index] = s
        refs = [(base_name(df, s, meta), False)]
        for inst in s.instructions:
            if inst.cmd == "copy" and inst.flag("from"):
                refs.append((inst.flag("from"), True))
            if inst.cmd == "run":
                refs += [(m["from"], True) for m in run_mounts(inst) if m.get("from")]
        for ref, by_index in refs:
            dep = stage_by_name(df, ref, s.index) if by_index else \
                next((x for x in df.stages[:s.index] if x.name and x.name == ref.lower()), None)
            if dep is not None:
                todo.append(dep)
    return [need[i] for i in sorted(need)]


# ------------------------------------------------------------------ substitution

def _map_words(inst: Instruction, word: Callable[[str], str], words: Callable[[str], list[str]],
               raw: Callable[[str], str]) -> Instruction:
    """Apply the expanders where Docker substitutes variables, per instruction."""
    cmd, a, flags = inst.cmd, inst.args, dict(inst.flags)
    args, docs = a, inst.heredocs
    if cmd in ("env", "label"):
        args = tuple(map(word, a))
    elif cmd == "arg":
        args = tuple(f"{word(k)}={word(v)}" if v is not None else word(k) for k, v in key_values(inst))
    elif cmd in ("add", "copy"):
        args = tuple(x if _parse_heredoc(x) else word(x) for x in a[:-1]) + (word(a[-1]),)
        for f in ("chown", "chmod", "checksum"):
            if f in flags:
                flags[f] = [word(flags[f][-1])]
        docs = tuple(replace(h, content=raw(h.content)) if h.expand else h for h in docs)
    elif cmd in ("workdir", "user", "stopsignal"):
        args = (word(a[0]),)
    elif cmd == "volume":
        args = tuple(word(x.strip()) for x in a)
    elif cmd == "expose":
        args = tuple(p for x in sorted(a) for p in words(x))
    elif cmd == "from":
        args = (word(a[0]),) + a[1:]
        if "platform" in flags:
            flags["platform"] = [word(flags["platform"][-1])]
    elif cmd == "run" and "mount" in flags:
        flags["mount"] = [_map_mount(m, word) for m in flags["mount"]]
    return replace(inst, args=args, flags=flags, heredocs=docs)


def _map_mount(spec: str, word: Callable[[str], str]) -> str:
    fields = []
    for f in next(csv.reader([spec])):
        key, eq, value = f.partition("=")
        f = f"{key}={word(value)}" if eq else f
        fields.append(f'"{f}"' if "," in f or '"' in f else f)
    return ",".join(fields)


def expand(inst: Instruction, env: Mapping[str, str], escape: str = "\\") -> Instruction:
    """The instruction with variables substituted where Docker does it.

    ENV/LABEL/ARG keys and values, ADD/COPY sources, destination, --chown, --chmod (and
    ADD --checksum) and unquoted-delimiter heredoc contents, WORKDIR, USER, STOPSIGNAL, VOLUME,
    EXPOSE (sorted, then split into words), FROM's image and --platform (pass ``meta_args``),
    RUN --mount values. RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK/ONBUILD are left to the shell.
    """
    return _map_words(inst, lambda w: process_word(w, env, escape),
                      lambda w: process_words(w, env, escape),
                      lambda w: process(w, env, "\\", skip_quotes=True).result)


def instruction_vars(inst: Instruction, escape: str = "\\") -> set[str]:
    """The variables ``expand`` would look up for this instruction (for cache keys)."""
    seen: set[str] = set()

    def note(w: str, skip_quotes: bool = False) -> str:
        seen.update(used_vars(w, "\\" if skip_quotes else escape, skip_quotes=skip_quotes))
        return w

    _map_words(inst, note, lambda w: [note(w)], lambda w: note(w, True))
    return seen


# ------------------------------------------------------------------ instruction helpers

def key_values(inst: Instruction) -> list[tuple[str, str | None]]:
    """ENV/LABEL pairs (both ``K=V ...`` and legacy ``K V``); ARG ``(NAME, default or None)``."""
    if inst.cmd in ("env", "label"):
        return list(zip(inst.args[0::2], inst.args[1::2]))
    if inst.cmd == "arg":
        return [(a.partition("=")[0], a.partition("=")[2] if "=" in a else None) for a in inst.args]
    raise ValueError(f"{inst.cmd} has no key/value pairs")


def exec_or_shell(inst: Instruction, shell: Sequence[str] = DEFAULT_SHELL) -> list[str]:
    """The argv of RUN/CMD/ENTRYPOINT (or HEALTHCHECK CMD): exec form as is, shell form as
    ``shell + [command line]``. A RUN that is just one heredoc runs its (chomped) content
    through the shell, or ``/dev/pipes/<name>`` when it starts with ``#!`` (the executor
    mounts ``run_script(inst)`` there); other heredoc RUNs pass the text to the shell."""
    args = list(inst.args)
    if inst.cmd == "healthcheck":
        if not args or args[0].upper() != "CMD":
            return []
        args = args[1:]
    elif inst.cmd not in ("run", "cmd", "entrypoint"):
        raise ValueError(f"{inst.cmd} has no command line")
    if inst.json:
        return args
    if not args:
        return [] if inst.cmd in ("entrypoint", "healthcheck") else list(shell)
    line = " ".join(args)
    if inst.cmd == "run" and inst.heredocs:
        if _parse_heredoc(line):
            doc = inst.heredocs[0]
            if doc.data.startswith("#!"):
                return [*shell, "/dev/pipes/" + doc.name]
            return [*shell, doc.data]
        line += "".join(f"\n{h.content}{h.name}" for h in inst.heredocs)
    return [*shell, line]


def run_script(inst: Instruction) -> tuple[str, str] | None:
    """``(name, content)`` of a ``#!`` heredoc RUN, to mount read-only (0755) at /dev/pipes/."""
    if inst.cmd == "run" and inst.heredocs and not inst.json and _parse_heredoc(" ".join(inst.args)):
        if inst.heredocs[0].data.startswith("#!"):
            return inst.heredocs[0].name, inst.heredocs[0].data
    return None


def run_mounts(inst: Instruction) -> list[dict[str, str]]:
    """RUN --mount values as dicts (lowercased keys, ``type`` defaults to bind; bare keys
    such as ``ro`` map to "true")."""
    out = []
    for spec in inst.flags.get("mount", []):
        m = {"type": "bind"}
        for f in next(csv.reader([spec]), []):
            key, eq, value = f.partition("=")
            m[key.strip().lower()] = value if eq else "true"
        out.append(m)
    return out


@dataclass(frozen=True)
class CopySpec:
    """ADD/COPY parts: path sources, inline (heredoc) files, destination and flags."""

    sources: tuple[str, ...]
    dest: str
    files: tuple[Heredoc, ...] = ()
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()
    checksum: str = ""
    keep_git_dir: bool | None = None
    unpack: bool | None = None


def copy_parts(inst: Instruction) -> CopySpec:
    """Split ADD/COPY into sources and destination, with its flags (use on ``expand``'s result)."""
    if inst.cmd not in ("add", "copy"):
        raise ValueError(f"{inst.cmd} is not ADD or COPY")

    def opt(name: str) -> bool | None:
        return inst.flag(name) == "true" if name in inst.flags else None

    srcs = tuple(a for a in inst.args[:-1] if not _parse_heredoc(a))
    return CopySpec(srcs, inst.args[-1], inst.heredocs, inst.flag("from"), inst.flag("chown"),
                    inst.flag("chmod"), inst.flag("link") == "true", inst.flag("parents") == "true",
                    tuple(inst.flags.get("exclude", [])), inst.flag("checksum"),
                    opt("keep-git-dir"), opt("unpack"))
