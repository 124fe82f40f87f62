"""Image metadata: records, tags and snapshot rows in the database."""
from __future__ import annotations

import sqlite3

from berth.store.db import Database
from berth.types.image import ImageConfig, ImageRecord


class ImageIndex:
    """Reads and writes image rows; blobs and snapshots live elsewhere."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _record(self, row: sqlite3.Row) -> ImageRecord:
        tags = [r[0] for r in self.db.query("SELECT name FROM tags WHERE image_id=? ORDER BY name", (row["id"],))]
        layers = self.db.query(
            "SELECT l.chain_id, s.size FROM image_layers l JOIN snapshots s ON s.chain_id = l.chain_id "
            "WHERE l.image_id=? ORDER BY l.position", (row["id"],))
        used = self.db.one("SELECT count(*) FROM containers WHERE image_id=?", (row["id"],))[0]
        digests = [r[0] for r in self.db.query("SELECT name FROM repo_digests WHERE image_id=? ORDER BY name",
                                               (row["id"],))]
        return ImageRecord(row["id"], ImageConfig.parse(row["config"].encode()), row["created"], row["size"],
                           tags, [r[0] for r in layers], used, [r[1] for r in layers], digests)

    def snapshot_sizes(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.query("SELECT chain_id, size FROM snapshots")}

    def get(self, image_id: str) -> ImageRecord | None:
        row = self.db.one("SELECT * FROM images WHERE id=?", (image_id,))
        return self._record(row) if row else None

    def by_tag(self, name: str) -> str | None:
        row = self.db.one("SELECT image_id FROM tags WHERE name=?", (name,))
        return row[0] if row else None

    def by_repo_digest(self, name: str) -> str | None:
        row = self.db.one("SELECT image_id FROM repo_digests WHERE name=?", (name,))
        return row[0] if row else None

    @staticmethod
    def set_repo_digest(conn: sqlite3.Connection, name: str, image_id: str) -> None:
        conn.execute("INSERT OR REPLACE INTO repo_digests(name, image_id) VALUES (?,?)", (name, image_id))

    def by_prefix(self, prefix: str) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2", ("sha256:" + prefix, "sha256:" + prefix + "\uffff"))]

    def all(self) -> list[ImageRecord]:
        return [self._record(r) for r in self.db.query("SELECT * FROM images ORDER BY created DESC")]

    def snapshot_exists(self, chain_id: str) -> bool:
        return self.db.one("SELECT 1 FROM snapshots WHERE chain_id=?", (chain_id,)) is not None

    def snapshot_ids(self) -> set[str]:
        return {r[0] for r in self.db.query("SELECT chain_id FROM snapshots")}

    def add(self, conn: sqlite3.Connection, image_id: str, config_json: str, created: str, size: int,
            layers: list[tuple[str, str, int]]) -> None:
        """Insert an image and its snapshot rows inside the caller's transaction.

        ``layers`` is ``(diff_id, chain_id, unpacked size)`` bottom first.
        """
        parent = None
        for diff_id, chain_id, lsize in layers:
            conn.execute("INSERT OR IGNORE INTO snapshots(chain_id, diff_id, parent, size) VALUES (?,?,?,?)",
                         (chain_id, diff_id, parent, lsize))
            parent = chain_id
        conn.execute("INSERT OR IGNORE INTO images(id, config, created, size) VALUES (?,?,?,?)",
                     (image_id, config_json, created, size))
        if conn.execute("SELECT count(*) FROM image_layers WHERE image_id=?", (image_id,)).fetchone()[0] == 0:
            for pos, (diff_id, chain_id, _) in enumerate(layers):
                conn.execute("INSERT INTO image_layers(image_id, position, diff_id, chain_id) VALUES (?,?,?,?)",
                             (image_id, pos, diff_id, chain_id))

    @staticmethod
    def set_tag(conn: sqlite3.Connection, name: str, image_id: str) -> str | None:
        """Point ``name`` at ``image_id``; return the image it pointed at before, if another."""
        row = conn.execute("SELECT image_id FROM tags WHERE name=?", (name,)).fetchone()
        conn.execute("INSERT OR REPLACE INTO tags(name, image_id) VALUES (?,?)", (name, image_id))
        return row[0] if row and row[0] != image_id else None

    @staticmethod
    def remove_tag(conn: sqlite3.Connection, name: str) -> None:
        conn.execute("DELETE FROM tags WHERE name=?", (name,))

    @staticmethod
    def remove(conn: sqlite3.Connection, image_id: str) -> None:
        conn.execute("DELETE FROM tags WHERE image_id=?", (image_id,))
        conn.execute("DELETE FROM images WHERE id=?", (image_id,))

    def unused_snapshots(self, conn: sqlite3.Connection) -> list[str]:
        """Snapshot rows no image or container uses and no other snapshot builds on, deleted from the DB."""
        removed: list[str] = []
        while True:
            rows = conn.execute(
                "SELECT chain_id FROM snapshots s WHERE NOT EXISTS "
                "(SELECT 1 FROM image_layers l WHERE l.chain_id = s.chain_id) AND NOT EXISTS "
                "(SELECT 1 FROM container_layers k WHERE k.chain_id = s.chain_id) AND NOT EXISTS "
                "(SELECT 1 FROM snapshots c WHERE c.parent = s.chain_id)").fetchall()
            if not rows:
                return removed
            for (cid,) in rows:
                conn.execute("DELETE FROM snapshots WHERE chain_id=?", (cid,))
                removed.append(cid)

    def used_blobs(self) -> set[str]:
        """Digests the content store must keep: configs and layer tars."""
        ids = {r[0] for r in self.db.query("SELECT id FROM images")}
        return ids | {r[0] for r in self.db.query("SELECT diff_id FROM snapshots")}
