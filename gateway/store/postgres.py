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
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg_pool import ConnectionPool

from gateway.billing.bulk import PanelInputs
from gateway.billing.model import Performer
from gateway.model import Reading
from gateway.store.billing_store import days_of_masks
from gateway.store.sql import READING_COLUMNS, SeriesPoint, SqlStore
from gateway.units import Metric

log = logging.getLogger(__name__)

_COPY_TYPES = [
    "text", "text", "text", "text", "text", "text", "timestamptz", "text", "float8",
    "timestamptz", "timestamptz", "text", "text", "int8",
    "float8", "float8", "float8", "float8", "float8", "float8", "float8", "float8", "float8",
    "text",
]
assert len(_COPY_TYPES) == len(READING_COLUMNS)
_COLS = ", ".join(READING_COLUMNS)


def _int8_matrix(cur: Any, select: str, params: tuple[Any, ...], columns: int,
                 order: str = "") -> npt.NDArray[np.int64]:
    """Rows of ``select`` (``columns`` non-null bigint columns) as an (n, columns)
    array.  PostgreSQL packs them into one ``bytea`` (``int8send``: 8 bytes
    big-endian each), read in binary: no Python object per row."""
    names = [f"c{k}" for k in range(columns)]
    packed = " || ".join(f"int8send({n})" for n in names)
    agg = f"string_agg({packed}, ''::bytea{' ORDER BY ' + order if order else ''})"
    row = cur.execute(f"SELECT {agg} FROM ({select}) AS s({', '.join(names)})", params,
                      binary=True).fetchone()
    data = b"" if row is None or row[0] is None else bytes(row[0])
    return np.frombuffer(data, dtype=">i8").astype(np.int64).reshape(-1, columns)


class PostgresStore(SqlStore):
    """Store backed by PostgreSQL (optionally with TimescaleDB)."""

    dialect = "postgres"
    _for_update = " FOR UPDATE"
    _skip_locked = " SKIP LOCKED"

    def __init__(self, url: str, pool_size: int = 4) -> None:
        super().__init__()
        self.url = url
        self.timescale = False
        self.timescale_license = ""
        self.compression = False
        # check: a connection is tested before it is handed out, so a database
        # restart costs one reconnect instead of errors on every pooled connection
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=True,
                                    kwargs={"autocommit": False}, name="vitalgate",
                                    check=ConnectionPool.check_connection)

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def billing_panel_inputs(self, practice_id: str, *, window: date, through: date,
                             entries_from: datetime, entries_to: datetime,
                             tz: ZoneInfo) -> PanelInputs:
        """The same arrays as the generic path, computed by PostgreSQL and read with
        packed into one binary value per query, straight into numpy (no Python object per
        row): month-end for
        100,000 patients reads ~400,000 rows.  The practice's patients are numbered
        once in a temporary table, so every array uses the same patient index."""
        with self._tx() as cur:
            # the joins below hash 100,000s of ids: keep the hash tables in memory
            cur.execute("SET LOCAL work_mem = '64MB'")
            cur.execute(
                "CREATE TEMP TABLE billing_panel ON COMMIT DROP AS "
                "SELECT e.patient_id, (row_number() OVER () - 1)::int8 AS i, "
                "(',' || e.programs || ',' LIKE '%%,RPM,%%')::int::int8 AS rpm, "
                "(',' || e.programs || ',' LIKE '%%,CCM,%%')::int::int8 AS ccm, "
                "(',' || e.programs || ',' LIKE '%%,PCM,%%')::int::int8 AS pcm, "
                "coalesce(cardinality(array_remove(string_to_array(e.conditions, ','), '')), "
                "0)::int8 AS conditions, "
                "coalesce(e.consent_date - DATE '0001-01-01' + 1, -1)::int8 AS consent, "
                "coalesce(e.monitoring_start - DATE '0001-01-01' + 1, -1)::int8 AS started "
                "FROM enrollments e JOIN patients p "
                "ON p.id = e.patient_id AND p.practice_id = e.practice_id "
                "WHERE e.practice_id = %s", (practice_id,))
            ids = [r[0] for r in cur.execute(
                "SELECT patient_id FROM billing_panel ORDER BY i").fetchall()]
            patients = _int8_matrix(cur, "SELECT i, rpm, ccm, pcm, conditions, consent, "
                                    "started FROM billing_panel", (), 7, order="c0")[:, 1:]
            masks = _int8_matrix(
                cur, "SELECT b.i, (m.month - DATE '0001-01-01' + 1)::int8, m.days::int8 "
                "FROM device_day_months m JOIN billing_panel b ON b.patient_id = m.patient_id "
                "WHERE m.practice_id = %s AND m.month >= %s AND m.month <= %s",
                (practice_id, window.replace(day=1), through), 3)
            entries = _int8_matrix(
                cur, "SELECT b.i, CASE t.program WHEN 'RPM' THEN 0 WHEN 'CCM' THEN 1 "
                "ELSE 2 END::int8, (t.performed_by = %s)::int::int8, t.minutes::int8, "
                "t.interactive::int::int8, "
                "((t.started_at AT TIME ZONE %s)::date - DATE '0001-01-01' + 1)::int8 "
                "FROM time_entries t JOIN billing_panel b ON b.patient_id = t.patient_id "
                "WHERE t.practice_id = %s AND t.started_at >= %s AND t.started_at < %s",
                (Performer.PHYSICIAN.value, tz.key, practice_id, entries_from, entries_to), 6)
        day_patient, day = days_of_masks(masks[:, 0], masks[:, 1], masks[:, 2])
        keep = (day >= window.toordinal()) & (day <= through.toordinal())
        return PanelInputs(
            patient_ids=ids, rpm=patients[:, 0] == 1, ccm=patients[:, 1] == 1,
            pcm=patients[:, 2] == 1, n_conditions=patients[:, 3], consent=patients[:, 4],
            monitoring_start=patients[:, 5],
            complex_month=np.zeros(len(ids), dtype=np.bool_),  # not stored yet
            day_patient=day_patient[keep], day=day[keep],
            te_patient=entries[:, 0], te_program=entries[:, 1], te_physician=entries[:, 2] == 1,
            te_minutes=entries[:, 3], te_interactive=entries[:, 4] == 1,
            te_local_day=entries[:, 5])

    def _store_new(self, cur: Any, first: dict[str, Reading],
                   ingested_at: datetime) -> list[Reading]:
        """COPY the batch to a staging table; reading_ids decides which ids are new.

        ``INSERT INTO reading_ids ... ON CONFLICT DO NOTHING RETURNING id`` is
        the uniqueness guard (also against a concurrent worker) and tells in
        one round trip which readings to move into ``readings``.
        """
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS readings_stage "
                    "(LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        with cur.copy(f"COPY readings_stage ({_COLS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_COPY_TYPES)
            for r in first.values():
                copy.write_row(self._reading_row(r, ingested_at))
        cur.execute("INSERT INTO reading_ids (id) SELECT id FROM readings_stage "
                    "ON CONFLICT (id) DO NOTHING RETURNING id")
        new_ids = [row[0] for row in cur.fetchall()]
        if len(new_ids) == len(first):
            cur.execute(f"INSERT INTO readings ({_COLS}) SELECT {_COLS} FROM readings_stage")
        elif new_ids:
            cur.execute(f"INSERT INTO readings ({_COLS}) SELECT {_COLS} FROM readings_stage "
                        "WHERE id = ANY(%s)", (new_ids,))
        cur.execute("TRUNCATE readings_stage")
        return [first[i] for i in new_ids]

    def _after_migrate(self) -> None:
        """Turn readings into a hypertable when TimescaleDB is installed.

        Chunk interval 7 days: a practice of 100,000 patients sending ~4
        readings a day writes ~2.8 M rows a week, so the current chunk and its
        indexes stay well inside memory, and month charts touch 5 chunks.
        Compression and retention policies are used only where the installed
        edition has them (the Apache build reports them unsupported); then
        retention falls back to :meth:`drop_readings_before` (``drop_chunks``).
        """
        with self._tx() as cur:
            cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
            available = cur.fetchone() is not None
        if not available:
            self.timescale = False
            return
        with self._tx() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            cur.execute("SELECT create_hypertable('readings', 'measured_at', "
                        "chunk_time_interval => INTERVAL '7 days', if_not_exists => TRUE, "
                        "migrate_data => TRUE)")
            cur.execute("SELECT current_setting('timescaledb.license', true)")
            row = cur.fetchone()
            self.timescale_license = str(row[0]) if row and row[0] else "unknown"
        self.timescale = True
        self.compression = False
        if self.timescale_license == "apache":
            log.info("TimescaleDB (Apache licence): hypertables and time_bucket in use; "
                     "compression and policies are not available in this edition")
            return
        try:
            with self._tx() as cur:
                cur.execute("ALTER TABLE readings SET (timescaledb.compress, "
                            "timescaledb.compress_segmentby = 'patient_id')")
                cur.execute("SELECT add_compression_policy('readings', INTERVAL '30 days', "
                            "if_not_exists => TRUE)")
            self.compression = True
        except psycopg.Error as exc:
            log.info("TimescaleDB compression unavailable (%s); continuing without it",
                     exc.sqlstate)

    def drop_readings_before(self, cutoff: datetime) -> int:
        """Retention: delete readings measured before ``cutoff`` (drop_chunks on TimescaleDB)."""
        with self._tx() as cur:
            if self.timescale:
                cur.execute("SELECT count(*) FROM drop_chunks('readings', older_than => %s)",
                            (cutoff,))
                row = cur.fetchone()
                return int(row[0]) if row else 0
            cur.execute("DELETE FROM readings WHERE measured_at < %s", (cutoff,))
            return int(cur.rowcount)

    def metric_series(self, patient_id: str, metric: Metric, start: datetime, end: datetime,
                      tz: str) -> list[SeriesPoint]:
        """Daily series computed in the database (``time_bucket`` on TimescaleDB)."""
        col = Metric(metric).value
        bucket = ("time_bucket(INTERVAL '1 day', measured_at, %s)" if self.timescale
                  else "date_trunc('day', measured_at, %s)")
        sql = (f"SELECT {bucket} AS b, count(*), min({col}), max({col}), avg({col}) "
               f"FROM readings WHERE patient_id = %s AND measured_at >= %s AND measured_at < %s"
               f" AND {col} IS NOT NULL GROUP BY b ORDER BY b")
        zone = ZoneInfo(tz)
        with self._tx() as cur:
            cur.execute(sql, (tz, patient_id, start, end))
            return [SeriesPoint(b.astimezone(zone).date(), int(n), float(lo), float(hi),
                                float(mean)) for b, n, lo, hi, mean in cur.fetchall()]

    def close(self) -> None:
        """Close the pool."""
        self._pool.close()
