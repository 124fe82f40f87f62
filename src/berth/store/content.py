"""Content-addressed blobs under ``blobs/sha256/<hex>``.

New content is written under ``ingest/`` and renamed into place only after
its digest is known, so a crash never leaves a half-written blob under a digest.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from typing import BinaryIO, Protocol

from berth.types.digest import hex_of
from berth.util.fs import fsync_dir, remove_tree


class BlobReader(Protocol):
    def path(self, digest: str) -> str: ...
    def exists(self, digest: str) -> bool: ...
    def read(self, digest: str) -> bytes: ...


class ContentStore:
    """Blobs keyed by sha256 digest; the Provider and Ingester roles together."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        self.ingest = os.path.join(root, "ingest")
        os.makedirs(self.blobs, exist_ok=True)
        os.makedirs(self.ingest, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.blobs, hex_of(digest))

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def read(self, digest: str) -> bytes:
        with open(self.path(digest), "rb") as f:
            return f.read()

    def size(self, digest: str) -> int:
        return os.path.getsize(self.path(digest))

    def temp_path(self) -> str:
        """A fresh path under ``ingest/`` for the caller to fill, then ``commit_file``."""
        return os.path.join(self.ingest, uuid.uuid4().hex)

    def write_bytes(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            tmp = self.temp_path()
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self.commit_file(tmp, digest)
        return digest

    def write_stream(self, src: BinaryIO) -> tuple[str, int]:
        tmp = self.temp_path()
        h, size = hashlib.sha256(), 0
        with open(tmp, "wb") as f:
            while chunk := src.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
                size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        digest = "sha256:" + h.hexdigest()
        self.commit_file(tmp, digest)
        return digest, size

    def commit_file(self, tmp: str, digest: str) -> None:
        """Move a finished file into place under its (already verified) digest."""
        target = self.path(digest)
        if os.path.exists(target):
            os.unlink(tmp)
            return
        os.rename(tmp, target)
        fsync_dir(self.blobs)

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def digests(self) -> set[str]:
        return {"sha256:" + n for n in os.listdir(self.blobs) if len(n) == 64}

    def clean_ingest(self) -> None:
        """Drop half-written blobs left by a crash."""
        for name in os.listdir(self.ingest):
            remove_tree(os.path.join(self.ingest, name))
