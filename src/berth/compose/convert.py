"""A service replica as a ``POST /containers/create`` body, as Docker Compose v2 writes it.

Pure: no I/O. Files for configs and secrets given as ``content:``/``environment:`` live under
``files_dir(project)`` (the executor writes them there): ``$XDG_RUNTIME_DIR/berth-compose/<project>`` when the
runtime dir exists (per-user, tmpfs, cleaned at logout), else ``/tmp/berth-compose-<uid>/<project>``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from berth.compose import model as m
from berth.compose.model import FileRef, MountSpec, Project, Service

COMPOSE_VERSION = "2.29.7"      # the Docker Compose release whose labels and behaviour berth follows
SECRETS_DIR = "/run/secrets"


def container_name(project: Project, service: Service, number: int, oneoff: bool = False, slug: str = "") -> str:
    """``container_name`` or ``PROJECT-SERVICE-N``; a one-off: ``PROJECT-SERVICE-run-<12 hex of slug>``."""
    if oneoff:
        return f"{project.name}-{service.name}-run-{(slug or os.urandom(6).hex())[:12]}"
    if service.container_name:
        return service.container_name
    return f"{project.name}-{service.name}-{number}"


def image_name(project: Project, service: Service) -> str:
    """The service's image, or ``PROJECT-SERVICE`` for one built without an ``image:``."""
    return service.image or f"{project.name}-{service.name}".lower()


def files_dir(project: Project) -> str:
    """Where the executor materialises content/environment configs and secrets of ``project``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "berth-compose", project.name)
    return os.path.join(f"/tmp/berth-compose-{os.getuid()}", project.name)


def file_source_path(project: Project, kind: str, source: m.FileSource) -> str:
    """The host file a config (``kind="configs"``) or secret (``"secrets"``) is bind-mounted from."""
    if source.file:
        return source.file
    return os.path.join(files_dir(project), kind, source.key)


def file_target(kind: str, ref: FileRef) -> str:
    base = "/" if kind == "configs" else SECRETS_DIR + "/"
    if not ref.target:
        return base + ref.source
    if ref.target.startswith("/"):
        return ref.target
    return base + ref.target


def depends_on_label(service: Service) -> str:
    return ",".join(f"{d.service}:{d.condition}:{str(d.restart).lower()}" for d in service.depends_on)


def labels(project: Project, service: Service, number: int, image_id: str, config_hash: str,
           oneoff: bool = False, slug: str = "") -> dict[str, str]:
    out = dict(service.labels)
    out.update({
        m.LABEL_PROJECT: project.name,
        m.LABEL_SERVICE: service.name,
        m.LABEL_NUMBER: str(number),
        m.LABEL_ONEOFF: "True" if oneoff else "False",
        m.LABEL_CONFIG_HASH: config_hash,
        m.LABEL_WORKING_DIR: project.working_dir,
        m.LABEL_CONFIG_FILES: ",".join(project.config_files),
        m.LABEL_VERSION: COMPOSE_VERSION,
        m.LABEL_DEPENDS_ON: depends_on_label(service),
        m.LABEL_IMAGE: image_id,
    })
    if oneoff and slug:
        out["com.docker.compose.slug"] = slug
    return out


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1e9))


def healthcheck(h: m.Healthcheck | None) -> dict | None:
    if h is None:
        return None
    if h.disable:
        return {"Test": ["NONE"]}
    out: dict = {}
    if h.test:
        out["Test"] = list(h.test)
    for key, value in (("Interval", h.interval), ("Timeout", h.timeout), ("StartPeriod", h.start_period),
                       ("StartInterval", h.start_interval)):
        if value is not None:
            out[key] = _ns(value)
    if h.retries is not None:
        out["Retries"] = h.retries
    return out


def _expand_ports(spec: str) -> list[str]:
    """``"3000"``, ``"3000/udp"``, ``"3000-3002"`` → the port keys ``"3000/tcp"``, ..."""
    port, _, proto = spec.partition("/")
    proto = proto or "tcp"
    lo, _, hi = port.partition("-")
    if hi:
        return [f"{p}/{proto}" for p in range(int(lo), int(hi) + 1)]
    return [f"{int(lo)}/{proto}"]


def published_port(published: str, number: int) -> str:
    """The host port of replica ``number``: a range ``"8000-8002"`` gives 8000+number-1 (past its end: "")."""
    lo, sep, hi = published.partition("-")
    if not sep:
        return published
    port = int(lo) + max(number, 1) - 1
    return str(port) if port <= int(hi) else ""


def ports(service: Service, number: int) -> tuple[dict, dict]:
    """(ExposedPorts, PortBindings)."""
    exposed: dict[str, dict] = {}
    for e in service.expose:
        for key in _expand_ports(str(e)):
            exposed[key] = {}
    bindings: dict[str, list[dict]] = {}
    for p in service.ports:
        key = f"{p.target}/{p.protocol or 'tcp'}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": p.host_ip, "HostPort": published_port(p.published, number)})
    return exposed, bindings


def volume_engine_name(project: Project, key: str) -> str:
    for v in project.volumes:
        if v.key == key:
            return v.name
    return key


def _bind_string(v: MountSpec) -> str:
    opts = []
    if v.read_only:
        opts.append("ro")
    if v.consistency:
        opts.append(v.consistency)
    s = f"{v.source}:{v.target}"
    return s + (":" + ",".join(opts) if opts else "")


def mounts(project: Project, service: Service, inherit: Mapping[str, str] | None = None) -> tuple[list, list, dict]:
    """(Binds, Mounts, Tmpfs). ``inherit``: container path → the volume an older container of the service had
    there, so a recreated container keeps its anonymous volumes."""
    binds: list[str] = []
    out: list[dict] = []
    tmpfs: dict[str, str] = {}
    for t in service.tmpfs:
        path, _, opts = t.partition(":")
        tmpfs[path] = opts
    for v in service.volumes:
        if v.type == "volume":
            mnt: dict = {"Type": "volume", "Target": v.target, "ReadOnly": v.read_only}
            if v.source:
                mnt["Source"] = volume_engine_name(project, v.source)
            elif inherit and v.target in inherit:
                mnt["Source"] = inherit[v.target]
            if v.volume_nocopy:
                mnt["VolumeOptions"] = {"NoCopy": True}
            out.append(mnt)
        elif v.type == "bind":
            if v.bind_create_host_path and not v.bind_propagation:
                binds.append(_bind_string(v))
            else:
                mnt = {"Type": "bind", "Source": v.source, "Target": v.target, "ReadOnly": v.read_only}
                bopts: dict = {}
                if v.bind_propagation:
                    bopts["Propagation"] = v.bind_propagation
                if not v.bind_create_host_path:
                    bopts["CreateMountpoint"] = False
                if bopts:
                    mnt["BindOptions"] = bopts
                out.append(mnt)
        elif v.type == "tmpfs":
            mnt = {"Type": "tmpfs", "Target": v.target, "ReadOnly": v.read_only}
            topts: dict = {}
            if v.tmpfs_size:
                topts["SizeBytes"] = v.tmpfs_size
            if v.tmpfs_mode:
                topts["Mode"] = v.tmpfs_mode
            if topts:
                mnt["TmpfsOptions"] = topts
            out.append(mnt)
        else:
            out.append({"Type": v.type, "Source": v.source, "Target": v.target, "ReadOnly": v.read_only})
    taken = {mt["Target"] for mt in out} | {b.split(":")[1] for b in binds}
    for kind, refs, sources in (("secrets", service.secrets, project.secrets),
                                ("configs", service.configs, project.configs)):
        by_key = {s.key: s for s in sources}
        for ref in refs:
            target = file_target(kind, ref)
            if target in taken:
                continue
            src = by_key.get(ref.source)
            if src is None:
                raise ValueError(f"service {service.name!r} refers to undefined {kind[:-1]} {ref.source!r}")
            if src.external:
                raise ValueError(f"unsupported external {kind[:-1]} {src.name}")
            out.append({"Type": "bind", "Source": file_source_path(project, kind, src), "Target": target,
                        "ReadOnly": True})
            taken.add(target)
    return binds, out, tmpfs


def sorted_networks(service: Service) -> list[m.ServiceNetwork]:
    """The service's networks, highest priority first (then by name), as Compose orders them."""
    if not service.networks:
        return [m.ServiceNetwork("default")]
    return sorted(service.networks, key=lambda n: (-n.priority, n.name))


def network_engine_name(project: Project, key: str) -> str:
    for n in project.networks:
        if n.key == key:
            return n.name
    return f"{project.name}_{key}"


def endpoint_config(project: Project, service: Service, number: int, net: m.ServiceNetwork,
                    oneoff: bool = False) -> dict:
    """Aliases as Docker Compose gives them: the container name, the service name, the configured aliases
    (a one-off container gets none)."""
    aliases: list[str] = []
    if not oneoff:
        aliases = [container_name(project, service, number), service.name,
                   *(a for a in net.aliases if a != service.name)]
    ep: dict = {"Aliases": aliases}
    ipam = {k: v for k, v in (("IPv4Address", net.ipv4_address), ("IPv6Address", net.ipv6_address)) if v}
    if ipam:
        ep["IPAMConfig"] = ipam
    return ep


def network_mode(project: Project, service: Service, container_ids: Mapping[str, str] | None = None) -> str:
    mode = service.network_mode
    if mode.startswith("service:"):
        dep = mode[len("service:"):]
        cid = (container_ids or {}).get(dep)
        if not cid:
            raise ValueError(f"service {service.name!r} uses the network of service {dep!r}, "
                             "which has no container")
        return f"container:{cid}"
    if mode:
        return mode
    if not project.networks:
        return "none"
    return network_engine_name(project, sorted_networks(service)[0].name)


def restart_policy(restart: str) -> dict | None:
    if not restart:
        return None
    name, _, count = restart.partition(":")
    name = {"none": "no", "any": "always"}.get(name, name)
    out: dict = {"Name": name}
    if count:
        out["MaximumRetryCount"] = int(count)
    return out


def _extra_host(h: str) -> str:
    if "=" in h:
        host, _, ip = h.partition("=")
        return f"{host}:{ip}"
    return h


def env_list(service: Service) -> list[str]:
    """``K=V`` in order, the last value of a repeated key winning; None values left out."""
    env: dict[str, str | None] = {}
    for k, v in service.environment:
        env.pop(k, None)
        env[k] = v
    return [f"{k}={v}" for k, v in env.items() if v is not None]


def container_config(project: Project, service: Service, number: int, image_id_or_name: str, config_hash: str,
                     oneoff: bool = False, *, inherit_volumes: Mapping[str, str] | None = None,
                     container_ids: Mapping[str, str] | None = None, slug: str = "") -> dict:
    """The create body for replica ``number``. ``image_id_or_name`` goes to the image label (the executor
    passes the image ID); ``Image`` is the service's image name (or the ID when it has none).
    ``container_ids``: service → ID of its first container (for ``network_mode: service:NAME``)."""
    image = image_name(project, service) if (service.image or service.build) else image_id_or_name
    exposed, bindings = ports(service, number)
    binds, mnts, tmpfs = mounts(project, service, inherit_volumes)
    body: dict = {
        "Image": image,
        "Env": env_list(service),
        "Labels": labels(project, service, number, image_id_or_name, config_hash, oneoff, slug),
        "Tty": service.tty,
        "OpenStdin": service.stdin_open,
        "AttachStdout": True,
        "AttachStderr": True,
    }
    if service.command is not None:
        body["Cmd"] = list(service.command)
    if service.entrypoint is not None:
        body["Entrypoint"] = list(service.entrypoint)
    if exposed:
        body["ExposedPorts"] = exposed
    for key, value in (("Hostname", service.hostname), ("Domainname", service.domainname), ("User", service.user),
                       ("WorkingDir", service.working_dir), ("StopSignal", service.stop_signal)):
        if value:
            body[key] = value
    if service.stop_grace_period is not None:
        body["StopTimeout"] = int(service.stop_grace_period)
    hc = healthcheck(service.healthcheck)
    if hc is not None:
        body["Healthcheck"] = hc
    mode = network_mode(project, service, container_ids)
    host: dict = {"NetworkMode": mode, "Binds": binds, "Mounts": mnts}
    if bindings:
        host["PortBindings"] = bindings
    if tmpfs:
        host["Tmpfs"] = tmpfs
    rp = restart_policy(service.restart)
    if rp:
        host["RestartPolicy"] = rp
    lim, res = service.limits, service.reservations
    if lim.memory:
        host["Memory"] = int(lim.memory)
    if lim.cpus:
        host["NanoCpus"] = int(round(lim.cpus * 1e9))
    if lim.pids:
        host["PidsLimit"] = int(lim.pids)
    if res.memory:
        host["MemoryReservation"] = int(res.memory)
    if service.cap_add:
        host["CapAdd"] = list(service.cap_add)
    if service.cap_drop:
        host["CapDrop"] = list(service.cap_drop)
    if service.privileged:
        host["Privileged"] = True
    if service.read_only:
        host["ReadonlyRootfs"] = True
    if service.ulimits:
        host["Ulimits"] = [{"Name": n, "Soft": s, "Hard": h} for n, s, h in service.ulimits]
    if service.sysctls:
        host["Sysctls"] = dict(service.sysctls)
    if service.logging_driver or service.logging_options:
        host["LogConfig"] = {"Type": service.logging_driver, "Config": dict(service.logging_options)}
    if service.extra_hosts:
        host["ExtraHosts"] = [_extra_host(h) for h in service.extra_hosts]
    if service.dns:
        host["Dns"] = list(service.dns)
    if service.init is not None:
        host["Init"] = service.init
    body["HostConfig"] = host
    if not service.network_mode and project.networks:
        first = sorted_networks(service)[0]
        body["NetworkingConfig"] = {"EndpointsConfig": {
            network_engine_name(project, first.name): endpoint_config(project, service, number, first, oneoff)}}
    return body


def extra_networks(project: Project, service: Service, number: int, oneoff: bool = False) -> list[tuple[str, dict]]:
    """(engine network name, EndpointConfig) of the networks after the first, to connect after creation."""
    if service.network_mode or not project.networks:
        return []
    return [(network_engine_name(project, n.name), endpoint_config(project, service, number, n, oneoff))
            for n in sorted_networks(service)[1:]]
