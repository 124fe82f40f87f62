"""Mount specifications (berth.types.mounts) against Docker's rules and texts: moby's Linux parser for
``Binds`` and ``Mounts``, and docker CLI 28's ``--mount`` (what it sends was recorded from the real CLI)."""
from __future__ import annotations

import pytest

from berth.errors import InvalidArgument, NotImplementedYet
from berth.types import mounts
from berth.types.volume import MountPoint


def refusal(call, *args, **kwargs) -> str:
    """The message of the InvalidArgument ``call(*args, **kwargs)`` raises."""
    with pytest.raises(InvalidArgument) as e:
        call(*args, **kwargs)
    return e.value.message

# ---------------------------------------------------------------- -v / HostConfig.Binds (ParseMountRaw)

VALID_BINDS = [
    "/home", "/home:/home", "/home:/something/else", "/with space", "/home:/with space", "relative:/absolute-path",
    "hostPath:/containerPath:ro", "/hostPath:/containerPath:rw", "/rw:/ro", "/hostPath:/containerPath:shared",
    "/hostPath:/containerPath:rshared", "/hostPath:/containerPath:slave", "/hostPath:/containerPath:rslave",
    "/hostPath:/containerPath:private", "/hostPath:/containerPath:rprivate", "/hostPath:/containerPath:ro,shared",
    "/hostPath:/containerPath:ro,z,shared", "/hostPath:/containerPath:Z,ro,slave",
    "/hostPath:/containerPath:slave,ro,Z", "/hostPath:/containerPath:ro,Z,rprivate", "name:/data:nocopy",
    "name:/data:ro,nocopy", "/h:/c:cached", "/h:/c:delegated,ro",
]


@pytest.mark.parametrize("spec", VALID_BINDS)
def test_valid_binds(spec):
    assert isinstance(mounts.parse_bind(spec), MountPoint)


@pytest.mark.parametrize("spec, message", [
    ("", "invalid volume specification: ''"),
    (":", "invalid volume specification: ':'"),
    ("/tmp:", "invalid volume specification: '/tmp:'"),
    (":/test", "invalid volume specification: ':/test'"),
    ("::", "invalid volume specification: '::'"),
    ("/tmp:::", "invalid volume specification: '/tmp:::'"),
    ("x:y:z:w", "invalid volume specification: 'x:y:z:w'"),
    ("/path:rw", "invalid volume specification: '/path:rw'"),
    ("/path:ro", "invalid volume specification: '/path:ro'"),
    ("path:ro", "invalid volume specification: 'path:ro'"),
    ("/path:shared", "invalid volume specification: '/path:shared'"),
    ("/path:/path:sw", "invalid mode: sw"),
    ("/path:/path:rwz", "invalid mode: rwz"),
    ("/x:/y:rw,ro", "invalid mode: rw,ro"),
    ("/path:/path:ro,rshared,rslave", "invalid mode: ro,rshared,rslave"),
    ("/path:/path:z,Z", "invalid mode: z,Z"),
    ("/path:/path:ro,", "invalid mode: ro,"),
    ("./", "invalid volume specification: './': invalid mount config for type \"volume\": "
           "invalid mount path: './' mount path must be absolute"),
    ("/:path", "invalid volume specification: '/:path': invalid mount config for type \"bind\": "
               "invalid mount path: 'path' mount path must be absolute"),
    ("/tmp:tmp", "invalid volume specification: '/tmp:tmp': invalid mount config for type \"bind\": "
                 "invalid mount path: 'tmp' mount path must be absolute"),
    ("rel:x", "invalid volume specification: 'rel:x': invalid mount config for type \"volume\": "
              "invalid mount path: 'x' mount path must be absolute"),
    ("/h:/", "invalid volume specification: '/h:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("data:/x/..", "invalid volume specification: 'data:/x/..': invalid mount config for type \"volume\": "
                   "invalid specification: destination can't be '/'"),
    ("name:/absolute-path:shared", "invalid volume specification: 'name:/absolute-path:shared': invalid mount "
                                   "config for type \"volume\": field BindOptions must not be specified"),
    ("/h:/c:nocopy", "invalid volume specification: '/h:/c:nocopy': invalid mount config for type \"bind\": "
                     "field VolumeOptions must not be specified"),
])
def test_invalid_binds(spec, message):
    assert refusal(mounts.parse_bind, spec) == message


def test_bind_mount_points():
    m = mounts.parse_bind("/tmp/../tmp:/tmp2/:ro")
    assert (m.type, m.source, m.destination, m.rw, m.mode, m.propagation, m.create_source) == \
        ("bind", "/tmp", "/tmp2", False, "ro", "rprivate", True)
    m = mounts.parse_bind("/h:/c:rw,rshared,z")
    assert (m.rw, m.mode, m.propagation) == (True, "rw,rshared,z", "rshared")


def test_volume_mount_points():
    m = mounts.parse_bind("name:/named1")
    assert (m.type, m.source, m.destination, m.rw, m.mode, m.propagation, m.nocopy, m.create_source) == \
        ("volume", "name", "/named1", True, "", "", False, False)
    m = mounts.parse_bind("local/name:/tmp:ro,nocopy")  # the name is the volume driver's to refuse
    assert (m.source, m.rw, m.mode, m.nocopy) == ("local/name", False, "ro,nocopy", True)
    m = mounts.parse_bind("/anon/")
    assert (m.type, m.source, m.destination, m.rw) == ("volume", "", "/anon", True)


def test_volumes_from():
    assert mounts.parse_volumes_from("web") == ("web", "rw")
    assert mounts.parse_volumes_from("web:ro") == ("web", "ro")
    assert mounts.parse_volumes_from("web:ro,z") == ("web", "ro,z")
    for spec, message in (("", "volumes-from specification cannot be an empty string"),
                          ("web:bogus", "invalid mode: bogus"), ("web:ro,shared", "invalid mode: ro,shared"),
                          ("web:nocopy", "invalid mode: nocopy")):
        assert refusal(mounts.parse_volumes_from, spec) == message


# ---------------------------------------------------------------- HostConfig.Mounts (validateMountConfig)

@pytest.mark.parametrize("m, why", [
    ({"Type": "volume"}, "field Target must not be empty"),
    ({"Type": "bind"}, "field Target must not be empty"),
    ({"Type": "volume", "Target": "rel"}, "invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "volume", "Target": "/"}, "invalid specification: destination can't be '/'"),
    ({"Type": "bind", "Target": "/x"}, "field Source must not be empty"),
    ({"Type": "bind", "Target": "/x", "Source": "rel"}, "invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "bind", "Target": "/x", "Source": "/h", "VolumeOptions": {}},
     "field VolumeOptions must not be specified"),
    ({"Type": "bind", "Target": "/x", "Source": "/h", "ImageOptions": {}}, "field ImageOptions must not be specified"),
    ({"Type": "bind", "Target": "/x", "Source": "/h", "BindOptions": {"Propagation": "sideways"}},
     "invalid propagation mode: sideways"),
    ({"Type": "volume", "Target": "/x", "Source": "v", "BindOptions": {}}, "field BindOptions must not be specified"),
    ({"Type": "volume", "Target": "/x", "ReadOnly": True}, "must not set ReadOnly mode when using anonymous volumes"),
    ({"Type": "volume", "Target": "/x", "VolumeOptions": {"Subpath": "a"}},
     "must not set Subpath when using anonymous volumes"),
    ({"Type": "volume", "Target": "/x", "Source": "v", "VolumeOptions": {"Subpath": "../a"}},
     "subpath must be a relative path within the volume"),
    ({"Type": "volume", "Target": "/x", "Source": "v", "VolumeOptions": {"Subpath": "/a"}},
     "subpath must be a relative path within the volume"),
    ({"Type": "tmpfs", "Target": "/x", "Source": "s"}, "field Source must not be specified"),
    ({"Type": "tmpfs", "Target": "/x", "BindOptions": {}}, "field BindOptions must not be specified"),
    ({"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"Options": [["nosuid"]]}}, "invalid option: nosuid"),
    ({"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"Options": [["a", "b", "c"]]}}, "invalid option array length"),
    ({"Type": "image", "Target": "/x"}, "field Source must not be empty"),
    ({"Type": "invalid", "Target": "/x"}, "mount type unknown"),
    ({"Type": "npipe", "Target": "/x", "Source": "p"}, "mount type unknown"),
    ({"Target": "/x"}, "mount type unknown"),
])
def test_check_mount_errors(m, why):
    assert refusal(mounts.check_mount, m) == f'invalid mount config for type "{m.get("Type", "")}": {why}'


def test_check_mount_accepts():
    for m in ({"Type": "volume", "Target": "/x"}, {"Type": "volume", "Target": "/x", "Source": "v", "ReadOnly": True,
                                                    "VolumeOptions": {"Subpath": "a/b", "NoCopy": True}},
              {"Type": "bind", "Target": "/x", "Source": "/h", "BindOptions": {"Propagation": "rshared"}},
              {"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o700}},
              {"Type": "image", "Target": "/x", "Source": "busybox"}):
        mounts.check_mount(m)


def test_the_bind_source_hook():
    m = {"Type": "bind", "Source": "/nope", "Target": "/x"}
    mounts.check_mount(m)  # no hook: no I/O
    assert refusal(mounts.check_mount, m, exists=lambda p: False) == (
        'invalid mount config for type "bind": bind source path does not exist: /nope')
    mounts.check_mount({**m, "BindOptions": {"CreateMountpoint": True}}, exists=lambda p: False)
    mounts.check_mount(m, exists=lambda p: p == "/nope")


@pytest.mark.parametrize("m, message", [
    ({"Type": "bind", "Target": "/x", "ReadOnly": "yes"}, "invalid JSON: json: cannot unmarshal string into Go "
                                                          "struct field Mount.HostConfig.Mounts.ReadOnly of type bool"),
    ({"Type": 1, "Target": "/x"}, "invalid JSON: json: cannot unmarshal number 1 into Go struct field "
                                  "Mount.HostConfig.Mounts.Type of type mount.Type"),
    ({"Type": "volume", "Target": "/x", "VolumeOptions": "x"}, "invalid JSON: json: cannot unmarshal string into Go "
                                                               "struct field Mount.HostConfig.Mounts.VolumeOptions of "
                                                               "type mount.VolumeOptions"),
    ({"Type": "volume", "Target": "/x", "VolumeOptions": {"NoCopy": 1}},
     "invalid JSON: json: cannot unmarshal number 1 into Go struct field VolumeOptions.HostConfig.Mounts."
     "VolumeOptions.NoCopy of type bool"),
    ({"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"Mode": -1}},
     "invalid JSON: json: cannot unmarshal number -1 into Go struct field TmpfsOptions.HostConfig.Mounts."
     "TmpfsOptions.Mode of type fs.FileMode"),
])
def test_fields_of_the_wrong_type(m, message):
    assert refusal(mounts.check_mount, m) == message


def test_mount_points_from_mounts():
    m = mounts.mount_point({"Type": "bind", "Source": "/h//x/", "Target": "/c/", "ReadOnly": True})
    assert (m.type, m.source, m.destination, m.rw, m.propagation, m.create_source, m.mode) == \
        ("bind", "/h/x", "/c", False, "rprivate", False, "")
    m = mounts.mount_point({"Type": "bind", "Source": "/h", "Target": "/c",
                            "BindOptions": {"Propagation": "slave", "CreateMountpoint": True}})
    assert (m.propagation, m.create_source) == ("slave", True)
    m = mounts.mount_point({"Type": "volume", "Source": "data", "Target": "/d", "VolumeOptions": {"NoCopy": True}})
    assert (m.type, m.source, m.destination, m.nocopy, m.rw) == ("volume", "data", "/d", True, True)
    m = mounts.mount_point({"Type": "tmpfs", "Target": "/t", "ReadOnly": True,
                            "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1770}})
    assert (m.type, m.tmpfs_options, m.rw) == ("tmpfs", "mode=1770,size=64m", False)
    with pytest.raises(NotImplementedYet):
        mounts.mount_point({"Type": "image", "Source": "busybox", "Target": "/i"})


def test_tmpfs_options():
    assert mounts.tmpfs_options({"SizeBytes": 1 << 20, "Mode": 0o700}) == "mode=700,size=1m"
    assert mounts.tmpfs_options({}, read_only=True) == "ro"
    assert mounts.tmpfs_options({"Options": [["exec"]]}, read_only=True) == "ro,exec"
    assert mounts.tmpfs_options({"SizeBytes": 3 << 30}) == "size=3g"
    assert mounts.tmpfs_options({"SizeBytes": 1000}) == "size=1000"
    assert mounts.tmpfs_options(None) == ""


def test_tmpfs_destinations():
    mounts.check_tmpfs_destination("/run")
    for dest, message in (("/", "invalid specification: destination can't be '/'"),
                          ("run", "invalid mount path: 'run' mount path must be absolute")):
        assert refusal(mounts.check_tmpfs_destination, dest) == message


def test_nothing_is_mounted_in_proc():
    mounts.check_destination(MountPoint("bind", "/data", source="/h"))
    mounts.check_destination(MountPoint("bind", "/proc", source="/proc"))
    mounts.check_destination(MountPoint("bind", "/proc/meminfo", source="/var/lib/lxcfs/proc/meminfo"))
    mounts.check_destination(MountPoint("volume", "/process", source="v"))
    for point, why in ((MountPoint("bind", "/proc/sys", source="/h"), '"/proc/sys" cannot be mounted because it '
                                                                       "is inside /proc"),
                       (MountPoint("bind", "/proc", source="/tmp"), '"/proc" cannot be mounted because it is not '
                                                                    "of type proc"),
                       (MountPoint("volume", "/proc/", source="v"), '"/proc" cannot be mounted because it is not '
                                                                    "of type proc")):
        assert refusal(mounts.check_destination, point) == f'invalid mount config for type "{point.type}": {why}'


# ---------------------------------------------------------------- --mount (docker CLI 28, as recorded)

@pytest.mark.parametrize("value, sent", [
    ("type=bind,source=/h,target=/c,readonly", {"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True}),
    ("type=bind,src=/h,dst=/c,ro=false,bind-propagation=rshared",
     {"Type": "bind", "Source": "/h", "Target": "/c", "BindOptions": {"Propagation": "rshared"}}),
    ("type=volume,source=data,target=/d,volume-nocopy,volume-label=a=b,volume-label=c,volume-driver=local,"
     "volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-subpath=sub",
     {"Type": "volume", "Source": "data", "Target": "/d", "VolumeOptions": {
         "NoCopy": True, "Labels": {"a": "b", "c": ""}, "Subpath": "sub",
         "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}}),
    ("target=/anon", {"Type": "volume", "Target": "/anon"}),
    ("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770",
     {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 1016}}),
    ("type=tmpfs,destination=/t,tmpfs-size=1.5g", {"Type": "tmpfs", "Target": "/t",
                                                   "TmpfsOptions": {"SizeBytes": 1610612736}}),
    ("type=tmpfs,target=/x,tmpfs-size=0,tmpfs-mode=0", {"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {}}),
    ("type=tmpfs,target=/x,tmpfs-size=10KiB", {"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"SizeBytes": 10240}}),
    ("type=bind,source=./rel,target=/r,consistency=Cached,bind-recursive=readonly,readonly,bind-propagation=rprivate",
     {"Type": "bind", "Source": "/work/dir/rel", "Target": "/r", "ReadOnly": True, "Consistency": "cached",
      "BindOptions": {"Propagation": "rprivate", "ReadOnlyForceRecursive": True}}),
    ("type=bind,source=/h,target=/r,bind-nonrecursive",
     {"Type": "bind", "Source": "/h", "Target": "/r", "BindOptions": {"NonRecursive": True}}),
    ("type=bind,source=/h,target=/r,bind-recursive=writable,ro=1",
     {"Type": "bind", "Source": "/h", "Target": "/r", "ReadOnly": True, "BindOptions": {"ReadOnlyNonRecursive": True}}),
    ("type=bind,target=/x,bind-recursive=enabled,src=/a", {"Type": "bind", "Source": "/a", "Target": "/x"}),
    ("type=image,source=busybox,target=/i,image-subpath=bin",
     {"Type": "image", "Source": "busybox", "Target": "/i", "ImageOptions": {"Subpath": "bin"}}),
    ("type=volume,source=data,target=/d,volume-nocopy=true",
     {"Type": "volume", "Source": "data", "Target": "/d", "VolumeOptions": {"NoCopy": True, "DriverConfig": {}}}),
    ("type=volume,target=/x,volume-driver=,volume-label==x",
     {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {}}}),
    ("type=npipe,source=x,target=/p", {"Type": "npipe", "Source": "x", "Target": "/p"}),
    ("TYPE=VOLUME,Source=Data,Target=/d", {"Type": "volume", "Source": "Data", "Target": "/d"}),
    ('"type=bind",target=/x,"source=/a,b"', {"Type": "bind", "Source": "/a,b", "Target": "/x"}),
    ('type=bind,target=/x,"source=/a""b"', {"Type": "bind", "Source": '/a"b', "Target": "/x"}),
    ("type=bind,target=/x,source=/h,ro=TRUE,readonly=t", {"Type": "bind", "Source": "/h", "Target": "/x",
                                                          "ReadOnly": True}),
])
def test_mount_flag_sends_what_docker_sends(value, sent):
    got = mounts.parse_mount_flag(value, "/work/dir")
    assert got == sent
    assert list(got) == list(sent)  # Go's field order


@pytest.mark.parametrize("value, message", [
    ("type=bind,source=/h", "target is required"),
    ("type=,target=/x", "type is required"),
    ("foo=bar,target=/x", "unexpected key 'foo' in 'foo=bar'"),
    (" type=bind,target=/x", "unexpected key ' type' in ' type=bind'"),
    ("type=bind,target=/x,=y", "unexpected key '' in '=y'"),
    ("type=bind,target=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
    ("type=bind,target=/x,", "invalid field '' must be a key=value pair"),
    ("type=bind,target=/x,ro=maybe", "invalid value for ro: maybe"),
    ("type=bind,target=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
    ("type=volume,target=/x,bind-propagation=shared", "cannot mix 'bind-*' options with mount type 'volume'"),
    ("type=volume,target=/x,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'volume'"),
    ("type=volume,target=/x,image-subpath=a", "cannot mix 'image-*' options with mount type 'volume'"),
    ("type=tmpfs,target=/x,tmpfs-size=big", "invalid value for tmpfs-size: big"),
    ("type=tmpfs,target=/x,tmpfs-size=-1", "invalid value for tmpfs-size: -1"),
    ("type=tmpfs,target=/x,tmpfs-mode=999", "invalid value for tmpfs-mode: 999"),
    ("type=bind,target=/x,bind-recursive=maybe",
     'invalid value for bind-recursive: maybe (must be "enabled", "disabled", "writable", or "readonly")'),
    ("type=bind,target=/x,bind-recursive=writable",
     "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"),
    ("type=bind,target=/x,bind-recursive=readonly,ro",
     "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction"),
    ("type=bind,target=/x,bind-nonrecursive=yes", "invalid value for bind-nonrecursive: yes"),
    ("type=volume,target=/x,volume-nocopy=yes", "invalid value for volume-nocopy: yes"),
    ("", "EOF"),
    ('type=bind,"target=/x', 'parse error on line 1, column 21: extraneous or missing " in quoted-field'),
    ('type=bi"nd,target=/x', 'parse error on line 1, column 8: bare " in non-quoted-field'),
    ('"type=bind"x,target=/x', 'parse error on line 1, column 11: extraneous or missing " in quoted-field'),
])
def test_mount_flag_errors(value, message):
    with pytest.raises(ValueError) as e:
        mounts.parse_mount_flag(value, "/work/dir")
    assert str(e.value) == message


def test_what_the_cli_sends_the_daemon_accepts():
    for value in ("type=bind,source=/h,target=/c,readonly", "type=volume,source=data,target=/d,volume-nocopy",
                  "type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770", "target=/anon"):
        mounts.check_mount(mounts.parse_mount_flag(value))
