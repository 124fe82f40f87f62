"""Validation of compose files: the shape of each file (keys and types, from compact tables written from the
Compose Specification) and the consistency of the resolved project (references, cycles, names).

Errors are ``InvalidArgument`` whose message starts with ``file:line:col`` (or the file when the position is
unknown).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from berth.compose.model import Project
from berth.compose.yamlsrc import Pos, key_pos, where
from berth.errors import InvalidArgument

# --- the tables -------------------------------------------------------------------------------------------
# Leaf kinds: values read after interpolation, so integers, numbers and booleans may also be strings.
STR, INT, NUM, BOOL, NULL = "string", "integer", "number", "boolean", "null"
LIST, MAP, STRS, LOD, ANY = "list", "mapping", "strings", "lod", "any"


@dataclass(frozen=True)
class Obj:
    keys: dict[str, Any]
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class Seq:
    item: Any


@dataclass(frozen=True)
class MapOf:
    value: Any
    pattern: str = ""


@dataclass(frozen=True)
class Alt:
    alts: tuple[Any, ...]


@dataclass(frozen=True)
class Enum:
    values: tuple[str, ...] = field(default=())


def alt(*specs: Any) -> Alt:
    return Alt(specs)


NAME = r"[a-zA-Z0-9._-]+"
STR_OR_LIST = alt(STR, STRS)
CMD = alt(NULL, STR, STRS)
EXTRA_HOSTS = alt(MapOf(alt(STR, STRS)), STRS)
ULIMITS = MapOf(alt(INT, Obj({"soft": INT, "hard": INT}, ("soft", "hard"))))
FILE_REFS = Seq(alt(STR, Obj({"source": STR, "target": STR, "uid": STR, "gid": STR, "mode": NUM}, ("source",))))
ENV_FILE = alt(STR, Seq(alt(STR, Obj({"path": STR, "required": BOOL, "format": STR}, ("path",)))))
BUILD = alt(STR, Obj({
    "context": STR, "dockerfile": STR, "dockerfile_inline": STR, "entitlements": LIST, "args": LOD, "ssh": LOD,
    "labels": LOD, "cache_from": STRS, "cache_to": STRS, "no_cache": BOOL, "additional_contexts": LOD,
    "network": STR, "provenance": alt(STR, BOOL), "sbom": alt(STR, BOOL), "pull": BOOL, "target": STR,
    "shm_size": alt(INT, STR), "extra_hosts": EXTRA_HOSTS, "isolation": STR, "privileged": BOOL,
    "secrets": FILE_REFS, "tags": STRS, "ulimits": ULIMITS, "platforms": STRS}))
HEALTHCHECK = Obj({"disable": BOOL, "interval": STR, "retries": NUM, "test": STR_OR_LIST, "timeout": STR,
                   "start_period": STR, "start_interval": STR})
RESOURCES = Obj({"cpus": NUM, "memory": alt(STR, INT), "pids": INT, "generic_resources": LIST, "devices": LIST})
DEPLOY = Obj({"mode": STR, "endpoint_mode": STR, "replicas": INT, "labels": LOD, "rollback_config": MAP,
              "update_config": MAP, "resources": Obj({"limits": RESOURCES, "reservations": RESOURCES}),
              "restart_policy": MAP, "placement": MAP})
PORT = alt(NUM, STR, Obj({"name": STR, "mode": STR, "host_ip": STR, "target": INT, "published": alt(STR, INT),
                          "protocol": STR, "app_protocol": STR}, ("target",)))
MOUNT = alt(STR, Obj({
    "type": Enum(("bind", "volume", "tmpfs", "cluster", "npipe", "image")), "source": STR, "target": STR,
    "read_only": BOOL, "consistency": STR,
    "bind": Obj({"propagation": STR, "create_host_path": BOOL, "recursive": STR, "selinux": STR}),
    "volume": Obj({"labels": LOD, "nocopy": BOOL, "subpath": STR}),
    "tmpfs": Obj({"size": alt(INT, STR), "mode": NUM}), "image": Obj({"subpath": STR})}, ("type",)))
DEPENDS_ON = alt(STRS, MapOf(Obj({"restart": BOOL, "required": BOOL, "condition": Enum(
    ("service_started", "service_healthy", "service_completed_successfully"))}), NAME))
SERVICE_NETWORKS = alt(STRS, MapOf(alt(NULL, Obj({
    "aliases": STRS, "interface_name": STR, "ipv4_address": STR, "ipv6_address": STR, "link_local_ips": STRS,
    "mac_address": STR, "driver_opts": MAP, "priority": NUM, "gw_priority": NUM})), NAME))
DEVELOP = alt(NULL, Obj({"watch": Seq(Obj({
    "ignore": STR_OR_LIST, "include": STR_OR_LIST, "path": STR,
    "action": Enum(("rebuild", "sync", "restart", "sync+restart", "sync+exec")), "target": STR, "exec": MAP,
    "initial_sync": BOOL}, ("path", "action")))}))
SERVICE = Obj({
    "develop": DEVELOP, "deploy": DEPLOY, "annotations": LOD, "attach": BOOL, "build": BUILD, "blkio_config": MAP,
    "cap_add": STRS, "cap_drop": STRS, "cgroup": Enum(("host", "private")), "cgroup_parent": STR, "command": CMD,
    "configs": FILE_REFS, "container_name": STR, "cpu_count": INT, "cpu_percent": INT, "cpu_shares": NUM,
    "cpu_quota": NUM, "cpu_period": NUM, "cpu_rt_period": NUM, "cpu_rt_runtime": NUM, "cpus": NUM,
    "cpuset": STR, "credential_spec": MAP, "depends_on": DEPENDS_ON, "device_cgroup_rules": STRS,
    "devices": LIST, "dns": STR_OR_LIST, "dns_opt": STRS, "dns_search": STR_OR_LIST, "domainname": STR,
    "entrypoint": CMD, "env_file": ENV_FILE, "label_file": STR_OR_LIST, "environment": LOD, "expose": LIST,
    "extends": alt(STR, MAP), "provider": MAP, "external_links": STRS, "extra_hosts": EXTRA_HOSTS,
    "gpus": alt(STR, LIST), "group_add": LIST, "healthcheck": HEALTHCHECK, "hostname": STR, "image": STR,
    "init": BOOL, "ipc": STR, "isolation": STR, "labels": LOD, "links": STRS, "logging": Obj({
        "driver": STR, "options": MapOf(alt(STR, NUM, NULL))}),
    "mac_address": STR, "mem_limit": NUM, "mem_reservation": alt(STR, INT), "mem_swappiness": INT,
    "memswap_limit": NUM, "network_mode": STR, "models": alt(STRS, MAP), "networks": SERVICE_NETWORKS,
    "oom_kill_disable": BOOL, "oom_score_adj": INT, "pid": alt(STR, NULL), "pids_limit": NUM, "platform": STR,
    "ports": Seq(PORT), "post_start": LIST, "pre_stop": LIST, "privileged": BOOL, "profiles": STRS,
    "pull_policy": STR, "pull_refresh_after": STR, "read_only": BOOL, "restart": STR, "runtime": STR,
    "scale": INT, "security_opt": LIST, "shm_size": NUM, "secrets": FILE_REFS, "sysctls": LOD,
    "stdin_open": BOOL, "stop_grace_period": STR, "stop_signal": STR, "storage_opt": MAP, "tmpfs": STR_OR_LIST,
    "tty": BOOL, "ulimits": ULIMITS, "use_api_socket": BOOL, "user": STR, "uts": STR, "userns_mode": STR,
    "volumes": Seq(MOUNT), "volumes_from": STRS, "working_dir": STR})
EXTERNAL = alt(BOOL, Obj({"name": STR}))
NETWORK = alt(NULL, Obj({
    "name": STR, "driver": STR, "driver_opts": MapOf(alt(STR, NUM)), "external": EXTERNAL, "internal": BOOL,
    "enable_ipv4": BOOL, "enable_ipv6": BOOL, "attachable": BOOL, "labels": LOD,
    "ipam": Obj({"driver": STR, "options": MapOf(STR), "config": Seq(Obj({
        "subnet": STR, "ip_range": STR, "gateway": STR, "aux_addresses": MapOf(STR)}))})}))
VOLUME = alt(NULL, Obj({"name": STR, "driver": STR, "driver_opts": MapOf(alt(STR, NUM)), "external": EXTERNAL,
                        "labels": LOD}))
FILE_SOURCE = {"name": STR, "file": STR, "environment": STR, "external": EXTERNAL, "labels": LOD,
               "template_driver": STR}
CONFIG = Obj({**FILE_SOURCE, "content": STR})
SECRET = Obj({**FILE_SOURCE, "driver": STR, "driver_opts": MapOf(alt(STR, NUM))})
TOP = Obj({"version": STR, "name": STR, "include": LIST, "services": MapOf(SERVICE, NAME), "models": MAP,
           "networks": MapOf(NETWORK, NAME), "volumes": MapOf(VOLUME, NAME), "secrets": MapOf(SECRET, NAME),
           "configs": MapOf(CONFIG, NAME)})

# --- the checker ------------------------------------------------------------------------------------------
_TYPE_NAMES = {STR: "a string", INT: "an integer", NUM: "a number", BOOL: "a boolean", NULL: "null",
               LIST: "a list", STRS: "a list", MAP: "a mapping", LOD: "a mapping or a list"}


def _kind(spec: Any) -> str:
    if isinstance(spec, (Obj, MapOf)):
        return MAP
    if isinstance(spec, Seq):
        return LIST
    if isinstance(spec, Enum):
        return STR
    return spec


def _fits(value: Any, spec: Any) -> bool:
    kind = _kind(spec)
    if kind == ANY:
        return True
    if kind == NULL:
        return value is None
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, (bool, str))
    if kind in (INT, NUM):
        ok = (int,) if kind == INT else (int, float)
        return isinstance(value, str) or (isinstance(value, ok) and not isinstance(value, bool))
    if kind in (LIST, STRS):
        return isinstance(value, list)
    if kind == LOD:
        return isinstance(value, (list, dict))
    return isinstance(value, dict)


def _type_names(spec: Any) -> str:
    specs = spec.alts if isinstance(spec, Alt) else (spec,)
    names: list[str] = []
    for s in specs:
        n = _TYPE_NAMES.get(_kind(s), _kind(s))
        if n not in names:
            names.append(n)
    return " or ".join(names)


def check(value: Any, spec: Any, path: str, pos: Pos | None, file: str) -> None:
    """Check ``value`` against ``spec``; raise InvalidArgument naming ``path`` and where it is."""
    if isinstance(spec, Alt):
        for s in spec.alts:
            if _fits(value, s):
                return check(value, s, path, pos, file)
        raise InvalidArgument(f"{where(pos, file)}: {path} must be {_type_names(spec)}")
    if not _fits(value, spec):
        raise InvalidArgument(f"{where(pos, file)}: {path} must be {_type_names(spec)}")
    if isinstance(spec, Enum) and value not in spec.values:
        raise InvalidArgument(f'{where(pos, file)}: {path} must be one of {", ".join(spec.values)}, not "{value}"')
    if spec == STRS:
        for i, item in enumerate(value):
            if not isinstance(item, (str, int, float)) or isinstance(item, bool):
                raise InvalidArgument(f"{where(key_pos(value, i) or pos, file)}: {path}[{i}] must be a string")
    elif spec == LOD and isinstance(value, list):
        check(value, STRS, path, pos, file)
    elif spec == LOD:
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                raise InvalidArgument(f"{where(key_pos(value, k) or pos, file)}: {path}.{k} must be "
                                      "a string, number, boolean or null")
    elif isinstance(spec, Obj):
        for k, v in value.items():
            kp = key_pos(value, k) or pos
            if isinstance(k, str) and k.startswith("x-"):
                continue
            if k not in spec.keys:
                raise InvalidArgument(f"{where(kp, file)}: {path}.{k}: additional property not allowed")
            check(v, spec.keys[k], f"{path}.{k}", kp, file)
        for k in spec.required:
            if k not in value:
                raise InvalidArgument(f'{where(pos, file)}: {path}: property "{k}" is required')
    elif isinstance(spec, MapOf):
        for k, v in value.items():
            kp = key_pos(value, k) or pos
            if spec.pattern and not re.fullmatch(spec.pattern, str(k)):
                raise InvalidArgument(f'{where(kp, file)}: {path}: invalid name "{k}", it must match {spec.pattern}')
            check(v, spec.value, f"{path}.{k}", kp, file)
    elif isinstance(spec, Seq):
        for i, item in enumerate(value):
            check(item, spec.item, f"{path}[{i}]", key_pos(value, i) or pos, file)
    return None


def check_file(doc: Any, file: str) -> list[str]:
    """Check one (interpolated) compose file; returns warnings."""
    if doc is None:
        raise InvalidArgument(f"{file}: empty compose file")
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{where(getattr(doc, 'pos', None), file)}: top-level object must be a mapping")
    warnings = []
    top = {k: v for k, v in doc.items() if not (isinstance(k, str) and k.startswith("x-"))}
    for k in top:
        if k not in TOP.keys:
            raise InvalidArgument(f"{where(key_pos(doc, k), file)}: {k}: additional property not allowed")
    for k, v in top.items():
        check(v, TOP.keys[k], str(k), key_pos(doc, k), file)
    if "version" in top:
        warnings.append(f"{file}: the attribute `version` is obsolete, it will be ignored, "
                        "please remove it to avoid potential confusion")
    if "include" in top:
        warnings.append(f"{file}: `include` is not supported by berth yet; ignored")
    for name, svc in (top.get("services") or {}).items():
        if svc is None:
            continue
        for key in ("extends", "provider", "models", "label_file", "post_start", "pre_stop"):
            if key in svc:
                warnings.append(f"{where(key_pos(svc, key), file)}: services.{name}.{key} is not supported "
                                "by berth yet; ignored")
    return warnings


# --- the project ------------------------------------------------------------------------------------------
Locate = Callable[[str, str], str]   # (service, key) -> "file:line:col"


def check_project(project: Project, locate: Locate, all_services: set[str]) -> None:
    """References, dependency cycles and container names of a resolved project."""
    nets = {n.key for n in project.networks}
    vols = {v.key for v in project.volumes}
    configs = {c.key for c in project.configs}
    secrets = {s.key for s in project.secrets}
    for s in project.services:
        if not s.image and s.build is None:
            raise InvalidArgument(f'{locate(s.name, "")}: service "{s.name}" has neither an image nor a build '
                                  "context specified: invalid compose project")
        for d in s.depends_on:
            if d.service not in all_services:
                raise InvalidArgument(f'{locate(s.name, "depends_on")}: service "{s.name}" depends on undefined '
                                      f'service "{d.service}": invalid compose project')
        mode = s.network_mode
        if mode.startswith("service:") and mode[8:] not in all_services:
            raise InvalidArgument(f'{locate(s.name, "network_mode")}: service "{s.name}" depends on undefined '
                                  f'service "{mode[8:]}": invalid compose project')
        if mode and s.networks:
            raise InvalidArgument(f'{locate(s.name, "network_mode")}: service "{s.name}": network_mode and '
                                  "networks cannot be combined")
        for n in s.networks:
            if n.name not in nets:
                raise InvalidArgument(f'{locate(s.name, "networks")}: service "{s.name}" refers to undefined '
                                      f"network {n.name}: invalid compose project")
        for m in s.volumes:
            if m.type == "volume" and m.source and m.source not in vols:
                raise InvalidArgument(f'{locate(s.name, "volumes")}: service "{s.name}" refers to undefined '
                                      f"volume {m.source}: invalid compose project")
        for kind, refs, known in (("config", s.configs, configs), ("secret", s.secrets, secrets)):
            for r in refs:
                if r.source not in known:
                    raise InvalidArgument(f'{locate(s.name, kind + "s")}: service "{s.name}" refers to undefined '
                                          f"{kind} {r.source}: invalid compose project")
        if s.container_name and s.replicas > 1:
            raise InvalidArgument(f'{locate(s.name, "container_name")}: service "{s.name}": can\'t set '
                                  f"container_name and {s.name} as container name must be unique "
                                  f"(replicas: {s.replicas}): invalid compose project")
    names: dict[str, str] = {}
    for s in project.services:
        if s.container_name:
            if s.container_name in names:
                raise InvalidArgument(f'{locate(s.name, "container_name")}: services "{names[s.container_name]}" '
                                      f'and "{s.name}" have the same container_name "{s.container_name}"')
            names[s.container_name] = s.name
    _check_cycles(project, locate)


def _check_cycles(project: Project, locate: Locate) -> None:
    deps = {s.name: [d.service for d in s.depends_on] for s in project.services}
    state: dict[str, int] = {}    # 1 visiting, 2 done

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        stack.append(name)
        for d in deps.get(name, ()):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                raise InvalidArgument(f'{locate(cycle[0], "depends_on")}: dependency cycle detected: '
                                      + " -> ".join(cycle))
            if d in deps and not state.get(d):
                visit(d, stack)
        stack.pop()
        state[name] = 2

    for name in deps:
        if not state.get(name):
            visit(name, [])
