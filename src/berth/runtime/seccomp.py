"""Seccomp profiles in Docker's JSON format → the OCI spec's ``linux.seccomp``.

A profile is what ``docker run --security-opt seccomp=FILE`` sends (the file's content) or berth's default,
``seccomp_default.json`` beside this module: everything not listed fails with EPERM. Each syscall rule may be
limited to some architectures, capabilities or kernel versions (``includes``/``excludes``); those are resolved
here for one container, as dockerd does, so that what runc gets is a flat list of rules.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import re
from importlib import resources

from berth.errors import InvalidArgument

ACTIONS = {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
           "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}
OPERATORS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ"}
# Docker's architecture names (runtime.GOARCH through libseccomp's) and the seccomp architecture of each.
_MACHINE = {"x86_64": "amd64", "amd64": "amd64", "i386": "x86", "i686": "x86", "aarch64": "arm64",
            "arm64": "arm64", "armv7l": "arm", "armv6l": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
            "riscv64": "riscv64", "mips64": "mips64"}
_SECCOMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "x86": "SCMP_ARCH_X86", "arm64": "SCMP_ARCH_AARCH64",
                 "arm": "SCMP_ARCH_ARM", "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
                 "riscv64": "SCMP_ARCH_RISCV64", "mips64": "SCMP_ARCH_MIPS64"}


def native_arch() -> str:
    """This host's architecture in Docker's names: ``amd64``, ``arm64`` ..."""
    m = platform.machine()
    return _MACHINE.get(m, m)


def _version(text: str) -> tuple[int, ...]:
    m = re.match(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?", text)
    if not m:
        raise InvalidArgument(f"invalid kernel version in seccomp profile: {text!r}")
    return tuple(int(x or 0) for x in m.groups())


@functools.lru_cache(maxsize=1)
def kernel_version() -> tuple[int, ...]:
    return _version(os.uname().release)


@functools.lru_cache(maxsize=1)
def default_profile_text() -> str:
    return resources.files("berth.runtime").joinpath("seccomp_default.json").read_text()


def default_profile() -> dict:
    return json.loads(default_profile_text())


def load_profile(text: str) -> dict:
    """Parse and check a profile (a client's JSON); InvalidArgument with Docker's wording when it is not one."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise InvalidArgument("Decoding seccomp profile failed: the profile must be a JSON object")
    _check(profile)
    return profile


def _fail(msg: str):
    raise InvalidArgument(f"Decoding seccomp profile failed: {msg}")


def _check(profile: dict) -> None:
    if profile.get("architectures") and profile.get("archMap"):
        _fail("'architectures' and 'archMap' were specified in the seccomp profile, use either "
              "'architectures' or 'archMap'")
    action = profile.get("defaultAction") or ""
    if action and action not in ACTIONS:
        _fail(f"unknown action {action!r}")
    if not isinstance(profile.get("syscalls") or [], list):
        _fail("'syscalls' must be an array")
    for call in profile.get("syscalls") or []:
        if not isinstance(call, dict):
            _fail("each entry of 'syscalls' must be an object")
        if call.get("name") and call.get("names"):
            _fail("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")
        names = call.get("names") or ([call["name"]] if call.get("name") else [])
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            _fail("'names' must be an array of syscall names")
        if call.get("action") not in ACTIONS:
            _fail(f"unknown action {call.get('action')!r} for {', '.join(names) or 'a syscall rule'}")
        for arg in call.get("args") or []:
            if not isinstance(arg, dict) or arg.get("op") not in OPERATORS or not isinstance(arg.get("index"), int):
                _fail(f"invalid argument rule {arg!r} for {', '.join(names)}")
        for key in ("includes", "excludes"):
            cond = call.get(key) or {}
            if not isinstance(cond, dict):
                _fail(f"'{key}' must be an object")
            if cond.get("minKernel"):
                _version(str(cond["minKernel"]))


def _applies(call: dict, caps: set[str], arch: str, kernel: tuple[int, ...]) -> bool:
    exc, inc = call.get("excludes") or {}, call.get("includes") or {}
    if arch in (exc.get("arches") or []):
        return False
    if any(c in caps for c in exc.get("caps") or []):
        return False
    if exc.get("minKernel") and kernel >= _version(str(exc["minKernel"])):
        return False
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    if not all(c in caps for c in inc.get("caps") or []):
        return False
    if inc.get("minKernel") and kernel < _version(str(inc["minKernel"])):
        return False
    return True


def to_oci(profile: dict, caps: list[str], arch: str | None = None,
           kernel: tuple[int, ...] | None = None) -> dict | None:
    """``linux.seccomp`` for a container whose bounding set is ``caps``; None when the profile is empty."""
    _check(profile)
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return None
    arch = arch or native_arch()
    kernel = tuple(kernel or kernel_version())
    kernel = kernel + (0,) * (3 - len(kernel))
    archs = list(profile.get("architectures") or [])
    if profile.get("archMap"):
        native = _SECCOMP_ARCH.get(arch)
        for entry in profile["archMap"]:
            if entry.get("architecture") == native:
                archs = [native, *(entry.get("subArchitectures") or [])]
                break
    out: dict = {"defaultAction": profile.get("defaultAction") or "SCMP_ACT_ALLOW"}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    if archs:
        out["architectures"] = archs
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    have = set(caps)
    rules = []
    for call in profile.get("syscalls") or []:
        if not _applies(call, have, arch, kernel):
            continue
        rule: dict = {"names": list(call.get("names") or [call["name"]]), "action": call["action"]}
        if call.get("errnoRet") is not None:
            rule["errnoRet"] = call["errnoRet"]
        if call.get("args"):
            rule["args"] = [{"index": a["index"], "value": a.get("value", 0), "valueTwo": a.get("valueTwo", 0),
                             "op": a["op"]} for a in call["args"]]
        rules.append(rule)
    out["syscalls"] = rules
    return out
