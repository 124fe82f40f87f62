"""Volume rows (write-once config); the data lives in ``<data-root>/volumes/<name>/_data``."""
from __future__ import annotations

import sqlite3

from berth.store.db import Database
from berth.types.volume import Volume


class VolumeIndex:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, v: Volume) -> bool:
        """Insert; False when the name exists already (create is idempotent, as Docker's local driver)."""
        try:
            with self.db.write() as conn:
                conn.execute("INSERT INTO volumes(name, config, created) VALUES (?,?,?)", (v.name, v.to_json(), v.created))
        except sqlite3.IntegrityError:
            return False
        return True

    def get(self, name: str) -> Volume | None:
        row = self.db.one("SELECT config FROM volumes WHERE name=?", (name,))
        return Volume.from_json(row[0]) if row else None

    def all(self) -> list[Volume]:
        return [Volume.from_json(r[0]) for r in self.db.query("SELECT config FROM volumes ORDER BY name")]

    def delete(self, name: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM volumes WHERE name=?", (name,))
