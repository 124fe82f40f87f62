"""Distribution use cases: pull, push, login, distribution inspect and search, against any registry."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from dataclasses import dataclass

from berth.errors import BerthError, InvalidArgument, NotFound, SystemError_, Unauthorized
from berth.image.pull import LayerFetcher, LayerJob
from berth.image.push import gzip_file, push_layer
from berth.registry.auth import Credentials
from berth.registry.client import RegistryHTTP, Repository
from berth.registry.hosts import Endpoint, Hosts, auth_key
from berth.services.events import EventBus
from berth.services.images import ImageService
from berth.store.distribution import BlobSource, DistributionIndex
from berth.types import manifest as mf
from berth.types import reference
from berth.types.digest import chain_ids
from berth.types.image import ImageConfig
from berth.types.progress import Emit, Progress
from berth.types.reference import Reference


@dataclass
class Resolved:
    """What a reference names in a registry: the image manifest chosen and its config."""
    endpoint: Endpoint
    repo: Repository
    manifest_digest: str
    manifest: mf.Manifest
    index_digest: str = ""


class DistributionService:
    def __init__(self, images: ImageService, fetcher: LayerFetcher, index: DistributionIndex, http: RegistryHTTP,
                 hosts: Hosts, events: EventBus, staging_root: str) -> None:
        self.images, self.fetcher, self.index = images, fetcher, index
        self.http, self.hosts, self.events = http, hosts, events
        self.staging_root = staging_root

    async def close(self) -> None:
        await self.http.close()

    # -- pull ------------------------------------------------------------------------
    async def pull(self, name: str, tag: str, creds: Credentials, emit: Emit, platform: str = "") -> None:
        """``POST /images/create?fromImage=NAME&tag=TAG``: a name alone pulls every tag."""
        ref = _with_tag(name, tag)
        want = mf.parse_platform(platform) if platform else mf.HOST
        if ref.tag is None and ref.digest is None:
            repo = self._repo(ref, creds, self.hosts.endpoints(ref.domain)[-1])
            tags = await self._guard(repo.tags(), ref, pull=True)
            for t in tags:
                await self._pull_one(Reference(ref.domain, ref.path, t), creds, want, emit, bool(platform))
            emit(Progress(f"Status: Downloaded newer image for {ref.familiar_repository}"))
            return
        await self._pull_one(ref, creds, want, emit, bool(platform), final=True)

    async def _pull_one(self, ref: Reference, creds: Credentials, want: mf.Platform, emit: Emit, explicit: bool,
                        final: bool = False) -> None:
        key = _key(ref)
        if ref.digest:
            local = self.images.index.by_repo_digest(f"{ref.repository}@{ref.digest}")
            if local:  # content-addressed and here already: no registry needed
                emit(Progress(f"{ref.digest}: Pulling from {ref.path}"))
                emit(Progress(f"Digest: {ref.digest}"))
                emit(Progress(f"Status: Image is up to date for {ref}"))
                return
        res = await self._resolve(ref, creds, want)
        emit(Progress(f"Pulling from {ref.path}", ref.tag or ref.digest or ""))
        cfg_desc = res.manifest.config
        config = await self._config(res.repo, cfg_desc, ref)
        cfg = ImageConfig.parse(config)
        if explicit and (cfg.os, cfg.architecture) != (want.os, want.architecture):
            raise NotFound(f"image with reference {ref} was found but does not match the specified platform: "
                           f"wanted {want}, actual: {cfg.os}/{cfg.architecture}")
        layers = [d for d in res.manifest.layers if d.media_type in mf.IMAGE_LAYER_TYPES]
        if len(layers) != len(cfg.diff_ids):
            raise InvalidArgument(f"{res.repo.name}: manifest has {len(layers)} layers but the config "
                                  f"{len(cfg.diff_ids)} diff_ids")
        shown = res.index_digest or res.manifest_digest
        current = self.images.index.by_tag(key) if not ref.digest else None
        if current == cfg_desc.digest and self.images.index.get(current):
            emit(Progress(f"Digest: {shown}"))
            if final:
                emit(Progress(f"Status: Image is up to date for {ref}"))
            return
        jobs = [LayerJob(d, diff, chain) for d, diff, chain in zip(layers, cfg.diff_ids, chain_ids(cfg.diff_ids))]
        sizes = await self.fetcher.fetch(res.repo, jobs, lambda i, s, c=None, t=None: emit(Progress(s, i, c, t)),
                                         self._have)
        image_id = await self.images.add_pulled(config, cfg, [(j.diff_id, j.chain_id, s) for j, s in zip(jobs, sizes)],
                                                [key] if ref.tag else [], f"{ref.repository}@{shown}")
        self.fetcher.forget([j.chain_id for j in jobs])
        self.index.remember([BlobSource(j.diff_id, j.desc.digest, j.desc.media_type, j.desc.size, ref.domain,
                                        ref.path) for j in jobs])
        self.events.publish("image", "pull", image_id, {"name": str(ref)})
        emit(Progress(f"Digest: {shown}"))
        if final:
            fresh = current != image_id
            emit(Progress(f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} for {ref}"))

    def _have(self, job: LayerJob) -> int | None:
        return self.images.layer_size(job.chain_id, job.diff_id)

    async def _resolve(self, ref: Reference, creds: Credentials, want: mf.Platform, push: bool = False) -> Resolved:
        """The image manifest ``ref`` names, trying Docker Hub's mirrors before Docker Hub."""
        endpoints = self.hosts.endpoints(ref.domain, push)
        for n, ep in enumerate(endpoints):
            repo = self._repo(ref, creds, ep)
            try:
                return await self._guard(self._resolve_at(repo, ref, want), ref, pull=True)
            except BerthError:
                if n == len(endpoints) - 1:
                    raise
        raise AssertionError("no endpoints")

    async def _resolve_at(self, repo: Repository, ref: Reference, want: mf.Platform) -> Resolved:
        data, ctype, digest = await repo.manifest(ref.digest or ref.tag or "latest")
        doc = mf.parse(data, ctype)
        index_digest = ""
        if isinstance(doc, mf.Index):
            pick = doc.pick(want)
            if pick is None:
                raise NotFound(f"no matching manifest for {want} in the manifest list entries of {ref}")
            index_digest = digest
            data, ctype, digest = await repo.manifest(pick.digest)
            doc = mf.parse(data, ctype)
            if not isinstance(doc, mf.Manifest):
                raise InvalidArgument(f"{repo.name}: {pick.digest} is not an image manifest")
        return Resolved(repo.endpoint, repo, digest, doc, index_digest)

    async def _config(self, repo: Repository, desc: mf.Descriptor, ref: Reference) -> bytes:
        if desc.size > mf.MAX_MANIFEST:
            raise InvalidArgument(f"{repo.name}: image config of {ref} is too large ({desc.size} bytes)")
        if self.images.content.exists(desc.digest):
            return self.images.content.read(desc.digest)
        path = self.images.content.temp_path()
        try:
            await self._guard(repo.download(desc.digest, desc.size, path, what="image config"), ref, pull=True)
            with open(path, "rb") as f:
                return f.read()
        finally:
            if os.path.exists(path):
                os.unlink(path)

    # -- push ------------------------------------------------------------------------
    async def push(self, name: str, tag: str, creds: Credentials, emit: Emit) -> None:
        """``POST /images/{name}/push?tag=TAG``: no tag pushes every tag of the repository."""
        ref = reference.parse(name, default_tag=None)
        if ref.digest:
            raise InvalidArgument("cannot push a digest reference")
        if tag:
            ref = ref.with_tag(tag)
        keys = [_key(ref)] if ref.tag else sorted(t for t in (r for img in self.images.index.all() for r in img.tags)
                                                   if t.rsplit(":", 1)[0] == ref.repository)
        if not keys:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_repository}")
        emit(Progress(f"The push refers to repository [{ref.familiar_repository if ref.domain != 'docker.io' else ref.repository}]"))
        for key in keys:
            await self._push_one(reference.parse(key), creds, emit)

    async def _push_one(self, ref: Reference, creds: Credentials, emit: Emit) -> None:
        try:
            img = self.images.resolve(_key(ref))
        except NotFound:
            raise NotFound(f"tag does not exist: {ref}") from None
        endpoint = self.hosts.endpoints(ref.domain, push=True)[0]
        diff_ids = img.config.diff_ids
        known = {d: self.index.sources(d, ref.domain) for d in diff_ids}
        siblings = sorted({s.repository for ks in known.values() for s in ks if s.repository != ref.path})[:4]
        repo = self.http.repository(endpoint, ref.path, creds, push=True,
                                    extra_scopes=tuple(f"repository:{r}:pull" for r in siblings))
        staging = os.path.join(self.staging_root, uuid.uuid4().hex)
        os.makedirs(staging)
        report = lambda i, s, c=None, t=None: emit(Progress(s, i, c, t))  # noqa: E731
        try:
            for d in diff_ids:
                report(d.split(":", 1)[1][:12], "Preparing")
            compress = lambda src, dest: asyncio.to_thread(gzip_file, src, dest)  # noqa: E731
            descs, learned = [], []
            for d in diff_ids:
                short = d.split(":", 1)[1][:12]
                done = await self._guard(push_layer(repo, d, known[d], self.images.content, staging, report,
                                                    compress), ref, pull=False)
                descs.append(done.desc)
                learned.append(BlobSource(d, done.desc.digest, done.desc.media_type, done.desc.size, ref.domain,
                                          ref.path))
                report(short, "Layer already exists" if done.how == "exists" else "Pushed" if done.how == "pushed"
                       else f"Mounted from {done.source}")
            config = self.images.config_bytes(img)
            if not await self._guard(repo.has_blob(img.id), ref, pull=False):
                location = await self._guard(repo.start_upload(), ref, pull=False)
                await self._guard(repo.upload(location, img.id, self.images.content.path(img.id), len(config)),
                                  ref, pull=False)
            docker = all(x.media_type.startswith("application/vnd.docker.") for x in descs)
            manifest = mf.image_manifest(config, img.id, descs, docker=docker)
            media = mf.DOCKER_MANIFEST if docker else mf.OCI_MANIFEST
            digest = await self._guard(repo.put_manifest(ref.tag or "latest", manifest, media), ref, pull=False)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.index.remember(learned)
        self.images.set_repo_digest(f"{ref.repository}@{digest}", img.id)
        self.events.publish("image", "push", img.id, {"name": str(ref)})
        emit(Progress(f"{ref.tag}: digest: {digest} size: {len(manifest)}"))
        emit(Progress("", aux={"Tag": ref.tag, "Digest": digest, "Size": len(manifest)}))

    async def pull_base(self, name: str, auth: dict, emit: Emit) -> None:
        """A build's base image: ``auth`` maps registry keys (as in config.json) to credentials."""
        ref = reference.parse(name)
        creds = auth.get(auth_key(ref.domain)) or auth.get(ref.domain) or Credentials()
        await self._pull_one(ref, creds, mf.HOST, emit, False, final=True)

    # -- login, inspect, search ----------------------------------------------------------
    async def login(self, server: str, creds: Credentials) -> str:
        """Check ``creds`` against ``server``'s ``/v2/``; Unauthorized if the registry refuses them."""
        domain = _server_domain(server)
        endpoint = self.hosts.endpoints(domain, push=True)[0]
        repo = self.http.repository(endpoint, "", creds)
        try:
            await repo.ping()
        except Unauthorized:
            raise Unauthorized(f"login attempt to {repo._origin()}v2/ failed with status: 401 Unauthorized") from None
        return "Login Succeeded"

    async def inspect(self, name: str, creds: Credentials) -> dict:
        """``GET /distribution/{name}/json``: the descriptor a reference resolves to and its platforms."""
        ref = reference.parse(name)
        repo = self._repo(ref, creds, self.hosts.endpoints(ref.domain)[-1])
        data, ctype, digest = await self._guard(repo.manifest(ref.digest or ref.tag or "latest"), ref, pull=True)
        doc = mf.parse(data, ctype)
        if isinstance(doc, mf.Index):
            platforms = [{"architecture": d.platform.architecture, "os": d.platform.os,
                          **({"variant": d.platform.variant} if d.platform.variant else {})}
                         for d in doc.manifests if d.platform]
        else:
            cfg = ImageConfig.parse(await self._config(repo, doc.config, ref))
            platforms = [{"architecture": cfg.architecture, "os": cfg.os}]
        return {"Descriptor": {"mediaType": doc.media_type, "digest": digest, "size": len(data)},
                "Platforms": platforms}

    async def search(self, term: str, limit: int, creds: Credentials) -> list[dict]:
        """A registry's v1 search API (Docker Hub's, or ``HOST/term`` for another registry's)."""
        first, _, rest = term.partition("/")
        domain, query = (first, rest) if rest and ("." in first or ":" in first or first == "localhost") \
            else ("docker.io", term)
        endpoint = Endpoint("index.docker.io", True) if domain == "docker.io" else self.hosts.endpoints(domain)[0]
        repo = self.http.repository(endpoint, "", creds)
        resp = await self._guard(repo.request("GET", "/v1/search", params={"q": query, "n": str(limit or 25)}),
                                 None, pull=True)
        body = await resp.read()
        resp.release()
        if resp.status != 200:
            raise SystemError_(f"Unexpected status code {resp.status} from {endpoint.host} search")
        try:
            results = json.loads(body).get("results") or []
        except (ValueError, AttributeError):
            raise SystemError_(f"{endpoint.host} search answered with something that is not JSON") from None
        return [{"name": r.get("name", ""), "description": r.get("description", ""),
                 "star_count": r.get("star_count", 0), "is_official": bool(r.get("is_official")),
                 "is_automated": bool(r.get("is_automated"))} for r in results if isinstance(r, dict)][:limit or 25]

    # -- helpers ------------------------------------------------------------------------
    def _repo(self, ref: Reference, creds: Credentials, endpoint: Endpoint) -> Repository:
        return self.http.repository(endpoint, ref.path, creds)

    async def _guard(self, aw, ref: Reference | None, pull: bool):
        """Await ``aw``; a registry's refusal becomes Docker's wording, other failures name the image."""
        try:
            return await aw
        except Unauthorized as e:
            if ref is None:
                raise
            if pull:
                raise NotFound(f"pull access denied for {ref.familiar_repository}, repository does not exist or "
                               f"may require 'docker login': {e.message}") from None
            raise Unauthorized(e.message if "denied" in e.message else f"denied: {e.message}") from None
        except (OSError, asyncio.TimeoutError) as e:
            raise SystemError_(f"{'pulling' if pull else 'pushing'} {ref}: {e}") from None


def _with_tag(name: str, tag: str) -> Reference:
    ref = reference.parse(name, default_tag=None)
    if tag:
        if ":" in tag and tag.split(":", 1)[0] in ("sha256", "sha384", "sha512"):
            return reference.parse(f"{ref.repository}@{tag}")
        if ref.tag or ref.digest:
            raise InvalidArgument(f"invalid reference format: both {name!r} and tag {tag!r} given")
        return reference.parse(f"{ref.repository}:{tag}")
    return ref


def _key(ref: Reference) -> str:
    return ref.repository + (":" + ref.tag if ref.tag else "") + ("@" + ref.digest if ref.digest else "")


def _server_domain(server: str) -> str:
    s = server.strip().removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if s in ("", "index.docker.io", "registry-1.docker.io", "docker.io"):
        return "docker.io"
    return s
