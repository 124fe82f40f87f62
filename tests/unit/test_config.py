"""daemon.json and flags (berth.config.DaemonConfig)."""
from __future__ import annotations

import json

import pytest

from berth.config import DEFAULT_SOCKET, DaemonConfig
from berth.errors import InvalidArgument


def write(tmp_path, data) -> str:
    p = tmp_path / "daemon.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(p)


def test_defaults_without_file():
    cfg = DaemonConfig.load(None, {})
    assert cfg.hosts == [DEFAULT_SOCKET]
    assert cfg.data_root == "/var/lib/berth"
    assert cfg.exec_root == "/run/berth"
    assert cfg.runtime == "runc"
    assert cfg.runtimes == {}


def test_missing_file_means_defaults(tmp_path):
    cfg = DaemonConfig.load(str(tmp_path / "absent.json"), {})
    assert cfg.data_root == "/var/lib/berth"


def test_file_keys(tmp_path):
    path = write(tmp_path, {
        "hosts": ["unix:///tmp/b.sock", "tcp://127.0.0.1:2375"],
        "data-root": "/srv/berth",
        "exec-root": "/run/b2",
        "runtimes": {"crun": {"path": "/usr/bin/crun"}, "kata": {"path": "/opt/kata/bin/kata-runtime",
                                                                 "runtimeArgs": ["--debug"]}},
        "default-runtime": "crun",
    })
    cfg = DaemonConfig.load(path, {})
    assert cfg.hosts == ["unix:///tmp/b.sock", "tcp://127.0.0.1:2375"]
    assert cfg.data_root == "/srv/berth"
    assert cfg.exec_root == "/run/b2"
    assert cfg.runtimes == {"crun": "/usr/bin/crun", "kata": "/opt/kata/bin/kata-runtime"}
    assert cfg.runtime == "crun"
    assert cfg.runtime_path("crun") == "/usr/bin/crun"
    assert cfg.runtime_path("runc") == "runc"


def test_socket_paths(tmp_path):
    cfg = DaemonConfig.load(write(tmp_path, {"hosts": ["unix:///tmp/b.sock", "tcp://127.0.0.1:1"]}), {})
    assert cfg.socket_paths == ["/tmp/b.sock"]


def test_hosts_off_loopback_are_refused_at_load(tmp_path):
    with pytest.raises(InvalidArgument, match="loopback only"):
        DaemonConfig.load(write(tmp_path, {"hosts": ["tcp://0.0.0.0:1"]}), {})
    with pytest.raises(InvalidArgument, match="invalid host"):
        DaemonConfig.load(None, {"hosts": ["fd://"]})


def test_empty_object_file(tmp_path):
    cfg = DaemonConfig.load(write(tmp_path, "{}"), {})
    assert cfg.data_root == "/var/lib/berth"


def test_unknown_key_rejected(tmp_path):
    with pytest.raises(InvalidArgument) as e:
        DaemonConfig.load(write(tmp_path, {"data-root": "/x", "bogus-key": 1}), {})
    assert "bogus-key" in e.value.message


@pytest.mark.parametrize("text", ["{", "not json", '{"data-root": }', '{"data-root": "/x",}'])
def test_malformed_json_rejected(tmp_path, text):
    with pytest.raises(InvalidArgument):
        DaemonConfig.load(write(tmp_path, text), {})


@pytest.mark.parametrize("text", ["[]", '"x"', "42"])
def test_non_object_json_rejected(tmp_path, text):
    # dockerd: "unable to configure the Docker daemon with file ...: json: cannot unmarshal ..."
    with pytest.raises(InvalidArgument):
        DaemonConfig.load(write(tmp_path, text), {})


def test_flags_override_file(tmp_path):
    path = write(tmp_path, {"data-root": "/from/file", "exec-root": "/run/file", "hosts": ["unix:///f.sock"]})
    cfg = DaemonConfig.load(path, {"data_root": "/from/flag", "hosts": ["unix:///flag.sock"]})
    assert cfg.data_root == "/from/flag"
    assert cfg.hosts == ["unix:///flag.sock"]
    assert cfg.exec_root == "/run/file"


def test_unset_flags_do_not_override(tmp_path):
    path = write(tmp_path, {"data-root": "/from/file", "hosts": ["unix:///f.sock"], "runtimes": {"x": {"path": "/x"}}})
    cfg = DaemonConfig.load(path, {"data_root": None, "hosts": [], "runtimes": {}, "exec_root": None})
    assert cfg.data_root == "/from/file"
    assert cfg.hosts == ["unix:///f.sock"]
    assert cfg.runtimes == {"x": "/x"}
    assert cfg.exec_root == "/run/berth"


def test_flags_without_file():
    cfg = DaemonConfig.load(None, {"exec_root": "/run/x", "runtime": "crun", "runtimes": {"crun": "/bin/crun"}})
    assert cfg.exec_root == "/run/x"
    assert cfg.runtime == "crun"
    assert cfg.runtime_path("crun") == "/bin/crun"


def test_unknown_runtime_name():
    with pytest.raises(InvalidArgument) as e:
        DaemonConfig.load(None, {}).runtime_path("nope")
    assert e.value.message == "unknown or invalid runtime name: nope"


def test_runtime_named_runc_is_reserved(tmp_path):
    # dockerd: "runtime name 'runc' is reserved".
    with pytest.raises(InvalidArgument) as e:
        DaemonConfig.load(write(tmp_path, {"runtimes": {"runc": {"path": "/usr/local/bin/runc"}}}), {})
    assert "reserved" in e.value.message


def test_runtime_without_path_rejected(tmp_path):
    # dockerd: "runtime x: either a runtimeType or a path must be configured".
    with pytest.raises(InvalidArgument):
        DaemonConfig.load(write(tmp_path, {"runtimes": {"x": {}}}), {})


def test_runtimes_must_be_an_object(tmp_path):
    with pytest.raises(InvalidArgument):
        DaemonConfig.load(write(tmp_path, {"runtimes": ["crun"]}), {})


def test_hosts_must_be_a_list(tmp_path):
    with pytest.raises(InvalidArgument):
        DaemonConfig.load(write(tmp_path, {"hosts": "unix:///x.sock"}), {})


def test_loads_are_independent(tmp_path):
    a = DaemonConfig.load(None, {})
    a.hosts.append("unix:///mutated")
    a.runtimes["x"] = "/x"
    b = DaemonConfig.load(None, {})
    assert b.hosts == [DEFAULT_SOCKET]
    assert b.runtimes == {}
