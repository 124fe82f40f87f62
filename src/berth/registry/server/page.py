"""The HTML index at ``/``: every repository, its tags, their sizes and the command that pulls them."""
from __future__ import annotations

from html import escape

from berth.errors import InvalidArgument
from berth.registry.server.storage import Storage
from berth.types import manifest as mf


def _units(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return ""


def image_size(store: Storage, name: str, digest: str, depth: int = 0) -> int:
    """Config plus layers of the manifest (for an index: of every manifest in it); 0 if unreadable."""
    rev = store.revision(name, digest)
    data = store.manifest_bytes(rev) if rev else None
    if data is None or depth > 2:
        return 0
    try:
        m = mf.parse(data, rev.media_type)
    except InvalidArgument:
        return 0
    if isinstance(m, mf.Index):
        return sum(image_size(store, name, d.digest, depth + 1) for d in m.manifests)
    return sum(d.size for d in m.blobs())


def render(store: Storage, host: str) -> str:
    rows = []
    for name in store.repositories():
        for tag in store.tags(name):
            digest = store.tag_target(name, tag)
            ref = f"{host}/{name}:{tag}"
            rows.append("<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>"
                        .format(escape(name), escape(tag), _units(image_size(store, name, digest)),
                                escape(digest[:19]), escape(f"berth pull {ref}")))
    body = "\n".join(rows) or '<tr><td colspan="5">No images yet.</td></tr>'
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>berth registry</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left}}</style></head>
<body><h1>berth registry at {escape(host)}</h1>
<table><tr><th>Repository</th><th>Tag</th><th>Size</th><th>Digest</th><th>Pull</th></tr>
{body}
</table></body></html>
"""

