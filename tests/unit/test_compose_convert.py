"""Compose services as POST /containers/create bodies (pure)."""
from __future__ import annotations

import os

import pytest

from berth.compose import convert
from berth.compose import model as m
from berth.compose.buildctx import context_tar
from berth.util.dockerignore import Matcher, ignore_file_for, read_ignore_file
from berth.compose.convert import container_config, container_name, published_port
from berth.compose.model import (DependsOn, FileRef, FileSource, Healthcheck, MountSpec, Network, PortSpec, Project,
                                 Resources, Service, ServiceNetwork, Volume)


def project(*services: Service, **kw) -> Project:
    base = dict(name="shop", working_dir="/srv/shop", config_files=("/srv/shop/compose.yaml", "/srv/shop/o.yaml"),
                services=services, networks=(Network("default", "shop_default"), Network("back", "shop_back")),
                volumes=(Volume("data", "shop_data"),))
    base.update(kw)
    return Project(**base)


def test_names():
    svc = Service("web", image="nginx")
    p = project(svc)
    assert container_name(p, svc, 2) == "shop-web-2"
    assert container_name(p, Service("web", container_name="custom"), 1) == "custom"
    one = container_name(p, svc, 1, oneoff=True, slug="0123456789abcdef0123")
    assert one == "shop-web-run-0123456789ab"
    assert container_name(p, svc, 1, oneoff=True).startswith("shop-web-run-")
    assert len(container_name(p, svc, 1, oneoff=True).rsplit("-", 1)[1]) == 12


def test_minimal_body_and_labels():
    svc = Service("web", image="nginx:1", labels=(("a", "b"), (m.LABEL_PROJECT, "spoof")),
                  depends_on=(DependsOn("db", "service_healthy"), DependsOn("cache", restart=True)))
    body = container_config(project(svc), svc, 3, "sha256:abc", "HASH")
    assert body["Image"] == "nginx:1"
    assert "Cmd" not in body and "Entrypoint" not in body
    assert body["Labels"] == {
        "a": "b", m.LABEL_PROJECT: "shop", m.LABEL_SERVICE: "web", m.LABEL_NUMBER: "3", m.LABEL_ONEOFF: "False",
        m.LABEL_CONFIG_HASH: "HASH", m.LABEL_WORKING_DIR: "/srv/shop",
        m.LABEL_CONFIG_FILES: "/srv/shop/compose.yaml,/srv/shop/o.yaml", m.LABEL_VERSION: convert.COMPOSE_VERSION,
        m.LABEL_DEPENDS_ON: "db:service_healthy:false,cache:service_started:true", m.LABEL_IMAGE: "sha256:abc"}
    assert body["HostConfig"]["NetworkMode"] == "shop_default"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"shop_default": {"Aliases": ["shop-web-3", "web"]}}}
    oneoff = container_config(project(svc), svc, 1, "sha256:abc", "HASH", oneoff=True)
    assert oneoff["Labels"][m.LABEL_ONEOFF] == "True"
    assert oneoff["NetworkingConfig"]["EndpointsConfig"]["shop_default"]["Aliases"] == []


def test_built_service_image_name():
    svc = Service("api", build=m.BuildSpec(context="/srv/shop"))
    assert container_config(project(svc), svc, 1, "sha256:1", "h")["Image"] == "shop-api"


def test_process_fields():
    svc = Service("web", image="x", command=("run", "it"), entrypoint=(), environment=(
        ("A", "1"), ("B", None), ("C", "x=y"), ("A", "2")), hostname="h", domainname="d.example", user="1:2",
        working_dir="/app", tty=True, stdin_open=True, stop_signal="SIGINT", stop_grace_period=12.5)
    body = container_config(project(svc), svc, 1, "i", "h")
    assert body["Cmd"] == ["run", "it"] and body["Entrypoint"] == []
    assert body["Env"] == ["C=x=y", "A=2"]
    assert (body["Hostname"], body["Domainname"], body["User"], body["WorkingDir"]) == ("h", "d.example", "1:2", "/app")
    assert body["Tty"] is True and body["OpenStdin"] is True
    assert body["StopSignal"] == "SIGINT" and body["StopTimeout"] == 12


def test_healthcheck_in_nanoseconds():
    svc = Service("db", image="x", healthcheck=Healthcheck(("CMD-SHELL", "true"), interval=0.5, timeout=2,
                                                            retries=3, start_period=1.5, start_interval=0.25))
    assert container_config(project(svc), svc, 1, "i", "h")["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"], "Interval": 500_000_000, "Timeout": 2_000_000_000, "Retries": 3,
        "StartPeriod": 1_500_000_000, "StartInterval": 250_000_000}
    off = Service("db", image="x", healthcheck=Healthcheck(disable=True))
    assert container_config(project(off), off, 1, "i", "h")["Healthcheck"] == {"Test": ["NONE"]}


def test_ports_and_range_spreading():
    svc = Service("web", image="x", expose=("3000", "4000-4001/udp"), ports=(
        PortSpec(80, "8000-8002"), PortSpec(53, "5353", "127.0.0.1", "udp"), PortSpec(9000)))
    p = project(svc)
    b1 = container_config(p, svc, 1, "i", "h")
    assert b1["ExposedPorts"] == {"3000/tcp": {}, "4000/udp": {}, "4001/udp": {}, "80/tcp": {}, "53/udp": {},
                                  "9000/tcp": {}}
    assert b1["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8000"}],
                                                "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
                                                "9000/tcp": [{"HostIp": "", "HostPort": ""}]}
    b3 = container_config(p, svc, 3, "i", "h")
    assert b3["HostConfig"]["PortBindings"]["80/tcp"] == [{"HostIp": "", "HostPort": "8002"}]
    assert published_port("8000-8002", 4) == "" and published_port("8080", 5) == "8080"


def test_volumes_binds_mounts_tmpfs():
    svc = Service("db", image="x", volumes=(
        MountSpec("volume", "/var/lib/data", "data"),
        MountSpec("volume", "/cache", "", volume_nocopy=True),
        MountSpec("volume", "/ro", "data", read_only=True),
        MountSpec("bind", "/etc/app", "/srv/shop/conf", read_only=True),
        MountSpec("bind", "/strict", "/srv/shop/strict", bind_create_host_path=False, bind_propagation="rshared"),
        MountSpec("tmpfs", "/scratch", tmpfs_size=1 << 20, tmpfs_mode=0o1777),
    ), tmpfs=("/run", "/tmp:size=64m,mode=1777"))
    host = container_config(project(svc), svc, 1, "i", "h")["HostConfig"]
    assert host["Binds"] == ["/srv/shop/conf:/etc/app:ro"]
    assert host["Mounts"] == [
        {"Type": "volume", "Target": "/var/lib/data", "ReadOnly": False, "Source": "shop_data"},
        {"Type": "volume", "Target": "/cache", "ReadOnly": False, "VolumeOptions": {"NoCopy": True}},
        {"Type": "volume", "Target": "/ro", "ReadOnly": True, "Source": "shop_data"},
        {"Type": "bind", "Source": "/srv/shop/strict", "Target": "/strict", "ReadOnly": False,
         "BindOptions": {"Propagation": "rshared", "CreateMountpoint": False}},
        {"Type": "tmpfs", "Target": "/scratch", "ReadOnly": False, "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}},
    ]
    assert host["Tmpfs"] == {"/run": "", "/tmp": "size=64m,mode=1777"}
    inherited = container_config(project(svc), svc, 1, "i", "h", inherit_volumes={"/cache": "abc123"})
    assert inherited["HostConfig"]["Mounts"][1]["Source"] == "abc123"


def test_configs_and_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    svc = Service("web", image="x", configs=(FileRef("conf", "/etc/app.conf"), FileRef("inline", "")),
                  secrets=(FileRef("token", ""), FileRef("key", "api.key")))
    p = project(svc, configs=(FileSource("conf", "shop_conf", file="/srv/shop/app.conf"),
                              FileSource("inline", "shop_inline", content="hello")),
                secrets=(FileSource("token", "shop_token", environment="TOKEN"),
                         FileSource("key", "shop_key", file="/srv/shop/key")))
    mounts = container_config(p, svc, 1, "i", "h")["HostConfig"]["Mounts"]
    base = str(tmp_path / "berth-compose" / "shop")
    assert mounts == [
        {"Type": "bind", "Source": f"{base}/secrets/token", "Target": "/run/secrets/token", "ReadOnly": True},
        {"Type": "bind", "Source": "/srv/shop/key", "Target": "/run/secrets/api.key", "ReadOnly": True},
        {"Type": "bind", "Source": "/srv/shop/app.conf", "Target": "/etc/app.conf", "ReadOnly": True},
        {"Type": "bind", "Source": f"{base}/configs/inline", "Target": "/inline", "ReadOnly": True},
    ]
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert convert.files_dir(p) == f"/tmp/berth-compose-{os.getuid()}/shop"
    ext = project(svc, configs=(FileSource("conf", "c", external=True), FileSource("inline", "i", content="x")),
                  secrets=p.secrets)
    with pytest.raises(ValueError, match="external config"):
        container_config(ext, svc, 1, "i", "h")


def test_networks_aliases_ipam_and_modes():
    svc = Service("web", image="x", networks=(ServiceNetwork("default", ("www",)),
                                              ServiceNetwork("back", ("api",), ipv4_address="10.5.0.9", priority=10)))
    p = project(svc)
    body = container_config(p, svc, 2, "i", "h")
    assert body["HostConfig"]["NetworkMode"] == "shop_back"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"shop_back": {
        "Aliases": ["shop-web-2", "web", "api"], "IPAMConfig": {"IPv4Address": "10.5.0.9"}}}}
    assert convert.extra_networks(p, svc, 2) == [("shop_default", {"Aliases": ["shop-web-2", "web", "www"]})]
    host = Service("h", image="x", network_mode="host")
    b = container_config(p, host, 1, "i", "h")
    assert b["HostConfig"]["NetworkMode"] == "host" and "NetworkingConfig" not in b
    side = Service("s", image="x", network_mode="service:vpn")
    assert container_config(p, side, 1, "i", "h", container_ids={"vpn": "abc"})["HostConfig"]["NetworkMode"] == \
        "container:abc"
    with pytest.raises(ValueError, match="vpn"):
        container_config(p, side, 1, "i", "h")
    bare = Project("p", "/w", (), (Service("a", image="x"),))
    assert container_config(bare, bare.services[0], 1, "i", "h")["HostConfig"]["NetworkMode"] == "none"


def test_host_config_fields():
    svc = Service("app", image="x", restart="on-failure:3", limits=Resources(cpus=1.5, memory=64 << 20, pids=100),
                  reservations=Resources(memory=32 << 20), cap_add=("NET_ADMIN",), cap_drop=("ALL",),
                  privileged=True, read_only=True, ulimits=(("nofile", 1024, 2048),), sysctls=(("net.core.somaxconn", "1024"),),
                  logging_driver="json-file", logging_options=(("max-size", "1m"),),
                  extra_hosts=("db=10.0.0.2", "cache:10.0.0.3"), dns=("1.1.1.1",), init=True)
    host = container_config(project(svc), svc, 1, "i", "h")["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"], host["MemoryReservation"]) == (
        64 << 20, 1_500_000_000, 100, 32 << 20)
    assert host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["ALL"]
    assert host["Privileged"] is True and host["ReadonlyRootfs"] is True
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["Sysctls"] == {"net.core.somaxconn": "1024"}
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert host["ExtraHosts"] == ["db:10.0.0.2", "cache:10.0.0.3"]
    assert host["Dns"] == ["1.1.1.1"] and host["Init"] is True
    plain = container_config(project(Service("b", image="x", restart="always")), Service("b", image="x", restart="always"),
                             1, "i", "h")["HostConfig"]
    assert plain["RestartPolicy"] == {"Name": "always"}
    assert not {"Memory", "Privileged", "Init", "LogConfig", "Dns"} & set(plain)


def test_build_context_honours_dockerignore(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / ".dockerignore").write_text("# comment\n*.log\nnode_modules\n!keep.log\nsub/**/*.tmp\nDockerfile\n")
    for rel in ("a.txt", "x.log", "keep.log", "node_modules/m.js", "sub/b.txt", "sub/deep/c.tmp", "sub/d.tmp"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    import tarfile
    f, name = context_tar(str(tmp_path))
    with tarfile.open(fileobj=f) as tar:
        names = sorted(tar.getnames())
    assert name == "Dockerfile"
    assert names == [".dockerignore", "Dockerfile", "a.txt", "keep.log", "sub", "sub/b.txt", "sub/deep"]
    assert read_ignore_file(ignore_file_for(str(tmp_path / "nope"), None)) == []
    assert Matcher(["a/*/c"]).excluded("a/b/c/d") and not Matcher(["a/*/c"]).excluded("a/b/x")


def test_build_context_dockerfile_outside(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("x")
    (tmp_path / "Other.dockerfile").write_text("FROM busybox\n")
    import tarfile
    f, name = context_tar(str(ctx), str(tmp_path / "Other.dockerfile"))
    with tarfile.open(fileobj=f) as tar:
        assert sorted(tar.getnames()) == sorted(["f", name])
        assert tar.extractfile(name).read() == b"FROM busybox\n"
    assert name.startswith(".dockerfile.")
