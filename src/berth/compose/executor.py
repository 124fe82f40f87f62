"""Running plans against berthd: ``up``, ``down``, ``scale`` and the per-container verbs of a project.

Progress goes to ``on_event(kind, name, status)`` — kind ``container``/``network``/``volume``/``image``/``warning``
— and nothing is printed here. Services of one dependency level run in parallel threads.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from berth.compose import convert, planner
from berth.compose import model as m
from berth.compose.engine import Engine
from berth.compose.model import Project, Service
from berth.compose.planner import CREATE, RECREATE, REMOVE, RESTART, START, Plan, PlanOptions, Step
from berth.compose.resources import ComposeError, ProjectResources, poll
from berth.errors import BerthError, NotFound

OnEvent = Callable[[str, str, str], None]


@dataclass(frozen=True)
class UpOptions:
    services: tuple[str, ...] = ()
    no_deps: bool = False
    no_start: bool = False
    no_recreate: bool = False
    force_recreate: bool = False
    remove_orphans: bool = False
    scale: tuple[tuple[str, int], ...] = ()
    build: bool = False               # build every service that has `build`, image present or not
    no_build: bool = False
    pull: str = ""                    # always | missing | never | "" (each service's pull_policy; default missing)
    wait: bool = False                # up --wait: every service running (healthy when it has a healthcheck)
    wait_timeout: float | None = None
    timeout: float | None = None      # stop timeout when recreating


def fallback_hash(service: Service) -> str:
    """A config hash when ``berth.compose.serialize`` is not there: what changes the container, hashed."""
    s = dataclasses.replace(service, replicas=1, build=None, pull_policy="", depends_on=(), profiles=(), watch=())
    text = json.dumps(dataclasses.asdict(s), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def default_hash(service: Service) -> str:
    try:
        from berth.compose.serialize import config_hash
    except ImportError:
        return fallback_hash(service)
    return config_hash(service)


class Executor(ProjectResources):
    """Acts for one project on one engine."""

    def __init__(self, project: Project, engine: Engine | str | None = None, on_event: OnEvent | None = None,
                 hash_of: Callable[[Service], str] | None = None, max_workers: int = 8) -> None:
        self.project = project
        self.engine = engine if isinstance(engine, Engine) else Engine(engine)
        self.on_event = on_event or (lambda kind, name, status: None)
        self.hash_of = hash_of or default_hash
        self.max_workers = max_workers

    def emit(self, kind: str, name: str, status: str) -> None:
        self.on_event(kind, name, status)

    # ------------------------------------------------------------------ queries

    def containers(self, services: Iterable[str] = (), oneoff: bool | None = False, all: bool = True) -> list[dict]:
        """The project's containers (``oneoff``: False only services', True only one-offs, None both)."""
        labels = [f"{m.LABEL_PROJECT}={self.project.name}"]
        if oneoff is not None:
            labels.append(f"{m.LABEL_ONEOFF}={'True' if oneoff else 'False'}")
        out = self.engine.containers(*labels, all=all)
        wanted = set(services)
        if wanted:
            out = [c for c in out if planner.labels_of(c).get(m.LABEL_SERVICE) in wanted]
        return sorted(out, key=lambda c: (planner.labels_of(c).get(m.LABEL_SERVICE, ""), planner.number_of(c)))

    # ------------------------------------------------------------------ up

    def up(self, options: UpOptions = UpOptions()) -> Plan:
        """Create networks and volumes, get images, then converge the services level by level."""
        names = planner.scope(self.project, options.services, options.no_deps)
        planner.depths(self.project.services)  # a cycle fails before anything is made
        services = [self.project.service(n) for n in names]
        self.ensure_networks()
        self.ensure_volumes()
        image_ids = self.ensure_images(services, options.build, options.no_build, options.pull)
        self.write_files(services)
        actual = self.containers()
        popts = PlanOptions(services=options.services, no_deps=options.no_deps, no_start=options.no_start,
                            no_recreate=options.no_recreate, force_recreate=options.force_recreate,
                            remove_orphans=options.remove_orphans, scale=options.scale,
                            image_ids=tuple(image_ids.items()))
        plan = planner.plan(self.project, actual, popts, self.hash_of)
        for w in plan.warnings:
            self.emit("warning", "", w)
        busy = {s.container_id for s in plan.steps}
        for c in actual:
            if c["Id"] not in busy and planner.labels_of(c).get(m.LABEL_SERVICE) in names and planner.is_running(c):
                self.emit("container", planner.name_of(c), "Running")
        self.execute(plan, image_ids, options.timeout)
        if options.wait and plan.start:
            self.wait_ready(plan.services, options.wait_timeout)
        return plan

    def execute(self, plan: Plan, image_ids: dict[str, str], timeout: float | None = None) -> None:
        """Run ``plan``: orphans first, then each level, its services in parallel; the first failure raises."""
        for step in plan.orphans:
            self._remove(step, timeout)
        for level in plan.levels:
            self._run_level(level, lambda name, steps: self._converge(name, steps, plan, image_ids, timeout))

    def _run_level(self, level: planner.Level, fn: Callable[[str, list[Step]], None]) -> None:
        work = [(n, level.for_service(n)) for n in level.services]
        work = [(n, s) for n, s in work if s]
        if not work:
            return
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(work))) as pool:
            futures = [(n, pool.submit(fn, n, steps)) for n, steps in work]
        errors = []
        for name, f in futures:
            e = f.exception()
            if e is not None:
                errors.append(e if isinstance(e, ComposeError) else
                              ComposeError(f"service {name}: {getattr(e, 'message', None) or e}", name))
        if errors:
            if len(errors) == 1:
                raise errors[0]
            raise ComposeError("; ".join(e.message for e in errors), errors[0].service)

    def _converge(self, name: str, steps: list[Step], plan: Plan, image_ids: dict[str, str],
                  timeout: float | None) -> None:
        svc = self.project.service(name)
        to_start: list[tuple[str, str]] = []
        for step in steps:
            if step.action == REMOVE:
                self._remove(step, timeout)
        for step in steps:
            if step.action == CREATE:
                to_start.append(self._create(svc, step.number, image_ids.get(name, "")))
            elif step.action == RECREATE:
                to_start.append(self._recreate(svc, step, image_ids.get(name, ""), timeout))
            elif step.action == START:
                to_start.append((step.container_id, step.container_name))
        restarts = [s for s in steps if s.action == RESTART]
        if not plan.start or not (to_start or restarts):
            return
        self.wait_dependencies(svc)
        for cid, cname in to_start:
            self.emit("container", cname, "Starting")
            try:
                self.engine.start(cid)
            except BerthError as e:
                self.emit("container", cname, "Error")
                raise ComposeError(f"service {name}: failed to start container {cname}: {e.message}", name) from None
            self.emit("container", cname, "Started")
        for step in restarts:
            self.emit("container", step.container_name, "Restarting")
            self.engine.restart(step.container_id, timeout)
            self.emit("container", step.container_name, "Restarted")

    def _first_ids(self, svc: Service) -> dict[str, str]:
        if not svc.network_mode.startswith("service:"):
            return {}
        dep = svc.network_mode[len("service:"):]
        cs = self.containers([dep])
        return {dep: cs[0]["Id"]} if cs else {}

    def _create(self, svc: Service, number: int, image_id: str, name: str | None = None,
                inherit: dict[str, str] | None = None, extra_mounts: list[dict] = ()) -> tuple[str, str]:
        cname = convert.container_name(self.project, svc, number)
        try:
            body = convert.container_config(self.project, svc, number, image_id, self.hash_of(svc),
                                            inherit_volumes=inherit, container_ids=self._first_ids(svc))
        except ValueError as e:
            raise ComposeError(str(e), svc.name) from None
        body["HostConfig"]["Mounts"] = body["HostConfig"]["Mounts"] + list(extra_mounts)
        if name is None:
            self.emit("container", cname, "Creating")
        try:
            cid = self.engine.create_container(name or cname, body)
            for net, ep in convert.extra_networks(self.project, svc, number):
                self.engine.connect(net, cid, ep)
        except BerthError as e:
            self.emit("container", cname, "Error")
            raise ComposeError(f"service {svc.name}: failed to create container {cname}: {e.message}",
                               svc.name) from None
        if name is None:
            self.emit("container", cname, "Created")
        return cid, cname

    def _recreate(self, svc: Service, step: Step, image_id: str, timeout: float | None) -> tuple[str, str]:
        """As Docker Compose: create the new one under ``<id12>_<name>``, stop and remove the old, rename."""
        cname = convert.container_name(self.project, svc, step.number)
        self.emit("container", step.container_name, "Recreate")
        old = self.engine.inspect_container(step.container_id)
        anon = {v.target for v in svc.volumes if v.type == "volume" and not v.source}
        declared = {v.target for v in svc.volumes}
        try:
            image_volumes = set((self.engine.inspect_image(image_id or old["Image"]).get("Config") or {})
                                .get("Volumes") or {})
        except NotFound:
            image_volumes = set()
        inherit, extra = {}, []
        for mt in old.get("Mounts") or []:
            if mt.get("Type") != "volume" or not mt.get("Name"):
                continue
            dest = mt.get("Destination")
            if dest in anon:
                inherit[dest] = mt["Name"]
            elif dest in image_volumes and dest not in declared:
                extra.append({"Type": "volume", "Source": mt["Name"], "Target": dest, "ReadOnly": not mt.get("RW", True)})
        cid, _ = self._create(svc, step.number, image_id, f"{step.container_id[:12]}_{cname}", inherit, extra)
        try:
            self.engine.stop(step.container_id, timeout if timeout is not None else svc.stop_grace_period)
            self.engine.remove_container(step.container_id, force=True)
            self.engine.rename(cid, cname)
        except BerthError as e:
            raise ComposeError(f"service {svc.name}: failed to recreate container {cname}: {e.message}",
                               svc.name) from None
        self.emit("container", cname, "Recreated")
        return cid, cname

    def _remove(self, step: Step, timeout: float | None, volumes: bool = False) -> None:
        name = step.container_name
        self.emit("container", name, "Stopping")
        try:
            svc_timeout = None
            try:
                svc_timeout = self.project.service(step.service).stop_grace_period
            except KeyError:
                pass
            self.engine.stop(step.container_id, timeout if timeout is not None else svc_timeout)
            self.emit("container", name, "Stopped")
            self.emit("container", name, "Removing")
            self.engine.remove_container(step.container_id, force=True, volumes=volumes)
        except NotFound:
            pass
        except BerthError as e:
            self.emit("container", name, "Error")
            raise ComposeError(f"service {step.service}: failed to remove container {name}: {e.message}",
                               step.service) from None
        self.emit("container", name, "Removed")

    # ------------------------------------------------------------------ waiting

    def _state(self, cid: str) -> dict:
        return self.engine.inspect_container(cid).get("State") or {}

    def wait_dependencies(self, svc: Service, timeout: float | None = None) -> None:
        """Block until each depends_on condition of ``svc`` holds; a dependency that cannot satisfy it raises."""
        known = {s.name for s in self.project.services}
        for dep in svc.depends_on:
            if dep.service not in known:
                if dep.required:
                    raise ComposeError(f"service {svc.name} depends on undefined service {dep.service}", svc.name)
                continue
            if dep.condition == "service_started":
                continue
            for c in self.containers([dep.service]):
                cname = planner.name_of(c)
                if dep.condition == "service_healthy":
                    self.emit("container", cname, "Waiting")
                    self._wait_healthy(c["Id"], cname, dep.service, svc.name, timeout)
                    self.emit("container", cname, "Healthy")
                elif dep.condition == "service_completed_successfully":
                    self.emit("container", cname, "Waiting")
                    st = poll(lambda: (lambda s: s if s.get("Status") in ("exited", "dead") else None)(
                        self._state(c["Id"])), timeout, f"{cname} to complete", svc.name)
                    if st.get("ExitCode", 0) != 0:
                        raise ComposeError(f"service {dep.service!r} didn't complete successfully: exit "
                                           f"{st.get('ExitCode')}", svc.name)
                    self.emit("container", cname, "Exited")

    def _wait_healthy(self, cid: str, cname: str, service: str, dependent: str, timeout: float | None) -> None:
        def check():
            st = self._state(cid)
            health = (st.get("Health") or {}).get("Status")
            if health is None:
                if st.get("Status") in ("exited", "dead"):
                    raise ComposeError(f"container {cname} exited ({st.get('ExitCode')})", dependent or service)
                raise ComposeError(f"container {cname} has no healthcheck configured", dependent or service)
            if health == "unhealthy":
                raise ComposeError(f"dependency failed to start: container {cname} is unhealthy",
                                   dependent or service)
            if st.get("Status") in ("exited", "dead") and not st.get("Restarting"):
                raise ComposeError(f"container {cname} exited ({st.get('ExitCode')})", dependent or service)
            return health == "healthy"
        poll(check, timeout, f"{cname} to be healthy", dependent or service)

    def wait_ready(self, services: Iterable[str], timeout: float | None = None) -> None:
        """``up --wait``: every container running, and healthy when it has a healthcheck."""
        deadline = None if timeout is None else time.monotonic() + timeout
        completes = {d.service for s in self.project.services for d in s.depends_on
                     if d.condition == "service_completed_successfully"}
        for c in self.containers(services):
            cname, service = planner.name_of(c), planner.labels_of(c).get(m.LABEL_SERVICE, "")
            left = None if deadline is None else max(0.0, deadline - time.monotonic())

            def check(cid=c["Id"], cname=cname, service=service):
                st = self._state(cid)
                if st.get("Status") in ("exited", "dead"):
                    if service in completes and st.get("ExitCode") == 0:
                        return True
                    raise ComposeError(f"container {cname} exited ({st.get('ExitCode')})", service)
                health = (st.get("Health") or {}).get("Status")
                if health == "unhealthy":
                    raise ComposeError(f"container {cname} is unhealthy", service)
                return st.get("Running") and health in (None, "healthy")
            self.emit("container", cname, "Waiting")
            poll(check, left, f"{cname} to be ready", service)
            self.emit("container", cname, "Healthy")

    # ------------------------------------------------------------------ down and friends

    def down(self, remove_orphans: bool = False, volumes: bool = False, rmi: str = "",
             timeout: float | None = None) -> Plan:
        """Stop and remove the project's containers, then its networks (and volumes, images)."""
        plan = planner.plan_down(self.project, self.containers(oneoff=None), remove_orphans, volumes, rmi)
        for w in plan.warnings:
            self.emit("warning", "", w)
        for step in plan.orphans:
            self._remove(step, timeout, volumes)
        for level in plan.levels:
            self._run_level(level, lambda n, steps: self._each(steps, lambda s: self._remove(s, timeout, volumes)))
        errors: list[str] = []
        label = f"{m.LABEL_PROJECT}={self.project.name}"
        external = {n.name for n in self.project.networks if n.external}
        nets = list(plan.networks) + [n["Name"] for n in self.engine.networks(label)
                                      if n["Name"] not in plan.networks and n["Name"] not in external]
        for name in nets:
            self._remove_resource("network", name, self.engine.remove_network, errors)
        if volumes:
            external = {v.name for v in self.project.volumes if v.external}
            vols = list(plan.volumes) + [v["Name"] for v in self.engine.volumes(label)
                                         if v["Name"] not in plan.volumes and v["Name"] not in external]
            for name in vols:
                self._remove_resource("volume", name, self.engine.remove_volume, errors)
        for ref in plan.images:
            self._remove_resource("image", ref, self.engine.remove_image, errors)
        shutil.rmtree(convert.files_dir(self.project), ignore_errors=True)
        if errors:
            raise ComposeError("; ".join(errors))
        return plan

    def _remove_resource(self, kind: str, name: str, fn: Callable[[str], object], errors: list[str]) -> None:
        self.emit(kind, name, "Removing")
        try:
            fn(name)
        except NotFound:
            return
        except BerthError as e:
            self.emit(kind, name, "Error")
            errors.append(f"failed to remove {kind} {name}: {e.message}")
            return
        self.emit(kind, name, "Removed")

    def scale(self, service: str, replicas: int, timeout: float | None = None) -> Plan:
        return self.up(UpOptions(services=(service,), no_deps=True, scale=((service, replicas),), timeout=timeout))

    def _each(self, items: list, fn: Callable[[object], None]) -> None:
        """``fn`` on every item at once (a service's replicas stop together, as in Compose)."""
        if len(items) <= 1:
            for x in items:
                fn(x)
            return
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            futures = [pool.submit(fn, x) for x in items]
        for f in futures:
            f.result()

    def _by_level(self, services: Iterable[str], reverse: bool, fn: Callable[[dict], None],
                  oneoff: bool | None = False, states: tuple[str, ...] | None = None) -> None:
        depth = planner.depths(list(self.project.services) + list(self.project.disabled))
        groups: dict[int, list[dict]] = {}
        for c in self.containers(services, oneoff=oneoff):
            if states is None or c.get("State") in states:
                groups.setdefault(depth.get(planner.labels_of(c).get(m.LABEL_SERVICE, ""), 0), []).append(c)
        for k in sorted(groups, reverse=reverse):
            self._each(groups[k], fn)

    def _verb(self, ing: str, ed: str, call: Callable[[str], None]) -> Callable[[dict], None]:
        def run(c: dict) -> None:
            name = planner.name_of(c)
            self.emit("container", name, ing)
            call(c["Id"])
            self.emit("container", name, ed)
        return run

    def stop(self, services: Iterable[str] = (), timeout: float | None = None) -> None:
        self._by_level(services, True, self._verb("Stopping", "Stopped", lambda i: self.engine.stop(i, timeout)),
                       states=("running", "restarting", "paused"))

    def start(self, services: Iterable[str] = ()) -> None:
        names = planner.scope(self.project, services, no_deps=True)
        waited: set[str] = set()

        def run(c: dict) -> None:
            svc = planner.labels_of(c).get(m.LABEL_SERVICE, "")
            if svc in names and svc not in waited:
                self.wait_dependencies(self.project.service(svc))
                waited.add(svc)
            self._verb("Starting", "Started", self.engine.start)(c)
        self._by_level(services, False, run, states=("created", "exited"))

    def restart(self, services: Iterable[str] = (), timeout: float | None = None) -> None:
        self._by_level(services, False,
                       self._verb("Restarting", "Restarted", lambda i: self.engine.restart(i, timeout)))

    def kill(self, services: Iterable[str] = (), signal: str = "SIGKILL") -> None:
        self._by_level(services, True, self._verb("Killing", "Killed", lambda i: self.engine.kill(i, signal)),
                       states=("running", "restarting"))

    def pause(self, services: Iterable[str] = ()) -> None:
        self._by_level(services, True, self._verb("Pausing", "Paused", self.engine.pause), states=("running",))

    def unpause(self, services: Iterable[str] = ()) -> None:
        self._by_level(services, False, self._verb("Unpausing", "Unpaused", self.engine.unpause),
                       states=("paused",))

    def rm(self, services: Iterable[str] = (), stop: bool = False, volumes: bool = False,
           timeout: float | None = None) -> None:
        """Remove the stopped containers (with ``stop``, stop the running ones first)."""
        if stop:
            self.stop(services, timeout)
        self._by_level(services, True, self._verb("Removing", "Removed",
                                                  lambda i: self.engine.remove_container(i, False, volumes)),
                       oneoff=None, states=("created", "exited", "dead"))
