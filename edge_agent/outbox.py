"""The durable outbox: every decoded reading lives here until the broker has it.

How this works
--------------
One SQLite file in WAL mode with ``synchronous=FULL``: a reading is
committed (fsynced) by :meth:`Outbox.add` before the caller does anything
else with it, so a power cut or ``kill -9`` right after ``add`` returns
cannot lose it.  The publisher reads rows in insertion order
(:meth:`Outbox.pending`) and calls :meth:`Outbox.ack` only when the broker
acknowledged (PUBACK) the QoS 1 publish that carried them; ``ack`` deletes
the rows and remembers their ids in ``published`` for
:data:`PUBLISHED_RETENTION_S`, so a device that re-sends records the hub
already delivered does not put them on the wire again (the server would
dedupe them anyway; this just saves the patient's uplink).

Inserts are idempotent by reading id.  At the configured cap the *oldest*
rows are dropped -- the newest readings matter most clinically -- and every
drop is written to the ``dropped`` table (count, ids, time, reason): never
silently.  Sizing: a row is ~0.5-0.7 KB (see ``test_outbox.py``), so the
default cap of 200,000 rows (~150 MB) holds months of readings for four
devices even at one reading every few minutes.

The outbox also keeps small agent state (per-device sync anchors, broker
connection state, device snapshots) so ``vitalgate edge status`` can read
everything from this one file.  One :class:`Outbox` object is used from one
thread (the agent's event loop); other processes may open the file read-only.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.wire import WireDevice, WireReading

#: Default maximum number of undelivered readings kept (see module docstring).
DEFAULT_CAP = 200_000
#: How long the ids of delivered readings are remembered to suppress re-sends:
#: longer than any device memory we know of is re-sent after (meters keep ~500
#: records, i.e. weeks to months), shorter than forever so the file stays small.
PUBLISHED_RETENTION_S = 90 * 24 * 3600.0
#: Rows per ``IN (...)`` list when acknowledging (SQLite bound-parameter limits).
_ACK_CHUNK = 500
#: Ids listed per ``dropped`` row (the count is always exact).
DROPPED_IDS_LISTED = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    reading_id   TEXT NOT NULL UNIQUE,
    serial       TEXT NOT NULL,
    device       TEXT NOT NULL,
    reading      TEXT NOT NULL,
    enqueued_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS published (
    reading_id   TEXT PRIMARY KEY,
    acked_at     REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS published_acked_at ON published (acked_at);
CREATE TABLE IF NOT EXISTS dropped (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           REAL NOT NULL,
    count        INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    reading_ids  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key          TEXT PRIMARY KEY,
    value        TEXT NOT NULL,
    updated_at   REAL NOT NULL
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class QueuedReading:
    """A reading ready for the outbox: its device block and wire reading."""

    device: WireDevice
    reading: WireReading

    @property
    def id(self) -> str:
        """The reading's stable id."""
        return self.reading.id


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stored, undelivered reading (JSON as it will go on the wire)."""

    seq: int
    reading_id: str
    serial: str
    device_json: str
    reading_json: str
    enqueued_at: float


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Depth, age of the oldest row (seconds) and readings dropped so far."""

    depth: int
    oldest_age_s: float | None
    dropped_total: int


@dataclass(frozen=True, slots=True)
class DroppedRecord:
    """A record of readings dropped at the cap."""

    at: float
    count: int
    reason: str
    reading_ids: tuple[str, ...]


class Outbox:
    """SQLite-backed durable queue of readings (see the module docstring)."""

    def __init__(
        self,
        path: str | Path,
        *,
        cap: int = DEFAULT_CAP,
        clock: Callable[[], float] = time.time,
        published_retention_s: float = PUBLISHED_RETENTION_S,
    ) -> None:
        if cap < 1:
            raise ValueError("outbox cap must be >= 1")
        self.path = Path(path)
        self.cap = cap
        self._clock = clock
        self._retention = published_retention_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Readings are health data: the file (and its WAL, which SQLite creates
        # with the same mode) is readable by the agent's user only.
        self.path.touch(mode=0o600, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)
        # Row count kept in memory for the cap check (this object is the only
        # writer); depth() still counts, for readers in other processes.
        self._count: int | None = None

    # -- writing ---------------------------------------------------------------

    def add(self, item: QueuedReading) -> bool:
        """Commit one reading; ``False`` if its id is already stored or delivered."""
        return self.add_many([item]) == 1

    def add_many(self, items: Iterable[QueuedReading]) -> int:
        """Commit readings in one transaction; return how many were new."""
        now = self._clock()
        added = 0
        with self._tx() as db:
            for item in items:
                rid = item.reading.id
                if db.execute("SELECT 1 FROM published WHERE reading_id=?", (rid,)).fetchone():
                    continue
                # Keep nulls: ``WireValue.value`` is required-nullable, so a
                # failed measurement's ``"value": null`` must stay in the JSON.
                cur = db.execute(
                    "INSERT OR IGNORE INTO outbox"
                    " (reading_id, serial, device, reading, enqueued_at) VALUES (?, ?, ?, ?, ?)",
                    (
                        rid,
                        item.device.serial,
                        item.device.model_dump_json(),
                        item.reading.model_dump_json(),
                        now,
                    ),
                )
                added += cur.rowcount
            if added:
                self._enforce_cap(db, now, added)
        return added

    def _enforce_cap(self, db: sqlite3.Connection, now: float, added: int) -> None:
        if self._count is None:
            self._count = int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        else:
            self._count += added
        excess = self._count - self.cap
        if excess <= 0:
            return
        self._count -= excess
        rows = db.execute(
            "SELECT seq, reading_id FROM outbox ORDER BY seq LIMIT ?", (excess,)
        ).fetchall()
        db.execute("DELETE FROM outbox WHERE seq <= ?", (rows[-1][0],))
        ids = [r[1] for r in rows]
        db.execute(
            "INSERT INTO dropped (at, count, reason, reading_ids) VALUES (?, ?, ?, ?)",
            (now, len(ids), f"cap {self.cap} reached", json.dumps(ids[:DROPPED_IDS_LISTED])),
        )

    def ack(self, seqs: Sequence[int]) -> int:
        """The broker acknowledged these rows: delete them, remember their ids."""
        if not seqs:
            return 0
        now = self._clock()
        done = 0
        with self._tx() as db:
            for i in range(0, len(seqs), _ACK_CHUNK):
                chunk = tuple(seqs[i : i + _ACK_CHUNK])
                marks = ",".join("?" * len(chunk))
                ids = db.execute(
                    f"SELECT reading_id FROM outbox WHERE seq IN ({marks})", chunk
                ).fetchall()
                db.executemany(
                    "INSERT OR REPLACE INTO published (reading_id, acked_at) VALUES (?, ?)",
                    [(r[0], now) for r in ids],
                )
                deleted = db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", chunk)
                if self._count is not None:
                    self._count -= deleted.rowcount
                done += len(ids)
            db.execute("DELETE FROM published WHERE acked_at < ?", (now - self._retention,))
        return done

    # -- reading ---------------------------------------------------------------

    def pending(self, after_seq: int = 0, limit: int = 500) -> list[OutboxRow]:
        """Undelivered rows with ``seq > after_seq``, oldest first."""
        rows = self._db.execute(
            "SELECT seq, reading_id, serial, device, reading, enqueued_at FROM outbox"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def depth(self) -> int:
        """Number of undelivered readings."""
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def oldest_age_s(self) -> float | None:
        """Seconds since the oldest undelivered reading was stored (None if empty)."""
        (oldest,) = self._db.execute("SELECT MIN(enqueued_at) FROM outbox").fetchone()
        return None if oldest is None else max(0.0, self._clock() - float(oldest))

    def stats(self) -> OutboxStats:
        """Depth, oldest age and total dropped."""
        (dropped,) = self._db.execute("SELECT COALESCE(SUM(count), 0) FROM dropped").fetchone()
        return OutboxStats(self.depth(), self.oldest_age_s(), int(dropped))

    def dropped(self) -> list[DroppedRecord]:
        """Every drop at the cap, oldest first."""
        rows = self._db.execute(
            "SELECT at, count, reason, reading_ids FROM dropped ORDER BY id"
        ).fetchall()
        return [DroppedRecord(r[0], r[1], r[2], tuple(json.loads(r[3]))) for r in rows]

    def was_published(self, reading_id: str) -> bool:
        """True if the broker acknowledged this reading within the retention window."""
        row = self._db.execute("SELECT 1 FROM published WHERE reading_id=?", (reading_id,))
        return row.fetchone() is not None

    # -- small durable state -----------------------------------------------------

    def set_state(self, key: str, value: Any) -> None:
        """Store a JSON-able value under ``key`` (committed)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE"
                " SET value=excluded.value, updated_at=excluded.updated_at",
                (key, json.dumps(value), self._clock()),
            )

    def get_state(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        row = self._db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def states(self, prefix: str) -> dict[str, Any]:
        """Every state entry whose key starts with ``prefix``."""
        rows = self._db.execute(
            "SELECT key, value FROM state WHERE key >= ? AND key < ? ORDER BY key",
            (prefix, prefix + "\uffff"),
        ).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error)."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._db = outbox._db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._db.execute("ROLLBACK")
            self._outbox._count = None  # recount on the next insert
        else:
            self._db.execute("COMMIT")
