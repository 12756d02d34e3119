"""The durable outbox: idempotent, survives kill -9, caps with a record, reports depth/age."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.outbox import Outbox, QueuedReading
from gateway.model import DeviceKind
from gateway.units import Metric, Unit
from gateway.wire import WireDevice, WireReading, WireValue

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def item(n: int, serial: str = "SN-1", kind: DeviceKind = DeviceKind.BP_CUFF) -> QueuedReading:
    t = T0 + timedelta(minutes=n)
    return QueuedReading(
        device=WireDevice(serial=serial, kind=kind, model="BP-100", manufacturer="Acme",
                          battery=80, clock_offset_s=-12.0),
        reading=WireReading(
            id=f"{kind}-{serial}-{n:08d}", device_time=t.replace(tzinfo=None).isoformat(),
            measured_at=t, clock_offset_s=-12.0, received_at=t + timedelta(seconds=3),
            values=[WireValue(metric=Metric.SYSTOLIC, value=120 + n % 40, unit=Unit.MMHG),
                    WireValue(metric=Metric.DIASTOLIC, value=80, unit=Unit.MMHG),
                    WireValue(metric=Metric.MEAN_ARTERIAL, value=93.3, unit=Unit.MMHG),
                    WireValue(metric=Metric.PULSE, value=71, unit=Unit.PER_MIN)],
        ),
    )


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_idempotent_insert_and_ack(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    assert box.add(item(1)) is True
    assert box.add(item(1)) is False  # repeated first record of a burst
    assert box.add_many([item(1), item(2), item(3)]) == 2
    rows = box.pending()
    assert [r.reading_id for r in rows] == [item(n).id for n in (1, 2, 3)]
    assert box.ack([rows[0].seq, rows[1].seq]) == 2
    assert box.depth() == 1
    assert box.was_published(item(1).id)
    assert (tmp_path / "o.db").stat().st_mode & 0o077 == 0  # health data: owner only
    assert box.add(item(1)) is False  # delivered already: not queued again
    assert [r.reading_id for r in box.pending(after_seq=rows[0].seq)] == [item(3).id]
    box.close()


def test_depth_and_oldest_age(tmp_path: Path) -> None:
    clock = FakeClock()
    box = Outbox(tmp_path / "o.db", clock=clock)
    assert box.stats().depth == 0 and box.oldest_age_s() is None
    box.add(item(1))
    clock.t += 3600
    box.add(item(2))
    clock.t += 60
    stats = box.stats()
    assert stats.depth == 2
    assert stats.oldest_age_s == 3660
    assert stats.dropped_total == 0


def test_cap_keeps_newest_and_records_drop(tmp_path: Path) -> None:
    clock = FakeClock()
    box = Outbox(tmp_path / "o.db", cap=5, clock=clock)
    box.add_many([item(n) for n in range(5)])
    clock.t += 10
    box.add_many([item(n) for n in range(5, 8)])
    assert [r.reading_id for r in box.pending()] == [item(n).id for n in range(3, 8)]
    (drop,) = box.dropped()
    assert drop.count == 3 and drop.at == clock.t
    assert drop.reading_ids == tuple(item(n).id for n in range(3))
    assert "cap 5" in drop.reason
    assert box.stats().dropped_total == 3


def test_state_roundtrip(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.set_state("glucose:SN", {"last_seq": 4})
    box.set_state("glucose:SN", {"last_seq": 5})
    box.set_state("device:A", {"x": 1})
    assert box.get_state("glucose:SN") == {"last_seq": 5}
    assert box.get_state("nope", 7) == 7
    assert box.states("device:") == {"device:A": {"x": 1}}


def test_survives_sigkill_mid_write(tmp_path: Path) -> None:
    """Every id a writer reported committed is present after kill -9; the file is intact."""
    db = tmp_path / "o.db"
    code = f"""
import sys
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_outbox import item
from edge_agent.outbox import Outbox
box = Outbox({str(db)!r})
n = 0
while True:
    box.add(item(n))
    print(n, flush=True)
    n += 1
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    committed = []
    deadline = time.monotonic() + 20
    while len(committed) < 200 and time.monotonic() < deadline:
        committed.append(int(proc.stdout.readline()))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(committed) >= 200
    box = Outbox(db)
    assert box._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {r.reading_id for r in box.pending(limit=1_000_000)}
    assert {item(n).id for n in committed} <= stored
    # and the outbox keeps working after the crash
    assert box.add(item(10**6)) is True


def test_thirty_days_four_devices_size(tmp_path: Path) -> None:
    """30 days x 4 devices x 48 readings/day (every 30 min) fits in a few MB."""
    box = Outbox(tmp_path / "o.db")
    kinds = list(DeviceKind)
    n_per_device = 30 * 48
    for d, kind in enumerate(kinds):
        box.add_many([item(i, serial=f"SN-{d}", kind=kind) for i in range(n_per_device)])
    assert box.depth() == 4 * n_per_device
    box._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = (tmp_path / "o.db").stat().st_size
    per_row = size / box.depth()
    print(f"outbox: {box.depth()} rows, {size / 1e6:.2f} MB, {per_row:.0f} B/row")
    assert per_row < 1200
    assert size < 10_000_000


def test_ack_many_rows_in_chunks(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", cap=10_000)
    box.add_many([item(n) for n in range(1500)])
    assert box.ack([r.seq for r in box.pending(limit=2000)]) == 1500
    assert box.depth() == 0
    box.add_many([item(n) for n in range(1500, 1510)])
    assert box.depth() == 10  # the in-memory count followed the acks
