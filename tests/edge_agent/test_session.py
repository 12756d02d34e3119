"""Device sessions over FakeLink with real GATT bytes: identity, clock, RACP sync, flags."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.gatt.racp import report_all_records, report_count_all, report_records_from
from edge_agent.link import CURRENT_TIME, RACP, FakeLink, LinkError
from edge_agent.outbox import Outbox
from edge_agent.session import DeviceSession, PairedDevice
from gateway.model import DeviceKind, Flag
from gateway.wire import WireReading
from tests.edge_agent.scripted import HubClock, bp, device, glucose, spo2, weight

TZ = ZoneInfo("America/New_York")
START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def hub() -> HubClock:
    return HubClock(START, TZ)


@pytest.fixture
def outbox(tmp_path: Path):
    box = Outbox(tmp_path / "o.db")
    yield box
    box.close()


def readings(box: Outbox) -> list[WireReading]:
    return [WireReading.model_validate_json(r.reading_json) for r in box.pending(limit=10_000)]


def session(box: Outbox, hub: HubClock, kind: DeviceKind, address: str = "AA:01") -> DeviceSession:
    return DeviceSession(PairedDevice(address, kind), box, tz=TZ, now=hub, clock_bound_s=120)


async def test_bp_backlog_wrong_clock_corrected_and_set(outbox: Outbox, hub: HubClock) -> None:
    ahead = 3600.0  # device clock one hour ahead
    dev = device(DeviceKind.BP_CUFF, "AA:01", "BP-0001", hub.wall, offset_s=ahead)
    stamped = [hub.wall() + timedelta(seconds=ahead) - timedelta(hours=h) for h in (5, 3, 1)]
    dev.backlog = [bp(stamped[0]), bp(stamped[1], status=0b001), bp(stamped[2], failed=True)]
    s = session(outbox, hub, DeviceKind.BP_CUFF)
    result = await s.run(FakeLink(dev))
    assert result.serial == "BP-0001" and result.stored == 3 and result.battery == 77
    assert result.clock_offset_s == pytest.approx(ahead)
    assert result.clock_set and dev.writes[0][0] == CURRENT_TIME
    assert abs(dev.clock_offset_s) < 1  # the device clock is right now
    got = readings(outbox)
    for r, wall in zip(got, stamped, strict=True):
        assert r.device_time == wall.isoformat()
        assert r.clock_offset_s == pytest.approx(ahead)
        assert r.measured_at == wall.replace(tzinfo=TZ) - timedelta(seconds=ahead)
        assert Flag.CLOCK_CORRECTED in r.flags
        assert r.received_at == START
    assert Flag.BODY_MOVEMENT in got[1].flags
    failed = got[2]
    assert Flag.MEASUREMENT_UNSUCCESSFUL in failed.flags
    assert all(v.value is None and v.special == "nan" for v in failed.values)
    device_state = outbox.get_state("device:AA:01")["device"]
    assert device_state["serial"] == "BP-0001" and device_state["clock_offset_s"] == ahead


async def test_repeated_first_record_and_resend_stored_once(outbox: Outbox, hub: HubClock) -> None:
    dev = device(DeviceKind.BP_CUFF, "AA:01", "BP-0001", hub.wall)
    dev.backlog = [bp(hub.wall() - timedelta(hours=2)), bp(hub.wall() - timedelta(hours=1))]
    s = session(outbox, hub, DeviceKind.BP_CUFF)
    assert (await s.run(FakeLink(dev))).stored == 2
    hub.advance(hours=1)
    dev.measure(bp(hub.wall(), sys_=140))  # stored on the device: hub not connected
    hub.advance(minutes=5)
    second = await s.run(FakeLink(dev))
    assert second.received == 2 and second.stored == 1  # repeat of the last one deduped
    dev.resend_memory = True
    hub.advance(minutes=5)
    third = await s.run(FakeLink(dev))
    assert third.received == 3 and third.stored == 0
    assert len(readings(outbox)) == 3


async def test_live_reading_while_connected_and_stop(outbox: Outbox, hub: HubClock) -> None:
    dev = device(DeviceKind.SCALE, "AA:02", "SC-1", hub.wall, disconnect_after_backlog=False)
    s = session(outbox, hub, DeviceKind.SCALE, "AA:02")
    stop = asyncio.Event()
    task = asyncio.create_task(s.run(FakeLink(dev), stop))
    for _ in range(5):
        await asyncio.sleep(0)
    dev.measure(weight(hub.wall()))
    dev.measure(weight(hub.wall() + timedelta(seconds=30), kg=None))
    for _ in range(5):
        await asyncio.sleep(0)
    stop.set()
    result = await task
    assert result.stored == 2 and not result.clock_set
    ok, failed = readings(outbox)
    assert ok.values[0].value == 80.5 and ok.values[0].unit == "kg" and ok.flags == []
    assert failed.values[0].value is None and failed.flags == [Flag.MEASUREMENT_UNSUCCESSFUL]


async def test_plx_invalid_flag(outbox: Outbox, hub: HubClock) -> None:
    dev = device(DeviceKind.PULSE_OXIMETER, "AA:03", "OX-1", hub.wall)
    dev.backlog = [spo2(hub.wall(), status=1 << 15), spo2(hub.wall() - timedelta(hours=1),
                                                          status=1 << 14)]
    await session(outbox, hub, DeviceKind.PULSE_OXIMETER, "AA:03").run(FakeLink(dev))
    a, b = readings(outbox)
    assert Flag.DEVICE_INVALID in a.flags and Flag.QUESTIONABLE in b.flags


async def test_glucose_sync_incremental_then_counter_reset(outbox: Outbox, hub: HubClock) -> None:
    dev = device(DeviceKind.GLUCOMETER, "AA:04", "GL-1", hub.wall)
    base = hub.wall() - timedelta(days=3)
    dev.stored = [(n, glucose(n, base + timedelta(hours=n))) for n in range(5)]
    s = session(outbox, hub, DeviceKind.GLUCOMETER, "AA:04")

    first = await s.run(FakeLink(dev))
    assert first.stored == 5
    racp_writes = [d for c, d in dev.writes if c == RACP]
    assert racp_writes == [report_count_all(), report_all_records()]

    dev.stored += [(n, glucose(n, base + timedelta(hours=n))) for n in (5, 6)]
    dev.writes.clear()
    second = await s.run(FakeLink(dev))
    assert [d for c, d in dev.writes if c == RACP] == [report_count_all(), report_records_from(5)]
    assert second.received == 3  # the meter repeated seq 4 first
    assert second.stored == 2 and not second.resynced

    # counter reset and memory cleared: fewer records than before -> full re-sync
    later = hub.wall() - timedelta(hours=2)
    dev.reset_counter()
    dev.stored = [(n, glucose(n, later + timedelta(minutes=n))) for n in range(3)]
    third = await s.run(FakeLink(dev))
    assert third.resynced and third.stored == 3

    # reset again, now more records than before: caught by a known seq with a new time
    dev.reset_counter()
    fresh = hub.wall() - timedelta(minutes=30)
    dev.stored = [(n, glucose(n, fresh + timedelta(seconds=n))) for n in range(10)]
    dev.writes.clear()
    fourth = await s.run(FakeLink(dev))
    assert [d for c, d in dev.writes if c == RACP] == [
        report_count_all(), report_records_from(3), report_all_records()]
    assert fourth.resynced and fourth.stored == 10
    got = readings(outbox)
    assert len(got) == 5 + 2 + 3 + 10 == len({r.id for r in got})
    assert outbox.get_state("glucose:GL-1")["last_seq"] == 9


async def test_connect_failure_is_link_error(outbox: Outbox, hub: HubClock) -> None:
    dev = device(DeviceKind.BP_CUFF, "AA:01", "BP-1", hub.wall, connect_failures=1)
    with pytest.raises(LinkError):
        await session(outbox, hub, DeviceKind.BP_CUFF).run(FakeLink(dev))
    assert (await session(outbox, hub, DeviceKind.BP_CUFF).run(FakeLink(dev))).serial == "BP-1"


async def test_racp_before_subscribe_refused_by_fake(hub: HubClock) -> None:
    dev = device(DeviceKind.GLUCOMETER, "AA:04", "GL-1", hub.wall)
    link = FakeLink(dev)
    await link.connect()
    with pytest.raises(LinkError, match="before subscribing"):
        await link.write(RACP, report_all_records())


class FullDiskOutbox(Outbox):
    def add(self, item):  # type: ignore[override]
        import sqlite3

        raise sqlite3.OperationalError("database or disk is full")


async def test_outbox_failure_ends_session_loudly(tmp_path: Path, hub: HubClock) -> None:
    from edge_agent.session import OutboxWriteError

    box = FullDiskOutbox(tmp_path / "full.db")
    dev = device(DeviceKind.BP_CUFF, "AA:01", "BP-1", hub.wall)
    dev.backlog = [bp(hub.wall())]
    with pytest.raises(OutboxWriteError, match="disk is full"):
        await session(box, hub, DeviceKind.BP_CUFF).run(FakeLink(dev))
    gdev = device(DeviceKind.GLUCOMETER, "AA:04", "GL-1", hub.wall)
    gdev.stored = [(0, glucose(0, hub.wall()))]
    with pytest.raises(OutboxWriteError):
        await session(box, hub, DeviceKind.GLUCOMETER, "AA:04").run(FakeLink(gdev))


async def test_device_without_serial_uses_address(outbox: Outbox, hub: HubClock) -> None:
    from edge_agent.link import SERIAL_NUMBER

    dev = device(DeviceKind.SCALE, "AA:BB:CC:00:11:22", "x", hub.wall)
    del dev.readable[SERIAL_NUMBER]
    dev.backlog = [weight(hub.wall())]
    result = await session(outbox, hub, DeviceKind.SCALE, "AA:BB:CC:00:11:22").run(FakeLink(dev))
    assert result.serial == "addr-aabbcc001122" and result.stored == 1


async def test_bad_battery_and_long_serial_tolerated(outbox: Outbox, hub: HubClock) -> None:
    from edge_agent.link import BATTERY_LEVEL

    dev = device(DeviceKind.SCALE, "AA:05", "S" * 200, hub.wall)
    dev.readable[BATTERY_LEVEL] = bytes([150])  # out of range: not a battery level
    dev.backlog = [weight(hub.wall())]
    result = await session(outbox, hub, DeviceKind.SCALE, "AA:05").run(FakeLink(dev))
    assert result.battery is None and result.serial == "S" * 64 and result.stored == 1
