"""``berth compose run``: a one-off container of a service, with its dependencies up first."""
from __future__ import annotations

import dataclasses
import os
import shlex
import sys

from berth.cli.common import Usage
from berth.errors import BerthError


def run_oneoff(ctx, a) -> int:
    from berth.cli.commands.containers import _attach_and_start
    from berth.compose import convert, syntax
    from berth.compose.executor import UpOptions
    ex = ctx.executor([a.service])
    project = ex.project
    try:
        svc = project.service(a.service)
    except KeyError:
        raise Usage(f"no such service: {a.service}") from None
    deps = [d.service for d in svc.depends_on if d.required]
    if deps and not a.no_deps:
        ex.up(UpOptions(services=tuple(deps)))
    ex.ensure_networks()
    ex.ensure_volumes()
    image_id = ex.ensure_image(svc, build=a.build)
    ex.write_files([svc])
    changes: dict = {"restart": "", "container_name": "", "replicas": 1}
    if a.command:
        changes["command"] = tuple(a.command)
    if a.entrypoint is not None:
        changes["entrypoint"] = tuple(shlex.split(a.entrypoint))
    if a.user:
        changes["user"] = a.user
    if a.workdir:
        changes["working_dir"] = a.workdir
    if a.env:
        extra = [tuple(e.split("=", 1)) if "=" in e else (e, os.environ.get(e)) for e in a.env]
        changes["environment"] = tuple(svc.environment) + tuple(extra)
    try:
        published = tuple(p for spec in a.publish for p in syntax.ports(spec, what="--publish"))
    except BerthError as e:
        raise Usage(e.message.lstrip(" :")) from None
    changes["ports"] = (tuple(svc.ports) if a.service_ports else ()) + published
    svc = dataclasses.replace(svc, **changes)
    slug = os.urandom(6).hex()
    name = a.name or convert.container_name(project, svc, 1, oneoff=True, slug=slug)
    body = convert.container_config(project, svc, 1, image_id, ex.hash_of(svc), oneoff=True, slug=slug)
    tty = not a.no_tty and sys.stdin.isatty() and sys.stdout.isatty()
    stdin = bool(a.interactive) and not a.detach and (tty or not sys.stdin.isatty())
    body.update({"Tty": tty, "OpenStdin": stdin, "StdinOnce": stdin, "AttachStdin": stdin,
                 "AttachStdout": not a.detach, "AttachStderr": not a.detach})
    body["Labels"].update(dict(x.split("=", 1) if "=" in x else (x, "") for x in a.label))
    body["HostConfig"]["AutoRemove"] = bool(a.rm)
    cid = ex.engine.create_container(name, body)
    for net, ep in convert.extra_networks(project, svc, 1, oneoff=True):
        ex.engine.connect(net, cid, ep)
    if a.detach:
        ex.engine.start(cid)
        print(name)
        return 0
    return _attach_and_start(ctx.api, cid, tty, stdin, "removed" if a.rm else "next-exit")
