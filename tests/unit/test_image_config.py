"""Image configs, --change lines, and the image -> container config merge, as Docker does them."""
from __future__ import annotations

import json
import socket

import pytest

from berth.errors import InvalidArgument
from berth.network import etc_files
from berth.services.containers import merge_image_config
from berth.services.images import apply_change
from berth.types.container import ContainerSpec
from berth.types.digest import sha256_bytes
from berth.types.image import ImageConfig, ImageRecord

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
CID = "9f8e7d6c5b4a" + "0" * 52

DOCKER_CONFIG = {
    "architecture": "arm64",
    "os": "linux",
    "created": "2024-01-02T03:04:05.123456789Z",
    "author": "someone",
    "config": {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Entrypoint": ["/docker-entrypoint.sh"],
        "WorkingDir": "/srv",
        "User": "nginx",
        "Labels": {"maintainer": "x"},
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/data": {}},
        "StopSignal": "SIGQUIT",
        "Hostname": "", "AttachStdin": False, "OnBuild": None,
    },
    "container_config": {"Hostname": "abc"},
    "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs /"}],
}


# -- ImageConfig ----------------------------------------------------------------------------------

def test_parse_docker_config():
    c = ImageConfig.parse(json.dumps(DOCKER_CONFIG).encode())
    assert c.architecture == "arm64" and c.os == "linux"
    assert c.created == "2024-01-02T03:04:05.123456789Z"
    assert c.author == "someone"
    assert c.env == DOCKER_CONFIG["config"]["Env"]
    assert c.cmd == ["nginx", "-g", "daemon off;"]
    assert c.entrypoint == ["/docker-entrypoint.sh"]
    assert c.working_dir == "/srv" and c.user == "nginx"
    assert c.labels == {"maintainer": "x"}
    assert c.exposed_ports == {"80/tcp": {}}
    assert c.volumes == {"/data": {}}
    assert c.stop_signal == "SIGQUIT"
    assert c.diff_ids == [D1, D2]
    assert c.history == DOCKER_CONFIG["history"]


def test_parse_minimal_config():
    c = ImageConfig.parse(b'{"rootfs":{"type":"layers","diff_ids":[]}}')
    assert c.cmd is None and c.entrypoint is None and c.env == [] and c.diff_ids == []
    assert c.architecture == "amd64" and c.os == "linux"


def test_parse_null_config_fields():
    raw = {"config": {"Env": None, "Cmd": None, "Entrypoint": None, "Labels": None, "ExposedPorts": None,
                      "Volumes": None}, "rootfs": {"type": "layers", "diff_ids": [D1]}}
    c = ImageConfig.parse(json.dumps(raw).encode())
    assert c.env == [] and c.labels == {} and c.cmd is None and c.entrypoint is None


def test_round_trip_full():
    c = ImageConfig(created="2024-01-02T03:04:05Z", architecture="amd64", os="linux", author="me",
                    env=["A=1", "B=2"], cmd=["sh", "-c", "echo hi"], entrypoint=["/init"], working_dir="/w",
                    user="1000:1000", labels={"a": "b"}, exposed_ports={"80/tcp": {}, "53/udp": {}},
                    volumes={"/v": {}}, stop_signal="SIGINT", diff_ids=[D1, D2],
                    history=[{"created": "2024-01-02T03:04:05Z", "comment": "Imported from -"}])
    assert ImageConfig.parse(c.to_json()) == c


def test_round_trip_minimal():
    c = ImageConfig()
    assert ImageConfig.parse(c.to_json()) == c


def test_round_trip_keeps_empty_cmd_distinct_from_none():
    c = ImageConfig(cmd=[], entrypoint=None, diff_ids=[D1])
    back = ImageConfig.parse(c.to_json())
    assert back.cmd == [] and back.entrypoint is None


def test_to_json_is_canonical_and_stable():
    c = ImageConfig(created="t", env=["A=1"], diff_ids=[D1], labels={"z": "1", "a": "2"})
    data = c.to_json()
    assert data == ImageConfig.parse(data).to_json()
    assert b" " not in data.replace(b"A=1", b"")  # compact separators
    raw = json.loads(data)
    assert raw["rootfs"] == {"type": "layers", "diff_ids": [D1]}
    assert raw["config"]["Env"] == ["A=1"]
    assert sha256_bytes(data) == sha256_bytes(c.to_json())


@pytest.mark.parametrize("data", [
    b"",
    b"not json",
    b"{",
    b"[]",
    b'"x"',
    b'{"config": []}',
    b'{"rootfs": []}',
    b'{"rootfs": {"type": "layers", "diff_ids": [1, 2]}}',
    b'{"rootfs": {"type": "layers", "diff_ids": [null]}}',
    b'{"rootfs": {"type": "layers", "diff_ids": "sha256:abc"}}',
])
def test_parse_invalid(data):
    with pytest.raises(InvalidArgument):
        ImageConfig.parse(data)


@pytest.mark.parametrize("bad", ["nope", "sha256:xyz", "sha256:" + "A" * 64, "md5:" + "a" * 32])
def test_parse_invalid_diff_id_digest(bad):
    # Docker rejects a rootfs whose diff_ids are not digests.
    raw = {"rootfs": {"type": "layers", "diff_ids": [D1, bad]}}
    with pytest.raises(InvalidArgument):
        ImageConfig.parse(json.dumps(raw).encode())


# -- apply_change ------------------------------------------------------------------------------------

def changed(*changes: str, base: ImageConfig | None = None) -> ImageConfig:
    cfg = base or ImageConfig()
    for ch in changes:
        apply_change(cfg, ch)
    return cfg


def test_cmd_json_form():
    assert changed('CMD ["echo", "hi there"]').cmd == ["echo", "hi there"]


def test_cmd_shell_form():
    assert changed("CMD echo hi there").cmd == ["/bin/sh", "-c", "echo hi there"]


def test_entrypoint_forms():
    assert changed('ENTRYPOINT ["/bin/app", "-v"]').entrypoint == ["/bin/app", "-v"]
    assert changed("ENTRYPOINT exec app").entrypoint == ["/bin/sh", "-c", "exec app"]


def test_instruction_is_case_insensitive():
    assert changed("cmd echo hi").cmd == ["/bin/sh", "-c", "echo hi"]
    assert changed("workdir /x").working_dir == "/x"


def test_env_equals_form():
    assert changed("ENV A=1").env == ["A=1"]
    assert changed("ENV A=1 B=two").env == ["A=1", "B=two"]
    assert changed('ENV A="hello world"').env == ["A=hello world"]


def test_env_space_form():
    assert changed("ENV A hello world").env == ["A=hello world"]


def test_env_overrides_by_key():
    cfg = changed("ENV A=2", base=ImageConfig(env=["PATH=/bin", "B=1", "A=1"]))
    assert sorted(cfg.env) == ["A=2", "B=1", "PATH=/bin"]


def test_env_replaced_in_place():
    # Docker's ENV dispatcher replaces the existing entry where it is.
    cfg = changed("ENV A=2", base=ImageConfig(env=["A=1", "B=1"]))
    assert cfg.env == ["A=2", "B=1"]


def test_env_key_prefix_is_not_a_match():
    cfg = changed("ENV A=2", base=ImageConfig(env=["AB=1"]))
    assert sorted(cfg.env) == ["A=2", "AB=1"]


def test_label():
    assert changed("LABEL a=b").labels == {"a": "b"}
    assert changed('LABEL a=b "c d"=e f="g h"').labels == {"a": "b", "c d": "e", "f": "g h"}
    cfg = changed("LABEL a=new", base=ImageConfig(labels={"a": "old", "k": "v"}))
    assert cfg.labels == {"a": "new", "k": "v"}


def test_workdir_user_stopsignal():
    cfg = changed("WORKDIR /app", "USER nobody", "STOPSIGNAL SIGINT")
    assert (cfg.working_dir, cfg.user, cfg.stop_signal) == ("/app", "nobody", "SIGINT")


def test_workdir_relative_is_joined_to_previous():
    # Docker's normalizeWorkdir: a relative WORKDIR is joined onto the current one (or "/").
    assert changed("WORKDIR app").working_dir == "/app"
    assert changed("WORKDIR /srv", "WORKDIR app").working_dir == "/srv/app"


def test_expose():
    assert changed("EXPOSE 80").exposed_ports == {"80/tcp": {}}
    assert changed("EXPOSE 80 53/udp 443/tcp").exposed_ports == {"80/tcp": {}, "53/udp": {}, "443/tcp": {}}


def test_expose_range():
    assert changed("EXPOSE 8000-8002").exposed_ports == {"8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}}


def test_expose_invalid_port():
    with pytest.raises(InvalidArgument):
        changed("EXPOSE http")


def test_volume():
    assert changed("VOLUME /data").volumes == {"/data": {}}
    assert changed("VOLUME /a /b").volumes == {"/a": {}, "/b": {}}
    assert changed('VOLUME ["/c", "/d e"]').volumes == {"/c": {}, "/d e": {}}


@pytest.mark.parametrize("sig", ["SIGTERM", "TERM", "9", "SIGRTMIN+3"])
def test_stopsignal_valid(sig):
    assert changed(f"STOPSIGNAL {sig}").stop_signal == sig


def test_stopsignal_invalid():
    # Docker validates STOPSIGNAL with signal.ParseSignal.
    with pytest.raises(InvalidArgument):
        changed("STOPSIGNAL NOTASIGNAL")


@pytest.mark.parametrize("change", ["RUN echo hi", "FROM busybox", "ADD a b", "COPY a b", "MAINTAINER x",
                                    "ARG x=1", "BOGUS x"])
def test_unknown_or_disallowed_change(change):
    with pytest.raises(InvalidArgument) as e:
        changed(change)
    assert "is not a valid change command" in e.value.message


def test_changes_apply_in_order():
    cfg = changed("CMD a", "CMD b")
    assert cfg.cmd == ["/bin/sh", "-c", "b"]


# -- merge_image_config -------------------------------------------------------------------------------

def image(**kw) -> ImageRecord:
    cfg = ImageConfig(**kw)
    return ImageRecord(id=sha256_bytes(cfg.to_json()), config=cfg, created="2024-01-01T00:00:00Z", size=0)


def spec(**kw) -> ContainerSpec:
    return ContainerSpec(image="img", **kw)


def test_image_defaults_used():
    img = image(env=["PATH=/bin", "A=1"], cmd=["sh"], entrypoint=["/init"], working_dir="/w", user="app",
                labels={"l": "1"}, stop_signal="SIGQUIT", exposed_ports={"80/tcp": {}}, volumes={"/v": {}})
    m = merge_image_config(spec(), img, CID)
    assert m.entrypoint == ["/init"] and m.cmd == ["sh"]
    assert m.env == ["PATH=/bin", "A=1"]
    assert m.working_dir == "/w" and m.user == "app"
    assert m.labels == {"l": "1"}
    assert m.stop_signal == "SIGQUIT"
    assert m.exposed_ports == {"80/tcp": {}}
    assert m.volumes == {"/v": {}}
    assert m.hostname == CID[:12]
    assert m.image == "img"


def test_env_merged_and_overridden_by_key():
    img = image(env=["PATH=/bin", "A=1", "B=1"], cmd=["sh"])
    m = merge_image_config(spec(env=["A=2", "C=3"]), img, CID)
    assert sorted(m.env) == ["A=2", "B=1", "C=3", "PATH=/bin"]


def test_env_order_container_first_then_image():
    # moby daemon/commit.go merge(): the container's Env, then image entries whose key it lacks.
    img = image(env=["PATH=/bin", "A=1"], cmd=["sh"])
    m = merge_image_config(spec(env=["A=2", "C=3"]), img, CID)
    assert m.env == ["A=2", "C=3", "PATH=/bin"]


def test_env_key_without_value_overrides():
    img = image(env=["A=1"], cmd=["sh"])
    m = merge_image_config(spec(env=["A"]), img, CID)
    assert "A=1" not in m.env and "A" in m.env


def test_cmd_given_keeps_image_entrypoint():
    img = image(entrypoint=["/init"], cmd=["default"])
    m = merge_image_config(spec(cmd=["mine"]), img, CID)
    assert (m.entrypoint, m.cmd) == (["/init"], ["mine"])


def test_entrypoint_given_drops_image_cmd():
    img = image(entrypoint=["/init"], cmd=["default"])
    m = merge_image_config(spec(entrypoint=["/bin/echo"]), img, CID)
    assert m.entrypoint == ["/bin/echo"]
    assert not m.cmd


def test_entrypoint_and_cmd_given():
    img = image(entrypoint=["/init"], cmd=["default"])
    m = merge_image_config(spec(entrypoint=["/bin/echo"], cmd=["x"]), img, CID)
    assert (m.entrypoint, m.cmd) == (["/bin/echo"], ["x"])


def test_empty_string_entrypoint_resets_it():
    img = image(entrypoint=["/init"], cmd=["default"])
    m = merge_image_config(spec(entrypoint=[""], cmd=["ls"]), img, CID)
    assert not m.entrypoint
    assert m.cmd == ["ls"]


def test_empty_string_entrypoint_without_cmd_is_no_command():
    img = image(entrypoint=["/init"], cmd=["default"])
    with pytest.raises(InvalidArgument):
        merge_image_config(spec(entrypoint=[""]), img, CID)


def test_empty_entrypoint_list_keeps_image_cmd():
    # moby merge(): len(Entrypoint) == 0 -> Cmd comes from the image; a non-nil empty
    # Entrypoint is kept (so the image's entrypoint is not used).
    img = image(entrypoint=["/init"], cmd=["default"])
    m = merge_image_config(spec(entrypoint=[]), img, CID)
    assert m.cmd == ["default"]
    assert not m.entrypoint


def test_empty_cmd_list_uses_image_cmd():
    img = image(cmd=["default"])
    m = merge_image_config(spec(cmd=[]), img, CID)
    assert m.cmd == ["default"]


@pytest.mark.parametrize("img_kw, spec_kw", [
    ({}, {}),
    ({"cmd": []}, {}),
    ({}, {"cmd": []}),
    ({"entrypoint": ["/init"]}, {"entrypoint": [""]}),
])
def test_no_command_at_all(img_kw, spec_kw):
    with pytest.raises(InvalidArgument):
        merge_image_config(spec(**spec_kw), image(**img_kw), CID)


def test_labels_merged_container_wins():
    img = image(cmd=["sh"], labels={"a": "img", "b": "img"})
    m = merge_image_config(spec(labels={"a": "mine", "c": "mine"}), img, CID)
    assert m.labels == {"a": "mine", "b": "img", "c": "mine"}


def test_container_values_win():
    img = image(cmd=["sh"], working_dir="/w", user="app", stop_signal="SIGQUIT")
    m = merge_image_config(spec(working_dir="/mine", user="root", stop_signal="SIGKILL", hostname="h"), img, CID)
    assert (m.working_dir, m.user, m.stop_signal, m.hostname) == ("/mine", "root", "SIGKILL", "h")


def test_ports_and_volumes_merged():
    img = image(cmd=["sh"], exposed_ports={"80/tcp": {}}, volumes={"/v": {}})
    m = merge_image_config(spec(exposed_ports={"443/tcp": {}}, volumes={"/w": {}}), img, CID)
    assert m.exposed_ports == {"80/tcp": {}, "443/tcp": {}}
    assert m.volumes == {"/v": {}, "/w": {}}


def test_hostname_defaults_to_short_id():
    m = merge_image_config(spec(), image(cmd=["sh"]), CID)
    assert m.hostname == CID[:12]
    assert len(m.hostname) == 12


def test_host_network_hostname_is_the_hosts():
    m = merge_image_config(spec(network_mode="host"), image(cmd=["sh"]), CID)
    assert m.hostname == socket.gethostname()


def test_merge_does_not_mutate_inputs():
    img = image(env=["A=1"], cmd=["sh"], labels={"a": "1"}, exposed_ports={"80/tcp": {}}, volumes={"/v": {}})
    s = spec(env=["B=2"], labels={"b": "2"}, exposed_ports={"1/tcp": {}}, volumes={"/w": {}})
    merge_image_config(s, img, CID)
    assert img.config.env == ["A=1"] and img.config.labels == {"a": "1"}
    assert img.config.exposed_ports == {"80/tcp": {}} and img.config.volumes == {"/v": {}}
    assert s.env == ["B=2"] and s.labels == {"b": "2"}
    assert s.exposed_ports == {"1/tcp": {}} and s.volumes == {"/w": {}}


# -- resolv_conf ----------------------------------------------------------------------------------------

HOST_RESOLV = """\
# comment
nameserver 127.0.0.53
nameserver 10.0.0.2
nameserver ::1
nameserver 127.1.2.3
search example.com
options edns0 trust-ad
"""


def resolv_conf(host: str, host_net: bool, **kw) -> str:
    opts = {"dns": [], "search": [], "options": [], **kw}
    return etc_files.resolv_conf(etc_files.parse_resolv(host), mode="host" if host_net else "plain", **opts)[0]


def nameservers(text: str) -> list[str]:
    return [l.split()[1] for l in text.splitlines() if l.split()[:1] == ["nameserver"]]


def test_loopback_nameservers_dropped():
    out = resolv_conf(HOST_RESOLV, host_net=False)
    assert nameservers(out) == ["10.0.0.2"]
    assert "search example.com" in out
    assert "options edns0 trust-ad" in out


def test_host_network_keeps_everything():
    out = resolv_conf(HOST_RESOLV, host_net=True)
    assert nameservers(out) == ["127.0.0.53", "10.0.0.2", "::1", "127.1.2.3"]
    assert "search example.com" in out


def test_non_loopback_lookalikes_kept():
    out = resolv_conf("nameserver 1.127.0.1\nnameserver 10.127.0.0\n", host_net=False)
    assert nameservers(out) == ["1.127.0.1", "10.127.0.0"]


def test_only_loopback_nameservers_fall_back_to_docker_defaults():
    # Docker: "If there are no more nameserver entries left ..., the daemon adds public
    # Google DNS nameservers (8.8.8.8 and 8.8.4.4)".
    out = resolv_conf("nameserver 127.0.0.53\noptions edns0\n", host_net=False)
    assert nameservers(out) == ["8.8.8.8", "8.8.4.4"]


def test_empty_host_resolv_conf_falls_back():
    assert nameservers(resolv_conf("", host_net=False)) == ["8.8.8.8", "8.8.4.4"]


def test_output_ends_with_newline():
    assert resolv_conf("nameserver 10.0.0.2", host_net=False).endswith("\n")


def test_embedded_dns_points_at_127_0_0_11_and_forwards_to_the_hosts_servers():
    text, upstream = etc_files.resolv_conf(etc_files.parse_resolv(HOST_RESOLV), dns=[], search=[], options=[],
                                           mode="embedded")
    assert nameservers(text) == ["127.0.0.11"]
    assert upstream == ["127.0.0.53", "10.0.0.2", "::1", "127.1.2.3"]
    assert "options edns0 trust-ad ndots:0" in text


def test_container_dns_overrides_the_hosts():
    text = resolv_conf(HOST_RESOLV, host_net=False, dns=["192.0.2.53"], search=["corp"], options=["ndots:2"])
    assert nameservers(text) == ["192.0.2.53"]
    assert "search corp" in text and "options ndots:2" in text
