"""Reading compose YAML as Docker Compose (go-yaml v3) does, keeping where each value came from.

* ``YDict``/``YList`` are plain ``dict``/``list`` that also carry ``pos`` (file, line, column; 1-based) and
  the positions of their keys/items, so errors can point at the file and line.
* The resolver is YAML 1.2's core schema, not PyYAML's 1.1 one: ``yes``/``on`` stay strings, ``22:22`` is not
  a base-60 number, dates stay strings; ``0755`` is octal as in Go.
* Anchors, aliases and ``<<`` merge keys work; duplicate keys are an error.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from berth.errors import InvalidArgument

Pos = tuple[str, int, int]   # (file, line, column), 1-based


class YDict(dict):
    """A mapping that remembers its own and its keys' positions."""

    pos: Pos | None = None

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.key_pos: dict[Any, Pos] = {}


class YList(list):
    """A sequence that remembers its own and its items' positions."""

    pos: Pos | None = None

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.item_pos: list[Pos | None] = []


def where(pos: Pos | None, file: str = "") -> str:
    """``file:line:col`` (or just the file when the position is unknown)."""
    if pos is None:
        return file
    return f"{pos[0]}:{pos[1]}:{pos[2]}"


def key_pos(node: Any, key: Any) -> Pos | None:
    """The position of ``node[key]``'s key (a mapping) or item (a sequence), else the node's own."""
    if isinstance(node, YDict):
        return node.key_pos.get(key, node.pos)
    if isinstance(node, YList):
        if isinstance(key, int) and 0 <= key < len(node.item_pos) and node.item_pos[key]:
            return node.item_pos[key]
        return node.pos
    return None


def like(old: Any, new: Any) -> Any:
    """Copy the position information of ``old`` onto ``new`` (a fresh YDict/YList made from it)."""
    if isinstance(old, YDict) and isinstance(new, YDict):
        new.pos, new.key_pos = old.pos, dict(old.key_pos)
    elif isinstance(old, YList) and isinstance(new, YList):
        new.pos, new.item_pos = old.pos, list(old.item_pos)
    return new


_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_DROPPED = {_BOOL, _INT, _FLOAT, "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"}


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars and positions."""

    yaml_implicit_resolvers = {
        k: [(t, r) for t, r in v if t not in _DROPPED] for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


ComposeLoader = _Loader


def _pos(loader: _Loader, node: yaml.Node) -> Pos:
    return (loader.name, node.start_mark.line + 1, node.start_mark.column + 1)


def _int(loader: _Loader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    body = text.lstrip("+-")
    sign = -1 if text.startswith("-") else 1
    if body.startswith("0o"):
        return sign * int(body[2:], 8)
    if len(body) > 1 and body.startswith("0") and body.isdigit():
        return sign * int(body, 8)
    return sign * int(body, 0) if body.startswith("0x") else sign * int(body)


def _map(loader: _Loader, node: yaml.MappingNode):
    data = YDict()
    data.pos = _pos(loader, node)
    yield data
    seen: dict[Any, int] = {}
    for k_node, _ in node.value:
        if k_node.tag == "tag:yaml.org,2002:merge":
            continue
        k = loader.construct_object(k_node, deep=True)
        if not isinstance(k, (str, int, float, bool)) and k is not None:
            raise InvalidArgument(f"{where(_pos(loader, k_node))}: mapping keys must be scalars")
        if k in seen:
            raise InvalidArgument(f'{where(_pos(loader, k_node))}: mapping key "{k}" already defined at line {seen[k]}')
        seen[k] = k_node.start_mark.line + 1
    loader.flatten_mapping(node)
    for k_node, v_node in node.value:
        k = loader.construct_object(k_node, deep=True)
        if isinstance(k, bool):  # go-yaml keeps "true" as a key string
            k = "true" if k else "false"
        data[k] = loader.construct_object(v_node, deep=True)
        data.key_pos[k] = _pos(loader, k_node)


def _seq(loader: _Loader, node: yaml.SequenceNode):
    data = YList()
    data.pos = _pos(loader, node)
    yield data
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.item_pos.append(_pos(loader, item))


_Loader.add_constructor("tag:yaml.org,2002:map", _map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _seq)
_Loader.add_constructor(_INT, _int)


def parse(text: str, file: str) -> Any:
    """Parse one YAML document; errors are ``InvalidArgument`` starting ``file:line:col``."""
    loader = _Loader(text)
    loader.name = file
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        what = " ".join(p for p in (e.context, e.problem) if p)
        raise InvalidArgument(f"{at}: yaml: {what}") from None
    except yaml.YAMLError as e:
        raise InvalidArgument(f"{file}: yaml: {e}") from None
    finally:
        loader.dispose()
    if len(docs) > 1:
        raise InvalidArgument(f"{file}: expected a single YAML document, found {len(docs)}")
    return docs[0] if docs else None


def load_file(path: str) -> Any:
    """Read and parse ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise InvalidArgument(f"{path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise InvalidArgument(f"{path}: not UTF-8 text: {e}") from None
    return parse(text, path)
