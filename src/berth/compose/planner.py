"""What ``up``/``down`` must do, decided from the project and the engine's containers: pure, no I/O.

A ``Plan`` is steps grouped in dependency levels: level 0 holds services depending on nothing, level k those
whose dependencies are all in levels < k. Services of one level may run in parallel; ``up`` runs the levels in
order, ``down`` in reverse.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from berth.compose import model as m
from berth.compose.model import Project, Service

CREATE, RECREATE, START, RESTART, REMOVE = "create", "recreate", "start", "restart", "remove"


@dataclass(frozen=True)
class PlanOptions:
    services: tuple[str, ...] = ()             # only these (and their dependencies, unless no_deps)
    no_deps: bool = False
    no_start: bool = False
    no_recreate: bool = False
    force_recreate: bool = False
    remove_orphans: bool = False
    scale: tuple[tuple[str, int], ...] = ()    # service → replicas, overriding the file
    image_ids: tuple[tuple[str, str], ...] = ()  # service → current image ID; a container of another is recreated


@dataclass(frozen=True)
class Step:
    action: str                                # create | recreate | start | restart | remove
    service: str
    number: int
    container_id: str = ""                     # the existing container (all but create)
    container_name: str = ""


@dataclass(frozen=True)
class Level:
    services: tuple[str, ...]
    steps: tuple[Step, ...] = ()

    def for_service(self, name: str) -> list[Step]:
        return [s for s in self.steps if s.service == name]


@dataclass(frozen=True)
class Plan:
    levels: tuple[Level, ...] = ()             # execution order (reversed already for down)
    orphans: tuple[Step, ...] = ()             # removals of containers of services not in the project
    warnings: tuple[str, ...] = ()
    start: bool = True                         # start what is created (False: up --no-start, create)
    networks: tuple[str, ...] = ()             # down: engine names of the project's networks to remove
    volumes: tuple[str, ...] = ()              # down -v: engine names of the named volumes to remove
    anonymous_volumes: bool = False            # down -v: remove containers' anonymous volumes too
    images: tuple[str, ...] = ()               # down --rmi: images to remove
    services: tuple[str, ...] = field(default=())  # the services in scope, in dependency order

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.orphans + tuple(s for lv in self.levels for s in lv.steps)

    def is_empty(self) -> bool:
        return not self.steps


def labels_of(c: dict) -> dict:
    return c.get("Labels") or {}


def number_of(c: dict) -> int:
    try:
        return int(labels_of(c).get(m.LABEL_NUMBER, "0"))
    except ValueError:
        return 0


def name_of(c: dict) -> str:
    names = c.get("Names") or []
    return names[0].lstrip("/") if names else c.get("Name", "").lstrip("/")


def is_oneoff(c: dict) -> bool:
    return labels_of(c).get(m.LABEL_ONEOFF, "False").lower() == "true"


def is_running(c: dict) -> bool:
    return c.get("State") in ("running", "restarting", "paused")


def dependencies(service: Service, known: Iterable[str] | None = None) -> list[str]:
    """Services ``service`` must come after: depends_on, and ``network_mode: service:NAME``."""
    out = [d.service for d in service.depends_on]
    if service.network_mode.startswith("service:"):
        out.append(service.network_mode[len("service:"):])
    seen: list[str] = []
    for d in out:
        if d not in seen and (known is None or d in known):
            seen.append(d)
    return seen


def depths(services: Iterable[Service]) -> dict[str, int]:
    """Dependency level of each service; a cycle raises ValueError naming it."""
    by_name = {s.name: s for s in services}
    out: dict[str, int] = {}
    visiting: list[str] = []

    def visit(name: str) -> int:
        if name in out:
            return out[name]
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise ValueError("dependency cycle detected: " + " -> ".join(cycle))
        visiting.append(name)
        deps = dependencies(by_name[name], by_name)
        out[name] = 1 + max((visit(d) for d in deps), default=-1)
        visiting.pop()
        return out[name]

    for name in by_name:
        visit(name)
    return out


def scope(project: Project, names: Iterable[str], no_deps: bool = False) -> list[str]:
    """The services to act on: ``names`` (all when empty) plus their dependencies, in project order."""
    known = {s.name: s for s in project.services}
    wanted = list(names) or list(known)
    for n in wanted:
        if n not in known:
            raise ValueError(f"no such service: {n}")
    chosen = set(wanted)
    if not no_deps:
        todo = list(wanted)
        while todo:
            for d in dependencies(known[todo.pop()], known):
                if d not in chosen:
                    chosen.add(d)
                    todo.append(d)
    return [s.name for s in project.services if s.name in chosen]


def _by_service(actual: Iterable[dict], oneoff: bool = False) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for c in actual:
        if is_oneoff(c) and not oneoff:
            continue
        out.setdefault(labels_of(c).get(m.LABEL_SERVICE, ""), []).append(c)
    return out


def _orphan_names(project: Project, actual: Iterable[dict]) -> list[dict]:
    known = {s.name for s in project.services} | {s.name for s in project.disabled}
    return [c for c in actual if labels_of(c).get(m.LABEL_SERVICE, "") not in known]


def _service_steps(service: Service, containers: list[dict], replicas: int, want_hash: str, image_id: str,
                   opts: PlanOptions, forced: bool) -> list[Step]:
    """Steps converging one service's containers to ``replicas`` of the wanted configuration."""
    slots: dict[int, dict] = {}
    extra: list[dict] = []
    # a running container wins a disputed number; the others are surplus
    for c in sorted(containers, key=lambda c: (not is_running(c), c.get("Created", 0))):
        n = number_of(c)
        if 1 <= n <= replicas and n not in slots:
            slots[n] = c
        else:
            extra.append(c)
    steps = [Step(REMOVE, service.name, number_of(c), c["Id"], name_of(c))
             for c in sorted(extra, key=number_of, reverse=True)]
    for n in range(1, replicas + 1):
        c = slots.get(n)
        if c is None:
            steps.append(Step(CREATE, service.name, n))
            continue
        labels = labels_of(c)
        changed = labels.get(m.LABEL_CONFIG_HASH) != want_hash or \
            bool(image_id and labels.get(m.LABEL_IMAGE) and labels.get(m.LABEL_IMAGE) != image_id)
        if not opts.no_recreate and (opts.force_recreate or changed or forced):
            steps.append(Step(RECREATE, service.name, n, c["Id"], name_of(c)))
        elif not is_running(c) and not opts.no_start:
            steps.append(Step(START, service.name, n, c["Id"], name_of(c)))
    return steps


def plan(project: Project, actual_containers: list[dict], options: PlanOptions,
         hash_of: Callable[[Service], str]) -> Plan:
    """The steps ``up`` takes to bring ``actual_containers`` (this project's) to ``project``."""
    services = scope(project, options.services, options.no_deps)
    depth = depths(project.services)
    by_service = _by_service(actual_containers)
    scale = dict(options.scale)
    image_ids = dict(options.image_ids)
    steps: dict[str, list[Step]] = {}
    touched: set[str] = set()       # services recreated
    renewed: set[str] = set()       # services whose first container gets a new identity (created or recreated)
    for name in sorted(services, key=lambda n: depth[n]):
        svc = project.service(name)
        forced = svc.network_mode.startswith("service:") and svc.network_mode[len("service:"):] in renewed
        st = _service_steps(svc, by_service.get(name, []), max(0, scale.get(name, svc.replicas)), hash_of(svc),
                            image_ids.get(name, ""), options, forced)
        steps[name] = st
        if any(s.action == RECREATE for s in st):
            touched.add(name)
        if any(s.action in (CREATE, RECREATE) and s.number == 1 for s in st):
            renewed.add(name)
    # dependents with `restart: true` on a recreated service are restarted (those not recreated themselves)
    for svc in project.services:
        if not any(d.restart and d.service in touched for d in svc.depends_on):
            continue
        have = steps.setdefault(svc.name, [])
        busy = {s.container_id for s in have}
        for c in by_service.get(svc.name, []):
            if is_running(c) and c["Id"] not in busy:
                have.append(Step(RESTART, svc.name, number_of(c), c["Id"], name_of(c)))
    names = sorted(steps, key=lambda n: (depth[n], services.index(n) if n in services else len(services)))
    levels = _levels(names, depth, steps)
    orphans, warnings = _orphans(_orphan_names(project, actual_containers), options.remove_orphans)
    return Plan(levels=tuple(levels), orphans=tuple(orphans), warnings=tuple(warnings), start=not options.no_start,
                services=tuple(sorted(services, key=lambda n: (depth[n], services.index(n)))))


def _orphans(stray: list[dict], remove: bool) -> tuple[list[Step], list[str]]:
    """Removal steps for containers of services the project no longer has, or Compose's warning about them."""
    if stray and remove:
        return [Step(REMOVE, labels_of(c).get(m.LABEL_SERVICE, ""), number_of(c), c["Id"], name_of(c))
                for c in stray], []
    if stray:
        return [], [f"Found orphan containers ({', '.join(sorted(name_of(c) for c in stray))}) for this project. "
                    "If you removed or renamed this service in your compose file, you can run this command with "
                    "the --remove-orphans flag to clean it up."]
    return [], []


def _levels(names: list[str], depth: dict[str, int], steps: dict[str, list[Step]],
            reverse: bool = False) -> list[Level]:
    groups: dict[int, list[str]] = {}
    for n in names:
        groups.setdefault(depth.get(n, 0), []).append(n)
    order = sorted(groups, reverse=reverse)
    return [Level(tuple(groups[k]), tuple(s for n in groups[k] for s in steps.get(n, ()))) for k in order]


def plan_down(project: Project, actual: list[dict], remove_orphans: bool = False, volumes: bool = False,
              rmi: str = "", services: Iterable[str] = ()) -> Plan:
    """``down``: remove the project's containers (dependents first), then its networks; with ``volumes`` its
    named (not external) and anonymous volumes; with ``rmi`` ``local`` (images built without an ``image:``)
    or ``all`` its images. ``services`` limits the containers to those services."""
    only = set(services)
    everything = list(project.services) + list(project.disabled)
    depth = depths(everything)
    known = {s.name for s in everything}
    steps: dict[str, list[Step]] = {}
    for name, cs in _by_service(actual, oneoff=True).items():
        if name not in known or (only and name not in only):
            continue
        steps[name] = [Step(REMOVE, name, number_of(c), c["Id"], name_of(c))
                       for c in sorted(cs, key=number_of, reverse=True)]
    names = [s.name for s in everything if s.name in steps]
    levels = _levels(names, depth, steps, reverse=True)
    stray = [] if only else _orphan_names(project, actual)
    orphans, warnings = _orphans(stray, remove_orphans)
    networks = () if only else tuple(n.name for n in project.networks if not n.external)
    vols = tuple(v.name for v in project.volumes if not v.external) if volumes and not only else ()
    images: list[str] = []
    if rmi in ("local", "all"):
        for s in project.services:
            name = s.image if s.image else f"{project.name}-{s.name}".lower()
            if (rmi == "all" or not s.image) and name not in images and (s.image or s.build):
                images.append(name)
    elif rmi:
        raise ValueError(f"invalid --rmi value {rmi!r}: use local or all")
    return Plan(levels=tuple(levels), orphans=tuple(orphans), warnings=tuple(warnings), start=False,
                networks=networks, volumes=vols, anonymous_volumes=volumes, images=tuple(images),
                services=tuple(names))
