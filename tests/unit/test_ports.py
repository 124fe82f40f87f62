"""Port specs, bindings and the PORTS column, as Docker spells them (berth.types.ports)."""
from __future__ import annotations

import pytest

from berth.errors import InvalidArgument
from berth.types.ports import (
    PortMapping, check_port_bindings, format_ports, join_host_port, natural_key, parse_expose, parse_ip,
    parse_port_range, parse_port_spec, parse_port_specs, port_list,
)


# ---------------------------------------------------------------- -p / --publish

@pytest.mark.parametrize("spec, want", [
    ("80", [("80/tcp", "", "")]),
    ("8080:80", [("80/tcp", "", "8080")]),
    ("127.0.0.1:8080:80/udp", [("80/udp", "127.0.0.1", "8080")]),
    ("127.0.0.1::80", [("80/tcp", "127.0.0.1", "")]),
    ("[::1]:80:80", [("80/tcp", "::1", "80")]),
    ("[::1]::80/sctp", [("80/sctp", "::1", "")]),
    ("::1:80:80", [("80/tcp", "::1", "80")]),
    ("80/TCP", [("80/tcp", "", "")]),
    ("8000-8002:80-82", [("80/tcp", "", "8000"), ("81/tcp", "", "8001"), ("82/tcp", "", "8002")]),
    ("80-81", [("80/tcp", "", ""), ("81/tcp", "", "")]),
    ("8000-8010:80", [("80/tcp", "", "8000-8010")]),  # a host range to pick one port from
    ("0:80", [("80/tcp", "", "0")]),
    ("080:80", [("80/tcp", "", "80")]),
    ("53-53:53/udp", [("53/udp", "", "53")]),
])
def test_parse_port_spec(spec, want):
    assert parse_port_spec(spec) == [PortMapping(*w) for w in want]


@pytest.mark.parametrize("spec, message", [
    ("70000:80", "invalid hostPort: 70000"),
    ("abc", "invalid containerPort: abc"),
    ("80/xyz", "invalid proto: xyz"),
    ("", "invalid proto: "),
    ("8080:", "invalid proto: "),
    ("8080:70000", "invalid containerPort: 70000"),
    ("82-80", "invalid containerPort: 82-80"),
    ("-1:80", "invalid hostPort: -1"),
    ("+80", "invalid containerPort: +80"),
    ("a-b:80", "invalid hostPort: a-b"),
    ("8000-8001:80-82", "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
    ("foo:80:80", "invalid IP address: foo"),
    ("1.2.3.256:80:80", "invalid IP address: 1.2.3.256"),
    ("[::1:80:80", "invalid IP address [::1: address [::1:: missing ']' in address"),
    ("[::1]x:80:80", "invalid IP address [::1]x: address [::1]x:: missing port in address"),
])
def test_parse_port_spec_errors(spec, message):
    with pytest.raises(InvalidArgument) as e:
        parse_port_spec(spec)
    assert e.value.message == message


def test_parse_port_specs_exposes_and_binds():
    exposed, bindings = parse_port_specs(["8080:80", "127.0.0.1:8081:80", "53/udp",
                                          "target=90,published=9090,protocol=udp"])
    assert exposed == {"80/tcp": {}, "53/udp": {}, "90/udp": {}}
    assert bindings == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}],
        "53/udp": [{"HostIp": "", "HostPort": ""}],
        "90/udp": [{"HostIp": "", "HostPort": "9090"}],
    }


def test_long_publish_syntax_errors():
    with pytest.raises(InvalidArgument) as e:
        parse_port_specs(["target=80,oops"])
    assert e.value.message == "invalid publish opts format (should be name=value but got 'oops')"


def test_parse_port_range():
    assert parse_port_range("80") == (80, 80)
    assert parse_port_range("80-80") == (80, 80)
    assert parse_port_range("1-2-3") == (1, 2)  # as Go: extra parts are ignored
    for bad, text in (("", "empty string specified for ports"),
                      ("x", 'strconv.ParseUint: parsing "x": invalid syntax'),
                      ("65536", 'strconv.ParseUint: parsing "65536": value out of range'),
                      ("9-8", "invalid range specified for port: 9-8")):
        with pytest.raises(ValueError) as e:
            parse_port_range(bad)
        assert str(e.value) == text


# ---------------------------------------------------------------- --expose

def test_parse_expose():
    assert parse_expose(["80", "90-92/udp", "80/tcp"]) == {"80/tcp": {}, "90/udp": {}, "91/udp": {}, "92/udp": {}}


@pytest.mark.parametrize("spec, message", [
    ("8080:80", "invalid port format for --expose: 8080:80"),
    ("abc", 'invalid range format for --expose: abc, error: strconv.ParseUint: parsing "abc": invalid syntax'),
    ("70000", 'invalid range format for --expose: 70000, error: strconv.ParseUint: parsing "70000": '
              "value out of range"),
    ("90-80", "invalid range format for --expose: 90-80, error: invalid range specified for port: 90-80"),
    ("", "invalid range format for --expose: , error: empty string specified for ports"),
])
def test_parse_expose_errors(spec, message):
    with pytest.raises(InvalidArgument) as e:
        parse_expose([spec])
    assert e.value.message == message


# ---------------------------------------------------------------- the daemon's check

def test_check_port_bindings_accepts_docker_shapes():
    check_port_bindings(None)
    check_port_bindings({})
    check_port_bindings({"80/tcp": [{"HostIp": "", "HostPort": ""}, {"HostIp": "::", "HostPort": "8000-8010"}],
                         "53/udp": None, "54": [{"HostPort": "54/udp"}]})


@pytest.mark.parametrize("bindings, message", [
    ({"80/tcp": [{"HostIp": "", "HostPort": "70000"}]}, 'invalid port specification: "70000"'),
    ({"80/tcp": [{"HostPort": "abc"}]}, 'invalid port specification: "abc"'),
    ({"80/tcp": [{"HostPort": "90-80"}]}, 'invalid port specification: "90-80"'),
    ({"abc/tcp": []}, 'invalid port specification: "abc"'),
    ({"70000/tcp": []}, 'invalid port specification: "70000"'),
    ({"80-81/tcp": []}, 'invalid port specification: "80-81"'),
    ([], "invalid type for HostConfig.PortBindings: expected object"),
])
def test_check_port_bindings_errors(bindings, message):
    with pytest.raises(InvalidArgument) as e:
        check_port_bindings(bindings)
    assert e.value.message == message


# ---------------------------------------------------------------- the PORTS column

def _p(private, typ="tcp", ip="", public=0):
    d = {"PrivatePort": private, "Type": typ}
    if ip:
        d["IP"] = ip
    if public:
        d["PublicPort"] = public
    return d


@pytest.mark.parametrize("ports, want", [
    ([], ""),
    ([_p(80)], "80/tcp"),
    ([_p(53, "udp"), _p(80, ip="0.0.0.0", public=8080), _p(80, ip="::", public=8080)],
     "53/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"),
    ([_p(82), _p(80), _p(81)], "80-82/tcp"),
    ([_p(80, ip="0.0.0.0", public=80), _p(81, ip="0.0.0.0", public=81)], "0.0.0.0:80-81->80-81/tcp"),
    ([_p(9988, "udp"), _p(9988), _p(9090, ip="0.0.0.0", public=80)], "9988/tcp, 9988/udp, 0.0.0.0:80->9090/tcp"),
    # A gap closes a group at once; groups still open are listed after, in the order first seen.
    ([_p(80, ip="0.0.0.0", public=80), _p(81, ip="0.0.0.0", public=81), _p(82), _p(83), _p(85), _p(9090, "udp")],
     "82-83/tcp, 0.0.0.0:80-81->80-81/tcp, 85/tcp, 9090/udp"),
    ([_p(80, ip="::", public=80)], "[::]:80->80/tcp"),
])
def test_format_ports_from_list(ports, want):
    assert format_ports(ports) == want


def test_format_ports_from_inspect_map():
    ports = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
             "53/udp": None, "54/udp": []}
    assert format_ports(ports) == "53-54/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"


def test_port_list_matches_the_list_api():
    assert port_list({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None}) == [
        {"PrivatePort": 80, "Type": "tcp", "IP": "0.0.0.0", "PublicPort": 8080},
        {"PrivatePort": 53, "Type": "udp"},
    ]


# ---------------------------------------------------------------- helpers

def test_join_host_port_and_parse_ip():
    assert join_host_port("0.0.0.0", 80) == "0.0.0.0:80"
    assert join_host_port("::", "80") == "[::]:80"
    assert join_host_port("", "80") == ":80"
    assert parse_ip("::ffff:1.2.3.4") == "1.2.3.4"
    assert parse_ip("0:0::1") == "::1"
    assert parse_ip("fe80::1%eth0") is None
    assert parse_ip("01.2.3.4") is None


def test_natural_key_orders_like_sortorder():
    lines = ["80/tcp -> [::]:8080", "443/tcp -> 0.0.0.0:443", "80/tcp -> 0.0.0.0:8080", "9/udp -> :9", "a", "010"]
    assert sorted(lines, key=natural_key) == [
        "9/udp -> :9", "010", "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080", "443/tcp -> 0.0.0.0:443", "a"]
    assert sorted(["net10", "net2", "Net1"], key=natural_key) == ["Net1", "net2", "net10"]
