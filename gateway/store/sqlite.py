"""SQLite store: the embedded, zero-set-up default (WAL, synchronous=FULL).

One connection guarded by a re-entrant lock: SQLite serialises writers anyway,
and a reading batch is one transaction.  Instants are stored as fixed-width
ISO-8601 UTC text (``2026-03-01T12:00:00.000000+00:00``) so they sort.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from gateway.model import Reading
from gateway.store.sql import READING_COLUMNS, SqlStore

_INSERT_READING = (f"INSERT INTO readings ({', '.join(READING_COLUMNS)}) VALUES "
                   f"({', '.join('?' * len(READING_COLUMNS))})")


def path_from_url(url: str) -> str:
    """``sqlite:///relative/or/absolute.db`` (or ``sqlite://:memory:``) to a path."""
    if not url.startswith("sqlite://"):
        raise ValueError(f"not a sqlite URL: {url!r}")
    rest = url[len("sqlite://"):]
    if rest in ("", "/:memory:", ":memory:"):
        return ":memory:"
    return rest[1:] if rest.startswith("/") else rest


class SqliteStore(SqlStore):
    """Store backed by one SQLite file."""

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.path = path_from_url(url)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._depth = 0

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            if self._depth:  # nested: join the outer transaction
                self._depth += 1
                try:
                    yield cur
                finally:
                    self._depth -= 1
                return
            cur.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield cur
            except BaseException:
                self._conn.rollback()
                raise
            else:
                self._conn.commit()
            finally:
                self._depth = 0
                cur.close()

    def _store_new(self, cur: Any, first: dict[str, Reading],
                   ingested_at: datetime) -> list[Reading]:
        """Look the ids up in ``reading_ids`` (the writer lock is held), insert the new ones.

        ``reading_ids`` keeps every id ever stored, so retention deleting old
        readings does not make their re-sends look new.
        """
        ids = list(first)
        existing: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            rows = cur.execute(f"SELECT id FROM reading_ids WHERE id IN "
                               f"({', '.join('?' * len(chunk))})", chunk)
            existing.update(row[0] for row in rows.fetchall())
        new = [r for rid, r in first.items() if rid not in existing]
        cur.executemany("INSERT INTO reading_ids (id) VALUES (?)", [(r.id,) for r in new])
        cur.executemany(_INSERT_READING, [self._reading_row(r, ingested_at) for r in new])
        return new

    def _ts(self, dt: datetime | None) -> Any:
        if dt is None:
            return None
        return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

    def _d(self, d: date | None) -> Any:
        return None if d is None else d.isoformat()

    def _bool(self, value: bool) -> Any:
        return 1 if value else 0

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
