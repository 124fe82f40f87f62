"""Docker's container JSON: the create body in, inspect and list shapes out."""
from __future__ import annotations

import shlex
import time

from berth.errors import InvalidArgument
from berth.runtime import limits
from berth.runtime.logs import parse_time
from berth.types.container import Container, ContainerSpec, LogConfig, RestartPolicy
from berth.types.units import status_text
from berth.api.serialize import networks as nets
from berth.api.serialize import volumes as vser

_TYPES = {
    "Cmd": (list, str), "Entrypoint": (list, str), "Env": list, "WorkingDir": str, "User": str, "Labels": dict,
    "Hostname": str, "Domainname": str, "Tty": bool, "OpenStdin": bool, "StdinOnce": bool, "AttachStdin": bool,
    "AttachStdout": bool, "AttachStderr": bool, "StopSignal": str, "StopTimeout": int, "ExposedPorts": dict,
    "Volumes": dict, "Image": str, "Healthcheck": dict,
}
_HOST_TYPES = {"AutoRemove": bool, "NetworkMode": str, "RestartPolicy": dict, "LogConfig": dict, "Privileged": bool,
               "ReadonlyRootfs": bool, "CapAdd": list, "CapDrop": list, "ExtraHosts": list, "Init": bool, "SecurityOpt": list,
               "Runtime": str, "Memory": int, "MemorySwap": int, "MemoryReservation": int, "NanoCpus": int,
               "CpuShares": int, "CpuPeriod": int, "CpuQuota": int, "CpusetCpus": str, "CpusetMems": str,
               "PidsLimit": int, "Ulimits": list, "ShmSize": int, "OomKillDisable": bool, "OomScoreAdj": int,
               "Devices": list, "Sysctls": dict, "GroupAdd": list, "Tmpfs": dict, "PortBindings": dict,
               "PublishAllPorts": bool, "Dns": list, "DnsSearch": list, "DnsOptions": list, "Binds": list,
               "Mounts": list, "VolumesFrom": list}
RESTART_NAMES = ("", "no", "always", "unless-stopped", "on-failure")


def _check(body: dict, types: dict, prefix: str) -> None:
    for key, want in types.items():
        v = body.get(key)
        if v is None:
            continue
        if want is int and isinstance(v, bool) or not isinstance(v, want):
            names = want.__name__ if isinstance(want, type) else " or ".join(t.__name__ for t in want)
            raise InvalidArgument(f"invalid type for {prefix}{key}: expected {_json_type(names)}, got {type(v).__name__}")


def _json_type(names: str) -> str:
    return names.replace("list", "array").replace("dict", "object").replace("str", "string").replace("bool", "boolean")


def _argv(v) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return shlex.split(v) if v else [""]
    if not all(isinstance(x, str) for x in v):
        raise InvalidArgument("invalid type for Cmd/Entrypoint: expected an array of strings")
    return list(v)


def spec_from_create(body: dict) -> ContainerSpec:
    """Parse ``POST /containers/create``; 400 naming the field on wrong types."""
    _check(body, _TYPES, "")
    host = body.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise InvalidArgument("invalid type for HostConfig: expected object")
    _check(host, _HOST_TYPES, "HostConfig.")
    image = body.get("Image")
    if not image:
        raise InvalidArgument("Config.Image: an image name is required")
    for e in body.get("Env") or []:
        if not isinstance(e, str):
            raise InvalidArgument("invalid type for Env: expected an array of strings")
    rp = host.get("RestartPolicy") or {}
    if rp.get("Name", "") not in RESTART_NAMES:
        raise InvalidArgument(f"invalid restart policy '{rp.get('Name')}'")
    retries = rp.get("MaximumRetryCount", 0) or 0
    if rp.get("Name") != "on-failure" and retries:
        raise InvalidArgument("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if host.get("AutoRemove") and rp.get("Name") not in ("", "no", None):
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")
    lc = host.get("LogConfig") or {}
    if lc.get("Type") not in (None, "", "json-file"):
        raise InvalidArgument(f"logging driver {lc.get('Type')!r} is not supported: berth stores json-file logs")
    labels = body.get("Labels") or {}
    if not all(isinstance(v, str) for v in labels.values()):
        raise InvalidArgument("invalid type for Labels: values must be strings")
    security_opt = list(host.get("SecurityOpt") or [])
    no_new_privileges, seccomp_profile = limits.security_options(security_opt)
    spec = ContainerSpec(
        image=image, cmd=_argv(body.get("Cmd")), entrypoint=_argv(body.get("Entrypoint")),
        env=list(body.get("Env") or []), working_dir=body.get("WorkingDir") or "", user=body.get("User") or "",
        labels=dict(labels), hostname=body.get("Hostname") or "", domainname=body.get("Domainname") or "",
        tty=bool(body.get("Tty")), open_stdin=bool(body.get("OpenStdin")), stdin_once=bool(body.get("StdinOnce")),
        attach_stdin=bool(body.get("AttachStdin")), attach_stdout=bool(body.get("AttachStdout")),
        attach_stderr=bool(body.get("AttachStderr")), stop_signal=body.get("StopSignal") or "",
        stop_timeout=body.get("StopTimeout"), healthcheck=_health(body.get("Healthcheck")),
        console_size=console_size(host.get("ConsoleSize")), exposed_ports=dict(body.get("ExposedPorts") or {}),
        volumes=dict(body.get("Volumes") or {}), auto_remove=bool(host.get("AutoRemove")),
        network_mode=host.get("NetworkMode") or "bridge", port_bindings=_bindings(host.get("PortBindings")),
        publish_all_ports=bool(host.get("PublishAllPorts")), dns=list(host.get("Dns") or []),
        dns_search=list(host.get("DnsSearch") or []), dns_options=list(host.get("DnsOptions") or []),
        binds=_strs(host.get("Binds"), "HostConfig.Binds"), mount_requests=_objs(host.get("Mounts"), "HostConfig.Mounts"),
        volumes_from=_strs(host.get("VolumesFrom"), "HostConfig.VolumesFrom"),
        restart_policy=RestartPolicy(rp.get("Name") or "no", retries),
        log_config=LogConfig("json-file", dict(lc.get("Config") or {})),
        privileged=bool(host.get("Privileged")), readonly_rootfs=bool(host.get("ReadonlyRootfs")),
        cap_add=list(host.get("CapAdd") or []), cap_drop=list(host.get("CapDrop") or []),
        extra_hosts=list(host.get("ExtraHosts") or []), init=bool(host.get("Init")),
        no_new_privileges=no_new_privileges, security_opt=security_opt, seccomp_profile=seccomp_profile,
        runtime=host.get("Runtime") or "runc",
        memory=host.get("Memory") or 0, memory_swap=host.get("MemorySwap") or 0,
        memory_reservation=host.get("MemoryReservation") or 0, nano_cpus=host.get("NanoCpus") or 0,
        cpu_shares=host.get("CpuShares") or 0, cpu_period=host.get("CpuPeriod") or 0,
        cpu_quota=host.get("CpuQuota") or 0, cpuset_cpus=host.get("CpusetCpus") or "",
        cpuset_mems=host.get("CpusetMems") or "", pids_limit=host.get("PidsLimit"),
        ulimits=list(host.get("Ulimits") or []), shm_size=host.get("ShmSize") or 0,
        oom_kill_disable=bool(host.get("OomKillDisable")), oom_score_adj=host.get("OomScoreAdj") or 0,
        devices=list(host.get("Devices") or []), sysctls=dict(host.get("Sysctls") or {}),
        group_add=list(host.get("GroupAdd") or []), tmpfs=dict(host.get("Tmpfs") or {}),
    )
    return limits.check(spec)


def _bindings(v: dict | None) -> dict[str, list[dict]]:
    out = {}
    for key, entries in (v or {}).items():
        if entries is not None and not (isinstance(entries, list) and all(isinstance(e, dict) for e in entries)):
            raise InvalidArgument(f"invalid type for HostConfig.PortBindings[{key}]: expected an array of objects")
        out[key] = [{"HostIp": str(e.get("HostIp") or ""), "HostPort": str(e.get("HostPort") or "")}
                    for e in entries or []]
    return out


def _strs(v, what: str) -> list[str]:
    if v and not all(isinstance(x, str) for x in v):
        raise InvalidArgument(f"invalid type for {what}: expected an array of strings")
    return list(v or [])


def _objs(v, what: str) -> list[dict]:
    if v and not all(isinstance(x, dict) for x in v):
        raise InvalidArgument(f"invalid type for {what}: expected an array of objects")
    return [dict(x) for x in v or []]


def _omitempty(d: dict) -> dict:
    """A HostConfig.Mounts item as Go's mount.Mount encodes it back: empty fields left out."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _omitempty(v)
        if v not in ("", False, None, {}, [], 0):
            out[k] = v
    return out


def console_size(v) -> list[int]:
    """``ConsoleSize: [height, width]``; [0, 0] or absent means none."""
    if v is None:
        return []
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and x >= 0 for x in v)):
        raise InvalidArgument("invalid ConsoleSize: expected [height, width]")
    return list(v) if all(v) else []


def _health(h: dict | None) -> dict | None:
    """Validate Config.Healthcheck as Docker does; durations are nanoseconds."""
    if not h:
        return None
    test = h.get("Test")
    if test is not None and (not isinstance(test, list) or not all(isinstance(x, str) for x in test)):
        raise InvalidArgument("invalid type for Healthcheck.Test: expected an array of strings")
    if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise InvalidArgument(f"invalid Healthcheck.Test: unknown type {test[0]!r}")
    out = {"Test": test} if test else {}
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        v = h.get(key) or 0
        if not isinstance(v, int) or isinstance(v, bool):
            raise InvalidArgument(f"invalid type for Healthcheck.{key}: expected integer")
        if v and v < 1_000_000:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
        if v:
            out[key] = v
    retries = h.get("Retries") or 0
    if not isinstance(retries, int) or retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    if retries:
        out["Retries"] = retries
    return out


def _state(c: Container, health: dict | None = None) -> dict:
    s = c.state
    return {"Status": s.status, "Running": s.status in ("running", "paused", "restarting"),
            "Paused": s.status == "paused", "Restarting": s.status == "restarting", "OOMKilled": s.oom_killed,
            "Dead": s.status == "dead", "Pid": s.pid, "ExitCode": s.exit_code, "Error": s.error,
            "StartedAt": s.started_at, "FinishedAt": s.finished_at, **({"Health": health} if health else {})}


def _network_mode(c: Container) -> str:
    return c.spec.network_mode


def host_config(c: Container) -> dict:
    s = c.spec
    security_opt = s.security_opt or (["no-new-privileges"] if s.no_new_privileges else [])
    out = {
        "Binds": s.binds or None, "ContainerIDFile": "", "LogConfig": {"Type": s.log_config.type, "Config": s.log_config.config},
        "NetworkMode": _network_mode(c), "PortBindings": s.port_bindings,
        "RestartPolicy": {"Name": s.restart_policy.name, "MaximumRetryCount": s.restart_policy.maximum_retry_count},
        "AutoRemove": s.auto_remove, "VolumeDriver": "", "VolumesFrom": s.volumes_from or None, "CapAdd": s.cap_add or None,
        "CapDrop": s.cap_drop or None, "CgroupnsMode": "host", "Dns": s.dns, "DnsOptions": s.dns_options, "DnsSearch": s.dns_search,
        "ExtraHosts": s.extra_hosts or None, "GroupAdd": s.group_add or None, "IpcMode": "private", "Cgroup": "",
        "Links": None, "OomScoreAdj": s.oom_score_adj, "PidMode": "", "Privileged": s.privileged,
        "PublishAllPorts": s.publish_all_ports, "ReadonlyRootfs": s.readonly_rootfs, "SecurityOpt": security_opt or None,
        "UTSMode": "", "UsernsMode": "", "ShmSize": s.shm_size or limits.DEFAULT_SHM_SIZE,
        "Runtime": s.runtime, "Isolation": "", "CpuShares": s.cpu_shares, "Memory": s.memory,
        "NanoCpus": s.nano_cpus, "CgroupParent": "", "BlkioWeight": 0, "CpuPeriod": s.cpu_period,
        "CpuQuota": s.cpu_quota, "CpusetCpus": s.cpuset_cpus, "CpusetMems": s.cpuset_mems,
        "Devices": [dict(d) for d in s.devices], "MemoryReservation": s.memory_reservation,
        "MemorySwap": s.memory_swap, "OomKillDisable": s.oom_kill_disable, "PidsLimit": s.pids_limit,
        "Ulimits": [dict(u) for u in s.ulimits] or None, "Init": s.init or None,
        "MaskedPaths": None, "ReadonlyPaths": None, "ConsoleSize": s.console_size or [0, 0],
    }
    if s.mount_requests:
        out["Mounts"] = [_omitempty(m) for m in s.mount_requests]
    if s.sysctls:
        out["Sysctls"] = dict(s.sysctls)
    if s.tmpfs:
        out["Tmpfs"] = dict(s.tmpfs)
    return out


def config(c: Container) -> dict:
    s = c.spec
    out = {
        "Hostname": s.hostname, "Domainname": s.domainname, "User": s.user, "AttachStdin": s.attach_stdin,
        "AttachStdout": s.attach_stdout, "AttachStderr": s.attach_stderr, "Tty": s.tty, "OpenStdin": s.open_stdin,
        "StdinOnce": s.stdin_once, "Env": s.env, "Cmd": s.cmd, "Image": s.image, "Volumes": s.volumes or None,
        "WorkingDir": s.working_dir, "Entrypoint": s.entrypoint, "OnBuild": None, "Labels": s.labels,
    }
    if s.exposed_ports:
        out["ExposedPorts"] = s.exposed_ports
    if s.stop_signal:
        out["StopSignal"] = s.stop_signal
    if s.healthcheck:
        out["Healthcheck"] = s.healthcheck
    if s.stop_timeout is not None:
        out["StopTimeout"] = s.stop_timeout
    return out


def inspect(c: Container, paths: dict[str, str], size: tuple[int, int] | None = None,
            health: dict | None = None, attached: list | None = None) -> dict:
    argv = c.argv
    out = {
        "Id": c.id, "Created": c.created, "Path": argv[0] if argv else "", "Args": argv[1:],
        "State": _state(c, health), "Image": c.image_id, "ResolvConfPath": paths["resolv"], "HostnamePath": paths["hostname"],
        "HostsPath": paths["hosts"], "LogPath": paths["log"], "Name": "/" + c.name,
        "RestartCount": c.state.restart_count, "Driver": "overlay", "Platform": "linux", "MountLabel": "",
        "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None, "HostConfig": host_config(c),
        "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": paths["rootfs"], "UpperDir": paths["upper"],
                                                    "WorkDir": paths["work"]}},
        "Mounts": vser.mounts(c.spec.mount_points, _volume_path(paths)), "Config": config(c),
        "NetworkSettings": nets.network_settings(c, attached or [], paths.get("sandbox", "")),
    }
    if size is not None:
        out["SizeRw"], out["SizeRootFs"] = size
    return out


def _volume_path(paths: dict):
    root = paths.get("volumes", "")
    return lambda name: f"{root}/{name}/_data"


def list_item(c: Container, image_name: str, size: tuple[int, int] | None, now: float | None = None,
              health: dict | None = None, attached: list | None = None, volumes_root: str = "") -> dict:
    argv = c.argv
    command = " ".join(shlex.quote(a) if (" " in a or not a) else a for a in argv)
    out = {
        "Id": c.id, "Names": ["/" + c.name], "Image": image_name, "ImageID": c.image_id, "Command": command,
        "Created": int(parse_time(c.created)),
        "Ports": nets.port_list(c, [ep for _, ep in attached or []]), "Labels": c.spec.labels, "State": c.state.status,
        "Status": status_text({"Status": c.state.status, "StartedAt": c.state.started_at,
                               "FinishedAt": c.state.finished_at, "ExitCode": c.state.exit_code,
                               "Health": health}, now or time.time()),
        "HostConfig": {"NetworkMode": _network_mode(c)},
        "NetworkSettings": {"Networks": nets.network_settings(c, attached or [], "")["Networks"]},
        "Mounts": vser.mounts(c.spec.mount_points, _volume_path({"volumes": volumes_root})),
    }
    if size is not None:
        out["SizeRw"], out["SizeRootFs"] = size
    return out


_UPDATABLE = {"Memory": ("memory", int), "MemorySwap": ("memory_swap", int),
              "MemoryReservation": ("memory_reservation", int), "NanoCpus": ("nano_cpus", int),
              "CpuShares": ("cpu_shares", int), "CpuPeriod": ("cpu_period", int), "CpuQuota": ("cpu_quota", int),
              "CpusetCpus": ("cpuset_cpus", str), "CpusetMems": ("cpuset_mems", str), "PidsLimit": ("pids_limit", int)}


def update_changes(body: dict) -> dict:
    """``POST /containers/{id}/update`` → ContainerSpec fields to replace (absent or zero: unchanged)."""
    changes: dict = {}
    for key, (attr, kind) in _UPDATABLE.items():
        v = body.get(key)
        if v in (None, 0, ""):
            continue
        if not isinstance(v, kind) or isinstance(v, bool):
            raise InvalidArgument(f"invalid type for {key}: expected {_json_type(kind.__name__)}")
        changes[attr] = v
    rp = body.get("RestartPolicy")
    if rp:
        if not isinstance(rp, dict) or rp.get("Name", "") not in RESTART_NAMES:
            raise InvalidArgument(f"invalid restart policy '{rp.get('Name') if isinstance(rp, dict) else rp}'")
        retries = rp.get("MaximumRetryCount") or 0
        if rp.get("Name") != "on-failure" and retries:
            raise InvalidArgument("invalid restart policy: maximum retry count can only be used with 'on-failure'")
        changes["restart_policy"] = RestartPolicy(rp.get("Name") or "no", retries)
    return changes
