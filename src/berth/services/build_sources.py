"""What a build step reads besides its parent: other stages' or images' roots (COPY --from, RUN --mount
from=) held mounted for the step, and RUN --mount's binds, cache directories and tmpfs."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os

from berth.build import dockerfile as dfile
from berth.errors import BerthError, NotFound
from berth.util.fs import resolve_in_root
from berth.services.build_files import BuildFailed, hash_sources


class BuildSources:
    """Mixed into Builder: needs ``images``, ``containers``, ``mounts_root`` and ``_container``."""

    async def _sources(self, df, refs: list[str], results: dict[int, str]) -> dict[str, tuple]:
        """``--from`` stages or images, each as (holder container, its mounted root, image ID)."""
        out: dict[str, tuple] = {}
        try:
            for ref in refs:
                if ref in out:
                    continue
                stage = dfile.stage_by_name(df, ref)
                image_id = results.get(stage.index) if stage else None
                if image_id is None:
                    try:
                        image_id = self.images.resolve(ref).id
                    except NotFound:
                        raise BuildFailed(f"invalid from flag value {ref}: {ref} not found") from None
                holder = await self._container(self._state_of(image_id), None,
                                               None, [])
                out[ref] = (holder, None, image_id)
                out[ref] = (holder, await asyncio.to_thread(self.containers.mount_rootfs, holder), image_id)
        except BaseException:
            await self._release(out)
            raise
        return out

    async def _release(self, sources: dict[str, tuple]) -> None:
        for holder, root, _ in sources.values():
            if root:
                await asyncio.to_thread(self.containers.unmount_rootfs, holder.id)
            with contextlib.suppress(BerthError):
                await self.containers.remove(self.containers.refresh(holder))

    def _run_mounts(self, state, inst, ctx: str, sources: dict[str, tuple]) -> tuple[list[dict], str]:
        """RUN --mount: cache dirs kept between builds, binds of the context or of a stage/image (read-only
        unless rw), tmpfs. Returns the container's mounts and what the cache key must cover."""
        mounts, keyed = [], []
        for m in dfile.run_mounts(inst):
            target = m.get("target") or m.get("dst") or m.get("destination")
            if not target:
                raise BuildFailed(f"dockerfile parse error on line {inst.line}: mount target is required")
            kind = m["type"]
            if kind == "cache":
                d = os.path.join(self.mounts_root, hashlib.sha256((m.get("id") or target).encode()).hexdigest())
                os.makedirs(d, 0o755, exist_ok=True)
                mounts.append({"Type": "bind", "Source": d, "Target": target})
                keyed.append(f"cache:{m.get('id') or target}:{target}")
            elif kind == "bind":
                source = m.get("source") or m.get("src") or "."
                base = sources[m["from"]][1] if m.get("from") else ctx
                host = resolve_in_root(base, source)
                if not os.path.exists(host):
                    where = f"stage or image {m['from']}" if m.get("from") else "the build context"
                    raise BuildFailed(f"failed to compute cache key: {source}: not found in {where}")
                rw = m.get("rw") == "true" or m.get("readwrite") == "true"
                mounts.append({"Type": "bind", "Source": host, "Target": target, "ReadOnly": not rw})
                what = sources[m["from"]][2] + ":" + source if m.get("from") else \
                    hash_sources(ctx, [os.path.relpath(host, ctx)])[0]
                keyed.append(f"bind:{target}:{what}")
            elif kind == "tmpfs":
                mounts.append({"Type": "tmpfs", "Target": target})
                keyed.append(f"tmpfs:{target}")
            else:
                raise BuildFailed(f"RUN --mount=type={kind} is not supported by berth yet")
        return mounts, json.dumps(keyed)
