"""Reading ids are stable across re-sends and restarts, and distinct otherwise."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.identity import reading_id
from gateway.model import DeviceKind

serials = st.text(alphabet="ABCDEF0123456789", min_size=4, max_size=12)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1)).map(
    lambda d: d.replace(microsecond=0).isoformat()
)
decimals = st.decimals(min_value=-2000, max_value=2000, places=1, allow_nan=False).map(str)
value_maps = st.dictionaries(st.sampled_from(["systolic", "diastolic", "pulse", "weight"]),
                             decimals, min_size=1)
kinds = st.sampled_from([DeviceKind.SCALE, DeviceKind.BP_CUFF, DeviceKind.PULSE_OXIMETER])


@given(kinds, serials, value_maps, times)
def test_same_inputs_same_id_any_order(kind, serial, values, t) -> None:
    a = reading_id(kind, serial, values=values, unit="mmHg", device_time=t)
    b = reading_id(kind, serial, values=dict(reversed(list(values.items()))), unit="mmHg",
                   device_time=t)
    assert a == b
    assert a.startswith(f"{kind}-")
    assert len(a) <= 64 and a.isascii() and " " not in a


@given(kinds, serials, value_maps, times, times)
def test_different_time_different_id(kind, serial, values, t1, t2) -> None:
    a = reading_id(kind, serial, values=values, unit="kg", device_time=t1)
    b = reading_id(kind, serial, values=values, unit="kg", device_time=t2)
    assert (a == b) == (t1 == t2)


@given(serials, st.integers(0, 0xFFFF), times, times)
def test_glucose_sequence_and_time(serial, seq, t1, t2) -> None:
    """Sequence + time: a re-sent record matches; a reset counter re-using seq does not."""
    g = DeviceKind.GLUCOMETER
    a = reading_id(g, serial, values={"glucose": "0.00095"}, unit="kg/L", sequence=seq,
                   device_time=t1)
    again = reading_id(g, serial, values={"glucose": "0.00095"}, unit="kg/L", sequence=seq,
                       device_time=t1)
    after_reset = reading_id(g, serial, values={"glucose": "0.00095"}, unit="kg/L",
                             sequence=seq, device_time=t2)
    assert a == again
    assert (a == after_reset) == (t1 == t2)


def test_serial_matters() -> None:
    v = {"weight": "80.5"}
    t = "2026-01-01T08:00:00"
    a1 = reading_id(DeviceKind.SCALE, "A1", values=v, unit="kg", device_time=t)
    a2 = reading_id(DeviceKind.SCALE, "A2", values=v, unit="kg", device_time=t)
    assert a1 != a2


def test_no_device_time_uses_receive_second() -> None:
    v = {"systolic": "120"}
    t = datetime(2026, 3, 1, 8, 0, 0, 100_000, tzinfo=UTC)
    a = reading_id(DeviceKind.BP_CUFF, "S", values=v, unit="mmHg", received_at=t)
    b = reading_id(DeviceKind.BP_CUFF, "S", values=v, unit="mmHg",
                   received_at=t + timedelta(milliseconds=500))
    c = reading_id(DeviceKind.BP_CUFF, "S", values=v, unit="mmHg",
                   received_at=t + timedelta(seconds=1))
    assert a == b != c


def test_stable_across_processes() -> None:
    """No hash randomisation or process state leaks into an id (agent restart)."""
    code = ("from edge_agent.identity import reading_id; from gateway.model import DeviceKind;"
            "print(reading_id(DeviceKind.SCALE, 'SN1', values={'weight': '80.5'}, unit='kg',"
            " device_time='2026-01-01T08:00:00'))")
    here = reading_id(DeviceKind.SCALE, "SN1", values={"weight": "80.5"}, unit="kg",
                      device_time="2026-01-01T08:00:00")
    env = {"PYTHONHASHSEED": "123", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == here
