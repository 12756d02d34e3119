"""The characteristic registry, :func:`decode` and the stable JSON shape.

``to_json_dict`` always returns the keys of :data:`JSON_KEYS`, in that order
(absent optional fields are ``null``):

* ``characteristic``: 4 lowercase hex digits; ``unit``: as sent (``kg``/``lb`` -
  for ``lb`` heights are inches, for ``kg`` metres -, ``mmHg``/``kPa``,
  ``kg/L``/``mol/L``, ``%``);
* ``values``: the characteristic's value names, each a number in ``unit`` or
  ``null`` (absent or special); ``special``: name -> ``nan``/``nres``/``+inf``/
  ``-inf``/``reserved``;
* ``timestamp``: ISO 8601 local device time without zone, ``null`` if absent or
  if any part is unknown/invalid (glucose: base time + offset, with
  ``base_time`` beside it); ``timestamp_parts``: the raw parts plus the lists
  ``unknown`` and ``invalid`` (``null`` if the value has no timestamp);
* ``user_id`` (255 = unknown user, also listed in ``status`` as
  ``user_unknown``), ``sequence``, ``time_offset_minutes``;
* ``status``: snake_case names of the flags set; ``sample_type``,
  ``sample_location``: snake_case names (``reserved_<n>`` for unassigned codes);
* ``measurement_unsuccessful``: 0xFFFF weight/body fat, all pressures special,
  SpO2 and pulse rate both special, or no numeric glucose concentration;
* ``canonical``: the values in kg / m / mmHg / mg/dL / % / per minute.

Non-measurement characteristics add their own keys: ``features`` (0x2A9E,
0x2A60), ``racp`` (0x2A52), ``context`` (0x2A34), ``field``/``text``/
``valid_utf8`` (device information), ``day_of_week``/``fractions256`` (0x2A2B).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from edge_agent.gatt import blood_pressure, device, glucose, plx, racp, times, weight
from edge_agent.gatt.errors import DecodeError

#: Every type :func:`decode` can return.
Decoded = (
    times.DateTime
    | times.CurrentTime
    | weight.WeightMeasurement
    | weight.WeightScaleFeature
    | weight.BodyCompositionMeasurement
    | blood_pressure.BloodPressureMeasurement
    | blood_pressure.IntermediateCuffPressure
    | plx.PlxSpotCheck
    | plx.PlxContinuous
    | plx.PlxFeatures
    | glucose.GlucoseMeasurement
    | glucose.GlucoseMeasurementContext
    | racp.RacpNumberOfRecords
    | racp.RacpResponseCode
    | racp.RacpRequest
    | device.BatteryLevel
    | device.DeviceInformationString
)


@dataclass(frozen=True, slots=True)
class Characteristic:
    """A registered characteristic: its uuid16, snake_case name and decoder."""

    uuid: int
    name: str
    decoder: Callable[[bytes], Decoded]


def _entries() -> list[Characteristic]:
    c = Characteristic
    out = [
        c(times.DATE_TIME, "date_time", times.decode_date_time),
        c(times.CURRENT_TIME, "current_time", times.decode_current_time),
        c(weight.WEIGHT_MEASUREMENT, "weight_measurement", weight.decode_weight_measurement),
        c(weight.WEIGHT_SCALE_FEATURE, "weight_scale_feature", weight.decode_weight_scale_feature),
        c(
            weight.BODY_COMPOSITION_MEASUREMENT,
            "body_composition_measurement",
            weight.decode_body_composition_measurement,
        ),
        c(
            blood_pressure.BLOOD_PRESSURE_MEASUREMENT,
            "blood_pressure_measurement",
            blood_pressure.decode_blood_pressure_measurement,
        ),
        c(
            blood_pressure.INTERMEDIATE_CUFF_PRESSURE,
            "intermediate_cuff_pressure",
            blood_pressure.decode_intermediate_cuff_pressure,
        ),
        c(plx.PLX_SPOT_CHECK, "plx_spot_check_measurement", plx.decode_plx_spot_check),
        c(plx.PLX_CONTINUOUS, "plx_continuous_measurement", plx.decode_plx_continuous),
        c(plx.PLX_FEATURES, "plx_features", plx.decode_plx_features),
        c(glucose.GLUCOSE_MEASUREMENT, "glucose_measurement", glucose.decode_glucose_measurement),
        c(
            glucose.GLUCOSE_MEASUREMENT_CONTEXT,
            "glucose_measurement_context",
            glucose.decode_glucose_measurement_context,
        ),
        c(racp.RACP, "record_access_control_point", racp.decode_racp),
        c(device.BATTERY_LEVEL, "battery_level", device.decode_battery_level),
    ]
    for uuid, name in device.DEVICE_INFO_STRINGS.items():
        out.append(c(uuid, name, partial(device.decode_device_information_string, uuid)))
    return out


#: uuid16 -> registered characteristic.
REGISTRY: dict[int, Characteristic] = {e.uuid: e for e in _entries()}
_BY_NAME: dict[str, Characteristic] = {e.name: e for e in REGISTRY.values()}

#: Keys every :func:`to_json_dict` result has, in order.
JSON_KEYS = (
    "characteristic",
    "unit",
    "values",
    "special",
    "timestamp",
    "timestamp_parts",
    "base_time",
    "user_id",
    "sequence",
    "time_offset_minutes",
    "status",
    "sample_type",
    "sample_location",
    "measurement_unsuccessful",
    "canonical",
)


def lookup(spec: str | int) -> Characteristic:
    """Find a characteristic by uuid16 (int), ``"2a35"``, ``"0x2A35"`` or its name.

    Raises :class:`KeyError` for an unknown characteristic.
    """
    if isinstance(spec, int):
        return REGISTRY[spec]
    text = spec.strip().lower().replace("-", "_").replace(" ", "_")
    if text in _BY_NAME:
        return _BY_NAME[text]
    hex_text = text.removeprefix("0x")
    if 1 <= len(hex_text) <= 4 and all(ch in "0123456789abcdef" for ch in hex_text):
        return REGISTRY[int(hex_text, 16)]
    raise KeyError(spec)


def decode(characteristic: int, data: bytes) -> Decoded:
    """Decode ``data`` read from ``characteristic`` (uuid16) into its dataclass.

    Raises :class:`DecodeError` for malformed bytes or an unregistered uuid.
    """
    entry = REGISTRY.get(characteristic)
    if entry is None:
        raise DecodeError(characteristic, 0, "no decoder registered for this characteristic")
    return entry.decoder(bytes(data))


def to_json_dict(decoded: Decoded) -> dict[str, Any]:
    """The stable JSON-ready dict for a decoded value (see module docstring)."""
    out: dict[str, Any] = {
        "characteristic": f"{decoded.characteristic:04x}",
        "unit": None,
        "values": {},
        "special": {},
        "timestamp": None,
        "timestamp_parts": None,
        "base_time": None,
        "user_id": None,
        "sequence": None,
        "time_offset_minutes": None,
        "status": [],
        "sample_type": None,
        "sample_location": None,
        "measurement_unsuccessful": False,
        "canonical": {},
    }
    out.update(decoded.json_fields())
    return out
