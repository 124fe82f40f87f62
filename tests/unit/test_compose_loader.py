"""The compose loader: file discovery, project name, .env, merging, profiles, engine names."""
from __future__ import annotations

import os
import textwrap

import pytest

from berth.compose.loader import find_files, load, normalize_project_name
from berth.errors import InvalidArgument


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)


def load_dir(d, files=None, **kw):
    kw.setdefault("environ", {})
    return load(files, cwd=str(d), **kw)


# --- discovery --------------------------------------------------------------------------------------------
def test_find_files_prefers_compose_yaml_and_adds_override(tmp_path):
    write(tmp_path / "docker-compose.yml", "services: {}\n")
    write(tmp_path / "compose.yaml", "services: {}\n")
    assert find_files(str(tmp_path)) == [str(tmp_path / "compose.yaml")]
    write(tmp_path / "compose.override.yaml", "services: {}\n")
    assert find_files(str(tmp_path)) == [str(tmp_path / "compose.yaml"), str(tmp_path / "compose.override.yaml")]


def test_find_files_docker_compose_yml_override_yml(tmp_path):
    write(tmp_path / "docker-compose.yml", "services: {}\n")
    write(tmp_path / "docker-compose.override.yml", "services: {}\n")
    assert find_files(str(tmp_path)) == [str(tmp_path / "docker-compose.yml"),
                                         str(tmp_path / "docker-compose.override.yml")]


def test_find_files_in_nearest_parent(tmp_path):
    write(tmp_path / "compose.yml", "services: {}\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert find_files(str(sub)) == [str(tmp_path / "compose.yml")]
    write(tmp_path / "a" / "compose.yaml", "services: {}\n")
    assert find_files(str(sub)) == [str(tmp_path / "a" / "compose.yaml")]


def test_find_files_none(tmp_path):
    with pytest.raises(InvalidArgument, match="no configuration file provided"):
        find_files(str(tmp_path))


def test_load_discovers_from_subdir_and_uses_file_dir(tmp_path):
    write(tmp_path / "proj" / "compose.yaml", "services: {web: {image: x, build: ./app}}\n")
    sub = tmp_path / "proj" / "deep"
    sub.mkdir()
    p, _ = load_dir(sub)
    assert p.working_dir == str(tmp_path / "proj")
    assert p.config_files == (str(tmp_path / "proj" / "compose.yaml"),)
    assert p.service("web").build.context == str(tmp_path / "proj" / "app")


def test_compose_file_variable(tmp_path):
    write(tmp_path / "a.yaml", "services: {a: {image: a}}\n")
    write(tmp_path / "b.yaml", "services: {b: {image: b}}\n")
    p, _ = load_dir(tmp_path, environ={"COMPOSE_FILE": f"a.yaml{os.pathsep}b.yaml"})
    assert [s.name for s in p.services] == ["a", "b"]


# --- project name -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,want", [("My App", "myapp"), ("_-x.Y", "xy"), ("abc_1-2", "abc_1-2"),
                                      ("--Foo", "foo"), ("..", "")])
def test_normalize_project_name(raw, want):
    assert normalize_project_name(raw) == want


def test_project_name_precedence(tmp_path):
    d = tmp_path / "Dir.Name"
    write(d / "compose.yaml", "name: fromfile\nservices: {a: {image: a}}\n")
    assert load_dir(d)[0].name == "fromfile"
    write(d / ".env", "COMPOSE_PROJECT_NAME=fromdotenv\n")
    assert load_dir(d)[0].name == "fromdotenv"
    assert load_dir(d, environ={"COMPOSE_PROJECT_NAME": "fromenv"})[0].name == "fromenv"
    assert load_dir(d, project_name="fromflag", environ={"COMPOSE_PROJECT_NAME": "fromenv"})[0].name == "fromflag"


def test_project_name_from_directory_normalised(tmp_path):
    d = tmp_path / "My.Project_X"
    write(d / "compose.yaml", "services: {a: {image: a}}\n")
    p, _ = load_dir(d)
    assert p.name == "myproject_x"
    assert p.networks[0].name == "myproject_x_default"


def test_project_name_interpolated_from_file(tmp_path):
    write(tmp_path / "compose.yaml", "name: app-${STAGE}\nservices: {a: {image: a}}\n")
    assert load_dir(tmp_path, environ={"STAGE": "dev"})[0].name == "app-dev"


def test_explicit_invalid_name_is_an_error(tmp_path):
    write(tmp_path / "compose.yaml", "services: {a: {image: a}}\n")
    with pytest.raises(InvalidArgument, match='invalid project name "MyApp"'):
        load_dir(tmp_path, project_name="MyApp")


def test_empty_directory_name_is_an_error(tmp_path):
    d = tmp_path / "___"
    write(d / "compose.yaml", "services: {a: {image: a}}\n")
    with pytest.raises(InvalidArgument, match="project name must not be empty"):
        load_dir(d)


# --- .env and environment ---------------------------------------------------------------------------------
def test_dotenv_feeds_interpolation_and_os_env_wins(tmp_path):
    write(tmp_path / "compose.yaml", "services: {a: {image: '${IMG}:${TAG}'}}\n")
    write(tmp_path / ".env", "IMG=fromdotenv\nTAG=1\n")
    p, _ = load_dir(tmp_path, environ={"TAG": "2"})
    assert p.service("a").image == "fromdotenv:2"
    assert ("IMG", "fromdotenv") in p.environment and ("TAG", "2") in p.environment


def test_env_file_flag_replaces_dotenv(tmp_path):
    write(tmp_path / "compose.yaml", "services: {a: {image: '${IMG:-none}'}}\n")
    write(tmp_path / ".env", "IMG=dotenv\n")
    write(tmp_path / "one.env", "IMG=one\n")
    write(tmp_path / "two.env", "IMG=${IMG}-two\n")
    assert load_dir(tmp_path, env_files=["one.env"])[0].service("a").image == "one"
    assert load_dir(tmp_path, env_files=["one.env", "two.env"])[0].service("a").image == "one-two"


def test_unset_variable_warning_returned(tmp_path):
    write(tmp_path / "compose.yaml", "services: {a: {image: 'x${NOPE}'}}\n")
    p, warnings = load_dir(tmp_path)
    assert p.service("a").image == "x"
    assert 'The "NOPE" variable is not set. Defaulting to a blank string.' in warnings


def test_version_is_obsolete_warning(tmp_path):
    write(tmp_path / "compose.yaml", "version: '3.8'\nservices: {a: {image: a}}\n")
    _, warnings = load_dir(tmp_path)
    assert any("`version` is obsolete" in w for w in warnings)


# --- merging ----------------------------------------------------------------------------------------------
BASE = """
services:
  web:
    image: web:1
    command: ["a", "b"]
    entrypoint: /e1
    environment: {A: "1", B: "1"}
    labels: [l1=1]
    ports: ["80:80"]
    expose: ["1"]
    dns: 1.1.1.1
    cap_add: [NET_ADMIN]
    volumes: ["data:/data", "./a:/a"]
    secrets: [s1]
    extra_hosts: ["h1:10.0.0.1"]
    sysctls: [net.a=1]
    ulimits: {nofile: {soft: 1, hard: 2}, nproc: 5}
    healthcheck: {test: ["CMD", "a"], interval: 10s}
    networks: {front: {aliases: [w]}}
    depends_on: [db]
    build: {context: ., args: [X=1]}
    logging: {driver: json-file, options: {max-size: 1m}}
  db: {image: db}
networks: {front: {}, back: {}}
volumes: {data: {}, other: {}}
secrets: {s1: {file: ./s1}, s2: {file: ./s2}}
"""
OVER = """
services:
  web:
    image: web:2
    command: ["c"]
    entrypoint: ["/e2", "x"]
    environment: [B=2, C=3]
    labels: {l2: "2"}
    ports: ["80:80", "443:443"]
    expose: ["2"]
    dns: [8.8.8.8]
    cap_add: [NET_ADMIN, SYS_TIME]
    volumes: ["other:/data", "/b:/b"]
    secrets: [{source: s2, target: /run/secrets/s1}]
    extra_hosts: {h2: 10.0.0.2}
    sysctls: {net.b: 2}
    ulimits: {nofile: 9}
    healthcheck: {test: ["CMD", "z"], retries: 3}
    networks: [back]
    depends_on: {cache: {condition: service_healthy}}
    build: {args: {Y: "2"}}
    logging: {options: {max-file: "3"}}
  cache: {image: cache}
"""


def test_merge_rules(tmp_path):
    a = write(tmp_path / "compose.yaml", BASE)
    b = write(tmp_path / "over.yaml", OVER)
    p, _ = load_dir(tmp_path, [a, "over.yaml"])
    assert p.config_files == (a, b)
    w = p.service("web")
    assert w.image == "web:2"
    assert w.command == ("c",)
    assert w.entrypoint == ("/e2", "x")
    assert w.environment == (("A", "1"), ("B", "2"), ("C", "3"))
    assert w.labels == (("l1", "1"), ("l2", "2"))
    assert [(x.published, x.target) for x in w.ports] == [("80", 80), ("443", 443)]
    assert w.expose == ("1", "2")
    assert w.dns == ("1.1.1.1", "8.8.8.8")
    assert w.cap_add == ("NET_ADMIN", "SYS_TIME")
    assert [(m.source, m.target) for m in w.volumes] == [("other", "/data"), (str(tmp_path / "a"), "/a"),
                                                          ("/b", "/b")]
    assert [(s.source, s.target) for s in w.secrets] == [("s2", "/run/secrets/s1")]
    assert w.extra_hosts == ("h1:10.0.0.1", "h2:10.0.0.2")
    assert w.sysctls == (("net.a", "1"), ("net.b", "2"))
    assert w.ulimits == (("nofile", 9, 9), ("nproc", 5, 5))
    assert w.healthcheck.test == ("CMD", "z") and w.healthcheck.interval == 10 and w.healthcheck.retries == 3
    assert [(n.name, n.aliases) for n in w.networks] == [("front", ("w",)), ("back", ())]
    assert [(d.service, d.condition) for d in w.depends_on] == [("db", "service_started"),
                                                                ("cache", "service_healthy")]
    assert w.build.args == (("X", "1"), ("Y", "2"))
    assert w.logging_driver == "json-file" and dict(w.logging_options) == {"max-size": "1m", "max-file": "3"}
    assert [s.name for s in p.services] == ["web", "db", "cache"]


def test_merge_logging_driver_change_replaces_options(tmp_path):
    a = write(tmp_path / "a.yaml", "services: {w: {image: x, logging: {driver: json-file, options: {a: '1'}}}}\n")
    b = write(tmp_path / "b.yaml", "services: {w: {logging: {driver: syslog}}}\n")
    w = load_dir(tmp_path, [a, b])[0].service("w")
    assert w.logging_driver == "syslog" and w.logging_options == ()


def test_override_file_errors_name_the_override(tmp_path):
    a = write(tmp_path / "a.yaml", "services: {w: {image: x}}\n")
    b = write(tmp_path / "b.yaml", "services:\n  w:\n    imagee: y\n")
    with pytest.raises(InvalidArgument, match=rf"^{b}:3:5: services.w.imagee"):
        load_dir(tmp_path, [a, b])


# --- profiles ---------------------------------------------------------------------------------------------
PROFILES = """
services:
  web: {image: web}
  debug: {image: dbg, profiles: [debug]}
  tools: {image: t, profiles: [tools, ops]}
"""


def names(p):
    return [s.name for s in p.services]


def test_profiles(tmp_path):
    write(tmp_path / "compose.yaml", PROFILES)
    p, _ = load_dir(tmp_path)
    assert names(p) == ["web"]
    assert [s.name for s in p.disabled] == ["debug", "tools"]
    assert names(load_dir(tmp_path, profiles=["ops"])[0]) == ["web", "tools"]
    assert names(load_dir(tmp_path, environ={"COMPOSE_PROFILES": "debug, tools"})[0]) == ["web", "debug", "tools"]
    assert names(load_dir(tmp_path, profiles=["*"])[0]) == ["web", "debug", "tools"]
    # --profile given: COMPOSE_PROFILES is only the fallback
    assert names(load_dir(tmp_path, profiles=["ops"], environ={"COMPOSE_PROFILES": "debug"})[0]) == ["web", "tools"]


def test_profiles_from_dotenv(tmp_path):
    write(tmp_path / "compose.yaml", PROFILES)
    write(tmp_path / ".env", "COMPOSE_PROFILES=debug\n")
    assert names(load_dir(tmp_path)[0]) == ["web", "debug"]


def test_service_named_explicitly_is_active(tmp_path):
    write(tmp_path / "compose.yaml", PROFILES)
    assert names(load_dir(tmp_path, services=["debug"])[0]) == ["web", "debug"]
    with pytest.raises(InvalidArgument, match="no such service: nope"):
        load_dir(tmp_path, services=["nope"])


def test_depends_on_disabled_service(tmp_path):
    write(tmp_path / "compose.yaml", """
        services:
          web: {image: web, depends_on: [db]}
          db: {image: db, profiles: [data]}
    """)
    with pytest.raises(InvalidArgument, match='service "db" is required by "web" but is disabled'):
        load_dir(tmp_path)
    assert names(load_dir(tmp_path, profiles=["data"])[0]) == ["web", "db"]


def test_optional_dependency_on_disabled_service_is_dropped(tmp_path):
    write(tmp_path / "compose.yaml", """
        services:
          web: {image: web, depends_on: {db: {condition: service_started, required: false}}}
          db: {image: db, profiles: [data]}
    """)
    p, warnings = load_dir(tmp_path)
    assert p.service("web").depends_on == ()
    assert any("disabled" in w for w in warnings)


# --- engine names and resources ---------------------------------------------------------------------------
def test_engine_names(tmp_path):
    write(tmp_path / "compose.yaml", """
        name: proj
        services:
          a: {image: a, networks: [n1, n2, n3], volumes: [v1:/1, v2:/2, v3:/3]}
          b: {image: b}
          c: {image: c, network_mode: host}
        networks:
          n1: {}
          n2: {name: custom}
          n3: {external: true}
          n4: {external: {name: legacy}}
        volumes:
          v1:
          v2: {name: vcustom}
          v3: {external: true, name: vext}
        configs:
          c1: {file: ./c1.txt}
          c2: {external: true}
        secrets:
          s1: {environment: TOKEN}
    """)
    p, _ = load_dir(tmp_path)
    assert {n.key: (n.name, n.external) for n in p.networks} == {
        "n1": ("proj_n1", False), "n2": ("custom", False), "n3": ("n3", True), "n4": ("legacy", True),
        "default": ("proj_default", False)}
    assert {v.key: (v.name, v.external) for v in p.volumes} == {
        "v1": ("proj_v1", False), "v2": ("vcustom", False), "v3": ("vext", True)}
    assert {c.key: (c.name, c.file, c.external) for c in p.configs} == {
        "c1": ("proj_c1", str(tmp_path / "c1.txt"), False), "c2": ("c2", "", True)}
    assert p.secrets[0].environment == "TOKEN" and p.secrets[0].name == "proj_s1"


def test_no_default_network_when_every_service_has_networks(tmp_path):
    write(tmp_path / "compose.yaml", "services: {a: {image: a, networks: [n]}}\nnetworks: {n: {}}\n")
    assert [n.key for n in load_dir(tmp_path)[0].networks] == ["n"]


def test_top_level_network_details(tmp_path):
    write(tmp_path / "compose.yaml", """
        services: {a: {image: a}}
        networks:
          n:
            driver: macvlan
            driver_opts: {parent: eth0, mtu: 1500}
            internal: true
            attachable: true
            enable_ipv6: true
            labels: [a=b]
            ipam:
              driver: default
              config:
                - subnet: 172.28.0.0/16
                  ip_range: 172.28.5.0/24
                  gateway: 172.28.5.254
                  aux_addresses: {host1: 172.28.1.5}
        volumes:
          v: {driver: local, driver_opts: {type: tmpfs}, labels: {x: y}}
    """)
    p, _ = load_dir(tmp_path)
    n = p.networks[0]
    assert (n.driver, n.internal, n.attachable, n.enable_ipv6) == ("macvlan", True, True, True)
    assert n.driver_opts == (("parent", "eth0"), ("mtu", "1500"))
    assert n.labels == (("a", "b"),)
    assert n.ipam_driver == "default"
    cfg = dict(n.ipam_config[0])
    assert cfg["subnet"] == "172.28.0.0/16" and cfg["gateway"] == "172.28.5.254"
    assert cfg["ip_range"] == "172.28.5.0/24" and cfg["aux_addresses"] == '{"host1": "172.28.1.5"}'
    v = p.volumes[0]
    assert v.driver_opts == (("type", "tmpfs"),) and v.labels == (("x", "y"),)


def test_anchors_merge_keys_and_extensions(tmp_path):
    write(tmp_path / "compose.yaml", """
        x-defaults: &defaults
          restart: unless-stopped
          environment: {A: "1"}
        x-meta: {owner: me}
        services:
          a:
            <<: *defaults
            image: a
            x-custom: [1, 2]
          b:
            <<: *defaults
            image: b
            restart: "no"
    """)
    p, _ = load_dir(tmp_path)
    assert p.service("a").restart == "unless-stopped" and p.service("a").environment == (("A", "1"),)
    assert p.service("b").restart == "no"
    assert p.service("a").extensions == (("x-custom", "[1, 2]"),)
    assert dict(p.extensions) == {"x-defaults": '{"environment": {"A": "1"}, "restart": "unless-stopped"}',
                                  "x-meta": '{"owner": "me"}'}


def test_yaml_1_2_scalars(tmp_path):
    write(tmp_path / "compose.yaml", """
        services:
          a:
            image: a
            environment: {A: yes, B: on, C: 0755, D: true}
            ports: [22:22]
    """)
    a = load_dir(tmp_path)[0].service("a")
    assert dict(a.environment) == {"A": "yes", "B": "on", "C": "493", "D": "true"}
    assert (a.ports[0].published, a.ports[0].target) == ("22", 22)
