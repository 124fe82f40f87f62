"""Container rows: write-once config apart from changing state."""
from __future__ import annotations

import dataclasses
import sqlite3

from berth.errors import Conflict
from berth.store.db import Database
from berth.types.container import Container, ContainerSpec, ContainerState

_STATE_COLS = [f.name for f in dataclasses.fields(ContainerState)]


class ContainerIndex:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._specs: dict[str, tuple[str, ContainerSpec]] = {}

    def _container(self, row: sqlite3.Row) -> Container:
        state = ContainerState(**{k: row[k] for k in _STATE_COLS})
        state.oom_killed = bool(state.oom_killed)
        state.manually_stopped = bool(state.manually_stopped)
        return Container(row["id"], row["name"], row["image_id"], row["created"], self._spec(row["id"], row["spec"]),
                         state)

    def _spec(self, cid: str, text: str) -> ContainerSpec:
        """Decoded once per config text: the config is written once (``update`` writes a new text)."""
        cached = self._specs.get(cid)
        if cached is None or cached[0] != text:
            if len(self._specs) > 4096:
                self._specs.clear()
            cached = self._specs[cid] = (text, ContainerSpec.from_json(text))
        return cached[1]

    _SELECT = "SELECT c.*, s.* FROM containers c JOIN container_state s ON s.id = c.id WHERE c.complete = 1"

    def get(self, cid: str) -> Container | None:
        row = self.db.one(self._SELECT + " AND c.id=?", (cid,))
        return self._container(row) if row else None

    def by_name(self, name: str) -> str | None:
        row = self.db.one("SELECT id FROM containers WHERE name=? AND complete=1", (name,))
        return row[0] if row else None

    def by_prefix(self, prefix: str) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT id FROM containers WHERE id >= ? AND id < ? AND complete=1 LIMIT 2", (prefix, prefix + "g"))]

    def all(self) -> list[Container]:
        return [self._container(r) for r in self.db.query(self._SELECT + " ORDER BY c.created DESC, c.rowid DESC")]

    def reserve(self, c: Container, chain_ids: list[str]) -> None:
        """Insert an incomplete row and its layers; the unique name makes a concurrent create lose with 409."""
        try:
            with self.db.write() as conn:
                conn.execute("INSERT INTO containers(id, name, image_id, created, spec, complete) VALUES (?,?,?,?,?,0)",
                             (c.id, c.name, c.image_id, c.created, c.spec.to_json()))
                conn.execute("INSERT INTO container_state(id, status) VALUES (?, 'created')", (c.id,))
                conn.executemany("INSERT INTO container_layers(container_id, position, chain_id) VALUES (?,?,?)",
                                 [(c.id, i, chain) for i, chain in enumerate(chain_ids)])
        except sqlite3.IntegrityError:
            owner = self.db.one("SELECT id FROM containers WHERE name=?", (c.name,))
            if owner:
                raise Conflict.container_name(c.name, owner[0]) from None
            raise

    def chain_ids(self, cid: str) -> list[str]:
        return [r[0] for r in self.db.query(
            "SELECT chain_id FROM container_layers WHERE container_id=? ORDER BY position", (cid,))]

    def complete(self, cid: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE containers SET complete=1 WHERE id=?", (cid,))

    def incomplete(self) -> list[str]:
        return [r[0] for r in self.db.query("SELECT id FROM containers WHERE complete=0")]

    def save_state(self, cid: str, state: ContainerState) -> None:
        sets = ", ".join(f"{k}=?" for k in _STATE_COLS)
        with self.db.write() as conn:
            conn.execute(f"UPDATE container_state SET {sets} WHERE id=?",
                         tuple(getattr(state, k) for k in _STATE_COLS) + (cid,))

    def update_spec(self, cid: str, spec: ContainerSpec) -> None:
        """``docker update``: the one change to a container's config after create."""
        with self.db.write() as conn:
            conn.execute("UPDATE containers SET spec=? WHERE id=?", (spec.to_json(), cid))

    def update_state(self, cid: str, **fields) -> None:
        """Change only the named state columns (no stale read-modify-write of the others)."""
        bad = set(fields) - set(_STATE_COLS)
        if bad:
            raise ValueError(f"unknown state fields: {bad}")
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.db.write() as conn:
            conn.execute(f"UPDATE container_state SET {sets} WHERE id=?", (*fields.values(), cid))

    def rename(self, cid: str, name: str) -> None:
        try:
            with self.db.write() as conn:
                conn.execute("UPDATE containers SET name=? WHERE id=?", (name, cid))
        except sqlite3.IntegrityError:
            owner = self.db.one("SELECT id FROM containers WHERE name=?", (name,))
            raise Conflict.container_name(name, owner[0] if owner else "") from None

    def delete(self, cid: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM containers WHERE id=?", (cid,))

    def names(self) -> set[str]:
        return {r[0] for r in self.db.query("SELECT name FROM containers")}
