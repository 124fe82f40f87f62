"""``.env`` and ``env_file`` parsing as Docker Compose v2 (compose-go's dotenv) does.

``KEY=VALUE`` lines, an optional ``export `` prefix, ``#`` comments (a ``#`` after whitespace ends an unquoted
value), single quotes literal (may span lines), double quotes with ``\\n \\t \\r \\\\ \\" \\$`` escapes (may span
lines), ``${VAR}`` interpolation in double-quoted and unquoted values from the environment then earlier lines,
empty values, and ``KEY`` alone (taken from the environment, or left out when unset).
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping

from berth.compose.interpolate import InvalidTemplate, MissingRequired, substitute
from berth.errors import InvalidArgument

_KEY = re.compile(r"[A-Za-z0-9_.\-\[\]]+")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$$"}


def parse(text: str, environ: Mapping[str, str] | None = None, path: str = "<env>") -> dict[str, str]:
    """Parse dotenv text; ``environ`` answers ``${VAR}`` and lone ``KEY`` lines before the file's own values."""
    environ = environ or {}
    out: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        v = environ.get(name)
        return v if v is not None else out.get(name)

    i, n, line = 0, len(text), 1
    while i < n:
        eol = text.find("\n", i)
        raw = text[i:] if eol < 0 else text[i:eol]
        start_line = line
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i, line = (n if eol < 0 else eol + 1), line + 1
            continue
        lead = len(raw) - len(raw.lstrip())
        if stripped.startswith("export "):
            lead += 7 + len(stripped[7:]) - len(stripped[7:].lstrip())
        body = raw[lead:].rstrip()
        eq = body.find("=")
        if eq < 0:
            key = body.split("#", 1)[0].strip()
            _check_key(key, path, start_line)
            v = lookup(key)
            if v is not None:
                out[key] = v
            i, line = (n if eol < 0 else eol + 1), line + 1
            continue
        key = body[:eq].strip()
        _check_key(key, path, start_line)
        # the value starts after '=' in the original text (it may continue on following lines)
        vstart = i + lead + eq + 1
        while vstart < n and text[vstart] in " \t":
            vstart += 1
        quote = text[vstart:vstart + 1]
        if quote in ("'", '"'):
            end = _closing_quote(text, vstart + 1, quote)
            if end < 0:
                raise InvalidArgument(f"{path}:{start_line}: unterminated quoted value for {key}")
            inner = text[vstart + 1:end]
            value = inner if quote == "'" else _expand(_unescape(inner), lookup, path, start_line)
            line += text.count("\n", i, end)
            eol = text.find("\n", end)
        else:
            value = text[vstart:] if eol < 0 else text[vstart:eol]
            m = re.search(r"\s#", value)
            if m:
                value = value[:m.start()]
            value = _expand(value.strip(), lookup, path, start_line)
        out[key] = value
        i, line = (n if eol < 0 else eol + 1), line + 1
    return out


def _check_key(key: str, path: str, line: int) -> None:
    if not _KEY.fullmatch(key):
        bad = next((c for c in key if not _KEY.fullmatch(c)), key[:1] or "=")
        raise InvalidArgument(f'{path}:{line}: unexpected character "{bad}" in variable name "{key}"')


def _closing_quote(text: str, start: int, quote: str) -> int:
    j = start
    while j < len(text):
        c = text[j]
        if c == "\\" and quote == '"':
            j += 2
            continue
        if c == quote:
            return j
        j += 1
    return -1


def _unescape(s: str) -> str:
    out, j = [], 0
    while j < len(s):
        c = s[j]
        if c == "\\" and j + 1 < len(s) and s[j + 1] in _ESCAPES:
            out.append(_ESCAPES[s[j + 1]])
            j += 2
        else:
            out.append(c)
            j += 1
    return "".join(out)


def _expand(value: str, lookup, path: str, line: int) -> str:
    try:
        return substitute(value, lookup)
    except InvalidTemplate:
        raise InvalidArgument(f'{path}:{line}: invalid interpolation format in "{value}"') from None
    except MissingRequired as e:
        raise InvalidArgument(f"{path}:{line}: {e}") from None


def read(path: str, environ: Mapping[str, str] | None = None, required: bool = True) -> dict[str, str]:
    """Read one env file; a missing file is an error unless ``required`` is false (then it reads as empty)."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if not required:
            return {}
        raise InvalidArgument(f"env file {path} not found: no such file or directory") from None
    except OSError as e:
        raise InvalidArgument(f"{path}: {e.strerror or e}") from None
    return parse(text.lstrip("\ufeff").replace("\r\n", "\n"), environ, path)


def read_all(paths: list[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Read env files in order (later ones win); each sees the variables of the ones before."""
    out: dict[str, str] = {}
    for p in paths:
        out.update(read(p, {**out, **(environ or {})}))
    return out
