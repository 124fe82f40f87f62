"""Distribution metadata: which compressed blob holds a layer, in which registry and repository."""
from __future__ import annotations

from dataclasses import dataclass

from berth.store.db import Database


@dataclass(frozen=True)
class BlobSource:
    diff_id: str
    digest: str
    media_type: str
    size: int
    registry: str
    repository: str


class DistributionIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    def sources(self, diff_id: str, registry: str | None = None) -> list[BlobSource]:
        """Where the layer ``diff_id`` is known to be, in ``registry`` when given."""
        sql, args = "SELECT * FROM blob_sources WHERE diff_id=?", (diff_id,)
        if registry is not None:
            sql, args = sql + " AND registry=?", (diff_id, registry)
        return [BlobSource(r["diff_id"], r["digest"], r["media_type"], r["size"], r["registry"], r["repository"])
                for r in self.db.query(sql + " ORDER BY rowid DESC", args)]

    def remember(self, sources: list[BlobSource]) -> None:
        with self.db.write() as conn:
            for s in sources:
                conn.execute("INSERT OR IGNORE INTO blob_sources(diff_id, digest, media_type, size, registry, "
                             "repository) VALUES (?,?,?,?,?,?)",
                             (s.diff_id, s.digest, s.media_type, s.size, s.registry, s.repository))
