"""Validation errors: each names the file (with line:col when known), the service and the key."""
from __future__ import annotations

import textwrap

import pytest

from berth.compose.loader import load
from berth.errors import InvalidArgument


def error(tmp_path, text, **kw) -> str:
    path = tmp_path / "compose.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(InvalidArgument) as e:
        load([str(path)], environ={}, cwd=str(tmp_path), **kw)
    msg = e.value.message
    assert msg.startswith(str(path)), msg
    return msg[len(str(path)):]


def test_not_yaml(tmp_path):
    msg = error(tmp_path, "services:\n  web: [image\n")
    assert msg.startswith(":3:1: yaml:"), msg


def test_bad_indentation(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: x\n   ports: []\n")
    assert msg.startswith(":4:"), msg


def test_duplicate_key(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: a\n    image: b\n")
    assert msg == ':4:5: mapping key "image" already defined at line 3'


def test_top_level_not_a_mapping(tmp_path):
    assert error(tmp_path, "- a\n- b\n") == ":1:1: top-level object must be a mapping"


def test_empty_file(tmp_path):
    assert error(tmp_path, "# nothing\n") == ": empty compose file"


def test_missing_file(tmp_path):
    with pytest.raises(InvalidArgument, match="nope.yaml: No such file"):
        load(["nope.yaml"], environ={}, cwd=str(tmp_path))


def test_unknown_service_key(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: x\n    imagee: y\n")
    assert msg == ":4:5: services.web.imagee: additional property not allowed"


def test_unknown_nested_key(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: x\n    healthcheck:\n      tst: [CMD]\n")
    assert msg == ":5:7: services.web.healthcheck.tst: additional property not allowed"


def test_unknown_top_level_key(tmp_path):
    assert error(tmp_path, "services: {}\nservice: {}\n") == ":2:1: service: additional property not allowed"


def test_extension_keys_not_validated(tmp_path):
    (tmp_path / "compose.yaml").write_text("x-a: {anything: [1]}\nservices:\n  w:\n    image: x\n    x-b: 1\n"
                                           "networks:\n  n:\n    x-c: {}\n")
    p, _ = load(None, environ={}, cwd=str(tmp_path))
    assert p.service("w").extensions == (("x-b", "1"),)


@pytest.mark.parametrize("body,want", [
    ("ports: '80:80'", ":4:5: services.web.ports must be a list"),
    ("environment: 3", ":4:5: services.web.environment must be a mapping or a list"),
    ("command: {a: 1}", ":4:5: services.web.command must be null or a string or a list"),
    ("healthcheck: {retries: [1]}", ":4:19: services.web.healthcheck.retries must be a number"),
    ("privileged: [1]", ":4:5: services.web.privileged must be a boolean"),
    ("labels: {a: [1]}", ":4:14: services.web.labels.a must be a string, number, boolean or null"),
    ("deploy: {replicas: [1]}", ":4:14: services.web.deploy.replicas must be an integer"),
    ("depends_on: {db: {condition: ready}}", ":4:23: services.web.depends_on.db.condition must be one of service_started, "),
    ("volumes: [{source: x, target: /x}]", ':4:15: services.web.volumes[0]: property "type" is required'),
    ("cap_add: [[x]]", ":4:15: services.web.cap_add[0] must be a string"),
])
def test_wrong_types(tmp_path, body, want):
    msg = error(tmp_path, f"services:\n  web:\n    image: x\n    {body}\n")
    assert msg.startswith(want), msg


def test_wrong_type_item_position(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: x\n    ports:\n      - 80\n      - [1]\n")
    assert msg == ":6:9: services.web.ports[1] must be a number or a string or a mapping"


def test_service_not_a_mapping(tmp_path):
    assert error(tmp_path, "services:\n  web:\n") == ":2:3: services.web must be a mapping"


def test_invalid_service_name(tmp_path):
    assert 'services: invalid name "my web"' in error(tmp_path, "services:\n  my web: {image: x}\n")


def test_neither_image_nor_build(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    command: x\n")
    assert msg == ':2:3: service "web" has neither an image nor a build context specified: invalid compose project'


def test_depends_on_undefined(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: x\n    depends_on: [db]\n")
    assert msg == ':4:5: service "web" depends on undefined service "db": invalid compose project'


def test_dependency_cycle(tmp_path):
    msg = error(tmp_path, """\
        services:
          a: {image: x, depends_on: [b]}
          b: {image: x, depends_on: [c]}
          c: {image: x, depends_on: [a]}
          d: {image: x}
    """)
    assert msg.startswith(":2:") and "dependency cycle detected: a -> b -> c -> a" in msg


def test_self_dependency(tmp_path):
    assert "dependency cycle detected: a -> a" in error(tmp_path, "services:\n  a: {image: x, depends_on: [a]}\n")


@pytest.mark.parametrize("body,want", [
    ("networks: [front]", ':4:5: service "web" refers to undefined network front'),
    ("volumes: ['data:/data']", ':4:5: service "web" refers to undefined volume data'),
    ("volumes: [{type: volume, source: data, target: /d}]", ':4:5: service "web" refers to undefined volume data'),
    ("configs: [cfg]", ':4:5: service "web" refers to undefined config cfg'),
    ("secrets: [{source: sec}]", ':4:5: service "web" refers to undefined secret sec'),
    ("network_mode: 'service:db'", ':4:5: service "web" depends on undefined service "db"'),
])
def test_undefined_references(tmp_path, body, want):
    msg = error(tmp_path, f"services:\n  web:\n    image: x\n    {body}\n")
    assert msg.startswith(want), msg


def test_network_mode_with_networks(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: x\n    network_mode: host\n    networks: [n]\nnetworks: {n: {}}\n")
    assert msg.startswith(':4:5: service "web": network_mode and networks cannot be combined')


def test_container_name_with_replicas(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: x\n    container_name: c\n    deploy: {replicas: 2}\n")
    assert msg.startswith(":4:5: service \"web\": can't set container_name") and "must be unique" in msg


def test_duplicate_container_name(tmp_path):
    msg = error(tmp_path, "services:\n  a: {image: x, container_name: c}\n  b: {image: x, container_name: c}\n")
    assert 'services "a" and "b" have the same container_name "c"' in msg


def test_interpolation_error_points_at_key(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: ${IMAGE:?IMAGE must be set}\n")
    assert msg == (":3:5: error while interpolating services.web.image: required variable IMAGE is missing a value: "
                   "IMAGE must be set")


def test_bad_duration(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: x\n    stop_grace_period: soon\n")
    assert msg.startswith(":4:5: services.web.stop_grace_period: time: invalid duration"), msg


def test_bad_boolean(tmp_path):
    msg = error(tmp_path, "services:\n  web:\n    image: x\n    tty: maybe\n")
    assert msg.startswith(":4:5: services.web.tty: invalid boolean"), msg
