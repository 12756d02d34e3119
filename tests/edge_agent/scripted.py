"""Scripted BLE devices built from real GATT bytes (simulators.gatt_encoders)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from edge_agent.gatt import (
    BloodPressureMeasurement,
    DateTime,
    GlucoseMeasurement,
    PlxSpotCheck,
    Special,
    WeightMeasurement,
)
from edge_agent.link import (
    BATTERY_LEVEL,
    FIRMWARE_REVISION,
    MANUFACTURER_NAME,
    MODEL_NUMBER,
    SERIAL_NUMBER,
    ScriptedDevice,
)
from edge_agent.session import MEASUREMENT_CHAR
from gateway.model import DeviceKind
from gateway.units import Unit
from simulators.gatt_encoders import (
    encode_blood_pressure_measurement,
    encode_glucose_measurement,
    encode_plx_spot_check,
    encode_weight_measurement,
)


def dt(wall: datetime) -> DateTime:
    return DateTime(wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second)


def bp(wall: datetime | None, sys_: int = 120, dia: int = 80, pulse: int = 70,
       status: int | None = None, failed: bool = False) -> bytes:
    nan = Special.NAN
    return encode_blood_pressure_measurement(BloodPressureMeasurement(
        unit=Unit.MMHG,
        systolic=nan if failed else Decimal(sys_),
        diastolic=nan if failed else Decimal(dia),
        mean_arterial=nan if failed else Decimal((sys_ + 2 * dia) // 3),
        timestamp=None if wall is None else dt(wall),
        pulse=nan if failed else Decimal(pulse),
        status=status,
    ))


def weight(wall: datetime, kg: str | None = "80.5") -> bytes:
    return encode_weight_measurement(WeightMeasurement(
        unit=Unit.KG, weight=None if kg is None else Decimal(kg), timestamp=dt(wall)))


def spo2(wall: datetime, pct: int = 97, pr: int = 66, status: int | None = None) -> bytes:
    return encode_plx_spot_check(PlxSpotCheck(
        spo2=Decimal(pct), pulse_rate=Decimal(pr), timestamp=dt(wall), measurement_status=status))


def glucose(seq: int, wall: datetime, mg_dl: int = 95) -> bytes:
    return encode_glucose_measurement(GlucoseMeasurement(
        sequence=seq, base_time=dt(wall), unit=Unit.KG_L, time_offset=0,
        concentration=Decimal(mg_dl).scaleb(-5), sample_type=1, sample_location=1))


def device(kind: DeviceKind, address: str, serial: str, wall_clock: Callable[[], datetime],
           offset_s: float = 0.0, **kw: object) -> ScriptedDevice:
    readable = {SERIAL_NUMBER: serial.encode(), MANUFACTURER_NAME: b"Acme",
                MODEL_NUMBER: f"{kind}-1".encode(), FIRMWARE_REVISION: b"1.0",
                BATTERY_LEVEL: bytes([77])}
    return ScriptedDevice(address=address, measurement_char=MEASUREMENT_CHAR[kind],
                          readable=readable, wall_clock=wall_clock, clock_offset_s=offset_s,
                          **kw)  # type: ignore[arg-type]


class HubClock:
    """The hub's clock (aware UTC), moved by tests; also gives device wall time."""

    def __init__(self, start: datetime, tz) -> None:
        self.t = start
        self.tz = tz

    def __call__(self) -> datetime:
        return self.t

    def wall(self) -> datetime:
        return self.t.astimezone(self.tz).replace(tzinfo=None)

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)
