"""Rules engine alone: evaluations/s on one core and state size per patient.

Synthetic but realistic streams: each patient has 1-2 conditions and sends
2 BP readings a day (HTN), a morning weight (CHF), 2-3 SpO2 (COPD) or 3
glucose readings (DM) for 7 days.  Measures:
- ``step`` throughput over all readings in measured-time order (one process);
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
DAYS = 7
START = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
CONDS = [Condition.HTN, Condition.CHF, Condition.COPD, Condition.DM]


def reading(pid: str, i: int, at: datetime, kind: DeviceKind, values: dict) -> Reading:
    return Reading(id=f"{pid}-{i}", practice_id="p", patient_id=pid, device_serial=f"d{pid}",
                   hub_id=f"h{pid}", kind=kind, measured_at=at, received_at=at,
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

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states = {pid: new_state(pid, "America/New_York", conds, ruleset, now=START)
              for pid, conds in panel}
    findings = 0
    t0 = time.perf_counter()
    lag = timedelta(seconds=2)  # streaming: evaluated moments after measurement
    for r in events:
        _, effects = step(states[r.patient_id], r, r.measured_at + lag)
        findings += len(effects)
    elapsed = time.perf_counter() - t0
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    approx = sum(st.approx_size() for st in states.values()) / N

    # throughput without tracemalloc's overhead, on a fresh set of states
    states = {pid: new_state(pid, "America/New_York", conds, ruleset, now=START)
              for pid, conds in panel}
    t0 = time.perf_counter()
    for r in events:
        step(states[r.patient_id], r, r.measured_at + lag)
    clean = time.perf_counter() - t0
    rate = len(events) / clean

    print("## Rules engine alone\n")
    print(f"{N:,} patients x {DAYS} days, {len(events):,} readings, one process (one core); "
          f"{findings:,} effects (findings + timer requests).\n")
    print("| measure | result | target |")
    print("| --- | --- | --- |")
    print(f"| evaluations per second per core | {rate:,.0f} readings/s | >= 100,000 "
          f"{'(met)' if rate >= 100_000 else '(**missed**)'} |")
    print(f"| state per patient, compact estimate (`approx_size`) | {approx:,.0f} B | "
          f"<= 2,048 B {'(met)' if approx <= 2048 else '(**missed**)'} |")
    print(f"| state per patient, real Python heap (tracemalloc) | {heap / N:,.0f} B | "
          f"<= 2,048 B {'(met)' if heap / N <= 2048 else '(**missed**)'} |")
    print(f"\n(tracemalloc run: {len(events) / elapsed:,.0f} readings/s with tracing on.)")
    print("\nThe compact estimate is what a serialised snapshot would take; the Python heap "
          "is what a worker really holds (dicts, tuples and floats cost more than their "
          "bytes). Idle states are evicted after 6 h (`rules.runtime.IDLE_EVICTION`).\n")


if __name__ == "__main__":
    main()
