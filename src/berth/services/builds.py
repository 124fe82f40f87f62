"""Building images from a Dockerfile and a context, step by step, with a cache (Docker's classic builder).

Each step makes an image on top of the previous one: RUN runs a container and commits its changes,
COPY/ADD/WORKDIR write into a created (never started) container's root and commit it, the other
instructions change only the config. A step whose key (parent image, instruction after substitution,
build args in scope, the content of copied files) was seen before reuses that image.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from berth.build import dockerfile as dfile
from berth.build import history
from berth.build.words import unused_args_warning
from berth.errors import BerthError, NotFound
from berth.runtime.logs import now_rfc3339
from berth.store.build_cache import BuildCacheIndex
from berth.types import reference
from berth.types.container import ContainerSpec
from berth.types.image import ImageConfig
from berth.util.fs import remove_tree, resolve_in_root
from berth.services.build_files import (BuildFailed, copy_into, drop_ignored_build_files, expand_sources,
                                        extract_context, fetch_url, hash_sources, own, owner_of, read_dockerfile)
from berth.services.build_sources import BuildSources
from berth.services.containers import ContainerService
from berth.services.filesystem import FilesystemService
from berth.services.images import ImageService
from berth.services.lifecycle import Lifecycle

DEFAULT_SHELL = ["/bin/sh", "-c"]
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROXY_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY",
              "no_proxy", "ALL_PROXY", "all_proxy"}
_METADATA = {"env", "label", "expose", "user", "volume", "cmd", "entrypoint", "stopsignal", "healthcheck", "shell",
             "onbuild", "maintainer", "arg"}


@dataclass
class BuildRequest:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network_mode: str = ""
    extra_hosts: list[str] = field(default_factory=list)
    cache_from: list[str] = field(default_factory=list)
    explain: bool = False
    force_rm: bool = False
    pull: bool = False
    auth: dict = field(default_factory=dict)  # registry host -> Credentials (X-Registry-Config)


@dataclass
class Prepared:
    """A build whose context is unpacked and whose Dockerfile parsed."""

    work: str
    ctx: str
    df: "dfile.Dockerfile"
    stages: list


@dataclass
class _State:
    """One stage while it is built."""

    image_id: str  # "" for scratch
    config: ImageConfig
    args: dict[str, str] = field(default_factory=dict)  # build args in scope (declared in this stage)
    shell: list[str] = field(default_factory=lambda: list(DEFAULT_SHELL))
    hit: bool = True  # the last step came from the cache
    no_cache: bool = False
    cmd_set: bool = False  # a CMD of this stage (then ENTRYPOINT keeps it)
    step: str = ""  # the instruction being built, as written, and its inputs (for --explain)
    detail: dict = field(default_factory=dict)
    why: str = ""
    seeds: list = field(default_factory=list)  # --cache-from images


class Builder(BuildSources):
    def __init__(self, images: ImageService, containers: ContainerService, lifecycle: Lifecycle,
                 files: FilesystemService, cache: BuildCacheIndex, tmp_dir: str, mounts_root: str,
                 puller=None) -> None:
        self.puller = puller  # async (name, auth by registry, emit) -> None: pulls a base image
        self.mounts_root = mounts_root  # RUN --mount=type=cache directories, kept between builds
        self.images = images
        self.containers = containers
        self.lifecycle = lifecycle
        self.files = files
        self.cache = cache
        self.tmp_dir = tmp_dir

    # -- the build ----------------------------------------------------------------------
    async def prepare(self, req: BuildRequest, context_tar: str) -> "Prepared":
        """Unpack the context and parse the Dockerfile: what fails here is an HTTP error, before any step."""
        work = os.path.join(self.tmp_dir, f"build-{uuid.uuid4().hex}")
        ctx = os.path.join(work, "context")
        os.makedirs(ctx)
        try:
            await asyncio.to_thread(extract_context, context_tar, ctx)
            text = read_dockerfile(ctx, req.dockerfile)
            await asyncio.to_thread(drop_ignored_build_files, ctx, req.dockerfile)
            df = dfile.parse(text, os.path.basename(req.dockerfile) or "Dockerfile")
            stages = dfile.needed_stages(df, req.target or None, req.build_args)
        except BaseException:
            await asyncio.to_thread(remove_tree, work)
            raise
        return Prepared(work, ctx, df, stages)

    async def build(self, req: BuildRequest, prep: "Prepared") -> AsyncIterator[dict]:
        """Docker's build messages: ``{"stream": ...}`` lines, ``{"aux": {"ID": ...}}``, then the end."""
        df, stages, ctx = prep.df, prep.stages, prep.ctx
        try:
            global_args = dfile.meta_args(df, req.build_args)
            results: dict[int, str] = {}
            used_args: set[str] = set()
            labels = sorted(req.labels.items())
            total = len(df.global_args) + sum(1 + len(s.instructions) for s in stages) + len(labels)
            step = 0
            seeds = []
            for ref in req.cache_from:  # --cache-from: images whose history can stand in for steps
                try:
                    seeds.append(self.images.resolve(ref))
                except NotFound:
                    yield {"stream": f"[Warning] cache-from image {ref} is not available: ignored\n"}
            for inst in df.global_args:  # the classic builder counts and shows them
                step += 1
                yield {"stream": f"Step {step}/{total} : {inst.original.strip()}\n"}
            used_args.update(k for inst in df.global_args for k, _ in dfile.key_values(inst) if k in req.build_args)
            state = None
            for stage in stages:
                base = dfile.base_name(df, stage, global_args)
                step += 1
                yield {"stream": f"Step {step}/{total} : {stage.original.strip() or 'FROM ' + base}\n"}
                if self._needs_pull(df, base, results, req.pull):
                    async for p in self._pull(base, req):
                        yield p
                state = self._from(df, base, results)
                state.no_cache, state.seeds = req.no_cache, seeds
                if state.image_id:
                    yield {"stream": f" ---> {_short(state.image_id)}\n"}
                triggers = [dfile.parse_trigger(t) for t in state.config.onbuild]  # the base's ONBUILD first
                state.config.onbuild = []
                if triggers:
                    yield {"stream": f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n"}
                for inst in triggers + list(stage.instructions):
                    if inst not in triggers:
                        step += 1
                        yield {"stream": f"Step {step}/{total} : {inst.original.strip()}\n"}
                    async for msg in self._one(df, state, inst, global_args, req, ctx, results, used_args):
                        yield msg
                results[stage.index] = state.image_id
            if state is None or not state.image_id:
                raise BuildFailed("No image was generated. Is your Dockerfile empty?")
            for k, v in labels:  # --label: one LABEL step each, sorted, as the classic builder adds them
                step += 1
                inst = dfile.parse_trigger(f"LABEL {json.dumps(k)}={json.dumps(v)}")
                yield {"stream": f"Step {step}/{total} : LABEL {k}={v}\n"}
                async for msg in self._one(df, state, inst, global_args, req, ctx, results, used_args):
                    yield msg
            image_id = state.image_id
            unused = sorted(k for k in req.build_args if k not in used_args and k not in PROXY_ARGS)
            if unused:
                yield {"stream": unused_args_warning(unused)}
            yield {"aux": {"ID": image_id}}
            yield {"stream": f"Successfully built {_short(image_id)}\n"}
            for t in req.tags:
                self._tag(image_id, t)
                yield {"stream": f"Successfully tagged {reference.parse(t)}\n"}
        finally:
            await asyncio.to_thread(remove_tree, prep.work)

    async def _one(self, df, state: _State, inst, global_args, req, ctx, results, used_args) -> AsyncIterator[dict]:
        state.hit, state.why = False, ""
        state.step, state.detail = inst.original.strip(), {"args": dict(state.args)}
        async for msg in self._step(df, state, inst, global_args, req, ctx, results, used_args):
            yield msg
        if state.hit:
            yield {"stream": " ---> Using cache\n"}
        elif req.explain and state.why:
            yield {"stream": f" ---> Cache miss: {state.why}\n"}
        yield {"stream": f" ---> {_short(state.image_id)}\n"}

    def _needs_pull(self, df: dfile.Dockerfile, base: str, results: dict[int, str], always: bool) -> bool:
        if base.lower() == "scratch" or self.puller is None:
            return False
        if any(s.name and s.name == base.lower() and s.index in results for s in df.stages):
            return False
        if always:
            return True
        try:
            self.images.resolve(base)
            return False
        except NotFound:
            return True

    async def _pull(self, base: str, req: BuildRequest) -> AsyncIterator:
        """Pull a base image, passing its progress on; a failure fails the build."""
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.ensure_future(self.puller(base, req.auth, queue.put_nowait))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (item := await queue.get()) is not None:
                yield item
            task.result()
        except BerthError as e:
            raise BuildFailed(e.message) from None
        finally:
            if not task.done():
                task.cancel()

    def _from(self, df: dfile.Dockerfile, base: str, results: dict[int, str]) -> _State:
        """The stage's starting state; a base without PATH gets the default one (moby's dispatchFrom)."""
        state = self._base(df, base, results)
        if not any(e.startswith("PATH=") for e in state.config.env):
            state.config.env = [DEFAULT_PATH] + list(state.config.env)
        return state

    def _base(self, df: dfile.Dockerfile, base: str, results: dict[int, str]) -> _State:
        if base.lower() == "scratch":
            return _State("", ImageConfig(created=now_rfc3339()))
        for s in df.stages:
            if s.name and s.name == base.lower() and s.index in results:
                img = self.images.index.get(results[s.index])
                return _State(img.id, dataclasses.replace(img.config), shell=list(img.config.shell or DEFAULT_SHELL))
        try:
            img = self.images.resolve(base)
        except NotFound:
            raise BuildFailed(f"pull access denied for {base}, repository does not exist or may require "
                              "'docker login'") from None
        return _State(img.id, dataclasses.replace(img.config), shell=list(img.config.shell or DEFAULT_SHELL))

    def _tag(self, image_id: str, name: str) -> None:
        ref = reference.parse(name)
        self.images.tag(image_id, ref.repository, ref.tag)

    # -- one step ---------------------------------------------------------------------
    async def _step(self, df, state: _State, inst, global_args: dict[str, str], req: BuildRequest, ctx: str,
                    results: dict[int, str], used_args: set[str]) -> AsyncIterator[dict]:
        env = _env_map(state.config.env)
        scope = {**state.args, **env}  # ENV wins over ARG, as in Docker
        raw, inst = inst, dfile.expand(inst, scope, df.escape)
        cmd = inst.cmd
        if cmd == "arg":
            for k, v in dfile.key_values(inst):
                given = req.build_args.get(k)
                if k in req.build_args:
                    used_args.add(k)
                default = v if v is not None else global_args.get(k)
                state.args[k] = given if given is not None else (default or "")
            await self._commit_config(state, inst, lambda c: None, key_extra=json.dumps(sorted(state.args)))
            return
        del raw
        if cmd in ("run",):
            used_args.update(k for k in state.args if k in req.build_args)
        if cmd in _METADATA:
            await self._metadata(state, inst)
            return
        if cmd == "workdir":
            path = history.resolve_workdir(state.config.working_dir or "/", inst.args[0])
            state.config.working_dir = path
            await self._write_step(state, history.created_by(inst, state.shell, workdir=path),
                                   lambda root: os.makedirs(resolve_in_root(root, path), 0o755, exist_ok=True), "")
            return
        if cmd in ("copy", "add"):
            async for msg in self._copy(state, inst, ctx, results, df):
                yield msg
            return
        if cmd == "run":
            async for msg in self._run(state, inst, df, req, ctx, results):
                yield msg
            return
        raise BuildFailed(f"Dockerfile parse error line {inst.line}: unknown instruction: {inst.cmd.upper()}")

    async def _metadata(self, state: _State, inst) -> None:
        cmd = inst.cmd

        def apply(cfg: ImageConfig) -> None:
            if cmd == "env":
                env = _env_map(cfg.env)
                for k, v in dfile.key_values(inst):
                    env[k] = v or ""
                cfg.env = [f"{k}={v}" for k, v in env.items()]
            elif cmd == "label":
                cfg.labels = {**cfg.labels, **{k: v or "" for k, v in dfile.key_values(inst)}}
            elif cmd == "expose":
                for p in inst.args:
                    cfg.exposed_ports = {**cfg.exposed_ports, (p if "/" in p else p + "/tcp"): {}}
            elif cmd == "user":
                cfg.user = inst.args[0]
            elif cmd == "volume":
                vols = list(inst.args) if inst.json else " ".join(inst.args).split()
                cfg.volumes = {**cfg.volumes, **{v: {} for v in vols}}
            elif cmd == "cmd":
                cfg.cmd = dfile.exec_or_shell(inst, state.shell)
                state.cmd_set = True
            elif cmd == "entrypoint":
                cfg.entrypoint = dfile.exec_or_shell(inst, state.shell)
                if not state.cmd_set:
                    cfg.cmd = None  # a new ENTRYPOINT resets a CMD the stage did not set itself
            elif cmd == "stopsignal":
                cfg.stop_signal = inst.args[0]
            elif cmd == "healthcheck":
                cfg.healthcheck = history.healthcheck(inst)
            elif cmd == "shell":
                state.shell = list(inst.args)
                cfg.shell = list(inst.args)
            elif cmd == "onbuild":
                cfg.onbuild = list(cfg.onbuild) + [inst.original.split(None, 1)[1].strip()]
            elif cmd == "maintainer":
                cfg.author = " ".join(inst.args)
        await self._commit_config(state, inst, apply)

    async def _commit_config(self, state: _State, inst, apply, key_extra: str = "") -> None:
        """A step that changes only the config: a new image with an empty-layer history entry."""
        text = inst if isinstance(inst, str) else history.created_by(inst, state.shell)
        key = _key(state.image_id, "config", text, key_extra)
        cached = None if state.no_cache else self.cache.get(key)
        if cached:
            self._take(state, cached)
            return
        cfg = dataclasses.replace(state.config, env=list(state.config.env), labels=dict(state.config.labels))
        apply(cfg)
        created_by = text if not isinstance(inst, str) or not text else f"{_shell_text(state.shell)} #(nop)  {text}"
        seeded = self._seed_entry(state, created_by) if not state.no_cache else None  # --cache-from
        if seeded is not None:
            seeded.pop("_layer", None)
        entry = seeded or {"created": now_rfc3339(), "created_by": created_by, "empty_layer": True}
        cfg.created = entry["created"]
        cfg.history = list(state.config.history) + [entry]
        await self._register(state, cfg, None, key)
        state.hit = seeded is not None

    async def _register(self, state: _State, cfg: ImageConfig, layer: str | None, key: str) -> None:
        parent = self.images.index.get(state.image_id) if state.image_id else None
        files = [self.images.content.path(d) for d in (parent.config.diff_ids if parent else [])]
        if layer:
            files.append(layer)
        async with self.images._lock:
            image_id, _ = await asyncio.to_thread(self.images._register, cfg.to_json(), files, [])
        state.why = self._why(state)
        self.cache.put(key, image_id, state.image_id, now_rfc3339(), state.step, json.dumps(state.detail))
        state.image_id, state.config, state.hit = image_id, cfg, False

    def _seed_entry(self, state: _State, created_by: str) -> dict | None:
        """``--cache-from``: the next history entry of a given image built through the same steps so far
        (its history and layers start as this stage's do) when that entry is this step."""
        k, n = len(state.config.history), len(state.config.diff_ids)
        for img in state.seeds:
            h, layers = img.config.history, img.config.diff_ids
            if len(h) <= k or h[:k] != state.config.history or layers[:n] != state.config.diff_ids:
                continue
            entry = h[k]
            if entry.get("created_by") == created_by and (entry.get("empty_layer") or len(layers) > n):
                return dict(entry, _layer=None if entry.get("empty_layer") else layers[n])
        return None

    async def _seeded(self, state: _State, created_by: str, key: str) -> str | None:
        """A step whose layer a ``--cache-from`` image has: that layer stands in for running it."""
        entry = self._seed_entry(state, created_by) if state.seeds else None
        if entry is None:
            return None
        layer_id = entry.pop("_layer")
        cfg = dataclasses.replace(state.config, env=list(state.config.env), created=entry.get("created", ""),
                                  history=list(state.config.history) + [entry])
        if layer_id:
            cfg.diff_ids = list(state.config.diff_ids) + [layer_id]
        await self._register(state, cfg, self.images.content.path(layer_id) if layer_id else None, key)
        return state.image_id

    def _state_of(self, image_id: str) -> _State:
        return _State(image_id, self.images.index.get(image_id).config)

    def _take(self, state: _State, image_id: str) -> None:
        state.image_id, state.hit = image_id, True
        state.config = dataclasses.replace(self.images.index.get(image_id).config)

    # -- steps that change files --------------------------------------------------------------
    async def _container(self, state: _State, cmd: list[str] | None, req: BuildRequest | None, env: list[str],
                         mounts: list[dict] | None = None):
        spec = ContainerSpec(image=state.image_id, cmd=cmd or ["true"], entrypoint=[""] if cmd else None,
                             env=env, user=state.config.user if cmd else "", working_dir=state.config.working_dir,
                             network_mode=(req.network_mode if req and req.network_mode else "bridge"),
                             extra_hosts=list(req.extra_hosts) if req else [], mount_requests=list(mounts or []))
        c, _ = await self.containers.create(spec, None)
        return c

    async def _write_step(self, state: _State, text: str, write, key_extra: str) -> None:
        """Run ``write(root)`` in a created container's root, then commit it as the next image."""
        key = _key(state.image_id, "write", text, key_extra)
        cached = None if state.no_cache else self.cache.get(key) or await self._seeded(state, text, key)
        if cached:
            self._take(state, cached)
            return
        if not state.image_id:  # scratch: an empty image to write on
            await self._commit_config(state, "", lambda c: None)
        c = await self._container(state, None, None, [])
        try:
            root = await asyncio.to_thread(self.containers.mount_rootfs, c)
            try:
                await asyncio.to_thread(write, root)
            finally:
                await asyncio.to_thread(self.containers.unmount_rootfs, c.id)
            await self._commit_container(state, c, text, key)
        finally:
            await self.containers.remove(self.containers.refresh(c))

    async def _commit_container(self, state: _State, c, created_by: str, key: str) -> None:
        layer = os.path.join(self.tmp_dir, f"build-layer-{uuid.uuid4().hex}.tar")
        try:
            diff_id, empty = await asyncio.to_thread(self.files._write_layer, c, layer)
            cfg = dataclasses.replace(state.config, env=list(state.config.env))
            now = now_rfc3339()
            cfg.created = now
            entry = {"created": now, "created_by": created_by}
            if empty:
                entry["empty_layer"] = True
            else:
                cfg.diff_ids = list(state.config.diff_ids) + [diff_id]
            cfg.history = list(state.config.history) + [entry]
            await self._register(state, cfg, None if empty else layer, key)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(layer)

    async def _run(self, state: _State, inst, df, req: BuildRequest, ctx: str,
                   results: dict[int, str]) -> AsyncIterator[dict]:
        sources = await self._sources(df, [m["from"] for m in dfile.run_mounts(inst) if m.get("from")], results)
        try:
            async for msg in self._run_with(state, inst, req, ctx, sources):
                yield msg
        finally:
            await self._release(sources)

    async def _run_with(self, state: _State, inst, req: BuildRequest, ctx: str,
                        sources: dict[str, tuple]) -> AsyncIterator[dict]:
        argv = dfile.exec_or_shell(inst, state.shell)
        env_keys = _env_map(state.config.env)
        args_env = [f"{k}={v}" for k, v in sorted(state.args.items()) if k not in env_keys]
        mounts, mounts_key = self._run_mounts(state, inst, ctx, sources)
        key_extra = json.dumps(sorted(args_env)) + mounts_key
        key = _key(state.image_id, "run", json.dumps(argv), key_extra)
        created_by = history.created_by(inst, state.shell, run_args=args_env or None)
        cached = None if req.no_cache else self.cache.get(key) or await self._seeded(state, created_by, key)
        if cached:
            self._take(state, cached)
            return
        env = list(state.config.env) + [e for e in args_env if e.split("=", 1)[0] not in _env_map(state.config.env)]
        c = await self._container(state, argv, req, env, mounts)
        try:
            yield {"stream": f" ---> Running in {c.id[:12]}\n"}
            session = await self.lifecycle.attach(c.id, False)
            waiter = None
            try:
                await self.lifecycle.start(c.id)
                waiter = self.lifecycle.wait(c.id, "next-exit")
                async for _, data in session.frames():
                    yield {"stream": data.decode(errors="replace")}
            finally:
                session.close()
            code, _ = await (waiter or self.lifecycle.wait(c.id, "not-running"))
            if code != 0:
                shown = json.dumps(argv) if inst.json else " ".join(argv)
                raise BuildFailed(f"The command '{shown}' returned a non-zero code: {code}", code)
            await self._commit_container(state, self.containers.refresh(c), created_by, key)
        finally:
            with contextlib.suppress(BerthError):
                await self.lifecycle.force_remove(c.id)
        yield {"stream": f"Removing intermediate container {c.id[:12]}\n"}

    async def _copy(self, state: _State, inst, ctx: str, results: dict[int, str], df) -> AsyncIterator[dict]:
        spec = dfile.copy_parts(inst)
        sources, dest = list(spec.sources), spec.dest
        git = [x for x in sources if x.startswith(("git@", "git://")) or x.endswith(".git")]
        if git:
            raise BuildFailed(f"{inst.cmd.upper()} from a git repository is not supported by berth yet: {git[0]}")
        urls = [x for x in sources if x.startswith(("http://", "https://"))]
        if urls and (inst.cmd != "add" or spec.from_):
            raise BuildFailed("source can't be a URL for COPY" if inst.cmd == "copy" else
                              "ADD --from cannot take a URL")
        if urls and len(urls) != len(sources):
            raise BuildFailed("ADD of URLs together with local files is not supported by berth yet")
        remote = os.path.join(os.path.dirname(ctx), "remote-" + uuid.uuid4().hex[:8]) if urls else ""
        if urls:  # ADD <url>: fetched apart from the context, then added as a file (never unpacked)
            sources = [await asyncio.to_thread(fetch_url, x, remote) for x in urls]
        held = await self._sources(df, [spec.from_] if spec.from_ else [], results)
        holder, src_root = (held[spec.from_][0], held[spec.from_][1]) if spec.from_ else (None, remote or ctx)
        try:
            matched = await asyncio.to_thread(expand_sources, src_root, sources, holder is None)
            if len(matched) + len(spec.files) > 1 and not dest.endswith("/"):
                raise BuildFailed(f"When using {inst.cmd.upper()} with more than one source file, the destination "
                                  "must be a directory and end with a /")
            digest, per_file = await asyncio.to_thread(hash_sources, src_root, matched)
            for doc in spec.files:  # COPY <<EOF /path: inline files
                h = hashlib.sha256(doc.data.encode()).hexdigest()
                per_file["<<" + doc.name] = h
                digest += f"+inline:{h}"
            state.detail["files"] = per_file
            chown, chmod = spec.chown, spec.chmod
            if not dest.startswith("/"):
                dest = os.path.join(state.config.working_dir or "/", dest) + ("/" if dest.endswith("/") else "")
            text = history.created_by(inst, state.shell, source_hashes=[digest])
            default_owner = None if holder is not None else (0, 0)  # --from keeps owners

            def write(root: str) -> None:
                owner = owner_of(chown, root) or default_owner
                copy_into(root, src_root, matched, dest, owner, chmod,
                           inst.cmd == "add" and holder is None and not urls and spec.unpack is not False,
                           dest_is_dir=dest.endswith("/") or len(matched) > 1 or any(
                               os.path.isdir(os.path.join(src_root, m)) for m in matched))
                for doc in spec.files:
                    target = resolve_in_root(root, dest if not dest.endswith("/") else dest + doc.name)
                    os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
                    with open(target, "w") as f:
                        f.write(doc.data)
                    own(target, owner or (0, 0), chmod or "0644", "")
            await self._write_step(state, text, write, digest)
        finally:
            await self._release(held)
        yield {"stream": ""}

    def _why(self, state: _State) -> str:
        """``--explain``: what differs from the last time this instruction was built."""
        if state.no_cache:
            return "--no-cache"
        last = self.cache.last(state.step)
        if last is None:
            return "this instruction was never built before"
        parent, detail = last[0], json.loads(last[1])
        if parent != state.image_id:
            return f"the step before changed (parent was {_short(parent) or 'scratch'}, now " \
                   f"{_short(state.image_id) or 'scratch'})"
        reasons = []
        old_args, new_args = detail.get("args", {}), state.detail.get("args", {})
        for k in sorted(set(old_args) | set(new_args)):
            if old_args.get(k) != new_args.get(k):
                reasons.append(f"build arg {k} changed: {old_args.get(k)!r} -> {new_args.get(k)!r}")
        old_files, new_files = detail.get("files", {}), state.detail.get("files", {})
        for f in sorted(set(old_files) | set(new_files)):
            if f not in old_files:
                reasons.append(f"file added: {f}")
            elif f not in new_files:
                reasons.append(f"file removed: {f}")
            elif old_files[f] != new_files[f]:
                reasons.append(f"file changed: {f}")
        return "; ".join(reasons) or "the instruction's inputs changed"

    # -- cache housekeeping ------------------------------------------------------------------
    def hidden(self) -> set[str]:
        return self.cache.intermediate()

    async def prune(self) -> tuple[list[str], int]:
        """``builder prune``: forget every cached step and remove the untagged images only the cache held."""
        ids = self.cache.images() | self.cache.intermediate()
        self.cache.clear()
        users = self.containers.users_of_images()
        gone, space = [], 0
        for image_id in sorted(ids):
            img = self.images.index.get(image_id)
            if img is None or img.tags or image_id in users:
                continue
            try:
                await self.images.delete(image_id, False, users)
            except BerthError:
                continue
            gone.append(image_id)
            space += img.size
        return gone, space

    def usage(self) -> list[dict]:
        """``system df``'s build cache: one record per cached step."""
        out = []
        for image_id in sorted(self.cache.images()):
            img = self.images.index.get(image_id)
            if img is not None:
                out.append({"ID": _short(image_id), "Type": "regular", "Size": 0, "Shared": False,
                            "InUse": False, "CreatedAt": img.created, "UsageCount": 1, "Description": ""})
        return out


def _short(image_id: str) -> str:
    return image_id.split(":")[-1][:12]


def _key(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _env_map(env: list[str]) -> dict[str, str]:
    return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)


def _shell_text(shell: list[str]) -> str:
    return " ".join(shell)


