"""Pulse Oximeter: PLX Spot-Check (0x2A5E), Continuous (0x2A5F), Features (0x2A60).

Measurement status bit 15 = invalid, 14 = questionable, 13 = unavailable: such
a reading is stored but must drive no alert (``drives_alerts`` is False).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from edge_agent.gatt._common import bit_names, canonical, split_values
from edge_agent.gatt.numbers import Number, Reader, Special
from edge_agent.gatt.times import DateTime, read_date_time
from gateway.units import Metric, Unit

PLX_SPOT_CHECK = 0x2A5E
PLX_CONTINUOUS = 0x2A5F
PLX_FEATURES = 0x2A60

MEASUREMENT_STATUS_BITS = (
    (5, "measurement_ongoing"),
    (6, "early_estimated_data"),
    (7, "validated_data"),
    (8, "fully_qualified_data"),
    (9, "data_from_measurement_storage"),
    (10, "data_for_demonstration"),
    (11, "data_for_testing"),
    (12, "calibration_ongoing"),
    (13, "measurement_unavailable"),
    (14, "questionable_measurement"),
    (15, "invalid_measurement"),
)
DEVICE_STATUS_BITS = (
    (0, "extended_display_update_ongoing"),
    (1, "equipment_malfunction"),
    (2, "signal_processing_irregularity"),
    (3, "inadequate_signal"),
    (4, "poor_signal"),
    (5, "low_perfusion"),
    (6, "erratic_signal"),
    (7, "nonpulsatile_signal"),
    (8, "questionable_pulse"),
    (9, "signal_analysis_ongoing"),
    (10, "sensor_interference"),
    (11, "sensor_unconnected_to_user"),
    (12, "unknown_sensor_connected"),
    (13, "sensor_displaced"),
    (14, "sensor_malfunctioning"),
    (15, "sensor_disconnected"),
)
FEATURE_BITS = (
    (0, "measurement_status_support"),
    (1, "device_and_sensor_status_support"),
    (2, "spot_check_measurement_storage"),
    (3, "spot_check_timestamp"),
    (4, "spo2pr_fast"),
    (5, "spo2pr_slow"),
    (6, "pulse_amplitude_index"),
    (7, "multiple_bonds"),
)
NO_ALERT_MASK = (1 << 13) | (1 << 14) | (1 << 15)


def _status(meas: int | None, device: int | None) -> list[str]:
    return bit_names(meas, MEASUREMENT_STATUS_BITS) + bit_names(device, DEVICE_STATUS_BITS)


def _unsuccessful(spo2: Number, pr: Number) -> bool:
    return isinstance(spo2, Special) and isinstance(pr, Special)


@dataclass(frozen=True, slots=True)
class PlxSpotCheck:
    """PLX Spot-Check Measurement (0x2A5E): SpO2 %, pulse rate /min, PAI %."""

    characteristic: ClassVar[int] = PLX_SPOT_CHECK

    spo2: Number
    pulse_rate: Number
    timestamp: DateTime | None = None
    measurement_status: int | None = None
    device_status: int | None = None  # u24
    perfusion_index: Number | None = None
    device_clock_not_set: bool = False

    @property
    def status_names(self) -> list[str]:
        """Snake-case names of status bits set (plus ``device_clock_not_set``)."""
        names = _status(self.measurement_status, self.device_status)
        if self.device_clock_not_set:
            names.append("device_clock_not_set")
        return names

    @property
    def drives_alerts(self) -> bool:
        """False if the device flagged the reading invalid, questionable or unavailable."""
        return not (self.measurement_status or 0) & NO_ALERT_MASK

    @property
    def measurement_unsuccessful(self) -> bool:
        """True when neither SpO2 nor pulse rate is a number."""
        return _unsuccessful(self.spo2, self.pulse_rate)

    def canonical(self) -> dict[str, float | None]:
        """SpO2 %, pulse rate /min, perfusion index %."""
        return {
            "spo2": canonical(self.spo2, Metric.SPO2, Unit.PERCENT),
            "pulse_rate": canonical(self.pulse_rate, Metric.PULSE, Unit.PER_MIN),
            "perfusion_index": canonical(
                self.perfusion_index, Metric.PERFUSION_INDEX, Unit.PERCENT
            ),
        }

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        values, special = split_values(
            {
                "spo2": self.spo2,
                "pulse_rate": self.pulse_rate,
                "perfusion_index": self.perfusion_index,
            }
        )
        out: dict[str, object] = {
            "unit": Unit.PERCENT.value,
            "values": values,
            "special": special,
            "status": self.status_names,
            "measurement_unsuccessful": self.measurement_unsuccessful,
            "canonical": self.canonical(),
        }
        if self.timestamp is not None:
            out.update(self.timestamp.json_fields())
        return out


def decode_plx_spot_check(data: bytes) -> PlxSpotCheck:
    """Decode PLX Spot-Check Measurement (0x2A5E)."""
    r = Reader(PLX_SPOT_CHECK, data)
    flags = r.u8("flags")
    spo2 = r.sfloat("spo2")
    pr = r.sfloat("pulse_rate")
    ts = read_date_time(r, "timestamp") if flags & 0x01 else None
    meas = r.u16("measurement_status") if flags & 0x02 else None
    dev = r.u24("device_and_sensor_status") if flags & 0x04 else None
    pai = r.sfloat("perfusion_index") if flags & 0x08 else None
    return PlxSpotCheck(spo2, pr, ts, meas, dev, pai, bool(flags & 0x10))


@dataclass(frozen=True, slots=True)
class PlxContinuous:
    """PLX Continuous Measurement (0x2A5F): normal, optional fast and slow SpO2/PR pairs."""

    characteristic: ClassVar[int] = PLX_CONTINUOUS

    spo2: Number
    pulse_rate: Number
    spo2_fast: Number | None = None
    pulse_rate_fast: Number | None = None
    spo2_slow: Number | None = None
    pulse_rate_slow: Number | None = None
    measurement_status: int | None = None
    device_status: int | None = None
    perfusion_index: Number | None = None

    @property
    def status_names(self) -> list[str]:
        """Snake-case names of status bits set."""
        return _status(self.measurement_status, self.device_status)

    @property
    def drives_alerts(self) -> bool:
        """False if the device flagged the reading invalid, questionable or unavailable."""
        return not (self.measurement_status or 0) & NO_ALERT_MASK

    @property
    def measurement_unsuccessful(self) -> bool:
        """True when neither SpO2 nor pulse rate is a number."""
        return _unsuccessful(self.spo2, self.pulse_rate)

    def _values(self) -> dict[str, Number | None]:
        return {
            "spo2": self.spo2,
            "pulse_rate": self.pulse_rate,
            "perfusion_index": self.perfusion_index,
            "spo2_fast": self.spo2_fast,
            "pulse_rate_fast": self.pulse_rate_fast,
            "spo2_slow": self.spo2_slow,
            "pulse_rate_slow": self.pulse_rate_slow,
        }

    def canonical(self) -> dict[str, float | None]:
        """SpO2 values %, pulse rates /min, perfusion index %."""
        out: dict[str, float | None] = {}
        for name, v in self._values().items():
            if name.startswith("pulse_rate"):
                out[name] = canonical(v, Metric.PULSE, Unit.PER_MIN)
            else:
                out[name] = canonical(v, Metric.SPO2, Unit.PERCENT)
        return out

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        values, special = split_values(self._values())
        return {
            "unit": Unit.PERCENT.value,
            "values": values,
            "special": special,
            "status": self.status_names,
            "measurement_unsuccessful": self.measurement_unsuccessful,
            "canonical": self.canonical(),
        }


def decode_plx_continuous(data: bytes) -> PlxContinuous:
    """Decode PLX Continuous Measurement (0x2A5F)."""
    r = Reader(PLX_CONTINUOUS, data)
    flags = r.u8("flags")
    spo2 = r.sfloat("spo2")
    pr = r.sfloat("pulse_rate")
    fast_s = fast_p = slow_s = slow_p = None
    if flags & 0x01:
        fast_s, fast_p = r.sfloat("spo2_fast"), r.sfloat("pulse_rate_fast")
    if flags & 0x02:
        slow_s, slow_p = r.sfloat("spo2_slow"), r.sfloat("pulse_rate_slow")
    meas = r.u16("measurement_status") if flags & 0x04 else None
    dev = r.u24("device_and_sensor_status") if flags & 0x08 else None
    pai = r.sfloat("perfusion_index") if flags & 0x10 else None
    return PlxContinuous(spo2, pr, fast_s, fast_p, slow_s, slow_p, meas, dev, pai)


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """PLX Features (0x2A60): supported features and optional support masks."""

    characteristic: ClassVar[int] = PLX_FEATURES

    supported: int
    measurement_status_support: int | None = None
    device_status_support: int | None = None

    def json_fields(self) -> dict[str, object]:
        """Fields for :func:`edge_agent.gatt.to_json_dict`."""
        return {
            "features": {
                "raw": self.supported,
                "supported": bit_names(self.supported, FEATURE_BITS),
                "measurement_status_support": bit_names(
                    self.measurement_status_support, MEASUREMENT_STATUS_BITS
                ),
                "device_status_support": bit_names(self.device_status_support, DEVICE_STATUS_BITS),
            }
        }


def decode_plx_features(data: bytes) -> PlxFeatures:
    """Decode PLX Features (0x2A60)."""
    r = Reader(PLX_FEATURES, data)
    supported = r.u16("supported_features")
    meas = r.u16("measurement_status_support") if supported & 0x01 else None
    dev = r.u24("device_and_sensor_status_support") if supported & 0x02 else None
    return PlxFeatures(supported, meas, dev)
