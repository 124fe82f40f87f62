"""The real docker CLI (client 28.2.2) against berthd, as a user would type it.

Nothing here may reach a registry: every ``docker run``/``create`` names busybox:latest (made locally by the
``daemon`` fixture) or an image the test made itself, checked to exist first, and passes ``--pull=never``
so that the CLI would fail rather than pull if the image were missing.

Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import tarfile
import tempfile
import uuid
from urllib.parse import quote

import pytest

from tests.support.made import Made as BaseMade
from tests.support.daemon import wait_for

BUSYBOX = "busybox:latest"
DOCKER = "/usr/local/bin/docker"
HEX64 = re.compile(r"^[0-9a-f]{64}$")

pytestmark = pytest.mark.root


def uniq(prefix: str = "compat") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode()


def err(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.decode()


def image_exists(daemon, ref: str) -> bool:
    return daemon.api("GET", f"/images/{quote(ref, safe='')}/json")[0] == 200


def container_exists(daemon, ref: str) -> bool:
    return daemon.api("GET", f"/containers/{quote(ref, safe='')}/json")[0] == 200


def state(daemon, ref: str) -> dict:
    status, body = daemon.api("GET", f"/containers/{quote(ref, safe='')}/json")
    assert status == 200, body
    return body["State"]


class Made(BaseMade):
    """What one test made, removed at teardown whether the test passed or not."""

    def name(self, prefix: str = "compat") -> str:
        n = uniq(prefix)
        self.containers.append(n)
        return n

    def tmpdir(self) -> str:
        d = tempfile.mkdtemp(prefix="bt-compat-", dir="/tmp")
        self.paths.append(d)
        return d


def run(daemon, *args: str, input: bytes | None = None, check: bool = False, timeout: float = 30):
    """``docker run --pull=never ARGS``: never a pull, whatever the image."""
    return daemon.docker("run", "--pull=never", *args, input=input, check=check, timeout=timeout)


# --- docker run: output, exit codes, stdin ----------------------------------------------------------------


def test_run_rm_echo_prints_hi(daemon, made):
    p = run(daemon, "--rm", "busybox", "echo", "hi")
    assert p.returncode == 0, err(p)
    assert out(p) == "hi\n"


def test_run_rm_leaves_no_container(daemon, made):
    name = made.name()
    p = run(daemon, "--rm", "--name", name, "busybox", "true")
    assert p.returncode == 0, err(p)
    wait_for(lambda: not container_exists(daemon, name), 10, what="the --rm container to be removed")
    assert name not in out(daemon.docker("ps", "-a", "--format", "{{.Names}}"))


def test_run_exit_code_propagates(daemon, made):
    p = run(daemon, "--rm", "busybox", "sh", "-c", "exit 3")
    assert p.returncode == 3, (out(p), err(p))


def test_run_missing_command_exits_127_and_is_removed(daemon, made):
    name = made.name()
    p = run(daemon, "--rm", "--name", name, "busybox", "no-such-command-here", timeout=20)
    assert p.returncode == 127, (out(p), err(p))
    assert "no-such-command-here" in err(p)
    wait_for(lambda: not container_exists(daemon, name), 10, what="the failed --rm container to be removed")


def test_run_stdout_and_stderr_are_separate(daemon, made):
    p = run(daemon, "--rm", "busybox", "sh", "-c", "echo to-out; echo to-err >&2")
    assert p.returncode == 0, err(p)
    assert out(p) == "to-out\n"
    assert "to-err" in err(p).splitlines()
    assert "to-err" not in out(p)


def test_run_interactive_stdin(daemon, made):
    p = run(daemon, "--rm", "-i", "busybox", "cat", input=b"data\n")
    assert p.returncode == 0, err(p)
    assert out(p) == "data\n"


def test_run_interactive_stdin_large(daemon, made):
    blob = os.urandom(150_000) * 2
    p = run(daemon, "--rm", "-i", "busybox", "wc", "-c", input=blob)
    assert p.returncode == 0, err(p)
    assert out(p).strip() == str(len(blob))


def test_run_env_workdir_user(daemon, made):
    p = run(daemon, "--rm", "-e", "A=b", "busybox", "env")
    assert p.returncode == 0, err(p)
    assert "A=b" in out(p).splitlines()

    p = run(daemon, "--rm", "-w", "/tmp", "busybox", "pwd")
    assert (p.returncode, out(p)) == (0, "/tmp\n"), err(p)

    p = run(daemon, "--rm", "-u", "65534", "busybox", "id", "-u")
    assert (p.returncode, out(p)) == (0, "65534\n"), err(p)


def test_run_host_network_hostname_is_the_hosts(daemon, made):
    p = run(daemon, "--rm", "--network", "host", "busybox", "hostname", timeout=20)
    assert p.returncode == 0, err(p)
    assert out(p).strip() == socket.gethostname()


def test_run_default_hostname_is_short_id(daemon, made):
    name = made.name()
    p = run(daemon, "--name", name, "busybox", "hostname")
    assert p.returncode == 0, err(p)
    full_id = out(daemon.docker("inspect", "-f", "{{.Id}}", name, check=True)).strip()
    assert HEX64.match(full_id), full_id
    assert out(p).strip() == full_id[:12]


# --- detached containers: ps, logs, stop, rm, inspect ------------------------------------------------------


def _ps_line(daemon, name: str, *flags: str) -> str | None:
    table = out(daemon.docker("ps", *flags, check=True))
    lines = table.splitlines()
    assert lines and lines[0].startswith("CONTAINER ID"), table
    hits = [line for line in lines[1:] if line.split() and line.split()[-1] == name]
    return hits[0] if hits else None


def test_detached_lifecycle_ps_logs_stop_rm(daemon, made):
    name = made.name()
    p = run(daemon, "-d", "--name", name, "busybox", "sh", "-c", "echo line-out; echo line-err >&2; sleep 100")
    assert p.returncode == 0, err(p)
    cid = out(p).strip()
    assert HEX64.match(cid), out(p)

    line = _ps_line(daemon, name)
    assert line is not None, "docker ps does not list the running container"
    assert line.startswith(cid[:12])
    assert " busybox " in line
    assert " Up " in line

    def logged():
        p = daemon.docker("logs", name, check=True)
        return p if "line-out" in out(p) and "line-err" in err(p) else None

    logs = wait_for(logged, 10, what="docker logs to show both lines")
    assert out(logs) == "line-out\n"
    assert "line-out" not in err(logs)

    p = daemon.docker("stop", "-t", "1", name)
    assert p.returncode == 0, err(p)
    assert out(p).strip() == name
    assert _ps_line(daemon, name) is None, "a stopped container is still in docker ps"
    line = _ps_line(daemon, name, "-a")
    assert line is not None and " Exited (" in line, line

    p = daemon.docker("rm", name)
    assert p.returncode == 0, err(p)
    assert out(p).strip() == name
    assert _ps_line(daemon, name, "-a") is None
    assert not container_exists(daemon, name)


def test_inspect_container(daemon, made):
    name = made.name()
    run(daemon, "-d", "--name", name, "busybox", "sleep", "100", check=True)
    p = daemon.docker("inspect", name)
    assert p.returncode == 0, err(p)
    doc = json.loads(out(p))
    assert isinstance(doc, list) and len(doc) == 1
    c = doc[0]
    assert c["Name"] == "/" + name
    assert HEX64.match(c["Id"])
    assert c["Config"]["Image"] == "busybox"
    assert c["Config"]["Cmd"] == ["sleep", "100"]
    assert c["State"]["Running"] is True and c["State"]["Pid"] > 0
    assert out(daemon.docker("inspect", "-f", "{{.State.Status}}", name, check=True)).strip() == "running"
    assert out(daemon.docker("container", "inspect", "-f", "{{.Name}}", c["Id"][:12], check=True)).strip() == "/" + name


def test_inspect_image(daemon, made):
    p = daemon.docker("inspect", BUSYBOX)
    assert p.returncode == 0, err(p)
    img = json.loads(out(p))[0]
    assert BUSYBOX in img["RepoTags"]
    assert img["Id"].startswith("sha256:")
    assert img["Config"]["Cmd"] == ["sh"]
    assert img["Os"] == "linux"
    api_id = daemon.api("GET", "/images/busybox:latest/json")[1]["Id"]
    assert out(daemon.docker("image", "inspect", "-f", "{{.Id}}", BUSYBOX, check=True)).strip() == api_id


def test_images_lists_busybox(daemon, made):
    p = daemon.docker("images")
    assert p.returncode == 0, err(p)
    rows = [line.split() for line in out(p).splitlines()]
    assert rows[0][:3] == ["REPOSITORY", "TAG", "IMAGE"]
    api_id = daemon.api("GET", "/images/busybox:latest/json")[1]["Id"]
    assert ["busybox", "latest", api_id.split(":")[1][:12]] in [r[:3] for r in rows[1:]]
    p = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert BUSYBOX in out(p).splitlines()


# --- create/start/wait/kill/restart -----------------------------------------------------------------------


def test_create_then_start_attached(daemon, made):
    name = made.name()
    p = daemon.docker("create", "--pull=never", "--name", name, "busybox", "echo", "created-out")
    assert p.returncode == 0, err(p)
    assert HEX64.match(out(p).strip())
    assert out(daemon.docker("inspect", "-f", "{{.State.Status}}", name, check=True)).strip() == "created"

    p = daemon.docker("start", "-a", name)
    assert p.returncode == 0, err(p)
    assert out(p) == "created-out\n"
    assert out(daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name, check=True)).strip() \
        == "exited 0"

    failing = made.name()
    daemon.docker("create", "--pull=never", "--name", failing, "busybox", "sh", "-c", "exit 4", check=True)
    p = daemon.docker("start", "-a", failing, check=False)
    assert p.returncode == 4, (out(p), err(p))


def test_wait_prints_exit_code(daemon, made):
    name = made.name()
    run(daemon, "-d", "--name", name, "busybox", "sh", "-c", "sleep 0.3; exit 5", check=True)
    p = daemon.docker("wait", name)
    assert p.returncode == 0, err(p)
    assert out(p).strip() == "5"
    assert state(daemon, name)["Status"] == "exited"
    # waiting on a container that has already exited returns at once with the same code
    assert out(daemon.docker("wait", name, check=True)).strip() == "5"


def test_kill(daemon, made):
    name = made.name()
    run(daemon, "-d", "--name", name, "busybox", "sleep", "100", check=True)
    p = daemon.docker("kill", name)
    assert p.returncode == 0, err(p)
    assert out(p).strip() == name
    # like dockerd, kill (SIGKILL) returns once the container has stopped
    assert out(daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name, check=True)).strip() \
        == "exited 137"
    p = daemon.docker("kill", name, check=False)
    assert p.returncode != 0
    assert "is not running" in err(p)


def test_restart(daemon, made):
    name = made.name()
    run(daemon, "-d", "--name", name, "busybox", "sh", "-c", "echo boot; trap 'exit 0' TERM; "
        "while true; do sleep 0.1; done", check=True)
    wait_for(lambda: "boot" in out(daemon.docker("logs", name, check=True)), 10, what="first boot line")
    before = state(daemon, name)
    p = daemon.docker("restart", "-t", "1", name)
    assert p.returncode == 0, err(p)
    assert out(p).strip() == name
    after = state(daemon, name)
    assert after["Status"] == "running"
    assert after["Pid"] > 0 and after["Pid"] != before["Pid"]
    assert after["StartedAt"] != before["StartedAt"]
    wait_for(lambda: out(daemon.docker("logs", name, check=True)).count("boot") == 2, 10,
             what="the restarted container's second boot line")


# --- prune, df, version, info ----------------------------------------------------------------------------


def test_container_prune(daemon, made):
    stopped, running = made.name(), made.name()
    run(daemon, "--name", stopped, "busybox", "true", check=True)
    run(daemon, "-d", "--name", running, "busybox", "sleep", "100", check=True)
    assert state(daemon, stopped)["Status"] == "exited"
    stopped_id = daemon.api("GET", f"/containers/{stopped}/json")[1]["Id"]

    p = daemon.docker("container", "prune", "-f")
    assert p.returncode == 0, err(p)
    assert stopped_id in out(p).split()
    assert "Total reclaimed space" in out(p)
    assert not container_exists(daemon, stopped)
    assert state(daemon, running)["Running"] is True


def test_image_prune_removes_only_dangling(daemon, made):
    ref = made.image(f"compat/prune:{uuid.uuid4().hex[:8]}")
    repo, tag = ref.split(":")
    first = daemon.import_busybox(ref)
    second = daemon.import_busybox(ref)  # takes the tag, leaving ``first`` dangling
    assert first != second
    dangling = out(daemon.docker("images", "-q", "--no-trunc", "-f", "dangling=true", check=True)).split()
    assert first in dangling

    p = daemon.docker("image", "prune", "-f")
    assert p.returncode == 0, err(p)
    assert first in out(p)
    assert not image_exists(daemon, first)
    assert image_exists(daemon, ref)
    assert image_exists(daemon, BUSYBOX)


def test_system_df(daemon, made):
    p = daemon.docker("system", "df")
    assert p.returncode == 0, err(p)
    rows = {line.split()[0]: line.split() for line in out(p).splitlines()[1:] if line.strip()}
    assert out(p).splitlines()[0].split()[:3] == ["TYPE", "TOTAL", "ACTIVE"]
    assert "Images" in rows and "Containers" in rows
    assert int(rows["Images"][1]) >= 1


def test_version_reports_api_1_45(daemon, made):
    p = daemon.docker("version")
    assert p.returncode == 0, err(p)
    assert "Server" in out(p)
    assert out(daemon.docker("version", "--format", "{{.Server.APIVersion}}", check=True)).strip() == "1.45"
    assert out(daemon.docker("version", "--format", "{{.Client.APIVersion}}", check=True)).strip() == "1.45"


def test_info(daemon, made):
    p = daemon.docker("info")
    assert p.returncode == 0, err(p)
    assert "Server Version:" in out(p)
    info = json.loads(out(daemon.docker("info", "--format", "{{json .}}", check=True)))
    assert info["Images"] >= 1
    assert not info.get("ServerErrors"), info.get("ServerErrors")


# --- images: save/load, tag/rmi ---------------------------------------------------------------------------


def test_save_pipe_to_load(daemon, made):
    ref = made.image(f"compat/save:{uuid.uuid4().hex[:8]}")
    daemon.docker("tag", BUSYBOX, ref, check=True)
    saved = daemon.docker("save", ref)
    assert saved.returncode == 0, err(saved)
    assert len(saved.stdout) > 100_000
    daemon.docker("rmi", ref, check=True)
    assert not image_exists(daemon, ref)

    p = daemon.docker("load", input=saved.stdout)
    assert p.returncode == 0, err(p)
    assert f"Loaded image: {ref}" in out(p)
    ids = [daemon.api("GET", f"/images/{quote(r, safe='')}/json")[1]["Id"] for r in (ref, BUSYBOX)]
    assert ids[0] == ids[1]

    # the docker client's own pipe: docker save busybox | docker load
    piped = subprocess.run(
        f"{DOCKER} -H {daemon.host} save {BUSYBOX} | {DOCKER} -H {daemon.host} load", shell=True, capture_output=True,
        timeout=60, env={**os.environ, "DOCKER_CONFIG": os.path.join(daemon.dir, "docker-config")})
    assert piped.returncode == 0, piped.stderr.decode()
    assert f"Loaded image: {BUSYBOX}" in piped.stdout.decode()


def test_save_to_file_and_load_from_file(daemon, made):
    ref = made.image(f"compat/savefile:{uuid.uuid4().hex[:8]}")
    daemon.docker("tag", BUSYBOX, ref, check=True)
    path = os.path.join(made.tmpdir(), "image.tar")
    p = daemon.docker("save", "-o", path, ref)
    assert p.returncode == 0, err(p)
    with tarfile.open(path) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
    assert "manifest.json" in names
    assert manifest[0]["RepoTags"] == [ref]
    daemon.docker("rmi", ref, check=True)

    p = daemon.docker("load", "-i", path)
    assert p.returncode == 0, err(p)
    assert f"Loaded image: {ref}" in out(p)
    assert image_exists(daemon, ref)


def test_tag_and_rmi_untag(daemon, made):
    ref = made.image(f"compat/tag:{uuid.uuid4().hex[:8]}")
    bb_id = daemon.api("GET", "/images/busybox:latest/json")[1]["Id"]
    p = daemon.docker("tag", BUSYBOX, ref)
    assert p.returncode == 0, err(p)
    listing = out(daemon.docker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", check=True))
    assert f"{ref} {bb_id}" in listing.splitlines()
    assert f"{BUSYBOX} {bb_id}" in listing.splitlines()

    # an ID with two names is not deleted without -f
    p = daemon.docker("rmi", bb_id.split(":")[1][:12], check=False)
    assert p.returncode != 0
    assert "referenced in multiple repositories" in err(p)

    p = daemon.docker("rmi", ref)
    assert p.returncode == 0, err(p)
    assert out(p).splitlines() == [f"Untagged: {ref}"]
    assert not image_exists(daemon, ref)
    assert image_exists(daemon, BUSYBOX)


def test_rmi_last_tag_deletes_image(daemon, made):
    ref = made.image(f"compat/only:{uuid.uuid4().hex[:8]}")
    image_id = daemon.import_busybox(ref)
    p = daemon.docker("rmi", ref)
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert f"Untagged: {ref}" in lines
    assert f"Deleted: {image_id}" in lines
    assert not image_exists(daemon, image_id)


# --- errors ----------------------------------------------------------------------------------------------


def test_run_same_name_twice_conflicts(daemon, made):
    name = made.name()
    run(daemon, "--name", name, "busybox", "true", check=True)
    p = run(daemon, "--name", name, "busybox", "true")
    assert p.returncode == 125, (out(p), err(p))
    assert f'Error response from daemon: Conflict. The container name "/{name}" is already in use' in err(p)


def test_rm_running_needs_force(daemon, made):
    name = made.name()
    run(daemon, "-d", "--name", name, "busybox", "sleep", "100", check=True)
    p = daemon.docker("rm", name, check=False)
    assert p.returncode != 0
    assert "force" in err(p).lower() and "running" in err(p).lower(), err(p)
    assert state(daemon, name)["Running"] is True

    p = daemon.docker("rm", "-f", name)
    assert p.returncode == 0, err(p)
    assert out(p).strip() == name
    assert not container_exists(daemon, name)


def test_no_such_container(daemon, made):
    ghost = uniq("ghost")
    for args in (("rm", ghost), ("logs", ghost), ("stop", ghost), ("start", ghost), ("wait", ghost),
                 ("inspect", "--type", "container", ghost)):
        p = daemon.docker(*args, check=False)
        assert p.returncode != 0, args
        assert f"No such container: {ghost}" in err(p), (args, err(p))
    p = daemon.docker("inspect", ghost, check=False)
    assert p.returncode != 0
    assert f"No such object: {ghost}" in err(p), err(p)
