"""Container commands: run, create, start, stop, kill, restart, rm, ps, logs, wait, attach, prune."""
from __future__ import annotations

import argparse
import json
import sys
import time


from berth.cli.common import Exit, Parser, Usage, parser
from berth.client.transport import Transport, path_quote
from berth.errors import BerthError, NotFound

PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED",
              "CreatedAt": "CREATED AT", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "Labels": "LABELS",
              "Size": "SIZE", "State": "STATE", "Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES"}


def _create_parser(name: str) -> argparse.ArgumentParser:
    # -h is --hostname, as in docker run; help is --help only.
    p = Parser(prog=f"berth {name}", usage=f"berth {name} [OPTIONS] IMAGE [COMMAND] [ARG...]", add_help=False)
    p.add_argument("--help", action="help")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--rm", action="store_true")
    p.add_argument("--platform", default="")
    p.add_argument("--pull", default="missing", help="pull the image before creating: always, missing or never")
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("--entrypoint")
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("-h", "--hostname")
    from berth.cli.commands.networks import add_run_flags
    add_run_flags(p, name)
    from berth.cli.commands import volumes
    volumes.add_run_flags(p)
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("--restart", default="no")
    p.add_argument("--log-opt", action="append", default=[])
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--add-host", action="append", default=[])
    p.add_argument("--stop-signal")
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("--runtime")
    p.add_argument("--health-cmd")
    p.add_argument("--health-interval")
    p.add_argument("--health-timeout")
    p.add_argument("--health-start-period")
    p.add_argument("--health-start-interval")
    p.add_argument("--health-retries", type=int)
    p.add_argument("--no-healthcheck", action="store_true")
    p.add_argument("--detach-keys")
    p.add_argument("--security-opt", action="append", default=[])
    p.add_argument("-m", "--memory")
    p.add_argument("--memory-swap")
    p.add_argument("--memory-reservation")
    p.add_argument("--cpus")
    p.add_argument("-c", "--cpu-shares")
    p.add_argument("--cpu-period")
    p.add_argument("--cpu-quota")
    p.add_argument("--cpuset-cpus")
    p.add_argument("--cpuset-mems")
    p.add_argument("--pids-limit")
    p.add_argument("--ulimit", action="append", default=[])
    p.add_argument("--shm-size")
    p.add_argument("--oom-kill-disable", action="store_true")
    p.add_argument("--oom-score-adj")
    p.add_argument("--device", action="append", default=[])
    p.add_argument("--sysctl", action="append", default=[])
    p.add_argument("--group-add", action="append", default=[])
    p.add_argument("--tmpfs", action="append", default=[])
    p.add_argument("--init", action="store_true")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)
    return p


def _env_file(path: str) -> list[str]:
    import os
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                out.append(line if "=" in line else f"{line}={os.environ.get(line, '')}")
    except OSError as e:
        raise Usage(f"open {path}: {e.strerror}") from None
    return out


def _env(values: list[str]) -> list[str]:
    import os
    return [v if "=" in v else f"{v}={os.environ[v]}" for v in values if "=" in v or v in os.environ]


def _body(a: argparse.Namespace) -> dict:
    # Imports stay inside the converters: ``berth run`` without these flags never pays for them.
    def _int(v: str) -> int:
        try:
            return int(v)
        except ValueError:
            raise ValueError(f'strconv.ParseInt: parsing "{v}": invalid syntax') from None

    def _size(v: str) -> int:
        from berth.types.units import parse_size
        return parse_size(v)

    def _swap(v: str) -> int:  # memory + swap; -1 is unlimited
        return -1 if v.strip() == "-1" else _size(v)

    def _nano_cpus(v: str) -> int:
        from fractions import Fraction
        try:
            nano = Fraction(v) * 10**9
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"failed to parse {v} as a rational number") from None
        if nano.denominator != 1:
            raise ValueError("value is too precise")
        return int(nano)

    def _ulimit(v: str) -> dict:
        """name=soft[:hard] (go-units ParseUlimit); -1 or "unlimited" for no limit."""
        name, eq, limits_ = v.partition("=")
        soft_s, _, hard_s = limits_.partition(":")
        try:
            if not eq or not name or not soft_s:
                raise ValueError
            soft, hard = (-1 if x == "unlimited" else int(x) for x in (soft_s, hard_s or soft_s))
        except ValueError:
            raise Usage(f'invalid argument "{v}" for "--ulimit" flag: invalid ulimit argument: {v}') from None
        if soft > hard >= 0 or (soft < 0 <= hard):
            raise Usage(f'invalid argument "{v}" for "--ulimit" flag: ulimit soft limit must be less than or '
                        f"equal to hard limit: {soft} > {hard}")
        return {"Name": name, "Soft": soft, "Hard": hard}

    def _device(v: str) -> dict:
        """host[:container][:permissions], as the docker CLI reads --device."""
        parts = v.split(":")
        if len(parts) > 3 or not parts[0]:
            raise Usage(f'invalid argument "{v}" for "--device" flag: invalid device specification: {v}')
        src, dst, perms = parts[0], "", "rwm"
        if len(parts) == 3:
            dst, perms = parts[1], parts[2]
        elif len(parts) == 2:
            if parts[1] and set(parts[1]) <= set("rwm"):
                perms = parts[1]
            else:
                dst = parts[1]
        if not set(perms) <= set("rwm") or not perms:
            raise Usage(f'invalid argument "{v}" for "--device" flag: bad mode specified: {perms}')
        for path in (src, dst or src):
            if not path.startswith("/"):
                raise Usage(f'invalid argument "{v}" for "--device" flag: bad format for path: {path}')
        return {"PathOnHost": src, "PathInContainer": dst or src, "CgroupPermissions": perms}

    def _security_opt(opt: str) -> str:
        """seccomp=FILE → seccomp=<the file's JSON>, as the docker CLI sends it."""
        key, sep, value = opt.partition("=")
        if not sep and key != "no-new-privileges":
            key, sep, value = opt.partition(":")
        if key != "seccomp" or value in ("unconfined", "builtin"):
            return opt
        try:
            with open(value, "rb") as f:
                text = f.read()
        except OSError as e:
            raise Usage(f'invalid argument "{opt}" for "--security-opt" flag: opening seccomp profile ({value}) '
                        f"failed: open {value}: {(e.strerror or str(e)).lower()}") from None
        try:
            compact = json.dumps(json.loads(text), separators=(",", ":"))
        except ValueError as e:
            raise Usage(f'invalid argument "{opt}" for "--security-opt" flag: compacting json for seccomp profile '
                        f"({value}) failed: {e}") from None
        return "seccomp=" + compact

    policy, _, retries = a.restart.partition(":")
    log_config = dict(o.split("=", 1) for o in a.log_opt if "=" in o)
    body: dict = {
        "Image": a.image, "Env": [e for f in a.env_file for e in _env_file(f)] + _env(a.env),
        "Labels": dict((lbl.split("=", 1) + [""])[:2] for lbl in a.label),
        "AttachStdin": a.interactive and not a.detach, "AttachStdout": not a.detach, "AttachStderr": not a.detach,
        "OpenStdin": a.interactive, "StdinOnce": a.interactive and not a.detach, "Tty": a.tty,
        "HostConfig": {"AutoRemove": a.rm,
                       "RestartPolicy": {"Name": policy, "MaximumRetryCount": int(retries or 0)},
                       "LogConfig": {"Type": "json-file", "Config": log_config}, "Privileged": a.privileged,
                       "ReadonlyRootfs": a.read_only, "CapAdd": a.cap_add, "CapDrop": a.cap_drop,
                       "ExtraHosts": a.add_host, "SecurityOpt": [_security_opt(o) for o in a.security_opt]},
    }
    host = body["HostConfig"]
    for key, flag, value, parse in (
            ("Memory", "--memory", a.memory, _size), ("MemorySwap", "--memory-swap", a.memory_swap, _swap),
            ("MemoryReservation", "--memory-reservation", a.memory_reservation, _size),
            ("NanoCpus", "--cpus", a.cpus, _nano_cpus), ("CpuShares", "--cpu-shares", a.cpu_shares, _int),
            ("CpuPeriod", "--cpu-period", a.cpu_period, _int), ("CpuQuota", "--cpu-quota", a.cpu_quota, _int),
            ("CpusetCpus", "--cpuset-cpus", a.cpuset_cpus, str), ("CpusetMems", "--cpuset-mems", a.cpuset_mems, str),
            ("PidsLimit", "--pids-limit", a.pids_limit, _int), ("ShmSize", "--shm-size", a.shm_size, _size),
            ("OomScoreAdj", "--oom-score-adj", a.oom_score_adj, _int)):
        if value is not None:
            try:
                host[key] = parse(value)
            except ValueError as e:
                raise Usage(f'invalid argument "{value}" for "{flag}" flag: {e}') from None
    if a.ulimit:
        host["Ulimits"] = [_ulimit(u) for u in a.ulimit]
    if a.device:
        host["Devices"] = [_device(d) for d in a.device]
    if a.sysctl:
        for kv in a.sysctl:
            if "=" not in kv:
                raise Usage(f'invalid argument "{kv}" for "--sysctl" flag: sysctl \'{kv}\' is not allowed')
        host["Sysctls"] = dict(kv.split("=", 1) for kv in a.sysctl)
    if a.group_add:
        host["GroupAdd"] = a.group_add
    if a.tmpfs:
        host["Tmpfs"] = {t.partition(":")[0]: t.partition(":")[2] for t in a.tmpfs}
    if a.oom_kill_disable:
        host["OomKillDisable"] = True
    if a.init:
        host["Init"] = True
    if a.command:
        body["Cmd"] = a.command
    if a.entrypoint is not None:
        body["Entrypoint"] = [a.entrypoint] if a.entrypoint else [""]
    for key, value in (("WorkingDir", a.workdir), ("User", a.user), ("Hostname", a.hostname),
                       ("StopSignal", a.stop_signal), ("StopTimeout", a.stop_timeout)):
        if value is not None:
            body[key] = value
    if a.runtime:
        body["HostConfig"]["Runtime"] = a.runtime
    health = _healthcheck(a)
    if health:
        body["Healthcheck"] = health
    from berth.cli.commands.networks import apply_run_flags
    apply_run_flags(body, a)
    from berth.cli.commands import volumes
    volumes.apply_run_flags(body, a)
    return body


def _healthcheck(a: argparse.Namespace) -> dict | None:
    """--health-* flags as Docker's HealthConfig (durations in nanoseconds)."""
    if a.no_healthcheck:
        if a.health_cmd:
            raise Usage("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    out: dict = {"Test": ["CMD-SHELL", a.health_cmd]} if a.health_cmd else {}
    for flag, key in (("health_interval", "Interval"), ("health_timeout", "Timeout"),
                      ("health_start_period", "StartPeriod"), ("health_start_interval", "StartInterval")):
        value = getattr(a, flag)
        if value:
            from berth.types.units import parse_go_duration
            try:
                out[key] = int(parse_go_duration(value) * 1e9)
            except ValueError as e:
                raise Usage(f"invalid argument {value!r} for --{flag.replace('_', '-')}: {e}") from None
            if out[key] < 0:
                raise Usage(f"--{flag.replace('_', '-')} cannot be negative")
    if a.health_retries is not None:
        if a.health_retries < 0:
            raise Usage("--health-retries cannot be negative")
        out["Retries"] = a.health_retries
    return out or None


def _create(api: Transport, a: argparse.Namespace) -> str:
    from berth.cli.commands.distribution import pull_image
    if a.pull not in ("missing", "always", "never"):
        raise Usage(f'invalid pull option: \'{a.pull}\': must be one of "always", "missing" or "never"')
    if a.pull == "always":
        pull_image(api, a.image, a.platform, out=sys.stderr)
    try:
        resp = api.request("POST", "/containers/create", {"name": a.name}, _body(a)).json()
    except NotFound as e:
        if not e.message.startswith("No such image") or a.pull != "missing":
            raise
        print(f"Unable to find image '{a.image}' locally", file=sys.stderr)
        pull_image(api, a.image, a.platform, out=sys.stderr)
        resp = api.request("POST", "/containers/create", {"name": a.name}, _body(a)).json()
    for w in resp.get("Warnings") or []:
        print(f"WARNING: {w}", file=sys.stderr)
    return resp["Id"]


def create(api: Transport, name: str, argv: list[str]) -> int:
    print(_create(api, _create_parser(name).parse_args(argv)))
    return 0


def run(api: Transport, name: str, argv: list[str]) -> int:
    a = _create_parser(name).parse_args(argv)
    cid = _create(api, a)
    if a.detach:
        api.request("POST", f"/containers/{cid}/start").close()
        print(cid)
        return 0
    return _attach_and_start(api, cid, a.tty, a.interactive, "removed" if a.rm else "next-exit", a.detach_keys)


def _attach_and_start(api: Transport, cid: str, tty: bool, stdin: bool, condition: str,
                      detach_keys: str | None = None) -> int:
    from berth.cli.attach import detach_sequence
    sock = api.hijack(f"/containers/{cid}/attach", {"stream": 1, "stdout": 1, "stderr": 1, "stdin": int(stdin)})
    waiter = api.send("POST", f"/containers/{cid}/wait", {"condition": condition})
    try:
        api.request("POST", f"/containers/{cid}/start").close()
    except BerthError as e:
        sock.close()
        print(f"Error response from daemon: {e.message}", file=sys.stderr)
        raise Exit(start_failure_code(e.message)) from None
    if _stream(api, sock, f"/containers/{cid}/resize", tty, stdin, detach_sequence(detach_keys)):
        return 0  # as docker run -it: detaching is a success, and says nothing
    result = api.finish(waiter).json() or {}
    if result.get("Error") and result["Error"].get("Message"):
        print(f"Error: {result['Error']['Message']}", file=sys.stderr)
    return int(result.get("StatusCode", 0))


def _stream(api: Transport, sock, resize_path: str, tty: bool, stdin: bool, detach: bytes | None = None) -> bool:
    """Terminal ↔ hijacked connection until the end; True when the user detached."""
    from berth.cli.attach import DEFAULT_DETACH, StdinPump, follow_resizes, pump_output, raw_terminal
    with raw_terminal(tty and stdin):
        if tty:
            follow_resizes(lambda rows, cols: api.request("POST", resize_path, {"h": rows, "w": cols}).close())
        keys = (DEFAULT_DETACH if detach is None else detach) if tty else b""  # binary stdin passes untouched
        pump = StdinPump(sock, keys) if stdin else None
        try:
            pump_output(sock, tty)
        except OSError:
            pass
    sock.close()
    return pump is not None and pump.detached


def start_failure_code(message: str) -> int:
    """The docker CLI's exit code for a container that could not start."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message:
        return 126
    return 125


def start(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] CONTAINER [CONTAINER...]")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    if a.attach:
        info = api.request("GET", f"/containers/{path_quote(a.containers[0])}/json").json()
        return _attach_and_start(api, info["Id"], info["Config"]["Tty"], a.interactive, "next-exit")
    failed = _each(api, a.containers, lambda c: api.request("POST", f"/containers/{path_quote(c)}/start").close())
    if failed:  # docker CLI 28 sums up after the daemon's errors
        print(f"Error: failed to start containers: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _each(api: Transport, refs: list[str], fn) -> list[str]:
    """Apply ``fn`` to each reference, printing it or the daemon's error; the references that failed."""
    from berth.errors import BerthError
    failed = []
    for ref in refs:
        try:
            fn(ref)
            print(ref)
        except BerthError as e:
            print(f"Error response from daemon: {e.message}", file=sys.stderr)
            failed.append(ref)
    return failed


def stop(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] CONTAINER [CONTAINER...]")
    p.add_argument("-t", "--time", "--timeout", type=int)
    p.add_argument("-s", "--signal")
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    verb = "restart" if name.endswith("restart") else "stop"
    return min(1, len(_each(api, a.containers, lambda c: api.request(
        "POST", f"/containers/{path_quote(c)}/{verb}", {"t": a.time, "signal": a.signal}).close())))


restart = stop


def kill(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] CONTAINER [CONTAINER...]")
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    return min(1, len(_each(api, a.containers, lambda c: api.request(
        "POST", f"/containers/{path_quote(c)}/kill", {"signal": a.signal}).close())))


def rm(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "[OPTIONS] CONTAINER [CONTAINER...]")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    return min(1, len(_each(api, a.containers, lambda c: api.request(
        "DELETE", f"/containers/{path_quote(c)}", {"force": int(a.force), "v": int(a.volumes)}).close())))


def wait(api: Transport, name: str, argv: list[str]) -> int:
    p = parser(name, "CONTAINER [CONTAINER...]")
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    for c in a.containers:
        print(api.request("POST", f"/containers/{path_quote(c)}/wait").json()["StatusCode"])
    return 0


def attach(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.attach import detach_sequence
    p = parser(name, "[OPTIONS] CONTAINER")
    p.add_argument("--no-stdin", action="store_true")
    p.add_argument("--detach-keys")
    p.add_argument("container")
    a = p.parse_args(argv)
    info = api.request("GET", f"/containers/{path_quote(a.container)}/json").json()
    if not info["State"]["Running"]:
        print("You cannot attach to a stopped container, start it first", file=sys.stderr)
        return 1
    stdin = info["Config"]["OpenStdin"] and not a.no_stdin
    q = {"stream": 1, "stdout": 1, "stderr": 1, "stdin": int(stdin)}
    if a.detach_keys:
        q["detachKeys"] = a.detach_keys
    sock = api.hijack(f"/containers/{info['Id']}/attach", q)
    if _stream(api, sock, f"/containers/{info['Id']}/resize", info["Config"]["Tty"], stdin,
               detach_sequence(a.detach_keys)):
        print("read escape sequence", file=sys.stderr)
        return 1  # as docker attach
    return api.request("POST", f"/containers/{info['Id']}/wait").json()["StatusCode"]


def exec_(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.attach import detach_sequence
    p = parser(name, "[OPTIONS] CONTAINER COMMAND [ARG...]")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--detach-keys")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    if not a.command:
        raise Usage(f"berth {name}: requires at least 2 arguments")
    body = {"AttachStdin": a.interactive and not a.detach, "AttachStdout": not a.detach,
            "AttachStderr": not a.detach, "Tty": a.tty, "Cmd": a.command,
            "Env": [e for f in a.env_file for e in _env_file(f)] + _env(a.env), "Privileged": a.privileged}
    for key, value in (("User", a.user), ("WorkingDir", a.workdir), ("DetachKeys", a.detach_keys)):
        if value:
            body[key] = value
    exec_id = api.request("POST", f"/containers/{path_quote(a.container)}/exec", None, body).json()["Id"]
    if a.detach:
        api.request("POST", f"/exec/{exec_id}/start", None, {"Detach": True, "Tty": a.tty}).close()
        return 0
    sock = api.hijack(f"/exec/{exec_id}/start", {}, {"Detach": False, "Tty": a.tty})
    if _stream(api, sock, f"/exec/{exec_id}/resize", a.tty, a.interactive, detach_sequence(a.detach_keys)):
        print("read escape sequence", file=sys.stderr)
        return 1  # as docker exec
    code = api.request("GET", f"/exec/{exec_id}/json").json().get("ExitCode")
    return 0 if code is None else int(code)


def _filters(values: list[str]) -> str | None:
    if not values:
        return None
    out: dict[str, dict[str, bool]] = {}
    for v in values:
        if "=" not in v:
            raise Usage(f'invalid argument "{v}" for "-f, --filter" flag: bad format of filter (expected name=value)')
        k, val = v.split("=", 1)
        out.setdefault(k, {})[val] = True
    return json.dumps(out)


def ps(api: Transport, name: str, argv: list[str]) -> int:
    from berth.types.ports import format_ports
    from berth.types.units import human_duration, human_size
    p = parser(name, "[OPTIONS]")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-n", "--last", type=int, default=-1)
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("-s", "--size", action="store_true")
    a = p.parse_args(argv)
    limit = 1 if a.latest else a.last
    items = api.request("GET", "/containers/json", {"all": int(a.all) or None, "limit": limit if limit > 0 else None,
                                                    "filters": _filters(a.filter), "size": int(a.size) or None}).json()
    if a.quiet:
        for c in items:
            print(c["Id"] if a.no_trunc else c["Id"][:12])
        return 0
    now = time.time()
    rows = []
    for c in items:
        cmd = c["Command"]
        if not a.no_trunc and len(cmd) > 20:
            cmd = cmd[:19] + "…"
        rows.append({
            "ID": c["Id"] if a.no_trunc else c["Id"][:12], "Image": c["Image"], "Command": json.dumps(cmd, ensure_ascii=False),
            "RunningFor": human_duration(now - c["Created"]) + " ago",
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(c["Created"])),
            "Status": c["Status"], "Ports": format_ports(c.get("Ports") or []), "Names": ",".join(n.lstrip("/") for n in c["Names"]),
            "Labels": ",".join(f"{k}={v}" for k, v in (c.get("Labels") or {}).items()), "State": c["State"],
            "Size": f"{human_size(c.get('SizeRw', 0), 3)} (virtual {human_size(c.get('SizeRootFs', 0), 3)})" if a.size else "",
            "Mounts": _mounts_column(c.get("Mounts") or [], not a.no_trunc),
            "LocalVolumes": str(sum(m.get("Driver") == "local" for m in c.get("Mounts") or [])),
            "Networks": ",".join((c.get("NetworkSettings") or {}).get("Networks") or {}),
        })
    table = PS_TABLE + ("\t{{.Size}}" if a.size else "")
    from berth.cli import output
    text = output.format_rows(rows, a.format, table, PS_HEADERS)
    if rows or text:
        print(text)
    return 0


def _mounts_column(mounts: list[dict], trunc: bool) -> str:
    """ps's MOUNTS: each mount's volume name, or its source; 15 characters at most unless --no-trunc."""
    names = [m.get("Name") or m.get("Source") or "" for m in mounts]
    return ",".join(n[:14] + "…" if trunc and len(n) > 15 else n for n in names)


def logs(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.attach import pump_output
    from berth.types.units import parse_timestamp
    p = parser(name, "[OPTIONS] CONTAINER")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("container")
    a = p.parse_args(argv)
    now = time.time()
    info = api.request("GET", f"/containers/{path_quote(a.container)}/json").json()
    q = {"stdout": 1, "stderr": 1, "follow": int(a.follow), "timestamps": int(a.timestamps), "tail": a.tail}
    try:
        if a.since:
            q["since"] = f"{parse_timestamp(a.since, now):.9f}"
        if a.until:
            q["until"] = f"{parse_timestamp(a.until, now):.9f}"
    except ValueError as e:
        raise Usage(str(e)) from None
    resp = api.request("GET", f"/containers/{info['Id']}/logs", q)
    pump_output(resp.raw, info["Config"]["Tty"])
    return 0


def inspect_container(api: Transport, name: str, argv: list[str]) -> int:
    from berth.cli.commands.inspect import inspect_kind
    return inspect_kind(api, name, argv, "container")


def prune(api: Transport, name: str, argv: list[str]) -> int:
    from berth.types.units import human_size
    from berth.cli.common import confirmed, prune_parser
    a = prune_parser(name).parse_args(argv)
    if not (a.force or confirmed("all stopped containers")):
        return 0
    res = api.request("POST", "/containers/prune", {"filters": _filters(a.filter)}).json()
    if res.get("ContainersDeleted"):
        print("Deleted Containers:")
        for cid in res["ContainersDeleted"]:
            print(cid)
        print()
    print(f"Total reclaimed space: {human_size(res.get('SpaceReclaimed', 0))}")
    return 0


