"""Network rows (write-once) and endpoint rows (a container's attachment and its address in force)."""
from __future__ import annotations

import dataclasses
import json
import sqlite3

from berth.errors import Conflict
from berth.store.db import Database
from berth.types.network import Endpoint, EndpointConfig, Network

_STATE_FIELDS = ("endpoint_id", "ip", "prefix", "gateway", "mac", "host_if", "ports")


class NetworkIndex:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, Network] = {}

    # -- networks -------------------------------------------------------------------
    def add(self, n: Network) -> None:
        try:
            with self.db.write() as conn:
                conn.execute("INSERT INTO networks(id, name, config) VALUES (?,?,?)", (n.id, n.name, n.to_json()))
        except sqlite3.IntegrityError:
            raise Conflict(f"network with name {n.name} already exists") from None

    def replace(self, n: Network) -> None:
        """Rewrite a network's config (only the default bridge's address changes, at start-up)."""
        with self.db.write() as conn:
            conn.execute("UPDATE networks SET config=? WHERE id=?", (n.to_json(), n.id))
        self._cache.pop(n.id, None)

    def active_names(self, nid: str) -> list[tuple[str, str, Endpoint]]:
        """(container ID, container name, endpoint) of every running container on the network."""
        rows = self.db.query("SELECT e.*, c.name AS cname FROM endpoints e JOIN containers c ON c.id = e.container_id"
                             " WHERE e.network_id=? AND e.state != '{}'", (nid,))
        return [(r["container_id"], r["cname"], _endpoint(r)) for r in rows]

    def delete(self, nid: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM networks WHERE id=?", (nid,))
        self._cache.pop(nid, None)

    def all(self) -> list[Network]:
        return [self._network(r) for r in self.db.query("SELECT id, config FROM networks ORDER BY rowid")]

    def get(self, nid: str) -> Network | None:
        if nid in self._cache:
            return self._cache[nid]
        row = self.db.one("SELECT id, config FROM networks WHERE id=?", (nid,))
        return self._network(row) if row else None

    def by_name(self, name: str) -> Network | None:
        row = self.db.one("SELECT id, config FROM networks WHERE name=?", (name,))
        return self._network(row) if row else None

    def by_prefix(self, prefix: str) -> list[Network]:
        rows = self.db.query("SELECT id, config FROM networks WHERE id >= ? AND id < ? LIMIT 2", (prefix, prefix + "g"))
        return [self._network(r) for r in rows]

    def _network(self, row: sqlite3.Row) -> Network:
        n = self._cache.get(row[0])
        if n is None:
            n = self._cache[row[0]] = Network.from_json(row[1])
        return n

    # -- endpoints ------------------------------------------------------------------
    def attach(self, cid: str, nid: str, config: EndpointConfig) -> None:
        try:
            with self.db.write() as conn:
                pos = conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM endpoints WHERE container_id=?",
                                   (cid,)).fetchone()[0]
                conn.execute("INSERT INTO endpoints(container_id, network_id, config, position) VALUES (?,?,?,?)",
                             (cid, nid, json.dumps(dataclasses.asdict(config)), pos))
        except sqlite3.IntegrityError:
            raise Conflict("endpoint already exists") from None

    def detach(self, cid: str, nid: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM endpoints WHERE container_id=? AND network_id=?", (cid, nid))

    def set_state(self, cid: str, nid: str, ep: Endpoint | None) -> None:
        """Record the address in force (or clear it with None)."""
        state = {k: getattr(ep, k) for k in _STATE_FIELDS} if ep else {}
        with self.db.write() as conn:
            conn.execute("UPDATE endpoints SET state=? WHERE container_id=? AND network_id=?",
                         (json.dumps(state), cid, nid))

    def claim(self, cid: str, nid: str, choose) -> Endpoint:
        """Pick an address with ``choose(taken: set[str]) -> Endpoint`` and record it, in one transaction."""
        with self.db.write() as conn:
            taken = {json.loads(r[0]).get("ip", "") for r in conn.execute(
                "SELECT state FROM endpoints WHERE network_id=? AND container_id != ?", (nid, cid))}
            ep = choose(taken - {""})
            state = {k: getattr(ep, k) for k in _STATE_FIELDS}
            conn.execute("UPDATE endpoints SET state=? WHERE container_id=? AND network_id=?",
                         (json.dumps(state), cid, nid))
        return ep

    def endpoints(self, *, container: str | None = None, network: str | None = None) -> list[Endpoint]:
        sql, args = "SELECT * FROM endpoints", ()
        if container is not None:
            sql, args = sql + " WHERE container_id=?", (container,)
        elif network is not None:
            sql, args = sql + " WHERE network_id=?", (network,)
        return [_endpoint(r) for r in self.db.query(sql + " ORDER BY container_id, position", args)]

    def endpoint(self, cid: str, nid: str) -> Endpoint | None:
        row = self.db.one("SELECT * FROM endpoints WHERE container_id=? AND network_id=?", (cid, nid))
        return _endpoint(row) if row else None

    def fixed_ips(self, nid: str) -> set[str]:
        """Addresses that stopped containers keep for themselves (``--ip``)."""
        return {json.loads(r[0]).get("ipv4", "") for r in self.db.query(
            "SELECT config FROM endpoints WHERE network_id=?", (nid,))} - {""}


def _endpoint(row: sqlite3.Row) -> Endpoint:
    cfg = EndpointConfig(**json.loads(row["config"]))
    return Endpoint(row["container_id"], row["network_id"], cfg, **json.loads(row["state"]))
