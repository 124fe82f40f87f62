"""The resolved project as ``docker compose config`` prints it, and the per-service config hash.

``to_dict`` uses the long syntaxes (ports, volumes, depends_on, networks, configs, secrets) and escapes ``$`` as
``$$`` so the output loads back to the same project. ``config_hash`` is Docker Compose's ``ServiceHash``: a
sha256 of the service's canonical JSON without what does not change the container (replicas, build, pull
policy, depends_on, profiles, develop.watch).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import yaml

from berth.compose.model import FileRef, FileSource, Healthcheck, MountSpec, Network, PortSpec, Project, Service
from berth.compose.yamlsrc import ComposeLoader as _Loader


def go_duration(seconds: float) -> str:
    """Seconds as Go's ``time.Duration.String()``: 90 → "1m30s", 0.5 → "500ms", 3600 → "1h0m0s"."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return f"{sign}{_trim(ns / size)}{unit}"
    h, rest = divmod(ns, 3_600_000_000_000)
    m, rest = divmod(rest, 60_000_000_000)
    s = _trim(rest / 1e9) + "s"
    if h:
        return f"{sign}{h}h{m}m{s}"
    return f"{sign}{m}m{s}" if m else f"{sign}{s}"


def _trim(x: float) -> str:
    return f"{x:.9f}".rstrip("0").rstrip(".")


def _port(p: PortSpec) -> dict:
    d: dict[str, Any] = {"mode": p.mode, "target": p.target}
    if p.published:
        d["published"] = p.published
    if p.host_ip:
        d["host_ip"] = p.host_ip
    d["protocol"] = p.protocol
    return d


def _mount(m: MountSpec) -> dict:
    d: dict[str, Any] = {"type": m.type}
    if m.source:
        d["source"] = m.source
    d["target"] = m.target
    if m.read_only:
        d["read_only"] = True
    if m.consistency:
        d["consistency"] = m.consistency
    if m.type == "bind":
        d["bind"] = {"create_host_path": m.bind_create_host_path}
        if m.bind_propagation:
            d["bind"]["propagation"] = m.bind_propagation
    if m.type == "volume" and m.volume_nocopy:
        d["volume"] = {"nocopy": True}
    if m.type == "tmpfs" and (m.tmpfs_size or m.tmpfs_mode):
        d["tmpfs"] = {k: v for k, v in (("size", m.tmpfs_size), ("mode", m.tmpfs_mode)) if v}
    return d


def _healthcheck(h: Healthcheck) -> dict:
    if h.disable:
        return {"disable": True}
    d: dict[str, Any] = {"test": list(h.test)} if h.test else {}
    for k in ("interval", "timeout", "start_period", "start_interval"):
        v = getattr(h, k)
        if v is not None:
            d[k] = go_duration(v)
    if h.retries is not None:
        d["retries"] = h.retries
    return d


def _ref(r: FileRef) -> dict:
    d: dict[str, Any] = {"source": r.source, "target": r.target}
    d.update({k: v for k, v in (("uid", r.uid), ("gid", r.gid)) if v})
    if r.mode is not None:
        d["mode"] = r.mode
    return d


def _resources(r) -> dict:
    return {k: v for k, v in (("cpus", r.cpus), ("memory", r.memory), ("pids", r.pids)) if v}


def service_dict(s: Service) -> dict:
    """One service in long syntax, leaving out what is at its default."""
    d: dict[str, Any] = {}
    if s.profiles:
        d["profiles"] = list(s.profiles)
    if s.build is not None:
        b = s.build
        d["build"] = {"context": b.context, "dockerfile": b.dockerfile}
        extra = {"args": dict(b.args), "target": b.target, "labels": dict(b.labels), "cache_from": list(b.cache_from),
                 "network": b.network, "extra_hosts": [h.replace(":", "=", 1) for h in b.extra_hosts],
                 "no_cache": b.no_cache, "pull": b.pull}
        d["build"].update({k: v for k, v in extra.items() if v})
    if s.image:
        d["image"] = s.image
    for k in ("command", "entrypoint"):
        if getattr(s, k) is not None:
            d[k] = list(getattr(s, k))
    if s.environment:
        d["environment"] = dict(s.environment)
    if s.ports:
        d["ports"] = [_port(p) for p in s.ports]
    if s.expose:
        d["expose"] = list(s.expose)
    if s.volumes:
        d["volumes"] = [_mount(m) for m in s.volumes]
    if s.tmpfs:
        d["tmpfs"] = list(s.tmpfs)
    if s.networks:
        d["networks"] = {n.name: ({k: v for k, v in (("aliases", list(n.aliases)), ("ipv4_address", n.ipv4_address),
                                                      ("ipv6_address", n.ipv6_address), ("priority", n.priority)) if v}
                                  or None) for n in s.networks}
    if s.network_mode:
        d["network_mode"] = s.network_mode
    if s.depends_on:
        d["depends_on"] = {x.service: {"condition": x.condition, "restart": x.restart, "required": x.required}
                           for x in s.depends_on}
    if s.healthcheck is not None:
        d["healthcheck"] = _healthcheck(s.healthcheck)
    deploy: dict[str, Any] = {}
    if s.replicas != 1:
        deploy["replicas"] = s.replicas
    res = {k: v for k, v in (("limits", _resources(s.limits)), ("reservations", _resources(s.reservations))) if v}
    if res:
        deploy["resources"] = res
    if deploy:
        d["deploy"] = deploy
    if s.labels:
        d["labels"] = dict(s.labels)
    if s.extra_hosts:
        d["extra_hosts"] = [h.replace(":", "=", 1) for h in s.extra_hosts]
    for k in ("restart", "container_name", "hostname", "domainname", "user", "working_dir", "stop_signal",
              "pull_policy"):
        if getattr(s, k):
            d[k] = getattr(s, k)
    for k in ("dns", "cap_add", "cap_drop"):
        if getattr(s, k):
            d[k] = list(getattr(s, k))
    for k in ("privileged", "read_only", "tty", "stdin_open"):
        if getattr(s, k):
            d[k] = True
    if s.init is not None:
        d["init"] = s.init
    if s.stop_grace_period is not None:
        d["stop_grace_period"] = go_duration(s.stop_grace_period)
    if s.ulimits:
        d["ulimits"] = {n: soft if soft == hard else {"soft": soft, "hard": hard} for n, soft, hard in s.ulimits}
    if s.sysctls:
        d["sysctls"] = dict(s.sysctls)
    if s.logging_driver or s.logging_options:
        d["logging"] = {k: v for k, v in (("driver", s.logging_driver), ("options", dict(s.logging_options))) if v}
    if s.configs:
        d["configs"] = [_ref(r) for r in s.configs]
    if s.secrets:
        d["secrets"] = [_ref(r) for r in s.secrets]
    if s.watch:
        d["develop"] = {"watch": [{k: v for k, v in (("action", w.action), ("path", w.path), ("target", w.target),
                                                     ("ignore", list(w.ignore))) if v} for w in s.watch]}
    for k, v in s.extensions:
        d[k] = json.loads(v)
    return d


def _network(n: Network) -> dict:
    d: dict[str, Any] = {"name": n.name}
    if n.external:
        d["external"] = True
        return d
    d["driver"] = n.driver
    if n.driver_opts:
        d["driver_opts"] = dict(n.driver_opts)
    if n.ipam_driver or n.ipam_config:
        ipam: dict[str, Any] = {}
        if n.ipam_driver:
            ipam["driver"] = n.ipam_driver
        if n.ipam_config:
            ipam["config"] = [{k: (json.loads(v) if k == "aux_addresses" else v) for k, v in c} for c in n.ipam_config]
        d["ipam"] = ipam
    for k in ("internal", "attachable", "enable_ipv6"):
        if getattr(n, k):
            d[k] = True
    if n.labels:
        d["labels"] = dict(n.labels)
    return d


def _file_source(f: FileSource) -> dict:
    d: dict[str, Any] = {"name": f.name}
    if f.external:
        d["external"] = True
    d.update({k: getattr(f, k) for k in ("file", "environment", "content") if getattr(f, k)})
    return d


def _escape(v: Any) -> Any:
    if isinstance(v, str):
        return v.replace("$", "$$")
    if isinstance(v, dict):
        return {k: _escape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_escape(x) for x in v]
    return v


def to_dict(project: Project) -> dict:
    """The resolved project as ``docker compose config`` prints it (``$`` escaped as ``$$``)."""
    d: dict[str, Any] = {"name": project.name, "services": {s.name: service_dict(s) for s in project.services}}
    if project.networks:
        d["networks"] = {n.key: _network(n) for n in project.networks}
    if project.volumes:
        d["volumes"] = {v.key: {"name": v.name, **({"external": True} if v.external else {"driver": v.driver}),
                                **({"driver_opts": dict(v.driver_opts)} if v.driver_opts else {}),
                                **({"labels": dict(v.labels)} if v.labels else {})} for v in project.volumes}
    for kind in ("configs", "secrets"):
        if getattr(project, kind):
            d[kind] = {f.key: _file_source(f) for f in getattr(project, kind)}
    for k, v in project.extensions:
        d[k] = json.loads(v)
    return _escape(d)


class _Dumper(yaml.SafeDumper):
    """Quotes every string that either YAML 1.1 or compose's YAML 1.2 reading would take for another type."""


for _first, _resolvers in _Loader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        _Dumper.add_implicit_resolver(_tag, _regexp, [_first])


def to_yaml(project: Project) -> str:
    """``to_dict`` as YAML text."""
    return yaml.dump(to_dict(project), Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def config_hash(service: Service) -> str:
    """sha256 hex of the service's canonical JSON, without replicas, build, pull_policy, depends_on, profiles
    and watch (what Docker Compose's ``ServiceHash`` leaves out); stable across runs."""
    s = dataclasses.replace(service, replicas=1, build=None, pull_policy="", depends_on=(), profiles=(), watch=())
    text = json.dumps(dataclasses.asdict(s), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
