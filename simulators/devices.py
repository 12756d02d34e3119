"""BLE health devices simulated down to the bytes they put on the air.

How this works
--------------
A :class:`SimulatedDevice` is a small GATT server without a radio: the
patient :meth:`~SimulatedDevice.measure`\\ s (a :class:`~simulators.physiology.Sample`
or a failed attempt), the device stamps the record with *its own* clock and
keeps it in a bounded memory; a hub then talks to it through three calls
that mirror what a central does over GATT:

* :meth:`~SimulatedDevice.read` (uuid16) -> bytes: device information,
  battery level, feature characteristics;
* :meth:`~SimulatedDevice.connect` -> notifications: the backlog a scale,
  BP cuff or oximeter indicates on connection (the first record of a new
  burst repeats the last record of the previous one, as real devices do);
* :meth:`~SimulatedDevice.write` (uuid16, bytes) -> notifications: writing
  Current Time / Date Time sets the device clock; the glucometer answers
  RACP requests (report records >= sequence, report count, all records)
  with its measurements, contexts and a response code.

Every value is produced by :mod:`simulators.gatt_encoders`, the inverse of
the edge decoders, so the bytes are what a conforming device sends.  Device
behaviours tests need are explicit knobs: clock offset, drift and an unset
clock (:class:`DeviceClock`), failed measurements (NaN / 0xFFFF), battery
drain, a glucose sequence reset, artefact status bits, the choice of units.
:class:`DeviceSet` keeps a patient's devices by address and kind;
:class:`simulators.gattlink.SimGattLink` puts one device behind the edge
agent's :class:`~edge_agent.link.GattLink` seam.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np

from edge_agent.gatt import blood_pressure as bpc
from edge_agent.gatt import device as dev
from edge_agent.gatt import glucose as glc
from edge_agent.gatt import plx as plxc
from edge_agent.gatt import racp
from edge_agent.gatt import times as tim
from edge_agent.gatt import weight as wsc
from edge_agent.gatt.blood_pressure import BloodPressureMeasurement, IntermediateCuffPressure
from edge_agent.gatt.glucose import GlucoseMeasurement, GlucoseMeasurementContext
from edge_agent.gatt.numbers import Number, Special
from edge_agent.gatt.plx import PlxContinuous, PlxFeatures, PlxSpotCheck
from edge_agent.gatt.times import DateTime
from edge_agent.gatt.weight import (
    BodyCompositionMeasurement,
    WeightMeasurement,
    WeightScaleFeature,
)
from gateway.model import DeviceKind
from gateway.units import Metric, Unit, convert
from simulators import gatt_encoders as enc
from simulators.physiology import Sample

#: (characteristic uuid16, value bytes) as delivered by a notification/indication.
Notification = tuple[int, bytes]

# GATT service uuid16s (BLE.md)
WEIGHT_SCALE_SERVICE = 0x181D
BODY_COMPOSITION_SERVICE = 0x181B
BLOOD_PRESSURE_SERVICE = 0x1810
PULSE_OXIMETER_SERVICE = 0x1822
GLUCOSE_SERVICE = 0x1808
DEVICE_INFORMATION_SERVICE = 0x180A
BATTERY_SERVICE = 0x180F

#: Records a device keeps before overwriting the oldest (typical meters: 100-500).
DEFAULT_CAPACITY = 300
#: Battery percentage lost per measurement (a coin cell lasts ~500 measurements).
DEFAULT_DRAIN = 0.2
#: At or below this the glucometer flags "device battery low" (CLINICAL.md: <= 15 %).
LOW_BATTERY = 15
#: Glucometer range: outside it the meter reports LO / HI instead of a number.
GLUCOSE_LO_MG_DL = 20
GLUCOSE_HI_MG_DL = 600
#: An unset clock counts from this instant at power-on (a common firmware default).
UNSET_EPOCH = datetime(2000, 1, 1)  # noqa: DTZ001 - a device wall clock has no zone
UNSET_EPOCH_1970 = datetime(1970, 1, 1)  # noqa: DTZ001 - firmware counting from the Unix epoch


class DeviceSimulationError(Exception):
    """A request the simulated device cannot serve (unknown characteristic, bad write)."""

    def __init__(self, serial: str, characteristic: int, reason: str) -> None:
        self.serial, self.characteristic, self.reason = serial, characteristic, reason
        super().__init__(f"{serial} 0x{characteristic:04X}: {reason}")


# --------------------------------------------------------------------------- clock

@dataclass(slots=True)
class DeviceClock:
    """The device's idea of local wall time.

    ``offset_s`` is device minus true local time when the clock was last set
    (``set_at``, true UTC); ``drift_ppm`` adds error as time passes.  An
    ``unset`` clock either counts from :data:`UNSET_EPOCH` since ``power_on``
    (``unset_style="epoch2000"``) or reports the year/month/day as unknown
    (``"unknown"``).
    """

    offset_s: float = 0.0
    drift_ppm: float = 0.0
    unset: bool = False
    unset_style: str = "epoch2000"
    power_on: datetime | None = None
    set_at: datetime | None = None

    def error_s(self, true_utc: datetime) -> float:
        """Seconds the (set) clock is ahead of true local time at ``true_utc``."""
        since = (true_utc - self.set_at).total_seconds() if self.set_at else 0.0
        return self.offset_s + since * self.drift_ppm / 1e6

    def now(self, true_utc: datetime, tz: ZoneInfo) -> DateTime:
        """The Date Time the device stamps at true instant ``true_utc``."""
        if self.unset:
            if self.unset_style == "unknown":
                local = true_utc.astimezone(tz)
                return DateTime(0, 0, 0, local.hour, local.minute, local.second)
            if self.unset_style == "garbage":
                return DateTime(1000, 13, 32, 24, 60, 60)
            start = self.power_on or true_utc
            epoch = UNSET_EPOCH_1970 if self.unset_style == "epoch1970" else UNSET_EPOCH
            naive = epoch + (true_utc - start)
        else:
            local = true_utc.astimezone(tz).replace(tzinfo=None)
            naive = local + timedelta(seconds=round(self.error_s(true_utc)))
        return DateTime(naive.year, naive.month, naive.day, naive.hour, naive.minute,
                        naive.second)

    def set(self, device_time: DateTime, true_utc: datetime, tz: ZoneInfo) -> None:
        """The hub wrote ``device_time`` at ``true_utc``: the clock now reads it."""
        written = device_time.to_datetime()
        if written is None:
            return
        local = true_utc.astimezone(tz).replace(tzinfo=None)
        self.offset_s = (written - local).total_seconds()
        self.unset = False
        self.set_at = true_utc


def date_time_of(local: datetime) -> DateTime:
    """A Date Time value for a naive or aware local datetime (seconds kept)."""
    return DateTime(local.year, local.month, local.day, local.hour, local.minute, local.second)


# --------------------------------------------------------------------------- records

@dataclass(frozen=True, slots=True)
class Record:
    """One stored measurement: true time, device time stamp, values (canonical).

    ``values`` is empty for a failed measurement.  ``status`` carries the
    profile's status bits (BP measurement status, PLX measurement status,
    glucose sensor status) chosen when the measurement was taken.
    """

    true_at: datetime
    device_time: DateTime
    values: dict[Metric, float]
    sequence: int = 0
    status: int | None = None
    device_status: int | None = None
    context: str = ""
    battery: int = 100
    clock_unset: bool = False

    @property
    def failed(self) -> bool:
        """True when the device could not measure (NaN / 0xFFFF on the air)."""
        return not self.values


def _dec(value: float, places: int) -> Decimal:
    q = Decimal(1).scaleb(-places)
    return Decimal(repr(float(value))).quantize(q)


class SimulatedDevice:
    """Base of the four device simulators (see the module note)."""

    kind: DeviceKind
    service: int
    measurement_uuid: int

    def __init__(self, serial: str, *, timezone: str = "America/New_York",
                 clock: DeviceClock | None = None, battery: float = 100.0,
                 drain: float = DEFAULT_DRAIN, capacity: int = DEFAULT_CAPACITY,
                 repeat_last: bool = True, artefact_prob: float = 0.0, seed: int = 0,
                 model: str = "", manufacturer: str = "Vitalgate Simulators",
                 firmware: str = "1.0.0", address: str | None = None,
                 info_raw: dict[int, bytes] | None = None,
                 battery_raw: bytes | None = None) -> None:
        self.serial = serial
        self.tz = ZoneInfo(timezone)
        self.clock = clock or DeviceClock()
        self.battery = battery
        self.drain = drain
        self.capacity = capacity
        self.repeat_last = repeat_last
        self.artefact_prob = artefact_prob
        self.seed = seed
        self.rng = np.random.default_rng([seed, sum(serial.encode())])
        self.model = model or type(self).__name__
        self.manufacturer = manufacturer
        self.firmware = firmware
        self.address = address or _address(serial)
        self.records: list[Record] = []
        self.sent = 0  # records[:sent] were delivered (indicate devices)
        self.connections = 0
        #: Faults: raw Device Information bytes (NUL padding, bad UTF-8), a raw
        #: battery value (a firmware reporting 0xFF or two bytes), and the number of
        #: upcoming measurement notifications to truncate by one byte (radio/firmware).
        self.info_raw = dict(info_raw or {})
        self.battery_raw = battery_raw
        self.truncate_next = 0

    # -- patient side ---------------------------------------------------------
    def measure(self, sample: Sample | None, at: datetime | None = None, *,
                failed: bool = False, connected: bool = False) -> list[Notification]:
        """The patient takes a measurement (``sample`` values, or a failed attempt).

        The record is stored; if the hub is ``connected`` the live
        notifications (intermediate cuff pressure, continuous SpO2, then the
        measurement) are returned and the record counts as delivered.
        """
        when = at or (sample.measured_at if sample else None)
        if when is None:
            raise ValueError("a failed measurement needs its time (at=...)")
        values = {} if failed or sample is None else dict(sample.values)
        rec = self._new_record(when, values, sample.context if sample else "")
        self._store(rec)
        self.battery = max(0.0, self.battery - self.drain)
        if not connected:
            return []
        out = self._live(rec) + self._encode(rec)
        self.sent = len(self.records)
        return self._faulty(out)

    def _faulty(self, notes: list[Notification]) -> list[Notification]:
        """Apply pending truncation faults to measurement notifications."""
        if not self.truncate_next:
            return notes
        out: list[Notification] = []
        for uuid, data in notes:
            if self.truncate_next and uuid == self.measurement_uuid:
                self.truncate_next -= 1
                data = data[:-1]
            out.append((uuid, data))
        return out

    def _new_record(self, when: datetime, values: dict[Metric, float], context: str) -> Record:
        return Record(when.astimezone(UTC), self.clock.now(when, self.tz), values,
                      status=self._status_bits(values), context=context,
                      battery=int(self.battery), clock_unset=self.clock.unset)

    def _status_bits(self, values: dict[Metric, float]) -> int | None:
        return None

    def _store(self, rec: Record) -> None:
        self.records.append(rec)
        if len(self.records) > self.capacity:
            drop = len(self.records) - self.capacity
            del self.records[:drop]
            self.sent = max(0, self.sent - drop)

    # -- hub side -------------------------------------------------------------
    def characteristics(self) -> dict[int, int]:
        """Characteristic uuid16 -> service uuid16 of everything this device exposes."""
        out = dict.fromkeys(dev.DEVICE_INFO_STRINGS, DEVICE_INFORMATION_SERVICE)
        out[dev.BATTERY_LEVEL] = BATTERY_SERVICE
        out[self.measurement_uuid] = self.service
        out[tim.CURRENT_TIME] = self.service
        return out

    def read(self, uuid: int, now: datetime | None = None) -> bytes:
        """Value of a readable characteristic (``now``, true UTC, for Current Time)."""
        texts = {dev.MANUFACTURER_NAME: self.manufacturer, dev.MODEL_NUMBER: self.model,
                 dev.SERIAL_NUMBER: self.serial, dev.FIRMWARE_REVISION: self.firmware}
        if uuid in self.info_raw:
            return self.info_raw[uuid]
        if uuid in texts:
            return enc.encode_device_information_string(texts[uuid])
        if uuid == dev.BATTERY_LEVEL:
            if self.battery_raw is not None:
                return self.battery_raw
            return enc.encode_battery_level(int(self.battery))
        if uuid == tim.CURRENT_TIME and now is not None:
            return self._current_time(now)
        raise DeviceSimulationError(self.serial, uuid, "not readable"
                                    + (" without the time" if uuid == tim.CURRENT_TIME else ""))

    def _current_time(self, now: datetime) -> bytes:
        dt = self.clock.now(now, self.tz)
        dow = 0 if dt.year == 0 else (dt.to_datetime() or UNSET_EPOCH).isoweekday()
        return enc.encode_current_time(tim.CurrentTime(dt, dow, 0, 0))

    def write(self, uuid: int, data: bytes, now: datetime) -> list[Notification]:
        """A write from the hub; returns the notifications it causes."""
        if uuid == tim.CURRENT_TIME:
            self.clock.set(tim.decode_current_time(data).date_time, now, self.tz)
            return []
        if uuid == tim.DATE_TIME:
            self.clock.set(tim.decode_date_time(data), now, self.tz)
            return []
        raise DeviceSimulationError(self.serial, uuid, "not writable")

    def connect(self, now: datetime | None = None) -> list[Notification]:
        """The hub connected and subscribed: indicate the backlog (oldest first)."""
        self.connections += 1
        start = self.sent
        if self.repeat_last and start > 0 and start < len(self.records):
            start -= 1  # the first record of a new burst repeats the last one sent
        out: list[Notification] = []
        for rec in self.records[start:]:
            out.extend(self._encode(rec))
        self.sent = len(self.records)
        return self._faulty(out)

    def record_rng(self, rec: Record) -> np.random.Generator:
        """Randomness tied to one record, so re-sending it gives the same bytes."""
        return np.random.default_rng([self.seed, int(rec.true_at.timestamp())])

    @property
    def pending(self) -> int:
        """Records not yet delivered."""
        return len(self.records) - self.sent

    # -- encoding (per profile) ------------------------------------------------
    def _live(self, rec: Record) -> list[Notification]:
        return []

    def _encode(self, rec: Record) -> list[Notification]:
        raise NotImplementedError

    def decimal_values(self, rec: Record) -> dict[Metric, Decimal]:
        """The record's values as the device would transmit them (its unit, resolution)."""
        raise NotImplementedError


def _address(serial: str) -> str:
    h = 0
    for ch in serial.encode():
        h = (h * 131 + ch) & 0xFFFFFFFFFFFF
    return ":".join(f"{(h >> s) & 0xFF:02X}" for s in range(40, -8, -8))


# --------------------------------------------------------------------------- scale

class SimulatedScale(SimulatedDevice):
    """Weight Scale (0x181D) indicating Weight Measurement; optional body composition."""

    kind = DeviceKind.SCALE
    service = WEIGHT_SCALE_SERVICE
    measurement_uuid = wsc.WEIGHT_MEASUREMENT

    def __init__(self, serial: str, *, unit: Unit = Unit.LB, user_id: int | None = None,
                 height_m: float | None = None, body_composition: bool = False,
                 **kw: object) -> None:
        super().__init__(serial, **kw)  # type: ignore[arg-type]
        self.unit = unit
        self.user_id = user_id
        self.height_m = height_m
        self.body_composition = body_composition

    def characteristics(self) -> dict[int, int]:
        out = super().characteristics()
        out[wsc.WEIGHT_SCALE_FEATURE] = self.service
        if self.body_composition:
            out[wsc.BODY_COMPOSITION_MEASUREMENT] = BODY_COMPOSITION_SERVICE
        return out

    def read(self, uuid: int, now: datetime | None = None) -> bytes:
        if uuid == wsc.WEIGHT_SCALE_FEATURE:
            # timestamp, multi-user, BMI supported; 0.005 kg / 0.01 lb; 0.001 m / 0.1 in
            raw = 0x1 | 0x2 * (self.user_id is not None) | 0x4 * (self.height_m is not None)
            raw |= 7 << 3 | 3 << 7
            return enc.encode_weight_scale_feature(WeightScaleFeature(raw))
        return super().read(uuid, now)

    def decimal_values(self, rec: Record) -> dict[Metric, Decimal]:
        kg = rec.values[Metric.WEIGHT]
        if self.unit is Unit.LB:
            return {Metric.WEIGHT: _dec(convert(kg, Unit.KG, Unit.LB), 2)}
        steps = round(Decimal(repr(kg)) / Decimal("0.005"))
        return {Metric.WEIGHT: steps * Decimal("0.005")}

    def _encode(self, rec: Record) -> list[Notification]:
        weight = None if rec.failed else self.decimal_values(rec)[Metric.WEIGHT]
        bmi = height = None
        if self.height_m is not None and weight is not None:
            kg = rec.values[Metric.WEIGHT]
            bmi = _dec(kg / self.height_m ** 2, 1)
            height = (_dec(self.height_m, 3) if self.unit is Unit.KG
                      else _dec(self.height_m / 0.0254, 1))
        m = WeightMeasurement(self.unit, weight, rec.device_time, self.user_id, bmi, height)
        out: list[Notification] = [(wsc.WEIGHT_MEASUREMENT, enc.encode_weight_measurement(m))]
        if self.body_composition:
            rng = self.record_rng(rec)
            fat = None if rec.failed else _dec(float(rng.uniform(18, 38)), 1)
            bc = BodyCompositionMeasurement(
                self.unit, fat, rec.device_time, self.user_id,
                basal_metabolism=None if rec.failed else int(rng.integers(1300, 2100)),
                impedance=None if rec.failed else _dec(float(rng.uniform(400, 700)), 1),
                weight=weight)
            out.append((wsc.BODY_COMPOSITION_MEASUREMENT,
                        enc.encode_body_composition_measurement(bc)))
        return out


# --------------------------------------------------------------------------- BP cuff

class SimulatedBpCuff(SimulatedDevice):
    """Blood Pressure (0x1810): intermediate cuff pressure while measuring, then
    an indicated Blood Pressure Measurement with pulse and status."""

    kind = DeviceKind.BP_CUFF
    service = BLOOD_PRESSURE_SERVICE
    measurement_uuid = bpc.BLOOD_PRESSURE_MEASUREMENT

    def __init__(self, serial: str, *, unit: Unit = Unit.MMHG, user_id: int | None = 1,
                 **kw: object) -> None:
        super().__init__(serial, **kw)  # type: ignore[arg-type]
        self.unit = unit
        self.user_id = user_id

    def characteristics(self) -> dict[int, int]:
        out = super().characteristics()
        out[bpc.INTERMEDIATE_CUFF_PRESSURE] = self.service
        return out

    def _status_bits(self, values: dict[Metric, float]) -> int | None:
        status = 0
        if self.artefact_prob and self.rng.random() < self.artefact_prob:
            status |= int(self.rng.choice([0x01, 0x02, 0x04, 0x20]))  # movement/cuff/irregular
        pulse = values.get(Metric.PULSE)
        if pulse is not None and pulse > 100:
            status |= 0x08  # pulse rate exceeds upper limit (bits 3-4 = 01)
        return status

    def decimal_values(self, rec: Record) -> dict[Metric, Decimal]:
        v = rec.values
        sys_, dia = v[Metric.SYSTOLIC], v[Metric.DIASTOLIC]
        mean = (sys_ + 2 * dia) / 3
        if self.unit is Unit.KPA:
            out = {m: _dec(convert(x, Unit.MMHG, Unit.KPA), 1)
                   for m, x in ((Metric.SYSTOLIC, sys_), (Metric.DIASTOLIC, dia),
                                (Metric.MEAN_ARTERIAL, mean))}
        else:
            out = {Metric.SYSTOLIC: _dec(sys_, 0), Metric.DIASTOLIC: _dec(dia, 0),
                   Metric.MEAN_ARTERIAL: _dec(mean, 0)}
        if Metric.PULSE in v:
            out[Metric.PULSE] = _dec(v[Metric.PULSE], 0)
        return out

    def _encode(self, rec: Record) -> list[Notification]:
        if rec.failed:
            nan = Special.NAN
            m = BloodPressureMeasurement(self.unit, nan, nan, nan, rec.device_time, nan,
                                         self.user_id, rec.status)
        else:
            d = self.decimal_values(rec)
            m = BloodPressureMeasurement(self.unit, d[Metric.SYSTOLIC], d[Metric.DIASTOLIC],
                                         d[Metric.MEAN_ARTERIAL], rec.device_time,
                                         d.get(Metric.PULSE), self.user_id, rec.status)
        return [(bpc.BLOOD_PRESSURE_MEASUREMENT, enc.encode_blood_pressure_measurement(m))]

    def _live(self, rec: Record) -> list[Notification]:
        top = 0 if rec.failed else rec.values[Metric.SYSTOLIC] + 30
        out: list[Notification] = []
        for p in (40, 90, 140, top, top - 20, 60):
            if p <= 0:
                continue
            value: Number = (_dec(convert(p, Unit.MMHG, Unit.KPA), 1) if self.unit is Unit.KPA
                             else _dec(p, 0))
            icp = IntermediateCuffPressure(self.unit, value, None, None, self.user_id, None)
            out.append((bpc.INTERMEDIATE_CUFF_PRESSURE,
                        enc.encode_intermediate_cuff_pressure(icp)))
        return out


# --------------------------------------------------------------------------- oximeter

PLX_SUPPORTED = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x40
PLX_MEAS_STATUS_SUPPORT = 0xFFE0
PLX_DEVICE_STATUS_SUPPORT = 0x00FFFF
QUESTIONABLE = 1 << 14
VALIDATED = 1 << 7


class SimulatedOximeter(SimulatedDevice):
    """Pulse Oximeter (0x1822): PLX spot-check records with timestamp, status
    and perfusion index; continuous notifications while the finger is in."""

    kind = DeviceKind.PULSE_OXIMETER
    service = PULSE_OXIMETER_SERVICE
    measurement_uuid = plxc.PLX_SPOT_CHECK

    def __init__(self, serial: str, *, continuous: bool = True, **kw: object) -> None:
        super().__init__(serial, **kw)  # type: ignore[arg-type]
        self.continuous = continuous

    def characteristics(self) -> dict[int, int]:
        out = super().characteristics()
        out[plxc.PLX_FEATURES] = self.service
        if self.continuous:
            out[plxc.PLX_CONTINUOUS] = self.service
        return out

    def read(self, uuid: int, now: datetime | None = None) -> bytes:
        if uuid == plxc.PLX_FEATURES:
            return enc.encode_plx_features(PlxFeatures(
                PLX_SUPPORTED, PLX_MEAS_STATUS_SUPPORT, PLX_DEVICE_STATUS_SUPPORT))
        return super().read(uuid, now)

    def _status_bits(self, values: dict[Metric, float]) -> int | None:
        status = VALIDATED
        if self.artefact_prob and self.rng.random() < self.artefact_prob:
            status |= QUESTIONABLE
        return status

    def decimal_values(self, rec: Record) -> dict[Metric, Decimal]:
        return {Metric.SPO2: _dec(rec.values[Metric.SPO2], 0),
                Metric.PULSE: _dec(rec.values[Metric.PULSE], 0)}

    def _new_record(self, when: datetime, values: dict[Metric, float], context: str) -> Record:
        if values:
            # the perfusion index is part of the stored record: a re-sent record is identical
            values = {**values, Metric.PERFUSION_INDEX: round(float(self.rng.uniform(0.8, 9.0)), 1)}
        return super()._new_record(when, values, context)

    def _pi(self, rec: Record) -> Decimal:
        return _dec(rec.values.get(Metric.PERFUSION_INDEX, 2.0), 1)

    def _encode(self, rec: Record) -> list[Notification]:
        if rec.failed:
            spo2: Number = Special.NAN
            pr: Number = Special.NAN
            dev_status: int | None = 1 << 3  # inadequate signal
            pi: Number | None = None
        else:
            d = self.decimal_values(rec)
            spo2, pr, dev_status, pi = d[Metric.SPO2], d[Metric.PULSE], 0, self._pi(rec)
        m = PlxSpotCheck(spo2, pr, rec.device_time, rec.status, dev_status, pi,
                         device_clock_not_set=rec.clock_unset)
        return [(plxc.PLX_SPOT_CHECK, enc.encode_plx_spot_check(m))]

    def _live(self, rec: Record) -> list[Notification]:
        if not self.continuous or rec.failed:
            return []
        d = self.decimal_values(rec)
        out: list[Notification] = []
        rng = self.record_rng(rec)
        for i in range(3):
            jitter = Decimal(int(rng.integers(-1, 2)))
            m = PlxContinuous(min(d[Metric.SPO2] + jitter, Decimal(100)), d[Metric.PULSE],
                              spo2_fast=d[Metric.SPO2], pulse_rate_fast=d[Metric.PULSE] + jitter,
                              spo2_slow=d[Metric.SPO2], pulse_rate_slow=d[Metric.PULSE],
                              measurement_status=1 << 5 if i < 2 else VALIDATED,
                              device_status=0, perfusion_index=self._pi(rec))
            out.append((plxc.PLX_CONTINUOUS, enc.encode_plx_continuous(m)))
        return out


# --------------------------------------------------------------------------- glucometer

MEAL_CODES = {"fasting": 3, "post_meal": 2, "recheck": 4, "repeat": 4}
SEQUENCE_MODULUS = 0x10000


class SimulatedGlucometer(SimulatedDevice):
    """Glucose (0x1808): stored records with sequence numbers, read out via RACP.

    Nothing is sent on connect; the hub writes RACP requests.  Each record
    is a Glucose Measurement (with time offset, type/location and sensor
    status) followed by a Measurement Context (meal) when it has one.
    """

    kind = DeviceKind.GLUCOMETER
    service = GLUCOSE_SERVICE
    measurement_uuid = glc.GLUCOSE_MEASUREMENT

    def __init__(self, serial: str, *, unit: Unit = Unit.KG_L, next_sequence: int = 0,
                 time_offset_minutes: int | None = None, with_context: bool = True,
                 **kw: object) -> None:
        super().__init__(serial, **kw)  # type: ignore[arg-type]
        self.unit = unit
        self.next_sequence = next_sequence % SEQUENCE_MODULUS
        self.time_offset_minutes = time_offset_minutes
        self.with_context = with_context
        self.requests: list[object] = []  # RACP packets written by the hub, decoded

    def characteristics(self) -> dict[int, int]:
        out = super().characteristics()
        out[glc.GLUCOSE_MEASUREMENT_CONTEXT] = self.service
        out[racp.RACP] = self.service
        return out

    def _new_record(self, when: datetime, values: dict[Metric, float], context: str) -> Record:
        rec = super()._new_record(when, values, context)
        rec = replace(rec, sequence=self.next_sequence)
        self.next_sequence = (self.next_sequence + 1) % SEQUENCE_MODULUS
        return rec

    def _status_bits(self, values: dict[Metric, float]) -> int | None:
        status = 0
        if self.battery <= LOW_BATTERY:
            status |= 1 << 0
        g = values.get(Metric.GLUCOSE)
        if not values:
            status |= 1 << 2  # sample size insufficient
        elif g is not None and g < GLUCOSE_LO_MG_DL:
            status |= glc.STATUS_TOO_LOW
        elif g is not None and g > GLUCOSE_HI_MG_DL:
            status |= glc.STATUS_TOO_HIGH
        return status

    def reset_sequence(self, *, clear_memory: bool = True) -> None:
        """Counter reset (battery change / factory reset): numbering restarts at 0."""
        self.next_sequence = 0
        if clear_memory:
            self.records.clear()
            self.sent = 0

    def decimal_values(self, rec: Record) -> dict[Metric, Decimal]:
        mg = rec.values[Metric.GLUCOSE]
        if self.unit is Unit.MOL_L:
            mmol = _dec(convert(mg, Unit.MG_DL, Unit.MMOL_L), 1)
            return {Metric.GLUCOSE: mmol.scaleb(-3)}
        return {Metric.GLUCOSE: _dec(mg, 0).scaleb(-5)}

    def _encode(self, rec: Record) -> list[Notification]:
        conc: Number
        status = rec.status or 0
        if rec.failed:
            conc = Special.NAN
        elif status & (glc.STATUS_TOO_LOW | glc.STATUS_TOO_HIGH):
            conc = Special.NRES  # LO / HI: no number, the status bit says which
        else:
            conc = self.decimal_values(rec)[Metric.GLUCOSE]
        meal = MEAL_CODES.get(rec.context) if self.with_context else None
        base = rec.device_time
        offset = self.time_offset_minutes
        if offset is not None and not rec.clock_unset:
            shifted = (base.to_datetime() or UNSET_EPOCH) - timedelta(minutes=offset)
            base = date_time_of(shifted)  # user-facing time = base + offset
        m = GlucoseMeasurement(rec.sequence, base, self.unit, offset, conc, 1, 1,
                               status, context_follows=meal is not None)
        out: list[Notification] = [(glc.GLUCOSE_MEASUREMENT, enc.encode_glucose_measurement(m))]
        if meal is not None:
            out.append((glc.GLUCOSE_MEASUREMENT_CONTEXT,
                        enc.encode_glucose_measurement_context(self._context(rec, meal))))
        return out

    def _context(self, rec: Record, meal: int) -> GlucoseMeasurementContext:
        """What the patient entered on the meter: meal, and now and then carbs,
        insulin, exercise, or the HbA1c from the last lab visit."""
        rng = self.record_rng(rec)
        ctx = GlucoseMeasurementContext(rec.sequence, meal=meal, tester=1, health=5)
        if meal == 2:  # post-meal: dinner carbohydrates (grams, sent in kg)
            ctx = replace(ctx, carbohydrate_id=3,
                          carbohydrate=Decimal(int(rng.integers(30, 90))).scaleb(-3))
        if meal == 3 and rng.random() < 0.5:  # fasting: long-acting insulin, units as mL
            units = int(rng.integers(8, 30))
            ctx = replace(ctx, medication_id=4, medication=Decimal(units).scaleb(-5),
                          medication_unit="L")
        if rng.random() < 0.15:
            ctx = replace(ctx, exercise_duration=int(rng.integers(10, 60)) * 60,
                          exercise_intensity=int(rng.integers(30, 80)))
        if rec.sequence % 30 == 0:
            ctx = replace(ctx, hba1c=_dec(float(rng.uniform(6.2, 8.4)), 1))
        return ctx

    def connect(self, now: datetime | None = None) -> list[Notification]:
        """Glucose meters send nothing on their own: the hub asks through RACP."""
        self.connections += 1
        return []

    def write(self, uuid: int, data: bytes, now: datetime) -> list[Notification]:
        """RACP requests; other writes as the base class."""
        if uuid != racp.RACP:
            return super().write(uuid, data, now)
        req = racp.decode_racp(data)
        self.requests.append(req)
        if not isinstance(req, racp.RacpRequest):
            raise DeviceSimulationError(self.serial, uuid, "not a RACP request")
        selected = self._select(req)
        if selected is None:
            return [(racp.RACP, enc.encode_racp_response_code(req.opcode, 3))]  # not supported
        if req.opcode == racp.OP_REPORT_COUNT:
            return [(racp.RACP, enc.encode_racp_number_of_records(len(selected)))]
        if req.opcode == racp.OP_REPORT_RECORDS:
            out: list[Notification] = []
            for rec in selected:
                out.extend(self._encode(rec))
            code = racp.RESPONSE_SUCCESS if selected else racp.RESPONSE_NO_RECORDS
            out = self._faulty(out)
            out.append((racp.RACP, enc.encode_racp_response_code(req.opcode, code)))
            self.sent = len(self.records)
            return out
        if req.opcode == racp.OP_ABORT:
            return [(racp.RACP, enc.encode_racp_response_code(req.opcode,
                                                              racp.RESPONSE_SUCCESS))]
        return [(racp.RACP, enc.encode_racp_response_code(req.opcode, 2))]  # op not supported

    def _select(self, req: racp.RacpRequest) -> list[Record] | None:
        if req.opcode == racp.OP_ABORT:
            return []
        if req.operator == racp.OPERATOR_ALL:
            return list(self.records)
        lo = req.min_sequence
        if lo is not None:
            chosen = [r for r in self.records if r.sequence >= lo]
            if self.repeat_last and chosen:
                # many meters start the burst with the record before the one asked for
                chosen = [r for r in self.records if r.sequence == lo - 1] + chosen
            return chosen
        if req.operator == racp.OPERATOR_LAST:
            return self.records[-1:]
        if req.operator == racp.OPERATOR_FIRST:
            return self.records[:1]
        return None


# --------------------------------------------------------------------------- factory

DEVICE_CLASSES: dict[DeviceKind, type[SimulatedDevice]] = {
    DeviceKind.SCALE: SimulatedScale,
    DeviceKind.BP_CUFF: SimulatedBpCuff,
    DeviceKind.PULSE_OXIMETER: SimulatedOximeter,
    DeviceKind.GLUCOMETER: SimulatedGlucometer,
}


def make_device(kind: DeviceKind, serial: str, **kw: object) -> SimulatedDevice:
    """A simulated device of ``kind`` (keyword options go to its constructor)."""
    return DEVICE_CLASSES[kind](serial, **kw)  # type: ignore[arg-type]


@dataclass(slots=True)
class DeviceSet:
    """A patient's simulated devices, by address (what a hub pairs with) and kind;
    :meth:`deliver` plays the patient's samples into the right devices."""

    devices: dict[str, SimulatedDevice] = field(default_factory=dict)

    @classmethod
    def of(cls, devices: Iterable[SimulatedDevice]) -> DeviceSet:
        """A link over ``devices`` (keyed by their addresses)."""
        return cls({d.address: d for d in devices})

    def device(self, address: str) -> SimulatedDevice:
        """The device at ``address`` (KeyError if none)."""
        return self.devices[address]

    def by_kind(self, kind: DeviceKind) -> SimulatedDevice | None:
        """The first device of ``kind``."""
        return next((d for d in self.devices.values() if d.kind == kind), None)

    def deliver(self, samples: Sequence[Sample]) -> int:
        """Have the patient measure ``samples`` on the matching devices; count stored."""
        n = 0
        for s in samples:
            d = self.by_kind(s.kind)
            if d is not None:
                d.measure(s)
                n += 1
        return n
