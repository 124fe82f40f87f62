"""Short and long syntaxes → the model."""
from __future__ import annotations

import os
import textwrap

import pytest

from berth.compose.loader import load
from berth.compose.model import DependsOn, FileRef, MountSpec, PortSpec, Resources, ServiceNetwork, WatchRule
from berth.errors import InvalidArgument


def svc(tmp_path, body, environ=None, extra="", name="s"):
    text = "services:\n  s:\n" + textwrap.indent(textwrap.dedent(body), "    ") + extra
    (tmp_path / "compose.yaml").write_text(text)
    p, _ = load(None, environ=environ or {}, cwd=str(tmp_path))
    return p.service(name)


@pytest.mark.parametrize("spec,want", [
    ('"80"', [PortSpec(80)]),
    ("80", [PortSpec(80)]),
    ('"8080:80"', [PortSpec(80, "8080")]),
    ('"127.0.0.1:8080:80/udp"', [PortSpec(80, "8080", "127.0.0.1", "udp")]),
    ('"127.0.0.1::80"', [PortSpec(80, "", "127.0.0.1")]),
    ('"[::1]:8080:80"', [PortSpec(80, "8080", "::1")]),
    ('"8000-8002:80"', [PortSpec(80, "8000-8002")]),
    ('"9090-9091:8080-8081"', [PortSpec(8080, "9090"), PortSpec(8081, "9091")]),
    ('"3000-3001"', [PortSpec(3000), PortSpec(3001)]),
    ("{target: 80, published: 8080, protocol: udp, host_ip: 0.0.0.0, mode: host}",
     [PortSpec(80, "8080", "0.0.0.0", "udp", "host")]),
    ('{target: "81", published: "9000-9001"}', [PortSpec(81, "9000-9001")]),
])
def test_ports(tmp_path, spec, want):
    assert list(svc(tmp_path, f"image: x\nports: [{spec}]\n").ports) == want


@pytest.mark.parametrize("spec", ['"80:80:80:80"', '"abc"', '"8000-8001:80-82"', '"80/xyz"', '"70000"'])
def test_bad_ports(tmp_path, spec):
    with pytest.raises(InvalidArgument, match=r"compose.yaml:5:9: services.s.ports: invalid port"):
        svc(tmp_path, f"image: x\nports:\n  - {spec}\n")


def test_short_volumes(tmp_path):
    home = os.path.expanduser("~")
    s = svc(tmp_path, """
        image: x
        volumes:
          - data:/data
          - data2:/d2:ro,nocopy
          - ./rel:/rel
          - ../up:/up:rw
          - /abs:/abs:ro
          - ~/h:/h:rshared
          - /anon
          - /c:/c:cached,z
    """, extra="volumes: {data: {}, data2: {}}\n")
    assert list(s.volumes) == [
        MountSpec("volume", "/data", "data"),
        MountSpec("volume", "/d2", "data2", read_only=True, volume_nocopy=True),
        MountSpec("bind", "/rel", str(tmp_path / "rel")),
        MountSpec("bind", "/up", os.path.normpath(str(tmp_path / ".." / "up"))),
        MountSpec("bind", "/abs", "/abs", read_only=True),
        MountSpec("bind", "/h", os.path.join(home, "h"), bind_propagation="rshared"),
        MountSpec("volume", "/anon", ""),
        MountSpec("bind", "/c", "/c", consistency="cached"),
    ]


def test_long_volumes(tmp_path):
    s = svc(tmp_path, """
        image: x
        volumes:
          - {type: volume, source: data, target: /data, read_only: true, volume: {nocopy: true}}
          - {type: bind, source: ./src, target: /src, bind: {create_host_path: false, propagation: rslave}}
          - {type: tmpfs, target: /tmp, tmpfs: {size: 64m, mode: "1777"}}
          - {type: tmpfs, target: /t2, tmpfs: {size: 1000, mode: 0o700}}
          - {type: volume, target: /anon}
    """, extra="volumes: {data: {}}\n")
    assert list(s.volumes) == [
        MountSpec("volume", "/data", "data", read_only=True, volume_nocopy=True),
        MountSpec("bind", "/src", str(tmp_path / "src"), bind_create_host_path=False, bind_propagation="rslave"),
        MountSpec("tmpfs", "/tmp", tmpfs_size=64 * 1024 * 1024, tmpfs_mode=0o1777),
        MountSpec("tmpfs", "/t2", tmpfs_size=1000, tmpfs_mode=0o700),
        MountSpec("volume", "/anon"),
    ]


@pytest.mark.parametrize("spec", ['"a:b:c:d"', '"relative"', '"data:rel"', '":/x"', '"/a:/b:bogus"',
                                  "{type: bind, target: /x}", "{type: volume, source: data, target: rel}"])
def test_bad_volumes(tmp_path, spec):
    with pytest.raises(InvalidArgument, match=r"compose.yaml:5:9: services.s.volumes: invalid (volume|mount)"):
        svc(tmp_path, f"image: x\nvolumes:\n  - {spec}\n", extra="volumes: {data: {}}\n")


def test_environment_forms_and_env_file_order(tmp_path):
    (tmp_path / "a.env").write_text("FROM_FILE=1\nSHARED=file\n")
    (tmp_path / "b.env").write_text("SECOND=${FROM_FILE}x\n")
    s = svc(tmp_path, """
        image: x
        env_file: [a.env, {path: b.env}, {path: missing.env, required: false}]
        environment:
          - SHARED=env
          - EMPTY=
          - FROM_HOST
          - NOT_SET
    """, environ={"FROM_HOST": "h"})
    assert s.environment == (("FROM_FILE", "1"), ("SHARED", "env"), ("SECOND", "1x"), ("EMPTY", ""),
                             ("FROM_HOST", "h"), ("NOT_SET", None))


def test_environment_map_values(tmp_path):
    s = svc(tmp_path, "image: x\nenvironment: {A: 1, B: true, C: null, D: 1.5, E: ''}\n", environ={"C": "c"})
    assert s.environment == (("A", "1"), ("B", "true"), ("C", "c"), ("D", "1.5"), ("E", ""))


def test_env_file_string_and_required_missing(tmp_path):
    (tmp_path / "e.env").write_text("A=1\n")
    assert svc(tmp_path, "image: x\nenv_file: e.env\n").environment == (("A", "1"),)
    with pytest.raises(InvalidArgument, match=r"compose.yaml:4:5: services.s.env_file: env file .*nope.env not found"):
        svc(tmp_path, "image: x\nenv_file: nope.env\n")


def test_command_and_entrypoint(tmp_path):
    s = svc(tmp_path, "image: x\ncommand: sh -c 'echo hi there'\nentrypoint: [/bin/tini, --]\n")
    assert s.command == ("sh", "-c", "echo hi there")
    assert s.entrypoint == ("/bin/tini", "--")
    assert svc(tmp_path, "image: x\n").command is None
    assert svc(tmp_path, "image: x\ncommand: []\n").command == ()


def test_healthcheck(tmp_path):
    h = svc(tmp_path, """
        image: x
        healthcheck:
          test: curl -f http://localhost
          interval: 1m30s
          timeout: 10s
          retries: 3
          start_period: 500ms
          start_interval: 1h
    """).healthcheck
    assert h.test == ("CMD-SHELL", "curl -f http://localhost")
    assert (h.interval, h.timeout, h.retries, h.start_period, h.start_interval) == (90.0, 10.0, 3, 0.5, 3600.0)
    h = svc(tmp_path, "image: x\nhealthcheck: {test: [CMD, pg_isready]}\n").healthcheck
    assert h.test == ("CMD", "pg_isready") and h.interval is None
    assert svc(tmp_path, "image: x\nhealthcheck: {disable: true}\n").healthcheck.disable
    assert svc(tmp_path, "image: x\nhealthcheck: {test: [NONE]}\n").healthcheck.disable
    with pytest.raises(InvalidArgument, match="interval"):
        svc(tmp_path, "image: x\nhealthcheck: {interval: 10parsecs}\n")


def test_deploy_and_scale(tmp_path):
    s = svc(tmp_path, """
        image: x
        deploy:
          replicas: 3
          resources:
            limits: {cpus: "0.5", memory: 512M, pids: 100}
            reservations: {cpus: 0.25, memory: 1g}
    """)
    assert s.replicas == 3
    assert s.limits == Resources(0.5, 512 * 1024 ** 2, 100)
    assert s.reservations == Resources(0.25, 1024 ** 3, 0)
    assert svc(tmp_path, "image: x\nscale: 2\n").replicas == 2
    assert svc(tmp_path, "image: x\nscale: 2\ndeploy: {replicas: 2}\n").replicas == 2
    assert svc(tmp_path, "image: x\nscale: '${N:-4}'\n").replicas == 4
    with pytest.raises(InvalidArgument, match="distinct values on 'scale' and 'deploy.replicas'"):
        svc(tmp_path, "image: x\nscale: 2\ndeploy: {replicas: 3}\n")


def test_service_level_limits(tmp_path):
    s = svc(tmp_path, "image: x\ncpus: 1.5\nmem_limit: 1g\npids_limit: 10\n")
    assert s.limits == Resources(1.5, 1024 ** 3, 10)


def test_misc_scalars(tmp_path):
    s = svc(tmp_path, """
        image: x
        stop_grace_period: 1m
        stop_signal: SIGINT
        ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 65535}
        sysctls: [net.core.somaxconn=1024]
        logging: {driver: json-file, options: {max-size: 10m, max-file: 3}}
        labels: [a=b, c]
        extra_hosts: ["somehost:162.242.195.82", "other=50.31.209.229", "v6:::1"]
        init: true
        privileged: "true"
        read_only: true
        tty: true
        stdin_open: true
        restart: on-failure:3
        container_name: c1
        hostname: h
        domainname: d
        user: "1000:1000"
        working_dir: /w
        dns: [1.1.1.1]
        cap_add: [SYS_ADMIN]
        cap_drop: [ALL]
        pull_policy: always
        tmpfs: /run
        expose: [3000, "4000/udp"]
    """)
    assert s.stop_grace_period == 60.0 and s.stop_signal == "SIGINT"
    assert s.ulimits == (("nofile", 1024, 2048), ("nproc", 65535, 65535))
    assert s.sysctls == (("net.core.somaxconn", "1024"),)
    assert s.logging_driver == "json-file" and s.logging_options == (("max-size", "10m"), ("max-file", "3"))
    assert s.labels == (("a", "b"), ("c", ""))
    assert s.extra_hosts == ("somehost:162.242.195.82", "other:50.31.209.229", "v6:::1")
    assert (s.init, s.privileged, s.read_only, s.tty, s.stdin_open) == (True, True, True, True, True)
    assert (s.restart, s.container_name, s.hostname, s.domainname, s.user, s.working_dir) == (
        "on-failure:3", "c1", "h", "d", "1000:1000", "/w")
    assert (s.dns, s.cap_add, s.cap_drop, s.pull_policy, s.tmpfs) == (
        ("1.1.1.1",), ("SYS_ADMIN",), ("ALL",), "always", ("/run",))
    assert s.expose == ("3000", "4000/udp")


def test_extra_hosts_map(tmp_path):
    s = svc(tmp_path, "image: x\nextra_hosts: {a: 1.2.3.4, b: [5.6.7.8, '::1']}\n")
    assert s.extra_hosts == ("a:1.2.3.4", "b:5.6.7.8", "b:::1")


def test_networks_forms(tmp_path):
    nets = "networks: {front: {}, back: {}}\n"
    s = svc(tmp_path, "image: x\nnetworks: [front, back]\n", extra=nets)
    assert s.networks == (ServiceNetwork("front"), ServiceNetwork("back"))
    s = svc(tmp_path, """
        image: x
        networks:
          front: {aliases: [web, www], ipv4_address: 172.16.0.5, ipv6_address: "fd00::5", priority: 10}
          back:
    """, extra=nets)
    assert s.networks == (ServiceNetwork("front", ("web", "www"), "172.16.0.5", "fd00::5", 10), ServiceNetwork("back"))
    assert svc(tmp_path, "image: x\nnetwork_mode: host\n").network_mode == "host"


def test_depends_on_forms(tmp_path):
    other = "  db: {image: db}\n  cache: {image: c}\n"
    s = svc(tmp_path, "image: x\ndepends_on: [db, cache]\n", extra=other)
    assert s.depends_on == (DependsOn("db"), DependsOn("cache"))
    s = svc(tmp_path, """
        image: x
        depends_on:
          db: {condition: service_healthy, restart: true}
          cache: {condition: service_completed_successfully, required: false}
    """, extra=other)
    assert s.depends_on == (DependsOn("db", "service_healthy", restart=True),
                            DependsOn("cache", "service_completed_successfully", required=False))


def test_configs_and_secrets(tmp_path):
    s = svc(tmp_path, """
        image: x
        configs: [c1, {source: c2, target: /etc/c2.conf, uid: "100", gid: "101", mode: 0440}]
        secrets: [s1, {source: s2, target: named}, {source: s3, target: /abs/s3, mode: 256}]
    """, extra="configs: {c1: {content: hi}, c2: {file: ./c2}}\n"
               "secrets: {s1: {file: ./s1}, s2: {environment: T}, s3: {file: /s3}}\n")
    assert s.configs == (FileRef("c1", "/c1"), FileRef("c2", "/etc/c2.conf", "100", "101", 0o440))
    assert s.secrets == (FileRef("s1", "/run/secrets/s1"), FileRef("s2", "/run/secrets/named"),
                         FileRef("s3", "/abs/s3", mode=256))


def test_build_forms(tmp_path):
    b = svc(tmp_path, "build: ./app\n").build
    assert b.context == str(tmp_path / "app") and b.dockerfile == "Dockerfile"
    b = svc(tmp_path, """
        build:
          context: ~/ctx
          dockerfile: other.Dockerfile
          args: [A=1, B]
          target: prod
          labels: {l: v}
          cache_from: [img:cache]
          network: host
          extra_hosts: ["h:1.2.3.4"]
          no_cache: true
          pull: true
    """).build
    assert b.context == os.path.join(os.path.expanduser("~"), "ctx")
    assert (b.dockerfile, b.args, b.target, b.labels) == ("other.Dockerfile", (("A", "1"), ("B", None)), "prod",
                                                          (("l", "v"),))
    assert (b.cache_from, b.network, b.extra_hosts, b.no_cache, b.pull) == (("img:cache",), "host", ("h:1.2.3.4",),
                                                                           True, True)
    assert svc(tmp_path, "build: https://github.com/x/y.git#main\n").build.context == "https://github.com/x/y.git#main"


def test_develop_watch(tmp_path):
    s = svc(tmp_path, """
        image: x
        develop:
          watch:
            - {action: sync, path: ./src, target: /app/src, ignore: [node_modules/]}
            - {action: rebuild, path: package.json}
            - {action: sync+restart, path: ./conf, target: /etc/conf, ignore: "*.tmp"}
    """)
    assert s.watch == (WatchRule("sync", str(tmp_path / "src"), "/app/src", ("node_modules/",)),
                       WatchRule("rebuild", str(tmp_path / "package.json")),
                       WatchRule("sync+restart", str(tmp_path / "conf"), "/etc/conf", ("*.tmp",)))
    with pytest.raises(InvalidArgument, match="action must be one of"):
        svc(tmp_path, "image: x\ndevelop: {watch: [{action: teleport, path: .}]}\n")


def test_interpolated_typed_values(tmp_path):
    s = svc(tmp_path, "image: x\nports: [{target: '${P}'}]\nprivileged: '${PRIV}'\n",
            environ={"P": "8080", "PRIV": "true"})
    assert s.ports == (PortSpec(8080),) and s.privileged is True
