"""``berth compose`` scenarios (tests/compose/scenarios/<name>/) against a real berthd, checked against what
Docker Compose v2 documents: build + depends_on/healthcheck + service-name DNS, named volumes across down/up,
scaling and DNS round robin, profiles, override files, .env interpolation, convergence, one-off runs, watch,
bad input, logs, down and config.

Each test copies its scenario to a temporary directory, runs ``berth -H <daemon> compose -p <unique> ...`` in it,
and the ``compose`` fixture (conftest.py) ends with ``down -v --remove-orphans`` and checks that no container,
network or volume with the project's label is left. Needs root, runc and busybox.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from tests.compose.conftest import BIN, clean_env, uniq
from tests.support.daemon import wait_for

pytestmark = pytest.mark.root

IPV4 = re.compile(r"^PING \S+ \(([\d.]+)\)", re.M)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def assert_whole_progress_lines(stderr: str) -> None:
    """Progress lines (Compose v2's plain form, `` Container NAME  Stopped``) stay whole when several containers
    change at once."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    bad = [line for line in lines if not re.fullmatch(r" (Container|Network|Volume|Image) \S+  \S+", line)]
    assert lines and not bad, stderr


def running_services(proj) -> dict[str, str]:
    """``ps --format json``: container name → State, for the running containers."""
    return {c["Name"]: c["State"] for c in proj.ps_json()}


def ip_of(proj, container: str, network: str) -> str:
    return proj.inspect(container)["NetworkSettings"]["Networks"][network]["IPAddress"]


# ---------------------------------------------------------------------------------------------- (1) webapp

def test_webapp_build_healthy_dependency_and_service_dns(compose):
    proj = compose("webapp")
    proj.built_images.append(f"{proj.name}-web")
    proj.run("up", "-d", "--wait", timeout=240)

    api, web = proj.cname("api"), proj.cname("web")
    assert proj.inspect(api)["State"]["Health"]["Status"] == "healthy"
    # web fetched api's page by service name at start (it only started once api was healthy), then serves it
    def fetched():
        r = proj.client("wget -q -O - http://web/from-api && wget -q -O - http://web/")
        return r.stdout.decode() if r.returncode == 0 else None
    body = wait_for(fetched, 60, 0.5, "web to serve /from-api")
    assert "hello-from-api" in body and "hello-from-web" in body, body

    states = running_services(proj)
    assert states == {api: "running", web: "running"}, states
    table = proj.out("ps")
    assert api in table and web in table, table
    # the built image is named PROJECT-SERVICE
    status, img = proj.daemon.api("GET", f"/images/{proj.name}-web/json")
    assert status == 200, img
    # Compose >= 2.21 prints JSON Lines (one object per container, like `docker ps --format json`), not an array
    lines = proj.out("ps", "--format", "json").splitlines()
    assert len(lines) == 2 and all(json.loads(line)["Name"] in (api, web) for line in lines), lines


# ---------------------------------------------------------------------------------------------- (2) volumes

def test_named_volume_survives_down_and_goes_with_down_v(compose):
    proj = compose("volume-survives")
    proj.run("run", "--rm", "-T", "app", "sh", "-c", "echo persisted > /data/f")
    vol = f"{proj.name}_data"
    assert [v["Name"] for v in proj.volumes()] == [vol]

    proj.run("down")
    assert [v["Name"] for v in proj.volumes()] == [vol], "down without -v must keep named volumes"
    assert not proj.containers()

    proj.run("up", "-d")
    assert proj.exec("app", "cat", "/data/f") == "persisted"

    proj.run("down", "-v")
    assert not proj.volumes(), proj.volumes()
    out = proj.out("run", "--rm", "-T", "app", "sh", "-c", "cat /data/f 2>/dev/null || echo missing").strip()
    assert out == "missing"


# ---------------------------------------------------------------------------------------------- (3) scale

def dns_answers(proj, client: str, name: str, times: int) -> list[list[str]]:
    """The A records the container's resolver gives for ``name``, asked ``times`` times from ``client``'s network
    namespace (busybox's nslookup crashes, and its glibc getaddrinfo sorts answers by RFC 3484, so ping and wget
    always pick the same replica whatever order the server sends)."""
    pid = proj.inspect(client)["State"]["Pid"]
    with open(f"/proc/{pid}/root/etc/resolv.conf") as f:
        server = re.search(r"^nameserver\s+(\S+)", f.read(), re.M)[1]
    r = subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", DNS_QUERY, server, name,
                        str(times)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split() for line in r.stdout.splitlines()]


DNS_QUERY = """
import socket, sys
from dnslib import DNSRecord
server, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(DNSRecord.question(name).pack(), (server, 53))
    print(" ".join(str(rr.rdata) for rr in DNSRecord.parse(s.recv(4096)).rr if rr.rtype == 1))
"""


def test_scale_up_dns_round_robin_and_scale_down(compose, made):
    proj = compose("scaled")
    proj.run("up", "-d", "--scale", "web=3")
    names = [proj.cname("web", n) for n in (1, 2, 3)]
    assert running_services(proj) == {n: "running" for n in names}
    ips = {ip_of(proj, n, proj.default_network) for n in names}
    hostnames = {n: proj.inspect(n)["Config"]["Hostname"] for n in names}
    assert len(ips) == 3 and len(set(hostnames.values())) == 3, (ips, hostnames)

    client = made.container(uniq("bt-client"))
    proj.daemon.cli("run", "-d", "--name", client, "--network", proj.default_network, "busybox:latest",
                    "sleep", "600")
    # the service name answers with every replica, in a rotating order
    answers = dns_answers(proj, client, "web", 12)
    assert all(set(a) == ips and len(a) == 3 for a in answers), (answers, ips)
    assert len({tuple(a) for a in answers}) > 1, f"the order never changes: {answers}"
    # and each replica serves its own hostname, by container name and (one of them) by service name
    for n in names:
        got = proj.daemon.cli("exec", client, "wget", "-q", "-O", "-", f"http://{n}/hostname").stdout.decode()
        assert got.strip() == hostnames[n], (n, got)
    got = proj.daemon.cli("exec", client, "wget", "-q", "-O", "-", "http://web/hostname").stdout.decode()
    assert got.strip() in hostnames.values(), got

    proj.run("up", "-d", "--scale", "web=1")
    left = {c["Names"][0].lstrip("/") for c in proj.containers()}
    assert left == {names[0]}, left
    only = ip_of(proj, names[0], proj.default_network)
    assert dns_answers(proj, client, "web", 3) == [[only]] * 3


# ---------------------------------------------------------------------------------------------- (4) profiles

def test_profiles(compose):
    proj = compose("profiles")
    proj.run("up", "-d")
    assert set(running_services(proj)) == {proj.cname("app")}

    proj.run("--profile", "debug", "up", "-d")
    assert set(running_services(proj)) == {proj.cname("app"), proj.cname("debugger")}

    proj.run("--profile", "debug", "down")
    assert not proj.containers()
    # COMPOSE_PROFILES does the same as --profile
    proj.run("up", "-d", env={"COMPOSE_PROFILES": "debug"})
    assert set(running_services(proj)) == {proj.cname("app"), proj.cname("debugger")}


# ---------------------------------------------------------------------------------------------- (5) override

def test_override_file_merged(compose):
    proj = compose("override")
    model = yaml.safe_load(proj.out("config"))
    app = model["services"]["app"]
    assert app["environment"] == {"GREETING": "override", "ONLY_BASE": "yes", "ONLY_OVERRIDE": "yes"}, app
    assert sorted(int(p["target"]) for p in app["ports"]) == [80, 81], app["ports"]
    # an explicit -f leaves the override file out
    base = yaml.safe_load(proj.out("-f", "compose.yaml", "config"))["services"]["app"]
    assert base["environment"] == {"GREETING": "base", "ONLY_BASE": "yes"}, base
    assert [int(p["target"]) for p in base["ports"]] == [80]

    proj.run("up", "-d")
    env = proj.exec("app", "env").splitlines()
    assert "GREETING=override" in env and "ONLY_BASE=yes" in env and "ONLY_OVERRIDE=yes" in env, env
    bindings = proj.inspect(proj.cname("app"))["HostConfig"]["PortBindings"]
    assert set(bindings) == {"80/tcp", "81/tcp"}, bindings
    for port in ("80", "81"):
        out = proj.out("port", "app", port).strip()
        assert re.fullmatch(r"127\.0\.0\.1:\d+", out), out


# ---------------------------------------------------------------------------------------------- (6) .env

def test_dotenv_interpolation_and_required_variable(compose):
    proj = compose("dotenv")
    app = yaml.safe_load(proj.out("config"))["services"]["app"]
    assert app["image"] == "busybox:latest"
    assert app["environment"] == {"MSG": "hello from dotenv", "DEFAULTED": "fallback"}, app["environment"]

    # the shell's environment wins over .env; --env-file replaces .env
    shell = yaml.safe_load(proj.out("config", env={"MSG": "from shell"}))["services"]["app"]
    assert shell["environment"]["MSG"] == "from shell"
    (proj.dir / "other.env").write_text("MSG=from other env file\n")
    other = yaml.safe_load(proj.out("--env-file", "other.env", "config"))["services"]["app"]
    assert other["environment"]["MSG"] == "from other env file"
    assert other["image"] == "busybox:x", "TAG is not in other.env, so ${TAG:-x} gives x"

    proj.run("up", "-d")
    assert proj.getenv("app", "MSG") == "hello from dotenv"

    bad = proj.run("-f", "required.yaml", "config", check=False)
    assert bad.returncode != 0
    assert "REQ must be set" in bad.stderr, bad.stderr
    ok = yaml.safe_load(proj.out("-f", "required.yaml", "config", env={"REQ": "given"}))
    assert ok["services"]["app"]["environment"] == {"REQ": "given"}


# ---------------------------------------------------------------------------------------------- (7) converge

def test_up_converges_and_recreates_only_what_changed(compose):
    proj = compose("converge")
    proj.run("up", "-d")
    first = proj.ids()
    a, b = proj.cname("a"), proj.cname("b")
    assert set(first) == {a, b}
    started_b = proj.inspect(b)["State"]["StartedAt"]

    again = proj.both("up", "-d")
    assert proj.ids() == first, "a second up with nothing changed must recreate nothing"
    assert "Running" in again, again
    assert proj.inspect(b)["State"]["StartedAt"] == started_b

    compose_file = proj.dir / "compose.yaml"
    compose_file.write_text(compose_file.read_text().replace('VERSION: "1"', 'VERSION: "2"'))
    out = proj.both("up", "-d")
    now = proj.ids()
    assert set(now) == {a, b}, now
    assert now[a] != first[a], "the changed service must be recreated"
    assert now[b] == first[b], "the unchanged service must be left alone"
    assert proj.inspect(b)["State"]["StartedAt"] == started_b, "nor restarted"
    assert re.search(rf"{a}\s+Recreated?", out), out
    assert proj.getenv("a", "VERSION") == "2"


# ---------------------------------------------------------------------------------------------- (8) run --rm

def test_run_rm_leaves_no_one_off_container(compose):
    proj = compose("run-rm")
    r = proj.run("run", "--rm", "svc", "echo", "hi")
    assert r.stdout.replace("\r", "").strip() == "hi", (r.stdout, r.stderr)
    assert not proj.containers(), proj.containers()   # no one-off left, and svc itself was not started
    # the one-off's exit code is compose's
    r = proj.run("run", "--rm", "-T", "svc", "sh", "-c", "exit 3", check=False)
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert not proj.containers(), proj.containers()


def test_exec_and_run_of_a_missing_command_fail_fast(compose):
    proj = compose("run-rm")
    proj.run("up", "-d")
    for args in (["run", "--rm", "-T", "svc", "no-such-command"], ["exec", "-T", "svc", "no-such-command"]):
        r = proj.run(*args, check=False, timeout=60)
        assert r.returncode in (126, 127), (args, r.returncode, r.stderr)
        said = r.stdout + r.stderr  # dockerd writes an exec's start failure into its stream (stdout)
        assert "no-such-command" in said and "not found" in said, (args, said)
    assert set(proj.ids()) == {proj.cname("svc")}, "the one-off is removed even when its command is missing"


# ---------------------------------------------------------------------------------------------- (9) watch

def test_watch_syncs_changed_files(compose, daemon):
    proj = compose("watch")
    proj.built_images.append(f"{proj.name}-svc")
    proj.run("up", "-d", "--build", timeout=240)
    assert proj.exec("svc", "cat", "/app/file") == "v1"

    log = open(proj.dir.parent / f"{proj.name}-watch.log", "w+b")
    watcher = subprocess.Popen([str(BIN / "berth"), "-H", daemon.host, "compose", "-p", proj.name, "watch"],
                               cwd=proj.dir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env=clean_env())
    try:
        token = "v2-" + uuid.uuid4().hex[:8]
        src = proj.dir / "src"
        last_write = [0.0]

        def synced():
            if watcher.poll() is not None:
                log.seek(0)
                raise AssertionError(f"compose watch exited {watcher.returncode}: {log.read().decode()[-3000:]}")
            if time.monotonic() - last_write[0] > 3:   # (re)write until the watcher, once ready, notices
                (src / "file").write_text(token + "\n")
                (src / "added.txt").write_text("new file\n")
                last_write[0] = time.monotonic()
            return proj.exec("svc", "cat", "/app/file", check=False) == token and \
                proj.exec("svc", "cat", "/app/added.txt", check=False) == "new file"
        wait_for(synced, 90, 0.5, "compose watch to sync src/ into /app")
        assert proj.ids().keys() == {proj.cname("svc")}
    finally:
        watcher.terminate()
        try:
            watcher.wait(20)
        except subprocess.TimeoutExpired:
            watcher.kill()
            watcher.wait(10)
        log.close()


# ---------------------------------------------------------------------------------------------- (10) bad input

BAD = [
    ("not-yaml.yaml", ("config", "up"), ["not-yaml.yaml"]),
    ("unknown-key.yaml", ("config", "up"), ["bogus_key", "app"]),
    ("unknown-dep.yaml", ("config", "up"), ["ghost", "app"]),
    ("cycle.yaml", ("up",), ["cycle", "chick", "egg"]),
    ("no-image.yaml", ("config", "up"), ["imageless"]),
]


@pytest.mark.parametrize("name,commands,words", BAD, ids=[b[0].removesuffix(".yaml") for b in BAD])
def test_bad_input_fails_and_creates_nothing(compose, name, commands, words):
    proj = compose("bad")
    for command in commands:
        args = ["-f", name] + (["config"] if command == "config" else ["up", "-d"])
        r = proj.run(*args, check=False, timeout=60)
        text = r.stdout + r.stderr
        assert r.returncode != 0, f"{args} succeeded: {text}"
        for w in words:
            assert w.lower() in text.lower(), f"{args}: error does not name {w!r}: {text}"
        assert "Traceback" not in text, text
        assert not proj.leftovers(), proj.leftovers()


# ---------------------------------------------------------------------------------------------- (11) logs

def test_logs_prefix_tail_and_timestamps(compose):
    proj = compose("logs")
    proj.run("up", "-d")
    prefix = {s: rf"^(?:{s}-1|{re.escape(proj.cname(s))})\s+\| " for s in ("alpha", "beta")}

    def both_logged():
        out = proj.out("logs", "--no-color")
        return out if "alpha-two" in out and "beta-two" in out else None
    out = wait_for(both_logged, 30, 0.3, "both services' lines in compose logs")
    for s in ("alpha", "beta"):
        for word in ("one", "two"):
            assert re.search(prefix[s] + f"{s}-{word}$", out, re.M), (s, word, out)

    tail = proj.out("logs", "--no-color", "--tail", "1")
    assert "alpha-two" in tail and "beta-two" in tail, tail
    assert "alpha-one" not in tail and "beta-one" not in tail, tail

    stamped = proj.out("logs", "--no-color", "-t", "alpha")
    lines = [line for line in stamped.splitlines() if line.strip()]
    assert len(lines) == 2 and all(TIMESTAMP.search(line) for line in lines), stamped
    assert "beta" not in stamped

    bare = proj.out("logs", "--no-log-prefix", "beta")
    assert bare.split() == ["beta-one", "beta-two"], bare
    assert_whole_progress_lines(proj.run("down").stderr)


# ---------------------------------------------------------------------------------------------- (12) down

def test_down_removes_containers_and_networks(compose):
    proj = compose("down")
    proj.run("up", "-d")
    nets = {f"{proj.name}_frontnet", f"{proj.name}_backnet"}
    assert {n["Name"] for n in proj.networks()} == nets
    assert len(proj.containers()) == 2

    # Compose v2 takes a project down by its name alone, from a directory without any compose file
    elsewhere = proj.dir.parent / f"{proj.name}-elsewhere"
    elsewhere.mkdir()
    assert_whole_progress_lines(proj.run("down", cwd=elsewhere).stderr)
    assert not proj.containers()
    assert not proj.networks(), proj.networks()
    assert [v["Name"] for v in proj.volumes()] == [f"{proj.name}_store"], "down keeps volumes without -v"
    assert proj.out("ps", "-a", "-q").strip() == ""
    rows = [line for line in proj.out("ps", "-a").splitlines() if line.strip()]
    assert len(rows) <= 1, rows   # a header at most
    proj.run("down", "-v")
    assert not proj.volumes()


# ---------------------------------------------------------------------------------------------- (13) config

def test_config_prints_the_resolved_model(compose):
    proj = compose("config")
    model = yaml.safe_load(proj.out("config"))
    assert model["name"] == proj.name, "-p wins over the file's name:"
    assert set(model["services"]) == {"db", "web"}
    db, web = model["services"]["db"], model["services"]["web"]
    assert web["image"] == "busybox:latest"
    assert db["environment"] == {"PORT": "5432"}, db["environment"]
    [port] = db["ports"]
    assert int(port["target"]) == 5432 and str(port["published"]) == "15432" and port["host_ip"] == "127.0.0.1"
    assert web["depends_on"]["db"]["condition"] == "service_started", web["depends_on"]
    assert model["volumes"]["dbdata"]["name"] == f"{proj.name}_dbdata"
    assert model["networks"]["default"]["name"] == f"{proj.name}_default"

    assert set(proj.out("config", "--services").split()) == {"db", "web"}
    assert proj.out("config", "--volumes").split() == ["dbdata"]
    assert proj.out("config", "-q") == ""
    env = yaml.safe_load(proj.out("config", env={"PORT": "6000", "HOST_PORT": "16000"}))["services"]["db"]
    assert env["environment"] == {"PORT": "6000"} and str(env["ports"][0]["published"]) == "16000"

    # without -p the project is named by the file's name:
    assert yaml.safe_load(proj.out("config", project=False))["name"] == "name-from-file"
    assert not proj.leftovers()


def test_run_publish_and_service_ports(compose, daemon):
    proj = compose("run-rm")
    name = f"{proj.name}-pub"
    proj.run("run", "-d", "--name", name, "-p", "127.0.0.1::80", "svc", "sleep", "60")
    ports = proj.inspect(name)["NetworkSettings"]["Ports"]["80/tcp"]
    assert ports and ports[0]["HostIp"] == "127.0.0.1" and int(ports[0]["HostPort"]) > 0, ports
    bad = proj.run("run", "--rm", "-p", "nope:80", "svc", "true", check=False)
    assert bad.returncode != 0 and "invalid hostPort: nope" in bad.stderr, bad.stderr
    daemon.api("DELETE", f"/containers/{name}?force=1")
