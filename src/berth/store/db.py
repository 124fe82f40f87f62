"""The metadata database: SQLite with foreign keys, WAL and a schema version.

Schema (version 6; each migration below is applied once, in order):

- ``images(id, config, created, size)``: write-once; ``id`` is the config digest,
  ``config`` its JSON text (the exact bytes live in the content store).
- ``image_layers(image_id, position, diff_id, chain_id)``: the image's layers, bottom first.
- ``tags(name, image_id)``: normalised reference → image.
- ``snapshots(chain_id, diff_id, parent, size)``: unpacked layers, shared by images.
- ``containers(id, name, image_id, created, spec, complete)``: write-once config;
  ``complete`` is 0 while the container is being made (a crash leaves 0, recovery removes it).
  ``image_id`` is not a foreign key: as in Docker, a stopped container's image may be deleted.
- ``container_layers(container_id, position, chain_id)``: the layers under a container's
  root, bottom first; they keep their snapshots alive when the image goes.
- ``container_state(id, status, pid, exit_code, started_at, finished_at, error, restart_count, oom_killed,
  manually_stopped)``: mutable (``manually_stopped`` since version 2).
- ``networks(id, name, config)``: write-once (version 3); ``config`` is a Network's JSON.
- ``endpoints(container_id, network_id, config, state)``: a container's attachment; ``config`` is
  what the client asked for (aliases, fixed address), ``state`` the address in force while it runs
  (version 3). Removing the container removes its endpoints; a network with endpoints cannot go.
- ``volumes(name, config, created)``: write-once (version 4); ``config`` is a Volume's JSON. Its data is
  ``volumes/<name>/_data``; which containers use it is in their mount points.
- ``build_cache(key, image_id, parent_id, created, step, detail)`` (version 5): a build step's cache key →
  the image it made on top of ``parent_id``; ``step`` is the instruction as written and ``detail`` its
  inputs (build args, copied files' hashes), for ``--explain``. Images that are only the parents of later
  steps are hidden from lists.
- ``blob_sources(diff_id, digest, media_type, size, registry, repository)`` (version 6): where a layer was
  pulled from or pushed to, compressed as ``digest``, so a push sends only what the registry lacks
  (mounting it from a sibling repository when it can) and a re-push gives the same manifest.
- ``repo_digests(name, image_id)`` (version 6): ``repository@digest`` references that name an image's
  manifest in a registry (``RepoDigests``).
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

_MIGRATIONS = [
    """
    CREATE TABLE images (
        id TEXT PRIMARY KEY CHECK (id LIKE 'sha256:%'),
        config TEXT NOT NULL,
        created TEXT NOT NULL,
        size INTEGER NOT NULL CHECK (size >= 0)
    );
    CREATE TABLE snapshots (
        chain_id TEXT PRIMARY KEY CHECK (chain_id LIKE 'sha256:%'),
        diff_id TEXT NOT NULL,
        parent TEXT REFERENCES snapshots(chain_id),
        size INTEGER NOT NULL
    );
    CREATE TABLE image_layers (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        diff_id TEXT NOT NULL,
        chain_id TEXT NOT NULL REFERENCES snapshots(chain_id),
        PRIMARY KEY (image_id, position)
    );
    CREATE TABLE tags (
        name TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id)
    );
    CREATE INDEX tags_image ON tags(image_id);
    CREATE TABLE containers (
        id TEXT PRIMARY KEY CHECK (length(id) = 64),
        name TEXT NOT NULL UNIQUE,
        image_id TEXT NOT NULL,
        created TEXT NOT NULL,
        spec TEXT NOT NULL,
        complete INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1))
    );
    CREATE INDEX containers_image ON containers(image_id);
    CREATE TABLE container_layers (
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        chain_id TEXT NOT NULL REFERENCES snapshots(chain_id),
        PRIMARY KEY (container_id, position)
    );
    CREATE TABLE container_state (
        id TEXT PRIMARY KEY REFERENCES containers(id) ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN
            ('created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead')),
        pid INTEGER NOT NULL DEFAULT 0,
        exit_code INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
        finished_at TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
        error TEXT NOT NULL DEFAULT '',
        restart_count INTEGER NOT NULL DEFAULT 0,
        oom_killed INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 2: restart policies need to know who stopped a container.
    """
    ALTER TABLE container_state ADD COLUMN manually_stopped INTEGER NOT NULL DEFAULT 0
        CHECK (manually_stopped IN (0, 1));
    """,
    # 3: networks and the endpoints that attach containers to them.
    """
    CREATE TABLE networks (
        id TEXT PRIMARY KEY CHECK (length(id) = 64),
        name TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL
    );
    CREATE TABLE endpoints (
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        network_id TEXT NOT NULL REFERENCES networks(id),
        config TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT '{}',
        position INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (container_id, network_id)
    );
    CREATE INDEX endpoints_network ON endpoints(network_id);
    """,
    # 4: named and anonymous volumes.
    """
    CREATE TABLE volumes (
        name TEXT PRIMARY KEY CHECK (length(name) >= 2),
        config TEXT NOT NULL,
        created TEXT NOT NULL
    );
    """,
    # 5: the build cache.
    """
    CREATE TABLE build_cache (
        key TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        parent_id TEXT NOT NULL,
        created TEXT NOT NULL,
        step TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX build_cache_image ON build_cache(image_id);
    CREATE INDEX build_cache_step ON build_cache(step);
    CREATE INDEX build_cache_parent ON build_cache(parent_id);
    """,
    # 6: distribution metadata.
    """
    CREATE TABLE blob_sources (
        diff_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL CHECK (size >= 0),
        registry TEXT NOT NULL,
        repository TEXT NOT NULL,
        PRIMARY KEY (diff_id, registry, repository, digest)
    );
    CREATE TABLE repo_digests (
        name TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE INDEX repo_digests_image ON repo_digests(image_id);
    """,
]


class Database:
    """A connection with exclusive write transactions and migrations applied at open."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            with self.write() as c:
                for stmt in script.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(f"PRAGMA user_version={number}")

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """An exclusive transaction: committed on success, rolled back on error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, args).fetchall()

    def one(self, sql: str, args: tuple = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, args).fetchone()

    def close(self) -> None:
        self.conn.close()
