"""Loading a compose project: find the files, read ``.env``, interpolate, validate, merge, pick the project name
and the active profiles, and resolve everything into the model (``berth.compose.model``).

``load`` returns the project and the warnings met on the way (unset variables, obsolete keys...).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from berth.compose import envfile, syntax, validate
from berth.compose.interpolate import interpolate
from berth.compose.model import Network, Project, Service
from berth.compose.yamlsrc import YDict, YList, key_pos, like, load_file, where
from berth.errors import InvalidArgument

FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_VALID_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def find_files(cwd: str) -> list[str]:
    """The compose file in ``cwd`` or its nearest parent (plus its ``.override`` file), as absolute paths."""
    d = os.path.abspath(cwd)
    while True:
        for name in FILE_NAMES:
            path = os.path.join(d, name)
            if os.path.isfile(path):
                base = name.rsplit(".", 1)[0]
                for ext in ("yaml", "yml"):
                    override = os.path.join(d, f"{base}.override.{ext}")
                    if os.path.isfile(override):
                        return [path, override]
                return [path]
        parent = os.path.dirname(d)
        if parent == d:
            raise InvalidArgument("no configuration file provided: not found")
        d = parent


def normalize_project_name(name: str) -> str:
    """Docker Compose's normalisation: lowercase, only ``[a-z0-9_-]``, starting with a letter or digit."""
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def _check_name(name: str) -> str:
    if not name:
        raise InvalidArgument("project name must not be empty")
    if not _VALID_NAME.fullmatch(name):
        raise InvalidArgument(f'invalid project name "{name}": must consist only of lowercase alphanumeric '
                              "characters, hyphens, and underscores as well as start with a letter or number")
    return name


def resolve_project_name(explicit: str | None, env: Mapping[str, str], top: Mapping, working_dir: str) -> str:
    """``-p``, else ``COMPOSE_PROJECT_NAME``, else the files' ``name:``, else the working dir's name (normalised)."""
    for given in (explicit, env.get("COMPOSE_PROJECT_NAME"), top.get("name")):
        if given:
            return _check_name(str(given))
    return _check_name(normalize_project_name(os.path.basename(working_dir)))


# --- merging ----------------------------------------------------------------------------------------------
def _append_unique(a: list, b: list) -> list:
    out = like(a, YList(a))
    for i, item in enumerate(b):
        if item not in out:
            out.append(item)
            if isinstance(out, YList):
                out.item_pos.append(key_pos(b, i))
    return out


def _merge_by(a: list, b: list, key: Callable[[Any], str]) -> list:
    out = like(a, YList(a))
    index = {key(x): i for i, x in enumerate(out) if key(x)}
    for i, item in enumerate(b):
        k = key(item)
        if k and k in index:
            out[index[k]] = item
            if isinstance(out, YList) and index[k] < len(out.item_pos):
                out.item_pos[index[k]] = key_pos(b, i)
        else:
            index[k] = len(out)
            out.append(item)
            if isinstance(out, YList):
                out.item_pos.append(key_pos(b, i))
    return out


def _ref_target(kind: str) -> Callable[[Any], str]:
    return lambda item: syntax.file_ref(item, kind).target if isinstance(item, (str, dict)) else ""


def _device_target(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("target", ""))
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


_BY = {"volumes": syntax.volume_target, "configs": _ref_target("config"), "secrets": _ref_target("secret"),
       "devices": _device_target}


def merge(a: Any, b: Any, path: tuple = ()) -> Any:
    """Merge ``b`` over ``a`` by the Compose Specification's rules (``path`` is where they are)."""
    if len(path) == 3 and path[0] == "services":
        key = path[2]
        if key in ("command", "entrypoint"):
            return b
        if key in _BY and isinstance(a, list) and isinstance(b, list):
            return _merge_by(a, b, _BY[key])
        if key == "ulimits" and isinstance(a, dict) and isinstance(b, dict):
            return _merge_maps(a, b, path, deep=False)
        if key == "logging" and isinstance(a, dict) and isinstance(b, dict):
            if b.get("driver") and a.get("driver") and b["driver"] != a["driver"]:
                return b
        if key == "networks" and isinstance(a, dict) and isinstance(b, dict):
            b2 = like(b, YDict((k, a.get(k) if v is None else v) for k, v in b.items()))
            return _merge_maps(a, b2, path)
    if path[-2:] == ("healthcheck", "test") and path[0] == "services":
        return b
    if isinstance(a, dict) and isinstance(b, dict):
        return _merge_maps(a, b, path)
    if isinstance(a, list) and isinstance(b, list):
        return _append_unique(a, b)
    return b


def _merge_maps(a: dict, b: dict, path: tuple, deep: bool = True) -> dict:
    out = like(a, YDict(a))
    for k, v in b.items():
        out[k] = merge(out[k], v, path + (k,)) if deep and k in out else v
        if isinstance(out, YDict) and isinstance(b, YDict) and k in b.key_pos:
            out.key_pos[k] = b.key_pos[k]
    return out


# --- loading ----------------------------------------------------------------------------------------------
def _read_file(path: str, env: Mapping[str, str], warnings: list[str]) -> YDict:
    doc = load_file(path)
    if not isinstance(doc, dict):
        if doc is None:
            raise InvalidArgument(f"{path}: empty compose file")
        raise InvalidArgument(f"{where(getattr(doc, 'pos', None), path)}: top-level object must be a mapping")
    doc = interpolate(doc, env, path, warnings)
    warnings.extend(validate.check_file(doc, path))
    if isinstance(doc.get("services"), dict):
        services = like(doc["services"], YDict())
        for name, svc in doc["services"].items():
            services[name] = syntax.canon_service(svc)
        doc["services"] = services
    return doc


def _env_files(name: str, svc: Mapping, wd: str, env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in svc.get("env_file") or ():
        path, required = (item.get("path"), item.get("required", True)) if isinstance(item, dict) else (item, True)
        full = syntax.host_path(str(path), wd)
        try:
            out.update(envfile.read(full, {**out, **env}, syntax.to_bool(required, "env_file.required")))
        except InvalidArgument as e:
            raise InvalidArgument(f'{where(key_pos(svc, "env_file"))}: services.{name}.env_file: {e.message}') from None
    return out


def load(files: list[str] | None, project_name: str | None = None, profiles: list[str] | None = None,
         env_files: list[str] | None = None, environ: Mapping[str, str] | None = None,
         services: list[str] | None = None, cwd: str | None = None) -> tuple[Project, list[str]]:
    """Load a compose project → (project, warnings). See the module docstring; errors are InvalidArgument."""
    cwd = os.path.abspath(cwd or os.getcwd())
    environ = dict(os.environ if environ is None else environ)
    if not files and environ.get("COMPOSE_FILE"):
        sep = environ.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        files = [f for f in environ["COMPOSE_FILE"].split(sep) if f]
    paths = [os.path.normpath(os.path.join(cwd, os.path.expanduser(f))) for f in files] if files else find_files(cwd)
    wd = os.path.dirname(paths[0])
    if env_files:
        dotenv = envfile.read_all([syntax.host_path(p, cwd) for p in env_files], environ)
    else:
        dotenv = envfile.read(os.path.join(wd, ".env"), environ, required=False)
    env = {**dotenv, **environ}
    warnings: list[str] = []
    merged: YDict | None = None
    for path in paths:
        doc = _read_file(path, env, warnings)
        merged = doc if merged is None else merge(merged, doc)
    assert merged is not None
    name = resolve_project_name(project_name, env, merged, wd)

    raw_services: dict = merged.get("services") or {}
    for s in services or ():
        if s not in raw_services:
            raise InvalidArgument(f"no such service: {s}")
    enabled = set(profiles or ()) or {p.strip() for p in env.get("COMPOSE_PROFILES", "").split(",") if p.strip()}

    def lookup(k: str) -> str | None:
        return env.get(k)

    active: list[Service] = []
    disabled: list[Service] = []
    for sname, svc in raw_services.items():
        s = syntax.service(str(sname), svc, wd, lookup, _env_files(str(sname), svc, wd, env))
        on = not s.profiles or "*" in enabled or bool(enabled & set(s.profiles)) or sname in (services or ())
        (active if on else disabled).append(s)
    active = _drop_disabled_deps(active, disabled, warnings)

    project = Project(
        name=name, working_dir=wd, config_files=tuple(paths), services=tuple(active),
        networks=tuple(_networks(name, merged, active)),
        volumes=tuple(syntax.volume(name, str(k), v) for k, v in (merged.get("volumes") or {}).items()),
        configs=tuple(syntax.file_source(name, str(k), v, wd) for k, v in (merged.get("configs") or {}).items()),
        secrets=tuple(syntax.file_source(name, str(k), v, wd) for k, v in (merged.get("secrets") or {}).items()),
        disabled=tuple(disabled), environment=tuple(sorted(env.items())),
        extensions=syntax.extensions(merged))
    validate.check_project(project, _locator(merged, paths[0]), set(map(str, raw_services)))
    return project, warnings


def _drop_disabled_deps(active: list[Service], disabled: list[Service], warnings: list[str]) -> list[Service]:
    import dataclasses
    off = {s.name: s for s in disabled}
    out = []
    for s in active:
        deps = []
        for d in s.depends_on:
            if d.service in off:
                if d.required:
                    raise InvalidArgument(f'service "{d.service}" is required by "{s.name}" but is disabled. '
                                          f"Can be enabled by profiles {list(off[d.service].profiles)}")
                warnings.append(f'service "{s.name}" depends on "{d.service}", which is disabled; ignored')
                continue
            deps.append(d)
        out.append(s if len(deps) == len(s.depends_on) else dataclasses.replace(s, depends_on=tuple(deps)))
    return out


def _networks(project: str, merged: Mapping, active: list[Service]) -> list[Network]:
    defined = merged.get("networks") or {}
    out = [syntax.network(project, str(k), v) for k, v in defined.items()]
    if "default" not in defined and any(not s.networks and not s.network_mode for s in active):
        out.append(Network(key="default", name=f"{project}_default"))
    return out


def _locator(merged: Mapping, first: str) -> validate.Locate:
    services = merged.get("services") or {}

    def locate(service: str, key: str) -> str:
        svc = services.get(service)
        pos = key_pos(svc, key) if key and isinstance(svc, YDict) and key in svc else None
        return where(pos or key_pos(services, service), first)

    return locate
