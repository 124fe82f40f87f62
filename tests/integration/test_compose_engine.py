"""The compose executor against a real berthd: up, idempotence, recreate, scale, volumes, down."""
from __future__ import annotations

import dataclasses
import uuid

import pytest

from berth.compose import model as m
from berth.compose.engine import Engine
from berth.compose.executor import ComposeError, Executor, UpOptions
from berth.compose.model import DependsOn, Healthcheck, MountSpec, Network, Project, Service, Volume
from berth.errors import NotFound
from tests.support.daemon import wait_for

SLEEP = ("sleep", "1000")


def make_project(name: str, *services: Service, volumes=()) -> Project:
    return Project(name=name, working_dir="/tmp", config_files=("/tmp/compose.yaml",), services=tuple(services),
                   networks=(Network("default", f"{name}_default"),), volumes=tuple(volumes))


def two_services(name: str) -> Project:
    db = Service("db", image="busybox:latest", command=SLEEP, stop_grace_period=1,
                 healthcheck=Healthcheck(("CMD-SHELL", "true"), interval=0.1, timeout=2, retries=3))
    web = Service("web", image="busybox:latest", command=SLEEP, stop_grace_period=1,
                  depends_on=(DependsOn("db", "service_healthy"),), environment=(("MODE", "one"),))
    return make_project(name, web, db)


@pytest.fixture
def project_name(daemon):
    """A unique project name; everything the project made is removed at the end."""
    name = "ct" + uuid.uuid4().hex[:8]
    yield name
    ex = Executor(make_project(name), daemon.host)
    ex.down(remove_orphans=True, volumes=True, timeout=0)
    eng = Engine(daemon.host)
    label = f"{m.LABEL_PROJECT}={name}"
    assert eng.containers(label) == [] and eng.networks(label) == [] and eng.volumes(label) == []


def ids(ex: Executor) -> dict[str, str]:
    return {c["Names"][0].lstrip("/"): c["Id"] for c in ex.containers()}


def test_up_is_idempotent_and_recreates_only_what_changed(daemon, project_name):
    events: list[tuple[str, str, str]] = []
    proj = two_services(project_name)
    ex = Executor(proj, daemon.host, on_event=lambda *e: events.append(e))
    ex.up()
    eng = ex.engine
    first = ids(ex)
    assert set(first) == {f"{project_name}-db-1", f"{project_name}-web-1"}
    assert ("network", f"{project_name}_default", "Created") in events
    assert ("container", f"{project_name}-web-1", "Started") in events
    assert ("container", f"{project_name}-db-1", "Healthy") in events
    # db was healthy before web started
    assert events.index(("container", f"{project_name}-db-1", "Healthy")) < \
        events.index(("container", f"{project_name}-web-1", "Started"))
    web = eng.inspect_container(f"{project_name}-web-1")
    labels = web["Config"]["Labels"]
    assert labels[m.LABEL_PROJECT] == project_name and labels[m.LABEL_SERVICE] == "web"
    assert labels[m.LABEL_NUMBER] == "1" and labels[m.LABEL_ONEOFF] == "False"
    assert labels[m.LABEL_DEPENDS_ON] == "db:service_healthy:false"
    assert labels[m.LABEL_IMAGE].startswith("sha256:")
    assert web["State"]["Running"] and "MODE=one" in web["Config"]["Env"]
    assert set(web["NetworkSettings"]["Networks"]) == {f"{project_name}_default"}
    net = eng.inspect_network(f"{project_name}_default")
    assert net["Labels"][m.LABEL_PROJECT] == project_name and net["Labels"][m.LABEL_NETWORK] == "default"
    # web reaches db by its service name
    exec_id = eng.exec_create(web["Id"], ["ping", "-c1", "-W2", "db"])
    out = b"".join(data for _, data in eng.exec_start(exec_id))
    assert eng.exec_inspect(exec_id)["ExitCode"] == 0, out

    # nothing changed: nothing recreated
    events.clear()
    plan = ex.up()
    assert plan.is_empty() and ids(ex) == first
    assert ("container", f"{project_name}-web-1", "Running") in events

    # web's environment changed: only web is recreated (under its own name, same network)
    changed = dataclasses.replace(proj, services=tuple(
        dataclasses.replace(s, environment=(("MODE", "two"),)) if s.name == "web" else s for s in proj.services))
    ex2 = Executor(changed, daemon.host)
    plan = ex2.up()
    assert [(s.action, s.service) for s in plan.steps] == [("recreate", "web")]
    second = ids(ex2)
    assert set(second) == set(first)
    assert second[f"{project_name}-db-1"] == first[f"{project_name}-db-1"]
    assert second[f"{project_name}-web-1"] != first[f"{project_name}-web-1"]
    web2 = eng.inspect_container(f"{project_name}-web-1")
    assert web2["State"]["Running"] and "MODE=two" in web2["Config"]["Env"]
    with pytest.raises(NotFound):
        eng.inspect_container(first[f"{project_name}-web-1"])

    # down: containers and the network are gone
    ex2.down(timeout=0)
    assert ex2.containers(oneoff=None) == []
    with pytest.raises(NotFound):
        eng.inspect_network(f"{project_name}_default")


def test_scale_up_and_down(daemon, project_name):
    svc = Service("worker", image="busybox:latest", command=SLEEP, stop_grace_period=0)
    ex = Executor(make_project(project_name, svc), daemon.host)
    ex.up()
    one = ids(ex)
    ex.scale("worker", 3)
    three = ids(ex)
    assert sorted(three) == [f"{project_name}-worker-{n}" for n in (1, 2, 3)]
    assert three[f"{project_name}-worker-1"] == one[f"{project_name}-worker-1"]
    assert all(c["State"] == "running" for c in ex.containers())
    removed: list[str] = []
    ex.on_event = lambda kind, name, status: removed.append(name) if status == "Removed" else None
    ex.scale("worker", 1)
    assert removed == [f"{project_name}-worker-3", f"{project_name}-worker-2"]
    assert ids(ex) == one


def test_named_volume_survives_down_until_volumes(daemon, project_name):
    svc = Service("app", image="busybox:latest", command=("sh", "-c", "test -f /data/f || echo hello > /data/f; "
                                                                       "exec sleep 1000"),
                  volumes=(MountSpec("volume", "/data", "data"),), stop_grace_period=0)
    proj = make_project(project_name, svc, volumes=(Volume("data", f"{project_name}_data"),))
    ex = Executor(proj, daemon.host)
    eng = ex.engine

    def read() -> str:
        cid = ex.containers()[0]["Id"]
        exec_id = eng.exec_create(cid, ["cat", "/data/f"])
        return b"".join(d for _, d in eng.exec_start(exec_id)).decode()

    ex.up()
    vol = eng.inspect_volume(f"{project_name}_data")
    assert vol["Labels"][m.LABEL_VOLUME] == "data" and vol["Labels"][m.LABEL_PROJECT] == project_name
    wait_for(lambda: read() == "hello\n", 10, what="the file in the volume")
    cid = ex.containers()[0]["Id"]
    eng.exec_start_detached(eng.exec_create(cid, ["sh", "-c", "echo changed > /data/f"]))
    wait_for(lambda: read() == "changed\n", 10, what="the file to change")
    ex.down(timeout=0)
    assert eng.inspect_volume(f"{project_name}_data")
    ex.up()
    wait_for(lambda: ex.containers() and ex.containers()[0]["State"] == "running", 10, what="running")
    assert read() == "changed\n"
    ex.down(volumes=True, timeout=0)
    with pytest.raises(NotFound):
        eng.inspect_volume(f"{project_name}_data")


def test_failed_dependency_names_the_service(daemon, project_name):
    db = Service("db", image="busybox:latest", command=SLEEP, stop_grace_period=0,
                 healthcheck=Healthcheck(("CMD-SHELL", "false"), interval=0.1, timeout=2, retries=1))
    web = Service("web", image="busybox:latest", command=SLEEP, depends_on=(DependsOn("db", "service_healthy"),))
    ex = Executor(make_project(project_name, web, db), daemon.host)
    with pytest.raises(ComposeError) as info:
        ex.up()
    assert info.value.service == "web" and "unhealthy" in info.value.message
    states = {c["Names"][0].lstrip("/"): c["State"] for c in ex.containers()}
    assert states[f"{project_name}-db-1"] == "running"      # what started stays running
    assert states[f"{project_name}-web-1"] == "created"


def test_completed_successfully_and_wait(daemon, project_name):
    init = Service("init", image="busybox:latest", command=("true",))
    app = Service("app", image="busybox:latest", command=SLEEP, stop_grace_period=0,
                  depends_on=(DependsOn("init", "service_completed_successfully"),))
    ex = Executor(make_project(project_name, app, init), daemon.host)
    ex.up(UpOptions(wait=True, wait_timeout=30))
    states = {c["Labels"][m.LABEL_SERVICE]: c["State"] for c in ex.containers()}
    assert states == {"init": "exited", "app": "running"}
    assert ex.engine.wait(f"{project_name}-init-1") == 0
    ex.engine.disconnect(f"{project_name}_default", f"{project_name}-app-1")
    assert not ex.engine.inspect_container(f"{project_name}-app-1")["NetworkSettings"]["Networks"]
    # (berthd then refuses to start a container left on no network: services/sandboxes.py:71-73)
    ex.engine.connect(f"{project_name}_default", f"{project_name}-app-1", {"Aliases": ["app"]})
    assert ex.engine.inspect_container(f"{project_name}-app-1")["NetworkSettings"]["Networks"]
    ex.stop()
    assert {c["State"] for c in ex.containers()} == {"exited"}
    ex.start(["app"])
    assert {c["Labels"][m.LABEL_SERVICE]: c["State"] for c in ex.containers()}["app"] == "running"


def test_external_network_must_exist(daemon, project_name):
    proj = dataclasses.replace(make_project(project_name, Service("a", image="busybox:latest", command=SLEEP)),
                               networks=(Network("default", f"{project_name}_missing", external=True),))
    with pytest.raises(ComposeError, match="declared as external, but could not be found"):
        Executor(proj, daemon.host).up()


def test_build_ports_logs_and_files(daemon, project_name, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox:latest\nCOPY hello.txt /hello.txt\n")
    (ctx / "hello.txt").write_text("built\n")
    (ctx / "secret.key").write_text("no\n")
    (ctx / ".dockerignore").write_text("*.key\n")
    app = Service("app", build=m.BuildSpec(context=str(ctx)), stop_grace_period=0, replicas=2,
                  command=("sh", "-c", "cat /hello.txt; ls /secret.key || echo missing >&2; cat /conf; "
                                       "exec sleep 1000"),
                  ports=(m.PortSpec(80, "28000-28002", "127.0.0.1"),),
                  configs=(m.FileRef("conf", "/conf"),))
    proj = dataclasses.replace(make_project(project_name, app),
                               configs=(m.FileSource("conf", f"{project_name}_conf", content="inline config\n"),))
    events: list = []
    ex = Executor(proj, daemon.host, on_event=lambda *e: events.append(e))
    ex.up()
    eng = ex.engine
    assert ("image", f"{project_name}-app", "Built") in events
    for n in (1, 2):
        c = eng.inspect_container(f"{project_name}-app-{n}")
        assert c["Config"]["Image"] == f"{project_name}-app"
        assert c["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(28000 + n - 1)}]}

    def logs() -> tuple[bytes, bytes]:
        out = {1: b"", 2: b""}
        for stream, data in eng.logs(f"{project_name}-app-1"):
            out[stream] += data
        return out[1], out[2]
    wait_for(lambda: b"inline config" in logs()[0], 10, what="the logs")
    stdout, stderr = logs()
    assert stdout.startswith(b"built\n") and b"missing" in stderr
    # an unchanged second up does not rebuild
    events.clear()
    assert ex.up().is_empty() and not [e for e in events if e[0] == "image"]
    ex.down(rmi="local", timeout=0)
    with pytest.raises(NotFound):
        eng.inspect_image(f"{project_name}-app")
    assert not (tmp_path / "berth-compose" / project_name).exists()


def test_recreate_keeps_anonymous_volume_and_networks(daemon, project_name):
    vpn = Service("vpn", image="busybox:latest", command=SLEEP, stop_grace_period=0,
                  networks=(m.ServiceNetwork("default"), m.ServiceNetwork("back", ("tunnel",))))
    side = Service("side", image="busybox:latest", command=SLEEP, stop_grace_period=0, network_mode="service:vpn")
    app = Service("app", image="busybox:latest", command=SLEEP, stop_grace_period=0,
                  volumes=(MountSpec("volume", "/cache"),), networks=(m.ServiceNetwork("back"),))
    proj = dataclasses.replace(make_project(project_name, vpn, side, app),
                               networks=(Network("default", f"{project_name}_default"),
                                         Network("back", f"{project_name}_back")))
    ex = Executor(proj, daemon.host)
    ex.up()
    eng = ex.engine
    v = eng.inspect_container(f"{project_name}-vpn-1")
    assert set(v["NetworkSettings"]["Networks"]) == {f"{project_name}_default", f"{project_name}_back"}
    s = eng.inspect_container(f"{project_name}-side-1")
    assert s["HostConfig"]["NetworkMode"] == f"container:{v['Id']}"
    exec_id = eng.exec_create(f"{project_name}-app-1", ["ping", "-c1", "-W2", "tunnel"])
    list(eng.exec_start(exec_id))
    assert eng.exec_inspect(exec_id)["ExitCode"] == 0
    a = eng.inspect_container(f"{project_name}-app-1")
    vol = [mt["Name"] for mt in a["Mounts"] if mt["Destination"] == "/cache"]
    plan = ex.up(UpOptions(force_recreate=True))
    assert sorted(s.service for s in plan.steps) == ["app", "side", "vpn"]
    a2 = eng.inspect_container(f"{project_name}-app-1")
    assert a2["Id"] != a["Id"] and [mt["Name"] for mt in a2["Mounts"] if mt["Destination"] == "/cache"] == vol
    v2 = eng.inspect_container(f"{project_name}-vpn-1")
    s2 = eng.inspect_container(f"{project_name}-side-1")
    assert s2["HostConfig"]["NetworkMode"] == f"container:{v2['Id']}" and s2["State"]["Running"]
    ex.down(volumes=True, timeout=0)
    with pytest.raises(NotFound):
        eng.inspect_volume(vol[0])


def test_verbs_events_and_pull_failure(daemon, project_name):
    a = Service("a", image="busybox:latest", command=SLEEP, stop_grace_period=0)
    b = Service("b", image="busybox:latest", command=SLEEP, stop_grace_period=0, depends_on=(DependsOn("a"),))
    ex = Executor(make_project(project_name, a, b), daemon.host)
    ex.up()
    eng = ex.engine

    def states() -> dict[str, str]:
        return {c["Labels"][m.LABEL_SERVICE]: c["State"] for c in ex.containers()}
    before = {c["Id"]: c for c in ex.containers()}
    ex.pause(["b"])
    assert states() == {"a": "running", "b": "paused"}
    ex.unpause()
    assert states() == {"a": "running", "b": "running"}
    ex.restart()
    assert states() == {"a": "running", "b": "running"} and set(before) == {c["Id"] for c in ex.containers()}
    ex.kill(["b"])
    wait_for(lambda: states()["b"] == "exited", 10, what="b to die")
    ex.rm(["b"])
    assert states() == {"a": "running"}
    ex.rm(stop=True, timeout=0)
    assert states() == {}
    label = f"{m.LABEL_PROJECT}={project_name}"
    seen = [e for e in eng.events(label, since="0", until=str(int(__import__("time").time()) + 1))
            if e.get("Type") == "container"]
    assert {"create", "start", "pause", "unpause", "kill", "destroy"} <= {e.get("Action", e.get("status")) for e in seen}
    bad = Service("c", image=f"127.0.0.1:1/nope-{project_name}:latest", command=SLEEP)
    with pytest.raises(ComposeError) as info:
        Executor(make_project(project_name, bad), daemon.host).up()
    assert info.value.service == "c" and "nope" in info.value.message
