"""The requests the CLI builds for networks and ports, and what it prints; no daemon (a fake transport)."""
from __future__ import annotations

import io
import json

import pytest

from berth.cli.commands import containers, control, networks
from berth.cli.common import Exit, Usage
from berth.cli.main import _resolve
from berth.errors import InvalidArgument, NotFound
from tests.support.fake_api import FakeApi, run_body

WARNING = ("WARNING! This will remove all custom networks not used by at least one container.\n"
           "Are you sure you want to continue? [y/N] ")


# ---------------------------------------------------------------- run / create

def test_run_without_network_flags_sends_what_docker_sends():
    body = run_body("busybox")
    host = body["HostConfig"]
    assert host["NetworkMode"] == "default"
    assert host["PortBindings"] == {} and host["PublishAllPorts"] is False
    assert (host["Dns"], host["DnsSearch"], host["DnsOptions"]) == ([], [], [])
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"default": {}}}
    assert "ExposedPorts" not in body


def test_run_with_network_flags():
    body = run_body("-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "--expose", "90-91", "-P",
                    "--network", "appnet", "--network-alias", "web", "--net-alias", "www", "--ip", "10.1.0.5",
                    "--mac-address", "02:42:ac:11:00:02", "--dns", "8.8.8.8", "--dns", "::0001",
                    "--dns-search", "example.com.", "--dns-option", "ndots:2", "-h", "box", "busybox", "sh")
    host = body["HostConfig"]
    assert host["NetworkMode"] == "appnet"
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                    "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]}
    assert host["PublishAllPorts"] is True
    assert body["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "90/tcp": {}, "91/tcp": {}}
    assert host["Dns"] == ["8.8.8.8", "::1"]
    assert host["DnsSearch"] == ["example.com"]
    assert host["DnsOptions"] == ["ndots:2"]
    assert body["Hostname"] == "box" and body["Cmd"] == ["sh"]
    assert "MacAddress" not in body  # the docker client leaves it to the endpoint for API >= 1.44
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"appnet": {
        "Aliases": ["web", "www"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}, "MacAddress": "02:42:ac:11:00:02"}}}


def test_a_lone_network_without_options_has_no_endpoint_config():
    body = run_body("--network", "host", "busybox")
    assert body["HostConfig"]["NetworkMode"] == "host"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {}}
    assert run_body("--net=none", "busybox")["HostConfig"]["NetworkMode"] == "none"


def test_several_networks_and_the_long_network_syntax():
    body = run_body("--network", "name=Front,alias=A,ip=10.0.0.2", "--network", "back", "busybox")
    assert body["HostConfig"]["NetworkMode"] == "front"  # docker lowercases the long form
    assert body["NetworkingConfig"] == {"EndpointsConfig": {
        "front": {"Aliases": ["a"], "IPAMConfig": {"IPv4Address": "10.0.0.2"}}, "back": {}}}


def test_ip_and_mac_on_the_default_network():
    body = run_body("--ip", "172.17.0.9", "--mac-address", "02:00:00:00:00:01", "busybox")
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"default": {
        "IPAMConfig": {"IPv4Address": "172.17.0.9"}, "MacAddress": "02:00:00:00:00:01"}}}


@pytest.mark.parametrize("argv, message", [
    (["-p", "70000:80"], "invalid hostPort: 70000"),
    (["-p", "abc"], "invalid containerPort: abc"),
    (["-p", "80/xyz"], "invalid proto: xyz"),
    (["--expose", "1:2"], "invalid port format for --expose: 1:2"),
    (["--network-alias", "a"], "network-scoped aliases are only supported for user-defined networks"),
    (["--network", "bridge", "--network-alias", "a"],
     "network-scoped aliases are only supported for user-defined networks"),
    (["--mac-address", "zz"], "zz is not a valid mac address"),
    (["--network", "host", "--network", "n2"],
     "conflicting options: cannot attach both user-defined and non-user-defined network-modes"),
    (["--network", "a", "--network", "a"], 'network "a" is specified multiple times'),
    (["--network", "name=a,alias=x", "--network-alias", "y"],
     "conflicting options: cannot specify both --network-alias and per-network alias"),
])
def test_run_flag_errors_come_before_any_request(argv, message):
    with pytest.raises(Usage) as e:
        run_body(*argv, "busybox", name="create")
    assert str(e.value) == f"berth: {message}\n\nRun 'berth create --help' for more information"


@pytest.mark.parametrize("argv, message", [
    (["--dns", "nope"], 'invalid argument "nope" for "--dns" flag: IP address is not correctly formatted: nope'),
    (["--dns-search", "a..b"], 'invalid argument "a..b" for "--dns-search" flag: a..b is not a valid domain'),
    (["--dns-search", "123"], 'invalid argument "123" for "--dns-search" flag: 123 is not a valid domain'),
    (["--network", "name=a,foo=b"], 'invalid argument "name=a,foo=b" for "--network" flag: invalid field key foo'),
    (["--network", "alias=x,ip=1"], 'invalid argument "alias=x,ip=1" for "--network" flag: '
                                    "network name/id is not specified"),
])
def test_run_flag_value_errors(argv, message):
    with pytest.raises(Usage) as e:
        run_body(*argv, "busybox")
    assert str(e.value) == message


def test_create_sends_the_body():
    api = FakeApi({("POST", "/containers/create"): {"Id": "c" * 64, "Warnings": []}})
    containers.create(api, "create", ["-p", "8080:80", "busybox"])
    method, path, query, body = api.calls[0]
    assert (method, path, query) == ("POST", "/containers/create", {})
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert body["ExposedPorts"] == {"80/tcp": {}}


# ---------------------------------------------------------------- ps and port

def test_ps_ports_column(capsys):
    item = {"Id": "a" * 64, "Image": "busybox", "Command": "sh", "Created": 0, "Status": "Up", "State": "running",
            "Names": ["/web"], "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                                         {"PrivatePort": 53, "Type": "udp"}]}
    api = FakeApi({("GET", "/containers/json"): [item]})
    containers.ps(api, "ps", ["--format", "{{.Ports}}"])
    assert capsys.readouterr().out == "53/udp, 0.0.0.0:8080->80/tcp\n"


PORTS = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
         "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}], "53/udp": None}


def _port(argv, capsys):
    api = FakeApi({("GET", "/containers/web/json"): {"NetworkSettings": {"Ports": PORTS}}})
    code = control.port(api, "port", argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_port_lists_every_binding(capsys):
    assert _port(["web"], capsys) == (0, "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n443/tcp -> 0.0.0.0:8443\n", "")


def test_port_one_private_port(capsys):
    assert _port(["web", "80"], capsys) == (0, "0.0.0.0:8080\n[::]:8080\n", "")
    assert _port(["web", "443/tcp"], capsys) == (0, "0.0.0.0:8443\n", "")


def test_port_not_published(capsys):
    assert _port(["web", "81"], capsys) == (1, "", "Error: No public port '81' published for web\n")
    assert _port(["web", "53/udp"], capsys) == (1, "", "Error: No public port '53/udp' published for web\n")
    assert _port(["web", "x"], capsys) == (
        1, "", 'Error: invalid port (x): strconv.ParseUint: parsing "x": invalid syntax\n')


# ---------------------------------------------------------------- berth network ...

def test_network_commands_are_in_the_table():
    for sub, fn in (("create", "create"), ("ls", "ls"), ("list", "ls"), ("inspect", "inspect"), ("rm", "rm"),
                    ("remove", "rm"), ("prune", "prune"), ("connect", "connect"), ("disconnect", "disconnect")):
        target, rest, name = _resolve(["network", sub, "x"])
        assert target == ("networks", fn) and rest == ["x"] and name == f"network {sub}"
    assert _resolve(["network"])[0] is None


def _create_body(*argv):
    return networks.create_body(networks._create_parser("network create").parse_args(list(argv)))


def test_network_create_body_defaults():
    assert _create_body("net1") == {
        "Name": "net1", "Driver": "bridge", "Scope": "", "Internal": False, "Attachable": False, "Ingress": False,
        "ConfigOnly": False, "IPAM": {"Driver": "default", "Config": [], "Options": {}}, "Options": {}, "Labels": {}}


def test_network_create_body_with_everything():
    body = _create_body("-d", "bridge", "--subnet", "10.5.0.0/16", "--gateway", "10.5.0.1", "--ip-range",
                        "10.5.1.0/24", "--aux-address", "host1=10.5.0.5", "--internal", "--attachable", "--ipv6",
                        "--label", "a=b", "-l", "c", "-o", "com.docker.network.bridge.name=br-x", "--opt", "mtu=1400",
                        "--ipam-driver", "default", "--ipam-opt", "x=y", "--subnet", "fd00::/64", "net1")
    assert body == {
        "Name": "net1", "Driver": "bridge", "Scope": "", "Internal": True, "Attachable": True, "Ingress": False,
        "ConfigOnly": False, "EnableIPv6": True,
        "IPAM": {"Driver": "default", "Options": {"x": "y"}, "Config": [
            {"Subnet": "10.5.0.0/16", "IPRange": "10.5.1.0/24", "Gateway": "10.5.0.1",
             "AuxiliaryAddresses": {"host1": "10.5.0.5"}},
            {"Subnet": "fd00::/64"}]},
        "Options": {"com.docker.network.bridge.name": "br-x", "mtu": "1400"}, "Labels": {"a": "b", "c": ""}}
    assert _create_body("--ipv6=false", "n")["EnableIPv6"] is False
    assert _create_body("--subnet", "10.1.0.0/24,10.2.0.0/24", "n")["IPAM"]["Config"] == [
        {"Subnet": "10.1.0.0/24"}, {"Subnet": "10.2.0.0/24"}]
    # As docker: a lone subnet is the daemon's to check.
    assert _create_body("--subnet", "10.0.0.0/33", "n")["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/33"}]


@pytest.mark.parametrize("argv, message", [
    (["--gateway", "10.0.0.1"], "every ip-range or gateway must have a corresponding subnet"),
    (["--subnet", "10.0.0.0/8", "--subnet", "10.1.0.0/16"], "multiple overlapping subnet configuration is not supported"),
    (["--subnet", "10.0.0.0/24", "--subnet", "10.0.0.0/33"], "invalid subnet: invalid CIDR address: 10.0.0.0/33"),
    (["--subnet", "10.0.0.0/24", "--gateway", "10.1.0.1"], "no matching subnet for gateway 10.1.0.1"),
    (["--subnet", "10.0.0.0/24", "--ip-range", "10.1.0.0/28"], "no matching subnet for range 10.1.0.0/28"),
    (["--subnet", "10.0.0.0/24", "--ip-range", "nope"], "invalid CIDR address: nope"),
    (["--subnet", "10.0.0.0/24", "--aux-address", "a=10.9.0.1"], "no matching subnet for aux-address 10.9.0.1"),
])
def test_network_create_ipam_errors(argv, message, capsys):
    with pytest.raises(Exit) as e:
        _create_body(*argv, "n")
    assert e.value.code == 1 and capsys.readouterr().err == message + "\n"


def test_network_create_label_error():
    with pytest.raises(Usage) as e:
        _create_body("--label", "=x", "n")
    assert str(e.value) == 'invalid argument "=x" for "--label" flag: invalid label \'=x\': empty name'


def test_network_create_prints_the_id(capsys):
    api = FakeApi({("POST", "/networks/create"): {"Id": "f" * 64, "Warning": ""}})
    assert networks.create(api, "network create", ["--subnet", "10.7.0.0/24", "n7"]) == 0
    assert capsys.readouterr().out == "f" * 64 + "\n"
    assert api.calls[0][3]["IPAM"]["Config"] == [{"Subnet": "10.7.0.0/24"}]


NETS = [
    {"Name": "net10", "Id": "b" * 64, "Driver": "bridge", "Scope": "local", "Internal": True,
     "Created": "2024-05-01T10:00:00.500000000Z", "Labels": {"x": "1"}},
    {"Name": "bridge", "Id": "a" * 64, "Driver": "bridge", "Scope": "local"},
    {"Name": "net2", "Id": "c" * 64, "Driver": "bridge", "Scope": "local"},
]


def test_network_ls_table_sorted_naturally(capsys):
    api = FakeApi({("GET", "/networks"): [dict(n) for n in NETS]})
    networks.ls(api, "network ls", [])
    assert capsys.readouterr().out == (
        "NETWORK ID     NAME      DRIVER    SCOPE\n"
        f"{'a' * 12}   bridge    bridge    local\n"
        f"{'c' * 12}   net2      bridge    local\n"
        f"{'b' * 12}   net10     bridge    local\n")


def test_network_ls_quiet_filters_and_format(capsys):
    api = FakeApi({("GET", "/networks"): [dict(n) for n in NETS]})
    networks.ls(api, "network ls", ["-q", "--no-trunc", "-f", "driver=bridge"])
    assert capsys.readouterr().out == "".join(f"{c * 64}\n" for c in "acb")
    assert json.loads(api.calls[0][2]["filters"]) == {"driver": {"bridge": True}}
    networks.ls(api, "network ls", ["--format", "{{.Name}} {{.Internal}} {{.Labels}} {{.CreatedAt}}"])
    assert capsys.readouterr().out.splitlines()[2] == "net10 true x=1 2024-05-01 10:00:00.5 +0000 UTC"


def test_network_inspect(capsys):
    api = FakeApi({("GET", "/networks/net2"): NETS[2], ("GET", "/networks/nope"): NotFound("network nope not found")})
    assert networks.inspect(api, "network inspect", ["-f", "{{.Name}} {{.Driver}}", "net2"]) == 0
    assert capsys.readouterr().out == "net2 bridge\n"
    assert networks.inspect(api, "network inspect", ["net2", "nope"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out) == [NETS[2]]
    assert out.err == "Error response from daemon: network nope not found\n"


def test_network_rm_goes_on_after_errors(capsys):
    api = FakeApi({("DELETE", "/networks/gone"): NotFound("network gone not found"),
                   ("DELETE", "/networks/used"): InvalidArgument("error while removing network: network used has "
                                                                 "active endpoints")})
    assert networks.rm(api, "network rm", ["a", "gone", "used", "b"]) == 1
    out = capsys.readouterr()
    assert out.out == "a\nb\n"
    assert out.err == ("Error response from daemon: network gone not found\n"
                       "Error response from daemon: error while removing network: network used has active endpoints\n"
                       "exit status 1\n")
    assert networks.rm(api, "network rm", ["-f", "gone", "a"]) == 0
    assert capsys.readouterr().out == "a\n"


def test_network_prune(capsys, monkeypatch):
    api = FakeApi({("POST", "/networks/prune"): {"NetworksDeleted": ["n1", "n2"]}})
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert networks.prune(api, "network prune", []) == 0
    assert capsys.readouterr().out == WARNING and api.calls == []
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    networks.prune(api, "network prune", ["--filter", "until=1h"])
    assert capsys.readouterr().out == WARNING + "Deleted Networks:\nn1\nn2\n\n"
    assert json.loads(api.calls[0][2]["filters"]) == {"until": {"1h": True}}
    api.routes[("POST", "/networks/prune")] = {"NetworksDeleted": None}
    networks.prune(api, "network prune", ["-f"])
    assert capsys.readouterr().out == ""


def test_network_connect_and_disconnect_bodies():
    api = FakeApi()
    networks.connect(api, "network connect", ["--alias", "db", "--alias", "pg,sql", "--ip", "10.0.0.9",
                                              "appnet", "web"])
    networks.disconnect(api, "network disconnect", ["-f", "appnet", "web"])
    assert api.calls == [
        ("POST", "/networks/appnet/connect", {}, {"Container": "web", "EndpointConfig": {
            "IPAMConfig": {"IPv4Address": "10.0.0.9"}, "Links": None, "Aliases": ["db", "pg", "sql"],
            "DriverOpts": {}}}),
        ("POST", "/networks/appnet/disconnect", {}, {"Container": "web", "Force": True}),
    ]
