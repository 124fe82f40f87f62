"""Compose variable interpolation (``$VAR``, ``${VAR:-default}``, ...) over every string value.

Forms: ``$VAR``, ``${VAR}``, ``${VAR:-d}`` (unset or empty → d), ``${VAR-d}`` (unset → d), ``${VAR:?msg}`` /
``${VAR?msg}`` (error), ``${VAR:+alt}`` / ``${VAR+alt}`` (alt when set), nesting (``${A:-${B}}``) and ``$$``
(a literal ``$``). An unset variable with no default becomes "" and a warning. Keys are left alone.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from berth.compose.yamlsrc import Pos, YDict, YList, key_pos, like, where
from berth.errors import InvalidArgument

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_BRACED = re.compile(r"([_A-Za-z][_A-Za-z0-9]*)(?:(:?[-?+])(.*))?", re.DOTALL)

Lookup = Callable[[str], "str | None"]


class InvalidTemplate(ValueError):
    """A ``$`` that starts no valid form."""


class MissingRequired(ValueError):
    """``${VAR:?msg}`` with VAR unset (or empty)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"required variable {name} is missing a value" + (f": {reason}" if reason else ""))


def unset_warning(name: str) -> str:
    return f'The "{name}" variable is not set. Defaulting to a blank string.'


def _as_lookup(env: Mapping[str, str] | Lookup) -> Lookup:
    return env.get if isinstance(env, Mapping) else env


def substitute(text: str, env: Mapping[str, str] | Lookup, warnings: list[str] | None = None) -> str:
    """Interpolate one string. Raises ``InvalidTemplate`` or ``MissingRequired``."""
    if "$" not in text:
        return text
    lookup = _as_lookup(env)
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        nxt = text[j + 1:j + 2]
        if nxt == "$":
            out.append("$")
            i = j + 2
        elif nxt == "{":
            end = _closing(text, j + 2)
            out.append(_braced(text[j + 2:end], lookup, warnings))
            i = end + 1
        else:
            m = _NAME.match(text, j + 1)
            if not m:
                raise InvalidTemplate(text)
            out.append(_plain(m.group(), lookup, warnings))
            i = m.end()
    return "".join(out)


def _closing(text: str, start: int) -> int:
    depth, j, n = 1, start, len(text)
    while j < n:
        if text.startswith("$$", j):
            j += 2
        elif text.startswith("${", j):
            depth, j = depth + 1, j + 2
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
            j += 1
        else:
            j += 1
    raise InvalidTemplate(text)


def _warn(warnings: list[str] | None, name: str) -> None:
    if warnings is not None and unset_warning(name) not in warnings:
        warnings.append(unset_warning(name))


def _plain(name: str, lookup: Lookup, warnings: list[str] | None) -> str:
    value = lookup(name)
    if value is None:
        _warn(warnings, name)
        return ""
    return value


def _braced(body: str, lookup: Lookup, warnings: list[str] | None) -> str:
    m = _BRACED.fullmatch(body)
    if not m:
        raise InvalidTemplate("${" + body + "}")
    name, op, rest = m.group(1), m.group(2), m.group(3) or ""
    if op is None:
        return _plain(name, lookup, warnings)
    value = lookup(name)
    unset = value is None if op[0] != ":" else not value
    kind = op[-1]
    if kind == "-":
        return substitute(rest, lookup, warnings) if unset else value or ""
    if kind == "?":
        if unset:
            raise MissingRequired(name, substitute(rest, lookup, warnings))
        return value or ""
    return "" if unset else substitute(rest, lookup, warnings)   # "+"


def interpolate(tree: Any, env: Mapping[str, str] | Lookup, file: str, warnings: list[str] | None = None,
                path: str = "", pos: Pos | None = None) -> Any:
    """A copy of ``tree`` with every string value interpolated; errors name the file, line and key path."""
    if isinstance(tree, str):
        try:
            return substitute(tree, env, warnings)
        except InvalidTemplate:
            raise InvalidArgument(f'{where(pos, file)}: invalid interpolation format for {path}: "{tree}"; '
                                  "you may need to escape any $ with another $") from None
        except MissingRequired as e:
            raise InvalidArgument(f"{where(pos, file)}: error while interpolating {path}: {e}") from None
    if isinstance(tree, dict):
        out = like(tree, YDict())
        for k, v in tree.items():
            out[k] = interpolate(v, env, file, warnings, f"{path}.{k}" if path else str(k), key_pos(tree, k) or pos)
        return out
    if isinstance(tree, list):
        out_l = like(tree, YList())
        for i, v in enumerate(tree):
            out_l.append(interpolate(v, env, file, warnings, f"{path}[{i}]", key_pos(tree, i) or pos))
        return out_l
    return tree
