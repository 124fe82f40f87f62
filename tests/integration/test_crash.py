"""kill -9 of berthd: containers keep running, logs keep growing, exits are not lost, leftovers are repaired."""
from __future__ import annotations

import os
import sqlite3

from tests.support.daemon import wait_for


def _run(d, *cmd: str, name: str) -> str:
    status, body = d.api("POST", f"/containers/create?name={name}", {"Image": "busybox:latest", "Cmd": list(cmd)})
    assert status == 201, body
    status, _ = d.api("POST", f"/containers/{body['Id']}/start")
    assert status == 204
    return body["Id"]


def _log_lines(d, cid: str) -> int:
    status, data = d.api("GET", f"/containers/{cid}/logs?stdout=1", raw=True)
    assert status == 200
    return data.count(b"\n")


GATED = "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 7"


def _release(d, cid: str) -> None:
    """Let a gated container exit, by creating /tmp/go in its root filesystem from the host."""
    with open(os.path.join(d.data_root, "containers", cid, "rootfs", "tmp", "go"), "w"):
        pass


def test_containers_outlive_a_killed_daemon(fresh_daemon):
    d = fresh_daemon
    ticker = _run(d, "sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done", name="ticker")
    quitter = _run(d, "sh", "-c", GATED, name="quitter")
    wait_for(lambda: _log_lines(d, ticker) >= 3, what="ticker output")
    d.kill9()

    # While berthd is dead, the quitter exits ...
    _release(d, quitter)
    wait_for(lambda: os.path.exists(os.path.join(d.exec_root, "containers", quitter, "exit")),
             what="the quitter's shim to record its exit")
    # ... and a crash left half-made things behind.
    os.makedirs(os.path.join(d.data_root, "snapshots", "tmp-crashed"))
    with open(os.path.join(d.data_root, "ingest", "half-written"), "wb") as f:
        f.write(b"partial")
    orphan = os.path.join(d.data_root, "snapshots", "ab" * 32)
    os.makedirs(orphan)
    db = sqlite3.connect(os.path.join(d.data_root, "berth.db"))
    img = db.execute("SELECT id FROM images LIMIT 1").fetchone()[0]
    db.execute("INSERT INTO containers(id, name, image_id, created, spec, complete) VALUES (?,?,?,?,?,0)",
               ("cd" * 32, "half-made", img, "2026-01-01T00:00:00Z", "{}"))
    db.commit()
    db.close()
    os.makedirs(os.path.join(d.data_root, "containers", "cd" * 32, "upper"))
    lines_before = _log_lines_from_file(d, ticker)

    d.start()
    status, items = d.api("GET", "/containers/json?all=1")
    by_name = {c["Names"][0]: c for c in items}
    assert by_name["/ticker"]["State"] == "running"
    assert by_name["/quitter"]["State"] == "exited"
    status, info = d.api("GET", f"/containers/{quitter}/json")
    assert info["State"]["ExitCode"] == 7
    assert "/half-made" not in by_name
    assert not os.path.exists(os.path.join(d.data_root, "containers", "cd" * 32))
    assert not os.path.exists(os.path.join(d.data_root, "snapshots", "tmp-crashed"))
    assert not os.path.exists(orphan)
    assert os.listdir(os.path.join(d.data_root, "ingest")) == []
    assert not os.path.ismount(os.path.join(d.data_root, "containers", quitter, "rootfs"))
    # The ticker's log kept growing while berthd was away, and still grows.
    wait_for(lambda: _log_lines(d, ticker) > lines_before + 3, what="the ticker's log to keep growing")
    # The restarted daemon still follows the ticker to its end.
    status, _ = d.api("POST", f"/containers/{ticker}/kill?signal=KILL")
    assert status == 204
    status, res = d.api("POST", f"/containers/{ticker}/wait")
    assert res["StatusCode"] == 137


def test_exit_after_restart_is_followed(fresh_daemon):
    d = fresh_daemon
    cid = _run(d, "sh", "-c", GATED, name="gated")
    d.kill9()
    d.start()
    status, info = d.api("GET", f"/containers/{cid}/json")
    assert info["State"]["Running"] is True
    _release(d, cid)
    status, res = d.api("POST", f"/containers/{cid}/wait")
    assert res["StatusCode"] == 7


def _log_lines_from_file(d, cid: str) -> int:
    path = os.path.join(d.data_root, "containers", cid, f"{cid}-json.log")
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def test_crash_before_the_state_was_saved(fresh_daemon):
    """A crash after the runtime started a container but before berthd recorded it: the
    runtime container is removed at start and the container can be started again."""
    d = fresh_daemon
    cid = _run(d, "sleep", "1000", name="unrecorded")
    d.kill9()
    db = sqlite3.connect(os.path.join(d.data_root, "berth.db"))
    db.execute("UPDATE container_state SET status='created', pid=0 WHERE id=?", (cid,))
    db.commit()
    db.close()
    d.start()
    runtime_state = os.path.join(d.exec_root, "runtime", cid)
    assert not os.path.exists(runtime_state)
    assert not os.path.ismount(os.path.join(d.data_root, "containers", cid, "rootfs"))
    status, info = d.api("GET", f"/containers/{cid}/json")
    assert info["State"]["Status"] == "created"
    assert d.api("POST", f"/containers/{cid}/start")[0] == 204
    assert d.api("GET", f"/containers/{cid}/json")[1]["State"]["Running"] is True
    assert d.api("DELETE", f"/containers/{cid}?force=1")[0] == 204
