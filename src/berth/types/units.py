"""Docker's and Go's human formats for values.

Sizes, durations, timestamps and the ``docker ps`` STATUS text as the docker
CLI prints them (go-units ``HumanSize``/``BytesSize``/``HumanDuration``/
``RAMInBytes``); how Go prints values (fmt's %v and Sprintf, encoding/json);
and the function library of docker's ``--format`` templates (``FUNCS``),
which ``output`` executes. Stdlib only, cheap to import.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone


class _LazyRe:
    """A regular expression compiled on first use (keeps the CLI's start fast)."""

    def __init__(self, *args) -> None:
        self._args, self._re = args, None

    def __getattr__(self, name: str):
        if self._re is None:
            self._re = re.compile(*self._args)
        return getattr(self._re, name)

__all__ = [
    "human_size", "bytes_size", "human_duration", "parse_size", "parse_go_duration",
    "parse_rfc3339", "parse_timestamp", "format_created", "format_created_at", "status_text",
    "_LazyRe", "go_str", "go_sprintf", "go_quote", "go_type", "go_truth", "to_json", "FUNCS", "HEADER_FUNCS",
]

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _custom_size(size: float, base: float, units: tuple[str, ...], precision: int = 4) -> str:
    i = 0
    size = float(size)
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return "%.*g%s" % (precision, size, units[i])


def human_size(n: float, precision: int = 4) -> str:
    """Decimal size with ``precision`` significant digits: 2129920 -> '2.13MB'.

    ``docker images`` and ``ps --size`` show 3 digits, ``system df`` 4.
    """
    return _custom_size(n, 1000.0, _DECIMAL_UNITS, precision)


def bytes_size(n: float) -> str:
    """Binary size with 4 significant digits: 1048576 -> '1MiB'."""
    return _custom_size(n, 1024.0, _BINARY_UNITS)


def human_duration(seconds: float) -> str:
    """Approximate a duration as docker does: '2 minutes', 'About an hour'."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


_SIZE_RE = _LazyRe(r"^(\d+(?:\.\d+)?) ?(?:([kmgtp])(i)?)?(b)?$", re.IGNORECASE)
_SIZE_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(s: str) -> int:
    """Parse a memory size ('512k', '10MB', '1g', '100') to bytes, 1024-based."""
    m = _SIZE_RE.match(s.strip()) if isinstance(s, str) else None
    if not m:
        raise ValueError(f"invalid size: '{s}'")
    unit = (m.group(2) or "").lower()
    return int(float(m.group(1)) * _SIZE_MULT[unit])


_DUR_PART = _LazyRe(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DUR_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
             "h": 3600.0}


def parse_go_duration(s: str) -> float:
    """Parse a Go duration ('1h30m', '1.5h', '300ms', '-42s') to seconds."""
    body = s[1:] if s[:1] in "+-" else s
    if body == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DUR_PART.match(body, pos)
        if not m:
            raise ValueError(f'time: invalid duration "{s}"')
        total += float(m.group(1)) * _DUR_UNIT[m.group(2)]
        pos = m.end()
    if not body:
        raise ValueError(f'time: invalid duration "{s}"')
    return -total if s.startswith("-") else total


_TIME_RE = _LazyRe(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?$"
)


def _parse_time(s: str) -> tuple[datetime, float] | None:
    """Split an RFC3339-like string into (aware-or-naive datetime, fraction)."""
    m = _TIME_RE.match(s.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, zone = m.groups()
    tz = None
    if zone:
        if zone in "Zz":
            tz = timezone.utc
        else:
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=tz)
    except ValueError:
        return None
    return dt, float(frac) if frac else 0.0


def parse_rfc3339(s: str | None) -> float | None:
    """RFC3339 (up to nanoseconds) to Unix seconds; None for Go's zero time or junk."""
    if not s:
        return None
    parsed = _parse_time(s)
    if parsed is None or parsed[0].year <= 1:
        return None
    dt, frac = parsed
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp() + frac


def parse_timestamp(s: str, now: float) -> float:
    """Parse a ``--since``/``--until`` value to Unix seconds.

    Accepts a Go duration relative to ``now`` ('10m', '1h30m'), RFC3339 dates
    and times (local time when no zone is given), or Unix seconds ('1700000000.5').
    """
    value = s.strip()
    if value != "0":
        try:
            return now - parse_go_duration(value)
        except ValueError:
            pass
    parsed = _parse_time(value)
    if parsed is not None:
        dt, frac = parsed
        return dt.timestamp() + frac  # naive datetimes are taken as local time
    if "-" not in value and re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    raise ValueError(f'failed to parse value as time or duration: "{s}"')


def format_created(ts_unix: float, now: float) -> str:
    """'2 minutes ago' for a creation time."""
    return human_duration(now - ts_unix) + " ago"


def format_created_at(ts_unix: float) -> str:
    """Go's time.Time String() in local time: '2023-11-14 22:13:20 +0000 UTC'."""
    dt = datetime.fromtimestamp(ts_unix).astimezone()
    return dt.strftime("%Y-%m-%d %H:%M:%S %z ") + (dt.tzname() or "")


def _health_text(health) -> str:
    status = health.get("Status") if isinstance(health, dict) else health
    if not status or status == "none":
        return ""
    return "health: starting" if status == "starting" else str(status)


def status_text(state: dict, now: float) -> str:
    """The STATUS column of ``docker ps`` for a container state dict."""
    status = (state.get("Status") or "").lower()
    started = parse_rfc3339(state.get("StartedAt"))
    finished = parse_rfc3339(state.get("FinishedAt"))
    code = state.get("ExitCode") or 0
    running = status in ("running", "paused", "restarting") or bool(state.get("Running"))
    if running:
        up = human_duration(now - (started if started is not None else now))
        if status == "paused" or state.get("Paused"):
            return f"Up {up} (Paused)"
        if status == "restarting" or state.get("Restarting"):
            ago = human_duration(now - (finished if finished is not None else now))
            return f"Restarting ({code}) {ago} ago"
        health = _health_text(state.get("Health"))
        return f"Up {up} ({health})" if health else f"Up {up}"
    if status == "removing":
        return "Removal In Progress"
    if status == "dead" or state.get("Dead"):
        return "Dead"
    if started is None:
        return "Created"
    if finished is None:
        return ""
    return f"Exited ({code}) {human_duration(now - finished)} ago"


# ---------------------------------------------------------------- Go's fmt

_GO_TYPES = {bool: "bool", int: "int", float: "float64", str: "string",
             dict: "map[string]interface {}", list: "[]interface {}", tuple: "[]interface {}"}


def go_type(v) -> str:
    return "<nil>" if v is None else _GO_TYPES.get(type(v), type(v).__name__)


def go_float(f: float) -> str:
    """Go's %v for a float64: shortest digits; exponent form below 1e-4 or from 1e6."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    mant, _, exp = repr(abs(f)).partition("e")
    ip, _, fp = mant.partition(".")
    raw = ip + fp
    digits = raw.lstrip("0")
    dp = len(ip) - (len(raw) - len(digits)) + int(exp or 0)
    digits = digits.rstrip("0") or "0"
    sign, x = ("-" if f < 0 else ""), dp - 1
    if x < -4 or x >= 6:
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def sorted_keys(d: dict) -> list:
    try:
        return sorted(d)
    except TypeError:
        return sorted(d, key=str)


def go_str(v, top: bool = True) -> str:
    """Print a value as Go's fmt %v does (top-level None is '<no value>')."""
    if v is None:
        return "<no value>" if top else "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{go_str(k, False)}:{go_str(v[k], False)}"
                                 for k in sorted_keys(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_str(x, False) for x in v) + "]"
    return str(v)


_QESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
         "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if ch in _QESC:
            out.append(_QESC[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append("\\x%02x" % o if o < 0x80 else ("\\u%04x" % o if o < 0x10000 else "\\U%08x" % o))
    return '"' + "".join(out) + '"'


# ---------------------------------------------------------------- printf

_VERB_RE = _LazyRe(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?([a-zA-Z%])")


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fmt_one(a, flags: str, width: str | None, prec: str | None, verb: str) -> str:
    bad = f"%!{verb}({go_type(a)}={go_str(a, False)})" if a is not None else f"%!{verb}(<nil>)"
    spec = "%" + flags + (width or "") + ("." + prec if prec is not None else "")
    if verb in "dxXob" and _is_num(a) and float(a).is_integer():
        if verb == "b":
            return _pad(("-" if a < 0 else "") + format(abs(int(a)), "b"), flags, width)
        return (spec + verb) % int(a)
    if verb in "xX" and isinstance(a, str):
        return _pad(a.encode().hex().upper() if verb == "X" else a.encode().hex(), flags, width)
    if verb in "feEgG" and _is_num(a):
        if verb in "gG" and prec is None:
            return _pad(go_float(float(a)), flags, width)
        return (spec + verb) % float(a)
    if verb == "v" or (verb == "s" and (isinstance(a, (str, list, tuple, dict)))):
        s = go_str(a, False)
        return _pad(s[: int(prec or 0)] if verb == "s" and prec is not None else s, flags, width)
    if verb == "q" and isinstance(a, str):
        return _pad(go_quote(a), flags, width)
    if verb == "q" and _is_num(a) and float(a).is_integer():
        return _pad("'" + chr(int(a)) + "'", flags, width)
    if verb == "t" and isinstance(a, bool):
        return _pad(go_str(a), flags, width)
    if verb == "c" and _is_num(a) and float(a).is_integer():
        return _pad(chr(int(a)), flags, width)
    if verb == "T":
        return _pad(go_type(a), flags, width)
    return bad


def _pad(s: str, flags: str, width: str | None) -> str:
    if not width:
        return s
    return s.ljust(int(width)) if "-" in flags else s.rjust(int(width))


def go_sprintf(fmt: str, *args) -> str:
    """Go's fmt.Sprintf for the common verbs (%s %d %v %q %f %x %t %c %T ...)."""
    out, pos, n = [], 0, 0
    for m in _VERB_RE.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
        elif n >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_fmt_one(args[n], flags, width, prec, verb))
            n += 1
    out.append(fmt[pos:])
    if n < len(args):
        extra = ", ".join(f"{go_type(a)}={go_str(a, False)}" for a in args[n:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def go_truth(v) -> bool:
    if v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, tuple, dict, bytes)):
        return bool(v)
    return True


def _jsonable(v):
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return int(v)
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _json_default(o):
    if hasattr(o, "__dataclass_fields__"):
        import dataclasses
        return dataclasses.asdict(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)


_JSON_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                            "\u2028": "\\u2028", "\u2029": "\\u2029"})


def to_json(v, indent: int | None = None) -> str:
    """Encode like Go's encoding/json: compact, HTML-safe, dict order kept."""
    seps = (",", ": ") if indent else (",", ":")
    s = json.dumps(_jsonable(v), ensure_ascii=False, indent=indent, separators=seps,
                   default=_json_default)
    return s.translate(_JSON_HTML)


# ---------------------------------------------------------------- template functions

def _s(v, name: str = "value") -> str:
    if not isinstance(v, str):
        raise ValueError(f"wrong type for {name}; expected string; got {go_type(v)}")
    return v


def _f_index(item, *keys):
    for k in keys:
        if isinstance(item, dict):
            item = item.get(k)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(k, int) or isinstance(k, bool):
                raise ValueError(f"cannot index slice/array with type {go_type(k)}")
            seq = item.encode() if isinstance(item, str) else item
            if not 0 <= k < len(seq):
                raise ValueError(f"index out of range: {k}")
            item = seq[k]
        elif item is None:
            raise ValueError("index of untyped nil")
        else:
            raise ValueError(f"can't index item of type {go_type(item)}")
    return item


def _f_len(v):
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, (list, tuple, dict)):
        return len(v)
    raise ValueError(f"len of type {go_type(v)}" if v is not None else "len of nil pointer")


def _f_print(*args) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(a, False))
    return "".join(out)


def _cmp_kind(a, b):
    if _is_num(a) and _is_num(b):
        return "num"
    if isinstance(a, str) and isinstance(b, str):
        return "str"
    if type(a) is type(b) and isinstance(a, bool):
        return "bool"
    raise ValueError("incompatible types for comparison")


def _f_eq(a, *bs) -> bool:
    if not bs:
        raise ValueError("missing argument for comparison")
    for b in bs:
        if a is None or b is None or isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
            if a == b:
                return True
        elif _cmp_kind(a, b) and a == b:
            return True
    return False


def _ordered(op):
    def cmp(a, b):
        if _cmp_kind(a, b) == "bool":
            raise ValueError("invalid type for comparison")
        return op(a, b)
    return cmp


def _f_join(v, sep):
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"wrong type for value; expected []string; got {go_type(v)}")
    return _s(sep).join(go_str(x, False) for x in v)


def _f_split(s, sep):
    s, sep = _s(s), _s(sep)
    return s.split(sep) if sep else list(s)


def _f_title(s) -> str:
    out, prev = [], " "
    for ch in _s(s):
        sep = not (prev.isalnum() or prev == "_") if prev.isascii() else prev.isspace()
        out.append(ch.upper() if sep else ch)
        prev = ch
    return "".join(out)


FUNCS = {
    "and": None, "or": None,  # short-circuit, handled by the executor
    "not": lambda v: not go_truth(v),
    "eq": _f_eq, "ne": lambda a, b: not _f_eq(a, b),
    "lt": _ordered(lambda a, b: a < b), "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b), "ge": _ordered(lambda a, b: a >= b),
    "index": _f_index, "len": _f_len,
    "print": _f_print, "printf": lambda f, *a: go_sprintf(_s(f), *a),
    "println": lambda *a: " ".join(go_str(x, False) for x in a) + "\n",
    # docker's additions
    "json": lambda v: to_json(v), "join": _f_join, "split": _f_split,
    "upper": lambda s: _s(s).upper(), "lower": lambda s: _s(s).lower(), "title": _f_title,
    "pad": lambda s, pre, suf: s if s == "" else " " * pre + _s(s) + " " * suf,
    "truncate": lambda s, n: _s(s)[:n],
}
# Table headers are rendered with these replaced: they pass the header through.
HEADER_FUNCS = dict(FUNCS, **{k: (lambda v, *_: v) for k in
                               ("json", "split", "join", "title", "lower", "upper", "pad",
                                "truncate")})
