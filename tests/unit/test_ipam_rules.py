"""Pure network pieces: address management (Docker's default IPAM rules) and the nftables text."""
from __future__ import annotations

import ipaddress

import pytest

from berth.errors import Forbidden, InvalidArgument
from berth.network import ipam
from berth.network.rules import BridgeRule, PortRule, render
from berth.types.network import Pool, mac_for

N = ipaddress.IPv4Network


def test_first_pool_is_docker_default_bridge_subnet():
    assert ipam.elect_subnet([], [], []) == N("172.17.0.0/16")


def test_election_skips_our_networks_and_host_routes():
    got = ipam.elect_subnet([], [N("172.17.0.0/16")], [N("172.18.0.0/24")])
    assert got == N("172.19.0.0/16")


def test_after_172_31_come_192_168_slash_20s():
    used = [N(f"172.{n}.0.0/16") for n in range(17, 32)]
    assert ipam.elect_subnet([], used, []) == N("192.168.0.0/20")
    assert ipam.elect_subnet([], used + [N("192.168.0.0/20")], []) == N("192.168.16.0/20")


def test_configured_pools_are_cut_to_size():
    pools = [{"base": "10.10.0.0/16", "size": 24}]
    assert ipam.elect_subnet(pools, [N("10.10.0.0/24")], []) == N("10.10.1.0/24")


def test_exhausted_pools_are_forbidden():
    with pytest.raises(Forbidden):
        ipam.elect_subnet([{"base": "10.0.0.0/24", "size": 24}], [N("10.0.0.0/24")], [])


def test_overlap_has_dockers_text():
    with pytest.raises(Forbidden, match="Pool overlaps with other one on this address space"):
        ipam.check_overlap(N("172.18.5.0/24"), [N("172.18.0.0/16")])


@pytest.mark.parametrize("pool, text", [
    (Pool("10.1.0.0/16", "10.2.0.1"),
     "invalid network config:\ninvalid gateway 10.2.0.1: parent subnet 10.1.0.0/16 doesn't contain this address"),
    (Pool("10.1.0.0/33"), "invalid network config:\ninvalid subnet 10.1.0.0/33: invalid CIDR block notation"),
    (Pool("10.1.0.5/16"), "invalid network config:\ninvalid subnet 10.1.0.5/16: it should be 10.1.0.0/16"),
    (Pool("10.1.0.0/16", "", "10.2.0.0/24"),
     "invalid network config:\ninvalid ip-range 10.2.0.0/24: parent subnet 10.1.0.0/16 doesn't contain ip-range"),
    (Pool("10.1.0.0/16", "bogus"), "invalid network config:\ninvalid gateway bogus: invalid address"),
])
def test_pool_validation_texts(pool, text):
    with pytest.raises(InvalidArgument) as e:
        ipam.check_pool(pool)
    assert e.value.message == text


def test_several_errors_are_listed():
    with pytest.raises(InvalidArgument) as e:
        ipam.check_pool(Pool("10.1.0.5/16", "10.9.0.1"))
    assert e.value.message.startswith("invalid network config:\n* invalid subnet")
    assert "\n* invalid gateway 10.9.0.1" in e.value.message


def test_gateway_defaults_to_first_host():
    assert ipam.complete(Pool("10.1.0.0/16")).gateway == "10.1.0.1"
    assert ipam.complete(Pool("10.1.0.0/16", "10.1.255.254")).gateway == "10.1.255.254"


def test_pick_takes_the_lowest_free_address_and_skips_gateway_and_reserved():
    pools = [ipam.complete(Pool("10.1.0.0/29"))]
    assert ipam.pick(pools, set(), set()) == ("10.1.0.2", 29, "10.1.0.1")
    assert ipam.pick(pools, {"10.1.0.2"}, {"10.1.0.3"})[0] == "10.1.0.4"


def test_pick_within_ip_range():
    pools = [ipam.complete(Pool("10.1.0.0/16", ip_range="10.1.5.0/24"))]
    assert ipam.pick(pools, set(), set())[0] == "10.1.5.1"


def test_pool_runs_out():
    pools = [ipam.complete(Pool("10.1.0.0/30"))]
    assert ipam.pick(pools, set(), set())[0] == "10.1.0.2"
    with pytest.raises(Forbidden):
        ipam.pick(pools, {"10.1.0.2"}, set())


def test_fixed_address_taken_or_outside():
    pools = [ipam.complete(Pool("10.1.0.0/24"))]
    assert ipam.pick(pools, set(), set(), "10.1.0.9")[0] == "10.1.0.9"
    with pytest.raises(Forbidden, match="Address already in use"):
        ipam.pick(pools, {"10.1.0.9"}, set(), "10.1.0.9")
    with pytest.raises(InvalidArgument, match="no configured subnet or ip-range contain the IP address 10.2.0.9"):
        ipam.check_fixed(pools, "10.2.0.9")


def test_mac_from_address():
    assert mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def test_rules_text():
    text = render([BridgeRule("berth0", "172.17.0.0/16"), BridgeRule("berth-a", "172.18.0.0/16", internal=True)],
                  [PortRule("tcp", "", 8080, "172.17.0.2", 80), PortRule("udp", "127.0.0.1", 53, "172.17.0.2", 53)])
    lines = [line.strip() for line in text.splitlines()]
    assert lines[:2] == ["table ip berth", "delete table ip berth"]  # an atomic swap of berth's own table only
    assert "tcp dport 8080 dnat to 172.17.0.2:80;" in lines
    assert "ip daddr 127.0.0.1 udp dport 53 dnat to 172.17.0.2:53;" in lines
    assert 'ip saddr 172.17.0.0/16 oifname != "berth0" masquerade;' in lines
    assert not any("172.18.0.0/16 oifname !=" in x for x in lines)  # internal: no masquerade out
    assert 'iifname "berth-a" oifname != "berth-a" drop;' in lines
    assert 'iifname "berth0" oifname @bridges oifname != "berth0" drop;' in lines


def test_rules_table_name_is_the_daemons():
    assert render([], [], "berth_bt01").startswith("table ip berth_bt01\ndelete table ip berth_bt01\n")
