"""The ``berth compose`` subcommands: parse, load the project, call the executor, print as Compose v2 does."""
from __future__ import annotations

import argparse
import json
import sys

from berth.cli.common import Exit, Usage, parser
from berth.compose import model as m

COMMANDS: dict = {}


def command(*names: str):
    def add(fn):
        for n in names:
            COMMANDS[n] = fn
        return fn
    return add


def _scale(values: list[str]) -> tuple[tuple[str, int], ...]:
    out = []
    for v in values:
        svc, sep, n = v.partition("=")
        if not sep or not n.isdigit():
            raise Usage(f"invalid --scale value {v!r}: expected SERVICE=NUMBER")
        out.append((svc, int(n)))
    return tuple(out)


def _table(head, rows) -> None:
    """Columns three spaces apart, as Compose prints ``top``, ``images`` and ``ls``."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]
    for r in [head, *rows]:
        print("   ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip())


def _timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--timeout", type=float, default=None)


@command("up")
def up(ctx, name: str, argv: list[str]) -> int:
    from berth.compose.executor import UpOptions
    p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
    p.add_argument("-d", "--detach", action="store_true")
    for flag in ("--build", "--no-build", "--force-recreate", "--no-recreate", "--no-deps", "--remove-orphans",
                 "--wait", "--no-start", "--abort-on-container-exit", "--no-log-prefix", "--no-color",
                 "--always-recreate-deps", "--quiet-pull", "--renew-anon-volumes", "-V"):
        p.add_argument(flag, action="store_true")
    p.add_argument("--pull", default="", choices=["", "always", "missing", "never", "build"])
    p.add_argument("--scale", action="append", default=[])
    p.add_argument("--wait-timeout", type=float, default=None)
    p.add_argument("--exit-code-from", default="")
    _timeout(p)
    p.add_argument("services", nargs="*")
    a = p.parse_args(argv)
    if a.detach and a.abort_on_container_exit:
        raise Usage("--abort-on-container-exit and --detach are incompatible")
    ex = ctx.executor(a.services)
    ex.up(UpOptions(services=tuple(a.services), no_deps=a.no_deps, no_start=a.no_start, no_recreate=a.no_recreate,
                    force_recreate=a.force_recreate, remove_orphans=a.remove_orphans, scale=_scale(a.scale),
                    build=a.build, no_build=a.no_build, pull=a.pull, wait=a.wait, wait_timeout=a.wait_timeout,
                    timeout=a.timeout))
    if a.detach or a.no_start or a.wait:
        return 0
    from berth.cli.compose_logs import follow_until_exit
    return follow_until_exit(ex, a.services, not a.no_log_prefix, a.abort_on_container_exit or bool(a.exit_code_from),
                             a.exit_code_from, a.timeout)


@command("down")
def down(ctx, name: str, argv: list[str]) -> int:
    p = parser(f"berth {name}", "[OPTIONS]")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("--rmi", default="", choices=["", "local", "all"])
    p.add_argument("--remove-orphans", action="store_true")
    _timeout(p)
    a = p.parse_args(argv)
    ctx.executor().down(a.remove_orphans, a.volumes, a.rmi, a.timeout)
    return 0


def _rows(ex, services: list[str], all_states: bool, oneoff: bool | None = False) -> list[dict]:
    return [c for c in ex.containers(services, oneoff=oneoff) if all_states or c.get("State") == "running"]


def _ports(c: dict) -> str:
    parts = []
    for pt in sorted(c.get("Ports") or [], key=lambda x: (x.get("PrivatePort", 0), x.get("IP", ""))):
        if pt.get("PublicPort"):
            parts.append(f"{pt.get('IP') or '0.0.0.0'}:{pt['PublicPort']}->{pt['PrivatePort']}/{pt['Type']}")
        else:
            parts.append(f"{pt['PrivatePort']}/{pt['Type']}")
    return ", ".join(parts)


def _ps_row(c: dict, project: str) -> dict:
    import re
    import time

    from berth.types.units import human_duration
    status = c.get("Status", "")
    health = re.search(r"\((healthy|unhealthy|health: starting)\)", status)
    code = re.match(r"Exited \((-?\d+)\)", status)
    labels = c.get("Labels") or {}
    created = c.get("Created", 0)
    return {"Command": json.dumps(c.get("Command", "")),
            "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(created)),
            "ExitCode": int(code.group(1)) if code else 0,
            "Health": (health.group(1).replace("health: ", "") if health else ""), "ID": c["Id"],
            "Image": c.get("Image", ""), "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "Name": c["Names"][0].lstrip("/"), "Names": c["Names"][0].lstrip("/"),
            "Networks": ",".join(sorted(((c.get("NetworkSettings") or {}).get("Networks") or {}).keys())),
            "Ports": _ports(c), "Project": project, "Service": labels.get(m.LABEL_SERVICE, ""),
            "State": c.get("State", ""), "Status": status,
            "RunningFor": human_duration(max(0.0, time.time() - created)) + " ago",
            "Publishers": [{"URL": p.get("IP", ""), "TargetPort": p.get("PrivatePort"),
                            "PublishedPort": p.get("PublicPort", 0), "Protocol": p.get("Type")}
                           for p in c.get("Ports") or []]}


@command("ps")
def ps(ctx, name: str, argv: list[str]) -> int:
    from berth.cli import output
    p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--services", action="store_true")
    p.add_argument("--format", default="table")
    p.add_argument("--status", action="append", default=[])
    p.add_argument("services_", nargs="*", metavar="SERVICE")
    a = p.parse_args(argv)
    ex = ctx.executor()
    items = _rows(ex, a.services_, a.all or bool(a.status))
    if a.status:
        items = [c for c in items if c.get("State") in a.status]
    if a.services:
        for s in dict.fromkeys((c.get("Labels") or {}).get(m.LABEL_SERVICE, "") for c in items):
            print(s)
        return 0
    if a.quiet:
        for c in items:
            print(c["Id"])
        return 0
    rows = [_ps_row(c, ctx.project().name) for c in items]
    if a.format == "json":  # one object per line, as Compose 2.21+ and docker ps
        for r in rows:
            print(json.dumps(r))
        return 0
    table = a.format if a.format != "table" else \
        "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}"
    text = output.format_rows(rows, table, table, {"Name": "NAME", "Image": "IMAGE", "Command": "COMMAND",
                                                   "Service": "SERVICE", "Status": "STATUS", "Ports": "PORTS",
                                                   "State": "STATE", "ID": "CONTAINER ID",
                                                   "RunningFor": "CREATED"})
    if text:
        print(text)
    return 0


@command("logs")
def logs(ctx, name: str, argv: list[str]) -> int:
    from berth.cli.compose_logs import show_logs
    p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--no-color", action="store_true")
    p.add_argument("--no-log-prefix", action="store_true")
    p.add_argument("services", nargs="*")
    a = p.parse_args(argv)
    ex = ctx.executor()
    show_logs(ex, ex.containers(a.services), a.follow, a.tail, a.timestamps, not a.no_log_prefix,
              not a.no_color and sys.stdout.isatty(), a.since, a.until)
    return 0


@command("config", "convert")
def config(ctx, name: str, argv: list[str]) -> int:
    from berth.compose import serialize
    p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
    p.add_argument("--services", action="store_true")
    p.add_argument("--volumes", action="store_true")
    p.add_argument("--networks", action="store_true")
    p.add_argument("--images", action="store_true")
    p.add_argument("--hash")
    p.add_argument("--format", default="yaml", choices=["yaml", "json"])
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-o", "--output")
    p.add_argument("names", nargs="*", metavar="SERVICE")
    a = p.parse_args(argv)
    project = ctx.project(a.names)
    if a.quiet:
        return 0
    if a.services:
        print("\n".join(s.name for s in project.services))
        return 0
    if a.volumes:
        print("\n".join(v.key for v in project.volumes))
        return 0
    if a.networks:
        print("\n".join(n.key for n in project.networks))
        return 0
    if a.images:
        from berth.compose.convert import image_name
        print("\n".join(image_name(project, s) for s in project.services))
        return 0
    if a.hash:
        for s in project.services:
            if a.hash == "*" or s.name in a.hash.split(","):
                print(f"{s.name} {serialize.config_hash(s)}")
        return 0
    text = json.dumps(serialize.to_dict(project), indent=2) + "\n" if a.format == "json" else \
        serialize.to_yaml(project)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _simple(verb: str, call, with_timeout: bool = False, with_signal: bool = False):
    def run(ctx, name: str, argv: list[str]) -> int:
        p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
        if with_timeout:
            _timeout(p)
        if with_signal:
            p.add_argument("-s", "--signal", default="SIGKILL")
        p.add_argument("services", nargs="*")
        a = p.parse_args(argv)
        call(ctx.executor(), a)
        return 0
    run.__name__ = verb
    return run


COMMANDS["stop"] = _simple("stop", lambda ex, a: ex.stop(a.services, a.timeout), with_timeout=True)
COMMANDS["start"] = _simple("start", lambda ex, a: ex.start(a.services))
COMMANDS["restart"] = _simple("restart", lambda ex, a: ex.restart(a.services, a.timeout), with_timeout=True)
COMMANDS["kill"] = _simple("kill", lambda ex, a: ex.kill(a.services, a.signal), with_signal=True)
COMMANDS["pause"] = _simple("pause", lambda ex, a: ex.pause(a.services))
COMMANDS["unpause"] = _simple("unpause", lambda ex, a: ex.unpause(a.services))


@command("rm")
def rm(ctx, name: str, argv: list[str]) -> int:
    p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-s", "--stop", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("services", nargs="*")
    a = p.parse_args(argv)
    ex = ctx.executor()
    stopped = [c for c in ex.containers(a.services) if c.get("State") != "running"]
    if not stopped and not a.stop:
        print("No stopped containers", file=sys.stderr)
        return 0
    ex.rm(a.services, a.stop, a.volumes)
    return 0


@command("scale")
def scale(ctx, name: str, argv: list[str]) -> int:
    p = parser(f"berth {name}", "[SERVICE=REPLICAS...]")
    p.add_argument("--no-deps", action="store_true")
    p.add_argument("pairs", nargs="+")
    a = p.parse_args(argv)
    ex = ctx.executor()
    for svc, n in _scale(a.pairs):
        ex.scale(svc, n)
    return 0


@command("build")
def build(ctx, name: str, argv: list[str]) -> int:
    p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--pull", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--build-arg", action="append", default=[])
    p.add_argument("services", nargs="*")
    a = p.parse_args(argv)
    ex = ctx.executor()
    import dataclasses
    for svc in ex.project.services:
        if svc.build and (not a.services or svc.name in a.services):
            b = dataclasses.replace(svc.build, no_cache=a.no_cache or svc.build.no_cache,
                                    pull=a.pull or svc.build.pull,
                                    args=svc.build.args + tuple(tuple(x.split("=", 1)) if "=" in x else (x, None)
                                                                for x in a.build_arg))
            ex.ensure_image(dataclasses.replace(svc, build=b), build=True)
    return 0


@command("pull")
def pull(ctx, name: str, argv: list[str]) -> int:
    from berth.client.credentials import auth_header_for_image
    from berth.compose.convert import image_name
    p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--ignore-pull-failures", action="store_true")
    p.add_argument("--ignore-buildable", action="store_true")
    p.add_argument("services", nargs="*")
    a = p.parse_args(argv)
    ex = ctx.executor()
    code = 0
    for svc in ex.project.services:
        if (a.services and svc.name not in a.services) or not svc.image or (svc.build and a.ignore_buildable):
            continue
        try:
            ref = image_name(ex.project, svc)
            ex.engine.pull(ref, auth=auth_header_for_image(ref))
            print(f" {svc.name} Pulled", file=sys.stderr)
        except Exception as e:  # noqa: BLE001 - reported per service, as Compose does
            print(f" {svc.name} Error {getattr(e, 'message', e)}", file=sys.stderr)
            if not a.ignore_pull_failures:
                code = 1
    return code


@command("push")
def push(ctx, name: str, argv: list[str]) -> int:
    from berth.cli.commands.distribution import push as push_image
    from berth.compose.convert import image_name
    p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
    p.add_argument("--ignore-push-failures", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("services", nargs="*")
    a = p.parse_args(argv)
    project = ctx.project()
    code = 0
    for svc in project.services:
        if (a.services and svc.name not in a.services) or not svc.image:
            continue
        rc = push_image(ctx.api, "push", ["-q", image_name(project, svc)] if a.quiet else [image_name(project, svc)])
        code = code or (rc if not a.ignore_push_failures else 0)
    return code


def _container_of(ex, service: str, index: int) -> dict:
    cs = [c for c in ex.containers([service]) if int((c.get("Labels") or {}).get(m.LABEL_NUMBER, "0")) == index]
    if not cs:
        raise Usage(f"service {service!r} is not running") if index == 1 else \
            Usage(f"service {service!r} has no container number {index}")
    return cs[0]


@command("exec")
def exec_(ctx, name: str, argv: list[str]) -> int:
    from berth.cli.commands.containers import exec_ as container_exec
    p = parser(f"berth {name}", "[OPTIONS] SERVICE COMMAND [ARGS...]")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-T", "--no-TTY", action="store_true", dest="no_tty")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--index", type=int, default=1)
    p.add_argument("--privileged", action="store_true")
    p.add_argument("service")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    if not a.command:
        raise Usage(f"berth {name} requires at least 2 arguments")
    c = _container_of(ctx.executor(), a.service, a.index)
    tty = not a.no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    args = (["-d"] if a.detach else ["-i"] + (["-t"] if tty else []))
    for flag, value in (("-u", a.user), ("-w", a.workdir)):
        if value:
            args += [flag, value]
    for e in a.env:
        args += ["-e", e]
    if a.privileged:
        args.append("--privileged")
    rc = container_exec(ctx.api, "exec", args + [c["Id"], *a.command])
    raise Exit(rc)


@command("run")
def run(ctx, name: str, argv: list[str]) -> int:
    from berth.cli.compose_run import run_oneoff
    p = parser(f"berth {name}", "[OPTIONS] SERVICE [COMMAND] [ARGS...]")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--rm", action="store_true")
    p.add_argument("-T", "--no-TTY", action="store_true", dest="no_tty")
    p.add_argument("-i", "--interactive", action="store_true", default=True)
    p.add_argument("--name")
    p.add_argument("--entrypoint")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("--service-ports", action="store_true")
    p.add_argument("--no-deps", action="store_true")
    p.add_argument("--build", action="store_true")
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("service")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    return run_oneoff(ctx, a)


@command("top")
def top(ctx, name: str, argv: list[str]) -> int:
    p = parser(f"berth {name}", "[SERVICE...]")
    p.add_argument("services", nargs="*")
    a = p.parse_args(argv)
    ex = ctx.executor()
    for c in _rows(ex, a.services, False):
        res = ctx.api.request("GET", f"/containers/{c['Id']}/top").json()
        print(c["Names"][0].lstrip("/"))
        _table(res.get("Titles") or [], res.get("Processes") or [])
        print()
    return 0


@command("port")
def port(ctx, name: str, argv: list[str]) -> int:
    p = parser(f"berth {name}", "[OPTIONS] SERVICE PRIVATE_PORT")
    p.add_argument("--protocol", default="tcp")
    p.add_argument("--index", type=int, default=1)
    p.add_argument("service")
    p.add_argument("private_port")
    a = p.parse_args(argv)
    c = _container_of(ctx.executor(), a.service, a.index)
    info = ctx.api.request("GET", f"/containers/{c['Id']}/json").json()
    bindings = ((info.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{a.private_port}/{a.protocol}") or []
    if not bindings:
        raise Usage(f"no port {a.private_port}/{a.protocol} for container {c['Names'][0].lstrip('/')}")
    b = bindings[0]
    print(f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}")
    return 0


@command("images")
def images(ctx, name: str, argv: list[str]) -> int:
    from berth.types.units import human_size
    p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format", default="table")
    p.add_argument("services", nargs="*")
    a = p.parse_args(argv)
    ex = ctx.executor()
    rows = []
    for c in ex.containers(a.services):
        img = ctx.api.request("GET", f"/images/{c['ImageID']}/json").json()
        tag = (img.get("RepoTags") or ["<none>:<none>"])[0]
        repo, _, t = tag.rpartition(":")
        rows.append((c["Names"][0].lstrip("/"), repo, t, img["Id"][7:19], human_size(img.get("Size", 0), 3)))
    if a.quiet:
        print("\n".join(dict.fromkeys(r[3] for r in rows)))
        return 0
    if a.format == "json":
        print(json.dumps([{"ContainerName": r[0], "Repository": r[1], "Tag": r[2], "ID": r[3], "Size": r[4]}
                          for r in rows]))
        return 0
    _table(("CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"), rows)
    return 0


@command("events")
def events(ctx, name: str, argv: list[str]) -> int:
    p = parser(f"berth {name}", "[OPTIONS] [SERVICE...]")
    p.add_argument("--json", action="store_true")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("services", nargs="*")
    a = p.parse_args(argv)
    ex = ctx.executor()
    for ev in ex.engine.events(f"{m.LABEL_PROJECT}={ex.project.name}", since=a.since, until=a.until,
                               types=["container"]):
        attrs = (ev.get("Actor") or {}).get("Attributes") or {}
        svc = attrs.get(m.LABEL_SERVICE, "")
        if a.services and svc not in a.services:
            continue
        if a.json:
            print(json.dumps({"time": ev.get("time"), "type": "container", "action": ev.get("Action"),
                              "id": (ev.get("Actor") or {}).get("ID"), "service": svc, "attributes": attrs}),
                  flush=True)
        else:
            print(f"{ev.get('time')} container {ev.get('Action')} {(ev.get('Actor') or {}).get('ID')} "
                  f"(name={attrs.get('name', '')}, service={svc})", flush=True)
    return 0


@command("watch")
def watch(ctx, name: str, argv: list[str]) -> int:
    from berth.compose.watch import Watcher
    p = parser(f"berth {name}", "[SERVICE...]")
    p.add_argument("--no-up", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("services", nargs="*")
    a = p.parse_args(argv)
    ex = ctx.executor()
    if not a.no_up:
        from berth.compose.executor import UpOptions
        ex.up(UpOptions(services=tuple(a.services)))
    w = Watcher(ex, a.services, on_event=None if a.quiet else
                (lambda msg: print(msg, file=sys.stderr, flush=True)))
    if not w.rules:
        raise Usage("none of the selected services is configured for watch, consider setting an 'develop' section")
    try:
        w.run()
    except KeyboardInterrupt:
        pass
    return 0


@command("ls")
def ls(ctx, name: str, argv: list[str]) -> int:
    p = parser(f"berth {name}", "[OPTIONS]")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format", default="table")
    a = p.parse_args(argv)
    from berth.compose.engine import Engine
    projects: dict[str, dict] = {}
    for c in Engine(ctx.api.host).containers(m.LABEL_PROJECT, all=True):
        labels = c.get("Labels") or {}
        pr = projects.setdefault(labels[m.LABEL_PROJECT], {"states": {}, "files": labels.get(m.LABEL_CONFIG_FILES, "")})
        pr["states"][c.get("State", "")] = pr["states"].get(c.get("State", ""), 0) + 1
    rows = [(n, ", ".join(f"{s}({k})" for s, k in sorted(v["states"].items())), v["files"])
            for n, v in sorted(projects.items()) if a.all or "running" in v["states"]]
    if a.quiet:
        print("\n".join(r[0] for r in rows))
        return 0
    if a.format == "json":
        print(json.dumps([{"Name": r[0], "Status": r[1], "ConfigFiles": r[2]} for r in rows]))
        return 0
    _table(("NAME", "STATUS", "CONFIG FILES"), rows)
    return 0


@command("version")
def version(ctx, name: str, argv: list[str]) -> int:
    from berth.compose.convert import COMPOSE_VERSION
    p = parser(f"berth {name}", "[OPTIONS]")
    p.add_argument("--short", action="store_true")
    p.add_argument("-f", "--format", default="pretty")
    a = p.parse_args(argv)
    if a.short:
        print(COMPOSE_VERSION)
    elif a.format == "json":
        print(json.dumps({"version": f"v{COMPOSE_VERSION}"}))
    else:
        print(f"berth compose version v{COMPOSE_VERSION}")
    return 0

