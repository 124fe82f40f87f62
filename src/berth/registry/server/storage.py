"""The registry's files under ``root`` (synchronous; the app calls slow parts in threads).

Layout, after distribution's::

    blobs/<algo>/<hex>                                  content, manifests included; immutable
    uploads/<uuid>/data, uploads/<uuid>/info.json       upload sessions (temp data lives here)
    repos/<name>/_layers/<algo>/<hex>                   a blob pushed or mounted into <name>
    repos/<name>/_manifests/revisions/<algo>/<hex>      a manifest of <name>: {mediaType, size, ...}
    repos/<name>/_manifests/tags/<tag>                  the tag's manifest digest
    repos/<name>/_referrers/<algo>/<hex>/<algo>-<hex>   descriptor of a manifest whose subject is <algo>:<hex>

Blob data is written into ``uploads/``, fsynced, checked against its digest and only then renamed into
``blobs/``, so a crash never leaves a visible partial blob. Every small file is written tmp + fsync + rename.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid as _uuid
from dataclasses import dataclass

from berth.types import digest as _digest

ALGOS = ("sha256", "sha512")
NAME = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_NAME = 255


def valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME and NAME.fullmatch(name) is not None


def digest_problem(digest: str) -> str | None:
    return _digest.problem(digest, ALGOS)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader (or a crash) sees the old file or the new one, never part."""
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}-{_uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(d)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _split(digest: str) -> tuple[str, str]:
    algo, _, hexpart = digest.partition(":")
    return algo, hexpart


@dataclass
class Revision:
    """A manifest of one repository."""
    digest: str
    media_type: str
    size: int
    subject: str = ""
    artifact_type: str = ""


class DigestMismatch(Exception):
    pass


class Storage:
    """The registry's state on disk; names, tags and digests must be validated by the caller."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        for d in ("blobs", "uploads", "repos"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        # uuid -> (running sha256, bytes hashed); lost on restart, then the data is hashed again
        self._hashers: dict[str, tuple[object, int]] = {}

    # ------------------------------------------------------------------ blobs
    def blob_path(self, digest: str) -> str:
        algo, hexpart = _split(digest)
        return os.path.join(self.root, "blobs", algo, hexpart)

    def blob_size(self, digest: str) -> int | None:
        try:
            return os.stat(self.blob_path(digest)).st_size
        except FileNotFoundError:
            return None

    def _repo(self, name: str, *parts: str) -> str:
        return os.path.join(self.root, "repos", name, *parts)

    def _layer_link(self, name: str, digest: str) -> str:
        return self._repo(name, "_layers", *_split(digest))

    def linked_size(self, name: str, digest: str) -> int | None:
        """The blob's size if it is visible in ``name`` (pushed or mounted there, or a manifest of it)."""
        if not (os.path.exists(self._layer_link(name, digest)) or os.path.exists(self._revision(name, digest))):
            return None
        return self.blob_size(digest)

    def link(self, name: str, digest: str) -> None:
        path = self._layer_link(name, digest)
        if not os.path.exists(path):
            atomic_write(path, digest.encode())

    def unlink(self, name: str, digest: str) -> bool:
        try:
            os.unlink(self._layer_link(name, digest))
            return True
        except FileNotFoundError:
            return False

    def _commit_file(self, src: str, digest: str) -> None:
        dst = self.blob_path(digest)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.exists(dst):
            os.unlink(src)
            return
        os.replace(src, dst)
        _fsync_dir(os.path.dirname(dst))

    def put_bytes(self, data: bytes, digest: str) -> None:
        """Store small content (a manifest) under its digest, atomically."""
        if os.path.exists(self.blob_path(digest)):
            return
        tmp = os.path.join(self.root, "uploads", f"m-{_uuid.uuid4()}")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self._commit_file(tmp, digest)

    # ------------------------------------------------------------------ uploads
    def _upload(self, uid: str, *parts: str) -> str:
        return os.path.join(self.root, "uploads", uid, *parts)

    def new_upload(self, name: str) -> str:
        uid = str(_uuid.uuid4())
        os.makedirs(self._upload(uid))
        open(self._upload(uid, "data"), "wb").close()
        atomic_write(self._upload(uid, "info.json"), json.dumps({"repo": name, "started": time.time()}).encode())
        self._hashers[uid] = (hashlib.sha256(), 0)
        return uid

    def upload_size(self, name: str, uid: str) -> int | None:
        """The bytes received so far, or None if there is no such upload for ``name``."""
        if not UUID.fullmatch(uid):
            return None
        info = _read(self._upload(uid, "info.json"))
        if info is None or json.loads(info).get("repo") != name:
            return None
        try:
            return os.stat(self._upload(uid, "data")).st_size
        except FileNotFoundError:
            return None

    def open_append(self, uid: str):
        return open(self._upload(uid, "data"), "ab")

    def hashed(self, uid: str, chunk: bytes, offset: int) -> None:
        """Feed ``chunk`` (written at ``offset``) to the upload's running hash, if it is still in step."""
        h = self._hashers.get(uid)
        if h is not None and h[1] == offset:
            h[0].update(chunk)  # type: ignore[attr-defined]
            self._hashers[uid] = (h[0], offset + len(chunk))
        else:
            self._hashers.pop(uid, None)

    def truncate(self, uid: str, size: int) -> None:
        """Throw away what a refused chunk wrote after ``size``."""
        os.truncate(self._upload(uid, "data"), size)
        self._hashers.pop(uid, None)

    def cancel(self, uid: str) -> None:
        self._hashers.pop(uid, None)
        shutil.rmtree(self._upload(uid), ignore_errors=True)

    def finish(self, name: str, uid: str, digest: str) -> int:
        """Verify the upload against ``digest``, move it into ``blobs/`` and link it into ``name``.

        Slow (fsync, maybe rehashing): run it in a thread. Raises DigestMismatch (upload removed)."""
        data = self._upload(uid, "data")
        algo, hexpart = _split(digest)
        h = self._hashers.pop(uid, None)
        size = os.stat(data).st_size
        if algo == "sha256" and h is not None and h[1] == size:
            actual = h[0].hexdigest()  # type: ignore[attr-defined]
        else:
            hasher = hashlib.new(algo)
            with open(data, "rb") as f:
                while chunk := f.read(1 << 20):
                    hasher.update(chunk)
            actual = hasher.hexdigest()
        if actual != hexpart:
            self.cancel(uid)
            raise DigestMismatch(f"{algo}:{actual}")
        with open(data, "rb+") as f:
            os.fsync(f.fileno())
        self._commit_file(data, digest)
        self.link(name, digest)
        self.cancel(uid)
        return size

    def purge_uploads(self, max_age: float = 86400.0) -> list[str]:
        """Remove upload sessions (and manifest temp files) untouched for ``max_age`` seconds."""
        removed, now, base = [], time.time(), os.path.join(self.root, "uploads")
        for entry in os.listdir(base):
            path = os.path.join(base, entry)
            try:
                if now - os.stat(path).st_mtime > max_age:
                    shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
                    removed.append(entry)
            except FileNotFoundError:
                pass
        return removed

    # ------------------------------------------------------------------ manifests
    def _revision(self, name: str, digest: str) -> str:
        return self._repo(name, "_manifests", "revisions", *_split(digest))

    def _tag(self, name: str, tag: str) -> str:
        return self._repo(name, "_manifests", "tags", tag)

    def revision(self, name: str, digest: str) -> Revision | None:
        data = _read(self._revision(name, digest))
        if data is None or not os.path.exists(self.blob_path(digest)):
            return None
        doc = json.loads(data)
        return Revision(digest, doc["mediaType"], doc["size"], doc.get("subject") or "", doc.get("artifactType") or "")

    def resolve(self, name: str, reference: str) -> Revision | None:
        """The manifest a tag or digest names in ``name``."""
        if ":" in reference:
            return self.revision(name, reference)
        target = _read(self._tag(name, reference))
        return self.revision(name, target.decode()) if target else None

    def manifest_bytes(self, rev: Revision) -> bytes | None:
        return _read(self.blob_path(rev.digest))

    def put_manifest(self, name: str, data: bytes, rev: Revision, tag: str = "",
                     referrer: dict | None = None) -> None:
        """Store a checked manifest: its bytes as a blob, its revision, its tag and its referrer entry."""
        self.put_bytes(data, rev.digest)
        atomic_write(self._revision(name, rev.digest), json.dumps(
            {"mediaType": rev.media_type, "size": rev.size, "subject": rev.subject,
             "artifactType": rev.artifact_type}).encode())
        if rev.subject and referrer is not None:
            atomic_write(self._referrer(name, rev.subject, rev.digest), json.dumps(referrer).encode())
        if tag:
            atomic_write(self._tag(name, tag), rev.digest.encode())

    def _referrer(self, name: str, subject: str, digest: str) -> str:
        return self._repo(name, "_referrers", *_split(subject), digest.replace(":", "-"))

    def referrers(self, name: str, subject: str) -> list[dict]:
        base = self._repo(name, "_referrers", *_split(subject))
        out = []
        for entry in sorted(_listdir(base)):
            data = _read(os.path.join(base, entry))
            if data and ".tmp-" not in entry:
                out.append(json.loads(data))
        return out

    def delete_tag(self, name: str, tag: str) -> bool:
        try:
            os.unlink(self._tag(name, tag))
            return True
        except FileNotFoundError:
            return False

    def delete_manifest(self, name: str, digest: str) -> bool:
        """Remove a manifest from ``name``, with every tag pointing to it and its referrer entry."""
        rev = self.revision(name, digest)
        if rev is None:
            return False
        for tag in self.tags(name):
            if _read(self._tag(name, tag)) == digest.encode():
                self.delete_tag(name, tag)
        if rev.subject:
            try:
                os.unlink(self._referrer(name, rev.subject, digest))
            except FileNotFoundError:
                pass
        os.unlink(self._revision(name, digest))
        return True

    # ------------------------------------------------------------------ listings
    def repo_exists(self, name: str) -> bool:
        return os.path.isdir(self._repo(name, "_manifests")) or os.path.isdir(self._repo(name, "_layers"))

    def tags(self, name: str) -> list[str]:
        return sorted(t for t in _listdir(self._repo(name, "_manifests", "tags")) if ".tmp-" not in t)

    def tag_target(self, name: str, tag: str) -> str:
        data = _read(self._tag(name, tag))
        return data.decode() if data else ""

    def revisions(self, name: str) -> list[str]:
        base, out = self._repo(name, "_manifests", "revisions"), []
        for algo in _listdir(base):
            out += [f"{algo}:{h}" for h in _listdir(os.path.join(base, algo)) if ".tmp-" not in h]
        return sorted(out)

    def layer_links(self, name: str) -> list[str]:
        base, out = self._repo(name, "_layers"), []
        for algo in _listdir(base):
            out += [f"{algo}:{h}" for h in _listdir(os.path.join(base, algo)) if ".tmp-" not in h]
        return sorted(out)

    def repositories(self) -> list[str]:
        """Every repository name, sorted lexically."""
        base, out = os.path.join(self.root, "repos"), []
        for dirpath, dirnames, _ in os.walk(base):
            if "_manifests" in dirnames or "_layers" in dirnames:
                out.append(os.path.relpath(dirpath, base).replace(os.sep, "/"))
            dirnames[:] = [d for d in dirnames if not d.startswith("_")]
        return sorted(out)

    def all_blobs(self) -> list[str]:
        base, out = os.path.join(self.root, "blobs"), []
        for algo in _listdir(base):
            out += [f"{algo}:{h}" for h in _listdir(os.path.join(base, algo))]
        return sorted(out)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
