"""berthd's listening addresses and configuration file."""
from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess

import pytest

from tests.support.daemon import BIN, Daemon, can_run_containers, wait_for


@pytest.fixture
def bare():
    reason = can_run_containers()
    if reason:
        pytest.skip(reason)
    d = Daemon()
    yield d
    d.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tcp_on_loopback_and_daemon_json(bare):
    port = _free_port()
    with open(os.path.join(bare.dir, "daemon.json"), "w") as f:
        json.dump({"hosts": [bare.host, f"tcp://127.0.0.1:{port}"], "log-level": "warning"}, f)
    bare.start(host_flag=False)

    def tcp_ping() -> bool:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/v1.45/_ping")
            r = c.getresponse()
            return r.status == 200 and r.read() == b"OK" and r.getheader("Api-Version") == "1.45"
        except OSError:
            return False

    assert wait_for(tcp_ping, 10, what="the TCP listener")
    mode = stat.S_IMODE(os.stat(bare.socket).st_mode)
    assert mode == 0o660
    out = subprocess.run([str(BIN / "berth"), "-H", f"tcp://127.0.0.1:{port}", "version", "-f", "{{.Server.ApiVersion}}"],
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "1.45", out.stderr


def test_tcp_off_loopback_is_refused(bare):
    proc = subprocess.run([str(BIN / "berthd"), "-H", "tcp://0.0.0.0:2375", "--data-root", bare.data_root,
                           "--exec-root", bare.exec_root, "--config-file", "/nonexistent"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "loopback" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_daemon_json_is_one_clear_line(bare):
    path = os.path.join(bare.dir, "daemon.json")
    with open(path, "w") as f:
        f.write('{"data-root": ')
    proc = subprocess.run([str(BIN / "berthd"), "--config-file", path, "-H", bare.host], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode != 0
    assert "daemon.json" in proc.stderr and "Traceback" not in proc.stderr


def test_add_runtime_runs_containers_through_it(bare):
    """--add-runtime NAME=PATH and HostConfig.Runtime: the container is run by that binary."""
    wrapper = os.path.join(bare.dir, "my-runtime")
    calls = os.path.join(bare.dir, "calls")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\necho \"$@\" >> {calls}\nexec runc \"$@\"\n")
    os.chmod(wrapper, 0o755)
    d = Daemon(f"--add-runtime=mine={wrapper}")
    try:
        d.start()
        d.import_busybox()
        status, info = d.api("GET", "/info")
        assert "mine" in info["Runtimes"]
        out = d.cli("run", "--rm", "--runtime", "mine", "busybox", "echo", "via wrapper")
        assert out.stdout == b"via wrapper\n"
        with open(calls) as f:
            assert any(" create " in f" {line} " for line in f)
        bad = d.cli("run", "--rm", "--runtime", "nope", "busybox", "true", check=False)
        assert bad.returncode != 0 and b"runtime" in bad.stderr
    finally:
        d.cleanup()


def test_no_new_privileges_is_off_unless_asked(daemon):
    plain = daemon.cli("run", "--rm", "busybox", "grep", "NoNewPrivs", "/proc/self/status").stdout
    asked = daemon.cli("run", "--rm", "--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs",
                       "/proc/self/status").stdout
    assert plain.split() == [b"NoNewPrivs:", b"0"]
    assert asked.split() == [b"NoNewPrivs:", b"1"]
    bad = daemon.cli("run", "--rm", "--security-opt", "seccomp=x", "busybox", "true", check=False)
    assert bad.returncode == 125 and b"security-opt" in bad.stderr
