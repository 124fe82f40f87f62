"""Docker's shell-word lexer for Dockerfile variable substitution, and build-arg scoping.

A port of BuildKit's ``frontend/dockerfile/shell/lex.go`` (which the classic builder
uses too): ``$VAR``, ``${VAR}``, ``${VAR:-w}``, ``${VAR-w}``, ``${VAR:+w}``, ``${VAR+w}``,
``${VAR:?w}``, ``${VAR?w}``, ``${VAR#p}``, ``${VAR##p}``, ``${VAR%p}``, ``${VAR%%p}``,
``${VAR/p/r}``, ``${VAR//p/r}``, quotes and the Dockerfile's escape token. Then
``BuildArgs``, a port of moby's ``builder/dockerfile/buildargs.go``.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from berth.errors import InvalidArgument
from berth.types.units import go_quote

_EOF = ""


class _LexError(Exception):
    pass


@dataclass
class Processed:
    """What a word became: the result, its words (after splitting), the variables seen."""

    result: str
    words: list[str]
    matched: set[str]
    unmatched: set[str]


def _is_space(ch: str) -> bool:  # Go's unicode.IsSpace
    return ch in "\t\n\v\f\r \x85\xa0" or (ord(ch) > 0xFF and ch.isspace())


def _is_digit(ch: str) -> bool:
    return unicodedata.category(ch) == "Nd"


def _is_name_char(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or _is_digit(ch)


class _Words:
    """Go's wordsStruct: splits on unquoted whitespace."""

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if _is_space(ch):
            if self.in_word and self.buf:
                self.words.append("".join(self.buf))
                self.buf.clear()
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, s: str) -> None:
        self.buf.append(s)
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def get(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf.clear()
            self.in_word = False
        return self.words


class _Lexer:
    def __init__(self, word: str, env: Mapping[str, str], escape: str, *, raw_quotes: bool,
                 raw_escapes: bool, skip_quotes: bool, skip_unset: bool) -> None:
        self.s, self.pos, self.env, self.esc = word, 0, env, escape
        self.raw_quotes, self.raw_escapes = raw_quotes, raw_escapes
        self.skip_quotes, self.skip_unset = skip_quotes, skip_unset
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else _EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def get_env(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matched.add(name)
            return self.env[name], True
        self.unmatched.add(name)
        return "", False

    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        special = "$<" if self.skip_quotes else "$<'\""
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.get()
            if ch in special:
                tmp = {"$": self.dollar, "<": self.heredoc, "'": self.single, '"': self.double}[ch]()
                result.append(tmp)
                if ch == "$":
                    words.add_string(tmp)
                else:
                    words.add_raw(tmp)
                continue
            ch = self.next()
            if ch == self.esc:
                if self.raw_escapes:
                    words.add_raw(ch)
                    result.append(ch)
                ch = self.next()
                if not ch:
                    break
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise _LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get()

    def single(self) -> str:
        ch = self.next()
        out = [ch] if self.raw_quotes else []
        while True:
            ch = self.next()
            if not ch:
                raise _LexError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double(self) -> str:
        ch = self.next()
        out = [ch] if self.raw_quotes else []
        while True:
            p = self.peek()
            if not p:
                raise _LexError("unexpected end of statement while looking for matching double-quote")
            if p == '"':
                ch = self.next()
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if p == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.esc:
                if self.raw_escapes:
                    out.append(ch)
                p = self.peek()
                if not p:
                    continue  # Go ignores a trailing escape, then fails on the quote
                if p in ('"', "$", self.esc):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out: list[str] = []
        while self.peek():
            ch = self.peek()
            if not out and _is_digit(ch):
                while self.peek() and _is_digit(self.peek()):
                    out.append(self.next())
                return "".join(out)
            if not out and ch in "@*#?-$!0":
                return self.next()
            if not _is_name_char(ch):
                break
            out.append(self.next())
        return "".join(out)

    def heredoc(self) -> str:
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        space: list[str] = []
        while self.peek() and self.peek() in "\t\r ":
            space.append(self.next())
        return "<<" + "".join(space)

    def dollar(self) -> str:  # noqa: C901 - mirrors lex.go's processDollar
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.get_env(name)
            return "$" + name if not found and self.skip_unset else value
        self.next()
        p = self.peek()
        if not p:
            raise _LexError("syntax error: missing '}'")
        if p in "{}:":
            raise _LexError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        chs = ch or "\ufffd"
        if ch == "}":
            value, found = self.get_env(name)
            return "${%s}" % name if not found and self.skip_unset else value
        if ch == "/":
            return self.replace(name)
        if ch not in ":+-?#%":
            raise _LexError(f"unsupported modifier ({chs}) in substitution")
        null_is_unset = ch == ":"
        if null_is_unset:
            ch = self.next()
            chs += ch or "\ufffd"
        raw = ch in ("#", "%")
        if null_is_unset and raw:
            raise _LexError(f"unsupported modifier ({chs}) in substitution")
        word = self._until("}", raw, "syntax error: missing '}'")
        value, found = self.get_env(name)
        if self.skip_unset and not found:
            return "${%s%s%s}" % (name, chs, word)
        empty = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not found:
                raise _LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("#", "%"):
            greedy = word[:1] == ch
            if greedy:
                word = word[1:]
            return _trim_suffix(word, value, greedy) if ch == "%" else _trim_prefix(word, value, greedy)
        raise _LexError(f"unsupported modifier ({chs}) in substitution")

    def _until(self, stop: str, raw: bool, missing: str) -> str:
        """The word up to ``stop``; ``missing`` when the input ends first."""
        try:
            return self.stop_on(stop, raw)[0]
        except _LexError:
            if not self.peek():
                raise _LexError(missing) from None
            raise

    def replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self._until("/", True, "syntax error: missing '/' in ${}")
        repl = self._until("}", True, "syntax error: missing '}'")
        value, found = self.get_env(name)
        if self.skip_unset and not found:
            return "${%s/%s/%s}" % (name, pattern, repl)
        rx = _pattern_regex(pattern, True, False)
        repl = _go_template(repl)
        return rx.sub(lambda _m: repl, value, count=0 if replace_all else 1)


def _go_template(repl: str) -> str:
    """Go's Regexp.Expand for a pattern without groups: ``$$`` is ``$``, ``$x``/``${x}`` vanish."""
    return re.sub(r"\$(\$|\{[A-Za-z0-9_]+\}|[A-Za-z0-9_]+)", lambda m: "$" if m.group(1) == "$" else "", repl)


def _pattern_regex(pattern: str, greedy: bool, anchored: bool) -> re.Pattern:
    """lex.go's convertShellPatternToRegex: ``*`` and ``?`` wildcards, backslash escapes."""
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(".*" if greedy else ".*?")
            continue
        if tok == "?":
            out.append(".")
            continue
        if tok == "\\":
            if i < len(pattern) and pattern[i] in "}/":
                continue
            out.append("\\")
            tok = pattern[i] if i < len(pattern) else ""
            i += 1
            if tok not in ("*", "?", "\\") or not tok:
                raise _LexError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{tok}'")
        elif tok in "[]{}.+()|^$":
            out.append("\\")
        out.append(tok)
    return re.compile("".join(out))


def _trim_prefix(word: str, value: str, greedy: bool) -> str:
    m = _pattern_regex(word, greedy, True).search(value)
    return value[m.end():] if m else value


def _reverse_pattern(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\" and i != len(pattern) - 1:
            out.append(pattern[i:i + 2])
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(reversed(out))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def process(word: str, env: Mapping[str, str], escape: str = "\\", *, raw_quotes: bool = False,
            raw_escapes: bool = False, skip_quotes: bool = False, skip_unset: bool = False) -> Processed:
    """Lex ``word`` with lex.go's options; errors are InvalidArgument with Docker's text."""
    lx = _Lexer(word, env, escape, raw_quotes=raw_quotes, raw_escapes=raw_escapes,
                skip_quotes=skip_quotes, skip_unset=skip_unset)
    try:
        result, words = lx.stop_on(_EOF, raw_escapes)
    except _LexError as e:
        raise InvalidArgument(f"failed to process {go_quote(word)}: {e}") from None
    return Processed(result, words, lx.matched, lx.unmatched)


def process_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Substitute variables and remove quotes/escapes (ENV, LABEL, ARG, COPY, WORKDIR ...)."""
    return process(word, env, escape).result


def process_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Substitute, then split on unquoted whitespace (EXPOSE: ``$PORTS`` -> ['80', '443'])."""
    return process(word, env, escape).words


class _Recorder(dict):
    """Says every variable is set (so ``${X:?}`` never fails) and remembers which were asked."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def __contains__(self, key: object) -> bool:
        self.seen.add(str(key))
        return True

    def __getitem__(self, key: str) -> str:
        return "x"


def used_vars(word: str, escape: str = "\\", *, skip_quotes: bool = False) -> set[str]:
    """The variable names ``word`` refers to, including those in defaults (``${A:-$B}``)."""
    rec = _Recorder()
    process(word, rec, escape, skip_quotes=skip_quotes)
    return rec.seen


# ------------------------------------------------------------------ build args

BUILTIN_ARGS = frozenset({
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
})


@dataclass
class BuildArgs:
    """The classic builder's ARG bookkeeping (moby buildargs.go), pure.

    ``options`` are the ``--build-arg`` values (None: given without a value, ignored).
    Use one instance for the whole build: ``process_meta_arg`` for each global ARG, then
    ``for_stage()`` at every FROM, ``add_arg`` for each ARG in the stage, and
    ``merge_referenced(stage_args)`` when the stage ends; ``unused()`` at the end.
    """

    options: Mapping[str, str | None] = field(default_factory=dict)
    allowed: dict[str, str | None] = field(default_factory=dict)
    meta: dict[str, str | None] = field(default_factory=dict)
    referenced: set[str] = field(default_factory=set)

    def for_stage(self) -> "BuildArgs":
        """A copy with no allowed args, for a new stage (newDispatchState)."""
        return BuildArgs(self.options, {}, dict(self.meta), set(self.referenced))

    def merge_referenced(self, other: "BuildArgs") -> None:
        self.referenced |= other.referenced

    def add_arg(self, key: str, value: str | None) -> None:
        """An ARG in a stage: visible to later instructions, counted as consumed."""
        self.allowed[key] = value
        self.referenced.add(key)

    def add_meta_arg(self, key: str, value: str | None) -> None:
        self.meta[key] = value

    def process_meta_arg(self, pairs: Sequence[tuple[str, str | None]], escape: str = "\\") -> None:
        """A global ARG (before the first FROM): expand with the args so far, then record."""
        env = self.all_allowed()
        expanded = [(process_word(k, env, escape), None if v is None else process_word(v, env, escape))
                    for k, v in pairs]
        for k, v in expanded:
            self.add_arg(k, v)
            self.add_meta_arg(k, v)

    def _get(self, key: str, mapping: Mapping[str, str | None]) -> tuple[str, bool]:
        if self.options.get(key) is not None:
            return self.options[key], True  # type: ignore[return-value]
        default = mapping.get(key)
        if default is None:
            meta = self.meta.get(key)
            return (meta, True) if meta is not None else ("", False)
        return default, True

    def _all(self, mapping: Mapping[str, str | None]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key in [*mapping, *sorted(BUILTIN_ARGS)]:
            value, ok = self._get(key, mapping)
            if ok:
                out[key] = value
        return out

    def all_allowed(self) -> dict[str, str]:
        """Args visible to instructions of the current stage (plus given proxy args)."""
        return self._all(self.allowed)

    def all_meta(self) -> dict[str, str]:
        """Args visible to FROM lines (global ARGs plus given proxy args)."""
        return self._all(self.meta)

    def filter_allowed(self, env: Sequence[str]) -> list[str]:
        """``K=V`` for the allowed args an ENV of the same name does not hide (sorted)."""
        keys = {e.partition("=")[0] for e in env}
        return sorted(f"{k}={v}" for k, v in self.all_allowed().items() if k not in keys)

    def saved_args(self, env: Sequence[str]) -> list[str] | None:
        """The ``K=V`` a RUN's cache key and history record (``|N K=V ...``), or None.

        None when no arg applies; proxy args are left out unless declared by an ARG.
        """
        visible = self.filter_allowed(env)
        if not visible:
            return None
        return [e for e in visible
                if e.partition("=")[0] in self.allowed or e.partition("=")[0] not in BUILTIN_ARGS]

    def unused(self) -> list[str]:
        """Given ``--build-arg`` names no ARG declared (the "were not consumed" warning)."""
        return sorted(k for k in self.options if k not in self.referenced and k not in BUILTIN_ARGS)


def unused_args_warning(names: Sequence[str]) -> str:
    """The classic builder's warning line for ``BuildArgs.unused()``."""
    return f"[Warning] One or more build-args [{' '.join(names)}] were not consumed\n"
