"""Health checks (image HEALTHCHECK and --health-*), and attach over a websocket."""
from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

from tests.integration.test_images import docker_archive
from tests.support.daemon import wait_for

MS = 1_000_000


def _run(d, name: str, cmd: list[str], image: str = "busybox:latest", **config) -> str:
    status, body = d.api("POST", f"/containers/create?name={name}", {"Image": image, "Cmd": cmd, **config})
    assert status == 201, body
    assert d.api("POST", f"/containers/{body['Id']}/start")[0] == 204
    return body["Id"]


def _health(d, cid: str) -> dict | None:
    return d.api("GET", f"/containers/{cid}/json")[1]["State"].get("Health")


def test_health_goes_unhealthy_then_healthy(daemon):
    since = time.time()
    name = f"hc-{uuid.uuid4().hex[:6]}"
    cid = _run(daemon, name, ["sleep", "1000"], Healthcheck={
        "Test": ["CMD-SHELL", "test -e /tmp/ok"], "Interval": 100 * MS, "Timeout": 2000 * MS, "Retries": 2})
    try:
        assert _health(daemon, cid)["Status"] == "starting"
        wait_for(lambda: _health(daemon, cid)["Status"] == "unhealthy", 15, what="unhealthy")
        h = _health(daemon, cid)
        assert h["FailingStreak"] >= 2 and h["Log"] and h["Log"][-1]["ExitCode"] == 1
        ps = daemon.cli("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout.decode()
        assert "(unhealthy)" in ps
        daemon.cli("exec", name, "touch", "/tmp/ok")
        wait_for(lambda: _health(daemon, cid)["Status"] == "healthy", 15, what="healthy")
        assert _health(daemon, cid)["FailingStreak"] == 0
        assert "(healthy)" in daemon.cli("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout.decode()
        status, raw = daemon.api("GET", f"/events?since={since}&until={time.time()}", raw=True)
        actions = [e["Action"] for e in map(json.loads, raw.splitlines()) if e["id"] == cid]
        assert "health_status: unhealthy" in actions and "health_status: healthy" in actions
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_timeout_counts_as_a_failure(daemon):
    cid = _run(daemon, f"hct-{uuid.uuid4().hex[:6]}", ["sleep", "1000"], Healthcheck={
        "Test": ["CMD", "sleep", "5"], "Interval": 100 * MS, "Timeout": 200 * MS, "Retries": 1})
    try:
        wait_for(lambda: _health(daemon, cid)["Status"] == "unhealthy", 15, what="a timed-out probe")
        assert "exceeded timeout" in _health(daemon, cid)["Log"][-1]["Output"]
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")


def test_image_healthcheck_and_no_healthcheck(daemon):
    with open(os.path.join(daemon.dir, "busybox.tar"), "rb") as f:
        layer = f.read()
    import hashlib
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    tag = f"hcimg-{uuid.uuid4().hex[:6]}:1"
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["sleep", "1000"], "Healthcheck": {"Test": ["CMD", "true"], "Interval": 100 * MS}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    status, body = daemon.api("POST", "/images/load", docker_archive([layer], [tag], config=config), raw=True)
    assert status == 200, body
    on = _run(daemon, f"hci-{uuid.uuid4().hex[:6]}", ["sleep", "1000"], image=tag)
    off = _run(daemon, f"hco-{uuid.uuid4().hex[:6]}", ["sleep", "1000"], image=tag,
               Healthcheck={"Test": ["NONE"]})
    try:
        wait_for(lambda: _health(daemon, on)["Status"] == "healthy", 15, what="the image's check")
        assert _health(daemon, off) is None
    finally:
        for cid in (on, off):
            daemon.api("DELETE", f"/containers/{cid}?force=1")
        daemon.api("DELETE", f"/images/{tag}?force=1")


def test_attach_over_websocket(daemon):
    import aiohttp
    cid = _run(daemon, f"ws-{uuid.uuid4().hex[:6]}", ["cat"], OpenStdin=True)

    async def talk() -> bytes:
        conn = aiohttp.UnixConnector(path=daemon.socket)
        async with aiohttp.ClientSession(connector=conn) as s:
            async with s.ws_connect(f"http://localhost/v1.45/containers/{cid}/attach/ws?stream=1&stdout=1&stdin=1") as ws:
                await ws.send_bytes(b"over a websocket\n")
                msg = await asyncio.wait_for(ws.receive(), 10)
                return msg.data

    try:
        assert asyncio.run(talk()) == b"over a websocket\n"
        assert daemon.api("GET", f"/containers/{cid}/json")[1]["State"]["Running"] is True
    finally:
        daemon.api("DELETE", f"/containers/{cid}?force=1")
