"""Restart policies, pause/unpause, rename and the event stream, against a real berthd."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

from tests.support.daemon import wait_for


def _create(d, *cmd: str, name: str | None = None, **host) -> str:
    name = name or f"pol-{uuid.uuid4().hex[:8]}"
    status, body = d.api("POST", f"/containers/create?name={name}",
                         {"Image": "busybox:latest", "Cmd": list(cmd), "HostConfig": host})
    assert status == 201, body
    return body["Id"]


def _state(d, cid: str) -> dict:
    return d.api("GET", f"/containers/{cid}/json")[1]


def test_on_failure_restarts_up_to_its_limit_with_back_off(daemon):
    cid = _create(daemon, "sh", "-c", "exit 3", RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 3})
    t0 = time.monotonic()
    assert daemon.api("POST", f"/containers/{cid}/start")[0] == 204
    wait_for(lambda: _state(daemon, cid)["RestartCount"] == 3 and _state(daemon, cid)["State"]["Status"] == "exited",
             20, what="three restarts, then rest")
    # Back-off 0.1 + 0.2 + 0.4 s at least: not a tight loop.
    assert time.monotonic() - t0 >= 0.7
    info = _state(daemon, cid)
    assert info["State"]["ExitCode"] == 3
    assert daemon.api("DELETE", f"/containers/{cid}?force=1")[0] == 204


def test_on_failure_leaves_a_clean_exit_alone(daemon):
    cid = _create(daemon, "true", RestartPolicy={"Name": "on-failure"})
    daemon.api("POST", f"/containers/{cid}/start")
    assert daemon.api("POST", f"/containers/{cid}/wait")[1]["StatusCode"] == 0
    info = _state(daemon, cid)
    assert info["RestartCount"] == 0 and info["State"]["Status"] == "exited"
    daemon.api("DELETE", f"/containers/{cid}")


def test_always_restarts_until_stopped_by_hand(daemon):
    cid = _create(daemon, "sh", "-c", "sleep 0.2; exit 0", RestartPolicy={"Name": "always"})
    daemon.api("POST", f"/containers/{cid}/start")
    wait_for(lambda: _state(daemon, cid)["RestartCount"] >= 2, 20, what="two restarts")
    assert daemon.api("POST", f"/containers/{cid}/stop?t=1")[0] in (204, 304)
    wait_for(lambda: _state(daemon, cid)["State"]["Status"] == "exited", 20,
             what=f"the stop: {_state(daemon, cid)['State']}")
    count = _state(daemon, cid)["RestartCount"]
    # It stays down: watch a while for a restart that must not come (any restart would show here).
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert _state(daemon, cid)["State"]["Status"] == "exited"
        assert _state(daemon, cid)["RestartCount"] == count
    assert daemon.api("DELETE", f"/containers/{cid}")[0] == 204


def test_policies_when_berthd_starts_after_a_host_restart(fresh_daemon):
    d = fresh_daemon
    always = _create(d, "sleep", "1000", name="always-stopped", RestartPolicy={"Name": "always"})
    unless = _create(d, "sleep", "1000", name="unless-stopped", RestartPolicy={"Name": "unless-stopped"})
    running = _create(d, "sleep", "1000", name="unless-running", RestartPolicy={"Name": "unless-stopped"})
    plain = _create(d, "sleep", "1000", name="no-policy")
    for cid in (always, unless, running, plain):
        assert d.api("POST", f"/containers/{cid}/start")[0] == 204
    for cid in (always, unless):
        assert d.api("POST", f"/containers/{cid}/kill")[0] == 204
    # The "host restart": berthd dies, and so does every container process.
    d.kill9()
    runtime_root = os.path.join(d.exec_root, "runtime")
    for cid in (running, plain):
        subprocess.run(["runc", "--root", runtime_root, "kill", cid, "KILL"], check=True)
        wait_for(lambda: os.path.exists(os.path.join(d.exec_root, "containers", cid, "exit")), what="exit")
    d.start()
    wait_for(lambda: _state(d, "unless-running")["State"]["Status"] == "running", 10, what="the policy restart")
    status = {name: _state(d, name)["State"]["Status"]
              for name in ("always-stopped", "unless-stopped", "unless-running", "no-policy")}
    assert status == {"always-stopped": "running", "unless-stopped": "exited", "unless-running": "running",
                      "no-policy": "exited"}


def test_pause_unpause_and_rename(daemon):
    cid = _create(daemon, "sh", "-c", "while true; do date +%s%N > /tmp/tick; sleep 0.05; done")
    daemon.api("POST", f"/containers/{cid}/start")
    assert daemon.api("POST", f"/containers/{cid}/pause")[0] == 204
    info = _state(daemon, cid)
    assert info["State"]["Status"] == "paused" and info["State"]["Paused"] is True
    status, err = daemon.api("POST", f"/containers/{cid}/pause")
    assert status == 409 and "already paused" in err["message"]
    tick = os.path.join(info["GraphDriver"]["Data"]["MergedDir"], "tmp", "tick")
    frozen = open(tick).read()
    t_end = time.monotonic() + 0.3
    while time.monotonic() < t_end:  # frozen: the loop writes nothing while paused
        assert open(tick).read() == frozen
    ps = daemon.cli("ps", "--filter", f"id={cid}", "--format", "{{.Status}}").stdout.decode()
    assert "(Paused)" in ps
    assert daemon.api("POST", f"/containers/{cid}/unpause")[0] == 204
    wait_for(lambda: open(tick).read() != frozen, what="the loop to run again")
    status, err = daemon.api("POST", f"/containers/{cid}/unpause")
    assert status == 409 and "not paused" in err["message"]
    new = f"renamed-{uuid.uuid4().hex[:6]}"
    assert daemon.api("POST", f"/containers/{cid}/rename?name={new}")[0] == 204
    assert _state(daemon, new)["Id"] == cid
    assert daemon.api("POST", f"/containers/{cid}/rename?name=bad%20name")[0] == 400
    daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_event_stream(daemon):
    since = time.time()
    name = f"ev-{uuid.uuid4().hex[:6]}"
    cid = _create(daemon, "sh", "-c", "exit 2", name=name)
    daemon.api("POST", f"/containers/{cid}/start")
    daemon.api("POST", f"/containers/{cid}/wait")
    daemon.api("DELETE", f"/containers/{cid}")
    tag = f"evimg-{uuid.uuid4().hex[:6]}"
    daemon.api("POST", f"/images/busybox:latest/tag?repo={tag}&tag=1")
    daemon.api("DELETE", f"/images/{tag}:1")
    until = time.time() + 0.5
    status, raw = daemon.api("GET", f"/events?since={since}&until={until}", raw=True)
    assert status == 200
    events = [json.loads(line) for line in raw.splitlines() if line.strip()]
    mine = [(e["Action"], e["Actor"]["Attributes"].get("exitCode")) for e in events if e["id"] == cid]
    assert mine == [("create", None), ("start", None), ("die", "2"), ("destroy", None)]
    assert all(e["Actor"]["Attributes"]["name"] == name for e in events if e["id"] == cid)
    img = [(e["Action"], e["Actor"]["Attributes"]["name"]) for e in events if e["Type"] == "image"
           and e["Actor"]["Attributes"].get("name") == f"{tag}:1"]
    assert img == [("tag", f"{tag}:1"), ("untag", f"{tag}:1")]
    from urllib.parse import quote
    flt = quote(json.dumps({"container": [name], "event": ["die"]}))
    status, raw = daemon.api("GET", f"/events?since={since}&until={until}&filters={flt}", raw=True)
    only = [json.loads(line) for line in raw.splitlines() if line.strip()]
    assert [e["Action"] for e in only] == ["die"]
    # The docker CLI reads the same stream.
    out = daemon.docker("events", "--since", str(since), "--until", str(until), "--filter", f"container={name}",
                        "--format", "{{.Action}}").stdout.decode().split()
    assert out == ["create", "start", "die", "destroy"]


def test_cli_update_and_port(daemon):
    name = f"upd-{uuid.uuid4().hex[:6]}"
    cid = _create(daemon, "sleep", "1000", name=name)
    daemon.api("POST", f"/containers/{cid}/start")
    try:
        out = daemon.cli("update", "--memory", "64m", "--pids-limit", "30", "--restart", "on-failure:2", name)
        assert out.stdout.decode().strip() == name
        info = _state(daemon, cid)
        assert info["HostConfig"]["Memory"] == 64 * 1024 * 1024
        assert info["HostConfig"]["PidsLimit"] == 30
        assert info["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
        for controller, key, want in (("memory", "memory.limit_in_bytes", str(64 * 1024 * 1024)),
                                      ("pids", "pids.max", "30")):
            path = f"/sys/fs/cgroup/{controller}/berth/{cid}/{key}"
            if not os.path.exists(path):
                path = f"/sys/fs/cgroup/berth/{cid}/" + ("memory.max" if controller == "memory" else "pids.max")
            with open(path) as f:
                assert f.read().strip() == want
        bad = daemon.cli("update", "--memory", "1m", name, check=False)
        assert bad.returncode != 0 and b"Minimum memory limit" in bad.stderr
        assert _state(daemon, cid)["HostConfig"]["Memory"] == 64 * 1024 * 1024  # nothing changed
        # Nothing published: nothing to print, and a port that is not published (named as typed, as docker 28).
        assert daemon.cli("port", name).stdout == b""
        missing = daemon.cli("port", name, "80", check=False)
        assert missing.returncode == 1 and b"No public port '80' published" in missing.stderr
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
