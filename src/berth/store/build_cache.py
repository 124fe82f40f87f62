"""The build cache: a step's key (parent image, instruction, inputs) → the image that step made."""
from __future__ import annotations

from berth.store.db import Database


class BuildCacheIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str) -> str | None:
        row = self.db.one("SELECT b.image_id FROM build_cache b JOIN images i ON i.id = b.image_id WHERE b.key=?",
                          (key,))
        return row[0] if row else None

    def put(self, key: str, image_id: str, parent_id: str, created: str, step: str = "", detail: str = "{}") -> None:
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO build_cache(key, image_id, parent_id, created, step, detail) "
                         "VALUES (?,?,?,?,?,?)", (key, image_id, parent_id, created, step, detail))

    def last(self, step: str) -> tuple[str, str] | None:
        """(parent ID, detail JSON) of the newest cached run of the instruction ``step``."""
        row = self.db.one("SELECT parent_id, detail FROM build_cache WHERE step=? ORDER BY created DESC, rowid DESC "
                          "LIMIT 1", (step,))
        return (row[0], row[1]) if row else None

    def intermediate(self) -> set[str]:
        """Images that later build steps were made on: hidden from ``images`` unless tagged or ``-a``."""
        return {r[0] for r in self.db.query(
            "SELECT DISTINCT b.parent_id FROM build_cache b JOIN build_cache c ON c.image_id = b.parent_id")}

    def parent(self, image_id: str) -> str:
        """The image a build step made ``image_id`` on ("" when no build made it)."""
        row = self.db.one("SELECT parent_id FROM build_cache WHERE image_id=? ORDER BY created DESC LIMIT 1",
                          (image_id,))
        return row[0] if row else ""

    def children(self, image_id: str) -> set[str]:
        """Images build steps made on ``image_id``."""
        return {r[0] for r in self.db.query("SELECT DISTINCT image_id FROM build_cache WHERE parent_id=?", (image_id,))}

    def images(self) -> set[str]:
        return {r[0] for r in self.db.query("SELECT DISTINCT image_id FROM build_cache")}

    def clear(self) -> int:
        with self.db.write() as conn:
            n = conn.execute("SELECT count(*) FROM build_cache").fetchone()[0]
            conn.execute("DELETE FROM build_cache")
        return n
