"""PostgreSQL store (psycopg 3, pooled), TimescaleDB-aware.

Readings are inserted with binary COPY into a per-connection temporary
staging table and moved with one ``INSERT ... SELECT``: the fast path
measured in DESIGN.md (batches, binary COPY) while uniqueness stays the
primary key's job.  When the ``timescaledb`` extension is available the
readings table becomes a hypertable (see :meth:`PostgresStore._after_migrate`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from gateway.store.sql import READING_COLUMNS, SqlStore

log = logging.getLogger(__name__)

_COPY_TYPES = [
    "text", "text", "text", "text", "text", "text", "timestamptz", "text", "float8",
    "timestamptz", "timestamptz", "text", "text", "int8",
    "float8", "float8", "float8", "float8", "float8", "float8", "float8", "float8", "float8",
    "text",
]
assert len(_COPY_TYPES) == len(READING_COLUMNS)
_COLS = ", ".join(READING_COLUMNS)


class PostgresStore(SqlStore):
    """Store backed by PostgreSQL (optionally with TimescaleDB)."""

    dialect = "postgres"
    _for_update = " FOR UPDATE"
    _skip_locked = " SKIP LOCKED"

    def __init__(self, url: str, pool_size: int = 4) -> None:
        super().__init__()
        self.url = url
        self.timescale = False
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=True,
                                    kwargs={"autocommit": False}, name="vitalgate")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _insert_reading_rows(self, cur: Any, rows: list[tuple[Any, ...]]) -> None:
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS readings_stage "
                    "(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        with cur.copy(f"COPY readings_stage ({_COLS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        # ON CONFLICT guards against a concurrent worker storing the same id
        # between our existence check and this insert.
        cur.execute(f"INSERT INTO readings ({_COLS}) SELECT {_COLS} FROM readings_stage "
                    "ON CONFLICT (id) DO NOTHING")
        if cur.rowcount != len(rows):
            raise psycopg.errors.UniqueViolation(
                "a concurrent writer stored some of these readings; retry the batch")
        cur.execute("TRUNCATE readings_stage")

    def _after_migrate(self) -> None:
        with self._tx() as cur:
            cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
            self.timescale = cur.fetchone() is not None
        if self.timescale:
            log.info("timescaledb extension available")

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()
