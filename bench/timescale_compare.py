"""TimescaleDB vs plain PostgreSQL: batch ingest rate and a 30-day chart query.

Same data, same store code: ``BENCH_TS_PATIENTS`` patients (default 2,000)
with a BP reading every 2 hours for 60 days (~1.4 M readings), inserted with
``Store.add_readings`` in batches of 2,000 (binary COPY + dedupe + rollup), then
the 30-day daily chart of one patient (``metric_series``: ``time_bucket`` on
TimescaleDB, ``date_trunc`` on PostgreSQL), median of 30 runs.  TimescaleDB
comes from ``scripts/timescaledb-dev.sh`` (started here if not running).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.model import DeviceKind, Measurement, Reading
from gateway.store.postgres import PostgresStore
from gateway.units import Metric
from tests.gateway.factories import seed_patient
from tests.support.services import PG_ADMIN_URL, temporary_database

ROOT = Path(__file__).resolve().parent.parent
PATIENTS = int(os.environ.get("BENCH_TS_PATIENTS", "2000"))
DAYS = 60
START = datetime(2026, 1, 1, tzinfo=UTC)


def readings(pid: str) -> list[Reading]:
    out = []
    for h in range(0, DAYS * 24, 2):
        at = START + timedelta(hours=h)
        out.append(Reading(id=f"{pid}-{h}", practice_id="p1", patient_id=pid,
                           device_serial=f"bp-{pid}", hub_id=f"h-{pid}",
                           kind=DeviceKind.BP_CUFF, measured_at=at, received_at=at,
                           measurements=(Measurement(Metric.SYSTOLIC, 120.0 + h % 30),
                                         Measurement(Metric.DIASTOLIC, 80.0 + h % 10))))
    return out


def run(admin_url: str) -> tuple[float, float, int, bool]:
    with temporary_database(admin_url) as url:
        store = PostgresStore(url)
        store.migrate()
        for i in range(PATIENTS):
            seed_patient(store, f"pt{i}")
        batch: list[Reading] = []
        total = 0
        t0 = time.perf_counter()
        for i in range(PATIENTS):
            batch.extend(readings(f"pt{i}"))
            if len(batch) >= 2000:
                store.add_readings(batch, START)
                total += len(batch)
                batch = []
        if batch:
            store.add_readings(batch, START)
            total += len(batch)
        rate = total / (time.perf_counter() - t0)
        end = START + timedelta(days=DAYS)
        times = []
        for _ in range(30):
            t = time.perf_counter()
            series = store.metric_series("pt7", Metric.SYSTOLIC, end - timedelta(days=30), end,
                                         "America/New_York")
            times.append(time.perf_counter() - t)
        assert len(series) in (30, 31)
        ts = store.timescale
        store.close()
        return rate, statistics.median(times) * 1000, total, ts


def main() -> None:
    ts_url = os.environ.get("VITALGATE_TEST_TIMESCALE_URL")
    if not ts_url:
        res = subprocess.run([str(ROOT / "scripts/timescaledb-dev.sh"), "start"],
                             capture_output=True, text=True, check=False)
        ts_url = res.stdout.strip() if res.returncode == 0 else None
    print("plain PostgreSQL...", file=sys.stderr)
    pg = run(PG_ADMIN_URL)
    rows = [("PostgreSQL 15 (plain tables)", pg)]
    if ts_url:
        print("TimescaleDB...", file=sys.stderr)
        rows.append(("PostgreSQL 17 + TimescaleDB 2.19 (Apache build), hypertable", run(ts_url)))
    print("## TimescaleDB vs plain PostgreSQL\n")
    print(f"{PATIENTS:,} patients x {DAYS} days of BP readings every 2 h "
          f"({pg[2]:,} readings), inserted through `Store.add_readings` in batches of "
          "2,000; chart = one patient's 30-day daily series (median of 30).\n")
    print("| store | ingest readings/s | 30-day chart query |")
    print("| --- | --- | --- |")
    for name, (rate, ms, _, _) in rows:
        print(f"| {name} | {rate:,.0f} | {ms:.2f} ms |")
    if not ts_url:
        print("\nTimescaleDB was not available on this machine for this run.")
    print()


if __name__ == "__main__":
    main()
