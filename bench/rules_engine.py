"""Rules engine alone: evaluations/s on one core and state size per patient.

Synthetic but realistic streams: each patient has 1-2 conditions and sends
2 BP readings a day (HTN), a morning weight (CHF), 2-3 SpO2 (COPD) or 3
glucose readings (DM) for 7 days.  Measures:
- ``step`` throughput over all readings in measured-time order (one process),
  ``BENCH_PASSES`` passes (default 3) from empty states, the median reported;
- state size per patient two ways: the engine's compact-serialisation
  estimate (``approx_size``) and the real Python heap (tracemalloc);
Prints a markdown section.  ``BENCH_PATIENTS`` sets the panel (default 100,000).
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from gateway.model import Condition, DeviceKind, Measurement, Reading
from gateway.units import Metric
from rules.definitions import load_defaults
from rules.engine import new_state, step

N = int(os.environ.get("BENCH_PATIENTS", "100000"))
PASSES = int(os.environ.get("BENCH_PASSES", "3"))
MEM_SAMPLE = 10_000
DAYS = 7
START = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
CONDS = [Condition.HTN, Condition.CHF, Condition.COPD, Condition.DM]


def reading(pid: str, i: int, at: datetime, kind: DeviceKind, values: dict) -> Reading:
    return Reading(id=f"{pid}-{i}", practice_id="p", patient_id=pid, device_serial=f"d{pid}",
                   hub_id=f"h{pid}", kind=kind, measured_at=at, received_at=at,
                   ingested_at=at + timedelta(seconds=1),  # as the runtime sees stored readings
                   measurements=tuple(Measurement(m, v) for m, v in values.items()))


def stream(pid: str, conds: list[Condition], rng: random.Random) -> list[Reading]:
    out: list[Reading] = []
    base_w = rng.uniform(60, 110)
    for d in range(DAYS):
        day = START + timedelta(days=d)
        if Condition.CHF in conds:
            out.append(reading(pid, len(out), day, DeviceKind.SCALE,
                               {Metric.WEIGHT: base_w + rng.gauss(0, 0.4)}))
        if Condition.HTN in conds:
            for h in (0, 12):
                out.append(reading(pid, len(out), day + timedelta(hours=h), DeviceKind.BP_CUFF,
                                   {Metric.SYSTOLIC: rng.gauss(135, 12),
                                    Metric.DIASTOLIC: rng.gauss(84, 8),
                                    Metric.PULSE: rng.gauss(72, 8)}))
        if Condition.COPD in conds:
            for h in (1, 7, 13):
                out.append(reading(pid, len(out), day + timedelta(hours=h),
                                   DeviceKind.PULSE_OXIMETER,
                                   {Metric.SPO2: min(100, rng.gauss(93, 2)),
                                    Metric.PULSE: rng.gauss(80, 8)}))
        if Condition.DM in conds:
            for h in (0, 5, 11):
                out.append(reading(pid, len(out), day + timedelta(hours=h), DeviceKind.GLUCOMETER,
                                   {Metric.GLUCOSE: max(40, rng.gauss(150, 45))}))
    return out


def calibrate() -> float:
    """Seconds for a fixed pure-Python loop (best of 3): how fast this machine runs Python now.

    The machine is shared and its speed drifts between hours and days; the
    figure lets rows measured at different times be compared.
    """
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    rng = random.Random(1)
    ruleset = load_defaults()
    panel = []
    for i in range(N):
        conds = rng.sample(CONDS, rng.choice([1, 2]))
        panel.append((f"p{i}", conds))
    streams = {pid: stream(pid, conds, rng) for pid, conds in panel}
    events = sorted((r for s in streams.values() for r in s), key=lambda r: r.measured_at)
    print(f"{len(events):,} readings for {N:,} patients", file=sys.stderr)

    lag = timedelta(seconds=2)  # streaming: evaluated moments after measurement

    # throughput on the whole panel: PASSES passes from empty states, median reported
    cal_before = calibrate()
    rates = []
    for _ in range(PASSES):
        states = {pid: new_state(pid, "America/New_York", conds, ruleset, now=START)
                  for pid, conds in panel}
        gc.collect()
        findings = 0
        t0 = time.perf_counter()
        for r in events:
            _, effects = step(states[r.patient_id], r, r.measured_at + lag)
            findings += len(effects)
        rates.append(len(events) / (time.perf_counter() - t0))
        print(f"pass {len(rates)}: {rates[-1]:,.0f} readings/s", file=sys.stderr)
    rate = sorted(rates)[len(rates) // 2]
    cal_after = calibrate()
    approx = sum(st.approx_size() for st in states.values()) / N
    del states

    # real heap per patient on a sample (tracemalloc slows evaluation ~10x)
    sample = panel[:MEM_SAMPLE]
    sample_ids = {pid for pid, _ in sample}
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states = {pid: new_state(pid, "America/New_York", conds, ruleset, now=START)
              for pid, conds in sample}
    for r in events:
        if r.patient_id in sample_ids:
            step(states[r.patient_id], r, r.measured_at + lag)
    gc.collect()
    heap = (tracemalloc.get_traced_memory()[0] - before) / len(sample)
    tracemalloc.stop()
    del states

    print("rebuilding from PostgreSQL...", file=sys.stderr)
    took, n_states, n_rows = rebuild_from_store(panel, streams)

    def verdict(ok: bool) -> str:
        return "(met)" if ok else "(**missed**)"

    print("## Rules engine alone\n")
    print(f"{N:,} patients x {DAYS} days, {len(events):,} readings, one process (one core); "
          f"{findings:,} effects (findings + timer requests).\n")
    print("| measure | result | target |")
    print("| --- | --- | --- |")
    each = ", ".join(f"{x:,.0f}" for x in rates)
    print(f"| evaluations per second per core (median of {len(rates)} passes: {each}) | "
          f"{rate:,.0f} readings/s | >= 100,000 {verdict(rate >= 100_000)} |")
    print(f"| state per patient, compact estimate (`approx_size`) | {approx:,.0f} B | "
          f"<= 2,048 B {verdict(approx <= 2048)} |")
    print(f"| state per patient, real Python heap (tracemalloc, {len(sample):,} patients) | "
          f"{heap:,.0f} B | <= 2,048 B {verdict(heap <= 2048)} |")
    target = verdict(took <= 30) if N >= 100_000 else "(panel smaller than the target's)"
    print(f"| rebuild every state from PostgreSQL (`RulesRuntime.warm`: {n_states:,} patients, "
          f"{n_rows:,} readings) | {took:.1f} s | <= 30 s for 100,000 {target} |")
    print(f"\nCPU calibration: a fixed pure-Python loop (5 M additions, best of 3) took "
          f"{cal_before * 1000:,.0f} ms just before the throughput passes and "
          f"{cal_after * 1000:,.0f} ms just after (lower is faster). It times arithmetic only: "
          "the throughput run also leans on caches and memory, which other tenants of this "
          "shared machine load, so it is a rough guide to the machine's state (runs of the "
          "same code on one day have differed by 30 %), not a correction factor.\n")
    print("The compact estimate is what a serialised snapshot would take; the Python heap "
          "is what a worker really holds (dicts, tuples and floats cost more than their "
          "bytes). Idle states are evicted after 6 h (`rules.runtime.IDLE_EVICTION`).\n")


def rebuild_from_store(panel: list, streams: dict) -> tuple[float, int, int]:
    """Time RulesRuntime.warm for the whole panel from a PostgreSQL store."""
    from gateway.model import Practice
    from gateway.store import open_store
    from gateway.store.postgres import _COPY_TYPES
    from gateway.store.sql import READING_COLUMNS
    from rules.runtime import RulesRuntime
    from tests.support.services import temporary_database

    now = START + timedelta(days=DAYS)
    with temporary_database() as url:
        store = open_store(url)
        store.migrate()
        store.upsert_practice(Practice("p", "Bench", "America/New_York"))
        rows = 0
        with store._tx() as cur:  # type: ignore[attr-defined]
            with cur.copy("COPY patients (id, practice_id, mrn, given_name, family_name, "
                          "birth_date, timezone) FROM STDIN") as cp:
                for pid, _ in panel:
                    cp.write_row((pid, "p", pid, "A", "B", None, "America/New_York"))
            with cur.copy("COPY enrollments (patient_id, practice_id, programs, conditions, "
                          "consent_date, supervising_physician_id, monitoring_start, active) "
                          "FROM STDIN") as cp:
                for pid, conds in panel:
                    cp.write_row((pid, "p", "RPM", ",".join(c.value for c in conds), None, None,
                                  None, True))
            cols = ", ".join(READING_COLUMNS)
            with cur.copy(f"COPY readings ({cols}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(_COPY_TYPES)
                for stream in streams.values():
                    for r in stream:
                        cp.write_row(store._reading_row(r, r.ingested_at or r.measured_at))  # type: ignore[attr-defined]
                        rows += 1
        with store._tx() as cur:  # type: ignore[attr-defined]
            cur.execute("ANALYZE readings")
        runtime = RulesRuntime(store, clock=lambda: now)
        t0 = time.perf_counter()
        n = runtime.warm("p", now)
        elapsed = time.perf_counter() - t0
        store.close()
    return elapsed, n, rows


if __name__ == "__main__":
    main()
