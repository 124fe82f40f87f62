"""docker-py 7.2 (``import docker``) against berthd's networks: ``client.networks.*``, ``Network.connect/disconnect``,
``containers.run(ports=..., network=...)``, and the API errors docker-py raises, with Docker's texts and statuses.

docker-py's ``containers.run`` pulls an image the daemon says it lacks; ``run_local`` refuses to call it unless the
image is already in berthd, so nothing here can reach a registry. Traffic goes only to 127.0.0.1 (published ports)
or between containers on berth's own bridges. Subnets are random /24s in 10.200.0.0/13 checked against the host's
routes and berthd's networks; host ports are ones the kernel just handed out.

Needs root, runc and busybox (the ``daemon`` fixture skips otherwise).
"""
from __future__ import annotations

import ipaddress
import uuid
from urllib.parse import quote

import docker
import pytest

from tests.support.daemon import wait_for
from tests.support.nets import NetworksMade, bridged_daemon, free_port, free_subnet, http_get, uniq

BUSYBOX = "busybox:latest"
HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]

pytestmark = pytest.mark.root


class Made(NetworksMade):
    prefix = "pynet"


def image_exists(daemon, ref: str) -> bool:
    return daemon.api("GET", f"/images/{quote(ref, safe='')}/json")[0] == 200


def run_local(daemon, client, image: str, *args, **kwargs):
    """``client.containers.run`` only for an image berthd already has (so docker-py never pulls)."""
    assert image_exists(daemon, image), f"{image} is not in berthd; refusing to let docker-py pull it"
    return client.containers.run(image, *args, **kwargs)


def ipam_for(subnet: ipaddress.IPv4Network) -> docker.types.IPAMConfig:
    return docker.types.IPAMConfig(pool_configs=[
        docker.types.IPAMPool(subnet=str(subnet), gateway=str(subnet.network_address + 1))])


def make_network(client, made, **kwargs):
    """A bridge network on a free /24 (gateway .1); returns (Network, subnet)."""
    subnet = free_subnet(made.daemon)
    net = client.networks.create(made.network(), driver="bridge", ipam=ipam_for(subnet), **kwargs)
    return net, subnet


def output_of(daemon, client, made, cmd: list[str], **kwargs) -> bytes:
    """stdout of a busybox command run to its end (detached, waited on, then its logs), which must exit 0.

    Not ``containers.run(remove=True)``'s return value: that reads a follow-logs stream after removing the
    container, and berthd sometimes loses the output then (a logs bug, not a network one).
    """
    c = run_local(daemon, client, BUSYBOX, cmd, detach=True, name=made.name(), **kwargs)
    status = c.wait(timeout=30)["StatusCode"]
    out = c.logs(stdout=True, stderr=False)
    assert status == 0, (cmd, status, out, c.logs(stdout=False, stderr=True))
    return out


def start_sleeper(daemon, client, made, **kwargs):
    assert image_exists(daemon, BUSYBOX)
    c = client.containers.create(BUSYBOX, ["sleep", "300"], name=made.name(), **kwargs)
    c.start()
    return c


@pytest.fixture(scope="module")
def daemon():
    """This module's own berthd, whose default bridge has a host link and a /24 of its own (see
    ``tests.support.nets.bridged_daemon``). It overrides the session ``daemon`` fixture in this module, so ``made``
    and ``client`` use it.
    """
    yield from bridged_daemon()


# --- networks: create, list, get, remove, prune ------------------------------------------------------------


def test_create_with_ipam_labels_internal_then_get_list_remove(daemon, client, made):
    net, subnet = make_network(client, made, labels={"tier": "db", "owner": "pynet"}, internal=True)
    gateway = str(subnet.network_address + 1)
    assert isinstance(net, docker.models.networks.Network)
    assert len(net.id) == 64

    got = client.networks.get(net.name)
    assert got.id == net.id and got.name == net.name
    a = got.attrs
    assert a["Driver"] == "bridge" and a["Scope"] == "local"
    assert a["Internal"] is True
    assert a["Labels"] == {"tier": "db", "owner": "pynet"}
    assert a["IPAM"]["Driver"] == "default"
    assert a["IPAM"]["Config"] == [{"Subnet": str(subnet), "Gateway": gateway}]
    assert a["Containers"] == {}
    assert got.containers == []
    assert client.networks.get(net.id[:12]).id == net.id

    found = client.networks.list(names=[net.name])
    assert [n.id for n in found] == [net.id]
    assert [n.id for n in client.networks.list(ids=[net.id])] == [net.id]
    assert net.id in [n.id for n in client.networks.list(filters={"label": "tier=db"})]
    assert net.id not in [n.id for n in client.networks.list(filters={"label": "tier=web"})]
    assert {"bridge", "host", "none"} <= {n.name for n in client.networks.list()}

    net.remove()
    with pytest.raises(docker.errors.NotFound) as info:
        client.networks.get(net.id)
    assert info.value.status_code == 404
    assert client.networks.list(names=[net.name]) == []


def test_unknown_network_is_404(daemon, client, made):
    missing = uniq("no-such-net")
    with pytest.raises(docker.errors.NotFound) as info:
        client.networks.get(missing)
    assert info.value.status_code == 404
    assert info.value.explanation == f"network {missing} not found"

    with pytest.raises(docker.errors.NotFound) as info:
        client.api.remove_network(missing)
    assert info.value.status_code == 404
    assert info.value.explanation == f"network {missing} not found"


def test_duplicate_name_is_409(daemon, client, made):
    net = client.networks.create(made.network(), driver="bridge")
    with pytest.raises(docker.errors.APIError) as info:
        client.networks.create(net.name, driver="bridge")
    assert info.value.status_code == 409
    assert info.value.explanation == f"network with name {net.name} already exists"
    assert [n.id for n in client.networks.list(names=[net.name])] == [net.id]


def test_overlapping_pool_is_403(daemon, client, made):
    net, subnet = make_network(client, made)
    name = made.network()
    inside = next(subnet.subnets(new_prefix=26))
    with pytest.raises(docker.errors.APIError) as info:
        client.networks.create(name, driver="bridge", ipam=docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet=str(inside))]))
    assert info.value.status_code == 403
    assert info.value.explanation == "invalid pool request: Pool overlaps with other one on this address space"
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(name)


def test_remove_with_active_endpoints_is_403(daemon, client, made):
    net, _ = make_network(client, made)
    c = start_sleeper(daemon, client, made, network=net.name)
    with pytest.raises(docker.errors.APIError) as info:
        net.remove()
    assert info.value.status_code == 403
    assert info.value.explanation.startswith(
        f"error while removing network: network {net.name} has active endpoints (name:\"{c.name}\" id:\"")
    assert client.networks.get(net.id).id == net.id

    c.remove(force=True)
    net.remove()
    with pytest.raises(docker.errors.NotFound):
        client.networks.get(net.id)


def test_prune_removes_unused_networks(daemon, client, made):
    label = "pynet-prune=" + uuid.uuid4().hex[:8]
    key, value = label.split("=")
    unused = [client.networks.create(made.network(), driver="bridge", labels={key: value}) for _ in range(2)]
    used, _ = make_network(client, made, labels={key: value})
    start_sleeper(daemon, client, made, network=used.name)

    result = client.networks.prune(filters={"label": label})
    assert sorted(result["NetworksDeleted"]) == sorted(n.name for n in unused)
    for n in unused:
        with pytest.raises(docker.errors.NotFound):
            client.networks.get(n.id)
    assert client.networks.get(used.id).name == used.name

    again = client.networks.prune(filters={"label": label})
    assert not again["NetworksDeleted"]


# --- connect / disconnect ----------------------------------------------------------------------------------


def test_connect_with_alias_and_fixed_ip_then_disconnect(daemon, client, made):
    net, subnet = make_network(client, made)
    c = start_sleeper(daemon, client, made)  # on the default bridge
    ip = str(subnet.network_address + 10)
    alias = uniq("db")

    net.connect(c, aliases=[alias], ipv4_address=ip)

    net.reload()
    assert list(net.attrs["Containers"]) == [c.id]
    entry = net.attrs["Containers"][c.id]
    assert entry["Name"] == c.name
    assert entry["IPv4Address"] == f"{ip}/24"
    assert [x.id for x in net.containers] == [c.id]

    c.reload()
    settings = c.attrs["NetworkSettings"]["Networks"]
    assert set(settings) == {"bridge", net.name}
    mine = settings[net.name]
    assert mine["IPAddress"] == ip and mine["IPPrefixLen"] == 24
    assert mine["Gateway"] == str(subnet.network_address + 1)
    assert mine["NetworkID"] == net.id
    assert alias in mine["Aliases"]
    assert mine["IPAMConfig"] == {"IPv4Address": ip}

    # another container on the network reaches it by the alias, and by its name
    for target in (alias, c.name):
        out = output_of(daemon, client, made, ["ping", "-c1", target], network=net.name)
        assert f"from {ip}".encode() in out, out

    # connecting twice: Docker's 403 and text, nothing changed
    with pytest.raises(docker.errors.APIError) as info:
        net.connect(c)
    assert info.value.status_code == 403
    assert info.value.explanation == f"endpoint with name {c.name} already exists in network {net.name}"

    net.disconnect(c)
    net.reload()
    assert net.attrs["Containers"] == {}
    assert net.containers == []
    c.reload()
    assert set(c.attrs["NetworkSettings"]["Networks"]) == {"bridge"}

    with pytest.raises(docker.errors.APIError) as info:
        net.disconnect(c)
    assert info.value.explanation == f"container {c.id} is not connected to network {net.name}"


def test_fixed_ip_taken_or_outside_subnet_is_refused(daemon, client, made):
    net, subnet = make_network(client, made)
    ip = str(subnet.network_address + 20)
    first = start_sleeper(daemon, client, made)
    second = start_sleeper(daemon, client, made)
    net.connect(first, ipv4_address=ip)

    with pytest.raises(docker.errors.APIError) as info:
        net.connect(second, ipv4_address=ip)
    assert info.value.status_code == 403
    assert info.value.explanation == "Address already in use"

    with pytest.raises(docker.errors.APIError) as info:
        net.connect(second, ipv4_address="192.0.2.77")
    assert info.value.status_code == 400
    assert "no configured subnet or ip-range contain the IP address 192.0.2.77" in info.value.explanation

    net.reload()
    assert list(net.attrs["Containers"]) == [first.id]


def test_containers_on_a_network_reach_each_other_by_name(daemon, client, made):
    net, subnet = make_network(client, made)
    server = run_local(daemon, client, BUSYBOX, HTTPD, detach=True, network=net.name, name=made.name("pynet-web"))
    server.reload()
    assert set(server.attrs["NetworkSettings"]["Networks"]) == {net.name}
    server_ip = server.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
    assert ipaddress.ip_address(server_ip) in subnet

    def fetch():
        # containers.run as users write it: its return value is the command's stdout
        try:
            return run_local(daemon, client, BUSYBOX, ["wget", "-q", "-O", "-", f"http://{server.name}/hostname"],
                             network=net.name, remove=True, name=made.name())
        except docker.errors.ContainerError:
            return None  # httpd not listening yet

    assert wait_for(fetch, 15, interval=0.2, what="a fetch by name over the user network") == \
        (server.id[:12] + "\n").encode()


# --- published ports ---------------------------------------------------------------------------------------


def test_run_with_random_host_port_on_loopback(daemon, client, made):
    c = run_local(daemon, client, BUSYBOX, "httpd -f -p 80 -h /etc", detach=True, name=made.name("pynet-web"),
                  ports={"80/tcp": ("127.0.0.1", None)})
    c.reload()
    bindings = c.attrs["NetworkSettings"]["Ports"]["80/tcp"]
    assert len(bindings) == 1 and bindings[0]["HostIp"] == "127.0.0.1"
    port = int(bindings[0]["HostPort"])
    assert 0 < port < 65536
    assert c.ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert c.attrs["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}

    got = wait_for(lambda: http_get(port, "/hostname"), 10, what=f"httpd on 127.0.0.1:{port}")
    assert got == (200, (c.id[:12] + "\n").encode())

    listed = client.api.containers(filters={"id": c.id})
    assert len(listed) == 1
    assert listed[0]["Ports"] == [{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": port, "Type": "tcp"}]
    assert client.api.port(c.id, 80) == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]


def test_run_with_fixed_host_port_on_all_addresses(daemon, client, made):
    for _ in range(5):
        port = free_port()
        name = made.name("pynet-web")
        try:
            c = run_local(daemon, client, BUSYBOX, HTTPD, detach=True, name=name, ports={"80/tcp": port})
            break
        except docker.errors.APIError as e:
            assert "port is already allocated" in str(e) or "address already in use" in str(e), e
    else:
        raise AssertionError("no free host port after 5 tries")
    c.reload()
    bindings = c.ports["80/tcp"]
    assert {"HostIp": "0.0.0.0", "HostPort": str(port)} in bindings
    assert all(b["HostPort"] == str(port) for b in bindings)

    got = wait_for(lambda: http_get(port, "/hostname"), 10, what=f"httpd on 127.0.0.1:{port} (bound to 0.0.0.0)")
    assert got == (200, (c.id[:12] + "\n").encode())

    c.remove(force=True)
    wait_for(lambda: http_get(port, "/hostname") is None, 10, what="the published port to close")


def test_run_with_ports_on_a_user_network(daemon, client, made):
    net, subnet = make_network(client, made)
    c = run_local(daemon, client, BUSYBOX, HTTPD, detach=True, name=made.name("pynet-web"), network=net.name,
                  ports={"80/tcp": ("127.0.0.1", None)})
    c.reload()
    port = int(c.ports["80/tcp"][0]["HostPort"])
    assert ipaddress.ip_address(c.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]) in subnet
    got = wait_for(lambda: http_get(port, "/hostname"), 10, what=f"httpd on 127.0.0.1:{port}")
    assert got == (200, (c.id[:12] + "\n").encode())
