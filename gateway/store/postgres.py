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
from itertools import repeat
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


def _packed(cur: Any, select: str, params: tuple[Any, ...], columns: int,
            sep: str) -> tuple[list[str], npt.NDArray[np.int64]]:
    """Rows of ``select`` -- a text key, then ``columns`` non-null bigints -- as the list
    of keys and an (n, columns) array, in the same row order.  PostgreSQL aggregates
    the keys into one text (joined by ``sep``) and the numbers into one ``bytea``
    (``int8send``: 8 bytes big-endian each), read in binary."""
    names = [f"c{k}" for k in range(columns)]
    packed = " || ".join(f"int8send({n})" for n in names)
    # no ORDER BY: the aggregates of one query advance together, row by row, so the
    # keys and the numbers come out in the same (scan) order without sorting
    row = cur.execute(f"SELECT count(*), string_agg(key, %s), "
                      f"string_agg({packed}, ''::bytea) "
                      f"FROM ({select}) AS s(key, {', '.join(names)})", (sep, *params),
                      binary=True).fetchone()
    n = int(row[0])
    if n == 0:
        return [], np.zeros((0, columns), dtype=np.int64)
    keys = str(row[1]).split(sep)
    if len(keys) != n:
        raise ValueError(f"an id contains the separator {sep!r}")
    values = np.frombuffer(bytes(row[2]), dtype=">i8").astype(np.int64).reshape(n, columns)
    return keys, values


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

    def _epoch_sql(self, column: str) -> str:
        # numeric seconds with 6 decimals, correctly rounded to float8: the same double
        # as Python's datetime.timestamp() of the value
        return f"extract(epoch FROM {column})::float8"

    def billing_panel_inputs(self, practice_id: str, *, window: date, through: date,
                             month: date, entries_from: datetime, entries_to: datetime,
                             tz: ZoneInfo) -> PanelInputs:
        """The same arrays as the generic path, computed by PostgreSQL and packed into
        a few values per query (ids joined by a separator, numbers as ``int8send``
        bytes), read straight into numpy: no Python object per row for the ~400,000
        rows of a 100,000-patient month end."""
        sep = "\x1f"  # unit separator: never in an id (ids are checked where they enter)
        with self._tx() as cur:
            cur.execute("SET LOCAL work_mem = '64MB'")
            ids_text, patients = _packed(cur, (
                "SELECT e.patient_id, "
                "(',' || e.programs || ',' LIKE '%%,RPM,%%')::int::int8, "
                "(',' || e.programs || ',' LIKE '%%,CCM,%%')::int::int8, "
                "(',' || e.programs || ',' LIKE '%%,PCM,%%')::int::int8, "
                "coalesce(cardinality(array_remove(string_to_array(e.conditions, ','), '')), "
                "0)::int8, "
                "coalesce(e.consent_date - DATE '0001-01-01' + 1, -1)::int8, "
                "coalesce(e.monitoring_start - DATE '0001-01-01' + 1, -1)::int8 "
                "FROM enrollments e JOIN patients p "
                "ON p.id = e.patient_id AND p.practice_id = e.practice_id "
                "WHERE e.practice_id = %s"), (practice_id,), 6, sep)
            mask_ids, masks = _packed(cur, (
                "SELECT patient_id, (month - DATE '0001-01-01' + 1)::int8, days::int8 "
                "FROM device_day_months WHERE practice_id = %s AND month >= %s "
                "AND month <= %s"), (practice_id, window.replace(day=1), through), 2, sep)
            entry_ids, entries = _packed(cur, (
                "SELECT patient_id, CASE program WHEN 'RPM' THEN 0 WHEN 'CCM' THEN 1 "
                "ELSE 2 END::int8, (performed_by = %s)::int::int8, minutes::int8, "
                "interactive::int::int8, "
                "((started_at AT TIME ZONE %s)::date - DATE '0001-01-01' + 1)::int8 "
                "FROM time_entries WHERE practice_id = %s AND started_at >= %s "
                "AND started_at < %s"),
                (Performer.PHYSICIAN.value, tz.key, practice_id, entries_from, entries_to),
                5, sep)
        index = {pid: i for i, pid in enumerate(ids_text)}
        mask_patient = np.array(list(map(index.get, mask_ids, repeat(-1))), dtype=np.int64)
        entry_patient = np.array(list(map(index.get, entry_ids, repeat(-1))), dtype=np.int64)
        day_patient, day = days_of_masks(mask_patient, masks[:, 0], masks[:, 1])
        keep = (day_patient >= 0) & (day >= window.toordinal()) & (day <= through.toordinal())
        known = entry_patient >= 0
        entries = entries[known]
        return PanelInputs(
            patient_ids=ids_text, rpm=patients[:, 0] == 1, ccm=patients[:, 1] == 1,
            pcm=patients[:, 2] == 1, n_conditions=patients[:, 3], consent=patients[:, 4],
            monitoring_start=patients[:, 5],
            complex_month=self._complex_month_mask(practice_id, month, index),
            day_patient=day_patient[keep], day=day[keep],
            te_patient=entry_patient[known], te_program=entries[:, 0],
            te_physician=entries[:, 1] == 1, te_minutes=entries[:, 2],
            te_interactive=entries[:, 3] == 1, te_local_day=entries[:, 4])

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
