"""The requests the CLI builds for volumes and mounts, and what it prints, checked against what docker CLI 28
sends and prints (recorded from the real CLI); no daemon (a fake transport)."""
from __future__ import annotations

import io
import json

import pytest

from berth.cli.commands import containers, system, volumes
from berth.cli.common import Exit, Usage
from berth.cli.main import _resolve
from berth.errors import Conflict, NotFound
from tests.support.fake_api import FakeApi, run_body, usage_error


def vol(name: str, labels=None, usage=None, mountpoint: str = "") -> dict:
    v = {"CreatedAt": "2025-01-02T03:04:05Z", "Driver": "local", "Labels": labels, "Mountpoint": mountpoint or
         f"/var/lib/berth/volumes/{name}/_data", "Name": name, "Options": None, "Scope": "local"}
    if usage is not None:
        v["UsageData"] = usage
    return v


# ---------------------------------------------------------------- run / create

def test_run_without_volume_flags_sends_what_docker_sends():
    body = run_body("busybox")
    host = body["HostConfig"]
    assert body["Volumes"] == {}
    assert (host["Binds"], host["VolumesFrom"], host["VolumeDriver"]) == (None, None, "")
    assert "Mounts" not in host and "Tmpfs" not in host


def test_volume_flags_split_into_binds_and_volumes(monkeypatch):
    monkeypatch.setattr(volumes, "_cwd", lambda: "/work/dir")
    body = run_body("-v", "data:/b", "-v", "/h:/c:ro,z", "-v", "/anon", "--volume", "./rel:/r", "-v", "../up:/u:rw",
                    "-v", "/h:/c:ro,z", "-v", "data:/b", "-v", "relname/x:/y", "-v", "c:/foo:/bar", "-v", "a:/b",
                    "-v", "x", "busybox")
    assert body["HostConfig"]["Binds"] == ["data:/b", "/h:/c:ro,z", "/work/dir/rel:/r", "/work/up:/u:rw",
                                           "relname/x:/y", "c:/foo:/bar"]
    # docker's parser takes "a:" for a Windows drive: "a:/b" is an anonymous volume's target
    assert body["Volumes"] == {"/anon": {}, "a:/b": {}, "x": {}}


def test_volumes_from_tmpfs_read_only_and_volume_driver():
    body = run_body("--read-only", "--tmpfs", "/run", "--tmpfs", "/tmp:rw,size=64m", "--volumes-from", "c1",
                    "--volumes-from", "c2:ro", "--volume-driver", "foo", "busybox")
    host = body["HostConfig"]
    assert host["VolumesFrom"] == ["c1", "c2:ro"]
    assert host["Tmpfs"] == {"/run": "", "/tmp": "rw,size=64m"}
    assert host["ReadonlyRootfs"] is True and host["VolumeDriver"] == "foo"


def test_mount_flags(monkeypatch):
    monkeypatch.setattr(volumes, "_cwd", lambda: "/work/dir")
    body = run_body("--mount", "type=bind,source=./h,target=/c,readonly", "--mount",
                    "type=volume,source=data,target=/d,volume-nocopy=true", "busybox")
    assert body["HostConfig"]["Mounts"] == [
        {"Type": "bind", "Source": "/work/dir/h", "Target": "/c", "ReadOnly": True},
        {"Type": "volume", "Source": "data", "Target": "/d", "VolumeOptions": {"NoCopy": True, "DriverConfig": {}}}]
    assert body["HostConfig"]["Binds"] is None and body["Volumes"] == {}


@pytest.mark.parametrize("spec, message", [
    (":/x", "invalid spec: :/x: empty section between colons"),
    ("/x:", "invalid spec: /x:: empty section between colons"),
    ("/a::/b", "invalid spec: /a::/b: empty section between colons"),
    ("/a:/b:ro:z", "invalid spec: /a:/b:ro:z: too many colons"),
    ("", "invalid empty volume spec"),
])
def test_volume_flag_errors_come_before_any_request(spec, message):
    assert usage_error(containers.create, "create", ["-v", spec, "busybox"]) == (
        f"berth: {message}\n\nRun 'berth create --help' for more information")


def test_what_the_daemon_refuses_passes_through():
    # docker CLI 28 leaves these to the daemon: a bad mode, a bad volume name, conflicting modes
    assert run_body("-v", "name:/b:bogus", "busybox")["HostConfig"]["Binds"] == ["name:/b:bogus"]
    assert run_body("-v", "a b:/x", "busybox")["HostConfig"]["Binds"] == ["a b:/x"]
    assert run_body("-v", "/x:/y:rw,ro", "busybox")["HostConfig"]["Binds"] == ["/x:/y:rw,ro"]


@pytest.mark.parametrize("value, message", [
    ("type=bind,source=/h", "target is required"),
    ('type=bi"nd,target=/x', 'parse error on line 1, column 8: bare " in non-quoted-field'),
    ("type=bind,target=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
])
def test_mount_flag_errors(value, message):
    quoted = json.dumps(value)
    assert usage_error(containers.run, "run", ["--mount", value, "busybox"]) == (
        f'invalid argument {quoted} for "--mount" flag: {message}')


def test_ps_mounts_and_local_volumes_columns(capsys):
    item = {"Id": "a" * 64, "Image": "busybox", "Command": "sh", "Created": 0, "Status": "Up", "State": "running",
            "Names": ["/web"], "Mounts": [
                {"Type": "volume", "Name": "0123456789abcdef0123", "Source": "/var/lib/x", "Driver": "local"},
                {"Type": "bind", "Source": "/srv/data", "Destination": "/d"}]}
    api = FakeApi({("GET", "/containers/json"): [item]})
    containers.ps(api, "ps", ["--format", "{{.Mounts}}|{{.LocalVolumes}}"])
    containers.ps(api, "ps", ["--no-trunc", "--format", "{{.Mounts}}"])
    assert capsys.readouterr().out == "0123456789abcd…,/srv/data|1\n0123456789abcdef0123,/srv/data\n"


# ---------------------------------------------------------------- volume create / ls / inspect / rm / prune

def test_the_command_table():
    assert _resolve(["volume", "ls"])[0] == ("volumes", "ls")
    assert _resolve(["volume", "list"])[0] == ("volumes", "ls")
    assert _resolve(["volume", "remove", "x"]) == (("volumes", "rm"), ["x"], "volume remove")
    for sub in ("create", "inspect", "rm", "prune"):
        assert _resolve(["volume", sub])[0] == ("volumes", sub)


def test_create_sends_the_body(capsys):
    api = FakeApi({("POST", "/volumes/create"): vol("v1")})
    volumes.create(api, "volume create", ["-d", "local", "--label", "a=b", "--label", "c", "-o", "type=tmpfs",
                                          "-o", "device=tmpfs", "-o", "o=size=1m", "v1"])
    assert api.calls == [("POST", "/volumes/create", {}, {
        "Driver": "local", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"},
        "Labels": {"a": "b", "c": ""}, "Name": "v1"})]
    assert capsys.readouterr().out == "v1\n"


def test_create_without_a_name_prints_the_daemons():
    assert volumes.create_body([]) == {"Driver": "local"}
    assert volumes.create_body(["-o", "novalue", "--name", "n"]) == {"Driver": "local", "DriverOpts": {"novalue": ""},
                                                                     "Name": "n"}
    assert volumes.create_body(["--label", " x=1", "v"]) == {"Driver": "local", "Labels": {" x": "1"}, "Name": "v"}


def test_create_errors(capsys):
    with pytest.raises(Usage) as e:
        volumes.create_body(["--label", "=1", "v"])
    assert str(e.value) == "invalid argument \"=1\" for \"--label\" flag: invalid label '=1': empty name"
    with pytest.raises(Exit):
        volumes.create_body(["--name", "a", "b"])
    assert "cannot specify a volume-name through both --name and as a positional arg" in capsys.readouterr().err


def test_ls_sorts_naturally_and_prints_docker_columns(capsys):
    api = FakeApi({("GET", "/volumes"): {"Volumes": [vol("v10", {"z": "1", "a": "2"}), vol("v2")],
                                         "Warnings": None}})
    volumes.ls(api, "volume ls", [])
    assert capsys.readouterr().out == "DRIVER    VOLUME NAME\nlocal     v2\nlocal     v10\n"
    volumes.ls(api, "volume ls", ["-q"])
    assert capsys.readouterr().out == "v2\nv10\n"
    volumes.ls(api, "volume ls", ["--format", "table {{.Name}}\t{{.Labels}}\t{{.Links}}\t{{.Size}}"])
    assert capsys.readouterr().out == ("VOLUME NAME   LABELS    LINKS     SIZE\n"
                                       "v2                      N/A       N/A\n"
                                       "v10           a=2,z=1   N/A       N/A\n")
    volumes.ls(api, "volume ls", ["--format", "json"])
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    assert first == {"Availability": "N/A", "Driver": "local", "Group": "N/A", "Labels": "", "Links": "N/A",
                     "Mountpoint": "/var/lib/berth/volumes/v2/_data", "Name": "v2", "Scope": "local", "Size": "N/A",
                     "Status": "N/A"}


def test_ls_filters():
    api = FakeApi({("GET", "/volumes"): {"Volumes": [], "Warnings": None}})
    volumes.ls(api, "volume ls", ["-q", "-f", "dangling=true", "-f", "name=v", "--filter", "label=a=2"])
    assert api.calls[0][2] == {"filters": '{"dangling":{"true":true},"label":{"a=2":true},"name":{"v":true}}'}
    volumes.ls(api, "volume ls", [])
    assert api.calls[1][2] == {}
    with pytest.raises(Usage) as e:
        volumes.ls(api, "volume ls", ["-f", "bogus"])
    assert str(e.value) == ('invalid argument "bogus" for "-f, --filter" flag: '
                            "bad format of filter (expected name=value)")


def test_inspect(capsys):
    api = FakeApi({("GET", "/volumes/v1"): vol("v1", {"a": "b"}),
                   ("GET", "/volumes/nope"): NotFound("get nope: no such volume")})
    assert volumes.inspect(api, "volume inspect", ["v1"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == [vol("v1", {"a": "b"})] and out.startswith("[\n    {\n        \"CreatedAt\"")
    assert volumes.inspect(api, "volume inspect", ["-f", "{{.Name}} {{.Driver}}", "nope", "v1"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "v1 local\n"
    assert captured.err == "Error response from daemon: get nope: no such volume\n"
    assert volumes.inspect(api, "volume inspect", ["nope"]) == 1
    assert capsys.readouterr().out == "[]\n"
    assert volumes.inspect(api, "volume inspect", ["-f", "{{.Nme", "v1"]) == 64


def test_rm_goes_on_after_errors(capsys):
    api = FakeApi({("DELETE", "/volumes/busy"): Conflict("remove busy: volume is in use - [abc]"),
                   ("DELETE", "/volumes/nope"): NotFound("get nope: no such volume")})
    assert volumes.rm(api, "volume rm", ["v1", "busy", "nope", "v2"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "v1\nv2\n"
    assert captured.err == ("Error response from daemon: remove busy: volume is in use - [abc]\n"
                            "Error response from daemon: get nope: no such volume\n")
    assert [c[2] for c in api.calls] == [{}] * 4
    assert volumes.rm(api, "volume rm", ["-f", "nope"]) == 1  # docker 28 prints the daemon's answer, -f or not
    assert api.calls[-1][:3] == ("DELETE", "/volumes/nope", {"force": 1})


def test_prune(monkeypatch, capsys):
    api = FakeApi({("POST", "/volumes/prune"): {"VolumesDeleted": ["v1", "v2"], "SpaceReclaimed": 123456}})
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert volumes.prune(api, "volume prune", []) == 0
    assert capsys.readouterr().out == ("WARNING! This will remove anonymous local volumes not used by at least one "
                                       "container.\nAre you sure you want to continue? [y/N] ")
    assert api.calls == []
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert volumes.prune(api, "volume prune", ["-a", "--filter", "label=x"]) == 0
    assert capsys.readouterr().out == (
        "WARNING! This will remove all local volumes not used by at least one container.\n"
        "Are you sure you want to continue? [y/N] Deleted Volumes:\nv1\nv2\n\nTotal reclaimed space: 123.5kB\n")
    assert api.calls[-1][2] == {"filters": '{"all":{"true":true},"label":{"x":true}}'}
    volumes.prune(api, "volume prune", ["-f"])
    assert api.calls[-1][2] == {}


def test_prune_with_nothing_deleted_and_conflicts(capsys):
    api = FakeApi({("POST", "/volumes/prune"): {"VolumesDeleted": None, "SpaceReclaimed": 0}})
    assert volumes.prune(api, "volume prune", ["-f"]) == 0
    assert capsys.readouterr().out == "Total reclaimed space: 0B\n"
    assert volumes.prune(api, "volume prune", ["-f", "-a", "--filter", "all=1"]) == 1
    assert capsys.readouterr().err == "conflicting options: cannot specify both --all and --filter all=1\n"
    assert len(api.calls) == 1


# ---------------------------------------------------------------- system df

DF = {"LayersSize": 0, "Images": [], "Containers": [], "BuildCache": [], "Volumes": [
    vol("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", usage={"Size": 1234567, "RefCount": 0}),
    vol("data", usage={"Size": 2048, "RefCount": 2}), vol("unk", usage={"Size": -1, "RefCount": -1})]}


def test_system_df_volumes_row(capsys):
    system.df(FakeApi({("GET", "/system/df"): DF}), "system df", [])
    lines = capsys.readouterr().out.splitlines()
    assert lines[3] == "Local Volumes   3         1         1.237MB   1.235MB (99%)"
    assert volumes.df_summary([]) == {"Type": "Local Volumes", "TotalCount": "0", "Active": "0", "Size": "0B",
                                      "Reclaimable": "0B"}


def test_system_df_verbose_volumes_section(capsys):
    system.df(FakeApi({("GET", "/system/df"): DF}), "system df", ["-v"])
    out = capsys.readouterr().out
    assert ("Local Volumes space usage:\n\n"
            "VOLUME NAME                                                        LINKS     SIZE\n"
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef   0         1.235MB\n"
            "data                                                               2         2.048kB\n"
            "unk                                                                -1        -1B\n") in out
