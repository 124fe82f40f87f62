"""Docker's list filters: ``{"label": {"a=b": true}}`` or ``{"label": ["a=b"]}`` at the wire."""
from __future__ import annotations

import json

from berth.errors import InvalidArgument

Filters = dict[str, list[str]]


def parse(raw: str | None, allowed: set[str]) -> Filters:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidArgument("invalid filter: the filters parameter is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidArgument("invalid filter: expected a JSON object")
    out: Filters = {}
    for key, value in data.items():
        if key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
        if isinstance(value, dict):
            out[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
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
    v = values[-1].lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise InvalidArgument(f"Invalid filter '{name}={values[-1]}'")
