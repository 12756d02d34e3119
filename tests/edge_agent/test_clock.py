"""Clock arithmetic: offsets, when to set, which offset a record gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from edge_agent.clock import ClockState, current_time_payload, needs_set, observed_offset
from edge_agent.gatt import CurrentTime, decode

TZ = ZoneInfo("America/New_York")
NOW = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)  # 12:00 in New York (EST)


def test_observed_offset_in_hub_zone() -> None:
    assert observed_offset(datetime(2026, 1, 15, 12, 0), NOW, TZ) == 0
    assert observed_offset(datetime(2026, 1, 15, 13, 0, 5), NOW, TZ) == 3605
    assert observed_offset(datetime(2026, 1, 15, 17, 0), NOW, TZ) == 5 * 3600  # device on UTC


def test_needs_set_bound() -> None:
    assert not needs_set(120, 120) and needs_set(-121, 120)


def test_current_time_payload_decodes_to_local_now() -> None:
    ct = decode(0x2A2B, current_time_payload(NOW, TZ))
    assert isinstance(ct, CurrentTime)
    assert ct.date_time.to_datetime() == datetime(2026, 1, 15, 12, 0)
    assert ct.day_of_week == 4  # Thursday


def test_offset_before_and_after_a_set() -> None:
    old = datetime(2026, 1, 15, 13, 0)
    state = ClockState(observed_offset_s=3600, set_at_device_wall=old)
    assert state.offset_for(old - timedelta(days=2)) == 3600  # stamped by the old clock
    assert state.offset_for(old + timedelta(minutes=10)) == 0.0  # stamped after the set
    assert state.offset_for(None) == 3600
    assert ClockState(observed_offset_s=-5).offset_for(old) == -5
