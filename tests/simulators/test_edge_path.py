"""The whole edge path on simulated devices: GATT bytes -> DeviceSession -> outbox."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.outbox import Outbox
from edge_agent.session import DeviceSession, PairedDevice
from gateway.model import DeviceKind
from gateway.units import Metric
from gateway.wire import decode_readings
from simulators.devices import DeviceClock, SimulatedDevice, make_device
from simulators.fleet import FullPathHub
from simulators.gattlink import SimGattLink
from simulators.physiology import PERFECT, Sample, simulate_patient, stable_profile

NY = "America/New_York"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class Hub:
    """A minimal hub: one outbox, one session per device, a settable clock."""

    def __init__(self, tmp: Path, devices: list[SimulatedDevice]) -> None:
        self.now = T0
        self.outbox = Outbox(tmp / "outbox.db")
        self.devices = {d.kind: d for d in devices}
        self.sessions = {d.kind: DeviceSession(PairedDevice(d.address, d.kind), self.outbox,
                                               tz=ZoneInfo(NY), now=lambda: self.now)
                         for d in devices}

    def sync(self, kind: DeviceKind, at: datetime, **link_kw: object):
        self.now = at
        link = SimGattLink(self.devices[kind], lambda: self.now, **link_kw)  # type: ignore[arg-type]
        return asyncio.run(self.sessions[kind].run(link))

    def readings(self) -> list[dict]:
        return [json.loads(r.reading_json) for r in self.outbox.pending(limit=10_000)]


def s(kind: DeviceKind, at: datetime, **values: float) -> Sample:
    return Sample("pt", at, kind, {Metric(k): v for k, v in values.items()})


def test_every_kind_reaches_the_outbox(tmp_path: Path) -> None:
    p = stable_profile("pt", ["CHF", "DM"], seed=2, adherence=PERFECT, timezone=NY)
    samples = simulate_patient(p, start=date(2026, 3, 2), days=6, seed=2)
    hub = Hub(tmp_path, [make_device(k, f"{k}-1", timezone=NY) for k in p.device_kinds])
    for x in samples:
        hub.devices[x.kind].measure(x)
    end = samples[-1].measured_at + timedelta(minutes=5)
    for kind in p.device_kinds:
        r = hub.sync(kind, end)
        assert r.decode_errors == 0 and r.serial == f"{kind}-1"
    rows = hub.readings()
    assert len(rows) == len(samples)
    assert {r["id"] for r in rows} == {r.reading_id for r in hub.outbox.pending(limit=10_000)}
    # payload-shaped and schema-valid
    for row in hub.outbox.pending(limit=10_000):
        doc = {"schema": "vitalgate.readings/1", "hub_id": "hub-pt",
               "device": json.loads(row.device_json), "readings": [json.loads(row.reading_json)]}
        assert not hasattr(decode_readings(json.dumps(doc)), "reason")


def test_repeated_burst_record_is_deduplicated(tmp_path: Path) -> None:
    scale = make_device(DeviceKind.SCALE, "SC-1", timezone=NY)
    hub = Hub(tmp_path, [scale])
    scale.measure(s(DeviceKind.SCALE, T0, weight=80.0))
    hub.sync(DeviceKind.SCALE, T0 + timedelta(minutes=1))
    scale.measure(s(DeviceKind.SCALE, T0 + timedelta(days=1), weight=80.5))
    r = hub.sync(DeviceKind.SCALE, T0 + timedelta(days=1, minutes=1))
    assert r.received == 2 and r.stored == 1
    assert hub.outbox.depth() == 2


def test_wrong_clock_is_measured_corrected_and_set(tmp_path: Path) -> None:
    bp = make_device(DeviceKind.BP_CUFF, "BP-1", timezone=NY,
                     clock=DeviceClock(offset_s=900))
    hub = Hub(tmp_path, [bp])
    bp.measure(s(DeviceKind.BP_CUFF, T0, systolic=130, diastolic=80, pulse=70))
    r = hub.sync(DeviceKind.BP_CUFF, T0 + timedelta(minutes=2))
    assert r.clock_offset_s == pytest.approx(900, abs=1) and r.clock_set
    (row,) = hub.readings()
    assert "clock_corrected" in row["flags"]
    assert datetime.fromisoformat(row["measured_at"]) == T0
    assert abs(bp.clock.error_s(T0 + timedelta(minutes=2))) < 2  # the hub set it


def test_unset_clock_reading_has_no_measured_time(tmp_path: Path) -> None:
    ox = make_device(DeviceKind.PULSE_OXIMETER, "OX-1", timezone=NY,
                     clock=DeviceClock(unset=True, unset_style="unknown"))
    hub = Hub(tmp_path, [ox])
    ox.measure(s(DeviceKind.PULSE_OXIMETER, T0, spo2=95, pulse=70))
    hub.sync(DeviceKind.PULSE_OXIMETER, T0 + timedelta(hours=3))
    (row,) = hub.readings()
    assert row["measured_at"] is None  # quarantined by the server, never guessed


def test_failed_measurement_kept_as_event(tmp_path: Path) -> None:
    scale = make_device(DeviceKind.SCALE, "SC-1", timezone=NY)
    hub = Hub(tmp_path, [scale])
    scale.measure(None, at=T0, failed=True)
    hub.sync(DeviceKind.SCALE, T0 + timedelta(minutes=1))
    (row,) = hub.readings()
    assert row["values"][0]["value"] is None
    assert "measurement_unsuccessful" in row["flags"]


def test_glucose_racp_sync_and_counter_reset(tmp_path: Path) -> None:
    g = make_device(DeviceKind.GLUCOMETER, "GL-1", timezone=NY)
    hub = Hub(tmp_path, [g])
    for i in range(3):
        g.measure(s(DeviceKind.GLUCOMETER, T0 + timedelta(hours=i), glucose=100 + i))
    r1 = hub.sync(DeviceKind.GLUCOMETER, T0 + timedelta(hours=4))
    assert r1.stored == 3
    g.measure(s(DeviceKind.GLUCOMETER, T0 + timedelta(hours=5), glucose=140))
    r2 = hub.sync(DeviceKind.GLUCOMETER, T0 + timedelta(hours=6))
    assert r2.stored == 1 and not r2.resynced  # only >= last seen + 1 (plus the repeat)
    assert g.connections == 0  # glucometers never push: RACP only
    g.reset_sequence()  # battery change: numbering restarts at 0, memory cleared
    g.measure(s(DeviceKind.GLUCOMETER, T0 + timedelta(days=1), glucose=90))
    g.measure(s(DeviceKind.GLUCOMETER, T0 + timedelta(days=1, hours=1), glucose=95))
    r3 = hub.sync(DeviceKind.GLUCOMETER, T0 + timedelta(days=1, hours=2))
    assert r3.resynced and r3.stored == 2  # the count dropped: everything again
    assert hub.outbox.depth() == 6
    seqs = sorted(row["sequence"] for row in hub.readings())
    assert seqs == [0, 0, 1, 1, 2, 3]


def test_glucose_counter_reset_seen_by_a_known_sequence(tmp_path: Path) -> None:
    g = make_device(DeviceKind.GLUCOMETER, "GL-1", timezone=NY)
    hub = Hub(tmp_path, [g])
    for i in range(4):
        g.measure(s(DeviceKind.GLUCOMETER, T0 + timedelta(hours=i), glucose=100 + i))
    hub.sync(DeviceKind.GLUCOMETER, T0 + timedelta(hours=5))
    g.reset_sequence()
    for i in range(5):  # more records than before: the count did not drop
        g.measure(s(DeviceKind.GLUCOMETER, T0 + timedelta(days=1, hours=i), glucose=120 + i))
    r = hub.sync(DeviceKind.GLUCOMETER, T0 + timedelta(days=1, hours=6))
    # asked for >= 4, got 3 (repeat) with another time than the known 3: re-sync all
    assert r.resynced and r.stored == 5
    assert hub.outbox.depth() == 9


def test_connect_failure_then_success(tmp_path: Path) -> None:
    from edge_agent.link import LinkError

    scale = make_device(DeviceKind.SCALE, "SC-1", timezone=NY)
    hub = Hub(tmp_path, [scale])
    scale.measure(s(DeviceKind.SCALE, T0, weight=70.0))
    with pytest.raises(LinkError):
        hub.sync(DeviceKind.SCALE, T0, connect_failures=1)
    hub.sync(DeviceKind.SCALE, T0)
    assert hub.outbox.depth() == 1


def test_full_path_hub_with_outage_and_failures(tmp_path: Path) -> None:
    p = stable_profile("pt", ["CHF", "DM", "HTN"], seed=4, adherence=PERFECT, timezone=NY)
    samples = simulate_patient(p, start=date(2026, 3, 2), days=8, seed=4)
    hub = FullPathHub("hub-pt", "pt", p.device_kinds, timezone=NY,
                      outbox_path=tmp_path / "o.db", seed=4,
                      clocks={DeviceKind.SCALE: DeviceClock(offset_s=-400)})
    outage = (datetime(2026, 3, 4, tzinfo=UTC), datetime(2026, 3, 7, tzinfo=UTC))
    n = asyncio.run(hub.live(samples, offline=[outage], failed_every=10))
    assert n == len(samples)
    failed = len(samples) // 10
    assert hub.outbox.depth() == len(samples) + failed
    ids = [r.reading_id for r in hub.outbox.pending(limit=10_000)]
    assert len(set(ids)) == len(ids)
    hub.close()


def test_corrupted_notification_is_counted_not_stored(tmp_path: Path) -> None:
    bp = make_device(DeviceKind.BP_CUFF, "BP-1", timezone=NY)
    hub = Hub(tmp_path, [bp])
    bp.measure(s(DeviceKind.BP_CUFF, T0, systolic=130, diastolic=80, pulse=70))
    bp.measure(s(DeviceKind.BP_CUFF, T0 + timedelta(hours=1), systolic=131, diastolic=81,
                 pulse=71))
    bp.truncate_next = 1
    r = hub.sync(DeviceKind.BP_CUFF, T0 + timedelta(hours=2))
    assert r.decode_errors == 1 and r.stored == 1


def test_sim_link_is_a_gatt_link() -> None:
    from edge_agent.link import GattLink

    link = SimGattLink(make_device(DeviceKind.SCALE, "SC-1"), lambda: T0)
    assert isinstance(link, GattLink)
    assert 0x2A9D in link.services and not link.is_connected


def test_device_bytes_are_deterministic() -> None:
    p = stable_profile("det", ["CHF", "DM"], seed=12, adherence=PERFECT)

    def stream() -> list[tuple[int, bytes]]:
        out = []
        devs = {k: make_device(k, f"{k}-d", seed=12, artefact_prob=0.2) for k in p.device_kinds}
        for x in simulate_patient(p, start=date(2026, 3, 2), days=5, seed=12):
            out += devs[x.kind].measure(x, connected=True)
        return out

    assert stream() == stream()
