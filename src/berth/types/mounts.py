"""Mount specifications, parsed and checked with Docker's rules and texts; pure (no I/O).

Daemon side (moby ``volume/mounts/linux_parser.go``): ``parse_bind`` reads one ``HostConfig.Binds``
entry, ``check_mount`` validates one ``HostConfig.Mounts`` item and ``mount_point`` turns it into a
``MountPoint``; ``parse_volumes_from``, ``check_tmpfs_destination``, ``tmpfs_options`` and
``check_destination`` (runc's rule for ``/proc``) complete them.
Client side (docker CLI 28): ``parse_mount_flag`` reads ``--mount`` into a Mounts item.
"""
from __future__ import annotations

import posixpath

from berth.errors import InvalidArgument, NotImplementedYet
from berth.types.units import _LazyRe, go_quote

PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
_MODE_KINDS = ({"rw", "ro"}, {"z", "Z"}, set(PROPAGATIONS), {"nocopy"}, {"consistent", "cached", "delegated"})
_PROC_ALLOWED = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime",
                 "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled")


def _clean(p: str) -> str:
    """Go's path.Clean."""
    if not p:
        return "."
    out = posixpath.normpath(p)
    return "/" + out.lstrip("/") if out.startswith("//") else out


def valid_mode(mode: str) -> bool:
    """moby's linuxValidMountMode: known comma-separated words, at most one of each kind."""
    if mode == "":
        return True
    counts = [0] * len(_MODE_KINDS)
    for o in mode.split(","):
        kind = next((i for i, words in enumerate(_MODE_KINDS) if o in words), None)
        if kind is None:
            return False
        counts[kind] += 1
    return max(counts) <= 1


def _config_error(kind: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"invalid mount config for type {go_quote(kind)}: {why}")


def _check_path(p: str) -> str | None:
    """Why a target (or bind source) is refused: root, or not absolute (moby's texts)."""
    p = p.replace("\\", "/")
    if not p.startswith("/"):
        return f"invalid mount path: '{p}' mount path must be absolute"
    return None


def _is_local(p: str) -> bool:
    """Go's filepath.IsLocal on Unix."""
    if not p or p.startswith("/"):
        return False
    if any(part in (".", "..") for part in p.split("/")):
        p = _clean(p)
    return p != ".." and not p.startswith("../")


# ---------------------------------------------------------------- the daemon side

def parse_bind(raw: str):
    """One ``-v``/``HostConfig.Binds`` entry (moby's ParseMountRaw): ``DST`` (anonymous volume),
    ``SRC:DST`` or ``SRC:DST:MODE``; an absolute SRC is a bind (its directory made if missing), anything
    else a volume name (checked by the volume driver, not here). Raises InvalidArgument."""
    invalid = f"invalid volume specification: '{raw}'"
    arr = raw.split(":", 3)
    if arr[0] == "" or len(arr) > 3 or (len(arr) == 2 and valid_mode(arr[1])):
        raise InvalidArgument(invalid)
    source, target = ("", arr[0]) if len(arr) == 1 else (arr[0], arr[1])
    mode = arr[2] if len(arr) == 3 else ""
    if not valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    words = mode.split(",")
    m: dict = {"Type": "bind" if source.startswith("/") else "volume", "Source": source, "Target": target,
               "ReadOnly": "ro" in words}
    if "nocopy" in words:
        m["VolumeOptions"] = {"NoCopy": True}
    propagation = next((w for w in words if w in PROPAGATIONS), "")
    if propagation:
        m["BindOptions"] = {"Propagation": propagation}
    try:
        point = mount_point(m, exists=None)
    except InvalidArgument as e:
        raise InvalidArgument(f"{invalid}: {e.message}") from None
    point.mode = mode
    point.create_source = point.type == "bind"
    return point


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """``CONTAINER[:ro|rw]`` (moby's ParseVolumesFrom) → (container, mode); no propagation or copy mode."""
    if not spec:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    ref, _, mode = spec.partition(":")
    if not mode:
        return ref, "rw"
    words = set(mode.split(","))
    if not valid_mode(mode) or words & set(PROPAGATIONS) or "nocopy" in words:
        raise InvalidArgument(f"invalid mode: {mode}")
    return ref, mode


_B, _S, _D = (bool, "bool"), (str, "string"), (dict, "map[string]string")
_JSON = {  # the API's mount.Mount fields: path → (Python type, Go type)
    "Type": (str, "mount.Type"), "Source": _S, "Target": _S, "ReadOnly": _B, "Consistency": (str, "mount.Consistency"),
    "BindOptions": (dict, "mount.BindOptions"), "BindOptions.Propagation": (str, "mount.Propagation"),
    "BindOptions.NonRecursive": _B, "BindOptions.CreateMountpoint": _B, "BindOptions.ReadOnlyNonRecursive": _B,
    "BindOptions.ReadOnlyForceRecursive": _B, "VolumeOptions": (dict, "mount.VolumeOptions"),
    "VolumeOptions.NoCopy": _B, "VolumeOptions.Labels": _D, "VolumeOptions.Subpath": _S,
    "VolumeOptions.DriverConfig": (dict, "mount.Driver"), "VolumeOptions.DriverConfig.Name": _S,
    "VolumeOptions.DriverConfig.Options": _D, "ImageOptions": (dict, "mount.ImageOptions"),
    "ImageOptions.Subpath": _S, "TmpfsOptions": (dict, "mount.TmpfsOptions"), "TmpfsOptions.SizeBytes": (int, "int64"),
    "TmpfsOptions.Mode": (int, "fs.FileMode"), "TmpfsOptions.Options": (list, "[][]string")}


def _check_json(obj: dict, prefix: str = "") -> None:
    """Fields of the wrong JSON type, refused with the texts of Go's encoding/json (as moby decodes)."""
    for key, value in obj.items():
        want = _JSON.get(prefix + key)
        if want is None or value is None:
            continue
        kind, go = want
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        ok = ok and not (kind is int and go == "fs.FileMode" and not 0 <= value < 1 << 32)
        ok = ok and not (go == "map[string]string" and not all(isinstance(v, str) for v in value.values()))
        ok = ok and not (kind is list and not all(isinstance(o, list) and all(isinstance(x, str) for x in o)
                                                  for o in value))
        if not ok:
            got = {bool: "bool", str: "string", dict: "object", list: "array"}.get(type(value), f"number {value}")
            struct = (prefix.rstrip(".").rsplit(".", 1)[-1] or "Mount").replace("DriverConfig", "Driver")
            raise InvalidArgument(f"invalid JSON: json: cannot unmarshal {got} into Go struct field "
                                  f"{struct}.HostConfig.Mounts.{prefix}{key} of type {go}")
        if kind is dict and go.startswith("mount."):
            _check_json(value, f"{prefix}{key}.")


def check_mount(m: dict, exists=None) -> None:
    """One ``HostConfig.Mounts`` item as moby's validateMountConfig checks it; InvalidArgument with its
    texts. ``exists(path) -> bool``, when given, is the I/O hook for a bind's source (``--mount`` refuses a
    missing one unless BindOptions.CreateMountpoint)."""
    _check_json(m)
    kind, source, target = m.get("Type") or "", m.get("Source") or "", m.get("Target") or ""
    present = {k for k in ("BindOptions", "VolumeOptions", "ImageOptions", "TmpfsOptions") if m.get(k) is not None}

    def extra(*fields: str) -> None:
        for f in fields:
            if f in present:
                raise _config_error(kind, f"field {f} must not be specified")

    if not target:
        raise _config_error(kind, "field Target must not be empty")
    if _clean(target.replace("\\", "/")) == "/":
        raise _config_error(kind, "invalid specification: destination can't be '/'")
    why = _check_path(target)
    if why:
        raise _config_error(kind, why)
    if kind == "bind":
        if not source:
            raise _config_error(kind, "field Source must not be empty")
        propagation = (m.get("BindOptions") or {}).get("Propagation") or ""
        if propagation and propagation not in PROPAGATIONS:
            raise _config_error(kind, f"invalid propagation mode: {propagation}")
        extra("VolumeOptions", "ImageOptions")
        why = _check_path(source)
        if why:
            raise _config_error(kind, why)
        if exists is not None and not exists(source) and not (m.get("BindOptions") or {}).get("CreateMountpoint"):
            raise _config_error(kind, f"bind source path does not exist: {source}")
    elif kind == "volume":
        extra("BindOptions", "ImageOptions")
        subpath = (m.get("VolumeOptions") or {}).get("Subpath") or ""
        if subpath and not source:
            raise _config_error(kind, "must not set Subpath when using anonymous volumes")
        if subpath and not _is_local(subpath):
            raise _config_error(kind, "subpath must be a relative path within the volume")
        if m.get("ReadOnly") and not source:
            raise _config_error(kind, "must not set ReadOnly mode when using anonymous volumes")
    elif kind == "tmpfs":
        extra("BindOptions", "ImageOptions")
        if source:
            raise _config_error(kind, "field Source must not be specified")
        try:
            tmpfs_options(m.get("TmpfsOptions"), bool(m.get("ReadOnly")))
        except ValueError as e:
            raise _config_error(kind, str(e)) from None
    elif kind == "image":
        extra("BindOptions", "VolumeOptions")
        if not source:
            raise _config_error(kind, "field Source must not be empty")
        subpath = (m.get("ImageOptions") or {}).get("Subpath") or ""
        if subpath and not _is_local(subpath):
            raise _config_error(kind, "subpath must be a relative path within the volume")
    else:
        raise _config_error(kind, "mount type unknown")


def tmpfs_options(opt: dict | None, read_only: bool = False) -> str:
    """moby's ConvertTmpfsOptions: ``ro``, ``mode=<octal>``, ``size=<n>[kmg]``, then exec/noexec.
    ValueError("invalid option: x") for other options."""
    opt = opt or {}
    out = ["ro"] if read_only else []
    if opt.get("Mode"):
        out.append(f"mode={opt['Mode']:o}")
    size = opt.get("SizeBytes") or 0
    if size:
        for suffix, div in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % div == 0:
                size, unit = size // div, suffix
                break
        else:
            unit = ""
        out.append(f"size={size}{unit}")
    for o in opt.get("Options") or []:
        if not 1 <= len(o) <= 2:
            raise ValueError("invalid option array length")
        if o[0] not in ("exec", "noexec"):
            raise ValueError(f"invalid option: {o[0]}")
        out.append("=".join(o))
    return ",".join(out)


def mount_point(m: dict, exists=None):
    """A checked ``HostConfig.Mounts`` item as a MountPoint (moby's ParseMountSpec); ``exists`` as for
    ``check_mount``. Image mounts are refused (501)."""
    from berth.types.volume import MountPoint
    check_mount(m, exists)
    kind = m["Type"]
    if kind == "image":
        raise NotImplementedYet("image mounts are not supported")
    point = MountPoint(kind, _clean(m["Target"]), rw=not m.get("ReadOnly"))
    if kind == "volume":
        point.source = m.get("Source") or ""
        point.nocopy = bool((m.get("VolumeOptions") or {}).get("NoCopy"))
        point.subpath = (m.get("VolumeOptions") or {}).get("Subpath") or ""
    elif kind == "bind":
        bind = m.get("BindOptions") or {}
        point.source = _clean(m["Source"])
        point.propagation = bind.get("Propagation") or "rprivate"
        point.create_source = bool(bind.get("CreateMountpoint"))
    else:  # tmpfs; read-only is the MountPoint's rw, not an option here
        point.tmpfs_options = tmpfs_options(m.get("TmpfsOptions"))
    return point


def check_tmpfs_destination(dest: str) -> None:
    """A ``HostConfig.Tmpfs`` key (moby's ValidateTmpfsMountDestination)."""
    if _clean(dest.replace("\\", "/")) == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    why = _check_path(dest)
    if why:
        raise InvalidArgument(why)


def check_destination(point) -> None:
    """runc's rule, checked before anything is made: nothing is mounted inside ``/proc`` (but a few files
    lxcfs emulates), and over ``/proc`` only a bind of the host's ``/proc``."""
    dest = _clean(point.destination)
    if dest == "/proc":
        if point.type == "bind" and _clean(point.source or "") == "/proc":
            return
        why = f"{go_quote(dest)} cannot be mounted because it is not of type proc"
    elif dest.startswith("/proc/") and dest not in _PROC_ALLOWED:
        why = f"{go_quote(dest)} cannot be mounted because it is inside /proc"
    else:
        return
    raise _config_error(point.type, why)


# ---------------------------------------------------------------- the client side

_CSV = _LazyRe(r'"((?:[^"]|"")*)"|([^,"\n]*)')
_ORDER = {"BindOptions": ("Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive",
                          "ReadOnlyForceRecursive"),
          "VolumeOptions": ("NoCopy", "Labels", "Subpath", "DriverConfig"), "ImageOptions": ("Subpath",),
          "TmpfsOptions": ("SizeBytes", "Mode", "Options")}
_RECURSIVE = {"enabled": "", "disabled": "NonRecursive", "writable": "ReadOnlyNonRecursive",
              "readonly": "ReadOnlyForceRecursive"}


def _csv_record(value: str) -> list[str]:
    """The first record of Go's encoding/csv (``,``-separated, ``"``-quoted); ValueError with its texts."""
    line, fields, i = value.lstrip("\r\n"), [], 0
    if not line:
        raise ValueError("EOF")
    while True:
        m = _CSV.match(line, i)
        quoted = m.group(1) is not None
        fields.append(m.group(1).replace('""', '"') if quoted else m.group(2))
        start, i = i, m.end()
        if line[i:i + 1] in ("", "\n"):
            return fields
        if line[i] == ",":
            i += 1
            continue
        column = i if quoted else len(line) + 1 if i == start else i + 1
        what = "bare \" in non-quoted-field" if not quoted and i > start else 'extraneous or missing " in quoted-field'
        raise ValueError(f"parse error on line 1, column {column}: {what}")


def _go_bool(key: str, v: str) -> bool:
    if v in ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"):
        return v[0] in "1tT"
    raise ValueError(f"invalid value for {key}: {v}")


def absolute_source(source: str, cwd: str) -> str:
    """docker CLI: a relative source starting with ``.`` is made absolute against ``cwd`` (filepath.Abs)."""
    return _clean(posixpath.join(cwd, source)) if cwd and source.startswith(".") else source


def parse_mount_flag(value: str, cwd: str = "") -> dict:
    """One ``--mount`` value → the HostConfig.Mounts item docker CLI 28 sends (empty fields left out, as
    Go's omitempty does); ValueError with the CLI's texts. ``cwd`` resolves ``source=./rel``."""
    from berth.types.units import parse_size
    m: dict = {"Type": "volume"}
    opts: dict[str, dict] = {}

    def options(kind: str) -> dict:
        return opts.setdefault(kind, {"Labels": {}, "DriverConfig": {}} if kind == "VolumeOptions" else {})

    for field in _csv_record(value):
        key, eq, val = field.partition("=")
        key = key.lower()
        if not eq:
            if key not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
                raise ValueError(f"invalid field '{field}' must be a key=value pair")
            key, val = key, "true"
        if key == "type":
            m["Type"] = val.lower()
        elif key in ("source", "src"):
            m["Source"] = absolute_source(val, cwd)
        elif key in ("target", "dst", "destination"):
            m["Target"] = val
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = _go_bool(key, val)
        elif key == "consistency":
            m["Consistency"] = val.lower()
        elif key == "bind-propagation":
            options("BindOptions")["Propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            options("BindOptions")["NonRecursive"] = _go_bool(key, val)
        elif key == "bind-recursive":
            if val not in _RECURSIVE:
                raise ValueError(f'invalid value for {key}: {val} (must be "enabled", "disabled", "writable", '
                                 'or "readonly")')
            if _RECURSIVE[val]:
                options("BindOptions")[_RECURSIVE[val]] = True
        elif key in ("volume-subpath", "image-subpath"):
            options("VolumeOptions" if key[0] == "v" else "ImageOptions")["Subpath"] = val
        elif key == "volume-nocopy":
            options("VolumeOptions")["NoCopy"] = _go_bool(key, val)
        elif key in ("volume-label", "volume-opt"):
            vo = options("VolumeOptions")
            k, _, v = val.partition("=")
            target = vo["Labels"] if key == "volume-label" else vo["DriverConfig"].setdefault("Options", {})
            if k:
                target[k] = v
        elif key == "volume-driver":
            options("VolumeOptions")["DriverConfig"]["Name"] = val
        elif key == "tmpfs-size":
            try:
                options("TmpfsOptions")["SizeBytes"] = parse_size(val)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            if not (val and set(val) <= set("01234567") and int(val, 8) < 1 << 32):
                raise ValueError(f"invalid value for {key}: {val}")
            options("TmpfsOptions")["Mode"] = int(val, 8)
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    kind = m["Type"]
    if not kind:
        raise ValueError("type is required")
    if not m.get("Target"):
        raise ValueError("target is required")
    for name in ("VolumeOptions", "ImageOptions", "BindOptions", "TmpfsOptions"):
        prefix = name.removesuffix("Options").lower()
        if name in opts and kind != prefix:
            raise ValueError(f"cannot mix '{prefix}-*' options with mount type '{kind}'")
    bind = opts.get("BindOptions", {})
    for setting, text in (("ReadOnlyNonRecursive", "writable"), ("ReadOnlyForceRecursive", "readonly")):
        if bind.get(setting) and not m.get("ReadOnly"):
            raise ValueError(f"option 'bind-recursive={text}' requires 'readonly' to be specified in conjunction")
    if bind.get("ReadOnlyForceRecursive") and bind.get("Propagation") != "rprivate":
        raise ValueError("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified "
                         "in conjunction")
    out = {k: m[k] for k in ("Type", "Source", "Target", "ReadOnly", "Consistency") if m.get(k)}
    for name in ("BindOptions", "VolumeOptions", "ImageOptions", "TmpfsOptions"):
        if name in opts:  # a Go pointer: present, even when all its fields are empty
            o = opts[name]
            out[name] = {k: o[k] for k in _ORDER[name] if o.get(k) or k == "DriverConfig"}
            if "DriverConfig" in out[name]:
                out[name]["DriverConfig"] = {k: v for k, v in o["DriverConfig"].items() if v}
    return out
