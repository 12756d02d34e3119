"""Pure GATT decoders for the Bluetooth LE health profiles (no bleak, no asyncio).

Bytes in, frozen dataclasses out.  Radio bytes are untrusted: every read is
bounds-checked and every failure is a :class:`DecodeError` carrying the
characteristic and byte offset.  Numbers are exact ``Decimal`` values in the
unit the device sent; IEEE 11073 special values are :class:`Special` markers,
never numbers.  ``decode(uuid16, data)`` dispatches through :data:`REGISTRY`;
``to_json_dict`` gives the stable JSON shape used by the CLI and the outbox.
"""

from edge_agent.gatt.blood_pressure import BloodPressureMeasurement, IntermediateCuffPressure
from edge_agent.gatt.device import BatteryLevel, DeviceInformationString
from edge_agent.gatt.errors import DecodeError
from edge_agent.gatt.glucose import GlucoseMeasurement, GlucoseMeasurementContext
from edge_agent.gatt.numbers import Number, Special, float_from_raw, sfloat_from_raw
from edge_agent.gatt.plx import PlxContinuous, PlxFeatures, PlxSpotCheck
from edge_agent.gatt.racp import (
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponseCode,
    report_all_records,
    report_count_all,
    report_count_from,
    report_records_from,
)
from edge_agent.gatt.registry import (
    JSON_KEYS,
    REGISTRY,
    Characteristic,
    decode,
    lookup,
    to_json_dict,
)
from edge_agent.gatt.times import CurrentTime, DateTime
from edge_agent.gatt.weight import BodyCompositionMeasurement, WeightMeasurement, WeightScaleFeature

__all__ = [
    "JSON_KEYS",
    "REGISTRY",
    "BatteryLevel",
    "BloodPressureMeasurement",
    "BodyCompositionMeasurement",
    "Characteristic",
    "CurrentTime",
    "DateTime",
    "DecodeError",
    "Decoded",
    "DeviceInformationString",
    "GlucoseMeasurement",
    "GlucoseMeasurementContext",
    "IntermediateCuffPressure",
    "Number",
    "PlxContinuous",
    "PlxFeatures",
    "PlxSpotCheck",
    "RacpNumberOfRecords",
    "RacpRequest",
    "RacpResponseCode",
    "Special",
    "WeightMeasurement",
    "WeightScaleFeature",
    "decode",
    "float_from_raw",
    "lookup",
    "report_all_records",
    "report_count_all",
    "report_count_from",
    "report_records_from",
    "sfloat_from_raw",
    "to_json_dict",
]
