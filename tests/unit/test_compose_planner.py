"""The compose planner: what up/down decide from the project and the engine's containers (pure)."""
from __future__ import annotations

import dataclasses

import pytest

from berth.compose import model as m
from berth.compose.model import DependsOn, Network, Project, Service, Volume
from berth.compose.planner import PlanOptions, depths, plan, plan_down


def h(service: Service) -> str:
    return f"{service.name}:{service.image}:{dict(service.environment)}"


def project(*services: Service, name: str = "p") -> Project:
    return Project(name=name, working_dir="/w", config_files=("/w/compose.yaml",), services=tuple(services),
                   networks=(Network("default", f"{name}_default"),), volumes=(Volume("data", f"{name}_data"),))


def ctr(proj: Project, service: str, number: int, state: str = "running", hash_: str | None = None,
        oneoff: bool = False, image: str = "") -> dict:
    svc = next((s for s in proj.services if s.name == service), None)
    labels = {m.LABEL_PROJECT: proj.name, m.LABEL_SERVICE: service, m.LABEL_NUMBER: str(number),
              m.LABEL_ONEOFF: "True" if oneoff else "False",
              m.LABEL_CONFIG_HASH: hash_ if hash_ is not None else (h(svc) if svc else "x")}
    if image:
        labels[m.LABEL_IMAGE] = image
    return {"Id": f"{service}{number}".ljust(64, "0"), "Names": [f"/{proj.name}-{service}-{number}"],
            "Labels": labels, "State": state}


def actions(p) -> list[tuple[str, str, int]]:
    return [(s.action, s.service, s.number) for s in p.steps]


WEB = Service("web", image="busybox", depends_on=(DependsOn("db"),))
DB = Service("db", image="busybox")


def test_fresh_project_creates_in_dependency_order():
    proj = project(WEB, DB)
    p = plan(proj, [], PlanOptions(), h)
    assert [lv.services for lv in p.levels] == [("db",), ("web",)]
    assert actions(p) == [("create", "db", 1), ("create", "web", 1)]
    assert p.start and p.services == ("db", "web")


def test_unchanged_is_nothing():
    proj = project(WEB, DB)
    p = plan(proj, [ctr(proj, "db", 1), ctr(proj, "web", 1)], PlanOptions(), h)
    assert p.is_empty()


def test_stopped_is_started_unless_no_start():
    proj = project(WEB, DB)
    actual = [ctr(proj, "db", 1, "exited"), ctr(proj, "web", 1)]
    assert actions(plan(proj, actual, PlanOptions(), h)) == [("start", "db", 1)]
    p = plan(proj, actual, PlanOptions(no_start=True), h)
    assert p.is_empty() and not p.start


def test_changed_hash_recreates_only_that_service():
    proj = project(WEB, DB)
    actual = [ctr(proj, "db", 1, hash_="old"), ctr(proj, "web", 1)]
    p = plan(proj, actual, PlanOptions(), h)
    assert actions(p) == [("recreate", "db", 1)]
    assert p.steps[0].container_id == actual[0]["Id"] and p.steps[0].container_name == "p-db-1"


def test_restart_true_dependents_are_restarted():
    web = dataclasses.replace(WEB, depends_on=(DependsOn("db", restart=True),))
    other = Service("other", image="busybox", depends_on=(DependsOn("db"),))
    proj = project(web, DB, other)
    actual = [ctr(proj, "db", 1, hash_="old"), ctr(proj, "web", 1), ctr(proj, "other", 1)]
    assert actions(plan(proj, actual, PlanOptions(), h)) == [("recreate", "db", 1), ("restart", "web", 1)]


def test_changed_image_recreates():
    proj = project(DB)
    actual = [ctr(proj, "db", 1, image="sha256:old")]
    assert actions(plan(proj, actual, PlanOptions(image_ids=(("db", "sha256:new"),)), h)) == [("recreate", "db", 1)]
    assert plan(proj, actual, PlanOptions(image_ids=(("db", "sha256:old"),)), h).is_empty()


def test_force_and_no_recreate():
    proj = project(WEB, DB)
    same = [ctr(proj, "db", 1), ctr(proj, "web", 1)]
    assert actions(plan(proj, same, PlanOptions(force_recreate=True), h)) == [
        ("recreate", "db", 1), ("recreate", "web", 1)]
    changed = [ctr(proj, "db", 1, hash_="old"), ctr(proj, "web", 1, "exited", hash_="old")]
    assert actions(plan(proj, changed, PlanOptions(no_recreate=True), h)) == [("start", "web", 1)]


def test_scale_up_and_down_highest_first():
    proj = project(DB)
    one = [ctr(proj, "db", 1)]
    assert actions(plan(proj, one, PlanOptions(scale=(("db", 3),)), h)) == [("create", "db", 2), ("create", "db", 3)]
    three = [ctr(proj, "db", n) for n in (1, 2, 3)]
    assert actions(plan(proj, three, PlanOptions(scale=(("db", 1),)), h)) == [("remove", "db", 3), ("remove", "db", 2)]
    assert actions(plan(proj, three, PlanOptions(scale=(("db", 0),)), h)) == [
        ("remove", "db", 3), ("remove", "db", 2), ("remove", "db", 1)]
    proj2 = project(dataclasses.replace(DB, replicas=2))
    assert actions(plan(proj2, three, PlanOptions(), h)) == [("remove", "db", 3)]


def test_gap_in_numbers_is_filled():
    proj = project(dataclasses.replace(DB, replicas=3))
    assert actions(plan(proj, [ctr(proj, "db", 1), ctr(proj, "db", 3)], PlanOptions(), h)) == [("create", "db", 2)]


def test_orphans_warn_or_are_removed():
    proj = project(DB)
    actual = [ctr(proj, "db", 1), ctr(proj, "gone", 1)]
    p = plan(proj, actual, PlanOptions(), h)
    assert p.is_empty() and "p-gone-1" in p.warnings[0] and "--remove-orphans" in p.warnings[0]
    p = plan(proj, actual, PlanOptions(remove_orphans=True), h)
    assert actions(p) == [("remove", "gone", 1)] and not p.warnings


def test_disabled_services_are_not_orphans():
    proj = dataclasses.replace(project(DB), disabled=(Service("debug", image="busybox", profiles=("dbg",)),))
    p = plan(proj, [ctr(proj, "db", 1), ctr(proj, "debug", 1)], PlanOptions(), h)
    assert p.is_empty() and not p.warnings


def test_oneoff_containers_are_ignored_by_up():
    proj = project(DB)
    p = plan(proj, [ctr(proj, "db", 1), ctr(proj, "db", 7, oneoff=True)], PlanOptions(), h)
    assert p.is_empty()


def test_named_services_bring_their_dependencies_unless_no_deps():
    proj = project(WEB, DB, Service("cache", image="busybox"))
    assert actions(plan(proj, [], PlanOptions(services=("web",)), h)) == [("create", "db", 1), ("create", "web", 1)]
    assert actions(plan(proj, [], PlanOptions(services=("web",), no_deps=True), h)) == [("create", "web", 1)]
    with pytest.raises(ValueError, match="no such service: nope"):
        plan(proj, [], PlanOptions(services=("nope",)), h)


def test_diamond_levels():
    a = Service("a", image="x")
    b = Service("b", image="x", depends_on=(DependsOn("a"),))
    c = Service("c", image="x", depends_on=(DependsOn("a", condition="service_healthy"),))
    d = Service("d", image="x", depends_on=(DependsOn("b"), DependsOn("c")))
    proj = project(d, c, b, a)
    p = plan(proj, [], PlanOptions(), h)
    assert [lv.services for lv in p.levels] == [("a",), ("c", "b"), ("d",)]
    assert p.services == ("a", "c", "b", "d")
    down = plan_down(proj, [ctr(proj, s, 1) for s in "abcd"])
    assert [lv.services for lv in down.levels] == [("d",), ("c", "b"), ("a",)]


def test_network_mode_service_is_a_dependency_and_follows_recreation():
    vpn = Service("vpn", image="x")
    app = Service("app", image="x", network_mode="service:vpn")
    proj = project(app, vpn)
    assert depths(proj.services) == {"vpn": 0, "app": 1}
    p = plan(proj, [ctr(proj, "vpn", 1, hash_="old"), ctr(proj, "app", 1)], PlanOptions(), h)
    assert actions(p) == [("recreate", "vpn", 1), ("recreate", "app", 1)]


def test_cycle_is_an_error():
    proj = project(Service("a", image="x", depends_on=(DependsOn("b"),)),
                   Service("b", image="x", depends_on=(DependsOn("a"),)))
    with pytest.raises(ValueError, match="dependency cycle"):
        plan(proj, [], PlanOptions(), h)


def test_down_removes_everything_in_reverse_order():
    proj = dataclasses.replace(project(WEB, DB), volumes=(Volume("data", "p_data"), Volume("ext", "ext", external=True)),
                               networks=(Network("default", "p_default"), Network("out", "out", external=True)))
    actual = [ctr(proj, "db", 1), ctr(proj, "web", 1), ctr(proj, "web", 2), ctr(proj, "web", 5, oneoff=True),
              ctr(proj, "old", 1)]
    p = plan_down(proj, actual)
    assert actions(p) == [("remove", "web", 5), ("remove", "web", 2), ("remove", "web", 1), ("remove", "db", 1)]
    assert p.networks == ("p_default",) and p.volumes == () and not p.anonymous_volumes and p.warnings
    p = plan_down(proj, actual, remove_orphans=True, volumes=True)
    assert actions(p)[0] == ("remove", "old", 1)
    assert p.volumes == ("p_data",) and p.anonymous_volumes


def test_down_rmi():
    built = Service("app", build=m.BuildSpec(context="/w"))
    proj = project(built, DB)
    assert plan_down(proj, [], rmi="local").images == ("p-app",)
    assert plan_down(proj, [], rmi="all").images == ("p-app", "busybox")
    with pytest.raises(ValueError):
        plan_down(proj, [], rmi="some")
