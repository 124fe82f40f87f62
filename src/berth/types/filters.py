"""Docker's list filters: ``{"label": {"a=b": true}}`` or ``{"label": ["a=b"]}`` at the wire."""
from __future__ import annotations

import json

from berth.errors import InvalidArgument

Filters = dict[str, list[str]]


def _invalid(key: str = "", values: list[str] | None = None) -> InvalidArgument:
    """moby's invalidFilter text: ``invalid filter 'key=[v1 v2]'`` (the values as Go prints a slice)."""
    if not key:
        return InvalidArgument("invalid filter")
    return InvalidArgument(f"invalid filter '{key}" + (f"=[{' '.join(values)}]" if values is not None else "") + "'")


def parse(raw: str | None, allowed: set[str]) -> Filters:
    """The wire JSON as moby's FromJSON reads it: all map form or all legacy list form."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidArgument("invalid filter: the filters parameter is not valid JSON") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidArgument("invalid filter: expected a JSON object")
    values = [v for v in data.values() if v is not None]
    as_map = all(isinstance(v, dict) and all(isinstance(b, bool) for b in v.values()) for v in values)
    as_list = all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in values)
    if not (as_map or as_list):
        raise _invalid()
    out: Filters = {}
    for key, value in data.items():
        if key not in allowed:
            raise _invalid(key)
        out[key] = list(dict.fromkeys(value or ()))  # every key of the map, whatever its boolean
    return out


def match_labels(wanted: list[str], labels: dict[str, str]) -> bool:
    """Every ``key`` or ``key=value`` (``key!=value``) in ``wanted`` holds for ``labels``."""
    for w in wanted:
        if "!=" in w:
            k, v = w.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in w:
            k, v = w.split("=", 1)
            if labels.get(k) != v:
                return False
        elif w not in labels:
            return False
    return True


def boolean(values: list[str], name: str) -> bool:
    """moby's GetBoolOrDefault: exactly one of true/1 and false/0 must be given."""
    if not values:
        raise _invalid(name, None)
    truthy = "true" in values or "1" in values
    if truthy == ("false" in values or "0" in values):
        raise _invalid(name, values)
    return truthy
