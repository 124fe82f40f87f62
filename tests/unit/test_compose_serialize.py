"""to_dict / to_yaml (docker compose config) and config_hash."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from berth.compose.loader import load
from berth.compose.model import Resources
from berth.compose.serialize import config_hash, go_duration, to_dict, to_yaml

FULL = """
name: demo
x-top: {k: v}
services:
  web:
    build: {context: ./app, args: [A=1, B], target: prod}
    image: web:1
    command: sh -c 'echo $$HOME'
    entrypoint: [/tini, --]
    environment: {A: "1", B: "yes", N: null}
    ports: ["8080:80", "127.0.0.1:9000-9001:9000-9001/udp", "3000"]
    expose: ["5000"]
    volumes: [data:/data, ./src:/src:ro, /anon, {type: tmpfs, target: /tmp, tmpfs: {size: 1m}}]
    tmpfs: [/run]
    networks: {front: {aliases: [w], ipv4_address: 172.20.0.5}, back: }
    depends_on: {db: {condition: service_healthy, restart: true}}
    healthcheck: {test: [CMD, curl, -f, x], interval: 1m30s, timeout: 500ms, retries: 3}
    restart: unless-stopped
    deploy: {replicas: 2, resources: {limits: {cpus: "0.5", memory: 64M}}}
    labels: {a: b}
    user: "1000"
    extra_hosts: ["h:1.2.3.4"]
    dns: [9.9.9.9]
    init: true
    stop_grace_period: 1h2m3s
    cap_add: [NET_ADMIN]
    ulimits: {nofile: {soft: 1, hard: 2}, nproc: 3}
    sysctls: {net.x: "1"}
    logging: {driver: local, options: {max-size: 1m}}
    configs: [{source: c, target: /c, mode: 0440}]
    secrets: [s]
    develop: {watch: [{action: sync, path: ./src, target: /src, ignore: [x]}]}
    x-meta: {a: [1, 2]}
  db:
    image: postgres
    healthcheck: {disable: true}
    networks: [back]
    profiles: [data]
networks:
  front:
    driver_opts: {mtu: "1400"}
    ipam: {config: [{subnet: 172.20.0.0/16, aux_addresses: {r: 172.20.0.2}}]}
  back: {internal: true}
  ext: {external: true, name: outside}
volumes:
  data: {labels: {l: v}}
configs:
  c: {content: "hello $$x"}
secrets:
  s: {file: ./s.txt}
"""


def load_text(tmp_path, text, **kw):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
    kw.setdefault("environ", {})
    return load(None, cwd=str(tmp_path), **kw)[0]


@pytest.mark.parametrize("secs,want", [(0, "0s"), (10, "10s"), (90, "1m30s"), (0.5, "500ms"), (3600, "1h0m0s"),
                                       (3723, "1h2m3s"), (1.5, "1.5s"), (0.000001, "1µs")])
def test_go_duration(secs, want):
    assert go_duration(secs) == want


def test_to_dict_shape(tmp_path):
    p = load_text(tmp_path, FULL, profiles=["data"])
    d = to_dict(p)
    assert d["name"] == "demo"
    web = d["services"]["web"]
    assert web["ports"][0] == {"mode": "ingress", "target": 80, "published": "8080", "protocol": "tcp"}
    assert web["volumes"][1] == {"type": "bind", "source": str(tmp_path / "src"), "target": "/src", "read_only": True,
                                 "bind": {"create_host_path": True}}
    assert web["command"] == ["sh", "-c", "echo $$HOME"]          # escaped again, as compose config does
    assert web["healthcheck"]["interval"] == "1m30s"
    assert web["deploy"] == {"replicas": 2, "resources": {"limits": {"cpus": 0.5, "memory": 64 * 1024 * 1024}}}
    assert web["depends_on"] == {"db": {"condition": "service_healthy", "restart": True, "required": True}}
    assert web["x-meta"] == {"a": [1, 2]}
    assert "default" not in d["networks"]      # every service names its networks
    assert d["networks"]["ext"] == {"name": "outside", "external": True}
    assert d["networks"]["front"]["ipam"]["config"][0]["aux_addresses"] == {"r": "172.20.0.2"}
    assert d["volumes"]["data"] == {"name": "demo_data", "driver": "local", "labels": {"l": "v"}}
    assert d["configs"]["c"] == {"name": "demo_c", "content": "hello $$x"}
    assert d["x-top"] == {"k": "v"}
    assert d["services"]["db"]["healthcheck"] == {"disable": True}


def test_round_trip(tmp_path):
    p = load_text(tmp_path, FULL, profiles=["data"])
    text = to_yaml(p)
    other = tmp_path / "again"
    other.mkdir()
    (other / "compose.yaml").write_text(text)
    q, warnings = load(None, cwd=str(other), environ={}, profiles=["data"])
    assert warnings == []
    assert q.services == p.services
    assert q.networks == p.networks and q.volumes == p.volumes
    assert q.configs == p.configs and q.secrets == p.secrets
    assert q.extensions == p.extensions and q.name == p.name
    assert yaml.safe_load(text) == to_dict(p)


def test_round_trip_quotes_ambiguous_strings(tmp_path):
    p = load_text(tmp_path, "services: {a: {image: a, environment: {A: 'yes', B: '0o17', C: '22:22', D: 'null'}}}\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "compose.yaml").write_text(to_yaml(p))
    q, _ = load(None, cwd=str(tmp_path / "b"), environ={})
    assert q.service("a").environment == p.service("a").environment == (
        ("A", "yes"), ("B", "0o17"), ("C", "22:22"), ("D", "null"))


def test_config_hash_stable_and_sensitive(tmp_path):
    p = load_text(tmp_path, FULL, profiles=["data"])
    web = p.service("web")
    h = config_hash(web)
    assert len(h) == 64 and int(h, 16) >= 0
    assert config_hash(load_text(tmp_path, FULL, profiles=["data"]).service("web")) == h
    changed = dataclasses.replace(web, environment=web.environment + (("NEW", "1"),))
    assert config_hash(changed) != h
    assert config_hash(dataclasses.replace(web, image="web:2")) != h
    assert config_hash(dataclasses.replace(web, limits=Resources(1.0, 0, 0))) != h
    assert config_hash(dataclasses.replace(web, ports=web.ports[:1])) != h
    # what does not change the container
    assert config_hash(dataclasses.replace(web, replicas=7)) == h
    assert config_hash(dataclasses.replace(web, build=None)) == h
    assert config_hash(dataclasses.replace(web, depends_on=())) == h
    assert config_hash(dataclasses.replace(web, profiles=("x",), pull_policy="always", watch=())) == h


def test_config_hash_env_change_through_loader(tmp_path):
    text = "services: {a: {image: a, environment: {X: '${X}'}, scale: '${N}'}}\n"
    h1 = config_hash(load_text(tmp_path, text, environ={"X": "1", "N": "1"}).service("a"))
    h2 = config_hash(load_text(tmp_path, text, environ={"X": "2", "N": "1"}).service("a"))
    h3 = config_hash(load_text(tmp_path, text, environ={"X": "1", "N": "5"}).service("a"))
    assert h1 != h2 and h1 == h3


def test_config_hash_stable_across_processes(tmp_path):
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(FULL))
    code = ("import sys; from berth.compose.loader import load; from berth.compose.serialize import config_hash;"
            "p,_=load(None, cwd=sys.argv[1], environ={}, profiles=['data']); print(config_hash(p.service('web')))")
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, check=True,
                                capture_output=True, text=True).stdout.strip())
    assert len(outs) == 1
    assert outs.pop() == config_hash(load_text(tmp_path, FULL, profiles=["data"]).service("web"))
