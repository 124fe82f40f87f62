"""Compose syntax → the model: short syntaxes, paths, durations and sizes (the loader's conversion step).

``canon_service`` first brings one file's service to the forms merging works on (list forms of maps turned
into maps, strings into lists); ``service`` then builds a ``Service`` from the merged mapping.
"""
from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable
from typing import Any

from berth.compose.model import (BuildSpec, DependsOn, FileRef, FileSource, Healthcheck, MountSpec, Network,
                                 PortSpec, Resources, Service, ServiceNetwork, Volume, WatchRule)
from berth.compose.yamlsrc import YDict, key_pos, like, where
from berth.errors import InvalidArgument
from berth.types.ports import parse_port_spec
from berth.types.units import parse_go_duration, parse_size

Lookup = Callable[[str], "str | None"]
_MAP_KEYS = ("environment", "labels", "sysctls", "annotations")
_LIST_KEYS = ("dns", "dns_search", "tmpfs", "env_file", "label_file")
_PROPAGATION = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}
_CONSISTENCY = {"consistent", "cached", "delegated"}


def _fail(node: Any, key: Any, msg: str) -> InvalidArgument:
    return InvalidArgument(f"{where(key_pos(node, key))}: {msg}")


# --- canonical forms (before merging) ---------------------------------------------------------------------
def list_to_map(items: Any, sep: str = "=", hosts: bool = False) -> Any:
    """``["K=V", "K"]`` → ``{"K": "V", "K": None}`` (a mapping is returned as it is)."""
    if not isinstance(items, list):
        return items
    out = like(items, YDict())
    out.pos = getattr(items, "pos", None)
    for i, item in enumerate(items):
        text = str(item)
        if hosts:
            k, found, v = text.partition("=") if "=" in text else text.partition(":")
        else:
            k, found, v = text.partition(sep)
        if hosts and not found:
            raise _fail(items, i, f'invalid extra_hosts entry "{text}": must be host:ip or host=ip')
        out[k] = v if found else None
        out.key_pos[k] = key_pos(items, i)
    return out


def canon_service(svc: Any) -> Any:
    """One file's service with map-like keys as mappings and string-or-list keys as lists."""
    if svc is None:
        return YDict()
    out = like(svc, YDict(svc))
    for k in _MAP_KEYS:
        if k in out:
            out[k] = list_to_map(out[k])
    if "extra_hosts" in out:
        out["extra_hosts"] = list_to_map(out["extra_hosts"], hosts=True)
    for k in _LIST_KEYS:
        if isinstance(out.get(k), str):
            out[k] = [out[k]]
    if isinstance(out.get("build"), str):
        out["build"] = YDict(context=out["build"])
    if isinstance(out.get("build"), dict):
        b = like(out["build"], YDict(out["build"]))
        for k in ("args", "labels"):
            if k in b:
                b[k] = list_to_map(b[k])
        if "extra_hosts" in b:
            b["extra_hosts"] = list_to_map(b["extra_hosts"], hosts=True)
        out["build"] = b
    if isinstance(out.get("networks"), list):
        out["networks"] = like(out["networks"], YDict((n, None) for n in out["networks"]))
    if isinstance(out.get("depends_on"), list):
        deps = YDict((n, {"condition": "service_started", "required": True}) for n in out["depends_on"])
        out["depends_on"] = like(out["depends_on"], deps)
    return out


# --- scalars ----------------------------------------------------------------------------------------------
def to_bool(v: Any, what: str = "value") -> bool:
    if isinstance(v, bool):
        return v
    s = str(v)
    if s in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if s in ("0", "f", "F", "false", "FALSE", "False", ""):
        return False
    raise InvalidArgument(f'{what}: invalid boolean "{s}"')


def to_int(v: Any, what: str = "value") -> int:
    try:
        return int(v) if not isinstance(v, float) else int(v)
    except (TypeError, ValueError):
        raise InvalidArgument(f'{what}: invalid integer "{v}"') from None


def duration(v: Any, what: str = "duration") -> float:
    """``1m30s``, ``500ms``, ``1h`` → seconds (a bare number is seconds)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    try:
        return parse_go_duration(str(v))
    except ValueError as e:
        raise InvalidArgument(f"{what}: {e}") from None


def size(v: Any, what: str = "size") -> int:
    """``512M``, ``1g``, ``1024`` → bytes (1024-based)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    try:
        return parse_size(str(v))
    except ValueError as e:
        raise InvalidArgument(f"{what}: {e}") from None


def _str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def host_path(p: str, wd: str) -> str:
    """A host path resolved against the project's working dir, ``~`` expanded."""
    p = os.path.expanduser(p)
    return os.path.normpath(p if os.path.isabs(p) else os.path.join(wd, p))


def _pairs(m: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), _str(v)) for k, v in (m or {}).items())


# --- ports and mounts -------------------------------------------------------------------------------------
def ports(item: Any, node: Any = None, index: int = 0, what: str = "ports") -> list[PortSpec]:
    """One ``ports`` entry (short string, number or long mapping) → PortSpecs (one per container port)."""
    if isinstance(item, dict):
        try:
            target = int(item["target"])
        except (TypeError, ValueError):
            raise _fail(node, index, f'{what}: invalid port target "{item.get("target")}"') from None
        return [PortSpec(target=target, published=_str(item.get("published")), host_ip=_str(item.get("host_ip")),
                         protocol=_str(item.get("protocol")) or "tcp", mode=_str(item.get("mode")) or "ingress")]
    raw = str(item)
    try:
        mappings = parse_port_spec(raw)
    except InvalidArgument as e:
        raise _fail(node, index, f'{what}: invalid port "{raw}": {e.message}') from None
    out = []
    for m in mappings:
        port, _, proto = m.port.partition("/")
        out.append(PortSpec(target=int(port), published=m.host_port, host_ip=m.host_ip, protocol=proto))
    return out


def volume_target(item: Any) -> str:
    """The container path of a ``volumes`` entry (for merging by target); "" when unreadable."""
    if isinstance(item, dict):
        return _str(item.get("target"))
    parts = str(item).split(":")
    return parts[0] if len(parts) == 1 else parts[1]


def mount(item: Any, wd: str, node: Any = None, index: int = 0, what: str = "volumes") -> MountSpec:
    """One ``volumes`` entry (short ``[SRC:]DST[:MODES]`` or long mapping) → MountSpec."""
    if isinstance(item, dict):
        return _long_mount(item, wd, node, index, what)
    raw = str(item)
    parts = raw.split(":")
    if len(parts) > 3 or not all(parts[:2]):
        raise _fail(node, index, f'{what}: invalid volume specification: "{raw}"')
    if len(parts) == 1:
        src, target, modes = "", parts[0], []
    else:
        src, target, modes = parts[0], parts[1], parts[2].split(",") if len(parts) == 3 else []
    if not target.startswith("/"):
        raise _fail(node, index, f'{what}: invalid volume specification: "{raw}": mount path must be absolute')
    kind = "volume"
    if src.startswith(("/", ".", "~")):
        kind, src = "bind", host_path(src, wd)
    kw: dict[str, Any] = {}
    for mode in modes:
        if mode in ("ro", "rw"):
            kw["read_only"] = mode == "ro"
        elif mode == "nocopy":
            kw["volume_nocopy"] = True
        elif mode in _PROPAGATION:
            kw["bind_propagation"] = mode
        elif mode in _CONSISTENCY:
            kw["consistency"] = mode
        elif mode not in ("z", "Z"):
            raise _fail(node, index, f'{what}: invalid volume specification: "{raw}": unknown mode "{mode}"')
    return MountSpec(type=kind, target=target, source=src, **kw)


def _long_mount(item: dict, wd: str, node: Any, index: int, what: str) -> MountSpec:
    kind, target, src = item["type"], _str(item.get("target")), _str(item.get("source"))
    if not target.startswith("/"):
        raise _fail(node, index, f'{what}: invalid mount target "{target}": must be an absolute path')
    if kind == "bind":
        if not src:
            raise _fail(node, index, f"{what}: invalid mount: a bind mount needs a source")
        src = host_path(src, wd)
    if kind == "tmpfs" and src:
        raise _fail(node, index, f"{what}: invalid mount: a tmpfs mount takes no source")
    bind, vol, tmpfs = item.get("bind") or {}, item.get("volume") or {}, item.get("tmpfs") or {}
    mode = tmpfs.get("mode", 0)
    return MountSpec(
        type=kind, target=target, source=src, read_only=to_bool(item.get("read_only", False), "read_only"),
        consistency=_str(item.get("consistency")),
        bind_create_host_path=to_bool(bind.get("create_host_path", True), "bind.create_host_path"),
        bind_propagation=_str(bind.get("propagation")), volume_nocopy=to_bool(vol.get("nocopy", False), "nocopy"),
        tmpfs_size=size(tmpfs["size"], "tmpfs.size") if "size" in tmpfs else 0,
        tmpfs_mode=int(mode, 8) if isinstance(mode, str) else int(mode))


def file_ref(item: Any, kind: str) -> FileRef:
    """A service's ``configs``/``secrets`` entry (a name or a mapping) → FileRef with its default target."""
    if not isinstance(item, dict):
        item = {"source": str(item)}
    src = str(item["source"])
    target = _str(item.get("target")) or (f"/run/secrets/{src}" if kind == "secret" else f"/{src}")
    if kind == "secret" and not target.startswith("/"):
        target = f"/run/secrets/{target}"
    mode = item.get("mode")
    if isinstance(mode, str):
        mode = int(mode, 8)
    return FileRef(source=src, target=target, uid=_str(item.get("uid")), gid=_str(item.get("gid")),
                   mode=None if mode is None else int(mode))


# --- a service --------------------------------------------------------------------------------------------
def _command(v: Any) -> tuple[str, ...] | None:
    if v is None:
        return None
    return tuple(shlex.split(v)) if isinstance(v, str) else tuple(str(x) for x in v)


def _build(b: Any, wd: str) -> BuildSpec | None:
    if b is None:
        return None
    ctx = _str(b.get("context")) or "."
    if "://" not in ctx and not ctx.startswith(("git@", "github.com/")):
        ctx = host_path(ctx, wd)
    return BuildSpec(
        context=ctx, dockerfile=_str(b.get("dockerfile")) or "Dockerfile",
        args=tuple((str(k), None if v is None else _str(v)) for k, v in (b.get("args") or {}).items()),
        target=_str(b.get("target")), labels=_pairs(b.get("labels")),
        cache_from=tuple(str(x) for x in b.get("cache_from") or ()), network=_str(b.get("network")),
        extra_hosts=_hosts(b.get("extra_hosts")), no_cache=to_bool(b.get("no_cache", False), "build.no_cache"),
        pull=to_bool(b.get("pull", False), "build.pull"))


def _hosts(m: Any) -> tuple[str, ...]:
    out = []
    for host, ips in (m or {}).items():
        for ip in ips if isinstance(ips, list) else [ips]:
            out.append(f"{host}:{_str(ip)}")
    return tuple(out)


def _healthcheck(h: Any, what: str) -> Healthcheck | None:
    if h is None:
        return None
    test = h.get("test")
    test_t = ("CMD-SHELL", test) if isinstance(test, str) else tuple(str(x) for x in test or ())
    disable = to_bool(h.get("disable", False), f"{what}.disable") or test_t == ("NONE",)
    if disable:
        return Healthcheck(test=("NONE",), disable=True)
    d = {k: duration(h[k], f"{what}.{k}") if k in h else None
         for k in ("interval", "timeout", "start_period", "start_interval")}
    return Healthcheck(test=test_t, retries=to_int(h["retries"], f"{what}.retries") if "retries" in h else None, **d)


def _resources(r: Any, what: str) -> Resources:
    r = r or {}
    return Resources(cpus=float(r.get("cpus") or 0), memory=size(r["memory"], f"{what}.memory") if "memory" in r
                     else 0, pids=to_int(r.get("pids") or 0, f"{what}.pids"))


def service(name: str, s: Any, wd: str, lookup: Lookup, env_files: dict[str, str]) -> Service:
    """The merged mapping of service ``name`` → Service. ``env_files`` are its env_file contents, merged."""
    what = f"services.{name}"

    def at(key: str) -> str:
        return f"{where(key_pos(s, key))}: {what}.{key}"

    env = dict(env_files)
    for k, v in (s.get("environment") or {}).items():
        env[str(k)] = lookup(str(k)) if v is None else _str(v)
    port_list = [p for i, item in enumerate(s.get("ports") or ()) for p in ports(item, s["ports"], i, what + ".ports")]
    deploy = s.get("deploy") or {}
    replicas = to_int(deploy["replicas"], at("deploy")) if "replicas" in deploy else None
    if "scale" in s:
        scale = to_int(s["scale"], at("scale"))
        if replicas is not None and replicas != scale:
            raise InvalidArgument(f"{at('scale')}: can't set distinct values on 'scale' and 'deploy.replicas'")
        replicas = scale
    res = deploy.get("resources") or {}
    limits = _resources(res.get("limits"), at("deploy") + ".resources.limits")
    if not limits.cpus and "cpus" in s:
        limits = Resources(float(s["cpus"]), limits.memory, limits.pids)
    if not limits.memory and "mem_limit" in s:
        limits = Resources(limits.cpus, size(s["mem_limit"], at("mem_limit")), limits.pids)
    if not limits.pids and "pids_limit" in s:
        limits = Resources(limits.cpus, limits.memory, to_int(s["pids_limit"], at("pids_limit")))
    logging = s.get("logging") or {}
    develop = s.get("develop") or {}
    ulimits = []
    for k, v in (s.get("ulimits") or {}).items():
        soft, hard = (v.get("soft"), v.get("hard")) if isinstance(v, dict) else (v, v)
        ulimits.append((str(k), to_int(soft, at("ulimits")), to_int(hard, at("ulimits"))))
    init = s.get("init")
    return Service(
        name=name, image=_str(s.get("image")), build=_build(s.get("build"), wd),
        command=_command(s.get("command")), entrypoint=_command(s.get("entrypoint")),
        environment=tuple(env.items()), ports=tuple(port_list),
        expose=tuple(str(x) for x in s.get("expose") or ()),
        volumes=tuple(mount(v, wd, s["volumes"], i, what + ".volumes") for i, v in enumerate(s.get("volumes") or ())),
        tmpfs=tuple(str(x) for x in s.get("tmpfs") or ()),
        networks=tuple(ServiceNetwork(name=str(n), aliases=tuple(str(a) for a in (c or {}).get("aliases") or ()),
                                      ipv4_address=_str((c or {}).get("ipv4_address")),
                                      ipv6_address=_str((c or {}).get("ipv6_address")),
                                      priority=int((c or {}).get("priority") or 0))
                       for n, c in (s.get("networks") or {}).items()),
        network_mode=_str(s.get("network_mode")),
        depends_on=tuple(DependsOn(service=str(d), condition=_str((c or {}).get("condition")) or "service_started",
                                   restart=to_bool((c or {}).get("restart", False), at("depends_on")),
                                   required=to_bool((c or {}).get("required", True), at("depends_on")))
                         for d, c in (s.get("depends_on") or {}).items()),
        healthcheck=_healthcheck(s.get("healthcheck"), at("healthcheck")), restart=_str(s.get("restart")),
        replicas=1 if replicas is None else replicas, limits=limits,
        reservations=_resources(res.get("reservations"), at("deploy") + ".resources.reservations"),
        labels=_pairs(s.get("labels")), container_name=_str(s.get("container_name")),
        hostname=_str(s.get("hostname")), domainname=_str(s.get("domainname")), user=_str(s.get("user")),
        working_dir=_str(s.get("working_dir")), extra_hosts=_hosts(s.get("extra_hosts")),
        dns=tuple(str(x) for x in s.get("dns") or ()), init=None if init is None else to_bool(init, at("init")),
        stop_signal=_str(s.get("stop_signal")),
        stop_grace_period=duration(s["stop_grace_period"], at("stop_grace_period"))
        if "stop_grace_period" in s else None,
        cap_add=tuple(str(x) for x in s.get("cap_add") or ()), cap_drop=tuple(str(x) for x in s.get("cap_drop") or ()),
        privileged=to_bool(s.get("privileged", False), at("privileged")),
        read_only=to_bool(s.get("read_only", False), at("read_only")), ulimits=tuple(ulimits),
        sysctls=_pairs(s.get("sysctls")), logging_driver=_str(logging.get("driver")),
        logging_options=_pairs(logging.get("options")), profiles=tuple(str(p) for p in s.get("profiles") or ()),
        configs=tuple(file_ref(c, "config") for c in s.get("configs") or ()),
        secrets=tuple(file_ref(c, "secret") for c in s.get("secrets") or ()),
        tty=to_bool(s.get("tty", False), at("tty")), stdin_open=to_bool(s.get("stdin_open", False), at("stdin_open")),
        pull_policy=_str(s.get("pull_policy")),
        watch=tuple(WatchRule(action=str(w["action"]), path=host_path(str(w["path"]), wd), target=_str(w.get("target")),
                              ignore=tuple([w["ignore"]] if isinstance(w.get("ignore"), str) else w.get("ignore") or ()))
                    for w in develop.get("watch") or ()),
        extensions=extensions(s))


def extensions(d: Any) -> tuple[tuple[str, str], ...]:
    return tuple((k, json.dumps(v, sort_keys=True)) for k, v in d.items() if isinstance(k, str) and k.startswith("x-"))


# --- top-level resources ----------------------------------------------------------------------------------
def _external(d: dict) -> tuple[bool, str]:
    ext = d.get("external", False)
    if isinstance(ext, dict):
        return True, _str(ext.get("name"))
    return to_bool(ext, "external"), ""


def _engine_name(project: str, key: str, d: dict) -> tuple[bool, str]:
    ext, ext_name = _external(d)
    name = _str(d.get("name")) or ext_name
    return ext, name or (key if ext else f"{project}_{key}")


def network(project: str, key: str, d: Any) -> Network:
    d = d or {}
    ext, name = _engine_name(project, key, d)
    ipam = d.get("ipam") or {}
    configs = []
    for c in ipam.get("config") or ():
        pairs = [(k, _str(c[k])) for k in ("subnet", "ip_range", "gateway") if k in c]
        if c.get("aux_addresses"):
            pairs.append(("aux_addresses", json.dumps({str(k): _str(v) for k, v in c["aux_addresses"].items()},
                                                      sort_keys=True)))
        configs.append(tuple(pairs))
    return Network(key=key, name=name, driver=_str(d.get("driver")) or "bridge", driver_opts=_pairs(d.get("driver_opts")),
                   internal=to_bool(d.get("internal", False)), attachable=to_bool(d.get("attachable", False)),
                   enable_ipv6=to_bool(d.get("enable_ipv6", False)), external=ext,
                   labels=_pairs(list_to_map(d.get("labels"))), ipam_driver=_str(ipam.get("driver")),
                   ipam_config=tuple(configs))


def volume(project: str, key: str, d: Any) -> Volume:
    d = d or {}
    ext, name = _engine_name(project, key, d)
    return Volume(key=key, name=name, driver=_str(d.get("driver")) or "local", driver_opts=_pairs(d.get("driver_opts")),
                  external=ext, labels=_pairs(list_to_map(d.get("labels"))))


def file_source(project: str, key: str, d: Any, wd: str) -> FileSource:
    d = d or {}
    ext, name = _engine_name(project, key, d)
    return FileSource(key=key, name=name, file=host_path(str(d["file"]), wd) if d.get("file") else "",
                      environment=_str(d.get("environment")), content=_str(d.get("content")), external=ext)
