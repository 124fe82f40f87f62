"""Image records and the OCI image config, as plain data."""
from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field

from berth.errors import InvalidArgument
from berth.types.digest import problem


@dataclass
class ImageConfig:
    """The parts of an OCI image config that berth reads (``config`` + rootfs + history)."""

    created: str = ""
    architecture: str = "amd64"
    os: str = "linux"
    author: str = ""
    env: list[str] = field(default_factory=list)
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    working_dir: str = ""
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: dict[str, dict] = field(default_factory=dict)
    volumes: dict[str, dict] = field(default_factory=dict)
    stop_signal: str = ""
    healthcheck: dict | None = None  # Docker's HEALTHCHECK (Test, Interval, Timeout, StartPeriod, Retries)
    onbuild: list[str] = field(default_factory=list)  # Docker's extension: ONBUILD triggers
    shell: list[str] = field(default_factory=list)  # Docker's extension: the SHELL of RUN/CMD shell forms
    diff_ids: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> "ImageConfig":
        """Read config JSON; InvalidArgument where Docker's decoding would fail."""
        try:
            raw = json.loads(data)
            _need(isinstance(raw, dict), "not a JSON object")
            c, rootfs = _or(raw, "config", {}), _or(raw, "rootfs", {})
            _need(isinstance(c, dict) and isinstance(rootfs, dict), "config and rootfs must be objects")
            diff_ids = _strs(rootfs.get("diff_ids"), "rootfs.diff_ids") or []
            for d in diff_ids:
                _need(not problem(d), f"invalid diff_id {d!r}")
            return cls(
                created=_str(raw, "created"), architecture=_str(raw, "architecture") or "amd64",
                os=_str(raw, "os") or "linux", author=_str(raw, "author"),
                env=_strs(c.get("Env"), "Env") or [],
                cmd=_strs(c.get("Cmd"), "Cmd", one=True), entrypoint=_strs(c.get("Entrypoint"), "Entrypoint", one=True),
                working_dir=_str(c, "WorkingDir"), user=_str(c, "User"),
                labels=_obj(c, "Labels", str), exposed_ports=_obj(c, "ExposedPorts", dict),
                volumes=_obj(c, "Volumes", dict), stop_signal=_str(c, "StopSignal"),
                healthcheck=c.get("Healthcheck") if isinstance(c.get("Healthcheck"), dict) else None,
                onbuild=_strs(c.get("OnBuild"), "OnBuild") or [], shell=_strs(c.get("Shell"), "Shell") or [],
                diff_ids=diff_ids, history=_list(raw, "history", dict),
            )
        except (ValueError, AttributeError, TypeError) as e:
            raise InvalidArgument(f"invalid image config: {e}") from None

    def to_json(self) -> bytes:
        """The config bytes (the image ID is their digest), laid out as Go's OCI types marshal them.

        Field order and omitted empty fields follow the OCI image-spec structs, so
        tools that re-encode a config (skopeo, containerd) keep its digest.
        """
        config = {k: v for k, v in (
            ("User", self.user), ("ExposedPorts", self.exposed_ports), ("Env", self.env),
            ("Entrypoint", self.entrypoint), ("Cmd", self.cmd), ("Volumes", self.volumes),
            ("WorkingDir", self.working_dir), ("Labels", self.labels), ("StopSignal", self.stop_signal),
            ("Healthcheck", self.healthcheck), ("OnBuild", self.onbuild), ("Shell", self.shell)) if v}
        if self.cmd == [] or self.entrypoint == []:
            config.update({k: v for k, v in (("Entrypoint", self.entrypoint), ("Cmd", self.cmd)) if v == []})
        history = [{k: h[k] for k in _HISTORY_ORDER if h.get(k)} for h in self.history]
        raw = {k: v for k, v in (
            ("created", self.created), ("author", self.author), ("architecture", self.architecture),
            ("os", self.os)) if v}
        raw["config"] = config
        raw["rootfs"] = {"type": "layers", "diff_ids": self.diff_ids}
        if history:
            raw["history"] = history
        return go_json(raw).encode()


_HISTORY_ORDER = ("created", "created_by", "author", "comment", "empty_layer")
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                             "\u2029": "\\u2029"})


def go_json(obj) -> str:
    """Compact JSON escaped as Go's encoding/json escapes it (``<>&`` and line separators)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).translate(_GO_ESCAPES)


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _or(d: dict, key: str, default: object) -> object:
    """``d[key]``, with ``default`` for a missing key or JSON null."""
    v = d.get(key)
    return default if v is None else v


def _str(d: dict, key: str) -> str:
    v = _or(d, key, "")
    _need(isinstance(v, str), f"{key} must be a string")
    return v


def _strs(v: object, key: str, one: bool = False) -> list[str] | None:
    """A list of strings or null; ``one`` also takes a lone string, as Docker's StrSlice does."""
    if one and isinstance(v, str):
        return [v]
    _need(v is None or isinstance(v, list) and all(isinstance(x, str) for x in v), f"{key} must be a list of strings")
    return None if v is None else list(v)


def _obj(d: dict, key: str, kind: type) -> dict:
    v = _or(d, key, {})
    _need(isinstance(v, dict) and all(isinstance(x, kind) for x in v.values()), f"{key} has the wrong type")
    return dict(v)


def _list(d: dict, key: str, kind: type) -> list:
    v = _or(d, key, [])
    _need(isinstance(v, list) and all(isinstance(x, kind) for x in v), f"{key} has the wrong type")
    return list(v)


# Docker's Linux signal names (moby/sys/signal SignalMap), without "SIG".
SIGNALS = frozenset(
    "ABRT ALRM BUS CHLD CLD CONT FPE HUP ILL INT IO IOT KILL PIPE POLL PROF PWR QUIT SEGV STKFLT STOP SYS TERM "
    "TRAP TSTP TTIN TTOU URG USR1 USR2 VTALRM WINCH XCPU XFSZ RTMIN RTMAX".split()
    + [f"RTMIN+{i}" for i in range(1, 16)] + [f"RTMAX-{i}" for i in range(1, 15)])


def check_signal(raw: str) -> str:
    """``raw`` if moby's ParseSignal takes it (a non-zero number or a known name), else InvalidArgument."""
    if re.fullmatch(r"[+-]?[0-9]+", raw):
        if int(raw) != 0:
            return raw
    elif raw.upper().removeprefix("SIG") in SIGNALS:
        return raw
    raise InvalidArgument(f"invalid signal: {raw}")


def port_keys(spec: str) -> list[str]:
    """``80``, ``53/udp``, ``8000-8002/tcp`` → ExposedPorts keys, as nat.ParsePortSpecs makes them."""
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    m = re.fullmatch(r"([0-9]{1,5})(?:-([0-9]{1,5}))?", port)
    start, end = (int(m[1]), int(m[2] or m[1])) if m else (0, -1)
    if not (m and start <= end <= 65535):
        raise InvalidArgument(f"invalid containerPort: {port}")
    return [f"{p}/{proto}" for p in range(start, end + 1)]


def join_workdir(current: str, requested: str) -> str:
    """Docker's normalizeWorkdir: a relative WORKDIR is joined onto the current one (or "/")."""
    if not requested:
        raise InvalidArgument("cannot normalize nothing")
    path = posixpath.normpath(posixpath.join("/", current, requested))
    return "/" + path.lstrip("/")


@dataclass
class ImageRecord:
    id: str
    config: ImageConfig
    created: str
    size: int
    tags: list[str] = field(default_factory=list)
    chain_ids: list[str] = field(default_factory=list)
    containers: int = 0
    layer_sizes: list[int] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)  # "docker.io/library/busybox@sha256:..."
