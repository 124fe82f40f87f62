""".dockerignore: reading the file, matching paths, and walking a build context as Docker does.

Ports of moby/patternmatcher v0.6 (``ignorefile.ReadAll``, ``New``, ``MatchesOrParentMatches``,
``MatchesUsingParentResults``, the deprecated ``Matches``), of the walk in moby/go-archive's
``TarWithOptions`` (an excluded directory is still walked when an exception pattern starts with it)
and of docker/cli's ``TrimBuildFilesFromExcludes`` (the Dockerfile and .dockerignore are always sent).

Pure logic and a directory walker on the standard library only: the CLI imports this module.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator

BAD_PATTERN = "syntax error in pattern"  # Go's filepath.ErrBadPattern
_REGEX_ESCAPE = frozenset(".+()|{}$")     # regexp metacharacters with no meaning in filepath.Match
_WS = " \t\n\v\f\r\x85\xa0"               # Go's unicode.IsSpace for Latin-1 (strings.TrimSpace)


def _trim_space(s: str) -> str:
    return s.strip(_WS + "\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
                   "\u2028\u2029\u202f\u205f\u3000")


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` on Unix: the shortest equivalent path, lexically."""
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    s = "/".join(out)
    if rooted:
        return "/" + s
    return s or "."


def _dir(path: str) -> str:
    """Go's ``filepath.Dir``."""
    i = path.rfind("/")
    return clean(path[:i + 1]) if i >= 0 else "."


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore (``ignorefile.ReadAll``).

    A UTF-8 BOM is dropped; a line starting with ``#`` is a comment (only in the first column);
    whitespace around a pattern goes; a leading ``!`` makes an exception; the path is cleaned and a
    leading ``/`` removed, so ``/a/b/`` and ``a/b`` are the same pattern.
    """
    out = []
    for i, line in enumerate(text.split("\n")):
        if i == 0 and line.startswith("\ufeff"):
            line = line[1:]
        if line.endswith("\r"):
            line = line[:-1]  # bufio.ScanLines drops a CR before the LF
        if line.startswith("#"):
            continue
        pattern = _trim_space(line)
        if not pattern:
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = _trim_space(pattern[1:])
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


# ---------------------------------------------------------------- filepath.Match syntax

def _scan_chunk(pattern: str) -> tuple[str, str]:
    """Go's ``scanChunk`` without the leading stars: (chunk, rest)."""
    pattern = pattern.lstrip("*")
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return pattern[:i], pattern[i:]


def _get_esc(chunk: str) -> str | None:
    """What ``getEsc`` leaves of ``chunk`` after one class character, or None for a bad pattern."""
    if not chunk or chunk[0] in "-]":
        return None
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            return None
    if "\ud800" <= chunk[0] <= "\udfff":
        return None  # not valid UTF-8
    rest = chunk[1:]
    return rest or None


def _chunk_ok(chunk: str) -> bool:
    while chunk:
        c = chunk[0]
        if c == "[":
            chunk = chunk[1:]
            if chunk[:1] == "^":
                chunk = chunk[1:]
            n = 0
            while True:
                if chunk[:1] == "]" and n > 0:
                    chunk = chunk[1:]
                    break
                rest = _get_esc(chunk)
                if rest is None:
                    return False
                chunk = rest
                if chunk[0] == "-":
                    rest = _get_esc(chunk[1:])
                    if rest is None:
                        return False
                    chunk = rest
                n += 1
        elif c == "\\":
            chunk = chunk[1:]
            if not chunk:
                return False
            chunk = chunk[1:]
        else:
            chunk = chunk[1:]
    return True


def valid_syntax(pattern: str) -> bool:
    """Whether Go's ``filepath.Match(pattern, ...)`` accepts ``pattern`` (what ``New`` checks)."""
    rest = pattern
    while rest:
        chunk, rest = _scan_chunk(rest)
        if chunk and not _chunk_ok(chunk):
            return False
    return True


# ---------------------------------------------------------------- patterns

_EXACT, _PREFIX, _SUFFIX, _REGEXP = range(4)


class Pattern:
    """One cleaned pattern, compiled as patternmatcher's ``Pattern.compile`` does."""

    __slots__ = ("text", "exclusion", "dirs", "kind", "regex")

    def __init__(self, text: str, exclusion: bool) -> None:
        self.text, self.exclusion = text, exclusion
        self.dirs = text.split("/")
        self.regex = None
        self.kind = self._compile()

    def _compile(self) -> int:
        reg, kind = [], _EXACT
        p, n, i, k = self.text, len(self.text), 0, 0
        while k < n:
            ch = p[k]
            k += 1
            if ch == "*":
                if k < n and p[k] == "*":
                    k += 1
                    if k < n and p[k] == "/":
                        k += 1
                    if k == n:  # "**" at the end: anything, as in .gitignore
                        if kind == _EXACT:
                            kind = _PREFIX
                        else:
                            reg.append(".*")
                            kind = _REGEXP
                    else:
                        reg.append("(.*/)?")
                        kind = _REGEXP
                    if i == 0:
                        kind = _SUFFIX
                else:
                    reg.append("[^/]*")
                    kind = _REGEXP
            elif ch == "?":
                reg.append("[^/]")
                kind = _REGEXP
            elif ch in _REGEX_ESCAPE:
                reg.append("\\" + ch)
            elif ch == "\\":
                if k < n:
                    reg.append(_escaped(p[k]))
                    k += 1
                    kind = _REGEXP
                else:
                    reg.append("\\\\")
            elif ch in "[]":
                reg.append(ch)
                kind = _REGEXP
            else:
                reg.append(ch)  # "^" and "-" too: RE2 and Python read them alike here
            i += 1
        if kind == _REGEXP:
            import warnings
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.regex = re.compile("".join(reg), re.ASCII)
            except re.error:
                raise ValueError(BAD_PATTERN) from None
        return kind

    def match(self, path: str) -> bool:
        kind = self.kind
        if kind == _EXACT:
            return path == self.text
        if kind == _PREFIX:
            return path.startswith(self.text[:-2])
        if kind == _SUFFIX:
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix[:1] == "/" and path == suffix[1:]
        return self.regex.fullmatch(path) is not None  # type: ignore[union-attr]

    def __repr__(self) -> str:
        return ("!" if self.exclusion else "") + self.text


def _escaped(ch: str) -> str:
    r"""``\`` and the next pattern character, in Python's regexp dialect (Go's RE2 where they differ)."""
    if not ch.isascii() or not ch.isalnum():
        return re.escape(ch)
    if ch in "dDsSwWbBA":
        return "\\" + ch
    if ch == "z":
        return r"\Z"
    raise ValueError(BAD_PATTERN)


class Matcher:
    """patternmatcher's ``PatternMatcher``: the last pattern that matches a path decides.

    ``ValueError`` for a pattern Docker refuses (``!`` alone, a malformed ``[...]``, a trailing ``\\``).
    """

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[Pattern] = []
        self.exclusions = False
        for raw in patterns:
            p = _trim_space(raw)
            if not p:
                continue
            p = clean(p)
            exclusion = p[0] == "!"
            if exclusion:
                if len(p) == 1:
                    raise ValueError('illegal exclusion pattern: "!"')
                p = p[1:]
                self.exclusions = True
            if not valid_syntax(p):
                raise ValueError(BAD_PATTERN)
            self.patterns.append(Pattern(p, exclusion))

    def match_info(self, path: str, parent: list[bool] | None = None) -> tuple[bool, list[bool]]:
        """``MatchesUsingParentResults``: whether ``path`` (clean, relative) is excluded, and which
        patterns it matched (pass that to its children). Without ``parent``, the parent
        directories are matched here, as ``MatchesOrParentMatches`` does."""
        matched = False
        info = [False] * len(self.patterns)
        for i, p in enumerate(self.patterns):
            match = bool(parent) and parent[i]  # type: ignore[index]
            if not match:
                if p.exclusion != matched:
                    continue  # an exception with nothing to undo, or an exclusion already made
                match = p.match(path)
                if not match and not parent:
                    parent_path = _dir(path)
                    if parent_path != ".":
                        dirs = parent_path.split("/")
                        match = any(p.match("/".join(dirs[:k + 1])) for k in range(len(dirs)))
            info[i] = match
            if match:
                matched = not p.exclusion
        return matched, info

    def excluded(self, relpath: str, is_dir: bool = False) -> bool:
        """Whether ``relpath`` is left out of the context: it or one of its parent directories
        matches (``MatchesOrParentMatches``). ``is_dir`` does not change the answer for the entry
        itself (Docker has no directory-only patterns: ``dir/`` is cleaned to ``dir``); whether an
        excluded directory is still walked is ``must_walk``."""
        path = clean(relpath)
        if path == ".":
            return False  # the context root is never excluded
        return self.match_info(path)[0]

    def must_walk(self, reldir: str) -> bool:
        """Whether an excluded directory must still be walked: an exception starts with it."""
        if not self.exclusions:
            return False
        prefix = reldir + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)

    def matches_one_parent(self, relpath: str) -> bool:
        """The deprecated ``Matches``, which checks one parent directory only (the depth of each
        pattern); docker/cli still uses it to decide whether to add the Dockerfile back."""
        path = clean(relpath)
        if path == ".":
            return False
        matched = False
        parent_path = _dir(path)
        parent_dirs = parent_path.split("/")
        for p in self.patterns:
            if p.exclusion != matched:
                continue
            match = p.match(path)
            if not match and parent_path != "." and len(p.dirs) <= len(parent_dirs):
                match = p.match("/".join(parent_dirs[:len(p.dirs)]))
            if match:
                matched = not p.exclusion
        return matched


def keep_build_files(patterns: list[str], dockerfile: str, dockerfile_from_stdin: bool = False) -> list[str]:
    """docker/cli's ``TrimBuildFilesFromExcludes``: exceptions appended so that .dockerignore and the
    Dockerfile (``dockerfile`` relative to the context, unless it comes from stdin) are sent even
    when ignored; the daemon reads them, then drops the ignored ones."""
    try:
        m = Matcher(patterns)
    except ValueError:
        return list(patterns)
    out = list(patterns)
    if m.matches_one_parent(".dockerignore"):
        out.append("!.dockerignore")
    if not dockerfile_from_stdin and m.matches_one_parent(dockerfile):
        out.append("!" + dockerfile)
    return out


# ---------------------------------------------------------------- the walk

def _sorted_entries(path: str) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: os.fsencode(e.name))


def context_files(root: str, patterns: list[str],
                  onerror: Callable[[str, OSError], None] | None = None) -> Iterator[str]:
    """The paths under ``root`` (relative, ``/``-separated, directories too) that go into the build
    context, in the order Docker's tar has them (each directory's entries sorted by name, depth first).

    Walks only what can hold included files: an excluded directory is skipped unless an exception
    pattern starts with it, and then it is walked without being listed itself. Symlinks are listed,
    never followed. ``onerror(path, error)`` hears of a directory that cannot be read (its contents
    are left out, as Docker does); it may raise.
    """
    m = Matcher(patterns)
    # depth first, entries in order: a stack of (entries, directory, its match info)
    iters: list[tuple[Iterator[os.DirEntry], str, list[bool] | None]] = []

    def open_dir(path: str, rel: str, info: list[bool] | None) -> None:
        try:
            entries = _sorted_entries(path)
        except OSError as e:
            if onerror is not None:
                onerror(path, e)
            return
        iters.append((iter(entries), rel, info))

    open_dir(root, "", None)
    while iters:
        it, rel, parent = iters[-1]
        entry = next(it, None)
        if entry is None:
            iters.pop()
            continue
        relpath = f"{rel}/{entry.name}" if rel else entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        skip, info = m.match_info(relpath, parent)
        if skip:
            if is_dir and m.must_walk(relpath):
                open_dir(entry.path, relpath, info)
            continue
        yield relpath
        if is_dir:
            open_dir(entry.path, relpath, info)


def default_dockerfile(root: str) -> str:
    """``Dockerfile``, or ``dockerfile`` when only that one exists (docker/cli's rule)."""
    if not os.path.lexists(os.path.join(root, "Dockerfile")) and os.path.lexists(os.path.join(root, "dockerfile")):
        return "dockerfile"
    return "Dockerfile"


def ignore_file_for(root: str, dockerfile: str | None) -> str | None:
    """The ignore file that applies to a build of ``root`` with ``dockerfile`` (a path, absolute or
    relative to ``root``; None for the default one, ``-`` when it comes from stdin), or None.

    ``<dockerfile>.dockerignore`` next to the Dockerfile (``Dockerfile.dockerignore``,
    ``docker/app.Dockerfile.dockerignore``) takes precedence over ``.dockerignore`` at the root of
    the context: BuildKit's rule (docker's classic builder reads only ``.dockerignore``).
    """
    if dockerfile != "-":
        specific = os.path.join(root, dockerfile or default_dockerfile(root)) + ".dockerignore"
        if os.path.isfile(specific):
            return specific
    default = os.path.join(root, ".dockerignore")
    return default if os.path.isfile(default) else None


def read_ignore_file(path: str | None) -> list[str]:
    """The patterns of the ignore file at ``path`` (none when ``path`` is None)."""
    if path is None:
        return []
    with open(path, "rb") as f:
        return read_patterns(f.read().decode("utf-8", "surrogateescape"))
