"""The catalog: a SQLite (WAL) table of episode summaries for fast listing and filtering.

It is a cache. The episode folders are the truth: :meth:`Catalog.sync` brings the catalog in line
with them (new, removed or rewritten ``meta.json``), and deleting ``catalog.sqlite`` only costs a
rebuild. WAL mode lets readers list while a recorder or an extractor writes.

One connection is kept open per process: closing the last connection to a WAL database
checkpoints and fsyncs it, which cost ~30 ms on every commit of a recording when each call
opened its own. The connection is reopened when the file was replaced or deleted, or after a fork.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CATALOG_VERSION = "3"

COLUMNS = ("id", "created", "start_time", "task", "source", "kind", "robot", "env", "success", "frames", "rows",
           "duration", "tags", "variant", "derived", "cameras", "stamp")


def summary(meta: dict[str, Any], derived: dict[str, list[int]], stamp: int) -> dict[str, Any]:
    """The catalog row of one episode: what queries and ``demos list`` need, nothing more."""
    frames = max((c["frames"] for c in meta["cameras"].values()), default=0)  # per camera, not summed
    rows = sum(s["rows"] for s in meta["streams"].values())
    return {"id": meta["id"], "created": meta["created"], "start_time": meta["start_time"], "task": meta["task"],
            "source": meta["source"], "kind": meta["kind"],
            "robot": meta.get("robot"), "env": meta.get("env"), "success": meta.get("success"),
            "frames": frames, "rows": rows, "duration": meta["duration"],
            "tags": list(meta["tags"]), "variant": dict(meta["variant"]), "derived": derived,
            "cameras": sorted(meta["cameras"]), "stamp": stamp}


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._key: tuple[int, int] | None = None      # (pid, inode) the connection belongs to

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                ino = os.stat(self.path).st_ino
            except FileNotFoundError:
                ino = -1
            if self._con is None or self._key != (os.getpid(), ino):
                if self._con is not None and self._key is not None and self._key[0] == os.getpid():
                    self._con.close()
                con = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
                self._con, self._key = con, (os.getpid(), os.stat(self.path).st_ino)
            yield self._con

    def close(self) -> None:
        with self._lock:
            if self._con is not None and self._key is not None and self._key[0] == os.getpid():
                self._con.close()
            self._con, self._key = None, None

    def ensure(self) -> bool:
        """Create the tables when missing or of another catalog version; True when (re)created."""
        with self._connect() as con, con:
            con.execute("CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT)")
            row = con.execute("SELECT value FROM info WHERE key='version'").fetchone()
            if row and row[0] == CATALOG_VERSION:
                return False
            con.execute("DROP TABLE IF EXISTS episodes")
            con.execute("CREATE TABLE episodes (id TEXT PRIMARY KEY, created TEXT, start_time REAL, task TEXT, "
                        "source TEXT, kind TEXT, robot TEXT, env TEXT, success INTEGER, frames INTEGER, rows INTEGER, "
                        "duration REAL, tags TEXT, variant TEXT, derived TEXT, cameras TEXT, stamp INTEGER)")
            con.execute("INSERT OR REPLACE INTO info VALUES ('version', ?)", (CATALOG_VERSION,))
            return True

    def backup(self, target: Path) -> None:
        """A consistent copy of the catalog (SQLite's backup API: safe with WAL readers about)."""
        tmp = target.with_name(f".{target.name}.tmp")
        with self._connect() as con:
            dst = sqlite3.connect(tmp)
            try:
                con.backup(dst)
            finally:
                dst.close()
        os.replace(tmp, target)

    def upsert(self, rows: Iterable[dict[str, Any]]) -> None:
        data = [tuple(json.dumps(r[c]) if c in ("tags", "variant", "derived", "cameras") else
                      (None if r[c] is None else int(r[c])) if c == "success" else r[c] for c in COLUMNS)
                for r in rows]
        with self._connect() as con, con:
            con.executemany(f"INSERT OR REPLACE INTO episodes VALUES ({','.join('?' * len(COLUMNS))})", data)

    def delete(self, ids: Iterable[str]) -> None:
        with self._connect() as con, con:
            con.executemany("DELETE FROM episodes WHERE id=?", [(i,) for i in ids])

    def set_derived(self, episode_id: str, derived: dict[str, list[int]]) -> None:
        with self._connect() as con, con:
            con.execute("UPDATE episodes SET derived=? WHERE id=?", (json.dumps(derived), episode_id))

    def stamps(self) -> dict[str, int]:
        with self._connect() as con:
            return dict(con.execute("SELECT id, stamp FROM episodes").fetchall())

    def rows(self) -> list[dict[str, Any]]:
        """Every episode's summary, oldest first."""
        with self._connect() as con:
            cur = con.execute(f"SELECT {','.join(COLUMNS)} FROM episodes ORDER BY start_time, id")
            out = []
            for rec in cur.fetchall():
                r = dict(zip(COLUMNS, rec))
                for c in ("tags", "variant", "derived", "cameras"):
                    r[c] = json.loads(r[c])
                r["success"] = None if r["success"] is None else bool(r["success"])
                out.append(r)
            return out
