"""Wire contract: the JSON payload a hub publishes (``vitalgate.readings/1``).

The decoder never raises on bad input: :func:`decode_readings` returns either
a :class:`WireBatch` or a :class:`WireError` naming the offending field
(``readings[2].values[0].value``) and why.  pydantic is used here, at the
edge, and nowhere inside; the rest of Vitalgate sees frozen dataclasses.
See ``docs/wire.md`` for the documented schema and an example.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from gateway.model import DeviceKind, Flag, ReadingSource
from gateway.units import Metric, Unit

SCHEMA_READINGS = "vitalgate.readings/1"
SCHEMA_STATUS = "vitalgate.status/1"
SCHEMA_DEVICES = "vitalgate.devices/1"

#: Default refusal size for one payload; 1 MiB is ~4,000 readings.
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_READINGS_PER_PAYLOAD = 5000

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Text = Annotated[str, StringConstraints(max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class WireValue(_Strict):
    """One metric value as the device sent it (``value`` null for NaN/LO/HI)."""

    metric: Metric
    value: float | None = None
    unit: Unit
    special: Literal["nan", "nres", "+inf", "-inf", "reserved", "lo", "hi"] | None = None


class WireReading(_Strict):
    """One reading: stable id, the device/hub times, values and flags."""

    id: Id
    device_time: Annotated[str, StringConstraints(max_length=40)] | None = None
    measured_at: AwareDatetime | None = None
    clock_offset_s: float | None = None
    received_at: AwareDatetime
    sequence: int | None = Field(default=None, ge=0, le=0xFFFF_FFFF)
    source: ReadingSource = ReadingSource.DEVICE
    values: list[WireValue] = Field(min_length=1, max_length=16)
    flags: list[Flag] = Field(default_factory=list, max_length=16)

    @field_validator("values")
    @classmethod
    def _distinct_metrics(cls, values: list[WireValue]) -> list[WireValue]:
        seen: set[Metric] = set()
        for v in values:
            if v.metric in seen:
                raise ValueError(f"metric {v.metric} appears twice")
            seen.add(v.metric)
        return values


class WireDevice(_Strict):
    """The device block: which device these readings came from."""

    serial: Id
    kind: DeviceKind
    model: Text = ""
    manufacturer: Text = ""
    firmware: Text = ""
    clock_offset_s: float | None = None
    battery: int | None = Field(default=None, ge=0, le=100)


class WireReadings(_Strict):
    """``vitalgate.readings/1``: readings of one device, published by one hub."""

    schema_: Literal["vitalgate.readings/1"] = Field(alias="schema")
    hub_id: Id
    sent_at: AwareDatetime | None = None
    device: WireDevice
    readings: list[WireReading] = Field(min_length=1, max_length=MAX_READINGS_PER_PAYLOAD)

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=True)


class WireStatus(_Strict):
    """``vitalgate.status/1``: retained hub status (also the last will, ``offline``)."""

    schema_: Literal["vitalgate.status/1"] = Field(alias="schema")
    hub_id: Id
    state: Literal["online", "offline"]
    at: AwareDatetime | None = None
    outbox_depth: int | None = Field(default=None, ge=0)
    outbox_oldest_s: float | None = Field(default=None, ge=0)
    agent_version: Text = ""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=True)


class WireDevices(_Strict):
    """``vitalgate.devices/1``: device info, battery and clock offsets seen by a hub."""

    schema_: Literal["vitalgate.devices/1"] = Field(alias="schema")
    hub_id: Id
    at: AwareDatetime
    devices: list[WireDevice] = Field(max_length=32)

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              populate_by_name=True)


@dataclass(frozen=True, slots=True)
class WireError:
    """Why a payload was refused: the field path (or ``$`` for the whole) and reason."""

    field: str
    reason: str
    code: str = "schema"

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "$"


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def decode_readings(payload: bytes | str, *, max_bytes: int = MAX_PAYLOAD_BYTES,
                    expected_hub: str | None = None) -> WireReadings | WireError:
    """Decode a readings payload; return the model or a :class:`WireError`.

    ``expected_hub`` is the hub id from the topic: a payload naming another
    hub is refused (a hub may publish only under its own id).
    """
    return _decode(WireReadings, SCHEMA_READINGS, payload, max_bytes, expected_hub)


def decode_status(payload: bytes | str, *, expected_hub: str | None = None,
                  max_bytes: int = 64 * 1024) -> WireStatus | WireError:
    """Decode a hub status payload; return the model or a :class:`WireError`."""
    return _decode(WireStatus, SCHEMA_STATUS, payload, max_bytes, expected_hub)


def decode_devices(payload: bytes | str, *, expected_hub: str | None = None,
                   max_bytes: int = 256 * 1024) -> WireDevices | WireError:
    """Decode a hub devices payload; return the model or a :class:`WireError`."""
    return _decode(WireDevices, SCHEMA_DEVICES, payload, max_bytes, expected_hub)


M = TypeVar("M", WireReadings, WireStatus, WireDevices)


def _decode(
    model: type[M], schema_id: str, payload: bytes | str, max_bytes: int,
    expected_hub: str | None,
) -> M | WireError:
    size = len(payload)
    if size > max_bytes:
        return WireError("$", f"payload of {size} bytes exceeds the {max_bytes}-byte limit",
                         "too_large")
    try:
        doc = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return WireError("$", f"not JSON: {str(exc)[:120]}", "not_json")
    if not isinstance(doc, dict):
        return WireError("$", "payload must be a JSON object", "schema")
    schema = doc.get("schema")
    if schema != schema_id:
        return WireError("schema", f"unsupported schema {str(schema)[:64]!r}; "
                         f"expected {schema_id!r}", "schema_version")
    try:
        batch = model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        return WireError(_loc(tuple(first["loc"])), str(first["msg"]), "schema")
    except RecursionError:
        return WireError("$", "payload nested too deeply", "schema")
    if expected_hub is not None and batch.hub_id != expected_hub:
        return WireError("hub_id", f"payload hub id does not match topic hub {expected_hub!r}",
                         "hub_mismatch")
    return batch


def encode(batch: WireReadings | WireStatus | WireDevices) -> bytes:
    """Serialise a payload to the wire (compact JSON, UTF-8)."""
    return batch.model_dump_json(by_alias=True, exclude_none=True).encode()


def reading_to_wire(*, reading_id: str, received_at: datetime, values: list[WireValue],
                    **extra: Any) -> WireReading:
    """Convenience constructor used by the edge agent and simulators."""
    return WireReading(id=reading_id, received_at=received_at, values=values, **extra)


def finite_or_none(x: float | None) -> float | None:
    """Return ``x`` if it is a finite number, else ``None`` (NaN never goes on the wire)."""
    return x if x is not None and math.isfinite(x) else None
