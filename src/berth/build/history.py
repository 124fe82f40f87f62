"""What a Dockerfile step writes into the image: HEALTHCHECK configs (Go durations), WORKDIR paths, and
the history ``created_by`` texts of moby's classic builder."""
from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from berth.build.dockerfile import DEFAULT_SHELL, Instruction, _Fail, exec_or_shell, key_values
from berth.errors import InvalidArgument
from berth.types.units import go_quote


_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}


def parse_duration(s: str) -> int:
    """Go's time.ParseDuration, in nanoseconds, with its error texts."""
    orig, neg = s, s[:1] == "-"
    s = s[1:] if s[:1] in "+-" else s
    if s == "0":
        return 0
    if not s:
        raise _Fail(f'time: invalid duration "{orig}"')
    total = 0
    while s:
        m = re.match(r"(\d*)(?:\.(\d*))?", s)
        whole, frac = m.group(1), m.group(2) or ""
        if not whole and not frac:
            raise _Fail(f'time: invalid duration "{orig}"')
        s = s[m.end():]
        unit = re.match(r"[^0-9.]*", s).group(0)
        if not unit:
            raise _Fail(f'time: missing unit in duration "{orig}"')
        if unit not in _UNITS:
            raise _Fail(f'time: unknown unit "{unit}" in duration "{orig}"')
        s = s[len(unit):]
        total += int(whole or 0) * _UNITS[unit] + (int(frac) * _UNITS[unit] // 10**len(frac) if frac else 0)
    return -total if neg else total


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 1m30s, 1.5s, 500ms, 0s."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(ns)

    def frac(v: int, scale: int) -> str:
        whole, rest = divmod(v, scale)
        digits = str(rest).rjust(len(str(scale)) - 1, "0").rstrip("0")
        return f"{whole}.{digits}" if digits else str(whole)

    if u < 10**9:
        unit, scale = ("ns", 1) if u < 10**3 else ("µs", 10**3) if u < 10**6 else ("ms", 10**6)
        return sign + frac(u, scale) + unit
    h, rest = divmod(u, 3600 * 10**9)
    m, rest = divmod(rest, 60 * 10**9)
    text = frac(rest, 10**9) + "s"
    if h or m:
        text = f"{m}m" + text
    if h:
        text = f"{h}h" + text
    return sign + text


def check_healthcheck(inst: Instruction) -> dict:
    args = inst.args
    if not args:
        raise _Fail("HEALTHCHECK requires at least one argument")
    typ = args[0].upper()
    if typ == "NONE":
        if len(args) > 1:
            raise _Fail("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if typ != "CMD":
        raise _Fail(f"Unknown type {go_quote(typ)} in HEALTHCHECK (try CMD)")
    if not args[1:]:
        raise _Fail("Missing command after HEALTHCHECK CMD")
    cfg: dict = {"Test": ["CMD", *args[1:]] if inst.json else ["CMD-SHELL", " ".join(args[1:])]}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        value = inst.flag(flag)
        d = parse_duration(value) if value else 0
        if d and d < 10**6:
            raise _Fail(f'Interval "{flag}" cannot be less than 1ms')
        if d:
            cfg[key] = d
    retries = inst.flag("retries")
    if retries:
        if not re.fullmatch(r"[+-]?\d+", retries):
            raise _Fail(f'strconv.ParseInt: parsing "{retries}": invalid syntax')
        n = int(retries)
        if not -2**31 <= n < 2**31:
            raise _Fail(f'strconv.ParseInt: parsing "{retries}": value out of range')
        if n < 0:
            raise _Fail(f"--retries cannot be negative ({n})")
        if n:
            cfg["Retries"] = n
    return cfg


def healthcheck(inst: Instruction) -> dict | None:
    """Docker's HealthConfig for HEALTHCHECK (durations in ns, zero fields left out, as Go's
    omitempty does); ``{"Test": ["NONE"]}`` for NONE; None for other instructions."""
    return check_healthcheck(inst) if inst.cmd == "healthcheck" else None


# ------------------------------------------------------------------ history

def resolve_workdir(current: str, requested: str) -> str:
    """WORKDIR's new directory (moby normalizeWorkdir): relative paths join the current one."""
    if not requested:
        raise InvalidArgument("cannot normalize nothing")
    path = requested if requested.startswith("/") else posixpath.join("/", current, requested)
    path = posixpath.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def source_hash(hashes: Sequence[str]) -> str:
    """The COPY/ADD history hash: one source's ``file:<sha>``/``dir:<sha>``, else ``multi:``."""
    import hashlib

    if len(hashes) == 1:
        return hashes[0]
    return "multi:" + hashlib.sha256(",".join(hashes).encode()).hexdigest()


def _go_list(items: Sequence[str], quoted: bool) -> str:
    return "[" + " ".join(map(go_quote, items) if quoted else items) + "]"


def created_by(inst: Instruction, shell: Sequence[str] = DEFAULT_SHELL, *,
               run_args: Sequence[str] | None = None, workdir: str | None = None,
               source_hashes: Sequence[str] = ()) -> str:
    """The history ``created_by`` the classic builder writes for an (expanded) instruction.

    ``shell`` is the SHELL in effect; ``run_args`` is ``BuildArgs.saved_args(env)`` for RUN
    (``|N K=V`` prefix); ``workdir`` the resolved WORKDIR; ``source_hashes`` COPY/ADD's hashes.
    """
    cmd, a = inst.cmd, inst.args
    sh = " ".join(shell)
    if cmd == "run":
        prefix = [f"|{len(run_args)}", *run_args] if run_args is not None else []
        return " ".join(prefix + exec_or_shell(inst, shell))
    if cmd in ("add", "copy"):
        chown = f"--chown={inst.flag('chown')} " if inst.flag("chown") else ""
        return f"{sh} #(nop) {cmd.upper()} {chown}{source_hash(source_hashes)} in {a[-1]} "
    if cmd == "workdir":
        return f"{sh} #(nop) WORKDIR {workdir if workdir is not None else a[0]}"
    if cmd in ("env", "label"):
        text = cmd.upper() + "".join(f" {k}={v}" for k, v in key_values(inst))
    elif cmd == "arg":
        text = "ARG " + " ".join(a)
    elif cmd in ("cmd", "entrypoint"):
        text = f"{cmd.upper()} {_go_list(exec_or_shell(inst, shell), True)}"
    elif cmd == "healthcheck":
        cfg = healthcheck(inst) or {}
        durations = " ".join(f"{k}:{go_duration(cfg.get(k, 0))}"
                             for k in ("Interval", "Timeout", "StartPeriod", "StartInterval"))
        test = _go_list(cfg["Test"], False)
        text = f"HEALTHCHECK &{{Test:{test} {durations} Retries:{cfg.get('Retries', 0)}}}"
    elif cmd in ("volume", "shell"):
        text = f"{cmd.upper()} {_go_list(a, False)}"
        sh = " ".join(a) if cmd == "shell" else sh
    elif cmd in ("expose", "maintainer", "user", "stopsignal", "onbuild"):
        text = f"{cmd.upper()} {' '.join(a)}"
    else:
        raise ValueError(f"{cmd} makes no history entry")
    return f"{sh} #(nop)  {text}"
